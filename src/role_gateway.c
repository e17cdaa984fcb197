/* role_gateway.c - the public API: forwards to ingest and the processor */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "auth.h"
#include "clock.h"
#include "forward_batch.h"
#include "http_client.h"
#include "log.h"
#include "message.h"
#include "rate_limit.h"
#include "role.h"
#include "xmalloc.h"

/* Bound on one hop to ingest or the processor. */
#define HOP_TIMEOUT_MS 10000
/*
 * Token buckets each rate limiter keeps at most (about 56 bytes each):
 * past that, a new client takes the place of a full or the least recently
 * used bucket, so hostile addresses cannot grow the table.
 */
#define RATE_BUCKETS 16384
/* Bodies of requests to the admin listener, which takes none. */
#define ADMIN_MAX_BODY 1024

/* One processor as the gateway asks it. */
struct gw_processor {
	const char *url;		/* as configured */
	char *stats_url;
	char *health_url;
	char *results_url;		/* .../results/ */
};

struct gateway {
	const struct config *cfg;
	struct http_server *srv;
	struct http_client *hc;
	char *ingest_url;		/* .../ingest */
	char *ingest_batch_url;		/* .../ingest/batch */
	char *ingest_ndjson_url;	/* the same, for NDJSON */
	char *ingest_singles_url;	/* NDJSON of single requests */
	/* FORWARD_BATCH > 1: single requests carried to ingest together */
	struct forward_batch *fwd;
	char *ingest_stats_url;
	char *ingest_health_url;
	struct gw_processor *procs;	/* PROCESSOR_URL, in its order */
	size_t n_procs;
	struct http_server *admin_srv;	/* ADMIN_LISTEN_ADDRESS, or NULL */
	/*
	 * The admin listener's own client: a client keeps one part per loop
	 * index, and the loops of two servers have the same indexes.
	 */
	struct http_client *admin_hc;
	struct auth *api_keys;		/* API_KEYS_FILE, or NULL: open */
	struct auth *admin_keys;	/* ADMIN_KEYS_FILE, or NULL: open */
	/* RATE_LIMIT, or NULL; by_key only with API or admin keys */
	struct rate_limiter *by_addr, *by_key;
	/* requests refused; relaxed atomics, added on the loops */
	atomic_uint_fast64_t limited_by_addr, limited_by_key, unauthorized;
};

/*
 * Answer 401 unless req presents a key of keys; its digest into digest, its
 * client's name into client (when not NULL).
 */
static bool
gw_authorized(struct gateway *gw, struct auth *keys, struct http_request *req,
    unsigned char digest[AUTH_DIGEST_LEN], char client[AUTH_NAME_MAX + 1])
{
	enum auth_result r = auth_check(keys,
	    http_req_header(req, "Authorization"), digest, client);

	if (r == AUTH_OK)
		return true;
	atomic_fetch_add_explicit(&gw->unauthorized, 1, memory_order_relaxed);
	http_respond_error(req, HTTP_UNAUTHORIZED, auth_result_reason(r));
	return false;
}

/* Answer 429, to come back in wait seconds; counted in *counter. */
static bool
gw_limited(struct http_request *req, int wait, atomic_uint_fast64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	http_req_retry_after(req, wait);
	http_respond_error(req, HTTP_TOO_MANY_REQUESTS, "rate limit exceeded");
	return false;
}

/* The keys path takes: the admin endpoints', else the API's. */
static struct auth *
gw_keys_for(struct gateway *gw, const char *path)
{
	if (strcmp(path, "/metrics") == 0 ||
	    strcmp(path, "/api/v1/status") == 0)
		return gw->admin_keys;
	return gw->api_keys;
}

static bool gw_admin_key(struct gateway *gw, struct http_request *req);

/*
 * Every request's head but GET /health's, before its body is read or takes
 * any memory, else it has been answered: within its address's rate (before
 * the key, so that guessing keys is slowed too; a wrong key costs a second
 * token), with a key when the path takes one, within that key's rate. A
 * lookup takes an admin key too, which reads every client's. The body
 * memory is then shared out by key, else by address.
 */
static bool
gw_head(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	const char *path = http_req_path(req);
	struct auth *keys = gw_keys_for(gw, path);
	unsigned char addr[16], digest[AUTH_DIGEST_LEN];
	size_t n = http_req_client_addr(req, addr);
	int wait;

	if (strcmp(path, "/health") == 0)
		return true;
	if (gw->by_addr != NULL && n > 0 && (wait = rate_limiter_take(
	    gw->by_addr, addr, n, clock_now_ns())) > 0)
		return gw_limited(req, wait, &gw->limited_by_addr);
	if (keys == NULL)
		return true;
	if (keys == gw->api_keys && strncmp(path, "/api/v1/messages/",
	    strlen("/api/v1/messages/")) == 0 && gw_admin_key(gw, req))
		return true;
	if (!gw_authorized(gw, keys, req, digest, NULL)) {
		if (gw->by_addr != NULL && n > 0)
			(void)rate_limiter_take(gw->by_addr, addr, n,
			    clock_now_ns());
		return false;
	}
	if (gw->by_key != NULL && (wait = rate_limiter_take(gw->by_key,
	    digest, sizeof(digest), clock_now_ns())) > 0)
		return gw_limited(req, wait, &gw->limited_by_key);
	http_req_set_client(req, digest, sizeof(digest));
	return true;
}

/*
 * Whether an API request may go on, else it has been answered. Its head
 * passed gw_head, rate limits and key; the key is looked up again for the
 * handler, as a reload may have dropped it since, and names the client:
 * into client, "" without API_KEYS_FILE.
 */
static bool
gw_admit(struct gateway *gw, struct http_request *req,
    char client[AUTH_NAME_MAX + 1])
{
	unsigned char digest[AUTH_DIGEST_LEN];

	client[0] = '\0';
	return gw->api_keys == NULL ||
	    gw_authorized(gw, gw->api_keys, req, digest, client);
}

/* Whether req may read /metrics or the status, else it has been answered. */
static bool
gw_admin_admit(struct gateway *gw, struct http_request *req)
{
	unsigned char digest[AUTH_DIGEST_LEN];

	return gw->admin_keys == NULL ||
	    gw_authorized(gw, gw->admin_keys, req, digest, NULL);
}

static void
gw_ingest(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	size_t len;
	const char *body = http_req_body(req, &len);
	const char *key = http_req_header(req, "Idempotency-Key");
	char *copy, *lines = NULL, id[37], *cause = NULL;
	char client[AUTH_NAME_MAX + 1];

	if (!gw_admit(gw, req, client))
		return;
	/* a bad key is the first hop's 400, and no header to pass on */
	if (key != NULL && message_id_for_key(key, id, &cause) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST, cause != NULL ?
		    cause : "bad Idempotency-Key");
		free(cause);
		return;
	}
	if (key == NULL && gw->fwd != NULL && forward_batch_fits(body, len)) {
		forward_batch_add(gw->fwd, req, body, len, client);
		return;
	}
	xasprintf(&lines, "%s%s%s%s%s", key != NULL ? "Idempotency-Key: " : "",
	    key != NULL ? key : "", key != NULL ? "\n" : "",
	    *client != '\0' ? CLIENT_HEADER ": " : "", client);
	copy = xmalloc(len + 1);
	memcpy(copy, body, len + 1);
	http_client_request_with(gw->hc, gw->ingest_url, *lines != '\0' ?
	    lines : NULL, copy, len, forward_relay_reply, req);
	free(lines);
}

/* The header line that names client to the next hop; NULL: no client. */
static char *
client_line(const char *client)
{
	char *line = NULL;

	if (*client != '\0')
		xasprintf(&line, CLIENT_HEADER ": %s", client);
	return line;
}

/*
 * POST /api/v1/ingest/batch: admitted as one request (one token of the rate
 * limit, whatever it holds), then passed whole to ingest, which judges it.
 */
static void
gw_ingest_batch(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	size_t len;
	const char *body = http_req_body(req, &len);
	const char *ct = http_req_header(req, "Content-Type");
	static const char nd[] = "application/x-ndjson";
	char *copy, *line, client[AUTH_NAME_MAX + 1];

	if (!gw_admit(gw, req, client))
		return;
	copy = xmalloc(len + 1);
	memcpy(copy, body, len + 1);
	line = client_line(client);
	/* our client sends JSON's type: the format goes in the query */
	http_client_request_with(gw->hc, ct != NULL && strncasecmp(ct, nd,
	    sizeof(nd) - 1) == 0 ? gw->ingest_ndjson_url :
	    gw->ingest_batch_url, line, copy, len, forward_relay_reply, req);
	free(line);
}

/*
 * GET /api/v1/messages/{id} with several processors: each keeps its own
 * store, so all are asked at once and the first 200 is the answer. The
 * callbacks run on the loop that sent the requests: no lock is needed.
 */
struct lookup {
	struct http_request *req;	/* NULL once answered */
	size_t asked;
	size_t pending;			/* answers still to come */
	size_t not_found;		/* processors that answered 404 */
	size_t failed;			/* that gave no usable answer */
	char *why;			/* the first failure */
};

struct lookup_part {
	struct lookup *lk;
	const char *url;		/* the processor's, for the reason */
};

/* Neither a 200 nor a 404: remember the first for the 503's reason. */
static void
lookup_failed(struct lookup *lk, const char *url, const struct http_reply *r)
{
	lk->failed++;
	if (lk->why != NULL)
		return;
	if (r->status == 0)
		xasprintf(&lk->why, "%s: %s", url, r->error);
	else
		xasprintf(&lk->why, "%s: answered %d", url, r->status);
}

/* Every processor answered and none had the result. */
static void
lookup_answer(struct lookup *lk)
{
	char *why = NULL;

	if (lk->failed == 0) {
		http_respond_error(lk->req, HTTP_NOT_FOUND, "result not found");
		return;
	}
	/* a processor that did not answer may hold it: not a 404 */
	if (lk->not_found == 0)
		xasprintf(&why, "no processor could look the result up (%s)",
		    lk->why);
	else
		xasprintf(&why, "result not found on %zu of %zu processors; "
		    "%zu could not look it up and may hold it (%s)",
		    lk->not_found, lk->asked, lk->failed, lk->why);
	http_respond_error(lk->req, HTTP_UNAVAILABLE, why);
	free(why);
}

static void
lookup_part_done(void *arg, const struct http_reply *r)
{
	struct lookup_part *p = arg;
	struct lookup *lk = p->lk;

	if (r->status == HTTP_OK) {
		/* the first; another store's is the same message twice */
		if (lk->req != NULL)
			forward_relay_reply(lk->req, r);
		lk->req = NULL;
	} else if (r->status == HTTP_NOT_FOUND) {
		lk->not_found++;
	} else {
		lookup_failed(lk, p->url, r);
	}
	free(p);
	if (--lk->pending > 0)
		return;
	if (lk->req != NULL)
		lookup_answer(lk);
	free(lk->why);
	free(lk);
}

static void
lookup_start(struct gateway *gw, struct http_request *req, const char *id,
    const char *line)
{
	struct lookup *lk = xcalloc(1, sizeof(*lk));
	char *url;

	lk->req = req;
	lk->asked = lk->pending = gw->n_procs;
	for (size_t i = 0; i < gw->n_procs; i++) {
		struct lookup_part *p = xmalloc(sizeof(*p));

		*p = (struct lookup_part){ lk, gw->procs[i].url };
		xasprintf(&url, "%s%s", gw->procs[i].results_url, id);
		http_client_request_with(gw->hc, url, line, NULL, 0,
		    lookup_part_done, p);
		free(url);
	}
}

/* Whether req presents a key of ADMIN_KEYS_FILE, when that is set. */
static bool
gw_admin_key(struct gateway *gw, struct http_request *req)
{
	unsigned char digest[AUTH_DIGEST_LEN];

	return gw->admin_keys != NULL && auth_check(gw->admin_keys,
	    http_req_header(req, "Authorization"), digest, NULL) == AUTH_OK;
}

/*
 * Whether a lookup may go on, else it has been answered. With API keys, the
 * client it is for into client; an admin key, which is no API key, reads
 * every client's ("" into client); gw_head took the rate's tokens.
 */
static bool
gw_lookup_admit(struct gateway *gw, struct http_request *req,
    char client[AUTH_NAME_MAX + 1])
{
	unsigned char digest[AUTH_DIGEST_LEN];

	client[0] = '\0';
	if (gw->api_keys != NULL && gw->admin_keys != NULL &&
	    auth_check(gw->api_keys, http_req_header(req, "Authorization"),
	    digest, NULL) != AUTH_OK && gw_admin_key(gw, req))
		return true;
	return gw_admit(gw, req, client);
}

static void
gw_message(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	char *id, *url = NULL, *line, client[AUTH_NAME_MAX + 1];

	if (!gw_lookup_admit(gw, req, client))
		return;
	if ((id = http_path_escape(http_req_tail(req))) == NULL)
		xalloc_failed();
	/* a client sees its own messages only: the processor checks */
	line = client_line(client);
	if (gw->n_procs > 1) {
		lookup_start(gw, req, id, line);
	} else {
		/* one processor: its answer is the answer, whatever it is */
		xasprintf(&url, "%s%s", gw->procs[0].results_url, id);
		http_client_request_with(gw->hc, url, line, NULL, 0,
		    forward_relay_reply, req);
	}
	free(line);
	free(url);
	free(id);
}

/*
 * GET /api/v1/status gathers the health and stats of ingest and of each
 * processor; "processor" keeps its old shape as the sum of them all.
 */
struct status_call {
	struct http_request *req;
	size_t pending;
	struct json_object *out;
	struct json_object *procs;	/* out's "processors" array */
};

struct status_part {
	struct status_call *sc;
	struct json_object *svc;	/* the entry this answer fills */
	bool health;			/* the /health answer, else /stats */
};

/* Add the numbers of add into acc, key by key, into nested objects too. */
static void
stats_add(struct json_object *acc, struct json_object *add)
{
	struct json_object *copy;

	if (!json_object_is_type(add, json_type_object))
		return;
	json_object_object_foreach(add, key, val) {
		struct json_object *have = json_object_object_get(acc, key);

		if (have == NULL) {
			copy = NULL;
			if (json_object_deep_copy(val, &copy, NULL) != 0)
				xalloc_failed();
			json_object_object_add(acc, key, copy);
		} else if (json_object_is_type(have, json_type_int) &&
		    json_object_is_type(val, json_type_int)) {
			json_object_object_add(acc, key, json_object_new_int64(
			    json_object_get_int64(have) +
			    json_object_get_int64(val)));
		} else if (json_object_is_type(have, json_type_object)) {
			stats_add(have, val);
		}
	}
}

/* "processor": healthy when one is, its stats the sum of theirs. */
static void
status_sum(struct status_call *sc)
{
	struct json_object *sum = json_object_object_get(sc->out, "processor");
	struct json_object *stats = json_object_new_object();
	bool healthy = false;

	for (size_t i = 0; i < json_object_array_length(sc->procs); i++) {
		struct json_object *p = json_object_array_get_idx(sc->procs, i);

		healthy |= json_object_get_boolean(
		    json_object_object_get(p, "healthy"));
		stats_add(stats, json_object_object_get(p, "stats"));
	}
	json_object_object_add(sum, "healthy",
	    json_object_new_boolean(healthy));
	json_object_object_add(sum, "stats", stats);
}

static void
status_part_done(void *arg, const struct http_reply *r)
{
	struct status_part *p = arg;
	struct status_call *sc = p->sc;
	struct json_object *stats;
	size_t len;
	const char *s;

	/* callbacks run on the client's one thread: no lock needed */
	if (p->health) {
		json_object_object_add(p->svc, "healthy",
		    json_object_new_boolean(r->status == HTTP_OK));
	} else {
		stats = r->status == HTTP_OK ? json_tokener_parse(r->body) :
		    NULL;
		json_object_object_add(p->svc, "stats", stats != NULL ? stats :
		    json_object_new_object());
	}
	free(p);
	if (--sc->pending > 0)
		return;
	status_sum(sc);
	s = json_object_to_json_string_length(sc->out,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	http_respond(sc->req, HTTP_OK, xstrndup(s, len), len);
	json_object_put(sc->out);
	free(sc);
}

/* An entry with the keys in a fixed order, filled as the answers come. */
static struct json_object *
status_entry(const char *url)
{
	struct json_object *o = json_object_new_object();

	if (url != NULL)
		json_object_object_add(o, "url", json_object_new_string(url));
	json_object_object_add(o, "healthy", json_object_new_boolean(false));
	json_object_object_add(o, "stats", json_object_new_object());
	return o;
}

/* Ask url, and fill svc with the answer. */
static void
status_ask(struct gateway *gw, struct status_call *sc,
    struct json_object *svc, const char *url, bool health)
{
	struct status_part *p = xmalloc(sizeof(*p));

	*p = (struct status_part){ sc, svc, health };
	/* the status is served on the admin listener alone when there is one */
	http_client_request(gw->admin_hc != NULL ? gw->admin_hc : gw->hc, url,
	    NULL, 0, status_part_done, p);
}

static void
gw_status(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	struct status_call *sc;
	struct json_object *ingest;

	if (!gw_admin_admit(gw, req))
		return;
	sc = xcalloc(1, sizeof(*sc));
	ingest = status_entry(NULL);
	sc->req = req;
	sc->pending = 2 + 2 * gw->n_procs;
	sc->out = json_object_new_object();
	sc->procs = json_object_new_array();
	json_object_object_add(sc->out, "ingest", ingest);
	json_object_object_add(sc->out, "processor", status_entry(NULL));
	json_object_object_add(sc->out, "processors", sc->procs);
	for (size_t i = 0; i < gw->n_procs; i++)
		json_object_array_add(sc->procs,
		    status_entry(gw->procs[i].url));
	/* every entry exists before the first answer can come */
	status_ask(gw, sc, ingest, gw->ingest_health_url, true);
	status_ask(gw, sc, ingest, gw->ingest_stats_url, false);
	for (size_t i = 0; i < gw->n_procs; i++) {
		struct json_object *e = json_object_array_get_idx(sc->procs, i);

		status_ask(gw, sc, e, gw->procs[i].health_url, true);
		status_ask(gw, sc, e, gw->procs[i].stats_url, false);
	}
}

/*
 * The gateway's own health: it serves, whatever its next hops do, so that
 * a supervisor does not restart it for a processor's fault; those show in
 * /api/v1/status.
 */
static void
gw_health(struct http_request *req, void *ctx)
{
	(void)ctx;
	role_respond_health(req, !http_req_draining(req), "draining");
}

/* The gateway's own counters, for /metrics. */
static void
gw_write_metrics(FILE *out, void *ctx)
{
	struct gateway *gw = ctx;

	fprintf(out, "# HELP diplom_gateway_rate_limited_total API requests "
	    "answered 429, by the bucket that was empty: the client "
	    "address's or the API key's.\n"
	    "# TYPE diplom_gateway_rate_limited_total counter\n"
	    "diplom_gateway_rate_limited_total{by=\"address\"} %" PRIuFAST64
	    "\n"
	    "diplom_gateway_rate_limited_total{by=\"key\"} %" PRIuFAST64 "\n",
	    atomic_load(&gw->limited_by_addr),
	    atomic_load(&gw->limited_by_key));
	if (gw->fwd != NULL) {
		uint64_t batches, requests;

		forward_batch_counts(gw->fwd, &batches, &requests);
		role_metric(out, "diplom_gateway_forward_batches_total",
		    "counter", "Batches that carried single ingest requests "
		    "to ingest together (FORWARD_BATCH).", (double)batches);
		role_metric(out, "diplom_gateway_forward_batched_total",
		    "counter", "Single ingest requests that went to ingest in "
		    "such a batch, not alone.", (double)requests);
	}
	role_metric(out, "diplom_gateway_unauthorized_total", "counter",
	    "Requests answered 401, on the API and the admin endpoints: no "
	    "key, a malformed Authorization header or an unknown key.",
	    (double)atomic_load(&gw->unauthorized));
}

/*
 * The diplom_http_* series count the requests of the server that answers:
 * with ADMIN_LISTEN_ADDRESS, the admin listener's alone.
 */
static void
gw_metrics(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;

	if (!gw_admin_admit(gw, req))
		return;
	role_respond_metrics(req, gw->cfg, gw_write_metrics, gw);
}

/* Every endpoint on one port, without ADMIN_LISTEN_ADDRESS. */
static const struct http_route gw_routes[] = {
	{ "POST", "/api/v1/ingest", gw_ingest },
	{ "POST", "/api/v1/ingest/batch", gw_ingest_batch },
	{ "GET", "/api/v1/status", gw_status },
	{ "GET", "/api/v1/messages/", gw_message },
	{ "GET", "/health", gw_health },
	{ "GET", "/metrics", gw_metrics },
};

/* With ADMIN_LISTEN_ADDRESS: the API port, and the admin listener. */
static const struct http_route gw_api_routes[] = {
	{ "POST", "/api/v1/ingest", gw_ingest },
	{ "POST", "/api/v1/ingest/batch", gw_ingest_batch },
	{ "GET", "/api/v1/messages/", gw_message },
	{ "GET", "/health", gw_health },
};
static const struct http_route gw_admin_routes[] = {
	{ "GET", "/api/v1/status", gw_status },
	{ "GET", "/health", gw_health },
	{ "GET", "/metrics", gw_metrics },
};

#define N_ROUTES(r) (sizeof(r) / sizeof(*(r)))

static void
gw_free(struct gateway *gw)
{
	http_client_stop(gw->hc);
	http_client_stop(gw->admin_hc);
	forward_batch_free(gw->fwd);
	free(gw->ingest_url);
	free(gw->ingest_batch_url);
	free(gw->ingest_ndjson_url);
	free(gw->ingest_singles_url);
	free(gw->ingest_stats_url);
	free(gw->ingest_health_url);
	for (size_t i = 0; i < gw->n_procs; i++) {
		free(gw->procs[i].stats_url);
		free(gw->procs[i].health_url);
		free(gw->procs[i].results_url);
	}
	free(gw->procs);
	auth_close(gw->api_keys);
	auth_close(gw->admin_keys);
	rate_limiter_free(gw->by_addr);
	rate_limiter_free(gw->by_key);
	free(gw);
}

static void
gw_processors(struct gateway *gw, const struct config_url_list *urls)
{
	gw->n_procs = urls->n;
	gw->procs = xcalloc(urls->n, sizeof(*gw->procs));
	for (size_t i = 0; i < urls->n; i++) {
		struct gw_processor *p = &gw->procs[i];

		p->url = urls->urls[i];
		p->stats_url = role_join_url(p->url, "/stats");
		p->health_url = role_join_url(p->url, "/health");
		p->results_url = role_join_url(p->url, "/results/");
	}
}

/* Load a key file for option; logs how many keys, never one of them. */
static int
gw_keys_open(struct auth **keys, const char *option, const char *what,
    const char *path, char **cause)
{
	char *why = NULL;
	int rc;

	if ((rc = auth_open(keys, path, &why)) != 0) {
		xasprintf(cause, "%s: %s", option, why != NULL ? why :
		    "cannot load the keys");
		free(why);
		return rc;
	}
	log_info("%s: %zu from %s", what, auth_count(*keys), path);
	return 0;
}

/* The keys and rate limits of cfg. */
static int
gw_security(struct gateway *gw, const struct config *cfg, char **cause)
{
	int rc = 0;

	if (cfg->api_keys_file != NULL && (rc = gw_keys_open(&gw->api_keys,
	    "API_KEYS_FILE", "API keys", cfg->api_keys_file, cause)) != 0)
		return rc;
	if (cfg->admin_keys_file != NULL && (rc = gw_keys_open(
	    &gw->admin_keys, "ADMIN_KEYS_FILE", "admin keys",
	    cfg->admin_keys_file, cause)) != 0)
		return rc;
	if (cfg->rate_limit <= 0)
		return 0;
	if ((rc = rate_limiter_new(&gw->by_addr, cfg->rate_limit,
	    cfg->rate_burst, RATE_BUCKETS, cause)) != 0 ||
	    ((gw->api_keys != NULL || gw->admin_keys != NULL) &&
	    (rc = rate_limiter_new(&gw->by_key,
	    cfg->rate_limit, cfg->rate_burst, RATE_BUCKETS, cause)) != 0))
		return rc;
	log_info("rate limit: %" PRId64 " requests/s, bursts of %" PRId64
	    ", per client address%s", cfg->rate_limit, cfg->rate_burst > 0 ?
	    cfg->rate_burst : cfg->rate_limit, gw->by_key != NULL ?
	    " and per key" : "");
	return 0;
}

/* The API port, and the admin listener when there is one. */
static int
gw_listen(struct gateway *gw, const struct config *cfg, const char *what,
    char **cause)
{
	int rc;

	if (cfg->admin_listen_address == NULL)
		return role_serve_admit(cfg, gw_routes, N_ROUTES(gw_routes),
		    gw, gw_head, (size_t)cfg->max_body_bytes, what, &gw->srv,
		    cause);
	/* the admin listener first: a bad address fails the start early */
	if ((rc = http_client_start(&gw->admin_hc, HOP_TIMEOUT_MS,
	    cause)) != 0 ||
	    (rc = role_serve_extra(cfg, "ADMIN_LISTEN_ADDRESS",
	    cfg->admin_listen_address, "admin endpoints", gw_admin_routes,
	    N_ROUTES(gw_admin_routes), gw, gw_head, ADMIN_MAX_BODY,
	    &gw->admin_srv, cause)) != 0)
		return rc;
	return role_serve_admit(cfg, gw_api_routes, N_ROUTES(gw_api_routes),
	    gw, gw_head, (size_t)cfg->max_body_bytes, what, &gw->srv, cause);
}

/*
 * FORWARD_BATCH: single requests carried to ingest together, as NDJSON
 * batches of singles that ingest takes within its MAX_BATCH and
 * MAX_BODY_BYTES (the same settings, as the package runs the roles).
 */
static int
gw_forward_batch(struct gateway *gw, const struct config *cfg, char **cause)
{
	struct forward_batch_opts o = {
		.hc = gw->hc,
		.single_url = gw->ingest_url,
		.batch_url = gw->ingest_singles_url,
		.max_items = (size_t)(cfg->forward_batch < cfg->max_batch ?
		    cfg->forward_batch : cfg->max_batch),
		.max_bytes = (size_t)cfg->max_body_bytes,
		.client_header = CLIENT_HEADER,
	};

	if (o.max_items < 2)
		return 0;
	return forward_batch_new(&gw->fwd, &o, cause);
}

static int
gw_start(const struct config *cfg, void **state, char **cause)
{
	struct gateway *gw = xcalloc(1, sizeof(*gw));
	char *what = NULL;
	int rc;

	gw->cfg = cfg;
	gw->ingest_url = role_join_url(cfg->ingest_url, "/ingest");
	gw->ingest_batch_url = role_join_url(cfg->ingest_url, "/ingest/batch");
	gw->ingest_ndjson_url = role_join_url(cfg->ingest_url,
	    "/ingest/batch?format=ndjson");
	gw->ingest_singles_url = role_join_url(cfg->ingest_url,
	    "/ingest/batch?format=ndjson&items=single");
	gw->ingest_stats_url = role_join_url(cfg->ingest_url, "/stats");
	gw->ingest_health_url = role_join_url(cfg->ingest_url, "/health");
	gw_processors(gw, &cfg->processor_url);
	xasprintf(&what, "ingest at %s, %s at %s", cfg->ingest_url,
	    gw->n_procs > 1 ? "processors" : "processor",
	    cfg->processor_url.text);
	if ((rc = gw_security(gw, cfg, cause)) != 0 ||
	    (rc = role_client_start(cfg, HOP_TIMEOUT_MS, &gw->hc,
	    cause)) != 0 ||
	    (rc = gw_forward_batch(gw, cfg, cause)) != 0 ||
	    (rc = gw_listen(gw, cfg, what, cause)) != 0)
		goto out;
	*state = gw;
out:
	free(what);
	if (rc != 0) {
		/* the API port's server is the last started: never left */
		http_server_stop(gw->admin_srv);
		gw_free(gw);
	}
	return rc;
}

static int
gw_stop(void *state, int64_t timeout_ms)
{
	struct gateway *gw = state;
	int64_t until = clock_now_ms() + timeout_ms;

	/* both drain at once; the admin listener gets what time is left */
	if (gw->admin_srv != NULL)
		http_server_drain(gw->admin_srv);
	if (role_drain(gw->srv, timeout_ms) != 0)
		return 1;
	if (gw->admin_srv != NULL && role_drain(gw->admin_srv,
	    until > clock_now_ms() ? until - clock_now_ms() : 0) != 0)
		return 1;
	http_server_stop(gw->srv);
	http_server_stop(gw->admin_srv);
	gw_free(gw);
	return 0;
}

/* Read one key file again; logs the count, never a key. */
static int
gw_keys_reload(struct auth *keys, const char *option, const char *what,
    char **cause)
{
	char *why = NULL;
	int rc;

	if (keys == NULL)
		return 0;
	if ((rc = auth_reload(keys, &why)) != 0) {
		xasprintf(cause, "%s: %s (the %s loaded before stay in use)",
		    option, why != NULL ? why : "cannot load the keys", what);
		free(why);
		return rc;
	}
	log_info("%s: %zu from %s", what, auth_count(keys), auth_path(keys));
	return 0;
}

/*
 * The first failure of n, with every cause joined by "; " into *cause;
 * frees the causes.
 */
static int
gw_join_causes(const int *rc, char **why, size_t n, char **cause)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		if (rc[i] == 0)
			continue;
		if (first == 0) {
			first = rc[i];
			*cause = why[i];
			why[i] = NULL;
		} else {
			char *both = NULL;

			xasprintf(&both, "%s; %s", *cause, why[i] != NULL ?
			    why[i] : "unknown error");
			free(*cause);
			*cause = both;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(why[i]);
	return first;
}

/*
 * SIGHUP: the key files and the certificates again; each that fails keeps
 * what it had.
 */
static int
gw_reload(void *state, char **cause)
{
	struct gateway *gw = state;
	char *why[4] = { NULL, NULL, NULL, NULL };
	int rc[4];

	/* each part on its own: one bad file does not keep the others old */
	rc[0] = gw_keys_reload(gw->api_keys, "API_KEYS_FILE", "API keys",
	    &why[0]);
	rc[1] = gw_keys_reload(gw->admin_keys, "ADMIN_KEYS_FILE", "admin keys",
	    &why[1]);
	rc[2] = http_server_reload_tls(gw->srv, &why[2]);
	rc[3] = gw->admin_srv != NULL ?
	    http_server_reload_tls(gw->admin_srv, &why[3]) : 0;
	return gw_join_causes(rc, why, 4, cause);
}

/* The watchdog pings the API port's loops (role.c); these are the admin's. */
static void
gw_ping(void *state)
{
	struct gateway *gw = state;

	if (gw->admin_srv != NULL)
		http_server_ping(gw->admin_srv);
}

static bool
gw_answered(void *state)
{
	struct gateway *gw = state;

	return gw->admin_srv == NULL || http_server_answered(gw->admin_srv);
}

const struct role_ops role_gateway_ops = {
	.name = "gateway",
	.start = gw_start,
	.stop = gw_stop,
	.ping = gw_ping,
	.answered = gw_answered,
	.reload = gw_reload,
};

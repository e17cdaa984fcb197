/* role_gateway.c - the public API: forwards to ingest and the processor */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "http_client.h"
#include "log.h"
#include "message.h"
#include "role.h"
#include "xmalloc.h"

/* Bound on one hop to ingest or the processor. */
#define HOP_TIMEOUT_MS 10000

struct gateway {
	const struct config *cfg;
	struct http_server *srv;
	struct http_client *hc;
	char *ingest_url;		/* .../ingest */
	char *ingest_stats_url;
	char *ingest_health_url;
	char *proc_stats_url;
	char *proc_health_url;
	char *results_url;		/* .../results/ */
};

/* Pass the next hop's answer back as it is; no answer is a 503. */
static void
relay_reply(void *arg, const struct http_reply *r)
{
	struct http_request *req = arg;
	char why[160], *copy;

	if (r->status == 0) {
		snprintf(why, sizeof(why), "upstream unavailable: %s",
		    r->error);
		http_respond_error(req, HTTP_UNAVAILABLE, why);
		return;
	}
	/* a copy of all r->len bytes: the body may hold a NUL */
	copy = xmalloc(r->len + 1);
	memcpy(copy, r->body, r->len);
	copy[r->len] = '\0';
	http_respond(req, r->status, copy, r->len);
}

static void
gw_ingest(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	size_t len;
	const char *body = http_req_body(req, &len);
	const char *key = http_req_header(req, "Idempotency-Key");
	char *copy, *line = NULL, id[37], *cause = NULL;

	/* a bad key is the first hop's 400, and no header to pass on */
	if (key != NULL && message_id_for_key(key, id, &cause) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST, cause != NULL ?
		    cause : "bad Idempotency-Key");
		free(cause);
		return;
	}
	if (key != NULL)
		xasprintf(&line, "Idempotency-Key: %s", key);
	copy = xmalloc(len + 1);
	memcpy(copy, body, len + 1);
	http_client_request_with(gw->hc, gw->ingest_url, line, copy, len,
	    relay_reply, req);
	free(line);
}

static void
gw_message(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	char *id = http_path_escape(http_req_tail(req)), *url = NULL;

	if (id == NULL)
		xalloc_failed();
	xasprintf(&url, "%s%s", gw->results_url, id);
	http_client_request(gw->hc, url, NULL, 0, relay_reply, req);
	free(url);
	free(id);
}

/* GET /api/v1/status gathers four answers; the client runs them in turn. */
struct status_call {
	struct http_request *req;
	int pending;
	struct json_object *out;
};

struct status_part {
	struct status_call *sc;
	const char *service;
	bool health;		/* the /health answer, else /stats */
};

static void
status_part_done(void *arg, const struct http_reply *r)
{
	struct status_part *p = arg;
	struct status_call *sc = p->sc;
	struct json_object *svc, *stats;
	size_t len;
	const char *s;

	/* callbacks run on the client's one thread: no lock needed */
	svc = json_object_object_get(sc->out, p->service);
	if (p->health) {
		json_object_object_add(svc, "healthy",
		    json_object_new_boolean(r->status == HTTP_OK));
	} else {
		stats = r->status == HTTP_OK ? json_tokener_parse(r->body) :
		    NULL;
		json_object_object_add(svc, "stats", stats != NULL ? stats :
		    json_object_new_object());
	}
	free(p);
	if (--sc->pending > 0)
		return;
	s = json_object_to_json_string_length(sc->out,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	http_respond(sc->req, HTTP_OK, xstrndup(s, len), len);
	json_object_put(sc->out);
	free(sc);
}

static void
gw_status(struct http_request *req, void *ctx)
{
	struct gateway *gw = ctx;
	struct status_call *sc = xcalloc(1, sizeof(*sc));
	const struct {
		const char *service;
		const char *url;
		bool health;
	} parts[] = {
		{ "ingest", gw->ingest_health_url, true },
		{ "ingest", gw->ingest_stats_url, false },
		{ "processor", gw->proc_health_url, true },
		{ "processor", gw->proc_stats_url, false },
	};

	sc->req = req;
	sc->pending = 4;
	sc->out = json_object_new_object();
	json_object_object_add(sc->out, "ingest", json_object_new_object());
	json_object_object_add(sc->out, "processor", json_object_new_object());
	for (size_t i = 0; i < 4; i++) {
		struct status_part *p = xmalloc(sizeof(*p));

		*p = (struct status_part){ sc, parts[i].service,
			parts[i].health };
		http_client_request(gw->hc, parts[i].url, NULL, 0,
		    status_part_done, p);
	}
}

static void
gw_health(struct http_request *req, void *ctx)
{
	(void)ctx;
	role_respond_health(req, !http_req_draining(req), "draining");
}

static void
gw_metrics(struct http_request *req, void *ctx)
{
	(void)ctx;
	role_respond_metrics(req, NULL, NULL);
}

static const struct http_route gw_routes[] = {
	{ "POST", "/api/v1/ingest", gw_ingest },
	{ "GET", "/api/v1/status", gw_status },
	{ "GET", "/api/v1/messages/", gw_message },
	{ "GET", "/health", gw_health },
	{ "GET", "/metrics", gw_metrics },
};

static void
gw_free(struct gateway *gw)
{
	http_client_stop(gw->hc);
	free(gw->ingest_url);
	free(gw->ingest_stats_url);
	free(gw->ingest_health_url);
	free(gw->proc_stats_url);
	free(gw->proc_health_url);
	free(gw->results_url);
	free(gw);
}

static int
gw_start(const struct config *cfg, void **state, char **cause)
{
	struct gateway *gw = xcalloc(1, sizeof(*gw));
	/* a list is parsed; the lookup across several comes later */
	const char *proc = cfg->processor_url.urls[0];
	char *what = NULL;
	int rc;

	gw->cfg = cfg;
	gw->ingest_url = role_join_url(cfg->ingest_url, "/ingest");
	gw->ingest_stats_url = role_join_url(cfg->ingest_url, "/stats");
	gw->ingest_health_url = role_join_url(cfg->ingest_url, "/health");
	gw->proc_stats_url = role_join_url(proc, "/stats");
	gw->proc_health_url = role_join_url(proc, "/health");
	gw->results_url = role_join_url(proc, "/results/");
	xasprintf(&what, "ingest at %s, processor at %s", cfg->ingest_url,
	    proc);
	if ((rc = http_client_start(&gw->hc, HOP_TIMEOUT_MS, cause)) != 0 ||
	    (rc = role_serve(cfg, gw_routes, sizeof(gw_routes) /
	    sizeof(*gw_routes), gw, (size_t)cfg->max_body_bytes, what,
	    &gw->srv, cause)) != 0)
		goto out;
	*state = gw;
out:
	free(what);
	if (rc != 0)
		gw_free(gw);
	return rc;
}

static int
gw_stop(void *state, int64_t timeout_ms)
{
	struct gateway *gw = state;

	if (role_drain(gw->srv, timeout_ms) != 0)
		return 1;
	http_server_stop(gw->srv);
	gw_free(gw);
	return 0;
}

const struct role_ops role_gateway_ops = {
	.name = "gateway",
	.start = gw_start,
	.stop = gw_stop,
};

/* ctl/ctl.c - diplomctl's settings and its commands but switch */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "clock.h"
#include "ctl/client.h"
#include "ctl/ctl.h"
#include "ctl/status.h"

/* The environment over the default file, as a config_lookup_fn. */
static const char *
lookup(void *ctx, const char *name)
{
	const struct ctl *c = ctx;
	const char *v = getenv(name);

	if (v != NULL && *v != '\0')
		return v;
	return c->have_file ? ctl_defaults_get(&c->defaults, name) : NULL;
}

char *
ctl_gateway_url(const char *addr, int port)
{
	char *url;

	/* a wildcard address is reached on loopback */
	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	else if (strcmp(addr, "::") == 0)
		addr = "::1";
	if (asprintf(&url, strchr(addr, ':') != NULL ? "http://[%s]:%d" :
	    "http://%s:%d", addr, port) < 0)
		return NULL;
	return url;
}

/* The gateway's URL with https. */
static int
https_gateway(struct ctl *c)
{
	char *u;

	if (asprintf(&u, "https%s", c->gateway_url + strlen("http")) < 0)
		return CTL_UNWELL;
	free(c->gateway_url);
	c->gateway_url = u;
	return CTL_OK;
}

int
ctl_setup(struct ctl *c, const struct ctl_opts *o, const char *default_file,
    char **cause)
{
	int rc;

	memset(c, 0, sizeof(*c));
	*cause = NULL;
	c->o = o;
	c->file = o->config != NULL ? o->config : default_file;
	rc = ctl_defaults_read(&c->defaults, c->file, cause);
	if (rc == 0) {
		c->have_file = true;
	} else if (rc == -ENOENT && o->config == NULL) {
		/* no package here: the environment and the options alone */
		free(*cause);
		*cause = NULL;
	} else {
		return CTL_USAGE;
	}
	if (config_load(&c->cfg, lookup, c, cause) != 0)
		return CTL_USAGE;
	for (int i = 0; i < o->n_settings; i++) {
		if (config_set(&c->cfg, o->settings[i].name,
		    o->settings[i].value, cause) != 0)
			return CTL_USAGE;
	}
	if ((c->gateway_url = ctl_gateway_url(c->cfg.listen_address,
	    c->cfg.api_port)) == NULL) {
		*cause = strdup("out of memory");
		return CTL_UNWELL;
	}
	/* the roles serve HTTPS when the settings give them a certificate */
	if (c->cfg.tls_cert_file != NULL && (rc = https_gateway(c)) != CTL_OK) {
		*cause = strdup("out of memory");
		return rc;
	}
	ctl_http_setup(c->cfg.internal_token, c->cfg.tls_ca_file,
	    c->gateway_url);
	return CTL_OK;
}

void
ctl_teardown(struct ctl *c)
{
	ctl_http_cleanup();
	config_free(&c->cfg);
	ctl_defaults_free(&c->defaults);
	free(c->gateway_url);
}

/* Print obj as the one JSON document of the run. */
static void
print_json(struct json_object *obj)
{
	printf("%s\n", json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Unix seconds as local time, "2026-01-02 15:04:05". */
static const char *
when(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

/* "/results/<id>" and the like, with the id escaped for a path. */
static char *
id_path(const char *prefix, const char *id)
{
	char *esc = curl_easy_escape(NULL, id, 0), *p = NULL;

	if (esc == NULL || asprintf(&p, "%s%s", prefix, esc) < 0)
		p = NULL;
	curl_free(esc);
	return p;
}

int
ctl_status(struct ctl *c)
{
	struct ctl_status st;
	int rc;

	ctl_status_gather(c, c->o->interval_ms, &st);
	rc = st.healthy ? CTL_OK : CTL_UNWELL;
	if (c->o->json) {
		struct json_object *obj = ctl_status_json(&st);

		print_json(obj);
		json_object_put(obj);
	} else {
		ctl_status_print(stdout, &st);
	}
	ctl_status_free(&st);
	return rc;
}

int
ctl_show(struct ctl *c)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	const char *id = c->o->args[0], *url = NULL;
	struct ctl_reply r = { 0 }, got = { 0 };
	char why[300], at[32], *path = id_path("/results/", id);
	const char *err;
	size_t unasked = 0;
	int rc;

	if (path == NULL)
		return CTL_UNWELL;
	/* the first processor that has it; another may hold it meanwhile */
	for (size_t i = 0; i < procs->n && url == NULL; i++) {
		if (ctl_http("GET", procs->urls[i], path, &r) != 0 ||
		    (r.status != 200 && r.status != 404)) {
			fprintf(stderr, "diplomctl: processor %s: %s\n",
			    procs->urls[i], ctl_reply_reason(&r, why,
			    sizeof(why)));
			unasked++;
		} else if (r.status == 200 && r.json != NULL) {
			url = procs->urls[i];
			got = r;
			continue;
		}
		ctl_reply_free(&r);
	}
	free(path);
	if (url == NULL) {
		if (unasked == 0)
			fprintf(stderr, "diplomctl: message %s: not found (not "
			    "processed yet, or unknown)\n", id);
		else
			fprintf(stderr, "diplomctl: message %s: not found by "
			    "the processors that answered; %zu did not\n",
			    id, unasked);
		return CTL_UNWELL;
	}
	json_object_object_add(got.json, "state", json_object_new_string(
	    json_object_get_boolean(json_object_object_get(got.json,
	    "success")) ? "processed" : "failed"));
	json_object_object_add(got.json, "processor",
	    json_object_new_string(url));
	rc = strcmp(ctl_json_str(got.json, "state"), "processed") == 0 ?
	    CTL_OK : CTL_UNWELL;
	if (c->o->json) {
		print_json(got.json);
	} else {
		err = ctl_json_str(got.json, "error");
		printf("message     %s\n", id);
		/* the API key's client that sent it; none: single-tenant */
		if (ctl_json_str(got.json, "client") != NULL)
			printf("client      %s\n", ctl_json_str(got.json,
			    "client"));
		printf("state       %s\n", ctl_json_str(got.json, "state"));
		printf("processed   %s\n", when(ctl_json_int(got.json,
		    "processed_at", 0), at, sizeof(at)));
		printf("deliveries  %jd\n", (intmax_t)ctl_json_int(got.json,
		    "deliveries", 0));
		if (err != NULL && *err != '\0')
			printf("error       %s\n", err);
		if (rc == CTL_OK)
			printf("result      %s%s\n", ctl_json_str(got.json,
			    "result"), ctl_json_str(got.json,
			    "result_encoding") != NULL ? " (base64)" : "");
		printf("processor   %s\n", url);
	}
	ctl_reply_free(&got);
	return rc;
}

/* One failed message, and the processor that holds it. */
struct failed_row {
	struct json_object *o;		/* borrowed from its listing */
	const char *processor;
};

static int
newest_first(const void *a, const void *b)
{
	int64_t ta = ctl_json_int(((const struct failed_row *)a)->o,
	    "processed_at", 0);
	int64_t tb = ctl_json_int(((const struct failed_row *)b)->o,
	    "processed_at", 0);

	return ta < tb ? 1 : ta > tb ? -1 : 0;
}

/*
 * Every processor's failed messages of the last since_ms (-1: all), at
 * most limit of each, newest first into *rows (their listings in lists).
 * Returns how many processors could not be asked.
 */
static size_t
list_failed(struct ctl *c, int64_t since_ms, int64_t limit,
    struct json_object **lists, struct failed_row **rows, size_t *n)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	int64_t since = since_ms < 0 ? 0 :
	    (int64_t)time(NULL) - since_ms / 1000;
	struct ctl_reply r;
	struct json_object *a;
	size_t unasked = 0;
	char path[96], why[300];

	*rows = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/failed?since=%jd&limit=%jd",
	    (intmax_t)(since > 0 ? since : 0), (intmax_t)limit);
	for (size_t i = 0; i < procs->n; i++) {
		lists[i] = NULL;
		if (ctl_http("GET", procs->urls[i], path, &r) != 0 ||
		    r.status != 200 || !json_object_object_get_ex(r.json,
		    "failed", &a)) {
			fprintf(stderr, "diplomctl: processor %s: %s\n",
			    procs->urls[i], ctl_reply_reason(&r, why,
			    sizeof(why)));
			ctl_reply_free(&r);
			unasked++;
			continue;
		}
		lists[i] = r.json;
		*rows = realloc(*rows, (*n + json_object_array_length(a)) *
		    sizeof(**rows) + 1);
		if (*rows == NULL)
			abort();
		for (size_t k = 0; k < json_object_array_length(a); k++)
			(*rows)[(*n)++] = (struct failed_row){
				json_object_array_get_idx(a, k),
				procs->urls[i] };
	}
	if (*n > 0)
		qsort(*rows, *n, sizeof(**rows), newest_first);
	return unasked;
}

static void
free_lists(struct json_object **lists, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_put(lists[i]);
}

int
ctl_failed(struct ctl *c)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	struct json_object *lists[CONFIG_MAX_URLS], *out, *a;
	struct failed_row *rows;
	size_t n, unasked;
	char at[32];

	unasked = list_failed(c, c->o->since_ms, c->o->limit, lists, &rows,
	    &n);
	if (n > (size_t)c->o->limit)
		n = (size_t)c->o->limit;
	if (c->o->json) {
		out = json_object_new_object();
		a = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			json_object_object_add(rows[i].o, "processor",
			    json_object_new_string(rows[i].processor));
			json_object_array_add(a, json_object_get(rows[i].o));
		}
		json_object_object_add(out, "failed", a);
		print_json(out);
		json_object_put(out);
	} else if (n == 0) {
		printf("no failed messages%s\n", c->o->since_ms >= 0 ?
		    " in that time" : "");
	} else {
		printf("%-19s  %-36s  %10s  %-10s  %s\n", "FAILED AT",
		    "MESSAGE ID", "DELIVERIES", "REPLAYABLE", "ERROR");
		for (size_t i = 0; i < n; i++) {
			struct json_object *o = rows[i].o;

			printf("%-19s  %-36s  %10jd  %-10s  %s", when(
			    ctl_json_int(o, "processed_at", 0), at,
			    sizeof(at)), ctl_json_str(o, "message_id"),
			    (intmax_t)ctl_json_int(o, "deliveries", 0),
			    json_object_get_boolean(json_object_object_get(o,
			    "kept")) ? "yes" : "no", ctl_json_str(o,
			    "error"));
			if (procs->n > 1)
				printf("  (%s)", rows[i].processor);
			printf("\n");
		}
	}
	free(rows);
	free_lists(lists, procs->n);
	return unasked == 0 ? CTL_OK : CTL_UNWELL;
}

/* What became of one replay. */
enum replay_outcome { REPLAYED, REFUSED, NOT_FOUND, ERROR };

/*
 * Replay id at the processor url, or (url NULL) at the first processor
 * that holds it; why says why not.
 */
static enum replay_outcome
replay_one(struct ctl *c, const char *url, const char *id, char *why,
    size_t len)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	enum replay_outcome out = NOT_FOUND;
	struct ctl_reply r;
	char *path = id_path("/replay/", id), buf[300];

	snprintf(why, len, "no processor has a result for it");
	if (path == NULL)
		return ERROR;
	for (size_t i = 0; i < procs->n && out == NOT_FOUND; i++) {
		if (url != NULL && strcmp(url, procs->urls[i]) != 0)
			continue;
		ctl_http("POST", procs->urls[i], path, &r);
		if (r.status == 202) {
			out = REPLAYED;
		} else if (r.status != 404) {
			out = r.status == 409 ? REFUSED : ERROR;
			snprintf(why, len, "%s", ctl_reply_reason(&r, buf,
			    sizeof(buf)));
		}
		ctl_reply_free(&r);
	}
	free(path);
	return out;
}

int
ctl_replay(struct ctl *c)
{
	static const char *const names[] = { "replayed", "refused",
		"not found", "error" };
	const struct config_url_list *procs = &c->cfg.processor_url;
	struct json_object *lists[CONFIG_MAX_URLS] = { 0 };
	struct json_object *out = json_object_new_object(), *a[4];
	struct failed_row *rows = NULL;
	size_t n = 0, unasked = 0, bad = 0;
	char why[300];

	for (int k = 0; k < 4; k++)
		a[k] = json_object_new_array();
	if (c->o->all_failed)
		unasked = list_failed(c, c->o->since_ms, CTL_MAX_LIMIT, lists,
		    &rows, &n);
	for (size_t i = 0; i < (c->o->all_failed ? n : (size_t)c->o->nargs);
	    i++) {
		const char *id = c->o->all_failed ? ctl_json_str(rows[i].o,
		    "message_id") : c->o->args[i];
		enum replay_outcome r = replay_one(c, c->o->all_failed ?
		    rows[i].processor : NULL, id, why, sizeof(why));
		struct json_object *e = json_object_new_object();

		/* a listed message that cannot be replayed is skipped */
		if (r == ERROR || (r != REPLAYED && !c->o->all_failed))
			bad++;
		json_object_object_add(e, "message_id",
		    json_object_new_string(id));
		if (r != REPLAYED)
			json_object_object_add(e, "reason",
			    json_object_new_string(why));
		json_object_array_add(a[r], e);
		if (!c->o->json && (r == REPLAYED || r == NOT_FOUND))
			printf("%s: %s\n", id, names[r]);
		else if (!c->o->json)
			printf("%s: %s: %s\n", id, c->o->all_failed &&
			    r == REFUSED ? "skipped" : names[r], why);
	}
	if (c->o->all_failed && n == CTL_MAX_LIMIT)
		fprintf(stderr, "diplomctl: a processor listed %d failed "
		    "messages, the most it lists: run again for more\n",
		    CTL_MAX_LIMIT);
	if (c->o->json) {
		json_object_object_add(out, "replayed", a[REPLAYED]);
		json_object_object_add(out, "refused", a[REFUSED]);
		json_object_object_add(out, "not_found", a[NOT_FOUND]);
		json_object_object_add(out, "errors", a[ERROR]);
		print_json(out);
	} else {
		if (c->o->all_failed && n == 0)
			printf("no failed messages to replay\n");
		for (int k = 0; k < 4; k++)
			json_object_put(a[k]);
	}
	json_object_put(out);
	free(rows);
	free_lists(lists, procs->n);
	return bad == 0 && unasked == 0 ? CTL_OK : CTL_UNWELL;
}

/* POST /admin/<what> at ingest; its answer in *r. */
static int
ingest_admin(struct ctl *c, const char *what, struct ctl_reply *r)
{
	char path[32], why[300];

	snprintf(path, sizeof(path), "/admin/%s", what);
	if (ctl_http("POST", c->cfg.ingest_url, path, r) != 0 ||
	    r->status != 200) {
		fprintf(stderr, "diplomctl: ingest %s: %s\n",
		    c->cfg.ingest_url, ctl_reply_reason(r, why, sizeof(why)));
		ctl_reply_free(r);
		return -EIO;
	}
	return 0;
}

/* Wait until ingest has nothing in flight, up to deadline_ms. */
static int
wait_in_flight(struct ctl *c, int64_t deadline_ms)
{
	struct ctl_reply r;
	int64_t n = -1;

	while (clock_now_ms() < deadline_ms) {
		if (ctl_http("GET", c->cfg.ingest_url, "/admin", &r) == 0 &&
		    r.status == 200)
			n = ctl_json_int(r.json, "in_flight", -1);
		ctl_reply_free(&r);
		if (n == 0)
			return 0;
		clock_sleep_ms(100);
	}
	return -ETIMEDOUT;
}

int
ctl_drain(struct ctl *c)
{
	int64_t deadline = clock_now_ms() + c->o->timeout_ms, backlog = -1;
	struct json_object *out;
	struct ctl_reply r;
	int rc;

	if (ingest_admin(c, "drain", &r) != 0)
		return CTL_UNWELL;
	ctl_reply_free(&r);
	fprintf(stderr, "drain: ingest refuses new messages; waiting for "
	    "the backlog to reach 0\n");
	rc = wait_in_flight(c, deadline);
	if (rc == 0)
		rc = ctl_wait_drained(c, deadline, &backlog);
	if (c->o->json) {
		out = json_object_new_object();
		json_object_object_add(out, "drained",
		    json_object_new_boolean(rc == 0));
		json_object_object_add(out, "accepting",
		    json_object_new_boolean(0));
		json_object_object_add(out, "backlog", backlog >= 0 ?
		    json_object_new_int64(backlog) : NULL);
		print_json(out);
		json_object_put(out);
	} else if (rc == 0) {
		printf("drained: ingest refuses new messages, backlog 0 "
		    "(diplomctl resume takes them again)\n");
	} else {
		printf("not drained within %.1f s (backlog %jd, -1: "
		    "unknown); ingest still refuses new messages\n",
		    (double)c->o->timeout_ms / 1000, (intmax_t)backlog);
	}
	return rc == 0 ? CTL_OK : CTL_UNWELL;
}

int
ctl_resume(struct ctl *c)
{
	struct ctl_reply r;

	if (ingest_admin(c, "resume", &r) != 0)
		return CTL_UNWELL;
	if (c->o->json)
		print_json(r.json);
	else
		printf("ingest takes messages again\n");
	ctl_reply_free(&r);
	return CTL_OK;
}

/* ctl/status.c - ask every role how it stands; print it as a table */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "queue.h"
#include "ctl/client.h"
#include "ctl/status.h"

/* GET /health: healthy, or why not. */
static void
ask_health(struct ctl_role *r)
{
	struct ctl_reply rep;
	char why[300];

	ctl_http("GET", r->url, "/health", &rep);
	r->healthy = rep.status == 200;
	if (!r->healthy)
		snprintf(r->reason, sizeof(r->reason), "%s",
		    ctl_reply_reason(&rep, why, sizeof(why)));
	ctl_reply_free(&rep);
}

/* GET /admin: the backend, and what else the role says there. */
static void
ask_admin(struct ctl_role *r)
{
	struct ctl_reply rep;
	struct json_object *res;
	const char *b;

	if (ctl_http("GET", r->url, "/admin", &rep) == 0 &&
	    rep.status == 200) {
		if ((b = ctl_json_str(rep.json, "backend")) != NULL)
			snprintf(r->backend, sizeof(r->backend), "%s", b);
		r->accepting = json_object_get_boolean(json_object_object_get(
		    rep.json, "accepting"));
		if (json_object_object_get_ex(rep.json, "results", &res)) {
			r->rows = ctl_json_int(res, "rows", -1);
			r->failed_rows = ctl_json_int(res, "failed", -1);
			r->bytes = ctl_json_int(res, "bytes", -1);
		}
	}
	ctl_reply_free(&rep);
}

/* GET /stats: the role's counters, and a processor's backlog. */
static void
ask_counts(struct ctl_role *r, struct ctl_count *done,
    struct ctl_count *failed)
{
	struct ctl_reply rep;
	struct json_object *q, *p;

	done->n = failed->n = -1;
	if (ctl_http("GET", r->url, "/stats", &rep) != 0 ||
	    rep.status != 200) {
		ctl_reply_free(&rep);
		return;
	}
	if (strcmp(r->role, "ingest") == 0) {
		done->n = ctl_json_int(rep.json, "TotalSent", -1);
		failed->n = ctl_json_int(rep.json, "TotalFailed", -1);
	} else if (json_object_object_get_ex(rep.json, "queue", &q) &&
	    json_object_object_get_ex(rep.json, "pool", &p)) {
		r->backlog = ctl_json_int(q, "CurrentSize", -1);
		done->n = ctl_json_int(p, "ProcessedCount", -1);
		failed->n = ctl_json_int(p, "ErrorCount", -1);
	}
	ctl_reply_free(&rep);
}

/* The rate of a count from two samples interval_ms apart. */
static void
rate_of(struct ctl_count *c, const struct ctl_count *before,
    int64_t interval_ms)
{
	c->rate = -1;
	if (c->n >= 0 && before->n >= 0 && interval_ms > 0)
		c->rate = (double)(c->n - before->n) * 1000 /
		    (double)interval_ms;
}

/* The roles' backend, "mixed: ..." when they disagree. */
static void
agree_backend(struct ctl_status *st)
{
	const char *first = NULL;
	bool mixed = false;
	size_t used = 0;

	for (size_t i = 1; i < st->n; i++) {
		if (st->roles[i].backend[0] == '\0')
			continue;
		if (first == NULL)
			first = st->roles[i].backend;
		else if (strcmp(first, st->roles[i].backend) != 0)
			mixed = true;
	}
	st->backend[0] = '\0';
	if (!mixed) {
		snprintf(st->backend, sizeof(st->backend), "%s",
		    first != NULL ? first : "");
		return;
	}
	used = (size_t)snprintf(st->backend, sizeof(st->backend), "mixed:");
	for (size_t i = 1; i < st->n && used < sizeof(st->backend); i++)
		used += (size_t)snprintf(st->backend + used,
		    sizeof(st->backend) - used, " %s %s", st->roles[i].role,
		    st->roles[i].backend[0] != '\0' ? st->roles[i].backend :
		    "?");
}

void
ctl_status_gather(struct ctl *c, int64_t interval_ms, struct ctl_status *st)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	struct ctl_count before[2 * (CONFIG_MAX_URLS + 2)];
	bool shared = false;
	int64_t t0, t1;

	memset(st, 0, sizeof(*st));
	st->n = 2 + procs->n;
	if ((st->roles = calloc(st->n, sizeof(*st->roles))) == NULL)
		abort();
	st->roles[0] = (struct ctl_role){ .role = "gateway",
		.url = c->gateway_url };
	st->roles[1] = (struct ctl_role){ .role = "ingest",
		.url = c->cfg.ingest_url };
	for (size_t i = 0; i < procs->n; i++)
		st->roles[2 + i] = (struct ctl_role){ .role = "processor",
			.url = procs->urls[i] };
	for (size_t i = 0; i < st->n; i++) {
		struct ctl_role *r = &st->roles[i];

		r->backlog = r->rows = r->failed_rows = r->bytes = -1;
		r->done.n = r->failed.n = -1;
		r->done.rate = r->failed.rate = -1;
		ask_health(r);
		if (i > 0)
			ask_admin(r);
	}
	t0 = clock_now_ms();
	for (size_t i = 1; i < st->n && interval_ms > 0; i++)
		ask_counts(&st->roles[i], &before[2 * i], &before[2 * i + 1]);
	if (interval_ms > 0)
		clock_sleep_ms(interval_ms);
	t1 = clock_now_ms();
	for (size_t i = 1; i < st->n; i++) {
		struct ctl_role *r = &st->roles[i];

		ask_counts(r, &r->done, &r->failed);
		if (interval_ms > 0) {
			rate_of(&r->done, &before[2 * i], t1 - t0);
			rate_of(&r->failed, &before[2 * i + 1], t1 - t0);
		}
	}
	st->rates = interval_ms > 0;
	st->healthy = true;
	for (size_t i = 0; i < st->n; i++)
		st->healthy = st->healthy && st->roles[i].healthy;
	agree_backend(st);
	for (size_t i = 2; i < st->n; i++)
		shared = shared || (st->roles[i].backend[0] != '\0' &&
		    !queue_in_processor(st->roles[i].backend));
	/* a shared backend's backlog is the same seen from each processor */
	for (size_t i = 2; i < st->n; i++) {
		int64_t b = st->roles[i].backlog;

		if (b < 0) {
			st->backlog = -1;
			break;
		}
		st->backlog = shared ? (b > st->backlog ? b : st->backlog) :
		    st->backlog + b;
	}
}

void
ctl_status_free(struct ctl_status *st)
{
	free(st->roles);
	st->roles = NULL;
}

/* The sum of one count over the roles called role; -1 if one is unknown. */
static struct ctl_count
total(const struct ctl_status *st, const char *role, bool failed)
{
	struct ctl_count t = { 0, 0 };

	for (size_t i = 0; i < st->n; i++) {
		const struct ctl_role *r = &st->roles[i];
		const struct ctl_count *c = failed ? &r->failed : &r->done;

		if (strcmp(r->role, role) != 0)
			continue;
		if (c->n < 0 || t.n < 0) {
			t.n = -1;
		} else {
			t.n += c->n;
		}
		t.rate = c->rate < 0 || t.rate < 0 ? -1 : t.rate + c->rate;
	}
	return t;
}

/* "1200 (35.0/s)", "1200", or "?" */
static const char *
count_text(struct ctl_count c, bool rates, char *buf, size_t len)
{
	if (c.n < 0)
		snprintf(buf, len, "?");
	else if (rates && c.rate >= 0)
		snprintf(buf, len, "%jd (%.1f/s)", (intmax_t)c.n, c.rate);
	else
		snprintf(buf, len, "%jd", (intmax_t)c.n);
	return buf;
}

/* Bytes as a person reads them: "512 B", "1.2 MiB". */
static const char *
bytes_text(int64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
		"TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(*units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%jd B", (intmax_t)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

void
ctl_status_print(FILE *out, const struct ctl_status *st)
{
	struct ctl_count c;
	int64_t rows = 0, failed = 0, bytes = 0;
	size_t w = 3;
	char buf[64];

	for (size_t i = 0; i < st->n; i++)
		w = strlen(st->roles[i].url) > w ? strlen(st->roles[i].url) :
		    w;
	fprintf(out, "%-10s %-*s  %s\n", "ROLE", (int)w, "URL", "HEALTH");
	for (size_t i = 0; i < st->n; i++) {
		const struct ctl_role *r = &st->roles[i];

		fprintf(out, "%-10s %-*s  %s%s%s\n", r->role, (int)w, r->url,
		    r->healthy ? "healthy" : "UNHEALTHY",
		    r->healthy ? "" : ": ", r->healthy ? "" : r->reason);
	}
	fprintf(out, "\n%-10s %s\n", "backend", st->backend[0] != '\0' ?
	    st->backend : "?");
	if (st->backlog >= 0)
		fprintf(out, "%-10s %jd\n", "backlog", (intmax_t)st->backlog);
	else
		fprintf(out, "%-10s ?\n", "backlog");
	c = total(st, "ingest", false);
	fprintf(out, "%-10s %s\n", "accepted", count_text(c, st->rates, buf,
	    sizeof(buf)));
	c = total(st, "ingest", true);
	fprintf(out, "%-10s %s\n", "refused", count_text(c, st->rates, buf,
	    sizeof(buf)));
	c = total(st, "processor", false);
	fprintf(out, "%-10s %s\n", "processed", count_text(c, st->rates, buf,
	    sizeof(buf)));
	c = total(st, "processor", true);
	fprintf(out, "%-10s %s\n", "failed", count_text(c, st->rates, buf,
	    sizeof(buf)));
	for (size_t i = 2; i < st->n; i++) {
		const struct ctl_role *r = &st->roles[i];

		if (r->rows < 0 || rows < 0) {
			rows = -1;
			continue;
		}
		rows += r->rows;
		failed += r->failed_rows;
		bytes += r->bytes;
	}
	if (rows >= 0)
		fprintf(out, "%-10s %jd rows, %jd failed, %s\n", "results",
		    (intmax_t)rows, (intmax_t)failed, bytes_text(bytes, buf,
		    sizeof(buf)));
	else
		fprintf(out, "%-10s ?\n", "results");
}

/* A count as JSON: the number, or null when unknown. */
static struct json_object *
json_count(int64_t n)
{
	return n >= 0 ? json_object_new_int64(n) : NULL;
}

static struct json_object *
json_rate(const struct ctl_count *c, bool rates)
{
	return rates && c->rate >= 0 ? json_object_new_double(c->rate) : NULL;
}

struct json_object *
ctl_status_json(const struct ctl_status *st)
{
	struct json_object *o = json_object_new_object();
	struct json_object *roles = json_object_new_array(), *r, *res;
	static const struct {
		const char *key, *role;
		bool failed;
	} totals[] = { { "accepted", "ingest", false },
		{ "refused", "ingest", true },
		{ "processed", "processor", false },
		{ "failed", "processor", true } };
	struct json_object *rates = json_object_new_object();

	json_object_object_add(o, "healthy",
	    json_object_new_boolean(st->healthy));
	json_object_object_add(o, "backend", st->backend[0] != '\0' ?
	    json_object_new_string(st->backend) : NULL);
	json_object_object_add(o, "backlog", json_count(st->backlog));
	for (size_t k = 0; k < sizeof(totals) / sizeof(*totals); k++) {
		struct ctl_count c = total(st, totals[k].role,
		    totals[k].failed);

		json_object_object_add(o, totals[k].key, json_count(c.n));
		json_object_object_add(rates, totals[k].key,
		    json_rate(&c, st->rates));
	}
	json_object_object_add(o, "rates", rates);
	for (size_t i = 0; i < st->n; i++) {
		const struct ctl_role *x = &st->roles[i];
		bool ing = strcmp(x->role, "ingest") == 0;

		r = json_object_new_object();
		json_object_object_add(r, "role",
		    json_object_new_string(x->role));
		json_object_object_add(r, "url", json_object_new_string(x->url));
		json_object_object_add(r, "healthy",
		    json_object_new_boolean(x->healthy));
		json_object_object_add(r, "reason", x->healthy ? NULL :
		    json_object_new_string(x->reason));
		if (i > 0) {
			json_object_object_add(r, "backend",
			    x->backend[0] != '\0' ?
			    json_object_new_string(x->backend) : NULL);
			json_object_object_add(r, ing ? "accepted" :
			    "processed", json_count(x->done.n));
			json_object_object_add(r, ing ? "refused" : "failed",
			    json_count(x->failed.n));
		}
		if (ing)
			json_object_object_add(r, "accepting",
			    json_object_new_boolean(x->accepting));
		if (i > 1) {
			json_object_object_add(r, "backlog",
			    json_count(x->backlog));
			res = json_object_new_object();
			json_object_object_add(res, "rows", json_count(x->rows));
			json_object_object_add(res, "failed",
			    json_count(x->failed_rows));
			json_object_object_add(res, "bytes",
			    json_count(x->bytes));
			json_object_object_add(r, "results", res);
		}
		json_object_array_add(roles, r);
	}
	json_object_object_add(o, "roles", roles);
	return o;
}

int64_t
ctl_backlog(struct ctl *c, int64_t *done)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	int64_t backlog = 0, b;
	bool shared = !queue_in_processor(c->cfg.queue_type);
	struct ctl_reply r;
	struct json_object *q, *p;

	*done = 0;
	for (size_t i = 0; i < procs->n; i++) {
		b = -1;
		if (ctl_http("GET", procs->urls[i], "/stats", &r) == 0 &&
		    r.status == 200 &&
		    json_object_object_get_ex(r.json, "queue", &q) &&
		    json_object_object_get_ex(r.json, "pool", &p)) {
			b = ctl_json_int(q, "CurrentSize", -1);
			*done += ctl_json_int(p, "ProcessedCount", 0) +
			    ctl_json_int(p, "ErrorCount", 0);
		}
		ctl_reply_free(&r);
		if (b < 0)
			return -1;
		backlog = shared ? (b > backlog ? b : backlog) : backlog + b;
	}
	return backlog;
}

int
ctl_wait_drained(struct ctl *c, int64_t deadline_ms, int64_t *backlog)
{
	int64_t done, last = -1;
	int calm = 0;

	while (clock_now_ms() < deadline_ms) {
		*backlog = ctl_backlog(c, &done);
		if (*backlog == 0 && done == last) {
			if (++calm >= 5)
				return 0;
		} else {
			calm = 0;
		}
		last = done;
		clock_sleep_ms(200);
	}
	return -ETIMEDOUT;
}

/* role_ingest.c - stamps messages and hands them to the queue backend */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "http_client.h"
#include "log.h"
#include "queue.h"
#include "role.h"
#include "xmalloc.h"

/* Bound on the hop to the processor's /enqueue. */
#define ENQUEUE_TIMEOUT_MS 5000

struct ingest {
	const struct config *cfg;
	struct http_server *srv;
	struct http_client *hc;		/* memory backend: via the processor */
	struct queue *q;		/* other backends: straight to them */
	char **enqueue_urls;		/* each processor's /enqueue */
	size_t n_enqueue;
	struct metadata_limits limits;
	atomic_uint_fast64_t received, sent, failed;
	atomic_uint_fast64_t next;	/* round robin over enqueue_urls */
	atomic_uint_fast64_t failovers;	/* offers passed to the next one */
	/* POST /admin/drain: new messages are refused until /admin/resume */
	atomic_bool paused;
	atomic_int_fast64_t in_flight;	/* messages taken, not yet answered */
};

/* Why ingest refuses messages while paused, and its /health says so. */
#define PAUSED_REASON "draining for maintenance"

/* One message on its way; answered when the backend holds it. */
struct ingest_call {
	struct ingest *in;
	struct http_request *req;
	char *body;			/* memory: the encoded message */
	size_t len;
	size_t first;			/* the processor its round began at */
	size_t tried;			/* processors offered it so far */
	char id[64];
};

static void
accepted(struct ingest_call *c)
{
	char *body;
	int n;

	atomic_fetch_add(&c->in->sent, 1);
	atomic_fetch_sub(&c->in->in_flight, 1);
	n = xasprintf(&body,
	    "{\"message_id\":\"%s\",\"status\":\"accepted\"}", c->id);
	http_respond(c->req, HTTP_OK, body, (size_t)n);
	free(c->body);
	free(c);
}

static void
refused(struct ingest_call *c, int status, const char *why)
{
	atomic_fetch_add(&c->in->failed, 1);
	atomic_fetch_sub(&c->in->in_flight, 1);
	http_respond_error(c->req, status, why);
	free(c->body);
	free(c);
}

static void on_enqueued(void *arg, const struct http_reply *r);

/* Offer the message to the next processor of its round. */
static void
enqueue_next(struct ingest_call *c)
{
	struct ingest *in = c->in;
	size_t i = (c->first + c->tried++) % in->n_enqueue;
	char *body;

	/* the client takes the body: keep ours while another may need it */
	if (c->tried < in->n_enqueue) {
		body = xmalloc(c->len + 1);
		memcpy(body, c->body, c->len);
		body[c->len] = '\0';
	} else {
		body = c->body;
		c->body = NULL;
	}
	http_client_request(in->hc, in->enqueue_urls[i], body, c->len,
	    on_enqueued, c);
}

/* The processor offered the message last, as configured. */
static const char *
last_tried(const struct ingest_call *c)
{
	size_t i = (c->first + c->tried - 1) % c->in->n_enqueue;

	return c->in->cfg->processor_url.urls[i];
}

/* Why the processor offered the message last did not take it. */
static void
enqueue_reason(const struct ingest_call *c, const struct http_reply *r,
    char *why, size_t size)
{
	struct ingest *in = c->in;
	struct json_object *o;
	const char *err;
	char what[200];

	if (r->status == 0) {
		snprintf(what, sizeof(what), "processor unavailable: %s",
		    r->error);
	} else {
		o = json_tokener_parse(r->body);
		err = json_object_get_string(json_object_object_get(o,
		    "error"));
		snprintf(what, sizeof(what), "%s", err != NULL ? err :
		    "processor refused the message");
		json_object_put(o);
	}
	if (in->n_enqueue == 1)
		snprintf(why, size, "%s", what);
	else
		snprintf(why, size, "%s (%zu of %zu processors tried, the "
		    "last %s)", what, c->tried, in->n_enqueue,
		    last_tried(c));
}

/*
 * The processor's answer to /enqueue. One that is full, draining or
 * unreachable passes the message on to the next, until each was offered
 * it once; an answer that ends with a timeout may mean the first one
 * queued it too, which is the at-least-once a client's retry also has.
 */
static void
on_enqueued(void *arg, const struct http_reply *r)
{
	struct ingest_call *c = arg;
	bool busy = r->status == 0 || r->status == HTTP_UNAVAILABLE;
	char why[400];

	if (r->status == HTTP_ACCEPTED) {
		accepted(c);
		return;
	}
	if (busy && c->tried < c->in->n_enqueue) {
		atomic_fetch_add(&c->in->failovers, 1);
		log_debug("message %s: %s answered %d, trying the next "
		    "processor", c->id, last_tried(c), r->status);
		enqueue_next(c);
		return;
	}
	enqueue_reason(c, r, why, sizeof(why));
	/* full or draining is the client's 503; anything else is our fault */
	refused(c, busy ? HTTP_UNAVAILABLE : HTTP_BAD_GATEWAY, why);
}

/* The backend's answer to a publish. */
static void
on_published(void *arg, int status, const char *reason)
{
	struct ingest_call *c = arg;
	char why[200];

	if (status == 0) {
		accepted(c);
		return;
	}
	if (status == QUEUE_EFULL) {
		refused(c, HTTP_UNAVAILABLE, "Queue is full");
		return;
	}
	snprintf(why, sizeof(why), "queue backend unavailable: %s",
	    reason != NULL ? reason : "error");
	refused(c, HTTP_UNAVAILABLE, why);
}

static void
in_ingest(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	struct data_message *msg;
	struct ingest_call *c;
	char *cause = NULL, keyed_id[37];
	size_t len;
	const char *raw = http_req_body(req, &len);
	const char *key = http_req_header(req, "Idempotency-Key");

	if (atomic_load(&in->paused)) {
		http_respond_error(req, HTTP_UNAVAILABLE, PAUSED_REASON);
		return;
	}
	/* a retry with the same key gets the same id: one row, one message */
	if (key != NULL && message_id_for_key(key, keyed_id, &cause) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST, cause != NULL ?
		    cause : "bad Idempotency-Key");
		free(cause);
		return;
	}
	if (message_from_ingest_request(raw, len, &in->limits, &msg,
	    &cause) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST,
		    cause != NULL ? cause : "invalid request");
		free(cause);
		return;
	}
	if (key != NULL)
		memcpy(msg->id, keyed_id, sizeof(keyed_id));
	atomic_fetch_add(&in->received, 1);
	atomic_fetch_add(&in->in_flight, 1);
	c = xcalloc(1, sizeof(*c));
	c->in = in;
	c->req = req;
	snprintf(c->id, sizeof(c->id), "%s", msg->id);
	if (in->q != NULL) {
		queue_publish(in->q, msg, on_published, c);
		return;
	}
	c->body = message_encode(msg, &c->len);
	message_free(msg);
	if (c->body == NULL) {
		refused(c, HTTP_INTERNAL_ERROR, "cannot encode the message");
		return;
	}
	/* spread the messages: each round starts one processor further */
	c->first = (size_t)(atomic_fetch_add(&in->next, 1) % in->n_enqueue);
	enqueue_next(c);
}

static void
in_stats(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	char *body;
	int n;

	n = xasprintf(&body, "{\"TotalReceived\":%ju,\"TotalSent\":%ju,"
	    "\"TotalFailed\":%ju}", (uintmax_t)atomic_load(&in->received),
	    (uintmax_t)atomic_load(&in->sent),
	    (uintmax_t)atomic_load(&in->failed));
	http_respond(req, HTTP_OK, body, (size_t)n);
}

static void
in_health(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	struct queue_stats st = { .healthy = true };

	if (http_req_draining(req)) {
		role_respond_health(req, false, "draining");
		return;
	}
	if (atomic_load(&in->paused)) {
		role_respond_health(req, false, PAUSED_REASON);
		return;
	}
	if (in->q != NULL)
		queue_stats(in->q, &st);
	role_respond_health(req, st.healthy, st.reason);
}

/* {"role", "backend", "accepting", "in_flight"}, for GET and POST /admin. */
static void
respond_admin(struct http_request *req, struct ingest *in)
{
	char *body;
	int n;

	n = xasprintf(&body, "{\"role\":\"ingest\",\"backend\":\"%s\","
	    "\"accepting\":%s,\"in_flight\":%jd}", in->cfg->queue_type,
	    atomic_load(&in->paused) ? "false" : "true",
	    (intmax_t)atomic_load(&in->in_flight));
	http_respond(req, HTTP_OK, body, (size_t)n);
}

static void
in_admin(struct http_request *req, void *ctx)
{
	respond_admin(req, ctx);
}

/*
 * POST /admin/drain: refuse new messages (503) for maintenance, without
 * stopping; what is in flight still goes on. diplomctl drain then waits
 * for in_flight and the processors' backlog to reach 0.
 */
static void
in_pause(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;

	if (!atomic_exchange(&in->paused, true))
		log_info("%s: new messages are refused until POST "
		    "/admin/resume", PAUSED_REASON);
	respond_admin(req, in);
}

/* POST /admin/resume: take messages again. */
static void
in_resume(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;

	if (atomic_exchange(&in->paused, false))
		log_info("resumed: taking messages again");
	respond_admin(req, in);
}

static void
in_write_metrics(FILE *out, void *ctx)
{
	struct ingest *in = ctx;
	struct queue_stats st = { .healthy = true };

	role_metric(out, "diplom_ingest_received_total", "counter",
	    "Valid messages received.", (double)atomic_load(&in->received));
	role_metric(out, "diplom_ingest_accepted_total", "counter",
	    "Messages the backend holds (answered 200).",
	    (double)atomic_load(&in->sent));
	role_metric(out, "diplom_ingest_failed_total", "counter",
	    "Messages the backend did not take.",
	    (double)atomic_load(&in->failed));
	if (in->q == NULL) {
		role_metric(out, "diplom_ingest_failovers_total", "counter",
		    "Messages a processor did not take, offered to the next.",
		    (double)atomic_load(&in->failovers));
		return;
	}
	queue_stats(in->q, &st);
	role_metric(out, "diplom_backend_healthy", "gauge",
	    "1 while the queue backend is reachable.", st.healthy);
	role_metric(out, "diplom_queue_depth", "gauge",
	    "Messages in the backend not yet done.",
	    (double)st.current_size);
	queue_write_histograms(in->q, out);
}

static void
in_metrics(struct http_request *req, void *ctx)
{
	const struct ingest *in = ctx;

	role_respond_metrics(req, in->cfg, in_write_metrics, ctx);
}

static const struct http_route in_routes[] = {
	{ "POST", "/ingest", in_ingest },
	{ "GET", "/stats", in_stats },
	{ "GET", "/health", in_health },
	{ "GET", "/metrics", in_metrics },
	{ "GET", "/admin", in_admin },
	{ "POST", "/admin/drain", in_pause },
	{ "POST", "/admin/resume", in_resume },
};

static void
in_free(struct ingest *in)
{
	http_client_stop(in->hc);
	queue_close(in->q);
	for (size_t i = 0; i < in->n_enqueue; i++)
		free(in->enqueue_urls[i]);
	free(in->enqueue_urls);
	free(in);
}

static int
in_start(const struct config *cfg, void **state, char **cause)
{
	struct ingest *in = xcalloc(1, sizeof(*in));
	char *what = NULL;
	int rc;

	in->cfg = cfg;
	in->n_enqueue = cfg->processor_url.n;
	in->enqueue_urls = xcalloc(in->n_enqueue, sizeof(*in->enqueue_urls));
	for (size_t i = 0; i < in->n_enqueue; i++)
		in->enqueue_urls[i] = role_join_url(cfg->processor_url.urls[i],
		    "/enqueue");
	in->limits = (struct metadata_limits){
		.max_keys = (size_t)cfg->max_metadata_keys,
		.max_key_bytes = (size_t)cfg->max_metadata_key_bytes,
		.max_value_bytes = (size_t)cfg->max_metadata_value_bytes,
	};
	/*
	 * A backend inside the processor is reached over HTTP; any other is
	 * shared, so publish to it directly.
	 */
	if (queue_in_processor(cfg->queue_type)) {
		rc = role_client_start(cfg, ENQUEUE_TIMEOUT_MS, &in->hc,
		    cause);
		if (in->n_enqueue == 1)
			xasprintf(&what, "queue %s via %s", cfg->queue_type,
			    in->enqueue_urls[0]);
		else
			xasprintf(&what, "queue %s via %zu processors, round "
			    "robin: %s", cfg->queue_type, in->n_enqueue,
			    cfg->processor_url.text);
	} else {
		rc = queue_open(cfg->queue_type, cfg, &in->q, cause);
		xasprintf(&what, "queue %s", cfg->queue_type);
	}
	if (rc != 0 || (rc = role_serve(cfg, in_routes, sizeof(in_routes) /
	    sizeof(*in_routes), in, (size_t)cfg->max_body_bytes, what,
	    &in->srv, cause)) != 0)
		goto out;
	*state = in;
out:
	free(what);
	if (rc != 0)
		in_free(in);
	return rc;
}

static int
in_stop(void *state, int64_t timeout_ms)
{
	struct ingest *in = state;

	if (role_drain(in->srv, timeout_ms) != 0)
		return 1;
	http_server_stop(in->srv);
	in_free(in);
	return 0;
}

/* SIGHUP: the listener's certificate and key. */
static int
in_reload(void *state, char **cause)
{
	struct ingest *in = state;

	return http_server_reload_tls(in->srv, cause);
}

const struct role_ops role_ingest_ops = {
	.name = "ingest",
	.start = in_start,
	.stop = in_stop,
	.reload = in_reload,
};

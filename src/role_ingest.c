/* role_ingest.c - stamps messages and hands them to the queue backend */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "http_client.h"
#include "log.h"
#include "queue.h"
#include "role.h"

/* Bound on the hop to the processor's /enqueue. */
#define ENQUEUE_TIMEOUT_MS 5000

struct ingest {
	const struct config *cfg;
	struct http_server *srv;
	struct http_client *hc;		/* memory backend: via the processor */
	struct queue *q;		/* other backends: straight to them */
	char *enqueue_url;
	atomic_uint_fast64_t received, sent, failed;
};

/* One message on its way; answered when the backend holds it. */
struct ingest_call {
	struct ingest *in;
	struct http_request *req;
	char id[64];
};

static void
accepted(struct ingest_call *c)
{
	char *body;
	int n;

	atomic_fetch_add(&c->in->sent, 1);
	n = asprintf(&body, "{\"message_id\":\"%s\",\"status\":\"accepted\"}",
	    c->id);
	if (n < 0)
		http_respond_error(c->req, 500, "out of memory");
	else
		http_respond(c->req, 200, body, (size_t)n);
	free(c);
}

static void
refused(struct ingest_call *c, int status, const char *why)
{
	atomic_fetch_add(&c->in->failed, 1);
	http_respond_error(c->req, status, why);
	free(c);
}

/* The processor's answer to /enqueue. */
static void
on_enqueued(void *arg, const struct http_reply *r)
{
	struct ingest_call *c = arg;
	struct json_object *o;
	char why[200];

	if (r->status == 202) {
		accepted(c);
		return;
	}
	if (r->status == 0) {
		snprintf(why, sizeof(why), "processor unavailable: %s",
		    r->error);
		refused(c, MHD_HTTP_SERVICE_UNAVAILABLE, why);
		return;
	}
	o = json_tokener_parse(r->body);
	snprintf(why, sizeof(why), "%s", o != NULL &&
	    json_object_get_string(json_object_object_get(o, "error")) ?
	    json_object_get_string(json_object_object_get(o, "error")) :
	    "processor refused the message");
	json_object_put(o);
	/* full or draining is the client's 503; anything else is our fault */
	refused(c, r->status == 503 ? 503 : MHD_HTTP_BAD_GATEWAY, why);
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
		refused(c, MHD_HTTP_SERVICE_UNAVAILABLE, "Queue is full");
		return;
	}
	snprintf(why, sizeof(why), "queue backend unavailable: %s",
	    reason != NULL ? reason : "error");
	refused(c, MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

static void
in_ingest(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	struct data_message *msg;
	struct ingest_call *c;
	char *cause = NULL, *body;
	size_t len;
	const char *raw = http_req_body(req, &len);

	if (message_from_ingest_request(raw, len, &msg, &cause) != 0) {
		http_respond_error(req, MHD_HTTP_BAD_REQUEST,
		    cause != NULL ? cause : "invalid request");
		free(cause);
		return;
	}
	atomic_fetch_add(&in->received, 1);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		message_free(msg);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	c->in = in;
	c->req = req;
	snprintf(c->id, sizeof(c->id), "%s", msg->id);
	if (in->q != NULL) {
		in->q->ops->publish(in->q, msg, on_published, c);
		return;
	}
	body = message_encode(msg, &len);
	message_free(msg);
	if (body == NULL) {
		refused(c, 500, "out of memory");
		return;
	}
	http_client_request(in->hc, in->enqueue_url, body, len, on_enqueued,
	    c);
}

static void
in_stats(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	char *body;
	int n;

	n = asprintf(&body, "{\"TotalReceived\":%ju,\"TotalSent\":%ju,"
	    "\"TotalFailed\":%ju}", (uintmax_t)atomic_load(&in->received),
	    (uintmax_t)atomic_load(&in->sent),
	    (uintmax_t)atomic_load(&in->failed));
	if (n < 0)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond(req, 200, body, (size_t)n);
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
	if (in->q != NULL)
		in->q->ops->stats(in->q, &st);
	role_respond_health(req, st.healthy, st.reason);
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
	if (in->q == NULL)
		return;
	in->q->ops->stats(in->q, &st);
	role_metric(out, "diplom_backend_healthy", "gauge",
	    "1 while the queue backend is reachable.", st.healthy);
	role_metric(out, "diplom_queue_depth", "gauge",
	    "Messages in the backend not yet done.",
	    (double)st.current_size);
}

static void
in_metrics(struct http_request *req, void *ctx)
{
	role_respond_metrics(req, in_write_metrics, ctx);
}

static const struct http_route in_routes[] = {
	{ "POST", "/ingest", in_ingest },
	{ "GET", "/stats", in_stats },
	{ "GET", "/health", in_health },
	{ "GET", "/metrics", in_metrics },
};

static void
in_free(struct ingest *in)
{
	free(in->enqueue_url);
	free(in);
}

static int
in_start(const struct config *cfg, void **state, char **cause)
{
	struct ingest *in = calloc(1, sizeof(*in));
	const struct queue_ops *ops = queue_ops_lookup(cfg->queue_type);
	struct http_server_opts o = {
		.address = cfg->listen_address,
		.port = config_role_port(cfg),
		.max_body = (size_t)cfg->max_body_bytes,
		.routes = in_routes,
		.n_routes = sizeof(in_routes) / sizeof(*in_routes),
	};
	int rc;

	if (in == NULL)
		return -ENOMEM;
	in->cfg = cfg;
	in->enqueue_url = role_join_url(cfg->processor_url, "/enqueue");
	o.ctx = in;
	/*
	 * The memory backend lives inside the processor: reach it over HTTP.
	 * Any other backend is shared, so publish to it directly.
	 */
	if (ops == &queue_memory_ops)
		rc = http_client_start(&in->hc, ENQUEUE_TIMEOUT_MS, cause);
	else
		rc = ops->open(&in->q, cfg, cause);
	if (rc != 0)
		goto out;
	if ((rc = http_server_start(&in->srv, &o, cause)) != 0) {
		http_client_stop(in->hc);
		if (in->q != NULL)
			in->q->ops->close(in->q);
		goto out;
	}
	log_info("ingest listening on %s:%d, queue %s%s%s",
	    cfg->listen_address, o.port, cfg->queue_type,
	    in->hc != NULL ? " via " : "", in->hc != NULL ?
	    in->enqueue_url : "");
	*state = in;
out:
	if (rc != 0)
		in_free(in);
	return rc;
}

static int
in_stop(void *state, int64_t timeout_ms)
{
	struct ingest *in = state;

	http_server_drain(in->srv);
	if (http_server_wait_idle(in->srv, timeout_ms) != 0) {
		log_error("requests still in progress after the drain timeout");
		return 1;
	}
	http_server_stop(in->srv);
	http_client_stop(in->hc);
	if (in->q != NULL)
		in->q->ops->close(in->q);
	in_free(in);
	return 0;
}

const struct role_ops role_ingest_ops = {
	.name = "ingest",
	.start = in_start,
	.stop = in_stop,
};

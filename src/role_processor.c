/* role_processor.c - the worker pool, the result store and their API */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "queue.h"
#include "result_store.h"
#include "role.h"
#include "worker_pool.h"

struct processor {
	const struct config *cfg;
	struct http_server *srv;
	struct queue *q;
	struct result_store *rs;
	struct worker_pool *wp;
};

static void
on_enqueued(void *arg, int status, const char *reason)
{
	struct http_request *req = arg;
	char why[200];

	if (status == 0) {
		http_respond(req, MHD_HTTP_ACCEPTED,
		    strdup("{\"status\":\"queued\"}"), 19);
	} else if (status == QUEUE_EFULL) {
		http_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Queue is full");
	} else {
		snprintf(why, sizeof(why), "queue backend unavailable: %s",
		    reason != NULL ? reason : "error");
		http_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, why);
	}
}

static void
pr_enqueue(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct data_message *msg;
	char *cause = NULL;
	size_t len;
	const char *body = http_req_body(req, &len);

	if (message_decode(body, len, &msg, &cause) != 0) {
		http_respond_error(req, MHD_HTTP_BAD_REQUEST,
		    cause != NULL ? cause : "invalid message");
		free(cause);
		return;
	}
	pr->q->ops->publish(pr->q, msg, on_enqueued, req);
}

static void
pr_stats(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats qs;
	struct worker_pool_stats ps;
	char *body;
	int n;

	pr->q->ops->stats(pr->q, &qs);
	worker_pool_stats(pr->wp, &ps);
	n = asprintf(&body, "{\"queue\":{\"TotalEnqueued\":%ju,"
	    "\"TotalDequeued\":%ju,\"CurrentSize\":%jd},\"pool\":{"
	    "\"ProcessedCount\":%ju,\"ErrorCount\":%ju,\"TotalDuration\":%jd}}",
	    (uintmax_t)qs.enqueued, (uintmax_t)qs.dequeued,
	    (intmax_t)qs.current_size, (uintmax_t)ps.processed,
	    (uintmax_t)ps.errors, (intmax_t)ps.total_duration_ns);
	if (n < 0)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond(req, 200, body, (size_t)n);
}

static void
pr_result(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct processing_result res;
	char *body;
	size_t len;
	int rc;

	rc = result_store_get(pr->rs, http_req_tail(req), &res);
	if (rc == -ENOENT) {
		http_respond_error(req, MHD_HTTP_NOT_FOUND, "result not found");
		return;
	}
	if (rc != 0) {
		http_respond_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot read the result store");
		return;
	}
	body = result_to_json(&res, &len);
	result_clear(&res);
	if (body == NULL)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond(req, 200, body, len);
}

static void
pr_health(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats st;

	if (http_req_draining(req)) {
		role_respond_health(req, false, "draining");
		return;
	}
	pr->q->ops->stats(pr->q, &st);
	role_respond_health(req, st.healthy, st.reason);
}

static void
pr_write_metrics(FILE *out, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats qs;
	struct worker_pool_stats ps;

	pr->q->ops->stats(pr->q, &qs);
	worker_pool_stats(pr->wp, &ps);
	role_metric(out, "diplom_backend_healthy", "gauge",
	    "1 while the queue backend is reachable.", qs.healthy);
	role_metric(out, "diplom_queue_depth", "gauge",
	    "Messages waiting or in flight.", (double)qs.current_size);
	role_metric(out, "diplom_queue_enqueued_total", "counter",
	    "Messages this processor put into the backend.",
	    (double)qs.enqueued);
	role_metric(out, "diplom_queue_dequeued_total", "counter",
	    "Messages handed to the workers.", (double)qs.dequeued);
	role_metric(out, "diplom_messages_processed_total", "counter",
	    "Messages processed, committed and acknowledged.",
	    (double)ps.processed);
	role_metric(out, "diplom_messages_failed_total", "counter",
	    "Messages stored as failed and not delivered again.",
	    (double)ps.errors);
	role_metric(out, "diplom_messages_redelivered_total", "counter",
	    "Deliveries of a message delivered before.",
	    (double)qs.redelivered);
	role_metric(out, "diplom_processing_seconds_total", "counter",
	    "Time the workers spent processing.",
	    (double)ps.total_duration_ns / 1e9);
}

static void
pr_metrics(struct http_request *req, void *ctx)
{
	role_respond_metrics(req, pr_write_metrics, ctx);
}

static const struct http_route pr_routes[] = {
	{ "POST", "/enqueue", pr_enqueue },
	{ "GET", "/stats", pr_stats },
	{ "GET", "/results/", pr_result },
	{ "GET", "/health", pr_health },
	{ "GET", "/metrics", pr_metrics },
};

static void
pr_free(struct processor *pr)
{
	if (pr->q != NULL)
		pr->q->ops->close(pr->q);
	result_store_close(pr->rs);
	free(pr);
}

static int
pr_start(const struct config *cfg, void **state, char **cause)
{
	struct processor *pr = calloc(1, sizeof(*pr));
	const struct queue_ops *ops = queue_ops_lookup(cfg->queue_type);
	struct http_server_opts o = {
		.address = cfg->listen_address,
		.port = config_role_port(cfg),
		.max_body = (size_t)cfg->max_body_bytes,
		.routes = pr_routes,
		.n_routes = sizeof(pr_routes) / sizeof(*pr_routes),
	};
	int rc;

	if (pr == NULL)
		return -ENOMEM;
	pr->cfg = cfg;
	o.ctx = pr;
	if ((rc = result_store_open(&pr->rs, cfg->results_db, cause)) != 0 ||
	    (rc = ops->open(&pr->q, cfg, cause)) != 0 ||
	    (rc = worker_pool_start(&pr->wp, pr->q, pr->rs, cfg, cause)) != 0)
		goto out;
	/* serve last: healthy means able to take and process messages */
	if ((rc = http_server_start(&pr->srv, &o, cause)) != 0) {
		pr->q->ops->shutdown(pr->q);
		worker_pool_wait(pr->wp, cfg->drain_timeout_ms);
		worker_pool_free(pr->wp);
		goto out;
	}
	log_info("processor listening on %s:%d, queue %s, %jd workers, "
	    "results in %s", cfg->listen_address, o.port, cfg->queue_type,
	    (intmax_t)cfg->workers, cfg->results_db);
	*state = pr;
out:
	if (rc != 0)
		pr_free(pr);
	return rc;
}

static int
pr_stop(void *state, int64_t timeout_ms)
{
	struct processor *pr = state;
	int64_t deadline = clock_now_ms() + timeout_ms;
	struct queue_stats st;

	/* no new messages; let accepted ones finish entering the queue */
	http_server_drain(pr->srv);
	if (http_server_wait_idle(pr->srv, timeout_ms) != 0)
		log_warn("requests still in progress while draining");
	pr->q->ops->stats(pr->q, &st);
	log_info("draining: %jd messages in the backlog", (intmax_t)st.current_size);
	pr->q->ops->shutdown(pr->q);
	if (worker_pool_wait(pr->wp, deadline - clock_now_ms()) != 0) {
		pr->q->ops->stats(pr->q, &st);
		log_error("drain timed out with %jd messages not done",
		    (intmax_t)st.current_size);
		return 1;
	}
	http_server_stop(pr->srv);
	worker_pool_free(pr->wp);
	pr_free(pr);
	return 0;
}

const struct role_ops role_processor_ops = {
	.name = "processor",
	.start = pr_start,
	.stop = pr_stop,
};

/* role_processor.c - the worker pool, the result store and their API */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"
#include "queue.h"
#include "result_store.h"
#include "retention.h"
#include "role.h"
#include "worker_pool.h"
#include "xmalloc.h"

struct processor {
	const struct config *cfg;
	struct http_server *srv;
	struct queue *q;
	struct result_store *rs;
	struct worker_pool *wp;
	struct retention *ret;		/* NULL: results are kept */
};

/*
 * A failed result keeps the message as it came, so that it can be
 * replayed: the bytes the backend delivered, or the encoding of a message
 * it handed over decoded.
 */
static void
keep_message(const struct delivery *d, struct processing_result *res)
{
	if (d->msg != NULL) {
		res->message = (unsigned char *)message_encode(d->msg,
		    &res->message_len);
		if (res->message == NULL)
			xalloc_failed();
		return;
	}
	res->message_len = d->len;
	res->message = xmalloc(d->len + 1);
	if (d->len > 0)
		memcpy(res->message, d->data, d->len);
}

/* A message that could not be decoded becomes a failed result. */
static void
fail_result(const struct delivery *d, struct processing_result *res,
    const char *why)
{
	res->message_id = d->id != NULL ? xstrdup(d->id) : NULL;
	res->success = false;
	xasprintf(&res->error, "cannot decode message: %s",
	    why != NULL ? why : "invalid");
	keep_message(d, res);
}

/*
 * A keyed message's row keeps its fingerprint, so that its key coming
 * again with another body is refused after the queue has let it go.
 */
static void
keep_fingerprint(const struct data_message *msg, struct processing_result *res)
{
	char fp[MESSAGE_FINGERPRINT_LEN + 1];

	if (!message_id_is_keyed(msg->id))
		return;
	if (msg->fingerprint != NULL)
		res->fingerprint = xstrdup(msg->fingerprint);
	else if (message_fingerprint(msg, fp) == 0)
		res->fingerprint = xstrdup(fp);
}

void
processor_process(const struct delivery *d, struct processing_result *res,
    int64_t delay_ms)
{
	static const char prefix[] = "PROCESSED_";
	struct data_message *decoded = NULL;
	const struct data_message *msg = d->msg;
	char *cause = NULL;

	memset(res, 0, sizeof(*res));
	res->processed_at = (int64_t)time(NULL);
	if (msg == NULL) {
		if (message_decode(d->data, d->len, &decoded, &cause) != 0) {
			fail_result(d, res, cause);
			free(cause);
			return;
		}
		msg = decoded;
	}
	if (delay_ms > 0)
		clock_sleep_ms(delay_ms);
	res->message_id = xstrdup(msg->id);
	res->client = msg->client != NULL ? xstrdup(msg->client) : NULL;
	res->source = msg->source != NULL ? xstrdup(msg->source) : NULL;
	res->timestamp = msg->timestamp;
	keep_fingerprint(msg, res);
	res->success = true;
	res->result_len = sizeof(prefix) - 1 + msg->payload_len;
	res->result = xmalloc(res->result_len);
	memcpy(res->result, prefix, sizeof(prefix) - 1);
	if (msg->payload_len > 0)
		memcpy(res->result + sizeof(prefix) - 1, msg->payload,
		    msg->payload_len);
	message_free(decoded);
}

bool
processor_give_up(const struct delivery *d, uint64_t max_deliveries,
    struct processing_result *res)
{
	struct data_message *decoded = NULL;
	const struct data_message *msg = d->msg;
	char *cause = NULL;

	if (max_deliveries == 0 || d->num_delivered <= max_deliveries)
		return false;
	memset(res, 0, sizeof(*res));
	res->processed_at = (int64_t)time(NULL);
	/* the row carries what the message says of itself, if it says it */
	if (msg == NULL && message_decode(d->data, d->len, &decoded,
	    &cause) == 0)
		msg = decoded;
	free(cause);
	if (msg != NULL) {
		res->message_id = xstrdup(msg->id);
		res->client = msg->client != NULL ? xstrdup(msg->client) :
		    NULL;
		res->source = msg->source != NULL ? xstrdup(msg->source) : NULL;
		res->timestamp = msg->timestamp;
		keep_fingerprint(msg, res);
	} else if (d->id != NULL) {
		res->message_id = xstrdup(d->id);
	}
	xasprintf(&res->error, "given up: delivered %ju times without a "
	    "result (the limit is %ju)", (uintmax_t)d->num_delivered,
	    (uintmax_t)max_deliveries);
	keep_message(d, res);
	log_message(LOG_LEVEL_WARN, res->message_id != NULL ?
	    res->message_id : "(no id)", "%s", res->error);
	message_free(decoded);
	return true;
}

/* The worker pool's process step. */
static void
pr_process(void *ctx, const struct delivery *d, struct processing_result *res)
{
	const struct processor *pr = ctx;

	if (!processor_give_up(d, queue_max_deliveries(pr->q), res))
		processor_process(d, res, pr->cfg->processing_delay_ms);
}

static void
on_enqueued(void *arg, int status, const char *reason)
{
	struct http_request *req = arg;
	char *why;

	if (status == 0) {
		http_respond(req, HTTP_ACCEPTED,
		    xstrdup("{\"status\":\"queued\"}"), 19);
	} else if (status == QUEUE_EFULL) {
		http_respond_error(req, HTTP_UNAVAILABLE, "Queue is full");
	} else if (status == QUEUE_ECONFLICT) {
		http_respond_error(req, HTTP_UNPROCESSABLE, reason);
	} else {
		xasprintf(&why, "queue backend unavailable: %s",
		    reason != NULL ? reason : "error");
		http_respond_error(req, HTTP_UNAVAILABLE, why);
		free(why);
	}
}

/* What the result store says of a keyed message's id. */
enum stored_key {
	KEY_NEW,		/* no row */
	KEY_DONE,		/* a row of the same body: a retry */
	KEY_CONFLICT,		/* a row of another body */
};

static enum stored_key
pr_stored_key(struct processor *pr, const char *id, const char *fp)
{
	struct processing_result res;
	enum stored_key k = KEY_DONE;

	if (result_store_get(pr->rs, id, &res) != 0)
		return KEY_NEW;
	/* a row from before fingerprints were kept takes any body */
	if (fp != NULL && res.fingerprint != NULL &&
	    strcmp(fp, res.fingerprint) != 0)
		k = KEY_CONFLICT;
	result_clear(&res);
	return k;
}

/* A keyed message on its way into the queue. */
struct keyed_publish {
	struct processor *pr;
	queue_publish_cb cb;
	void *arg;
	char id[37];
	char fp[MESSAGE_FINGERPRINT_LEN + 1];
};

/*
 * The queue took a keyed message. The store is asked again: the message
 * of another body under the key may have been processed, and let go by
 * the queue, between the first look and the queue's own. The copy queued
 * then is absorbed by the store, which keeps the first body's row.
 */
static void
on_keyed_published(void *arg, int status, const char *reason)
{
	struct keyed_publish *k = arg;

	if (status == 0 && pr_stored_key(k->pr, k->id, k->fp) ==
	    KEY_CONFLICT) {
		status = QUEUE_ECONFLICT;
		reason = QUEUE_CONFLICT_REASON;
	}
	k->cb(k->arg, status, reason);
	free(k);
}

/*
 * Queue msg; a keyed one is judged by its fingerprint against the
 * stored row of its id first (a retry of a message done already is taken
 * without queueing it again), then against the message the queue holds
 * under its id.
 */
static void
pr_publish(struct processor *pr, struct data_message *msg,
    queue_publish_cb cb, void *arg)
{
	struct keyed_publish *k;

	if (!message_id_is_keyed(msg->id)) {
		queue_publish(pr->q, msg, cb, arg);
		return;
	}
	if (msg->fingerprint == NULL && message_set_key(msg, msg->id) != 0)
		xalloc_failed();
	switch (pr_stored_key(pr, msg->id, msg->fingerprint)) {
	case KEY_DONE:
		message_free(msg);
		cb(arg, 0, "duplicate");
		return;
	case KEY_CONFLICT:
		message_free(msg);
		cb(arg, QUEUE_ECONFLICT, QUEUE_CONFLICT_REASON);
		return;
	case KEY_NEW:
		break;
	}
	k = xcalloc(1, sizeof(*k));
	k->pr = pr;
	k->cb = cb;
	k->arg = arg;
	snprintf(k->id, sizeof(k->id), "%s", msg->id);
	snprintf(k->fp, sizeof(k->fp), "%s", msg->fingerprint);
	queue_publish(pr->q, msg, on_keyed_published, k);
}

static void
pr_enqueue(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct data_message *msg;
	char *cause = NULL;
	size_t len;
	const char *body = http_req_body(req, &len);
	size_t max = message_encoded_max((size_t)pr->cfg->max_body_bytes);

	/* the server's limit is a batch's: one message keeps its own */
	if (len > max) {
		xasprintf(&cause, "request body too large: the limit is %zu "
		    "bytes", max);
		http_respond_error(req, HTTP_PAYLOAD_TOO_LARGE, cause);
		free(cause);
		return;
	}
	if (message_decode(body, len, &msg, &cause) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST,
		    cause != NULL ? cause : "invalid message");
		free(cause);
		return;
	}
	pr_publish(pr, msg, on_enqueued, req);
}

static void respond_json(struct http_request *req, int status,
    struct json_object *obj);

/*
 * POST /enqueue/batch: a JSON array of messages as /enqueue takes them,
 * each queued on its own; answered once every one has its outcome, with
 * {"items": [{"status": 202} or {"status": 400|422|503, "error"}]} in order.
 */
struct enqueue_batch {
	struct http_request *req;
	atomic_size_t pending;		/* outcomes still to come, + 1 */
	size_t n;
	struct enqueue_item {
		struct enqueue_batch *b;
		int status;
		char *error;
	} *items;
};

static void
enqueue_batch_done(struct enqueue_batch *b)
{
	struct json_object *out, *arr, *it;
	struct enqueue_item *e;

	if (atomic_fetch_sub(&b->pending, 1) != 1)
		return;
	out = json_object_new_object();
	arr = json_object_new_array_ext((int)b->n);
	for (size_t i = 0; i < b->n; i++) {
		e = &b->items[i];
		it = json_object_new_object();
		json_object_object_add(it, "status",
		    json_object_new_int(e->status));
		if (e->error != NULL)
			json_object_object_add(it, "error",
			    json_object_new_string(e->error));
		json_object_array_add(arr, it);
		free(e->error);
	}
	json_object_object_add(out, "items", arr);
	respond_json(b->req, HTTP_OK, out);
	free(b->items);
	free(b);
}

static void
on_batch_item(void *arg, int status, const char *reason)
{
	struct enqueue_item *e = arg;

	if (status == 0) {
		e->status = HTTP_ACCEPTED;
	} else if (status == QUEUE_ECONFLICT) {
		e->status = HTTP_UNPROCESSABLE;
		e->error = xstrdup(reason);
	} else {
		e->status = HTTP_UNAVAILABLE;
		if (status == QUEUE_EFULL)
			e->error = xstrdup("Queue is full");
		else
			xasprintf(&e->error, "queue backend unavailable: %s",
			    reason != NULL ? reason : "error");
	}
	enqueue_batch_done(e->b);
}

/* Queue one message of a batch, or refuse it. */
static void
enqueue_batch_item(struct processor *pr, struct enqueue_item *e,
    struct json_object *o)
{
	struct data_message *msg;
	char *cause = NULL;

	if (message_decode_object(o, &msg, &cause) != 0) {
		e->status = HTTP_BAD_REQUEST;
		e->error = cause != NULL ? cause : xstrdup("invalid message");
		enqueue_batch_done(e->b);
		return;
	}
	pr_publish(pr, msg, on_batch_item, e);
}

static void
pr_enqueue_batch(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct json_object *arr = NULL;
	struct json_tokener *tok = json_tokener_new();
	struct enqueue_batch *b;
	size_t len;
	const char *body = http_req_body(req, &len);
	char *cause = NULL;

	if (tok == NULL)
		xalloc_failed();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	arr = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		http_respond_error(req, HTTP_BAD_REQUEST,
		    "a batch must be a JSON array of messages");
		return;
	}
	if (message_json_check(body, len, &cause) != 0) {
		json_object_put(arr);
		http_respond_error(req, HTTP_BAD_REQUEST, cause != NULL ?
		    cause : "malformed JSON");
		free(cause);
		return;
	}
	b = xcalloc(1, sizeof(*b));
	b->req = req;
	b->n = json_object_array_length(arr);
	b->items = xcalloc(b->n + 1, sizeof(*b->items));
	/* the + 1 is ours: no answer before every item is on its way */
	atomic_init(&b->pending, b->n + 1);
	for (size_t i = 0; i < b->n; i++) {
		b->items[i].b = b;
		enqueue_batch_item(pr, &b->items[i],
		    json_object_array_get_idx(arr, i));
	}
	json_object_put(arr);
	enqueue_batch_done(b);
}

static void
pr_stats(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats qs;
	struct worker_pool_stats ps;
	char *body;
	int n;

	queue_stats(pr->q, &qs);
	worker_pool_stats(pr->wp, &ps);
	n = xasprintf(&body, "{\"queue\":{\"TotalEnqueued\":%ju,"
	    "\"TotalDequeued\":%ju,\"CurrentSize\":%jd},\"pool\":{"
	    "\"ProcessedCount\":%ju,\"ErrorCount\":%ju,\"TotalDuration\":%jd}}",
	    (uintmax_t)qs.enqueued, (uintmax_t)qs.dequeued,
	    (intmax_t)qs.current_size, (uintmax_t)ps.processed,
	    (uintmax_t)ps.errors, (intmax_t)ps.total_duration_ns);
	http_respond(req, HTTP_OK, body, (size_t)n);
}

static void
pr_result(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct processing_result res;
	const char *client = http_req_header(req, CLIENT_HEADER);
	char *body;
	size_t len;
	int rc;

	rc = result_store_get(pr->rs, http_req_tail(req), &res);
	/*
	 * Asked for a client (the gateway says which): another's result, or
	 * one of no client, is not there for it, in the words of an unknown
	 * id, so that ids cannot be probed.
	 */
	if (rc == 0 && client != NULL && (res.client == NULL ||
	    strcmp(res.client, client) != 0)) {
		result_clear(&res);
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		http_respond_error(req, HTTP_NOT_FOUND, "result not found");
		return;
	}
	if (rc != 0) {
		http_respond_error(req, HTTP_INTERNAL_ERROR,
		    "cannot read the result store");
		return;
	}
	body = result_to_json(&res, &len);
	result_clear(&res);
	if (body == NULL)
		xalloc_failed();
	http_respond(req, HTTP_OK, body, len);
}

/* The most failed rows one GET /failed lists (as its 400 says), and how
 * many by default. */
#define FAILED_LIMIT_MAX 10000
#define FAILED_LIMIT_DEFAULT 100

/* Query argument name of req as a whole number in [min, max], or def. */
static int
query_int(struct http_request *req, const char *name, int64_t def,
    int64_t min, int64_t max, int64_t *out)
{
	const char *v = http_req_query(req, name);
	char *end;
	long long n;

	*out = def;
	if (v == NULL)
		return 0;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static void
add_failed(void *ctx, const struct processing_result *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "message_id",
	    json_object_new_string(r->message_id));
	json_object_object_add(o, "processed_at",
	    json_object_new_int64(r->processed_at));
	json_object_object_add(o, "error",
	    json_object_new_string(r->error != NULL ? r->error : ""));
	json_object_object_add(o, "deliveries",
	    json_object_new_int64(r->deliveries));
	json_object_object_add(o, "kept",
	    json_object_new_boolean(r->message_len > 0));
	json_object_array_add(ctx, o);
}

/* Answer with obj as JSON, and let go of it. */
static void
respond_json(struct http_request *req, int status, struct json_object *obj)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *body = s != NULL ? strndup(s, len) : NULL;

	json_object_put(obj);
	if (body == NULL)
		xalloc_failed();
	http_respond(req, status, body, len);
}

/* GET /failed?since=UNIX&limit=N: failed results, newest first. */
static void
pr_failed(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct json_object *obj, *list;
	int64_t since, limit;

	if (query_int(req, "since", 0, 0, INT64_MAX, &since) != 0 ||
	    query_int(req, "limit", FAILED_LIMIT_DEFAULT, 1,
	    FAILED_LIMIT_MAX, &limit) != 0) {
		http_respond_error(req, HTTP_BAD_REQUEST, "since must be Unix "
		    "seconds, limit a number from 1 to 10000");
		return;
	}
	list = json_object_new_array();
	if (result_store_failed(pr->rs, since, limit, add_failed, list) != 0) {
		json_object_put(list);
		http_respond_error(req, HTTP_INTERNAL_ERROR,
		    "cannot read the result store");
		return;
	}
	obj = json_object_new_object();
	json_object_object_add(obj, "failed", list);
	respond_json(req, HTTP_OK, obj);
}

/*
 * Why the row res cannot be replayed, or NULL with *msg the message to
 * publish again.
 */
static char *
replay_refusal(const struct processing_result *res, const char *id,
    struct data_message **msg)
{
	char *cause = NULL, *why = NULL;

	*msg = NULL;
	if (res->success)
		xasprintf(&why, "message %s did not fail: nothing to replay",
		    id);
	else if (res->message == NULL)
		xasprintf(&why, "message %s failed before failed messages were "
		    "kept: nothing to replay", id);
	else if (message_decode((const char *)res->message, res->message_len,
	    msg, &cause) != 0)
		xasprintf(&why, "the message kept for %s cannot be decoded "
		    "(%s): a replay would fail again", id, cause != NULL ?
		    cause : "invalid");
	else if (strcmp((*msg)->id, id) != 0)
		xasprintf(&why, "the message kept for %s has the id %s", id,
		    (*msg)->id);
	free(cause);
	if (why != NULL) {
		message_free(*msg);
		*msg = NULL;
	}
	return why;
}

/*
 * POST /replay/{id}: publish a failed message's kept bytes again, under a
 * deduplication id of its own (the stream would drop a second publish of
 * its id), counted by the row's deliveries: two replays of one failure are
 * one. Its success replaces the failed row.
 */
static void
pr_replay(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	const char *id = http_req_tail(req);
	struct processing_result res;
	struct data_message *msg;
	char *why;
	int rc;

	rc = result_store_get(pr->rs, id, &res);
	if (rc == -ENOENT) {
		http_respond_error(req, HTTP_NOT_FOUND, "result not found");
		return;
	}
	if (rc != 0) {
		http_respond_error(req, HTTP_INTERNAL_ERROR,
		    "cannot read the result store");
		return;
	}
	why = replay_refusal(&res, id, &msg);
	if (why != NULL) {
		http_respond_error(req, HTTP_CONFLICT, why);
		free(why);
		result_clear(&res);
		return;
	}
	xasprintf(&msg->dedup_id, "%s.replay.%jd", msg->id,
	    (intmax_t)res.deliveries);
	log_message(LOG_LEVEL_INFO, msg->id, "replayed (it failed: %s)",
	    res.error != NULL ? res.error : "?");
	result_clear(&res);
	queue_publish(pr->q, msg, on_enqueued, req);
}

/* GET /admin: the backend and the result store's size. */
static void
pr_admin(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct result_store_size sz;
	struct json_object *obj, *st;

	if (result_store_size(pr->rs, &sz) != 0) {
		http_respond_error(req, HTTP_INTERNAL_ERROR,
		    "cannot read the result store");
		return;
	}
	obj = json_object_new_object();
	json_object_object_add(obj, "role", json_object_new_string(
	    "processor"));
	json_object_object_add(obj, "backend",
	    json_object_new_string(pr->cfg->queue_type));
	st = json_object_new_object();
	json_object_object_add(st, "path",
	    json_object_new_string(pr->cfg->results_db));
	json_object_object_add(st, "rows", json_object_new_int64(sz.rows));
	json_object_object_add(st, "failed", json_object_new_int64(sz.failed));
	json_object_object_add(st, "bytes", json_object_new_int64(sz.bytes));
	json_object_object_add(obj, "results", st);
	respond_json(req, HTTP_OK, obj);
}

static void
pr_health(struct http_request *req, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats st;
	char why[200];

	if (http_req_draining(req)) {
		role_respond_health(req, false, "draining");
		return;
	}
	if (!worker_pool_store_ok(pr->wp, why, sizeof(why))) {
		role_respond_health(req, false, why);
		return;
	}
	queue_stats(pr->q, &st);
	role_respond_health(req, st.healthy, st.reason);
}

static void
pr_write_metrics(FILE *out, void *ctx)
{
	struct processor *pr = ctx;
	struct queue_stats qs;
	struct queue_counters qc;
	struct worker_pool_stats ps;

	queue_stats(pr->q, &qs);
	queue_counters(pr->q, &qc);
	worker_pool_stats(pr->wp, &ps);

	/* the figures, read once above, as one table */
	const struct {
		const char *name, *type, *help;
		double value;
	} m[] = {
		{ "diplom_backend_healthy", "gauge",
		  "1 while the queue backend is reachable.", qs.healthy },
		{ "diplom_queue_depth", "gauge",
		  "Messages waiting or in flight.", (double)qs.current_size },
		{ "diplom_queue_pending", "gauge",
		  "Messages waiting to be delivered (the consumer's backlog).",
		  (double)(qs.current_size - qs.ack_pending) },
		{ "diplom_queue_ack_pending", "gauge",
		  "Messages delivered and not yet acknowledged.",
		  (double)qs.ack_pending },
		{ "diplom_queue_enqueued_total", "counter",
		  "Messages this processor put into the backend.",
		  (double)qs.enqueued },
		{ "diplom_queue_dequeued_total", "counter",
		  "Messages handed to the workers.", (double)qs.dequeued },
		{ "diplom_messages_processed_total", "counter",
		  "Messages processed, committed and acknowledged.",
		  (double)ps.processed },
		{ "diplom_messages_failed_total", "counter",
		  "Messages stored as failed and not delivered again.",
		  (double)ps.errors },
		{ "diplom_messages_redelivered_total", "counter",
		  "Deliveries of a message delivered before.",
		  (double)qs.redelivered },
		{ "diplom_processing_seconds_total", "counter",
		  "Time the workers spent processing.",
		  (double)ps.total_duration_ns / 1e9 },
		{ "diplom_queue_acked_total", "counter",
		  "Deliveries acknowledged to the backend.", (double)qc.acked },
		{ "diplom_queue_retried_total", "counter",
		  "Deliveries given back to be delivered again.",
		  (double)qc.retried },
		{ "diplom_queue_terminated_total", "counter",
		  "Deliveries given up for good (stored as failed).",
		  (double)qc.terminated },
		{ "diplom_results_pruned_total", "counter",
		  "Result rows deleted by RESULTS_RETENTION and "
		  "RESULTS_MAX_BYTES.", (double)retention_pruned(pr->ret) },
		{ "diplom_workers", "gauge",
		  "Worker threads.", (double)ps.workers },
		{ "diplom_workers_busy", "gauge",
		  "Worker threads processing a message now.",
		  (double)ps.busy },
		{ "diplom_result_store_errors_total", "counter",
		  "Commits the result store refused (each retry counts).",
		  (double)ps.store_errors },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(*m); i++)
		role_metric(out, m[i].name, m[i].type, m[i].help, m[i].value);
	queue_write_histograms(pr->q, out);
	worker_pool_write_histograms(pr->wp, out);
}

static void
pr_metrics(struct http_request *req, void *ctx)
{
	const struct processor *pr = ctx;

	role_respond_metrics(req, pr->cfg, pr_write_metrics, ctx);
}

static const struct http_route pr_routes[] = {
	{ "POST", "/enqueue", pr_enqueue },
	{ "POST", "/enqueue/batch", pr_enqueue_batch },
	{ "GET", "/stats", pr_stats },
	{ "GET", "/results/", pr_result },
	{ "GET", "/failed", pr_failed },
	{ "POST", "/replay/", pr_replay },
	{ "GET", "/admin", pr_admin },
	{ "GET", "/health", pr_health },
	{ "GET", "/metrics", pr_metrics },
};

static void
pr_free(struct processor *pr)
{
	retention_stop(pr->ret);
	queue_close(pr->q);
	result_store_close(pr->rs);
	free(pr);
}

static int
pr_start(const struct config *cfg, void **state, char **cause)
{
	struct processor *pr = xcalloc(1, sizeof(*pr));
	struct worker_pool_opts wo = { .workers = (int)cfg->workers,
		.process = pr_process, .ctx = pr };
	char *what = NULL;
	int rc;

	pr->cfg = cfg;
	if ((rc = result_store_open(&pr->rs, cfg->results_db, cause)) != 0 ||
	    (rc = queue_open(cfg->queue_type, cfg, &pr->q, cause)) != 0)
		goto out;
	wo.q = pr->q;
	wo.rs = pr->rs;
	if ((rc = retention_start(&pr->ret, pr->rs, cfg->results_retention_ms,
	    cfg->results_max_bytes, cause)) != 0 ||
	    (rc = worker_pool_start(&pr->wp, &wo, cause)) != 0)
		goto out;
	/* serve last: healthy means able to take and process messages */
	xasprintf(&what, "queue %s, %jd workers, results in %s",
	    cfg->queue_type, (intmax_t)cfg->workers, cfg->results_db);
	/*
	 * /enqueue takes what ingest made of a request within MAX_BODY_BYTES,
	 * which the encoding makes larger, and a batch of MAX_BATCH
	 * messages: never refuse either for its size.
	 */
	if ((rc = role_serve(cfg, pr_routes, sizeof(pr_routes) /
	    sizeof(*pr_routes), pr,
	    message_batch_encoded_max((size_t)cfg->max_body_bytes,
	    (size_t)cfg->max_batch), what, &pr->srv,
	    cause)) != 0) {
		queue_shutdown(pr->q);
		if (worker_pool_wait(pr->wp, cfg->drain_timeout_ms) != 0) {
			/* its threads still use the queue: the exit frees */
			pr = NULL;
			goto out;
		}
		worker_pool_free(pr->wp);
		goto out;
	}
	*state = pr;
out:
	free(what);
	if (rc != 0 && pr != NULL)
		pr_free(pr);
	return rc;
}

static int
pr_stop(void *state, int64_t timeout_ms)
{
	struct processor *pr = state;
	int64_t deadline = clock_now_ms() + timeout_ms;
	struct queue_stats st;

	/*
	 * No new messages; let accepted ones finish entering the queue. What
	 * is still in progress after the timeout is logged, and the queue
	 * drains all the same.
	 */
	(void)role_drain(pr->srv, timeout_ms);
	queue_stats(pr->q, &st);
	log_info("draining: %jd messages in the backlog",
	    (intmax_t)st.current_size);
	queue_shutdown(pr->q);
	if (worker_pool_wait(pr->wp, deadline - clock_now_ms()) != 0) {
		queue_stats(pr->q, &st);
		log_error("drain timed out with %jd messages not done",
		    (intmax_t)st.current_size);
		return 1;
	}
	http_server_stop(pr->srv);
	worker_pool_free(pr->wp);
	pr_free(pr);
	return 0;
}

static void
pr_ping(void *state)
{
	struct processor *pr = state;

	worker_pool_ping(pr->wp);
}

static bool
pr_answered(void *state)
{
	struct processor *pr = state;

	return worker_pool_answered(pr->wp);
}

static void
pr_vitals(void *state, struct role_vitals *v)
{
	struct processor *pr = state;
	struct worker_pool_stats ps;
	struct queue_stats qs;

	worker_pool_stats(pr->wp, &ps);
	queue_stats(pr->q, &qs);
	v->done = ps.processed + ps.errors;
	v->unit = "messages";
	v->backlog = qs.current_size;
}

/* SIGHUP: the listener's certificate and key. */
static int
pr_reload(void *state, char **cause)
{
	struct processor *pr = state;

	return http_server_reload_tls(pr->srv, cause);
}

const struct role_ops role_processor_ops = {
	.name = "processor",
	.start = pr_start,
	.stop = pr_stop,
	.ping = pr_ping,
	.answered = pr_answered,
	.vitals = pr_vitals,
	.reload = pr_reload,
};

/* role_ingest.c - stamps messages and hands them to the queue backend */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "auth.h"
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
	char **batch_urls;		/* and its /enqueue/batch */
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
	if (r->status == HTTP_UNPROCESSABLE) {
		refused(c, HTTP_UNPROCESSABLE, QUEUE_CONFLICT_REASON);
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
	if (status == QUEUE_ECONFLICT) {
		refused(c, HTTP_UNPROCESSABLE, QUEUE_CONFLICT_REASON);
		return;
	}
	snprintf(why, sizeof(why), "queue backend unavailable: %s",
	    reason != NULL ? reason : "error");
	refused(c, HTTP_UNAVAILABLE, why);
}

/*
 * The client the gateway names for req, in *client (NULL: none); false,
 * answered 400, when the name is not one.
 */
static bool
in_client(struct http_request *req, const char **client)
{
	*client = http_req_header(req, CLIENT_HEADER);
	if (*client == NULL || auth_name_valid(*client))
		return true;
	http_respond_error(req, HTTP_BAD_REQUEST, "bad " CLIENT_HEADER);
	return false;
}

/*
 * The processor a message's round begins at. The messages are spread, each
 * round starting one processor further; but a keyed message goes to the
 * processor its id hashes to, the one that holds its key's earlier
 * message, so that another body under the key is told apart there.
 */
static size_t
first_processor(struct ingest *in, const char *id)
{
	size_t h = 5381;

	if (!message_id_is_keyed(id))
		return (size_t)(atomic_fetch_add(&in->next, 1) %
		    in->n_enqueue);
	for (const char *p = id; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % in->n_enqueue;
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
	const char *client;

	if (atomic_load(&in->paused)) {
		http_respond_error(req, HTTP_UNAVAILABLE, PAUSED_REASON);
		return;
	}
	if (!in_client(req, &client))
		return;
	/*
	 * A retry with the same key gets the same id: one row, one message;
	 * the same key from another client is another message.
	 */
	if (key != NULL && message_id_for_client_key(client, key, keyed_id,
	    &cause) != 0) {
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
	if (key != NULL && message_set_key(msg, keyed_id) != 0)
		xalloc_failed();
	if (client != NULL)
		msg->client = xstrdup(client);
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
	c->first = first_processor(in, c->id);
	enqueue_next(c);
}

/*
 * POST /ingest/batch: each item is checked and handed to the backend on its
 * own, and the batch is answered once every item has its outcome.
 */
struct ingest_batch {
	struct ingest *in;
	struct http_request *req;
	atomic_size_t pending;		/* outcomes still to come, + 1 */
	size_t n;
	struct batch_slot {
		struct ingest_batch *b;
		int status;		/* 0 until known */
		char *error;
		char id[37];
	} *slots;
	/* memory: the messages offered to the processors, a part each */
	struct batch_part {
		struct ingest_batch *b;
		char *body;		/* the part's messages, in one body */
		size_t len;
		size_t *sent;		/* the slots they came from */
		size_t n_sent;
		size_t first, tried;	/* as struct ingest_call's */
	} *parts;
	size_t n_parts;
};

static void
slot_done(struct batch_slot *sl, int status, const char *error)
{
	struct ingest *in = sl->b->in;

	sl->status = status;
	if (status != HTTP_OK)
		sl->error = xstrdup(error);
	atomic_fetch_add(status == HTTP_OK ? &in->sent : &in->failed, 1);
	atomic_fetch_sub(&in->in_flight, 1);
}

/* {"errors", "items"}, in input order. */
static void
batch_respond(struct ingest_batch *b)
{
	struct json_object *out = json_object_new_object(), *arr, *it;
	struct batch_slot *sl;
	bool errors = false;
	const char *text;
	size_t len;

	arr = json_object_new_array_ext((int)b->n);
	for (size_t i = 0; i < b->n; i++) {
		sl = &b->slots[i];
		it = json_object_new_object();
		if (sl->status == HTTP_OK)
			json_object_object_add(it, "message_id",
			    json_object_new_string(sl->id));
		json_object_object_add(it, "status",
		    json_object_new_int(sl->status));
		if (sl->status != HTTP_OK) {
			errors = true;
			json_object_object_add(it, "error",
			    json_object_new_string(sl->error));
		}
		json_object_array_add(arr, it);
		free(sl->error);
	}
	json_object_object_add(out, "errors", json_object_new_boolean(errors));
	json_object_object_add(out, "items", arr);
	text = json_object_to_json_string_length(out, JSON_C_TO_STRING_PLAIN,
	    &len);
	http_respond(b->req, HTTP_OK, xstrdup(text), len);
	json_object_put(out);
	free(b->slots);
	for (size_t k = 0; k < b->n_parts; k++) {
		free(b->parts[k].sent);
		free(b->parts[k].body);
	}
	free(b->parts);
	free(b);
}

/* One outcome less to wait for; the last answers. */
static void
batch_release(struct ingest_batch *b)
{
	if (atomic_fetch_sub(&b->pending, 1) == 1)
		batch_respond(b);
}

/* The backend's answer to the publish of one item. */
static void
on_batch_published(void *arg, int status, const char *reason)
{
	struct batch_slot *sl = arg;
	char why[200];

	if (status == 0) {
		slot_done(sl, HTTP_OK, NULL);
	} else if (status == QUEUE_EFULL) {
		slot_done(sl, HTTP_UNAVAILABLE, "Queue is full");
	} else if (status == QUEUE_ECONFLICT) {
		slot_done(sl, HTTP_UNPROCESSABLE, QUEUE_CONFLICT_REASON);
	} else {
		snprintf(why, sizeof(why), "queue backend unavailable: %s",
		    reason != NULL ? reason : "error");
		slot_done(sl, HTTP_UNAVAILABLE, why);
	}
	batch_release(sl->b);
}

/* Every item of a part gets the same refusal. */
static void
batch_refuse_sent(struct batch_part *pt, const char *why)
{
	for (size_t k = 0; k < pt->n_sent; k++)
		slot_done(&pt->b->slots[pt->sent[k]], HTTP_UNAVAILABLE, why);
}

/* The processor's per-item answers; false when there are none to use. */
static bool
batch_take_items(struct batch_part *pt, const struct http_reply *r)
{
	struct ingest_batch *b = pt->b;
	struct json_object *o = json_tokener_parse(r->body), *items, *it;
	const char *err;
	int status;
	bool ok;

	ok = r->status == HTTP_OK && json_object_object_get_ex(o, "items",
	    &items) && json_object_is_type(items, json_type_array) &&
	    json_object_array_length(items) == pt->n_sent;
	for (size_t k = 0; ok && k < pt->n_sent; k++) {
		it = json_object_array_get_idx(items, k);
		err = json_object_get_string(json_object_object_get(it,
		    "error"));
		status = json_object_get_int(json_object_object_get(it,
		    "status"));
		if (status == HTTP_ACCEPTED)
			slot_done(&b->slots[pt->sent[k]], HTTP_OK, NULL);
		else if (status == HTTP_UNPROCESSABLE)
			slot_done(&b->slots[pt->sent[k]], HTTP_UNPROCESSABLE,
			    QUEUE_CONFLICT_REASON);
		else
			slot_done(&b->slots[pt->sent[k]], HTTP_UNAVAILABLE,
			    err != NULL ? err : "processor refused the "
			    "message");
	}
	json_object_put(o);
	return ok;
}

static void batch_enqueue_next(struct batch_part *pt);

/*
 * The processor's answer to /enqueue/batch. As for one message, a processor
 * that is unreachable or refuses the whole batch busy passes it on to the
 * next; an item it found no room for is that item's 503.
 */
static void
on_batch_enqueued(void *arg, const struct http_reply *r)
{
	struct batch_part *pt = arg;
	struct ingest_batch *b = pt->b;
	struct ingest *in = b->in;
	bool busy = r->status == 0 || r->status == HTTP_UNAVAILABLE;
	char why[300];

	if (r->status == HTTP_OK && batch_take_items(pt, r))
		goto out;
	if (busy && pt->tried < in->n_enqueue) {
		atomic_fetch_add(&in->failovers, 1);
		batch_enqueue_next(pt);
		return;
	}
	if (r->status == 0)
		snprintf(why, sizeof(why), "processor unavailable: %s",
		    r->error);
	else
		snprintf(why, sizeof(why), "processor answered %d to the "
		    "batch", r->status);
	batch_refuse_sent(pt, why);
out:
	batch_release(b);
}

static void
batch_enqueue_next(struct batch_part *pt)
{
	struct ingest *in = pt->b->in;
	size_t i = (pt->first + pt->tried++) % in->n_enqueue;
	char *body = xmalloc(pt->len + 1);

	memcpy(body, pt->body, pt->len + 1);
	http_client_request(in->hc, in->batch_urls[i], body, pt->len,
	    on_batch_enqueued, pt);
}

/* The messages of a part in one body, a JSON array. */
static void
batch_part_body(struct batch_part *pt, struct batch_item *items)
{
	char *enc, *buf = NULL;
	size_t len, size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (f == NULL)
		xalloc_failed();
	fputc('[', f);
	for (size_t k = 0; k < pt->n_sent; k++) {
		if ((enc = message_encode(items[pt->sent[k]].msg, &len)) ==
		    NULL)
			xalloc_failed();
		if (k > 0)
			fputc(',', f);
		fwrite(enc, 1, len, f);
		free(enc);
	}
	fputc(']', f);
	if (fclose(f) != 0)
		xalloc_failed();
	pt->body = buf;
	pt->len = size;
}

/*
 * Memory: the messages of the batch to the processors, in one request to
 * each processor a part begins at. The items without a key go together,
 * to the processor the batch's round begins at; a keyed item goes with
 * the part of the processor its id hashes to, as a single message would.
 */
static void
batch_enqueue(struct ingest_batch *b, struct batch_item *items)
{
	struct ingest *in = b->in;
	size_t rr = (size_t)-1, first, *part_of;
	struct batch_part *pt;

	b->parts = xcalloc(in->n_enqueue, sizeof(*b->parts));
	part_of = xcalloc(in->n_enqueue, sizeof(*part_of));
	for (size_t i = 0; i < b->n; i++) {
		if (items[i].msg == NULL)
			continue;
		if (message_id_is_keyed(items[i].msg->id))
			first = first_processor(in, items[i].msg->id);
		else if (rr == (size_t)-1)
			first = rr = first_processor(in, items[i].msg->id);
		else
			first = rr;
		/* part_of[p]: the part beginning at p, + 1; 0: none yet */
		if (part_of[first] == 0) {
			pt = &b->parts[b->n_parts++];
			part_of[first] = b->n_parts;
			pt->b = b;
			pt->first = first;
			pt->sent = xcalloc(b->n, sizeof(*pt->sent));
		}
		pt = &b->parts[part_of[first] - 1];
		pt->sent[pt->n_sent++] = i;
	}
	free(part_of);
	for (size_t k = 0; k < b->n_parts; k++)
		batch_part_body(&b->parts[k], items);
	atomic_fetch_add(&b->pending, b->n_parts);
	for (size_t k = 0; k < b->n_parts; k++)
		batch_enqueue_next(&b->parts[k]);
}

/* Whether the body is NDJSON rather than a JSON array. */
/*
 * How to read a batch body: NDJSON by its type or the query's format (the
 * gateway's client sends JSON's type), and "items=single" when the gateway
 * carries single requests together.
 */
static unsigned
batch_flags(struct http_request *req)
{
	const char *ct = http_req_header(req, "Content-Type");
	const char *format = http_req_query(req, "format");
	const char *items = http_req_query(req, "items");
	static const char nd[] = "application/x-ndjson";
	unsigned flags = 0;

	if (format != NULL ? strcmp(format, "ndjson") == 0 :
	    ct != NULL && strncasecmp(ct, nd, sizeof(nd) - 1) == 0)
		flags |= MESSAGE_BATCH_NDJSON;
	if (items != NULL && strcmp(items, "single") == 0)
		flags |= MESSAGE_BATCH_SINGLES;
	return flags;
}

/* Start a batch of n items: the bad ones have their answer already. */
static struct ingest_batch *
batch_new(struct ingest *in, struct http_request *req,
    struct batch_item *items, size_t n, size_t *valid)
{
	struct ingest_batch *b = xcalloc(1, sizeof(*b));

	b->in = in;
	b->req = req;
	b->n = n;
	b->slots = xcalloc(n, sizeof(*b->slots));
	*valid = 0;
	for (size_t i = 0; i < n; i++) {
		b->slots[i].b = b;
		if (items[i].msg == NULL) {
			b->slots[i].status = HTTP_BAD_REQUEST;
			b->slots[i].error = items[i].error;
			items[i].error = NULL;
			continue;
		}
		snprintf(b->slots[i].id, sizeof(b->slots[i].id), "%s",
		    items[i].msg->id);
		(*valid)++;
	}
	/* the + 1 is ours: no answer before every item is on its way */
	atomic_init(&b->pending, 1);
	atomic_fetch_add(&in->received, *valid);
	atomic_fetch_add(&in->in_flight, (int_fast64_t)*valid);
	return b;
}

/*
 * Give the valid items of a batch to client: its name, and for a keyed
 * item the id of its key for that client. Ids are 36 characters either
 * way, so the copy into the item's is in place.
 */
static void
batch_claim(struct batch_item *items, size_t n, const char *client)
{
	char *cause = NULL;

	for (size_t i = 0; i < n; i++) {
		if (items[i].msg == NULL)
			continue;
		items[i].msg->client = xstrdup(client);
		/* the key was checked when the item was read: no failure */
		if (items[i].key != NULL && message_id_for_client_key(client,
		    items[i].key, items[i].msg->id, &cause) != 0)
			free(cause);
	}
}

static void
in_ingest_batch(struct http_request *req, void *ctx)
{
	struct ingest *in = ctx;
	struct batch_item *items = NULL;
	struct ingest_batch *b;
	char *cause = NULL;
	size_t len, n = 0, valid;
	const char *raw = http_req_body(req, &len);
	const char *client;
	int rc;

	if (atomic_load(&in->paused)) {
		http_respond_error(req, HTTP_UNAVAILABLE, PAUSED_REASON);
		return;
	}
	if (!in_client(req, &client))
		return;
	if ((rc = message_batch_from_request(raw, len, batch_flags(req),
	    (size_t)in->cfg->max_batch, &in->limits, &items, &n,
	    &cause)) != 0) {
		http_respond_error(req, rc == MESSAGE_EBATCH ?
		    HTTP_PAYLOAD_TOO_LARGE : HTTP_BAD_REQUEST,
		    cause != NULL ? cause : "invalid batch");
		free(cause);
		return;
	}
	if (client != NULL)
		batch_claim(items, n, client);
	b = batch_new(in, req, items, n, &valid);
	if (valid > 0 && in->q == NULL) {
		batch_enqueue(b, items);
	} else if (valid > 0) {
		atomic_fetch_add(&b->pending, valid);
		for (size_t i = 0; i < n; i++) {
			if (items[i].msg == NULL)
				continue;
			queue_publish(in->q, items[i].msg, on_batch_published,
			    &b->slots[i]);
			items[i].msg = NULL;
		}
	}
	message_batch_free(items, n);
	batch_release(b);
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
	{ "POST", "/ingest/batch", in_ingest_batch },
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
	for (size_t i = 0; i < in->n_enqueue; i++) {
		free(in->enqueue_urls[i]);
		free(in->batch_urls[i]);
	}
	free(in->enqueue_urls);
	free(in->batch_urls);
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
	in->batch_urls = xcalloc(in->n_enqueue, sizeof(*in->batch_urls));
	for (size_t i = 0; i < in->n_enqueue; i++) {
		in->enqueue_urls[i] = role_join_url(cfg->processor_url.urls[i],
		    "/enqueue");
		in->batch_urls[i] = role_join_url(cfg->processor_url.urls[i],
		    "/enqueue/batch");
	}
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

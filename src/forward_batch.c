/* forward_batch.c - single requests carried to the next hop together */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "event_loop.h"
#include "forward_batch.h"
#include "log.h"
#include "xmalloc.h"

/*
 * Larger bodies go alone: the cost of a request is small beside theirs, and
 * ingest parses a batch's items in turn, so one slow item (a huge object)
 * would hold up every answer in its batch.
 */
#define FB_ITEM_MAX 16384

/* The requests one pass of a loop gathered, on their way as one. */
struct fb_batch {
	struct forward_batch *fb;
	char *line;			/* its client's header, or NULL */
	size_t n;
	struct http_request **reqs;	/* max_items */
	size_t *ends;			/* where each one's line ends */
	char *body;			/* NDJSON, a line each */
	size_t len, cap;
};

/* The batcher's part on one loop: touched on that loop's thread only. */
struct fb_part {
	struct forward_batch *fb;
	struct loop_timer flush;	/* due at once: the end of the pass */
	struct fb_batch *open;		/* being filled, or NULL */
};

struct forward_batch {
	struct forward_batch_opts o;
	char *single_url, *batch_url;
	struct fb_part *parts[EVENT_LOOP_MAX];
	atomic_uint_fast64_t batches, requests;
};

void
forward_relay_reply(void *arg, const struct http_reply *r)
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

int
forward_batch_new(struct forward_batch **out,
    const struct forward_batch_opts *o, char **cause)
{
	struct forward_batch *fb;

	*out = NULL;
	if (o->max_items < 2 || o->max_bytes == 0) {
		xasprintf(cause, "a forward batch needs room for two requests");
		return -EINVAL;
	}
	fb = xcalloc(1, sizeof(*fb));
	fb->o = *o;
	fb->single_url = xstrdup(o->single_url);
	fb->batch_url = xstrdup(o->batch_url);
	fb->o.single_url = fb->single_url;
	fb->o.batch_url = fb->batch_url;
	*out = fb;
	return 0;
}

void
forward_batch_free(struct forward_batch *fb)
{
	if (fb == NULL)
		return;
	for (int i = 0; i < EVENT_LOOP_MAX; i++)
		free(fb->parts[i]);
	free(fb->single_url);
	free(fb->batch_url);
	free(fb);
}

bool
forward_batch_fits(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\t'))
		i++;
	/*
	 * A line break would split it, a blank body would vanish from the
	 * batch, and an "idempotency_key" field, which a batch item reads
	 * and a single request does not, is kept away for clarity.
	 */
	return len <= FB_ITEM_MAX && i < len && body[i] == '{' &&
	    memchr(body, '\n', len) == NULL &&
	    memchr(body, '\r', len) == NULL && memchr(body, '\0', len) == NULL &&
	    memmem(body, len, "idempotency", 11) == NULL;
}

static void
batch_free(struct fb_batch *b)
{
	free(b->reqs);
	free(b->ends);
	free(b->body);
	free(b->line);
	free(b);
}

/* Send each request of b alone: the next hop refused the batch whole. */
static void
batch_send_apart(struct fb_batch *b)
{
	size_t start = 0, len;
	char *body;

	for (size_t i = 0; i < b->n; i++) {
		len = b->ends[i] - start;
		body = xmalloc(len + 1);
		memcpy(body, b->body + start, len);
		body[len] = '\0';
		http_client_request_with(b->fb->o.hc, b->fb->o.single_url,
		    b->line, body, len, forward_relay_reply, b->reqs[i]);
		start = b->ends[i] + 1;
	}
}

/* Answer one request from its item of the batch's answer. */
static void
answer_item(struct http_request *req, struct json_object *it)
{
	struct json_object *v;
	int status = 0;
	const char *s;
	char *body;
	int n;

	if (json_object_object_get_ex(it, "status", &v))
		status = json_object_get_int(v);
	if (status == HTTP_OK && json_object_object_get_ex(it, "message_id",
	    &v) && (s = json_object_get_string(v)) != NULL) {
		/* what ingest answers a single request */
		n = xasprintf(&body,
		    "{\"message_id\":\"%s\",\"status\":\"accepted\"}", s);
		http_respond(req, HTTP_OK, body, (size_t)n);
		return;
	}
	s = json_object_object_get_ex(it, "error", &v) ?
	    json_object_get_string(v) : NULL;
	http_respond_error(req, status >= 400 && status < 600 ? status :
	    HTTP_UNAVAILABLE, s != NULL ? s : "the batch's answer lacks "
	    "this message's");
}

/* Split a 200 batch answer; false when it does not match the batch. */
static bool
batch_answer_each(struct fb_batch *b, const struct http_reply *r)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *top = NULL, *items;
	bool ok;

	if (tok != NULL && r->len <= INT32_MAX)
		top = json_tokener_parse_ex(tok, r->body, (int)r->len);
	ok = top != NULL && json_object_object_get_ex(top, "items", &items) &&
	    json_object_is_type(items, json_type_array) &&
	    json_object_array_length(items) == b->n;
	for (size_t i = 0; ok && i < b->n; i++)
		answer_item(b->reqs[i], json_object_array_get_idx(items, i));
	json_object_put(top);
	if (tok != NULL)
		json_tokener_free(tok);
	return ok;
}

static void
on_batch_reply(void *arg, const struct http_reply *r)
{
	struct fb_batch *b = arg;
	char why[160];

	if (r->status == HTTP_OK && batch_answer_each(b, r))
		goto out;
	if (r->status != 0 && r->status != HTTP_OK) {
		/* refused whole (a limit, a token, a pause): as singles */
		batch_send_apart(b);
		goto out;
	}
	if (r->status == 0)
		snprintf(why, sizeof(why), "upstream unavailable: %s",
		    r->error);
	else
		snprintf(why, sizeof(why), "upstream answered a batch of %zu "
		    "with another count", b->n);
	log_warn("a forward batch of %zu requests: %s", b->n, why);
	for (size_t i = 0; i < b->n; i++)
		http_respond_error(b->reqs[i], HTTP_UNAVAILABLE, why);
out:
	batch_free(b);
}

/* Send the part's open batch on, alone when it holds one request. */
static void
part_flush(void *arg)
{
	struct fb_part *p = arg;
	struct fb_batch *b = p->open;
	struct forward_batch *fb = p->fb;

	if (b == NULL)
		return;
	p->open = NULL;
	if (b->n == 1) {
		/* the line without its end */
		b->body[b->len - 1] = '\0';
		http_client_request_with(fb->o.hc, fb->o.single_url, b->line,
		    b->body, b->len - 1, forward_relay_reply, b->reqs[0]);
		b->body = NULL;
		batch_free(b);
		return;
	}
	atomic_fetch_add_explicit(&fb->batches, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&fb->requests, b->n, memory_order_relaxed);
	http_client_request_with(fb->o.hc, fb->o.batch_url, b->line, b->body,
	    b->len, on_batch_reply, b);
	b->body = NULL;
	b->len = 0;
}

/* The calling loop's part, made on first use there; NULL: none. */
static struct fb_part *
part_here(struct forward_batch *fb)
{
	struct event_loop *loop = event_loop_current();
	struct fb_part *p;
	int i;

	if (loop == NULL)
		return NULL;
	i = event_loop_index(loop);
	if ((p = fb->parts[i]) != NULL)
		return p;
	p = xcalloc(1, sizeof(*p));
	p->fb = fb;
	p->flush = (struct loop_timer){ -1, part_flush, p };
	if (event_loop_add_timer(loop, &p->flush) != 0) {
		free(p);
		return NULL;
	}
	fb->parts[i] = p;
	return p;
}

static struct fb_batch *
batch_new(struct forward_batch *fb, const char *client)
{
	struct fb_batch *b = xcalloc(1, sizeof(*b));

	b->fb = fb;
	if (*client != '\0')
		xasprintf(&b->line, "%s: %s", fb->o.client_header,
		    client);
	b->reqs = xcalloc(fb->o.max_items, sizeof(*b->reqs));
	b->ends = xcalloc(fb->o.max_items, sizeof(*b->ends));
	return b;
}

/* Whether b carries the requests of client ("": none). */
static bool
batch_of(const struct fb_batch *b, const char *client)
{
	if (b->line == NULL)
		return *client == '\0';
	return strcmp(b->line + strlen(b->fb->o.client_header) + 2,
	    client) == 0;
}

void
forward_batch_add(struct forward_batch *fb, struct http_request *req,
    const char *body, size_t len, const char *client)
{
	struct fb_part *p = part_here(fb);
	struct fb_batch *b;
	char *line = NULL;

	if (p == NULL || len + 1 > fb->o.max_bytes) {
		char *copy = xmalloc(len + 1);

		memcpy(copy, body, len);
		copy[len] = '\0';
		if (*client != '\0')
			xasprintf(&line, "%s: %s", fb->o.client_header,
			    client);
		http_client_request_with(fb->o.hc, fb->o.single_url, line,
		    copy, len, forward_relay_reply, req);
		free(line);
		return;
	}
	/* a batch is one client's: ingest gives all its items to it */
	if (p->open != NULL && (p->open->len + len + 1 > fb->o.max_bytes ||
	    !batch_of(p->open, client)))
		part_flush(p);
	if ((b = p->open) == NULL) {
		b = p->open = batch_new(fb, client);
		/* due now: the loop runs it once this pass's events are done */
		p->flush.at_ms = clock_now_ms();
	}
	if (b->len + len + 1 > b->cap) {
		b->cap = b->len + len + 1 > 2 * b->cap ? b->len + len + 1 :
		    2 * b->cap;
		b->body = xrealloc(b->body, b->cap);
	}
	memcpy(b->body + b->len, body, len);
	b->len += len;
	b->ends[b->n] = b->len;
	b->body[b->len++] = '\n';
	b->reqs[b->n++] = req;
	if (b->n == fb->o.max_items)
		part_flush(p);
}

void
forward_batch_counts(struct forward_batch *fb, uint64_t *batches,
    uint64_t *requests)
{
	*batches = atomic_load_explicit(&fb->batches, memory_order_relaxed);
	*requests = atomic_load_explicit(&fb->requests, memory_order_relaxed);
}

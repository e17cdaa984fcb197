/* forward_batch.h - single requests carried to the next hop together */
#ifndef DIPLOM_FORWARD_BATCH_H
#define DIPLOM_FORWARD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_client.h"
#include "http_server.h"

struct forward_batch;

struct forward_batch_opts {
	struct http_client *hc;
	const char *single_url;	/* where one request goes alone */
	const char *batch_url;	/* takes NDJSON, items judged as singles */
	size_t max_items;	/* the most requests one batch carries */
	size_t max_bytes;	/* the most bytes one batch body holds */
	const char *client_header; /* names a request's client to the hop */
};

/*
 * Under load, many single requests wait on the same loop at once: those
 * that arrive in one pass of the loop go on as one batch request, sent
 * when the pass ends or the batch is full. An idle loop sends a request
 * alone, as soon as it has read it. Each request gets its own answer: a
 * copy of the next hop's, as if it had gone alone.
 */
int forward_batch_new(struct forward_batch **fb,
    const struct forward_batch_opts *o, char **cause);
/* After the server's loops have stopped and the client has stopped. */
void forward_batch_free(struct forward_batch *fb);

/*
 * Whether body may share a batch: one line of a JSON object, so that the
 * NDJSON batch holds it as one item and judges it as it would alone, and
 * small (16 KiB at most).
 */
bool forward_batch_fits(const char *body, size_t len);
/*
 * From a handler on a server loop: send req's body on (copied), for client
 * ("": none), named in client_header. A batch carries one client's
 * requests only.
 */
void forward_batch_add(struct forward_batch *fb, struct http_request *req,
    const char *body, size_t len, const char *client);

/* Batches sent, and the requests they carried; relaxed counts. */
void forward_batch_counts(struct forward_batch *fb, uint64_t *batches,
    uint64_t *requests);

/*
 * The next hop's answer to req, passed back as it is; no answer is a 503
 * naming why. An http_client_cb for requests that go alone.
 */
void forward_relay_reply(void *req, const struct http_reply *r);

#endif

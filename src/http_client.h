/* http_client.h - asynchronous HTTP requests on the server's event loops */
#ifndef DIPLOM_HTTP_CLIENT_H
#define DIPLOM_HTTP_CLIENT_H

#include <stddef.h>

struct http_client;

struct http_reply {
	int status;		/* HTTP status, 0 when there was no answer */
	const char *body;	/* valid during the callback only */
	size_t len;
	const char *error;	/* why there was no answer */
};

/*
 * Called once per request, on the loop that sent it; must not block. A
 * request still in flight when the client stops gets its call from
 * http_client_stop, with status 0, once the loops have stopped.
 */
typedef void (*http_client_cb)(void *arg, const struct http_reply *reply);

int http_client_start(struct http_client **hc, long timeout_ms, char **cause);
/*
 * Before the first request: verify https peers against the PEM CA
 * certificates in ca_file (NULL: the system's), and send
 * "Authorization: Bearer <bearer_token>" with every request (NULL: none).
 * A CA file that cannot be read is an error naming it.
 */
int http_client_secure(struct http_client *hc, const char *ca_file,
    const char *bearer_token, char **cause);
/*
 * Free the client; the server's loops must have stopped. Requests still in
 * flight are called back with status 0 ("the client stopped").
 */
void http_client_stop(struct http_client *hc);

/*
 * Send a request from a server event loop thread (a handler or a callback):
 * body (malloc'd, taken) is POSTed as JSON when not NULL, otherwise it is a
 * GET. Connections are kept alive and reused.
 */
void http_client_request(struct http_client *hc, const char *url,
    char *body, size_t len, http_client_cb cb, void *arg);
/*
 * The same with more header lines ("Name: value", several apart by "\n"),
 * NULL: none.
 */
void http_client_request_with(struct http_client *hc, const char *url,
    const char *header, char *body, size_t len, http_client_cb cb,
    void *arg);

/* Percent-encode s for use as one path segment. */
char *http_path_escape(const char *s);

#endif

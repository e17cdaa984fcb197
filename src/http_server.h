/* http_server.h - a thin layer over libmicrohttpd with async completion */
#ifndef DIPLOM_HTTP_SERVER_H
#define DIPLOM_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct http_server;
struct http_request;

/* The statuses the roles answer with. */
enum http_status {
	HTTP_OK = 200,
	HTTP_ACCEPTED = 202,
	HTTP_BAD_REQUEST = 400,
	HTTP_UNAUTHORIZED = 401,
	HTTP_NOT_FOUND = 404,
	HTTP_METHOD_NOT_ALLOWED = 405,
	HTTP_CONFLICT = 409,
	HTTP_PAYLOAD_TOO_LARGE = 413,
	HTTP_UNPROCESSABLE = 422,
	HTTP_TOO_MANY_REQUESTS = 429,
	HTTP_INTERNAL_ERROR = 500,
	HTTP_NOT_IMPLEMENTED = 501,
	HTTP_BAD_GATEWAY = 502,
	HTTP_UNAVAILABLE = 503,
};

/*
 * A handler answers with one http_respond* call, either before it returns
 * or later from any thread: the connection waits, suspended, meanwhile.
 */
typedef void (*http_handler_fn)(struct http_request *req, void *ctx);

/*
 * Called once a request's head is in, before any of its body is read or
 * counted against the body memory: a request refused here (false, and
 * answered with one http_respond* call before returning) has taken
 * nothing but its head. A request let through may be given its client's
 * identity with http_req_set_client.
 */
typedef bool (*http_admit_fn)(struct http_request *req, void *ctx);

struct http_route {
	const char *method;
	const char *path;	/* exact, or a prefix when it ends in '/' */
	http_handler_fn fn;
};

struct http_server_opts {
	const char *address;
	int port;
	size_t max_body;
	/*
	 * What one client may hold: connections from one address (0: no
	 * limit); the time to send a whole request, from the connection's
	 * start or from the end of the keep-alive wait after the last answer
	 * (0: none); the time a kept-alive connection may sit idle (0: 120 s);
	 * the bytes all request bodies being received may take together, past
	 * which a new upload is answered 503 (0: no limit).
	 */
	int max_client_conns;
	int64_t request_timeout_ms;
	int64_t idle_timeout_ms;
	size_t body_memory;
	/*
	 * An IPv6 client is its /64, as one host commonly holds all of it.
	 * Connections from the addresses of one prefix (prefix_v4 and
	 * prefix_v6 bits long), together (0: no limit). The percentage of
	 * body_memory one client's bodies may hold (0: all of it), the
	 * client being what admit named, else its address.
	 */
	int max_prefix_conns;
	int prefix_v4, prefix_v6;
	int body_share;
	http_admit_fn admit;		/* NULL: every request is let in */
	/*
	 * HTTPS only, with this PEM certificate chain and key, when both are
	 * set (one alone is an error); http_server_reload_tls reads them
	 * again.
	 */
	const char *tls_cert_file;
	const char *tls_key_file;
	/* GnuTLS priorities of the handshakes (NULL: HTTP_TLS_PRIORITIES) */
	const char *tls_priorities;
	/*
	 * Answer 401 to every request but GET /health that does not carry
	 * "Authorization: Bearer <bearer_token>" (NULL: no such check).
	 */
	const char *bearer_token;
	const struct http_route *routes;
	size_t n_routes;
	void *ctx;			/* passed to every handler */
};

int http_server_start(struct http_server **srv,
    const struct http_server_opts *opts, char **cause);
/*
 * Read the certificate and key again, for the handshakes from now on;
 * connections already made go on with theirs. 0 when the server has no
 * TLS; on failure the old ones stay, and *cause says why.
 */
int http_server_reload_tls(struct http_server *srv, char **cause);
/* Answer 503 to every request but GET /health from now on. */
void http_server_drain(struct http_server *srv);
/*
 * Whether the server serving req is draining. Handlers ask the request, not
 * the role's server pointer, which is only set once the start returns while
 * requests may already arrive.
 */
bool http_req_draining(const struct http_request *req);
/* Wait up to timeout_ms until no request is in progress; 0 or -ETIMEDOUT. */
int http_server_wait_idle(struct http_server *srv, int64_t timeout_ms);
void http_server_stop(struct http_server *srv);
/*
 * Liveness, for a watchdog: ping every event loop; answered says whether
 * each went round since the last ping.
 */
void http_server_ping(struct http_server *srv);
bool http_server_answered(struct http_server *srv);
/* Requests answered so far. */
uint64_t http_server_requests(struct http_server *srv);

const char *http_req_path(const struct http_request *req);
/* The part of the path after a prefix route's prefix. */
const char *http_req_tail(const struct http_request *req);
const char *http_req_body(const struct http_request *req, size_t *len);
/*
 * A request header's value, NULL when absent; in the handler only. Blanks
 * (space, tab) at either end are not part of it.
 */
const char *http_req_header(const struct http_request *req,
    const char *name);

/*
 * The client's address as http_addr_key gives it (an IPv6 one as its /64)
 * into addr; returns how many bytes, 0 when it is neither.
 */
size_t http_req_client_addr(const struct http_request *req,
    unsigned char addr[16]);

/*
 * Who sent req, for its share of the body memory: key, up to
 * HTTP_CLIENT_KEY_MAX bytes (a key's digest, say). In the admit hook only:
 * the body is counted from then on.
 */
#define HTTP_CLIENT_KEY_MAX 32
void http_req_set_client(struct http_request *req, const void *key,
    size_t len);

/*
 * The address of sa as the server keys its clients: 4 bytes for IPv4, 16
 * for IPv6 with all but its /64 zeroed; 0 when it is neither.
 */
struct sockaddr;
size_t http_addr_key(const struct sockaddr *sa, unsigned char key[16]);
/* Zero all but the first bits of a key of len bytes. */
void http_addr_prefix(unsigned char *key, size_t len, int bits);

/* A query argument's value ("" for ?name), NULL when absent; in the handler. */
const char *http_req_query(const struct http_request *req, const char *name);

/* Answer with body (malloc'd, taken; NULL for none) as application/json. */
void http_respond(struct http_request *req, int status, char *body,
    size_t len);
/* The same with another content type (a static string), NULL: JSON. */
void http_respond_typed(struct http_request *req, int status, char *body,
    size_t len, const char *content_type);
/*
 * {"error": reason}; a 503 carries Retry-After (1 s, or what
 * http_req_retry_after set), a 429 too, and a 401 WWW-Authenticate: Bearer.
 */
void http_respond_error(struct http_request *req, int status,
    const char *reason);

/* The Retry-After of a 503 or 429 answer to req, in seconds. */
void http_req_retry_after(struct http_request *req, int seconds);

/* The server's request counts and latency histogram, Prometheus text. */
void http_write_metrics(const struct http_request *req, FILE *out);

#endif

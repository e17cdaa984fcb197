/*
 * fuzz_http.c - raw bytes into the project's HTTP server (http_server.c over
 * libmicrohttpd, with the options the daemon uses), serving a route table
 * like the roles': the request decoders, a prefix route, health, metrics,
 * and a route answered later from another thread, so that suspend and
 * resume are driven too. Each input goes over one loopback connection: send
 * it, half-close, read the answers, then close, or reset when the server has
 * not closed. The server must neither crash nor leak.
 *
 * libmicrohttpd 0.9.75 with MHD_USE_EPOLL and MHD_ALLOW_SUSPEND_RESUME may
 * miss a client's half-close that arrives together with data, and then keeps
 * the connection until its timeout (a request waiting for the rest of its
 * body stays in progress as long). So the client does not wait for the
 * server to close: once every answer is complete and no request is in
 * progress, or the server has been silent for QUIET_MS, it resets the
 * connection, which the server does notice.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clock.h"
#include "fuzz.h"
#include "http_server.h"
#include "log.h"
#include "message.h"
#include "role.h"

#define MAX_BODY 4096
/* An answer that goes on this long is not going to end. */
#define ANSWER_TIMEOUT_MS 20000
#define LATER_MAX 64
/* How long a silent server is given to go on answering. */
#define QUIET_MS 5

/* Requests for the helper thread to answer. */
struct later {
	/* lock guards everything below */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct http_request *pending[LATER_MAX];
	size_t n;
	bool stop;
	pthread_t thread;
};

struct fuzz_http {
	struct http_server *srv;
	struct later later;
	struct sockaddr_in addr;
};

static struct fuzz_http fh;

/* Whether buf holds whole responses only, each with its Content-Length. */
static bool
answers_complete(const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		const char *head = buf + off, *end, *cl;
		size_t hlen, body = 0;

		end = memmem(head, len - off, "\r\n\r\n", 4);
		if (end == NULL)
			return false;
		hlen = (size_t)(end - head) + 4;
		cl = memmem(head, hlen, "\r\nContent-Length: ", 18);
		if (cl != NULL)
			body = strtoul(cl + 18, NULL, 10);
		if (len - off - hlen < body)
			return false;
		off += hlen + body;
	}
	return len > 0;
}

static const struct metadata_limits limits = { 64, 256, 4096 };

static void
on_ingest(struct http_request *req, void *ctx)
{
	struct data_message *m;
	char *cause = NULL, *body;
	size_t len;
	const char *raw = http_req_body(req, &len);

	(void)ctx;
	if (message_from_ingest_request(raw, len, &limits, &m,
	    &cause) != 0) {
		http_respond_error(req, 400, cause != NULL ? cause : "invalid");
		free(cause);
		return;
	}
	body = message_encode(m, &len);
	message_free(m);
	http_respond(req, 200, body, body != NULL ? len : 0);
}

static void
on_enqueue(struct http_request *req, void *ctx)
{
	struct data_message *m;
	char *cause = NULL;
	size_t len;
	const char *raw = http_req_body(req, &len);

	(void)ctx;
	if (message_decode(raw, len, &m, &cause) != 0) {
		http_respond_error(req, 400, cause != NULL ? cause : "invalid");
		free(cause);
		return;
	}
	message_free(m);
	http_respond(req, 202, strdup("{\"status\":\"queued\"}"), 19);
}

/* GET /results/{id}: a result whose bytes are the id, as the store gives. */
static void
on_result(struct http_request *req, void *ctx)
{
	struct processing_result res = { 0 };
	const char *tail = http_req_tail(req);
	char *body;
	size_t len = 0;

	(void)ctx;
	res.message_id = strdup(tail);
	res.result = (unsigned char *)strdup(tail);
	res.result_len = strlen(tail);
	res.success = true;
	if (res.message_id == NULL || res.result == NULL) {
		result_clear(&res);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	body = result_to_json(&res, &len);
	result_clear(&res);
	http_respond(req, 200, body, body != NULL ? len : 0);
}

static void
on_health(struct http_request *req, void *ctx)
{
	(void)ctx;
	role_respond_health(req, !http_req_draining(req), "draining");
}

static void
on_metrics(struct http_request *req, void *ctx)
{
	/* what /metrics says of the role: a gateway's */
	static char memory[] = "memory";
	static const struct config cfg = { .role = ROLE_GATEWAY,
		.queue_type = memory };

	(void)ctx;
	role_respond_metrics(req, &cfg, NULL, NULL);
}

/* POST /later: the helper thread answers once the handler has returned. */
static void
on_later(struct http_request *req, void *ctx)
{
	struct later *l = &((struct fuzz_http *)ctx)->later;
	bool queued = false;

	pthread_mutex_lock(&l->lock);
	if (l->n < LATER_MAX) {
		l->pending[l->n++] = req;
		queued = true;
		pthread_cond_signal(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
	if (!queued)
		http_respond_error(req, 503, "busy");
}

static void *
later_main(void *arg)
{
	struct later *l = arg;
	struct http_request *req;
	const char *body;
	char *out;
	size_t len;
	int n;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (l->n == 0 && !l->stop)
			pthread_cond_wait(&l->cond, &l->lock);
		if (l->n == 0)
			break;
		req = l->pending[--l->n];
		pthread_mutex_unlock(&l->lock);
		body = http_req_body(req, &len);
		n = asprintf(&out, "{\"bytes\":%zu,\"first\":%d}", len,
		    len > 0 ? (unsigned char)body[0] : -1);
		http_respond(req, 200, n < 0 ? NULL : out, n < 0 ? 0 :
		    (size_t)n);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static const struct http_route routes[] = {
	{ "POST", "/ingest", on_ingest },
	{ "POST", "/enqueue", on_enqueue },
	{ "GET", "/results/", on_result },
	{ "GET", "/health", on_health },
	{ "GET", "/metrics", on_metrics },
	{ "POST", "/later", on_later },
};

/* A loopback port nobody listens on right now. */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static void
fuzz_http_stop(void)
{
	struct later *l = &fh.later;

	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	http_server_stop(fh.srv);
	fh.srv = NULL;
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct http_server_opts o = {
		.address = "127.0.0.1",
		.max_body = MAX_BODY,
		/* the daemon's defaults: the fuzzer meets the same checks */
		.max_client_conns = 1024,
		.request_timeout_ms = 30000,
		.body_memory = 64 << 20,
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(*routes),
		.ctx = &fh,
	};
	char *cause = NULL;
	int rc = -1;

	(void)argc;
	(void)argv;
	log_init("fuzz_http", LOG_LEVEL_ERROR);
	pthread_mutex_init(&fh.later.lock, NULL);
	pthread_cond_init(&fh.later.cond, NULL);
	if (pthread_create(&fh.later.thread, NULL, later_main,
	    &fh.later) != 0) {
		fprintf(stderr, "fuzz_http: cannot start the helper thread\n");
		exit(1);
	}
	for (int tries = 0; tries < 20 && rc != 0; tries++) {
		if ((o.port = free_port()) < 0)
			continue;
		free(cause);
		cause = NULL;
		rc = http_server_start(&fh.srv, &o, &cause);
	}
	if (rc != 0) {
		fprintf(stderr, "fuzz_http: %s\n", cause ? cause : "no server");
		exit(1);
	}
	fh.addr = (struct sockaddr_in){ .sin_family = AF_INET,
		.sin_port = htons((uint16_t)o.port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	atexit(fuzz_http_stop);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pollfd pfd;
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	static char buf[1 << 20];
	int64_t now = clock_now_ms(), deadline = now + ANSWER_TIMEOUT_MS;
	int64_t quiet_at = -1;
	size_t off = 0, got = 0;
	ssize_t n;
	int s, wait;
	bool wr_open = true, closed = false;

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(s >= 0);
	if (connect(s, (struct sockaddr *)&fh.addr, sizeof(fh.addr)) != 0)
		FUZZ_CHECK(errno == EINPROGRESS);
	/* write and read at once: the server may answer before it read all */
	for (;;) {
		if (wr_open && off == size) {
			shutdown(s, SHUT_WR);
			wr_open = false;
		}
		now = clock_now_ms();
		if (!wr_open) {
			if (answers_complete(buf, got) &&
			    http_server_wait_idle(fh.srv, 0) == 0)
				break;
			if (quiet_at < 0)
				quiet_at = now + QUIET_MS;
			else if (now >= quiet_at)
				break;
		}
		if (now >= deadline) {
			fprintf(stderr, "fuzz_http: the answer goes on after "
			    "%d ms\n", ANSWER_TIMEOUT_MS);
			abort();
		}
		wait = (int)(deadline - now);
		if (!wr_open && quiet_at - now < wait)
			wait = (int)(quiet_at - now);
		pfd = (struct pollfd){ .fd = s,
			.events = POLLIN | (wr_open ? POLLOUT : 0) };
		if (poll(&pfd, 1, wait > 0 ? wait : 0) < 0) {
			FUZZ_CHECK(errno == EINTR);
			continue;
		}
		if (wr_open && (pfd.revents & POLLOUT)) {
			n = send(s, data + off, size - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				wr_open = false;	/* the server closed */
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(s, buf + got, sizeof(buf) - got, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN &&
			    errno != EINTR)) {
				closed = true;
				break;
			}
			if (n > 0) {
				got = got + (size_t)n < sizeof(buf) ?
				    got + (size_t)n : 0;
				quiet_at = -1;
			}
		}
	}
	/* the server may not have seen the half-close: reset instead */
	if (!closed)
		setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(s);
	return 0;
}

/* http_server.c - libmicrohttpd: routing, bodies, errors, suspend/resume */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "clock.h"
#include "event_loop.h"
#include "histogram.h"
#include "http_server.h"
#include "http_tls.h"
#include "log.h"
#include "message.h"
#include "xmalloc.h"

/* How long a client may wait on 503 before trying again, in seconds. */
#define RETRY_AFTER "1"

/* The statuses counted one by one in the metrics; others count as "other". */
static const int counted_codes[] = { 200, 202, 400, 401, 404, 405, 409, 413,
	422, 429, 500, 502, 503 };
#define N_CODES (sizeof(counted_codes) / sizeof(*counted_codes) + 1)
/* Upper bounds of the latency histogram's buckets, in seconds. */
static const double latency_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 5 };

/* Request counts and latencies; relaxed atomics, added on the loops. */
struct http_metrics {
	atomic_uint_fast64_t by_code[N_CODES];
	struct histogram latency;
	atomic_uint_fast64_t conns_refused;	/* over a client's or prefix's */
	atomic_uint_fast64_t conns_reaped;	/* idle while near the limit */
	atomic_uint_fast64_t request_timeouts;	/* cut off mid-request */
	atomic_uint_fast64_t bodies_refused;	/* over the body memory */
};

#define DEFAULT_IDLE_MS 120000
/* Bodies up to this size do not count against the body memory. */
#define SMALL_BODY (16 * 1024)
#define CLIENT_BUCKETS 1024
/* Connections one loop's daemon takes. */
#define LOOP_CONNS 4096U
/*
 * Past this many connections on a loop, one that has sent no whole request
 * for PRESSURE_IDLE_MS is closed, not left to its deadline: idle and
 * header-only connections make room for clients with something to send.
 */
#define PRESSURE_CONNS (LOOP_CONNS / 4 * 3)
#define PRESSURE_IDLE_MS 2000
/* How often the sweep goes through a loop's connections under pressure. */
#define PRESSURE_SWEEP_MS 250

/*
 * What one client holds: a tag, then its key. 'a': connections from an
 * address; 'p': connections from a prefix; 'b': bytes of bodies held by a
 * client (the admit hook's name for it, or its address).
 */
#define COUNT_KEY_MAX (1 + HTTP_CLIENT_KEY_MAX)
struct client_count {
	struct client_count *next;
	unsigned char key[COUNT_KEY_MAX];
	unsigned char len;
	int64_t n;
};

/* What the server keeps per connection, as libmicrohttpd's socket context. */
struct conn_state {
	struct conn_state *next, *prev;	/* the loop's connections */
	struct MHD_Connection *conn;
	int fd;
	int64_t deadline_ms;		/* whole request in by then; <0: none */
	int64_t waiting_ms;		/* since when it has (deadline >= 0) */
	unsigned char addr[1 + 16];	/* 'a', then the address */
	unsigned char prefix[1 + 16];	/* 'p', then its prefix */
	unsigned char len;		/* of both; 0: not counted */
	struct http_tls_set *tls;	/* held while it is open */
};

/*
 * One per thread: an event loop that runs its own libmicrohttpd daemon, all
 * accepting on one listening socket. Handlers run on the loop, and the HTTP
 * client's transfers started there run on the same loop, so a request that
 * goes on to another hop crosses no thread.
 */
struct server_loop {
	struct http_server *srv;
	struct event_loop *loop;
	struct MHD_Daemon *mhd;
	struct loop_watch watch;	/* the daemon's epoll fd */
	struct loop_timer timer;	/* the daemon's next timeout */
	/*
	 * A daemon without threads of its own handles a resumed connection
	 * only when run again: an answer from another thread writes here.
	 */
	struct loop_watch kick;		/* eventfd */
	/* the loop's connections, for their request deadlines */
	struct conn_state conns;	/* list head */
	unsigned int nconns;
	struct loop_timer sweep;	/* the earliest deadline */
};

struct http_server {
	int listen_fd;
	int nloops;
	struct server_loop loops[EVENT_LOOP_MAX];
	struct http_server_opts opts;
	struct http_metrics metrics;
	atomic_bool draining;
	/* lock guards in_flight; idle is signalled when it drops to 0 */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int in_flight;
	/* clients_lock guards clients: what each client holds */
	pthread_mutex_t clients_lock;
	struct client_count *clients[CLIENT_BUCKETS];
	atomic_size_t body_bytes;	/* held by request bodies */
	struct http_tls *tls;		/* NULL: plain HTTP */
	/* the SHA-256 of the bearer token required, when need_token */
	bool need_token;
	unsigned char token_digest[32];
};

struct http_request {
	struct http_server *srv;
	struct server_loop *sl;		/* the loop that serves it */
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	const char *tail;
	char *body;
	size_t len, cap;
	bool too_large;
	bool over_budget;		/* body memory is at its limit */
	size_t counted;			/* of cap, against body_memory */
	unsigned char client[COUNT_KEY_MAX];	/* 'b', then its key */
	unsigned char client_len;
	bool refused;			/* answered by the admit hook */
	bool bad_framing;		/* conflicting Content-Length, no Host */
	const char *bad_why;
	int bad_status;			/* of bad_framing; 0: 400 */
	struct trimmed *trimmed;	/* header values given out trimmed */
	bool unauthorized;		/* no or a wrong bearer token */
	bool dispatched;
	/* lock guards the fields below: handler thread vs. completing thread */
	pthread_mutex_t lock;
	bool suspended;
	bool ready;
	bool queued;
	int64_t start_ns;
	const char *ctype;		/* content type of resp */
	int status;
	char *resp;
	size_t resp_len;
	char allow[32];
	int retry_after;		/* seconds, 0: the default */
};


/* A header value with blanks at its end, copied without them. */
struct trimmed {
	struct trimmed *next;
	char value[];
};

const char *
http_req_path(const struct http_request *req)
{
	return req->path;
}

const char *
http_req_tail(const struct http_request *req)
{
	return req->tail;
}

const char *
http_req_body(const struct http_request *req, size_t *len)
{
	*len = req->len;
	return req->body != NULL ? req->body : "";
}

/*
 * libmicrohttpd drops the blanks before a value but keeps those after it:
 * a trimmed copy lives as long as the request, so that " k" and "k " are
 * one and the same everywhere (an Idempotency-Key, a bearer token).
 */
const char *
http_req_header(const struct http_request *req, const char *name)
{
	/* the request is never const itself: only this list changes */
	struct http_request *r = (struct http_request *)(uintptr_t)req;
	const char *v = MHD_lookup_connection_value(req->conn,
	    MHD_HEADER_KIND, name);
	struct trimmed *t;
	size_t n;

	if (v == NULL)
		return NULL;
	for (; *v == ' ' || *v == '\t'; v++)
		;
	for (n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t');
	    n--)
		;
	if (v[n] == '\0')
		return v;
	t = xmalloc(sizeof(*t) + n + 1);
	memcpy(t->value, v, n);
	t->value[n] = '\0';
	pthread_mutex_lock(&r->lock);
	t->next = r->trimmed;
	r->trimmed = t;
	pthread_mutex_unlock(&r->lock);
	return t->value;
}

static void
trimmed_free(struct http_request *req)
{
	while (req->trimmed != NULL) {
		struct trimmed *t = req->trimmed;

		req->trimmed = t->next;
		free(t);
	}
}

size_t
http_req_client_addr(const struct http_request *req, unsigned char addr[16])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return http_addr_key(ci != NULL ? ci->client_addr : NULL, addr);
}

void
http_req_set_client(struct http_request *req, const void *key, size_t len)
{
	if (req->counted > 0)
		return;		/* its count goes back where it was taken */
	if (len > HTTP_CLIENT_KEY_MAX)
		len = HTTP_CLIENT_KEY_MAX;
	req->client[0] = 'b';
	memcpy(req->client + 1, key, len);
	req->client_len = (unsigned char)(1 + len);
}

void
http_req_retry_after(struct http_request *req, int seconds)
{
	req->retry_after = seconds;
}

const char *
http_req_query(const struct http_request *req, const char *name)
{
	const char *v = MHD_lookup_connection_value(req->conn,
	    MHD_GET_ARGUMENT_KIND, name);

	/* ?name without '=' has no value: present all the same */
	if (v == NULL && MHD_lookup_connection_value_n(req->conn,
	    MHD_GET_ARGUMENT_KIND, name, strlen(name), NULL, NULL) == MHD_YES)
		return "";
	return v;
}

static void
count_request(struct http_metrics *m, int status, int64_t ns)
{
	size_t i;

	for (i = 0; i < N_CODES - 1 && counted_codes[i] != status; i++)
		;
	atomic_fetch_add_explicit(&m->by_code[i], 1, memory_order_relaxed);
	histogram_observe_ns(&m->latency, ns);
}

void
http_write_metrics(const struct http_request *req, FILE *out)
{
	const struct http_metrics *m = &req->srv->metrics;

	fprintf(out, "# HELP diplom_http_requests_total HTTP requests answered, "
	    "by status.\n# TYPE diplom_http_requests_total counter\n");
	for (size_t i = 0; i < N_CODES; i++) {
		char code[8] = "other";

		if (i < N_CODES - 1)
			snprintf(code, sizeof(code), "%d", counted_codes[i]);
		fprintf(out, "diplom_http_requests_total{code=\"%s\"} %ju\n",
		    code, (uintmax_t)atomic_load(&m->by_code[i]));
	}
	histogram_write(&m->latency, out,
	    "diplom_http_request_duration_seconds",
	    "Time from a request's arrival to its answer.");
	fprintf(out, "# HELP diplom_http_connections_refused_total "
	    "Connections refused: their client address or its prefix held "
	    "its limit.\n"
	    "# TYPE diplom_http_connections_refused_total counter\n"
	    "diplom_http_connections_refused_total %ju\n"
	    "# HELP diplom_http_request_timeouts_total Connections closed "
	    "for not sending a whole request in time.\n"
	    "# TYPE diplom_http_request_timeouts_total counter\n"
	    "diplom_http_request_timeouts_total %ju\n"
	    "# HELP diplom_http_bodies_refused_total Uploads answered 503: "
	    "request bodies held all the memory they may.\n"
	    "# TYPE diplom_http_bodies_refused_total counter\n"
	    "diplom_http_bodies_refused_total %ju\n"
	    "# HELP diplom_http_connections_reaped_total Connections closed "
	    "early, without a whole request, while the server was near its "
	    "connection limit.\n"
	    "# TYPE diplom_http_connections_reaped_total counter\n"
	    "diplom_http_connections_reaped_total %ju\n",
	    (uintmax_t)atomic_load(&m->conns_refused),
	    (uintmax_t)atomic_load(&m->request_timeouts),
	    (uintmax_t)atomic_load(&m->bodies_refused),
	    (uintmax_t)atomic_load(&m->conns_reaped));
}

/* --- what one client may hold ------------------------------------------ */

size_t
http_addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr, 16);
		/* a host is commonly given a whole /64 to pick from */
		http_addr_prefix(key, 16, 64);
		return 16;
	}
	return 0;
}

void
http_addr_prefix(unsigned char *key, size_t len, int bits)
{
	for (size_t i = 0; i < len; i++) {
		int keep = bits - (int)i * 8;

		if (keep <= 0)
			key[i] = 0;
		else if (keep < 8)
			key[i] &= (unsigned char)(0xff << (8 - keep));
	}
}

static size_t
count_hash(const unsigned char *key, unsigned char len)
{
	size_t h = 2166136261u;

	for (unsigned char i = 0; i < len; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % CLIENT_BUCKETS;
}

/* The count for key; clients_lock held. */
static struct client_count **
count_slot(struct http_server *srv, const unsigned char *key,
    unsigned char len)
{
	struct client_count **pp = &srv->clients[count_hash(key, len)];

	while (*pp != NULL && ((*pp)->len != len ||
	    memcmp((*pp)->key, key, len) != 0))
		pp = &(*pp)->next;
	return pp;
}

/* What key holds; clients_lock held. */
static int64_t
count_of(struct http_server *srv, const unsigned char *key,
    unsigned char len)
{
	struct client_count *c = *count_slot(srv, key, len);

	return c != NULL ? c->n : 0;
}

/*
 * Add delta to what key holds, unless that takes it past limit (0: none):
 * then false, and nothing changes. clients_lock held.
 */
static bool
count_add(struct http_server *srv, const unsigned char *key,
    unsigned char len, int64_t delta, int64_t limit)
{
	struct client_count **pp = count_slot(srv, key, len), *c = *pp;

	if (delta > 0 && limit > 0 && (c != NULL ? c->n : 0) + delta > limit)
		return false;
	if (c == NULL && delta > 0) {
		c = xcalloc(1, sizeof(*c));
		memcpy(c->key, key, len);
		c->len = len;
		*pp = c;
	}
	if (c != NULL && (c->n += delta) <= 0) {
		*pp = c->next;
		free(c);
	}
	return true;
}

/* The address and prefix keys of sa into cs; false when it has none. */
static bool
conn_keys(const struct http_server *srv, const struct sockaddr *sa,
    struct conn_state *cs)
{
	size_t n = http_addr_key(sa, cs->addr + 1);

	if (n == 0)
		return false;
	cs->addr[0] = 'a';
	memcpy(cs->prefix, cs->addr, 1 + n);
	cs->prefix[0] = 'p';
	http_addr_prefix(cs->prefix + 1, n, n == 4 ? srv->opts.prefix_v4 :
	    srv->opts.prefix_v6);
	cs->len = (unsigned char)(1 + n);
	return true;
}

static bool
conn_limits(const struct http_server *srv)
{
	return srv->opts.max_client_conns > 0 || srv->opts.max_prefix_conns > 0;
}

/* Refuse a connection whose address or prefix holds its limit already. */
static enum MHD_Result
on_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *srv = cls;
	const struct http_server_opts *o = &srv->opts;
	struct conn_state cs;
	bool full;

	(void)addrlen;
	if (!conn_limits(srv) || !conn_keys(srv, addr, &cs))
		return MHD_YES;
	pthread_mutex_lock(&srv->clients_lock);
	full = (o->max_client_conns > 0 && count_of(srv, cs.addr, cs.len) >=
	    o->max_client_conns) || (o->max_prefix_conns > 0 &&
	    count_of(srv, cs.prefix, cs.len) >= o->max_prefix_conns);
	pthread_mutex_unlock(&srv->clients_lock);
	if (full)
		atomic_fetch_add(&srv->metrics.conns_refused, 1);
	return full ? MHD_NO : MHD_YES;
}

static void
client_add(struct http_server *srv, struct conn_state *cs, int delta)
{
	if (!conn_limits(srv) || cs->len == 0)
		return;
	pthread_mutex_lock(&srv->clients_lock);
	count_add(srv, cs->addr, cs->len, delta, 0);
	count_add(srv, cs->prefix, cs->len, delta, 0);
	pthread_mutex_unlock(&srv->clients_lock);
}

/* Give cs until deadline (ms, <0: none) to send a whole request. */
static void
conn_deadline(struct server_loop *sl, struct conn_state *cs, int64_t at)
{
	cs->deadline_ms = at;
	if (at >= 0 && (sl->sweep.at_ms < 0 || at < sl->sweep.at_ms))
		sl->sweep.at_ms = at;
}

/* Have the sweep run by at (ms) at the latest. */
static void
sweep_by(struct server_loop *sl, int64_t at)
{
	if (sl->sweep.at_ms < 0 || at < sl->sweep.at_ms)
		sl->sweep.at_ms = at;
}

/* When cs is to be closed for want of a request; <0: never. */
static int64_t
conn_cutoff(const struct conn_state *cs, bool pressed, bool *reap)
{
	int64_t at = cs->deadline_ms, early;

	*reap = false;
	if (!pressed || cs->waiting_ms < 0)
		return at;
	early = cs->waiting_ms + PRESSURE_IDLE_MS;
	if (at < 0 || early < at) {
		*reap = true;
		return early;
	}
	return at;
}

/*
 * Close the connections past their deadline, and near the connection
 * limit those that have sent no whole request for a while. Shutting the
 * socket down makes libmicrohttpd see the end of the stream and close it
 * as usual.
 */
static void
on_sweep(void *arg)
{
	struct server_loop *sl = arg;
	int64_t now = clock_now_ms(), next = -1, at;
	bool pressed = sl->nconns > PRESSURE_CONNS, reap;

	for (struct conn_state *cs = sl->conns.next; cs != &sl->conns;
	    cs = cs->next) {
		if ((at = conn_cutoff(cs, pressed, &reap)) < 0)
			continue;
		if (at <= now) {
			cs->deadline_ms = cs->waiting_ms = -1;
			shutdown(cs->fd, SHUT_RDWR);
			atomic_fetch_add(reap ? &sl->srv->metrics.conns_reaped :
			    &sl->srv->metrics.request_timeouts, 1);
			continue;
		}
		if (next < 0 || at < next)
			next = at;
	}
	/* under pressure a sweep goes through thousands: not too often */
	if (pressed && next >= 0 && next < now + PRESSURE_SWEEP_MS)
		next = now + PRESSURE_SWEEP_MS;
	sl->sweep.at_ms = next;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct server_loop *sl = cls;
	struct conn_state *cs = *socket_context;
	const union MHD_ConnectionInfo *ci;
	int64_t rt = sl->srv->opts.request_timeout_ms;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		cs = xcalloc(1, sizeof(*cs));
		cs->conn = conn;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		cs->fd = ci != NULL ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!conn_keys(sl->srv, ci != NULL ? ci->client_addr : NULL,
		    cs))
			cs->len = 0;
		cs->waiting_ms = clock_now_ms();
		cs->next = sl->conns.next;
		cs->prev = &sl->conns;
		cs->next->prev = cs;
		sl->conns.next = cs;
		if (++sl->nconns > PRESSURE_CONNS)
			sweep_by(sl, cs->waiting_ms + PRESSURE_SWEEP_MS);
		conn_deadline(sl, cs, rt > 0 ? clock_now_ms() + rt : -1);
		client_add(sl->srv, cs, 1);
		if (sl->srv->tls != NULL)
			cs->tls = http_tls_hold(sl->srv->tls);
		*socket_context = cs;
		return;
	}
	if (cs == NULL)
		return;
	client_add(sl->srv, cs, -1);
	if (cs->tls != NULL)
		http_tls_release(sl->srv->tls, cs->tls);
	cs->prev->next = cs->next;
	cs->next->prev = cs->prev;
	sl->nconns--;
	free(cs);
	*socket_context = NULL;
}

/* The connection's state, kept in its socket context. */
static struct conn_state *
conn_state_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* Queue the stored answer; called on the connection's own thread. */
static enum MHD_Result
queue_ready(struct http_request *req)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(req->resp_len, req->resp,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL)
		return MHD_NO;
	req->resp = NULL;
	req->queued = true;
	count_request(&req->srv->metrics, req->status,
	    clock_now_ns() - req->start_ns);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    req->ctype != NULL ? req->ctype : "application/json");
	if (req->status == HTTP_UNAVAILABLE ||
	    req->status == HTTP_TOO_MANY_REQUESTS) {
		char secs[16] = RETRY_AFTER;

		if (req->retry_after > 0)
			snprintf(secs, sizeof(secs), "%d", req->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	if (req->status == HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer");
	if (req->allow[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, req->allow);
	/* after bad framing, where the next request starts is not known */
	if (req->bad_framing)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	ret = MHD_queue_response(req->conn, (unsigned int)req->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Have the loop's daemon run soon, from any thread. */
static void
loop_kick(struct server_loop *sl)
{
	if (event_loop_current() == sl->loop)
		sl->timer.at_ms = 0;
	else
		eventfd_poke(sl->kick.fd);
}

void
http_respond(struct http_request *req, int status, char *body, size_t len)
{
	http_respond_typed(req, status, body, len, NULL);
}

void
http_respond_typed(struct http_request *req, int status, char *body,
    size_t len, const char *content_type)
{
	struct MHD_Connection *conn = req->conn;
	struct server_loop *sl = req->sl;
	bool wake;

	pthread_mutex_lock(&req->lock);
	req->status = status;
	req->ctype = content_type;
	req->resp = body;
	req->resp_len = body != NULL ? len : 0;
	req->ready = true;
	wake = req->suspended;
	req->suspended = false;
	pthread_mutex_unlock(&req->lock);
	/*
	 * Answered after the handler returned: wake the connection. Not under
	 * req->lock, since the request may be freed as soon as it resumes.
	 */
	if (wake) {
		MHD_resume_connection(conn);
		loop_kick(sl);
	}
}

void
http_respond_error(struct http_request *req, int status, const char *reason)
{
	size_t len = 0;
	char *body = json_error_body(reason, &len);

	http_respond(req, status, body, len);
}

/* Find the route; 404 and 405 are answered here. */
static void
dispatch(struct http_request *req)
{
	const struct http_server_opts *o = &req->srv->opts;
	bool path_known = false;
	/* HEAD is GET without the body, which libmicrohttpd leaves out */
	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" :
	    req->method;

	for (size_t i = 0; i < o->n_routes; i++) {
		const struct http_route *rt = &o->routes[i];
		size_t n = strlen(rt->path);
		bool prefix = rt->path[n - 1] == '/';

		if (prefix ? strncmp(req->path, rt->path, n) != 0 ||
		    req->path[n] == '\0' : strcmp(req->path, rt->path) != 0)
			continue;
		if (strcmp(method, rt->method) != 0) {
			size_t used = strlen(req->allow);

			/* a 405 lists every method the path has (RFC 9110) */
			snprintf(req->allow + used, sizeof(req->allow) - used,
			    "%s%s%s", used > 0 ? ", " : "", rt->method,
			    strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
			path_known = true;
			continue;
		}
		req->allow[0] = '\0';
		req->tail = req->path + (prefix ? n : strlen(req->path));
		rt->fn(req, o->ctx);
		return;
	}
	if (path_known)
		http_respond_error(req, HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed");
	else
		http_respond_error(req, HTTP_NOT_FOUND, "not found");
}

/* Run the handler; suspend the connection if it did not answer yet. */
static enum MHD_Result
run_request(struct http_request *req)
{
	struct http_server *srv = req->srv;

	struct conn_state *cs = conn_state_of(req->conn);

	req->dispatched = true;
	/* the request is in: its deadline is over */
	if (cs != NULL)
		cs->deadline_ms = cs->waiting_ms = -1;
	if (req->refused) {
		/* the admit hook answered it */
	} else if (req->bad_framing) {
		http_respond_error(req, req->bad_status != 0 ?
		    req->bad_status : HTTP_BAD_REQUEST, req->bad_why);
	} else if (req->unauthorized) {
		http_respond_error(req, HTTP_UNAUTHORIZED,
		    "a valid bearer token is required");
	} else if (req->too_large) {
		char why[80];

		snprintf(why, sizeof(why), "request body too large: the limit "
		    "is %zu bytes", srv->opts.max_body);
		http_respond_error(req, HTTP_PAYLOAD_TOO_LARGE, why);
	} else if (req->over_budget) {
		atomic_fetch_add(&srv->metrics.bodies_refused, 1);
		http_respond_error(req, HTTP_UNAVAILABLE,
		    "too many uploads in progress");
	} else if (atomic_load(&srv->draining) &&
	    strcmp(req->path, "/health") != 0) {
		http_respond_error(req, HTTP_UNAVAILABLE, "shutting down");
	} else {
		dispatch(req);
	}
	pthread_mutex_lock(&req->lock);
	if (!req->ready) {
		req->suspended = true;
		MHD_suspend_connection(req->conn);
		pthread_mutex_unlock(&req->lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&req->lock);
	return queue_ready(req);
}

static struct http_request *
request_new(struct server_loop *sl, struct MHD_Connection *conn,
    const char *method, const char *url)
{
	struct http_server *srv = sl->srv;
	struct http_request *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->srv = srv;
	req->sl = sl;
	req->start_ns = clock_now_ns();
	req->conn = conn;
	req->method = method;
	req->path = url;
	pthread_mutex_init(&req->lock, NULL);
	pthread_mutex_lock(&srv->lock);
	srv->in_flight++;
	pthread_mutex_unlock(&srv->lock);
	return req;
}

/*
 * The client of req, for its share of the body memory: what the admit hook
 * named, else its address.
 */
static void
body_client(struct http_request *req)
{
	size_t n;

	if (req->client_len > 0)
		return;
	req->client[0] = 'b';
	n = http_req_client_addr(req, req->client + 1);
	req->client_len = (unsigned char)(n > 0 ? 1 + n : 0);
}

/*
 * Count more bytes against the body memory, and against the share of it
 * req's client may hold: false, with nothing counted, when that is over
 * either.
 */
static bool
body_count(struct http_request *req, size_t more)
{
	struct http_server *srv = req->srv;
	size_t budget = srv->opts.body_memory, share;
	bool ok = true;

	if (budget > 0 && atomic_fetch_add(&srv->body_bytes, more) + more >
	    budget) {
		atomic_fetch_sub(&srv->body_bytes, more);
		return false;
	}
	if (budget == 0)
		atomic_fetch_add(&srv->body_bytes, more);
	if (budget == 0 || srv->opts.body_share <= 0 ||
	    srv->opts.body_share >= 100)
		return true;
	body_client(req);
	if (req->client_len == 0)
		return true;
	share = budget / 100 * (size_t)srv->opts.body_share;
	pthread_mutex_lock(&srv->clients_lock);
	ok = count_add(srv, req->client, req->client_len, (int64_t)more,
	    (int64_t)share);
	pthread_mutex_unlock(&srv->clients_lock);
	if (!ok)
		atomic_fetch_sub(&srv->body_bytes, more);
	return ok;
}

/* Give back what req's body counted. */
static void
body_release(struct http_request *req)
{
	struct http_server *srv = req->srv;
	int share = srv->opts.body_share;

	if (req->counted == 0)
		return;
	atomic_fetch_sub(&srv->body_bytes, req->counted);
	if (srv->opts.body_memory == 0 || share <= 0 || share >= 100 ||
	    req->client_len == 0)
		return;
	pthread_mutex_lock(&srv->clients_lock);
	count_add(srv, req->client, req->client_len, -(int64_t)req->counted,
	    0);
	pthread_mutex_unlock(&srv->clients_lock);
}

/*
 * Grow req's body buffer to cap bytes. A body past SMALL_BODY counts, whole,
 * against the memory all bodies may take together, and against its
 * client's share of it: false when it is over either, or out of memory.
 * Small bodies, the common case, never wait on large ones: what they take
 * is bounded by the connection limits.
 */
static bool
body_reserve(struct http_request *req, size_t cap)
{
	size_t count = cap > SMALL_BODY ? cap : 0, more = count - req->counted;
	char *b;

	if (count > req->counted && !body_count(req, more))
		return false;
	if (count > req->counted)
		req->counted = count;
	if ((b = realloc(req->body, cap)) == NULL)
		return false;	/* released when the request ends */
	req->body = b;
	req->cap = cap;
	return true;
}

/* Keep the body, up to max_body; past that only remember it was too big. */
static void
append_body(struct http_request *req, const char *data, size_t n)
{
	size_t max = req->srv->opts.max_body;

	if (req->too_large || req->over_budget || req->bad_framing)
		return;
	if (req->len + n > max) {
		req->too_large = true;
		return;
	}
	if (req->len + n + 1 > req->cap) {
		size_t cap = req->cap ? req->cap : 1024;

		while (cap < req->len + n + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		if (!body_reserve(req, cap)) {
			req->over_budget = true;
			return;
		}
	}
	memcpy(req->body + req->len, data, n);
	req->len += n;
	req->body[req->len] = '\0';
}

/* Count the Content-Length headers and whether their values differ. */
struct length_count {
	const char *first;
	int n;
	bool differ;
};

static enum MHD_Result
on_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct length_count *lc = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (lc->n++ == 0)
		lc->first = value;
	else if (value == NULL || lc->first == NULL ||
	    strcmp(value, lc->first) != 0)
		lc->differ = true;
	return MHD_YES;
}

/* Whether req may pass: it carries the bearer token, or needs none. */
static bool
token_ok(const struct http_request *req)
{
	const struct http_server *srv = req->srv;
	const char *h, *method = req->method;
	unsigned char digest[32], diff = 0;

	if (!srv->need_token)
		return true;
	/* what a health check or a load balancer asks stays open */
	if (strcmp(req->path, "/health") == 0 && (strcmp(method, "GET") == 0 ||
	    strcmp(method, "HEAD") == 0))
		return true;
	h = http_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	for (h += 7; *h == ' '; h++)
		;
	/* digests of equal length, compared in constant time */
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, h, strlen(h), digest) != 0)
		return false;
	for (size_t i = 0; i < sizeof(digest); i++)
		diff |= (unsigned char)(digest[i] ^ srv->token_digest[i]);
	return diff == 0;
}

/*
 * What the header block says about its framing, from libmicrohttpd's list
 * of headers as parsed. libmicrohttpd 0.9.75 has no setting for any of
 * this (MHD_OPTION_STRICT_FOR_CLIENT only asks for a Host, and refuses a
 * blank before the colon at -1, its "most tolerant" level), so it is
 * checked here, before the request is handed on.
 */
struct framing {
	int hosts;
	int lengths;
	int codings;			/* Transfer-Encoding headers */
	const char *coding;		/* the first one's value */
	const char *bad;		/* why it is malformed; NULL: it is not */
};

/* RFC 9110 5.1: a field name is a token */
static bool
is_token(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
		    !(c >= 'A' && c <= 'Z') && (c == '\0' ||
		    strchr(extra, c) == NULL))
			return false;
	}
	return true;
}

static enum MHD_Result
on_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct framing *f = cls;

	(void)kind;
	/* "Name : v" reaches us as the name "Name " */
	if (!is_token(key, key_size)) {
		f->bad = "a header name with a blank or a character a name "
		    "may not have (a blank before the colon?)";
		return MHD_NO;
	}
	/*
	 * libmicrohttpd 0.9.75 appends a continuation line (obs-fold) to the
	 * header's name, which it copies out of the line: the name then no
	 * longer comes right before its value. Only pointers are compared.
	 */
	if (value != NULL && (uintptr_t)value <= (uintptr_t)key + key_size) {
		f->bad = "a header continued on the next line (obs-fold)";
		return MHD_NO;
	}
	/* a bare CR does not end a line to libmicrohttpd: it stays here */
	if (value != NULL && (memchr(value, '\r', value_size) != NULL ||
	    memchr(value, '\n', value_size) != NULL ||
	    strlen(value) != value_size)) {
		f->bad = "a CR, LF or NUL inside a header value";
		return MHD_NO;
	}
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		f->hosts++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->lengths++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0 &&
	    f->codings++ == 0)
		f->coding = value;
	return MHD_YES;
}

/*
 * The value is "chunked", in any case: exactly what libmicrohttpd reads as
 * chunked (a blank after it, and it reads the body to the end of the
 * connection instead).
 */
static bool
only_chunked(const char *v)
{
	return strcasecmp(v, "chunked") == 0;
}

/*
 * Refuse a header block a proxy in front could read another way (request
 * smuggling): 400, or 501 for a transfer coding other than chunked, which
 * libmicrohttpd would read until the connection closes. The answer closes
 * the connection. True when it is refused.
 */
static bool
framing_check(struct http_request *req)
{
	struct framing f = { 0, 0, 0, NULL, NULL };

	MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND,
	    on_framing_header, &f);
	if (f.bad == NULL && f.hosts > 1)
		f.bad = "more than one Host header";
	if (f.bad == NULL && f.codings > 0 && f.lengths > 0)
		f.bad = "Content-Length together with Transfer-Encoding";
	if (f.bad == NULL && (f.codings > 1 || (f.codings == 1 &&
	    (f.coding == NULL || !only_chunked(f.coding))))) {
		req->bad_status = HTTP_NOT_IMPLEMENTED;
		f.bad = "a transfer coding other than chunked";
	}
	if (f.bad == NULL)
		return false;
	req->bad_framing = true;
	req->bad_why = f.bad;
	return true;
}

/*
 * Look at a request's head before its body: framing a proxy could read
 * otherwise (request smuggling), a body over the limit, and the memory its
 * body will take. True when it is to be answered now.
 */
static bool
request_check(struct http_request *req, const char *version)
{
	struct http_server *srv = req->srv;
	struct length_count lc = { NULL, 0, false };
	unsigned long long n;
	const char *cl;

	if (framing_check(req))
		return true;
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, on_header, &lc);
	if (lc.differ) {
		req->bad_framing = true;
		req->bad_why = "conflicting Content-Length headers";
		return true;
	}
	if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST) == NULL) {
		req->bad_framing = true;
		req->bad_why = "an HTTP/1.1 request needs a Host header";
		return true;
	}
	if (!token_ok(req)) {
		req->unauthorized = true;
		return true;
	}
	/* who sent it, before its body takes any memory */
	if (srv->opts.admit != NULL && !srv->opts.admit(req, srv->opts.ctx)) {
		req->refused = true;
		return true;
	}
	if ((cl = lc.first) == NULL)
		return false;
	n = strtoull(cl, NULL, 10);
	if (n > srv->opts.max_body) {
		req->too_large = true;
		return true;
	}
	/* the whole body at once: no copies while it grows */
	if (n > 0 && !body_reserve(req, (size_t)n + 1)) {
		req->over_budget = true;
		return true;
	}
	return false;
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct server_loop *sl = cls;
	struct http_request *req = *con_cls;

	if (req == NULL) {
		if ((req = request_new(sl, conn, method, url)) == NULL)
			return MHD_NO;
		*con_cls = req;
		/* refuse what is wrong before reading a body */
		if (request_check(req, version))
			return run_request(req);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (!req->dispatched)
			append_body(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->dispatched) {
		/* resumed, or MHD asks again after an early answer */
		if (req->ready && !req->queued)
			return queue_ready(req);
		return MHD_YES;
	}
	return run_request(req);
}

static int64_t
idle_ms(const struct http_server *srv)
{
	return srv->opts.idle_timeout_ms > 0 ? srv->opts.idle_timeout_ms :
	    DEFAULT_IDLE_MS;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct server_loop *sl = cls;
	struct http_server *srv = sl->srv;
	struct http_request *req = *con_cls;
	struct conn_state *cs = conn_state_of(conn);
	int64_t rt = srv->opts.request_timeout_ms;

	/*
	 * Kept alive: the next request may wait for the idle timeout, and must
	 * then be in within the request timeout.
	 */
	if (cs != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		cs->waiting_ms = clock_now_ms();
		conn_deadline(sl, cs, rt > 0 ? cs->waiting_ms + rt +
		    idle_ms(srv) : -1);
		if (sl->nconns > PRESSURE_CONNS)
			sweep_by(sl, cs->waiting_ms + PRESSURE_IDLE_MS);
	}
	if (req == NULL)
		return;
	*con_cls = NULL;
	body_release(req);
	trimmed_free(req);
	pthread_mutex_destroy(&req->lock);
	free(req->body);
	free(req->resp);
	free(req);
	pthread_mutex_lock(&srv->lock);
	if (--srv->in_flight == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("http: %s", buf);
}

/* The listening socket for address:port, shared by every loop. */
static int
listen_on(const char *address, int port, int *fd, bool *v6, char **cause)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV | AI_PASSIVE,
		.ai_socktype = SOCK_STREAM }, *ai;
	char service[8];
	int rc, one = 1, s = -1;

	snprintf(service, sizeof(service), "%d", port);
	if ((rc = getaddrinfo(address, service, &hints, &ai)) != 0) {
		if (asprintf(cause, "cannot resolve listen address '%s': %s",
		    address, gai_strerror(rc)) < 0)
			*cause = NULL;
		return -EINVAL;
	}
	*v6 = ai->ai_family == AF_INET6;
	if ((s = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, 1024) != 0) {
		rc = -errno;
		if (asprintf(cause, "cannot listen on %s port %d: %s", address,
		    port, strerror(errno)) < 0)
			*cause = NULL;
		if (s >= 0)
			close(s);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	*fd = s;
	return 0;
}

/* Let the daemon work, then arm the timer for what it waits on next. */
static void
loop_run_mhd(void *arg)
{
	struct server_loop *sl = arg;
	MHD_UNSIGNED_LONG_LONG ms;

	http_tls_set_current(sl->srv->tls);
	MHD_run(sl->mhd);
	http_tls_set_current(NULL);
	sl->timer.at_ms = MHD_get_timeout(sl->mhd, &ms) == MHD_YES ?
	    clock_now_ms() + (int64_t)(ms > 60000 ? 60000 : ms) : -1;
}

static void
on_mhd_ready(void *arg, uint32_t events)
{
	(void)events;
	loop_run_mhd(arg);
}

static void
on_kick(void *arg, uint32_t events)
{
	struct server_loop *sl = arg;

	(void)events;
	eventfd_clear(sl->kick.fd);
	loop_run_mhd(sl);
}

/* What the handshakes may agree on: the setting, or our default. */
static const char *
tls_priorities(const struct http_server *srv)
{
	return srv->opts.tls_priorities != NULL ? srv->opts.tls_priorities :
	    HTTP_TLS_PRIORITIES;
}

/* Set up loop i: its event loop and its daemon on the shared socket. */
static int
loop_setup(struct http_server *srv, int i, bool v6, char **cause)
{
	struct server_loop *sl = &srv->loops[i];
	const union MHD_DaemonInfo *info;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) |
	    (srv->tls != NULL ? MHD_USE_TLS : 0);
	int fd, rc;

	sl->srv = srv;
	sl->conns.next = sl->conns.prev = &sl->conns;
	sl->kick = (struct loop_watch){ .cb = on_kick, .arg = sl,
		.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	if (sl->kick.fd < 0 || (fd = dup(srv->listen_fd)) < 0) {
		rc = -errno;
		xasprintf(cause, "cannot set up an HTTP loop: %s",
		    strerror(errno));
		return rc;
	}
	if ((rc = event_loop_new(&sl->loop, i, cause)) != 0) {
		close(fd);
		return rc;
	}
	/* each daemon closes its own copy of the listening socket */
	sl->mhd = MHD_start_daemon(flags, 0, on_accept_policy, srv,
	    on_access, sl,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, LOOP_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)((idle_ms(srv) + 999) / 1000),
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, sl,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, sl,
	    /* without TLS the list ends here, and the rest is not read */
	    srv->tls != NULL ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END,
	    http_tls_cert_callback,
	    MHD_OPTION_HTTPS_PRIORITIES, tls_priorities(srv),
	    MHD_OPTION_END);
	if (sl->mhd == NULL) {
		close(fd);
		*cause = strdup("cannot start the HTTP daemon");
		return -EIO;
	}
	info = MHD_get_daemon_info(sl->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	sl->watch = (struct loop_watch){ .cb = on_mhd_ready, .arg = sl,
		.fd = info->epoll_fd };
	sl->timer = (struct loop_timer){ 0, loop_run_mhd, sl };
	sl->sweep = (struct loop_timer){ -1, on_sweep, sl };
	if ((rc = event_loop_watch(sl->loop, &sl->watch, EPOLLIN)) != 0 ||
	    (rc = event_loop_watch(sl->loop, &sl->kick, EPOLLIN)) != 0 ||
	    (rc = event_loop_add_timer(sl->loop, &sl->timer)) != 0 ||
	    (rc = event_loop_add_timer(sl->loop, &sl->sweep)) != 0) {
		*cause = strdup("cannot watch the HTTP daemon");
		return rc;
	}
	return 0;
}

/* A priority string GnuTLS cannot read is a start failure naming it. */
static int
tls_priorities_check(const char *prio, char **cause)
{
	gnutls_priority_t p;
	const char *err = NULL;

	if (gnutls_priority_init(&p, prio, &err) != GNUTLS_E_SUCCESS) {
		xasprintf(cause, "HTTP_TLS_PRIORITIES: GnuTLS cannot read "
		    "'%s' at '%s'", prio, err != NULL ? err : "");
		return -EINVAL;
	}
	gnutls_priority_deinit(p);
	return 0;
}

/* TLS and the bearer token, as opts ask. */
static int
server_security(struct http_server *srv, const struct http_server_opts *o,
    char **cause)
{
	const char *t = o->bearer_token;
	int rc;

	srv->opts.bearer_token = NULL;	/* only its digest is kept */
	if (t != NULL && *t != '\0') {
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, t, strlen(t),
		    srv->token_digest) != 0) {
			*cause = xstrdup("cannot hash the bearer token");
			return -EIO;
		}
		srv->need_token = true;
	}
	if (o->tls_cert_file == NULL && o->tls_key_file == NULL)
		return 0;
	if (o->tls_cert_file == NULL || o->tls_key_file == NULL) {
		*cause = xstrdup("HTTPS needs both a certificate and its key");
		return -EINVAL;
	}
	if ((rc = tls_priorities_check(tls_priorities(srv), cause)) != 0 ||
	    (rc = http_tls_new(&srv->tls, o->tls_cert_file, o->tls_key_file,
	    cause)) != 0)
		return rc;
	return 0;
}

int
http_server_reload_tls(struct http_server *srv, char **cause)
{
	if (srv->tls == NULL)
		return 0;
	return http_tls_reload(srv->tls, cause);
}

int
http_server_start(struct http_server **out, const struct http_server_opts *o,
    char **cause)
{
	struct http_server *srv;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool v6 = false;
	int rc = 0;

	*out = NULL;
	srv = xcalloc(1, sizeof(*srv));
	srv->opts = *o;
	srv->listen_fd = -1;
	histogram_init(&srv->metrics.latency, latency_bounds,
	    sizeof(latency_bounds) / sizeof(*latency_bounds));
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->clients_lock, NULL);
	clock_cond_init(&srv->idle);
	srv->nloops = (int)(ncpu < 1 ? 1 : ncpu > EVENT_LOOP_MAX ?
	    EVENT_LOOP_MAX : ncpu);
	for (int i = 0; i < EVENT_LOOP_MAX; i++)
		srv->loops[i].kick.fd = -1;
	if ((rc = server_security(srv, o, cause)) != 0 ||
	    (rc = listen_on(o->address, o->port, &srv->listen_fd, &v6,
	    cause)) != 0)
		goto out;
	for (int i = 0; i < srv->nloops && rc == 0; i++)
		rc = loop_setup(srv, i, v6, cause);
	for (int i = 0; i < srv->nloops && rc == 0; i++)
		if ((rc = event_loop_start(srv->loops[i].loop, "http")) != 0)
			*cause = strdup("cannot start the HTTP threads");
out:
	if (rc != 0) {
		http_server_stop(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

void
http_server_drain(struct http_server *srv)
{
	atomic_store(&srv->draining, true);
}

bool
http_req_draining(const struct http_request *req)
{
	return atomic_load(&req->srv->draining);
}

int
http_server_wait_idle(struct http_server *srv, int64_t timeout_ms)
{
	int64_t at = clock_now_ns() + timeout_ms * 1000000;
	int rc = 0;

	pthread_mutex_lock(&srv->lock);
	while (srv->in_flight > 0 && rc == 0)
		rc = clock_cond_wait_until(&srv->idle, &srv->lock, at);
	rc = srv->in_flight > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

void
http_server_ping(struct http_server *srv)
{
	for (int i = 0; i < srv->nloops; i++)
		event_loop_ping(srv->loops[i].loop);
}

bool
http_server_answered(struct http_server *srv)
{
	for (int i = 0; i < srv->nloops; i++) {
		if (!event_loop_answered(srv->loops[i].loop))
			return false;
	}
	return true;
}

uint64_t
http_server_requests(struct http_server *srv)
{
	uint64_t n = 0;

	for (size_t i = 0; i < N_CODES; i++)
		n += atomic_load(&srv->metrics.by_code[i]);
	return n;
}

void
http_server_stop(struct http_server *srv)
{
	if (srv == NULL)
		return;
	for (int i = 0; i < srv->nloops; i++)
		event_loop_stop(srv->loops[i].loop);
	/* the loops are gone: the daemons can be stopped from here */
	for (int i = 0; i < srv->nloops; i++) {
		if (srv->loops[i].mhd != NULL)
			MHD_stop_daemon(srv->loops[i].mhd);
		event_loop_free(srv->loops[i].loop);
		if (srv->loops[i].kick.fd >= 0)
			close(srv->loops[i].kick.fd);
	}
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	/* the daemons closed every connection: none holds a set now */
	http_tls_free(srv->tls);
	for (size_t i = 0; i < CLIENT_BUCKETS; i++) {
		while (srv->clients[i] != NULL) {
			struct client_count *c = srv->clients[i];

			srv->clients[i] = c->next;
			free(c);
		}
	}
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->clients_lock);
	free(srv);
}

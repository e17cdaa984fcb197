/* check_http_server.c - a real server on loopback, driven by libcurl */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "check_main.h"
#include "check_util.h"
#include "clock.h"
#include "http_server.h"
#include "rate_limit.h"

Suite *http_server_suite(void);

#define MAX_BODY 1024
/* Requests the suspended-handler tests hold at once. */
#define MAX_HELD 32

/*
 * What the handlers share with the test. lock guards held and nheld;
 * arrived is signalled whenever a request is held.
 */
struct server_ctx {
	pthread_mutex_t lock;
	pthread_cond_t arrived;
	struct http_request *held[MAX_HELD];
	int nheld;
	atomic_int entered;		/* handlers run, any route */
	atomic_bool handler_returned;	/* /later's handler has returned */
	pthread_t answerer;		/* answers /later, joined by tests */
	atomic_bool answerer_started;
};

static struct server_ctx ctx;
static struct http_server *srv;
static int port;

/* Answer with a copy of s as JSON. */
static void
respond_str(struct http_request *req, int status, const char *s)
{
	char *body = strdup(s);

	ck_assert_ptr_nonnull(body);
	http_respond(req, status, body, strlen(body));
}

static void
on_hello(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;

	atomic_fetch_add(&c->entered, 1);
	respond_str(req, 200, "{\"hello\":\"world\"}");
}

static void
on_echo(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;
	const char *body;
	char *copy;
	size_t len;

	atomic_fetch_add(&c->entered, 1);
	body = http_req_body(req, &len);
	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, body, len);
	http_respond_typed(req, 200, copy, len, "text/plain");
}

static void
on_item(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;
	char buf[256];

	const char *q = http_req_query(req, "q");

	atomic_fetch_add(&c->entered, 1);
	if (q != NULL)
		snprintf(buf, sizeof(buf), "{\"tail\":\"%s\",\"q\":\"%s\"}",
		    http_req_tail(req), q);
	else
		snprintf(buf, sizeof(buf),
		    "{\"path\":\"%s\",\"tail\":\"%s\"}",
		    http_req_path(req), http_req_tail(req));
	respond_str(req, 200, buf);
}

static void
on_health(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;

	atomic_fetch_add(&c->entered, 1);
	respond_str(req, 200, http_req_draining(req) ?
	    "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
}

static void
on_metrics(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	atomic_fetch_add(&c->entered, 1);
	ck_assert_ptr_nonnull(f);
	http_write_metrics(req, f);
	fclose(f);
	http_respond_typed(req, 200, buf, len, "text/plain; version=0.0.4");
}

/* Answers the request held by /later, from a thread of its own. */
static void *
answer_later(void *arg)
{
	struct http_request *req = arg;
	int64_t deadline = clock_now_ms() + 20000;

	/* the handler has returned: the connection is suspended */
	while (!atomic_load(&ctx.handler_returned) &&
	    clock_now_ms() < deadline)
		tu_sleep_ms(1);
	tu_sleep_ms(50);
	respond_str(req, 200, "{\"answered\":\"later\"}");
	return NULL;
}

static void
on_later(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;

	atomic_fetch_add(&c->entered, 1);
	if (pthread_create(&c->answerer, NULL, answer_later, req) != 0) {
		http_respond_error(req, 500, "no thread");
		return;
	}
	atomic_store(&c->answerer_started, true);
	atomic_store(&c->handler_returned, true);
}

/* Keep the request for the test to answer. */
static void
on_hold(struct http_request *req, void *arg)
{
	struct server_ctx *c = arg;

	atomic_fetch_add(&c->entered, 1);
	pthread_mutex_lock(&c->lock);
	if (c->nheld == MAX_HELD) {
		pthread_mutex_unlock(&c->lock);
		http_respond_error(req, 500, "too many held");
		return;
	}
	c->held[c->nheld++] = req;
	pthread_cond_broadcast(&c->arrived);
	pthread_mutex_unlock(&c->lock);
}

static const struct http_route routes[] = {
	{ "GET", "/hello", on_hello },
	{ "POST", "/echo", on_echo },
	{ "GET", "/items/", on_item },
	{ "GET", "/health", on_health },
	{ "GET", "/metrics", on_metrics },
	{ "GET", "/later", on_later },
	{ "GET", "/hold", on_hold },
	{ "DELETE", "/hold", on_hold },
};

/* Wait up to ms for n requests to be held; returns how many are. */
static int
wait_held(int n, int ms)
{
	int64_t at = clock_now_ns() + (int64_t)ms * 1000000;
	int got;

	pthread_mutex_lock(&ctx.lock);
	while (ctx.nheld < n &&
	    clock_cond_wait_until(&ctx.arrived, &ctx.lock, at) == 0)
		;
	got = ctx.nheld;
	pthread_mutex_unlock(&ctx.lock);
	return got;
}

/* Answer every held request with 200 and its index. */
static int
answer_held(void)
{
	int n;

	pthread_mutex_lock(&ctx.lock);
	n = ctx.nheld;
	for (int i = 0; i < n; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "{\"held\":%d}", i);
		respond_str(ctx.held[i], 200, buf);
		ctx.held[i] = NULL;
	}
	ctx.nheld = 0;
	pthread_mutex_unlock(&ctx.lock);
	return n;
}

static int
start_server(struct http_server **out, int *out_port)
{
	struct http_server_opts o = {
		.address = "127.0.0.1",
		.max_body = MAX_BODY,
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(*routes),
		.ctx = &ctx,
	};
	char *cause = NULL;
	int rc = -1;

	/* another process may take the free port first: try a few */
	for (int i = 0; i < 5 && rc != 0; i++) {
		o.port = tu_free_port();
		free(cause);
		cause = NULL;
		rc = http_server_start(out, &o, &cause);
	}
	ck_assert_msg(rc == 0, "cannot start: %s", cause ? cause : "?");
	ck_assert_ptr_nonnull(*out);
	*out_port = o.port;
	return rc;
}

static void
setup(void)
{
	/* as diplomd does, before any thread uses curl */
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	memset(&ctx, 0, sizeof(ctx));
	pthread_mutex_init(&ctx.lock, NULL);
	clock_cond_init(&ctx.arrived);
	start_server(&srv, &port);
}

static void
teardown(void)
{
	/* a test that failed with requests held: let them go first */
	answer_held();
	if (atomic_load(&ctx.answerer_started))
		pthread_join(ctx.answerer, NULL);
	if (srv != NULL) {
		http_server_wait_idle(srv, 10000);
		http_server_stop(srv);
	}
	srv = NULL;
	pthread_cond_destroy(&ctx.arrived);
	pthread_mutex_destroy(&ctx.lock);
	curl_global_cleanup();
}

/* --- a plain client ------------------------------------------------------ */

struct reply {
	CURLcode code;
	long status;
	char body[8192];
	size_t len;
	char headers[4096];
	size_t hlen;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb;

	if (r->len + n >= sizeof(r->body))
		return 0;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb;

	if (r->hlen + n < sizeof(r->headers)) {
		memcpy(r->headers + r->hlen, ptr, n);
		r->hlen += n;
		r->headers[r->hlen] = '\0';
	}
	return n;
}

/* An easy handle for method path, with body for a POST. */
static CURL *
easy_for(const char *method, const char *path, const char *body, size_t len,
    struct curl_slist *hdrs, struct reply *r)
{
	CURL *e = curl_easy_init();
	char url[256];

	ck_assert_ptr_nonnull(e);
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	else if (strcmp(method, "POST") == 0 && body == NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	return e;
}

/* One request; the reply's status is 0 when there was none. */
static void
fetch(const char *method, const char *path, const char *body, size_t len,
    struct reply *r)
{
	/* no 100-continue round trip: the body goes with the headers */
	struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
	CURL *e = easy_for(method, path, body, len, hdrs, r);

	r->code = curl_easy_perform(e);
	if (r->code == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
}

/* The value of header name in r, or "" (a static buffer). */
static const char *
header(const struct reply *r, const char *name)
{
	static char val[256];
	size_t n = strlen(name);
	const char *p = r->headers;

	val[0] = '\0';
	while (p != NULL && *p != '\0') {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *end;

			while (*v == ' ')
				v++;
			end = strpbrk(v, "\r\n");
			snprintf(val, sizeof(val), "%.*s",
			    (int)(end != NULL ? end - v : (long)strlen(v)), v);
			break;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return val;
}

/* The "error" member of a JSON body; asserts the body is such an object. */
static void
assert_json_error(const struct reply *r, const char *want)
{
	struct json_object *obj = json_tokener_parse(r->body), *err;

	ck_assert_msg(obj != NULL, "not JSON: '%s'", r->body);
	ck_assert(json_object_object_get_ex(obj, "error", &err));
	ck_assert_str_eq(json_object_get_string(err), want);
	json_object_put(obj);
	ck_assert_str_eq(header(r, "Content-Type"), "application/json");
}

/* Send raw bytes on a new connection; return what came back, up to close. */
static size_t
raw_exchange(const char *req, size_t len, char *out, size_t outsz)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 20, 0 };
	size_t got = 0;
	ssize_t n;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(s, req, len, MSG_NOSIGNAL), (ssize_t)len);
	while (got + 1 < outsz &&
	    (n = recv(s, out + got, outsz - 1 - got, 0)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(s);
	return got;
}

/* A request on a thread of its own, for one the test answers itself. */
struct bg_fetch {
	pthread_t t;
	const char *method;
	const char *path;
	struct reply r;
};

static void *
bg_fetch_main(void *arg)
{
	struct bg_fetch *b = arg;

	fetch(b->method, b->path, NULL, 0, &b->r);
	return NULL;
}

/* --- routing ------------------------------------------------------------- */

START_TEST(get_reaches_its_handler_and_answers_json)
{
	struct reply r;

	fetch("GET", "/hello", NULL, 0, &r);
	ck_assert_int_eq(r.code, CURLE_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"hello\":\"world\"}");
	ck_assert_str_eq(header(&r, "Content-Type"), "application/json");
	ck_assert_int_eq(atomic_load(&ctx.entered), 1);
}
END_TEST

START_TEST(post_body_reaches_the_handler)
{
	static const char body[] = "{\"id\":\"m-1\",\"payload\":\"aGVsbG8=\"}";
	struct reply r;

	fetch("POST", "/echo", body, strlen(body), &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, body);
	ck_assert_str_eq(header(&r, "Content-Type"), "text/plain");
}
END_TEST

START_TEST(prefix_route_hands_over_the_tail)
{
	struct reply r;

	fetch("GET", "/items/abc-1", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body,
	    "{\"path\":\"/items/abc-1\",\"tail\":\"abc-1\"}");
	/* the prefix alone names no item */
	fetch("GET", "/items/", NULL, 0, &r);
	ck_assert_int_eq(r.status, 404);
	assert_json_error(&r, "not found");
}
END_TEST

START_TEST(query_arguments_reach_the_handler)
{
	struct reply r;

	fetch("GET", "/items/a?x=1&q=two%20words", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"tail\":\"a\",\"q\":\"two words\"}");
	fetch("GET", "/items/a?q", NULL, 0, &r);
	ck_assert_str_eq(r.body, "{\"tail\":\"a\",\"q\":\"\"}");
	fetch("GET", "/items/a?x=q", NULL, 0, &r);
	ck_assert_str_eq(r.body, "{\"path\":\"/items/a\",\"tail\":\"a\"}");
}
END_TEST

START_TEST(unknown_path_is_404_with_json_error)
{
	struct reply r;

	fetch("GET", "/nowhere", NULL, 0, &r);
	ck_assert_int_eq(r.code, CURLE_OK);
	ck_assert_int_eq(r.status, 404);
	assert_json_error(&r, "not found");
	ck_assert_str_eq(header(&r, "Allow"), "");
	/* an exact route is no prefix */
	fetch("GET", "/hello/there", NULL, 0, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
	struct reply r;

	fetch("POST", "/hello", "{}", 2, &r);
	ck_assert_int_eq(r.status, 405);
	assert_json_error(&r, "method not allowed");
	ck_assert_str_eq(header(&r, "Allow"), "GET, HEAD");
	fetch("GET", "/echo", NULL, 0, &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(header(&r, "Allow"), "POST");
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
}
END_TEST

START_TEST(path_with_two_methods_routes_each_and_allows_both)
{
	struct bg_fetch b = { .method = "DELETE", .path = "/hold" };
	struct reply r;

	fetch("PUT", "/hold", NULL, 0, &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(header(&r, "Allow"), "GET, HEAD, DELETE");
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
	/* the second route of the path is found too */
	ck_assert_int_eq(pthread_create(&b.t, NULL, bg_fetch_main, &b), 0);
	ck_assert_int_eq(wait_held(1, 20000), 1);
	ck_assert_int_eq(answer_held(), 1);
	pthread_join(b.t, NULL);
	ck_assert_int_eq(b.r.status, 200);
	ck_assert_str_eq(b.r.body, "{\"held\":0}");
}
END_TEST

/* --- bodies -------------------------------------------------------------- */

START_TEST(body_of_exactly_max_body_is_accepted)
{
	char *body = malloc(MAX_BODY);
	struct reply r;

	ck_assert_ptr_nonnull(body);
	memset(body, 'a', MAX_BODY);
	fetch("POST", "/echo", body, MAX_BODY, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, MAX_BODY);
	ck_assert_mem_eq(r.body, body, MAX_BODY);
	free(body);
}
END_TEST

START_TEST(declared_body_over_max_body_is_413)
{
	char *body = malloc(MAX_BODY + 1);
	struct reply r;

	ck_assert_ptr_nonnull(body);
	memset(body, 'a', MAX_BODY + 1);
	fetch("POST", "/echo", body, MAX_BODY + 1, &r);
	ck_assert_int_eq(r.status, 413);
	assert_json_error(&r, "request body too large: the limit is 1024 bytes");
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
	free(body);
}
END_TEST

START_TEST(chunked_body_over_max_body_is_413)
{
	char req[4096], resp[4096];
	int n;

	/* no Content-Length to refuse early: the server must count */
	n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
	    "Connection: close\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		n += snprintf(req + n, sizeof(req) - (size_t)n, "200\r\n");
		memset(req + n, 'b', 0x200);
		n += 0x200;
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	}
	n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
	ck_assert_int_lt(n, (int)sizeof(req));
	raw_exchange(req, (size_t)n, resp, sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 413 ", 13) == 0, "got '%.40s'",
	    resp);
	ck_assert_ptr_nonnull(strstr(resp, "request body too large"));
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
}
END_TEST

START_TEST(malformed_request_is_refused_and_server_serves_on)
{
	static const char junk[] = "THIS IS NOT HTTP\r\n\r\n";
	char resp[4096];
	struct reply r;

	raw_exchange(junk, sizeof(junk) - 1, resp, sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "got '%.40s'",
	    resp);
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
	fetch("GET", "/hello", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

/* --- answers from elsewhere ---------------------------------------------- */

START_TEST(handler_answers_later_from_another_thread)
{
	struct reply r;

	fetch("GET", "/later", NULL, 0, &r);
	ck_assert_int_eq(r.code, CURLE_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"answered\":\"later\"}");
	ck_assert(atomic_load(&ctx.answerer_started));
	pthread_join(ctx.answerer, NULL);
	atomic_store(&ctx.answerer_started, false);
	ck_assert_int_eq(http_server_wait_idle(srv, 10000), 0);
}
END_TEST

enum { HELD = 24 };

START_TEST(many_suspended_requests_are_answered_at_once)
{
	static struct reply r[HELD];
	struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
	CURLM *multi = curl_multi_init();
	CURL *e[HELD];
	int running = 1, answered = 0, done = 0;
	int64_t deadline = clock_now_ms() + 30000;
	bool seen[HELD] = { false };
	CURLMsg *m;
	int left;

	ck_assert_ptr_nonnull(multi);
	for (int i = 0; i < HELD; i++) {
		e[i] = easy_for("GET", "/hold", NULL, 0, hdrs, &r[i]);
		ck_assert_int_eq(curl_multi_add_handle(multi, e[i]), CURLM_OK);
	}
	while (running > 0 && clock_now_ms() < deadline) {
		ck_assert_int_eq(curl_multi_perform(multi, &running), CURLM_OK);
		/* all are in the server, none answered: answer them at once */
		if (answered == 0 && wait_held(HELD, 0) == HELD)
			answered = answer_held();
		curl_multi_poll(multi, NULL, 0, 20, NULL);
	}
	ck_assert_int_eq(answered, HELD);
	ck_assert_int_eq(running, 0);
	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		struct reply *rr;
		int idx;

		ck_assert_int_eq(m->msg, CURLMSG_DONE);
		ck_assert_int_eq(m->data.result, CURLE_OK);
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		    (char **)&rr);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE,
		    &rr->status);
		ck_assert_int_eq(rr->status, 200);
		ck_assert_int_eq(sscanf(rr->body, "{\"held\":%d}", &idx), 1);
		ck_assert(idx >= 0 && idx < HELD && !seen[idx]);
		seen[idx] = true;
		done++;
	}
	ck_assert_int_eq(done, HELD);
	for (int i = 0; i < HELD; i++) {
		curl_multi_remove_handle(multi, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	ck_assert_int_eq(http_server_wait_idle(srv, 10000), 0);
}
END_TEST

/* --- metrics ------------------------------------------------------------- */

/* The value of one metric line, or -1 when it is missing. */
static long
metric(const char *text, const char *name)
{
	const char *p = strstr(text, name);

	while (p != NULL && p != text && p[-1] != '\n')
		p = strstr(p + 1, name);
	if (p == NULL || p[strlen(name)] != ' ')
		return -1;
	return strtol(p + strlen(name) + 1, NULL, 10);
}

START_TEST(metrics_count_answered_requests_by_status)
{
	struct reply r;

	fetch("GET", "/hello", NULL, 0, &r);
	fetch("GET", "/hello", NULL, 0, &r);
	fetch("GET", "/nowhere", NULL, 0, &r);
	fetch("DELETE", "/hello", NULL, 0, &r);
	fetch("GET", "/metrics", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header(&r, "Content-Type"),
	    "text/plain; version=0.0.4");
	/* the metrics request itself is counted once it is answered */
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"200\"}"), 2);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"404\"}"), 1);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"405\"}"), 1);
	/* a replay's refusal is counted as itself, not as "other" */
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"409\"}"), 0);
	/* so is a key reused with another body */
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"422\"}"), 0);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"503\"}"), 0);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"other\"}"), 0);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_request_duration_seconds_count"), 4);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_request_duration_seconds_bucket{le=\"+Inf\"}"), 4);
	fetch("GET", "/metrics", NULL, 0, &r);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_requests_total{code=\"200\"}"), 3);
	ck_assert_int_eq(metric(r.body,
	    "diplom_http_request_duration_seconds_count"), 5);
}
END_TEST

/* --- draining and stopping ----------------------------------------------- */

START_TEST(draining_answers_503_except_health)
{
	struct reply r;

	fetch("GET", "/health", NULL, 0, &r);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	http_server_drain(srv);
	fetch("GET", "/hello", NULL, 0, &r);
	ck_assert_int_eq(r.status, 503);
	assert_json_error(&r, "shutting down");
	ck_assert_str_eq(header(&r, "Retry-After"), "1");
	/* even a path with no route: nothing is routed while draining */
	fetch("GET", "/nowhere", NULL, 0, &r);
	ck_assert_int_eq(r.status, 503);
	fetch("GET", "/health", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"draining\"}");
	/* /hello never ran; the two /health did */
	ck_assert_int_eq(atomic_load(&ctx.entered), 2);
}
END_TEST

START_TEST(wait_idle_waits_for_the_request_in_progress)
{
	struct bg_fetch b = { .method = "GET", .path = "/hold" };

	ck_assert_int_eq(http_server_wait_idle(srv, 1000), 0);
	ck_assert_int_eq(pthread_create(&b.t, NULL, bg_fetch_main, &b), 0);
	ck_assert_int_eq(wait_held(1, 20000), 1);
	/* drain: the held request is already in, and is still answered */
	http_server_drain(srv);
	ck_assert_int_eq(http_server_wait_idle(srv, 100), -ETIMEDOUT);
	ck_assert_int_eq(answer_held(), 1);
	ck_assert_int_eq(http_server_wait_idle(srv, 20000), 0);
	pthread_join(b.t, NULL);
	ck_assert_int_eq(b.r.code, CURLE_OK);
	ck_assert_int_eq(b.r.status, 200);
	ck_assert_str_eq(b.r.body, "{\"held\":0}");
}
END_TEST

START_TEST(stop_closes_the_listening_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct reply r;
	int s;

	fetch("GET", "/hello", NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	http_server_drain(srv);
	ck_assert_int_eq(http_server_wait_idle(srv, 10000), 0);
	http_server_stop(srv);
	srv = NULL;
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_ne(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(s);
}
END_TEST

/* --- start-up errors ----------------------------------------------------- */

/* A second server on address and the fixture's port fails: want_rc, want. */
static void
assert_start_fails(const char *address, int want_rc, const char *want)
{
	struct http_server_opts o = {
		.address = address,
		.port = port,
		.max_body = MAX_BODY,
		.routes = routes,
		.n_routes = 1,
	};
	struct http_server *other = NULL;
	char *cause = NULL;

	ck_assert_int_eq(http_server_start(&other, &o, &cause), want_rc);
	ck_assert_ptr_null(other);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_nonnull(strstr(cause, want));
	free(cause);
}

START_TEST(port_in_use_is_an_error_with_a_cause)
{
	/* the fixture's server listens on port */
	assert_start_fails("127.0.0.1", -EADDRINUSE, "cannot listen");
}
END_TEST

START_TEST(unresolvable_address_is_an_error_with_a_cause)
{
	assert_start_fails("not an address", -EINVAL, "not an address");
}
END_TEST

/* --- TLS and the bearer token ------------------------------------------ */

/* Start with o (the fixture's port is taken: no listening is reached). */
static void
assert_secure_start_fails(struct http_server_opts *o, int want_rc,
    const char *want)
{
	struct http_server *other = NULL;
	char *cause = NULL;

	o->address = "127.0.0.1";
	o->port = tu_free_port();
	o->max_body = MAX_BODY;
	o->routes = routes;
	o->n_routes = 1;
	ck_assert_int_eq(http_server_start(&other, o, &cause), want_rc);
	ck_assert_ptr_null(other);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, want) != NULL, "cause: %s", cause);
	free(cause);
}

START_TEST(a_certificate_without_its_key_is_an_error)
{
	struct http_server_opts o = { .tls_cert_file = "/etc/hostname" };

	assert_secure_start_fails(&o, -EINVAL, "certificate and its key");
}
END_TEST

START_TEST(an_unreadable_certificate_is_named)
{
	struct http_server_opts o = {
		.tls_cert_file = "/nonexistent/diplom-cert.pem",
		.tls_key_file = "/nonexistent/diplom-key.pem",
	};

	assert_secure_start_fails(&o, -ENOENT, "/nonexistent/diplom-cert.pem");
}
END_TEST

START_TEST(a_file_without_a_certificate_is_named)
{
	struct http_server_opts o = {
		.tls_cert_file = "/etc/hostname",
		.tls_key_file = "/etc/hostname",
	};

	assert_secure_start_fails(&o, -EINVAL, "TLS_CERT_FILE /etc/hostname");
}
END_TEST

/* GET path with an Authorization header (NULL: none). */
static void
fetch_auth(const char *path, const char *auth, struct reply *r)
{
	struct curl_slist *hdrs = NULL;
	CURL *e;

	if (auth != NULL)
		hdrs = curl_slist_append(hdrs, auth);
	e = easy_for("GET", path, NULL, 0, hdrs, r);
	r->code = curl_easy_perform(e);
	if (r->code == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
}

START_TEST(a_bearer_token_guards_everything_but_health)
{
	struct http_server_opts o = {
		.address = "127.0.0.1",
		.max_body = MAX_BODY,
		.bearer_token = "s3cret-token",
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(*routes),
		.ctx = &ctx,
	};
	static const char *const refused[] = { NULL, "Authorization: Bearer",
		"Authorization: Bearer s3cret", "Authorization: Bearer "
		"s3cret-token2", "Authorization: Basic s3cret-token",
		"Authorization: Bearer S3CRET-TOKEN" };
	struct reply r;
	char *cause = NULL;

	/* the fixture's server has no token: this one instead */
	http_server_stop(srv);
	o.port = port = tu_free_port();
	ck_assert_int_eq(http_server_start(&srv, &o, &cause), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		fetch_auth("/hello", refused[i], &r);
		ck_assert_int_eq(r.status, 401);
		ck_assert_str_eq(header(&r, "WWW-Authenticate"), "Bearer");
		ck_assert_ptr_nonnull(strstr(r.body, "\"error\""));
	}
	/* an unknown path says nothing of the routes without the token */
	fetch_auth("/nowhere", NULL, &r);
	ck_assert_int_eq(r.status, 401);
	/* no handler saw a refused request */
	ck_assert_int_eq(atomic_load(&ctx.entered), 0);
	fetch_auth("/health", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	fetch_auth("/hello", "Authorization: Bearer s3cret-token", &r);
	ck_assert_int_eq(r.status, 200);
	fetch_auth("/hello", "authorization: bearer  s3cret-token", &r);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

/* The key http_addr_key gives the textual address a. */
static size_t
key_of(const char *a, unsigned char key[16])
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	memset(key, 0xee, 16);
	if (inet_pton(AF_INET, a, &s4.sin_addr) == 1)
		return http_addr_key((struct sockaddr *)&s4, key);
	ck_assert_int_eq(inet_pton(AF_INET6, a, &s6.sin6_addr), 1);
	return http_addr_key((struct sockaddr *)&s6, key);
}

START_TEST(an_ipv6_client_is_its_64)
{
	unsigned char a[16], b[16];

	/* two hosts of one /64 are one client */
	ck_assert_uint_eq(key_of("2001:db8:1:2:aaaa::1", a), 16);
	ck_assert_uint_eq(key_of("2001:db8:1:2:ffff:eeee:dddd:cccc", b), 16);
	ck_assert_mem_eq(a, b, 16);
	ck_assert_uint_eq(key_of("2001:db8:1:2::", b), 16);
	ck_assert_mem_eq(a, b, 16);
	/* the next /64 is another */
	key_of("2001:db8:1:3::1", b);
	ck_assert_mem_ne(a, b, 16);
	/* an IPv4 address is itself, whole */
	ck_assert_uint_eq(key_of("192.0.2.7", a), 4);
	ck_assert_uint_eq(key_of("192.0.2.8", b), 4);
	ck_assert_mem_ne(a, b, 4);
	/* its /24 is that of its neighbours, not of the next /24's */
	http_addr_prefix(a, 4, 24);
	http_addr_prefix(b, 4, 24);
	ck_assert_mem_eq(a, b, 4);
	ck_assert_uint_eq(a[3], 0);
	key_of("192.0.3.7", b);
	http_addr_prefix(b, 4, 24);
	ck_assert_mem_ne(a, b, 4);
	/* prefixes that end inside a byte, and none at all */
	key_of("192.0.2.255", a);
	http_addr_prefix(a, 4, 28);
	ck_assert_uint_eq(a[3], 0xf0);
	http_addr_prefix(a, 4, 0);
	ck_assert_uint_eq(a[0] | a[1] | a[2] | a[3], 0);
	key_of("2001:db8:1:2:aaaa::1", a);
	key_of("2001:db8:1:ffff::1", b);
	http_addr_prefix(a, 16, 48);
	http_addr_prefix(b, 16, 48);
	ck_assert_mem_eq(a, b, 16);
}
END_TEST

START_TEST(the_rate_limit_takes_an_ipv6_64_as_one_client)
{
	struct rate_limiter *rl;
	unsigned char k[16];
	char *cause = NULL;
	int64_t now = 1000000000;
	size_t n;

	ck_assert_int_eq(rate_limiter_new(&rl, 1, 3, 64, &cause), 0);
	/* a burst of 3 for the /64, whichever of its hosts sends */
	n = key_of("2001:db8::1", k);
	ck_assert_int_eq(rate_limiter_take(rl, k, n, now), 0);
	n = key_of("2001:db8::2", k);
	ck_assert_int_eq(rate_limiter_take(rl, k, n, now), 0);
	n = key_of("2001:db8::ffff:1:2:3", k);
	ck_assert_int_eq(rate_limiter_take(rl, k, n, now), 0);
	n = key_of("2001:db8::4", k);
	ck_assert_int_gt(rate_limiter_take(rl, k, n, now), 0);
	/* another /64 has its own */
	n = key_of("2001:db8:0:1::1", k);
	ck_assert_int_eq(rate_limiter_take(rl, k, n, now), 0);
	rate_limiter_free(rl);
}
END_TEST

/*
 * The admit hook: no "X-Client" header, 401; else its value names the
 * client for the body memory's share.
 */
static bool
admit_by_header(struct http_request *req, void *arg)
{
	const char *c = http_req_header(req, "X-Client");

	(void)arg;
	if (c == NULL) {
		http_respond_error(req, 401, "who are you");
		return false;
	}
	http_req_set_client(req, c, strlen(c));
	return true;
}

/* Count an answer's bytes, keeping the first of them. */
static size_t
on_count(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb, keep = r->len < sizeof(r->body) - 1 ?
	    sizeof(r->body) - 1 - r->len : 0;

	if (keep > 0) {
		keep = n < keep ? n : keep;
		memcpy(r->body + r->len, ptr, keep);
		r->body[r->len + keep] = '\0';
	}
	r->len += n;
	return n;
}

/*
 * POST len bytes to /echo as client (NULL: no X-Client header); r->len
 * counts the whole answer, r->body keeps its start.
 */
static void
post_as(const char *client, size_t len, struct reply *r)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
	char h[64], *body = malloc(len);
	CURL *e;

	ck_assert_ptr_nonnull(body);
	memset(body, 'x', len);
	if (client != NULL) {
		snprintf(h, sizeof(h), "X-Client: %s", client);
		hdrs = curl_slist_append(hdrs, h);
	}
	e = easy_for("POST", "/echo", body, len, hdrs, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_count);
	r->code = curl_easy_perform(e);
	if (r->code == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	free(body);
}

/* Replace the fixture's server with one that admits by X-Client. */
static void
start_admitting(size_t max_body, size_t body_memory, int share)
{
	struct http_server_opts o = {
		.address = "127.0.0.1",
		.max_body = max_body,
		.body_memory = body_memory,
		.body_share = share,
		.admit = admit_by_header,
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(*routes),
		.ctx = &ctx,
	};
	char *cause = NULL;

	http_server_stop(srv);
	o.port = port = tu_free_port();
	ck_assert_int_eq(http_server_start(&srv, &o, &cause), 0);
}

START_TEST(the_admit_hook_sees_the_head_before_the_body)
{
	struct reply r;

	start_admitting(MAX_BODY, 0, 0);
	/* refused on its head: before its size is even looked at */
	post_as(NULL, 4 * MAX_BODY, &r);
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(r.body, "{\"error\":\"who are you\"}");
	post_as("a", 4 * MAX_BODY, &r);
	ck_assert_int_eq(r.status, 413);
	post_as("a", 10, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(atomic_load(&ctx.entered), 1);
}
END_TEST

START_TEST(one_client_holds_its_share_of_the_body_memory)
{
	struct reply r;

	/* 25% of 160 KiB: one client's upload may take 40 KiB */
	start_admitting(128 * 1024, 160 * 1024, 25);
	post_as("a", 48 * 1024, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(r.body, "too many uploads"));
	post_as("a", 32 * 1024, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, 32 * 1024);
	/* the share is taken back when the upload ends */
	post_as("b", 32 * 1024, &r);
	ck_assert_int_eq(r.status, 200);
	post_as("a", 32 * 1024, &r);
	ck_assert_int_eq(r.status, 200);
	/* without a share, one client may take it all */
	start_admitting(128 * 1024, 160 * 1024, 0);
	post_as("a", 120 * 1024, &r);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

/* A test case with a server running for each test, and a minute to run. */
static TCase *
server_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	return tc;
}

Suite *
http_server_suite(void)
{
	Suite *s = suite_create("http_server");
	TCase *tc;

	tc = server_tcase("routing");
	tcase_add_test(tc, get_reaches_its_handler_and_answers_json);
	tcase_add_test(tc, post_body_reaches_the_handler);
	tcase_add_test(tc, prefix_route_hands_over_the_tail);
	tcase_add_test(tc, query_arguments_reach_the_handler);
	tcase_add_test(tc, unknown_path_is_404_with_json_error);
	tcase_add_test(tc, wrong_method_is_405_with_allow);
	tcase_add_test(tc, path_with_two_methods_routes_each_and_allows_both);
	suite_add_tcase(s, tc);

	tc = server_tcase("bodies");
	tcase_add_test(tc, body_of_exactly_max_body_is_accepted);
	tcase_add_test(tc, declared_body_over_max_body_is_413);
	tcase_add_test(tc, chunked_body_over_max_body_is_413);
	tcase_add_test(tc, malformed_request_is_refused_and_server_serves_on);
	suite_add_tcase(s, tc);

	tc = server_tcase("suspend");
	tcase_add_test(tc, handler_answers_later_from_another_thread);
	tcase_add_test(tc, many_suspended_requests_are_answered_at_once);
	suite_add_tcase(s, tc);

	tc = server_tcase("lifecycle");
	tcase_add_test(tc, metrics_count_answered_requests_by_status);
	tcase_add_test(tc, draining_answers_503_except_health);
	tcase_add_test(tc, wait_idle_waits_for_the_request_in_progress);
	tcase_add_test(tc, stop_closes_the_listening_port);
	tcase_add_test(tc, port_in_use_is_an_error_with_a_cause);
	tcase_add_test(tc, unresolvable_address_is_an_error_with_a_cause);
	suite_add_tcase(s, tc);

	tc = server_tcase("security");
	tcase_add_test(tc, a_certificate_without_its_key_is_an_error);
	tcase_add_test(tc, an_unreadable_certificate_is_named);
	tcase_add_test(tc, a_file_without_a_certificate_is_named);
	tcase_add_test(tc, a_bearer_token_guards_everything_but_health);
	tcase_add_test(tc, an_ipv6_client_is_its_64);
	tcase_add_test(tc, the_rate_limit_takes_an_ipv6_64_as_one_client);
	tcase_add_test(tc, the_admit_hook_sees_the_head_before_the_body);
	tcase_add_test(tc, one_client_holds_its_share_of_the_body_memory);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(http_server_suite)

/* http_client.c - libcurl multi on the event loop of the calling thread */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/epoll.h>

#include <curl/curl.h>

#include "clock.h"
#include "event_loop.h"
#include "http_client.h"
#include "log.h"
#include "xmalloc.h"

/* Bound on an answer we keep; larger ones are cut (ours are small). */
#define MAX_REPLY (4 * 1024 * 1024)
/* Connections one loop keeps to one next hop. */
#define HOP_CONNECTIONS 64

struct call {
	/* in the part's live list while in flight, in its idle list after */
	struct call *next, *prev;
	CURL *easy;
	char *url;
	char *body;
	size_t body_len;
	char *reply;
	size_t reply_len, reply_cap;
	struct curl_slist *headers;	/* this call's own, or NULL */
	char errbuf[CURL_ERROR_SIZE];	/* curl's detail on a failure */
	char why[CURL_ERROR_SIZE + 64];	/* the reply's error, when ours */
	http_client_cb cb;
	void *arg;
};

/*
 * The client's part on one event loop: transfers started on a loop run on
 * that loop, so the request, its hop and the answer stay on one thread.
 * Only that loop's thread touches it, until http_client_stop.
 */
struct client_part {
	struct http_client *hc;
	struct event_loop *loop;
	CURLM *multi;
	struct loop_timer timer;	/* curl's next timeout */
	struct call *live;		/* calls in flight */
	struct call *idle;		/* finished calls, easy handle kept */
	bool closing;
};

struct http_client {
	struct curl_slist *headers;
	long timeout_ms;
	char *ca_file;			/* NULL: the system's CAs */
	struct client_part *parts[EVENT_LOOP_MAX];
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct call *c = userdata;
	size_t n = size * nmemb, want;
	char *b;

	if (c->reply_len + n > MAX_REPLY)
		return 0;	/* abort the transfer */
	if (c->reply_len + n + 1 > c->reply_cap) {
		want = c->reply_cap ? c->reply_cap : 512;
		while (want < c->reply_len + n + 1)
			want *= 2;
		if ((b = realloc(c->reply, want)) == NULL)
			return 0;
		c->reply = b;
		c->reply_cap = want;
	}
	memcpy(c->reply + c->reply_len, ptr, n);
	c->reply_len += n;
	c->reply[c->reply_len] = '\0';
	return n;
}

/* A new easy handle with the settings every call shares. */
static CURL *
easy_new(struct http_client *hc)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, hc->timeout_ms);
	/* a dead next hop must be a quick 503, not a long wait */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    hc->timeout_ms < 2000 ? hc->timeout_ms : 2000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hc->headers);
	/* https hops: verified (curl's default), TLS 1.2 or later */
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (hc->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, hc->ca_file);
	return e;
}

/*
 * Point an easy handle at this call, reusing one from an earlier call:
 * only what differs per call is set, which keeps the hot path short.
 */
static int
call_prepare(struct client_part *cp, struct call *c)
{
	if (cp->idle != NULL) {
		struct call *old = cp->idle;

		cp->idle = old->next;
		c->easy = old->easy;
		free(old);
	} else if ((c->easy = easy_new(cp->hc)) == NULL) {
		return -ENOMEM;
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers != NULL ?
	    c->headers : cp->hc->headers);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	if (c->body != NULL) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)c->body_len);
	} else {
		curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
	}
	return 0;
}

/* Report r and free what the call owned, but not the call. */
static void
call_report(struct call *c, const struct http_reply *r)
{
	c->cb(c->arg, r);
	curl_slist_free_all(c->headers);
	free(c->url);
	free(c->body);
	free(c->reply);
	memset(c, 0, sizeof(*c));
}

/*
 * Why the transfer failed. A peer whose certificate does not verify is
 * logged here, the one place that can tell it from a hop that is down:
 * it is a misconfiguration or an attack, where a down hop is neither.
 */
static const char *
transfer_error(struct call *c, CURLcode code)
{
	const char *detail = c->errbuf[0] != '\0' ? c->errbuf :
	    curl_easy_strerror(code);

	if (code != CURLE_PEER_FAILED_VERIFICATION &&
	    code != CURLE_SSL_CACERT_BADFILE)
		return curl_easy_strerror(code);
	snprintf(c->why, sizeof(c->why), "the TLS certificate of the next "
	    "hop did not verify: %s", detail);
	log_warn("%s: %s", c->url, c->why);
	return c->why;
}

/* Report the outcome of the transfer. */
static void
call_finish(struct call *c, CURLcode code)
{
	struct http_reply r = { 0 };
	long status = 0;

	if (code == CURLE_OK) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		r.status = (int)status;
		r.body = c->reply != NULL ? c->reply : "";
		r.len = c->reply_len;
	} else {
		r.error = transfer_error(c, code);
		r.body = "";
	}
	call_report(c, &r);
}

static void
live_add(struct client_part *cp, struct call *c)
{
	c->prev = NULL;
	c->next = cp->live;
	if (cp->live != NULL)
		cp->live->prev = c;
	cp->live = c;
}

static void
live_remove(struct client_part *cp, struct call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		cp->live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void
collect_done(struct client_part *cp)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(cp->multi, &left)) != NULL) {
		struct call *c;
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
		curl_multi_remove_handle(cp->multi, easy);
		live_remove(cp, c);
		call_finish(c, code);
		/* keep the handle, and its connection, for the next call */
		c->easy = easy;
		c->next = cp->idle;
		cp->idle = c;
	}
}

/* One socket curl asked us to watch. */
struct sock_watch {
	struct loop_watch w;
	struct client_part *cp;
};

static void
on_sock_ready(void *arg, uint32_t events)
{
	struct sock_watch *sw = arg;
	/* sw may be freed during the action: keep what we need */
	struct client_part *cp = sw->cp;
	int flags = 0, running;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(cp->multi, sw->w.fd, flags, &running);
	collect_done(cp);
}

/* curl tells which sockets to watch: mirror that into the loop. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct client_part *cp = userp;
	struct sock_watch *sw = socketp;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sw != NULL && !cp->closing)
			event_loop_unwatch(cp->loop, &sw->w);
		free(sw);
		curl_multi_assign(cp->multi, s, NULL);
		return 0;
	}
	if (sw == NULL) {
		if ((sw = calloc(1, sizeof(*sw))) == NULL)
			return -1;
		sw->w = (struct loop_watch){ .cb = on_sock_ready, .arg = sw, .fd = s };
		sw->cp = cp;
		curl_multi_assign(cp->multi, s, sw);
	}
	event_loop_watch(cp->loop, &sw->w,
	    (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0));
	return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct client_part *cp = userp;

	(void)multi;
	cp->timer.at_ms = timeout_ms < 0 ? -1 : clock_now_ms() + timeout_ms;
	return 0;
}

static void
on_timeout(void *arg)
{
	struct client_part *cp = arg;
	int running;

	curl_multi_socket_action(cp->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect_done(cp);
}

/* The part for the calling thread's loop, made on first use there. */
static struct client_part *
part_for(struct http_client *hc, struct event_loop *loop)
{
	int i = event_loop_index(loop);
	struct client_part *cp = hc->parts[i];

	if (cp != NULL)
		return cp;
	if ((cp = calloc(1, sizeof(*cp))) == NULL ||
	    (cp->multi = curl_multi_init()) == NULL) {
		free(cp);
		return NULL;
	}
	cp->hc = hc;
	cp->loop = loop;
	cp->timer = (struct loop_timer){ -1, on_timeout, cp };
	if (event_loop_add_timer(loop, &cp->timer) != 0) {
		curl_multi_cleanup(cp->multi);
		free(cp);
		return NULL;
	}
	curl_multi_setopt(cp->multi, CURLMOPT_MAXCONNECTS, 512L);
	/*
	 * The next hop limits the connections one client address may hold
	 * (MAX_CLIENT_CONNECTIONS): past a few dozen per loop, transfers wait
	 * for a connection rather than open more.
	 */
	curl_multi_setopt(cp->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)HOP_CONNECTIONS);
	curl_multi_setopt(cp->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cp->multi, CURLMOPT_SOCKETDATA, cp);
	curl_multi_setopt(cp->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(cp->multi, CURLMOPT_TIMERDATA, cp);
	hc->parts[i] = cp;
	return cp;
}

int
http_client_start(struct http_client **out, long timeout_ms, char **cause)
{
	struct http_client *hc = xcalloc(1, sizeof(*hc));

	(void)cause;	/* nothing here can fail but memory: see xmalloc.h */
	*out = NULL;
	hc->timeout_ms = timeout_ms;
	hc->headers = curl_slist_append(NULL,
	    "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip for larger bodies */
	hc->headers = curl_slist_append(hc->headers, "Expect:");
	*out = hc;
	return 0;
}

int
http_client_secure(struct http_client *hc, const char *ca_file,
    const char *bearer_token, char **cause)
{
	FILE *f;
	char *line;
	int rc;

	if (ca_file != NULL) {
		/* a typo here would fail every request: say so at start */
		if ((f = fopen(ca_file, "re")) == NULL) {
			rc = -errno;
			xasprintf(cause, "cannot read TLS_CA_FILE %s: %s",
			    ca_file, strerror(errno));
			return rc;
		}
		fclose(f);
		free(hc->ca_file);
		hc->ca_file = xstrdup(ca_file);
	}
	if (bearer_token != NULL && *bearer_token != '\0') {
		xasprintf(&line, "Authorization: Bearer %s", bearer_token);
		if ((hc->headers = curl_slist_append(hc->headers, line)) ==
		    NULL)
			xalloc_failed();
		explicit_bzero(line, strlen(line));
		free(line);
	}
	return 0;
}

/*
 * Calls still in flight when the client stops: a caller that answered its
 * own client before every answer came (the gateway's lookup across
 * processors) frees what it keeps for them in the callback, so each still
 * gets its one call.
 */
static void
part_abandon_live(struct client_part *cp)
{
	struct http_reply r = { .body = "", .error = "the client stopped" };
	struct call *c;

	while ((c = cp->live) != NULL) {
		CURL *e = c->easy;

		live_remove(cp, c);
		curl_multi_remove_handle(cp->multi, e);
		call_report(c, &r);
		curl_easy_cleanup(e);
		free(c);
	}
}

void
http_client_stop(struct http_client *hc)
{
	if (hc == NULL)
		return;
	for (int i = 0; i < EVENT_LOOP_MAX; i++) {
		struct client_part *cp = hc->parts[i];
		struct call *c, *next;

		if (cp == NULL)
			continue;
		/* the loop has stopped: only free what curl still holds */
		cp->closing = true;
		part_abandon_live(cp);
		curl_multi_cleanup(cp->multi);
		for (c = cp->idle; c != NULL; c = next) {
			next = c->next;
			curl_easy_cleanup(c->easy);
			free(c);
		}
		free(cp);
	}
	/* the token is a secret: leave no copy in freed memory */
	for (struct curl_slist *h = hc->headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hc->headers);
	free(hc->ca_file);
	free(hc);
}

void
http_client_request(struct http_client *hc, const char *url, char *body,
    size_t len, http_client_cb cb, void *arg)
{
	http_client_request_with(hc, url, NULL, body, len, cb, arg);
}

/* The shared headers and the lines of more (apart by "\n"), for one call. */
static struct curl_slist *
headers_with(const struct http_client *hc, const char *more)
{
	struct curl_slist *h = NULL;
	char *copy = xstrdup(more), *save = NULL;

	for (const struct curl_slist *b = hc->headers; b != NULL; b = b->next)
		h = curl_slist_append(h, b->data);
	for (char *l = strtok_r(copy, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save))
		if ((h = curl_slist_append(h, l)) == NULL)
			xalloc_failed();
	free(copy);
	if (h == NULL)
		xalloc_failed();
	return h;
}

void
http_client_request_with(struct http_client *hc, const char *url,
    const char *header, char *body, size_t len, http_client_cb cb, void *arg)
{
	struct event_loop *loop = event_loop_current();
	struct client_part *cp = loop != NULL ? part_for(hc, loop) : NULL;
	struct call *c = calloc(1, sizeof(*c));
	struct http_reply r = { .body = "", .error = "out of memory" };

	if (loop == NULL)
		r.error = "not on an event loop";
	if (cp == NULL || c == NULL || (c->url = strdup(url)) == NULL) {
		free(c);
		free(body);
		cb(arg, &r);
		return;
	}
	c->body = body;
	c->body_len = len;
	if (header != NULL)
		c->headers = headers_with(hc, header);
	c->cb = cb;
	c->arg = arg;
	if (call_prepare(cp, c) != 0 ||
	    curl_multi_add_handle(cp->multi, c->easy) != CURLM_OK) {
		CURL *e = c->easy;

		c->easy = NULL;
		call_finish(c, CURLE_OUT_OF_MEMORY);
		curl_easy_cleanup(e);
		free(c);
		return;
	}
	live_add(cp, c);
	/* curl asked for a timeout of 0 to start it: the loop sees to that */
}

char *
http_path_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~') {
			*o++ = (char)ch;
		} else {
			*o++ = '%';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		}
	}
	*o = '\0';
	return out;
}

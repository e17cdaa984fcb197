/* http_client.c - libcurl multi interface on a thread of its own */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_client.h"

/* Bound on an answer we keep; larger ones are cut (ours are small). */
#define MAX_REPLY (4 * 1024 * 1024)

struct call {
	struct call *next;
	CURL *easy;
	char *url;
	char *body;
	size_t body_len;
	char *reply;
	size_t reply_len, reply_cap;
	http_client_cb cb;
	void *arg;
};

struct http_client {
	CURLM *multi;
	struct curl_slist *headers;
	long timeout_ms;
	pthread_t thread;
	int epfd;			/* curl's sockets and the wakeup */
	int wakefd;			/* eventfd: new calls, or stop */
	long timer_ms;			/* curl's next timeout, -1: none */
	/* lock guards submitted and stopping */
	pthread_mutex_t lock;
	struct call *submitted;
	bool stopping;
	/* owned by the client thread */
	struct call *idle;		/* finished calls, easy handle kept */
	int running;
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
	return e;
}

/*
 * Point an easy handle at this call, reusing one from an earlier call:
 * only what differs per call is set, which keeps the hot path short.
 */
static int
call_prepare(struct http_client *hc, struct call *c)
{
	if (hc->idle != NULL) {
		struct call *old = hc->idle;

		hc->idle = old->next;
		c->easy = old->easy;
		free(old);
	} else if ((c->easy = easy_new(hc)) == NULL) {
		return -ENOMEM;
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	if (c->body != NULL) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)c->body_len);
	} else {
		curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
	}
	return 0;
}

static void
call_finish(struct http_client *hc, struct call *c, CURLcode code)
{
	struct http_reply r = { 0 };
	long status = 0;

	if (code == CURLE_OK) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		r.status = (int)status;
		r.body = c->reply != NULL ? c->reply : "";
		r.len = c->reply_len;
	} else {
		r.error = curl_easy_strerror(code);
		r.body = "";
	}
	c->cb(c->arg, &r);
	free(c->url);
	free(c->body);
	free(c->reply);
	memset(c, 0, sizeof(*c));
}

/* Move newly submitted calls into the multi handle. */
static bool
take_submitted(struct http_client *hc)
{
	struct call *list, *next;
	bool stopping;

	pthread_mutex_lock(&hc->lock);
	list = hc->submitted;
	hc->submitted = NULL;
	stopping = hc->stopping;
	pthread_mutex_unlock(&hc->lock);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = NULL;
		if (call_prepare(hc, list) != 0 ||
		    curl_multi_add_handle(hc->multi, list->easy) != CURLM_OK) {
			CURL *e = list->easy;

			list->easy = NULL;
			call_finish(hc, list, CURLE_OUT_OF_MEMORY);
			curl_easy_cleanup(e);
			free(list);
			continue;
		}
		hc->running++;
	}
	return stopping;
}

static void
collect_done(struct http_client *hc)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(hc->multi, &left)) != NULL) {
		struct call *c;
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
		curl_multi_remove_handle(hc->multi, easy);
		hc->running--;
		call_finish(hc, c, code);
		/* keep the handle, and its connection, for the next call */
		c->easy = easy;
		c->next = hc->idle;
		hc->idle = c;
	}
}

/* curl tells which sockets to watch: mirror that into our epoll set. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *hc = userp;
	struct epoll_event ev = { .data.fd = s };

	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(hc->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(hc->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
		epoll_ctl(hc->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *hc = userp;

	hc->timer_ms = timeout_ms;
	return 0;
}

/*
 * The event loop: curl's socket interface touches only the transfers whose
 * sockets are ready, where curl_multi_perform would visit every one.
 */
static void *
client_main(void *arg)
{
	struct http_client *hc = arg;
	struct epoll_event evs[64];
	bool stopping = false;
	uint64_t junk;
	int n, running;

	pthread_setname_np(pthread_self(), "http-client");

	for (;;) {
		n = epoll_wait(hc->epfd, evs, 64, (int)hc->timer_ms);
		if (n == 0) {
			hc->timer_ms = -1;
			curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT,
			    0, &running);
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, flags = 0;

			if (fd == hc->wakefd) {
				if (read(hc->wakefd, &junk, sizeof(junk)) < 0)
					junk = 0;
				stopping = take_submitted(hc);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(hc->multi, fd, flags,
			    &running);
		}
		/* a new handle asks for an immediate timeout to start */
		if (hc->timer_ms == 0) {
			hc->timer_ms = -1;
			curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT,
			    0, &running);
		}
		collect_done(hc);
		if (stopping && hc->running == 0)
			break;
	}
	return NULL;
}

static void
wake(struct http_client *hc)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is already set, the loop will wake anyway */
	if (write(hc->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

static void
client_free(struct http_client *hc)
{
	if (hc->epfd >= 0)
		close(hc->epfd);
	if (hc->wakefd >= 0)
		close(hc->wakefd);
	curl_multi_cleanup(hc->multi);
	curl_slist_free_all(hc->headers);
	pthread_mutex_destroy(&hc->lock);
	free(hc);
}

int
http_client_start(struct http_client **out, long timeout_ms, char **cause)
{
	struct http_client *hc = calloc(1, sizeof(*hc));

	*out = NULL;
	if (hc == NULL || (hc->multi = curl_multi_init()) == NULL) {
		free(hc);
		*cause = strdup("cannot set up libcurl");
		return -ENOMEM;
	}
	hc->timeout_ms = timeout_ms;
	hc->headers = curl_slist_append(NULL,
	    "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip for larger bodies */
	hc->headers = curl_slist_append(hc->headers, "Expect:");
	curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, 512L);
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
	hc->timer_ms = -1;
	hc->epfd = epoll_create1(EPOLL_CLOEXEC);
	hc->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&hc->lock, NULL);
	if (hc->epfd < 0 || hc->wakefd < 0 ||
	    epoll_ctl(hc->epfd, EPOLL_CTL_ADD, hc->wakefd,
	    &(struct epoll_event){ .events = EPOLLIN,
	    .data.fd = hc->wakefd }) != 0 ||
	    pthread_create(&hc->thread, NULL, client_main, hc) != 0) {
		*cause = strdup("cannot start the HTTP client thread");
		client_free(hc);
		return -EAGAIN;
	}
	*out = hc;
	return 0;
}

void
http_client_stop(struct http_client *hc)
{
	struct call *c, *next;

	if (hc == NULL)
		return;
	pthread_mutex_lock(&hc->lock);
	hc->stopping = true;
	pthread_mutex_unlock(&hc->lock);
	wake(hc);
	pthread_join(hc->thread, NULL);
	for (c = hc->idle; c != NULL; c = next) {
		next = c->next;
		curl_easy_cleanup(c->easy);
		free(c);
	}
	client_free(hc);
}

void
http_client_request(struct http_client *hc, const char *url, char *body,
    size_t len, http_client_cb cb, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));
	struct http_reply r = { .body = "", .error = "out of memory" };

	if (c == NULL || (c->url = strdup(url)) == NULL) {
		free(c);
		free(body);
		cb(arg, &r);
		return;
	}
	c->body = body;
	c->body_len = len;
	c->cb = cb;
	c->arg = arg;
	pthread_mutex_lock(&hc->lock);
	c->next = hc->submitted;
	hc->submitted = c;
	pthread_mutex_unlock(&hc->lock);
	wake(hc);
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

/* loadgen/main.c - diplom-loadgen: post, measure, record the accepted */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "clock.h"
#include "loadgen/args.h"
#include "loadgen/record.h"
#include "loadgen/stats.h"

#define PROG			"diplom-loadgen"
#define NS_PER_MS		INT64_C(1000000)
#define NS_PER_S		INT64_C(1000000000)
/* the longest the loop sleeps: how soon a signal or a redraw is seen */
#define TICK_MS			100
#define DRAW_NS			(250 * NS_PER_MS)
#define RESP_MAX		1024	/* an ingest answer is ~70 bytes */
/* a batch's answer: ~60 bytes an item, more for a refusal's reason */
#define RESP_ITEM		320
#define CONNECT_TIMEOUT_MS	5000L
#define REQUEST_TIMEOUT_MS	30000L
#define BAR_WIDTH		20

/* SIGINT/SIGTERM count: 1 stops sending, 2 also abandons what is in flight */
static volatile sig_atomic_t lg_signals;

enum slot_state {
	SLOT_IDLE,
	SLOT_BUSY,	/* its request is in the multi handle */
	SLOT_WAIT,	/* waiting for retry_at to try again */
};

/* One request in flight: an easy handle that keeps its connection warm. */
struct slot {
	CURL *easy;
	enum slot_state state;
	char *body;		/* the shared prefix, then this seq's tail */
	uint64_t seq;
	int n_msgs;		/* messages in this request: 1, or a batch */
	unsigned attempt;	/* 0: the first try */
	int64_t start_ns;	/* when this attempt went to libcurl */
	int64_t retry_at_ns;
	long last_status;	/* of the previous attempt, 0: no answer */
	struct curl_slist *headers;	/* the shared ones and this key */
	size_t resp_len;
	size_t resp_cap;
	char *resp;
};

/* The run: everything the loop needs, owned by main. */
struct lg {
	const struct lg_opts *o;
	CURLM *multi;
	struct curl_slist *headers;
	char run_tag[20];	/* in every Idempotency-Key of this run */
	struct slot *slots;
	int *idle;		/* stack of idle slot indices */
	int n_idle;
	int n_wait;		/* slots in SLOT_WAIT */
	int64_t next_retry_ns;	/* earliest retry_at of those, a lower bound */
	size_t prefix_len;
	char *prefix;		/* --batch: each message's start */
	struct lg_record *rec;
	json_tokener *tok;
	struct lg_counts counts;
	struct lg_hist hist;
	int64_t start_ns;
	int64_t end_ns;		/* when the last answer was in */
	int64_t deadline_ns;	/* --duration: no new messages after this */
	int64_t last_draw_ns;
	uint64_t next_seq;
	int stopping;		/* no new messages; retries may still run */
	int failed;		/* a runtime failure: exit 1 */
	int tty;
	uint32_t rng;
	CURLcode last_error;
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

/* xorshift32: jitter needs spread, not quality */
static uint32_t
lg_random(struct lg *lg)
{
	uint32_t x = lg->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return lg->rng = x;
}

static void
on_signal(int sig)
{
	(void)sig;
	if (lg_signals < 2)
		lg_signals++;
}

/* Keep the start of an answer; message_id is in the first few bytes. */
static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct slot *s = arg;
	size_t n = size * nmemb, room = s->resp_cap - 1 - s->resp_len;

	memcpy(s->resp + s->resp_len, data, n < room ? n : room);
	s->resp_len += n < room ? n : room;
	return n;
}

/* Set up slot i's easy handle and body; -1 when out of memory. */
static int
slot_init(struct lg *lg, int i, const char *prefix)
{
	struct slot *s = &lg->slots[i];
	CURL *e;

	size_t room = lg->prefix_len + LG_BODY_TAIL;
	int batch = lg->o->batch;

	if (batch > 0)
		room = 3 + (size_t)batch * LG_ITEM_ROOM(lg->prefix_len);
	s->resp_cap = batch > 0 ? RESP_MAX + (size_t)batch * RESP_ITEM :
	    RESP_MAX;
	if ((s->body = malloc(room)) == NULL ||
	    (s->resp = malloc(s->resp_cap)) == NULL ||
	    (s->easy = e = curl_easy_init()) == NULL)
		return -1;
	memcpy(s->body, prefix, lg->prefix_len);
	curl_easy_setopt(e, CURLOPT_URL, lg->o->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, lg->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	/* a hung request must end as an error, not hang the run */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_USERAGENT, PROG "/" PACKAGE_VERSION);
	s->state = SLOT_IDLE;
	lg->idle[lg->n_idle++] = i;
	return 0;
}

/* Hand the slot's current attempt to libcurl. */
static void
slot_send(struct lg *lg, struct slot *s, int64_t now)
{
	s->resp_len = 0;
	s->start_ns = now;
	s->state = SLOT_BUSY;
	lg->counts.requests++;
	if (s->attempt > 0)
		lg->counts.retries++;
	curl_multi_add_handle(lg->multi, s->easy);
}

/*
 * The message's own Idempotency-Key, kept for all its attempts: the run's
 * random tag and the sequence number, so that no two messages share one.
 */
static void
slot_key(struct lg *lg, struct slot *s, uint64_t seq)
{
	struct curl_slist *h = NULL;
	char key[96];

	for (struct curl_slist *b = lg->headers; b != NULL; b = b->next)
		h = curl_slist_append(h, b->data);
	snprintf(key, sizeof(key), "Idempotency-Key: lg-%s-%ju", lg->run_tag,
	    (uintmax_t)seq);
	if (h == NULL || (h = curl_slist_append(h, key)) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	curl_slist_free_all(s->headers);
	s->headers = h;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, h);
}

/* Start message number seq, and with --batch those after it, on slot s. */
static void
slot_start(struct lg *lg, struct slot *s, uint64_t seq, int64_t now)
{
	const struct lg_opts *o = lg->o;
	size_t len;
	int n = 1;

	if (o->batch > 0) {
		n = o->batch;
		if (o->count > 0 && (uint64_t)o->count - seq < (uint64_t)n)
			n = (int)((uint64_t)o->count - seq);
		len = lg_batch_finish(s->body, lg->prefix, lg->prefix_len, seq,
		    n, o->idempotency ? lg->run_tag : NULL);
	} else {
		len = lg_body_finish(s->body, lg->prefix_len, seq);
		if (o->idempotency)
			slot_key(lg, s, seq);
	}
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	s->seq = seq;
	s->n_msgs = n;
	s->attempt = 0;
	s->last_status = 0;
	lg->counts.sent += (uint64_t)n;
	slot_send(lg, s, now);
}

static void
slot_free(struct lg *lg, struct slot *s)
{
	s->state = SLOT_IDLE;
	lg->idle[lg->n_idle++] = (int)(s - lg->slots);
}

/* Give up on a message: its last attempt's outcome is its outcome. */
static void
slot_give_up(struct lg *lg, struct slot *s)
{
	for (int i = 0; i < s->n_msgs; i++) {
		if (s->last_status > 0)
			lg_counts_reject(&lg->counts, s->last_status);
		else
			lg->counts.errors++;
	}
	slot_free(lg, s);
}

/* Try the message on s again after a backoff, when it has retries left. */
static int
slot_retry(struct lg *lg, struct slot *s, long status, int64_t now)
{
	if (s->attempt >= (unsigned)lg->o->retry || lg_signals > 0)
		return 0;
	s->attempt++;
	s->last_status = status;
	s->retry_at_ns = now + lg_backoff_ms(s->attempt, lg_random(lg)) *
	    NS_PER_MS;
	if (lg->n_wait == 0 || s->retry_at_ns < lg->next_retry_ns)
		lg->next_retry_ns = s->retry_at_ns;
	lg->n_wait++;
	s->state = SLOT_WAIT;
	return 1;
}

/* A transport failure a new attempt cannot cure. */
static int
error_is_final(CURLcode res)
{
	return res == CURLE_URL_MALFORMAT ||
	    res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_OUT_OF_MEMORY;
}

/* The message_id of a 200 answer, NULL when there is none. The string
 * lives until the next call (the tokener's last object is kept). */
static const char *
answer_id(struct lg *lg, struct slot *s, json_object **objp)
{
	json_object *o, *id;

	json_tokener_reset(lg->tok);
	o = json_tokener_parse_ex(lg->tok, s->resp, (int)s->resp_len);
	*objp = o;
	if (o == NULL || !json_object_object_get_ex(o, "message_id", &id) ||
	    !json_object_is_type(id, json_type_string))
		return NULL;
	return json_object_get_string(id);
}

/* Record an accepted id; the first failure ends the run with status 1. */
static void
record_accepted(struct lg *lg, const char *id)
{
	char *cause = NULL;

	if (lg->rec == NULL || lg->failed)
		return;
	if (lg_record_add(lg->rec, id, wall_ms(), &cause) != 0) {
		fprintf(stderr, "%s: cannot record to %s: %s\n", PROG,
		    lg->o->record, cause != NULL ? cause : "error");
		free(cause);
		lg->failed = 1;
		lg->stopping = 1;
	}
}

/*
 * A batch's 200: {"items": [...]} in order, each accepted with its
 * message_id or refused with its status; what cannot be read is an error.
 */
static void
batch_done(struct lg *lg, struct slot *s)
{
	json_object *o, *items = NULL, *it, *v;
	size_t n = 0, i;

	json_tokener_reset(lg->tok);
	o = json_tokener_parse_ex(lg->tok, s->resp, (int)s->resp_len);
	if (o != NULL && json_object_object_get_ex(o, "items", &items) &&
	    json_object_is_type(items, json_type_array))
		n = json_object_array_length(items);
	if (n > (size_t)s->n_msgs)
		n = (size_t)s->n_msgs;
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(items, i);
		if (json_object_object_get_ex(it, "message_id", &v) &&
		    json_object_is_type(v, json_type_string)) {
			lg->counts.accepted++;
			record_accepted(lg, json_object_get_string(v));
		} else if (json_object_object_get_ex(it, "status", &v)) {
			lg_counts_reject(&lg->counts, json_object_get_int(v));
		} else {
			lg->counts.errors++;
		}
	}
	lg->counts.errors += (uint64_t)s->n_msgs - n;
	json_object_put(o);
}

/* Account for one finished attempt. */
static void
slot_done(struct lg *lg, struct slot *s, CURLcode res, int64_t now)
{
	uint64_t us = (uint64_t)(now - s->start_ns) / 1000;
	json_object *o = NULL;
	const char *id;
	long status = 0;

	s->state = SLOT_IDLE;
	if (res != CURLE_OK) {
		lg->last_error = res;
		if (error_is_final(res) || !slot_retry(lg, s, 0, now)) {
			s->last_status = 0;
			slot_give_up(lg, s);
		}
		return;
	}
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 503 && slot_retry(lg, s, status, now))
		return;
	/* latency of a message is that of its final, answered attempt */
	lg_hist_add(&lg->hist, us);
	if (status != 200) {
		for (int i = 0; i < s->n_msgs; i++)
			lg_counts_reject(&lg->counts, status);
		slot_free(lg, s);
		return;
	}
	if (lg->o->batch > 0) {
		batch_done(lg, s);
		slot_free(lg, s);
		return;
	}
	if ((id = answer_id(lg, s, &o)) != NULL) {
		lg->counts.accepted++;
		record_accepted(lg, id);
	} else {
		/* a 200 we cannot tie to an id proves nothing was accepted */
		lg->counts.errors++;
	}
	json_object_put(o);
	slot_free(lg, s);
}

/* Collect every finished transfer. */
static void
reap(struct lg *lg)
{
	CURLMsg *m;
	int left;
	int64_t now = clock_now_ns();

	while ((m = curl_multi_info_read(lg->multi, &left)) != NULL) {
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		char *p;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &p);
		/* m is gone after this; e and res were copied out */
		curl_multi_remove_handle(lg->multi, e);
		slot_done(lg, (struct slot *)(void *)p, res, now);
	}
}

/* When message seq is due under --rate: start + seq / rate. */
static int64_t
due_ns(const struct lg *lg, uint64_t seq)
{
	return lg->start_ns + (int64_t)((double)seq * 1e9 / lg->o->rate);
}

/* Whether another message is to be started at all. */
static int
more_to_send(const struct lg *lg)
{
	if (lg->stopping)
		return 0;
	if (lg->o->count > 0)
		return lg->next_seq < (uint64_t)lg->o->count;
	return 1;	/* --duration: the loop sets stopping at the deadline */
}

/* Send the retries that are due, then new messages while slots are free. */
static void
launch(struct lg *lg, int64_t now)
{
	struct slot *fresh;

	if (lg->n_wait > 0 && now >= lg->next_retry_ns) {
		int64_t next = INT64_MAX;

		for (int i = 0; i < lg->o->connections; i++) {
			struct slot *s = &lg->slots[i];

			if (s->state != SLOT_WAIT)
				continue;
			if (s->retry_at_ns <= now) {
				lg->n_wait--;
				slot_send(lg, s, now);
			} else if (s->retry_at_ns < next) {
				next = s->retry_at_ns;
			}
		}
		lg->next_retry_ns = next;
	}
	while (lg->n_idle > 0 && more_to_send(lg)) {
		/* token pacing: catch up on what is due, never run ahead */
		if (lg->o->rate > 0 && due_ns(lg, lg->next_seq) > now)
			break;
		fresh = &lg->slots[lg->idle[--lg->n_idle]];
		slot_start(lg, fresh, lg->next_seq, now);
		lg->next_seq += (uint64_t)fresh->n_msgs;
	}
}

/* Stop for good: waiting retries end with their last outcome, and on a
 * second signal so does everything in flight. */
static void
abandon(struct lg *lg, int in_flight)
{
	for (int i = 0; i < lg->o->connections; i++) {
		struct slot *s = &lg->slots[i];

		if (s->state == SLOT_WAIT) {
			lg->n_wait--;
			slot_give_up(lg, s);
		} else if (s->state == SLOT_BUSY && in_flight) {
			curl_multi_remove_handle(lg->multi, s->easy);
			s->last_status = 0;
			slot_give_up(lg, s);
		}
	}
}

/* mm:ss, or h:mm:ss past an hour. */
static void
fmt_clock(char *buf, size_t len, int64_t ns)
{
	int64_t s = ns > 0 ? ns / NS_PER_S : 0;

	if (s >= 3600)
		snprintf(buf, len, "%" PRId64 ":%02d:%02d", s / 3600,
		    (int)(s / 60 % 60), (int)(s % 60));
	else
		snprintf(buf, len, "%02d:%02d", (int)(s / 60), (int)(s % 60));
}

/* Redraw the progress line on stderr (only called on a terminal). */
static void
draw(struct lg *lg, int64_t now)
{
	const struct lg_counts *c = &lg->counts;
	uint64_t done = c->accepted + c->rejected + c->errors;
	int64_t elapsed = now - lg->start_ns, eta = 0;
	double frac = 0, rate;
	char bar[BAR_WIDTH + 1], el[32], et[32];
	int fill;

	rate = elapsed > 0 ? (double)done * 1e9 / (double)elapsed : 0;
	if (lg->o->count > 0) {
		frac = (double)done / (double)lg->o->count;
		if (rate > 0)
			eta = (int64_t)((double)((uint64_t)lg->o->count -
			    done) / rate * 1e9);
	} else {
		frac = (double)elapsed / (double)(lg->deadline_ns -
		    lg->start_ns);
		eta = lg->deadline_ns - now;
	}
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * BAR_WIDTH);
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	fmt_clock(el, sizeof(el), elapsed);
	fmt_clock(et, sizeof(et), eta);
	if (lg_signals > 0)
		snprintf(et, sizeof(et), "stopping");
	/* short enough for 80 columns: a wrapped line defeats the \r;
	 * \033[K clears what a longer previous line left behind */
	fprintf(stderr, "\r[%s] %3d%% %6.0f/s  acc %" PRIu64 "  rej %" PRIu64
	    "  err %" PRIu64 "  %s ETA %s\033[K", bar, (int)(frac * 100),
	    rate, c->accepted, c->rejected, c->errors, el, et);
	fflush(stderr);
	lg->last_draw_ns = now;
}

/* Milliseconds the loop may sleep before it has something to do. */
static int
poll_timeout(const struct lg *lg, int64_t now)
{
	int64_t wake = now + TICK_MS * NS_PER_MS, t;

	/* the answers just reaped freed slots, or ended the run */
	if (lg->n_idle == lg->o->connections && !more_to_send(lg))
		return 0;
	if (lg->n_idle > 0 && more_to_send(lg)) {
		if (lg->o->rate <= 0)
			return 0;
		if ((t = due_ns(lg, lg->next_seq)) < wake)
			wake = t;
	}
	if (lg->n_wait > 0 && lg->next_retry_ns < wake)
		wake = lg->next_retry_ns;
	if (lg->o->duration_ms > 0 && !lg->stopping && lg->deadline_ns < wake)
		wake = lg->deadline_ns;
	if (wake <= now)
		return 0;
	return (int)((wake - now + NS_PER_MS - 1) / NS_PER_MS);
}

/* The send loop: until every message is answered or given up. */
static void
run(struct lg *lg)
{
	int64_t now;
	int running, aborted = 0;
	char *cause = NULL;
	CURLMcode mc;

	lg->start_ns = now = clock_now_ns();
	lg->deadline_ns = lg->start_ns + lg->o->duration_ms * NS_PER_MS;
	for (;;) {
		if (lg_signals > 0 && !lg->stopping) {
			lg->stopping = 1;
			abandon(lg, 0);
		}
		if (lg_signals > 1 && !aborted) {
			abandon(lg, 1);
			aborted = 1;
		}
		if (lg->o->duration_ms > 0 && now >= lg->deadline_ns)
			lg->stopping = 1;
		launch(lg, now);
		if (lg->n_idle == lg->o->connections && !more_to_send(lg))
			break;
		curl_multi_perform(lg->multi, &running);
		reap(lg);
		now = clock_now_ns();
		if (lg->rec != NULL && !lg->failed &&
		    lg_record_tick(lg->rec, wall_ms(), &cause) != 0) {
			fprintf(stderr, "%s: cannot record to %s: %s\n", PROG,
			    lg->o->record, cause != NULL ? cause : "error");
			free(cause);
			cause = NULL;
			lg->failed = 1;
			lg->stopping = 1;
		}
		if (lg->tty && now - lg->last_draw_ns >= DRAW_NS)
			draw(lg, now);
		/* a signal interrupts the poll: curl takes EINTR as a wakeup */
		mc = curl_multi_poll(lg->multi, NULL, 0, poll_timeout(lg, now),
		    NULL);
		now = clock_now_ns();
		if (mc != CURLM_OK) {
			/* nothing would move again: count what is left, stop */
			fprintf(stderr, "%s: %s\n", PROG,
			    curl_multi_strerror(mc));
			lg->failed = lg->stopping = 1;
			abandon(lg, 1);
			break;
		}
	}
	lg->end_ns = now;
	if (lg->tty) {
		draw(lg, now);
		fputs("\r\033[K", stderr);
	}
}

/* Build the run's handles: -1 and a message on stderr when that fails. */
static int
lg_setup(struct lg *lg, const struct lg_opts *o)
{
	char *prefix = NULL, *cause = NULL;
	int rc = -1;

	lg->o = o;
	lg->tty = isatty(STDERR_FILENO);
	lg->rng = (uint32_t)clock_now_ns() ^ (uint32_t)getpid() << 16;
	if (lg->rng == 0)
		lg->rng = 1;
	lg_counts_init(&lg->counts);
	lg_hist_init(&lg->hist);
	if (o->record != NULL &&
	    lg_record_open(&lg->rec, o->record, o->label, &cause) != 0) {
		fprintf(stderr, "%s: cannot open record database: %s\n", PROG,
		    cause != NULL ? cause : o->record);
		goto out;
	}
	if ((lg->multi = curl_multi_init()) == NULL ||
	    (lg->tok = json_tokener_new()) == NULL ||
	    (prefix = lg_body_prefix(o->size, &lg->prefix_len)) == NULL ||
	    (lg->slots = calloc((size_t)o->connections,
	    sizeof(*lg->slots))) == NULL ||
	    (lg->idle = calloc((size_t)o->connections, sizeof(int))) == NULL)
		goto oom;
	lg->headers = curl_slist_append(NULL,
	    "Content-Type: application/json");
	/* no 100-continue round trip for large bodies */
	lg->headers = curl_slist_append(lg->headers, "Expect:");
	if (lg->headers == NULL)
		goto oom;
	/* keys of runs that meet at one server must differ too */
	snprintf(lg->run_tag, sizeof(lg->run_tag), "%08x%08x",
	    lg_random(lg), lg_random(lg));
	/* one warm connection per slot, none closed for lack of room */
	curl_multi_setopt(lg->multi, CURLMOPT_MAXCONNECTS,
	    (long)o->connections + 4);
	for (int i = 0; i < o->connections; i++) {
		if (slot_init(lg, i, prefix) != 0)
			goto oom;
	}
	if (o->batch > 0) {
		lg->prefix = prefix;
		prefix = NULL;
	}
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "%s: out of memory\n", PROG);
out:
	free(prefix);
	free(cause);
	return rc;
}

/* Release everything lg_setup made (also after a partial setup). */
static void
lg_teardown(struct lg *lg)
{
	for (int i = 0; lg->slots != NULL && i < lg->o->connections; i++) {
		struct slot *s = &lg->slots[i];

		if (s->easy != NULL) {
			if (s->state == SLOT_BUSY)
				curl_multi_remove_handle(lg->multi, s->easy);
			curl_easy_cleanup(s->easy);
		}
		curl_slist_free_all(s->headers);
		free(s->body);
		free(s->resp);
	}
	free(lg->slots);
	free(lg->idle);
	free(lg->prefix);
	if (lg->multi != NULL)
		curl_multi_cleanup(lg->multi);
	curl_slist_free_all(lg->headers);
	if (lg->tok != NULL)
		json_tokener_free(lg->tok);
	lg_record_close(lg->rec);
}

int
main(int argc, char **argv)
{
	struct lg_opts opts;
	struct lg *lg = NULL;
	struct sigaction sa;
	char *cause = NULL;
	int status = 1;

	switch (lg_opts_parse(&opts, argc, argv, stdout, &cause)) {
	case LG_RUN:
		break;
	case LG_EXIT_OK:
		return 0;
	default:
		fprintf(stderr, "%s: %s\n", PROG, cause != NULL ? cause :
		    "invalid arguments");
		fprintf(stderr, "Try '%s --help' for more information.\n",
		    PROG);
		free(cause);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
		return 1;
	}
	/* the histogram is ~70 KiB: on the heap, not the stack */
	if ((lg = calloc(1, sizeof(*lg))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", PROG);
		goto out;
	}
	if (lg_setup(lg, &opts) != 0)
		goto out;
	run(lg);
	if (lg->rec != NULL && !lg->failed &&
	    lg_record_flush(lg->rec, &cause) != 0) {
		fprintf(stderr, "%s: cannot record to %s: %s\n", PROG,
		    opts.record, cause != NULL ? cause : "error");
		free(cause);
		lg->failed = 1;
	}
	if (lg->counts.errors > 0 && lg->last_error != CURLE_OK)
		fprintf(stderr, "%s: %" PRIu64 " messages failed; last error: "
		    "%s\n", PROG, lg->counts.errors,
		    curl_easy_strerror(lg->last_error));
	lg_summary_print(stdout, &lg->counts, &lg->hist,
	    (double)(lg->end_ns - lg->start_ns) / 1e9, opts.json);
	fflush(stdout);
	status = lg->failed ? 1 : 0;
out:
	if (lg != NULL)
		lg_teardown(lg);
	free(lg);
	curl_global_cleanup();
	return status;
}

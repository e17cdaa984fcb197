/* queue_nats.c - the NATS JetStream backend (nats.c 3.4) */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "clock.h"
#include "log.h"
#include "queue.h"

#define NQ_CONSUMER		"messages-consumer"
#define NQ_MSGID_HDR		"Nats-Msg-Id"
#define NQ_STATUS_HDR		"Status"
#define NQ_DESC_HDR		"Description"
#define NQ_ACK_PREFIX		"$JS.ACK."

#define NQ_PUB_WAIT_MS		1500	/* PubAck deadline: then 503 */
#define NQ_API_WAIT_MS		2000	/* stream/consumer API requests */
#define NQ_PULL_EXPIRES_MS	5000	/* life of one pull request */
#define NQ_PULL_GRACE_MS	2000	/* then we call a pull request lost */
/*
 * What a shut-down processor gives back is redelivered only after its own
 * last pull request has expired: sooner, the server would deliver it again
 * into that request, to an inbox no one reads, and one of the message's
 * NATS_MAX_DELIVER deliveries would be spent for nothing.
 */
#define NQ_GIVE_BACK		"-NAK {\"delay\": 7000000000}"
#define NQ_STATS_FRESH_MS	500	/* consumer info cache lifetime */
#define NQ_STATS_STALE_MS	2000	/* older than this: wait a moment */
#define NQ_STATS_WAIT_MS	250	/* how long stats() may wait */
#define NQ_ENSURE_RETRY_MS	1000
#define NQ_MAX_PENDING		4096	/* async publishes awaiting PubAck */
#define NQ_MAX_ACK_PENDING	4096	/* consumer-wide, all processors */
#define NQ_PUB_BUCKETS		4096	/* power of two */
#define NQ_DUPLICATES_NS	(120 * INT64_C(1000000000))

#define NQ_ERR_STREAM_FULL	10077	/* maximum messages/bytes exceeded */
#define NQ_ERR_STORE_FULL	10047	/* insufficient storage */

#define NS_PER_MS		INT64_C(1000000)

/* A publish waiting for its PubAck, found again by its natsMsg pointer. */
struct nq_pub {
	natsMsg *m;
	queue_publish_cb cb;
	void *arg;
	struct nq_pub *next;
};

/* A message the server delivered to us and we have not settled yet. */
struct nq_delivery {
	struct delivery d;		/* what the worker sees */
	natsMsg *m;
	int64_t touched_ms;		/* delivered or last marked +WPI */
	bool queued;			/* still in the ready FIFO */
	struct nq_delivery *prev, *next;	/* in-flight list */
	struct nq_delivery *qnext;	/* ready FIFO */
};

struct nats_queue {
	struct queue q;			/* first: handed out as struct queue */

	char *stream;
	char *subject;			/* <prefix>.messages */
	char *filter;			/* <prefix>.> */
	char *next_subj;		/* $JS.API.CONSUMER.MSG.NEXT.<s>.<c> */
	char *url;
	bool processor;
	int batch;			/* deliveries per receive */
	int cap;			/* prefetch bound: ready + requested */
	int64_t max_msgs, max_bytes, max_age_ms, replicas;
	int64_t ack_wait_ms, max_deliver;

	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;		/* inbox our pull requests answer to */
	char *inbox;

	pthread_t maint_thr, pull_thr, wpi_thr;
	bool maint_started, pull_started, wpi_started;

	/*
	 * mu guards everything from here to the counters: connection state,
	 * the stats cache, the ready FIFO, the in-flight list and the pull
	 * bookkeeping shared with the callbacks.
	 */
	pthread_mutex_t mu;
	pthread_cond_t maint_cv;	/* maint thread: work to do */
	pthread_cond_t wpi_cv;		/* wpi thread: stop */
	pthread_cond_t recv_cv;		/* receivers: FIFO non-empty */
	pthread_cond_t space_cv;	/* puller: room or state change */
	pthread_cond_t stats_cv;	/* stats(): cache refreshed */
	pthread_cond_t closed_cv;	/* close(): closed callback ran */
	bool connected;
	bool stream_ok;
	bool consumer_ok;
	bool need_ensure;
	int64_t ensure_at_ms;
	bool stats_wanted;
	int64_t stats_at_ms;		/* 0: never refreshed */
	int64_t stats_size;
	bool shut;			/* shutdown(): no new deliveries */
	bool stopping;			/* close(): threads end */
	bool closed_cb_done;
	bool pull_reset;		/* outstanding pull request is gone */
	bool warned_stream, warned_consumer;
	struct nq_delivery *fifo_head, *fifo_tail;
	int buffered;			/* in the FIFO */
	struct nq_delivery inflight;	/* list head: delivered, unsettled */

	/* plock guards the pending-publish table. */
	pthread_mutex_t plock;
	struct nq_pub *pubs[NQ_PUB_BUCKETS];

	atomic_bool pub_ok;		/* connected and stream present */
	atomic_uint_fast64_t enqueued, dequeued, redelivered;
};

/* Wait on cv until the monotonic time at_ms; false on timeout. */
static bool
nq_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t at_ms)
{
	return clock_cond_wait_until(cv, mu, at_ms * 1000000) == 0;
}

/* Recompute the publish fast-path flag; mu held. */
static void
nq_update_locked(struct nats_queue *nq)
{
	atomic_store(&nq->pub_ok, nq->connected && nq->stream_ok);
}

/* ---- pending publishes ---- */

static size_t
nq_pub_slot(const natsMsg *m)
{
	uint64_t v = (uint64_t)(uintptr_t)m;

	v ^= v >> 17;
	v *= UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(v >> 40) & (NQ_PUB_BUCKETS - 1);
}

static void
nq_pub_put(struct nats_queue *nq, struct nq_pub *p)
{
	size_t i = nq_pub_slot(p->m);

	pthread_mutex_lock(&nq->plock);
	p->next = nq->pubs[i];
	nq->pubs[i] = p;
	pthread_mutex_unlock(&nq->plock);
}

/* Remove and return the publish of m; NULL when already reported. */
static struct nq_pub *
nq_pub_take(struct nats_queue *nq, const natsMsg *m)
{
	struct nq_pub **pp, *p = NULL;

	pthread_mutex_lock(&nq->plock);
	for (pp = &nq->pubs[nq_pub_slot(m)]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->m == m) {
			p = *pp;
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&nq->plock);
	return p;
}

/*
 * The PubAck handler, on the JetStream context's reply thread. This is the
 * single place a successful publish is reported, so the HTTP layer answers
 * 200 only once the stream holds the message.
 */
static void
nq_on_puback(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae,
    void *closure)
{
	struct nats_queue *nq = closure;
	struct nq_pub *p;
	char why[160];
	int rc;

	(void)js;
	p = nq_pub_take(nq, m);
	natsMsg_Destroy(m);
	if (p == NULL)
		return;
	if (pa != NULL) {
		atomic_fetch_add(&nq->enqueued, 1);
		p->cb(p->arg, 0, pa->Duplicate ? "duplicate" : "stored");
		free(p);
		return;
	}
	if (pae != NULL && pae->Err == NATS_ERR &&
	    (pae->ErrCode == NQ_ERR_STREAM_FULL ||
	    pae->ErrCode == NQ_ERR_STORE_FULL)) {
		rc = QUEUE_EFULL;
		snprintf(why, sizeof(why), "stream full: %s", pae->ErrText);
	} else {
		rc = QUEUE_EUNAVAIL;
		snprintf(why, sizeof(why), "no PubAck: %s",
		    pae != NULL && pae->ErrText != NULL ? pae->ErrText :
		    "unknown error");
	}
	log_debug("nats: publish failed: %s", why);
	p->cb(p->arg, rc, why);
	free(p);
}

/*
 * Hand msg to JetStream without waiting: the outcome comes back through
 * nq_on_puback. nats.c's own MaxWait timer turns a missing PubAck into a
 * timeout there, so no publish waits longer than NQ_PUB_WAIT_MS.
 */
static void
nq_publish(struct queue *q, struct data_message *msg, queue_publish_cb cb,
    void *arg)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_pub *p = NULL;
	natsMsg *m = NULL;
	jsPubOptions po;
	natsStatus s;
	char *body = NULL;
	size_t len = 0;
	int rc = QUEUE_EUNAVAIL;
	const char *why = "not connected to NATS";

	if (!atomic_load(&nq->pub_ok)) {
		pthread_mutex_lock(&nq->mu);
		if (nq->connected)
			why = "JetStream stream not available";
		pthread_mutex_unlock(&nq->mu);
		goto fail;
	}
	if ((body = message_encode(msg, &len)) == NULL ||
	    len > INT32_MAX) {
		rc = QUEUE_EINVAL;
		why = "cannot encode message";
		goto fail;
	}
	if (natsMsg_Create(&m, nq->subject, NULL, body, (int)len) != NATS_OK ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		rc = QUEUE_EUNAVAIL;
		why = "out of memory";
		goto fail;
	}
	p->m = m;
	p->cb = cb;
	p->arg = arg;
	/* In the table before sending: the PubAck may beat our return. */
	nq_pub_put(nq, p);

	jsPubOptions_Init(&po);
	po.MsgId = msg->id;
	po.MaxWait = NQ_PUB_WAIT_MS;
	s = js_PublishMsgAsync(nq->js, &m, &po);
	if (s == NATS_OK) {
		/* m is nats.c's now, and p may already be freed. */
		p = NULL;
		goto out;
	}
	/* On failure nats.c never saw the message: p is still ours. */
	nq_pub_take(nq, p->m);
	why = natsStatus_GetText(s);
	log_debug("nats: publish not sent: %s", why);
fail:
	cb(arg, rc, why);
out:
	free(p);
	natsMsg_Destroy(m);
	free(body);
	message_free(msg);
}

/* ---- connection state ---- */

/* Connected for the first time, or again: re-check stream and consumer. */
static void
nq_set_up(struct nats_queue *nq, natsConnection *nc, const char *how)
{
	char url[256] = "";

	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	pthread_mutex_lock(&nq->mu);
	nq->connected = true;
	nq->need_ensure = true;
	nq->ensure_at_ms = 0;
	nq->pull_reset = true;
	nq_update_locked(nq);
	pthread_cond_broadcast(&nq->maint_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_mutex_unlock(&nq->mu);
	log_info("nats: %s to %s", how, url[0] != '\0' ? url : nq->url);
}

static void
nq_on_connected(natsConnection *nc, void *closure)
{
	nq_set_up(closure, nc, "connected");
}

static void
nq_on_reconnected(natsConnection *nc, void *closure)
{
	nq_set_up(closure, nc, "reconnected");
}

static void
nq_on_disconnected(natsConnection *nc, void *closure)
{
	struct nats_queue *nq = closure;
	bool was;

	(void)nc;
	pthread_mutex_lock(&nq->mu);
	/* close() disconnects on purpose: not worth a warning. */
	was = nq->connected && !nq->stopping;
	nq->connected = false;
	nq_update_locked(nq);
	pthread_mutex_unlock(&nq->mu);
	if (was) {
		log_warn("nats: connection to %s lost, reconnecting", nq->url);
	}
}

static void
nq_on_closed(natsConnection *nc, void *closure)
{
	struct nats_queue *nq = closure;

	(void)nc;
	pthread_mutex_lock(&nq->mu);
	nq->connected = false;
	nq->closed_cb_done = true;
	nq_update_locked(nq);
	pthread_cond_broadcast(&nq->closed_cv);
	pthread_mutex_unlock(&nq->mu);
}

/* ---- stream and consumer ---- */

static void
nq_diff_add(char *buf, size_t size, const char *name)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "", name);
}

/* Fill the stream configuration we want. */
static void
nq_stream_config(struct nats_queue *nq, jsStreamConfig *sc,
    const char **subjects)
{
	jsStreamConfig_Init(sc);
	subjects[0] = nq->filter;
	sc->Name = nq->stream;
	sc->Subjects = subjects;
	sc->SubjectsLen = 1;
	sc->Retention = js_WorkQueuePolicy;
	sc->Storage = js_FileStorage;
	sc->Discard = js_DiscardNew;
	sc->MaxMsgs = nq->max_msgs;
	sc->MaxBytes = nq->max_bytes;
	sc->MaxAge = nq->max_age_ms * NS_PER_MS;
	sc->Replicas = nq->replicas;
	sc->Duplicates = NQ_DUPLICATES_NS;
	/* The server refuses a duplicate window longer than the age limit. */
	if (sc->MaxAge > 0 && sc->MaxAge < sc->Duplicates)
		sc->Duplicates = sc->MaxAge;
}

/* Name the fields where an existing stream differs from ours. */
static void
nq_stream_diff(const jsStreamConfig *want, const jsStreamConfig *have,
    char *buf, size_t size)
{
	bool subj = false;

	buf[0] = '\0';
	for (int i = 0; i < have->SubjectsLen; i++) {
		if (strcmp(have->Subjects[i], want->Subjects[0]) == 0)
			subj = true;
	}
	if (!subj)
		nq_diff_add(buf, size, "subjects");
	if (have->Retention != want->Retention)
		nq_diff_add(buf, size, "retention");
	if (have->Storage != want->Storage)
		nq_diff_add(buf, size, "storage");
	if (have->Discard != want->Discard)
		nq_diff_add(buf, size, "discard");
	if (have->MaxMsgs != want->MaxMsgs)
		nq_diff_add(buf, size, "max_msgs");
	if (have->MaxBytes != want->MaxBytes)
		nq_diff_add(buf, size, "max_bytes");
	if (have->MaxAge != want->MaxAge)
		nq_diff_add(buf, size, "max_age");
	if (have->Replicas != want->Replicas)
		nq_diff_add(buf, size, "replicas");
	if (have->Duplicates != want->Duplicates)
		nq_diff_add(buf, size, "duplicate_window");
}

/* Create the stream if missing; reuse (never overwrite) one that exists. */
static int
nq_ensure_stream(struct nats_queue *nq, char *why, size_t size)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	const char *subjects[1];
	jsErrCode jerr = 0;
	natsStatus s;
	char diff[256];
	bool warn;
	int rc = 0;

	nq_stream_config(nq, &sc, subjects);
	s = js_GetStreamInfo(&si, nq->js, nq->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		s = js_AddStream(&si, nq->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			snprintf(why, size, "cannot create stream %s: %s (%d)",
			    nq->stream, natsStatus_GetText(s), (int)jerr);
			log_warn("nats: %s", why);
			rc = QUEUE_EUNAVAIL;
			goto out;
		}
		log_info("nats: stream %s created (subjects %s, max_msgs "
		    "%" PRId64 ", max_bytes %" PRId64 ", replicas %" PRId64
		    ")", nq->stream, nq->filter, nq->max_msgs, nq->max_bytes,
		    nq->replicas);
		goto out;
	}
	if (s != NATS_OK) {
		snprintf(why, size, "stream %s unavailable: %s",
		    nq->stream, natsStatus_GetText(s));
		rc = QUEUE_EUNAVAIL;
		goto out;
	}
	nq_stream_diff(&sc, si->Config, diff, sizeof(diff));
	pthread_mutex_lock(&nq->mu);
	warn = diff[0] != '\0' && !nq->warned_stream;
	if (warn)
		nq->warned_stream = true;
	pthread_mutex_unlock(&nq->mu);
	if (warn) {
		log_warn("nats: stream %s exists with a different %s; using "
		    "it as it is", nq->stream, diff);
	}
out:
	jsStreamInfo_Destroy(si);
	return rc;
}

/* The durable pull consumer every processor shares. */
static int
nq_ensure_consumer(struct nats_queue *nq, char *why, size_t size)
{
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	natsStatus s;
	char diff[256] = "";
	bool warn;
	int rc = 0;

	jsConsumerConfig_Init(&cc);
	cc.Durable = NQ_CONSUMER;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = nq->ack_wait_ms * NS_PER_MS;
	cc.MaxDeliver = nq->max_deliver;
	cc.FilterSubject = nq->subject;
	cc.MaxAckPending = NQ_MAX_ACK_PENDING;

	s = js_GetConsumerInfo(&ci, nq->js, nq->stream, NQ_CONSUMER, NULL,
	    &jerr);
	if (s == NATS_NOT_FOUND) {
		s = js_AddConsumer(&ci, nq->js, nq->stream, &cc, NULL, &jerr);
		if (s == NATS_OK) {
			log_info("nats: consumer %s created on stream %s",
			    NQ_CONSUMER, nq->stream);
			goto out;
		}
		/* Another processor may have won the race: look again. */
		s = js_GetConsumerInfo(&ci, nq->js, nq->stream, NQ_CONSUMER,
		    NULL, &jerr);
	}
	if (s != NATS_OK) {
		snprintf(why, size, "consumer %s unavailable: %s (%d)",
		    NQ_CONSUMER, natsStatus_GetText(s), (int)jerr);
		rc = QUEUE_EUNAVAIL;
		goto out;
	}
	if (ci->Config->AckWait != cc.AckWait)
		nq_diff_add(diff, sizeof(diff), "ack_wait");
	if (ci->Config->MaxDeliver != cc.MaxDeliver)
		nq_diff_add(diff, sizeof(diff), "max_deliver");
	if (ci->Config->AckPolicy != cc.AckPolicy)
		nq_diff_add(diff, sizeof(diff), "ack_policy");
	if (ci->Config->FilterSubject == NULL ||
	    strcmp(ci->Config->FilterSubject, cc.FilterSubject) != 0)
		nq_diff_add(diff, sizeof(diff), "filter_subject");
	pthread_mutex_lock(&nq->mu);
	warn = diff[0] != '\0' && !nq->warned_consumer;
	if (warn)
		nq->warned_consumer = true;
	pthread_mutex_unlock(&nq->mu);
	if (warn) {
		log_warn("nats: consumer %s exists with a different %s; using "
		    "it as it is", NQ_CONSUMER, diff);
	}
out:
	jsConsumerInfo_Destroy(ci);
	return rc;
}

/* Ensure stream (and consumer for a processor); record the outcome. */
static void
nq_ensure(struct nats_queue *nq)
{
	char why[160] = "";
	bool sok, cok = true, was;
	int rc;

	rc = nq_ensure_stream(nq, why, sizeof(why));
	sok = rc == 0;
	if (sok && nq->processor)
		cok = nq_ensure_consumer(nq, why, sizeof(why)) == 0;
	pthread_mutex_lock(&nq->mu);
	was = nq->stream_ok && (nq->consumer_ok || !nq->processor);
	nq->stream_ok = sok;
	nq->consumer_ok = cok;
	if (sok && cok) {
		nq->need_ensure = false;
	} else {
		nq->ensure_at_ms = clock_now_ms() + NQ_ENSURE_RETRY_MS;
	}
	nq->stats_wanted = true;
	nq_update_locked(nq);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_mutex_unlock(&nq->mu);
	if (!sok || !cok) {
		if (was)
			log_warn("nats: %s", why);
		else
			log_debug("nats: %s", why);
	}
}

/* Refresh the backlog figure: consumer pending + unacked, or stream size. */
static void
nq_refresh_stats(struct nats_queue *nq)
{
	jsConsumerInfo *ci = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int64_t size = -1;

	if (nq->processor) {
		s = js_GetConsumerInfo(&ci, nq->js, nq->stream, NQ_CONSUMER,
		    NULL, &jerr);
		if (s == NATS_OK)
			size = (int64_t)ci->NumPending + ci->NumAckPending;
	} else {
		s = js_GetStreamInfo(&si, nq->js, nq->stream, NULL, &jerr);
		if (s == NATS_OK)
			size = (int64_t)si->State.Msgs;
	}
	pthread_mutex_lock(&nq->mu);
	if (s == NATS_NOT_FOUND) {
		/* Deleted under us: unhealthy until ensure recreates it. */
		if (nq->processor && jerr != 10059) {
			nq->consumer_ok = false;
		} else {
			nq->stream_ok = false;
		}
		nq->need_ensure = true;
		nq_update_locked(nq);
	}
	if (size >= 0)
		nq->stats_size = size;
	nq->stats_at_ms = clock_now_ms();
	pthread_cond_broadcast(&nq->stats_cv);
	pthread_mutex_unlock(&nq->mu);
	jsConsumerInfo_Destroy(ci);
	jsStreamInfo_Destroy(si);
}

/*
 * Keep deliveries we hold from being redelivered elsewhere: anything held
 * for half the ack wait (in the FIFO or with a worker) gets +WPI, which
 * restarts the server's ack timer. Chosen over a long ack wait because a
 * crashed processor's messages should still come back after AckWait. mu
 * held; publishing under it keeps ack() from freeing a message we touch.
 * Returns when the next delivery becomes due, or 0 when none is held.
 */
static int64_t
nq_keepalive_locked(struct nats_queue *nq, int64_t now)
{
	int64_t half = nq->ack_wait_ms / 2, next = 0, due;
	struct nq_delivery *d;

	if (half < 50)
		half = 50;
	for (d = nq->inflight.next; d != &nq->inflight; d = d->next) {
		if (now - d->touched_ms >= half) {
			natsConnection_PublishString(nq->nc,
			    natsMsg_GetReply(d->m), "+WPI");
			d->touched_ms = now;
		}
		due = d->touched_ms + half;
		if (next == 0 || due < next)
			next = due;
	}
	return next;
}

/* Backend housekeeping: ensure stream/consumer, stats, +WPI. */
static void *
nq_maint_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t now, at;

	pthread_setname_np(pthread_self(), "nats-maint");
	pthread_mutex_lock(&nq->mu);
	while (!nq->stopping) {
		now = clock_now_ms();
		if (nq->connected && nq->need_ensure &&
		    now >= nq->ensure_at_ms) {
			pthread_mutex_unlock(&nq->mu);
			nq_ensure(nq);
			pthread_mutex_lock(&nq->mu);
			continue;
		}
		if (nq->connected && nq->stats_wanted) {
			nq->stats_wanted = false;
			pthread_mutex_unlock(&nq->mu);
			nq_refresh_stats(nq);
			pthread_mutex_lock(&nq->mu);
			continue;
		}
		at = 0;
		if (nq->connected && nq->need_ensure)
			at = nq->ensure_at_ms;
		if (at == 0)
			pthread_cond_wait(&nq->maint_cv, &nq->mu);
		else
			nq_wait_until(&nq->maint_cv, &nq->mu, at);
	}
	pthread_mutex_unlock(&nq->mu);
	return NULL;
}

/*
 * Work-in-progress acks on a thread of their own: the maintenance thread's
 * API requests can take seconds under load, and a keepalive that comes late
 * is a redelivery of a message still being worked on.
 */
static void *
nq_wpi_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t now, due;

	pthread_setname_np(pthread_self(), "nats-wpi");
	pthread_mutex_lock(&nq->mu);
	while (!nq->stopping) {
		now = clock_now_ms();
		due = nq_keepalive_locked(nq, now);
		/* nothing held: whatever arrives now is due no sooner */
		if (due == 0)
			due = now + (nq->ack_wait_ms / 2 > 50 ?
			    nq->ack_wait_ms / 2 : 50);
		nq_wait_until(&nq->wpi_cv, &nq->mu, due);
	}
	pthread_mutex_unlock(&nq->mu);
	return NULL;
}

/* ---- pulling ---- */

/* Send one pull request for up to n messages. */
static int
nq_pull_request(struct nats_queue *nq, int n)
{
	char body[96];

	snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%" PRId64 "}",
	    n, (int64_t)NQ_PULL_EXPIRES_MS * NS_PER_MS);
	if (natsConnection_PublishRequestString(nq->nc, nq->next_subj,
	    nq->inbox, body) != NATS_OK)
		return QUEUE_EUNAVAIL;
	return 0;
}

/*
 * A status message ends the pull request it answers (408 expired, 409
 * consumer deleted / leadership change, 404 no messages, 503 no consumer),
 * except the 100 idle heartbeat. Returns true when the request is over.
 */
static bool
nq_pull_status(struct nats_queue *nq, natsMsg *m, int code)
{
	const char *desc = NULL;

	if (code == 100)
		return false;
	if (code == 503 || code == 409) {
		if (natsMsgHeader_Get(m, NQ_DESC_HDR, &desc) != NATS_OK)
			desc = NULL;
		if (code == 503 || (desc != NULL &&
		    strstr(desc, "Deleted") != NULL)) {
			pthread_mutex_lock(&nq->mu);
			nq->consumer_ok = false;
			nq->need_ensure = true;
			nq->ensure_at_ms = 0;
			pthread_cond_broadcast(&nq->maint_cv);
			pthread_mutex_unlock(&nq->mu);
			log_debug("nats: pull answered %d %s", code,
			    desc != NULL ? desc : "");
		}
	}
	return true;
}

/* Wrap a delivered message and queue it for receive(). */
static void
nq_pull_deliver(struct nats_queue *nq, natsMsg *m)
{
	struct nq_delivery *d;
	jsMsgMetaData *meta = NULL;
	const char *id = NULL;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		/* Unsettled: the server redelivers it after AckWait. */
		natsMsg_Destroy(m);
		return;
	}
	d->m = m;
	d->d.msg = NULL;
	d->d.data = natsMsg_GetData(m);
	d->d.len = (size_t)natsMsg_GetDataLength(m);
	if (natsMsgHeader_Get(m, NQ_MSGID_HDR, &id) == NATS_OK &&
	    id != NULL && id[0] != '\0')
		d->d.id = id;
	d->d.num_delivered = 1;
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		d->d.num_delivered = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	if (d->d.num_delivered > 1)
		atomic_fetch_add(&nq->redelivered, 1);

	pthread_mutex_lock(&nq->mu);
	if (nq->shut) {
		pthread_mutex_unlock(&nq->mu);
		/* Too late to hand out; someone else gets it. */
		natsConnection_PublishString(nq->nc, natsMsg_GetReply(m),
		    NQ_GIVE_BACK);
		natsMsg_Destroy(m);
		free(d);
		return;
	}
	d->touched_ms = clock_now_ms();
	d->queued = true;
	d->next = &nq->inflight;
	d->prev = nq->inflight.prev;
	d->prev->next = d;
	nq->inflight.prev = d;
	if (nq->fifo_tail != NULL)
		nq->fifo_tail->qnext = d;
	else
		nq->fifo_head = d;
	nq->fifo_tail = d;
	nq->buffered++;
	pthread_cond_signal(&nq->recv_cv);
	pthread_mutex_unlock(&nq->mu);
}

/*
 * The pull loop: one outstanding pull request at a time on our own inbox
 * (not natsSubscription_Fetch, whose batch > 1 overflows in nats.c < 3.8.3).
 * Requested-but-unreceived plus ready-in-FIFO never exceeds cap, so memory
 * stays bounded whatever the backlog.
 */
static void *
nq_pull_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t left = 0, deadline = 0, now;
	const char *st;
	natsMsg *m;
	natsStatus s;
	int want;

	pthread_setname_np(pthread_self(), "nats-pull");
	for (;;) {
		now = clock_now_ms();
		pthread_mutex_lock(&nq->mu);
		if (nq->stopping || nq->shut) {
			while (!nq->stopping)
				pthread_cond_wait(&nq->space_cv, &nq->mu);
			pthread_mutex_unlock(&nq->mu);
			break;
		}
		if (nq->pull_reset) {
			/* Reconnected: the server forgot our request. */
			nq->pull_reset = false;
			left = 0;
		}
		if (left > 0 && now >= deadline) {
			log_debug("nats: pull request lost, sending another");
			left = 0;
		}
		want = 0;
		if (left == 0) {
			if (nq->connected && nq->consumer_ok &&
			    nq->cap - nq->buffered >= nq->cap / 4)
				want = nq->cap - nq->buffered;
			else
				nq_wait_until(&nq->space_cv, &nq->mu,
				    now + 1000);
		}
		pthread_mutex_unlock(&nq->mu);
		if (want > 0) {
			if (nq_pull_request(nq, want) != 0) {
				/* Disconnected before the callback said so. */
				pthread_mutex_lock(&nq->mu);
				nq_wait_until(&nq->space_cv, &nq->mu,
				    clock_now_ms() + 200);
				pthread_mutex_unlock(&nq->mu);
				continue;
			}
			left = want;
			deadline = now + NQ_PULL_EXPIRES_MS +
			    NQ_PULL_GRACE_MS;
		}
		if (left == 0)
			continue;

		m = NULL;
		s = natsSubscription_NextMsg(&m, nq->sub, 1000);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			/* Closed under us: shutdown or close is coming. */
			pthread_mutex_lock(&nq->mu);
			if (!nq->stopping && !nq->shut)
				nq_wait_until(&nq->space_cv, &nq->mu,
				    clock_now_ms() + 200);
			pthread_mutex_unlock(&nq->mu);
			continue;
		}
		if (natsMsg_GetDataLength(m) == 0 &&
		    natsMsgHeader_Get(m, NQ_STATUS_HDR, &st) == NATS_OK &&
		    st != NULL) {
			if (nq_pull_status(nq, m, atoi(st)))
				left = 0;
			natsMsg_Destroy(m);
			continue;
		}
		if (natsMsg_GetReply(m) == NULL || strncmp(natsMsg_GetReply(m),
		    NQ_ACK_PREFIX, strlen(NQ_ACK_PREFIX)) != 0) {
			natsMsg_Destroy(m);
			continue;
		}
		if (left > 0)
			left--;
		nq_pull_deliver(nq, m);
	}
	return NULL;
}

/* Hand out up to min(max, batch) ready deliveries. */
static int
nq_receive(struct queue *q, struct delivery **out, int max, int timeout_ms)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_delivery *d;
	int64_t until = clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int n = 0;

	if (!nq->processor)
		return QUEUE_EINVAL;
	if (max > nq->batch)
		max = nq->batch;
	pthread_mutex_lock(&nq->mu);
	while (nq->fifo_head == NULL && !nq->shut) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&nq->recv_cv, &nq->mu);
		} else if (!nq_wait_until(&nq->recv_cv, &nq->mu, until) &&
		    clock_now_ms() >= until) {
			break;
		}
	}
	if (nq->shut) {
		n = QUEUE_ECLOSED;
		goto out;
	}
	while (n < max && (d = nq->fifo_head) != NULL) {
		nq->fifo_head = d->qnext;
		if (nq->fifo_head == NULL)
			nq->fifo_tail = NULL;
		d->qnext = NULL;
		d->queued = false;
		out[n++] = &d->d;
	}
	nq->buffered -= n;
	if (n > 0) {
		atomic_fetch_add(&nq->dequeued, (uint64_t)n);
		if (nq->fifo_head != NULL)
			pthread_cond_signal(&nq->recv_cv);
		pthread_cond_signal(&nq->space_cv);
	}
out:
	pthread_mutex_unlock(&nq->mu);
	return n;
}

/* Settle a delivery with an ack body (+ACK, -NAK, +TERM) and free it. */
static int
nq_settle(struct nats_queue *nq, struct delivery *dd, const char *how)
{
	struct nq_delivery *d = (struct nq_delivery *)dd;
	natsStatus s;

	if (d == NULL)
		return QUEUE_EINVAL;
	pthread_mutex_lock(&nq->mu);
	d->prev->next = d->next;
	d->next->prev = d->prev;
	pthread_mutex_unlock(&nq->mu);
	/*
	 * Plain publish to the reply subject, as natsMsg_Ack would do: the
	 * latter needs a JetStream subscription (sub->jsi) and crashes on
	 * our core inbox. Fire-and-forget: a lost ack is one redelivery,
	 * which the idempotent result store absorbs.
	 */
	s = natsConnection_PublishString(nq->nc, natsMsg_GetReply(d->m), how);
	natsMsg_Destroy(d->m);
	free(d);
	return s == NATS_OK ? 0 : QUEUE_EUNAVAIL;
}

static int
nq_ack(struct queue *q, struct delivery *d)
{
	return nq_settle((struct nats_queue *)q, d, "+ACK");
}

static int
nq_reject(struct queue *q, struct delivery *d, enum reject_how how)
{
	return nq_settle((struct nats_queue *)q, d,
	    how == REJECT_TERM ? "+TERM" : "-NAK");
}

/* Health and counters; the backlog comes from a cache refreshed aside. */
static void
nq_stats(struct queue *q, struct queue_stats *st)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	int64_t now = clock_now_ms(), until;

	memset(st, 0, sizeof(*st));
	st->enqueued = atomic_load(&nq->enqueued);
	st->dequeued = atomic_load(&nq->dequeued);
	st->redelivered = atomic_load(&nq->redelivered);

	pthread_mutex_lock(&nq->mu);
	if (nq->connected && now - nq->stats_at_ms >= NQ_STATS_FRESH_MS) {
		if (!nq->stats_wanted) {
			nq->stats_wanted = true;
			pthread_cond_broadcast(&nq->maint_cv);
		}
		/* Never a stale figure that is long out of date. */
		if (now - nq->stats_at_ms >= NQ_STATS_STALE_MS) {
			until = now + NQ_STATS_WAIT_MS;
			while (nq->stats_wanted && nq->connected &&
			    clock_now_ms() < until)
				nq_wait_until(&nq->stats_cv, &nq->mu, until);
		}
	}
	st->current_size = nq->stats_size;
	if (!nq->connected) {
		snprintf(st->reason, sizeof(st->reason),
		    "not connected to NATS at %s", nq->url);
	} else if (!nq->stream_ok) {
		snprintf(st->reason, sizeof(st->reason),
		    "JetStream stream %s not available", nq->stream);
	} else if (nq->processor && !nq->consumer_ok) {
		snprintf(st->reason, sizeof(st->reason),
		    "JetStream consumer %s not available", NQ_CONSUMER);
	} else {
		st->healthy = true;
	}
	pthread_mutex_unlock(&nq->mu);
}

/*
 * Stop pulling: unsubscribe the inbox so the server stops delivering to
 * us, and give back what is ready but not handed out (-NAK, so another
 * processor takes it at once). Handed-out deliveries may still be settled.
 */
static void
nq_shutdown(struct queue *q)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_delivery *d, *list;

	pthread_mutex_lock(&nq->mu);
	if (nq->shut) {
		pthread_mutex_unlock(&nq->mu);
		return;
	}
	nq->shut = true;
	list = nq->fifo_head;
	nq->fifo_head = nq->fifo_tail = NULL;
	nq->buffered = 0;
	pthread_cond_broadcast(&nq->recv_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_mutex_unlock(&nq->mu);

	if (nq->sub != NULL)
		natsSubscription_Unsubscribe(nq->sub);
	while ((d = list) != NULL) {
		list = d->qnext;
		nq_settle(nq, &d->d, NQ_GIVE_BACK);
	}
}

/* Free everything; outstanding publishes are finished or failed first. */
static void
nq_close(struct queue *q)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_delivery *d;
	struct nq_pub *p;
	jsPubOptions po;
	int64_t until;

	if (nq == NULL)
		return;
	if (nq->nc != NULL)
		nq_shutdown(q);
	pthread_mutex_lock(&nq->mu);
	nq->stopping = true;
	pthread_cond_broadcast(&nq->maint_cv);
	pthread_cond_broadcast(&nq->wpi_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_cond_broadcast(&nq->recv_cv);
	pthread_mutex_unlock(&nq->mu);
	if (nq->pull_started)
		pthread_join(nq->pull_thr, NULL);
	if (nq->wpi_started)
		pthread_join(nq->wpi_thr, NULL);
	if (nq->maint_started)
		pthread_join(nq->maint_thr, NULL);

	if (nq->js != NULL) {
		/* Every publish ends within MaxWait; let them report. */
		jsPubOptions_Init(&po);
		po.MaxWait = NQ_PUB_WAIT_MS * 2;
		js_PublishAsyncComplete(nq->js, &po);
		jsCtx_Destroy(nq->js);
	}
	for (size_t i = 0; i < NQ_PUB_BUCKETS; i++) {
		while ((p = nq->pubs[i]) != NULL) {
			nq->pubs[i] = p->next;
			p->cb(p->arg, QUEUE_EUNAVAIL, "queue closed");
			free(p);
		}
	}
	natsSubscription_Destroy(nq->sub);
	if (nq->nc != NULL) {
		/*
		 * Close drops what is still buffered: the last acks would be
		 * lost and those messages delivered again after a restart.
		 */
		if (natsConnection_Status(nq->nc) == NATS_CONN_STATUS_CONNECTED)
			natsConnection_FlushTimeout(nq->nc, 2000);
		natsConnection_Close(nq->nc);
		/* The closed callback still uses nq: wait for it. */
		until = clock_now_ms() + 3000;
		pthread_mutex_lock(&nq->mu);
		while (!nq->closed_cb_done && clock_now_ms() < until)
			nq_wait_until(&nq->closed_cv, &nq->mu, until);
		pthread_mutex_unlock(&nq->mu);
		natsConnection_Destroy(nq->nc);
	}
	natsOptions_Destroy(nq->opts);

	while ((d = nq->inflight.next) != &nq->inflight) {
		nq->inflight.next = d->next;
		natsMsg_Destroy(d->m);
		free(d);
	}
	pthread_mutex_destroy(&nq->mu);
	pthread_mutex_destroy(&nq->plock);
	pthread_cond_destroy(&nq->maint_cv);
	pthread_cond_destroy(&nq->wpi_cv);
	pthread_cond_destroy(&nq->recv_cv);
	pthread_cond_destroy(&nq->space_cv);
	pthread_cond_destroy(&nq->stats_cv);
	pthread_cond_destroy(&nq->closed_cv);
	free(nq->stream);
	free(nq->subject);
	free(nq->filter);
	free(nq->next_subj);
	free(nq->url);
	free(nq->inbox);
	free(nq);
}

/* Set the server list from a comma-separated NATS_URL. */
static natsStatus
nq_set_servers(natsOptions *opts, const char *urls)
{
	const char *list[32];
	char *copy, *tok, *save = NULL;
	natsStatus s;
	int n = 0;

	if ((copy = strdup(urls)) == NULL)
		return NATS_NO_MEMORY;
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL && n < 32;
	    tok = strtok_r(NULL, ", \t", &save))
		list[n++] = tok;
	s = n > 0 ? natsOptions_SetServers(opts, list, n) : NATS_INVALID_ARG;
	free(copy);
	return s;
}

/* Connection options: retry forever, in the background, fast. */
static natsStatus
nq_options(struct nats_queue *nq, const struct config *cfg)
{
	natsStatus s;
	char name[64];

	snprintf(name, sizeof(name), "diplom-%s", config_role_name(cfg->role));
	s = natsOptions_Create(&nq->opts);
	if (s == NATS_OK)
		s = nq_set_servers(nq->opts, cfg->nats_url);
	if (s == NATS_OK)
		s = natsOptions_SetName(nq->opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(nq->opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(nq->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(nq->opts, 250);
	/*
	 * No reconnect buffer to speak of (0 would mean 8 MB): a publish made
	 * while reconnecting fails at once instead of being told 503 after
	 * MaxWait and then stored anyway when the buffer is flushed.
	 */
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(nq->opts, 1);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(nq->opts, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(nq->opts, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(nq->opts, 2);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(nq->opts, true,
		    nq_on_connected, nq);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(nq->opts,
		    nq_on_disconnected, nq);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(nq->opts,
		    nq_on_reconnected, nq);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(nq->opts, nq_on_closed, nq);
	return s;
}

/* Copy the settings we keep; cfg need not outlive the queue. */
static int
nq_init(struct nats_queue *nq, const struct config *cfg)
{
	int64_t cap;

	nq->q.ops = &queue_nats_ops;
	nq->processor = cfg->role == ROLE_PROCESSOR;
	nq->batch = cfg->nats_fetch_batch > 0 ?
	    (int)(cfg->nats_fetch_batch > 4096 ? 4096 :
	    cfg->nats_fetch_batch) : 1;
	cap = cfg->workers * nq->batch * 8;
	nq->cap = (int)(cap < 64 ? 64 : cap > 1024 ? 1024 : cap);
	if (nq->cap < nq->batch)
		nq->cap = nq->batch;
	nq->max_msgs = cfg->nats_max_msgs;
	nq->max_bytes = cfg->nats_max_bytes;
	nq->max_age_ms = cfg->nats_max_age_ms;
	nq->replicas = cfg->nats_replicas;
	nq->ack_wait_ms = cfg->nats_ack_wait_ms;
	nq->max_deliver = cfg->nats_max_deliver;
	nq->inflight.next = nq->inflight.prev = &nq->inflight;
	if (asprintf(&nq->subject, "%s.messages",
	    cfg->nats_subject_prefix) < 0 ||
	    asprintf(&nq->filter, "%s.>", cfg->nats_subject_prefix) < 0 ||
	    asprintf(&nq->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
	    cfg->nats_stream, NQ_CONSUMER) < 0) {
		nq->subject = nq->filter = nq->next_subj = NULL;
		return -ENOMEM;
	}
	if ((nq->stream = strdup(cfg->nats_stream)) == NULL ||
	    (nq->url = strdup(cfg->nats_url)) == NULL)
		return -ENOMEM;
	if (pthread_mutex_init(&nq->mu, NULL) != 0 ||
	    pthread_mutex_init(&nq->plock, NULL) != 0 ||
	    clock_cond_init(&nq->maint_cv) != 0 ||
	    clock_cond_init(&nq->wpi_cv) != 0 ||
	    clock_cond_init(&nq->recv_cv) != 0 ||
	    clock_cond_init(&nq->space_cv) != 0 ||
	    clock_cond_init(&nq->stats_cv) != 0 ||
	    clock_cond_init(&nq->closed_cv) != 0)
		return -ENOMEM;
	return 0;
}

/*
 * Open: connect in the background if the broker is not there yet; the
 * stream (and, for a processor, the consumer) is ensured once connected.
 */
static int
nq_open(struct queue **qp, const struct config *cfg, char **cause)
{
	struct nats_queue *nq;
	jsOptions jo;
	natsStatus s;
	int rc = QUEUE_EINVAL;

	*qp = NULL;
	if ((nq = calloc(1, sizeof(*nq))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = nq_init(nq, cfg)) != 0) {
		if (asprintf(cause, "nats: out of memory") < 0)
			*cause = NULL;
		free(nq->stream);
		free(nq->subject);
		free(nq->filter);
		free(nq->next_subj);
		free(nq->url);
		free(nq);
		nq = NULL;
		goto fail;
	}
	if ((s = nq_options(nq, cfg)) != NATS_OK) {
		if (asprintf(cause, "NATS_URL %s: %s", cfg->nats_url,
		    natsStatus_GetText(s)) < 0)
			*cause = NULL;
		rc = QUEUE_EINVAL;
		goto fail;
	}
	if (nq->max_age_ms > 0) {
		log_warn("nats: NATS_MAX_AGE is %" PRId64 " ms: messages older "
		    "than that are deleted from the stream, processed or not",
		    nq->max_age_ms);
	}

	s = natsConnection_Connect(&nq->nc, nq->opts);
	if (s == NATS_OK) {
		pthread_mutex_lock(&nq->mu);
		nq->connected = true;
		nq->need_ensure = true;
		pthread_mutex_unlock(&nq->mu);
		log_info("nats: connected to %s", cfg->nats_url);
	} else if (s == NATS_NOT_YET_CONNECTED) {
		log_warn("nats: %s not reachable yet, retrying in the "
		    "background", cfg->nats_url);
		pthread_mutex_lock(&nq->mu);
		nq->need_ensure = true;
		pthread_mutex_unlock(&nq->mu);
	} else {
		if (asprintf(cause, "nats: cannot connect to %s: %s",
		    cfg->nats_url, natsStatus_GetText(s)) < 0)
			*cause = NULL;
		nq->nc = NULL;
		rc = QUEUE_EUNAVAIL;
		goto fail;
	}

	jsOptions_Init(&jo);
	jo.Wait = NQ_API_WAIT_MS;
	jo.PublishAsync.MaxPending = NQ_MAX_PENDING;
	jo.PublishAsync.AckHandler = nq_on_puback;
	jo.PublishAsync.AckHandlerClosure = nq;
	s = natsConnection_JetStream(&nq->js, nq->nc, &jo);
	if (s == NATS_OK && nq->processor) {
		natsInbox *inbox = NULL;

		s = natsInbox_Create(&inbox);
		if (s == NATS_OK) {
			nq->inbox = strdup(inbox);
			natsInbox_Destroy(inbox);
			if (nq->inbox == NULL)
				s = NATS_NO_MEMORY;
		}
		if (s == NATS_OK)
			s = natsConnection_SubscribeSync(&nq->sub, nq->nc,
			    nq->inbox);
	}
	if (s != NATS_OK) {
		if (asprintf(cause, "nats: %s", natsStatus_GetText(s)) < 0)
			*cause = NULL;
		rc = QUEUE_EUNAVAIL;
		goto fail;
	}
	/* Healthy at once when the broker is there: ensure right now. */
	if (nq->connected)
		nq_ensure(nq);

	if (pthread_create(&nq->maint_thr, NULL, nq_maint_main, nq) != 0)
		goto thread_fail;
	nq->maint_started = true;
	if (nq->processor) {
		if (pthread_create(&nq->pull_thr, NULL, nq_pull_main,
		    nq) != 0)
			goto thread_fail;
		nq->pull_started = true;
		if (pthread_create(&nq->wpi_thr, NULL, nq_wpi_main,
		    nq) != 0)
			goto thread_fail;
		nq->wpi_started = true;
	}
	*qp = &nq->q;
	return 0;

thread_fail:
	if (asprintf(cause, "nats: cannot start a thread") < 0)
		*cause = NULL;
	rc = -ENOMEM;
fail:
	if (nq != NULL)
		nq_close(&nq->q);
	return rc;
}

const struct queue_ops queue_nats_ops = {
	.name = "nats",
	.open = nq_open,
	.publish = nq_publish,
	.receive = nq_receive,
	.ack = nq_ack,
	.reject = nq_reject,
	.stats = nq_stats,
	.shutdown = nq_shutdown,
	.close = nq_close,
};

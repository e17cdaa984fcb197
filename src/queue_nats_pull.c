/* queue_nats_pull.c - a processor's data path: pull, receive, settle, +WPI */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "clock.h"
#include "log.h"
#include "queue_nats_int.h"

/* How one message off our inbox counts against the pull request. */
enum nq_took {
	NQ_TOOK_NOTHING,	/* heartbeat or stray: the request goes on */
	NQ_TOOK_ONE,		/* a delivery, now in the FIFO */
	NQ_TOOK_END,		/* a status that ends the request */
};

/*
 * Send one pull request for up to n messages and about bytes in all. The
 * server ends it with a 409 when the next message would not fit.
 */
static int
nq_pull_request(struct nats_queue *nq, int n, int64_t bytes)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"batch\":%d,\"max_bytes\":%" PRId64
	    ",\"expires\":%" PRId64 "}", n, bytes,
	    (int64_t)NQ_PULL_EXPIRES_MS * NS_PER_MS);
	if (natsConnection_PublishRequestString(nq->nc, nq->next_subj,
	    nq->inbox, body) != NATS_OK)
		return QUEUE_EUNAVAIL;
	return 0;
}

/*
 * A status message ends the pull request it answers (408 expired, 409
 * consumer deleted / leadership change or the next message over max_bytes,
 * 404 no messages, 503 no consumer),
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

void
nq_delivery_wrap(struct nq_delivery *d, natsMsg *m)
{
	jsMsgMetaData *meta = NULL;
	const char *id = NULL;

	d->m = m;
	d->d.msg = NULL;
	d->d.data = natsMsg_GetData(m);
	d->d.len = (size_t)natsMsg_GetDataLength(m);
	if (d->d.data == NULL)
		d->d.data = "";
	if (natsMsgHeader_Get(m, NQ_MSGID_HDR, &id) == NATS_OK &&
	    id != NULL && id[0] != '\0')
		d->d.id = id;
	d->d.num_delivered = 1;
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		d->d.num_delivered = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
}

/* Wrap a delivered message and queue it for receive(). */
static void
nq_pull_deliver(struct nats_queue *nq, natsMsg *m)
{
	struct nq_delivery *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		/* Unsettled: the server redelivers it after AckWait. */
		natsMsg_Destroy(m);
		return;
	}
	nq_delivery_wrap(d, m);
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
	nq->buffered_bytes += (int64_t)d->d.len + NQ_MSG_OVERHEAD;
	pthread_cond_signal(&nq->recv_cv);
	pthread_mutex_unlock(&nq->mu);
}

/* Sort one message that arrived on our inbox. */
static enum nq_took
nq_pull_take(struct nats_queue *nq, natsMsg *m)
{
	const char *st = NULL, *reply;
	enum nq_took took = NQ_TOOK_NOTHING;

	if (natsMsg_GetDataLength(m) == 0 &&
	    natsMsgHeader_Get(m, NQ_STATUS_HDR, &st) == NATS_OK &&
	    st != NULL) {
		if (nq_pull_status(nq, m, atoi(st)))
			took = NQ_TOOK_END;
		natsMsg_Destroy(m);
		return took;
	}
	reply = natsMsg_GetReply(m);
	if (reply == NULL ||
	    strncmp(reply, NQ_ACK_PREFIX, strlen(NQ_ACK_PREFIX)) != 0) {
		natsMsg_Destroy(m);
		return took;
	}
	nq_pull_deliver(nq, m);
	return NQ_TOOK_ONE;
}

/* Wait up to ms on space_cv unless the queue is ending. */
static void
nq_pull_pause(struct nats_queue *nq, int64_t ms)
{
	pthread_mutex_lock(&nq->mu);
	if (!nq->stopping && !nq->shut)
		nq_wait_until(&nq->space_cv, &nq->mu, clock_now_ms() + ms);
	pthread_mutex_unlock(&nq->mu);
}

/*
 * Room for a pull request, under mu: a quarter of the window at least, and
 * bytes for the largest message there can be, so that every request can
 * bring one.
 */
static bool
nq_pull_room(const struct nats_queue *nq)
{
	int64_t room = nq->cap_bytes - nq->buffered_bytes;

	return nq->cap - nq->buffered >= nq->cap / 4 &&
	    room >= nq->cap_bytes / 4 &&
	    room >= nq->largest_msg + NQ_MSG_OVERHEAD;
}

/*
 * Decide the next pull request: *want is how many to ask for (0: none
 * now) and *bytes their size at most, *left what the outstanding request
 * may still bring. False once the queue is shut, after close() has said so.
 */
static bool
nq_pull_plan(struct nats_queue *nq, int64_t now, int64_t deadline,
    int64_t *left, int *want, int64_t *bytes)
{
	bool run = true;

	*want = 0;
	*bytes = 0;
	pthread_mutex_lock(&nq->mu);
	if (nq->stopping || nq->shut) {
		while (!nq->stopping)
			pthread_cond_wait(&nq->space_cv, &nq->mu);
		run = false;
		goto out;
	}
	if (nq->pull_reset) {
		/* Reconnected: the server forgot our request. */
		nq->pull_reset = false;
		*left = 0;
	}
	if (*left > 0 && now >= deadline) {
		log_debug("nats: pull request lost, sending another");
		*left = 0;
	}
	if (*left == 0) {
		if (nq->connected && nq->consumer_ok && nq_pull_room(nq)) {
			*want = nq->cap - nq->buffered;
			*bytes = nq->cap_bytes - nq->buffered_bytes;
		} else
			nq_wait_until(&nq->space_cv, &nq->mu, now + 1000);
	}
out:
	pthread_mutex_unlock(&nq->mu);
	return run;
}

/*
 * Pull requests that may end empty in a row before the consumer is looked
 * at: about NQ_STALL_ROUNDS pull lifetimes without one message.
 */
#define NQ_STALL_ROUNDS		3
#define NQ_STEPDOWN_EVERY_MS	60000

/*
 * A clustered consumer can stop delivering after its leader changed:
 * messages pending, none in flight, and our pull requests answered with
 * nothing (nats-server before 2.10.25 kept the old leader's ack count in
 * a stepped-down consumer, and others of its kind). A new leader starts
 * from the consumer's replicated state, so ask the leader to step down.
 * Nothing pending, messages in flight, or a figure too old to tell, is
 * no stall (false); the figure is then asked for anew.
 */
static bool
nq_pull_unstick(struct nats_queue *nq, int64_t now, int64_t *last_ms)
{
	natsMsg *reply = NULL;
	int64_t pending;
	char subj[512];

	pthread_mutex_lock(&nq->mu);
	pending = nq->stats_size - nq->stats_ack_pending;
	if (now - nq->stats_at_ms > NQ_PULL_EXPIRES_MS ||
	    nq->stats_ack_pending > 0 || pending <= 0 || nq->buffered > 0) {
		/* ask for a fresh look for the next time */
		nq->stats_wanted = true;
		pthread_cond_broadcast(&nq->maint_cv);
		pthread_mutex_unlock(&nq->mu);
		return false;
	}
	pthread_mutex_unlock(&nq->mu);
	if (*last_ms != 0 && now - *last_ms < NQ_STEPDOWN_EVERY_MS)
		return true;
	*last_ms = now;
	log_warn("nats: consumer %s has %jd messages pending and none in "
	    "flight, but delivered none to %d pull requests; asking its "
	    "leader to step down", NQ_CONSUMER, (intmax_t)pending,
	    NQ_STALL_ROUNDS);
	snprintf(subj, sizeof(subj), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s",
	    nq->stream, NQ_CONSUMER);
	(void)natsConnection_RequestString(&reply, nq->nc, subj, "",
	    NQ_API_WAIT_MS);
	natsMsg_Destroy(reply);
	return true;
}

/*
 * The pull loop: one outstanding pull request at a time on our own inbox
 * (not natsSubscription_Fetch, whose batch > 1 overflows in nats.c < 3.8.3).
 * Requested-but-unreceived plus ready-in-FIFO never exceeds cap, so memory
 * stays bounded whatever the backlog.
 */
void *
nq_pull_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t left = 0, deadline = 0, now, stepdown_ms = 0, bytes;
	natsMsg *m;
	natsStatus s;
	int want, empty = 0;
	bool got = false;

	pthread_setname_np(pthread_self(), "nats-pull");
	for (;;) {
		now = clock_now_ms();
		if (!nq_pull_plan(nq, now, deadline, &left, &want, &bytes))
			break;
		if (want > 0) {
			/* the last request ended: did it bring anything? */
			empty = got ? 0 : empty + 1;
			got = false;
			if (empty >= NQ_STALL_ROUNDS) {
				(void)nq_pull_unstick(nq, now, &stepdown_ms);
				empty = 0;
			}
			if (nq_pull_request(nq, want, bytes) != 0) {
				/* Disconnected before the callback said so. */
				nq_pull_pause(nq, 200);
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
			nq_pull_pause(nq, 200);
			continue;
		}
		switch (nq_pull_take(nq, m)) {
		case NQ_TOOK_END:
			left = 0;
			break;
		case NQ_TOOK_ONE:
			got = true;
			if (left > 0)
				left--;
			break;
		case NQ_TOOK_NOTHING:
			break;
		}
	}
	return NULL;
}

/* Hand out up to min(max, batch) ready deliveries. */
int
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
		nq->buffered_bytes -= (int64_t)d->d.len + NQ_MSG_OVERHEAD;
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
	/*
	 * The keepalive may be sending +WPI for it right now: d must outlive
	 * that, and our verdict must reach the server after it, or a late
	 * +WPI would restart the timer of a delayed -NAK.
	 */
	while (d->sending)
		pthread_cond_wait(&nq->settle_cv, &nq->mu);
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

/* Done with a delivery: the server forgets the message. */
int
nq_ack(struct queue *q, struct delivery *d)
{
	return nq_settle((struct nats_queue *)q, d, "+ACK");
}

/* Not done: deliver it again (-NAK) or never (+TERM). */
int
nq_reject(struct queue *q, struct delivery *d, enum reject_how how)
{
	return nq_settle((struct nats_queue *)q, d,
	    how == REJECT_TERM ? "+TERM" : "-NAK");
}

/*
 * Stop pulling: unsubscribe the inbox so the server stops delivering to
 * us, and give back what is ready but not handed out (NQ_GIVE_BACK: a
 * -NAK that another processor gets once our last pull request has
 * expired, not its ack wait later). Handed-out deliveries may still be
 * settled.
 */
void
nq_shutdown(struct queue *q)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_delivery *d, *list;
	natsSubscription *sub;

	pthread_mutex_lock(&nq->mu);
	/* the maintenance thread sets it on the first connect */
	sub = nq->sub;
	if (nq->shut) {
		pthread_mutex_unlock(&nq->mu);
		return;
	}
	nq->shut = true;
	list = nq->fifo_head;
	nq->fifo_head = nq->fifo_tail = NULL;
	nq->buffered = 0;
	nq->buffered_bytes = 0;
	pthread_cond_broadcast(&nq->recv_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_mutex_unlock(&nq->mu);

	if (sub != NULL)
		natsSubscription_Unsubscribe(sub);
	while ((d = list) != NULL) {
		list = d->qnext;
		nq_settle(nq, &d->d, NQ_GIVE_BACK);
	}
}

/* Free what was delivered and never settled; every thread has ended. */
void
nq_pull_free(struct nats_queue *nq)
{
	struct nq_delivery *d;

	while ((d = nq->inflight.next) != &nq->inflight) {
		nq->inflight.next = d->next;
		natsMsg_Destroy(d->m);
		free(d);
	}
}

/* ---- work in progress ---- */

/* Half the ack wait, at least 50 ms: how often a held delivery gets +WPI. */
static int64_t
nq_keepalive_ms(const struct nats_queue *nq)
{
	return nq->ack_wait_ms / 2 > 50 ? nq->ack_wait_ms / 2 : 50;
}

/*
 * Mark up to NQ_WPI_BATCH deliveries that are due a +WPI and list them in
 * out; *next is when the earliest delivery held becomes due (0: none
 * held). mu held. Returns how many were marked.
 */
static int
nq_wpi_collect(struct nats_queue *nq, int64_t now,
    struct nq_delivery **out, int64_t *next)
{
	int64_t every = nq_keepalive_ms(nq), due;
	struct nq_delivery *d;
	int n = 0;

	*next = 0;
	for (d = nq->inflight.next; d != &nq->inflight; d = d->next) {
		if (now - d->touched_ms >= every) {
			/* The caller comes back for the rest. */
			if (n == NQ_WPI_BATCH)
				break;
			d->touched_ms = now;
			d->sending = true;
			out[n++] = d;
		}
		due = d->touched_ms + every;
		if (*next == 0 || due < *next)
			*next = due;
	}
	return n;
}

/*
 * Send +WPI for the marked deliveries with mu released, so that receive()
 * and the settling workers are not held up by our writes; then unmark them.
 * Marked deliveries are not freed meanwhile: settling waits on the mark.
 */
static void
nq_wpi_send(struct nats_queue *nq, struct nq_delivery **ds, int n)
{
	pthread_mutex_unlock(&nq->mu);
	for (int i = 0; i < n; i++) {
		natsConnection_PublishString(nq->nc,
		    natsMsg_GetReply(ds[i]->m), "+WPI");
	}
	pthread_mutex_lock(&nq->mu);
	for (int i = 0; i < n; i++)
		ds[i]->sending = false;
	pthread_cond_broadcast(&nq->settle_cv);
}

/*
 * Keep deliveries we hold from being redelivered elsewhere: anything held
 * for half the ack wait (in the FIFO or with a worker) gets +WPI, which
 * restarts the server's ack timer. Chosen over a long ack wait because a
 * crashed processor's messages should still come back after AckWait. mu
 * held, released while sending. Returns when the next delivery becomes
 * due, or 0 when none is held.
 */
static int64_t
nq_keepalive(struct nats_queue *nq)
{
	struct nq_delivery *batch[NQ_WPI_BATCH];
	int64_t next;
	int n;

	do {
		n = nq_wpi_collect(nq, clock_now_ms(), batch, &next);
		if (n > 0)
			nq_wpi_send(nq, batch, n);
	} while (n == NQ_WPI_BATCH && !nq->stopping);
	return next;
}

/*
 * Work-in-progress acks on a thread of their own: the maintenance thread's
 * API requests can take seconds under load, and a keepalive that comes late
 * is a redelivery of a message still being worked on.
 */
void *
nq_wpi_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t due;

	pthread_setname_np(pthread_self(), "nats-wpi");
	pthread_mutex_lock(&nq->mu);
	while (!nq->stopping) {
		due = nq_keepalive(nq);
		/* nothing held: whatever arrives now is due no sooner */
		if (due == 0)
			due = clock_now_ms() + nq_keepalive_ms(nq);
		/* mu was released while sending: close() may have spoken */
		if (!nq->stopping)
			nq_wait_until(&nq->wpi_cv, &nq->mu, due);
	}
	pthread_mutex_unlock(&nq->mu);
	return NULL;
}

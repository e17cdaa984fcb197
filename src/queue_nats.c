/* queue_nats.c - the NATS JetStream backend (nats.c 3.4): life and publish */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "clock.h"
#include "log.h"
#include "queue_nats_int.h"

/* Wait on cv until the monotonic time at_ms; false on timeout. */
bool
nq_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t at_ms)
{
	return clock_cond_wait_until(cv, mu, at_ms * 1000000) == 0;
}

/* Recompute the publish fast-path flag; mu held. */
void
nq_update_locked(struct nats_queue *nq)
{
	atomic_store(&nq->pub_ok, nq->connected && nq->stream_ok);
}

/* Set *cause from ap; "out of memory" when the reason cannot be made. */
static void
nq_vcause(char **cause, const char *fmt, va_list ap)
{
	if (vasprintf(cause, fmt, ap) < 0)
		*cause = strdup("out of memory");
}

/* Hand back a reason for a person through *cause. */
void
nq_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nq_vcause(cause, fmt, ap);
	va_end(ap);
}

/*
 * A nats.c call failed with s: set *cause from fmt and return rc, except
 * that running out of memory is always -ENOMEM, "out of memory".
 */
int
nq_fail(char **cause, int rc, natsStatus s, const char *fmt, ...)
{
	va_list ap;

	if (s == NATS_NO_MEMORY) {
		nq_cause(cause, "out of memory");
		return -ENOMEM;
	}
	va_start(ap, fmt);
	nq_vcause(cause, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- pending publishes ---- */

/* The bucket of a publish: natsMsg pointers hashed. */
static size_t
nq_pub_slot(const natsMsg *m)
{
	uint64_t v = (uint64_t)(uintptr_t)m;

	v ^= v >> 17;
	v *= UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(v >> 40) & (NQ_PUB_BUCKETS - 1);
}

/* Remember a publish until its PubAck comes. */
static void
nq_pub_put(struct nats_queue *nq, struct nq_pub *p)
{
	size_t i = nq_pub_slot(p->m);

	pthread_mutex_lock(&nq->plock);
	p->next = nq->pubs[i];
	nq->pubs[i] = p;
	pthread_mutex_unlock(&nq->plock);
}

/*
 * Mark p reported (by) or its publish call returned (!by); true when the
 * other side is done too, so that the caller frees p and its message.
 */
static bool
nq_pub_last(struct nats_queue *nq, struct nq_pub *p, bool by_handler)
{
	bool last;

	pthread_mutex_lock(&nq->plock);
	if (by_handler)
		p->reported = true;
	else
		p->in_publish = false;
	last = p->reported && !p->in_publish;
	pthread_mutex_unlock(&nq->plock);
	return last;
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

/* Report every publish still waiting as failed; nats.c is done with them. */
static void
nq_pub_fail_all(struct nats_queue *nq)
{
	struct nq_pub *p;

	for (size_t i = 0; i < NQ_PUB_BUCKETS; i++) {
		while ((p = nq->pubs[i]) != NULL) {
			nq->pubs[i] = p->next;
			queue_report(&nq->q, p->cb, p->arg, QUEUE_EUNAVAIL,
			    "queue closed");
			free(p);
		}
	}
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
	if ((p = nq_pub_take(nq, m)) == NULL) {
		natsMsg_Destroy(m);
		return;
	}
	if (pa != NULL) {
		atomic_fetch_add(&nq->enqueued, 1);
		queue_report(&nq->q, p->cb, p->arg, 0, pa->Duplicate ?
		    "duplicate" : "stored");
		goto out;
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
	queue_report(&nq->q, p->cb, p->arg, rc, why);
out:
	if (nq_pub_last(nq, p, true)) {
		natsMsg_Destroy(m);
		free(p);
	}
}

/*
 * Bind a keyed message's id to its fingerprint in the keys' bucket, or
 * find it bound: 0 when it is this body's (a first send, or a retry, which
 * is published again for the stream to drop as a duplicate, or to store if
 * the first publish never made it), QUEUE_ECONFLICT when another body's.
 * The bucket's create is atomic on the server, so of two ingests sending
 * one key with two bodies at once exactly one binds it. Synchronous: a
 * round trip to the server or two, on a claim thread.
 */
static int
nq_claim_key(struct nats_queue *nq, const struct data_message *msg,
    const char **why)
{
	kvStore *kv;
	kvEntry *e = NULL;
	uint64_t rev;
	natsStatus s;
	int rc = 0;

	pthread_mutex_lock(&nq->mu);
	kv = nq->keys;
	pthread_mutex_unlock(&nq->mu);
	if (kv == NULL) {
		*why = "JetStream key-value bucket not available";
		return QUEUE_EUNAVAIL;
	}
	s = kvStore_Create(&rev, kv, msg->id, msg->fingerprint,
	    (int)strlen(msg->fingerprint));
	if (s == NATS_OK)
		return 0;
	/* bound already, or the create failed: the entry tells */
	s = kvStore_Get(&e, kv, msg->id);
	if (s != NATS_OK) {
		*why = natsStatus_GetText(s);
		rc = QUEUE_EUNAVAIL;
	} else if ((size_t)kvEntry_ValueLen(e) != strlen(msg->fingerprint) ||
	    memcmp(kvEntry_Value(e), msg->fingerprint,
	    strlen(msg->fingerprint)) != 0) {
		*why = QUEUE_CONFLICT_REASON;
		rc = QUEUE_ECONFLICT;
	}
	kvEntry_Destroy(e);
	return rc;
}

/*
 * Hand msg to JetStream without waiting: the outcome comes back through
 * nq_on_puback. nats.c's own MaxWait timer turns a missing PubAck into a
 * timeout there, so no publish waits longer than NQ_PUB_WAIT_MS.
 */
static void
nq_publish_now(struct queue *q, struct data_message *msg,
    queue_publish_cb cb, void *arg)
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
		else if (nq->refused)
			why = "NATS refused the credentials";
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
	p->in_publish = true;
	/* In the table before sending: the PubAck may beat our return. */
	nq_pub_put(nq, p);

	jsPubOptions_Init(&po);
	/* a replay's own id: the stream must not take it for a duplicate */
	po.MsgId = msg->dedup_id != NULL ? msg->dedup_id : msg->id;
	po.MaxWait = NQ_PUB_WAIT_MS;
	s = js_PublishMsgAsync(nq->js, &m, &po);
	if (s == NATS_OK) {
		/* reported already? then the message is ours to free */
		if (nq_pub_last(nq, p, false))
			natsMsg_Destroy(p->m);
		else
			p = NULL;
		goto out;
	}
	/* On failure nats.c never saw the message: p is still ours. */
	nq_pub_take(nq, p->m);
	why = natsStatus_GetText(s);
	log_debug("nats: publish not sent: %s", why);
fail:
	queue_report(q, cb, arg, rc, why);
out:
	free(p);
	natsMsg_Destroy(m);
	free(body);
	message_free(msg);
}

/* A claim thread: bind each keyed message's key, then publish it. */
static void *
nq_claim_main(void *arg)
{
	struct nats_queue *nq = arg;
	struct nq_claim *c;
	const char *why = NULL;
	int rc;

	pthread_mutex_lock(&nq->mu);
	for (;;) {
		/* what was handed over before the stop is still answered */
		while (nq->claim_head == NULL && !nq->stopping)
			pthread_cond_wait(&nq->claim_cv, &nq->mu);
		if ((c = nq->claim_head) == NULL)
			break;
		if ((nq->claim_head = c->next) == NULL)
			nq->claim_tail = NULL;
		pthread_mutex_unlock(&nq->mu);
		if ((rc = nq_claim_key(nq, c->msg, &why)) == 0) {
			nq_publish_now(&nq->q, c->msg, c->cb, c->arg);
		} else {
			if (rc != QUEUE_ECONFLICT)
				log_debug("nats: key not bound: %s", why);
			queue_report(&nq->q, c->cb, c->arg, rc, why);
			message_free(c->msg);
		}
		free(c);
		pthread_mutex_lock(&nq->mu);
	}
	pthread_mutex_unlock(&nq->mu);
	return NULL;
}

/*
 * Publish msg. A keyed one (but a replay, whose body is stored already)
 * goes to the claim threads first, to have its key bound.
 */
static void
nq_publish(struct queue *q, struct data_message *msg, queue_publish_cb cb,
    void *arg)
{
	struct nats_queue *nq = (struct nats_queue *)q;
	struct nq_claim *c;

	if (msg->fingerprint == NULL || msg->dedup_id != NULL ||
	    !atomic_load(&nq->pub_ok) || nq->claim_started == 0 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		nq_publish_now(q, msg, cb, arg);
		return;
	}
	c->msg = msg;
	c->cb = cb;
	c->arg = arg;
	pthread_mutex_lock(&nq->mu);
	if (nq->stopping) {
		/* no claim thread is left to answer it */
		pthread_mutex_unlock(&nq->mu);
		free(c);
		queue_report(q, cb, arg, QUEUE_EUNAVAIL, "shutting down");
		message_free(msg);
		return;
	}
	if (nq->claim_tail != NULL)
		nq->claim_tail->next = c;
	else
		nq->claim_head = c;
	nq->claim_tail = c;
	pthread_cond_signal(&nq->claim_cv);
	pthread_mutex_unlock(&nq->mu);
}

/* ---- connection state ---- */

/* Copy n bytes from r to w (w <= r) and return the end of the copy. */
static char *
nq_shift(char *w, const char *r, size_t n)
{
	memmove(w, r, n);
	return w + n;
}

/*
 * Drop the "user:password@" part of each URL in a comma-separated list,
 * in place: URLs appear in logs and in /health, secrets never do.
 */
static void
nq_redact(char *s)
{
	char *r = s, *w = s, *seg_end, *host, *auth_end, *at;

	while (*r != '\0') {
		seg_end = r + strcspn(r, ",");
		host = strstr(r, "://");
		host = host != NULL && host < seg_end ? host + 3 : r;
		auth_end = host + strcspn(host, "/,");
		at = NULL;
		for (char *p = host; p < auth_end; p++) {
			if (*p == '@')
				at = p;
		}
		w = nq_shift(w, r, (size_t)(host - r));
		r = at != NULL ? at + 1 : host;
		w = nq_shift(w, r, (size_t)(seg_end - r));
		r = seg_end;
		if (*r == ',')
			*w++ = *r++;
	}
	*w = '\0';
}

/*
 * A publisher's messages must fit the server's max_payload: the largest
 * request the first hop takes becomes this large here, and a later hop
 * must not refuse it for its size. Only a setting can fix a mismatch.
 */
static void
nq_check_payload(struct nats_queue *nq, natsConnection *nc)
{
	int64_t max = natsConnection_GetMaxPayload(nc);

	if (nq->processor || max <= 0 || nq->largest_msg <= max)
		return;
	log_warn("nats: the server's max_payload is %jd bytes, but a request "
	    "of MAX_BODY_BYTES becomes a message of up to %jd: raise "
	    "max_payload on the server or lower MAX_BODY_BYTES, or such "
	    "requests are answered 503", (intmax_t)max,
	    (intmax_t)nq->largest_msg);
}

/* Connected for the first time, or again: re-check stream and consumer. */
static void
nq_set_up(struct nats_queue *nq, natsConnection *nc, const char *how)
{
	char url[256] = "";

	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	nq_redact(url);
	pthread_mutex_lock(&nq->mu);
	nq->connected = true;
	nq->refused = false;
	nq->need_ensure = true;
	nq->ensure_at_ms = 0;
	nq->pull_reset = true;
	nq_update_locked(nq);
	pthread_cond_broadcast(&nq->maint_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_mutex_unlock(&nq->mu);
	log_info("nats: %s to %s", how, url[0] != '\0' ? url :
	    nq->url_shown);
	nq_check_payload(nq, nc);
}

/* The broker is back after a loss. */
static void
nq_on_reconnected(natsConnection *nc, void *closure)
{
	nq_set_up(closure, nc, "reconnected");
}

/* The broker is gone; nats.c reconnects on its own. */
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
		log_warn("nats: connection to %s lost, reconnecting",
		    nq->url_shown);
	}
}

/*
 * The settings a person should check when the server refuses us; nq_init
 * asks, before the secrets are wiped.
 */
static const char *
nq_auth_hint(const struct nats_queue *nq)
{
	if (nq->user != NULL)
		return "check NATS_USER and NATS_PASSWORD";
	if (nq->token != NULL)
		return "check NATS_TOKEN";
	if (nq->creds != NULL)
		return "check NATS_CREDS";
	if (nq->nkey_seed != NULL)
		return "check NATS_NKEY_SEED";
	if (nq->tls_cert != NULL)
		return "check NATS_TLS_CERT";
	return "the server wants credentials: set NATS_USER and "
	    "NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_NKEY_SEED";
}

/*
 * Whether nats.c closed the connection because the server refused our
 * credentials (it gives up when a server refuses them twice running);
 * if so, what to show in /health, in why.
 */
static bool
nq_refused(natsConnection *nc, char *why, size_t len)
{
	const char *txt = NULL;

	if (natsConnection_GetLastError(nc, &txt) !=
	    NATS_CONNECTION_AUTH_FAILED)
		return false;
	snprintf(why, len, "nats: %s", txt != NULL &&
	    strcasestr(txt, "expired") != NULL ?
	    "authentication expired" : "authorization violation");
	return true;
}

/*
 * The last callback nats.c makes with nq: close() waits for it. Before
 * close(), it means nats.c stopped trying: the server refused us.
 */
static void
nq_on_closed(natsConnection *nc, void *closure)
{
	struct nats_queue *nq = closure;
	char why[sizeof(nq->refused_why)];
	bool refused;

	refused = nq_refused(nc, why, sizeof(why));
	pthread_mutex_lock(&nq->mu);
	if (nq->stopping) {
		refused = false;
	} else if (refused) {
		nq->refused = true;
		memcpy(nq->refused_why, why, sizeof(why));
	}
	nq->connected = false;
	nq->closed_cb_done = true;
	nq_update_locked(nq);
	pthread_cond_broadcast(&nq->closed_cv);
	pthread_mutex_unlock(&nq->mu);
	if (refused) {
		log_error("%s at %s: %s; not retrying: restart once the "
		    "credentials are fixed", why, nq->url_shown,
		    nq->auth_hint);
	}
}

/* ---- stats ---- */

/* Refresh the backlog figure: consumer pending + unacked, or stream size. */
static void
nq_refresh_stats(struct nats_queue *nq)
{
	jsConsumerInfo *ci = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int64_t size = -1, ack_pending = 0;

	if (nq->processor) {
		s = js_GetConsumerInfo(&ci, nq->js, nq->stream, NQ_CONSUMER,
		    NULL, &jerr);
		if (s == NATS_OK) {
			ack_pending = (int64_t)ci->NumAckPending;
			size = (int64_t)ci->NumPending + ack_pending;
		}
	} else {
		s = js_GetStreamInfo(&si, nq->js, nq->stream, NULL, &jerr);
		if (s == NATS_OK)
			size = (int64_t)si->State.Msgs;
	}
	pthread_mutex_lock(&nq->mu);
	if (s == NATS_NOT_FOUND) {
		/* Deleted under us: unhealthy until ensure recreates it. */
		if (nq->processor && jerr != NQ_ERR_NO_STREAM) {
			nq->consumer_ok = false;
		} else {
			nq->stream_ok = false;
		}
		nq->need_ensure = true;
		nq_update_locked(nq);
	}
	/* a failed request leaves the figure stale, to be asked again */
	if (size >= 0) {
		nq->stats_size = size;
		nq->stats_ack_pending = ack_pending;
		nq->stats_at_ms = clock_now_ms();
	}
	pthread_cond_broadcast(&nq->stats_cv);
	pthread_mutex_unlock(&nq->mu);
	jsConsumerInfo_Destroy(ci);
	jsStreamInfo_Destroy(si);
}

static natsStatus nq_try_connect(struct nats_queue *nq);

/*
 * Backend housekeeping: connect until the first time it works, ensure
 * stream/consumer, refresh the stats cache.
 */
static void *
nq_maint_main(void *arg)
{
	struct nats_queue *nq = arg;
	int64_t now, at;

	pthread_setname_np(pthread_self(), "nats-maint");
	pthread_mutex_lock(&nq->mu);
	while (!nq->stopping) {
		now = clock_now_ms();
		if (nq->nc == NULL && now >= nq->connect_at_ms) {
			pthread_mutex_unlock(&nq->mu);
			(void)nq_try_connect(nq);
			pthread_mutex_lock(&nq->mu);
			continue;
		}
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
		if (nq->nc == NULL)
			at = nq->connect_at_ms;
		else if (nq->connected && nq->need_ensure)
			at = nq->ensure_at_ms;
		if (at == 0)
			pthread_cond_wait(&nq->maint_cv, &nq->mu);
		else
			nq_wait_until(&nq->maint_cv, &nq->mu, at);
	}
	pthread_mutex_unlock(&nq->mu);
	return NULL;
}

/* Why the queue is not healthy, or "" when it is; mu held. */
static void
nq_reason_locked(struct nats_queue *nq, struct queue_stats *st)
{
	if (nq->refused) {
		snprintf(st->reason, sizeof(st->reason), "%s at %s",
		    nq->refused_why, nq->url_shown);
	} else if (!nq->connected) {
		snprintf(st->reason, sizeof(st->reason),
		    "not connected to NATS at %s", nq->url_shown);
	} else if (!nq->stream_ok) {
		snprintf(st->reason, sizeof(st->reason),
		    "JetStream stream %s not available", nq->stream);
	} else if (nq->processor && !nq->consumer_ok) {
		snprintf(st->reason, sizeof(st->reason),
		    "JetStream consumer %s not available", NQ_CONSUMER);
	} else {
		st->healthy = true;
	}
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
	st->ack_pending = nq->stats_ack_pending;
	nq_reason_locked(nq, st);
	pthread_mutex_unlock(&nq->mu);
}

/* ---- open and close ---- */

/*
 * A new formatted string in *out, which asprintf would leave undefined on
 * failure: ours stays as it was, so nq_free can free it.
 */
static int __attribute__((format(printf, 2, 3)))
nq_strf(char **out, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	*out = s;
	return 0;
}

/* Every lock and condition variable, in the order they are made. */
static void
nq_sync_list(struct nats_queue *nq, pthread_mutex_t **mutex,
    pthread_cond_t **cond)
{
	mutex[0] = &nq->mu;
	mutex[1] = &nq->plock;
	cond[0] = &nq->maint_cv;
	cond[1] = &nq->wpi_cv;
	cond[2] = &nq->recv_cv;
	cond[3] = &nq->space_cv;
	cond[4] = &nq->stats_cv;
	cond[5] = &nq->closed_cv;
	cond[6] = &nq->settle_cv;
	cond[7] = &nq->claim_cv;
}

/* Make the locks and condition variables, counting them for nq_free. */
static int
nq_sync_init(struct nats_queue *nq)
{
	pthread_mutex_t *mutex[NQ_NMUTEX];
	pthread_cond_t *cond[NQ_NCOND];

	nq_sync_list(nq, mutex, cond);
	for (; nq->nmutex < NQ_NMUTEX; nq->nmutex++) {
		if (pthread_mutex_init(mutex[nq->nmutex], NULL) != 0)
			return -ENOMEM;
	}
	for (; nq->ncond < NQ_NCOND; nq->ncond++) {
		if (clock_cond_init(cond[nq->ncond]) != 0)
			return -ENOMEM;
	}
	return 0;
}

/* The backend's settings, filled by config_parse. */
struct nats_settings {
	char *url;
	char *stream;
	char *subject_prefix;
	int64_t max_msgs;
	int64_t max_bytes;
	int64_t max_age_ms;		/* 0: no age limit */
	int64_t dup_window_ms;
	int64_t replicas;
	int64_t ack_wait_ms;
	int64_t max_deliver;
	int64_t fetch_batch;
	/* authentication and TLS: NULL leaves each off */
	char *user;
	char *password;
	char *token;
	char *creds;			/* a creds file: JWT and NKey seed */
	char *nkey_seed;		/* a file holding an NKey seed */
	char *tls_ca;
	char *tls_cert;
	char *tls_key;
};

#define NS(field) offsetof(struct nats_settings, field)

static const struct config_option nats_options[] = {
	{ "nats-url", "NATS_URL", CONFIG_STRING, "nats://localhost:4222", 0, 0,
	  NS(url), "URLS", "NATS servers, comma-separated" },
	{ "nats-stream", "NATS_STREAM", CONFIG_STRING, "DIPLOM_STREAM", 0, 0,
	  NS(stream), "NAME", "JetStream stream name" },
	{ "nats-subject-prefix", "NATS_SUBJECT_PREFIX", CONFIG_STRING, "diplom",
	  0, 0, NS(subject_prefix), "PREFIX", "stream subjects are PREFIX.>" },
	{ "nats-max-msgs", "NATS_MAX_MSGS", CONFIG_INT, "1000000", -1,
	  INT64_MAX, NS(max_msgs), "N", "stream message limit (-1: none)" },
	{ "nats-max-bytes", "NATS_MAX_BYTES", CONFIG_INT, "-1", -1, INT64_MAX,
	  NS(max_bytes), "N", "stream byte limit (-1: none)" },
	{ "nats-max-age", "NATS_MAX_AGE", CONFIG_DURATION, "0", 0, 0,
	  NS(max_age_ms), "DURATION", "stream age limit (0: none)" },
	{ "nats-duplicate-window", "NATS_DUPLICATE_WINDOW", CONFIG_DURATION,
	  "2m", 0, 0, NS(dup_window_ms), "DURATION",
	  "a publish with a Nats-Msg-Id seen this recently is dropped" },
	{ "nats-replicas", "NATS_REPLICAS", CONFIG_INT, "1", 1, 5,
	  NS(replicas), "N", "stream replicas" },
	{ "nats-ack-wait", "NATS_ACK_WAIT", CONFIG_DURATION, "30s", 0, 0,
	  NS(ack_wait_ms), "DURATION", "consumer ack wait" },
	{ "nats-max-deliver", "NATS_MAX_DELIVER", CONFIG_INT, "0", 0, 1000000,
	  NS(max_deliver), "N",
	  "deliveries without a result before a message is stored as failed "
	  "(0: never)" },
	{ "nats-fetch-batch", "NATS_FETCH_BATCH", CONFIG_INT, "10", 1, 1000,
	  NS(fetch_batch), "N", "messages a worker takes at a time" },
	{ "nats-user", "NATS_USER", CONFIG_STRING, NULL, 0, 0, NS(user),
	  "NAME", "user to connect as, with NATS_PASSWORD" },
	{ "nats-password", "NATS_PASSWORD", CONFIG_SECRET, NULL, 0, 0,
	  NS(password), "PASSWORD", "password of NATS_USER" },
	{ "nats-token", "NATS_TOKEN", CONFIG_SECRET, NULL, 0, 0, NS(token),
	  "TOKEN", "token to connect with" },
	{ "nats-creds", "NATS_CREDS", CONFIG_PATH, NULL, 0, 0, NS(creds),
	  "PATH", "credentials file (user JWT and NKey seed)" },
	{ "nats-nkey-seed", "NATS_NKEY_SEED", CONFIG_PATH, NULL, 0, 0,
	  NS(nkey_seed), "PATH", "file holding an NKey seed to sign with" },
	{ "nats-tls-ca", "NATS_TLS_CA", CONFIG_PATH, NULL, 0, 0, NS(tls_ca),
	  "PATH", "CA certificates the server's must chain to (TLS on)" },
	{ "nats-tls-cert", "NATS_TLS_CERT", CONFIG_PATH, NULL, 0, 0,
	  NS(tls_cert), "PATH", "client certificate, with NATS_TLS_KEY" },
	{ "nats-tls-key", "NATS_TLS_KEY", CONFIG_PATH, NULL, 0, 0,
	  NS(tls_key), "PATH", "private key of NATS_TLS_CERT" },
};

static const struct config_group nats_settings_group = {
	"nats", nats_options, sizeof(nats_options) / sizeof(*nats_options),
	sizeof(struct nats_settings),
};

/* A copy of s, or NULL for NULL; -ENOMEM when it cannot be made. */
static int
nq_dup(char **out, const char *s)
{
	if (s == NULL)
		return 0;
	return (*out = strdup(s)) != NULL ? 0 : -ENOMEM;
}

/*
 * Settings for authentication and TLS that cannot work together, or a
 * file that cannot be read: a reason naming the settings, and -EINVAL.
 */
static int
nq_check_auth(const struct nats_settings *ns, char **cause)
{
	const struct { const char *path, *name; } files[] = {
		{ ns->creds, "NATS_CREDS" }, { ns->nkey_seed, "NATS_NKEY_SEED" },
		{ ns->tls_ca, "NATS_TLS_CA" }, { ns->tls_cert, "NATS_TLS_CERT" },
		{ ns->tls_key, "NATS_TLS_KEY" },
	};
	int ways = (ns->user != NULL || ns->password != NULL) +
	    (ns->token != NULL) + (ns->creds != NULL) +
	    (ns->nkey_seed != NULL);

	if (ns->password != NULL && ns->user == NULL) {
		nq_cause(cause, "NATS_PASSWORD is set but NATS_USER is not");
	} else if (ns->user != NULL && ns->password == NULL) {
		nq_cause(cause, "NATS_USER is set but NATS_PASSWORD is not");
	} else if (ways > 1) {
		nq_cause(cause, "NATS_USER/NATS_PASSWORD, NATS_TOKEN, "
		    "NATS_CREDS and NATS_NKEY_SEED exclude each other: "
		    "set one of them");
	} else if ((ns->tls_cert == NULL) != (ns->tls_key == NULL)) {
		nq_cause(cause, "NATS_TLS_CERT and NATS_TLS_KEY go together: "
		    "%s is not set", ns->tls_cert == NULL ?
		    "NATS_TLS_CERT" : "NATS_TLS_KEY");
	} else {
		for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
			if (files[i].path != NULL &&
			    access(files[i].path, R_OK) != 0) {
				nq_cause(cause, "%s: cannot read %s: %s",
				    files[i].name, files[i].path,
				    strerror(errno));
				return -EINVAL;
			}
		}
		return 0;
	}
	return -EINVAL;
}

/* Whether any URL of a comma-separated list asks for TLS. */
static bool
nq_tls_url(const char *urls)
{
	for (const char *p = urls; (p = strstr(p, "tls://")) != NULL; p++) {
		if (p == urls || p[-1] == ',' || p[-1] == ' ' ||
		    p[-1] == '\t')
			return true;
	}
	return false;
}

/* Copy what authentication and TLS need; the secrets go in nq_options. */
static int
nq_init_auth(struct nats_queue *nq, const struct nats_settings *ns,
    char **cause)
{
	int rc;

	if ((rc = nq_check_auth(ns, cause)) != 0)
		return rc;
	nq->tls = ns->tls_ca != NULL || ns->tls_cert != NULL ||
	    nq_tls_url(ns->url);
	if (nq_dup(&nq->user, ns->user) != 0 ||
	    nq_dup(&nq->password, ns->password) != 0 ||
	    nq_dup(&nq->token, ns->token) != 0 ||
	    nq_dup(&nq->creds, ns->creds) != 0 ||
	    nq_dup(&nq->nkey_seed, ns->nkey_seed) != 0 ||
	    nq_dup(&nq->tls_ca, ns->tls_ca) != 0 ||
	    nq_dup(&nq->tls_cert, ns->tls_cert) != 0 ||
	    nq_dup(&nq->tls_key, ns->tls_key) != 0) {
		nq_cause(cause, "out of memory");
		return -ENOMEM;
	}
	nq->auth_hint = nq_auth_hint(nq);
	return 0;
}

/* Wipe and free a secret. */
static void
nq_forget(char **secret)
{
	if (*secret == NULL)
		return;
	explicit_bzero(*secret, strlen(*secret));
	free(*secret);
	*secret = NULL;
}

/*
 * Copy the settings we keep; cfg need not outlive the queue. The only
 * place the backend reads the configuration.
 */
static int
nq_init(struct nats_queue *nq, const struct config *cfg, char **cause)
{
	const struct nats_settings *ns = config_settings(cfg,
	    &nats_settings_group);
	int rc;

	nq->q.ops = &queue_nats_ops;
	nq->inflight.next = nq->inflight.prev = &nq->inflight;
	if (ns == NULL) {
		nq_cause(cause, "nats: no settings");
		return -EINVAL;
	}
	if ((rc = nq_init_auth(nq, ns, cause)) != 0)
		return rc;
	nq->processor = cfg->role == ROLE_PROCESSOR;
	nq->largest_msg = (int64_t)message_encoded_max(
	    (size_t)cfg->max_body_bytes);
	nq->batch = ns->fetch_batch > 0 ?
	    (int)(ns->fetch_batch > 4096 ? 4096 : ns->fetch_batch) : 1;
	nq->q.batch = nq->batch;
	nq->cap = nq->batch > NQ_PULL_WINDOW ? nq->batch : NQ_PULL_WINDOW;
	/* room for two of the largest, whatever MAX_BODY_BYTES says */
	nq->cap_bytes = 2 * (nq->largest_msg + NQ_MSG_OVERHEAD);
	if (nq->cap_bytes < NQ_PULL_BYTES)
		nq->cap_bytes = NQ_PULL_BYTES;
	nq->max_msgs = ns->max_msgs;
	nq->max_bytes = ns->max_bytes;
	nq->max_age_ms = ns->max_age_ms;
	nq->dup_window_ms = ns->dup_window_ms;
	nq->replicas = ns->replicas;
	nq->ack_wait_ms = ns->ack_wait_ms;
	nq->q.max_deliveries = (uint64_t)ns->max_deliver;
	if (nq_strf(&nq->subject, "%s.messages", ns->subject_prefix) != 0 ||
	    nq_strf(&nq->filter, "%s.>", ns->subject_prefix) != 0 ||
	    nq_strf(&nq->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
	    ns->stream, NQ_CONSUMER) != 0 ||
	    nq_strf(&nq->client_name, "diplom-%s",
	    config_role_name(cfg->role)) != 0 ||
	    nq_strf(&nq->stream, "%s", ns->stream) != 0 ||
	    nq_strf(&nq->keys_bucket, "%s" NQ_KEYS_SUFFIX, ns->stream) != 0 ||
	    nq_strf(&nq->url, "%s", ns->url) != 0 ||
	    nq_strf(&nq->url_shown, "%s", ns->url) != 0) {
		nq_cause(cause, "out of memory");
		return -ENOMEM;
	}
	nq_redact(nq->url_shown);
	return 0;
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

/* nats.c's last error text without its "(file.c:line): ", or s's. */
static const char *
nq_last_error(natsStatus s)
{
	const char *txt = nats_GetLastError(NULL), *p;

	if (txt == NULL || *txt == '\0')
		return natsStatus_GetText(s);
	if (*txt == '(' && (p = strstr(txt, "): ")) != NULL)
		txt = p + 3;
	return txt;
}

/* TLS: on, the CA the server's certificate must chain to, ours. */
static int
nq_options_tls(struct nats_queue *nq, char **cause)
{
	natsStatus s;

	if ((s = natsOptions_SetSecure(nq->opts, true)) != NATS_OK)
		return nq_fail(cause, -EINVAL, s, "nats: TLS: %s",
		    nq_last_error(s));
	if (nq->tls_ca != NULL && (s = natsOptions_LoadCATrustedCertificates(
	    nq->opts, nq->tls_ca)) != NATS_OK)
		return nq_fail(cause, -EINVAL, s, "NATS_TLS_CA %s: %s",
		    nq->tls_ca, nq_last_error(s));
	if (nq->tls_cert != NULL && (s = natsOptions_LoadCertificatesChain(
	    nq->opts, nq->tls_cert, nq->tls_key)) != NATS_OK)
		return nq_fail(cause, -EINVAL, s,
		    "NATS_TLS_CERT %s, NATS_TLS_KEY %s: %s", nq->tls_cert,
		    nq->tls_key, nq_last_error(s));
	return 0;
}

/*
 * Credentials and TLS. nats.c keeps its own copies of the secrets, as it
 * needs them for every reconnect: ours are wiped right away.
 */
static int
nq_options_auth(struct nats_queue *nq, char **cause)
{
	char pub[NQ_NKEY_PUB_LEN + 1];
	natsStatus s = NATS_OK;
	const char *what = NULL;
	int rc = 0;

	if (nq->user != NULL) {
		what = "NATS_USER";
		s = natsOptions_SetUserInfo(nq->opts, nq->user, nq->password);
	} else if (nq->token != NULL) {
		what = "NATS_TOKEN";
		s = natsOptions_SetToken(nq->opts, nq->token);
	} else if (nq->creds != NULL) {
		what = "NATS_CREDS";
		s = natsOptions_SetUserCredentialsFromFiles(nq->opts,
		    nq->creds, NULL);
	} else if (nq->nkey_seed != NULL) {
		what = "NATS_NKEY_SEED";
		if ((rc = nq_nkey_public(nq->nkey_seed, pub, sizeof(pub),
		    cause)) != 0)
			goto out;
		s = natsOptions_SetNKeyFromSeed(nq->opts, pub, nq->nkey_seed);
	}
	if (s != NATS_OK) {
		rc = nq_fail(cause, -EINVAL, s, "%s: %s", what,
		    nq_last_error(s));
		goto out;
	}
	if (nq->tls)
		rc = nq_options_tls(nq, cause);
out:
	nq_forget(&nq->password);
	nq_forget(&nq->token);
	return rc;
}

/* Connection options: retry forever, in the background, fast. */
static natsStatus
nq_options(struct nats_queue *nq)
{
	natsStatus s;

	s = natsOptions_Create(&nq->opts);
	if (s == NATS_OK)
		s = nq_set_servers(nq->opts, nq->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(nq->opts, nq->client_name);
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
		s = natsOptions_SetDisconnectedCB(nq->opts,
		    nq_on_disconnected, nq);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(nq->opts,
		    nq_on_reconnected, nq);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(nq->opts, nq_on_closed, nq);
	return s;
}

/* The JetStream context, and for a processor the inbox it pulls into. */
static natsStatus
nq_jetstream(struct nats_queue *nq, natsConnection *nc, jsCtx **js,
    char **inbox_out, natsSubscription **sub)
{
	natsInbox *inbox = NULL;
	jsOptions jo;
	natsStatus s;

	jsOptions_Init(&jo);
	jo.Wait = NQ_API_WAIT_MS;
	jo.PublishAsync.MaxPending = NQ_MAX_PENDING;
	jo.PublishAsync.AckHandler = nq_on_puback;
	jo.PublishAsync.AckHandlerClosure = nq;
	s = natsConnection_JetStream(js, nc, &jo);
	if (s != NATS_OK || !nq->processor)
		return s;
	if ((s = natsInbox_Create(&inbox)) != NATS_OK)
		return s;
	*inbox_out = strdup(inbox);
	natsInbox_Destroy(inbox);
	if (*inbox_out == NULL)
		return NATS_NO_MEMORY;
	return natsConnection_SubscribeSync(sub, nc, *inbox_out);
}

/*
 * Why a connect attempt failed, for /health and the log: in why, and
 * whether it is worth an error (the server refused us) rather than a
 * warning (not there yet).
 */
static bool
nq_connect_failure(const struct nats_queue *nq, natsStatus s, char *why,
    size_t len)
{
	const char *txt = nq_last_error(s);

	/* A TLS server that wants a client certificate just hangs up. */
	if (s == NATS_PROTOCOL_ERROR && nq->tls) {
		snprintf(why, len, "nats: TLS: the server ended the "
		    "connection (%s)", nq->tls_cert == NULL ?
		    "it may want a client certificate: NATS_TLS_CERT" :
		    "check NATS_TLS_CERT");
		return true;
	}

	switch (s) {
	case NATS_CONNECTION_AUTH_FAILED:
		snprintf(why, len, "nats: %s", strcasestr(txt, "expired") !=
		    NULL ? "authentication expired" :
		    "authorization violation");
		return true;
	case NATS_SSL_ERROR:
	case NATS_SECURE_CONNECTION_WANTED:
	case NATS_SECURE_CONNECTION_REQUIRED:
		snprintf(why, len, "nats: TLS: %s", txt);
		return true;
	case NATS_NO_SERVER:
	case NATS_IO_ERROR:
	case NATS_TIMEOUT:
		why[0] = '\0';
		return false;
	default:
		snprintf(why, len, "nats: %s", txt);
		return true;
	}
}

/*
 * A connect attempt failed: remember why for /health, and say so once
 * for each new reason.
 */
static void
nq_connect_failed(struct nats_queue *nq, natsStatus s)
{
	char why[sizeof(nq->refused_why)];
	bool refused, news;

	refused = nq_connect_failure(nq, s, why, sizeof(why));
	pthread_mutex_lock(&nq->mu);
	news = !nq->tried || refused != nq->refused ||
	    strcmp(why, nq->refused_why) != 0;
	nq->tried = true;
	nq->refused = refused;
	memcpy(nq->refused_why, why, sizeof(why));
	nq->connect_at_ms = clock_now_ms() + (refused ?
	    NQ_REFUSED_RETRY_MS : NQ_CONNECT_RETRY_MS);
	pthread_mutex_unlock(&nq->mu);
	if (!news) {
		return;
	} else if (s == NATS_CONNECTION_AUTH_FAILED) {
		log_error("%s at %s: %s; retrying every %d s", why,
		    nq->url_shown, nq->auth_hint,
		    NQ_REFUSED_RETRY_MS / 1000);
	} else if (refused) {
		log_error("%s at %s; retrying every %d s", why, nq->url_shown,
		    NQ_REFUSED_RETRY_MS / 1000);
	} else {
		log_warn("nats: %s not reachable yet, retrying in the "
		    "background", nq->url_shown);
	}
}

/*
 * One attempt to connect to the servers; on success the connection, its
 * JetStream context and a processor's inbox become the queue's, for good:
 * nats.c reconnects on its own from then on, and close() closes it and
 * waits for its last callback.
 */
static natsStatus
nq_try_connect(struct nats_queue *nq)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	jsCtx *js = NULL;
	char *inbox = NULL;
	natsStatus s;

	s = natsConnection_Connect(&nc, nq->opts);
	if (s != NATS_OK) {
		nq_connect_failed(nq, s);
		return s;
	}
	s = nq_jetstream(nq, nc, &js, &inbox, &sub);
	pthread_mutex_lock(&nq->mu);
	nq->nc = nc;
	nq->js = js;
	nq->sub = sub;
	nq->inbox = inbox;
	nq->refused = false;
	pthread_mutex_unlock(&nq->mu);
	if (s != NATS_OK) {
		/* out of memory, in effect: unhealthy until restarted */
		log_error("nats: no JetStream context: %s",
		    natsStatus_GetText(s));
		return s;
	}
	nq_set_up(nq, nc, "connected");
	return NATS_OK;
}

/* Start the maintenance thread, and a processor's pull and +WPI threads. */
static int
nq_start_threads(struct nats_queue *nq, char **cause)
{
	if (pthread_create(&nq->maint_thr, NULL, nq_maint_main, nq) != 0)
		goto fail;
	nq->maint_started = true;
	/* a processor publishes keyed messages only through its /enqueue */
	for (; nq->claim_started < (nq->processor ? 1 : NQ_CLAIM_THREADS);
	    nq->claim_started++) {
		if (pthread_create(&nq->claim_thr[nq->claim_started], NULL,
		    nq_claim_main, nq) != 0)
			goto fail;
	}
	if (!nq->processor)
		return 0;
	if (pthread_create(&nq->pull_thr, NULL, nq_pull_main, nq) != 0)
		goto fail;
	nq->pull_started = true;
	if (pthread_create(&nq->wpi_thr, NULL, nq_wpi_main, nq) != 0)
		goto fail;
	nq->wpi_started = true;
	return 0;
fail:
	nq_cause(cause, "nats: cannot start a thread");
	return -ENOMEM;
}

/* Stop pulling and end our threads; the connection stays up. */
static void
nq_stop_threads(struct nats_queue *nq)
{
	nq_shutdown(&nq->q);
	pthread_mutex_lock(&nq->mu);
	nq->stopping = true;
	pthread_cond_broadcast(&nq->maint_cv);
	pthread_cond_broadcast(&nq->wpi_cv);
	pthread_cond_broadcast(&nq->space_cv);
	pthread_cond_broadcast(&nq->recv_cv);
	pthread_cond_broadcast(&nq->claim_cv);
	pthread_mutex_unlock(&nq->mu);
	for (int i = 0; i < nq->claim_started; i++)
		pthread_join(nq->claim_thr[i], NULL);
	if (nq->pull_started)
		pthread_join(nq->pull_thr, NULL);
	if (nq->wpi_started)
		pthread_join(nq->wpi_thr, NULL);
	if (nq->maint_started)
		pthread_join(nq->maint_thr, NULL);
}

/* Let outstanding publishes report, then close the connection. */
static void
nq_disconnect(struct nats_queue *nq)
{
	jsPubOptions po;
	int64_t until;

	if (nq->js != NULL) {
		/* Every publish ends within MaxWait; let them report. */
		jsPubOptions_Init(&po);
		po.MaxWait = NQ_PUB_WAIT_MS * 2;
		js_PublishAsyncComplete(nq->js, &po);
		jsCtx_Destroy(nq->js);
	}
	nq_pub_fail_all(nq);
	kvStore_Destroy(nq->keys);
	jsCtx_Destroy(nq->keys_js);
	natsSubscription_Destroy(nq->sub);
	if (nq->nc == NULL)
		return;
	/*
	 * Close drops what is still buffered: the last acks would be lost
	 * and those messages delivered again after a restart.
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

/* Free the memory of a queue no thread or callback uses any more. */
static void
nq_free(struct nats_queue *nq)
{
	pthread_mutex_t *mutex[NQ_NMUTEX];
	pthread_cond_t *cond[NQ_NCOND];

	natsOptions_Destroy(nq->opts);
	nq_pull_free(nq);
	nq_sync_list(nq, mutex, cond);
	for (int i = 0; i < nq->nmutex; i++)
		pthread_mutex_destroy(mutex[i]);
	for (int i = 0; i < nq->ncond; i++)
		pthread_cond_destroy(cond[i]);
	free(nq->stream);
	free(nq->keys_bucket);
	free(nq->subject);
	free(nq->filter);
	free(nq->next_subj);
	nq_forget(&nq->url);
	free(nq->url_shown);
	nq_forget(&nq->password);
	nq_forget(&nq->token);
	free(nq->user);
	free(nq->creds);
	free(nq->nkey_seed);
	free(nq->tls_ca);
	free(nq->tls_cert);
	free(nq->tls_key);
	free(nq->client_name);
	free(nq->inbox);
	free(nq);
}

/*
 * Free everything; outstanding publishes are finished or failed first.
 * Also the one way out of a failed open, whatever it got as far as.
 */
static void
nq_close(struct queue *q)
{
	struct nats_queue *nq = (struct nats_queue *)q;

	if (nq == NULL)
		return;
	/* Without its locks nothing else was made. */
	if (nq->nmutex == NQ_NMUTEX && nq->ncond == NQ_NCOND) {
		nq_stop_threads(nq);
		nq_disconnect(nq);
	}
	nq_free(nq);
}

/*
 * Open: connect in the background if the broker is not there yet; the
 * stream (and, for a processor, the consumer) is ensured once connected.
 */
static int
nq_open(struct queue **qp, const struct config *cfg, char **cause)
{
	struct nats_queue *nq;
	natsStatus s;
	bool connected;
	int rc = -ENOMEM;

	*qp = NULL;
	if ((nq = calloc(1, sizeof(*nq))) == NULL) {
		nq_cause(cause, "out of memory");
		goto out;
	}
	if ((rc = nq_init(nq, cfg, cause)) != 0)
		goto out;
	if ((rc = nq_sync_init(nq)) != 0) {
		nq_cause(cause, "out of memory");
		goto out;
	}
	if ((s = nq_options(nq)) != NATS_OK) {
		rc = nq_fail(cause, QUEUE_EINVAL, s, "NATS_URL %s: %s",
		    nq->url_shown, nq_last_error(s));
		goto out;
	}
	if ((rc = nq_options_auth(nq, cause)) != 0)
		goto out;
	/* nats.c has the URLs: any user:password in them goes */
	nq_forget(&nq->url);
	if (nq->max_age_ms > 0) {
		log_warn("nats: NATS_MAX_AGE is %" PRId64 " ms: messages older "
		    "than that are deleted from the stream, processed or not",
		    nq->max_age_ms);
	}
	/* Not there yet, or refusing us: the maintenance thread retries. */
	if (nq_try_connect(nq) == NATS_NO_MEMORY) {
		rc = -ENOMEM;
		nq_cause(cause, "out of memory");
		goto out;
	}
	/* Healthy at once when the broker is there: ensure right now. */
	pthread_mutex_lock(&nq->mu);
	connected = nq->connected;
	pthread_mutex_unlock(&nq->mu);
	if (connected)
		nq_ensure(nq);
	if ((rc = nq_start_threads(nq, cause)) != 0)
		goto out;
	*qp = &nq->q;
out:
	if (rc != 0 && nq != NULL)
		nq_close(&nq->q);
	return rc;
}

const struct queue_ops queue_nats_ops = {
	.name = "nats",
	.settings = &nats_settings_group,
	.open = nq_open,
	.publish = nq_publish,
	.receive = nq_receive,
	.ack = nq_ack,
	.reject = nq_reject,
	.stats = nq_stats,
	.shutdown = nq_shutdown,
	.close = nq_close,
};

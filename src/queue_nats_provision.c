/* queue_nats_provision.c - the JetStream stream and consumer we rely on */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "clock.h"
#include "log.h"
#include "queue_nats_int.h"

/* Append a field name to a comma-separated list of differences. */
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
	sc->Duplicates = nq_dup_window_ms(nq) * NS_PER_MS;
}

/*
 * The duplicate window the stream gets: NATS_DUPLICATE_WINDOW, the
 * server's default for 0, and no longer than the age limit (the server
 * refuses a longer one). The keys' bucket keeps a key as long.
 */
int64_t
nq_dup_window_ms(const struct nats_queue *nq)
{
	int64_t w = nq->dup_window_ms > 0 ? nq->dup_window_ms :
	    NQ_DUP_WINDOW_DEFAULT_MS;

	if (nq->max_age_ms > 0 && nq->max_age_ms < w)
		w = nq->max_age_ms;
	return w;
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

/* Warn once per queue that an existing stream or consumer is not ours. */
static void
nq_warn_diff(struct nats_queue *nq, bool *warned, const char *what,
    const char *name, const char *diff)
{
	bool warn;

	pthread_mutex_lock(&nq->mu);
	warn = diff[0] != '\0' && !*warned;
	if (warn)
		*warned = true;
	pthread_mutex_unlock(&nq->mu);
	if (warn) {
		log_warn("nats: %s %s exists with a different %s; using "
		    "it as it is", what, name, diff);
	}
}

/* Create the stream if missing; reuse (never overwrite) one that exists. */
static int
nq_ensure_stream(struct nats_queue *nq, char **cause)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	const char *subjects[1];
	jsErrCode jerr = 0;
	natsStatus s;
	char diff[256];
	int rc = 0;

	nq_stream_config(nq, &sc, subjects);
	s = js_GetStreamInfo(&si, nq->js, nq->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		s = js_AddStream(&si, nq->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			rc = nq_fail(cause, QUEUE_EUNAVAIL, s,
			    "cannot create stream %s: %s (%d)", nq->stream,
			    natsStatus_GetText(s), (int)jerr);
			log_warn("nats: %s", *cause != NULL ? *cause :
			    "out of memory");
			goto out;
		}
		log_info("nats: stream %s created (subjects %s, max_msgs "
		    "%" PRId64 ", max_bytes %" PRId64 ", replicas %" PRId64
		    ")", nq->stream, nq->filter, nq->max_msgs, nq->max_bytes,
		    nq->replicas);
		goto out;
	}
	if (s != NATS_OK) {
		rc = nq_fail(cause, QUEUE_EUNAVAIL, s,
		    "stream %s unavailable: %s", nq->stream,
		    natsStatus_GetText(s));
		goto out;
	}
	nq_stream_diff(&sc, si->Config, diff, sizeof(diff));
	nq_warn_diff(nq, &nq->warned_stream, "stream", nq->stream, diff);
out:
	jsStreamInfo_Destroy(si);
	return rc;
}

/* Fill the consumer configuration every processor shares. */
static void
nq_consumer_config(struct nats_queue *nq, jsConsumerConfig *cc)
{
	jsConsumerConfig_Init(cc);
	cc->Durable = NQ_CONSUMER;
	cc->AckPolicy = js_AckExplicit;
	cc->AckWait = nq->ack_wait_ms * NS_PER_MS;
	/*
	 * No delivery limit: the broker counts every delivery, a crash's as
	 * much as a message's own fault, and drops a message that reaches
	 * the limit without a word. The processor gives up on a message
	 * itself (queue_max_deliveries), and stores a row when it does.
	 */
	cc->MaxDeliver = -1;
	cc->FilterSubject = nq->subject;
	cc->MaxAckPending = NQ_MAX_ACK_PENDING;
}

/* Name the fields where an existing consumer differs from ours. */
static void
nq_consumer_diff(const jsConsumerConfig *want, const jsConsumerConfig *have,
    char *buf, size_t size)
{
	buf[0] = '\0';
	if (have->AckWait != want->AckWait)
		nq_diff_add(buf, size, "ack_wait");
	if (have->AckPolicy != want->AckPolicy)
		nq_diff_add(buf, size, "ack_policy");
	if (have->FilterSubject == NULL ||
	    strcmp(have->FilterSubject, want->FilterSubject) != 0)
		nq_diff_add(buf, size, "filter_subject");
}

/*
 * A consumer made by an older release has a delivery limit, which would
 * drop messages silently: lift it. The limit is one of the settings the
 * broker lets a consumer update in place.
 */
static void
nq_lift_delivery_limit(struct nats_queue *nq, jsConsumerInfo *ci)
{
	jsConsumerInfo *upd = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int64_t had = ci->Config->MaxDeliver;

	if (had <= 0)
		return;
	ci->Config->MaxDeliver = -1;
	s = js_UpdateConsumer(&upd, nq->js, nq->stream, ci->Config, NULL,
	    &jerr);
	if (s == NATS_OK)
		log_info("nats: consumer %s had a delivery limit of %" PRId64
		    ", which drops a message for good after as many crashes; "
		    "lifted it", NQ_CONSUMER, had);
	else
		log_warn("nats: consumer %s has a delivery limit of %" PRId64
		    " and it cannot be lifted (%s, %d): a message delivered "
		    "that often is dropped without a result", NQ_CONSUMER, had,
		    natsStatus_GetText(s), (int)jerr);
	ci->Config->MaxDeliver = had;
	jsConsumerInfo_Destroy(upd);
}

/* The durable pull consumer every processor shares. */
static int
nq_ensure_consumer(struct nats_queue *nq, char **cause)
{
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	natsStatus s;
	char diff[256];
	int rc = 0;

	nq_consumer_config(nq, &cc);
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
		rc = nq_fail(cause, QUEUE_EUNAVAIL, s,
		    "consumer %s unavailable: %s (%d)", NQ_CONSUMER,
		    natsStatus_GetText(s), (int)jerr);
		goto out;
	}
	nq_lift_delivery_limit(nq, ci);
	nq_consumer_diff(&cc, ci->Config, diff, sizeof(diff));
	nq_warn_diff(nq, &nq->warned_consumer, "consumer", NQ_CONSUMER, diff);
out:
	jsConsumerInfo_Destroy(ci);
	return rc;
}

/* Warn once when an existing keys' bucket keeps keys for another time. */
static void
nq_check_keys(struct nats_queue *nq, kvStore *kv)
{
	kvStatus *st = NULL;
	char diff[128] = "";

	if (kvStore_Status(&st, kv) != NATS_OK)
		return;
	if (kvStatus_TTL(st) != nq_dup_window_ms(nq) * NS_PER_MS)
		snprintf(diff, sizeof(diff), "ttl (%" PRId64 " ms, not the "
		    "duplicate window's %" PRId64 ")", kvStatus_TTL(st) /
		    NS_PER_MS, nq_dup_window_ms(nq));
	kvStatus_Destroy(st);
	nq_warn_diff(nq, &nq->warned_keys, "key-value bucket",
	    nq->keys_bucket, diff);
}

/*
 * The bucket of the keys' fingerprints, a file-backed key-value bucket
 * whose entries live as long as the duplicate window, with the stream's
 * replicas: created if missing (a broker that lost its storage loses it
 * with the stream, and gets both again), an existing one used as it is.
 */
static int
nq_ensure_keys(struct nats_queue *nq, char **cause)
{
	kvStore *kv = NULL;
	kvConfig kc;
	jsOptions jo;
	natsStatus s = NATS_OK;
	bool created = false;

	/* the bucket's handle is bound to this context, and its timeouts */
	if (nq->keys_js == NULL) {
		jsOptions_Init(&jo);
		jo.Wait = NQ_KEYS_WAIT_MS;
		s = natsConnection_JetStream(&nq->keys_js, nq->nc, &jo);
	}
	if (s == NATS_OK)
		s = js_KeyValue(&kv, nq->keys_js, nq->keys_bucket);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = nq->keys_bucket;
		kc.Description = "diplom: Idempotency-Key fingerprints";
		kc.History = 1;
		kc.TTL = nq_dup_window_ms(nq) * NS_PER_MS;
		kc.StorageType = js_FileStorage;
		kc.Replicas = (int)nq->replicas;
		s = js_CreateKeyValue(&kv, nq->keys_js, &kc);
		created = s == NATS_OK;
		/* another role may have won the race: look again */
		if (s != NATS_OK)
			s = js_KeyValue(&kv, nq->keys_js, nq->keys_bucket);
	}
	if (s != NATS_OK)
		return nq_fail(cause, QUEUE_EUNAVAIL, s,
		    "key-value bucket %s unavailable: %s", nq->keys_bucket,
		    natsStatus_GetText(s));
	if (created)
		log_info("nats: key-value bucket %s created (ttl %" PRId64
		    " ms)", nq->keys_bucket, nq_dup_window_ms(nq));
	else
		nq_check_keys(nq, kv);
	pthread_mutex_lock(&nq->mu);
	if (nq->keys == NULL) {
		nq->keys = kv;
		kv = NULL;
	}
	pthread_mutex_unlock(&nq->mu);
	kvStore_Destroy(kv);
	return 0;
}

/*
 * Ensure stream and keys' bucket (and consumer for a processor); record
 * the outcome.
 */
void
nq_ensure(struct nats_queue *nq)
{
	char *cause = NULL;
	const char *why;
	bool sok, cok = true, was;

	sok = nq_ensure_stream(nq, &cause) == 0 &&
	    nq_ensure_keys(nq, &cause) == 0;
	if (sok && nq->processor)
		cok = nq_ensure_consumer(nq, &cause) == 0;
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
	/* Losing them is news; still not having them is not. */
	why = cause != NULL ? cause : "out of memory";
	if (!sok || !cok) {
		if (was)
			log_warn("nats: %s", why);
		else
			log_debug("nats: %s", why);
	}
	free(cause);
}

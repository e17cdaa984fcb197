/* queue_memory.c - the bounded in-memory backend, embedded in the processor */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "queue.h"
#include "xmalloc.h"

extern const struct queue_ops queue_memory_ops;

/* Deliveries a worker takes at a time: a few per lock round. */
#define MEM_BATCH 10

/* The memory backend's settings. */
struct mem_settings {
	int64_t queue_size;
};

static const struct config_option mem_options[] = {
	{ "queue-size", "QUEUE_SIZE", CONFIG_INT, "1000", 1, INT32_MAX,
	  offsetof(struct mem_settings, queue_size), "N",
	  "memory backend capacity" },
};

static const struct config_group mem_settings_group = {
	"memory", mem_options, sizeof(mem_options) / sizeof(*mem_options),
	sizeof(struct mem_settings),
};

struct mem_delivery {
	struct delivery d;	/* first: a struct delivery * is one of these */
};

/* A keyed message the queue holds (queued or in flight), by id. */
struct mem_held {
	struct mem_held *next;
	const char *id;			/* the message's own */
	const char *fingerprint;	/* the message's own, or NULL */
};

#define MEM_HELD_BUCKETS 1024

struct mem_queue {
	struct queue q;			/* first, for the cast */
	/* lock guards everything below */
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct data_message **ring;
	size_t cap, head, count;	/* ring slots; cap grows past limit only
					 * for messages put back by reject */
	size_t limit;			/* QUEUE_SIZE */
	size_t in_flight;		/* handed out, not yet settled */
	bool shut;
	uint64_t enqueued, dequeued, redelivered;
	/* keyed messages held: a retry of one is not queued twice */
	struct mem_held *held[MEM_HELD_BUCKETS];
};

/* The slot of id in the held table; lock held. */
static struct mem_held **
held_slot(struct mem_queue *m, const char *id)
{
	size_t h = 5381;
	struct mem_held **pp;

	for (const char *p = id; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	for (pp = &m->held[h % MEM_HELD_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0)
			break;
	}
	return pp;
}

/* Forget a keyed message that leaves the queue for good; lock held. */
static void
held_drop(struct mem_queue *m, const struct data_message *msg)
{
	struct mem_held **pp, *h;

	if (!message_id_is_keyed(msg->id))
		return;
	if ((h = *(pp = held_slot(m, msg->id))) != NULL) {
		*pp = h->next;
		free(h);
	}
}

static struct mem_queue *
mq(struct queue *q)
{
	return (struct mem_queue *)q;
}

static int
mem_open(struct queue **out, const struct config *cfg, char **cause)
{
	const struct mem_settings *ms = config_settings(cfg,
	    &mem_settings_group);
	struct mem_queue *m = calloc(1, sizeof(*m));

	if (m == NULL || ms == NULL || (m->ring = calloc(
	    (size_t)ms->queue_size, sizeof(*m->ring))) == NULL) {
		free(m);
		*cause = strdup("out of memory for the queue");
		return -ENOMEM;
	}
	m->q.ops = &queue_memory_ops;
	m->q.batch = MEM_BATCH;
	m->cap = m->limit = (size_t)ms->queue_size;
	pthread_mutex_init(&m->lock, NULL);
	clock_cond_init(&m->nonempty);
	*out = &m->q;
	return 0;
}

static void
mem_publish(struct queue *q, struct data_message *msg, queue_publish_cb cb,
    void *arg)
{
	struct mem_queue *m = mq(q);
	int rc = 0;
	const char *reason = NULL;
	struct mem_held **slot = NULL;

	pthread_mutex_lock(&m->lock);
	if (message_id_is_keyed(msg->id) &&
	    *(slot = held_slot(m, msg->id)) != NULL) {
		/*
		 * A retry of a message we hold is taken already; the same
		 * key with another body is refused.
		 */
		if (msg->fingerprint != NULL && (*slot)->fingerprint != NULL &&
		    strcmp(msg->fingerprint, (*slot)->fingerprint) != 0) {
			rc = QUEUE_ECONFLICT;
			reason = QUEUE_CONFLICT_REASON;
		} else {
			reason = "duplicate";
		}
	} else if (m->shut) {
		rc = QUEUE_EUNAVAIL;
		reason = "Shutting down";
	} else if (m->count >= m->limit) {
		rc = QUEUE_EFULL;
		reason = "Queue is full";
	} else {
		m->ring[(m->head + m->count++) % m->cap] = msg;
		m->enqueued++;
		if (slot != NULL) {
			*slot = xcalloc(1, sizeof(**slot));
			(*slot)->id = msg->id;
			(*slot)->fingerprint = msg->fingerprint;
		}
		msg = NULL;
		pthread_cond_signal(&m->nonempty);
	}
	pthread_mutex_unlock(&m->lock);
	message_free(msg);
	queue_report(q, cb, arg, rc, reason);
}

static int
mem_receive(struct queue *q, struct delivery **out, int max, int timeout_ms)
{
	struct mem_queue *m = mq(q);
	struct data_message *msgs[64];
	int64_t at = clock_now_ns() + (int64_t)timeout_ms * 1000000;
	int n = 0, rc = 0;

	if (max > (int)(sizeof(msgs) / sizeof(*msgs)))
		max = (int)(sizeof(msgs) / sizeof(*msgs));
	pthread_mutex_lock(&m->lock);
	while (m->count == 0 && !m->shut && rc == 0)
		rc = clock_cond_wait_until(&m->nonempty, &m->lock, at);
	if (m->count == 0 && m->shut) {
		pthread_mutex_unlock(&m->lock);
		return QUEUE_ECLOSED;
	}
	while (n < max && m->count > 0) {
		msgs[n++] = m->ring[m->head];
		m->head = (m->head + 1) % m->cap;
		m->count--;
	}
	m->in_flight += (size_t)n;
	m->dequeued += (uint64_t)n;
	/* more left: let another worker have them */
	if (m->count > 0)
		pthread_cond_signal(&m->nonempty);
	pthread_mutex_unlock(&m->lock);

	for (int i = 0; i < n; i++) {
		struct mem_delivery *md = calloc(1, sizeof(*md));

		if (md == NULL)
			abort();	/* cannot hand back what we took */
		md->d.msg = msgs[i];
		md->d.id = msgs[i]->id;
		md->d.num_delivered = 1;
		out[i] = &md->d;
	}
	return n;
}

static int
mem_ack(struct queue *q, struct delivery *d)
{
	struct mem_queue *m = mq(q);

	pthread_mutex_lock(&m->lock);
	m->in_flight--;
	held_drop(m, d->msg);
	pthread_mutex_unlock(&m->lock);
	message_free(d->msg);
	free(d);
	return 0;
}

static int
mem_reject(struct queue *q, struct delivery *d, enum reject_how how)
{
	struct mem_queue *m = mq(q);

	if (how == REJECT_TERM)
		return mem_ack(q, d);
	/* back to the front, even past capacity: it was accepted already */
	pthread_mutex_lock(&m->lock);
	if (m->count == m->cap) {
		struct data_message **ring = realloc(m->ring,
		    (m->cap + 1) * sizeof(*ring));

		if (ring == NULL)
			abort();
		/* unwrap so the new slot sits at the end of the order */
		m->ring = ring;
		memmove(m->ring + m->head + 1, m->ring + m->head,
		    (m->cap - m->head) * sizeof(*ring));
		m->cap++;
		m->head++;
	}
	m->head = (m->head + m->cap - 1) % m->cap;
	m->ring[m->head] = d->msg;
	m->count++;
	m->in_flight--;
	m->redelivered++;
	pthread_cond_signal(&m->nonempty);
	pthread_mutex_unlock(&m->lock);
	free(d);
	return 0;
}

static void
mem_stats(struct queue *q, struct queue_stats *st)
{
	struct mem_queue *m = mq(q);

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&m->lock);
	st->enqueued = m->enqueued;
	st->dequeued = m->dequeued;
	st->current_size = (int64_t)(m->count + m->in_flight);
	st->ack_pending = (int64_t)m->in_flight;
	st->redelivered = m->redelivered;
	st->healthy = !m->shut;
	pthread_mutex_unlock(&m->lock);
	if (!st->healthy)
		strcpy(st->reason, "draining");
}

static void
mem_shutdown(struct queue *q)
{
	struct mem_queue *m = mq(q);

	pthread_mutex_lock(&m->lock);
	m->shut = true;
	pthread_cond_broadcast(&m->nonempty);
	pthread_mutex_unlock(&m->lock);
}

static void
mem_close(struct queue *q)
{
	struct mem_queue *m = mq(q);

	if (m == NULL)
		return;
	for (size_t i = 0; i < MEM_HELD_BUCKETS; i++) {
		while (m->held[i] != NULL) {
			struct mem_held *h = m->held[i];

			m->held[i] = h->next;
			free(h);
		}
	}
	while (m->count > 0) {
		message_free(m->ring[m->head]);
		m->head = (m->head + 1) % m->cap;
		m->count--;
	}
	pthread_cond_destroy(&m->nonempty);
	pthread_mutex_destroy(&m->lock);
	free(m->ring);
	free(m);
}

const struct queue_ops queue_memory_ops = {
	.name = "memory",
	.in_processor = true,
	.settings = &mem_settings_group,
	.open = mem_open,
	.publish = mem_publish,
	.receive = mem_receive,
	.ack = mem_ack,
	.reject = mem_reject,
	.stats = mem_stats,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

/* queue.c - the front door: every backend by name, every operation traced */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "queue.h"
#include "xmalloc.h"

/* The backends, in the order of --help: a new one is one more X(). */
#define QUEUE_BACKENDS(X) X(queue_memory_ops) X(queue_nats_ops)

#define DECLARE(ops) extern const struct queue_ops ops;
#define ENTRY(ops) &ops,
QUEUE_BACKENDS(DECLARE)
static const struct queue_ops *const backends[] = { QUEUE_BACKENDS(ENTRY) };

/* Upper bounds of the publish latency's buckets, in seconds. */
static const double publish_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001,
	0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

/* A publish under way: its caller's callback, and when it began. */
struct publish_call {
	struct queue *q;
	queue_publish_cb cb;
	void *arg;
	int64_t t0;
};

/* struct delivery's state: the front door's bookkeeping */
enum {
	DELIVERY_HELD = 0x6865,		/* handed to a worker */
	DELIVERY_SETTLED = 0x7365,	/* acked or rejected */
};

const struct queue_ops *
queue_backend_at(size_t i)
{
	return i < sizeof(backends) / sizeof(*backends) ? backends[i] : NULL;
}

int
queue_lookup(const char *name, const struct queue_ops **ops, char **cause)
{
	char *names = NULL;
	size_t len = 0;
	FILE *f;

	for (size_t i = 0; i < sizeof(backends) / sizeof(*backends); i++) {
		if (strcmp(backends[i]->name, name) == 0) {
			if (ops != NULL)
				*ops = backends[i];
			return 0;
		}
	}
	if (cause == NULL)
		return -EINVAL;
	if ((f = open_memstream(&names, &len)) != NULL) {
		for (size_t i = 0; i < sizeof(backends) / sizeof(*backends);
		    i++)
			fprintf(f, "%s%s", i == 0 ? "" : i + 1 ==
			    sizeof(backends) / sizeof(*backends) ? " or " :
			    ", ", backends[i]->name);
		fclose(f);
	}
	if (names == NULL ||
	    asprintf(cause, "expected %s", names) < 0)
		*cause = NULL;
	free(names);
	return -EINVAL;
}

bool
queue_in_processor(const char *name)
{
	const struct queue_ops *ops;
	char *cause = NULL;

	if (queue_lookup(name, &ops, &cause) != 0) {
		free(cause);
		return false;
	}
	return ops->in_processor;
}

int
queue_open(const char *name, const struct config *cfg, struct queue **q,
    char **cause)
{
	const struct queue_ops *ops;
	int rc;

	*q = NULL;
	if ((rc = queue_lookup(name, &ops, cause)) != 0)
		return rc;
	if ((rc = ops->open(q, cfg, cause)) != 0) {
		if (*cause == NULL)
			*cause = strdup("cannot open the queue backend");
		*q = NULL;
		return rc;
	}
	if ((*q)->batch < 1)
		(*q)->batch = 1;
	histogram_init(&(*q)->publish_latency, publish_bounds,
	    sizeof(publish_bounds) / sizeof(*publish_bounds));
	log_debug("queue %s: open, batch %d", name, (*q)->batch);
	return 0;
}

/* A publish's outcome: time it, then tell the caller. */
static void
publish_done(void *arg, int status, const char *reason)
{
	struct publish_call *pc = arg;

	histogram_observe_ns(&pc->q->publish_latency, clock_now_ns() - pc->t0);
	pc->cb(pc->arg, status, reason);
	free(pc);
}

void
queue_publish(struct queue *q, struct data_message *msg, queue_publish_cb cb,
    void *arg)
{
	struct publish_call *pc = xmalloc(sizeof(*pc));

	if (log_enabled(LOG_LEVEL_DEBUG))
		log_debug("queue %s: publish %s", q->ops->name, msg->id);
	pc->q = q;
	pc->cb = cb;
	pc->arg = arg;
	pc->t0 = clock_now_ns();
	q->ops->publish(q, msg, publish_done, pc);
}

void
queue_report(struct queue *q, queue_publish_cb cb, void *arg, int status,
    const char *reason)
{
	if (status == 0) {
		atomic_fetch_add(&q->published, 1);
	} else {
		atomic_fetch_add(&q->refused, 1);
		if (log_enabled(LOG_LEVEL_DEBUG))
			log_debug("queue %s: publish refused (%d): %s",
			    q->ops->name, status, reason != NULL ? reason : "");
	}
	cb(arg, status, reason);
}

int
queue_receive(struct queue *q, struct delivery **out, int max,
    int timeout_ms)
{
	int n = q->ops->receive(q, out, max, timeout_ms);

	for (int i = 0; i < n; i++) {
		out[i]->state = DELIVERY_HELD;
		if (log_enabled(LOG_LEVEL_DEBUG))
			log_debug("queue %s: deliver %s (delivery %ju)",
			    q->ops->name, out[i]->id != NULL ? out[i]->id :
			    "(no id)", (uintmax_t)out[i]->num_delivered);
	}
	if (n > 0)
		atomic_fetch_add(&q->received, (uint64_t)n);
	return n;
}

/*
 * Mark d settled, or refuse: settling a delivery twice, or one the front
 * door never handed out, would free it twice in the backend.
 */
static int
settle_check(struct queue *q, struct delivery *d, const char *how)
{
	if (d->state != DELIVERY_HELD) {
		log_error("queue %s: %s of a delivery that is not held (%s)",
		    q->ops->name, how, d->state == DELIVERY_SETTLED ?
		    "settled already" : "never handed out");
		return QUEUE_EINVAL;
	}
	d->state = DELIVERY_SETTLED;
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_debug("queue %s: %s %s", q->ops->name, how,
		    d->id != NULL ? d->id : "(no id)");
	return 0;
}

int
queue_ack(struct queue *q, struct delivery *d)
{
	int rc;

	if ((rc = settle_check(q, d, "ack")) != 0)
		return rc;
	atomic_fetch_add(&q->acked, 1);
	return q->ops->ack(q, d);
}

int
queue_reject(struct queue *q, struct delivery *d, enum reject_how how)
{
	int rc;

	if ((rc = settle_check(q, d, how == REJECT_TERM ? "terminate" :
	    "retry")) != 0)
		return rc;
	atomic_fetch_add(how == REJECT_TERM ? &q->terminated : &q->retried, 1);
	return q->ops->reject(q, d, how);
}

void
queue_stats(struct queue *q, struct queue_stats *st)
{
	q->ops->stats(q, st);
}

void
queue_counters(struct queue *q, struct queue_counters *c)
{
	c->published = atomic_load(&q->published);
	c->refused = atomic_load(&q->refused);
	c->received = atomic_load(&q->received);
	c->acked = atomic_load(&q->acked);
	c->retried = atomic_load(&q->retried);
	c->terminated = atomic_load(&q->terminated);
}

void
queue_write_histograms(struct queue *q, FILE *out)
{
	histogram_write(&q->publish_latency, out,
	    "diplom_queue_publish_duration_seconds",
	    "Time from handing a message to the queue backend to its answer.");
}

int
queue_batch(const struct queue *q)
{
	return q->batch;
}

uint64_t
queue_max_deliveries(const struct queue *q)
{
	return q->max_deliveries;
}

void
queue_shutdown(struct queue *q)
{
	log_debug("queue %s: shutdown", q->ops->name);
	q->ops->shutdown(q);
}

void
queue_close(struct queue *q)
{
	struct queue_counters c;
	uint64_t settled;

	if (q == NULL)
		return;
	queue_counters(q, &c);
	settled = c.acked + c.retried + c.terminated;
	if (settled != c.received)
		log_error("queue %s: closed with %jd deliveries not settled",
		    q->ops->name, (intmax_t)(c.received - settled));
	q->ops->close(q);
}

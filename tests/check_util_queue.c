/* check_util_queue.c - helpers the Check suites share: messages, publish */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_util.h"
#include "clock.h"

/* A test data_message: id, source "test", a fixed time; payload may be NULL. */
struct data_message *
tu_new_msg(const char *id, const char *payload)
{
	struct data_message *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	m->id = strdup(id);
	m->source = strdup("test");
	m->timestamp = 1732700000;
	if (payload != NULL) {
		m->payload_len = strlen(payload);
		m->payload = malloc(m->payload_len + 1);
		ck_assert_ptr_nonnull(m->payload);
		memcpy(m->payload, payload, m->payload_len + 1);
	}
	return m;
}

/* Ready o for one publish. */
void
tu_outcome_init(struct tu_outcome *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	clock_cond_init(&o->done_cv);
	o->status = 1;
}

/* The queue_publish callback that fills in a struct tu_outcome. */
void
tu_outcome_cb(void *arg, int status, const char *reason)
{
	struct tu_outcome *o = arg;

	pthread_mutex_lock(&o->lock);
	o->done++;
	o->status = status;
	snprintf(o->reason, sizeof(o->reason), "%s",
	    reason != NULL ? reason : "");
	pthread_cond_broadcast(&o->done_cv);
	pthread_mutex_unlock(&o->lock);
}

/* Wait (at most 5 s) for exactly one callback; returns its status. */
int
tu_outcome_wait(struct tu_outcome *o, char *reason, size_t rlen)
{
	int64_t at = clock_now_ns() + 5 * (int64_t)1000000000;
	int status;

	pthread_mutex_lock(&o->lock);
	while (o->done == 0 &&
	    clock_cond_wait_until(&o->done_cv, &o->lock, at) == 0)
		;
	/* exactly once: a second inline callback would have come already */
	ck_assert_msg(o->done == 1, "publish reported %d times", o->done);
	status = o->status;
	if (reason != NULL)
		snprintf(reason, rlen, "%s", o->reason);
	pthread_mutex_unlock(&o->lock);
	return status;
}

/* Publish m (the queue takes it) and wait; returns the outcome's status. */
int
tu_publish(struct queue *q, struct data_message *m, char *reason, size_t rlen)
{
	struct tu_outcome o;
	int status;

	tu_outcome_init(&o);
	queue_publish(q, m, tu_outcome_cb, &o);
	status = tu_outcome_wait(&o, reason, rlen);
	pthread_cond_destroy(&o.done_cv);
	pthread_mutex_destroy(&o.lock);
	return status;
}

/* Publish a new message and assert it was accepted. */
void
tu_publish_ok(struct queue *q, const char *id, const char *payload)
{
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, payload), NULL, 0), 0);
}

/* The queue's counters, by value. */
struct queue_stats
tu_queue_stats(struct queue *q)
{
	struct queue_stats st;

	queue_stats(q, &st);
	return st;
}

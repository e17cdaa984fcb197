/* check_queue_memory.c - the bounded in-memory queue */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "check_util.h"
#include "clock.h"
#include "config.h"
#include "message.h"
#include "queue.h"

Suite *queue_memory_suite(void);

static struct queue *q;

static void
open_queue(int64_t size)
{
	struct config cfg;
	char opt[64], *cause = NULL;
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor", opt,
		NULL };

	snprintf(opt, sizeof(opt), "--queue-size=%lld", (long long)size);
	ck_assert_int_eq(config_parse(&cfg, 3, argv, NULL, &cause),
	    CONFIG_RUN);
	ck_assert_int_eq(queue_open("memory", &cfg, &q, &cause), 0);
	ck_assert_ptr_nonnull(q);
	config_free(&cfg);
}

static void
setup(void)
{
	open_queue(4);
}

static void
teardown(void)
{
	if (q != NULL)
		queue_close(q);
	q = NULL;
}

/* Receive exactly one delivery, waiting up to a second. */
static struct delivery *
receive_one(void)
{
	struct delivery *d[1] = { NULL };

	ck_assert_int_eq(queue_receive(q, d, 1, 1000), 1);
	ck_assert_ptr_nonnull(d[0]);
	ck_assert_ptr_nonnull(d[0]->msg);
	return d[0];
}

/* Receive one delivery, check its id, ack it. */
static void
receive_ack(const char *want)
{
	struct delivery *d = receive_one();

	ck_assert_str_eq(d->msg->id, want);
	ck_assert_int_eq(queue_ack(q, d), 0);
}

/* --- basics ----------------------------------------------------------- */

START_TEST(lookup_finds_memory_backend)
{
	const struct queue_ops *ops = NULL;
	char *cause = NULL;

	ck_assert_int_eq(queue_lookup("memory", &ops, &cause), 0);
	ck_assert_ptr_nonnull(ops);
	ck_assert_str_eq(ops->name, "memory");
	ck_assert(queue_in_processor("memory"));
	ck_assert_int_eq(queue_lookup("redis", &ops, &cause), -EINVAL);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_nonnull(strstr(cause, "memory"));
	free(cause);
}
END_TEST

/* A keyed message the queue holds is not queued twice by a retry. */
START_TEST(retry_of_a_held_keyed_message_is_not_queued_twice)
{
	char id[37], *cause = NULL, reason[64];
	struct delivery *d[4];

	ck_assert_int_eq(message_id_for_key("order-7", id, &cause), 0);
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	/* queued: the retry is taken, and dropped */
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(reason, "duplicate");
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 1);
	/* in flight: the same */
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(reason, "duplicate");
	ck_assert_int_eq(queue_receive(q, d + 1, 4, 100), 0);
	/* given back for a retry: still held */
	ck_assert_int_eq(queue_reject(q, d[0], REJECT_RETRY), 0);
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(reason, "duplicate");
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 1);
	ck_assert_int_eq(queue_ack(q, d[0]), 0);
	/* done: the queue lets it in (the processor asks its results) */
	ck_assert_int_eq(tu_publish(q, tu_new_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_str_ne(reason, "duplicate");
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 1);
	ck_assert_int_eq(queue_ack(q, d[0]), 0);
}
END_TEST

/* A keyed message with its key's fingerprint, as ingest makes one. */
static struct data_message *
keyed_msg(const char *id, const char *payload)
{
	struct data_message *m = tu_new_msg(id, payload);

	ck_assert_int_eq(message_set_key(m, id), 0);
	return m;
}

/* Another body under a held message's key is refused; the same is taken. */
START_TEST(another_body_under_a_held_key_is_a_conflict)
{
	char id[37], *cause = NULL, reason[64];
	struct delivery *d[4];

	ck_assert_int_eq(message_id_for_key("order-8", id, &cause), 0);
	ck_assert_int_eq(tu_publish(q, keyed_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_int_eq(tu_publish(q, keyed_msg(id, "b"), reason,
	    sizeof(reason)), QUEUE_ECONFLICT);
	ck_assert_str_eq(reason, QUEUE_CONFLICT_REASON);
	ck_assert_int_eq(tu_publish(q, keyed_msg(id, "a"), reason,
	    sizeof(reason)), 0);
	ck_assert_str_eq(reason, "duplicate");
	/* in flight: the same */
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 1);
	ck_assert_int_eq(tu_publish(q, keyed_msg(id, "b"), reason,
	    sizeof(reason)), QUEUE_ECONFLICT);
	ck_assert_int_eq(queue_receive(q, d + 1, 4, 100), 0);
	ck_assert_mem_eq(d[0]->msg->payload, "a", 1);
	ck_assert_int_eq(queue_ack(q, d[0]), 0);
}
END_TEST

START_TEST(published_message_is_received_intact)
{
	struct delivery *d;

	tu_publish_ok(q, "m-1", "hello");
	d = receive_one();
	ck_assert_str_eq(d->msg->id, "m-1");
	ck_assert_str_eq(d->id, "m-1");
	ck_assert_uint_eq(d->num_delivered, 1);
	ck_assert_uint_eq(d->msg->payload_len, 5);
	ck_assert_mem_eq(d->msg->payload, "hello", 5);
	ck_assert_str_eq(d->msg->source, "test");
	ck_assert_int_eq(queue_ack(q, d), 0);
}
END_TEST

START_TEST(messages_come_out_in_publish_order)
{
	struct delivery *d[8];
	int n;

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	tu_publish_ok(q, "c", NULL);
	n = queue_receive(q, d, 8, 1000);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(d[0]->msg->id, "a");
	ck_assert_str_eq(d[1]->msg->id, "b");
	ck_assert_str_eq(d[2]->msg->id, "c");
	for (int i = 0; i < n; i++)
		queue_ack(q, d[i]);
	/* wrap around the ring a few times */
	for (int round = 0; round < 5; round++) {
		char id[32];

		for (int i = 0; i < 3; i++) {
			snprintf(id, sizeof(id), "r%d-%d", round, i);
			tu_publish_ok(q, id, NULL);
		}
		for (int i = 0; i < 3; i++) {
			snprintf(id, sizeof(id), "r%d-%d", round, i);
			receive_ack(id);
		}
	}
}
END_TEST

START_TEST(receive_takes_at_most_max)
{
	struct delivery *d[4];

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	tu_publish_ok(q, "c", NULL);
	ck_assert_int_eq(queue_receive(q, d, 2, 1000), 2);
	ck_assert_str_eq(d[0]->msg->id, "a");
	ck_assert_str_eq(d[1]->msg->id, "b");
	queue_ack(q, d[0]);
	queue_ack(q, d[1]);
	receive_ack("c");
}
END_TEST

START_TEST(full_queue_refuses_publish)
{
	char reason[128];
	struct queue_stats st;

	for (int i = 0; i < 4; i++) {
		char id[32];

		snprintf(id, sizeof(id), "m%d", i);
		tu_publish_ok(q, id, "x");
	}
	/* refused: the message is freed by the queue (valgrind checks) */
	ck_assert_int_eq(tu_publish(q, tu_new_msg("over", "x"), reason,
	    sizeof(reason)), QUEUE_EFULL);
	ck_assert_str_eq(reason, "Queue is full");
	st = tu_queue_stats(q);
	ck_assert_uint_eq(st.enqueued, 4);
	ck_assert_int_eq(st.current_size, 4);
	/* one out frees one slot; the oldest comes out first */
	receive_ack("m0");
	tu_publish_ok(q, "m4", "x");
	ck_assert_int_eq(tu_publish(q, tu_new_msg("over2", "x"), NULL, 0),
	    QUEUE_EFULL);
	/* close frees what is still queued */
}
END_TEST

START_TEST(in_flight_messages_do_not_hold_queue_slots)
{
	struct delivery *d[4];

	for (int i = 0; i < 4; i++) {
		char id[32];

		snprintf(id, sizeof(id), "m%d", i);
		tu_publish_ok(q, id, NULL);
	}
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 4);
	/* capacity bounds what waits, so four more fit while four are out */
	for (int i = 4; i < 8; i++) {
		char id[32];

		snprintf(id, sizeof(id), "m%d", i);
		tu_publish_ok(q, id, NULL);
	}
	ck_assert_int_eq(tu_queue_stats(q).current_size, 8);
	for (int i = 0; i < 4; i++)
		queue_ack(q, d[i]);
}
END_TEST

/* --- blocking and shutdown -------------------------------------------- */

START_TEST(receive_times_out_with_nothing_queued)
{
	struct delivery *d[1];
	int64_t t0 = clock_now_ms();

	ck_assert_int_eq(queue_receive(q, d, 1, 200), 0);
	ck_assert_int_ge(clock_now_ms() - t0, 190);
	ck_assert_int_lt(clock_now_ms() - t0, 3000);
	/* zero timeout: just a look */
	ck_assert_int_eq(queue_receive(q, d, 1, 0), 0);
}
END_TEST

static void *
delayed_publisher(void *arg)
{
	(void)arg;
	tu_sleep_ms(300);
	tu_publish(q, tu_new_msg("late", "x"), NULL, 0);
	return NULL;
}

START_TEST(blocking_receive_waits_for_publish_from_another_thread)
{
	struct delivery *d[1];
	pthread_t t;
	int64_t t0 = clock_now_ms(), waited;

	ck_assert_int_eq(pthread_create(&t, NULL, delayed_publisher, NULL), 0);
	ck_assert_int_eq(queue_receive(q, d, 1, 20000), 1);
	waited = clock_now_ms() - t0;
	pthread_join(t, NULL);
	ck_assert_str_eq(d[0]->msg->id, "late");
	ck_assert_int_ge(waited, 250);
	ck_assert_msg(waited < 10000, "woke only after %lld ms",
	    (long long)waited);
	queue_ack(q, d[0]);
}
END_TEST

struct blocked {
	int rc;
	int64_t waited_ms;
};

static void *
blocked_receiver(void *arg)
{
	struct blocked *b = arg;
	struct delivery *d[4];
	int64_t t0 = clock_now_ms();

	b->rc = queue_receive(q, d, 4, 30000);
	b->waited_ms = clock_now_ms() - t0;
	for (int i = 0; i < b->rc; i++)
		queue_ack(q, d[i]);
	return NULL;
}

START_TEST(shutdown_wakes_blocked_receivers)
{
	struct blocked b[3];
	pthread_t t[3];

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, blocked_receiver,
		    &b[i]), 0);
	tu_sleep_ms(200);
	queue_shutdown(q);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(b[i].rc, QUEUE_ECLOSED);
		ck_assert_msg(b[i].waited_ms < 10000, "woke only after %lld ms",
		    (long long)b[i].waited_ms);
	}
}
END_TEST

START_TEST(shutdown_still_hands_out_queued_messages)
{
	struct delivery *d[8];
	struct queue_stats st;

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	tu_publish_ok(q, "c", NULL);
	queue_shutdown(q);
	st = tu_queue_stats(q);
	ck_assert(!st.healthy);
	ck_assert_str_eq(st.reason, "draining");
	ck_assert_int_eq(queue_receive(q, d, 2, 1000), 2);
	ck_assert_str_eq(d[0]->msg->id, "a");
	ck_assert_str_eq(d[1]->msg->id, "b");
	queue_ack(q, d[0]);
	queue_ack(q, d[1]);
	receive_ack("c");
	ck_assert_int_eq(queue_receive(q, d, 8, 1000), QUEUE_ECLOSED);
	ck_assert_int_eq(queue_receive(q, d, 8, 0), QUEUE_ECLOSED);
}
END_TEST

START_TEST(retried_message_is_handed_out_after_shutdown)
{
	struct delivery *d;

	tu_publish_ok(q, "a", NULL);
	queue_shutdown(q);
	d = receive_one();
	ck_assert_int_eq(queue_reject(q, d, REJECT_RETRY), 0);
	receive_ack("a");
	ck_assert_int_eq(queue_receive(q, &d, 1, 100), QUEUE_ECLOSED);
}
END_TEST

START_TEST(publish_after_shutdown_is_refused)
{
	char reason[128];
	int rc;

	queue_shutdown(q);
	/* refused, and the queue frees the message (valgrind checks) */
	rc = tu_publish(q, tu_new_msg("late", "x"), reason, sizeof(reason));
	ck_assert_int_ne(rc, 0);
	ck_assert_int_eq(rc, QUEUE_EUNAVAIL);
	ck_assert_str_ne(reason, "");
	ck_assert_uint_eq(tu_queue_stats(q).enqueued, 0);
}
END_TEST

/* --- stats and reject ----------------------------------------------------- */

START_TEST(stats_count_in_flight_until_settled)
{
	struct delivery *d[2], *e;
	struct queue_stats st = tu_queue_stats(q);

	ck_assert(st.healthy);
	ck_assert_uint_eq(st.enqueued, 0);
	ck_assert_uint_eq(st.dequeued, 0);
	ck_assert_int_eq(st.current_size, 0);

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	tu_publish_ok(q, "c", NULL);
	st = tu_queue_stats(q);
	ck_assert_uint_eq(st.enqueued, 3);
	ck_assert_uint_eq(st.dequeued, 0);
	ck_assert_int_eq(st.current_size, 3);

	ck_assert_int_eq(queue_receive(q, d, 2, 1000), 2);
	st = tu_queue_stats(q);
	ck_assert_uint_eq(st.dequeued, 2);
	ck_assert_int_eq(st.current_size, 3);	/* two still in flight */

	queue_ack(q, d[0]);
	ck_assert_int_eq(tu_queue_stats(q).current_size, 2);
	ck_assert_int_eq(queue_reject(q, d[1], REJECT_TERM), 0);
	st = tu_queue_stats(q);
	ck_assert_int_eq(st.current_size, 1);
	ck_assert_uint_eq(st.redelivered, 0);

	e = receive_one();
	ck_assert_int_eq(queue_reject(q, e, REJECT_RETRY), 0);
	st = tu_queue_stats(q);
	ck_assert_int_eq(st.current_size, 1);
	ck_assert_uint_eq(st.redelivered, 1);
	receive_ack("c");
	st = tu_queue_stats(q);
	ck_assert_uint_eq(st.enqueued, 3);
	ck_assert_uint_eq(st.dequeued, 4);	/* c went out twice */
	ck_assert_int_eq(st.current_size, 0);
	ck_assert(st.healthy);
}
END_TEST

START_TEST(reject_retry_puts_message_back_at_front)
{
	struct delivery *d;

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	d = receive_one();
	ck_assert_str_eq(d->msg->id, "a");
	ck_assert_int_eq(queue_reject(q, d, REJECT_RETRY), 0);
	receive_ack("a");
	receive_ack("b");
}
END_TEST

START_TEST(reject_retry_on_full_queue_goes_back_to_front)
{
	struct delivery *d;

	tu_publish_ok(q, "a", NULL);
	tu_publish_ok(q, "b", NULL);
	tu_publish_ok(q, "c", NULL);
	tu_publish_ok(q, "d", NULL);
	d = receive_one();
	ck_assert_str_eq(d->msg->id, "a");
	tu_publish_ok(q, "e", NULL);		/* full again, and wrapped */
	ck_assert_int_eq(tu_publish(q, tu_new_msg("f", NULL), NULL, 0),
	    QUEUE_EFULL);
	/* accepted once: never dropped, even past capacity */
	ck_assert_int_eq(queue_reject(q, d, REJECT_RETRY), 0);
	ck_assert_int_eq(tu_queue_stats(q).current_size, 5);
	receive_ack("a");
	receive_ack("b");
	receive_ack("c");
	receive_ack("d");
	receive_ack("e");
	ck_assert_int_eq(tu_queue_stats(q).current_size, 0);
}
END_TEST

START_TEST(capacity_returns_to_queue_size_after_retry_past_it)
{
	struct delivery *d;
	char id[32];

	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		tu_publish_ok(q, id, NULL);
	}
	d = receive_one();
	tu_publish_ok(q, "a4", NULL);
	ck_assert_int_eq(queue_reject(q, d, REJECT_RETRY), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		receive_ack(id);
	}
	/* empty again: QUEUE_SIZE (4) fit, the fifth is refused */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "b%d", i);
		tu_publish_ok(q, id, NULL);
	}
	ck_assert_int_eq(tu_publish(q, tu_new_msg("b4", NULL), NULL, 0),
	    QUEUE_EFULL);
}
END_TEST

START_TEST(reject_retry_on_full_queue_works_at_every_ring_offset)
{
	char id[32];

	/* move the ring's head through every slot, then overfill by one */
	for (int shift = 0; shift < 6; shift++) {
		struct delivery *d;

		for (int i = 0; i < shift; i++) {
			snprintf(id, sizeof(id), "s%d", i);
			tu_publish_ok(q, id, NULL);
			receive_ack(id);
		}
		for (int i = 0; i < 4; i++) {
			snprintf(id, sizeof(id), "%d-%d", shift, i);
			tu_publish_ok(q, id, NULL);
		}
		d = receive_one();
		snprintf(id, sizeof(id), "%d-4", shift);
		tu_publish_ok(q, id, NULL);
		ck_assert_int_eq(queue_reject(q, d, REJECT_RETRY), 0);
		for (int i = 0; i < 5; i++) {
			snprintf(id, sizeof(id), "%d-%d", shift, i);
			receive_ack(id);
		}
		ck_assert_int_eq(tu_queue_stats(q).current_size, 0);
	}
}
END_TEST

/* --- many producers and consumers --------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 5000,
	TOTAL = PRODUCERS * PER_PRODUCER };

struct mpmc {
	pthread_mutex_t lock;
	unsigned char seen[TOTAL];	/* times each id was received */
	int bad_ids;
	long full_retries;
};

struct producer {
	struct mpmc *shared;
	int index;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	char id[32];
	long retries = 0;

	for (int i = 0; i < PER_PRODUCER; i++) {
		int n = p->index * PER_PRODUCER + i, rc;

		snprintf(id, sizeof(id), "%d", n);
		while ((rc = tu_publish(q, tu_new_msg(id, "x"), NULL, 0)) ==
		    QUEUE_EFULL) {
			retries++;
			sched_yield();
		}
		if (rc != 0)
			abort();	/* ck_assert is not for other threads */
	}
	pthread_mutex_lock(&p->shared->lock);
	p->shared->full_retries += retries;
	pthread_mutex_unlock(&p->shared->lock);
	return NULL;
}

static void *
consumer_main(void *arg)
{
	struct mpmc *m = arg;
	struct delivery *d[16];
	int n;

	while ((n = queue_receive(q, d, 16, 100)) != QUEUE_ECLOSED) {
		for (int i = 0; i < n; i++) {
			char *end;
			long id = strtol(d[i]->msg->id, &end, 10);

			pthread_mutex_lock(&m->lock);
			if (*end != '\0' || id < 0 || id >= TOTAL)
				m->bad_ids++;
			else if (m->seen[id] < UCHAR_MAX)
				m->seen[id]++;
			pthread_mutex_unlock(&m->lock);
			queue_ack(q, d[i]);
		}
	}
	return NULL;
}

START_TEST(many_producers_and_consumers_lose_and_double_nothing)
{
	static struct mpmc m;
	struct producer p[PRODUCERS];
	pthread_t pt[PRODUCERS], ct[CONSUMERS];
	struct queue_stats st;
	int missing = 0, doubled = 0;

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.lock, NULL);
	queue_close(q);
	q = NULL;
	open_queue(64);

	for (int i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(pthread_create(&ct[i], NULL, consumer_main,
		    &m), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct producer){ &m, i };
		ck_assert_int_eq(pthread_create(&pt[i], NULL, producer_main,
		    &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(pt[i], NULL);
	queue_shutdown(q);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(ct[i], NULL);

	for (int i = 0; i < TOTAL; i++) {
		if (m.seen[i] == 0)
			missing++;
		else if (m.seen[i] > 1)
			doubled++;
	}
	ck_assert_int_eq(m.bad_ids, 0);
	ck_assert_msg(missing == 0 && doubled == 0,
	    "%d ids missing, %d received more than once", missing, doubled);
	st = tu_queue_stats(q);
	ck_assert_uint_eq(st.enqueued, TOTAL);
	ck_assert_uint_eq(st.dequeued, TOTAL);
	ck_assert_int_eq(st.current_size, 0);
	pthread_mutex_destroy(&m.lock);
}
END_TEST

Suite *
queue_memory_suite(void)
{
	Suite *s = suite_create("queue_memory");
	TCase *tc;

	tc = tcase_create("queue");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, lookup_finds_memory_backend);
	tcase_add_test(tc, published_message_is_received_intact);
	tcase_add_test(tc, retry_of_a_held_keyed_message_is_not_queued_twice);
	tcase_add_test(tc, another_body_under_a_held_key_is_a_conflict);
	tcase_add_test(tc, messages_come_out_in_publish_order);
	tcase_add_test(tc, receive_takes_at_most_max);
	tcase_add_test(tc, full_queue_refuses_publish);
	tcase_add_test(tc, in_flight_messages_do_not_hold_queue_slots);
	tcase_add_test(tc, receive_times_out_with_nothing_queued);
	tcase_add_test(tc, blocking_receive_waits_for_publish_from_another_thread);
	tcase_add_test(tc, shutdown_wakes_blocked_receivers);
	tcase_add_test(tc, shutdown_still_hands_out_queued_messages);
	tcase_add_test(tc, retried_message_is_handed_out_after_shutdown);
	tcase_add_test(tc, publish_after_shutdown_is_refused);
	tcase_add_test(tc, stats_count_in_flight_until_settled);
	tcase_add_test(tc, reject_retry_puts_message_back_at_front);
	tcase_add_test(tc, reject_retry_on_full_queue_goes_back_to_front);
	tcase_add_test(tc, reject_retry_on_full_queue_works_at_every_ring_offset);
	tcase_add_test(tc, capacity_returns_to_queue_size_after_retry_past_it);
	tcase_add_test(tc, many_producers_and_consumers_lose_and_double_nothing);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(queue_memory_suite)

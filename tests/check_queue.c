/* check_queue.c - the front door: backends by name, counted operations */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "config.h"
#include "log.h"
#include "queue.h"

Suite *queue_suite(void);

static struct config cfg;
static struct queue *q;

static void
setup(void)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)"--queue-size=8", NULL };
	char *cause = NULL;

	log_init("check_queue", LOG_LEVEL_ERROR);
	ck_assert_int_eq(config_parse(&cfg, 3, argv, NULL, &cause),
	    CONFIG_RUN);
	ck_assert_int_eq(queue_open("memory", &cfg, &q, &cause), 0);
}

static void
teardown(void)
{
	queue_close(q);
	q = NULL;
	config_free(&cfg);
}

static int last_status;

static void
on_published(void *arg, int status, const char *reason)
{
	(void)arg;
	(void)reason;
	last_status = status;
}

static void
publish(const char *id)
{
	struct data_message *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	m->id = strdup(id);
	last_status = 1;
	queue_publish(q, m, on_published, NULL);
	ck_assert_int_eq(last_status, 0);
}

START_TEST(every_backend_is_listed_once_by_name)
{
	const struct queue_ops *ops, *found;
	char *cause = NULL;
	size_t n = 0;

	for (size_t i = 0; (ops = queue_backend_at(i)) != NULL; i++, n++) {
		ck_assert_int_eq(queue_lookup(ops->name, &found, &cause), 0);
		ck_assert_ptr_eq(found, ops);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(queue_backend_at(j)->name, ops->name);
	}
	ck_assert_uint_ge(n, 2);
}
END_TEST

START_TEST(unknown_name_fails_cleanly_with_the_known_ones)
{
	struct queue *none = (struct queue *)&none;
	char *cause = NULL;

	ck_assert_int_eq(queue_open("redis", &cfg, &none, &cause), -EINVAL);
	ck_assert_ptr_null(none);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "memory") != NULL, "cause: %s", cause);
	free(cause);
	ck_assert(!queue_in_processor("redis"));
}
END_TEST

START_TEST(operations_are_counted)
{
	struct delivery *d[4];
	struct queue_counters c;

	publish("a");
	publish("b");
	publish("c");
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 3);
	ck_assert_int_eq(queue_ack(q, d[0]), 0);
	ck_assert_int_eq(queue_reject(q, d[1], REJECT_RETRY), 0);
	ck_assert_int_eq(queue_reject(q, d[2], REJECT_TERM), 0);
	queue_counters(q, &c);
	ck_assert_uint_eq(c.published, 3);
	ck_assert_uint_eq(c.received, 3);
	ck_assert_uint_eq(c.acked, 1);
	ck_assert_uint_eq(c.retried, 1);
	ck_assert_uint_eq(c.terminated, 1);
	/* the one given back comes again */
	ck_assert_int_eq(queue_receive(q, d, 4, 1000), 1);
	ck_assert_int_eq(queue_ack(q, d[0]), 0);
}
END_TEST

START_TEST(a_delivery_never_handed_out_is_not_settled)
{
	struct delivery fake = { 0 };
	struct queue_counters c;

	ck_assert_int_eq(queue_ack(q, &fake), QUEUE_EINVAL);
	ck_assert_int_eq(queue_reject(q, &fake, REJECT_RETRY), QUEUE_EINVAL);
	queue_counters(q, &c);
	ck_assert_uint_eq(c.acked + c.retried, 0);
}
END_TEST

START_TEST(batch_is_the_backends_own)
{
	ck_assert_int_ge(queue_batch(q), 1);
}
END_TEST

Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("front_door");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_backend_is_listed_once_by_name);
	tcase_add_test(tc, unknown_name_fails_cleanly_with_the_known_ones);
	tcase_add_test(tc, operations_are_counted);
	tcase_add_test(tc, a_delivery_never_handed_out_is_not_settled);
	tcase_add_test(tc, batch_is_the_backends_own);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(queue_suite)

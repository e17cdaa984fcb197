/* check_worker_pool.c - the worker pool over the memory queue */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check_main.h"
#include "check_util.h"
#include "clock.h"
#include "config.h"
#include "queue.h"
#include "result_store.h"
#include "role.h"
#include "worker_pool.h"

Suite *worker_pool_suite(void);

static struct queue *q;

static char wp_dir[PATH_MAX - 64];
static char wp_db[PATH_MAX];
static struct result_store *wp_rs;
static struct config wp_cfg;

/* The processor's process step, as the role gives it to the pool. */
static void
process(void *ctx, const struct delivery *d, struct processing_result *res)
{
	(void)ctx;
	processor_process(d, res, 0);
}

static void
pool_setup(void)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)"--workers=3", (char *)"--queue-size=1000", NULL };
	char *cause = NULL;

	ck_assert_int_eq(config_parse(&wp_cfg, 4, argv, NULL, &cause),
	    CONFIG_RUN);
	tu_temp_dir(wp_dir, sizeof(wp_dir), "check_worker_pool");
	snprintf(wp_db, sizeof(wp_db), "%s/results.db", wp_dir);
	ck_assert_msg(result_store_open(&wp_rs, wp_db, &cause) == 0, "%s",
	    cause != NULL ? cause : "?");
	ck_assert_int_eq(queue_open("memory", &wp_cfg, &q, &cause), 0);
}

static void
pool_teardown(void)
{
	if (q != NULL)
		queue_close(q);
	q = NULL;
	result_store_close(wp_rs);
	wp_rs = NULL;
	config_free(&wp_cfg);
	tu_remove_db(wp_db);
	rmdir(wp_dir);
}

START_TEST(worker_pool_processes_commits_and_acks_every_message)
{
	enum { N = 100 };
	struct worker_pool *wp = NULL;
	struct worker_pool_stats ws;
	struct processing_result got;
	char *cause = NULL, id[32], payload[32], want[64];
	int64_t deadline;

	ck_assert_int_eq(worker_pool_start(&wp, &(struct worker_pool_opts){
	    .q = q, .rs = wp_rs, .workers = 3, .process = process }, &cause), 0);
	ck_assert_ptr_nonnull(wp);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "wp-%03d", i);
		snprintf(payload, sizeof(payload), "payload-%d", i);
		tu_publish_ok(q, id, payload);
	}
	deadline = clock_now_ms() + 10000;
	do {
		worker_pool_stats(wp, &ws);
		if (ws.processed >= N)
			break;
		tu_sleep_ms(10);
	} while (clock_now_ms() < deadline);
	ck_assert_uint_eq(ws.processed, N);
	ck_assert_uint_eq(ws.errors, 0);
	ck_assert_int_gt(ws.total_duration_ns, 0);

	queue_shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_free(wp);
	ck_assert_int_eq(tu_queue_stats(q).current_size, 0);
	ck_assert_uint_eq(tu_queue_stats(q).dequeued, N);

	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "wp-%03d", i);
		snprintf(want, sizeof(want), "PROCESSED_payload-%d", i);
		ck_assert_msg(result_store_get(wp_rs, id, &got) == 0,
		    "no result for %s", id);
		ck_assert(got.success);
		ck_assert_str_eq(got.source, "test");
		ck_assert_int_eq(got.timestamp, 1732700000);
		ck_assert_int_eq(got.deliveries, 1);
		ck_assert_uint_eq(got.result_len, strlen(want));
		ck_assert_mem_eq(got.result, want, got.result_len);
		result_clear(&got);
	}
}
END_TEST

START_TEST(worker_pool_drains_backlog_queued_before_shutdown)
{
	struct worker_pool *wp = NULL;
	struct worker_pool_stats ws;
	struct processing_result got;
	char *cause = NULL, id[32];

	/* queued before the pool starts, shut before it can take them all */
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "bk-%d", i);
		tu_publish_ok(q, id, "b");
	}
	ck_assert_int_eq(worker_pool_start(&wp, &(struct worker_pool_opts){
	    .q = q, .rs = wp_rs, .workers = 3, .process = process }, &cause), 0);
	queue_shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_stats(wp, &ws);
	worker_pool_free(wp);
	ck_assert_uint_eq(ws.processed, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "bk-%d", i);
		ck_assert_int_eq(result_store_get(wp_rs, id, &got), 0);
		result_clear(&got);
	}
}
END_TEST

/* Poll answered for up to ms. */
static bool
pool_answers_within(struct worker_pool *wp, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (worker_pool_answered(wp))
			return true;
		tu_sleep_ms(10);
	}
	return worker_pool_answered(wp);
}

static atomic_bool slow_release;

/* A process step that takes until released: long work, not a hang. */
static void
slow_process(void *ctx, const struct delivery *d,
    struct processing_result *res)
{
	while (!atomic_load(&slow_release))
		tu_sleep_ms(10);
	process(ctx, d, res);
}

START_TEST(worker_pool_answers_pings_idle_and_busy)
{
	struct worker_pool *wp = NULL;
	char *cause = NULL;

	atomic_store(&slow_release, false);
	ck_assert_int_eq(worker_pool_start(&wp, &(struct worker_pool_opts){
	    .q = q, .rs = wp_rs, .workers = 2, .process = slow_process },
	    &cause), 0);
	worker_pool_ping(wp);
	ck_assert(pool_answers_within(wp, 2500));
	tu_publish_ok(q, "slow-1", "s");
	tu_sleep_ms(200);
	worker_pool_ping(wp);
	ck_assert(pool_answers_within(wp, 2500));
	atomic_store(&slow_release, true);
	queue_shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_free(wp);
}
END_TEST

/*
 * A store that stalls (another writer holds it) while large messages wait:
 * the workers stop taking them once the ring and the batch being committed
 * hold their bytes, and all are committed once the store is free.
 */
START_TEST(worker_pool_holds_bytes_not_just_messages_while_the_store_stalls)
{
	enum { N = 100, BIG = 1 << 20 };
	struct worker_pool *wp = NULL;
	struct worker_pool_stats ws;
	struct processing_result got;
	sqlite3 *holder = NULL;
	char *cause = NULL, *big = malloc(BIG + 1), id[32];
	uint64_t taken;
	int64_t deadline;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', BIG);
	big[BIG] = '\0';
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "big-%03d", i);
		tu_publish_ok(q, id, big);
	}
	free(big);
	ck_assert_int_eq(sqlite3_open(wp_db, &holder), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(worker_pool_start(&wp, &(struct worker_pool_opts){
	    .q = q, .rs = wp_rs, .workers = 3, .process = process }, &cause), 0);
	tu_sleep_ms(1500);
	taken = tu_queue_stats(q).dequeued;
	/*
	 * 16 MiB in the ring and as much in the batch the committer holds,
	 * at 2 MiB a message (its payload and its result), and what each
	 * worker took at once: well short of the 100 that a bound in
	 * messages alone lets the workers take.
	 */
	ck_assert_msg(taken <= 16 + 3 * (uint64_t)queue_batch(q) + 2,
	    "%ju of %d taken while the store stalls", (uintmax_t)taken, N);
	ck_assert_int_eq(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(holder);
	deadline = clock_now_ms() + 30000;
	do {
		worker_pool_stats(wp, &ws);
		if (ws.processed >= N)
			break;
		tu_sleep_ms(20);
	} while (clock_now_ms() < deadline);
	ck_assert_uint_eq(ws.processed, N);
	queue_shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_free(wp);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "big-%03d", i);
		ck_assert_msg(result_store_get(wp_rs, id, &got) == 0,
		    "no result for %s", id);
		ck_assert(got.success);
		result_clear(&got);
	}
}
END_TEST

Suite *
worker_pool_suite(void)
{
	Suite *s = suite_create("worker_pool");
	TCase *tc = tcase_create("worker_pool");

	tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, worker_pool_processes_commits_and_acks_every_message);
	tcase_add_test(tc, worker_pool_answers_pings_idle_and_busy);
	tcase_add_test(tc, worker_pool_drains_backlog_queued_before_shutdown);
	tcase_add_test(tc,
	    worker_pool_holds_bytes_not_just_messages_while_the_store_stalls);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(worker_pool_suite)

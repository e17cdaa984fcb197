/* check_worker_pool.c - the worker pool over the memory queue */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "queue.h"
#include "result_store.h"
#include "worker_pool.h"

Suite *worker_pool_suite(void);

static struct queue *q;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static struct data_message *
new_msg(const char *id, const char *payload)
{
	struct data_message *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	m->id = strdup(id);
	m->source = strdup("test");
	m->timestamp = 1732700000;
	if (payload != NULL) {
		m->payload_len = strlen(payload);
		m->payload = malloc(m->payload_len + 1);
		memcpy(m->payload, payload, m->payload_len + 1);
	}
	return m;
}

/* The outcome of one publish; the callback may run on any thread. */
struct outcome {
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	int done;		/* callbacks seen: must end up exactly 1 */
	int status;
	char reason[128];
};

static void
publish_cb(void *arg, int status, const char *reason)
{
	struct outcome *o = arg;

	pthread_mutex_lock(&o->lock);
	o->done++;
	o->status = status;
	snprintf(o->reason, sizeof(o->reason), "%s",
	    reason != NULL ? reason : "");
	pthread_cond_broadcast(&o->done_cv);
	pthread_mutex_unlock(&o->lock);
}

/* Publish and wait for the outcome; returns its status. */
static int
publish_reason(struct queue *qq, struct data_message *m, char *reason,
    size_t rlen)
{
	struct outcome o = { .done = 0 };
	int status;

	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.done_cv, NULL);
	qq->ops->publish(qq, m, publish_cb, &o);
	pthread_mutex_lock(&o.lock);
	while (o.done == 0)
		pthread_cond_wait(&o.done_cv, &o.lock);
	pthread_mutex_unlock(&o.lock);
	/* exactly once: a second callback would have run inline already */
	ck_assert_int_eq(o.done, 1);
	status = o.status;
	if (reason != NULL)
		snprintf(reason, rlen, "%s", o.reason);
	pthread_cond_destroy(&o.done_cv);
	pthread_mutex_destroy(&o.lock);
	return status;
}

static int
publish(struct data_message *m)
{
	return publish_reason(q, m, NULL, 0);
}

static void
publish_ok(const char *id, const char *payload)
{
	ck_assert_int_eq(publish(new_msg(id, payload)), 0);
}

static struct queue_stats
stats(void)
{
	struct queue_stats st;

	q->ops->stats(q, &st);
	return st;
}

static char wp_dir[PATH_MAX - 64];
static char wp_db[PATH_MAX];
static struct result_store *wp_rs;
static struct config wp_cfg;

static void
pool_setup(void)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)"--workers=3", (char *)"--queue-size=1000", NULL };
	char *cause = NULL;
	const char *tmp = getenv("TMPDIR");

	ck_assert_int_eq(config_parse(&wp_cfg, 4, argv, NULL, &cause),
	    CONFIG_RUN);
	snprintf(wp_dir, sizeof(wp_dir), "%s/check_worker_pool.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(wp_dir));
	snprintf(wp_db, sizeof(wp_db), "%s/results.db", wp_dir);
	ck_assert_msg(result_store_open(&wp_rs, wp_db, &cause) == 0, "%s",
	    cause != NULL ? cause : "?");
	ck_assert_int_eq(queue_memory_ops.open(&q, &wp_cfg, &cause), 0);
}

static void
pool_teardown(void)
{
	char p[PATH_MAX + 8];

	if (q != NULL)
		q->ops->close(q);
	q = NULL;
	result_store_close(wp_rs);
	wp_rs = NULL;
	config_free(&wp_cfg);
	unlink(wp_db);
	snprintf(p, sizeof(p), "%s-wal", wp_db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", wp_db);
	unlink(p);
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

	ck_assert_int_eq(worker_pool_start(&wp, q, wp_rs, &wp_cfg, &cause), 0);
	ck_assert_ptr_nonnull(wp);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "wp-%03d", i);
		snprintf(payload, sizeof(payload), "payload-%d", i);
		publish_ok(id, payload);
	}
	deadline = now_ms() + 10000;
	do {
		worker_pool_stats(wp, &ws);
		if (ws.processed >= N)
			break;
		sleep_ms(10);
	} while (now_ms() < deadline);
	ck_assert_uint_eq(ws.processed, N);
	ck_assert_uint_eq(ws.errors, 0);
	ck_assert_int_gt(ws.total_duration_ns, 0);

	q->ops->shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_free(wp);
	ck_assert_int_eq(stats().current_size, 0);
	ck_assert_uint_eq(stats().dequeued, N);

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
		publish_ok(id, "b");
	}
	ck_assert_int_eq(worker_pool_start(&wp, q, wp_rs, &wp_cfg, &cause), 0);
	q->ops->shutdown(q);
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

START_TEST(worker_process_prefixes_payload)
{
	struct delivery d = { 0 };
	struct processing_result res;

	d.msg = new_msg("wp-x", "hello");
	d.id = d.msg->id;
	d.num_delivered = 1;
	worker_process(&d, &res, 0);
	ck_assert(res.success);
	ck_assert_str_eq(res.message_id, "wp-x");
	ck_assert_uint_eq(res.result_len, 15);
	ck_assert_mem_eq(res.result, "PROCESSED_hello", 15);
	ck_assert_int_gt(res.processed_at, 0);
	result_clear(&res);
	message_free(d.msg);
}
END_TEST

START_TEST(worker_process_turns_undecodable_bytes_into_failed_result)
{
	static const char raw[] = "{\"id\":\"r-1\",\"payload\":\"!!\"}";
	struct delivery d = { 0 };
	struct processing_result res;

	d.data = raw;
	d.len = sizeof(raw) - 1;
	d.id = "r-1";
	d.num_delivered = 1;
	worker_process(&d, &res, 0);
	ck_assert(!res.success);
	ck_assert_str_eq(res.message_id, "r-1");
	ck_assert_ptr_nonnull(res.error);
	ck_assert_ptr_nonnull(strstr(res.error, "payload"));
	result_clear(&res);
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
	tcase_add_test(tc, worker_pool_drains_backlog_queued_before_shutdown);
	tcase_add_test(tc, worker_process_prefixes_payload);
	tcase_add_test(tc, worker_process_turns_undecodable_bytes_into_failed_result);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(worker_pool_suite)

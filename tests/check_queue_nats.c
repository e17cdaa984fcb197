/* check_queue_nats.c - the NATS JetStream backend against a real nats-server */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <nats/nats.h>

#include "check_main.h"
#include "check_util.h"
#include "clock.h"
#include "config.h"
#include "message.h"
#include "queue.h"
#include "result_store.h"
#include "role.h"
#include "worker_pool.h"

Suite *queue_nats_suite(void);

/* The broker of the running test; each test (forked) has its own. */
static pid_t srv_pid = -1;
static int srv_port;
static char srv_dir[64];
static struct config cfg;
static int have_server;

/* nats-server -js on srv_port with its store in srv_dir. */
static void
server_start(void)
{
	char port[16];
	int64_t until;

	snprintf(port, sizeof(port), "%d", srv_port);
	srv_pid = fork();
	ck_assert_int_ge(srv_pid, 0);
	if (srv_pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		/* Dies with the test even when a failed assert exits it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1",
		    "-p", port, "-sd", srv_dir, (char *)NULL);
		_exit(127);
	}
	until = clock_now_ms() + 10000;
	while (!tu_port_open(srv_port)) {
		ck_assert_msg(clock_now_ms() < until,
		    "nats-server did not start");
		tu_sleep_ms(20);
	}
}

/* Kill the broker (SIGKILL: a crash, its store stays). */
static void
server_kill(void)
{
	if (srv_pid > 0) {
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, NULL, 0);
		srv_pid = -1;
	}
}

static void
cleanup_at_exit(void)
{
	char cmd[128];

	server_kill();
	if (srv_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv_dir);
		if (system(cmd) != 0)
			srv_dir[0] = '\0';
	}
}

static int
nats_server_found(void)
{
	return system("command -v nats-server >/dev/null 2>&1") == 0;
}

static char url_opt[80];
static const char *extra_opts[8];
static int n_extra;

/* Parse the fixture's settings, and those set_option added. */
static void
parse_settings(void)
{
	const char *argv[16] = { "check_queue_nats", "--role=processor",
		"--workers=2", "--log-level=error", url_opt };
	int argc = 5;
	char *cause = NULL;

	for (int i = 0; i < n_extra; i++)
		argv[argc++] = extra_opts[i];
	config_free(&cfg);
	ck_assert_msg(config_parse(&cfg, argc, (char **)argv, NULL, &cause) ==
	    CONFIG_RUN, "%s", cause != NULL ? cause : "");
}

/* One more option for the queue the test opens, as on the command line. */
static void
set_option(const char *opt)
{
	ck_assert_int_lt(n_extra, 8);
	extra_opts[n_extra++] = opt;
	parse_settings();
}

/* The worker pool's process step: the processor's. */
static void
process(void *ctx, const struct delivery *d, struct processing_result *res)
{
	(void)ctx;
	processor_process(d, res, 0);
}

/* Fixture: defaults for a processor, a fresh store, no broker yet. */
static void
setup(void)
{

	have_server = nats_server_found();
	if (!have_server) {
		const char *req = getenv("DIPLOM_REQUIRE_NATS");

		ck_assert_msg(req == NULL || strcmp(req, "1") != 0,
		    "nats-server not found and DIPLOM_REQUIRE_NATS=1");
		return;
	}
	snprintf(srv_dir, sizeof(srv_dir), "/tmp/check-nats.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(srv_dir));
	atexit(cleanup_at_exit);
	srv_port = tu_free_port();
	snprintf(url_opt, sizeof(url_opt), "--nats-url=nats://127.0.0.1:%d",
	    srv_port);
	n_extra = 0;
	memset(&cfg, 0, sizeof(cfg));
	parse_settings();
	log_init("check_queue_nats", LOG_LEVEL_ERROR);
}

static void
teardown(void)
{
	if (have_server)
		config_free(&cfg);
	cleanup_at_exit();
}

/* Skip the test body when there is no nats-server (and none required). */
#define NEED_SERVER()							\
	do {								\
		if (!have_server)					\
			return;						\
	} while (0)

/* Publish one message and wait for its PubAck outcome. */
static int
publish_wait(struct queue *q, const char *id, const char *payload)
{
	return tu_publish(q, tu_new_msg(id, payload), NULL, 0);
}

static struct queue *
open_queue(void)
{
	struct queue *q = NULL;
	char *cause = NULL;
	int rc = queue_open("nats", &cfg, &q, &cause);

	ck_assert_msg(rc == 0, "open: %s", cause != NULL ? cause : "?");
	ck_assert_ptr_nonnull(q);
	return q;
}

/* Poll stats until healthy (or 10 s). */
static int
wait_healthy(struct queue *q, int want)
{
	struct queue_stats st;
	int64_t until = clock_now_ms() + 10000;

	do {
		queue_stats(q, &st);
		if (st.healthy == (want != 0))
			return 1;
		tu_sleep_ms(50);
	} while (clock_now_ms() < until);
	return 0;
}

/* Poll stats until current_size == want (or 10 s). */
static int
wait_backlog(struct queue *q, int64_t want)
{
	struct queue_stats st;
	int64_t until = clock_now_ms() + 10000;

	do {
		queue_stats(q, &st);
		if (st.current_size == want)
			return 1;
		tu_sleep_ms(100);
	} while (clock_now_ms() < until);
	return 0;
}

/* Receive until n deliveries arrived (or 10 s); acks them all. */
static int
receive_ack(struct queue *q, int n)
{
	struct delivery *ds[16];
	int64_t until = clock_now_ms() + 10000;
	int got = 0, k;

	while (got < n && clock_now_ms() < until) {
		k = queue_receive(q, ds, 16, 200);
		ck_assert_int_ge(k, 0);
		for (int i = 0; i < k; i++) {
			ck_assert_ptr_nonnull(ds[i]->data);
			ck_assert_ptr_null(ds[i]->msg);
			ck_assert_int_eq(queue_ack(q, ds[i]), 0);
		}
		got += k;
	}
	return got;
}

START_TEST(repeated_msg_id_is_stored_once)
{
	struct delivery *ds[16];
	struct queue_stats st;
	struct queue *q;
	int k;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "dup-1", "one"), 0);
	ck_assert_int_eq(publish_wait(q, "dup-1", "one again"), 0);
	ck_assert(wait_backlog(q, 1));

	k = queue_receive(q, ds, 16, 5000);
	ck_assert_int_eq(k, 1);
	ck_assert_str_eq(ds[0]->id, "dup-1");
	ck_assert_uint_eq(ds[0]->num_delivered, 1);
	ck_assert_int_eq(queue_ack(q, ds[0]), 0);
	ck_assert_int_eq(queue_receive(q, ds, 16, 700), 0);
	queue_stats(q, &st);
	ck_assert_uint_eq(st.enqueued, 2);
	ck_assert_uint_eq(st.dequeued, 1);
	queue_close(q);
}
END_TEST

START_TEST(a_replay_with_its_own_dedup_id_is_not_dropped)
{
	struct delivery *ds[16];
	struct data_message *m;
	struct queue *q;
	int k;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "rp-1", "one"), 0);
	m = tu_new_msg("rp-1", "one");
	m->dedup_id = strdup("rp-1.replay.1");
	ck_assert_int_eq(tu_publish(q, m, NULL, 0), 0);
	ck_assert(wait_backlog(q, 2));
	k = queue_receive(q, ds, 16, 5000);
	if (k == 1)
		k += queue_receive(q, ds + 1, 15, 5000);
	ck_assert_int_eq(k, 2);
	/* the replay is known by its own id; its body keeps the message's */
	ck_assert_str_eq(ds[0]->id, "rp-1");
	ck_assert_str_eq(ds[1]->id, "rp-1.replay.1");
	ck_assert_ptr_nonnull(strstr(ds[1]->data, "\"id\":\"rp-1\""));
	for (int i = 0; i < k; i++)
		ck_assert_int_eq(queue_ack(q, ds[i]), 0);
	queue_close(q);
}
END_TEST

START_TEST(full_stream_reports_efull)
{
	struct queue *q;
	char id[32];
	int ok = 0, full = 0, rc;

	NEED_SERVER();
	set_option("--nats-max-msgs=3");
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "full-%d", i);
		rc = publish_wait(q, id, "x");
		if (rc == 0)
			ok++;
		else if (rc == QUEUE_EFULL)
			full++;
		else
			ck_abort_msg("unexpected publish status %d", rc);
	}
	ck_assert_int_eq(ok, 3);
	ck_assert_int_eq(full, 2);
	/* A retry of a stored id is still a success when full. */
	ck_assert_int_eq(publish_wait(q, "full-0", "x"), 0);
	queue_close(q);
}
END_TEST

START_TEST(short_max_age_still_creates_stream)
{
	struct queue *q;

	NEED_SERVER();
	/* Shorter than the 2 min duplicate window the server would refuse. */
	set_option("--nats-max-age=30s");
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "age-1", "x"), 0);
	queue_close(q);
}
END_TEST

/* Many publishers at once, each with its own outcomes. */
struct pub_thread {
	struct queue *q;
	int base, n;
	struct tu_outcome o[50];
};

static void *
pub_thread_main(void *arg)
{
	struct pub_thread *t = arg;
	char id[32];

	for (int i = 0; i < t->n; i++) {
		tu_outcome_init(&t->o[i]);
		snprintf(id, sizeof(id), "many-%d", t->base + i);
		queue_publish(t->q, tu_new_msg(id, "payload"), tu_outcome_cb,
		    &t->o[i]);
	}
	return NULL;
}

START_TEST(publish_n_receive_ack_all_empties_backlog)
{
	struct pub_thread t[4];
	pthread_t th[4];
	struct queue_stats st;
	struct queue *q;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	for (int i = 0; i < 4; i++) {
		t[i].q = q;
		t[i].base = i * 50;
		t[i].n = 50;
		pthread_create(&th[i], NULL, pub_thread_main, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		for (int j = 0; j < 50; j++)
			ck_assert_int_eq(tu_outcome_wait(&t[i].o[j], NULL, 0),
			    0);
	}
	ck_assert(wait_backlog(q, 200));
	ck_assert_int_eq(receive_ack(q, 200), 200);
	ck_assert(wait_backlog(q, 0));
	queue_stats(q, &st);
	ck_assert_uint_eq(st.enqueued, 200);
	ck_assert_uint_eq(st.dequeued, 200);
	ck_assert_uint_eq(st.redelivered, 0);
	queue_close(q);
}
END_TEST

START_TEST(nak_redelivers_and_term_ends)
{
	struct delivery *ds[4];
	struct data_message *m = NULL;
	char *cause = NULL;
	struct queue *q;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "nak-1", "hello"), 0);
	ck_assert_int_eq(queue_receive(q, ds, 4, 5000), 1);
	ck_assert_int_eq(message_decode(ds[0]->data, ds[0]->len, &m, &cause),
	    0);
	ck_assert_str_eq(m->id, "nak-1");
	ck_assert_int_eq((int)m->payload_len, 5);
	message_free(m);
	ck_assert_int_eq(queue_reject(q, ds[0], REJECT_RETRY), 0);

	ck_assert_int_eq(queue_receive(q, ds, 4, 5000), 1);
	ck_assert_uint_eq(ds[0]->num_delivered, 2);
	ck_assert_int_eq(queue_reject(q, ds[0], REJECT_TERM), 0);
	ck_assert_int_eq(queue_receive(q, ds, 4, 1000), 0);
	ck_assert(wait_backlog(q, 0));
	queue_close(q);
}
END_TEST

/* The consumer's delivery limit on the test's broker, read or set. */
static int64_t
consumer_limit(int64_t set_to)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsConsumerInfo *ci = NULL, *upd = NULL;
	char url[64];
	int64_t have;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", srv_port);
	ck_assert_int_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
	ck_assert_int_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	ck_assert_int_eq(js_GetConsumerInfo(&ci, js, "DIPLOM_STREAM",
	    "messages-consumer", NULL, NULL), NATS_OK);
	if (set_to != 0) {
		ci->Config->MaxDeliver = set_to;
		ck_assert_int_eq(js_UpdateConsumer(&upd, js, "DIPLOM_STREAM",
		    ci->Config, NULL, NULL), NATS_OK);
	}
	have = upd != NULL ? upd->Config->MaxDeliver : ci->Config->MaxDeliver;
	jsConsumerInfo_Destroy(upd);
	jsConsumerInfo_Destroy(ci);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return have;
}

/*
 * The broker has no delivery limit: a message NAKed more often than an
 * older release's limit of 2 is still delivered; the limit an older
 * consumer has is lifted; NATS_MAX_DELIVER is the processor's own.
 */
START_TEST(consumer_has_no_delivery_limit)
{
	struct delivery *ds[4];
	struct queue *q;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_uint_eq(queue_max_deliveries(q), 0);
	queue_close(q);
	ck_assert_int_eq(consumer_limit(2), 2);

	set_option("--nats-max-deliver=5");
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_uint_eq(queue_max_deliveries(q), 5);
	ck_assert_int_eq(consumer_limit(0), -1);
	ck_assert_int_eq(publish_wait(q, "lim-1", "hello"), 0);
	for (uint64_t n = 1; n <= 4; n++) {
		ck_assert_int_eq(queue_receive(q, ds, 4, 5000), 1);
		ck_assert_uint_eq(ds[0]->num_delivered, n);
		ck_assert_int_eq(queue_reject(q, ds[0],
		    n < 4 ? REJECT_RETRY : REJECT_TERM), 0);
	}
	ck_assert(wait_backlog(q, 0));
	queue_close(q);
}
END_TEST

START_TEST(shutdown_closes_receive_and_allows_ack)
{
	struct delivery *ds[4];
	struct queue *q;

	NEED_SERVER();
	server_start();
	/* one that was on its way at shutdown comes back after the ack wait */
	set_option("--nats-ack-wait=3s");
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "sd-1", "a"), 0);
	ck_assert_int_eq(publish_wait(q, "sd-2", "b"), 0);
	ck_assert_int_eq(queue_receive(q, ds, 1, 5000), 1);
	queue_shutdown(q);
	ck_assert_int_eq(queue_receive(q, ds + 1, 1, 100), QUEUE_ECLOSED);
	ck_assert_int_eq(queue_ack(q, ds[0]), 0);
	queue_close(q);

	/*
	 * The one never handed out is still there for the next processor,
	 * given back with a delay that outlives the last pull request.
	 */
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(queue_receive(q, ds, 4, 12000), 1);
	ck_assert_str_eq(ds[0]->id, "sd-2");
	ck_assert_int_eq(queue_ack(q, ds[0]), 0);
	queue_close(q);
}
END_TEST

START_TEST(broker_absent_at_open_then_started)
{
	struct queue_stats st;
	struct queue *q;
	int64_t t0;

	NEED_SERVER();
	q = open_queue();
	queue_stats(q, &st);
	ck_assert(!st.healthy);
	ck_assert(st.reason[0] != '\0');
	t0 = clock_now_ms();
	ck_assert_int_eq(publish_wait(q, "absent-1", "x"), QUEUE_EUNAVAIL);
	ck_assert_int_lt(clock_now_ms() - t0, 2500);

	server_start();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "absent-2", "x"), 0);
	ck_assert_int_eq(receive_ack(q, 1), 1);
	queue_close(q);
}
END_TEST

START_TEST(broker_lost_fails_fast_and_recovers)
{
	struct queue *q;
	int64_t t0;
	int rc, seen = 0;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "lost-1", "x"), 0);
	server_kill();
	t0 = clock_now_ms();
	rc = publish_wait(q, "lost-2", "x");
	ck_assert_int_eq(rc, QUEUE_EUNAVAIL);
	ck_assert_int_lt(clock_now_ms() - t0, 2500);
	ck_assert(wait_healthy(q, 0));

	server_start();
	ck_assert(wait_healthy(q, 1));
	ck_assert_int_eq(publish_wait(q, "lost-3", "x"), 0);
	/*
	 * lost-2 may be stored after all: when the socket dies before nats.c
	 * notices, its unsent bytes go out after the reconnect. An extra
	 * message is allowed; a lost accepted one is not.
	 */
	for (;;) {
		struct delivery *ds[8];
		int k = queue_receive(q, ds, 8, 1000);

		ck_assert_int_ge(k, 0);
		if (k == 0)
			break;
		for (int i = 0; i < k; i++) {
			if (strcmp(ds[i]->id, "lost-1") == 0)
				seen |= 1;
			else if (strcmp(ds[i]->id, "lost-3") == 0)
				seen |= 2;
			ck_assert_int_eq(queue_ack(q, ds[i]), 0);
		}
	}
	ck_assert_int_eq(seen, 3);
	ck_assert(wait_backlog(q, 0));
	queue_close(q);
}
END_TEST

START_TEST(open_with_unusable_url_fails_and_frees_all)
{
	struct queue *q = (struct queue *)&q;
	char *cause = NULL;
	int rc;

	NEED_SERVER();
	set_option("--nats-url= , ");
	/* Fails half-way, after the settings and locks exist. */
	rc = queue_open("nats", &cfg, &q, &cause);
	ck_assert_int_eq(rc, QUEUE_EINVAL);
	ck_assert_ptr_null(q);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strncmp(cause, "NATS_URL", 8) == 0, "cause: %s", cause);
	free(cause);
}
END_TEST

/* Deliveries a worker acks, with a pause between, racing the keepalive. */
struct acker {
	struct queue *q;
	struct delivery **ds;
	int n;
	int failed;
};

static void *
acker_main(void *arg)
{
	struct acker *a = arg;

	for (int i = 0; i < a->n; i++) {
		if (queue_ack(a->q, a->ds[i]) != 0)
			a->failed++;
		if (i % 10 == 0)
			tu_sleep_ms(5);
	}
	return NULL;
}

START_TEST(keepalive_holds_deliveries_without_blocking_receive)
{
	struct delivery *ds[200], *extra[4];
	struct acker a[2];
	pthread_t th[2];
	struct queue_stats st;
	struct queue *q;
	int64_t until, t0, worst = 0;
	char id[32];
	int got = 0, k;

	NEED_SERVER();
	/* +WPI every 500 ms; without it all 200 come back after 1 s. */
	set_option("--nats-ack-wait=1s");
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "wpi-%d", i);
		ck_assert_int_eq(publish_wait(q, id, "x"), 0);
	}
	until = clock_now_ms() + 10000;
	while (got < 200 && clock_now_ms() < until) {
		k = queue_receive(q, ds + got, 200 - got, 200);
		ck_assert_int_ge(k, 0);
		got += k;
	}
	ck_assert_int_eq(got, 200);

	/* Held for three ack waits: nothing redelivered, receive stays quick. */
	until = clock_now_ms() + 3000;
	while (clock_now_ms() < until) {
		t0 = clock_now_ms();
		ck_assert_int_eq(queue_receive(q, extra, 4, 0), 0);
		if (clock_now_ms() - t0 > worst)
			worst = clock_now_ms() - t0;
		tu_sleep_ms(2);
	}
	ck_assert_msg(worst < 250, "receive took %lld ms", (long long)worst);

	for (int i = 0; i < 2; i++) {
		a[i].q = q;
		a[i].ds = ds + i * 100;
		a[i].n = 100;
		a[i].failed = 0;
		pthread_create(&th[i], NULL, acker_main, &a[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].failed, 0);
	}
	ck_assert_int_eq(queue_receive(q, extra, 4, 1500), 0);
	ck_assert(wait_backlog(q, 0));
	queue_stats(q, &st);
	ck_assert_uint_eq(st.redelivered, 0);
	queue_close(q);
}
END_TEST

/* The Go plan's TestWorkerPool_WithNATS: the pool drains a NATS queue. */
START_TEST(worker_pool_processes_nats_messages)
{
	struct processing_result res;
	struct worker_pool_stats ws;
	struct result_store *rs = NULL;
	struct worker_pool *wp = NULL;
	struct queue *q;
	char *cause = NULL, db[128], id[32];
	int64_t until;
	int found;

	NEED_SERVER();
	server_start();
	q = open_queue();
	ck_assert(wait_healthy(q, 1));
	snprintf(db, sizeof(db), "%s/results.db", srv_dir);
	ck_assert_int_eq(result_store_open(&rs, db, &cause), 0);
	ck_assert_int_eq(worker_pool_start(&wp, &(struct worker_pool_opts){
	    .q = q, .rs = rs, .workers = 2, .process = process }, &cause), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "wp-%d", i);
		ck_assert_int_eq(publish_wait(q, id, "hello"), 0);
	}
	until = clock_now_ms() + 10000;
	do {
		found = 0;
		for (int i = 0; i < 5; i++) {
			snprintf(id, sizeof(id), "wp-%d", i);
			memset(&res, 0, sizeof(res));
			if (result_store_get(rs, id, &res) == 0) {
				ck_assert(res.success);
				ck_assert_int_eq((int)res.result_len, 15);
				ck_assert(memcmp(res.result, "PROCESSED_hello",
				    15) == 0);
				found++;
			}
			result_clear(&res);
		}
		if (found < 5)
			tu_sleep_ms(50);
	} while (found < 5 && clock_now_ms() < until);
	ck_assert_int_eq(found, 5);
	ck_assert(wait_backlog(q, 0));
	queue_shutdown(q);
	ck_assert_int_eq(worker_pool_wait(wp, 5000), 0);
	worker_pool_stats(wp, &ws);
	ck_assert_uint_eq(ws.processed, 5);
	ck_assert_uint_eq(ws.errors, 0);
	worker_pool_free(wp);
	result_store_close(rs);
	queue_close(q);
}
END_TEST

Suite *
queue_nats_suite(void)
{
	Suite *s = suite_create("queue_nats");
	TCase *tc = tcase_create("jetstream");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, repeated_msg_id_is_stored_once);
	tcase_add_test(tc, a_replay_with_its_own_dedup_id_is_not_dropped);
	tcase_add_test(tc, full_stream_reports_efull);
	tcase_add_test(tc, short_max_age_still_creates_stream);
	tcase_add_test(tc, publish_n_receive_ack_all_empties_backlog);
	tcase_add_test(tc, nak_redelivers_and_term_ends);
	tcase_add_test(tc, consumer_has_no_delivery_limit);
	tcase_add_test(tc, shutdown_closes_receive_and_allows_ack);
	tcase_add_test(tc, broker_absent_at_open_then_started);
	tcase_add_test(tc, broker_lost_fails_fast_and_recovers);
	tcase_add_test(tc, worker_pool_processes_nats_messages);
	tcase_add_test(tc, open_with_unusable_url_fails_and_frees_all);
	tcase_add_test(tc, keepalive_holds_deliveries_without_blocking_receive);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(queue_nats_suite)

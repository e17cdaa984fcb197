/* check_event_loop.c - the epoll loop: watchers, timers, stopping */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "check_main.h"
#include "clock.h"
#include "event_loop.h"

Suite *event_loop_suite(void);

/*
 * Two watchers, each of which removes and frees the other when it runs:
 * the shape of curl dropping a socket from inside another socket's callback.
 */
struct pair_watch {
	struct loop_watch w;
	struct pair_watch **other;	/* the slot holding the other one */
	struct pair_watch **self;
	atomic_int *calls;
};

static struct event_loop *loop;

static void
pair_cb(void *arg, uint32_t events)
{
	struct pair_watch *pw = arg;
	struct pair_watch *other = *pw->other;

	(void)events;
	atomic_fetch_add(pw->calls, 1);
	eventfd_clear(pw->w.fd);
	if (other != NULL) {
		event_loop_unwatch(loop, &other->w);
		close(other->w.fd);
		/* poison first, so a call through it would fail loudly too */
		memset(other, 0xa5, sizeof(*other));
		free(other);
		*pw->other = NULL;
	}
}

static struct pair_watch *
pair_new(struct pair_watch **self, struct pair_watch **other,
    atomic_int *calls)
{
	struct pair_watch *pw = calloc(1, sizeof(*pw));

	ck_assert_ptr_nonnull(pw);
	pw->w = (struct loop_watch){ .cb = pair_cb, .arg = pw,
	    .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	ck_assert_int_ge(pw->w.fd, 0);
	pw->self = self;
	pw->other = other;
	pw->calls = calls;
	*self = pw;
	return pw;
}

static void
setup(void)
{
	char *cause = NULL;

	ck_assert_int_eq(event_loop_new(&loop, 0, &cause), 0);
	ck_assert_ptr_null(cause);
}

static void
teardown(void)
{
	event_loop_free(loop);
	loop = NULL;
}

/* Wait up to ms for *v to reach want. */
static int
wait_for(atomic_int *v, int want, int ms)
{
	struct timespec ts = { 0, 1000000 };

	for (int i = 0; i < ms && atomic_load(v) < want; i++)
		nanosleep(&ts, NULL);
	return atomic_load(v);
}

/*
 * Both watchers are ready before the loop first waits, so both events come
 * back in one batch; whichever runs first frees the other, whose event
 * must then not be dispatched.
 */
START_TEST(unwatch_strikes_pending_event_of_same_batch)
{
	struct pair_watch *a, *b;
	atomic_int calls = 0;
	struct timespec settle = { 0, 50 * 1000000 };

	pair_new(&a, &b, &calls);
	pair_new(&b, &a, &calls);
	ck_assert_int_eq(event_loop_watch(loop, &a->w, EPOLLIN), 0);
	ck_assert_int_eq(event_loop_watch(loop, &b->w, EPOLLIN), 0);
	eventfd_poke(a->w.fd);
	eventfd_poke(b->w.fd);
	ck_assert_int_eq(event_loop_start(loop, "t-loop"), 0);
	ck_assert_int_eq(wait_for(&calls, 1, 2000), 1);
	nanosleep(&settle, NULL);
	event_loop_stop(loop);
	ck_assert_int_eq(atomic_load(&calls), 1);
	/* exactly one is left, the one that ran */
	ck_assert((a == NULL) != (b == NULL));
	if (a != NULL) {
		event_loop_unwatch(loop, &a->w);
		close(a->w.fd);
		free(a);
	}
	if (b != NULL) {
		event_loop_unwatch(loop, &b->w);
		close(b->w.fd);
		free(b);
	}
}
END_TEST

/* Many watchers in one batch: the first to run frees all the others. */
struct herd {
	struct loop_watch w[32];
	bool freed[32];
	atomic_int calls;
};

static struct herd *herd;

static void
herd_cb(void *arg, uint32_t events)
{
	struct loop_watch *w = arg;

	(void)events;
	ck_assert_msg(!herd->freed[w - herd->w], "called after unwatch");
	atomic_fetch_add(&herd->calls, 1);
	eventfd_clear(w->fd);
	for (int i = 0; i < 32; i++) {
		if (&herd->w[i] != w && !herd->freed[i]) {
			event_loop_unwatch(loop, &herd->w[i]);
			herd->freed[i] = true;
		}
	}
}

START_TEST(unwatch_of_many_leaves_one_call)
{
	struct timespec settle = { 0, 50 * 1000000 };

	herd = calloc(1, sizeof(*herd));
	ck_assert_ptr_nonnull(herd);
	for (int i = 0; i < 32; i++) {
		herd->w[i] = (struct loop_watch){ .cb = herd_cb,
		    .arg = &herd->w[i],
		    .fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK) };
		ck_assert_int_ge(herd->w[i].fd, 0);
		ck_assert_int_eq(event_loop_watch(loop, &herd->w[i], EPOLLIN),
		    0);
	}
	ck_assert_int_eq(event_loop_start(loop, "t-herd"), 0);
	ck_assert_int_eq(wait_for(&herd->calls, 1, 2000), 1);
	nanosleep(&settle, NULL);
	event_loop_stop(loop);
	ck_assert_int_eq(atomic_load(&herd->calls), 1);
	for (int i = 0; i < 32; i++) {
		if (!herd->freed[i])
			event_loop_unwatch(loop, &herd->w[i]);
		close(herd->w[i].fd);
	}
	free(herd);
	herd = NULL;
}
END_TEST

/* A watcher unwatched and watched again in one batch is kept. */
static atomic_int rewatch_calls;

static void
rewatch_cb(void *arg, uint32_t events)
{
	struct loop_watch *w = arg;

	(void)events;
	if (atomic_fetch_add(&rewatch_calls, 1) == 0) {
		event_loop_unwatch(loop, w);
		ck_assert_int_eq(event_loop_watch(loop, w, EPOLLIN), 0);
		return;
	}
	eventfd_clear(w->fd);
}

START_TEST(rewatched_watcher_fires_again)
{
	struct loop_watch w = { .cb = rewatch_cb, .arg = &w,
	    .fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK) };

	atomic_store(&rewatch_calls, 0);
	ck_assert_int_ge(w.fd, 0);
	ck_assert_int_eq(event_loop_watch(loop, &w, EPOLLIN), 0);
	ck_assert_int_eq(event_loop_start(loop, "t-rewatch"), 0);
	ck_assert_int_ge(wait_for(&rewatch_calls, 2, 2000), 2);
	event_loop_stop(loop);
	event_loop_unwatch(loop, &w);
	close(w.fd);
}
END_TEST

static atomic_int timer_calls;

static void
timer_cb(void *arg)
{
	(void)arg;
	atomic_fetch_add(&timer_calls, 1);
}

START_TEST(timer_fires_once_when_due)
{
	struct loop_timer t = { -1, timer_cb, NULL };
	struct timespec settle = { 0, 100 * 1000000 };

	atomic_store(&timer_calls, 0);
	ck_assert_int_eq(event_loop_add_timer(loop, &t), 0);
	t.at_ms = clock_now_ms() + 20;
	ck_assert_int_eq(event_loop_start(loop, "t-timer"), 0);
	ck_assert_int_eq(wait_for(&timer_calls, 1, 2000), 1);
	nanosleep(&settle, NULL);
	event_loop_stop(loop);
	ck_assert_int_eq(atomic_load(&timer_calls), 1);
	ck_assert_int_lt(t.at_ms, 0);
}
END_TEST

START_TEST(timer_slots_are_bounded)
{
	struct loop_timer t[32];
	int added = 0;

	for (int i = 0; i < 32; i++) {
		t[i] = (struct loop_timer){ -1, timer_cb, NULL };
		if (event_loop_add_timer(loop, &t[i]) == 0)
			added++;
	}
	ck_assert_int_gt(added, 0);
	ck_assert_int_lt(added, 32);
}
END_TEST

/* A timer that holds its loop up until released, like a hung callback. */
static atomic_bool hang;

static void
hang_cb(void *arg)
{
	struct timespec tick = { 0, 10 * 1000000 };

	(void)arg;
	while (atomic_load(&hang))
		nanosleep(&tick, NULL);
}

/* Poll answered for up to ms; whether it answered. */
static bool
answers_within(int ms)
{
	struct timespec tick = { 0, 10 * 1000000 };

	for (int i = 0; i < ms / 10; i++) {
		if (event_loop_answered(loop))
			return true;
		nanosleep(&tick, NULL);
	}
	return event_loop_answered(loop);
}

START_TEST(ping_is_answered_unless_the_loop_hangs)
{
	struct loop_timer t = { -1, hang_cb, NULL };
	struct timespec until_hung = { 0, 500 * 1000000 };

	/* the timer hangs the loop 300 ms in, until released */
	atomic_store(&hang, true);
	ck_assert_int_eq(event_loop_add_timer(loop, &t), 0);
	t.at_ms = clock_now_ms() + 300;
	ck_assert_int_eq(event_loop_start(loop, "t-ping"), 0);
	event_loop_ping(loop);
	ck_assert(answers_within(250));

	nanosleep(&until_hung, NULL);
	event_loop_ping(loop);
	ck_assert(!answers_within(200));
	event_loop_ping(loop);
	ck_assert(!answers_within(200));
	atomic_store(&hang, false);
	ck_assert(answers_within(1000));
	event_loop_stop(loop);
}
END_TEST

START_TEST(current_is_the_running_loop)
{
	ck_assert_ptr_null(event_loop_current());
	ck_assert_int_eq(event_loop_index(loop), 0);
}
END_TEST

Suite *
event_loop_suite(void)
{
	Suite *s = suite_create("event_loop");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unwatch_strikes_pending_event_of_same_batch);
	tcase_add_test(tc, unwatch_of_many_leaves_one_call);
	tcase_add_test(tc, rewatched_watcher_fires_again);
	tcase_add_test(tc, timer_fires_once_when_due);
	tcase_add_test(tc, timer_slots_are_bounded);
	tcase_add_test(tc, current_is_the_running_loop);
	tcase_add_test(tc, ping_is_answered_unless_the_loop_hangs);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(event_loop_suite)

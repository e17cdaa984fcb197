/* check_rate_limit.c - token buckets: rates, bursts, waits, a bounded table */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "rate_limit.h"

Suite *rate_limit_suite(void);

#define SEC 1000000000LL
/* A start far from 0, as the monotonic clock is. */
#define T0 (1000 * SEC)

static struct rate_limiter *
limiter(int64_t rate, int64_t burst, size_t capacity)
{
	struct rate_limiter *rl = NULL;
	char *cause = NULL;

	ck_assert_int_eq(rate_limiter_new(&rl, rate, burst, capacity, &cause),
	    0);
	ck_assert_ptr_null(cause);
	return rl;
}

/* Requests of key allowed out of n, all at now. */
static int
allowed(struct rate_limiter *rl, const char *key, int n, int64_t now)
{
	int ok = 0;

	for (int i = 0; i < n; i++)
		ok += rate_limiter_take(rl, key, strlen(key), now) == 0;
	return ok;
}

START_TEST(a_burst_then_the_rate)
{
	struct rate_limiter *rl = limiter(5, 10, 64);

	/* a new client has a full bucket: the burst, and not one more */
	ck_assert_int_eq(allowed(rl, "a", 20, T0), 10);
	/* 5 a second: 2 in 400 ms, none more at once */
	ck_assert_int_eq(allowed(rl, "a", 5, T0 + 400000000), 2);
	/* a long pause refills to the burst, never above */
	ck_assert_int_eq(allowed(rl, "a", 50, T0 + 60 * SEC), 10);
	rate_limiter_free(rl);
}
END_TEST

START_TEST(burst_zero_is_a_second_worth)
{
	struct rate_limiter *rl = limiter(7, 0, 64);

	ck_assert_int_eq(allowed(rl, "a", 20, T0), 7);
	rate_limiter_free(rl);
}
END_TEST

START_TEST(keys_have_buckets_of_their_own)
{
	struct rate_limiter *rl = limiter(1, 2, 64);
	unsigned char v4[4] = { 127, 0, 0, 1 }, v6[16] = { [15] = 1 };

	ck_assert_int_eq(allowed(rl, "a", 5, T0), 2);
	ck_assert_int_eq(allowed(rl, "b", 5, T0), 2);
	/* the bytes and the length tell keys apart */
	ck_assert_int_eq(rate_limiter_take(rl, v4, 4, T0), 0);
	ck_assert_int_eq(rate_limiter_take(rl, v6, 16, T0), 0);
	ck_assert_int_eq(rate_limiter_take(rl, v6, 4, T0), 0);
	ck_assert_uint_eq(rate_limiter_size(rl), 5);
	rate_limiter_free(rl);
}
END_TEST

START_TEST(retry_after_is_when_a_token_comes_at_least_one)
{
	struct rate_limiter *rl = limiter(1, 1, 64);
	struct rate_limiter *slow = NULL;
	char *cause = NULL;

	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0), 0);
	/* 1 a second: the next token in a second */
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0), 1);
	/* 900 ms later it is 100 ms away: still a whole second */
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0 + 900000000), 1);
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0 + SEC), 0);
	rate_limiter_free(rl);

	/* fast rates never say 0 */
	rl = limiter(1000, 1, 64);
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0), 0);
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0), 1);
	rate_limiter_free(rl);

	/* a bad rate is refused */
	ck_assert_int_lt(rate_limiter_new(&slow, 0, 1, 64, &cause), 0);
	ck_assert_ptr_null(slow);
	free(cause);
}
END_TEST

START_TEST(the_table_stays_bounded_whatever_the_keys)
{
	struct rate_limiter *rl = limiter(1, 1, 1000);
	size_t cap = rate_limiter_capacity(rl);
	uint32_t k;

	ck_assert_uint_ge(cap, 1000);
	ck_assert_uint_lt(cap, 4000);
	/* a hundred times the capacity in client addresses */
	for (k = 0; k < 100 * cap; k++)
		rate_limiter_take(rl, &k, sizeof(k), T0 + k);
	ck_assert_uint_le(rate_limiter_size(rl), cap);
	ck_assert_uint_ge(rate_limiter_size(rl), cap / 2);
	rate_limiter_free(rl);
}
END_TEST

START_TEST(an_empty_bucket_survives_a_flood_of_idle_ones)
{
	struct rate_limiter *rl = limiter(1, 3, 8);
	uint32_t k;

	/* one table set: a flood passes through it */
	ck_assert_uint_eq(rate_limiter_capacity(rl), 8);
	ck_assert_int_eq(allowed(rl, "a", 5, T0), 3);
	/* the others, seen long ago, are full again by now */
	for (k = 0; k < 7; k++)
		rate_limiter_take(rl, &k, sizeof(k), T0 - 60 * SEC);
	/* new clients, each with tokens left, faster than the refill */
	for (k = 100; k < 200; k++) {
		ck_assert_int_eq(rate_limiter_take(rl, &k, sizeof(k),
		    T0 + 1000 + k), 0);
	}
	/* a's empty bucket was kept: fuller ones gave their place */
	ck_assert_int_eq(rate_limiter_take(rl, "a", 1, T0 + 2000), 1);
	ck_assert_uint_eq(rate_limiter_size(rl), 8);
	rate_limiter_free(rl);
}
END_TEST

/* Threads take from shared buckets at one instant (for TSan). */
struct taker {
	struct rate_limiter *rl;
	int ok;
};

static void *
taker_run(void *arg)
{
	struct taker *t = arg;

	for (int i = 0; i < 1000; i++)
		t->ok += rate_limiter_take(t->rl, "shared", 6, T0) == 0;
	return NULL;
}

START_TEST(threads_share_one_bucket_exactly)
{
	struct rate_limiter *rl = limiter(10, 100, 64);
	struct taker t[4];
	pthread_t th[4];
	int total = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct taker){ rl, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, taker_run, &t[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += t[i].ok;
	}
	ck_assert_int_eq(total, 100);
	rate_limiter_free(rl);
}
END_TEST

Suite *
rate_limit_suite(void)
{
	Suite *s = suite_create("rate_limit");
	TCase *tc = tcase_create("buckets");

	tcase_add_test(tc, a_burst_then_the_rate);
	tcase_add_test(tc, burst_zero_is_a_second_worth);
	tcase_add_test(tc, keys_have_buckets_of_their_own);
	tcase_add_test(tc, retry_after_is_when_a_token_comes_at_least_one);
	tcase_add_test(tc, the_table_stays_bounded_whatever_the_keys);
	tcase_add_test(tc, an_empty_bucket_survives_a_flood_of_idle_ones);
	tcase_add_test(tc, threads_share_one_bucket_exactly);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(rate_limit_suite)

/* check_histogram.c - Prometheus histograms, lock-free to observe */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "histogram.h"

Suite *histogram_suite(void);

static const double bounds[] = { 0.001, 0.01, 0.1, 1 };

/* h written as text into a buffer the caller frees. */
static char *
written(const struct histogram *h)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	histogram_write(h, f, "t_seconds", "A test.");
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* The value of the sample line that starts with name, or -1. */
static double
sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p != NULL && *p != '\0';
	    p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	return -1;
}

START_TEST(histogram_buckets_are_cumulative_and_bounds_inclusive)
{
	struct histogram h;
	char *t;

	histogram_init(&h, bounds, sizeof(bounds) / sizeof(*bounds));
	histogram_observe(&h, 0.001);		/* on a bound: that bucket */
	histogram_observe(&h, 0.05);
	histogram_observe_ns(&h, 500000000);	/* 0.5 s */
	histogram_observe(&h, 7);		/* above every bound */
	histogram_observe(&h, -1);		/* counts as 0 */
	t = written(&h);
	ck_assert_ptr_nonnull(strstr(t, "# HELP t_seconds A test.\n"
	    "# TYPE t_seconds histogram\n"));
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"0.001\"}"), 2);
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"0.01\"}"), 2);
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"0.1\"}"), 3);
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"1\"}"), 4);
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"+Inf\"}"), 5);
	ck_assert_double_eq(sample(t, "t_seconds_count"), 5);
	ck_assert_double_eq_tol(sample(t, "t_seconds_sum"), 7.551, 1e-6);
	free(t);
}
END_TEST

static struct histogram shared;

static void *
observe_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++)
		histogram_observe(&shared, (i % 3) * 0.01);
	return NULL;
}

START_TEST(histogram_counts_every_observation_of_concurrent_threads)
{
	pthread_t th[4];
	char *t;

	histogram_init(&shared, bounds, sizeof(bounds) / sizeof(*bounds));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, observe_many,
		    NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t = written(&shared);
	ck_assert_double_eq(sample(t, "t_seconds_count"), 400000);
	ck_assert_double_eq(sample(t, "t_seconds_bucket{le=\"0.001\"}"),
	    4 * 33334);
	free(t);
}
END_TEST

Suite *
histogram_suite(void)
{
	Suite *s = suite_create("histogram");
	TCase *tc = tcase_create("histogram");

	tcase_add_test(tc, histogram_buckets_are_cumulative_and_bounds_inclusive);
	tcase_add_test(tc,
	    histogram_counts_every_observation_of_concurrent_threads);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(histogram_suite)

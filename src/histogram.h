/* histogram.h - Prometheus histograms, lock-free to observe */
#ifndef DIPLOM_HISTOGRAM_H
#define DIPLOM_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most buckets a histogram has, besides +Inf. */
#define HISTOGRAM_MAX_BOUNDS 16

/*
 * Counts of observations by upper bound, and their sum. Observed from any
 * thread with relaxed atomics (no lock on the hot path); a scrape reads
 * them one by one, so a sample may see an observation's bucket and not yet
 * its sum, which Prometheus tolerates.
 */
struct histogram {
	const double *bounds;		/* upper bounds, ascending */
	size_t n_bounds;
	/* observations in (bounds[i-1], bounds[i]]; the last: above all */
	atomic_uint_fast64_t bucket[HISTOGRAM_MAX_BOUNDS + 1];
	atomic_uint_fast64_t sum_micro;	/* the sum, in millionths */
};

/*
 * Empty h, with the n ascending upper bounds in bounds (kept, not copied;
 * n at most HISTOGRAM_MAX_BOUNDS).
 */
void histogram_init(struct histogram *h, const double *bounds, size_t n);
/* Count one observation of value (negative counts as 0). */
void histogram_observe(struct histogram *h, double value);
/* Count a duration of ns nanoseconds, in seconds. */
void histogram_observe_ns(struct histogram *h, int64_t ns);
/*
 * Write h as a Prometheus histogram called name, with its HELP and TYPE
 * lines; _count is the +Inf bucket, so the two always agree.
 */
void histogram_write(const struct histogram *h, FILE *out, const char *name,
    const char *help);

#endif

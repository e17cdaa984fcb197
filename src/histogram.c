/* histogram.c - Prometheus histograms, lock-free to observe */
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

void
histogram_init(struct histogram *h, const double *bounds, size_t n)
{
	/* a programming error: the buckets are fixed at compile time */
	if (n > HISTOGRAM_MAX_BOUNDS)
		abort();
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n_bounds = n;
}

void
histogram_observe(struct histogram *h, double value)
{
	size_t b;

	if (!(value > 0))
		value = 0;
	for (b = 0; b < h->n_bounds && value > h->bounds[b]; b++)
		;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_micro, (uint64_t)(value * 1e6 + 0.5),
	    memory_order_relaxed);
}

void
histogram_observe_ns(struct histogram *h, int64_t ns)
{
	histogram_observe(h, (double)ns / 1e9);
}

void
histogram_write(const struct histogram *h, FILE *out, const char *name,
    const char *help)
{
	uint64_t cum = 0;

	fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t b = 0; b <= h->n_bounds; b++) {
		cum += atomic_load_explicit(&h->bucket[b],
		    memory_order_relaxed);
		if (b < h->n_bounds)
			fprintf(out, "%s_bucket{le=\"%g\"} %ju\n", name,
			    h->bounds[b], (uintmax_t)cum);
		else
			fprintf(out, "%s_bucket{le=\"+Inf\"} %ju\n", name,
			    (uintmax_t)cum);
	}
	fprintf(out, "%s_sum %.6f\n%s_count %ju\n", name,
	    (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) /
	    1e6, name, (uintmax_t)cum);
}

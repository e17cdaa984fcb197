/* loadgen/stats.c - diplom-loadgen's counters, latency histogram, summary */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "loadgen/stats.h"

void
lg_hist_init(struct lg_hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* The bucket of a value: exact below 2 * SUB, log-linear above. */
static size_t
hist_index(uint64_t us)
{
	int msb, shift;

	if (us < 2 * LG_HIST_SUB)
		return (size_t)us;
	msb = 63 - __builtin_clzll(us);
	shift = msb - LG_HIST_SUB_BITS;	/* us >> shift is in [SUB, 2 SUB) */
	return (size_t)(shift + 1) * LG_HIST_SUB +
	    (size_t)((us >> shift) - LG_HIST_SUB);
}

/* The middle of bucket i, which is off by at most half a bucket's width. */
static uint64_t
hist_value(size_t i)
{
	unsigned shift;
	uint64_t lo;

	if (i < 2 * LG_HIST_SUB)
		return i;
	shift = (unsigned)(i / LG_HIST_SUB) - 1;
	lo = (uint64_t)(i % LG_HIST_SUB + LG_HIST_SUB) << shift;
	return lo + (((uint64_t)1 << shift) - 1) / 2;
}

void
lg_hist_add(struct lg_hist *h, uint64_t us)
{
	if (us >= (uint64_t)1 << LG_HIST_MAX_BITS)
		us = ((uint64_t)1 << LG_HIST_MAX_BITS) - 1;
	if (h->count == 0 || us < h->min_us)
		h->min_us = us;
	if (us > h->max_us)
		h->max_us = us;
	h->count++;
	h->buckets[hist_index(us)]++;
}

uint64_t
lg_hist_percentile(const struct lg_hist *h, unsigned permille)
{
	uint64_t rank, seen = 0, v;

	if (h->count == 0)
		return 0;
	if (permille >= 1000)
		return h->max_us;
	/* nearest rank, in integers: 0.99 * 100 is not 99 in doubles */
	rank = (h->count * permille + 999) / 1000;
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen < rank)
			continue;
		v = hist_value(i);
		/* a bucket's middle may lie outside what was really seen */
		if (v < h->min_us)
			v = h->min_us;
		if (v > h->max_us)
			v = h->max_us;
		return v;
	}
	return h->max_us;
}

void
lg_counts_init(struct lg_counts *c)
{
	memset(c, 0, sizeof(*c));
}

void
lg_counts_reject(struct lg_counts *c, long status)
{
	if (status < 0 || status >= LG_STATUS_MAX)
		status = 0;	/* no such HTTP status: file it under 0 */
	c->by_status[status]++;
	c->rejected++;
}

/* A double as JSON with a fixed number of decimals, not %.17g noise. */
static json_object *
json_fixed(double v, int decimals)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

/* The summary as one JSON object; keys as in diplom-loadgen(1). */
static void
summary_json(FILE *f, const struct lg_counts *c, const struct lg_hist *h,
    double elapsed_s, double rate)
{
	json_object *o = json_object_new_object();
	json_object *by = json_object_new_object();
	json_object *lat = json_object_new_object();
	static const struct {
		const char *key;
		unsigned permille;
	} pcts[] = { { "p50", 500 }, { "p90", 900 }, { "p99", 990 },
		     { "max", 1000 } };
	char key[16];

	json_object_object_add(o, "sent", json_object_new_int64(
	    (int64_t)c->sent));
	json_object_object_add(o, "requests", json_object_new_int64(
	    (int64_t)c->requests));
	json_object_object_add(o, "retries", json_object_new_int64(
	    (int64_t)c->retries));
	json_object_object_add(o, "accepted", json_object_new_int64(
	    (int64_t)c->accepted));
	json_object_object_add(o, "rejected", json_object_new_int64(
	    (int64_t)c->rejected));
	for (int s = 0; s < LG_STATUS_MAX; s++) {
		if (c->by_status[s] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", s);
		json_object_object_add(by, key, json_object_new_int64(
		    (int64_t)c->by_status[s]));
	}
	json_object_object_add(o, "rejected_by_status", by);
	json_object_object_add(o, "errors", json_object_new_int64(
	    (int64_t)c->errors));
	json_object_object_add(o, "elapsed_s", json_fixed(elapsed_s, 3));
	json_object_object_add(o, "throughput", json_fixed(rate, 1));
	for (size_t i = 0; i < sizeof(pcts) / sizeof(*pcts); i++)
		json_object_object_add(lat, pcts[i].key, json_fixed(
		    (double)lg_hist_percentile(h, pcts[i].permille) / 1000.0,
		    3));
	json_object_object_add(o, "latency_ms", lat);
	fprintf(f, "%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

void
lg_summary_print(FILE *f, const struct lg_counts *c, const struct lg_hist *h,
    double elapsed_s, int json)
{
	/* accepted per wall second: what the pipeline really took in */
	double rate = elapsed_s > 0 ? (double)c->accepted / elapsed_s : 0;

	if (json) {
		summary_json(f, c, h, elapsed_s, rate);
		return;
	}
	fprintf(f, "%-12s%" PRIu64 " messages, %" PRIu64 " requests (%"
	    PRIu64 " retries)\n", "sent", c->sent, c->requests, c->retries);
	fprintf(f, "%-12s%" PRIu64 "\n", "accepted", c->accepted);
	fprintf(f, "%-12s%" PRIu64 "\n", "rejected", c->rejected);
	for (int s = 0; s < LG_STATUS_MAX; s++) {
		char key[16];

		if (c->by_status[s] == 0)
			continue;
		snprintf(key, sizeof(key), "%d:", s);
		fprintf(f, "  %-10s%" PRIu64 "\n", key, c->by_status[s]);
	}
	fprintf(f, "%-12s%" PRIu64 "\n", "errors", c->errors);
	fprintf(f, "%-12s%.3f s\n", "elapsed", elapsed_s);
	fprintf(f, "%-12s%.1f msg/s\n", "throughput", rate);
	fprintf(f, "%-12sp50 %.3f  p90 %.3f  p99 %.3f  max %.3f "
	    "(%" PRIu64 " answers)\n", "latency ms",
	    (double)lg_hist_percentile(h, 500) / 1000.0,
	    (double)lg_hist_percentile(h, 900) / 1000.0,
	    (double)lg_hist_percentile(h, 990) / 1000.0,
	    (double)lg_hist_percentile(h, 1000) / 1000.0, h->count);
}

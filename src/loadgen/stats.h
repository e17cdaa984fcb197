/* loadgen/stats.h - diplom-loadgen's counters, latency histogram, summary */
#ifndef DIPLOM_LOADGEN_STATS_H
#define DIPLOM_LOADGEN_STATS_H

#include <stdint.h>
#include <stdio.h>

/*
 * Log-linear histogram of latencies in microseconds, in the manner of
 * HdrHistogram: exact below 2 * LG_HIST_SUB us, above that every power of
 * two is split into LG_HIST_SUB equal buckets, so a bucket is never wider
 * than 1/256 (0.4 %) of the values in it. Fixed size, no allocation, O(1)
 * per sample, so recording millions of samples costs nothing.
 */
#define LG_HIST_SUB_BITS	8
#define LG_HIST_SUB		(1u << LG_HIST_SUB_BITS)
#define LG_HIST_MAX_BITS	40	/* clamped above 2^40 us, 12 days */
#define LG_HIST_BUCKETS \
	((LG_HIST_MAX_BITS - LG_HIST_SUB_BITS + 1) * LG_HIST_SUB)

struct lg_hist {
	uint64_t count;
	uint64_t min_us;
	uint64_t max_us;	/* exact, not bucketed */
	uint64_t buckets[LG_HIST_BUCKETS];
};

void lg_hist_init(struct lg_hist *h);
void lg_hist_add(struct lg_hist *h, uint64_t us);
/* Nearest-rank percentile, permille in 0..1000 (990: p99); 0 when empty. */
uint64_t lg_hist_percentile(const struct lg_hist *h, unsigned permille);

/* HTTP statuses 0..LG_STATUS_MAX-1 are counted one by one. */
#define LG_STATUS_MAX		600

/*
 * What happened to the messages. Every message that was started ends in
 * exactly one of accepted, rejected or errors, so sent is their sum once
 * the run is over.
 */
struct lg_counts {
	uint64_t sent;		/* messages started (retries not counted) */
	uint64_t requests;	/* HTTP attempts, retries included */
	uint64_t retries;
	uint64_t accepted;	/* 200 with a message_id */
	uint64_t rejected;	/* final answer another HTTP status */
	uint64_t errors;	/* final attempt failed to get an answer */
	uint64_t by_status[LG_STATUS_MAX];	/* the rejected, by status */
};

void lg_counts_init(struct lg_counts *c);
/* Count a message whose final answer was HTTP status (not a 200 accept). */
void lg_counts_reject(struct lg_counts *c, long status);

/* Print the end-of-run summary on f: text, or one JSON object. */
void lg_summary_print(FILE *f, const struct lg_counts *c,
    const struct lg_hist *h, double elapsed_s, int json);

#endif

/* worker_pool.h - workers: receive, process, commit result, then ack */
#ifndef DIPLOM_WORKER_POOL_H
#define DIPLOM_WORKER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "queue.h"
#include "result_store.h"

struct worker_pool_stats {
	uint64_t processed;		/* ProcessedCount */
	uint64_t errors;		/* ErrorCount */
	int64_t total_duration_ns;	/* TotalDuration, as Go's Duration */
	uint64_t store_errors;		/* commits the result store refused */
	int workers;			/* worker threads */
	int busy;			/* of them, processing a message now */
};

struct worker_pool;

/*
 * What processing a delivery means, the processor's business: fill res,
 * which comes zeroed. A result without a message id is not stored.
 */
typedef void (*worker_process_fn)(void *ctx, const struct delivery *d,
    struct processing_result *res);

struct worker_pool_opts {
	struct queue *q;
	struct result_store *rs;
	int workers;
	worker_process_fn process;
	void *ctx;			/* passed to process */
};

/*
 * Start o->workers workers (receive and process), one committer (results
 * to the store) and one settler (acks after the commit). On failure every
 * thread it started has been joined.
 */
int worker_pool_start(struct worker_pool **wp,
    const struct worker_pool_opts *o, char **cause);
/*
 * After the queue was shut down: wait up to timeout_ms for the workers to
 * hand everything to the committer and for it to commit and ack. Returns 0,
 * or -ETIMEDOUT (the threads are then left running; exit the process).
 */
int worker_pool_wait(struct worker_pool *wp, int64_t timeout_ms);
/* Free a pool whose wait returned 0. */
void worker_pool_free(struct worker_pool *wp);
void worker_pool_stats(struct worker_pool *wp, struct worker_pool_stats *st);
/*
 * The pool's histograms, Prometheus text: processing time per message,
 * rows per commit and commit time.
 */
void worker_pool_write_histograms(struct worker_pool *wp, FILE *out);
/*
 * Whether the result store takes commits; if not, why ("result store:
 * ...") into why. Held messages wait meanwhile, none is given up.
 */
bool worker_pool_store_ok(struct worker_pool *wp, char *why, size_t len);
/*
 * Liveness, for a watchdog: ping the threads; answered says whether each
 * went round since (or waits for work, or processes), which takes up to
 * a second.
 */
void worker_pool_ping(struct worker_pool *wp);
bool worker_pool_answered(struct worker_pool *wp);

#endif

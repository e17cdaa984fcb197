/* worker_pool.h - workers: receive, process, commit result, then ack */
#ifndef DIPLOM_WORKER_POOL_H
#define DIPLOM_WORKER_POOL_H

#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "result_store.h"

struct worker_pool_stats {
	uint64_t processed;		/* ProcessedCount */
	uint64_t errors;		/* ErrorCount */
	int64_t total_duration_ns;	/* TotalDuration, as Go's Duration */
};

struct worker_pool;

/*
 * Start cfg->workers workers, one committer (results to the store) and one
 * settler (acks after the commit) over q and rs.
 */
int worker_pool_start(struct worker_pool **wp, struct queue *q,
    struct result_store *rs, const struct config *cfg, char **cause);
/*
 * After the queue was shut down: wait up to timeout_ms for the workers to
 * hand everything to the committer and for it to commit and ack. Returns 0,
 * or -ETIMEDOUT (the threads are then left running; exit the process).
 */
int worker_pool_wait(struct worker_pool *wp, int64_t timeout_ms);
/* Free a pool whose wait returned 0. */
void worker_pool_free(struct worker_pool *wp);
void worker_pool_stats(struct worker_pool *wp, struct worker_pool_stats *st);

/* The processing step itself: result for one delivery. */
void worker_process(const struct delivery *d, struct processing_result *res,
    int64_t delay_ms);

#endif

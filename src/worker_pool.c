/* worker_pool.c - worker threads and the one committer that acks */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "histogram.h"
#include "log.h"
#include "message.h"
#include "worker_pool.h"
#include "xmalloc.h"

/* The most results one transaction commits. */
#define COMMIT_BATCH 1024
/*
 * Under load, a commit waits this long after the last one for a batch to
 * fill up: every commit pays an fsync, and a transaction of a thousand rows
 * costs far less per row than many small ones.
 */
#define GROUP_COMMIT_NS 3000000
/*
 * The bytes the ring, and each commit batch, may hold besides their
 * counts: a stalled store would otherwise let the workers take thousands
 * of the largest messages. One delivery always fits, whatever its size.
 */
#define RING_BYTES ((size_t)16 << 20)
/* Backoff between commits of a batch the store refused. */
#define STORE_RETRY_MIN_MS 100
#define STORE_RETRY_MAX_MS 2000
/* A batch at least this large means load. */
#define GROUP_COMMIT_LOAD 8

/* Upper bounds of the histograms' buckets: seconds, and rows. */
static const double processing_bounds[] = { 0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.5, 1, 5 };
static const double commit_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double rows_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
	1024 };

/* How long a thread waits before it looks up to answer a liveness ping. */
#define BEAT_MS 1000

/*
 * One thread's answer to the watchdog's pings: it copies the ping to pong
 * as it goes round. A thread that waits for work or does it (processing
 * may take long on purpose) is alive without going round. A worker is
 * waiting only while it processes, so the workers' flags also count the
 * busy ones, at no cost to the hot path.
 */
struct beat {
	struct worker_pool *wp;
	atomic_uint pong;
	atomic_bool waiting;
};

struct pending {
	struct delivery *d;
	struct processing_result res;
	int64_t duration_ns;
};

struct worker_pool {
	struct queue *q;
	struct result_store *rs;
	worker_process_fn process;
	void *ctx;
	int batch;
	int nworkers;
	int nstarted;			/* worker threads running */
	pthread_t *workers;
	pthread_t committer;
	pthread_t settler;
	bool committer_started, settler_started;
	atomic_bool abandon;		/* start failed: workers stop taking */
	atomic_uint ping;		/* liveness, see struct beat */
	struct beat *beats;		/* each worker's, then the committer's */
	/* relaxed atomics, observed without the lock */
	struct histogram processing;	/* per message, by the workers */
	struct histogram commit_rows;	/* per commit, by the committer */
	struct histogram commit_time;

	/* lock guards everything below */
	pthread_mutex_t lock;
	pthread_cond_t not_full;	/* a worker may hand over */
	pthread_cond_t not_empty;	/* the committer has work */
	pthread_cond_t finished;	/* the committer has exited */
	struct pending *ring;
	size_t cap, head, count;
	size_t ring_bytes;		/* pending_bytes() of what it holds */
	size_t wake_at;			/* count that wakes the committer */
	int workers_left;		/* workers still running */
	bool settler_done;		/* the last batch is settled */
	struct worker_pool_stats stats;
	char store_error[160];		/* why the store fails, "" when not */

	/*
	 * settle_lock guards the one-batch hand-off from the committer to the
	 * settler, so that acks of one batch overlap the next commit.
	 */
	pthread_mutex_t settle_lock;
	pthread_cond_t settle_cv;
	struct pending *settle_batch;	/* committed, not yet settled */
	size_t settle_n;
	bool committer_done;		/* no batch will follow */
};

static void
beat(struct beat *b)
{
	atomic_store(&b->pong, atomic_load(&b->wp->ping));
}

/* What a processed delivery keeps in memory until it is settled. */
static size_t
pending_bytes(const struct pending *p)
{
	const struct delivery *d = p->d;

	return (d->msg != NULL ? d->msg->payload_len : d->len) +
	    p->res.result_len + p->res.message_len;
}

/* Whether the ring can take p now, under wp->lock. */
static bool
ring_takes(const struct worker_pool *wp, const struct pending *p)
{
	return wp->count < wp->cap && (wp->count == 0 ||
	    wp->ring_bytes + pending_bytes(p) <= RING_BYTES);
}

/*
 * Hand processed deliveries to the committer, all under one lock and with
 * one wakeup; waits while the committer is behind, in count or in bytes.
 */
static void
pool_hand_over(struct worker_pool *wp, struct beat *b, struct pending *p,
    int n)
{
	int i = 0;

	pthread_mutex_lock(&wp->lock);
	while (i < n) {
		while (!ring_takes(wp, &p[i])) {
			clock_cond_wait_until(&wp->not_full, &wp->lock,
			    clock_now_ns() + BEAT_MS * 1000000LL);
			beat(b);
		}
		while (i < n && ring_takes(wp, &p[i])) {
			wp->ring_bytes += pending_bytes(&p[i]);
			wp->ring[(wp->head + wp->count++) % wp->cap] = p[i++];
		}
		/* a full ring wakes the committer at once, whatever it waits for */
		if (wp->count >= wp->wake_at || i < n)
			pthread_cond_signal(&wp->not_empty);
	}
	pthread_mutex_unlock(&wp->lock);
}

static void *
worker_main(void *arg)
{
	struct beat *b = arg;
	struct worker_pool *wp = b->wp;
	struct delivery *ds[64];
	struct pending done[64];
	int n;

	pthread_setname_np(pthread_self(), "worker");

	while (!atomic_load(&wp->abandon) &&
	    (n = queue_receive(wp->q, ds, wp->batch, BEAT_MS)) !=
	    QUEUE_ECLOSED) {
		beat(b);
		if (n < 0) {
			/* backend trouble: it logs; do not spin */
			clock_sleep_ms(100);
			continue;
		}
		for (int i = 0; i < n; i++) {
			int64_t t0 = clock_now_ns();

			done[i].d = ds[i];
			memset(&done[i].res, 0, sizeof(done[i].res));
			atomic_store(&b->waiting, true);
			wp->process(wp->ctx, ds[i], &done[i].res);
			atomic_store(&b->waiting, false);
			beat(b);
			done[i].duration_ns = clock_now_ns() - t0;
			histogram_observe_ns(&wp->processing,
			    done[i].duration_ns);
		}
		pool_hand_over(wp, b, done, n);
	}
	pthread_mutex_lock(&wp->lock);
	wp->workers_left--;
	pthread_cond_signal(&wp->not_empty);
	pthread_mutex_unlock(&wp->lock);
	return NULL;
}

/* Settle each delivery of a committed batch: ack only after the commit. */
static void
settle_batch(struct worker_pool *wp, struct pending *batch, size_t n)
{
	size_t ok = 0, failed = 0;
	int64_t dur = 0;

	for (size_t i = 0; i < n; i++) {
		struct pending *p = &batch[i];

		if (p->res.success) {
			queue_ack(wp->q, p->d);
			ok++;
			dur += p->duration_ns;
		} else {
			if (p->res.message_id == NULL)
				log_warn("dropping a message that cannot be "
				    "decoded and has no id: %s", p->res.error);
			queue_reject(wp->q, p->d, REJECT_TERM);
			failed++;
		}
		result_clear(&p->res);
	}
	pthread_mutex_lock(&wp->lock);
	wp->stats.processed += ok;
	wp->stats.errors += failed;
	wp->stats.total_duration_ns += dur;
	pthread_mutex_unlock(&wp->lock);
}

static void *
settler_main(void *arg)
{
	struct worker_pool *wp = arg;

	pthread_setname_np(pthread_self(), "settler");
	pthread_mutex_lock(&wp->settle_lock);
	for (;;) {
		while (wp->settle_batch == NULL && !wp->committer_done)
			pthread_cond_wait(&wp->settle_cv, &wp->settle_lock);
		if (wp->settle_batch == NULL)
			break;
		pthread_mutex_unlock(&wp->settle_lock);
		settle_batch(wp, wp->settle_batch, wp->settle_n);
		pthread_mutex_lock(&wp->settle_lock);
		/* the slot frees only now: the committer reuses the buffer */
		wp->settle_batch = NULL;
		pthread_cond_broadcast(&wp->settle_cv);
	}
	pthread_mutex_unlock(&wp->settle_lock);
	pthread_mutex_lock(&wp->lock);
	wp->settler_done = true;
	pthread_cond_broadcast(&wp->finished);
	pthread_mutex_unlock(&wp->lock);
	return NULL;
}

/* Say why the store fails, or that it works (why NULL); lock not held. */
static void
store_state(struct worker_pool *wp, const char *why)
{
	pthread_mutex_lock(&wp->lock);
	if (why == NULL)
		wp->store_error[0] = '\0';
	else
		snprintf(wp->store_error, sizeof(wp->store_error), "%s", why);
	pthread_mutex_unlock(&wp->lock);
}

/*
 * Commit rows until the store takes them. A failing store (a full disk, a
 * read-only file) is the infrastructure's fault, never the messages': they
 * stay held, unsettled, while the commit is retried with backoff (the
 * backend keeps them from being redelivered meanwhile), and the workers
 * stop taking more once the committer's ring is full.
 */
static void
commit_until_stored(struct worker_pool *wp, struct processing_result **rows,
    size_t nrows)
{
	struct beat *b = &wp->beats[wp->nworkers];

	int64_t backoff_ms = STORE_RETRY_MIN_MS;
	bool failed = false;
	char *cause = NULL;

	while (result_store_commit(wp->rs, rows, nrows, &cause) != 0) {
		if (!failed)
			log_error("cannot store %zu results, holding them and "
			    "trying again: %s", nrows, cause != NULL ? cause :
			    "error");
		store_state(wp, cause != NULL ? cause : "commit failed");
		pthread_mutex_lock(&wp->lock);
		wp->stats.store_errors++;
		pthread_mutex_unlock(&wp->lock);
		failed = true;
		free(cause);
		cause = NULL;
		clock_sleep_ms(backoff_ms);
		beat(b);
		backoff_ms = backoff_ms * 2 > STORE_RETRY_MAX_MS ?
		    STORE_RETRY_MAX_MS : backoff_ms * 2;
	}
	if (failed) {
		log_info("the result store works again: %zu results stored",
		    nrows);
		store_state(wp, NULL);
	}
}

/* Commit a batch in one transaction, then pass it on to be settled. */
static void
commit_batch(struct worker_pool *wp, struct pending *batch, size_t n)
{
	struct processing_result *rows[COMMIT_BATCH];
	size_t nrows = 0;
	int64_t t0;

	for (size_t i = 0; i < n; i++) {
		if (batch[i].res.message_id != NULL)
			rows[nrows++] = &batch[i].res;
	}
	if (nrows > 0) {
		/* retries included: the time the batch waits for its acks */
		t0 = clock_now_ns();
		commit_until_stored(wp, rows, nrows);
		histogram_observe_ns(&wp->commit_time, clock_now_ns() - t0);
		histogram_observe(&wp->commit_rows, (double)nrows);
	}
	pthread_mutex_lock(&wp->settle_lock);
	while (wp->settle_batch != NULL)
		pthread_cond_wait(&wp->settle_cv, &wp->settle_lock);
	wp->settle_batch = batch;
	wp->settle_n = n;
	pthread_cond_broadcast(&wp->settle_cv);
	pthread_mutex_unlock(&wp->settle_lock);
}

/* Wait until the settler no longer holds buf. */
static void
wait_settled(struct worker_pool *wp, const struct pending *buf)
{
	pthread_mutex_lock(&wp->settle_lock);
	while (wp->settle_batch == buf)
		pthread_cond_wait(&wp->settle_cv, &wp->settle_lock);
	pthread_mutex_unlock(&wp->settle_lock);
}

/* Under load: wait a moment, with wp->lock held, for a full batch. */
static void
group_wait(struct worker_pool *wp)
{
	int64_t at = clock_now_ns() + GROUP_COMMIT_NS;

	wp->wake_at = COMMIT_BATCH;
	while (wp->count < COMMIT_BATCH && wp->ring_bytes < RING_BYTES / 2 &&
	    wp->workers_left > 0) {
		if (clock_cond_wait_until(&wp->not_empty, &wp->lock, at) != 0)
			break;
	}
}

static void *
committer_main(void *arg)
{
	struct worker_pool *wp = arg;
	/* two buffers: one is filled and committed while the other settles */
	struct pending *bufs[2] = { xcalloc(COMMIT_BATCH, sizeof(**bufs)),
		xcalloc(COMMIT_BATCH, sizeof(**bufs)) };
	struct beat *b = &wp->beats[wp->nworkers];
	struct pending *batch;
	size_t n = 0, bytes, sz;
	int k = 0;

	pthread_setname_np(pthread_self(), "committer");
	for (;; k ^= 1) {
		batch = bufs[k];
		wait_settled(wp, batch);
		beat(b);
		pthread_mutex_lock(&wp->lock);
		if (n >= GROUP_COMMIT_LOAD)
			group_wait(wp);
		wp->wake_at = 1;
		atomic_store(&b->waiting, true);
		while (wp->count == 0 && wp->workers_left > 0)
			pthread_cond_wait(&wp->not_empty, &wp->lock);
		atomic_store(&b->waiting, false);
		if (wp->count == 0) {
			pthread_mutex_unlock(&wp->lock);
			break;
		}
		for (n = 0, bytes = 0; n < COMMIT_BATCH && wp->count > 0; n++) {
			sz = pending_bytes(&wp->ring[wp->head]);
			if (n > 0 && bytes + sz > RING_BYTES)
				break;
			bytes += sz;
			batch[n] = wp->ring[wp->head];
			wp->head = (wp->head + 1) % wp->cap;
			wp->count--;
		}
		wp->ring_bytes -= bytes;
		pthread_cond_broadcast(&wp->not_full);
		pthread_mutex_unlock(&wp->lock);
		commit_batch(wp, batch, n);
	}
	wait_settled(wp, bufs[k ^ 1]);
	free(bufs[0]);
	free(bufs[1]);
	pthread_mutex_lock(&wp->settle_lock);
	wp->committer_done = true;
	pthread_cond_broadcast(&wp->settle_cv);
	pthread_mutex_unlock(&wp->settle_lock);
	return NULL;
}

/*
 * Undo a start that failed half-way: the workers that run stop taking
 * deliveries, hand over what they hold, and every thread that was started
 * is joined, so that the caller may close the queue.
 */
static void
pool_abandon(struct worker_pool *wp)
{
	atomic_store(&wp->abandon, true);
	pthread_mutex_lock(&wp->lock);
	/* the workers never started will not say they are done */
	wp->workers_left -= wp->nworkers - wp->nstarted;
	pthread_cond_signal(&wp->not_empty);
	pthread_mutex_unlock(&wp->lock);
	for (int i = 0; i < wp->nstarted; i++)
		pthread_join(wp->workers[i], NULL);
	if (!wp->committer_started) {
		/* no committer: tell the settler nothing will follow */
		pthread_mutex_lock(&wp->settle_lock);
		wp->committer_done = true;
		pthread_cond_broadcast(&wp->settle_cv);
		pthread_mutex_unlock(&wp->settle_lock);
	} else {
		pthread_join(wp->committer, NULL);
	}
	if (wp->settler_started)
		pthread_join(wp->settler, NULL);
	worker_pool_free(wp);
}

int
worker_pool_start(struct worker_pool **out,
    const struct worker_pool_opts *o, char **cause)
{
	struct worker_pool *wp = xcalloc(1, sizeof(*wp));
	int rc = 0;

	*out = NULL;
	wp->q = o->q;
	wp->rs = o->rs;
	wp->process = o->process;
	wp->ctx = o->ctx;
	wp->batch = queue_batch(o->q) < 64 ? queue_batch(o->q) : 64;
	wp->nworkers = o->workers > 0 ? o->workers : 1;
	wp->cap = 2 * COMMIT_BATCH;
	wp->ring = xcalloc(wp->cap, sizeof(*wp->ring));
	wp->workers = xcalloc((size_t)wp->nworkers, sizeof(*wp->workers));
	wp->beats = xcalloc((size_t)wp->nworkers + 1, sizeof(*wp->beats));
	for (int i = 0; i <= wp->nworkers; i++)
		wp->beats[i].wp = wp;
	histogram_init(&wp->processing, processing_bounds,
	    sizeof(processing_bounds) / sizeof(*processing_bounds));
	histogram_init(&wp->commit_rows, rows_bounds,
	    sizeof(rows_bounds) / sizeof(*rows_bounds));
	histogram_init(&wp->commit_time, commit_bounds,
	    sizeof(commit_bounds) / sizeof(*commit_bounds));
	pthread_mutex_init(&wp->lock, NULL);
	clock_cond_init(&wp->not_full);
	clock_cond_init(&wp->not_empty);
	clock_cond_init(&wp->finished);
	pthread_mutex_init(&wp->settle_lock, NULL);
	pthread_cond_init(&wp->settle_cv, NULL);
	wp->workers_left = wp->nworkers;
	wp->wake_at = 1;
	if ((rc = -pthread_create(&wp->settler, NULL, settler_main, wp)) != 0)
		goto out;
	wp->settler_started = true;
	if ((rc = -pthread_create(&wp->committer, NULL, committer_main,
	    wp)) != 0)
		goto out;
	wp->committer_started = true;
	for (; wp->nstarted < wp->nworkers; wp->nstarted++) {
		if ((rc = -pthread_create(&wp->workers[wp->nstarted], NULL,
		    worker_main, &wp->beats[wp->nstarted])) != 0)
			goto out;
	}
out:
	if (rc != 0) {
		xasprintf(cause, "cannot start the worker threads: %s",
		    strerror(-rc));
		pool_abandon(wp);
		return rc;
	}
	*out = wp;
	return 0;
}

int
worker_pool_wait(struct worker_pool *wp, int64_t timeout_ms)
{
	int64_t at = clock_now_ns() + timeout_ms * 1000000;
	int rc = 0;

	pthread_mutex_lock(&wp->lock);
	while (!wp->settler_done && rc == 0)
		rc = clock_cond_wait_until(&wp->finished, &wp->lock, at);
	rc = wp->settler_done ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&wp->lock);
	if (rc != 0)
		return rc;
	for (int i = 0; i < wp->nworkers; i++)
		pthread_join(wp->workers[i], NULL);
	pthread_join(wp->committer, NULL);
	pthread_join(wp->settler, NULL);
	return 0;
}

void
worker_pool_free(struct worker_pool *wp)
{
	if (wp == NULL)
		return;
	pthread_cond_destroy(&wp->not_full);
	pthread_cond_destroy(&wp->not_empty);
	pthread_cond_destroy(&wp->finished);
	pthread_mutex_destroy(&wp->lock);
	pthread_cond_destroy(&wp->settle_cv);
	pthread_mutex_destroy(&wp->settle_lock);
	free(wp->ring);
	free(wp->workers);
	free(wp->beats);
	free(wp);
}

void
worker_pool_ping(struct worker_pool *wp)
{
	atomic_fetch_add(&wp->ping, 1);
}

bool
worker_pool_answered(struct worker_pool *wp)
{
	unsigned ping = atomic_load(&wp->ping);

	for (int i = 0; i <= wp->nworkers; i++) {
		struct beat *b = &wp->beats[i];

		if (atomic_load(&b->pong) != ping && !atomic_load(&b->waiting))
			return false;
	}
	return true;
}

bool
worker_pool_store_ok(struct worker_pool *wp, char *why, size_t len)
{
	bool ok;

	pthread_mutex_lock(&wp->lock);
	ok = wp->store_error[0] == '\0';
	if (!ok)
		snprintf(why, len, "result store: %s", wp->store_error);
	pthread_mutex_unlock(&wp->lock);
	return ok;
}

void
worker_pool_stats(struct worker_pool *wp, struct worker_pool_stats *st)
{
	pthread_mutex_lock(&wp->lock);
	*st = wp->stats;
	pthread_mutex_unlock(&wp->lock);
	st->workers = wp->nworkers;
	st->busy = 0;
	for (int i = 0; i < wp->nworkers; i++)
		st->busy += atomic_load(&wp->beats[i].waiting);
}

void
worker_pool_write_histograms(struct worker_pool *wp, FILE *out)
{
	histogram_write(&wp->processing, out,
	    "diplom_processing_duration_seconds",
	    "Time a worker spent processing one message.");
	histogram_write(&wp->commit_rows, out,
	    "diplom_result_store_commit_rows",
	    "Results one commit to the result store wrote.");
	histogram_write(&wp->commit_time, out,
	    "diplom_result_store_commit_duration_seconds",
	    "Time from a commit's first attempt until the result store "
	    "took it.");
}

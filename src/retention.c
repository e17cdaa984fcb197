/* retention.c - prune old results off the hot path, on a thread of its own */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "retention.h"
#include "xmalloc.h"

/* Bounds on the time between two prunes. */
#define PRUNE_EVERY_MIN_MS 1000
#define PRUNE_EVERY_MAX_MS 60000
#define PRUNE_EVERY_SIZE_MS 10000

struct retention {
	struct result_store *rs;
	int64_t max_age_ms, max_bytes, every_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;			/* under lock */
	atomic_uint_fast64_t pruned;
};

/* One prune; logs what it did, and a failure once until it works again. */
static void
prune_once(struct retention *r, bool *failing)
{
	int64_t before = 0;
	uint64_t n = 0;
	char *cause = NULL;

	if (r->max_age_ms > 0)
		before = (int64_t)time(NULL) - r->max_age_ms / 1000;
	if (result_store_prune(r->rs, before, r->max_bytes, &n, &cause) != 0) {
		if (!*failing)
			log_warn("cannot prune the result store: %s",
			    cause != NULL ? cause : "error");
		*failing = true;
	} else {
		*failing = false;
	}
	free(cause);
	if (n > 0) {
		atomic_fetch_add(&r->pruned, n);
		log_debug("pruned %ju results", (uintmax_t)n);
	}
}

static void *
retention_main(void *arg)
{
	struct retention *r = arg;
	bool failing = false;

	pthread_setname_np(pthread_self(), "retention");
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		pthread_mutex_unlock(&r->lock);
		prune_once(r, &failing);
		pthread_mutex_lock(&r->lock);
		if (!r->stop)
			clock_cond_wait_until(&r->wake, &r->lock,
			    clock_now_ns() + r->every_ms * 1000000);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int
retention_start(struct retention **out, struct result_store *rs,
    int64_t max_age_ms, int64_t max_bytes, char **cause)
{
	struct retention *r;
	int rc;

	*out = NULL;
	if (max_age_ms <= 0 && max_bytes <= 0)
		return 0;
	r = xcalloc(1, sizeof(*r));
	r->rs = rs;
	r->max_age_ms = max_age_ms;
	r->max_bytes = max_bytes;
	/*
	 * A tenth of the retention: a row outlives it by that at most. A size
	 * limit is looked at every 10 s whatever the retention: the store
	 * outgrows it by what arrives in between, and a prune with nothing to
	 * delete costs two page counts.
	 */
	r->every_ms = max_age_ms > 0 ? max_age_ms / 10 : PRUNE_EVERY_SIZE_MS;
	if (max_bytes > 0 && r->every_ms > PRUNE_EVERY_SIZE_MS)
		r->every_ms = PRUNE_EVERY_SIZE_MS;
	if (r->every_ms < PRUNE_EVERY_MIN_MS)
		r->every_ms = PRUNE_EVERY_MIN_MS;
	if (r->every_ms > PRUNE_EVERY_MAX_MS)
		r->every_ms = PRUNE_EVERY_MAX_MS;
	pthread_mutex_init(&r->lock, NULL);
	clock_cond_init(&r->wake);
	if ((rc = pthread_create(&r->thread, NULL, retention_main, r)) != 0) {
		xasprintf(cause, "cannot start the retention thread: %s",
		    strerror(rc));
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -rc;
	}
	*out = r;
	return 0;
}

void
retention_stop(struct retention *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

uint64_t
retention_pruned(struct retention *r)
{
	return r != NULL ? atomic_load(&r->pruned) : 0;
}

/* rate_limit.h - token buckets per client, in a table of bounded size */
#ifndef DIPLOM_RATE_LIMIT_H
#define DIPLOM_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Longest key a bucket is found by: an address, a digest. */
#define RATE_KEY_MAX 32

struct rate_limiter;

/*
 * Buckets of burst tokens (0: rate), refilled at rate tokens a second
 * (rate >= 1), one per key, at most capacity of them (rounded up to the
 * table's sets): a key not seen takes the place of the fullest bucket of
 * its set, so memory stays bounded whatever keys come.
 */
int rate_limiter_new(struct rate_limiter **out, int64_t rate, int64_t burst,
    size_t capacity, char **cause);
/*
 * Take a token from key's bucket (len <= RATE_KEY_MAX bytes) at now_ns
 * (monotonic): 0 when there was one, else the whole seconds, at least 1,
 * until there is. Safe on any thread.
 */
int rate_limiter_take(struct rate_limiter *rl, const void *key, size_t len,
    int64_t now_ns);
/* Buckets in use, and the most there can be. */
size_t rate_limiter_size(struct rate_limiter *rl);
size_t rate_limiter_capacity(const struct rate_limiter *rl);
void rate_limiter_free(struct rate_limiter *rl);

#endif

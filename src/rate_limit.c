/* rate_limit.c - token buckets in a set-associative table of fixed size */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "rate_limit.h"
#include "xmalloc.h"

/* Buckets a key may be in: its set's. */
#define WAYS 8

struct bucket {
	unsigned char key[RATE_KEY_MAX];
	unsigned char len;		/* 0: free */
	double tokens;
	int64_t last_ns;		/* last refill */
};

struct rate_limiter {
	double rate;			/* tokens a second */
	double burst;			/* most tokens a bucket holds */
	size_t nsets;			/* a power of two */
	uint64_t seed;			/* so no one can aim at one set */
	/* lock guards sets and used: the work under it is a few compares */
	pthread_mutex_t lock;
	struct bucket (*sets)[WAYS];
	size_t used;
};

int
rate_limiter_new(struct rate_limiter **out, int64_t rate, int64_t burst,
    size_t capacity, char **cause)
{
	struct rate_limiter *rl;
	size_t nsets = 1;

	*out = NULL;
	if (rate < 1 || burst < 0 || capacity < 1) {
		xasprintf(cause, "a rate limit needs a rate of at least 1 a "
		    "second and room for a bucket");
		return -EINVAL;
	}
	while (nsets * WAYS < capacity)
		nsets *= 2;
	rl = xcalloc(1, sizeof(*rl));
	rl->rate = (double)rate;
	rl->burst = (double)(burst > 0 ? burst : rate);
	rl->nsets = nsets;
	rl->sets = xcalloc(nsets, sizeof(*rl->sets));
	if (gnutls_rnd(GNUTLS_RND_NONCE, &rl->seed, sizeof(rl->seed)) != 0)
		rl->seed = (uint64_t)(uintptr_t)rl;
	pthread_mutex_init(&rl->lock, NULL);
	*out = rl;
	return 0;
}

/* FNV-1a from a random start: spreads keys over the sets. */
static size_t
set_of(const struct rate_limiter *rl, const unsigned char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL ^ rl->seed;

	for (size_t i = 0; i < len; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 32;
	return (size_t)(h & (rl->nsets - 1));
}

/* The tokens b would hold at now_ns. */
static double
tokens_at(const struct rate_limiter *rl, const struct bucket *b,
    int64_t now_ns)
{
	double t = b->tokens;

	if (now_ns > b->last_ns)
		t += (double)(now_ns - b->last_ns) / 1e9 * rl->rate;
	return t < rl->burst ? t : rl->burst;
}

/*
 * key's bucket in set, or the one it takes: a free one, else the fullest,
 * the least recently used of those. Forgetting a full bucket loses
 * nothing; and a client held back by an empty one does not get a fresh
 * one by sending from many other addresses.
 */
static struct bucket *
find_bucket(struct rate_limiter *rl, struct bucket *set,
    const unsigned char *key, size_t len, int64_t now_ns)
{
	struct bucket *victim = NULL;
	double most = -1;

	for (size_t i = 0; i < WAYS; i++) {
		struct bucket *b = &set[i];
		double t;

		if (b->len == len && memcmp(b->key, key, len) == 0)
			return b;
		t = b->len == 0 ? rl->burst + 1 : tokens_at(rl, b, now_ns);
		if (t > most || (t == most && b->last_ns < victim->last_ns)) {
			victim = b;
			most = t;
		}
	}
	if (victim->len == 0)
		rl->used++;
	memcpy(victim->key, key, len);
	victim->len = (unsigned char)len;
	victim->tokens = rl->burst;
	victim->last_ns = now_ns;
	return victim;
}

int
rate_limiter_take(struct rate_limiter *rl, const void *key, size_t len,
    int64_t now_ns)
{
	struct bucket *b;
	double wait;
	int rc = 0;

	if (len > RATE_KEY_MAX)
		len = RATE_KEY_MAX;
	if (len == 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	b = find_bucket(rl, rl->sets[set_of(rl, key, len)], key, len, now_ns);
	b->tokens = tokens_at(rl, b, now_ns);
	if (now_ns > b->last_ns)
		b->last_ns = now_ns;
	if (b->tokens >= 1) {
		b->tokens -= 1;
	} else {
		/* rounded up: a client that waits that long gets a token */
		wait = (1 - b->tokens) / rl->rate;
		rc = wait > 86400 ? 86400 : (int)wait;
		if ((double)rc < wait || rc < 1)
			rc++;
	}
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

size_t
rate_limiter_size(struct rate_limiter *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->lock);
	n = rl->used;
	pthread_mutex_unlock(&rl->lock);
	return n;
}

size_t
rate_limiter_capacity(const struct rate_limiter *rl)
{
	return rl->nsets * WAYS;
}

void
rate_limiter_free(struct rate_limiter *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->sets);
	free(rl);
}

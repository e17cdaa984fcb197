/* result_store.h - processing results in SQLite, keyed by message id */
#ifndef DIPLOM_RESULT_STORE_H
#define DIPLOM_RESULT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct result_store;

int result_store_open(struct result_store **rs, const char *path,
    char **cause);
void result_store_close(struct result_store *rs);

/*
 * Commit n results in one transaction. A message id already stored only
 * counts one more delivery: it never adds a row, and its outcome stays,
 * but for a success after a failure, which replaces the failed row's
 * outcome (a replay). A failed result keeps its message, a success none.
 * Call from one thread.
 */
int result_store_commit(struct result_store *rs,
    struct processing_result *const *res, size_t n, char **cause);

/* Fill res for id; -ENOENT when not stored. Safe from any thread. */
int result_store_get(struct result_store *rs, const char *id,
    struct processing_result *res);

/*
 * Call each(ctx, r) for the failed rows processed at or after since (Unix
 * seconds), newest first, at most limit. r is borrowed for the call: its
 * message is NULL, its message_len the length of the kept message (0:
 * none). Safe from any thread; each must not call into the store.
 */
typedef void (*result_store_each_fn)(void *ctx,
    const struct processing_result *r);
int result_store_failed(struct result_store *rs, int64_t since,
    int64_t limit, result_store_each_fn each, void *ctx);

/* How large the store is. */
struct result_store_size {
	int64_t rows;
	int64_t failed;		/* rows with success = 0 */
	int64_t bytes;		/* of the pages in use */
};

/* Fill sz; counting the rows takes a while in a large store. */
int result_store_size(struct result_store *rs, struct result_store_size *sz);

/*
 * Delete the rows processed before `before` (Unix seconds; 0: none for
 * their age), then the oldest rows while the rows take more than max_bytes
 * (0: no limit), in small transactions of their own, and give the freed
 * pages back to the file system. *pruned: rows deleted. From one thread,
 * beside the committer and the readers.
 */
int result_store_prune(struct result_store *rs, int64_t before,
    int64_t max_bytes, uint64_t *pruned, char **cause);

#endif

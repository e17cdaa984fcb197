/* retention.h - a thread that keeps the result store within its limits */
#ifndef DIPLOM_RETENTION_H
#define DIPLOM_RETENTION_H

#include <stdint.h>

#include "result_store.h"

struct retention;

/*
 * Prune rs every while: rows older than max_age_ms (0: any age) and the
 * oldest past max_bytes (0: any size). With neither, *r is NULL and no
 * thread runs.
 */
int retention_start(struct retention **r, struct result_store *rs,
    int64_t max_age_ms, int64_t max_bytes, char **cause);
/* Stop and free; NULL is fine. */
void retention_stop(struct retention *r);
/* Rows pruned so far; 0 for NULL. */
uint64_t retention_pruned(struct retention *r);

#endif

/* loadgen/record.h - diplom-loadgen --record: accepted ids into SQLite */
#ifndef DIPLOM_LOADGEN_RECORD_H
#define DIPLOM_LOADGEN_RECORD_H

#include <stdint.h>

/*
 * Table sent(message_id TEXT PRIMARY KEY, label TEXT, accepted_at INTEGER),
 * accepted_at in Unix milliseconds. Rows are written in batches (one
 * transaction per LG_RECORD_BATCH rows or LG_RECORD_AGE_MS), so recording
 * does not slow a run down; lg_record_flush commits what is pending.
 */
#define LG_RECORD_BATCH		500
#define LG_RECORD_AGE_MS	100

struct lg_record;

/* Open or create the database at path; rows get label. -errno, *cause. */
int lg_record_open(struct lg_record **rp, const char *path, const char *label,
    char **cause);
/* Add one accepted id (a second add of the same id is ignored). */
int lg_record_add(struct lg_record *r, const char *message_id,
    int64_t accepted_at_ms, char **cause);
/* Commit the pending batch when it is older than LG_RECORD_AGE_MS. */
int lg_record_tick(struct lg_record *r, int64_t now_ms, char **cause);
/* Commit whatever is pending. */
int lg_record_flush(struct lg_record *r, char **cause);
/* Close without committing; flush first to keep the pending rows. */
void lg_record_close(struct lg_record *r);

#endif

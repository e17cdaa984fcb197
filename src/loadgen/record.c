/* loadgen/record.c - diplom-loadgen --record: accepted ids into SQLite */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "loadgen/record.h"

struct lg_record {
	sqlite3 *db;
	sqlite3_stmt *insert;	/* label is bound once, at open */
	int pending;		/* rows in the open transaction, 0: none open */
	int64_t first_ms;	/* when the open transaction got its 1st row */
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	/* a crash of this process loses nothing committed; power loss may */
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS sent ("
	" message_id TEXT PRIMARY KEY,"
	" label TEXT,"
	" accepted_at INTEGER)";

/* Turn the database's last error into -EIO and a reason. */
static int
record_error(sqlite3 *db, const char *what, char **cause)
{
	if (asprintf(cause, "%s: %s", what, db != NULL ? sqlite3_errmsg(db) :
	    "out of memory") < 0)
		*cause = NULL;
	return -EIO;
}

int
lg_record_open(struct lg_record **rp, const char *path, const char *label,
    char **cause)
{
	struct lg_record *r;
	int rc = -ENOMEM;

	*rp = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto out;
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		rc = record_error(r->db, path, cause);
		goto out;
	}
	/* a harness may read the table while we write it */
	sqlite3_busy_timeout(r->db, 5000);
	if (sqlite3_exec(r->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO sent "
	    "(message_id, label, accepted_at) VALUES (?1, ?2, ?3)", -1,
	    &r->insert, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(r->insert, 2, label, -1,
	    SQLITE_TRANSIENT) != SQLITE_OK) {
		rc = record_error(r->db, path, cause);
		goto out;
	}
	*rp = r;
	r = NULL;
	rc = 0;
out:
	lg_record_close(r);
	return rc;
}

int
lg_record_add(struct lg_record *r, const char *message_id,
    int64_t accepted_at_ms, char **cause)
{
	if (r->pending == 0) {
		if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return record_error(r->db, "begin", cause);
		r->first_ms = accepted_at_ms;
	}
	/* counted before the step: even when it fails, a transaction is open
	 * and the next flush must end it */
	r->pending++;
	sqlite3_bind_text(r->insert, 1, message_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(r->insert, 3, accepted_at_ms);
	if (sqlite3_step(r->insert) != SQLITE_DONE) {
		sqlite3_reset(r->insert);
		return record_error(r->db, "insert", cause);
	}
	sqlite3_reset(r->insert);
	if (r->pending >= LG_RECORD_BATCH)
		return lg_record_flush(r, cause);
	return 0;
}

int
lg_record_tick(struct lg_record *r, int64_t now_ms, char **cause)
{
	if (r->pending > 0 && now_ms - r->first_ms >= LG_RECORD_AGE_MS)
		return lg_record_flush(r, cause);
	return 0;
}

int
lg_record_flush(struct lg_record *r, char **cause)
{
	if (r->pending == 0)
		return 0;
	if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return record_error(r->db, "commit", cause);
	r->pending = 0;
	return 0;
}

void
lg_record_close(struct lg_record *r)
{
	if (r == NULL)
		return;
	sqlite3_finalize(r->insert);
	/* an open transaction is rolled back by closing */
	sqlite3_close(r->db);
	free(r);
}

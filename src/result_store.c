/* result_store.c - SQLite (WAL) result store: one writer, locked readers */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <sys/stat.h>

#include "result_store.h"
#include "xmalloc.h"

struct result_store {
	sqlite3 *wdb;			/* the committer's own connection */
	sqlite3 *pdb;			/* the pruner's, opened by its first run */
	sqlite3_stmt *prune_age, *prune_oldest, *used_bytes, *span;
	sqlite3_stmt *upsert;
	/* rlock guards rdb and the statements below */
	pthread_mutex_t rlock;
	sqlite3 *rdb;
	sqlite3_stmt *get, *failed, *size;
};

/* The committer's page cache, in KiB as a negative cache_size says. */
#define WRITER_CACHE_KIB "-8192"

/*
 * The schema's version, in the database's user_version. A newer diplomd
 * migrates an older store at start; an older one refuses a newer store.
 */
#define SCHEMA_VERSION 4

/*
 * The failed rows by time, for listing them: a partial index, so that a
 * successful row (nearly all) costs it nothing.
 */
#define FAILED_INDEX \
    "CREATE INDEX results_failed ON results (processed_at) WHERE success = 0"

static const char schema[] =
    "CREATE TABLE results ("
    " message_id TEXT PRIMARY KEY,"
    " source TEXT,"
    " timestamp INTEGER,"
    " processed_at INTEGER,"
    " success INTEGER NOT NULL,"
    " error TEXT,"
    " result BLOB,"
    " deliveries INTEGER NOT NULL DEFAULT 1,"
    " message BLOB,"
    " client TEXT,"
    " fingerprint TEXT);"
    FAILED_INDEX;

/*
 * migrations[v] takes a store from version v to v + 1. Version 0 is the
 * schema of diplom 0.1.0, which had no version.
 */
static const char *const migrations[SCHEMA_VERSION] = {
	/* 1: a failed row keeps the message as it came, to be replayed */
	"ALTER TABLE results ADD COLUMN message BLOB",
	/* 2: failed rows are listed newest first */
	FAILED_INDEX,
	/* 3: a row belongs to the client that sent the message, or none */
	"ALTER TABLE results ADD COLUMN client TEXT",
	/*
	 * 4: a keyed message's fingerprint, so that its key coming again
	 * with another body is told apart from a retry
	 */
	"ALTER TABLE results ADD COLUMN fingerprint TEXT",
};

/*
 * A message stored already counts one more delivery and keeps its row;
 * only a success that follows a failure (a replay, or a client's late
 * retry) replaces the row's outcome, and not with another body under the
 * same key. SET reads the row as it was.
 */
#define FAILED_THEN_OK "success = 0 AND excluded.success = 1 AND" \
    " (fingerprint IS NULL OR excluded.fingerprint IS NULL OR" \
    " fingerprint = excluded.fingerprint)"
#define REPLACE_IF_OK(col) \
    " " col " = CASE WHEN " FAILED_THEN_OK " THEN excluded." col \
    " ELSE " col " END"

static const char upsert_sql[] =
    "INSERT INTO results (message_id, source, timestamp, processed_at,"
    " success, error, result, deliveries, message, client, fingerprint)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)"
    " ON CONFLICT (message_id) DO UPDATE SET"
    " deliveries = deliveries + 1,"
    REPLACE_IF_OK("source") ","
    REPLACE_IF_OK("timestamp") ","
    REPLACE_IF_OK("processed_at") ","
    REPLACE_IF_OK("error") ","
    REPLACE_IF_OK("result") ","
    REPLACE_IF_OK("message") ","
    REPLACE_IF_OK("fingerprint") ","
    REPLACE_IF_OK("success");

/*
 * Pruning takes the oldest rows first, in transactions this small, so that
 * the committer never waits long for the write lock. Rows are in rowid
 * order of their commits, so the oldest are the first rowids: no index on
 * processed_at is kept up on the hot path for this.
 */
#define PRUNE_BATCH 500

static const char prune_age_sql[] =
    "DELETE FROM results WHERE rowid IN (SELECT rowid FROM results"
    " ORDER BY rowid LIMIT ?1) AND processed_at < ?2";
static const char prune_oldest_sql[] =
    "DELETE FROM results WHERE rowid IN (SELECT rowid FROM results"
    " ORDER BY rowid LIMIT ?1)";
static const char used_bytes_sql[] =
    "SELECT (c.page_count - f.freelist_count) * s.page_size"
    " FROM pragma_page_count() c, pragma_freelist_count() f,"
    " pragma_page_size() s";

/* About how many rows there are, without counting them. */
static const char span_sql[] =
    "SELECT max(rowid) - min(rowid) + 1 FROM results";

static const char get_sql[] =
    "SELECT source, timestamp, processed_at, success, error, result,"
    " deliveries, message, client, fingerprint FROM results"
    " WHERE message_id = ?1";

/* Newest first; the partial index answers it without the table's rows. */
static const char failed_sql[] =
    "SELECT message_id, processed_at, error, deliveries, length(message)"
    " FROM results WHERE success = 0 AND processed_at >= ?1"
    " ORDER BY processed_at DESC, rowid DESC LIMIT ?2";

static const char size_sql[] =
    "SELECT (SELECT count(*) FROM results),"
    " (SELECT count(*) FROM results WHERE success = 0),"
    " (c.page_count - f.freelist_count) * s.page_size"
    " FROM pragma_page_count() c, pragma_freelist_count() f,"
    " pragma_page_size() s";

static char *
db_cause(sqlite3 *db, const char *what)
{
	char *s;

	if (asprintf(&s, "%s: %s", what, db != NULL ? sqlite3_errmsg(db) :
	    "out of memory") < 0)
		return NULL;
	return s;
}

/* One connection with our settings; WAL lets readers run beside the writer. */
static int
db_open(const char *path, sqlite3 **db, char **cause)
{
	/*
	 * synchronous=FULL: a result must survive power loss once its message
	 * is acked, and commits are batched so the fsync is paid per batch.
	 * Checkpoints are rarer than the default (every 1000 pages): random
	 * message ids dirty pages all over the index, and a page written to
	 * the log several times is copied back only once.
	 */
	static const char pragmas[] =
	    "PRAGMA auto_vacuum=INCREMENTAL;"
	    " PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    " PRAGMA wal_autocheckpoint=8000;"
	    " PRAGMA journal_size_limit=67108864;";

	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(*db, 10000) != SQLITE_OK ||
	    sqlite3_exec(*db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		*cause = db_cause(*db, path);
		return -EIO;
	}
	return 0;
}

/*
 * Results are other people's data: the database is created 0640 whatever
 * the umask (SQLite gives its -wal and -shm files the same mode), and an
 * existing one loses any wider bits.
 */
static int
db_file_mode(const char *path, char **cause)
{
	struct stat st;
	int fd, rc = 0;

	if (strcmp(path, ":memory:") == 0)
		return 0;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st) != 0 || ((st.st_mode & 07777 & ~0640) != 0 &&
	    fchmod(fd, st.st_mode & 0640) != 0))
		rc = -errno;
	close(fd);
out:
	if (rc != 0 && asprintf(cause, "%s: %s", path, strerror(-rc)) < 0)
		*cause = NULL;
	return rc;
}

/* The integer a one-value query yields, or -1. */
static int64_t
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Create the schema, or bring an older one up to SCHEMA_VERSION, in one
 * transaction: a migration that fails leaves the store as it was.
 */
static int
schema_ensure(sqlite3 *db, const char *path, char **cause)
{
	int64_t have, tables;
	char *sql = NULL;
	int rc = -EIO;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		*cause = db_cause(db, path);
		return -EIO;
	}
	have = db_int(db, "PRAGMA user_version");
	tables = db_int(db, "SELECT count(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'results'");
	if (have < 0 || tables < 0) {
		*cause = db_cause(db, path);
		goto out;
	}
	if (have > SCHEMA_VERSION) {
		if (asprintf(cause, "%s: written by a newer diplomd (schema "
		    "version %jd; this one knows up to %d)", path,
		    (intmax_t)have, SCHEMA_VERSION) < 0)
			*cause = NULL;
		rc = -EPROTO;
		goto out;
	}
	if (tables == 0 && sqlite3_exec(db, schema, NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	for (int64_t v = tables == 0 ? SCHEMA_VERSION : have;
	    v < SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) !=
		    SQLITE_OK)
			goto fail;
	}
	xasprintf(&sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	rc = 0;
	goto out;
fail:
	*cause = db_cause(db, "migrating the result store");
out:
	free(sql);
	if (rc != 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
result_store_open(struct result_store **out, const char *path, char **cause)
{
	struct result_store *rs = xcalloc(1, sizeof(*rs));
	int rc = -EIO;

	*cause = NULL;
	pthread_mutex_init(&rs->rlock, NULL);
	if ((rc = db_file_mode(path, cause)) != 0 ||
	    (rc = db_open(path, &rs->wdb, cause)) != 0 ||
	    (rc = schema_ensure(rs->wdb, path, cause)) != 0 ||
	    (rc = db_open(path, &rs->rdb, cause)) != 0)
		goto out;
	rc = -EIO;
	/*
	 * The writer's page cache is four times SQLite's default: message
	 * ids are random, so every row of a commit lands on an index page of
	 * its own, and a page found in the cache is a pread saved. The
	 * readers keep the default; processor RSS stays well within its
	 * budget (see doc/benchmarks.md).
	 */
	if (sqlite3_exec(rs->wdb, "PRAGMA cache_size=" WRITER_CACHE_KIB,
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(rs->wdb, upsert_sql, -1, &rs->upsert,
	    NULL) != SQLITE_OK) {
		*cause = db_cause(rs->wdb, path);
		goto out;
	}
	if (sqlite3_prepare_v2(rs->rdb, get_sql, -1, &rs->get, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(rs->rdb, failed_sql, -1, &rs->failed, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(rs->rdb, size_sql, -1, &rs->size, NULL) !=
	    SQLITE_OK) {
		*cause = db_cause(rs->rdb, path);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		result_store_close(rs);
		rs = NULL;
	}
	*out = rs;
	return rc;
}

/* Free the pruner's statements and connection; the next prune opens them. */
static void
prune_close(struct result_store *rs)
{
	sqlite3_finalize(rs->prune_age);
	sqlite3_finalize(rs->prune_oldest);
	sqlite3_finalize(rs->used_bytes);
	sqlite3_finalize(rs->span);
	sqlite3_close(rs->pdb);
	rs->prune_age = rs->prune_oldest = rs->used_bytes = rs->span = NULL;
	rs->pdb = NULL;
}

void
result_store_close(struct result_store *rs)
{
	if (rs == NULL)
		return;
	sqlite3_finalize(rs->upsert);
	sqlite3_finalize(rs->get);
	sqlite3_finalize(rs->failed);
	sqlite3_finalize(rs->size);
	prune_close(rs);
	sqlite3_close(rs->wdb);
	sqlite3_close(rs->rdb);
	pthread_mutex_destroy(&rs->rlock);
	free(rs);
}

static int
bind_result(sqlite3_stmt *st, const struct processing_result *r)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (sqlite3_bind_text(st, 1, r->message_id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, r->source, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 3, r->timestamp) ||
	    sqlite3_bind_int64(st, 4, r->processed_at) ||
	    sqlite3_bind_int(st, 5, r->success) ||
	    sqlite3_bind_text(st, 6, r->error, -1, SQLITE_STATIC) ||
	    sqlite3_bind_blob64(st, 7, r->result != NULL ? (const void *)r->result
	    : "", r->result_len, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 9, r->client, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 10, r->fingerprint, -1, SQLITE_STATIC))
		return -EIO;
	/* a success keeps no message: NULL, as left by clear_bindings */
	if (!r->success && r->message != NULL &&
	    sqlite3_bind_blob64(st, 8, r->message, r->message_len,
	    SQLITE_STATIC))
		return -EIO;
	return 0;
}

int
result_store_commit(struct result_store *rs,
    struct processing_result *const *res, size_t n, char **cause)
{
	int rc = -EIO;

	*cause = NULL;
	if (sqlite3_exec(rs->wdb, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		*cause = db_cause(rs->wdb, "begin");
		return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		if (bind_result(rs->upsert, res[i]) != 0 ||
		    sqlite3_step(rs->upsert) != SQLITE_DONE) {
			*cause = db_cause(rs->wdb, "insert result");
			goto out;
		}
	}
	if (sqlite3_exec(rs->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*cause = db_cause(rs->wdb, "commit");
		goto out;
	}
	rc = 0;
out:
	sqlite3_reset(rs->upsert);
	if (rc != 0)
		sqlite3_exec(rs->wdb, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static char *
column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s != NULL ? strdup((const char *)s) : NULL;
}

int
result_store_get(struct result_store *rs, const char *id,
    struct processing_result *res)
{
	int rc = -EIO, step;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&rs->rlock);
	sqlite3_reset(rs->get);
	if (sqlite3_bind_text(rs->get, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	step = sqlite3_step(rs->get);
	if (step == SQLITE_DONE) {
		rc = -ENOENT;
		goto out;
	}
	if (step != SQLITE_ROW)
		goto out;
	res->message_id = strdup(id);
	res->source = column_strdup(rs->get, 0);
	res->timestamp = sqlite3_column_int64(rs->get, 1);
	res->processed_at = sqlite3_column_int64(rs->get, 2);
	res->success = sqlite3_column_int(rs->get, 3) != 0;
	res->error = column_strdup(rs->get, 4);
	res->result_len = (size_t)sqlite3_column_bytes(rs->get, 5);
	res->result = malloc(res->result_len + 1);
	if (res->result != NULL && res->result_len > 0)
		memcpy(res->result, sqlite3_column_blob(rs->get, 5),
		    res->result_len);
	res->deliveries = sqlite3_column_int64(rs->get, 6);
	if (sqlite3_column_type(rs->get, 7) != SQLITE_NULL) {
		res->message_len = (size_t)sqlite3_column_bytes(rs->get, 7);
		res->message = malloc(res->message_len + 1);
		if (res->message == NULL)
			goto out;
		if (res->message_len > 0)
			memcpy(res->message, sqlite3_column_blob(rs->get, 7),
			    res->message_len);
	}
	if (sqlite3_column_type(rs->get, 8) != SQLITE_NULL &&
	    (res->client = column_strdup(rs->get, 8)) == NULL)
		goto out;
	if (sqlite3_column_type(rs->get, 9) != SQLITE_NULL &&
	    (res->fingerprint = column_strdup(rs->get, 9)) == NULL)
		goto out;
	rc = res->message_id != NULL && res->result != NULL ? 0 : -ENOMEM;
out:
	sqlite3_reset(rs->get);
	pthread_mutex_unlock(&rs->rlock);
	if (rc != 0)
		result_clear(res);
	return rc;
}

int
result_store_failed(struct result_store *rs, int64_t since, int64_t limit,
    result_store_each_fn each, void *ctx)
{
	struct processing_result r;
	int rc = -EIO, step;

	pthread_mutex_lock(&rs->rlock);
	sqlite3_reset(rs->failed);
	if (sqlite3_bind_int64(rs->failed, 1, since) != SQLITE_OK ||
	    sqlite3_bind_int64(rs->failed, 2, limit) != SQLITE_OK)
		goto out;
	while ((step = sqlite3_step(rs->failed)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.message_id = (char *)sqlite3_column_text(rs->failed, 0);
		r.processed_at = sqlite3_column_int64(rs->failed, 1);
		r.error = (char *)sqlite3_column_text(rs->failed, 2);
		r.deliveries = sqlite3_column_int64(rs->failed, 3);
		r.message_len = (size_t)sqlite3_column_int64(rs->failed, 4);
		if (r.message_id != NULL)
			each(ctx, &r);
	}
	if (step == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_reset(rs->failed);
	pthread_mutex_unlock(&rs->rlock);
	return rc;
}

int
result_store_size(struct result_store *rs, struct result_store_size *sz)
{
	int rc = -EIO;

	memset(sz, 0, sizeof(*sz));
	pthread_mutex_lock(&rs->rlock);
	sqlite3_reset(rs->size);
	if (sqlite3_step(rs->size) == SQLITE_ROW) {
		sz->rows = sqlite3_column_int64(rs->size, 0);
		sz->failed = sqlite3_column_int64(rs->size, 1);
		sz->bytes = sqlite3_column_int64(rs->size, 2);
		rc = 0;
	}
	sqlite3_reset(rs->size);
	pthread_mutex_unlock(&rs->rlock);
	return rc;
}

/*
 * The pruner's connection and statements. Freed pages go back to the file
 * only with incremental vacuum, which a store made before it was the
 * default gets by one VACUUM here.
 */
static int
prune_open(struct result_store *rs, char **cause)
{
	const char *path = sqlite3_db_filename(rs->wdb, "main");

	if (rs->pdb != NULL)
		return 0;
	if (db_open(path != NULL && path[0] != '\0' ? path : ":memory:",
	    &rs->pdb, cause) != 0)
		goto fail;
	if ((db_int(rs->pdb, "PRAGMA auto_vacuum") != 2 &&
	    sqlite3_exec(rs->pdb, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM",
	    NULL, NULL, NULL) != SQLITE_OK) ||
	    sqlite3_prepare_v2(rs->pdb, prune_age_sql, -1, &rs->prune_age,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(rs->pdb, prune_oldest_sql, -1,
	    &rs->prune_oldest, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(rs->pdb, used_bytes_sql, -1, &rs->used_bytes,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(rs->pdb, span_sql, -1, &rs->span, NULL) !=
	    SQLITE_OK) {
		*cause = db_cause(rs->pdb, "prune");
		goto fail;
	}
	return 0;
fail:
	prune_close(rs);
	return -EIO;
}

/* Run one delete of at most `limit` rows; rows deleted, or -1. */
static int64_t
prune_step(struct result_store *rs, sqlite3_stmt *st, int limit,
    int64_t before)
{
	int64_t n = -1;

	sqlite3_reset(st);
	if (sqlite3_bind_int(st, 1, limit) != SQLITE_OK ||
	    (before > 0 && sqlite3_bind_int64(st, 2, before) != SQLITE_OK))
		goto out;
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes64(rs->pdb);
out:
	sqlite3_reset(st);
	return n;
}

/* The one integer st yields, or -1. */
static int64_t
query_int(sqlite3_stmt *st)
{
	int64_t n = -1;

	sqlite3_reset(st);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/*
 * How many of the oldest rows to delete so that the rest take about
 * max_bytes (from the bytes a row takes on average), at most a batch;
 * 0 when they are within it.
 */
static int
rows_over(struct result_store *rs, int64_t max_bytes)
{
	int64_t used = query_int(rs->used_bytes);
	int64_t rows = query_int(rs->span), over;

	if (used <= max_bytes || rows <= 0)
		return 0;
	over = (used - max_bytes) / (used / rows > 0 ? used / rows : 1) + 1;
	return over > PRUNE_BATCH ? PRUNE_BATCH : (int)over;
}

/*
 * Freed pages leave the database only through the log: the vacuum writes
 * the shorter file there, and a checkpoint copies it back and truncates
 * the database. A passive one would leave the log as long as everything
 * the vacuum and the writes since the last checkpoint put in it, which
 * alone can be many times the limit; TRUNCATE waits for the committer's
 * transaction in flight (the busy timeout) and empties the log, so the
 * two files together end near max_bytes. When it cannot (a reader holds
 * an old snapshot past the timeout), the next prune tries again.
 */
static void
give_space_back(struct result_store *rs)
{
	sqlite3_exec(rs->pdb, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
	sqlite3_exec(rs->pdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
	    NULL);
}

int
result_store_prune(struct result_store *rs, int64_t before,
    int64_t max_bytes, uint64_t *pruned, char **cause)
{
	int64_t n = 0;
	int over;

	*pruned = 0;
	*cause = NULL;
	if (prune_open(rs, cause) != 0)
		return -EIO;
	while (before > 0 && (n = prune_step(rs, rs->prune_age, PRUNE_BATCH,
	    before)) > 0) {
		*pruned += (uint64_t)n;
		if (n < PRUNE_BATCH)
			break;
	}
	while (n >= 0 && max_bytes > 0 && (over = rows_over(rs,
	    max_bytes)) > 0 && (n = prune_step(rs, rs->prune_oldest, over,
	    0)) > 0)
		*pruned += (uint64_t)n;
	if (n < 0) {
		*cause = db_cause(rs->pdb, "prune");
		return -EIO;
	}
	if (*pruned > 0)
		give_space_back(rs);
	return 0;
}

/* check_result_store.c - the SQLite result store */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <sys/stat.h>

#include "check_main.h"
#include "check_util.h"
#include "result_store.h"

Suite *result_store_suite(void);

static char dir[PATH_MAX - 64];
static char db_path[PATH_MAX];
static struct result_store *rs;

/* Open rs on db_path. */
static void
open_or_fail(void)
{
	char *cause = NULL;

	ck_assert_msg(result_store_open(&rs, db_path, &cause) == 0,
	    "open %s: %s", db_path, cause != NULL ? cause : "?");
	ck_assert_ptr_nonnull(rs);
	ck_assert_ptr_null(cause);
}

static void
setup(void)
{
	tu_temp_dir(dir, sizeof(dir), "check_result_store");
	snprintf(db_path, sizeof(db_path), "%s/results.db", dir);
	open_or_fail();
}

static void
teardown(void)
{
	result_store_close(rs);
	rs = NULL;
	tu_remove_db(db_path);
	rmdir(dir);
}

/* A successful result for id with result "PROCESSED_<payload>". */
static struct processing_result
make_result(const char *id, const char *payload)
{
	struct processing_result r = { 0 };

	r.message_id = strdup(id);
	r.source = strdup("sensor-1");
	r.timestamp = 1732700000;
	r.processed_at = 1732700001;
	r.success = true;
	if (asprintf((char **)&r.result, "PROCESSED_%s", payload) < 0)
		ck_abort_msg("out of memory");
	r.result_len = strlen((char *)r.result);
	r.deliveries = 1;
	return r;
}

static void
commit(struct processing_result *const *res, size_t n)
{
	char *cause = NULL;
	int rc = result_store_commit(rs, res, n, &cause);

	ck_assert_msg(rc == 0, "commit of %zu: %s", n,
	    cause != NULL ? cause : "?");
	ck_assert_ptr_null(cause);
}

static void
commit_one(struct processing_result *r)
{
	commit(&r, 1);
}

/* An integer from the database, through a connection of the test's own. */
static int64_t
query_int(const char *sql)
{
	return tu_db_int(db_path, sql);
}

START_TEST(open_creates_results_table)
{
	ck_assert_int_eq(query_int("SELECT count(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'results'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM pragma_table_info("
	    "'results') WHERE name IN ('message_id', 'source', 'timestamp', "
	    "'processed_at', 'success', 'error', 'result', 'deliveries')"), 8);
	ck_assert_int_eq(query_int("SELECT pk FROM pragma_table_info("
	    "'results') WHERE name = 'message_id'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 0);
}
END_TEST

START_TEST(reopening_keeps_schema_and_rows)
{
	struct processing_result r = make_result("keep", "me"), got;
	char *cause = NULL;

	commit_one(&r);
	result_store_close(rs);
	rs = NULL;
	ck_assert_int_eq(result_store_open(&rs, db_path, &cause), 0);
	ck_assert_int_eq(result_store_get(rs, "keep", &got), 0);
	ck_assert_int_eq(got.deliveries, 1);
	ck_assert_mem_eq(got.result, "PROCESSED_me", 12);
	result_clear(&got);
	result_clear(&r);
}
END_TEST

START_TEST(committed_result_is_returned_by_get)
{
	struct processing_result r = make_result("id-1", "hello"), got;

	commit_one(&r);
	ck_assert_int_eq(result_store_get(rs, "id-1", &got), 0);
	ck_assert_str_eq(got.message_id, "id-1");
	ck_assert_str_eq(got.source, "sensor-1");
	ck_assert_int_eq(got.timestamp, 1732700000);
	ck_assert_int_eq(got.processed_at, 1732700001);
	ck_assert(got.success);
	ck_assert(got.error == NULL || got.error[0] == '\0');
	ck_assert_uint_eq(got.result_len, 15);
	ck_assert_mem_eq(got.result, "PROCESSED_hello", 15);
	ck_assert_int_eq(got.deliveries, 1);
	result_clear(&got);
	result_clear(&r);
}
END_TEST

START_TEST(redelivery_in_one_batch_keeps_one_row)
{
	struct processing_result a = make_result("dup", "x");
	struct processing_result b = make_result("dup", "x");
	struct processing_result *batch[] = { &a, &b }, got;

	commit(batch, 2);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 1);
	ck_assert_int_eq(result_store_get(rs, "dup", &got), 0);
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	result_clear(&a);
	result_clear(&b);
}
END_TEST

START_TEST(redelivery_across_batches_counts_deliveries)
{
	struct processing_result a = make_result("dup", "first");
	struct processing_result b = make_result("other", "y");
	struct processing_result c = make_result("dup", "second");
	struct processing_result *two[] = { &c, &b }, got;

	commit_one(&a);
	commit(two, 2);
	ck_assert_int_eq(result_store_get(rs, "dup", &got), 0);
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	commit_one(&c);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 2);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results WHERE "
	    "message_id = 'dup'"), 1);
	ck_assert_int_eq(result_store_get(rs, "dup", &got), 0);
	ck_assert_int_eq(got.deliveries, 3);
	/* the first result stays: a redelivery adds no row and no new text */
	ck_assert_uint_eq(got.result_len, strlen("PROCESSED_first"));
	ck_assert_mem_eq(got.result, "PROCESSED_first", got.result_len);
	result_clear(&got);
	ck_assert_int_eq(result_store_get(rs, "other", &got), 0);
	ck_assert_int_eq(got.deliveries, 1);
	result_clear(&got);
	result_clear(&a);
	result_clear(&b);
	result_clear(&c);
}
END_TEST

START_TEST(batch_of_1000_commits_every_result)
{
	enum { N = 1000 };
	struct processing_result *res = calloc(N, sizeof(*res));
	struct processing_result **ptrs = calloc(N, sizeof(*ptrs)), got;
	char id[32], payload[32];

	ck_assert_ptr_nonnull(res);
	ck_assert_ptr_nonnull(ptrs);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "msg-%04d", i);
		snprintf(payload, sizeof(payload), "p%d", i);
		res[i] = make_result(id, payload);
		ptrs[i] = &res[i];
	}
	commit(ptrs, N);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), N);
	ck_assert_int_eq(query_int("SELECT sum(deliveries) FROM results"), N);
	for (int i = 0; i < N; i += 111) {
		snprintf(id, sizeof(id), "msg-%04d", i);
		snprintf(payload, sizeof(payload), "PROCESSED_p%d", i);
		ck_assert_int_eq(result_store_get(rs, id, &got), 0);
		ck_assert_uint_eq(got.result_len, strlen(payload));
		ck_assert_mem_eq(got.result, payload, got.result_len);
		result_clear(&got);
	}
	for (int i = 0; i < N; i++)
		result_clear(&res[i]);
	free(res);
	free(ptrs);
}
END_TEST

START_TEST(empty_commit_succeeds)
{
	commit(NULL, 0);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 0);
}
END_TEST

START_TEST(get_of_unknown_id_is_enoent)
{
	struct processing_result r = make_result("known", "x"), got;

	commit_one(&r);
	memset(&got, 0xa5, sizeof(got));
	ck_assert_int_eq(result_store_get(rs, "unknown", &got), -ENOENT);
	ck_assert_ptr_null(got.message_id);
	ck_assert_ptr_null(got.result);
	ck_assert_int_eq(result_store_get(rs, "", &got), -ENOENT);
	/* no prefix or pattern matching */
	ck_assert_int_eq(result_store_get(rs, "know", &got), -ENOENT);
	ck_assert_int_eq(result_store_get(rs, "know%", &got), -ENOENT);
	result_clear(&r);
}
END_TEST

START_TEST(binary_result_bytes_are_preserved)
{
	struct processing_result r = make_result("bin", ""), got;
	unsigned char bytes[256 + 3];

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	bytes[256] = 0xff;
	bytes[257] = 0xfe;
	bytes[258] = 0x00;	/* ends in NUL: length, not strlen */
	free(r.result);
	r.result = malloc(sizeof(bytes));
	memcpy(r.result, bytes, sizeof(bytes));
	r.result_len = sizeof(bytes);
	commit_one(&r);
	ck_assert_int_eq(result_store_get(rs, "bin", &got), 0);
	ck_assert_uint_eq(got.result_len, sizeof(bytes));
	ck_assert_mem_eq(got.result, bytes, sizeof(bytes));
	ck_assert_int_eq(query_int("SELECT typeof(result) = 'blob' FROM "
	    "results WHERE message_id = 'bin'"), 1);
	result_clear(&got);
	result_clear(&r);
}
END_TEST

START_TEST(failed_result_is_stored_with_its_error)
{
	struct processing_result r = { 0 }, got;

	r.message_id = strdup("bad-1");
	r.processed_at = 1732700002;
	r.success = false;
	r.error = strdup("cannot decode message: field 'payload' must be "
	    "standard base64");
	r.deliveries = 1;
	commit_one(&r);
	ck_assert_int_eq(result_store_get(rs, "bad-1", &got), 0);
	ck_assert(!got.success);
	ck_assert_str_eq(got.error, r.error);
	ck_assert_uint_eq(got.result_len, 0);
	ck_assert_ptr_nonnull(got.result);
	ck_assert_ptr_null(got.source);
	ck_assert_int_eq(got.processed_at, 1732700002);
	ck_assert_int_eq(got.deliveries, 1);
	result_clear(&got);
	result_clear(&r);
}
END_TEST

struct reader {
	struct result_store *rs;
	int found, missing, errors;
};

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	struct processing_result got;

	for (int i = 0; i < 500; i++) {
		switch (result_store_get(rd->rs, "steady", &got)) {
		case 0:
			if (got.result_len == 15 &&
			    memcmp(got.result, "PROCESSED_value", 15) == 0)
				rd->found++;
			else
				rd->errors++;
			result_clear(&got);
			break;
		case -ENOENT:
			rd->missing++;
			break;
		default:
			rd->errors++;
		}
	}
	return NULL;
}

START_TEST(get_from_other_threads_while_committing)
{
	struct processing_result steady = make_result("steady", "value");
	struct reader rd[2] = { { rs, 0, 0, 0 }, { rs, 0, 0, 0 } };
	pthread_t t[2];
	char id[32];

	commit_one(&steady);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main,
		    &rd[i]), 0);
	for (int i = 0; i < 50; i++) {
		struct processing_result r;

		snprintf(id, sizeof(id), "w-%d", i);
		r = make_result(id, "w");
		commit_one(&r);
		result_clear(&r);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(rd[i].errors, 0);
		ck_assert_int_eq(rd[i].missing, 0);
		ck_assert_int_eq(rd[i].found, 500);
	}
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 51);
	result_clear(&steady);
}
END_TEST

START_TEST(open_on_unwritable_path_fails_with_cause)
{
	struct result_store *bad = (struct result_store *)1;
	char *cause = NULL;

	ck_assert_int_ne(result_store_open(&bad, "/nonexistent/dir/x.db",
	    &cause), 0);
	ck_assert_ptr_null(bad);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "/nonexistent/dir/x.db") != NULL,
	    "cause '%s' does not name the path", cause);
	free(cause);
}
END_TEST

START_TEST(open_on_a_directory_fails_with_cause)
{
	struct result_store *bad = NULL;
	char *cause = NULL;

	ck_assert_int_ne(result_store_open(&bad, dir, &cause), 0);
	ck_assert_ptr_null(bad);
	ck_assert_ptr_nonnull(cause);
	free(cause);
}
END_TEST

/* The mode of db_path plus suffix, or -1. */
static int
mode_of(const char *suffix)
{
	char p[PATH_MAX + 8];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", db_path, suffix);
	return stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

START_TEST(files_are_0640_whatever_the_umask)
{
	struct processing_result r = make_result("id-m", "x");
	mode_t old;

	/* the fixture opened with the test's umask: start again with 0 */
	result_store_close(rs);
	tu_remove_db(db_path);
	old = umask(0);
	open_or_fail();
	commit_one(&r);
	umask(old);
	ck_assert_int_eq(mode_of(""), 0640);
	ck_assert_int_eq(mode_of("-wal"), 0640);
	ck_assert_int_eq(mode_of("-shm"), 0640);
	result_clear(&r);
}
END_TEST

START_TEST(existing_file_loses_wider_bits)
{
	result_store_close(rs);
	ck_assert_int_eq(chmod(db_path, 0666), 0);
	open_or_fail();
	ck_assert_int_eq(mode_of(""), 0640);
}
END_TEST

/* Commit n rows id-<first+i> processed at `at`, each of `size` bytes. */
static void
commit_rows(int first, int n, int64_t at, size_t size)
{
	struct processing_result *rows[100], r[100];
	char id[32], *payload = malloc(size + 1);

	memset(payload, 'x', size);
	payload[size] = '\0';
	for (int done = 0; done < n;) {
		int k = n - done < 100 ? n - done : 100;

		for (int i = 0; i < k; i++) {
			snprintf(id, sizeof(id), "id-%d", first + done + i);
			r[i] = make_result(id, payload);
			r[i].processed_at = at;
			rows[i] = &r[i];
		}
		commit(rows, (size_t)k);
		for (int i = 0; i < k; i++)
			result_clear(&r[i]);
		done += k;
	}
	free(payload);
}

static uint64_t
prune(int64_t before, int64_t max_bytes)
{
	uint64_t n = 0;
	char *cause = NULL;

	ck_assert_msg(result_store_prune(rs, before, max_bytes, &n, &cause) ==
	    0, "prune: %s", cause != NULL ? cause : "?");
	return n;
}

/* Bytes of the database and its write-ahead log together. */
static off_t
file_size(void)
{
	char wal[PATH_MAX + 8];
	struct stat st;
	off_t n;

	ck_assert_int_eq(stat(db_path, &st), 0);
	n = st.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	if (stat(wal, &st) == 0)
		n += st.st_size;
	return n;
}

START_TEST(prune_deletes_rows_older_than_the_cut_only)
{
	struct processing_result got;

	commit_rows(0, 1200, 1000, 10);
	commit_rows(1200, 300, 5000, 10);
	commit_rows(1500, 5, 1000, 10);	/* old, behind new rows */
	ck_assert_uint_eq(prune(2000, 0), 1200);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 305);
	ck_assert_int_eq(result_store_get(rs, "id-5", &got), -ENOENT);
	ck_assert_int_eq(result_store_get(rs, "id-1200", &got), 0);
	result_clear(&got);
	/* the stragglers go once they are among the oldest rows */
	ck_assert_uint_eq(prune(2000, 0), 5);
	ck_assert_uint_eq(prune(2000, 0), 0);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 300);
	ck_assert_uint_eq(prune(6000, 0), 300);
}
END_TEST

START_TEST(prune_keeps_the_rows_under_max_bytes_and_the_file_shrinks)
{
	off_t before;

	commit_rows(0, 2000, 1000, 4000);
	before = file_size();
	ck_assert_int_gt(before, 8000000);
	ck_assert_uint_gt(prune(0, 1000000), 0);
	ck_assert_int_le(query_int("SELECT count(*) FROM results"), 250);
	ck_assert_int_gt(query_int("SELECT count(*) FROM results"), 150);
	/* the newest are kept */
	ck_assert_int_eq(query_int("SELECT count(*) FROM results WHERE "
	    "message_id = 'id-1999'"), 1);
	result_store_close(rs);
	rs = NULL;
	ck_assert_int_lt(file_size(), before / 4);
	open_or_fail();
}
END_TEST

/*
 * A running processor never closes its store: the space a prune frees goes
 * back to the file system then, the database and its log together near the
 * limit, not at the next start.
 */
START_TEST(a_prune_gives_the_space_back_while_the_store_is_open)
{
	off_t before, after;

	commit_rows(0, 2000, 1000, 4000);
	before = file_size();
	ck_assert_int_gt(before, 8000000);
	ck_assert_uint_gt(prune(0, 1000000), 0);
	after = file_size();
	ck_assert_msg(after < 1500000, "%jd bytes after a prune to 1000000 "
	    "(%jd before)", (intmax_t)after, (intmax_t)before);
	/* and again after more writes: the limit holds round after round */
	commit_rows(2000, 1000, 1000, 4000);
	ck_assert_uint_gt(prune(0, 1000000), 0);
	after = file_size();
	ck_assert_msg(after < 1500000, "%jd bytes after the second prune",
	    (intmax_t)after);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results WHERE "
	    "message_id = 'id-2999'"), 1);
}
END_TEST

START_TEST(a_store_without_incremental_vacuum_is_converted)
{
	sqlite3 *db;

	result_store_close(rs);
	rs = NULL;
	tu_remove_db(db_path);
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t(a)", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	open_or_fail();
	ck_assert_int_eq(query_int("PRAGMA auto_vacuum"), 0);
	commit_rows(0, 10, 1000, 10);
	ck_assert_uint_eq(prune(2000, 0), 10);
	ck_assert_int_eq(query_int("PRAGMA auto_vacuum"), 2);
}
END_TEST

/* A failed result for id at processed_at, keeping msg (NULL: none). */
static struct processing_result
make_failed(const char *id, int64_t at, const char *msg)
{
	struct processing_result r = { 0 };

	r.message_id = strdup(id);
	r.processed_at = at;
	r.success = false;
	if (asprintf(&r.error, "given up on %s", id) < 0)
		ck_abort_msg("out of memory");
	if (msg != NULL) {
		r.message = (unsigned char *)strdup(msg);
		r.message_len = strlen(msg);
	}
	return r;
}

START_TEST(a_failed_row_keeps_its_message_a_success_none)
{
	struct processing_result f = make_failed("f-1", 10, "{\"id\":\"f-1\"}");
	struct processing_result ok = make_result("s-1", "x"), got;

	/* a message on a success is not stored */
	ok.message = (unsigned char *)strdup("ignored");
	ok.message_len = 7;
	commit_one(&f);
	commit_one(&ok);
	ck_assert_int_eq(result_store_get(rs, "f-1", &got), 0);
	ck_assert_uint_eq(got.message_len, f.message_len);
	ck_assert_mem_eq(got.message, f.message, f.message_len);
	result_clear(&got);
	ck_assert_int_eq(result_store_get(rs, "s-1", &got), 0);
	ck_assert_ptr_null(got.message);
	ck_assert_uint_eq(got.message_len, 0);
	result_clear(&got);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results WHERE "
	    "message IS NULL"), 1);
	result_clear(&f);
	result_clear(&ok);
}
END_TEST

START_TEST(a_success_replaces_a_failed_row)
{
	struct processing_result f = make_failed("r-1", 10, "{\"id\":\"r-1\"}");
	struct processing_result ok = make_result("r-1", "back"), got;

	commit_one(&f);
	commit_one(&ok);
	ck_assert_int_eq(result_store_get(rs, "r-1", &got), 0);
	ck_assert(got.success);
	ck_assert_str_eq(got.source, "sensor-1");
	ck_assert_int_eq(got.processed_at, ok.processed_at);
	ck_assert_mem_eq(got.result, "PROCESSED_back", 14);
	ck_assert_ptr_null(got.error);
	ck_assert_ptr_null(got.message);
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 1);
	result_clear(&f);
	result_clear(&ok);
}
END_TEST

START_TEST(a_failure_after_a_success_keeps_the_success)
{
	struct processing_result ok = make_result("k-1", "v");
	struct processing_result f = make_failed("k-1", 99, "m"), got;

	commit_one(&ok);
	commit_one(&f);
	ck_assert_int_eq(result_store_get(rs, "k-1", &got), 0);
	ck_assert(got.success);
	ck_assert_mem_eq(got.result, "PROCESSED_v", 11);
	ck_assert_ptr_null(got.message);
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	result_clear(&ok);
	result_clear(&f);
}
END_TEST

struct listing {
	char ids[16][16];
	size_t kept[16];
	int n;
};

static void
list_one(void *ctx, const struct processing_result *r)
{
	struct listing *l = ctx;

	ck_assert_int_lt(l->n, 16);
	ck_assert_ptr_null(r->message);
	snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", r->message_id);
	l->kept[l->n++] = r->message_len;
}

START_TEST(failed_rows_are_listed_newest_first_since_and_limited)
{
	struct processing_result r[5];
	struct processing_result *rows[5];
	struct processing_result ok = make_result("ok", "v");
	struct listing l = { 0 };

	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "f-%d", i);
		r[i] = make_failed(id, 100 + i, i == 2 ? NULL : "msg");
		rows[i] = &r[i];
	}
	commit(rows, 5);
	commit_one(&ok);
	ck_assert_int_eq(result_store_failed(rs, 0, 100, list_one, &l), 0);
	ck_assert_int_eq(l.n, 5);
	ck_assert_str_eq(l.ids[0], "f-4");
	ck_assert_str_eq(l.ids[4], "f-0");
	ck_assert_uint_eq(l.kept[0], 3);
	ck_assert_uint_eq(l.kept[2], 0);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(result_store_failed(rs, 102, 2, list_one, &l), 0);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.ids[0], "f-4");
	ck_assert_str_eq(l.ids[1], "f-3");
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(result_store_failed(rs, 105, 10, list_one, &l), 0);
	ck_assert_int_eq(l.n, 0);
	for (int i = 0; i < 5; i++)
		result_clear(&r[i]);
	result_clear(&ok);
}
END_TEST

START_TEST(size_counts_rows_failed_rows_and_bytes)
{
	struct processing_result f = make_failed("z-1", 1, "m");
	struct result_store_size sz;

	ck_assert_int_eq(result_store_size(rs, &sz), 0);
	ck_assert_int_eq(sz.rows, 0);
	ck_assert_int_gt(sz.bytes, 0);
	commit_rows(0, 10, 1000, 10);
	commit_one(&f);
	ck_assert_int_eq(result_store_size(rs, &sz), 0);
	ck_assert_int_eq(sz.rows, 11);
	ck_assert_int_eq(sz.failed, 1);
	ck_assert_int_eq(sz.bytes, query_int("SELECT (c.page_count -"
	    " f.freelist_count) * s.page_size FROM pragma_page_count() c,"
	    " pragma_freelist_count() f, pragma_page_size() s"));
	result_clear(&f);
}
END_TEST

/* Replace the store with one made by db_sql, through a connection of our own. */
static void
store_made_by(const char *db_sql)
{
	sqlite3 *db;

	result_store_close(rs);
	rs = NULL;
	tu_remove_db(db_path);
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, db_sql, NULL, NULL, NULL) == SQLITE_OK,
	    "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* diplom 0.1.0's store: its schema, unversioned, with two rows. */
START_TEST(a_store_of_0_1_0_is_migrated_and_keeps_its_rows)
{
	struct processing_result got;

	store_made_by("PRAGMA journal_mode=WAL;"
	    "CREATE TABLE IF NOT EXISTS results (message_id TEXT PRIMARY KEY,"
	    " source TEXT, timestamp INTEGER, processed_at INTEGER,"
	    " success INTEGER NOT NULL, error TEXT, result BLOB,"
	    " deliveries INTEGER NOT NULL DEFAULT 1);"
	    "INSERT INTO results VALUES ('old-1', 's', 1, 2, 1, NULL,"
	    " 'PROCESSED_a', 1), ('old-2', 's', 1, 2, 0, 'bad', '', 3);");
	open_or_fail();
	ck_assert_int_eq(query_int("PRAGMA user_version"), 4);
	ck_assert_int_eq(query_int("SELECT count(*) FROM pragma_table_info("
	    "'results') WHERE name = 'message'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM sqlite_master WHERE "
	    "name = 'results_failed'"), 1);
	ck_assert_int_eq(result_store_get(rs, "old-1", &got), 0);
	ck_assert(got.success);
	ck_assert_mem_eq(got.result, "PROCESSED_a", 11);
	result_clear(&got);
	ck_assert_int_eq(result_store_get(rs, "old-2", &got), 0);
	ck_assert(!got.success);
	ck_assert_str_eq(got.error, "bad");
	ck_assert_int_eq(got.deliveries, 3);
	result_clear(&got);
	commit_rows(0, 3, 5, 10);
	ck_assert_int_eq(query_int("SELECT count(*) FROM results"), 5);
}
END_TEST

/* A row keeps the client that sent its message; none reads as NULL. */
START_TEST(a_row_keeps_its_client)
{
	struct processing_result a = make_result("with-client", "a");
	struct processing_result b = make_result("no-client", "b");
	struct processing_result again = make_result("with-client", "x");
	struct processing_result got;

	a.client = strdup("team-a");
	again.client = strdup("team-b");
	commit_one(&a);
	commit_one(&b);
	/* a redelivery, or another's retry, never changes whose row it is */
	commit_one(&again);
	ck_assert_int_eq(result_store_get(rs, "with-client", &got), 0);
	ck_assert_str_eq(got.client, "team-a");
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	ck_assert_int_eq(result_store_get(rs, "no-client", &got), 0);
	ck_assert_ptr_null(got.client);
	result_clear(&got);
	result_clear(&a);
	result_clear(&b);
	result_clear(&again);
}
END_TEST

/* The store of diplom 0.2.0 (version 2) gains the client and the
 * fingerprint, keeps its rows. */
START_TEST(a_store_of_version_2_gains_the_client_column)
{
	struct processing_result got, r = make_result("new", "n");

	store_made_by("PRAGMA journal_mode=WAL;"
	    "CREATE TABLE results (message_id TEXT PRIMARY KEY,"
	    " source TEXT, timestamp INTEGER, processed_at INTEGER,"
	    " success INTEGER NOT NULL, error TEXT, result BLOB,"
	    " deliveries INTEGER NOT NULL DEFAULT 1, message BLOB);"
	    "CREATE INDEX results_failed ON results (processed_at)"
	    " WHERE success = 0;"
	    "INSERT INTO results VALUES ('old', 's', 1, 2, 1, NULL,"
	    " 'PROCESSED_o', 1, NULL);"
	    "PRAGMA user_version = 2;");
	open_or_fail();
	ck_assert_int_eq(query_int("PRAGMA user_version"), 4);
	ck_assert_int_eq(query_int("SELECT count(*) FROM pragma_table_info("
	    "'results') WHERE name = 'client'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM pragma_table_info("
	    "'results') WHERE name = 'fingerprint'"), 1);
	ck_assert_int_eq(result_store_get(rs, "old", &got), 0);
	ck_assert_ptr_null(got.client);
	ck_assert_ptr_null(got.fingerprint);
	ck_assert_mem_eq(got.result, "PROCESSED_o", 11);
	result_clear(&got);
	r.client = strdup("c");
	r.fingerprint = strdup("ab12");
	commit_one(&r);
	ck_assert_int_eq(result_store_get(rs, "new", &got), 0);
	ck_assert_str_eq(got.client, "c");
	ck_assert_str_eq(got.fingerprint, "ab12");
	result_clear(&got);
	result_clear(&r);
}
END_TEST

/* A failed row is not replaced by another body's success under its id. */
START_TEST(a_success_of_another_fingerprint_keeps_the_failed_row)
{
	struct processing_result f = make_failed("fp-1", 10, "m");
	struct processing_result ok = make_result("fp-1", "other"), got;
	struct processing_result same = make_result("fp-1", "same");

	f.fingerprint = strdup("aaaa");
	ok.fingerprint = strdup("bbbb");
	same.fingerprint = strdup("aaaa");
	commit_one(&f);
	commit_one(&ok);
	ck_assert_int_eq(result_store_get(rs, "fp-1", &got), 0);
	ck_assert(!got.success);
	ck_assert_str_eq(got.fingerprint, "aaaa");
	ck_assert_int_eq(got.deliveries, 2);
	result_clear(&got);
	commit_one(&same);
	ck_assert_int_eq(result_store_get(rs, "fp-1", &got), 0);
	ck_assert(got.success);
	ck_assert_mem_eq(got.result, "PROCESSED_same", 14);
	result_clear(&got);
	result_clear(&f);
	result_clear(&ok);
	result_clear(&same);
}
END_TEST

START_TEST(a_store_of_a_newer_diplomd_is_refused)
{
	char *cause = NULL;

	store_made_by("CREATE TABLE results (message_id TEXT PRIMARY KEY);"
	    "PRAGMA user_version = 7;");
	ck_assert_int_eq(result_store_open(&rs, db_path, &cause), -EPROTO);
	ck_assert_ptr_null(rs);
	ck_assert_ptr_nonnull(strstr(cause, "newer diplomd"));
	ck_assert_ptr_nonnull(strstr(cause, "version 7"));
	free(cause);
	/* and left as it was */
	ck_assert_int_eq(query_int("PRAGMA user_version"), 7);
}
END_TEST

Suite *
result_store_suite(void)
{
	Suite *s = suite_create("result_store");
	TCase *tc = tcase_create("sqlite");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_creates_results_table);
	tcase_add_test(tc, reopening_keeps_schema_and_rows);
	tcase_add_test(tc, committed_result_is_returned_by_get);
	tcase_add_test(tc, redelivery_in_one_batch_keeps_one_row);
	tcase_add_test(tc, redelivery_across_batches_counts_deliveries);
	tcase_add_test(tc, batch_of_1000_commits_every_result);
	tcase_add_test(tc, empty_commit_succeeds);
	tcase_add_test(tc, get_of_unknown_id_is_enoent);
	tcase_add_test(tc, binary_result_bytes_are_preserved);
	tcase_add_test(tc, failed_result_is_stored_with_its_error);
	tcase_add_test(tc, get_from_other_threads_while_committing);
	tcase_add_test(tc, open_on_unwritable_path_fails_with_cause);
	tcase_add_test(tc, open_on_a_directory_fails_with_cause);
	tcase_add_test(tc, files_are_0640_whatever_the_umask);
	tcase_add_test(tc, existing_file_loses_wider_bits);
	tcase_add_test(tc, prune_deletes_rows_older_than_the_cut_only);
	tcase_add_test(tc,
	    prune_keeps_the_rows_under_max_bytes_and_the_file_shrinks);
	tcase_add_test(tc,
	    a_prune_gives_the_space_back_while_the_store_is_open);
	tcase_add_test(tc, a_store_without_incremental_vacuum_is_converted);
	tcase_add_test(tc, a_store_of_0_1_0_is_migrated_and_keeps_its_rows);
	tcase_add_test(tc, a_store_of_a_newer_diplomd_is_refused);
	tcase_add_test(tc, a_row_keeps_its_client);
	tcase_add_test(tc, a_store_of_version_2_gains_the_client_column);
	tcase_add_test(tc,
	    a_success_of_another_fingerprint_keeps_the_failed_row);
	tcase_add_test(tc, a_failed_row_keeps_its_message_a_success_none);
	tcase_add_test(tc, a_success_replaces_a_failed_row);
	tcase_add_test(tc, a_failure_after_a_success_keeps_the_success);
	tcase_add_test(tc,
	    failed_rows_are_listed_newest_first_since_and_limited);
	tcase_add_test(tc, size_counts_rows_failed_rows_and_bytes);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(result_store_suite)

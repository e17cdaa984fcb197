/* check_loadgen.c - diplom-loadgen: statistics, options, body, recorder */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "check_main.h"
#include "check_util.h"
#include "loadgen/args.h"
#include "loadgen/record.h"
#include "loadgen/stats.h"

Suite *loadgen_suite(void);

/* ~70 KiB each: static, so the tests do not lean on the stack size */
static struct lg_hist hist;
static struct lg_counts counts;

static void
stats_setup(void)
{
	lg_hist_init(&hist);
	lg_counts_init(&counts);
}

/* |got - want| within rel of want (the histogram's resolution). */
static void
assert_near(uint64_t got, uint64_t want, double rel)
{
	double d = (double)got - (double)want;

	if (d < 0)
		d = -d;
	ck_assert_msg(d <= rel * (double)want, "got %llu, want %llu (+-%g)",
	    (unsigned long long)got, (unsigned long long)want, rel);
}

START_TEST(percentiles_of_1_to_100_are_exact)
{
	for (uint64_t v = 1; v <= 100; v++)
		lg_hist_add(&hist, v);
	ck_assert_uint_eq(hist.count, 100);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 500), 50);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 900), 90);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 990), 99);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 1000), 100);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 0), 1);
}
END_TEST

START_TEST(percentiles_of_1_to_100_ms_within_resolution)
{
	/* shuffled order must not matter: a stride prime to 100 */
	for (uint64_t i = 0; i < 100; i++)
		lg_hist_add(&hist, ((i * 37) % 100 + 1) * 1000);
	assert_near(lg_hist_percentile(&hist, 500), 50000, 0.004);
	assert_near(lg_hist_percentile(&hist, 900), 90000, 0.004);
	assert_near(lg_hist_percentile(&hist, 990), 99000, 0.004);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 1000), 100000);
	ck_assert_uint_eq(hist.min_us, 1000);
}
END_TEST

START_TEST(empty_histogram_reports_zero)
{
	ck_assert_uint_eq(lg_hist_percentile(&hist, 500), 0);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 990), 0);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 1000), 0);
}
END_TEST

START_TEST(single_sample_is_every_percentile)
{
	lg_hist_add(&hist, 123457);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 500), 123457);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 990), 123457);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 1000), 123457);
}
END_TEST

START_TEST(huge_values_are_clamped_not_lost)
{
	lg_hist_add(&hist, UINT64_MAX);
	lg_hist_add(&hist, 0);
	ck_assert_uint_eq(hist.count, 2);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 500), 0);
	ck_assert_uint_eq(lg_hist_percentile(&hist, 1000),
	    ((uint64_t)1 << LG_HIST_MAX_BITS) - 1);
}
END_TEST

START_TEST(every_bucket_holds_its_own_values)
{
	/* a value's bucket middle is within 1/(2 SUB) of it, across octaves */
	for (uint64_t v = 1; v < ((uint64_t)1 << 36); v = v * 3 / 2 + 1) {
		lg_hist_init(&hist);
		lg_hist_add(&hist, v);
		lg_hist_add(&hist, v);
		lg_hist_add(&hist, v + v / 1000 + 1000);	/* raises max */
		lg_hist_add(&hist, v > 1000 ? v - v / 1000 - 1 : 0);
		assert_near(lg_hist_percentile(&hist, 500), v,
		    1.0 / (2 * LG_HIST_SUB));
	}
}
END_TEST

START_TEST(rejections_are_counted_by_status)
{
	lg_counts_reject(&counts, 503);
	lg_counts_reject(&counts, 503);
	lg_counts_reject(&counts, 400);
	lg_counts_reject(&counts, 999);	/* not HTTP: under 0 */
	ck_assert_uint_eq(counts.rejected, 4);
	ck_assert_uint_eq(counts.by_status[503], 2);
	ck_assert_uint_eq(counts.by_status[400], 1);
	ck_assert_uint_eq(counts.by_status[0], 1);
}
END_TEST

/* The summary printed into a string. */
static char *
summary(int json, double elapsed)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	lg_summary_print(f, &counts, &hist, elapsed, json);
	fclose(f);
	return buf;
}

static double
jnum(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no key %s", key);
	return json_object_get_double(v);
}

START_TEST(json_summary_has_the_documented_keys)
{
	json_object *o, *lat, *by;
	char *s;

	counts.sent = 12;
	counts.requests = 15;
	counts.retries = 3;
	counts.accepted = 10;
	counts.errors = 1;
	lg_counts_reject(&counts, 503);
	for (uint64_t v = 1; v <= 100; v++)
		lg_hist_add(&hist, v * 1000);
	s = summary(1, 2.0);
	ck_assert_ptr_nonnull(strchr(s, '\n'));
	ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1);	/* one line */
	o = json_tokener_parse(s);
	ck_assert_ptr_nonnull(o);
	ck_assert(jnum(o, "accepted") == 10);
	ck_assert(jnum(o, "rejected") == 1);
	ck_assert(jnum(o, "errors") == 1);
	ck_assert(jnum(o, "sent") == 12);
	ck_assert(jnum(o, "requests") == 15);
	ck_assert(jnum(o, "retries") == 3);
	ck_assert(jnum(o, "throughput") == 5.0);
	ck_assert(jnum(o, "elapsed_s") == 2.0);
	ck_assert(json_object_object_get_ex(o, "rejected_by_status", &by));
	ck_assert(jnum(by, "503") == 1);
	ck_assert_int_eq(json_object_object_length(by), 1);
	ck_assert(json_object_object_get_ex(o, "latency_ms", &lat));
	ck_assert(jnum(lat, "p50") > 49.7 && jnum(lat, "p50") < 50.3);
	ck_assert(jnum(lat, "p90") > 89.6 && jnum(lat, "p90") < 90.4);
	ck_assert(jnum(lat, "p99") > 98.6 && jnum(lat, "p99") < 99.4);
	ck_assert(jnum(lat, "max") == 100.0);
	json_object_put(o);
	free(s);
}
END_TEST

START_TEST(text_summary_names_statuses)
{
	char *s;

	counts.accepted = 7;
	lg_counts_reject(&counts, 503);
	s = summary(0, 0);	/* a zero elapsed time must not divide */
	ck_assert_ptr_nonnull(strstr(s, "accepted    7\n"));
	ck_assert_ptr_nonnull(strstr(s, "  503:"));
	ck_assert_ptr_nonnull(strstr(s, "throughput  0.0 msg/s"));
	ck_assert_ptr_nonnull(strstr(s, "p99"));
	free(s);
}
END_TEST

/* Options */

static struct lg_opts opts;
static char *cause;
static char *out_buf;
static size_t out_len;

static void
args_teardown(void)
{
	free(cause);
	cause = NULL;
	free(out_buf);
	out_buf = NULL;
}

/* Parse a NULL-terminated argv; help and version text land in out_buf.
 * getopt permutes argv, so it gets a writable copy of the pointers. */
static enum lg_parse_result
parse(const char *const *args)
{
	enum lg_parse_result r;
	char *argv[32];
	int argc = 0;
	FILE *f;

	for (; args[argc] != NULL; argc++) {
		ck_assert_int_lt(argc, 31);
		argv[argc] = (char *)(uintptr_t)args[argc];
	}
	argv[argc] = NULL;
	free(cause);
	cause = NULL;
	free(out_buf);
	out_buf = NULL;
	f = open_memstream(&out_buf, &out_len);
	r = lg_opts_parse(&opts, argc, argv, f, &cause);
	fclose(f);
	return r;
}

/* Expect a usage error whose cause names want. */
static void
parse_usage(const char *const *argv, const char *want)
{
	ck_assert_int_eq(parse(argv), LG_EXIT_USAGE);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, want) != NULL, "'%s' does not name %s",
	    cause, want);
}

#define ARGV(...) \
	((const char *const[]){ "diplom-loadgen", __VA_ARGS__, NULL })

START_TEST(defaults)
{
	ck_assert_int_eq(parse((const char *const[]){ "diplom-loadgen",
	    NULL }), LG_RUN);
	ck_assert_str_eq(opts.url, "http://127.0.0.1:8080/api/v1/ingest");
	ck_assert_int_eq(opts.count, 1000);
	ck_assert_int_eq(opts.duration_ms, 0);
	ck_assert_int_eq(opts.connections, 16);
	ck_assert(opts.rate == 0);
	ck_assert_int_eq(opts.size, 64);
	ck_assert_int_eq(opts.retry, 0);
	ck_assert_ptr_null(opts.record);
	ck_assert_str_eq(opts.label, "");
	ck_assert_int_eq(opts.json, 0);
	ck_assert_ptr_null(cause);
}
END_TEST

START_TEST(every_option_is_taken)
{
	ck_assert_int_eq(parse(ARGV("--url", "http://h:1/x", "-n", "300",
	    "-c", "8", "--rate=250.5", "--size", "0", "--retry", "7",
	    "--record", "/tmp/s.db", "--label", "restart", "--json")),
	    LG_RUN);
	ck_assert_str_eq(opts.url, "http://h:1/x");
	ck_assert_int_eq(opts.count, 300);
	ck_assert_int_eq(opts.connections, 8);
	ck_assert(opts.rate == 250.5);
	ck_assert_int_eq(opts.size, 0);
	ck_assert_int_eq(opts.retry, 7);
	ck_assert_str_eq(opts.record, "/tmp/s.db");
	ck_assert_str_eq(opts.label, "restart");
	ck_assert_int_eq(opts.json, 1);

	ck_assert_int_eq(parse(ARGV("--count=5", "--connections=3")), LG_RUN);
	ck_assert_int_eq(opts.count, 5);
	ck_assert_int_eq(opts.connections, 3);
}
END_TEST

START_TEST(duration_replaces_the_default_count)
{
	ck_assert_int_eq(parse(ARGV("--duration", "2.5")), LG_RUN);
	ck_assert_int_eq(opts.duration_ms, 2500);
	ck_assert_int_eq(opts.count, 0);
	ck_assert_int_eq(parse(ARGV("--duration=500ms")), LG_RUN);
	ck_assert_int_eq(opts.duration_ms, 500);
}
END_TEST

START_TEST(count_and_duration_exclude_each_other)
{
	parse_usage(ARGV("-n", "10", "--duration", "5"), "--duration");
	parse_usage(ARGV("--duration", "5", "--count", "10"), "-n");
}
END_TEST

START_TEST(bad_values_name_the_option)
{
	parse_usage(ARGV("-c", "0"), "-c");
	parse_usage(ARGV("--connections", "many"), "--connections");
	parse_usage(ARGV("-c", "10001"), "-c");
	parse_usage(ARGV("-n", "0"), "-n");
	parse_usage(ARGV("-n", "12x"), "-n");
	parse_usage(ARGV("--count", "-3"), "--count");
	parse_usage(ARGV("--duration", "0"), "--duration");
	parse_usage(ARGV("--duration", "soon"), "--duration");
	parse_usage(ARGV("--rate", "0"), "--rate");
	parse_usage(ARGV("--rate", "nan"), "--rate");
	parse_usage(ARGV("--rate", "fast"), "--rate");
	parse_usage(ARGV("--size", "-1"), "--size");
	parse_usage(ARGV("--size", "100000000"), "--size");
	parse_usage(ARGV("--retry", "-1"), "--retry");
	parse_usage(ARGV("--url", "ftp://x/"), "--url");
	parse_usage(ARGV("--record", ""), "--record");
	parse_usage(ARGV("--retry"), "--retry");
	parse_usage(ARGV("--bogus"), "--bogus");
	parse_usage(ARGV("-n", "5", "extra"), "extra");
}
END_TEST

START_TEST(help_and_version_exit_ok)
{
	ck_assert_int_eq(parse(ARGV("--help")), LG_EXIT_OK);
	ck_assert_ptr_nonnull(strstr(out_buf, "Usage: diplom-loadgen"));
	ck_assert_ptr_nonnull(strstr(out_buf, "--record=DB"));
	ck_assert_int_eq(parse(ARGV("-h")), LG_EXIT_OK);
	ck_assert_int_eq(parse(ARGV("--version")), LG_EXIT_OK);
	ck_assert_str_eq(out_buf, "diplom-loadgen " PACKAGE_VERSION "\n");
	ck_assert_ptr_null(cause);
}
END_TEST

/* The request body */

START_TEST(body_is_valid_json_of_the_given_size)
{
	static const int64_t sizes[] = { 0, 1, 64, 4096 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		json_object *o, *v, *md;
		size_t plen, len;
		char *prefix = lg_body_prefix(sizes[i], &plen), *buf;

		ck_assert_ptr_nonnull(prefix);
		buf = malloc(plen + LG_BODY_TAIL);
		memcpy(buf, prefix, plen);
		len = lg_body_finish(buf, plen, 18446744073709551615ULL);
		ck_assert_uint_eq(len, strlen(buf));
		o = json_tokener_parse(buf);
		ck_assert_msg(o != NULL, "not JSON: %s", buf);
		ck_assert(json_object_object_get_ex(o, "source", &v));
		ck_assert_str_eq(json_object_get_string(v), "loadgen");
		ck_assert(json_object_object_get_ex(o, "data", &v));
		ck_assert_int_eq(json_object_get_string_len(v), sizes[i]);
		ck_assert(json_object_object_get_ex(o, "metadata", &md));
		ck_assert(json_object_object_get_ex(md, "seq", &v));
		ck_assert_str_eq(json_object_get_string(v),
		    "18446744073709551615");
		json_object_put(o);
		/* the prefix is reused: a shorter seq must not leave debris */
		len = lg_body_finish(buf, plen, 7);
		ck_assert_str_eq(buf + len - 5, "\"7\"}}");
		free(buf);
		free(prefix);
	}
}
END_TEST

START_TEST(batch_takes_its_own_default_url)
{
	ck_assert_int_eq(parse(ARGV("--batch", "50")), LG_RUN);
	ck_assert_int_eq(opts.batch, 50);
	ck_assert_str_eq(opts.url,
	    "http://127.0.0.1:8080/api/v1/ingest/batch");
	ck_assert_int_eq(parse(ARGV("--url", "http://h:1/b", "--batch=2")),
	    LG_RUN);
	ck_assert_str_eq(opts.url, "http://h:1/b");
	ck_assert_int_eq(parse(ARGV("-n", "3")), LG_RUN);
	ck_assert_int_eq(opts.batch, 0);
	ck_assert_int_eq(parse(ARGV("--batch", "0")), LG_EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "--batch"));
}
END_TEST

START_TEST(batch_body_is_a_json_array_of_messages)
{
	size_t plen, len;
	char *prefix = lg_body_prefix(10, &plen), *buf;
	json_object *o, *it, *md, *v;
	char want[64];

	buf = malloc(3 + 3 * LG_ITEM_ROOM(plen));
	for (int keyed = 0; keyed < 2; keyed++) {
		len = lg_batch_finish(buf, prefix, plen,
		    18446744073709551613ULL, 3, keyed ? "0123456789abcdef" :
		    NULL);
		ck_assert_uint_eq(len, strlen(buf));
		ck_assert_uint_le(len, 3 + 3 * LG_ITEM_ROOM(plen));
		o = json_tokener_parse(buf);
		ck_assert_msg(o != NULL && json_object_is_type(o,
		    json_type_array), "not a JSON array: %s", buf);
		ck_assert_uint_eq(json_object_array_length(o), 3);
		for (size_t i = 0; i < 3; i++) {
			it = json_object_array_get_idx(o, i);
			ck_assert(json_object_object_get_ex(it, "metadata",
			    &md));
			ck_assert(json_object_object_get_ex(md, "seq", &v));
			snprintf(want, sizeof(want), "%ju",
			    (uintmax_t)(18446744073709551613ULL + i));
			ck_assert_str_eq(json_object_get_string(v), want);
			ck_assert_int_eq(json_object_object_get_ex(it,
			    "idempotency_key", &v), keyed);
			snprintf(want, sizeof(want), "lg-0123456789abcdef-%ju",
			    (uintmax_t)(18446744073709551613ULL + i));
			if (keyed)
				ck_assert_str_eq(json_object_get_string(v),
				    want);
		}
		json_object_put(o);
	}
	free(buf);
	free(prefix);
}
END_TEST

START_TEST(backoff_doubles_to_a_cap_with_jitter)
{
	static const unsigned base[] = { 0, 50, 100, 200, 400, 800, 1000,
		1000 };

	for (unsigned a = 1; a < sizeof(base) / sizeof(*base); a++) {
		unsigned lo = lg_backoff_ms(a, 0);
		unsigned hi = lg_backoff_ms(a, base[a] / 2);

		ck_assert_uint_eq(lo, base[a] / 2);
		ck_assert_uint_eq(hi, base[a]);
		for (uint32_t r = 0; r < 5000; r += 97) {
			unsigned v = lg_backoff_ms(a, r * 2654435761u);

			ck_assert(v >= base[a] / 2 && v <= base[a]);
		}
	}
	ck_assert_uint_le(lg_backoff_ms(1000000, 0xffffffffu), 1000);
}
END_TEST

/* The recorder */

static char db_path[64];

static void
record_setup(void)
{
	int fd;

	snprintf(db_path, sizeof(db_path), "/tmp/check_loadgen.XXXXXX");
	fd = mkstemp(db_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	cause = NULL;
}

static void
record_teardown(void)
{
	tu_remove_db(db_path);
	free(cause);
	cause = NULL;
}

static long long
db_int(const char *query)
{
	return tu_db_int(db_path, query);
}

START_TEST(recorded_ids_are_committed_once)
{
	struct lg_record *r;
	char id[40];

	ck_assert_int_eq(lg_record_open(&r, db_path, "lbl", &cause), 0);
	ck_assert_int_eq(lg_record_add(r, "a", 1700000000123, &cause), 0);
	ck_assert_int_eq(lg_record_add(r, "a", 1700000000999, &cause), 0);
	ck_assert_int_eq(lg_record_add(r, "b", 1700000000124, &cause), 0);
	/* young batch: not committed yet, old one: committed */
	ck_assert_int_eq(lg_record_tick(r, 1700000000150, &cause), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent"), 0);
	ck_assert_int_eq(lg_record_tick(r, 1700000000223, &cause), 0);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent"), 2);
	/* a full batch commits by itself */
	for (int i = 0; i < LG_RECORD_BATCH; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		ck_assert_int_eq(lg_record_add(r, id, 1, &cause), 0);
	}
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent"),
	    2 + LG_RECORD_BATCH);
	ck_assert_int_eq(lg_record_add(r, "last", 2, &cause), 0);
	ck_assert_int_eq(lg_record_flush(r, &cause), 0);
	lg_record_close(r);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent"),
	    3 + LG_RECORD_BATCH);
	ck_assert_int_eq(db_int("SELECT accepted_at FROM sent "
	    "WHERE message_id = 'a'"), 1700000000123);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent "
	    "WHERE label = 'lbl'"), 3 + LG_RECORD_BATCH);

	/* a second run appends to the same table */
	ck_assert_int_eq(lg_record_open(&r, db_path, "two", &cause), 0);
	ck_assert_int_eq(lg_record_add(r, "c", 3, &cause), 0);
	ck_assert_int_eq(lg_record_flush(r, &cause), 0);
	lg_record_close(r);
	ck_assert_int_eq(db_int("SELECT count(*) FROM sent "
	    "WHERE label = 'two'"), 1);
	ck_assert_ptr_null(cause);
}
END_TEST

START_TEST(unwritable_database_is_an_error)
{
	struct lg_record *r = (struct lg_record *)1;

	ck_assert_int_lt(lg_record_open(&r, "/nonexistent/dir/s.db", "",
	    &cause), 0);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_nonnull(strstr(cause, "/nonexistent/dir/s.db"));
}
END_TEST

Suite *
loadgen_suite(void)
{
	Suite *s = suite_create("loadgen");
	TCase *tc;

	tc = tcase_create("stats");
	tcase_add_checked_fixture(tc, stats_setup, NULL);
	tcase_add_test(tc, percentiles_of_1_to_100_are_exact);
	tcase_add_test(tc, percentiles_of_1_to_100_ms_within_resolution);
	tcase_add_test(tc, empty_histogram_reports_zero);
	tcase_add_test(tc, single_sample_is_every_percentile);
	tcase_add_test(tc, huge_values_are_clamped_not_lost);
	tcase_add_test(tc, every_bucket_holds_its_own_values);
	tcase_add_test(tc, rejections_are_counted_by_status);
	tcase_add_test(tc, json_summary_has_the_documented_keys);
	tcase_add_test(tc, text_summary_names_statuses);
	suite_add_tcase(s, tc);

	tc = tcase_create("args");
	tcase_add_checked_fixture(tc, NULL, args_teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, every_option_is_taken);
	tcase_add_test(tc, duration_replaces_the_default_count);
	tcase_add_test(tc, count_and_duration_exclude_each_other);
	tcase_add_test(tc, bad_values_name_the_option);
	tcase_add_test(tc, help_and_version_exit_ok);
	tcase_add_test(tc, body_is_valid_json_of_the_given_size);
	tcase_add_test(tc, backoff_doubles_to_a_cap_with_jitter);
	tcase_add_test(tc, batch_takes_its_own_default_url);
	tcase_add_test(tc, batch_body_is_a_json_array_of_messages);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_add_checked_fixture(tc, record_setup, record_teardown);
	tcase_add_test(tc, recorded_ids_are_committed_once);
	tcase_add_test(tc, unwritable_database_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(loadgen_suite)

/* check_log.c - log lines: text, JSON, journald priorities, bursts */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check_main.h"
#include "check_util.h"
#include "log.h"

Suite *log_suite(void);

static char cap_path[64];
static int saved_stderr = -1;

/* Send stderr to a file until captured() reads it back. */
static void
capture(void)
{
	int fd;

	snprintf(cap_path, sizeof(cap_path), "/tmp/check-log.XXXXXX");
	fd = mkstemp(cap_path);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved_stderr = dup(2);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
}

/* What was written since capture(); the caller frees it. */
static char *
captured(void)
{
	FILE *f;
	char *buf = calloc(1, 65536);
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	f = fopen(cap_path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	unlink(cap_path);
	return buf;
}

static int
count_of(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

static void
setup(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init("processor", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_burst(LOG_BURST, LOG_BURST_WINDOW_S);
}

START_TEST(format_names_parse)
{
	enum log_format f;

	ck_assert_int_eq(log_format_parse("json", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(log_format_parse("TEXT", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_TEXT);
	ck_assert_int_ne(log_format_parse("xml", &f), 0);
}
END_TEST

START_TEST(json_line_has_time_level_role_and_message_id)
{
	struct json_object *o, *v;
	char *out;

	log_set_format(LOG_FORMAT_JSON);
	capture();
	log_message(LOG_LEVEL_WARN, "id-1", "given up: \"%s\"\n", "x");
	out = captured();
	ck_assert_int_eq(count_of(out, "\n"), 1);
	o = json_tokener_parse(out);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "level", &v));
	ck_assert_str_eq(json_object_get_string(v), "warn");
	ck_assert(json_object_object_get_ex(o, "role", &v));
	ck_assert_str_eq(json_object_get_string(v), "processor");
	ck_assert(json_object_object_get_ex(o, "message_id", &v));
	ck_assert_str_eq(json_object_get_string(v), "id-1");
	ck_assert(json_object_object_get_ex(o, "message", &v));
	ck_assert_str_eq(json_object_get_string(v), "given up: \"x\"\n");
	ck_assert(json_object_object_get_ex(o, "time", &v));
	ck_assert_int_eq(json_object_get_string_len(v), 24);
	json_object_put(o);
	free(out);
}
END_TEST

START_TEST(journal_lines_carry_their_priority)
{
	char *out;

	setenv("JOURNAL_STREAM", "8:1234", 1);
	log_init("ingest", LOG_LEVEL_DEBUG);
	capture();
	log_error("e");
	log_warn("w");
	log_info("i");
	log_debug("d");
	out = captured();
	ck_assert_str_eq(out, "<3>error: e\n<4>warn: w\n<6>info: i\n"
	    "<7>debug: d\n");
	free(out);
}
END_TEST

/*
 * What a client sent reaches a text line escaped: a newline cannot forge a
 * second line, an ANSI escape cannot drive the terminal.
 */
START_TEST(text_lines_escape_control_characters)
{
	const char *id = "x\n2026-01-01T00:00:00.000Z processor info: forged"
	    "\x1b[2J\r";
	char *out;

	log_init("processor", LOG_LEVEL_DEBUG);
	capture();
	log_message(LOG_LEVEL_DEBUG, id, "enqueued from %s", "a\tb\\c\x7f\x01");
	out = captured();
	ck_assert_int_eq(count_of(out, "\n"), 1);
	ck_assert_ptr_null(strchr(out, '\x1b'));
	ck_assert_ptr_null(strchr(out, '\r'));
	ck_assert_ptr_nonnull(strstr(out, "message x\\n2026-01-01T00:00:00.000Z "
	    "processor info: forged\\x1b[2J\\r: enqueued from "
	    "a\\tb\\\\c\\x7f\\x01\n"));
	free(out);
	/* the journal's lines too */
	setenv("JOURNAL_STREAM", "8:1234", 1);
	log_init("processor", LOG_LEVEL_DEBUG);
	capture();
	log_message(LOG_LEVEL_INFO, "a\nb", "c\nd");
	out = captured();
	ck_assert_str_eq(out, "<6>info: message a\\nb: c\\nd\n");
	free(out);
}
END_TEST

/* One call site, so that the burst counts its lines. */
static void
warn_again(int i)
{
	log_warn("the broker is down (%d)", i);
}

START_TEST(repeated_warnings_are_suppressed_and_counted)
{
	char *out;

	log_set_burst(3, 1);
	capture();
	for (int i = 0; i < 10; i++)
		warn_again(i);
	log_warn("another call site");
	tu_sleep_ms(2100);
	warn_again(10);
	out = captured();
	ck_assert_int_eq(count_of(out, "the broker is down"), 4);
	ck_assert_ptr_nonnull(strstr(out, "(10) (7 more like it suppressed)"));
	ck_assert_int_eq(count_of(out, "another call site"), 1);
	free(out);
}
END_TEST

START_TEST(info_lines_are_never_suppressed)
{
	char *out;

	log_set_burst(1, 60);
	capture();
	for (int i = 0; i < 5; i++)
		log_info("progress %d", i);
	out = captured();
	ck_assert_int_eq(count_of(out, "progress"), 5);
	free(out);
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, format_names_parse);
	tcase_add_test(tc, json_line_has_time_level_role_and_message_id);
	tcase_add_test(tc, journal_lines_carry_their_priority);
	tcase_add_test(tc, repeated_warnings_are_suppressed_and_counted);
	tcase_add_test(tc, info_lines_are_never_suppressed);
	tcase_add_test(tc, text_lines_escape_control_characters);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(log_suite)

/* check_ctl.c - diplomctl: its command line, the default file, settings */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "check_main.h"
#include "check_util.h"
#include "ctl/args.h"
#include "ctl/client.h"
#include "ctl/ctl.h"
#include "ctl/defaults.h"

Suite *ctl_suite(void);

static struct ctl_opts opts;
static char *cause;
static FILE *devnull;

static void
setup(void)
{
	/* the settings tests know what the environment gives */
	static const char *const vars[] = { "LISTEN_ADDRESS", "API_PORT",
		"INGEST_URL", "PROCESSOR_URL", "QUEUE_TYPE", "NATS_URL",
		"RESULTS_DB" };

	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
		unsetenv(vars[i]);
	cause = NULL;
	devnull = fopen("/dev/null", "w");
}

static void
teardown(void)
{
	free(cause);
	cause = NULL;
	fclose(devnull);
}

/* The arguments of the last parse: opts points into them. */
static char *args[32];

/* Parse the NULL-terminated argv. */
static enum ctl_parse_result
parse(const char **argv)
{
	int argc = 0;

	for (; argv[argc] != NULL; argc++)
		args[argc] = (char *)(uintptr_t)argv[argc];
	args[argc] = NULL;
	free(cause);
	cause = NULL;
	return ctl_opts_parse(&opts, argc, args, devnull, &cause);
}

/* Expect a usage error whose reason holds want. */
static void
usage_error(const char **argv, const char *want)
{
	ck_assert_int_eq(parse(argv), CTL_EXIT_USAGE);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, want) != NULL, "'%s' lacks '%s'", cause,
	    want);
}

#define ARGV(...) ((const char *[]){ "diplomctl", __VA_ARGS__, NULL })

START_TEST(status_takes_the_defaults)
{
	ck_assert_int_eq(parse(ARGV("status")), CTL_RUN);
	ck_assert_int_eq(opts.cmd, CTL_STATUS);
	ck_assert(!opts.json);
	ck_assert_ptr_null(opts.config);
	ck_assert_int_eq(opts.interval_ms, 1000);
	ck_assert_int_eq(opts.timeout_ms, 120000);
	ck_assert_int_eq(opts.limit, 100);
	ck_assert_int_eq(opts.since_ms, -1);
	ck_assert_str_eq(opts.systemctl, "systemctl");
	ck_assert_int_eq(opts.nargs, 0);
}
END_TEST

START_TEST(options_may_follow_the_command)
{
	ck_assert_int_eq(parse(ARGV("failed", "--since", "2h", "--json",
	    "--limit=7", "--processor-url=http://a:1,http://b:2")), CTL_RUN);
	ck_assert_int_eq(opts.cmd, CTL_FAILED);
	ck_assert(opts.json);
	ck_assert_int_eq(opts.since_ms, 7200000);
	ck_assert_int_eq(opts.limit, 7);
	ck_assert_int_eq(opts.n_settings, 1);
	ck_assert_str_eq(opts.settings[0].name, "processor-url");
	ck_assert_str_eq(opts.settings[0].value, "http://a:1,http://b:2");
}
END_TEST

START_TEST(each_command_takes_its_operands)
{
	ck_assert_int_eq(parse(ARGV("show", "id-1")), CTL_RUN);
	ck_assert_str_eq(opts.args[0], "id-1");
	usage_error(ARGV("show"), "one message id");
	usage_error(ARGV("show", "a", "b"), "one message id");
	ck_assert_int_eq(parse(ARGV("replay", "a", "b", "c")), CTL_RUN);
	ck_assert_int_eq(opts.nargs, 3);
	ck_assert_int_eq(parse(ARGV("replay", "--all-failed", "--since",
	    "30m")), CTL_RUN);
	ck_assert(opts.all_failed);
	usage_error(ARGV("replay"), "--all-failed");
	usage_error(ARGV("replay", "a", "--all-failed"), "not both");
	ck_assert_int_eq(parse(ARGV("switch", "nats")), CTL_RUN);
	ck_assert_int_eq(parse(ARGV("switch", "memory")), CTL_RUN);
	usage_error(ARGV("switch", "kafka"), "'kafka'");
	usage_error(ARGV("switch"), "memory or nats");
	usage_error(ARGV("status", "extra"), "'extra'");
	usage_error(ARGV("drain", "x"), "'x'");
}
END_TEST

START_TEST(an_option_of_another_command_is_a_usage_error)
{
	usage_error(ARGV("status", "--since=1h"), "--since");
	usage_error(ARGV("replay", "a", "--since=1h"), "--since");
	usage_error(ARGV("show", "a", "--limit=3"), "--limit");
	usage_error(ARGV("failed", "--all-failed"), "--all-failed");
	usage_error(ARGV("failed", "--timeout=3s"), "--timeout");
	usage_error(ARGV("drain", "--interval=3s"), "--interval");
	usage_error(ARGV("status", "--systemctl=x"), "--systemctl");
	ck_assert_int_eq(parse(ARGV("switch", "nats", "--timeout=5s",
	    "--systemctl=/bin/true")), CTL_RUN);
	ck_assert_int_eq(opts.timeout_ms, 5000);
	ck_assert_str_eq(opts.systemctl, "/bin/true");
}
END_TEST

START_TEST(bad_commands_and_values_are_usage_errors)
{
	usage_error(ARGV("--json"), "missing command");
	usage_error(ARGV("restart"), "unknown command 'restart'");
	usage_error(ARGV("status", "--bogus"), "'--bogus'");
	usage_error(ARGV("failed", "--limit=0"), "--limit");
	usage_error(ARGV("failed", "--limit=10001"), "--limit");
	usage_error(ARGV("failed", "--since=yesterday"), "--since");
	usage_error(ARGV("status", "--interval"), "requires an argument");
	usage_error(ARGV("status", "--config="), "--config");
	ck_assert_int_eq(parse(ARGV("--help")), CTL_EXIT_OK);
	ck_assert_int_eq(parse(ARGV("-V")), CTL_EXIT_OK);
}
END_TEST

/* Parse text as a default file into d. */
static void
defaults_of(struct ctl_defaults *d, const char *text)
{
	ck_assert_int_eq(ctl_defaults_parse(d, text, strlen(text)), 0);
}

START_TEST(the_default_file_is_read_as_systemd_reads_it)
{
	struct ctl_defaults d;

	defaults_of(&d, "# a comment\n"
	    "#QUEUE_TYPE=memory\n"
	    "; another\n"
	    "\n"
	    "  API_PORT = 9000  \n"
	    "NATS_URL=\"nats://a:1, nats://b:2\"\n"
	    "QUOTED='it''s'\n"
	    "ESC=\"a\\\"b\"\n"
	    "not an assignment\n"
	    "1BAD=x\n"
	    "EMPTY=\n"
	    "QUEUE_TYPE=memory\n"
	    "QUEUE_TYPE=nats");
	ck_assert_str_eq(ctl_defaults_get(&d, "API_PORT"), "9000");
	ck_assert_str_eq(ctl_defaults_get(&d, "NATS_URL"),
	    "nats://a:1, nats://b:2");
	ck_assert_str_eq(ctl_defaults_get(&d, "QUOTED"), "it''s");
	ck_assert_str_eq(ctl_defaults_get(&d, "ESC"), "a\"b");
	ck_assert_str_eq(ctl_defaults_get(&d, "EMPTY"), "");
	/* the last assignment wins, as in the environment it makes */
	ck_assert_str_eq(ctl_defaults_get(&d, "QUEUE_TYPE"), "nats");
	ck_assert_ptr_null(ctl_defaults_get(&d, "1BAD"));
	ck_assert_ptr_null(ctl_defaults_get(&d, "LOG_LEVEL"));
	ck_assert_uint_eq(d.n, 7);
	ctl_defaults_free(&d);
}
END_TEST

/* ctl_defaults_set_text's answer, asserted equal to want. */
static void
set_gives(const char *text, const char *key, const char *value,
    const char *want)
{
	char *got = ctl_defaults_set_text(text, strlen(text), key, value);

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(setting_a_key_keeps_every_other_line)
{
	/* an assignment is replaced where it is, each of them */
	set_gives("# top\nQUEUE_TYPE=memory\nA=1\n  QUEUE_TYPE = x\n",
	    "QUEUE_TYPE", "nats",
	    "# top\nQUEUE_TYPE=nats\nA=1\nQUEUE_TYPE=nats\n");
	/* without one, it goes below the commented-out default */
	set_gives("# the backend\n#QUEUE_TYPE=memory\n\n#QUEUE_SIZE=1000\n",
	    "QUEUE_TYPE", "nats",
	    "# the backend\n#QUEUE_TYPE=memory\nQUEUE_TYPE=nats\n\n"
	    "#QUEUE_SIZE=1000\n");
	/* or else at the end, even of a file without a last newline */
	set_gives("A=1\n# QUEUE_TYPEX=2\n", "QUEUE_TYPE", "nats",
	    "A=1\n# QUEUE_TYPEX=2\nQUEUE_TYPE=nats\n");
	set_gives("A=1", "QUEUE_TYPE", "nats", "A=1\nQUEUE_TYPE=nats\n");
	set_gives("", "QUEUE_TYPE", "nats", "QUEUE_TYPE=nats\n");
	/* a similar name is another key */
	set_gives("QUEUE_TYPES=1\n", "QUEUE_TYPE", "m",
	    "QUEUE_TYPES=1\nQUEUE_TYPE=m\n");
}
END_TEST

/* The content of the file at path. */
static char *
file_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_ge((long)fread(s, 1, 65535, f), 0);
	fclose(f);
	return s;
}

START_TEST(the_file_is_rewritten_whole_with_its_mode)
{
	char dir[PATH_MAX - 64], path[PATH_MAX], *s;
	struct stat st;
	FILE *f;

	tu_temp_dir(dir, sizeof(dir), "check_ctl");
	snprintf(path, sizeof(path), "%s/diplom", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# settings\n#QUEUE_TYPE=memory\nRESULTS_DB=/x.db\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(ctl_defaults_write(path, "QUEUE_TYPE", "nats",
	    &cause), 0);
	s = file_text(path);
	ck_assert_str_eq(s, "# settings\n#QUEUE_TYPE=memory\n"
	    "QUEUE_TYPE=nats\nRESULTS_DB=/x.db\n");
	free(s);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0604);
	ck_assert_int_eq(ctl_defaults_write(path, "QUEUE_TYPE", "memory",
	    &cause), 0);
	s = file_text(path);
	ck_assert_ptr_nonnull(strstr(s, "\nQUEUE_TYPE=memory\n"));
	ck_assert_ptr_null(strstr(s, "nats"));
	free(s);
	unlink(path);
	/* a file that is not there is not made */
	ck_assert_int_eq(ctl_defaults_write(path, "QUEUE_TYPE", "nats",
	    &cause), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cause, path));
	ck_assert_int_ne(access(path, F_OK), 0);
	rmdir(dir);
}
END_TEST

/* Write text to a new file under a new directory; its path into path. */
static void
temp_file(char *dir, size_t dlen, char *path, size_t plen, const char *text)
{
	FILE *f;

	tu_temp_dir(dir, dlen, "check_ctl");
	snprintf(path, plen, "%s/diplom", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

START_TEST(settings_are_file_then_environment_then_options)
{
	char dir[PATH_MAX - 64], path[PATH_MAX];
	struct ctl c;

	temp_file(dir, sizeof(dir), path, sizeof(path),
	    "API_PORT=9001\nINGEST_URL=http://file:1\nQUEUE_TYPE=nats\n"
	    "PROCESSOR_URL=http://file:2\n");
	setenv("INGEST_URL", "http://env:1", 1);
	setenv("PROCESSOR_URL", "http://env:2", 1);
	ck_assert_int_eq(parse(ARGV("status", "--config", path,
	    "--processor-url=http://opt:2")), CTL_RUN);
	ck_assert_int_eq(ctl_setup(&c, &opts, "/nonexistent", &cause),
	    CTL_OK);
	unsetenv("INGEST_URL");
	unsetenv("PROCESSOR_URL");
	ck_assert(c.have_file);
	ck_assert_str_eq(c.gateway_url, "http://127.0.0.1:9001");
	ck_assert_str_eq(c.cfg.queue_type, "nats");
	ck_assert_str_eq(c.cfg.ingest_url, "http://env:1");
	ck_assert_str_eq(c.cfg.processor_url.urls[0], "http://opt:2");
	ctl_teardown(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(a_missing_default_file_is_no_error_a_missing_config_is)
{
	struct ctl c;

	ck_assert_int_eq(parse(ARGV("status")), CTL_RUN);
	ck_assert_int_eq(ctl_setup(&c, &opts, "/nonexistent/diplom", &cause),
	    CTL_OK);
	ck_assert(!c.have_file);
	ck_assert_str_eq(c.gateway_url, "http://127.0.0.1:8080");
	ctl_teardown(&c);
	ck_assert_int_eq(parse(ARGV("status", "--config=/nonexistent/x")),
	    CTL_RUN);
	ck_assert_int_eq(ctl_setup(&c, &opts, "/nonexistent/diplom", &cause),
	    CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "/nonexistent/x"));
	ctl_teardown(&c);
}
END_TEST

START_TEST(a_bad_value_in_any_source_is_a_usage_error_naming_it)
{
	char dir[PATH_MAX - 64], path[PATH_MAX];
	struct ctl c;

	temp_file(dir, sizeof(dir), path, sizeof(path), "API_PORT=0\n");
	ck_assert_int_eq(parse(ARGV("status", "--config", path)), CTL_RUN);
	ck_assert_int_eq(ctl_setup(&c, &opts, NULL, &cause), CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "API_PORT"));
	ctl_teardown(&c);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(parse(ARGV("status", "--ingest-url=ftp://x")),
	    CTL_RUN);
	ck_assert_int_eq(ctl_setup(&c, &opts, "/nonexistent", &cause),
	    CTL_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "--ingest-url"));
	ctl_teardown(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* The package's /etc/default/diplom: every value one diplomd takes. */
START_TEST(the_packaged_default_file_is_valid)
{
	const char *top = getenv("top_srcdir");
	char path[PATH_MAX];
	struct ctl c;

	snprintf(path, sizeof(path), "%s/debian/diplom.default",
	    top != NULL ? top : "..");
	ck_assert_int_eq(parse(ARGV("status", "--config", path)), CTL_RUN);
	ck_assert_msg(ctl_setup(&c, &opts, NULL, &cause) == CTL_OK, "%s",
	    cause != NULL ? cause : "?");
	ck_assert(c.have_file);
	ck_assert_str_eq(c.cfg.results_db, "/var/lib/diplom/results.db");
	ctl_teardown(&c);
}
END_TEST

START_TEST(the_gateway_is_reached_where_it_listens)
{
	char *u;

	ck_assert_str_eq(u = ctl_gateway_url("0.0.0.0", 8080),
	    "http://127.0.0.1:8080");
	free(u);
	ck_assert_str_eq(u = ctl_gateway_url("::", 80), "http://[::1]:80");
	free(u);
	ck_assert_str_eq(u = ctl_gateway_url("10.1.2.3", 1),
	    "http://10.1.2.3:1");
	free(u);
	ck_assert_str_eq(u = ctl_gateway_url("fe80::1", 2),
	    "http://[fe80::1]:2");
	free(u);
}
END_TEST

START_TEST(a_nats_greeting_says_whether_jetstream_runs)
{
	ck_assert(ctl_nats_info_has_jetstream("INFO {\"server_id\":\"x\","
	    "\"jetstream\":true,\"max_payload\":1048576}\r\n"));
	ck_assert(!ctl_nats_info_has_jetstream("INFO {\"server_id\":\"x\","
	    "\"max_payload\":1048576}\r\n"));
	ck_assert(!ctl_nats_info_has_jetstream("INFO {\"jetstream\":false}"));
	ck_assert(!ctl_nats_info_has_jetstream("-ERR 'x'\r\n"));
	ck_assert(!ctl_nats_info_has_jetstream("INFO not json"));
}
END_TEST

START_TEST(no_broker_is_unreachable_with_each_servers_reason)
{
	char urls[128];
	int a = tu_free_port(), b = tu_free_port();

	snprintf(urls, sizeof(urls), "nats://127.0.0.1:%d, 127.0.0.1:%d", a,
	    b);
	ck_assert_int_eq(ctl_nats_jetstream(urls, 1000, &cause),
	    -EHOSTUNREACH);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "nats://127.0.0.1:") != NULL &&
	    strchr(cause, ';') != NULL, "%s", cause);
}
END_TEST

Suite *
ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc;

	tc = tcase_create("args");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, status_takes_the_defaults);
	tcase_add_test(tc, options_may_follow_the_command);
	tcase_add_test(tc, each_command_takes_its_operands);
	tcase_add_test(tc, an_option_of_another_command_is_a_usage_error);
	tcase_add_test(tc, bad_commands_and_values_are_usage_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("default file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_default_file_is_read_as_systemd_reads_it);
	tcase_add_test(tc, setting_a_key_keeps_every_other_line);
	tcase_add_test(tc, the_file_is_rewritten_whole_with_its_mode);
	suite_add_tcase(s, tc);

	tc = tcase_create("settings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, settings_are_file_then_environment_then_options);
	tcase_add_test(tc,
	    a_missing_default_file_is_no_error_a_missing_config_is);
	tcase_add_test(tc,
	    a_bad_value_in_any_source_is_a_usage_error_naming_it);
	tcase_add_test(tc, the_packaged_default_file_is_valid);
	tcase_add_test(tc, the_gateway_is_reached_where_it_listens);
	tcase_add_test(tc, a_nats_greeting_says_whether_jetstream_runs);
	tcase_add_test(tc, no_broker_is_unreachable_with_each_servers_reason);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ctl_suite)

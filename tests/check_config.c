/* check_config.c - defaults < environment < command line, and validation */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "duration.h"

Suite *config_suite(void);

#define ARGC(a) ((int)(sizeof(a) / sizeof(*(a))) - 1)

/* The fake environment: NULL-terminated "NAME=value" strings. */
static const char *const *fake_env;

/* Has getenv's type, so config_getenv_fn takes it as it takes getenv. */
static char *
fake_getenv(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = fake_env; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return (char *)(uintptr_t)(*e + n + 1);
	}
	return NULL;
}

static struct config cfg;
static char *cause;

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cause = NULL;
	fake_env = NULL;
}

static void
teardown(void)
{
	config_free(&cfg);
	free(cause);
	cause = NULL;
	fake_env = NULL;
}

/* Parse argv (NULL-terminated) with the fake environment env. */
static enum config_result
parse(const char *const *env, char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	fake_env = env;
	free(cause);
	cause = NULL;
	config_free(&cfg);
	return config_parse(&cfg, argc, argv, fake_getenv, &cause);
}

static void
parse_ok(const char *const *env, char **argv)
{
	enum config_result r = parse(env, argv);

	ck_assert_msg(r == CONFIG_RUN, "config_parse returned %d: %s", r,
	    cause != NULL ? cause : "(no cause)");
	ck_assert_ptr_null(cause);
}

/* Expect a usage error whose cause names want. */
static void
parse_usage(const char *const *env, char **argv, const char *want)
{
	enum config_result r = parse(env, argv);

	ck_assert_msg(r == CONFIG_EXIT_USAGE, "expected a usage error for %s, "
	    "got %d", want, r);
	ck_assert_msg(cause != NULL, "no cause for %s", want);
	ck_assert_msg(strstr(cause, want) != NULL, "cause '%s' does not "
	    "name '%s'", cause, want);
}

/* A backend's setting, by its long option. */
static const char *
str_of(const char *name)
{
	const char *v = NULL;

	ck_assert_msg(config_get_string(&cfg, name, &v) == 0, "no %s", name);
	ck_assert_ptr_nonnull(v);
	return v;
}

static int64_t
int_of(const char *name)
{
	int64_t v = 0;

	ck_assert_msg(config_get_int(&cfg, name, &v) == 0, "no %s", name);
	return v;
}

/* Every setting two parses compare in full, as a test expects them. */
struct settings {
	const char *listen_address;
	int api_port, ingest_port, processor_port;
	const char *ingest_url, *processor_url, *queue_type;
	int64_t queue_size, workers, processing_delay_ms;
	const char *results_db, *nats_url, *nats_stream, *nats_subject_prefix;
	int64_t nats_max_msgs, nats_max_bytes, nats_max_age, nats_replicas;
	int64_t nats_ack_wait, nats_max_deliver, nats_fetch_batch;
	int64_t max_body_bytes, drain_timeout_ms;
	enum log_level log_level;
	int role_port;
};

/* Assert that the parsed cfg holds every setting of w. */
static void
assert_settings(const struct settings *w)
{
	ck_assert_str_eq(cfg.listen_address, w->listen_address);
	ck_assert_int_eq(cfg.api_port, w->api_port);
	ck_assert_int_eq(cfg.ingest_port, w->ingest_port);
	ck_assert_int_eq(cfg.processor_port, w->processor_port);
	ck_assert_str_eq(cfg.ingest_url, w->ingest_url);
	ck_assert_str_eq(cfg.processor_url.text, w->processor_url);
	ck_assert_str_eq(cfg.queue_type, w->queue_type);
	ck_assert_int_eq(int_of("queue-size"), w->queue_size);
	ck_assert_int_eq(cfg.workers, w->workers);
	ck_assert_int_eq(cfg.processing_delay_ms, w->processing_delay_ms);
	ck_assert_str_eq(cfg.results_db, w->results_db);
	ck_assert_str_eq(str_of("nats-url"), w->nats_url);
	ck_assert_str_eq(str_of("nats-stream"), w->nats_stream);
	ck_assert_str_eq(str_of("nats-subject-prefix"), w->nats_subject_prefix);
	ck_assert_int_eq(int_of("nats-max-msgs"), w->nats_max_msgs);
	ck_assert_int_eq(int_of("nats-max-bytes"), w->nats_max_bytes);
	ck_assert_int_eq(int_of("nats-max-age"), w->nats_max_age);
	ck_assert_int_eq(int_of("nats-replicas"), w->nats_replicas);
	ck_assert_int_eq(int_of("nats-ack-wait"), w->nats_ack_wait);
	ck_assert_int_eq(int_of("nats-max-deliver"), w->nats_max_deliver);
	ck_assert_int_eq(int_of("nats-fetch-batch"), w->nats_fetch_batch);
	ck_assert_int_eq(cfg.max_body_bytes, w->max_body_bytes);
	ck_assert_int_eq(cfg.drain_timeout_ms, w->drain_timeout_ms);
	ck_assert_int_eq(cfg.log_level, w->log_level);
	ck_assert_int_eq(config_role_port(&cfg), w->role_port);
}

/* --- defaults and precedence ------------------------------------------- */

START_TEST(defaults_match_spec)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor", NULL };

	ck_assert_int_eq(config_parse(&cfg, ARGC(argv), argv, NULL, &cause),
	    CONFIG_RUN);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(cfg.role, ROLE_PROCESSOR);
	ck_assert_int_eq(cfg.port, 0);
	assert_settings(&(const struct settings){
		.listen_address = "127.0.0.1",
		.api_port = 8080, .ingest_port = 8081, .processor_port = 8082,
		.ingest_url = "http://localhost:8081",
		.processor_url = "http://localhost:8082",
		.queue_type = "memory", .queue_size = 1000,
		.workers = 4, .processing_delay_ms = 0,
		.results_db = "diplom-results.db",
		.nats_url = "nats://localhost:4222",
		.nats_stream = "DIPLOM_STREAM", .nats_subject_prefix = "diplom",
		.nats_max_msgs = 1000000, .nats_max_bytes = -1,
		.nats_max_age = 0, .nats_replicas = 1, .nats_ack_wait = 30000,
		.nats_max_deliver = 0, .nats_fetch_batch = 10,
		.max_body_bytes = 1048576, .drain_timeout_ms = 30000,
		.log_level = LOG_LEVEL_INFO, .role_port = 8082,
	});
}
END_TEST

START_TEST(environment_overrides_defaults)
{
	static const char *const env[] = {
		"LISTEN_ADDRESS=0.0.0.0", "API_PORT=9080", "INGEST_PORT=9081",
		"PROCESSOR_PORT=9082", "INGEST_URL=http://ingest:9081",
		"PROCESSOR_URL=https://proc:9082", "QUEUE_TYPE=nats",
		"QUEUE_SIZE=5", "PROCESSOR_WORKERS=16",
		"PROCESSING_DELAY_MS=10", "RESULTS_DB=/tmp/r.db",
		"NATS_URL=nats://a:4222,nats://b:4222", "NATS_STREAM=S",
		"NATS_SUBJECT_PREFIX=p", "NATS_MAX_MSGS=-1",
		"NATS_MAX_BYTES=1000", "NATS_MAX_AGE=24h", "NATS_REPLICAS=3",
		"NATS_ACK_WAIT=2m", "NATS_MAX_DELIVER=5",
		"NATS_FETCH_BATCH=50", "MAX_BODY_BYTES=2048",
		"DRAIN_TIMEOUT=500ms", "LOG_LEVEL=debug", NULL,
	};
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };

	parse_ok(env, argv);
	assert_settings(&(const struct settings){
		.listen_address = "0.0.0.0",
		.api_port = 9080, .ingest_port = 9081, .processor_port = 9082,
		.ingest_url = "http://ingest:9081",
		.processor_url = "https://proc:9082",
		.queue_type = "nats", .queue_size = 5,
		.workers = 16, .processing_delay_ms = 10,
		.results_db = "/tmp/r.db",
		.nats_url = "nats://a:4222,nats://b:4222",
		.nats_stream = "S", .nats_subject_prefix = "p",
		.nats_max_msgs = -1, .nats_max_bytes = 1000,
		.nats_max_age = 86400000, .nats_replicas = 3,
		.nats_ack_wait = 120000, .nats_max_deliver = 5,
		.nats_fetch_batch = 50,
		.max_body_bytes = 2048, .drain_timeout_ms = 500,
		.log_level = LOG_LEVEL_DEBUG, .role_port = 9080,
	});
}
END_TEST

START_TEST(command_line_overrides_environment)
{
	static const char *const env[] = {
		"API_PORT=9080", "QUEUE_TYPE=nats", "PROCESSOR_WORKERS=16",
		"DRAIN_TIMEOUT=500ms", "LOG_LEVEL=debug",
		"NATS_URL=nats://env:4222", NULL,
	};
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway",
		(char *)"--api-port=7000", (char *)"--queue-type", (char *)"memory",
		(char *)"--workers", (char *)"2", (char *)"--drain-timeout=5",
		(char *)"--log-level=ERROR", (char *)"--nats-url=nats://cli:1",
		NULL };

	parse_ok(env, argv);
	ck_assert_int_eq(cfg.api_port, 7000);
	ck_assert_str_eq(cfg.queue_type, "memory");
	ck_assert_int_eq(cfg.workers, 2);
	ck_assert_int_eq(cfg.drain_timeout_ms, 5000);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_ERROR);
	ck_assert_str_eq(str_of("nats-url"), "nats://cli:1");
	/* untouched by the command line: still the environment's */
	ck_assert_int_eq(cfg.ingest_port, 8081);
}
END_TEST

START_TEST(unknown_backend_names_the_known_ones)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway",
		(char *)"--queue-type=redis", NULL };

	parse_usage(NULL, argv, "--queue-type");
	ck_assert_msg(strstr(cause, "memory or nats") != NULL, "cause '%s'",
	    cause);
}
END_TEST

START_TEST(getters_refuse_unknown_names_and_kinds)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };
	const char *sv;
	int64_t iv;

	parse_ok(NULL, argv);
	ck_assert_int_eq(config_get_int(&cfg, "no-such-option", &iv), -ENOENT);
	ck_assert_int_eq(config_get_string(&cfg, "no-such", &sv), -ENOENT);
	/* a number is not text, nor the reverse */
	ck_assert_int_eq(config_get_string(&cfg, "queue-size", &sv), -ENOENT);
	ck_assert_int_eq(config_get_int(&cfg, "listen-address", &iv),
	    -ENOENT);
	ck_assert_int_eq(config_get_int(&cfg, "api-port", &iv), 0);
	ck_assert_int_eq(iv, 8080);
}
END_TEST

START_TEST(empty_environment_value_keeps_default)
{
	static const char *const env[] = { "API_PORT=", "QUEUE_TYPE=", NULL };
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };

	parse_ok(env, argv);
	ck_assert_int_eq(cfg.api_port, 8080);
	ck_assert_str_eq(cfg.queue_type, "memory");
}
END_TEST

START_TEST(last_command_line_value_wins)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway",
		(char *)"--workers=3", (char *)"--workers=9",
		(char *)"--role=ingest", NULL };

	parse_ok(NULL, argv);
	ck_assert_int_eq(cfg.workers, 9);
	ck_assert_int_eq(cfg.role, ROLE_INGEST);
}
END_TEST

START_TEST(parsing_twice_restarts_getopt)
{
	char *a1[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"--workers=3", NULL };
	char *a2[] = { (char *)"diplomd", (char *)"--workers=5",
		(char *)"--role=processor", NULL };

	parse_ok(NULL, a1);
	ck_assert_int_eq(cfg.workers, 3);
	parse_ok(NULL, a2);
	ck_assert_int_eq(cfg.workers, 5);
	ck_assert_int_eq(cfg.role, ROLE_PROCESSOR);
}
END_TEST

START_TEST(each_role_listens_on_its_own_port)
{
	static const char *const env[] = { "API_PORT=1001", "INGEST_PORT=1002",
		"PROCESSOR_PORT=1003", NULL };
	char *g[] = { (char *)"d", (char *)"--role=gateway", NULL };
	char *i[] = { (char *)"d", (char *)"--role=ingest", NULL };
	char *p[] = { (char *)"d", (char *)"--role", (char *)"processor", NULL };

	parse_ok(env, g);
	ck_assert_int_eq(cfg.role, ROLE_GATEWAY);
	ck_assert_int_eq(config_role_port(&cfg), 1001);
	ck_assert_str_eq(config_role_name(cfg.role), "gateway");
	parse_ok(env, i);
	ck_assert_int_eq(config_role_port(&cfg), 1002);
	ck_assert_str_eq(config_role_name(cfg.role), "ingest");
	parse_ok(env, p);
	ck_assert_int_eq(config_role_port(&cfg), 1003);
	ck_assert_str_eq(config_role_name(cfg.role), "processor");
}
END_TEST

START_TEST(port_flag_overrides_the_roles_port)
{
	static const char *const env[] = { "INGEST_PORT=1002", NULL };
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"--port=9999", NULL };
	char *both[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"--port=9999", (char *)"--ingest-port=7777", NULL };

	parse_ok(env, argv);
	ck_assert_int_eq(cfg.port, 9999);
	ck_assert_int_eq(config_role_port(&cfg), 9999);
	/* the role's own variable is untouched; --port just wins */
	ck_assert_int_eq(cfg.ingest_port, 1002);
	parse_ok(env, both);
	ck_assert_int_eq(config_role_port(&cfg), 9999);
}
END_TEST

/* --- durations ------------------------------------------------------------ */

static const struct {
	const char *text;
	int64_t ms;
} good_durations[] = {
	{ "30s", 30000 }, { "500ms", 500 }, { "2m", 120000 },
	{ "24h", 86400000 }, { "5", 5000 }, { "0", 0 }, { "0s", 0 },
	{ "1.5s", 1500 }, { "1ms", 1 }, { "90m", 5400000 },
	{ "876600h", DURATION_MAX_MS },
};

START_TEST(duration_units_convert_to_ms)
{
	int64_t ms = -7;

	ck_assert_msg(duration_parse_ms(good_durations[_i].text,
	    &ms) == 0, "'%s' rejected", good_durations[_i].text);
	ck_assert_int_eq(ms, good_durations[_i].ms);
}
END_TEST

START_TEST(bad_durations_are_rejected)
{
	static const char *const bad[] = {
		"10x", "", "s", "ms", "-1s", "-5", "5 s", "5sec", "5S", "1d",
		"abc", "1e400", "inf", "30s ", "nan", "nans", "NaNms",
		/* past 100 years: as nanoseconds on a clock, int64_t overflows */
		"876601h", "3155760000001ms", "999999999999h", "1e12h",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(duration_parse_ms(bad[i], &ms) != 0,
		    "'%s' accepted as %lld ms", bad[i], (long long)ms);
}
END_TEST

START_TEST(duration_settings_take_units_from_env_and_cli)
{
	static const char *const env[] = { "DRAIN_TIMEOUT=2m",
		"NATS_ACK_WAIT=500ms", "NATS_MAX_AGE=24h", NULL };
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor", NULL };
	char *cli[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)"--drain-timeout=5", (char *)"--nats-ack-wait=30s",
		(char *)"--nats-max-age=0", NULL };

	parse_ok(env, argv);
	ck_assert_int_eq(cfg.drain_timeout_ms, 120000);
	ck_assert_int_eq(int_of("nats-ack-wait"), 500);
	ck_assert_int_eq(int_of("nats-max-age"), 86400000);
	parse_ok(env, cli);
	ck_assert_int_eq(cfg.drain_timeout_ms, 5000);
	ck_assert_int_eq(int_of("nats-ack-wait"), 30000);
	ck_assert_int_eq(int_of("nats-max-age"), 0);
}
END_TEST

/* --- validation ----------------------------------------------------------- */

/* A bad environment value: the cause names the variable. */
static const struct {
	const char *env;	/* NAME=value */
	const char *name;
} bad_env[] = {
	{ "API_PORT=0", "API_PORT" },
	{ "API_PORT=65536", "API_PORT" },
	{ "API_PORT=abc", "API_PORT" },
	{ "INGEST_PORT=-1", "INGEST_PORT" },
	{ "PROCESSOR_PORT=80x", "PROCESSOR_PORT" },
	{ "QUEUE_TYPE=redis", "QUEUE_TYPE" },
	{ "PROCESSOR_WORKERS=0", "PROCESSOR_WORKERS" },
	{ "QUEUE_SIZE=lots", "QUEUE_SIZE" },
	{ "QUEUE_SIZE=0", "QUEUE_SIZE" },
	{ "MAX_BODY_BYTES=1MB", "MAX_BODY_BYTES" },
	{ "NATS_REPLICAS=7", "NATS_REPLICAS" },
	{ "DRAIN_TIMEOUT=10x", "DRAIN_TIMEOUT" },
	{ "NATS_ACK_WAIT=soon", "NATS_ACK_WAIT" },
	{ "LOG_LEVEL=verbose", "LOG_LEVEL" },
	{ "LOG_FORMAT=xml", "LOG_FORMAT" },
	{ "RESULTS_RETENTION=a-week", "RESULTS_RETENTION" },
	{ "RESULTS_MAX_BYTES=-1", "RESULTS_MAX_BYTES" },
	{ "INGEST_URL=ftp://ingest", "INGEST_URL" },
	{ "PROCESSOR_URL=localhost:8082", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=http://a:1,ftp://b:2", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=http://a:1,,http://b:2", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=http://a:1,", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=,http://a:1", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=http://a:1, ,http://b:2", "PROCESSOR_URL" },
	{ "PROCESSOR_URL=http://a:1,http://a:1", "PROCESSOR_URL" },
};

START_TEST(bad_environment_value_names_the_variable)
{
	const char *env[] = { bad_env[_i].env, NULL };
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor", NULL };

	parse_usage(env, argv, bad_env[_i].name);
	/* the value itself is quoted back */
	ck_assert_ptr_nonnull(strstr(cause, strchr(bad_env[_i].env, '=') + 1));
}
END_TEST

/* A bad command line value: the cause names the --option. */
static const struct {
	const char *arg;
	const char *name;
} bad_cli[] = {
	{ "--api-port=0", "--api-port" },
	{ "--api-port=65536", "--api-port" },
	{ "--port=0", "--port" },
	{ "--ingest-port=abc", "--ingest-port" },
	{ "--processor-port=", "--processor-port" },
	{ "--port=65536", "--port" },
	{ "--port=abc", "--port" },
	{ "--queue-type=redis", "--queue-type" },
	{ "--workers=0", "--workers" },
	{ "--workers=4.5", "--workers" },
	{ "--queue-size=lots", "--queue-size" },
	{ "--drain-timeout=10x", "--drain-timeout" },
	{ "--nats-ack-wait=-1s", "--nats-ack-wait" },
	{ "--log-level=loud", "--log-level" },
	{ "--ingest-url=localhost:8081", "--ingest-url" },
	{ "--processor-url=", "--processor-url" },
	{ "--processor-url=http://a:1, localhost:8082", "--processor-url" },
	{ "--role=worker", "--role" },
	{ "--listen-address=", "--listen-address" },
};

START_TEST(bad_command_line_value_names_the_option)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)bad_cli[_i].arg, NULL };

	parse_usage(NULL, argv, bad_cli[_i].name);
}
END_TEST

START_TEST(command_line_error_wins_over_good_environment)
{
	static const char *const env[] = { "PROCESSOR_WORKERS=8", NULL };
	char *argv[] = { (char *)"diplomd", (char *)"--role=processor",
		(char *)"--workers=0", NULL };

	parse_usage(env, argv, "--workers");
	ck_assert_ptr_null(strstr(cause, "PROCESSOR_WORKERS"));
}
END_TEST

START_TEST(missing_role_is_a_usage_error)
{
	char *argv[] = { (char *)"diplomd", (char *)"--workers=2", NULL };

	parse_usage(NULL, argv, "--role");
}
END_TEST

START_TEST(unknown_option_is_a_usage_error)
{
	char *lng[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"--bogus=1", NULL };
	char *shrt[] = { (char *)"diplomd", (char *)"-x", (char *)"--role=ingest",
		NULL };

	parse_usage(NULL, lng, "--bogus");
	parse_usage(NULL, shrt, "-x");
}
END_TEST

START_TEST(option_without_its_value_is_a_usage_error)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"--workers", NULL };

	parse_usage(NULL, argv, "--workers");
}
END_TEST

START_TEST(stray_argument_is_a_usage_error)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest",
		(char *)"extra", NULL };

	parse_usage(NULL, argv, "extra");
}
END_TEST

/* --- --help and --version ------------------------------------------------- */

/* Run config_parse with stdout sent to /dev/null. */
static enum config_result
parse_quietly(char **argv)
{
	enum config_result r;
	int saved, devnull;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(devnull, 0);
	dup2(devnull, STDOUT_FILENO);
	close(devnull);
	r = parse(NULL, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return r;
}

START_TEST(help_and_version_exit_ok)
{
	char *help[] = { (char *)"diplomd", (char *)"--help", NULL };
	char *h[] = { (char *)"diplomd", (char *)"-h", NULL };
	char *version[] = { (char *)"diplomd", (char *)"--version", NULL };
	char *v[] = { (char *)"diplomd", (char *)"-V", NULL };
	/* --help wins even with a bad --role later on the line */
	char *early[] = { (char *)"diplomd", (char *)"--help",
		(char *)"--role=bogus", NULL };

	ck_assert_int_eq(parse_quietly(help), CONFIG_EXIT_OK);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(parse_quietly(h), CONFIG_EXIT_OK);
	ck_assert_int_eq(parse_quietly(version), CONFIG_EXIT_OK);
	ck_assert_int_eq(parse_quietly(v), CONFIG_EXIT_OK);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(parse_quietly(early), CONFIG_EXIT_OK);
}
END_TEST

/* --- PROCESSOR_URL: one URL or a comma-separated list ------------------- */

/* Assert that PROCESSOR_URL was split into exactly the n URLs of want. */
static void
assert_urls(const char *const *want, size_t n)
{
	ck_assert_uint_eq(cfg.processor_url.n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(cfg.processor_url.urls[i], want[i]);
}

START_TEST(one_processor_url_is_a_list_of_one)
{
	static const char *const want[] = { "http://localhost:8082" };
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };

	parse_ok(NULL, argv);
	assert_urls(want, 1);
	ck_assert_str_eq(str_of("processor-url"), "http://localhost:8082");
}
END_TEST

START_TEST(processor_urls_split_at_commas_without_blanks)
{
	static const char *const env[] = {
		"PROCESSOR_URL=http://a:1, https://b:2/ ,\thttp://127.0.1.3:3",
		NULL,
	};
	static const char *const want[] = {
		"http://a:1", "https://b:2/", "http://127.0.1.3:3",
	};
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest", NULL };

	parse_ok(env, argv);
	assert_urls(want, 3);
	/* the text stays as given, for logs and tools */
	ck_assert_str_eq(str_of("processor-url"),
	    "http://a:1, https://b:2/ ,\thttp://127.0.1.3:3");
}
END_TEST

START_TEST(command_line_list_replaces_the_environments)
{
	static const char *const env[] = {
		"PROCESSOR_URL=http://a:1,http://b:2,http://c:3", NULL,
	};
	static const char *const want[] = { "http://x:1", "http://y:2" };
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway",
		(char *)"--processor-url=http://x:1,http://y:2", NULL };

	parse_ok(env, argv);
	assert_urls(want, 2);
}
END_TEST

START_TEST(bad_url_in_a_list_is_named)
{
	static const char *const env[] = {
		"PROCESSOR_URL=http://a:1,localhost:8082,http://c:3", NULL,
	};
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };

	parse_usage(env, argv, "PROCESSOR_URL");
	ck_assert_msg(strstr(cause, "'localhost:8082' is not") != NULL,
	    "cause '%s'", cause);
	/* one line, like every other usage error */
	ck_assert_ptr_null(strchr(cause, '\n'));
}
END_TEST

START_TEST(duplicate_and_empty_urls_say_so)
{
	static const char *const dup[] = {
		"PROCESSOR_URL=http://a:1, http://a:1", NULL,
	};
	static const char *const empty[] = {
		"PROCESSOR_URL=http://a:1,,http://b:2", NULL,
	};
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };

	parse_usage(dup, argv, "'http://a:1' is listed twice");
	parse_usage(empty, argv, "empty URL in the list");
}
END_TEST

START_TEST(too_many_urls_are_refused)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL,
		NULL };
	char *list = NULL, *arg = NULL, *next;

	for (int i = 0; i <= CONFIG_MAX_URLS; i++) {
		if (asprintf(&next, "%s%shttp://p%d:1", list != NULL ? list :
		    "", list != NULL ? "," : "", i) < 0)
			ck_abort_msg("out of memory");
		free(list);
		list = next;
	}
	if (asprintf(&arg, "--processor-url=%s", list) < 0)
		ck_abort_msg("out of memory");
	argv[2] = arg;
	parse_usage(NULL, argv, "--processor-url");
	ck_assert_msg(strstr(cause, "more than") != NULL, "cause '%s'", cause);
	free(arg);
	free(list);
}
END_TEST

/* A config_lookup_fn over a "NAME=value" list, as a tool's sources. */
static const char *
list_lookup(void *ctx, const char *name)
{
	fake_env = ctx;
	return fake_getenv(name);
}

START_TEST(a_tool_loads_defaults_and_its_sources_without_a_role)
{
	static const char *const env[] = { "QUEUE_TYPE=nats",
		"PROCESSOR_URL=http://a:1,http://b:2", NULL };

	ck_assert_int_eq(config_load(&cfg, list_lookup, (void *)env, &cause),
	    0);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(cfg.role, ROLE_NONE);
	ck_assert_str_eq(cfg.queue_type, "nats");
	ck_assert_uint_eq(cfg.processor_url.n, 2);
	ck_assert_str_eq(cfg.ingest_url, "http://localhost:8081");
	ck_assert_int_eq(cfg.api_port, 8080);
}
END_TEST

START_TEST(a_tool_sets_a_setting_by_its_option_name)
{
	static const char *const env[] = { "API_PORT=9000", NULL };

	ck_assert_int_eq(config_load(&cfg, list_lookup, (void *)env, &cause),
	    0);
	ck_assert_int_eq(config_set(&cfg, "api-port", "9100", &cause), 0);
	ck_assert_int_eq(cfg.api_port, 9100);
	ck_assert_int_eq(config_set(&cfg, "nats-url", "nats://x:1", &cause),
	    0);
	ck_assert_int_eq(config_set(&cfg, "api-port", "0", &cause), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cause, "--api-port"));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_set(&cfg, "no-such", "1", &cause), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cause, "no-such"));
}
END_TEST

START_TEST(a_bad_value_from_a_tools_source_names_the_variable)
{
	static const char *const env[] = { "QUEUE_TYPE=kafka", NULL };

	ck_assert_int_eq(config_load(&cfg, list_lookup, (void *)env, &cause),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(cause, "QUEUE_TYPE"));
}
END_TEST

/* --- secrets -------------------------------------------------------------- */

static char secret_dir[] = "/tmp/diplom-secrets-XXXXXX";

/* Write text to secret_dir/name; return the path (static). */
static const char *
write_secret(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", secret_dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
secrets_setup(void)
{
	setup();
	strcpy(secret_dir, "/tmp/diplom-secrets-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(secret_dir));
}

static void
secrets_teardown(void)
{
	char cmd[300];

	teardown();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", secret_dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(a_secret_comes_from_its_variable_or_its_file)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest", NULL };
	char file[300];
	const char *env1[] = { "INTERNAL_TOKEN=plain", NULL };
	const char *env2[] = { file, NULL };
	const char *env3[] = { "INTERNAL_TOKEN=plain", file, NULL };

	parse_ok(NULL, argv);
	ck_assert_ptr_null(cfg.internal_token);
	parse_ok(env1, argv);
	ck_assert_str_eq(cfg.internal_token, "plain");
	/* an editor's line end is not part of the secret */
	snprintf(file, sizeof(file), "INTERNAL_TOKEN_FILE=%s",
	    write_secret("token", "from-file\n"));
	parse_ok(env2, argv);
	ck_assert_str_eq(cfg.internal_token, "from-file");
	/* the variable itself wins over its file */
	parse_ok(env3, argv);
	ck_assert_str_eq(cfg.internal_token, "plain");
}
END_TEST

START_TEST(a_secret_file_that_cannot_be_used_is_named)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=ingest", NULL };
	char file[300];
	const char *env[] = { file, NULL };

	snprintf(file, sizeof(file), "INTERNAL_TOKEN_FILE=%s/missing",
	    secret_dir);
	ck_assert_int_eq(parse(env, argv), CONFIG_EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "INTERNAL_TOKEN_FILE"));
	ck_assert_ptr_nonnull(strstr(cause, "missing"));
	snprintf(file, sizeof(file), "INTERNAL_TOKEN_FILE=%s",
	    write_secret("empty", "\n"));
	ck_assert_int_eq(parse(env, argv), CONFIG_EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr(cause, "empty"));
}
END_TEST

START_TEST(systemd_credentials_fill_secrets_and_paths)
{
	char *argv[] = { (char *)"diplomd", (char *)"--role=gateway", NULL };
	char dir[300], cert[300];
	const char *env[] = { dir, NULL };
	const char *env2[] = { dir, cert, NULL };
	const char *v;

	snprintf(dir, sizeof(dir), "CREDENTIALS_DIRECTORY=%s", secret_dir);
	write_secret("internal-token", "cred-token");
	write_secret("tls-cert-file", "-----BEGIN CERTIFICATE-----\n");
	parse_ok(env, argv);
	ck_assert_str_eq(cfg.internal_token, "cred-token");
	/* a file setting takes the credential's path, not its text */
	snprintf(cert, sizeof(cert), "%s/tls-cert-file", secret_dir);
	ck_assert_str_eq(cfg.tls_cert_file, cert);
	ck_assert_ptr_null(cfg.tls_key_file);
	ck_assert_int_eq(config_get_string(&cfg, "nats-password", &v), 0);
	ck_assert_ptr_null(v);
	/* a variable wins over the credential */
	snprintf(cert, sizeof(cert), "TLS_CERT_FILE=/etc/diplom/cert.pem");
	parse_ok(env2, argv);
	ck_assert_str_eq(cfg.tls_cert_file, "/etc/diplom/cert.pem");
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("precedence");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_match_spec);
	tcase_add_test(tc, environment_overrides_defaults);
	tcase_add_test(tc, command_line_overrides_environment);
	tcase_add_test(tc, empty_environment_value_keeps_default);
	tcase_add_test(tc, unknown_backend_names_the_known_ones);
	tcase_add_test(tc, getters_refuse_unknown_names_and_kinds);
	tcase_add_test(tc, last_command_line_value_wins);
	tcase_add_test(tc, parsing_twice_restarts_getopt);
	tcase_add_test(tc, each_role_listens_on_its_own_port);
	tcase_add_test(tc, port_flag_overrides_the_roles_port);
	suite_add_tcase(s, tc);

	tc = tcase_create("duration");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, duration_units_convert_to_ms, 0,
	    (int)(sizeof(good_durations) / sizeof(*good_durations)));
	tcase_add_test(tc, bad_durations_are_rejected);
	tcase_add_test(tc, duration_settings_take_units_from_env_and_cli);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, bad_environment_value_names_the_variable, 0,
	    (int)(sizeof(bad_env) / sizeof(*bad_env)));
	tcase_add_loop_test(tc, bad_command_line_value_names_the_option, 0,
	    (int)(sizeof(bad_cli) / sizeof(*bad_cli)));
	tcase_add_test(tc, command_line_error_wins_over_good_environment);
	tcase_add_test(tc, missing_role_is_a_usage_error);
	tcase_add_test(tc, unknown_option_is_a_usage_error);
	tcase_add_test(tc, option_without_its_value_is_a_usage_error);
	tcase_add_test(tc, stray_argument_is_a_usage_error);
	tcase_add_test(tc, help_and_version_exit_ok);
	suite_add_tcase(s, tc);

	tc = tcase_create("url list");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_processor_url_is_a_list_of_one);
	tcase_add_test(tc, processor_urls_split_at_commas_without_blanks);
	tcase_add_test(tc, command_line_list_replaces_the_environments);
	tcase_add_test(tc, bad_url_in_a_list_is_named);
	tcase_add_test(tc, duplicate_and_empty_urls_say_so);
	tcase_add_test(tc, too_many_urls_are_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("tools");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    a_tool_loads_defaults_and_its_sources_without_a_role);
	tcase_add_test(tc, a_tool_sets_a_setting_by_its_option_name);
	tcase_add_test(tc, a_bad_value_from_a_tools_source_names_the_variable);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, secrets_setup, secrets_teardown);
	tcase_add_test(tc, a_secret_comes_from_its_variable_or_its_file);
	tcase_add_test(tc, a_secret_file_that_cannot_be_used_is_named);
	tcase_add_test(tc, systemd_credentials_fill_secrets_and_paths);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)

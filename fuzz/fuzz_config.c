/*
 * fuzz_config.c - config_parse with a command line and an environment taken
 * from the input. Each line is one argument, or with a leading '@' one
 * "NAME=value" of the environment. Whatever it is given, the parser must
 * not crash or leak, and a configuration it accepts must hold only values
 * the daemon can use.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "duration.h"
#include "fuzz.h"
#include "queue.h"

#define MAX_ITEMS 64

/* The fake environment of the input being run: getenv takes no context. */
static char *env_items[MAX_ITEMS + 1];

static char *
fake_getenv(const char *name)
{
	size_t n = strlen(name);

	for (char **e = env_items; *e != NULL; e++) {
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

static int
in_range(int64_t v, int64_t lo, int64_t hi)
{
	return v >= lo && v <= hi;
}

static int
http_url(const char *s)
{
	return s != NULL && (strncmp(s, "http://", 7) == 0 ||
	    strncmp(s, "https://", 8) == 0);
}

static int
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/*
 * Every duration becomes nanoseconds added to a clock somewhere: the bound
 * must leave room for that, and the parser must keep to it.
 */
static int
duration_ok(int64_t ms)
{
	return DURATION_MAX_MS <= INT64_MAX / 1000000 / 2 &&
	    ms >= 0 && ms <= DURATION_MAX_MS;
}

/* A backend's setting, which must be there. */
static int64_t
int_of(const struct config *c, const char *name)
{
	int64_t v = 0;

	FUZZ_CHECK(config_get_int(c, name, &v) == 0);
	return v;
}

static const char *
str_of(const struct config *c, const char *name)
{
	const char *v = NULL;

	FUZZ_CHECK(config_get_string(c, name, &v) == 0);
	return v;
}

/* What an accepted configuration must look like. */
static void
check_config(const struct config *c)
{
	FUZZ_CHECK(c->role == ROLE_GATEWAY || c->role == ROLE_INGEST ||
	    c->role == ROLE_PROCESSOR);
	FUZZ_CHECK(c->port == 0 || in_range(c->port, 1, 65535));
	FUZZ_CHECK(in_range(c->api_port, 1, 65535));
	FUZZ_CHECK(in_range(c->ingest_port, 1, 65535));
	FUZZ_CHECK(in_range(c->processor_port, 1, 65535));
	FUZZ_CHECK(in_range(config_role_port(c), 1, 65535));
	FUZZ_CHECK(nonempty(c->listen_address));
	FUZZ_CHECK(http_url(c->ingest_url));
	FUZZ_CHECK(c->processor_url.n >= 1 &&
	    c->processor_url.n <= CONFIG_MAX_URLS);
	for (size_t i = 0; i < c->processor_url.n; i++)
		FUZZ_CHECK(http_url(c->processor_url.urls[i]));
	FUZZ_CHECK(c->queue_type != NULL &&
	    queue_lookup(c->queue_type, NULL, NULL) == 0);
	FUZZ_CHECK(in_range(int_of(c, "queue-size"), 1, INT32_MAX));
	FUZZ_CHECK(duration_ok(c->results_retention_ms));
	FUZZ_CHECK(c->results_max_bytes >= 0);
	FUZZ_CHECK(c->log_format == LOG_FORMAT_TEXT ||
	    c->log_format == LOG_FORMAT_JSON);
	FUZZ_CHECK(in_range(c->workers, 1, 1024));
	FUZZ_CHECK(in_range(c->processing_delay_ms, 0, 3600000));
	FUZZ_CHECK(nonempty(c->results_db));
	FUZZ_CHECK(nonempty(str_of(c, "nats-url")));
	FUZZ_CHECK(nonempty(str_of(c, "nats-stream")));
	FUZZ_CHECK(nonempty(str_of(c, "nats-subject-prefix")));
	FUZZ_CHECK(int_of(c, "nats-max-msgs") >= -1);
	FUZZ_CHECK(int_of(c, "nats-max-bytes") >= -1);
	FUZZ_CHECK(duration_ok(int_of(c, "nats-max-age")));
	FUZZ_CHECK(in_range(int_of(c, "nats-replicas"), 1, 5));
	FUZZ_CHECK(duration_ok(int_of(c, "nats-ack-wait")));
	FUZZ_CHECK(in_range(int_of(c, "nats-max-deliver"), 0, 1000000));
	FUZZ_CHECK(in_range(int_of(c, "nats-fetch-batch"), 1, 1000));
	FUZZ_CHECK(in_range(c->max_client_conns, 0, 1000000));
	FUZZ_CHECK(duration_ok(c->request_timeout_ms));
	FUZZ_CHECK(duration_ok(c->idle_timeout_ms));
	FUZZ_CHECK(c->body_memory >= 0);
	FUZZ_CHECK(in_range(c->max_metadata_keys, 0, INT32_MAX));
	FUZZ_CHECK(in_range(c->max_metadata_key_bytes, 0, INT32_MAX));
	FUZZ_CHECK(in_range(c->max_metadata_value_bytes, 0, INT32_MAX));
	FUZZ_CHECK(in_range(c->max_body_bytes, 1, INT32_MAX));
	FUZZ_CHECK(duration_ok(c->drain_timeout_ms));
	FUZZ_CHECK(c->log_level >= LOG_LEVEL_ERROR &&
	    c->log_level <= LOG_LEVEL_DEBUG);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *args[MAX_ITEMS + 2], *copy, *line, *next, *cause = NULL;
	struct config cfg;
	enum config_result r;
	int argc = 1, nenv = 0;
	int64_t ms;

	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	args[0] = (char *)"diplomd";
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (next == NULL && *line == '\0')
			break;
		if (line[0] == '@' && nenv < MAX_ITEMS)
			env_items[nenv++] = line + 1;
		else if (line[0] != '@' && argc < MAX_ITEMS + 1)
			args[argc++] = line;
	}
	env_items[nenv] = NULL;
	args[argc] = NULL;

	r = config_parse(&cfg, argc, args, fake_getenv, &cause);
	switch (r) {
	case CONFIG_RUN:
		FUZZ_CHECK(cause == NULL);
		check_config(&cfg);
		break;
	case CONFIG_EXIT_OK:
		break;
	case CONFIG_EXIT_USAGE:
		FUZZ_CHECK(cause != NULL);
		break;
	default:
		FUZZ_CHECK(!"config_parse returned an unknown result");
	}
	config_free(&cfg);
	free(cause);

	/* the duration parser on its own, on every argument */
	for (int i = 1; i < argc; i++) {
		if (duration_parse_ms(args[i], &ms) == 0)
			FUZZ_CHECK(duration_ok(ms));
	}
	free(copy);
	env_items[0] = NULL;
	return 0;
}

/* config.c - settings table, environment and GNU long options */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "duration.h"

enum opt_kind {
	OPT_STRING,
	OPT_ROLE,
	OPT_PORT,
	OPT_INT,
	OPT_DURATION,
	OPT_QUEUE_TYPE,
	OPT_LOG_LEVEL,
	OPT_URL,
};

struct opt_def {
	const char *name;	/* long option */
	const char *env;	/* environment variable, NULL: none */
	enum opt_kind kind;
	const char *def;	/* built-in default, as text */
	int64_t min, max;	/* OPT_INT bounds */
	size_t offset;		/* field in struct config */
	const char *metavar;
	const char *help;
};

#define F(field) offsetof(struct config, field)

static const struct opt_def opt_defs[] = {
	{ "role", NULL, OPT_ROLE, NULL, 0, 0, F(role), "ROLE",
	  "gateway, ingest or processor (required)" },
	{ "listen-address", "LISTEN_ADDRESS", OPT_STRING, "127.0.0.1", 0, 0,
	  F(listen_address), "ADDR", "address every role binds" },
	{ "port", NULL, OPT_PORT, NULL, 0, 0, F(port), "PORT",
	  "port of this role (overrides the role's own variable)" },
	{ "api-port", "API_PORT", OPT_PORT, "8080", 0, 0, F(api_port), "PORT",
	  "gateway port" },
	{ "ingest-port", "INGEST_PORT", OPT_PORT, "8081", 0, 0,
	  F(ingest_port), "PORT", "ingest port" },
	{ "processor-port", "PROCESSOR_PORT", OPT_PORT, "8082", 0, 0,
	  F(processor_port), "PORT", "processor port" },
	{ "ingest-url", "INGEST_URL", OPT_URL, "http://localhost:8081", 0, 0,
	  F(ingest_url), "URL", "where the gateway finds ingest" },
	{ "processor-url", "PROCESSOR_URL", OPT_URL, "http://localhost:8082",
	  0, 0, F(processor_url), "URL", "where ingest and gateway find the processor" },
	{ "queue-type", "QUEUE_TYPE", OPT_QUEUE_TYPE, "memory", 0, 0,
	  F(queue_type), "TYPE", "queue backend: memory or nats" },
	{ "queue-size", "QUEUE_SIZE", OPT_INT, "1000", 1, INT32_MAX,
	  F(queue_size), "N", "memory backend capacity" },
	{ "workers", "PROCESSOR_WORKERS", OPT_INT, "4", 1, 1024, F(workers),
	  "N", "processor worker threads" },
	{ "processing-delay-ms", "PROCESSING_DELAY_MS", OPT_INT, "0", 0,
	  3600000, F(processing_delay_ms), "MS", "simulated work per message" },
	{ "results-db", "RESULTS_DB", OPT_STRING, "diplom-results.db", 0, 0,
	  F(results_db), "PATH", "processor's SQLite result store" },
	{ "nats-url", "NATS_URL", OPT_STRING, "nats://localhost:4222", 0, 0,
	  F(nats_url), "URLS", "NATS servers, comma-separated" },
	{ "nats-stream", "NATS_STREAM", OPT_STRING, "DIPLOM_STREAM", 0, 0,
	  F(nats_stream), "NAME", "JetStream stream name" },
	{ "nats-subject-prefix", "NATS_SUBJECT_PREFIX", OPT_STRING, "diplom",
	  0, 0, F(nats_subject_prefix), "PREFIX", "stream subjects are PREFIX.>" },
	{ "nats-max-msgs", "NATS_MAX_MSGS", OPT_INT, "1000000", -1, INT64_MAX,
	  F(nats_max_msgs), "N", "stream message limit (-1: none)" },
	{ "nats-max-bytes", "NATS_MAX_BYTES", OPT_INT, "-1", -1, INT64_MAX,
	  F(nats_max_bytes), "N", "stream byte limit (-1: none)" },
	{ "nats-max-age", "NATS_MAX_AGE", OPT_DURATION, "0", 0, 0,
	  F(nats_max_age_ms), "DURATION", "stream age limit (0: none)" },
	{ "nats-replicas", "NATS_REPLICAS", OPT_INT, "1", 1, 5,
	  F(nats_replicas), "N", "stream replicas" },
	{ "nats-ack-wait", "NATS_ACK_WAIT", OPT_DURATION, "30s", 0, 0,
	  F(nats_ack_wait_ms), "DURATION", "consumer ack wait" },
	{ "nats-max-deliver", "NATS_MAX_DELIVER", OPT_INT, "3", 1, 1000,
	  F(nats_max_deliver), "N", "deliveries before a message is given up" },
	{ "nats-fetch-batch", "NATS_FETCH_BATCH", OPT_INT, "10", 1, 1000,
	  F(nats_fetch_batch), "N", "messages a worker takes at a time" },
	{ "max-body-bytes", "MAX_BODY_BYTES", OPT_INT, "1048576", 1,
	  INT32_MAX, F(max_body_bytes), "N", "larger request bodies get 413" },
	{ "drain-timeout", "DRAIN_TIMEOUT", OPT_DURATION, "30s", 0, 0,
	  F(drain_timeout_ms), "DURATION", "bound on a graceful stop" },
	{ "log-level", "LOG_LEVEL", OPT_LOG_LEVEL, "info", 0, 0,
	  F(log_level), "LEVEL", "error, warn, info or debug" },
};

#define N_OPTS (sizeof(opt_defs) / sizeof(*opt_defs))

static const char *const role_names[] = {
	[ROLE_GATEWAY] = "gateway",
	[ROLE_INGEST] = "ingest",
	[ROLE_PROCESSOR] = "processor",
};

const char *
config_role_name(enum role role)
{
	if (role <= ROLE_NONE || role > ROLE_PROCESSOR)
		return "none";
	return role_names[role];
}

int
config_role_port(const struct config *cfg)
{
	if (cfg->port != 0)
		return cfg->port;
	switch (cfg->role) {
	case ROLE_GATEWAY:
		return cfg->api_port;
	case ROLE_INGEST:
		return cfg->ingest_port;
	case ROLE_PROCESSOR:
		return cfg->processor_port;
	default:
		return 0;
	}
}

static int
parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
valid_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* Set one setting from text; on failure *why says what a good value is. */
static int
opt_set(struct config *cfg, const struct opt_def *d, const char *val,
    const char **why)
{
	char *base = (char *)cfg;
	void *field = base + d->offset;
	int64_t n;

	switch (d->kind) {
	case OPT_URL:
		if (!valid_url(val)) {
			*why = "expected an http:// or https:// URL";
			return -1;
		}
		/* FALLTHROUGH */
	case OPT_STRING:
		if (*val == '\0') {
			*why = "must not be empty";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = strdup(val);
		return 0;
	case OPT_ROLE:
		for (int r = ROLE_GATEWAY; r <= ROLE_PROCESSOR; r++) {
			if (strcmp(val, role_names[r]) == 0) {
				*(enum role *)field = (enum role)r;
				return 0;
			}
		}
		*why = "expected gateway, ingest or processor";
		return -1;
	case OPT_PORT:
		if (parse_int(val, &n) != 0 || n < 1 || n > 65535) {
			*why = "expected a port number 1-65535";
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case OPT_INT:
		if (parse_int(val, &n) != 0) {
			*why = "expected a whole number";
			return -1;
		}
		if (n < d->min || n > d->max) {
			*why = "out of range";
			return -1;
		}
		*(int64_t *)field = n;
		return 0;
	case OPT_DURATION:
		if (duration_parse_ms(val, &n) != 0) {
			*why = "expected a duration such as 30s, 500ms, 2m, 24h";
			return -1;
		}
		*(int64_t *)field = n;
		return 0;
	case OPT_QUEUE_TYPE:
		if (strcmp(val, "memory") != 0 && strcmp(val, "nats") != 0) {
			*why = "expected memory or nats";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = strdup(val);
		return 0;
	case OPT_LOG_LEVEL:
		if (log_level_parse(val, (enum log_level *)field) != 0) {
			*why = "expected error, warn, info or debug";
			return -1;
		}
		return 0;
	}
	return -1;
}

static char *
bad_value(const char *what, const char *val, const char *why)
{
	char *s;

	if (asprintf(&s, "invalid value '%s' for %s: %s", val, what, why) < 0)
		return NULL;
	return s;
}

/* Apply the default, then the environment, for every setting. */
static int
config_from_env(struct config *cfg, config_getenv_fn getenv_fn, char **cause)
{
	const char *why = NULL, *v;

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_defs[i];

		if (d->def != NULL && opt_set(cfg, d, d->def, &why) != 0) {
			*cause = bad_value(d->name, d->def, why);
			return -1;
		}
		if (d->env == NULL || getenv_fn == NULL ||
		    (v = getenv_fn(d->env)) == NULL || *v == '\0')
			continue;
		if (opt_set(cfg, d, v, &why) != 0) {
			*cause = bad_value(d->env, v, why);
			return -1;
		}
	}
	return 0;
}

enum { OPT_HELP = 1000, OPT_VERSION };

enum config_result
config_parse(struct config *cfg, int argc, char **argv,
    config_getenv_fn getenv_fn, char **cause)
{
	struct option longopts[N_OPTS + 3];
	const char *why = NULL;
	char what[64];
	int c, idx;

	memset(cfg, 0, sizeof(*cfg));
	*cause = NULL;
	if (config_from_env(cfg, getenv_fn, cause) != 0)
		return CONFIG_EXIT_USAGE;

	for (size_t i = 0; i < N_OPTS; i++)
		longopts[i] = (struct option){ opt_defs[i].name,
			required_argument, NULL, (int)i };
	longopts[N_OPTS] = (struct option){ "help", no_argument, NULL,
		OPT_HELP };
	longopts[N_OPTS + 1] = (struct option){ "version", no_argument, NULL,
		OPT_VERSION };
	longopts[N_OPTS + 2] = (struct option){ NULL, 0, NULL, 0 };

	optind = 0;	/* reset getopt, so tests may parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", longopts, &idx)) != -1) {
		if (c == 'h' || c == OPT_HELP) {
			config_print_help(argv[0]);
			return CONFIG_EXIT_OK;
		}
		if (c == 'V' || c == OPT_VERSION) {
			printf("diplomd %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT_OK;
		}
		if (c == '?' || c == ':' || c < 0 || (size_t)c >= N_OPTS) {
			if (asprintf(cause, "unrecognized or incomplete option "
			    "'%s'", argv[optind - 1]) < 0)
				*cause = NULL;
			return CONFIG_EXIT_USAGE;
		}
		if (opt_set(cfg, &opt_defs[c], optarg, &why) != 0) {
			snprintf(what, sizeof(what), "--%s", opt_defs[c].name);
			*cause = bad_value(what, optarg, why);
			return CONFIG_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (asprintf(cause, "unexpected argument '%s'",
		    argv[optind]) < 0)
			*cause = NULL;
		return CONFIG_EXIT_USAGE;
	}
	if (cfg->role == ROLE_NONE) {
		*cause = strdup("missing --role (gateway, ingest or processor)");
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_RUN;
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		enum opt_kind k = opt_defs[i].kind;

		if (k == OPT_STRING || k == OPT_URL || k == OPT_QUEUE_TYPE) {
			char **p = (char **)((char *)cfg + opt_defs[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}

void
config_print_help(const char *prog)
{
	char left[64];

	printf("Usage: %s [OPTION]... --role=gateway|ingest|processor\n"
	    "Run one role of the diplom message-ingestion pipeline.\n\n"
	    "Every option may also be set by the environment variable named "
	    "after it;\nthe command line wins over the environment.\n\n",
	    prog);
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_defs[i];

		snprintf(left, sizeof(left), "--%s=%s", d->name, d->metavar);
		printf("  %-30s %s", left, d->help);
		if (d->env != NULL)
			printf(" [%s]", d->env);
		if (d->env != NULL)
			printf(" (default %s)", d->def);
		printf("\n");
	}
	printf("  %-30s %s\n  %-30s %s\n", "-h, --help",
	    "show this help and exit", "-V, --version",
	    "show the version and exit");
	printf("\nExit status: 0 on a clean stop, 1 on a runtime failure, "
	    "2 on a usage error.\nSee diplomd(8).\n");
}

/* config.h - the daemon's settings: defaults < environment < command line */
#ifndef DIPLOM_CONFIG_H
#define DIPLOM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum role {
	ROLE_NONE,
	ROLE_GATEWAY,
	ROLE_INGEST,
	ROLE_PROCESSOR,
};

/* What a setting holds, and so how its text is checked. */
enum config_kind {
	CONFIG_STRING,
	CONFIG_URL,		/* http:// or https:// */
	CONFIG_URL_LIST,	/* CONFIG_URLs, comma-separated */
	CONFIG_PORT,		/* int, 1-65535 */
	CONFIG_INT,		/* int64_t within min..max */
	CONFIG_DURATION,	/* int64_t milliseconds */
	CONFIG_ROLE,
	CONFIG_QUEUE_TYPE,	/* a backend's name, checked by queue.c */
	CONFIG_LOG_LEVEL,
	CONFIG_LOG_FORMAT,
	/*
	 * A secret (a token, a password): also read from the file that the
	 * variable VAR_FILE names, or from the systemd credential named after
	 * the long option, so that it need not sit in the environment.
	 */
	CONFIG_SECRET,
	/*
	 * The path of a file that holds keys or certificates: when unset, the
	 * systemd credential named after the long option, if there is one.
	 */
	CONFIG_PATH,
};

/* The most URLs one CONFIG_URL_LIST setting may name. */
#define CONFIG_MAX_URLS 32

/* A CONFIG_URL_LIST setting: the text as given, and the URLs in it. */
struct config_url_list {
	char *text;
	char **urls;
	size_t n;		/* at least 1 once parsed */
};

/* One setting: its long option, its environment variable, its field. */
struct config_option {
	const char *name;	/* long option */
	const char *env;	/* environment variable, NULL: none */
	enum config_kind kind;
	const char *def;	/* built-in default, as text */
	int64_t min, max;	/* CONFIG_INT bounds */
	size_t offset;		/* of the field in the group's settings */
	const char *metavar;
	const char *help;
};

/*
 * Settings that one module owns (a queue backend): their options, and the
 * size of the struct their offsets point into. config_parse fills one such
 * struct per group, whichever backend runs, so that a bad value is a usage
 * error at start.
 */
struct config_group {
	const char *name;
	const struct config_option *options;
	size_t n_options;
	size_t size;
};

/* The most groups config_parse keeps. */
#define CONFIG_MAX_GROUPS 4

struct config {
	enum role role;
	char *listen_address;
	int api_port;
	int ingest_port;
	int processor_port;
	int port;			/* --port: the own role's port, 0: unset */
	char *ingest_url;
	struct config_url_list processor_url;	/* one or more processors */
	char *queue_type;
	int64_t workers;
	int64_t processing_delay_ms;
	char *results_db;
	int64_t results_retention_ms;	/* 0: keep every result */
	int64_t results_max_bytes;	/* 0: no limit */
	int64_t max_body_bytes;
	int64_t max_batch;		/* messages in one batch ingest */
	int64_t forward_batch;		/* singles the gateway carries in one */
	int64_t max_client_conns;	/* 0: no limit */
	int64_t max_prefix_conns;	/* 0: no limit */
	int64_t client_prefix_v4;	/* bits of those prefixes */
	int64_t client_prefix_v6;
	int64_t request_timeout_ms;	/* 0: none */
	int64_t idle_timeout_ms;
	int64_t body_memory;		/* 0: no limit */
	int64_t body_memory_share;	/* percent one client may take */
	int64_t max_metadata_keys;	/* 0: no limit, and the two below */
	int64_t max_metadata_key_bytes;
	int64_t max_metadata_value_bytes;
	int64_t drain_timeout_ms;
	/* security: NULL or 0 leaves each off */
	char *api_keys_file;		/* gateway: keys for the API */
	char *admin_keys_file;		/* gateway: keys for /metrics, status */
	char *admin_listen_address;	/* gateway: ADDR:PORT for those */
	int64_t rate_limit;		/* gateway: requests/s per client */
	int64_t rate_burst;
	char *tls_cert_file;		/* every role: serve HTTPS */
	char *tls_key_file;
	char *tls_priorities;		/* NULL: HTTP_TLS_PRIORITIES */
	char *tls_ca_file;		/* the peers' CA, as a client */
	char *internal_token;		/* between the roles */
	enum log_level log_level;
	enum log_format log_format;
	/* each group's settings, in the order of config_groups() */
	void *group[CONFIG_MAX_GROUPS];
};

/* What config_parse asks the caller to do next. */
enum config_result {
	CONFIG_RUN = 0,
	CONFIG_EXIT_OK = 1,	/* --help or --version was printed */
	CONFIG_EXIT_USAGE = 2,	/* *cause says what is wrong */
};

typedef char *(*config_getenv_fn)(const char *name);

/* Fill cfg from defaults, then getenv_fn (NULL: no environment), then argv. */
enum config_result config_parse(struct config *cfg, int argc, char **argv,
    config_getenv_fn getenv_fn, char **cause);
/*
 * For a tool with a command line of its own (diplomctl): fill cfg from the
 * defaults, then from lookup(ctx, VARIABLE) for each setting that has a
 * variable (NULL: none; NULL or "" from it: unset). A bad value fails
 * with a cause naming the variable; config_free cfg either way.
 */
typedef const char *(*config_lookup_fn)(void *ctx, const char *name);
int config_load(struct config *cfg, config_lookup_fn lookup, void *ctx,
    char **cause);
/* Set the setting whose long option is name, as --name=val would. */
int config_set(struct config *cfg, const char *name, const char *val,
    char **cause);
void config_free(struct config *cfg);

/* The port the configured role listens on. */
int config_role_port(const struct config *cfg);
const char *config_role_name(enum role role);
void config_print_help(const char *prog);
/*
 * The value of a setting named by its long option, for tools and tests:
 * CONFIG_INT, CONFIG_DURATION (ms) and CONFIG_PORT through int, the text
 * kinds (a URL list: as given) through string; -ENOENT for an unknown name
 * or another kind.
 */
int config_get_int(const struct config *cfg, const char *name, int64_t *v);
int config_get_string(const struct config *cfg, const char *name,
    const char **v);
/* The settings config_parse filled for group g. */
const void *config_settings(const struct config *cfg,
    const struct config_group *g);

#endif

/* config.h - the daemon's settings: defaults < environment < command line */
#ifndef DIPLOM_CONFIG_H
#define DIPLOM_CONFIG_H

#include <stdint.h>

#include "log.h"

enum role {
	ROLE_NONE,
	ROLE_GATEWAY,
	ROLE_INGEST,
	ROLE_PROCESSOR,
};

struct config {
	enum role role;
	char *listen_address;
	int api_port;
	int ingest_port;
	int processor_port;
	int port;			/* --port: the own role's port, 0: unset */
	char *ingest_url;
	char *processor_url;
	char *queue_type;
	int64_t queue_size;
	int64_t workers;
	int64_t processing_delay_ms;
	char *results_db;
	char *nats_url;
	char *nats_stream;
	char *nats_subject_prefix;
	int64_t nats_max_msgs;
	int64_t nats_max_bytes;
	int64_t nats_max_age_ms;	/* 0: no age limit */
	int64_t nats_replicas;
	int64_t nats_ack_wait_ms;
	int64_t nats_max_deliver;
	int64_t nats_fetch_batch;
	int64_t max_body_bytes;
	int64_t drain_timeout_ms;
	enum log_level log_level;
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
void config_free(struct config *cfg);

/* The port the configured role listens on. */
int config_role_port(const struct config *cfg);
const char *config_role_name(enum role role);
void config_print_help(const char *prog);

#endif

/* ctl/args.h - diplomctl's command line */
#ifndef DIPLOM_CTL_ARGS_H
#define DIPLOM_CTL_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum ctl_command {
	CTL_NONE,
	CTL_STATUS,
	CTL_SHOW,
	CTL_FAILED,
	CTL_REPLAY,
	CTL_DRAIN,
	CTL_RESUME,
	CTL_SWITCH,
};

#define CTL_DEFAULT_TIMEOUT_MS	120000
#define CTL_DEFAULT_INTERVAL_MS	1000
#define CTL_DEFAULT_LIMIT	100
#define CTL_MAX_LIMIT		10000
/* the most diplomd settings one command line may set */
#define CTL_MAX_SETTINGS	32

/* A diplomd setting given on the command line: --name=value. */
struct ctl_setting {
	const char *name;
	const char *value;
};

struct ctl_opts {
	enum ctl_command cmd;
	char **args;		/* the command's operands, into argv */
	int nargs;
	bool json;
	const char *config;	/* --config, NULL: the default file */
	int64_t timeout_ms;	/* drain, switch: the wait for the backlog */
	int64_t interval_ms;	/* status: between the samples of rates */
	int64_t since_ms;	/* failed, replay --all-failed; -1: all */
	int64_t limit;		/* failed */
	bool all_failed;
	const char *systemctl;	/* switch: what starts and stops units */
	struct ctl_setting settings[CTL_MAX_SETTINGS];
	int n_settings;
};

/* What ctl_opts_parse asks the caller to do next (also the exit status). */
enum ctl_parse_result {
	CTL_RUN = 0,
	CTL_EXIT_OK = 1,	/* --help or --version was printed */
	CTL_EXIT_USAGE = 2,	/* *cause says what is wrong */
};

/* Fill o from argv; strings point into argv. Help and version go to out. */
enum ctl_parse_result ctl_opts_parse(struct ctl_opts *o, int argc,
    char **argv, FILE *out, char **cause);
void ctl_print_help(FILE *out, const char *prog);
const char *ctl_command_name(enum ctl_command cmd);

#endif

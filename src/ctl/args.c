/* ctl/args.c - diplomctl's command line: GNU options and a command */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "ctl/args.h"

enum {
	OPT_JSON = 1000,
	OPT_CONFIG,
	OPT_TIMEOUT,
	OPT_INTERVAL,
	OPT_SINCE,
	OPT_LIMIT,
	OPT_ALL_FAILED,
	OPT_SYSTEMCTL,
	OPT_SETTING,		/* a diplomd setting: longopts[idx].name */
};

static const struct option longopts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "all-failed", no_argument, NULL, OPT_ALL_FAILED },
	{ "systemctl", required_argument, NULL, OPT_SYSTEMCTL },
	/* diplomd's settings that say where the roles are */
	{ "listen-address", required_argument, NULL, OPT_SETTING },
	{ "api-port", required_argument, NULL, OPT_SETTING },
	{ "ingest-url", required_argument, NULL, OPT_SETTING },
	{ "processor-url", required_argument, NULL, OPT_SETTING },
	{ "queue-type", required_argument, NULL, OPT_SETTING },
	{ "nats-url", required_argument, NULL, OPT_SETTING },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char *const command_names[] = {
	[CTL_STATUS] = "status",
	[CTL_SHOW] = "show",
	[CTL_FAILED] = "failed",
	[CTL_REPLAY] = "replay",
	[CTL_DRAIN] = "drain",
	[CTL_RESUME] = "resume",
	[CTL_SWITCH] = "switch",
};

const char *
ctl_command_name(enum ctl_command cmd)
{
	if (cmd <= CTL_NONE || cmd > CTL_SWITCH)
		return "none";
	return command_names[cmd];
}

static enum ctl_parse_result usage_error(char **cause, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Set *cause to the reason of a usage error. */
static enum ctl_parse_result
usage_error(char **cause, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
	return CTL_EXIT_USAGE;
}

/* The options a command takes beyond the common ones, by their codes. */
static int
option_allowed(enum ctl_command cmd, int code, const struct ctl_opts *o)
{
	switch (code) {
	case OPT_INTERVAL:
		return cmd == CTL_STATUS;
	case OPT_LIMIT:
		return cmd == CTL_FAILED;
	case OPT_SINCE:
		return cmd == CTL_FAILED || (cmd == CTL_REPLAY &&
		    o->all_failed);
	case OPT_ALL_FAILED:
		return cmd == CTL_REPLAY;
	case OPT_TIMEOUT:
		return cmd == CTL_DRAIN || cmd == CTL_SWITCH;
	case OPT_SYSTEMCTL:
		return cmd == CTL_SWITCH;
	default:
		return 1;
	}
}

/* The operands each command takes. */
static enum ctl_parse_result
check_operands(struct ctl_opts *o, char **cause)
{
	const char *cmd = ctl_command_name(o->cmd);

	switch (o->cmd) {
	case CTL_SHOW:
		if (o->nargs != 1)
			return usage_error(cause, "%s takes one message id",
			    cmd);
		return CTL_RUN;
	case CTL_REPLAY:
		if (o->all_failed && o->nargs > 0)
			return usage_error(cause, "replay takes message ids "
			    "or --all-failed, not both");
		if (!o->all_failed && o->nargs == 0)
			return usage_error(cause, "replay takes message ids "
			    "or --all-failed");
		return CTL_RUN;
	case CTL_SWITCH:
		if (o->nargs != 1)
			return usage_error(cause, "switch takes a queue "
			    "type: memory or nats");
		if (strcmp(o->args[0], "memory") != 0 &&
		    strcmp(o->args[0], "nats") != 0)
			return usage_error(cause, "invalid queue type '%s' "
			    "for switch: expected memory or nats",
			    o->args[0]);
		return CTL_RUN;
	default:
		if (o->nargs != 0)
			return usage_error(cause, "unexpected argument '%s' "
			    "for %s", o->args[0], cmd);
		return CTL_RUN;
	}
}

enum ctl_parse_result
ctl_opts_parse(struct ctl_opts *o, int argc, char **argv, FILE *out,
    char **cause)
{
	/* each option's code as given, to check it against the command */
	int given[sizeof(longopts) / sizeof(*longopts)] = { 0 };
	int c, idx, ngiven = 0;
	char *end;
	int64_t v;

	*cause = NULL;
	memset(o, 0, sizeof(*o));
	o->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	o->interval_ms = CTL_DEFAULT_INTERVAL_MS;
	o->since_ms = -1;
	o->limit = CTL_DEFAULT_LIMIT;
	o->systemctl = "systemctl";

	optind = 0;	/* reset getopt, so tests may parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", longopts, &idx)) != -1) {
		const char *name = c >= OPT_JSON ? longopts[idx].name : NULL;

		if (c >= OPT_JSON && ngiven < (int)(sizeof(given) /
		    sizeof(*given)))
			given[ngiven++] = idx;
		switch (c) {
		case 'h':
			ctl_print_help(out, argv[0]);
			return CTL_EXIT_OK;
		case 'V':
			fprintf(out, "diplomctl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_CONFIG:
			if (*optarg == '\0')
				return usage_error(cause, "--config needs a "
				    "file name");
			o->config = optarg;
			break;
		case OPT_TIMEOUT:
		case OPT_INTERVAL:
		case OPT_SINCE:
			if (duration_parse_ms(optarg, &v) != 0)
				return usage_error(cause, "invalid value '%s' "
				    "for --%s: expected a duration such as "
				    "30s, 500ms, 2m, 24h", optarg, name);
			if (c == OPT_TIMEOUT)
				o->timeout_ms = v;
			else if (c == OPT_INTERVAL)
				o->interval_ms = v;
			else
				o->since_ms = v;
			break;
		case OPT_LIMIT:
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 || v > CTL_MAX_LIMIT)
				return usage_error(cause, "invalid value '%s' "
				    "for --limit: expected a number from 1 to "
				    "%d", optarg, CTL_MAX_LIMIT);
			o->limit = v;
			break;
		case OPT_ALL_FAILED:
			o->all_failed = true;
			break;
		case OPT_SYSTEMCTL:
			o->systemctl = optarg;
			break;
		case OPT_SETTING:
			if (o->n_settings == CTL_MAX_SETTINGS)
				return usage_error(cause, "too many settings "
				    "on the command line");
			o->settings[o->n_settings++] = (struct ctl_setting){
				name, optarg };
			break;
		case ':':
			return usage_error(cause, "option '%s' requires an "
			    "argument", argv[optind - 1]);
		default:
			return usage_error(cause, "unrecognized option '%s'",
			    argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error(cause, "missing command (status, show, "
		    "failed, replay, drain, resume or switch)");
	for (int k = CTL_STATUS; k <= CTL_SWITCH; k++) {
		if (strcmp(argv[optind], command_names[k]) == 0)
			o->cmd = (enum ctl_command)k;
	}
	if (o->cmd == CTL_NONE)
		return usage_error(cause, "unknown command '%s'",
		    argv[optind]);
	o->args = argv + optind + 1;
	o->nargs = argc - optind - 1;
	for (int i = 0; i < ngiven; i++) {
		if (!option_allowed(o->cmd, longopts[given[i]].val, o))
			return usage_error(cause, "--%s is not an option of "
			    "%s", longopts[given[i]].name,
			    ctl_command_name(o->cmd));
	}
	return check_operands(o, cause);
}

void
ctl_print_help(FILE *out, const char *prog)
{
	fprintf(out,
	    "Usage: %s [OPTION]... COMMAND [ARG]...\n"
	    "Look after a running diplom pipeline over its roles' HTTP "
	    "APIs.\n\n"
	    "Commands:\n"
	    "  status                  each role's health, the backend, the "
	    "backlog, counts\n"
	    "                          and rates, the result store's size\n"
	    "  show ID                 one message's state and result\n"
	    "  failed [--since=DURATION] [--limit=N]\n"
	    "                          failed messages, newest first\n"
	    "  replay ID... | --all-failed [--since=DURATION]\n"
	    "                          send failed messages through the "
	    "pipeline again\n"
	    "  drain                   stop accepting, wait until the "
	    "backlog is 0\n"
	    "  resume                  accept again after drain\n"
	    "  switch memory|nats      switch the packaged system's queue "
	    "backend\n"
	    "                          without losing a message\n\n"
	    "Options:\n"
	    "  --json                  print JSON for scripts\n"
	    "  --config=FILE           read settings from FILE instead of "
	    "%s\n"
	    "  --interval=DURATION     status: time between the samples of "
	    "the rates\n"
	    "                          (default 1s, 0: no rates)\n"
	    "  --since=DURATION        only messages that failed this "
	    "recently\n"
	    "  --limit=N               failed: at most N messages (default "
	    "100, at most 10000)\n"
	    "  --all-failed            replay: every failed message kept\n"
	    "  --timeout=DURATION      drain, switch: how long to wait for "
	    "the backlog\n"
	    "                          (default 120s)\n"
	    "  --systemctl=PROGRAM     switch: what stops and starts the "
	    "units (default\n"
	    "                          systemctl)\n"
	    "  --listen-address=ADDR   the gateway's address "
	    "[LISTEN_ADDRESS]\n"
	    "  --api-port=PORT         the gateway's port [API_PORT]\n"
	    "  --ingest-url=URL        where ingest is [INGEST_URL]\n"
	    "  --processor-url=URL[,URL]...\n"
	    "                          where the processors are "
	    "[PROCESSOR_URL]\n"
	    "  --queue-type=TYPE       the queue backend [QUEUE_TYPE]\n"
	    "  --nats-url=URL[,URL]... the NATS servers [NATS_URL]\n"
	    "  -h, --help              show this help and exit\n"
	    "  -V, --version           show the version and exit\n\n"
	    "Settings come from %s (or --config), then the\n"
	    "environment, then the options, as diplomd's: see diplomd(8).\n\n"
	    "Exit status: 0 when all is well, 1 when something reported is "
	    "unhealthy\nor failed, 2 on a usage error. See diplomctl(8).\n",
	    prog, CTL_DEFAULT_FILE, CTL_DEFAULT_FILE);
}

/* ctl/ctl.h - diplomctl's commands over the roles' HTTP APIs */
#ifndef DIPLOM_CTL_CTL_H
#define DIPLOM_CTL_CTL_H

#include <stdbool.h>

#include "config.h"
#include "ctl/args.h"
#include "ctl/defaults.h"

/* Exit statuses. */
#define CTL_OK		0
#define CTL_UNWELL	1	/* something reported is unhealthy or failed */
#define CTL_USAGE	2

/* A run of diplomctl: its options and the settings they lead to. */
struct ctl {
	const struct ctl_opts *o;
	struct config cfg;		/* file < environment < options */
	const char *file;		/* the default file's path */
	bool have_file;			/* it exists and was read */
	struct ctl_defaults defaults;	/* its assignments */
	char *gateway_url;
};

/*
 * Read the settings: the default file (o->config, else default_file when
 * it exists), the environment over it, o's settings over both. CTL_OK, or
 * CTL_USAGE with *cause (a bad value, a --config that cannot be read).
 */
int ctl_setup(struct ctl *c, const struct ctl_opts *o,
    const char *default_file, char **cause);
void ctl_teardown(struct ctl *c);

/* The gateway's URL for a listen address and port. */
char *ctl_gateway_url(const char *listen_address, int port);

/* The commands; each returns the exit status. */
int ctl_status(struct ctl *c);
int ctl_show(struct ctl *c);
int ctl_failed(struct ctl *c);
int ctl_replay(struct ctl *c);
int ctl_drain(struct ctl *c);
int ctl_resume(struct ctl *c);
int ctl_switch(struct ctl *c);

#endif

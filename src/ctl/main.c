/* ctl/main.c - diplomctl: look after a running diplom pipeline */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "ctl/args.h"
#include "ctl/ctl.h"

#define PROG "diplomctl"

int
main(int argc, char **argv)
{
	static int (*const run[])(struct ctl *) = {
		[CTL_STATUS] = ctl_status,
		[CTL_SHOW] = ctl_show,
		[CTL_FAILED] = ctl_failed,
		[CTL_REPLAY] = ctl_replay,
		[CTL_DRAIN] = ctl_drain,
		[CTL_RESUME] = ctl_resume,
		[CTL_SWITCH] = ctl_switch,
	};
	struct ctl_opts o;
	struct ctl c;
	char *cause = NULL;
	int rc;

	switch (ctl_opts_parse(&o, argc, argv, stdout, &cause)) {
	case CTL_EXIT_OK:
		return CTL_OK;
	case CTL_EXIT_USAGE:
		fprintf(stderr, "%s: %s\nTry '%s --help' for more "
		    "information.\n", PROG, cause != NULL ? cause :
		    "usage error", PROG);
		free(cause);
		return CTL_USAGE;
	case CTL_RUN:
		break;
	}
	if ((rc = ctl_setup(&c, &o, CTL_DEFAULT_FILE, &cause)) != CTL_OK) {
		fprintf(stderr, "%s: %s\n", PROG, cause != NULL ? cause :
		    "cannot read the settings");
		free(cause);
		ctl_teardown(&c);
		return rc;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
		ctl_teardown(&c);
		return CTL_UNWELL;
	}
	rc = run[o.cmd](&c);
	ctl_teardown(&c);
	curl_global_cleanup();
	return rc;
}

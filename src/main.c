/* main.c - options, role dispatch and signals */
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "log.h"
#include "role.h"

/* Every connection is a descriptor: take all the hard limit allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct config cfg;
	const struct role_ops *role;
	char *cause = NULL;
	void *state = NULL;
	sigset_t sigs;
	int sig, status, rc;

	switch (config_parse(&cfg, argc, argv, getenv, &cause)) {
	case CONFIG_RUN:
		break;
	case CONFIG_EXIT_OK:
		config_free(&cfg);
		return 0;
	default:
		fprintf(stderr, "diplomd: %s\n", cause != NULL ? cause :
		    "invalid arguments");
		fprintf(stderr, "Try 'diplomd --help' for more information.\n");
		free(cause);
		config_free(&cfg);
		return 2;
	}
	log_init(config_role_name(cfg.role), cfg.log_level);

	/* every thread inherits this mask; only sigwait below sees them */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	/*
	 * Request bodies of up to MAX_BODY_BYTES come and go: a fixed mmap
	 * threshold serves the large ones from mappings of their own, so
	 * their memory goes back to the system when they end instead of
	 * staying in a heap arena.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	role = role_ops_for(cfg.role);
	if ((rc = role->start(&cfg, &state, &cause)) != 0) {
		log_error("cannot start: %s", cause != NULL ? cause :
		    strerror(-rc));
		free(cause);
		config_free(&cfg);
		return 1;
	}
	log_info("diplomd %s started", PACKAGE_VERSION);
	sigwait(&sigs, &sig);
	log_info("%s received, stopping (drain timeout %jd ms)",
	    strsignal(sig), (intmax_t)cfg.drain_timeout_ms);
	status = role->stop(state, cfg.drain_timeout_ms);
	if (status == 0)
		log_info("stopped");
	curl_global_cleanup();
	config_free(&cfg);
	return status;
}

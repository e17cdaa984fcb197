/* main.c - options, role dispatch, signals and the service manager */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "notify.h"
#include "role.h"

/* How often the status line is refreshed when no watchdog asks for more. */
#define STATUS_EVERY_MS 10000

/* The running role, as the service manager sees it. */
struct supervision {
	const struct role_ops *role;
	void *state;
	int64_t every_ms;		/* between two looks */
	bool watchdog;
	bool silent;			/* the last ping went unanswered */
	uint64_t last_done;
	int64_t last_ms;
};

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

/* Tell the service manager what the role does: backlog and rate. */
static void
sv_status(struct supervision *sv)
{
	struct role_vitals v;
	int64_t now = clock_now_ms();
	double rate = 0;
	char line[160];

	role_vitals(sv->role, sv->state, &v);
	if (sv->last_ms > 0 && now > sv->last_ms && v.done >= sv->last_done)
		rate = (double)(v.done - sv->last_done) * 1000 /
		    (double)(now - sv->last_ms);
	if (v.backlog >= 0)
		snprintf(line, sizeof(line), "backlog %jd, %.0f %s/s, %ju in "
		    "all", (intmax_t)v.backlog, rate, v.unit,
		    (uintmax_t)v.done);
	else
		snprintf(line, sizeof(line), "%.0f %s/s, %ju in all", rate,
		    v.unit, (uintmax_t)v.done);
	notify_status(line);
	sv->last_done = v.done;
	sv->last_ms = now;
}

/*
 * Feed the watchdog only when every event loop and worker answered the
 * last ping: a role whose threads hang is restarted, not kept alive by a
 * main thread that merely waits for signals.
 */
static void
sv_watchdog(struct supervision *sv)
{
	bool ok = role_answered(sv->role, sv->state);

	if (ok)
		notify_watchdog();
	else if (!sv->silent)
		log_error("watchdog: a thread did not answer within %jd ms; "
		    "systemd will restart this role if it stays so",
		    (intmax_t)sv->every_ms);
	sv->silent = !ok;
	role_ping(sv->role, sv->state);
}

/* SIGHUP: the role reads its keys and certificates again. */
static void
sv_reload(struct supervision *sv)
{
	char *cause = NULL;

	if (sv->role->reload == NULL) {
		log_info("SIGHUP: nothing to reload");
		return;
	}
	notify_reloading();
	if (sv->role->reload(sv->state, &cause) == 0)
		log_info("SIGHUP: reloaded");
	else
		log_error("SIGHUP: reload failed, still using what was loaded "
		    "before: %s", cause != NULL ? cause : "unknown error");
	free(cause);
	notify_ready("reloaded");
}

/*
 * Wait for SIGTERM or SIGINT, keeping the service manager informed and
 * reloading on SIGHUP.
 */
static int
wait_for_signal(const sigset_t *sigs, struct supervision *sv)
{
	struct timespec ts;
	int sig;

	if (sv->every_ms > 0)
		role_ping(sv->role, sv->state);
	for (;;) {
		if (sv->every_ms <= 0) {
			sig = 0;
			sigwait(sigs, &sig);
		} else {
			ts.tv_sec = sv->every_ms / 1000;
			ts.tv_nsec = (sv->every_ms % 1000) * 1000000;
			sig = sigtimedwait(sigs, NULL, &ts);
		}
		if (sig == SIGHUP) {
			sv_reload(sv);
		} else if (sig > 0) {
			return sig;
		} else if (errno == EAGAIN) {
			if (sv->watchdog)
				sv_watchdog(sv);
			sv_status(sv);
		}
	}
}

int
main(int argc, char **argv)
{
	struct config cfg;
	const struct role_ops *role;
	struct supervision sv = { 0 };
	int64_t watchdog_ms;
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
	log_set_format(cfg.log_format);

	/* every thread inherits this mask; only sigwait below sees them */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
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
	watchdog_ms = notify_watchdog_ms();
	sv.role = role;
	sv.state = state;
	sv.watchdog = watchdog_ms > 0;
	if (notify_wanted())
		sv.every_ms = sv.watchdog && watchdog_ms / 2 < STATUS_EVERY_MS ?
		    watchdog_ms / 2 : STATUS_EVERY_MS;
	notify_ready("started");
	sig = wait_for_signal(&sigs, &sv);
	notify_stopping();
	log_info("%s received, stopping (drain timeout %jd ms)",
	    strsignal(sig), (intmax_t)cfg.drain_timeout_ms);
	status = role->stop(state, cfg.drain_timeout_ms);
	if (status == 0)
		log_info("stopped");
	curl_global_cleanup();
	config_free(&cfg);
	return status;
}

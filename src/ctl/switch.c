/* ctl/switch.c - diplomctl switch: the packaged system to another backend */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "clock.h"
#include "ctl/client.h"
#include "ctl/ctl.h"
#include "ctl/status.h"
#include "xmalloc.h"

/* How long a restarted role may take to answer /health with 200. */
#define HEALTHY_WITHIN_MS	15000
/* How long the broker may take to greet us. */
#define NATS_CHECK_MS		3000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress, on stderr: stdout is for the report. */
static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("switch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Run "<systemctl> verb unit"; 0 when it exits 0. */
static int
systemctl(struct ctl *c, const char *verb, const char *unit)
{
	const char *prog = c->o->systemctl;
	int status;
	pid_t pid;

	say("%s %s %s", prog, verb, unit);
	fflush(stdout);
	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0) {
		execlp(prog, prog, verb, unit, (char *)NULL);
		fprintf(stderr, "diplomctl: %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		say("%s %s %s failed (status %d)", prog, verb, unit,
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -EIO;
	}
	return 0;
}

/* Wait until base/health answers 200, up to HEALTHY_WITHIN_MS. */
static bool
healthy_soon(const char *base)
{
	int64_t deadline = clock_now_ms() + HEALTHY_WITHIN_MS;
	struct ctl_reply r;
	long status;

	do {
		ctl_http("GET", base, "/health", &r);
		status = r.status;
		ctl_reply_free(&r);
		if (status == 200)
			return true;
		clock_sleep_ms(200);
	} while (clock_now_ms() < deadline);
	return false;
}

/* Whether every processor says it runs on backend. */
static bool
processors_on(struct ctl *c, const char *backend)
{
	const struct config_url_list *procs = &c->cfg.processor_url;
	struct ctl_reply r;
	bool on = true;

	for (size_t i = 0; i < procs->n && on; i++) {
		const char *b;

		on = ctl_http("GET", procs->urls[i], "/admin", &r) == 0 &&
		    r.status == 200 && (b = ctl_json_str(r.json,
		    "backend")) != NULL && strcmp(b, backend) == 0;
		ctl_reply_free(&r);
	}
	return on;
}

/* The target is reachable: nats needs a broker with JetStream. */
static int
target_reachable(struct ctl *c, const char *target)
{
	const char *urls = NULL;
	char *cause = NULL;

	if (strcmp(target, "nats") != 0)
		return 0;
	if (config_get_string(&c->cfg, "nats-url", &urls) != 0 ||
	    urls == NULL)
		return -EINVAL;
	if (ctl_nats_jetstream(urls, NATS_CHECK_MS, &cause) == 0)
		return 0;
	say("no NATS server with JetStream at %s (%s); start one (the "
	    "package's diplom-nats.service: apt-get install nats-server, "
	    "systemctl start diplom-nats.service); nothing changed", urls,
	    cause != NULL ? cause : "?");
	free(cause);
	return -EHOSTUNREACH;
}

/* The report at the end: the status, without rates. */
static int
report(struct ctl *c)
{
	struct ctl_status st;
	int rc;

	ctl_status_gather(c, 0, &st);
	rc = st.healthy ? CTL_OK : CTL_UNWELL;
	if (c->o->json) {
		struct json_object *o = ctl_status_json(&st);

		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		ctl_status_print(stdout, &st);
	}
	ctl_status_free(&st);
	return rc;
}

/*
 * Stop ingest, wait for the processors' backlog to reach 0, set
 * QUEUE_TYPE in the default file, restart the processor and start ingest:
 * what scripts/switch-queue.sh does for a local stack, through systemd.
 */
int
ctl_switch(struct ctl *c)
{
	const char *target = c->o->args[0], *now;
	int64_t deadline, backlog = -1;
	char *cause = NULL;

	if (!c->have_file) {
		say("no %s: switch sets QUEUE_TYPE there for the packaged "
		    "units (or name the file with --config); nothing changed",
		    c->file);
		return CTL_UNWELL;
	}
	now = ctl_defaults_get(&c->defaults, "QUEUE_TYPE");
	if (now == NULL || *now == '\0')
		now = "memory";
	/* the units run what the file says, whatever this environment says */
	free(c->cfg.queue_type);
	c->cfg.queue_type = xstrdup(now);
	if (target_reachable(c, target) != 0)
		return CTL_UNWELL;
	if (access(c->file, W_OK) != 0) {
		say("cannot write %s: %s; nothing changed", c->file,
		    strerror(errno));
		return CTL_UNWELL;
	}
	if (strcmp(now, target) == 0 && processors_on(c, target)) {
		say("already on %s", target);
		return report(c);
	}
	say("%s -> %s", now, target);
	if (systemctl(c, "stop", "diplomd@ingest.service") != 0) {
		systemctl(c, "start", "diplomd@ingest.service");
		say("ingest did not stop; nothing changed");
		return CTL_UNWELL;
	}
	say("waiting for the processor's backlog to reach 0");
	deadline = clock_now_ms() + c->o->timeout_ms;
	if (ctl_wait_drained(c, deadline, &backlog) != 0) {
		say("backlog still %jd (-1: unknown) after %.1f s; starting "
		    "ingest on %s, nothing switched", (intmax_t)backlog,
		    (double)c->o->timeout_ms / 1000, now);
		systemctl(c, "start", "diplomd@ingest.service");
		return CTL_UNWELL;
	}
	if (ctl_defaults_write(c->file, "QUEUE_TYPE", target, &cause) != 0) {
		say("%s; starting ingest on %s, nothing switched",
		    cause != NULL ? cause : "cannot write the file", now);
		free(cause);
		systemctl(c, "start", "diplomd@ingest.service");
		return CTL_UNWELL;
	}
	say("QUEUE_TYPE=%s in %s", target, c->file);
	/* the roles run the target from now on */
	free(c->cfg.queue_type);
	c->cfg.queue_type = xstrdup(target);
	if (systemctl(c, "restart", "diplomd@processor.service") != 0 ||
	    systemctl(c, "start", "diplomd@ingest.service") != 0) {
		say("the units did not start on %s", target);
		report(c);
		return CTL_UNWELL;
	}
	for (size_t i = 0; i < c->cfg.processor_url.n; i++) {
		if (!healthy_soon(c->cfg.processor_url.urls[i]))
			say("processor %s is not healthy on %s",
			    c->cfg.processor_url.urls[i], target);
	}
	if (!healthy_soon(c->cfg.ingest_url))
		say("ingest is not healthy on %s", target);
	if (report(c) != CTL_OK) {
		say("switched to %s, but not everything is healthy", target);
		return CTL_UNWELL;
	}
	say("now on %s", target);
	return CTL_OK;
}

/* ctl/status.h - how the pipeline stands: each role, the totals */
#ifndef DIPLOM_CTL_STATUS_H
#define DIPLOM_CTL_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "ctl/ctl.h"

/* A figure and its rate per second (rate < 0: unknown). */
struct ctl_count {
	int64_t n;		/* -1: unknown */
	double rate;
};

struct ctl_role {
	const char *role;	/* gateway, ingest, processor */
	const char *url;
	bool healthy;
	char reason[256];
	char backend[16];	/* "" when it did not say */
	int64_t backlog;	/* processor, -1: unknown */
	bool accepting;		/* ingest */
	/* ingest: accepted, refused; processor: processed, failed */
	struct ctl_count done, failed;
	int64_t rows, failed_rows, bytes;	/* processor's store, -1 */
};

struct ctl_status {
	struct ctl_role *roles;	/* gateway, ingest, each processor */
	size_t n;
	bool healthy;		/* every role */
	char backend[64];	/* what the roles say, "" when none did */
	int64_t backlog;	/* -1: unknown */
	bool rates;		/* the counts have rates */
};

/*
 * Ask every role; with interval_ms > 0 the counters twice, that far
 * apart, for their rates.
 */
void ctl_status_gather(struct ctl *c, int64_t interval_ms,
    struct ctl_status *st);
void ctl_status_print(FILE *out, const struct ctl_status *st);
struct json_object *ctl_status_json(const struct ctl_status *st);
void ctl_status_free(struct ctl_status *st);

/*
 * The processors' backlog: summed for a backend inside the processor,
 * the largest for a shared one; -1 when a processor does not answer.
 * done: what they processed and failed so far.
 */
int64_t ctl_backlog(struct ctl *c, int64_t *done);
/*
 * Wait until the backlog is 0 and nothing more is done for a second (a
 * broker's figure is a cache some hundred ms old: one 0 is not enough),
 * up to deadline_ms: 0 or -ETIMEDOUT, the last backlog seen in *backlog.
 */
int ctl_wait_drained(struct ctl *c, int64_t deadline_ms, int64_t *backlog);

#endif

/* role.h - the three roles of diplomd */
#ifndef DIPLOM_ROLE_H
#define DIPLOM_ROLE_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "http_client.h"
#include "http_server.h"
#include "queue.h"

/*
 * The header in which the gateway tells ingest and the processor which
 * client (API key's name) a request is for; the gateway never passes on a
 * client's own. Absent: no client, as without API_KEYS_FILE.
 */
#define CLIENT_HEADER "Diplom-Client"

/* What a role has done, for the service manager's status line. */
struct role_vitals {
	uint64_t done;			/* requests, or messages processed */
	const char *unit;		/* "requests", "messages" */
	int64_t backlog;		/* -1: the role has none */
};

struct role_ops {
	const char *name;
	/* Set up and start serving; state for stop. */
	int (*start)(const struct config *cfg, void **state, char **cause);
	/* Graceful stop within timeout_ms; returns the exit status. */
	int (*stop)(void *state, int64_t timeout_ms);
	/*
	 * Optional, for the watchdog and the status line: ping the role's
	 * own threads, whether they answered, and what it has done so far
	 * (else the server's requests count).
	 */
	void (*ping)(void *state);
	bool (*answered)(void *state);
	void (*vitals)(void *state, struct role_vitals *v);
	/*
	 * Optional, on SIGHUP: read again what may change while the role
	 * runs (keys, certificates). A failure keeps what was in use, and
	 * says why in *cause.
	 */
	int (*reload)(void *state, char **cause);
};

/*
 * Liveness of the running role, for the watchdog: ping its event loops
 * and threads; answered says whether all went round since the last ping.
 */
void role_ping(const struct role_ops *ops, void *state);
bool role_answered(const struct role_ops *ops, void *state);
void role_vitals(const struct role_ops *ops, void *state,
    struct role_vitals *v);

extern const struct role_ops role_gateway_ops;
extern const struct role_ops role_ingest_ops;
extern const struct role_ops role_processor_ops;

const struct role_ops *role_ops_for(enum role role);

/* Shared by the roles: answer {"healthy": true} or 503 with a reason. */
void role_respond_health(struct http_request *req, bool healthy,
    const char *reason);
/*
 * Answer GET /metrics: the build and the process start time of the role
 * cfg configures, what more() writes, then the server's request counts and
 * latencies, as Prometheus text format 0.0.4.
 */
void role_respond_metrics(struct http_request *req, const struct config *cfg,
    void (*more)(FILE *out, void *ctx), void *ctx);
/* One metric with its HELP and TYPE lines. */
void role_metric(FILE *out, const char *name, const char *type,
    const char *help, double value);
/* Build "base" + "path" with one '/' between them. */
char *role_join_url(const char *base, const char *path);
/*
 * Serve routes on the role's address and port from cfg, with ctx for the
 * handlers and bodies of up to max_body bytes; logs "<role> listening on
 * ADDR:PORT, <what>".
 */
int role_serve(const struct config *cfg, const struct http_route *routes,
    size_t n_routes, void *ctx, size_t max_body, const char *what,
    struct http_server **srv, char **cause);
/*
 * The same with admit run on each request's head (see http_admit_fn), and
 * each client's uploads held to BODY_MEMORY_SHARE of BODY_MEMORY.
 */
int role_serve_admit(const struct config *cfg,
    const struct http_route *routes, size_t n_routes, void *ctx,
    http_admit_fn admit, size_t max_body, const char *what,
    struct http_server **srv, char **cause);
/*
 * The client a role reaches the next hop with: https peers verified
 * against TLS_CA_FILE (else the system's CAs), the internal token sent
 * with every request when INTERNAL_TOKEN is set.
 */
int role_client_start(const struct config *cfg, long timeout_ms,
    struct http_client **hc, char **cause);
/*
 * Stop taking requests (503) and wait up to timeout_ms for those in
 * progress. Returns 0, or -ETIMEDOUT after logging how it stands.
 */
int role_drain(struct http_server *srv, int64_t timeout_ms);

/*
 * Whether to give d up rather than process it: it was delivered more than
 * max_deliveries times (0: no limit) and never got a result. If so, res
 * is its failed result.
 */
bool processor_give_up(const struct delivery *d, uint64_t max_deliveries,
    struct processing_result *res);
/* The processor's work on one delivery; delay_ms simulates more. */
void processor_process(const struct delivery *d,
    struct processing_result *res, int64_t delay_ms);

/*
 * Serve routes on a second address, addr_port ("ADDR:PORT" with a numeric
 * IPv4 address, or "[IPv6]:PORT"), with cfg's limits; option names the
 * setting in a cause. Logs "<role> <name> listening on ADDR:PORT". The
 * server is the caller's to drain and stop; the watchdog does not ping it.
 * admit as for role_serve_admit (NULL: none).
 */
int role_serve_extra(const struct config *cfg, const char *option,
    const char *addr_port, const char *name,
    const struct http_route *routes, size_t n_routes, void *ctx,
    http_admit_fn admit, size_t max_body, struct http_server **srv,
    char **cause);

#endif

/* role.c - what the roles share */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http_client.h"
#include "log.h"
#include "role.h"
#include "xmalloc.h"

/* The server role_serve started: one role, one server, in a process. */
static struct http_server *role_server;

const struct role_ops *
role_ops_for(enum role role)
{
	switch (role) {
	case ROLE_GATEWAY:
		return &role_gateway_ops;
	case ROLE_INGEST:
		return &role_ingest_ops;
	case ROLE_PROCESSOR:
		return &role_processor_ops;
	default:
		return NULL;
	}
}

void
role_respond_health(struct http_request *req, bool healthy,
    const char *reason)
{
	struct json_object *o = json_object_new_object();
	const char *s;
	size_t len;

	json_object_object_add(o, "healthy", json_object_new_boolean(healthy));
	if (!healthy)
		json_object_object_add(o, "reason",
		    json_object_new_string(reason));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	http_respond(req, healthy ? HTTP_OK : HTTP_UNAVAILABLE,
	    xstrndup(s, len), len);
	json_object_put(o);
}

/*
 * When this process started, in seconds since the epoch, from the kernel's
 * figures (as Prometheus' own clients take it); -1 when they cannot be read.
 */
static double
process_start_time(void)
{
	char buf[1024], *p;
	unsigned long long start = 0, btime = 0;
	long ticks = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;
	int field;

	if ((f = fopen("/proc/self/stat", "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces: fields count from its ')' */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
		return -1;
	if ((f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL &&
	    sscanf(buf, "btime %llu", &btime) != 1)
		;
	fclose(f);
	if (btime == 0 || ticks <= 0)
		return -1;
	return (double)btime + (double)start / (double)ticks;
}

/* What every role's /metrics starts with: which build, since when. */
static void
write_identity(FILE *out, const struct config *cfg)
{
	double started = process_start_time();

	fprintf(out, "# HELP diplom_build_info The running diplomd: version, "
	    "queue backend and role.\n# TYPE diplom_build_info gauge\n"
	    "diplom_build_info{version=\"%s\",backend=\"%s\",role=\"%s\"} 1\n",
	    PACKAGE_VERSION, cfg->role == ROLE_GATEWAY ? "none" :
	    cfg->queue_type, config_role_name(cfg->role));
	if (started >= 0)
		role_metric(out, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.",
		    started);
}

void
role_respond_metrics(struct http_request *req, const struct config *cfg,
    void (*more)(FILE *out, void *ctx), void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (out == NULL)
		xalloc_failed();
	write_identity(out, cfg);
	if (more != NULL)
		more(out, ctx);
	http_write_metrics(req, out);
	if (fclose(out) != 0)
		xalloc_failed();
	http_respond_typed(req, HTTP_OK, buf, len,
	    "text/plain; version=0.0.4; charset=utf-8");
}

void
role_metric(FILE *out, const char *name, const char *type, const char *help,
    double value)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help,
	    name, type, name, value);
}

char *
role_join_url(const char *base, const char *path)
{
	size_t n = strlen(base);
	char *s;

	while (n > 0 && base[n - 1] == '/')
		n--;
	xasprintf(&s, "%.*s%s", (int)n, base, path);
	return s;
}

/* What every server of a role shares: limits, TLS, routes; no address. */
static struct http_server_opts
server_opts(const struct config *cfg, const struct http_route *routes,
    size_t n_routes, void *ctx, size_t max_body)
{
	return (struct http_server_opts){
		.max_body = max_body,
		.max_client_conns = (int)cfg->max_client_conns,
		.max_prefix_conns = (int)cfg->max_prefix_conns,
		.prefix_v4 = (int)cfg->client_prefix_v4,
		.prefix_v6 = (int)cfg->client_prefix_v6,
		.request_timeout_ms = cfg->request_timeout_ms,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.body_memory = (size_t)cfg->body_memory,
		.tls_cert_file = cfg->tls_cert_file,
		.tls_key_file = cfg->tls_key_file,
		.tls_priorities = cfg->tls_priorities,
		.routes = routes,
		.n_routes = n_routes,
		.ctx = ctx,
	};
}

int
role_serve(const struct config *cfg, const struct http_route *routes,
    size_t n_routes, void *ctx, size_t max_body, const char *what,
    struct http_server **srv, char **cause)
{
	return role_serve_admit(cfg, routes, n_routes, ctx, NULL, max_body,
	    what, srv, cause);
}

int
role_serve_admit(const struct config *cfg, const struct http_route *routes,
    size_t n_routes, void *ctx, http_admit_fn admit, size_t max_body,
    const char *what, struct http_server **srv, char **cause)
{
	struct http_server_opts o = server_opts(cfg, routes, n_routes, ctx,
	    max_body);
	int rc;

	/*
	 * Only a server that knows its clients shares the body memory out:
	 * ingest's one client is the gateway.
	 */
	if (admit != NULL) {
		o.admit = admit;
		o.body_share = (int)cfg->body_memory_share;
	}
	o.address = cfg->listen_address;
	o.port = config_role_port(cfg);
	/* the gateway is the public face: it has keys of its own */
	o.bearer_token = cfg->role != ROLE_GATEWAY ? cfg->internal_token :
	    NULL;

	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL)) {
		xasprintf(cause, "TLS_CERT_FILE and TLS_KEY_FILE go together: "
		    "%s is set, %s is not", cfg->tls_cert_file != NULL ?
		    "TLS_CERT_FILE" : "TLS_KEY_FILE", cfg->tls_cert_file !=
		    NULL ? "TLS_KEY_FILE" : "TLS_CERT_FILE");
		return -EINVAL;
	}
	if ((rc = http_server_start(srv, &o, cause)) != 0)
		return rc;
	role_server = *srv;
	log_info("%s listening on %s:%d (%s%s), %s",
	    config_role_name(cfg->role), cfg->listen_address, o.port,
	    o.tls_cert_file != NULL ? "HTTPS" : "HTTP",
	    o.bearer_token != NULL ? ", internal token required" : "", what);
	return 0;
}

int
role_client_start(const struct config *cfg, long timeout_ms,
    struct http_client **hc, char **cause)
{
	int rc;

	if ((rc = http_client_start(hc, timeout_ms, cause)) != 0)
		return rc;
	if ((rc = http_client_secure(*hc, cfg->tls_ca_file,
	    cfg->internal_token, cause)) != 0) {
		http_client_stop(*hc);
		*hc = NULL;
	}
	return rc;
}

int
role_drain(struct http_server *srv, int64_t timeout_ms)
{
	http_server_drain(srv);
	if (http_server_wait_idle(srv, timeout_ms) != 0) {
		log_error("requests still in progress after the drain "
		    "timeout");
		return -ETIMEDOUT;
	}
	return 0;
}

void
role_ping(const struct role_ops *ops, void *state)
{
	if (role_server != NULL)
		http_server_ping(role_server);
	if (ops->ping != NULL)
		ops->ping(state);
}

bool
role_answered(const struct role_ops *ops, void *state)
{
	if (role_server != NULL && !http_server_answered(role_server))
		return false;
	return ops->answered == NULL || ops->answered(state);
}

void
role_vitals(const struct role_ops *ops, void *state, struct role_vitals *v)
{
	v->done = role_server != NULL ? http_server_requests(role_server) : 0;
	v->unit = "requests";
	v->backlog = -1;
	if (ops->vitals != NULL)
		ops->vitals(state, v);
}

/*
 * Split "ADDR:PORT" or "[IPv6]:PORT" into host (malloc'd) and port; the
 * address itself is checked when the server listens on it.
 */
static int
split_addr_port(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':'), *h = s, *hend;
	char *end;
	long p;

	if (colon == NULL)
		return -EINVAL;
	hend = colon;
	if (*s == '[') {
		h = s + 1;
		if (colon == s || colon[-1] != ']')
			return -EINVAL;
		hend = colon - 1;
	} else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
		/* IPv6 without brackets: where would its port start? */
		return -EINVAL;
	}
	if (h >= hend)
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 1 ||
	    p > 65535)
		return -EINVAL;
	*host = xstrndup(h, (size_t)(hend - h));
	*port = (int)p;
	return 0;
}

int
role_serve_extra(const struct config *cfg, const char *option,
    const char *addr_port, const char *name,
    const struct http_route *routes, size_t n_routes, void *ctx,
    http_admit_fn admit, size_t max_body, struct http_server **srv,
    char **cause)
{
	struct http_server_opts o = server_opts(cfg, routes, n_routes, ctx,
	    max_body);
	char *host = NULL, *why = NULL;
	int rc;

	*srv = NULL;
	if ((rc = split_addr_port(addr_port, &host, &o.port)) != 0) {
		xasprintf(cause, "%s: '%s' is not ADDR:PORT or [IPv6]:PORT "
		    "with a port from 1 to 65535", option, addr_port);
		return rc;
	}
	o.address = host;
	if (admit != NULL) {
		o.admit = admit;
		o.body_share = (int)cfg->body_memory_share;
	}
	if ((rc = http_server_start(srv, &o, &why)) != 0) {
		xasprintf(cause, "%s: %s", option, why != NULL ? why :
		    "cannot start the server");
		goto out;
	}
	log_info("%s %s listening on %s (%s)", config_role_name(cfg->role),
	    name, addr_port, o.tls_cert_file != NULL ? "HTTPS" : "HTTP");
out:
	free(why);
	free(host);
	return rc;
}

/* role.c - what the roles share */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

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

void
role_respond_metrics(struct http_request *req,
    void (*more)(FILE *out, void *ctx), void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (out == NULL)
		xalloc_failed();
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

int
role_serve(const struct config *cfg, const struct http_route *routes,
    size_t n_routes, void *ctx, size_t max_body, const char *what,
    struct http_server **srv, char **cause)
{
	struct http_server_opts o = {
		.address = cfg->listen_address,
		.port = config_role_port(cfg),
		.max_body = max_body,
		.max_client_conns = (int)cfg->max_client_conns,
		.request_timeout_ms = cfg->request_timeout_ms,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.body_memory = (size_t)cfg->body_memory,
		.routes = routes,
		.n_routes = n_routes,
		.ctx = ctx,
	};
	int rc;

	if ((rc = http_server_start(srv, &o, cause)) != 0)
		return rc;
	role_server = *srv;
	log_info("%s listening on %s:%d, %s", config_role_name(cfg->role),
	    cfg->listen_address, o.port, what);
	return 0;
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

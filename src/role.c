/* role.c - what the roles share */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "role.h"

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
	http_respond(req, healthy ? 200 : 503, strndup(s, len), len);
	json_object_put(o);
}

void
role_respond_metrics(struct http_request *req,
    void (*more)(FILE *out, void *ctx), void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (out == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	if (more != NULL)
		more(out, ctx);
	http_write_metrics(req, out);
	if (fclose(out) != 0) {
		free(buf);
		http_respond_error(req, 500, "out of memory");
		return;
	}
	http_respond_typed(req, 200, buf, len,
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
	if (asprintf(&s, "%.*s%s", (int)n, base, path) < 0)
		abort();
	return s;
}

/* ctl/client.h - what diplomctl asks the roles and the broker */
#ifndef DIPLOM_CTL_CLIENT_H
#define DIPLOM_CTL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* How long one request to a role may take. */
#define CTL_HTTP_TIMEOUT_MS	5000

/* A role's answer. */
struct ctl_reply {
	long status;			/* 0: no answer, see error */
	struct json_object *json;	/* the body, NULL when not JSON */
	char error[256];		/* why there was no answer */
};

/*
 * Before the first request, from the settings: https roles verified
 * against ca_file (NULL: the system's CAs); token (NULL: none) sent as a
 * bearer token to every role but the one at except_base, the gateway,
 * which has keys of its own. Strings copied; ctl_http_cleanup frees them.
 */
void ctl_http_setup(const char *token, const char *ca_file,
    const char *except_base);
void ctl_http_cleanup(void);

/*
 * method base+path (body: none); 0 when the role answered, whatever the
 * status, -EIO when it did not (r->error says why). ctl_reply_free after.
 */
int ctl_http(const char *method, const char *base, const char *path,
    struct ctl_reply *r);
void ctl_reply_free(struct ctl_reply *r);
/* The reply's "error" (or "reason"), else its status, or why none came. */
const char *ctl_reply_reason(const struct ctl_reply *r, char *buf,
    size_t len);

/* A member of a JSON object: an integer (def when absent), a string. */
int64_t ctl_json_int(struct json_object *o, const char *key, int64_t def);
const char *ctl_json_str(struct json_object *o, const char *key);

/*
 * Whether a NATS server's greeting, "INFO {...}", says it runs JetStream.
 */
bool ctl_nats_info_has_jetstream(const char *line);
/*
 * Whether a server of the comma-separated NATS urls (nats://host:port,
 * the port 4222 when absent) answers with JetStream within timeout_ms:
 * 0, or -EHOSTUNREACH with *cause saying what each answered.
 */
int ctl_nats_jetstream(const char *urls, int timeout_ms, char **cause);

#endif

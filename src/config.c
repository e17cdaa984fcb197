/* config.c - settings table, environment and GNU long options */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"
#include "queue.h"
#include "xmalloc.h"

#define F(field) offsetof(struct config, field)

static const struct config_option general_options[] = {
	{ "role", NULL, CONFIG_ROLE, NULL, 0, 0, F(role), "ROLE",
	  "gateway, ingest or processor (required)" },
	{ "listen-address", "LISTEN_ADDRESS", CONFIG_STRING, "127.0.0.1", 0, 0,
	  F(listen_address), "ADDR", "address every role binds" },
	{ "port", NULL, CONFIG_PORT, NULL, 0, 0, F(port), "PORT",
	  "port of this role (overrides the role's own variable)" },
	{ "api-port", "API_PORT", CONFIG_PORT, "8080", 0, 0, F(api_port), "PORT",
	  "gateway port" },
	{ "ingest-port", "INGEST_PORT", CONFIG_PORT, "8081", 0, 0,
	  F(ingest_port), "PORT", "ingest port" },
	{ "processor-port", "PROCESSOR_PORT", CONFIG_PORT, "8082", 0, 0,
	  F(processor_port), "PORT", "processor port" },
	{ "ingest-url", "INGEST_URL", CONFIG_URL, "http://localhost:8081", 0, 0,
	  F(ingest_url), "URL", "where the gateway finds ingest" },
	{ "processor-url", "PROCESSOR_URL", CONFIG_URL_LIST,
	  "http://localhost:8082", 0, 0, F(processor_url), "URL[,URL]...",
	  "where ingest and gateway find the processors" },
	{ "queue-type", "QUEUE_TYPE", CONFIG_QUEUE_TYPE, "memory", 0, 0,
	  F(queue_type), "TYPE", "queue backend:" },
	{ "workers", "PROCESSOR_WORKERS", CONFIG_INT, "4", 1, 1024, F(workers),
	  "N", "processor worker threads" },
	{ "processing-delay-ms", "PROCESSING_DELAY_MS", CONFIG_INT, "0", 0,
	  3600000, F(processing_delay_ms), "MS", "simulated work per message" },
	{ "results-db", "RESULTS_DB", CONFIG_STRING, "diplom-results.db", 0, 0,
	  F(results_db), "PATH", "processor's SQLite result store" },
	{ "results-retention", "RESULTS_RETENTION", CONFIG_DURATION, "0", 0, 0,
	  F(results_retention_ms), "DURATION",
	  "delete results processed longer ago (0: keep them)" },
	{ "results-max-bytes", "RESULTS_MAX_BYTES", CONFIG_INT, "0", 0,
	  INT64_MAX, F(results_max_bytes), "N",
	  "delete the oldest results past this size (0: no limit)" },
	{ "max-body-bytes", "MAX_BODY_BYTES", CONFIG_INT, "1048576", 1,
	  INT32_MAX, F(max_body_bytes), "N", "larger request bodies get 413" },
	{ "max-batch", "MAX_BATCH", CONFIG_INT, "1000", 1, 1000000,
	  F(max_batch), "N", "messages one batch ingest may hold; more get 413" },
	{ "forward-batch", "FORWARD_BATCH", CONFIG_INT, "100", 1, 1000000,
	  F(forward_batch), "N",
	  "gateway: single requests carried to ingest in one (1: each alone)" },
	{ "max-client-connections", "MAX_CLIENT_CONNECTIONS", CONFIG_INT,
	  "1024", 0, 1000000, F(max_client_conns), "N",
	  "connections one client address may hold (0: no limit)" },
	{ "max-prefix-connections", "MAX_PREFIX_CONNECTIONS", CONFIG_INT,
	  "2048", 0, 1000000, F(max_prefix_conns), "N",
	  "connections the addresses of one prefix may hold together "
	  "(0: no limit)" },
	{ "client-prefix-v4", "CLIENT_PREFIX_V4", CONFIG_INT, "24", 0, 32,
	  F(client_prefix_v4), "BITS",
	  "IPv4 prefix length of MAX_PREFIX_CONNECTIONS' groups" },
	{ "client-prefix-v6", "CLIENT_PREFIX_V6", CONFIG_INT, "64", 0, 64,
	  F(client_prefix_v6), "BITS",
	  "IPv6 prefix length of MAX_PREFIX_CONNECTIONS' groups" },
	{ "request-timeout", "REQUEST_TIMEOUT", CONFIG_DURATION, "30s", 0, 0,
	  F(request_timeout_ms), "DURATION",
	  "time to send a whole request (0: none)" },
	{ "idle-timeout", "IDLE_TIMEOUT", CONFIG_DURATION, "120s", 1, 0,
	  F(idle_timeout_ms), "DURATION",
	  "how long a kept-alive connection may sit idle" },
	{ "body-memory", "BODY_MEMORY", CONFIG_INT, "67108864", 0,
	  INT64_MAX, F(body_memory), "N",
	  "bytes all request bodies being received may take (0: no limit)" },
	{ "body-memory-share", "BODY_MEMORY_SHARE", CONFIG_INT, "25", 1, 100,
	  F(body_memory_share), "PERCENT",
	  "gateway: of BODY_MEMORY, what one client's uploads may take" },
	{ "max-metadata-keys", "MAX_METADATA_KEYS", CONFIG_INT, "64", 0,
	  INT32_MAX, F(max_metadata_keys), "N",
	  "metadata keys one message may have (0: no limit)" },
	{ "max-metadata-key-bytes", "MAX_METADATA_KEY_BYTES", CONFIG_INT,
	  "256", 0, INT32_MAX, F(max_metadata_key_bytes), "N",
	  "bytes of one metadata key (0: no limit)" },
	{ "max-metadata-value-bytes", "MAX_METADATA_VALUE_BYTES", CONFIG_INT,
	  "4096", 0, INT32_MAX, F(max_metadata_value_bytes), "N",
	  "bytes of one metadata value (0: no limit)" },
	{ "drain-timeout", "DRAIN_TIMEOUT", CONFIG_DURATION, "30s", 0, 0,
	  F(drain_timeout_ms), "DURATION", "bound on a graceful stop" },
	{ "api-keys-file", "API_KEYS_FILE", CONFIG_PATH, NULL, 0, 0,
	  F(api_keys_file), "PATH",
	  "gateway: keys that may use the API, one a line" },
	{ "admin-keys-file", "ADMIN_KEYS_FILE", CONFIG_PATH, NULL, 0, 0,
	  F(admin_keys_file), "PATH",
	  "gateway: keys that may read /metrics and /api/v1/status" },
	{ "admin-listen-address", "ADMIN_LISTEN_ADDRESS", CONFIG_STRING, NULL,
	  0, 0, F(admin_listen_address), "ADDR:PORT",
	  "gateway: serve /metrics and /api/v1/status there only" },
	{ "rate-limit", "RATE_LIMIT", CONFIG_INT, "0", 0, 10000000,
	  F(rate_limit), "N",
	  "gateway: requests a second per client address and per key "
	  "(0: no limit)" },
	{ "rate-burst", "RATE_BURST", CONFIG_INT, "0", 0, 10000000,
	  F(rate_burst), "N",
	  "gateway: requests over the rate a client may send at once "
	  "(0: as many as RATE_LIMIT)" },
	{ "tls-cert-file", "TLS_CERT_FILE", CONFIG_PATH, NULL, 0, 0,
	  F(tls_cert_file), "PATH", "serve HTTPS with this certificate chain" },
	{ "tls-key-file", "TLS_KEY_FILE", CONFIG_PATH, NULL, 0, 0,
	  F(tls_key_file), "PATH", "the private key of TLS_CERT_FILE" },
	{ "http-tls-priorities", "HTTP_TLS_PRIORITIES", CONFIG_STRING, NULL,
	  0, 0, F(tls_priorities), "STRING",
	  "GnuTLS priorities of the HTTPS listeners (default: TLS 1.3, and "
	  "1.2 with ECDHE and AEAD suites only)" },
	{ "tls-ca-file", "TLS_CA_FILE", CONFIG_PATH, NULL, 0, 0,
	  F(tls_ca_file), "PATH",
	  "CA certificates that the next hop's certificate must chain to" },
	{ "internal-token", "INTERNAL_TOKEN", CONFIG_SECRET, NULL, 0, 0,
	  F(internal_token), "TOKEN",
	  "sent to, and required by, ingest and the processor" },
	{ "log-level", "LOG_LEVEL", CONFIG_LOG_LEVEL, "info", 0, 0,
	  F(log_level), "LEVEL", "error, warn, info or debug" },
	{ "log-format", "LOG_FORMAT", CONFIG_LOG_FORMAT, "text", 0, 0,
	  F(log_format), "FORMAT", "text, or json: one object a line" },
};

static const char *const role_names[] = {
	[ROLE_GATEWAY] = "gateway",
	[ROLE_INGEST] = "ingest",
	[ROLE_PROCESSOR] = "processor",
};

const char *
config_role_name(enum role role)
{
	if (role <= ROLE_NONE || role > ROLE_PROCESSOR)
		return "none";
	return role_names[role];
}

int
config_role_port(const struct config *cfg)
{
	if (cfg->port != 0)
		return cfg->port;
	switch (cfg->role) {
	case ROLE_GATEWAY:
		return cfg->api_port;
	case ROLE_INGEST:
		return cfg->ingest_port;
	case ROLE_PROCESSOR:
		return cfg->processor_port;
	default:
		return 0;
	}
}

static int
parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
valid_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* "invalid value 'val' for what: why" */
static int
bad_value(char **cause, const char *what, const char *val, const char *why)
{
	if (asprintf(cause, "invalid value '%s' for %s: %s", val, what,
	    why) < 0)
		*cause = NULL;
	return -EINVAL;
}

static int
set_string(char **field, const char *val, char **cause)
{
	char *copy = strdup(val);

	if (copy == NULL) {
		*cause = strdup("out of memory");
		return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

static void
url_list_clear(struct config_url_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->urls[i]);
	free(l->urls);
	free(l->text);
	memset(l, 0, sizeof(*l));
}

/* Check one part of the list val, [p, end), and append it to l. */
static int
url_list_add(struct config_url_list *l, const char *p, const char *end,
    const char *what, const char *val, char **cause)
{
	char *url, *why = NULL;
	int rc = 0;

	if (p == end)
		return bad_value(cause, what, val, "empty URL in the list");
	if (l->n == CONFIG_MAX_URLS) {
		xasprintf(&why, "more than %d URLs", CONFIG_MAX_URLS);
		goto out;
	}
	url = xstrndup(p, (size_t)(end - p));
	if (!valid_url(url)) {
		/* a list names the culprit; a single URL is the value itself */
		if (strchr(val, ',') != NULL)
			xasprintf(&why, "'%s' is not an http:// or https:// URL",
			    url);
		else
			why = xstrdup("expected an http:// or https:// URL");
		free(url);
		goto out;
	}
	/* a processor listed twice would be asked twice and fed twice */
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->urls[i], url) == 0) {
			xasprintf(&why, "'%s' is listed twice", url);
			free(url);
			goto out;
		}
	}
	l->urls[l->n++] = url;
out:
	if (why != NULL)
		rc = bad_value(cause, what, val, why);
	free(why);
	return rc;
}

/*
 * Split val at commas into the URL list *field; blanks around a URL are
 * not part of it. A new value replaces the whole list, so that the command
 * line overrides the environment rather than adding to it.
 */
static int
set_url_list(struct config_url_list *field, const char *what,
    const char *val, char **cause)
{
	struct config_url_list l = { 0 };
	const char *p = val, *start, *end;
	int rc;

	l.text = xstrdup(val);
	l.urls = xcalloc(CONFIG_MAX_URLS, sizeof(*l.urls));
	for (;;) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		start = p;
		while (start < end && isspace((unsigned char)*start))
			start++;
		p = end;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if ((rc = url_list_add(&l, start, end, what, val, cause)) != 0)
			goto out;
		if (*p++ == '\0')
			break;
	}
	url_list_clear(field);
	*field = l;
	return 0;
out:
	url_list_clear(&l);
	return rc;
}

/*
 * Set the setting o, stored in base, from text; what names it in the
 * reason for a bad value (the option or the variable).
 */
static int
opt_set(void *base, const struct config_option *o, const char *what,
    const char *val, char **cause)
{
	void *field = (char *)base + o->offset;
	int64_t n;

	switch (o->kind) {
	case CONFIG_URL:
		if (!valid_url(val))
			return bad_value(cause, what, val,
			    "expected an http:// or https:// URL");
		/* FALLTHROUGH */
	case CONFIG_STRING:
	case CONFIG_SECRET:
	case CONFIG_PATH:
		if (*val == '\0')
			return bad_value(cause, what, val, "must not be empty");
		return set_string(field, val, cause);
	case CONFIG_URL_LIST:
		return set_url_list(field, what, val, cause);
	case CONFIG_ROLE:
		for (int r = ROLE_GATEWAY; r <= ROLE_PROCESSOR; r++) {
			if (strcmp(val, role_names[r]) == 0) {
				*(enum role *)field = (enum role)r;
				return 0;
			}
		}
		return bad_value(cause, what, val,
		    "expected gateway, ingest or processor");
	case CONFIG_PORT:
		if (parse_int(val, &n) != 0 || n < 1 || n > 65535)
			return bad_value(cause, what, val,
			    "expected a port number 1-65535");
		*(int *)field = (int)n;
		return 0;
	case CONFIG_INT:
		if (parse_int(val, &n) != 0)
			return bad_value(cause, what, val,
			    "expected a whole number");
		if (n < o->min || n > o->max)
			return bad_value(cause, what, val, "out of range");
		*(int64_t *)field = n;
		return 0;
	case CONFIG_DURATION:
		if (duration_parse_ms(val, &n) != 0)
			return bad_value(cause, what, val,
			    "expected a duration such as 30s, 500ms, 2m, 24h, "
			    "of at most 100 years");
		*(int64_t *)field = n;
		return 0;
	case CONFIG_QUEUE_TYPE:
		if (queue_lookup(val, NULL, cause) != 0) {
			char *why = *cause;
			int rc = bad_value(cause, what, val, why != NULL ?
			    why : "unknown queue backend");

			free(why);
			return rc;
		}
		return set_string(field, val, cause);
	case CONFIG_LOG_LEVEL:
		if (log_level_parse(val, (enum log_level *)field) != 0)
			return bad_value(cause, what, val,
			    "expected error, warn, info or debug");
		return 0;
	case CONFIG_LOG_FORMAT:
		if (log_format_parse(val, (enum log_format *)field) != 0)
			return bad_value(cause, what, val,
			    "expected text or json");
		return 0;
	}
	return bad_value(cause, what, val, "unknown kind of setting");
}

/* The general settings, then each backend's: one table for the parser. */
struct opt_ref {
	const struct config_option *o;
	int group;		/* index into cfg->group, -1: cfg itself */
};

static const struct config_group general_group = {
	"general", general_options,
	sizeof(general_options) / sizeof(*general_options), 0,
};

static const struct config_group no_settings = { "none", NULL, 0, 0 };

/* Group i, one per backend; NULL past the last. */
static const struct config_group *
group_at(size_t i)
{
	const struct queue_ops *ops = queue_backend_at(i);

	if (ops == NULL)
		return NULL;
	return ops->settings != NULL ? ops->settings : &no_settings;
}

#define MAX_OPTS 96

/* Every option in help order; returns how many. */
static size_t
all_options(struct opt_ref *refs)
{
	const struct config_group *g;
	size_t n = 0;

	for (size_t i = 0; i < general_group.n_options; i++)
		refs[n++] = (struct opt_ref){ &general_options[i], -1 };
	for (size_t gi = 0; (g = group_at(gi)) != NULL; gi++) {
		for (size_t i = 0; i < g->n_options && n < MAX_OPTS; i++)
			refs[n++] = (struct opt_ref){ &g->options[i], (int)gi };
	}
	return n;
}

static void *
ref_base(struct config *cfg, const struct opt_ref *r)
{
	return r->group < 0 ? (void *)cfg : cfg->group[r->group];
}

/* Make room for each group's settings. */
static int
groups_alloc(struct config *cfg, char **cause)
{
	const struct config_group *g;

	for (size_t gi = 0; (g = group_at(gi)) != NULL; gi++) {
		if (gi == CONFIG_MAX_GROUPS) {
			*cause = strdup("too many settings groups");
			return -E2BIG;
		}
		if ((cfg->group[gi] = calloc(1, g->size ? g->size : 1)) ==
		    NULL) {
			*cause = strdup("out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The text of the file path, without the line end that editors add; a
 * secret file is small, so more than 64 KiB is a mistake.
 */
static int
read_secret(const char *path, const char *what, char **text, char **cause)
{
	char buf[65537];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		if (asprintf(cause, "cannot read %s '%s': %s", what, path,
		    strerror(errno)) < 0)
			*cause = NULL;
		return -EINVAL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == sizeof(buf))
		return bad_value(cause, what, path, "larger than 64 KiB");
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(buf, '\0', n) != NULL)
		return bad_value(cause, what, path,
		    "the file is empty or not text");
	*text = xstrndup(buf, n);
	return 0;
}

/*
 * A secret's VAR_FILE, or the systemd credential named after the option
 * (LoadCredential=): the secret itself, or for a path setting the path of
 * the credential. Nothing set is fine: the setting stays unset.
 */
static int
opt_from_elsewhere(void *base, const struct config_option *o,
    config_lookup_fn lookup, void *ctx, char **cause)
{
	const char *file = NULL, *dir, *what;
	char var[80], *cred = NULL, *text = NULL;
	int rc = 0;

	if (o->kind != CONFIG_SECRET && o->kind != CONFIG_PATH)
		return 0;
	snprintf(var, sizeof(var), "%s_FILE", o->env);
	if (o->kind == CONFIG_SECRET && (file = lookup(ctx, var)) != NULL &&
	    *file != '\0') {
		what = var;
	} else if ((dir = lookup(ctx, "CREDENTIALS_DIRECTORY")) != NULL &&
	    *dir != '\0') {
		xasprintf(&cred, "%s/%s", dir, o->name);
		if (access(cred, F_OK) != 0)
			goto out;
		file = cred;
		what = "the credential";
	} else {
		goto out;
	}
	if (o->kind == CONFIG_PATH) {
		rc = opt_set(base, o, o->env, file, cause);
		goto out;
	}
	if ((rc = read_secret(file, what, &text, cause)) == 0)
		rc = opt_set(base, o, what, text, cause);
out:
	if (text != NULL)
		explicit_bzero(text, strlen(text));
	free(text);
	free(cred);
	return rc;
}

/* Apply the default, then what lookup gives, for every setting. */
static int
config_from_env(struct config *cfg, const struct opt_ref *refs, size_t n,
    config_lookup_fn lookup, void *ctx, char **cause)
{
	const char *v;
	int rc;

	for (size_t i = 0; i < n; i++) {
		const struct config_option *o = refs[i].o;
		void *base = ref_base(cfg, &refs[i]);

		if (o->def != NULL &&
		    (rc = opt_set(base, o, o->name, o->def, cause)) != 0)
			return rc;
		if (o->env == NULL || lookup == NULL)
			continue;
		if ((v = lookup(ctx, o->env)) != NULL && *v != '\0')
			rc = opt_set(base, o, o->env, v, cause);
		else
			rc = opt_from_elsewhere(base, o, lookup, ctx, cause);
		if (rc != 0)
			return rc;
	}
	return 0;
}

enum { OPT_HELP = 1000, OPT_VERSION };

/* The command line over what config_from_env set. */
static enum config_result
config_from_args(struct config *cfg, const struct opt_ref *refs, size_t n,
    int argc, char **argv, char **cause)
{
	struct option longopts[MAX_OPTS + 3];
	char what[64];
	int c, idx;

	for (size_t i = 0; i < n; i++)
		longopts[i] = (struct option){ refs[i].o->name,
			required_argument, NULL, (int)i };
	longopts[n] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	longopts[n + 1] = (struct option){ "version", no_argument, NULL,
		OPT_VERSION };
	longopts[n + 2] = (struct option){ NULL, 0, NULL, 0 };

	optind = 0;	/* reset getopt, so tests may parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", longopts, &idx)) != -1) {
		if (c == 'h' || c == OPT_HELP) {
			config_print_help(argv[0]);
			return CONFIG_EXIT_OK;
		}
		if (c == 'V' || c == OPT_VERSION) {
			printf("diplomd %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT_OK;
		}
		if (c == '?' || c == ':' || c < 0 || (size_t)c >= n) {
			if (asprintf(cause, "unrecognized or incomplete option "
			    "'%s'", argv[optind - 1]) < 0)
				*cause = NULL;
			return CONFIG_EXIT_USAGE;
		}
		snprintf(what, sizeof(what), "--%s", refs[c].o->name);
		if (opt_set(ref_base(cfg, &refs[c]), refs[c].o, what, optarg,
		    cause) != 0)
			return CONFIG_EXIT_USAGE;
	}
	if (optind < argc) {
		if (asprintf(cause, "unexpected argument '%s'",
		    argv[optind]) < 0)
			*cause = NULL;
		return CONFIG_EXIT_USAGE;
	}
	return CONFIG_RUN;
}

/* config_parse's getenv_fn, as a config_lookup_fn. */
struct getenv_ctx {
	config_getenv_fn fn;
};

static const char *
getenv_lookup(void *ctx, const char *name)
{
	return ((struct getenv_ctx *)ctx)->fn(name);
}

int
config_load(struct config *cfg, config_lookup_fn lookup, void *ctx,
    char **cause)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);

	memset(cfg, 0, sizeof(*cfg));
	*cause = NULL;
	if (groups_alloc(cfg, cause) != 0)
		return -ENOMEM;
	return config_from_env(cfg, refs, n, lookup, ctx, cause);
}

int
config_set(struct config *cfg, const char *name, const char *val,
    char **cause)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);
	char what[64];

	*cause = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(refs[i].o->name, name) != 0)
			continue;
		snprintf(what, sizeof(what), "--%s", name);
		return opt_set(ref_base(cfg, &refs[i]), refs[i].o, what, val,
		    cause);
	}
	if (asprintf(cause, "unknown setting '%s'", name) < 0)
		*cause = NULL;
	return -ENOENT;
}

enum config_result
config_parse(struct config *cfg, int argc, char **argv,
    config_getenv_fn getenv_fn, char **cause)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);
	struct getenv_ctx g = { getenv_fn };
	enum config_result res;

	if (config_load(cfg, getenv_fn != NULL ? getenv_lookup : NULL, &g,
	    cause) != 0)
		return CONFIG_EXIT_USAGE;
	res = config_from_args(cfg, refs, n, argc, argv, cause);
	if (res == CONFIG_RUN && cfg->role == ROLE_NONE) {
		*cause = strdup("missing --role (gateway, ingest or processor)");
		return CONFIG_EXIT_USAGE;
	}
	return res;
}

void
config_free(struct config *cfg)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);

	for (size_t i = 0; i < n; i++) {
		enum config_kind k = refs[i].o->kind;
		void *base = ref_base(cfg, &refs[i]);

		char *field;

		if (base == NULL)
			continue;
		field = (char *)base + refs[i].o->offset;
		if (k == CONFIG_URL_LIST) {
			url_list_clear((struct config_url_list *)(void *)field);
		} else if (k == CONFIG_STRING || k == CONFIG_URL ||
		    k == CONFIG_QUEUE_TYPE || k == CONFIG_SECRET ||
		    k == CONFIG_PATH) {
			free(*(char **)(void *)field);
			*(char **)(void *)field = NULL;
		}
	}
	for (size_t gi = 0; gi < CONFIG_MAX_GROUPS; gi++) {
		free(cfg->group[gi]);
		cfg->group[gi] = NULL;
	}
}

/* The setting called name, and where its value is. */
static const struct config_option *
find_option(const struct config *cfg, const char *name, const void **field)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(refs[i].o->name, name) == 0) {
			*field = (const char *)ref_base((struct config *)cfg,
			    &refs[i]) + refs[i].o->offset;
			return refs[i].o;
		}
	}
	return NULL;
}

int
config_get_int(const struct config *cfg, const char *name, int64_t *v)
{
	const void *field;
	const struct config_option *o = find_option(cfg, name, &field);

	if (o == NULL)
		return -ENOENT;
	switch (o->kind) {
	case CONFIG_INT:
	case CONFIG_DURATION:
		*v = *(const int64_t *)field;
		return 0;
	case CONFIG_PORT:
		*v = *(const int *)field;
		return 0;
	default:
		return -ENOENT;
	}
}

int
config_get_string(const struct config *cfg, const char *name,
    const char **v)
{
	const void *field;
	const struct config_option *o = find_option(cfg, name, &field);

	if (o == NULL)
		return -ENOENT;
	switch (o->kind) {
	case CONFIG_URL_LIST:
		*v = ((const struct config_url_list *)field)->text;
		return 0;
	case CONFIG_STRING:
	case CONFIG_URL:
	case CONFIG_QUEUE_TYPE:
	case CONFIG_SECRET:
	case CONFIG_PATH:
		*v = *(char *const *)field;
		return 0;
	default:
		return -ENOENT;
	}
}

const void *
config_settings(const struct config *cfg, const struct config_group *g)
{
	const struct config_group *have;

	for (size_t gi = 0; (have = group_at(gi)) != NULL; gi++) {
		if (have == g)
			return cfg->group[gi];
	}
	return NULL;
}

/* "--name=METAVAR  help [ENV] (default X)" */
static void
print_option(const struct config_option *o)
{
	const struct queue_ops *ops;
	char left[64];

	snprintf(left, sizeof(left), "--%s=%s", o->name, o->metavar);
	printf("  %-30s %s", left, o->help);
	if (o->kind == CONFIG_QUEUE_TYPE) {
		for (size_t i = 0; (ops = queue_backend_at(i)) != NULL; i++)
			printf("%s %s", i > 0 ? "," : "", ops->name);
	}
	if (o->env != NULL && o->kind == CONFIG_SECRET)
		printf(" [%s or %s_FILE]", o->env, o->env);
	else if (o->env != NULL && o->def == NULL)
		printf(" [%s]", o->env);
	else if (o->env != NULL)
		printf(" [%s] (default %s)", o->env, o->def);
	printf("\n");
}

void
config_print_help(const char *prog)
{
	struct opt_ref refs[MAX_OPTS];
	size_t n = all_options(refs);

	printf("Usage: %s [OPTION]... --role=gateway|ingest|processor\n"
	    "Run one role of the diplom message-ingestion pipeline.\n\n"
	    "Every option may also be set by the environment variable named "
	    "after it;\nthe command line wins over the environment.\n\n",
	    prog);
	for (size_t i = 0; i < n; i++)
		print_option(refs[i].o);
	printf("  %-30s %s\n  %-30s %s\n", "-h, --help",
	    "show this help and exit", "-V, --version",
	    "show the version and exit");
	printf("\nExit status: 0 on a clean stop, 1 on a runtime failure, "
	    "2 on a usage error.\nSee diplomd(8).\n");
}

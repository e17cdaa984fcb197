/* ctl/client.c - HTTP to the roles (libcurl easy), a look at the broker */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sys/socket.h>

#include "clock.h"
#include "ctl/client.h"

/* A role's answer is a few kilobytes; a listing of failed ones more. */
#define REPLY_MAX (64 << 20)

struct body {
	char *p;
	size_t len;
};

/*
 * How diplomctl reaches the roles, the same for every request of its one
 * run: set once from the settings before the first.
 */
static struct {
	char *auth_header;		/* "Authorization: Bearer ...", or NULL */
	char *ca_file;
	char *except_base;		/* sent no token */
} http_with;

void
ctl_http_setup(const char *token, const char *ca_file,
    const char *except_base)
{
	ctl_http_cleanup();
	if (token != NULL && *token != '\0' && asprintf(&http_with.auth_header,
	    "Authorization: Bearer %s", token) < 0)
		http_with.auth_header = NULL;
	http_with.ca_file = ca_file != NULL ? strdup(ca_file) : NULL;
	http_with.except_base = except_base != NULL ? strdup(except_base) :
	    NULL;
}

void
ctl_http_cleanup(void)
{
	if (http_with.auth_header != NULL)
		explicit_bzero(http_with.auth_header,
		    strlen(http_with.auth_header));
	free(http_with.auth_header);
	free(http_with.ca_file);
	free(http_with.except_base);
	memset(&http_with, 0, sizeof(http_with));
}

static size_t
on_data(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *p;

	if (b->len + size * n > REPLY_MAX ||
	    (p = realloc(b->p, b->len + size * n + 1)) == NULL)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->p = p;
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

int
ctl_http(const char *method, const char *base, const char *path,
    struct ctl_reply *r)
{
	struct body b = { NULL, 0 };
	struct curl_slist *headers = NULL;
	CURL *e = curl_easy_init();
	CURLcode code;
	char *url = NULL;
	size_t bl = strlen(base);

	memset(r, 0, sizeof(*r));
	if (e == NULL || asprintf(&url, "%.*s%s", (int)(bl > 0 &&
	    base[bl - 1] == '/' ? bl - 1 : bl), base, path) < 0) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		curl_easy_cleanup(e);
		return -EIO;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)CTL_HTTP_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
	if (http_with.ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, http_with.ca_file);
	if (http_with.auth_header != NULL && (http_with.except_base == NULL ||
	    strcmp(base, http_with.except_base) != 0)) {
		headers = curl_slist_append(NULL, http_with.auth_header);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	}
	r->error[0] = '\0';
	code = curl_easy_perform(e);
	if (code == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
		if (b.p != NULL)
			r->json = json_tokener_parse(b.p);
	} else if (r->error[0] == '\0') {
		snprintf(r->error, sizeof(r->error), "%s",
		    curl_easy_strerror(code));
	}
	curl_easy_cleanup(e);
	if (headers != NULL)
		explicit_bzero(headers->data, strlen(headers->data));
	curl_slist_free_all(headers);
	free(url);
	free(b.p);
	return code == CURLE_OK ? 0 : -EIO;
}

void
ctl_reply_free(struct ctl_reply *r)
{
	json_object_put(r->json);
	r->json = NULL;
}

const char *
ctl_reply_reason(const struct ctl_reply *r, char *buf, size_t len)
{
	const char *s;

	if (r->status == 0) {
		snprintf(buf, len, "no answer: %s", r->error);
		return buf;
	}
	if ((s = ctl_json_str(r->json, "error")) != NULL ||
	    (s = ctl_json_str(r->json, "reason")) != NULL)
		return s;
	snprintf(buf, len, "HTTP %ld", r->status);
	return buf;
}

int64_t
ctl_json_int(struct json_object *o, const char *key, int64_t def)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

const char *
ctl_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool
ctl_nats_info_has_jetstream(const char *line)
{
	struct json_object *info, *js;
	bool yes;

	if (strncmp(line, "INFO ", 5) != 0 ||
	    (info = json_tokener_parse(line + 5)) == NULL)
		return false;
	yes = json_object_object_get_ex(info, "jetstream", &js) &&
	    json_object_get_boolean(js);
	json_object_put(info);
	return yes;
}

/* Connect to host:port within the time left until deadline_ms. */
static int
tcp_connect(const char *host, const char *port, int64_t deadline_ms,
    char *why, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct pollfd pfd;
	int fd = -1, rc, err;
	socklen_t el = sizeof(err);

	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, len, "%s", gai_strerror(rc));
		return -1;
	}
	snprintf(why, len, "cannot connect");
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			snprintf(why, len, "%s", strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)(deadline_ms - clock_now_ms())) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
		    err != 0) {
			snprintf(why, len, "%s", err != 0 ? strerror(err) :
			    "timed out");
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* The server's first line into buf, within the time left. */
static int
read_line(int fd, char *buf, size_t len, int64_t deadline_ms)
{
	size_t n = 0;
	ssize_t k;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (n + 1 < len) {
		if (poll(&pfd, 1, (int)(deadline_ms - clock_now_ms())) != 1)
			return -ETIMEDOUT;
		if ((k = read(fd, buf + n, len - 1 - n)) <= 0)
			return -EIO;
		n += (size_t)k;
		buf[n] = '\0';
		if (strstr(buf, "\r\n") != NULL)
			return 0;
	}
	return -E2BIG;
}

/* Whether the one server url runs JetStream; why not into why. */
static bool
server_has_jetstream(const char *url, size_t ulen, int timeout_ms,
    char *why, size_t len)
{
	char hp[256], *host = hp, *port, line[16384], dflt[] = "4222";
	const char *p = url, *scheme = strstr(url, "://");
	int64_t deadline = clock_now_ms() + timeout_ms;
	bool yes = false;
	int fd;

	if (scheme != NULL && (size_t)(scheme - url) < ulen)
		p = scheme + 3;
	snprintf(hp, sizeof(hp), "%.*s", (int)(ulen - (size_t)(p - url)), p);
	hp[strcspn(hp, "/")] = '\0';
	if (strchr(hp, '@') != NULL)
		host = strrchr(hp, '@') + 1;
	/* [v6]:port, host:port, or a host alone */
	if (*host == '[' && (port = strchr(host, ']')) != NULL) {
		*port++ = '\0';
		host++;
		port = *port == ':' ? port + 1 : dflt;
	} else if ((port = strrchr(host, ':')) != NULL) {
		*port++ = '\0';
	} else {
		port = dflt;
	}
	if ((fd = tcp_connect(host, port, deadline, why, len)) < 0)
		return false;
	if (read_line(fd, line, sizeof(line), deadline) != 0)
		snprintf(why, len, "no NATS greeting");
	else if (!(yes = ctl_nats_info_has_jetstream(line)))
		snprintf(why, len, "a NATS server without JetStream");
	close(fd);
	return yes;
}

int
ctl_nats_jetstream(const char *urls, int timeout_ms, char **cause)
{
	const char *p = urls, *end;
	char why[256];
	char *all = NULL;
	size_t alen = 0;
	FILE *f = open_memstream(&all, &alen);

	*cause = NULL;
	for (;; p = end + 1) {
		size_t n;

		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0 && server_has_jetstream(p, n, timeout_ms, why,
		    sizeof(why))) {
			if (f != NULL)
				fclose(f);
			free(all);
			return 0;
		}
		if (n > 0 && f != NULL)
			fprintf(f, "%s%.*s: %s", ftell(f) > 0 ? "; " : "",
			    (int)n, p, why);
		if (end == NULL)
			break;
	}
	if (f != NULL && fclose(f) == 0)
		*cause = all;
	else
		free(all);
	return -EHOSTUNREACH;
}

/* auth.c - sets of API keys, kept as SHA-256 digests, and bearer keys */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth.h"
#include "xmalloc.h"

/* A key file larger than this is a mistake, not a list of keys. */
#define KEY_FILE_MAX (1024 * 1024)
#define SHA256_PREFIX "sha256:"

struct auth_keys {
	size_t n;
	unsigned char (*digests)[AUTH_DIGEST_LEN];
	char (*names)[AUTH_NAME_MAX + 1];	/* each key's client */
};

struct auth {
	char *path;
	/* lock guards keys: matches read it, a reload swaps it */
	pthread_rwlock_t lock;
	struct auth_keys *keys;
};

static void
sha256(const void *data, size_t len, unsigned char digest[AUTH_DIGEST_LEN])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) != 0)
		xalloc_failed();
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The 64 hex digits of hex (n chars) into digest; -EINVAL when not. */
static int
parse_hex_digest(const char *hex, size_t n,
    unsigned char digest[AUTH_DIGEST_LEN])
{
	if (n != 2 * AUTH_DIGEST_LEN)
		return -EINVAL;
	for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		digest[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Whether the n bytes at s make a client name. */
static bool
name_valid(const char *s, size_t n)
{
	if (n == 0 || n > AUTH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool
auth_name_valid(const char *s)
{
	return s != NULL && name_valid(s, strlen(s));
}

/*
 * The name of a key given without one: from a hash of its digest, so that
 * it is the same whether the file holds the key or its digest, and tells
 * nothing that would help to find the key.
 */
static void
derived_name(const unsigned char digest[AUTH_DIGEST_LEN],
    char out[AUTH_NAME_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[AUTH_DIGEST_LEN];
	char *o = out + strlen("key-");

	sha256(digest, AUTH_DIGEST_LEN, h);
	memcpy(out, "key-", strlen("key-"));
	for (size_t i = 0; i < 8; i++) {
		*o++ = hex[h[i] >> 4];
		*o++ = hex[h[i] & 0xf];
	}
	*o = '\0';
}

/* The key word of a line (n bytes at p) into keys' next digest. */
static int
parse_key(struct auth_keys *keys, const char *p, size_t n, const char *name,
    size_t lineno, char **cause)
{
	size_t plen = strlen(SHA256_PREFIX);

	if (n >= plen && strncmp(p, SHA256_PREFIX, plen) == 0) {
		if (parse_hex_digest(p + plen, n - plen,
		    keys->digests[keys->n]) != 0) {
			xasprintf(cause, "%s line %zu: sha256: must be followed "
			    "by 64 hex digits", name, lineno);
			return -EINVAL;
		}
	} else {
		sha256(p, n, keys->digests[keys->n]);
	}
	return 0;
}

/*
 * Keep the key just parsed unless the file has it already: a match must
 * find one key, so one key under two names is an error.
 */
static int
add_unique(struct auth_keys *keys, const char *name, size_t lineno,
    char **cause)
{
	for (size_t i = 0; i < keys->n; i++) {
		if (memcmp(keys->digests[i], keys->digests[keys->n],
		    AUTH_DIGEST_LEN) != 0)
			continue;
		if (strcmp(keys->names[i], keys->names[keys->n]) == 0)
			return 0;
		xasprintf(cause, "%s line %zu: a key already given on a "
		    "line before, under another client name", name, lineno);
		return -EINVAL;
	}
	keys->n++;
	return 0;
}

/* One line (without its newline) into keys, when it holds a key. */
static int
parse_line(struct auth_keys *keys, const char *p, size_t n, const char *name,
    size_t lineno, char **cause)
{
	size_t k = 0;
	const char *client;
	int rc;

	while (n > 0 && is_blank(*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_blank(p[n - 1]))
		n--;
	if (n == 0 || *p == '#')
		return 0;
	/* a key holds no blank (a Bearer value cannot): one ends it */
	while (k < n && !is_blank(p[k]))
		k++;
	for (client = p + k; client < p + n && is_blank(*client); client++)
		;
	if (client < p + n && !name_valid(client, (size_t)(p + n - client))) {
		xasprintf(cause, "%s line %zu: a client name is 1 to %d "
		    "letters, digits, '.', '_' or '-'", name, lineno,
		    AUTH_NAME_MAX);
		return -EINVAL;
	}
	keys->digests = xrealloc(keys->digests,
	    (keys->n + 1) * sizeof(*keys->digests));
	keys->names = xrealloc(keys->names,
	    (keys->n + 1) * sizeof(*keys->names));
	if ((rc = parse_key(keys, p, k, name, lineno, cause)) != 0)
		return rc;
	if (client < p + n) {
		memcpy(keys->names[keys->n], client,
		    (size_t)(p + n - client));
		keys->names[keys->n][p + n - client] = '\0';
	} else {
		derived_name(keys->digests[keys->n], keys->names[keys->n]);
	}
	return add_unique(keys, name, lineno, cause);
}

int
auth_keys_parse(const char *text, size_t len, const char *name,
    struct auth_keys **out, char **cause)
{
	struct auth_keys *keys = xcalloc(1, sizeof(*keys));
	size_t lineno = 0;
	int rc = 0;

	*out = NULL;
	for (const char *p = text, *end = text + len; p < end && rc == 0;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (memchr(p, '\0', n) != NULL) {
			xasprintf(cause, "%s line %zu: a NUL byte", name,
			    lineno + 1);
			rc = -EINVAL;
			break;
		}
		rc = parse_line(keys, p, n, name, ++lineno, cause);
		p += n + 1;
	}
	if (rc == 0 && keys->n == 0) {
		xasprintf(cause, "%s holds no key", name);
		rc = -ENOKEY;
	}
	if (rc != 0) {
		auth_keys_free(keys);
		return rc;
	}
	*out = keys;
	return 0;
}

/* The whole file at path into *buf (len bytes, NUL-terminated). */
static int
read_file(const char *path, char **buf, size_t *len, char **cause)
{
	FILE *f = fopen(path, "r");
	char *b = NULL;
	size_t n = 0;
	int rc = 0;

	*buf = NULL;
	if (f == NULL) {
		rc = -errno;
		xasprintf(cause, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	b = xmalloc(KEY_FILE_MAX + 1);
	n = fread(b, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		xasprintf(cause, "cannot read %s: %s", path, strerror(errno));
	} else if (n > KEY_FILE_MAX) {
		rc = -EFBIG;
		xasprintf(cause, "%s: larger than %d bytes", path,
		    KEY_FILE_MAX);
	}
	fclose(f);
	if (rc != 0) {
		gnutls_memset(b, 0, KEY_FILE_MAX + 1);
		free(b);
		return rc;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int
auth_keys_load(const char *path, struct auth_keys **out, char **cause)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if ((rc = read_file(path, &text, &len, cause)) != 0)
		return rc;
	rc = auth_keys_parse(text, len, path, out, cause);
	/* the file may hold keys in the clear: leave no copy behind */
	gnutls_memset(text, 0, len);
	free(text);
	return rc;
}

size_t
auth_keys_count(const struct auth_keys *keys)
{
	return keys->n;
}

bool
auth_keys_match(const struct auth_keys *keys, const char *key, size_t len,
    unsigned char digest[AUTH_DIGEST_LEN], char client[AUTH_NAME_MAX + 1])
{
	size_t found = 0, which = 0, eq;

	sha256(key, len, digest);
	/* every digest compared, in constant time: no early exit */
	for (size_t i = 0; i < keys->n; i++) {
		eq = gnutls_memcmp(digest, keys->digests[i],
		    AUTH_DIGEST_LEN) == 0;
		found |= eq;
		which |= ((size_t)0 - eq) & i;
	}
	if (found != 0 && client != NULL)
		memcpy(client, keys->names[which], sizeof(keys->names[which]));
	return found != 0;
}

void
auth_keys_free(struct auth_keys *keys)
{
	if (keys == NULL)
		return;
	free(keys->digests);
	free(keys->names);
	free(keys);
}

int
auth_open(struct auth **out, const char *path, char **cause)
{
	struct auth_keys *keys;
	struct auth *a;
	int rc;

	*out = NULL;
	if ((rc = auth_keys_load(path, &keys, cause)) != 0)
		return rc;
	a = xcalloc(1, sizeof(*a));
	a->path = xstrdup(path);
	a->keys = keys;
	pthread_rwlock_init(&a->lock, NULL);
	*out = a;
	return 0;
}

int
auth_reload(struct auth *a, char **cause)
{
	struct auth_keys *keys, *old;
	int rc;

	/* read outside the lock: requests go on matching meanwhile */
	if ((rc = auth_keys_load(a->path, &keys, cause)) != 0)
		return rc;
	pthread_rwlock_wrlock(&a->lock);
	old = a->keys;
	a->keys = keys;
	pthread_rwlock_unlock(&a->lock);
	auth_keys_free(old);
	return 0;
}

/* The key of "Bearer <key>" (RFC 6750), or NULL when h is not that. */
static const char *
bearer_key(const char *h, size_t *len)
{
	size_t scheme = strlen("Bearer");
	const char *k;
	size_t n;

	if (strncasecmp(h, "Bearer", scheme) != 0 || h[scheme] != ' ')
		return NULL;
	for (k = h + scheme; *k == ' '; k++)
		;
	n = strlen(k);
	while (n > 0 && is_blank(k[n - 1]))
		n--;
	if (n == 0 || memchr(k, ' ', n) != NULL)
		return NULL;
	*len = n;
	return k;
}

enum auth_result
auth_check(struct auth *a, const char *authorization,
    unsigned char digest[AUTH_DIGEST_LEN], char client[AUTH_NAME_MAX + 1])
{
	const char *key;
	size_t len = 0;
	bool ok;

	if (authorization == NULL)
		return AUTH_MISSING;
	if ((key = bearer_key(authorization, &len)) == NULL)
		return AUTH_MALFORMED;
	pthread_rwlock_rdlock(&a->lock);
	ok = auth_keys_match(a->keys, key, len, digest, client);
	pthread_rwlock_unlock(&a->lock);
	return ok ? AUTH_OK : AUTH_WRONG;
}

size_t
auth_count(struct auth *a)
{
	size_t n;

	pthread_rwlock_rdlock(&a->lock);
	n = a->keys->n;
	pthread_rwlock_unlock(&a->lock);
	return n;
}

const char *
auth_path(const struct auth *a)
{
	return a->path;
}

const char *
auth_result_reason(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "authorized";
	case AUTH_MISSING:
		return "an API key is required: send Authorization: Bearer "
		    "<key>";
	case AUTH_MALFORMED:
		return "malformed Authorization header: expected Bearer <key>";
	case AUTH_WRONG:
	default:
		return "invalid API key";
	}
}

void
auth_close(struct auth *a)
{
	if (a == NULL)
		return;
	auth_keys_free(a->keys);
	pthread_rwlock_destroy(&a->lock);
	free(a->path);
	free(a);
}

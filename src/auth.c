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

/* One line (without its newline) into keys, when it holds a key. */
static int
parse_line(struct auth_keys *keys, const char *p, size_t n, const char *name,
    size_t lineno, char **cause)
{
	size_t plen = strlen(SHA256_PREFIX);

	while (n > 0 && is_blank(*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_blank(p[n - 1]))
		n--;
	if (n == 0 || *p == '#')
		return 0;
	keys->digests = xrealloc(keys->digests,
	    (keys->n + 1) * sizeof(*keys->digests));
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
	keys->n++;
	return 0;
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
    unsigned char digest[AUTH_DIGEST_LEN])
{
	int found = 0;

	sha256(key, len, digest);
	/* every digest compared, in constant time: no early exit */
	for (size_t i = 0; i < keys->n; i++)
		found |= gnutls_memcmp(digest, keys->digests[i],
		    AUTH_DIGEST_LEN) == 0;
	return found != 0;
}

void
auth_keys_free(struct auth_keys *keys)
{
	if (keys == NULL)
		return;
	free(keys->digests);
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
    unsigned char digest[AUTH_DIGEST_LEN])
{
	const char *key;
	size_t len = 0;
	bool ok;

	if (authorization == NULL)
		return AUTH_MISSING;
	if ((key = bearer_key(authorization, &len)) == NULL)
		return AUTH_MALFORMED;
	pthread_rwlock_rdlock(&a->lock);
	ok = auth_keys_match(a->keys, key, len, digest);
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

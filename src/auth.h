/* auth.h - sets of API keys, and the bearer keys requests present */
#ifndef DIPLOM_AUTH_H
#define DIPLOM_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Keys are kept, and compared, as their SHA-256 digests. */
#define AUTH_DIGEST_LEN 32

/* An immutable set of key digests. */
struct auth_keys;

/*
 * Parse a key file's text: one key a line; blank lines and lines starting
 * with '#' are skipped; "sha256:<64 hex digits>" is the digest of a key,
 * any other line the key itself. name is the file, for the cause. A text
 * without a key is an error. The cause never quotes a line.
 */
int auth_keys_parse(const char *text, size_t len, const char *name,
    struct auth_keys **out, char **cause);
/* Read and parse the key file at path. */
int auth_keys_load(const char *path, struct auth_keys **out, char **cause);
size_t auth_keys_count(const struct auth_keys *keys);
/*
 * Whether key (len bytes) is in keys; its digest into digest. The time it
 * takes does not depend on which key matches, nor where they differ.
 */
bool auth_keys_match(const struct auth_keys *keys, const char *key,
    size_t len, unsigned char digest[AUTH_DIGEST_LEN]);
void auth_keys_free(struct auth_keys *keys);

/* A key file's set in use, swapped whole on reload while others match. */
struct auth;

/* What an Authorization header holds for a set. */
enum auth_result {
	AUTH_OK,
	AUTH_MISSING,		/* no header */
	AUTH_MALFORMED,		/* not "Bearer <key>" */
	AUTH_WRONG,		/* a key not in the set */
};

/* Load the key file at path into a new set in use. */
int auth_open(struct auth **out, const char *path, char **cause);
/* Read the file again; on failure the set in use stays. */
int auth_reload(struct auth *a, char **cause);
/*
 * Check an Authorization header's value (NULL when absent); on AUTH_OK the
 * digest of the key it presented into digest. Safe on any thread, while
 * auth_reload runs too.
 */
enum auth_result auth_check(struct auth *a, const char *authorization,
    unsigned char digest[AUTH_DIGEST_LEN]);
/* Keys in the set in use. */
size_t auth_count(struct auth *a);
const char *auth_path(const struct auth *a);
/* A person's reason for a result other than AUTH_OK. */
const char *auth_result_reason(enum auth_result r);
void auth_close(struct auth *a);

#endif

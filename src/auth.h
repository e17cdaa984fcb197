/* auth.h - sets of API keys, and the bearer keys requests present */
#ifndef DIPLOM_AUTH_H
#define DIPLOM_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Keys are kept, and compared, as their SHA-256 digests. */
#define AUTH_DIGEST_LEN 32
/*
 * The longest client name. A name is 1 to AUTH_NAME_MAX of [A-Za-z0-9._-]:
 * it travels in a header and is stored with each of the client's results.
 */
#define AUTH_NAME_MAX 64

/* An immutable set of key digests. */
struct auth_keys;

/*
 * Parse a key file's text: one key a line, then optionally blanks and the
 * name of the client that holds it; blank lines and lines starting with
 * '#' are skipped; "sha256:<64 hex digits>" is the digest of a key, any
 * other word the key itself. A key without a name is named "key-" and 16
 * hex digits of a hash of its digest: stable, never the key. name is the
 * file, for the cause. A text without a key, a bad name or one name for
 * two different keys is an error. The cause never quotes a key.
 */
int auth_keys_parse(const char *text, size_t len, const char *name,
    struct auth_keys **out, char **cause);
/* Read and parse the key file at path. */
int auth_keys_load(const char *path, struct auth_keys **out, char **cause);
size_t auth_keys_count(const struct auth_keys *keys);
/*
 * Whether key (len bytes) is in keys; its digest into digest, and when it
 * matches and client is not NULL, the name of its client into client. The
 * time it takes does not depend on which key matches, nor where they
 * differ.
 */
bool auth_keys_match(const struct auth_keys *keys, const char *key,
    size_t len, unsigned char digest[AUTH_DIGEST_LEN],
    char client[AUTH_NAME_MAX + 1]);
/* Whether s is a client name as a key file gives them. */
bool auth_name_valid(const char *s);
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
 * digest of the key it presented into digest and, when client is not NULL,
 * its client's name into client. Safe on any thread, while auth_reload
 * runs too.
 */
enum auth_result auth_check(struct auth *a, const char *authorization,
    unsigned char digest[AUTH_DIGEST_LEN], char client[AUTH_NAME_MAX + 1]);
/* Keys in the set in use. */
size_t auth_count(struct auth *a);
const char *auth_path(const struct auth *a);
/* A person's reason for a result other than AUTH_OK. */
const char *auth_result_reason(enum auth_result r);
void auth_close(struct auth *a);

#endif

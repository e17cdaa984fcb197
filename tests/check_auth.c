/* check_auth.c - key files, bearer keys, and a reload under readers */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "check_main.h"
#include "check_util.h"

Suite *auth_suite(void);

/* SHA-256 of "secret-two", as `printf secret-two | sha256sum` gives it. */
#define TWO_HEX "cebdf378f2d2bd60d3e3693349e8f20f329daf11a276f849996f0a6377e2155b"

static char dir[256];
static char path[300];

static void
setup(void)
{
	tu_temp_dir(dir, sizeof(dir), "check_auth");
	snprintf(path, sizeof(path), "%s/keys", dir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void
write_keys(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* keys parsed from text, asserted to parse. */
static struct auth_keys *
parsed(const char *text)
{
	struct auth_keys *k = NULL;
	char *cause = NULL;

	ck_assert_int_eq(auth_keys_parse(text, strlen(text), "f", &k, &cause),
	    0);
	ck_assert_ptr_null(cause);
	return k;
}

static bool
matches(const struct auth_keys *k, const char *key)
{
	unsigned char d[AUTH_DIGEST_LEN];

	return auth_keys_match(k, key, strlen(key), d, NULL);
}

/* The hex digest of a key, from the library, to build sha256: lines. */
static void
hex_of(const char *key, char out[2 * AUTH_DIGEST_LEN + 1])
{
	struct auth_keys *k = parsed("x\n");
	unsigned char d[AUTH_DIGEST_LEN];

	auth_keys_match(k, key, strlen(key), d, NULL);
	for (size_t i = 0; i < AUTH_DIGEST_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	auth_keys_free(k);
}

START_TEST(plain_keys_comments_and_blanks)
{
	struct auth_keys *k = parsed("# the keys\n\nkey-one\n  key-two  \r\n"
	    "\t# indented comment\nlast-without-newline");

	ck_assert_uint_eq(auth_keys_count(k), 3);
	ck_assert(matches(k, "key-one"));
	ck_assert(matches(k, "key-two"));
	ck_assert(matches(k, "last-without-newline"));
	ck_assert(!matches(k, "key-on"));
	ck_assert(!matches(k, "key-one "));
	ck_assert(!matches(k, "# the keys"));
	ck_assert(!matches(k, ""));
	auth_keys_free(k);
}
END_TEST

START_TEST(sha256_lines_hold_a_digest_not_a_key)
{
	char hex[2 * AUTH_DIGEST_LEN + 1], text[128];
	struct auth_keys *k;

	hex_of("secret-two", hex);
	ck_assert_str_eq(hex, TWO_HEX);
	/* upper-case hex is the same digest */
	for (char *p = hex; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(text, sizeof(text), "sha256:%s\nplain\n", hex);
	k = parsed(text);
	ck_assert_uint_eq(auth_keys_count(k), 2);
	ck_assert(matches(k, "secret-two"));
	ck_assert(matches(k, "plain"));
	/* the line itself is no key */
	text[strlen("sha256:") + 64] = '\0';
	ck_assert(!matches(k, text));
	auth_keys_free(k);
}
END_TEST

/* text fails to parse, with a cause naming the file and not quoting. */
static void
parse_fails(const char *text, int want, const char *in_cause)
{
	struct auth_keys *k = NULL;
	char *cause = NULL;

	ck_assert_int_eq(auth_keys_parse(text, strlen(text), "/etc/keys", &k,
	    &cause), want);
	ck_assert_ptr_null(k);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "/etc/keys") != NULL, "%s", cause);
	ck_assert_msg(strstr(cause, in_cause) != NULL, "%s", cause);
	ck_assert_msg(strstr(cause, "zz") == NULL, "quotes the line: %s",
	    cause);
	free(cause);
}

START_TEST(bad_hex_and_empty_files_are_refused)
{
	parse_fails("ok\nsha256:" TWO_HEX "zz\n", -EINVAL, "line 2");
	parse_fails("sha256:zz" TWO_HEX "\n", -EINVAL, "64 hex digits");
	parse_fails("sha256:abc\n", -EINVAL, "line 1");
	parse_fails("sha256:\n", -EINVAL, "line 1");
	parse_fails("", -ENOKEY, "no key");
	parse_fails("# only\n\n   \n#zz\n", -ENOKEY, "no key");
}
END_TEST

START_TEST(a_missing_file_is_an_error_naming_it)
{
	struct auth *a = NULL;
	char *cause = NULL;

	ck_assert_int_eq(auth_open(&a, path, &cause), -ENOENT);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(cause, path));
	free(cause);
}
END_TEST

/* The client name key gets from k; "" when it does not match. */
static void
client_of(const struct auth_keys *k, const char *key,
    char out[AUTH_NAME_MAX + 1])
{
	unsigned char d[AUTH_DIGEST_LEN];

	out[0] = '\0';
	if (!auth_keys_match(k, key, strlen(key), d, out))
		out[0] = '\0';
}

START_TEST(keys_name_their_clients)
{
	char hex[2 * AUTH_DIGEST_LEN + 1], text[256], a[AUTH_NAME_MAX + 1],
	    b[AUTH_NAME_MAX + 1];
	struct auth_keys *k;

	hex_of("secret-two", hex);
	snprintf(text, sizeof(text), "alpha-key  team-a\n"
	    "sha256:%s\tteam_b.prod \r\nrotated team-a\nbare\n", hex);
	k = parsed(text);
	ck_assert_uint_eq(auth_keys_count(k), 4);
	client_of(k, "alpha-key", a);
	ck_assert_str_eq(a, "team-a");
	/* two keys of one client: one name, so one set of ids */
	client_of(k, "rotated", a);
	ck_assert_str_eq(a, "team-a");
	client_of(k, "secret-two", a);
	ck_assert_str_eq(a, "team_b.prod");
	/* the name is not part of the key */
	ck_assert(!matches(k, "alpha-key  team-a"));
	client_of(k, "bare", a);
	ck_assert_uint_eq(strlen(a), strlen("key-") + 16);
	ck_assert_int_eq(strncmp(a, "key-", 4), 0);
	ck_assert(strstr(a, "bare") == NULL);
	ck_assert(auth_name_valid(a));
	auth_keys_free(k);
	/* derived from the digest: the same for the key and its sha256: */
	hex_of("bare", hex);
	snprintf(text, sizeof(text), "sha256:%s\n", hex);
	k = parsed(text);
	client_of(k, "bare", b);
	ck_assert_str_eq(a, b);
	auth_keys_free(k);
	k = parsed("other\n");
	client_of(k, "other", b);
	ck_assert_str_ne(a, b);
	auth_keys_free(k);
}
END_TEST

START_TEST(bad_names_and_a_key_under_two_names_are_refused)
{
	char name[AUTH_NAME_MAX + 2];
	struct auth_keys *k;

	parse_fails("ok\nkey a b\n", -EINVAL, "line 2");
	parse_fails("key na/me\n", -EINVAL, "client name");
	parse_fails("key n\xc3\xa9\n", -EINVAL, "client name");
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert(!auth_name_valid(name));
	name[AUTH_NAME_MAX] = '\0';
	ck_assert(auth_name_valid(name));
	ck_assert(!auth_name_valid(""));
	ck_assert(!auth_name_valid("a:b"));
	parse_fails("same one\nsame two\n", -EINVAL, "another client name");
	/* the same line twice is one key */
	k = parsed("same one\nsame one\n");
	ck_assert_uint_eq(auth_keys_count(k), 1);
	auth_keys_free(k);
}
END_TEST

START_TEST(bearer_headers_are_checked)
{
	unsigned char d[AUTH_DIGEST_LEN], d2[AUTH_DIGEST_LEN];
	struct auth *a = NULL;
	char *cause = NULL;

	write_keys("alpha\nsha256:" TWO_HEX "\n");
	ck_assert_int_eq(auth_open(&a, path, &cause), 0);
	ck_assert_uint_eq(auth_count(a), 2);
	ck_assert_str_eq(auth_path(a), path);
	ck_assert_int_eq(auth_check(a, NULL, d, NULL), AUTH_MISSING);
	ck_assert_int_eq(auth_check(a, "", d, NULL), AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "alpha", d, NULL), AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "Basic alpha", d, NULL),
	    AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "Bearer", d, NULL), AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "Bearer ", d, NULL), AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "Bearer al pha", d, NULL),
	    AUTH_MALFORMED);
	ck_assert_int_eq(auth_check(a, "Bearer beta", d, NULL), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, "Bearer alph", d, NULL), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, "Bearer alpha", d, NULL), AUTH_OK);
	/* the scheme is case-insensitive (RFC 9110), the key is not */
	ck_assert_int_eq(auth_check(a, "bearer  alpha ", d2, NULL), AUTH_OK);
	ck_assert_mem_eq(d, d2, AUTH_DIGEST_LEN);
	ck_assert_int_eq(auth_check(a, "Bearer ALPHA", d, NULL), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, "Bearer secret-two", d2, NULL),
	    AUTH_OK);
	{
		char who[AUTH_NAME_MAX + 1];

		write_keys("alpha ops\n");
		ck_assert_int_eq(auth_reload(a, &cause), 0);
		ck_assert_int_eq(auth_check(a, "Bearer alpha", d, who),
		    AUTH_OK);
		ck_assert_str_eq(who, "ops");
	}
	ck_assert_int_ne(memcmp(d, d2, AUTH_DIGEST_LEN), 0);
	ck_assert_str_eq(auth_result_reason(AUTH_WRONG), "invalid API key");
	auth_close(a);
}
END_TEST

START_TEST(a_reload_swaps_the_keys_and_a_bad_one_keeps_them)
{
	unsigned char d[AUTH_DIGEST_LEN];
	struct auth *a = NULL;
	char *cause = NULL;

	write_keys("old-key\n");
	ck_assert_int_eq(auth_open(&a, path, &cause), 0);
	write_keys("new-key\nother\n");
	ck_assert_int_eq(auth_reload(a, &cause), 0);
	ck_assert_uint_eq(auth_count(a), 2);
	ck_assert_int_eq(auth_check(a, "Bearer old-key", d, NULL), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, "Bearer new-key", d, NULL), AUTH_OK);
	/* a bad file, then none: the keys in use stay */
	write_keys("sha256:nothex\n");
	ck_assert_int_eq(auth_reload(a, &cause), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cause, path));
	free(cause);
	cause = NULL;
	unlink(path);
	ck_assert_int_eq(auth_reload(a, &cause), -ENOENT);
	free(cause);
	ck_assert_int_eq(auth_check(a, "Bearer new-key", d, NULL), AUTH_OK);
	ck_assert_uint_eq(auth_count(a), 2);
	auth_close(a);
}
END_TEST

/* Readers check keys while the main thread reloads (for TSan). */
struct reader {
	struct auth *a;
	int ok, wrong;
};

static void *
reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char d[AUTH_DIGEST_LEN];

	for (int i = 0; i < 2000; i++) {
		if (auth_check(r->a, "Bearer both", d, NULL) == AUTH_OK)
			r->ok++;
		else
			r->wrong++;
	}
	return NULL;
}

START_TEST(checks_go_on_while_keys_are_reloaded)
{
	struct reader r[3];
	pthread_t t[3];
	struct auth *a = NULL;
	char *cause = NULL;

	write_keys("both\nfirst\n");
	ck_assert_int_eq(auth_open(&a, path, &cause), 0);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct reader){ a, 0, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_run, &r[i]),
		    0);
	}
	for (int i = 0; i < 50; i++) {
		write_keys(i % 2 == 0 ? "second\nboth\n" : "both\nfirst\n");
		ck_assert_int_eq(auth_reload(a, &cause), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		/* "both" is in every set: never refused */
		ck_assert_int_eq(r[i].ok, 2000);
		ck_assert_int_eq(r[i].wrong, 0);
	}
	auth_close(a);
}
END_TEST

Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("keys");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plain_keys_comments_and_blanks);
	tcase_add_test(tc, sha256_lines_hold_a_digest_not_a_key);
	tcase_add_test(tc, bad_hex_and_empty_files_are_refused);
	tcase_add_test(tc, a_missing_file_is_an_error_naming_it);
	tcase_add_test(tc, keys_name_their_clients);
	tcase_add_test(tc, bad_names_and_a_key_under_two_names_are_refused);
	tcase_add_test(tc, bearer_headers_are_checked);
	tcase_add_test(tc, a_reload_swaps_the_keys_and_a_bad_one_keeps_them);
	tcase_add_test(tc, checks_go_on_while_keys_are_reloaded);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(auth_suite)

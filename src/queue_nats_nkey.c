/* queue_nats_nkey.c - the public NKey of a seed file, which nats.c needs */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "queue_nats_int.h"

/*
 * An NKey is base32 (RFC 4648, no padding) of a prefix, a 32-byte ed25519
 * key and a CRC-16 of the two, little endian. A seed has two prefix bytes:
 * 'S' and the kind of key packed into them.
 */
#define NK_PREFIX_SEED		(18 << 3)	/* 'S' */
#define NK_PREFIX_USER		(20 << 3)	/* 'U' */
#define NK_KEY_LEN		32
#define NK_SEED_RAW		(2 + NK_KEY_LEN + 2)
#define NK_PUB_RAW		(1 + NK_KEY_LEN + 2)
#define NK_MAX_FILE		4096

static const char nk_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* CRC-16/XMODEM, the checksum NKeys carry. */
static uint16_t
nk_crc16(const unsigned char *p, size_t n)
{
	uint16_t crc = 0;

	while (n-- > 0) {
		crc ^= (uint16_t)(*p++ << 8);
		for (int i = 0; i < 8; i++) {
			crc = (crc & 0x8000) != 0 ?
			    (uint16_t)((crc << 1) ^ 0x1021) :
			    (uint16_t)(crc << 1);
		}
	}
	return crc;
}

/* Decode base32 text of exactly out_len bytes; -EINVAL when it is not. */
static int
nk_b32_decode(const char *s, size_t len, unsigned char *out, size_t out_len)
{
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;
	const char *c;

	for (size_t i = 0; i < len; i++) {
		if ((c = strchr(nk_b32, s[i])) == NULL || s[i] == '\0')
			return -EINVAL;
		acc = (acc << 5) | (uint32_t)(c - nk_b32);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (n == out_len)
				return -EINVAL;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n == out_len ? 0 : -EINVAL;
}

/* Encode n bytes as base32 into out, which has room for it and a NUL. */
static void
nk_b32_encode(const unsigned char *p, size_t n, char *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			*out++ = nk_b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		*out++ = nk_b32[(acc << (5 - bits)) & 31];
	*out = '\0';
}

/*
 * The user seed in a file's text: the first line that starts with "SU",
 * as nats.c itself looks for it. Its length through *len.
 */
static const char *
nk_find_seed(const char *text, size_t *len)
{
	const char *p = text;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (p[0] == 'S' && p[1] == 'U') {
			*len = strcspn(p, " \t\r\n");
			return p;
		}
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	return NULL;
}

/* The 32-byte ed25519 public key of a private key, through GnuTLS. */
static int
nk_ed25519_public(const unsigned char *priv, unsigned char *pub)
{
	/* PKCS#8 of an Ed25519 private key: this header, then the key */
	unsigned char der[16 + NK_KEY_LEN] = { 0x30, 0x2e, 0x02, 0x01, 0x00,
	    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20 };
	gnutls_datum_t d = { der, sizeof(der) }, x = { NULL, 0 };
	gnutls_privkey_t pk = NULL;
	int rc = -EINVAL;

	memcpy(der + 16, priv, NK_KEY_LEN);
	if (gnutls_privkey_init(&pk) != 0)
		goto out;
	if (gnutls_privkey_import_x509_raw(pk, &d, GNUTLS_X509_FMT_DER,
	    NULL, 0) != 0 ||
	    gnutls_privkey_export_ecc_raw2(pk, NULL, &x, NULL, NULL, 0) != 0 ||
	    x.size != NK_KEY_LEN)
		goto out;
	memcpy(pub, x.data, NK_KEY_LEN);
	rc = 0;
out:
	explicit_bzero(der, sizeof(der));
	gnutls_free(x.data);
	if (pk != NULL)
		gnutls_privkey_deinit(pk);
	return rc;
}

/* Read at most NK_MAX_FILE - 1 bytes of path into buf, NUL-terminated. */
static int
nk_read(const char *path, char *buf, char **cause)
{
	FILE *f;
	size_t n;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		rc = -errno;
		nq_cause(cause, "NATS_NKEY_SEED: cannot read %s: %s", path,
		    strerror(errno));
		return rc;
	}
	n = fread(buf, 1, NK_MAX_FILE - 1, f);
	if (ferror(f)) {
		rc = -EIO;
		nq_cause(cause, "NATS_NKEY_SEED: cannot read %s", path);
	}
	buf[n] = '\0';
	fclose(f);
	return rc;
}

/*
 * The public key ("U...") of the user seed in the file at path, which
 * nats.c sends along with each signature it makes with the seed.
 */
int
nq_nkey_public(const char *path, char *pub, size_t publen, char **cause)
{
	char text[NK_MAX_FILE];
	unsigned char raw[NK_SEED_RAW], key[NK_PUB_RAW];
	const char *seed;
	size_t len = 0;
	uint16_t crc;
	int rc;

	if ((rc = nk_read(path, text, cause)) != 0)
		goto out;
	rc = -EINVAL;
	if ((seed = nk_find_seed(text, &len)) == NULL ||
	    nk_b32_decode(seed, len, raw, sizeof(raw)) != 0) {
		nq_cause(cause, "NATS_NKEY_SEED: no user NKey seed (SU...) "
		    "in %s", path);
		goto out;
	}
	crc = (uint16_t)(raw[NK_SEED_RAW - 2] | raw[NK_SEED_RAW - 1] << 8);
	if (crc != nk_crc16(raw, NK_SEED_RAW - 2) ||
	    (raw[0] & 0xf8) != NK_PREFIX_SEED ||
	    (((raw[0] & 7) << 5) | ((raw[1] & 0xf8) >> 3)) != NK_PREFIX_USER) {
		nq_cause(cause, "NATS_NKEY_SEED: the seed in %s is not a "
		    "valid user NKey seed", path);
		goto out;
	}
	key[0] = NK_PREFIX_USER;
	if (nk_ed25519_public(raw + 2, key + 1) != 0) {
		nq_cause(cause, "NATS_NKEY_SEED: cannot derive the public "
		    "key of the seed in %s", path);
		goto out;
	}
	crc = nk_crc16(key, NK_PUB_RAW - 2);
	key[NK_PUB_RAW - 2] = (unsigned char)(crc & 0xff);
	key[NK_PUB_RAW - 1] = (unsigned char)(crc >> 8);
	if (publen < NQ_NKEY_PUB_LEN + 1) {
		nq_cause(cause, "NATS_NKEY_SEED: no room for the public key");
		goto out;
	}
	nk_b32_encode(key, sizeof(key), pub);
	rc = 0;
out:
	explicit_bzero(text, sizeof(text));
	explicit_bzero(raw, sizeof(raw));
	return rc;
}

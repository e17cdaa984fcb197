/* http_tls.c - GnuTLS certificate sets for the listeners, swapped on reload */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "http_tls.h"
#include "xmalloc.h"

/* A certificate chain longer than this is refused. */
#define MAX_CHAIN 16
/* A PEM file larger than this is not a certificate or a key. */
#define MAX_PEM (1024 * 1024)

/* One certificate chain and its key, as read at one time. */
struct http_tls_set {
	struct http_tls_set *next;	/* the next newer set */
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned int n;
	gnutls_privkey_t key;
	int holders;			/* connections started under it */
};

/*
 * The sets from the oldest still needed to the one served now (the last).
 * A connection holds the set current when it started; the certificate
 * callback hands out the current one, never older than the one held. So
 * a set may go once it and every older set have no holders: the oldest
 * ones go first.
 */
struct http_tls {
	char *cert_file;
	char *key_file;
	/* lock guards the list and the holder counts */
	pthread_mutex_t lock;
	struct http_tls_set *oldest;
	struct http_tls_set *current;
};

static _Thread_local struct http_tls *tls_current;

static void
set_free(struct http_tls_set *s)
{
	if (s == NULL)
		return;
	for (unsigned int i = 0; i < s->n; i++)
		gnutls_pcert_deinit(&s->pcerts[i]);
	if (s->key != NULL)
		gnutls_privkey_deinit(s->key);
	free(s);
}

/* The whole of path into *d (gnutls_free it); what names the setting. */
static int
read_pem(const char *path, const char *what, gnutls_datum_t *d,
    char **cause)
{
	FILE *f = fopen(path, "re");
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc = 0;

	d->data = NULL;
	d->size = 0;
	if (f == NULL) {
		rc = -errno;
		xasprintf(cause, "cannot read %s %s: %s", what, path,
		    strerror(errno));
		return rc;
	}
	buf = gnutls_malloc(MAX_PEM + 1);
	if (buf == NULL)
		xalloc_failed();
	n = fread(buf, 1, MAX_PEM + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		xasprintf(cause, "cannot read %s %s: %s", what, path,
		    strerror(errno));
	} else if (n > MAX_PEM) {
		rc = -EFBIG;
		xasprintf(cause, "%s %s: larger than 1 MiB", what, path);
	}
	fclose(f);
	if (rc != 0) {
		gnutls_memset(buf, 0, MAX_PEM + 1);
		gnutls_free(buf);
		return rc;
	}
	d->data = buf;
	d->size = (unsigned int)n;
	return 0;
}

/* Whether key is the private key of the certificate's public key. */
static int
key_matches(struct http_tls_set *s)
{
	unsigned char a[64], b[64];
	size_t na = sizeof(a), nb = sizeof(b);
	gnutls_pubkey_t pub = NULL;
	int ok;

	ok = gnutls_pubkey_init(&pub) == 0 &&
	    gnutls_pubkey_import_privkey(pub, s->key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a,
	    &na) == 0 &&
	    gnutls_pubkey_get_key_id(s->pcerts[0].pubkey,
	    GNUTLS_KEYID_USE_SHA256, b, &nb) == 0 &&
	    na == nb && memcmp(a, b, na) == 0;
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return ok;
}

/* Read a new set from the files. */
static int
set_load(const struct http_tls *t, struct http_tls_set **out, char **cause)
{
	struct http_tls_set *s = xcalloc(1, sizeof(*s));
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	int rc, grc;

	*out = NULL;
	if ((rc = read_pem(t->cert_file, "TLS_CERT_FILE", &cert, cause)) != 0 ||
	    (rc = read_pem(t->key_file, "TLS_KEY_FILE", &key, cause)) != 0)
		goto out;
	s->n = MAX_CHAIN;
	if ((grc = gnutls_pcert_list_import_x509_raw(s->pcerts, &s->n, &cert,
	    GNUTLS_X509_FMT_PEM, 0)) < 0 || s->n == 0) {
		s->n = 0;
		rc = -EINVAL;
		xasprintf(cause, "TLS_CERT_FILE %s: no PEM certificate chain "
		    "in it: %s", t->cert_file, gnutls_strerror(grc));
		goto out;
	}
	if ((grc = gnutls_privkey_init(&s->key)) < 0 ||
	    (grc = gnutls_privkey_import_x509_raw(s->key, &key,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		rc = -EINVAL;
		xasprintf(cause, "TLS_KEY_FILE %s: no PEM private key in it: "
		    "%s", t->key_file, gnutls_strerror(grc));
		goto out;
	}
	if (!key_matches(s)) {
		rc = -EINVAL;
		xasprintf(cause, "TLS_KEY_FILE %s is not the private key of "
		    "the certificate in TLS_CERT_FILE %s", t->key_file,
		    t->cert_file);
		goto out;
	}
	*out = s;
out:
	gnutls_free(cert.data);
	if (key.data != NULL)
		gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	if (rc != 0)
		set_free(s);
	return rc;
}

/* Free the oldest sets nobody needs any more; lock held. */
static void
prune(struct http_tls *t)
{
	while (t->oldest != t->current && t->oldest->holders == 0) {
		struct http_tls_set *s = t->oldest;

		t->oldest = s->next;
		set_free(s);
	}
}

int
http_tls_new(struct http_tls **out, const char *cert_file,
    const char *key_file, char **cause)
{
	struct http_tls *t = xcalloc(1, sizeof(*t));
	int rc;

	*out = NULL;
	t->cert_file = xstrdup(cert_file);
	t->key_file = xstrdup(key_file);
	pthread_mutex_init(&t->lock, NULL);
	if ((rc = set_load(t, &t->current, cause)) != 0) {
		http_tls_free(t);
		return rc;
	}
	t->oldest = t->current;
	*out = t;
	return 0;
}

int
http_tls_reload(struct http_tls *t, char **cause)
{
	struct http_tls_set *s;
	int rc;

	if ((rc = set_load(t, &s, cause)) != 0)
		return rc;
	pthread_mutex_lock(&t->lock);
	t->current->next = s;
	t->current = s;
	prune(t);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void
http_tls_free(struct http_tls *t)
{
	if (t == NULL)
		return;
	while (t->oldest != NULL) {
		struct http_tls_set *s = t->oldest;

		t->oldest = s->next;
		set_free(s);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->cert_file);
	free(t->key_file);
	free(t);
}

struct http_tls_set *
http_tls_hold(struct http_tls *t)
{
	struct http_tls_set *s;

	pthread_mutex_lock(&t->lock);
	s = t->current;
	s->holders++;
	pthread_mutex_unlock(&t->lock);
	return s;
}

void
http_tls_release(struct http_tls *t, struct http_tls_set *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	s->holders--;
	prune(t);
	pthread_mutex_unlock(&t->lock);
}

void
http_tls_set_current(struct http_tls *t)
{
	tls_current = t;
}

/* Serve the current set to a handshake, whatever the client asked for. */
int
http_tls_cert_callback(gnutls_session_t session,
    const gnutls_datum_t *req_ca_rdn, int nreqs,
    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
    gnutls_pcert_st **pcert, unsigned int *pcert_length,
    gnutls_privkey_t *privkey)
{
	struct http_tls *t = tls_current;

	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (t == NULL)
		return -1;
	pthread_mutex_lock(&t->lock);
	*pcert = t->current->pcerts;
	*pcert_length = t->current->n;
	*privkey = t->current->key;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* http_tls.h - the server's certificate and key, swapped on reload */
#ifndef DIPLOM_HTTP_TLS_H
#define DIPLOM_HTTP_TLS_H

#include <gnutls/abstract.h>

struct http_tls;
struct http_tls_set;

/*
 * What the listeners offer unless told otherwise: TLS 1.3 first, and 1.2
 * only with an ephemeral elliptic-curve key exchange (forward secrecy) and
 * an AEAD cipher; no RSA key exchange, no CBC, no SHA-1 MAC.
 */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM:" \
	"+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD"

/*
 * Read the PEM certificate chain and its private key; a file that cannot
 * be read or parsed, or a key that is not the certificate's, is an error
 * whose cause names the file.
 */
int http_tls_new(struct http_tls **t, const char *cert_file,
    const char *key_file, char **cause);
/*
 * Read the files again and serve them to new handshakes; connections
 * already made keep theirs. On failure what was served still is.
 */
int http_tls_reload(struct http_tls *t, char **cause);
void http_tls_free(struct http_tls *t);

/*
 * A connection starts: hold the set served now until it closes, which
 * keeps every set handed to it since from being freed under it.
 */
struct http_tls_set *http_tls_hold(struct http_tls *t);
void http_tls_release(struct http_tls *t, struct http_tls_set *s);

/*
 * The certificate callback serves the store of the server whose event
 * loop runs on the calling thread: libmicrohttpd gives the callback no
 * argument of ours. Set before running the daemon, NULL after.
 */
void http_tls_set_current(struct http_tls *t);
gnutls_certificate_retrieve_function2 http_tls_cert_callback;

#endif

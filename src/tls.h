/* TLS for gatherd: one SSL_CTX for the process (TLS >= 1.2, system trust
 * store or [tls] ca_file, verification on by default, ALPN http/1.1) and a
 * client session cache per (scheme, host, port) for resumption, bounded in
 * keys (least recently used go first) and rid of expired sessions. */
#ifndef GATHERD_TLS_H
#define GATHERD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls;

/* ca_file "" means the system trust store. */
struct tls *tls_new(bool verify, const char *ca_file, char **cause);
void tls_free(struct tls *t);

/* A client SSL for one connection to `host` (an IP literal when is_ip):
 * SNI for names only, certificate checked against the name or the IP,
 * and the cached session for `session_key` offered for resumption.  The
 * key string must outlive the SSL. */
SSL *tls_ssl_new(struct tls *t, const char *host, bool is_ip,
		 const char *session_key);

/* The session cache behind tls_ssl_new, public for the unit tests.
 * tls_session_put keeps `sess` for `key` (taking over the caller's
 * reference) unless it returns false.  tls_session_take returns a live
 * session to offer for `key` (a reference the caller frees), or NULL;
 * a TLS 1.3 one leaves the cache, since it is single use. */
bool tls_session_put(struct tls *t, const char *key, SSL_SESSION *sess)
	__attribute__((warn_unused_result));
SSL_SESSION *tls_session_take(struct tls *t, const char *key);
/* How many session keys the cache holds. */
size_t tls_session_keys(const struct tls *t);

/* After a handshake: count it (full or resumed). */
void tls_handshake_done(struct tls *t, SSL *ssl);

/* Explain a failed handshake or TLS read: the certificate verification
 * result when that failed, else the OpenSSL reason for `err` (from
 * bufferevent_get_openssl_error), else `fallback`. */
void tls_describe_error(SSL *ssl, unsigned long err, const char *fallback,
			char *buf, size_t size);

unsigned long tls_handshakes(const struct tls *t);
unsigned long tls_resumed(const struct tls *t);

#endif

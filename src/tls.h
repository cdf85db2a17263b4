/* TLS for gatherd: one SSL_CTX for the process (TLS >= 1.2, system trust
 * store or [tls] ca_file, verification on by default, ALPN http/1.1), a
 * client session cache per (scheme, host, port) for resumption, bounded in
 * keys (least recently used go first) and rid of expired sessions, and
 * the slots that bound how many handshakes run at once. */
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
/* How many session keys the cache holds, and sessions in all. */
size_t tls_session_keys(const struct tls *t);
size_t tls_session_count(const struct tls *t);
/* Keep up to n sessions per key (the connections a host may have at
 * once: max_per_host), within the cache's own bounds; 8 until set. */
void tls_set_sessions_per_key(struct tls *t, int n);

/* Handshakes that run at once are bounded (TLS_MAX_HANDSHAKES in tls.c).
 * A connection ready to begin one takes a slot: tls_slot_take returns
 * true if it holds one now, or queues it (first come, first served) and
 * returns false; its `go` then runs, from a tls_slot_drop of another
 * connection, once it holds one.  tls_slot_drop gives the slot back when
 * the handshake has ended (or the connection is abandoned), or takes a
 * queued connection out of the queue; it does nothing otherwise. */
struct tls_slot {
	struct tls_slot *next; /* in the queue */
	void (*go)(struct tls_slot *s);
	bool queued, held;
};

bool tls_slot_take(struct tls *t, struct tls_slot *s);
void tls_slot_drop(struct tls *t, struct tls_slot *s);
/* Handshakes holding a slot, and connections queued for one. */
size_t tls_slots_held(const struct tls *t);
size_t tls_slots_queued(const struct tls *t);

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

/* TLS context, per-connection SSL and session cache: see tls.h. */
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "lru.h"
#include "util.h"

/* Sessions per (scheme, host, port), newest last.  TLS 1.3 tickets are
 * meant for one use (OpenSSL marks a session not resumable once a TLS 1.3
 * handshake used it), and connections to a host are opened several at a
 * time, so one kept session would resume only the first of them.  Servers
 * send a ticket or two per handshake; keeping as many as the connections
 * a host may have at once (max_per_host: tls_set_sessions_per_key) and
 * handing each TLS 1.3 one out once resumes them all: at 10,000
 * connections to one server, 8 kept resumed about 1,500 handshakes and
 * 1,024 about 8,000 (a resumed one skips the certificate chain's parsing
 * and checks, most of a full handshake's cost).  At least
 * TLS_SESSIONS_PER_HOST are kept, at most TLS_MAX_HANDSHAKES (no more
 * handshakes run at once).  TLS 1.2 sessions stay reusable and are simply
 * shared: TLS_SESSIONS_PER_HOST of them at most. */
#define TLS_SESSIONS_PER_HOST 8

/* Sessions kept in all (about 1 KiB each), the bound there was when every
 * key held 8 at most: past it, a key grows no further than
 * TLS_SESSIONS_PER_HOST, and the keys used longest ago give theirs up. */
#define TLS_SESSIONS_MAX (TLS_SESSION_KEYS_MAX * TLS_SESSIONS_PER_HOST)

/* Session keys kept at most.  A crawl meets new https hosts for weeks and
 * each key holds sessions (with the peer's certificate chain, a few KiB),
 * so the cache is an LRU: past the cap the host used longest ago loses its
 * sessions and pays one full handshake if it comes back. */
#define TLS_SESSION_KEYS_MAX 10000

/* Fully expired keys dropped from the old end of the LRU per cache
 * access: more than one, so that the cache shrinks when traffic moves on
 * to other hosts, and few, so that no access pays for a long sweep. */
#define TLS_SWEEP_PER_TOUCH 2

/* Handshakes running at once, at most.  Each holds about 30 KiB of
 * OpenSSL's buffers until it ends (its message buffer grown to 16 KiB,
 * two 4 KiB buffering BIOs, record buffers), and when a crawl starts,
 * every fetch in flight begins one in the same moment: at 10,000 in
 * flight against one server that took 300 MB at the peak, and the
 * handshakes, which the CPU does one at a time on either side, ended no
 * sooner (measured: the same run 10 % faster with a bound).  1,024 does
 * not hold a crawl back on a real network: with a round trip of up to
 * 300 ms it still lets more handshakes through each second than a core
 * computes (a full one costs the client about half a millisecond). */
#define TLS_MAX_HANDSHAKES 1024

/* The sessions of one key; an empty one is removed from the cache. */
struct tls_sessions {
	struct tls *t;
	SSL_SESSION **s;
	int n, cap;
};

struct tls {
	SSL_CTX *ctx;
	bool need_default_paths; /* system store not loaded yet */
	struct lru *sessions;    /* session key -> struct tls_sessions */
	size_t n_sessions;       /* in all of them */
	int per_key;             /* sessions kept per key, at most */
	unsigned long handshakes, resumed;
	size_t slots_held, slots_queued;
	struct tls_slot *queue_head, **queue_tail; /* waiting for a slot */
	bool admitting; /* tls_slot_drop is handing slots out */
};

static int tls_ex_key = -1; /* SSL ex_data: the connection's session key */

/* Whether a session's lifetime (its creation time plus the timeout that
 * OpenSSL set from the context or the server's ticket hint) has passed:
 * such a session cannot resume, and keeping it only costs memory. */
static bool tls_session_expired(const SSL_SESSION *sess, time_t now)
{
	long t = SSL_SESSION_get_time(sess);
	long timeout = SSL_SESSION_get_timeout(sess);

	/* Subtracting cannot overflow the way t + timeout could. */
	return (long)now - t > timeout;
}

/* Free the expired sessions of one key, keeping the others in order;
 * returns how many are left. */
static int tls_sessions_prune(struct tls_sessions *ts, time_t now)
{
	int kept = 0;

	for (int i = 0; i < ts->n; i++) {
		if (tls_session_expired(ts->s[i], now))
			SSL_SESSION_free(ts->s[i]);
		else
			ts->s[kept++] = ts->s[i];
	}
	ts->t->n_sessions -= (size_t)(ts->n - kept);
	ts->n = kept;
	return kept;
}

/* Free one key's sessions (the LRU's free function). */
static void tls_sessions_free(void *v)
{
	struct tls_sessions *ts = v;

	for (int i = 0; i < ts->n; i++)
		SSL_SESSION_free(ts->s[i]);
	ts->t->n_sessions -= (size_t)ts->n;
	free(ts->s);
	free(ts);
}

/* Prune the least recently used keys and drop those left empty, so that
 * hosts the crawl has moved on from give their memory back before the cap
 * pushes them out; stops at the first key with a live session. */
static void tls_sessions_sweep(struct tls *t, time_t now)
{
	for (int i = 0; i < TLS_SWEEP_PER_TOUCH; i++) {
		void *v;
		const char *key = lru_oldest(t->sessions, &v);

		if (key == NULL || tls_sessions_prune(v, now) > 0)
			return;
		lru_remove(t->sessions, key);
	}
}

/* Keep a new session as the newest of its key, making the key recent. */
bool tls_session_put(struct tls *t, const char *key, SSL_SESSION *sess)
{
	time_t now = time(NULL);
	struct tls_sessions *ts;

	tls_sessions_sweep(t, now);
	ts = lru_get(t->sessions, key);
	if (ts == NULL) {
		ts = xcalloc(1, sizeof *ts);
		ts->t = t;
		lru_put(t->sessions, key, ts);
	} else {
		tls_sessions_prune(ts, now);
	}
	int cap = SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION
			  ? t->per_key
			  : TLS_SESSIONS_PER_HOST;
	while (ts->n >= cap || (ts->n >= TLS_SESSIONS_PER_HOST &&
				t->n_sessions >= TLS_SESSIONS_MAX)) {
		SSL_SESSION_free(ts->s[0]); /* the oldest goes */
		memmove(ts->s, ts->s + 1, sizeof ts->s[0] * (size_t)(ts->n - 1));
		ts->n--;
		t->n_sessions--;
	}
	if (ts->n == ts->cap) {
		ts->cap = ts->cap == 0 ? 2 : ts->cap * 2;
		ts->s = xrealloc(ts->s, sizeof *ts->s * (size_t)ts->cap);
	}
	ts->s[ts->n++] = sess;
	t->n_sessions++;
	/* Over the bound still (other keys grew while there was room): the
	 * keys used longest ago go. */
	while (t->n_sessions > TLS_SESSIONS_MAX) {
		void *v;
		const char *old = lru_oldest(t->sessions, &v);

		if (old == NULL || v == ts)
			break;
		lru_remove(t->sessions, old);
	}
	return true;
}

size_t tls_session_count(const struct tls *t)
{
	return t->n_sessions;
}

void tls_set_sessions_per_key(struct tls *t, int n)
{
	if (n < TLS_SESSIONS_PER_HOST)
		n = TLS_SESSIONS_PER_HOST;
	if (n > TLS_MAX_HANDSHAKES)
		n = TLS_MAX_HANDSHAKES;
	t->per_key = n;
}

/* The newest live session of a key, skipping and freeing expired ones. */
SSL_SESSION *tls_session_take(struct tls *t, const char *key)
{
	time_t now = time(NULL);
	struct tls_sessions *ts;
	SSL_SESSION *sess;

	tls_sessions_sweep(t, now);
	ts = lru_get(t->sessions, key);
	if (ts == NULL)
		return NULL;
	if (tls_sessions_prune(ts, now) == 0) {
		lru_remove(t->sessions, key);
		return NULL;
	}
	sess = ts->s[ts->n - 1];
	if (SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION) {
		/* Single use: the cache's reference goes to the caller and
		 * the next connection gets another ticket. */
		t->n_sessions--;
		if (--ts->n == 0)
			lru_remove(t->sessions, key);
	} else {
		SSL_SESSION_up_ref(sess);
	}
	return sess;
}

/* Size of the cache in keys, for the tests. */
size_t tls_session_keys(const struct tls *t)
{
	return lru_count(t->sessions);
}

/* OpenSSL hands us each new session (with TLS 1.3, after the handshake,
 * as tickets arrive): keep it for the next connection to the same key. */
static int tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_ex_data(ssl, tls_ex_key);

	if (t == NULL || key == NULL || !SSL_SESSION_is_resumable(sess))
		return 0;
	/* 1: we hold the reference now; 0: not kept, OpenSSL frees it. */
	return tls_session_put(t, key, sess) ? 1 : 0;
}

struct tls *tls_new(bool verify, const char *ca_file, char **cause)
{
	struct tls *t = xcalloc(1, sizeof *t);

	t->sessions = lru_new(TLS_SESSION_KEYS_MAX, tls_sessions_free);
	t->per_key = TLS_SESSIONS_PER_HOST;
	t->queue_tail = &t->queue_head;
	if (tls_ex_key < 0)
		tls_ex_key = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		*cause = util_printf("cannot create the TLS context");
		goto fail;
	}
	SSL_CTX_set_app_data(t->ctx, t);
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	/* Idle keep-alive connections wait with nothing to read or write;
	 * without this each keeps a read and a write buffer of one TLS
	 * record (~34 KiB together), which adds up across a large pool. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Like curl's --cacert: a configured CA file replaces the system
	 * store rather than adding to it. */
	if (ca_file != NULL && *ca_file != '\0') {
		if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
			char err[256];

			ERR_error_string_n(ERR_get_error(), err, sizeof err);
			*cause = util_printf("cannot load [tls] ca_file %s: %s",
					     ca_file, err);
			goto fail;
		}
	} else {
		/* Parsing the system bundle (~140 certificates) costs tens of
		 * milliseconds: do it on the first https URL, not for runs
		 * that fetch plain http only. */
		t->need_default_paths = true;
	}
	SSL_CTX_set_verify(t->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
			   NULL);
	if (!verify)
		log_warn("TLS CERTIFICATE VERIFICATION IS OFF ([tls] verify = "
			 "false): any server can impersonate any host");
	static const unsigned char alpn[] = "\x08http/1.1";
	if (SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof alpn - 1) != 0) {
		*cause = util_printf("cannot set ALPN");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(t->ctx,
				       SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(t->ctx, tls_new_session_cb);
	return t;
fail:
	tls_free(t);
	return NULL;
}

void tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	lru_free(t->sessions);
	SSL_CTX_free(t->ctx);
	free(t);
}

SSL *tls_ssl_new(struct tls *t, const char *host, bool is_ip,
		 const char *session_key)
{
	SSL *ssl;
	SSL_SESSION *sess;

	if (t->need_default_paths) {
		t->need_default_paths = false;
		if (SSL_CTX_set_default_verify_paths(t->ctx) != 1)
			log_error("cannot load the system trust store: "
				  "certificates will not verify");
	}
	ssl = SSL_new(t->ctx);
	if (ssl == NULL)
		return NULL;
	SSL_set_ex_data(ssl, tls_ex_key, (void *)session_key);
	if (is_ip) {
		/* No SNI for IP literals (RFC 6066); check the IP SAN. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) !=
		    1)
			goto fail;
	} else {
		if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
		    SSL_set1_host(ssl, host) != 1)
			goto fail;
		/* Wildcards only as a whole left-most label. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	sess = tls_session_take(t, session_key);
	if (sess != NULL) {
		SSL_set_session(ssl, sess); /* takes its own reference */
		SSL_SESSION_free(sess);
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

bool tls_slot_take(struct tls *t, struct tls_slot *s)
{
	if (s->held || s->queued)
		return s->held;
	if (t->slots_held < TLS_MAX_HANDSHAKES && t->queue_head == NULL) {
		s->held = true;
		t->slots_held++;
		return true;
	}
	s->next = NULL;
	*t->queue_tail = s;
	t->queue_tail = &s->next;
	s->queued = true;
	t->slots_queued++;
	return false;
}

void tls_slot_drop(struct tls *t, struct tls_slot *s)
{
	if (s->queued) {
		struct tls_slot **pp = &t->queue_head;

		while (*pp != s)
			pp = &(*pp)->next;
		*pp = s->next;
		if (t->queue_tail == &s->next)
			t->queue_tail = pp;
		s->queued = false;
		t->slots_queued--;
		return;
	}
	if (!s->held)
		return;
	s->held = false;
	t->slots_held--;
	/* Hand the free slots to the queue in order.  A `go` that fails at
	 * once drops its slot again from inside the loop: that only counts
	 * here, and the loop goes on. */
	if (t->admitting)
		return;
	t->admitting = true;
	while (t->slots_held < TLS_MAX_HANDSHAKES && t->queue_head != NULL) {
		struct tls_slot *n = t->queue_head;

		t->queue_head = n->next;
		if (t->queue_head == NULL)
			t->queue_tail = &t->queue_head;
		n->queued = false;
		t->slots_queued--;
		n->held = true;
		t->slots_held++;
		n->go(n);
	}
	t->admitting = false;
}

size_t tls_slots_held(const struct tls *t)
{
	return t->slots_held;
}

size_t tls_slots_queued(const struct tls *t)
{
	return t->slots_queued;
}

void tls_handshake_done(struct tls *t, SSL *ssl)
{
	t->handshakes++;
	if (SSL_session_reused(ssl))
		t->resumed++;
}

void tls_describe_error(SSL *ssl, unsigned long err, const char *fallback,
			char *buf, size_t size)
{
	long vr = X509_V_OK;

	if (ssl != NULL && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
		vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK) {
		snprintf(buf, size, "certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
		return;
	}
	if (err != 0) {
		const char *reason = ERR_reason_error_string(err);

		if (reason != NULL)
			snprintf(buf, size, "%s", reason);
		else
			ERR_error_string_n(err, buf, size);
		return;
	}
	snprintf(buf, size, "%s", fallback);
}

unsigned long tls_handshakes(const struct tls *t)
{
	return t->handshakes;
}

unsigned long tls_resumed(const struct tls *t)
{
	return t->resumed;
}

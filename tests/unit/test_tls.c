/* Unit tests for the TLS client session cache in tls.c: TLS 1.2 sessions
 * shared, TLS 1.3 ones handed out once, expired ones never handed out and
 * swept away, the cache bounded in keys, and the context settings that a
 * connection inherits; and the handshake slots (bounded, served in
 * order).  Sessions are made with SSL_SESSION_new and given an id, a
 * version and times by hand: no network, no handshake. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "tap.h"
#include "tls.h"

/* Must match TLS_SESSION_KEYS_MAX and TLS_SESSIONS_PER_HOST in tls.c: the
 * tests hold the real limits, not smaller ones made up for testing. */
#define KEYS_MAX 10000
#define PER_HOST 8
/* Must match TLS_MAX_HANDSHAKES in tls.c. */
#define SLOTS 1024

/* A resumable session of `version`, created `age` seconds ago and valid
 * for `timeout` seconds from then. */
static SSL_SESSION *session(int version, long age, long timeout)
{
	static unsigned serial;
	unsigned char id[8];
	SSL_SESSION *s = SSL_SESSION_new();

	if (s == NULL)
		abort();
	serial++;
	memset(id, 0, sizeof id);
	memcpy(id, &serial, sizeof serial);
	if (SSL_SESSION_set1_id(s, id, sizeof id) != 1 ||
	    SSL_SESSION_set_protocol_version(s, version) != 1)
		abort();
	SSL_SESSION_set_time(s, (long)time(NULL) - age);
	SSL_SESSION_set_timeout(s, timeout);
	return s;
}

/* A context with verification on and the (lazily loaded) system store. */
static struct tls *new_tls(void)
{
	char *cause = NULL;
	struct tls *t = tls_new(true, "", &cause);

	if (t == NULL) {
		printf("# tls_new: %s\n", cause ? cause : "?");
		abort();
	}
	return t;
}

/* Offer `sess` to the cache; the test keeps no reference unless it took
 * one before. */
static void put(struct tls *t, const char *key, SSL_SESSION *sess)
{
	if (!tls_session_put(t, key, sess)) {
		SSL_SESSION_free(sess);
		TAP_CHECK(!"tls_session_put failed");
	}
}

/* Take a session for key and drop the reference: only identity is
 * compared, never contents. */
static SSL_SESSION *take(struct tls *t, const char *key)
{
	SSL_SESSION *s = tls_session_take(t, key);

	if (s != NULL)
		SSL_SESSION_free(s);
	return s;
}

/* A TLS 1.2 session resumes any number of connections. */
static void test_tls12_shared(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *s = session(TLS1_2_VERSION, 0, 300);

	SSL_SESSION_up_ref(s); /* ours, to compare after the cache's frees */
	put(t, "https://a.test:443", s);
	TAP_CHECK(take(t, "https://a.test:443") == s);
	TAP_CHECK(take(t, "https://a.test:443") == s);
	TAP_CHECK(tls_session_keys(t) == 1);
	TAP_CHECK(take(t, "https://b.test:443") == NULL);
	tls_free(t);
	SSL_SESSION_free(s);
}

/* TLS 1.3 tickets go newest first, each once; the key goes with the last
 * one; by default only the newest PER_HOST are kept. */
static void test_tls13_single_use(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *s[PER_HOST + 2];

	for (int i = 0; i < PER_HOST + 2; i++) {
		s[i] = session(TLS1_3_VERSION, 0, 300);
		SSL_SESSION_up_ref(s[i]);
		put(t, "k", s[i]);
	}
	for (int i = PER_HOST + 1; i >= 2; i--)
		TAP_CHECK(take(t, "k") == s[i]);
	TAP_CHECK(take(t, "k") == NULL);
	TAP_CHECK(tls_session_keys(t) == 0);
	tls_free(t);
	for (int i = 0; i < PER_HOST + 2; i++)
		SSL_SESSION_free(s[i]);
}

/* Up to `per_key` TLS 1.3 tickets kept for key k: the newest ones, each
 * handed out once, newest first.  The count of the puts is `n`. */
static void check_kept(struct tls *t, int n, int per_key)
{
	SSL_SESSION **s = calloc((size_t)n, sizeof *s);
	int kept = n < per_key ? n : per_key;

	for (int i = 0; i < n; i++) {
		s[i] = session(TLS1_3_VERSION, 0, 300);
		SSL_SESSION_up_ref(s[i]);
		put(t, "k", s[i]);
	}
	for (int i = n - 1; i >= n - kept; i--)
		TAP_CHECK(take(t, "k") == s[i]);
	TAP_CHECK(take(t, "k") == NULL);
	for (int i = 0; i < n; i++)
		SSL_SESSION_free(s[i]);
	free(s);
}

/* As many tickets per key as connections a host may have at once
 * (max_per_host), within PER_HOST and SLOTS; lowering it (a reload)
 * trims a key's list at its next ticket. */
static void test_sessions_per_key(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *extra;

	tls_set_sessions_per_key(t, 100);
	check_kept(t, 150, 100);
	tls_set_sessions_per_key(t, 2); /* never below PER_HOST */
	check_kept(t, 20, PER_HOST);
	tls_set_sessions_per_key(t, 100000); /* never above SLOTS */
	check_kept(t, SLOTS + 10, SLOTS);

	tls_set_sessions_per_key(t, 100);
	for (int i = 0; i < 50; i++)
		put(t, "k", session(TLS1_3_VERSION, 0, 300));
	tls_set_sessions_per_key(t, 10);
	extra = session(TLS1_3_VERSION, 0, 300);
	SSL_SESSION_up_ref(extra);
	put(t, "k", extra);
	TAP_CHECK(take(t, "k") == extra);
	for (int i = 0; i < 9; i++)
		TAP_CHECK(take(t, "k") != NULL);
	TAP_CHECK(take(t, "k") == NULL);

	/* With the cache full (every key holding PER_HOST), no key grows
	 * past PER_HOST: many sessions per key may not add up to more than
	 * the cache held before. */
	char key[48];
	for (int i = 0; i < KEYS_MAX; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		for (int j = 0; j < PER_HOST; j++)
			put(t, key, session(TLS1_3_VERSION, 0, 300));
	}
	TAP_CHECK(tls_session_keys(t) == KEYS_MAX);
	tls_set_sessions_per_key(t, 100);
	for (int j = 0; j < 20; j++)
		put(t, "https://h7.test:443", session(TLS1_3_VERSION, 0, 300));
	int n = 0;
	while (take(t, "https://h7.test:443") != NULL)
		n++;
	TAP_CHECK(n == PER_HOST);
	tls_free(t);
	SSL_SESSION_free(extra);

	/* A key that grew while there was room gives its sessions up, as
	 * the one used longest ago, once the others fill the cache: the
	 * total stays within KEYS_MAX * PER_HOST. */
	t = new_tls();
	tls_set_sessions_per_key(t, SLOTS);
	for (int j = 0; j < SLOTS; j++)
		put(t, "big", session(TLS1_3_VERSION, 0, 300));
	TAP_CHECK(tls_session_count(t) == SLOTS);
	for (int i = 0; i < KEYS_MAX; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		for (int j = 0; j < PER_HOST; j++)
			put(t, key, session(TLS1_3_VERSION, 0, 300));
	}
	TAP_CHECK(tls_session_count(t) <= (size_t)KEYS_MAX * PER_HOST);
	TAP_CHECK(take(t, "big") == NULL);
	TAP_CHECK(take(t, "https://h9999.test:443") != NULL);
	tls_free(t);

	/* TLS 1.2 sessions are shared: a key keeps PER_HOST of them. */
	t = new_tls();
	tls_set_sessions_per_key(t, 100);
	for (int j = 0; j < 50; j++)
		put(t, "k12", session(TLS1_2_VERSION, 0, 300));
	TAP_CHECK(tls_session_count(t) == PER_HOST);
	tls_free(t);
}

/* An expired session is skipped (and freed) when one is handed out; a
 * key with nothing live left is removed. */
static void test_expired_skipped(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *live = session(TLS1_2_VERSION, 10, 300);
	SSL_SESSION *dead = session(TLS1_3_VERSION, 1000, 300);

	SSL_SESSION_up_ref(live);
	put(t, "k", live);
	put(t, "k", dead); /* newest, but past its lifetime */
	TAP_CHECK(take(t, "k") == live);
	TAP_CHECK(take(t, "k") == live); /* the dead one is gone for good */

	put(t, "only-dead", session(TLS1_2_VERSION, 1000, 300));
	TAP_CHECK(tls_session_keys(t) == 2);
	TAP_CHECK(take(t, "only-dead") == NULL);
	TAP_CHECK(tls_session_keys(t) == 1);

	/* Near the boundary (a second inside, so that the clock ticking
	 * during the test cannot flip it) and past it. */
	put(t, "edge", session(TLS1_2_VERSION, 299, 300));
	TAP_CHECK(take(t, "edge") != NULL);
	put(t, "past", session(TLS1_2_VERSION, 302, 300));
	TAP_CHECK(take(t, "past") == NULL);
	tls_free(t);
	SSL_SESSION_free(live);
}

/* Sessions that expire while cached are freed as the cache is used, a
 * bounded number of keys per use, oldest first. */
static void test_sweep_on_touch(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *s[3];
	char key[16];

	for (int i = 0; i < 3; i++) {
		s[i] = session(TLS1_2_VERSION, 0, 300);
		SSL_SESSION_up_ref(s[i]);
		snprintf(key, sizeof key, "old%d", i);
		put(t, key, s[i]);
	}
	put(t, "live", session(TLS1_2_VERSION, 0, 300));
	TAP_CHECK(tls_session_keys(t) == 4);
	/* Time passes for the three old keys only. */
	for (int i = 0; i < 3; i++)
		SSL_SESSION_set_time(s[i], (long)time(NULL) - 1000);
	put(t, "new", session(TLS1_2_VERSION, 0, 300));
	TAP_CHECK(tls_session_keys(t) == 3); /* old0, old1 swept */
	/* The next use takes old2, then stops at a key with a live one. */
	TAP_CHECK(take(t, "new") != NULL);
	TAP_CHECK(tls_session_keys(t) == 2);
	TAP_CHECK(take(t, "live") != NULL && take(t, "new") != NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof key, "old%d", i);
		TAP_CHECK(take(t, key) == NULL);
	}
	tls_free(t);
	for (int i = 0; i < 3; i++)
		SSL_SESSION_free(s[i]);
}

/* The cache holds at most KEYS_MAX keys; the least recently used go. */
static void test_keys_bounded(void)
{
	struct tls *t = new_tls();
	char key[48];
	int missing = 0;

	for (int i = 0; i < KEYS_MAX; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		put(t, key, session(TLS1_2_VERSION, 0, 300));
	}
	TAP_CHECK(tls_session_keys(t) == KEYS_MAX);
	/* Using h0 makes it recent: h1..h5 are the oldest now. */
	TAP_CHECK(take(t, "https://h0.test:443") != NULL);
	for (int i = KEYS_MAX; i < KEYS_MAX + 5; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		put(t, key, session(TLS1_2_VERSION, 0, 300));
	}
	TAP_CHECK(tls_session_keys(t) == KEYS_MAX);
	TAP_CHECK(take(t, "https://h0.test:443") != NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		TAP_CHECK(take(t, key) == NULL);
	}
	for (int i = 6; i < KEYS_MAX + 5; i++) {
		snprintf(key, sizeof key, "https://h%d.test:443", i);
		if (take(t, key) == NULL)
			missing++;
	}
	TAP_CHECK(missing == 0);
	/* Far past the cap, the count stays put. */
	for (int i = 0; i < 3 * KEYS_MAX; i++) {
		snprintf(key, sizeof key, "https://x%d.test:443", i);
		put(t, key, session(TLS1_3_VERSION, 0, 300));
	}
	TAP_CHECK(tls_session_keys(t) == KEYS_MAX);
	tls_free(t);
}

/* A connection's SSL releases idle buffers and is offered the cached
 * session of its key. */
static void test_ssl_new(void)
{
	struct tls *t = new_tls();
	SSL_SESSION *s = session(TLS1_2_VERSION, 0, 300);
	SSL *ssl;

	SSL_SESSION_up_ref(s);
	put(t, "https://a.test:443", s);
	ssl = tls_ssl_new(t, "a.test", false, "https://a.test:443");
	TAP_CHECK(ssl != NULL);
	if (ssl != NULL) {
		TAP_CHECK(SSL_get_mode(ssl) & SSL_MODE_RELEASE_BUFFERS);
		TAP_CHECK(SSL_get0_session(ssl) == s);
		SSL_free(ssl);
	}
	ssl = tls_ssl_new(t, "b.test", false, "https://b.test:443");
	TAP_CHECK(ssl != NULL && SSL_get0_session(ssl) == NULL);
	SSL_free(ssl);
	tls_free(t);
	SSL_SESSION_free(s);
}

/* A connection waiting for a handshake slot, as fetch.c keeps one. */
struct waiter {
	struct tls_slot slot; /* first: go() finds the waiter from it */
	struct tls *t;
	int order;          /* when go ran (0: not yet) */
	bool drop_at_once;  /* go gives the slot straight back */
};

static int go_count;

static void waiter_go(struct tls_slot *s)
{
	struct waiter *w = (struct waiter *)s;

	w->order = ++go_count;
	TAP_CHECK(s->held && !s->queued);
	if (w->drop_at_once)
		tls_slot_drop(w->t, s);
}

static void test_handshake_slots(void)
{
	struct tls *t = new_tls();
	struct waiter *w = calloc(SLOTS + 4, sizeof *w);

	TAP_CHECK(w != NULL);
	if (w == NULL)
		return;
	for (int i = 0; i < SLOTS + 4; i++) {
		w[i].t = t;
		w[i].slot.go = waiter_go;
	}
	/* The first SLOTS take one at once, the rest queue. */
	for (int i = 0; i < SLOTS; i++)
		TAP_CHECK(tls_slot_take(t, &w[i].slot));
	for (int i = SLOTS; i < SLOTS + 4; i++)
		TAP_CHECK(!tls_slot_take(t, &w[i].slot));
	TAP_CHECK(tls_slots_held(t) == SLOTS && tls_slots_queued(t) == 4);
	/* Leaving the queue: no slot, no go. */
	tls_slot_drop(t, &w[SLOTS + 1].slot);
	TAP_CHECK(!w[SLOTS + 1].slot.queued && tls_slots_queued(t) == 3);
	/* A dropped slot goes to the first in the queue; one whose go gives
	 * it straight back hands it on to the next within the same drop. */
	w[SLOTS].drop_at_once = true;
	tls_slot_drop(t, &w[0].slot);
	TAP_CHECK(w[SLOTS].order == 1 && w[SLOTS + 2].order == 2);
	TAP_CHECK(w[SLOTS + 1].order == 0 && w[SLOTS + 3].order == 0);
	TAP_CHECK(w[SLOTS + 2].slot.held && !w[SLOTS].slot.held);
	TAP_CHECK(tls_slots_held(t) == SLOTS && tls_slots_queued(t) == 1);
	/* Dropping what holds nothing does nothing. */
	tls_slot_drop(t, &w[0].slot);
	TAP_CHECK(tls_slots_held(t) == SLOTS);
	/* The last in the queue (its tail) leaves, then a new one queues
	 * behind nobody and is served first. */
	tls_slot_drop(t, &w[SLOTS + 3].slot);
	TAP_CHECK(tls_slots_queued(t) == 0);
	TAP_CHECK(!tls_slot_take(t, &w[SLOTS + 1].slot));
	tls_slot_drop(t, &w[1].slot);
	TAP_CHECK(w[SLOTS + 1].order == 3 && tls_slots_queued(t) == 0);
	for (int i = 0; i < SLOTS + 4; i++)
		tls_slot_drop(t, &w[i].slot);
	TAP_CHECK(tls_slots_held(t) == 0 && tls_slots_queued(t) == 0);
	free(w);
	tls_free(t);
}

static const struct tap_test tests[] = {
    {"TLS 1.2 session shared", test_tls12_shared},
    {"TLS 1.3 tickets used once, newest first", test_tls13_single_use},
    {"tickets per key follow max_per_host, bounded", test_sessions_per_key},
    {"expired sessions skipped", test_expired_skipped},
    {"expired keys swept as the cache is used", test_sweep_on_touch},
    {"keys bounded, least recently used evicted", test_keys_bounded},
    {"SSL: release buffers, cached session offered", test_ssl_new},
    {"handshake slots: bounded, first come first served", test_handshake_slots},
    {NULL, NULL},
};

/* Run the table. */
int main(void)
{
	return tap_main(tests);
}

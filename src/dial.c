/* Happy Eyeballs connection attempts: see dial.h. */
#include "dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "conn.h"
#include "log.h"
#include "util.h"

/* Each address gets at most one attempt, in address order. */
enum dial_attempt_state {
	ATTEMPT_WAITING, /* earlier addresses still have their time */
	ATTEMPT_CONNECTING,
	ATTEMPT_FAILED, /* failed, or closed because another one won */
	ATTEMPT_WON,	/* its connection went to the receiver */
};

static const char *const dial_attempt_state_names[] = {"waiting", "connecting",
						       "failed", "won"};

struct dial_attempt {
	struct dial *dl;
	enum dial_attempt_state state;
	struct conn *conn; /* non-NULL exactly while connecting */
	int64_t start_ms;
	union dns_sockaddr addr; /* with the port */
	socklen_t len;
};

/* One race.  att[i] is the attempt on the i-th address: those before `next`
 * have started (and may have ended), the others wait; in_flight counts
 * the connecting ones.  The caller owns the dial until it cancels it or
 * its callback runs (the dial frees itself just before). */
struct dial {
	struct conn_pool *pool;
	const char *key;
	bool tls;
	bool failed; /* found in dial_start(): reported from the timer */
	int next;
	int in_flight;
	int err;    /* errno of the last attempt that failed */
	int fd_err; /* EMFILE or ENFILE once a socket could not be made */
	struct event timer; /* the attempt delay */
	dial_cb cb;
	void *arg;
	int n; /* addresses */
	struct dial_attempt att[]; /* as many: most names have one */
};

static void dial_event_cb(struct bufferevent *bev, short what, void *arg);

/* Address i as text, for the debug log. */
static const char *dial_addr_text(const struct dial *dl, int i, char *buf,
				  size_t size)
{
	const union dns_sockaddr *a = &dl->att[i].addr;
	const void *p = a->sa.sa_family == AF_INET6
			    ? (const void *)&a->in6.sin6_addr
			    : (const void *)&a->in.sin_addr;

	if (inet_ntop(a->sa.sa_family, p, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

static void dial_set_state(struct dial *dl, int i, enum dial_attempt_state s)
{
	struct dial_attempt *a = &dl->att[i];
	char buf[INET6_ADDRSTRLEN];

	/* Forward only, and an attempt wins only from connecting. */
	if (s <= a->state ||
	    (s == ATTEMPT_WON && a->state != ATTEMPT_CONNECTING))
		log_error("dial %s: bad transition %s -> %s", dl->key,
			  dial_attempt_state_names[a->state],
			  dial_attempt_state_names[s]);
	log_debug("dial %s: %s: %s -> %s", dl->key,
		  dial_addr_text(dl, i, buf, sizeof buf),
		  dial_attempt_state_names[a->state],
		  dial_attempt_state_names[s]);
	a->state = s;
}

/* Start the attempt on address i; false (with dl->err set) when it failed
 * at once. */
static bool dial_attempt_start(struct dial *dl, int i)
{
	struct dial_attempt *a = &dl->att[i];

	a->start_ms = util_mono_ms();
	a->conn = conn_new(dl->pool, dl->key, dl->tls);
	if (a->conn == NULL) {
		dl->err = ENOMEM;
	} else if (conn_connect(a->conn, &dl->att[i].addr.sa,
				dl->att[i].len, NULL, dial_event_cb,
				a) != 0) {
		dl->err = errno;
		conn_release(a->conn, false);
		a->conn = NULL;
	} else {
		dl->in_flight++;
		dial_set_state(dl, i, ATTEMPT_CONNECTING);
		return true;
	}
	dial_set_state(dl, i, ATTEMPT_FAILED);
	return false;
}

/* Close a connecting attempt (also inside its own bufferevent callback,
 * which libevent 2.1 allows: see conn_release). */
static void dial_attempt_close(struct dial *dl, int i)
{
	struct dial_attempt *a = &dl->att[i];

	conn_release(a->conn, false);
	a->conn = NULL;
	dl->in_flight--;
	dial_set_state(dl, i, ATTEMPT_FAILED);
}

/* Time the attempt delay: ms more of it. */
static void dial_arm_timer(struct dial *dl, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
			     (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(&dl->timer, &tv);
}

/* Start attempts on the next addresses until one is under way, skipping
 * those that fail at once, and time the delay before the one after it.
 * False when the dial can no longer succeed: no attempt in flight and none
 * that can still start. */
static bool dial_try_next(struct dial *dl)
{
	event_del(&dl->timer);
	/* Out of descriptors, the other addresses would fail the same way:
	 * let the attempts in flight finish, start no more. */
	while (dl->fd_err == 0 && dl->next < dl->n) {
		int i = dl->next++;

		if (dial_attempt_start(dl, i)) {
			if (dl->next < dl->n)
				dial_arm_timer(dl, DIAL_ATTEMPT_DELAY_MS);
			return true;
		}
		if (dl->err == EMFILE || dl->err == ENFILE)
			dl->fd_err = dl->err;
	}
	return dl->in_flight > 0;
}

static void dial_free(struct dial *dl)
{
	for (int i = 0; i < dl->next; i++)
		if (dl->att[i].state == ATTEMPT_CONNECTING)
			dial_attempt_close(dl, i);
	event_del(&dl->timer);
	free(dl);
}

/* Attempt i connected: close the others and hand its connection over. */
static void dial_win(struct dial *dl, int i)
{
	struct dial_attempt *a = &dl->att[i];
	struct dial_result res = {0};
	dial_cb cb = dl->cb;
	void *arg = dl->arg;

	res.conn = a->conn;
	res.addr = dl->att[i].addr;
	res.connect_ms = util_mono_ms() - a->start_ms;
	/* No event reaches the dial once it is freed; the receiver sets its
	 * own callbacks. */
	conn_set_cbs(a->conn, NULL, NULL, NULL);
	a->conn = NULL;
	dl->in_flight--;
	dial_set_state(dl, i, ATTEMPT_WON);
	dial_free(dl);
	cb(arg, &res);
}

/* Every address failed (or could not be tried for lack of descriptors). */
static void dial_fail(struct dial *dl)
{
	struct dial_result res = {0};
	dial_cb cb = dl->cb;
	void *arg = dl->arg;

	res.err = dl->fd_err != 0 ? dl->fd_err : dl->err;
	dial_free(dl);
	cb(arg, &res);
}

/* An attempt's connect finished, one way or the other. */
static void dial_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dial_attempt *a = arg;
	struct dial *dl = a->dl;
	int i = (int)(a - dl->att);
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		dial_win(dl, i);
		return;
	}
	dl->err = err != 0 ? err : EIO;
	dial_attempt_close(dl, i);
	/* A failure does not wait for the delay: the next address starts
	 * now. */
	if (!dial_try_next(dl))
		dial_fail(dl);
}

/* The attempt delay ran out with no connection yet: start the next
 * address.  Also reports a failure found in dial_start(). */
static void dial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial *dl = arg;

	(void)fd;
	(void)what;
	if (!dl->failed && dl->next > 0) {
		/* The delay counts on our clock, the one connect_ms and
		 * elapsed_ms are measured on: libevent's timer was seen to
		 * fire 247 ms after the attempt started (a sanitizer build
		 * on a loaded machine).  What is left is waited again. */
		int64_t left = dl->att[dl->next - 1].start_ms +
			       DIAL_ATTEMPT_DELAY_MS - util_mono_ms();

		if (left > 0) {
			log_debug("dial %s: the attempt delay has %lld ms "
				  "left",
				  dl->key, (long long)left);
			dial_arm_timer(dl, left);
			return;
		}
	}
	if (dl->failed || !dial_try_next(dl))
		dial_fail(dl);
}

struct dial *dial_start(struct event_base *base, struct conn_pool *pool,
			const char *key, bool tls,
			const struct dns_addrs *addrs, uint16_t port,
			dial_cb cb, void *arg)
{
	struct dial *dl = xcalloc(1, sizeof *dl + (size_t)addrs->n *
						      sizeof dl->att[0]);

	dl->pool = pool;
	dl->key = key;
	dl->tls = tls;
	dl->cb = cb;
	dl->arg = arg;
	dl->n = addrs->n;
	for (int i = 0; i < dl->n; i++) {
		union dns_sockaddr *sa = &dl->att[i].addr;

		*sa = addrs->addr[i];
		dl->att[i].len = addrs->len[i];
		if (sa->sa.sa_family == AF_INET)
			sa->in.sin_port = htons(port);
		else
			sa->in6.sin6_port = htons(port);
		dl->att[i].dl = dl;
	}
	evtimer_assign(&dl->timer, base, dial_timer_cb, dl);
	if (!dial_try_next(dl)) {
		/* Every address failed at once: the caller hears it from
		 * the loop, not inside this call. */
		dl->failed = true;
		event_active(&dl->timer, EV_TIMEOUT, 0);
	}
	return dl;
}

void dial_cancel(struct dial *dl)
{
	if (dl != NULL)
		dial_free(dl);
}

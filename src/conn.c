/* Connections and keep-alive pool: see conn.h. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "map.h"
#include "tls.h"
#include "util.h"

struct conn {
	TAILQ_ENTRY(conn) link; /* in its idle list while idle */
	TAILQ_ENTRY(conn) lru;  /* in the pool's list of all idle ones */
	TAILQ_ENTRY(conn) tls_link; /* in the pool's TLS list while tls_active */
	struct conn_pool *pool;
	struct conn_idle *idle; /* non-NULL while idle */
	struct bufferevent *bev;
	/* Plain TCP once watched (conn_watch): the socket's readability, and
	 * who is told.  The bufferevent then no longer reads. */
	struct event *rev;
	conn_io_cb io_cb;
	void *io_arg;
	struct http_resp *parser;
	unsigned uses;
	char peer[46];   /* the server's address, as text */
	bool tls;        /* TLS runs (or will run) on this connection */
	bool tls_active; /* bev is the OpenSSL bufferevent */
	char key[];
};
TAILQ_HEAD(conn_list, conn);

struct conn_idle {
	struct conn_list conns;
	size_t n;
	char *key;
};

struct conn_pool {
	struct event_base *base;
	struct map *idle; /* key -> struct conn_idle */
	struct conn_list lru; /* every idle connection, oldest first */
	size_t n_idle;
	size_t max_idle;
	int idle_ms;
	unsigned long opened;
	unsigned long reused; /* requests sent on a pooled connection */
	struct conn_list tls_conns; /* every connection with OpenSSL's bev */
	struct event *ev_trim;      /* conn_trim_cb, armed while there are */
};

/* How often OpenSSL's read buffers are taken back from TLS connections
 * that wait (see conn_trim_cb). */
#define CONN_TRIM_MS 200

/* OpenSSL's read buffer (~17 KiB) outlived SSL_MODE_RELEASE_BUFFERS
 * here: heaptrack counted one allocation per connection for 100,000
 * responses over 10,000 connections, and 143 MB of them held while the
 * connections waited for answers (the mode frees the buffer only on paths
 * that libevent's reads, which stop when SSL_read has nothing more, do not
 * reliably take; the session tickets servers send after the handshake are
 * read that way).  So the pool takes the buffers back itself: from a
 * connection going idle, and every CONN_TRIM_MS from connections with no
 * unread bytes.  OpenSSL allocates again for the next record. */
static void conn_trim_arm(struct conn_pool *p)
{
	struct timeval tv = {0, CONN_TRIM_MS * 1000};

	event_add(p->ev_trim, &tv);
}

/* Give back what a TLS connection holds for reading while nothing waits
 * to be read: OpenSSL's record buffer, and libevent's.  libevent's TLS
 * reads reserve a chain in the input buffer (4 KiB asked, 8 KiB given)
 * before each SSL_read and keep it when the read brings nothing (a session
 * ticket, a partial record): an empty chain on every connection waiting
 * for its answer.  An evbuffer frees its chains when drained to empty, not
 * when it already is; so one byte goes in and out. */
static void conn_trim_tls(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (!SSL_is_init_finished(ssl) || SSL_has_pending(ssl))
		return;
	SSL_free_buffers(ssl); /* declines if bytes wait */
	if (evbuffer_get_length(in) == 0 && evbuffer_add(in, "", 1) == 0)
		evbuffer_drain(in, 1);
}

static void conn_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_pool *p = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(c, &p->tls_conns, tls_link)
		conn_trim_tls(c);
	if (!TAILQ_EMPTY(&p->tls_conns))
		conn_trim_arm(p);
}

struct conn_pool *conn_pool_new(struct event_base *base)
{
	struct conn_pool *p = xcalloc(1, sizeof *p);

	p->idle = map_new();
	p->base = base;
	p->idle_ms = 30000;
	p->max_idle = 64;
	TAILQ_INIT(&p->lru);
	TAILQ_INIT(&p->tls_conns);
	p->ev_trim = evtimer_new(base, conn_trim_cb, p);
	if (p->ev_trim == NULL)
		util_oom();
	return p;
}

/* Free the bufferevent.  Before TLS starts, the socket bufferevent of a
 * TLS connection does not own its fd (the OpenSSL one takes it over), so
 * the fd is closed here. */
static void conn_drop_bev(struct conn *c)
{
	if (c->bev == NULL)
		return;
	if (c->tls && !c->tls_active) {
		evutil_socket_t fd = bufferevent_getfd(c->bev);

		bufferevent_free(c->bev);
		if (fd >= 0)
			evutil_closesocket(fd);
	} else {
		SSL *ssl = c->tls_active ? bufferevent_openssl_get_ssl(c->bev)
					 : NULL;

		/* OpenSSL invalidates the session of an SSL freed without a
		 * shutdown, which would end resumption for the host; a
		 * connection that finished its handshake closes quietly. */
		if (ssl != NULL && SSL_is_init_finished(ssl))
			SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN |
						      SSL_RECEIVED_SHUTDOWN);
		bufferevent_free(c->bev); /* frees the SSL too */
		if (c->tls_active)
			TAILQ_REMOVE(&c->pool->tls_conns, c, tls_link);
	}
	c->bev = NULL;
	c->tls_active = false;
}

static void conn_close(struct conn *c)
{
	if (c->rev != NULL)
		event_free(c->rev);
	conn_drop_bev(c);
	http_resp_free(c->parser);
	free(c);
}

/* Remove an idle connection from its list (dropping an empty list). */
static void conn_unidle(struct conn *c)
{
	struct conn_idle *il = c->idle;
	struct conn_pool *p = c->pool;

	TAILQ_REMOVE(&il->conns, c, link);
	TAILQ_REMOVE(&p->lru, c, lru);
	il->n--;
	p->n_idle--;
	c->idle = NULL;
	if (il->n == 0) {
		map_del(p->idle, il->key);
		free(il->key);
		free(il);
	}
}

static void conn_idle_free(void *v)
{
	struct conn_idle *il = v;
	struct conn *c;

	while ((c = TAILQ_FIRST(&il->conns)) != NULL) {
		TAILQ_REMOVE(&il->conns, c, link);
		conn_close(c);
	}
	free(il->key);
	free(il);
}

void conn_pool_free(struct conn_pool *p)
{
	if (p == NULL)
		return;
	map_free(p->idle, conn_idle_free);
	event_free(p->ev_trim);
	free(p);
}

void conn_pool_set_idle_ms(struct conn_pool *p, int ms)
{
	p->idle_ms = ms;
}

void conn_pool_set_max_idle(struct conn_pool *p, size_t n)
{
	p->max_idle = n;
	while (p->n_idle > p->max_idle) {
		struct conn *c = TAILQ_FIRST(&p->lru);

		conn_unidle(c);
		conn_close(c);
	}
}

size_t conn_pool_close_idle(struct conn_pool *p)
{
	size_t n = p->n_idle;
	struct conn *c;

	while ((c = TAILQ_FIRST(&p->lru)) != NULL) {
		conn_unidle(c);
		conn_close(c);
	}
	return n;
}

void conn_pool_linger(struct conn_pool *p, const char *key, int ms)
{
	struct conn_idle *il = map_get(p->idle, key);
	struct conn *c;

	if (il == NULL || ms >= p->idle_ms)
		return;
	TAILQ_FOREACH(c, &il->conns, link) {
		if (c->rev != NULL) {
			if (conn_watch(c, ms, c->io_cb, c->io_arg) != 0)
				continue; /* keeps its longer timeout */
		} else {
			struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

			bufferevent_set_timeouts(c->bev, &tv, NULL);
		}
	}
}

void conn_pool_close_key(struct conn_pool *p, const char *key)
{
	struct conn_idle *il;

	/* conn_unidle frees the list with its last connection. */
	while ((il = map_get(p->idle, key)) != NULL) {
		struct conn *c = TAILQ_FIRST(&il->conns);

		conn_unidle(c);
		conn_close(c);
	}
}

size_t conn_pool_idle_count(const struct conn_pool *p)
{
	return p->n_idle;
}

unsigned long conn_pool_reused(const struct conn_pool *p)
{
	return p->reused;
}

unsigned long conn_pool_opened(const struct conn_pool *p)
{
	return p->opened;
}

/* A taken connection's socket event before its new owner watches it:
 * nothing happens in between (no dispatch), but should it, stop. */
static void conn_unowned_cb(struct conn *c, short what, void *arg)
{
	(void)what;
	(void)arg;
	event_del(c->rev);
}

struct conn *conn_pool_take(struct conn_pool *p, const char *key)
{
	struct conn_idle *il;
	struct conn *c;

	/* Most recently used first: the least likely to have been closed
	 * by the server's own keep-alive timeout.  A connection whose idle
	 * time ran out in this turn of the loop, its callback (the close)
	 * not run yet, is closed here instead: libevent has taken its socket
	 * out of epoll, and adding the event again while the timeout is
	 * active would not put it back (the response would never be read). */
	for (;;) {
		if ((il = map_get(p->idle, key)) == NULL)
			return NULL;
		c = TAILQ_LAST(&il->conns, conn_list);
		conn_unidle(c);
		if (c->rev == NULL || event_pending(c->rev, EV_READ, NULL))
			break;
		conn_close(c);
	}
	p->reused++;
	if (c->rev != NULL) {
		c->io_cb = conn_unowned_cb; /* until the owner watches it */
	} else {
		/* TLS: the same timeout may be active here, in libevent's
		 * read event of the bufferevent, which this code cannot see;
		 * reading stops (the event leaves epoll and the active list)
		 * and the owner's bufferevent_enable adds it afresh. */
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_set_timeouts(c->bev, NULL, NULL);
	}
	return c;
}

struct conn *conn_new(struct conn_pool *p, const char *key, bool tls)
{
	size_t klen = strlen(key);
	struct conn *c = xcalloc(1, sizeof *c + klen + 1);

	c->pool = p;
	c->tls = tls;
	memcpy(c->key, key, klen + 1);
	return c;
}

int conn_connect(struct conn *c, const struct sockaddr *addr, socklen_t len,
		 bufferevent_data_cb readcb, bufferevent_event_cb eventcb,
		 void *arg)
{
	evutil_socket_t fd;
	int err;

	conn_drop_bev(c);
	/* The connect() is ours, not bufferevent_socket_connect()'s: when a
	 * connect fails at once with anything but a refusal, libevent 2.1
	 * runs the event callback inside that call, so the owner would be
	 * re-entered before it even knew the attempt had started.  Here an
	 * error at once is only ever returned. */
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0)
		return -1;
	if (connect(fd, addr, len) != 0 && errno != EINPROGRESS &&
	    errno != EINTR)
		goto fail;
	c->bev = bufferevent_socket_new(c->pool->base, fd,
					c->tls ? 0 : BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	/* The callbacks are in place before libevent watches the socket,
	 * and with no address it only waits for the connect in progress:
	 * the outcome (BEV_EVENT_CONNECTED or BEV_EVENT_ERROR with the
	 * socket's error in errno) always comes from the loop. */
	bufferevent_setcb(c->bev, readcb, NULL, eventcb, arg);
	if (bufferevent_socket_connect(c->bev, NULL, 0) != 0) {
		conn_drop_bev(c); /* closes fd */
		errno = EIO;
		return -1;
	}
	c->pool->opened++;
	return 0;
fail:
	err = errno;
	evutil_closesocket(fd);
	errno = err;
	return -1;
}

int conn_start_tls(struct conn *c, struct tls *t, const char *host,
		   bool is_ip, bufferevent_data_cb readcb,
		   bufferevent_event_cb eventcb, void *arg)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	SSL *ssl = tls_ssl_new(t, host, is_ip, c->key);
	struct bufferevent *bev;

	if (ssl == NULL)
		return -1;
	bev = bufferevent_openssl_socket_new(c->pool->base, fd, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_setcb(bev, readcb, NULL, eventcb, arg);
	/* The plain bufferevent does not own the fd: freeing it (safe even
	 * inside its own callback) leaves the socket to the new one. */
	bufferevent_free(c->bev);
	c->bev = bev;
	c->tls_active = true;
	if (TAILQ_EMPTY(&c->pool->tls_conns))
		conn_trim_arm(c->pool);
	TAILQ_INSERT_TAIL(&c->pool->tls_conns, c, tls_link);
	return 0;
}

SSL *conn_ssl(struct conn *c)
{
	return c->tls_active ? bufferevent_openssl_get_ssl(c->bev) : NULL;
}

void conn_set_cbs(struct conn *c, bufferevent_data_cb readcb,
		  bufferevent_event_cb eventcb, void *arg)
{
	bufferevent_setcb(c->bev, readcb, NULL, eventcb, arg);
}

struct bufferevent *conn_bev(struct conn *c)
{
	return c->bev;
}

static void conn_io_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	c->io_cb(c, what, c->io_arg);
}

int conn_watch(struct conn *c, int timeout_ms, conn_io_cb cb, void *arg)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	if (c->rev == NULL) {
		c->rev = event_new(c->pool->base, bufferevent_getfd(c->bev),
				   EV_READ | EV_PERSIST, conn_io_event_cb, c);
		if (c->rev == NULL)
			return -1;
		bufferevent_disable(c->bev, EV_READ);
	}
	c->io_cb = cb;
	c->io_arg = arg;
	/* On a pending event this only moves its timeout. */
	return event_add(c->rev, &tv);
}

void conn_unwatch(struct conn *c)
{
	if (c->rev != NULL)
		event_del(c->rev);
}

ssize_t conn_read(struct conn *c, void *buf, size_t size)
{
	ssize_t n;

	do
		n = recv(bufferevent_getfd(c->bev), buf, size, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

int conn_write(struct conn *c, const void *buf, size_t len)
{
	struct bufferevent *bev = c->bev;
	size_t off = 0;

	/* On plain TCP with nothing queued (always, for a new request) send
	 * at once: the socket is nearly always writable, and this spares the
	 * evbuffer copy and two epoll_ctl calls (adding and removing the
	 * write event). */
	if (!c->tls_active && evbuffer_get_length(bufferevent_get_output(bev)) ==
				      0) {
		ssize_t n;

		do
			n = send(bufferevent_getfd(bev), buf, len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		off = n > 0 ? (size_t)n : 0;
	}
	if (bufferevent_write(bev, (const char *)buf + off, len - off) != 0 ||
	    bufferevent_enable(bev, EV_WRITE) != 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

struct http_resp *conn_parser(struct conn *c, size_t max_header_bytes,
			      uint64_t max_body_bytes)
{
	if (c->parser == NULL)
		c->parser = http_resp_new(max_header_bytes, max_body_bytes);
	else
		http_resp_reset(c->parser, max_header_bytes, max_body_bytes);
	return c->parser;
}

void conn_set_peer(struct conn *c, const struct sockaddr *addr)
{
	const void *p = addr->sa_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)
							  addr)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)
							  addr)->sin_addr;

	if (inet_ntop(addr->sa_family, p, c->peer, sizeof c->peer) == NULL)
		c->peer[0] = '\0';
}

const char *conn_peer(const struct conn *c)
{
	return c->peer;
}

unsigned conn_uses(const struct conn *c)
{
	return c->uses;
}

/* Anything on an idle connection (data, EOF, error, idle timeout) ends
 * it: a server does not speak first in HTTP/1.1. */
static void conn_idle_io_cb(struct conn *c, short what, void *arg)
{
	(void)what;
	(void)arg;
	conn_unidle(c);
	conn_close(c);
}

static void conn_idle_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	log_debug("closing idle connection %s: unexpected data", c->key);
	conn_unidle(c);
	conn_close(c);
}

static void conn_idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	(void)what;
	conn_unidle(c);
	conn_close(c);
}

void conn_release(struct conn *c, bool reusable)
{
	struct conn_pool *p = c->pool;
	struct conn_idle *il;

	if (!reusable || c->bev == NULL) {
		conn_close(c);
		return;
	}
	il = map_get(p->idle, c->key);
	if (il == NULL) {
		il = xcalloc(1, sizeof *il);
		il->key = xstrdup(c->key);
		map_put(p->idle, c->key, il);
		TAILQ_INIT(&il->conns);
	}
	if (c->tls_active) /* nothing to read while idle */
		conn_trim_tls(c);
	if (c->parser != NULL)
		http_resp_trim(c->parser);
	c->uses++;
	c->idle = il;
	TAILQ_INSERT_TAIL(&il->conns, c, link);
	TAILQ_INSERT_TAIL(&p->lru, c, lru);
	il->n++;
	p->n_idle++;
	if (c->rev != NULL) {
		/* Only the callback and the timeout change: no epoll call. */
		if (conn_watch(c, p->idle_ms, conn_idle_io_cb, NULL) != 0) {
			conn_unidle(c);
			conn_close(c);
			return;
		}
	} else {
		struct timeval tv = {p->idle_ms / 1000,
				     (p->idle_ms % 1000) * 1000};

		bufferevent_setcb(c->bev, conn_idle_read_cb, NULL,
				  conn_idle_event_cb, c);
		bufferevent_set_timeouts(c->bev, &tv, NULL);
		bufferevent_enable(c->bev, EV_READ);
	}
	/* Bound the descriptors held by idle connections (main.c sizes the
	 * cap from the descriptor limit). */
	if (p->n_idle > p->max_idle) {
		struct conn *old = TAILQ_FIRST(&p->lru);

		conn_unidle(old);
		conn_close(old);
	}
}

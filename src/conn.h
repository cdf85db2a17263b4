/* Connections and the keep-alive pool, keyed by (scheme, host, port).
 * A connection is owned either by one fetch (active) or by the pool (idle);
 * an idle connection that the server closes, or that sends anything, or
 * that stays unused for the idle timeout, is closed by the pool. */
#ifndef GATHERD_CONN_H
#define GATHERD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

struct event_base;
struct conn_pool;
struct conn;
struct http_resp;
struct tls;

struct conn_pool *conn_pool_new(struct event_base *base);
/* Close every idle connection and free the pool (no active ones may be
 * left). */
void conn_pool_free(struct conn_pool *p);
/* How long an idle connection is kept. */
void conn_pool_set_idle_ms(struct conn_pool *p, int ms);
size_t conn_pool_idle_count(const struct conn_pool *p);
/* The idle connections of key close after `ms` (if that is sooner):
 * their server has no more work for now. */
void conn_pool_linger(struct conn_pool *p, const char *key, int ms);
/* Close the idle connections of key now (its server has no more work). */
void conn_pool_close_key(struct conn_pool *p, const char *key);
/* Keep at most n idle connections, closing the least recently used. */
void conn_pool_set_max_idle(struct conn_pool *p, size_t n);
/* Close every idle connection (out of descriptors); returns how many. */
size_t conn_pool_close_idle(struct conn_pool *p);
/* Connections opened since start (for stats and tests): sockets whose
 * connect started, so an attempt that loses a Happy Eyeballs race (dial.h)
 * counts too. */
unsigned long conn_pool_opened(const struct conn_pool *p);
/* Idle connections taken again from the pool since start. */
unsigned long conn_pool_reused(const struct conn_pool *p);

/* Take an idle connection for key, or NULL. */
struct conn *conn_pool_take(struct conn_pool *p, const char *key);

/* A new, unconnected connection for key; `tls` when TLS will run on it
 * (conn_start_tls after the TCP connect).  Never NULL. */
struct conn *conn_new(struct conn_pool *p, const char *key, bool tls);

/* Start connecting to addr (closing any previous socket of c), with the
 * connection's events going to the callbacks given: BEV_EVENT_CONNECTED or
 * BEV_EVENT_ERROR, always later from the loop.  Returns -1 with errno set,
 * and no callback ever runs, when the socket cannot even be created or the
 * connect fails at once (refused, unreachable, EMFILE). */
int conn_connect(struct conn *c, const struct sockaddr *addr, socklen_t len,
		 bufferevent_data_cb readcb, bufferevent_event_cb eventcb,
		 void *arg) __attribute__((warn_unused_result));

/* The TCP connection is up: start the TLS handshake on it, with its events
 * going to the callbacks given.  The next BEV_EVENT_CONNECTED means the
 * handshake finished. */
int conn_start_tls(struct conn *c, struct tls *t, const char *host,
		   bool is_ip, bufferevent_data_cb readcb,
		   bufferevent_event_cb eventcb,
		   void *arg) __attribute__((warn_unused_result));
/* The connection's SSL, or NULL for plain HTTP (or before TLS started). */
SSL *conn_ssl(struct conn *c);

/* Plain TCP: who is told, and with what, once a connection is watched. */
typedef void (*conn_io_cb)(struct conn *c, short what, void *arg);

/* Plain TCP, connected: from now on tell cb when the socket is readable
 * (what = EV_READ) or timeout_ms passed without it (EV_TIMEOUT), and read
 * with conn_read(); the bufferevent no longer reads.  Called again, it
 * only changes the callback and the timeout.  (libevent 2.1 reads at most
 * 4 KiB per call with a FIONREAD before each: reading the socket
 * directly takes one recv() per response instead of three or four system
 * calls.) */
int conn_watch(struct conn *c, int timeout_ms, conn_io_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* Stop telling the watcher (until conn_watch again): a reader that wants
 * no more bytes for now. */
void conn_unwatch(struct conn *c);

/* Read from a watched connection: the bytes read, 0 at EOF, -1 with errno
 * (EAGAIN when nothing is there). */
ssize_t conn_read(struct conn *c, void *buf, size_t size);

/* Send len bytes: at once on plain TCP when nothing is queued, the rest
 * (and everything on TLS) through the bufferevent.  -1 with errno on a
 * socket error. */
int conn_write(struct conn *c, const void *buf, size_t len)
	__attribute__((warn_unused_result));

/* Route the connection's bufferevent events to its owner. */
void conn_set_cbs(struct conn *c, bufferevent_data_cb readcb,
		  bufferevent_event_cb eventcb, void *arg);
struct bufferevent *conn_bev(struct conn *c);
/* The response parser of this connection, created with these limits on
 * first use and reset with them afterwards. */
struct http_resp *conn_parser(struct conn *c, size_t max_header_bytes,
			      uint64_t max_body_bytes);
/* The server's address (for the remote_ip column), set when the
 * connection is made; "" when unknown. */
void conn_set_peer(struct conn *c, const struct sockaddr *addr);
const char *conn_peer(const struct conn *c);

/* Requests completed on this connection before the current one. */
unsigned conn_uses(const struct conn *c);

/* Give the connection back: to the pool when reusable (one more use is
 * counted), else closed.  Safe inside the connection's own callbacks. */
void conn_release(struct conn *c, bool reusable);

#endif

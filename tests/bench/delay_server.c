/* delay_server: the benchmark's latency-bound HTTP/1.1 origin.
 *
 * It answers every request after a think time, the way a real site does
 * while it renders a page, so that a client's throughput is bounded by
 * in_flight / think time (Little's law) and not by the server's CPU.  The
 * think time is drawn uniformly from 0.8x..1.2x of the mean so connections
 * do not move in lock-step.
 *
 *   delay_server [--listen ADDR:PORT] [--tls-listen ADDR:PORT --cert PEM
 *                --key PEM] [--delay-ms MS] [--jitter F] [--len BYTES]
 *                [--port-file FILE] [--stats-file FILE]
 *
 * Per request, the query string may override the defaults: `?ms=250`
 * (mean think time) and `&len=5000` (body bytes).  /robots.txt is the
 * exception: a 404 at once, as a site with no robots.txt answers it from
 * its static files (only gatherd asks for it: the other tools do not fetch
 * robots.txt, so its think time would be a cost only gatherd pays, once
 * per host, that a real site does not charge).  Responses carry a
 * Content-Length and keep the connection alive unless the client asked
 * for `Connection: close` (or spoke HTTP/1.0 without keep-alive).  Once
 * listening, "PLAIN_PORT TLS_PORT\n" is written to --port-file (0 for a
 * listener not asked for).  --stats-file is rewritten every second with
 * "accepted open peak_open requests tls_handshakes tls_resumed".  SIGTERM or
 * SIGINT stops it; the final counts go to stderr.
 *
 * One thread, bufferevents for plain and TLS alike; a connection costs a
 * struct, a bufferevent and its (mostly empty) buffers, so tens of
 * thousands of them are cheap.  Bodies are added by reference to one
 * shared buffer, never copied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* A request head longer than this is refused (the connection closed):
 * real clients send well under 2 KiB. */
#define DS_MAX_HEAD 16384
#define DS_MAX_LEN  (16 * 1024 * 1024)

struct ds_server {
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	unsigned delay_ms;
	double jitter;
	size_t default_len;
	char *body; /* body_size bytes; every response references a prefix */
	size_t body_size;
	uint64_t rng;
	const char *stats_file;
	unsigned long accepted, open, peak_open, requests, handshakes, resumed;
};

/* One client connection.  Owned by the server loop; freed when the client
 * goes away or after a `Connection: close` response is flushed.  While
 * `busy`, a request is waiting for its timer and further input stays in
 * the input buffer (clients do not pipeline, but one that does is served
 * in order). */
struct ds_conn {
	struct ds_server *srv;
	struct bufferevent *bev;
	struct event timer;
	size_t len;
	bool busy;
	bool head_only;
	bool not_found; /* /robots.txt */
	bool close_after;
	bool closing;
	bool tls;
	bool tls_done;
};

static volatile sig_atomic_t ds_stop;

/* xorshift64*: cheap, and good enough to spread think times. */
static double ds_rand01(struct ds_server *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 2685821657736338717ULL) >> 11) /
	       (double)(1ULL << 53);
}

/* Close a connection and forget it. */
static void ds_conn_free(struct ds_conn *c)
{
	struct ds_server *s = c->srv;

	if (event_initialized(&c->timer))
		event_del(&c->timer);
	/* libevent holds its own reference while a callback runs, so freeing
	 * the bufferevent from inside one of its callbacks is safe; nothing
	 * touches c afterwards. */
	bufferevent_free(c->bev);
	s->open--;
	free(c);
}

/* Value of query parameter NAME in the query string Q (up to END), or -1
 * when it is absent or not a plain decimal number. */
static long ds_query_num(const char *q, const char *end, const char *name)
{
	size_t nl = strlen(name);

	while (q != NULL && q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp != NULL ? amp : end;

		if ((size_t)(stop - q) > nl && memcmp(q, name, nl) == 0 &&
		    q[nl] == '=') {
			long v = 0;
			const char *p = q + nl + 1;

			if (p == stop)
				return -1;
			for (; p < stop; p++) {
				if (*p < '0' || *p > '9' || v > 100000000)
					return -1;
				v = v * 10 + (*p - '0');
			}
			return v;
		}
		q = amp != NULL ? amp + 1 : NULL;
	}
	return -1;
}

/* Case-insensitive search for a header line "NAME: ...VALUE..." in the
 * head; only what keep-alive needs, not a general header parser. */
static bool ds_header_has(const char *head, size_t n, const char *name,
			  const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	const char *p = memchr(head, '\n', n);

	while (p != NULL && (size_t)(p + 1 - head) < n) {
		const char *line = p + 1;
		const char *eol = memchr(line, '\n', n - (size_t)(line - head));

		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nl &&
		    strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			for (const char *v = line + nl + 1; v + vl <= eol; v++)
				if (strncasecmp(v, value, vl) == 0)
					return true;
		}
		p = eol;
	}
	return false;
}

static void ds_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Take one complete request from the input, if there is one, and start
 * its think time.  Returns false when the connection must be dropped. */
static bool ds_conn_take_request(struct ds_conn *c)
{
	struct ds_server *s = c->srv;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end;
	size_t n;
	const char *head, *sp1, *sp2, *q;
	long ms, len;
	double mean;
	struct timeval tv;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		return evbuffer_get_length(in) <= DS_MAX_HEAD;
	n = (size_t)end.pos + 4;
	if (n > DS_MAX_HEAD)
		return false;
	head = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	sp1 = memchr(head, ' ', n);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - head))
			  : NULL;
	if (sp2 == NULL)
		return false;
	c->head_only = (sp1 - head == 4 && memcmp(head, "HEAD", 4) == 0);
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (q != NULL)
		q++;
	c->not_found = (size_t)((q != NULL ? q - 1 : sp2) - (sp1 + 1)) == 11 &&
		       memcmp(sp1 + 1, "/robots.txt", 11) == 0;
	ms = ds_query_num(q, sp2, "ms");
	len = ds_query_num(q, sp2, "len");
	c->len = len >= 0 ? (size_t)len : s->default_len;
	if (c->len > s->body_size)
		c->len = s->body_size;
	if (n - (size_t)(sp2 + 1 - head) >= 8 &&
	    memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
		c->close_after =
		    !ds_header_has(head, n, "connection", "keep-alive");
	else
		c->close_after = ds_header_has(head, n, "connection", "close");
	evbuffer_drain(in, n);

	mean = ms >= 0 ? (double)ms : (double)s->delay_ms;
	mean *= 1.0 - s->jitter + 2.0 * s->jitter * ds_rand01(s);
	if (c->not_found) {
		mean = 0.0;
		c->len = 0;
	}
	tv.tv_sec = (time_t)(mean / 1000.0);
	tv.tv_usec =
	    (suseconds_t)((mean - 1000.0 * (double)tv.tv_sec) * 1000.0);
	c->busy = true;
	evtimer_add(&c->timer, &tv);
	return true;
}

/* The think time is over: send the response, then serve the next request
 * if the client already sent one. */
static void ds_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ds_conn *c = arg;
	struct ds_server *s = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	(void)fd;
	(void)what;
	evbuffer_add_printf(out,
			    "HTTP/1.1 %s\r\n"
			    "Server: delay_server\r\n"
			    "Content-Type: text/html; charset=utf-8\r\n"
			    "Content-Length: %zu\r\n"
			    "Connection: %s\r\n\r\n",
			    c->not_found ? "404 Not Found" : "200 OK", c->len,
			    c->close_after ? "close" : "keep-alive");
	if (!c->head_only && c->len > 0)
		evbuffer_add_reference(out, s->body, c->len, NULL, NULL);
	s->requests++;
	c->busy = false;
	if (c->close_after) {
		c->closing = true;
		bufferevent_disable(c->bev, EV_READ);
		return; /* freed by ds_write_cb once flushed */
	}
	if (!ds_conn_take_request(c))
		ds_conn_free(c);
}

/* More request bytes: start a request unless one is already waiting. */
static void ds_read_cb(struct bufferevent *bev, void *arg)
{
	struct ds_conn *c = arg;

	(void)bev;
	if (c->busy || c->closing)
		return;
	if (!ds_conn_take_request(c))
		ds_conn_free(c);
}

/* Output flushed: a `Connection: close` response is complete now. */
static void ds_write_cb(struct bufferevent *bev, void *arg)
{
	struct ds_conn *c = arg;

	(void)bev;
	if (c->closing)
		ds_conn_free(c);
}

/* TLS handshake done (counted), or the client went away. */
static void ds_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ds_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->tls && !c->tls_done) {
			c->tls_done = true;
			c->srv->handshakes++;
			if (SSL_session_reused(
				bufferevent_openssl_get_ssl(bev)))
				c->srv->resumed++;
		}
		return;
	}
	ds_conn_free(c); /* EOF, reset or TLS failure */
}

/* A new client: wrap its socket (in TLS for the TLS listener) and wait
 * for its first request. */
static void ds_conn_new(struct ds_server *s, evutil_socket_t fd, bool tls)
{
	struct ds_conn *c = calloc(1, sizeof *c);
	int one = 1;

	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = s;
	c->tls = tls;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (tls) {
		SSL *ssl = SSL_new(s->ssl_ctx);

		if (ssl == NULL) {
			evutil_closesocket(fd);
			free(c);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(
		    s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev =
		    bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	evtimer_assign(&c->timer, s->base, ds_timer_cb, c);
	bufferevent_setcb(c->bev, ds_read_cb, ds_write_cb, ds_event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	s->accepted++;
	if (++s->open > s->peak_open)
		s->peak_open = s->open;
}

/* The listeners differ only in whether TLS runs on the connection. */
static void ds_accept_plain_cb(struct evconnlistener *l, evutil_socket_t fd,
			       struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	ds_conn_new(arg, fd, false);
}

static void ds_accept_tls_cb(struct evconnlistener *l, evutil_socket_t fd,
			     struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	ds_conn_new(arg, fd, true);
}

/* Out of descriptors: say so once a second instead of once per retry;
 * libevent keeps the listener armed and accepts again when fds free up. */
static void ds_accept_error_cb(struct evconnlistener *l, void *arg)
{
	static time_t last;
	time_t now = time(NULL);

	(void)l;
	(void)arg;
	if (now != last) {
		last = now;
		fprintf(stderr, "delay_server: accept: %s\n", strerror(errno));
	}
}

/* One line of counters, in the order the header comment gives. */
static void ds_stats_write(struct ds_server *s, FILE *f)
{
	fprintf(f, "%lu %lu %lu %lu %lu %lu\n", s->accepted, s->open,
		s->peak_open, s->requests, s->handshakes, s->resumed);
}

/* Once a second: rewrite the stats file (atomically, by rename) and stop
 * when a signal asked for it. */
static void ds_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ds_server *s = arg;

	(void)fd;
	(void)what;
	if (ds_stop) {
		event_base_loopbreak(s->base);
		return;
	}
	if (s->stats_file != NULL) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof tmp, "%s.tmp", s->stats_file);
		f = fopen(tmp, "w");
		if (f != NULL) {
			ds_stats_write(s, f);
			if (fclose(f) == 0)
				rename(tmp, s->stats_file);
		}
	}
}

/* SIGTERM or SIGINT: leave the loop; main prints the counts. */
static void ds_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct ds_server *s = arg;

	(void)sig;
	(void)what;
	ds_stop = 1;
	event_base_loopbreak(s->base);
}

/* Listen on "ADDR:PORT" (IPv4); returns the listener or exits. */
static struct evconnlistener *ds_listen(struct ds_server *s, const char *spec,
					evconnlistener_cb cb, int *port)
{
	struct sockaddr_in sin;
	struct evconnlistener *l;
	socklen_t sl = sizeof sin;
	const char *colon = strrchr(spec, ':');
	char addr[64], *end;
	long p;

	/* By hand: evutil_parse_sockaddr_port refuses port 0 ("any"). */
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	p = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
	if (colon == NULL || (size_t)(colon - spec) >= sizeof addr ||
	    *end != '\0' || end == colon + 1 || p < 0 || p > 65535) {
		fprintf(stderr, "delay_server: bad address %s\n", spec);
		exit(2);
	}
	memcpy(addr, spec, (size_t)(colon - spec));
	addr[colon - spec] = '\0';
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "delay_server: bad address %s\n", spec);
		exit(2);
	}
	sin.sin_port = htons((uint16_t)p);
	l = evconnlistener_new_bind(
	    s->base, cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    65535, (struct sockaddr *)&sin, (int)sizeof sin);
	if (l == NULL) {
		fprintf(stderr, "delay_server: listen %s: %s\n", spec,
			strerror(errno));
		exit(1);
	}
	evconnlistener_set_error_cb(l, ds_accept_error_cb);
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin,
			&sl) != 0) {
		perror("delay_server: getsockname");
		exit(1);
	}
	*port = ntohs(sin.sin_port);
	return l;
}

/* The server context from the PEM files; exits when they do not load. */
static SSL_CTX *ds_tls_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "delay_server: TLS set-up failed:\n");
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	/* Like a web server: a session cache and tickets, so clients that
	 * resume (to the same host name) may. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 100000);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"ds", 2);
	return ctx;
}

/* The shared body: HTML-looking text, so clients that insist on a text
 * type (Crawlee, Scrapy) take it. */
static char *ds_make_body(size_t n)
{
	static const char start[] = "<!doctype html><html><body>\n";
	static const char unit[] =
	    "<p>gatherd benchmark delay server: lorem ipsum.</p>\n";
	char *b = malloc(n);
	size_t i = 0;

	if (b == NULL)
		return NULL;
	for (size_t k = 0; k < sizeof start - 1 && i < n; k++)
		b[i++] = start[k];
	while (i < n) {
		for (size_t k = 0; k < sizeof unit - 1 && i < n; k++)
			b[i++] = unit[k];
	}
	return b;
}

/* Bad command line: print the synopsis and exit 2. */
static void ds_usage(void)
{
	fputs("usage: delay_server [--listen ADDR:PORT] [--tls-listen "
	      "ADDR:PORT --cert PEM --key PEM]\n"
	      "       [--delay-ms MS] [--jitter F] [--len BYTES] "
	      "[--max-len BYTES]\n"
	      "       [--port-file FILE] [--stats-file FILE]\n",
	      stderr);
	exit(2);
}

/* Parse the flags, listen, report the ports, serve until a signal. */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"tls-listen", required_argument, NULL, 't'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"delay-ms", required_argument, NULL, 'd'},
	    {"jitter", required_argument, NULL, 'j'},
	    {"len", required_argument, NULL, 'n'},
	    {"max-len", required_argument, NULL, 'm'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"stats-file", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ds_server s;
	const char *listen = NULL, *tls_listen = NULL, *cert = NULL;
	const char *key = NULL, *port_file = NULL;
	int opt, port = 0, tls_port = 0;
	struct evconnlistener *l = NULL, *tl = NULL;
	struct event *tick, *sigterm, *sigint;
	struct timeval one_s = {1, 0};
	struct rlimit rl;

	memset(&s, 0, sizeof s);
	s.delay_ms = 100;
	s.jitter = 0.2;
	s.default_len = 1000;
	s.body_size = 1024 * 1024;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 't':
			tls_listen = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'd':
			s.delay_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'j':
			s.jitter = strtod(optarg, NULL);
			break;
		case 'n':
			s.default_len = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			s.body_size = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 's':
			s.stats_file = optarg;
			break;
		default:
			ds_usage();
		}
	}
	if (optind != argc || s.jitter < 0 || s.jitter >= 1 ||
	    s.body_size > DS_MAX_LEN || (tls_listen && (!cert || !key)))
		ds_usage();
	if (listen == NULL && tls_listen == NULL)
		listen = "127.0.0.1:0";
	if (s.default_len > s.body_size)
		s.default_len = s.body_size;
	/* Each held connection is a descriptor: take all the kernel allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	s.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
		0x9E3779B97F4A7C15ULL;
	s.body = ds_make_body(s.body_size);
	s.base = event_base_new();
	if (s.body == NULL || s.base == NULL) {
		fprintf(stderr, "delay_server: out of memory\n");
		return 1;
	}
	if (tls_listen != NULL)
		s.ssl_ctx = ds_tls_ctx(cert, key);
	if (listen != NULL)
		l = ds_listen(&s, listen, ds_accept_plain_cb, &port);
	if (tls_listen != NULL)
		tl = ds_listen(&s, tls_listen, ds_accept_tls_cb, &tls_port);
	if (port_file != NULL) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (f == NULL || fprintf(f, "%d %d\n", port, tls_port) < 0 ||
		    fclose(f) != 0 || rename(tmp, port_file) != 0) {
			perror("delay_server: port file");
			return 1;
		}
	} else {
		printf("%d %d\n", port, tls_port);
		fflush(stdout);
	}
	tick = event_new(s.base, -1, EV_PERSIST, ds_tick_cb, &s);
	sigterm = evsignal_new(s.base, SIGTERM, ds_signal_cb, &s);
	sigint = evsignal_new(s.base, SIGINT, ds_signal_cb, &s);
	event_add(tick, &one_s);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_base_dispatch(s.base);
	fprintf(stderr,
		"delay_server: accepted %lu open %lu peak_open %lu "
		"requests %lu tls_handshakes %lu tls_resumed %lu\n",
		s.accepted, s.open, s.peak_open, s.requests, s.handshakes,
		s.resumed);
	/* Connections still open are left to exit(): the process ends. */
	event_free(tick);
	event_free(sigterm);
	event_free(sigint);
	if (l != NULL)
		evconnlistener_free(l);
	if (tl != NULL)
		evconnlistener_free(tl);
	return 0;
}

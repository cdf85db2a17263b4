/* The Prometheus endpoint: see metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "util.h"

static const double metrics_bounds[METRICS_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1,     2.5,  5,     10,   20,  30,   60};

struct metrics {
	struct evhttp *http;
	metrics_collect_fn collect;
	metrics_health_fn health;
	void *arg;
};

void metrics_hist_observe(struct metrics_hist *h, int64_t ms)
{
	double s;

	if (ms < 0)
		return;
	s = (double)ms / 1000.0;
	for (int i = 0; i < METRICS_BUCKETS; i++)
		if (s <= metrics_bounds[i])
			h->count[i]++;
	h->n++;
	h->sum += s;
}

void metrics_family(struct evbuffer *b, const char *name, const char *type,
		    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

void metrics_sample(struct evbuffer *b, const char *name,
		    const char *labels, double value)
{
	if (labels != NULL && labels[0] != '\0')
		evbuffer_add_printf(b, "%s{%s} %.17g\n", name, labels, value);
	else
		evbuffer_add_printf(b, "%s %.17g\n", name, value);
}

void metrics_write_hist(struct evbuffer *b, const char *name,
			const char *help, const struct metrics_hist *h)
{
	metrics_family(b, name, "histogram", help);
	for (int i = 0; i < METRICS_BUCKETS; i++)
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
				    metrics_bounds[i],
				    (unsigned long long)h->count[i]);
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)h->n);
	evbuffer_add_printf(b, "%s_sum %.17g\n%s_count %llu\n", name, h->sum,
			    name, (unsigned long long)h->n);
}

/* GET /metrics, GET /healthz; anything else is 404, other methods 405. */
static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	size_t ul = strcspn(uri, "?");

	if (out == NULL)
		util_oom();
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(hdr, "Allow", "GET, HEAD");
		evhttp_send_reply(req, 405, "Method Not Allowed", NULL);
	} else if (ul == 8 && strncmp(uri, "/metrics", 8) == 0) {
		m->collect(m->arg, out);
		evhttp_add_header(hdr, "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, 200, "OK", out);
	} else if (ul == 8 && strncmp(uri, "/healthz", 8) == 0) {
		const char *why = NULL;
		bool ok = m->health(m->arg, &why);

		evbuffer_add_printf(out, "%s\n", ok ? "ok" : why);
		evhttp_add_header(hdr, "Content-Type",
				  "text/plain; charset=utf-8");
		evhttp_send_reply(req, ok ? 200 : 503,
				  ok ? "OK" : "Service Unavailable", out);
	} else {
		evbuffer_add_printf(out, "not found: try /metrics or "
					 "/healthz\n");
		evhttp_send_reply(req, 404, "Not Found", out);
	}
	evbuffer_free(out);
}

/* Split "host:port" / "[v6]:port" into host (no brackets) and port. */
static bool metrics_split(const char *v, char *host, size_t size,
			  uint16_t *port)
{
	const char *colon;
	size_t hl;
	char *end;
	long p;
	unsigned char a[16];

	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (rb == NULL || rb[1] != ':')
			return false;
		hl = (size_t)(rb - v - 1);
		colon = rb + 1;
		v++;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return false;
		hl = (size_t)(colon - v);
	}
	if (hl == 0 || hl >= size)
		return false;
	memcpy(host, v, hl);
	host[hl] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return false;
	*port = (uint16_t)p;
	return inet_pton(AF_INET, host, a) == 1 ||
	       inet_pton(AF_INET6, host, a) == 1;
}

struct metrics *metrics_new(struct event_base *base, const char *listen,
			    metrics_collect_fn collect,
			    metrics_health_fn health, void *arg,
			    char **cause)
{
	struct metrics *m = xcalloc(1, sizeof *m);
	char host[64];
	uint16_t port;

	if (!metrics_split(listen, host, sizeof host, &port)) {
		*cause = util_printf("[metrics] listen: bad address \"%s\"",
				     listen);
		goto fail;
	}
	m->collect = collect;
	m->health = health;
	m->arg = arg;
	m->http = evhttp_new(base);
	if (m->http == NULL)
		util_oom();
	/* Scrapes are small and frequent: answer quickly, hold nothing. */
	evhttp_set_timeout(m->http, 10);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	if (evhttp_bind_socket(m->http, host, port) != 0) {
		*cause = util_printf("[metrics] listen: cannot listen on %s "
				     "(taken, or not an address of this "
				     "machine)",
				     listen);
		goto fail;
	}
	return m;
fail:
	metrics_free(m);
	return NULL;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m);
}

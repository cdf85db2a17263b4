/* DNS on evdns with a cache and coalescing: see dns.h. */
#include "dns.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dnscache.h"
#include "log.h"
#include "map.h"
#include "util.h"

/* Names cached at most (some 300 bytes each).  Past it the least
 * recently used name makes room (see dnscache.h). */
#define DNS_CACHE_MAX 50000

/* A request waits on a lookup (lk != NULL), or sits on the delivery list
 * with its answer copied in. */
struct dns_req {
	TAILQ_ENTRY(dns_req) link;
	struct dns *d;
	struct dns_lookup *lk;
	dns_cb cb;
	void *arg;
	bool ok;
	struct dns_addrs addrs;
	char error[160];
};
TAILQ_HEAD(dns_req_list, dns_req);

/* One query in flight for a name, shared by every request for it. */
struct dns_lookup {
	struct dns *d;
	char *name;
	struct evdns_getaddrinfo_request *req;
	struct dns_req_list waiters;
	bool in_call;  /* inside evdns_getaddrinfo() */
	bool finished; /* answered during that call */
};

struct dns {
	struct event_base *base;
	struct evdns_base *evdns;
	struct map *pending; /* name -> struct dns_lookup */
	struct dnscache *cache; /* NULL when cache_ttl_s is 0 */
	struct dns_req_list deliver;
	struct event *ev_deliver;
	int cache_ttl_ms;
	unsigned long queries, hits;
};

static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_req *r;

	(void)fd;
	(void)what;
	/* One at a time: a callback may cancel another delivered request. */
	while ((r = TAILQ_FIRST(&d->deliver)) != NULL) {
		TAILQ_REMOVE(&d->deliver, r, link);
		if (r->ok)
			r->cb(r->arg, &r->addrs, NULL);
		else
			r->cb(r->arg, NULL, r->error);
		free(r);
	}
}

static void dns_queue_delivery(struct dns *d, struct dns_req *r)
{
	r->lk = NULL;
	TAILQ_INSERT_TAIL(&d->deliver, r, link);
	event_active(d->ev_deliver, 0, 0);
}

static const char *dns_error_text(int err)
{
	switch (err) {
	case EVUTIL_EAI_NONAME:
		return "no such host (NXDOMAIN)";
	case EVUTIL_EAI_NODATA:
		return "host has no addresses";
	case EVUTIL_EAI_AGAIN:
		return "temporary DNS failure (SERVFAIL or timeout)";
	case EVUTIL_EAI_FAIL:
		return "DNS failure (no answer or server error)";
	case EVUTIL_EAI_CANCEL:
		return "DNS request cancelled";
	default:
		return evutil_gai_strerror(err);
	}
}

static void dns_answer_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct dns_lookup *lk = arg;
	struct dns *d = lk->d;
	struct dns_addrs addrs = {0};
	struct dns_req *r;

	if (err == 0) {
		for (struct evutil_addrinfo *ai = res;
		     ai != NULL && addrs.n < DNS_MAX_ADDRS; ai = ai->ai_next) {
			if (ai->ai_addrlen > sizeof addrs.addr[0] ||
			    (ai->ai_family != AF_INET &&
			     ai->ai_family != AF_INET6))
				continue;
			memcpy(&addrs.addr[addrs.n], ai->ai_addr,
			       ai->ai_addrlen);
			addrs.len[addrs.n] = (socklen_t)ai->ai_addrlen;
			addrs.n++;
		}
		if (addrs.n == 0)
			err = EVUTIL_EAI_NODATA;
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (err == 0) {
		/* The resolver's first family leads (libevent answers IPv4
		 * first); a cached list changes when another address is the
		 * one that connects (dns_note_connected). */
		dnscache_order(&addrs, NULL);
		if (d->cache != NULL)
			dnscache_put(d->cache, lk->name, &addrs,
				     util_mono_ms());
	} else
		log_debug("dns: %s: %s", lk->name, dns_error_text(err));

	while ((r = TAILQ_FIRST(&lk->waiters)) != NULL) {
		TAILQ_REMOVE(&lk->waiters, r, link);
		r->ok = err == 0;
		if (r->ok)
			r->addrs = addrs;
		else
			snprintf(r->error, sizeof r->error, "%s: %s",
				 lk->name, dns_error_text(err));
		dns_queue_delivery(d, r);
	}
	map_del(d->pending, lk->name);
	lk->req = NULL;
	if (lk->in_call) {
		lk->finished = true;
		return;
	}
	free(lk->name);
	free(lk);
}

struct dns_req *dns_resolve(struct dns *d, const char *host, dns_cb cb,
			    void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof *r);
	struct dns_lookup *lk;
	const struct dns_addrs *cached;

	r->d = d;
	r->cb = cb;
	r->arg = arg;

	cached = d->cache != NULL
			 ? dnscache_get(d->cache, host, util_mono_ms())
			 : NULL;
	if (cached != NULL) {
		d->hits++;
		r->ok = true;
		r->addrs = *cached;
		dns_queue_delivery(d, r);
		return r;
	}

	lk = map_get(d->pending, host);
	if (lk != NULL) {
		r->lk = lk;
		TAILQ_INSERT_TAIL(&lk->waiters, r, link);
		return r;
	}

	lk = xcalloc(1, sizeof *lk);
	lk->name = xstrdup(host);
	map_put(d->pending, host, lk);
	lk->d = d;
	TAILQ_INIT(&lk->waiters);
	r->lk = lk;
	TAILQ_INSERT_TAIL(&lk->waiters, r, link);

	struct evutil_addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	d->queries++;
	lk->in_call = true;
	struct evdns_getaddrinfo_request *q = evdns_getaddrinfo(
		d->evdns, host, NULL, &hints, dns_answer_cb, lk);
	lk->in_call = false;
	if (lk->finished) {
		/* Answered at once (an IP literal or /etc/hosts): the
		 * waiters are already queued for delivery. */
		free(lk->name);
		free(lk);
	} else {
		lk->req = q;
	}
	return r;
}

void dns_cancel(struct dns_req *r)
{
	if (r == NULL)
		return;
	if (r->lk != NULL)
		TAILQ_REMOVE(&r->lk->waiters, r, link);
	else
		TAILQ_REMOVE(&r->d->deliver, r, link);
	/* A lookup left without waiters still completes and fills the
	 * cache, which the next request for the name will want. */
	free(r);
}

struct dns *dns_new(struct event_base *base, const char *nameserver,
		    int timeout_ms, int cache_ttl_s, char **cause)
{
	struct dns *d = xcalloc(1, sizeof *d);
	char buf[32];

	d->base = base;
	d->cache_ttl_ms = cache_ttl_s * 1000;
	TAILQ_INIT(&d->deliver);
	d->pending = map_new();
	if (cache_ttl_s > 0)
		d->cache = dnscache_new(DNS_CACHE_MAX, d->cache_ttl_ms);
	d->ev_deliver = event_new(base, -1, 0, dns_deliver_cb, d);
	if (d->ev_deliver == NULL)
		util_oom();

	if (nameserver != NULL && *nameserver != '\0') {
		d->evdns = evdns_base_new(base,
					  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (d->evdns == NULL) {
			*cause = util_printf("cannot create DNS resolver");
			goto fail;
		}
		if (evdns_base_nameserver_ip_add(d->evdns, nameserver) != 0) {
			*cause = util_printf("bad DNS nameserver \"%s\"",
					     nameserver);
			goto fail;
		}
		/* Names like localhost still come from /etc/hosts. */
		evdns_base_load_hosts(d->evdns, NULL);
	} else {
		d->evdns = evdns_base_new(
			base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
				      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (d->evdns == NULL) {
			*cause = util_printf("cannot read /etc/resolv.conf "
					     "for DNS servers");
			goto fail;
		}
	}
	/* Two tries, each half of the budget, so one lost UDP packet does
	 * not fail a lookup and the whole lookup ends near timeout_ms. */
	snprintf(buf, sizeof buf, "%.3f", timeout_ms / 2000.0);
	evdns_base_set_option(d->evdns, "timeout:", buf);
	evdns_base_set_option(d->evdns, "attempts:", "2");
	return d;
fail:
	dns_free(d);
	return NULL;
}

/* Free a lookup that will not be answered, with whoever still waits on
 * it. */
static void dns_lookup_free(void *v)
{
	struct dns_lookup *lk = v;
	struct dns_req *r;

	while ((r = TAILQ_FIRST(&lk->waiters)) != NULL) {
		TAILQ_REMOVE(&lk->waiters, r, link);
		free(r);
	}
	free(lk->name);
	free(lk);
}

void dns_free(struct dns *d)
{
	struct dns_req *r;

	if (d == NULL)
		return;
	/* Without failing its requests, evdns runs no callback any more:
	 * what is still pending is freed here.  (libevent 2.1 itself loses
	 * the request structures of those lookups: it frees them only when
	 * answering, and failing them would only defer the answers to a
	 * loop that no longer runs.) */
	if (d->evdns != NULL)
		evdns_base_free(d->evdns, 0);
	map_free(d->pending, dns_lookup_free);
	while ((r = TAILQ_FIRST(&d->deliver)) != NULL) {
		TAILQ_REMOVE(&d->deliver, r, link);
		free(r);
	}
	dnscache_free(d->cache);
	if (d->ev_deliver != NULL)
		event_free(d->ev_deliver);
	free(d);
}

void dns_note_connected(struct dns *d, const char *host,
			const union dns_sockaddr *addr)
{
	if (d->cache != NULL)
		dnscache_prefer(d->cache, host, addr);
}

unsigned long dns_queries(const struct dns *d)
{
	return d->queries;
}

unsigned long dns_cache_hits(const struct dns *d)
{
	return d->hits;
}

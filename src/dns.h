/* Asynchronous name resolution on evdns, with a cache (cache_ttl_s, at most
 * 50,000 names, the least recently used out first) and coalescing:
 * concurrent lookups of one name share one query.  Addresses come in the
 * order to try them (RFC 8305: the families alternate), the one that last
 * connected first.  Results are always delivered from the event loop, never
 * from inside dns_resolve(), so callers need not guard against re-entry. */
#ifndef GATHERD_DNS_H
#define GATHERD_DNS_H

#include <netinet/in.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_req;

#define DNS_MAX_ADDRS 8

/* One IPv4 or IPv6 address: 28 bytes rather than sockaddr_storage's 128,
 * since every fetch in flight carries DNS_MAX_ADDRS of them. */
union dns_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct dns_addrs {
	int n;
	union dns_sockaddr addr[DNS_MAX_ADDRS];
	socklen_t len[DNS_MAX_ADDRS];
};

/* addrs is NULL on failure, and then error says why ("no such host",
 * "DNS timeout", ...).  Both are valid only during the call. */
typedef void (*dns_cb)(void *arg, const struct dns_addrs *addrs,
		       const char *error);

/* nameserver: "" for /etc/resolv.conf, else "IP" or "IP:port". */
struct dns *dns_new(struct event_base *base, const char *nameserver,
		    int timeout_ms, int cache_ttl_s, char **cause);
void dns_free(struct dns *d);

/* Start resolving host; cb runs later on the loop unless cancelled.
 * Never NULL. */
struct dns_req *dns_resolve(struct dns *d, const char *host, dns_cb cb,
			    void *arg);
/* Cancel a request whose callback has not run; cb will not run. */
void dns_cancel(struct dns_req *r);

/* A connection to addr, one of host's addresses, worked: later lookups of
 * host answered from the cache put it (and its family) first, so they do
 * not wait for an address that did not answer again. */
void dns_note_connected(struct dns *d, const char *host,
			const union dns_sockaddr *addr);

/* Counters for stats and tests: queries sent and cache hits. */
unsigned long dns_queries(const struct dns *d);
unsigned long dns_cache_hits(const struct dns *d);

#endif

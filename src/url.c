/* URL parsing, formatting and reference resolution (see url.h).
 *
 * The parser is deliberately strict: gatherd only ever fetches absolute
 * http(s) URLs, and everything it accepts must be safe to put on a request
 * line and into a Host header without further escaping.  No allocation: the
 * resolver works in fixed-size stack buffers bounded by URL_MAX_LEN. */
#include "url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Longest registered name (RFC 1035), not counting one trailing dot. */
#define HOST_NAME_MAX_LEN  253
#define HOST_LABEL_MAX_LEN 63
/* Longest text form of an IPv6 address ("ffff:...:255.255.255.255"). */
#define IPV6_TEXT_MAX_LEN 45

static const char reason_too_long[] = "URL longer than 8192 bytes";

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Space, controls (including NUL and DEL) are never valid anywhere in a URL
 * we put on the wire; bytes >= 0x80 are let through here and judged by the
 * component that contains them. */
static bool is_bad_byte(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

static bool has_bad_byte(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (is_bad_byte((unsigned char)s[i]))
			return true;
	return false;
}

/* Length of the RFC 3986 scheme at the start of s ("http" in "http:..."),
 * or 0 when s does not start with "scheme:". */
static size_t scheme_len(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alpha(s[0]))
		return 0;
	for (i = 1; i < len; i++) {
		char c = s[i];

		if (c == ':')
			return i;
		if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' &&
		    c != '.')
			return 0;
	}
	return 0;
}

static bool scheme_is(const char *s, size_t len, const char *name)
{
	if (len != strlen(name))
		return false;
	for (size_t i = 0; i < len; i++)
		if (ascii_lower(s[i]) != name[i])
			return false;
	return true;
}

/* True if a label is a number as inet_aton() and the WHATWG URL standard
 * would read it: decimal digits, or "0x" followed by hex digits. */
static bool label_is_numeric(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < len; i++)
			if (!is_hex(s[i]))
				return false;
		return true;
	}
	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* Validate a strict dotted quad: four decimal labels 0..255 without leading
 * zeros (which some resolvers would read as octal). */
static bool is_dotted_quad(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned value = 0;

		while (i < len && is_digit(s[i]) && i - start < 4) {
			value = value * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == start || i - start > 3 || value > 255)
			return false;
		if (i - start > 1 && s[start] == '0')
			return false;
		if (part < 3) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == len;
}

/* Check a registered name or IPv4 literal (not bracketed).  A name whose
 * last label is numeric is taken as an attempted IPv4 literal and must then
 * be a valid dotted quad: "1.2.3" or "999.1.1.1" would otherwise be handed
 * to a resolver that may read them as addresses in surprising ways
 * (inet_aton accepts "127.1").  *upper tells whether it has upper-case
 * letters (which the parsed forms lower-case). */
static int check_reg_host(const char *h, size_t len, bool *ipv4, bool *upper,
			  const char **reason)
{
	size_t name_len = len, label_start = 0, last_start = 0;

	*upper = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c >= 0x80) {
			*reason = "non-ASCII host";
			return -1;
		}
		if (!is_alpha((char)c) && !is_digit((char)c) && c != '-' &&
		    c != '_' && c != '.') {
			*reason = "invalid character in host";
			return -1;
		}
		if (c >= 'A' && c <= 'Z')
			*upper = true;
	}
	if (len > 0 && h[len - 1] == '.')
		name_len = len - 1;
	if (name_len == 0) {
		*reason = "missing host";
		return -1;
	}
	if (name_len > HOST_NAME_MAX_LEN) {
		*reason = "host longer than 253 bytes";
		return -1;
	}
	for (size_t i = 0; i <= name_len; i++) {
		if (i < name_len && h[i] != '.')
			continue;
		if (i == label_start) {
			*reason = "empty label in host";
			return -1;
		}
		if (i - label_start > HOST_LABEL_MAX_LEN) {
			*reason = "host label longer than 63 bytes";
			return -1;
		}
		last_start = label_start;
		label_start = i + 1;
	}
	*ipv4 = false;
	if (label_is_numeric(h + last_start, name_len - last_start)) {
		if (name_len != len || !is_dotted_quad(h, len)) {
			*reason = "invalid IPv4 address";
			return -1;
		}
		*ipv4 = true;
	}
	return 0;
}

/* Check a bracketed IPv6 literal's inside.  Zone identifiers ("%25eth0")
 * make inet_pton fail, which is what we want: they mean nothing to a
 * remote server. */
static int check_ipv6_host(const char *h, size_t len, bool *upper,
			   const char **reason)
{
	char text[IPV6_TEXT_MAX_LEN + 1];
	struct in6_addr addr;

	*upper = false;
	if (len == 0 || len > IPV6_TEXT_MAX_LEN) {
		*reason = "invalid IPv6 address";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		text[i] = ascii_lower(h[i]);
		if (text[i] != h[i])
			*upper = true;
	}
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, &addr) != 1) {
		*reason = "invalid IPv6 address";
		return -1;
	}
	return 0;
}

/* Parse the digits after ':' in the authority.  An empty port means the
 * scheme's default (RFC 3986 section 3.2.3).  *canonical is false when the
 * digits are not how the port is written back (a leading zero). */
static int parse_port(const char *p, size_t len, uint16_t *port,
		      bool *canonical, const char **reason)
{
	unsigned long value = 0;

	*canonical = len == 0 || p[0] != '0';
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(p[i])) {
			*reason = "invalid port";
			return -1;
		}
		value = value * 10 + (unsigned long)(p[i] - '0');
		if (value > 65535) {
			*reason = "invalid port";
			return -1;
		}
	}
	if (value == 0) {
		*reason = "invalid port";
		return -1;
	}
	*port = (uint16_t)value;
	return 0;
}

static uint16_t default_port(enum url_scheme scheme)
{
	return scheme == URL_HTTPS ? 443 : 80;
}

/* Write host (lower-cased, bracketed when `brackets` and IPv6) and, if
 * with_port, ":port" into buf, NUL-terminated.  Returns the length, or -1
 * if it does not fit. */
static int host_port(char *buf, size_t size, const char *host, size_t hl,
		     bool brackets, uint16_t port_value, bool with_port)
{
	/* By hand, not snprintf: this runs for every URL. */
	char port[8];
	size_t pl = 0, n = 0;

	if (with_port) {
		unsigned p = port_value;
		char tmp[8];
		size_t k = 0;

		do {
			tmp[k++] = (char)('0' + p % 10);
			p /= 10;
		} while (p > 0);
		port[pl++] = ':';
		while (k > 0)
			port[pl++] = tmp[--k];
	}
	if (hl + pl + (brackets ? 2 : 0) >= size)
		return -1;
	if (brackets)
		buf[n++] = '[';
	for (size_t i = 0; i < hl; i++)
		buf[n++] = ascii_lower(host[i]);
	if (brackets)
		buf[n++] = ']';
	memcpy(buf + n, port, pl);
	n += pl;
	buf[n] = '\0';
	return (int)n;
}

int url_host_port(char *buf, size_t size, const struct url *u,
		  bool with_port)
{
	return host_port(buf, size, u->host, strlen(u->host), u->host_is_ipv6,
			 u->port, with_port);
}

/* Check the authority a[0..len) (at offset `off` of the URL) and record
 * its host and port in out. */
static int parse_authority(const char *a, size_t len, size_t off,
			   struct url_ref *out, bool *normal,
			   const char **reason)
{
	const char *port = NULL;
	size_t port_len = 0, host_off, host_len;
	bool upper = false, ipv4 = false, canonical;

	if (memchr(a, '@', len) != NULL) {
		*reason = "userinfo not supported";
		return -1;
	}
	if (len > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', len);

		if (close == NULL) {
			*reason = "invalid IPv6 address";
			return -1;
		}
		host_off = 1;
		host_len = (size_t)(close - a) - 1;
		if (close + 1 < a + len) {
			if (close[1] != ':') {
				*reason = "invalid port";
				return -1;
			}
			port = close + 2;
			port_len = len - (size_t)(port - a);
		}
		if (check_ipv6_host(a + 1, host_len, &upper, reason) < 0)
			return -1;
		out->flags |= URL_REF_IPV6;
	} else {
		const char *colon = memchr(a, ':', len);

		host_off = 0;
		host_len = colon ? (size_t)(colon - a) : len;
		if (colon != NULL) {
			port = colon + 1;
			port_len = len - host_len - 1;
		}
		if (check_reg_host(a, host_len, &ipv4, &upper, reason) < 0)
			return -1;
		if (ipv4)
			out->flags |= URL_REF_IPV4;
	}
	if (parse_port(port, port_len, &out->port, &canonical, reason) < 0)
		return -1;
	if (port != NULL && port_len > 0)
		out->flags |= URL_REF_PORT_EXPLICIT;
	out->host_off = (uint16_t)(off + host_off);
	out->host_len = (uint16_t)host_len;
	/* Written back the same only without upper case, and with a port
	 * exactly when it is not the default. */
	if (upper || !canonical ||
	    (port != NULL) != (out->port != default_port(out->scheme)))
		*normal = false;
	return 0;
}

int url_parse_ref(const char *s, size_t len, struct url_ref *out,
		  const char **reason)
{
	size_t slen, auth_start, auth_end, rest_end;
	bool normal = true;

	memset(out, 0, sizeof *out);
	if (len > URL_MAX_LEN) {
		*reason = reason_too_long;
		return -1;
	}
	/* The scheme first: "not a url" is better told it has none than
	 * that it has spaces. */
	slen = scheme_len(s, len);
	if (slen == 0) {
		*reason = "missing scheme";
		return -1;
	}
	if (has_bad_byte(s, len)) {
		*reason = "space or control character in URL";
		return -1;
	}
	if (scheme_is(s, slen, "http")) {
		out->scheme = URL_HTTP;
	} else if (scheme_is(s, slen, "https")) {
		out->scheme = URL_HTTPS;
	} else {
		*reason = "unsupported scheme";
		return -1;
	}
	if (memcmp(s, out->scheme == URL_HTTPS ? "https" : "http", slen) != 0)
		normal = false;
	out->port = default_port((enum url_scheme)out->scheme);
	if (len - slen < 3 || s[slen + 1] != '/' || s[slen + 2] != '/') {
		*reason = "missing host";
		return -1;
	}

	auth_start = slen + 3;
	auth_end = auth_start;
	while (auth_end < len && s[auth_end] != '/' && s[auth_end] != '?' &&
	       s[auth_end] != '#')
		auth_end++;
	if (auth_end == auth_start) {
		*reason = "missing host";
		return -1;
	}
	if (parse_authority(s + auth_start, auth_end - auth_start, auth_start,
			    out, &normal, reason) < 0) {
		memset(out, 0, sizeof *out);
		return -1;
	}

	/* Path and query go on the request line exactly as submitted; only
	 * the fragment, which is never sent, is cut off. */
	rest_end = auth_end;
	while (rest_end < len && s[rest_end] != '#')
		rest_end++;
	if (rest_end != len)
		normal = false;
	if (auth_end == rest_end || s[auth_end] == '?') {
		out->flags |= URL_REF_SLASH;
		normal = false;
	}
	out->target_off = (uint16_t)auth_end;
	out->target_len = (uint16_t)(rest_end - auth_end);
	if (normal)
		out->flags |= URL_REF_NORMAL;
	return 0;
}

int url_ref_host(const struct url_ref *r, const char *s, char *buf,
		 size_t size)
{
	return host_port(buf, size, s + r->host_off, r->host_len, false, 0,
			 false);
}

int url_ref_host_port(const struct url_ref *r, const char *s, char *buf,
		      size_t size, bool with_port)
{
	return host_port(buf, size, s + r->host_off, r->host_len,
			 (r->flags & URL_REF_IPV6) != 0, r->port, with_port);
}

int url_ref_authority(const struct url_ref *r, const char *s, char *buf,
		      size_t size)
{
	return url_ref_host_port(r, s, buf, size,
				 r->port != default_port(
						    (enum url_scheme)r->scheme));
}

int url_ref_origin(const struct url_ref *r, const char *s, char *buf,
		   size_t size)
{
	const char *scheme = r->scheme == URL_HTTPS ? "https://" : "http://";
	size_t ls = strlen(scheme);
	int la;

	if (ls >= size)
		return -1;
	memcpy(buf, scheme, ls);
	la = url_ref_authority(r, s, buf + ls, size - ls);
	return la < 0 ? -1 : (int)ls + la;
}

/* Empty every field.  The strings are cleared by their first byte only:
 * zeroing all 8.7 KiB of the struct would cost more than the parse. */
static void url_clear(struct url *u)
{
	u->scheme = URL_HTTP;
	u->port = 0;
	u->port_explicit = false;
	u->host_is_ipv4 = false;
	u->host_is_ipv6 = false;
	u->host[0] = '\0';
	u->authority[0] = '\0';
	u->target[0] = '\0';
}

void url_from_ref(const struct url_ref *r, const char *s, struct url *out)
{
	size_t t = 0;

	out->scheme = (enum url_scheme)r->scheme;
	out->port = r->port;
	out->port_explicit = (r->flags & URL_REF_PORT_EXPLICIT) != 0;
	out->host_is_ipv4 = (r->flags & URL_REF_IPV4) != 0;
	out->host_is_ipv6 = (r->flags & URL_REF_IPV6) != 0;
	/* Both fit: the host is at most 253 bytes (IPv6 text 45). */
	url_ref_host(r, s, out->host, sizeof out->host);
	url_ref_authority(r, s, out->authority, sizeof out->authority);
	if (r->flags & URL_REF_SLASH)
		out->target[t++] = '/';
	memcpy(out->target + t, s + r->target_off, r->target_len);
	out->target[t + r->target_len] = '\0';
}

int url_parse(const char *s, size_t len, struct url *out, const char **reason)
{
	struct url_ref r;

	if (url_parse_ref(s, len, &r, reason) < 0) {
		/* Leave nothing half-filled for a careless caller. */
		url_clear(out);
		return -1;
	}
	url_from_ref(&r, s, out);
	return 0;
}

int url_ref_format(const struct url_ref *r, const char *s, char *buf,
		   size_t size)
{
	const char *scheme = r->scheme == URL_HTTPS ? "https://" : "http://";
	size_t ls = strlen(scheme), slash = (r->flags & URL_REF_SLASH) ? 1 : 0;
	int la;

	if (ls >= size)
		return -1;
	memcpy(buf, scheme, ls);
	la = url_ref_authority(r, s, buf + ls, size - ls);
	if (la < 0 || ls + (size_t)la + slash + r->target_len >= size)
		return -1;
	size_t n = ls + (size_t)la;
	if (slash)
		buf[n++] = '/';
	memcpy(buf + n, s + r->target_off, r->target_len);
	n += r->target_len;
	buf[n] = '\0';
	return (int)n;
}

static const char *scheme_name(enum url_scheme scheme)
{
	return scheme == URL_HTTPS ? "https" : "http";
}

int url_format(const struct url *u, char *buf, size_t size)
{
	/* memcpy, not snprintf: this runs for every fetch. */
	const char *scheme = scheme_name(u->scheme);
	size_t ls = strlen(scheme), la = strlen(u->authority),
	       lt = strlen(u->target);
	size_t n = ls + 3 + la + lt;

	if (n >= size)
		return -1;
	memcpy(buf, scheme, ls);
	memcpy(buf + ls, "://", 3);
	memcpy(buf + ls + 3, u->authority, la);
	memcpy(buf + ls + 3 + la, u->target, lt + 1);
	return (int)n;
}

/* A byte string that does not own its storage. */
struct span {
	const char *p;
	size_t len;
	bool defined; /* RFC 3986 distinguishes empty from absent */
};

/* The five components of a URI reference (RFC 3986 section 3, appendix B). */
struct ref_parts {
	struct span scheme, authority, path, query;
};

static void split_reference(const char *s, size_t len, struct ref_parts *r)
{
	size_t i = 0, n;

	memset(r, 0, sizeof(*r));
	n = scheme_len(s, len);
	if (n > 0) {
		r->scheme = (struct span){s, n, true};
		i = n + 1;
	}
	if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		size_t start = i + 2;

		i = start;
		while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
			i++;
		r->authority = (struct span){s + start, i - start, true};
	}
	n = i;
	while (i < len && s[i] != '?' && s[i] != '#')
		i++;
	r->path = (struct span){s + n, i - n, true};
	if (i < len && s[i] == '?') {
		n = ++i;
		while (i < len && s[i] != '#')
			i++;
		r->query = (struct span){s + n, i - n, true};
	}
}

/* A bounded output buffer; `overflow` latches once anything did not fit. */
struct sbuf {
	char *p;
	size_t len, size;
	bool overflow;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t len)
{
	if (b->overflow || len > b->size - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
}

static void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

/* RFC 3986 section 5.2.4, working segment by segment on `in` and appending
 * to `out`.  Output never grows beyond the input, so `out` needs at most
 * in_len bytes. */
static void remove_dot_segments(const char *in, size_t in_len, struct sbuf *out)
{
	size_t i = 0, base = out->len;

	while (i < in_len && !out->overflow) {
		const char *p = in + i;
		size_t left = in_len - i, seg;

		/* A: drop "../" and "./" prefixes. */
		if (left >= 3 && memcmp(p, "../", 3) == 0) {
			i += 3;
		} else if (left >= 2 && memcmp(p, "./", 2) == 0) {
			i += 2;
			/* B: "/./" and a final "/." become "/". */
		} else if (left >= 3 && memcmp(p, "/./", 3) == 0) {
			i += 2;
		} else if (left == 2 && memcmp(p, "/.", 2) == 0) {
			sbuf_add(out, "/", 1);
			i += 2;
			/* C: "/../" and a final "/.." pop the last output
			 * segment. */
		} else if ((left >= 4 && memcmp(p, "/../", 4) == 0) ||
			   (left == 3 && memcmp(p, "/..", 3) == 0)) {
			while (out->len > base && out->p[out->len - 1] != '/')
				out->len--;
			if (out->len > base)
				out->len--;
			/* "/../x" continues with "/x"; a final "/.." leaves
			 * "/" behind. */
			if (left == 3)
				sbuf_add(out, "/", 1);
			i += 3;
			/* D: a lone "." or "..". */
		} else if ((left == 1 && p[0] == '.') ||
			   (left == 2 && memcmp(p, "..", 2) == 0)) {
			i += left;
			/* E: move the first segment (with its leading '/'). */
		} else {
			seg = (p[0] == '/') ? 1 : 0;
			while (seg < left && p[seg] != '/')
				seg++;
			sbuf_add(out, p, seg);
			i += seg;
		}
	}
}

/* Append the path and query of reference `r`, which has neither scheme nor
 * authority, resolved against the base target (RFC 3986 section 5.2.2). */
static void resolve_path(const char *base_target, const struct ref_parts *r,
			 struct sbuf *res)
{
	/* Base path + reference, each at most URL_MAX_LEN + 1 bytes. */
	char merged[URL_MAX_LEN * 2 + 2];
	struct sbuf mrg = {merged, 0, sizeof(merged), false};
	const char *base_q = strchr(base_target, '?');
	size_t base_path_len =
	    base_q ? (size_t)(base_q - base_target) : strlen(base_target);
	struct span query = r->query;

	if (r->path.len == 0) {
		/* Same document: the base's query unless a new one. */
		sbuf_add(res, base_target, base_path_len);
		if (!query.defined && base_q != NULL)
			query =
			    (struct span){base_q + 1, strlen(base_q + 1), true};
	} else {
		if (r->path.p[0] != '/') {
			/* Section 5.2.3: keep the base path up to its last
			 * '/'.  A target always starts with '/', so there is
			 * one. */
			size_t keep = 0;

			for (size_t k = 0; k < base_path_len; k++)
				if (base_target[k] == '/')
					keep = k + 1;
			sbuf_add(&mrg, base_target, keep);
		}
		sbuf_add(&mrg, r->path.p, r->path.len);
		if (mrg.overflow)
			res->overflow = true;
		else
			remove_dot_segments(mrg.p, mrg.len, res);
	}
	if (query.defined) {
		sbuf_add(res, "?", 1);
		sbuf_add(res, query.p, query.len);
	}
}

int url_resolve(const struct url *u, const char *ref, size_t len,
		struct url *out, const char **reason)
{
	/* Scheme, authority, path and query, each bounded by URL_MAX_LEN
	 * (the path at most twice that before url_parse rejects it): only
	 * an overflow has to be noticed, it can never be valid. */
	char result[URL_MAX_LEN * 3 + 16];
	struct sbuf res = {result, 0, sizeof(result), false};
	struct ref_parts r;

	if (len > URL_MAX_LEN) {
		*reason = reason_too_long;
		goto fail;
	}
	if (has_bad_byte(ref, len)) {
		*reason = "space or control character in URL";
		goto fail;
	}
	split_reference(ref, len, &r);

	/* Strict RFC 3986: a scheme makes the reference absolute, even the
	 * base's own scheme ("http:g" has no host). */
	if (r.scheme.defined)
		sbuf_add(&res, r.scheme.p, r.scheme.len);
	else
		sbuf_adds(&res, scheme_name(u->scheme));
	sbuf_add(&res, ":", 1);
	if (r.scheme.defined || r.authority.defined) {
		if (r.authority.defined) {
			sbuf_add(&res, "//", 2);
			sbuf_add(&res, r.authority.p, r.authority.len);
		}
		remove_dot_segments(r.path.p, r.path.len, &res);
		if (r.query.defined) {
			sbuf_add(&res, "?", 1);
			sbuf_add(&res, r.query.p, r.query.len);
		}
	} else {
		sbuf_add(&res, "//", 2);
		sbuf_adds(&res, u->authority);
		resolve_path(u->target, &r, &res);
	}
	if (res.overflow) {
		*reason = reason_too_long;
		goto fail;
	}
	/* Done with `u`: it may be the same struct as `out`. */
	return url_parse(res.p, res.len, out, reason);

fail:
	url_clear(out);
	return -1;
}

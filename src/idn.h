/* International names in submitted URLs: the ASCII form that goes on the
 * wire.  Pure (no libevent, no I/O); host names go through libidn2. */
#ifndef GATHERD_IDN_H
#define GATHERD_IDN_H

#include <stddef.h>

/* The ASCII form of the URL in[0..len) (UTF-8 bytes, no NUL needed), which
 * url_parse_ref() then reads: a host name with non-ASCII bytes becomes its
 * A-labels (IDNA 2008 with UTS 46 non-transitional mapping, lower-cased,
 * "bücher.test" -> "xn--bcher-kva.test"), and every other byte >= 0x80
 * (path, query, fragment) becomes %XX with upper-case hex, as browsers and
 * curl send them.  ASCII bytes, "%20" included, are left exactly as they
 * are: gatherd sends the path as submitted.  The caller keeps `in` as the
 * URL submitted (results.url) and parses, fetches and reports (final_url)
 * the ASCII form.
 *
 * Returns 0 with *out NULL (and *out_len 0) when the URL is ASCII already:
 * one scan, no allocation, as this runs for every URL.  Returns 0 with *out
 * a new malloc'd NUL-terminated string of *out_len bytes when it changed;
 * that string is always accepted by url_parse_ref().  Returns -1 with *out
 * NULL and *reason a static string when a non-ASCII URL has no ASCII form
 * gatherd can fetch: "invalid international host name: ..." (libidn2
 * refused the name: bad UTF-8, a disallowed code point such as an emoji, a
 * label too long, ...), "invalid IPv6 address" or "invalid port" (a
 * non-ASCII byte there), "URL longer than 8192 bytes" (before or "once
 * percent-encoded"), or whatever url_parse_ref() says of the ASCII form
 * (scheme, userinfo, spaces: left to the parser, not judged twice). */
int idn_ascii_url(const char *in, size_t len, char **out, size_t *out_len,
		  const char **reason) __attribute__((warn_unused_result));

#endif

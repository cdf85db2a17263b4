/* International names in submitted URLs (see idn.h).
 *
 * url.c accepts only ASCII hosts, so a URL with non-ASCII bytes is turned
 * into the form that goes on the wire before it is parsed: the host into
 * A-labels for DNS, SNI, the certificate check and the Host header, the rest
 * percent-encoded.  The URL is split here only as far as finding the host
 * needs, the way url.c does it; everything else is judged by url_parse_ref()
 * on the result, so that there is one parser and one set of reasons. */
#include "idn.h"

#include <idn2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "util.h"

/* Longest host name in A-label form (RFC 1035), not counting one trailing
 * dot; url.c has the same limit for ASCII names. */
#define IDN_HOST_MAX_LEN 253

/* UTS 46 non-transitional processing, as browsers do since 2017: "faß.de"
 * is its own name (xn--fa-hia.de), not "fass.de".  NFC_INPUT so that a
 * name typed in decomposed form ("u" + U+0308) is the same name.  Not
 * IDN2_USE_STD3_ASCII_RULES: libidn2 2.3.3 drops the characters it
 * forbids instead of failing ("my_host" becomes "myhost"), and url.c
 * allows '_' in ASCII names; idn_host_ok() checks the result instead. */
#define IDN_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

#define IDN_REASON(why) "invalid international host name: " why

/* Where the host is in a URL, as url.c's parse_authority() finds it. */
enum idn_host_kind {
	IDN_HOST_NONE,	   /* no "scheme://": the parser rejects it */
	IDN_HOST_USERINFO, /* an '@' in the authority: the parser rejects it */
	IDN_HOST_IPV6,	   /* a bracketed literal */
	IDN_HOST_NAME,	   /* a registered name or an IPv4 literal */
};

/* The spans of a URL this module cares about, as offsets into its text:
 * [host_off, host_end) is the host (inside the brackets for IPv6) and
 * [host_end, auth_end) what follows it in the authority (']' and the
 * port). */
struct idn_split {
	enum idn_host_kind kind;
	size_t host_off, host_end, auth_end;
};

/* Offset of the first byte >= 0x80 in s, or len.  Eight bytes at a time:
 * this runs for every URL and nearly all of them are ASCII. */
static size_t idn_first_non_ascii(const char *s, size_t len)
{
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, sizeof w);
		if (w & UINT64_C(0x8080808080808080))
			break;
	}
	for (; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return i;
	return len;
}

/* True if s[0..len) has a byte >= 0x80. */
static bool idn_has_non_ascii(const char *s, size_t len)
{
	return idn_first_non_ascii(s, len) < len;
}

/* Space and controls: the parser rejects the URL for them, and a NUL must
 * not reach libidn2, which reads a C string. */
static bool idn_has_bad_byte(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

static bool idn_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Length of the RFC 3986 scheme at the start of s up to its ':', or 0. */
static size_t idn_scheme_len(const char *s, size_t len)
{
	if (len == 0 || !idn_is_alpha(s[0]))
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];

		if (c == ':')
			return i;
		if (!idn_is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' &&
		    c != '-' && c != '.')
			return 0;
	}
	return 0;
}

/* Find the host of s the way url.c does: after "scheme://", up to the
 * first '/', '?' or '#'; a bracketed IPv6 literal, or a name up to the
 * first ':'. */
static void idn_split_url(const char *s, size_t len, struct idn_split *p)
{
	size_t slen = idn_scheme_len(s, len), a, e;
	const char *mark;

	memset(p, 0, sizeof *p);
	if (slen == 0 || len - slen < 3 || s[slen + 1] != '/' ||
	    s[slen + 2] != '/')
		return;
	a = slen + 3;
	for (e = a; e < len; e++)
		if (s[e] == '/' || s[e] == '?' || s[e] == '#')
			break;
	p->host_off = p->host_end = a;
	p->auth_end = e;
	if (memchr(s + a, '@', e - a) != NULL) {
		p->kind = IDN_HOST_USERINFO;
		return;
	}
	if (e > a && s[a] == '[') {
		mark = memchr(s + a, ']', e - a);
		p->kind = IDN_HOST_IPV6;
		p->host_off = a + 1;
		p->host_end = mark ? (size_t)(mark - s) : e;
		return;
	}
	mark = memchr(s + a, ':', e - a);
	p->kind = IDN_HOST_NAME;
	p->host_end = mark ? (size_t)(mark - s) : e;
}

/* A static reason for a libidn2 error.  libidn2's own texts
 * (idn2_strerror) are static too but do not say that the host is at
 * fault, and a reason cannot be put together at run time without
 * storage that outlives the call. */
static const char *idn_reason(int rc)
{
	switch (rc) {
	case IDN2_MALLOC:
		util_oom();
	case IDN2_ENCODING_ERROR:
		return IDN_REASON("not UTF-8");
	case IDN2_DISALLOWED:
		return IDN_REASON("disallowed character");
	case IDN2_UNASSIGNED:
		return IDN_REASON("unassigned code point");
	case IDN2_CONTEXTJ:
	case IDN2_CONTEXTJ_NO_RULE:
		return IDN_REASON("misplaced zero-width joiner");
	case IDN2_CONTEXTO:
	case IDN2_CONTEXTO_NO_RULE:
		return IDN_REASON("character not allowed in this context");
	case IDN2_BIDI:
		return IDN_REASON("bad mix of left-to-right and right-to-left");
	case IDN2_2HYPHEN:
		return IDN_REASON("\"--\" in the third and fourth positions");
	case IDN2_HYPHEN_STARTEND:
		return IDN_REASON("label starts or ends with '-'");
	case IDN2_LEADING_COMBINING:
		return IDN_REASON("label starts with a combining mark");
	case IDN2_TOO_BIG_LABEL:
	case IDN2_PUNYCODE_BIG_OUTPUT:
		return IDN_REASON("label longer than 63 bytes once converted");
	case IDN2_TOO_BIG_DOMAIN:
		return IDN_REASON("longer than 253 bytes once converted");
	case IDN2_PUNYCODE_BAD_INPUT:
	case IDN2_INVALID_ALABEL:
	case IDN2_UALABEL_MISMATCH:
		return IDN_REASON("invalid xn-- label");
	case IDN2_ALABEL_ROUNDTRIP_FAILED:
		return IDN_REASON("A-label round trip failed");
	default:
		return IDN_REASON("rejected by libidn2");
	}
}

/* Check what libidn2 made of a name, lower-casing it in place.  UTS 46
 * maps some characters to ASCII punctuation (U+FF0F to '/', U+FF20 to
 * '@', U+FF1A to ':'): spliced into the URL they would move the host's
 * end, so a converted name may hold only what url.c allows in one. */
static int idn_host_ok(char *h, const char **reason)
{
	size_t len = strlen(h);

	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c >= 'A' && c <= 'Z')
			h[i] = (char)(c - 'A' + 'a');
		else if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
			 c != '-' && c != '_' && c != '.') {
			*reason = IDN_REASON("maps to a character not allowed "
					     "in a host");
			return -1;
		}
	}
	if (len > 0 && h[len - 1] == '.')
		len--;
	if (len > IDN_HOST_MAX_LEN) {
		*reason = IDN_REASON("longer than 253 bytes once converted");
		return -1;
	}
	return 0;
}

/* The A-label form of host s[0..len) (which has non-ASCII bytes), in a
 * string from libidn2 (idn2_free), or NULL with *reason. */
static char *idn_convert_host(const char *s, size_t len, const char **reason)
{
	/* The host is a span of the URL, which is at most URL_MAX_LEN. */
	char name[URL_MAX_LEN + 1];
	uint8_t *ascii = NULL;
	int rc;

	memcpy(name, s, len);
	name[len] = '\0';
	rc = idn2_lookup_u8((const uint8_t *)name, &ascii, IDN_FLAGS);
	if (rc != IDN2_OK) {
		*reason = idn_reason(rc);
		return NULL;
	}
	if (idn_host_ok((char *)ascii, reason) < 0) {
		idn2_free(ascii);
		return NULL;
	}
	return (char *)ascii;
}

/* Number of bytes >= 0x80 in s[0..len): each takes two more once encoded. */
static size_t idn_count_non_ascii(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += (unsigned char)s[i] >= 0x80;
	return n;
}

/* Copy s[0..len) to dst with each byte >= 0x80 as %XX; returns the bytes
 * written. */
static size_t idn_put_encoded(char *dst, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '%';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 0x0f];
	}
	return n;
}

int idn_ascii_url(const char *in, size_t len, char **out, size_t *out_len,
		  const char **reason)
{
	struct idn_split p;
	struct url_ref ref;
	char *host = NULL, *buf = NULL;
	size_t cut = 0, cut_end = 0, host_len = 0, size, n;

	*out = NULL;
	*out_len = 0;
	if (idn_first_non_ascii(in, len) == len)
		return 0;
	if (len > URL_MAX_LEN) {
		*reason = "URL longer than 8192 bytes";
		return -1;
	}

	idn_split_url(in, len, &p);
	if (p.kind == IDN_HOST_IPV6 &&
	    idn_has_non_ascii(in + p.host_off, p.host_end - p.host_off)) {
		*reason = "invalid IPv6 address";
		return -1;
	}
	if ((p.kind == IDN_HOST_IPV6 || p.kind == IDN_HOST_NAME) &&
	    idn_has_non_ascii(in + p.host_end, p.auth_end - p.host_end)) {
		*reason = "invalid port";
		return -1;
	}
	/* A host with a space or control byte is left as it is: the parser
	 * rejects the whole URL for that byte. */
	if (p.kind == IDN_HOST_NAME &&
	    idn_has_non_ascii(in + p.host_off, p.host_end - p.host_off) &&
	    !idn_has_bad_byte(in + p.host_off, p.host_end - p.host_off)) {
		host = idn_convert_host(in + p.host_off,
					p.host_end - p.host_off, reason);
		if (host == NULL)
			return -1;
	}

	/* The host's span is replaced by its A-labels when it was converted;
	 * everything else is copied with its non-ASCII bytes encoded: past
	 * the host they are path, query and fragment; before it they can
	 * only be in a URL the parser refuses anyway. */
	if (host != NULL) {
		cut = p.host_off;
		cut_end = p.host_end;
		host_len = strlen(host);
	}
	size = len - (cut_end - cut) + host_len +
	       2 * (idn_count_non_ascii(in, cut) +
		    idn_count_non_ascii(in + cut_end, len - cut_end));
	if (size > URL_MAX_LEN) {
		*reason = "URL longer than 8192 bytes once percent-encoded";
		goto fail;
	}
	buf = xmalloc(size + 1);
	n = idn_put_encoded(buf, in, cut);
	if (host_len > 0)
		memcpy(buf + n, host, host_len);
	n += host_len;
	n += idn_put_encoded(buf + n, in + cut_end, len - cut_end);
	buf[n] = '\0';
	if (url_parse_ref(buf, n, &ref, reason) < 0)
		goto fail;
	idn2_free(host);
	*out = buf;
	*out_len = n;
	return 0;

fail:
	idn2_free(host);
	free(buf);
	return -1;
}

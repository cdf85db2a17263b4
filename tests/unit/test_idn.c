/* Unit tests for idn.c: A-labels for international host names and
 * percent-encoding of the rest, checked against libidn2 2.3.3 (Debian 12). */
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "idn.h"
#include "tap.h"
#include "url.h"

#define IDN_BAD(why) "invalid international host name: " why

/* UTF-8 of the characters the cases use most. */
#define UE	   "\xc3\xbc"	  /* ü */
#define UE_CAP	   "\xc3\x9c"	  /* Ü */
#define SZ	   "\xc3\x9f"	  /* ß */
#define ZWJ	   "\xe2\x80\x8d" /* zero-width joiner */
#define ZWNJ	   "\xe2\x80\x8c" /* zero-width non-joiner */
#define DIAERESIS  "\xcc\x88"	  /* combining, U+0308 */
#define LATIN1_UE  "\xfc"	  /* ü in ISO 8859-1: not UTF-8 */
#define FW_SOLIDUS "\xef\xbc\x8f" /* full-width '/' */
#define FW_AT	   "\xef\xbc\xa0" /* full-width '@' */
#define FW_COLON   "\xef\xbc\x9a" /* full-width ':' */

/* A URL that idn_ascii_url() must turn into `ascii`. */
struct conv_case {
	const char *in;
	const char *ascii;
};

static const struct conv_case conv_cases[] = {
    {"http://b" UE "cher.test/", "http://xn--bcher-kva.test/"},
    /* Upper case is mapped (UTS 46) to the same name, lower-cased. */
    {"http://B" UE_CAP "CHER.test/", "http://xn--bcher-kva.test/"},
    {"http://B" UE_CAP "CHER.Example.COM/",
     "http://xn--bcher-kva.example.com/"},
    /* Mixed labels: ASCII, U-label, an A-label already. */
    {"http://www.b" UE "cher.test/", "http://www.xn--bcher-kva.test/"},
    {"http://xn--bcher-kva.b" UE "cher.test/",
     "http://xn--bcher-kva.xn--bcher-kva.test/"},
    /* Port, path, query and fragment kept. */
    {"https://b" UE "cher.test:8443/a/b?c=d#e",
     "https://xn--bcher-kva.test:8443/a/b?c=d#e"},
    {"http://b" UE "cher.test", "http://xn--bcher-kva.test"},
    {"http://b" UE "cher.test:/", "http://xn--bcher-kva.test:/"},
    {"http://b" UE "cher.test./", "http://xn--bcher-kva.test./"},
    {"HTTP://b" UE "cher.test?q", "HTTP://xn--bcher-kva.test?q"},
    /* Non-ASCII bytes in path, query and fragment: %XX, upper-case hex;
     * ASCII, "%20" included, exactly as it was. */
    {"http://h/stra" SZ "e?q=" UE, "http://h/stra%C3%9Fe?q=%C3%BC"},
    {"http://h/a%20b/" UE "%c3%bc?%zz", "http://h/a%20b/%C3%BC%c3%bc?%zz"},
    {"http://H/" UE, "http://H/%C3%BC"},
    {"http://h/p#fr\xc3\xa4g", "http://h/p#fr%C3%A4g"},
    {"http://h?\xe2\x82\xac", "http://h?%E2%82%AC"},
    {"http://b" UE "cher.test/stra" SZ "e",
     "http://xn--bcher-kva.test/stra%C3%9Fe"},
    /* Path bytes are not judged as UTF-8, only carried (as curl does). */
    {"http://h/\xff\xfe", "http://h/%FF%FE"},
    {"http://[::1]:8080/" UE, "http://[::1]:8080/%C3%BC"},
    {"http://10.0.0.1/" UE, "http://10.0.0.1/%C3%BC"},
    /* Non-transitional: sharp s and final sigma are letters of their own
     * (transitional processing and IDNA 2003 give fass.de and the
     * xn--nxasmq6b of "βόλοσ"). */
    {"http://fa" SZ ".de/", "http://xn--fa-hia.de/"},
    {"http://\xce\xb2\xcf\x8c\xce\xbb\xce\xbf\xcf\x82.com/",
     "http://xn--nxasmm1c.com/"},
    /* Capital sigma lower-cases to the medial form. */
    {"http://\xce\x92\xce\x8c\xce\x9b\xce\x9f\xce\xa3.com/",
     "http://xn--nxasmq6b.com/"},
    /* NFC: "u" + combining diaeresis is the same name as "ü". */
    {"http://bu" DIAERESIS "cher.test/", "http://xn--bcher-kva.test/"},
    /* UTS 46 mapping: ideographic full stop, full-width digits (an IPv4
     * literal after all, as in browsers), compatibility forms. */
    {"http://" UE "\xe3\x80\x82test/", "http://xn--tda.test/"},
    {"http://\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1/", "http://127.0.0.1/"},
    {"http://\xe2\x85\xab.t\xc3\xa9st/", "http://xii.xn--tst-bma/"},
    /* '_' stays, as url.c allows it in ASCII names. */
    {"http://my_host.b" UE "cher.test/", "http://my_host.xn--bcher-kva.test/"},
    /* IDNA 2008 CONTEXTJ: a zero-width joiner after a virama is valid. */
    {"http://\xe0\xa4\x95\xe0\xa5\x8d" ZWJ ".test/",
     "http://xn--11b6iy14e.test/"},
    /* Right-to-left label. */
    {"http://\xd9\x84\xd8\xa7.com/", "http://xn--mgb1d.com/"},
};

/* A URL that idn_ascii_url() must refuse, and why. */
struct bad_case {
	const char *in;
	const char *reason;
};

static const struct bad_case bad_cases[] = {
    /* Emoji and symbols: valid in IDNA 2003 (and transitional UTS 46),
     * disallowed in IDNA 2008. */
    {"http://\xf0\x9f\x92\xa9.la/", IDN_BAD("disallowed character")},
    {"http://i\xe2\x9d\xa4.ws/", IDN_BAD("disallowed character")},
    {"http://\xe2\x88\x9a.com/", IDN_BAD("disallowed character")},
    /* Disallowed however processed: a dotted digit, U+FFFD. */
    {"http://" UE "\xe2\x92\x88.test/", IDN_BAD("disallowed character")},
    {"http://" UE "\xef\xbf\xbd.test/", IDN_BAD("disallowed character")},
    /* IDNA 2003 mapped a joiner to nothing; IDNA 2008 wants a context. */
    {"http://a" ZWJ "b.com/", IDN_BAD("misplaced zero-width joiner")},
    {"http://" UE ZWNJ ".test/", IDN_BAD("misplaced zero-width joiner")},
    {"http://a\xd9\x84.com/",
     IDN_BAD("bad mix of left-to-right and right-to-left")},
    /* Not UTF-8: a stray byte, a truncated sequence, an overlong form, a
     * surrogate, beyond U+10FFFF. */
    {"http://\xff.test/", IDN_BAD("not UTF-8")},
    {"http://b" LATIN1_UE "cher.test/", IDN_BAD("not UTF-8")},
    {"http://\xc3.test/", IDN_BAD("not UTF-8")},
    {"http://\xc0\xaf.test/", IDN_BAD("not UTF-8")},
    {"http://\xed\xa0\x80.test/", IDN_BAD("not UTF-8")},
    {"http://\xf5\x80\x80\x80.test/", IDN_BAD("not UTF-8")},
    {"http://-" UE ".test/", IDN_BAD("label starts or ends with '-'")},
    {"http://ab--" UE ".test/",
     IDN_BAD("\"--\" in the third and fourth positions")},
    {"http://\xcc\x81" UE ".test/",
     IDN_BAD("label starts with a combining mark")},
    {"http://xn--zz.b" UE "cher/", IDN_BAD("invalid xn-- label")},
    {"http://" UE "$.test/", IDN_BAD("A-label round trip failed")},
    /* Full-width '/', '@' and ':' map to ASCII that would move the end of
     * the host. */
    {"http://a" FW_SOLIDUS "b.b" UE "cher/",
     IDN_BAD("maps to a character not allowed in a host")},
    {"http://a" FW_AT "b.b" UE "cher/",
     IDN_BAD("maps to a character not allowed in a host")},
    {"http://a" FW_COLON "80.b" UE "cher/",
     IDN_BAD("maps to a character not allowed in a host")},
    /* Non-ASCII where no name is. */
    {"http://[::1" UE "]/", "invalid IPv6 address"},
    {"http://[::" UE "1]:80/", "invalid IPv6 address"},
    {"http://b" UE "cher.test:8" UE "/", "invalid port"},
    {"http://[::1]:8" UE "/", "invalid port"},
    /* The rest is the parser's, on the ASCII form. */
    {"http://" UE "ser@h/", "userinfo not supported"},
    {"http://u@b" UE "cher.test/", "userinfo not supported"},
    {"ftp://b" UE "cher.test/", "unsupported scheme"},
    {"b" UE "cher.test/", "missing scheme"},
    {"http:b" UE "cher.test/", "missing host"},
    {"http://b" UE "cher.test/a b", "space or control character in URL"},
    {"http://b" UE " cher.test/", "space or control character in URL"},
    {"http://b" UE "\x01cher.test/", "space or control character in URL"},
    {"http://" UE ".1/", "invalid IPv4 address"},
    {"http://b" UE "cher..test/", "empty label in host"},
    /* A soft hyphen is ignored by UTS 46: nothing is left of this name. */
    {"http://\xc2\xad/", "missing host"},
};

/* Convert, and hold the result to everything idn.h promises of it. */
static void check_conv(const struct conv_case *c)
{
	const char *reason = NULL;
	char *out = (char *)"unset", *again = (char *)"unset";
	size_t out_len = 99, again_len = 99;
	struct url_ref r;

	if (idn_ascii_url(c->in, strlen(c->in), &out, &out_len, &reason) != 0) {
		printf("# %s: rejected: %s\n", c->ascii, reason);
		TAP_CHECK(0);
		return;
	}
	TAP_CHECK_STR(out, c->ascii);
	if (out == NULL)
		return;
	TAP_CHECK(out_len == strlen(out));
	/* The parser takes it, and it is now ASCII: nothing more to do. */
	TAP_CHECK(url_parse_ref(out, out_len, &r, &reason) == 0);
	TAP_CHECK(idn_ascii_url(out, out_len, &again, &again_len, &reason) ==
		  0);
	TAP_CHECK(again == NULL && again_len == 0);
	free(out);
}

static void test_convert(void)
{
	for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
		check_conv(&conv_cases[i]);
}

static void test_reject(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		const char *reason = NULL;
		char *out = (char *)"unset";
		size_t out_len = 99;

		if (idn_ascii_url(c->in, strlen(c->in), &out, &out_len,
				  &reason) != -1) {
			printf("# case %zu accepted as %s\n", i,
			       out ? out : "(unchanged)");
			TAP_CHECK(0);
			free(out);
			continue;
		}
		TAP_CHECK(out == NULL && out_len == 0);
		if (reason == NULL || strcmp(reason, c->reason) != 0)
			printf("# case %zu\n", i);
		TAP_CHECK_STR(reason, c->reason);
	}
}

/* ASCII in, no copy out, whatever the parser will later think of it. */
static void test_ascii_unchanged(void)
{
	static const char *const ascii[] = {
	    "",
	    "http://example.com/",
	    "http://xn--bcher-kva.test/a%C3%BC",
	    "HTTP://EXAMPLE.COM/A B",
	    "not a url",
	    "http://h/1234567",
	    "http://h/12345678",
	};
	const char *reason = "unset";

	for (size_t i = 0; i < sizeof ascii / sizeof ascii[0]; i++) {
		char *out = (char *)"unset";
		size_t out_len = 99;

		TAP_CHECK(idn_ascii_url(ascii[i], strlen(ascii[i]), &out,
					&out_len, &reason) == 0);
		TAP_CHECK(out == NULL && out_len == 0);
	}
	TAP_CHECK_STR(reason, "unset");
}

/* The 8-byte scan finds a non-ASCII byte wherever it is. */
static void test_scan_every_position(void)
{
	char s[40] = "http://h/abcdefghijklmnopqrstuvwxyz";
	size_t len = strlen(s);

	for (size_t i = 9; i < len; i++) {
		char saved = s[i], want[64];
		char *out = NULL;
		size_t out_len = 0;
		const char *reason = NULL;

		s[i] = (char)0xe9;
		snprintf(want, sizeof want, "%.*s%%E9%s", (int)i, s, s + i + 1);
		TAP_CHECK(idn_ascii_url(s, len, &out, &out_len, &reason) == 0);
		TAP_CHECK_STR(out, want);
		free(out);
		s[i] = saved;
	}
}

/* The converted URL says the same as the submitted one, to the parser:
 * scheme, port, target, and the host in A-label form for DNS, SNI and
 * the Host header. */
static void test_parts_after_conversion(void)
{
	static const char in[] =
	    "https://B" UE_CAP "CHER.test:8443/stra" SZ "e?q=" UE "#f";
	char *out = NULL, *again = (char *)"unset", host[256], auth[300],
	     full[512];
	size_t out_len = 0, again_len = 99;
	const char *reason = NULL;
	struct url_ref r;
	struct url u;

	TAP_CHECK(idn_ascii_url(in, sizeof in - 1, &out, &out_len, &reason) ==
		  0);
	if (out == NULL)
		return;
	TAP_CHECK(url_parse_ref(out, out_len, &r, &reason) == 0);
	TAP_CHECK(r.scheme == URL_HTTPS && r.port == 8443);
	TAP_CHECK(url_ref_host(&r, out, host, sizeof host) > 0);
	TAP_CHECK_STR(host, "xn--bcher-kva.test");
	TAP_CHECK(url_ref_authority(&r, out, auth, sizeof auth) > 0);
	TAP_CHECK_STR(auth, "xn--bcher-kva.test:8443");
	TAP_CHECK(url_ref_format(&r, out, full, sizeof full) > 0);
	TAP_CHECK_STR(full, "https://xn--bcher-kva.test:8443/stra%C3%9Fe"
			    "?q=%C3%BC");
	url_from_ref(&r, out, &u);
	TAP_CHECK_STR(u.target, "/stra%C3%9Fe?q=%C3%BC");
	/* The formatted form (final_url) goes through unchanged. */
	TAP_CHECK(idn_ascii_url(full, strlen(full), &again, &again_len,
				&reason) == 0 &&
		  again == NULL);
	free(out);
}

/* The choice of processing shows in these names: check that libidn2
 * itself tells them apart, so that the cases above mean something. */
static void test_transitional_differs(void)
{
	uint8_t *t = NULL;

	TAP_CHECK(idn2_lookup_u8((const uint8_t *)"fa" SZ ".de", &t,
				 IDN2_NFC_INPUT | IDN2_TRANSITIONAL) ==
		  IDN2_OK);
	TAP_CHECK_STR((char *)t, "fass.de");
	idn2_free(t);
	t = NULL;
	TAP_CHECK(idn2_lookup_u8((const uint8_t *)"\xce\xb2\xcf\x8c\xce\xbb"
						  "\xce\xbf\xcf\x82.com",
				 &t, IDN2_NFC_INPUT | IDN2_TRANSITIONAL) ==
		  IDN2_OK);
	TAP_CHECK_STR((char *)t, "xn--nxasmq6b.com");
	idn2_free(t);
	t = NULL;
	/* Transitional processing lets an emoji through. */
	TAP_CHECK(idn2_lookup_u8((const uint8_t *)"\xf0\x9f\x92\xa9.la", &t,
				 IDN2_NFC_INPUT | IDN2_TRANSITIONAL) ==
		  IDN2_OK);
	TAP_CHECK_STR((char *)t, "xn--ls8h.la");
	idn2_free(t);
}

/* "ü." and three 63-byte labels make 200 bytes of A-labels; a last label
 * of `last` bytes makes 200 + last. */
static void make_long_host_url(char *buf, size_t last, bool trailing_dot)
{
	size_t n = 0;

	memcpy(buf, "http://" UE ".", 10);
	n = 10;
	for (int l = 0; l < 3; l++) {
		memset(buf + n, 'a', 63);
		n += 63;
		buf[n++] = '.';
	}
	memset(buf + n, 'b', last);
	n += last;
	if (trailing_dot)
		buf[n++] = '.';
	memcpy(buf + n, "/x", 3);
}

static void test_host_length_limit(void)
{
	char in[400], host[300];
	char *out = NULL;
	size_t out_len = 0;
	const char *reason = NULL;
	struct url_ref r;

	/* 253 bytes once converted: the longest name. */
	make_long_host_url(in, 53, false);
	TAP_CHECK(idn_ascii_url(in, strlen(in), &out, &out_len, &reason) == 0);
	if (out != NULL) {
		TAP_CHECK(url_parse_ref(out, out_len, &r, &reason) == 0);
		TAP_CHECK(url_ref_host(&r, out, host, sizeof host) == 253);
		TAP_CHECK(strncmp(host, "xn--tda.aaa", 11) == 0);
		free(out);
	}
	/* A trailing dot does not count. */
	make_long_host_url(in, 53, true);
	TAP_CHECK(idn_ascii_url(in, strlen(in), &out, &out_len, &reason) == 0);
	TAP_CHECK(out != NULL && out_len == strlen("http://") + 254 + 2);
	free(out);
	/* 254 and 255 bytes are too long. */
	for (size_t last = 54; last <= 55; last++) {
		make_long_host_url(in, last, false);
		out = NULL;
		TAP_CHECK(idn_ascii_url(in, strlen(in), &out, &out_len,
					&reason) == -1);
		TAP_CHECK(out == NULL);
		TAP_CHECK_STR(reason,
			      IDN_BAD("longer than 253 bytes once converted"));
	}
	/* A label is at most 63 bytes once converted: "xn--" and 60 "ü"
	 * are far more. */
	strcpy(in, "http://");
	for (int i = 0; i < 60; i++)
		strcat(in, UE);
	strcat(in, ".test/");
	TAP_CHECK(idn_ascii_url(in, strlen(in), &out, &out_len, &reason) == -1);
	TAP_CHECK_STR(reason,
		      IDN_BAD("label longer than 63 bytes once converted"));
}

/* The ASCII form is bounded like any URL; the input too, before any
 * work is done on it. */
static void test_url_length_limit(void)
{
	char *in = malloc(URL_MAX_LEN + 16), *out = NULL;
	size_t out_len = 0, n = 9;
	const char *reason = NULL;

	memcpy(in, "http://h/", 9);
	/* 9 + 3 * 2727 + 2 = 8192 bytes once encoded. */
	for (int i = 0; i < 2727; i++)
		in[n++] = (char)0xe9;
	in[n++] = 'x';
	in[n++] = 'y';
	TAP_CHECK(idn_ascii_url(in, n, &out, &out_len, &reason) == 0);
	TAP_CHECK(out != NULL && out_len == URL_MAX_LEN);
	free(out);
	in[n++] = 'z';
	out = NULL;
	TAP_CHECK(idn_ascii_url(in, n, &out, &out_len, &reason) == -1);
	TAP_CHECK(out == NULL);
	TAP_CHECK_STR(reason,
		      "URL longer than 8192 bytes once percent-encoded");

	memset(in + 9, 'a', URL_MAX_LEN + 16 - 9);
	in[URL_MAX_LEN] = (char)0xe9;
	TAP_CHECK(idn_ascii_url(in, URL_MAX_LEN + 1, &out, &out_len, &reason) ==
		  -1);
	TAP_CHECK_STR(reason, "URL longer than 8192 bytes");
	free(in);
}

static const struct tap_test tests[] = {
    {"international names become A-labels, the rest %XX", test_convert},
    {"what cannot be converted is refused with a reason", test_reject},
    {"ASCII comes back unchanged, without a copy", test_ascii_unchanged},
    {"a non-ASCII byte is found at every offset", test_scan_every_position},
    {"the parser reads the converted URL right", test_parts_after_conversion},
    {"transitional processing would give other names",
     test_transitional_differs},
    {"host names: 253 bytes, labels 63, once converted",
     test_host_length_limit},
    {"the ASCII form fits in 8192 bytes", test_url_length_limit},
    {NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

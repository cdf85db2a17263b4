/* Unit tests for the array literals and UTF-8 repair of store_pg_conn.c
 * (no server needed): what PostgreSQL's array input would read back. */
#include <stdint.h>
#include <string.h>

#include "store_pg.h"
#include "tap.h"

static void test_numbers_and_nulls(void)
{
	struct pg_buf b = {0};

	pg_array_open(&b);
	pg_array_close(&b);
	TAP_CHECK_STR(pg_buf_str(&b), "{}");
	pg_array_open(&b);
	pg_array_int(&b, 1);
	pg_array_opt(&b, -1);
	pg_array_opt(&b, 0);
	pg_array_int(&b, -5);
	pg_array_null(&b);
	pg_array_str(&b, NULL);
	pg_array_close(&b);
	TAP_CHECK_STR(pg_buf_str(&b), "{1,NULL,0,-5,NULL,NULL}");
	pg_array_open(&b);
	pg_array_int(&b, INT64_MAX);
	pg_array_int(&b, INT64_MIN);
	pg_array_int(&b, 1764370800123);
	pg_array_int(&b, 10);
	pg_array_close(&b);
	TAP_CHECK_STR(pg_buf_str(&b), "{9223372036854775807,"
				      "-9223372036854775808,1764370800123,10}");
	pg_buf_free(&b);
}

/* Quotes and backslashes are escaped inside quoted elements; an empty
 * string and the word NULL stay strings. */
static void test_text_quoting(void)
{
	struct pg_buf b = {0};

	pg_array_open(&b);
	pg_array_str(&b, "a\"b\\c");
	pg_array_str(&b, "");
	pg_array_str(&b, "NULL");
	pg_array_str(&b, "x,y{z}");
	pg_array_close(&b);
	TAP_CHECK_STR(pg_buf_str(&b),
		      "{\"a\\\"b\\\\c\",\"\",\"NULL\",\"x,y{z}\"}");
	pg_buf_free(&b);
}

/* Valid UTF-8 passes; what is not (a lone continuation byte, an overlong
 * form, a surrogate, a truncated sequence, NUL) becomes U+FFFD. */
static void test_utf8_repair(void)
{
	struct pg_buf b = {0};
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
	    {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
	    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
	    {"a\x80z", 3, "a\xef\xbf\xbdz"},
	    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
	    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	    {"ab\xe2\x82", 4, "ab\xef\xbf\xbd\xef\xbf\xbd"},
	    {"a\0b", 3, "a\xef\xbf\xbd" "b"},
	    {"\xf4\x90\x80\x80", 4,
	     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pg_buf_reset(&b);
		pg_buf_utf8(&b, cases[i].in, cases[i].len);
		TAP_CHECK_STR(pg_buf_str(&b), cases[i].out);
	}
	/* And inside an array element, with a quote next to it. */
	pg_array_open(&b);
	pg_array_text(&b, "\xff\"", 2);
	pg_array_close(&b);
	TAP_CHECK_STR(pg_buf_str(&b), "{\"\xef\xbf\xbd\\\"\"}");
	pg_buf_free(&b);
}

static const struct tap_test tests[] = {
	{"numbers_and_nulls", test_numbers_and_nulls},
	{"text_quoting", test_text_quoting},
	{"utf8_repair", test_utf8_repair},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

/* Unit tests for proxy.c: proxy URLs, no_proxy, the environment. */
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "tap.h"

static void test_parse(void)
{
	char *cause = NULL;
	struct proxies *ps;
	const struct proxy *p;

	ps = proxies_new("http://proxy.example:3128", "", "", false, &cause);
	TAP_CHECK(ps != NULL);
	p = proxies_for(ps, URL_HTTP, "a.test");
	TAP_CHECK(p != NULL && strcmp(p->host, "proxy.example") == 0 &&
		  p->port == 3128 && p->auth == NULL && !p->literal);
	TAP_CHECK_STR(p->name, "proxy.example:3128");
	/* [fetch] proxy serves https too when https_proxy is unset. */
	p = proxies_for(ps, URL_HTTPS, "a.test");
	TAP_CHECK(p != NULL && strcmp(p->host, "proxy.example") == 0 &&
		  p->port == 3128);
	proxies_free(ps);

	ps = proxies_new("127.0.0.1", "http://u%40x:p%3Aw@[::1]:8080/", "",
			 false, &cause);
	TAP_CHECK(ps != NULL);
	p = proxies_for(ps, URL_HTTP, "a.test");
	TAP_CHECK(p->port == 1080 && p->literal && p->auth == NULL);
	p = proxies_for(ps, URL_HTTPS, "a.test");
	TAP_CHECK(p->literal && p->port == 8080);
	TAP_CHECK_STR(p->host, "::1");
	TAP_CHECK_STR(p->name, "[::1]:8080");
	/* "u@x:p:w" in base64; the name never shows credentials. */
	TAP_CHECK_STR(p->auth, "Proxy-Authorization: Basic dUB4OnA6dw==\r\n");
	proxies_free(ps);

	static const char *const bad[] = {
		"https://p:1", "socks5://p:1", "http://p:0", "http://p:99999",
		"http://:80", "http://p:80/path", "http://bad host:1",
		"http://[::1:80"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		TAP_CHECK(proxies_new(bad[i], "", "", false, &cause) == NULL);
		TAP_CHECK(cause != NULL);
		free(cause);
		char *why = proxy_check_url(bad[i]);
		TAP_CHECK(why != NULL);
		free(why);
	}
	TAP_CHECK(proxy_check_url("") == NULL);
}

static void test_no_proxy(void)
{
	TAP_CHECK(proxy_no_proxy_match("example.com", "example.com"));
	TAP_CHECK(proxy_no_proxy_match("example.com", "www.example.com"));
	TAP_CHECK(proxy_no_proxy_match(".example.com", "www.example.com"));
	TAP_CHECK(proxy_no_proxy_match(".example.com", "example.com"));
	TAP_CHECK(!proxy_no_proxy_match("example.com", "badexample.com"));
	TAP_CHECK(!proxy_no_proxy_match("example.com", "example.com.evil"));
	TAP_CHECK(proxy_no_proxy_match("a.test, 127.0.0.1 ,b.test",
				       "127.0.0.1"));
	TAP_CHECK(!proxy_no_proxy_match("127.0.0.1", "127.0.0.10"));
	TAP_CHECK(proxy_no_proxy_match("*", "anything.at.all"));
	TAP_CHECK(!proxy_no_proxy_match("", "a.test"));
	TAP_CHECK(proxy_no_proxy_match("A.TEST", "x.a.test"));

	char *cause = NULL;
	struct proxies *ps = proxies_new("http://p:1", "", "internal.test,10.1.2.3",
					 false, &cause);
	TAP_CHECK(proxies_for(ps, URL_HTTP, "svc.internal.test") == NULL);
	TAP_CHECK(proxies_for(ps, URL_HTTP, "10.1.2.3") == NULL);
	TAP_CHECK(proxies_for(ps, URL_HTTP, "public.test") != NULL);
	proxies_free(ps);
}

static void test_environment(void)
{
	char *cause = NULL;
	struct proxies *ps;

	setenv("http_proxy", "http://envp:1", 1);
	setenv("HTTP_PROXY", "http://never:2", 1);
	setenv("HTTPS_PROXY", "http://envs:3", 1);
	setenv("NO_PROXY", "skip.test", 1);
	ps = proxies_new("", "", "", true, &cause);
	TAP_CHECK_STR(proxies_for(ps, URL_HTTP, "a.test")->host, "envp");
	TAP_CHECK_STR(proxies_for(ps, URL_HTTPS, "a.test")->host, "envs");
	TAP_CHECK(proxies_for(ps, URL_HTTP, "x.skip.test") == NULL);
	proxies_free(ps);
	/* The configuration wins over the environment. */
	ps = proxies_new("http://conf:4", "", "", true, &cause);
	TAP_CHECK_STR(proxies_for(ps, URL_HTTP, "a.test")->host, "conf");
	TAP_CHECK_STR(proxies_for(ps, URL_HTTPS, "a.test")->host, "envs");
	proxies_free(ps);
	/* HTTP_PROXY alone is never used (a CGI request can set it). */
	unsetenv("http_proxy");
	ps = proxies_new("", "", "", true, &cause);
	TAP_CHECK(proxies_for(ps, URL_HTTP, "a.test") == NULL);
	proxies_free(ps);
	/* Without use_env nothing comes from it. */
	ps = proxies_new("", "", "", false, &cause);
	TAP_CHECK(proxies_for(ps, URL_HTTPS, "a.test") == NULL);
	proxies_free(ps);
}

static const struct tap_test tests[] = {
	{"proxy URLs", test_parse},
	{"no_proxy", test_no_proxy},
	{"environment fallback", test_environment},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

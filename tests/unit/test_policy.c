/* Unit tests for policy.c (retry and redirect decisions) and errkind.c. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errkind.h"
#include "policy.h"
#include "tap.h"

static struct config cfg;

/* The built-in defaults (an empty file), with paths that exist. */
static void cfg_defaults(void)
{
	static const struct config_override ov[] = {
		{"gatherd.queue_file=/tmp/gatherd-test-policy.queue"},
		{"gatherd.database=/tmp/gatherd-test-policy.db"},
	};
	char *cause = NULL;

	config_free(&cfg);
	if (config_load(&cfg, "/dev/null", ov, 2, &cause) != 0) {
		printf("# cannot load the defaults: %s\n", cause);
		exit(1);
	}
}

static struct policy_outcome response(int status)
{
	struct policy_outcome o = {.ok = true, .status = status,
				   .retry_after_ms = -1};
	return o;
}

static struct policy_outcome failure(enum errkind k)
{
	struct policy_outcome o = {.ok = false, .error = k,
				   .retry_after_ms = -1};
	return o;
}

static struct policy_outcome redirect(enum url_scheme from,
				      enum url_scheme to)
{
	struct policy_outcome o = response(301);

	o.has_location = true;
	o.scheme = from;
	o.location_scheme = to;
	return o;
}

static void test_errkind_names(void)
{
	enum errkind k;

	TAP_CHECK(errkind_name(ERR_NONE) == NULL);
	TAP_CHECK(errkind_name(ERR_KIND_COUNT) == NULL);
	TAP_CHECK_STR(errkind_name(ERR_INVALID_URL), "invalid_url");
	TAP_CHECK_STR(errkind_name(ERR_TOO_MANY_REDIRECTS),
		      "too_many_redirects");
	/* Every kind has a name, and the name parses back to it. */
	for (int i = ERR_NONE + 1; i < ERR_KIND_COUNT; i++) {
		const char *n = errkind_name((enum errkind)i);

		TAP_CHECK(n != NULL && errkind_parse(n, &k) && (int)k == i);
	}
	TAP_CHECK(!errkind_parse("bogus", &k));
}

static void test_retryable(void)
{
	cfg_defaults();
	static const int yes[] = {408, 429, 500, 502, 503, 504};
	static const int no[] = {200, 204, 301, 304, 400, 401, 403, 404,
				 410, 501, 505, 599};
	struct policy_outcome o;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		o = response(yes[i]);
		TAP_CHECK(policy_retryable(&cfg, &o));
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		o = response(no[i]);
		TAP_CHECK(!policy_retryable(&cfg, &o));
	}
	o = failure(ERR_CONNECT);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = failure(ERR_TIMEOUT);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = failure(ERR_TRUNCATED);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = failure(ERR_PROXY);
	TAP_CHECK(policy_retryable(&cfg, &o));
	static const enum errkind final[] = {
		ERR_INVALID_URL, ERR_DNS, ERR_TLS, ERR_HTTP_PROTOCOL,
		ERR_TOO_LARGE, ERR_TOO_MANY_REDIRECTS, ERR_ROBOTS};
	for (size_t i = 0; i < sizeof final / sizeof final[0]; i++) {
		o = failure(final[i]);
		TAP_CHECK(!policy_retryable(&cfg, &o));
	}
}

static void test_retry_statuses(void)
{
	static const struct config_override ov[] = {
		{"gatherd.queue_file=/tmp/gatherd-test-policy.queue"},
		{"gatherd.database=/tmp/gatherd-test-policy.db"},
		{"fetch.retry_statuses=429, 520,599"},
	};
	char *cause = NULL;
	struct policy_outcome o;

	config_free(&cfg);
	TAP_CHECK(config_load(&cfg, "/dev/null", ov, 3, &cause) == 0);
	o = response(429);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = response(520);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = response(599);
	TAP_CHECK(policy_retryable(&cfg, &o));
	o = response(503);
	TAP_CHECK(!policy_retryable(&cfg, &o));
	o = failure(ERR_TIMEOUT);
	TAP_CHECK(policy_retryable(&cfg, &o));
	/* Empty: no status is retried. */
	static const struct config_override none[] = {
		{"gatherd.queue_file=/tmp/gatherd-test-policy.queue"},
		{"gatherd.database=/tmp/gatherd-test-policy.db"},
		{"fetch.retry_statuses="},
	};
	config_free(&cfg);
	TAP_CHECK(config_load(&cfg, "/dev/null", none, 3, &cause) == 0);
	o = response(503);
	TAP_CHECK(!policy_retryable(&cfg, &o));
	/* Not a list of statuses. */
	static const struct config_override bad[] = {
		{"gatherd.queue_file=/tmp/gatherd-test-policy.queue"},
		{"gatherd.database=/tmp/gatherd-test-policy.db"},
		{"fetch.retry_statuses=503,600"},
	};
	config_free(&cfg);
	TAP_CHECK(config_load(&cfg, "/dev/null", bad, 3, &cause) == -1);
	TAP_CHECK(cause != NULL && strstr(cause, "retry_statuses") != NULL);
	free(cause);
	cfg_defaults();
}

static void test_retry_budget(void)
{
	struct policy_outcome o = response(503);

	cfg_defaults();
	cfg.retries = 2;
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_RETRY);
	TAP_CHECK(policy_decide(&cfg, &o, 2, 0, false) == POLICY_RETRY);
	TAP_CHECK(policy_decide(&cfg, &o, 3, 0, false) == POLICY_FINAL);
	/* Shutting down: a retry with budget left waits for the next start;
	 * one without budget is final as always. */
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, true) == POLICY_REQUEUE);
	TAP_CHECK(policy_decide(&cfg, &o, 3, 0, true) == POLICY_FINAL);
	cfg.retries = 0;
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_FINAL);
	o = response(200);
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, true) == POLICY_FINAL);
}

static void test_redirects(void)
{
	struct policy_outcome o;

	cfg_defaults();
	cfg.max_redirects = 2;
	o = redirect(URL_HTTP, URL_HTTPS);
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_FOLLOW);
	TAP_CHECK(policy_decide(&cfg, &o, 1, 1, false) == POLICY_FOLLOW);
	TAP_CHECK(policy_decide(&cfg, &o, 1, 2, false) == POLICY_TOO_MANY);
	/* A redirect is followed during shutdown too: it is not a retry. */
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, true) == POLICY_FOLLOW);
	/* The downgrade check is on the parsed scheme (an upper-case HTTPS://
	 * in the text is still https). */
	o = redirect(URL_HTTPS, URL_HTTP);
	cfg.allow_https_downgrade = false;
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_DOWNGRADE);
	cfg.allow_https_downgrade = true;
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_FOLLOW);
	o = redirect(URL_HTTPS, URL_HTTPS);
	cfg.allow_https_downgrade = false;
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_FOLLOW);
	/* A 3xx without a usable Location is a plain final response. */
	o = response(302);
	TAP_CHECK(policy_decide(&cfg, &o, 1, 0, false) == POLICY_FINAL);
}

static void test_retry_delay(void)
{
	cfg_defaults();
	cfg.retry_backoff_ms = 1000;
	cfg.retry_max_delay_ms = 60000;
	/* Full jitter: uniform in 0..bound, bound = backoff * 2^(n-1). */
	TAP_CHECK(policy_retry_delay(&cfg, 1, -1, 0) == 0);
	TAP_CHECK(policy_retry_delay(&cfg, 1, -1, 1000) == 1000);
	TAP_CHECK(policy_retry_delay(&cfg, 1, -1, 1001) == 0);
	TAP_CHECK(policy_retry_delay(&cfg, 2, -1, 2000) == 2000);
	TAP_CHECK(policy_retry_delay(&cfg, 3, -1, 4000) == 4000);
	for (uint32_t r = 0; r < 100000; r += 997)
		TAP_CHECK(policy_retry_delay(&cfg, 3, -1, r) <= 4000);
	/* Capped, however many attempts. */
	TAP_CHECK(policy_retry_delay(&cfg, 40, -1, 60000) == 60000);
	TAP_CHECK(policy_retry_delay(&cfg, 40, -1, UINT32_MAX) <= 60000);
	/* Retry-After wins, within the same cap. */
	TAP_CHECK(policy_retry_delay(&cfg, 1, 5000, 7) == 5000);
	TAP_CHECK(policy_retry_delay(&cfg, 1, 0, 7) == 0);
	TAP_CHECK(policy_retry_delay(&cfg, 1, 3600000, 7) == 60000);
	cfg.retry_backoff_ms = 0;
	TAP_CHECK(policy_retry_delay(&cfg, 5, -1, 12345) == 0);
}

static const struct tap_test tests[] = {
	{"error kinds: one name table, names parse back", test_errkind_names},
	{"retryable outcomes", test_retryable},
	{"retry_statuses changes the list", test_retry_statuses},
	{"retry budget, and requeue while shutting down", test_retry_budget},
	{"redirects: follow, limit, downgrade on the parsed scheme",
	 test_redirects},
	{"retry delay: full jitter, cap, Retry-After", test_retry_delay},
	{NULL, NULL},
};

int main(void)
{
	int rc = tap_main(tests);

	config_free(&cfg);
	return rc;
}

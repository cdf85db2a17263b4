/* Unit tests for config.c: defaults, value parsing, every error form,
 * --set, relative paths, reload, dump, and that config/gatherd.conf
 * documents exactly the options of the table with their defaults. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

#ifndef GATHERD_VERSION
#define GATHERD_VERSION "0.0.0"
#endif

/* The scratch directory (absolute, no symbolic links) and the --set texts
 * that put queue_file and database into it. */
static char tmp[PATH_MAX];
static char set_queue[PATH_MAX + 32];
static char set_db[PATH_MAX + 32];

static char *path_in_tmp(const char *rel)
{
	static char buf[4][PATH_MAX + 64];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof buf[0], "%s/%s", tmp, rel);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		TAP_CHECK(f != NULL);
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* Malloc'd contents of a file, or NULL. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t size = 0;
	FILE *m;
	int c;

	if (f == NULL)
		return NULL;
	m = open_memstream(&buf, &size);
	while ((c = getc(f)) != EOF)
		putc(c, m);
	fclose(m);
	fclose(f);
	return buf;
}

/* Load `text` as <tmp>/c.conf, with queue_file and database set into tmp by
 * --set (before the `sets`, so the `sets` can override them). */
static int load_with(const char *text, const char *const *sets, int n,
		     struct config *cfg, char **cause)
{
	struct config_override ov[16];
	int n_ov = 0;

	write_file(path_in_tmp("c.conf"), text);
	ov[n_ov++].text = set_queue;
	ov[n_ov++].text = set_db;
	for (int i = 0; i < n && n_ov < 16; i++)
		ov[n_ov++].text = sets[i];
	*cause = NULL;
	return config_load(cfg, path_in_tmp("c.conf"), ov, n_ov, cause);
}

static int load(const char *text, struct config *cfg)
{
	char *cause;
	int ret = load_with(text, NULL, 0, cfg, &cause);

	if (ret != 0) {
		printf("# unexpected error: %s\n", cause);
		free(cause);
	}
	return ret;
}

/* Check that cause starts with `prefix` and contains every further string
 * (NULL-terminated list). */
static void check_cause(const char *cause, const char *prefix, ...)
{
	va_list ap;
	const char *needle;
	bool ok = cause != NULL && strncmp(cause, prefix, strlen(prefix)) == 0;

	va_start(ap, prefix);
	while (ok && (needle = va_arg(ap, const char *)) != NULL)
		if (strstr(cause, needle) == NULL)
			ok = false;
	va_end(ap);
	if (!ok)
		printf("# cause \"%s\" (expected prefix \"%s\")\n",
		       cause ? cause : "(none)", prefix);
	TAP_CHECK(ok);
}

/* Load `text` (with `set` as an extra --set when not NULL), expect failure,
 * and check the cause: it must start with the file and `line` (or with
 * "--set <set>: " when line is 0) and contain the needles. */
#define EXPECT_ERROR(text, set, line, ...)                                     \
	expect_error((text), (set), (line), __VA_ARGS__, (const char *)NULL)

static void expect_error(const char *text, const char *set, int line, ...)
{
	struct config cfg;
	char *cause = NULL, prefix[PATH_MAX + 512];
	const char *sets[1] = {set};
	const char *needle[8];
	int n = 0, ret;
	va_list ap;

	ret = load_with(text, sets, set != NULL ? 1 : 0, &cfg, &cause);
	TAP_CHECK(ret == -1);
	if (ret == 0) {
		printf("# loaded, expected an error: %s\n", text);
		config_free(&cfg);
		return;
	}
	TAP_CHECK(cfg.queue_file == NULL && cfg.user_agent == NULL);
	if (line > 0)
		snprintf(prefix, sizeof prefix,
			 "%s:%d: ", path_in_tmp("c.conf"), line);
	else
		snprintf(prefix, sizeof prefix, "--set %s: ", set);
	va_start(ap, line);
	while (n < 7 && (needle[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	needle[n] = NULL;
	check_cause(cause, prefix, needle[0], needle[1], needle[2], needle[3],
		    needle[4], needle[5], needle[6], (const char *)NULL);
	free(cause);
}

static void test_defaults(void)
{
	struct config cfg;

	TAP_CHECK(load("", &cfg) == 0);
	TAP_CHECK_STR(cfg.queue_file, path_in_tmp("q"));
	TAP_CHECK_STR(cfg.database, path_in_tmp("db"));
	TAP_CHECK(cfg.log_level == LOG_INFO);
	TAP_CHECK(cfg.stats_interval_s == 10);
	TAP_CHECK(cfg.max_in_flight == 64);
	TAP_CHECK(cfg.max_per_host == 8);
	TAP_CHECK(cfg.host_delay_ms == 0);
	TAP_CHECK(cfg.connect_timeout_ms == 10000);
	TAP_CHECK(cfg.idle_timeout_ms == 30000);
	TAP_CHECK(cfg.request_timeout_ms == 120000);
	TAP_CHECK(cfg.retries == 2);
	TAP_CHECK(cfg.max_redirects == 10);
	TAP_CHECK(cfg.retry_backoff_ms == 1000);
	TAP_CHECK(cfg.retry_max_delay_ms == 60000);
	TAP_CHECK(!cfg.allow_https_downgrade);
	TAP_CHECK(cfg.max_body_bytes == 104857600);
	TAP_CHECK(cfg.max_header_bytes == 65536);
	TAP_CHECK_STR(cfg.user_agent, "gatherd/" GATHERD_VERSION);
	TAP_CHECK(cfg.tls_verify == true);
	TAP_CHECK_STR(cfg.tls_ca_file, "");
	TAP_CHECK_STR(cfg.dns_nameserver, "");
	TAP_CHECK(cfg.dns_timeout_ms == 5000);
	TAP_CHECK(cfg.dns_cache_ttl_s == 300);
	TAP_CHECK(cfg.shutdown_timeout_ms == 10000);
	config_free(&cfg);
	TAP_CHECK(cfg.queue_file == NULL && cfg.dns_nameserver == NULL);
	config_free(&cfg); /* twice is harmless */
}

static void test_table(void)
{
	int n = 0;

	while (config_option_name(n) != NULL) {
		TAP_CHECK(config_option_default(n) != NULL);
		n++;
	}
	TAP_CHECK(n == 43);
	TAP_CHECK(config_option_name(-1) == NULL);
	TAP_CHECK(config_option_default(n) == NULL);
	TAP_CHECK_STR(config_option_name(0), "gatherd.queue_file");
	TAP_CHECK_STR(config_option_default(0), "/var/lib/gatherd/queue");
	TAP_CHECK_STR(config_option_default(1), "/var/lib/gatherd/gatherd.db");
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			TAP_CHECK(strcmp(config_option_name(i),
					 config_option_name(j)) != 0);
}

/* Without -c the default file is optional. */
static void test_default_path(void)
{
	struct config_override ov[2] = {{set_queue}, {set_db}};
	struct config cfg;
	char *cause = NULL;

	if (access(CONFIG_DEFAULT_PATH, F_OK) == 0 || errno != ENOENT) {
		printf("# skipped: %s exists\n", CONFIG_DEFAULT_PATH);
		return;
	}
	TAP_CHECK(config_load(&cfg, NULL, ov, 2, &cause) == 0);
	TAP_CHECK(cause == NULL);
	TAP_CHECK(cfg.max_in_flight == 64);
	config_free(&cfg);

	/* And the defaults' directories are checked like any other value. */
	if (access("/var/lib/gatherd", F_OK) != 0) {
		TAP_CHECK(config_load(&cfg, NULL, NULL, 0, &cause) == -1);
		check_cause(cause, "[gatherd] queue_file (default ",
			    "directory /var/lib/gatherd does not exist",
			    (const char *)NULL);
		free(cause);
	}
}

static void test_parse_int(void)
{
	struct config cfg;

	TAP_CHECK(load("[gatherd]\nstats_interval_s = 0\n"
		       "[fetch]\nmax_in_flight = 100000\nmax_per_host = 1\n"
		       "host_delay_ms = +5\nconnect_timeout_ms=600000\n"
		       "idle_timeout_ms = 1\nrequest_timeout_ms = 86400000\n"
		       "retries = 0\nmax_redirects = 100\n"
		       "[dns]\ntimeout_ms = 100\ncache_ttl_s = 86400\n",
		       &cfg) == 0);
	TAP_CHECK(cfg.stats_interval_s == 0);
	TAP_CHECK(cfg.max_in_flight == 100000);
	TAP_CHECK(cfg.max_per_host == 1);
	TAP_CHECK(cfg.host_delay_ms == 5);
	TAP_CHECK(cfg.connect_timeout_ms == 600000);
	TAP_CHECK(cfg.idle_timeout_ms == 1);
	TAP_CHECK(cfg.request_timeout_ms == 86400000);
	TAP_CHECK(cfg.retries == 0);
	TAP_CHECK(cfg.max_redirects == 100);
	TAP_CHECK(cfg.dns_timeout_ms == 100);
	TAP_CHECK(cfg.dns_cache_ttl_s == 86400);
	config_free(&cfg);
}

static void test_parse_size(void)
{
	static const struct {
		const char *text;
		int64_t value;
	} cases[] = {
	    {"0", 0},
	    {"1k", 1024},
	    {"1K", 1024},
	    {"100m", 104857600},
	    {"3M", 3145728},
	    {"1g", 1073741824},
	    {"1024G", INT64_C(1099511627776)},
	    {"1099511627776", INT64_C(1099511627776)},
	    {"12345", 12345},
	};
	struct config cfg;
	char text[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text,
			 "[fetch]\nmax_body_bytes = %s\n"
			 "max_header_bytes = 16m\n",
			 cases[i].text);
		TAP_CHECK(load(text, &cfg) == 0);
		TAP_CHECK(cfg.max_body_bytes == cases[i].value);
		TAP_CHECK(cfg.max_header_bytes == 16777216);
		config_free(&cfg);
	}
	TAP_CHECK(load("[fetch]\nmax_header_bytes = 1k\n", &cfg) == 0);
	TAP_CHECK(cfg.max_header_bytes == 1024);
	config_free(&cfg);
}

static void test_parse_bool(void)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {
	    {"true", true}, {"false", false}, {"yes", true}, {"no", false},
	    {"on", true},   {"off", false},   {"1", true},   {"0", false},
	    {"TRUE", true}, {"Off", false},
	};
	struct config cfg;
	char text[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "[tls]\nverify = %s\n",
			 cases[i].text);
		TAP_CHECK(load(text, &cfg) == 0);
		TAP_CHECK(cfg.tls_verify == cases[i].value);
		config_free(&cfg);
	}
}

static void test_parse_log_level(void)
{
	static const struct {
		const char *text;
		int value;
	} cases[] = {
	    {"error", LOG_ERROR}, {"warn", LOG_WARN},	{"warning", LOG_WARN},
	    {"info", LOG_INFO},	  {"debug", LOG_DEBUG}, {"DEBUG", LOG_DEBUG},
	};
	struct config cfg;
	char text[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "[gatherd]\nlog_level = %s\n",
			 cases[i].text);
		TAP_CHECK(load(text, &cfg) == 0);
		TAP_CHECK(cfg.log_level == cases[i].value);
		config_free(&cfg);
	}
}

static void test_inline_hash_comment(void)
{
	struct config cfg;

	TAP_CHECK(load("[fetch]\nmax_in_flight = 12 # twelve\n"
		       "user_agent = bot/1\t# mine\n"
		       "header = X-A: a#b # c\n",
		       &cfg) == 0);
	TAP_CHECK(cfg.max_in_flight == 12);
	TAP_CHECK_STR(cfg.user_agent, "bot/1");
	TAP_CHECK_STR(cfg.headers, "X-A: a#b");
	config_free(&cfg);
}

static void test_parse_enum(void)
{
	struct config cfg;
	char *cause = NULL;

	TAP_CHECK(load("[capture]\n", &cfg) == 0);
	TAP_CHECK(cfg.capture_digest == CONFIG_DIGEST_SHA256);
	config_free(&cfg);
	TAP_CHECK(load("[capture]\ndigest = none\n", &cfg) == 0);
	TAP_CHECK(cfg.capture_digest == CONFIG_DIGEST_NONE);
	config_free(&cfg);
	TAP_CHECK(load("[capture]\ndigest = SHA256\n", &cfg) == 0);
	TAP_CHECK(cfg.capture_digest == CONFIG_DIGEST_SHA256);
	config_free(&cfg);
	TAP_CHECK(load_with("[capture]\ndigest = md5\n", NULL, 0, &cfg, &cause) == -1);
	TAP_CHECK(cause != NULL &&
		  strstr(cause, "[capture] digest: bad value \"md5\" (use "
				"sha256, none)") != NULL);
	free(cause);
}

static void test_header_list(void)
{
	struct config cfg;
	char *cause = NULL;
	static const char *const one[] = {"fetch.header=X-Set: 1"};
	static const char *const two[] = {"fetch.header=X-Set: 1",
					  "fetch.header=X-Set: 2"};

	TAP_CHECK(load("[fetch]\nheader = Accept-Language: de\n"
		       "header = Cookie: a=b; c=d\n",
		       &cfg) == 0);
	TAP_CHECK_STR(cfg.headers, "Accept-Language: de\nCookie: a=b; c=d");
	TAP_CHECK_STR(cfg.header_lines,
		      "Accept-Language: de\r\nCookie: a=b; c=d\r\n");
	config_free(&cfg);
	/* The first --set replaces the file's list, later ones add. */
	TAP_CHECK(load_with("[fetch]\nheader = A: 1\n", one, 1, &cfg,
			    &cause) == 0);
	TAP_CHECK_STR(cfg.headers, "X-Set: 1");
	config_free(&cfg);
	TAP_CHECK(load_with("[fetch]\nheader = A: 1\n", two, 2, &cfg,
			    &cause) == 0);
	TAP_CHECK_STR(cfg.headers, "X-Set: 1\nX-Set: 2");
	config_free(&cfg);
	/* An empty value clears. */
	TAP_CHECK(load("[fetch]\nheader = A: 1\nheader =\nheader = B: 2\n",
		       &cfg) == 0);
	TAP_CHECK_STR(cfg.headers, "B: 2");
	config_free(&cfg);
	TAP_CHECK(load("[fetch]\n", &cfg) == 0);
	TAP_CHECK(cfg.header_lines == NULL);
	config_free(&cfg);
	/* Refused, each naming its line. */
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"[fetch]\nheader = A: 1\nheader = Host: x\n",
		 "c.conf:3: [fetch] header: Host cannot be set"},
		{"[fetch]\nheader = user-agent: x\n",
		 "use [fetch] user_agent"},
		{"[fetch]\nheader = Connection: close\n",
		 "Connection cannot be set"},
		{"[fetch]\nheader = no colon here\n",
		 "is not \"Name: value\""},
		{"[fetch]\nheader = Bad Name: 1\n",
		 "bad character 0x20 in the header name"},
		{"[fetch]\naccept_encoding = br\n",
		 "bad value \"br\" (use identity, gzip)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		TAP_CHECK(load_with(bad[i].text, NULL, 0, &cfg, &cause) == -1);
		if (cause == NULL || strstr(cause, bad[i].want) == NULL) {
			printf("# got \"%s\", want \"%s\"\n",
			       cause ? cause : "(null)", bad[i].want);
			TAP_CHECK(false);
		}
		free(cause);
	}
}

static void test_parse_strings(void)
{
	struct config cfg;

	/* A ';' after a space starts a comment; other ';' are kept.  An
	 * indented line is a key of its own, not a continuation. */
	TAP_CHECK(load("\xef\xbb\xbf# comment\n; comment\n\n"
		       "  [fetch]  \n"
		       "user_agent = Mozilla/5.0 (X11; Linux) x/1 ; note\n"
		       "\tretries = 4\n"
		       "    max_redirects: 3\n"
		       "[dns]\nnameserver = 127.0.0.1:5353\n",
		       &cfg) == 0);
	TAP_CHECK_STR(cfg.user_agent, "Mozilla/5.0 (X11; Linux) x/1");
	TAP_CHECK(cfg.retries == 4);
	TAP_CHECK(cfg.max_redirects == 3);
	TAP_CHECK_STR(cfg.dns_nameserver, "127.0.0.1:5353");
	config_free(&cfg);

	/* Section and key names are not case-sensitive. */
	TAP_CHECK(load("[Fetch]\nRetries = 5\n", &cfg) == 0);
	TAP_CHECK(cfg.retries == 5);
	config_free(&cfg);

	/* Comments may be longer than a value line may be. */
	{
		char text[1200] = "# ";

		memset(text + 2, 'x', 1000);
		strcpy(text + 1002, "\n[fetch]\nretries = 1\n");
		TAP_CHECK(load(text, &cfg) == 0);
		TAP_CHECK(cfg.retries == 1);
		config_free(&cfg);
	}
}

static void test_nameserver(void)
{
	static const char *const good[] = {
	    "127.0.0.1", "10.1.2.3:53", "127.0.0.1:65535", "::1",
	    "fe80::1",	 "[::1]:5353",	"[2001:db8::1]",
	};
	static const char *const bad[] = {
	    "localhost",     "1.2.3",	    "127.0.0.1:0",  "127.0.0.1:65536",
	    "127.0.0.1:",    "127.0.0.1:x", "1.2.3.4:53:1", "[::1",
	    "[::1]:",	     "[::1]x",	    "[1.2.3.4]:53", "[::1]:99999",
	    "127.0.0.1:+53",
	};
	struct config cfg;
	char text[128];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(text, sizeof text, "[dns]\nnameserver = %s\n",
			 good[i]);
		TAP_CHECK(load(text, &cfg) == 0);
		TAP_CHECK_STR(cfg.dns_nameserver, good[i]);
		config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "[dns]\n\nnameserver = %s\n",
			 bad[i]);
		EXPECT_ERROR(text, NULL, 3,
			     "[dns] nameserver: ", "bad nameserver", bad[i]);
	}
}

/* [store]: the backend, a connection string that never holds a password
 * (nor shows it in the error), the node name. */
static void test_store(void)
{
	struct config cfg;

	TAP_CHECK(load("", &cfg) == 0);
	TAP_CHECK(cfg.store_backend == CONFIG_STORE_SQLITE);
	TAP_CHECK_STR(cfg.store_conninfo, "");
	TAP_CHECK_STR(cfg.node_name, "");
	TAP_CHECK(cfg.lease_s == 30);
	config_free(&cfg);
	TAP_CHECK(load("[store]\nbackend = postgresql\nconninfo = host=127.0.0.1 "
		       "port=5433 dbname=g user=u\nnode_name = node-1.a_b\n"
		       "lease_s = 3\n",
		       &cfg) == 0);
	TAP_CHECK(cfg.store_backend == CONFIG_STORE_POSTGRESQL);
	TAP_CHECK_STR(cfg.store_conninfo,
		      "host=127.0.0.1 port=5433 dbname=g user=u");
	TAP_CHECK_STR(cfg.node_name, "node-1.a_b");
	TAP_CHECK(cfg.lease_s == 3);
	config_free(&cfg);
	TAP_CHECK(load("[store]\nconninfo = postgresql://u@db.example/g\n",
		       &cfg) == 0);
	config_free(&cfg);
	EXPECT_ERROR("[store]\nbackend = mysql\n", NULL, 2,
		     "[store] backend: ");
	EXPECT_ERROR("[store]\n\nconninfo = host=h password=s3cret\n", NULL,
		     3, "[store] conninfo: ", "must not hold a password",
		     ".pgpass");
	EXPECT_ERROR("[store]\nconninfo = postgresql://u:s3cret@h/g\n", NULL,
		     2, "[store] conninfo: ", "must not hold a password");
	EXPECT_ERROR("[store]\nconninfo = host\n", NULL, 2,
		     "[store] conninfo: ", "not a libpq connection string");
	EXPECT_ERROR("[store]\nnode_name = a b\n", NULL, 2,
		     "[store] node_name: ");
	EXPECT_ERROR("[store]\nlease_s = 2\n", NULL, 2, "[store] lease_s: ");
	/* The password in the file is not repeated in the error. */
	{
		char *cause = NULL;

		TAP_CHECK(load_with("[store]\nconninfo = password=s3cret\n",
				    NULL, 0, &cfg, &cause) == -1);
		TAP_CHECK(cause != NULL && strstr(cause, "s3cret") == NULL);
		free(cause);
	}
	/* Nor where libpq cannot parse the text (its own message quotes
	 * it), nor in a dbname that libpq would repeat in its errors. */
	static const char *const leaky[] = {
	    "postgresql://u:s3cret@[::1/db",
	    "host=h password:s3cret",
	    "dbname='postgresql://u:s3cret@h/g'",
	};
	for (size_t i = 0; i < sizeof leaky / sizeof *leaky; i++) {
		char text[128], *cause = NULL;

		snprintf(text, sizeof text, "[store]\nconninfo = %s\n",
			 leaky[i]);
		TAP_CHECK(load_with(text, NULL, 0, &cfg, &cause) == -1);
		TAP_CHECK(cause != NULL && strstr(cause, "s3cret") == NULL);
		free(cause);
	}
}

static void test_ca_file(void)
{
	struct config cfg;
	char text[PATH_MAX + 64];

	write_file(path_in_tmp("ca.pem"), "not really a PEM file\n");
	TAP_CHECK(load("[tls]\nca_file = ca.pem\n", &cfg) == 0);
	TAP_CHECK_STR(cfg.tls_ca_file, path_in_tmp("ca.pem"));
	config_free(&cfg);

	snprintf(text, sizeof text, "[tls]\nca_file = %s\n",
		 path_in_tmp("ca.pem"));
	TAP_CHECK(load(text, &cfg) == 0);
	TAP_CHECK_STR(cfg.tls_ca_file, path_in_tmp("ca.pem"));
	config_free(&cfg);

	EXPECT_ERROR("[tls]\nca_file = missing.pem\n", NULL, 2,
		     "[tls] ca_file: ", path_in_tmp("missing.pem"),
		     "No such file");
	EXPECT_ERROR("[tls]\nca_file = .\n", NULL, 2,
		     "[tls] ca_file: ", "is not a file");
}

static void test_user_agent(void)
{
	EXPECT_ERROR("", "fetch.user_agent=", 0,
		     "[fetch] user_agent: ", "must not be empty");
	EXPECT_ERROR("", "fetch.user_agent=a\r\nX-Evil: 1", 0,
		     "[fetch] user_agent: ", "printable ASCII", "0x0d");
	EXPECT_ERROR("", "fetch.user_agent=caf\xc3\xa9", 0,
		     "[fetch] user_agent: ", "printable ASCII");
	EXPECT_ERROR("[fetch]\nuser_agent =\n", NULL, 2,
		     "[fetch] user_agent: ", "must not be empty");
}

static void test_errors_file(void)
{
	char text[512];

	EXPECT_ERROR("[gatherd]\n\n[bogus]\nx = 1\n", NULL, 3,
		     "unknown section [bogus]");
	EXPECT_ERROR("[fetch]\nretries = 1\n[empty]\n", NULL, 3,
		     "unknown section [empty]");
	EXPECT_ERROR("[fetch]\nbogus = 1\n", NULL, 2,
		     "unknown key [fetch] bogus");
	EXPECT_ERROR("[tls]\nretries = 1\n", NULL, 2,
		     "unknown key [tls] retries");
	EXPECT_ERROR("retries = 1\n", NULL, 1, "retries",
		     "outside of any [section]");
	EXPECT_ERROR("[fetch]\nretries = 12x\n", NULL, 2,
		     "[fetch] retries: ", "bad number \"12x\"");
	EXPECT_ERROR("[fetch]\nretries =\n", NULL, 2,
		     "[fetch] retries: ", "bad number");
	EXPECT_ERROR("[fetch]\nretries = 0x10\n", NULL, 2,
		     "[fetch] retries: ", "bad number");
	EXPECT_ERROR("[fetch]\nretries = 1k\n", NULL, 2,
		     "[fetch] retries: ", "bad number");
	EXPECT_ERROR("[fetch]\nmax_in_flight = 99999999999999999999\n", NULL, 2,
		     "[fetch] max_in_flight: ", "bad number", "overflow");
	EXPECT_ERROR(
	    "[fetch]\nmax_in_flight = 0\n", NULL, 2,
	    "[fetch] max_in_flight: ", "value 0 out of range 1..100000");
	EXPECT_ERROR("[fetch]\nmax_in_flight = 4294967297\n", NULL, 2,
		     "[fetch] max_in_flight: ", "out of range 1..100000");
	EXPECT_ERROR("[fetch]\nretries = -1\n", NULL, 2,
		     "[fetch] retries: ", "out of range 0..100");
	EXPECT_ERROR("[gatherd]\nstats_interval_s = 86401\n", NULL, 2,
		     "[gatherd] stats_interval_s: ", "out of range 0..86400");
	EXPECT_ERROR(
	    "[fetch]\nmax_body_bytes = 1025g\n", NULL, 2,
	    "[fetch] max_body_bytes: ", "out of range 0..1099511627776");
	EXPECT_ERROR(
	    "[fetch]\nmax_header_bytes = 1023\n", NULL, 2,
	    "[fetch] max_header_bytes: ", "out of range 1024..16777216");
	EXPECT_ERROR("[fetch]\nmax_body_bytes = 10x\n", NULL, 2,
		     "[fetch] max_body_bytes: ", "bad number \"10x\"");
	EXPECT_ERROR("[fetch]\nmax_body_bytes = 10kb\n", NULL, 2,
		     "[fetch] max_body_bytes: ", "bad number");
	EXPECT_ERROR("[fetch]\nmax_body_bytes = k\n", NULL, 2,
		     "[fetch] max_body_bytes: ", "bad number");
	EXPECT_ERROR("[fetch]\nmax_body_bytes = 9999999999999g\n", NULL, 2,
		     "[fetch] max_body_bytes: ", "overflow");
	EXPECT_ERROR("[tls]\nverify = maybe\n", NULL, 2,
		     "[tls] verify: ", "bad boolean \"maybe\"");
	EXPECT_ERROR("[gatherd]\nlog_level = loud\n", NULL, 2,
		     "[gatherd] log_level: ", "bad log level \"loud\"");
	EXPECT_ERROR("[fetch]\nretries = 1\n# again\nretries = 2\n", NULL, 4,
		     "[fetch] retries: ", "duplicate key",
		     "first set on line 2");
	EXPECT_ERROR("[fetch]\nretries = 1\n[tls]\nverify = no\n[fetch]\n"
		     "retries = 1\n",
		     NULL, 6, "[fetch] retries: ", "first set on line 2");
	EXPECT_ERROR("[fetch]\nretries\n", NULL, 2, "syntax error");
	EXPECT_ERROR("[fetch\nretries = 1\n", NULL, 1, "syntax error");
	/* The first error wins, whoever finds it. */
	EXPECT_ERROR("[fetch]\njunk\nbogus = 1\n", NULL, 2, "syntax error");
	EXPECT_ERROR("[fetch]\nbogus = 1\njunk\n", NULL, 2, "unknown key");

	snprintf(text, sizeof text, "[fetch]\nuser_agent = %0300d\n", 0);
	EXPECT_ERROR(text, NULL, 2, "line too long");

	/* Required directories, from the file. */
	{
		struct config_override ov[1] = {{set_db}};
		struct config cfg;
		char *cause = NULL, prefix[PATH_MAX + 64], dir[PATH_MAX + 64];

		write_file(path_in_tmp("c.conf"),
			   "[gatherd]\nqueue_file = nodir/q\n");
		TAP_CHECK(config_load(&cfg, path_in_tmp("c.conf"), ov, 1,
				      &cause) == -1);
		snprintf(prefix, sizeof prefix,
			 "%s:2: [gatherd] queue_file: ", path_in_tmp("c.conf"));
		snprintf(dir, sizeof dir, "directory %s does not exist",
			 path_in_tmp("nodir"));
		check_cause(cause, prefix, dir, (const char *)NULL);
		free(cause);

		write_file(path_in_tmp("c.conf"),
			   "[gatherd]\nqueue_file = c.conf/q\n");
		TAP_CHECK(config_load(&cfg, path_in_tmp("c.conf"), ov, 1,
				      &cause) == -1);
		check_cause(cause, prefix, "is not a directory",
			    (const char *)NULL);
		free(cause);

		write_file(path_in_tmp("c.conf"),
			   "[gatherd]\nqueue_file = .\n");
		TAP_CHECK(config_load(&cfg, path_in_tmp("c.conf"), ov, 1,
				      &cause) == -1);
		check_cause(cause, prefix, "is a directory",
			    (const char *)NULL);
		free(cause);
	}

	/* queue_file and database must not be the same file. */
	snprintf(text, sizeof text, "gatherd.database=%s", path_in_tmp("q"));
	EXPECT_ERROR("", text, 0, "[gatherd] database: ", "must differ");
}

static void test_errors_open(void)
{
	struct config cfg;
	char *cause = NULL, prefix[PATH_MAX + 64];

	TAP_CHECK(
	    config_load(&cfg, path_in_tmp("nope.conf"), NULL, 0, &cause) == -1);
	snprintf(prefix, sizeof prefix,
		 "cannot open config file %s: ", path_in_tmp("nope.conf"));
	check_cause(cause, prefix, "No such file", (const char *)NULL);
	free(cause);

	TAP_CHECK(config_load(&cfg, tmp, NULL, 0, &cause) == -1);
	check_cause(cause, "cannot read config file ", tmp, "directory",
		    (const char *)NULL);
	free(cause);

	/* A NULL cause is allowed. */
	TAP_CHECK(config_load(&cfg, path_in_tmp("nope.conf"), NULL, 0, NULL) ==
		  -1);
}

static void test_set(void)
{
	const char *sets[] = {"fetch.retries=7", "fetch.max_redirects=1",
			      "fetch.max_redirects = 2", "TLS.Verify=off",
			      "fetch.user_agent=a=b c"};
	struct config cfg;
	char *cause = NULL;

	/* --set wins over the file; the last --set wins. */
	TAP_CHECK(load_with("[fetch]\nretries = 5\nmax_redirects = 9\n", sets,
			    5, &cfg, &cause) == 0);
	TAP_CHECK(cause == NULL);
	TAP_CHECK(cfg.retries == 7);
	TAP_CHECK(cfg.max_redirects == 2);
	TAP_CHECK(cfg.tls_verify == false);
	TAP_CHECK_STR(cfg.user_agent, "a=b c");
	config_free(&cfg);

	/* A bad file value is an error even when --set overrides it. */
	EXPECT_ERROR("[fetch]\nretries = x\n", "fetch.retries=1", 2,
		     "[fetch] retries: ");

	EXPECT_ERROR("", "fetch.retries", 0, "expected section.key=value");
	EXPECT_ERROR("", "retries=3", 0, "expected section.key=value");
	EXPECT_ERROR("", "fetch.bogus=1", 0, "unknown key [fetch] bogus");
	EXPECT_ERROR("", "bogus.retries=1", 0, "unknown section [bogus]");
	EXPECT_ERROR("", "fetch.retries=abc", 0,
		     "[fetch] retries: ", "bad number \"abc\"");
	EXPECT_ERROR("", "fetch.max_in_flight=0", 0,
		     "[fetch] max_in_flight: ", "out of range 1..100000");
	EXPECT_ERROR("", "tls.verify=2", 0, "[tls] verify: ", "bad boolean");
	EXPECT_ERROR("", "gatherd.log_level=", 0,
		     "[gatherd] log_level: ", "bad log level");
	EXPECT_ERROR("", "gatherd.queue_file=/nonexistent-gatherd/x/q", 0,
		     "[gatherd] queue_file: ",
		     "directory /nonexistent-gatherd/x does not exist");
	EXPECT_ERROR("", "gatherd.database=", 0,
		     "[gatherd] database: ", "must be set");
	EXPECT_ERROR("", "dns.nameserver=localhost", 0,
		     "[dns] nameserver: ", "bad nameserver");
}

static void test_relative_paths(void)
{
	struct config_override ov[2];
	struct config cfg;
	char *cause = NULL, cwd[PATH_MAX];

	TAP_CHECK(mkdir(path_in_tmp("sub"), 0700) == 0);
	TAP_CHECK(mkdir(path_in_tmp("sub/data"), 0700) == 0);
	write_file(path_in_tmp("sub/g.conf"),
		   "[gatherd]\nqueue_file = data/q\ndatabase = ./db\n"
		   "[tls]\nca_file = ../ca.pem\n");
	write_file(path_in_tmp("ca.pem"), "x\n");

	/* From a file: against the file's directory, however the file was
	 * named. */
	for (int pass = 0; pass < 2; pass++) {
		TAP_CHECK(getcwd(cwd, sizeof cwd) != NULL);
		if (pass == 1)
			TAP_CHECK(chdir(tmp) == 0);
		TAP_CHECK(config_load(&cfg,
				      pass == 0 ? path_in_tmp("sub/g.conf")
						: "sub/../sub/./g.conf",
				      NULL, 0, &cause) == 0);
		if (cause != NULL)
			printf("# %s\n", cause);
		TAP_CHECK_STR(cfg.queue_file, path_in_tmp("sub/data/q"));
		TAP_CHECK_STR(cfg.database, path_in_tmp("sub/db"));
		/* ".." in a value is kept: it may cross a symbolic link. */
		TAP_CHECK_STR(cfg.tls_ca_file, path_in_tmp("sub/../ca.pem"));
		config_free(&cfg);
		TAP_CHECK(chdir(cwd) == 0);
	}

	/* From --set: against the current directory. */
	TAP_CHECK(getcwd(cwd, sizeof cwd) != NULL);
	TAP_CHECK(chdir(path_in_tmp("sub")) == 0);
	ov[0].text = "gatherd.queue_file=data/q2";
	ov[1].text = "gatherd.database=db2";
	TAP_CHECK(config_load(&cfg, path_in_tmp("sub/g.conf"), ov, 2, &cause) ==
		  0);
	TAP_CHECK_STR(cfg.queue_file, path_in_tmp("sub/data/q2"));
	TAP_CHECK_STR(cfg.database, path_in_tmp("sub/db2"));
	config_free(&cfg);
	TAP_CHECK(chdir(cwd) == 0);
}

static void test_reload(void)
{
	struct config cur, next;
	bool changed = true;
	char *cause = NULL;
	const char *sets[] = {"tls.verify=false", "dns.timeout_ms=200"};

	TAP_CHECK(load("", &cur) == 0);
	TAP_CHECK(load("[gatherd]\nlog_level = debug\nstats_interval_s = 0\n"
		       "[fetch]\nmax_in_flight = 5\nmax_per_host = 2\n"
		       "host_delay_ms = 7\nconnect_timeout_ms = 8\n"
		       "idle_timeout_ms = 9\nrequest_timeout_ms = 10\n"
		       "retries = 11\nmax_redirects = 12\n"
		       "max_body_bytes = 1m\nmax_header_bytes = 2k\n"
		       "user_agent = other/2\n",
		       &next) == 0);
	config_apply_reload(&cur, &next, &changed);
	TAP_CHECK(changed == false);
	TAP_CHECK(cur.log_level == LOG_DEBUG);
	TAP_CHECK(cur.stats_interval_s == 0);
	TAP_CHECK(cur.max_in_flight == 5);
	TAP_CHECK(cur.max_per_host == 2);
	TAP_CHECK(cur.host_delay_ms == 7);
	TAP_CHECK(cur.connect_timeout_ms == 8);
	TAP_CHECK(cur.idle_timeout_ms == 9);
	TAP_CHECK(cur.request_timeout_ms == 10);
	TAP_CHECK(cur.retries == 11);
	TAP_CHECK(cur.max_redirects == 12);
	TAP_CHECK(cur.max_body_bytes == 1048576);
	TAP_CHECK(cur.max_header_bytes == 2048);
	TAP_CHECK_STR(cur.user_agent, "other/2");
	TAP_CHECK(cur.user_agent != next.user_agent); /* a copy */
	config_free(&next);
	TAP_CHECK_STR(cur.user_agent, "other/2");

	/* Fixed options are reported and not copied; the reloadable ones
	 * still are. */
	TAP_CHECK(load_with("[fetch]\nuser_agent = third/3\n", sets, 2, &next,
			    &cause) == 0);
	changed = false;
	config_apply_reload(&cur, &next, &changed);
	TAP_CHECK(changed == true);
	TAP_CHECK(cur.tls_verify == true);
	TAP_CHECK(cur.dns_timeout_ms == 5000);
	TAP_CHECK_STR(cur.user_agent, "third/3");
	TAP_CHECK(cur.max_in_flight == 64);
	config_free(&next);

	/* A different path is a fixed change too. */
	TAP_CHECK(load_with("", (const char *[]){"gatherd.database=db2"}, 1,
			    &next, &cause) == 0);
	changed = false;
	config_apply_reload(&cur, &next, &changed);
	TAP_CHECK(changed == true);
	TAP_CHECK_STR(cur.database, path_in_tmp("db"));
	config_free(&next);
	config_free(&cur);
}

/* config_dump() output, malloc'd. */
static char *dump_to_string(const struct config *cfg)
{
	const char *path = path_in_tmp("dump.out");
	int saved, fd;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0)
		return NULL;
	dup2(fd, STDOUT_FILENO);
	close(fd);
	config_dump(cfg);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return read_file(path);
}

static void test_dump(void)
{
	struct config cfg, again;
	char *out, *out2, name[128], *dot;
	char ca_set[PATH_MAX + 32];
	const char *sets[] = {"dns.nameserver=[::1]:53", ca_set};
	char *cause = NULL;

	TAP_CHECK(load("", &cfg) == 0);
	out = dump_to_string(&cfg);
	TAP_CHECK(out != NULL);
	if (out == NULL)
		return;
	TAP_CHECK(strncmp(out, "[gatherd]\nqueue_file = ", 23) == 0);
	TAP_CHECK(strstr(out, "\n\n[fetch]\nmax_in_flight = 64\n") != NULL);
	TAP_CHECK(strstr(out, "\nlog_level = info\n") != NULL);
	TAP_CHECK(strstr(out, "\nmax_body_bytes = 104857600\n") != NULL);
	TAP_CHECK(strstr(out, "\n[tls]\nverify = true\nca_file =\n") != NULL);
	TAP_CHECK(strstr(out, "\n[dns]\nnameserver =\n") != NULL);
	for (int i = 0; config_option_name(i) != NULL; i++) {
		char section[160];

		snprintf(name, sizeof name, "%s", config_option_name(i));
		dot = strchr(name, '.');
		*dot = '\0';
		snprintf(section, sizeof section, "[%s]\n", name);
		TAP_CHECK(strstr(out, section) != NULL);
		memmove(name + 1, dot + 1, strlen(dot + 1) + 1);
		name[0] = '\n';
		strcat(name, " =");
		TAP_CHECK(strstr(out, name) != NULL);
	}
	config_free(&cfg);
	free(out);

	/* What it prints loads back to the same configuration. */
	write_file(path_in_tmp("ca.pem"), "x\n");
	snprintf(ca_set, sizeof ca_set, "tls.ca_file=%s",
		 path_in_tmp("ca.pem"));
	TAP_CHECK(load_with("[gatherd]\nlog_level = warn\n"
			    "[fetch]\nmax_body_bytes = 3g\n"
			    "user_agent = x (a; b)\n[tls]\nverify = off\n",
			    sets, 2, &cfg, &cause) == 0);
	out = dump_to_string(&cfg);
	write_file(path_in_tmp("dumped.conf"), out != NULL ? out : "");
	TAP_CHECK(config_load(&again, path_in_tmp("dumped.conf"), NULL, 0,
			      &cause) == 0);
	out2 = dump_to_string(&again);
	TAP_CHECK(out != NULL && out2 != NULL && strcmp(out, out2) == 0);
	free(out);
	free(out2);
	config_free(&again);
	config_free(&cfg);
}

/* config/gatherd.conf documents every option of the table, under its
 * section, with the table's default, and nothing else. */
static void test_documented(void)
{
	const char *root = getenv("GATHERD_SOURCE_ROOT");
	char path[PATH_MAX], section[64] = "", line[1024];
	bool seen[64] = {false}, has_default = false;
	int n = 0, lineno = 0;
	FILE *f;

	while (config_option_name(n) != NULL)
		n++;
	TAP_CHECK(n <= 64);
	snprintf(path, sizeof path, "%s/config/gatherd.conf",
		 root != NULL ? root : ".");
	f = fopen(path, "r");
	if (f == NULL) {
		printf("# cannot open %s (set GATHERD_SOURCE_ROOT): %s\n", path,
		       strerror(errno));
		TAP_CHECK(f != NULL);
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *s = line, *e, *key, *value, name[1200];
		int i;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (*s == '\0') {
			has_default = false; /* blank line ends a block */
			continue;
		}
		if (*s == '[') {
			e = strchr(s, ']');
			TAP_CHECK(e != NULL);
			if (e != NULL)
				snprintf(section, sizeof section, "%.*s",
					 (int)(e - s - 1), s + 1);
			continue;
		}
		if (*s == '#')
			for (s++; *s == ' '; s++)
				;
		/* A key line is `key = value` or `# key = value`; any other
		 * comment is prose. */
		key = s;
		for (e = s; (*e >= 'a' && *e <= 'z') || *e == '_' ||
			    (e > s && *e >= '0' && *e <= '9');
		     e++)
			;
		value = e;
		while (*value == ' ')
			value++;
		if (e == key || *value != '=') {
			if (strstr(s, "Default") != NULL)
				has_default = true;
			continue;
		}
		*e = '\0';
		for (value++; *value == ' '; value++)
			;
		snprintf(name, sizeof name, "%s.%s", section, key);
		for (i = 0; i < n; i++)
			if (strcmp(config_option_name(i), name) == 0)
				break;
		if (i == n) {
			printf("# %s:%d: %s is not an option\n", path, lineno,
			       name);
			TAP_CHECK(i < n);
			continue;
		}
		if (seen[i]) {
			printf("# %s:%d: %s documented twice\n", path, lineno,
			       name);
			TAP_CHECK(!seen[i]);
		}
		seen[i] = true;
		if (strcmp(value, config_option_default(i)) != 0) {
			printf("# %s:%d: %s = \"%s\", but the default is "
			       "\"%s\"\n",
			       path, lineno, name, value,
			       config_option_default(i));
			TAP_CHECK(strcmp(value, config_option_default(i)) == 0);
		}
		if (!has_default) {
			printf("# %s:%d: %s has no comment stating its "
			       "default\n",
			       path, lineno, name);
			TAP_CHECK(has_default);
		}
		has_default = false;
	}
	fclose(f);
	for (int i = 0; i < n; i++) {
		if (!seen[i])
			printf("# %s is not documented in %s\n",
			       config_option_name(i), path);
		TAP_CHECK(seen[i]);
	}

	/* The file loads, and gives the defaults. */
	{
		struct config_override ov[2] = {{set_queue}, {set_db}};
		struct config a, b;
		char *cause = NULL, *da, *db;

		TAP_CHECK(config_load(&a, path, ov, 2, &cause) == 0);
		if (cause != NULL)
			printf("# %s\n", cause);
		TAP_CHECK(load("", &b) == 0);
		da = dump_to_string(&a);
		db = dump_to_string(&b);
		TAP_CHECK(da != NULL && db != NULL && strcmp(da, db) == 0);
		free(da);
		free(db);
		config_free(&a);
		config_free(&b);
	}
}

static const struct tap_test tests[] = {
    {"defaults", test_defaults},
    {"option table", test_table},
    {"default config path is optional", test_default_path},
    {"integers and ranges", test_parse_int},
    {"sizes with k/m/g suffixes", test_parse_size},
    {"booleans", test_parse_bool},
    {"log levels", test_parse_log_level},
    {"enumerations", test_parse_enum},
    {"' #' starts an inline comment", test_inline_hash_comment},
    {"header: a list key", test_header_list},
    {"strings, comments, indentation", test_parse_strings},
    {"dns.nameserver forms", test_nameserver},
    {"tls.ca_file", test_ca_file},
    {"[store]", test_store},
    {"fetch.user_agent", test_user_agent},
    {"errors in the file name file, line and key", test_errors_file},
    {"unreadable config file", test_errors_open},
    {"--set precedence and errors", test_set},
    {"relative paths", test_relative_paths},
    {"reload", test_reload},
    {"dump", test_dump},
    {"config/gatherd.conf documents the table", test_documented},
    {NULL, NULL},
};

static int rm_cb(const char *path, const struct stat *sb, int type,
		 struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	char templ[] = "/tmp/test_config.XXXXXX";
	char cwd[PATH_MAX];
	int ret;

	if (mkdtemp(templ) == NULL || realpath(templ, tmp) == NULL ||
	    getcwd(cwd, sizeof cwd) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(set_queue, sizeof set_queue, "gatherd.queue_file=%s/q", tmp);
	snprintf(set_db, sizeof set_db, "gatherd.database=%s/db", tmp);
	ret = tap_main(tests);
	if (chdir(cwd) != 0)
		ret = 1;
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}

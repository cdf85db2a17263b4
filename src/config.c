/* Configuration: one static option table, INI files read with inih, --set
 * overrides, validation.  See config.h for the contract.
 *
 * Loading goes: defaults (the table's text, through the same parser as
 * everything else) -> the file -> the overrides -> checks of the final
 * values (required directories, readable files, formats).  For every option
 * the load remembers where its value came from, so each error names the
 * file and line (or the --set text) and the key.
 *
 * Out of memory aborts (util.h's xmalloc), as everywhere in gatherd. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-config.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#if HAVE_LIBPQ
#include <libpq-fe.h>

#include "pq_load.h"
#endif

#ifndef GATHERD_VERSION
#define GATHERD_VERSION "0.0.0"
#endif

enum opt_type {
	OPT_INT,      /* int, decimal */
	OPT_INT64,    /* int64_t, decimal with optional k/m/g (KiB/MiB/GiB) */
	OPT_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
	OPT_STRING,   /* char *, taken as written */
	OPT_PATH,     /* char *, made absolute; "" means unset */
	OPT_LOGLEVEL, /* int, enum log_level */
	OPT_ENUM,     /* int: the index of the value in `names` */
	OPT_LIST,     /* char *: values one per line ("" = none); the key
		       * may repeat, each value is checked on its own */
};

/* A check of an option's final value (after the file and the overrides):
 * NULL when fine, else a malloc'd reason. */
typedef char *(*opt_check_fn)(const char *value);

struct config_opt {
	const char *section;
	const char *key;
	const char *name; /* "section.key" */
	enum opt_type type;
	size_t offset; /* of the field in struct config */
	const char *def;
	int64_t min, max; /* numeric types only */
	bool reloadable;  /* SIGHUP may change it */
	opt_check_fn check;
	const char *const *names; /* OPT_ENUM: the values, NULL-terminated */
};

static char *check_parent_dir(const char *value);
static char *check_readable_file(const char *value);
static char *check_dir_or_empty(const char *value);
static char *check_user_agent(const char *value);
static char *check_nameserver(const char *value);

static const char *const digest_names[] = {"sha256", "none", NULL};
static const char *const encoding_names[] = {"identity", "gzip", NULL};
static const char *const store_names[] = {"sqlite", "postgresql", NULL};
static char *check_conninfo(const char *value);
static char *check_node_name(const char *value);
static char *check_header(const char *value);
static char *check_listen(const char *value);
static bool port_valid(const char *s);
static char *check_statuses(const char *value);

/* offsetof() that also fails to compile when the field's C type does not
 * match the option type (a negative array size). */
/* clang-format off */
#define FIELD(f, ctype) \
	(offsetof(struct config, f) + \
	 0 * sizeof(char[_Generic(((struct config *)0)->f, ctype: 1, default: -1)]))

#define OPTION_INT(s, k, f, def, lo, hi, rl) \
	{s, k, s "." k, OPT_INT, FIELD(f, int), def, lo, hi, rl, NULL, NULL}
#define OPTION_INT64(s, k, f, def, lo, hi, rl) \
	{s, k, s "." k, OPT_INT64, FIELD(f, int64_t), def, lo, hi, rl, NULL, NULL}
#define OPTION_BOOL(s, k, f, def, rl) \
	{s, k, s "." k, OPT_BOOL, FIELD(f, bool), def, 0, 1, rl, NULL, NULL}
#define OPTION_LEVEL(s, k, f, def, rl) \
	{s, k, s "." k, OPT_LOGLEVEL, FIELD(f, int), def, 0, 0, rl, NULL, NULL}
#define OPTION_STR(s, k, f, def, rl, check) \
	{s, k, s "." k, OPT_STRING, FIELD(f, char *), def, 0, 0, rl, check, NULL}
#define OPTION_PATH(s, k, f, def, rl, check) \
	{s, k, s "." k, OPT_PATH, FIELD(f, char *), def, 0, 0, rl, check, NULL}
#define OPTION_LIST(s, k, f, rl, check) \
	{s, k, s "." k, OPT_LIST, FIELD(f, char *), "", 0, 0, rl, check, NULL}
#define OPTION_ENUM(s, k, f, def, names, rl) \
	{s, k, s "." k, OPT_ENUM, FIELD(f, int), def, 0, 0, rl, NULL, names}

/* Every option gatherd has.  config/gatherd.conf documents each one with
 * the same default (tests/unit/test_config.c checks that).  Sections appear
 * in this order in config_dump().  The last column before the check says
 * whether SIGHUP may change the option. */
static const struct config_opt options[] = {
	OPTION_PATH("gatherd", "queue_file", queue_file,
		    "/var/lib/gatherd/queue", false, check_parent_dir),
	OPTION_PATH("gatherd", "database", database,
		    "/var/lib/gatherd/gatherd.db", false, check_parent_dir),
	OPTION_LEVEL("gatherd", "log_level", log_level, "info", true),
	OPTION_INT("gatherd", "stats_interval_s", stats_interval_s,
		   "10", 0, 86400, true),
	OPTION_INT("gatherd", "shutdown_timeout_ms", shutdown_timeout_ms,
		   "10000", 0, 3600000, true),

	OPTION_INT("fetch", "max_in_flight", max_in_flight,
		   "64", 1, 100000, true),
	OPTION_INT("fetch", "max_per_host", max_per_host,
		   "8", 1, 10000, true),
	OPTION_INT("fetch", "host_delay_ms", host_delay_ms,
		   "0", 0, 3600000, true),
	OPTION_INT("fetch", "connect_timeout_ms", connect_timeout_ms,
		   "10000", 1, 600000, true),
	OPTION_INT("fetch", "idle_timeout_ms", idle_timeout_ms,
		   "30000", 1, 3600000, true),
	OPTION_INT("fetch", "request_timeout_ms", request_timeout_ms,
		   "120000", 1, 86400000, true),
	OPTION_INT("fetch", "retries", retries,
		   "2", 0, 100, true),
	OPTION_INT("fetch", "retry_backoff_ms", retry_backoff_ms,
		   "1000", 0, 3600000, true),
	OPTION_INT("fetch", "retry_max_delay_ms", retry_max_delay_ms,
		   "60000", 0, 86400000, true),
	OPTION_INT("fetch", "max_redirects", max_redirects,
		   "10", 0, 100, true),
	OPTION_BOOL("fetch", "allow_https_downgrade", allow_https_downgrade,
		    "false", true),
	OPTION_INT64("fetch", "max_body_bytes", max_body_bytes,
		     "104857600", 0, INT64_C(1099511627776), true),
	OPTION_INT64("fetch", "max_header_bytes", max_header_bytes,
		     "65536", 1024, 16777216, true),
	OPTION_STR("fetch", "user_agent", user_agent,
		   "gatherd/" GATHERD_VERSION, true, check_user_agent),
	OPTION_LIST("fetch", "header", headers, true, check_header),
	OPTION_ENUM("fetch", "accept_encoding", accept_encoding, "identity",
		    encoding_names, true),
	OPTION_STR("fetch", "retry_statuses", retry_statuses,
		   "408,429,500,502,503,504", true, check_statuses),
	OPTION_STR("fetch", "proxy", proxy, "", false, proxy_check_url),
	OPTION_STR("fetch", "https_proxy", https_proxy, "", false,
		   proxy_check_url),
	OPTION_STR("fetch", "no_proxy", no_proxy, "", false, NULL),
	OPTION_BOOL("fetch", "robots", robots, "true", true),
	OPTION_INT("fetch", "robots_ttl_s", robots_ttl_s, "86400", 1,
		   31536000, true),
	OPTION_INT("fetch", "robots_max_crawl_delay_s", robots_max_crawl_delay_s,
		   "30", 0, 86400, true),

	OPTION_BOOL("tls", "verify", tls_verify, "true", false),
	OPTION_PATH("tls", "ca_file", tls_ca_file,
		    "", false, check_readable_file),

	OPTION_ENUM("capture", "digest", capture_digest, "sha256",
		    digest_names, true),
	OPTION_PATH("capture", "warc_dir", warc_dir, "", false,
		    check_dir_or_empty),
	OPTION_BOOL("capture", "warc_requests", warc_requests, "false", true),
	OPTION_INT64("capture", "warc_max_bytes", warc_max_bytes, "1g",
		     1048576, INT64_C(1099511627776), false),
	OPTION_BOOL("capture", "dedup", dedup, "false", true),

	OPTION_STR("metrics", "listen", metrics_listen, "", false,
		   check_listen),

	OPTION_ENUM("store", "backend", store_backend, "sqlite", store_names,
		    false),
	OPTION_STR("store", "conninfo", store_conninfo, "", false,
		   check_conninfo),
	OPTION_STR("store", "node_name", node_name, "", false,
		   check_node_name),
	OPTION_INT("store", "lease_s", lease_s, "30", 3, 3600, false),

	OPTION_STR("dns", "nameserver", dns_nameserver,
		   "", false, check_nameserver),
	OPTION_INT("dns", "timeout_ms", dns_timeout_ms,
		   "5000", 100, 600000, false),
	OPTION_INT("dns", "cache_ttl_s", dns_cache_ttl_s,
		   "300", 0, 86400, false),
};
/* clang-format on */

#define N_OPTIONS ((int)(sizeof options / sizeof options[0]))

/* Where an option's current value came from, for error messages. */
struct origin {
	int line;	      /* > 0: line in the config file */
	const char *set_text; /* non-NULL: the --set text */
};

/* State of one config_load(); lives on its stack.  `cause` holds the first
 * error only: later ones are usually consequences of it. */
struct load_state {
	struct config *cfg;
	unsigned flags; /* CONFIG_LOAD_* */
	const char *file; /* config file path as given, or NULL */
	char *file_dir;	  /* its absolute directory, for relative paths */
	FILE *fp;	  /* while reading the file */
	char *line;	  /* getline() buffer */
	size_t line_size;
	int lineno;
	int read_errno;
	int error_line; /* line of `cause` when it came from the file */
	char *cause;
	struct origin origin[N_OPTIONS];
};

static void *field_ptr(struct config *cfg, const struct config_opt *o)
{
	return (char *)cfg + o->offset;
}

static const void *field_cptr(const struct config *cfg,
			      const struct config_opt *o)
{
	return (const char *)cfg + o->offset;
}

static int option_find(const char *section, const char *key)
{
	for (int i = 0; i < N_OPTIONS; i++)
		if (strcasecmp(options[i].section, section) == 0 &&
		    strcasecmp(options[i].key, key) == 0)
			return i;
	return -1;
}

static bool section_known_n(const char *name, size_t n)
{
	for (int i = 0; i < N_OPTIONS; i++)
		if (strlen(options[i].section) == n &&
		    strncasecmp(options[i].section, name, n) == 0)
			return true;
	return false;
}

/* Record the first error (later ones are usually its consequences); `line`
 * is its line in the file, or 0. */
static void load_fail(struct load_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void load_fail(struct load_state *st, int line, const char *fmt, ...)
{
	va_list ap;

	if (st->cause != NULL)
		return;
	va_start(ap, fmt);
	st->cause = util_vprintf(fmt, ap);
	va_end(ap);
	st->error_line = line;
}

/* The "where: " prefix of a message about option i's current value. */
static char *origin_prefix(const struct load_state *st, int i)
{
	const struct origin *o = &st->origin[i];

	if (o->set_text != NULL)
		return util_printf("--set %s: ", o->set_text);
	if (o->line > 0)
		return util_printf("%s:%d: ", st->file, o->line);
	if (st->file != NULL)
		return util_printf("%s: ", st->file);
	return xstrdup("");
}

/* Remove "." components and repeated slashes from an absolute path, in
 * place.  ".." is kept: resolving it without the file system would be wrong
 * across symbolic links. */
static void path_clean(char *p)
{
	char *r = p, *w = p;

	while (*r != '\0') {
		if (*r == '/') {
			while (r[1] == '/')
				r++;
			if (r[1] == '.' && (r[2] == '/' || r[2] == '\0')) {
				r += 2;
				continue;
			}
		}
		*w++ = *r++;
	}
	if (w > p + 1 && w[-1] == '/')
		w--;
	if (w == p)
		*w++ = '/';
	*w = '\0';
}

/* `value` as an absolute path: relative ones are taken from `base_dir`. */
static char *path_absolute(const char *value, const char *base_dir)
{
	char *p;

	if (value[0] == '/' || base_dir == NULL)
		p = xstrdup(value);
	else
		p = util_printf("%s/%s", base_dir, value);
	path_clean(p);
	return p;
}

/* The current directory, malloc'd, or NULL with errno set. */
static char *cwd_dup(void)
{
	char *cwd = getcwd(NULL, 0);

	if (cwd == NULL && errno == ENOMEM)
		util_oom();
	return cwd;
}

/* Parse a decimal integer, with a k/m/g (KiB/MiB/GiB) suffix when
 * `suffixes`.  Returns NULL, or a malloc'd reason. */
static char *parse_int64(const char *s, bool suffixes, int64_t *out)
{
	char *end;
	long long v;
	int64_t mult = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || isspace((unsigned char)*s))
		return util_printf("bad number \"%s\"", s);
	if (suffixes && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k':
		case 'K':
			mult = INT64_C(1) << 10;
			break;
		case 'm':
		case 'M':
			mult = INT64_C(1) << 20;
			break;
		case 'g':
		case 'G':
			mult = INT64_C(1) << 30;
			break;
		default:
			return util_printf("bad number \"%s\" (suffixes: k, m, "
					 "g)",
					 s);
		}
		end++;
	}
	if (*end != '\0')
		return util_printf("bad number \"%s\"%s", s,
				 suffixes ? " (suffixes: k, m, g)" : "");
	if (errno == ERANGE || v > INT64_MAX / mult || v < INT64_MIN / mult)
		return util_printf("bad number \"%s\" (overflow)", s);
	*out = (int64_t)v * mult;
	return NULL;
}

static char *parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return NULL;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return NULL;
		}
	}
	return util_printf("bad boolean \"%s\" (use true/false, yes/no, on/off "
			 "or 1/0)",
			 s);
}

/* Parse `value` for option `o` and store it in cfg.  Relative paths are
 * taken from `base_dir`.  Returns NULL, or a malloc'd reason. */
static char *option_set(struct config *cfg, const struct config_opt *o,
			const char *value, const char *base_dir)
{
	void *field = field_ptr(cfg, o);
	int64_t v = 0;
	char *why, **sp;
	int level;

	switch (o->type) {
	case OPT_INT:
	case OPT_INT64:
		why = parse_int64(value, o->type == OPT_INT64, &v);
		if (why != NULL)
			return why;
		if (v < o->min || v > o->max)
			return util_printf("value %s out of range %lld..%lld",
					 value, (long long)o->min,
					 (long long)o->max);
		if (o->type == OPT_INT)
			*(int *)field = (int)v;
		else
			*(int64_t *)field = v;
		return NULL;
	case OPT_BOOL:
		return parse_bool(value, field);
	case OPT_LOGLEVEL:
		level = log_level_parse(value);
		if (level < 0)
			return util_printf("bad log level \"%s\" (use error, "
					 "warn, info or debug)",
					 value);
		*(int *)field = level;
		return NULL;
	case OPT_ENUM:
		for (int i = 0; o->names[i] != NULL; i++) {
			if (strcasecmp(value, o->names[i]) == 0) {
				*(int *)field = i;
				return NULL;
			}
		}
		{
			char list[128] = "";

			for (int i = 0; o->names[i] != NULL; i++)
				snprintf(list + strlen(list),
					 sizeof list - strlen(list), "%s%s",
					 i ? ", " : "", o->names[i]);
			return util_printf("bad value \"%s\" (use %s)", value,
					   list);
		}
	case OPT_LIST:
		sp = field;
		if (value[0] == '\0') {
			free(*sp); /* an empty value clears the list */
			*sp = xstrdup("");
			return NULL;
		}
		if (o->check != NULL && (why = o->check(value)) != NULL)
			return why;
		if (*sp == NULL || **sp == '\0') {
			free(*sp);
			*sp = xstrdup(value);
		} else {
			char *joined = util_printf("%s\n%s", *sp, value);

			free(*sp);
			*sp = joined;
		}
		return NULL;
	case OPT_STRING:
	case OPT_PATH:
		sp = field;
		free(*sp);
		if (o->type == OPT_PATH && value[0] != '\0')
			*sp = path_absolute(value, base_dir);
		else
			*sp = xstrdup(value);
		return NULL;
	}
	return xstrdup("internal error: bad option type");
}

/* Checks of final values. */

/* For files gatherd creates: the directory must exist, the file need not. */
static char *check_parent_dir(const char *value)
{
	struct stat sb;
	char *dir, *slash, *why = NULL;

	if (value[0] == '\0')
		return xstrdup("must be set");
	dir = xstrdup(value);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	if (stat(dir, &sb) != 0) {
		if (errno == ENOENT)
			why = util_printf("directory %s does not exist", dir);
		else
			why =
			    util_printf("directory %s: %s", dir, strerror(errno));
	} else if (!S_ISDIR(sb.st_mode)) {
		why = util_printf("%s is not a directory", dir);
	} else if (stat(value, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		why = util_printf("%s is a directory", value);
	}
	free(dir);
	return why;
}

static char *check_readable_file(const char *value)
{
	struct stat sb;
	int fd;

	if (value[0] == '\0')
		return NULL;
	fd = open(value, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return util_printf("cannot read %s: %s", value, strerror(errno));
	if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
		close(fd);
		return util_printf("%s is not a file", value);
	}
	close(fd);
	return NULL;
}

/* [metrics] listen: an IP address and a port ("" = off). */
static char *check_listen(const char *value)
{
	char host[64];
	const char *colon, *h = value;
	size_t hl;
	unsigned char a[16];

	if (value[0] == '\0')
		return NULL;
	if (value[0] == '[') {
		const char *rb = strchr(value, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		h = value + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL)
			goto bad;
		hl = (size_t)(colon - value);
	}
	if (hl == 0 || hl >= sizeof host)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if ((inet_pton(AF_INET, host, a) != 1 &&
	     inet_pton(AF_INET6, host, a) != 1) ||
	    !port_valid(colon + 1))
		goto bad;
	return NULL;
bad:
	return util_printf("\"%s\" is not an IP address and port (e.g. "
			   "127.0.0.1:9464 or [::1]:9464)",
			   value);
}

/* Whether `v` is a URI with a password in it ("scheme://user:pw@..."):
 * libpq would repeat such a value (a dbname, say) in its errors. */
static bool conninfo_uri_has_password(const char *v)
{
	const char *p = strstr(v, "://"), *at, *colon;

	if (p == NULL)
		return false;
	p += 3;
	at = strchr(p, '@');
	if (at == NULL)
		return false;
	colon = memchr(p, ':', (size_t)(at - p));
	return colon != NULL && memchr(p, '/', (size_t)(at - p)) == NULL;
}

/* Can [store] conninfo be checked (libpq loads)?  A configuration on
 * SQLite that sets it anyway loads without libpq installed. */
static bool conninfo_checkable(void)
{
#if HAVE_LIBPQ
	const char *err;

	return pq_load(&err) == 0;
#else
	return true;
#endif
}

static char *check_conninfo(const char *value)
{
#if HAVE_LIBPQ
	PQconninfoOption *opts;
	char *err = NULL, *why = NULL;
	const char *load_err;

	if (value[0] == '\0')
		return NULL;
	if (pq_load(&load_err) != 0)
		return xstrdup(load_err);
	/* libpq's parse errors quote the text they stumbled on, which may
	 * be the password: they are not passed on. */
	opts = PQconninfoParse(value, &err);
	PQfreemem(err);
	if (opts == NULL)
		return util_printf("not a libpq connection string (key=value "
				   "pairs or a postgresql:// URI)");
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (why == NULL && (strcmp(o->keyword, "password") == 0 ||
				    conninfo_uri_has_password(o->val)))
			why = util_printf(
			    "must not hold a password: put it in ~/.pgpass "
			    "(or the file PGPASSFILE names), or in PGPASSWORD "
			    "in the environment");
	}
	PQconninfoFree(opts);
	return why;
#else
	(void)value;
	return NULL;
#endif
}

/* [store] node_name: letters, digits, ".", "_" and "-", at most 63 ("" =
 * the machine's name). */
static char *check_node_name(const char *value)
{
	size_t n = strlen(value);

	if (n > 63)
		return util_printf("longer than 63 characters");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return util_printf("\"%s\": only letters, digits, "
					   "\".\", \"_\" and \"-\"",
					   value);
	}
	return NULL;
}

/* For directories gatherd writes into: unset, or an existing directory. */
static char *check_dir_or_empty(const char *value)
{
	struct stat sb;

	if (value[0] == '\0')
		return NULL;
	if (stat(value, &sb) != 0)
		return util_printf("directory %s: %s", value, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return util_printf("%s is not a directory", value);
	return NULL;
}

/* "Name: value" for every request: a token name (RFC 9110 5.1), a value
 * without control characters, and none of the headers gatherd itself
 * manages (framing, connection, the keys that have their own option). */
static char *check_header(const char *value)
{
	static const struct {
		const char *name;
		const char *why;
	} refused[] = {
		{"host", "the Host header comes from the URL"},
		{"content-length", "gatherd sends no request body"},
		{"transfer-encoding", "gatherd sends no request body"},
		{"connection", "gatherd manages the connection"},
		{"keep-alive", "gatherd manages the connection"},
		{"upgrade", "gatherd manages the connection"},
		{"te", "gatherd manages the connection"},
		{"trailer", "gatherd sends no request body"},
		{"proxy-connection", "gatherd manages the connection"},
		{"user-agent", "use [fetch] user_agent"},
		{"accept-encoding", "use [fetch] accept_encoding"},
	};
	const char *colon = strchr(value, ':');
	size_t n;

	if (colon == NULL || colon == value)
		return util_printf("\"%s\" is not \"Name: value\"", value);
	n = (size_t)(colon - value);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
			return util_printf("bad character 0x%02x in the header "
					   "name",
					   c);
	}
	for (const char *p = colon + 1; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return util_printf("control character 0x%02x in the "
					   "header value",
					   (unsigned char)*p);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (strlen(refused[i].name) == n &&
		    strncasecmp(value, refused[i].name, n) == 0)
			return util_printf("%.*s cannot be set (%s)", (int)n,
					   value, refused[i].why);
	return NULL;
}

/* Parse "408,429,503" into bits of the statuses (bits may be NULL: only
 * check).  NULL, or the reason it is not such a list. */
static char *parse_statuses(const char *value, uint64_t *bits)
{
	const char *p = value;

	if (bits != NULL)
		memset(bits, 0, sizeof(uint64_t) * CONFIG_STATUS_WORDS);
	while (*p != '\0') {
		char *end;
		long v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p || errno != 0 || v < 100 || v > 599)
			return util_printf("\"%s\" is not a list of HTTP "
					   "statuses 100..599, e.g. 429,503",
					   value);
		if (bits != NULL)
			bits[v / 64] |= UINT64_C(1) << (v % 64);
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return util_printf("\"%s\" is not a list of HTTP "
					   "statuses 100..599, e.g. 429,503",
					   value);
	}
	return NULL;
}

static char *check_statuses(const char *value)
{
	return parse_statuses(value, NULL);
}

/* Fill the fields computed from the options: the request header lines,
 * the retry statuses as bits. */
static void config_derive(struct config *cfg)
{
	char *why;
	size_t n = 0;

	free(cfg->header_lines);
	cfg->header_lines = NULL;
	if (cfg->headers != NULL && cfg->headers[0] != '\0') {
		const char *v = cfg->headers;
		size_t len = strlen(v);

		cfg->header_lines = xmalloc(len * 2 + 3);
		while (*v != '\0') {
			const char *nl = strchr(v, '\n');
			size_t k = nl ? (size_t)(nl - v) : strlen(v);

			memcpy(cfg->header_lines + n, v, k);
			n += k;
			memcpy(cfg->header_lines + n, "\r\n", 2);
			n += 2;
			v += k + (nl ? 1 : 0);
		}
		cfg->header_lines[n] = '\0';
	}
	why = parse_statuses(cfg->retry_statuses != NULL ? cfg->retry_statuses
							   : "",
			     cfg->retry_status_bits);
	free(why); /* checked at load */
}

bool config_retry_status(const struct config *cfg, int status)
{
	if (status < 0 || status >= CONFIG_STATUS_WORDS * 64)
		return false;
	return (cfg->retry_status_bits[status / 64] >> (status % 64)) & 1;
}

/* It goes into every request's header block as written. */
static char *check_user_agent(const char *value)
{
	size_t n = strlen(value);

	if (value[0] == '\0')
		return xstrdup("must not be empty");
	if (n >= 2 && (value[0] == '"' || value[0] == '\'') &&
	    value[n - 1] == value[0])
		log_warn("[fetch] user_agent is quoted (%s): the quotes are "
			 "sent as written",
			 value);
	for (const char *p = value; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return util_printf("must be printable ASCII (bad byte "
					 "0x%02x)",
					 (unsigned char)*p);
	return NULL;
}

static bool port_valid(const char *s)
{
	long port = 0;

	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
		port = port * 10 + (*s - '0');
	}
	return port >= 1 && port <= 65535;
}

/* The forms evdns_base_nameserver_ip_add() takes: IPv4, IPv4:port, IPv6,
 * [IPv6]:port (and [IPv6]). */
static char *check_nameserver(const char *value)
{
	unsigned char addr[16];
	char host[64];
	const char *colon, *rb;
	size_t n;

	if (value[0] == '\0')
		return NULL;
	if (value[0] == '[') {
		rb = strchr(value, ']');
		if (rb == NULL)
			goto bad;
		n = (size_t)(rb - value - 1);
		if (n >= sizeof host)
			goto bad;
		memcpy(host, value + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			goto bad;
		if (rb[1] == '\0')
			return NULL;
		if (rb[1] != ':' || !port_valid(rb + 2))
			goto bad;
		return NULL;
	}
	if (inet_pton(AF_INET6, value, addr) == 1 ||
	    inet_pton(AF_INET, value, addr) == 1)
		return NULL;
	colon = strchr(value, ':');
	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		goto bad;
	n = (size_t)(colon - value);
	if (n >= sizeof host)
		goto bad;
	memcpy(host, value, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, addr) != 1 || !port_valid(colon + 1))
		goto bad;
	return NULL;
bad:
	return util_printf("bad nameserver \"%s\" (use IPv4, IPv4:port, IPv6 or "
			 "[IPv6]:port with port 1..65535)",
			 value);
}

/* Reading the file.  inih is given lines through this reader so that we
 * know each line's number (Debian's inih has no INI_HANDLER_LINENO), can
 * check section names even for empty sections, and can refuse lines longer
 * than inih's buffer instead of having them split silently.  Leading
 * whitespace is removed so that an indented line is never taken as a
 * continuation of the previous value (inih's multi-line mode). */
static char *config_reader_cb(char *str, int num, void *stream)
{
	struct load_state *st = stream;
	ssize_t n;
	char *s, *end;

	if (st->cause != NULL)
		return NULL; /* stop at the first error */
	errno = 0;
	n = getline(&st->line, &st->line_size, st->fp);
	if (n < 0) {
		if (ferror(st->fp))
			st->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	st->lineno++;
	s = st->line;
	if (st->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';

	if (*s == '#' || *s == ';') {
		*s = '\0'; /* comments may be longer than inih's buffer */
	} else if (*s != '[') {
		/* " #" starts a comment after a value too, as " ;" does for
		 * inih: people write both. */
		for (char *p = s + 1; *p != '\0'; p++) {
			if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')) {
				while (p > s && (p[-1] == ' ' || p[-1] == '\t'))
					p--;
				*p = '\0';
				break;
			}
		}
	} else {
		/* inih takes the name between the brackets as written. */
		const char *rb = strchr(s + 1, ']');

		if (rb != NULL &&
		    !section_known_n(s + 1, (size_t)(rb - s - 1))) {
			load_fail(st, st->lineno,
				  "%s:%d: unknown section [%.*s]", st->file,
				  st->lineno, (int)(rb - s - 1), s + 1);
			return NULL;
		}
	}
	if ((int)strlen(s) > num - 1) {
		load_fail(st, st->lineno,
			  "%s:%d: line too long (more than %d characters)",
			  st->file, st->lineno, num - 1);
		return NULL;
	}
	memcpy(str, s, strlen(s) + 1);
	return str;
}

static int config_ini_cb(void *user, const char *section, const char *name,
			 const char *value)
{
	struct load_state *st = user;
	const struct config_opt *o;
	struct origin *org;
	char *why;
	int i;

	if (st->cause != NULL)
		return 1;
	if (section[0] == '\0') {
		load_fail(st, st->lineno,
			  "%s:%d: key %s is outside of any [section]", st->file,
			  st->lineno, name);
		return 1;
	}
	i = option_find(section, name);
	if (i < 0) {
		load_fail(st, st->lineno, "%s:%d: unknown key [%s] %s",
			  st->file, st->lineno, section, name);
		return 1;
	}
	o = &options[i];
	org = &st->origin[i];
	if (org->line > 0 && o->type != OPT_LIST) {
		load_fail(st, st->lineno,
			  "%s:%d: [%s] %s: duplicate key (first set on line "
			  "%d)",
			  st->file, st->lineno, o->section, o->key, org->line);
		return 1;
	}
	why = option_set(st->cfg, o, value, st->file_dir);
	if (why != NULL) {
		load_fail(st, st->lineno, "%s:%d: [%s] %s: %s", st->file,
			  st->lineno, o->section, o->key, why);
		free(why);
		return 1;
	}
	if (org->line == 0)
		org->line = st->lineno;
	return 1;
}

/* Read st->file.  A missing file is fine when it was not named (`optional`);
 * returns -1 with st->cause set on errors. */
static int load_file(struct load_state *st, bool optional)
{
	struct stat sb;
	char *dir, *slash;
	int ret;

	st->fp = fopen(st->file, "re");
	if (st->fp == NULL) {
		if (optional && errno == ENOENT) {
			st->file = NULL; /* defaults only */
			return 0;
		}
		load_fail(st, 0, "cannot open config file %s: %s", st->file,
			  strerror(errno));
		return -1;
	}
	if (fstat(fileno(st->fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		load_fail(st, 0, "cannot read config file %s: %s", st->file,
			  strerror(EISDIR));
		goto fail;
	}

	/* The directory exists (the file was just opened in it), so
	 * realpath() gives its one true name, without "." or "..". */
	dir = xstrdup(st->file);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	st->file_dir = realpath(slash != NULL ? dir : ".", NULL);
	if (st->file_dir == NULL) {
		load_fail(st, 0, "%s: cannot resolve its directory: %s",
			  st->file, strerror(errno));
		free(dir);
		goto fail;
	}
	free(dir);

	ret = ini_parse_stream(config_reader_cb, st, config_ini_cb, st);
	if (st->read_errno != 0)
		load_fail(st, 0, "cannot read config file %s: %s", st->file,
			  strerror(st->read_errno));
	/* inih reports the first line it could not parse; our own errors
	 * stop the reading, so take whichever came first. */
	if (ret > 0 && (st->cause == NULL || ret < st->error_line)) {
		free(st->cause);
		st->cause = NULL;
		load_fail(st, ret,
			  "%s:%d: syntax error (expected [section] or key = "
			  "value)",
			  st->file, ret);
	} else if (ret < 0 && st->cause == NULL) {
		load_fail(st, 0, "cannot parse config file %s", st->file);
	}
	if (st->cause != NULL)
		goto fail;
	fclose(st->fp);
	st->fp = NULL;
	return 0;
fail:
	fclose(st->fp);
	st->fp = NULL;
	return -1;
}

/* Apply one "section.key=value" override. */
static int load_override(struct load_state *st, const char *text,
			 const char *cwd)
{
	const char *eq = strchr(text, '='), *dot;
	char *name, *section, *key, *value, *why;
	int i, ret = -1;

	if (eq == NULL ||
	    (dot = memchr(text, '.', (size_t)(eq - text))) == NULL) {
		load_fail(st, 0, "--set %s: expected section.key=value", text);
		return -1;
	}
	name = xstrdup(text);
	name[eq - text] = '\0';
	name[dot - text] = '\0';
	section = name;
	key = name + (dot - text) + 1;
	value = name + (eq - text) + 1;
	/* Tolerate "fetch.retries = 3" as one argument. */
	for (char *e = section + strlen(section);
	     e > section && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	while (isspace((unsigned char)*section))
		section++;
	while (isspace((unsigned char)*key))
		key++;
	for (char *e = key + strlen(key);
	     e > key && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	while (*value == ' ' || *value == '\t')
		value++;
	for (char *e = value + strlen(value);
	     e > value && (e[-1] == ' ' || e[-1] == '\t');)
		*--e = '\0';

	i = option_find(section, key);
	if (i < 0) {
		if (section_known_n(section, strlen(section)))
			load_fail(st, 0, "--set %s: unknown key [%s] %s", text,
				  section, key);
		else
			load_fail(st, 0, "--set %s: unknown section [%s]", text,
				  section);
		goto out;
	}
	/* The first --set of a list replaces what the file said; later
	 * ones add to it. */
	if (options[i].type == OPT_LIST && st->origin[i].set_text == NULL) {
		char **sp = field_ptr(st->cfg, &options[i]);

		free(*sp);
		*sp = xstrdup("");
	}
	why = option_set(st->cfg, &options[i], value, cwd);
	if (why != NULL) {
		load_fail(st, 0, "--set %s: [%s] %s: %s", text,
			  options[i].section, options[i].key, why);
		free(why);
		goto out;
	}
	st->origin[i].set_text = text;
	st->origin[i].line = 0;
	ret = 0;
out:
	free(name);
	return ret;
}

/* Checks of the final values, wherever they came from. */
static int load_validate(struct load_state *st)
{
	const struct config *cfg = st->cfg;
	int db = option_find("gatherd", "database");
	char *why, *prefix;

	for (int i = 0; i < N_OPTIONS; i++) {
		const struct config_opt *o = &options[i];
		const char *value;

		if (o->check == NULL || o->type == OPT_LIST)
			continue; /* list values were checked one by one */
		if ((st->flags & CONFIG_LOAD_DB_ONLY) &&
		    o->check == check_parent_dir &&
		    strcmp(o->key, "database") != 0)
			continue; /* status: the queue file does not matter */
		if (i == db && cfg->store_backend != CONFIG_STORE_SQLITE)
			continue; /* no SQLite database is used */
		value = *(char *const *)field_cptr(cfg, o);
		if (o->check == check_conninfo && value[0] != '\0' &&
		    cfg->store_backend != CONFIG_STORE_POSTGRESQL &&
		    !conninfo_checkable())
			continue; /* not used, and no libpq to read it */
		why = o->check(value);
		if (why == NULL)
			continue;
		prefix = origin_prefix(st, i);
		if (st->origin[i].line == 0 && st->origin[i].set_text == NULL)
			load_fail(st, 0, "%s[%s] %s (default %s): %s", prefix,
				  o->section, o->key, o->def, why);
		else
			load_fail(st, 0, "%s[%s] %s: %s", prefix, o->section,
				  o->key, why);
		free(prefix);
		free(why);
		return -1;
	}
	if (cfg->store_backend == CONFIG_STORE_POSTGRESQL && !HAVE_LIBPQ) {
		int b = option_find("store", "backend");

		prefix = origin_prefix(st, b);
		load_fail(st, 0,
			  "%s[store] backend: this gatherd was built without "
			  "PostgreSQL (libpq)",
			  prefix);
		free(prefix);
		return -1;
	}
	if (cfg->store_backend == CONFIG_STORE_SQLITE &&
	    strcmp(cfg->queue_file, cfg->database) == 0) {
		prefix = origin_prefix(st, db);
		load_fail(st, 0,
			  "%s[gatherd] database: must differ from queue_file "
			  "(%s)",
			  prefix, cfg->database);
		free(prefix);
		return -1;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path,
		const struct config_override *ov, int n_ov, char **cause)
{
	return config_load_ex(cfg, path, ov, n_ov, 0, cause);
}

int config_load_ex(struct config *cfg, const char *path,
		   const struct config_override *ov, int n_ov, unsigned flags,
		   char **cause)
{
	struct load_state st;
	char *cwd = NULL;

	memset(cfg, 0, sizeof *cfg);
	memset(&st, 0, sizeof st);
	st.cfg = cfg;
	st.flags = flags;

	for (int i = 0; i < N_OPTIONS; i++) {
		char *why = option_set(cfg, &options[i], options[i].def, NULL);

		if (why != NULL) { /* a bug in the table */
			load_fail(&st, 0, "default of [%s] %s: %s",
				  options[i].section, options[i].key, why);
			free(why);
			goto fail;
		}
	}

	st.file = path != NULL ? path : CONFIG_DEFAULT_PATH;
	if (load_file(&st, path == NULL) != 0)
		goto fail;

	if (n_ov > 0) {
		cwd = cwd_dup();
		if (cwd == NULL) {
			load_fail(&st, 0, "cannot get current directory: %s",
				  strerror(errno));
			goto fail;
		}
	}
	for (int i = 0; i < n_ov; i++)
		if (load_override(&st, ov[i].text, cwd) != 0)
			goto fail;

	if (load_validate(&st) != 0)
		goto fail;
	config_derive(cfg);

	free(cwd);
	free(st.file_dir);
	free(st.line);
	return 0;
fail:
	free(cwd);
	free(st.file_dir);
	free(st.line);
	config_free(cfg);
	if (cause != NULL)
		*cause = st.cause;
	else
		free(st.cause);
	return -1;
}

void config_free(struct config *cfg)
{
	free(cfg->header_lines);
	cfg->header_lines = NULL;
	for (int i = 0; i < N_OPTIONS; i++) {
		if (options[i].type == OPT_STRING ||
		    options[i].type == OPT_PATH ||
		    options[i].type == OPT_LIST) {
			char **sp = field_ptr(cfg, &options[i]);

			free(*sp);
			*sp = NULL;
		}
	}
}

/* Whether option o has the same value in a and b. */
static bool option_equal(const struct config *a, const struct config *b,
			 const struct config_opt *o)
{
	const void *fa = field_cptr(a, o), *fb = field_cptr(b, o);

	switch (o->type) {
	case OPT_INT:
	case OPT_LOGLEVEL:
	case OPT_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case OPT_INT64:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case OPT_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case OPT_STRING:
	case OPT_PATH:
	case OPT_LIST:
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	}
	return false;
}

/* Option o's value in cfg as text for the log, with what may be secret
 * kept out: a proxy URL's credentials, the header values. */
static char *option_log_text(const struct config *cfg,
			     const struct config_opt *o)
{
	const void *f = field_cptr(cfg, o);

	switch (o->type) {
	case OPT_INT:
		return util_printf("%d", *(const int *)f);
	case OPT_INT64:
		return util_printf("%lld", (long long)*(const int64_t *)f);
	case OPT_BOOL:
		return xstrdup(*(const bool *)f ? "true" : "false");
	case OPT_LOGLEVEL:
		return xstrdup(log_level_name(*(const int *)f));
	case OPT_ENUM:
		return xstrdup(o->names[*(const int *)f]);
	case OPT_LIST: {
		const char *v = *(char *const *)f;
		int n = v[0] != '\0';

		for (; *v != '\0'; v++)
			n += *v == '\n';
		return util_printf("%d value%s", n, n == 1 ? "" : "s");
	}
	case OPT_STRING:
	case OPT_PATH: {
		const char *v = *(char *const *)f;
		const char *at = o->check == proxy_check_url ? strrchr(v, '@')
							     : NULL;

		if (v[0] == '\0')
			return xstrdup("(empty)");
		if (at != NULL) {
			const char *s = strstr(v, "://");

			s = s != NULL ? s + 3 : v;
			return util_printf("%.*s***%s", (int)(s - v), v, at);
		}
		return xstrdup(v);
	}
	}
	return xstrdup("?");
}

void config_apply_reload(struct config *cur, const struct config *next,
			 bool *changed_fixed)
{
	bool fixed = false;

	for (int i = 0; i < N_OPTIONS; i++) {
		const struct config_opt *o = &options[i];
		void *dst;
		const void *src;

		if (option_equal(cur, next, o))
			continue;
		char *was = option_log_text(cur, o);
		char *now = option_log_text(next, o);
		if (!o->reloadable) {
			log_warn("reload: [%s] %s: %s -> %s needs a restart "
				 "(keeping %s)",
				 o->section, o->key, was, now, was);
			free(was);
			free(now);
			fixed = true;
			continue;
		}
		log_info("reload: [%s] %s: %s -> %s", o->section, o->key, was,
			 now);
		free(was);
		free(now);
		dst = field_ptr(cur, o);
		src = field_cptr(next, o);
		switch (o->type) {
		case OPT_INT:
		case OPT_LOGLEVEL:
		case OPT_ENUM:
			*(int *)dst = *(const int *)src;
			break;
		case OPT_INT64:
			*(int64_t *)dst = *(const int64_t *)src;
			break;
		case OPT_BOOL:
			*(bool *)dst = *(const bool *)src;
			break;
		case OPT_STRING:
		case OPT_PATH:
		case OPT_LIST:
			free(*(char **)dst);
			*(char **)dst = xstrdup(*(char *const *)src);
			break;
		}
	}
	config_derive(cur);
	if (changed_fixed != NULL)
		*changed_fixed = fixed;
}

void config_dump(const struct config *cfg)
{
	const char *section = NULL;

	for (int i = 0; i < N_OPTIONS; i++) {
		const struct config_opt *o = &options[i];
		const void *f = field_cptr(cfg, o);

		if (section == NULL || strcmp(section, o->section) != 0) {
			printf("%s[%s]\n", section != NULL ? "\n" : "",
			       o->section);
			section = o->section;
		}
		printf("%s =", o->key);
		switch (o->type) {
		case OPT_INT:
			printf(" %d\n", *(const int *)f);
			break;
		case OPT_INT64:
			printf(" %lld\n", (long long)*(const int64_t *)f);
			break;
		case OPT_BOOL:
			printf(" %s\n", *(const bool *)f ? "true" : "false");
			break;
		case OPT_LOGLEVEL:
			printf(" %s\n", log_level_name(*(const int *)f));
			break;
		case OPT_ENUM:
			printf(" %s\n", o->names[*(const int *)f]);
			break;
		case OPT_LIST: {
			/* One line per value: "header = A: 1", "header = ...". */
			const char *v = *(char *const *)f;

			putchar('\n');
			while (*v != '\0') {
				const char *nl = strchr(v, '\n');
				size_t len = nl ? (size_t)(nl - v) : strlen(v);

				printf("%s = %.*s\n", o->key, (int)len, v);
				v += len + (nl ? 1 : 0);
			}
			continue;
		}
		case OPT_STRING:
		case OPT_PATH:
			if (**(char *const *)f != '\0')
				printf(" %s", *(char *const *)f);
			putchar('\n');
			break;
		}
	}
}

const char *config_option_name(int i)
{
	if (i < 0 || i >= N_OPTIONS)
		return NULL;
	return options[i].name;
}

const char *config_option_default(int i)
{
	if (i < 0 || i >= N_OPTIONS)
		return NULL;
	return options[i].def;
}

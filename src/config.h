/* gatherd configuration: one static option table (config.c) with type,
 * default, range and reloadability; INI files read with inih; overrides from
 * `--set section.key=value`. */
#ifndef GATHERD_CONFIG_H
#define GATHERD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* Default config path used when -c is not given (and it exists). */
#define CONFIG_DEFAULT_PATH "/etc/gatherd/gatherd.conf"

/* The values.  Strings are heap-allocated and owned by the struct; an
 * unset optional string (ca_file, nameserver) is "" (never NULL).  Paths
 * are absolute (relative ones were resolved while loading). */
#define CONFIG_STATUS_WORDS 10 /* bits for statuses 0..639 */

struct config {
	/* [gatherd] */
	char *queue_file; /* required; its directory exists */
	char *database;	  /* required; its directory exists */
	int log_level;	  /* LOG_ERROR..LOG_DEBUG from log.h */
	int stats_interval_s;
	int shutdown_timeout_ms; /* SIGTERM: how long in-flight fetches get */
	/* [fetch] */
	int max_in_flight;
	int max_per_host;
	int host_delay_ms;
	int connect_timeout_ms;
	int idle_timeout_ms;
	int request_timeout_ms;
	int retries;
	int retry_backoff_ms;
	int retry_max_delay_ms;
	int max_redirects;
	bool allow_https_downgrade;
	int64_t max_body_bytes;
	int64_t max_header_bytes;
	char *user_agent;
	char *headers;          /* "Name: value" lines, "\n"-separated */
	int accept_encoding;    /* enum config_encoding */
	char *retry_statuses;   /* "408,429,..." */
	char *proxy;            /* "" = none ([fetch] proxy) */
	char *https_proxy;
	char *no_proxy;
	bool robots;            /* obey robots.txt (RFC 9309) */
	int robots_ttl_s;       /* how long an origin's robots.txt is kept */
	int robots_max_crawl_delay_s; /* cap on Crawl-delay */
	/* Computed from the above (config_derive in config.c): */
	char *header_lines;     /* the headers as request lines, or NULL */
	uint64_t retry_status_bits[CONFIG_STATUS_WORDS];
	/* [tls] */
	bool tls_verify;
	char *tls_ca_file;
	/* [capture] */
	int capture_digest; /* enum config_digest */
	char *warc_dir;     /* "" = no archives */
	bool warc_requests;
	int64_t warc_max_bytes;
	bool dedup;
	/* [metrics] */
	char *metrics_listen; /* "" = no endpoint */
	/* [store] */
	int store_backend;    /* enum config_store */
	char *store_conninfo; /* libpq connection string ("" = libpq's
			       * defaults, from the environment) */
	char *node_name;      /* "" = the machine's name */
	int lease_s;          /* how long a node's claims and shards hold */
	/* [dns] */
	char *dns_nameserver; /* "" = use /etc/resolv.conf */
	int dns_timeout_ms;
	int dns_cache_ttl_s;
};

/* [fetch] accept_encoding */
enum config_encoding {
	CONFIG_ENCODING_IDENTITY = 0,
	CONFIG_ENCODING_GZIP = 1,
};

/* [store] backend */
enum config_store {
	CONFIG_STORE_SQLITE = 0,
	CONFIG_STORE_POSTGRESQL = 1,
};

/* [capture] digest */
enum config_digest {
	CONFIG_DIGEST_SHA256 = 0,
	CONFIG_DIGEST_NONE = 1,
};

/* One --set override, kept in argv order. */
struct config_override {
	const char *text; /* "section.key=value" */
};

/* Fill *cfg with defaults, then read `path` (NULL: CONFIG_DEFAULT_PATH if it
 * exists, else defaults only), then apply the overrides, then validate
 * (ranges, required paths: the directories holding queue_file and database
 * must exist; ca_file, when set, must be readable).  On error returns -1,
 * leaves *cfg freed, and sets *cause (when not NULL) to a malloc'd message
 * naming the file, line and key, e.g.
 *   "/etc/gatherd/gatherd.conf:12: [fetch] max_in_flight: value 0 out of
 *    range 1..100000"
 *   "--set fetch.bogus=1: unknown key [fetch] bogus"
 * Relative paths from a file are resolved against that file's directory;
 * relative paths from --set against the current directory.  A key given
 * twice in the file is an error; a later --set overrides an earlier one. */
int config_load(struct config *cfg, const char *path,
		const struct config_override *ov, int n_ov, char **cause)
    __attribute__((warn_unused_result));

/* The same, with CONFIG_LOAD_* flags. */
#define CONFIG_LOAD_DB_ONLY 1u /* only the database is used: the queue
				* file's directory need not exist */
int config_load_ex(struct config *cfg, const char *path,
		   const struct config_override *ov, int n_ov, unsigned flags,
		   char **cause) __attribute__((warn_unused_result));

/* Free the strings of *cfg (which stays safe to free again). */
void config_free(struct config *cfg);

/* For SIGHUP: copy the reloadable options of `next` into `cur`, and set
 * *changed_fixed to true if any non-reloadable option differs (the caller
 * logs that a restart is needed for those; they keep their old values).
 * Applying log_level is the caller's job (log_set_level). */
void config_apply_reload(struct config *cur, const struct config *next,
			 bool *changed_fixed);

/* Whether [fetch] retry_statuses lists this status. */
bool config_retry_status(const struct config *cfg, int status);

/* Print the effective configuration as INI to stdout (for check-config). */
void config_dump(const struct config *cfg);

/* Iterate the option table (for the documentation test): returns the
 * "section.key" name of option i, or NULL past the end. */
const char *config_option_name(int i);

/* The table's default of option i as text (as config/gatherd.conf should
 * show it), or NULL past the end. */
const char *config_option_default(int i);

#endif

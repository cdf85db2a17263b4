/* gatherd submit and gatherd status: see cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#define CLI_FLUSH_BYTES (1024 * 1024)

struct cli_submit {
	const char *path;
	int fd;
	char *buf;
	size_t len, cap;
	long queued, rejected;
	bool write_failed;
};

/* Append the buffered lines in one locked write.  If the write comes up
 * short (disk full), the file is cut back to where it was, so no partial
 * line is left for the next producer's line to be glued onto. */
static int cli_flush(struct cli_submit *c)
{
	struct stat st;
	size_t off = 0;

	if (c->len == 0)
		return 0;
	if (c->fd < 0) {
		c->fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			     0664);
		if (c->fd < 0) {
			fprintf(stderr, "gatherd: cannot open queue file %s: %s\n",
				c->path, strerror(errno));
			return -1;
		}
	}
	if (flock(c->fd, LOCK_EX) != 0 || fstat(c->fd, &st) != 0) {
		fprintf(stderr, "gatherd: cannot lock queue file %s: %s\n",
			c->path, strerror(errno));
		return -1;
	}
	while (off < c->len) {
		ssize_t n = write(c->fd, c->buf + off, c->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : ENOSPC;

			if (ftruncate(c->fd, st.st_size) != 0)
				fprintf(stderr,
					"gatherd: cannot undo a partial write "
					"to %s: %s\n",
					c->path, strerror(errno));
			flock(c->fd, LOCK_UN);
			fprintf(stderr, "gatherd: cannot append to %s: %s\n",
				c->path, strerror(err));
			return -1;
		}
		off += (size_t)n;
	}
	flock(c->fd, LOCK_UN);
	c->len = 0;
	return 0;
}

static void cli_submit_line(struct cli_submit *c, const char *line,
			    size_t len, const char *where)
{
	const char *start, *detail;
	size_t tlen;

	switch (queue_classify_line(line, len, len, &start, &tlen, &detail)) {
	case QUEUE_LINE_SKIP:
		return;
	case QUEUE_LINE_INVALID:
		fprintf(stderr, "gatherd: rejected %s\"%.*s%s\": %s\n", where,
			tlen > 200 ? 200 : (int)tlen, start,
			tlen > 200 ? "..." : "", detail);
		c->rejected++;
		return;
	case QUEUE_LINE_URL:
		break;
	}
	if (c->len + tlen + 1 > c->cap) {
		c->cap = c->len + tlen + 1 + CLI_FLUSH_BYTES;
		c->buf = realloc(c->buf, c->cap);
		if (c->buf == NULL)
			abort();
	}
	memcpy(c->buf + c->len, start, tlen);
	c->len += tlen;
	c->buf[c->len++] = '\n';
	c->queued++;
	if (c->len >= CLI_FLUSH_BYTES && !c->write_failed &&
	    cli_flush(c) != 0)
		c->write_failed = true;
}

int cli_submit(const struct config *cfg, int n, char **urls)
{
	struct cli_submit c = {.path = cfg->queue_file, .fd = -1};
	int rc;

	if (n == 0) {
		fprintf(stderr, "gatherd: submit needs URLs, or - to read "
				"them from standard input\n");
		return 2;
	}
	if (n == 1 && strcmp(urls[0], "-") == 0) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		long lineno = 0;
		char where[48];

		while ((len = getline(&line, &cap, stdin)) > 0) {
			lineno++;
			if (line[len - 1] == '\n')
				len--;
			snprintf(where, sizeof where, "line %ld ", lineno);
			cli_submit_line(&c, line, (size_t)len, where);
		}
		free(line);
	} else {
		for (int i = 0; i < n; i++)
			cli_submit_line(&c, urls[i], strlen(urls[i]), "");
	}
	if (!c.write_failed && cli_flush(&c) != 0)
		c.write_failed = true;
	if (c.write_failed)
		rc = 1;
	else
		rc = c.rejected > 0 ? 2 : 0;
	if (c.write_failed)
		fprintf(stderr, "gatherd: some URLs were not queued\n");
	else
		fprintf(stderr, "gatherd: queued %ld URL%s to %s%s\n",
			c.queued, c.queued == 1 ? "" : "s", c.path,
			c.rejected ? " (some rejected)" : "");
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return rc;
}

/* Write s as a JSON string. */
static void cli_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

int cli_status(const struct config *cfg, bool json)
{
	struct store_status st;
	char *cause = NULL;

	if (store_read_status(cfg->database, util_wall_ms(), &st, &cause) !=
	    0) {
		fprintf(stderr, "gatherd: %s\n", cause);
		free(cause);
		return 1;
	}
	double rate = (double)st.fetched_last_60s / 60.0;
	if (json) {
		printf("{\"database\": ");
		cli_json_str(cfg->database);
		printf(", \"schema_version\": %d, \"queued\": %lld, "
		       "\"done\": %lld, \"failed\": %lld, \"errors\": {",
		       st.schema_version, (long long)st.queued,
		       (long long)st.done, (long long)st.failed);
		for (int i = 0; i < st.n_errors; i++) {
			printf(i ? ", " : "");
			cli_json_str(st.errors[i].kind);
			printf(": %lld", (long long)st.errors[i].count);
		}
		printf("}, \"fetched_last_60s\": %lld, \"rate_per_s\": %.2f, "
		       "\"oldest_queued\": ",
		       (long long)st.fetched_last_60s, rate);
		if (st.oldest_queued_id > 0) {
			printf("{\"id\": %lld, \"url\": ",
			       (long long)st.oldest_queued_id);
			cli_json_str(st.oldest_queued_url);
			printf(", \"queued_at\": ");
			cli_json_str(st.oldest_queued_at);
			printf(", \"age_s\": %lld}",
			       (long long)st.oldest_queued_age_s);
		} else {
			printf("null");
		}
		printf("}\n");
		return 0;
	}
	printf("database  %s (schema %d)\n", cfg->database, st.schema_version);
	printf("queued    %lld\n", (long long)st.queued);
	printf("done      %lld\n", (long long)st.done);
	printf("failed    %lld\n", (long long)st.failed);
	for (int i = 0; i < st.n_errors; i++)
		printf("  %-20s %lld\n", st.errors[i].kind,
		       (long long)st.errors[i].count);
	printf("rate      %.1f/s over the last minute (%lld results)\n", rate,
	       (long long)st.fetched_last_60s);
	if (st.oldest_queued_id > 0)
		printf("oldest    #%lld queued %s (%lld s ago): %s\n",
		       (long long)st.oldest_queued_id, st.oldest_queued_at,
		       (long long)st.oldest_queued_age_s, st.oldest_queued_url);
	else
		printf("oldest    nothing queued\n");
	return 0;
}

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
#define CLI_DIRECT_ROWS 10000 /* rows per transaction with --direct */

struct cli_submit {
	const char *path;
	/* --direct: rows go straight into the database, a batch at a time */
	bool direct;
	struct store_conf sc;
	struct store_line *lines;
	size_t n_lines;
	int fd;
	char *buf;
	size_t len, cap;
	long queued, rejected;
	long n_buffered; /* URLs in buf */
	long flushed;    /* URLs written to the file */
	bool write_failed;
};

/* Count the newlines in buf[0..len) and return the end of the last one
 * (0 when there is none). */
static size_t cli_complete_end(const char *buf, size_t len, long *lines)
{
	size_t end = 0;

	*lines = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			(*lines)++;
			end = i + 1;
		}
	}
	return end;
}

/* Append the buffered lines in one locked write.
 *
 * A queue file that ends in an unfinished line (a writer that died
 * mid-line, printf without \n) would have our first URL glued onto it: the
 * fragment is ended with a newline first, so it becomes a row of its own.
 * If the write comes up short (disk full), the file is cut back to the
 * end of the last complete line written, never further: the daemon may
 * already have read those lines, and a cut below them would look like a
 * truncation and make it read the whole file again.  Those lines are
 * queued, and counted so. */
static int cli_flush(struct cli_submit *c)
{
	struct stat st;
	size_t off = 0, skip = 0;

	if (c->len <= 1)
		return 0; /* nothing buffered (see cli_submit) */
	if (c->fd < 0) {
		c->fd = open(c->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
			     0664);
		if (c->fd < 0 && errno == EACCES) /* may append, not read */
			c->fd = open(c->path,
				     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
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
	int64_t partial = queue_partial_tail(c->fd, st.st_size, 64 * 1024);
	if (partial != 0) {
		/* The buffer keeps a byte free in front for this. */
		if (partial > 0)
			fprintf(stderr,
				"gatherd: warning: %s ended in an unfinished "
				"line (%lld bytes without a newline); ended "
				"it, so it becomes a row of its own\n",
				c->path, (long long)partial);
		else
			fprintf(stderr,
				"gatherd: warning: cannot read the end of %s; "
				"starting with a newline to be safe\n",
				c->path);
		c->buf[0] = '\n';
	} else {
		skip = 1;
	}
	off = skip;
	while (off < c->len) {
		ssize_t n = write(c->fd, c->buf + off, c->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : ENOSPC;
			long lines = 0;
			size_t keep = cli_complete_end(c->buf + skip,
						       off - skip, &lines);

			/* The fragment's newline is not one of ours. */
			if (!skip && lines > 0)
				lines--;
			if (ftruncate(c->fd, st.st_size + (off_t)keep) != 0)
				fprintf(stderr,
					"gatherd: cannot undo a partial write "
					"to %s: %s\n",
					c->path, strerror(errno));
			flock(c->fd, LOCK_UN);
			fprintf(stderr, "gatherd: cannot append to %s: %s\n",
				c->path, strerror(err));
			c->flushed += lines;
			return -1;
		}
		off += (size_t)n;
	}
	flock(c->fd, LOCK_UN);
	c->flushed += c->n_buffered;
	c->n_buffered = 0;
	c->len = 1;
	return 0;
}

/* --direct: insert the lines gathered so far, in one transaction. */
static int cli_flush_direct(struct cli_submit *c)
{
	char *cause = NULL;
	int rc = 0;

	if (c->n_lines == 0)
		return 0;
	if (store_submit(&c->sc, c->lines, c->n_lines, util_wall_ms(),
			 &cause) != 0) {
		fprintf(stderr, "gatherd: cannot insert into the database: %s\n",
			cause);
		free(cause);
		rc = -1;
	} else {
		c->flushed += (long)c->n_lines;
	}
	for (size_t i = 0; i < c->n_lines; i++)
		free((char *)c->lines[i].url);
	c->n_lines = 0;
	return rc;
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
	if (c->direct) {
		if (c->write_failed) { /* counted, not kept: see the end */
			c->queued++;
			return;
		}
		c->lines[c->n_lines].url = xstrndup(start, tlen);
		c->lines[c->n_lines].len = tlen;
		c->lines[c->n_lines].invalid_detail = NULL;
		c->lines[c->n_lines].take = false;
		c->n_lines++;
		c->queued++;
		if (c->n_lines == CLI_DIRECT_ROWS && cli_flush_direct(c) != 0)
			c->write_failed = true;
		return;
	}
	if (c->len + tlen + 1 > c->cap) {
		c->cap = c->len + tlen + 1 + CLI_FLUSH_BYTES;
		c->buf = xrealloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, start, tlen);
	c->len += tlen;
	c->buf[c->len++] = '\n';
	c->queued++;
	c->n_buffered++;
	if (c->len >= CLI_FLUSH_BYTES && !c->write_failed &&
	    cli_flush(c) != 0)
		c->write_failed = true;
}

int cli_submit(const struct config *cfg, int n, char **urls, bool direct)
{
	/* buf[0] is kept for the newline that may end an unfinished line
	 * already in the file (see cli_flush). */
	struct cli_submit c = {.path = cfg->queue_file, .fd = -1, .len = 1,
			       .direct = direct};
	int rc;

	if (n == 0) {
		fprintf(stderr, "gatherd: submit needs URLs, or - to read "
				"them from standard input\n");
		return 2;
	}
	c.cap = CLI_FLUSH_BYTES;
	c.buf = xmalloc(c.cap);
	if (direct) {
		store_conf_init(&c.sc, cfg);
		c.path = c.sc.kind == STORE_POSTGRESQL ? "the PostgreSQL database"
						       : cfg->database;
		c.lines = xcalloc(CLI_DIRECT_ROWS, sizeof *c.lines);
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
	if (!c.write_failed &&
	    (direct ? cli_flush_direct(&c) : cli_flush(&c)) != 0)
		c.write_failed = true;
	for (size_t i = 0; i < c.n_lines; i++) /* not inserted after a failure */
		free((char *)c.lines[i].url);
	free(c.lines);
	if (c.write_failed)
		rc = 1;
	else
		rc = c.rejected > 0 ? 2 : 0;
	if (c.write_failed)
		fprintf(stderr, "gatherd: queued %ld of %ld URL%s to %s; the "
				"others were not queued\n",
			c.flushed, c.queued, c.queued == 1 ? "" : "s", c.path);
	else
		fprintf(stderr, "gatherd: queued %ld URL%s to %s%s\n",
			c.queued, c.queued == 1 ? "" : "s", c.path,
			c.rejected ? " (some rejected)" : "");
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return rc;
}

/* Queue-file watcher: see queue.h.
 *
 * Two offsets matter: `commit_off`, the end of the last line stored in
 * SQLite (what a restart resumes from), and `read_off`, how far this run has
 * scanned (ahead of commit_off only inside an over-long line).  One ingest is
 * in flight at a time; inotify events that arrive meanwhile set `dirty`, so
 * bursts of appends are group-committed. */
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "thread.h"
#include "util.h"

#define QUEUE_CHUNK (256 * 1024)
#define QUEUE_POLL_MS 1000 /* fallback for changes inotify cannot see */
#define QUEUE_HEAD_BYTES 1024 /* start of the file hashed into its identity */

struct queue_batch {
	struct queue *q;
	struct store_line *lines;
	size_t *offs; /* offset of each line's text in blob */
	size_t n, cap;
	char *blob;
	size_t blob_len, blob_cap;
	size_t n_queued, n_failed;
	struct store_queue_pos pos;
	int rc;
	char *cause;
};

struct queue {
	struct event_base *base;
	struct worker *worker;
	struct store *store;
	char *path;
	char *dir;
	const char *base_name; /* within path */
	int fd;              /* the file being read (maybe a rotated one) */
	dev_t dev;
	ino_t ino;
	int64_t commit_off;
	int64_t read_off;
	int64_t head_len;  /* the file's first head_len bytes hash to */
	int64_t head_hash; /* head_hash (cached for the file being read) */
	bool reset_pending; /* truncation seen, offset 0 not stored yet */
	struct queue_splitter sp;
	int ifd;
	struct event *ev_inotify;
	struct event *ev_poll;  /* periodic fallback check */
	struct event *ev_retry; /* after a failed ingest */
	char *buf;
	bool in_flight;
	bool backoff; /* an ingest failed: wait for ev_retry */
	struct queue_batch *failed; /* that ingest, to submit again as is */
	bool dirty;
	bool stopped;
	bool caught_up;
	queue_ingested_cb cb;
	void *cb_arg;
};

static void queue_check(struct queue *q);

enum queue_line_kind queue_classify_line(const char *line, size_t len,
					 uint64_t total_len,
					 const char **start, size_t *tlen,
					 const char **detail)
{
	uint64_t raw = total_len;
	const char *s = line, *e;
	struct url u;

	if (len == total_len && len > 0 && line[len - 1] == '\r') {
		len--;
		raw--;
	}
	e = line + len;
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' ||
			 *s == '\f'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\v' || e[-1] == '\f'))
		e--;
	*start = s;
	*tlen = (size_t)(e - s);
	*detail = NULL;
	if (*tlen == 0 || *s == '#')
		return QUEUE_LINE_SKIP;
	if (raw > URL_MAX_LEN) {
		*detail = "line longer than 8192 bytes";
		return QUEUE_LINE_INVALID;
	}
	if (url_parse(s, *tlen, &u, detail) != 0)
		return QUEUE_LINE_INVALID;
	return QUEUE_LINE_URL;
}

struct queue_split_result queue_split(struct queue_splitter *sp,
				      const char *buf, size_t len,
				      queue_emit_fn emit, void *ctx)
{
	struct queue_split_result res = {0, 0, false};
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end;

		if (nl == NULL)
			break;
		end = (size_t)(nl - buf);
		if (sp->in_long) {
			sp->long_len += end - i;
			emit(ctx, sp->prefix, sp->prefix_len, sp->long_len);
			sp->in_long = false;
			sp->long_len = 0;
			sp->prefix_len = 0;
		} else {
			emit(ctx, buf + i, end - i, end - i);
		}
		i = end + 1;
		res.complete_end = i;
		res.any_complete = true;
	}
	/* A partial line waits for its newline, unless it is already too
	 * long to be valid (8 KiB plus a CR): then only its prefix is kept,
	 * so memory stays bounded however long the line grows. */
	size_t tail = len - i;
	if (sp->in_long) {
		sp->long_len += tail;
		i = len;
	} else if (tail > URL_MAX_LEN + 1) {
		sp->in_long = true;
		sp->long_len = tail;
		sp->prefix_len = URL_MAX_LEN;
		memcpy(sp->prefix, buf + i, URL_MAX_LEN);
		i = len;
	}
	res.consumed = i;
	return res;
}

static struct queue_batch *queue_batch_new(struct queue *q)
{
	struct queue_batch *b = calloc(1, sizeof *b);

	if (b == NULL)
		abort();
	b->q = q;
	return b;
}

static void queue_batch_free(struct queue_batch *b)
{
	free(b->lines);
	free(b->offs);
	free(b->blob);
	free(b->cause);
	free(b);
}

/* Append a classified line to the batch (copying its text). */
static void queue_emit_cb(void *ctx, const char *line, size_t len,
			  uint64_t total_len)
{
	struct queue_batch *b = ctx;
	const char *start, *detail;
	size_t tlen;
	enum queue_line_kind kind;

	kind = queue_classify_line(line, len, total_len, &start, &tlen,
				   &detail);
	if (kind == QUEUE_LINE_SKIP)
		return;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->lines = realloc(b->lines, b->cap * sizeof *b->lines);
		b->offs = realloc(b->offs, b->cap * sizeof *b->offs);
		if (b->lines == NULL || b->offs == NULL)
			abort();
	}
	if (b->blob_len + tlen > b->blob_cap) {
		b->blob_cap = (b->blob_len + tlen) * 2 + 4096;
		b->blob = realloc(b->blob, b->blob_cap);
		if (b->blob == NULL)
			abort();
	}
	memcpy(b->blob + b->blob_len, start, tlen);
	b->offs[b->n] = b->blob_len;
	b->lines[b->n].len = tlen;
	b->lines[b->n].invalid_detail = detail;
	b->blob_len += tlen;
	b->n++;
	if (kind == QUEUE_LINE_URL)
		b->n_queued++;
	else
		b->n_failed++;
}

static void queue_ingest_work(void *arg)
{
	struct queue_batch *b = arg;

	b->rc = store_ingest(b->q->store, b->lines, b->n, &b->pos,
			     util_wall_ms(), &b->cause);
}

static void queue_ingest_done(void *arg)
{
	struct queue_batch *b = arg;
	struct queue *q = b->q;

	q->in_flight = false;
	if (b->rc != 0) {
		/* Nothing was stored: scan again from the committed offset
		 * after a pause, so no line is lost or doubled. */
		log_error("cannot store queue lines (will retry): %s",
			  b->cause);
		free(b->cause);
		b->cause = NULL;
		/* Keep the batch and submit exactly it again: after a rotation
		 * its lines come from a file no longer being read, so reading
		 * again would lose them.  Until then nothing reads: every file
		 * event would otherwise retry at once, and a full disk would
		 * become a busy loop. */
		q->failed = b;
		q->backoff = true;
		struct timeval tv = {1, 0};
		event_add(q->ev_retry, &tv);
		return;
	}
	q->commit_off = b->pos.offset;
	if (b->n > 0)
		log_debug("ingested %zu lines (%zu invalid), offset %lld",
			  b->n, b->n_failed, (long long)b->pos.offset);
	size_t nq = b->n_queued, nf = b->n_failed;
	queue_batch_free(b);
	if (q->cb != NULL && (nq > 0 || nf > 0))
		q->cb(q->cb_arg, nq, nf);
	queue_check(q);
}

/* FNV-1a of the first len bytes of fd into *hash; -1 if the file is
 * shorter or cannot be read. */
static int queue_head_hash(int fd, int64_t len, int64_t *hash)
{
	unsigned char buf[QUEUE_HEAD_BYTES];
	uint64_t h = 1469598103934665603ULL;
	ssize_t n;

	if (len > QUEUE_HEAD_BYTES)
		len = QUEUE_HEAD_BYTES;
	n = pread(fd, buf, (size_t)len, 0);
	if (n != (ssize_t)len)
		return -1;
	for (ssize_t i = 0; i < n; i++) {
		h ^= buf[i];
		h *= 1099511628211ULL;
	}
	*hash = (int64_t)h;
	return 0;
}

/* Does fd hold the file `pos` describes?  (dev, ino) were checked by the
 * caller; file systems reuse inode numbers, so its first bytes must match
 * too. */
static bool queue_same_file(int fd, const struct store_queue_pos *pos)
{
	struct stat st;
	int64_t h;

	if (fstat(fd, &st) != 0 || st.st_size < pos->offset)
		return false;
	if (pos->head_len == 0)
		return true; /* stored before head hashes existed */
	return queue_head_hash(fd, pos->head_len, &h) == 0 &&
	       h == pos->head_hash;
}

/* Hand a batch to the worker: its lines and, in the same transaction, the
 * position `offset` in the file being read now. */
static void queue_submit(struct queue *q, struct queue_batch *b,
			 int64_t offset)
{
	int64_t want = offset < QUEUE_HEAD_BYTES ? offset : QUEUE_HEAD_BYTES;

	/* The hashed head grows with the offset up to 1 KiB, then stays:
	 * recomputed only while the file is shorter than that. */
	if (q->head_len != want) {
		q->head_len = 0;
		if (want > 0 && queue_head_hash(q->fd, want, &q->head_hash) == 0)
			q->head_len = want;
	}
	for (size_t i = 0; i < b->n; i++)
		b->lines[i].url = b->blob + b->offs[i];
	b->pos.dev = (int64_t)q->dev;
	b->pos.ino = (int64_t)q->ino;
	b->pos.offset = offset;
	b->pos.head_len = q->head_len;
	b->pos.head_hash = q->head_len > 0 ? q->head_hash : 0;
	q->reset_pending = false;
	q->in_flight = true;
	to_thread(q->worker, queue_ingest_work, b, queue_ingest_done);
}

/* Open `path` (creating it) and make it the file being read. */
static int queue_open_path(struct queue *q, char **cause)
{
	struct stat st;
	int fd;

	/* Create it so producers can append right away; group-writable so
	 * members of the service's group can submit. */
	/* O_NONBLOCK: a FIFO at the path must not block the open (it is
	 * refused below); reads of a regular file never block anyway. */
	fd = open(q->path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0664);
	if (fd < 0) {
		*cause = util_printf("cannot open queue file %s: %s", q->path,
				     strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		*cause = util_printf("cannot stat queue file %s: %s", q->path,
				     strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = util_printf("queue file %s is not a regular file",
				     q->path);
		close(fd);
		return -1;
	}
	if (q->fd >= 0)
		close(q->fd);
	q->fd = fd;
	q->dev = st.st_dev;
	q->ino = st.st_ino;
	q->commit_off = 0;
	q->read_off = 0;
	q->head_len = 0;
	memset(&q->sp, 0, sizeof q->sp);
	return 0;
}

/* After a restart the stored position may belong to a file that was
 * rotated away (renamed in the same directory): find it and finish it. */
static int queue_find_rotated(struct queue *q, const struct store_queue_pos *pos)
{
	DIR *d = opendir(q->dir);
	struct dirent *de;
	int fd = -1;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_ino != (ino_t)pos->ino)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    st.st_dev != (dev_t)pos->dev ||
		    st.st_ino != (ino_t)pos->ino || !S_ISREG(st.st_mode))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && !queue_same_file(fd, pos)) {
			close(fd); /* the inode number was reused */
			fd = -1;
		}
		if (fd >= 0)
			log_info("finishing rotated queue file %s/%s from "
				 "offset %lld",
				 q->dir, de->d_name, (long long)pos->offset);
		break;
	}
	closedir(d);
	return fd;
}

/* Read the next chunk and hand its complete lines to the worker.  Returns
 * true if an ingest was started. */
static bool queue_read_chunk(struct queue *q)
{
	struct stat st;

	if (fstat(q->fd, &st) == 0 && st.st_size < q->read_off) {
		log_warn("queue file %s was truncated (size %lld < offset "
			 "%lld): reading from the start",
			 q->path, (long long)st.st_size,
			 (long long)q->read_off);
		q->read_off = q->commit_off = 0;
		q->head_len = 0;
		memset(&q->sp, 0, sizeof q->sp);
		/* Store offset 0 now, even if no line follows yet: a restart
		 * must not resume at the old offset once the file regrows. */
		q->reset_pending = true;
	}

	struct queue_batch *b = NULL;
	for (;;) {
		ssize_t n = pread(q->fd, q->buf, QUEUE_CHUNK, q->read_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("cannot read queue file %s: %s", q->path,
				  strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (b == NULL)
			b = queue_batch_new(q);
		int64_t chunk_start = q->read_off;
		struct queue_split_result r =
			queue_split(&q->sp, q->buf, (size_t)n, queue_emit_cb, b);
		q->read_off += (int64_t)r.consumed;
		if (r.any_complete) {
			b->pos.offset = chunk_start + (int64_t)r.complete_end;
			break;
		}
		if (r.consumed == 0)
			break; /* a partial line waits for its newline */
		/* Inside an over-long line: keep scanning. */
	}
	if (b == NULL || b->pos.offset == 0) {
		if (b != NULL)
			queue_batch_free(b);
		if (!q->reset_pending)
			return false;
		queue_submit(q, queue_batch_new(q), 0);
		return true;
	}
	queue_submit(q, b, b->pos.offset);
	return true;
}

/* The file being read is at its end: if the path now names another file
 * (rotation), finish the old one and switch.  Returns true if switched. */
static bool queue_follow_rotation(struct queue *q)
{
	struct stat st;
	char *cause = NULL;

	if (stat(q->path, &st) != 0)
		return false; /* renamed away, new one not created yet */
	if (st.st_dev == q->dev && st.st_ino == q->ino)
		return false;

	/* Whatever a late producer still appended to the old file, and its
	 * unterminated last line (producers now write to the new file, so it
	 * will never be completed), is stored with the new file's identity at
	 * offset 0: nothing is lost and a restart reads nothing twice. */
	struct queue_batch *b = queue_batch_new(q);
	ssize_t n;
	while ((n = pread(q->fd, q->buf, QUEUE_CHUNK, q->read_off)) > 0) {
		struct queue_split_result r =
			queue_split(&q->sp, q->buf, (size_t)n, queue_emit_cb, b);

		q->read_off += (int64_t)r.consumed;
		if (r.consumed < (size_t)n) {
			size_t rest = (size_t)n - r.consumed;

			log_warn("rotated queue file ended without a newline; "
				 "taking its last line as it is");
			queue_emit_cb(b, q->buf + r.consumed, rest, rest);
			break;
		}
	}
	if (q->sp.in_long) {
		log_warn("rotated queue file ended inside an over-long line");
		queue_emit_cb(b, q->sp.prefix, q->sp.prefix_len,
			      q->sp.long_len);
	}

	int fd_old = q->fd;
	q->fd = -1;
	if (queue_open_path(q, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		q->fd = fd_old;
		queue_batch_free(b);
		return false;
	}
	close(fd_old);
	log_info("queue file %s was rotated: now reading the new file",
		 q->path);
	if (b->n == 0) {
		queue_batch_free(b);
		return true;
	}
	queue_submit(q, b, 0);
	return true;
}

/* Bring ingestion up to date with the file. */
static void queue_check(struct queue *q)
{
	if (q->stopped || q->backoff)
		return;
	if (q->in_flight) {
		q->dirty = true;
		return;
	}
	q->dirty = false;
	for (int i = 0; i < 4; i++) {
		if (queue_read_chunk(q)) {
			q->caught_up = false;
			return;
		}
		if (!queue_follow_rotation(q))
			break;
		if (q->in_flight) {
			q->caught_up = false;
			return;
		}
	}
	q->caught_up = true;
	if (q->cb != NULL)
		q->cb(q->cb_arg, 0, 0);
}

static void queue_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	(void)what;
	/* Writes to the queue file, and any file appearing, moving or going
	 * away (rotation), concern us.  Writes to other files of the
	 * directory do not: the database and its WAL often live there, and
	 * every commit would wake us.  A rotated file still being written
	 * is caught by the periodic check. */
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			if ((ev->mask & ~(uint32_t)(IN_MODIFY | IN_CLOSE_WRITE |
						    IN_ATTRIB)) != 0 ||
			    ev->len == 0 ||
			    strcmp(ev->name, q->base_name) == 0)
				relevant = true;
			p += sizeof *ev + ev->len;
		}
	}
	if (relevant)
		queue_check(q);
}

static void queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_check(arg);
}

static void queue_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	(void)fd;
	(void)what;
	q->backoff = false;
	if (q->failed != NULL) {
		struct queue_batch *b = q->failed;

		q->failed = NULL;
		q->in_flight = true;
		to_thread(q->worker, queue_ingest_work, b, queue_ingest_done);
		return;
	}
	queue_check(q);
}

int queue_open(struct event_base *base, struct worker *w, struct store *st,
	       const char *path, const struct store_queue_pos *pos,
	       queue_ingested_cb cb, void *arg, struct queue **out,
	       char **cause)
{
	struct queue *q = calloc(1, sizeof *q);
	char *tmp;

	if (q == NULL)
		abort();
	q->base = base;
	q->worker = w;
	q->store = st;
	q->fd = -1;
	q->ifd = -1;
	q->cb = cb;
	q->cb_arg = arg;
	q->path = strdup(path);
	if (q->path != NULL) {
		const char *slash = strrchr(q->path, '/');

		q->base_name = slash ? slash + 1 : q->path;
	}
	tmp = strdup(path);
	q->dir = strdup(dirname(tmp));
	free(tmp);
	q->buf = malloc(QUEUE_CHUNK);
	if (q->path == NULL || q->dir == NULL || q->buf == NULL)
		abort();

	if (queue_open_path(q, cause) != 0)
		goto fail;
	if (pos != NULL) {
		if ((dev_t)pos->dev == q->dev && (ino_t)pos->ino == q->ino) {
			if (queue_same_file(q->fd, pos)) {
				q->commit_off = q->read_off = pos->offset;
			} else {
				log_warn("queue file %s is not the file gatherd "
					 "was reading (its start changed, or it "
					 "is shorter than the stored offset): "
					 "reading it from the start",
					 path);
				q->reset_pending = true;
			}
		} else {
			int fd = queue_find_rotated(q, pos);

			if (fd >= 0) {
				close(q->fd);
				q->fd = fd;
				q->dev = (dev_t)pos->dev;
				q->ino = (ino_t)pos->ino;
				q->commit_off = q->read_off = pos->offset;
			} else {
				log_warn("queue file %s was replaced while "
					 "gatherd was stopped and the old one "
					 "is gone: reading the new file from "
					 "the start",
					 path);
			}
		}
	}

	q->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q->ifd < 0 ||
	    inotify_add_watch(q->ifd, q->dir,
			      IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE |
				      IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
				      IN_ATTRIB) < 0) {
		*cause = util_printf("cannot watch %s with inotify: %s",
				     q->dir, strerror(errno));
		goto fail;
	}
	q->ev_inotify = event_new(base, q->ifd, EV_READ | EV_PERSIST,
				  queue_inotify_cb, q);
	q->ev_poll = event_new(base, -1, EV_PERSIST, queue_timer_cb, q);
	q->ev_retry = event_new(base, -1, 0, queue_retry_cb, q);
	struct timeval tv = {QUEUE_POLL_MS / 1000, (QUEUE_POLL_MS % 1000) * 1000};
	if (q->ev_inotify == NULL || q->ev_poll == NULL || q->ev_retry == NULL ||
	    event_add(q->ev_inotify, NULL) != 0 ||
	    event_add(q->ev_poll, &tv) != 0) {
		*cause = util_printf("cannot set up queue events");
		goto fail;
	}
	*out = q;
	queue_check(q);
	return 0;
fail:
	queue_free(q);
	return -1;
}

bool queue_caught_up(const struct queue *q)
{
	return q->caught_up && !q->in_flight && !q->dirty;
}

bool queue_busy(const struct queue *q)
{
	return q->in_flight;
}

void queue_stop(struct queue *q)
{
	q->stopped = true;
	if (q->ev_poll != NULL)
		event_del(q->ev_poll);
	if (q->ev_inotify != NULL)
		event_del(q->ev_inotify);
	if (q->ev_retry != NULL)
		event_del(q->ev_retry);
}

void queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->ev_inotify != NULL)
		event_free(q->ev_inotify);
	if (q->ev_poll != NULL)
		event_free(q->ev_poll);
	if (q->ev_retry != NULL)
		event_free(q->ev_retry);
	if (q->failed != NULL)
		queue_batch_free(q->failed);
	if (q->ifd >= 0)
		close(q->ifd);
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q->path);
	free(q->dir);
	free(q);
}

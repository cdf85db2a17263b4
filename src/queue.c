/* Queue-file watcher: see queue.h.
 *
 * Each file being read is a `struct qfile` with two offsets: `commit_off`,
 * the end of the last line stored in SQLite (what a restart resumes from),
 * and `read_off`, how far this run has scanned (ahead of commit_off only
 * inside an over-long line).  One ingest is in flight at a time; inotify
 * events that arrive meanwhile set `dirty`, so bursts of appends are
 * group-committed.
 *
 * Two files may be read at once: `cur`, the file at the configured path,
 * and after a rotation (rename, then a new file at the path) `old`, the
 * rotated file, followed until it has been quiet for QUEUE_ROTATE_GRACE_MS,
 * because a writer that opened it before the rename may still append to it.
 * Every ingest stores both positions (store.h, struct store_queue_state),
 * so a restart resumes both.  When a second rotation comes while `old` is
 * still followed, `old` is finished first (its last line taken as it is)
 * and `cur` becomes the new `old`: the grace period covers one rotation at
 * a time. */
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
#define QUEUE_TAIL_BYTES 256  /* bytes before commit_off checked for rewrites */
#define QUEUE_ROTATE_GRACE_MS 5000 /* a rotated file is followed this long */
#define QUEUE_PARTIAL_WARN_MS 30000 /* an unterminated line this old: warn */

/* A queue file being read: the one at the path, or a rotated one. */
struct qfile {
	int fd; /* -1: none */
	dev_t dev;
	ino_t ino;
	int64_t commit_off;
	int64_t read_off;
	int64_t head_len;  /* its first head_len bytes hash to head_hash */
	int64_t head_hash; /* (the identity stored with the position) */
	int64_t tail_len;  /* the tail_len bytes before commit_off hash to */
	int64_t tail_hash; /* tail_hash (0: not known yet) */
	struct queue_splitter sp;
	int64_t grew_ms;   /* rotated file: when it last grew */
	int64_t size;      /* rotated file: its size then */
	bool finishing;    /* rotated file: read it to its end, then close */
};

/* One ingest: lines from one file, and the positions to store with them. */
struct queue_batch {
	struct queue *q;
	struct store_line *lines;
	size_t *offs; /* offset of each line's text in blob */
	size_t n, cap;
	char *blob;
	size_t blob_len, blob_cap;
	size_t n_queued, n_failed;
	bool from_old;   /* the lines come from the rotated file */
	bool closes_old; /* the rotated file is finished with this batch */
	int64_t offset;  /* that file's new commit offset */
	int64_t tail_len, tail_hash; /* its bytes before that offset */
	struct store_queue_state qs;
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
	struct qfile cur; /* the file at the path (or one rotated while
			   * gatherd was stopped, until it is finished) */
	struct qfile old; /* a rotated file still followed */
	bool reset_pending; /* cur restarts at 0: store that even without
			     * lines, so a restart does not resume the old
			     * offset */
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
	int64_t partial_since_ms; /* cur ends in an unterminated line since */
	bool gone_logged; /* nothing at the path any more, and it was said */
	bool partial_warned;
	queue_ingested_cb cb;
	queue_room_cb room_cb;
	void *cb_arg;
};

static void queue_check(struct queue *q);

static void qfile_init(struct qfile *f)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

static void qfile_close(struct qfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	qfile_init(f);
}

/* Start reading f from offset 0 (a new file, or one truncated or
 * rewritten). */
static void qfile_rewind(struct qfile *f)
{
	f->read_off = f->commit_off = 0;
	f->head_len = f->tail_len = 0;
	f->head_hash = f->tail_hash = 0;
	memset(&f->sp, 0, sizeof f->sp);
}

static struct queue_batch *queue_batch_new(struct queue *q)
{
	struct queue_batch *b = xcalloc(1, sizeof *b);

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
		b->lines = xrealloc(b->lines, b->cap * sizeof *b->lines);
		b->offs = xrealloc(b->offs, b->cap * sizeof *b->offs);
	}
	if (b->blob_len + tlen > b->blob_cap) {
		b->blob_cap = (b->blob_len + tlen) * 2 + 4096;
		b->blob = xrealloc(b->blob, b->blob_cap);
	}
	memcpy(b->blob + b->blob_len, start, tlen);
	b->offs[b->n] = b->blob_len;
	b->lines[b->n].len = tlen;
	b->lines[b->n].invalid_detail = detail;
	b->lines[b->n].take = false; /* queue_submit() decides */
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

	b->rc = store_ingest(b->q->store, b->lines, b->n, &b->qs,
			     util_wall_ms(), &b->cause);
}

static void queue_ingest_done(void *arg)
{
	struct queue_batch *b = arg;
	struct queue *q = b->q;

	q->in_flight = false;
	if (b->rc != 0) {
		/* Nothing was stored: submit exactly this batch again after a
		 * pause, so no line is lost or doubled (after a rotation its
		 * lines come from a file no longer being read, so reading
		 * again would lose them).  Until then nothing reads: every
		 * file event would otherwise retry at once, and a full disk
		 * would become a busy loop. */
		log_error("cannot store queue lines (will retry): %s",
			  b->cause);
		free(b->cause);
		b->cause = NULL;
		q->failed = b;
		q->backoff = true;
		struct timeval tv = {1, 0};
		event_add(q->ev_retry, &tv);
		return;
	}
	if (!b->closes_old) {
		struct qfile *f = b->from_old ? &q->old : &q->cur;

		f->commit_off = b->offset;
		f->tail_len = b->tail_len;
		f->tail_hash = b->tail_hash;
	}
	if (b->n > 0)
		log_debug("ingested %zu lines (%zu invalid) from the %s file, "
			  "offset %lld",
			  b->n, b->n_failed, b->from_old ? "rotated" : "queue",
			  (long long)b->offset);
	/* Even an ingest of no lines (a rewound file's offset 0): a daemon
	 * that is stopping waits for the queue to be idle. */
	if (q->cb != NULL)
		q->cb(q->cb_arg, b->lines, b->n, b->n_queued, b->n_failed);
	queue_batch_free(b);
	queue_check(q);
}

/* FNV-1a of `len` bytes of fd at `off` into *hash; -1 if they cannot all
 * be read. */
static int queue_hash(int fd, int64_t off, int64_t len, int64_t *hash)
{
	unsigned char buf[QUEUE_HEAD_BYTES];
	uint64_t h = 1469598103934665603ULL;
	ssize_t n;

	if (len > QUEUE_HEAD_BYTES)
		len = QUEUE_HEAD_BYTES;
	n = pread(fd, buf, (size_t)len, off);
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
	return queue_hash(fd, 0, pos->head_len, &h) == 0 &&
	       h == pos->head_hash;
}

/* Has f changed under us in a way appending cannot explain?  Returns why
 * ("truncated", "rewritten") or NULL; st is f's fstat(), brought up to
 * date when the answer is not NULL.  A rewrite with `>` that grows past
 * the offset is only visible in the bytes already read: the file's first
 * bytes (its identity) or the bytes just before the committed offset no
 * longer hash the same, or no newline ends them. */
static const char *qfile_changed(const struct qfile *f, struct stat *st)
{
	int64_t h;
	char nl;

	if (st->st_size < f->read_off)
		return "truncated";
	if (f->commit_off == 0)
		return NULL;
	if ((f->head_len > 0 && (queue_hash(f->fd, 0, f->head_len, &h) != 0 ||
				 h != f->head_hash)) ||
	    (f->tail_len > 0 &&
	     (queue_hash(f->fd, f->commit_off - f->tail_len, f->tail_len,
			 &h) != 0 ||
	      h != f->tail_hash)) ||
	    pread(f->fd, &nl, 1, f->commit_off - 1) != 1 || nl != '\n') {
		/* A truncation (copytruncate's `: > queue`) that came between
		 * the fstat() and these reads looks like a rewrite to them:
		 * look at the size again, so that it is named for what it
		 * is. */
		if (fstat(f->fd, st) == 0 && st->st_size < f->read_off)
			return "truncated";
		return "rewritten";
	}
	return NULL;
}

/* The identity of f at `offset` as stored: its (dev, ino) and the hash of
 * its first bytes, which grows with the offset up to QUEUE_HEAD_BYTES and
 * is recomputed only while the file is shorter than that. */
static struct store_queue_pos qfile_pos(struct qfile *f, int64_t offset)
{
	int64_t want = offset < QUEUE_HEAD_BYTES ? offset : QUEUE_HEAD_BYTES;
	struct store_queue_pos pos;

	if (f->head_len != want) {
		f->head_len = 0;
		if (want > 0 && queue_hash(f->fd, 0, want, &f->head_hash) == 0)
			f->head_len = want;
	}
	pos.dev = (int64_t)f->dev;
	pos.ino = (int64_t)f->ino;
	pos.offset = offset;
	pos.head_len = f->head_len;
	pos.head_hash = f->head_len > 0 ? f->head_hash : 0;
	return pos;
}

/* Hand a batch to the worker: its lines and, in the same transaction, the
 * positions of both files (the batch's file at b->offset). */
static void queue_submit(struct queue *q, struct queue_batch *b)
{
	struct qfile *f = b->from_old ? &q->old : &q->cur;

	for (size_t i = 0; i < b->n; i++)
		b->lines[i].url = b->blob + b->offs[i];
	if (!b->closes_old) {
		b->tail_len = b->offset < QUEUE_TAIL_BYTES ? b->offset
							    : QUEUE_TAIL_BYTES;
		if (b->tail_len > 0 &&
		    queue_hash(f->fd, b->offset - b->tail_len, b->tail_len,
			       &b->tail_hash) != 0)
			b->tail_len = 0;
	}
	b->qs.has_cur = true;
	b->qs.cur = qfile_pos(&q->cur,
			      b->from_old ? q->cur.commit_off : b->offset);
	b->qs.has_old = q->old.fd >= 0 && !b->closes_old;
	if (b->qs.has_old)
		b->qs.old = qfile_pos(&q->old, b->from_old ? b->offset
							   : q->old.commit_off);
	if (!b->from_old)
		q->reset_pending = false;
	size_t room = q->room_cb != NULL ? q->room_cb(q->cb_arg) : 0;
	for (size_t i = 0; i < b->n && room > 0; i++) {
		if (b->lines[i].invalid_detail == NULL) {
			b->lines[i].take = true;
			room--;
		}
	}
	q->in_flight = true;
	to_thread(q->worker, queue_ingest_work, b, queue_ingest_done);
}

/* Open `path` (creating it) as a new cur. */
static int queue_open_path(struct queue *q, struct qfile *f, char **cause)
{
	struct stat st;
	int fd;

	/* Create it so producers can append right away; group-writable so
	 * members of the service's group can submit.  O_NONBLOCK: a FIFO at
	 * the path must not block the open (it is refused below); reads of
	 * a regular file never block anyway. */
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
	qfile_init(f);
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

/* After a restart a stored position may belong to a file that was rotated
 * away (renamed in the same directory): find it by its inode.  Returns its
 * descriptor, or -1. */
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
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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

/* Make fd, found by queue_find_rotated(), the file f at pos. */
static void qfile_resume(struct qfile *f, int fd,
			 const struct store_queue_pos *pos)
{
	qfile_init(f);
	f->fd = fd;
	f->dev = (dev_t)pos->dev;
	f->ino = (ino_t)pos->ino;
	f->commit_off = f->read_off = pos->offset;
	f->head_len = pos->head_len;
	f->head_hash = pos->head_hash;
}

/* Read the next chunk of f and hand its complete lines to the worker.
 * Returns true if an ingest was started. */
static bool queue_read_chunk(struct queue *q, struct qfile *f, bool is_old)
{
	struct stat st;
	const char *why;

	if (fstat(f->fd, &st) != 0)
		st.st_size = f->read_off;
	if (is_old && st.st_size != f->size) {
		f->grew_ms = util_mono_ms();
		f->size = st.st_size;
	}
	if ((why = qfile_changed(f, &st)) != NULL) {
		log_warn("%s %s was %s (size %lld, offset %lld): reading it "
			 "from the start",
			 is_old ? "rotated queue file of" : "queue file",
			 q->path, why, (long long)st.st_size,
			 (long long)f->read_off);
		qfile_rewind(f);
		/* Store offset 0 now, even if no line follows yet: a restart
		 * must not resume at the old offset once the file regrows. */
		if (!is_old)
			q->reset_pending = true;
	}

	struct queue_batch *b = NULL;
	for (;;) {
		ssize_t n = pread(f->fd, q->buf, QUEUE_CHUNK, f->read_off);

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
		int64_t chunk_start = f->read_off;
		struct queue_split_result r =
			queue_split(&f->sp, q->buf, (size_t)n, queue_emit_cb, b);
		f->read_off += (int64_t)r.consumed;
		if (r.any_complete) {
			b->offset = chunk_start + (int64_t)r.complete_end;
			break;
		}
		if (r.consumed == 0)
			break; /* a partial line waits for its newline */
		/* Inside an over-long line: keep scanning. */
	}
	if (b == NULL || b->offset == 0) {
		if (b != NULL)
			queue_batch_free(b);
		if (is_old || !q->reset_pending)
			return false;
		b = queue_batch_new(q);
	}
	b->from_old = is_old;
	queue_submit(q, b);
	return true;
}

/* The rotated file is at its end and done with: take its unterminated
 * last line as it is (producers now write to the new file, so it will
 * never be completed), close it and clear its stored position, in one
 * ingest. */
static void queue_finish_old(struct queue *q)
{
	struct qfile *f = &q->old;
	struct queue_batch *b = queue_batch_new(q);
	ssize_t n;

	while ((n = pread(f->fd, q->buf, QUEUE_CHUNK, f->read_off)) > 0) {
		struct queue_split_result r =
			queue_split(&f->sp, q->buf, (size_t)n, queue_emit_cb, b);

		f->read_off += (int64_t)r.consumed;
		if (r.consumed < (size_t)n) {
			size_t rest = (size_t)n - r.consumed;

			log_warn("rotated queue file ended without a newline; "
				 "taking its last line as it is");
			queue_emit_cb(b, q->buf + r.consumed, rest, rest);
			break;
		}
	}
	if (f->sp.in_long) {
		log_warn("rotated queue file ended inside an over-long line");
		queue_emit_cb(b, f->sp.prefix, f->sp.prefix_len,
			      f->sp.long_len);
	}
	log_info("stopped following the rotated queue file (quiet for %d ms)",
		 QUEUE_ROTATE_GRACE_MS);
	qfile_close(f);
	b->from_old = true;
	b->closes_old = true;
	queue_submit(q, b);
}

/* cur is at its end: if the path now names another file (rotation), make
 * cur the rotated file and open the new one.  Returns true if it did, or
 * if the rotated file still followed must be finished first. */
static bool queue_follow_rotation(struct queue *q)
{
	struct stat st, old_st;
	char *cause = NULL;
	struct qfile next;

	if (stat(q->path, &st) != 0) {
		/* Renamed away (rotation under way), or removed: say which,
		 * once, so that an `rm` is not mistaken for a rotation. */
		if (!q->gone_logged && errno == ENOENT) {
			struct stat cur;
			bool removed = fstat(q->cur.fd, &cur) == 0 &&
				       cur.st_nlink == 0;

			log_info("queue file %s was %s: waiting for a new "
				 "one at that path",
				 q->path, removed ? "removed" : "renamed");
			q->gone_logged = true;
		}
		return false;
	}
	q->gone_logged = false;
	if (st.st_dev == q->cur.dev && st.st_ino == q->cur.ino)
		return false;
	if (q->old.fd >= 0) {
		/* A second rotation: the earlier rotated file goes first. */
		q->old.finishing = true;
		return true;
	}
	if (queue_open_path(q, &next, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return false;
	}
	bool removed = fstat(q->cur.fd, &old_st) == 0 && old_st.st_nlink == 0;
	log_info("queue file %s was %s: now reading the new file, and the "
		 "old one until it has been quiet for %d ms",
		 q->path, removed ? "removed and created again" : "rotated",
		 QUEUE_ROTATE_GRACE_MS);
	q->old = q->cur;
	q->old.grew_ms = util_mono_ms();
	q->old.finishing = false;
	q->cur = next;
	return true;
}

/* Warn once when the queue file has ended in an unterminated line for a
 * while: a producer that forgot the newline (printf without \n) would
 * otherwise wait forever without a word. */
static void queue_check_partial(struct queue *q)
{
	struct stat st;
	int64_t now = util_mono_ms();

	if (q->cur.sp.in_long || fstat(q->cur.fd, &st) != 0 ||
	    st.st_size <= q->cur.read_off) {
		q->partial_since_ms = 0;
		q->partial_warned = false;
		return;
	}
	if (q->partial_since_ms == 0)
		q->partial_since_ms = now;
	if (!q->partial_warned &&
	    now - q->partial_since_ms >= QUEUE_PARTIAL_WARN_MS) {
		log_warn("queue file %s has ended in %lld bytes without a "
			 "newline for %d s: a line is taken only once it ends "
			 "in a newline",
			 q->path, (long long)(st.st_size - q->cur.read_off),
			 QUEUE_PARTIAL_WARN_MS / 1000);
		q->partial_warned = true;
	}
}

/* Bring ingestion up to date with the files. */
static void queue_check(struct queue *q)
{
	if (q->stopped || q->backoff)
		return;
	if (q->in_flight) {
		q->dirty = true;
		return;
	}
	q->dirty = false;
	for (int i = 0; i < 8; i++) {
		if (q->old.fd >= 0) {
			if (queue_read_chunk(q, &q->old, true))
				goto started;
			if (q->old.finishing ||
			    util_mono_ms() - q->old.grew_ms >=
				    QUEUE_ROTATE_GRACE_MS) {
				queue_finish_old(q);
				goto started;
			}
		}
		if (queue_read_chunk(q, &q->cur, false))
			goto started;
		if (!queue_follow_rotation(q))
			break;
	}
	q->caught_up = true;
	if (q->cb != NULL)
		q->cb(q->cb_arg, NULL, 0, 0, 0);
	return;
started:
	q->caught_up = false;
}

static void queue_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	(void)what;
	/* Writes to the queue file, and any file appearing, moving or going
	 * away (rotation), concern us; while a rotated file is followed,
	 * writes to any file do (its name is not known).  Otherwise writes to
	 * other files of the directory do not: the database and its WAL often
	 * live there, and every commit would wake us. */
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			if ((ev->mask & ~(uint32_t)(IN_MODIFY | IN_CLOSE_WRITE |
						    IN_ATTRIB)) != 0 ||
			    ev->len == 0 || q->old.fd >= 0 ||
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
	struct queue *q = arg;

	(void)fd;
	(void)what;
	queue_check(q);
	if (!q->in_flight && q->caught_up)
		queue_check_partial(q);
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

/* Resume from the stored state: the path's file at its offset, or a file
 * rotated away while gatherd was stopped (then cur is that file until it
 * is finished), and the rotated file that was being followed. */
static void queue_resume(struct queue *q, const struct store_queue_state *qs)
{
	if (qs->has_cur) {
		const struct store_queue_pos *pos = &qs->cur;

		if ((dev_t)pos->dev == q->cur.dev &&
		    (ino_t)pos->ino == q->cur.ino) {
			if (queue_same_file(q->cur.fd, pos)) {
				qfile_resume(&q->cur, q->cur.fd, pos);
			} else {
				log_warn("queue file %s is not the file gatherd "
					 "was reading (its start changed, or it "
					 "is shorter than the stored offset): "
					 "reading it from the start",
					 q->path);
				q->reset_pending = true;
			}
		} else {
			int fd = queue_find_rotated(q, pos);

			if (fd >= 0) {
				close(q->cur.fd);
				qfile_resume(&q->cur, fd, pos);
			} else {
				log_warn("queue file %s was replaced while "
					 "gatherd was stopped and the old one "
					 "is gone: reading the new file from "
					 "the start",
					 q->path);
			}
		}
	}
	if (qs->has_old) {
		int fd = queue_find_rotated(q, &qs->old);

		if (fd >= 0) {
			qfile_resume(&q->old, fd, &qs->old);
			q->old.grew_ms = util_mono_ms();
		} else {
			log_info("the rotated queue file gatherd was following "
				 "is gone");
		}
	}
}

int queue_open(struct event_base *base, struct worker *w, struct store *st,
	       const char *path, const struct store_queue_state *qs,
	       queue_ingested_cb cb, queue_room_cb room, void *arg,
	       struct queue **out, char **cause)
{
	struct queue *q = xcalloc(1, sizeof *q);
	char *tmp;

	q->base = base;
	q->worker = w;
	q->store = st;
	qfile_init(&q->cur);
	qfile_init(&q->old);
	q->ifd = -1;
	q->cb = cb;
	q->room_cb = room;
	q->cb_arg = arg;
	q->path = xstrdup(path);
	const char *slash = strrchr(q->path, '/');
	q->base_name = slash ? slash + 1 : q->path;
	tmp = xstrdup(path);
	q->dir = xstrdup(dirname(tmp));
	free(tmp);
	q->buf = xmalloc(QUEUE_CHUNK);

	if (queue_open_path(q, &q->cur, cause) != 0)
		goto fail;
	queue_resume(q, qs);

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

/* How many bytes at the end of fd (of `size` bytes) follow its last
 * newline: an unfinished line.  Looks at most `max` bytes back; returns
 * -1 when it cannot read. */
int64_t queue_partial_tail(int fd, int64_t size, int64_t max)
{
	char buf[4096];
	int64_t end = size, seen = 0;

	while (end > 0 && seen < max) {
		size_t n = end < (int64_t)sizeof buf ? (size_t)end : sizeof buf;
		ssize_t r = pread(fd, buf, n, end - (int64_t)n);

		if (r != (ssize_t)n)
			return -1;
		for (ssize_t i = r - 1; i >= 0; i--) {
			if (buf[i] == '\n')
				return size - (end - (int64_t)n + i + 1);
		}
		end -= (int64_t)n;
		seen += (int64_t)n;
	}
	return size - end;
}

int64_t queue_partial_bytes(const struct queue *q)
{
	struct stat st;

	if (q->cur.fd < 0 || fstat(q->cur.fd, &st) != 0)
		return -1;
	return queue_partial_tail(q->cur.fd, st.st_size, 64 * 1024);
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
	qfile_close(&q->cur);
	qfile_close(&q->old);
	free(q->buf);
	free(q->path);
	free(q->dir);
	free(q);
}

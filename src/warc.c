/* The WARC archive writer: see warc.h.  Worker thread only.
 *
 * One gzip member per record.  A .warc.gz file is a concatenation of gzip
 * members and each member inflates on its own, so a record can be read
 * from its offset alone (the offset a result row keeps, and `gatherd
 * cat`), and a file cut short loses only its last record.  It is also
 * what WARC readers expect of a .warc.gz.
 *
 * Why a record collects its block on the side.  Many records are in
 * progress at once (one per fetch in flight), a file takes them one after
 * the other, and a record's header (Content-Length, the digests) comes
 * first in its member but is only known once the last body byte is in.
 * So each record keeps its block until it finishes: up to WARC_MEM_MAX
 * bytes in memory, then in an unlinked file in the WARC directory
 * (O_TMPFILE, or mkstemp and unlink): memory stays bounded by the number
 * of fetches in flight whatever the body sizes, the spill is on the same
 * disk as the archive rather than in a tmpfs, and a crash leaves nothing
 * behind.  The digests are computed as the bytes arrive, so finishing
 * reads the block once, to deflate it.
 *
 * When a record is complete on disk.  warc_record_finish() returns 0 only
 * after every byte of the member went to the file with write(); the file
 * is opened O_APPEND and written by this thread alone, so a process killed
 * at any moment leaves the earlier members whole and at most one torn
 * member at the end.  A member whose write fails midway is cut off again
 * with ftruncate(), so a failed record leaves no torn member in the middle
 * of a file.  A writer never appends to an existing file (O_EXCL), so a
 * torn member stays the last thing in its file.  Written means in the
 * kernel's cache, which survives a crash of the process; warc_sync() adds
 * fdatasync for a power loss.
 *
 * Rollover.  A member's compressed size is only known once it is written,
 * so it is written at the end of the current file and, when that took the
 * file past max_bytes and the file already held a capture, cut off and
 * written again into a new file.  One record per file is compressed twice;
 * no compressed copy has to be kept anywhere. */
#include "warc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "log.h"
#include "util.h"
#include "warc_fmt.h"

/* Block bytes a record keeps in memory before it spills to disk. */
#define WARC_MEM_MAX (64 * 1024)

#define WARC_CONFORMS_TO                                                       \
	"http://iipc.github.io/warc-specifications/specifications/"            \
	"warc-format/warc-1.1/"
#define WARC_PROFILE_IDENTICAL                                                 \
	"http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
#define WARC_PROFILE_NOT_MODIFIED                                              \
	"http://netpreserve.org/warc/1.1/revisit/server-not-modified"

/* The writer.  `fd` is the current file (-1 before the first record and
 * after a failure that left it unusable), `size` its length as written;
 * at `capture_start` (just past its warcinfo) it holds no capture yet. */
struct warc {
	char *dir;
	int dirfd;
	int64_t max_bytes;
	char *software;
	char hostname[256];

	int fd;
	char file[WARC_FILE_SIZE];
	int64_t size;
	int64_t capture_start;
	unsigned counter; /* NNNNN of the next file name */
	bool dirty;	  /* written since the last fdatasync */
	bool dir_dirty;	  /* a file created since the directory's fsync */
	char *sync_err;	  /* a closed file that failed fdatasync */

	z_stream z; /* reset for every member */
	unsigned char *io, *out;
	TAILQ_HEAD(warc_records, warc_record) records;
	struct warc_stats st;
};

/* A capture in progress.  Its block is the first `spilled` bytes in
 * spill_fd followed by mem[0..mem_len).  Once `err` is set, further bytes
 * are ignored, the buffers are gone, and finish reports err. */
struct warc_record {
	TAILQ_ENTRY(warc_record) link;
	struct warc *w;
	char *uri, *ip;
	int64_t date_ms;
	char id[WARC_ID_SIZE];
	char *err;

	unsigned char *mem;
	size_t mem_len, mem_cap;
	int spill_fd;
	int64_t spilled;
	int64_t block_len;

	/* The block, its HTTP header block only (what a revisit keeps), and
	 * the payload. */
	EVP_MD_CTX *block_sha, *head_sha, *payload_sha;
	int head_state;
	int64_t head_len; /* 0 until the header block has ended */
	int64_t payload_len;
};

/* What one finish writes: the record, and perhaps its request after it. */
struct warc_capture {
	struct warc_buf head;
	const struct warc_record *r;
	int64_t block_len; /* the first block_len bytes of r's block */
	struct warc_buf req_head;
	const void *req;
	size_t req_len;
};

/* Check the directory and set up zlib; no file is created before the first
 * record, so a daemon that fetches nothing leaves no empty archive. */
int warc_open(const char *dir, int64_t max_bytes, const char *software,
	      struct warc **out, char **cause)
{
	struct warc *w = xcalloc(1, sizeof *w);

	w->dirfd = -1;
	w->fd = -1;
	TAILQ_INIT(&w->records);
	if (max_bytes <= 0) {
		*cause = util_printf("WARC file size limit must be positive");
		goto fail;
	}
	if (!warc_text_ok(software)) {
		*cause = util_printf("software name has a control character");
		goto fail;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		*cause = util_printf("cannot open WARC directory %s: %s", dir,
				     strerror(errno));
		goto fail;
	}
	if (faccessat(w->dirfd, ".", W_OK, AT_EACCESS) != 0) {
		*cause = util_printf("cannot write to WARC directory %s: %s",
				     dir, strerror(errno));
		goto fail;
	}
	w->dir = xstrdup(dir);
	w->max_bytes = max_bytes;
	w->software = xstrdup(software);
	if (gethostname(w->hostname, sizeof w->hostname) != 0 ||
	    !warc_token_ok(w->hostname))
		snprintf(w->hostname, sizeof w->hostname, "localhost");
	w->z.zalloc = warc_zalloc;
	w->z.zfree = warc_zfree;
	/* 16 + 15: the gzip wrapper with the largest window.  Level 1: on
	 * web pages a few per cent larger than the default level 6, and about
	 * half the CPU (the writer is what limits an archiving crawl). */
	if (deflateInit2(&w->z, Z_BEST_SPEED, Z_DEFLATED, 16 + 15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		*cause = util_printf("cannot initialise zlib");
		goto fail;
	}
	w->io = xmalloc(WARC_IO_SIZE);
	w->out = xmalloc(WARC_IO_SIZE);
	*out = w;
	return 0;
fail:
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->dir);
	free(w->software);
	free(w);
	return -1;
}

/* Unlink r from its writer and release everything it holds. */
static void warc_record_free(struct warc_record *r)
{
	struct warc *w = r->w;

	TAILQ_REMOVE(&w->records, r, link);
	w->st.records_open--;
	w->st.memory_bytes -= (int64_t)r->mem_cap;
	if (r->spill_fd >= 0) {
		close(r->spill_fd);
		w->st.spill_files--;
	}
	EVP_MD_CTX_free(r->block_sha);
	EVP_MD_CTX_free(r->head_sha);
	EVP_MD_CTX_free(r->payload_sha);
	free(r->mem);
	free(r->uri);
	free(r->ip);
	free(r->err);
	free(r);
}

/* Close the current file after fdatasync; a failure is kept for the next
 * warc_sync() or warc_close(), since the records in it were reported
 * written already. */
static void warc_file_close(struct warc *w)
{
	int err = 0;

	if (w->fd < 0)
		return;
	if (w->dirty && fdatasync(w->fd) != 0)
		err = errno;
	if (close(w->fd) != 0 && err == 0)
		err = errno;
	if (err != 0) {
		log_error("WARC file %s may be incomplete on disk: %s", w->file,
			  strerror(err));
		free(w->sync_err);
		w->sync_err = util_printf("%s: %s", w->file, strerror(err));
	}
	w->fd = -1;
	w->dirty = false;
}

/* Abort what is open, flush and close the file, free the writer. */
int warc_close(struct warc *w, char **cause)
{
	int rc = 0;

	while (!TAILQ_EMPTY(&w->records))
		warc_record_free(TAILQ_FIRST(&w->records));
	warc_file_close(w);
	if (w->dir_dirty && fsync(w->dirfd) != 0 && w->sync_err == NULL)
		w->sync_err = util_printf("%s: %s", w->dir, strerror(errno));
	if (w->sync_err != NULL) {
		*cause = util_printf("cannot flush WARC file %s", w->sync_err);
		rc = -1;
	}
	deflateEnd(&w->z);
	close(w->dirfd);
	free(w->sync_err);
	free(w->io);
	free(w->out);
	free(w->dir);
	free(w->software);
	free(w);
	return rc;
}

/* fdatasync what was written since the last call (see warc.h). */
int warc_sync(struct warc *w, char **cause)
{
	if (w->fd >= 0 && w->dirty) {
		if (fdatasync(w->fd) != 0) {
			*cause = util_printf("cannot flush WARC file %s: %s",
					     w->file, strerror(errno));
			return -1;
		}
		w->dirty = false;
	}
	if (w->dir_dirty) {
		if (fsync(w->dirfd) != 0) {
			*cause = util_printf("cannot flush WARC directory %s: "
					     "%s",
					     w->dir, strerror(errno));
			return -1;
		}
		w->dir_dirty = false;
	}
	if (w->sync_err != NULL) {
		*cause = util_printf("cannot flush WARC file %s", w->sync_err);
		free(w->sync_err);
		w->sync_err = NULL;
		return -1;
	}
	return 0;
}

/* A copy of the counters. */
void warc_stats(const struct warc *w, struct warc_stats *st)
{
	*st = w->st;
}

/* Remember the first problem of r and drop its buffers: it can only fail
 * now, so it should hold no memory or file while its fetch goes on. */
static void warc_record_fail(struct warc_record *r, char *cause)
{
	struct warc *w = r->w;

	if (r->err != NULL) {
		free(cause);
		return;
	}
	r->err = cause;
	w->st.memory_bytes -= (int64_t)r->mem_cap;
	free(r->mem);
	r->mem = NULL;
	r->mem_len = r->mem_cap = 0;
	if (r->spill_fd >= 0) {
		close(r->spill_fd);
		r->spill_fd = -1;
		w->st.spill_files--;
	}
}

/* A new record in progress; a bad URI or address is kept as its error. */
struct warc_record *warc_record_begin(struct warc *w, const char *target_uri,
				      int64_t date_ms, const char *ip)
{
	struct warc_record *r = xcalloc(1, sizeof *r);

	r->w = w;
	r->uri = xstrdup(target_uri != NULL ? target_uri : "");
	r->ip = ip != NULL ? xstrdup(ip) : NULL;
	r->date_ms = date_ms;
	r->spill_fd = -1;
	r->block_sha = warc_sha_new();
	r->head_sha = warc_sha_new();
	r->payload_sha = warc_sha_new();
	TAILQ_INSERT_TAIL(&w->records, r, link);
	w->st.records_open++;
	if (!warc_token_ok(r->uri))
		warc_record_fail(r, util_printf("target URI is empty or has a "
						"space or control character"));
	else if (ip != NULL && !warc_token_ok(ip))
		warc_record_fail(r, util_printf("IP address is empty or has a "
						"space or control character"));
	else if (warc_uuid(r->id) != 0)
		warc_record_fail(r, util_printf("cannot generate a record ID"));
	return r;
}

/* An unlinked file in the WARC directory for r's block: on the archive's
 * disk, and gone by itself however the process ends. */
static int warc_spill_open(struct warc *w, char **cause)
{
	int fd = openat(w->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 &&
	    (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* A file system without O_TMPFILE. */
		char *path = util_printf("%s/.gatherd-spill-XXXXXX", w->dir);

		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
		free(path);
	}
	if (fd < 0)
		*cause = util_printf("cannot create a temporary file in %s: %s",
				     w->dir, strerror(errno));
	return fd;
}

/* Move the memory buffer to the end of the spill file. */
static int warc_record_spill(struct warc_record *r)
{
	struct warc *w = r->w;
	char *cause;

	if (r->spill_fd < 0) {
		r->spill_fd = warc_spill_open(w, &cause);
		if (r->spill_fd < 0) {
			warc_record_fail(r, cause);
			return -1;
		}
		w->st.spill_files++;
	}
	if (warc_write_all(r->spill_fd, r->mem, r->mem_len) != 0) {
		warc_record_fail(r, util_printf("cannot write a temporary "
						"file in %s: %s",
						w->dir, strerror(errno)));
		return -1;
	}
	r->spilled += (int64_t)r->mem_len;
	r->mem_len = 0;
	return 0;
}

/* Digest block bytes as they come and keep them, in memory up to
 * WARC_MEM_MAX and then in the spill file. */
void warc_record_block(struct warc_record *r, const void *p, size_t n)
{
	const unsigned char *s = p;

	if (r->err != NULL || n == 0)
		return;
	warc_sha_update(r->block_sha, s, n);
	if (r->head_len == 0) {
		size_t k = warc_head_end(&r->head_state, s, n);

		warc_sha_update(r->head_sha, s, k > 0 ? k : n);
		if (k > 0)
			r->head_len = r->block_len + (int64_t)k;
	}
	r->block_len += (int64_t)n;
	while (n > 0) {
		size_t take;

		if (r->mem_len == WARC_MEM_MAX && warc_record_spill(r) != 0)
			return;
		take = WARC_MEM_MAX - r->mem_len;
		if (take > n)
			take = n;
		if (r->mem_len + take > r->mem_cap) {
			/* Grow by doubling, so that small responses (most
			 * of them) hold little. */
			size_t cap = r->mem_cap > 0 ? r->mem_cap : 4096;

			while (cap < r->mem_len + take)
				cap *= 2;
			if (cap > WARC_MEM_MAX)
				cap = WARC_MEM_MAX;
			r->mem = xrealloc(r->mem, cap);
			r->w->st.memory_bytes += (int64_t)(cap - r->mem_cap);
			r->mem_cap = cap;
		}
		memcpy(r->mem + r->mem_len, s, take);
		r->mem_len += take;
		s += take;
		n -= take;
	}
}

/* Only digested and counted: the bytes are in the block already. */
void warc_record_payload(struct warc_record *r, const void *p, size_t n)
{
	if (r->err != NULL || n == 0)
		return;
	warc_sha_update(r->payload_sha, p, n);
	r->payload_len += (int64_t)n;
}

/* The payload digest so far, the record staying open. */
void warc_record_payload_sha256(const struct warc_record *r,
				char out[WARC_SHA256_SIZE])
{
	unsigned char md[32];

	warc_sha_peek(r->payload_sha, md);
	warc_hex(md, sizeof md, out);
}

/* Forget r: nothing of it was written, its spill file goes with it. */
void warc_record_abort(struct warc_record *r)
{
	warc_record_free(r);
}

/* Feed p to the current member and write what comes out; flush is
 * Z_NO_FLUSH, or Z_FINISH for the member's last bytes. */
static int warc_deflate(struct warc *w, const void *p, size_t n, int flush,
			char **cause)
{
	const unsigned char *s = p;

	do {
		/* zlib counts input in uInt: hand it over in pieces. */
		size_t piece = n < WARC_IO_SIZE ? n : WARC_IO_SIZE;
		int f = piece == n ? flush : Z_NO_FLUSH;

		w->z.next_in = (Bytef *)s;
		w->z.avail_in = (uInt)piece;
		do {
			size_t have;

			w->z.next_out = w->out;
			w->z.avail_out = WARC_IO_SIZE;
			if (deflate(&w->z, f) == Z_STREAM_ERROR) {
				*cause = util_printf("zlib: deflate failed");
				return -1;
			}
			have = WARC_IO_SIZE - w->z.avail_out;
			if (have > 0 &&
			    warc_write_all(w->fd, w->out, have) != 0) {
				*cause = util_printf("cannot write WARC file "
						     "%s: %s",
						     w->file, strerror(errno));
				return -1;
			}
			w->size += (int64_t)have;
		} while (w->z.avail_out == 0);
		s += piece;
		n -= piece;
	} while (n > 0);
	return 0;
}

/* Deflate the first len bytes of r's block: the spill file, then memory. */
static int warc_deflate_block(struct warc *w, const struct warc_record *r,
			      int64_t len, char **cause)
{
	int64_t off = 0;

	while (off < len && off < r->spilled) {
		int64_t want = len - off;
		ssize_t k;

		if (want > r->spilled - off)
			want = r->spilled - off;
		if (want > WARC_IO_SIZE)
			want = WARC_IO_SIZE;
		k = pread(r->spill_fd, w->io, (size_t)want, off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			*cause =
			    util_printf("cannot read a temporary file in "
					"%s: %s",
					w->dir,
					k < 0 ? strerror(errno)
					      : "it is shorter than written");
			return -1;
		}
		if (warc_deflate(w, w->io, (size_t)k, Z_NO_FLUSH, cause) != 0)
			return -1;
		off += k;
	}
	if (off < len && warc_deflate(w, r->mem, (size_t)(len - off),
				      Z_NO_FLUSH, cause) != 0)
		return -1;
	return 0;
}

/* Write one gzip member: the header, the block (from a record, or from
 * memory), and the two CRLF that end a record. */
static int warc_member(struct warc *w, const struct warc_buf *head,
		       const struct warc_record *r, int64_t r_len,
		       const void *mem, size_t mem_len, char **cause)
{
	if (deflateReset(&w->z) != Z_OK) {
		*cause = util_printf("zlib: cannot reset the stream");
		return -1;
	}
	if (warc_deflate(w, head->p, head->len, Z_NO_FLUSH, cause) != 0)
		return -1;
	if (r != NULL) {
		if (warc_deflate_block(w, r, r_len, cause) != 0)
			return -1;
	} else if (warc_deflate(w, mem, mem_len, Z_NO_FLUSH, cause) != 0) {
		return -1;
	}
	if (warc_deflate(w, "\r\n\r\n", 4, Z_FINISH, cause) != 0)
		return -1;
	w->dirty = true;
	return 0;
}

/* Start a new file named for the time and the counter, with its warcinfo
 * record.  O_EXCL: whatever exists is someone else's, and a crashed
 * writer's torn tail is never followed by new records. */
static int warc_file_open(struct warc *w, char **cause)
{
	char stamp[16], date[WARC_DATE_SIZE], digest[WARC_DIGEST_SIZE],
	    id[WARC_ID_SIZE];
	unsigned char md[32];
	struct warc_buf head = {0}, info = {0};
	time_t now = time(NULL);
	struct tm tm;
	int fd = -1;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
	for (int tries = 0; fd < 0; tries++) {
		snprintf(w->file, sizeof w->file, "gatherd-%s-%05u.warc.gz",
			 stamp, w->counter++);
		fd = openat(w->dirfd, w->file,
			    O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
			    0666);
		if (fd < 0 && (errno != EEXIST || tries >= 100000)) {
			*cause = util_printf("cannot create WARC file %s/%s: "
					     "%s",
					     w->dir, w->file, strerror(errno));
			return -1;
		}
	}
	w->fd = fd;
	w->size = 0;
	w->dir_dirty = true;
	w->st.files_opened++;

	warc_buf_add(&info,
		     "software: %s\r\n"
		     "format: WARC File Format 1.1\r\n"
		     "conformsTo: " WARC_CONFORMS_TO "\r\n"
		     "hostname: %s\r\n",
		     w->software, w->hostname);
	warc_sha256(info.p, info.len, md);
	warc_labelled(md, digest);
	warc_date(util_wall_ms(), date);
	if (warc_uuid(id) != 0) {
		*cause = util_printf("cannot generate a record ID");
		goto fail;
	}
	warc_buf_add(&head,
		     "WARC/1.1\r\n"
		     "WARC-Type: warcinfo\r\n"
		     "WARC-Record-ID: %s\r\n"
		     "WARC-Date: %s\r\n"
		     "WARC-Filename: %s\r\n"
		     "Content-Type: application/warc-fields\r\n"
		     "WARC-Block-Digest: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "\r\n",
		     id, date, w->file, digest, info.len);
	if (warc_member(w, &head, NULL, 0, info.p, info.len, cause) != 0)
		goto fail;
	w->capture_start = w->size;
	w->st.records_written++;
	w->st.bytes_written += w->size;
	free(head.p);
	free(info.p);
	return 0;
fail:
	/* Nothing names the file yet: it goes. */
	close(w->fd);
	unlinkat(w->dirfd, w->file, 0);
	w->fd = -1;
	free(head.p);
	free(info.p);
	return -1;
}

/* Cut the current file back to `start` after a member that failed or
 * went to the next file.  If even that fails, the file is closed as it
 * is: the stray bytes stay its last, and the next record starts a new
 * file. */
static void warc_cut(struct warc *w, int64_t start)
{
	/* Even when w->size says nothing was written: a write that failed
	 * may have written part of its bytes. */
	if (ftruncate(w->fd, start) == 0) {
		w->size = start;
		return;
	}
	log_error("cannot cut WARC file %s back to %lld bytes: %s", w->file,
		  (long long)start, strerror(errno));
	warc_file_close(w);
}

/* Write a capture's members at the end of the current file, rolling over
 * first when the file is full or when they would overflow it. */
static int warc_put(struct warc *w, const struct warc_capture *c,
		    struct warc_written *out, char **cause)
{
	int64_t start, req_start = -1;

	if (w->fd >= 0 && w->size >= w->max_bytes && w->size > w->capture_start)
		warc_file_close(w);
	for (int attempt = 0;; attempt++) {
		if (w->fd < 0 && warc_file_open(w, cause) != 0)
			return -1;
		start = w->size;
		if (warc_member(w, &c->head, c->r, c->block_len, NULL, 0,
				cause) != 0)
			goto fail;
		if (c->req != NULL) {
			req_start = w->size;
			if (warc_member(w, &c->req_head, NULL, 0, c->req,
					c->req_len, cause) != 0)
				goto fail;
		}
		/* Too big for the rest of this file, but not for a file of
		 * its own: write it again, into the next one. */
		if (w->size <= w->max_bytes || start == w->capture_start ||
		    attempt > 0)
			break;
		warc_cut(w, start);
		warc_file_close(w);
	}
	snprintf(out->file, sizeof out->file, "%s", w->file);
	out->offset = start;
	out->length = (req_start >= 0 ? req_start : w->size) - start;
	out->request_offset = req_start;
	w->st.records_written += c->req != NULL ? 2 : 1;
	w->st.bytes_written += w->size - start;
	return 0;
fail:
	warc_cut(w, start);
	return -1;
}

/* Fill in the request record that goes after the response. */
static void warc_request_head(const struct warc_record *r,
			      const struct warc_finish *f, const char *date,
			      struct warc_buf *head, char **cause)
{
	char id[WARC_ID_SIZE], block[WARC_DIGEST_SIZE],
	    payload[WARC_DIGEST_SIZE];
	unsigned char md[32];
	int state = 0;
	size_t k = warc_head_end(&state, f->request, f->request_len);

	if (warc_uuid(id) != 0) {
		*cause = util_printf("cannot generate a record ID");
		return;
	}
	warc_sha256(f->request, f->request_len, md);
	warc_labelled(md, block);
	/* The request body follows the header block (nothing for a GET). */
	if (k == 0)
		k = f->request_len;
	warc_sha256((const char *)f->request + k, f->request_len - k, md);
	warc_labelled(md, payload);
	warc_buf_add(head,
		     "WARC/1.1\r\n"
		     "WARC-Type: request\r\n"
		     "WARC-Record-ID: %s\r\n"
		     "WARC-Date: %s\r\n"
		     "WARC-Target-URI: %s\r\n",
		     id, date, r->uri);
	if (r->ip != NULL)
		warc_buf_add(head, "WARC-IP-Address: %s\r\n", r->ip);
	warc_buf_add(head,
		     "WARC-Concurrent-To: %s\r\n"
		     "Content-Type: application/http; msgtype=request\r\n"
		     "WARC-Payload-Digest: %s\r\n"
		     "WARC-Block-Digest: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "\r\n",
		     r->id, payload, block, f->request_len);
}

/* Why f cannot be written for r, or NULL. */
static char *warc_finish_check(const struct warc_record *r,
			       const struct warc_finish *f)
{
	unsigned char md[32];

	if (f->payload_sha256 != NULL && warc_unhex(f->payload_sha256, md))
		return util_printf("the payload digest given is not 64 hex "
				   "digits");
	if (f->revisit == WARC_REVISIT_NONE)
		return NULL;
	if (!warc_token_ok(f->refers_to_uri))
		return util_printf("a revisit needs the URI of the capture it "
				   "refers to");
	if (f->refers_to_id != NULL && !warc_token_ok(f->refers_to_id))
		return util_printf("the record ID a revisit refers to has a "
				   "space or control character");
	if (f->revisit == WARC_REVISIT_IDENTICAL && f->truncated)
		return util_printf("a truncated payload cannot be identical "
				   "to an earlier one");
	if (f->revisit == WARC_REVISIT_IDENTICAL && r->head_len == 0)
		return util_printf("the response has no complete header "
				   "block to keep in a revisit record");
	if (f->revisit == WARC_REVISIT_NOT_MODIFIED &&
	    f->refers_to_sha256 != NULL && warc_unhex(f->refers_to_sha256, md))
		return util_printf("the payload digest a revisit refers to is "
				   "not 64 hex digits");
	return NULL;
}

/* Build the header now that the block is whole, write the member(s), and
 * free r. */
int warc_record_finish(struct warc_record *r, const struct warc_finish *f,
		       struct warc_written *out, char **cause)
{
	static const struct warc_finish plain;
	struct warc *w = r->w;
	struct warc_capture c = {.r = r};
	char date[WARC_DATE_SIZE], block[WARC_DIGEST_SIZE],
	    payload[WARC_DIGEST_SIZE];
	char sha_hex[WARC_SHA256_SIZE];
	unsigned char md[32];
	bool revisit;

	if (f == NULL)
		f = &plain;
	if (r->err != NULL) {
		*cause = r->err;
		r->err = NULL;
		goto fail;
	}
	if ((*cause = warc_finish_check(r, f)) != NULL)
		goto fail;
	revisit = f->revisit != WARC_REVISIT_NONE;
	warc_date(r->date_ms, date);

	/* An identical-payload revisit keeps only the header block. */
	if (f->revisit == WARC_REVISIT_IDENTICAL) {
		c.block_len = r->head_len;
		warc_sha_peek(r->head_sha, md);
	} else {
		c.block_len = r->block_len;
		warc_sha_peek(r->block_sha, md);
	}
	warc_labelled(md, block);
	if (f->payload_sha256 != NULL)
		warc_unhex(f->payload_sha256, md);
	else
		warc_sha_peek(r->payload_sha, md);
	warc_hex(md, sizeof md, sha_hex);
	warc_labelled(md, payload);

	warc_buf_add(&c.head,
		     "WARC/1.1\r\n"
		     "WARC-Type: %s\r\n"
		     "WARC-Record-ID: %s\r\n"
		     "WARC-Date: %s\r\n"
		     "WARC-Target-URI: %s\r\n",
		     revisit ? "revisit" : "response", r->id, date, r->uri);
	if (r->ip != NULL)
		warc_buf_add(&c.head, "WARC-IP-Address: %s\r\n", r->ip);
	if (revisit) {
		warc_buf_add(&c.head,
			     "WARC-Profile: %s\r\n"
			     "WARC-Refers-To-Target-URI: %s\r\n",
			     f->revisit == WARC_REVISIT_IDENTICAL
				 ? WARC_PROFILE_IDENTICAL
				 : WARC_PROFILE_NOT_MODIFIED,
			     f->refers_to_uri);
		if (f->refers_to_date_ms > 0) {
			char d[WARC_DATE_SIZE];

			warc_date(f->refers_to_date_ms, d);
			warc_buf_add(&c.head, "WARC-Refers-To-Date: %s\r\n", d);
		}
		if (f->refers_to_id != NULL)
			warc_buf_add(&c.head, "WARC-Refers-To: %s\r\n",
				     f->refers_to_id);
	}
	warc_buf_add(&c.head,
		     "Content-Type: application/http; msgtype=response\r\n");
	if (f->truncated)
		warc_buf_add(&c.head, "WARC-Truncated: length\r\n");
	if (f->revisit == WARC_REVISIT_NOT_MODIFIED) {
		/* A 304 has no payload of its own: what stayed the same is
		 * the earlier one's, when the caller knows it. */
		if (f->refers_to_sha256 != NULL) {
			char d[WARC_DIGEST_SIZE];

			warc_unhex(f->refers_to_sha256, md);
			warc_labelled(md, d);
			warc_buf_add(&c.head, "WARC-Payload-Digest: %s\r\n", d);
		}
	} else {
		warc_buf_add(&c.head, "WARC-Payload-Digest: %s\r\n", payload);
	}
	warc_buf_add(&c.head,
		     "WARC-Block-Digest: %s\r\n"
		     "Content-Length: %lld\r\n"
		     "\r\n",
		     block, (long long)c.block_len);

	if (f->request != NULL) {
		warc_request_head(r, f, date, &c.req_head, cause);
		if (c.req_head.p == NULL)
			goto fail;
		c.req = f->request;
		c.req_len = f->request_len;
	}
	if (warc_put(w, &c, out, cause) != 0)
		goto fail;
	snprintf(out->record_id, sizeof out->record_id, "%s", r->id);
	memcpy(out->payload_sha256, sha_hex, sizeof sha_hex);
	out->payload_length = r->payload_len;
	free(c.head.p);
	free(c.req_head.p);
	warc_record_free(r);
	return 0;
fail:
	free(c.head.p);
	free(c.req_head.p);
	warc_record_free(r);
	return -1;
}

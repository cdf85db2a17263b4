/* The WARC archive writer (WARC/1.1, gzip, one member per record) and the
 * reader behind `gatherd cat`.
 *
 * Everything here blocks (write(), zlib, temporary files), so it runs on
 * the worker thread only (see thread.h); the event loop hands body chunks
 * over with to_thread().  Nothing here is thread-safe: one thread owns a
 * writer and all of its records.
 *
 * A fetch in flight has one record open.  Its block (for a response: the
 * status line, the header block and the body exactly as received, chunked
 * framing included) goes to warc_record_block(); the de-chunked body, as
 * the HTTP parser hands it out, goes to warc_record_payload(), which only
 * digests it.  warc_record_finish() then appends the record, and the
 * request that asked for it when there is one, at the end of the current
 * file; the WARC-Filename and offset it returns name the record from then
 * on (warc_read_payload). */
#ifndef GATHERD_WARC_H
#define GATHERD_WARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes of the strings in struct warc_written, NUL included. */
#define WARC_FILE_SIZE	 64 /* "gatherd-YYYYMMDDhhmmss-NNNNN.warc.gz" */
#define WARC_ID_SIZE	 48 /* "<urn:uuid:xxxxxxxx-xxxx-4xxx-yxxx-...>" */
#define WARC_SHA256_SIZE 65 /* lowercase hex */

struct warc;
struct warc_record;

/* What a finished capture is written as. */
enum warc_revisit {
	/* A response record with the whole block. */
	WARC_REVISIT_NONE = 0,
	/* The payload is identical to an earlier capture's (dedup): a
	 * revisit record whose block is only the status line and headers,
	 * profile identical-payload-digest. */
	WARC_REVISIT_IDENTICAL,
	/* A 304 answering a conditional request: a revisit record whose
	 * block is the whole 304, profile server-not-modified. */
	WARC_REVISIT_NOT_MODIFIED,
};

/* How warc_record_finish() writes a record.  Zero-initialised, it writes a
 * plain, complete response with no request. */
struct warc_finish {
	/* The body was cut short (max_body_bytes): WARC-Truncated: length. */
	bool truncated;
	/* The request as sent (request line, headers, body), or NULL.  It is
	 * written as a request record right after the response, in the same
	 * file, with WARC-Concurrent-To naming the response. */
	const void *request;
	size_t request_len;
	/* A revisit, and the earlier capture it refers to: its target URI
	 * (required for a revisit), WARC-Date (0: not written), record ID
	 * and payload SHA-256 in hex (both may be NULL).  The payload digest
	 * is only used for WARC_REVISIT_NOT_MODIFIED, whose own payload is
	 * empty; an identical-payload revisit carries its own. */
	enum warc_revisit revisit;
	const char *refers_to_uri;
	int64_t refers_to_date_ms;
	const char *refers_to_id;
	const char *refers_to_sha256;
	/* The payload's SHA-256 in hex when the caller computed it already
	 * (the fetch digests every body): it is written as the
	 * WARC-Payload-Digest and warc_record_payload() need not be fed.
	 * NULL: the digest of what warc_record_payload() was fed. */
	const char *payload_sha256;
};

/* Where a finished record went.  The strings are copied, so the caller may
 * keep the struct after later calls (it usually travels back to the loop
 * with the fetch's result). */
struct warc_written {
	char file[WARC_FILE_SIZE]; /* basename inside the directory */
	int64_t offset; /* of the record's gzip member in that file */
	int64_t length; /* compressed length of that member */
	char record_id[WARC_ID_SIZE];
	/* SHA-256 of the payload fed with warc_record_payload (the
	 * de-chunked body; of a truncated body, the part received). */
	char payload_sha256[WARC_SHA256_SIZE];
	int64_t payload_length;
	int64_t request_offset; /* of the request record's member, or -1 */
};

/* Counters for stats and tests. */
struct warc_stats {
	int64_t records_open; /* begun and not yet finished or aborted */
	int64_t memory_bytes; /* block bytes held in memory by open records */
	int64_t spill_files;  /* open records whose block spilled to disk */
	int64_t files_opened; /* WARC files created by this writer */
	int64_t records_written; /* members written, warcinfo included */
	int64_t bytes_written;	 /* compressed bytes in those members */
};

/* Prepare a writer for the existing directory `dir`: files
 * gatherd-YYYYMMDDhhmmss-NNNNN.warc.gz appear there from the first finished
 * record on, each starting with a warcinfo record naming `software` (such
 * as "gatherd/0.1.0").  A file is closed and the next one started before a
 * record that would take it past max_bytes; a record larger than that goes
 * alone into a file of its own.  An existing file is never appended to. */
int warc_open(const char *dir, int64_t max_bytes, const char *software,
	      struct warc **out, char **cause)
    __attribute__((warn_unused_result));

/* Abort the records still open (their pointers die with them), flush the
 * current file to disk with fdatasync and close it, and free the writer.
 * Always frees w; -1 when the last file may not be complete on disk. */
int warc_close(struct warc *w, char **cause)
    __attribute__((warn_unused_result));

/* fdatasync the files written since the last call (and the directory when
 * a file was created), so that a record is on disk even after a power loss
 * before a database transaction names it.  Optional: without it, a record
 * is complete in the file (the kernel's page cache) once finish returns,
 * which survives a crash of the process. */
int warc_sync(struct warc *w, char **cause) __attribute__((warn_unused_result));

void warc_stats(const struct warc *w, struct warc_stats *st);

/* Start a capture of target_uri.  date_ms is when the capture began (Unix
 * milliseconds, the record's WARC-Date) and ip the server's address as
 * text, or NULL.  Never fails: a problem (a URI with a control character,
 * a temporary file that cannot be created) is remembered and reported by
 * warc_record_finish(). */
struct warc_record *warc_record_begin(struct warc *w, const char *target_uri,
				      int64_t date_ms, const char *ip);

/* Append bytes of the block: the response exactly as received.  Up to
 * 64 KiB stay in memory; past that the block goes to an unlinked file in
 * the WARC directory, so memory stays bounded whatever the body size. */
void warc_record_block(struct warc_record *r, const void *p, size_t n);

/* Digest bytes of the payload: the body after transfer decoding (what the
 * HTTP parser hands out), before any content decoding.  They are not
 * stored: the block already holds them. */
void warc_record_payload(struct warc_record *r, const void *p, size_t n);

/* The SHA-256 (hex) of the payload fed so far, say to look up an earlier
 * capture with the same payload before finishing as a revisit. */
void warc_record_payload_sha256(const struct warc_record *r,
				char out[WARC_SHA256_SIZE]);

/* Write the record (and its request) as one gzip member each at the end
 * of the current file, and free r whatever the outcome.  When it returns
 * 0, the members are complete in the file: a row may name them.  f may be
 * NULL (a plain response). */
int warc_record_finish(struct warc_record *r, const struct warc_finish *f,
		       struct warc_written *out, char **cause)
    __attribute__((warn_unused_result));

/* Drop r without writing anything. */
void warc_record_abort(struct warc_record *r);

/* What warc_read_info() gives of a record. */
struct warc_info {
	char type[16];	 /* "response", "revisit", ... */
	char record_id[WARC_ID_SIZE];
	int64_t date_ms; /* its WARC-Date, -1 if none or unreadable */
};

/* Read only the WARC header of the record at `offset` of dir/file (say,
 * to name it in a revisit record). */
int warc_read_info(const char *dir, const char *file, int64_t offset,
		   struct warc_info *info, char **cause)
    __attribute__((warn_unused_result));

/* warc_read_payload() met a revisit record (nothing was written). */
#define WARC_READ_REVISIT (-2)

/* Decompress the one gzip member at `offset` of dir/file and write the
 * record's payload to out_fd: for a response or request, the HTTP body
 * with chunked transfer coding removed (content coding such as gzip is
 * kept, so the bytes are those of the payload digest and of the results'
 * length); for other types, the whole block.  Fails on a torn or corrupt
 * member, a block digest that does not match, and a revisit (whose payload
 * is in the record it refers to, which the cause names: WARC_READ_REVISIT
 * then, -1 for the others); bytes may already have been written when it
 * fails with -1. */
int warc_read_payload(const char *dir, const char *file, int64_t offset,
		      int out_fd, char **cause)
    __attribute__((warn_unused_result));

#endif

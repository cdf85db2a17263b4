/* Keeping what was fetched in WARC files ([capture] warc_dir): the event
 * loop's side of warc.c.
 *
 * A capture follows one fetch.  Its tap (see fetch_tap) copies the
 * response's bytes into 64 KiB chunks that go to the worker thread, where
 * warc.c holds the record; a small response travels in one job with its
 * finish.  When a capture has too much on its way to the disk, its tap
 * pauses the fetch, and the capture resumes it once the worker caught up:
 * memory stays bounded however slow the disk.
 *
 * The finish writes the record (with the request, [capture]
 * warc_requests) and reports where it went; only then may a row name it,
 * so a row never points at a record that is not complete in its file.
 * With [capture] dedup, a payload identical to one archived earlier in
 * this run (the last CAPTURE_DEDUP_KEYS distinct payloads) is written as
 * an identical-payload-digest revisit. */
#ifndef GATHERD_CAPTURE_H
#define GATHERD_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "warc.h"

struct config;
struct event_base;
struct fetch_tap;
struct worker;
struct captures;
struct capture;

#define CAPTURE_DEDUP_KEYS 20000

/* Open the archive when cfg->warc_dir is set (*out NULL when it is not):
 * the directory must exist and be writable.  Runs the worker job and
 * waits: start-up only. */
int capture_open(struct event_base *base, struct worker *w,
		 const struct config *cfg, struct captures **out, char **cause)
    __attribute__((warn_unused_result));

/* Flush and close the archive (waits for the worker: shutdown only, once
 * no capture sends anything any more).  NULL is fine. */
void capture_close(struct captures *cs);
/* Free what is left once the worker stopped (its last completions ran). */
void capture_free(struct captures *cs);

/* Begin a capture of target_uri (the URL fetched).  resume(arg) is called
 * when a fetch the tap paused may read again. */
struct capture *capture_new(struct captures *cs, const char *target_uri,
			    void (*resume)(void *), void *arg);

/* The tap to hand to fetch_start (valid while the capture lives). */
const struct fetch_tap *capture_tap(struct capture *c);

/* How the fetch ended, for the record. */
struct capture_end {
	bool truncated; /* the body was cut at max_body_bytes */
	const char *payload_sha256; /* hex, of the de-chunked body */
	/* May this payload be written as a revisit of an identical one
	 * ([capture] dedup; a whole 2xx response with a body)? */
	bool dedup;
	/* A 304 to a conditional request: a server-not-modified revisit of
	 * the earlier capture (its URL, date and payload digest, if known;
	 * its record, when it has one, gives the exact WARC-Date and
	 * WARC-Refers-To). */
	bool not_modified;
	const char *refers_to_uri;
	int64_t refers_to_date_ms;
	const char *refers_to_sha256;
	const char *refers_to_file;
	int64_t refers_to_offset;
};

/* Where the record went: file is "" when nothing was written (error then
 * says why). */
struct capture_written {
	char file[WARC_FILE_SIZE];
	int64_t offset;
	bool revisit;
	char *error; /* malloc'd, or NULL */
};

typedef void (*capture_done_cb)(void *arg, struct capture_written *w);

/* Write the record and free c; done (may be NULL) runs on the loop once
 * it is in the file, or failed.  The tap must no longer be used. */
void capture_finish(struct capture *c, const struct capture_end *e,
		    capture_done_cb done, void *arg);

/* Drop c without writing anything. */
void capture_abort(struct capture *c);

/* Whether the archive is too far behind for a new fetch to start: the
 * tap pauses a fetch whose body streams in, but a small page comes whole
 * in one read, so the fetches themselves must wait.  Once it is, room(arg)
 * is called when the worker has caught up by half. */
bool capture_full(struct captures *cs);
void capture_set_room_cb(struct captures *cs, void (*room)(void *),
			 void *arg);

/* Counters for `status` and the metrics. */
struct capture_stats {
	uint64_t records;   /* responses written (revisits included) */
	uint64_t revisits;
	uint64_t failures;  /* finishes that wrote nothing */
	uint64_t bytes;     /* compressed bytes written */
	uint64_t pauses;    /* fetches paused for the disk */
	uint64_t holds;     /* times new fetches waited for the disk */
	int64_t pending_bytes; /* on their way to the worker */
	int64_t pending_peak;  /* the most there ever were */
};
void capture_get_stats(const struct captures *cs, struct capture_stats *st);

#endif

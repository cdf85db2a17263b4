/* The queue-file watcher: reads complete lines from the stored offset,
 * ingests them together with the new offset in one transaction (on the
 * worker thread), and follows appends, truncation, rewrites and rotation
 * (following a rotated file for a grace period, for writers that still
 * hold it open). */
#ifndef GATHERD_QUEUE_H
#define GATHERD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_line.h"

struct event_base;
struct worker;
struct store;
struct store_queue_state;
struct store_line;
struct queue;

/* Called on the loop after each committed ingest, with its lines (valid
 * during the call; invalid ones have invalid_detail set; n may be 0), and
 * once with n == 0 whenever ingestion has caught up with the file. */
typedef void (*queue_ingested_cb)(void *arg, const struct store_line *lines,
				  size_t n, size_t n_queued, size_t n_failed);

/* How many of the next lines the scheduler has room for (a shared store
 * claims those for this node as it inserts them: store_line.take). */
typedef size_t (*queue_room_cb)(void *arg);

/* Open (creating if needed) the queue file at `path` and start watching
 * it, resuming from the stored state `qs`.  room may be NULL (none). */
int queue_open(struct event_base *base, struct worker *w, struct store *st,
	       const char *path, const struct store_queue_state *qs,
	       queue_ingested_cb cb, queue_room_cb room, void *arg,
	       struct queue **out, char **cause)
	__attribute__((warn_unused_result));

/* True when every complete line written so far is committed and nothing
 * is being read or ingested. */
bool queue_caught_up(const struct queue *q);

/* Stop reading new lines (shutdown); an ingest in flight still commits. */
void queue_stop(struct queue *q);

/* Bytes at the end of the queue file that wait for a newline (-1 when
 * unknown). */
int64_t queue_partial_bytes(const struct queue *q);

/* The same for any file: how many bytes at the end of fd (of `size`
 * bytes) follow its last newline, looking at most `max` bytes back; -1
 * when it cannot read. */
int64_t queue_partial_tail(int fd, int64_t size, int64_t max);

/* True while an ingest is in flight (shutdown waits for it). */
bool queue_busy(const struct queue *q);

void queue_free(struct queue *q);

#endif

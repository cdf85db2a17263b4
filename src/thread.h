/* The worker thread: blocking work (all SQLite) is handed to it with
 * to_thread() and its completion comes back to the event loop.
 *
 * Loop -> worker: a job is appended to a list under a mutex and the worker
 * is signalled with a condition variable.  Worker -> loop: finished jobs go
 * onto a done-list; the eventfd is written only when that list goes from
 * empty to non-empty, and the loop's callback runs every done_cb.  The
 * worker never calls libevent, so libevent needs no locking. */
#ifndef GATHERD_THREAD_H
#define GATHERD_THREAD_H

struct event_base;
struct worker;

typedef void (*thread_fn)(void *arg);

/* Start the worker; its completions are delivered on `base`.
 * Returns NULL (with errno set) on failure. */
struct worker *thread_start(struct event_base *base);

/* Run fn(arg) on the worker, then done(arg) on the loop thread.  Jobs run
 * in submission order, one at a time.  done may be NULL. */
void to_thread(struct worker *w, thread_fn fn, void *arg, thread_fn done);

/* Run fn(arg) on the worker and wait for it.  Only for start-up and
 * shutdown, when the loop is not serving fetches. */
void thread_call(struct worker *w, thread_fn fn, void *arg);

/* Number of jobs submitted whose done callback has not run yet. */
unsigned thread_pending(const struct worker *w);

/* Finish every queued job, join the worker, run the remaining done
 * callbacks on the caller's thread, and free everything. */
void thread_stop(struct worker *w);

#endif

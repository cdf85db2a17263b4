/* Worker thread and its hand-off to the event loop: see thread.h. */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

struct thread_job {
	thread_fn fn;
	thread_fn done;
	void *arg;
	struct thread_job *next;
};

/* The two lists are protected by `lock`; `pending` is touched only by the
 * loop thread.  The eventfd is written at most once per batch of done jobs,
 * when the done-list goes from empty to non-empty. */
struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;     /* work list non-empty or stopping */
	pthread_cond_t sync;     /* a thread_call() job finished */
	struct thread_job *work_head, **work_tail;
	struct thread_job *done_head, **done_tail;
	bool stopping;
	int efd;
	struct event *ev;
	unsigned pending;
};

struct thread_sync {
	thread_fn fn;
	void *arg;
	struct worker *w;
	bool finished;
};

static void *thread_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->work_head == NULL && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->work_head == NULL)
			break; /* stopping and nothing left */
		struct thread_job *batch = w->work_head;
		w->work_head = NULL;
		w->work_tail = &w->work_head;
		pthread_mutex_unlock(&w->lock);

		struct thread_job *done_head = NULL, **done_tail = &done_head;
		while (batch != NULL) {
			struct thread_job *j = batch;

			batch = j->next;
			j->next = NULL;
			j->fn(j->arg);
			if (j->done != NULL) {
				*done_tail = j;
				done_tail = &j->next;
			} else {
				free(j);
			}
		}

		pthread_mutex_lock(&w->lock);
		if (done_head != NULL) {
			bool was_empty = w->done_head == NULL;

			*w->done_tail = done_head;
			w->done_tail = done_tail;
			if (was_empty) {
				uint64_t one = 1;
				ssize_t n = write(w->efd, &one, sizeof one);

				(void)n; /* EAGAIN means the counter is set */
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Run the done callbacks of everything the worker has finished. */
static void thread_run_done(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	struct thread_job *list = w->done_head;
	w->done_head = NULL;
	w->done_tail = &w->done_head;
	pthread_mutex_unlock(&w->lock);

	while (list != NULL) {
		struct thread_job *j = list;

		list = j->next;
		w->pending--;
		j->done(j->arg);
		free(j);
	}
}

static void thread_eventfd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t v;
	ssize_t n;

	(void)what;
	/* Read first: a completion that races with this callback then writes
	 * the eventfd again and we are called once more. */
	n = read(fd, &v, sizeof v);
	(void)n;
	thread_run_done(w);
}

struct worker *thread_start(struct event_base *base)
{
	struct worker *w = xcalloc(1, sizeof *w);
	int err;

	w->work_tail = &w->work_head;
	w->done_tail = &w->done_head;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0)
		goto fail;
	w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST,
			  thread_eventfd_cb, w);
	if (w->ev == NULL || event_add(w->ev, NULL) != 0)
		goto fail;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->sync, NULL);
	err = pthread_create(&w->thread, NULL, thread_main, w);
	if (err != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		pthread_cond_destroy(&w->sync);
		errno = err;
		goto fail;
	}
	return w;
fail:
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->efd >= 0)
		close(w->efd);
	free(w);
	return NULL;
}

static void thread_push(struct worker *w, struct thread_job *j)
{
	pthread_mutex_lock(&w->lock);
	*w->work_tail = j;
	w->work_tail = &j->next;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void to_thread(struct worker *w, thread_fn fn, void *arg, thread_fn done)
{
	struct thread_job *j = xmalloc(sizeof *j);

	j->fn = fn;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	if (done != NULL)
		w->pending++;
	thread_push(w, j);
}

static void thread_sync_run(void *arg)
{
	struct thread_sync *s = arg;

	s->fn(s->arg);
	pthread_mutex_lock(&s->w->lock);
	s->finished = true;
	pthread_cond_broadcast(&s->w->sync);
	pthread_mutex_unlock(&s->w->lock);
}

void thread_call(struct worker *w, thread_fn fn, void *arg)
{
	struct thread_sync s = {fn, arg, w, false};

	to_thread(w, thread_sync_run, &s, NULL);
	pthread_mutex_lock(&w->lock);
	while (!s.finished)
		pthread_cond_wait(&w->sync, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

unsigned thread_pending(const struct worker *w)
{
	return w->pending;
}

void thread_stop(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	thread_run_done(w);
	event_free(w->ev);
	close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->sync);
	free(w);
}

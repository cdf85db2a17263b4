/* What a finished attempt means for its row: pure decisions over an
 * outcome (retry when, wait how long, follow where), with no network and no
 * event loop, so they are unit-tested on their own (tests/unit/test_policy.c).
 * The scheduler acts on the verdicts. */
#ifndef GATHERD_POLICY_H
#define GATHERD_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "errkind.h"
#include "url.h"

struct config;

/* The facts of one attempt that policy looks at. */
struct policy_outcome {
	bool ok;                /* an HTTP response was received */
	int status;             /* its status (ok only) */
	enum errkind error;     /* why not (not ok only) */
	int64_t retry_after_ms; /* Retry-After as a delay, -1 if none */
	bool has_location;      /* a redirect with a usable target */
	enum url_scheme scheme; /* of the URL fetched (parsed, not text) */
	enum url_scheme location_scheme; /* of the target (has_location) */
};

enum policy_verdict {
	POLICY_FINAL,          /* record the outcome as the row's result */
	POLICY_RETRY,          /* try the same URL again after a delay */
	POLICY_REQUEUE,        /* retryable, but shutting down: leave the row
	                        * queued for the next start */
	POLICY_FOLLOW,         /* fetch the redirect target */
	POLICY_DOWNGRADE,      /* final: an https -> http redirect that
	                        * allow_https_downgrade forbids */
	POLICY_TOO_MANY,       /* final: too_many_redirects */
};

/* Decide.  `attempts` counts the requests made for the current URL,
 * this one included; `redirects` the redirects followed so far;
 * `draining` is true once shutdown began. */
enum policy_verdict policy_decide(const struct config *cfg,
				  const struct policy_outcome *o, int attempts,
				  int redirects, bool draining);

/* Is this outcome worth another attempt (a connection failure or timeout,
 * a cut response, a proxy that failed, or a status in [fetch]
 * retry_statuses, by default
 * 408/429/500/502/503/504)? */
bool policy_retryable(const struct config *cfg,
		      const struct policy_outcome *o);

/* How long to wait before attempt number attempts + 1: Retry-After when the
 * server sent one, else "full jitter" (uniform in 0..bound, the bound
 * doubling per attempt from retry_backoff_ms), both capped by
 * retry_max_delay_ms.  `rnd` is a uniform random 32-bit number. */
int64_t policy_retry_delay(const struct config *cfg, int attempts,
			   int64_t retry_after_ms, uint32_t rnd);

#endif

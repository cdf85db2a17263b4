/* Retry and redirect policy: see policy.h. */
#include "policy.h"

#include "config.h"

bool policy_retryable(const struct config *cfg,
		      const struct policy_outcome *o)
{
	if (!o->ok)
		return o->error == ERR_CONNECT || o->error == ERR_TIMEOUT ||
		       o->error == ERR_TRUNCATED || o->error == ERR_PROXY;
	return config_retry_status(cfg, o->status);
}

enum policy_verdict policy_decide(const struct config *cfg,
				  const struct policy_outcome *o, int attempts,
				  int redirects, bool draining)
{
	if (o->ok && o->has_location) {
		if (o->scheme == URL_HTTPS && o->location_scheme == URL_HTTP &&
		    !cfg->allow_https_downgrade)
			return POLICY_DOWNGRADE;
		if (redirects >= cfg->max_redirects)
			return POLICY_TOO_MANY;
		return POLICY_FOLLOW;
	}
	if (policy_retryable(cfg, o) && attempts <= cfg->retries)
		return draining ? POLICY_REQUEUE : POLICY_RETRY;
	return POLICY_FINAL;
}

int64_t policy_retry_delay(const struct config *cfg, int attempts,
			   int64_t retry_after_ms, uint32_t rnd)
{
	int64_t cap = cfg->retry_max_delay_ms;
	int64_t bound = cfg->retry_backoff_ms;

	if (retry_after_ms >= 0)
		return retry_after_ms < cap ? retry_after_ms : cap;
	for (int i = 1; i < attempts && bound < cap; i++)
		bound *= 2;
	if (bound > cap)
		bound = cap;
	return bound > 0 ? (int64_t)(rnd % (uint64_t)(bound + 1)) : 0;
}

/* Host shards: see shard.h. */
#include "shard.h"

#include <stdint.h>
#include <stdlib.h>

#include "idn.h"
#include "url.h"

/* FNV-1a, 32 bits: small, well known, the same on every machine. */
static uint32_t shard_fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

int shard_of_url(const char *url, size_t len)
{
	struct url_ref r;
	const char *reason;
	char host[300], *ascii = NULL;
	size_t alen = 0;
	int n, shard = 0;

	if (url_parse_ref(url, len, &r, &reason) != 0) {
		/* International: the host's A-labels, as the scheduler
		 * fetches it. */
		if (idn_ascii_url(url, len, &ascii, &alen, &reason) != 0 ||
		    ascii == NULL ||
		    url_parse_ref(ascii, alen, &r, &reason) != 0)
			goto out;
		url = ascii;
	}
	n = url_ref_host(&r, url, host, sizeof host);
	if (n > 0)
		shard = (int)(shard_fnv1a(host, (size_t)n) % SHARD_COUNT);
out:
	free(ascii);
	return shard;
}

/* Error kinds: see errkind.h. */
#include "errkind.h"

#include <string.h>

static const char *const errkind_names[ERR_KIND_COUNT] = {
	[ERR_NONE] = NULL,
	[ERR_INVALID_URL] = "invalid_url",
	[ERR_DNS] = "dns",
	[ERR_CONNECT] = "connect",
	[ERR_TLS] = "tls",
	[ERR_TIMEOUT] = "timeout",
	[ERR_HTTP_PROTOCOL] = "http_protocol",
	[ERR_TRUNCATED] = "truncated",
	[ERR_TOO_LARGE] = "too_large",
	[ERR_TOO_MANY_REDIRECTS] = "too_many_redirects",
	[ERR_ROBOTS] = "robots",
	[ERR_PROXY] = "proxy",
};

const char *errkind_name(enum errkind k)
{
	if ((int)k <= ERR_NONE || k >= ERR_KIND_COUNT)
		return NULL;
	return errkind_names[k];
}

bool errkind_parse(const char *name, enum errkind *out)
{
	for (int k = ERR_NONE + 1; k < ERR_KIND_COUNT; k++) {
		if (strcmp(errkind_names[k], name) == 0) {
			*out = (enum errkind)k;
			return true;
		}
	}
	return false;
}

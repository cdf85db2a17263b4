/* Queue-file lines: see queue_line.h. */
#include "queue_line.h"

#include <stdlib.h>
#include <string.h>

#include "idn.h"

enum queue_line_kind queue_classify_line(const char *line, size_t len,
					 uint64_t total_len,
					 const char **start, size_t *tlen,
					 const char **detail)
{
	uint64_t raw = total_len;
	const char *s = line, *e;
	struct url_ref u;

	if (len == total_len && len > 0 && line[len - 1] == '\r') {
		len--;
		raw--;
	}
	e = line + len;
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' ||
			 *s == '\f'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\v' || e[-1] == '\f'))
		e--;
	*start = s;
	*tlen = (size_t)(e - s);
	*detail = NULL;
	if (*tlen == 0 || *s == '#')
		return QUEUE_LINE_SKIP;
	if (raw > URL_MAX_LEN) {
		*detail = "line longer than 8192 bytes";
		return QUEUE_LINE_INVALID;
	}
	if (url_parse_ref(s, *tlen, &u, detail) == 0)
		return QUEUE_LINE_URL;
	/* A host or path in Unicode: valid when it has an ASCII form
	 * (A-labels, %XX), which is what will be fetched. */
	char *ascii = NULL;
	size_t alen;
	const char *why = NULL;
	if (idn_ascii_url(s, *tlen, &ascii, &alen, &why) == 0 &&
	    ascii != NULL) {
		free(ascii);
		*detail = NULL;
		return QUEUE_LINE_URL;
	}
	if (why != NULL)
		*detail = why;
	return QUEUE_LINE_INVALID;
}

struct queue_split_result queue_split(struct queue_splitter *sp,
				      const char *buf, size_t len,
				      queue_emit_fn emit, void *ctx)
{
	struct queue_split_result res = {0, 0, false};
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end;

		if (nl == NULL)
			break;
		end = (size_t)(nl - buf);
		if (sp->in_long) {
			sp->long_len += end - i;
			emit(ctx, sp->prefix, sp->prefix_len, sp->long_len);
			sp->in_long = false;
			sp->long_len = 0;
			sp->prefix_len = 0;
		} else {
			emit(ctx, buf + i, end - i, end - i);
		}
		i = end + 1;
		res.complete_end = i;
		res.any_complete = true;
	}
	/* A partial line waits for its newline, unless it is already too
	 * long to be valid (8 KiB plus a CR): then only its prefix is kept,
	 * so memory stays bounded however long the line grows. */
	size_t tail = len - i;
	if (sp->in_long) {
		sp->long_len += tail;
		i = len;
	} else if (tail > URL_MAX_LEN + 1) {
		sp->in_long = true;
		sp->long_len = tail;
		sp->prefix_len = URL_MAX_LEN;
		memcpy(sp->prefix, buf + i, URL_MAX_LEN);
		i = len;
	}
	res.consumed = i;
	return res;
}

/* Reading a record back from a .warc.gz file (warc_read_payload, behind
 * `gatherd cat`): see warc.h.
 *
 * The member at the offset is inflated, and what comes out is parsed as it
 * comes, so a record of any size takes the memory of its header blocks
 * only: the WARC header (for the block's type, length and digest), then,
 * in a request or response, the HTTP header block (for the transfer
 * coding), then the body, de-chunked on the fly, straight to out_fd.  The
 * block digest is checked at the end, and a member that stops early (a
 * file cut by kill -9 or a full disk) is reported as a torn record. */
#include "warc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "util.h"
#include "warc_fmt.h"

/* Longest WARC header and HTTP header block accepted. */
#define WARC_HEAD_MAX	   (64 * 1024)
#define WARC_HTTP_HEAD_MAX (1024 * 1024)

/* Where the reader is in a record: the WARC header, the block, the CRLF
 * CRLF after it. */
enum warc_rd_phase {
	RD_HEAD = 0,
	RD_BLOCK,
	RD_TAIL,
	RD_DONE,
};

/* Where it is in a chunked body. */
enum warc_chunk {
	CH_SIZE = 0, /* hex digits of a chunk size */
	CH_EXT,	     /* a chunk extension, up to the end of the line */
	CH_SIZE_LF,  /* the LF after the size line's CR */
	CH_DATA,
	CH_DATA_CR, /* the CRLF after a chunk's data */
	CH_DATA_LF,
	CH_TRAILER,	 /* at the start of a trailer line */
	CH_TRAILER_LINE, /* inside one */
	CH_TRAILER_LF,	 /* the LF of the empty line that ends them */
	CH_END,
};

/* One record being read back.  The payload goes to out_fd as it comes:
 * a record is never held in memory whole, only its header blocks. */
struct warc_reader {
	int out_fd;
	struct warc_info *info; /* only the WARC header is wanted, into it */
	enum warc_rd_phase phase;
	struct warc_buf head; /* the WARC header, then the HTTP one */
	int head_state;

	int64_t content_length, got;
	bool http;	/* a request or response: the payload is the body */
	bool truncated; /* WARC-Truncated: the body may stop anywhere */
	bool has_digest;
	bool revisit;   /* the record is a revisit: no payload here */
	unsigned char digest[32];
	EVP_MD_CTX *sha;
	int tail;

	bool http_head_done, chunked;
	enum warc_chunk ch;
	int64_t chunk_left;
	int chunk_digits;
};

/* The value of header `name` in a header block (first line skipped), or
 * NULL; the last occurrence wins.  Returned malloc'd, trimmed. */
static char *warc_field(const char *block, const char *name)
{
	size_t nlen = strlen(name);
	const char *line = strchr(block, '\n');
	char *value = NULL;

	while (line != NULL && *++line != '\0') {
		const char *end = strchr(line, '\n'), *v;

		if (end == NULL)
			end = line + strlen(line);
		if ((size_t)(end - line) > nlen && line[nlen] == ':' &&
		    strncasecmp(line, name, nlen) == 0) {
			const char *e = end;

			v = line + nlen + 1;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v &&
			       (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			free(value);
			value = xstrndup(v, (size_t)(e - v));
		}
		line = *end != '\0' ? end : NULL;
	}
	return value;
}

/* Write bytes of the payload out. */
static int warc_emit(struct warc_reader *rd, const unsigned char *p, size_t n,
		     char **cause)
{
	if (warc_write_all(rd->out_fd, p, n) != 0) {
		*cause = util_printf("cannot write the payload: %s",
				     strerror(errno));
		return -1;
	}
	return 0;
}

/* Remove the chunked framing of a body as it comes: sizes, extensions,
 * CRLFs and trailers go, the data goes out.  Bare LFs pass for CRLF. */
static int warc_dechunk(struct warc_reader *rd, const unsigned char *p,
			size_t n, char **cause)
{
	for (size_t i = 0; i < n;) {
		unsigned char b = p[i];
		int v;

		switch (rd->ch) {
		case CH_DATA: {
			size_t k = n - i;

			if ((int64_t)k > rd->chunk_left)
				k = (size_t)rd->chunk_left;
			if (warc_emit(rd, p + i, k, cause) != 0)
				return -1;
			i += k;
			rd->chunk_left -= (int64_t)k;
			if (rd->chunk_left == 0)
				rd->ch = CH_DATA_CR;
			continue;
		}
		case CH_SIZE:
			v = warc_hex_value(b);
			if (v >= 0 && rd->chunk_left < (INT64_MAX >> 4)) {
				rd->chunk_left = rd->chunk_left * 16 + v;
				rd->chunk_digits++;
			} else if (rd->chunk_digits == 0 || v >= 0) {
				goto bad;
			} else if (b == ';' || b == ' ' || b == '\t') {
				rd->ch = CH_EXT;
			} else if (b == '\r') {
				rd->ch = CH_SIZE_LF;
			} else if (b == '\n') {
				goto size_done;
			} else {
				goto bad;
			}
			break;
		case CH_EXT:
			if (b == '\r')
				rd->ch = CH_SIZE_LF;
			else if (b == '\n')
				goto size_done;
			break;
		case CH_SIZE_LF:
			if (b != '\n')
				goto bad;
		size_done:
			rd->ch = rd->chunk_left > 0 ? CH_DATA : CH_TRAILER;
			rd->chunk_digits = 0;
			break;
		case CH_DATA_CR:
			if (b == '\r')
				rd->ch = CH_DATA_LF;
			else if (b == '\n')
				rd->ch = CH_SIZE;
			else
				goto bad;
			break;
		case CH_DATA_LF:
			if (b != '\n')
				goto bad;
			rd->ch = CH_SIZE;
			break;
		case CH_TRAILER:
			rd->ch = b == '\n'   ? CH_END
				 : b == '\r' ? CH_TRAILER_LF
					     : CH_TRAILER_LINE;
			break;
		case CH_TRAILER_LINE:
			if (b == '\n')
				rd->ch = CH_TRAILER;
			break;
		case CH_TRAILER_LF:
			if (b != '\n')
				goto bad;
			rd->ch = CH_END;
			break;
		case CH_END:
			/* Nothing belongs to the payload past the last
			 * chunk. */
			return 0;
		}
		i++;
	}
	return 0;
bad:
	*cause = util_printf("bad chunked encoding in the HTTP body");
	return -1;
}

/* The block of an HTTP record: the header block is kept to learn the
 * transfer coding, the body goes out. */
static int warc_http_block(struct warc_reader *rd, const unsigned char *p,
			   size_t n, char **cause)
{
	if (!rd->http_head_done) {
		size_t k = warc_head_end(&rd->head_state, p, n);
		size_t take = k > 0 ? k : n;
		char *te;

		if (rd->head.len + take > WARC_HTTP_HEAD_MAX) {
			*cause = util_printf("HTTP header block longer than "
					     "%d bytes",
					     WARC_HTTP_HEAD_MAX);
			return -1;
		}
		warc_buf_put(&rd->head, p, take);
		if (k == 0)
			return 0;
		rd->http_head_done = true;
		te = warc_field(rd->head.p, "Transfer-Encoding");
		if (te != NULL) {
			/* Chunked is always the last coding applied. */
			const char *last = strrchr(te, ',');

			last = last != NULL ? last + 1 : te;
			while (*last == ' ' || *last == '\t')
				last++;
			rd->chunked = strcasecmp(last, "chunked") == 0;
			free(te);
		}
		p += k;
		n -= k;
	}
	if (n == 0)
		return 0;
	return rd->chunked ? warc_dechunk(rd, p, n, cause)
			   : warc_emit(rd, p, n, cause);
}

/* The WARC header has ended: learn what the block is and how long. */
static int warc_read_head(struct warc_reader *rd, char **cause)
{
	char *type = warc_field(rd->head.p, "WARC-Type");
	char *len = warc_field(rd->head.p, "Content-Length");
	char *digest = warc_field(rd->head.p, "WARC-Block-Digest");
	char *trunc = warc_field(rd->head.p, "WARC-Truncated");
	char *end;
	int rc = -1;

	if (strncmp(rd->head.p, "WARC/1.", 7) != 0) {
		*cause = util_printf("no WARC record there");
		goto done;
	}
	if (len != NULL) {
		errno = 0;
		rd->content_length = strtoll(len, &end, 10);
	}
	if (len == NULL || errno != 0 || end == len || *end != '\0' ||
	    rd->content_length < 0) {
		*cause = util_printf("the record has no valid Content-Length");
		goto done;
	}
	if (rd->info != NULL) {
		char *id = warc_field(rd->head.p, "WARC-Record-ID");
		char *date = warc_field(rd->head.p, "WARC-Date");

		snprintf(rd->info->type, sizeof rd->info->type, "%s",
			 type ? type : "");
		snprintf(rd->info->record_id, sizeof rd->info->record_id, "%s",
			 id ? id : "");
		rd->info->date_ms = date ? warc_parse_date(date) : -1;
		free(id);
		free(date);
		rd->phase = RD_DONE;
		rc = 0;
		goto done;
	}
	if (type != NULL && strcmp(type, "revisit") == 0) {
		char *uri = warc_field(rd->head.p, "WARC-Refers-To-Target-URI");
		char *date = warc_field(rd->head.p, "WARC-Refers-To-Date");

		*cause = util_printf("a revisit record: its payload is in the "
				     "capture of %s at %s",
				     uri ? uri : "(unknown)",
				     date ? date : "(unknown)");
		free(uri);
		free(date);
		rd->revisit = true;
		goto done;
	}
	rd->http = type != NULL && (strcmp(type, "response") == 0 ||
				    strcmp(type, "request") == 0);
	rd->truncated = trunc != NULL;
	rd->has_digest =
	    digest != NULL && warc_unlabel(digest, rd->digest) == 0;
	rd->head.len = 0;
	rd->head.p[0] = '\0';
	rd->head_state = 0;
	rd->phase = rd->content_length > 0 ? RD_BLOCK : RD_TAIL;
	rc = 0;
done:
	free(type);
	free(len);
	free(digest);
	free(trunc);
	return rc;
}

/* Take inflated bytes of the member. */
static int warc_read_take(struct warc_reader *rd, const unsigned char *p,
			  size_t n, char **cause)
{
	while (n > 0) {
		size_t k;

		switch (rd->phase) {
		case RD_HEAD:
			k = warc_head_end(&rd->head_state, p, n);
			if (rd->head.len + (k > 0 ? k : n) > WARC_HEAD_MAX) {
				*cause = util_printf("no WARC record there");
				return -1;
			}
			warc_buf_put(&rd->head, p, k > 0 ? k : n);
			if (k == 0)
				return 0;
			if (warc_read_head(rd, cause) != 0)
				return -1;
			if (rd->info != NULL)
				return 0; /* the header was all that was wanted */
			break;
		case RD_BLOCK:
			k = n;
			if ((int64_t)k > rd->content_length - rd->got)
				k = (size_t)(rd->content_length - rd->got);
			warc_sha_update(rd->sha, p, k);
			if ((rd->http ? warc_http_block(rd, p, k, cause)
				      : warc_emit(rd, p, k, cause)) != 0)
				return -1;
			rd->got += (int64_t)k;
			if (rd->got == rd->content_length)
				rd->phase = RD_TAIL;
			break;
		case RD_TAIL:
			k = 1;
			if (p[0] != "\r\n\r\n"[rd->tail]) {
				*cause = util_printf("the record is not "
						     "followed by CRLF CRLF");
				return -1;
			}
			if (++rd->tail == 4)
				rd->phase = RD_DONE;
			break;
		case RD_DONE:
		default:
			*cause =
			    util_printf("data after the record in its gzip "
					"member");
			return -1;
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* The record is all there: check what can only be checked at its end. */
static int warc_read_end(struct warc_reader *rd, char **cause)
{
	unsigned char md[32];

	if (rd->phase != RD_DONE) {
		*cause = util_printf(rd->phase == RD_HEAD
					 ? "no WARC record there"
					 : "the record is shorter than its "
					   "Content-Length");
		return -1;
	}
	warc_sha_peek(rd->sha, md);
	if (rd->has_digest && memcmp(md, rd->digest, sizeof md) != 0) {
		*cause = util_printf("the record's block does not match its "
				     "WARC-Block-Digest");
		return -1;
	}
	if (rd->http && !rd->http_head_done) {
		*cause = util_printf("the record's HTTP header block does not "
				     "end");
		return -1;
	}
	if (rd->http && rd->chunked && rd->ch != CH_END && !rd->truncated) {
		*cause = util_printf("the chunked HTTP body ends early");
		return -1;
	}
	return 0;
}

/* A plain name inside the directory: no path can be smuggled in through a
 * results row. */
static bool warc_name_ok(const char *file)
{
	return file != NULL && *file != '\0' && strchr(file, '/') == NULL &&
	       strcmp(file, ".") != 0 && strcmp(file, "..") != 0;
}

/* Inflate the member at offset, as far as its end and no further, and
 * hand what comes out to the parser above. */
/* Read the member at offset: its payload to out_fd, or only its header
 * into info. */
static int warc_read_member(const char *dir, const char *file, int64_t offset,
			    int out_fd, struct warc_info *info, char **cause)
{
	struct warc_reader rd = {.out_fd = out_fd, .info = info};
	z_stream z = {.zalloc = warc_zalloc, .zfree = warc_zfree};
	unsigned char *in = NULL, *out = NULL;
	char *path = NULL, *err = NULL;
	int64_t pos = offset;
	bool ended = false, z_ready = false;
	int fd = -1, rc = -1;

	if (!warc_name_ok(file) || offset < 0) {
		*cause = util_printf("bad WARC file name or offset");
		return -1;
	}
	path = util_printf("%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = util_printf("%s", strerror(errno));
		goto done;
	}
	if (inflateInit2(&z, 16 + 15) != Z_OK) {
		err = util_printf("cannot initialise zlib");
		goto done;
	}
	z_ready = true;
	rd.sha = warc_sha_new();
	in = xmalloc(WARC_IO_SIZE);
	out = xmalloc(WARC_IO_SIZE);
	while (!ended && !(info != NULL && rd.phase == RD_DONE)) {
		ssize_t k = pread(fd, in, WARC_IO_SIZE, pos);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			err = util_printf("%s", strerror(errno));
			goto done;
		}
		if (k == 0) {
			err = pos == offset
				  ? util_printf("offset %lld is past the "
						"end of the file",
						(long long)offset)
				  : util_printf("torn record: the file ends "
						"inside its gzip member");
			goto done;
		}
		pos += k;
		z.next_in = in;
		z.avail_in = (uInt)k;
		/* Stop at the end of this member: the next one is another
		 * record. */
		while (!ended && !(info != NULL && rd.phase == RD_DONE) &&
		       (z.avail_in > 0 || z.avail_out == 0)) {
			int zr;

			z.next_out = out;
			z.avail_out = WARC_IO_SIZE;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END &&
			    zr != Z_BUF_ERROR) {
				err = util_printf("not a gzip member there "
						  "(%s)",
						  z.msg ? z.msg : "zlib error");
				goto done;
			}
			if (warc_read_take(&rd, out, WARC_IO_SIZE - z.avail_out,
					   &err) != 0)
				goto done;
			ended = zr == Z_STREAM_END;
			if (zr == Z_BUF_ERROR)
				break;
		}
	}
	if (info == NULL && warc_read_end(&rd, &err) != 0)
		goto done;
	rc = 0;
done:
	if (rc != 0)
		*cause =
		    util_printf("%s at offset %lld: %s", path ? path : file,
				(long long)offset, err);
	if (rc != 0 && rd.revisit)
		rc = WARC_READ_REVISIT;
	if (z_ready)
		inflateEnd(&z);
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(rd.sha);
	free(rd.head.p);
	free(in);
	free(out);
	free(path);
	free(err);
	return rc;
}

int warc_read_payload(const char *dir, const char *file, int64_t offset,
		      int out_fd, char **cause)
{
	return warc_read_member(dir, file, offset, out_fd, NULL, cause);
}

int warc_read_info(const char *dir, const char *file, int64_t offset,
		   struct warc_info *info, char **cause)
{
	memset(info, 0, sizeof *info);
	info->date_ms = -1;
	return warc_read_member(dir, file, offset, -1, info, cause);
}

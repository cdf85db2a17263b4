/* Unit tests for the WARC writer and reader (warc.c, warc_read.c,
 * warc_fmt.c).
 *
 * The files are inspected with zlib directly, member by member, not only
 * through warc_read_payload(), so that the reader cannot hide a writer's
 * mistake.  The independent check (webrecorder's warcio) runs from
 * tests/integration/test_warc.py on the files that `test_warc --samples
 * DIR` writes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "tap.h"
#include "util.h"
#include "warc.h"
#include "warc_fmt.h"

/* ------------------------------------------------------------ helpers */

/* A fresh directory under /tmp, removed by rm_dir. */
static char *tmp_dir(void)
{
	char *d = xstrdup("/tmp/gatherd-test-warc-XXXXXX");

	if (mkdtemp(d) == NULL) {
		printf("# mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	return d;
}

static void rm_dir(char *d)
{
	DIR *dir = opendir(d);
	struct dirent *e;

	while (dir != NULL && (e = readdir(dir)) != NULL) {
		char *p;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = util_printf("%s/%s", d, e->d_name);
		unlink(p);
		free(p);
	}
	if (dir != NULL)
		closedir(dir);
	rmdir(d);
	free(d);
}

/* The names of the files in d that end in .warc.gz, sorted; *n set. */
static char **list_warcs(const char *d, int *n)
{
	DIR *dir = opendir(d);
	struct dirent *e;
	char **names = NULL;

	*n = 0;
	while (dir != NULL && (e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len > 8 && strcmp(e->d_name + len - 8, ".warc.gz") == 0) {
			names =
			    xrealloc(names, sizeof *names * (size_t)(*n + 1));
			names[(*n)++] = xstrdup(e->d_name);
		}
	}
	if (dir != NULL)
		closedir(dir);
	for (int i = 0; i < *n; i++)
		for (int j = i + 1; j < *n; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *t = names[i];

				names[i] = names[j];
				names[j] = t;
			}
	return names;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	size_t cap = 0, k;

	*len = 0;
	if (f == NULL)
		return NULL;
	do {
		if (*len + 65536 > cap) {
			cap = (*len + 65536) * 2;
			p = xrealloc(p, cap);
		}
		k = fread(p + *len, 1, cap - *len, f);
		*len += k;
	} while (k > 0);
	fclose(f);
	return p;
}

static unsigned char *slurp_in(const char *dir, const char *file, size_t *len)
{
	char *p = util_printf("%s/%s", dir, file);
	unsigned char *b = slurp(p, len);

	free(p);
	return b;
}

/* One gzip member of a file, inflated. */
struct member {
	size_t offset, zlen;
	unsigned char *data;
	size_t len;
	bool complete; /* the member's end was reached */
};

/* Inflate every member of buf in turn (at most max). */
static int members(const unsigned char *buf, size_t len, struct member *m,
		   int max)
{
	size_t pos = 0;
	int n = 0;

	while (pos < len && n < max) {
		z_stream z = {0};
		size_t cap = 65536;
		int zr;

		m[n] = (struct member){.offset = pos};
		m[n].data = xmalloc(cap);
		inflateInit2(&z, 16 + 15);
		z.next_in = (Bytef *)buf + pos;
		z.avail_in = (uInt)(len - pos);
		do {
			if (m[n].len == cap) {
				cap *= 2;
				m[n].data = xrealloc(m[n].data, cap);
			}
			z.next_out = m[n].data + m[n].len;
			z.avail_out = (uInt)(cap - m[n].len);
			zr = inflate(&z, Z_NO_FLUSH);
			m[n].len = cap - z.avail_out;
		} while (zr == Z_OK);
		m[n].complete = zr == Z_STREAM_END;
		m[n].zlen = (len - pos) - z.avail_in;
		pos += m[n].zlen;
		inflateEnd(&z);
		n++;
		if (zr != Z_STREAM_END)
			break;
	}
	return n;
}

static void free_members(struct member *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].data);
}

/* The value of a header field of a record (a member's text), or "". */
static const char *field(const struct member *m, const char *name)
{
	static char v[4096];
	const char *p = (const char *)m->data, *end;
	const char *stop = memmem(p, m->len, "\r\n\r\n", 4);
	size_t nlen = strlen(name);

	v[0] = '\0';
	if (stop == NULL)
		return v;
	while ((p = memmem(p, (size_t)(stop - p), "\r\n", 2)) != NULL) {
		p += 2;
		end = memmem(p, (size_t)(stop + 2 - p), "\r\n", 2);
		if (end == NULL)
			break;
		if ((size_t)(end - p) > nlen + 2 && p[nlen] == ':' &&
		    strncmp(p, name, nlen) == 0) {
			snprintf(v, sizeof v, "%.*s", (int)(end - p - nlen - 2),
				 p + nlen + 2);
			return v;
		}
	}
	return v;
}

/* The names of a record's header fields in order, joined by commas. */
static const char *field_names(const struct member *m)
{
	static char v[4096];
	const char *p = (const char *)m->data;
	const char *stop = memmem(p, m->len, "\r\n\r\n", 4);
	size_t len = 0;

	v[0] = '\0';
	if (stop == NULL)
		return v;
	p = memmem(p, m->len, "\r\n", 2) + 2;
	while (p < stop + 2) {
		const char *colon = memchr(p, ':', (size_t)(stop - p));
		const char *end = memmem(p, (size_t)(stop + 2 - p), "\r\n", 2);

		if (colon == NULL || end == NULL)
			break;
		len += (size_t)snprintf(v + len, sizeof v - len, "%s%.*s",
					len ? "," : "", (int)(colon - p), p);
		p = end + 2;
	}
	return v;
}

/* The block of a record (after the header) and its length, CRLF CRLF
 * after it excluded. */
static const unsigned char *block_of(const struct member *m, size_t *len)
{
	const unsigned char *stop = memmem(m->data, m->len, "\r\n\r\n", 4);

	if (stop == NULL || m->len < (size_t)(stop + 4 - m->data) + 4) {
		*len = 0;
		return m->data;
	}
	*len = m->len - (size_t)(stop + 4 - m->data) - 4;
	return stop + 4;
}

static void labelled_of(const void *p, size_t n, char out[WARC_DIGEST_SIZE])
{
	unsigned char md[32];

	warc_sha256(p, n, md);
	warc_labelled(md, out);
}

static void hex_of(const void *p, size_t n, char out[WARC_SHA256_SIZE])
{
	unsigned char md[32];

	warc_sha256(p, n, md);
	warc_hex(md, sizeof md, out);
}

/* Read a record's payload back with warc_read_payload into memory. */
static unsigned char *read_back(const char *dir, const char *file, int64_t off,
				size_t *len, char **cause)
{
	char path[] = "/tmp/gatherd-test-warc-out-XXXXXX";
	int fd = mkstemp(path);
	unsigned char *p = NULL;

	*cause = NULL;
	unlink(path);
	if (warc_read_payload(dir, file, off, fd, cause) == 0) {
		size_t cap = 0;
		ssize_t k;

		*len = 0;
		lseek(fd, 0, SEEK_SET);
		do {
			if (*len + 65536 > cap) {
				cap = (*len + 65536) * 2;
				p = xrealloc(p, cap);
			}
			k = read(fd, p + *len, cap - *len);
			if (k > 0)
				*len += (size_t)k;
		} while (k > 0);
		if (p == NULL)
			p = xmalloc(1);
	}
	close(fd);
	return p;
}

/* Deterministic bytes that do not compress (xorshift). */
static void noise(unsigned char *p, size_t n, uint32_t seed)
{
	uint32_t x = seed ? seed : 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static struct warc *open_writer(const char *dir, int64_t max)
{
	struct warc *w = NULL;
	char *cause = NULL;

	if (warc_open(dir, max, "gatherd/test", &w, &cause) != 0) {
		printf("# warc_open: %s\n", cause);
		exit(1);
	}
	return w;
}

static void close_writer(struct warc *w)
{
	char *cause = NULL;

	if (warc_close(w, &cause) != 0) {
		printf("# warc_close: %s\n", cause);
		free(cause);
		TAP_CHECK(0);
	}
}

/* How capture() frames a body. */
enum framing {
	IDENTITY = 0, /* Content-Length */
	CHUNKED,      /* one chunk per piece, with an extension */
	TRAILERS,     /* the same and a trailer field */
};

/* A response captured the way the fetch path will feed it: the head and
 * then the body in pieces of `piece` bytes, as both block and payload;
 * chunked, the block carries the framing and the payload only the data. */
static int capture(struct warc *w, const char *uri, const void *body,
		   size_t len, enum framing how, size_t piece,
		   const struct warc_finish *f, struct warc_written *out,
		   char **cause)
{
	struct warc_record *r =
	    warc_record_begin(w, uri, 1700000000123LL, "192.0.2.7");
	const unsigned char *b = body;
	char *head;

	if (how != IDENTITY)
		head = util_printf("HTTP/1.1 200 OK\r\nContent-Type: "
				   "application/octet-stream\r\nTransfer-"
				   "Encoding: chunked\r\n\r\n");
	else
		head = util_printf("HTTP/1.1 200 OK\r\nContent-Type: "
				   "application/octet-stream\r\nContent-"
				   "Length: %zu\r\n\r\n",
				   len);
	warc_record_block(r, head, strlen(head));
	free(head);
	for (size_t off = 0; off < len; off += piece) {
		size_t k = len - off < piece ? len - off : piece;

		if (how != IDENTITY) {
			char *size = util_printf("%zx;ext=1\r\n", k);

			warc_record_block(r, size, strlen(size));
			free(size);
		}
		warc_record_block(r, b + off, k);
		if (how != IDENTITY)
			warc_record_block(r, "\r\n", 2);
		warc_record_payload(r, b + off, k);
	}
	if (how == TRAILERS)
		warc_record_block(r, "0\r\nX-Trailer: yes\r\n\r\n", 21);
	else if (how == CHUNKED)
		warc_record_block(r, "0\r\n\r\n", 5);
	return warc_record_finish(r, f, out, cause);
}

/* ------------------------------------------------------------- tests */

static void test_digest_labels(void)
{
	unsigned char md[32], back[32];
	char lab[WARC_DIGEST_SIZE], hex[WARC_SHA256_SIZE];

	warc_sha256("abc", 3, md);
	warc_hex(md, sizeof md, hex);
	TAP_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
			   "b410ff61f20015ad");
	warc_labelled(md, lab);
	TAP_CHECK_STR(lab, "sha256:XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYNDSYLXVHFU"
			   "CD7WD4QACWWQ====");
	warc_sha256("", 0, md);
	warc_labelled(md, lab);
	TAP_CHECK_STR(lab, "sha256:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFE"
			   "SWMRW6CSXBKQ====");

	/* Back from base32, padded or not, any case; and from hex. */
	TAP_CHECK(warc_unlabel(lab, back) == 0 && memcmp(md, back, 32) == 0);
	TAP_CHECK(warc_unlabel("sha256:4oymiquy7qobjgx36tejs35zeqt24qpemsnzgt"
			       "feswmrw6csxbkq",
			       back) == 0 &&
		  memcmp(md, back, 32) == 0);
	TAP_CHECK(warc_unlabel("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41"
			       "e4649b934ca495991b7852b855",
			       back) == 0 &&
		  memcmp(md, back, 32) == 0);
	TAP_CHECK(warc_unlabel("sha1:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPE", back) ==
		  -1);
	TAP_CHECK(warc_unlabel("sha256:4OYMIQUY", back) == -1);
	TAP_CHECK(warc_unlabel("sha256:4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFE"
			       "SWMRW6CSXBK1====",
			       back) == -1);
	TAP_CHECK(warc_unhex("ba7816bf", back) == -1);
}

static void test_dates_and_ids(void)
{
	char d[WARC_DATE_SIZE], id[WARC_ID_SIZE], id2[WARC_ID_SIZE];

	warc_date(1700000000123LL, d);
	TAP_CHECK_STR(d, "2023-11-14T22:13:20.123Z");
	warc_date(0, d);
	TAP_CHECK_STR(d, "1970-01-01T00:00:00.000Z");
	TAP_CHECK(warc_uuid(id) == 0 && warc_uuid(id2) == 0);
	TAP_CHECK(strlen(id) == 47 && strncmp(id, "<urn:uuid:", 10) == 0 &&
		  id[46] == '>' && id[24] == '4' && strchr("89ab", id[29]));
	TAP_CHECK(id[18] == '-' && id[23] == '-' && id[28] == '-' &&
		  id[33] == '-');
	TAP_CHECK(strcmp(id, id2) != 0);
}

static void test_head_end(void)
{
	static const char *resp = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
	int st = 0;
	size_t total = 0, k = 0;

	/* Byte by byte: the end is found on the last LF of the empty line. */
	for (size_t i = 0; i < strlen(resp); i++) {
		k = warc_head_end(&st, (const unsigned char *)resp + i, 1);
		if (k > 0) {
			total = i + k;
			break;
		}
	}
	TAP_CHECK(total == strlen(resp) - 4);
	st = 0;
	TAP_CHECK(warc_head_end(&st, (const unsigned char *)resp, 20) == 0);
	TAP_CHECK(warc_head_end(&st, (const unsigned char *)resp + 20, 10) ==
		  5);
	st = 0;
	TAP_CHECK(warc_head_end(&st,
				(const unsigned char *)"HTTP/1.0 200\nA:"
						       " b\n\nxx",
				21) == 19);
	st = 0;
	TAP_CHECK(warc_head_end(&st,
				(const unsigned char *)"HTTP/1.1 200 OK"
						       "\r\nA: \rb\r\n",
				25) == 0);
}

/* A response with its request: every field, in order, and the block. */
static void test_response_and_request(void)
{
	char *dir = tmp_dir(), *cause = NULL, **names;
	static const char req[] = "GET /page HTTP/1.1\r\nHost: example.com\r\n"
				  "User-Agent: gatherd/test\r\n\r\n";
	static const char body[] = "<html>hello, archive</html>\n";
	struct warc *w = open_writer(dir, 1 << 20);
	struct warc_finish f = {.request = req, .request_len = sizeof req - 1};
	struct warc_written out;
	char lab[WARC_DIGEST_SIZE], hex[WARC_SHA256_SIZE];
	struct member m[8];
	unsigned char *file;
	const unsigned char *blk;
	size_t flen, blen;
	int n, nf;

	TAP_CHECK(capture(w, "http://example.com/page", body, sizeof body - 1,
			  IDENTITY, 7, &f, &out, &cause) == 0);
	hex_of(body, sizeof body - 1, hex);
	TAP_CHECK_STR(out.payload_sha256, hex);
	TAP_CHECK(out.payload_length == (int64_t)sizeof body - 1);
	close_writer(w);

	names = list_warcs(dir, &nf);
	TAP_CHECK(nf == 1);
	TAP_CHECK(nf == 1 && strcmp(names[0], out.file) == 0);
	TAP_CHECK(strncmp(out.file, "gatherd-", 8) == 0 &&
		  strlen(out.file) == 36 &&
		  strcmp(out.file + 22, "-00000.warc.gz") == 0);
	file = slurp_in(dir, out.file, &flen);
	n = members(file, flen, m, 8);
	TAP_CHECK(n == 3);
	if (n != 3)
		goto done;
	for (int i = 0; i < 3; i++)
		TAP_CHECK(m[i].complete);
	TAP_CHECK(m[2].offset + m[2].zlen == flen);

	/* warcinfo first. */
	TAP_CHECK(memcmp(m[0].data, "WARC/1.1\r\n", 10) == 0);
	TAP_CHECK_STR(field_names(&m[0]),
		      "WARC-Type,WARC-Record-ID,WARC-Date,WARC-Filename,"
		      "Content-Type,WARC-Block-Digest,Content-Length");
	TAP_CHECK_STR(field(&m[0], "WARC-Type"), "warcinfo");
	TAP_CHECK_STR(field(&m[0], "WARC-Filename"), out.file);
	TAP_CHECK_STR(field(&m[0], "Content-Type"), "application/warc-fields");
	blk = block_of(&m[0], &blen);
	TAP_CHECK(memmem(blk, blen, "software: gatherd/test\r\n", 24) != NULL);
	TAP_CHECK(memmem(blk, blen, "format: WARC File Format 1.1\r\n", 30));
	TAP_CHECK(memmem(blk, blen, "conformsTo: http://iipc.github.io/", 34));
	TAP_CHECK(memmem(blk, blen, "hostname: ", 10) != NULL);
	labelled_of(blk, blen, lab);
	TAP_CHECK_STR(field(&m[0], "WARC-Block-Digest"), lab);
	TAP_CHECK((size_t)atoi(field(&m[0], "Content-Length")) == blen);

	/* The response. */
	TAP_CHECK(out.offset == (int64_t)m[1].offset);
	TAP_CHECK(out.length == (int64_t)m[1].zlen);
	TAP_CHECK(memcmp(m[1].data, "WARC/1.1\r\n", 10) == 0);
	TAP_CHECK_STR(field_names(&m[1]),
		      "WARC-Type,WARC-Record-ID,WARC-Date,WARC-Target-URI,"
		      "WARC-IP-Address,Content-Type,WARC-Payload-Digest,"
		      "WARC-Block-Digest,Content-Length");
	TAP_CHECK_STR(field(&m[1], "WARC-Type"), "response");
	TAP_CHECK_STR(field(&m[1], "WARC-Record-ID"), out.record_id);
	TAP_CHECK_STR(field(&m[1], "WARC-Date"), "2023-11-14T22:13:20.123Z");
	TAP_CHECK_STR(field(&m[1], "WARC-Target-URI"),
		      "http://example.com/page");
	TAP_CHECK_STR(field(&m[1], "WARC-IP-Address"), "192.0.2.7");
	TAP_CHECK_STR(field(&m[1], "Content-Type"),
		      "application/http; msgtype=response");
	labelled_of(body, sizeof body - 1, lab);
	TAP_CHECK_STR(field(&m[1], "WARC-Payload-Digest"), lab);
	blk = block_of(&m[1], &blen);
	labelled_of(blk, blen, lab);
	TAP_CHECK_STR(field(&m[1], "WARC-Block-Digest"), lab);
	TAP_CHECK((size_t)atoi(field(&m[1], "Content-Length")) == blen);
	TAP_CHECK(
	    blen > sizeof body - 1 &&
	    memcmp(blk, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
	    memcmp(blk + blen - (sizeof body - 1), body, sizeof body - 1) == 0);
	TAP_CHECK(memcmp(m[1].data + m[1].len - 4, "\r\n\r\n", 4) == 0);

	/* Its request, right after it. */
	TAP_CHECK(out.request_offset == (int64_t)m[2].offset);
	TAP_CHECK_STR(field_names(&m[2]),
		      "WARC-Type,WARC-Record-ID,WARC-Date,WARC-Target-URI,"
		      "WARC-IP-Address,WARC-Concurrent-To,Content-Type,"
		      "WARC-Payload-Digest,WARC-Block-Digest,Content-Length");
	TAP_CHECK_STR(field(&m[2], "WARC-Type"), "request");
	TAP_CHECK_STR(field(&m[2], "WARC-Concurrent-To"), out.record_id);
	TAP_CHECK(strcmp(field(&m[2], "WARC-Record-ID"), out.record_id) != 0);
	TAP_CHECK_STR(field(&m[2], "WARC-Date"), "2023-11-14T22:13:20.123Z");
	TAP_CHECK_STR(field(&m[2], "Content-Type"),
		      "application/http; msgtype=request");
	blk = block_of(&m[2], &blen);
	TAP_CHECK(blen == sizeof req - 1 && memcmp(blk, req, blen) == 0);
	labelled_of(req, sizeof req - 1, lab);
	TAP_CHECK_STR(field(&m[2], "WARC-Block-Digest"), lab);
	labelled_of("", 0, lab);
	TAP_CHECK_STR(field(&m[2], "WARC-Payload-Digest"), lab);
done:
	free_members(m, n);
	free(file);
	free_names(names, nf);
	rm_dir(dir);
}

/* Payloads come back byte for byte: Content-Length and chunked bodies,
 * chunk extensions and trailers removed, an empty body, and the request
 * record (whose payload is the request body: none for a GET). */
static void test_read_back(void)
{
	char *dir = tmp_dir(), *cause = NULL;
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct warc *w = open_writer(dir, 1 << 20);
	struct warc_finish f = {.request = req, .request_len = sizeof req - 1};
	struct warc_written out[4];
	unsigned char body[100000], *got;
	size_t len;

	noise(body, sizeof body, 7);
	TAP_CHECK(capture(w, "http://a/1", body, sizeof body, IDENTITY, 4096,
			  NULL, &out[0], &cause) == 0);
	TAP_CHECK(capture(w, "http://a/2", body, sizeof body, TRAILERS, 1000,
			  &f, &out[1], &cause) == 0);
	TAP_CHECK(capture(w, "http://a/3", body, 0, CHUNKED, 1, NULL, &out[2],
			  &cause) == 0);
	TAP_CHECK(capture(w, "http://a/4", body, 1, IDENTITY, 1, NULL, &out[3],
			  &cause) == 0);
	close_writer(w);
	TAP_CHECK(strcmp(out[0].file, out[3].file) == 0);
	TAP_CHECK(out[0].offset < out[1].offset &&
		  out[1].offset < out[1].request_offset &&
		  out[1].request_offset < out[2].offset &&
		  out[2].offset < out[3].offset);
	TAP_CHECK(out[0].request_offset == -1);
	TAP_CHECK_STR(out[0].payload_sha256, out[1].payload_sha256);

	for (int i = 0; i < 4; i++) {
		size_t want = i < 2 ? sizeof body : i == 2 ? 0 : 1;

		got = read_back(dir, out[i].file, out[i].offset, &len, &cause);
		TAP_CHECK(got != NULL && len == want &&
			  memcmp(got, body, want) == 0);
		if (got == NULL)
			printf("# record %d: %s\n", i, cause);
		free(got);
		free(cause);
	}
	got = read_back(dir, out[1].file, out[1].request_offset, &len, &cause);
	TAP_CHECK(got != NULL && len == 0);
	free(got);
	free(cause);
	/* The warcinfo record's payload is its block. */
	got = read_back(dir, out[0].file, 0, &len, &cause);
	TAP_CHECK(got != NULL && len > 0 && memcmp(got, "software: ", 10) == 0);
	free(got);
	free(cause);
	rm_dir(dir);
}

/* A large block spills to an unlinked file: memory stays at the cap, the
 * file is used, and all of it goes when the record finishes. */
static void test_spill(void)
{
	char *dir = tmp_dir(), *cause = NULL;
	int fds = open_fds(), nf;
	struct warc *w = open_writer(dir, 1 << 30);
	size_t len = 5 << 20, got_len;
	unsigned char *body = xmalloc(len), *got;
	struct warc_record *r;
	struct warc_written out;
	struct warc_stats st;
	char **names;
	int64_t peak = 0;

	noise(body, len, 11);
	r = warc_record_begin(w, "http://big.example/", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
	for (size_t off = 0; off < len; off += 8000) {
		size_t k = len - off < 8000 ? len - off : 8000;

		warc_record_block(r, body + off, k);
		warc_record_payload(r, body + off, k);
		warc_stats(w, &st);
		if (st.memory_bytes > peak)
			peak = st.memory_bytes;
	}
	warc_stats(w, &st);
	TAP_CHECK(st.spill_files == 1 && st.records_open == 1);
	TAP_CHECK(peak <= 64 * 1024);
	/* The spill file is unlinked: the directory shows nothing of it. */
	names = list_warcs(dir, &nf);
	TAP_CHECK(nf == 0);
	free_names(names, nf);
	TAP_CHECK(open_fds() == fds + 2); /* the directory and the spill */
	TAP_CHECK(warc_record_finish(r, NULL, &out, &cause) == 0);
	warc_stats(w, &st);
	TAP_CHECK(st.spill_files == 0 && st.memory_bytes == 0 &&
		  st.records_open == 0);
	TAP_CHECK(out.payload_length == (int64_t)len);
	close_writer(w);
	TAP_CHECK(open_fds() == fds);

	got = read_back(dir, out.file, out.offset, &got_len, &cause);
	TAP_CHECK(got != NULL && got_len == len && memcmp(got, body, len) == 0);
	free(got);
	free(cause);
	free(body);
	rm_dir(dir);
}

/* Records in progress at once come out whole, in the order they finish. */
static void test_interleaved(void)
{
	char *dir = tmp_dir(), *cause = NULL;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_record *a, *b;
	struct warc_written wa, wb;
	unsigned char da[200000], db[150000], *file, *got;
	struct member m[4];
	size_t flen, blen, glen;
	const unsigned char *blk;
	int n;

	noise(da, sizeof da, 3);
	noise(db, sizeof db, 5);
	a = warc_record_begin(w, "http://a.example/", 1000, NULL);
	b = warc_record_begin(w, "http://b.example/", 2000, "2001:db8::1");
	warc_record_block(a, "HTTP/1.1 200 OK\r\n\r\n", 19);
	warc_record_block(b, "HTTP/1.1 404 Not Found\r\n\r\n", 26);
	for (size_t off = 0; off < sizeof da; off += 5000) {
		warc_record_block(a, da + off, 5000);
		warc_record_payload(a, da + off, 5000);
		if (off < sizeof db) {
			warc_record_block(b, db + off, 5000);
			warc_record_payload(b, db + off, 5000);
		}
	}
	TAP_CHECK(warc_record_finish(b, NULL, &wb, &cause) == 0);
	TAP_CHECK(warc_record_finish(a, NULL, &wa, &cause) == 0);
	close_writer(w);
	TAP_CHECK(wb.offset < wa.offset);

	file = slurp_in(dir, wa.file, &flen);
	n = members(file, flen, m, 4);
	TAP_CHECK(n == 3);
	if (n == 3) {
		TAP_CHECK(wb.offset == (int64_t)m[1].offset &&
			  wa.offset == (int64_t)m[2].offset);
		TAP_CHECK_STR(field(&m[1], "WARC-Target-URI"),
			      "http://b.example/");
		TAP_CHECK_STR(field(&m[1], "WARC-IP-Address"), "2001:db8::1");
		blk = block_of(&m[1], &blen);
		TAP_CHECK(blen == 26 + sizeof db &&
			  memcmp(blk + 26, db, sizeof db) == 0);
		blk = block_of(&m[2], &blen);
		TAP_CHECK(blen == 19 + sizeof da &&
			  memcmp(blk + 19, da, sizeof da) == 0);
		TAP_CHECK_STR(field(&m[2], "WARC-IP-Address"), "");
	}
	got = read_back(dir, wa.file, wa.offset, &glen, &cause);
	TAP_CHECK(got != NULL && glen == sizeof da &&
		  memcmp(got, da, glen) == 0);
	free(got);
	free(cause);
	free_members(m, n);
	free(file);
	rm_dir(dir);
}

/* Files roll over before a record would take them past the limit; each
 * starts with a warcinfo record; a record larger than the limit goes
 * alone; every record reads back from its file and offset. */
static void test_rollover(void)
{
	char *dir = tmp_dir(), *cause = NULL, **names;
	const int64_t max = 6000;
	struct warc *w = open_writer(dir, max);
	struct warc_written out[13];
	unsigned char body[20000 + 13], *got;
	struct warc_stats st;
	size_t len;
	int nf;

	noise(body, sizeof body, 9);
	for (int i = 0; i < 13; i++) {
		/* Record 6 is bigger than a whole file. */
		size_t n = i == 6 ? 20000 : 1500;
		char *uri = util_printf("http://roll.example/%d", i);

		TAP_CHECK(capture(w, uri, body + i, n,
				  i % 2 ? CHUNKED : IDENTITY, 700, NULL,
				  &out[i], &cause) == 0);
		free(uri);
	}
	warc_stats(w, &st);
	close_writer(w);
	names = list_warcs(dir, &nf);
	TAP_CHECK(nf >= 5);
	TAP_CHECK(st.files_opened == nf);
	TAP_CHECK(st.records_written == 13 + nf);
	for (int i = 0; i < nf; i++) {
		size_t flen;
		unsigned char *file = slurp_in(dir, names[i], &flen);
		struct member m[16];
		int n = members(file, flen, m, 16);

		TAP_CHECK(n >= 2);
		TAP_CHECK(n > 0 && m[n - 1].complete &&
			  m[n - 1].offset + m[n - 1].zlen == flen);
		TAP_CHECK_STR(field(&m[0], "WARC-Type"), "warcinfo");
		TAP_CHECK_STR(field(&m[0], "WARC-Filename"), names[i]);
		/* Past the limit only with a single capture in it. */
		TAP_CHECK((int64_t)flen <= max || n == 2);
		if (i > 0)
			TAP_CHECK(strcmp(names[i - 1], names[i]) < 0);
		free_members(m, n);
		free(file);
	}
	/* The big one is alone in its file, and the next one moved on. */
	TAP_CHECK(strcmp(out[5].file, out[6].file) != 0 &&
		  strcmp(out[6].file, out[7].file) != 0);
	for (int i = 0; i < 13; i++) {
		size_t n = i == 6 ? 20000 : 1500;

		got = read_back(dir, out[i].file, out[i].offset, &len, &cause);
		TAP_CHECK(got != NULL && len == n &&
			  memcmp(got, body + i, n) == 0);
		free(got);
		free(cause);
	}
	free_names(names, nf);
	rm_dir(dir);
}

/* A file cut inside its last member (as by kill -9): the records before
 * the cut read back, the torn one is reported as torn. */
static void test_torn_file(void)
{
	char *dir = tmp_dir(), *cause = NULL, *path;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_written out[3];
	unsigned char body[30000], *got, *file;
	size_t len, flen;
	const size_t cuts[] = {5, 200, 0 /* middle */, 8 /* before end */};
	int fd;

	noise(body, sizeof body, 13);
	for (int i = 0; i < 3; i++)
		TAP_CHECK(capture(w, "http://torn.example/", body, sizeof body,
				  i == 2 ? CHUNKED : IDENTITY, 3000, NULL,
				  &out[i], &cause) == 0);
	close_writer(w);
	file = slurp_in(dir, out[0].file, &flen);
	path = util_printf("%s/%s", dir, out[0].file);
	for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
		size_t at = cuts[c] == 0
				? (size_t)out[2].offset +
				      (flen - (size_t)out[2].offset) / 2
			    : c == 3 ? flen - cuts[c]
				     : (size_t)out[2].offset + cuts[c];

		fd = open(path, O_WRONLY | O_TRUNC);
		TAP_CHECK(fd >= 0 && write(fd, file, at) == (ssize_t)at);
		close(fd);
		for (int i = 0; i < 2; i++) {
			got = read_back(dir, out[i].file, out[i].offset, &len,
					&cause);
			TAP_CHECK(got != NULL && len == sizeof body &&
				  memcmp(got, body, len) == 0);
			free(got);
			free(cause);
		}
		got = read_back(dir, out[2].file, out[2].offset, &len, &cause);
		TAP_CHECK(got == NULL && cause != NULL &&
			  strstr(cause, "torn record") != NULL);
		if (cause != NULL && strstr(cause, "torn record") == NULL)
			printf("# cut at %zu: %s\n", at, cause);
		free(got);
		free(cause);
	}
	free(path);
	free(file);
	rm_dir(dir);
}

/* A body cut at the limit is marked, and reads back as far as it goes,
 * even when it stops inside a chunk. */
static void test_truncated_record(void)
{
	/* A 16-byte chunk of which 10 came. */
	static const char cut[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
				  "chunked\r\n\r\n10\r\n0123456789";
	char *dir = tmp_dir(), *cause = NULL;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_record *r;
	struct warc_finish f = {.truncated = true};
	struct warc_written out;
	unsigned char *file, *got;
	struct member m[3];
	size_t flen, len;
	int n;

	r = warc_record_begin(w, "http://cut.example/", 5, NULL);
	warc_record_block(r, cut, sizeof cut - 1);
	warc_record_payload(r, "0123456789", 10);
	TAP_CHECK(warc_record_finish(r, &f, &out, &cause) == 0);
	close_writer(w);
	file = slurp_in(dir, out.file, &flen);
	n = members(file, flen, m, 3);
	TAP_CHECK(n == 2);
	if (n == 2) {
		TAP_CHECK_STR(field(&m[1], "WARC-Truncated"), "length");
		TAP_CHECK_STR(field_names(&m[1]),
			      "WARC-Type,WARC-Record-ID,WARC-Date,"
			      "WARC-Target-URI,Content-Type,WARC-Truncated,"
			      "WARC-Payload-Digest,WARC-Block-Digest,"
			      "Content-Length");
	}
	got = read_back(dir, out.file, out.offset, &len, &cause);
	TAP_CHECK(got != NULL && len == 10 &&
		  memcmp(got, "0123456789", 10) == 0);
	free(got);
	free(cause);
	free_members(m, n);
	free(file);
	rm_dir(dir);
}

/* Revisits: an identical payload keeps only the headers; a 304 keeps the
 * whole 304; neither has a payload to read back. */
static void test_revisit(void)
{
	char *dir = tmp_dir(), *cause = NULL;
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				   "ETag: \"x\"\r\n\r\n";
	static const char nm[] = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n"
				 "\r\n";
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_written first, same, notmod;
	struct warc_finish f = {0};
	struct warc_record *r;
	char hex[WARC_SHA256_SIZE], lab[WARC_DIGEST_SIZE];
	unsigned char *file, *got;
	const unsigned char *blk;
	struct member m[5];
	size_t flen, blen, len;
	int n;

	TAP_CHECK(capture(w, "http://rv.example/", "hello", 5, IDENTITY, 5,
			  NULL, &first, &cause) == 0);

	r = warc_record_begin(w, "http://rv.example/", 9000, NULL);
	warc_record_block(r, head, sizeof head - 1);
	warc_record_block(r, "hello", 5);
	warc_record_payload(r, "hello", 5);
	warc_record_payload_sha256(r, hex);
	TAP_CHECK_STR(hex, first.payload_sha256);
	f.revisit = WARC_REVISIT_IDENTICAL;
	f.refers_to_uri = "http://rv.example/";
	f.refers_to_date_ms = 1700000000123LL;
	f.refers_to_id = first.record_id;
	TAP_CHECK(warc_record_finish(r, &f, &same, &cause) == 0);
	TAP_CHECK_STR(same.payload_sha256, first.payload_sha256);

	r = warc_record_begin(w, "http://rv.example/", 9500, NULL);
	warc_record_block(r, nm, sizeof nm - 1);
	f.revisit = WARC_REVISIT_NOT_MODIFIED;
	f.refers_to_id = NULL;
	f.refers_to_date_ms = 0;
	f.refers_to_sha256 = first.payload_sha256;
	TAP_CHECK(warc_record_finish(r, &f, &notmod, &cause) == 0);
	close_writer(w);

	file = slurp_in(dir, first.file, &flen);
	n = members(file, flen, m, 5);
	TAP_CHECK(n == 4);
	if (n == 4) {
		TAP_CHECK_STR(field_names(&m[2]),
			      "WARC-Type,WARC-Record-ID,WARC-Date,"
			      "WARC-Target-URI,WARC-Profile,"
			      "WARC-Refers-To-Target-URI,WARC-Refers-To-Date,"
			      "WARC-Refers-To,Content-Type,WARC-Payload-Digest,"
			      "WARC-Block-Digest,Content-Length");
		TAP_CHECK_STR(field(&m[2], "WARC-Type"), "revisit");
		TAP_CHECK_STR(field(&m[2], "WARC-Profile"),
			      "http://netpreserve.org/warc/1.1/revisit/"
			      "identical-payload-digest");
		TAP_CHECK_STR(field(&m[2], "WARC-Refers-To-Target-URI"),
			      "http://rv.example/");
		TAP_CHECK_STR(field(&m[2], "WARC-Refers-To-Date"),
			      "2023-11-14T22:13:20.123Z");
		TAP_CHECK_STR(field(&m[2], "WARC-Refers-To"), first.record_id);
		TAP_CHECK_STR(field(&m[2], "WARC-Payload-Digest"),
			      field(&m[1], "WARC-Payload-Digest"));
		blk = block_of(&m[2], &blen);
		TAP_CHECK(blen == sizeof head - 1 &&
			  memcmp(blk, head, blen) == 0);
		labelled_of(head, sizeof head - 1, lab);
		TAP_CHECK_STR(field(&m[2], "WARC-Block-Digest"), lab);

		TAP_CHECK_STR(field(&m[3], "WARC-Profile"),
			      "http://netpreserve.org/warc/1.1/revisit/"
			      "server-not-modified");
		TAP_CHECK_STR(field(&m[3], "WARC-Refers-To-Date"), "");
		TAP_CHECK_STR(field(&m[3], "WARC-Payload-Digest"),
			      field(&m[1], "WARC-Payload-Digest"));
		blk = block_of(&m[3], &blen);
		TAP_CHECK(blen == sizeof nm - 1 && memcmp(blk, nm, blen) == 0);
	}
	got = read_back(dir, same.file, same.offset, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL &&
		  strstr(cause, "revisit") != NULL &&
		  strstr(cause, "http://rv.example/") != NULL);
	free(got);
	free(cause);
	free_members(m, n);
	free(file);
	rm_dir(dir);
}

/* What cannot be written fails at finish, frees the record and leaves
 * the file as it was. */
static void test_refused(void)
{
	char *dir = tmp_dir(), *cause = NULL;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_finish f = {0};
	struct warc_written out;
	struct warc_record *r;
	struct warc_stats st;

	r = warc_record_begin(w, "http://x/\r\nWARC-Type: evil", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
	TAP_CHECK(warc_record_finish(r, NULL, &out, &cause) == -1 &&
		  strstr(cause, "target URI") != NULL);
	free(cause);
	r = warc_record_begin(w, "http://x/", 1, "1.2.3.4\n");
	TAP_CHECK(warc_record_finish(r, NULL, &out, &cause) == -1);
	free(cause);

	/* A revisit needs what it refers to, and identical headers. */
	f.revisit = WARC_REVISIT_IDENTICAL;
	r = warc_record_begin(w, "http://x/", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
	TAP_CHECK(warc_record_finish(r, &f, &out, &cause) == -1);
	free(cause);
	f.refers_to_uri = "http://x/";
	r = warc_record_begin(w, "http://x/", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\nA: b\r\n", 23);
	TAP_CHECK(warc_record_finish(r, &f, &out, &cause) == -1 &&
		  strstr(cause, "header block") != NULL);
	free(cause);
	f.revisit = WARC_REVISIT_NOT_MODIFIED;
	f.refers_to_sha256 = "abc";
	r = warc_record_begin(w, "http://x/", 1, NULL);
	TAP_CHECK(warc_record_finish(r, &f, &out, &cause) == -1);
	free(cause);

	/* An aborted record writes nothing. */
	r = warc_record_begin(w, "http://x/", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
	warc_record_abort(r);

	warc_stats(w, &st);
	TAP_CHECK(st.records_open == 0 && st.memory_bytes == 0);
	TAP_CHECK(st.files_opened == 0 && st.records_written == 0);
	close_writer(w);

	TAP_CHECK(warc_open("/nonexistent/gatherd", 1, "x", &w, &cause) == -1 &&
		  strstr(cause, "/nonexistent/gatherd") != NULL);
	free(cause);
	dir = (rm_dir(dir), tmp_dir());
	TAP_CHECK(warc_open(dir, 0, "x", &w, &cause) == -1);
	free(cause);
	TAP_CHECK(warc_open(dir, 1, "x\r\ny: z", &w, &cause) == -1);
	free(cause);
	rm_dir(dir);
}

/* Reading refuses what is not a whole record of ours. */
static void test_read_errors(void)
{
	char *dir = tmp_dir(), *cause = NULL, *path;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_written out;
	unsigned char *got;
	size_t len;
	z_stream z = {0};
	unsigned char gz[512];
	static const char bad[] =
	    "WARC/1.1\r\nWARC-Type: resource\r\nWARC-Block-Digest: sha256:"
	    "4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ====\r\n"
	    "Content-Length: 3\r\n\r\nabc\r\n\r\n";
	int fd;

	TAP_CHECK(capture(w, "http://r.example/", "abc", 3, IDENTITY, 3, NULL,
			  &out, &cause) == 0);
	close_writer(w);
	got = read_back(dir, "../etc/passwd", 0, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL);
	free(cause);
	got = read_back(dir, "nope.warc.gz", 0, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL &&
		  strstr(cause, "No such file") != NULL);
	free(cause);
	got = read_back(dir, out.file, out.offset + 1, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL &&
		  strstr(cause, "not a gzip member") != NULL);
	free(cause);
	got = read_back(dir, out.file, 1 << 20, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL &&
		  strstr(cause, "past the end") != NULL);
	free(cause);

	/* A record whose block does not match its digest (digest of ""). */
	deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)bad;
	z.avail_in = sizeof bad - 1;
	z.next_out = gz;
	z.avail_out = sizeof gz;
	TAP_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
	path = util_printf("%s/bad.warc.gz", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	TAP_CHECK(write(fd, gz, sizeof gz - z.avail_out) ==
		  (ssize_t)(sizeof gz - z.avail_out));
	close(fd);
	deflateEnd(&z);
	got = read_back(dir, "bad.warc.gz", 0, &len, &cause);
	TAP_CHECK(got == NULL && cause != NULL &&
		  strstr(cause, "WARC-Block-Digest") != NULL);
	free(cause);

	free(path);
	rm_dir(dir);
}

/* A write that fails midway (here: the file size limit) cuts the file
 * back, and the next record is written whole. */
static void test_write_failure(void)
{
	char *dir = tmp_dir(), *cause = NULL, **names;
	struct warc *w = open_writer(dir, 1 << 30);
	struct warc_record *r;
	struct warc_written out[2], bad;
	unsigned char body[200000], *got;
	struct rlimit old, lim;
	struct stat sb;
	char *path;
	size_t len;
	int nf;

	noise(body, sizeof body, 17);
	TAP_CHECK(capture(w, "http://ok.example/", body, 1000, IDENTITY, 500,
			  NULL, &out[0], &cause) == 0);
	path = util_printf("%s/%s", dir, out[0].file);
	TAP_CHECK(stat(path, &sb) == 0);

	r = warc_record_begin(w, "http://big.example/", 1, NULL);
	warc_record_block(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
	warc_record_block(r, body, sizeof body);
	warc_record_payload(r, body, sizeof body);
	/* The member (some 200 kB that do not compress) stops at the
	 * limit, part of it written. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 100000;
	TAP_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	TAP_CHECK(warc_record_finish(r, NULL, &bad, &cause) == -1 &&
		  cause != NULL && strstr(cause, "too large") != NULL);
	if (cause != NULL)
		printf("# as expected: %s\n", cause);
	free(cause);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	TAP_CHECK(stat(path, &sb) == 0 &&
		  sb.st_size == out[0].offset + out[0].length);
	TAP_CHECK(capture(w, "http://ok.example/2", body, 2000, CHUNKED, 500,
			  NULL, &out[1], &cause) == 0);
	TAP_CHECK(strcmp(out[0].file, out[1].file) == 0 &&
		  out[1].offset == out[0].offset + out[0].length);
	close_writer(w);
	for (int i = 0; i < 2; i++) {
		got = read_back(dir, out[i].file, out[i].offset, &len, &cause);
		TAP_CHECK(got != NULL && len == (i ? 2000u : 1000u) &&
			  memcmp(got, body, len) == 0);
		free(got);
		free(cause);
	}
	names = list_warcs(dir, &nf);
	TAP_CHECK(nf == 1);
	free_names(names, nf);
	free(path);
	rm_dir(dir);
}

/* Names that exist are skipped, never appended to. */
static void test_names_never_reused(void)
{
	char *dir = tmp_dir(), *cause = NULL, stamp[16], **names;
	struct warc_written out;
	struct warc *w;
	time_t now = time(NULL);
	struct tm tm;
	int nf;

	/* This second and the next, so that the test cannot straddle. */
	for (int s = 0; s < 2; s++) {
		time_t t = now + s;

		gmtime_r(&t, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
		for (int i = 0; i < 3; i++) {
			char *p = util_printf("%s/gatherd-%s-%05d.warc.gz", dir,
					      stamp, i);
			int fd = open(p, O_WRONLY | O_CREAT, 0600);

			close(fd);
			free(p);
		}
	}
	w = open_writer(dir, 1 << 30);
	TAP_CHECK(capture(w, "http://n.example/", "x", 1, IDENTITY, 1, NULL,
			  &out, &cause) == 0);
	close_writer(w);
	names = list_warcs(dir, &nf);
	TAP_CHECK(nf == 7);
	for (int i = 0; i < nf; i++) {
		size_t len;
		unsigned char *b = slurp_in(dir, names[i], &len);

		/* Only the writer's own file has anything in it. */
		TAP_CHECK((len > 0) == (strcmp(names[i], out.file) == 0));
		free(b);
	}
	TAP_CHECK(strcmp(out.file + 22, "-00003.warc.gz") == 0);
	free_names(names, nf);
	rm_dir(dir);
}

/* Closing with records still open aborts them: no descriptor or memory is
 * left (ASan checks the memory). */
static void test_close_with_open_records(void)
{
	char *dir = tmp_dir();
	struct warc *w;
	struct warc_record *r;
	unsigned char body[100000];
	int fds = open_fds();

	noise(body, sizeof body, 19);
	w = open_writer(dir, 1 << 30);
	r = warc_record_begin(w, "http://open.example/", 1, NULL);
	warc_record_block(r, body, sizeof body);
	r = warc_record_begin(w, "http://open2.example/", 1, NULL);
	warc_record_block(r, body, 10);
	close_writer(w);
	TAP_CHECK(open_fds() == fds);
	rm_dir(dir);
}

static const struct tap_test tests[] = {
    {"digest labels: sha256 base32 and hex", test_digest_labels},
    {"dates and record IDs", test_dates_and_ids},
    {"end of an HTTP header block across pieces", test_head_end},
    {"response and request records: fields, order, digests",
     test_response_and_request},
    {"payloads read back byte for byte", test_read_back},
    {"a large block spills to disk, memory stays bounded", test_spill},
    {"interleaved records come out contiguous", test_interleaved},
    {"rollover at max_bytes", test_rollover},
    {"a torn last member is reported, earlier ones read", test_torn_file},
    {"a truncated body is marked and reads back", test_truncated_record},
    {"revisit records", test_revisit},
    {"bad records are refused and freed", test_refused},
    {"reading refuses what is not a whole record", test_read_errors},
    {"a failed write leaves the file as it was", test_write_failure},
    {"existing file names are skipped", test_names_never_reused},
    {"close aborts open records", test_close_with_open_records},
    {NULL, NULL},
};

/* ------------------------------------------- files for other readers
 *
 * `test_warc --samples DIR` writes WARC files of every kind of record into
 * DIR, the exact payload of each into DIR/bodies/, and DIR/manifest.json
 * saying where each record went; tests/integration/test_warc.py has them
 * read by warcio.  `test_warc --forever DIR` writes large records until it
 * is killed, printing "FILE OFFSET LENGTH SHA256" once each is written
 * (the kill -9 test).  `test_warc --cat DIR FILE OFFSET` is
 * warc_read_payload() to stdout. */

static FILE *manifest;
static const char *sample_dir;
static int samples;

/* Keep a payload as a file for the comparison; returns its name. */
static char *save_body(const char *name, const void *p, size_t n)
{
	char *rel = util_printf("bodies/%s.bin", name);
	char *path = util_printf("%s/%s", sample_dir, rel);
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		printf("cannot write %s\n", path);
		exit(1);
	}
	free(path);
	return rel;
}

/* One manifest entry: where a record went, and what its payload is. */
static void note(const char *name, const char *uri, const char *type,
		 const struct warc_written *o, const void *body, size_t len,
		 const void *decoded, size_t dlen, bool chunked, bool truncated)
{
	char *b = body != NULL ? save_body(name, body, len) : NULL;
	char *d = NULL;

	if (decoded != NULL) {
		char *dn = util_printf("%s.decoded", name);

		d = save_body(dn, decoded, dlen);
		free(dn);
	}
	fprintf(manifest,
		"%s\n  {\"name\": \"%s\", \"uri\": \"%s\", \"type\": \"%s\", "
		"\"file\": \"%s\", \"offset\": %lld, \"length\": %lld, "
		"\"request_offset\": %lld, \"record_id\": \"%s\", "
		"\"payload_sha256\": \"%s\", \"payload_length\": %lld, "
		"\"chunked\": %s, \"truncated\": %s, \"body\": %s%s%s, "
		"\"decoded\": %s%s%s}",
		samples++ ? "," : "", name, uri, type, o->file,
		(long long)o->offset, (long long)o->length,
		(long long)o->request_offset, o->record_id, o->payload_sha256,
		(long long)o->payload_length, chunked ? "true" : "false",
		truncated ? "true" : "false", b ? "\"" : "", b ? b : "null",
		b ? "\"" : "", d ? "\"" : "", d ? d : "null", d ? "\"" : "");
	free(b);
	free(d);
}

static void must(int rc, char *cause)
{
	if (rc != 0) {
		printf("%s\n", cause);
		exit(1);
	}
}

/* A response with its request, as the fetch path will write them. */
static void sample(struct warc *w, const char *name, const void *body,
		   size_t len, enum framing how, size_t piece)
{
	char *uri = util_printf("http://samples.example/%s", name);
	char *req = util_printf("GET /%s HTTP/1.1\r\nHost: samples.example\r\n"
				"User-Agent: gatherd/test\r\n\r\n",
				name);
	struct warc_finish f = {.request = req, .request_len = strlen(req)};
	struct warc_written o;
	char *cause = NULL;

	must(capture(w, uri, body, len, how, piece, &f, &o, &cause), cause);
	note(name, uri, "response", &o, body, len, NULL, 0, how != IDENTITY,
	     false);
	free(uri);
	free(req);
}

/* gzip of p, for a body with Content-Encoding: gzip. */
static unsigned char *gzip_of(const void *p, size_t n, size_t *zlen)
{
	z_stream z = {0};
	unsigned char *out = xmalloc(n + 1024);

	deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)(n + 1024);
	deflate(&z, Z_FINISH);
	*zlen = n + 1024 - z.avail_out;
	deflateEnd(&z);
	return out;
}

static int write_samples(const char *dir)
{
	static const char not_modified[] = "HTTP/1.1 304 Not Modified\r\n"
					   "ETag: \"1\"\r\n\r\n";
	static const char conditional[] = "GET /html HTTP/1.1\r\n"
					  "Host: samples.example\r\n"
					  "If-None-Match: \"1\"\r\n\r\n";
	static const char plain[] = "HTTP/1.1 200 OK\r\nServer: test\r\n\r\n";
	struct warc *w;
	struct warc_written o, html, ia, ib;
	struct warc_record *r, *a, *b;
	struct warc_finish f = {0};
	char *cause = NULL, *path, *text = NULL, *head;
	size_t tlen = 0, zlen;
	unsigned char *big, *z;

	sample_dir = dir;
	path = util_printf("%s/bodies", dir);
	mkdir(path, 0777);
	free(path);
	path = util_printf("%s/manifest.json", dir);
	manifest = fopen(path, "w");
	free(path);
	if (manifest == NULL)
		return 1;
	fprintf(manifest, "[");
	/* Small files: the big record and the run of small ones roll over. */
	must(warc_open(dir, 256 * 1024, "gatherd/test", &w, &cause), cause);

	for (int i = 0; i < 300; i++) {
		char *line = util_printf("<p>line %d of a page that compresses"
					 " well</p>\n",
					 i);

		text = xrealloc(text, tlen + strlen(line) + 1);
		memcpy(text + tlen, line, strlen(line) + 1);
		tlen += strlen(line);
		free(line);
	}
	/* Content-Length and chunked, in pieces of several sizes. */
	must(capture(w, "http://samples.example/html", text, tlen, IDENTITY,
		     1000, NULL, &html, &cause),
	     cause);
	note("html", "http://samples.example/html", "response", &html, text,
	     tlen, NULL, 0, false, false);
	big = xmalloc(2 << 20);
	noise(big, 2 << 20, 42);
	sample(w, "chunked", big, 50000, CHUNKED, 997);
	sample(w, "one-chunk", big + 1, 3000, CHUNKED, 3000);
	sample(w, "empty", big, 0, IDENTITY, 1);
	sample(w, "binary", big + 2, 100000, IDENTITY, 4096);
	/* Bigger than a file: alone in one, read from the spill file. */
	sample(w, "big", big + 3, 2 << 19, CHUNKED, 65536);
	sample(w, "big-identity", big + 4, (2 << 20) - 4, IDENTITY, 8192);

	/* Content-Encoding stays in the payload; warcio decodes it. */
	z = gzip_of(text, tlen, &zlen);
	r = warc_record_begin(w, "http://samples.example/gzip", 1700000001000,
			      "127.0.0.1");
	head = util_printf("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
			   "Content-Encoding: gzip\r\nContent-Length: %zu\r\n"
			   "\r\n",
			   zlen);
	warc_record_block(r, head, strlen(head));
	warc_record_block(r, z, zlen);
	warc_record_payload(r, z, zlen);
	must(warc_record_finish(r, NULL, &o, &cause), cause);
	note("gzip", "http://samples.example/gzip", "response", &o, z, zlen,
	     text, tlen, false, false);
	free(head);
	free(z);

	/* Cut at max_body_bytes inside a chunk. */
	r = warc_record_begin(w, "http://samples.example/cut", 1700000002000,
			      NULL);
	head = util_printf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
			   "\r\n%x\r\n",
			   60000);
	warc_record_block(r, head, strlen(head));
	warc_record_block(r, big, 40000);
	warc_record_payload(r, big, 40000);
	f.truncated = true;
	must(warc_record_finish(r, &f, &o, &cause), cause);
	note("cut", "http://samples.example/cut", "response", &o, big, 40000,
	     NULL, 0, true, true);
	free(head);

	/* Revisits of the html page. */
	r = warc_record_begin(w, "http://samples.example/html", 1700000003000,
			      NULL);
	head = util_printf("HTTP/1.1 200 OK\r\nContent-Type: "
			   "application/octet-stream\r\nContent-Length: "
			   "%zu\r\n\r\n",
			   tlen);
	warc_record_block(r, head, strlen(head));
	warc_record_block(r, text, tlen);
	warc_record_payload(r, text, tlen);
	f = (struct warc_finish){.revisit = WARC_REVISIT_IDENTICAL,
				 .refers_to_uri = "http://samples.example/html",
				 .refers_to_date_ms = 1700000000123,
				 .refers_to_id = html.record_id};
	must(warc_record_finish(r, &f, &o, &cause), cause);
	note("revisit", "http://samples.example/html", "revisit", &o, NULL, 0,
	     NULL, 0, false, false);
	free(head);
	r = warc_record_begin(w, "http://samples.example/html", 1700000004000,
			      NULL);
	warc_record_block(r, not_modified, sizeof not_modified - 1);
	f = (struct warc_finish){.revisit = WARC_REVISIT_NOT_MODIFIED,
				 .refers_to_uri = "http://samples.example/html",
				 .refers_to_date_ms = 1700000000123,
				 .refers_to_sha256 = html.payload_sha256,
				 .request = conditional,
				 .request_len = sizeof conditional - 1};
	must(warc_record_finish(r, &f, &o, &cause), cause);
	note("not-modified", "http://samples.example/html", "revisit", &o, NULL,
	     0, NULL, 0, false, false);

	/* Two in progress at once, finished in the other order. */
	a = warc_record_begin(w, "http://samples.example/a", 1700000005000,
			      "::1");
	b = warc_record_begin(w, "http://samples.example/b", 1700000005001,
			      "::1");
	warc_record_block(a, plain, sizeof plain - 1);
	warc_record_block(b, plain, sizeof plain - 1);
	for (int i = 0; i < 50; i++) {
		warc_record_block(a, big + 1000 * i, 1000);
		warc_record_payload(a, big + 1000 * i, 1000);
		warc_record_block(b, big + 7 + 900 * i, 900);
		warc_record_payload(b, big + 7 + 900 * i, 900);
	}
	must(warc_record_finish(b, NULL, &ib, &cause), cause);
	must(warc_record_finish(a, NULL, &ia, &cause), cause);
	note("b", "http://samples.example/b", "response", &ib, big + 7, 45000,
	     NULL, 0, false, false);
	note("a", "http://samples.example/a", "response", &ia, big, 50000, NULL,
	     0, false, false);

	/* A run of small records across a rollover. */
	for (int i = 0; i < 24; i++) {
		char *name = util_printf("run-%02d", i);

		sample(w, name, big + 100 * i, 20000 + (size_t)i,
		       i % 3 == 0 ? CHUNKED : IDENTITY, 1500);
		free(name);
	}
	must(warc_close(w, &cause), cause);
	fprintf(manifest, "\n]\n");
	fclose(manifest);
	free(text);
	free(big);
	return 0;
}

/* Large records, one after the other, until killed. */
static void write_forever(const char *dir) __attribute__((noreturn));

static void write_forever(const char *dir)
{
	struct warc *w;
	char *cause = NULL;
	size_t len = 4 << 20;
	unsigned char *body = xmalloc(len + 1000);

	must(warc_open(dir, (int64_t)1 << 40, "gatherd/test", &w, &cause),
	     cause);
	noise(body, len + 1000, 77);
	for (unsigned i = 0;; i++) {
		struct warc_written o;
		char *uri = util_printf("http://forever.example/%u", i);

		must(capture(w, uri, body + i % 1000, len,
			     i % 2 ? CHUNKED : IDENTITY, 16384, NULL, &o,
			     &cause),
		     cause);
		printf("%s %lld %lld %s\n", o.file, (long long)o.offset,
		       (long long)o.length, o.payload_sha256);
		fflush(stdout);
		free(uri);
	}
}

static int cat(const char *dir, const char *file, const char *offset)
{
	char *cause = NULL;

	if (warc_read_payload(dir, file, strtoll(offset, NULL, 10), 1,
			      &cause) != 0) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--samples") == 0)
		return write_samples(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--forever") == 0)
		write_forever(argv[2]);
	if (argc == 5 && strcmp(argv[1], "--cat") == 0)
		return cat(argv[2], argv[3], argv[4]);
	return tap_main(tests);
}

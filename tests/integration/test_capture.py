"""Keeping what was fetched (issue 11): body digests and validators,
re-fetching (conditional requests, 304 as not_modified), the `latest`
view, and pruning.  Against the private nginx (which sends ETag and
Last-Modified and answers conditional requests with 304) and the fault
server (chunked, close-delimited, too large, truncated)."""

import hashlib
import os
import re
import sqlite3
import subprocess
import time
from email.utils import formatdate

import pytest

from conftest import DOCROOT_FILES, wait_for
from ops_helpers import run_cli

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def fault_body(n):
    """The body the fault server sends for len=n (tests/fault_server.py)."""
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (pattern * (n // len(pattern) + 1))[:n]


def by_url(g):
    return {r["url"]: r for r in g.rows()}


def test_digests_match_the_served_files(gatherd, nginx):
    """body_sha256 is the SHA-256 of the body bytes `length` counts, the
    same as sha256sum of the file nginx served; ETag and Last-Modified are
    recorded as nginx sent them."""
    g = gatherd
    urls = [nginx.url(name) for name in sorted(DOCROOT_FILES)]
    g.write_config()
    g.write_queue(urls)
    g.once()
    rows = by_url(g)
    for name in DOCROOT_FILES:
        r = rows[nginx.url(name)]
        data = (nginx.docroot / name).read_bytes()
        out = subprocess.run(["sha256sum", str(nginx.docroot / name)],
                             capture_output=True, text=True, check=True)
        assert r["state"] == "done" and r["status"] == 200, r
        assert r["length"] == len(data)
        assert r["body_sha256"] == out.stdout.split()[0] == \
            sha256_hex(data), r
        st = (nginx.docroot / name).stat()
        # nginx's ETag is "<mtime hex>-<size hex>", Last-Modified the mtime.
        assert r["etag"] == '"%x-%x"' % (int(st.st_mtime), st.st_size), r
        assert r["last_modified"] == formatdate(int(st.st_mtime),
                                                usegmt=True), r
        assert r["not_modified"] == 0, r
        assert r["warc_file"] is None and r["warc_offset"] is None


def test_digests_of_chunked_and_close_delimited_bodies(gatherd,
                                                       fault_server):
    """The digest is over the de-chunked bytes, for chunked and
    close-delimited bodies alike; a body cut at max_body_bytes and a
    truncated one are failures without a digest."""
    f = fault_server
    g = gatherd
    chunked = f.url("/chunked?len=100000")
    closed = f.url("/close?len=70001")
    plain = f.url("/ok?len=5")
    empty = f.url("/ok?len=0")
    big = f.url("/big-body?len=200000")
    cut = f.url("/eof-mid-body")
    g.write_config(fetch={"max_body_bytes": 150000})
    g.write_queue([chunked, closed, plain, empty, big, cut])
    g.once()
    rows = by_url(g)
    assert rows[chunked]["length"] == 100000
    assert rows[chunked]["body_sha256"] == sha256_hex(fault_body(100000))
    assert rows[closed]["length"] == 70001
    assert rows[closed]["body_sha256"] == sha256_hex(fault_body(70001))
    assert rows[plain]["body_sha256"] == sha256_hex(fault_body(5))
    assert rows[empty]["body_sha256"] == sha256_hex(b"")
    for u, kind in ((big, "too_large"), (cut, "truncated")):
        r = rows[u]
        assert (r["state"], r["error"], r["body_sha256"]) == \
            ("failed", kind, None), r


def test_digest_none(gatherd, nginx):
    """[capture] digest = none: no digest computed, nothing recorded."""
    g = gatherd
    g.write_config(capture={"digest": "none"})
    g.write_queue([nginx.url("page.html")])
    g.once()
    r = g.rows()[0]
    assert r["state"] == "done" and r["body_sha256"] is None
    assert r["etag"] is not None


# ====================================================================
# gatherd refetch and the latest view
# ====================================================================

def cli(g, *args):
    return run_cli(g, list(args))


def test_refetch_is_conditional_and_304_is_not_modified(gatherd, nginx,
                                                        fault_server):
    """refetch queues a new row per URL (the old rows stay as history);
    a URL whose last response had an ETag or Last-Modified is fetched
    conditionally, and nginx's 304 is recorded as done, status 304,
    not_modified = 1, with the digest of the response it confirms.  A
    changed file is fetched in full.  `latest` shows one row per URL."""
    g = gatherd
    k = "rf%d" % time.time_ns()
    f = fault_server
    page = nginx.url("page.html?" + k)
    changing = nginx.docroot / ("changing-%s.txt" % k)
    changing.write_bytes(b"version one\n")
    chg = nginx.url(changing.name)
    broken = f.url("/drop?key=" + k)
    g.write_config()
    g.write_queue([page, chg, broken, "not a url"])
    g.once()
    first = by_url(g)
    assert first[page]["status"] == 200 and first[page]["etag"]
    assert first[broken]["error"] == "truncated"

    # A file that changes in between gets a new validator.
    time.sleep(1.1)
    changing.write_bytes(b"version two, longer\n")
    cp = cli(g, "refetch")
    assert cp.returncode == 0, cp.stderr
    assert "queued 3 URLs again" in cp.stderr, cp.stderr
    g.once()
    rows = g.rows()
    assert len(rows) == 7                          # 4 + 3 new
    new = {r["url"]: r for r in rows[4:]}
    r = new[page]
    assert (r["state"], r["status"], r["not_modified"], r["length"]) == \
        ("done", 304, 1, 0), r
    assert r["body_sha256"] == first[page]["body_sha256"], r
    assert r["etag"] == first[page]["etag"]
    r = new[chg]
    assert (r["status"], r["not_modified"], r["length"]) == \
        (200, 0, len(b"version two, longer\n")), r
    assert r["body_sha256"] == sha256_hex(b"version two, longer\n")
    assert r["etag"] != first[chg]["etag"]
    assert new[broken]["error"] == "truncated"
    # The old rows are history, unchanged.
    assert [x["id"] for x in rows[:4]] == [1, 2, 3, 4]
    assert rows[0]["status"] == 200 and rows[0]["not_modified"] == 0

    # latest: one row per URL (the invalid line included), the newest.
    latest = g.query("SELECT * FROM latest ORDER BY id")
    assert sorted(x["url"] for x in latest) == sorted(
        [page, chg, broken, "not a url"])
    by = {x["url"]: x for x in latest}
    assert by[page]["id"] == new[page]["id"]
    assert by["not a url"]["error"] == "invalid_url"
    assert list(latest[0].keys()) == list(rows[0].keys())


def test_refetch_filters_and_dry_run(gatherd, nginx, fault_server):
    g = gatherd
    f = fault_server
    k = "rff%d" % time.time_ns()
    ok1 = nginx.url("one.txt?%s-a" % k)
    ok2 = nginx.url("page.html?%s-b" % k)
    bad = f.url("/drop?key=%s-c" % k)
    g.write_config()
    g.write_queue([ok1, ok2, bad])
    g.once()

    cp = cli(g, "refetch", "--dry-run", "--url-like", "%one.txt%")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.split() == [ok1]
    assert "would queue 1 URL" in cp.stderr
    assert g.count("1") == 3                      # nothing changed
    cp = cli(g, "refetch", "--dry-run", "--state", "failed")
    assert cp.stdout.split() == [bad], cp.stdout
    cp = cli(g, "refetch", "--dry-run", "--error", "truncated")
    assert cp.stdout.split() == [bad], cp.stdout
    cp = cli(g, "refetch", "--dry-run", "--older-than", "1h")
    assert cp.stdout.split() == [] and "would queue 0 URLs" in cp.stderr
    time.sleep(1.2)
    cp = cli(g, "refetch", "--dry-run", "--older-than", "1s")
    assert sorted(cp.stdout.split()) == sorted([ok1, ok2, bad])

    # Usage errors name the argument (exit 2) and change nothing.
    for args, msg in (
            (["--older-than", "3x"], '--older-than "3x" is not a duration'),
            (["--older-than", "-5d"], '--older-than "-5d" is not'),
            (["--error", "nope"], '--error "nope" is not an error kind'),
            (["--state", "done"], 'only "failed"'),
            (["--error", "dns", "--state", "failed"], "not both"),
            (["--keep-latest"], "--keep-latest is not an option of "
                                "refetch")):
        cp = cli(g, "refetch", *args)
        assert cp.returncode == 2, (args, cp.stderr)
        assert msg in cp.stderr, (args, cp.stderr)
    assert g.count("1") == 3

    # Queued once: a second refetch does not double a queued URL.
    assert cli(g, "refetch", "--state", "failed").returncode == 0
    cp = cli(g, "refetch", "--state", "failed")
    assert "queued 0 URLs" in cp.stderr, cp.stderr
    assert g.count("1") == 4


def test_running_daemon_takes_refetched_rows(gatherd, nginx):
    """A running daemon fetches what refetch queued within a second or
    two, without a restart."""
    g = gatherd
    u = nginx.url("one.txt?live%d" % time.time_ns())
    g.write_config()
    g.write_queue([u])
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: g.count("state = 'done'") == 1, 20, what="fetched")
    t0 = time.monotonic()
    cp = cli(g, "refetch")
    assert cp.returncode == 0, cp.stderr
    wait_for(lambda: g.count("state = 'done'") == 2, 10,
             what="the re-fetch")
    assert time.monotonic() - t0 < 3
    rc, _ = g.stop(proc)
    assert rc == 0
    r = g.rows()[1]
    assert (r["status"], r["not_modified"]) == (304, 1), r


# ====================================================================
# gatherd prune
# ====================================================================

def test_prune_while_the_daemon_runs(gatherd, nginx):
    """prune deletes old result rows in small transactions while the
    daemon keeps ingesting and fetching; it never deletes queued rows,
    keeps each URL's latest row with --keep-latest, and says that WARC
    files are left alone."""
    g = gatherd
    k = "pr%d" % time.time_ns()
    old = [nginx.url("one.txt?%s-%d" % (k, i)) for i in range(2500)]
    g.write_config(fetch={"max_in_flight": 32})
    g.write_queue(old)
    g.once(timeout=120)
    assert g.count("state = 'done'") == 2500
    cp = cli(g, "refetch", "--url-like", "%-1%")   # some URLs twice
    n_again = int(re.search(r"queued (\d+) URL", cp.stderr).group(1))
    assert n_again > 100
    g.once(timeout=120)
    time.sleep(1.2)

    proc = g.start()
    g.wait_ready(proc)
    fresh = [nginx.url("one.txt?%s-new%d" % (k, i)) for i in range(300)]
    g.append_raw("".join(u + "\n" for u in fresh[:150]))
    cp = cli(g, "prune", "--older-than", "1s", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    m = re.search(r"would remove (\d+) result rows", cp.stderr)
    assert m and int(m.group(1)) >= 2500, cp.stderr
    cp = cli(g, "prune", "--older-than", "1s", "--keep-latest")
    assert cp.returncode == 0, cp.stderr
    assert "WARC files are left alone" in cp.stderr
    removed = int(re.search(r"removed (\d+) result rows", cp.stderr)
                  .group(1))
    # Each refetched URL loses its older row; the others keep theirs.
    assert removed == n_again, (removed, n_again)
    g.append_raw("".join(u + "\n" for u in fresh[150:]))
    wait_for(lambda: g.count("url LIKE ?", ("%-new%",)) == 300 and
             g.count("state = 'queued'") == 0, 30, what="fresh fetched")
    latest = g.query("SELECT count(*) AS n FROM latest")[0]["n"]
    assert latest == 2800
    # The daemon fetched every new line exactly once through the prune.
    got = [r["url"] for r in g.query(
        "SELECT url FROM urls WHERE url LIKE ? ORDER BY id", ("%-new%",))]
    assert got == fresh
    max_id = g.query("SELECT max(id) AS m FROM urls")[0]["m"]
    cp = cli(g, "prune", "--older-than", "1s")
    assert cp.returncode == 0, cp.stderr
    rc, _ = g.stop(proc)
    assert rc == 0
    # The newest row stays (SQLite would hand its id out again, below the
    # daemon's read cursor); nothing queued was ever touched.
    left = g.query("SELECT id, state FROM results ORDER BY id")
    assert left and left[-1]["id"] == max_id


# ====================================================================
# Request headers, accept_encoding, retry_statuses (issue 12)
# ====================================================================

def test_configured_and_conditional_headers_are_sent(gatherd,
                                                     fault_server):
    """[fetch] header lines go with every request, in order, after
    gatherd's own; Accept-Encoding follows accept_encoding; a re-fetch
    adds If-None-Match / If-Modified-Since after them."""
    f = fault_server
    g = gatherd
    k = "hd%d" % time.time_ns()
    u = f.url("/ok?len=3&key=" + k)
    g.write_config(text="""[gatherd]
queue_file = queue
database = results.db
[fetch]
retries = 0
header = Accept-Language: de-CH, de;q=0.9
header = Cookie: session=abc; theme=dark
accept_encoding = gzip
""")
    g.write_queue([u])
    g.once()
    assert g.rows()[0]["status"] == 200
    lines = f.records(k)[0]["headers"].split("\r\n")
    assert lines[0] == "GET /ok?len=3&key=%s HTTP/1.1" % k, lines
    assert lines[1:] == [
        "Host: 127.0.0.1:%d" % f.port, "User-Agent: gatherd/0.1.0",
        "Accept: */*", "Accept-Encoding: gzip", "Connection: keep-alive",
        "Accept-Language: de-CH, de;q=0.9",
        "Cookie: session=abc; theme=dark", "", ""], lines
    # No validators from /ok: a re-fetch is not conditional.
    assert cli(g, "refetch").returncode == 0
    g.once()
    lines = f.records(k)[1]["headers"].split("\r\n")
    assert not any(l.startswith("If-") for l in lines), lines


def test_gzip_is_decoded_as_it_streams(gatherd, nginx, fault_server):
    """accept_encoding = gzip: nginx compresses, gatherd decodes; length
    is the bytes received, decoded_length the page's size, body_sha256 the
    digest of what was received.  A corrupt or cut stream is
    http_protocol."""
    g = gatherd
    f = fault_server
    big = nginx.url("big.bin?gz")
    page = nginx.url("page.html?gz")
    corrupt = f.url("/gzip?len=50000&corrupt=1")
    cut = f.url("/gzip?len=50000&cut=1")
    fine = f.url("/gzip?len=50000")
    g.write_config(fetch={"accept_encoding": "gzip"})
    g.write_queue([big, page, corrupt, cut, fine])
    g.once()
    rows = by_url(g)
    for u, name in ((big, "big.bin"), (page, "page.html")):
        r = rows[u]
        size = DOCROOT_FILES[name]
        assert r["state"] == "done" and r["status"] == 200, r
        assert r["decoded_length"] == size, r
        assert 0 < r["length"] < size, r           # it was compressed
    r = rows[fine]
    assert (r["decoded_length"], r["state"]) == (50000, "done"), r
    assert 0 < r["length"] < 50000, r
    for u in (corrupt, cut):
        r = rows[u]
        assert (r["state"], r["error"]) == ("failed", "http_protocol"), r
        assert r["error_detail"].startswith("gzip: "), r
    # Identity (the default): nothing to decode, decoded_length = length.
    g2 = gatherd
    g2.write_config()
    g2.write_queue([nginx.url("big.bin?id")], mode="a")
    g2.once()
    r = by_url(g2)[nginx.url("big.bin?id")]
    assert r["length"] == r["decoded_length"] == DOCROOT_FILES["big.bin"]


def test_retry_statuses(gatherd, fault_server):
    """retry_statuses replaces the fixed list: 418 retried when listed,
    503 not retried when not."""
    f = fault_server
    g = gatherd
    k = "rs%d" % time.time_ns()
    teapot = f.url("/flaky?fail=1&code=418&key=%s-a" % k)
    unavailable = f.url("/flaky?fail=1&code=503&key=%s-b" % k)
    g.write_config(fetch={"retries": 2, "retry_backoff_ms": 0,
                          "retry_statuses": "418,429"})
    g.write_queue([teapot, unavailable])
    g.once()
    rows = by_url(g)
    assert (rows[teapot]["status"], rows[teapot]["attempts"]) == (200, 2)
    assert (rows[unavailable]["status"],
            rows[unavailable]["attempts"]) == (503, 1)

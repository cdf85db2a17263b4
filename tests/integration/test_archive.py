"""Archiving what was fetched in WARC files, end to end (issue 11):
gatherd fetches from the private nginx and the fault server with
[capture] warc_dir set; webrecorder's warcio (tests/warc/check.mjs) reads
the files independently; `gatherd cat` gives each row's body back.

The rows must name records that are complete in their files, whatever
happens to the daemon (SIGTERM, kill -9), and a row's body read back must
be the bytes the server sent."""

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DOCROOT_FILES, binary_has_asan, wait_for
from test_warc import records_by_place, run_check, warcio  # noqa: F401


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def fault_body(n):
    """The body the fault server sends for len=n (tests/fault_server.py)."""
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (pattern * (n // len(pattern) + 1))[:n]


def config(g, warc_dir, fetch=None, **capture):
    """gatherd.conf with [capture] warc_dir and the keys given."""
    kv = {"warc_dir": str(warc_dir)}
    kv.update(capture)
    sections = {"capture": kv}
    if fetch:
        sections["fetch"] = fetch
    g.write_config(**sections)


def cat(g, what):
    """`gatherd cat WHAT`: (exit status, stdout bytes, stderr text)."""
    cp = subprocess.run([g.bin, "cat", "-c", str(g.conf), str(what)],
                        capture_output=True, timeout=60, cwd=g.root)
    return cp.returncode, cp.stdout, cp.stderr.decode(errors="replace")


def random_file(nginx, name, size):
    """A file of random bytes in nginx's docroot (made once per session)."""
    p = nginx.docroot / name
    if not p.exists() or p.stat().st_size != size:
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(os.urandom(size))
        tmp.rename(p)
    return p


def warc_files(d):
    return sorted(Path(d).glob("*.warc.gz"))


def test_pages_are_archived_and_read_back(gatherd, nginx, fault_server,
                                          warcio, tmp_path):
    """Every fetched page has a response record where its row says, read by
    warcio with valid digests; the payload is the file nginx served; the
    request goes with it (warc_requests); `gatherd cat` by id and by URL
    gives the same bytes; chunked and close-delimited bodies are kept as
    received and read back de-chunked."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    config(g, wd, warc_requests="true")
    f = fault_server
    urls = [nginx.url(n) for n in sorted(DOCROOT_FILES)]
    chunked, closed = f.url("/chunked?len=100000"), f.url("/close?len=70001")
    urls += [chunked, closed]
    g.write_queue(urls)
    g.once()

    report = run_check(warcio, warc_files(wd), extract=tmp_path / "x")
    assert report["errors"] == []
    places = records_by_place(report)
    rows = {r["url"]: r for r in g.rows()}
    want = {nginx.url(n): (nginx.docroot / n).read_bytes()
            for n in DOCROOT_FILES}
    want[chunked] = fault_body(100000)
    want[closed] = fault_body(70001)
    for url, body in want.items():
        r = rows[url]
        assert r["state"] == "done" and r["status"] == 200, r
        assert r["warc_file"] and r["warc_offset"] is not None, r
        rec = places[(r["warc_file"], r["warc_offset"])]
        assert rec["type"] == "response" and rec["uri"] == url, rec
        assert rec["httpStatus"] == 200
        assert rec["payloadDigest"] == "ok", rec
        assert rec["extractedSha256"] == sha256(body) == r["body_sha256"]
        assert rec["ip"] == "127.0.0.1"
        assert rec["truncated"] is None
        # Its request, right after it, pointing at it.
        reqs = [x for x in places.values() if x["type"] == "request"
                and x["concurrentTo"] == rec["id"]]
        assert len(reqs) == 1 and reqs[0]["uri"] == url, reqs
        rc, out, err = cat(g, r["id"])
        assert rc == 0, err
        assert out == body, url
    rc, out, err = cat(g, nginx.url("page.html"))
    assert rc == 0 and out == want[nginx.url("page.html")], err
    # The chunked response is archived with its framing.
    assert report["files"][0]["records"][0]["type"] == "warcinfo"


def test_redirect_hops_and_failures(gatherd, fault_server, warcio, tmp_path):
    """A redirect's hop is archived too, and the row names the final
    response; a body cut at max_body_bytes is a truncated record named by
    its failed row; a fetch without a response leaves no record, and
    `gatherd cat` says why."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    f = fault_server
    redir = f.url("/redirect?to=/ok%3Flen%3D321")
    big = f.url("/big-body?len=200000")   # Content-Length over the limit
    long = f.url("/close?len=200000")     # no length: cut at the limit
    refused = "http://127.0.0.1:1/nothing"
    config(g, wd, fetch={"max_body_bytes": 150000})
    g.write_queue([redir, big, long, refused])
    g.once()
    rows = {r["url"]: r for r in g.rows()}
    report = run_check(warcio, warc_files(wd))
    assert report["errors"] == []
    places = records_by_place(report)
    uris = [r["uri"] for r in places.values() if r["type"] == "response"]

    r = rows[redir]
    assert r["status"] == 200 and r["redirects"] == 1, r
    rec = places[(r["warc_file"], r["warc_offset"])]
    assert rec["uri"] == r["final_url"] and rec["httpStatus"] == 200
    assert redir in uris  # the 302 hop
    rc, out, _ = cat(g, r["id"])
    assert rc == 0 and out == fault_body(321)

    # Cut short: a truncated record of what came up to the limit (the
    # headers alone when the declared length was over it).
    for url, kept in ((big, 0), (long, 150000)):
        r = rows[url]
        assert r["state"] == "failed" and r["error"] == "too_large", r
        assert r["warc_file"] is not None, r
        rec = places[(r["warc_file"], r["warc_offset"])]
        assert rec["truncated"] == "length" and rec["uri"] == url, rec
        assert rec["httpStatus"] == 200
        rc, out, _ = cat(g, r["id"])
        assert rc == 0 and out == fault_body(200000)[:kept], len(out)

    r = rows[refused]
    assert r["error"] == "connect" and r["warc_file"] is None
    rc, out, err = cat(g, r["id"])
    assert rc == 1 and out == b"" and "no archived response" in err, err
    rc, _, err = cat(g, 999999)
    assert rc == 1 and "no row 999999" in err, err


def test_identical_payloads_become_revisits(gatherd, fault_server, warcio,
                                            tmp_path):
    """With [capture] dedup, a payload identical to one archived earlier
    is an identical-payload-digest revisit referring to it; cat on its row
    serves the payload from the earlier record.  Without dedup both are
    full responses."""
    g = gatherd
    f = fault_server
    urls = [f.url("/ok?len=5000&copy=%d" % i) for i in range(3)]
    for dedup in ("true", "false"):
        wd = tmp_path / ("warc-" + dedup)
        wd.mkdir()
        g.db.unlink(missing_ok=True)
        config(g, wd, dedup=dedup, fetch={"max_per_host": 1})
        g.write_queue(urls)
        g.once()
        rows = {r["url"]: r for r in g.rows()}
        report = run_check(warcio, warc_files(wd))
        assert report["errors"] == []
        places = records_by_place(report)
        recs = [places[(rows[u]["warc_file"], rows[u]["warc_offset"])]
                for u in urls]
        types = sorted(r["type"] for r in recs)
        if dedup == "false":
            assert types == ["response"] * 3
            continue
        assert types == ["response", "revisit", "revisit"], types
        first = next(r for r in recs if r["type"] == "response")
        for r in recs:
            if r["type"] != "revisit":
                continue
            assert r["profile"].endswith("/revisit/identical-payload-digest")
            assert r["refersToUri"] == first["uri"]
            assert r["refersTo"] == first["id"]
            assert r["payloadDigestField"] == first["payloadDigestField"]
        for u in urls:
            rc, out, err = cat(g, rows[u]["id"])
            assert rc == 0 and out == fault_body(5000), err


def test_not_modified_refetch_is_a_revisit(gatherd, nginx, warcio, tmp_path):
    """A 304 to a conditional re-fetch is a server-not-modified revisit of
    the first capture (its URL, date and payload digest); cat on the 304
    row gives the page from the first record."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    config(g, wd)
    url = nginx.url("page.html")
    g.write_queue([url])
    g.once()
    cp = g.run("refetch")
    assert cp.returncode == 0, cp.stderr
    g.once()
    rows = g.rows()
    assert len(rows) == 2 and rows[1]["not_modified"] == 1, rows
    report = run_check(warcio, warc_files(wd))
    assert report["errors"] == []
    places = records_by_place(report)
    first = places[(rows[0]["warc_file"], rows[0]["warc_offset"])]
    rev = places[(rows[1]["warc_file"], rows[1]["warc_offset"])]
    assert rev["type"] == "revisit" and rev["httpStatus"] == 304
    assert rev["profile"].endswith("/revisit/server-not-modified")
    assert rev["refersToUri"] == url and rev["refersToDate"] == first["date"]
    assert rev["refersTo"] == first["id"]
    assert rev["payloadDigestField"] == first["payloadDigestField"]
    assert rows[0]["warc_file"] != rows[1]["warc_file"]  # a new file
    rc, out, err = cat(g, rows[1]["id"])
    assert rc == 0 and out == (nginx.docroot / "page.html").read_bytes(), err


def test_files_roll_over_at_warc_max_bytes(gatherd, nginx, warcio,
                                           tmp_path):
    """Records go to a new file before one would pass warc_max_bytes; a
    record larger than the limit goes alone into a file of its own."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    config(g, wd, warc_max_bytes="1m")
    # Random bytes: gzip cannot shrink them below the limit.
    random_file(nginx, "rand-300k.bin", 300000)
    random_file(nginx, "rand-1500k.bin", 1500000)
    urls = [nginx.url("rand-300k.bin") + "?n=%d" % i for i in range(10)]
    urls.append(nginx.url("rand-1500k.bin"))
    g.write_queue(urls)
    g.once()
    files = warc_files(wd)
    report = run_check(warcio, files)
    assert report["errors"] == []
    assert len(files) >= 4
    for fr in report["files"]:
        caps = [r for r in fr["records"] if r["type"] == "response"]
        assert fr["size"] <= 1 << 20 or len(caps) == 1, fr["file"]
    places = records_by_place(report)
    for r in g.rows():
        assert (r["warc_file"], r["warc_offset"]) in places, r


def test_rows_never_name_a_torn_record(gatherd, nginx, warcio, tmp_path):
    """kill -9 while archiving big bodies: on restart every row that names
    a record names a complete one (warcio reads it, cat gives the file's
    bytes back); at most each file's last record is torn, and the rows
    killed in flight are fetched again into a new file."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    config(g, wd, fetch={"max_in_flight": 8})
    urls = [nginx.url("big.bin") + "?k=%d" % i for i in range(150)]
    g.write_queue(urls)
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: g.count("warc_file IS NOT NULL") >= 10, 60,
             what="some archived rows")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = len(warc_files(wd))
    g.once(timeout=240)
    rows = g.rows()
    assert len(rows) == 150 and all(r["state"] == "done" for r in rows)
    report = run_check(warcio, warc_files(wd))
    assert report["errors"] == []  # a torn last record is not an error
    assert len(warc_files(wd)) > before  # never appended to
    places = records_by_place(report)
    big = (nginx.docroot / "big.bin").read_bytes()
    for r in rows:
        rec = places.get((r["warc_file"], r["warc_offset"]))
        assert rec is not None and rec["type"] == "response", r
        assert rec["extractedSha256"] == sha256(big)
    for r in rows[::25]:
        rc, out, err = cat(g, r["id"])
        assert rc == 0 and out == big, err


def test_sigterm_finishes_the_records_of_the_rows_it_stores(
        gatherd, fault_server, warcio, tmp_path):
    """SIGTERM during slow bodies: the fetches finish, their records are
    written and then named by their rows; the last file is closed whole."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    f = fault_server
    urls = [f.url("/trickle?len=15&ms=100&n=%d" % i) for i in range(6)]
    config(g, wd)
    g.write_queue(urls)
    proc = g.start()
    g.wait_ready(proc)
    time.sleep(0.5)
    rc, _ = g.stop(proc)
    assert rc == 0
    report = run_check(warcio, warc_files(wd))
    assert report["errors"] == []
    assert all(fr["torn"] is None for fr in report["files"])
    places = records_by_place(report)
    done = [r for r in g.rows() if r["state"] == "done"]
    assert done, "the in-flight fetches were not finished"
    for r in done:
        assert (r["warc_file"], r["warc_offset"]) in places, r


def test_a_warc_dir_that_is_not_there_stops_the_start(gatherd, tmp_path):
    g = gatherd
    config(g, tmp_path / "missing")
    g.write_queue([])
    cp = g.run("--once")
    assert cp.returncode == 2, cp.stderr  # a configuration error
    assert "warc_dir" in cp.stderr and str(tmp_path / "missing") in \
        cp.stderr, cp.stderr
    assert "finished" not in cp.stderr


def test_small_pages_wait_for_the_archive(gatherd, nginx):
    """Pages that come whole in a read or two never pause in the tap:
    while gzip is behind, new fetches must not start, or what waits for
    the disk grows with the run (26 MB of 14 KB pages were seen waiting,
    against the 2 MiB cap).  What waited at the most stays within the cap
    plus what the fetches already in flight bring."""
    g = gatherd
    wd = g.root / "warc"
    wd.mkdir()
    size, n, in_flight = 48 << 10, 3000, 32
    page = random_file(nginx, "small48k.bin", size)
    config(g, wd, fetch={"max_in_flight": in_flight,
                         "max_per_host": in_flight})
    g.write_queue([nginx.url("small48k.bin") + "?i=%d" % i
                   for i in range(n)])
    cp = g.run("--once", timeout=300)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rows = g.rows()
    assert len(rows) == n and all(
        r["state"] == "done" and r["length"] == size for r in rows), \
        [r for r in rows if r["state"] != "done"][:3]
    assert {r["body_sha256"] for r in rows} == {
        sha256(page.read_bytes())}
    m = re.search(r"held new ones back (\d+) times, at most ([\d.]+) MB "
                  r"waiting for it", cp.stderr)
    assert m, cp.stderr[-2000:]
    holds, peak_mb = int(m.group(1)), float(m.group(2))
    # gzip (on the worker) is slower than loopback: the archive fell
    # behind, and new fetches waited for it.
    assert holds > 0, cp.stderr[-2000:]
    # The cap (2 MiB), and each fetch in flight may finish its page, in
    # a chunk of up to 64 KiB (CAPTURE_CHUNK in src/capture.c).
    bound = (2 << 20) + in_flight * (64 << 10)
    assert peak_mb * 1e6 <= bound, (peak_mb, bound)


def test_cat_without_an_archive_configured(gatherd):
    g = gatherd
    g.write_config()
    rc, out, err = cat(g, 1)
    assert rc == 2 and "warc_dir is not set" in err, err


def test_slow_disk_pauses_fetches_and_memory_stays_bounded(
        gatherd, nginx, tmp_path):
    """Bodies arrive much faster than gzip can write them: the capture
    pauses its fetches instead of holding what waits for the disk, so the
    daemon's peak RSS stays far below the bytes in flight."""
    g = gatherd
    wd = tmp_path / "warc"
    wd.mkdir()
    size = 24 << 20
    big = random_file(nginx, "huge.bin", size)
    config(g, wd, fetch={"max_in_flight": 8, "max_per_host": 8,
                         "max_body_bytes": size})
    g.write_queue([nginx.url("huge.bin") + "?i=%d" % i for i in range(8)])
    cp = g.run("--once", timeout=300)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rows = g.rows()
    assert all(r["state"] == "done" for r in rows), rows
    assert all(r["body_sha256"] == sha256(big.read_bytes()) for r in rows)
    # The finished line reports the peak RSS.
    m = re.search(r"peak RSS (\d+) MB", cp.stderr)
    assert m, cp.stderr[-2000:]
    peak_mb = int(m.group(1))
    m = re.search(r"paused (\d+) fetches for the disk", cp.stderr)
    assert m and int(m.group(1)) > 0, cp.stderr[-2000:]
    # About 14 MB here; without the pauses, 35 MB and more (as much as
    # the network outpaces gzip).  ASan's shadow memory says nothing.
    if not binary_has_asan(g.bin):
        assert peak_mb < 24, "peak RSS %s MB for 8 x 24 MB bodies" % peak_mb

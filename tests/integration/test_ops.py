"""Operations: queue-file rotation (rename and copy-truncate) during a run
and while stopped, SIGTERM during a large run, SIGHUP reloads (good and
bad), `gatherd submit`, `gatherd status`, the log format (journal
priorities, timestamps, stats lines) and a full disk under the database.

Random choices come from a seed printed in the test output (replay with
GATHERD_TEST_SEED=<seed>); workloads shrink for the sanitizer build."""

import calendar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from conftest import free_tcp_port, parse_iso, wait_for
from ops_helpers import (IS_SLOW_BUILD, Mount, assert_all_lines_valid_urls,
                         assert_exactly_once, assert_rows_are_prefix,
                         assert_rows_consistent, cpu_seconds, db_rows,
                         expected_length, make_rng, queue_file_lines,
                         run_cli, scaled, submit)

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
FILES = ["one.txt", "page.html", "empty.txt"]
# Extra seconds allowed beyond gatherd's own deadlines.
MARGIN = 6.0 if IS_SLOW_BUILD else 3.0


def nginx_urls(nginx, tag, n, pad=True):
    return [nginx.url("%s?%s=%d%s" % (FILES[i % len(FILES)], tag, i,
                                      "&pad=" + "p" * (i * 37 % 200)
                                      if pad else ""),
                      host=HOSTS[i % len(HOSTS)])
            for i in range(n)]


def append_lines(path, urls):
    with open(path, "a") as f:
        f.write("".join(u + "\n" for u in urls))


def request_uri(url):
    p = urlsplit(url)
    return p.path + ("?" + p.query if p.query else "")


def n_finished(g):
    return g.count("state != 'queued'")


def wait_all_finished(g, n, timeout, what="all rows finished"):
    wait_for(lambda: g.count("1") == n and n_finished(g) == n,
             timeout, interval=0.2, what=what)


def assert_all_done_ok(rows, what=""):
    bad = [r for r in rows
           if not (r["state"] == "done" and r["status"] == 200 and
                   r["length"] == expected_length(r["url"]))]
    assert not bad, "%s: %d rows not done with the right length, e.g. %r" % (
        what, len(bad), bad[:3])


def assert_fetched_once(nginx, since, urls):
    """nginx saw each URL exactly once after log offset `since` (a fetch
    repeated without a crash would mean a line was read twice or a result
    thrown away)."""
    seen = Counter(e["uri"] for e in nginx.log_entries(since))
    want = Counter(request_uri(u) for u in urls)
    twice = [u for u, n in seen.items() if n > 1 and u in want]
    missing = [u for u in want if u not in seen]
    assert not twice and not missing, (
        "%d URLs fetched more than once (e.g. %r), %d never fetched (e.g. %r)"
        % (len(twice), twice[:3], len(missing), missing[:3]))


# ================================================================ rotation

def test_rotation_rename_during_run(gatherd, nginx):
    """logrotate's default: rename the file, a late writer still appends to
    the old one, then a new file appears.  Twice, while fetching."""
    g = gatherd
    rng, seed = make_rng("test_rotation_rename_during_run")
    g.write_config(gatherd={"stats_interval_s": 1},
                   fetch={"max_in_flight": 32, "max_per_host": 8})
    A = nginx_urls(nginx, "ra", scaled(20000, 4000))
    B = nginx_urls(nginx, "rb", 300)
    C = nginx_urls(nginx, "rc", scaled(3000, 1000))
    D = nginx_urls(nginx, "rd", 300)
    E = nginx_urls(nginx, "re", 1000)
    g.write_queue(A)
    mark = nginx.log_mark()
    proc = g.start()
    g.wait_ready(proc)

    # First rotation soon after start: likely while A is still being read.
    time.sleep(rng.uniform(0.0, 0.3))
    os.rename(g.queue, g.root / "queue.1")
    print("rotation 1: %d rows ingested, %d finished"
          % (g.count("1"), n_finished(g)))
    append_lines(g.root / "queue.1", B[:150])   # the late writer
    time.sleep(0.05)
    append_lines(g.root / "queue.1", B[150:])
    time.sleep(0.2)
    append_lines(g.queue, C)                     # creates the new file

    # Second rotation once the new file is being read.
    wait_for(lambda: g.count("1") > len(A) + len(B), 60,
             what="lines of the new queue file ingested")
    os.rename(g.queue, g.root / "queue.2")
    print("rotation 2: %d rows ingested, %d finished"
          % (g.count("1"), n_finished(g)))
    append_lines(g.root / "queue.2", D)
    time.sleep(0.2)
    append_lines(g.queue, E)

    want = A + B + C + D + E
    wait_all_finished(g, len(want), 120)
    rows = db_rows(g)
    # The old file is finished before the new one is read: the rows are
    # exactly the lines of queue.1, then queue.2, then queue, in order.
    assert_exactly_once(rows, want, "after two rotations (seed %d)" % seed)
    assert_rows_consistent(rows)
    assert_all_done_ok(rows)
    assert_fetched_once(nginx, mark, want)
    rc, _ = g.stop(proc)
    assert rc == 0
    err = g.stderr_of(proc)
    assert err.count("was rotated") == 2, err[-3000:]


def test_rotation_copy_truncate_during_run(gatherd, nginx):
    """logrotate's copytruncate: `cp queue queue.1 && : > queue`, then more
    lines are appended; also while gatherd is stopped."""
    g = gatherd
    g.write_config(gatherd={"stats_interval_s": 1},
                   fetch={"max_in_flight": 32, "max_per_host": 8})
    A = nginx_urls(nginx, "ta", scaled(10000, 3000))
    B = nginx_urls(nginx, "tb", 500, pad=False)
    C = nginx_urls(nginx, "tc", 1500)
    D = nginx_urls(nginx, "td", 200, pad=False)
    g.write_queue(A)
    mark = nginx.log_mark()
    proc = g.start()
    g.wait_ready(proc)

    # Copy-truncate has an inherent race: a line appended after `cp` read
    # the file and before the truncation is in neither gatherd's view nor
    # (maybe) the copy.  So the test appends nothing in that window, and
    # truncates once gatherd has taken every line (what was not ingested
    # when the file is emptied is gone for any reader).
    wait_for(lambda: g.count("1") == len(A), 60, what="A ingested")
    print("copy-truncate 1: %d of %d rows finished" % (n_finished(g), len(A)))
    subprocess.run(["sh", "-c", "cp queue queue.1 && : > queue"],
                   cwd=g.root, check=True, timeout=30)
    append_lines(g.queue, B)          # right away: shorter than A was
    wait_all_finished(g, len(A) + len(B), 120)
    assert_exactly_once(db_rows(g), A + B, "after copy-truncate 1")

    # Again while idle; this time more is appended (more bytes than the
    # file had) once gatherd has noticed the truncation.
    subprocess.run(["sh", "-c", "cp queue queue.1 && : > queue"],
                   cwd=g.root, check=True, timeout=30)
    wait_for(lambda: g.stderr_of(proc).count("was truncated") >= 2, 10,
             what="second truncation logged",
             detail=lambda: g.diagnose(proc))
    append_lines(g.queue, C)
    wait_all_finished(g, len(A) + len(B) + len(C), 120)
    assert_exactly_once(db_rows(g), A + B + C, "after copy-truncate 2")
    rc, _ = g.stop(proc)
    assert rc == 0

    # While stopped: the stored offset is past the end of the emptied file
    # (D is shorter than C, so gatherd can tell; a file that regrew past
    # the old offset while gatherd was stopped is indistinguishable from
    # one that was appended to).
    subprocess.run(["sh", "-c", "cp queue queue.1 && : > queue"],
                   cwd=g.root, check=True, timeout=30)
    append_lines(g.queue, D)
    cp, _ = g.once(timeout=120)
    want = A + B + C + D
    rows = db_rows(g)
    assert_exactly_once(rows, want, "after copy-truncate while stopped")
    assert_rows_consistent(rows)
    assert_all_done_ok(rows)
    assert_fetched_once(nginx, mark, want)


def test_copy_truncate_seen_then_restart(gatherd, nginx):
    """gatherd notices a copy-truncate (and logs it), is then stopped
    before any new line arrives, and producers append while it is down:
    the truncation it saw must not be forgotten, so the new content is
    read from its start (not from the offset the old content ended at)."""
    g = gatherd
    g.write_config(fetch={"max_in_flight": 32, "max_per_host": 8})
    A = nginx_urls(nginx, "ka", 300)
    B = nginx_urls(nginx, "kb", 900)           # more bytes than A
    g.write_queue(A)
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, len(A), 60)
    subprocess.run(["sh", "-c", "cp queue queue.1 && : > queue"],
                   cwd=g.root, check=True, timeout=30)
    g.wait_log(proc, "was truncated", 10)
    rc, _ = g.stop(proc)
    assert rc == 0
    append_lines(g.queue, B)
    g.once(timeout=60)
    rows = db_rows(g)
    assert_exactly_once(rows, A + B, "lines appended after a truncation "
                        "gatherd had seen, then a restart")
    assert_all_done_ok(rows)


def test_truncation_during_the_check_is_named_truncated(gatherd, nginx):
    """copytruncate's `: > queue` landing between gatherd's fstat() of the
    queue file and its reads of the bytes it had read: the size it saw was
    the old one, the bytes are gone.  It is a truncation and is logged as
    one ("was truncated"), not as a rewrite.  The window is widened by
    delaying the return of the daemon's fstat calls (strace fault
    injection on its main thread), so the race is always hit; it used to
    be hit now and then by the copy-truncate tests above."""
    if shutil.which("strace") is None:
        pytest.skip("strace is needed to delay the daemon's fstat")
    g = gatherd
    g.write_config(fetch={"retries": 0, "robots": "false"})
    A = nginx_urls(nginx, "tt", 50)
    g.write_queue(A)
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, len(A), 60)
    tracer = subprocess.Popen(
        ["strace", "-p", str(proc.pid), "-qq", "-o", "/dev/null", "-e",
         "trace=fstat,newfstatat", "-e",
         "inject=fstat,newfstatat:delay_exit=700000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # attached (and one poll's fstat delayed)
        assert tracer.poll() is None, tracer.stderr.read()
        # cp wakes the daemon (a new file in the directory): its fstat
        # sees the old size and returns late; the truncation comes while
        # it is held.
        subprocess.run(["sh", "-c", "cp queue queue.1 && sleep 0.2 && "
                        ": > queue"], cwd=g.root, check=True, timeout=30)
        g.wait_log(proc, "was truncated", 15)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    err = g.stderr_of(proc)
    assert "was rewritten" not in err, err[-3000:]
    rc, _ = g.stop(proc)
    assert rc == 0


def test_stop_while_rewound_file_is_stored(gatherd, nginx):
    """SIGTERM while the offset 0 of a truncated queue file is being
    stored (an ingest of no lines): gatherd exits once it is stored, and
    does not sit out shutdown_timeout_ms with nothing in flight.  The
    database is write-locked by the test so that the ingest is surely
    under way when the signal arrives."""
    g = gatherd
    g.write_config(gatherd={"queue_file": "queue", "database": "results.db",
                            "log_level": "info",
                            "shutdown_timeout_ms": 30000},
                   fetch={"retries": 0, "robots": "false"})
    A = nginx_urls(nginx, "kr", 20)
    g.write_queue(A)
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, len(A), 60)
    con = sqlite3.connect(str(g.db), timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        g.queue.write_text("")
        g.wait_log(proc, "was truncated", 10)
        proc.send_signal(signal.SIGTERM)
        g.wait_log(proc, "stopping", 10)
        time.sleep(0.3)   # the daemon waits for the ingest, not the lock
        assert proc.poll() is None
    finally:
        con.execute("ROLLBACK")
        con.close()
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    err = g.stderr_of(proc)
    assert rc == 0, err[-3000:]
    assert "aborting" not in err, err[-3000:]
    assert took < 5, "gatherd took %.1f s to exit after the lock was " \
        "released (shutdown_timeout_ms is 30 s, nothing was in flight):" \
        "\n%s" % (took, err[-3000:])
    # The rewind was stored: lines written now are read from offset 0.
    B = nginx_urls(nginx, "ks", 5, pad=False)
    append_lines(g.queue, B)
    g.once(timeout=60)
    assert_exactly_once(db_rows(g), A + B, "after a rewind stored at stop")


def test_rotation_while_stopped(gatherd, nginx):
    g = gatherd
    rng, seed = make_rng("test_rotation_while_stopped")
    g.write_config(fetch={"max_in_flight": 32, "max_per_host": 8})
    A = nginx_urls(nginx, "sa", 3000)
    B1 = nginx_urls(nginx, "sb1", 200)
    B2 = nginx_urls(nginx, "sb2", 200)
    C = nginx_urls(nginx, "sc", 500)
    F = nginx_urls(nginx, "sf", scaled(8000, 3000))
    G = nginx_urls(nginx, "sg", 300)
    H = nginx_urls(nginx, "sh", 300)
    g.write_queue(A)
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, len(A), 60)
    rc, _ = g.stop(proc)
    assert rc == 0

    # Stopped: lines appended, then rotated, the late writer appends to
    # the old file, and the new file gets lines too.
    append_lines(g.queue, B1)
    os.rename(g.queue, g.root / "queue.1")
    append_lines(g.root / "queue.1", B2)
    append_lines(g.queue, C)
    proc = g.start()
    g.wait_ready(proc)
    want = A + B1 + B2 + C
    wait_all_finished(g, len(want), 60)
    assert_exactly_once(db_rows(g), want, "after rotation while stopped")
    assert "finishing rotated queue file" in g.stderr_of(proc)
    rc, _ = g.stop(proc)
    assert rc == 0

    # Again, but gatherd dies (SIGKILL) while it ingests F, and the file is
    # rotated before the restart.
    append_lines(g.queue, F)
    proc = g.start()
    g.wait_ready(proc)
    time.sleep(rng.uniform(0.0, 0.2))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    print("killed with %d of %d rows ingested (seed %d)"
          % (g.count("1"), len(want) + len(F), seed))
    os.rename(g.queue, g.root / "queue.2")
    append_lines(g.root / "queue.2", G)
    append_lines(g.queue, H)
    g.once(timeout=120)
    want += F + G + H
    rows = db_rows(g)
    assert_exactly_once(rows, want, "after kill -9 and rotation while "
                        "stopped (seed %d)" % seed)
    assert_rows_consistent(rows)
    assert_all_done_ok(rows)


def test_queue_deleted_and_recreated_while_stopped(gatherd, nginx, mounts):
    """The queue file is removed while gatherd is stopped and producers
    create a new one.  File systems such as ext4 hand the freed inode
    number to the next file created, so (device, inode) alone does not
    tell the new file from the old one: the new file must still be read
    from its start, not from the old file's offset.  (The queue lives on
    a private ext4 image so that no other process takes the inode.)"""
    g = gatherd
    fs = mounts(g.root / "ext4", 8 << 20, fstype="ext4")
    g.queue = fs.path / "queue"
    g.write_config(gatherd={"queue_file": str(g.queue)},
                   fetch={"max_in_flight": 32, "max_per_host": 8})
    A = nginx_urls(nginx, "da", 200)
    B = nginx_urls(nginx, "db", 600)          # more bytes than A
    g.write_queue(A)
    g.once(timeout=60)
    old = os.stat(g.queue)
    os.unlink(g.queue)
    append_lines(g.queue, B)
    new = os.stat(g.queue)
    reused = (new.st_dev, new.st_ino) == (old.st_dev, old.st_ino)
    print("inode %d -> %d (%s)" % (old.st_ino, new.st_ino,
                                   "reused" if reused else "not reused"))
    cp, _ = g.once(timeout=60)
    rows = db_rows(g)
    assert_exactly_once(rows, A + B, "new queue file after the old one was "
                        "deleted (inode %s)" % ("reused: same (dev, ino) as "
                                                "the old file, size %d > "
                                                "stored offset %d"
                                                % (new.st_size, old.st_size)
                                                if reused else "not reused"))


@pytest.mark.xfail(strict=True, reason=(
    "known limitation: gatherd follows one rotation hop; a file rotated "
    "twice while gatherd was stopped (queue -> queue.1 -> queue.2, with "
    "lines in the intermediate file) is skipped without a warning"))
def test_two_rotations_while_stopped(gatherd, nginx):
    """logrotate ran twice while gatherd was down (daily rotation, two
    days): the intermediate file's lines must be read too."""
    g = gatherd
    g.write_config()
    A, B, C, D = (nginx_urls(nginx, t, 100) for t in ("wa", "wb", "wc", "wd"))
    g.write_queue(A)
    g.once(timeout=60)
    append_lines(g.queue, B)
    os.rename(g.queue, g.root / "queue.1")            # day 1
    append_lines(g.queue, C)
    os.rename(g.root / "queue.1", g.root / "queue.2")  # day 2
    os.rename(g.queue, g.root / "queue.1")
    append_lines(g.queue, D)
    g.once(timeout=60)
    assert_exactly_once(db_rows(g), A + B + C + D, "after two rotations "
                        "while stopped")


# ================================================================ SIGTERM

def log_time_ms(stderr, text):
    """The Unix time in milliseconds at the start of gatherd's first stderr
    line containing `text` (lines begin "YYYY-MM-DDTHH:MM:SS.mmmZ " when
    not under systemd: src/log.c, whole milliseconds, truncated)."""
    for line in stderr.splitlines():
        if text in line:
            m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z ", line)
            assert m, "no timestamp on %r" % line
            return (calendar.timegm(time.strptime(m.group(1),
                                                  "%Y-%m-%dT%H:%M:%S"))
                    * 1000 + int(m.group(2)))
    pytest.fail("no %r line in gatherd's stderr" % text)


def test_sigterm_during_large_run(gatherd, nginx, fault_server, monkeypatch):
    g, f = gatherd, fault_server
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)  # timestamped lines
    fast = nginx_urls(nginx, "ga", scaled(20000, 4000))
    slow = [f.url("/slow?ms=30000&len=7&s=%d" % i, host="127.0.0.5")
            for i in range(16)]
    lines = fast[:200] + slow + fast[200:]
    g.write_config(fetch={"max_in_flight": 32, "max_per_host": 16,
                          "request_timeout_ms": 120000,
                          "idle_timeout_ms": 120000})
    g.write_queue(lines)
    mark = nginx.log_mark()
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: f.stats()["by_ip"].get("127.0.0.5", {}).get("current")
             == 16, 30, what="16 slow requests in flight")
    wait_for(lambda: n_finished(g) >= min(2000, len(fast) // 4), 60,
             what="part of the run done")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc, _ = g.stop(proc, 0, timeout=40)      # (signal 0: already sent)
    took = time.monotonic() - t0
    err = g.stderr_of(proc)
    assert rc == 0, err[-3000:]
    # 10 s for in-flight fetches, then their rows stay queued.
    assert took <= 10 + MARGIN, "SIGTERM took %.1fs" % took
    assert "SIGTERM: stopping" in err

    rows = db_rows(g, "*")
    assert_rows_are_prefix(rows, lines, "after SIGTERM")
    assert_rows_consistent(rows, "after SIGTERM")
    by_url = {r["url"]: r for r in rows}
    for u in slow:
        r = by_url[u]
        assert r["state"] == "queued" and r["status"] is None and \
            r["error"] is None, r
    n_queued = sum(1 for r in rows if r["state"] == "queued")
    assert n_queued > len(slow), "the run was not cut short: %d queued" % (
        n_queued)
    # Every response nginx sent was recorded before exit (flushed).
    served = nginx.log_entries(mark)
    done_uris = {request_uri(r["url"]) for r in rows if r["state"] == "done"}
    lost = [e["uri"] for e in served if e["uri"] not in done_uris]
    assert not lost, ("%d responses nginx sent were not recorded, e.g. %r"
                      % (len(lost), lost[:3]))

    # No new work was taken after gatherd handled SIGTERM: only the fetches
    # in flight then went on.  "Then" is when gatherd logged the stop, not
    # when the test sent the signal (requests started in between are fair).
    t_stop = log_time_ms(err, "SIGTERM: stopping")
    # When each fetch started, by gatherd's own clock (fetched_at minus
    # elapsed_ms): the log line, fetched_at and elapsed_ms are each whole
    # milliseconds, truncated, so a fetch started before the line can come
    # out up to 1 ms after it, never 2.  nginx's start times cannot serve
    # here: nginx stamps a request when its worker wakes to read it, which
    # trails the start of the fetch by a turn of gatherd's loop (the write)
    # plus however long the scheduler takes to run nginx: the 16 fetches
    # gatherd started just before the stop line reach nginx 1 ms after it
    # in about half the runs, and nothing bounds that delay.
    late = []
    for r in rows:
        if r["state"] == "queued":
            continue
        assert r["elapsed_ms"] is not None and r["elapsed_ms"] >= 0, r
        started = round(parse_iso(r["fetched_at"]) * 1000) - r["elapsed_ms"]
        if started > t_stop + 1:
            late.append((started - t_stop, r["url"]))
    assert not late, ("%d fetches started after 'SIGTERM: stopping' "
                      "(ms after it, URL), e.g. %r" % (len(late), late[:3]))
    # nginx's side, independently: a request it was still serving after the
    # stop line (logged, with its cached clock that never runs ahead, in a
    # later millisecond) had not been answered then, so it was one of
    # gatherd's in-flight fetches; the 16 slow ones hold 16 of the 32 slots.
    after = [e for e in served if e["end_ms"] > t_stop]
    assert len(after) <= 32 - len(slow), (
        "nginx served %d requests after 'SIGTERM: stopping', more than the "
        "%d that can have been in flight, e.g. %r"
        % (len(after), 32 - len(slow), after[:3]))
    print("SIGTERM: exit after %.1fs, %d rows finished, %d queued"
          % (took, len(rows) - n_queued, n_queued))

    # The next run completes the unfinished rows; finished ones are kept.
    f.set_slow_scale(0)
    g.once(timeout=120)
    rows2 = db_rows(g, "*")
    assert_exactly_once(rows2, lines, "after the next run")
    assert_rows_consistent(rows2)
    before = {r["id"]: r for r in rows if r["state"] != "queued"}
    changed = [(before[r["id"]], r) for r in rows2
               if r["id"] in before and r != before[r["id"]]]
    assert not changed, "finished rows were rewritten: %r" % changed[:2]
    for r in rows2:
        if "/slow" in r["url"]:
            assert r["state"] == "done" and r["length"] == 7, r
        else:
            assert r["state"] == "done" and r["status"] == 200 and \
                r["length"] == expected_length(r["url"]), r


# ================================================================ SIGHUP

def hup_config(max_in_flight=2, max_per_host=100, log_level="info",
               broken=False):
    text = ("[gatherd]\nqueue_file = queue\ndatabase = results.db\n"
            "log_level = %s\nstats_interval_s = 1\n"
            "%s\nretries = 0\nrobots = false\nmax_in_flight = %d\n"
            "max_per_host = %d\n"
            "request_timeout_ms = 60000\nidle_timeout_ms = 60000\n"
            % (log_level, "[fetch" if broken else "[fetch]", max_in_flight,
               max_per_host))
    return text


def test_sighup_reload_good_and_bad(gatherd, fault_server):
    g, f = gatherd, fault_server
    ip = "127.0.0.2"

    def cur():
        return f.stats()["by_ip"].get(ip, {}).get("current", 0)

    urls = [f.url("/slow?ms=1000&len=%d&h=%d" % (10 + i, i), host=ip)
            for i in range(30)]
    later = [f.url("/slow?ms=1000&len=%d&later=%d" % (50 + i, i), host=ip)
             for i in range(6)]
    g.write_config(hup_config(max_in_flight=2))
    g.write_queue(urls)
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: cur() == 2, 20, what="2 requests in flight")

    # Two invalid files: a syntax error, and a valid max_in_flight = 8
    # next to an out-of-range value (must not be half applied).
    for n, text in enumerate([hup_config(max_in_flight=8, broken=True),
                              hup_config(max_in_flight=8, max_per_host=0)]):
        g.write_config(text)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: g.stderr_of(proc).count("reload refused") == n + 1,
                 10, what="reload refused #%d" % (n + 1))
    err = g.stderr_of(proc)
    assert "configuration reloaded" not in err
    refused = [l for l in err.splitlines() if "reload refused" in l]
    assert "syntax error" in refused[0] and "max_per_host" in refused[1], \
        refused
    append_lines(g.queue, later)
    finished_before = n_finished(g)
    samples = []
    t_end = time.monotonic() + 2.5
    while time.monotonic() < t_end:
        samples.append(cur())
        assert proc.poll() is None, "gatherd exited after a bad reload"
        time.sleep(0.1)
    assert max(samples) <= 2, "old limit not kept: in flight %r" % samples
    assert n_finished(g) > finished_before, "no progress after bad reloads"

    # A good file: more in flight at once, debug logging; nothing that was
    # in flight is dropped.
    in_flight_at_reload = cur()
    g.write_config(hup_config(max_in_flight=8, log_level="debug"))
    proc.send_signal(signal.SIGHUP)
    g.wait_log(proc, "configuration reloaded", 10)
    wait_for(lambda: cur() == 8, 10, what="8 requests in flight after reload")
    want = urls + later
    wait_all_finished(g, len(want), 60)
    rc, _ = g.stop(proc)
    assert rc == 0
    err = g.stderr_of(proc)
    after = err[err.index("configuration reloaded"):]
    assert " debug: " in after, "log_level=debug not applied by SIGHUP"
    rows = db_rows(g, "*")
    assert_exactly_once(rows, want)
    for r in rows:
        assert r["state"] == "done" and r["status"] == 200 and \
            r["attempts"] == 1, r
        assert r["length"] == int(re.search(r"len=(\d+)", r["url"])[1]), r
    st = f.stats()
    assert st["by_ip"][ip]["total"] == len(want), st["by_ip"][ip]
    assert set(st["by_target"].values()) == {1}, "a request was repeated"
    assert st["by_ip"][ip]["max_concurrent"] == 8, st["by_ip"][ip]
    print("in flight at the good reload: %d" % in_flight_at_reload)


# ================================================================ submit

def test_submit_args_valid_and_invalid(gatherd):
    g = gatherd
    g.write_config()
    good = ["http://127.0.0.1:8080/a?x=1", "https://example.test/b",
            "http://[::1]:81/c"]
    bad = ["ftp://127.0.0.1/f", "not a url", "http://127.0.0.1:99999/",
           "http://user:pw@127.0.0.1/"]
    args = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3]]
    cp = submit(g, args)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert g.queue.read_text() == "".join(u + "\n" for u in good)
    rejected = [l for l in cp.stderr.splitlines() if "rejected \"" in l]
    assert len(rejected) == len(bad), cp.stderr
    for b, line in zip(bad, rejected):
        assert b in line, (b, line)
    assert "queued 3 URLs" in cp.stderr, cp.stderr

    # Only valid ones: exit 0, appended after the earlier lines.
    more = ["http://127.0.0.2/more", "http://127.0.0.3:9/x#frag"]
    cp = submit(g, more)
    assert cp.returncode == 0, cp.stderr
    assert queue_file_lines(g.queue) == good + more
    # No URL at all: usage error, nothing written.
    cp = run_cli(g, ["submit"])
    assert cp.returncode == 2 and cp.stderr.strip(), cp.stderr
    assert queue_file_lines(g.queue) == good + more


def test_submit_stdin(gatherd):
    g = gatherd
    g.write_config()
    data = ("http://127.0.0.1/one\n"
            "\n"
            "# a comment\n"
            "   http://127.0.0.1/two   \n"
            "http://127.0.0.1/three\r\n"
            "ftp://nope/\n"
            "http://127.0.0.1/four")          # no final newline
    cp = run_cli(g, ["submit", "-"], stdin=data.encode())
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "line 6" in cp.stderr and "ftp://nope/" in cp.stderr, cp.stderr
    assert g.queue.read_text() == (
        "http://127.0.0.1/one\nhttp://127.0.0.1/two\n"
        "http://127.0.0.1/three\nhttp://127.0.0.1/four\n")
    cp = run_cli(g, ["submit", "-"],
                 stdin=b"http://127.0.0.1/five\nhttp://127.0.0.1/six\n")
    assert cp.returncode == 0, cp.stderr
    assert queue_file_lines(g.queue)[-2:] == ["http://127.0.0.1/five",
                                              "http://127.0.0.1/six"]
    assert_all_lines_valid_urls(g.queue)


def test_submit_concurrent_no_interleaving(gatherd):
    """Several submitters at once, each writing well over the 1 MiB
    buffer (so several locked writes each), URLs of very different
    lengths: every line of the file is one whole URL."""
    g = gatherd
    rng, seed = make_rng("test_submit_concurrent_no_interleaving")
    g.write_config()
    n_sub, per = 8, scaled(3000, 1000)
    expected = []
    procs = []
    for s in range(n_sub):
        urls = ["http://127.0.0.%d:8080/s%d/%d?q=%s" % (
            1 + s % 4, s, i, "x" * rng.choice([0, 10, 100, 1000, 4000]))
            for i in range(per)]
        expected.append(urls)
        p = subprocess.Popen([g.bin, "submit", "-c", str(g.conf), "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=g.root)
        procs.append(p)
    threads = []
    outs = [None] * n_sub
    try:
        for s, p in enumerate(procs):
            data = "".join(u + "\n" for u in expected[s]).encode()

            def feed(s=s, p=p, data=data):
                outs[s] = p.communicate(data, timeout=120)
            t = threading.Thread(target=feed)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(timeout=150)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    for s, p in enumerate(procs):
        assert p.returncode == 0, (s, p.returncode, outs[s])
    assert_all_lines_valid_urls(g.queue)
    lines = queue_file_lines(g.queue)
    assert Counter(lines) == Counter(u for urls in expected for u in urls)
    for s, urls in enumerate(expected):
        mine = set(urls)
        assert [u for u in lines if u in mine] == urls, \
            "submitter %d's lines out of order" % s


@pytest.fixture
def mounts(gatherd):
    """Mount helper: every tmpfs mounted through it is unmounted at
    teardown, after the test's gatherd processes are stopped."""
    made = []

    def mount(path, size, extra="", fstype="tmpfs"):
        m = Mount(path, size, extra, fstype)
        if not m.mounted:
            pytest.skip("cannot mount a %s here (%s): %s"
                        % (fstype, path, m.error))
        made.append(m)
        return m
    try:
        yield mount
    finally:
        try:
            gatherd.cleanup()
        finally:
            for m in reversed(made):
                m.close()


def test_submit_to_read_only_dir(gatherd, mounts):
    g = gatherd
    ro = mounts(g.root / "ro", "1m")
    (ro.path / "queue").write_text("http://127.0.0.1/already\n")
    ro.remount("ro")
    for name in ("queue", "new-queue"):
        path = ro.path / name
        g.write_config(gatherd={"queue_file": str(path)})
        before = path.read_bytes() if path.exists() else None
        cp = submit(g, ["http://127.0.0.1/x", "http://127.0.0.1/y"])
        assert cp.returncode == 1, (name, cp.returncode, cp.stderr)
        assert str(path) in cp.stderr and \
            "Read-only file system" in cp.stderr, cp.stderr
        assert "not queued" in cp.stderr, cp.stderr
        assert (path.read_bytes() if path.exists() else None) == before


# ================================================================ status

def status_json(g):
    cp = run_cli(g, ["status", "--json"], timeout=30)
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    return json.loads(cp.stdout)


def db_status(g):
    """What `status` should say, computed from the database."""
    q = g.query
    counts = {r["state"]: r["n"] for r in q(
        "SELECT state, count(*) AS n FROM results GROUP BY state")}
    errors = {r["error"]: r["n"] for r in q(
        "SELECT error, count(*) AS n FROM results WHERE state = 'failed' "
        "GROUP BY error")}
    oldest = q("SELECT id, url, queued_at FROM results "
               "WHERE state = 'queued' ORDER BY id LIMIT 1")
    fetched = q("SELECT count(*) AS n FROM urls WHERE fetched_at >= "
                "(strftime('%s','now') - 60) * 1000")[0]["n"]
    return {"queued": counts.get("queued", 0), "done": counts.get("done", 0),
            "failed": counts.get("failed", 0), "errors": errors,
            "oldest": oldest[0] if oldest else None, "fetched": fetched,
            "version": q("PRAGMA user_version")[0]["user_version"]}


def test_status_matches_database(gatherd, fault_server):
    g, f = gatherd, fault_server
    closed = free_tcp_port()
    lines = ([f.url("/ok?len=%d" % (5 + i)) for i in range(5)] +
             [f.url("/status?code=404&len=5&i=%d" % i) for i in range(3)] +
             ["http://127.0.0.1:%d/refused%d" % (closed, i)
              for i in range(2)] +
             [f.url("/bad-status"), "not a url", "ftp://127.0.0.1/x"] +
             [f.url("/slow?ms=60000&len=3&i=%d" % i, host="127.0.0.3")
              for i in range(6)])
    # At most 2 slow requests (one host, max_per_host 2); the other hosts
    # keep 2 more slots.
    g.write_config(fetch={"max_in_flight": 4, "max_per_host": 2,
                          "connect_timeout_ms": 3000,
                          "request_timeout_ms": 120000,
                          "idle_timeout_ms": 120000})
    g.write_queue(lines)
    proc = g.start()
    g.wait_ready(proc)
    # Then nothing changes: 2 slow requests in flight, 4 queued behind.
    wait_for(lambda: n_finished(g) == 13, 30, what="13 rows finished")
    wait_for(lambda: f.stats()["by_ip"].get("127.0.0.3", {}).get("current")
             == 2, 30, what="2 slow requests in flight")
    time.sleep(0.3)
    want = db_status(g)
    assert (want["queued"], want["done"], want["failed"]) == (6, 8, 5), want
    assert want["errors"] == {"connect": 2, "invalid_url": 2,
                              "http_protocol": 1}, want

    t0 = time.time()
    js = status_json(g)
    assert js["database"] == str(g.db)
    assert js["schema_version"] == want["version"] >= 1
    assert (js["queued"], js["done"], js["failed"]) == (6, 8, 5), js
    assert js["errors"] == want["errors"], js
    assert js["fetched_last_60s"] == want["fetched"], (js, want)
    assert abs(js["rate_per_s"] - want["fetched"] / 60.0) < 0.01, js
    oq = js["oldest_queued"]
    assert oq is not None and oq["id"] == want["oldest"]["id"], (oq, want)
    assert oq["url"] == want["oldest"]["url"] == lines[13]
    assert oq["queued_at"] == want["oldest"]["queued_at"], (oq, want)
    age = t0 - parse_iso(oq["queued_at"])
    assert abs(oq["age_s"] - age) <= 1.5, (oq, age)

    cp = run_cli(g, ["status"])
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    for key, n in (("queued", 6), ("done", 8), ("failed", 5)):
        assert re.search(r"(?m)^%s\s+%d\s*$" % (key, n), out), out
    for kind, n in want["errors"].items():
        assert re.search(r"(?m)^\s+%s\s+%d\s*$" % (kind, n), out), out
    assert re.search(r"(?m)^oldest\s+#%d\b.*%s" % (
        oq["id"], re.escape(oq["url"])), out), out

    # Let the slow ones finish: nothing queued any more.
    f.set_slow_scale(0)
    wait_all_finished(g, len(lines), 30)
    js = status_json(g)
    assert (js["queued"], js["done"], js["failed"]) == (0, 14, 5), js
    assert js["oldest_queued"] is None, js
    assert proc.poll() is None
    rc, _ = g.stop(proc)
    assert rc == 0


def test_status_does_not_block_the_daemon(gatherd, nginx):
    g = gatherd
    lines = nginx_urls(nginx, "st", scaled(20000, 4000))
    g.write_config(fetch={"max_in_flight": 32, "max_per_host": 8})
    g.once(timeout=60)               # create the database
    g.write_queue(lines)
    proc = g.start()
    results, failures = [], []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            t = time.monotonic()
            cp = run_cli(g, ["status", "--json"], timeout=30)
            took = time.monotonic() - t
            if cp.returncode != 0:
                failures.append((cp.returncode, cp.stderr))
                continue
            results.append((json.loads(cp.stdout), took))
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        wait_all_finished(g, len(lines), 120 if not IS_SLOW_BUILD else 300)
    finally:
        stop.set()
        th.join(60)
    assert not failures, failures[:3]
    assert len(results) >= 5, "status ran only %d times" % len(results)
    prev = -1
    for js, took in results:
        total = js["queued"] + js["done"] + js["failed"]
        assert total <= len(lines), js
        fin = js["done"] + js["failed"]
        assert fin >= prev, "finished count went backwards: %r" % js
        prev = fin
        assert took < 5, "status took %.1fs" % took
    err = g.stderr_of(proc)
    assert "will retry" not in err and "locked" not in err, err[-3000:]
    js = status_json(g)
    assert (js["queued"], js["done"], js["failed"]) == (0, len(lines), 0)
    rc, _ = g.stop(proc)
    assert rc == 0
    print("status ran %d times during the run (max %.2fs)"
          % (len(results), max(t for _, t in results)))


def test_status_without_database(gatherd):
    g = gatherd
    g.write_config()
    cp = run_cli(g, ["status"])
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert str(g.db) in cp.stderr, cp.stderr
    assert not g.db.exists(), "status created the database"


# ================================================================ logging

def test_log_journal_priorities(gatherd, fault_server, monkeypatch):
    g, f = gatherd, fault_server
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    g.write_config(gatherd={"stats_interval_s": 1})
    g.write_queue([f.url("/ok?len=3&j=%d" % i) for i in range(20)])
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, 20, 30)
    # An error (a refused reload) and a warning (a truncated queue file).
    g.conf.write_text(g.conf.read_text() + "\nbogus line\n")
    proc.send_signal(signal.SIGHUP)
    g.wait_log(proc, "reload refused", 10)
    with open(g.queue, "w"):
        pass
    g.wait_log(proc, "truncated", 10)
    rc, _ = g.stop(proc)
    assert rc == 0
    lines = g.stderr_of(proc).splitlines()
    assert lines
    bad = [l for l in lines if not re.match(r"^<[0-7]>\S", l)]
    assert not bad, "lines without a <N> priority prefix: %r" % bad[:5]
    assert any(re.match(r"^<6>.*ready", l) for l in lines), lines[:5]
    assert any(re.match(r"^<3>.*reload refused", l) for l in lines), lines
    assert any(re.match(r"^<4>.*truncated", l) for l in lines), lines
    assert not any(re.match(r"^<\d>\d{4}-\d\d-\d\dT", l) for l in lines), \
        "journal lines should not carry their own timestamp"


def test_log_timestamps_and_stats_lines(gatherd, fault_server, monkeypatch):
    g, f = gatherd, fault_server
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    g.write_config(gatherd={"stats_interval_s": 1},
                   fetch={"max_in_flight": 1})
    g.write_queue([f.url("/slow?ms=400&len=2&t=%d" % i) for i in range(9)])
    proc = g.start()
    g.wait_ready(proc)
    wait_all_finished(g, 9, 30)
    n_at_done = g.stderr_of(proc).count("stats: fetched")
    time.sleep(3)           # idle: at most one more stats line
    n_idle = g.stderr_of(proc).count("stats: fetched") - n_at_done
    rc, _ = g.stop(proc)
    assert rc == 0
    lines = g.stderr_of(proc).splitlines()
    ts = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z) ")
    bad = [l for l in lines if not ts.match(l)]
    assert not bad, "lines without a leading ISO timestamp: %r" % bad[:5]
    stats = [l for l in lines if "stats: fetched" in l]
    assert len(stats) >= 2, "expected stats lines every second: %r" % lines
    times = [parse_iso(ts.match(l).group(1)) for l in stats]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.5 <= d <= 2.5 for d in gaps[:3]), gaps
    assert n_idle <= 1, "stats lines kept coming while idle"


# ================================================================ disk full

def _disk_full_run(g, nginx, mounts, queue_dir, n_lines):
    """The database on a small tmpfs that is filled up, the queue file in
    `queue_dir` (elsewhere).  Returns (proc, stderr, cpu fraction while
    stuck, lines)."""
    fs = mounts(g.root / "small", "24m")
    g.db = fs.path / "results.db"
    g.queue = queue_dir / "queue"
    queue_dir.mkdir(parents=True, exist_ok=True)
    g.write_config(gatherd={"database": str(g.db),
                            "queue_file": str(g.queue),
                            "stats_interval_s": 1},
                   fetch={"max_in_flight": 32, "max_per_host": 8})
    g.once(timeout=60)                              # create the database
    st = os.statvfs(fs.path)
    free = st.f_bavail * st.f_frsize
    filler = fs.path / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * (free - 700 * 1024))       # leave 700 KiB
    lines = nginx_urls(nginx, "df", n_lines)
    g.write_queue(lines)
    proc = g.start()
    g.wait_ready(proc)

    def stuck():
        e = g.stderr_of(proc)
        return ("cannot store queue lines (will retry)" in e and
                "cannot record" in e)
    try:
        wait_for(stuck, 30, what="both kinds of 'will retry' errors")
    except BaseException:
        print(g.stderr_of(proc)[-3000:])
        raise
    time.sleep(1)
    n_err0 = len(g.stderr_of(proc).splitlines())
    c0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(4)
    cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
    n_err = len(g.stderr_of(proc).splitlines()) - n_err0
    assert proc.poll() is None, "gatherd exited on a full disk:\n" + \
        g.stderr_of(proc)[-3000:]
    rows = db_rows(g)
    assert_rows_are_prefix(rows, lines, "while the disk is full")
    assert_rows_consistent(rows, "while the disk is full")
    print("disk full: %d rows stored, %d finished, %d log lines in 4 s, "
          "CPU %.0f%%" % (len(rows), sum(r["state"] != "queued" for r in rows),
                          n_err, cpu * 100))
    filler.unlink()
    return proc, cpu, n_err, lines


def _disk_full_finish(g, proc, lines):
    wait_all_finished(g, len(lines), 120 if not IS_SLOW_BUILD else 300,
                      what="all rows finished after space was freed")
    rows = db_rows(g, "*")
    assert_exactly_once(rows, lines, "after the disk was full")
    assert_rows_consistent(rows, "after the disk was full")
    assert_all_done_ok(rows, "after the disk was full")
    assert proc.poll() is None
    rc, _ = g.stop(proc)
    assert rc == 0


def test_disk_full_database(gatherd, nginx, mounts):
    g = gatherd
    lines_n = scaled(8000, 4000)
    proc, cpu, n_log, lines = _disk_full_run(g, nginx, mounts,
                                             g.root / "q", lines_n)
    # Retries once a second (ingest and results), not a busy loop.
    assert cpu < 0.15, "gatherd uses %.0f%% CPU while the disk is full" % (
        cpu * 100)
    assert n_log <= 20, "%d log lines in 4 s while the disk is full" % n_log
    _disk_full_finish(g, proc, lines)


def test_disk_full_with_log_next_to_queue(gatherd, nginx, mounts):
    """The same, with gatherd's stderr written to a file in the queue
    file's directory (`gatherd 2>> /var/lib/gatherd/log`, or the default
    layout where the database sits next to the queue): every error line
    is a change in the watched directory, and must not turn the 1 s
    ingest retry into a busy loop."""
    g = gatherd
    lines_n = scaled(8000, 4000)
    proc, cpu, n_log, lines = _disk_full_run(g, nginx, mounts, g.root,
                                             lines_n)
    assert proc.stderr_path.parent == g.queue.parent
    ok = cpu < 0.15 and n_log <= 20
    _disk_full_finish(g, proc, lines)
    assert ok, ("busy retry loop while the disk is full: %.0f%% CPU, "
                "%d log lines in 4 s" % (cpu * 100, n_log))


def _fill(path):
    """Write zeros to `path` until the filesystem is full."""
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(block)
            except OSError:
                break
    with open(path, "ab", buffering=0) as fh:
        while True:
            try:
                fh.write(b"\0" * 512)
            except OSError:
                break


def test_disk_full_during_rotation(gatherd, nginx, mounts):
    """The queue file is rotated while the database cannot be written.
    Its last line has no newline, so gatherd takes it when it stops
    following the rotated file, after the grace period ("taking its last
    line as it is"); that line must be stored once space is back, like
    every other line, after the new file's lines."""
    g = gatherd
    fs = mounts(g.root / "small", "24m")
    qdir = g.root / "q"
    qdir.mkdir()
    g.db = fs.path / "results.db"
    g.queue = qdir / "queue"
    g.write_config(gatherd={"database": str(g.db),
                            "queue_file": str(g.queue),
                            "stats_interval_s": 1},
                   fetch={"max_in_flight": 16, "max_per_host": 8})
    X = nginx_urls(nginx, "fx", 50)
    P = nginx.url("one.txt?unterminated=1")
    Y = nginx_urls(nginx, "fy", 50)
    proc = g.start()
    g.wait_ready(proc)
    append_lines(g.queue, X)
    g.append_raw(P, path=g.queue)              # no newline yet
    wait_all_finished(g, len(X), 30)
    time.sleep(0.3)
    _fill(fs.path / "filler")
    os.rename(g.queue, qdir / "queue.1")
    append_lines(g.queue, Y)
    wait_for(lambda: "cannot store queue lines (will retry)"
             in g.stderr_of(proc), 15, what="ingest failing on a full disk")
    time.sleep(1.5)
    assert proc.poll() is None
    (fs.path / "filler").unlink()
    want = X + Y + [P]
    wait_for(lambda: g.count("url IN (%s)" % ",".join("?" * len(Y)), Y)
             == len(Y), 30, what="rows of the new file after space freed")
    wait_for(lambda: "stopped following the rotated queue file"
             in g.stderr_of(proc), 15, what="the rotated file let go")
    time.sleep(1.5)
    rows = db_rows(g)
    err = g.stderr_of(proc)
    assert "was rotated" in err, err[-3000:]
    assert_exactly_once(rows, want, "rotation while the disk was full")
    wait_all_finished(g, len(want), 30)
    assert_rows_consistent(db_rows(g, "*"))
    rc, _ = g.stop(proc)
    assert rc == 0

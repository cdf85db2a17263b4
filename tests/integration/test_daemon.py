"""Daemon mode: following the queue file as producers append, across
rotation (rename and recreate) and truncation; SIGTERM handling."""

import os
import shutil
import signal
import subprocess
import time
from collections import Counter

import pytest

from conftest import wait_for

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


def all_done(g, n):
    return g.count("state = 'done'") == n


@pytest.mark.sqlite_only  # reads with the sqlite3 CLI meanwhile
def test_follow_append_rotate_truncate(gatherd, fault_server):
    f = fault_server
    seq = iter(range(1, 100000))

    def urls(n, tag):
        return [f.url("/ok?len=%d&%s=%d" % (1 + i % 50, tag, next(seq)))
                for i in range(n)]

    gatherd.write_config(gatherd={"stats_interval_s": 1})
    proc = gatherd.start()
    gatherd.wait_ready(proc)
    assert gatherd.queue.exists(), "daemon did not create the queue file"

    # Bursts of appends, as `echo URL >> queue` would do, including a line
    # written in two pieces.
    submitted = []
    for burst in range(4):
        batch = urls(40, "burst%d" % burst)
        gatherd.write_queue(batch, mode="a")
        submitted += batch
        time.sleep(0.2)
    split = urls(1, "split")[0]
    gatherd.append_raw(split[:15])
    time.sleep(0.5)
    gatherd.append_raw(split[15:] + "\n")
    submitted.append(split)
    wait_for(lambda: all_done(gatherd, len(submitted)), 60,
             what="all burst rows done")
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == submitted

    # The sqlite3 CLI can read the view while the daemon runs.
    cp = subprocess.run(["sqlite3", str(gatherd.db),
                         "SELECT count(*) FROM results WHERE state='done'"],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0 and cp.stdout.strip() == str(len(submitted)), cp

    # Rotation: rename, more lines go to the old file (the writer still has
    # it), then a new file appears and gets lines too.
    rotated = gatherd.root / "queue.1"
    os.rename(gatherd.queue, rotated)
    late_old = urls(30, "lateold")
    with open(rotated, "a") as fh:
        for u in late_old:
            fh.write(u + "\n")
    time.sleep(0.3)
    new_file = urls(30, "newfile")
    gatherd.write_queue(new_file, mode="a")   # creates ./queue
    submitted += late_old + new_file
    wait_for(lambda: all_done(gatherd, len(submitted)), 60,
             what="rows of both files done after rotation")
    rows = gatherd.rows()
    assert len(rows) == len(submitted)
    assert Counter(r["url"] for r in rows) == Counter(submitted)
    # Each file's lines keep their order.
    order = [r["url"] for r in rows]
    assert [u for u in order if "lateold" in u] == late_old
    assert [u for u in order if "newfile" in u] == new_file

    # Truncation: the file is emptied, then new (shorter) content appended.
    with open(gatherd.queue, "w"):
        pass
    time.sleep(1.0)
    after_trunc = urls(5, "trunc")
    gatherd.write_queue(after_trunc, mode="a")
    submitted += after_trunc
    wait_for(lambda: all_done(gatherd, len(submitted)), 60,
             what="rows appended after truncation done")
    rows = gatherd.rows()
    assert Counter(r["url"] for r in rows) == Counter(submitted)
    assert all(r["state"] == "done" and r["status"] == 200 for r in rows)
    # Nothing fetched twice.
    per_target = f.stats()["by_target"]
    assert set(per_target.values()) == {1}, [
        t for t, n in per_target.items() if n != 1]
    assert len(per_target) == len(submitted)

    rc, took = gatherd.stop(proc, signal.SIGTERM, timeout=20)
    assert rc == 0, gatherd.stderr_of(proc)[-3000:]
    # Nothing in flight: no waiting for the 10 s drain deadline.
    assert took < 5, took


def test_sigterm_with_requests_in_flight(gatherd, fault_server):
    f = fault_server
    quick = [f.url("/ok?len=11&q=%d" % i, host="127.0.0.2") for i in range(10)]
    slow = [f.url("/slow?ms=30000&len=13&s=%d" % i, host="127.0.0.3")
            for i in range(20)]
    gatherd.write_config(fetch={"max_in_flight": 8, "max_per_host": 8,
                                "request_timeout_ms": 120000,
                                "idle_timeout_ms": 120000})
    gatherd.write_queue(quick)
    proc = gatherd.start()
    wait_for(lambda: gatherd.count("state = 'done'") == len(quick), 30,
             what="quick rows done")
    # Then 20 slow URLs: 8 start, 12 wait for a slot.
    gatherd.write_queue(slow, mode="a")
    wait_for(lambda: f.stats()["by_ip"].get("127.0.0.3", {}).get("current")
             == 8, 30, what="8 slow requests in flight")
    time.sleep(0.3)
    started_before = f.stats()["by_ip"]["127.0.0.3"]["total"]
    assert started_before == 8

    rc, took = gatherd.stop(proc, signal.SIGTERM, timeout=25)
    assert rc == 0, gatherd.stderr_of(proc)[-3000:]
    # The in-flight fetches (30 s each) were given the whole 10 s drain
    # deadline (APP_DRAIN_MS in src/main.c; libevent's timer may run a
    # clock tick short), then aborted.
    assert 9.9 <= took < 15, took
    # No new work was taken after SIGTERM.
    assert f.stats()["by_ip"]["127.0.0.3"]["total"] == started_before

    rows = gatherd.rows()
    assert len(rows) == len(quick) + len(slow)
    by = {r["url"]: r for r in rows}
    for u in quick:
        assert by[u]["state"] == "done" and by[u]["length"] == 11
    for u in slow:
        assert by[u]["state"] == "queued", by[u]
        assert by[u]["status"] is None and by[u]["error"] is None, by[u]

    # A later run completes the unfinished rows, once each.
    f.set_slow_scale(0)
    f.reset()
    gatherd.once(timeout=60)
    rows2 = gatherd.rows()
    assert [r["id"] for r in rows2] == [r["id"] for r in rows]
    for r in rows2:
        assert r["state"] == "done" and r["status"] == 200, r
    assert [r for r in rows2 if r["url"] in quick] == \
        [r for r in rows if r["url"] in quick]
    st = f.stats()
    assert st["global"]["total"] == len(slow)
    assert set(st["by_target"].values()) == {1}


def test_sigint_idle_daemon_exits_zero(gatherd, fault_server):
    gatherd.write_config()
    proc = gatherd.start()
    gatherd.wait_ready(proc)
    rc, took = gatherd.stop(proc, signal.SIGINT, timeout=20)
    assert rc == 0, gatherd.stderr_of(proc)[-3000:]
    assert took < 5


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed")
def test_diagnose_shows_the_queue_readers_state(gatherd):
    """The helper that tests call when a daemon does not do what they
    wait for: besides the log and the threads, gdb attached to the daemon
    prints the queue reader's state (through app_for_debugger, since the
    app's own variable is optimized out in these builds)."""
    g = gatherd
    g.write_config()
    g.write_queue([])
    proc = g.start()
    g.wait_ready(proc)
    out = g.diagnose(proc)
    rc, _ = g.stop(proc)
    assert rc == 0, g.stderr_of(proc)[-3000:]
    if "ptrace: Operation not permitted" in out:
        pytest.skip("gdb may not attach here (ptrace_scope)")
    if 'No symbol "app_for_debugger"' in out:
        pytest.skip("a build without debug information")
    # gdb's first print: the reader's struct, its file's path in it.
    first = [ln for ln in out.splitlines() if ln.startswith("$1 = ")]
    assert first and "read_off = " in first[0] and \
        str(g.queue) in first[0], out[-3000:]

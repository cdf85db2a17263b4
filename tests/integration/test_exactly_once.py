"""Exactly-once, hardened (issue 9): one daemon per database, shutdown
that keeps retryable rows queued, start-up failures that exit cleanly, a
failing migration, queue files rewritten with `>`, rotation while a writer
still holds the old file, and `gatherd submit` against unfinished lines.

Every test here reproduces a way the promise "every submitted URL becomes
exactly one row with exactly one recorded result" was broken, and checks
the behaviour that replaced it, against the built binary."""

import os
import signal
import sqlite3
import subprocess
import time

import pytest
from pathlib import Path

from conftest import check_sanitizers, wait_for
from ops_helpers import run_cli, submit

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


def tok(name):
    return "%s-%d" % (name, time.time_ns())


def shown(r):
    return {k: v for k, v in r.items() if k not in ("queued_at", "id")}


@pytest.fixture(scope="module")
def fsrv(fault_server_module):
    return fault_server_module


# ====================================================================
# Shutdown keeps retryable rows queued
# ====================================================================

def test_shutdown_leaves_retryable_failures_queued(gatherd, fsrv):
    """During the SIGTERM drain, an in-flight fetch that ends in a
    retryable way (a 503, an idle timeout) while it still has retries left
    is not recorded as final: its row stays queued with attempts=1, and the
    next start makes the second attempt."""
    f = fsrv
    k = tok("drain")
    slow503 = f.url("/flaky?fail=1&code=503&ms=1500&key=%s-a" % k)
    stall = f.url("/flaky?fail=1&how=stall&key=%s-b" % k, host="127.0.0.2")
    final404 = f.url("/status?code=404&key=%s-c" % k, host="127.0.0.3")
    gatherd.write_config(fetch={"retries": 2, "idle_timeout_ms": 1000,
                                "retry_backoff_ms": 0})
    gatherd.write_queue([slow503, stall, final404])
    proc = gatherd.start()
    gatherd.wait_ready(proc)
    wait_for(lambda: len(f.records(k + "-a")) == 1 and
             len(f.records(k + "-b")) == 1 and
             gatherd.count("state = 'done'") == 1, 20,
             what="both slow requests in flight, the 404 recorded")
    rc, took = gatherd.stop(proc, signal.SIGTERM, timeout=30)
    err = gatherd.stderr_of(proc)
    assert rc == 0, err[-3000:]
    rows = {r["url"]: r for r in gatherd.rows()}
    for u in (slow503, stall):
        r = rows[u]
        assert (r["state"], r["status"], r["error"], r["attempts"],
                r["fetched_at"]) == ("queued", None, None, 1, None), shown(r)
    # A final result during the drain is recorded as usual.
    r = rows[final404]
    assert (r["state"], r["status"], r["attempts"]) == ("done", 404, 1)
    # The drain waited for the in-flight fetches (1.5 s and 1 s), not for
    # the retries.
    assert took < 5, took

    # The next start makes the second attempt, which succeeds.
    gatherd.once(timeout=60)
    rows = {r["url"]: r for r in gatherd.rows()}
    for u in (slow503, stall):
        r = rows[u]
        assert (r["state"], r["status"], r["attempts"]) == \
            ("done", 200, 2), shown(r)
    assert len(f.records(k + "-a")) == 2
    assert len(f.records(k + "-b")) == 2


def test_retry_budget_spans_restarts(gatherd, fsrv):
    """A row left queued with its attempts is not given a fresh budget:
    with retries = 1, an attempt before the restart and one after are all
    it gets, and the result says attempts = 2."""
    f = fsrv
    k = tok("budget")
    u = f.url("/flaky?fail=5&code=503&ms=800&key=" + k)
    gatherd.write_config(fetch={"retries": 1, "retry_backoff_ms": 0})
    gatherd.write_queue([u])
    proc = gatherd.start()
    gatherd.wait_ready(proc)
    wait_for(lambda: len(f.records(k)) == 1, 20, what="first attempt")
    rc, _ = gatherd.stop(proc, signal.SIGTERM, timeout=30)
    assert rc == 0
    r = gatherd.rows()[0]
    assert (r["state"], r["attempts"]) == ("queued", 1), shown(r)
    gatherd.once(timeout=60)
    r = gatherd.rows()[0]
    assert (r["state"], r["status"], r["attempts"]) == ("done", 503, 2), \
        shown(r)
    assert len(f.records(k)) == 2


# ====================================================================
# A failing migration
# ====================================================================

@pytest.mark.sqlite_only  # a broken SQLite file; see migrations/postgresql
def test_failing_migration_is_a_clear_error(gatherd):
    """A migration that fails (here: a database whose schema was changed
    by hand, so that migration 0004's DROP VIEW finds no view) is reported
    with the migration's name, rolled back, and gatherd exits 1 (no crash,
    no double free under ASan); the database is left at its old version."""
    g = gatherd
    g.write_config()
    g.queue.write_text("")
    cp = g.run("--once")
    assert cp.returncode == 0, cp.stderr
    con = sqlite3.connect(str(g.db))
    version = con.execute("PRAGMA user_version").fetchone()[0]
    assert version >= 4
    # Pretend the database is one version older, without the view that
    # migration 0004 replaces.
    con.execute("DROP VIEW results")
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    cp = g.run("--once")
    assert cp.returncode == 1, cp.stderr
    assert "migration 0004_final_url_default failed" in cp.stderr, cp.stderr
    assert "finished:" not in cp.stderr, cp.stderr
    con = sqlite3.connect(str(g.db))
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    con.close()


# ====================================================================
# One daemon per database
# ====================================================================

def error_lines(text):
    return [l for l in text.splitlines() if " error: " in l]


@pytest.mark.sqlite_only  # the lock file (PostgreSQL: test_cluster.py)
def test_second_daemon_refused(gatherd, nginx, tmp_path):
    """A second gatherd on the same database (an admin running it by hand
    while the service runs; two containers on one volume) exits 1 at once
    naming the first one's pid, in daemon and --once mode, while status,
    submit, check-config and sqlite3 keep working.  After the first is
    killed with -9 the lock is gone with it: a new daemon starts without
    any cleanup, and every URL ends as exactly one row fetched once."""
    g = gatherd
    k = tok("lock")
    urls = [nginx.url("/page.html?%s-%d" % (k, i)) for i in range(50)]
    g.write_config(fetch={"max_in_flight": 4})
    g.write_queue(urls[:25])
    mark = nginx.log_mark()
    first = g.start()
    g.wait_ready(first)
    db = os.path.realpath(g.db)

    for mode in ((), ("--once",)):
        t0 = time.monotonic()
        second = g.start(*mode)
        rc = second.wait(timeout=20)
        took = time.monotonic() - t0
        err = g.stderr_of(second)
        assert rc == 1, err
        assert took < 5, took
        msg = "another gatherd (pid %d) is using %s" % (first.pid, db)
        assert msg in err, err
        assert len(error_lines(err)) == 1, err
        assert "ready" not in err and "finished:" not in err, err
    assert first.poll() is None

    cp = run_cli(g, ["status"])
    assert cp.returncode == 0, cp.stderr
    cp = run_cli(g, ["check-config"])
    assert cp.returncode == 0, cp.stderr
    cp = submit(g, urls[25:])
    assert cp.returncode == 0, cp.stderr
    out = subprocess.run(["sqlite3", str(g.db),
                          "select count(*) from results"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: g.count("state = 'done'") == 50, 60,
             what="all 50 fetched by the first daemon")

    # kill -9: the lock dies with the process.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert os.path.exists(str(g.db) + ".lock")
    g.append_raw("".join(u + "\n" for u in [nginx.url("/one.txt?" + k)]))
    cp, _ = g.once(timeout=60)
    assert "another gatherd" not in cp.stderr
    rows = g.rows()
    assert [r["url"] for r in rows] == urls + [nginx.url("/one.txt?" + k)]
    assert all(r["state"] == "done" for r in rows), rows
    served = [e["uri"] for e in nginx.log_entries(mark)]
    assert sorted(served) == sorted(
        "/" + u.split("/", 3)[3] for u in [r["url"] for r in rows])


# ====================================================================
# Start-up failures
# ====================================================================

def startup_failure(g, mode):
    """Run gatherd (daemon or --once) expecting it to fail at start-up:
    returns (exit status, stderr)."""
    if mode == "once":
        cp = g.run("--once", timeout=30)
        return cp.returncode, cp.stderr
    proc = g.start()
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("gatherd kept running: " + g.stderr_of(proc)[-2000:])
    g.checked.add(proc.stderr_path)
    err = g.stderr_of(proc)
    check_sanitizers(err)
    return rc, err


def setup_dangling_symlink(g, tmp_path):
    q = g.root / "queue-link"
    q.symlink_to(tmp_path / "missing-dir" / "queue")
    g.write_config(gatherd={"queue_file": str(q)})
    return 1, "cannot open queue file %s" % q


def setup_fifo(g, tmp_path):
    q = g.root / "queue-fifo"
    os.mkfifo(q)
    g.write_config(gatherd={"queue_file": str(q)})
    return 1, "queue file %s is not a regular file" % q


def setup_not_a_database(g, tmp_path):
    (g.root / "results.db").write_bytes(b"this is not a database\n" * 100)
    g.write_config()
    return 1, "file is not a database"


def setup_bad_ca_file(g, tmp_path):
    ca = g.root / "ca.pem"
    ca.write_text("not a certificate\n")
    g.write_config(tls={"ca_file": str(ca)})
    return 2, "cannot load [tls] ca_file"


STARTUP_FAILURES = {
    "queue-dangling-symlink": setup_dangling_symlink,
    "queue-is-a-fifo": setup_fifo,
    "database-not-sqlite": setup_not_a_database,
    "ca-file-not-pem": setup_bad_ca_file,
}


@pytest.mark.sqlite_only  # its cases are about the SQLite file
@pytest.mark.parametrize("mode", ["once", "daemon"])
@pytest.mark.parametrize("case", sorted(STARTUP_FAILURES))
def test_startup_failure_exits_cleanly(gatherd, tmp_path, case, mode):
    """Every start-up failure exits 1 (2 for configuration) with one clear
    error line, no crash (--once used to segfault when the queue file
    could not be opened), and no 'finished' summary of a run that never
    happened."""
    want_rc, want_msg = STARTUP_FAILURES[case](gatherd, tmp_path)
    rc, err = startup_failure(gatherd, mode)
    assert rc == want_rc, err
    assert want_msg in err, err
    assert len(error_lines(err)) == 1, err
    assert "finished:" not in err and "ready" not in err, err


def test_unwritable_queue_directory(gatherd_bin, tmp_path):
    """The queue file's directory is not writable by the user gatherd runs
    as (and the file does not exist): a clear error and exit 1, for both
    modes.  Run as `nobody`, since root may write anywhere."""
    import shutil
    import tempfile
    from conftest import Gatherd
    if shutil.which("runuser") is None:
        pytest.skip("runuser (util-linux) is needed to run as nobody")
    top = Path(tempfile.mkdtemp(prefix="gatherd-ro-"))
    try:
        top.chmod(0o755)
        qdir = top / "spool"
        qdir.mkdir(mode=0o555)
        qdir.chmod(0o555)
        dbdir = top / "db"
        dbdir.mkdir()
        os.chown(dbdir, 65534, 65534)
        conf = top / "gatherd.conf"
        conf.write_text("[gatherd]\nqueue_file = %s/queue\n"
                        "database = %s/g.db\n" % (qdir, dbdir))
        conf.chmod(0o644)
        for mode in (["--once"], []):
            cp = subprocess.run(
                ["runuser", "-u", "nobody", "--", gatherd_bin, "-c",
                 str(conf)] + mode, capture_output=True, text=True,
                timeout=30)
            check_sanitizers(cp.stderr)
            assert cp.returncode == 1, cp.stderr
            assert ("cannot open queue file %s/queue: Permission denied"
                    % qdir) in cp.stderr, cp.stderr
            assert len(error_lines(cp.stderr)) == 1, cp.stderr
            assert "finished:" not in cp.stderr, cp.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


# ====================================================================
# The drain time is a key; a second signal says what happened
# ====================================================================

def test_shutdown_timeout_is_a_reloadable_key(gatherd, fsrv):
    """[gatherd] shutdown_timeout_ms bounds the SIGTERM drain (it was a
    hard-coded 10 s), and SIGHUP changes it; the aborted fetch's row stays
    queued."""
    f = fsrv
    k = tok("sdt")
    slow = f.url("/slow?ms=30000&key=" + k)
    g = gatherd
    g.write_config(gatherd={"shutdown_timeout_ms": 20000})
    g.write_queue([slow])
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: len(f.records(k)) == 1, 20, what="slow request")
    g.write_config(gatherd={"shutdown_timeout_ms": 1200})
    proc.send_signal(signal.SIGHUP)
    g.wait_log(proc, "configuration reloaded", 10)
    rc, took = g.stop(proc, signal.SIGTERM, timeout=30)
    err = g.stderr_of(proc)
    assert rc == 0, err
    assert 1.1 <= took < 4, (took, err)
    assert "waiting up to 1200 ms for in-flight fetches" in err, err
    assert ("fetches still running after 1200 ms ([gatherd] "
            "shutdown_timeout_ms): aborting 1 in-flight fetches") in err, err
    r = g.rows()[0]
    assert (r["state"], r["attempts"]) == ("queued", 0), shown(r)


def test_second_sigterm_says_what_happened(gatherd, fsrv):
    """A second SIGTERM aborts the in-flight fetches at once and says so;
    it used to log 'fetches still running after 10000 ms' half a second
    after the first."""
    f = fsrv
    k = tok("twice")
    slow = f.url("/slow?ms=30000&key=" + k)
    g = gatherd
    g.write_config(gatherd={"shutdown_timeout_ms": 30000})
    g.write_queue([slow])
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: len(f.records(k)) == 1, 20, what="slow request")
    proc.send_signal(signal.SIGTERM)
    g.wait_log(proc, "SIGTERM: stopping", 10)
    rc, took = g.stop(proc, signal.SIGTERM, timeout=30)
    err = g.stderr_of(proc)
    assert rc == 0, err
    assert took < 3, (took, err)
    assert ("SIGTERM again: aborting 1 in-flight fetches (their rows stay "
            "queued)") in err, err
    assert "still running after" not in err, err
    assert g.rows()[0]["state"] == "queued"


# ====================================================================
# Queue file rewritten with `>`
# ====================================================================

def lines_of(g):
    return [r["url"] for r in g.rows()]


def test_rewrite_with_truncating_redirect(gatherd, nginx):
    """`echo URL >> q` then `echo LONGER-URL > q`: the rewrite grows past
    the stored offset, so only the changed bytes before it show what
    happened.  The new URL becomes a row (read from 0), and no bogus
    invalid_url row is made from the middle of a line.  A rewrite of the
    same length, and one done while gatherd is stopped, likewise."""
    g = gatherd
    k = tok("rw")
    short = nginx.url("/one.txt?%s" % k)
    longer = nginx.url("/page.html?%s-this-one-is-a-good-deal-longer" % k)
    same_len = short.replace("one.txt", "two.txt")
    assert len(same_len) == len(short)
    g.write_config()
    g.queue.write_text("")
    proc = g.start()
    g.wait_ready(proc)
    g.append_raw(short + "\n")
    wait_for(lambda: g.count("1") == 1, 20, what="first line")
    with open(g.queue, "w") as f:          # echo LONGER-URL > q
        f.write(longer + "\n")
    wait_for(lambda: g.count("1") == 2, 20, what="the rewritten line")
    with open(g.queue, "w") as f:          # same length, other bytes
        f.write(same_len + "\n")
    wait_for(lambda: g.count("1") == 3, 20, what="the same-length rewrite")
    wait_for(lambda: g.count("state = 'done'") == 3, 20, what="fetched")
    rc, _ = g.stop(proc)
    assert rc == 0
    err = g.stderr_of(proc)
    assert err.count("was rewritten") + err.count("was truncated") == 2, err
    assert lines_of(g) == [short, longer, same_len]
    assert g.count("error = 'invalid_url'") == 0

    # Rewritten while stopped: read from the start at the next start.
    third = nginx.url("/page.html?%s-while-stopped-and-longer-than-before"
                      % k)
    with open(g.queue, "w") as f:
        f.write(third + "\n")
    g.once(timeout=60)
    assert lines_of(g) == [short, longer, same_len, third]
    assert g.count("state = 'done'") == 4


# ====================================================================
# Rotation with a long-lived writer
# ====================================================================

def test_rotation_follows_a_long_lived_writer(gatherd, nginx):
    """`mv queue queue.1` and a new `queue`, while a process still holds
    the old descriptor and appends to queue.1 for a few more seconds: its
    lines are not lost (gatherd follows the rotated file until it has been
    quiet for 5 s), and nothing is read twice."""
    g = gatherd
    k = tok("rot")
    A = [nginx.url("/one.txt?%s-a%d" % (k, i)) for i in range(20)]
    B = [nginx.url("/one.txt?%s-b%d" % (k, i)) for i in range(20)]
    C = [nginx.url("/one.txt?%s-c%d" % (k, i)) for i in range(20)]
    g.write_config()
    writer = open(g.queue, "a")       # the long-lived writer
    try:
        writer.write("".join(u + "\n" for u in A))
        writer.flush()
        proc = g.start()
        g.wait_ready(proc)
        wait_for(lambda: g.count("1") == 20, 20, what="A ingested")
        os.rename(g.queue, g.root / "queue.1")
        g.append_raw("".join(u + "\n" for u in C[:10]))  # the new file
        wait_for(lambda: g.count("1") == 30, 20, what="first C lines")
        # The old writer goes on for ~2 s after the new file appeared.
        for i in range(0, 20, 5):
            writer.write("".join(u + "\n" for u in B[i:i + 5]))
            writer.flush()
            time.sleep(0.5)
        g.append_raw("".join(u + "\n" for u in C[10:]))
        wait_for(lambda: g.count("1") == 60, 20, what="every line")
        wait_for(lambda: "stopped following the rotated queue file" in
                 g.stderr_of(proc), 15, what="the rotated file let go")
    finally:
        writer.close()
    wait_for(lambda: g.count("state = 'done'") == 60, 30, what="fetched")
    rc, _ = g.stop(proc)
    assert rc == 0
    got = lines_of(g)
    assert sorted(got) == sorted(A + B + C), got
    assert len(got) == len(set(got)) == 60
    # Each file's lines keep their order.
    for part in (A, B, C):
        assert [u for u in got if u in part] == part


def test_restart_inside_the_rotation_grace_period(gatherd, nginx):
    """The daemon stops while it still follows a rotated file; the writer
    appends to it meanwhile.  The next start finds the rotated file by its
    inode (its position is stored with the queue file's) and takes those
    lines too, exactly once."""
    g = gatherd
    k = tok("rotrs")
    A = [nginx.url("/one.txt?%s-a%d" % (k, i)) for i in range(5)]
    B = [nginx.url("/one.txt?%s-b%d" % (k, i)) for i in range(5)]
    C = [nginx.url("/one.txt?%s-c%d" % (k, i)) for i in range(5)]
    D = [nginx.url("/one.txt?%s-d%d" % (k, i)) for i in range(5)]
    g.write_config()
    writer = open(g.queue, "a")
    try:
        writer.write("".join(u + "\n" for u in A))
        writer.flush()
        proc = g.start()
        g.wait_ready(proc)
        wait_for(lambda: g.count("1") == 5, 20, what="A ingested")
        os.rename(g.queue, g.root / "queue.1")
        g.append_raw("".join(u + "\n" for u in C))
        wait_for(lambda: g.count("1") == 10, 20, what="C ingested")
        writer.write("".join(u + "\n" for u in B[:2]))
        writer.flush()
        wait_for(lambda: g.count("1") == 12, 20, what="first B lines")
        rc, _ = g.stop(proc)
        assert rc == 0
        assert "stopped following" not in g.stderr_of(proc)
        writer.write("".join(u + "\n" for u in B[2:]))
        writer.flush()
    finally:
        writer.close()
    g.append_raw("".join(u + "\n" for u in D))
    g.once(timeout=60)
    got = lines_of(g)
    assert sorted(got) == sorted(A + B + C + D), got
    assert len(set(got)) == 20
    assert g.count("state = 'done'") == 20


# ====================================================================
# gatherd submit and unfinished lines
# ====================================================================

def status_json(g):
    import json
    cp = run_cli(g, ["status", "--json"])
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def test_submit_ends_an_unfinished_line(gatherd, nginx):
    """A queue file that ends without a newline (a writer that died
    mid-line, printf without \\n): `gatherd submit` ends the fragment with
    a newline first and says so, so the fragment becomes a row of its own
    (invalid_url when it is not a URL) instead of the glued
    'http://a/nonlhttp://b/after'.  `status` shows the bytes waiting."""
    g = gatherd
    k = tok("nonl")
    a = nginx.url("/one.txt?%s-a" % k)
    b = nginx.url("/one.txt?%s-b" % k)
    c = nginx.url("/one.txt?%s-c" % k)
    g.write_config()
    g.append_raw(a)                                   # no newline
    g.once(timeout=60)                                # takes nothing yet
    assert g.rows() == []
    assert status_json(g)["queue_partial_bytes"] == len(a)
    cp = run_cli(g, ["status"])
    assert "unfinished %d bytes at the end of" % len(a) in cp.stdout
    cp = submit(g, [b])
    assert cp.returncode == 0, cp.stderr
    assert ("ended in an unfinished line (%d bytes without a newline)"
            % len(a)) in cp.stderr, cp.stderr
    assert g.queue.read_text() == a + "\n" + b + "\n"
    assert status_json(g)["queue_partial_bytes"] == 0
    g.append_raw("garbage")
    cp = submit(g, [c])
    assert cp.returncode == 0 and "unfinished line (7 bytes" in cp.stderr
    # A file that ends properly is left as it is.
    cp = submit(g, [c + "2"])
    assert cp.returncode == 0 and "unfinished line" not in cp.stderr
    g.once(timeout=60)
    rows = g.rows()
    assert [r["url"] for r in rows] == [a, b, "garbage", c, c + "2"]
    assert [r["state"] for r in rows] == ["done", "done", "failed", "done",
                                          "done"]
    assert rows[2]["error"] == "invalid_url"


def test_submit_cut_back_never_below_what_the_daemon_read(gatherd, nginx):
    """A short write (disk full) used to be cut back to the file's old
    size.  The daemon may have read the complete lines of that write
    already; the cut then looked like a truncation and it read the whole
    file again, doubling every line.  Now only the unfinished last line is
    cut, the complete ones count as queued, and nothing is read twice.
    The daemon is given the time to read by delaying submit's ftruncate
    (strace fault injection), so the race is always hit."""
    import shutil
    from ops_helpers import Mount
    if shutil.which("strace") is None:
        pytest.skip("strace is needed to delay the cut-back")
    g = gatherd
    k = tok("cut")
    fs = Mount(g.root / "small", "1m")
    if not fs.mounted:
        pytest.skip("cannot mount a tmpfs here: %s" % fs.error)
    try:
        g.queue = fs.path / "queue"
        g.write_config(gatherd={"queue_file": str(g.queue),
                                "database": str(g.root / "results.db")})
        before = [nginx.url("/one.txt?%s-pre%d" % (k, i)) for i in range(10)]
        g.append_raw("".join(u + "\n" for u in before))
        proc = g.start()
        g.wait_ready(proc)
        wait_for(lambda: g.count("1") == 10, 20, what="first lines")
        # Fill the file system, then free one page: the submit below
        # (about 12 KiB) is written in part.
        filler = fs.path / "filler"
        with open(filler, "wb", buffering=0) as fh:
            for _ in range(100000):
                try:
                    fh.write(b"\0" * 4096)
                except OSError:
                    break
        os.truncate(filler, filler.stat().st_size - 4096)
        urls = [nginx.url("/one.txt?%s-%03d" % (k, i)) for i in range(200)]
        argv = ["strace", "-f", "-qq", "-o", "/dev/null", "-e",
                "inject=ftruncate:delay_enter=2000000", g.bin, "submit",
                "-c", str(g.conf)] + urls
        cp = subprocess.run(argv, capture_output=True, text=True,
                            timeout=60)
        check_sanitizers(cp.stderr)
        filler.unlink()
        time.sleep(2)  # two poll periods after the cut-back
        rc, _ = g.stop(proc)
        assert rc == 0
        err = g.stderr_of(proc)
        got = [r["url"] for r in g.rows()]
        assert len(got) == len(set(got)), "lines read twice: %d rows" % (
            len(got))
        assert "truncated" not in err and "rewritten" not in err, err
        import re
        m = re.search(r"queued (\d+) of 200 URLs", cp.stderr)
        assert cp.returncode == 1 and m, cp.stderr
        n = int(m.group(1))
        assert 0 < n < 200, cp.stderr
        # The file ends with the last complete line written, and exactly
        # the lines it reported as queued became rows.
        assert g.queue.read_text().endswith(urls[n - 1] + "\n")
        assert got == before + urls[:n]
    finally:
        g.cleanup()
        fs.close()

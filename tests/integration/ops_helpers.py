"""Helpers shared by the operations/durability tests (test_crash.py and
test_ops.py): scaling for slow (sanitizer) builds, reproducible random
seeds, exactly-once checks of the `results` view against the queue file,
kill -9, `gatherd submit` / `gatherd status` runners, and small mounts.

Nothing here starts long-lived processes on its own; every subprocess is
bounded by a timeout."""

import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import GATHERD_BIN, DOCROOT_FILES, ISO_UTC, check_sanitizers


def _scale():
    v = os.environ.get("GATHERD_TEST_SCALE")
    if v:
        return float(v)
    # The ASan+UBSan build is several times slower: smaller workloads, but
    # the same kinds of events (still several kills, still concurrency).
    return 0.4 if "asan" in GATHERD_BIN or "sanit" in GATHERD_BIN else 1.0


SCALE = _scale()
IS_SLOW_BUILD = SCALE < 1.0


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


def make_rng(name):
    """A random.Random seeded from GATHERD_TEST_SEED or at random; the seed
    is printed (pytest shows it with the output of a failed test) so that a
    failure can be replayed with GATHERD_TEST_SEED=<seed>."""
    env = os.environ.get("GATHERD_TEST_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
    print("%s: random seed %d (replay with GATHERD_TEST_SEED=%d)"
          % (name, seed, seed), flush=True)
    return random.Random(seed), seed


# ------------------------------------------------------------ queue file

def queue_file_lines(path, complete_only=True):
    """The URLs gatherd must take from a queue file, as it would take them:
    complete lines only (unless complete_only is false), surrounding blanks
    and a CR stripped, blank and '#' lines skipped."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    if complete_only:
        cut = data.rfind(b"\n")
        data = data[:cut + 1] if cut >= 0 else b""
    out = []
    for raw in data.split(b"\n"):
        s = raw.decode("utf-8", "surrogateescape").strip(" \t\r\v\f")
        if not s or s.startswith("#"):
            continue
        out.append(s)
    return out


URL_RE = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(:\d+)?(/[^\s]*)?$")


def assert_all_lines_valid_urls(path):
    data = Path(path).read_bytes()
    assert data == b"" or data.endswith(b"\n"), (
        "queue file does not end with a newline: %r" % data[-200:])
    bad = [(i + 1, l) for i, l in enumerate(data.split(b"\n")[:-1])
           if not URL_RE.match(l.decode("latin-1"))]
    assert not bad, ("%d malformed (interleaved or partial?) lines in %s, "
                     "first ones: %r" % (len(bad), path, bad[:5]))


# ------------------------------------------------------------ database

def db_rows(g, columns="id, url, state, status, length, error, fetched_at"):
    """Rows of the results view in id order, read with a private
    connection; [] while the database or its schema does not exist yet."""
    if g.pg is not None:
        try:
            return g.query("SELECT %s FROM results ORDER BY id" % columns)
        except RuntimeError as e:
            if "does not exist" in str(e):
                return []
            raise
    if not g.db.exists():
        return []
    con = sqlite3.connect(str(g.db), timeout=30)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in
                con.execute("SELECT %s FROM results ORDER BY id" % columns)]
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        con.close()


def describe_mismatch(got, want):
    """A short, precise description of how two URL lists differ."""
    msg = ["rows %d, expected lines %d" % (len(got), len(want))]
    cg, cw = Counter(got), Counter(want)
    dups = [(u, n) for u, n in cg.items() if n > 1]
    missing = [u for u in cw if u not in cg]
    extra = [u for u in cg if u not in cw]
    if dups:
        msg.append("%d URLs have several rows, e.g. %r"
                   % (len(dups), dups[:3]))
    if missing:
        msg.append("%d lines have no row, e.g. %r"
                   % (len(missing), missing[:3]))
    if extra:
        msg.append("%d rows match no line, e.g. %r" % (len(extra), extra[:3]))
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            msg.append("first difference at position %d (id order): row %r, "
                       "line %r" % (i, a, b))
            break
    return "; ".join(msg)


def assert_rows_are_prefix(rows, lines, what=""):
    """Ingestion is in file order and exactly once: after any crash the rows
    are exactly the first len(rows) lines."""
    got = [r["url"] for r in rows]
    assert got == lines[:len(got)] and len(got) <= len(lines), (
        "%s: rows are not a prefix of the queue file's lines: %s"
        % (what, describe_mismatch(got, lines[:len(got)])))


def assert_exactly_once(rows, lines, what=""):
    got = [r["url"] for r in rows]
    assert got == lines, "%s: %s" % (what, describe_mismatch(got, lines))


def assert_rows_consistent(rows, what=""):
    """A row is done only with its result, and queued only without one.
    `rows` must carry fetched_at (db_rows' default columns, or "*")."""
    bad = []
    for r in rows:
        st = r["state"]
        fetched = r["fetched_at"]
        if st == "done":
            if r["status"] is None or r["length"] is None or \
                    not ISO_UTC.match(fetched or ""):
                bad.append(r)
        elif st == "queued":
            if r["status"] is not None or r["length"] is not None or \
                    r["error"] is not None or fetched is not None:
                bad.append(r)
        elif st == "failed":
            # A fetch that failed has its time (an invalid_url row may
            # have failed at ingestion, never fetched, without one).
            if r["error"] is None or (
                    r["error"] != "invalid_url" and
                    not ISO_UTC.match(fetched or "")):
                bad.append(r)
        else:
            bad.append(r)
    assert not bad, "%s: %d inconsistent rows, e.g. %r" % (what, len(bad),
                                                           bad[:3])


def expected_length(url):
    """Body length nginx serves for a docroot URL (query ignored)."""
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    return DOCROOT_FILES[name]


# ------------------------------------------------------------ processes

def kill9(proc, timeout=10):
    """SIGKILL the daemon (its own process group) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=timeout)
    return proc.returncode


def error_lines(text):
    return [l for l in text.splitlines()
            if " error: " in l or l.startswith("<3>")]


def run_cli(g, args, stdin=None, timeout=60, env=None):
    """Run `gatherd <args> -c CONF` with optional stdin bytes; returns
    CompletedProcess with text output.  Fails on sanitizer reports."""
    argv = [g.bin] + list(args[:1]) + ["-c", str(g.conf)] + list(args[1:])
    try:
        cp = subprocess.run(argv, input=stdin, capture_output=True,
                            timeout=timeout, cwd=g.root, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("%s did not finish within %ss" % (argv[:4], timeout))
    cp.stdout = cp.stdout.decode("utf-8", "replace")
    cp.stderr = cp.stderr.decode("utf-8", "replace")
    check_sanitizers(cp.stderr, "gatherd %s" % args[0])
    return cp


def submit(g, urls, via_stdin=False, timeout=60):
    if via_stdin:
        data = "".join(u + "\n" for u in urls).encode()
        return run_cli(g, ["submit", "-"], stdin=data, timeout=timeout)
    return run_cli(g, ["submit"] + list(urls), timeout=timeout)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# ------------------------------------------------------------ mounts

class Mount:
    """A small file system mounted by the test (root only): a tmpfs, or an
    ext4 image on a loop device.  Unmounted by close()."""

    def __init__(self, path, size, extra="", fstype="tmpfs"):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.mounted = False
        if fstype == "tmpfs":
            opts = "size=%s" % size + ("," + extra if extra else "")
            argv = ["mount", "-t", "tmpfs", "-o", opts, "tmpfs",
                    str(self.path)]
        else:
            img = self.path.with_name(self.path.name + ".img")
            with open(img, "wb") as f:
                f.truncate(int(size))
            cp = subprocess.run(["mkfs.ext4", "-q", "-F", str(img)],
                                capture_output=True, text=True, timeout=60)
            if cp.returncode != 0:
                self.error = "mkfs.ext4: " + cp.stderr.strip()
                return
            argv = ["mount", "-o", "loop" + ("," + extra if extra else ""),
                    str(img), str(self.path)]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.mounted = cp.returncode == 0
        self.error = cp.stderr.strip()

    def remount(self, opts):
        subprocess.run(["mount", "-o", "remount," + opts, str(self.path)],
                       check=True, capture_output=True, timeout=30)

    def close(self):
        if not self.mounted:
            return
        for _ in range(20):
            cp = subprocess.run(["umount", str(self.path)],
                                capture_output=True, timeout=30)
            if cp.returncode == 0:
                self.mounted = False
                return
            time.sleep(0.25)
        # Still busy (a process we could not stop): detach it lazily so
        # the machine is not left with a stale mount.
        subprocess.run(["umount", "-l", str(self.path)],
                       capture_output=True, timeout=30)
        self.mounted = False


def can_mount_tmpfs(tmp_path):
    m = Mount(tmp_path / "probe_mount", "64k")
    ok, err = m.mounted, m.error
    m.close()
    return ok, err

"""Crash safety: gatherd is killed with SIGKILL at random moments (while it
opens the database, while it ingests the queue file, while it fetches and
writes results) and restarted each time; finally a `--once` run completes
the work.  Every line of the queue file must end as exactly one row, in
file order, none queued, each done with the right status and length.
Once, while gatherd is down, the queue file is rotated (renamed to
queue.1, usually not fully ingested) and a new one is started.

The second test does the same while several `gatherd submit` processes
append to the queue file (through arguments and through standard input).

Random delays come from a seed printed in the test output; replay a failure
with GATHERD_TEST_SEED=<seed>.  Workloads shrink for the sanitizer build
(GATHERD_TEST_SCALE overrides)."""

import os
import random
import sqlite3
import threading
import time

from ops_helpers import (SCALE, assert_all_lines_valid_urls,
                         assert_exactly_once, assert_rows_are_prefix,
                         assert_rows_consistent, db_rows, error_lines,
                         expected_length, kill9, make_rng, queue_file_lines,
                         scaled, submit)

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
FILES = ["one.txt", "page.html", "empty.txt", "one.txt", "page.html"]
CONFIG = {"gatherd": {"stats_interval_s": 1},
          "fetch": {"max_in_flight": 64, "max_per_host": 16,
                    "retries": 2, "retry_backoff_ms": 50}}


def nginx_urls(nginx, start, n, tag):
    # Padding of varying length: the file is read in 256 KiB chunks, one
    # transaction each, so longer lines mean more ingest transactions to
    # be killed between (and inside).
    return [nginx.url("%s?%s=%d&pad=%s" % (FILES[i % len(FILES)], tag, i,
                                           "p" * (i * 37 % 300)),
                      host=HOSTS[i % len(HOSTS)])
            for i in range(start, start + n)]


def write_block(g, urls, invalid_every=0, tag=""):
    """Append `urls` to the queue file with a comment and a blank line
    every 997 lines and, when asked, an invalid line every `invalid_every`
    lines (it must become one failed invalid_url row)."""
    out = []
    for i, u in enumerate(urls):
        if i % 997 == 0:
            out.append("# %s block at %d" % (tag, i))
            out.append("")
        if invalid_every and i % invalid_every == invalid_every - 1:
            out.append("not a url %s %d" % (tag, i))
        out.append(u)
    with open(g.queue, "a") as f:
        f.write("".join(l + "\n" for l in out))


def check_final(g, lines, invalid_prefix="not a url"):
    rows = db_rows(g, "*")
    assert_exactly_once(rows, lines, "after the final --once run")
    assert_rows_consistent(rows, "after the final --once run")
    queued = [r for r in rows if r["state"] == "queued"]
    assert not queued, "%d rows still queued, e.g. %r" % (len(queued),
                                                         queued[:3])
    wrong = []
    for r in rows:
        if r["url"].startswith(invalid_prefix):
            ok = r["state"] == "failed" and r["error"] == "invalid_url"
        else:
            ok = (r["state"] == "done" and r["status"] == 200 and
                  r["length"] == expected_length(r["url"]))
        if not ok:
            wrong.append({k: r[k] for k in ("id", "url", "state", "status",
                                            "length", "error",
                                            "error_detail", "attempts")})
    assert not wrong, "%d rows with a wrong result, e.g. %r" % (len(wrong),
                                                               wrong[:5])
    return rows


class KillLog:
    """What each kill interrupted, judged from the database afterwards."""

    def __init__(self):
        self.entries = []
        self.during_ingest = 0
        self.during_fetch = 0
        self.last_finished = 0

    def record(self, n, delay, rows, n_lines, note="", ready=True):
        finished = sum(1 for r in rows if r["state"] != "queued")
        queued = len(rows) - finished
        # Before 'ready' gatherd was still opening the database.
        ingest = ready and len(rows) < n_lines
        fetch = queued > 0 and finished > self.last_finished
        self.during_ingest += ingest
        self.during_fetch += fetch
        line = ("kill %d after %.3fs%s: rows %d of %d lines, finished %d "
                "(+%d), queued %d%s%s" % (
                    n, delay, note, len(rows), n_lines, finished,
                    finished - self.last_finished, queued,
                    ", ingestion interrupted" if ingest else "",
                    ", fetching interrupted" if fetch else ""))
        self.last_finished = finished
        self.entries.append(line)
        print(line, flush=True)


def max_id(g):
    try:
        r = g.query("SELECT max(id) AS m FROM urls")
    except sqlite3.OperationalError:
        return 0                     # schema not created yet
    except RuntimeError as e:        # the same, in PostgreSQL (psql)
        if "does not exist" in str(e):
            return 0
        raise
    return (r[0]["m"] or 0) if r else 0


def start_and_kill(g, rng, delay, from_ready=True, after_first_ingest=False,
                   lines_fn=None, static_lines=False):
    """Start the daemon, wait `delay` s (after its 'ready' line, after the
    first ingest transaction of this run is visible, or after the process
    started), SIGKILL it.  Returns the time from that point to the kill,
    whether gatherd had logged 'ready', and how many lines the queue file
    had just before the kill.  With static_lines (nothing appends while
    gatherd runs) the lines are counted before the start: counting ~100k
    lines between the decision and the kill took longer than ingesting a
    whole block, so no kill landed inside ingestion."""
    before = max_id(g) if after_first_ingest else 0
    n_static = None
    if static_lines:
        n_static = len(lines_fn() if lines_fn else queue_file_lines(g.queue))
    proc = g.start()
    t0 = time.monotonic()
    if from_ready:
        g.wait_ready(proc, timeout=60)
        t0 = time.monotonic()
    if after_first_ingest:
        deadline = time.monotonic() + 60
        while max_id(g) == before and time.monotonic() < deadline and \
                proc.poll() is None:
            time.sleep(0.002)
        t0 = time.monotonic()
    time.sleep(delay)
    assert proc.poll() is None, (
        "gatherd exited (%s) before it was killed; stderr:\n%s"
        % (proc.returncode, g.stderr_of(proc)[-3000:]))
    if n_static is not None:
        n_lines = n_static
    else:
        n_lines = len(lines_fn() if lines_fn else queue_file_lines(g.queue))
    kill9(proc)
    text = g.stderr_of(proc)
    errs = error_lines(text)
    assert not errs, "error lines in a run that was then killed: %r" % errs[:5]
    return time.monotonic() - t0, " ready: " in text, n_lines


def test_kill9_at_random_moments(gatherd, nginx):
    g = gatherd
    rng, seed = make_rng("test_kill9_at_random_moments")
    n_total = scaled(30000, 4000)
    g.write_config(**CONFIG)
    # The queue file grows in three blocks, each appended while gatherd is
    # stopped, so that several runs start with ingestion to do.  Before the
    # second block the file is rotated (renamed to queue.1, most likely not
    # fully ingested yet): gatherd must find and finish it after the
    # restart, then read the new file.
    sizes = [n_total // 2, n_total // 4, n_total - n_total // 2 - n_total // 4]
    blocks, start = [], 0
    for k, n in enumerate(sizes):
        blocks.append(nginx_urls(nginx, start, n, "c%d" % k))
        start += n
    kills = KillLog()
    min_kills, max_kills = 5, 12
    next_block = 0
    t_begin = time.monotonic()
    rotated = g.root / "queue.1"

    def all_lines():
        return queue_file_lines(rotated) + queue_file_lines(g.queue)

    while True:
        k = len(kills.entries)
        fresh = False
        if next_block >= 1 and not rotated.exists() and db_rows(g):
            # (Only once gatherd has stored a position in the file: before
            # that, queue.1 would be just another file to it.)
            os.rename(g.queue, rotated)
            print("queue file rotated after %d of %d lines were ingested"
                  % (len(db_rows(g)), len(all_lines())))
        if next_block < len(blocks):
            write_block(g, blocks[next_block], invalid_every=4999,
                        tag="b%d" % next_block)
            next_block += 1
            fresh = True
        lines = all_lines()
        if k == 0:
            # Right after exec: opening/migrating the database, or the
            # first ingest.
            delay, ready, n_lines = start_and_kill(
                g, rng, rng.uniform(0.0, 0.4), from_ready=False,
                lines_fn=all_lines, static_lines=True)
            note = " of exec"
        elif fresh and (k % 2 == 1 or next_block > len(sizes)):
            # Soon after this run's first ingest transaction: most likely
            # before the rest of the new block is stored.
            delay, ready, n_lines = start_and_kill(
                g, rng, rng.uniform(0.0, 0.02) if k < 4 else 0.0,
                after_first_ingest=True, lines_fn=all_lines, static_lines=True)
            note = " of its first ingest commit"
        elif fresh or (kills.during_ingest == 0 and k % 2 == 0):
            delay, ready, n_lines = start_and_kill(
                g, rng, rng.uniform(0.0, 0.3 / SCALE), lines_fn=all_lines, static_lines=True)
            note = " of ready"
        else:
            delay, ready, n_lines = start_and_kill(
                g, rng, rng.uniform(0.2, 2.0 / SCALE), lines_fn=all_lines, static_lines=True)
            note = " of ready"
        rows = db_rows(g)
        assert_rows_are_prefix(rows, lines, "after kill %d" % (k + 1))
        assert_rows_consistent(rows, "after kill %d" % (k + 1))
        kills.record(k + 1, delay, rows, n_lines, note, ready)
        finished = sum(1 for r in rows if r["state"] != "queued")
        if len(kills.entries) >= max_kills:
            break
        if (len(kills.entries) >= min_kills and next_block >= len(blocks) and
                kills.during_ingest >= 1 and kills.during_fetch >= 1):
            break
        if next_block >= len(blocks) and (finished == len(lines) or
                                          kills.during_ingest == 0):
            # Everything finished before enough kills, or no kill hit
            # ingestion yet (a loaded machine makes delays longer): another
            # block of several 256 KiB chunks, killed right after its
            # first ingest commit.
            extra = nginx_urls(nginx, start, scaled(16000, 4000), "x")
            start += len(extra)
            blocks.append(extra)

    assert kills.during_ingest >= 1 and kills.during_fetch >= 1, (
        "seed %d: the kills did not hit both ingestion and fetching:\n%s"
        % (seed, "\n".join(kills.entries)))

    lines = all_lines()
    cp, took = g.once(timeout=240)
    errs = error_lines(cp.stderr)
    assert not errs, "error lines in the final run: %r" % errs[:5]
    rows = check_final(g, lines)
    print("seed %d: %d kills, %d rows, final run %.1fs, total %.1fs"
          % (seed, len(kills.entries), len(rows), took,
             time.monotonic() - t_begin))


class Submitter(threading.Thread):
    """Appends `urls` with `gatherd submit` in batches of random sizes,
    alternating URL arguments and standard input ("-")."""

    def __init__(self, g, idx, urls, rng):
        super().__init__(name="submitter-%d" % idx, daemon=True)
        self.g, self.idx, self.urls, self.rng = g, idx, urls, rng
        self.failures = []
        self.batches = 0
        self.stop = False

    def run(self):
        i = 0
        # About 15 batches whatever the scale, so that appending spans
        # several kill cycles.
        avg = max(20, len(self.urls) // 15)
        while i < len(self.urls) and not self.stop:
            n = self.rng.randint(avg // 4, avg * 7 // 4)
            batch = self.urls[i:i + n]
            via_stdin = self.batches % 2 == 1
            try:
                cp = submit(self.g, batch, via_stdin=via_stdin, timeout=60)
            except BaseException as e:  # pytest.fail in a thread
                self.failures.append("batch %d: %r" % (self.batches, e))
                return
            if cp.returncode != 0 or "queued %d URL" % len(batch) \
                    not in cp.stderr:
                self.failures.append("batch %d (%s, %d URLs): exit %d, %s"
                                     % (self.batches,
                                        "stdin" if via_stdin else "args",
                                        len(batch), cp.returncode,
                                        cp.stderr.strip()[-500:]))
                return
            i += n
            self.batches += 1
            time.sleep(self.rng.uniform(0.05, 0.25))


def test_kill9_while_submitters_append(gatherd, nginx):
    g = gatherd
    rng, seed = make_rng("test_kill9_while_submitters_append")
    n_sub, per_sub = 4, scaled(5000, 1000)
    g.write_config(**CONFIG)
    subs = []

    def start_round(r):
        """n_sub more submitters, each with per_sub new URLs.  One in 200
        is a slow page (about a second): whatever the speed of the
        machine and the build, some fetches are in flight at nearly every
        kill (a kill that interrupts fetching is one of the cases this
        test needs; with fast pages only, gatherd had caught up at every
        kill of a run on a loaded machine).  Few enough that they hold a
        fraction of the 64 slots and the fast pages keep flowing."""
        for s in range(n_sub):
            idx = r * n_sub + s
            urls = [nginx.url("%s?s%d=%d" % (
                        "slow/page.html" if i % 200 == 3
                        else FILES[i % len(FILES)], idx, i),
                              host=HOSTS[(i + s) % len(HOSTS)])
                    for i in range(per_sub)]
            sub = Submitter(g, idx, urls, random.Random(seed * 31 + idx))
            subs.append(sub)
            sub.start()

    kills = KillLog()
    t_begin = time.monotonic()
    rounds = 1
    while_appending = 0
    try:
        start_round(0)
        k = 0
        while True:
            k += 1
            if k == 1:
                delay, ready, n_lines = start_and_kill(
                    g, rng, rng.uniform(0.0, 0.4), from_ready=False)
                note = " of exec"
            elif k % 3 == 0:
                # Lines appended while gatherd was down wait for it: kill
                # right after its first ingest commit.
                delay, ready, n_lines = start_and_kill(
                    g, rng, rng.uniform(0.0, 0.01), after_first_ingest=True)
                note = " of its first ingest commit"
            else:
                delay, ready, n_lines = start_and_kill(
                    g, rng, rng.uniform(0.05, 0.8 / SCALE))
                note = " of ready"
            appending = any(s.is_alive() for s in subs)
            while_appending += appending
            lines = queue_file_lines(g.queue)
            rows = db_rows(g)
            assert_rows_are_prefix(rows, lines, "after kill %d" % k)
            assert_rows_consistent(rows, "after kill %d" % k)
            kills.record(k, delay, rows, n_lines,
                         note + (", submitters appending" if appending
                                 else ""), ready)
            for s in subs:
                assert not s.failures, "submitter %d: %s" % (s.idx,
                                                             s.failures)
            if appending:
                continue
            if k >= 4 and while_appending >= 3 and kills.during_fetch >= 1:
                break
            # The submitters finished before enough kills (fast machine or
            # slow build): another round.
            assert rounds < 3, (
                "seed %d: not enough kills while submitters appended:\n%s"
                % (seed, "\n".join(kills.entries)))
            start_round(rounds)
            rounds += 1
        for s in subs:
            s.join(timeout=60)
            assert not s.is_alive(), "submitter %d hangs" % s.idx
            assert not s.failures, "submitter %d: %s" % (s.idx, s.failures)
    finally:
        for s in subs:
            s.stop = True
        for s in subs:
            s.join(timeout=60)

    # No interleaved or partial lines in the file, and every submitted URL
    # is in it exactly once.
    assert_all_lines_valid_urls(g.queue)
    lines = queue_file_lines(g.queue)
    submitted = [u for s in subs for u in s.urls]
    assert sorted(lines) == sorted(submitted), (
        "queue file lines differ from the submitted URLs")
    # Each submitter's URLs keep their order in the file.
    for s in subs:
        mine = set(s.urls)
        assert [u for u in lines if u in mine] == s.urls

    cp, took = g.once(timeout=240)
    errs = error_lines(cp.stderr)
    assert not errs, "error lines in the final run: %r" % errs[:5]
    rows = check_final(g, lines)
    assert len(rows) == len(subs) * per_sub
    print("seed %d: %d kills (%d while appending, %d during ingestion, %d "
          "during fetching), %d rows, final run %.1fs, total %.1fs"
          % (seed, len(kills.entries), while_appending, kills.during_ingest,
             kills.during_fetch, len(rows), took,
             time.monotonic() - t_begin))

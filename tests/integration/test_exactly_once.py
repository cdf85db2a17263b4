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

from conftest import wait_for


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

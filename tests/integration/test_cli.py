"""Command line and configuration errors: exit codes and messages."""

import os
import re

import pytest

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


def test_version(gatherd):
    cp = gatherd.run("--version", config=False)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "gatherd 0.1.0"


def test_help(gatherd):
    cp = gatherd.run("--help", config=False)
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout + cp.stderr
    assert re.search(r"usage", out, re.I), out
    for word in ("--once", "-c", "--set", "check-config"):
        assert word in out, (word, out)


def test_unknown_option_is_usage_error(gatherd):
    cp = gatherd.run("--no-such-option", config=False)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert cp.stderr.strip()


def test_check_config_prints_effective_config(gatherd):
    gatherd.write_config(fetch={"max_in_flight": 33, "max_per_host": 3})
    cp = gatherd.run("check-config")
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"(?m)^\s*max_in_flight\s*=\s*33\s*$", cp.stdout), cp.stdout
    assert re.search(r"(?m)^\s*max_per_host\s*=\s*3\s*$", cp.stdout), cp.stdout
    # Defaults appear too.
    assert re.search(r"(?m)^\s*idle_timeout_ms\s*=\s*30000\s*$", cp.stdout)
    # Relative paths were resolved against the config file's directory.
    assert str(gatherd.root / "results.db") in cp.stdout, cp.stdout


def test_set_overrides_file(gatherd):
    gatherd.write_config(fetch={"max_in_flight": 33})
    cp = gatherd.run("check-config", "--set", "fetch.max_in_flight=7",
                     "--set", "dns.timeout_ms=1234")
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"(?m)^\s*max_in_flight\s*=\s*7\s*$", cp.stdout), cp.stdout
    assert not re.search(r"(?m)^\s*max_in_flight\s*=\s*33\s*$", cp.stdout)
    assert re.search(r"(?m)^\s*timeout_ms\s*=\s*1234\s*$", cp.stdout), cp.stdout


def test_set_unknown_key(gatherd):
    gatherd.write_config()
    cp = gatherd.run("check-config", "--set", "fetch.bogus_key=1")
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert "bogus_key" in cp.stderr


CONFIG_ERRORS = [
    # (name, text of [fetch] lines, line number, key)
    ("unknown_key", ["retries = 0", "no_such_key = 5"], 6, "no_such_key"),
    ("not_a_number", ["max_in_flight = abc"], 5, "max_in_flight"),
    ("out_of_range", ["retries = 0", "max_in_flight = 0"], 6, "max_in_flight"),
    ("header_min", ["max_header_bytes = 1000"], 5, "max_header_bytes"),
    ("bad_suffix", ["max_body_bytes = 12q"], 5, "max_body_bytes"),
    ("negative", ["connect_timeout_ms = -5"], 5, "connect_timeout_ms"),
]


@pytest.mark.parametrize("name,fetch_lines,line,key", CONFIG_ERRORS,
                         ids=[c[0] for c in CONFIG_ERRORS])
@pytest.mark.parametrize("mode", ["check-config", "run"])
def test_config_error(gatherd, name, fetch_lines, line, key, mode):
    text = "\n".join([
        "[gatherd]",                    # 1
        "queue_file = queue",           # 2
        "database = results.db",        # 3
        "[fetch]",                      # 4
    ] + fetch_lines) + "\n"
    gatherd.write_config(text)
    if mode == "check-config":
        cp = gatherd.run("check-config")
    else:
        cp = gatherd.run("--once", timeout=30)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "%s:%d" % (gatherd.conf, line) in cp.stderr, cp.stderr
    assert key in cp.stderr, cp.stderr
    if mode == "run":
        assert not gatherd.db.exists()


def test_bad_value_in_gatherd_section(gatherd):
    gatherd.write_config("[gatherd]\nqueue_file = queue\n"
                         "database = results.db\nlog_level = loud\n")
    cp = gatherd.run("check-config")
    assert cp.returncode == 2
    assert "%s:4" % gatherd.conf in cp.stderr and "log_level" in cp.stderr


def test_unknown_section(gatherd):
    gatherd.write_config("[gatherd]\nqueue_file = queue\n"
                         "database = results.db\n[nosuch]\nkey = 1\n")
    cp = gatherd.run("check-config")
    assert cp.returncode == 2
    # The section header (line 4) or its first key (line 5) may be named.
    assert ("%s:4" % gatherd.conf in cp.stderr
            or "%s:5" % gatherd.conf in cp.stderr), cp.stderr
    assert "nosuch" in cp.stderr, cp.stderr


@pytest.mark.sqlite_only  # the database file's directory
def test_missing_database_directory(gatherd):
    gatherd.write_config(gatherd={"database": "no/such/dir/results.db"})
    cp = gatherd.run("check-config")
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "database" in cp.stderr
    cp = gatherd.run("--once", timeout=30)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert not (gatherd.root / "no").exists()


def test_missing_queue_directory(gatherd):
    gatherd.write_config(gatherd={"queue_file": "nope/queue"})
    cp = gatherd.run("--once", timeout=30)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "queue_file" in cp.stderr


def test_missing_config_file(gatherd):
    cp = gatherd.run("check-config", "-c", str(gatherd.root / "absent.conf"),
                     config=False)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "absent.conf" in cp.stderr


def test_relative_paths_resolve_against_config_dir(gatherd, fault_server,
                                                   tmp_path):
    """Run from another directory: queue and database are still found next
    to the config file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gatherd.write_config()
    gatherd.write_queue([fault_server.url("/ok?len=5")])
    cp = gatherd.run("--once", cwd=elsewhere, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert os.listdir(elsewhere) == []
    rows = gatherd.rows()
    assert [(r["state"], r["length"]) for r in rows] == [("done", 5)]


def test_usage_errors_are_one_line(gatherd):
    """A usage error is one line and a pointer to --help (exit 2), not
    the whole help; options are checked against their command."""
    for args, msg in (
            (["--no-such-option"], "unrecognized option"),
            (["bogus-command"], 'gatherd: unknown command "bogus-command"'),
            (["status", "--once"], "gatherd status: --once is not an "
                                   "option of status"),
            (["--json"], "gatherd: --json is not an option of the daemon"),
            (["prune", "--url-like", "x"], "gatherd prune: --url-like is "
                                           "not an option of prune"),
            (["status", "extra"], 'gatherd status: unexpected argument '
                                  '"extra"')):
        cp = gatherd.run(*args, config=False)
        assert cp.returncode == 2, (args, cp.stderr)
        lines = [l for l in cp.stderr.splitlines() if l]
        assert lines[-1] == "Try 'gatherd --help'.", (args, cp.stderr)
        assert len(lines) <= 2 and msg in lines[0], (args, cp.stderr)
        assert "usage:" not in cp.stderr


def test_not_a_url_is_a_missing_scheme(gatherd):
    gatherd.write_config()
    cp = gatherd.run("submit", "-c", str(gatherd.conf), "not a url",
                     config=False)
    assert cp.returncode == 2
    assert "missing scheme" in cp.stderr, cp.stderr


def test_reload_logs_each_changed_key(gatherd):
    """SIGHUP logs every changed key as `key: old -> new`; a key that
    needs a restart is a warning naming it, and keeps its value; proxy
    credentials and header values stay out of the log."""
    import signal
    from conftest import wait_for
    g = gatherd
    g.write_config(fetch={"max_in_flight": 64,
                          "proxy": "http://u:hunter2@127.0.0.1:9"})
    proc = g.start()
    g.wait_ready(proc)
    g.write_config(fetch={"max_in_flight": 8, "header": "Cookie: secret=1",
                          "proxy": "http://u:hunter3@127.0.0.1:10"},
                   gatherd={"database": "other.db"})
    proc.send_signal(signal.SIGHUP)
    g.wait_log(proc, "configuration reloaded", 10)
    rc, _ = g.stop(proc)
    err = g.stderr_of(proc)
    assert rc == 0
    assert "info: reload: [fetch] max_in_flight: 64 -> 8" in err, err
    assert "info: reload: [fetch] header: 0 values -> 1 value" in err, err
    assert re.search(r"warn: reload: \[gatherd\] database: \S+/results\.db "
                     r"-> \S+/other\.db needs a restart", err), err
    assert ("warn: reload: [fetch] proxy: http://***@127.0.0.1:9 -> "
            "http://***@127.0.0.1:10 needs a restart") in err, err
    assert "hunter" not in err and "secret=1" not in err


def test_stats_line_and_queue_removal_messages(gatherd, fault_server):
    """The stats line does not count rows in flight as queued, and `rm
    queue` is logged as a removal, not as a rotation."""
    import signal
    from conftest import wait_for
    f = fault_server
    g = gatherd
    urls = [f.url("/slow?ms=3000&len=1&i=%d" % i) for i in range(4)]
    g.write_config(gatherd={"stats_interval_s": 1},
                   fetch={"max_in_flight": 4, "max_per_host": 4})
    g.write_queue(urls)
    proc = g.start()
    g.wait_ready(proc)
    g.wait_log(proc, "in flight 4, queued 0,", 10)
    os.unlink(g.queue)
    wait_for(lambda: "was removed: waiting for a new one" in
             g.stderr_of(proc), 10, what="the removal logged")
    rc, _ = g.stop(proc, signal.SIGINT)
    err = g.stderr_of(proc)
    assert "was rotated" not in err, err
    assert not re.search(r"in flight 4, queued [1-9]", err), err


def test_quoted_user_agent_warns(gatherd):
    gatherd.write_config(fetch={"user_agent": '"mybot/1.0"'})
    cp = gatherd.run("check-config")
    assert cp.returncode == 0, cp.stderr
    assert "user_agent is quoted" in cp.stderr
    assert "the quotes are sent as written" in cp.stderr


def status(g, *args):
    import json
    from ops_helpers import run_cli
    cp = run_cli(g, ["status"] + list(args))
    return cp, (json.loads(cp.stdout) if "--json" in args and
                cp.stdout.strip() else None)


def test_status_daemon_hosts_and_check(gatherd, fault_server):
    """status shows whether a daemon runs (pid and uptime from the lock,
    its heartbeat), the busiest hosts like pgbouncer's SHOW POOLS, and
    --check answers for a health check: 0 while a daemon holds the lock
    and writes fresh heartbeats, 1 with the reason otherwise."""
    import signal
    from conftest import wait_for
    f = fault_server
    g = gatherd
    slow = [f.url("/slow?ms=20000&len=1&s=%d" % i, host="127.0.0.2")
            for i in range(3)]
    quick = [f.url("/ok?len=5&q=%d" % i, host="127.0.0.3")
             for i in range(4)]
    broken = [f.url("/drop?d=%d" % i, host="127.0.0.4") for i in range(2)]
    g.write_config(gatherd={"stats_interval_s": 1},
                   fetch={"max_per_host": 3})
    g.write_queue(slow + quick + broken)
    cp, js = status(g, "--check", "--json")
    assert cp.returncode == 1 and js["healthy"] is False, cp.stdout
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: g.count("state != 'queued'") == 6, 20,
             what="the quick and broken rows")
    wait_for(lambda: status(g, "--check")[0].returncode == 0, 10,
             what="status --check healthy")
    # In flight per host comes with the heartbeat (every second here).
    def busy():
        js = status(g, "--json", "--hosts", "5")[1]
        return js if js["daemon"].get("in_flight") == 3 else None
    js = wait_for(busy, 10, what="a heartbeat with 3 in flight")
    d = js["daemon"]
    assert d["running"] and d["pid"] == proc.pid and d["healthy"], d
    assert 0 <= d["uptime_s"] < 60 and d["heartbeat_age_s"] <= 3, d
    hosts = {h["host"]: h for h in js["hosts"]}
    h = hosts["127.0.0.2:%d" % f.port]
    assert (h["queued"], h["in_flight"], h["done"]) == (3, 3, 0), h
    h = hosts["127.0.0.3:%d" % f.port]
    assert (h["queued"], h["done"], h["failed"]) == (0, 4, 0), h
    assert h["median_ms"] is not None and h["median_ms"] >= 0
    h = hosts["127.0.0.4:%d" % f.port]
    assert (h["failed"], h["median_ms"]) == (2, None), h
    # The busiest first: most queued rows.
    assert js["hosts"][0]["host"] == "127.0.0.2:%d" % f.port
    cp, _ = status(g, "--hosts", "2")
    assert "127.0.0.2:%d" % f.port in cp.stdout
    assert re.search(r"daemon\s+running, pid %d, up \d+s" % proc.pid,
                     cp.stdout), cp.stdout
    assert len([l for l in cp.stdout.splitlines()
                if re.match(r"127\.0\.0\.\d:", l)]) == 2

    # A daemon that stops answering: SIGSTOP freezes its loop and its
    # heartbeat; --check notices within a few intervals.
    proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: status(g, "--check")[0].returncode == 1, 15,
                 what="status --check noticing the frozen daemon")
        cp, _ = status(g, "--check")
        assert "last wrote a heartbeat" in cp.stderr, cp.stderr
    finally:
        proc.send_signal(signal.SIGCONT)
    rc, _ = g.stop(proc, signal.SIGINT)
    assert rc == 0
    cp, js = status(g, "--check", "--json")
    assert cp.returncode == 1 and "no gatherd runs" in js["reason"], js
    cp, js = status(g, "--json")
    assert js["daemon"] == {"running": False}


@pytest.mark.sqlite_only  # a missing database file
def test_status_needs_only_the_database(gatherd, tmp_path):
    """status reads the database only: a queue file directory that does
    not exist (a config made for another machine) does not stop it; and
    with --json an error is JSON too."""
    import json
    g = gatherd
    g.write_config()
    g.queue.write_text("")
    g.once()
    g.write_config(gatherd={"queue_file": str(tmp_path / "nowhere" / "q")})
    cp, js = status(g, "--json")
    assert cp.returncode == 0, cp.stderr
    assert js["queued"] == 0
    g.write_config(gatherd={"database": str(tmp_path / "missing.db")})
    cp, js = status(g, "--json")
    assert cp.returncode == 1, cp.stdout
    assert "cannot open database" in js["error"], js

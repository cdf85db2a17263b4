"""The Prometheus endpoint (issue 13): the exposition checked by the real
promtool, counters that match the results view, /healthz, and a real
Prometheus server on loopback that scrapes gatherd and answers a query for
one of its counters."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_tcp_port, kill_group, port_open, wait_for

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers
    except (urllib.error.URLError, ConnectionError):
        return 0, "", None


def sample(text, name, labels=None):
    """The value of one sample in exposition text."""
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def start_with_metrics(g, fault_server, extra=None):
    port = free_tcp_port("127.0.0.1")
    g.write_config(metrics={"listen": "127.0.0.1:%d" % port},
                   **(extra or {}))
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: port_open("127.0.0.1", port), 10, what="metrics port")
    return proc, "http://127.0.0.1:%d" % port


def test_metrics_are_valid_and_match_the_database(gatherd, fault_server):
    f = fault_server
    g = gatherd
    ok = [f.url("/ok?len=100&i=%d" % i) for i in range(6)]
    notfound = [f.url("/status?code=404&i=%d" % i) for i in range(2)]
    broken = [f.url("/drop?i=%d" % i) for i in range(3)]
    # Rows already in the database at start count too.
    g.write_config()
    g.write_queue(ok[:2] + ["not a url"])
    g.once()
    g.write_queue(ok[2:] + notfound + broken, mode="a")
    proc, base = start_with_metrics(g, f)
    try:
        wait_for(lambda: g.count("state != 'queued'") == 12, 20,
                 what="every row finished")
        status, text, headers = get(base + "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        if PROMTOOL:
            cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                                capture_output=True, text=True, timeout=30)
            assert cp.returncode == 0, cp.stdout + cp.stderr
        # The totals match the results view.
        db = {(r["state"], r["error"] or ""): r["n"] for r in g.query(
            "SELECT state, error, count(*) AS n FROM results "
            "WHERE state != 'queued' GROUP BY 1, 2")}
        for (state, err), n in db.items():
            v = sample(text, "gatherd_results_total",
                       'state="%s",error="%s"' % (state, err))
            assert v == n, (state, err, v, n, text[:3000])
        assert sample(text, "gatherd_responses_total", 'class="2xx"') == 4
        assert sample(text, "gatherd_responses_total", 'class="4xx"') == 2
        # 4 x 100 bytes, and the two 404s' 10-byte bodies.
        assert sample(text, "gatherd_response_bytes_total") == 420
        assert sample(text, "gatherd_fetches_in_flight") == 0
        assert sample(text, "gatherd_urls_queued") == 0
        assert sample(text, "gatherd_build_info",
                      'version="0.1.0"') == 1
        assert sample(text, "gatherd_fetch_duration_seconds_count") == 9
        assert sample(text, "gatherd_db_write_batches_total") >= 1
        assert sample(text, "gatherd_connections_opened_total") >= 1
        # /healthz while the database takes writes.
        status, body, _ = get(base + "/healthz")
        assert (status, body) == (200, "ok\n")
        assert get(base + "/nope")[0] == 404
    finally:
        rc, _ = g.stop(proc)
    assert rc == 0


def test_healthz_says_when_the_database_fails(gatherd, fault_server):
    """503 with the reason while result writes fail (the database made
    read-only under the daemon), 200 again once they go through."""
    import sqlite3
    f = fault_server
    g = gatherd
    proc, base = start_with_metrics(g, f)
    try:
        assert get(base + "/healthz")[0] == 200
        # Hold a write lock from outside: the daemon's writes fail (after
        # its busy timeout) while it lasts.
        con = sqlite3.connect(str(g.db), timeout=30,
                              isolation_level=None)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("BEGIN EXCLUSIVE")
        try:
            g.append_raw(f.url("/ok?len=1&h=1") + "\n")
            wait_for(lambda: get(base + "/healthz")[0] == 503, 30,
                     what="/healthz answering 503")
            status, body, _ = get(base + "/healthz")
            assert "database" in body, body
        finally:
            con.execute("ROLLBACK")
            con.close()
        wait_for(lambda: get(base + "/healthz")[0] == 200, 30,
                 what="/healthz back to 200")
    finally:
        rc, _ = g.stop(proc)
    assert rc == 0


def test_a_real_prometheus_scrapes_gatherd(gatherd, fault_server, tmp_path):
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (scripts/test installs "
                    "it)")
    f = fault_server
    g = gatherd
    urls = [f.url("/ok?len=10&p=%d" % i) for i in range(7)]
    g.write_queue(urls)
    proc, base = start_with_metrics(g, f)
    d = tmp_path / "prom"
    d.mkdir()
    port = free_tcp_port("127.0.0.1")
    target = base.split("//")[1]
    (d / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: gatherd\n"
        "    static_configs:\n      - targets: ['%s']\n" % target)
    prom = subprocess.Popen(
        [PROMETHEUS, "--config.file=%s" % (d / "prometheus.yml"),
         "--storage.tsdb.path=%s" % (d / "data"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"),
        start_new_session=True)
    try:
        wait_for(lambda: g.count("state = 'done'") == 7, 20,
                 what="fetched")
        api = "http://127.0.0.1:%d/api/v1/query?query=" % port

        def scraped_twice():
            s, body, _ = get(api + "gatherd_results_total")
            if s != 200:
                return None
            res = json.loads(body)["data"]["result"]
            done = [r for r in res if r["metric"].get("state") == "done"]
            s2, body2, _ = get(api + "count_over_time(up%5B1m%5D)")
            if s2 != 200:
                return None
            ups = json.loads(body2)["data"]["result"]
            n = int(ups[0]["value"][1]) if ups else 0
            return done if done and n >= 2 and \
                float(done[0]["value"][1]) == 7 else None
        done = wait_for(scraped_twice, 30, interval=0.5,
                        what="Prometheus to scrape twice and see 7 done")
        assert done[0]["metric"]["job"] == "gatherd"
        # Prometheus drops the empty error label of done results.
        assert done[0]["metric"].get("error", "") == ""
    finally:
        kill_group(prom, signal.SIGTERM)
        rc, _ = g.stop(proc)
    assert rc == 0

"""Forward proxies (issue 12), against a real tinyproxy started on
loopback: plain HTTP in absolute form, HTTPS through CONNECT with the
certificate checked against the origin, Basic credentials (never logged),
no_proxy, and a proxy that goes away mid-run."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (free_tcp_port, kill_group, port_open, wait_for)

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class Tinyproxy:
    def __init__(self, root, auth=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self.port = None
        self.proc = None
        self.log = self.root / "tinyproxy.log"

    def start(self):
        for _ in range(5):
            self.port = free_tcp_port("127.0.0.1")
            conf = self.root / "tinyproxy.conf"
            conf.write_text(
                "Port %d\nListen 127.0.0.1\nTimeout 60\n"
                "LogFile \"%s\"\nLogLevel Connect\nMaxClients 200\n"
                "Allow 127.0.0.1\nDisableViaHeader Yes\n%s"
                % (self.port, self.log,
                   "BasicAuth %s %s\n" % self.auth if self.auth else ""))
            self.proc = subprocess.Popen(
                [TINYPROXY, "-d", "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(self.root / "stderr", "ab"),
                start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if port_open("127.0.0.1", self.port):
                    return self
                time.sleep(0.05)
            kill_group(self.proc)
        raise RuntimeError("tinyproxy did not start")

    def requests(self):
        """The request lines tinyproxy logged."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return re.findall(r"Request \(file descriptor \d+\): (.*)", text)

    def stop(self):
        kill_group(self.proc, signal.SIGTERM)


@pytest.fixture
def tinyproxy(tmp_path):
    if not os.access(TINYPROXY, os.X_OK):
        pytest.skip("tinyproxy is not installed (scripts/test installs it)")
    t = Tinyproxy(tmp_path / "tinyproxy").start()
    yield t
    t.stop()


@pytest.fixture
def tinyproxy_auth(tmp_path):
    if not os.access(TINYPROXY, os.X_OK):
        pytest.skip("tinyproxy is not installed (scripts/test installs it)")
    t = Tinyproxy(tmp_path / "tinyproxy-auth",
                  auth=("alice", "s3cret")).start()
    yield t
    t.stop()


def by_url(g):
    return {r["url"]: r for r in g.rows()}


def tok(name):
    return "%s%d" % (name, time.time_ns())


def test_http_and_https_through_the_proxy(gatherd, fault_server_tls,
                                          fault_pki, tinyproxy):
    """Plain HTTP goes to the proxy in absolute form; HTTPS through a
    CONNECT tunnel, TLS (and the certificate check) with the origin; the
    origin sees the requests come from the proxy, and no_proxy hosts go
    direct."""
    f = fault_server_tls
    k = tok("px")
    plain = [f.url("/ok?len=10&key=%s-p%d" % (k, i)) for i in range(5)]
    tls = [f.url("/ok?len=20&key=%s-s%d" % (k, i), scheme="https")
           for i in range(5)]
    direct = f.url("/ok?len=30&key=%s-d" % k, host="127.0.0.3")
    g = gatherd
    g.write_config(fetch={"proxy": "http://127.0.0.1:%d" % tinyproxy.port,
                          "no_proxy": "127.0.0.3"},
                   tls={"ca_file": str(fault_pki["ca"])})
    g.write_queue(plain + tls + [direct])
    g.once()
    rows = by_url(g)
    for u in plain:
        assert (rows[u]["status"], rows[u]["length"]) == (200, 10), rows[u]
        assert rows[u]["remote_ip"] == "127.0.0.1"
    for u in tls:
        r = rows[u]
        assert (r["status"], r["length"]) == (200, 20), r
        assert r["tls_version"] == "TLSv1.3", r
    assert rows[direct]["status"] == 200
    seen = tinyproxy.requests()
    for u in plain:
        assert "GET %s HTTP/1.1" % u in seen, (u, seen[:5])
    connects = [s for s in seen if s.startswith("CONNECT ")]
    assert connects and all(s == "CONNECT 127.0.0.1:%d HTTP/1.1"
                            % f.tls_port for s in connects), connects
    assert not any(("%s-d" % k) in s for s in seen), seen
    # The origin got every request, the TLS ones over TLS.
    for i in range(5):
        assert [r["tls"] for r in f.records("%s-s%d" % (k, i))] == [True]
        assert len(f.records("%s-p%d" % (k, i))) == 1
    assert [r["ip"] for r in f.records("%s-d" % k)] == ["127.0.0.3"]


def test_certificate_is_checked_against_the_origin(gatherd, fault_server_tls,
                                                   tinyproxy, fault_pki):
    """Through the tunnel, the origin's certificate must verify for the
    origin's name: a name it does not cover fails as tls, not as proxy."""
    f = fault_server_tls
    u = "https://127.0.0.1:%d/ok?len=1" % f.tls_port
    bad_name = "https://localhost.localdomain:%d/ok?len=1" % f.tls_port
    g = gatherd
    g.write_config(fetch={"proxy": "http://127.0.0.1:%d" % tinyproxy.port},
                   tls={"ca_file": str(fault_pki["ca"])})
    g.write_queue([u, bad_name])
    g.once()
    rows = by_url(g)
    assert rows[u]["status"] == 200, rows[u]
    r = rows[bad_name]
    # tinyproxy resolves the name itself; either it could not (the
    # machine's resolver is not asked: /etc/hosts may have it) and says
    # so in its reply, or the certificate does not match.
    assert r["state"] == "failed" and r["error"] in ("tls", "proxy"), r


def test_proxy_credentials(gatherd, fault_server_tls, fault_pki,
                           tinyproxy_auth):
    """user:password in the proxy URL (percent-encoded: %72 is r) are sent as
    Proxy-Authorization: Basic, for plain requests and for CONNECT; wrong
    ones end as `proxy` (407) with the reason; the password is never
    logged, even at debug level."""
    t = tinyproxy_auth
    f = fault_server_tls
    k = tok("pa")
    plain = f.url("/ok?len=3&key=%s-p" % k)
    tls = f.url("/ok?len=4&key=%s-s" % k, scheme="https")
    g = gatherd
    g.write_config(gatherd={"log_level": "debug"},
                   fetch={"proxy": "http://alice:s3c%%72et@127.0.0.1:%d"
                          % t.port},
                   tls={"ca_file": str(fault_pki["ca"])})
    g.write_queue([plain, tls])
    cp, _ = g.once()
    rows = by_url(g)
    assert rows[plain]["status"] == 200, rows[plain]
    assert rows[tls]["status"] == 200, rows[tls]
    assert "s3cr" not in cp.stderr and "alice" not in cp.stderr

    g2 = gatherd
    g2.write_config(fetch={"proxy": "http://alice:wrong@127.0.0.1:%d"
                           % t.port},
                    tls={"ca_file": str(fault_pki["ca"])})
    p2 = f.url("/ok?len=3&key=%s-p2" % k)
    s2 = f.url("/ok?len=4&key=%s-s2" % k, scheme="https")
    g2.write_queue([p2, s2], mode="a")
    cp, _ = g2.once()
    rows = by_url(g2)
    # A refused CONNECT is always the proxy's doing: `proxy`, with its
    # status (tinyproxy answers wrong credentials with 401, not 407).
    r = rows[s2]
    assert (r["state"], r["error"]) == ("failed", "proxy"), r
    assert re.search(r"refused CONNECT to 127\.0\.0\.1:\d+: 40[17] ",
                     r["error_detail"]), r
    assert "127.0.0.1:%d" % t.port in r["error_detail"], r
    # A plain request's answer may be the origin's: only 407 is surely
    # the proxy's, and tinyproxy's 401 is recorded as the response it is.
    r = rows[p2]
    assert (r["state"], r["status"]) == ("done", 401), r
    for r in rows.values():
        assert "wrong" not in (r["error_detail"] or "")
    assert f.records("%s-p2" % k) == [] and f.records("%s-s2" % k) == []
    assert "wrong" not in cp.stderr


def test_proxy_that_goes_away(gatherd, fault_server, tmp_path):
    """The proxy dies mid-run: the rows that were still to go fail as
    `proxy` ('cannot connect to proxy ...: Connection refused') after
    their retries; the ones fetched before are kept."""
    if not os.access(TINYPROXY, os.X_OK):
        pytest.skip("tinyproxy is not installed (scripts/test installs it)")
    t = Tinyproxy(tmp_path / "dying").start()
    f = fault_server
    k = tok("pd")
    first = [f.url("/ok?len=5&key=%s-a%d" % (k, i)) for i in range(5)]
    later = [f.url("/ok?len=5&key=%s-b%d" % (k, i)) for i in range(5)]
    g = gatherd
    g.write_config(fetch={"proxy": "http://127.0.0.1:%d" % t.port,
                          "retries": 1, "retry_backoff_ms": 100})
    g.write_queue(first)
    proc = g.start()
    try:
        g.wait_ready(proc)
        wait_for(lambda: g.count("state = 'done'") == 5, 20,
                 what="the first rows through the proxy")
        t.stop()
        g.append_raw("".join(u + "\n" for u in later))
        wait_for(lambda: g.count("state = 'failed'") == 5, 20,
                 what="the later rows failed")
    finally:
        rc, _ = g.stop(proc)
    assert rc == 0
    rows = by_url(g)
    for u in first:
        assert rows[u]["status"] == 200
    for u in later:
        r = rows[u]
        assert (r["error"], r["attempts"]) == ("proxy", 2), r
        assert r["error_detail"] == (
            "cannot connect to proxy 127.0.0.1:%d: Connection refused"
            % t.port), r


def test_407_from_the_proxy_is_a_proxy_error(gatherd, fault_server):
    """A plain request that the proxy answers with 407 is a `proxy`
    failure, not a response (the fault server stands in for the proxy)."""
    f = fault_server
    u = "http://127.0.0.9:1/proxy407?k=%s" % tok("407")
    g = gatherd
    g.write_config(fetch={"proxy": "http://127.0.0.1:%d" % f.port})
    g.write_queue([u])
    g.once()
    r = g.rows()[0]
    assert (r["state"], r["error"]) == ("failed", "proxy"), r
    assert r["error_detail"] == (
        "proxy 127.0.0.1:%d refused the request: 407 Proxy Authentication "
        "Required" % f.port), r

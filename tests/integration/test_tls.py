"""HTTPS: certificate and host-name verification, SNI, ALPN, TLS >= 1.2,
keep-alive and session resumption, clean and unclean TLS shutdown, the
handshake under connect_timeout_ms, and the connect_ms / tls_ms columns.

A throw-away PKI is made with the openssl CLI; a private nginx serves one
TLS server block per scenario (see tls_helpers.TlsNginx) and logs, per
request, the connection serial, $ssl_protocol, $ssl_session_reused,
$ssl_server_name and $ssl_alpn_protocol, so the tests check from the
server's side what gatherd did on the wire.  A scripted TLS server (Python's
ssl module) covers close-delimited bodies with and without close_notify.
"""

import re
import socket
import time

import pytest

from conftest import (CONTENT_TYPES, DOCROOT_FILES, Gatherd, established_to,
                      wait_for)
from tls_helpers import Pki, ScriptedTlsServer, TlsNginx

SUMMARY = re.compile(r"connections opened (\d+), TLS handshakes (\d+) "
                     r"\((\d+) resumed\)")
WARNING = "VERIFICATION IS OFF"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki")).make()


@pytest.fixture(scope="module")
def tls_nginx(tmp_path_factory, pki):
    n = TlsNginx(tmp_path_factory.mktemp("tls_nginx"), pki)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def scripted(pki):
    s = ScriptedTlsServer(*pki.certs["good"]).start()
    yield s
    s.stop()
    assert not s.errors, "scripted TLS server errors: %r" % s.errors


@pytest.fixture
def no_env_trust(monkeypatch):
    """gatherd inherits our environment: make sure no SSL_CERT_FILE /
    SSL_CERT_DIR from outside changes what the 'system store' is."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return monkeypatch


def new_gatherd(gatherd_bin, tmp_path, name):
    return Gatherd(gatherd_bin, tmp_path / name)


def run(g, urls, tls=None, fetch=None, dns=None, timeout=120):
    """Write config and queue, run --once; return (rows by url, stderr,
    seconds taken)."""
    sections = {"fetch": dict({"retries": 0}, **(fetch or {}))}
    if tls:
        sections["tls"] = tls
    if dns:
        sections["dns"] = dns
    g.write_config(**sections)
    g.write_queue(urls)
    cp, took = g.once(timeout=timeout)
    rows = g.rows()
    assert [r["url"] for r in rows] == list(urls)
    return {r["url"]: r for r in rows}, cp.stderr, took


def summary(stderr):
    """(connections opened, TLS handshakes, resumed) from the exit line."""
    m = SUMMARY.findall(stderr)
    assert len(m) == 1, "no single summary line in stderr:\n" + stderr[-3000:]
    return tuple(int(x) for x in m[0])


def assert_done(r, length, ctype=None, status=200):
    assert r["state"] == "done", r
    assert r["status"] == status, r
    assert r["error"] is None and r["error_detail"] is None, r
    assert r["length"] == length, r
    if ctype is not None:
        assert r["content_type"] is not None, r
        assert r["content_type"].split(";")[0].strip() == ctype, r


def assert_failed(r, error, detail_re):
    assert r["state"] == "failed", r
    assert r["error"] == error, r
    assert r["status"] is None and r["length"] is None, r
    assert r["error_detail"], r
    assert re.search(detail_re, r["error_detail"], re.I), (
        "error_detail %r does not match %r (row %r)"
        % (r["error_detail"], detail_re, r))


def ctype_of(name):
    return CONTENT_TYPES[name[name.rindex("."):]]


# ---------------------------------------------------------------- 1. valid

def test_valid_name_and_ip_literal(gatherd, tls_nginx, nginx, pki):
    """A certificate for the name (SNI sent) and for the IP literal (no
    SNI, IP SAN checked) both verify; ALPN http/1.1; TLS 1.3 where the
    server offers it and 1.2 where that is all it has; tls_ms is set on
    https rows fetched on a new connection and NULL on http rows."""
    n = tls_nginx
    tag = "valid%d" % time.time_ns()
    plan = [
        (n.url("good", "page.html?t=%s" % tag), "page.html", 200),
        (n.url("good", "mid.bin?t=%s" % tag, host="127.0.0.1"), "mid.bin",
         200),
        (n.url("tls12", "one.txt?t=%s" % tag), "one.txt", 200),
        (n.url("good", "missing.html?t=%s" % tag), None, 404),
    ]
    plain = nginx.url("one.txt?t=%s" % tag)
    urls = [u for u, *_ in plan] + [plain]
    mark = n.log_mark()
    rows, stderr, _ = run(gatherd, urls, tls={"ca_file": pki.ca_crt})

    for url, name, status in plan:
        r = rows[url]
        if name is None:
            assert r["state"] == "done" and r["status"] == 404, r
        else:
            assert_done(r, DOCROOT_FILES[name], ctype_of(name))
        assert r["attempts"] == 1, r
    assert_done(rows[plain], 1, "text/plain")

    # Server side: protocol, SNI (name only), ALPN, one request per URL.
    log = {e["uri"]: e for e in n.log_entries(mark) if tag in e["uri"]}
    assert len(log) == len(plan), log
    for url, name, _ in plan:
        e = log["/" + url.split("/", 3)[3]]
        assert e["alpn"] == "http/1.1", e
        if "127.0.0.1" in url:
            assert e["sni"] in ("", "-"), ("SNI sent for an IP literal", e)
        else:
            assert e["sni"] == "localhost", e
        want = "TLSv1.2" if e["port"] == n.ports["tls12"] else "TLSv1.3"
        assert e["protocol"] == want, e
        if name is not None:
            assert e["bytes"] == rows[url]["length"], (e, rows[url])

    # Timings: every https row on a new connection has connect_ms and
    # tls_ms; the IP-literal and TLS 1.2 URLs are alone on their
    # (host, port), so they certainly opened one.
    https_rows = [rows[u] for u, *_ in plan]
    fresh = [r for r in https_rows if r["tls_ms"] is not None]
    assert rows[plan[1][0]] in fresh and rows[plan[2][0]] in fresh
    for r in fresh:
        assert r["connect_ms"] is not None, r
        assert 0 <= r["tls_ms"] <= r["elapsed_ms"] + 1, r
        assert 0 <= r["connect_ms"] <= r["elapsed_ms"] + 1, r
    assert rows[plain]["tls_ms"] is None, rows[plain]
    assert rows[plain]["connect_ms"] is not None, rows[plain]

    # One handshake per https connection nginx saw, one tls_ms per
    # handshake, and the exit summary agrees.
    conns = {(e["port"], e["conn"]) for e in log.values()}
    opened, hs, resumed = summary(stderr)
    assert hs == len(conns) == len(fresh), (hs, conns, fresh)
    assert opened == hs + 1, stderr[-2000:]  # + the plain http one
    assert WARNING not in stderr


# ---------------------------------------------------------------- 2. errors

def test_verification_failures(gatherd, tls_nginx, pki):
    """Each certificate problem and a TLS 1.0-only server end as failed
    'tls' with the OpenSSL reason, and no request reaches the server; a
    good URL in the same run is unaffected."""
    n = tls_nginx
    tag = "bad%d" % time.time_ns()
    cases = {
        n.url("wronghost", "one.txt?t=%s" % tag):
            r"^certificate verify failed: .*hostname mismatch",
        n.url("good", "one.txt?t=%s&ip" % tag, host="127.0.0.2"):
            r"^certificate verify failed: .*IP address mismatch",
        n.url("selfsigned", "one.txt?t=%s" % tag):
            r"^certificate verify failed: .*self[- ]signed certificate",
        n.url("selfsigned", "one.txt?t=%s&ip" % tag, host="127.0.0.1"):
            r"^certificate verify failed: .*self[- ]signed certificate",
        n.url("expired", "one.txt?t=%s" % tag):
            r"^certificate verify failed: .*certificate has expired",
        n.url("tls10", "one.txt?t=%s" % tag):
            r"unsupported protocol|protocol version|no protocols available",
    }
    good = n.url("good", "page.html?t=%s&good" % tag)
    urls = list(cases) + [good]
    mark = n.log_mark()
    rows, stderr, took = run(gatherd, urls, tls={"ca_file": pki.ca_crt})

    for url, detail_re in cases.items():
        assert_failed(rows[url], "tls", detail_re)
        assert rows[url]["attempts"] == 1, rows[url]
    assert_done(rows[good], DOCROOT_FILES["page.html"], "text/html")
    # Nothing was sent over a connection that failed verification.
    reached = [e["uri"] for e in n.log_entries(mark) if tag in e["uri"]]
    assert reached == ["/page.html?t=%s&good" % tag], reached
    assert took < 20, took


def test_trust_store_default_and_ca_file_replaces(gatherd_bin, tmp_path,
                                                  tls_nginx, pki,
                                                  no_env_trust):
    """Without ca_file the system store is used (our CA is not in it:
    'unable to get local issuer certificate'); OpenSSL's default store
    honours SSL_CERT_FILE, so pointing it at our CA makes the same URL
    verify; ca_file then *replaces* that store (like curl --cacert): with
    an unrelated CA in ca_file the URL fails again."""
    n = tls_nginx
    tag = "store%d" % time.time_ns()
    url = n.url("good", "one.txt?t=%s" % tag)
    ip_url = n.url("good", "one.txt?t=%s&ip" % tag, host="127.0.0.1")
    issuer = r"^certificate verify failed: .*unable to get local issuer"

    rows, _, _ = run(new_gatherd(gatherd_bin, tmp_path, "system"),
                     [url, ip_url])
    assert_failed(rows[url], "tls", issuer)
    assert_failed(rows[ip_url], "tls", issuer)

    no_env_trust.setenv("SSL_CERT_FILE", str(pki.ca_crt))
    rows, _, _ = run(new_gatherd(gatherd_bin, tmp_path, "envstore"),
                     [url, ip_url])
    assert_done(rows[url], 1, "text/plain")
    assert_done(rows[ip_url], 1, "text/plain")

    rows, _, _ = run(new_gatherd(gatherd_bin, tmp_path, "replaced"),
                     [url, ip_url], tls={"ca_file": pki.other_ca_crt})
    assert_failed(rows[url], "tls", issuer)
    assert_failed(rows[ip_url], "tls", issuer)


def test_verify_off(gatherd, tls_nginx, pki, no_env_trust):
    """verify = false: a loud warning at start, and self-signed, wrong-host
    and expired certificates are accepted; TLS < 1.2 is still refused."""
    n = tls_nginx
    tag = "noverify%d" % time.time_ns()
    ok = [n.url("selfsigned", "one.txt?t=%s" % tag),
          n.url("wronghost", "one.txt?t=%s" % tag),
          n.url("expired", "one.txt?t=%s" % tag),
          n.url("good", "one.txt?t=%s" % tag)]
    old = n.url("tls10", "one.txt?t=%s" % tag)
    rows, stderr, _ = run(gatherd, ok + [old], tls={"verify": "false"})
    assert WARNING in stderr, stderr[-3000:]
    for u in ok:
        assert_done(rows[u], 1, "text/plain")
    assert_failed(rows[old], "tls",
                  r"unsupported protocol|protocol version|"
                  r"no protocols available")


# ---------------------------------------------------------------- 3. SNI

def test_sni_selects_certificate(gatherd, tls_nginx, pki, dnsmasq):
    """Two server blocks on one port, each with its own certificate: the
    SNI gatherd sends picks the right one (without SNI nginx would give
    site1's certificate for site2.test, and verification would fail)."""
    n = tls_nginx
    port = n.ports["sni"]
    tag = "sni%d" % time.time_ns()
    u1 = "https://site1.test:%d/a?t=%s" % (port, tag)
    u2 = "https://site2.test:%d/b?t=%s" % (port, tag)
    mark = n.log_mark()
    rows, _, _ = run(gatherd, [u1, u2], tls={"ca_file": pki.ca_crt},
                     dns={"nameserver": dnsmasq.nameserver})
    assert_done(rows[u1], len("this is site1\n"), "text/plain")
    assert_done(rows[u2], len("and this one is site2\n"), "text/plain")
    log = {e["uri"]: e for e in n.log_entries(mark, port=port)
           if tag in e["uri"]}
    assert log["/a?t=%s" % tag]["sni"] == "site1.test", log
    assert log["/b?t=%s" % tag]["sni"] == "site2.test", log
    assert log["/a?t=%s" % tag]["host"] == "site1.test:%d" % port, log
    assert log["/b?t=%s" % tag]["host"] == "site2.test:%d" % port, log


# ---------------------------------------------------------------- 4. reuse

N_MANY = 400
MAX_PER_HOST = 4


def test_many_urls_keepalive_then_resumption(gatherd_bin, tmp_path,
                                             tls_nginx, pki):
    """400 URLs to one host over keep-alive need only a few handshakes;
    when the server closes every 10 requests, the reconnections resume
    the TLS session (TLS 1.3 tickets, and TLS 1.2 on a second server).
    gatherd's exit summary, the tls_ms column and the server's log
    agree."""
    n = tls_nginx
    for name, max_hs, proto in (("good", 10, "TLSv1.3"),
                                ("reconnect", None, "TLSv1.3"),
                                ("reconnect12", None, "TLSv1.2")):
        tag = "many%s%d" % (name, time.time_ns())
        urls = [n.url(name, "one.txt?t=%s&i=%d" % (tag, i))
                for i in range(N_MANY)]
        mark = n.log_mark()
        rows, stderr, took = run(
            new_gatherd(gatherd_bin, tmp_path, name), urls,
            tls={"ca_file": pki.ca_crt},
            fetch={"max_per_host": MAX_PER_HOST, "max_in_flight": 64})
        for r in rows.values():
            assert_done(r, 1, "text/plain")
        log = [e for e in n.log_entries(mark, port=n.ports[name])
               if tag in e["uri"]]
        assert len(log) == N_MANY, len(log)
        assert {e["protocol"] for e in log} == {proto}, name
        conns = {}
        for e in log:
            conns.setdefault(e["conn"], set()).add(e["reused"])
        assert all(len(v) == 1 for v in conns.values()), conns
        resumed_conns = sum(1 for v in conns.values() if v == {"r"})
        opened, hs, resumed = summary(stderr)
        fresh = sum(1 for r in rows.values() if r["tls_ms"] is not None)
        with_connect = sum(1 for r in rows.values()
                           if r["connect_ms"] is not None)
        info = ("%s: opened %d, handshakes %d (%d resumed); server saw %d "
                "connections (%d resumed); %d rows with tls_ms; %.1fs"
                % (name, opened, hs, resumed, len(conns), resumed_conns,
                   fresh, took))
        assert opened == hs == len(conns) == fresh == with_connect, info
        assert resumed == resumed_conns, info
        # Per row: the protocol nginx logged; whether the handshake of a
        # new connection resumed (NULL on a pooled one), counted the
        # same as the server counted them; the server's address.
        assert {r["tls_version"] for r in rows.values()} == {proto}, name
        assert sum(1 for r in rows.values() if r["tls_resumed"] == 1) == \
            resumed_conns, info
        for r in rows.values():
            assert (r["tls_resumed"] is None) == (r["tls_ms"] is None), r
            assert r["remote_ip"] == "127.0.0.1", r
            # "localhost": a lookup (from /etc/hosts) for every new
            # connection, none on a pooled one.
            assert (r["dns_ms"] is None) == (r["connect_ms"] is None), r
            assert r["ttfb_ms"] is not None and r["ttfb_ms"] >= 0, r
        if max_hs is not None:
            assert hs <= max_hs, info
        else:
            # nginx closes after 10 requests: at least 40 connections,
            # most of them resumed.
            assert hs >= N_MANY // 10, info
            assert resumed >= hs // 2, info
            if proto == "TLSv1.2":
                # Only the first connections, opened together before any
                # session existed, may be full handshakes.  TLS 1.3 gets
                # only the looser bound above: OpenSSL marks a TLS 1.3
                # session not resumable once a handshake used it, so a
                # reconnection made before the resumed connection's new
                # ticket arrives may find none left.
                assert hs - resumed <= MAX_PER_HOST, info
            reused_requests = sum(1 for e in log if e["reused"] == "r")
            assert reused_requests >= N_MANY // 2, info
        assert took < 30, info


def test_a_burst_of_new_connections_resumes_with_banked_tickets(
        gatherd_bin, tmp_path, tls_nginx, pki):
    """TLS 1.3 tickets are single use and a server sends a couple per
    handshake: gatherd banks as many per host as it may open connections
    to it at once (max_per_host), so that a later burst of new
    connections resumes every one of them, not only the first eight."""
    n, burst = tls_nginx, 32
    g = new_gatherd(gatherd_bin, tmp_path, "burst")
    g.write_config(tls={"ca_file": pki.ca_crt},
                   fetch={"retries": 0, "max_per_host": burst,
                          "max_in_flight": burst, "idle_timeout_ms": 200})
    proc = g.start()
    g.wait_ready(proc)
    tag = "burst%d" % time.time_ns()
    mark = n.log_mark()
    for phase in (1, 2):
        # A phase's fetches start together, on new connections (the pool
        # closed the last phase's after 200 ms).
        g.write_queue([n.url("good", "one.txt?t=%s&p=%d&i=%d"
                             % (tag, phase, i)) for i in range(burst)],
                      mode="a")
        wait_for(lambda: g.count("state = 'done'") == phase * burst, 30,
                 what="phase %d fetched" % phase)
        wait_for(lambda: established_to(proc.pid, n.ports["good"]) == 0,
                 10, what="phase %d's connections closed" % phase)
    rc, _ = g.stop(proc)
    assert rc == 0, g.stderr_of(proc)[-2000:]
    opened, hs, resumed = summary(g.stderr_of(proc))
    # The server's side: each phase's connections, and whether each
    # resumed a session.
    conns = {1: {}, 2: {}}
    for e in n.log_entries(mark, port=n.ports["good"]):
        if tag in e["uri"]:
            phase = 1 if "&p=1&" in e["uri"] else 2
            conns[phase][e["conn"]] = e["reused"]
    info = (opened, hs, resumed, conns)
    # Phase 1: nothing to resume yet.  Phase 2: well over 8 connections
    # (those of one burst), and every one resumed, from tickets that
    # phase 1's handshakes banked (8 at most when a host kept 8).
    assert set(conns[1].values()) == {"."}, info
    assert len(conns[2]) > 16, info
    assert set(conns[2].values()) == {"r"}, info
    assert resumed == len(conns[2]) and opened == hs == \
        len(conns[1]) + len(conns[2]), info


# ---------------------------------------------------------------- 5. shutdown

def test_tls_shutdown_and_close_delimited_bodies(gatherd, scripted, pki):
    """A close-delimited body is complete only when the server ends it
    with close_notify; a bare TCP FIN (an attacker can forge one) makes it
    'truncated'.  Bodies with a Content-Length or chunked framing are
    complete without close_notify."""
    s = scripted
    done = {
        s.url("/close?len=5000&notify=1"): 5000,
        s.url("/close?len=300000&notify=1"): 300000,
        s.url("/close?len=0&notify=1"): 0,
        s.url("/length?len=5000", host="127.0.0.1"): 5000,
        s.url("/chunked?len=10000", host="127.0.0.1"): 10000,
    }
    truncated = [
        s.url("/close?len=5000&notify=0"),
        s.url("/close?len=300000&notify=0"),
        s.url("/close?len=0&notify=0"),
    ]
    rows, _, _ = run(gatherd, list(done) + truncated,
                     tls={"ca_file": pki.ca_crt},
                     fetch={"idle_timeout_ms": 5000,
                            "request_timeout_ms": 10000})
    for u, length in done.items():
        assert_done(rows[u], length, "text/plain")
    for u in truncated:
        assert_failed(rows[u], "truncated",
                      r"close_notify|unexpected eof")
    # The server did close each way as planned.
    ev = {}
    for path, what in s.events:
        ev.setdefault(path, set()).add(what.split(" (")[0])
    for u in list(done) + truncated:
        path = "/" + u.split("/", 3)[3]
        want = ("close_notify sent" if "notify=1" in path
                else "FIN without close_notify")
        assert ev.get(path) == {want}, (path, ev)


# ---------------------------------------------------------------- 6. timeout

def test_handshake_timeout(gatherd, pki):
    """A server that accepts TCP but never answers the ClientHello: the
    handshake counts against connect_timeout_ms."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)  # the kernel completes TCP; nobody ever reads
        port = lsock.getsockname()[1]
        urls = ["https://localhost:%d/a" % port,
                "https://127.0.0.1:%d/b" % port]
        rows, _, took = run(gatherd, urls, tls={"ca_file": pki.ca_crt},
                            fetch={"connect_timeout_ms": 1000})
    finally:
        lsock.close()
    for u in urls:
        r = rows[u]
        assert_failed(r, "timeout", r"TLS handshake")
        assert r["attempts"] == 1, r
        # connect_timeout_ms (1000), never sooner (fetch.c re-arms its
        # timer until it has passed); later only by the loop's latency.
        assert 1000 <= r["elapsed_ms"] < 1500, r
        assert r["connect_ms"] is not None, r
    assert took < 8, took


def test_handshakes_bounded(gatherd, pki):
    """At most 1,024 TLS handshakes run at once (tls.c): 1,100 fetches
    in flight to a server that completes TCP but never answers a
    ClientHello open 1,100 connections, and only 1,024 of them send
    one; the rest wait for a slot, and all end as timeouts (those still
    waiting say so)."""
    import resource
    import selectors
    import threading
    n, slots = 1100, 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 3 * n:
        pytest.skip("needs %d descriptors (hard limit %d)" % (3 * n, hard))
    want = 3 * n if hard == resource.RLIM_INFINITY else min(hard, 8192)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    seen = {"accepted": 0, "hellos": 0, "most": 0}
    stop = threading.Event()
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    conns = []

    def serve():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                if key.data is None:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(False)
                    conns.append(c)
                    seen["accepted"] += 1
                    sel.register(c, selectors.EVENT_READ, {"hello": False})
                else:
                    try:
                        data = key.fileobj.recv(65536)
                    except (BlockingIOError, ConnectionError):
                        data = None
                    if data and data[0] == 0x16 and not key.data["hello"]:
                        key.data["hello"] = True
                        seen["hellos"] += 1
                        seen["most"] = max(seen["most"], seen["hellos"])
                    if data == b"":
                        sel.unregister(key.fileobj)
                        if key.data["hello"]:
                            seen["hellos"] -= 1  # that handshake ended

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        g = gatherd
        g.write_config(fetch={"retries": 0, "robots": "false",
                              "max_in_flight": n, "max_per_host": n,
                              "connect_timeout_ms": 6000},
                       tls={"ca_file": pki.ca_crt})
        g.write_queue(["https://127.0.0.1:%d/%d" % (port, i)
                       for i in range(n)])
        proc = g.start()
        g.wait_ready(proc)
        # Well before connect_timeout_ms ends the first handshakes.
        wait_for(lambda: seen["accepted"] == n and seen["hellos"] == slots,
                 4, what="%d connections, %d ClientHellos" % (n, slots))
        time.sleep(0.5)  # nothing more while the handshakes hang
        assert (seen["accepted"], seen["hellos"], seen["most"]) == (
            n, slots, slots), seen
        wait_for(lambda: g.count("state = 'failed'") == n, 30,
                 what="every fetch failed")
        rc, _ = g.stop(proc)
        assert rc == 0
    finally:
        stop.set()
        th.join(10)
        for c in conns:
            c.close()
        lsock.close()
        sel.close()
    rows = g.rows()
    assert all(r["error"] == "timeout" for r in rows), rows[:3]
    waited = [r for r in rows if "waiting for one of the handshake slots"
              in (r["error_detail"] or "")]
    hung = [r for r in rows if r["error_detail"] ==
            "TLS handshake not finished within 6000 ms"]
    assert len(hung) >= slots and len(waited) + len(hung) == n, (
        len(hung), len(waited), rows[:2])

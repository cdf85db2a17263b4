"""Server faults map to the documented error kinds, and a fault does not
disturb the other URLs of the same run.  One gatherd run fetches every
fault URL together with normal ones; each case is checked separately."""

import socket
import time

import pytest

from conftest import Gatherd, free_tcp_port

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")

CONNECT_MS = 1000
IDLE_MS = 1500
REQUEST_MS = 3000
MAX_HEADER = 8192
MAX_BODY = 1 << 20    # written as "1m" in the config

# path -> (state, status, length, error, check of error_detail or None)
CASES = {
    "/stall": ("failed", None, None, "timeout", None),
    "/stall-body": ("failed", None, None, "timeout", None),
    "/trickle?ms=400": ("failed", None, None, "timeout", None),
    "/reset-mid-body": ("failed", None, None, "truncated", None),
    "/eof-mid-body": ("failed", None, None, "truncated", None),
    "/drop": ("failed", None, None, "truncated", None),
    "/bad-status": ("failed", None, None, "http_protocol", "llhttp: "),
    "/bad-chunk": ("failed", None, None, "http_protocol", "llhttp: "),
    "/huge-headers?kb=16": ("failed", None, None, "too_large", None),
    "/huge-headers?kb=4": ("done", 200, 2, None, None),
    "/big-body?len=%d" % (MAX_BODY + 1): ("failed", None, None, "too_large",
                                          None),
    "/big-body?len=%d" % (8 * MAX_BODY): ("failed", None, None, "too_large",
                                          None),
    "/big-body?len=%d" % MAX_BODY: ("done", 200, MAX_BODY, None, None),
    "/continue?len=17": ("done", 200, 17, None, None),
    "/chunked?len=10000": ("done", 200, 10000, None, None),
    "/chunked?len=0": ("done", 200, 0, None, None),
    "/close?len=5000": ("done", 200, 5000, None, None),
    "/close?len=300000": ("done", 200, 300000, None, None),
    "/status?code=404&len=3": ("done", 404, 3, None, None),
    "/status?code=500&len=4": ("done", 500, 4, None, None),
    "/status?code=503&len=5": ("done", 503, 5, None, None),
    "/status?code=204": ("done", 204, 0, None, None),
}
N_NORMAL = 60


@pytest.fixture(scope="module")
def fault_run(gatherd_bin, fault_server_module, tmp_path_factory):
    f = fault_server_module
    g = Gatherd(gatherd_bin, tmp_path_factory.mktemp("faults"))
    dead_port = free_tcp_port("127.0.0.1")
    urls = []
    normal = []
    cases = list(CASES)
    for i in range(N_NORMAL):
        u = f.url("/ok?len=%d&n=%d" % (100 + i, i))
        normal.append(u)
        urls.append(u)
        if i < len(cases):
            urls.append(f.url(cases[i]))
    refused = "http://127.0.0.1:%d/nothing-listens" % dead_port
    urls.insert(5, refused)
    g.write_config(fetch={
        "retries": 0,
        "connect_timeout_ms": CONNECT_MS,
        "idle_timeout_ms": IDLE_MS,
        "request_timeout_ms": REQUEST_MS,
        "max_header_bytes": MAX_HEADER,
        "max_body_bytes": "1m",
        "max_per_host": 16,
    })
    g.write_queue(urls)
    _, took = g.once(timeout=120)
    rows = g.rows()
    stats = f.stats()
    yield {"g": g, "rows": rows, "by_url": {r["url"]: r for r in rows},
           "urls": urls, "normal": normal, "refused": refused,
           "took": took, "stats": stats, "f": f}
    g.cleanup()


def test_one_row_per_line(fault_run):
    rows = fault_run["rows"]
    assert [r["url"] for r in rows] == fault_run["urls"]


@pytest.mark.parametrize("path", list(CASES))
def test_fault_case(fault_run, path):
    state, status, length, error, detail = CASES[path]
    r = fault_run["by_url"][fault_run["f"].url(path)]
    shown = {k: v for k, v in r.items() if k not in ("queued_at",)}
    assert r["state"] == state, shown
    assert r["status"] == status, shown
    assert r["length"] == length, shown
    assert r["error"] == error, shown
    if error is not None:
        assert r["error_detail"], shown
        if detail is not None:
            assert r["error_detail"].startswith(detail), shown
    if path != "/drop":
        # retries = 0: exactly one attempt, one request at the server.
        assert r["attempts"] == 1, shown
        assert fault_run["stats"]["by_target"].get(path) == 1, path


def test_connection_refused(fault_run):
    r = fault_run["by_url"][fault_run["refused"]]
    assert (r["state"], r["error"], r["status"]) == ("failed", "connect", None), r
    assert r["error_detail"]
    # Refused at once: it does not wait for connect_timeout_ms.
    assert r["elapsed_ms"] is not None and r["elapsed_ms"] < CONNECT_MS / 2


def test_idle_timeout_fires_before_request_timeout(fault_run):
    f = fault_run["f"]
    for path in ("/stall", "/stall-body"):
        r = fault_run["by_url"][f.url(path)]
        assert r["error"] == "timeout"
        # No byte for IDLE_MS ends it, well before REQUEST_MS.
        assert IDLE_MS - 200 <= r["elapsed_ms"] < REQUEST_MS - 200, r


def test_request_timeout_bounds_a_trickle(fault_run):
    f = fault_run["f"]
    r = fault_run["by_url"][f.url("/trickle?ms=400")]
    assert r["error"] == "timeout"
    # A byte every 400 ms keeps the idle timer happy; the total deadline
    # ends it: never sooner (fetch.c re-arms its timer until it has
    # passed), later only by the loop's latency.
    assert REQUEST_MS <= r["elapsed_ms"] < REQUEST_MS * 1.5, r


def test_normal_urls_undisturbed(fault_run):
    by = fault_run["by_url"]
    for i, u in enumerate(fault_run["normal"]):
        r = by[u]
        assert (r["state"], r["status"], r["length"], r["error"]) == \
            ("done", 200, 100 + i, None), r
        assert r["content_type"] == "text/plain", r
    targets = fault_run["stats"]["by_target"]
    for i in range(N_NORMAL):
        assert targets.get("/ok?len=%d&n=%d" % (100 + i, i)) == 1


def test_run_time_bounded_by_configured_timeouts(fault_run):
    # The slowest case is the trickle, ended by the 3 s request timeout;
    # nothing may wait for a default (30 s idle / 120 s request) timeout.
    assert fault_run["took"] < 25, fault_run["took"]


def test_interim_responses_skipped_on_kept_alive_connection(gatherd,
                                                            fault_server):
    """1xx responses followed by more requests on the same host."""
    f = fault_server
    urls = []
    for i in range(20):
        urls.append(f.url("/continue?len=%d&c=%d" % (i + 1, i)))
        urls.append(f.url("/ok?len=%d&o=%d" % (i + 1, i)))
    gatherd.write_config(fetch={"max_per_host": 2})
    gatherd.write_queue(urls)
    gatherd.once()
    rows = gatherd.rows()
    assert len(rows) == 40
    for r in rows:
        assert (r["state"], r["status"], r["error"]) == ("done", 200, None), r
        n = int(r["url"].split("len=")[1].split("&")[0])
        assert r["length"] == n, r


@pytest.mark.parametrize("close_ms", [0, 300])
def test_server_closes_kept_alive_connection(gatherd, fault_server, close_ms):
    """The server answers as if keep-alive, then closes the connection
    (at once, or 300 ms later while gatherd may already have sent the next
    request on it).  The next request must still succeed, on a fresh
    connection."""
    f = fault_server
    urls = []
    for i in range(5):
        urls.append(f.url("/ok-then-close?len=%d&ms=%d&i=%d"
                          % (i + 1, close_ms, i)))
        urls.append(f.url("/ok?len=%d&i=%d" % (i + 50, i)))
    gatherd.write_config(fetch={"max_per_host": 1, "idle_timeout_ms": 2000,
                                "request_timeout_ms": 3000})
    gatherd.write_queue(urls)
    _, took = gatherd.once(timeout=120)
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == urls
    for r in rows:
        n = int(r["url"].split("len=")[1].split("&")[0])
        assert (r["state"], r["status"], r["length"], r["error"]) == \
            ("done", 200, n, None), r
    # Nobody waited for a timer.
    assert took < 6, took
    by_target = f.stats()["by_target"]
    for u in urls:
        assert by_target.get("/" + u.split("/", 3)[3]) == 1, u


def test_connect_timeout(gatherd):
    """A listener whose accept queue is full drops new SYNs, so connect()
    hangs: only connect_timeout_ms can end it."""
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        port = lsn.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                fillers.append(s)
            time.sleep(0.2)
            # The test's own premise: a further connect really hangs.
            probe = socket.socket()
            probe.settimeout(0.5)
            with pytest.raises(socket.timeout):
                probe.connect(("127.0.0.1", port))
            probe.close()

            url = "http://127.0.0.1:%d/never" % port
            gatherd.write_config(fetch={"connect_timeout_ms": 1000,
                                        "idle_timeout_ms": 8000,
                                        "request_timeout_ms": 10000})
            gatherd.write_queue([url])
            _, took = gatherd.once(timeout=60)
        finally:
            for s in fillers:
                s.close()
    r = gatherd.rows()[0]
    assert (r["state"], r["error"], r["status"]) == ("failed", "timeout", None), r
    assert r["error_detail"], r
    # fetch.c re-arms its timer until connect_timeout_ms (1000) have
    # passed, so never sooner; later only by the loop's latency, for which
    # half the timeout leaves ample room.
    assert 1000 <= r["elapsed_ms"] < 1500, r
    assert took < 8, took

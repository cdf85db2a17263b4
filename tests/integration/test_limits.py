"""Global and per-host in-flight limits, measured on the server side, and
the absence of head-of-line blocking between hosts."""

import signal
import time

from conftest import established_to, parse_iso, wait_for

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def test_per_host_and_global_limits(gatherd, fault_server):
    f = fault_server
    urls = []
    # Interleave hosts so that a scheduler without per-host limits would
    # open many connections to each.
    for i in range(40):
        for h in HOSTS:
            urls.append(f.url("/slow?ms=300&len=%d&i=%d" % (i + 1, i), host=h))
    gatherd.write_config(fetch={"max_per_host": 2, "max_in_flight": 6,
                                "request_timeout_ms": 60000})
    gatherd.write_queue(urls)
    f.reset()
    _, took = gatherd.once(timeout=120)

    rows = gatherd.rows()
    assert len(rows) == len(urls)
    assert all(r["state"] == "done" and r["status"] == 200 for r in rows)
    st = f.stats()
    for h in HOSTS:
        s = st["by_ip"][h]
        assert s["total"] == 40, (h, s)
        # Never more than 2 at once per host, and the limit was used.
        assert s["max_concurrent"] == 2, (h, s)
    assert st["global"]["total"] == 160
    assert st["global"]["max_concurrent"] <= 6, st["global"]
    assert st["global"]["max_concurrent"] == 6, st["global"]
    # 160 requests of 0.3 s with 6 in flight need >= 8 s; with the limit
    # actually used it should not take much more than that.
    assert took >= 160 * 0.3 / 6 - 0.5, took


def test_keep_alive_reuses_connections(gatherd, fault_server):
    """Many requests to one host with a per-host limit of 2 go over a few
    kept-alive connections, not one connection per request."""
    f = fault_server
    urls = [f.url("/ok?len=50&k=%d" % i, host="127.0.0.6") for i in range(200)]
    gatherd.write_config(fetch={"max_per_host": 2})
    gatherd.write_queue(urls)
    f.reset()
    gatherd.once()
    assert gatherd.count("state = 'done' AND length = 50") == 200
    s = f.stats()["by_ip"]["127.0.0.6"]
    assert s["total"] == 200
    # The first two fetches open one connection each; a finished fetch
    # puts its connection back in the pool before its slot frees (fetch.c
    # releases it, then reaps the fetch from the loop), so every later
    # fetch finds one idle: two connections, exactly.
    assert s["connections"] == 2, s
    # gatherd's own record agrees: connect_ms is set only on rows fetched
    # over a new connection.
    assert gatherd.count("connect_ms IS NOT NULL") == 2


def test_keep_alive_across_many_hosts(gatherd, fault_server):
    """With more hosts than in-flight slots, served round-robin, each
    host's connection is still kept until its host comes round again: one
    connection per host, not one per request (the idle pool is sized from
    the descriptor limit, not from max_in_flight)."""
    f = fault_server
    hosts = ["127.0.1.%d" % i for i in range(1, 101)]
    urls = [f.url("/ok?len=20&r=%d" % r, host=h)
            for r in range(10) for h in hosts]
    gatherd.write_config(fetch={"max_in_flight": 16, "max_per_host": 1})
    gatherd.write_queue(urls)
    f.reset()
    gatherd.once(timeout=120)
    assert gatherd.count("state = 'done' AND length = 20") == len(urls)
    st = f.stats()
    # One request per host at a time, and its connection is back in the
    # pool before the host's slot frees: exactly one connection per host.
    conns = {h: st["by_ip"][h]["connections"] for h in hosts}
    assert set(conns.values()) == {1}, conns
    # gatherd's own record agrees: connect_ms is set only on rows fetched
    # over a new connection.
    assert gatherd.count("connect_ms IS NOT NULL") == len(hosts)


def test_slow_host_does_not_block_others(gatherd, fault_server):
    f = fault_server
    # The slow host holds each request for 60 s, until the test lets them
    # go: the fast host must finish all its rows while the slow host's
    # first request is still open, however fast or slow the machine is.
    slow = [f.url("/slow?ms=60000&a=%d" % i, host="127.0.0.2")
            for i in range(10)]
    fast = [f.url("/ok?len=10&b=%d" % i, host="127.0.0.3") for i in range(200)]
    gatherd.write_config(fetch={"max_per_host": 1, "max_in_flight": 64,
                                "request_timeout_ms": 120000,
                                "idle_timeout_ms": 120000})
    # The slow host's URLs come first in the queue.
    gatherd.write_queue(slow + fast)
    proc = gatherd.start()

    def fast_done():
        return gatherd.count("url LIKE ? AND state = 'done'",
                             ("%127.0.0.3%",)) == len(fast)
    # Behind the slow host, the fast one would need 10 x 60 s.
    wait_for(fast_done, 30, interval=0.05, what="all fast-host rows done")
    slow_done_then = gatherd.count("url LIKE ? AND state != 'queued'",
                                   ("%127.0.0.2%",))
    held = f.stats()["by_ip"]["127.0.0.2"]
    assert slow_done_then == 0, slow_done_then
    # ... and the slow host really had one request open, no more.
    assert (held["current"], held["max_concurrent"]) == (1, 1), held

    # Let the slow host answer at once: its rows follow, one at a time.
    f.set_slow_scale(0)
    wait_for(lambda: gatherd.count("state = 'done'") == len(slow) + len(fast),
             30, what="all rows done")
    rc, _ = gatherd.stop(proc, signal.SIGTERM, timeout=30)
    assert rc == 0, gatherd.stderr_of(proc)[-3000:]

    rows = gatherd.rows()
    assert len(rows) == len(slow) + len(fast)
    fast_rows = [r for r in rows if "127.0.0.3" in r["url"]]
    slow_rows = [r for r in rows if "127.0.0.2" in r["url"]]
    assert all(r["status"] == 200 and r["length"] == 10 for r in fast_rows)
    assert all(r["status"] == 200 and r["length"] == 100 for r in slow_rows)
    # The recorded times agree: every fast row before the first slow one
    # (to the millisecond that fetched_at is kept in).
    last_fast = max(parse_iso(r["fetched_at"]) for r in fast_rows)
    first_slow = min(parse_iso(r["fetched_at"]) for r in slow_rows)
    assert last_fast <= first_slow, (last_fast, first_slow)
    s = f.stats()["by_ip"]["127.0.0.2"]
    assert (s["total"], s["max_concurrent"]) == (10, 1), s


def test_timers_start_when_request_starts(gatherd, fault_server):
    """Requests that wait for a per-host slot longer than request_timeout_ms
    still succeed: the timer starts with the request, not in the queue."""
    f = fault_server
    urls = [f.url("/slow?ms=700&len=%d" % (i + 1), host="127.0.0.7")
            for i in range(4)]
    gatherd.write_config(fetch={"max_per_host": 1,
                                "request_timeout_ms": 1500,
                                "idle_timeout_ms": 1500})
    gatherd.write_queue(urls)
    _, took = gatherd.once(timeout=60)
    rows = gatherd.rows()
    assert [(r["state"], r["length"]) for r in rows] == \
        [("done", i + 1) for i in range(4)], rows
    for r in rows:
        assert 600 <= r["elapsed_ms"] < 1500, r
    # One at a time: the last one waited ~2.1 s for its slot.
    assert took >= 2.6, took
    assert f.stats()["by_ip"]["127.0.0.7"]["max_concurrent"] == 1


def test_idle_connections_of_finished_hosts_close(gatherd, nginx):
    """A host with nothing left to fetch does not keep idle keep-alive
    connections open for idle_timeout_ms: they hold a slot on its server
    for nothing (and, by the tens of thousands, slow the kernel's port
    search).  They go about 2 s after the host's last URL; a host that
    still has work keeps its connection and reuses it."""
    g = gatherd
    hosts = ["127.0.0.%d" % i for i in range(10, 40)]
    urls = [nginx.url("/one.txt?linger=%d" % i, host=h)
            for h in hosts for i in range(2)]
    g.write_config(fetch={"max_per_host": 1, "max_in_flight": 8,
                          "idle_timeout_ms": 60000})
    g.write_queue(urls)
    proc = g.start()
    g.wait_ready(proc)
    wait_for(lambda: g.count("state = 'done'") == len(urls), 30,
             what="all fetched")
    t_done = time.monotonic()
    # One connection per host was used for both of its URLs.
    assert "connections opened" not in g.stderr_of(proc)
    n0 = established_to(proc.pid, nginx.port)
    assert n0 <= len(hosts), n0
    wait_for(lambda: established_to(proc.pid, nginx.port) == 0, 10,
             what="idle connections closed")
    took = time.monotonic() - t_done
    assert took < 5, took
    rc, _ = g.stop(proc)
    assert rc == 0
    err = g.stderr_of(proc)
    assert "connections opened %d," % len(hosts) in err, err[-2000:]


def test_once_closes_a_finished_hosts_connections_at_once(gatherd, nginx,
                                                          fault_server):
    """--once, the queue file read to its end: a host with nothing left to
    fetch closes its idle connections as soon as its last URL ends, not 2 s
    later, while a slow host is still being fetched (the closes spread over
    the run's tail instead of all waiting for its end)."""
    g = gatherd
    hosts = ["127.0.0.%d" % i for i in range(10, 30)]
    urls = [nginx.url("/one.txt?tail=%d" % i, host=h)
            for h in hosts for i in range(3)]
    slow = fault_server.url("/slow?ms=8000&tail=1")
    g.write_config(fetch={"max_per_host": 1, "max_in_flight": 8,
                          "idle_timeout_ms": 60000})
    g.write_queue([slow] + urls)
    proc = g.start("--once")
    g.wait_ready(proc)
    wait_for(lambda: g.count("state = 'done' and url like '%one.txt%'")
             == len(urls), 30, what="every nginx URL fetched")
    t_done = time.monotonic()
    wait_for(lambda: established_to(proc.pid, nginx.port) == 0, 10,
             what="nginx connections closed")
    took = time.monotonic() - t_done
    assert took < 1.0, took  # lingering would take 2 s
    assert proc.poll() is None, "the slow URL ended already"
    assert g.count("url like '%slow%' and state = 'done'") == 0
    assert proc.wait(30) == 0
    assert g.count("state = 'done'") == len(urls) + 1

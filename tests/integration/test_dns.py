"""Name resolution through a real resolver (a private dnsmasq)."""

import socket
import time

from conftest import DOCROOT_FILES, free_udp_tcp_port


def test_names_resolve_through_configured_nameserver(gatherd, nginx, dnsmasq):
    tag = "dns%d" % time.time_ns()
    p = nginx.port
    good = ["http://site1.test:%d/page.html?t=%s&i=%d" % (p, tag, i)
            for i in range(20)]
    other = "http://site2.test:%d/one.txt?t=%s" % (p, tag)
    upper = "http://SITE1.Test:%d/empty.txt?t=%s" % (p, tag)
    missing = "http://nosuch.test:%d/page.html?t=%s" % (p, tag)
    missing2 = "http://also-nosuch.test:%d/x?t=%s" % (p, tag)
    urls = good[:10] + [missing, other, upper] + good[10:] + [missing2]
    gatherd.write_config(dns={"nameserver": dnsmasq.nameserver,
                              "timeout_ms": 2000})
    gatherd.write_queue(urls)
    mark = nginx.log_mark()
    gatherd.once(timeout=60)

    by = {r["url"]: r for r in gatherd.rows()}
    assert len(by) == len(urls)
    for u in good:
        r = by[u]
        assert (r["state"], r["status"], r["length"]) == \
            ("done", 200, DOCROOT_FILES["page.html"]), r
    assert (by[other]["state"], by[other]["length"]) == ("done", 1)
    assert (by[upper]["state"], by[upper]["length"]) == ("done", 0)
    for u in (missing, missing2):
        r = by[u]
        assert (r["state"], r["error"], r["status"]) == ("failed", "dns", None), r
        assert r["error_detail"], r

    # nginx saw the requests on the addresses dnsmasq gave out, with the
    # name in the Host header.
    log = [e for e in nginx.log_entries(mark) if ("t=" + tag) in e["uri"]]
    assert len(log) == 22
    for e in log:
        if "site2" in e["host"]:
            assert e["server_addr"] == "127.0.0.3", e
            assert e["host"] == "site2.test:%d" % p, e
        else:
            assert e["server_addr"] == "127.0.0.2", e
            assert e["host"].lower() == "site1.test:%d" % p, e


# [dns] timeout_ms in the dead-nameserver tests.  src/dns.c gives evdns two
# tries of timeout_ms / 2 each, so a lookup nobody answers ends when the
# second try runs out: at timeout_ms.  One try would end it at half that, a
# third at 1.5 times; the tests hold the lookup to within half a try of
# timeout_ms, which tells these apart and leaves the rest to a busy loop.
DEAD_NS_TIMEOUT_MS = 500
HALF_A_TRY_MS = DEAD_NS_TIMEOUT_MS / 4


def _dead_nameserver_run(gatherd, nginx, nameserver):
    """Fetch a name through `nameserver` and an IP literal; return the
    name's row (failed, dns)."""
    tag = "deadns%d" % time.time_ns()
    name_url = "http://site1.test:%d/page.html?t=%s" % (nginx.port, tag)
    ip_url = nginx.url("one.txt?t=%s" % tag)
    gatherd.write_config(dns={"nameserver": nameserver,
                              "timeout_ms": DEAD_NS_TIMEOUT_MS})
    gatherd.write_queue([name_url, ip_url])
    gatherd.once(timeout=60)
    by = {r["url"]: r for r in gatherd.rows()}
    r = by[name_url]
    assert (r["state"], r["error"]) == ("failed", "dns"), r
    assert r["error_detail"], r
    # An IP literal needs no resolver.
    assert (by[ip_url]["state"], by[ip_url]["length"]) == ("done", 1)
    # The lookup is the whole of the failed fetch (elapsed_ms runs from the
    # start of the fetch, and nothing follows a DNS failure): no third try,
    # no tries of the whole timeout each.
    assert r["elapsed_ms"] < DEAD_NS_TIMEOUT_MS + HALF_A_TRY_MS, r
    return r


def test_nameserver_with_nothing_behind_it(gatherd, nginx):
    # Nothing listens on the port: the queries are refused (ICMP), which
    # may end the lookup sooner, never later.
    port = free_udp_tcp_port()
    _dead_nameserver_run(gatherd, nginx, "127.0.0.1:%d" % port)


def test_nameserver_that_never_answers(gatherd, nginx):
    # A bound UDP socket that reads nothing: queries vanish, so only the
    # resolver's timeout can end them.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        r = _dead_nameserver_run(gatherd, nginx,
                                 "127.0.0.1:%d" % s.getsockname()[1])
    # So both tries ran out, not just one.
    assert r["elapsed_ms"] > DEAD_NS_TIMEOUT_MS - HALF_A_TRY_MS, r

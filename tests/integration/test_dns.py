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


def _dead_nameserver_run(gatherd, nginx, nameserver):
    tag = "deadns%d" % time.time_ns()
    name_url = "http://site1.test:%d/page.html?t=%s" % (nginx.port, tag)
    ip_url = nginx.url("one.txt?t=%s" % tag)
    gatherd.write_config(dns={"nameserver": nameserver, "timeout_ms": 500})
    gatherd.write_queue([name_url, ip_url])
    _, took = gatherd.once(timeout=60)
    by = {r["url"]: r for r in gatherd.rows()}
    r = by[name_url]
    assert (r["state"], r["error"]) == ("failed", "dns"), r
    assert r["error_detail"], r
    # An IP literal needs no resolver.
    assert (by[ip_url]["state"], by[ip_url]["length"]) == ("done", 1)
    return took


def test_nameserver_with_nothing_behind_it(gatherd, nginx):
    port = free_udp_tcp_port()
    took = _dead_nameserver_run(gatherd, nginx, "127.0.0.1:%d" % port)
    assert took < 10, took


def test_nameserver_that_never_answers(gatherd, nginx):
    # A bound UDP socket that reads nothing: queries vanish, so only the
    # resolver's timeout can end them.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        took = _dead_nameserver_run(gatherd, nginx,
                                    "127.0.0.1:%d" % s.getsockname()[1])
    assert took < 10, took

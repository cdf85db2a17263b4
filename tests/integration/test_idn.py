"""International names (issue 12): a Unicode host is fetched by its
A-labels (DNS, Host header), non-ASCII path bytes go as %XX, the row keeps
the URL as submitted and final_url shows the ASCII form."""

import pytest

from conftest import Dnsmasq
from ops_helpers import run_cli

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module")
def idn_dns(tmp_path_factory):
    d = Dnsmasq(tmp_path_factory.mktemp("idn_dns"), extra_args=[
        "--address=/xn--bcher-kva.test/127.0.0.4",
        "--address=/xn--fa-hia.test/127.0.0.5",
        "--address=/fass.test/127.0.0.6"]).start()
    yield d
    d.stop()


def test_unicode_hosts_and_paths(gatherd, nginx, idn_dns):
    g = gatherd
    p = nginx.port
    tag = "idn"
    urls = [
        "http://bücher.test:%d/page.html?t=%s-a" % (p, tag),
        "http://BÜCHER.test:%d/one.txt?t=%s-b" % (p, tag),
        "http://faß.test:%d/one.txt?t=%s-c" % (p, tag),
        "http://bücher.test:%d/stra%%20ße?q=ü&t=%s-d" % (p, tag),
    ]
    bad = ["http://💩.test/", "http://i❤.ws/"]
    g.write_config(dns={"nameserver": idn_dns.nameserver},
                   fetch={"max_per_host": 1})
    mark = nginx.log_mark()
    with open(g.queue, "wb") as f:
        for u in urls + bad:
            f.write(u.encode("utf-8", "surrogateescape") + b"\n")
    g.once()
    rows = g.rows()
    by = {r["id"]: r for r in rows}
    assert [r["url"] for r in rows[:4]] == urls   # as submitted
    a, b, c, d = rows[0], rows[1], rows[2], rows[3]
    assert (a["state"], a["status"], a["final_url"]) == (
        "done", 200, "http://xn--bcher-kva.test:%d/page.html?t=%s-a"
        % (p, tag)), a
    assert b["final_url"] == "http://xn--bcher-kva.test:%d/one.txt?t=%s-b" \
        % (p, tag), b
    assert d["status"] == 404 and d["final_url"] == (
        "http://xn--bcher-kva.test:%d/stra%%20%%C3%%9Fe?q=%%C3%%BC&t=%s-d"
        % (p, tag)), d
    # Non-transitional processing: faß is not fass.
    assert c["final_url"].startswith("http://xn--fa-hia.test:%d/" % p), c
    log = [e for e in nginx.log_entries(mark) if tag in e["uri"]]
    seen = {e["uri"].rsplit("=", 1)[1]: e for e in log}
    assert seen["idn-a"]["server_addr"] == "127.0.0.4"
    assert seen["idn-a"]["host"] == "xn--bcher-kva.test:%d" % p
    assert seen["idn-b"]["host"] == "xn--bcher-kva.test:%d" % p
    assert seen["idn-c"]["server_addr"] == "127.0.0.5"
    assert seen["idn-d"]["uri"] == "/stra%20%C3%9Fe?q=%C3%BC&t=idn-d"
    assert idn_dns.queries("xn--bcher-kva.test") >= 1
    # The refused ones: invalid_url, with the reason.
    for r in rows[4:]:
        assert (r["state"], r["error"]) == ("failed", "invalid_url"), r
        assert "invalid international host name" in r["error_detail"], r
    # gatherd submit says the same.
    cp = run_cli(g, ["submit", "http://💩.test/"])
    assert cp.returncode == 2
    assert "invalid international host name" in cp.stderr, cp.stderr

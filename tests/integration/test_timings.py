"""The timing and address columns against curl's -w on the same URLs
(issue 12): ttfb_ms is curl's time_starttransfer - time_pretransfer (from
the request sent to the first response byte), remote_ip is curl's
remote_ip, dns_ms is the name lookup (curl's time_namelookup also counts
from the start of the transfer; with the name given to curl by --resolve,
so that nothing asks the machine's resolver, only gatherd's lookup through
the test's own dnsmasq is measured, and it is checked to be there and
short)."""

import subprocess

import pytest

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")

THINK_MS = 300


def curl_times(url, resolve):
    fmt = ("%{time_namelookup} %{time_pretransfer} %{time_starttransfer} "
           "%{remote_ip} %{http_code}")
    cp = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "--resolve", resolve, "-w", fmt,
         url], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    dns, pre, start, ip, code = cp.stdout.split()
    return {"dns_ms": float(dns) * 1000,
            "ttfb_ms": (float(start) - float(pre)) * 1000,
            "remote_ip": ip, "status": int(code)}


def test_timings_agree_with_curl(gatherd, fault_server, dnsmasq):
    f = fault_server
    urls = [f.url("/slow?ms=%d&len=100&i=%d" % (THINK_MS, i),
                  host="site1.test") for i in range(4)]
    ip_urls = [f.url("/slow?ms=%d&len=100&j=%d" % (THINK_MS, i),
                     host="127.0.0.2") for i in range(2)]
    g = gatherd
    g.write_config(dns={"nameserver": dnsmasq.nameserver},
                   fetch={"max_per_host": 1})
    g.write_queue(urls + ip_urls)
    g.once()
    rows = {r["url"]: r for r in g.rows()}
    resolve = "site1.test:%d:127.0.0.2" % f.port
    for u in urls + ip_urls:
        r = rows[u]
        c = curl_times(u, resolve)
        assert (r["status"], c["status"]) == (200, 200), r
        assert r["remote_ip"] == c["remote_ip"] == "127.0.0.2", (r, c)
        # The server thinks THINK_MS before its first byte: both see
        # that, within the loop's and the clocks' granularity.
        assert THINK_MS <= r["ttfb_ms"] < THINK_MS + 60, r
        assert THINK_MS - 5 <= c["ttfb_ms"] < THINK_MS + 60, c
        assert abs(r["ttfb_ms"] - c["ttfb_ms"]) < 60, (r, c)
        assert r["tls_version"] is None and r["tls_resumed"] is None
    # One lookup for the name (one connection at a time to one host:
    # the first row opens it, the others reuse it), none for a literal.
    with_dns = [rows[u]["dns_ms"] for u in urls
                if rows[u]["dns_ms"] is not None]
    assert len(with_dns) == 1 and 0 <= with_dns[0] < 500, with_dns
    assert all(rows[u]["dns_ms"] is None for u in ip_urls)

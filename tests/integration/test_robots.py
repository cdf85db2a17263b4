"""robots.txt ([fetch] robots, RFC 9309) against a private nginx whose
server blocks each answer /robots.txt their own way: a file with groups
and Crawl-delay, none (404), 503, 429, a redirect chain of 3 hops and one
of 6, a file larger than the 500 KiB parse limit, and a server that is
not there at all.  The parsing and matching rules themselves are unit
tests (tests/unit/test_robots.c); here: the fetch, the cache, the wait,
the verdicts in the results, Crawl-delay, and status's counts."""

import json
import subprocess
import time

import pytest

from conftest import (NGINX, free_tcp_port, kill_group, nginx_conf_head,
                      port_open, prepare_nginx_dirs)


ROBOTS = """# a comment
User-agent: otherbot
Disallow: /

User-agent: *
Disallow: /private/
Allow: /private/ok
Disallow: /*.pdf$
Crawl-delay: 0.5

User-agent: gatherd
Disallow: /only-for-gatherd/
Disallow: /private/
Allow: /private/ok
Crawl-delay: 1
"""

# Server blocks: name -> the directives of its `location = /robots.txt`
# (None: no robots.txt, so nginx answers 404).
BLOCKS = {
    "rules": "alias {www}/robots-rules.txt;",
    "none": None,
    "none2": None,
    "none3": None,
    "down": "return 503;",
    "busy": "return 429;",
    "hops3": "return 301 /r1;",
    "hops6": "return 301 /s1;",
    "big": "alias {www}/robots-big.txt;",
}


class RobotsNginx:
    """One nginx, one port per block."""

    def __init__(self, root):
        self.root = root
        self.www = root / "www"
        self.ports = {}
        self.proc = None

    def url(self, block, path):
        return "http://127.0.0.1:%d%s" % (self.ports[block], path)

    def start(self):
        d = self.root
        prepare_nginx_dirs(d, self.www)
        for p in ("private/ok", "private/no", "only-for-gatherd/x",
                  "public/a", "public/b", "public/c", "doc.pdf",
                  "doc.pdf.html", "tail/secret", "p"):
            f = self.www / p
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("page %s\n" % p)
        (self.www / "robots-rules.txt").write_text(ROBOTS)
        (self.www / "robots-final.txt").write_text(
            "User-agent: *\nDisallow: /public/b\n")
        # 600 KiB of comments, then a rule past the parse limit.
        (self.www / "robots-big.txt").write_text(
            "User-agent: *\nDisallow: /public/a\n" +
            "# padding padding padding padding padding padding\n" * 12300 +
            "Disallow: /tail/\n")
        servers = []
        for name, robots in BLOCKS.items():
            self.ports[name] = free_tcp_port()
            loc = ""
            if robots is not None:
                loc = "location = /robots.txt { %s }" % robots.format(
                    www=self.www)
            if name == "hops3":
                loc += ("location = /r1 { return 302 /r2; }"
                        "location = /r2 { return 307 /r3; }"
                        "location = /r3 { alias %s/robots-final.txt; }"
                        % self.www)
            if name == "hops6":
                for i in range(1, 7):
                    loc += "location = /s%d { return 301 /s%d; }" % (i, i + 1)
                loc += ("location = /s7 { alias %s/robots-final.txt; }"
                        % self.www)
            servers.append(
                "server { listen 127.0.0.1:%d; root %s; %s }"
                % (self.ports[name], self.www, loc))
        conf = d / "nginx.conf"
        conf.write_text(nginx_conf_head(d) + """
    log_format t "$server_port $request_uri $status $msec";
    access_log %s/access.log t;
    %s
}
""" % (d, "\n    ".join(servers)))
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(d), "-e", str(d / "error.log"), "-c",
             str(conf)], stdout=subprocess.DEVNULL,
            stderr=open(d / "nginx.stderr", "ab"), start_new_session=True)
        deadline = time.monotonic() + 10
        while not all(port_open("127.0.0.1", p)
                      for p in self.ports.values()):
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                (d / "error.log").read_text(errors="replace")
            time.sleep(0.05)
        return self

    def log(self):
        """(port, uri, status, seconds) of every request so far."""
        out = []
        p = self.root / "access.log"
        if p.exists():
            for line in p.read_text().splitlines():
                port, uri, status, msec = line.split()
                out.append((int(port), uri, int(status), float(msec)))
        return out

    def requests(self, block, uri=None):
        return [e for e in self.log() if e[0] == self.ports[block]
                and (uri is None or e[1] == uri)]

    def stop(self):
        kill_group(self.proc)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = RobotsNginx(tmp_path_factory.mktemp("robots-nginx")).start()
    yield s
    s.stop()


def run(g, urls, **fetch):
    kv = {"robots": "true", "max_per_host": 4}
    kv.update(fetch)
    g.write_config(fetch=kv)
    g.write_queue(urls)
    cp, took = g.once()
    return {r["url"]: r for r in g.rows()}, cp, took


def test_rules_decide_and_the_refusal_names_the_rule(gatherd, site):
    """The group naming gatherd applies (not *, not otherbot); the longest
    match wins, Allow on a tie; a refused URL is failed/robots with the
    rule and the robots.txt in error_detail and no request to it;
    robots.txt itself is fetched once for the origin and is no row."""
    u = lambda p: site.url("rules", p)  # noqa: E731
    urls = [u("/public/a"), u("/private/no"), u("/private/ok"),
            u("/only-for-gatherd/x"), u("/doc.pdf"), u("/p")]
    rows, cp, _ = run(gatherd, urls, host_delay_ms=0)
    assert len(rows) == len(urls)
    for ok in ("/public/a", "/private/ok", "/doc.pdf", "/p"):
        # /doc.pdf: the *.pdf$ rule is in the * group, which does not
        # apply to gatherd.
        assert rows[u(ok)]["state"] == "done", rows[u(ok)]
    for no, rule in (("/private/no", "Disallow: /private/"),
                     ("/only-for-gatherd/x", "Disallow: /only-for-gatherd/")):
        r = rows[u(no)]
        assert r["state"] == "failed" and r["error"] == "robots", r
        assert rule in r["error_detail"], r
        assert u("/robots.txt") in r["error_detail"], r
        assert r["status"] is None and r["attempts"] == 0, r
        assert site.requests("rules", no) == []
    assert len(site.requests("rules", "/robots.txt")) == 1


def test_crawl_delay_spaces_the_requests(gatherd, site):
    """Crawl-delay: 1 in gatherd's group: one request to the host a
    second, whatever max_per_host; capped by robots_max_crawl_delay_s."""
    urls = [site.url("rules", "/public/%s?d=%d" % (c, i))
            for i, c in enumerate("abc")]
    mark = len(site.log())
    rows, _, took = run(gatherd, urls)
    assert all(r["state"] == "done" for r in rows.values())
    got = sorted(e[3] for e in site.log()[mark:]
                 if e[1].startswith("/public/"))
    assert len(got) == 3
    gaps = [b - a for a, b in zip(got, got[1:])]
    assert all(g >= 0.95 for g in gaps), gaps
    # Capped at 0 s: no spacing at all.
    mark = len(site.log())
    urls = [site.url("rules", "/public/%s?e=%d" % (c, i))
            for i, c in enumerate("abc")]
    run(gatherd, urls, robots_max_crawl_delay_s=0)
    got = sorted(e[3] for e in site.log()[mark:]
                 if e[1].startswith("/public/"))
    assert got[-1] - got[0] < 0.9, got


def test_no_robots_txt_allows_everything(gatherd, site):
    urls = [site.url("none", "/private/no"), site.url("none", "/public/a")]
    rows, _, _ = run(gatherd, urls)
    assert all(r["state"] == "done" and r["status"] == 200
               for r in rows.values()), rows
    assert [e[2] for e in site.requests("none", "/robots.txt")][-1] == 404


@pytest.mark.parametrize("block,code", [("down", 503), ("busy", 429)])
def test_a_server_in_trouble_disallows_everything(gatherd, site, block,
                                                  code):
    """5xx and 429: everything is refused (RFC 9309 2.3.1.3), saying why,
    and no page is requested."""
    urls = [site.url(block, "/public/a"), site.url(block, "/p")]
    rows, _, _ = run(gatherd, urls)
    for r in rows.values():
        assert r["state"] == "failed" and r["error"] == "robots", r
        assert "answered %d" % code in r["error_detail"], r
    assert site.requests(block, "/public/a") == []
    assert site.requests(block, "/p") == []


@pytest.mark.parametrize("fails,retries", [(2, 2), (3, 2)])
def test_a_robots_txt_failure_is_retried_as_a_page_would_be(
        gatherd, fault_server, fails, retries):
    """A 503 for robots.txt is retried as a page's would be (`retries`,
    the backoff), the origin's URLs waiting: two failures and two retries
    end with the pages fetched; three failures still refuse everything,
    after exactly 1 + retries robots.txt requests and none for the
    pages."""
    f = fault_server
    f.fail_robots(fails)
    urls = [f.url("/ok?len=7&rr=%d&i=%d" % (fails, i)) for i in range(3)]
    rows, cp, _ = run(gatherd, urls, retries=retries, retry_backoff_ms=50)
    st = f.stats()
    assert st["by_target"].get("/robots.txt") == min(fails, retries) + 1, \
        st["by_target"]
    pages = [u for u in st["by_target"] if u.startswith("/ok")]
    if fails <= retries:
        assert all(r["state"] == "done" for r in rows.values()), rows
        assert len(pages) == len(urls), st["by_target"]
    else:
        for r in rows.values():
            assert r["state"] == "failed" and r["error"] == "robots", r
            assert "answered 503" in r["error_detail"], r
        assert pages == [], st["by_target"]


def test_an_unreachable_server_disallows_everything(gatherd):
    port = free_tcp_port()
    url = "http://127.0.0.1:%d/page" % port
    rows, _, _ = run(gatherd, [url])
    r = rows[url]
    assert r["error"] == "robots" and "could not be fetched" in \
        r["error_detail"] and "connect" in r["error_detail"], r


def test_redirects_are_followed_up_to_five_hops(gatherd, site):
    """3 hops reach the file, whose rules apply to the first origin; 6
    hops are too many: no robots.txt, everything allowed."""
    rows, _, _ = run(gatherd, [site.url("hops3", "/public/a"),
                               site.url("hops3", "/public/b"),
                               site.url("hops6", "/public/b")])
    assert rows[site.url("hops3", "/public/a")]["state"] == "done"
    r = rows[site.url("hops3", "/public/b")]
    assert r["error"] == "robots" and "Disallow: /public/b" in \
        r["error_detail"], r
    assert rows[site.url("hops6", "/public/b")]["state"] == "done"
    assert len(site.requests("hops6", "/s5")) == 1
    assert site.requests("hops6", "/s6") == []


def test_rules_past_500_kib_are_ignored(gatherd, site):
    rows, _, _ = run(gatherd, [site.url("big", "/public/a"),
                               site.url("big", "/tail/secret")],
                     max_body_bytes=200000)
    assert rows[site.url("big", "/public/a")]["error"] == "robots"
    # The rule after 600 KiB is never read (and the body limit, lower
    # than the parse limit, does not make robots.txt unreachable).
    assert rows[site.url("big", "/tail/secret")]["state"] == "done"


def test_urls_wait_for_robots_without_holding_slots(gatherd, site):
    """max_in_flight 1: a URL waiting for its origin's robots.txt holds no
    slot (else the robots.txt fetch could never start); three origins,
    each asked for robots.txt exactly once, and every URL ends."""
    urls = []
    for block in ("rules", "none", "hops3"):
        urls += [site.url(block, "/public/a?w=%d" % i) for i in range(5)]
    before = {b: len(site.requests(b, "/robots.txt"))
              for b in ("rules", "none", "hops3")}
    rows, _, _ = run(gatherd, urls, max_in_flight=1)
    assert all(r["state"] == "done" for r in rows.values()), rows
    for b, n in before.items():
        assert len(site.requests(b, "/robots.txt")) == n + 1, b


def test_urls_start_as_soon_as_their_robots_txt_is_known(gatherd, site):
    """The URLs that waited for their origin's robots.txt go first once it
    is known: with max_in_flight 1 over three new origins, each origin's
    robots.txt is followed by its first page, not by the robots.txt of
    every other origin in the window (which, over thousands of new hosts,
    kept every page waiting behind them all)."""
    blocks = ("none", "none2", "none3")
    urls = [site.url(b, "/public/a?first=%d" % i) for i in range(2)
            for b in blocks]
    mark = len(site.log())
    rows, _, _ = run(gatherd, urls, max_in_flight=1)
    assert all(r["state"] == "done" for r in rows.values()), rows
    log = [(port, uri) for port, uri, _, _ in site.log()[mark:]]
    assert len(log) == len(urls) + len(blocks), log
    for k, (port, uri) in enumerate(log):
        if uri == "/robots.txt":
            assert log[k + 1][0] == port, log
            assert log[k + 1][1].startswith("/public/a?first="), log


def test_robots_off_fetches_no_robots_txt(gatherd, site):
    before = len(site.requests("down", "/robots.txt"))
    rows, _, _ = run(gatherd, [site.url("down", "/public/a")],
                     robots="false")
    assert rows[site.url("down", "/public/a")]["state"] == "done"
    assert len(site.requests("down", "/robots.txt")) == before


def test_status_and_metrics_count_robots(gatherd, site):
    """status --json counts the robots.txt fetches of the last run and the
    URLs refused."""
    urls = [site.url("rules", "/private/no"), site.url("none", "/p")]
    run(gatherd, urls)
    cp = gatherd.run("status", "--json")
    assert cp.returncode == 0, cp.stderr
    st = json.loads(cp.stdout)
    assert st["robots"] == {"fetches": 2, "origins": 2}, st
    assert st["errors"]["robots"] == 1, st
    cp = gatherd.run("status")
    assert "robots    2 robots.txt requests (2 origins)" in cp.stdout, \
        cp.stdout

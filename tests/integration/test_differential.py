"""Differential test: the same tricky responses fetched by curl (7.88, as in
Debian 12) and by gatherd, outcomes compared.

An outcome is, for curl, its exit code plus the status, byte count and
effective URL it reports; for gatherd, the row's state, status, length,
error and final_url.  They agree when both got a response with the same
status and length (and final URL), or both failed with errors of the same
class (CURL_CLASS maps curl's exit codes to gatherd's error kinds).

CASES lists every case with both expected outcomes.  A case where the two
disagree must carry the reason gatherd's choice is deliberate (the README
lists these); a disagreement that is not listed fails the test, and so does
a listed one that went away (the table must stay true).  Set DIFF_TABLE to
a file name to get the observed table written there as Markdown.
"""

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from conftest import Gatherd, free_tcp_port

MAX_REDIRECTS = 4
CURL_MAX_TIME = 3
CONFIG = {
    "retries": 0,
    "max_redirects": MAX_REDIRECTS,
    "connect_timeout_ms": 2000,
    "idle_timeout_ms": 1000,
    "request_timeout_ms": CURL_MAX_TIME * 1000,
    "max_body_bytes": "1m",
    "max_header_bytes": "64k",
    "max_per_host": 16,
}

# curl exit code -> the gatherd error kinds of the same class.
CURL_CLASS = {
    1: {"http_protocol"},        # unsupported protocol / HTTP version
    6: {"dns"},
    7: {"connect"},
    8: {"http_protocol"},        # weird server reply
    18: {"truncated"},           # partial file
    28: {"timeout"},
    35: {"tls"}, 60: {"tls"},
    47: {"too_many_redirects"},
    52: {"truncated"},           # empty reply
    # "failure receiving network data": resets, bad chunking, and curl's
    # own header-size limit all end up here.
    56: {"truncated", "http_protocol", "too_large"},
    61: {"http_protocol"},       # bad content encoding
    63: {"too_large"},           # --max-filesize
}

# Reasons for deliberate disagreements (copied into the README).
R_TE_CL = ("Transfer-Encoding together with Content-Length is refused "
           "(http_protocol): RFC 9112 6.3 says such a message 'ought to be "
           "handled as an error' as it may be request smuggling or response "
           "splitting; curl lets chunked win")
R_CL_CONFLICT = ("Content-Length values that differ are an unrecoverable "
                 "error (RFC 9112 6.3); curl silently uses one of them")
R_CL_DUP = ("a repeated Content-Length, even with the same value (or a list "
            "'5, 5'), is refused: RFC 9112 6.3 allows accepting it, refusing "
            "is the stricter choice and never guesses a length")
R_CL_GARBAGE = ("an invalid Content-Length ('1x') is an error (RFC 9112 6.3); "
                "curl reads the leading digits and takes a 1-byte body")
R_STATUS_RANGE = ("a status outside 100..599 is invalid (RFC 9110 15); curl "
                  "accepts any three digits")
R_BARE_LF = ("line endings must be CRLF: llhttp's strict parsing refuses a "
             "bare LF (RFC 9112 2.2 only allows, never requires, accepting "
             "it), which avoids parser differentials; curl accepts it")
R_BARE_CR = ("a bare CR inside a header value is refused (RFC 9112 2.2: a "
             "recipient MUST treat it as invalid or replace it with SP); curl "
             "keeps it")
R_WS_COLON_CL = ("whitespace between a header name and the colon is refused "
                 "for Content-Length (RFC 9112 5.1: such whitespace has led to "
                 "smuggling); curl ignores it")
R_WS_COLON_LOCATION = ("'Location : x' is read as Location, like a proxy that "
                       "strips whitespace before the colon (RFC 9112 5.1, see "
                       "src/http.c); curl sees a header named 'Location ' and "
                       "does not redirect")
R_TE_GZIP = ("bodies are counted, not decoded: with a transfer coding other "
             "than chunked, length is the bytes received until close (RFC "
             "9112 6.3); curl tries to gunzip and fails")
R_ENDLESS = ("max_body_bytes is enforced while a body of unknown length "
             "streams; curl 7.88's --max-filesize only checks a declared "
             "length, so curl reads until --max-time")
R_HEADER_LIMIT = ("headers are limited by max_header_bytes (64 KiB here and "
                  "by default); curl's fixed limit is 300 KiB")
R_DOWNGRADE = ("an https -> http redirect is not followed unless "
               "[fetch] allow_https_downgrade = true; the 3xx is recorded as "
               "the final response with the refused target in error_detail; "
               "curl -L follows it")
R_FTP_LOCATION = ("a redirect to a scheme other than http(s) is not followed "
                  "and the 3xx is the recorded answer; curl (with "
                  "--proto-redir =http,https) fails the transfer")


def ok(status, length):
    return ("ok", status, length)


def err(kind):
    return ("err", kind)


# name -> (path, host, scheme, gatherd outcome, curl outcome, reason).
# gatherd outcome: ok(status, length) or err(error kind); curl outcome:
# ok(status, size) for exit 0, or err(exit code).  reason is None when the
# two must agree.
def cases(f):
    big = 1 << 20
    rel = "/redirect-rel/a/b/c?case="
    c = {
        "plain 200": ("/ok?len=1000", None, "http", ok(200, 1000),
                      ok(200, 1000), None),
        "chunked": ("/chunked?len=10000", None, "http", ok(200, 10000),
                    ok(200, 10000), None),
        "chunked, empty": ("/chunked?len=0", None, "http", ok(200, 0),
                           ok(200, 0), None),
        "close-delimited": ("/close?len=300000", None, "http",
                            ok(200, 300000), ok(200, 300000), None),
        "HTTP/1.0, close-delimited": ("/raw?case=http10-close", None, "http",
                                      ok(200, 1234), ok(200, 1234), None),
        "404": ("/status?code=404&len=3", None, "http", ok(404, 3),
                ok(404, 3), None),
        "503 (no retries)": ("/status?code=503&len=5", None, "http",
                             ok(503, 5), ok(503, 5), None),
        "204": ("/status?code=204", None, "http", ok(204, 0), ok(204, 0),
                None),
        "204 announcing a body": ("/raw?case=204-with-body", None, "http",
                                  ok(204, 0), ok(204, 0), None),
        "100 and 103 before 200": ("/continue?len=17", None, "http",
                                   ok(200, 17), ok(200, 17), None),
        "no reason phrase": ("/raw?case=no-reason", None, "http", ok(200, 2),
                             ok(200, 2), None),
        "chunk extension": ("/raw?case=chunk-ext", None, "http", ok(200, 5),
                            ok(200, 5), None),
        "chunked trailers": ("/raw?case=trailers", None, "http", ok(200, 5),
                             ok(200, 5), None),
        "bytes after Content-Length": ("/raw?case=cl-excess", None, "http",
                                       ok(200, 5), ok(200, 5), None),
        "obs-fold header": ("/raw?case=obs-fold", None, "http", ok(200, 2),
                            ok(200, 2), None),
        "'chunked, chunked'": ("/raw?case=te-chunked-twice", None, "http",
                               ok(200, 5), ok(200, 5), None),
        "whitespace before colon, other header": (
            "/raw?case=space-before-colon-other", None, "http", ok(200, 2),
            ok(200, 2), None),
        "HTTPS 200": ("/ok?len=10", None, "https", ok(200, 10), ok(200, 10),
                      None),
        # Redirects.
        "302 absolute path": ("/redirect?code=302&to=/landed/x", None, "http",
                              ok(200, 9), ok(200, 9), None),
        "308": ("/redirect?code=308&to=/landed/y", None, "http", ok(200, 9),
                ok(200, 9), None),
        "relative with dot-segments": (rel + "dots-mixed", None, "http",
                                       ok(200, 21), ok(200, 21), None),
        "relative above the root": (rel + "above-root", None, "http",
                                    ok(200, 9), ok(200, 9), None),
        "query-only reference": (rel + "query-only", None, "http",
                                 ok(200, 26), ok(200, 26), None),
        "scheme-relative": (rel + "scheme-rel", None, "http", ok(200, 10),
                            ok(200, 10), None),
        "Location with fragment": (rel + "fragment", None, "http",
                                   ok(200, 12), ok(200, 12), None),
        "chain across hosts": ("/cross?hops=127.0.0.3,127.0.0.4", "127.0.0.2",
                               "http", ok(200, 12), ok(200, 12), None),
        "chain at the limit": ("/redirect-chain?n=%d" % MAX_REDIRECTS, None,
                               "http", ok(200, 19), ok(200, 19), None),
        "chain over the limit": ("/redirect-chain?n=%d" % (MAX_REDIRECTS + 1),
                                 None, "http", err("too_many_redirects"),
                                 err(47), None),
        "redirect loop": ("/redirect-loop", None, "http",
                          err("too_many_redirects"), err(47), None),
        "302 without Location": ("/no-location?code=302&len=7", None, "http",
                                 ok(302, 7), ok(302, 7), None),
        "https -> http redirect": (
            "/redirect?to=" + quote(f.url("/landed/dg"), safe=""), None,
            "https", ok(302, 0), ok(200, 10), R_DOWNGRADE),
        "Location with a raw space": (rel + "space", None, "http",
                                      ok(200, 13), ok(200, 13), None),
        "Location to ftp:": (rel + "ftp", None, "http", ok(302, 0), err(1),
                             R_FTP_LOCATION),
        "'Location : x'": ("/raw?case=location-space-colon", None, "http",
                           ok(200, 10), ok(302, 0), R_WS_COLON_LOCATION),
        # Cut short.
        "FIN mid-body (Content-Length)": ("/eof-mid-body", None, "http",
                                          err("truncated"), err(18), None),
        "RST mid-body (Content-Length)": ("/reset-mid-body", None, "http",
                                          err("truncated"), err(56), None),
        "RST after a close-delimited body": ("/close-rst?len=5000", None,
                                             "http", err("truncated"),
                                             err(56), None),
        "closed without a byte": ("/drop", None, "http", err("truncated"),
                                  err(52), None),
        "closed inside the headers": ("/raw?case=headers-then-close", None,
                                      "http", err("truncated"), err(18),
                                      None),
        "closed after a 100": ("/raw?case=interim-then-close", None, "http",
                               err("truncated"), err(52), None),
        "chunked body never ended": ("/raw?case=chunked-no-end", None, "http",
                                     err("truncated"), err(18), None),
        # Malformed.
        "status line 'abc'": ("/bad-status", None, "http",
                              err("http_protocol"), err(1), None),
        "two-digit status": ("/raw?case=status-2digit", None, "http",
                             err("http_protocol"), err(1), None),
        "HTTP/0.9 reply": ("/raw?case=http09", None, "http",
                           err("http_protocol"), err(1), None),
        "bad chunk size": ("/bad-chunk", None, "http", err("http_protocol"),
                           err(56), None),
        "negative Content-Length": ("/raw?case=cl-negative", None, "http",
                                    err("http_protocol"), err(8), None),
        "NUL in a header": ("/nul-header", None, "http",
                            err("http_protocol"), err(8), None),
        "status 999": ("/raw?case=status-999", None, "http",
                       err("http_protocol"), ok(999, 2), R_STATUS_RANGE),
        "bare LF line endings": ("/raw?case=lf-only", None, "http",
                                 err("http_protocol"), ok(200, 2), R_BARE_LF),
        "bare CR in a header": ("/raw?case=bare-cr-header", None, "http",
                                err("http_protocol"), ok(200, 2), R_BARE_CR),
        "'Content-Length : 2'": ("/raw?case=space-before-colon", None, "http",
                                 err("http_protocol"), ok(200, 2),
                                 R_WS_COLON_CL),
        "conflicting Content-Length": ("/conflicting-length", None, "http",
                                       err("http_protocol"), ok(200, 20),
                                       R_CL_CONFLICT),
        "repeated equal Content-Length": ("/dup-length", None, "http",
                                          err("http_protocol"), ok(200, 5),
                                          R_CL_DUP),
        "Content-Length '5, 5'": ("/raw?case=cl-list-same", None, "http",
                                  err("http_protocol"), ok(200, 5), R_CL_DUP),
        "Content-Length '1x'": ("/raw?case=cl-garbage", None, "http",
                                err("http_protocol"), ok(200, 1),
                                R_CL_GARBAGE),
        "Transfer-Encoding and Content-Length": (
            "/te-and-cl", None, "http", err("http_protocol"), ok(200, 10),
            R_TE_CL),
        "Transfer-Encoding: gzip": ("/raw?case=te-gzip", None, "http",
                                    ok(200, 4), err(61), R_TE_GZIP),
        # Limits and slowness.
        "declared body over the limit": ("/big-body?len=%d" % (2 * big), None,
                                         "http", err("too_large"), err(63),
                                         None),
        "endless body, declared huge": ("/endless?cl=1099511627776", None,
                                        "http", err("too_large"), err(63),
                                        None),
        "endless close-delimited body": ("/endless", None, "http",
                                         err("too_large"), err(28),
                                         R_ENDLESS),
        "endless chunked body": ("/endless?chunked=1", None, "http",
                                 err("too_large"), err(28), R_ENDLESS),
        "endless headers": ("/endless-headers", None, "http",
                            err("too_large"), err(56), None),
        "100 KiB of headers": ("/huge-headers?kb=100", None, "http",
                               err("too_large"), ok(200, 2), R_HEADER_LIMIT),
        "server never answers": ("/stall", None, "http", err("timeout"),
                                 err(28), None),
        "body trickles past the deadline": ("/trickle?ms=200&len=100000",
                                            None, "http", err("timeout"),
                                            err(28), None),
        "silence between bytes": ("/trickle?ms=1500&len=5", None, "http",
                                  err("timeout"), err(28), None),
    }
    return c


CASE_NAMES = list(cases(type("F", (), {"url": lambda *a, **k: ""})()))


def agree(g, c):
    """Whether a gatherd outcome and a curl outcome agree."""
    if g[0] == "ok" and c[0] == "ok":
        return g[1:] == c[1:]
    if g[0] == "err" and c[0] == "err":
        return g[1] in CURL_CLASS.get(c[1], set())
    return False


def run_curl(url, ca):
    argv = ["curl", "-sS", "-o", "/dev/null", "-L",
            "--max-redirs", str(MAX_REDIRECTS),
            "--proto-redir", "=http,https",
            "--max-filesize", str(1 << 20),
            "--max-time", str(CURL_MAX_TIME), "--cacert", str(ca),
            "--limit-rate", "4M",
            "-w", "%{http_code} %{size_download} %{url_effective}", url]
    cp = subprocess.run(argv, capture_output=True, text=True,
                        timeout=CURL_MAX_TIME + 20)
    code, size, eff = (cp.stdout.split(" ", 2) + ["", "", ""])[:3]
    return {"exit": cp.returncode, "status": int(code or 0),
            "size": int(size or 0), "url": eff,
            "stderr": cp.stderr.strip()}


def curl_outcome(c):
    if c["exit"] == 0:
        return ok(c["status"], c["size"])
    return err(c["exit"])


def gatherd_outcome(r):
    if r["state"] == "done":
        return ok(r["status"], r["length"])
    return err(r["error"])


@pytest.fixture(scope="module")
def diff_run(gatherd_bin, fault_server_tls, fault_pki, tmp_path_factory):
    f = fault_server_tls
    table = cases(f)
    urls = {name: f.url(path, host=host or "127.0.0.1", scheme=scheme)
            for name, (path, host, scheme, *_) in table.items()}
    refused = "http://127.0.0.1:%d/refused" % free_tcp_port("127.0.0.1")
    urls["connection refused"] = refused
    table["connection refused"] = ("", None, "http", err("connect"), err(7),
                                   None)

    g = Gatherd(gatherd_bin, tmp_path_factory.mktemp("differential"))
    g.write_config(fetch=CONFIG, tls={"ca_file": str(fault_pki["ca"])})
    g.write_queue(urls.values())
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as ex:
        futs = {name: ex.submit(run_curl, u, fault_pki["ca"])
                for name, u in urls.items()}
        g.once(timeout=60)
        curl = {name: fu.result() for name, fu in futs.items()}
    took = time.monotonic() - t0
    rows = {r["url"]: r for r in g.rows()}
    obs = {}
    for name, u in urls.items():
        obs[name] = (rows[u], curl[name])
    out = os.environ.get("DIFF_TABLE")
    if out:
        write_table(out, table, obs)
    yield {"table": table, "obs": obs, "took": took}
    g.cleanup()


def write_table(path, table, obs):
    lines = ["| case | gatherd | curl | agree | reason |",
             "|---|---|---|---|---|"]
    for name, (_, _, _, _, _, reason) in table.items():
        r, c = obs[name]
        go, co = gatherd_outcome(r), curl_outcome(c)
        fmt = lambda o: ("%s %s" % o[1:] if o[0] == "ok" else "error %s" % o[1])
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, fmt(go), fmt(co), "yes" if agree(go, co) else "NO",
            reason or ""))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def strip_fragment(u):
    return u.split("#", 1)[0]


@pytest.mark.parametrize("name", CASE_NAMES + ["connection refused"])
def test_differential_case(diff_run, name):
    _, _, _, want_g, want_c, reason = diff_run["table"][name]
    r, c = diff_run["obs"][name]
    got_g, got_c = gatherd_outcome(r), curl_outcome(c)
    detail = {"gatherd": {k: r[k] for k in ("state", "status", "length",
                                            "error", "error_detail",
                                            "final_url", "redirects")},
              "curl": c}
    # Both sides behave as the table says...
    assert got_g == want_g, ("gatherd", name, detail)
    assert got_c == want_c, ("curl", name, detail)
    # ...and the table's claim about agreement holds.
    if reason is None:
        assert agree(got_g, got_c), ("unexplained disagreement", name, detail)
        if got_g[0] == "ok":
            # Same final URL (curl keeps a fragment gatherd drops).
            assert r["final_url"] == strip_fragment(c["url"]), detail
    else:
        assert not agree(got_g, got_c), ("listed as a disagreement, but "
                                          "they agree now", name, detail)
        assert len(reason) > 40
    if got_g[0] == "err":
        assert r["error_detail"], detail


def test_differential_runtime(diff_run):
    # Everything ran in parallel: bounded by the slowest timeout.
    assert diff_run["took"] < CURL_MAX_TIME + 15, diff_run["took"]

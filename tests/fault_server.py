#!/usr/bin/env python3
"""A scripted HTTP/1.1 server that misbehaves on request, for gatherd's
integration tests.  Python 3 standard library only (asyncio raw streams).

The path selects the behaviour; query parameters tune it:

  /ok?len=N              200, Content-Length body of N bytes, keep-alive
  /chunked?len=N         200, chunked body of N bytes in several chunks
  /close?len=N           200, no length, body then close (close-delimited)
  /stall                 read the request, send nothing, wait for the client
  /stall-body            Content-Length: 1000, 10 bytes, then silence
  /trickle?ms=M&len=N    Content-Length N (default 100000), one byte every M ms
  /reset-mid-body        Content-Length 100000, 5000 bytes, then RST
  /eof-mid-body          Content-Length 100000, 5000 bytes, then FIN
  /ok-then-close?len=N&ms=M  like /ok (looks keep-alive), then the server
                         closes the connection after M ms (default 0)
  /drop                  read the request, close without a byte (FIN)
  /bad-status            malformed status line "HTTP/1.1 abc OK"
  /bad-chunk             chunked body with an invalid chunk size "zz"
  /huge-headers?kb=N     headers totalling about N KiB, then a 2-byte body
  /big-body?len=N        Content-Length N, streamed in 64 KiB blocks
  /continue?len=N        "100 Continue" and "103 Early Hints", then 200
  /slow?ms=M&len=N       wait M ms, then as /ok
  /status?code=N&len=L   that status, Content-Length body of L bytes
  /headers               200 with the request's header block as the body
  /proxy407              407 Proxy Authentication Required (as a proxy)
  /gzip?len=N&corrupt=1&cut=1  a gzip-coded body of N bytes (Content-
                         Encoding: gzip), corrupt or cut on request

Stateful and redirect cases (state is keyed by the `key` query parameter,
so tests sharing one server stay independent):

  /flaky?key=K&fail=N&code=C&len=L  the first N requests for K fail, then
                         200 with L bytes (default 100).  A failure is status
                         C (default 503) with a 5-byte body; how=drop closes
                         without a byte, how=reset sends an RST, how=stall
                         sends nothing.  ra=S adds "Retry-After: S" to the
                         failures; to=URL makes the success a 302 to URL;
                         ms=M waits M ms before each failure.
  /retry-after?key=K&secs=S&date=D&code=C  the first request for K gets C
                         (default 429) with Retry-After: S (seconds), or with
                         date=1 the HTTP date (IMF-fixdate) S seconds from
                         now (date=rfc850, date=asctime: the obsolete
                         formats); then 200.
  /redirect?to=URL&code=C&len=L  C (default 302) with Location: URL as given
                         (relative allowed); also /redirect/<any path>?...
  /redirect-loop         302 to itself (the same request-target), forever
  /redirect-chain?n=N    302 to /redirect-chain?n=N-1 ...; n=0 answers 200
  /redirect-rel/<path>?case=NAME  302 with a canned relative Location (see
                         REL_CASES); without case= or to= it answers like
                         /landed.  to=REF gives an arbitrary Location.
  /cross?hops=A,B&to=T   302 to http://A:<this port>/cross?hops=B&to=T, ...;
                         with no hops left, 302 to T on the last host (or
                         200 like /landed when to= is absent)
  /no-location?code=C&len=L  C (default 302), no Location, L-byte body
  /landed/<any>          200, the body is the request-target (so its length
                         tells which URL was fetched)

Hostile cases:

  /conflicting-length    "Content-Length: 10" and "Content-Length: 20"
  /dup-length            "Content-Length: 5" twice (same value)
  /te-and-cl             "Transfer-Encoding: chunked" and "Content-Length: 5"
  /nul-header            a header value holding a NUL byte
  /endless?chunked=C&cl=N  200 and a body that never ends (close-delimited,
                         chunked with chunked=1, or announcing Content-Length
                         N but never finishing), until the client goes
  /endless-headers?line=N&ms=M  header lines (N pad bytes, default 1000)
                         that never end; with ms=M one line every M ms
  /close-rst?len=N       close-delimited body of N bytes, then an RST
  /raw?case=NAME         a canned raw response (see RAW_CASES)

Control (not counted):

  /_stats                JSON statistics; "keys" maps each key to the list
                         of its requests (see below); "now" is the server's
                         monotonic clock
  /_reset                clear the statistics and all keyed state
  /_config?slow_scale=X  multiply /slow delays by X from now on (not counted)
  /_config?robots_ms=M   hold every /robots.txt M ms before its 404, from now
                         on, those already waiting too (not counted)
  /_config?robots_fail=N the next N /robots.txt requests get a 503 (at once)

Any other path gets a 404 with a short body (counted like the others).

Statistics are kept per destination IP (the local address of the accepted
socket, so 127.0.0.2 and 127.0.0.3 are told apart): requests open right now,
the most ever open at once, and the total; the same globally; the number of
requests per request-target; and accepted connections.  A request is "open"
from the moment its header block has been read until the last byte of the
response has been handed to the kernel (or the connection died).

Every request carrying a `key` query parameter (on any path) is also
recorded under that key: start and end times on the server's monotonic
clock ("t", "end"; end is null while open), wall-clock start ("wall"), the
local address it arrived on ("ip", so 127.0.0.2 and 127.0.0.3 are told
apart), the connection's number ("conn"), whether it came over TLS ("tls")
and the request-target.

With --tls-cert/--tls-key the same behaviours are also served over TLS on a
second port, written to --tls-port-file.

The server prints its port on stdout (one line) when it is listening, and
also writes it to --port-file when that is given.
"""

import argparse
import asyncio
import email.utils
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

MAX_REQUEST_HEAD = 64 * 1024
# Upper bound on how long any behaviour keeps a connection open on its own.
MAX_HOLD_S = 600.0


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.cur = 0
        self.max = 0
        self.total = 0
        self.by_ip = {}
        self.by_target = {}
        self.connections = 0
        self.conn_by_ip = {}
        self.keys = {}       # key -> [record, ...]
        self.counters = {}   # (path, key) -> requests seen
        self.started = time.monotonic()

    def begin(self, ip, target):
        self.cur += 1
        self.total += 1
        self.max = max(self.max, self.cur)
        s = self.by_ip.setdefault(ip, {"cur": 0, "max": 0, "total": 0})
        s["cur"] += 1
        s["total"] += 1
        s["max"] = max(s["max"], s["cur"])
        self.by_target[target] = self.by_target.get(target, 0) + 1

    def end(self, ip):
        self.cur -= 1
        s = self.by_ip.get(ip)
        if s is not None:  # may have been reset meanwhile
            s["cur"] -= 1
        if self.cur < 0:
            self.cur = 0

    def connected(self, ip):
        self.connections += 1
        self.conn_by_ip[ip] = self.conn_by_ip.get(ip, 0) + 1

    def as_json(self):
        return json.dumps({
            "global": {"current": self.cur, "max_concurrent": self.max,
                       "total": self.total, "connections": self.connections},
            "by_ip": {ip: {"current": s["cur"], "max_concurrent": s["max"],
                           "total": s["total"],
                           "connections": self.conn_by_ip.get(ip, 0)}
                      for ip, s in self.by_ip.items()},
            "by_target": self.by_target,
            "keys": self.keys,
            "now": time.monotonic(),
        }, sort_keys=True).encode()

    def record(self, key, rec):
        self.keys.setdefault(key, []).append(rec)

    def bump(self, path, key):
        """Count a request for (path, key); return how many came before."""
        n = self.counters.get((path, key), 0)
        self.counters[(path, key)] = n + 1
        return n


STATS = Stats()
# Multiplier applied to every /slow delay; set through /_config?slow_scale=X
# so that a test can make URLs already queued in gatherd answer at once.
CONFIG = {"slow_scale": 1.0, "robots_ms": 0.0, "robots_fail": 0}


class Request:
    """One open request: ends its stats entry exactly once."""

    def __init__(self, ip, target, rec=None):
        self.ip = ip
        self.target = target
        self.open = True
        self.rec = rec
        STATS.begin(ip, target)

    def finish(self):
        if self.open:
            self.open = False
            STATS.end(self.ip)
            if self.rec is not None:
                self.rec["end"] = time.monotonic()


def qint(q, name, default, lo=0, hi=1 << 40):
    try:
        v = int(q.get(name, [default])[0])
    except (ValueError, TypeError):
        v = default
    return max(lo, min(hi, v))


def head(status_line, headers):
    out = [status_line]
    out.extend("%s: %s" % kv for kv in headers)
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def body_bytes(n):
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    reps = n // len(pattern) + 1
    return (pattern * reps)[:n]


async def hold_until_client_closes(reader, limit_s=MAX_HOLD_S):
    """Wait (bounded) until the peer closes or resets; discard what it sends."""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            data = await asyncio.wait_for(reader.read(65536), timeout=left)
        except asyncio.TimeoutError:
            return
        if not data:
            return


async def sleep_or_peer_gone(reader, seconds):
    """Sleep, but return False early if the peer closed meanwhile.  Bytes the
    peer sends during the pause are discarded (no pipelining here)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        try:
            data = await asyncio.wait_for(reader.read(65536), timeout=left)
        except asyncio.TimeoutError:
            return True
        if not data:
            return False


def rst_close(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def flush(writer):
    """Drain and wait (bounded) until asyncio's own buffer is empty, so that
    everything written has reached the kernel."""
    await writer.drain()
    for _ in range(200):
        if writer.transport.get_write_buffer_size() == 0:
            return
        await asyncio.sleep(0.01)


async def handle_one(reader, writer, ip, method, target, head_block,
                     conn_info=None):
    """Serve one request.  Returns True if the connection may carry another."""
    parts = urlsplit(target)
    path = parts.path
    q = parse_qs(parts.query)
    keep = b"connection: close" not in head_block.lower()

    if path == "/_stats":
        body = STATS.as_json()
        writer.write(head("HTTP/1.1 200 OK",
                          [("Content-Type", "application/json"),
                           ("Content-Length", len(body))]) + body)
        await writer.drain()
        return keep
    if path == "/_config":
        for name in ("slow_scale", "robots_ms", "robots_fail"):
            try:
                if name in q:
                    CONFIG[name] = float(q[name][0])
            except ValueError:
                pass
        writer.write(head("HTTP/1.1 200 OK", [("Content-Length", 0)]))
        await writer.drain()
        return keep
    if path == "/_reset":
        STATS.reset()
        writer.write(head("HTTP/1.1 200 OK", [("Content-Length", 0)]))
        await writer.drain()
        return keep

    rec = None
    key = q.get("key", [None])[0]
    if key is not None:
        info = conn_info or {}
        rec = {"t": time.monotonic(), "wall": time.time(), "end": None,
               "ip": ip, "conn": info.get("id"), "tls": info.get("tls", False),
               "target": target,
               "headers": head_block.decode("latin-1")}
        STATS.record(key, rec)
    req = Request(ip, target, rec)
    try:
        return await behave(reader, writer, req, method, path, q, keep,
                            head_block)
    finally:
        req.finish()


def ok_response(n, status="200 OK", ctype="text/plain", keep=True):
    hs = [("Content-Type", ctype), ("Content-Length", n)]
    if not keep:
        hs.append(("Connection", "close"))
    return head("HTTP/1.1 " + status, hs) + body_bytes(n)


NOT_MINE = object()

# /redirect-rel/<path>?case=NAME -> the Location sent ("{port}" is this
# server's port on the connection).
REL_CASES = {
    "sibling": "d?x=1",
    "dot": "./d",
    "dotdot": "../d",
    "dots-mixed": "../../x/./y/../z?q=1",
    "above-root": "../../../../../../landed/r",
    "abs-path": "/landed/abs?k=v",
    "abs-path-dots": "/landed/a/../b/./c",
    "query-only": "?only=1",
    "empty-segment": "d//e",
    "fragment": "/landed/frag#section",
    "scheme-rel": "//127.0.0.3:{port}/landed/sr",
    "absolute": "http://127.0.0.4:{port}/landed/abs",
    "space": "/landed/a b",
    "ftp": "ftp://127.0.0.1:{port}/landed/ftp",
}

# /raw?case=NAME -> raw bytes sent, then the connection is closed.
RAW_CASES = {
    "status-2digit": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    "status-999": b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok",
    "no-reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "http10-close": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                    + b"x" * 1234,
    "http09": b"just a body, no status line\n",
    "lf-only": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "cl-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    "cl-garbage": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nok",
    "cl-list-same": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
    "cl-excess": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\n"
                b"Content-Length: 2\r\n\r\nok",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "space-before-colon-other": b"HTTP/1.1 200 OK\r\nX-Foo : bar\r\n"
                                b"Content-Length: 2\r\n\r\nok",
    "location-space-colon": b"HTTP/1.1 302 Found\r\nLocation : /landed/sc\r\n"
                            b"Content-Length: 0\r\n\r\n",
    "chunk-ext": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;name=val\r\nhello\r\n0\r\n\r\n",
    "trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "chunked-no-end": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzzz",
    "te-chunked-twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
                        b"chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "204-with-body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
                     b"hello",
    "interim-then-close": b"HTTP/1.1 100 Continue\r\n\r\n",
    "headers-then-close": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
    "bare-cr-header": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2"
                      b"\r\n\r\nok",
}

FLAKY_BODY = b"fail\n"


def landed_response(target, keep, status="200 OK"):
    body = target.encode("latin-1")
    hs = [("Content-Type", "text/plain"), ("Content-Length", len(body))]
    if not keep:
        hs.append(("Connection", "close"))
    return head("HTTP/1.1 " + status, hs) + body


def redirect_response(code, location, keep, n=0):
    hs = [("Location", location), ("Content-Type", "text/plain"),
          ("Content-Length", n)]
    if not keep:
        hs.append(("Connection", "close"))
    return head("HTTP/1.1 %d Moved" % code, hs) + body_bytes(n)


def local_port(writer):
    s = writer.get_extra_info("sockname")
    return s[1] if s else 0


async def stream_until_gone(writer, block):
    """Write `block` again and again until the peer goes (bounded)."""
    deadline = time.monotonic() + MAX_HOLD_S
    while time.monotonic() < deadline:
        writer.write(block)
        await writer.drain()
    return False


async def behave_more(reader, writer, req, path, q, keep):
    """The stateful, redirect and hostile behaviours; NOT_MINE for others."""
    key = q.get("key", [""])[0]

    if path == "/flaky":
        n = STATS.bump(path, key)
        fail = qint(q, "fail", 2)
        if n < fail:
            # ms=: wait that long before failing (a slow failure).
            if not await sleep_or_peer_gone(
                    reader, qint(q, "ms", 0, hi=int(MAX_HOLD_S * 1000)) / 1000):
                return False
            how = q.get("how", ["status"])[0]
            if how == "drop":
                req.finish()
                return False
            if how == "reset":
                req.finish()
                rst_close(writer)
                return False
            if how == "stall":
                await hold_until_client_closes(reader)
                return False
            code = qint(q, "code", 503, lo=100, hi=999)
            hs = [("Content-Type", "text/plain"),
                  ("Content-Length", len(FLAKY_BODY))]
            if "ra" in q:
                hs.append(("Retry-After", q["ra"][0]))
            data = head("HTTP/1.1 %d Flaky" % code, hs) + FLAKY_BODY
        elif "to" in q:
            data = redirect_response(302, q["to"][0], keep)
        else:
            data = ok_response(qint(q, "len", 100), keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/retry-after":
        n = STATS.bump(path, key)
        if n == 0:
            secs = qint(q, "secs", 1, hi=86400)
            date = q.get("date", ["0"])[0]
            at = time.gmtime(time.time() + secs)
            if date == "1":
                value = email.utils.formatdate(time.time() + secs,
                                               usegmt=True)
            elif date == "rfc850":
                value = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", at)
            elif date == "asctime":
                value = time.strftime("%a %b %e %H:%M:%S %Y", at)
            else:
                value = str(secs)
            code = qint(q, "code", 429, lo=100, hi=999)
            data = head("HTTP/1.1 %d Later" % code,
                        [("Retry-After", value),
                         ("Content-Type", "text/plain"),
                         ("Content-Length", len(FLAKY_BODY))]) + FLAKY_BODY
        else:
            data = ok_response(qint(q, "len", 100), keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/redirect" or path.startswith("/redirect/"):
        code = qint(q, "code", 302, lo=100, hi=999)
        to = q.get("to", ["/landed/"])[0]
        data = redirect_response(code, to, keep, qint(q, "len", 0))
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/redirect-loop":
        data = redirect_response(qint(q, "code", 302, lo=100, hi=999),
                                 req.target, keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/redirect-chain":
        n = qint(q, "n", 3)
        if n <= 0:
            data = landed_response(req.target, keep)
        else:
            rest = [(k, v[0]) for k, v in q.items() if k != "n"]
            data = redirect_response(
                302, "/redirect-chain?" + urlencode([("n", n - 1)] + rest),
                keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/redirect-rel" or path.startswith("/redirect-rel/"):
        case = q.get("case", [None])[0]
        if case is not None and case in REL_CASES:
            loc = REL_CASES[case].replace("{port}", str(local_port(writer)))
        elif "to" in q:
            loc = q["to"][0]
        else:
            loc = None
        data = (landed_response(req.target, keep) if loc is None
                else redirect_response(302, loc, keep))
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/cross":
        hops = [h for h in q.get("hops", [""])[0].split(",") if h]
        to = q.get("to", [None])[0]
        if hops:
            rest = [("hops", ",".join(hops[1:]))]
            rest += [(k, v[0]) for k, v in q.items() if k != "hops"]
            loc = "http://%s:%d/cross?%s" % (hops[0], local_port(writer),
                                             urlencode(rest))
            data = redirect_response(302, loc, keep)
        elif to is not None:
            data = redirect_response(302, to, keep)
        else:
            data = landed_response(req.target, keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/no-location":
        code = qint(q, "code", 302, lo=100, hi=999)
        n = qint(q, "len", 7)
        hs = [("Content-Type", "text/plain"), ("Content-Length", n)]
        data = head("HTTP/1.1 %d No Location" % code, hs) + body_bytes(n)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/landed" or path.startswith("/landed/"):
        data = landed_response(req.target, keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path in ("/conflicting-length", "/dup-length", "/te-and-cl",
                "/nul-header"):
        if path == "/conflicting-length":
            data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 10\r\nContent-Length: 20\r\n\r\n"
                    + body_bytes(20))
        elif path == "/dup-length":
            data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n"
                    b"hello")
        elif path == "/te-and-cl":
            data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
                    b"\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
        else:
            data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"X-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok")
        req.finish()
        writer.write(data)
        await flush(writer)
        return False

    if path == "/endless":
        hs = [("Content-Type", "application/octet-stream")]
        chunked = q.get("chunked", ["0"])[0] == "1"
        if chunked:
            hs.append(("Transfer-Encoding", "chunked"))
        elif "cl" in q:
            hs.append(("Content-Length", qint(q, "cl", 1 << 40)))
        else:
            hs.append(("Connection", "close"))
        writer.write(head("HTTP/1.1 200 OK", hs))
        block = body_bytes(qint(q, "block", 65536, lo=1, hi=1 << 20))
        if chunked:
            block = b"%x\r\n" % len(block) + block + b"\r\n"
        return await stream_until_gone(writer, block)

    if path == "/endless-headers":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        line = b"X-Pad: " + b"p" * qint(q, "line", 1000, hi=60000) + b"\r\n"
        ms = qint(q, "ms", 0, hi=60000)
        if not ms:
            return await stream_until_gone(writer, line)
        # Slowloris: one header line every ms milliseconds.
        deadline = time.monotonic() + MAX_HOLD_S
        while time.monotonic() < deadline:
            writer.write(line)
            await writer.drain()
            if not await sleep_or_peer_gone(reader, ms / 1000.0):
                return False
        return False

    if path == "/close-rst":
        n = qint(q, "len", 5000)
        writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                               ("Connection", "close")]))
        writer.write(body_bytes(n))
        await flush(writer)
        await asyncio.sleep(0.1)
        req.finish()
        rst_close(writer)
        return False

    if path == "/raw":
        data = RAW_CASES.get(q.get("case", [""])[0])
        if data is None:
            return NOT_MINE
        req.finish()
        writer.write(data)
        await flush(writer)
        await asyncio.sleep(0.05)
        return False

    return NOT_MINE


async def behave(reader, writer, req, method, path, q, keep, head_block):
    r = await behave_more(reader, writer, req, path, q, keep)
    if r is not NOT_MINE:
        return r
    if path == "/ok":
        n = qint(q, "len", 100)
        data = ok_response(n, keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/slow":
        ms = qint(q, "ms", 1000, hi=int(MAX_HOLD_S * 1000))
        n = qint(q, "len", 100)
        # The scale is read again after each short nap so that a change
        # through /_config also shortens requests already waiting.
        t0 = time.monotonic()
        for _ in range(int(MAX_HOLD_S * 20) + 1):
            left = ms / 1000.0 * CONFIG["slow_scale"] - (time.monotonic() - t0)
            if left <= 0:
                break
            if not await sleep_or_peer_gone(reader, min(left, 0.05)):
                return False
        data = ok_response(n, keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/status":
        code = qint(q, "code", 200, lo=100, hi=999)
        n = qint(q, "len", 10)
        if 100 <= code < 200 or code in (204, 304):
            n = 0
        data = ok_response(n, status="%d Status%d" % (code, code), keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/proxy407":
        # What a proxy says to a request without its credentials (the
        # fault server stands in for a proxy: an absolute-form target
        # "http://origin/proxy407" has this path).
        data = head("HTTP/1.1 407 Proxy Authentication Required",
                    [("Proxy-Authenticate", 'Basic realm="test"'),
                     ("Content-Length", 0)])
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/gzip":
        # A gzip-coded body of len bytes (corrupt=1 flips a byte in the
        # middle of the stream; cut=1 drops its last 8 bytes), sent
        # whatever the request accepts.
        import gzip as _gzip
        plain = body_bytes(qint(q, "len", 1000))
        coded = bytearray(_gzip.compress(plain))
        if q.get("corrupt", ["0"])[0] == "1":
            coded[len(coded) // 2] ^= 0x55
        if q.get("cut", ["0"])[0] == "1":
            coded = coded[:-8]
        data = head("HTTP/1.1 200 OK",
                    [("Content-Type", "text/plain"),
                     ("Content-Encoding", "gzip"),
                     ("Content-Length", len(coded))]) + bytes(coded)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/headers":
        body = head_block
        data = head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                         ("Content-Length", len(body))]) + body
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/chunked":
        n = qint(q, "len", 1000)
        body = body_bytes(n)
        writer.write(head("HTTP/1.1 200 OK",
                          [("Content-Type", "text/plain"),
                           ("Transfer-Encoding", "chunked")]))
        # Several chunks of uneven sizes, some in separate writes.
        sizes = [1, 7, 100, 4096]
        pos = 0
        i = 0
        while pos < n:
            size = min(sizes[i % len(sizes)], n - pos)
            chunk = body[pos:pos + size]
            writer.write(b"%x\r\n" % size + chunk + b"\r\n")
            pos += size
            i += 1
            if i % 8 == 0:
                await writer.drain()
        req.finish()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep

    if path == "/close":
        n = qint(q, "len", 1000)
        writer.write(head("HTTP/1.1 200 OK",
                          [("Content-Type", "text/plain"),
                           ("Connection", "close")]))
        body = body_bytes(n)
        for off in range(0, n, 65536):
            writer.write(body[off:off + 65536])
            await writer.drain()
        req.finish()
        await flush(writer)
        return False

    if path == "/stall":
        await hold_until_client_closes(reader)
        return False

    if path == "/stall-body":
        writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                               ("Content-Length", 1000)]))
        writer.write(body_bytes(10))
        await writer.drain()
        await hold_until_client_closes(reader)
        return False

    if path == "/trickle":
        ms = qint(q, "ms", 500, lo=1, hi=60000)
        n = qint(q, "len", 100000, lo=1)
        writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                               ("Content-Length", n)]))
        await writer.drain()
        deadline = time.monotonic() + MAX_HOLD_S
        for _ in range(n):
            writer.write(b"x")
            await writer.drain()
            if time.monotonic() > deadline:
                break
            if not await sleep_or_peer_gone(reader, ms / 1000.0):
                return False
        return False

    if path in ("/reset-mid-body", "/eof-mid-body"):
        writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                               ("Content-Length", 100000)]))
        writer.write(body_bytes(5000))
        await flush(writer)
        await asyncio.sleep(0.1)  # let the bytes reach the client first
        req.finish()
        if path == "/reset-mid-body":
            rst_close(writer)
        return False

    if path == "/ok-then-close":
        # A response that looks keep-alive (no "Connection: close"), then
        # the server closes the idle connection after `ms` milliseconds, as
        # servers with a short keep-alive timeout do.
        n = qint(q, "len", 100)
        ms = qint(q, "ms", 0, hi=60000)
        data = ok_response(n, keep=True)
        req.finish()
        writer.write(data)
        await flush(writer)
        if ms:
            await sleep_or_peer_gone(reader, ms / 1000.0)
        return False

    if path == "/drop":
        req.finish()
        return False

    if path == "/bad-status":
        req.finish()
        writer.write(b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok")
        await flush(writer)
        return False

    if path == "/bad-chunk":
        writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain"),
                                               ("Transfer-Encoding", "chunked")]))
        req.finish()
        writer.write(b"5\r\nhello\r\nzz\r\nxx\r\n0\r\n\r\n")
        await flush(writer)
        await asyncio.sleep(0.2)
        return False

    if path == "/huge-headers":
        kb = qint(q, "kb", 100, hi=64 * 1024)
        total = kb * 1024
        hs = [("Content-Type", "text/plain"), ("Content-Length", 2)]
        size = 0
        i = 0
        while size < total:
            val = "p" * 1000
            name = "X-Pad-%d" % i
            hs.append((name, val))
            size += len(name) + 2 + len(val) + 2
            i += 1
        if not keep:
            hs.append(("Connection", "close"))
        writer.write(head("HTTP/1.1 200 OK", hs))
        await writer.drain()
        req.finish()
        writer.write(b"ok")
        await writer.drain()
        return keep

    if path == "/big-body":
        n = qint(q, "len", 10 << 20)
        writer.write(head("HTTP/1.1 200 OK",
                          [("Content-Type", "application/octet-stream"),
                           ("Content-Length", n)]))
        block = body_bytes(65536)
        off = 0
        while off < n:
            k = min(65536, n - off)
            if off + k >= n:
                req.finish()
            writer.write(block[:k])
            await writer.drain()
            off += k
        await writer.drain()
        return keep

    if path == "/continue":
        n = qint(q, "len", 17)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 103 Early Hints\r\n"
                     b"Link: </style.css>; rel=preload; as=style\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        data = ok_response(n, keep=keep)
        req.finish()
        writer.write(data)
        await writer.drain()
        return keep

    if path == "/robots.txt" and CONFIG["robots_fail"] >= 1:
        CONFIG["robots_fail"] -= 1
        req.finish()
        writer.write(ok_response(5, status="503 Service Unavailable",
                                 keep=keep))
        await writer.drain()
        return keep
    if path == "/robots.txt":
        # Held while /_config's robots_ms says so (read after each nap).
        t0 = time.monotonic()
        for _ in range(int(MAX_HOLD_S * 20) + 1):
            left = CONFIG["robots_ms"] / 1000.0 - (time.monotonic() - t0)
            if left <= 0:
                break
            if not await sleep_or_peer_gone(reader, min(left, 0.05)):
                return False
    req.finish()
    writer.write(ok_response(9, status="404 Not Found", keep=keep))
    await writer.drain()
    return keep


async def read_head(reader):
    """Read one request head; None on EOF or garbage."""
    try:
        block = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    return block


CONN_IDS = [0]


async def client(reader, writer):
    sockname = writer.get_extra_info("sockname")
    ip = sockname[0] if sockname else "?"
    STATS.connected(ip)
    CONN_IDS[0] += 1
    conn_info = {"id": CONN_IDS[0],
                 "tls": writer.get_extra_info("sslcontext") is not None}
    try:
        for _ in range(1_000_000):
            block = await read_head(reader)
            if block is None:
                break
            line = block.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            if len(parts) != 3:
                writer.write(b"HTTP/1.1 400 Bad Request\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                break
            method, target, _version = parts
            # Discard a request body if one was announced.
            for h in block.split(b"\r\n")[1:]:
                if h.lower().startswith(b"content-length:"):
                    try:
                        n = int(h.split(b":", 1)[1])
                        await reader.readexactly(n)
                    except (ValueError, asyncio.IncompleteReadError):
                        pass
            keep = await handle_one(reader, writer, ip, method, target, block,
                                    conn_info)
            if not keep:
                break
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert", help="PEM certificate chain for TLS")
    ap.add_argument("--tls-key", help="PEM private key for TLS")
    ap.add_argument("--tls-port", type=int, default=0)
    ap.add_argument("--tls-port-file")
    args = ap.parse_args()

    server = await asyncio.start_server(
        client, args.host, args.port, limit=MAX_REQUEST_HEAD, backlog=1024,
        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    tls_server = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls_server = await asyncio.start_server(
            client, args.host, args.tls_port, limit=MAX_REQUEST_HEAD,
            backlog=1024, reuse_address=True, ssl=ctx)
        tls_port = tls_server.sockets[0].getsockname()[1]
        if args.tls_port_file:
            write_port_file(args.tls_port_file, tls_port)
    if args.port_file:
        write_port_file(args.port_file, port)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A client that goes away must never take the server down with it.
    loop.set_exception_handler(lambda _l, _c: None)
    async with server:
        if tls_server is not None:
            async with tls_server:
                await stop.wait()
        else:
            await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

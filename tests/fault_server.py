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
  /_stats                JSON statistics (not counted)
  /_reset                clear the statistics (not counted)
  /_config?slow_scale=X  multiply /slow delays by X from now on (not counted)

Any other path gets a 404 with a short body (counted like the others).

Statistics are kept per destination IP (the local address of the accepted
socket, so 127.0.0.2 and 127.0.0.3 are told apart): requests open right now,
the most ever open at once, and the total; the same globally; the number of
requests per request-target; and accepted connections.  A request is "open"
from the moment its header block has been read until the last byte of the
response has been handed to the kernel (or the connection died).

The server prints its port on stdout (one line) when it is listening, and
also writes it to --port-file when that is given.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time
from urllib.parse import parse_qs, urlsplit

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
        }, sort_keys=True).encode()


STATS = Stats()
# Multiplier applied to every /slow delay; set through /_config?slow_scale=X
# so that a test can make URLs already queued in gatherd answer at once.
CONFIG = {"slow_scale": 1.0}


class Request:
    """One open request: ends its stats entry exactly once."""

    def __init__(self, ip, target):
        self.ip = ip
        self.open = True
        STATS.begin(ip, target)

    def finish(self):
        if self.open:
            self.open = False
            STATS.end(self.ip)


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


async def handle_one(reader, writer, ip, method, target, head_block):
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
        try:
            CONFIG["slow_scale"] = float(q.get("slow_scale", ["1"])[0])
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

    req = Request(ip, target)
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


async def behave(reader, writer, req, method, path, q, keep, head_block):
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


async def client(reader, writer):
    sockname = writer.get_extra_info("sockname")
    ip = sockname[0] if sockname else "?"
    STATS.connected(ip)
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
            keep = await handle_one(reader, writer, ip, method, target, block)
            if not keep:
                break
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()

    server = await asyncio.start_server(
        client, args.host, args.port, limit=MAX_REQUEST_HEAD, backlog=1024,
        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A client that goes away must never take the server down with it.
    loop.set_exception_handler(lambda _l, _c: None)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

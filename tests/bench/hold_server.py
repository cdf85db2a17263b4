#!/usr/bin/python3
"""A loopback HTTP server that accepts connections, reads requests and never
answers: it holds every request in flight for as long as the client waits.

Used by tests/bench to measure gatherd's memory per in-flight connection and
to throttle fetching while ingestion is measured.

    hold_server.py --port-file FILE [--status-file FILE] [--host 0.0.0.0]

Writes its port to --port-file once listening; every 0.2 s writes
"<open connections> <requests held>" to --status-file.  Stops on SIGTERM.
"""
import argparse
import asyncio
import os
import resource
import signal


class Hold(asyncio.Protocol):
    open_conns = 0
    held = 0

    def connection_made(self, transport):
        Hold.open_conns += 1
        self.buf = b""
        self.counted = False
        self.transport = transport

    def data_received(self, data):
        if self.counted:
            return                      # discard anything after the request
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.counted = True
            self.buf = b""
            Hold.held += 1
        elif len(self.buf) > 65536:
            self.transport.close()

    def connection_lost(self, exc):
        Hold.open_conns -= 1
        if self.counted:
            Hold.held -= 1


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--status-file")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536),) * 2)
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(0))
    srv = await loop.create_server(Hold, a.host, a.port, backlog=65535,
                                   reuse_address=True)
    port = srv.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, a.port_file)
    while not stop.done():
        if a.status_file:
            tmp = a.status_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d\n" % (Hold.open_conns, Hold.held))
            os.replace(tmp, a.status_file)
        await asyncio.wait([stop], timeout=0.2)
    srv.close()


if __name__ == "__main__":
    asyncio.run(main())

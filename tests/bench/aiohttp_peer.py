#!/usr/bin/python3
"""The design gatherd replaces, as a peer for tests/bench: asyncio.gather
over aiohttp session.get with a Semaphore(N), the body read, and each row
stored in SQLite through asyncio.to_thread (one INSERT per URL, autocommit,
WAL + synchronous=NORMAL like gatherd's store).

    /usr/bin/python3 aiohttp_peer.py --urls FILE --db FILE [--concurrency 64]
                                     [--limit-per-host N] [--cafile CA.pem]

Table results(id, url, status, length, error).  Exit 0 when it ran through
(the harness counts the rows to decide whether the run recorded everything).
"""
import argparse
import asyncio
import sqlite3
import ssl
import threading

import aiohttp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--limit-per-host", type=int, default=0,
                    help="aiohttp's TCPConnector limit_per_host (0: none)")
    ap.add_argument("--cafile")
    a = ap.parse_args()
    with open(a.urls) as f:
        urls = [line.strip() for line in f if line.strip()]

    init = sqlite3.connect(a.db, isolation_level=None)
    init.execute("PRAGMA journal_mode=WAL")
    init.execute("CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY,"
                 " url TEXT NOT NULL, status INTEGER, length INTEGER,"
                 " error TEXT)")
    init.close()

    local = threading.local()

    def db():
        c = getattr(local, "c", None)
        if c is None:
            c = sqlite3.connect(a.db, isolation_level=None, timeout=60)
            c.execute("PRAGMA synchronous=NORMAL")
            local.c = c
        return c

    def save(url, status, length, error):
        db().execute("INSERT INTO results (url, status, length, error)"
                     " VALUES (?, ?, ?, ?)", (url, status, length, error))

    sslctx = None
    if a.cafile:
        sslctx = ssl.create_default_context(cafile=a.cafile)

    async def run():
        sem = asyncio.Semaphore(a.concurrency)
        conn = aiohttp.TCPConnector(limit=a.concurrency,
                                    limit_per_host=a.limit_per_host,
                                    ssl=sslctx if sslctx is not None
                                    else None)
        async with aiohttp.ClientSession(connector=conn) as session:
            async def fetch(url):
                async with sem:
                    try:
                        async with session.get(url) as resp:
                            body = await resp.read()
                            status, length, err = resp.status, len(body), None
                    except Exception as e:     # recorded, like gatherd does
                        status, length, err = None, None, type(e).__name__
                    await asyncio.to_thread(save, url, status, length, err)
            await asyncio.gather(*(fetch(u) for u in urls))

    asyncio.run(run())


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Scrapy as a peer for tests/bench: the framework people pick for
scraping in Python.  A spider fetches every URL of a file with
CONCURRENT_REQUESTS = N (and the same per domain/IP, so a one-host run is
not throttled to Scrapy's default of 8 per domain, unless --per-host says
otherwise); an item pipeline writes (url, status, length) to SQLite, one
transaction per item like Scrapy's usual SQLite pipelines.

    /usr/bin/python3 scrapy_peer.py --urls FILE --db FILE [--concurrency N]
                                    [--per-host N] [--cafile CA.pem]

Table results(id, url, status, length, error).  Exit 0 when the crawl ran
through; the harness counts the rows.  --cafile is accepted for symmetry:
Scrapy does not verify certificates (its default context factory), so it
is ignored.
"""
import argparse
import sqlite3

import scrapy
from scrapy.crawler import CrawlerProcess


class SqlitePipeline:
    """Stores each item as one row; the connection lives for the crawl."""

    def __init__(self, path):
        self.path = path
        self.c = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.get("BENCH_DB"))

    def open_spider(self, spider):
        self.c = sqlite3.connect(self.path)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=NORMAL")
        self.c.execute("CREATE TABLE IF NOT EXISTS results (id INTEGER"
                       " PRIMARY KEY, url TEXT NOT NULL, status INTEGER,"
                       " length INTEGER, error TEXT)")
        self.c.commit()

    def close_spider(self, spider):
        self.c.close()

    def process_item(self, item, spider):
        self.c.execute("INSERT INTO results (url, status, length, error)"
                       " VALUES (?, ?, ?, ?)", (item["url"], item["status"],
                                                item["length"], item["error"]))
        self.c.commit()
        return item


class ListSpider(scrapy.Spider):
    name = "bench"

    def __init__(self, url_file, **kw):
        super().__init__(**kw)
        self.url_file = url_file

    def start_requests(self):
        with open(self.url_file) as f:
            for line in f:
                u = line.strip()
                if u:
                    yield scrapy.Request(u, callback=self.parse,
                                         errback=self.failed,
                                         dont_filter=True)

    def parse(self, response):
        yield {"url": response.url, "status": response.status,
               "length": len(response.body), "error": None}

    def failed(self, failure):
        yield {"url": failure.request.url, "status": None, "length": None,
               "error": failure.type.__name__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--per-host", type=int)
    ap.add_argument("--cafile")
    a = ap.parse_args()
    per_host = a.per_host or a.concurrency
    proc = CrawlerProcess(settings={
        "BENCH_DB": a.db,
        "CONCURRENT_REQUESTS": a.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_host,
        "REACTOR_THREADPOOL_MAXSIZE": 20,
        "DOWNLOAD_DELAY": 0,
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_ENABLED": True,
        "DOWNLOAD_TIMEOUT": 120,
        "LOG_LEVEL": "WARNING",
        "ITEM_PIPELINES": {__name__ + ".SqlitePipeline": 300},
    })
    proc.crawl(ListSpider, url_file=a.urls)
    proc.start()


if __name__ == "__main__":
    main()

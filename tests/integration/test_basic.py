"""Bulk fetching from a real nginx: one row per submitted line, in order,
with the right status, length and content type; every URL fetched exactly
once; a second run over the same queue file and database does nothing."""

import time
from collections import Counter

from conftest import (CONTENT_TYPES, DOCROOT_FILES, assert_iso_utc,
                      parse_iso)

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")

N_URLS = 3200
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]


def make_urls(nginx, tag):
    """(url, expected status, expected length or None, expected type)."""
    plan = []
    files = ["page.html", "empty.txt", "one.txt", "mid.bin"]
    for i in range(N_URLS):
        host = HOSTS[i % len(HOSTS)]
        if i % 10 == 7:
            path = "missing-%d.html?t=%s" % (i, tag)
            plan.append((nginx.url(path, host), 404, None, None))
            continue
        name = "big.bin" if i % 200 == 3 else files[i % len(files)]
        path = "%s?t=%s&i=%d" % (name, tag, i)
        ext = name[name.rindex("."):]
        plan.append((nginx.url(path, host), 200, DOCROOT_FILES[name],
                     CONTENT_TYPES[ext]))
    return plan


def test_bulk_once_then_idempotent(gatherd, nginx):
    tag = "basic%d" % time.time_ns()
    plan = make_urls(nginx, tag)
    gatherd.write_config()
    gatherd.write_queue(u for u, *_ in plan)
    mark = nginx.log_mark()
    t_start = time.time()

    _, took = gatherd.once(timeout=180)
    t_end = time.time()

    rows = gatherd.rows()
    # Exactly one row per submitted line, ids ascending in line order.
    assert len(rows) == len(plan)
    assert [r["url"] for r in rows] == [u for u, *_ in plan]
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    log = nginx.log_entries(mark)
    log_by_uri = {}
    for e in log:
        log_by_uri.setdefault(e["uri"], []).append(e)

    for (url, status, length, ctype), r in zip(plan, rows):
        assert r["state"] == "done", r
        assert r["status"] == status, r
        assert r["error"] is None, r
        assert r["attempts"] == 1, r
        uri = url.split("/", 3)[3]
        entries = log_by_uri.get("/" + uri, [])
        assert len(entries) == 1, (url, entries)
        # The recorded length is what nginx says it sent (this covers the
        # 404 pages, whose size we do not hard-code) ...
        assert r["length"] == entries[0]["bytes"], (r, entries[0])
        if length is not None:
            # ... and the real file size for files.
            assert r["length"] == length, r
            assert r["content_type"] is not None
            assert r["content_type"].split(";")[0].strip() == ctype, r
        assert_iso_utc(r["queued_at"], "queued_at")
        assert_iso_utc(r["fetched_at"], "fetched_at")
        # Unix milliseconds; gatherd truncates its clock (the same one as
        # time.time()) to whole milliseconds, hence t_start's 1 ms.
        q = round(parse_iso(r["queued_at"]) * 1000)
        f = round(parse_iso(r["fetched_at"]) * 1000)
        assert t_start * 1000 - 1 <= q <= f <= t_end * 1000, r
        # The fetch ran between queueing and its result (each of the three
        # numbers truncated: 1 ms).
        assert r["elapsed_ms"] is not None and \
            0 <= r["elapsed_ms"] <= f - q + 1, r

    # The access log shows each of our URLs fetched exactly once, nothing else.
    ours = Counter(e["uri"] for e in log if ("t=" + tag) in e["uri"])
    assert len(ours) == len(plan)
    assert set(ours.values()) == {1}

    # Second run: no new rows, nothing fetched again, rows unchanged.
    mark2 = nginx.log_mark()
    gatherd.once(timeout=60)
    rows2 = gatherd.rows()
    assert rows2 == rows
    again = [e for e in nginx.log_entries(mark2) if ("t=" + tag) in e["uri"]]
    assert again == []


def test_second_run_takes_only_new_lines(gatherd, nginx):
    """Lines appended between two --once runs are taken by the second run,
    and only those are fetched."""
    tag = "append%d" % time.time_ns()
    first = [nginx.url("page.html?t=%s&n=%d" % (tag, i)) for i in range(20)]
    second = [nginx.url("one.txt?t=%s&n=%d" % (tag, i)) for i in range(20, 35)]
    gatherd.write_config()
    gatherd.write_queue(first)
    gatherd.once()
    mark = nginx.log_mark()
    gatherd.write_queue(second, mode="a")
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == first + second
    assert all(r["state"] == "done" and r["status"] == 200 for r in rows)
    fetched = Counter(e["uri"] for e in nginx.log_entries(mark)
                      if ("t=" + tag) in e["uri"])
    assert fetched == Counter("/" + u.split("/", 3)[3] for u in second)

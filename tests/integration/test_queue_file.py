"""Queue-file rules: comments, blank lines, trimming, partial last lines,
over-long lines, invalid URLs and fragments."""

import pytest

from conftest import RESULT_COLUMNS, assert_iso_utc, parse_iso

# Run on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


def test_comments_blank_lines_and_trimming(gatherd, fault_server):
    f = fault_server
    u = [f.url("/ok?len=%d" % (10 + i)) for i in range(6)]
    content = (
        "# a comment line\n"
        "\n"
        "   \n"
        "\t \t\n"
        "  %s  \n"            # surrounding spaces
        "\t%s\r\n"            # tab and CRLF
        "#%s\n"               # commented-out URL: no row, no fetch
        "%s\n"
        "%s \t \r\n"          # trailing blanks then CR
        "\r\n"                # a blank CRLF line
        "%s\n"
    ) % (u[0], u[1], u[2], u[3], u[4], u[5])
    gatherd.write_config()
    gatherd.append_raw(content)
    gatherd.once()
    rows = gatherd.rows()
    want = [u[0], u[1], u[3], u[4], u[5]]
    assert [r["url"] for r in rows] == want
    for r in rows:
        assert r["state"] == "done" and r["status"] == 200, r
        assert r["length"] == int(r["url"].rsplit("=", 1)[1]), r
    targets = f.stats()["by_target"]
    assert "/ok?len=12" not in targets
    assert sorted(targets) == sorted("/ok?len=%d" % (10 + i)
                                     for i in (0, 1, 3, 4, 5))


def test_partial_last_line_waits_for_newline(gatherd, fault_server):
    f = fault_server
    a, b = f.url("/ok?len=3&p=a"), f.url("/ok?len=4&p=b")
    gatherd.write_config()
    gatherd.append_raw(a + "\n" + b)          # b has no newline yet
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == [a]
    assert "/ok?len=4&p=b" not in f.stats()["by_target"]

    gatherd.append_raw("\n")
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == [a, b]
    assert [r["state"] for r in rows] == ["done", "done"]
    assert rows[1]["length"] == 4
    t = f.stats()["by_target"]
    assert t["/ok?len=3&p=a"] == 1 and t["/ok?len=4&p=b"] == 1


def test_partial_line_completed_in_pieces(gatherd, fault_server):
    """A URL written in three pieces across runs is taken whole, once."""
    f = fault_server
    u = f.url("/ok?len=21&pieces=1")
    gatherd.write_config()
    gatherd.append_raw(u[:10])
    gatherd.once()
    assert gatherd.rows() == []
    gatherd.append_raw(u[10:25])
    gatherd.once()
    assert gatherd.rows() == []
    gatherd.append_raw(u[25:] + "\n")
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == [u]
    assert rows[0]["state"] == "done" and rows[0]["length"] == 21


def test_long_lines(gatherd, fault_server):
    f = fault_server
    base = f.url("/ok?len=5&pad=")
    exact = base + "a" * (8192 - len(base))          # 8192 bytes: accepted
    over = base + "b" * (8193 - len(base))           # 8193 bytes: invalid
    huge = base + "c" * (9000 - len(base))           # 9000 bytes: invalid
    after = f.url("/ok?len=6&after=1")
    assert (len(exact), len(over), len(huge)) == (8192, 8193, 9000)
    gatherd.write_config()
    gatherd.write_queue([exact, over, huge, after])
    gatherd.once()
    rows = gatherd.rows()
    assert len(rows) == 4
    r_exact, r_over, r_huge, r_after = rows
    assert r_exact["state"] == "done" and r_exact["status"] == 200, \
        {k: v for k, v in r_exact.items() if k != "url"}
    assert r_exact["url"] == exact
    for r in (r_over, r_huge):
        assert r["state"] == "failed", {k: v for k, v in r.items()
                                        if k != "url"}
        assert r["error"] == "invalid_url"
        assert r["error_detail"]
        assert r["status"] is None
    # The reader stays in step after a long line.
    assert r_after["url"] == after
    assert r_after["state"] == "done" and r_after["length"] == 6
    # Only the two valid URLs reached the server.
    assert f.stats()["global"]["total"] == 2


INVALID = [
    "ftp://127.0.0.1/file",
    "gopher://127.0.0.1/",
    "http://",
    "http:///path/only",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:abc/",
    "http://127.0.0.1/has space",
    "http://exa mple.com/",
    "127.0.0.1/no-scheme",
    "not a url at all",
    "https//missing-colon.example/",
]


def test_invalid_urls(gatherd, fault_server):
    f = fault_server
    good = f.url("/ok?len=8&good=1")
    lines = INVALID[:6] + [good] + INVALID[6:]
    gatherd.write_config()
    gatherd.write_queue(lines)
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == lines
    for r in rows:
        assert_iso_utc(r["queued_at"], "queued_at")
        if r["url"] == good:
            assert r["state"] == "done" and r["length"] == 8, r
            assert_iso_utc(r["fetched_at"], "fetched_at")
            assert parse_iso(r["fetched_at"]) >= parse_iso(r["queued_at"]), r
            continue
        assert r["state"] == "failed", r
        assert r["error"] == "invalid_url", r
        assert r["error_detail"], r
        assert r["status"] is None and r["length"] is None, r
        # Failed at ingestion: never fetched, so no fetch time.
        assert r["fetched_at"] is None, r
    assert f.stats()["global"]["total"] == 1


def test_fragment_is_not_sent_but_url_kept(gatherd, fault_server):
    f = fault_server
    u1 = f.url("/ok?len=7#frag")
    u2 = f.url("/ok?len=9#")
    u3 = f.url("/ok#section-2")
    gatherd.write_config()
    gatherd.write_queue([u1, u2, u3])
    gatherd.once()
    rows = gatherd.rows()
    assert [r["url"] for r in rows] == [u1, u2, u3]
    assert [(r["state"], r["status"], r["length"]) for r in rows] == [
        ("done", 200, 7), ("done", 200, 9), ("done", 200, 100)]
    targets = f.stats()["by_target"]
    assert targets == {"/ok?len=7": 1, "/ok?len=9": 1, "/ok": 1}, targets


@pytest.mark.sqlite_only  # the database file and its journal mode
def test_queue_file_created_when_missing(gatherd, fault_server):
    gatherd.write_config()
    assert not gatherd.queue.exists()
    gatherd.once()
    assert gatherd.queue.exists()
    assert gatherd.db.exists()
    assert gatherd.rows() == []
    # WAL mode, as documented, so sqlite3 can read during writes.
    mode = gatherd.query("PRAGMA journal_mode")[0]
    assert list(mode.values())[0].lower() == "wal"
    # The view has every documented column.
    cols = [c["name"] for c in gatherd.query("PRAGMA table_info(results)")]
    assert set(RESULT_COLUMNS) <= set(cols), cols

"""The WARC files that src/warc.c writes, read by an independent reader:
webrecorder's warcio (the JavaScript one, pinned in tests/warc/package.json
and installed there with npm when missing), through tests/warc/check.mjs.

The files come from the unit test binary next to gatherd (`test_warc
--samples DIR` and `--forever DIR`, see tests/unit/test_warc.c), so these
tests run against the same build as the rest of the suite, ASan included.
They need node and npm; without them they skip, saying so.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import check_sanitizers, kill_group

HERE = Path(__file__).resolve().parent
CHECK_DIR = HERE.parent / "warc"
CHECK = CHECK_DIR / "check.mjs"
SAMPLE_MAX_BYTES = 256 * 1024  # what --samples gives warc_open


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def test_warc_bin(gatherd_bin):
    p = Path(gatherd_bin).parent / "test_warc"
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail("test_warc not built next to %s" % gatherd_bin)
    return str(p)


@pytest.fixture(scope="session")
def warcio():
    """node, with the pinned warcio installed in tests/warc/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run warcio, the independent "
                    "WARC reader (Debian: apt-get install nodejs npm)")
    want = json.loads((CHECK_DIR / "package.json").read_text())
    want = want["dependencies"]["warcio"]
    have = CHECK_DIR / "node_modules" / "warcio" / "package.json"
    if not have.exists() or json.loads(have.read_text())["version"] != want:
        cp = subprocess.run([npm, "ci", "--no-audit", "--no-fund"],
                            cwd=CHECK_DIR, capture_output=True, text=True,
                            timeout=600)
        assert cp.returncode == 0, "npm ci in %s failed:\n%s%s" % (
            CHECK_DIR, cp.stdout, cp.stderr)
    return node


def run_check(node, files, extract=None):
    """check.mjs on files: its JSON report (exit 0: all well but perhaps a
    torn last record; 1: something is wrong, listed in errors)."""
    argv = [node, str(CHECK)]
    if extract is not None:
        argv += ["--extract", str(extract)]
    cp = subprocess.run(argv + [str(f) for f in files], capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode in (0, 1), (cp.returncode, cp.stderr)
    report = json.loads(cp.stdout)
    assert (cp.returncode == 0) == (report["errors"] == []), report["errors"]
    return report


def cat(test_warc_bin, d, file, offset):
    """Our own reader, warc_read_payload, on one record."""
    return subprocess.run([test_warc_bin, "--cat", str(d), file, str(offset)],
                          capture_output=True, timeout=60)


def records_by_place(report):
    return {(Path(f["file"]).name, r["offset"]): r
            for f in report["files"] for r in f["records"]}


def sha256(b):
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def samples(test_warc_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("warc-samples")
    cp = subprocess.run([test_warc_bin, "--samples", str(d)],
                        capture_output=True, text=True, timeout=120)
    check_sanitizers(cp.stdout + cp.stderr, "test_warc --samples")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    manifest = json.loads((d / "manifest.json").read_text())
    return d, manifest, sorted(d.glob("*.warc.gz"))


# ---------------------------------------------------------------- tests

def test_warcio_reads_every_record(warcio, samples, test_warc_bin, tmp_path):
    d, manifest, files = samples
    report = run_check(warcio, files, extract=tmp_path)
    assert report["errors"] == []
    places = records_by_place(report)

    # Rollover: several files, each opening with its warcinfo record and
    # past the limit only when it holds a single capture.
    assert len(files) >= 4
    for f in report["files"]:
        assert f["torn"] is None, f
        first = f["records"][0]
        assert first["type"] == "warcinfo"
        assert first["filename"] == Path(f["file"]).name
        captures = [r for r in f["records"]
                    if r["type"] in ("response", "revisit")]
        assert f["size"] <= SAMPLE_MAX_BYTES or len(captures) == 1, f["file"]
        for r in f["records"]:
            assert r["gzipMember"] == "ok" and r["blockDigest"] == "ok", r
            assert r["blockLength"] == r["contentLength"], r

    # Every record where the writer said it went, as the writer said.
    expect = {"warcinfo": len(files), "response": 0, "request": 0,
              "revisit": 0}
    for m in manifest:
        r = places.get((m["file"], m["offset"]))
        assert r is not None, m
        expect[m["type"]] += 1
        assert r["type"] == m["type"], (m, r)
        assert r["uri"] == m["uri"]
        assert r["id"] == m["record_id"]
        assert r["length"] == m["length"]
        assert r["date"].endswith("Z")
        if m["request_offset"] >= 0:
            req = places[(m["file"], m["request_offset"])]
            expect["request"] += 1
            assert req["type"] == "request"
            assert req["uri"] == m["uri"]
            assert req["concurrentTo"] == m["record_id"]
            assert req["offset"] == m["offset"] + m["length"]
        if m["type"] == "revisit":
            assert r["refersToUri"] == "http://samples.example/html"
            assert r["headersOnly"], r
            html = next(x for x in manifest if x["name"] == "html")
            assert r["payloadDigestField"] == places[
                (html["file"], html["offset"])]["payloadDigestField"]
            continue
        assert r["contentType"] == "application/http; msgtype=response"
        body = (d / m["body"]).read_bytes()
        assert m["payload_sha256"] == sha256(body)
        assert m["payload_length"] == len(body)
        if m["truncated"]:
            assert r["truncated"] == "length"
        else:
            assert r["truncated"] is None
            # WARC-Payload-Digest is the digest of the body with the
            # transfer coding removed, as warcio's de-chunker removes it.
            assert r["payloadDigest"] == "ok", r
            assert r["payloadSha256"] == m["payload_sha256"]
            assert r["payloadLength"] == m["payload_length"]
            assert r["payloadDigestRaw"] == (not m["chunked"]), r
            # What warcio extracts is the page: byte for byte the body
            # (decoded, for a Content-Encoding).
            want = d / (m["decoded"] or m["body"])
            assert Path(r["extracted"]).read_bytes() == want.read_bytes(), m
        # And our reader gives the payload the digest is of.
        cp = cat(test_warc_bin, d, m["file"], m["offset"])
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout == body, m["name"]
    assert report["counts"] == expect


def test_torn_last_record_is_reported(warcio, samples, test_warc_bin,
                                      tmp_path):
    d, manifest, files = samples
    # The first file: several records, its last member a request.
    name = manifest[0]["file"]
    data = (d / name).read_bytes()
    report = run_check(warcio, [d / name])
    records = report["files"][0]["records"]
    last = records[-1]
    assert len(records) >= 6
    cuts = [last["offset"] + 5, last["offset"] + last["length"] // 2,
            len(data) - 8, len(data) - 1,
            records[-2]["offset"] + records[-2]["length"] // 3]
    for cut in cuts:
        torn = tmp_path / ("cut-%d.warc.gz" % cut)
        torn.write_bytes(data[:cut])
        r = run_check(warcio, [torn])
        assert r["errors"] == [], (cut, r["errors"])
        f = r["files"][0]
        whole = [x for x in records if x["offset"] + x["length"] <= cut]
        assert f["torn"] is not None, cut
        assert f["torn"]["offset"] == whole[-1]["offset"] + whole[-1]["length"]
        # The records before the cut, untouched, and nothing after.
        got = [x for x in f["records"] if not x.get("torn")]
        assert [(x["offset"], x["blockDigest"]) for x in got] == \
            [(x["offset"], "ok") for x in whole], cut
        # Our reader: the same verdicts.
        for x in whole:
            assert cat(test_warc_bin, tmp_path, torn.name,
                       x["offset"]).returncode == 0
        cp = cat(test_warc_bin, tmp_path, torn.name, f["torn"]["offset"])
        assert cp.returncode == 1 and b"torn record" in cp.stderr, cp.stderr


class Forever:
    """`test_warc --forever DIR`: 4 MiB records until killed, each line
    on stdout a record written whole."""

    def __init__(self, binary, d):
        self.lines = []
        self.proc = subprocess.Popen([binary, "--forever", str(d)],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            file, offset, length, digest = line.split()
            self.lines.append((file, int(offset), int(length), digest))

    def kill(self):
        kill_group(self.proc, signal.SIGKILL)
        self.reader.join(timeout=10)
        return self.proc.stderr.read()


def kill_inside_a_record(binary, d, deadline=60):
    """Kill -9 the writer while a member is being written: once a record
    was reported and the file has grown 1 to 3 MiB past it."""
    w = Forever(binary, d)
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end and w.proc.poll() is None:
            if w.lines:
                file, offset, length, _ = w.lines[-1]
                past = os.path.getsize(d / file) - (offset + length)
                if (1 << 20) < past < (3 << 20):
                    break
            time.sleep(0.001)
        assert w.proc.poll() is None, w.proc.stderr.read()
    finally:
        stderr = w.kill()
    check_sanitizers(stderr, "test_warc --forever")
    assert w.lines, "no record was written in %d s" % deadline
    return w.lines


def test_kill_9_leaves_at_most_a_torn_last_record(warcio, test_warc_bin,
                                                  tmp_path):
    torn_seen = 0
    for attempt in range(5):
        d = tmp_path / ("kill-%d" % attempt)
        d.mkdir()
        written = kill_inside_a_record(test_warc_bin, d)
        files = sorted(d.glob("*.warc.gz"))
        assert len(files) == 1
        report = run_check(warcio, files)
        assert report["errors"] == []
        f = report["files"][0]
        whole = [r for r in f["records"] if not r.get("torn")]
        # Every record reported written is there, whole, with its
        # payload; after them at most one more, whole or torn.
        assert whole[0]["type"] == "warcinfo"
        for (file, offset, length, digest), r in zip(written, whole[1:]):
            assert (r["offset"], r["length"]) == (offset, length)
            assert r["payloadSha256"] == digest
        assert len(whole) - 1 - len(written) in (0, 1)
        if f["torn"] is not None:
            torn_seen += 1
            end = whole[-1]["offset"] + whole[-1]["length"]
            assert f["torn"]["offset"] == end
            cp = cat(test_warc_bin, d, files[0].name, end)
            assert cp.returncode == 1 and b"torn record" in cp.stderr
        # A new writer leaves the old file as it is and starts its own.
        before = files[0].read_bytes()
        kill_inside_a_record(test_warc_bin, d)
        assert files[0].read_bytes() == before
        assert len(list(d.glob("*.warc.gz"))) == 2
        if torn_seen >= 2:
            break
    assert torn_seen > 0, "no kill landed inside a record in 5 tries"

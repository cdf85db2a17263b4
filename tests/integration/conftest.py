"""Fixtures for gatherd's integration tests: the built binary, a private nginx,
the scripted fault server (tests/fault_server.py), a private dnsmasq, and a
helper that writes a config, runs gatherd and reads the `results` view.

Everything listens on loopback only (0.0.0.0 listeners are reached through
127.0.0.x addresses).  Ports are chosen at run time.  Every wait has a
deadline; every process started here is stopped at teardown, even when the
test failed.
"""

import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import json
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAULT_SERVER = REPO / "tests" / "fault_server.py"
GATHERD_BIN = os.environ.get("GATHERD_BIN", str(REPO / "build" / "gatherd"))
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
DNSMASQ = os.environ.get("DNSMASQ", "/usr/sbin/dnsmasq")

# gatherd falls back to curl's proxy variables: tests that want a proxy
# configure one, and no test may reach anything through a proxy of the
# machine's.
for _var in ("http_proxy", "https_proxy", "HTTPS_PROXY", "no_proxy",
             "NO_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_var, None)

# Markers of sanitizer reports in gatherd's stderr: any of them fails a test.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")

# Sizes of the files in nginx's docroot.
DOCROOT_FILES = {
    "page.html": 13793,
    "empty.txt": 0,
    "one.txt": 1,
    "mid.bin": 100000,
    "big.bin": 1 << 20,
}
CONTENT_TYPES = {".html": "text/html", ".txt": "text/plain",
                 ".bin": "application/octet-stream"}

ISO_UTC = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|\+00:00|\+0000)$")


# ---------------------------------------------------------------- helpers

def wait_for(cond, timeout, interval=0.05, what="condition", detail=None):
    """Call cond() until it returns something truthy or `timeout` seconds
    pass; return that value, or fail the test naming `what` (and adding
    what detail(), if given, returns: a daemon's log, say)."""
    deadline = time.monotonic() + timeout
    last = None
    n = int(timeout / interval) + 10
    for _ in range(n):
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    pytest.fail("timed out after %.1fs waiting for %s (last: %r)%s"
                % (timeout, what, last,
                   "" if detail is None else "\n" + detail()))


def free_tcp_port(host="0.0.0.0"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_tcp_port(host="127.0.0.1"):
    """A port that is free for both UDP and TCP on `host` right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP+TCP port")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def kill_group(proc, sig=signal.SIGKILL, timeout=10):
    """Kill the process group of `proc` (started with start_new_session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def check_sanitizers(text, where="gatherd"):
    for m in SANITIZER_MARKERS:
        if m in text:
            i = text.index(m)
            pytest.fail("%s stderr contains %r:\n%s"
                        % (where, m, text[max(0, i - 200):i + 3000]))


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


# ---------------------------------------------------------------- binary

@pytest.fixture(scope="session")
def gatherd_bin():
    p = Path(GATHERD_BIN)
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail("gatherd binary not found or not executable: %s "
                    "(set GATHERD_BIN)" % p)
    return str(p)


# ---------------------------------------------------------------- nginx

def prepare_nginx_dirs(d, docroot):
    """The docroot with the DOCROOT_FILES of known sizes, and the
    temporary directories nginx_conf_head() points at."""
    docroot.mkdir(parents=True, exist_ok=True)
    for name, size in DOCROOT_FILES.items():
        pattern = (b"<html>%s</html>\n" % name.encode()) * (size // 10 + 2)
        (docroot / name).write_bytes(pattern[:size])
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (Path(d) / ("tmp_" + t)).mkdir(exist_ok=True)


def nginx_conf_head(d):
    """The start of a private nginx config, up to the http block's own
    settings: one worker, pid, logs and temporary files under d."""
    return """
user root;
daemon off;
master_process on;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; text/plain txt; application/octet-stream bin; }
    default_type application/octet-stream;
    client_body_temp_path %(d)s/tmp_body;
    proxy_temp_path %(d)s/tmp_proxy;
    fastcgi_temp_path %(d)s/tmp_fastcgi;
    uwsgi_temp_path %(d)s/tmp_uwsgi;
    scgi_temp_path %(d)s/tmp_scgi;
""" % {"d": d}


class Nginx:
    def __init__(self, root):
        self.root = Path(root)
        self.docroot = self.root / "www"
        self.access_log = self.root / "access.log"
        self.port = None
        self.proc = None

    def url(self, path, host="127.0.0.1"):
        return "http://%s:%d/%s" % (host, self.port, path.lstrip("/"))

    def log_mark(self):
        """Byte offset of the end of the access log now."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_entries(self, since=0):
        """Parsed access log lines written after offset `since`: dicts with
        server_addr, host, uri, status, bytes, and start_ms and end_ms:
        when nginx began the request (had read its first bytes) and when it
        logged it, as Unix time in whole milliseconds of nginx's clock."""
        with open(self.access_log, "rb") as f:
            f.seek(since)
            data = f.read()
        out = []
        for line in data.decode("latin-1").splitlines():
            parts = line.split("\t")
            if len(parts) != 8:
                continue
            # $msec is "seconds.mmm" at logging; $request_time "s.mmm" since
            # the request began, both from the same cached nginx time, so
            # their difference is exactly the request's start time.
            end_ms = int(parts[6].replace(".", ""))
            start_ms = end_ms - int(parts[7].replace(".", ""))
            out.append({"remote": parts[0], "server_addr": parts[1],
                        "host": parts[2], "uri": parts[3],
                        "status": int(parts[4]), "bytes": int(parts[5]),
                        "start_ms": start_ms, "end_ms": end_ms})
        return out

    def start(self):
        d = self.root
        prepare_nginx_dirs(d, self.docroot)
        last_err = ""
        for attempt in range(5):
            self.port = free_tcp_port()
            conf = d / "nginx.conf"
            conf.write_text(nginx_conf_head(d) + """
    log_format tests "$remote_addr\t$server_addr\t$http_host\t$request_uri\t$status\t$body_bytes_sent\t$msec\t$request_time";
    access_log {d}/access.log tests;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    sendfile on;
    gzip on;
    gzip_min_length 1;
    gzip_types text/plain application/octet-stream;
    server {{
        listen 0.0.0.0:{port} reuseport backlog=4096;
        server_name _;
        root {d}/www;
        # The same files, slowly (a page in about a second): fetches that
        # are surely in flight when a test kills gatherd.
        location /slow/ {{
            alias {d}/www/;
            limit_rate 12k;
        }}
    }}
}}
""".format(d=d, port=self.port))
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(d), "-e", str(d / "error.log"),
                 "-c", str(conf)],
                stdout=subprocess.DEVNULL, stderr=open(d / "nginx.stderr", "ab"),
                start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_open("127.0.0.1", self.port):
                    return self
                time.sleep(0.05)
            last_err = ((d / "error.log").read_text(errors="replace")
                        if (d / "error.log").exists() else "")
            kill_group(self.proc)
        raise RuntimeError("nginx did not start: " + last_err[-2000:])

    def stop(self):
        kill_group(self.proc, signal.SIGTERM)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory):
    n = Nginx(tmp_path_factory.mktemp("nginx"))
    n.start()
    yield n
    n.stop()


# ---------------------------------------------------------------- fault server

class FaultServer:
    """tests/fault_server.py in its own process.  `host` is the listening
    address (default 0.0.0.0: every 127.0.0.x reaches it); `tls` is a
    (certificate, key) pair of PEM files to also serve HTTPS on tls_port."""

    def __init__(self, root, host=None, tls=None):
        self.root = Path(root)
        self.port = None
        self.tls_port = None
        self.proc = None
        self.host = host
        self.tls = tls

    def start(self):
        port_file = self.root / "fault.port"
        tls_port_file = self.root / "fault.tls-port"
        argv = [sys.executable, str(FAULT_SERVER), "--port-file",
                str(port_file)]
        if self.host is not None:
            argv += ["--host", self.host]
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls[0]), "--tls-key",
                     str(self.tls[1]), "--tls-port-file", str(tls_port_file)]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "fault.stderr", "ab"),
            start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("fault server exited: %s" % (
                    (self.root / "fault.stderr").read_text()))
            return port_file.exists() and port_file.read_text().strip()
        self.port = int(wait_for(ready, 15, what="fault server port file"))
        if self.tls is not None:
            # Written before the plain port file.
            self.tls_port = int(tls_port_file.read_text().strip())
        return self

    def url(self, path, host="127.0.0.1", scheme="http"):
        if scheme == "https":
            return "https://%s:%d/%s" % (host, self.tls_port,
                                         path.lstrip("/"))
        return "http://%s:%d/%s" % (host, self.port, path.lstrip("/"))

    def _ctl_host(self):
        return ("127.0.0.1" if self.host in (None, "0.0.0.0", "")
                else self.host)

    def stats(self):
        return json.loads(http_get(self.url("/_stats",
                                            host=self._ctl_host()))[1])

    def records(self, key, stats=None):
        """The requests the server saw with query parameter key=`key`, in
        arrival order: dicts with t, end (server monotonic seconds; end is
        None while open), wall, ip (local address), conn, tls, target."""
        st = stats if stats is not None else self.stats()
        return st["keys"].get(key, [])

    def reset(self):
        http_get(self.url("/_reset", host=self._ctl_host()))

    def set_slow_scale(self, scale):
        """Multiply every later /slow delay by `scale` (0 = answer now)."""
        http_get(self.url("/_config?slow_scale=%s" % scale,
                          host=self._ctl_host()))

    def set_robots_ms(self, ms):
        """Hold every /robots.txt (a 404) `ms` ms, those waiting too."""
        http_get(self.url("/_config?robots_ms=%s" % ms,
                          host=self._ctl_host()))

    def fail_robots(self, n):
        """Answer the next `n` /robots.txt requests with a 503."""
        http_get(self.url("/_config?robots_fail=%d" % n,
                          host=self._ctl_host()))

    def stop(self):
        kill_group(self.proc, signal.SIGTERM)
        err = (self.root / "fault.stderr").read_text(errors="replace")
        return err


@pytest.fixture
def fault_server(tmp_path):
    d = tmp_path / "fault"
    d.mkdir()
    f = FaultServer(d).start()
    yield f
    err = f.stop()
    assert "Traceback" not in err, "fault server crashed:\n" + err


@pytest.fixture(scope="module")
def fault_server_module(tmp_path_factory):
    f = FaultServer(tmp_path_factory.mktemp("fault")).start()
    yield f
    err = f.stop()
    assert "Traceback" not in err, "fault server crashed:\n" + err


# ---------------------------------------------------------------- dnsmasq

def dns_query(server, port, name, timeout=1.0):
    """Send one A query; return (rcode, [ipv4 strings]) or None on timeout."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, port))
        try:
            data, _ = s.recvfrom(4096)
        except (socket.timeout, ConnectionRefusedError):
            return None
    rcode = data[3] & 0xF
    ancount = struct.unpack(">H", data[6:8])[0]
    # Skip the question, then read A records (names are compressed pointers
    # or labels; handle both).
    pos = 12

    def skip_name(p):
        for _ in range(128):
            n = data[p]
            if n == 0:
                return p + 1
            if n & 0xC0 == 0xC0:
                return p + 2
            p += n + 1
        return p
    pos = skip_name(pos) + 4
    addrs = []
    for _ in range(ancount):
        pos = skip_name(pos)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return rcode, addrs


class Dnsmasq:
    """A private dnsmasq.  `extra_args` adds options (e.g. --address= or
    --host-record= lines) to the built-in site1.test/site2.test ones; every
    query is logged to `log`, which queries() reads."""

    def __init__(self, root, extra_args=()):
        self.root = Path(root)
        self.port = None
        self.proc = None
        self.extra_args = list(extra_args)
        self.log = self.root / "dnsmasq.log"

    def queries(self, name, qtype="A"):
        """How many queries of type `qtype` for `name` dnsmasq received."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        pat = re.compile(r"query\[%s\] %s from " % (re.escape(qtype),
                                                     re.escape(name)), re.I)
        return len(pat.findall(text))

    def start(self):
        last = ""
        for attempt in range(5):
            self.port = free_udp_tcp_port()
            log = self.root / "dnsmasq.log"
            self.proc = subprocess.Popen(
                [DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
                 "--no-resolv", "--no-hosts", "--user=root", "--group=root",
                 "--pid-file", "--listen-address=127.0.0.1",
                 "--bind-interfaces", "--port=%d" % self.port,
                 "--address=/site1.test/127.0.0.2",
                 "--address=/site2.test/127.0.0.3",
                 "--local=/test/", "--log-queries",
                 "--log-facility=%s" % log] + self.extra_args,
                stdout=subprocess.DEVNULL,
                stderr=open(self.root / "dnsmasq.stderr", "ab"),
                start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                r = dns_query("127.0.0.1", self.port, "site1.test", 0.3)
                if r is not None:
                    assert r == (0, ["127.0.0.2"]), r
                    return self
                time.sleep(0.05)
            last = (self.root / "dnsmasq.stderr").read_text(errors="replace")
            kill_group(self.proc)
        raise RuntimeError("dnsmasq did not start: " + last[-2000:])

    @property
    def nameserver(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        kill_group(self.proc, signal.SIGTERM)


@pytest.fixture(scope="session")
def dnsmasq(tmp_path_factory):
    d = Dnsmasq(tmp_path_factory.mktemp("dnsmasq"))
    d.start()
    yield d
    d.stop()


# ---------------------------------------------------------------- gatherd

RESULT_COLUMNS = ("id", "url", "state", "status", "length", "error",
                  "error_detail", "attempts", "final_url", "redirects",
                  "content_type", "queued_at", "fetched_at", "elapsed_ms")


class Gatherd:
    """One gatherd instance: its directory, config, queue and database.
    With a Postgres (pg_helpers.py) it uses [store] backend = postgresql,
    a database of its own in that cluster (pg_db), and query() goes to
    it through psql."""

    def __init__(self, binary, root, pg=None, pg_db=None, node="node1"):
        self.bin = binary
        self.pg = pg
        self.pg_db = pg_db
        self.node = node
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "gatherd.conf"
        self.queue = self.root / "queue"
        self.db = self.root / "results.db"
        self.procs = []       # daemons started (Popen)
        self.stderr_files = []  # every stderr file written
        self.checked = set()    # those already checked for sanitizers
        self.n_runs = 0

    # -- config and queue

    def write_config(self, text=None, **sections):
        """Write gatherd.conf.  `sections` maps a section name to a dict of
        keys that override the defaults used by these tests."""
        if text is None:
            base = {
                "gatherd": {"queue_file": "queue", "database": "results.db",
                            "log_level": "info"},
                # robots.txt is its own test (test_robots.py): here it
                # would only add requests that tests count.
                "fetch": {"retries": 0, "robots": "false"},
            }
            if self.pg is not None:
                base["store"] = {"backend": "postgresql",
                                 "conninfo": self.pg.conninfo(self.pg_db),
                                 "node_name": self.node}
            for sec, kv in sections.items():
                base.setdefault(sec, {}).update(kv)
            lines = []
            for sec, kv in base.items():
                lines.append("[%s]" % sec)
                lines.extend("%s = %s" % (k, v) for k, v in kv.items())
                lines.append("")
            text = "\n".join(lines)
        elif self.pg is not None and "[store]" not in text:
            text += "\n[store]\nbackend = postgresql\nconninfo = %s\n" \
                    "node_name = %s\n" % (self.pg.conninfo(self.pg_db),
                                           self.node)
        self.conf.write_text(text)
        return self.conf

    def write_queue(self, lines, mode="w"):
        """Write URLs (each gets a '\\n') to the queue file."""
        with open(self.queue, mode) as f:
            for line in lines:
                f.write(line + "\n")

    def append_raw(self, data, path=None):
        with open(path or self.queue, "ab") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    # -- running

    def _stderr_path(self):
        self.n_runs += 1
        p = self.root / ("gatherd.%d.stderr" % self.n_runs)
        self.stderr_files.append(p)
        return p

    def run(self, *args, timeout=120, cwd=None, config=True):
        """Run gatherd with `args` (plus -c CONF when config is true), wait
        for it, and return CompletedProcess (stdout/stderr as text).  Fails
        the test on a sanitizer report or timeout."""
        argv = [self.bin] + list(args)
        if config:
            argv += ["-c", str(self.conf)]
        try:
            cp = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, cwd=cwd or self.root,
                                errors="replace")
        except subprocess.TimeoutExpired as e:
            pytest.fail("gatherd %s did not finish within %ss; stderr:\n%s"
                        % (args, timeout, (e.stderr or b"")[-4000:]))
        p = self._stderr_path()
        p.write_text(cp.stderr)
        self.checked.add(p)
        check_sanitizers(cp.stderr, "gatherd %s" % " ".join(args))
        return cp

    def once(self, *extra, timeout=120):
        """`gatherd --once`; asserts exit 0; returns (CompletedProcess,
        seconds taken)."""
        t0 = time.monotonic()
        cp = self.run("--once", *extra, timeout=timeout)
        took = time.monotonic() - t0
        assert cp.returncode == 0, (
            "gatherd --once exited %d; stderr:\n%s"
            % (cp.returncode, cp.stderr[-4000:]))
        return cp, took

    def start(self, *extra, env=None):
        """Start the daemon (no --once) with stderr to a file; `env` adds
        to (or, with None values, removes from) the environment."""
        p = self._stderr_path()
        full = None
        if env:
            full = dict(os.environ)
            for k, v in env.items():
                if v is None:
                    full.pop(k, None)
                else:
                    full[k] = v
        proc = subprocess.Popen(
            [self.bin, "-c", str(self.conf)] + list(extra),
            stdout=subprocess.DEVNULL, stderr=open(p, "wb"), cwd=self.root,
            start_new_session=True, env=full)
        proc.stderr_path = p
        self.procs.append(proc)
        return proc

    def stderr_of(self, proc):
        return proc.stderr_path.read_text(errors="replace")

    def wait_log(self, proc, text, timeout=10):
        """Wait until `text` is in the daemon's log.  Fails at once if the
        daemon exits first, and shows the log's tail either way."""
        def seen():
            err = self.stderr_of(proc)
            if text not in err and proc.poll() is not None:
                pytest.fail("gatherd exited %s before logging %r; "
                            "stderr:\n%s" % (proc.returncode, text,
                                              err[-4000:]))
            return text in err
        wait_for(seen, timeout, what=repr(text) + " in the log",
                 detail=lambda: self.diagnose(proc))

    def diagnose(self, proc):
        """What a running daemon is doing, for a test that waited for it
        in vain: its log's tail, each thread's state, and (where gdb is
        installed) every thread's stack and the queue reader's state."""
        out = ["stderr:\n" + self.stderr_of(proc)[-4000:]]
        if proc.poll() is not None:
            return "\n".join(out + ["exited %s" % proc.returncode])
        task = "/proc/%d/task" % proc.pid
        try:
            for tid in sorted(os.listdir(task)):
                with open("%s/%s/stat" % (task, tid)) as f:
                    stat = f.read().split(") ", 1)[-1].split()
                with open("%s/%s/wchan" % (task, tid)) as f:
                    wchan = f.read()
                out.append("thread %s: state %s, wchan %s, utime %s, "
                           "stime %s" % (tid, stat[0], wchan, stat[11],
                                         stat[12]))
        except OSError as e:
            out.append("cannot read %s: %s" % (task, e))
        if shutil.which("gdb") is None:
            return "\n".join(out + ["(gdb is not installed: no stacks)"])
        cmds = ["set pagination off", "thread apply all bt",
                "print *app_for_debugger->queue",
                "print app_for_debugger->stopping",
                "print app_for_debugger->running"]
        argv = ["gdb", "-batch", "-nx", "-p", str(proc.pid)]
        for c in cmds:
            argv += ["-ex", c]
        try:
            cp = subprocess.run(argv, capture_output=True, text=True,
                                timeout=60, errors="replace")
            out.append("gdb:\n" + cp.stdout[-12000:] + cp.stderr[-2000:])
        except subprocess.TimeoutExpired:
            out.append("gdb did not finish within 60 s")
        return "\n".join(out)

    def wait_ready(self, proc, timeout=30):
        def ready():
            if proc.poll() is not None:
                pytest.fail("gatherd exited %s before ready; stderr:\n%s"
                            % (proc.returncode, self.stderr_of(proc)[-4000:]))
            return "ready" in self.stderr_of(proc)
        wait_for(ready, timeout, what="gatherd 'ready' log line")

    def stop(self, proc, sig=signal.SIGTERM, timeout=20):
        """Signal the daemon and wait; returns (exit status, seconds)."""
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            pytest.fail("gatherd did not exit within %ss of %s; stderr:\n%s"
                        % (timeout, sig, self.stderr_of(proc)[-4000:]))
        took = time.monotonic() - t0
        self.checked.add(proc.stderr_path)
        check_sanitizers(self.stderr_of(proc), "gatherd daemon")
        return rc, took

    def cleanup(self):
        for p in self.procs:
            kill_group(p)

    # -- database

    def query(self, sql, params=()):
        if self.pg is not None:
            return self.pg.query(self.pg_db, sql, params)
        if not self.db.exists():
            return []
        con = sqlite3.connect(str(self.db), timeout=30)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, params)]
        finally:
            con.close()

    def rows(self):
        """All rows of the results view, by id."""
        return self.query("SELECT * FROM results ORDER BY id")

    def count(self, where="1", params=()):
        if where.strip() == "1":
            where = "1 = 1"  # PostgreSQL wants a boolean
        try:
            return self.query("SELECT count(*) AS n FROM results WHERE "
                              + where, params)[0]["n"]
        except (sqlite3.OperationalError, IndexError, RuntimeError):
            return 0  # not created yet


# ---------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the whole run (pg_helpers.py)."""
    from pg_helpers import Postgres, ensure_installed
    ensure_installed()
    pg = Postgres()
    try:
        pg.start()
    except Exception:
        pg.cleanup()
        raise
    yield pg
    pg.cleanup()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only: in a module with STORE_BACKENDS, a test "
        "about SQLite itself (its file, lock, CLI): run on SQLite only")


def pytest_generate_tests(metafunc):
    """A module that sets STORE_BACKENDS = ("sqlite", "postgresql") runs
    each of its tests that use the gatherd fixture once per backend,
    except those marked sqlite_only."""
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if (backends and "store_backend" in metafunc.fixturenames and
            metafunc.definition.get_closest_marker("sqlite_only") is None):
        metafunc.parametrize("store_backend", backends)


@pytest.fixture
def store_backend():
    return "sqlite"


_pg_checked = {}


def pg_database_for(request, gatherd_bin):
    """A fresh database in the session's cluster, after checking that the
    binary has the backend at all."""
    pg = request.getfixturevalue("postgres")
    if gatherd_bin not in _pg_checked:
        cp = subprocess.run([gatherd_bin, "check-config", "--set",
                             "store.backend=postgresql", "--set",
                             "gatherd.queue_file=/tmp/q"],
                            capture_output=True, text=True, timeout=30)
        _pg_checked[gatherd_bin] = cp
    cp = _pg_checked[gatherd_bin]
    if cp.returncode != 0:
        pytest.fail("%s cannot use PostgreSQL: %s" % (gatherd_bin,
                                                      cp.stderr.strip()))
    name = "t_%d_%d" % (os.getpid(), time.monotonic_ns())
    return pg, pg.create_db(name)


@pytest.fixture
def gatherd(gatherd_bin, tmp_path, store_backend, request):
    pg = db = None
    if store_backend == "postgresql":
        pg, db = pg_database_for(request, gatherd_bin)
    g = Gatherd(gatherd_bin, tmp_path / "gd", pg=pg, pg_db=db)
    yield g
    g.cleanup()
    # A daemon that was left running or crashed still must not have
    # reported sanitizer errors.
    for p in g.stderr_files:
        if p.exists() and p not in g.checked:
            check_sanitizers(p.read_text(errors="replace"), str(p))


def assert_iso_utc(value, what=""):
    assert isinstance(value, str) and ISO_UTC.match(value), (
        "%s not ISO-8601 UTC: %r" % (what, value))


def parse_iso(value):
    from datetime import datetime
    v = value.replace("Z", "+00:00")
    if re.search(r"\+0000$", v):
        v = v[:-5] + "+00:00"
    # Python 3.11 fromisoformat handles fractions of any length.
    return datetime.fromisoformat(v).timestamp()


# ---------------------------------------------------------------- resilience helpers

def _openssl(argv, cwd):
    cp = subprocess.run(["openssl"] + argv, cwd=cwd, capture_output=True,
                        text=True, timeout=60)
    if cp.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(argv),
                                                      cp.stderr))


@pytest.fixture(scope="session")
def fault_pki(tmp_path_factory):
    """A throw-away CA and a server certificate for localhost and
    127.0.0.1..127.0.0.9; returns dict(ca=, cert=, key=) of paths."""
    d = tmp_path_factory.mktemp("fault_pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(["req", "-x509"] + ec + [
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/CN=gatherd fault CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    _openssl(["req", "-new"] + ec + [
        "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"], d)
    # he.test: test_happy_eyeballs.py connects to it by name.
    sans = (["DNS:localhost", "DNS:he.test"]
            + ["IP:127.0.0.%d" % i for i in range(1, 10)])
    (d / "srv.ext").write_text(
        "subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n" % ",".join(sans))
    _openssl(["x509", "-req", "-in", "srv.csr", "-CA", "ca.crt",
              "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
              "-extfile", "srv.ext", "-out", "srv.crt"], d)
    return {"ca": d / "ca.crt", "cert": d / "srv.crt", "key": d / "srv.key"}


@pytest.fixture(scope="module")
def fault_server_tls(tmp_path_factory, fault_pki):
    """A module-wide fault server that also serves HTTPS (tls_port) with a
    certificate from fault_pki (pass fault_pki['ca'] as [tls] ca_file)."""
    f = FaultServer(tmp_path_factory.mktemp("fault_tls"),
                    tls=(fault_pki["cert"], fault_pki["key"])).start()
    yield f
    err = f.stop()
    assert "Traceback" not in err, "fault server crashed:\n" + err


def established_to(pid, port):
    """Established TCP connections that process `pid` holds to `port`."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                p = line.split()
                rem_port = int(p[2].rsplit(":", 1)[1], 16)
                if rem_port == port and p[3] == "01" and p[9] in inodes:
                    n += 1
    return n


def proc_status_kb(pid, field="VmRSS"):
    """A `kB` field of /proc/<pid>/status (None once the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds (None once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    # Fields 14 and 15 of stat(5) are utime and stime; `fields` starts at 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def binary_has_asan(path):
    """Whether a gatherd binary was built with AddressSanitizer."""
    try:
        out = subprocess.run(["ldd", str(path)], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    if "libasan" in out:
        return True
    try:
        return b"__asan_init" in Path(path).read_bytes()
    except OSError:
        return False

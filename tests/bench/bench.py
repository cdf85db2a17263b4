#!/usr/bin/python3
"""gatherd benchmark harness (called by tests/bench/run; see README.md).

Starts a private nginx (one worker, HTTP + HTTPS with a throw-away CA) and a
hold server on loopback, runs gatherd and its peers (curl --parallel, wrk,
the aiohttp design) on the same URL sets in alternation, and writes a table,
results.csv, results.json and urls_per_s.png into the out dir.

Failed runs are recorded as failures, never as fast runs.  The figures never
make this fail: the exit status is 0 unless something crashed.
"""
import argparse
import csv
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PAGE_SIZE = 13793
PY = "/usr/bin/python3"
TIME = "/usr/bin/time"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")

PROCS = []          # every long-running process we started (own session)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------- processes

def start_bg(argv, stdout=subprocess.DEVNULL, stderr=None, **kw):
    p = subprocess.Popen(argv, stdout=stdout, stderr=stderr,
                         start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop_proc(p, sig=signal.SIGTERM, timeout=10):
    """Stop a process we started (its own process group, by id)."""
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def cleanup():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, signal.SIG_IGN)   # finish cleaning up first
        except ValueError:
            pass
    for p in reversed(PROCS):
        stop_proc(p, timeout=5)
    PROCS.clear()


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def raise_nofile():
    """preexec_fn: lift RLIMIT_NOFILE (10,000 in-flight needs >10k fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard),) * 2)
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(cond, timeout, interval=0.05):
    """Poll cond() until truthy or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def parse_time_v(path):
    """Peak RSS (KiB), user s, sys s from /usr/bin/time -v output."""
    out = {"rss_kb": None, "user_s": None, "sys_s": None}
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return out
    for key, pat in (("rss_kb", r"Maximum resident set size \(kbytes\): (\d+)"),
                     ("user_s", r"User time \(seconds\): ([\d.]+)"),
                     ("sys_s", r"System time \(seconds\): ([\d.]+)")):
        m = re.search(pat, text)
        if m:
            out[key] = float(m.group(1))
    return out


def child_pids(pid):
    try:
        return [int(x) for x in Path("/proc/%d/task/%d/children" % (
            pid, pid)).read_text().split()]
    except (OSError, ValueError):
        return []


def timed_run(argv, workdir, name, timeout, env=None, stdout_path=None,
              preexec=None, sample_rss=False):
    """Run argv under /usr/bin/time -v with a deadline.  Returns dict with
    rc, wall_s, rss_kb, user_s, sys_s, timed_out, stderr tail; with
    sample_rss, also rss_samples: [(seconds, VmRSS KiB)] of the measured
    process every 0.2 s (to tell a flat RSS from a growing one)."""
    tfile = workdir / (name + ".time")
    efile = workdir / (name + ".stderr")
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = open(efile, "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([TIME, "-v", "-o", str(tfile)] + argv, stdout=out,
                         stderr=err, cwd=str(workdir), env=env,
                         start_new_session=True, preexec_fn=preexec)
    PROCS.append(p)
    timed_out = False
    samples = []
    deadline = t0 + timeout
    # Popen.wait(timeout) polls with sleeps of up to 50 ms, which made
    # every wall time up to 50 ms long (10 % of a half-second run): a
    # pidfd says at once when the process ended.
    pidfd = os.pidfd_open(p.pid)
    while True:
        try:
            left = max(0.01, deadline - time.monotonic())
            ready, _, _ = select.select(
                [pidfd], [], [], min(0.2, left) if sample_rss else left)
            if not ready:
                raise subprocess.TimeoutExpired(argv, left)
            p.wait()
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                timed_out = True
                stop_proc(p, signal.SIGKILL)
                break
            for c in child_pids(p.pid)[:1]:
                v = proc_status(c).get("VmRSS")
                if v:
                    samples.append((round(time.monotonic() - t0, 2), v))
    wall = time.monotonic() - t0
    os.close(pidfd)
    PROCS.remove(p)
    if stdout_path:
        out.close()
    err.close()
    r = {"rc": p.returncode, "wall_s": wall, "timed_out": timed_out}
    r.update(parse_time_v(tfile))
    r["stderr"] = efile.read_text(errors="replace")[-1500:]
    if sample_rss:
        r["rss_samples"] = samples
    return r


# ------------------------------------------------------------- servers

def make_tls(d):
    """A throw-away CA and a server certificate for localhost and the IP
    SANs 127.0.0.1..127.0.0.250, made with the openssl CLI."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (d / n for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE,
         "check": True, "timeout": 60}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(ca_key), "-out", str(ca),
                    "-days", "3", "-subj", "/CN=gatherd bench CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], **q)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=localhost"], **q)
    sans = ["DNS:localhost"] + ["IP:127.0.0.%d" % i for i in range(1, 251)]
    ext = d / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=" + ",".join(sans) + "\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA",
                    str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                    "-out", str(crt), "-days", "3", "-extfile", str(ext)], **q)
    return ca, crt, key


class Nginx:
    """Private nginx: one worker, no access log, HTTP and HTTPS listeners on
    0.0.0.0 (so each 127.0.0.x is a distinct host), keepalive_requests high."""

    def __init__(self, d, crt, key):
        self.d, self.crt, self.key = d, crt, key
        self.proc = None

    def start(self):
        d = self.d
        www = d / "www"
        www.mkdir(parents=True, exist_ok=True)
        unit = b"<p>gatherd benchmark page: lorem ipsum dolor sit amet.</p>\n"
        body = b"<!doctype html><html><body>\n" + unit * (PAGE_SIZE // len(unit) + 1)
        (www / "page.html").write_bytes(body[:PAGE_SIZE - 15] + b"</body></html>\n")
        assert (www / "page.html").stat().st_size == PAGE_SIZE
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / ("tmp_" + t)).mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        for attempt in range(5):
            self.port, self.tls_port = free_port(), free_port()
            if self.port == self.tls_port:
                continue
            (d / "nginx.conf").write_text("""{user}
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    types {{ text/html html; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    sendfile on;
    tcp_nopush on;
    ssl_session_cache shared:bench:10m;
    ssl_session_tickets on;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 0.0.0.0:{port} backlog=4096;
        server_name _;
        root {d}/www;
    }}
    server {{
        listen 0.0.0.0:{tls_port} ssl backlog=4096;
        server_name _;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        root {d}/www;
    }}
}}
""".format(user=user, d=d, port=self.port, tls_port=self.tls_port,
           crt=self.crt, key=self.key))
            self.proc = start_bg([NGINX, "-p", str(d), "-e",
                                  str(d / "error.log"), "-c",
                                  str(d / "nginx.conf")],
                                 stderr=open(d / "nginx.stderr", "ab"))
            ok = wait_until(lambda: self.proc.poll() is not None or (
                port_open(self.port) and port_open(self.tls_port)), 10)
            if ok and self.proc.poll() is None:
                return self
            stop_proc(self.proc)
        raise RuntimeError("nginx did not start: " + (
            (d / "error.log").read_text(errors="replace")[-2000:]
            if (d / "error.log").exists() else "?"))

    def stop(self):
        stop_proc(self.proc)


class HoldServer:
    def __init__(self, d):
        self.d = d
        self.proc = None

    def start(self):
        self.d.mkdir(parents=True, exist_ok=True)
        pf, self.status_file = self.d / "port", self.d / "status"
        for f in (pf, self.status_file):
            if f.exists():
                f.unlink()
        self.proc = start_bg([PY, str(HERE / "hold_server.py"),
                              "--port-file", str(pf),
                              "--status-file", str(self.status_file)],
                             stderr=open(self.d / "stderr", "ab"),
                             preexec_fn=raise_nofile)
        ok = wait_until(lambda: self.proc.poll() is not None or pf.exists(), 15)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError("hold server did not start: " +
                               (self.d / "stderr").read_text(errors="replace"))
        self.port = int(pf.read_text())
        return self

    def status(self):
        try:
            a, b = self.status_file.read_text().split()
            return int(a), int(b)
        except (FileNotFoundError, ValueError):
            return 0, 0

    def stop(self):
        stop_proc(self.proc)


def make_delay_cert(d, ca, ca_key):
    """The delay server's certificate, signed by the bench CA: a wildcard
    for *.bench.test (the broad crawl's host names) plus localhost and the
    IP SANs 127.0.0.1..127.0.0.10.  ECDSA P-256, as most large sites use,
    so that one server core keeps up with a full handshake per new host.
    Few SANs, like a real site's certificate: clients keep the parsed
    peer certificate with every cached session, so a certificate with
    hundreds of SANs would inflate their memory per host."""
    key, csr, crt, ext = (d / n for n in ("delay.key", "delay.csr",
                                          "delay.pem", "delay.ext"))
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE,
         "check": True, "timeout": 60}
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=bench.test"], **q)
    sans = ["DNS:*.bench.test", "DNS:localhost"] + [
        "IP:127.0.0.%d" % i for i in range(1, 11)]
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=" + ",".join(sans) + "\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA",
                    str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                    "-out", str(crt), "-days", "3", "-extfile", str(ext)], **q)
    return crt, key


def find_delay_server(ctx):
    """tests/bench/delay_server.c built by meson next to gatherd (or in
    build-bench/, build/); else compiled here with cc and pkg-config."""
    src = HERE / "delay_server.c"
    for d in (Path(ctx.gatherd).resolve().parent, REPO / "build-bench",
              REPO / "build"):
        b = d / "delay_server"
        if os.access(b, os.X_OK) and b.stat().st_mtime >= src.stat().st_mtime:
            return str(b)
    out = ctx.work / "delay_server"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                            "libevent_core", "libevent_openssl", "openssl"],
                           capture_output=True, text=True, timeout=30)
    r = subprocess.run(["cc", "-O2", "-o", str(out), str(src)] +
                       flags.stdout.split(), capture_output=True, text=True,
                       timeout=120)
    if flags.returncode != 0 or r.returncode != 0:
        raise RuntimeError("cannot build delay_server: " + flags.stderr +
                           r.stderr[-1000:])
    log("built %s (not found in the build directories)" % out)
    return str(out)


class DelayServer:
    """tests/bench/delay_server: answers after a think time (default
    100 ms, jittered 0.8-1.2x; ?ms= per URL), body ?len= bytes (default
    1000), HTTP and HTTPS listeners on 0.0.0.0."""

    def __init__(self, d, binary, crt, key):
        self.d, self.binary, self.crt, self.key = d, binary, crt, key
        self.proc = None

    def start(self):
        self.d.mkdir(parents=True, exist_ok=True)
        pf, self.stats_file = self.d / "port", self.d / "stats"
        self.proc = start_bg([self.binary, "--listen", "0.0.0.0:0",
                              "--tls-listen", "0.0.0.0:0", "--cert",
                              str(self.crt), "--key", str(self.key),
                              "--port-file", str(pf), "--stats-file",
                              str(self.stats_file)],
                             stderr=open(self.d / "stderr", "ab"),
                             preexec_fn=raise_nofile)
        ok = wait_until(lambda: self.proc.poll() is not None or pf.exists(), 15)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError("delay server did not start: " +
                               (self.d / "stderr").read_text(errors="replace"))
        self.port, self.tls_port = (int(x) for x in pf.read_text().split())
        wait_until(lambda: self.stats() is not None, 3)
        return self

    def stats(self):
        """accepted, open, peak_open, requests, tls_handshakes, resumed."""
        try:
            return [int(x) for x in self.stats_file.read_text().split()]
        except (FileNotFoundError, ValueError):
            return None

    def stop(self):
        stop_proc(self.proc)


class Dnsmasq:
    """A private dnsmasq on port 53 of a loopback address of its own
    (127.53.x.y): glibc's resolv.conf cannot name a port, and peers resolve
    through glibc.  It answers the broad crawl's names from a hosts file
    (each name its own 127.1.x.y address), *.wide.bench.test with
    127.0.0.1, anything else under bench.test with NXDOMAIN, and nothing
    outside it (no upstream).  TTL 300 s, as a real zone would have."""

    def __init__(self, d):
        self.d = d
        self.proc = None

    def start(self, names):
        self.d.mkdir(parents=True, exist_ok=True)
        hosts = self.d / "hosts"
        hosts.write_text("".join("%s %s\n" % (ip, n) for n, ip in names))
        err = ""
        for attempt in range(8):
            self.addr = "127.53.%d.%d" % (os.getpid() % 250 + 1,
                                          (attempt * 37 + 11) % 250 + 1)
            self.proc = start_bg([
                "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                "--bind-interfaces", "--listen-address=" + self.addr,
                "--port=53", "--user=" + (os.environ.get("USER") or "root"),
                "--pid-file=", "--addn-hosts=" + str(hosts),
                "--address=/wide.bench.test/127.0.0.1",
                "--local=/bench.test/", "--local-ttl=300",
                "--cache-size=10000", "--dns-forward-max=10000"],
                stderr=open(self.d / "stderr", "ab"))
            ok = wait_until(lambda: self.proc.poll() is not None or
                            self._answers(), 5)
            if ok and self.proc.poll() is None:
                break
            stop_proc(self.proc)
            err = (self.d / "stderr").read_text(errors="replace")[-500:]
        else:
            raise RuntimeError("dnsmasq did not start: " + err)
        self.resolv = self.d / "resolv.conf"
        self.resolv.write_text("nameserver %s\noptions timeout:2 attempts:2"
                               "\n" % self.addr)
        return self

    def _answers(self):
        try:
            return bool(subprocess.run(
                ["dig", "+short", "+time=1", "+tries=1", "@" + self.addr,
                 "x.wide.bench.test"], capture_output=True, text=True,
                timeout=5).stdout.strip()) if shutil.which("dig") else \
                port_open_udp53(self.addr)
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        stop_proc(self.proc)


def port_open_udp53(addr):
    """A minimal DNS query (A x.wide.bench.test) over UDP: True on any
    answer."""
    q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" +
         b"".join(bytes([len(l)]) + l.encode() for l in
                  "x.wide.bench.test".split(".")) + b"\x00\x00\x01\x00\x01")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(q, (addr, 53))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False


def resolver_wrap(ctx, argv):
    """argv run in a mount namespace of its own where /etc/resolv.conf is
    the private dnsmasq's, so a peer's getaddrinfo() finds the bench
    names; the machine's resolv.conf is untouched."""
    return ctx.ns_prefix + [str(ctx.dns.resolv)] + argv


def check_resolver_wrap(ctx):
    """Find a way to give peers the private resolv.conf: unshare -m as
    root, else unshare -rm (user namespace).  Sets ctx.ns_prefix or
    ctx.ns_problem."""
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    ctx.ns_prefix, ctx.ns_problem = None, None
    for pre in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        argv = pre + ["--", "sh", "-c", script, str(ctx.dns.resolv),
                      "getent", "hosts", "x.wide.bench.test"]
        try:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=15)
        except (OSError, subprocess.TimeoutExpired) as e:
            ctx.ns_problem = str(e)
            continue
        if r.returncode == 0 and "127.0.0.1" in r.stdout:
            ctx.ns_prefix = pre + ["--", "sh", "-c", script]
            return
        ctx.ns_problem = (r.stderr or r.stdout).strip()[-200:]


# ------------------------------------------------------------- URL sets

def urls_for(scheme, port, n, hosts, path="page.html"):
    if hosts == 1:
        return ["%s://127.0.0.1:%d/%s?n=%d" % (scheme, port, path, i)
                for i in range(n)]
    return ["%s://127.0.0.%d:%d/%s?n=%d" % (scheme, i % hosts + 1, port,
                                            path, i) for i in range(n)]


def write_url_files(d, urls):
    d.mkdir(parents=True, exist_ok=True)
    (d / "urls.txt").write_text("\n".join(urls) + "\n")
    with open(d / "curl.cfg", "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    return d / "urls.txt", d / "curl.cfg"


# ------------------------------------------------------------- tools

def gatherd_conf(d, in_flight, per_host, ca=None, extra=None,
                 nameserver=None):
    lines = ["[gatherd]", "queue_file = %s" % (d / "queue"),
             "database = %s" % (d / "gatherd.db"), "log_level = warn",
             "stats_interval_s = 0", "[fetch]",
             "max_in_flight = %d" % in_flight, "max_per_host = %d" % per_host]
    for k, v in (extra or {}).get("fetch", {}).items():
        lines.append("%s = %s" % (k, v))
    for sec, kv in (extra or {}).items():
        if sec != "fetch" and kv:
            lines.append("[%s]" % sec)
            lines.extend("%s = %s" % (k, v) for k, v in kv.items())
    if ca:
        lines += ["[tls]", "ca_file = %s" % ca]
    if nameserver:
        lines += ["[dns]", "nameserver = %s" % nameserver]
    (d / "gatherd.conf").write_text("\n".join(lines) + "\n")
    return d / "gatherd.conf"


def db_counts(db, expect_len=PAGE_SIZE):
    """(all rows, rows done with 200 and the page length, breakdown)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        total = c.execute("select count(*) from results").fetchone()[0]
        good = c.execute("select count(*) from results where state = 'done'"
                         " and status = 200 and length = ?",
                         (expect_len,)).fetchone()[0]
        brk = c.execute("select state, status, length, error, count(*) from"
                        " results group by 1, 2, 3, 4 order by 5 desc"
                        " limit 5").fetchall()
    finally:
        c.close()
    return total, good, brk


def conc(sc, tool):
    """The concurrency a tool gets in a scenario (curl's is capped at 300,
    its maximum)."""
    return sc.get("conc", {}).get(tool, sc["in_flight"])


def expect_len(sc):
    return sc.get("expect_len", PAGE_SIZE)


def run_dir(ctx, sc, tool, tag):
    d = ctx.work / "runs" / ("%s-%s-%s" % (sc["name"], tool, tag))
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


# gatherd's variants, as tools of their own: the configuration each adds.
GATHERD_VARIANTS = {
    "gatherd": {},
    "gatherd-nodigest": {"capture": {"digest": "none"}},
    "gatherd-warc": {"capture": {"warc_dir": "{run}/warc"}},
}


def run_gatherd(ctx, sc, rnd, urls_file, n, tag=None, variant="gatherd"):
    d = run_dir(ctx, sc, variant, tag or rnd)
    shutil.copyfile(urls_file, d / "queue")
    extra = {sec: {k: v.replace("{run}", str(d)) for k, v in kv.items()}
             for sec, kv in GATHERD_VARIANTS[variant].items()}
    if "capture" in extra and "warc_dir" in extra["capture"]:
        Path(extra["capture"]["warc_dir"]).mkdir(exist_ok=True)
    conf = gatherd_conf(d, sc["in_flight"], sc["per_host"],
                        ctx.ca if sc["scheme"] == "https" else None,
                        extra=extra,
                        nameserver=("%s:53" % ctx.dns.addr)
                        if sc.get("names") else None)
    r = timed_run([ctx.gatherd, "-c", str(conf), "--once"], d, "gatherd",
                  ctx.run_timeout(n), preexec=raise_nofile,
                  sample_rss=bool(sc.get("sample_rss")))
    r["urls"] = n
    note = ""
    try:
        total, good, brk = db_counts(d / "gatherd.db", expect_len(sc))
    except sqlite3.Error as e:
        total, good, brk = 0, 0, []
        note = "db: %s" % e
    r["ok"] = (r["rc"] == 0 and not r["timed_out"] and good == n
               and total == n)
    if not r["ok"]:
        note = ("rc=%s timeout=%s recorded %d/%d ok; %s %s %s" % (
            r["rc"], r["timed_out"], good, n, brk, note,
            r["stderr"][-300:].strip()))
    r["note"] = note
    if ctx.keep_runs is False:
        shutil.rmtree(d, ignore_errors=True)
    return r


def run_curl(ctx, sc, rnd, cfg, n):
    d = run_dir(ctx, sc, "curl", rnd)
    argv = ["curl", "-s", "-S", "--parallel", "--parallel-max",
            str(conc(sc, "curl")), "-w", "%{http_code} %{size_download}\\n"]
    if sc["scheme"] == "https":
        argv += ["--cacert", str(ctx.ca)]
    argv += ["-K", str(cfg)]
    if sc.get("names"):
        argv = resolver_wrap(ctx, argv)
    r = timed_run(argv, d, "curl", ctx.run_timeout(n),
                  stdout_path=d / "codes.txt", preexec=raise_nofile)
    lines = (d / "codes.txt").read_text(errors="replace").splitlines()
    good = sum(1 for l in lines if l.strip() == "200 %d" % expect_len(sc))
    r["urls"] = n
    r["ok"] = r["rc"] == 0 and not r["timed_out"] and good == n
    r["note"] = "" if r["ok"] else "rc=%s %d/%d ok; %s" % (
        r["rc"], good, n, r["stderr"][-300:].strip())
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_wrk(ctx, sc, rnd):
    d = run_dir(ctx, sc, "wrk", rnd)
    port = ctx.nginx.tls_port if sc["scheme"] == "https" else ctx.nginx.port
    url = "%s://127.0.0.1:%d/page.html" % (sc["scheme"], port)
    argv = ["wrk", "-t1", "-c%d" % sc["in_flight"], "-d%ds" % ctx.wrk_s, url]
    r = timed_run(argv, d, "wrk", ctx.wrk_s + 60, stdout_path=d / "out.txt")
    text = (d / "out.txt").read_text(errors="replace")
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    m2 = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    serr = re.search(r"Socket errors: (.*)", text)
    rps = float(m.group(1)) if m else None
    r["rps"] = rps
    r["urls"] = int(m2.group(1)) if m2 else None
    r["ok"] = (r["rc"] == 0 and rps is not None and not bad and not
               r["timed_out"])
    r["note"] = "" if r["ok"] else "rc=%s %s %s" % (
        r["rc"], text[-300:].strip(), r["stderr"][-200:])
    if serr and r["ok"]:
        r["note"] = "socket errors: " + serr.group(1)
    shutil.rmtree(d, ignore_errors=True)
    return r


def peer_db_check(db, n, elen):
    """(total, good, errors) of a peer's results(url, status, length,
    error) table."""
    try:
        c = sqlite3.connect(str(db), timeout=30)
        total = c.execute("select count(*) from results").fetchone()[0]
        good = c.execute("select count(*) from results where status = 200 and"
                         " length = ?", (elen,)).fetchone()[0]
        errs = c.execute("select error, status, length, count(*) from results"
                         " where not (status = 200 and length = ?) group by"
                         " 1, 2, 3 limit 5", (elen,)).fetchall()
        c.close()
    except sqlite3.Error as e:
        total, good, errs = 0, 0, [str(e)]
    return total, good, errs


def run_aiohttp(ctx, sc, rnd, urls_file, n):
    d = run_dir(ctx, sc, "aiohttp", rnd)
    argv = [PY, str(HERE / "aiohttp_peer.py"), "--urls", str(urls_file),
            "--db", str(d / "peer.db"), "--concurrency",
            str(conc(sc, "aiohttp"))]
    if sc["per_host"] < sc["in_flight"]:
        argv += ["--limit-per-host", str(sc["per_host"])]
    if sc["scheme"] == "https":
        argv += ["--cafile", str(ctx.ca)]
    if sc.get("names"):
        argv = resolver_wrap(ctx, argv)
    r = timed_run(argv, d, "aiohttp", ctx.run_timeout(n) * 4,
                  preexec=raise_nofile)
    total, good, errs = peer_db_check(d / "peer.db", n, expect_len(sc))
    r["urls"] = n
    r["ok"] = r["rc"] == 0 and not r["timed_out"] and good == n == total
    r["note"] = "" if r["ok"] else "rc=%s %d/%d ok %s; %s" % (
        r["rc"], good, n, errs, r["stderr"][-300:].strip())
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_wget2(ctx, sc, rnd, urls_file, n):
    """GNU wget2: --max-threads=N, keep-alive, bodies to /dev/null; its
    per-URL site statistics (CSV) tell which URLs came back 200 with the
    right size."""
    d = run_dir(ctx, sc, "wget2", rnd)
    argv = ["wget2", "--no-config", "-q", "--no-http2",
            "--max-threads=%d" % conc(sc, "wget2"), "-i", str(urls_file),
            "-O", "/dev/null", "--stats-site=csv:%s" % (d / "site.csv"),
            "--no-hsts", "--no-hpkp", "--no-netrc", "--tries=3",
            "--timeout=120"]
    if sc["scheme"] == "https":
        argv += ["--ca-certificate=%s" % ctx.ca]
    if sc.get("names"):
        argv = resolver_wrap(ctx, argv)
    r = timed_run(argv, d, "wget2", ctx.run_timeout(n) * 2,
                  preexec=raise_nofile)
    good, seen, bad = 0, 0, {}
    try:
        with open(d / "site.csv", newline="") as f:
            for row in csv.DictReader(f):
                seen += 1
                k = (row.get("Status"), row.get("Size"))
                if k == ("200", str(expect_len(sc))):
                    good += 1
                else:
                    bad[k] = bad.get(k, 0) + 1
    except OSError:
        pass
    r["urls"] = n
    r["ok"] = r["rc"] == 0 and not r["timed_out"] and good == n == seen
    r["note"] = "" if r["ok"] else "rc=%s %d/%d ok (%d rows) %s; %s" % (
        r["rc"], good, n, seen, sorted(bad.items())[:4],
        r["stderr"][-300:].strip())
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_scrapy(ctx, sc, rnd, urls_file, n):
    d = run_dir(ctx, sc, "scrapy", rnd)
    argv = [PY, str(HERE / "scrapy_peer.py"), "--urls", str(urls_file),
            "--db", str(d / "peer.db"), "--concurrency",
            str(conc(sc, "scrapy")), "--per-host", str(sc["per_host"])]
    if sc.get("names"):
        argv = resolver_wrap(ctx, argv)
    r = timed_run(argv, d, "scrapy", ctx.run_timeout(n) * 4,
                  preexec=raise_nofile)
    total, good, errs = peer_db_check(d / "peer.db", n, expect_len(sc))
    r["urls"] = n
    r["ok"] = r["rc"] == 0 and not r["timed_out"] and good == n == total
    r["note"] = "" if r["ok"] else "rc=%s %d/%d ok %s; %s" % (
        r["rc"], good, n, errs, r["stderr"][-300:].strip())
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_crawlee(ctx, sc, rnd, urls_file, n):
    d = run_dir(ctx, sc, "crawlee", rnd)
    env = dict(os.environ, CRAWLEE_LOG_LEVEL="WARNING")
    if sc["scheme"] == "https":
        env["NODE_EXTRA_CA_CERTS"] = str(ctx.ca)
    argv = ["node", str(HERE / "crawlee" / "crawlee_peer.mjs"), "--urls",
            str(urls_file), "--storage", str(d / "storage"), "--concurrency",
            str(conc(sc, "crawlee"))]
    if sc.get("names"):
        argv = resolver_wrap(ctx, argv)
    r = timed_run(argv, d, "crawlee", ctx.run_timeout(n) * 6, env=env,
                  preexec=raise_nofile)
    good, seen, bad = 0, 0, {}
    for f in (d / "storage" / "datasets" / "default").glob("*.json"):
        try:
            item = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        seen += 1
        k = (item.get("status"), item.get("length"))
        if k == (200, expect_len(sc)):
            good += 1
        else:
            bad[str(k)] = bad.get(str(k), 0) + 1
    r["urls"] = n
    r["ok"] = r["rc"] == 0 and not r["timed_out"] and good == n == seen
    r["note"] = "" if r["ok"] else "rc=%s %d/%d ok (%d items) %s; %s" % (
        r["rc"], good, n, seen, sorted(bad.items())[:4],
        r["stderr"][-300:].strip())
    shutil.rmtree(d, ignore_errors=True)
    return r


def setup_crawlee(ctx):
    """npm ci (the pinned package-lock.json) into tests/bench/crawlee when
    node and npm exist; sets ctx.crawlee_problem when Crawlee cannot run."""
    ctx.crawlee_problem = None
    if not (shutil.which("node") and shutil.which("npm")):
        ctx.crawlee_problem = "node/npm not installed"
        return
    cd = HERE / "crawlee"
    mark = cd / "node_modules" / "@crawlee" / "http" / "package.json"
    if not mark.exists() or mark.stat().st_mtime < (
            cd / "package-lock.json").stat().st_mtime:
        log("npm ci in %s" % cd)
        try:
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund",
                                "--loglevel=error"], cwd=str(cd),
                               capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            ctx.crawlee_problem = "npm ci timed out"
            return
        if r.returncode != 0:
            ctx.crawlee_problem = "npm ci failed: " + (
                r.stderr or r.stdout).strip()[-200:]
            return
    try:
        r = subprocess.run(["node", "-e", "import('@crawlee/http').then(()=>"
                            "console.log('ok'))"], cwd=str(cd),
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        r = None
    if r is None or r.stdout.strip() != "ok":
        ctx.crawlee_problem = "@crawlee/http does not load: " + (
            r.stderr.strip()[-200:] if r else "timeout")


# ------------------------------------------------------------- scenarios

def summarize(runs):
    ok = [r for r in runs if r["ok"]]
    def med(key):
        v = [r[key] for r in ok if r.get(key) is not None]
        return statistics.median(v) if v else None
    return {"runs": len(runs), "ok": len(ok), "urls_per_s": med("rps"),
            "rss_kb": med("rss_kb"),
            "cpu_s": (statistics.median([r["user_s"] + r["sys_s"] for r in ok
                                         if r.get("user_s") is not None])
                      if ok else None),
            "wall_s": med("wall_s"),
            "notes": [r["note"] for r in runs if r.get("note")]}


FRAMEWORKS = ("scrapy", "crawlee")


def throughput_scenario(ctx, sc):
    """Every tool of sc["tools"] on the same URLs (the frameworks on the
    first sc["fw_n"] of them), in alternation, sc["rounds"] rounds."""
    if "urls" in sc:
        urls = sc.pop("urls")
    else:
        port = ctx.nginx.tls_port if sc["scheme"] == "https" else \
            ctx.nginx.port
        urls = urls_for(sc["scheme"], port, sc.get("n", ctx.n), sc["hosts"])
    n = len(urls)
    urls_file, cfg = write_url_files(ctx.work / "urls" / sc["name"], urls)
    fw_n = min(n, sc.get("fw_n", 5000))
    fw_file = ctx.work / "urls" / sc["name"] / "urls_fw.txt"
    fw_file.write_text("\n".join(urls[:fw_n]) + "\n")
    del urls
    tools, skipped = [], {}
    for t in sc["tools"]:
        why = tool_problem(ctx, sc, t)
        if why:
            skipped[t] = why
            log("%-15s skipping %s: %s" % (sc["name"], t, why))
        else:
            tools.append(t)
    runs = {t: [] for t in tools}
    ds0 = ctx.delay.stats() if sc.get("server") == "delay" else None
    for rnd in range(sc.get("rounds", ctx.rounds)):
        order = tools[rnd % len(tools):] + tools[:rnd % len(tools)]
        for t in order:
            if t in GATHERD_VARIANTS:
                r = run_gatherd(ctx, sc, rnd, urls_file, n, variant=t)
            elif t == "curl":
                r = run_curl(ctx, sc, rnd, cfg, n)
            elif t == "wrk":
                r = run_wrk(ctx, sc, rnd)
            elif t == "aiohttp":
                r = run_aiohttp(ctx, sc, rnd, urls_file, n)
            elif t == "wget2":
                r = run_wget2(ctx, sc, rnd, urls_file, n)
            elif t == "scrapy":
                r = run_scrapy(ctx, sc, rnd, fw_file, fw_n)
            else:
                r = run_crawlee(ctx, sc, rnd, fw_file, fw_n)
            if t != "wrk":
                r["rps"] = r["urls"] / r["wall_s"] if r["ok"] else None
            r.pop("stderr", None)
            runs[t].append(r)
            log("%-15s round %d %-8s %s %s  rss %s KiB  cpu %s s  %s" % (
                sc["name"], rnd + 1, t, "ok  " if r["ok"] else "FAIL",
                "%.0f URLs/s" % r["rps"] if r.get("rps") else "-",
                int(r["rss_kb"]) if r.get("rss_kb") else "-",
                fmt((r["user_s"] or 0) + (r["sys_s"] or 0)
                    if r.get("user_s") is not None else None, "%.2f"),
                r["note"][:300]))
    out = {t: dict(summarize(runs[t]), raw=runs[t], conc=conc(sc, t))
           for t in tools}
    for t, why in skipped.items():
        out[t] = {"runs": 0, "ok": 0, "urls_per_s": None, "rss_kb": None,
                  "cpu_s": None, "wall_s": None, "notes": ["skipped: " + why],
                  "raw": [], "conc": conc(sc, t), "skipped": why}
    for t, s in out.items():
        s["urls"] = fw_n if t in FRAMEWORKS else n
        if t == "wrk":
            v = [r["urls"] for r in s["raw"] if r["ok"] and r.get("urls")]
            s["urls"] = statistics.median(v) if v else None
        # Little's law: at most conc requests each taking think_s.
        s["bound"] = conc(sc, t) / sc["think_s"] if sc.get("think_s") \
            else None
        s["of_bound"] = (s["urls_per_s"] / s["bound"]) if (
            s["bound"] and s["urls_per_s"]) else None
        if t == "gatherd" and sc.get("sample_rss"):
            s["rss_flat"] = rss_flatness(s["raw"])
    # Ratios within each round (runs next to each other in time share the
    # machine's state more than runs of different rounds do).
    for t in tools:
        if t == "gatherd" or "gatherd" not in runs:
            continue
        rr = [g["rps"] / o["rps"] for g, o in zip(runs["gatherd"], runs[t])
              if g["ok"] and o["ok"] and g.get("rps") and o.get("rps")]
        out[t]["round_ratios"] = rr
        out[t]["ratio_round_median"] = statistics.median(rr) if rr else None
    meta = {"urls": n, "in_flight": sc["in_flight"],
            "per_host": sc["per_host"], "think_s": sc.get("think_s"),
            "hosts": sc.get("hosts"), "server": sc.get("server", "nginx"),
            "scheme": sc["scheme"], "fw_urls": fw_n}
    if ds0 is not None:
        time.sleep(1.1)             # the stats file is rewritten every 1 s
        ds1 = ctx.delay.stats()
        if ds1:
            meta["delay_server"] = dict(zip(
                ("accepted", "open", "peak_open", "requests",
                 "tls_handshakes", "tls_resumed"),
                [b - a for a, b in zip(ds0, ds1)]))
            meta["delay_server"]["peak_open_ever"] = ds1[2]
    out["_meta"] = meta
    return out


def rss_flatness(raw):
    """How much gatherd's RSS grows after the in-flight set is full: the
    highest sample of the last quarter of the run over the highest of the
    first quarter (the in-flight connections are all open well within it:
    1,000 connect in a fraction of a second), worst over the successful
    runs.  1.0 means flat; memory that grows with the hosts seen (a
    broad crawl reaches new hosts until its end) shows as > 1."""
    worst = None
    for r in raw:
        s = r.get("rss_samples") or []
        if not r["ok"] or len(s) < 8:
            continue
        end = s[-1][0]
        q1 = [v for ts, v in s if ts < end * 0.25]
        q4 = [v for ts, v in s if ts >= end * 0.75]
        if q1 and q4:
            f = max(q4) / max(q1)
            worst = f if worst is None else max(worst, f)
    return worst


def tool_problem(ctx, sc, t):
    """Why tool t cannot run in scenario sc here (None if it can)."""
    if sc.get("names") and t not in GATHERD_VARIANTS and \
            ctx.ns_prefix is None:
        return "no private resolv.conf for peers (%s)" % ctx.ns_problem
    if t == "wget2" and not shutil.which("wget2"):
        return "wget2 not installed"
    if t == "scrapy" and subprocess.run(
            [PY, "-c", "import scrapy"], capture_output=True).returncode:
        return "python3-scrapy not installed"
    if t == "crawlee":
        if getattr(ctx, "crawlee_problem", "not set up"):
            return getattr(ctx, "crawlee_problem", None) or "not set up"
    if t == "aiohttp" and subprocess.run(
            [PY, "-c", "import aiohttp"], capture_output=True).returncode:
        return "python3-aiohttp not installed"
    return None


def memory_scenario(ctx):
    """gatherd --once peak RSS with 100,000 vs 1,000,000 URLs queued."""
    sc = {"name": "memory", "scheme": "http", "hosts": 1, "in_flight": 64,
          "per_host": 64}
    out = {}
    for n in (100000, 1000000):
        urls = urls_for("http", ctx.nginx.port, n, 1)
        d = ctx.work / "urls" / ("mem-%d" % n)
        d.mkdir(parents=True, exist_ok=True)
        (d / "urls.txt").write_text("\n".join(urls) + "\n")
        del urls
        r = run_gatherd(ctx, sc, 0, d / "urls.txt", n, tag=str(n))
        r["rps"] = n / r["wall_s"] if r["ok"] else None
        r.pop("stderr", None)
        (d / "urls.txt").unlink()
        out[n] = dict(summarize([r]), raw=[r])
        log("memory %7d URLs: %s rss %s KiB  %.1f s  %s" % (
            n, "ok" if r["ok"] else "FAIL", r.get("rss_kb"), r["wall_s"],
            r["note"][:300]))
    return out


def proc_status(pid):
    v = {}
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                v[k] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return v


def proc_cpu_s(pid):
    """user + system CPU seconds of a process (all threads) so far."""
    try:
        f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def tcp_mem_pages():
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                f = line.split()
                return int(f[f.index("mem") + 1])
    except (OSError, ValueError):
        pass
    return None


def db_count_urls(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return c.execute("select count(*) from urls").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return -1


def stop_daemon(p):
    """SIGTERM, then a second SIGTERM (aborts in-flight fetches), then KILL."""
    if p.poll() is not None:
        return
    for _ in range(2):
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if wait_until(lambda: p.poll() is not None, 0.5):
            return
    if not wait_until(lambda: p.poll() is not None, 15):
        stop_proc(p, signal.SIGKILL)


def per_connection_scenario(ctx, n_conn, n_hosts=100):
    """RSS of one gatherd idle, then with n_conn requests held in flight by
    the hold server; (RSS_active - RSS_idle) / n_conn."""
    d = ctx.work / "runs" / "perconn"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "queue").write_text("")
    conf = gatherd_conf(d, n_conn, n_conn, extra={"fetch": {
        "connect_timeout_ms": 600000, "idle_timeout_ms": 3600000,
        "request_timeout_ms": 86400000, "retries": 0,
        # The hold server answers nothing, robots.txt included.
        "robots": "false"}})
    res = {"in_flight": n_conn, "hosts": n_hosts, "ok": False, "note": ""}
    p = start_bg([ctx.gatherd, "-c", str(conf)],
                 stderr=open(d / "gatherd.stderr", "wb"),
                 preexec_fn=raise_nofile)
    try:
        if not wait_until(lambda: p.poll() is not None or
                          db_count_urls(d / "gatherd.db") == 0, 20) or \
                p.poll() is not None:
            res["note"] = "gatherd did not start: " + (
                d / "gatherd.stderr").read_text(errors="replace")[-500:]
            return res
        time.sleep(1.0)
        idle = proc_status(p.pid)
        tcp0 = tcp_mem_pages()
        urls = ["http://127.0.0.%d:%d/hold?n=%d" % (i % n_hosts + 1,
                                                      ctx.hold.port, i)
                for i in range(n_conn)]
        with open(d / "queue", "a") as f:
            f.write("\n".join(urls) + "\n")
        t0 = time.monotonic()
        reached = wait_until(lambda: p.poll() is not None or
                             ctx.hold.status()[1] >= n_conn, 90, 0.1)
        if p.poll() is not None or not reached:
            res["note"] = "only %d of %d requests held (gatherd %s): %s" % (
                ctx.hold.status()[1], n_conn,
                "exited" if p.poll() is not None else "running",
                (d / "gatherd.stderr").read_text(errors="replace")[-500:])
            return res
        res["ramp_s"] = time.monotonic() - t0
        time.sleep(1.5)
        samples = []
        for _ in range(5):
            samples.append(proc_status(p.pid))
            time.sleep(0.2)
        held = ctx.hold.status()[1]
        act = {k: max(s.get(k, 0) for s in samples) for k in ("VmRSS", "RssAnon")}
        res.update({
            "ok": held >= n_conn,
            "held": held,
            "fds": len(os.listdir("/proc/%d/fd" % p.pid)),
            "idle_rss_kb": idle.get("VmRSS"), "idle_anon_kb": idle.get("RssAnon"),
            "active_rss_kb": act["VmRSS"], "active_anon_kb": act["RssAnon"],
            "per_conn_rss_bytes": (act["VmRSS"] - idle["VmRSS"]) * 1024 / n_conn,
            "per_conn_anon_bytes": (act["RssAnon"] - idle["RssAnon"]) * 1024 / n_conn,
        })
        tcp1 = tcp_mem_pages()
        if tcp0 is not None and tcp1 is not None:
            res["kernel_tcp_mem_bytes_per_conn"] = max(
                0.0, (tcp1 - tcp0) * 4096 / n_conn)
        return res
    finally:
        stop_daemon(p)
        if p in PROCS:
            PROCS.remove(p)
        shutil.rmtree(d, ignore_errors=True)


def ingestion_scenario(ctx, n_lines, attach=None):
    """A running gatherd (daemon mode) whose fetching is throttled (URLs to
    the hold server, max_in_flight 1): append n_lines in one write and time
    until `select count(*) from urls` covers them."""
    d = ctx.work / "runs" / "ingest"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "queue").write_text("")
    conf = gatherd_conf(d, 1, 1, extra={"fetch": {
        "idle_timeout_ms": 3600000, "request_timeout_ms": 86400000,
        "retries": 0, "robots": "false"}})
    res = {"lines": n_lines, "ok": False, "note": ""}
    p = start_bg([ctx.gatherd, "-c", str(conf)],
                 stderr=open(d / "gatherd.stderr", "wb"))
    db = d / "gatherd.db"
    try:
        base = "http://127.0.0.1:%d/hold?n=" % ctx.hold.port
        with open(d / "queue", "a") as f:
            f.write(base + "warmup\n")
        if not wait_until(lambda: p.poll() is not None or
                          db_count_urls(db) == 1, 20) or p.poll() is not None:
            res["note"] = "gatherd did not take the first line: " + (
                d / "gatherd.stderr").read_text(errors="replace")[-500:]
            return res
        rss0 = proc_status(p.pid).get("VmRSS")
        detach = attach(p.pid) if attach else None
        cpu0 = proc_cpu_s(p.pid)
        data = "".join("%s%d\n" % (base, i) for i in range(n_lines)).encode()
        want = n_lines + 1
        t0 = time.monotonic()
        with open(d / "queue", "ab") as f:
            f.write(data)
        t_append = time.monotonic() - t0
        del data
        last = [0]
        peak = [0]
        # Poll with one read-only connection and max(id) (a B-tree
        # lookup): rows are inserted in file order, so max(id) reaching the
        # last line means every earlier line is committed too.  A count(*)
        # every 50 ms over a million rows would itself load the machine.
        rd = [None]

        def done():
            peak[0] = max(peak[0], proc_status(p.pid).get("VmRSS", 0))
            try:
                if rd[0] is None:
                    rd[0] = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                                            timeout=5)
                last[0] = rd[0].execute("select max(id) from urls"
                                        ).fetchone()[0] or 0
            except sqlite3.Error:
                last[0] = -1
            return p.poll() is not None or last[0] >= want
        wait_until(done, 120, 0.05)
        t_seen = time.monotonic() - t0
        cpu1 = proc_cpu_s(p.pid)
        if detach:
            detach()
        if rd[0] is not None:
            rd[0].close()
        last[0] = db_count_urls(db)     # confirm: select count(*) from urls
        el = t_seen
        res.update({"ok": last[0] == want, "seconds": el,
                    "append_s": t_append, "rows": last[0] - 1,
                    "lines_per_s": (n_lines / el) if last[0] >= want else None,
                    "rss_before_kb": rss0, "rss_peak_kb": peak[0],
                    "cpu_s": (cpu1 - cpu0) if cpu0 is not None and
                    cpu1 is not None else None})
        if not res["ok"]:
            res["note"] = "%d of %d rows after %.0f s (gatherd %s)" % (
                last[0] - 1, n_lines, el,
                "exited" if p.poll() is not None else "running")
        return res
    finally:
        stop_daemon(p)
        if p in PROCS:
            PROCS.remove(p)
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------- reporting

TARGETS = [
    # (scenario, peer, min ratio gatherd/peer)
    ("http-1host", "curl", 2.0), ("http-1host", "wrk", 0.8),
    ("http-1host", "aiohttp", 10.0), ("http-250hosts", "curl", 2.0),
    ("https-1host", "curl", 1.5), ("https-250hosts", "curl", 1.5),
    ("latency-1host", "aiohttp", 2.5), ("broad-crawl", "aiohttp", 3.0),
    ("broad-crawl-https", "aiohttp", 3.0),
]
# (scenario, least fraction of the Little's-law bound)
BOUND_TARGETS = [("latency-1host", 0.9), ("broad-crawl", 0.9),
                 ("broad-crawl-https", 0.75), ("high-concurrency", 0.9),
                 ("high-concurrency-https", 0.9)]
# (scenario, most peak RSS in MB)
RSS_TARGETS = [("broad-crawl", 48), ("broad-crawl-https", 48),
               ("high-concurrency", 64), ("high-concurrency-https", 64)]
TOOL_ORDER = ["gatherd", "gatherd-nodigest", "gatherd-warc", "curl", "wrk",
              "aiohttp", "wget2", "scrapy", "crawlee"]


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def cpu_per_url(s):
    """CPU microseconds per URL (wrk: per request of its median run)."""
    if not s.get("cpu_s") or not s.get("urls"):
        return None
    return s["cpu_s"] * 1e6 / s["urls"]


def report(ctx, results):
    rows = []
    lines = []
    row_fmt = "%-22s %-16s %5s %6s %8s %7s %6s %7s %8s %7s %7s %8s %5s  %s"
    hdr = row_fmt % (
        "scenario", "tool", "conc", "URLs", "URLs/s", "bound", "/bound",
        "gd/tool", "gd/tool*", "RSS_MB", "CPU_s", "CPUus/URL", "ok", "note")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    thr = results.get("throughput", {})
    for sname, tools in thr.items():
        g = tools.get("gatherd", {}).get("urls_per_s")
        for t, s in sorted(((k, v) for k, v in tools.items()
                            if not k.startswith("_")),
                           key=lambda kv: TOOL_ORDER.index(kv[0])
                           if kv[0] in TOOL_ORDER else 99):
            ratio = (g / s["urls_per_s"]) if (g and s["urls_per_s"] and
                                              t != "gatherd") else None
            s["ratio_gatherd_to_tool"] = ratio
            note = "; ".join(n for n in s["notes"] if n)[:110]
            if s.get("rss_flat") is not None:
                note = ("RSS late/early %.2f; " % s["rss_flat"]) + note
            per = cpu_per_url(s)
            lines.append(row_fmt % (
                sname, t, fmt(s.get("conc")), fmt(s.get("urls")),
                fmt(s["urls_per_s"]), fmt(s.get("bound")),
                fmt(s.get("of_bound"), "%.2f"), fmt(ratio, "%.2fx"),
                fmt(s.get("ratio_round_median"), "%.2fx"),
                fmt(s["rss_kb"] / 1024 if s["rss_kb"] else None, "%.1f"),
                fmt(s["cpu_s"], "%.2f"), fmt(per, "%.1f" if per and per < 100
                                             else "%.0f"),
                "%d/%d" % (s["ok"], s["runs"]), note))
            rows.append({"scenario": sname, "tool": t,
                         "concurrency": s.get("conc"), "urls": s.get("urls"),
                         "urls_per_s": s["urls_per_s"],
                         "bound_urls_per_s": s.get("bound"),
                         "fraction_of_bound": s.get("of_bound"),
                         "cpu_us_per_url": per,
                         "ratio_gatherd_to_tool": ratio,
                         "ratio_round_median": s.get("ratio_round_median"),
                         "peak_rss_kb": s["rss_kb"], "cpu_s": s["cpu_s"],
                         "runs_ok": s["ok"], "runs": s["runs"]})
        meta = tools.get("_meta", {})
        if meta.get("delay_server"):
            ds = meta["delay_server"]
            lines.append("%-22s %-8s delay server: %d requests, %d "
                         "connections accepted (peak %d open), %d TLS "
                         "handshakes (%d resumed)" % (
                             "", "", ds["requests"], ds["accepted"],
                             ds["peak_open_ever"], ds["tls_handshakes"],
                             ds["tls_resumed"]))
    mem = results.get("memory")
    if mem:
        for n, s in mem.items():
            lines.append(row_fmt % (
                "memory-%dk" % (n // 1000), "gatherd", "64", fmt(n),
                fmt(s["urls_per_s"]), "-", "-", "-", "-",
                fmt(s["rss_kb"] / 1024 if s["rss_kb"] else None, "%.1f"),
                fmt(s["cpu_s"], "%.2f"),
                fmt(s["cpu_s"] * 1e6 / n if s["cpu_s"] else None, "%.0f"),
                "%d/%d" % (s["ok"], s["runs"]),
                "; ".join(s["notes"])[:120]))
            rows.append({"scenario": "memory-%d" % n, "tool": "gatherd",
                         "urls_per_s": s["urls_per_s"],
                         "ratio_gatherd_to_tool": None,
                         "peak_rss_kb": s["rss_kb"], "cpu_s": s["cpu_s"],
                         "runs_ok": s["ok"], "runs": s["runs"]})
    pc = results.get("per_connection")
    if pc:
        lines.append("%-22s %-8s %s" % (
            "per-conn-%d" % pc["in_flight"], "gatherd",
            ("idle %s KiB -> %s KiB RSS (anon %s -> %s): %.0f B/conn RSS, "
             "%.0f B/conn anon; kernel TCP mem %s B/conn (not in RSS); %s fds"
             % (pc["idle_rss_kb"], pc["active_rss_kb"], pc["idle_anon_kb"],
                pc["active_anon_kb"], pc["per_conn_rss_bytes"],
                pc["per_conn_anon_bytes"],
                fmt(pc.get("kernel_tcp_mem_bytes_per_conn")), pc["fds"]))
            if pc["ok"] else "FAILED: " + pc["note"][:200]))
        rows.append({"scenario": "per-conn-%d" % pc["in_flight"],
                     "tool": "gatherd", "urls_per_s": None,
                     "ratio_gatherd_to_tool": None,
                     "peak_rss_kb": pc.get("active_rss_kb"), "cpu_s": None,
                     "runs_ok": int(pc["ok"]), "runs": 1,
                     "bytes_per_conn": pc.get("per_conn_rss_bytes")})
    ing = results.get("ingestion")
    if ing:
        lines.append("%-22s %-8s %s" % (
            "ingestion-%dk" % (ing["lines"] // 1000), "gatherd",
            ("%d lines in SQLite %.2f s after the append (%.0f lines/s; "
             "gatherd CPU %s s; append took %.2f s; RSS %s -> peak %s KiB)"
             % (ing["rows"], ing["seconds"], ing["lines_per_s"],
                fmt(ing.get("cpu_s"), "%.2f"), ing["append_s"],
                ing["rss_before_kb"], ing["rss_peak_kb"]))
            if ing["ok"] else "FAILED: " + ing["note"][:200]))
        rows.append({"scenario": "ingestion-%d" % ing["lines"],
                     "tool": "gatherd", "urls_per_s": ing.get("lines_per_s"),
                     "ratio_gatherd_to_tool": None,
                     "peak_rss_kb": ing.get("rss_peak_kb"), "cpu_s": None,
                     "runs_ok": int(ing["ok"]), "runs": 1,
                     "seconds": ing.get("seconds")})

    # Targets.
    tl = []
    def verdict(ok):
        return "n/a " if ok is None else ("MET " if ok else "MISS")
    def get(sname, tool):
        return thr.get(sname, {}).get(tool)
    for sname, peer, want in TARGETS:
        s = get(sname, peer)
        if sname not in thr:
            continue
        r = s.get("ratio_gatherd_to_tool") if s else None
        tl.append("%s %-22s gatherd/%-7s = %s (target >= %.1fx)" % (
            verdict(None if r is None else r >= want), sname, peer,
            fmt(r, "%.2fx"), want))
    # Keeping pages (issue 11): digest on >= 0.9x off; WARC >= 0.7x
    # without, and its RSS no higher than curl's.
    g, nd = get("http-1host-digest", "gatherd"), \
        get("http-1host-digest", "gatherd-nodigest")
    if g and nd:
        r = (g["urls_per_s"] / nd["urls_per_s"]
             if g.get("urls_per_s") and nd.get("urls_per_s") else None)
        tl.append("%s %-22s digest on/off = %s (target >= 0.90)" % (
            verdict(None if r is None else r >= 0.9), "http-1host-digest",
            fmt(r, "%.2f")))
    g, w, c = (get("http-1host-warc", t)
               for t in ("gatherd", "gatherd-warc", "curl"))
    if g and w:
        r = (w["urls_per_s"] / g["urls_per_s"]
             if g.get("urls_per_s") and w.get("urls_per_s") else None)
        tl.append("%s %-22s WARC on/off = %s (target >= 0.70)" % (
            verdict(None if r is None else r >= 0.7), "http-1host-warc",
            fmt(r, "%.2f")))
        if c and w.get("rss_kb") and c.get("rss_kb"):
            tl.append("%s %-22s WARC peak RSS %s MB vs curl %s MB (target "
                      "<= curl)" % (verdict(w["rss_kb"] <= c["rss_kb"]),
                                    "http-1host-warc",
                                    fmt(w["rss_kb"] / 1024, "%.1f"),
                                    fmt(c["rss_kb"] / 1024, "%.1f")))
    for sname, want in BOUND_TARGETS:
        s = get(sname, "gatherd")
        if s is None:
            continue
        v = s.get("of_bound")
        tl.append("%s %-22s gatherd %s URLs/s = %s of the bound %s "
                  "(target >= %.2f)" % (
                      verdict(None if v is None else v >= want), sname,
                      fmt(s["urls_per_s"]), fmt(v, "%.2f"),
                      fmt(s.get("bound")), want))
    for sname, mb in RSS_TARGETS:
        s = get(sname, "gatherd")
        if s is None:
            continue
        v = s["rss_kb"] / 1024 if s.get("rss_kb") else None
        fl = s.get("rss_flat")
        ok = None if v is None else v < mb
        extra = ""
        if sname.startswith("broad-crawl"):
            extra = ", flat: last-quarter/first-quarter RSS %s " \
                    "(target <= 1.10)" % fmt(fl, "%.2f")
            if ok is not None and fl is not None:
                ok = ok and fl <= 1.10
        tl.append("%s %-22s gatherd peak RSS %s MB (target < %d MB%s)" % (
            verdict(ok), sname, fmt(v, "%.1f"), mb, extra))
    s, a = get("latency-1host", "gatherd"), get("latency-1host", "aiohttp")
    if s and a:
        g, p = cpu_per_url(s), cpu_per_url(a)
        tl.append("%s %-22s CPU/URL gatherd %s us vs aiohttp %s us = 1/%s "
                  "(target <= 1/10)" % (
                      verdict(None if not (g and p) else g * 10 <= p),
                      "latency-1host", fmt(g, "%.1f"), fmt(p, "%.1f"),
                      fmt(p / g if g and p else None, "%.1f")))
    w5, w2 = get("wide-crawl", "gatherd"), get("wide-crawl-250", "gatherd")
    if w5 or w2:
        a, b = cpu_per_url(w5 or {}), cpu_per_url(w2 or {})
        tl.append("%s %-22s CPU/URL at 50,000 hosts %s us vs %s us at 250 "
                  "hosts = %s (target <= 2.0x)" % (
                      verdict(None if not (a and b) else a <= 2 * b),
                      "wide-crawl", fmt(a, "%.1f"), fmt(b, "%.1f"),
                      fmt(a / b if a and b else None, "%.2fx")))
    for sname, tools in thr.items():
        s, w = tools.get("gatherd"), tools.get("wget2")
        if not s or not w:
            continue
        r = w.get("ratio_gatherd_to_tool")
        gc, wc = cpu_per_url(s), cpu_per_url(w)
        gm, wm = s.get("rss_kb"), w.get("rss_kb")
        ok = None
        if r is not None and gc and wc and gm and wm:
            ok = r >= 1.5 and gc < wc and gm < wm
        tl.append("%s %-22s gatherd/wget2 = %s (target >= 1.5x), CPU/URL "
                  "%s vs %s us, RSS %s vs %s MB (target: less)" % (
                      verdict(ok), sname, fmt(r, "%.2fx"), fmt(gc, "%.1f"),
                      fmt(wc, "%.1f"), fmt(gm and gm / 1024, "%.1f"),
                      fmt(wm and wm / 1024, "%.1f")))
    cp = thr.get("cpu-per-url") or thr.get("http-1host") or {}
    cname = "cpu-per-url" if "cpu-per-url" in thr else "http-1host"
    if cp.get("gatherd"):
        g, w = cp["gatherd"], cp.get("wrk") or {}
        gc, wc = cpu_per_url(g), cpu_per_url(w)
        tl.append("%s %-22s CPU per URL <= 18 us: gatherd %s us (user+sys, "
                  "both threads); wrk %s us per request" % (
                      verdict(None if gc is None else gc <= 18.0), cname,
                      fmt(gc, "%.1f"), fmt(wc, "%.1f")))
        rr = w.get("ratio_round_median")
        tl.append("%s %-22s median per-round gatherd/wrk >= 0.95: %s "
                  "(rounds: %s)" % (
                      verdict(None if rr is None else rr >= 0.95), cname,
                      fmt(rr, "%.2f"), ", ".join(
                          "%.2f" % x for x in w.get("round_ratios", []))))
    h1 = thr.get("http-1host", {})
    if "gatherd" in h1 and "curl" in h1:
        g, c = h1["gatherd"]["rss_kb"], h1["curl"]["rss_kb"]
        tl.append("%s http-1host             peak RSS gatherd %s MB vs curl "
                  "%s MB (target <=)" % (
                      verdict(None if not (g and c) else g <= c),
                      fmt(g and g / 1024, "%.1f"), fmt(c and c / 1024,
                                                        "%.1f")))
    if mem and all(mem[n]["rss_kb"] for n in mem):
        a, b = mem[100000]["rss_kb"], mem[1000000]["rss_kb"]
        tl.append("%s memory         peak RSS 1M/100k = %.3f (%s vs %s KiB; "
                  "target <= 1.10)" % (verdict(b <= 1.10 * a), b / a, b, a))
    elif mem:
        tl.append("n/a  memory         a run failed")
    if pc:
        v = pc.get("per_conn_rss_bytes") if pc["ok"] else None
        tl.append("%s per-connection %s B RSS/conn at %d in flight "
                  "(target < 8192)" % (verdict(None if v is None else v < 8192),
                                       fmt(v), pc["in_flight"]))
    if ing:
        v = ing.get("seconds") if ing["ok"] else None
        tl.append("%s ingestion      %s s for %d lines (target: a few "
                  "seconds, taken as <= 5 s)" % (
                      verdict(None if v is None else v <= 5.0),
                      fmt(v, "%.2f"), ing["lines"]))
    results["targets"] = tl

    lines.append("conc = the tool's concurrency (curl: --parallel-max, at "
                 "most 300); bound = conc / mean think time (Little's law; "
                 "only for the delay server); /bound = URLs/s over it")
    lines.append("scrapy and crawlee run the first %s URLs of a scenario "
                 "(their URLs column); everyone else all of them" % "5,000")
    lines.append("gd/tool = median URLs/s over median URLs/s (the verdicts "
                 "below); gd/tool* = median of the per-round ratios")
    la = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines.append(("loadavg now (report rebuilt): " if ctx.rebuilt else
                  "loadavg at end: ") + la)
    if max(float(x) for x in la.split()) > 2.5 or ctx.busy_at_start:
        lines.append("WARNING: the machine was busy with other work "
                     "(loadavg > 1 besides this benchmark): rates and ratios "
                     "are noisy; CPUus/URL is the steadier figure")
    if getattr(ctx, "quick", False):
        lines.append("QUICK MODE: %d URLs (latency-1host: 2,000 at 200 in "
                     "flight), one round; start-up dominates, so the "
                     "verdicts below only show the harness works" % ctx.n)
    text = "\n".join(lines) + "\n\nTargets (ratios from this run):\n" + \
        "\n".join("  " + t for t in tl) + "\n"
    print("\n" + ctx.machine + "\n" + text, flush=True)
    (ctx.out / "table.txt").write_text(ctx.machine + "\n" + text)
    with open(ctx.out / "results.csv", "w", newline="") as f:
        keys = ["scenario", "tool", "concurrency", "urls", "urls_per_s",
                "bound_urls_per_s", "fraction_of_bound",
                "ratio_gatherd_to_tool", "ratio_round_median",
                "peak_rss_kb", "cpu_s", "cpu_us_per_url", "runs_ok", "runs",
                "bytes_per_conn", "seconds"]
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    results["machine"] = ctx.machine
    (ctx.out / "results.json").write_text(json.dumps(
        results, indent=1, default=str, sort_keys=True))
    chart(ctx, thr)


def chart(ctx, thr):
    if not thr:
        return
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found: no chart")
        return
    tools = TOOL_ORDER + ["bound"]
    dat = ctx.out / "urls_per_s.dat"
    with open(dat, "w") as f:
        f.write("scenario " + " ".join(tools) + "\n")
        for sname, tt in thr.items():
            g = tt.get("gatherd", {})
            vals = []
            for t in tools:
                if t == "bound":
                    v = g.get("bound")
                else:
                    v = tt.get(t, {}).get("urls_per_s")
                vals.append("%.0f" % v if v else "-")
            f.write(sname + " " + " ".join(vals) + "\n")
    script = """
set terminal pngcairo size 1500,650 font ",10"
set output '{png}'
set title "URLs/s per scenario, log scale (median of up to {rounds} round(s); wrk: keep-alive req/s; bound: gatherd's in-flight limit / mean think time)" noenhanced
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "URLs/s"
set logscale y
set yrange [10:*]
set grid ytics
set key outside right top
set xtics rotate by 30 right noenhanced
plot for [i=2:{ncol}] '{dat}' using i:xtic(1) title columnheader(i)
""".format(png=ctx.out / "urls_per_s.png", dat=dat, rounds=ctx.rounds,
           ncol=len(tools) + 1)
    (ctx.out / "urls_per_s.gp").write_text(script)
    r = subprocess.run([gp, str(ctx.out / "urls_per_s.gp")],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr[-500:])


class Ctx:
    pass


def machine_info():
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ver = subprocess.run(["curl", "--version"], capture_output=True,
                         text=True).stdout.split("\n")[0].split()[:2]
    rev = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                            "--", "src"], capture_output=True,
                           text=True).stdout.strip()
    return ("machine: nproc=%d, CPU: %s, kernel %s; %s; gatherd src %s%s; "
            "loadavg at start %s") % (
        os.cpu_count(), model, os.uname().release, " ".join(ver),
        rev or "?", " (+uncommitted changes)" if dirty else "",
        " ".join(Path("/proc/loadavg").read_text().split()[:3]))


def report_from(a):
    """Rebuild table, CSV and chart from an earlier results.json."""
    results = json.loads(Path(a.report_from).read_text())
    ctx = Ctx()
    cfg = results.get("config", {})
    ctx.n, ctx.rounds = cfg.get("urls", 0), cfg.get("rounds", 0)
    ctx.machine = results.get("machine", "")
    ctx.busy_at_start = "loadavg at start" in ctx.machine and float(
        ctx.machine.split("loadavg at start")[1].split()[0]) > 1.0
    ctx.out = Path(a.out).resolve()
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.rebuilt = True
    if results.get("memory"):
        results["memory"] = {int(k): v for k, v in results["memory"].items()}
    for sname, tools in results.get("throughput", {}).items():
        g = tools.get("gatherd", {}).get("raw", [])
        if any(r.get("rss_samples") for r in g):
            tools["gatherd"]["rss_flat"] = rss_flatness(g)
        for t, s in tools.items():
            if t == "gatherd" or t.startswith("_"):
                continue
            rr = [x["rps"] / o["rps"] for x, o in zip(g, s.get("raw", []))
                  if x["ok"] and o["ok"] and x.get("rps") and o.get("rps")]
            s["round_ratios"] = rr
            s["ratio_round_median"] = statistics.median(rr) if rr else None
    report(ctx, results)
    return 0


OLD_SCENARIOS = ["http-1host", "http-250hosts", "https-1host",
                 "https-250hosts", "http-1host-digest", "http-1host-warc"]
NEW_SCENARIOS = ["latency-1host", "broad-crawl", "broad-crawl-https",
                 "wide-crawl", "wide-crawl-250", "high-concurrency",
                 "high-concurrency-https", "cpu-per-url"]
ALL_SCENARIOS = OLD_SCENARIOS + NEW_SCENARIOS + ["memory", "ingestion",
                                                 "per-conn"]


def broad_names(n_hosts):
    """hN.bench.test -> 127.1.x.y: every name its own address."""
    return [("h%d.bench.test" % i, "127.1.%d.%d" % (i // 250, i % 250 + 1))
            for i in range(n_hosts)]


def shuffled_host_urls(fmt_, n_hosts, per_host, seed):
    """per_host URLs for each of n_hosts names, in a shuffled order (the
    same every run), numbered in that order."""
    hosts = [h for h in range(n_hosts) for _ in range(per_host)]
    random.Random(seed).shuffle(hosts)
    return [fmt_ % (h, i) for i, h in enumerate(hosts)]


def scenario_defs(ctx, want, quick, scale):
    """The scenarios of --only/--quick/all, each a dict for
    throughput_scenario (URL lists are made when the scenario runs)."""
    def sz(n):
        return max(200, int(n * scale))
    d = {}
    base_tools = ["gatherd", "curl", "wrk", "aiohttp", "wget2"]
    for name, scheme, hosts in (("http-1host", "http", 1),
                                ("http-250hosts", "http", 250),
                                ("https-1host", "https", 1),
                                ("https-250hosts", "https", 250)):
        tools = [x for x in base_tools if x != "wrk" or hosts == 1]
        if name == "http-1host" and not quick:
            tools += ["scrapy", "crawlee"]
        d[name] = {"scheme": scheme, "hosts": hosts, "in_flight": 64,
                   "per_host": 64, "tools": tools}
    # What keeping pages costs: the body digest (on by default) against
    # none, and WARC archiving against the default, with curl for RSS.
    d["http-1host-digest"] = {"scheme": "http", "hosts": 1, "in_flight": 64,
                              "per_host": 64,
                              "tools": ["gatherd", "gatherd-nodigest"]}
    d["http-1host-warc"] = {"scheme": "http", "hosts": 1, "in_flight": 64,
                            "per_host": 64,
                            "tools": ["gatherd", "gatherd-warc", "curl"]}
    # 100,000 URLs (unless --urls): gatherd's rate is URLs over the wall
    # time of the whole process, and at 20,000 URLs (~0.4 s) its fixed
    # costs (exec, opening SQLite, the last commit) weigh against wrk's
    # steady-state rate.
    d["cpu-per-url"] = {"scheme": "http", "hosts": 1, "in_flight": 64,
                        "per_host": 64, "tools": ["gatherd", "wrk"],
                        "rounds": max(ctx.rounds, 5),
                        "n": ctx.n_cpu}
    if ctx.delay is None:
        return {k: v for k, v in d.items() if k in want}
    dp, dtp = ctx.delay.port, ctx.delay.tls_port
    n, inf = (2000, 200) if quick else (sz(40000), 1000)
    d["latency-1host"] = {
        "scheme": "http", "hosts": 1, "in_flight": inf, "per_host": inf,
        "server": "delay", "think_s": 0.1, "expect_len": 1000,
        "conc": {"curl": min(300, inf)},
        "tools": ["gatherd", "curl", "aiohttp", "wget2"] +
        ([] if quick else ["scrapy", "crawlee"]),
        "make_urls": lambda: ["http://127.0.0.1:%d/p?n=%d" % (dp, i)
                              for i in range(n)]}
    nb = sz(50000)
    for name, scheme, port in (("broad-crawl", "http", dp),
                               ("broad-crawl-https", "https", dtp)):
        d[name] = {
            "scheme": scheme, "hosts": 5000, "in_flight": 1000,
            "per_host": 2, "server": "delay", "think_s": 0.1,
            "expect_len": 1000, "names": True, "sample_rss": True,
            "tools": ["gatherd", "aiohttp", "wget2"],
            "make_urls": lambda scheme=scheme, port=port: shuffled_host_urls(
                "%s://h%%d.bench.test:%d/p?n=%%d" % (scheme, port), 5000,
                max(1, nb // 5000), 10)}
    nw = sz(100000)
    for name, hosts in (("wide-crawl", 50000), ("wide-crawl-250", 250)):
        d[name] = {
            "scheme": "http", "hosts": hosts, "in_flight": 512,
            "per_host": 2, "names": True, "tools": ["gatherd", "wget2"],
            "make_urls": lambda hosts=hosts: shuffled_host_urls(
                "http://w%%d.wide.bench.test:%d/page.html?n=%%d"
                % ctx.nginx.port, hosts, max(1, nw // hosts), 11)}
    nh = sz(100000)
    for name, scheme, port in (("high-concurrency", "http", dp),
                               ("high-concurrency-https", "https", dtp)):
        d[name] = {
            "scheme": scheme, "hosts": 1, "in_flight": 10000,
            "per_host": 10000, "server": "delay", "think_s": 1.0,
            "expect_len": 1000, "sample_rss": True,
            "tools": ["gatherd", "wget2"],
            "make_urls": lambda scheme=scheme, port=port: [
                "%s://127.0.0.1:%d/p?ms=1000&n=%d" % (scheme, port, i)
                for i in range(nh)]}
    return {k: v for k, v in d.items() if k in want}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--urls", type=int, help="URLs per run of the four "
                    "nginx throughput scenarios and cpu-per-url")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the URL counts of the delay-server and "
                    "wide-crawl scenarios (e.g. 0.25 for a shorter run)")
    ap.add_argument("--only", help="comma list of scenarios to run: " +
                    ",".join(ALL_SCENARIOS))
    ap.add_argument("--keep-runs", action="store_true",
                    help="keep gatherd run directories")
    ap.add_argument("--report-from", metavar="JSON",
                    help="only redo the table/CSV/chart from a results.json")
    a = ap.parse_args()
    if a.report_from:
        return report_from(a)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    ctx = Ctx()
    ctx.gatherd = os.environ.get("GATHERD_BIN",
                                 str(REPO / "build-bench" / "gatherd"))
    if not os.access(ctx.gatherd, os.X_OK):
        log("gatherd binary not found: %s" % ctx.gatherd)
        return 1
    ctx.quick = a.quick
    ctx.rebuilt = False
    ctx.n = a.urls or (2000 if a.quick else 20000)
    ctx.n_cpu = a.urls or (2000 if a.quick else 100000)
    ctx.rounds = a.rounds or (1 if a.quick else 3)
    ctx.wrk_s = 2 if a.quick else 10
    ctx.with_aiohttp = True
    ctx.keep_runs = a.keep_runs
    ctx.run_timeout = lambda n: 60 + n / 200.0
    ctx.out = Path(a.out).resolve()
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.work = Path(tempfile.mkdtemp(prefix="gatherd-bench-"))
    ctx.machine = machine_info()
    ctx.busy_at_start = float(Path("/proc/loadavg").read_text().split()[0]) > 1.0
    if a.only:
        want = a.only.split(",")
        bad = [w for w in want if w not in ALL_SCENARIOS]
        if bad:
            log("unknown scenario(s) %s; known: %s" % (
                ",".join(bad), ",".join(ALL_SCENARIOS)))
            return 2
    elif a.quick:
        want = ["http-1host", "https-1host", "latency-1host", "per-conn"]
    else:
        want = ALL_SCENARIOS
    log(ctx.machine)
    log("gatherd %s; %d URLs x %d round(s); work dir %s" % (
        ctx.gatherd, ctx.n, ctx.rounds, ctx.work))
    results = {"config": {"urls": ctx.n, "rounds": ctx.rounds,
                          "wrk_seconds": ctx.wrk_s, "quick": ctx.quick,
                          "gatherd": ctx.gatherd, "in_flight": 64,
                          "page_bytes": PAGE_SIZE, "scale": a.scale,
                          "scenarios": want}}
    ctx.delay = ctx.dns = None
    ctx.ns_prefix, ctx.ns_problem = None, "no scenario needs it"
    try:
        ctx.ca, crt, key = make_tls(ctx.work / "tls")
        ctx.nginx = Nginx(ctx.work / "nginx", crt, key).start()
        ctx.hold = HoldServer(ctx.work / "hold").start()
        log("nginx http :%d https :%d, hold server :%d" % (
            ctx.nginx.port, ctx.nginx.tls_port, ctx.hold.port))
        if any(w in want for w in NEW_SCENARIOS if w != "cpu-per-url"):
            dcrt, dkey = make_delay_cert(ctx.work / "tls", ctx.ca,
                                         ctx.work / "tls" / "ca.key")
            ctx.delay = DelayServer(ctx.work / "delay",
                                    find_delay_server(ctx), dcrt,
                                    dkey).start()
            log("delay server http :%d https :%d" % (ctx.delay.port,
                                                      ctx.delay.tls_port))
        if any(w.startswith(("broad-crawl", "wide-crawl")) for w in want):
            ctx.dns = Dnsmasq(ctx.work / "dns").start(broad_names(5000))
            check_resolver_wrap(ctx)
            log("dnsmasq on %s:53; peers resolve through it: %s" % (
                ctx.dns.addr, "yes" if ctx.ns_prefix else
                "NO (%s)" % ctx.ns_problem))
        if any("crawlee" in sc["tools"] for sc in
               scenario_defs(ctx, want, a.quick, a.scale).values()):
            setup_crawlee(ctx)
            if ctx.crawlee_problem:
                log("crawlee: " + ctx.crawlee_problem)
        results["throughput"] = {}
        defs = scenario_defs(ctx, want, a.quick, a.scale)
        for name in ALL_SCENARIOS:
            if name not in defs:
                continue
            sc = dict(defs[name], name=name)
            if "make_urls" in sc:
                sc["urls"] = sc.pop("make_urls")()
            results["throughput"][name] = throughput_scenario(ctx, sc)
        if "memory" in want:
            results["memory"] = memory_scenario(ctx)
        if "per-conn" in want:
            n = 1000 if a.quick else 10000
            results["per_connection"] = per_connection_scenario(ctx, n)
            log("per-connection: %s" % {k: v for k, v in
                                         results["per_connection"].items()})
        if "ingestion" in want:
            results["ingestion"] = ingestion_scenario(ctx, 1000000)
            log("ingestion: %s" % results["ingestion"])
        report(ctx, results)
    finally:
        cleanup()
        shutil.rmtree(ctx.work, ignore_errors=True)
    log("wrote %s/{table.txt,results.csv,results.json,urls_per_s.png}"
        % ctx.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

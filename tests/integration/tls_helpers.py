"""Helpers for gatherd's HTTPS integration tests (test_tls.py): a throw-away
PKI made with the openssl CLI, a private nginx with one TLS server block per
certificate scenario, and a scripted TLS server (Python's ssl module) for
what nginx cannot do (close-delimited bodies, closing with or without
close_notify).

Everything listens on loopback only; every wait has a deadline; every
process and thread started here is stopped by its stop() method.
"""

import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from conftest import (DOCROOT_FILES, NGINX, free_tcp_port, kill_group,
                      nginx_conf_head, port_open, prepare_nginx_dirs)

OPENSSL = "openssl"


# ---------------------------------------------------------------- PKI

def _run(argv, cwd):
    cp = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                        timeout=60)
    if cp.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s\n%s" % (
            " ".join(argv), cp.returncode, cp.stdout, cp.stderr))
    return cp.stdout


def _newkey_args():
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _san_ext(sans):
    return ("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n" % ",".join(sans))


class Pki:
    """A CA and server certificates in directory `root`.

    Attributes after make(): ca_crt, other_ca_crt (a second CA that signed
    nothing we serve) and certs: name -> (crt, key) for
      good      CA-signed, SAN DNS:localhost, IP:127.0.0.1
      wronghost CA-signed, SAN DNS:other.example only
      selfsigned self-signed, SAN DNS:localhost, IP:127.0.0.1
      expired   CA-signed, same SAN as good, valid 2020-01-01..2020-02-01
      site1 / site2  CA-signed for site1.test / site2.test
    """

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.certs = {}

    def _ca(self, name, cn):
        d = self.root
        _run([OPENSSL, "req", "-x509"] + _newkey_args() + [
            "-keyout", "%s.key" % name, "-out", "%s.crt" % name,
            "-days", "3650", "-subj", "/CN=%s" % cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
        return d / ("%s.crt" % name)

    def _leaf(self, name, cn, sans):
        d = self.root
        _run([OPENSSL, "req", "-new"] + _newkey_args() + [
            "-keyout", "%s.key" % name, "-out", "%s.csr" % name,
            "-subj", "/CN=%s" % cn], d)
        (d / ("%s.ext" % name)).write_text(_san_ext(sans))
        _run([OPENSSL, "x509", "-req", "-in", "%s.csr" % name,
              "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
              "-days", "30", "-sha256", "-extfile", "%s.ext" % name,
              "-out", "%s.crt" % name], d)
        self.certs[name] = (d / ("%s.crt" % name), d / ("%s.key" % name))

    def _self_signed(self, name, cn, sans):
        d = self.root
        _run([OPENSSL, "req", "-x509"] + _newkey_args() + [
            "-keyout", "%s.key" % name, "-out", "%s.crt" % name,
            "-days", "30", "-subj", "/CN=%s" % cn,
            "-addext", "subjectAltName=%s" % ",".join(sans),
            "-addext", "extendedKeyUsage=serverAuth"], d)
        self.certs[name] = (d / ("%s.crt" % name), d / ("%s.key" % name))

    def _expired(self, name, cn, sans):
        """The openssl 3.0 CLI's `x509 -req` cannot back-date a
        certificate; `openssl ca -startdate/-enddate` can."""
        d = self.root
        cadir = d / "cadb"
        cadir.mkdir(exist_ok=True)
        (cadir / "index.txt").write_text("")
        (cadir / "serial").write_text("1000\n")
        (d / "ca.cnf").write_text("""
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {cadir}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
certificate = {d}/ca.crt
private_key = {d}/ca.key
default_md = sha256
policy = pol
copy_extensions = none
unique_subject = no
email_in_dn = no
[ pol ]
commonName = supplied
[ ext ]
{ext}
""".format(cadir=cadir, d=d, ext=_san_ext(sans)))
        _run([OPENSSL, "req", "-new"] + _newkey_args() + [
            "-keyout", "%s.key" % name, "-out", "%s.csr" % name,
            "-subj", "/CN=%s" % cn], d)
        _run([OPENSSL, "ca", "-batch", "-config", "ca.cnf",
              "-in", "%s.csr" % name, "-out", "%s.crt" % name,
              "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
              "-extensions", "ext", "-notext"], d)
        self.certs[name] = (d / ("%s.crt" % name), d / ("%s.key" % name))

    def make(self):
        self.ca_crt = self._ca("ca", "gatherd test CA")
        self.other_ca_crt = self._ca("otherca", "gatherd unrelated CA")
        local = ["DNS:localhost", "IP:127.0.0.1"]
        self._leaf("good", "localhost", local)
        self._leaf("wronghost", "other.example", ["DNS:other.example"])
        self._leaf("site1", "site1.test", ["DNS:site1.test"])
        self._leaf("site2", "site2.test", ["DNS:site2.test"])
        self._self_signed("selfsigned", "localhost", local)
        self._expired("expired", "localhost", local)
        # Sanity: the chain verifies where it should, and the expired one
        # fails only because of its dates.
        _run([OPENSSL, "verify", "-CAfile", str(self.ca_crt),
              str(self.certs["good"][0])], self.root)
        out = subprocess.run(
            [OPENSSL, "verify", "-CAfile", str(self.ca_crt),
             str(self.certs["expired"][0])],
            capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "expired" in out.stdout + out.stderr
        return self


# ---------------------------------------------------------------- nginx

# Fields of the access log, tab-separated, in this order.
LOG_FIELDS = ("port", "conn", "conn_req", "protocol", "reused", "sni",
              "alpn", "host", "uri", "status", "bytes")


class TlsNginx:
    """One nginx with a TLS server block per scenario, each on its own
    port (ports[name]); site1/site2 share one port (SNI)."""

    SERVERS = ("good", "tls12", "wronghost", "selfsigned", "expired",
               "tls10", "sni", "reconnect", "reconnect12")

    def __init__(self, root, pki):
        self.root = Path(root)
        self.pki = pki
        self.docroot = self.root / "www"
        self.access_log = self.root / "access.log"
        self.ports = {}
        self.proc = None

    def url(self, name, path, host="localhost"):
        return "https://%s:%d/%s" % (host, self.ports[name],
                                     path.lstrip("/"))

    def log_mark(self):
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_entries(self, since=0, port=None):
        with open(self.access_log, "rb") as f:
            f.seek(since)
            data = f.read()
        out = []
        for line in data.decode("latin-1").splitlines():
            parts = line.split("\t")
            if len(parts) != len(LOG_FIELDS):
                continue
            e = dict(zip(LOG_FIELDS, parts))
            for k in ("port", "conn", "conn_req", "status", "bytes"):
                e[k] = int(e[k])
            if port is None or e["port"] == port:
                out.append(e)
        return out

    def _conf(self):
        d = self.root
        c = self.pki.certs
        p = self.ports

        def cert(name):
            return "ssl_certificate %s; ssl_certificate_key %s;" % c[name]

        return nginx_conf_head(d) + """
    log_format tls "$server_port\\t$connection\\t$connection_requests\\t$ssl_protocol\\t$ssl_session_reused\\t$ssl_server_name\\t$ssl_alpn_protocol\\t$http_host\\t$request_uri\\t$status\\t$body_bytes_sent";
    access_log {d}/access.log tls;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    root {d}/www;

    server {{ listen 0.0.0.0:{p[good]} ssl; server_name _; {good} }}
    server {{ listen 127.0.0.1:{p[tls12]} ssl; server_name _; {good}
              ssl_protocols TLSv1.2; }}
    server {{ listen 127.0.0.1:{p[wronghost]} ssl; server_name _; {wrong} }}
    server {{ listen 127.0.0.1:{p[selfsigned]} ssl; server_name _; {self} }}
    server {{ listen 127.0.0.1:{p[expired]} ssl; server_name _; {expired} }}
    server {{ listen 127.0.0.1:{p[tls10]} ssl; server_name _; {good}
              ssl_protocols TLSv1; ssl_ciphers DEFAULT:@SECLEVEL=0; }}
    server {{ listen 0.0.0.0:{p[sni]} ssl; server_name site1.test; {site1}
              default_type text/plain;
              location / {{ return 200 "this is site1\\n"; }} }}
    server {{ listen 0.0.0.0:{p[sni]} ssl; server_name site2.test; {site2}
              default_type text/plain;
              location / {{ return 200 "and this one is site2\\n"; }} }}
    server {{ listen 127.0.0.1:{p[reconnect]} ssl; server_name _; {good}
              keepalive_requests 10; }}
    server {{ listen 127.0.0.1:{p[reconnect12]} ssl; server_name _; {good}
              keepalive_requests 10; ssl_protocols TLSv1.2; }}
}}
""".format(d=d, p=p, good=cert("good"), wrong=cert("wronghost"),
           self=cert("selfsigned"), expired=cert("expired"),
           site1=cert("site1"), site2=cert("site2"))

    def start(self):
        d = self.root
        prepare_nginx_dirs(d, self.docroot)
        last_err = ""
        for attempt in range(5):
            used = set()
            for name in self.SERVERS:
                port = free_tcp_port()
                while port in used:
                    port = free_tcp_port()
                used.add(port)
                self.ports[name] = port
            conf = d / "nginx.conf"
            conf.write_text(self._conf())
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(d), "-e", str(d / "error.log"),
                 "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(d / "nginx.stderr", "ab"),
                start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if all(port_open("127.0.0.1", p)
                       for p in self.ports.values()):
                    return self
                time.sleep(0.05)
            last_err = ((d / "error.log").read_text(errors="replace")
                        if (d / "error.log").exists() else "")
            last_err += (d / "nginx.stderr").read_text(errors="replace")
            kill_group(self.proc)
        raise RuntimeError("TLS nginx did not start: " + last_err[-3000:])

    def stop(self):
        kill_group(self.proc, signal.SIGTERM)


# ---------------------------------------------------------------- TLS script

class ScriptedTlsServer:
    """A TLS server on 127.0.0.1 answering one request per connection:
      /close?len=N&notify=1  close-delimited body, then close_notify
      /close?len=N&notify=0  close-delimited body, then TCP FIN without
                             close_notify (an unexpected EOF)
      /length?len=N          Content-Length body, then FIN, no close_notify
      /chunked?len=N         chunked body, then FIN, no close_notify
    `events` records (path, what happened at close) per connection."""

    def __init__(self, certfile, keyfile):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(str(certfile), str(keyfile))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.events = []
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept_loop,
                                         daemon=True)

    def url(self, path, host="localhost"):
        return "https://%s:%d/%s" % (host, self.port, path.lstrip("/"))

    def start(self):
        self.acceptor.start()
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    @staticmethod
    def _body(n):
        pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
        return (pattern * (n // len(pattern) + 1))[:n]

    def _serve(self, conn):
        conn.settimeout(10)
        path = None
        try:
            s = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                self.events.append((None, "handshake failed: %s" % e))
            conn.close()
            return
        try:
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                req += chunk
            line = req.split(b"\r\n", 1)[0].decode("latin-1")
            path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            u = urlsplit(path)
            q = parse_qs(u.query)
            n = int(q.get("len", ["0"])[0])
            body = self._body(n)
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            if u.path == "/close":
                s.sendall((head + "Connection: close\r\n\r\n").encode()
                          + body)
                notify = q.get("notify", ["1"])[0] == "1"
            elif u.path == "/length":
                s.sendall((head + "Content-Length: %d\r\n\r\n" % n).encode()
                          + body)
                notify = False
            elif u.path == "/chunked":
                data = b""
                for i in range(0, n, 1000):
                    piece = body[i:i + 1000]
                    data += b"%x\r\n%s\r\n" % (len(piece), piece)
                data += b"0\r\n\r\n"
                s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n")
                          .encode() + data)
                notify = False
            else:
                s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0"
                          b"\r\n\r\n")
                notify = False
            if notify:
                # SSL_shutdown: sends close_notify.  The peer may close
                # the TCP connection without answering it; that is fine.
                try:
                    s.unwrap()
                    what = "close_notify sent"
                except (OSError, ssl.SSLError, ValueError) as e:
                    what = "close_notify sent (%s)" % type(e).__name__
                try:
                    s.shutdown(socket.SHUT_WR)  # raw now: no SSL object
                except OSError:
                    pass
            else:
                # SSLSocket.shutdown() drops the SSL object without
                # SSL_shutdown and shuts the TCP socket down: a FIN with
                # no close_notify before it.
                s.shutdown(socket.SHUT_WR)
                what = "FIN without close_notify"
            # Drain (raw, the SSL object is gone) until the client closes,
            # so that close() sends no RST.
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            with self.lock:
                self.events.append((path, what))
        except Exception as e:  # recorded, reported by the test
            with self.lock:
                self.errors.append("%s: %r" % (path, e))
        finally:
            try:
                s.close()  # wrap_socket took over conn's descriptor
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)

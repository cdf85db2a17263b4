"""A private PostgreSQL 15 cluster for the tests of [store] backend =
postgresql: initdb into a temporary directory, pg_ctl start on a loopback
port (and a Unix socket in that directory), as an unprivileged user when
the tests run as root (initdb refuses root).  Queries go through psql and
come back as JSON, so the tests need no Python driver.

The cluster is tuned for tests, not for durability: fsync off (the tests
restart PostgreSQL, they never crash the machine).
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
REPO = Path(__file__).resolve().parent.parent.parent


def ensure_installed():
    """PostgreSQL's server binaries, installing the package (through
    scripts/install-deps, which holds back the package's own cluster) when
    they are missing; skips the test only when that is impossible."""
    if (PG_BIN / "initdb").exists():
        return
    cp = subprocess.run([str(REPO / "scripts" / "install-deps"),
                         "postgresql-15"], capture_output=True, text=True,
                        timeout=900)
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 is not installed and could not be "
                    "installed (scripts/install-deps postgresql-15 exited "
                    "%d: %s)" % (cp.returncode,
                                 (cp.stderr or cp.stdout)[-500:].strip()))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One cluster.  `user` owns the files and runs the server."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="gatherd-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = None
        self.runas = []
        if os.geteuid() == 0:
            # initdb refuses root: the server runs as nobody, in a
            # directory it owns.
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.runas = ["runuser", "-u", "nobody", "--"]
        os.chmod(self.dir, 0o755)

    def _run(self, argv, timeout=120, check=True):
        cp = subprocess.run(self.runas + argv, capture_output=True,
                            text=True, timeout=timeout, cwd=self.dir)
        if check and cp.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s\n%s" % (
                argv[0], cp.returncode, cp.stdout[-2000:],
                cp.stderr[-2000:]))
        return cp

    def start(self):
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A",
                   "trust", "-U", "gatherd", "-N", "-E", "UTF8",
                   "--locale=C"], timeout=300)
        last = None
        for _ in range(5):
            self.port = free_port()
            cp = self._run(self.ctl_argv("start"), timeout=120,
                           check=False)
            if cp.returncode == 0:
                return self
            last = cp
        raise RuntimeError("pg_ctl start failed:\n%s\n%s" % (
            last.stderr[-2000:], self.server_log()[-3000:]))

    def ctl_argv(self, action, *extra):
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=200" % (self.port, self.dir))
        return [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts,
                "-l", str(self.log), "-w", "-t", "60", action] + list(extra)

    def restart(self):
        """pg_ctl restart -m fast: every connection is cut."""
        self._run(self.ctl_argv("restart", "-m", "fast"), timeout=120)

    def stop(self):
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w",
                   "-t", "60", "stop", "-m", "fast"], timeout=120,
                  check=False)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def server_log(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def conninfo(self, db):
        return "host=127.0.0.1 port=%d dbname=%s user=gatherd" % (
            self.port, db)

    def psql(self, db, sql, timeout=120):
        """Run sql with psql; returns stdout (unaligned, tuples only)."""
        cp = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
             "127.0.0.1", "-p", str(self.port), "-U", "gatherd", "-d", db,
             "-c", sql], capture_output=True, text=True, timeout=timeout)
        if cp.returncode != 0:
            raise RuntimeError("psql: %s\n%s" % (sql, cp.stderr))
        return cp.stdout

    def query(self, db, sql, params=()):
        """Rows of sql as dicts (JSON types: numbers, strings, None).
        Parameters are written in as SQL literals (%s placeholders)."""
        if params:
            sql = sql.replace("?", "%s") % tuple(literal(p) for p in params)
        out = self.psql(db, "SELECT coalesce(json_agg(t), '[]') FROM (%s) t"
                        % sql)
        return json.loads(out)

    def create_db(self, name):
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name


def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def wait_until(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 10):
        last = cond()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    pytest.fail("timed out after %ss waiting for %s (last: %r)"
                % (timeout, what, last))

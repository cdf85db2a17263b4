"""A private PostgreSQL 15 cluster, for the integration tests of [store]
backend = postgresql (tests/integration/pg_helpers.py) and the benchmark's
pg-1node and pg-3nodes (tests/bench/pg_bench.py): initdb into a temporary
directory, pg_ctl start on a loopback port (and a Unix socket in that
directory), as an unprivileged user when run as root (initdb refuses
root).  Queries go through psql and come back as JSON, so no Python driver
is needed.  Python's standard library only.
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One cluster, with `settings` (postgresql.conf names and values) on
    top of listen_addresses, port and socket directory.  Tests use
    fsync=off; the benchmark synchronous_commit=off (SQLite's
    synchronous=NORMAL in WAL mode is as durable)."""

    def __init__(self, settings=None):
        self.settings = dict(settings or {"fsync": "off"})
        self.settings.setdefault("max_connections", "200")
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
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1" % (self.port,
                                                               self.dir)
        for k, v in sorted(self.settings.items()):
            opts += " -c %s=%s" % (k, v)
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

    def require_password(self, role):
        """Connections as `role` need its password (SCRAM); every other
        role stays trusted."""
        hba = self.data / "pg_hba.conf"
        line = "host all %s 127.0.0.1/32 scram-sha-256\n" % role
        text = self._run(["cat", str(hba)]).stdout
        self._run(["sh", "-c", "printf '%%s' \"$1\" > %s" % hba, "sh",
                   line + text])
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "reload"])
        time.sleep(0.5)  # the postmaster re-reads it asynchronously

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

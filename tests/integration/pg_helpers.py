"""The PostgreSQL cluster of the tests of [store] backend = postgresql
(tests/pg_cluster.py), installed when missing, and a wait helper.

The cluster is tuned for tests, not for durability: fsync off (the tests
restart PostgreSQL, they never crash the machine).
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests"))
from pg_cluster import PG_BIN, Postgres, literal  # noqa: E402,F401


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

"""Helpers shared by the system tests' conftest.py and test modules (a
module of its own, so that `import conftest` never picks the integration
suite's conftest.py)."""

import socket
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# Files the host's nginx serves, and their sizes.
DOCROOT_FILES = {"a.txt": 1000, "b.bin": 12345, "c.html": 777}


def wait_for(cond, timeout, interval=0.1, what="condition"):
    """Call cond() until it returns something truthy or `timeout` seconds
    pass; return that value, or fail the test naming `what` and the last
    value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %.0f s waiting for %s (last: %r)"
                        % (timeout, what, last))
        time.sleep(interval)


def free_tcp_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tail(text, n=40):
    return "\n".join((text or "").splitlines()[-n:])

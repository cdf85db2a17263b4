"""What the daemon tells a service manager ($NOTIFY_SOCKET: readiness,
status, watchdog pings, stopping), spoken without libsystemd, and the
libraries it maps: libpq only when the store is PostgreSQL."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import wait_for

# The library test runs on both stores (conftest.py: pytest_generate_tests).
STORE_BACKENDS = ("sqlite", "postgresql")


class NotifyListener:
    """A datagram socket where systemd would listen; collects messages."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages = []

    def poll(self, seconds):
        """Collect what arrives within `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.messages.append(self.sock.recv(8192).decode())
            except socket.timeout:
                pass
        return self.messages

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(self.messages):
                return
            self.poll(0.1)
        pytest.fail("no %s from gatherd within %ss; got %r"
                    % (what, timeout, self.messages))

    def close(self):
        self.sock.close()


def fields(messages):
    """Every KEY=VALUE line of the messages, in order."""
    return [line for m in messages for line in m.split("\n") if line]


@pytest.mark.sqlite_only
def test_ready_status_watchdog_stopping(gatherd, tmp_path):
    gatherd.write_config(gatherd={"stats_interval_s": 1})
    path = str(tmp_path / "notify.sock")
    ln = NotifyListener(path)
    try:
        proc = gatherd.start(env={"NOTIFY_SOCKET": path,
                                  "WATCHDOG_USEC": "400000",
                                  "WATCHDOG_PID": None})
        ln.wait(lambda m: "READY=1" in fields(m), 30, "READY=1")
        gatherd.wait_ready(proc)
        # A stats line every second as STATUS=, and a ping every half of
        # the 400 ms watchdog interval.
        ln.wait(lambda m: any(f.startswith("STATUS=") and "ready" not in f
                              for f in fields(m)), 10, "a STATUS= stats line")
        n0 = fields(ln.messages).count("WATCHDOG=1")
        ln.poll(1.5)
        pings = fields(ln.messages).count("WATCHDOG=1") - n0
        assert pings >= 4, ln.messages
        proc.send_signal(signal.SIGTERM)
        ln.wait(lambda m: "STOPPING=1" in fields(m), 20, "STOPPING=1")
        assert proc.wait(20) == 0
        got = fields(ln.messages)
        assert got.index("READY=1") < got.index("STOPPING=1")
    finally:
        ln.close()


@pytest.mark.sqlite_only
def test_abstract_socket_and_someone_elses_watchdog(gatherd):
    """An abstract address ("@name") works; WATCHDOG_PID naming another
    process means the pings are not this one's to send."""
    gatherd.write_config()
    name = "gatherd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
    ln = NotifyListener("\0" + name)
    try:
        proc = gatherd.start(env={"NOTIFY_SOCKET": "@" + name,
                                  "WATCHDOG_USEC": "200000",
                                  "WATCHDOG_PID": str(os.getpid())})
        ln.wait(lambda m: "READY=1" in fields(m), 30, "READY=1")
        ln.poll(1.0)  # 10 watchdog intervals
        assert "WATCHDOG=1" not in fields(ln.messages), ln.messages
        rc, _ = gatherd.stop(proc)
        assert rc == 0
    finally:
        ln.close()


@pytest.mark.sqlite_only
def test_no_notify_socket_is_quiet(gatherd, tmp_path):
    """Outside a service (no NOTIFY_SOCKET, or one gatherd does not speak)
    nothing is sent and nothing fails."""
    gatherd.write_config()
    proc = gatherd.start(env={"NOTIFY_SOCKET": "vsock:2:1234",
                              "WATCHDOG_USEC": "100000"})
    gatherd.wait_ready(proc)
    time.sleep(0.5)
    assert proc.poll() is None
    rc, _ = gatherd.stop(proc)
    assert rc == 0


def mapped_libraries(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[-1]) for line in f
                if ".so" in line}


def test_libpq_is_mapped_only_for_postgresql(gatherd, store_backend):
    """libpq (with Kerberos, LDAP and GnuTLS behind it) is opened when the
    store is PostgreSQL and never otherwise; libsystemd never."""
    gatherd.write_config()
    proc = gatherd.start()
    gatherd.wait_ready(proc)
    libs = mapped_libraries(proc.pid)
    rc, _ = gatherd.stop(proc)
    assert rc == 0
    pq = {x for x in libs if x.startswith("libpq.so")}
    assert not {x for x in libs if x.startswith("libsystemd.so")}, libs
    if store_backend == "postgresql":
        assert pq, libs
    else:
        assert not pq, libs
        assert not {x for x in libs if x.startswith(("libgnutls.so",
                                                     "libkrb5.so",
                                                     "libldap"))}, libs


def libpq_path():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                         timeout=30).stdout
    for line in out.splitlines():
        name, _, path = line.strip().partition(" => ")
        if name.startswith("libpq.so.5 ") and path:
            return os.path.realpath(path)
    return None


@pytest.mark.sqlite_only
def test_missing_libpq_is_a_clear_error(gatherd, tmp_path):
    """Without libpq (hidden in a private mount namespace), a PostgreSQL
    configuration is refused with an error that names the library, and a
    SQLite one runs as ever."""
    lib = libpq_path()
    if lib is None or shutil.which("unshare") is None:
        pytest.skip("no libpq.so.5 or unshare here")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True,
                           timeout=30)
    if probe.returncode != 0:
        pytest.skip("no permission for a mount namespace: %s"
                    % probe.stderr.decode(errors="replace").strip())

    def without_libpq(*args):
        script = ('mount --bind /dev/null "$0" && exec "$@"')
        return subprocess.run(["unshare", "-m", "sh", "-c", script, lib]
                              + list(args), capture_output=True, text=True,
                              timeout=60)

    gatherd.write_config()
    cp = without_libpq(gatherd.bin, "check-config", "-c", str(gatherd.conf),
                       "--set", "store.backend=postgresql", "--set",
                       "store.conninfo=host=127.0.0.1 dbname=x")
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert "could not be loaded (install libpq5)" in cp.stderr, cp.stderr
    assert "[store] conninfo" in cp.stderr, cp.stderr
    # A daemon told to use PostgreSQL (libpq's defaults: no conninfo to
    # check) stops at its start with the same sentence.
    cp = without_libpq(gatherd.bin, "-c", str(gatherd.conf), "--once",
                       "--set", "store.backend=postgresql")
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "could not be loaded (install libpq5)" in cp.stderr, cp.stderr
    # The SQLite store needs no libpq at all, even with a conninfo left in
    # its configuration (unused, so not checked).
    gatherd.write_config(store={"conninfo": "host=127.0.0.1 dbname=x"})
    gatherd.write_queue([])
    cp = without_libpq(gatherd.bin, "-c", str(gatherd.conf), "--once")
    assert cp.returncode == 0, cp.stderr[-3000:]

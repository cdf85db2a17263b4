"""Fixtures for gatherd's system tests: podman, the locally made Debian base
image, the two images under test, a private nginx on the host, and
containers that are removed at teardown even when a test failed.

Images (kept between runs; podman's layer cache makes a warm run cheap):
  docker.io/library/debian:bookworm-slim  base, made once with debootstrap
                                          when it is not there yet
  localhost/gatherd-systest:systemd       tests/system/Containerfile.systemd:
                                          systemd as PID 1, gatherd built from
                                          the current tree, `meson install`
  localhost/gatherd-systest:image         the project's Dockerfile

Every podman call has a timeout and every wait a deadline.  Network traffic
of the tests goes to loopback only: nginx listens on 127.0.0.1 on the host
and the containers share the host's network (--network host).  (Making the
images fetches Debian packages from the archive, as the Dockerfile does.)

Environment:
  GATHERD_SYSTEST_PODMAN   podman executable (default: podman on PATH)
  GATHERD_SYSTEST_MIRROR   Debian mirror for debootstrap
                           (default http://deb.debian.org/debian)
  CONTAINERS_CONF          used as is when set; otherwise a file with
                           `default_ulimits = []` is written and used
  NGINX                    nginx executable (default /usr/sbin/nginx)
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sysutil import DOCROOT_FILES, HERE, REPO, free_tcp_port, tail, wait_for

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
SYSTEMD_IMAGE = "localhost/gatherd-systest:systemd"
DOCKER_IMAGE = "localhost/gatherd-systest:image"
LABEL = "gatherd-systest"
LOCK_FILE = "/var/tmp/gatherd-systest.lock"

PODMAN = os.environ.get("GATHERD_SYSTEST_PODMAN", "podman")
MIRROR = os.environ.get("GATHERD_SYSTEST_MIRROR",
                        "http://deb.debian.org/debian")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")

# Time limits, in seconds.
T_SHORT = 60          # podman exec, inspect, rm, ...
T_BUILD = 1500        # one image build (cold: apt-get downloads)
T_DEBOOTSTRAP = 900
T_BOOT = 90           # systemd in the container reaches running/degraded



# ---------------------------------------------------------------- helpers

class Podman:
    """podman with the options this machine needs; every call bounded."""

    def __init__(self, conf):
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.argv = [PODMAN, "--cgroup-manager", "cgroupfs",
                     "--runtime", "runc"]
        self.tag = "%d" % os.getpid()

    def __call__(self, *args, timeout=T_SHORT, check=True, input=None,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        argv = self.argv + [str(a) for a in args]
        try:
            r = subprocess.run(argv, input=input, stdout=stdout,
                               stderr=stderr, text=True, env=self.env,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            pytest.fail("podman call timed out after %d s: %s\n%s"
                        % (timeout, " ".join(argv),
                           tail(str(e.stderr or ""))))
        if check and r.returncode != 0:
            pytest.fail("podman call failed (exit %d): %s\nstdout:\n%s\n"
                        "stderr:\n%s" % (r.returncode, " ".join(argv),
                                         tail(r.stdout or ""),
                                         tail(r.stderr or "")))
        return r

    def popen(self, *args, log):
        return subprocess.Popen(self.argv + [str(a) for a in args],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=self.env, start_new_session=True)

    def image_id(self, name):
        r = self("image", "inspect", "--format", "{{.Id}}", name,
                 check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def name(self, what):
        return "%s-%s-%s" % (LABEL, self.tag, what)

    def labels(self):
        return ["--label", LABEL + "=1", "--label",
                "%s.pid=%s" % (LABEL, self.tag)]


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(podman):
    """Remove containers and volumes of earlier runs that died before their
    teardown (their pid label names a process that is gone).  Those of a
    run still going on are left alone."""
    r = podman("ps", "-a", "--filter", "label=" + LABEL, "--format", "json",
               check=False)
    if r.returncode == 0 and r.stdout.strip():
        for c in json.loads(r.stdout):
            pid = (c.get("Labels") or {}).get(LABEL + ".pid", "")
            if not _pid_alive(pid):
                podman("rm", "-f", "-t", "0", c["Id"], check=False)
    r = podman("volume", "ls", "--filter", "label=" + LABEL, "--format",
               "json", check=False)
    if r.returncode == 0 and r.stdout.strip():
        for v in json.loads(r.stdout):
            pid = (v.get("Labels") or {}).get(LABEL + ".pid", "")
            if not _pid_alive(pid):
                podman("volume", "rm", "-f", v["Name"], check=False)


class _Lock:
    """An flock held while the base image is made, so that two runs on the
    same machine do not both debootstrap."""

    def __enter__(self):
        self.f = open(LOCK_FILE, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# ---------------------------------------------------------------- podman

@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    """A Podman that can run containers, or the whole suite is skipped."""
    if shutil.which(PODMAN) is None:
        pytest.skip("podman is not installed (apt-get install podman runc)")
    if os.geteuid() != 0:
        pytest.skip("the system tests need root (privileged podman "
                    "containers with systemd, debootstrap)")
    if shutil.which("runc") is None and not os.path.exists("/usr/sbin/runc"):
        pytest.skip("runc is not installed (apt-get install runc)")
    conf = os.environ.get("CONTAINERS_CONF")
    if not conf:
        conf = str(tmp_path_factory.mktemp("podman") / "containers.conf")
        with open(conf, "w") as f:
            f.write("[containers]\ndefault_ulimits = []\n")
    p = Podman(conf)
    try:
        r = subprocess.run(p.argv + ["info", "--format", "json"],
                           capture_output=True, text=True, env=p.env,
                           timeout=T_SHORT)
    except subprocess.TimeoutExpired:
        pytest.skip("podman cannot run containers: `podman info` hung")
    if r.returncode != 0:
        pytest.skip("podman cannot run containers: `podman info` failed: "
                    + tail(r.stderr, 5))
    _remove_stale(p)
    return p


def make_base_image(podman, name, log):
    """debootstrap Debian 12 (minbase) and import it as image `name`."""
    root = tempfile.mkdtemp(prefix="gatherd-systest-rootfs-", dir="/var/tmp")
    try:
        with open(log, "w") as lf:
            try:
                r = subprocess.run(
                    ["debootstrap", "--variant=minbase", "bookworm", root,
                     MIRROR], stdout=lf, stderr=subprocess.STDOUT,
                    timeout=T_DEBOOTSTRAP)
            except subprocess.TimeoutExpired:
                pytest.fail("debootstrap timed out after %d s; see %s"
                            % (T_DEBOOTSTRAP, log))
        if r.returncode != 0:
            pytest.fail("debootstrap failed (exit %d):\n%s"
                        % (r.returncode, tail(Path(log).read_text())))
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."],
                               stdout=subprocess.PIPE)
        try:
            r = subprocess.run(podman.argv + ["import", "-", name],
                               stdin=tar.stdout, capture_output=True,
                               text=True, env=podman.env, timeout=600)
        except subprocess.TimeoutExpired:
            tar.kill()
            pytest.fail("podman import timed out")
        finally:
            tar.stdout.close()
            tar.wait(timeout=60)
        if r.returncode != 0:
            pytest.fail("podman import failed: " + tail(r.stderr))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def base_image(podman, tmp_path_factory):
    """The Debian 12 base image, made with debootstrap when it is missing
    (about a minute; it is kept); then a container is run from it, or the
    suite is skipped."""
    with _Lock():
        if podman("image", "exists", BASE_IMAGE, check=False).returncode:
            if shutil.which("debootstrap") is None and \
                    not os.path.exists("/usr/sbin/debootstrap"):
                pytest.skip("no image %s and no debootstrap to make it "
                            "(apt-get install debootstrap)" % BASE_IMAGE)
            t0 = time.monotonic()
            make_base_image(podman, BASE_IMAGE,
                            tmp_path_factory.getbasetemp() / "debootstrap.log")
            print("\nmade %s with debootstrap in %.0f s"
                  % (BASE_IMAGE, time.monotonic() - t0))
    r = podman("run", "--rm", "--network", "host", *podman.labels(),
               BASE_IMAGE, "true", check=False, timeout=120)
    if r.returncode != 0:
        pytest.skip("podman cannot run containers: " + tail(r.stderr, 5))
    return BASE_IMAGE


# ---------------------------------------------------------------- images

def _stage_source(dest):
    """Copy the source tree to dest without build directories, version
    control, local state and the system tests themselves (so that editing
    a test does not rebuild gatherd).  copy2 keeps mtimes, and podman's
    layer cache then reuses the build when nothing changed."""
    skip_top = {".git", "var", ".pytest_cache"}

    def ignore(d, names):
        out = {n for n in names
               if n in ("__pycache__", ".pytest_cache", "node_modules")}
        if Path(d).resolve() == REPO:
            out |= {n for n in names
                    if n in skip_top or n.startswith("build")}
        if Path(d).resolve() == REPO / "tests":
            out.add("system")
        for n in names:
            p = os.path.join(d, n)
            if not (os.path.isdir(p) or os.path.isfile(p)):
                out.add(n)  # sockets, fifos, dangling links
        return out

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=False)


class _Build:
    """One `podman build`, started in the background; wait() returns the
    image name or fails the test with the end of the build log."""

    def __init__(self, podman, image, context, log, extra):
        self.podman, self.image, self.log = podman, image, log
        self.old = podman.image_id(image)
        self.t0 = time.monotonic()
        self.lf = open(log, "w")
        self.proc = podman.popen(
            "build", "--isolation", "chroot", "--pull=never", "--layers",
            "-t", image, *extra, context, log=self.lf)
        self.result = None

    def wait(self):
        if self.result is not None:
            return self.result
        try:
            rc = self.proc.wait(timeout=max(
                1, T_BUILD - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = "timeout after %d s" % T_BUILD
        self.lf.close()
        elapsed = time.monotonic() - self.t0
        if rc != 0:
            self.result = ("fail", "building %s failed (%s); log %s:\n%s"
                           % (self.image, rc, self.log,
                              tail(Path(self.log).read_text(), 60)))
        else:
            print("\nbuilt %s in %.0f s (log %s)"
                  % (self.image, elapsed, self.log))
            self._drop_previous()
            self.result = ("ok", self.image)
        return self.result

    def _drop_previous(self):
        """Remove the images (steps) of this tag's previous build that this
        build did not reuse, so that rebuilds after source changes do not
        pile up layers.  Best effort: an image still in use (a child, a
        container) stays."""
        ids = re.findall(r"^--> (?:Using cache )?([0-9a-f]{11,64})\s*$",
                         Path(self.log).read_text(), re.M)
        ids = [i[:11] for i in ids]
        state = Path("/var/tmp/gatherd-systest-%s.ids"
                     % re.sub(r"[^\w.-]", "_", self.image))
        with _Lock():
            try:
                old = [i[:11] for i in state.read_text().split()]
            except OSError:
                old = []
            if self.old:
                old.append(self.old[:11])
            for i in reversed(old):
                if i not in ids:
                    self.podman("rmi", i, check=False)
            state.write_text("\n".join(ids) + "\n")


@pytest.fixture(scope="session")
def image_builds(request, podman, base_image, tmp_path_factory):
    """Start the image builds that the selected tests need, together (they
    overlap their package downloads and compiles)."""
    names = set()
    for item in request.session.items:
        names |= set(getattr(item, "fixturenames", ()))
    logs = tmp_path_factory.mktemp("build")
    builds = {}
    if "systemd_image" in names or "sd" in names:
        ctx = logs / "context"
        _stage_source(ctx)
        builds["systemd"] = _Build(
            podman, SYSTEMD_IMAGE, ctx, logs / "systemd-image.log",
            ["-f", HERE / "Containerfile.systemd"])
    if "docker_image" in names:
        # The real thing: the Dockerfile with the repository as context
        # (and its .dockerignore).  docker format keeps the HEALTHCHECK.
        builds["docker"] = _Build(
            podman, DOCKER_IMAGE, REPO, logs / "docker-image.log",
            ["--format", "docker", "-f", REPO / "Dockerfile"])
    yield builds
    for b in builds.values():
        if b.proc.poll() is None:
            os.killpg(b.proc.pid, signal.SIGKILL)
            b.proc.wait()


def _image(builds, key):
    if key not in builds:
        pytest.fail("image %s was not scheduled" % key)
    status, what = builds[key].wait()
    if status != "ok":
        pytest.fail(what)
    return what


@pytest.fixture(scope="session")
def systemd_image(image_builds):
    return _image(image_builds, "systemd")


@pytest.fixture(scope="session")
def docker_image(image_builds):
    return _image(image_builds, "docker")


# ---------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, d):
        self.dir = d
        self.www = d / "www"
        self.www.mkdir()
        for name, size in DOCROOT_FILES.items():
            (self.www / name).write_bytes(b"x" * size)
        self.port = None

    def start(self):
        last = ""
        for _ in range(10):
            port = free_tcp_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(f"""
daemon on;
user root;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    types {{ text/plain txt; text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {self.www};
    }}
}}
""")
            r = subprocess.run([NGINX, "-c", str(conf), "-p", str(self.dir),
                                "-e", str(self.dir / "error.log")],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                self.port = port
                return
            last = r.stderr
        raise RuntimeError("nginx did not start: " + last[-2000:])

    def url(self, path):
        return "http://127.0.0.1:%d/%s" % (self.port, path.lstrip("/"))

    def stop(self):
        pidfile = self.dir / "nginx.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.05)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory):
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    n = Nginx(tmp_path_factory.mktemp("nginx"))
    n.start()
    yield n
    n.stop()


# ---------------------------------------------------------------- systemd

class SystemdContainer:
    """A container running systemd as PID 1 from the systemd image, on the
    host's network (so that it reaches the host's nginx), or on podman's
    default private network with network=None."""

    def __init__(self, podman, image, name, network="host"):
        self.podman, self.image, self.name = podman, image, name
        self.network = network

    def start(self):
        net = ["--network", self.network] if self.network else []
        self.podman("run", "-d", "--name", self.name, *self.podman.labels(),
                    "--privileged", *net,
                    "--systemd=always", self.image, timeout=120)
        state = {}

        def booted():
            r = self.sh("systemctl is-system-running", check=False,
                        timeout=15)
            state["last"] = r.stdout.strip()
            return state["last"] in ("running", "degraded")
        wait_for(booted, T_BOOT, interval=0.2, what="systemd to boot")
        if state["last"] == "degraded":
            failed = self.sh("systemctl --failed --no-legend --plain",
                             check=False).stdout
            print("\nsystemd is degraded in the container; failed units:\n"
                  + failed)

    def remove(self):
        self.podman("rm", "-f", "-t", "0", self.name, check=False,
                    timeout=120)

    def exec(self, *argv, check=True, timeout=T_SHORT, input=None,
             user=None):
        """Run argv in the container (as `user` through runuser)."""
        if user is not None:
            argv = ("runuser", "-u", user, "--") + tuple(argv)
        args = ["exec"] + (["-i"] if input is not None else []) + \
            [self.name] + list(argv)
        r = self.podman(*args, check=False, timeout=timeout, input=input)
        if check and r.returncode != 0:
            pytest.fail("in the container: %s: exit %d\nstdout:\n%s\n"
                        "stderr:\n%s" % (" ".join(argv), r.returncode,
                                         tail(r.stdout), tail(r.stderr)))
        return r

    def sh(self, script, **kw):
        return self.exec("sh", "-c", script, **kw)

    def show(self, *props, unit="gatherd.service"):
        r = self.exec("systemctl", "show", unit,
                      "--property=" + ",".join(props))
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def cursor(self):
        """A journal cursor: journal() with it returns only what comes
        after this point."""
        r = self.exec("journalctl", "-n", "0", "--show-cursor",
                      "--no-pager")
        m = re.search(r"^-- cursor: (\S+)", r.stdout, re.M)
        assert m, "no journal cursor in %r" % r.stdout
        return m.group(1)

    def journal(self, cursor=None, unit="gatherd.service"):
        """The messages about `unit` (its own output and systemd's lines
        about it), one a line, after `cursor` if given.

        The filtering is done here, not with `journalctl -u`: with a match,
        --after-cursor skips the first matching entry when the cursor's own
        entry does not match (journalctl skips two entries from the cursor
        position)."""
        argv = ["journalctl", "--no-pager", "-o", "json"]
        if cursor:
            argv.append("--after-cursor=" + cursor)
        r = self.exec(*argv, check=False)
        out = []
        for line in r.stdout.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if unit not in (e.get("_SYSTEMD_UNIT"), e.get("UNIT"),
                            e.get("OBJECT_SYSTEMD_UNIT")):
                continue
            msg = e.get("MESSAGE", "")
            if isinstance(msg, list):  # not UTF-8: an array of bytes
                msg = bytes(msg).decode("utf-8", "replace")
            out.append(msg or "")
        return "\n".join(out)

    def wait_journal(self, pattern, cursor=None, timeout=15,
                     unit="gatherd.service"):
        """Wait for a journal line of `unit` matching the regex."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.journal(cursor, unit)
            m = rx.search(text)
            if m:
                return m.group(0)
            if time.monotonic() >= deadline:
                full = self.exec("journalctl", "--no-pager", "-n", "40",
                                 "-o", "short-monotonic", check=False)
                pytest.fail("timed out after %.0f s waiting for a journal "
                            "line of %s matching %r; since the cursor:\n%s"
                            "\nlast 40 lines of the journal:\n%s"
                            % (timeout, unit, pattern, tail(text),
                               full.stdout))
            time.sleep(0.2)

    def sql(self, query, user="alice", check=True):
        """sqlite3 on the database, as a member of group gatherd."""
        r = self.exec("sqlite3", "-batch", "-separator", "|",
                      "/var/lib/gatherd/gatherd.db", query, user=user,
                      check=check)
        if not check:
            return r
        return [line.split("|") for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def sd(podman, systemd_image):
    """One booted systemd container for the tests of a module."""
    c = SystemdContainer(podman, systemd_image, podman.name("systemd"))
    try:
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def sd_private(podman, systemd_image):
    """One booted systemd container on podman's private network (nothing
    it starts can listen on the host), for the tests of a module."""
    c = SystemdContainer(podman, systemd_image, podman.name("private"),
                         network=None)
    try:
        c.start()
        yield c
    finally:
        c.remove()

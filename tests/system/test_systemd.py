"""gatherd under real systemd, in a podman container (systemd as PID 1).

The image (tests/system/Containerfile.systemd) installs gatherd with
`meson install --prefix /usr`, creates the gatherd user with systemd-sysusers
and two more users: alice (a member of group gatherd) and bob (not).  The
tmpfiles.d entry is applied at boot.  nginx runs on the host on 127.0.0.1;
the container shares the host's network.

The tests of this module share one container and run in order: the service
is started, fed URLs, reloaded, stopped.  Each test starts the service
itself when it needs it running, so one failure does not cascade.
"""

import datetime
import json
import re
import shlex
import time

import pytest

from sysutil import DOCROOT_FILES, REPO, wait_for

UNIT = "gatherd.service"
CONF = "/etc/gatherd/gatherd.conf"
STATE = "/var/lib/gatherd"
QUEUE = STATE + "/queue"


# ---------------------------------------------------------------- helpers

def ensure_active(sd):
    if sd.show("ActiveState")["ActiveState"] != "active":
        sd.exec("systemctl", "start", UNIT, timeout=60)
    assert sd.show("ActiveState")["ActiveState"] == "active"


def rows(sd, tag, user="alice"):
    """(url, state, status, length, error, fetched_at) of the rows whose URL
    carries `tag`, in submission order; read with sqlite3 as `user`."""
    return sd.sql("select url, state, status, length, error, fetched_at "
                  "from results where instr(url, '%s') > 0 order by id"
                  % ("t=" + tag + "&"), user=user)


def wait_done(sd, tag, n, timeout=30):
    """Wait until the n rows tagged `tag` have left state queued."""
    def done():
        r = rows(sd, tag)
        if len(r) == n and all(x[1] != "queued" for x in r):
            return r
        return None
    return wait_for(done, timeout, interval=0.2,
                    what="%d rows tagged %s to be fetched" % (n, tag))


def urls(nginx, tag, names):
    return [nginx.url("%s?t=%s&n=%d" % (name, tag, i))
            for i, name in enumerate(names)]


def iso(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def spread_s(result_rows):
    """Seconds between the first and the last fetched_at."""
    t = sorted(iso(r[5]) for r in result_rows)
    return (t[-1] - t[0]).total_seconds()


def write_conf(sd, text):
    sd.exec("sh", "-c", "cat > " + CONF, input=text)


@pytest.fixture
def saved_conf(sd):
    """Put the installed config back after the test."""
    sd.exec("cp", "-p", CONF, CONF + ".systest")
    yield
    sd.exec("mv", CONF + ".systest", CONF)
    if sd.show("ActiveState")["ActiveState"] == "active":
        sd.exec("systemctl", "reload", UNIT, timeout=60)


# ---------------------------------------------------------------- tests

def test_installed_layout(sd):
    """meson install put everything where a distribution's systemd finds
    it; sysusers made the user, tmpfiles (at boot) the state directory and
    the group-writable queue file."""
    frag = sd.show("FragmentPath", "LoadState")
    assert frag["LoadState"] == "loaded"
    assert frag["FragmentPath"] in ("/lib/systemd/system/gatherd.service",
                                    "/usr/lib/systemd/system/gatherd.service")
    unit = sd.exec("cat", frag["FragmentPath"]).stdout
    assert "ExecStart=/usr/bin/gatherd -c /etc/gatherd/gatherd.conf" in unit
    assert not re.search(r"@[A-Z_]+@", unit), "unconfigured @VAR@ in unit"

    installed = sd.exec("cat", CONF).stdout
    assert installed == (REPO / "config" / "gatherd.conf").read_text()
    for f in ("/usr/lib/sysusers.d/gatherd.conf",
              "/usr/lib/tmpfiles.d/gatherd.conf", "/usr/bin/gatherd"):
        sd.exec("test", "-f", f)

    pw = sd.exec("getent", "passwd", "gatherd").stdout.strip().split(":")
    assert int(pw[2]) < 1000, "gatherd is not a system user: %r" % pw
    assert pw[5] == STATE
    assert "gatherd" in sd.exec("id", "-nG", "alice").stdout.split()
    assert "gatherd" not in sd.exec("id", "-nG", "bob").stdout.split()

    st = sd.exec("stat", "-c", "%n %a %U %G", STATE, QUEUE).stdout.split("\n")
    assert st[0] == STATE + " 750 gatherd gatherd"
    assert st[1] == QUEUE + " 660 gatherd gatherd"

    r = sd.exec("gatherd", "check-config", user="alice")
    assert "max_in_flight = 64" in r.stdout

    # [Install] works: enable links it into multi-user.target.
    sd.exec("systemctl", "enable", UNIT)
    sd.exec("test", "-L", "/etc/systemd/system/multi-user.target.wants/"
            + UNIT)
    sd.exec("systemctl", "disable", UNIT)


def test_manual_pages(sd):
    """The manual pages are installed where man finds them by name (the
    image has scdoc and man-db), and the unit's Documentation= names them
    (systemd-analyze verify, in test_unit_verifies, looks them up too)."""
    for f in ("/usr/share/man/man8/gatherd.8",
              "/usr/share/man/man5/gatherd.conf.5"):
        sd.exec("test", "-f", f)
    doc = [d.strip('"') for d in
           sd.show("Documentation")["Documentation"].split()]
    assert doc[:2] == ["man:gatherd(8)", "man:gatherd.conf(5)"], doc
    page = sd.sh("MANWIDTH=80 man gatherd | col -bx", user="alice").stdout
    assert re.search(r"^NAME\n\s+gatherd - fetch the URLs", page, re.M), \
        page[:2000]
    for heading in ("SYNOPSIS", "SIGNALS", "EXIT STATUS", "SEE ALSO"):
        assert re.search(r"^%s$" % heading, page, re.M), heading
    conf = sd.sh("MANWIDTH=80 man 5 gatherd.conf | col -bx",
                 user="alice").stdout
    assert re.search(r"^ +max_in_flight$", conf, re.M), conf[:2000]


def test_bash_completion(sd):
    """bash-completion's loader finds the installed completion by the
    command's name, and it completes gatherd's commands."""
    script = ("source /usr/share/bash-completion/bash_completion; "
              "_completion_loader gatherd; complete -p gatherd; "
              "COMP_WORDS=(gatherd che); COMP_CWORD=1; _gatherd; "
              "echo \"${COMPREPLY[*]}\"")
    r = sd.exec("bash", "-c", script, user="alice")
    assert r.stdout.splitlines() == ["complete -F _gatherd gatherd",
                                     "check-config"], r.stdout + r.stderr


def test_unit_security_exposure(sd):
    """systemd-analyze security --offline=true rates the unit <= 2.0."""
    path = sd.show("FragmentPath")["FragmentPath"]
    r = sd.exec("systemd-analyze", "security", "--offline=true", path,
                "--no-pager", check=False)
    m = re.search(r"Overall exposure level for gatherd\.service: "
                  r"(\d+(?:\.\d+)?)", r.stdout)
    assert m, "no exposure level in:\n" + r.stdout[-3000:] + r.stderr
    level = float(m.group(1))
    print("\nexposure level %.1f" % level)
    assert level <= 2.0, r.stdout[-3000:]


def test_unit_verifies(sd):
    """systemd-analyze verify finds nothing to complain about."""
    path = sd.show("FragmentPath")["FragmentPath"]
    r = sd.exec("systemd-analyze", "verify", path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "gatherd" not in r.stderr, r.stderr


def test_start(sd):
    """Type=notify: `systemctl start` returns once gatherd said READY=1;
    the daemon runs as gatherd with the unit's sandbox and umask."""
    cur = sd.cursor()
    sd.exec("systemctl", "start", UNIT, timeout=60)
    p = sd.show("ActiveState", "SubState", "Type", "MainPID", "StatusText",
                "NRestarts", "Result")
    assert (p["ActiveState"], p["SubState"]) == ("active", "running"), p
    assert p["Type"] == "notify"
    assert p["NRestarts"] == "0"
    assert p["StatusText"], "no STATUS= from gatherd: %r" % p
    pid = p["MainPID"]
    assert pid != "0"

    status = sd.exec("cat", "/proc/%s/status" % pid).stdout
    fields = dict(re.findall(r"^(\w+):\s*(.*)$", status, re.M))
    uid = sd.exec("id", "-u", "gatherd").stdout.strip()
    assert fields["Uid"].split()[0] == uid, fields["Uid"]
    assert fields["Umask"] == "0007"
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"
    assert fields["CapEff"] == "0000000000000000"

    sd.wait_journal(r"ready: queue /var/lib/gatherd/queue, database "
                    r"/var/lib/gatherd/gatherd\.db", cur)
    sd.wait_journal(r"Started gatherd\.service", cur)


def test_submit_as_group_member(sd, nginx):
    """A member of group gatherd submits with `gatherd submit` and with a
    plain append, and reads the results with sqlite3 and gatherd status."""
    ensure_active(sd)
    tag = "submit"
    u = urls(nginx, tag, ["a.txt", "b.bin", "c.html", "missing", "a.txt"])

    r = sd.exec("gatherd", "submit", u[0], u[1], user="alice", check=False)
    assert r.returncode == 0, r.stderr
    assert "queued 2 URLs" in r.stderr

    # Any rejected URL: exit 2, the valid ones are still queued.
    r = sd.exec("gatherd", "submit", u[2], "ftp://127.0.0.1/x", user="alice",
                check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "rejected" in r.stderr

    # From standard input.
    r = sd.exec("gatherd", "submit", "-", user="alice", input=u[3] + "\n",
                check=False)
    assert r.returncode == 0, r.stderr

    # Plain append, as the README says producers do.
    sd.exec("sh", "-c", "echo %s >> %s" % (shlex.quote(u[4]), QUEUE),
            user="alice")

    got = wait_done(sd, tag, 5)
    assert [x[0] for x in got] == u
    sizes = [DOCROOT_FILES["a.txt"], DOCROOT_FILES["b.bin"],
             DOCROOT_FILES["c.html"], None, DOCROOT_FILES["a.txt"]]
    for (url, state, status, length, error, _), size in zip(got, sizes):
        assert state == "done", (url, state, error)
        assert error == ""
        if size is None:
            assert status == "404"
        else:
            assert (status, length) == ("200", str(size)), url

    q = sd.exec("cat", QUEUE, user="alice").stdout
    assert "ftp://" not in q
    assert all(x + "\n" in q for x in u)

    r = sd.exec("gatherd", "status", "--json", user="alice")
    st = json.loads(r.stdout)
    assert st["queued"] == 0
    assert st["done"] >= 5


def test_non_member_is_refused(sd, nginx):
    """A user outside group gatherd can neither submit nor read results."""
    ensure_active(sd)
    r = sd.exec("gatherd", "submit", nginx.url("a.txt?t=bob&n=0"),
                user="bob", check=False)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    r = sd.exec("sh", "-c", "echo %s >> %s"
                % (nginx.url("a.txt?t=bob&n=1"), QUEUE), user="bob",
                check=False)
    assert r.returncode != 0
    r = sd.sql("select count(*) from results", user="bob", check=False)
    assert r.returncode != 0
    assert sd.sql("select count(*) from results where instr(url, 't=bob&')",
                  user="root") == [["0"]]


def test_reload_good_config(sd, nginx, saved_conf):
    """`systemctl reload` with a valid file: the new limits apply at once
    (host_delay_ms spaces the requests to one host), it is logged, and the
    process is the same."""
    ensure_active(sd)
    pid = sd.show("MainPID")["MainPID"]
    write_conf(sd, "[gatherd]\nstats_interval_s = 1\n"
                   "[fetch]\nmax_in_flight = 7\nmax_per_host = 2\n"
                   "host_delay_ms = 400\n")
    cur = sd.cursor()
    sd.exec("systemctl", "reload", UNIT, timeout=60)
    sd.wait_journal(r"^configuration reloaded$", cur)
    j = sd.journal(cur)
    assert "need a restart" not in j, j
    sd.wait_journal(r"Reloaded gatherd\.service", cur)
    p = sd.show("ActiveState", "SubState", "MainPID", "NRestarts")
    assert (p["ActiveState"], p["SubState"]) == ("active", "running"), p
    assert p["MainPID"] == pid
    assert p["NRestarts"] == "0"

    tag = "reload-good"
    u = urls(nginx, tag, ["a.txt"] * 3)
    sd.exec("gatherd", "submit", *u, user="alice")
    got = wait_done(sd, tag, 3)
    assert all(x[1] == "done" for x in got), got
    # Three requests to one host, at least 400 ms apart.
    assert spread_s(got) >= 0.75, got


def test_reload_fixed_option_is_reported(sd, saved_conf):
    """Changing an option that needs a restart is said in the log."""
    ensure_active(sd)
    write_conf(sd, "[dns]\ntimeout_ms = 1234\n")
    cur = sd.cursor()
    sd.exec("systemctl", "reload", UNIT, timeout=60)
    line = sd.wait_journal(r"^configuration reloaded.*$", cur)
    assert "need a restart" in line, line
    assert sd.show("ActiveState")["ActiveState"] == "active"


def test_reload_bad_config_is_refused(sd, nginx, saved_conf):
    """`systemctl reload` with an invalid file: refused with file, line and
    key in the log, the old configuration stays in force (here its
    host_delay_ms), and the service stays active with the same process."""
    ensure_active(sd)
    write_conf(sd, "[fetch]\nhost_delay_ms = 400\n")
    sd.exec("systemctl", "reload", UNIT, timeout=60)
    pid = sd.show("MainPID")["MainPID"]

    write_conf(sd, "[fetch]\nhost_delay_ms = 0\nmax_in_flight = many\n")
    # ExecReload checks the file first: the reload itself fails, with the
    # file, line and key in the journal, and the daemon is not signalled.
    cur = sd.cursor()
    r = sd.exec("systemctl", "reload", UNIT, check=False, timeout=60)
    assert r.returncode != 0, "systemctl reload of an invalid file succeeded"
    line = sd.wait_journal(
        r"/etc/gatherd/gatherd\.conf:3: \[fetch\] max_in_flight.*$", cur)
    assert "/etc/gatherd/gatherd.conf:3:" in line, line
    # A SIGHUP that reaches the daemon anyway (kill -HUP) is refused by the
    # daemon itself, which keeps its configuration.
    cur = sd.cursor()
    sd.exec("systemctl", "kill", "-s", "HUP", "--kill-whom=main", UNIT,
            timeout=60)
    line = sd.wait_journal(r"^reload refused.*$", cur)
    assert "/etc/gatherd/gatherd.conf:3:" in line, line
    assert "max_in_flight" in line, line
    p = sd.show("ActiveState", "SubState", "MainPID", "NRestarts")
    assert (p["ActiveState"], p["SubState"]) == ("active", "running"), p
    assert p["MainPID"] == pid
    assert p["NRestarts"] == "0"

    # (gatherd submit reads the now invalid file: append by hand.)
    tag = "reload-bad"
    u = urls(nginx, tag, ["a.txt"] * 3)
    sd.exec("sh", "-c", "printf '%%s\\n' %s >> %s"
            % (" ".join(shlex.quote(x) for x in u), QUEUE), user="alice")
    got = wait_done(sd, tag, 3)
    assert all(x[1] == "done" for x in got), got
    assert spread_s(got) >= 0.75, "old host_delay_ms not kept: %r" % got


def test_status_text(sd):
    """STATUS= carries the periodic stats line (systemctl status)."""
    ensure_active(sd)

    def stats():
        t = sd.show("StatusText")["StatusText"]
        return t if re.match(r"fetched \d+ \(done \d+, failed \d+\)", t) \
            else None
    wait_for(stats, 15, interval=0.5, what="a stats line in StatusText")


def test_watchdog(sd):
    """gatherd pings the watchdog: with WatchdogSec=2s (drop-in) it runs on
    without being killed, and systemd saw its pings."""
    dropin = "/run/systemd/system/gatherd.service.d"
    sd.exec("mkdir", "-p", dropin)
    sd.exec("sh", "-c", "printf '[Service]\\nWatchdogSec=2s\\n' > %s/"
            "systest-watchdog.conf" % dropin)
    try:
        sd.exec("systemctl", "daemon-reload", timeout=60)
        cur = sd.cursor()
        sd.exec("systemctl", "restart", UNIT, timeout=60)
        p0 = sd.show("MainPID", "WatchdogUSec", "WatchdogTimestampMonotonic",
                     "NRestarts")
        assert p0["WatchdogUSec"] == "2s", p0

        def pinged_since():
            p = sd.show("WatchdogTimestampMonotonic")
            return int(p["WatchdogTimestampMonotonic"]) > \
                int(p0["WatchdogTimestampMonotonic"])
        wait_for(pinged_since, 5, interval=0.2, what="a WATCHDOG=1 ping")
        time.sleep(5)  # 2.5 watchdog periods
        p1 = sd.show("ActiveState", "MainPID", "NRestarts", "Result")
        assert p1["ActiveState"] == "active", p1
        assert p1["MainPID"] == p0["MainPID"], (p0, p1)
        assert p1["NRestarts"] == p0["NRestarts"], (p0, p1)
        assert "watchdog" not in sd.journal(cur).lower()
    finally:
        sd.exec("rm", "-rf", dropin)
        sd.exec("systemctl", "daemon-reload", timeout=60)
        sd.exec("systemctl", "restart", UNIT, timeout=60)


def test_stop(sd, nginx):
    """`systemctl stop`: SIGTERM, gatherd says it is stopping, exits 0; the
    unit is inactive (not failed); a new start keeps every row."""
    ensure_active(sd)
    before = sd.sql("select count(*) from results")[0][0]
    cur = sd.cursor()
    sd.exec("systemctl", "stop", UNIT, timeout=60)
    # (An inactive unit is garbage-collected at once, so its ExecMain*
    # properties are gone: the exit is judged from the journal.)
    p = sd.show("ActiveState", "SubState", "Result", "MainPID")
    assert (p["ActiveState"], p["SubState"]) == ("inactive", "dead"), p
    assert p["Result"] == "success", p
    assert p["MainPID"] == "0"
    r = sd.exec("systemctl", "is-active", UNIT, check=False)
    assert r.stdout.strip() == "inactive"
    sd.wait_journal(r"^SIGTERM: stopping", cur)
    sd.wait_journal(r"^finished: \d+ fetched", cur)
    sd.wait_journal(r"gatherd\.service: Deactivated successfully", cur)
    sd.wait_journal(r"Stopped gatherd\.service", cur)
    j = sd.journal(cur)
    assert "Main process exited" not in j, j
    assert "Failed with result" not in j, j

    sd.exec("systemctl", "start", UNIT, timeout=60)
    assert sd.sql("select count(*) from results")[0][0] == before
    sd.exec("systemctl", "stop", UNIT, timeout=60)


def test_group_member_reads_results_while_stopped(sd):
    ensure_active(sd)  # the database exists
    sd.exec("systemctl", "stop", UNIT, timeout=60)
    r = sd.sql("select count(*) from results", check=False)
    assert r.returncode == 0, r.stderr
    r = sd.exec("gatherd", "status", user="alice", check=False)
    assert r.returncode == 0, r.stderr

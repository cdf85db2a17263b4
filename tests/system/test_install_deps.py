"""scripts/install-deps on a Debian 12 machine with systemd running: it
installs what is missing and never starts, stops, disables or otherwise
touches a service, and leaves an administrator's policy-rc.d alone.

It runs in a container of the systemd image (systemd as PID 1, every
package scripts/run needs already there, the source tree in /src) on
podman's private network, not the host's: should a service start after all,
it listens inside the container only.  Installing the packages fetches them
from the Debian archive, as building the images does."""

import time

import pytest

POLICY = "/usr/sbin/policy-rc.d"
INSTALL_DEPS = "/src/scripts/install-deps"
T_APT = 600


@pytest.fixture(scope="module")
def box(sd_private):
    return sd_private


def state(box, unit):
    """(is-active, is-enabled) of a unit."""
    a = box.exec("systemctl", "is-active", unit, check=False).stdout.strip()
    e = box.exec("systemctl", "is-enabled", unit, check=False).stdout.strip()
    return a, e


def installed(box, pkg):
    r = box.exec("dpkg-query", "-W", "-f=${db:Status-Status}", pkg,
                 check=False)
    return r.stdout.strip() == "installed"


def test_postinst_does_not_start_the_service(box):
    """nginx-light's postinst starts nginx (it would take port 80); under
    install-deps it is installed and enabled, as the package sets it up,
    but not running; the temporary policy-rc.d is gone afterwards."""
    box.exec("test", "!", "-e", POLICY)
    assert not installed(box, "nginx-light")
    r = box.exec(INSTALL_DEPS, "nginx-light", timeout=T_APT)
    assert "install-deps: installing nginx-light" in r.stderr
    assert installed(box, "nginx-light")
    assert state(box, "nginx.service") == ("inactive", "enabled")
    assert box.exec("pgrep", "-x", "nginx", check=False).returncode == 1
    box.exec("test", "!", "-e", POLICY)

    # Everything there: only dpkg-query is asked (no apt-get, no output).
    t0 = time.monotonic()
    r = box.exec(INSTALL_DEPS, "nginx-light")
    assert (r.stdout, r.stderr) == ("", "")
    assert time.monotonic() - t0 < 10


def test_running_service_is_left_alone(box):
    """A service that runs while install-deps installs another package
    (tinyproxy, whose postinst starts it too) keeps running, same process;
    the new one does not start."""
    box.exec("systemctl", "start", "nginx.service", timeout=60)
    pid = box.show("MainPID", unit="nginx.service")["MainPID"]
    assert pid != "0"
    box.exec(INSTALL_DEPS, "tinyproxy", timeout=T_APT)
    assert installed(box, "tinyproxy")
    assert state(box, "tinyproxy.service")[0] == "inactive"
    assert state(box, "nginx.service")[0] == "active"
    assert box.show("MainPID", unit="nginx.service")["MainPID"] == pid
    box.exec("test", "!", "-e", POLICY)


def test_policy_of_the_administrator_is_kept(box):
    """A policy-rc.d that is not install-deps' own stays as it is; one that
    a killed install-deps left behind (its marker line) is replaced for the
    run and removed."""
    admin = "#!/bin/sh\n# the administrator's\nexit 0\n"
    box.exec("sh", "-c", "cat > %s && chmod 755 %s" % (POLICY, POLICY),
             input=admin)
    r = box.exec(INSTALL_DEPS, "hello", timeout=T_APT)
    assert "policy-rc.d exists and is not ours: left as it is" in r.stderr
    assert installed(box, "hello")
    assert box.exec("cat", POLICY).stdout == admin

    stale = ("#!/bin/sh\n# gatherd scripts/install-deps: temporary, "
             "removed after its apt-get\nexit 0\n")
    box.exec("sh", "-c", "cat > %s && chmod 755 %s" % (POLICY, POLICY),
             input=stale)
    box.exec(INSTALL_DEPS, "cowsay", timeout=T_APT)
    assert installed(box, "cowsay")
    box.exec("test", "!", "-e", POLICY)

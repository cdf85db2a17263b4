"""Many gatherd nodes sharing one PostgreSQL database ([store] backend =
postgresql), against a private cluster (pg_helpers.py) and the fault server
listening on 0.0.0.0, so that 127.0.0.1 .. 127.0.0.200 are 200 hosts whose
concurrency the server counts (by_ip).

- three nodes, 50,000 URLs over 200 hosts, each node ingesting its own
  queue file (and some rows submitted with submit --direct): every URL
  has exactly one result; per-host concurrency never exceeds max_per_host
  across the cluster; one node killed with SIGKILL mid-run and another
  restarted: nothing lost, nothing doubled, and the killed node's rows are
  finished by the others once its lease ran out;
- PostgreSQL restarted mid-run (pg_ctl restart): the nodes say so,
  reconnect, and lose nothing.
"""

import os
import random
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import Gatherd, free_tcp_port, pg_database_for
from pg_helpers import wait_until

N_HOSTS = 200
PER_HOST = 250          # 50,000 URLs
MAX_PER_HOST = 2
LEASE_S = 5


def make_nodes(request, gatherd_bin, tmp_path, names, **sections):
    pg, db = pg_database_for(request, gatherd_bin)
    nodes = []
    for name in names:
        g = Gatherd(gatherd_bin, tmp_path / name, pg=pg, pg_db=db, node=name)
        base = {
            "gatherd": {"stats_interval_s": 1},
            "fetch": {"max_in_flight": 64, "max_per_host": MAX_PER_HOST,
                      "retries": 0, "robots": "false",
                      "request_timeout_ms": 60000},
            "store": {"lease_s": LEASE_S},
        }
        for sec, kv in sections.items():
            base.setdefault(sec, {}).update(kv)
        g.write_config(**base)
        g.write_queue([])
        nodes.append(g)
    request.addfinalizer(lambda: [g.cleanup() for g in nodes])
    return pg, db, nodes


def url(fault, i, ms):
    host = "127.0.0.%d" % (1 + i % N_HOSTS)
    return fault.url("/slow?ms=%d&len=100&n=%d" % (ms, i), host=host)


def counts(g):
    return {r["state"]: r["n"] for r in g.query(
        "SELECT state, count(*) AS n FROM results GROUP BY state")}


def wait_spread(g, n):
    """Until each of the n live nodes holds its share of the host shards
    (1024 / n, give or take the rounding)."""
    def spread():
        held = [r["shards"] for r in g.query(
            "SELECT count(s.shard) AS shards FROM nodes n LEFT JOIN shards s "
            "ON s.node_id = n.id AND s.lease_until > now() "
            "WHERE n.stopped_at IS NULL GROUP BY n.id")]
        return len(held) == n and all(h >= 1024 // n - 1 for h in held)
    wait_until(spread, 30, "the shards spread over %d nodes" % n)


def node_ids(g, name):
    return [r["id"] for r in g.query(
        "SELECT id FROM nodes WHERE name = ? ORDER BY id", (name,))]


def test_three_nodes_kill_and_restart(request, gatherd_bin, tmp_path,
                                      fault_server):
    pg, db, (a, b, c) = make_nodes(request, gatherd_bin, tmp_path,
                                   ["n1", "n2", "n3"])
    procs = {}
    for g in (a, b, c):
        procs[g.node] = g.start()
    for g in (a, b, c):
        g.wait_ready(procs[g.node])
    # Every node holds its share of the host shards before work comes.
    wait_spread(a, 3)

    urls = [url(fault_server, i, 20) for i in range(N_HOSTS * PER_HOST)]
    # Each node's queue file gets a third; the last 2,000 are submitted
    # straight into the database.
    direct = urls[-2000:]
    rest = urls[:-2000]
    for k, g in enumerate((a, b, c)):
        g.write_queue(rest[k::3], mode="a")
    sub = Gatherd(gatherd_bin, tmp_path / "submitter", pg=pg, pg_db=db,
                  node="n1")
    sub.write_config(store={"node_name": "submitter"})
    cp = subprocess.run([gatherd_bin, "submit", "--direct", "-c",
                         str(sub.conf), "-"], input="\n".join(direct) + "\n",
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "queued 2000 URLs" in cp.stderr, cp.stderr

    total = len(urls)
    # A third of the way: kill n2 outright.
    wait_until(lambda: counts(a).get("done", 0) >= total // 3, 300,
               "a third of the rows done")
    b_id = node_ids(a, "n2")[-1]
    procs["n2"].send_signal(signal.SIGKILL)
    procs["n2"].wait(timeout=30)
    killed_ms = int(time.time() * 1000)
    # What it held when it died: nobody can take those rows before its
    # lease runs out, seconds from now.
    held = {r["id"]: r["url"] for r in a.query(
        "SELECT id, url FROM urls WHERE state = 0 AND claimed_by = ?",
        (b_id,))}
    assert held, "n2 held no rows when it was killed"

    # And restart n3 (a clean stop gives its rows and shards back).
    wait_until(lambda: counts(a).get("done", 0) >= total // 2, 300,
               "half the rows done")
    rc, _ = c.stop(procs["n3"])
    assert rc == 0
    procs["n3"] = c.start()
    c.wait_ready(procs["n3"])

    wait_until(lambda: counts(a).get("done", 0) == total, 600,
               "every row done")
    for name in ("n1", "n3"):
        g = a if name == "n1" else c
        rc, _ = g.stop(procs[name])
        assert rc == 0, g.stderr_of(procs[name])[-3000:]

    # Every URL exactly once, all fetched.
    rows = a.query("SELECT url, state, status FROM results")
    assert len(rows) == total
    assert {r["url"] for r in rows} == set(urls)
    assert all(r["state"] == "done" and r["status"] == 200 for r in rows)

    st = fault_server.stats()
    # Politeness across the cluster: no host ever saw more than
    # max_per_host requests at once, whichever nodes sent them.
    worst = max(s["max_concurrent"] for ip, s in st["by_ip"].items())
    assert worst <= MAX_PER_HOST, {
        ip: s for ip, s in st["by_ip"].items()
        if s["max_concurrent"] > MAX_PER_HOST}
    # Fetched at least once each; more than once only rows n2 held when
    # it died (in flight, or fetched with the result not yet written):
    # the others fetched them again.
    seen = {t.lstrip("/"): n for t, n in st["by_target"].items()}
    path = {u: u.split("/", 3)[3] for u in urls}
    assert all(seen.get(path[u], 0) >= 1 for u in urls)
    again = {u for u in urls if seen.get(path[u], 0) > 1}
    assert again <= set(held.values()), again - set(held.values())
    assert all(seen.get(path[u], 0) == 2 for u in again)

    # n2's rows were finished by the others, once its lease ran out.
    ids = ",".join(str(i) for i in held)
    late = a.query("SELECT id, claimed_by, fetched_at FROM urls WHERE id IN "
                   "(%s)" % ids)
    taken = [r for r in late if r["claimed_by"] != b_id]
    assert taken, "no row of n2's was taken over"
    tick_ms = LEASE_S * 1000 // 3
    for r in taken:
        assert r["fetched_at"] >= killed_ms + LEASE_S * 1000 - tick_ms - 1000, \
            (r, killed_ms)

    # status shows each node.
    cp = a.run("status")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    for name in ("n1", "n2", "n3"):
        assert "  %s " % name in out, out
    assert "lost" in out and "stopped" in out, out


def test_database_restart(request, gatherd_bin, tmp_path, fault_server):
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path, ["r1", "r2"])
    procs = {g.node: g.start() for g in (a, b)}
    for g in (a, b):
        g.wait_ready(procs[g.node])
    urls = [url(fault_server, i, 10) for i in range(6000)]
    a.write_queue(urls[0::2], mode="a")
    b.write_queue(urls[1::2], mode="a")
    wait_until(lambda: counts(a).get("done", 0) >= 1500, 300,
               "a quarter of the rows done")
    pg.restart()
    # More lines while the nodes reconnect.
    extra = [url(fault_server, i, 10) for i in range(6000, 7000)]
    a.write_queue(extra, mode="a")
    total = len(urls) + len(extra)
    wait_until(lambda: counts(a).get("done", 0) == total, 300,
               "every row done after the restart")
    for g in (a, b):
        rc, _ = g.stop(procs[g.node])
        assert rc == 0
        err = g.stderr_of(procs[g.node])
        assert "lost the connection to PostgreSQL" in err, err[-3000:]
        assert "reconnected to PostgreSQL" in err, err[-3000:]
    rows = a.query("SELECT url, state FROM results")
    assert len(rows) == total
    assert {r["url"] for r in rows} == set(urls + extra)
    assert all(r["state"] == "done" for r in rows)


def test_same_node_twice_refused(request, gatherd_bin, tmp_path):
    """Two processes with one node name and queue file would ingest the
    file twice: the second is refused (a session lock in the database),
    while a second node name on the same database is welcome."""
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path, ["s1", "s2"])
    p1 = a.start()
    a.wait_ready(p1)
    twin = Gatherd(gatherd_bin, tmp_path / "twin", pg=pg, pg_db=db,
                   node="s1")
    # The same name and the same queue file (the path of a's).
    twin.write_config(gatherd={"queue_file": str(a.queue)},
                      store={"node_name": "s1"})
    t0 = time.monotonic()
    cp = twin.run("--once", timeout=60)
    assert cp.returncode == 1, cp.stderr
    assert "another gatherd runs as node s1" in cp.stderr, cp.stderr
    assert time.monotonic() - t0 < 30
    p2 = b.start()
    b.wait_ready(p2)
    for g, p in ((a, p1), (b, p2)):
        rc, _ = g.stop(p)
        assert rc == 0


def test_password_only_from_the_environment(request, gatherd_bin, tmp_path,
                                            fault_server):
    """A role that needs a password: gatherd connects with PGPASSWORD from
    the environment (or a .pgpass file), never writes the password in its
    log, and refuses a conninfo that holds one without repeating it."""
    pg, db = pg_database_for(request, gatherd_bin)
    secret = "Zq7-not-in-any-log-%d" % time.monotonic_ns()
    role = "pw_%d" % (time.monotonic_ns() % 10**9)
    pg.psql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, secret))
    pg.psql("postgres", "GRANT ALL ON DATABASE %s TO %s" % (db, role))
    pg.psql(db, "GRANT ALL ON SCHEMA public TO %s" % role)
    pg.require_password(role)
    g = Gatherd(gatherd_bin, tmp_path / "pw", pg=pg, pg_db=db, node="pw")
    conninfo = "host=127.0.0.1 port=%d dbname=%s user=%s" % (pg.port, db,
                                                             role)
    g.write_config(store={"conninfo": conninfo})
    g.write_queue([fault_server.url("/ok?len=5")])

    def run(env_extra):
        env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
        env["PGPASSFILE"] = "/nonexistent"
        env.update(env_extra)
        return subprocess.run([gatherd_bin, "--once", "-c", str(g.conf)],
                              capture_output=True, text=True, timeout=60,
                              env=env, cwd=g.root)

    cp = run({})
    assert cp.returncode == 1, cp.stderr
    assert "password" in cp.stderr.lower() and secret not in cp.stderr
    cp = run({"PGPASSWORD": secret + "x"})
    assert cp.returncode == 1 and secret not in cp.stderr, cp.stderr
    cp = run({"PGPASSWORD": secret})
    assert cp.returncode == 0, cp.stderr
    assert secret not in cp.stderr
    passfile = tmp_path / "pgpass"
    passfile.write_text("127.0.0.1:%d:%s:%s:%s\n" % (pg.port, db, role,
                                                    secret))
    passfile.chmod(0o600)
    g.write_queue([fault_server.url("/ok?len=6")], mode="a")
    cp = run({"PGPASSFILE": str(passfile)})
    assert cp.returncode == 0, cp.stderr
    assert secret not in cp.stderr
    assert [r["length"] for r in g.rows()] == [5, 6]
    # In the configuration: refused at once, and not repeated.
    g.write_config(store={"conninfo": conninfo + " password=" + secret})
    cp = g.run("check-config")
    assert cp.returncode == 2
    assert "must not hold a password" in cp.stderr
    assert secret not in cp.stderr and secret not in cp.stdout


def test_submit_direct_database_down(gatherd_bin, tmp_path):
    """submit --direct with the database out of reach: more URLs than one
    batch holds (10,000) are counted, not kept (they once overran the
    batch), and the message says none were queued."""
    g = Gatherd(gatherd_bin, tmp_path / "down")
    port = free_tcp_port("127.0.0.1")  # nothing listens there
    g.write_config(store={"backend": "postgresql",
                          "conninfo": "host=127.0.0.1 port=%d dbname=x "
                                      "connect_timeout=5" % port})
    urls = ["http://127.0.0.1:9/%d" % i for i in range(25000)]
    cp = subprocess.run([gatherd_bin, "submit", "--direct", "-c",
                         str(g.conf), "-"], input="\n".join(urls) + "\n",
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 1, cp.stderr
    assert "queued 0 of 25000 URLs" in cp.stderr, cp.stderr
    assert "cannot insert into the database" in cp.stderr
    g.cleanup()


def test_queue_path_not_utf8(request, gatherd_bin, tmp_path, fault_server):
    """A queue file whose name is not UTF-8 (Latin-1 "é"): its path is a
    text parameter in PostgreSQL, which refuses such bytes, so it is
    stored repaired, and the node ingests and fetches as usual."""
    pg, db = pg_database_for(request, gatherd_bin)
    g = Gatherd(gatherd_bin, tmp_path / "latin1", pg=pg, pg_db=db,
                node="latin1")
    qpath = os.path.join(os.fsencode(g.root), b"qu\xe9ue")
    g.write_config(gatherd={"queue_file": "QUEUE-PATH"})
    g.conf.write_bytes(g.conf.read_bytes().replace(b"QUEUE-PATH", qpath))
    with open(qpath, "wb") as f:
        f.write(fault_server.url("/ok?len=7").encode() + b"\n")
    cp = g.run("--once", timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert [(r["state"], r["length"]) for r in g.rows()] == [("done", 7)]
    g.cleanup()


class FreezableProxy:
    """A TCP forwarder to PostgreSQL for one node: freeze() stops moving
    bytes both ways (a network partition: the node's statements hang,
    nothing is refused), cut() closes every connection and every new one
    at once (the database unreachable: statements fail), thaw() moves
    bytes again."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.moving = threading.Event()
        self.moving.set()
        self.cutting = False
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.lsock], [], [], 0.2)
            if not r:
                continue
            c, _ = self.lsock.accept()
            if self.cutting:
                c.close()
                continue
            u = socket.create_connection(self.target)
            t = threading.Thread(target=self._pump, args=(c, u),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, a, b):
        peer = {a: b, b: a}
        try:
            while not self.stopping and not self.cutting:
                self.moving.wait(0.2)
                if not self.moving.is_set():
                    continue
                r, _, _ = select.select([a, b], [], [], 0.2)
                for s in r:
                    if not self.moving.is_set():
                        break
                    data = s.recv(65536)
                    if not data:
                        return
                    peer[s].sendall(data)
        except OSError:
            pass
        finally:
            a.close()
            b.close()

    def freeze(self):
        self.moving.clear()

    def cut(self):
        self.cutting = True
        self.moving.set()

    def thaw(self):
        self.cutting = False
        self.moving.set()

    def close(self):
        self.stopping = True
        self.moving.set()
        for t in self.threads:
            t.join(timeout=5)
        self.lsock.close()


def start_proxied_pair(request, gatherd_bin, tmp_path, lease_s, fetch):
    """Nodes p1 and p2 on one database, p1 reaching it through a
    FreezableProxy, both running with the shards spread over them:
    (p1, p2, p1's process, p2's process, the proxy)."""
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path,
                                ["p1", "p2"], fetch=fetch,
                                store={"lease_s": lease_s})
    proxy = FreezableProxy(pg.port)
    request.addfinalizer(proxy.close)
    fa = {"retries": 0, "robots": "false", "request_timeout_ms": 60000}
    fa.update(fetch)
    a.write_config(fetch=fa, gatherd={"stats_interval_s": 1},
                   store={"lease_s": lease_s,
                          "conninfo": pg.conninfo(db).replace(
                              "port=%d" % pg.port, "port=%d" % proxy.port)})
    pa, pb = a.start(), b.start()
    a.wait_ready(pa)
    b.wait_ready(pb)
    wait_spread(a, 2)
    return a, b, pa, pb, proxy


def partition_p1_until_taken_over(a, pa, proxy, lease_s, what):
    """Cut p1 off from the database, wait for it to abort `what` before
    its lease ends, and keep it cut off until p2 has taken its shards
    (2.5 leases)."""
    proxy.freeze()
    frozen = time.monotonic()
    wait_until(lambda: "aborted" in a.stderr_of(pa), lease_s + 5,
               "p1 aborting its %s before its lease ends" % what)
    time.sleep(max(0.0, frozen + 2.5 * lease_s - time.monotonic()))


def stop_pair_all_done(a, b, pa, pb, urls, timeout=90):
    """Wait for every row done, stop both nodes, and check that each URL
    ended as exactly one done row."""
    wait_until(lambda: counts(b).get("done", 0) == len(urls), timeout,
               "every row done")
    for g, p in ((a, pa), (b, pb)):
        rc, _ = g.stop(p)
        assert rc == 0, g.stderr_of(p)[-3000:]
    rows = b.query("SELECT url, state FROM results")
    assert sorted(r["url"] for r in rows) == sorted(urls)
    assert all(r["state"] == "done" for r in rows)


@pytest.mark.parametrize("partition", ["hang", "cut"])
def test_partitioned_node_stops_fetching(request, gatherd_bin, tmp_path,
                                         fault_server, partition):
    """A node cut off from the database (its connection hangs, as in a
    network partition, or every statement fails) stops starting fetches
    before its leases can run out, so that when another node takes its
    host shards no host is fetched by both; when the connection comes
    back it drops the rows it lost before it starts fetches again (with
    "cut", the first renewal after the partition both finds them lost and
    lets the node fetch), and every URL still ends as exactly one row."""
    lease_s = 6
    a, b, pa, pb, proxy = start_proxied_pair(
        request, gatherd_bin, tmp_path, lease_s,
        {"max_per_host": 1, "max_in_flight": 16})
    # 150 ms each, 15 s of work per host: p1's window (1,024 rows, 12 or
    # so hosts at one request each) lasts past its fence, so that it
    # still has fetches to hold back when its leases run out.
    hosts, per_host = 24, 100
    urls = [fault_server.url("/slow?ms=150&len=10&n=%d" % i,
                             host="127.0.0.%d" % (1 + i % hosts))
            for i in range(hosts * per_host)]
    a.write_queue(urls, mode="a")
    wait_until(lambda: counts(a).get("done", 0) >= len(urls) // 10, 120,
               "a tenth of the rows done")
    if partition == "hang":
        proxy.freeze()
    else:
        proxy.cut()
    frozen = time.monotonic()
    # p2 takes p1's shards once their leases ran out, and fetches their
    # rows while p1, which cannot renew, must not.
    wait_until(lambda: "starting no fetch until they are" in
               a.stderr_of(pa), lease_s + 5, "p1 stopping its fetches")
    time.sleep(max(0.0, frozen + 2.5 * lease_s - time.monotonic()))
    proxy.thaw()
    # Its next renewal lets it fetch again (one that hung through the
    # partition was sent too long ago to count).
    wait_until(lambda: "leases renewed: starting fetches again" in
               a.stderr_of(pa), 3 * lease_s, "p1 fetching again")
    assert "rows of host shards this node lost" in a.stderr_of(pa)
    stop_pair_all_done(a, b, pa, pb, urls, timeout=240)
    st = fault_server.stats()
    worst = {ip: s["max_concurrent"] for ip, s in st["by_ip"].items()}
    assert max(worst.values()) <= 1, worst


def test_partitioned_node_aborts_long_fetches(request, gatherd_bin, tmp_path,
                                             fault_server):
    """A fetch that runs past the node's lease (a slow server) while the
    node is cut off from the database is aborted just before the lease
    can end: the node that takes the host's shard then fetches it alone,
    never beside the cut-off node's request."""
    lease_s = 6
    a, b, pa, pb, proxy = start_proxied_pair(
        request, gatherd_bin, tmp_path, lease_s, {"max_per_host": 1})
    # One 15 s request per host, on 16 hosts: p1 holds the shards of about
    # half of them, and its requests outlast its lease by far.
    hosts = 16
    urls = [fault_server.url("/slow?ms=15000&len=10&n=%d" % i,
                             host="127.0.0.%d" % (101 + i))
            for i in range(hosts)]
    a.write_queue(urls, mode="a")
    wait_until(lambda: fault_server.stats()["global"]["current"] == hosts,
               30, "every host's request in flight")
    partition_p1_until_taken_over(a, pa, proxy, lease_s, "fetches")
    proxy.thaw()
    stop_pair_all_done(a, b, pa, pb, urls)
    st = fault_server.stats()
    # p1's requests were made twice (aborted there, then p2's) ...
    twice = [u for u in urls
             if st["by_target"].get(u.split(":%d" % fault_server.port)[1])
             == 2]
    assert twice, st["by_target"]
    # ... and never at the same time.
    worst = {ip: s["max_concurrent"] for ip, s in st["by_ip"].items()}
    assert max(worst.values()) <= 1, worst


def test_partitioned_node_aborts_its_robots_txt_fetches(request, gatherd_bin,
                                                        tmp_path,
                                                        fault_server):
    """The same for robots.txt: a node cut off from the database aborts
    the robots.txt requests it has in flight (here: held by the server)
    just before its lease can end, so that the node taking a host's shard
    fetches the host's robots.txt alone, and the URLs that waited for it
    are fetched there."""
    lease_s = 6
    a, b, pa, pb, proxy = start_proxied_pair(
        request, gatherd_bin, tmp_path, lease_s,
        {"max_per_host": 1, "robots": "true"})
    fault_server.set_robots_ms(60000)
    hosts = 16
    urls = [fault_server.url("/ok?len=10&n=%d" % i,
                             host="127.0.0.%d" % (101 + i))
            for i in range(hosts)]
    a.write_queue(urls, mode="a")
    wait_until(lambda: fault_server.stats()["global"]["current"] == hosts,
               30, "every host's robots.txt in flight")
    # Meanwhile p2 takes p1's shards and asks for their robots.txt.
    partition_p1_until_taken_over(a, pa, proxy, lease_s,
                                  "robots.txt fetches")
    st = fault_server.stats()
    fault_server.set_robots_ms(0)
    proxy.thaw()
    stop_pair_all_done(a, b, pa, pb, urls)
    # p1's hosts had their robots.txt asked twice by then (p1's, aborted,
    # then p2's) ...
    twice = [ip for ip, s in st["by_ip"].items() if s["total"] >= 2]
    assert twice, st["by_ip"]
    # ... and never two at a time.
    worst = {ip: s["max_concurrent"]
             for ip, s in fault_server.stats()["by_ip"].items()}
    assert max(worst.values()) <= 1, worst


def test_redirect_target_fetched_by_its_shards_node(request, gatherd_bin,
                                                    tmp_path, fault_server):
    """URLs of 20 hosts, spread over two nodes' shards, all redirect to
    one host: that host is fetched only by the node that holds its shard
    (each row is handed over at the redirect), so max_per_host holds for
    it across the cluster, and every row ends as one result with its
    redirect."""
    from urllib.parse import quote
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path,
                                ["r1", "r2"],
                                fetch={"max_per_host": 1,
                                       "max_in_flight": 32})
    pa, pb = a.start(), b.start()
    a.wait_ready(pa)
    b.wait_ready(pb)
    wait_spread(a, 2)
    target = "127.0.0.250"
    n = 400
    finals = [fault_server.url("/slow?ms=20&len=9&n=%d" % i, host=target)
              for i in range(n)]
    urls = [fault_server.url("/redirect?to=%s" % quote(f, safe=""),
                             host="127.0.0.%d" % (1 + i % 20))
            for i, f in enumerate(finals)]
    a.write_queue(urls[: n // 2], mode="a")
    b.write_queue(urls[n // 2:], mode="a")
    wait_until(lambda: counts(a).get("done", 0) == n, 120, "every row done")
    for g, p in ((a, pa), (b, pb)):
        rc, _ = g.stop(p)
        assert rc == 0, g.stderr_of(p)[-3000:]
    rows = a.query("SELECT url, state, status, final_url, redirects "
                   "FROM results")
    assert len(rows) == n
    assert {r["url"] for r in rows} == set(urls)
    want = dict(zip(urls, finals))
    for r in rows:
        assert (r["state"], r["status"], r["redirects"]) == \
            ("done", 200, 1), r
        assert r["final_url"] == want[r["url"]], r
    # Every row now belongs to the target's shard, so the node holding
    # it recorded them all.
    assert len({r["claimed_by"] for r in a.query(
        "SELECT claimed_by FROM urls")}) == 1
    st = fault_server.stats()
    assert st["by_ip"][target]["max_concurrent"] <= 1, st["by_ip"][target]
    assert st["by_ip"][target]["total"] == n, st["by_ip"][target]


def test_host_delay_across_a_hand_over(request, gatherd_bin, tmp_path,
                                       fault_server):
    """host_delay_ms holds across nodes: when a node stops and another
    takes its host shards, the other's first request to each of those
    hosts comes host_delay_ms or more after the stopped node's last one
    (a shard given back is free only that long after)."""
    delay_s = 3.0
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path,
                                ["d1", "d2"],
                                fetch={"max_per_host": 1,
                                       "host_delay_ms": int(delay_s * 1000)})
    pa, pb = a.start(), b.start()
    a.wait_ready(pa)
    b.wait_ready(pb)
    wait_spread(a, 2)
    k = "hd-%d" % time.monotonic_ns()
    hosts, per_host = 40, 4
    urls = [fault_server.url("/ok?len=3&key=%s&n=%d" % (k, i),
                             host="127.0.0.%d" % (1 + i % hosts))
            for i in range(hosts * per_host)]
    a.write_queue(urls, mode="a")
    # d1 claimed its rows as it ingested them and made its first requests
    # at once; it stops half a second later, well inside the delay (d2
    # would take its shards at its next tick, a second at most).
    wait_until(lambda: fault_server.records(k), 30, "a first request")
    time.sleep(0.5)
    rc, _ = a.stop(pa)
    assert rc == 0, a.stderr_of(pa)[-3000:]
    wait_until(lambda: counts(b).get("done", 0) == len(urls), 120,
               "every row done")
    rc, _ = b.stop(pb)
    assert rc == 0, b.stderr_of(pb)[-3000:]
    recs = fault_server.records(k)
    assert len(recs) == len(urls)
    by_ip = {}
    for r in recs:
        by_ip.setdefault(r["ip"], []).append(r["t"])
    # Some hosts changed hands (d1 held about half of them).
    fetched_by = {r["url"]: r["claimed_by"] for r in b.query(
        "SELECT r.url, u.claimed_by FROM results r JOIN urls u "
        "ON u.id = r.id")}
    moved = {ip for ip in by_ip
             if len({fetched_by[u] for u in urls if "//%s:" % ip in u}) > 1}
    assert moved, "no host changed hands"
    gaps = {ip: min(y - x for x, y in zip(sorted(t), sorted(t)[1:]))
            for ip, t in by_ip.items()}
    assert min(gaps.values()) >= delay_s - 0.05, {
        ip: g for ip, g in gaps.items() if g < delay_s - 0.05}


def test_joining_node_gets_its_shards_at_once(request, gatherd_bin,
                                             tmp_path, fault_server):
    """A node that joins gets its share of the host shards within seconds,
    even while the node that held them has many rows of them claimed: the
    giving node hands back the rows it has not begun (it would otherwise
    fetch every one of them first, at its own pace), keeps the fetches in
    flight, and lets a shard go when they end.  Nothing is fetched twice,
    nothing lost."""
    pg, db, (a, b) = make_nodes(request, gatherd_bin, tmp_path,
                                ["j1", "j2"],
                                fetch={"max_in_flight": 4,
                                       "max_per_host": 1})
    k = "jn-%d" % time.monotonic_ns()
    n, ms = 400, 300
    urls = [fault_server.url("/slow?ms=%d&len=10&key=%s&n=%d" % (ms, k, i),
                             host="127.0.0.%d" % (1 + i % N_HOSTS))
            for i in range(n)]
    pa = a.start()
    a.wait_ready(pa)
    wait_spread(a, 1)
    a.write_queue(urls, mode="a")
    # j1 fetches about 13 rows a second: alone, 30 s for all of them.
    wait_until(lambda: len(fault_server.records(k)) >= 8, 30,
               "j1's first requests")
    ja = node_ids(a, "j1")[-1]
    held = a.query("SELECT count(*) AS n FROM urls WHERE state = 0 AND "
                   "claimed_by = ? AND lease_until > now()", (ja,))[0]["n"]
    assert held > n / 2, held  # claimed as they were ingested
    pb = b.start()
    b.wait_ready(pb)
    t0 = time.monotonic()
    jb = node_ids(b, "j2")[-1]
    # Without the hand-back, j1 fetched the ~200 rows of the shards it
    # gives up before letting them go: j2's first result came after 15 s.
    wait_until(lambda: b.query(
        "SELECT count(*) AS n FROM urls WHERE state = 1 AND claimed_by = ?",
        (jb,))[0]["n"] > 0, 8, "j2's first result")
    took = time.monotonic() - t0
    wait_until(lambda: counts(a).get("done", 0) == n, 120, "every row done")
    for g, p in ((a, pa), (b, pb)):
        rc, _ = g.stop(p)
        assert rc == 0, g.stderr_of(p)[-3000:]
    recs = fault_server.records(k)
    assert len(recs) == n, "%d requests for %d rows" % (len(recs), n)
    assert len({r["target"] for r in recs}) == n
    by_node = {r["claimed_by"]: r["n"] for r in a.query(
        "SELECT claimed_by, count(*) AS n FROM urls GROUP BY claimed_by")}
    assert by_node.get(jb, 0) >= n / 4, (by_node, took)


def test_restart_ends_the_dead_runs_session(request, gatherd_bin, tmp_path,
                                            fault_server):
    """A node killed in the middle of a long statement leaves its session
    running (the server notices the closed socket only when the statement
    ends), and that session holds the node lock: the restarted node must
    not wait for it, or give up as if another gatherd ran.  Stood in for
    by a session that holds the lock of a node whose process is gone on
    this machine: gatherd ends it and starts; a holder whose process
    lives is left alone (the restart is refused, as before)."""
    pg, db = pg_database_for(request, gatherd_bin)
    g = Gatherd(gatherd_bin, tmp_path / "st", pg=pg, pg_db=db, node="st")
    g.write_config()
    g.write_queue([fault_server.url("/ok?len=4")])
    cp = g.run("--once", timeout=60)
    assert cp.returncode == 0, cp.stderr
    gone = subprocess.Popen(["true"])
    gone.wait()
    key = "gatherd node st queue %s" % g.queue
    host = socket.gethostname()

    def holder(pid):
        """A psql session that registers node st with `pid` as running
        on this host, takes its lock and sleeps; returns the process."""
        pg.psql(db, "INSERT INTO nodes (name, queue, pid, host, "
                "started_at) VALUES ('st', '%s', %d, '%s', 0)"
                % (g.queue, pid, host))
        sql = ("SELECT pg_advisory_lock(hashtextextended('%s', 0));"
               "SELECT pg_sleep(60);" % key)
        p = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p",
             str(pg.port), "-U", "gatherd", "-d", db, "-c", sql],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: pg.query(db, (
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted")), 10, "the lock held by psql")
        return p

    # The holder's process lives (this test's own pid): refused.
    p = holder(os.getpid())
    t0 = time.monotonic()
    cp = g.run("--once", timeout=60)
    assert cp.returncode == 1, cp.stderr
    assert "another gatherd runs as node st" in cp.stderr, cp.stderr
    assert time.monotonic() - t0 >= 4
    # (Killing psql would not end its session before pg_sleep does: the
    # very behaviour this test is about.)
    pg.psql(db, "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted")
    p.wait(timeout=10)
    pg.psql(db, "UPDATE nodes SET stopped_at = 0 WHERE stopped_at IS NULL")
    # Its process is gone: the session is ended, and gatherd runs.
    p = holder(gone.pid)
    g.write_queue([fault_server.url("/ok?len=5")], mode="a")
    t0 = time.monotonic()
    cp = g.run("--once", timeout=60)
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert "still held the node lock: ended it" in cp.stderr, cp.stderr
    assert took < 4, took
    assert p.wait(timeout=10) != 0  # its session was terminated
    assert [r["length"] for r in g.rows()] == [4, 5]


def test_submit_direct_fetched_at_once(request, gatherd_bin, tmp_path,
                                       fault_server):
    """A URL that `submit --direct` inserts into the shared table while a
    node idles is fetched within a fraction of a second: a node looks for
    rows added by others ten times a second.  The URLs are submitted at
    random moments (a fixed seed), and the time from the end of `submit`
    to the request at the fault server is on one clock (CLOCK_MONOTONIC,
    which both processes read).  Polling once a second, 8 submissions
    would all be under the bound by chance once in 256 runs."""
    pg, db, (a,) = make_nodes(request, gatherd_bin, tmp_path, ["sd1"])
    pa = a.start()
    a.wait_ready(pa)
    wait_spread(a, 1)
    k = "sd-%d" % time.monotonic_ns()
    rng = random.Random(20261130)
    lat = []
    for i in range(8):
        time.sleep(rng.uniform(0.0, 1.0))
        u = fault_server.url("/slow?ms=0&len=10&key=%s&n=%d" % (k, i),
                             host="127.0.0.%d" % (1 + i))
        cp = subprocess.run([gatherd_bin, "submit", "--direct", "-c",
                             str(a.conf), u], capture_output=True,
                            text=True, timeout=60)
        t_in = time.monotonic()
        assert cp.returncode == 0, cp.stderr
        wait_until(lambda: len(fault_server.records(k)) > i, 10,
                   "the request for submission %d" % i)
        lat.append(fault_server.records(k)[i]["t"] - t_in)
    print("seconds from submit to request:", lat)
    rc, _ = a.stop(pa)
    assert rc == 0, a.stderr_of(pa)[-3000:]
    assert len(fault_server.records(k)) == 8
    assert max(lat) < 0.5, "seconds from submit to request: %s" % (
        ", ".join("%.3f" % x for x in lat))

#!/usr/bin/python3
"""gatherd on PostgreSQL against gatherd on SQLite (tests/bench/pg; see
README.md, "pg-1node and pg-3nodes").

Against the benchmark's private nginx (one worker, the 13,793-byte page)
and a private PostgreSQL 15 cluster (tests/pg_cluster.py, fsync on,
synchronous_commit off: as durable as SQLite's synchronous=NORMAL in WAL
mode, which gatherd uses), in alternation, ROUNDS rounds, medians:

  pg-1node    one host (127.0.0.1), N URLs, 64 in flight, 64 per host:
              gatherd --once on SQLite, and on PostgreSQL (a fresh
              database each run).  Target: PostgreSQL >= 0.7x SQLite.
  pg-3nodes   the same nginx as 250 hosts (127.0.0.1 .. 127.0.0.250; on
              one host only one node may fetch, by design), N URLs:
              SQLite one node, PostgreSQL one node, PostgreSQL three nodes
              (daemons, each ingesting a third from its own queue file,
              timed from their start until every row is done).

Each PostgreSQL run also reports what the database did per second:
transactions committed and rows inserted and updated (pg_stat_database),
and the server's CPU time (its processes' utime + stime).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench  # noqa: E402
from pg_cluster import Postgres  # noqa: E402


def log(msg):
    print("pg-bench: " + msg, file=sys.stderr, flush=True)


def conf(d, pg=None, db=None, node="n1", hosts_per_host=64):
    """gatherd.conf of the benchmark's gatherd runs, with [store] for
    PostgreSQL."""
    path = bench.gatherd_conf(d, 64, hosts_per_host)
    if pg is not None:
        with open(path, "a") as f:
            f.write("[store]\nbackend = postgresql\nconninfo = %s\n"
                    "node_name = %s\nlease_s = 30\n"
                    % (pg.conninfo(db), node))
    return path


def pg_server_cpu(pg):
    """utime + stime (s) of every process of the cluster so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pid = int(Path(pg.data / "postmaster.pid").read_text().split()[0])
    pids = [pid] + bench.child_pids(pid)
    for p in pids:
        try:
            f = Path("/proc/%d/stat" % p).read_text()
        except OSError:
            continue
        fields = f[f.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12]) + int(fields[13]) +
                  int(fields[14])) / tick
    return total


def db_stats(pg, db):
    r = pg.query(db, "SELECT xact_commit, tup_inserted, tup_updated FROM "
                 "pg_stat_database WHERE datname = current_database()")[0]
    return r


def pg_counts(pg, db, n):
    r = pg.query(db, "SELECT count(*) AS total, count(*) FILTER (WHERE "
                 "state = 'done' AND status = 200 AND length = %d) AS good "
                 "FROM results" % bench.PAGE_SIZE)[0]
    return r["total"], r["good"]


def run_sqlite(work, urls_file, n, name):
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    shutil.copyfile(urls_file, d / "queue")
    c = conf(d)
    r = bench.timed_run([GATHERD, "-c", str(c), "--once"], d, "gatherd",
                        120 + n / 200.0, preexec=bench.raise_nofile)
    total, good, _ = bench.db_counts(d / "gatherd.db")
    r["ok"] = r["rc"] == 0 and good == n and total == n
    r["rps"] = n / r["wall_s"] if r["ok"] else None
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_pg_once(work, pg, urls_file, n, name):
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    shutil.copyfile(urls_file, d / "queue")
    db = pg.create_db("b_%d" % time.monotonic_ns())
    c = conf(d, pg, db)
    # Migrate first, so the run measures fetching, not CREATE TABLE.
    subprocess.run([GATHERD, "-c", str(c), "--once", "--set",
                    "gatherd.queue_file=%s" % (d / "empty")],
                   capture_output=True, timeout=60)
    s0, cpu0 = db_stats(pg, db), pg_server_cpu(pg)
    r = bench.timed_run([GATHERD, "-c", str(c), "--once"], d, "gatherd",
                        120 + n / 200.0, preexec=bench.raise_nofile)
    s1, cpu1 = db_stats(pg, db), pg_server_cpu(pg)
    total, good = pg_counts(pg, db, n)
    r["ok"] = r["rc"] == 0 and good == n and total == n
    r["rps"] = n / r["wall_s"] if r["ok"] else None
    r["db"] = db_rates(s0, s1, r["wall_s"], cpu1 - cpu0)
    if not r["ok"]:
        r["note"] = "rc=%s recorded %d/%d; %s" % (r["rc"], good, n,
                                                  r["stderr"][-300:])
    pg.psql("postgres", "DROP DATABASE %s" % db)
    shutil.rmtree(d, ignore_errors=True)
    return r


def db_rates(s0, s1, wall, cpu):
    return {"xact_per_s": (s1["xact_commit"] - s0["xact_commit"]) / wall,
            "inserted_per_s": (s1["tup_inserted"] - s0["tup_inserted"]) /
            wall,
            "updated_per_s": (s1["tup_updated"] - s0["tup_updated"]) / wall,
            "server_cpu_s": cpu}


def run_pg_nodes(work, pg, urls, n_nodes, name):
    """n_nodes daemons, each with a share of the URLs in its own queue
    file, timed from the moment the files are written (the daemons
    running, the host shards spread over them) until every row is done.
    Started with their files full, the first daemon up held every shard
    for its first second and claimed nearly every row as it was
    ingested: one node did the work, the others watched."""
    base = work / name
    shutil.rmtree(base, ignore_errors=True)
    db = pg.create_db("b_%d" % time.monotonic_ns())
    n = len(urls)
    confs = []
    for k in range(n_nodes):
        d = base / ("n%d" % k)
        d.mkdir(parents=True)
        (d / "queue").write_text("")
        confs.append((d, conf(d, pg, db, node="n%d" % k)))
    subprocess.run([GATHERD, "-c", str(confs[0][1]), "--once"],
                   capture_output=True, timeout=60)  # migrate
    procs = [subprocess.Popen([GATHERD, "-c", str(c)], cwd=d,
                              stdout=subprocess.DEVNULL,
                              stderr=open(d / "stderr", "wb"),
                              preexec_fn=bench.raise_nofile,
                              start_new_session=True)
             for d, c in confs]
    share = 1024 // n_nodes - 8
    spread_by = time.monotonic() + 60
    while time.monotonic() < spread_by:
        held = pg.query(db, "SELECT count(*) AS n FROM shards WHERE "
                        "node_id IS NOT NULL AND lease_until > now() "
                        "GROUP BY node_id")
        if len(held) == n_nodes and all(x["n"] >= share for x in held):
            break
        time.sleep(0.1)
    blocks = ["".join(u + "\n" for u in urls[k::n_nodes])
              for k in range(n_nodes)]
    s0, cpu0 = db_stats(pg, db), pg_server_cpu(pg)
    t0 = time.monotonic()
    for k, (d, _) in enumerate(confs):
        with open(d / "queue", "a") as f:
            f.write(blocks[k])
    done = 0
    deadline = t0 + 120 + n / 200.0
    while time.monotonic() < deadline:
        done = pg.query(db, "SELECT count(*) AS n FROM urls WHERE "
                        "state != 0")[0]["n"]
        if done >= n or any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    s1, cpu1 = db_stats(pg, db), pg_server_cpu(pg)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    total, good = pg_counts(pg, db, n)
    per_node = pg.query(db, "SELECT n.name, count(u.id) AS rows FROM nodes n "
                        "LEFT JOIN urls u ON u.claimed_by = n.id AND "
                        "u.state = 1 GROUP BY n.name ORDER BY n.name")
    r = {"wall_s": wall, "ok": good == n and total == n,
         "rps": n / wall if good == n and total == n else None,
         "db": db_rates(s0, s1, wall, cpu1 - cpu0),
         "per_node": {x["name"]: x["rows"] for x in per_node}}
    if not r["ok"]:
        r["note"] = "recorded %d/%d; %s" % (good, n, (confs[0][0] /
                                                    "stderr").read_text()[-300:])
    pg.psql("postgres", "DROP DATABASE %s" % db)
    shutil.rmtree(base, ignore_errors=True)
    return r


def med(runs, key="rps"):
    v = [r[key] for r in runs if r.get("ok") and r.get(key)]
    return statistics.median(v) if v else None


def main():
    global GATHERD
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "out"))
    a = ap.parse_args()
    GATHERD = os.environ.get("GATHERD_BIN",
                             str(bench.REPO / "build-bench" / "gatherd"))
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gatherd-pgbench-"))
    log("%s; %d URLs x %d rounds; work dir %s" % (GATHERD, a.urls, a.rounds,
                                                   work))
    pg = Postgres(settings={"synchronous_commit": "off",
                            "max_connections": "50",
                            "shared_buffers": "128MB"})
    results = {"urls": a.urls, "rounds": a.rounds, "gatherd": GATHERD,
               "machine": bench.machine_info()}
    nginx = None
    try:
        _, crt, key = bench.make_tls(work / "tls")
        nginx = bench.Nginx(work / "nginx", crt, key).start()
        pg.start()
        one = bench.urls_for("http", nginx.port, a.urls, 1)
        many = bench.urls_for("http", nginx.port, a.urls, 250)
        f1, _ = bench.write_url_files(work / "urls1", one)
        fm, _ = bench.write_url_files(work / "urlsm", many)
        runs = {k: [] for k in ("1:sqlite", "1:pg", "250:sqlite", "250:pg",
                                "250:pg3")}
        for rnd in range(a.rounds):
            plan = [("1:sqlite", lambda: run_sqlite(work, f1, a.urls,
                                                    "s1")),
                    ("1:pg", lambda: run_pg_once(work, pg, f1, a.urls,
                                                 "p1")),
                    ("250:sqlite", lambda: run_sqlite(work, fm, a.urls,
                                                      "sm")),
                    ("250:pg", lambda: run_pg_once(work, pg, fm, a.urls,
                                                   "pm")),
                    ("250:pg3", lambda: run_pg_nodes(work, pg, many, 3,
                                                     "p3"))]
            plan = plan[rnd % len(plan):] + plan[:rnd % len(plan)]
            for k, fn in plan:
                r = fn()
                r.pop("stderr", None)
                runs[k].append(r)
                log("round %d %-10s %s %s %s %s" % (
                    rnd + 1, k, "ok  " if r["ok"] else "FAIL",
                    "%.0f URLs/s" % r["rps"] if r.get("rps") else "-",
                    json.dumps(r.get("db", {})), r.get("note", "")[:300]))
        results["runs"] = runs
        lines = []
        g1, p1 = med(runs["1:sqlite"]), med(runs["1:pg"])
        gm, pm, p3 = (med(runs["250:sqlite"]), med(runs["250:pg"]),
                      med(runs["250:pg3"]))

        def f(v, fmt="%.0f"):
            return "-" if v is None else fmt % v

        def dbm(k, key):
            v = [r["db"][key] for r in runs[k] if r.get("ok")]
            return statistics.median(v) if v else None
        lines.append("%-10s %-26s %9s %8s %10s %10s %10s %9s" % (
            "scenario", "run", "URLs/s", "vs SQLite", "db xact/s",
            "db ins/s", "db upd/s", "db CPU s"))
        for sc, k, label, ref in (
                ("pg-1node", "1:sqlite", "SQLite, 1 node", g1),
                ("pg-1node", "1:pg", "PostgreSQL, 1 node", g1),
                ("pg-3nodes", "250:sqlite", "SQLite, 1 node, 250 hosts", gm),
                ("pg-3nodes", "250:pg", "PostgreSQL, 1 node", gm),
                ("pg-3nodes", "250:pg3", "PostgreSQL, 3 nodes", gm)):
            v = med(runs[k])
            lines.append("%-10s %-26s %9s %8s %10s %10s %10s %9s" % (
                sc, label, f(v), f(v / ref if v and ref else None, "%.2fx"),
                f(dbm(k, "xact_per_s")) if ":pg" in k else "-",
                f(dbm(k, "inserted_per_s")) if ":pg" in k else "-",
                f(dbm(k, "updated_per_s")) if ":pg" in k else "-",
                f(dbm(k, "server_cpu_s"), "%.2f") if ":pg" in k else "-"))
        r = p1 / g1 if p1 and g1 else None
        lines.append("%s pg-1node PostgreSQL/SQLite = %s (target >= 0.70x)"
                     % ("n/a " if r is None else ("MET " if r >= 0.7
                                                  else "MISS"),
                        f(r, "%.2fx")))
        shares = [x["per_node"] for x in runs["250:pg3"] if x.get("ok")]
        if shares:
            lines.append("pg-3nodes rows fetched per node (last round): %s"
                         % json.dumps(shares[-1]))
        text = "\n".join(lines)
        print(text)
        (out / "pg_table.txt").write_text(results["machine"] + "\n" + text +
                                          "\n")
        (out / "pg_results.json").write_text(json.dumps(results, indent=1))
    finally:
        if nginx is not None:
            nginx.stop()
        pg.cleanup()
        bench.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

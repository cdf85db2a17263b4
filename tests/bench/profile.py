#!/usr/bin/python3
"""Profile gatherd on the http-1host scenario (see README.md):

    tests/bench/profile [--urls 5000] [--out DIR]

Against the same private nginx as the benchmark (one worker, keep-alive,
13,793-byte page), runs gatherd --once (max_in_flight 64, max_per_host 64,
fresh database each time) under:
  - callgrind (--separate-threads): instructions per URL, top functions of
    the event-loop thread and of the SQLite worker thread;
  - perf stat -e instructions (skipped when the counter is not supported,
    e.g. in VMs) and perf record -e cpu-clock (sampled native profile);
  - strace -c -f: syscalls per URL;
  - valgrind memcheck's heap summary at two queue sizes: allocations per
    URL = difference / difference in URLs (start-up cost cancels out).
Writes profile.txt (and the raw outputs) into DIR (default
tests/bench/out/profile).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def sh(argv, timeout, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


def setup_run(work, nginx, n, name):
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    urls = bench.urls_for("http", nginx.port, n, 1)
    (d / "queue").write_text("\n".join(urls) + "\n")
    conf = bench.gatherd_conf(d, 64, 64)
    return d, conf


def check(d, n):
    total, good, brk = bench.db_counts(d / "gatherd.db")
    return "%d/%d recorded ok" % (good, n) + ("" if good == n else " %s" % brk)


def top_functions(cg_file, limit=25):
    r = sh(["callgrind_annotate", "--threshold=99", str(cg_file)], 300)
    total = None
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*([\d.]+)%\)\s+)?(\S.*)$", line)
        if m and total and ":" in m.group(3):
            ir = int(m.group(1).replace(",", ""))
            rows.append((ir, m.group(3).strip()))
    rows.sort(reverse=True)
    return total, rows[:limit], r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=5000)
    ap.add_argument("--out", default=str(bench.HERE / "out" / "profile"))
    ap.add_argument("--ingest-lines", type=int, default=1000000)
    ap.add_argument("--no-ingest", action="store_true")
    ap.add_argument("--no-massif", action="store_true")
    ap.add_argument("--massif-conns", type=int, default=1000)
    ap.add_argument("--only-ingest", action="store_true")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    gd = os.environ.get("GATHERD_BIN",
                        str(bench.REPO / "build-bench" / "gatherd"))
    n = a.urls
    work = Path(tempfile.mkdtemp(prefix="gatherd-prof-"))
    rep = ["gatherd profile, http-1host, %d URLs, max_in_flight 64; %s"
           % (n, bench.machine_info()), "binary: " + gd, ""]
    try:
        ca, crt, key = bench.make_tls(work / "tls")
        ng = bench.Nginx(work / "nginx", crt, key).start()

        if not a.only_ingest:
            # Native run, for reference.
            d, conf = setup_run(work, ng, n, "native")
            t0 = time.monotonic()
            r = sh([bench.TIME, "-v", "-o", str(d / "time"), gd, "-c", str(conf),
                    "--once"], 300)
            wall = time.monotonic() - t0
            tv = bench.parse_time_v(d / "time")
            rep.append("native: %.2f s wall, %.0f URLs/s, user %.2f s + sys %.2f s"
                       " = %.0f us CPU/URL; %s" % (
                           wall, n / wall, tv["user_s"], tv["sys_s"],
                           (tv["user_s"] + tv["sys_s"]) * 1e6 / n, check(d, n)))

            # perf stat -e instructions.
            d, conf = setup_run(work, ng, n, "perfstat")
            r = sh(["perf", "stat", "-e", "instructions,task-clock,"
                    "context-switches", gd, "-c", str(conf), "--once"], 300)
            (out / "perf_stat.txt").write_text(r.stderr)
            m = re.search(r"([\d,]+)\s+instructions", r.stderr)
            if m:
                rep.append("perf stat: %.0f instructions/URL" % (
                    int(m.group(1).replace(",", "")) / n))
            else:
                rep.append("perf stat: instructions counter not supported here")
            m = re.search(r"([\d,]+)\s+context-switches", r.stderr)
            if m:
                rep.append("perf stat: %.2f context switches/URL" % (
                    int(m.group(1).replace(",", "")) / n))

            # perf record with a software clock (works without PMU).
            nrec = 4 * n   # more samples than n would give
            d, conf = setup_run(work, ng, nrec, "perfrec")
            pdata = out / "perf.data"
            r = sh(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999",
                    "-g", "-o", str(pdata), gd, "-c", str(conf), "--once"], 300)
            if pdata.exists():
                r = sh(["perf", "report", "-i", str(pdata), "--no-children",
                        "--sort", "dso,sym", "--stdio", "-g", "none",
                        "--percent-limit", "0.7"], 300)
                (out / "perf_report.txt").write_text(r.stdout)
                rep.append("")
                rep.append("perf record -e cpu-clock, %d URLs (self %%, "
                           "native run; %s):" % (nrec, check(d, nrec)))
                for line in r.stdout.splitlines():
                    if re.match(r"\s+[\d.]+%", line):
                        rep.append("  " + line.strip())
                for key in ("pid", "dso"):
                    r = sh(["perf", "report", "-i", str(pdata),
                            "--no-children", "--sort", key, "--stdio",
                            "-g", "none", "--percent-limit", "1"], 300)
                    rep.append("  by %s: " % ("thread" if key == "pid"
                                              else key) + "; ".join(
                        " ".join(l.split()) for l in r.stdout.splitlines()
                        if re.match(r"\s+[\d.]+%", l)))

            # strace -c -f.
            d, conf = setup_run(work, ng, n, "strace")
            r = sh(["strace", "-c", "-f", "-o", str(out / "strace.txt"), gd,
                    "-c", str(conf), "--once"], 600)
            st = (out / "strace.txt").read_text()
            rep.append("")
            rep.append("strace -c -f (%s):" % check(d, n))
            tot = re.search(r"100\.00\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*total", st)
            if tot:
                rep.append("  total %.2f syscalls/URL" % (int(tot.group(1)) / n))
            for line in st.splitlines():
                f = line.split()
                if len(f) >= 5 and re.match(r"[\d.]+$", f[0]) and f[-1] != "total":
                    calls = int(f[3])
                    if calls >= n / 20:
                        rep.append("  %-16s %8d calls  %6.2f/URL  %5s%% time" % (
                            f[-1], calls, calls / n, f[0]))

            # callgrind, one file per thread.
            d, conf = setup_run(work, ng, n, "callgrind")
            cg = out / "callgrind.out"
            for old in out.glob("callgrind.out*"):
                old.unlink()
            r = sh(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                    "--callgrind-out-file=" + str(cg), gd, "-c", str(conf),
                    "--once"], 1800)
            rep.append("")
            rep.append("callgrind (%s):" % check(d, n))
            files = sorted(out.glob("callgrind.out*"))
            grand = 0
            per_thread = []
            for f in files:
                total, rows, text = top_functions(f)
                (out / (f.name + ".annotate.txt")).write_text(text)
                if total:
                    grand += total
                    per_thread.append((f, total, rows))
            rep.append("  total %.0f instructions/URL (all threads)" % (grand / n))
            for f, total, rows in per_thread:
                rep.append("  %s: %.0f instr/URL (%.1f%% of all)" % (
                    f.name, total / n, 100.0 * total / grand))
                for ir, fn in rows[:18]:
                    if ir * 100.0 / grand < 0.5:
                        break
                    rep.append("    %5.1f%%  %7.0f/URL  %s" % (
                        100.0 * ir / grand, ir / n, fn[:110]))

            # Allocations per URL: memcheck heap summary at n and 2n URLs.
            allocs = {}
            for m_ in (n, 2 * n):
                d, conf = setup_run(work, ng, m_, "memcheck%d" % m_)
                r = sh(["valgrind", "--tool=memcheck", "--leak-check=no", gd,
                        "-c", str(conf), "--once"], 1800)
                mm = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees,"
                               r" ([\d,]+) bytes allocated", r.stderr)
                if mm:
                    allocs[m_] = tuple(int(x.replace(",", "")) for x in mm.groups())
            if len(allocs) == 2:
                da = allocs[2 * n][0] - allocs[n][0]
                db = allocs[2 * n][2] - allocs[n][2]
                rep.append("")
                rep.append("heap (memcheck): %s allocs at %d URLs, %s at %d: "
                           "%.1f allocations/URL, %.0f bytes allocated/URL"
                           % (allocs[n][0], n, allocs[2 * n][0], 2 * n, da / n,
                              db / n))
        # Heap per in-flight connection: massif on a daemon holding
        # --massif-conns requests at the hold server (the peak snapshot is
        # the steady state with every request in flight).
        if not a.no_massif and not a.only_ingest:  # noqa
            hold = bench.HoldServer(work / "hold-massif").start()
            d = work / "massif"
            d.mkdir()
            (d / "queue").write_text("")
            nc = a.massif_conns
            conf = bench.gatherd_conf(d, nc, nc, extra={"fetch": {
                "connect_timeout_ms": 600000, "idle_timeout_ms": 3600000,
                "request_timeout_ms": 86400000, "retries": 0,
        # The hold server answers nothing, robots.txt included.
        "robots": "false"}})
            mo = out / "massif.out"
            p = bench.start_bg(["valgrind", "--tool=massif", "--depth=10",
                                "--threshold=1.0", "--massif-out-file=" +
                                str(mo), gd, "-c", str(conf)],
                               stderr=open(d / "stderr", "wb"),
                               preexec_fn=bench.raise_nofile)
            ok = bench.wait_until(lambda: bench.db_count_urls(
                d / "gatherd.db") == 0, 60)
            time.sleep(1)
            with open(d / "queue", "a") as f:
                f.write("".join("http://127.0.0.%d:%d/hold?n=%d\n" % (
                    i % 100 + 1, hold.port, i) for i in range(nc)))
            held = bench.wait_until(lambda: hold.status()[1] >= nc, 120, 0.2)
            time.sleep(2)
            bench.stop_daemon(p)
            hold.stop()
            r = sh(["ms_print", str(mo)], 120) if mo.exists() else None
            rep.append("")
            rep.append("massif, %d requests held in flight (%s):" % (
                nc, "all held" if held else "NOT all held"))
            if r is not None:
                (out / "massif.txt").write_text(r.stdout)
                # The detailed snapshot with the largest heap.
                best, cur, cur_b = None, [], 0
                for line in r.stdout.splitlines():
                    m = re.match(r"(\d+\.\d+%) \(([\d,]+)B\) \(heap "
                                 r"allocation functions\)", line)
                    if m:
                        if cur and (best is None or cur_b > best[0]):
                            best = (cur_b, cur)
                        cur, cur_b = [line], int(m.group(2).replace(",", ""))
                    elif cur:
                        if line.startswith("---") or line.startswith(" n "):
                            if best is None or cur_b > best[0]:
                                best = (cur_b, cur)
                            cur = []
                        else:
                            cur.append(line)
                if cur and (best is None or cur_b > best[0]):
                    best = (cur_b, cur)
                if best:
                    rep.append("  peak heap %d B = %.0f B per request held"
                               % (best[0], best[0] / nc))
                    for line in best[1]:
                        # Top-level entries only: the direct callers of
                        # malloc/calloc/realloc (the first frame of each).
                        if line.startswith("->"):
                            mm = re.search(r"\(([\d,]+)B\)", line)
                            b = int(mm.group(1).replace(",", "")) if mm else 0
                            rep.append("  %6.0f B/req %s" % (
                                b / nc, line.strip()[:130]))

        # Ingestion: perf record attached to a running daemon while
        # 1,000,000 lines are appended (fetching throttled by the hold
        # server, max_in_flight 1), as in the benchmark's ingestion-1M.
        if not a.no_ingest:
            ctx = bench.Ctx()
            ctx.gatherd, ctx.work = gd, work
            ctx.hold = bench.HoldServer(work / "hold").start()
            idata = out / "perf-ingest.data"

            def attach(pid):
                pr = subprocess.Popen(["perf", "record", "-q", "-e",
                                       "cpu-clock", "-F", "2999", "-g",
                                       "-p", str(pid), "-o", str(idata)],
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
                time.sleep(0.5)

                def stop():
                    pr.send_signal(2)
                    try:
                        pr.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        pr.kill()
                return stop
            ing = bench.ingestion_scenario(ctx, a.ingest_lines, attach)
            ctx.hold.stop()
            rep.append("")
            rep.append("ingestion of %d lines into a running daemon: %s" % (
                a.ingest_lines, "%.2f s (%.0f lines/s)" % (
                    ing["seconds"], ing["lines_per_s"]) if ing["ok"]
                else "FAILED " + ing["note"]))
            if idata.exists():
                r = sh(["perf", "report", "-i", str(idata), "--no-children",
                        "--sort", "dso,sym", "--stdio", "-g", "none",
                        "--percent-limit", "1"], 300)
                (out / "perf_ingest_report.txt").write_text(r.stdout)
                for line in r.stdout.splitlines():
                    if re.match(r"\s+[\d.]+%", line):
                        rep.append("  " + line.strip())
                r = sh(["perf", "report", "-i", str(idata), "--no-children",
                        "--sort", "pid", "--stdio", "-g", "none"],
                       300)
                (out / "perf_ingest_threads.txt").write_text(r.stdout)
        ng.stop()
    finally:
        bench.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(rep) + "\n"
    (out / "profile.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

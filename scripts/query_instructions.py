#!/usr/bin/env python3
"""Instructions a query costs, counted by callgrind: a figure this noisy 2-vCPU machine
cannot move, where query times and server CPU move 10-20 % between runs of one binary.

For each binary: a fresh server loads the TSBS integer dataset of scripts/bench_vs_vm.py
(100 hosts x 1 day) and stops cleanly; the same binary then reopens that data directory
under `valgrind --tool=callgrind`, counting only inside `kairosdb_query::execute` (the
storage read and the aggregation of one metric query; not HTTP, JSON or query/tags). Each
query type runs its variants once untimed, then N queries are counted. One table, with
the ratio to the first binary when there are two or more.

    scripts/query-instructions.sh --binary OLD --binary NEW [--types double-groupby-1,...] [--runs N]
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import bench_vs_vm as b

load = b.load
DEFAULT_TYPES = [t for t in b.QTYPES if t != "query-tags"]
# Fewer runs of the heavy types: callgrind runs ~50x slower than the server.
RUNS = {"double-groupby-5": 5, "double-groupby-all": 3, "high-cpu-all": 5, "lastpoint": 5}


def settled_dir(binary, ds, work):
    """A fresh server loads `ds` over HTTP and stops cleanly: its data directory."""
    d = b.fresh(work, "instr-" + os.path.basename(binary))
    srv = b.Ours(binary, d, telnet=False)
    try:
        fmt, url = srv.http_load_args()
        r = load.run_load(ds["dir"], fmt, url, concurrency=2, pids=[srv.pid], label="load", quiet_max=5)
        if r["errors"] or r["points"] != ds["points"]:
            raise SystemExit("%s: %d errors, %d of %d points" % (binary, r["errors"], r["points"], ds["points"]))
        load.wait_idle([srv.pid], 60)
        b.check_count(srv, ds)
    finally:
        srv.stop()
    return d


def ready(port, proc, limit):
    t0 = time.time()
    while time.time() - t0 < limit:
        if proc.poll() is not None:
            return False
        try:
            b.get("http://127.0.0.1:%d/health/ready" % port, timeout=5)
            return True
        except Exception:
            time.sleep(0.5)
    return False


def count(binary, data_dir, ds, types, runs):
    """Instructions a query inside kairosdb_query::execute, per type."""
    out_dir = data_dir + "-callgrind"
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    port, telnet = b.free_port(), b.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
    env.update({"KAIROSDB_DATA_DIR": data_dir, "KAIROSDB_BIND_ADDRESS": "127.0.0.1:%d" % port,
                "KAIROSDB_TELNET_BIND_ADDRESS": "127.0.0.1:%d" % telnet, "RUST_LOG": "warn"})
    log = open(out_dir + "/valgrind.log", "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                             "--toggle-collect=kairosdb_query::execute",
                             "--callgrind-out-file=%s/cg.out" % out_dir, binary],
                            env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    res = {}
    try:
        if not ready(port, proc, 600):
            raise SystemExit("%s did not get ready under valgrind (log: %s/valgrind.log)" % (binary, out_dir))
        inst = b.make_instances(ds["params"], 10, 7)
        client = b.Client("http://127.0.0.1:%d" % port)
        for qt in types:
            run, _ = b.side_requests("ours", qt, inst[qt], ds["params"])
            for f in run:
                f(client)
            n = RUNS.get(qt, runs)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            for i in range(n):
                run[i % len(run)](client)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            dump = max(glob.glob(out_dir + "/cg.out*"), key=os.path.getmtime)
            with open(dump) as f:
                total = next(int(line.split()[1]) for line in f if line.startswith(("totals:", "summary:")))
            res[qt] = total / n
            b.log("  %s %s: %s instructions a query (%d queries)" % (
                os.path.basename(binary), qt, format(round(res[qt]), ","), n))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=600)
        log.close()
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", help="repeatable; default target/release/kairosdb")
    p.add_argument("--types", default=",".join(DEFAULT_TYPES), help="comma-separated query types")
    p.add_argument("--runs", type=int, default=20, help="queries counted per type (fewer for heavy ones)")
    p.add_argument("--work", default=os.path.join(b.ROOT, "target", "bench-vs-vm"))
    opts = p.parse_args()
    binaries = [os.path.abspath(x) for x in opts.binary or [os.path.join(b.ROOT, "target", "release", "kairosdb")]]
    types = [t for t in opts.types.split(",") if t]
    bad = [t for t in types if t not in DEFAULT_TYPES]
    if bad:
        raise SystemExit("unknown or uncounted query types: %s (query-tags runs outside execute)" % bad)
    os.makedirs(opts.work, exist_ok=True)
    ds = b.dataset(opts.work, "int-100h-1d", 100, "1d", "10s", "int", ["influx", "kairos", "telnet"], 10)
    cols = []
    for binary in binaries:
        b.log("== %s" % binary)
        d = settled_dir(binary, ds, opts.work)
        cols.append(count(binary, d, ds, types, opts.runs))
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(d + "-callgrind", ignore_errors=True)
    names = [os.path.basename(x) for x in binaries]
    if len(set(names)) < len(names):  # e.g. two builds both called kairosdb
        names = binaries
    head = "| query | " + " | ".join(names)
    head += "".join(" | %s / %s" % (n, names[0]) for n in names[1:])
    print(head + " |")
    print("|---" * (1 + 2 * len(binaries) - 1) + "|")
    for qt in types:
        row = "| %s | " % qt + " | ".join(format(round(c[qt]), ",") for c in cols)
        row += "".join(" | %.3f" % (c[qt] / cols[0][qt]) for c in cols[1:])
        print(row + " |")


if __name__ == "__main__":
    sys.exit(main())

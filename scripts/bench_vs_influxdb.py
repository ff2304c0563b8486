#!/usr/bin/env python3
"""kairosdb-rs against InfluxDB 1.x, side by side, in one run on this machine.

Run through scripts/bench-vs-influxdb.sh (which installs InfluxDB and builds the
release binary first). Uses the neutral harness in ../shared/bench (data
generation, load driver, query set, InfluxDB control) for both servers, one after
the other, each on loopback with a fresh data directory, and prints one table of
both sides and their ratios (this project / InfluxDB). Raw results go to
WORK/results.json.

Figures (see the issue "Beat InfluxDB side by side"):
  * HTTP ingest: points per server CPU-second (our JSON vs its line protocol,
    10k points per request, 8 connections), including the CPU spent after the
    last answer until the server is idle;
  * telnet put ingest: points per server CPU-second (vs its OpenTSDB listener);
  * bytes on disk per point once the data settled (ours: after a clean
    shutdown following the load and the queries, before the 100-point requests
    write old points again; InfluxDB: after its full compaction), TSBS integers
    and a 2-decimal float random walk;
  * the four TSBS-style queries: median latency and server CPU per query, and
    whether the answers are identical. The query set runs in rounds (--query-rounds,
    default 3): the first right after each server's load, the others at the end,
    alternating the two servers, each restarted on the data of its load. A figure
    is the median of the rounds' medians (CPU: all runs pooled), so a slow spell of
    the shared machine lands in one round of each side rather than in the only
    measurement of one side;
  * peak RSS during the integer load;
  * ours only: p99 latency of 100-point requests at 50 % of their peak rate,
    cold start on an empty data dir, restart after kill -9 with 10 M points in the WAL.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.abspath(os.environ.get("BENCH_HARNESS", os.path.join(ROOT, "..", "shared", "bench")))
sys.path.insert(0, BENCH)

import gen  # noqa: E402
import influx  # noqa: E402
import load  # noqa: E402
import query  # noqa: E402

HTTP_PORT, TELNET_PORT = 18080, 14242


def log(msg):
    print(msg, flush=True)


def dataset(work, name, hosts, duration, values):
    d = os.path.join(work, name)
    if not os.path.exists(os.path.join(d, "manifest.json")):
        log("== generating %s (%d hosts, %s, %s values)" % (name, hosts, duration, values))
        gen.generate(d, hosts_n=hosts, duration=duration, values=values)
    with open(os.path.join(d, "manifest.json")) as f:
        return d, json.load(f)["formats"]["kairos"]["points"]


def du_bytes(path):
    out = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


# ---------------------------------------------------------------------------
# kairosdb-rs process control
# ---------------------------------------------------------------------------

class Kairos:
    def __init__(self, binary, data_dir, extra_env=None):
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
        env.update({
            "KAIROSDB_DATA_DIR": data_dir,
            "KAIROSDB_BIND_ADDRESS": "127.0.0.1:%d" % HTTP_PORT,
            "KAIROSDB_TELNET_BIND_ADDRESS": "127.0.0.1:%d" % TELNET_PORT,
            "RUST_LOG": "warn",
        })
        env.update(extra_env or {})
        self.log = open(data_dir.rstrip("/") + ".log", "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening"):
            raise SystemExit("kairosdb did not start: %r (log: %s.log)" % (line, data_dir))
        self.listening_s = time.perf_counter() - t0
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        # Ready = the storage answers (after WAL replay on a restart).
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=5)
                c.request("GET", "/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit("kairosdb exited (log: %s.log)" % data_dir)
            time.sleep(0.005)
        self.ready_s = time.perf_counter() - t0
        self.pid = self.proc.pid

    def stop(self):
        """SIGTERM: the clean shutdown seals every head into compressed blocks."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


def kairos_url(path=""):
    return "http://127.0.0.1:%d%s" % (HTTP_PORT, path)


def kairos_metric(name):
    """The value of one un-labelled series of our /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


# ---------------------------------------------------------------------------
# 100-point requests at half their peak rate (our p99 ingest latency)
# ---------------------------------------------------------------------------

def small_bodies(data, n_points=100, limit=2000):
    """Splits the first KairosDB JSON files into bodies of ~n_points points."""
    with open(os.path.join(data, "manifest.json")) as f:
        files = json.load(f)["formats"]["kairos"]["files"]
    bodies = []
    for entry in files:
        with open(os.path.join(data, entry[0])) as f:
            metrics = json.load(f)
        cur, count = [], 0
        for m in metrics:
            dps = m["datapoints"]
            for i in range(0, len(dps), n_points):
                chunk = dps[i:i + n_points - count]
                cur.append({"name": m["name"], "tags": m["tags"], "datapoints": chunk})
                count += len(chunk)
                if count >= n_points:
                    bodies.append(json.dumps(cur).encode())
                    cur, count = [], 0
                    if len(bodies) >= limit:
                        return bodies
    return bodies


def paced_load(bodies, rate, seconds, conns=4):
    """Sends bodies at `rate` requests/s (0 = as fast as possible) over `conns`
    keep-alive connections; returns (requests/s achieved, sorted latencies s, errors)."""
    lat, errors, lock = [], [0], threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds
    per_conn = rate / conns if rate else 0

    def worker(w):
        c = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
        i, n = w, 0
        while True:
            if per_conn:
                due = start + n / per_conn
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
            t = time.perf_counter()
            if t >= deadline:
                break
            try:
                c.request("POST", "/api/v1/datapoints", bodies[i % len(bodies)],
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                ok = r.status == 204
            except OSError:
                ok = False
                c = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if not ok:
                    errors[0] += 1
            i += conns
            n += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    return len(lat) / (time.perf_counter() - start), lat, errors[0]


# ---------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------

# Queries this fast get ten times the runs (on both servers), so that their server CPU
# spans more than a few of /proc's 10 ms clock ticks.
RUNS_SCALE = {"single-groupby-1-1-1": 10}


def run_query_set(data, target, url, runs, dump, pids):
    """The harness's query set, one type at a time (runs scaled by RUNS_SCALE); the
    answers of every type go to `dump`, as one run_queries call would write them."""
    res, answers = {}, {}
    for qt in query.QTYPES:
        part = "%s.%s" % (dump, qt)
        res.update(query.run_queries(data, target, url, "bench", runs=runs * RUNS_SCALE.get(qt, 1),
                                     types=[qt], dump=part, pids=pids))
        with open(part) as f:
            answers.update(json.load(f))
        os.remove(part)
    with open(dump, "w") as f:
        json.dump(answers, f, indent=0, sort_keys=True)
    return res


def run_influx(work, ints, floats, conc, query_runs):
    res = {}
    d = os.path.join(work, "influx-int")
    shutil.rmtree(d, ignore_errors=True)
    pid = influx.start(d)
    try:
        r = load.run_load(ints, "influx", "http://127.0.0.1:8086/write?db=bench", concurrency=conc, pids=[pid],
                          label="influx http", quiet_max=30)
        log(load.summary(r))
        cpu0 = load.proc_cpu([pid])
        comp = influx.wait_compacted(d, "bench", 300)
        after = load.proc_cpu([pid]) - cpu0
        r["points_per_server_cpu_s_incl_after"] = round(r["points"] / (r["server_cpu_s"] + after))
        r["bytes_per_point"] = round(influx.du(d)["total_bytes"] / r["points"], 3)
        r["compaction"] = comp
        # r["server_peak_rss_MB"] is VmHWM at the end of the load (run_load).
        r["server_peak_rss_after_compaction_MB"] = round(load.proc_mem(pid)[1] / 2**20, 1)
        res["http"] = r
        res["queries"] = run_query_set(ints, "influx", "http://127.0.0.1:8086", query_runs,
                                       os.path.join(work, "influx_answers.json"), [pid])
        log(query.table(res["queries"]))
    finally:
        influx.stop(d)

    d = os.path.join(work, "influx-float")
    shutil.rmtree(d, ignore_errors=True)
    pid = influx.start(d)
    try:
        r = load.run_load(floats, "influx", "http://127.0.0.1:8086/write?db=bench", concurrency=conc, pids=[pid],
                          label="influx http float", quiet_max=30)
        influx.wait_compacted(d, "bench", 300)
        res["float_bytes_per_point"] = round(influx.du(d)["total_bytes"] / r["points"], 3)
    finally:
        influx.stop(d)

    d = os.path.join(work, "influx-telnet")
    shutil.rmtree(d, ignore_errors=True)
    pid = influx.start(d, opentsdb_port=TELNET_PORT)
    try:
        r = load.run_load(ints, "telnet", telnet="127.0.0.1:%d" % TELNET_PORT, concurrency=2, pids=[pid],
                          label="influx opentsdb telnet", quiet_max=30, settle=60)
        log(load.summary(r))
        res["telnet"] = r
    finally:
        influx.stop(d)
    return res


def run_ours(work, binary, ints, floats, conc, query_runs):
    res = {}
    # Cold start on an empty data dir.
    d = os.path.join(work, "kairos-cold")
    shutil.rmtree(d, ignore_errors=True)
    k = Kairos(binary, d)
    res["cold_start_ms"] = round(k.ready_s * 1e3, 1)
    k.stop()

    d = os.path.join(work, "kairos-int")
    shutil.rmtree(d, ignore_errors=True)
    k = Kairos(binary, d)
    try:
        r = load.run_load(ints, "kairos", kairos_url("/api/v1/datapoints"), concurrency=conc, pids=[k.pid],
                          label="kairosdb-rs http", quiet_max=30, settle=30)
        log(load.summary(r))
        r["points_per_server_cpu_s_incl_after"] = r.get("points_per_server_cpu_s_incl_settle") or \
            r["points_per_server_cpu_s"]
        res["http"] = r
        res["queries"] = run_query_set(ints, "kairos", kairos_url(), query_runs,
                                       os.path.join(work, "kairos_answers.json"), [k.pid])
        log(query.table(res["queries"]))
        # r["server_peak_rss_MB"] is VmHWM at the end of the load (run_load).
        res["http"]["server_peak_rss_after_queries_MB"] = round(load.proc_mem(k.pid)[1] / 2**20, 1)
        # Bytes per point of the same data InfluxDB holds when it is measured: the
        # 100-point requests below write the first 200 k points again and again.
        res["block_bytes_per_point"] = round(
            kairos_metric("kairosdb_engine_block_bytes") / res["http"]["points"], 3)
        k.stop()
        res["bytes_per_point"] = round(du_bytes(d) / res["http"]["points"], 3)
        # The later query rounds read this state, not the one the 100-point requests
        # below leave behind (InfluxDB's data is not written again either).
        shutil.rmtree(d + "-queries", ignore_errors=True)
        shutil.copytree(d, d + "-queries")
        k = Kairos(binary, d)

        # 100-point requests: peak rate, then half of it for the latency figure.
        bodies = small_bodies(ints)
        peak, _, _ = paced_load(bodies, 0, 5)
        rate, lat, errs = paced_load(bodies, peak / 2, 10)
        res["small_requests"] = {"peak_req_s": round(peak), "paced_req_s": round(rate),
                                 "p50_ms": round(load.pct(lat, 50) * 1e3, 2),
                                 "p99_ms": round(load.pct(lat, 99) * 1e3, 2), "errors": errs}
        log("100-point requests: peak %d req/s; at %d req/s p50 %.2f ms, p99 %.2f ms" % (
            peak, rate, res["small_requests"]["p50_ms"], res["small_requests"]["p99_ms"]))
        # The rewrites sealed blocks lying over older ones; maintenance compacts them
        # some seconds later (docs/format/index.md, "Compaction"). Measure once that has run.
        t0 = time.perf_counter()
        while kairos_metric("kairosdb_engine_unsettled_series") > 0 and time.perf_counter() - t0 < 120:
            time.sleep(0.5)
        res["small_requests"]["settled_s"] = round(time.perf_counter() - t0, 1)
        res["small_requests"]["compacted_blocks"] = kairos_metric("kairosdb_engine_blocks_compacted_total")
        res["small_requests"]["block_bytes_per_point"] = round(
            kairos_metric("kairosdb_engine_block_bytes") / res["http"]["points"], 3)
        log("compaction settled after %.1f s (%d blocks merged)" % (
            res["small_requests"]["settled_s"], res["small_requests"]["compacted_blocks"]))
    finally:
        k.stop()
    res["bytes_per_point_after_small_requests"] = round(du_bytes(d) / res["http"]["points"], 3)

    # Restart with 10 M points in the WAL, the figure: 1,000 hosts x 10 metrics x
    # 1,008 points (2.8 h at 10 s) from the repo's load tool. Each series stays below the
    # 2,048-point seal threshold, so every point is still in the WAL at the kill -9.
    d = os.path.join(work, "kairos-wal")
    shutil.rmtree(d, ignore_errors=True)
    k = Kairos(binary, d)
    tool = os.path.join(os.path.dirname(binary), "kairosdb-bench")
    subprocess.run([tool, "http", "--url", kairos_url(), "--hosts", "1000", "--hours", "2.8",
                    "--concurrency", "4"], check=True, stdout=subprocess.DEVNULL)
    unsealed = kairos_metric("kairosdb_engine_head_points")
    k.kill9()
    wal = du_bytes(os.path.join(d, "wal")) if os.path.isdir(os.path.join(d, "wal")) else 0
    k = Kairos(binary, d)
    res["restart_after_kill9"] = {"ready_ms": round(k.ready_s * 1e3, 1), "wal_bytes": wal,
                                  "points_unsealed_at_kill": unsealed,
                                  "points_replayed": kairos_metric("kairosdb_engine_wal_replayed_points_total")}
    log("restart after kill -9: %d points replayed from %.0f MB of WAL, ready in %.0f ms" % (
        res["restart_after_kill9"]["points_replayed"], wal / 2**20, k.ready_s * 1e3))
    k.stop()

    d = os.path.join(work, "kairos-float")
    shutil.rmtree(d, ignore_errors=True)
    k = Kairos(binary, d)
    r = load.run_load(floats, "kairos", kairos_url("/api/v1/datapoints"), concurrency=conc, pids=[k.pid],
                      label="kairosdb-rs http float", quiet_max=30)
    k.stop()
    res["float_bytes_per_point"] = round(du_bytes(d) / r["points"], 3)

    d = os.path.join(work, "kairos-telnet")
    shutil.rmtree(d, ignore_errors=True)
    k = Kairos(binary, d)
    try:
        r = load.run_load(ints, "telnet", telnet="127.0.0.1:%d" % TELNET_PORT, concurrency=2, pids=[k.pid],
                          label="kairosdb-rs telnet", quiet_max=30, settle=30, telnet_sync="version")
        log(load.summary(r))
        res["telnet"] = r
    finally:
        k.stop()
    return res


def query_rounds(work, binary, ints, query_runs, rounds, sides):
    """Rounds 2..`rounds` of the query set, each running InfluxDB and then ours
    (`sides` may hold one of the two), each server started again on the data of its
    integer load. Returns {side: [results of round 2, round 3, ...]}."""
    out = {side: [] for side in sides}
    for r in range(2, rounds + 1):
        if "influx" in sides:
            d = os.path.join(work, "influx-int")
            pid = influx.start(d)
            try:
                res = run_query_set(ints, "influx", "http://127.0.0.1:8086", query_runs,
                                    os.path.join(work, "influx_answers_round.json"), [pid])
            finally:
                influx.stop(d)
            log("InfluxDB, query round %d\n%s" % (r, query.table(res)))
            out["influx"].append(res)
        if "ours" in sides:
            k = Kairos(binary, os.path.join(work, "kairos-int-queries"))
            try:
                res = run_query_set(ints, "kairos", kairos_url(), query_runs,
                                    os.path.join(work, "kairos_answers_round.json"), [k.pid])
            finally:
                k.stop()
            log("kairosdb-rs, query round %d\n%s" % (r, query.table(res)))
            out["ours"].append(res)
    return out


def combine_rounds(rounds):
    """One result per query type from the rounds: the median of their medians, the
    server CPU of all their runs pooled, and every round's median for the record."""
    out = {}
    for qt in rounds[0]:
        rs = [r[qt] for r in rounds]
        x = dict(rs[0])
        x["round_medians_ms"] = [r["median_ms"] for r in rs]
        x["median_ms"] = statistics.median(x["round_medians_ms"])
        x["runs"] = sum(r["runs"] for r in rs)
        cpus = [r["server_cpu_ms_per_query"] for r in rs]
        if None not in cpus:
            x["server_cpu_ms_per_query"] = round(sum(c * r["runs"] for c, r in zip(cpus, rs)) / x["runs"], 3)
        out[qt] = x
    return out


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def report(ours, theirs, answers_same):
    rows = []

    def row(name, a, b, target, lower_is_better):
        ratio = (a / b) if (a is not None and b) else None
        ok = None
        if ratio is not None and target is not None:
            ok = ratio <= target if lower_is_better else ratio >= target
        rows.append((name, a, b, ratio, target, lower_is_better, ok))

    row("HTTP ingest, points per server CPU-s", ours["http"]["points_per_server_cpu_s_incl_after"],
        theirs["http"]["points_per_server_cpu_s_incl_after"], 3.0, False)
    row("HTTP ingest, points/s (wall)", ours["http"]["points_per_s"], theirs["http"]["points_per_s"], None, False)
    row("telnet ingest, points per server CPU-s", ours["telnet"].get("points_per_server_cpu_s_incl_settle")
        or ours["telnet"]["points_per_server_cpu_s"], theirs["telnet"].get("points_per_server_cpu_s_incl_settle")
        or theirs["telnet"]["points_per_server_cpu_s"], 10.0, False)
    row("bytes on disk per point, TSBS integers", ours["bytes_per_point"], theirs["http"]["bytes_per_point"], 1.0,
        True)
    row("bytes on disk per point, float walk", ours["float_bytes_per_point"], theirs["float_bytes_per_point"], 1.0,
        True)
    for qt, target in (("cpu-max-all-8", 0.2), ("double-groupby-1", 0.2), ("lastpoint", 0.2),
                       ("single-groupby-1-1-1", 0.5)):
        row("%s median latency ms" % qt, ours["queries"][qt]["median_ms"], theirs["queries"][qt]["median_ms"],
            target, True)
    for qt in ("cpu-max-all-8", "double-groupby-1", "lastpoint", "single-groupby-1-1-1"):
        row("%s server CPU ms/query" % qt, ours["queries"][qt]["server_cpu_ms_per_query"],
            theirs["queries"][qt]["server_cpu_ms_per_query"], 0.2, True)
    row("peak RSS MB during the load", ours["http"]["server_peak_rss_MB"], theirs["http"]["server_peak_rss_MB"], 0.5,
        True)

    def fmt(v):
        if v is None:
            return "-"
        return format(round(v), ",") if abs(v) >= 1000 else ("%.3g" % v)

    out = ["| figure | kairosdb-rs | InfluxDB | ratio | target | met |", "|---|---|---|---|---|---|"]
    for name, a, b, ratio, target, lower, ok in rows:
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            name, fmt(a), fmt(b), "%.2f×" % ratio if ratio is not None else "-",
            ("≤ %g×" if lower else "≥ %g×") % target if target is not None else "",
            {True: "yes", False: "**no**", None: ""}[ok]))
    s = ours["small_requests"]
    out.append("")
    out.append("| kairosdb-rs alone | value | target | met |")
    out.append("|---|---|---|---|")
    out.append("| p99 latency, 100-point requests at 50 %% of peak (%d of %d req/s) | %.2f ms | < 5 ms | %s |" % (
        s["paced_req_s"], s["peak_req_s"], s["p99_ms"], "yes" if s["p99_ms"] < 5 else "**no**"))
    out.append("| cold start, empty data dir (spawn → /health/ready) | %.0f ms | < 200 ms | %s |" % (
        ours["cold_start_ms"], "yes" if ours["cold_start_ms"] < 200 else "**no**"))
    rk = ours["restart_after_kill9"]
    ok = rk["ready_ms"] < 5000 and rk.get("points_replayed", 0) >= 10e6
    out.append("| restart after kill -9 with %.2f M points (%.0f MB) in the WAL (spawn → /health/ready) "
               "| %.0f ms | < 5 s | %s |" % (rk.get("points_replayed", 0) / 1e6, rk["wal_bytes"] / 2**20,
                                            rk["ready_ms"], "yes" if ok else "**no**"))
    if "bytes_per_point_after_small_requests" in ours:
        out.append("| bytes per point after the 100-point requests rewrote old points (%d req) and "
                   "compaction merged %d blocks (%.1f s later): on disk (fjall's journal keeps every "
                   "block version until it rotates at 64 MB) | %.3f | | |" % (
                       s["paced_req_s"] * 10 + s["peak_req_s"] * 5, s.get("compacted_blocks", 0),
                       s.get("settled_s", 0), ours["bytes_per_point_after_small_requests"]))
        if "block_bytes_per_point" in s:
            out.append("| encoded block bytes per point, live: after the load / after the rewrites and "
                       "compaction | %.3f / %.3f | | |" % (ours["block_bytes_per_point"],
                                                           s["block_bytes_per_point"]))
    out.append("| query answers identical to InfluxDB's (4 queries) | %s | all | %s |" % (
        "all" if answers_same else "differ", "yes" if answers_same else "**no**"))
    if "round_medians_ms" in ours["queries"][query.QTYPES[0]]:
        out.append("")
        out.append("| median latency ms in each query round | kairosdb-rs | InfluxDB |")
        out.append("|---|---|---|")
        for qt in query.QTYPES:
            out.append("| %s | %s | %s |" % (qt, " / ".join("%.2f" % m for m in ours["queries"][qt]["round_medians_ms"]),
                                            " / ".join("%.2f" % m for m in theirs["queries"][qt].get(
                                                "round_medians_ms", [theirs["queries"][qt]["median_ms"]]))))
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(ROOT, "target", "bench-vs-influxdb"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "kairosdb"))
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--duration", default="1d")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--query-runs", type=int, default=50)
    p.add_argument("--query-rounds", type=int, default=3,
                   help="rounds of the query set per server (the first right after its load)")
    p.add_argument("--only", choices=["ours", "influx"], help="run one side (reuses the other's last results)")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    t0 = time.time()
    ints, _ = dataset(a.work, "int-%dh-%s" % (a.hosts, a.duration), a.hosts, a.duration, "int")
    floats, _ = dataset(a.work, "float-%dh-%s" % (a.hosts, a.duration), a.hosts, a.duration, "float")
    results_path = os.path.join(a.work, "results.json")
    prev = json.load(open(results_path)) if os.path.exists(results_path) else {}
    theirs = prev.get("influxdb") if a.only == "ours" else None
    ours = prev.get("kairosdb-rs") if a.only == "influx" else None
    fresh = []
    if theirs is None:
        log("== InfluxDB")
        theirs = run_influx(a.work, ints, floats, a.concurrency, a.query_runs)
        fresh.append("influx")
    if ours is None:
        log("== kairosdb-rs")
        ours = run_ours(a.work, a.binary, ints, floats, a.concurrency, a.query_runs)
        fresh.append("ours")
    if a.query_rounds > 1 and fresh:
        log("== query rounds 2 to %d" % a.query_rounds)
        more = query_rounds(a.work, a.binary, ints, a.query_runs, a.query_rounds, fresh)
        for side, res in (("influx", theirs), ("ours", ours)):
            if side in fresh:
                res["query_rounds"] = [res["queries"]] + more[side]
                res["queries"] = combine_rounds(res["query_rounds"])
    log("== answers: InfluxDB vs kairosdb-rs")
    bad = query.compare(os.path.join(a.work, "influx_answers.json"), os.path.join(a.work, "kairos_answers.json"))
    table = report(ours, theirs, bad == 0)
    with open(results_path, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "influxdb": theirs,
                   "kairosdb-rs": ours, "answers_identical": bad == 0}, f, indent=1, default=str)
    log("\n== %s, %d hosts x %s, c=%d, %.0f s in all\n" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                          a.hosts, a.duration, a.concurrency, time.time() - t0))
    log(table)


if __name__ == "__main__":
    main()

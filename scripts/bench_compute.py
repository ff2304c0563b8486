#!/usr/bin/env python3
"""A worker's `POST /compute` over the embedded engine against DuckDB, same data, one run.

Run through scripts/bench-compute.sh, which builds the release binary, installs DuckDB
in a venv, starts a control node and one worker on loopback and calls this script with
the worker's and the control node's addresses and PIDs.

1. Generates one data set, deterministically: HOSTS hosts x 24 h at 10 s, one double
   per point (a random walk rounded to 2 decimals), metric `cpu`, tags `host` and `dc`,
   written in time order (every host's point of one instant, then the next instant).
2. Loads it into the worker (`POST /insert`, bincode, 10,000 metrics a request, one
   connection) and, the same points, into an in-memory DuckDB table
   `points(host, dc, ts BIGINT epoch ms, value DOUBLE)` (`COPY` from a CSV file). Load
   times are reported apart and are not part of any query time.
3. Runs three queries on both sides, interleaved, ROUNDS times after one untimed warm-up
   that also checks the answers:
     whole: avg,min,max,sum,count per host over the whole day (no window)
     1m:    the same per host per 1-minute bucket
     p95-1h: p95 per host per 1-hour bucket
   Ours, as a client sees it (time from sending the request to the last byte of the
   answer; for JSON also with `json.loads`):
     * the worker's `POST /compute`, JSON and bincode answers: partial aggregates
       (count, sum, min, max per bucket; for a percentile every value of the bucket,
       which the caller must still sort: the control node does that);
     * the control node's `GET /aggregate` over this one worker: finished rows (JSON).
   DuckDB, in this process: `execute` + `fetchall` (rows as Python tuples) with its
   default thread count and with `SET threads = 1`, and `CREATE TEMP TABLE AS` (the
   answer materialised inside DuckDB, no conversion to Python).
   CPU per query: ours from /proc/PID/task/*/schedstat of the server processes that
   answered; DuckDB's from this process' CPU time.
4. Checks both sides agree (same groups and buckets, equal counts, minimums and maximums,
   sums and averages within 1e-9 relative; our p95 equals KairosDB's interpolation
   computed here from the generated values; DuckDB's quantile_cont interpolates
   differently, the largest difference is printed) and fails loudly otherwise. Prints
   the table.
"""
import argparse
import http.client
import json
import math
import os
import random
import statistics
import struct
import sys
import time
import urllib.parse

import duckdb

DAY_START = 1714521600000  # 2024-05-01T00:00:00Z
DAY_MS = 86_400_000
STEP_MS = 10_000
KEY = "cpu"


def log(msg):
    print(msg, flush=True)


def fail(msg):
    print("FAILED: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def generate(hosts):
    """[(host, dc, ts, value)] in time order; deterministic (seeded Mersenne Twister)."""
    rng = random.Random(19)
    names = ["host_%03d" % h for h in range(hosts)]
    dcs = ["dc_%d" % (h % 4) for h in range(hosts)]
    level = [rng.uniform(10, 90) for _ in range(hosts)]
    points = []
    for t in range(DAY_START, DAY_START + DAY_MS, STEP_MS):
        for h in range(hosts):
            level[h] = min(100.0, max(0.0, level[h] + rng.gauss(0, 1.5)))
            points.append((names[h], dcs[h], t, round(level[h], 2)))
    return points


def bincode_metric(host, dc, ts, value):
    """A PlanMetric in bincode 1.x (docs/cluster.md, "Bincode"): tags in name order."""
    out = [struct.pack("<Q", len(KEY)), KEY.encode(), struct.pack("<dqQ", value, ts, 2)]
    for name, v in (("dc", dc), ("host", host)):
        out += [struct.pack("<Q", len(name)), name.encode(), struct.pack("<Q", len(v)), v.encode()]
    return b"".join(out)


def load_ours(conn, points, batch):
    # The bodies are encoded first: the clock runs for the requests only.
    bodies = [struct.pack("<Q", len(points[i:i + batch]))
              + b"".join(bincode_metric(*p) for p in points[i:i + batch])
              for i in range(0, len(points), batch)]
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        conn.request("POST", "/insert", body, {"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        answer = r.read()
        if r.status != 200 or json.loads(answer)["count"] != min(batch, len(points) - i * batch):
            fail("insert: %d %s" % (r.status, answer[:500]))
    return time.perf_counter() - started


def load_duckdb(con, points, work):
    csv = os.path.join(work, "points.csv")
    with open(csv, "w") as f:
        for host, dc, ts, value in points:
            f.write("%s,%s,%d,%r\n" % (host, dc, ts, value))
    con.execute("CREATE TABLE points (host VARCHAR, dc VARCHAR, ts BIGINT, value DOUBLE)")
    started = time.perf_counter()
    con.execute("COPY points FROM '%s' (HEADER false)" % csv)
    took = time.perf_counter() - started
    n = con.execute("SELECT count(*) FROM points").fetchone()[0]
    if n != len(points):
        fail("DuckDB holds %d points, not %d" % (n, len(points)))
    return took


def engine_layout(conn):
    conn.request("GET", "/health")
    r = conn.getresponse()
    figures = json.loads(r.read())["storage"]["figures"]
    return figures["engine_head_points"], figures["engine_blocks"]


# ---------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------

FROM, TO = DAY_START, DAY_START + DAY_MS
QUERIES = {
    "whole": {
        "params": {"key": KEY, "from": FROM, "to": TO, "group_by": ["host"],
                   "agg": "avg,min,max,sum,count"},
        "sql": "SELECT host, %d AS bucket, avg(value), min(value), max(value), sum(value), "
               "count(*) FROM points WHERE ts >= %d AND ts < %d GROUP BY host" % (FROM, FROM, TO),
    },
    "1m": {
        "params": {"key": KEY, "from": FROM, "to": TO, "window": "1m", "group_by": ["host"],
                   "agg": "avg,min,max,sum,count"},
        "sql": "SELECT host, ts // 60000 * 60000 AS bucket, avg(value), min(value), max(value), "
               "sum(value), count(*) FROM points WHERE ts >= %d AND ts < %d "
               "GROUP BY host, bucket" % (FROM, TO),
    },
    "p95-1h": {
        "params": {"key": KEY, "from": FROM, "to": TO, "window": "1h", "group_by": ["host"],
                   "agg": "p95"},
        "sql": "SELECT host, ts // 3600000 * 3600000 AS bucket, quantile_cont(value, 0.95), "
               "count(*) FROM points WHERE ts >= %d AND ts < %d GROUP BY host, bucket" % (FROM, TO),
    },
}


def aggregate_path(params):
    pairs = []
    for k, v in params.items():
        for item in (v if isinstance(v, list) else [v]):
            pairs.append((k, str(item)))
    return "/aggregate?" + urllib.parse.urlencode(pairs)


def cpu_seconds(pids):
    """CPU time of every thread of `pids` (schedstat: nanoseconds, not 10 ms ticks)."""
    total = 0
    for pid in pids:
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:  # a thread that just ended
                pass
    return total / 1e9


class Timed:
    """Wall seconds per run (and extra stamps) and CPU seconds, pooled over runs."""

    def __init__(self):
        self.wall = []
        self.cpu = 0.0


def http_call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body, headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        fail("%s %s: %d %s" % (method, path, r.status, data[:500]))
    return data


def run_ours(kind, q, worker, control, pids):
    """One timed call; returns (seconds to the last byte, seconds incl. `json.loads`, the
    answer's bytes, the answer (parsed when JSON), CPU seconds of the answering processes)."""
    if kind == "aggregate":
        conn, who = control, pids
        args = ("GET", aggregate_path(q["params"]))
    else:
        conn, who = worker, pids[1:]
        accept = "application/octet-stream" if kind == "compute-bincode" else "application/json"
        args = ("POST", "/compute", json.dumps(q["params"]),
                {"Content-Type": "application/json", "Accept": accept})
    cpu0 = cpu_seconds(who)
    t0 = time.perf_counter()
    data = http_call(conn, *args)
    t1 = time.perf_counter()
    answer = json.loads(data) if kind != "compute-bincode" else data
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, data, answer, cpu_seconds(who) - cpu0


def run_duck(kind, q, con):
    con.execute("SET threads = %d" % (1 if kind == "duckdb-1t" else DUCK_THREADS))
    c0 = time.process_time()
    t0 = time.perf_counter()
    if kind == "duckdb-ctas":
        con.execute("CREATE OR REPLACE TEMP TABLE answer AS " + q["sql"])
        rows = None
    else:
        rows = con.execute(q["sql"]).fetchall()
    t1 = time.perf_counter()
    return t1 - t0, rows, time.process_time() - c0


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def decode_partials(data):
    """`Partials` from bincode (docs/cluster.md): [(group, [(start, count, sum, min, max,
    values)])]."""
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        (n,) = take("<Q")
        s = data[pos:pos + n].decode()
        pos += n
        return s

    groups = []
    (ng,) = take("<Q")
    for _ in range(ng):
        (nt,) = take("<Q")
        group = [string() if take("<B")[0] == 1 else None for _ in range(nt)]
        (nb,) = take("<Q")
        buckets = []
        for _ in range(nb):
            start, count, s, lo, hi, nv = take("<qQdddQ")
            values = list(take("<%dd" % nv)) if nv else []
            buckets.append((start, count, s, lo, hi, values))
        groups.append((group, buckets))
    if pos != len(data):
        fail("bincode partials: %d trailing bytes" % (len(data) - pos))
    return groups


def from_json_partials(answer):
    return [(g["group"], [(b[0], b[1]["count"], b[1]["sum"], b[1]["min"], b[1]["max"],
                           b[1]["values"]) for b in g["buckets"]])
            for g in answer["groups"]]


def close(a, b):
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def kairos_percentile(sorted_values, p):
    """KairosDB's interpolation, as kairosdb_query::percentile_sorted."""
    n = len(sorted_values)
    pos = p * (n + 1.0)
    if pos < 1.0:
        return sorted_values[0]
    if pos >= n:
        return sorted_values[n - 1]
    lower, upper = sorted_values[int(pos) - 1], sorted_values[int(pos)]
    return lower + (pos - math.floor(pos)) * (upper - lower)


def check(name, partials, rows, aggregate, expected_values):
    """Fails unless our partials, our /aggregate rows and DuckDB's rows agree."""
    duck = {(r[0], r[1]): r[2:] for r in rows}
    ours = {(g[0][0], b[0]): b for g in partials for b in g[1]}
    if len(ours) != sum(len(g[1]) for g in partials):
        fail("%s: duplicate buckets in /compute" % name)
    if set(ours) != set(duck):
        fail("%s: /compute has %d groups x buckets, DuckDB %d; first differences %s" % (
            name, len(ours), len(duck), sorted(set(ours) ^ set(duck))[:5]))
    agg_rows = {(r["group"]["host"], r["timestamp"]): r for r in aggregate["results"]}
    if set(agg_rows) != set(duck):
        fail("%s: /aggregate has %d rows, DuckDB %d" % (name, len(agg_rows), len(duck)))
    worst_p95 = 0.0
    for k, (_, count, s, lo, hi, values) in ours.items():
        d, a = duck[k], agg_rows[k]
        if name == "p95-1h":
            (dq, dcount) = d
            if count != dcount or len(values) != count or a["p95"] is None:
                fail("%s %s: counts %d / %d values / DuckDB %d" % (name, k, count, len(values), dcount))
            if sorted(values) != expected_values[k]:
                fail("%s %s: /compute's values are not the points written" % (name, k))
            want = kairos_percentile(expected_values[k], 0.95)
            if a["p95"] != want:
                fail("%s %s: /aggregate p95 %r, KairosDB's interpolation %r" % (name, k, a["p95"], want))
            worst_p95 = max(worst_p95, abs(a["p95"] - dq))
            continue
        davg, dmin, dmax, dsum, dcount = d
        if count != dcount or a["count"] != dcount:
            fail("%s %s: count %d (/aggregate %d), DuckDB %d" % (name, k, count, a["count"], dcount))
        if lo != dmin or hi != dmax or a["min"] != dmin or a["max"] != dmax:
            fail("%s %s: min/max %r/%r, DuckDB %r/%r" % (name, k, lo, hi, dmin, dmax))
        if not (close(s, dsum) and close(a["sum"], dsum) and close(a["avg"], davg)):
            fail("%s %s: sum %r avg %r, DuckDB %r %r" % (name, k, a["sum"], a["avg"], dsum, davg))
    return len(ours), worst_p95


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

BUCKETS = {"whole": 1, "1m": 1440, "p95-1h": 24}
OURS = ["compute-json", "compute-bincode", "aggregate"]
DUCK = ["duckdb", "duckdb-1t", "duckdb-ctas"]
DUCK_THREADS = 0


def fmt_ms(xs):
    return "%.1f (%.1f–%.1f)" % (statistics.median(xs) * 1000, min(xs) * 1000, max(xs) * 1000)


def main():
    global DUCK_THREADS
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True, help="host:port")
    ap.add_argument("--control", required=True, help="host:port")
    ap.add_argument("--pids", required=True, help="control PID,worker PID")
    ap.add_argument("--work", required=True, help="a scratch directory")
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    pids = [int(p) for p in args.pids.split(",")]

    log("== DuckDB %s, Python %s" % (duckdb.__version__, sys.version.split()[0]))
    points = generate(args.hosts)
    log("== %d points (%d hosts x 24 h at 10 s)" % (len(points), args.hosts))
    expected_values = {}
    for host, _, ts, value in points:
        k = (host, ts // 3_600_000 * 3_600_000)
        expected_values.setdefault(k, []).append(value)
    for v in expected_values.values():
        v.sort()

    worker = http.client.HTTPConnection(*args.worker.split(":"), timeout=300)
    control = http.client.HTTPConnection(*args.control.split(":"), timeout=300)
    took = load_ours(worker, points, 10_000)
    log("load ours: %.2f s (%.0f points/s), POST /insert, bincode, 10,000 a request, 1 connection"
        % (took, len(points) / took))
    # The background seal writes heads past 2,048 points into blocks; wait until it is
    # done (the figures stop moving for 3 s) so every run reads the same layout.
    t0 = time.perf_counter()
    last, stable_since = None, time.perf_counter()
    while time.perf_counter() - stable_since < 3:
        now = engine_layout(worker)
        if now != last:
            last, stable_since = now, time.perf_counter()
        time.sleep(0.2)
    log("ours settled after %.1f s: %d points in the head, %d blocks"
        % (time.perf_counter() - t0, last[0], last[1]))

    con = duckdb.connect(":memory:")
    DUCK_THREADS = con.execute("SELECT current_setting('threads')").fetchone()[0]
    took = load_duckdb(con, points, args.work)
    log("load DuckDB: %.2f s (%.0f points/s), COPY from CSV, in memory, %d threads"
        % (took, len(points) / took, DUCK_THREADS))

    # Warm-up and checks.
    for name, q in QUERIES.items():
        _, _, text, partials, _ = run_ours("compute-json", q, worker, control, pids)
        _, _, raw, _, _ = run_ours("compute-bincode", q, worker, control, pids)
        _, _, _, aggregate, _ = run_ours("aggregate", q, worker, control, pids)
        _, rows, _ = run_duck("duckdb", q, con)
        _, rows1, _ = run_duck("duckdb-1t", q, con)
        run_duck("duckdb-ctas", q, con)
        partials = from_json_partials(partials)
        if decode_partials(raw) != partials:
            fail("%s: the bincode answer differs from the JSON one" % name)
        # Parallel sums add in another order: equal up to rounding.
        if len(rows) != len(rows1) or not all(
                a[:2] == b[:2] and all(x == y or close(x, y) for x, y in zip(a[2:], b[2:]))
                for a, b in zip(sorted(rows), sorted(rows1))):
            fail("%s: DuckDB answers differently with 1 thread" % name)
        buckets, worst = check(name, partials, rows, aggregate, expected_values)
        log("check %-7s: %d groups x buckets agree (counts, min, max equal; sums, averages "
            "within 1e-9)%s, /compute answer %.1f MB JSON, %.1f MB bincode"
            % (name, buckets, "; p95 = KairosDB's interpolation, largest difference to "
               "DuckDB's quantile_cont %.4f" % worst if name == "p95-1h" else "",
               len(text) / 1e6,
               len(raw) / 1e6))

    times = {(n, k): Timed() for n in QUERIES for k in OURS + DUCK}
    parsed = {n: [] for n in QUERIES}
    for r in range(args.rounds):
        for name, q in QUERIES.items():
            order = OURS + DUCK if r % 2 == 0 else DUCK + OURS
            for kind in order:
                t = times[(name, kind)]
                if kind in OURS:
                    wall, with_decode, _, answer, cpu = run_ours(kind, q, worker, control, pids)
                    if kind == "compute-json":
                        parsed[name].append(with_decode)
                        if len(answer["groups"]) != args.hosts:
                            fail("%s: %d groups" % (name, len(answer["groups"])))
                else:
                    wall, rows, cpu = run_duck(kind, q, con)
                    if rows is not None and len(rows) != args.hosts * BUCKETS[name]:
                        fail("%s: DuckDB answered %d rows" % (name, len(rows)))
                t.wall.append(wall)
                t.cpu += cpu
        log("round %d done" % (r + 1))

    log("")
    log("median (min–max) ms over %d rounds" % args.rounds)
    header = ["query", "/compute JSON", "/compute JSON + json.loads", "/compute bincode",
              "control /aggregate", "DuckDB fetchall, %d threads" % DUCK_THREADS,
              "DuckDB fetchall, 1 thread", "DuckDB CREATE TEMP TABLE AS"]
    log("| " + " | ".join(header) + " |")
    log("|" + "---|" * len(header))
    for name in QUERIES:
        cells = [name]
        for kind in OURS + DUCK:
            cells.append(fmt_ms(times[(name, kind)].wall))
            if kind == "compute-json":
                cells.append(fmt_ms(parsed[name]))
        log("| " + " | ".join(cells) + " |")
    log("")
    header = ["query"] + OURS + ["duckdb (%d threads)" % DUCK_THREADS, "duckdb-1t", "duckdb-ctas"]
    log("CPU ms per query (ours: the server processes that answered; DuckDB: this process)")
    log("| " + " | ".join(header) + " |")
    for name in QUERIES:
        cells = [name] + ["%.1f" % (times[(name, k)].cpu * 1000 / args.rounds) for k in OURS + DUCK]
        log("| " + " | ".join(cells) + " |")
    log("")
    log("ratio of medians, /compute JSON ÷ DuckDB fetchall (%d threads): %s" % (DUCK_THREADS, ", ".join(
        "%s %.2f" % (n, statistics.median(times[(n, "compute-json")].wall)
                     / statistics.median(times[(n, "duckdb")].wall)) for n in QUERIES)))
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump({"%s/%s" % k: {"wall": v.wall, "cpu": v.cpu} for k, v in times.items()}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""kairosdb-rs against the Java KairosDB, both on one Apache Cassandra node, in one run.

Run through scripts/bench-vs-java.sh (which builds the release binary and starts
Cassandra). Uses the neutral harness in ../shared/bench (data, load driver, query set)
for both servers: the Java KairosDB 1.3.0-1 (scripts/kairosdb-java.sh) on keyspace
`bench_java`, then kairosdb-rs in Cassandra mode on keyspace `bench_rs`, the same data
through the same HTTP API. Prints one table of both sides and their ratios; raw
results go to WORK/results.json.

Figures:
  * HTTP ingest: points per server CPU-second (the KairosDB process only), counting the
    CPU it spends after the last answer until it is idle (Java's write buffer, our
    delivery queue), and Cassandra's CPU-seconds per million points for each side;
  * the wall time from the first request until every point is readable;
  * the four TSBS-style queries: median latency per query type and whether the two
    servers' answers are identical, in alternating rounds (Java, ours, Java, ours...).
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.abspath(os.environ.get("BENCH_HARNESS", os.path.join(ROOT, "..", "shared", "bench")))
sys.path.insert(0, BENCH)

import gen  # noqa: E402
import load  # noqa: E402
import query  # noqa: E402

CASSANDRA = "127.0.0.1:%s" % os.environ.get("CASSANDRA_PORT", "19042")
JAVA_PORT, OURS_PORT = 18080, 18081


def log(msg):
    print(msg, flush=True)


def pidfile(path):
    with open(os.path.join(ROOT, path)) as f:
        return int(f.read().strip())


def http_json(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def stored_points(port, data):
    """Points the server can read back: a count over every metric of the dataset."""
    with open(os.path.join(data, "manifest.json")) as f:
        m = json.load(f)
    params = m["params"]
    names = [params.get("prefix", "cpu.") + f for f in gen.FIELDS]
    q = {"start_absolute": 0, "end_absolute": 4102444800000,
         "metrics": [{"name": n, "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}]}
                     for n in names]}
    status, answer = http_json(port, "POST", "/api/v1/datapoints/query", q)
    if status != 200:
        return -1
    total = 0
    for qr in answer["queries"]:
        for res in qr["results"]:
            total += sum(v[1] for v in res["values"])
    return total


def wait_readable(port, data, points, max_s=900):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        n = stored_points(port, data)
        if n >= points:
            return time.perf_counter() - t0
        time.sleep(2)
    raise SystemExit("only %d of %d points readable after %d s" % (stored_points(port, data), points, max_s))


class Ours:
    def __init__(self, binary, work):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
        env.update({
            "KAIROSDB_DATA_DIR": os.path.join(work, "ours-data"),
            "KAIROSDB_BIND_ADDRESS": "127.0.0.1:%d" % OURS_PORT,
            "KAIROSDB_TELNET_BIND_ADDRESS": "127.0.0.1:0",
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": CASSANDRA,
            "KAIROSDB_CASSANDRA_KEYSPACE": "bench_rs",
            "RUST_LOG": "warn",
        })
        self.log = open(os.path.join(work, "ours.log"), "ab")
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening"):
            raise SystemExit("kairosdb did not start: %r (log: %s)" % (line, self.log.name))
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while http_json(OURS_PORT, "GET", "/health/ready")[0] != 200:
            if time.time() > deadline:
                raise SystemExit("kairosdb not ready (log: %s)" % self.log.name)
            time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)


def java(cmd):
    env = dict(os.environ, KAIROSDB_JAVA_KEYSPACE="bench_java", KAIROSDB_JAVA_PORT=str(JAVA_PORT),
               KAIROSDB_JAVA_PROFILE="bench",
               KAIROSDB_JAVA_HEAP=os.environ.get("KAIROSDB_JAVA_HEAP", "1g"))
    subprocess.run([os.path.join(HERE, "kairosdb-java.sh"), cmd], env=env, check=True)


def ingest(label, port, pid, cassandra_pid, data, conc):
    load.wait_idle([cassandra_pid], 120)
    c0 = load.proc_cpu([cassandra_pid])
    t0 = time.perf_counter()
    r = load.run_load(data, "kairos", "http://127.0.0.1:%d/api/v1/datapoints" % port, concurrency=conc,
                      pids=[pid], label=label, settle=60)
    log(load.summary(r))
    r["readable_after_s"] = round(time.perf_counter() - t0 + wait_readable(port, data, r["points"]), 1)
    r["points_per_server_cpu_s_incl_settle"] = r.get("points_per_server_cpu_s_incl_settle") or \
        r["points_per_server_cpu_s"]
    load.wait_idle([pid, cassandra_pid], 120)
    r["cassandra_cpu_s_per_M_points"] = round((load.proc_cpu([cassandra_pid]) - c0) / r["points"] * 1e6, 1)
    r["server_rss_MB"] = round(load.proc_mem(pid)[0] / 2**20, 1)
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--duration", default="6h")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--query-rounds", type=int, default=3)
    p.add_argument("--query-runs", type=int, default=10)
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "kairosdb"))
    p.add_argument("--work", default=os.path.join(ROOT, "target", "bench-vs-java"))
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, "d%dx%s" % (a.hosts, a.duration))
    if not os.path.exists(os.path.join(data, "manifest.json")):
        log("== generating %d hosts, %s" % (a.hosts, a.duration))
        gen.generate(data, hosts_n=a.hosts, duration=a.duration, values="int")
    cassandra_pid = pidfile(".cache/cassandra/run/cassandra.pid")

    res = {"java": {}, "ours": {}}
    log("== Java KairosDB")
    java("start")
    java_pid = pidfile(".cache/kairosdb-java/run/kairosdb.pid")
    ours = None
    try:
        res["java"]["http"] = ingest("java http", JAVA_PORT, java_pid, cassandra_pid, data, a.concurrency)
        log("== kairosdb-rs")
        ours = Ours(a.binary, a.work)
        res["ours"]["http"] = ingest("kairosdb-rs http", OURS_PORT, ours.pid, cassandra_pid, data, a.concurrency)

        rounds = {"java": [], "ours": []}
        for i in range(a.query_rounds):
            for side, port, pid in (("java", JAVA_PORT, java_pid), ("ours", OURS_PORT, ours.pid)):
                dump = os.path.join(a.work, "%s_answers_%d.json" % (side, i))
                rounds[side].append(query.run_queries(data, "kairos", "http://127.0.0.1:%d" % port, "bench",
                                                      runs=a.query_runs, dump=dump, pids=[pid]))
        for side in rounds:
            res[side]["queries"] = {qt: {"median_ms": sorted(r[qt]["median_ms"] for r in rounds[side])[
                len(rounds[side]) // 2]} for qt in query.QTYPES}
        same = subprocess.run([sys.executable, os.path.join(BENCH, "run.py"), "compare",
                               os.path.join(a.work, "java_answers_0.json"),
                               os.path.join(a.work, "ours_answers_0.json")], capture_output=True, text=True)
        res["answers_identical"] = same.returncode == 0
        res["compare"] = same.stdout[-2000:]
    finally:
        if ours:
            ours.stop()
        java("stop")

    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    j, o = res["java"]["http"], res["ours"]["http"]
    rows = [
        ("HTTP ingest, points per server CPU-s (incl. settle)", j["points_per_server_cpu_s_incl_settle"],
         o["points_per_server_cpu_s_incl_settle"]),
        ("Cassandra CPU-s per million points", j["cassandra_cpu_s_per_M_points"], o["cassandra_cpu_s_per_M_points"]),
        ("all points readable after (s)", j["readable_after_s"], o["readable_after_s"]),
        ("server RSS after ingest (MB)", j["server_rss_MB"], o["server_rss_MB"]),
    ]
    for qt in query.QTYPES:
        rows.append(("query %s median (ms)" % qt, res["java"]["queries"][qt]["median_ms"],
                     res["ours"]["queries"][qt]["median_ms"]))
    log("\n| figure | Java KairosDB 1.3.0-1 | kairosdb-rs | ratio (ours / Java) |\n|---|---|---|---|")
    for name, jv, ov in rows:
        ratio = (ov / jv) if jv else float("nan")
        log("| %s | %s | %s | %.2f |" % (name, format(jv, ","), format(ov, ","), ratio))
    log("answers identical: %s" % res["answers_identical"])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""kairosdb-rs against VictoriaMetrics single-node, side by side, in one run on this machine.

Run through scripts/bench-vs-vm.sh (which installs VictoriaMetrics from Debian and builds
the release binary first). Issue 21: "ahead of VictoriaMetrics on every figure, and on a
growth curve".

What comes from where. The neutral harness in ../shared/bench (or $BENCH_HARNESS) is
the team's shared measuring code and stays outside this repository: this script imports
its data generator (gen.py), load driver (load.py, CPU and RSS from /proc) and its
VictoriaMetrics control (vm.py: start, flush, force merge, du). The query set is this
file's own, because the harness has four of the thirteen TSBS query types below. Each
type is written here twice, as KairosDB query JSON and as MetricsQL, and the answers of
every variant are compared; one difference fails the run.

Both servers run one after the other on loopback, each on a fresh data directory per
load, with the same dataset (TSBS devops cpu-only: 10 fields per host, each field a
series with the host's 10 tags). We get KairosDB JSON, and VictoriaMetrics gets the same
points as InfluxDB line protocol (its fastest HTTP ingest). Telnet: our `put` listener
against its OpenTSDB `put` listener, same lines.

Figures (the default size, 100 hosts x 1 day = 8.64 M points, 1,000 series):
  * HTTP and telnet ingest: points per server CPU-second, counting the CPU the server
    burns after the last answer until it is idle (at most --settle s); median of --reps
    loads into fresh servers, alternating the two servers;
  * bytes on disk per point right after the load, one minute after it, and settled
    (ours: after a clean shutdown; VictoriaMetrics: after /internal/force_merge), on
    TSBS integers and on a 2-decimal float random walk;
  * peak RSS (VmHWM) during the HTTP load, and resident memory per series after it
    (RSS one minute after the load minus RSS of the empty server, over the series);
  * the query set, --query-rounds rounds on each server restarted on the data of its
    last HTTP load, the servers alternating: median latency (the median of the rounds'
    medians) and server CPU per query (all runs of all rounds pooled).

Growth axes (--axis cardinality, --axis volume): the same figures but the float walk, one
load per size by default (--growth-reps), telnet only when asked (--growth-telnet: its
files take ~200 bytes per point), one query round. Cardinality keeps the volume and the
day fixed and widens the interval (10,000 series: one point per 100 s), so each size
holds 8.64 M points; volume keeps 1,000 series and lengthens the time range. The base
size, when measured in the same run, is the first column of both.

Datasets are cached under --work; growth datasets are deleted after their size is
measured (--keep keeps them), and none is generated that would leave less than
--min-free-gb free.
"""
import argparse
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.abspath(os.environ.get("BENCH_HARNESS", os.path.join(ROOT, "..", "shared", "bench")))
if not os.path.isfile(os.path.join(BENCH, "vm.py")):
    raise SystemExit("the harness is missing: no vm.py in %s (set BENCH_HARNESS=DIR)" % BENCH)
sys.path.insert(0, BENCH)

import gen  # noqa: E402
import load  # noqa: E402
import vm  # noqa: E402


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def du_bytes(path):
    out = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def post(url, body, ctype, timeout=300):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def get(url, timeout=300):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------

BYTES_PER_POINT = {"influx": 40, "kairos": 50, "telnet": 200}  # upper estimates, for the disk check


def dataset(work, name, hosts, duration, interval, values, formats, min_free_gb):
    d = os.path.join(work, name)
    man = os.path.join(d, "manifest.json")
    if not os.path.exists(man):
        points = hosts * 10 * (gen.parse_duration(duration) // gen.parse_duration(interval))
        # One tag-laden JSON object per point once a request holds one timestamp of every series.
        per = {f: BYTES_PER_POINT[f] * (6 if f == "kairos" and hosts * 10 >= 10000 else 1) for f in formats}
        need = points * sum(per.values())
        free = shutil.disk_usage(work).free
        if free - need < min_free_gb * 2**30:
            raise SystemExit("not generating %s: it needs ~%.1f GB and would leave %.1f GB free, under "
                             "--min-free-gb %g" % (name, need / 2**30, (free - need) / 2**30, min_free_gb))
        log("== generating %s (%d hosts, %s every %s, %s values, %s; ~%.1f GB)" % (
            name, hosts, duration, interval, values, ",".join(formats), need / 2**30))
        shutil.rmtree(d, ignore_errors=True)
        gen.generate(d, hosts_n=hosts, duration=duration, interval=interval, values=values, formats=formats)
    with open(man) as f:
        m = json.load(f)
    return {"dir": d, "params": m["params"], "points": m["points"], "formats": list(m["formats"])}


# ---------------------------------------------------------------------------
# The two servers
# ---------------------------------------------------------------------------

class Ours:
    """kairosdb-rs on fresh ports; SIGTERM is the clean shutdown that seals every head."""
    name = "kairosdb-rs"

    def __init__(self, binary, data_dir, telnet=True):
        self.dir = data_dir
        self.port, self.telnet_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
        env.update({"KAIROSDB_DATA_DIR": data_dir, "KAIROSDB_BIND_ADDRESS": "127.0.0.1:%d" % self.port,
                    "KAIROSDB_TELNET_BIND_ADDRESS": "127.0.0.1:%d" % self.telnet_port, "RUST_LOG": "warn"})
        self.log = open(data_dir.rstrip("/") + ".log", "ab")
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening"):
            raise SystemExit("kairosdb did not start: %r (log: %s.log)" % (line, data_dir))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        t0 = time.time()
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() - t0 > 300:
                raise SystemExit("kairosdb exited or never got ready (log: %s.log)" % data_dir)
            time.sleep(0.01)
        self.pid = self.proc.pid
        self.url = "http://127.0.0.1:%d" % self.port

    def http_load_args(self):
        return "kairos", self.url + "/api/v1/datapoints"

    def telnet_load_args(self):
        return "127.0.0.1:%d" % self.telnet_port, "version"

    def disk_bytes(self):
        return du_bytes(self.dir)

    def count(self, params, telnet=False):
        """Points stored under the dataset's metric names, counted by the server."""
        t0, t1 = params["start"], params["end"]
        q = {"start_absolute": t0 * 1000, "end_absolute": t1 * 1000 - 1,
             "metrics": [{"name": params["prefix"] + f, "aggregators": [
                 {"name": "count", "sampling": {"value": t1 - t0, "unit": "seconds"}}]} for f in params["fields"]]}
        js = json.loads(post(self.url + "/api/v1/datapoints/query", json.dumps(q).encode(), "application/json"))
        return int(sum(v[1] for qq in js["queries"] for r in qq["results"] for v in r["values"]))

    def settle_disk(self):
        """Settled bytes: after the clean shutdown (the server is stopped afterwards)."""
        self.stop()
        return du_bytes(self.dir)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=600)
        self.log.close()


class VM:
    """VictoriaMetrics single-node through the harness's vm.py (its storage is DIR/data)."""
    name = "VictoriaMetrics"

    def __init__(self, binary, data_dir, telnet=True):
        self.dir = data_dir
        self.telnet_port = free_port() if telnet else 0
        self.pid = vm.start(data_dir, opentsdb_port=self.telnet_port)
        self.url = vm.base_url(data_dir)
        self.stopped = False

    def http_load_args(self):
        return "influx", self.url + "/write"

    def telnet_load_args(self):
        # Its OpenTSDB listener answers nothing: the driver's clock stops at the last send,
        # and the settle time (server CPU until idle) takes in what it still had to parse.
        return "127.0.0.1:%d" % self.telnet_port, None

    def disk_bytes(self):
        return vm.du(self.dir)["total_bytes"]

    def count(self, params, telnet=False):
        regex = (r"cpu\\..*" if telnet else "cpu_.*")
        return vm.count_points(self.dir, regex, params["start"], params["end"])

    def settle_disk(self):
        """Settled bytes: after a forced full merge (the server keeps running)."""
        vm.merge(self.dir)
        return vm.du(self.dir)["total_bytes"]

    def stop(self):
        if not self.stopped:
            vm.stop(self.dir)
            self.stopped = True


SIDES = {"ours": Ours, "vm": VM}


# ---------------------------------------------------------------------------
# The query set: TSBS devops types as KairosDB query JSON and as MetricsQL
# ---------------------------------------------------------------------------

QTYPES = ["single-groupby-1-1-1", "single-groupby-1-8-1", "single-groupby-5-1-1", "single-groupby-5-8-1",
          "cpu-max-all-1", "cpu-max-all-8", "double-groupby-1", "double-groupby-5", "double-groupby-all",
          "high-cpu-1", "high-cpu-all", "groupby-orderby-limit", "lastpoint", "query-tags"]
HIGH_CPU = 90  # TSBS: usage_user > 90.0


def make_instances(params, n, seed):
    """`n` variants of every type: dicts of fields, hosts (None = all), start/end (s, half-open),
    bucket (s), agg, groupby (by hostname). Windows are drawn with `seed` and aligned to their
    bucket, so KairosDB's start-aligned buckets and MetricsQL's evaluation grid coincide. The
    TSBS sizes: single-groupby-M-H-T = max of M fields over H hosts, T hours, 1 min buckets;
    cpu-max-all-H = max of all 10 fields over H hosts, 8 h, 1 h buckets; double-groupby-M =
    mean of M fields per host, all hosts, 12 h, 1 h buckets; high-cpu-H = the points where
    usage_user > 90 of H hosts in 12 h; groupby-orderby-limit = the last 5 one-minute maxima of
    usage_user before a random end; lastpoint = the last point of every series."""
    rng = random.Random(seed)
    nh, t0, t1, fields = params["hosts"], params["start"], params["end"], params["fields"]

    def window(length, align):
        lo = -(-t0 // align) * align
        hi = t1 - length
        if hi < lo:
            raise SystemExit("dataset too short for a %d s window" % length)
        s = lo + rng.randrange((hi - lo) // align + 1) * align
        return s, s + length

    def hosts(k):
        return ["host_%d" % h for h in rng.sample(range(nh), min(k, nh))]

    out = {q: [] for q in QTYPES}
    for i in range(n):
        for m, h in ((1, 1), (1, 8), (5, 1), (5, 8)):
            s, e = window(3600, 60)
            out["single-groupby-%d-%d-1" % (m, h)].append(dict(
                fields=fields[:m], hosts=hosts(h), start=s, end=e, bucket=60, agg="max", groupby=False))
        for h in (1, 8):
            s, e = window(8 * 3600, 3600)
            out["cpu-max-all-%d" % h].append(dict(
                fields=fields, hosts=hosts(h), start=s, end=e, bucket=3600, agg="max", groupby=False))
        for m in (1, 5, 10):
            s, e = window(12 * 3600, 3600)
            out["double-groupby-%s" % (m if m < 10 else "all")].append(dict(
                fields=fields[:m], hosts=None, start=s, end=e, bucket=3600, agg="mean", groupby=True))
        for h in (1, None):
            s, e = window(12 * 3600, 3600)
            out["high-cpu-%s" % (h or "all")].append(dict(
                fields=fields[:1], hosts=hosts(h) if h else None, start=s, end=e, bucket=None, agg="filter",
                groupby=True))
        # KairosDB has no ORDER BY bucket LIMIT (a metric's limit/order apply to raw points), nor
        # has MetricsQL: both sides get the window of the last five buckets before the end.
        s, e = window(300, 60)
        out["groupby-orderby-limit"].append(dict(fields=fields[:1], hosts=None, start=s, end=e, bucket=60,
                                                 agg="max", groupby=False))
        out["lastpoint"].append(dict(fields=fields, hosts=None, start=t0, end=t1, bucket=None, agg="last",
                                     groupby=True))
        out["query-tags"].append(dict(fields=[fields[i % len(fields)]], hosts=None, start=t0, end=t1,
                                      bucket=None, agg="tags", groupby=False))
    return out


def to_kairos(q, qt, prefix):
    """-> (path, JSON body) for our /api/v1/datapoints/query (or /query/tags)."""
    metrics = []
    for f in q["fields"]:
        m = {"name": prefix + f}
        if q["hosts"]:
            m["tags"] = {"hostname": q["hosts"]}
        if q["groupby"]:
            m["group_by"] = [{"name": "tag", "tags": ["hostname"]}]
        if q["agg"] in ("max", "mean"):
            m["aggregators"] = [{"name": {"max": "max", "mean": "avg"}[q["agg"]],
                                 "sampling": {"value": q["bucket"], "unit": "seconds"}, "align_start_time": True}]
        elif q["agg"] == "filter":  # KairosDB's filter drops what matches: lte 90 keeps > 90
            m["aggregators"] = [{"name": "filter", "filter_op": "lte", "threshold": HIGH_CPU}]
        elif q["agg"] == "last":  # one bucket over the whole range keeps the last point's own timestamp
            m["aggregators"] = [{"name": "last", "sampling": {"value": q["end"] - q["start"], "unit": "seconds"}}]
        metrics.append(m)
    # KairosDB's end_absolute is inclusive; the windows are half-open [start, end).
    body = {"start_absolute": q["start"] * 1000, "end_absolute": q["end"] * 1000 - 1, "metrics": metrics}
    return ("/api/v1/datapoints/query/tags" if qt == "query-tags" else "/api/v1/datapoints/query"), body


def _vm_time(ms):
    """VictoriaMetrics parses float seconds and truncates to ms: send the middle of the ms."""
    return "%d.%03d5" % (ms // 1000, ms % 1000)


def _vm_selector(q, prefix):
    names = [prefix + f for f in q["fields"]]
    m = ['__name__="%s"' % names[0]] if len(names) == 1 else ['__name__=~"%s"' % "|".join(names)]
    if q["hosts"]:
        m.append('hostname="%s"' % q["hosts"][0] if len(q["hosts"]) == 1 else
                 'hostname=~"%s"' % "|".join(q["hosts"]))
    return "{%s}" % ",".join(m)


def to_metricsql(q, qt, params, prefix="cpu_"):
    """-> (method, path, args). A KairosDB bucket is [t, t+b); `agg_over_time(m[b])` at T covers
    (T-b, T], so buckets are evaluated at T = t + b - 1 ms and mapped back. With one series per
    (field, host) the outer max/avg over a group equals KairosDB's aggregate over its points.
    high-cpu evaluates `last_over_time(m[interval])` at every raw timestamp of the window (each
    window then holds exactly that point) and filters > 90. lastpoint: last value and its own
    timestamp (tlast_over_time). query-tags: the series of the metric; the union of their
    labels is KairosDB's answer."""
    sel = _vm_selector(q, prefix)
    if qt == "query-tags":
        return "GET", "/api/v1/series", {"match[]": sel, "start": str(q["start"]), "end": _vm_time(q["end"] * 1000 - 1)}
    if q["agg"] in ("max", "mean"):
        fn = {"max": "max", "mean": "avg"}[q["agg"]]
        by = "__name__,hostname" if q["groupby"] else "__name__"
        expr = "%s by (%s) (%s_over_time(%s[%ds]) keep_metric_names)" % (fn, by, fn, sel, q["bucket"])
        return "POST", "/api/v1/query_range", {
            "query": expr, "start": _vm_time((q["start"] + q["bucket"]) * 1000 - 1),
            "end": _vm_time(q["end"] * 1000 - 1), "step": "%ds" % q["bucket"], "nocache": "1"}
    if q["agg"] == "filter":
        iv, t0 = params["interval_s"], params["start"]
        first = t0 + -(-(q["start"] - t0) // iv) * iv  # first raw timestamp in the window
        expr = "last_over_time(%s[%ds]) keep_metric_names > %d" % (sel, iv, HIGH_CPU)
        return "POST", "/api/v1/query_range", {
            "query": expr, "start": _vm_time(first * 1000), "end": _vm_time(q["end"] * 1000 - 1),
            "step": "%ds" % iv, "nocache": "1"}
    w = "%s[%ds]" % (sel, q["end"] - q["start"])
    expr = ('union(label_set(last_over_time(%s) keep_metric_names, "bench_part", "value"), '
            'label_set(tlast_over_time(%s) keep_metric_names, "bench_part", "time"))' % (w, w))
    return "POST", "/api/v1/query", {"query": expr, "time": _vm_time(q["end"] * 1000 - 1), "nocache": "1"}


def normalize_kairos(data, q, qt, prefix):
    """-> {"field|host": [[ms, value], ...]}, host '*' when not grouped; query-tags:
    {"field": {tag: sorted values}}."""
    js = json.loads(data)
    out = {}
    for qq in js.get("queries", []):
        for r in qq.get("results", []):
            f = r["name"][len(prefix):] if r["name"].startswith(prefix) else r["name"]
            if qt == "query-tags":
                if r.get("tags"):
                    out[f] = {k: sorted(v) for k, v in r["tags"].items()}
                continue
            host = "*"
            for g in r.get("group_by") or []:
                if g.get("name") == "tag" and "hostname" in (g.get("group") or {}):
                    host = g["group"]["hostname"]
            if r.get("values"):
                out["%s|%s" % (f, host)] = [[v[0], v[1]] for v in r["values"]]
    return out


def normalize_vm(data, q, qt, prefix):
    js = json.loads(data)
    if js.get("status") != "success":
        raise RuntimeError("%s: %s" % (js.get("errorType"), js.get("error")))
    out = {}
    if qt == "query-tags":
        for s in js["data"]:
            f = s["__name__"][len(prefix):]
            tags = out.setdefault(f, {})
            for k, v in s.items():
                if k != "__name__":
                    tags.setdefault(k, set()).add(v)
        return {f: {k: sorted(v) for k, v in tags.items()} for f, tags in out.items()}

    def key(m):
        name = m.get("__name__", prefix + q["fields"][0] if len(q["fields"]) == 1 else "?")
        f = name[len(prefix):] if name.startswith(prefix) else name
        return "%s|%s" % (f, m.get("hostname", "*") if q["groupby"] else "*")

    if q["agg"] in ("max", "mean", "filter"):
        back = q["bucket"] * 1000 - 1 if q["bucket"] else 0  # evaluated at bucket start + b - 1 ms
        for s in js["data"]["result"]:
            out[key(s["metric"])] = [[int(round(float(t) * 1000)) - back, float(v)] for t, v in s["values"]]
        return out
    parts = {}
    for s in js["data"]["result"]:
        parts.setdefault(key(s["metric"]), {})[s["metric"].get("bench_part")] = float(s["value"][1])
    for k, p in parts.items():
        out[k] = [[int(round(p["time"] * 1000)), p["value"]]]
    return out


class Client:
    """One keep-alive connection; `do(request)` -> body, raising on any non-2xx answer."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def do(self, method, path, body=None, ctype=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            try:
                self.conn.request(method, path, body, {"Content-Type": ctype} if ctype else {})
                r = self.conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if not 200 <= r.status < 300:
                raise RuntimeError("HTTP %d on %s: %s" % (r.status, path, data[:300]))
            return data


def side_requests(side, qt, qs, params):
    """-> (list of callables(client) -> body, normalize(body, q))."""
    if side == "ours":
        prefix = params["prefix"]
        reqs = []
        for q in qs:
            path, body = to_kairos(q, qt, prefix)
            reqs.append((path, json.dumps(body).encode()))
        run = [lambda c, p=p, b=b: c.do("POST", p, b, "application/json") for p, b in reqs]
        return run, lambda d, q: normalize_kairos(d, q, qt, prefix)
    run = []
    for q in qs:
        method, path, args = to_metricsql(q, qt, params)
        enc = urllib.parse.urlencode(args)
        if method == "GET":
            run.append(lambda c, p=path + "?" + enc: c.do("GET", p))
        else:
            run.append(lambda c, p=path, b=enc.encode(): c.do("POST", p, b, "application/x-www-form-urlencoded"))
    return run, lambda d, q: normalize_vm(d, q, qt, "cpu_")


def run_query_set(side, url, pid, params, opts, answers=None):
    """Every type: one untimed pass over all variants (their answers go to `answers`), then
    timed requests one at a time, cycling the variants, at least opts.query_min_runs of them
    and at least opts.query_min_seconds of wall time (at most opts.query_max_runs): fast
    queries get enough runs for their server CPU to span many of /proc's 10 ms ticks."""
    inst = make_instances(params, opts.instances, opts.seed)
    c = Client(url)
    res = {}
    for qt in QTYPES:
        qs = inst[qt]
        run, norm = side_requests(side, qt, qs, params)
        got = []
        for k, q in enumerate(qs):
            got.append(norm(run[k](c), q))
        if answers is not None:
            answers[qt] = got
        lat = []
        cpu0 = load.proc_cpu([pid])
        t_start = time.perf_counter()
        i = 0
        while i < opts.query_max_runs and (i < opts.query_min_runs or
                                            time.perf_counter() - t_start < opts.query_min_seconds):
            t = time.perf_counter()
            run[i % len(run)](c)
            lat.append(time.perf_counter() - t)
            i += 1
        cpu = load.proc_cpu([pid]) - cpu0
        lat.sort()
        res[qt] = {"runs": len(lat), "median_ms": round(statistics.median(lat) * 1e3, 3),
                   "p99_ms": round(load.pct(lat, 99) * 1e3, 3), "server_cpu_ms": cpu * 1e3 / len(lat),
                   "series": len(got[0]), "values": sum(len(v) for v in got[0].values())}
    return res


def compare_answers(a, b, tol=1e-9):
    """-> list of differences between two {qtype: [answer per variant]}; an answer empty on
    both sides in every variant counts as a difference (the check would prove nothing)."""
    diffs = []
    for qt in QTYPES:
        va, vb = a.get(qt), b.get(qt)
        if va is None or vb is None:
            diffs.append("%s: missing" % qt)
            continue
        if not any(x for x in va) and not any(x for x in vb):
            diffs.append("%s: every variant EMPTY on both sides" % qt)
        for k, (ra, rb) in enumerate(zip(va, vb)):
            if qt == "query-tags":
                if ra != rb:
                    diffs.append("%s #%d: tags differ: %s vs %s" % (qt, k, json.dumps(ra)[:200], json.dumps(rb)[:200]))
                continue
            for key in sorted(set(ra) | set(rb)):
                xa, xb = ra.get(key, []), rb.get(key, [])
                if len(xa) != len(xb):
                    diffs.append("%s #%d %s: %d vs %d values" % (qt, k, key, len(xa), len(xb)))
                    break
                bad = [(p, r) for p, r in zip(xa, xb)
                       if p[0] != r[0] or abs(float(p[1]) - float(r[1])) > tol * max(1.0, abs(float(p[1])))]
                if bad:
                    diffs.append("%s #%d %s: %s vs %s" % (qt, k, key, bad[0][0], bad[0][1]))
                    break
    return diffs


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def fresh(work, name):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(d + ".log"):
        os.remove(d + ".log")
    return d


def check_count(srv, ds, telnet=False):
    n = srv.count(ds["params"], telnet)
    if n != ds["points"]:
        raise SystemExit("%s holds %d points after the load, not %d" % (srv.name, n, ds["points"]))


def http_rep(side, ds, work, tag, opts, keep):
    """One HTTP load into a fresh server. Bytes on disk right after the load, the server's
    CPU until idle, bytes one minute after the load, then the settled bytes."""
    d = fresh(work, "%s-%s" % (side, tag))
    srv = SIDES[side](opts.binary, d, telnet=False)
    try:
        rss0 = load.proc_mem(srv.pid)[0]
        fmt, url = srv.http_load_args()
        r = load.run_load(ds["dir"], fmt, url, concurrency=opts.concurrency, pids=[srv.pid],
                          label="%s http %s" % (srv.name, tag), quiet_max=opts.quiet_wait,
                          max_seconds=opts.max_load_seconds)
        t_end = time.time()
        log("  " + load.summary(r))
        if r["errors"] or r["points"] != ds["points"]:
            raise SystemExit("%s: %d errors, %d of %d points: %s" % (
                srv.name, r["errors"], r["points"], ds["points"], r.get("error_samples")))
        cpu_end = load.proc_cpu([srv.pid])
        disk_after = srv.disk_bytes()
        c_settle, w_settle = load.wait_idle([srv.pid], opts.settle)
        time.sleep(max(0.0, t_end + 60 - time.time()))
        disk_1min = srv.disk_bytes()
        # Work deferred past the idle detection (a seal timer, a merge) is in this one.
        cpu_1min = r["server_cpu_s"] + load.proc_cpu([srv.pid]) - cpu_end
        rss1 = load.proc_mem(srv.pid)[0]
        check_count(srv, ds)
        settled = srv.settle_disk()
    finally:
        srv.stop()
    out = {"points": r["points"], "points_per_s": r["points_per_s"], "server_cpu_s": r["server_cpu_s"],
           "settle_cpu_s": round(c_settle, 2), "settle_wall_s": round(w_settle, 1),
           "points_per_cpu_s": round(r["points"] / (r["server_cpu_s"] + c_settle)),
           "points_per_cpu_s_1min": round(r["points"] / cpu_1min),
           "peak_rss_MB": r["server_peak_rss_MB"],
           "memory_per_series_B": round((rss1 - rss0) / ds["params"]["series"], 1),
           "bytes_per_point_after_load": round(disk_after / r["points"], 3),
           "bytes_per_point_1min": round(disk_1min / r["points"], 3),
           "bytes_per_point_settled": round(settled / r["points"], 3),
           "other_cores": r["machine"]["other_cores"], "driver_cpu_s": r["driver_cpu_s"]}
    log("  %s: %s pts/CPU-s incl. %.1f CPU-s settle; disk B/pt %.3f after, %.3f 1 min, %.3f settled; "
        "peak RSS %.0f MB; %.0f B/series" % (srv.name, format(out["points_per_cpu_s"], ","), c_settle,
                                            out["bytes_per_point_after_load"], out["bytes_per_point_1min"],
                                            out["bytes_per_point_settled"], out["peak_rss_MB"],
                                            out["memory_per_series_B"]))
    if not keep:
        shutil.rmtree(d, ignore_errors=True)
    return out, d


def telnet_rep(side, ds, work, tag, opts):
    d = fresh(work, "%s-%s" % (side, tag))
    srv = SIDES[side](opts.binary, d, telnet=True)
    try:
        addr, sync = srv.telnet_load_args()
        r = load.run_load(ds["dir"], "telnet", telnet=addr, concurrency=opts.concurrency, pids=[srv.pid],
                          label="%s telnet %s" % (srv.name, tag), quiet_max=opts.quiet_wait,
                          max_seconds=opts.max_load_seconds, telnet_sync=sync)
        c_settle, _ = load.wait_idle([srv.pid], opts.settle)
        log("  " + load.summary(r) + "; +%.2f CPU-s settle" % c_settle)
        check_count(srv, ds, telnet=True)
    finally:
        srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    return {"points": r["points"], "points_per_cpu_s": round(r["points"] / (r["server_cpu_s"] + c_settle)),
            "points_per_s": r["points_per_s"], "other_cores": r["machine"]["other_cores"]}


def bytes_rep(side, ds, work, tag, opts):
    d = fresh(work, "%s-%s" % (side, tag))
    srv = SIDES[side](opts.binary, d, telnet=False)
    try:
        fmt, url = srv.http_load_args()
        r = load.run_load(ds["dir"], fmt, url, concurrency=opts.concurrency, pids=[srv.pid],
                          label="%s %s" % (srv.name, tag), max_seconds=opts.max_load_seconds)
        check_count(srv, ds)
        settled = srv.settle_disk()
    finally:
        srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    log("  %s %s: %.3f bytes/point settled" % (srv.name, tag, settled / r["points"]))
    return round(settled / r["points"], 3)


def median_of(reps, key):
    return statistics.median(r[key] for r in reps)


def measure(ds, work, opts, reps, rounds, telnet_ds=None, float_ds=None):
    """All figures of one dataset for both servers. Loads alternate the servers (VictoriaMetrics
    first), so a slow spell of the shared machine lands on both; query rounds too. The answers
    of every variant go to WORK/answers-<dataset>-<side>.json."""
    res = {"series": ds["params"]["series"], "points": ds["points"], "sides": {}}
    http_reps = {s: [] for s in SIDES}
    kept = {}
    for i in range(reps):
        for side in ("vm", "ours"):
            out, d = http_rep(side, ds, work, "http-%d" % i, opts, keep=(i == reps - 1))
            http_reps[side].append(out)
            if i == reps - 1:
                kept[side] = d
    for side in SIDES:
        rs = http_reps[side]
        res["sides"][side] = {"http_reps": rs, **{k: median_of(rs, k) for k in (
            "points_per_cpu_s", "points_per_cpu_s_1min", "points_per_s", "peak_rss_MB", "memory_per_series_B", "bytes_per_point_after_load",
            "bytes_per_point_1min", "bytes_per_point_settled", "other_cores")}}
    if telnet_ds:
        t_reps = {s: [] for s in SIDES}
        for i in range(reps):
            for side in ("vm", "ours"):
                t_reps[side].append(telnet_rep(side, telnet_ds, work, "telnet-%d" % i, opts))
        for side in SIDES:
            res["sides"][side]["telnet_reps"] = t_reps[side]
            res["sides"][side]["telnet_points_per_cpu_s"] = median_of(t_reps[side], "points_per_cpu_s")
    if float_ds:
        for side in ("vm", "ours"):
            res["sides"][side]["float_bytes_per_point_settled"] = bytes_rep(side, float_ds, work, "float", opts)

    answers = {}
    per_round = {s: [] for s in SIDES}
    for rnd in range(rounds):
        for side in (("vm", "ours") if rnd % 2 == 0 else ("ours", "vm")):
            srv = SIDES[side](opts.binary, kept[side], telnet=False)
            try:
                ans = {} if rnd == 0 else None
                r = run_query_set(side, srv.url, srv.pid, ds["params"], opts, ans)
            finally:
                srv.stop()
            if ans is not None:
                answers[side] = ans
                with open(os.path.join(work, "answers-%s-%s.json" % (os.path.basename(ds["dir"]), side)), "w") as f:
                    json.dump(ans, f, sort_keys=True)
            per_round[side].append(r)
            log("  %s, query round %d: %s" % (SIDES[side].name, rnd + 1, ", ".join(
                "%s %.2f ms" % (qt, x["median_ms"]) for qt, x in r.items())))
    for side in SIDES:
        q = {}
        for qt in QTYPES:
            rs = [r[qt] for r in per_round[side]]
            runs = sum(x["runs"] for x in rs)
            q[qt] = {"median_ms": statistics.median(x["median_ms"] for x in rs),
                     "round_medians_ms": [x["median_ms"] for x in rs], "runs": runs,
                     "server_cpu_ms": round(sum(x["server_cpu_ms"] * x["runs"] for x in rs) / runs, 4),
                     "series": rs[0]["series"], "values": rs[0]["values"]}
        res["sides"][side]["queries"] = q
    res["answer_diffs"] = compare_answers(answers["ours"], answers["vm"])
    res["answer_variants"] = opts.instances
    for qt in QTYPES:
        a = answers["ours"][qt]
        res["sides"]["ours"]["queries"][qt]["nonempty_variants"] = sum(1 for x in a if x)
    if res["answer_diffs"]:
        log("ANSWERS DIFFER between kairosdb-rs and VictoriaMetrics:\n  " + "\n  ".join(res["answer_diffs"][:40]))
    else:
        empty = ["%s %d/%d" % (qt, res["sides"]["ours"]["queries"][qt]["nonempty_variants"], opts.instances)
                 for qt in QTYPES if res["sides"]["ours"]["queries"][qt]["nonempty_variants"] < opts.instances]
        log("  answers identical: %d query types x %d variants%s" % (
            len(QTYPES), opts.instances, "; non-empty only in " + ", ".join(empty) if empty else ", none empty"))
    if not opts.keep:
        for d in kept.values():
            shutil.rmtree(d, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return format(round(v), ",")
    return "%.3g" % v


def figures(res):
    """-> [(figure, ours, vm, target, lower_is_better)] of one measured size."""
    o, v = res["sides"]["ours"], res["sides"]["vm"]
    rows = [("HTTP ingest, points per server CPU-s (load + settle)", o["points_per_cpu_s"], v["points_per_cpu_s"],
             3.0, False),
            ("HTTP ingest, server CPU-µs per point", 1e6 / o["points_per_cpu_s"], 1e6 / v["points_per_cpu_s"],
             None, True),
            ("HTTP ingest, points per server CPU-s until one minute after the load", o["points_per_cpu_s_1min"],
             v["points_per_cpu_s_1min"], None, False),
            ("HTTP ingest, points/s (wall)", o["points_per_s"], v["points_per_s"], None, False)]
    if "telnet_points_per_cpu_s" in o:
        rows.append(("telnet ingest, points per server CPU-s (load + settle)", o["telnet_points_per_cpu_s"],
                     v["telnet_points_per_cpu_s"], 4.0, False))
    rows += [("bytes/point settled, TSBS integers", o["bytes_per_point_settled"], v["bytes_per_point_settled"],
              0.85, True)]
    if "float_bytes_per_point_settled" in o:
        rows.append(("bytes/point settled, 2-decimal float walk", o["float_bytes_per_point_settled"],
                     v["float_bytes_per_point_settled"], 0.85, True))
    rows += [("bytes/point on disk right after the load", o["bytes_per_point_after_load"],
              v["bytes_per_point_after_load"], None, True),
             ("bytes/point on disk one minute after the load", o["bytes_per_point_1min"], v["bytes_per_point_1min"],
              2.0, True),
             ("peak RSS MB during the load", o["peak_rss_MB"], v["peak_rss_MB"], 0.5, True),
             ("resident memory per series after the load, bytes", o["memory_per_series_B"], v["memory_per_series_B"],
              None, True)]
    for qt in QTYPES:
        rows.append(("%s median ms" % qt, o["queries"][qt]["median_ms"], v["queries"][qt]["median_ms"], 0.5, True))
    for qt in QTYPES:
        rows.append(("%s server CPU ms/query" % qt, o["queries"][qt]["server_cpu_ms"],
                     v["queries"][qt]["server_cpu_ms"], 0.5, True))
    return rows


def ratio(a, b):
    return a / b if (a is not None and b) else None


def base_table(res):
    out = ["| figure | kairosdb-rs | VictoriaMetrics | ours / VM | target | met |", "|---|---|---|---|---|---|"]
    for name, a, b, target, lower in figures(res):
        r = ratio(a, b)
        ok = None if (r is None or target is None) else (r <= target if lower else r >= target)
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            name, fmt(a), fmt(b), "%.2f×" % r if r is not None else "-",
            ("≤ %g×" if lower else "≥ %g×") % target if target is not None else "",
            {True: "yes", False: "**no**", None: ""}[ok]))
    d = res["answer_diffs"]
    out.append("| answers identical to VictoriaMetrics' (%d types × %d variants) | %s | | | all | %s |" % (
        len(QTYPES), res["answer_variants"], "all" if not d else "%d differ" % len(d), "yes" if not d else "**no**"))
    return "\n".join(out)


def axis_table(title, sizes):
    """One table for a growth axis: per size, ours, VM and ours / VM. A figure a size lacks
    (telnet and the float walk are measured on the base size only) shows as '-'."""
    head = "| figure | " + " | ".join("%s: ours | VM | ours/VM" % x["label"] for x in sizes) + " |"
    out = [head, "|---|" + "---|---|---|" * len(sizes)]
    per_size = [{fig: (a, b) for fig, a, b, _, _ in figures(x)} for x in sizes]
    names = []
    for rows in per_size:
        names += [n for n in rows if n not in names]
    for fig in names:
        cells = []
        for rows in per_size:
            a, b = rows.get(fig, (None, None))
            x = ratio(a, b)
            cells.append("%s | %s | %s" % (fmt(a), fmt(b), "%.2f×" % x if x is not None else "-"))
        out.append("| %s | %s |" % (fig, " | ".join(cells)))
    out.append("| answers identical | %s |" % " | ".join(
        "%s | | " % ("all" if not x["answer_diffs"] else "**%d differ**" % len(x["answer_diffs"])) for x in sizes))
    return "### %s\n\n%s" % (title, "\n".join(out))


def render(results):
    """The printed report of a results.json: a summary line and one table per axis."""
    all_res = ([results["base"]] if "base" in results else []) + [
        x for ax in results.get("axes", {}).values() for x in ax["sizes"]]
    others = [x["other_cores"] for r in all_res for sd in r["sides"].values() for x in sd["http_reps"]]
    out = ["== kairosdb-rs against VictoriaMetrics, %s, %s s in all; other processes used %.2f cores on "
           "average (max %.2f) during the HTTP loads" % (
               results["date"], results.get("wall_s", "?"), statistics.mean(others) if others else 0,
               max(others or [0]))]
    if "base" in results:
        out.append("### %s\n\n%s" % (results["base"]["title"], base_table(results["base"])))
    for ax in results.get("axes", {}).values():
        out.append(axis_table(ax["title"], ax["sizes"]))
    bad = [d for r in all_res for d in r["answer_diffs"]]
    if bad:
        out.append("FAILED: %d answers differ from VictoriaMetrics' (first: %s)" % (len(bad), bad[0]))
    return "\n\n".join(out), bool(bad)


def parse_count(s):
    s = s.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}
    return int(float(s[:-1]) * mult[s[-1]]) if s[-1] in mult else int(s)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(ROOT, "target", "bench-vs-vm"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "kairosdb"))
    p.add_argument("--hosts", type=int, default=100, help="base size: hosts (10 series each)")
    p.add_argument("--duration", default="1d", help="base size: time range at 10 s")
    p.add_argument("--concurrency", type=int, default=2, help="connections of every load")
    p.add_argument("--reps", type=int, default=3, help="loads per figure and server (median)")
    p.add_argument("--query-rounds", type=int, default=3)
    p.add_argument("--query-min-runs", type=int, default=20)
    p.add_argument("--query-min-seconds", type=float, default=1.0)
    p.add_argument("--query-max-runs", type=int, default=2000)
    p.add_argument("--instances", type=int, default=10, help="variants of every query type")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--settle", type=float, default=60, help="max s to wait for the server to go idle")
    p.add_argument("--quiet-wait", type=float, default=30,
                   help="before each load, wait up to S s for the machine to be idle")
    p.add_argument("--max-load-seconds", type=float, default=3600)
    p.add_argument("--axis", action="append", choices=["cardinality", "volume"], default=[],
                   help="also measure a growth axis (repeatable)")
    p.add_argument("--no-base", action="store_true", help="only the growth axes")
    p.add_argument("--cardinality", default="1000,10000,100000", help="series per size (10 per host)")
    p.add_argument("--cardinality-points", default="8.64M", help="points of every cardinality size")
    p.add_argument("--volume", default="10M,100M", help="points per size, at --volume-series")
    p.add_argument("--volume-series", type=int, default=1000,
                   help="series of every volume size; the base size is the first column when it has as many")
    p.add_argument("--growth-reps", type=int, default=1)
    p.add_argument("--growth-query-rounds", type=int, default=1)
    p.add_argument("--growth-telnet", action="store_true", help="telnet loads on the growth axes too")
    p.add_argument("--keep", action="store_true", help="keep data dirs and growth datasets")
    p.add_argument("--min-free-gb", type=float, default=10,
                   help="refuse to generate a dataset that would leave less free disk")
    p.add_argument("--report", metavar="RESULTS_JSON", help="only print the tables of an earlier run")
    opts = p.parse_args()
    if opts.report:
        with open(opts.report) as f:
            text, bad = render(json.load(f))
        log(text)
        sys.exit(1 if bad else 0)
    opts.work = os.path.abspath(opts.work)
    os.makedirs(opts.work, exist_ok=True)
    t_all = time.time()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "args": vars(opts), "axes": {}}
    results_path = os.path.join(opts.work, "results.json")

    def save():  # after every size, so an interrupted run keeps what it measured
        results["wall_s"] = round(time.time() - t_all)
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1, default=str)

    def ds(name, hosts, duration, interval, values, formats):
        return dataset(opts.work, name, hosts, duration, interval, values, formats, opts.min_free_gb)

    def drop(d):
        if not opts.keep:
            shutil.rmtree(d["dir"], ignore_errors=True)

    if not opts.no_base:
        tag = "%dh-%s" % (opts.hosts, opts.duration)
        ints = ds("int-" + tag, opts.hosts, opts.duration, "10s", "int", ["influx", "kairos", "telnet"])
        floats = ds("float-" + tag, opts.hosts, opts.duration, "10s", "float", ["influx", "kairos"])
        log("== base: %d hosts x %s = %s points, %d series" % (opts.hosts, opts.duration,
                                                                format(ints["points"], ","),
                                                                ints["params"]["series"]))
        t0 = time.time()
        res = measure(ints, opts.work, opts, opts.reps, opts.query_rounds, telnet_ds=ints, float_ds=floats)
        res["title"] = "%d hosts x %s: %s points, %s series, median of %d loads, %d query rounds (%d s)" % (
            opts.hosts, opts.duration, format(res["points"], ","), format(res["series"], ","), opts.reps,
            opts.query_rounds, time.time() - t0)
        results["base"] = res
        save()

    for axis in opts.axis:
        sizes = []
        results["axes"][axis] = {"title": "%s axis (%d load%s per size, %d query round%s)" % (
            axis, opts.growth_reps, "s" if opts.growth_reps > 1 else "", opts.growth_query_rounds,
            "s" if opts.growth_query_rounds > 1 else ""), "sizes": sizes}
        base = results.get("base")
        if axis == "cardinality":
            points = parse_count(opts.cardinality_points)
            for series in (parse_count(x) for x in opts.cardinality.split(",")):
                hosts = max(1, series // 10)
                interval = max(1, round(86400 * hosts * 10 / points))
                label = "%s series" % format(hosts * 10, ",")
                if base and base["series"] == hosts * 10 and base["points"] == points and opts.duration == "1d":
                    log("== cardinality: %s is the base size, measured above" % label)
                    sizes.append({"label": label, **base})
                    continue
                d = ds("card-%d-%ds" % (hosts * 10, interval), hosts, "1d", "%ds" % interval, "int",
                       ["influx", "kairos"] + (["telnet"] if opts.growth_telnet else []))
                log("== cardinality: %s (%s points, one every %d s)" % (label, format(d["points"], ","), interval))
                sizes.append({"label": label, **measure(d, opts.work, opts, opts.growth_reps, opts.growth_query_rounds,
                                                        telnet_ds=d if opts.growth_telnet else None)})
                drop(d)
                save()
        else:
            hosts = max(1, opts.volume_series // 10)
            if base and base["series"] == hosts * 10:
                sizes.append({"label": "%s points" % format(base["points"], ","), **base})
            for points in (parse_count(x) for x in opts.volume.split(",")):
                secs = round(points / (hosts * 10) * 10)  # every series, one point every 10 s
                if secs < 43200:
                    raise SystemExit("--volume %d at %d series is under 12 h of data, the longest query window"
                                     % (points, hosts * 10))
                d = ds("vol-%d-%d" % (hosts * 10, points), hosts, "%ds" % secs, "10s", "int",
                       ["influx", "kairos"] + (["telnet"] if opts.growth_telnet else []))
                label = "%s points" % format(d["points"], ",")
                log("== volume: %s (%s series, %.1f days)" % (label, format(hosts * 10, ","), secs / 86400))
                sizes.append({"label": label, **measure(d, opts.work, opts, opts.growth_reps, opts.growth_query_rounds,
                                                        telnet_ds=d if opts.growth_telnet else None)})
                drop(d)
                save()

    save()
    text, bad = render(results)
    log("\n" + text + "\n\nraw results: " + results_path)
    if bad:
        sys.exit(1)

if __name__ == "__main__":
    main()

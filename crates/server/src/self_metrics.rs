//! Self-metrics: every `self_metrics_interval_secs` the server writes figures about itself
//! into its own store as ordinary `kairosdb.*` metrics, like KairosDB's reporter
//! (spec §11.1, `reporter.schedule` / `reporter.ttl` in §9). They show up in
//! `/api/v1/metricnames` and can be queried like any other metric; the health check
//! queries `kairosdb.jvm.thread_count` (spec §11.2, `http/health.rs`).
//!
//! Not here: counting. The figures come from [`ServerMetrics`] (the atomics that also feed
//! `/metrics`, and the tagged per-interval [`Tallies`](crate::metrics::Tallies) filled by
//! the HTTP handlers and the writer), from the storage's stats and from `/proc`; this
//! file only turns them into one [`WriteBatch`] and writes it through the same
//! [`Storage`] handle ingest uses.
//!
//! What is written, every point tagged `host=<hostname>` (KairosDB's names; `T` below
//! stands for the timing fields `.min .max .total .count .avg`, `S` for the size fields
//! `.min .max .sum .count .avg`):
//!
//! | metric | tags | value |
//! |---|---|---|
//! | `kairosdb.http.ingest_count` | | points ingested over HTTP during the interval |
//! | `kairosdb.http.ingest_time` T | | HTTP ingest requests answered: arrival to answer |
//! | `kairosdb.http.request_time` T | `request=/datapoints/query\|/datapoints/query/tags\|/datapoints/delete`, `status=success\|failed` | query requests: arrival to answer |
//! | `kairosdb.http.query_time` T | `metric_name`, `query_index` (1-based) | each metric query that completed: its start to its result |
//! | `kairosdb.datastore.query_time` T | `metric_name`, `query_index` | the read and aggregation of that metric query |
//! | `kairosdb.datastore.query_sample_size` S | `metric_name`, `query_index` | points it read |
//! | `kairosdb.protocol.http_request_count` | `method`, `path` | requests under `/api/` (path rule: `Tallies::http_request`) |
//! | `kairosdb.protocol.telnet_request_count` | `method=put\|putm\|puts\|version` | commands parsed during the interval |
//! | `kairosdb.metric_counters` | `metric_name` | points of that metric acknowledged by storage (HTTP and telnet), names starting `kairosdb.` left out |
//! | `kairosdb.queue.file_queue.size` | | `kairosdb_queue_size` at report time: points handed to storage and not yet stored, plus the Cassandra delivery backlog |
//! | `kairosdb.jvm.thread_count` | | threads of the process (`/proc/self/status` `Threads`) |
//! | `kairosdb.jvm.total_memory` | | resident set size in bytes (`VmRSS`) |
//! | `kairosdb.jvm.free_memory` | | memory the machine can still give, bytes (`MemAvailable`) |
//! | `kairosdb.jvm.max_memory` | | physical memory of the machine, bytes (`MemTotal`) |
//!
//! **Timings.** One point per field per tag combination that had at least one event in the
//! interval, nothing for combinations without events: `.min`, `.max`, `.total` (sum) and
//! `.avg` in milliseconds as doubles (sub-millisecond queries are common here), `.count`
//! as a long. This is the shape of KairosDB's metrics4j `timeStats` collector
//! (`SimpleTimerMetric` with `report-format: DOUBLE`), which KairosDB 1.3 uses for
//! `http.ingest_time`. For `request_time`, `query_time` and `datastore.*` KairosDB 1.3's
//! shipped `metrics4j.conf` uses the `bag` collector instead: one point per event at the
//! event's time, named with the field `.value` (`kairosdb.http.request_time.value`), and
//! its comments name `stats`/`timeStats` as the switch "if individual query metrics are
//! getting too much". Deviation: we always write the statistics, so the report's size
//! grows with the tag combinations, not with the request rate. Sizes (`S`) are metrics4j's
//! `stats` collector (`SimpleStats`): longs, `.avg` a double.
//!
//! **Bounds.** Each tagged figure holds at most `metrics::TALLY_KEYS` (10 000) tag combinations per
//! interval; events of new combinations beyond that are counted under the tag value
//! `_overflow` (`metric_name=_overflow`, `path=_overflow`), so a flood of metric names or
//! request paths cannot grow memory without limit.
//!
//! Deviations from KairosDB, and why:
//! * There is no JVM: `total_memory` (the heap the JVM holds) maps to what the process
//!   holds, RSS; `max_memory` (the most the heap may grow to) maps to the machine's
//!   memory; `free_memory` (unused room) maps to the memory still available to take.
//!   `heap_usage`/`non_heap_usage` have no counterpart and are not written.
//! * Counters keep their documented names (Statistics.rst): KairosDB 1.3's
//!   `httpStatsFormatter` stores `http.ingest_count` as `kairosdb.http.ingest_count.count`.
//!   `ingest_count` and `telnet_request_count` are written as 0 for an idle interval;
//!   KairosDB's counters (`report-zero: false`) then write nothing. The tagged counters
//!   (`http_request_count`, `metric_counters`) write only what happened.
//! * `request_time` also covers `/datapoints/query/tags` and `/datapoints/delete` (an
//!   addition; KairosDB times only `/datapoints/query`). Requests whose client went away
//!   before the answer are not timed (they are in `kairosdb_http_queries_cancelled_total`).
//! * `datastore.query_time` includes aggregating: our read and aggregation are one step
//!   (`kairosdb_query::execute`); KairosDB's aggregators run lazily while the response is
//!   written and so fall in `http.query_time` only. A metric query that failed is not
//!   timed, as in KairosDB (which records `query_time` after the query succeeded).
//! * `metric_counters` counts points once storage acknowledged them (KairosDB counts them
//!   as they enter its queue); points rejected by validation are not counted.
//! * `http.ingest_time` covers every answered ingest request, also rejected ones; it ends
//!   once storage acknowledged the write (KairosDB: once the points are queued).
//! * Not written, for want of a counterpart: `datastore.query_row_count` (our reads are not
//!   made of rows), `.queries_waiting`, `.query_collisions` (no query queuing manager),
//!   `.query_start_time`, `.metric_name_count`, `queue.process_count`,
//!   `queue.read_from_file`, `queue.batch_stats.*`, `ingest_executor.*`,
//!   `datastore.cassandra.*`, `filter.*`, `log.query.*`. (`kairosdb.rollup.*` is written
//!   by the roll-up scheduler after each execution, `rollup/scheduler.rs`.)
//! * `telnet_request_count` counts the lines that parsed; lines that did not are in
//!   `kairosdb_telnet_bad_lines_total` on `/metrics`.
//! * The report does not count as ingest: it is not in `kairosdb_datapoints_ingested_total`
//!   nor in `kairosdb.http.ingest_count` nor in `metric_counters`.
//!
//! Counters are per interval, like KairosDB's metrics4j counters (reset on report): the
//! difference of the cumulative atomic since the previous report. Tallies are taken and
//! emptied by each report; those of a report whose write failed are lost (the counters'
//! counts carry over to the next report).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{
    DataType, Points, SeriesKey, SeriesPoints, Storage, StorageStats, Tags, WriteBatch,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{resident_bytes, ServerMetrics, Stats};

/// A per-interval counter of the report: metric, extra tag, and its cumulative atomic.
type CounterSource = (
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&ServerMetrics) -> &AtomicU64,
);

/// The counters written, each as its change since the previous report.
const COUNTERS: &[CounterSource] = &[
    ("kairosdb.http.ingest_count", None, |m| {
        &m.http_datapoints_ingested
    }),
    (TELNET, Some(("method", "put")), |m| &m.telnet_put_requests),
    (TELNET, Some(("method", "putm")), |m| {
        &m.telnet_putm_requests
    }),
    (TELNET, Some(("method", "puts")), |m| {
        &m.telnet_puts_requests
    }),
    (TELNET, Some(("method", "version")), |m| {
        &m.telnet_version_requests
    }),
];

const TELNET: &str = "kairosdb.protocol.telnet_request_count";

/// Builds the report batches; keeps the counters' values of the previous report.
pub struct Reporter {
    metrics: Arc<ServerMetrics>,
    host: String,
    ttl_secs: u32,
    /// The value of each of [`COUNTERS`] at the previous report.
    last: Vec<u64>,
}

impl Reporter {
    pub fn new(metrics: Arc<ServerMetrics>, host: String, ttl_secs: u32) -> Reporter {
        // Counting starts now: what came before the reporter existed belongs to no interval.
        let last = COUNTERS
            .iter()
            .map(|(_, _, c)| c(&metrics).load(Ordering::Relaxed))
            .collect();
        Reporter {
            metrics,
            host,
            ttl_secs,
            last,
        }
    }

    /// The report at `now_ms`: one point per series. Figures that cannot be read (no
    /// `/proc`) are left out rather than written as 0. `storage` gives the queue backlog.
    pub fn batch(&mut self, now_ms: i64, storage: &StorageStats) -> WriteBatch {
        let mut report = Report {
            host: &self.host,
            ttl_secs: self.ttl_secs,
            now_ms,
            batch: WriteBatch::new(),
        };
        for ((name, tag, counter), last) in COUNTERS.iter().zip(&mut self.last) {
            let now = counter(&self.metrics).load(Ordering::Relaxed);
            let tags: Vec<_> = tag.iter().copied().collect();
            report.long(name, &tags, now.wrapping_sub(*last));
            *last = now;
        }
        tallies(&mut report, &self.metrics);
        let queue = self.metrics.queue_points(storage);
        report.long("kairosdb.queue.file_queue.size", &[], queue);
        process(&mut report);
        report.batch
    }
}

/// The tagged per-interval figures, taken (and so emptied) now, sorted by tags.
fn tallies(report: &mut Report, metrics: &ServerMetrics) {
    let t = &metrics.tallies;
    for ((request, ok), stats) in sorted(t.requests.take()) {
        let status = if ok { "success" } else { "failed" };
        let tags = [("request", request), ("status", status)];
        report.durations("kairosdb.http.request_time", &tags, &stats);
    }
    for ((), stats) in t.ingest.take() {
        report.durations("kairosdb.http.ingest_time", &[], &stats);
    }
    for ((name, index), f) in sorted(t.metric_queries.take()) {
        let index = index.to_string();
        let tags = [("metric_name", name.as_str()), ("query_index", &index)];
        report.durations("kairosdb.http.query_time", &tags, &f.http_time);
        report.durations("kairosdb.datastore.query_time", &tags, &f.datastore_time);
        report.sizes(
            "kairosdb.datastore.query_sample_size",
            &tags,
            &f.sample_size,
        );
    }
    for ((method, path), n) in sorted(t.http_requests.take()) {
        let tags = [("method", method.as_str()), ("path", &path)];
        report.long("kairosdb.protocol.http_request_count", &tags, n);
    }
    for (name, n) in sorted(t.metric_points.take()) {
        report.long("kairosdb.metric_counters", &[("metric_name", &name)], n);
    }
}

/// The process figures, in place of the JVM's (see the deviations above).
fn process(report: &mut Report) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |text: &str, label: &str| proc_field(text, label).map(|kb| kb * 1024);
    let figures = [
        ("kairosdb.jvm.thread_count", proc_field(&status, "Threads:")),
        ("kairosdb.jvm.total_memory", resident_bytes()),
        ("kairosdb.jvm.free_memory", kb(&meminfo, "MemAvailable:")),
        ("kairosdb.jvm.max_memory", kb(&meminfo, "MemTotal:")),
    ];
    for (name, value) in figures {
        if let Some(value) = value {
            report.long(name, &[], value);
        }
    }
}

fn sorted<K: Ord, V>(map: std::collections::HashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// One report being built: a point at `now_ms` per series, each tagged with the host.
struct Report<'a> {
    host: &'a str,
    ttl_secs: u32,
    now_ms: i64,
    batch: WriteBatch,
}

impl Report<'_> {
    fn push(&mut self, name: &str, tags: &[(&str, &str)], points: Points) {
        let host = [("host", self.host)];
        let tags = Tags::from_pairs(host.iter().chain(tags).copied());
        let data_type = match points {
            Points::Double { .. } => DataType::Double,
            _ => DataType::Long,
        };
        self.batch.series.push(SeriesPoints {
            key: SeriesKey::new(name, data_type, tags),
            ttl_secs: self.ttl_secs,
            points,
        });
    }

    fn long(&mut self, name: &str, tags: &[(&str, &str)], value: u64) {
        let points = Points::Long {
            ts: vec![self.now_ms],
            values: vec![i64::try_from(value).unwrap_or(i64::MAX)],
        };
        self.push(name, tags, points);
    }

    fn double(&mut self, name: &str, tags: &[(&str, &str)], value: f64) {
        let points = Points::Double {
            ts: vec![self.now_ms],
            values: vec![value],
        };
        self.push(name, tags, points);
    }

    /// metrics4j `timeStats`: `.min .max .total .avg` in milliseconds (doubles) and
    /// `.count`, from microseconds.
    fn durations(&mut self, name: &str, tags: &[(&str, &str)], s: &Stats) {
        let ms = |us: u64| us as f64 / 1000.0;
        self.double(&format!("{name}.min"), tags, ms(s.min));
        self.double(&format!("{name}.max"), tags, ms(s.max));
        self.double(&format!("{name}.total"), tags, ms(s.sum));
        self.long(&format!("{name}.count"), tags, s.count);
        self.double(
            &format!("{name}.avg"),
            tags,
            ms(s.sum) / s.count.max(1) as f64,
        );
    }

    /// metrics4j `stats`: `.min .max .sum .count` (longs) and `.avg` (a double).
    fn sizes(&mut self, name: &str, tags: &[(&str, &str)], s: &Stats) {
        self.long(&format!("{name}.min"), tags, s.min);
        self.long(&format!("{name}.max"), tags, s.max);
        self.long(&format!("{name}.sum"), tags, s.sum);
        self.long(&format!("{name}.count"), tags, s.count);
        let avg = s.sum as f64 / s.count.max(1) as f64;
        self.double(&format!("{name}.avg"), tags, avg);
    }
}

/// The first number after `label` in a `/proc` file of `label value [unit]` lines.
fn proc_field(text: &str, label: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}

/// This machine's name for the `host` tag: the kernel's hostname, else `$HOSTNAME`, else
/// `localhost`. Tag values may not be empty (spec §2), hence the fallbacks.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Starts the reporter task: a report every `interval`, the first one `interval` after
/// start, until `shutdown` is cancelled. A failed write (e.g. back-pressure) is logged and
/// that report dropped; the next one carries the counts of both intervals.
pub fn spawn(
    storage: Arc<dyn Storage>,
    metrics: Arc<ServerMetrics>,
    interval: Duration,
    ttl_secs: u32,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut reporter = Reporter::new(metrics, hostname(), ttl_secs);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + interval;
        let mut tick = tokio::time::interval_at(start, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now_ms = crate::http::now_ms();
            let before = reporter.last.clone();
            let reading = storage.clone();
            let stats = match tokio::task::spawn_blocking(move || reading.stats()).await {
                Ok(stats) => stats,
                Err(e) => {
                    tracing::error!(error = %e, "self-metrics stats task failed");
                    continue;
                }
            };
            let batch = reporter.batch(now_ms, &stats);
            let storage = storage.clone();
            let written = tokio::task::spawn_blocking(move || storage.write(&batch)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "writing self-metrics failed; report dropped");
                    reporter.last = before;
                }
                Err(e) => tracing::error!(error = %e, "self-metrics write task failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{OVERFLOW, TALLY_KEYS};

    fn value(batch: &WriteBatch, name: &str) -> Option<i64> {
        let s = batch.series.iter().find(|s| s.key.metric == name)?;
        match &s.points {
            Points::Long { values, .. } => Some(values[0]),
            _ => None,
        }
    }

    #[test]
    fn ingest_count_is_per_interval_and_every_point_has_the_host_tag() {
        let m = Arc::new(ServerMetrics::default());
        ServerMetrics::add(&m.http_datapoints_ingested, 5);
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 7);
        ServerMetrics::add(&m.http_datapoints_ingested, 3);
        let first = r.batch(1000, &StorageStats::default());
        assert_eq!(value(&first, "kairosdb.http.ingest_count"), Some(3));
        ServerMetrics::add(&m.http_datapoints_ingested, 4);
        let second = r.batch(2000, &StorageStats::default());
        assert_eq!(value(&second, "kairosdb.http.ingest_count"), Some(4));
        let third = r.batch(3000, &StorageStats::default());
        assert_eq!(value(&third, "kairosdb.http.ingest_count"), Some(0));
        ServerMetrics::add(&m.telnet_putm_requests, 2);
        let telnet = r.batch(4000, &StorageStats::default());
        let methods: Vec<(String, i64)> = telnet
            .series
            .iter()
            .filter(|s| s.key.metric == TELNET)
            .map(|s| {
                let method = s.key.tags.iter().find(|t| t.0 == "method").unwrap().1;
                let Points::Long { values, .. } = &s.points else {
                    panic!("not a long")
                };
                (method.to_string(), values[0])
            })
            .collect();
        let want = [("put", 0), ("putm", 2), ("puts", 0), ("version", 0)];
        let want: Vec<(String, i64)> = want.iter().map(|(m, n)| (m.to_string(), *n)).collect();
        assert_eq!(methods, want);
        for s in &second.series {
            let host = s.key.tags.iter().find(|t| t.0 == "host");
            assert_eq!(host, Some(("host", "box1")), "{}", s.key.metric);
            assert_eq!(s.ttl_secs, 7);
            assert_eq!(s.points.timestamps(), &[2000]);
        }
        if cfg!(target_os = "linux") {
            assert!(value(&second, "kairosdb.jvm.thread_count").unwrap() >= 1);
            assert!(value(&second, "kairosdb.jvm.total_memory").unwrap() > 0);
            let max = value(&second, "kairosdb.jvm.max_memory").unwrap();
            assert!(value(&second, "kairosdb.jvm.free_memory").unwrap() <= max);
        }
    }

    /// The one point of the series `name` whose tags include `tags`.
    fn point(batch: &WriteBatch, name: &str, tags: &[(&str, &str)]) -> Option<Points> {
        let s = batch.series.iter().find(|s| {
            s.key.metric == name && tags.iter().all(|t| s.key.tags.iter().any(|u| u == *t))
        })?;
        assert_eq!(s.points.len(), 1, "{name}");
        Some(s.points.clone())
    }

    fn long(batch: &WriteBatch, name: &str, tags: &[(&str, &str)]) -> Option<i64> {
        match point(batch, name, tags)? {
            Points::Long { values, .. } => Some(values[0]),
            other => panic!("{name} is not a long: {other:?}"),
        }
    }

    fn double(batch: &WriteBatch, name: &str, tags: &[(&str, &str)]) -> Option<f64> {
        match point(batch, name, tags)? {
            Points::Double { values, .. } => Some(values[0]),
            other => panic!("{name} is not a double: {other:?}"),
        }
    }

    fn report(r: &mut Reporter) -> WriteBatch {
        r.batch(1000, &StorageStats::default())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timings_are_per_interval_statistics_in_milliseconds_with_kairosdb_tags() {
        let m = Arc::new(ServerMetrics::default());
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 0);
        let t = &m.tallies;
        t.request_done("/datapoints/query", true, ms(2));
        t.request_done("/datapoints/query", true, ms(4));
        t.request_done("/datapoints/query", false, Duration::from_micros(500));
        t.metric_query_done("cpu", 1, ms(3), ms(1), 10);
        t.metric_query_done("cpu", 1, ms(5), ms(3), 30);
        t.metric_query_done("mem", 2, ms(1), ms(1), 7);
        t.ingest_done(ms(6));
        let b = report(&mut r);

        let ok = [("request", "/datapoints/query"), ("status", "success")];
        let request = |field: &str| format!("kairosdb.http.request_time.{field}");
        assert_eq!(double(&b, &request("min"), &ok), Some(2.0));
        assert_eq!(double(&b, &request("max"), &ok), Some(4.0));
        assert_eq!(double(&b, &request("total"), &ok), Some(6.0));
        assert_eq!(long(&b, &request("count"), &ok), Some(2));
        assert_eq!(double(&b, &request("avg"), &ok), Some(3.0));
        let failed = [("request", "/datapoints/query"), ("status", "failed")];
        assert_eq!(double(&b, &request("max"), &failed), Some(0.5));
        assert_eq!(long(&b, &request("count"), &failed), Some(1));

        let cpu = [("metric_name", "cpu"), ("query_index", "1")];
        let mem = [("metric_name", "mem"), ("query_index", "2")];
        assert_eq!(double(&b, "kairosdb.http.query_time.avg", &cpu), Some(4.0));
        assert_eq!(long(&b, "kairosdb.http.query_time.count", &cpu), Some(2));
        assert_eq!(double(&b, "kairosdb.http.query_time.max", &mem), Some(1.0));
        let datastore = "kairosdb.datastore.query_time.total";
        assert_eq!(double(&b, datastore, &cpu), Some(4.0));
        let sample = |field: &str| format!("kairosdb.datastore.query_sample_size.{field}");
        assert_eq!(long(&b, &sample("min"), &cpu), Some(10));
        assert_eq!(long(&b, &sample("max"), &cpu), Some(30));
        assert_eq!(long(&b, &sample("sum"), &cpu), Some(40));
        assert_eq!(long(&b, &sample("count"), &cpu), Some(2));
        assert_eq!(double(&b, &sample("avg"), &cpu), Some(20.0));
        assert_eq!(long(&b, &sample("sum"), &mem), Some(7));

        assert_eq!(long(&b, "kairosdb.http.ingest_time.count", &[]), Some(1));
        assert_eq!(double(&b, "kairosdb.http.ingest_time.max", &[]), Some(6.0));
        for s in &b.series {
            assert_eq!(
                s.key.tags.iter().find(|t| t.0 == "host"),
                Some(("host", "box1"))
            );
        }

        // Per interval: an interval without events writes no timing at all.
        let next = report(&mut r);
        let timings = ["kairosdb.http.", "kairosdb.datastore."];
        let left: Vec<&str> = next
            .series
            .iter()
            .map(|s| s.key.metric.as_str())
            .filter(|n| timings.iter().any(|p| n.starts_with(p)) && !n.ends_with("ingest_count"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn metric_counters_count_points_per_metric_and_leave_out_kairosdb_names() {
        use kairosdb_model::{BatchBuilder, Value};
        let m = Arc::new(ServerMetrics::default());
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 0);
        let mut b = BatchBuilder::new();
        for (metric, host, n) in [("app.a", "x", 2), ("app.a", "y", 1), ("app.b", "x", 1)] {
            let tags = Tags::from_pairs([("host", host)]);
            for ts in 0..n {
                b.push(metric, &tags, 0, ts, Value::Long(1));
            }
        }
        let tags = Tags::from_pairs([("host", "x")]);
        b.push("kairosdb.jvm.thread_count", &tags, 0, 1, Value::Long(9));
        let batch = b.finish();
        m.tallies.points_received(&batch);
        m.tallies.points_received(&batch);
        let report1 = report(&mut r);
        let counters = |b: &WriteBatch| -> Vec<(String, i64)> {
            b.series
                .iter()
                .filter(|s| s.key.metric == "kairosdb.metric_counters")
                .map(|s| {
                    let name = s.key.tags.iter().find(|t| t.0 == "metric_name").unwrap().1;
                    (
                        name.to_string(),
                        long(b, "kairosdb.metric_counters", &[("metric_name", name)]).unwrap(),
                    )
                })
                .collect()
        };
        let want = vec![("app.a".to_string(), 6), ("app.b".to_string(), 2)];
        assert_eq!(counters(&report1), want);
        assert_eq!(counters(&report(&mut r)), vec![]);
    }

    #[test]
    fn http_request_count_tags_method_and_kairosdb_path() {
        let m = Arc::new(ServerMetrics::default());
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 0);
        let t = &m.tallies;
        t.http_request("POST", "/api/v1/datapoints/query");
        t.http_request("POST", "/api/v1/datapoints/query");
        t.http_request("GET", "/api/v1/datapoints/query");
        t.http_request("GET", "/api/v1/rollups/abc");
        t.http_request("PUT", "/api/v1/rollups");
        t.http_request("GET", "/api/v1/metricnames");
        let b = report(&mut r);
        let name = "kairosdb.protocol.http_request_count";
        let count =
            |method: &str, path: &str| long(&b, name, &[("method", method), ("path", path)]);
        assert_eq!(count("POST", "/api/v1/datapoints/query"), Some(2));
        assert_eq!(count("GET", "/api/v1/datapoints/query"), Some(1));
        assert_eq!(count("GET", "/api/v1/rollups"), Some(1));
        assert_eq!(count("PUT", "/api/v1/rollups"), Some(1));
        assert_eq!(count("GET", "/api/v1/metricnames"), Some(1));
        assert_eq!(b.series.iter().filter(|s| s.key.metric == name).count(), 5);
        assert_eq!(long(&report(&mut r), name, &[]), None);
    }

    #[test]
    fn a_flood_of_names_is_bounded_and_counted_under_overflow() {
        let m = Arc::new(ServerMetrics::default());
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 0);
        for i in 0..TALLY_KEYS + 5 {
            m.tallies.http_request("GET", &format!("/api/v1/x{i}"));
        }
        m.tallies.http_request("GET", "/api/v1/x0");
        let b = report(&mut r);
        let name = "kairosdb.protocol.http_request_count";
        let series = b.series.iter().filter(|s| s.key.metric == name).count();
        assert_eq!(series, TALLY_KEYS + 1);
        assert_eq!(long(&b, name, &[("path", "/api/v1/x0")]), Some(2));
        let overflow = [("method", OVERFLOW), ("path", OVERFLOW)];
        assert_eq!(long(&b, name, &overflow), Some(5));
    }

    #[test]
    fn queue_size_is_the_backlog_at_report_time() {
        let m = Arc::new(ServerMetrics::default());
        let mut r = Reporter::new(m.clone(), "box1".to_string(), 0);
        m.queue_size.fetch_add(3, Ordering::Relaxed);
        let stats = StorageStats {
            backlog_points: 7,
            ..StorageStats::default()
        };
        let b = r.batch(1000, &stats);
        assert_eq!(long(&b, "kairosdb.queue.file_queue.size", &[]), Some(10));
    }

    #[test]
    fn proc_fields_parse() {
        let status = "Name:\tkairosdb\nThreads:\t12\nVmRSS:\t  2048 kB\n";
        assert_eq!(proc_field(status, "Threads:"), Some(12));
        assert_eq!(proc_field(status, "VmRSS:"), Some(2048));
        assert_eq!(proc_field(status, "Missing:"), None);
        assert!(!hostname().is_empty());
    }
}

//! Self-metrics: every `self_metrics_interval_secs` the server writes figures about itself
//! into its own store as ordinary `kairosdb.*` metrics, like KairosDB's reporter
//! (spec §11.1, `reporter.schedule` / `reporter.ttl` in §9). They show up in
//! `/api/v1/metricnames` and can be queried like any other metric.
//!
//! Not here: counting. The figures come from [`ServerMetrics`] (the atomics that also feed
//! `/metrics`) and from `/proc`; this file only turns them into one [`WriteBatch`] and
//! writes it through the same [`Storage`] handle ingest uses.
//!
//! What is written, every point tagged `host=<hostname>` (KairosDB's names):
//!
//! | metric | value |
//! |---|---|
//! | `kairosdb.http.ingest_count` | points ingested over HTTP during the interval |
//! | `kairosdb.protocol.telnet_request_count` | tag `method=put\|putm\|puts\|version`: commands parsed during the interval |
//! | `kairosdb.jvm.thread_count` | threads of the process (`/proc/self/status` `Threads`) |
//! | `kairosdb.jvm.total_memory` | resident set size in bytes (`VmRSS`) |
//! | `kairosdb.jvm.free_memory` | memory the machine can still give, bytes (`MemAvailable`) |
//! | `kairosdb.jvm.max_memory` | physical memory of the machine, bytes (`MemTotal`) |
//!
//! Deviations from KairosDB, and why:
//! * There is no JVM: `total_memory` (the heap the JVM holds) maps to what the process
//!   holds, RSS; `max_memory` (the most the heap may grow to) maps to the machine's
//!   memory; `free_memory` (unused room) maps to the memory still available to take.
//!   `heap_usage`/`non_heap_usage` have no counterpart and are not written.
//! * Not written yet because the figure is not counted: `kairosdb.http.request_time`,
//!   `.query_time`, `.ingest_time`, `kairosdb.datastore.*`,
//!   `kairosdb.protocol.http_request_count`, and
//!   `kairosdb.metric_counters` (a per-metric-name map on the ingest hot path).
//! * `telnet_request_count` counts the lines that parsed; lines that did not are in
//!   `kairosdb_telnet_bad_lines_total` on `/metrics`.
//! * The report does not count as ingest: it is not in `kairosdb_datapoints_ingested_total`
//!   nor in `kairosdb.http.ingest_count`.
//!
//! Counters are per interval, like KairosDB's metrics4j counters (reset on report): the
//! difference of the cumulative atomic since the previous report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{DataType, Points, SeriesKey, SeriesPoints, Storage, Tags, WriteBatch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{resident_bytes, ServerMetrics};

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
    /// `/proc`) are left out rather than written as 0.
    pub fn batch(&mut self, now_ms: i64) -> WriteBatch {
        let mut figures = Vec::new();
        for ((name, tag, counter), last) in COUNTERS.iter().zip(&mut self.last) {
            let now = counter(&self.metrics).load(Ordering::Relaxed);
            figures.push((*name, *tag, Some(now.wrapping_sub(*last))));
            *last = now;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb = |text: &str, label: &str| proc_field(text, label).map(|kb| kb * 1024);
        figures.extend([
            (
                "kairosdb.jvm.thread_count",
                None,
                proc_field(&status, "Threads:"),
            ),
            ("kairosdb.jvm.total_memory", None, resident_bytes()),
            (
                "kairosdb.jvm.free_memory",
                None,
                kb(&meminfo, "MemAvailable:"),
            ),
            ("kairosdb.jvm.max_memory", None, kb(&meminfo, "MemTotal:")),
        ]);
        let series = figures
            .into_iter()
            .filter_map(|(name, tag, value)| {
                let host = ("host", self.host.as_str());
                let tags = Tags::from_pairs([Some(host), tag].into_iter().flatten());
                Some(SeriesPoints {
                    key: SeriesKey::new(name, DataType::Long, tags),
                    ttl_secs: self.ttl_secs,
                    points: Points::Long {
                        ts: vec![now_ms],
                        values: vec![i64::try_from(value?).unwrap_or(i64::MAX)],
                    },
                })
            })
            .collect();
        WriteBatch { series }
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
            let batch = reporter.batch(now_ms);
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
        let first = r.batch(1000);
        assert_eq!(value(&first, "kairosdb.http.ingest_count"), Some(3));
        ServerMetrics::add(&m.http_datapoints_ingested, 4);
        let second = r.batch(2000);
        assert_eq!(value(&second, "kairosdb.http.ingest_count"), Some(4));
        assert_eq!(value(&r.batch(3000), "kairosdb.http.ingest_count"), Some(0));
        ServerMetrics::add(&m.telnet_putm_requests, 2);
        let telnet = r.batch(4000);
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

    #[test]
    fn proc_fields_parse() {
        let status = "Name:\tkairosdb\nThreads:\t12\nVmRSS:\t  2048 kB\n";
        assert_eq!(proc_field(status, "Threads:"), Some(12));
        assert_eq!(proc_field(status, "VmRSS:"), Some(2048));
        assert_eq!(proc_field(status, "Missing:"), None);
        assert!(!hostname().is_empty());
    }
}

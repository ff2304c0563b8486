//! The server's own figures, served as Prometheus text on `/metrics` and as JSON on
//! `GET /api/v1/metrics`.
//!
//! Counters and gauges live in plain atomics ([`ServerMetrics`]), each declared once with
//! its name and help ([`kairosdb_model::metrics!`]): the one source of truth for both
//! formats. On every scrape they are listed as [`Sample`]s together with the storage's
//! [`StorageStats`] and the process RSS, and copied into the `metrics` recorder. Only the
//! batch-duration histogram is recorded live through the `metrics` macros.
//!
//! The same atomics feed the `kairosdb.*` series written into the store (spec §11.1) by
//! `self_metrics.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kairosdb_model::{Gauge, Kind, Sample, StorageStats};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const BATCH_DURATION: &str = "kairosdb_batch_duration_seconds";

kairosdb_model::metrics! {
    /// The server's own counters and gauges, bumped by the HTTP and telnet listeners.
    #[derive(Debug, Default)]
    pub struct ServerMetrics {
        counter datapoints_ingested: "kairosdb_datapoints_ingested_total",
            "Data points acknowledged by storage (HTTP and telnet).";
        counter http_datapoints_ingested: "kairosdb_http_datapoints_ingested_total",
            "Data points acknowledged by storage that came in over HTTP (the self-metric kairosdb.http.ingest_count).";
        counter batches_processed: "kairosdb_batches_processed_total",
            "Successful storage writes.";
        counter ingestion_errors: "kairosdb_ingestion_errors_total",
            "HTTP ingest requests answered with an error, telnet points rejected by validation and failed telnet storage writes.";
        gauge queue_size: "kairosdb_queue_size",
            "Ingested points not yet stored: handed to storage and not yet acknowledged, plus, in Cassandra mode, acknowledged (in the local delivery queue) and not yet delivered to Cassandra.";
        counter telnet_bad_lines: "kairosdb_telnet_bad_lines_total",
            "Telnet lines that could not be parsed or were too long.";
        counter telnet_put_requests: "kairosdb_telnet_put_requests_total",
            "Telnet put lines parsed.";
        counter telnet_putm_requests: "kairosdb_telnet_putm_requests_total",
            "Telnet putm lines parsed.";
        counter telnet_puts_requests: "kairosdb_telnet_puts_requests_total",
            "Telnet puts lines parsed.";
        counter telnet_version_requests: "kairosdb_telnet_version_requests_total",
            "Telnet version commands received.";
        gauge telnet_connections: "kairosdb_telnet_connections",
            "Open telnet connections.";
        counter queries_cancelled: "kairosdb_http_queries_cancelled_total",
            "Query requests abandoned by their client while running; their metric queries were cancelled.";
    }
}

/// Server gauges that are not atomics of [`ServerMetrics`].
const GAUGES: &[Gauge<ServerMetrics>] = &[Gauge::new(
    "kairosdb_memory_usage_bytes",
    "Resident set size of the server process.",
    |_| resident_bytes().unwrap_or(0) as f64,
)];

impl ServerMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records one storage write of `points` points that took `elapsed`.
    pub fn batch_written(&self, points: usize, elapsed: Duration) {
        ServerMetrics::add(&self.batches_processed, 1);
        ServerMetrics::add(&self.datapoints_ingested, points as u64);
        metrics::histogram!(BATCH_DURATION).record(elapsed.as_secs_f64());
    }

    /// Every figure, server first (counters, then gauges), then the storage's (prefixed
    /// `kairosdb_`).
    ///
    /// `kairosdb_queue_size` is the ingest backlog users watch: the points this server
    /// handed to storage and has no answer for yet (the atomic), plus the points storage
    /// acknowledged and still has to deliver ([`StorageStats::backlog_points`]: the
    /// Cassandra delivery queue; 0 for the embedded engine, whose acknowledged points
    /// are already queryable).
    pub fn snapshot(&self, storage: &StorageStats) -> Vec<Sample> {
        let mut own = self.collect();
        if let Some(g) = own.gauges.iter_mut().find(|g| g.0 == "kairosdb_queue_size") {
            g.2 += storage.backlog_points as f64;
        }
        own.read_gauges(GAUGES, self);
        own.samples("")
            .chain(storage.samples("kairosdb_"))
            .collect()
    }
}

/// Installs the global Prometheus recorder. The batch duration is a true histogram.
pub fn install_prometheus() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(BATCH_DURATION.to_string()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ],
        )?
        .install_recorder()?;
    metrics::describe_histogram!(
        BATCH_DURATION,
        metrics::Unit::Seconds,
        "Time taken by one storage write."
    );
    Ok(handle)
}

/// Prometheus text exposition of `figures` plus the live histograms.
pub fn render_prometheus(handle: &PrometheusHandle, figures: &[Sample]) -> String {
    for f in figures {
        match f.kind {
            Kind::Counter => {
                metrics::describe_counter!(f.name.clone(), f.help);
                metrics::counter!(f.name.clone()).absolute(f.value as u64);
            }
            Kind::Gauge => {
                metrics::describe_gauge!(f.name.clone(), f.help);
                metrics::gauge!(f.name.clone()).set(f.value);
            }
        }
    }
    handle.run_upkeep();
    handle.render()
}

/// Resident set size of this process in bytes, from `/proc/self/status` (`VmRSS`, in kB).
/// The same figure as `/proc/self/statm`'s second field, but without needing the page size.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_includes_storage_figures_with_prefix() {
        let m = ServerMetrics::default();
        m.batch_written(10, Duration::from_millis(1));
        let stats = StorageStats {
            counters: vec![("wal_bytes_total", "WAL bytes.", 5)],
            gauges: vec![("head_series", "Series in memory.", 3.0)],
            backlog_points: 0,
        };
        let figures = m.snapshot(&stats);
        let get = |n: &str| figures.iter().find(|f| f.name == n).map(|f| f.value);
        assert_eq!(get("kairosdb_datapoints_ingested_total"), Some(10.0));
        assert_eq!(get("kairosdb_batches_processed_total"), Some(1.0));
        assert_eq!(get("kairosdb_wal_bytes_total"), Some(5.0));
        assert_eq!(get("kairosdb_head_series"), Some(3.0));
        if cfg!(target_os = "linux") {
            assert!(get("kairosdb_memory_usage_bytes").unwrap() > 0.0);
        }
    }
}

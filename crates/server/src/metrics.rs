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
//! `self_metrics.rs`, together with the figures that need tags and so are not atomics:
//! [`Tallies`], per-interval maps (request and query timings, requests per path, points
//! per metric) that only the self-metrics report reads, and empties.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kairosdb_model::{Gauge, Kind, Sample, StorageStats};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const BATCH_DURATION: &str = "kairosdb_batch_duration_seconds";

kairosdb_model::metrics! {
    /// The server's own counters and gauges, bumped by the HTTP and telnet listeners.
    #[derive(Debug, Default)]
    pub struct Counters {
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
        counter http_bad_requests: "kairosdb_http_bad_requests_total",
            "HTTP API requests answered 400: malformed or invalid input.";
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
        counter telnet_over_limit: "kairosdb_telnet_connections_over_limit_total",
            "Telnet connections closed at once because telnet_max_connections were open.";
        gauge http_connections: "kairosdb_http_connections",
            "Open HTTP connections.";
        counter http_refused_connections: "kairosdb_http_refused_connections_total",
            "HTTP connections answered 503 and closed because http_max_connections were open.";
        counter http_auth_missing: "kairosdb_http_auth_missing_total",
            "HTTP requests answered 401 because they carried no credentials where some were needed.";
        counter http_auth_failures: "kairosdb_http_auth_failures_total",
            "HTTP requests answered 401 because their credentials were wrong or malformed (failed log-in attempts).";
        counter http_forbidden: "kairosdb_http_forbidden_total",
            "HTTP requests answered 403 because the authenticated user or token lacks the route's scope.";
        counter http_rate_limited: "kairosdb_http_rate_limited_total",
            "HTTP requests answered 429 because their client's rate limit was exhausted.";
        counter telnet_refused: "kairosdb_telnet_refused_connections_total",
            "Telnet connections closed at once because the client address is not in telnet_allow.";
        counter queries_cancelled: "kairosdb_http_queries_cancelled_total",
            "Query requests abandoned by their client while running; their metric queries were cancelled.";
    }
}

/// The server's figures: the [`Counters`] atomics (fields reached through `Deref`, so the
/// listeners write `metrics.queue_size`), and the tagged per-interval [`Tallies`].
#[derive(Debug, Default)]
pub struct ServerMetrics {
    counters: Counters,
    pub tallies: Tallies,
}

impl std::ops::Deref for ServerMetrics {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.counters
    }
}

/// Server gauges that are not atomics of [`Counters`].
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
            g.2 = self.queue_points(storage) as f64;
        }
        own.read_gauges(GAUGES, self);
        own.samples("")
            .chain(storage.samples("kairosdb_"))
            .collect()
    }
}

/// Most keys a [`Tally`] holds in one interval: a flood of metric names or request paths
/// cannot grow memory without limit (KairosDB's collectors have no bound).
pub const TALLY_KEYS: usize = 10_000;

/// The key that takes the events of new keys once a [`Tally`] holds [`TALLY_KEYS`]: the
/// tag value `metric_name=_overflow` / `path=_overflow` in the report.
pub const OVERFLOW: &str = "_overflow";

/// The figures with tags, per interval: filled where the events happen, taken and emptied
/// by each self-metrics report (spec §11.1). Not on `/metrics`.
#[derive(Debug)]
pub struct Tallies {
    /// `kairosdb.http.request_time`: per (request path, succeeded), in microseconds.
    pub requests: Tally<(&'static str, bool), Stats>,
    /// `kairosdb.http.ingest_time`: per HTTP ingest request, in microseconds.
    pub ingest: Tally<(), Stats>,
    /// `kairosdb.http.query_time` and `kairosdb.datastore.*`: per (metric name, 1-based
    /// index of the metric query in its request).
    pub metric_queries: Tally<(String, u32), QueryFigures>,
    /// `kairosdb.protocol.http_request_count`: per (method, path as KairosDB reports it).
    pub http_requests: Tally<(String, String), u64>,
    /// `kairosdb.metric_counters`: points received per metric name (not `kairosdb.*`).
    pub metric_points: Tally<String, u64>,
}

impl Default for Tallies {
    fn default() -> Tallies {
        Tallies {
            requests: Tally::new(TALLY_KEYS, ("", false)),
            ingest: Tally::new(TALLY_KEYS, ()),
            metric_queries: Tally::new(TALLY_KEYS, (OVERFLOW.to_string(), 0)),
            http_requests: Tally::new(TALLY_KEYS, (OVERFLOW.to_string(), OVERFLOW.to_string())),
            metric_points: Tally::new(TALLY_KEYS, OVERFLOW.to_string()),
        }
    }
}

/// What one metric query of an HTTP query request reports (see `query.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryFigures {
    /// `kairosdb.http.query_time`: the metric query from its start to its answer, µs.
    pub http_time: Stats,
    /// `kairosdb.datastore.query_time`: reading and aggregating (`kairosdb_query::execute`), µs.
    pub datastore_time: Stats,
    /// `kairosdb.datastore.query_sample_size`: points read.
    pub sample_size: Stats,
}

impl Tallies {
    /// One finished query-class request (`request` is KairosDB's tag value, e.g.
    /// `/datapoints/query`) that took `elapsed`.
    pub fn request_done(&self, request: &'static str, ok: bool, elapsed: Duration) {
        self.requests
            .with(&(request, ok), |s| s.add(micros(elapsed)));
    }

    /// One answered HTTP ingest request that took `elapsed`.
    pub fn ingest_done(&self, elapsed: Duration) {
        self.ingest.with(&(), |s| s.add(micros(elapsed)));
    }

    /// One metric query that completed: `index` is 1-based, as KairosDB's `query_index`.
    pub fn metric_query_done(
        &self,
        name: &str,
        index: usize,
        http: Duration,
        datastore: Duration,
        sample_size: u64,
    ) {
        let key = (name.to_string(), u32::try_from(index).unwrap_or(u32::MAX));
        self.metric_queries.with(&key, |f| {
            f.http_time.add(micros(http));
            f.datastore_time.add(micros(datastore));
            f.sample_size.add(sample_size);
        });
    }

    /// One HTTP request under `/api/`, counted under KairosDB's `path` tag rule
    /// (`MonitorFilter.getFilteredPath`): paths under `/api/v1/datapoints` verbatim,
    /// `/api/v1/rollups…` as `/api/v1/rollups`, every other path verbatim.
    pub fn http_request(&self, method: &str, path: &str) {
        let path = if path.starts_with("/api/v1/rollups") {
            "/api/v1/rollups"
        } else {
            path
        };
        let key = (method.to_string(), path.to_string());
        self.http_requests.with(&key, |n| *n += 1);
    }

    /// Points received per metric for `kairosdb.metric_counters`. Our own `kairosdb.*`
    /// metrics are left out, as KairosDB's `DataPointsMonitor` does.
    ///
    /// On the ingest path, so the batch is first summed per metric without hashing or
    /// locking: a series' metric is looked for among the last [`LOOKBACK`] metrics seen
    /// (a batch usually cycles through a few metrics per host, TSBS 10), and the shared
    /// map is then locked once and updated once per entry.
    pub fn points_received(&self, batch: &kairosdb_model::WriteBatch) {
        let mut sums: Vec<(&str, u64)> = Vec::new();
        for s in &batch.series {
            let name = s.key.metric.as_str();
            if name.starts_with(SELF_PREFIX) {
                continue;
            }
            let points = s.points.len() as u64;
            let recent = sums.len().saturating_sub(LOOKBACK);
            match sums[recent..].iter_mut().rev().find(|(m, _)| *m == name) {
                Some((_, n)) => *n += points,
                None => sums.push((name, points)),
            }
        }
        if !sums.is_empty() {
            self.metric_points.with_all(sums, |n, add| *n += add);
        }
    }
}

/// How many of the metrics last seen in a batch [`Tallies::points_received`] compares a
/// series' metric with before it starts a new entry.
const LOOKBACK: usize = 16;

/// The metric prefix of the self-metrics (KairosDB's `kairosdb.metric-prefix`).
pub const SELF_PREFIX: &str = "kairosdb.";

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Per-interval statistics of one figure: what KairosDB's metrics4j `timeStats`
/// (durations) and `stats` (sizes) collectors report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub min: u64,
    pub max: u64,
    pub sum: u64,
    pub count: u64,
}

impl Stats {
    pub fn add(&mut self, value: u64) {
        self.min = if self.count == 0 {
            value
        } else {
            self.min.min(value)
        };
        self.max = self.max.max(value);
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }
}

/// A per-interval map key → figure, bounded to `limit` keys: once full, the events of new
/// keys go to the `overflow` key. [`Tally::take`] empties it.
#[derive(Debug)]
pub struct Tally<K, V> {
    map: Mutex<HashMap<K, V>>,
    limit: usize,
    overflow: K,
}

impl<K: Hash + Eq + Clone, V: Default> Tally<K, V> {
    pub fn new(limit: usize, overflow: K) -> Tally<K, V> {
        Tally {
            map: Mutex::new(HashMap::new()),
            limit,
            overflow,
        }
    }

    /// Updates the figure of `key` (allocating the key only when it is new).
    pub fn with<Q>(&self, key: &Q, update: impl FnOnce(&mut V))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.lock();
        self.update(&mut map, key, update);
    }

    /// [`Tally::with`] for several keys under one lock.
    pub fn with_all<'a, Q, A>(
        &self,
        items: impl IntoIterator<Item = (&'a Q, A)>,
        mut update: impl FnMut(&mut V, A),
    ) where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized + 'a,
    {
        let mut map = self.lock();
        for (key, arg) in items {
            self.update(&mut map, key, |v| update(v, arg));
        }
    }

    fn update<Q>(&self, map: &mut HashMap<K, V>, key: &Q, update: impl FnOnce(&mut V))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = map.get_mut(key) {
            return update(v);
        }
        let key = if map.len() < self.limit {
            key.to_owned()
        } else {
            self.overflow.clone()
        };
        update(map.entry(key).or_default());
    }

    /// Everything tallied since the previous take.
    pub fn take(&self) -> HashMap<K, V> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // A panic while holding the lock leaves at worst one figure half-updated.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServerMetrics {
    /// `kairosdb_queue_size` (see [`ServerMetrics::snapshot`]).
    pub fn queue_points(&self, storage: &StorageStats) -> u64 {
        let handed = self.queue_size.load(Ordering::Relaxed).max(0) as u64;
        handed + storage.backlog_points
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
        let labels: Vec<metrics::Label> = f
            .labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.clone()))
            .collect();
        match f.kind {
            Kind::Counter => {
                metrics::describe_counter!(f.name.clone(), f.help);
                metrics::counter!(f.name.clone(), labels).absolute(f.value as u64);
            }
            Kind::Gauge => {
                metrics::describe_gauge!(f.name.clone(), f.help);
                metrics::gauge!(f.name.clone(), labels).set(f.value);
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
    fn tally_holds_at_most_its_limit_and_take_empties_it() {
        let t: Tally<String, u64> = Tally::new(2, OVERFLOW.to_string());
        for key in ["a", "b", "c", "a", "d"] {
            t.with(key, |n| *n += 1);
        }
        t.with_all([("b", 10), ("e", 100)], |n, add| *n += add);
        let mut got: Vec<(String, u64)> = t.take().into_iter().collect();
        got.sort();
        let want = [("_overflow", 102), ("a", 2), ("b", 11)];
        let want: Vec<(String, u64)> = want.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        assert_eq!(got, want);
        assert!(t.take().is_empty());
    }

    #[test]
    fn stats_keep_min_max_sum_and_count() {
        let mut s = Stats::default();
        for v in [5, 2, 9] {
            s.add(v);
        }
        let want = Stats {
            min: 2,
            max: 9,
            sum: 16,
            count: 3,
        };
        assert_eq!(s, want);
    }

    #[test]
    fn snapshot_includes_storage_figures_with_prefix() {
        let m = ServerMetrics::default();
        m.batch_written(10, Duration::from_millis(1));
        let stats = StorageStats {
            counters: vec![("wal_bytes_total", "WAL bytes.", 5)],
            gauges: vec![("head_series", "Series in memory.", 3.0)],
            backlog_points: 0,
            labeled: Vec::new(),
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

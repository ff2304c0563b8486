//! A scripted in-memory [`Storage`] for unit tests of the HTTP and telnet layers: it
//! records writes, can fail the next writes with given errors, and reports a set health.
//! Reads return one series of `points_per_series` points per metric, are logged, can be
//! held up by a hook (to script slow or blocked reads) and count how many run at once.
//! Reads with a work limit stop at it (`Read::OverWorkLimit`) unless `reads_inline` is set.
//! Tests that need none of this use `kairosdb_model::NullStorage`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kairosdb_model::{
    DataType, DeleteRequest, HealthStatus, NullStorage, Points, Read, SeriesData, SeriesKey,
    SeriesQuery, Storage, StorageError, StorageStats, TagFilter, Tags, TimeRange, WriteBatch,
};

/// Called at the start of every `query()`, on the querying thread.
pub type QueryHook = Box<dyn Fn(&SeriesQuery) + Send + Sync>;

#[derive(Default)]
pub struct FakeStorage {
    pub unhealthy: bool,
    /// Errors returned by the next writes, front first; afterwards writes succeed.
    pub fail_next: Mutex<VecDeque<StorageError>>,
    /// Write attempts, including failed ones.
    pub attempts: Mutex<usize>,
    /// Batches acknowledged.
    pub written: Mutex<Vec<WriteBatch>>,
    /// Points of the one series (tag `host=a`, long values) each read returns; 0 = none.
    pub points_per_series: usize,
    /// Reads of the i-th of these metrics return doubles with a NaN (which JSON cannot
    /// hold) at timestamp i + 1.
    pub nan_metrics: Vec<&'static str>,
    /// Reads of these metrics fail with `Internal("disk on fire reading <metric>")`.
    pub fail_metrics: Vec<&'static str>,
    /// Runs before each read returns (e.g. blocks until the test releases it).
    pub on_query: Option<QueryHook>,
    /// Metric names of the reads, in the order they started.
    pub queries: Mutex<Vec<String>>,
    /// Reads running now, and the most that ever ran at once.
    pub reads_running: AtomicUsize,
    pub max_reads_running: AtomicUsize,
    /// Reads that have returned.
    pub reads_done: AtomicUsize,
    /// Whether reads with a `work_limit` are answered (as the embedded engine answers
    /// small ones) or all stop with `Read::OverWorkLimit` (as a backend that reads over
    /// the network stops them).
    pub reads_inline: bool,
    /// Reads of these metrics need more work than any `work_limit` allows.
    pub heavy_metrics: Vec<&'static str>,
    /// The `work_limit` of each read that ran, in the order they started (a read stopped
    /// by its limit is only counted in `refused`).
    pub work_limits: Mutex<Vec<Option<u64>>>,
    /// Reads stopped by their work limit.
    pub refused: AtomicUsize,
    /// Answers what is not scripted here: series keys, deletes, sync.
    pub null: NullStorage,
}

impl FakeStorage {
    pub fn failing(errors: impl IntoIterator<Item = StorageError>) -> FakeStorage {
        FakeStorage {
            fail_next: Mutex::new(errors.into_iter().collect()),
            ..FakeStorage::default()
        }
    }

    /// Reads answer one series of `points` points; nothing else is scripted.
    pub fn with_points(points: usize) -> FakeStorage {
        FakeStorage {
            points_per_series: points,
            ..FakeStorage::default()
        }
    }

    /// Metric names of the reads so far, in the order they started.
    pub fn queried(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    pub fn points_written(&self) -> usize {
        self.written
            .lock()
            .unwrap()
            .iter()
            .map(WriteBatch::point_count)
            .sum()
    }
}

kairosdb_model::forward_service_store!(FakeStorage, this => this.null);

impl Storage for FakeStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        *self.attempts.lock().unwrap() += 1;
        if let Some(e) = self.fail_next.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.written.lock().unwrap().push(batch.clone());
        Ok(())
    }
    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        if query.work_limit.is_some()
            && (!self.reads_inline || self.heavy_metrics.contains(&query.metric.as_str()))
        {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Ok(Read::OverWorkLimit);
        }
        self.work_limits.lock().unwrap().push(query.work_limit);
        self.queries.lock().unwrap().push(query.metric.clone());
        let running = self.reads_running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_reads_running.fetch_max(running, Ordering::SeqCst);
        if let Some(hook) = &self.on_query {
            hook(query);
        }
        self.reads_running.fetch_sub(1, Ordering::SeqCst);
        self.reads_done.fetch_add(1, Ordering::SeqCst);
        if self.fail_metrics.contains(&query.metric.as_str()) {
            return Err(StorageError::Internal(format!(
                "disk on fire reading {}",
                query.metric
            )));
        }
        if self.points_per_series == 0 {
            return Ok(Read::Complete(Vec::new()));
        }
        let n = self.points_per_series as i64;
        let tags = Tags::from_pairs([("host", "a")]);
        if let Some(i) = self.nan_metrics.iter().position(|m| *m == query.metric) {
            let mut values: Vec<f64> = (1..=n).map(|v| v as f64).collect();
            values[i] = f64::NAN;
            let key = SeriesKey::new(query.metric.clone(), DataType::Double, tags);
            let ts = (1..=n).collect();
            let series = SeriesData::new(key, Points::Double { ts, values });
            return Ok(Read::Complete(vec![series]));
        }
        let series = SeriesData::new(
            SeriesKey::new(query.metric.clone(), DataType::Long, tags),
            Points::Long {
                ts: (1..=n).collect(),
                values: (1..=n).collect(),
            },
        );
        Ok(Read::Complete(vec![series]))
    }
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.null.series_keys(metric, filter, range)
    }
    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        Ok(["a.b", "c\"d"]
            .iter()
            .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
            .map(|n| n.to_string())
            .collect())
    }
    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        Err(StorageError::Internal("disk on fire".into()))
    }
    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        Ok(vec!["x".into()])
    }
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        self.null.delete(request)
    }
    /// Its index is complete: nothing to rebuild.
    fn index_metric_tags(&self, _metric: &str, _range: TimeRange) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.null.sync()
    }
    fn health(&self) -> HealthStatus {
        HealthStatus {
            ok: !self.unhealthy,
            detail: if self.unhealthy {
                "poisoned".into()
            } else {
                String::new()
            },
        }
    }
    fn stats(&self) -> StorageStats {
        StorageStats {
            counters: vec![("fake_writes_total", "Fake writes.", 3)],
            ..StorageStats::default()
        }
    }
}

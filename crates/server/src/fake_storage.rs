//! A scripted in-memory [`Storage`] for unit tests of the HTTP and telnet layers: it
//! records writes, can fail the next writes with given errors, and reports a set health.

use std::collections::VecDeque;
use std::sync::Mutex;

use kairosdb_model::{
    DeleteRequest, HealthStatus, SeriesData, SeriesKey, SeriesQuery, Storage, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};

#[derive(Default)]
pub struct FakeStorage {
    pub unhealthy: bool,
    /// Errors returned by the next writes, front first; afterwards writes succeed.
    pub fail_next: Mutex<VecDeque<StorageError>>,
    /// Write attempts, including failed ones.
    pub attempts: Mutex<usize>,
    /// Batches acknowledged.
    pub written: Mutex<Vec<WriteBatch>>,
}

impl FakeStorage {
    pub fn failing(errors: impl IntoIterator<Item = StorageError>) -> FakeStorage {
        FakeStorage {
            fail_next: Mutex::new(errors.into_iter().collect()),
            ..FakeStorage::default()
        }
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

impl Storage for FakeStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        *self.attempts.lock().unwrap() += 1;
        if let Some(e) = self.fail_next.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.written.lock().unwrap().push(batch.clone());
        Ok(())
    }
    fn query(&self, _: &SeriesQuery) -> Result<Vec<SeriesData>, StorageError> {
        Ok(Vec::new())
    }
    fn series_keys(
        &self,
        _: &str,
        _: &TagFilter,
        _: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Ok(Vec::new())
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
    fn delete(&self, _: &DeleteRequest) -> Result<u64, StorageError> {
        Ok(0)
    }
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
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
            gauges: vec![],
        }
    }
}

//! [`NullStorage`]: the one do-nothing [`Storage`] test double (cargo feature
//! `test-suite`). Tests that need a store but not its data use it as it is; a double
//! that only answers reads its own way (fixed series, a query log) is a [`Reader`] inside
//! one ([`NullStorage::reading`]); a double with more behaviour of its own (failing on
//! purpose) keeps a `NullStorage` field and hands it the methods it does not care about.
//!
//! Not a backend: it holds no points, so nothing written can be read back.

use std::sync::Mutex;

use crate::batch::WriteBatch;
use crate::read::{DeleteRequest, Read, SeriesQuery, TagFilter, TimeRange};
use crate::series::SeriesKey;
use crate::storage::{HealthStatus, Storage, StorageError, StorageStats};

/// Accepts every write and stores nothing: reads (unless a [`Reader`] answers them),
/// listings and deletes find nothing, `sync` succeeds, it is always healthy and exports
/// no figures. Made [`recording`](NullStorage::recording), it also keeps every batch
/// written to it, in order. Derefs to its reader.
#[derive(Debug, Default)]
pub struct NullStorage<R: Reader = NoSeries> {
    reader: R,
    /// `Some` when recording.
    written: Option<Mutex<Vec<WriteBatch>>>,
}

/// What answers a [`NullStorage`]'s `query`.
pub trait Reader: Send + Sync + 'static {
    fn read(&self, query: &SeriesQuery) -> Result<Read, StorageError>;

    /// [`Storage::folds_counts`] of the storage reading through this.
    fn folds_counts(&self) -> bool {
        false
    }
}

/// The reader that finds nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSeries;

impl Reader for NoSeries {
    fn read(&self, _: &SeriesQuery) -> Result<Read, StorageError> {
        Ok(Read::Complete(Vec::new()))
    }
}

impl NullStorage {
    /// A store that keeps nothing, not even the batches written to it.
    pub fn new() -> NullStorage {
        NullStorage::default()
    }
}

impl<R: Reader> NullStorage<R> {
    /// A store whose reads `reader` answers.
    pub fn reading(reader: R) -> NullStorage<R> {
        NullStorage {
            reader,
            written: None,
        }
    }

    /// The reader, taken out of the store.
    pub fn into_reader(self) -> R {
        self.reader
    }

    /// The same store, keeping every batch written to it (see [`NullStorage::written`]).
    pub fn recording(self) -> NullStorage<R> {
        NullStorage {
            written: Some(Mutex::new(Vec::new())),
            ..self
        }
    }

    /// The batches written so far, in order; empty unless made with
    /// [`NullStorage::recording`].
    pub fn written(&self) -> Vec<WriteBatch> {
        match &self.written {
            Some(w) => w.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Points in the batches written so far (0 unless recording).
    pub fn points_written(&self) -> usize {
        self.written().iter().map(WriteBatch::point_count).sum()
    }
}

impl<R: Reader> std::ops::Deref for NullStorage<R> {
    type Target = R;

    fn deref(&self) -> &R {
        &self.reader
    }
}

impl<R: Reader> Storage for NullStorage<R> {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        if let Some(w) = &self.written {
            w.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(batch.clone());
        }
        Ok(())
    }

    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.reader.read(query)
    }

    fn series_keys(
        &self,
        _: &str,
        _: &TagFilter,
        _: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Ok(Vec::new())
    }

    fn metric_names(&self, _: Option<&str>) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn delete(&self, _: &DeleteRequest) -> Result<u64, StorageError> {
        Ok(0)
    }

    /// Its index is complete: nothing to rebuild.
    fn index_metric_tags(&self, _metric: &str, _range: TimeRange) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn health(&self) -> HealthStatus {
        HealthStatus {
            ok: true,
            detail: String::new(),
        }
    }

    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }

    fn folds_counts(&self) -> bool {
        self.reader.folds_counts()
    }
}

/// Metadata is not kept either: sets and deletes succeed, reads find nothing.
impl<R: Reader> crate::services::ServiceStore for NullStorage<R> {
    fn set_value(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), StorageError> {
        Ok(())
    }

    fn get_value(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    fn list_service_keys(&self, _: &str) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn list_keys(&self, _: &str, _: &str, _: Option<&str>) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn delete_key(&self, _: &str, _: &str, _: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Points, SeriesPoints};
    use crate::read::SeriesQuery;
    use crate::series::{DataType, Tags};

    fn batch(n: i64) -> WriteBatch {
        WriteBatch {
            series: vec![SeriesPoints {
                key: SeriesKey::new("m", DataType::Long, Tags::new()),
                ttl_secs: 0,
                points: Points::Long {
                    ts: (0..n).collect(),
                    values: (0..n).collect(),
                },
            }],
        }
    }

    fn assert_empty(s: &NullStorage) {
        let q = SeriesQuery::new("m", TagFilter::default(), TimeRange::ALL);
        assert_eq!(s.query(&q).unwrap().expect_complete(), Vec::new());
        let keys = s.series_keys("m", &TagFilter::default(), TimeRange::ALL);
        assert_eq!(keys.unwrap(), Vec::new());
        assert_eq!(s.metric_names(None).unwrap(), Vec::<String>::new());
        assert_eq!(s.tag_names().unwrap(), Vec::<String>::new());
        assert_eq!(s.tag_values().unwrap(), Vec::<String>::new());
        let del = DeleteRequest {
            metric: "m".into(),
            filter: TagFilter::default(),
            range: TimeRange::ALL,
            shard: None,
            exact: false,
        };
        assert_eq!(s.delete(&del).unwrap(), 0);
        assert!(s.sync().is_ok());
        assert_eq!(
            s.health(),
            HealthStatus {
                ok: true,
                detail: String::new()
            }
        );
        let stats = s.stats();
        assert!(stats.counters.is_empty() && stats.gauges.is_empty());
    }

    #[test]
    fn accepts_writes_and_finds_nothing() {
        let s = NullStorage::new();
        s.write(&batch(3)).unwrap();
        assert_empty(&s);
        assert_eq!(s.written(), Vec::new(), "not recording");
        assert_eq!(s.points_written(), 0);
    }

    #[test]
    fn recording_keeps_the_batches_in_order() {
        let s = NullStorage::new().recording();
        s.write(&batch(2)).unwrap();
        s.write(&batch(1)).unwrap();
        assert_empty(&s);
        assert_eq!(s.written(), vec![batch(2), batch(1)]);
        assert_eq!(s.points_written(), 3);
    }
}

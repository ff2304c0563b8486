//! Every write the server makes, seen once: [`Watched`] wraps the one storage all
//! listeners, the roll-up scheduler and the self-metrics reporter write through
//! (`main.rs`), and after storage has stored a write or a delete it
//!
//! * bumps the Redis cache's generations of the metrics touched (`redis_cache.rs`), so a
//!   cached answer over them is never served again, whichever API wrote;
//! * hands the batch to [`Watch::subscribe`]rs (the telemetry API's live tail), when there
//!   are any: a point written through the KairosDB API or telnet is streamed as a record
//!   too.
//!
//! Not here: what a stream or the cache does with what it is told.

use std::sync::Arc;

use kairosdb_model::{
    DeleteRequest, HealthStatus, Read, SeriesKey, SeriesQuery, ServiceStore, Storage, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};
use tokio::sync::broadcast;

use crate::redis_cache::{self, RedisCache};

/// Batches a slow stream client may fall behind by before it is told it missed some.
const CAPACITY: usize = 1024;

/// Where the writes go after storage.
pub struct Watch {
    cache: Option<Arc<RedisCache>>,
    writes: broadcast::Sender<Arc<WriteBatch>>,
}

impl Watch {
    pub fn new(cache: Option<Arc<RedisCache>>) -> Arc<Watch> {
        Arc::new(Watch {
            cache,
            writes: broadcast::channel(CAPACITY).0,
        })
    }

    /// Every batch stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WriteBatch>> {
        self.writes.subscribe()
    }

    pub fn cache(&self) -> Option<&Arc<RedisCache>> {
        self.cache.as_ref()
    }

    fn written(&self, batch: &WriteBatch) {
        self.bump(batch);
        // A copy only for a listener.
        if self.writes.receiver_count() > 0 {
            let _ = self.writes.send(Arc::new(batch.clone()));
        }
    }

    /// The cache's bumps of `batch`'s metrics (and of any name new to this process); a
    /// backfill gets only these (a copy is not new data for the streams).
    fn bump(&self, batch: &WriteBatch) {
        if let Some(cache) = &self.cache {
            let series = &batch.series;
            cache.bump(
                series.iter().map(|s| s.key.metric.as_str()),
                series
                    .iter()
                    .flat_map(|s| s.key.tags.iter().map(|(k, _)| k)),
            );
        }
    }

    fn deleted(&self, metric: &str) {
        if let Some(cache) = &self.cache {
            cache.bump([metric], []);
            cache.bump_keys([redis_cache::deleted(metric)]);
        }
    }

    fn metadata_changed(&self, service: &str) {
        if let Some(cache) = self.cache.as_ref().filter(|_| service == "telemetry") {
            cache.bump_keys([redis_cache::META.to_owned()]);
        }
    }
}

/// A storage whose writes and deletes are told to a [`Watch`] once stored.
pub struct Watched {
    inner: Arc<dyn Storage>,
    watch: Arc<Watch>,
}

impl Watched {
    pub fn new(inner: Arc<dyn Storage>, watch: Arc<Watch>) -> Arc<Watched> {
        Arc::new(Watched { inner, watch })
    }
}

impl ServiceStore for Watched {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        let result = self.inner.set_value(service, service_key, key, value);
        self.watch.metadata_changed(service);
        result
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.inner.get_value(service, service_key, key)
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list_service_keys(service)
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.inner.list_keys(service, service_key, prefix)
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        let result = self.inner.delete_key(service, service_key, key);
        self.watch.metadata_changed(service);
        result
    }
}

impl Storage for Watched {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.inner.write(batch)?;
        self.watch.written(batch);
        Ok(())
    }

    /// A partition copy (cluster moves): what it stored changes answers, so the metrics are
    /// bumped; it is not new data, so streams are not told.
    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.inner.backfill(batch)?;
        self.watch.bump(batch);
        Ok(())
    }

    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.inner.query(query)
    }

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.inner.series_keys(metric, filter, range)
    }

    fn series_keys_now(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Option<Result<Vec<SeriesKey>, StorageError>> {
        self.inner.series_keys_now(metric, filter, range)
    }

    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.inner.metric_names(prefix)
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.inner.tag_names()
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.inner.tag_values()
    }

    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        let result = self.inner.delete(request);
        // Also after a failed delete: some series may be gone.
        self.watch.deleted(&request.metric);
        result
    }

    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        self.inner.index_metric_tags(metric, range)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }

    fn health(&self) -> HealthStatus {
        self.inner.health()
    }

    fn stats(&self) -> StorageStats {
        self.inner.stats()
    }

    fn folds_counts(&self) -> bool {
        self.inner.folds_counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::{DataType, Points, SeriesPoints, Tags};

    fn batch(metric: &str) -> WriteBatch {
        WriteBatch {
            series: vec![SeriesPoints {
                key: SeriesKey::new(metric, DataType::Long, Tags::default()),
                ttl_secs: 0,
                points: Points::Long {
                    ts: vec![1],
                    values: vec![1],
                },
            }],
        }
    }

    #[test]
    fn a_stored_batch_reaches_every_subscriber_and_a_failed_one_none() {
        let inner = Arc::new(crate::fake_storage::FakeStorage::failing([
            StorageError::InsufficientStorage("disk full".into()),
        ]));
        let watch = Watch::new(None);
        let storage = Watched::new(inner.clone(), watch.clone());
        let mut rx = watch.subscribe();
        assert!(storage.write(&batch("refused")).is_err());
        storage.write(&batch("a")).unwrap();
        let told = rx.try_recv().unwrap();
        assert_eq!(
            told.series[0].key.metric, "a",
            "the refused write is not told"
        );
        assert!(rx.try_recv().is_err());
    }

    struct Counting;
    impl kairosdb_model::Reader for Counting {
        fn read(&self, _: &SeriesQuery) -> Result<Read, StorageError> {
            Ok(Read::Complete(Vec::new()))
        }
        fn folds_counts(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_backfill_reaches_the_inner_storage_and_no_stream() {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            kairosdb_engine::Engine::open(kairosdb_engine::EngineConfig::new(dir.path())).unwrap();
        let watch = Watch::new(None);
        let storage = Watched::new(Arc::new(engine), watch.clone());
        let mut rx = watch.subscribe();
        storage.backfill(&batch("copied")).unwrap();
        assert!(rx.try_recv().is_err(), "a copy is not new data");
        let read = storage
            .query(&SeriesQuery::new(
                "copied",
                TagFilter::default(),
                TimeRange::new(0, 10),
            ))
            .unwrap();
        assert_eq!(read.expect_complete()[0].points.len(), 1);
    }

    #[test]
    fn the_wrapper_keeps_what_the_inner_storage_says_about_count_folds() {
        let inner = Arc::new(kairosdb_model::NullStorage::reading(Counting));
        assert!(Watched::new(inner, Watch::new(None)).folds_counts());
    }
}

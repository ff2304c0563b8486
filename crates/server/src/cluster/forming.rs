//! A control node's storage before and after the cluster has decided where partitions live:
//! until then every call answers 503 "the cluster is forming" (and `/health/ready` says
//! not ready); once the placement is in the Raft state, the `ClusterStorage` over its
//! workers answers everything.

use std::sync::{Arc, Mutex, OnceLock};

use kairosdb_cluster::ClusterStorage;
use kairosdb_model::{
    DeleteRequest, HealthStatus, Read, SeriesKey, SeriesQuery, ServiceStore, Storage, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};

/// How the answer of a control node whose cluster is not placed yet starts.
pub const FORMING: &str = "the cluster is forming";

/// The cluster, once placed.
#[derive(Default)]
pub struct Forming {
    cluster: OnceLock<Arc<ClusterStorage>>,
    /// The partition move this node drives, if any (`moves.rs`).
    pub mover: Arc<super::moves::Mover>,
    /// What the cluster is waiting for, for the 503 and the health detail.
    waiting_for: Mutex<String>,
}

impl Forming {
    pub fn waiting(&self, why: String) {
        *self.waiting_for.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// The cluster is placed: route to it from now on.
    pub fn formed(&self, cluster: ClusterStorage) {
        if self.cluster.set(Arc::new(cluster)).is_err() {
            tracing::warn!("BUG: the cluster was placed twice; the first placement stays");
        }
    }

    /// The cluster, once placed.
    pub fn shared(&self) -> Option<Arc<ClusterStorage>> {
        self.cluster.get().cloned()
    }

    /// The cluster, or 503 while it is forming.
    pub fn cluster(&self) -> Result<&ClusterStorage, StorageError> {
        self.cluster
            .get()
            .map(|c| &**c)
            .ok_or_else(|| StorageError::Unavailable {
                message: format!(
                    "{FORMING}: {}",
                    self.waiting_for.lock().unwrap_or_else(|e| e.into_inner())
                ),
                retry_after_secs: 1,
            })
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.cluster.get().map_or(Ok(()), |c| c.close())
    }
}

impl Storage for Forming {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.cluster()?.write(batch)
    }

    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.cluster()?.backfill(batch)
    }

    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.cluster()?.query(query)
    }

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.cluster()?.series_keys(metric, filter, range)
    }

    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.cluster()?.metric_names(prefix)
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.cluster()?.tag_names()
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.cluster()?.tag_values()
    }

    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        self.cluster()?.delete(request)
    }

    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        self.cluster()?.index_metric_tags(metric, range)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.cluster.get().map_or(Ok(()), |c| c.sync())
    }

    fn health(&self) -> HealthStatus {
        match self.cluster() {
            Ok(c) => c.health(),
            Err(e) => HealthStatus {
                ok: false,
                detail: e.to_string(),
            },
        }
    }

    fn stats(&self) -> StorageStats {
        self.cluster.get().map(|c| c.stats()).unwrap_or_default()
    }

    fn folds_counts(&self) -> bool {
        self.cluster.get().is_some_and(|c| c.folds_counts())
    }
}

impl ServiceStore for Forming {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.cluster()?.set_value(service, service_key, key, value)
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.cluster()?.get_value(service, service_key, key)
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.cluster()?.list_service_keys(service)
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.cluster()?.list_keys(service, service_key, starts_with)
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.cluster()?.delete_key(service, service_key, key)
    }
}

//! Hinted hand-off: what a replica missed is kept on the control node, in the durable
//! delivery queue of the Cassandra mode (`kairosdb_engine::DeliveryQueue`), whose inner
//! store is the worker itself ([`RemoteWorker`]). The queue's deliverer retries with
//! backoff (at most 30 s apart) until the worker takes each batch, in order, so a worker
//! that comes back catches up by itself, from every control node that wrote while it was
//! away. Re-delivery is harmless: the same points overwrite themselves.
//!
//! Not here: deciding what to hint (`router.rs`).

use std::sync::Arc;

use kairosdb_model::{
    DeleteRequest, HealthStatus, Read, SeriesKey, SeriesQuery, Storage, StorageError, StorageStats,
    TagFilter, TimeRange, WriteBatch,
};

use crate::client::WorkerClient;
use crate::wire;

/// One worker as the inner store of its hint queue: only `write` is used.
pub struct RemoteWorker {
    client: Arc<WorkerClient>,
    runtime: tokio::runtime::Handle,
}

impl RemoteWorker {
    pub fn new(client: Arc<WorkerClient>, runtime: tokio::runtime::Handle) -> RemoteWorker {
        RemoteWorker { client, runtime }
    }

    fn unused(&self) -> StorageError {
        StorageError::Internal(format!(
            "BUG: a hint queue for {} read through",
            self.client.address
        ))
    }
}

impl Storage for RemoteWorker {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let body = wire::encode_write(batch);
        self.runtime
            .block_on(self.client.write(body.into(), 0))
            .map_err(|e| e.into_storage_error())
    }

    fn query(&self, _: &SeriesQuery) -> Result<Read, StorageError> {
        Err(self.unused())
    }

    fn series_keys(
        &self,
        _: &str,
        _: &TagFilter,
        _: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Err(self.unused())
    }

    fn metric_names(&self, _: Option<&str>) -> Result<Vec<String>, StorageError> {
        Err(self.unused())
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        Err(self.unused())
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        Err(self.unused())
    }

    fn delete(&self, _: &DeleteRequest) -> Result<u64, StorageError> {
        Err(self.unused())
    }

    fn index_metric_tags(&self, _: &str, _: TimeRange) -> Result<u64, StorageError> {
        Err(self.unused())
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn health(&self) -> HealthStatus {
        HealthStatus {
            ok: true,
            detail: format!("worker {}", self.client.address),
        }
    }

    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}

/// Metadata never goes through a hint queue.
impl kairosdb_model::ServiceStore for RemoteWorker {
    fn set_value(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), StorageError> {
        Err(self.unused())
    }

    fn get_value(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, StorageError> {
        Err(self.unused())
    }

    fn list_service_keys(&self, _: &str) -> Result<Vec<String>, StorageError> {
        Err(self.unused())
    }

    fn list_keys(&self, _: &str, _: &str, _: Option<&str>) -> Result<Vec<String>, StorageError> {
        Err(self.unused())
    }

    fn delete_key(&self, _: &str, _: &str, _: &str) -> Result<(), StorageError> {
        Err(self.unused())
    }
}

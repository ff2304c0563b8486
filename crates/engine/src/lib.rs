//! The embedded storage engine. TODO(helper): implement.
//!
//! Public surface (fixed; the server codes against it):
//! [`EngineConfig`], [`WalSync`], [`Engine::open`], [`Engine::close`], and
//! `impl kairosdb_model::Storage for Engine`.

use std::path::PathBuf;
use std::time::Duration;

use kairosdb_model::{
    DeleteRequest, HealthStatus, SeriesData, SeriesKey, SeriesQuery, Storage, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};

/// When the WAL is fsynced relative to acknowledging a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSync {
    /// fsync before `write` returns.
    Always,
    /// Group fsync at least every given interval (default 1 s).
    Interval(Duration),
    /// Never fsync explicitly (the OS decides).
    None,
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub wal_sync: WalSync,
    /// Upper bound for in-memory head data; above it writes get `Backpressure`.
    pub max_head_bytes: u64,
    /// TTL applied to points written with ttl 0; 0 = keep forever.
    pub default_ttl_secs: u32,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            wal_sync: WalSync::Interval(Duration::from_secs(1)),
            max_head_bytes: 1 << 30,
            default_ttl_secs: 0,
        }
    }
}

pub struct Engine {}

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine, StorageError> {
        let _ = config;
        Ok(Engine {})
    }

    /// Seals/flushes what is needed, syncs the WAL and stops background work.
    pub fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Storage for Engine {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let _ = batch;
        Err(StorageError::Internal("not implemented".into()))
    }
    fn query(&self, query: &SeriesQuery) -> Result<Vec<SeriesData>, StorageError> {
        let _ = query;
        Ok(Vec::new())
    }
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        let _ = (metric, filter, range);
        Ok(Vec::new())
    }
    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        let _ = prefix;
        Ok(Vec::new())
    }
    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        let _ = request;
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
}

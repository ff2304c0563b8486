//! The storage seam: one narrow trait implemented by every backend (embedded
//! engine, Cassandra, cluster client). Grow the request structs, not the method list.
//!
//! Methods are synchronous; async servers call them from `spawn_blocking`, or on their
//! worker for a read bounded by `SeriesQuery::work_limit` (which answers
//! `Read::OverWorkLimit` instead of doing more work).

use crate::batch::WriteBatch;
pub use crate::metrics::StorageStats;
use crate::read::{DeleteRequest, Read, SeriesQuery, TagFilter, TimeRange};
use crate::series::SeriesKey;
use crate::services::ServiceStore;

/// Errors shaped by what the caller does next.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    /// The request itself is unacceptable (caller answers 400).
    #[error("{0}")]
    InvalidInput(String),
    /// Temporarily over capacity; nothing was written. Retry after the given seconds (HTTP 503).
    #[error("storage is over its memory limit; retry in {retry_after_secs} s")]
    Backpressure { retry_after_secs: u32 },
    /// A previous WAL write or fsync failed; the store refuses writes until restarted.
    #[error("storage is poisoned after an earlier write failure: {0}")]
    Poisoned(String),
    /// On-disk data failed a checksum or could not be decoded.
    #[error("corrupt data: {0}")]
    Corruption(String),
    /// A read matched more points than its `max_points` (HTTP 400 with KairosDB's text).
    #[error("Query exceeded limit of {limit} data points")]
    TooManyPoints { limit: u64 },
    /// The store's disk is nearly full: writes are refused until space is freed (caller
    /// answers 507; nothing was written).
    #[error("{0}")]
    InsufficientStorage(String),
    /// The store is shutting down.
    #[error("storage is closed")]
    Closed,
    /// Not enough of a cluster answered (too few replicas stored a write, a delete could
    /// not reach every worker); nothing is wrong with the request. Retry after the given
    /// seconds (HTTP 503).
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u32,
    },
    /// The store does not do what was asked: an optional operation it has no way to do
    /// (a [`Storage::backfill`] on Cassandra). Nothing was written; asking again does not
    /// help (HTTP 501).
    #[error("{0}")]
    Unsupported(String),
    /// I/O or backend failure (caller answers 500).
    #[error("{0}")]
    Internal(String),
}

/// Health of a backend for `/health/ready` and `/api/v1/health/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthStatus {
    pub ok: bool,
    pub detail: String,
}

/// Also the metadata store ([`ServiceStore`], see `services.rs` for why it is a
/// supertrait rather than more methods here).
pub trait Storage: ServiceStore + Send + Sync + 'static {
    /// Durably writes a batch (see the backend's acknowledgement semantics).
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError>;

    /// Writes only the points of `batch` whose series and timestamp hold no point yet, and
    /// leaves every stored point as it is. A cluster copying a partition onto a new worker
    /// writes so (`kairosdb_cluster::moves`): the copy of an old value must not replace a
    /// newer one that reached the worker first. A point whose TTL has passed counts as
    /// absent; among the batch's own points at one timestamp the last wins, as in
    /// [`Storage::write`], and so do TTLs and durability.
    ///
    /// Decided point by point atomically with ordinary writes: a write racing a backfill
    /// either lands first, and the backfill keeps it, or lands after, and replaces the
    /// backfilled point as it would any other; after a restart the store shows the same.
    ///
    /// A separate method, not a flag on [`WriteBatch`]: a store that does not know it
    /// refuses by default ([`StorageError::Unsupported`], nothing written) instead of
    /// silently overwriting, and so does every wrapper that forgets to pass it on.
    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let _ = batch;
        Err(StorageError::Unsupported(
            "this storage cannot backfill (store only the points that are absent)".into(),
        ))
    }

    /// Reads the series of one metric that match the filter, or stops at the query's
    /// `work_limit` with [`Read::OverWorkLimit`].
    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError>;

    /// Series keys of `metric` matching `filter` that have data overlapping `range`, in
    /// no particular order (answered from the index where possible; used by
    /// `/datapoints/query/tags`, which takes the union of their tags).
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError>;

    /// [`Storage::series_keys`] when this storage answers it without waiting on I/O (an
    /// index in memory), so a caller on an async worker may call it in place; `None`
    /// (the default: a backend over the network) asks for `series_keys` where blocking
    /// is fine. When it answers, the answer is `series_keys`'.
    fn series_keys_now(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Option<Result<Vec<SeriesKey>, StorageError>> {
        let _ = (metric, filter, range);
        None
    }

    /// Metric names, sorted, optionally only those starting with `prefix`.
    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError>;

    /// All tag names across all series, sorted.
    fn tag_names(&self) -> Result<Vec<String>, StorageError>;

    /// All tag values across all series, sorted.
    fn tag_values(&self) -> Result<Vec<String>, StorageError>;

    /// Deletes points; returns how many series were touched.
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError>;

    /// Rebuilds the tag index entries of `metric`'s stored series in `range`
    /// (`GET /api/v1/datapoints/index`, KairosDB's `Datastore.indexMetricTags`): on
    /// Cassandra, the `tag_indexed_row_keys` rows of row keys written before the metric
    /// was tag-indexed. Stores whose index is always complete do nothing. Returns how many
    /// series (row keys) were indexed.
    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError>;

    /// Makes everything acknowledged so far durable (fsync). Used at shutdown and by tests.
    fn sync(&self) -> Result<(), StorageError>;

    /// Is the backend able to serve reads and writes right now?
    fn health(&self) -> HealthStatus;

    /// Figures for `/metrics`.
    fn stats(&self) -> StorageStats;

    /// Whether reads always follow a [`crate::Fold`] of [`crate::FoldKeep::Count`]: each
    /// numeric series comes back as one point a bucket holding its count (a cluster's
    /// workers count where the points are). Unlike the other folds this one changes the
    /// answer, so it is asked for only where this says yes.
    fn folds_counts(&self) -> bool {
        false
    }
}

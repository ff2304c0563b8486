//! The data model every kairosdb-rs crate speaks, and the one storage seam.
//!
//! * [`series`]: data types, values, tags and the canonical [`SeriesKey`].
//! * [`batch`]: [`WriteBatch`], the columnar unit of ingest handed to storage.
//! * [`read`]: [`SeriesQuery`] (what to read) and [`Read`] of [`SeriesData`] (what comes
//!   back).
//! * [`partition`]: cluster mode's series placement ([`partition_of`]), a read limited
//!   to some partitions ([`Shard`]) and how much of a cluster answered ([`Coverage`]).
//! * [`request`] / [`result`]: a parsed query request and its result groups.
//! * [`catalogue`]: what each aggregator and group-by is (one table), and the typed
//!   specs a parsed query carries.
//! * [`storage`]: the [`Storage`] trait that the embedded engine, Cassandra and
//!   (later) the cluster client implement, so HTTP/telnet/query code is identical
//!   in every mode.
//! * [`services`]: the metadata store ([`ServiceStore`], KairosDB's `ServiceKeyStore`),
//!   a supertrait of `Storage`.
//! * [`metrics`]: a component's counters and gauges declared once ([`metrics!`]), and
//!   the [`StorageStats`] and [`Sample`]s generated from them for `/metrics`.
//! * `suite` (feature `test-suite`): the cases every `Storage` backend must pass.
//! * `null_storage` (feature `test-suite`): `NullStorage`, the do-nothing `Storage` test
//!   double.
//!
//! This crate does no I/O and holds no state.

pub mod batch;
pub mod catalogue;
pub mod metrics;
/// The do-nothing storage test double (cargo feature `test-suite`).
#[cfg(feature = "test-suite")]
pub mod null_storage;
pub mod partition;
pub mod read;
pub mod request;
pub mod result;
pub mod series;
pub mod services;
pub mod storage;
/// The backend conformance suite (cargo feature `test-suite`).
#[cfg(feature = "test-suite")]
pub mod suite;

pub use batch::{BatchBuilder, Points, SeriesPoints, WriteBatch};
pub use metrics::{Gauge, Kind, Sample};
#[cfg(feature = "test-suite")]
pub use null_storage::{NoSeries, NullStorage, Reader};
pub use partition::{partition_of, Coverage, Shard};
pub use read::{
    DeleteRequest, Fold, FoldKeep, Order, Read, SeriesData, SeriesQuery, TagFilter, TagMatcher,
    TimeRange,
};
pub use request::{MetricQuery, QueryRequest, TimeUnit};
pub use result::{GroupByResult, GroupTags, Num, OutColumn, QueryResult, ResultGroup};
pub use series::{DataType, GroupType, SeriesKey, Tags, Value};
pub use services::{ServiceMap, ServiceStore};
pub use storage::{HealthStatus, Storage, StorageError, StorageStats};

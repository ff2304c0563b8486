//! The seam between the store's logic and a CQL connection: the handful of
//! statements KairosDB's schema needs, as typed calls. [`crate::store`] decides
//! *what* to read and write (row keys, bounds, caches, index upkeep); a
//! [`Session`] runs it. Two implementations:
//!
//! * `ScyllaSession` (`driver.rs`, cargo feature `driver`): prepared statements
//!   of [`crate::Cql`] on the `scylla` driver, against a real cluster.
//! * [`crate::memory::MemorySession`] (tests): the same tables in memory with
//!   Cassandra's cell semantics (write timestamps, tombstones, TTL), so the whole
//!   store runs the storage suite in CI, where no Cassandra can run.
//!
//! Calls are synchronous, like [`kairosdb_model::Storage`]; a driver-backed
//! session runs its own async runtime and issues the reads of one call
//! concurrently (`simultaneous_cql_queries`).

use kairosdb_model::Tags;

/// A failure talking to the cluster. `unavailable` errors (no connection, node
/// down, timeout) are retried by the delivery queue; the rest are reported.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CqlError {
    pub message: String,
    /// The cluster could not be reached or did not answer in time.
    pub unavailable: bool,
}

impl CqlError {
    pub fn unavailable(message: impl Into<String>) -> CqlError {
        CqlError {
            message: message.into(),
            unavailable: true,
        }
    }

    pub fn failed(message: impl Into<String>) -> CqlError {
        CqlError {
            message: message.into(),
            unavailable: false,
        }
    }
}

/// One write or delete, each stamped with an explicit write time in
/// **milliseconds** (`timestamp_ms`), as KairosDB 1.3.0-1 stamps every statement:
/// its `CassandraClientImpl` gives the driver a timestamp generator returning
/// `System.currentTimeMillis()`, so its data points, index rows and deletes all
/// carry millisecond write times (not the microseconds spec §14.10 assumes).
/// Sharing that clock is what lets either server's deletes remove the other's
/// rows, and either server's later writes survive the other's tombstones. The
/// store takes the stamps from one strictly increasing clock (see `store.rs`).
///
/// The CQL text is KairosDB's with `USING TIMESTAMP ?` added (or `AND TIMESTAMP ?`
/// after its `USING TTL ?`), where KairosDB leaves the stamp to its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// `INSERT INTO data_points … USING TTL ? AND TIMESTAMP ?`
    DataPoint {
        key: Vec<u8>,
        column: u32,
        value: Vec<u8>,
        ttl: u32,
        timestamp_ms: i64,
    },
    /// `INSERT INTO row_keys … USING TTL ? AND TIMESTAMP ?` (`mtime` = `now()`).
    RowKey {
        metric: String,
        row_time: i64,
        data_type: String,
        tags: Tags,
        ttl: u32,
        timestamp_ms: i64,
    },
    /// `INSERT INTO tag_indexed_row_keys … USING TTL ? AND TIMESTAMP ?` (`mtime` =
    /// `now()`): one row per indexed tag of a row key, for metrics configured for
    /// tag-indexed lookup (`tag_indexed_row_key_lookup_metrics`, spec §7.4, §8.5).
    TagIndexedRowKey {
        metric: String,
        row_time: i64,
        data_type: String,
        single_tag_pair: String,
        tag_collection_hash: i32,
        tags: Tags,
        ttl: u32,
        timestamp_ms: i64,
    },
    /// `INSERT INTO row_key_time_index … USING TTL ? AND TIMESTAMP ?`
    RowKeyTime {
        metric: String,
        row_time: i64,
        ttl: u32,
        timestamp_ms: i64,
    },
    /// `INSERT INTO string_index (key, column1, value) VALUES (?, ?, 0x00) USING TIMESTAMP ?`
    StringIndex {
        key: &'static [u8],
        name: String,
        timestamp_ms: i64,
    },
    /// `DELETE FROM data_points USING TIMESTAMP ? WHERE key = ?`
    DeleteRow { key: Vec<u8>, timestamp_ms: i64 },
    /// `DELETE FROM data_points USING TIMESTAMP ? WHERE key = ? AND column1 >= ? AND column1 <= ?`
    DeleteColumns {
        key: Vec<u8>,
        first: u32,
        last: u32,
        timestamp_ms: i64,
    },
    /// `DELETE FROM row_keys USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND tags = ?`
    DeleteRowKey {
        metric: String,
        row_time: i64,
        data_type: String,
        tags: Tags,
        timestamp_ms: i64,
    },
    /// `DELETE FROM tag_indexed_row_keys USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND single_tag_pair = ? AND tag_collection_hash = ? AND tags = ?`
    DeleteTagIndexedRowKey {
        metric: String,
        row_time: i64,
        data_type: String,
        single_tag_pair: String,
        tag_collection_hash: i32,
        tags: Tags,
        timestamp_ms: i64,
    },
    /// `DELETE FROM row_key_time_index USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ?`
    DeleteRowKeyTime {
        metric: String,
        row_time: i64,
        timestamp_ms: i64,
    },
    /// `DELETE FROM row_key_index USING TIMESTAMP ? WHERE KEY = ? AND column1 = ?` (legacy index).
    DeleteRowKeyIndexEntry {
        metric: String,
        row_key: Vec<u8>,
        timestamp_ms: i64,
    },
    /// `DELETE FROM string_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?`
    DeleteStringIndex {
        key: &'static [u8],
        name: String,
        timestamp_ms: i64,
    },
    /// `INSERT INTO service_index (service, service_key, key, value, mtime) VALUES (?, ?, ?, ?, now()) USING TIMESTAMP ?`
    ServiceValue {
        service: String,
        service_key: String,
        key: String,
        value: String,
        timestamp_ms: i64,
    },
    /// `DELETE FROM service_index USING TIMESTAMP ? WHERE service = ? AND service_key = ? AND key = ?`
    DeleteServiceValue {
        service: String,
        service_key: String,
        key: String,
        timestamp_ms: i64,
    },
    /// `INSERT INTO service_index (service, service_key, mtime) VALUES (?, ?, now()) USING TIMESTAMP ?`:
    /// the static modification marker KairosDB writes after a delete.
    ServiceKeyModified {
        service: String,
        service_key: String,
        timestamp_ms: i64,
    },
}

impl Mutation {
    /// The write time (ms) the statement carries.
    pub fn timestamp_ms(&self) -> i64 {
        match self {
            Mutation::DataPoint { timestamp_ms, .. }
            | Mutation::RowKey { timestamp_ms, .. }
            | Mutation::TagIndexedRowKey { timestamp_ms, .. }
            | Mutation::RowKeyTime { timestamp_ms, .. }
            | Mutation::StringIndex { timestamp_ms, .. }
            | Mutation::DeleteRow { timestamp_ms, .. }
            | Mutation::DeleteColumns { timestamp_ms, .. }
            | Mutation::DeleteRowKey { timestamp_ms, .. }
            | Mutation::DeleteTagIndexedRowKey { timestamp_ms, .. }
            | Mutation::DeleteRowKeyTime { timestamp_ms, .. }
            | Mutation::DeleteRowKeyIndexEntry { timestamp_ms, .. }
            | Mutation::DeleteStringIndex { timestamp_ms, .. }
            | Mutation::ServiceValue { timestamp_ms, .. }
            | Mutation::DeleteServiceValue { timestamp_ms, .. }
            | Mutation::ServiceKeyModified { timestamp_ms, .. } => *timestamp_ms,
        }
    }

    /// Is this a `data_points` insert (grouped per replica by the driver)?
    pub fn is_data_point(&self) -> bool {
        matches!(self, Mutation::DataPoint { .. })
    }

    /// Is this a `service_index` statement (the metadata API)?
    pub fn is_service_index(&self) -> bool {
        matches!(
            self,
            Mutation::ServiceValue { .. }
                | Mutation::DeleteServiceValue { .. }
                | Mutation::ServiceKeyModified { .. }
        )
    }

    /// Estimated bytes of the statement's values, for sizing batches.
    pub fn approx_bytes(&self) -> usize {
        let tags = |t: &Tags| t.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>();
        16 + match self {
            Mutation::DataPoint { key, value, .. } => key.len() + value.len() + 16,
            Mutation::RowKey {
                metric,
                data_type,
                tags: t,
                ..
            }
            | Mutation::DeleteRowKey {
                metric,
                data_type,
                tags: t,
                ..
            } => metric.len() + data_type.len() + tags(t) + 32,
            Mutation::TagIndexedRowKey {
                metric,
                data_type,
                single_tag_pair,
                tags: t,
                ..
            }
            | Mutation::DeleteTagIndexedRowKey {
                metric,
                data_type,
                single_tag_pair,
                tags: t,
                ..
            } => metric.len() + data_type.len() + single_tag_pair.len() + tags(t) + 40,
            Mutation::RowKeyTime { metric, .. } | Mutation::DeleteRowKeyTime { metric, .. } => {
                metric.len() + 32
            }
            Mutation::StringIndex { key, name, .. }
            | Mutation::DeleteStringIndex { key, name, .. } => key.len() + name.len() + 8,
            Mutation::DeleteRow { key, .. } => key.len() + 8,
            Mutation::DeleteColumns { key, .. } => key.len() + 16,
            Mutation::DeleteRowKeyIndexEntry {
                metric, row_key, ..
            } => metric.len() + row_key.len() + 8,
            Mutation::ServiceValue {
                service,
                service_key,
                key,
                value,
                ..
            } => service.len() + service_key.len() + key.len() + value.len() + 8,
            Mutation::DeleteServiceValue {
                service,
                service_key,
                key,
                ..
            } => service.len() + service_key.len() + key.len() + 8,
            Mutation::ServiceKeyModified {
                service,
                service_key,
                ..
            } => service.len() + service_key.len() + 8,
        }
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// At the configured read consistency (queries).
    Normal,
    /// Sees every write acknowledged at the write consistency: the index upkeep
    /// after a delete decides from it that a row or metric is empty.
    Strong,
}

/// One `row_keys` row: a series' row in one row-time partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowKeysRow {
    pub row_time: i64,
    pub data_type: String,
    pub tags: Tags,
}

/// Columns `[lower, upper)` of one `data_points` row, in `order`, at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRange {
    pub key: Vec<u8>,
    pub lower: u32,
    pub upper: u32,
    pub descending: bool,
    pub limit: Option<u32>,
}

/// One `data_points` cell: column name and value bytes.
pub type Cell = (u32, Vec<u8>);

/// What the store needs from a CQL connection (see the module docs).
pub trait Session: Send + Sync + 'static {
    /// Runs DDL (schema creation) one statement at a time, in order.
    fn create_schema(&self, statements: &[String]) -> Result<(), CqlError>;

    /// `spec` table value of `cluster_config`/`name`.
    fn spec_value(&self, name: &str) -> Result<Option<String>, CqlError>;

    /// Stores a `spec` value (`row_time_unit` or `row_width`).
    fn put_spec_value(&self, name: &str, value: &str) -> Result<(), CqlError>;

    /// Applies every mutation; `Ok` only when all were applied. The order among
    /// them is not guaranteed.
    fn apply(&self, mutations: Vec<Mutation>) -> Result<(), CqlError>;

    /// `string_index` names under `key`, ascending; with `bounds`, only names in
    /// `[lower, upper)` (spec §7.5). `limit` stops early.
    fn strings(
        &self,
        key: &[u8],
        bounds: Option<(&str, &str)>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, CqlError>;

    /// Legacy index: `row_key_index` columns of `metric` in `[lower, upper)`.
    fn row_key_index(
        &self,
        metric: &str,
        lower: &[u8],
        upper: &[u8],
        fresh: Freshness,
    ) -> Result<Vec<Vec<u8>>, CqlError>;

    /// `row_key_time_index` row times of `metric` in `[start, end]`, ascending.
    fn row_times(
        &self,
        metric: &str,
        start: i64,
        end: i64,
        fresh: Freshness,
    ) -> Result<Vec<i64>, CqlError>;

    /// `row_keys` rows of `metric` for each row time (static-only partitions
    /// skipped), the row times read concurrently.
    fn row_keys(
        &self,
        metric: &str,
        row_times: &[i64],
        fresh: Freshness,
    ) -> Result<Vec<RowKeysRow>, CqlError>;

    /// Cells of each range, read concurrently; result `i` belongs to `ranges[i]`.
    fn cells(&self, ranges: &[CellRange], fresh: Freshness) -> Result<Vec<Vec<Cell>>, CqlError>;

    /// `SELECT value, WRITETIME(value) FROM service_index WHERE service = ? AND
    /// service_key = ? AND key = ?`: the value, if the row exists.
    fn service_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, CqlError>;

    /// `SELECT key FROM service_index WHERE service = ? AND service_key = ?`, ascending
    /// (`ORDER BY key ASC`), or with `bounds`, only keys in `[lower, upper)`. The null
    /// key of a static-only partition is skipped, as KairosDB skips it.
    fn service_index_keys(
        &self,
        service: &str,
        service_key: &str,
        bounds: Option<(&str, &str)>,
    ) -> Result<Vec<String>, CqlError>;

    /// `SELECT service_key FROM service_index WHERE service = ? ALLOW FILTERING`: one
    /// entry per row, as Cassandra answers (a service key repeats once per stored key,
    /// in token order; a static-only partition gives one).
    fn service_key_rows(&self, service: &str) -> Result<Vec<String>, CqlError>;

    /// Is the cluster reachable right now (a cheap round trip)?
    fn ping(&self) -> Result<(), CqlError>;
}

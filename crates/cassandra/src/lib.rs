//! KairosDB's Cassandra schema, CQL and byte formats, so that kairosdb-rs can
//! read and write a keyspace that Java KairosDB created, byte for byte.
//!
//! Pure code: no driver, no I/O, no state. Each module implements a part of
//! the KairosDB spec (`kairosdb-spec.md`):
//!
//! * [`rowkey`]: `data_points.key` — metric, row time, type section, escaped
//!   tag string in Java string order, legacy keys and the `FF` scan bound (§8.1).
//! * [`rowspec`]: row times (including the non-floor rule for negative
//!   timestamps, §14.11), 4-byte column names in MILLISECONDS, SECONDS and
//!   LEGACY clusters, read/delete column bounds, index TTLs (§7.3, §8.3).
//! * [`value`]: `data_points.value` — zig-zag varint longs, big-endian
//!   doubles, Java `writeUTF` strings, the read-only legacy formats (§8.2, §8.4).
//! * [`index`]: contents of `string_index`, `row_key_index`, `row_keys`,
//!   `row_key_time_index` and `tag_indexed_row_keys`, with Guava's murmur3
//!   tag-collection hash (§8.5).
//! * [`schema`]: the CQL text of schema creation, the `spec` table and the
//!   write, read, delete and service-index paths (§7.2–§7.7), with the
//!   COMPACT STORAGE decision of §14.24.
//! * [`error`]: what can go wrong, by what the caller does next.
//!
//! Not here yet: the CQL driver and connection/cluster handling (§7.1), the
//! write path (batching, row-key and metric-name caches, retries, §7.4), the
//! read and delete paths (§7.5, §7.6), the durable write queue in front of
//! Cassandra, and the `Storage` implementation that ties them together.

pub mod error;
pub mod index;
pub mod rowkey;
pub mod rowspec;
pub mod schema;
pub mod value;

pub use error::{ConfigError, DecodeError, EncodeError};
pub use rowkey::{RowKey, StoreType};
pub use rowspec::{RowSpec, RowTimeUnit};
pub use schema::{Cql, Keyspace, TableOptions};

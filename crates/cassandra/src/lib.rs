//! The Cassandra backend: reads and writes a keyspace that Java KairosDB
//! created, byte for byte, so both can run against the same cluster.
//!
//! Each module implements a part of the KairosDB spec (`kairosdb-spec.md`):
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
//!   COMPACT STORAGE decision of §14.24 and the millisecond `USING TIMESTAMP`
//!   KairosDB 1.3.0-1's driver puts on every statement.
//! * [`store`]: [`CassandraStore`], the `Storage` implementation: start-up and
//!   `spec` (§7.3), write path with index caches (§7.4), read path over both
//!   index generations (§7.5), delete path (§7.6, with our §14.21 choice), all
//!   stamped from one strictly increasing millisecond clock.
//! * [`session`]: the [`Session`] seam the store runs its statements through;
//!   `driver` (feature `driver`) implements it on the `scylla` driver and
//!   [`memory`] implements it in memory for tests.
//! * [`error`]: what can go wrong, by what the caller does next.
//! * `test_node` (feature `test-node`, tests only): a throw-away node from
//!   `scripts/cassandra.sh` for a live test that needs one of its own.

pub mod error;
pub mod index;
pub mod memory;
pub mod rowkey;
pub mod rowspec;
pub mod schema;
pub mod session;
pub mod store;
pub mod value;

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "test-node")]
pub mod test_node;

pub use error::{ConfigError, DecodeError, EncodeError};
pub use rowkey::{RowKey, StoreType};
pub use rowspec::{RowSpec, RowTimeUnit};
pub use schema::{Cql, Keyspace, TableOptions};
pub use session::{CqlError, Mutation, Session};
pub use store::{CassandraStore, StoreOptions, TagIndexed};

//! Errors of the byte codecs and the schema builders.
//!
//! Shaped by what the caller does next: an [`EncodeError`] rejects the input
//! point or series (it can never be stored in KairosDB's format); a
//! [`DecodeError`] means a cell or row key read from Cassandra is not in
//! KairosDB's format (skip it and count it, or fail the query); a
//! [`ConfigError`] rejects configuration at start-up.

use thiserror::Error;

/// A value or key that KairosDB's Cassandra format cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The row key ends the metric name at the first 0x00 (spec §8.1).
    #[error("metric name {metric:?} contains a NUL character, which the Cassandra row key uses as its terminator")]
    MetricContainsNul { metric: String },
    /// The type length is one signed byte in Java's reader (spec §8.1).
    #[error("data type name {name:?} is {len} bytes long; a row key allows at most 127")]
    DataTypeTooLong { name: String, len: usize },
    /// Java `writeUTF` stores a 2-byte length (spec §8.4).
    #[error(
        "string value encodes to {len} bytes of modified UTF-8; KairosDB stores at most 65535"
    )]
    StringTooLong { len: usize },
}

/// Bytes read from Cassandra that are not in KairosDB's format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("row key has no 0x00 after the metric name")]
    MissingMetricTerminator,
    #[error("{what} needs {needed} bytes but only {available} remain")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("row key data type length {len} is negative as a Java byte")]
    DataTypeLength { len: u8 },
    #[error("row key carries the 0xFF end-of-range marker: it is a scan bound, not a stored key")]
    EndSearchKey,
    #[error("Variable length quantity is too long")]
    VarintTooLong,
    #[error("modified UTF-8 string is malformed at byte {offset}")]
    MalformedModifiedUtf8 { offset: usize },
    #[error("modified UTF-8 string contains an unpaired surrogate")]
    UnpairedSurrogate,
    #[error("legacy long value has {len} bytes; at most 8 are allowed")]
    LegacyLongTooLong { len: usize },
    #[error("column name must be 4 bytes, got {len}")]
    ColumnNameLength { len: usize },
}

/// Configuration that cannot describe a KairosDB Cassandra cluster.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("row width {width} must be between 1 and {max} (a column offset is a 32-bit int)")]
    RowWidth { width: i64, max: i64 },
    #[error("row_time_unit {value:?} is not MILLISECONDS, SECONDS or LEGACY")]
    RowTimeUnit { value: String },
    #[error("keyspace name {name:?} must be 1 to 48 ASCII letters, digits or '_', starting with a letter")]
    Keyspace { name: String },
}

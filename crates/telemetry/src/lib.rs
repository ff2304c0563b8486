//! The telemetry API (issue 20, docs/telemetry.md): metrics as event-like records over the
//! same store. This crate holds its pure parts; the listener, the cache and the stream are
//! the server's `telemetry` module.
//!
//! * [`record`]: a record is a data point: its tag list as KairosDB tags, validation.
//! * [`id`]: a record's id, stable and opaque, naming its point.
//! * [`list`]: the listing's filters, order and cursor.
//! * [`prompt`]: questions in plain words, read into a query.
pub mod id;
pub mod list;
pub mod prompt;
pub mod record;

pub use id::RecordId;
pub use list::{Cursor, ListQuery, Sort};
pub use record::{Record, RecordError, RecordInput};

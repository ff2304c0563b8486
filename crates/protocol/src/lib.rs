//! KairosDB wire formats, pure functions over bytes (no I/O):
//!
//! * [`ingest`]: `POST /api/v1/datapoints` bodies → [`kairosdb_model::WriteBatch`] + KairosDB error texts.
//! * [`telnet`]: one telnet line (`put`, `putm`, `puts`, `version`) → a command.
//! * [`query`]: query JSON → [`kairosdb_model::QueryRequest`] with KairosDB's validation texts.
//! * [`response`]: result groups → response JSON bytes, with Java/org.json number formatting.
//! * [`lenient`]: turns Gson-lenient JSON (comments, single quotes, `[2,]`) into strict JSON.

pub mod ingest;
pub mod lenient;
pub mod query;
pub mod response;
pub mod telnet;

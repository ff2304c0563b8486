//! KairosDB wire formats, pure functions over bytes (no I/O):
//!
//! * [`ingest`]: `POST /api/v1/datapoints` bodies → [`kairosdb_model::WriteBatch`] + KairosDB
//!   error texts and the HTTP status KairosDB answers ([`ingest::IngestOutcome::status`]).
//! * [`telnet`]: one telnet line (`put`, `putm`, `puts`, `version`) → points in a
//!   [`kairosdb_model::BatchBuilder`].
//! * [`query`]: query JSON → [`kairosdb_model::QueryRequest`] with KairosDB's validation
//!   texts ([`query::parse_query_request`] keeps the 400/500 distinction).
//! * [`response`]: result groups → response JSON bytes, with Java/org.json number and
//!   string formatting; also the `/query/tags` response.
//! * [`rollup`]: roll-up task JSON → [`rollup::RollupTask`] with KairosDB's validation texts.
//! * [`civil`]: Gregorian calendar arithmetic on UTC milliseconds (relative times,
//!   calendar buckets).
//! * [`lenient`]: Gson-lenient JSON (comments, single quotes, `[2,]`) → strict JSON or an
//!   order-preserving tree.
//!
//! Benchmarks: `cargo bench -p kairosdb-protocol` (TSBS-like inputs, see the bench file).

pub mod civil;
#[cfg(test)]
mod fixtures;
pub mod ingest;
mod javanum;
pub mod lenient;
pub mod query;
pub mod response;
pub mod rollup;
pub mod telnet;

//! Query JSON parsing (spec §4.1–§4.3). TODO(helper): implement.

use kairosdb_model::QueryRequest;

/// Parses a query body; `now_ms` resolves relative times. `Err` holds the single
/// KairosDB error text (HTTP 400).
pub fn parse_query(body: &[u8], now_ms: i64) -> Result<QueryRequest, String> {
    let _ = (body, now_ms);
    Err("not implemented".to_string())
}

//! Response JSON writing (spec §4.5, §4.6). TODO(helper): implement.

use kairosdb_model::QueryResult;

/// Appends `{"queries":[...]}` for the given results to `out`.
/// `Err` names a NaN/Infinity value (spec §4.6: the query fails with 500).
pub fn write_query_response(out: &mut Vec<u8>, queries: &[QueryResult]) -> Result<(), String> {
    let _ = (out, queries);
    Ok(())
}

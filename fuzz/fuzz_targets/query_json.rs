//! `POST /api/v1/datapoints/query` (and the delete and tag queries, which share the
//! parser): the input is a request body for `protocol::query::parse_query_request`;
//! the same text also goes to the single-aggregator and single-group-by parsers (the
//! roll-up and processor entry points). The only assertion: nothing panics.
#![no_main]

use kairosdb_protocol::query::{parse_aggregator, parse_group_by, parse_query_request};
use libfuzzer_sys::fuzz_target;

/// A fixed "now" for relative times: 2023-11-14T22:13:20Z.
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_query_request(data, NOW_MS) {
        assert!(matches!(e.status(), 400 | 500));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_aggregator(text);
        let _ = parse_group_by(text);
    }
});

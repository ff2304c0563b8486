//! `POST /api/v1/datapoints`: the input is an (already decompressed) request body for
//! `protocol::ingest::parse_ingest`, strict JSON first and Gson's lenient re-parse after
//! a syntax error. The only assertion: nothing panics, and the status is one KairosDB
//! answers with.
#![no_main]

use kairosdb_protocol::ingest::parse_ingest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = parse_ingest(data);
    assert!(matches!(outcome.status(), 204 | 400 | 500));
});

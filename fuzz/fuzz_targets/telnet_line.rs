//! Telnet protocol: the input is what a client sends on one connection. It is split
//! into lines on `\n` as the server's framing does (`crates/server/src/telnet.rs`),
//! each line goes through `protocol::telnet::parse_line` into one `BatchBuilder`, and
//! the batch is finished. The only assertion: nothing panics.
#![no_main]

use kairosdb_model::BatchBuilder;
use kairosdb_protocol::telnet::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut builder = BatchBuilder::new();
    for line in data.split(|&b| b == b'\n') {
        let _ = parse_line(line, &mut builder);
    }
    let _ = builder.finish();
});

//! Delivery queue (Cassandra mode's local WAL): the input is the payload of one queue
//! frame for `queue::decode_batch`, as `DeliveryQueue::open` reads it back. A batch that
//! decodes must encode again (`encode_batch`) to bytes that decode to the same batch:
//! the re-encoding of the re-decoded batch is byte-identical (bytes, so NaN compares).
#![no_main]

use kairosdb_engine::internals::{decode_batch, encode_batch};
use libfuzzer_sys::fuzz_target;

/// The frame header `encode_batch` writes before the payload (length, CRC).
const FRAME_HEADER_LEN: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Ok((batch, written_ms)) = decode_batch(data) else {
        return;
    };
    let mut first = Vec::new();
    encode_batch(&mut first, &batch, written_ms);
    let (again, again_ms) =
        decode_batch(&first[FRAME_HEADER_LEN..]).expect("a re-encoded batch decodes");
    assert_eq!(again_ms, written_ms);
    assert_eq!(again.series.len(), batch.series.len());
    let mut second = Vec::new();
    encode_batch(&mut second, &again, again_ms);
    assert_eq!(first, second);
});

//! WAL replay: the input is the bytes of one segment file. They go through
//! `wal::scan_segment` (the frame walk of `wal::replay`: header, length, CRC) and
//! every good record through `wal::decode_record` and its points reader, as
//! `Engine::open` replays them. Since few mutated frames keep a valid CRC, the whole
//! input is also decoded as one record payload, so the record decoder sees arbitrary
//! bytes directly. The only assertion: nothing panics, and a scan never claims more
//! bytes than it was given.
#![no_main]

use kairosdb_engine::internals::{decode_record, scan_segment, Col, Record, SEGMENT_HEADER_LEN};
use kairosdb_model::DataType;
use libfuzzer_sys::fuzz_target;

fn decode_payload(payload: &[u8], ts: &mut Vec<i64>, vals: &mut Col) {
    match decode_record(payload) {
        Ok(Record::Points(mut points)) => {
            while let Some(chunk) = points.next_chunk(ts, vals) {
                match chunk {
                    Ok(h) => {
                        assert_eq!(ts.len(), vals.len());
                        assert_eq!(vals.data_type(), h.data_type);
                    }
                    Err(_) => break,
                }
            }
        }
        Ok(Record::SeriesDefs(_)) | Ok(Record::Delete { .. }) | Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut ts = Vec::new();
    let mut vals = Col::new(DataType::Double);
    // The segment number the file name would give: the one in the header, so that
    // only magic and version decide whether the header is good.
    let no = data
        .get(16..24)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let scan = scan_segment(data, no, |_, payload| {
        decode_payload(payload, &mut ts, &mut vals);
        Ok(())
    })
    .expect("the callback never fails");
    assert!(scan.good_end <= data.len());
    assert!(scan.header_ok || scan.records == 0);
    if scan.header_ok {
        assert!(scan.good_end >= SEGMENT_HEADER_LEN);
        assert_eq!(scan.bad.is_none(), scan.good_end == data.len());
    }
    decode_payload(data, &mut ts, &mut vals);
});

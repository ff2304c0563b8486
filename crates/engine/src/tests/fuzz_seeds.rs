//! Seed inputs of the fuzz targets that read engine bytes (`fuzz/fuzz_targets/`
//! `wal_replay`, `block_decode`, `queue_record`): a WAL segment written by a real
//! engine, blocks of each type and a delivery-queue record, made by the encoders here.
//!
//! `KAIROSDB_WRITE_FUZZ_SEEDS=1 cargo test -p kairosdb-engine fuzz_seeds` rewrites
//! `fuzz/seeds/<target>/`; without it the test checks that the committed seeds still
//! decode, so a format change that leaves them stale fails here rather than quietly
//! starting the fuzzer from rejected inputs.

use std::path::{Path, PathBuf};

use super::*;
use crate::block::{self, Decoded, Expiry};
use crate::column::{Col, StrCol};
use crate::queue::{decode_batch, encode_batch};
use crate::wal::{self, scan_segment, NEVER};

/// (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();

    // A segment as an engine leaves it when killed: series definitions, points of
    // every type (one with a TTL), a delete.
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    let mut with_ttl = dbl(
        "cpu",
        &[("host", "b")],
        &[T0, T0 + 7, T0 + 9],
        &[0.5, f64::NAN, -1e300],
    );
    with_ttl.ttl_secs = 3600;
    e.write(&batch(vec![
        lng(
            "cpu",
            &[("host", "a"), ("dc", "eu")],
            &[T0, T0 + 10, T0 + 20],
            &[1, -2, i64::MAX],
        ),
        with_ttl,
        SeriesPoints {
            key: key("log", &[("app", "x")], DataType::String),
            ttl_secs: 0,
            points: Points::String {
                ts: vec![T0 - 5, T0],
                values: vec!["hello".into(), "wörld \u{0}".into()],
            },
        },
    ]))
    .unwrap();
    e.delete(&DeleteRequest {
        metric: "cpu".into(),
        filter: TagFilter::default(),
        range: TimeRange::new(T0 + 5, T0 + 15),
        shard: None,
        exact: false,
    })
    .unwrap();
    e.crash();
    let wal_dir = dir.path().join("wal");
    for no in wal::list_segments(&wal_dir).unwrap() {
        let data = std::fs::read(wal_dir.join(wal::segment_file_name(no))).unwrap();
        // Each record payload alone too: the target also decodes its whole input as one.
        scan_segment(&data, no, |lsn, payload| {
            out.push((
                "wal_replay",
                format!("record-{}", lsn.offset),
                payload.to_vec(),
            ));
            Ok(())
        })
        .unwrap();
        out.push(("wal_replay", format!("segment-{no}"), data));
    }

    // Blocks: regular longs, irregular doubles with a uniform TTL, strings with
    // per-point expiry.
    let regular: Vec<i64> = (0..100).map(|i| T0 + i * 10_000).collect();
    let longs = Col::Long((0..100).map(|i| i * i - 50).collect());
    let irregular: Vec<i64> = (0..100).map(|i| T0 + i * 997 + (i % 7) * 13).collect();
    let doubles = Col::Double((0..100).map(|i| f64::from(i) * 0.25).collect());
    let mut strings = StrCol::default();
    for s in ["a", "", "ü", "long string value"] {
        strings.push(s);
    }
    let exp = [10, 20, NEVER, 30];
    out.push((
        "block_decode",
        "long-regular".into(),
        block::encode(&regular, &longs, Expiry::Uniform(NEVER), 3),
    ));
    out.push((
        "block_decode",
        "double-ttl".into(),
        block::encode(&irregular, &doubles, Expiry::Uniform(1_700_003_600), 3),
    ));
    out.push((
        "block_decode",
        "string-expiry".into(),
        block::encode(
            &[-3, 0, 5, 9],
            &Col::Str(strings),
            Expiry::PerPoint(&exp),
            3,
        ),
    ));
    // The target's round-trip mode: FF, type, expiry mode, then (ts, value) records.
    let mut rt = vec![0xFF, 1, 2];
    for (t, v) in [(5i64, 1.5f64), (-1, f64::NAN), (5, 2.0), (9, -0.0)] {
        rt.extend_from_slice(&t.to_le_bytes());
        rt.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    out.push(("block_decode", "round-trip".into(), rt));

    // A queue record (the frame's payload, without length and CRC).
    let mut frame = Vec::new();
    let q = batch(vec![
        lng("q", &[("a", "1")], &[1, 2, 3], &[4, 5, 6]),
        dbl("q", &[("a", "2")], &[-1], &[0.1]),
    ]);
    encode_batch(&mut frame, &q, T0);
    out.push((
        "queue_record",
        "batch".into(),
        frame[wal::FRAME_HEADER_LEN..].to_vec(),
    ));
    out
}

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

/// Whether the seed decodes cleanly with the decoder its target feeds it to.
fn decodes(target: &str, name: &str, data: &[u8]) -> bool {
    match target {
        "wal_replay" if name.starts_with("segment-") => {
            let no: u64 = name["segment-".len()..].parse().unwrap();
            let mut ok = true;
            let scan = scan_segment(data, no, |_, p| {
                ok &= wal::decode_record(p).is_ok();
                Ok(())
            })
            .unwrap();
            ok && scan.header_ok && scan.bad.is_none() && scan.records > 0
        }
        "wal_replay" => wal::decode_record(data).is_ok(),
        "block_decode" if data.first() == Some(&0xFF) => true,
        "block_decode" => block::decode(data, &mut Decoded::new()).is_ok(),
        "queue_record" => decode_batch(data).is_ok(),
        _ => false,
    }
}

#[test]
fn fuzz_seeds() {
    let write = std::env::var_os("KAIROSDB_WRITE_FUZZ_SEEDS").is_some();
    for (target, name, data) in seeds() {
        assert!(
            decodes(target, &name, &data),
            "generated seed {target}/{name} does not decode"
        );
        let path = seed_dir(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write the fuzz seeds with KAIROSDB_WRITE_FUZZ_SEEDS=1",
                path.display()
            )
        });
        assert!(
            decodes(target, &name, &committed),
            "committed fuzz seed {} no longer decodes; rewrite the seeds with \
             KAIROSDB_WRITE_FUZZ_SEEDS=1 cargo test -p kairosdb-engine fuzz_seeds",
            path.display()
        );
    }
}

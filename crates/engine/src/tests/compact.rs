//! Compaction of overlapping blocks (late writes reaching behind the newest block):
//! after `SETTLE_DELAY_SECS` a maintenance pass merges them into disjoint blocks, and
//! every read answers exactly as before, during and after, across restarts.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::sealed::SETTLE_DELAY_SECS;
use crate::store::BlockSummary;

fn summary_of(e: &Engine, metric: &str) -> BlockSummary {
    let all = e.inner().registry.all();
    let s = all
        .iter()
        .find(|s| s.key.metric.as_str() == metric)
        .unwrap_or_else(|| panic!("no series {metric}"));
    let summary = *s.summary.lock();
    summary
}

fn write_model(e: &Engine, model: &mut BTreeMap<i64, i64>, ts: &[i64], v: &[i64]) {
    write_lng(e, "m", &[], ts, v);
    for (&t, &x) in ts.iter().zip(v) {
        model.insert(t, x);
    }
}

fn range_of(e: &Engine, range: TimeRange) -> Vec<(i64, i64)> {
    let q = SeriesQuery {
        range,
        ..query("m")
    };
    match read(e, &q).as_slice() {
        [] => Vec::new(),
        [s] => match &s.points {
            Points::Long { ts, values } => ts.iter().copied().zip(values.iter().copied()).collect(),
            p => panic!("not longs: {p:?}"),
        },
        more => panic!("{} series", more.len()),
    }
}

fn model_range(model: &BTreeMap<i64, i64>, range: TimeRange) -> Vec<(i64, i64)> {
    model
        .range(range.start..=range.end)
        .map(|(&t, &v)| (t, v))
        .collect()
}

/// Reads the whole series and a few ranges cutting through blocks.
fn check(e: &Engine, model: &BTreeMap<i64, i64>, what: &str) {
    assert_eq!(
        range_of(e, TimeRange::ALL),
        model_range(model, TimeRange::ALL),
        "{what}: whole series"
    );
    for (a, b) in [(0, 63), (100, 899), (250, 260), (990, 2000), (-5, 0)] {
        let r = TimeRange::new(a, b);
        assert_eq!(range_of(e, r), model_range(model, r), "{what}: {a}..={b}");
    }
}

fn settle(e: &Engine, clock: &Clock) {
    clock.advance(Duration::from_secs(SETTLE_DELAY_SECS));
    e.run_maintenance().unwrap();
}

#[test]
fn overlapping_blocks_settle_into_disjoint_ones_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 64);
    let clock = c.clock.clone();
    let e = Engine::open(c.clone()).unwrap();
    let mut model = BTreeMap::new();
    let ts: Vec<i64> = (0..1000).collect();
    write_model(&e, &mut model, &ts, &ts);
    e.flush().unwrap();
    let in_order = gauge(&e, "engine_blocks");
    assert!(summary_of(&e, "m").disjoint);
    // Old stretches written again (new values), each sealed into its own block
    // lying over blocks sealed before: straddling block ends, inside one, and one
    // point written three times.
    for (k, (a, b)) in [
        (100, 300),
        (250, 260),
        (5, 6),
        (500, 501),
        (5, 6),
        (640, 900),
    ]
    .into_iter()
    .enumerate()
    {
        let ts: Vec<i64> = (a..b).collect();
        let v: Vec<i64> = ts.iter().map(|t| t * 10 + k as i64).collect();
        write_model(&e, &mut model, &ts, &v);
        e.flush().unwrap();
    }
    let s = summary_of(&e, "m");
    assert!(!s.disjoint);
    assert!(gauge(&e, "engine_blocks") >= in_order + 6.0);
    assert_eq!(s.points, 1000 + 200 + 10 + 1 + 1 + 1 + 260);
    check(&e, &model, "overlapping");
    let overlapping_bytes = gauge(&e, "engine_block_bytes");

    // Not before the delay, and the work list survives a restart.
    e.run_maintenance().unwrap();
    assert_eq!(counter(&e, "engine_compactions_total"), 0);
    assert_eq!(gauge(&e, "engine_unsettled_series"), 1.0);
    e.close().unwrap();
    let e = Engine::open(c.clone()).unwrap();
    assert!(!summary_of(&e, "m").disjoint);
    check(&e, &model, "reopened, still overlapping");
    clock.advance(Duration::from_secs(SETTLE_DELAY_SECS - 1));
    e.run_maintenance().unwrap();
    assert_eq!(counter(&e, "engine_compactions_total"), 0, "too early");
    settle(&e, &clock);
    assert_eq!(counter(&e, "engine_compactions_total"), 1);
    assert!(counter(&e, "engine_blocks_compacted_total") >= 6);
    assert_eq!(gauge(&e, "engine_unsettled_series"), 0.0);

    let s = summary_of(&e, "m");
    assert!(s.disjoint);
    assert_eq!(s.points, 1000, "each timestamp stored once");
    assert!(gauge(&e, "engine_blocks") <= in_order);
    // About what the same points take written once, in order.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fc = cfg_seal(fresh_dir.path(), c.seal_points);
    let fresh = Engine::open(fc).unwrap();
    let (ts, v): (Vec<i64>, Vec<i64>) = model.iter().map(|(&t, &v)| (t, v)).unzip();
    write_lng(&fresh, "m", &[], &ts, &v);
    fresh.flush().unwrap();
    let (got, want) = (
        gauge(&e, "engine_block_bytes"),
        gauge(&fresh, "engine_block_bytes"),
    );
    assert!(got <= want * 1.2, "{got} bytes against {want} written once");
    assert!(
        got < overlapping_bytes,
        "{got} bytes against {overlapping_bytes}"
    );
    check(&e, &model, "compacted");
    // Disjoint again: first/last reads answer from the summary and one block.
    let before = counter(&e, "engine_edge_reads_total");
    let q = SeriesQuery {
        limit: Some(1),
        order: Order::Desc,
        count_in_range: true,
        ..query("m")
    };
    let r = read(&e, &q);
    assert_eq!(r[0].points.timestamps(), &[999]);
    assert_eq!(counter(&e, "engine_edge_reads_total"), before + 1);

    // Nothing more to do; appends merge into the compacted newest block.
    settle(&e, &clock);
    assert_eq!(counter(&e, "engine_compactions_total"), 1);
    let blocks = gauge(&e, "engine_blocks");
    let ts: Vec<i64> = (1000..1010).collect();
    write_model(&e, &mut model, &ts, &ts);
    e.flush().unwrap();
    assert!(gauge(&e, "engine_blocks") <= blocks + 1.0);
    check(&e, &model, "appended");

    // Durable: a crash right after the compaction, then a clean restart.
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    check(&e, &model, "after a crash");
    assert!(summary_of(&e, "m").disjoint);
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    check(&e, &model, "after a restart");
}

#[test]
fn a_group_over_the_point_limit_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 16);
    let e = Engine::open(c).unwrap();
    let mut model = BTreeMap::new();
    let ts: Vec<i64> = (0..100).collect();
    write_model(&e, &mut model, &ts, &ts);
    e.flush().unwrap();
    // Blocks of 25 points. Two groups: the first block with the rewrite of 10..25
    // (40 points), the last two with that of 65..80 (65 points). (The rewrites are
    // too big to be append-merge targets.)
    for (a, b) in [(10, 25), (65, 80)] {
        let ts: Vec<i64> = (a..b).collect();
        write_model(&e, &mut model, &ts, &[-1; 15]);
        e.flush().unwrap();
    }
    let inner = e.inner();
    let entry = inner
        .registry
        .all()
        .into_iter()
        .find(|s| s.key.metric.as_str() == "m")
        .unwrap();
    let blocks = gauge(&e, "engine_blocks");
    let out = {
        let _m = inner.maint.lock();
        inner.sealed.compact(&entry, 0, 50).unwrap()
    };
    assert_eq!((out.skipped_groups, out.blocks_in), (1, 2), "{out:?}");
    assert_eq!(
        gauge(&e, "engine_blocks"),
        blocks - 2.0 + out.blocks_out as f64
    );
    assert!(!summary_of(&e, "m").disjoint);
    check(&e, &model, "one group merged");
    let out = {
        let _m = inner.maint.lock();
        inner.sealed.compact(&entry, 0, 10_000).unwrap()
    };
    assert_eq!((out.skipped_groups, out.blocks_in), (0, 3), "{out:?}");
    assert!(summary_of(&e, "m").disjoint);
    check(&e, &model, "merged");
}

#[test]
fn compaction_keeps_expiry_and_drops_expired_points() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 16);
    let clock = c.clock.clone();
    let e = Engine::open(c).unwrap();
    let ts: Vec<i64> = (0..64).collect();
    write_lng(&e, "m", &[], &ts, &ts);
    e.flush().unwrap();
    // Written again with a TTL: these values win, then expire.
    let mut late = lng("m", &[], &ts[10..30], &[7; 20]);
    late.ttl_secs = 60;
    e.write(&batch(vec![late])).unwrap();
    e.flush().unwrap();
    assert!(!summary_of(&e, "m").disjoint);
    settle(&e, &clock);
    assert_eq!(counter(&e, "engine_compactions_total"), 1);
    assert!(summary_of(&e, "m").disjoint);
    let want = |t: i64| if (10..30).contains(&t) { 7 } else { t };
    let got = longs_of(&e, "m");
    assert_eq!(got, ts.iter().map(|&t| (t, want(t))).collect::<Vec<_>>());
    // The merged blocks carry the late points' expiry: retention removes them (the
    // older values they replaced are gone for good, as without a compaction).
    clock.advance(Duration::from_secs(61));
    e.run_retention().unwrap();
    assert_eq!(counter(&e, "engine_points_expired_total"), 20);
    let got = longs_of(&e, "m");
    assert_eq!(
        got,
        ts.iter()
            .filter(|t| !(10..30).contains(*t))
            .map(|&t| (t, t))
            .collect::<Vec<_>>()
    );
}

/// Random writes of old stretches, deletes, flushes, compactions and restarts
/// against a map; reads from other threads run while each compaction does.
#[test]
fn random_late_writes_and_compactions_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 32);
    let clock = c.clock.clone();
    let mut e = Engine::open(c.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = BTreeMap::new();
    let mut next = 0i64;
    let mut compactions = 0;
    for step in 0..120 {
        match rng.gen_range(0..10) {
            0..=3 => {
                let n = rng.gen_range(1..80);
                let ts: Vec<i64> = (next..next + n).collect();
                next += n;
                write_model(&e, &mut model, &ts, &ts);
            }
            4..=5 if next > 0 => {
                let a = rng.gen_range(0..next);
                let b = (a + rng.gen_range(1..100)).min(next);
                let ts: Vec<i64> = (a..b).collect();
                let v: Vec<i64> = ts.iter().map(|_| rng.gen_range(-1000..1000)).collect();
                write_model(&e, &mut model, &ts, &v);
            }
            6 if next > 0 => {
                let a = rng.gen_range(0..next);
                let b = a + rng.gen_range(0..50);
                e.delete(&DeleteRequest {
                    metric: "m".into(),
                    filter: TagFilter::default(),
                    range: TimeRange::new(a, b),
                    shard: None,
                    exact: false,
                })
                .unwrap();
                model.retain(|t, _| !(a..=b).contains(t));
            }
            7 => e.flush().unwrap(),
            8 => {
                e.flush().unwrap();
                clock.advance(Duration::from_secs(SETTLE_DELAY_SECS));
                let want = model.clone();
                let stop = std::sync::atomic::AtomicBool::new(false);
                let (e, want, stop) = (&e, &want, &stop);
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(move || {
                            let mut rng = StdRng::seed_from_u64(step);
                            while !stop.load(Ordering::Relaxed) {
                                let a = rng.gen_range(-10..next.max(1) + 10);
                                let r = TimeRange::new(a, a + rng.gen_range(0..200));
                                assert_eq!(range_of(e, r), model_range(want, r), "step {step}");
                            }
                        });
                    }
                    e.run_maintenance().unwrap();
                    stop.store(true, Ordering::Relaxed);
                });
                let s = summary_of(e, "m");
                assert!(s.disjoint || s.blocks == 0, "step {step}: {s:?}");
            }
            _ => {
                compactions += counter(&e, "engine_compactions_total");
                e.close().unwrap();
                e = Engine::open(c.clone()).unwrap();
            }
        }
        if model.is_empty() {
            assert!(read(&e, &query("m")).is_empty(), "step {step}");
            continue;
        }
        check(&e, &model, &format!("step {step}"));
    }
    compactions += counter(&e, "engine_compactions_total");
    assert!(compactions >= 5, "{compactions} compactions");
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    check(&e, &model, "end");
}

//! Edge reads (`limit: 1` + `count_in_range`, the `first`/`last` pushdown): the point and
//! the count always equal those of a full read, and the cheap path (head bounds, block
//! summary, at most one block) is taken where the data allows it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// What a full read says an edge read must return: the first or last point (as a
/// one-point series) and the number of points in range, per series key.
fn expected(
    e: &Engine,
    metric: &str,
    range: TimeRange,
    order: Order,
) -> Vec<(Arc<SeriesKey>, Points, u64)> {
    let full = SeriesQuery {
        range,
        ..query(metric)
    };
    let mut out: Vec<(Arc<SeriesKey>, Points, u64)> = read(e, &full)
        .into_iter()
        .map(|s| {
            let n = s.points.len();
            let i = if order == Order::Asc { 0 } else { n - 1 };
            let mut p = Points::empty(s.key.data_type);
            assert!(p.push(s.points.timestamps()[i], s.points.value(i)));
            (s.key, p, n as u64)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn edge(
    e: &Engine,
    metric: &str,
    range: TimeRange,
    order: Order,
) -> Vec<(Arc<SeriesKey>, Points, u64)> {
    let q = SeriesQuery {
        range,
        order,
        limit: Some(1),
        count_in_range: true,
        work_limit: None,
        ..query(metric)
    };
    let mut out: Vec<(Arc<SeriesKey>, Points, u64)> = read(e, &q)
        .into_iter()
        .map(|s| (s.key, s.points, s.in_range))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Edge reads of `metric` over `range` in both orders; returns how many series the
/// cheap path answered.
fn check(e: &Engine, metric: &str, range: TimeRange, what: &str) -> u64 {
    let before = counter(e, "engine_edge_reads_total");
    for order in [Order::Asc, Order::Desc] {
        assert_eq!(
            edge(e, metric, range, order),
            expected(e, metric, range, order),
            "{what}: {order:?} over {range:?}"
        );
    }
    counter(e, "engine_edge_reads_total") - before
}

const ALL: TimeRange = TimeRange::ALL;

#[test]
fn edge_reads_take_the_cheap_path_where_the_data_allows() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 10);
    let clock = c.clock.clone();
    let e = Engine::open(c.clone()).unwrap();
    let ts = |r: std::ops::Range<i64>| r.map(|t| t * 10).collect::<Vec<i64>>();

    // Head only, written in order.
    let t = ts(0..5);
    write_lng(&e, "m", &[], &t, &t);
    assert_eq!(check(&e, "m", ALL, "head only"), 2);
    // Head written out of order: the read normalizes it, then answers cheaply.
    write_lng(&e, "m", &[], &[25, 5], &[250, 50]);
    assert_eq!(check(&e, "m", ALL, "head out of order"), 2);

    // Sealed only: `last` from the summary, `first` from the first block.
    e.flush().unwrap();
    assert_eq!(check(&e, "m", ALL, "blocks only"), 2);
    // A range cutting into the blocks needs a full read.
    assert_eq!(check(&e, "m", TimeRange::new(15, 1000), "partial range"), 0);

    // Head after the blocks.
    let t = ts(10..14);
    write_lng(&e, "m", &[], &t, &t);
    assert_eq!(check(&e, "m", ALL, "head after blocks"), 2);
    e.flush().unwrap();

    // Late points inside the newest block's span, one overwriting a sealed point:
    // `last` decodes that block and counts the overwrite once; `first` reads in full.
    write_lng(&e, "m", &[], &[105, 110], &[-1, -2]);
    assert_eq!(check(&e, "m", ALL, "late head points"), 1);
    // Idle for 2 s: maintenance merges them into the newest block; blocks stay
    // disjoint and both ends are cheap again.
    clock.advance(Duration::from_secs(3));
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0, "late head sealed");
    assert_eq!(check(&e, "m", ALL, "late points merged"), 2);

    // A late write inside the only block's span is merged into it as well.
    write_lng(&e, "m", &[], &[0, 1, 2], &[7, 8, 9]);
    e.flush().unwrap();
    assert_eq!(gauge(&e, "engine_blocks"), 1.0);
    assert_eq!(check(&e, "m", ALL, "merged into the only block"), 2);
    // Late points reaching before the newest block: blocks overlap, full reads from now.
    let t = ts(20..45);
    write_lng(&e, "m", &[], &t, &t);
    e.flush().unwrap();
    assert_eq!(gauge(&e, "engine_blocks"), 3.0);
    assert_eq!(check(&e, "m", ALL, "three disjoint blocks"), 2);
    write_lng(&e, "m", &[], &[3, 4], &[7, 8]);
    e.flush().unwrap();
    assert_eq!(check(&e, "m", ALL, "overlapping blocks"), 0);
    // ... also after a restart (the flag is persisted).
    e.close().unwrap();
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(check(&e, "m", ALL, "overlapping blocks, reopened"), 0);

    // Strings: `last` decodes the newest block (no value in the summary).
    let s = SeriesPoints {
        key: key("s", &[], DataType::String),
        ttl_secs: 0,
        points: Points::String {
            ts: vec![1, 2, 3],
            values: vec!["a".into(), "b".into(), "c".into()],
        },
    };
    e.write(&batch(vec![s])).unwrap();
    e.flush().unwrap();
    assert_eq!(check(&e, "s", ALL, "strings"), 2);
    // A reopened engine keeps the summaries.
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    assert_eq!(check(&e, "s", ALL, "strings, reopened"), 2);

    // Expired points not yet removed by retention: full reads until it runs.
    let mut t = lng("ttl", &[], &[1, 2, 3], &[1, 2, 3]);
    t.ttl_secs = 10;
    e.write(&batch(vec![t, lng("keep", &[], &[1, 2], &[1, 2])]))
        .unwrap();
    e.flush().unwrap();
    assert_eq!(check(&e, "keep", ALL, "before expiry"), 2);
    clock.advance(Duration::from_secs(11));
    assert_eq!(check(&e, "keep", ALL, "expired block somewhere"), 0);
    assert_eq!(check(&e, "ttl", ALL, "expired"), 0);
    e.run_retention().unwrap();
    assert_eq!(check(&e, "keep", ALL, "after retention"), 2);
}

/// Random writes (in order, late, overwriting), seals, maintenance, deletes, TTLs and
/// restarts: every edge read equals the full read.
#[test]
fn edge_reads_match_full_reads_under_random_histories() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 6);
    let clock = c.clock.clone();
    let mut e = Engine::open(c.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(0xED6E);
    let mut cheap = 0;
    let mut next = [0i64; 3];
    for step in 0..600 {
        let host = rng.gen_range(0..3usize);
        let tags = [("h", ["a", "b", "c"][host])];
        match rng.gen_range(0..100) {
            0..=54 => {
                let n = rng.gen_range(1..6);
                let late = rng.gen_bool(0.25);
                let start = if late {
                    (next[host] - rng.gen_range(1..40)).max(0)
                } else {
                    next[host]
                };
                let t: Vec<i64> = (0..n).map(|i| start + i * 3).collect();
                next[host] = next[host].max(start + n * 3);
                let v: Vec<i64> = t.iter().map(|_| rng.gen_range(0..100)).collect();
                let mut sp = lng("r", &tags, &t, &v);
                if rng.gen_bool(0.05) {
                    sp.ttl_secs = rng.gen_range(1..5);
                }
                e.write(&batch(vec![sp])).unwrap();
            }
            55..=69 => e.flush().unwrap(),
            70..=79 => {
                clock.advance(Duration::from_millis(rng.gen_range(0..3000)));
                e.run_maintenance().unwrap();
            }
            80..=84 => {
                let a = rng.gen_range(0..next[host].max(1));
                let b = a + rng.gen_range(0..20);
                e.delete(&DeleteRequest {
                    metric: "r".into(),
                    filter: TagFilter::from_pairs(&[("h", &[tags[0].1])]),
                    range: TimeRange::new(a, b),
                    shard: None,
                    exact: false,
                })
                .unwrap();
            }
            85..=87 => {
                e.close().unwrap();
                e = Engine::open(c.clone()).unwrap();
            }
            88..=89 => e.run_retention().unwrap(),
            _ => {}
        }
        let hi = next.iter().copied().max().unwrap_or(0);
        cheap += check(&e, "r", ALL, &format!("step {step}"));
        let a = rng.gen_range(-5..hi + 5);
        let b = a + rng.gen_range(0..hi + 10);
        check(&e, "r", TimeRange::new(a, b), &format!("step {step}"));
    }
    assert!(
        cheap > 500,
        "the cheap path answered only {cheap} series reads"
    );
}

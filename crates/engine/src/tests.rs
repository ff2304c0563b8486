//! Engine-level tests through the public `Storage` surface (plus a few internal
//! hooks: crash simulation, WAL failure injection, holding the maintenance lock).
//! Codec and component tests live beside their code.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kairosdb_model::{
    DataType, DeleteRequest, Order, Points, Read, SeriesData, SeriesKey, SeriesPoints, SeriesQuery,
    Storage, StorageError, TagFilter, Tags, TimeRange, WriteBatch,
};

use crate::{Clock, Engine, EngineConfig, WalSync};

mod backfill;
mod compact;
mod delete;
mod edge;
mod fuzz_seeds;
mod idle;

const T0: i64 = 1_700_000_000_000;

fn cfg(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.wal_sync = WalSync::None;
    c.background = false;
    c.clock = Clock::manual(T0);
    c.cache_bytes = 4 << 20;
    c
}

/// [`cfg`] with heads sealed at `seal_points` points.
fn cfg_seal(dir: &Path, seal_points: usize) -> EngineConfig {
    let mut c = cfg(dir);
    c.seal_points = seal_points;
    c
}

fn key(metric: &str, tags: &[(&str, &str)], dt: DataType) -> SeriesKey {
    SeriesKey::new(metric, dt, Tags::from_pairs(tags.iter().copied()))
}

fn dbl(metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[f64]) -> SeriesPoints {
    SeriesPoints {
        key: key(metric, tags, DataType::Double),
        ttl_secs: 0,
        points: Points::Double {
            ts: ts.to_vec(),
            values: v.to_vec(),
        },
    }
}

fn lng(metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[i64]) -> SeriesPoints {
    SeriesPoints {
        key: key(metric, tags, DataType::Long),
        ttl_secs: 0,
        points: Points::Long {
            ts: ts.to_vec(),
            values: v.to_vec(),
        },
    }
}

fn batch(series: Vec<SeriesPoints>) -> WriteBatch {
    WriteBatch { series }
}

/// Writes one series of longs (no TTL) and expects it to be accepted.
fn write_lng(e: &Engine, metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[i64]) {
    e.write(&batch(vec![lng(metric, tags, ts, v)])).unwrap();
}

fn query(metric: &str) -> SeriesQuery {
    SeriesQuery::new(metric, TagFilter::default(), TimeRange::ALL)
}

fn read(e: &Engine, q: &SeriesQuery) -> Vec<SeriesData> {
    e.query(q).unwrap().expect_complete()
}

/// (ts, value) pairs of the only series returned.
fn longs_of(e: &Engine, metric: &str) -> Vec<(i64, i64)> {
    let r = read(e, &query(metric));
    assert_eq!(
        r.len(),
        1,
        "expected one series of {metric}, got {}",
        r.len()
    );
    match &r[0].points {
        Points::Long { ts, values } => ts.iter().copied().zip(values.iter().copied()).collect(),
        p => panic!("not longs: {p:?}"),
    }
}

fn counter(e: &Engine, name: &str) -> u64 {
    e.stats()
        .counters
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .2
}

fn gauge(e: &Engine, name: &str) -> f64 {
    e.stats()
        .gauges
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no gauge {name}"))
        .2
}

impl Engine {
    /// What a killed process leaves behind: background threads stop, nothing is
    /// sealed or synced by us (fjall still hands its journal to the OS on drop).
    fn crash(self) {
        let inner = self.inner();
        inner.stop_background();
        for t in self.threads.lock().drain(..) {
            t.join().unwrap();
        }
        inner.abandon();
        drop(self);
        assert_eq!(
            Arc::strong_count(&inner),
            1,
            "engine internals still shared"
        );
    }

    fn inner(&self) -> Arc<crate::engine::Inner> {
        self.inner.read().clone().expect("engine is open")
    }
}

#[test]
fn write_query_round_trip_all_types() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1.25];
    e.write(&batch(vec![
        dbl("d", &[("h", "a")], &[-5, -1, 0, 7, 9], &specials),
        lng(
            "l",
            &[("h", "a")],
            &[i64::MIN, 0, i64::MAX],
            &[i64::MAX, -1, i64::MIN],
        ),
        SeriesPoints {
            key: key("s", &[("h", "a")], DataType::String),
            ttl_secs: 0,
            points: Points::String {
                ts: vec![3, 1, 2],
                values: vec!["three".into(), "".into(), "zwei ✓".into()],
            },
        },
    ]))
    .unwrap();
    for round in 0..2 {
        let r = read(&e, &query("d"));
        let Points::Double { ts, values } = &r[0].points else {
            panic!("type")
        };
        assert_eq!(ts, &vec![-5, -1, 0, 7, 9]);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(values), bits(&specials), "round {round}");
        assert_eq!(
            longs_of(&e, "l"),
            vec![(i64::MIN, i64::MAX), (0, -1), (i64::MAX, i64::MIN)]
        );
        let r = read(&e, &query("s"));
        assert_eq!(
            r[0].points,
            Points::String {
                ts: vec![1, 2, 3],
                values: vec!["".into(), "zwei ✓".into(), "three".into()]
            }
        );
        // Inclusive range, descending order and per-series limit.
        let mut q = query("d");
        q.range = TimeRange::new(-1, 7);
        let Points::Double { ts, .. } = &read(&e, &q)[0].points else {
            panic!()
        };
        assert_eq!(ts, &vec![-1, 0, 7]);
        q.order = Order::Desc;
        q.limit = Some(2);
        let Points::Double { ts, .. } = &read(&e, &q)[0].points else {
            panic!()
        };
        assert_eq!(ts, &vec![7, 0]);
        q.order = Order::Asc;
        let Points::Double { ts, .. } = &read(&e, &q)[0].points else {
            panic!()
        };
        assert_eq!(ts, &vec![-1, 0]);
        q.range = TimeRange::new(10, 20);
        assert!(
            read(&e, &q).is_empty(),
            "series without points in range are skipped"
        );
        assert!(read(&e, &query("nope")).is_empty());
        e.flush().unwrap(); // second round reads from blocks
    }
    assert!(gauge(&e, "engine_blocks") >= 3.0);
}

/// `max_points` stops a read that matches more points instead of returning them all.
#[test]
fn reads_stop_at_max_points() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    e.write(&batch(vec![
        lng("m", &[("h", "a")], &[1, 2, 3], &[1, 2, 3]),
        lng("m", &[("h", "b")], &[1, 2, 3], &[1, 2, 3]),
    ]))
    .unwrap();
    let q = |max| SeriesQuery {
        max_points: Some(max),
        ..query("m")
    };
    assert_eq!(read(&e, &q(6)).len(), 2);
    match e.query(&q(5)) {
        Err(StorageError::TooManyPoints { limit: 5 }) => {}
        other => panic!("expected TooManyPoints, got {other:?}"),
    }
    // The per-series limit applies first: 2 series × 2 points fit in 4.
    let limited = SeriesQuery {
        limit: Some(2),
        ..q(4)
    };
    assert_eq!(read(&e, &limited).len(), 2);
}

#[test]
fn reads_stop_at_their_work_limit_counting_whole_blocks_and_every_series() {
    use crate::engine::SERIES_WORK;
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    // One block of 1,000 points, then 10 head points after it.
    let sealed: Vec<i64> = (0..1000).map(|i| T0 + i).collect();
    write_lng(&e, "m", &[("h", "a")], &sealed, &sealed);
    e.flush().unwrap();
    let head: Vec<i64> = (1000..1010).map(|i| T0 + i).collect();
    write_lng(&e, "m", &[("h", "a")], &head, &head);
    let limited = |q: &SeriesQuery, limit: u64| SeriesQuery {
        work_limit: Some(limit),
        ..q.clone()
    };
    let stops = |q: &SeriesQuery| match e.query(q) {
        Ok(Read::OverWorkLimit) => {}
        other => panic!("expected OverWorkLimit, got {other:?}"),
    };

    // One point in range still decodes the whole block.
    let one = SeriesQuery {
        range: TimeRange { start: T0, end: T0 },
        ..query("m")
    };
    assert_eq!(read(&e, &limited(&one, SERIES_WORK + 1000)), read(&e, &one));
    assert_eq!(read(&e, &one)[0].points.len(), 1);
    stops(&limited(&one, SERIES_WORK + 999));
    // Head points count too.
    let all = query("m");
    assert_eq!(read(&e, &limited(&all, SERIES_WORK + 1010)), read(&e, &all));
    stops(&limited(&all, SERIES_WORK + 1009));
    // The first-point pushdown decodes the first block.
    let first = SeriesQuery {
        limit: Some(1),
        count_in_range: true,
        ..query("m")
    };
    let edge_reads = counter(&e, "engine_edge_reads_total");
    assert_eq!(
        read(&e, &limited(&first, SERIES_WORK + 1000)),
        read(&e, &first)
    );
    assert_eq!(counter(&e, "engine_edge_reads_total"), edge_reads + 2);
    stops(&limited(&first, SERIES_WORK + 999));

    // Every selected series is charged before any is read.
    let five: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|h| lng("n", &[("h", h)], &[T0], &[1]))
        .collect();
    e.write(&batch(five)).unwrap();
    let read_before = counter(&e, "engine_points_read_total");
    stops(&limited(&query("n"), 5 * SERIES_WORK - 1));
    assert_eq!(counter(&e, "engine_points_read_total"), read_before);
    stops(&limited(&query("n"), 5 * SERIES_WORK + 4));
    assert_eq!(
        read(&e, &limited(&query("n"), 5 * SERIES_WORK + 5)).len(),
        5
    );

    // Two sealed series of 1,000 points: the summaries show 2,000 points in range, so a
    // limit that the first series alone would fit stops before either is read.
    e.write(&batch(vec![
        lng("p", &[("h", "a")], &sealed, &sealed),
        lng("p", &[("h", "b")], &sealed, &sealed),
    ]))
    .unwrap();
    e.flush().unwrap();
    let read_before = counter(&e, "engine_points_read_total");
    stops(&limited(&query("p"), 2 * SERIES_WORK + 1_500));
    assert_eq!(counter(&e, "engine_points_read_total"), read_before);
    assert_eq!(
        read(&e, &limited(&query("p"), 2 * SERIES_WORK + 2_000)).len(),
        2
    );
}

#[test]
fn last_write_wins_across_head_blocks_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    let ts: Vec<i64> = (1..=10).collect();
    write_lng(&e, "m", &[("h", "a")], &ts, &[1; 10]);
    e.flush().unwrap();
    write_lng(&e, "m", &[("h", "a")], &[5, 3, 5], &[2, 3, 22]);
    let want = |five: i64| {
        let mut v: Vec<(i64, i64)> = ts.iter().map(|&t| (t, 1)).collect();
        v[2].1 = 3;
        v[4].1 = five;
        v
    };
    assert_eq!(longs_of(&e, "m"), want(22));
    e.flush().unwrap();
    assert_eq!(
        longs_of(&e, "m"),
        want(22),
        "newer block wins over older block"
    );
    write_lng(&e, "m", &[("h", "a")], &[5], &[4]);
    assert_eq!(longs_of(&e, "m"), want(4), "head wins over blocks");
    e.crash();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(longs_of(&e, "m"), want(4), "same answer after WAL replay");
    write_lng(&e, "m", &[("h", "a")], &[5], &[5]);
    e.close().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(
        longs_of(&e, "m"),
        want(5),
        "same answer after clean restart"
    );
    assert_eq!(
        counter(&e, "engine_wal_replayed_points_total"),
        0,
        "clean close leaves nothing to replay"
    );
}

#[test]
fn out_of_order_batches_are_sorted_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 64);
    let e = Engine::open(c).unwrap();
    // 1000 timestamps in a scrambled order, every one written twice; the second wins.
    let mut ts: Vec<i64> = (0..1000).map(|i| (i * 7919) % 1000).collect();
    for chunk in ts.chunks(100) {
        let v: Vec<i64> = chunk.iter().map(|t| -t).collect();
        write_lng(&e, "m", &[], chunk, &v);
    }
    ts.reverse();
    for chunk in ts.chunks(37) {
        write_lng(&e, "m", &[], chunk, chunk);
        e.run_maintenance().unwrap();
    }
    let got = longs_of(&e, "m");
    assert_eq!(got.len(), 1000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &(t, v))| t == i as i64 && v == t));
    assert!(counter(&e, "engine_seals_total") > 1);
    // Range reads across many overlapping blocks, then (after a flush) disjoint ones.
    for flushed in [false, true] {
        if flushed {
            e.flush().unwrap();
        }
        let mut q = query("m");
        q.range = TimeRange::new(100, 899);
        let r = read(&e, &q);
        let Points::Long { ts, values } = &r[0].points else {
            panic!()
        };
        assert_eq!(ts, &(100..=899).collect::<Vec<i64>>(), "flushed: {flushed}");
        assert_eq!(ts, values);
    }
}

#[test]
fn reopen_after_close_and_after_crash_with_blocks_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 500);
    let e = Engine::open(c.clone()).unwrap();
    let mut expect = Vec::new();
    for b in 0..20 {
        let ts: Vec<i64> = (0..250).map(|i| T0 + (b * 250 + i) * 10_000).collect();
        let v: Vec<f64> = ts.iter().map(|&t| (t % 997) as f64 / 4.0).collect();
        expect.extend(ts.iter().copied().zip(v.iter().copied()));
        e.write(&batch(vec![dbl("cpu", &[("host", "a")], &ts, &v)]))
            .unwrap();
        e.run_maintenance().unwrap();
    }
    let ts: Vec<i64> = (0..100).map(|i| T0 + (5000 + i) * 10_000).collect();
    let v = vec![0.5; 100];
    expect.extend(ts.iter().copied().zip(v.iter().copied()));
    e.write(&batch(vec![dbl("cpu", &[("host", "a")], &ts, &v)]))
        .unwrap();
    assert!(gauge(&e, "engine_blocks") >= 5.0, "most points sealed");
    assert!(
        gauge(&e, "engine_head_points") > 0.0,
        "some points still in the head"
    );
    let check = |e: &Engine| {
        let r = read(e, &query("cpu"));
        let Points::Double { ts, values } = &r[0].points else {
            panic!()
        };
        let got: Vec<(i64, f64)> = ts.iter().copied().zip(values.iter().copied()).collect();
        assert_eq!(got, expect);
    };
    check(&e);
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    check(&e);
    assert!(counter(&e, "engine_wal_replayed_points_total") > 0);
    assert!(
        counter(&e, "engine_wal_replayed_points_total") < 5000,
        "points already in durable blocks are skipped on replay"
    );
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    check(&e);
    assert_eq!(counter(&e, "engine_wal_replayed_points_total"), 0);
}

#[test]
fn torn_wal_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[1, 2], &[1, 2]);
    write_lng(&e, "m", &[], &[3], &[3]);
    e.crash();
    let wal_dir = dir.path().join("wal");
    let last = crate::wal::list_segments(&wal_dir).unwrap().pop().unwrap();
    let path = wal_dir.join(crate::wal::segment_file_name(last));
    let mut data = std::fs::read(&path).unwrap();
    let good = data.len();
    data.truncate(good - 3); // tear the last record
    data.extend_from_slice(&[0x55; 11]);
    std::fs::write(&path, &data).unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(1, 1), (2, 2)]);
    assert!(counter(&e, "engine_wal_truncated_bytes_total") > 0);
    // The engine keeps working and the next restart is clean.
    write_lng(&e, "m", &[], &[4], &[4]);
    e.crash();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(1, 1), (2, 2), (4, 4)]);
    assert_eq!(counter(&e, "engine_wal_truncated_bytes_total"), 0);
}

#[test]
fn delete_removes_only_matching_points_and_empties_listings() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    let ts: Vec<i64> = (1..=10).collect();
    e.write(&batch(vec![
        lng("m", &[("host", "a")], &ts, &ts),
        lng("m", &[("host", "b")], &ts, &ts),
        lng("other", &[("host", "a")], &ts, &ts),
    ]))
    .unwrap();
    e.flush().unwrap();
    // Some of host=a in blocks, some in the head.
    write_lng(&e, "m", &[("host", "a")], &[11, 12], &[11, 12]);
    let del = |f: TagFilter, range| DeleteRequest {
        metric: "m".into(),
        filter: f,
        range,
        shard: None,
        exact: false,
    };
    let n = e
        .delete(&del(
            TagFilter::from_pairs(&[("host", &["a"])]),
            TimeRange::new(3, 11),
        ))
        .unwrap();
    assert_eq!(n, 1);
    let only = |host: &str| {
        let mut q = query("m");
        q.filter = TagFilter::from_pairs(&[("host", &[host])]);
        let r = read(&e, &q);
        let Points::Long { ts, .. } = &r[0].points else {
            panic!()
        };
        ts.clone()
    };
    assert_eq!(only("a"), vec![1, 2, 12]);
    assert_eq!(only("b"), ts, "other series untouched");
    assert_eq!(longs_of(&e, "other").len(), 10, "other metric untouched");
    assert_eq!(
        e.delete(&del(
            TagFilter::from_pairs(&[("host", &["a"])]),
            TimeRange::new(3, 11)
        ))
        .unwrap(),
        0
    );
    // Delete the rest of host=a by regex: it leaves every listing.
    let n = e
        .delete(&del(
            TagFilter::from_pairs(&[("host", &["regex:a|zz"])]),
            TimeRange::ALL,
        ))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(read(&e, &query("m")).len(), 1);
    let keys = e
        .series_keys("m", &TagFilter::default(), TimeRange::ALL)
        .unwrap();
    assert_eq!(keys, vec![key("m", &[("host", "b")], DataType::Long)]);
    assert_eq!(
        e.tag_values().unwrap(),
        vec!["a", "b"],
        "'a' is still used by metric other"
    );
    e.delete(&DeleteRequest {
        metric: "other".into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    })
    .unwrap();
    assert_eq!(e.metric_names(None).unwrap(), vec!["m"]);
    assert_eq!(e.tag_values().unwrap(), vec!["b"]);
    // Deleted points stay deleted after WAL replay and after a clean restart.
    e.crash();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(e.metric_names(None).unwrap(), vec!["m"]);
    let r = read(&e, &query("m"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].key.tags.get("host"), Some("b"));
    e.close().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(read(&e, &query("m")).len(), 1);
    assert!(read(&e, &query("other")).is_empty());
}

#[test]
fn points_written_after_a_delete_survive_its_replay() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[1, 2, 3], &[1, 2, 3]);
    e.flush().unwrap();
    e.delete(&DeleteRequest {
        metric: "m".into(),
        filter: TagFilter::default(),
        range: TimeRange::new(2, 3),
        shard: None,
        exact: false,
    })
    .unwrap();
    write_lng(&e, "m", &[], &[2, 4], &[20, 40]);
    // Seal the new points into a block without deleting the WAL (the delete
    // record stays in the log and is replayed).
    {
        let i = e.inner();
        let _m = i.maint.lock();
        i.seal_all_locked().unwrap();
    }
    write_lng(&e, "m", &[], &[3], &[30]);
    e.crash();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(1, 1), (2, 20), (3, 30), (4, 40)]);
}

#[test]
fn ttl_hides_then_retention_removes_expired_points() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let clock = c.clock.clone();
    let e = Engine::open(c.clone()).unwrap();
    let mut short = lng("ttl", &[("k", "short")], &[1, 2, 3], &[1, 2, 3]);
    short.ttl_secs = 10;
    let mut mixed_a = lng("mix", &[], &[1, 2], &[1, 2]);
    mixed_a.ttl_secs = 10;
    let mut mixed_b = lng("mix", &[], &[3, 4], &[3, 4]);
    mixed_b.ttl_secs = 100;
    e.write(&batch(vec![
        short,
        mixed_a,
        mixed_b,
        lng("keep", &[], &[1], &[1]),
    ]))
    .unwrap();
    e.flush().unwrap();
    let mut still = lng("ttl", &[("k", "short")], &[4], &[4]);
    still.ttl_secs = 10;
    e.write(&batch(vec![still])).unwrap(); // stays in the head
    assert_eq!(longs_of(&e, "ttl").len(), 4);
    let blocks_before = gauge(&e, "engine_blocks");
    clock.advance(Duration::from_secs(10));
    assert!(
        read(&e, &query("ttl")).is_empty(),
        "expired points are never returned"
    );
    assert_eq!(longs_of(&e, "mix"), vec![(3, 3), (4, 4)]);
    assert_eq!(longs_of(&e, "keep"), vec![(1, 1)]);
    e.run_retention().unwrap();
    assert!(!e.metric_names(None).unwrap().contains(&"ttl".to_string()));
    assert!(!e.tag_names().unwrap().contains(&"k".to_string()));
    assert_eq!(
        gauge(&e, "engine_blocks"),
        blocks_before - 1.0,
        "the all-expired block is dropped"
    );
    assert_eq!(
        counter(&e, "engine_points_expired_total"),
        5,
        "3 dropped + 2 rewritten away"
    );
    assert_eq!(longs_of(&e, "mix"), vec![(3, 3), (4, 4)]);
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
    // The expiry outlives a restart (it is stored absolute in WAL and blocks).
    e.close().unwrap();
    let e = Engine::open(c.clone()).unwrap();
    assert!(read(&e, &query("ttl")).is_empty());
    clock.advance(Duration::from_secs(100));
    assert!(read(&e, &query("mix")).is_empty());
    e.run_retention().unwrap();
    assert_eq!(e.metric_names(None).unwrap(), vec!["keep"]);
    drop(e);
    // default_ttl_secs applies to points written with ttl 0.
    let mut c2 = c;
    c2.default_ttl_secs = 5;
    let e = Engine::open(c2).unwrap();
    write_lng(&e, "dflt", &[], &[1], &[1]);
    assert_eq!(longs_of(&e, "dflt").len(), 1);
    clock.advance(Duration::from_secs(5));
    assert!(read(&e, &query("dflt")).is_empty());
}

#[test]
fn backpressure_refuses_whole_write_until_memory_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.max_head_bytes = 20_000;
    let e = Engine::open(c).unwrap();
    // Uneven steps: evenly spaced timestamps would cost the head no memory.
    let ts: Vec<i64> = (0..2000).map(|i| i * i).collect();
    // Below the bound when it starts: accepted even though it overshoots.
    write_lng(&e, "m", &[("h", "a")], &ts, &ts);
    assert!(gauge(&e, "engine_head_bytes") > 20_000.0);
    let refused = batch(vec![lng("m", &[("h", "b")], &[1], &[1])]);
    {
        // Sealing is impossible while maintenance holds its lock.
        let i = e.inner();
        let _m = i.maint.lock();
        let err = e.write(&refused).unwrap_err();
        assert!(matches!(
            err,
            StorageError::Backpressure {
                retry_after_secs: 1
            }
        ));
    }
    assert_eq!(counter(&e, "engine_backpressure_total"), 1);
    assert_eq!(
        read(&e, &query("m")).len(),
        1,
        "nothing of the refused batch was written"
    );
    assert!(e
        .series_keys(
            "m",
            &TagFilter::from_pairs(&[("h", &["b"])]),
            TimeRange::ALL
        )
        .unwrap()
        .is_empty());
    // Next write seals the big head first and goes through.
    e.write(&refused).unwrap();
    assert!(gauge(&e, "engine_head_bytes") <= 20_000.0);
    assert_eq!(read(&e, &query("m")).len(), 2);
}

#[test]
fn injected_wal_failure_poisons_writes_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[1], &[1]);
    e.inner().wal.lock().fail_next = true;
    let err = e
        .write(&batch(vec![lng("m", &[], &[2], &[2])]))
        .unwrap_err();
    assert!(matches!(err, StorageError::Poisoned(ref m) if m.contains("injected")));
    e.inner().wal.lock().fail_next = false;
    let err = e
        .write(&batch(vec![lng("m", &[], &[3], &[3])]))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Poisoned(_)),
        "stays poisoned: {err:?}"
    );
    assert!(matches!(
        e.delete(&DeleteRequest {
            metric: "m".into(),
            filter: TagFilter::default(),
            range: TimeRange::ALL,
            shard: None,
            exact: false,
        }),
        Err(StorageError::Poisoned(_))
    ));
    let h = e.health();
    assert!(!h.ok);
    assert!(h.detail.contains("injected"));
    assert_eq!(longs_of(&e, "m"), vec![(1, 1)]);
    assert_eq!(gauge(&e, "engine_poisoned"), 1.0);
    assert!(matches!(e.close(), Err(StorageError::Poisoned(_))));
    drop(e);
    // A restart recovers from the WAL.
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert!(e.health().ok);
    assert_eq!(longs_of(&e, "m"), vec![(1, 1)]);
}

#[test]
fn invalid_input_and_closed_engine() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    let mut bad = lng("m", &[], &[1], &[1]);
    bad.key.data_type = DataType::Double;
    assert!(matches!(
        e.write(&batch(vec![bad])),
        Err(StorageError::InvalidInput(_))
    ));
    let uneven = SeriesPoints {
        key: key("m", &[], DataType::Long),
        ttl_secs: 0,
        points: Points::Long {
            ts: vec![1, 2],
            values: vec![1],
        },
    };
    assert!(matches!(
        e.write(&batch(vec![uneven])),
        Err(StorageError::InvalidInput(_))
    ));
    assert!(matches!(
        e.write(&batch(vec![lng("", &[], &[1], &[1])])),
        Err(StorageError::InvalidInput(_))
    ));
    assert!(
        e.metric_names(None).unwrap().is_empty(),
        "rejected batches write nothing"
    );
    e.write(&WriteBatch::default()).unwrap();
    e.close().unwrap();
    e.close().unwrap();
    assert!(matches!(
        e.write(&batch(vec![lng("m", &[], &[1], &[1])])),
        Err(StorageError::Closed)
    ));
    assert!(matches!(e.query(&query("m")), Err(StorageError::Closed)));
    assert!(!e.health().ok);
    let c = cfg_seal(dir.path(), 0);
    assert!(matches!(
        Engine::open(c),
        Err(StorageError::InvalidInput(_))
    ));
}

#[test]
fn listings_prefix_and_series_keys_range() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    e.write(&batch(vec![
        lng("sys.cpu", &[("host", "a"), ("dc", "x")], &[100], &[1]),
        lng("sys.cpu", &[("host", "b"), ("dc", "y")], &[200], &[1]),
        lng("sys.mem", &[("host", "a")], &[100], &[1]),
        lng("app.req", &[("svc", "api")], &[100], &[1]),
    ]))
    .unwrap();
    assert_eq!(
        e.metric_names(None).unwrap(),
        vec!["app.req", "sys.cpu", "sys.mem"]
    );
    assert_eq!(
        e.metric_names(Some("sys.")).unwrap(),
        vec!["sys.cpu", "sys.mem"]
    );
    assert_eq!(e.metric_names(Some("sys.c")).unwrap(), vec!["sys.cpu"]);
    assert!(e.metric_names(Some("zzz")).unwrap().is_empty());
    assert_eq!(e.tag_names().unwrap(), vec!["dc", "host", "svc"]);
    assert_eq!(e.tag_values().unwrap(), vec!["a", "api", "b", "x", "y"]);
    let keys = |f: TagFilter, r| e.series_keys("sys.cpu", &f, r).unwrap();
    assert_eq!(keys(TagFilter::default(), TimeRange::ALL).len(), 2);
    assert_eq!(
        keys(TagFilter::default(), TimeRange::new(150, 300)).len(),
        1
    );
    assert_eq!(
        keys(
            TagFilter::from_pairs(&[("dc", &["regex:x|y"]), ("host", &["b"])]),
            TimeRange::ALL
        )
        .len(),
        1
    );
    e.flush().unwrap();
    assert_eq!(
        keys(TagFilter::default(), TimeRange::new(0, 150)).len(),
        1,
        "answered from block bounds"
    );
}

#[test]
fn small_seals_append_merge_into_the_newest_block() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 100);
    let e = Engine::open(c).unwrap();
    for i in 0..8 {
        let ts: Vec<i64> = (i * 10..i * 10 + 10).collect();
        write_lng(&e, "m", &[], &ts, &ts);
        e.flush().unwrap();
        assert_eq!(gauge(&e, "engine_blocks"), 1.0, "after seal {i}");
    }
    let got = longs_of(&e, "m");
    assert_eq!(got.len(), 80);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &(t, v))| t == i as i64 && v == t));
}

#[test]
fn wal_stays_bounded_and_checkpoints_delete_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.wal_segment_bytes = 32 << 10;
    c.wal_max_bytes = 128 << 10;
    c.seal_points = 100_000; // only the WAL bound forces seals
    let e = Engine::open(c.clone()).unwrap();
    let mut max_wal = 0.0f64;
    for b in 0..200i64 {
        let series: Vec<SeriesPoints> = (0..10)
            .map(|s| {
                let ts: Vec<i64> = (0..20).map(|i| b * 20 + i).collect();
                let host = format!("h{s}");
                let v: Vec<f64> = ts.iter().map(|&t| t as f64 * 0.5).collect();
                dbl("m", &[("host", host.as_str())], &ts, &v)
            })
            .collect();
        e.write(&batch(series)).unwrap();
        e.run_maintenance().unwrap();
        max_wal = max_wal.max(gauge(&e, "engine_wal_bytes"));
    }
    assert!(counter(&e, "engine_wal_segments_removed_total") > 0);
    assert!(counter(&e, "engine_forced_seals_total") > 0);
    assert!(
        max_wal <= (128 + 32 + 8) as f64 * 1024.0,
        "WAL peaked at {max_wal} bytes"
    );
    let check = |e: &Engine| {
        let r = read(e, &query("m"));
        assert_eq!(r.len(), 10);
        for s in &r {
            let Points::Double { ts, values } = &s.points else {
                panic!()
            };
            assert_eq!(ts.len(), 4000);
            assert!(ts.iter().zip(values).all(|(&t, &v)| v == t as f64 * 0.5));
        }
    };
    check(&e);
    e.crash();
    let e = Engine::open(c).unwrap();
    check(&e);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg_seal(dir.path(), 300);
    c.background = true;
    c.maintenance_interval = Duration::from_millis(5);
    c.wal_sync = WalSync::Interval(Duration::from_millis(5));
    let e = Arc::new(Engine::open(c.clone()).unwrap());
    let threads = 4i64;
    let per = 60i64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for b in 0..per {
                    let mut series = Vec::new();
                    for s in 0..5 {
                        let host = format!("t{t}s{s}");
                        let ts: Vec<i64> = (0..20).map(|i| b * 20 + i).collect();
                        series.push(lng("own", &[("host", host.as_str())], &ts, &ts));
                    }
                    // A shared series: each thread owns residue t of the timestamps.
                    let ts: Vec<i64> = (0..20).map(|i| (b * 20 + i) * threads + t).collect();
                    series.push(lng("shared", &[], &ts, &ts));
                    e.write(&batch(series)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let check = |e: &Engine| {
        let own = read(e, &query("own"));
        assert_eq!(own.len(), (threads * 5) as usize);
        for s in &own {
            assert_eq!(s.points.len(), (per * 20) as usize, "{}", s.key);
        }
        let shared = longs_of(e, "shared");
        assert_eq!(shared.len(), (threads * per * 20) as usize);
        assert!(shared
            .iter()
            .enumerate()
            .all(|(i, &(t, v))| t == i as i64 && v == t));
    };
    check(&e);
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&e, "engine_wal_fsyncs_total") == 0 {
        assert!(Instant::now() < deadline, "interval sync never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let e = Arc::try_unwrap(e).ok().expect("sole owner");
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    check(&e);
}

#[test]
fn always_sync_fsyncs_before_acknowledging() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.wal_sync = WalSync::Always;
    let e = Engine::open(c).unwrap();
    for i in 0..3 {
        write_lng(&e, "m", &[], &[i], &[i]);
    }
    assert_eq!(counter(&e, "engine_wal_fsyncs_total"), 3);
    e.sync().unwrap();
}

#[test]
fn stats_expose_the_documented_figures() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[1, 2, 3], &[1, 2, 3]);
    assert_eq!(counter(&e, "engine_points_written_total"), 3);
    assert_eq!(counter(&e, "engine_series_created_total"), 1);
    assert!(counter(&e, "engine_wal_bytes_written_total") > 0);
    assert_eq!(gauge(&e, "engine_head_points"), 3.0);
    assert_eq!(gauge(&e, "engine_series"), 1.0);
    assert_eq!(gauge(&e, "engine_wal_segments"), 1.0);
    e.flush().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
    assert_eq!(gauge(&e, "engine_blocks"), 1.0);
    // The 7-byte fixed header, 6 bytes of varints and pco's value column.
    assert!(gauge(&e, "engine_block_bytes") > 13.0);
    assert_eq!(counter(&e, "engine_points_sealed_total"), 3);
    let names: Vec<&str> = e.stats().counters.iter().map(|c| c.0).collect();
    let mut dedup = names.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(names.len(), dedup.len(), "metric names are unique");
    let _ = Ordering::Relaxed;
}

/// Replay speed: 10 M double points (TSBS-like: 1000 series, 10 s spacing) left in
/// the WAL, then reopened. Run with
/// `cargo test -p kairosdb-engine --release -- --ignored --nocapture replay_speed`.
#[test]
#[ignore]
fn replay_speed_10m_points() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg_seal(dir.path(), 1 << 21); // keep everything in the WAL and head
    c.wal_max_bytes = u64::MAX;
    c.max_head_bytes = u64::MAX;
    let e = Engine::open(c.clone()).unwrap();
    let series = 1000;
    let per_batch = 100;
    let total = 10_000_000i64;
    let rounds = total / (series * per_batch);
    let t = Instant::now();
    for r in 0..rounds {
        let mut b = Vec::with_capacity(100);
        for s0 in (0..series).step_by(100) {
            b.clear();
            for s in s0..s0 + 100 {
                let host = format!("host_{s}");
                let ts: Vec<i64> = (0..per_batch)
                    .map(|i| T0 + (r * per_batch + i) * 10_000)
                    .collect();
                let v: Vec<f64> = ts
                    .iter()
                    .map(|&x| ((x / 10_000 + s) % 10_000) as f64 / 100.0)
                    .collect();
                b.push(dbl("cpu.usage_user", &[("host", host.as_str())], &ts, &v));
            }
            e.write(&batch(std::mem::take(&mut b))).unwrap();
        }
    }
    let w = t.elapsed();
    let wal = gauge(&e, "engine_wal_bytes");
    e.crash();
    let t = Instant::now();
    let e = Engine::open(c).unwrap();
    let r = t.elapsed();
    let pts = counter(&e, "engine_wal_replayed_points_total");
    eprintln!(
        "wrote {total} points in {w:?}; WAL {:.1} MiB ({:.2} B/pt); replayed {pts} points in {r:?} ({:.1} M pts/s)",
        wal / 1048576.0,
        wal / total as f64,
        pts as f64 / r.as_secs_f64() / 1e6
    );
    assert_eq!(pts, total as u64);
    assert!(r < Duration::from_secs(5), "replay took {r:?}");
}

#[test]
fn range_reads_trim_disjoint_blocks_on_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 10);
    let e = Engine::open(c).unwrap();
    for b in 0..10i64 {
        let ts: Vec<i64> = (b * 10..b * 10 + 10).collect();
        let v: Vec<f64> = ts.iter().map(|&t| t as f64).collect();
        e.write(&batch(vec![dbl("m", &[], &ts, &v)])).unwrap();
        e.flush().unwrap();
    }
    assert_eq!(gauge(&e, "engine_blocks"), 10.0);
    e.write(&batch(vec![dbl("m", &[], &[100, 101], &[100.0, 101.0])]))
        .unwrap();
    for (lo, hi) in [(15, 84), (0, 9), (9, 10), (95, 100), (-5, 200), (42, 42)] {
        let mut q = query("m");
        q.range = TimeRange::new(lo, hi);
        let r = read(&e, &q);
        let Points::Double { ts, values } = &r[0].points else {
            panic!()
        };
        let want: Vec<i64> = (lo.max(0)..=hi.min(101)).collect();
        assert_eq!(ts, &want, "range {lo}..={hi}");
        assert!(ts.iter().zip(values).all(|(&t, &v)| v == t as f64));
    }
}

/// Disk actually allocated (not apparent length: fjall preallocates its journal
/// sparsely) for 2 M TSBS-like random-walk points (100 series, 10 s spacing,
/// 2 decimals) after a clean close. Filesystem-dependent, hence ignored; run with
/// `cargo test -p kairosdb-engine --profile bench -- --ignored --nocapture disk_usage`.
#[test]
#[ignore]
#[cfg(unix)]
fn disk_usage_random_walk() {
    use rand::{Rng, SeedableRng};
    use std::os::unix::fs::MetadataExt;
    fn allocated(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    allocated(&e.path())
                } else {
                    m.blocks() * 512
                }
            })
            .sum()
    }
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut level = vec![50.0f64; 100];
    let total = 2_000_000f64;
    for r in 0..200i64 {
        let series: Vec<SeriesPoints> = (0..100)
            .map(|h| {
                let host = format!("host_{h}");
                let ts: Vec<i64> = (0..100).map(|i| T0 + (r * 100 + i) * 10_000).collect();
                let v: Vec<f64> = ts
                    .iter()
                    .map(|_| {
                        let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                        level[h] +=
                            0.5 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                        (level[h] * 100.0).round() / 100.0
                    })
                    .collect();
                dbl("m", &[("host", host.as_str())], &ts, &v)
            })
            .collect();
        e.write(&batch(series)).unwrap();
        e.run_maintenance().unwrap();
    }
    let encoded = gauge(&e, "engine_block_bytes");
    e.close().unwrap();
    drop(e);
    let on_disk = allocated(dir.path()) as f64;
    eprintln!(
        "random walk: blocks {:.3} B/pt, whole data dir after close {:.3} B/pt",
        encoded / total,
        on_disk / total
    );
    assert!(on_disk / total <= 1.5, "{} B/pt on disk", on_disk / total);
}

#[test]
fn new_wal_positions_sort_after_sealed_ones_even_if_wal_dir_was_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    for i in 0..5 {
        write_lng(&e, "m", &[], &[i], &[i]);
        e.flush().unwrap(); // each flush rotates: segment numbers climb
    }
    e.close().unwrap();
    drop(e);
    let wal_dir = dir.path().join("wal");
    for no in crate::wal::list_segments(&wal_dir).unwrap() {
        std::fs::remove_file(wal_dir.join(crate::wal::segment_file_name(no))).unwrap();
    }
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[10], &[10]);
    e.crash();
    let e = Engine::open(cfg(dir.path())).unwrap();
    assert_eq!(
        longs_of(&e, "m").len(),
        6,
        "the point written after the wipe is replayed"
    );
}

#[test]
fn big_replayed_heads_are_sealed_by_the_next_maintenance_pass() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 10);
    let e = Engine::open(c.clone()).unwrap();
    let ts: Vec<i64> = (0..25).collect();
    write_lng(&e, "m", &[], &ts, &ts);
    e.crash();
    let e = Engine::open(c).unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 25.0);
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
    assert_eq!(
        gauge(&e, "engine_blocks"),
        2.0,
        "25 points, at most 20 per block"
    );
    assert_eq!(longs_of(&e, "m").len(), 25);
}

/// Parallel writers deliver a series' batches a little out of time order. A full
/// head written that way keeps its newest points unsealed, so the stragglers join
/// the head instead of reaching back into a sealed block: no block is ever
/// rewritten, nothing is lost across a crash, and the WAL still shrinks.
#[test]
fn lateness_window_keeps_stragglers_out_of_sealed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // A window of 7 points; seals fall between a chunk and its straggler.
    let mut c = cfg_seal(dir.path(), 63);
    c.wal_segment_bytes = 4 << 10;
    // Only the seal's own fsync runs (no background sync thread in tests).
    c.wal_sync = WalSync::Interval(Duration::from_secs(3600));
    let e = Engine::open(c.clone()).unwrap();
    let series = ["a", "b"];
    // Chunks of 3 points, each group of 4 chunks delivered as 1, 0, 3, 2: a chunk is
    // at most 3 points late, inside the window.
    let mut expect = Vec::new();
    for group in 0..60i64 {
        for k in [1, 0, 3, 2] {
            let start = (group * 4 + k) * 3;
            let ts: Vec<i64> = (start..start + 3).collect();
            let writes = series
                .iter()
                .map(|h| lng("m", &[("h", h)], &ts, &ts))
                .collect();
            e.write(&batch(writes)).unwrap();
            e.run_maintenance().unwrap();
        }
        expect.extend((group * 12..group * 12 + 12).map(|t| (t, t)));
    }
    let read_all = |e: &Engine| {
        let r = read(e, &query("m"));
        assert_eq!(r.len(), 2);
        r.iter()
            .map(|s| {
                let Points::Long { ts, values } = &s.points else {
                    panic!("type")
                };
                ts.iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert!(counter(&e, "engine_seals_total") >= 10);
    assert_eq!(
        counter(&e, "engine_blocks_removed_total"),
        0,
        "no block rewritten"
    );
    for s in e.inner().registry.all() {
        assert!(s.summary.lock().disjoint, "no straggler overlaps a block");
    }
    assert!(
        gauge(&e, "engine_head_points") >= 2.0 * 7.0,
        "windows stay in the head"
    );
    assert!(
        counter(&e, "engine_wal_fsyncs_total") > 0,
        "windows fsynced before sealing"
    );
    assert!(counter(&e, "engine_wal_segments_removed_total") > 0);
    assert_eq!(read_all(&e), vec![expect.clone(), expect.clone()]);
    // The windows survive a crash after the segments that first held them are gone.
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(read_all(&e), vec![expect.clone(), expect.clone()]);
    assert!(counter(&e, "engine_wal_replayed_points_total") < 200);
    e.close().unwrap();
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(read_all(&e), vec![expect.clone(), expect]);
    // A head written in time order is sealed whole.
    e.flush().unwrap();
    let ts: Vec<i64> = (1000..1064).collect();
    write_lng(&e, "m", &[("h", "a")], &ts, &ts);
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
}

/// `compression_level` applies to the blocks written from then on: the same points take
/// fewer bytes at level 8 than at 0, and blocks of both levels read back after reopening
/// at a third.
#[test]
fn blocks_keep_their_compression_level_across_reopens_at_other_levels() {
    let dir = tempfile::tempdir().unwrap();
    let at = |level| {
        let mut c = cfg_seal(dir.path(), 256);
        c.compression_level = level;
        c
    };
    // Mostly small steps, now and then a large one: entropy coding (level > 0) pays.
    let mut seed = 7u64;
    let mut x = 0i64;
    let vals: Vec<i64> = (0..512)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (seed >> 33) as i64;
            x += if r % 10 == 0 { r % 100_000 } else { r % 3 - 1 };
            x
        })
        .collect();
    let ts: Vec<i64> = (0..512).map(|i| T0 + i * 10_000).collect();
    let expect: Vec<(i64, i64)> = ts.iter().copied().zip(vals.iter().copied()).collect();
    let mut bytes = Vec::new();
    for (level, metric) in [(0, "m0"), (8, "m8")] {
        let e = Engine::open(at(level)).unwrap();
        let before = gauge(&e, "engine_block_bytes");
        write_lng(&e, metric, &[("h", "a")], &ts, &vals);
        e.flush().unwrap();
        bytes.push(gauge(&e, "engine_block_bytes") - before);
        e.close().unwrap();
    }
    assert!(
        bytes[1] < bytes[0] * 0.9,
        "level 8 blocks take {} bytes, level 0 {}",
        bytes[1],
        bytes[0]
    );
    let e = Engine::open(at(3)).unwrap();
    assert_eq!(longs_of(&e, "m0"), expect);
    assert_eq!(longs_of(&e, "m8"), expect);
}

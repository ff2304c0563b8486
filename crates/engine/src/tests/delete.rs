//! Delete semantics (spec §1.8, §1.9, §1.10; user-needs: kairosdb#446, #509, #111):
//! exactly the selected points go, in the head, in blocks, in blocks straddling the
//! range and after WAL replay; emptied series and metrics leave every listing, also
//! after a restart; boundary blocks are the only ones decoded and re-encoded.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn del(metric: &str, f: TagFilter, range: TimeRange) -> DeleteRequest {
    DeleteRequest {
        metric: metric.into(),
        filter: f,
        range,
        shard: None,
        exact: false,
    }
}

/// Timestamps of the only series matching `tags` exactly (empty when none).
fn ts_of(e: &Engine, metric: &str, tags: &[(&str, &str)]) -> Vec<i64> {
    let want = key(metric, tags, DataType::Long);
    read(e, &query(metric))
        .into_iter()
        .find(|s| *s.key == want)
        .map(|s| s.points.timestamps().to_vec())
        .unwrap_or_default()
}

/// Copies a directory tree (a snapshot of `db/` standing in for what fjall had made
/// durable at that moment). Trailing zeros are recreated as a sparse tail: fjall
/// preallocates a 64 MiB journal, and writing it out in full makes tests slow.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            let data = std::fs::read(entry.path()).unwrap();
            let used = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            std::fs::write(&target, &data[..used]).unwrap();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .unwrap();
            f.set_len(data.len() as u64).unwrap();
        }
    }
}

/// Replaces `dir/db` by `snapshot`: fjall lost every write made after the snapshot,
/// which is what a `kill -9` does to writes still in fjall's journal buffer.
fn roll_back_fjall(dir: &Path, snapshot: &Path) {
    let db = dir.join("db");
    std::fs::remove_dir_all(&db).unwrap();
    copy_dir(snapshot, &db);
}

// ---------------------------------------------------------------------------
// A model-checked random walk: writes, seals, deletes, crashes and restarts
// ---------------------------------------------------------------------------

const METRICS: [&str; 2] = ["m", "n"];

/// Tag sets of the series; some lack `dc`, one has no tags, "ab" tests that a
/// regex `a` must match the whole value.
const TAG_SETS: [&[(&str, &str)]; 8] = [
    &[("host", "a")],
    &[("host", "b")],
    &[("host", "ab")],
    &[("host", "a"), ("dc", "x")],
    &[("host", "b"), ("dc", "y")],
    &[("host", "c"), ("dc", "x")],
    &[("dc", "x")],
    &[],
];

/// Filters a delete may use: exact, OR across values, AND across names, regexes that
/// must match whole values, a tag some series lack, and filters matching nothing.
const FILTERS: [&[(&str, &[&str])]; 12] = [
    &[],
    &[("host", &["a"])],
    &[("host", &["a", "b"])],
    &[("host", &["regex:a"])],
    &[("host", &["regex:a.*"])],
    &[("host", &["regex:b", "c"])],
    &[("host", &["a"]), ("dc", &["x"])],
    &[("dc", &["x"])],
    &[("dc", &["regex:.*"])],
    &[("host", &["regex:.*"]), ("dc", &["y", "x"])],
    &[("host", &["zzz"])],
    &[("nope", &["a"])],
];

#[derive(Default)]
struct Model {
    series: BTreeMap<SeriesKey, BTreeMap<i64, i64>>,
}

impl Model {
    fn write(&mut self, k: &SeriesKey, ts: &[i64], v: &[i64]) {
        let s = self.series.entry(k.clone()).or_default();
        for (&t, &x) in ts.iter().zip(v) {
            s.insert(t, x);
        }
    }

    /// Applies a delete; returns how many series lost a point.
    fn delete(&mut self, r: &DeleteRequest) -> u64 {
        let mut touched = 0;
        for (k, pts) in &mut self.series {
            if k.metric != r.metric || !r.filter.matches(&k.tags) {
                continue;
            }
            let before = pts.len();
            pts.retain(|&t, _| !r.range.contains(t));
            touched += u64::from(pts.len() != before);
        }
        touched
    }

    fn live(&self) -> impl Iterator<Item = (&SeriesKey, &BTreeMap<i64, i64>)> {
        self.series.iter().filter(|(_, p)| !p.is_empty())
    }

    /// Compares every query and listing of the engine with the model.
    fn check(&self, e: &Engine, ctx: &str) {
        for metric in METRICS {
            let mut got: Vec<(SeriesKey, Vec<(i64, i64)>)> = read(e, &query(metric))
                .into_iter()
                .map(|s| {
                    let Points::Long { ts, values } = s.points else {
                        panic!("{ctx}: not longs")
                    };
                    ((*s.key).clone(), ts.into_iter().zip(values).collect())
                })
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let want: Vec<(SeriesKey, Vec<(i64, i64)>)> = self
                .live()
                .filter(|(k, _)| k.metric == metric)
                .map(|(k, p)| (k.clone(), p.iter().map(|(&t, &v)| (t, v)).collect()))
                .collect();
            assert_eq!(got, want, "{ctx}: points of {metric}");
            let mut keys = e
                .series_keys(metric, &TagFilter::default(), TimeRange::ALL)
                .unwrap();
            keys.sort();
            let want_keys: Vec<SeriesKey> = want.iter().map(|w| w.0.clone()).collect();
            assert_eq!(keys, want_keys, "{ctx}: series_keys of {metric}");
        }
        let names: Vec<String> = self
            .live()
            .map(|(k, _)| k.metric.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(e.metric_names(None).unwrap(), names, "{ctx}: metric_names");
        let tag_names: Vec<String> = self
            .live()
            .flat_map(|(k, _)| k.tags.iter().map(|(n, _)| n.to_string()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(e.tag_names().unwrap(), tag_names, "{ctx}: tag_names");
        let tag_values: Vec<String> = self
            .live()
            .flat_map(|(k, _)| k.tags.iter().map(|(_, v)| v.to_string()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(e.tag_values().unwrap(), tag_values, "{ctx}: tag_values");
    }
}

fn random_walk(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 8); // many small blocks, so ranges straddle block boundaries
    let mut rng = StdRng::seed_from_u64(seed);
    let mut e = Some(Engine::open(c.clone()).unwrap());
    let mut model = Model::default();
    let mut next_value = 0i64;
    let mut log: Vec<String> = Vec::new();
    // A copy of `db/` that a later crash may roll back to (fjall losing its newest
    // writes), valid while no checkpoint may have deleted WAL segments since.
    let mut snapshot: Option<tempfile::TempDir> = None;
    for step in 0..steps {
        let eng = e.as_ref().unwrap();
        let roll = rng.gen_range(0..100);
        let what = if roll < 40 {
            // Write a few series, out of order and with duplicates sometimes.
            let mut series = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                let metric = METRICS[rng.gen_range(0..METRICS.len())];
                let tags = TAG_SETS[rng.gen_range(0..TAG_SETS.len())];
                let n = rng.gen_range(1..12);
                let ts: Vec<i64> = (0..n).map(|_| rng.gen_range(0..100)).collect();
                let v: Vec<i64> = ts
                    .iter()
                    .map(|_| {
                        next_value += 1;
                        next_value
                    })
                    .collect();
                let sp = lng(metric, tags, &ts, &v);
                model.write(&sp.key, &ts, &v);
                series.push(sp);
            }
            eng.write(&batch(series)).unwrap();
            "write".to_string()
        } else if roll < 65 {
            let metric = METRICS[rng.gen_range(0..METRICS.len())];
            let f = FILTERS[rng.gen_range(0..FILTERS.len())];
            let range = match rng.gen_range(0..10) {
                0 => TimeRange::ALL,
                1 => TimeRange::new(rng.gen_range(0..100), i64::MAX),
                2 => TimeRange::new(60, 40), // empty range: a no-op
                _ => {
                    let lo = rng.gen_range(-5..105);
                    TimeRange::new(lo, lo + rng.gen_range(0..40))
                }
            };
            let r = del(metric, TagFilter::from_pairs(f), range);
            let want = model.delete(&r);
            let got = eng.delete(&r).unwrap();
            assert_eq!(
                got, want,
                "seed {seed} step {step}: series touched by {r:?}"
            );
            format!("delete {metric} {f:?} {}..={}", range.start, range.end)
        } else if roll < 75 {
            eng.run_maintenance().unwrap();
            snapshot = None;
            "maintenance".into()
        } else if roll < 80 {
            eng.flush().unwrap();
            snapshot = None;
            "flush".into()
        } else if roll < 87 {
            // Seal without a checkpoint: blocks exist, the WAL keeps every record.
            let i = eng.inner();
            let _m = i.maint.lock();
            i.seal_all_locked().unwrap();
            "seal".into()
        } else if roll < 95 {
            e.take().unwrap().crash();
            let what = match &snapshot {
                Some(snap) if rng.gen_bool(0.5) => {
                    roll_back_fjall(dir.path(), snap.path());
                    "crash losing fjall writes + reopen"
                }
                _ => {
                    let snap = tempfile::tempdir().unwrap();
                    copy_dir(&dir.path().join("db"), snap.path());
                    snapshot = Some(snap);
                    "crash + reopen"
                }
            };
            e = Some(Engine::open(c.clone()).unwrap());
            what.into()
        } else {
            let old = e.take().unwrap();
            old.close().unwrap();
            drop(old);
            snapshot = None;
            e = Some(Engine::open(c.clone()).unwrap());
            "close + reopen".into()
        };
        log.push(what);
        let ctx = format!(
            "seed {seed} step {step}, last ops: {:?}",
            &log[log.len().saturating_sub(6)..]
        );
        model.check(e.as_ref().unwrap(), &ctx);
    }
    // And once more from disk only.
    e.take().unwrap().crash();
    let e = Engine::open(c).unwrap();
    model.check(&e, &format!("seed {seed}: final reopen"));
}

/// Requirements 1 and 3: random writes, seals, deletes by tag filter and range,
/// crashes (some losing fjall's newest writes) and clean restarts; after every step
/// queries and listings equal a model.
///
/// Four seeds keep it to seconds; while changing the delete path, run a few hundred
/// (`--release`): a walk of 80 seeds is what found the merge-target bug below.
#[test]
fn random_deletes_match_a_model_across_crashes() {
    for seed in 1..=4 {
        random_walk(seed, 250);
    }
}

// ---------------------------------------------------------------------------
// Targeted cases
// ---------------------------------------------------------------------------

/// Both ends inclusive, in the head and in blocks; blocks inside the range are
/// dropped without being re-encoded, the two boundary blocks are rewritten.
#[test]
fn range_ends_are_inclusive_and_only_boundary_blocks_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 5); // a flush of 100 points makes 10 blocks of 10
    let e = Engine::open(c).unwrap();
    let ts: Vec<i64> = (0..100).collect();
    e.write(&batch(vec![
        lng("m", &[("host", "a")], &ts, &ts),
        lng("m", &[("host", "b")], &ts, &ts),
    ]))
    .unwrap();
    e.flush().unwrap();
    assert_eq!(gauge(&e, "engine_blocks"), 20.0);
    let written = counter(&e, "engine_blocks_written_total");
    let removed = counter(&e, "engine_blocks_removed_total");
    let a = || TagFilter::from_pairs(&[("host", &["a"])]);
    // [25, 74]: blocks 20..29 and 70..79 straddle the ends; 30..69 lie inside.
    assert_eq!(e.delete(&del("m", a(), TimeRange::new(25, 74))).unwrap(), 1);
    let mut want: Vec<i64> = (0..25).chain(75..100).collect();
    assert_eq!(ts_of(&e, "m", &[("host", "a")]), want);
    assert_eq!(ts_of(&e, "m", &[("host", "b")]), ts, "host=b untouched");
    assert_eq!(counter(&e, "engine_blocks_written_total") - written, 2);
    assert_eq!(counter(&e, "engine_blocks_removed_total") - removed, 6);
    assert_eq!(counter(&e, "engine_delete_blocks_dropped_total"), 4);
    assert_eq!(counter(&e, "engine_delete_blocks_rewritten_total"), 2);
    assert_eq!(counter(&e, "engine_points_deleted_total"), 50);
    // A range in a gap between points touches nothing (nothing rewritten).
    assert_eq!(e.delete(&del("m", a(), TimeRange::new(30, 60))).unwrap(), 0);
    assert_eq!(counter(&e, "engine_delete_blocks_rewritten_total"), 2);
    // Single points at both ends of the data and at block edges.
    for t in [0, 99, 24, 75, 10, 19] {
        assert_eq!(e.delete(&del("m", a(), TimeRange::new(t, t))).unwrap(), 1);
        want.retain(|&x| x != t);
        assert_eq!(ts_of(&e, "m", &[("host", "a")]), want, "after deleting {t}");
    }
    // The same in the head, across an out-of-order write with duplicates.
    write_lng(
        &e,
        "m",
        &[("host", "b")],
        &[105, 101, 103, 101, 104, 102],
        &[1, 2, 3, 4, 5, 6],
    );
    let b = || TagFilter::from_pairs(&[("host", &["b"])]);
    assert_eq!(
        e.delete(&del("m", b(), TimeRange::new(98, 102))).unwrap(),
        1
    );
    let want_b: Vec<i64> = (0..98).chain([103, 104, 105]).collect();
    assert_eq!(ts_of(&e, "m", &[("host", "b")]), want_b);
    e.crash();
    let e = Engine::open(cfg_seal(dir.path(), 5)).unwrap();
    assert_eq!(ts_of(&e, "m", &[("host", "a")]), want);
    assert_eq!(ts_of(&e, "m", &[("host", "b")]), want_b);
}

/// Requirement 1 after `kill -9`: the delete is replayed from the WAL even when
/// fjall lost the block rewrite (its journal buffer dies with the process).
#[test]
fn delete_is_replayed_when_fjall_lost_the_block_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let snap = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 4);
    let e = Engine::open(c.clone()).unwrap();
    let ts: Vec<i64> = (1..=20).collect();
    e.write(&batch(vec![
        lng("m", &[("host", "a")], &ts, &ts),
        lng("m", &[("host", "b")], &ts, &ts),
    ]))
    .unwrap();
    e.flush().unwrap(); // blocks durable, WAL checkpointed away
    write_lng(&e, "m", &[("host", "a")], &[21, 22], &[21, 22]);
    e.crash();
    copy_dir(&dir.path().join("db"), &snap.path().join("db"));
    let e = Engine::open(c.clone()).unwrap();
    e.delete(&del(
        "m",
        TagFilter::from_pairs(&[("host", &["a"])]),
        TimeRange::new(3, 21),
    ))
    .unwrap();
    assert_eq!(ts_of(&e, "m", &[("host", "a")]), vec![1, 2, 22]);
    e.crash();
    roll_back_fjall(dir.path(), &snap.path().join("db"));
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(ts_of(&e, "m", &[("host", "a")]), vec![1, 2, 22]);
    assert_eq!(ts_of(&e, "m", &[("host", "b")]), ts);
    e.close().unwrap();
    drop(e);
    let e = Engine::open(c).unwrap();
    assert_eq!(ts_of(&e, "m", &[("host", "a")]), vec![1, 2, 22]);
}

/// A delete replayed from the WAL applies to blocks with `seq < watermark`. If fjall
/// lost the blocks (and `next_block_seq`) written before the delete, blocks sealed
/// after the restart must still get seqs at or above the watermark, or a second
/// replay deletes points written after the delete (user-needs: deletes that remove
/// too much).
#[test]
fn points_written_after_a_replayed_delete_survive_a_second_crash() {
    let dir = tempfile::tempdir().unwrap();
    let snap = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    let ts: Vec<i64> = (1..=10).collect();
    write_lng(&e, "m", &[], &ts, &ts);
    e.crash();
    // What fjall has made durable: the series, no blocks.
    copy_dir(&dir.path().join("db"), &snap.path().join("db"));
    let e = Engine::open(c.clone()).unwrap();
    {
        let i = e.inner();
        let _m = i.maint.lock();
        i.seal_all_locked().unwrap(); // block seq 1, next seq 2
    }
    e.delete(&del("m", TagFilter::default(), TimeRange::new(5, 10)))
        .unwrap(); // logged with watermark 2
    e.crash();
    roll_back_fjall(dir.path(), &snap.path().join("db")); // the seal is lost
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
    write_lng(&e, "m", &[], &[7], &[70]);
    {
        let i = e.inner();
        let _m = i.maint.lock();
        i.seal_all_locked().unwrap(); // must not reuse seq 1
    }
    let want = vec![(1, 1), (2, 2), (3, 3), (4, 4), (7, 70)];
    assert_eq!(longs_of(&e, "m"), want);
    e.crash();
    let e = Engine::open(c).unwrap();
    assert_eq!(
        longs_of(&e, "m"),
        want,
        "the point written after the delete"
    );
}

/// Requirement 2: `DELETE /metric/{name}` (empty filter, all time) removes every
/// point and every listing of the metric; writing it again starts from nothing, also
/// after replaying a WAL that still holds the old points.
#[test]
fn deleting_a_whole_metric_removes_points_names_and_tags_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 4);
    let e = Engine::open(c.clone()).unwrap();
    let ts: Vec<i64> = (-5..15).collect();
    e.write(&batch(vec![
        lng("gone", &[("host", "a"), ("only_gone", "v1")], &ts, &ts),
        lng("gone", &[("host", "b")], &ts, &ts),
        lng("kept", &[("host", "a")], &ts, &ts),
    ]))
    .unwrap();
    e.flush().unwrap();
    e.write(&batch(vec![
        lng("gone", &[("host", "a"), ("only_gone", "v1")], &[20], &[20]),
        lng("gone", &[("host", "c")], &[i64::MIN, i64::MAX], &[1, 2]),
    ]))
    .unwrap();
    let whole = del("gone", TagFilter::default(), TimeRange::ALL);
    assert_eq!(e.delete(&whole).unwrap(), 3);
    let check = |e: &Engine| {
        assert!(read(e, &query("gone")).is_empty());
        assert_eq!(e.metric_names(None).unwrap(), vec!["kept"]);
        assert_eq!(e.metric_names(Some("go")).unwrap(), Vec::<String>::new());
        assert_eq!(e.tag_names().unwrap(), vec!["host"]);
        assert_eq!(e.tag_values().unwrap(), vec!["a"]);
        assert!(e
            .series_keys("gone", &TagFilter::default(), TimeRange::ALL)
            .unwrap()
            .is_empty());
        assert_eq!(ts_of(e, "kept", &[("host", "a")]), ts);
    };
    check(&e);
    assert_eq!(gauge(&e, "engine_blocks"), 3.0, "only kept's blocks remain");
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    check(&e);
    // Writing the metric again revives only what is written now.
    write_lng(
        &e,
        "gone",
        &[("host", "a"), ("only_gone", "v1")],
        &[3],
        &[33],
    );
    assert_eq!(
        ts_of(&e, "gone", &[("host", "a"), ("only_gone", "v1")]),
        vec![3]
    );
    assert_eq!(read(&e, &query("gone")).len(), 1);
    assert_eq!(e.metric_names(None).unwrap(), vec!["gone", "kept"]);
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(longs_of(&e, "gone"), vec![(3, 33)]);
    assert_eq!(e.tag_names().unwrap(), vec!["host", "only_gone"]);
    assert_eq!(e.delete(&whole).unwrap(), 1);
    e.close().unwrap();
    drop(e);
    let e = Engine::open(c).unwrap();
    check(&e);
}

/// Requirement 3: tags and names stay listed while another live series uses them.
#[test]
fn shared_tags_stay_listed_until_their_last_series_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    e.write(&batch(vec![
        lng("cpu", &[("host", "a"), ("dc", "x")], &[1, 2], &[1, 2]),
        lng("cpu", &[("host", "b"), ("dc", "x")], &[1, 2], &[1, 2]),
        lng("mem", &[("host", "a"), ("rack", "r1")], &[1], &[1]),
    ]))
    .unwrap();
    e.flush().unwrap();
    // Deleting part of a series keeps it listed.
    e.delete(&del(
        "cpu",
        TagFilter::from_pairs(&[("host", &["a"])]),
        TimeRange::new(1, 1),
    ))
    .unwrap();
    assert_eq!(
        e.series_keys("cpu", &TagFilter::default(), TimeRange::ALL)
            .unwrap()
            .len(),
        2
    );
    e.delete(&del(
        "cpu",
        TagFilter::from_pairs(&[("host", &["a"])]),
        TimeRange::new(2, 2),
    ))
    .unwrap();
    let listings = |e: &Engine| {
        (
            e.metric_names(None).unwrap(),
            e.tag_names().unwrap(),
            e.tag_values().unwrap(),
            {
                let mut keys = e
                    .series_keys("cpu", &TagFilter::default(), TimeRange::ALL)
                    .unwrap();
                keys.sort();
                keys
            },
        )
    };
    let after_a = (
        vec!["cpu".to_string(), "mem".to_string()],
        vec!["dc".to_string(), "host".to_string(), "rack".to_string()],
        vec!["a".to_string(), "b".into(), "r1".into(), "x".into()],
        vec![key("cpu", &[("host", "b"), ("dc", "x")], DataType::Long)],
    );
    assert_eq!(listings(&e), after_a, "'a' still used by mem");
    e.delete(&del("mem", TagFilter::default(), TimeRange::ALL))
        .unwrap();
    let after_mem = (
        vec!["cpu".to_string()],
        vec!["dc".to_string(), "host".to_string()],
        vec!["b".to_string(), "x".into()],
        after_a.3.clone(),
    );
    assert_eq!(listings(&e), after_mem);
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    assert_eq!(listings(&e), after_mem, "after WAL replay");
    e.close().unwrap();
    drop(e);
    let e = Engine::open(c).unwrap();
    assert_eq!(listings(&e), after_mem, "after a clean restart");
}

/// Requirement 4, measured: 1,000 series × 10,000 points sealed into blocks, then half
/// the series (by tag) lose a time sub-range. Run with
/// `cargo test -p kairosdb-engine --release -- --ignored --nocapture delete_speed`.
#[test]
#[ignore]
fn delete_speed_1000_series_10k_points() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.max_head_bytes = u64::MAX;
    c.wal_max_bytes = u64::MAX;
    let e = Engine::open(c.clone()).unwrap();
    let series = 1000i64;
    let points = 10_000i64;
    let t = Instant::now();
    for r in 0..points / 1000 {
        let b: Vec<SeriesPoints> = (0..series)
            .map(|s| {
                let host = format!("host_{s}");
                let half = if s % 2 == 0 { "even" } else { "odd" };
                let ts: Vec<i64> = (0..1000).map(|i| T0 + (r * 1000 + i) * 10_000).collect();
                let v: Vec<f64> = ts
                    .iter()
                    .map(|&x| ((x / 10_000 + s) % 1000) as f64 / 10.0)
                    .collect();
                dbl("cpu", &[("host", host.as_str()), ("half", half)], &ts, &v)
            })
            .collect();
        e.write(&batch(b)).unwrap();
    }
    e.flush().unwrap();
    let load = t.elapsed();
    let blocks = gauge(&e, "engine_blocks");
    // The middle 60 % of the time span of the even series.
    let range = TimeRange::new(T0 + 2000 * 10_000, T0 + 8000 * 10_000 - 1);
    let t = Instant::now();
    let n = e
        .delete(&del(
            "cpu",
            TagFilter::from_pairs(&[("half", &["even"])]),
            range,
        ))
        .unwrap();
    let took = t.elapsed();
    let deleted = counter(&e, "engine_points_deleted_total");
    eprintln!(
        "loaded {} points into {blocks} blocks in {load:?}; deleted {deleted} points of {n} series in {took:?} \
         ({} blocks dropped, {} rewritten; {:.1} M pts/s)",
        series * points,
        counter(&e, "engine_delete_blocks_dropped_total"),
        counter(&e, "engine_delete_blocks_rewritten_total"),
        deleted as f64 / took.as_secs_f64() / 1e6
    );
    assert_eq!(n, 500);
    assert_eq!(deleted, 500 * 6000);
    let mut q = query("cpu");
    q.filter = TagFilter::from_pairs(&[("host", &["host_0", "host_1"])]);
    let r = read(&e, &q);
    assert_eq!(
        r.iter().map(|s| s.points.len()).sum::<usize>(),
        4000 + 10_000
    );
    // Replaying the delete at open is as cheap (blocks already rewritten).
    e.crash();
    let t = Instant::now();
    let e = Engine::open(c).unwrap();
    eprintln!(
        "reopened (replaying the delete record) in {:?}",
        t.elapsed()
    );
    assert_eq!(
        read(&e, &q).iter().map(|s| s.points.len()).sum::<usize>(),
        14_000
    );
    assert!(took < Duration::from_secs(30), "delete took {took:?}");
    // `DELETE /metric/cpu`: every block is dropped on its header.
    let t = Instant::now();
    let n = e
        .delete(&del("cpu", TagFilter::default(), TimeRange::ALL))
        .unwrap();
    let took = t.elapsed();
    eprintln!(
        "deleted the whole metric ({n} series, {} points, {} blocks dropped, {} rewritten) in {took:?}",
        counter(&e, "engine_points_deleted_total"),
        counter(&e, "engine_delete_blocks_dropped_total"),
        counter(&e, "engine_delete_blocks_rewritten_total"),
    );
    assert_eq!(n, 1000);
    assert!(e.metric_names(None).unwrap().is_empty());
    assert_eq!(gauge(&e, "engine_blocks"), 0.0);
}

/// Found by the random walk: when a delete drops a series' newest block, an older
/// block it rewrites must not become the append-merge target, or the next seal gives
/// that block's old points a new, higher seq and overwritten values come back.
#[test]
fn a_rewritten_older_block_never_becomes_the_merge_target() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 4);
    let e = Engine::open(c.clone()).unwrap();
    let write_and_seal = |ts: &[i64], v: &[i64]| {
        write_lng(&e, "m", &[], ts, v);
        e.flush().unwrap();
    };
    write_and_seal(&[2, 5], &[2, 50]); // block seq 1
    write_and_seal(&[5], &[51]); // block seq 2 overwrites 5 (5 is not after seq 1)
    write_and_seal(&[1], &[1]); // block seq 3, the newest, sorted first by start
    e.delete(&del("m", TagFilter::default(), TimeRange::new(1, 2)))
        .unwrap(); // drops seq 3, rewrites seq 1 to [5=50]
    assert_eq!(longs_of(&e, "m"), vec![(5, 51)]);
    write_and_seal(&[20], &[20]);
    assert_eq!(longs_of(&e, "m"), vec![(5, 51), (20, 20)]);
    e.crash();
    let e = Engine::open(c).unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(5, 51), (20, 20)]);
}

/// The same through TTL retention, which rewrites blocks the same way.
#[test]
fn a_block_rewritten_by_retention_never_becomes_the_merge_target() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg_seal(dir.path(), 4);
    let clock = c.clock.clone();
    let e = Engine::open(c).unwrap();
    let write = |ts: i64, v: i64, ttl: u32| {
        let mut sp = lng("m", &[], &[ts], &[v]);
        sp.ttl_secs = ttl;
        e.write(&batch(vec![sp])).unwrap();
    };
    write(2, 2, 10);
    write(5, 50, 0);
    e.flush().unwrap(); // block seq 1: [2 (expires), 5=50]
    write(5, 51, 0);
    e.flush().unwrap(); // block seq 2: [5=51]
    write(1, 1, 10);
    e.flush().unwrap(); // block seq 3: [1 (expires)], the newest
    clock.advance(Duration::from_secs(20));
    e.run_retention().unwrap(); // drops seq 3, rewrites seq 1 to [5=50]
    assert_eq!(longs_of(&e, "m"), vec![(5, 51)]);
    write(20, 20, 0);
    e.flush().unwrap();
    assert_eq!(longs_of(&e, "m"), vec![(5, 51), (20, 20)]);
}

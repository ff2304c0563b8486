//! Backfills (`Storage::backfill`: store only the points that are absent, as a cluster's
//! partition copy does) and reads with each point's remaining TTL: stored points are kept
//! wherever they are (head, blocks), an ordinary write racing a backfill always ends up
//! the value read, and a crash and WAL replay rebuild exactly what the backfill decided.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::*;

fn backfill_lng(e: &Engine, metric: &str, ts: &[i64], v: &[i64]) {
    e.backfill(&batch(vec![lng(metric, &[], ts, v)])).unwrap();
}

#[test]
fn a_backfill_keeps_points_in_blocks_and_in_the_head_and_adds_only_absent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(cfg(dir.path())).unwrap();
    write_lng(&e, "m", &[], &[10, 20], &[1, 2]);
    e.flush().unwrap();
    write_lng(&e, "m", &[], &[30], &[3]);
    assert!(gauge(&e, "engine_blocks") >= 1.0 && gauge(&e, "engine_head_points") == 1.0);
    backfill_lng(
        &e,
        "m",
        &[5, 10, 20, 25, 30, 35],
        &[-5, -10, -20, -25, -30, -35],
    );
    assert_eq!(
        longs_of(&e, "m"),
        [(5, -5), (10, 1), (20, 2), (25, -25), (30, 3), (35, -35)]
    );
    assert_eq!(
        counter(&e, "engine_points_written_total"),
        3 + 3,
        "only the points stored count as written"
    );
    // A backfill that finds everything stored writes nothing, not even to the WAL.
    let wal = counter(&e, "engine_wal_bytes_written_total");
    backfill_lng(&e, "m", &[10, 30], &[0, 0]);
    assert_eq!(counter(&e, "engine_wal_bytes_written_total"), wal);
    // Sealed again, the same.
    e.flush().unwrap();
    backfill_lng(&e, "m", &[5, 25, 40], &[0, 0, -40]);
    assert_eq!(
        longs_of(&e, "m"),
        [
            (5, -5),
            (10, 1),
            (20, 2),
            (25, -25),
            (30, 3),
            (35, -35),
            (40, -40)
        ]
    );
}

#[test]
fn a_point_whose_ttl_has_passed_counts_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    let mut short = lng("m", &[], &[1, 2], &[1, 2]);
    short.ttl_secs = 10;
    e.write(&batch(vec![short])).unwrap();
    c.clock.advance(Duration::from_secs(5));
    backfill_lng(&e, "m", &[1], &[-1]);
    assert_eq!(longs_of(&e, "m"), [(1, 1), (2, 2)], "still alive: kept");
    c.clock.advance(Duration::from_secs(5));
    backfill_lng(&e, "m", &[1], &[-1]);
    assert_eq!(longs_of(&e, "m"), [(1, -1)], "expired: replaced");
}

#[test]
fn replay_after_a_crash_rebuilds_what_each_backfill_decided() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    // Backfilled, then overwritten: the write wins.
    backfill_lng(&e, "m", &[1], &[-1]);
    write_lng(&e, "m", &[], &[1], &[1]);
    // Written, then backfilled: the backfill skips it, and stores what is absent.
    write_lng(&e, "m", &[], &[2], &[2]);
    backfill_lng(&e, "m", &[1, 2, 3], &[-1, -2, -3]);
    // Sealed before the backfill: skipped too, also once the head is replayed.
    write_lng(&e, "m", &[], &[4], &[4]);
    e.flush().unwrap();
    backfill_lng(&e, "m", &[4, 5], &[-4, -5]);
    let expect = [(1, 1), (2, 2), (3, -3), (4, 4), (5, -5)];
    assert_eq!(longs_of(&e, "m"), expect);
    e.crash();
    let e = Engine::open(c.clone()).unwrap();
    assert!(counter(&e, "engine_wal_replayed_points_total") > 0);
    assert_eq!(longs_of(&e, "m"), expect, "after replay");
    e.close().unwrap();
    let e = Engine::open(c).unwrap();
    assert_eq!(longs_of(&e, "m"), expect, "after a clean restart");
}

/// The race a cluster's copy runs into: a writer overwrites points while backfills of
/// their older values run, with seals moving points from the head into blocks meanwhile.
/// Whatever the interleaving, each point ends with the ordinary write's value: a write
/// that landed first is kept, one that landed after replaces the backfilled value.
#[test]
fn writes_racing_backfills_always_keep_the_written_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg_seal(dir.path(), 64);
    c.background = true;
    c.maintenance_interval = Duration::from_millis(2);
    let e = Arc::new(Engine::open(c.clone()).unwrap());
    let n = 3000i64;
    let mut order: Vec<i64> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(7));
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            for (i, chunk) in order.chunks(7).enumerate() {
                let v: Vec<i64> = chunk.iter().map(|t| 1_000_000 + t).collect();
                e.write(&batch(vec![lng("race", &[], chunk, &v)])).unwrap();
                // Halfway, the writer waits for a seal, so the race always runs across
                // one: on a busy machine the maintenance thread may otherwise not get a
                // core before the writes are done (a CI run of `e00dae3`).
                if i == n as usize / 14 {
                    let waited = Instant::now();
                    while gauge(&e, "engine_blocks") == 0.0 {
                        assert!(
                            waited.elapsed() < Duration::from_secs(60),
                            "no seal in 60 s"
                        );
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        })
    };
    let backfiller = {
        let e = e.clone();
        std::thread::spawn(move || {
            for round in 0..3 {
                for start in (0..n).step_by(50) {
                    let ts: Vec<i64> = (start..(start + 50).min(n)).collect();
                    let v: Vec<i64> = ts.iter().map(|t| -t - round).collect();
                    e.backfill(&batch(vec![lng("race", &[], &ts, &v)])).unwrap();
                }
            }
        })
    };
    writer.join().unwrap();
    backfiller.join().unwrap();
    let expect: Vec<(i64, i64)> = (0..n).map(|t| (t, 1_000_000 + t)).collect();
    assert_eq!(longs_of(&e, "race"), expect);
    assert!(
        gauge(&e, "engine_blocks") > 0.0,
        "seals ran during the race"
    );
    let e = Arc::try_unwrap(e).ok().expect("sole owner");
    e.crash();
    let e = Engine::open(c).unwrap();
    assert_eq!(longs_of(&e, "race"), expect, "after replay");
}

/// Remaining TTLs of the only series of `metric`, read with `with_ttl`.
fn ttls_of(e: &Engine, metric: &str) -> (Vec<i64>, Vec<u32>) {
    let q = SeriesQuery {
        with_ttl: true,
        ..query(metric)
    };
    let r = read(e, &q);
    assert_eq!(r.len(), 1, "{r:?}");
    (r[0].points.timestamps().to_vec(), r[0].ttl_secs.clone())
}

#[test]
fn a_read_with_ttl_answers_each_points_remaining_ttl_from_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let e = Engine::open(c.clone()).unwrap();
    let mut a = lng("t", &[], &[1, 2], &[1, 2]);
    a.ttl_secs = 100;
    let mut b = lng("t", &[], &[3], &[3]);
    b.ttl_secs = 1000;
    e.write(&batch(vec![a, b, lng("t", &[], &[4], &[4])]))
        .unwrap();
    write_lng(&e, "never", &[], &[1], &[1]);
    c.clock.advance(Duration::from_secs(40));
    let expect = (vec![1, 2, 3, 4], vec![60, 60, 960, 0]);
    assert_eq!(ttls_of(&e, "t"), expect, "from the head");
    assert_eq!(read(&e, &query("t"))[0].ttl_secs, [0u32; 0], "not asked");
    assert_eq!(ttls_of(&e, "never"), (vec![1], vec![]), "none expires");
    e.flush().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
    assert_eq!(ttls_of(&e, "t"), expect, "from the blocks");
    assert_eq!(ttls_of(&e, "never"), (vec![1], vec![]));
    // Half a second short of a whole one counts as a whole second.
    c.clock.advance(Duration::from_millis(59_500));
    assert_eq!(ttls_of(&e, "t"), (vec![1, 2, 3, 4], vec![1, 1, 901, 0]));
    // A backfill takes its batch's TTL, as a write does.
    let mut copy = lng("t", &[], &[5], &[5]);
    copy.ttl_secs = 30;
    e.backfill(&batch(vec![copy])).unwrap();
    assert_eq!(ttls_of(&e, "t").1, [1, 1, 901, 0, 30]);
}

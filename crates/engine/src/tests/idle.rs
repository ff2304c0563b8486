//! Idle heads (issue 21): a finished load is sealed and its WAL deleted within a minute,
//! while live series, however slow, keep filling their heads.

use super::*;

/// Points of `metric` (one series) as stored.
fn count(e: &Engine, metric: &str) -> usize {
    read(e, &query(metric)).iter().map(|s| s.points.len()).sum()
}

#[test]
fn a_finished_load_leaves_no_wal_behind_once_its_heads_are_idle() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let clock = c.clock.clone();
    let e = Engine::open(c.clone()).unwrap();
    // 200 series x 1,000 points, fast: heads below seal_points, all in the WAL (over
    // the 1 MiB under which a drained segment is left alone).
    for b in 0..10i64 {
        let series = (0..200)
            .map(|s| {
                let host = format!("h{s}");
                let ts: Vec<i64> = (0..100).map(|i| T0 + (b * 100 + i) * 10_000).collect();
                lng("load", &[("host", host.as_str())], &ts, &ts)
            })
            .collect();
        e.write(&batch(series)).unwrap();
        clock.advance(Duration::from_millis(5));
    }
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 200_000.0);
    assert!(gauge(&e, "engine_wal_bytes") > 1_100_000.0);

    clock.advance(Duration::from_secs(29));
    e.run_maintenance().unwrap();
    assert_eq!(
        gauge(&e, "engine_head_points"),
        200_000.0,
        "not idle for 30 s yet"
    );

    clock.advance(Duration::from_secs(2));
    e.run_maintenance().unwrap();
    assert_eq!(
        gauge(&e, "engine_head_points"),
        0.0,
        "idle heads are sealed"
    );
    assert!(
        gauge(&e, "engine_wal_bytes") < 1024.0,
        "the drained segment is rotated away and deleted: {} bytes left",
        gauge(&e, "engine_wal_bytes")
    );
    assert_eq!(count(&e, "load"), 200_000);
    drop(e);
    let e = Engine::open(c).unwrap();
    assert_eq!(count(&e, "load"), 200_000, "everything is in blocks");
}

#[test]
fn a_live_series_keeps_its_head_however_slow_its_pace() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let clock = c.clock.clone();
    let e = Engine::open(c).unwrap();
    // One point a minute for an hour less a minute: never 4 gaps quiet.
    for i in 0..59i64 {
        e.write(&batch(vec![lng("slow", &[], &[T0 + i * 60_000], &[i])]))
            .unwrap();
        clock.advance(Duration::from_secs(60));
        e.run_maintenance().unwrap();
        assert_eq!(
            gauge(&e, "engine_head_points"),
            (i + 1) as f64,
            "minute {i}"
        );
    }
    // It stops: sealed after four of its gaps.
    clock.advance(Duration::from_secs(3 * 60));
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
    assert_eq!(count(&e, "slow"), 59);

    // A head of one point has no pace yet: it waits a quarter of head_max_age.
    e.write(&batch(vec![lng("once", &[], &[T0], &[1])]))
        .unwrap();
    clock.advance(Duration::from_secs(14 * 60));
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 1.0);
    clock.advance(Duration::from_secs(60));
    e.run_maintenance().unwrap();
    assert_eq!(gauge(&e, "engine_head_points"), 0.0);
}

//! Tests of the delivery queue against a fault-injecting in-memory inner store.

use std::sync::atomic::{AtomicBool, AtomicU64};

use kairosdb_model::{NullStorage, ServiceStore, Tags};

use super::*;

/// Records every batch it accepts (in order) and deletes; refuses writes while
/// `fail_writes` is set. Reads and listings find nothing (`null`), except one metric
/// name, "inner", to tell a pass-through.
#[derive(Default)]
struct Flaky {
    fail_writes: AtomicBool,
    /// Answer `InvalidInput` (a batch that can never be stored).
    reject_writes: AtomicBool,
    attempts: AtomicU64,
    log: Mutex<Vec<Event>>,
    null: NullStorage,
    meta: std::sync::Mutex<kairosdb_model::ServiceMap>,
}

#[derive(Clone, Debug, PartialEq)]
enum Event {
    Write(WriteBatch),
    Delete(String),
}

impl Flaky {
    /// A store that refuses every write until `fail_writes` is cleared.
    fn down() -> Arc<Flaky> {
        Arc::new(Flaky {
            fail_writes: AtomicBool::new(true),
            ..Flaky::default()
        })
    }

    fn writes(&self) -> Vec<WriteBatch> {
        self.log
            .lock()
            .iter()
            .filter_map(|e| match e {
                Event::Write(b) => Some(b.clone()),
                Event::Delete(_) => None,
            })
            .collect()
    }
}

kairosdb_model::forward_service_store!(Flaky, this => this.meta);

impl Storage for Flaky {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if self.fail_writes.load(Ordering::Relaxed) {
            return Err(StorageError::Internal(
                "injected: cassandra unavailable".into(),
            ));
        }
        if self.reject_writes.swap(false, Ordering::Relaxed) {
            return Err(StorageError::InvalidInput("injected: bad batch".into()));
        }
        self.log.lock().push(Event::Write(batch.clone()));
        Ok(())
    }
    fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        self.null.query(q)
    }
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.null.series_keys(metric, filter, range)
    }
    fn metric_names(&self, _: Option<&str>) -> Result<Vec<String>, StorageError> {
        Ok(vec!["inner".into()])
    }
    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.null.tag_names()
    }
    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.null.tag_values()
    }
    fn delete(&self, r: &DeleteRequest) -> Result<u64, StorageError> {
        self.log.lock().push(Event::Delete(r.metric.clone()));
        Ok(1)
    }
    /// Its index is complete: nothing to rebuild.
    fn index_metric_tags(&self, _metric: &str, _range: TimeRange) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.null.sync()
    }
    fn health(&self) -> HealthStatus {
        self.null.health()
    }
    fn stats(&self) -> StorageStats {
        self.null.stats()
    }
}

/// A batch of two series (long and string) whose values identify it.
fn batch(i: i64) -> WriteBatch {
    WriteBatch {
        series: vec![
            SeriesPoints {
                key: SeriesKey::new("cpu", DataType::Long, Tags::from_pairs([("host", "a")])),
                ttl_secs: 0,
                points: Points::Long {
                    ts: vec![i * 10, i * 10 + 1, -5],
                    values: vec![i, -i, i64::MAX],
                },
            },
            SeriesPoints {
                key: SeriesKey::new("log", DataType::String, Tags::new()),
                ttl_secs: 60,
                points: Points::String {
                    ts: vec![i],
                    values: vec![format!("event {i}")],
                },
            },
        ],
    }
}

fn opts(dir: &Path) -> QueueOptions {
    QueueOptions {
        background: false,
        sync: WalSync::Always,
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(8),
        ..QueueOptions::new(dir)
    }
}

fn open(inner: &Arc<Flaky>, o: QueueOptions) -> DeliveryQueue {
    DeliveryQueue::open(inner.clone(), o).unwrap()
}

/// A queue over a fresh inner store (after a restart: what it delivers is what was
/// left in the queue's directory).
fn open_fresh(o: QueueOptions) -> (Arc<Flaky>, DeliveryQueue) {
    let inner = Arc::new(Flaky::default());
    let q = open(&inner, o);
    (inner, q)
}

fn counter(s: &StorageStats, name: &str) -> u64 {
    s.counters.iter().find(|c| c.0 == name).unwrap().2
}

fn gauge(s: &StorageStats, name: &str) -> f64 {
    s.gauges.iter().find(|g| g.0 == name).unwrap().2
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn record_round_trips() {
    let mut buf = Vec::new();
    encode_batch(&mut buf, &batch(7), -42);
    let (b, ms) = decode_batch(&buf[FRAME_HEADER_LEN..]).unwrap();
    assert_eq!(b, batch(7));
    assert_eq!(ms, -42);
    let ck = Lsn {
        segment: 3,
        offset: 99,
    };
    assert_eq!(decode_checkpoint(&encode_checkpoint(ck)), Some(ck));
    let mut bad = encode_checkpoint(ck);
    bad[20] ^= 1;
    assert_eq!(decode_checkpoint(&bad), None);
}

#[test]
fn acknowledged_while_inner_down_then_delivered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let q = open(&inner, opts(dir.path()));
    for i in 0..5 {
        q.write(&batch(i)).unwrap();
    }
    assert!(q.health().ok, "no delivery attempted yet");
    let err = q.deliver_now().unwrap_err();
    assert!(matches!(err, StorageError::Internal(ref m) if m.contains("injected")));
    let h = q.health();
    assert!(!h.ok);
    assert!(
        h.detail.contains("injected: cassandra unavailable"),
        "{}",
        h.detail
    );
    assert!(h.detail.contains("5 batches"), "{}", h.detail);
    assert!(inner.writes().is_empty());
    // Reads pass through.
    assert_eq!(q.metric_names(None).unwrap(), vec!["inner".to_string()]);

    inner.fail_writes.store(false, Ordering::Relaxed);
    assert_eq!(q.deliver_now().unwrap(), 5);
    assert_eq!(inner.writes(), (0..5).map(batch).collect::<Vec<_>>());
    assert!(q.health().ok);
    assert_eq!(q.deliver_now().unwrap(), 0);
}

#[test]
fn background_deliverer_retries_until_inner_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let q = open(
        &inner,
        QueueOptions {
            background: true,
            ..opts(dir.path())
        },
    );
    for i in 0..20 {
        q.write(&batch(i)).unwrap();
    }
    wait_until("health to report the failure", || !q.health().ok);
    wait_until("a few retries", || {
        inner.attempts.load(Ordering::Relaxed) >= 3
    });
    assert!(q.flush(Duration::from_millis(20)).is_err());
    inner.fail_writes.store(false, Ordering::Relaxed);
    q.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(inner.writes(), (0..20).map(batch).collect::<Vec<_>>());
    wait_until("health to recover", || q.health().ok);
}

#[test]
fn byte_bound_gives_backpressure_until_delivery_frees_space() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let mut one = Vec::new();
    encode_batch(&mut one, &batch(0), 0);
    let q = open(
        &inner,
        QueueOptions {
            max_bytes: one.len() as u64 * 3,
            ..opts(dir.path())
        },
    );
    for i in 0..3 {
        q.write(&batch(i)).unwrap();
    }
    let err = q.write(&batch(3)).unwrap_err();
    assert!(
        matches!(err, StorageError::Backpressure { retry_after_secs } if retry_after_secs >= 1)
    );
    assert!(q.deliver_now().is_err());
    assert!(matches!(
        q.write(&batch(3)),
        Err(StorageError::Backpressure { .. })
    ));
    assert_eq!(counter(&q.stats(), "queue_backpressure_total"), 2);

    inner.fail_writes.store(false, Ordering::Relaxed);
    assert_eq!(q.deliver_now().unwrap(), 3);
    q.write(&batch(3)).unwrap();
    q.write(&batch(4)).unwrap();
    assert_eq!(q.deliver_now().unwrap(), 2);
    assert_eq!(inner.writes(), (0..5).map(batch).collect::<Vec<_>>());
}

fn wal_files(dir: &Path) -> Vec<u64> {
    wal::list_segments(dir).unwrap()
}

#[test]
fn restart_replays_only_undelivered_batches() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments so delivered ones can be deleted.
    let o = QueueOptions {
        segment_bytes: 4096,
        ..opts(dir.path())
    };
    let first = Arc::new(Flaky::default());
    {
        let q = open(&first, o.clone());
        for i in 0..200 {
            q.write(&batch(i)).unwrap();
        }
        assert!(
            wal_files(dir.path()).len() > 2,
            "test needs several segments"
        );
        assert_eq!(q.deliver_now().unwrap(), 200);
        // Everything before the current segment is gone.
        assert!(
            wal_files(dir.path()).len() <= 2,
            "{:?}",
            wal_files(dir.path())
        );
        first.fail_writes.store(true, Ordering::Relaxed);
        for i in 200..205 {
            q.write(&batch(i)).unwrap();
        }
        assert!(q.deliver_now().is_err());
    } // dropped without delivering 200..205
    assert_eq!(first.writes().len(), 200);

    let (second, q) = open_fresh(o.clone());
    let s = q.stats();
    assert_eq!(gauge(&s, "queue_batches"), 5.0);
    assert_eq!(counter(&s, "queue_replayed_batches_total"), 5);
    assert_eq!(q.deliver_now().unwrap(), 5);
    assert_eq!(second.writes(), (200..205).map(batch).collect::<Vec<_>>());
    q.write(&batch(205)).unwrap();
    drop(q);

    // Third life: only the batch written after the last delivery comes back.
    let (third, q) = open_fresh(o.clone());
    assert_eq!(q.deliver_now().unwrap(), 1);
    assert_eq!(third.writes(), vec![batch(205)]);
    assert_eq!(third.attempts.load(Ordering::Relaxed), 1);
    drop(q);

    // Fourth life: nothing left; segment numbers keep growing after the checkpoint.
    let (_fourth, q) = open_fresh(o);
    assert_eq!(q.deliver_now().unwrap(), 0);
    q.write(&batch(206)).unwrap();
    drop(q);
    let (fifth, q) = open_fresh(opts(dir.path()));
    assert_eq!(q.deliver_now().unwrap(), 1);
    assert_eq!(fifth.writes(), vec![batch(206)]);
}

#[test]
fn torn_tail_loses_only_the_unacknowledged_write() {
    let mut torn = Vec::new();
    encode_batch(&mut torn, &batch(99), 0);
    for cut in [1, FRAME_HEADER_LEN, FRAME_HEADER_LEN + 3, torn.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        let first = Arc::new(Flaky::default());
        {
            let q = open(&first, opts(dir.path()));
            q.write(&batch(0)).unwrap();
            assert_eq!(q.deliver_now().unwrap(), 1);
            first.fail_writes.store(true, Ordering::Relaxed);
            for i in 1..4 {
                q.write(&batch(i)).unwrap();
            }
        }
        // Crash in the middle of appending batch 99 (never acknowledged).
        let last = *wal_files(dir.path()).last().unwrap();
        let path = dir.path().join(wal::segment_file_name(last));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&torn[..cut]).unwrap();
        drop(f);

        let (second, q) = open_fresh(opts(dir.path()));
        assert_eq!(
            counter(&q.stats(), "queue_truncated_bytes_total"),
            cut as u64
        );
        assert_eq!(q.deliver_now().unwrap(), 3, "cut {cut}");
        assert_eq!(second.writes(), (1..4).map(batch).collect::<Vec<_>>());
        // Writing after the repair works and survives another restart.
        second.fail_writes.store(true, Ordering::Relaxed);
        q.write(&batch(5)).unwrap();
        drop(q);
        let (third, q) = open_fresh(opts(dir.path()));
        assert_eq!(q.deliver_now().unwrap(), 1);
        assert_eq!(third.writes(), vec![batch(5)]);
    }
}

#[test]
fn stats_report_depth_age_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(1_000_000);
    let inner = Flaky::down();
    let q = open(
        &inner,
        QueueOptions {
            clock: clock.clone(),
            ..opts(dir.path())
        },
    );
    let s = q.stats();
    assert_eq!(gauge(&s, "queue_batches"), 0.0);
    assert_eq!(gauge(&s, "queue_oldest_age_seconds"), 0.0);
    q.write(&batch(0)).unwrap();
    clock.advance(Duration::from_secs(3));
    q.write(&batch(1)).unwrap();
    clock.advance(Duration::from_secs(2));
    assert!(q.deliver_now().is_err());
    assert!(q.deliver_now().is_err());
    let s = q.stats();
    assert_eq!(gauge(&s, "queue_batches"), 2.0);
    assert_eq!(gauge(&s, "queue_points"), 8.0);
    assert!(gauge(&s, "queue_bytes") > 0.0);
    assert_eq!(gauge(&s, "queue_oldest_age_seconds"), 5.0);
    assert_eq!(gauge(&s, "queue_delivery_failing"), 1.0);
    assert_eq!(counter(&s, "queue_delivery_errors_total"), 2);
    assert_eq!(counter(&s, "queue_delivered_batches_total"), 0);

    inner.fail_writes.store(false, Ordering::Relaxed);
    assert_eq!(q.deliver_now().unwrap(), 2);
    let s = q.stats();
    assert_eq!(gauge(&s, "queue_batches"), 0.0);
    assert_eq!(gauge(&s, "queue_points"), 0.0);
    assert_eq!(gauge(&s, "queue_bytes"), 0.0);
    assert_eq!(gauge(&s, "queue_oldest_age_seconds"), 0.0);
    assert_eq!(gauge(&s, "queue_delivery_failing"), 0.0);
    assert_eq!(counter(&s, "queue_delivered_batches_total"), 2);
    assert_eq!(counter(&s, "queue_delivered_points_total"), 8);
    assert_eq!(counter(&s, "queue_delivery_errors_total"), 2);
}

#[test]
fn backlog_points_are_the_acknowledged_undelivered_points() {
    // What the server reports as `kairosdb_queue_size` in Cassandra mode.
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let q = open(&inner, opts(dir.path()));
    assert_eq!(q.stats().backlog_points, 0);
    for i in 0..3 {
        q.write(&batch(i)).unwrap();
    }
    assert!(q.deliver_now().is_err());
    assert_eq!(
        q.stats().backlog_points,
        12,
        "3 batches of 4 points, stalled"
    );
    drop(q);

    // Replayed at open: still owed.
    let q = open(&inner, opts(dir.path()));
    assert_eq!(q.stats().backlog_points, 12);
    // A batch the inner store refuses is dropped, so it is no longer owed either.
    inner.fail_writes.store(false, Ordering::Relaxed);
    inner.reject_writes.store(true, Ordering::Relaxed);
    assert_eq!(q.deliver_now().unwrap(), 3);
    assert_eq!(q.stats().backlog_points, 0);
    assert_eq!(inner.writes().len(), 2);
}

#[test]
fn delete_waits_for_queued_writes_and_refuses_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let q = open(
        &inner,
        QueueOptions {
            delete_flush_timeout: Duration::from_millis(20),
            ..opts(dir.path())
        },
    );
    q.write(&batch(0)).unwrap();
    let req = DeleteRequest {
        metric: "cpu".into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    };
    assert!(
        matches!(q.delete(&req), Err(StorageError::Internal(ref m)) if m.contains("delete refused"))
    );
    assert!(inner.log.lock().is_empty());
    inner.fail_writes.store(false, Ordering::Relaxed);
    assert_eq!(q.delete(&req).unwrap(), 1);
    assert_eq!(
        *inner.log.lock(),
        vec![Event::Write(batch(0)), Event::Delete("cpu".into())]
    );
}

#[test]
fn closed_queue_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_inner, q) = open_fresh(opts(dir.path()));
    q.close().unwrap();
    assert!(matches!(q.write(&batch(0)), Err(StorageError::Closed)));
    assert!(!q.health().ok);
}

#[test]
fn batch_rejected_as_invalid_is_dropped_and_counted_not_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (inner, q) = open_fresh(opts(dir.path()));
    for i in 0..3 {
        q.write(&batch(i)).unwrap();
    }
    inner.reject_writes.store(true, Ordering::Relaxed);
    assert_eq!(q.deliver_now().unwrap(), 3);
    assert_eq!(inner.writes(), vec![batch(1), batch(2)]);
    assert_eq!(counter(&q.stats(), "queue_rejected_batches_total"), 1);
    assert!(q.health().ok);
}

/// The at-least-once choice relies on re-delivery being idempotent: the embedded
/// engine as the inner store keeps one value per (series, timestamp).
#[test]
fn redelivery_into_the_engine_is_idempotent_and_reads_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::EngineConfig::new(dir.path().join("engine"));
    cfg.background = false;
    let engine = Arc::new(crate::Engine::open(cfg).unwrap());
    let q = DeliveryQueue::open(engine.clone(), opts(&dir.path().join("queue"))).unwrap();
    q.write(&batch(1)).unwrap();
    q.write(&batch(1)).unwrap(); // as if re-delivered after a crash
    assert_eq!(q.deliver_now().unwrap(), 2);
    engine.write(&batch(1)).unwrap();
    let got = q
        .query(&SeriesQuery::new(
            "cpu",
            TagFilter::default(),
            TimeRange::ALL,
        ))
        .unwrap()
        .expect_complete();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].points,
        Points::Long {
            ts: vec![-5, 10, 11],
            values: vec![i64::MAX, 1, -1],
        }
    );
    drop(q);
    engine.close().unwrap();
}

#[test]
fn concurrent_writers_while_inner_flaps_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Flaky::default());
    let q = Arc::new(open(
        &inner,
        QueueOptions {
            background: true,
            ..opts(dir.path())
        },
    ));
    let writers: Vec<_> = (0..4i64)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    q.write(&batch(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for round in 0..20 {
        inner.fail_writes.store(round % 2 == 0, Ordering::Relaxed);
        std::thread::yield_now();
    }
    for w in writers {
        w.join().unwrap();
    }
    inner.fail_writes.store(false, Ordering::Relaxed);
    q.flush(Duration::from_secs(10)).unwrap();
    let got = inner.writes();
    assert_eq!(got.len(), 200, "each batch exactly once");
    for t in 0..4i64 {
        let mine: Vec<_> = got
            .iter()
            .filter(
                |b| matches!(&b.series[1].points, Points::String { ts, .. } if ts[0] / 1000 == t),
            )
            .cloned()
            .collect();
        assert_eq!(
            mine,
            (0..50).map(|i| batch(t * 1000 + i)).collect::<Vec<_>>()
        );
    }
}

/// Metadata bypasses the queue: a set reaches the inner store before the call
/// returns, even with undelivered points queued ahead of it, and reads pass through.
#[test]
fn metadata_goes_straight_to_the_inner_store() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Flaky::down();
    let q = open(&inner, opts(dir.path()));
    q.write(&batch(0)).unwrap();
    q.set_value("svc", "sk", "k", "v").unwrap();
    assert_eq!(
        inner
            .meta
            .lock()
            .unwrap()
            .get_value("svc", "sk", "k")
            .as_deref(),
        Some("v")
    );
    assert!(
        inner.writes().is_empty(),
        "the queued points are still queued"
    );
    assert_eq!(q.get_value("svc", "sk", "k").unwrap().as_deref(), Some("v"));
    assert_eq!(q.list_keys("svc", "sk", None).unwrap(), ["k"]);
    assert_eq!(q.list_service_keys("svc").unwrap(), ["sk"]);
    q.delete_key("svc", "sk", "k").unwrap();
    assert_eq!(inner.meta.lock().unwrap().get_value("svc", "sk", "k"), None);
}

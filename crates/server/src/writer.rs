//! The last hop of the ingest path, shared by HTTP and telnet: parsed [`WriteBatch`] →
//! optional extra validation → chunks of at most `max_batch_size` points → `Storage::write`.
//!
//! Synchronous: callers run it inside `spawn_blocking`. Not here: parsing (protocol crate),
//! deciding what to answer the client (the HTTP and telnet modules).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kairosdb_model::{Points, Storage, StorageError, WriteBatch};

use crate::metrics::ServerMetrics;

/// Longest string value KairosDB can store: Java's `writeUTF` fails above 65535 bytes at
/// storage time, after the client already got 204 (spec §2.7).
pub const MAX_STRING_BYTES: usize = 65535;

/// Longest TTL: Cassandra refuses 20 years and more, and KairosDB then drops the point
/// silently after answering 204 (spec §2.5, user-needs §1.6).
pub const MAX_TTL_SECS: u32 = 630_720_000;

/// At most this many validation messages are listed for one request.
const MAX_MESSAGES: usize = 100;

/// Removes points KairosDB would accept and then lose or fail on later, and returns one
/// message per removed point (or series, for a TTL). Enabled by `enable_validation`.
///
/// Deviation from KairosDB: these points are rejected up front with 400 instead of being
/// acknowledged and lost (see the constants above); non-finite doubles are rejected because
/// a stored NaN/Infinity makes every later query of the series fail (spec §4.6).
pub fn validate(batch: &mut WriteBatch) -> Vec<String> {
    let mut messages = Vec::new();
    let mut rejected = 0usize;
    let mut note = |messages: &mut Vec<String>, text: String| {
        rejected += 1;
        if messages.len() < MAX_MESSAGES {
            messages.push(text);
        }
    };
    batch.series.retain_mut(|s| {
        let name = &s.key.metric;
        if s.ttl_secs >= MAX_TTL_SECS {
            note(
                &mut messages,
                format!(
                    "metric(name={name}) ttl {} must be less than {MAX_TTL_SECS} seconds (20 years).",
                    s.ttl_secs
                ),
            );
            return false;
        }
        match &mut s.points {
            Points::Long { .. } => {}
            Points::Double { ts, values } => retain_points(ts, values, |t, v| {
                let ok = v.is_finite();
                if !ok {
                    note(
                        &mut messages,
                        format!("metric(name={name}) value at timestamp {t} is not a finite number."),
                    );
                }
                ok
            }),
            Points::String { ts, values } => retain_points(ts, values, |t, v| {
                let ok = v.len() <= MAX_STRING_BYTES;
                if !ok {
                    note(
                        &mut messages,
                        format!(
                            "metric(name={name}) string value at timestamp {t} is longer than {MAX_STRING_BYTES} bytes."
                        ),
                    );
                }
                ok
            }),
        }
        !s.points.is_empty()
    });
    if rejected > messages.len() {
        messages.push(format!(
            "{} more points were rejected for the same reasons.",
            rejected - messages.len()
        ));
    }
    messages
}

/// Keeps the (timestamp, value) pairs for which `keep` is true, in order.
fn retain_points<V>(ts: &mut Vec<i64>, values: &mut Vec<V>, mut keep: impl FnMut(i64, &V) -> bool) {
    let mut out = 0;
    for i in 0..ts.len() {
        if keep(ts[i], &values[i]) {
            ts.swap(out, i);
            values.swap(out, i);
            out += 1;
        }
    }
    ts.truncate(out);
    values.truncate(out);
}

/// Splits `batch` into batches of at most `max_points` points (series are cut when needed).
pub fn split(batch: WriteBatch, max_points: usize) -> VecDeque<WriteBatch> {
    let mut chunks = VecDeque::new();
    if batch.point_count() <= max_points {
        if !batch.is_empty() {
            chunks.push_back(batch);
        }
        return chunks;
    }
    let mut current = WriteBatch::new();
    let mut room = max_points;
    for mut series in batch.series {
        while !series.points.is_empty() {
            if series.points.len() <= room {
                room -= series.points.len();
                current.series.push(series);
                break;
            }
            let tail = split_off(&mut series.points, room);
            let head = std::mem::replace(&mut series.points, tail);
            if !head.is_empty() {
                current.series.push(kairosdb_model::SeriesPoints {
                    key: series.key.clone(),
                    ttl_secs: series.ttl_secs,
                    points: head,
                });
            }
            chunks.push_back(std::mem::take(&mut current));
            room = max_points;
        }
        if room == 0 {
            chunks.push_back(std::mem::take(&mut current));
            room = max_points;
        }
    }
    if !current.series.is_empty() {
        chunks.push_back(current);
    }
    chunks
}

/// Cuts `points` at `at`, returning the tail.
fn split_off(points: &mut Points, at: usize) -> Points {
    match points {
        Points::Long { ts, values } => Points::Long {
            ts: ts.split_off(at),
            values: values.split_off(at),
        },
        Points::Double { ts, values } => Points::Double {
            ts: ts.split_off(at),
            values: values.split_off(at),
        },
        Points::String { ts, values } => Points::String {
            ts: ts.split_off(at),
            values: values.split_off(at),
        },
    }
}

/// Writes the chunks front to back, removing each one once storage acknowledged it. On
/// error the failed chunk and everything after it stay in `chunks` (telnet retries them
/// after back-pressure; HTTP reports the error).
///
/// Acknowledged points are counted per metric for `kairosdb.metric_counters`
/// (`Tallies::points_received`: one map update per metric run of a chunk).
///
/// The points of `chunks` count in `kairosdb_queue_size` until storage acknowledged
/// them (then a delivery queue counts them until delivered, see `ServerMetrics`). A
/// scrape right between the acknowledgement and the decrement counts a chunk twice,
/// never zero times.
pub fn write_chunks(
    storage: &dyn Storage,
    metrics: &ServerMetrics,
    chunks: &mut VecDeque<WriteBatch>,
) -> Result<(), StorageError> {
    let waiting = |chunks: &VecDeque<WriteBatch>| {
        chunks.iter().map(WriteBatch::point_count).sum::<usize>() as i64
    };
    let points = waiting(chunks);
    // A trace span (`otel.rs`); free unless traces are exported.
    let _span = tracing::debug_span!("storage.write", points, chunks = chunks.len()).entered();
    metrics.queue_size.fetch_add(points, Ordering::Relaxed);
    let result = (|| {
        while let Some(chunk) = chunks.front() {
            let started = Instant::now();
            storage.write(chunk)?;
            let points = chunk.point_count();
            metrics.batch_written(points, started.elapsed());
            metrics.tallies.points_received(chunk);
            metrics
                .queue_size
                .fetch_sub(points as i64, Ordering::Relaxed);
            chunks.pop_front();
        }
        Ok(())
    })();
    // Not written: no longer waiting here (telnet may hand them in again).
    metrics
        .queue_size
        .fetch_sub(waiting(chunks), Ordering::Relaxed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::{BatchBuilder, Tags, Value};

    fn batch(series: usize, points: usize) -> WriteBatch {
        let mut b = BatchBuilder::new();
        for s in 0..series {
            let tags = Tags::from_pairs([("s", s.to_string())]);
            for p in 0..points {
                b.push("m", &tags, 0, p as i64, Value::Long(p as i64));
            }
        }
        b.finish()
    }

    #[test]
    fn split_keeps_every_point_in_order_and_respects_the_limit() {
        for (series, points, max) in [(3, 5, 4), (1, 10, 3), (4, 2, 2), (2, 3, 100), (5, 1, 1)] {
            let original = batch(series, points);
            let chunks = split(original.clone(), max);
            assert!(chunks
                .iter()
                .all(|c| c.point_count() <= max && !c.is_empty()));
            // Re-joining the chunks gives the original points per series.
            let mut joined = BatchBuilder::new();
            for c in &chunks {
                for s in &c.series {
                    let Points::Long { ts, values } = &s.points else {
                        panic!("BUG: long points expected")
                    };
                    for (t, v) in ts.iter().zip(values) {
                        joined.push(&s.key.metric, &s.key.tags, s.ttl_secs, *t, Value::Long(*v));
                    }
                }
            }
            assert_eq!(joined.finish(), original, "{series} {points} {max}");
        }
        assert!(split(WriteBatch::new(), 10).is_empty());
    }

    #[test]
    fn validate_drops_only_the_bad_points() {
        let tags = Tags::from_pairs([("h", "a")]);
        let mut b = BatchBuilder::new();
        b.push("d", &tags, 0, 1, Value::Double(1.5));
        b.push("d", &tags, 0, 2, Value::Double(f64::NAN));
        b.push(
            "s",
            &tags,
            0,
            3,
            Value::String("x".repeat(MAX_STRING_BYTES + 1)),
        );
        b.push("s", &tags, 0, 4, Value::String("ok".into()));
        b.push("t", &tags, MAX_TTL_SECS, 5, Value::Long(1));
        let mut batch = b.finish();
        let messages = validate(&mut batch);
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("ttl")), "{messages:?}");
        assert_eq!(batch.point_count(), 2);
        assert_eq!(batch.series.len(), 2);
    }

    /// `kairosdb_queue_size` as `/metrics` and `/api/v1/metrics` report it.
    fn queue_size(metrics: &ServerMetrics, storage: &dyn Storage) -> f64 {
        let figures = metrics.snapshot(&storage.stats());
        let size = figures.iter().find(|f| f.name == "kairosdb_queue_size");
        size.expect("kairosdb_queue_size is listed").value
    }

    #[test]
    fn queue_size_counts_points_acknowledged_and_not_yet_delivered_in_queue_mode() {
        use kairosdb_engine::{DeliveryQueue, QueueOptions, WalSync};
        use kairosdb_model::NullStorage;
        let dir = tempfile::tempdir().unwrap();
        // Without the background deliverer nothing is delivered until `deliver_now`:
        // delivery is stalled, as while Cassandra is down.
        let queue = DeliveryQueue::open(
            std::sync::Arc::new(NullStorage::new()),
            QueueOptions {
                background: false,
                sync: WalSync::None,
                ..QueueOptions::new(dir.path())
            },
        )
        .unwrap();
        let metrics = ServerMetrics::default();
        assert_eq!(queue_size(&metrics, &queue), 0.0);
        // 3 requests of 2 series × 500 points, each split into chunks of 300.
        for _ in 0..3 {
            let mut chunks = split(batch(2, 500), 300);
            write_chunks(&queue, &metrics, &mut chunks).unwrap();
        }
        assert_eq!(queue_size(&metrics, &queue), 3000.0);
        queue.deliver_now().unwrap();
        assert_eq!(queue_size(&metrics, &queue), 0.0);
    }

    #[test]
    fn queue_size_does_not_keep_points_of_a_failed_write() {
        let storage = crate::fake_storage::FakeStorage::failing([StorageError::Backpressure {
            retry_after_secs: 1,
        }]);
        let metrics = ServerMetrics::default();
        let mut chunks = split(batch(1, 10), 4);
        assert!(write_chunks(&storage, &metrics, &mut chunks).is_err());
        assert_eq!(
            chunks.iter().map(WriteBatch::point_count).sum::<usize>(),
            10
        );
        // The embedded engine (like this fake) has no backlog once a write returned.
        assert_eq!(queue_size(&metrics, &storage), 0.0);
        write_chunks(&storage, &metrics, &mut chunks).unwrap();
        assert_eq!(queue_size(&metrics, &storage), 0.0);
        assert_eq!(*storage.attempts.lock().unwrap(), 4);
    }
}

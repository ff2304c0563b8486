//! A durable local delivery queue in front of another [`Storage`] (Cassandra mode,
//! issue item 5 "No silent loss"): `write` appends the batch to the queue's own WAL
//! and acknowledges once it is on local disk (per [`WalSync`]); a background
//! deliverer sends batches, in order, to the inner store, retrying with capped
//! exponential backoff. Not here: anything about Cassandra itself, or the server
//! wiring (`/health/ready`, metrics, telnet back-pressure).
//!
//! Reuse of the engine WAL (`wal.rs`): same segment files, same `len | crc32 |
//! payload` frames, same torn-tail truncation on open. One new payload type
//! ([`REC_QUEUE_BATCH`]) and a delivered-position checkpoint (`delivered.ckpt`:
//! where delivery resumes on open, and what a missing one means), both drawn byte by
//! byte in `docs/format/queue.md`.
//!
//! Delivery is **at-least-once**: a crash after the inner write but before the
//! checkpoint is persisted re-delivers that batch on restart. This is harmless
//! because re-writing the same points is idempotent for every inner store we have:
//! KairosDB's Cassandra schema keys a cell by (row key, column = timestamp offset),
//! so a re-write overwrites the same cell, and the embedded engine keeps one value
//! per (series, timestamp), last write wins. TTL'd points get their TTL counted
//! again from the re-delivery (a deviation of at most the re-delivery delay).
//!
//! Ordering: batches are delivered in acknowledgement order, one at a time.
//! Deletes must not overtake queued writes, so `delete` first drains the queue up
//! to its own call (waiting at most `delete_flush_timeout`) and refuses with an
//! error when that does not succeed; nothing is deleted then. Reads and metadata
//! pass straight through: points still queued are not yet visible to queries.
//!
//! A batch the inner store rejects as [`StorageError::InvalidInput`] can never be
//! delivered; it is dropped with an error log and counted
//! (`queue_rejected_batches_total`) instead of blocking everything behind it.
//! Every other error is retried forever.
//!
//! Memory: queued batches are also kept decoded in memory (bounded by
//! `max_bytes` times the in-memory expansion of the columns).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kairosdb_model::{
    DataType, DeleteRequest, Gauge, HealthStatus, Points, Read, SeriesKey, SeriesPoints,
    SeriesQuery, Storage, StorageError, StorageStats, TagFilter, TimeRange, WriteBatch,
};
use parking_lot::{Condvar, Mutex};

use crate::codec::{decode_series_key, encode_series_key, put_uvarint, DecodeError, Reader};
use crate::column::Col;
use crate::wal::{self, Lsn, Record, WalWriter, FRAME_HEADER_LEN, NEVER};
use crate::{Clock, WalSync};

#[cfg(test)]
mod tests;

/// Payload type of a queued batch (distinct from the engine's record types, so an
/// engine never mistakes a queue directory for its WAL).
pub const REC_QUEUE_BATCH: u8 = 0x10;
const QUEUE_RECORD_VERSION: u8 = 1;
const CHECKPOINT_FILE: &str = "delivered.ckpt";
const CHECKPOINT_MAGIC: [u8; 8] = *b"KRSDBQCK";
const CHECKPOINT_VERSION: u8 = 1;
const CHECKPOINT_LEN: usize = 36;

/// Options of a [`DeliveryQueue`].
#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// Directory of the queue's WAL segments and checkpoint (created if missing).
    pub dir: PathBuf,
    /// Queued bytes above which `write` answers `Backpressure` (default 1 GiB).
    /// A single batch is always accepted into an empty queue.
    pub max_bytes: u64,
    /// When a write is fsynced relative to its acknowledgement (default 1 s group
    /// sync). `Interval` is run by the deliverer thread; without `background` only
    /// `sync`/`close` fsync then.
    pub sync: WalSync,
    /// Segment size at which a new WAL segment starts (default 64 MiB).
    pub segment_bytes: u64,
    /// First retry delay after a failed delivery (default 100 ms); doubled per failure.
    pub backoff_min: Duration,
    /// Cap of the retry delay (default 30 s).
    pub backoff_max: Duration,
    /// How long `delete` waits for earlier writes to be delivered (default 10 s).
    pub delete_flush_timeout: Duration,
    /// Run the deliverer thread (default true). Tests turn it off and call
    /// [`DeliveryQueue::deliver_now`].
    pub background: bool,
    /// Time source for batch ages and backoff deadlines.
    pub clock: Clock,
    /// Writes are refused while the queue directory's file system has less than this
    /// available (`disk.rs`); 0 = never. Default 256 MiB.
    pub min_free_disk_bytes: u64,
}

impl QueueOptions {
    pub fn new(dir: impl Into<PathBuf>) -> QueueOptions {
        QueueOptions {
            dir: dir.into(),
            ..QueueOptions::default()
        }
    }
}

impl Default for QueueOptions {
    fn default() -> QueueOptions {
        QueueOptions {
            dir: PathBuf::from("queue"),
            max_bytes: 1 << 30,
            sync: WalSync::Interval(Duration::from_secs(1)),
            segment_bytes: 64 << 20,
            min_free_disk_bytes: 256 << 20,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            delete_flush_timeout: Duration::from_secs(10),
            background: true,
            clock: Clock::system(),
        }
    }
}

/// One acknowledged, not yet delivered batch.
#[derive(Clone)]
struct Entry {
    seq: u64,
    /// End of its frame: the checkpoint once it is delivered.
    end: Lsn,
    batch: Arc<WriteBatch>,
    bytes: u64,
    points: u64,
    written_ms: i64,
}

struct State {
    wal: WalWriter,
    pending: VecDeque<Entry>,
    bytes: u64,
    points: u64,
    next_seq: u64,
    backoff: Duration,
    next_attempt_ms: i64,
    /// Set by a failed delivery, cleared by a successful one.
    failing_since_ms: Option<i64>,
    last_error: Option<String>,
    poisoned: Option<String>,
    stop: bool,
}

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter delivered_batches: "queue_delivered_batches_total",
            "Batches delivered to the inner store.";
        counter delivered_points: "queue_delivered_points_total",
            "Points delivered to the inner store.";
        counter delivery_errors: "queue_delivery_errors_total",
            "Failed delivery attempts.";
        counter rejected_batches: "queue_rejected_batches_total",
            "Batches the inner store rejected as invalid (dropped).";
        counter backpressure: "queue_backpressure_total",
            "Writes refused because the queue was full.";
        counter replayed_batches: "queue_replayed_batches_total",
            "Undelivered batches re-queued at open.";
        counter truncated_bytes: "queue_truncated_bytes_total",
            "Bytes cut from a torn queue WAL tail at open.";
        counter checkpoint_errors: "queue_checkpoint_errors_total",
            "Failed writes of the delivered checkpoint.";
    }
}

struct Shared {
    opts: QueueOptions,
    inner: Arc<dyn Storage>,
    state: Mutex<State>,
    /// Woken on every write, delivery and stop.
    cv: Condvar,
    /// Serialises delivery attempts so the queue front is delivered once at a time.
    deliver: Mutex<()>,
    /// WAL bytes known fsynced (group commit position).
    synced: Mutex<u64>,
    counters: Counters,
    /// Refuses writes before the queue's disk is full (`disk.rs`).
    disk: crate::disk::DiskGuard,
}

/// Gauges read from the queue's state (each under its own hold of the state lock).
const GAUGES: &[Gauge<Shared>] = &[
    Gauge::new(
        "queue_batches",
        "Batches acknowledged but not yet delivered.",
        |s| s.state.lock().pending.len() as f64,
    ),
    Gauge::new(
        "queue_points",
        "Points acknowledged but not yet delivered.",
        |s| s.state.lock().points as f64,
    ),
    Gauge::new(
        "queue_bytes",
        "Bytes of queued batches in the queue WAL.",
        |s| s.state.lock().bytes as f64,
    ),
    Gauge::new(
        "queue_oldest_age_seconds",
        "Age of the oldest undelivered batch.",
        |s| {
            let now = s.opts.clock.now_ms();
            let age_ms = s
                .state
                .lock()
                .pending
                .front()
                .map_or(0, |e| now.saturating_sub(e.written_ms).max(0));
            age_ms as f64 / 1000.0
        },
    ),
    Gauge::new(
        "queue_delivery_failing",
        "1 while delivery to the inner store is failing.",
        |s| {
            if s.state.lock().failing_since_ms.is_some() {
                1.0
            } else {
                0.0
            }
        },
    ),
];

/// A [`Storage`] that acknowledges writes once they are in a local WAL and
/// delivers them to `inner` in the background. See the module docs.
pub struct DeliveryQueue {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn io_internal(what: &str, e: io::Error) -> StorageError {
    StorageError::Internal(format!("{what}: {e}"))
}

fn corrupt(what: &str, e: DecodeError) -> StorageError {
    StorageError::Corruption(format!("{what}: {e}"))
}

impl DeliveryQueue {
    /// Opens (or creates) the queue in `opts.dir`, re-queueing every batch after the
    /// delivered checkpoint, and starts the deliverer when `opts.background`.
    pub fn open(
        inner: Arc<dyn Storage>,
        opts: QueueOptions,
    ) -> Result<DeliveryQueue, StorageError> {
        if opts.segment_bytes < 4096 {
            return Err(StorageError::InvalidInput(format!(
                "queue segment_bytes must be at least 4096, got {}",
                opts.segment_bytes
            )));
        }
        if let WalSync::Interval(d) = opts.sync {
            if d.is_zero() {
                return Err(StorageError::InvalidInput(
                    "WalSync::Interval needs a non-zero interval".into(),
                ));
            }
        }
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| io_internal(&format!("creating {}", opts.dir.display()), e))?;
        let ckpt = read_checkpoint(&opts.dir);
        let mut pending = VecDeque::new();
        let (mut bytes, mut points, mut seq) = (0u64, 0u64, 0u64);
        let report = wal::replay(&opts.dir, false, |lsn, payload| {
            if lsn < ckpt {
                return Ok(());
            }
            let (batch, written_ms) = decode_batch(payload)
                .map_err(|e| corrupt(&format!("queue record at {lsn:?}"), e))?;
            let len = (FRAME_HEADER_LEN + payload.len()) as u64;
            let n = batch.point_count() as u64;
            bytes += len;
            points += n;
            pending.push_back(Entry {
                seq,
                end: Lsn {
                    segment: lsn.segment,
                    offset: lsn.offset + len,
                },
                batch: Arc::new(batch),
                bytes: len,
                points: n,
                written_ms,
            });
            seq += 1;
            Ok(())
        })?;
        // The next segment must sort after the checkpoint even when every segment
        // before it has been deleted, or new records would be skipped on replay.
        let next_segment = report
            .segments
            .last()
            .map_or(1, |s| s.0 + 1)
            .max(ckpt.segment + 1);
        let durable = opts.sync != WalSync::None;
        let mut writer = WalWriter::create(
            &opts.dir,
            next_segment,
            report.segments.clone(),
            opts.segment_bytes,
            durable,
        )
        .map_err(|e| io_internal("creating queue WAL segment", e))?;
        // With nothing left to deliver, every closed segment can go (this also drops
        // the empty segment each earlier open started).
        let upto = if pending.is_empty() {
            writer.remove_below(writer.current_segment())
        } else {
            remove_delivered(&mut writer, ckpt)
        };
        upto.map_err(|e| io_internal("removing delivered queue segments", e))?;
        tracing::info!(
            dir = %opts.dir.display(),
            queued_batches = pending.len(),
            queued_bytes = bytes,
            truncated_bytes = report.truncated_bytes,
            "delivery queue opened"
        );
        let counters = Counters::default();
        counters
            .replayed_batches
            .store(pending.len() as u64, Ordering::Relaxed);
        counters
            .truncated_bytes
            .store(report.truncated_bytes, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            disk: crate::disk::DiskGuard::new(opts.dir.clone(), opts.min_free_disk_bytes),
            state: Mutex::new(State {
                wal: writer,
                pending,
                bytes,
                points,
                next_seq: seq,
                backoff: opts.backoff_min,
                next_attempt_ms: i64::MIN,
                failing_since_ms: None,
                last_error: None,
                poisoned: None,
                stop: false,
            }),
            opts,
            inner,
            cv: Condvar::new(),
            deliver: Mutex::new(()),
            synced: Mutex::new(0),
            counters,
        });
        let thread = if shared.opts.background {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("kairos-queue".into())
                    .spawn(move || s.deliver_loop())
                    .map_err(|e| io_internal("spawning the queue deliverer", e))?,
            )
        } else {
            None
        };
        Ok(DeliveryQueue {
            shared,
            thread: Mutex::new(thread),
        })
    }

    /// Tries to deliver every queued batch now, ignoring the backoff schedule.
    /// Returns how many were delivered, or the inner store's error at the first
    /// batch it refused (later batches stay queued, in order).
    pub fn deliver_now(&self) -> Result<u64, StorageError> {
        let mut n = 0;
        while self.shared.deliver_one()? {
            n += 1;
        }
        Ok(n)
    }

    /// Waits until every batch acknowledged before this call is delivered, or
    /// `timeout` passes (then an error naming the last delivery failure).
    pub fn flush(&self, timeout: Duration) -> Result<(), StorageError> {
        self.shared.flush(timeout)
    }

    /// Stops the deliverer and fsyncs the queue WAL; undelivered batches stay on
    /// disk for the next open. Later writes get `Closed`. Idempotent.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let mut st = self.shared.state.lock();
            st.stop = true;
        }
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        if self.shared.state.lock().poisoned.is_some() {
            return Ok(());
        }
        self.shared.sync_all()
    }
}

impl Drop for DeliveryQueue {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the delivery queue on drop failed");
        }
    }
}

impl Shared {
    fn is_drained_to(st: &State, target_seq: u64) -> bool {
        st.pending.front().is_none_or(|e| e.seq >= target_seq)
    }

    fn retry_after_secs(&self, st: &State) -> u32 {
        st.backoff.as_secs_f64().ceil().max(1.0) as u32
    }

    fn poison(&self, st: &mut State, msg: String) -> StorageError {
        tracing::error!(error = %msg, "delivery queue poisoned");
        st.poisoned.get_or_insert(msg.clone());
        StorageError::Poisoned(msg)
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.disk.check()?;
        let now = self.opts.clock.now_ms();
        let mut frame = Vec::new();
        encode_batch(&mut frame, batch, now);
        if frame.len() - FRAME_HEADER_LEN > wal::MAX_RECORD_LEN {
            return Err(StorageError::InvalidInput(format!(
                "batch encodes to {} bytes, more than the queue's record limit of {} bytes",
                frame.len(),
                wal::MAX_RECORD_LEN
            )));
        }
        let len = frame.len() as u64;
        let target = {
            let mut st = self.state.lock();
            if let Some(p) = &st.poisoned {
                return Err(StorageError::Poisoned(p.clone()));
            }
            if st.stop {
                return Err(StorageError::Closed);
            }
            if !st.pending.is_empty() && st.bytes + len > self.opts.max_bytes {
                self.counters.backpressure.fetch_add(1, Ordering::Relaxed);
                return Err(StorageError::Backpressure {
                    retry_after_secs: self.retry_after_secs(&st),
                });
            }
            let lsn = match st.wal.append(&[&frame]) {
                Ok(l) => l,
                Err(e) => return Err(self.poison(&mut st, format!("queue WAL write failed: {e}"))),
            };
            let seq = st.next_seq;
            st.next_seq += 1;
            st.bytes += len;
            st.points += batch.point_count() as u64;
            st.pending.push_back(Entry {
                seq,
                end: Lsn {
                    segment: lsn.segment,
                    offset: lsn.offset + len,
                },
                batch: Arc::new(batch.clone()),
                bytes: len,
                points: batch.point_count() as u64,
                written_ms: now,
            });
            st.wal.written()
        };
        self.cv.notify_all();
        if self.opts.sync == WalSync::Always {
            self.sync_to(target)?;
        }
        Ok(())
    }

    fn sync_to(&self, target: u64) -> Result<(), StorageError> {
        let mut synced = self.synced.lock();
        if *synced >= target {
            return Ok(());
        }
        let snap = self.state.lock().wal.sync_snapshot();
        for f in &snap.files {
            if let Err(e) = f.sync_data() {
                let mut st = self.state.lock();
                return Err(self.poison(&mut st, format!("queue WAL fsync failed: {e}")));
            }
        }
        *synced = snap.written;
        Ok(())
    }

    /// fsyncs unconditionally (also segments rotated since the last sync).
    fn sync_all(&self) -> Result<(), StorageError> {
        let mut synced = self.synced.lock();
        let snap = self.state.lock().wal.sync_snapshot();
        for f in &snap.files {
            if let Err(e) = f.sync_data() {
                let mut st = self.state.lock();
                return Err(self.poison(&mut st, format!("queue WAL fsync failed: {e}")));
            }
        }
        *synced = snap.written;
        Ok(())
    }

    /// Delivers the front batch. `Ok(false)` when the queue is empty.
    fn deliver_one(&self) -> Result<bool, StorageError> {
        let _d = self.deliver.lock();
        let Some(entry) = self.state.lock().pending.front().cloned() else {
            return Ok(false);
        };
        match self.inner.write(&entry.batch) {
            Ok(()) => {
                self.counters
                    .delivered_batches
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .delivered_points
                    .fetch_add(entry.points, Ordering::Relaxed);
            }
            Err(StorageError::InvalidInput(msg)) => {
                tracing::error!(
                    error = %msg, points = entry.points,
                    "inner store rejected a queued batch as invalid; dropping it"
                );
                self.counters
                    .rejected_batches
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let mut st = self.state.lock();
                let now = self.opts.clock.now_ms();
                self.counters
                    .delivery_errors
                    .fetch_add(1, Ordering::Relaxed);
                if st.failing_since_ms.is_none() {
                    tracing::warn!(error = %e, "delivery to the inner store failed; queueing");
                }
                st.failing_since_ms.get_or_insert(now);
                st.last_error = Some(e.to_string());
                st.next_attempt_ms = now.saturating_add(st.backoff.as_millis() as i64);
                st.backoff = (st.backoff * 2).min(self.opts.backoff_max);
                return Err(e);
            }
        }
        {
            let mut st = self.state.lock();
            let front = st.pending.pop_front();
            debug_assert!(front.as_ref().is_some_and(|f| f.seq == entry.seq));
            st.bytes -= entry.bytes;
            st.points -= entry.points;
            if st.failing_since_ms.take().is_some() {
                tracing::info!("delivery to the inner store recovered");
            }
            st.backoff = self.opts.backoff_min;
            st.next_attempt_ms = i64::MIN;
        }
        self.cv.notify_all();
        // Checkpoint before deleting segments: a crash in between only leaves
        // segments that the next open skips and deletes.
        let durable = self.opts.sync != WalSync::None;
        match write_checkpoint(&self.opts.dir, entry.end, durable) {
            Ok(()) => {
                let mut st = self.state.lock();
                if let Err(e) = remove_delivered(&mut st.wal, entry.end) {
                    tracing::warn!(error = %e, "removing delivered queue segments failed");
                }
            }
            Err(e) => {
                // Only costs a re-delivery (idempotent) after a restart.
                self.counters
                    .checkpoint_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "persisting the queue checkpoint failed");
            }
        }
        Ok(true)
    }

    fn flush(&self, timeout: Duration) -> Result<(), StorageError> {
        let deadline = Instant::now() + timeout;
        let target = self.state.lock().next_seq;
        loop {
            if !self.opts.background {
                let _ = self.deliver_all();
            } else {
                // An explicit flush retries now, whatever the backoff says.
                self.state.lock().next_attempt_ms = i64::MIN;
                self.cv.notify_all();
            }
            let mut st = self.state.lock();
            if Self::is_drained_to(&st, target) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StorageError::Internal(format!(
                    "delivery queue not drained within {timeout:?}: {} batches left; last delivery error: {}",
                    st.pending.len(),
                    st.last_error.as_deref().unwrap_or("none")
                )));
            }
            let wait = deadline.min(Instant::now() + self.opts.backoff_min);
            self.cv.wait_until(&mut st, wait);
        }
    }

    fn deliver_all(&self) -> Result<(), StorageError> {
        while self.deliver_one()? {}
        Ok(())
    }

    fn deliver_loop(&self) {
        let sync_every = match self.opts.sync {
            WalSync::Interval(d) => Some(d),
            _ => None,
        };
        let tick = sync_every.unwrap_or(Duration::from_secs(1));
        let mut last_sync = Instant::now();
        loop {
            let due = {
                let mut st = self.state.lock();
                if st.stop {
                    return;
                }
                let now = self.opts.clock.now_ms();
                let due = !st.pending.is_empty() && now >= st.next_attempt_ms;
                if !due {
                    let wait = if st.pending.is_empty() {
                        tick
                    } else {
                        let ms = st.next_attempt_ms.saturating_sub(now).max(1) as u64;
                        tick.min(Duration::from_millis(ms))
                    };
                    self.cv.wait_for(&mut st, wait);
                }
                due
            };
            if due {
                // One batch at a time so `close` does not wait for a long queue.
                while !self.state.lock().stop && matches!(self.deliver_one(), Ok(true)) {}
            }
            if let Some(every) = sync_every {
                if last_sync.elapsed() >= every {
                    let target = self.state.lock().wal.written();
                    if let Err(e) = self.sync_to(target) {
                        tracing::error!(error = %e, "queue WAL group sync failed");
                    }
                    last_sync = Instant::now();
                }
            }
        }
    }
}

// Metadata bypasses the queue: each call goes straight to the inner store (Cassandra)
// and is acknowledged only when the store has it, synchronously, as KairosDB's
// `ServiceKeyStore` calls are. Metadata is small and rare, and has no ordering with
// the queued points; queueing it would make a read right after a set miss it.
kairosdb_model::forward_service_store!(DeliveryQueue, this => this.shared.inner);

impl Storage for DeliveryQueue {
    /// Acknowledges once the batch is in the queue WAL (fsynced per `sync`);
    /// `Backpressure` when `max_bytes` are already queued.
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.shared.write(batch)
    }
    /// Refused: a backfill decides against what is stored, and queued points are not
    /// stored yet (and the store behind the queue, Cassandra, cannot backfill either).
    fn backfill(&self, _batch: &WriteBatch) -> Result<(), StorageError> {
        Err(StorageError::Unsupported(
            "the delivery queue (Cassandra mode) cannot backfill (store only the points that              are absent); cluster workers use the embedded engine"
                .into(),
        ))
    }
    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.shared.inner.query(query)
    }
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.shared.inner.series_keys(metric, filter, range)
    }

    fn series_keys_now(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Option<Result<Vec<SeriesKey>, StorageError>> {
        self.shared.inner.series_keys_now(metric, filter, range)
    }
    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.shared.inner.metric_names(prefix)
    }
    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.shared.inner.tag_names()
    }
    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.shared.inner.tag_values()
    }
    /// Drains the queue up to this call first, so the delete never overtakes
    /// a write acknowledged before it; refuses when that times out.
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        self.shared
            .flush(self.shared.opts.delete_flush_timeout)
            .map_err(|e| {
                StorageError::Internal(format!(
                    "delete refused: earlier writes are not delivered yet ({e})"
                ))
            })?;
        self.shared.inner.delete(request)
    }
    /// Indexes what the inner store holds; queued rows are indexed when delivered.
    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        self.shared.inner.index_metric_tags(metric, range)
    }
    /// Makes every acknowledged write durable in the queue WAL (not in the inner store).
    fn sync(&self) -> Result<(), StorageError> {
        if let Some(p) = &self.shared.state.lock().poisoned {
            return Err(StorageError::Poisoned(p.clone()));
        }
        self.shared.sync_all()
    }
    fn health(&self) -> HealthStatus {
        let now = self.shared.opts.clock.now_ms();
        {
            let st = self.shared.state.lock();
            if let Some(p) = &st.poisoned {
                return HealthStatus {
                    ok: false,
                    detail: format!("delivery queue poisoned: {p}"),
                };
            }
            if st.stop {
                return HealthStatus {
                    ok: false,
                    detail: "closed".into(),
                };
            }
            if let Some(since) = st.failing_since_ms {
                return HealthStatus {
                    ok: false,
                    detail: format!(
                        "delivery to the inner store failing for {} ms ({} batches, {} bytes queued): {}",
                        now.saturating_sub(since),
                        st.pending.len(),
                        st.bytes,
                        st.last_error.as_deref().unwrap_or("unknown error")
                    ),
                };
            }
        }
        let h = self.shared.inner.health();
        if h.ok {
            h
        } else {
            HealthStatus {
                ok: false,
                detail: format!("inner store: {}", h.detail),
            }
        }
    }
    fn stats(&self) -> StorageStats {
        let mut stats = self.shared.counters.collect();
        stats.read_gauges(GAUGES, &self.shared);
        // What the server reports as `kairosdb_queue_size`.
        stats.backlog_points = self.shared.state.lock().points;
        stats.append(self.shared.inner.stats());
        stats
    }
}

// ---------------------------------------------------------------------------
// Record and checkpoint formats (drawn in docs/format/queue.md)
// ---------------------------------------------------------------------------

/// Appends one complete queue frame for `batch` to `buf`.
pub fn encode_batch(buf: &mut Vec<u8>, batch: &WriteBatch, written_ms: i64) {
    let start = wal::begin_record(buf, REC_QUEUE_BATCH);
    buf.push(QUEUE_RECORD_VERSION);
    buf.extend_from_slice(&written_ms.to_le_bytes());
    put_uvarint(buf, batch.series.len() as u64);
    for s in &batch.series {
        encode_series_key(buf, &s.key);
        put_uvarint(buf, u64::from(s.ttl_secs));
    }
    buf.push(wal::REC_POINTS);
    put_uvarint(buf, batch.series.len() as u64);
    for (i, s) in batch.series.iter().enumerate() {
        wal::encode_points_chunk(buf, i as u64, NEVER, &s.points);
    }
    wal::finish_record(buf, start);
}

/// Decodes a queue frame's payload back into the batch and its write time. Never
/// panics, whatever `payload` holds (fuzzed by `fuzz/fuzz_targets/queue_record.rs`).
pub fn decode_batch(payload: &[u8]) -> Result<(WriteBatch, i64), DecodeError> {
    let mut r = Reader::new(payload);
    let at = r.pos();
    if r.u8("record type")? != REC_QUEUE_BATCH {
        return Err(DecodeError::Invalid {
            what: "queue record type",
            offset: at,
        });
    }
    let at = r.pos();
    if r.u8("queue record version")? != QUEUE_RECORD_VERSION {
        return Err(DecodeError::Invalid {
            what: "queue record version",
            offset: at,
        });
    }
    let written_ms = r.i64_le("written_ms")?;
    let n = r.len(r.remaining(), "series count")?;
    let mut heads = Vec::with_capacity(n);
    for _ in 0..n {
        let key = decode_series_key(&mut r)?;
        let at = r.pos();
        let ttl = u32::try_from(r.uvarint("ttl")?).map_err(|_| DecodeError::Invalid {
            what: "ttl",
            offset: at,
        })?;
        heads.push((key, ttl));
    }
    let base = r.pos();
    let rest = &payload[base..];
    let Record::Points(mut pr) = wal::decode_record(rest)? else {
        return Err(DecodeError::Invalid {
            what: "queue points record type",
            offset: base,
        });
    };
    let mut ts = Vec::new();
    let mut vals = Col::new(DataType::Long);
    let mut series = Vec::with_capacity(n);
    for (i, (key, ttl_secs)) in heads.into_iter().enumerate() {
        let h = pr
            .next_chunk(&mut ts, &mut vals)
            .ok_or(DecodeError::Invalid {
                what: "missing points chunk",
                offset: base,
            })??;
        if h.sid != i as u64 || h.data_type != key.data_type {
            return Err(DecodeError::Invalid {
                what: "points chunk does not match its series",
                offset: base,
            });
        }
        let ts = std::mem::take(&mut ts);
        let points = match &mut vals {
            Col::Long(v) => Points::Long {
                ts,
                values: std::mem::take(v),
            },
            Col::Double(v) => Points::Double {
                ts,
                values: std::mem::take(v),
            },
            Col::Str(s) => Points::String {
                ts,
                values: (0..s.len()).map(|j| s.get(j).to_owned()).collect(),
            },
        };
        series.push(SeriesPoints {
            key,
            ttl_secs,
            points,
        });
    }
    if pr.next_chunk(&mut ts, &mut vals).is_some() {
        return Err(DecodeError::Invalid {
            what: "extra points chunk",
            offset: base,
        });
    }
    Ok((WriteBatch { series }, written_ms))
}

fn encode_checkpoint(at: Lsn) -> [u8; CHECKPOINT_LEN] {
    let mut b = [0u8; CHECKPOINT_LEN];
    b[..8].copy_from_slice(&CHECKPOINT_MAGIC);
    b[8] = CHECKPOINT_VERSION;
    b[16..24].copy_from_slice(&at.segment.to_le_bytes());
    b[24..32].copy_from_slice(&at.offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..32]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_checkpoint(b: &[u8]) -> Option<Lsn> {
    if b.len() != CHECKPOINT_LEN
        || b[..8] != CHECKPOINT_MAGIC
        || b[8] != CHECKPOINT_VERSION
        || crc32fast::hash(&b[..32]).to_le_bytes() != b[32..36]
    {
        return None;
    }
    Some(Lsn {
        segment: u64::from_le_bytes(b[16..24].try_into().ok()?),
        offset: u64::from_le_bytes(b[24..32].try_into().ok()?),
    })
}

/// The delivered position; the start of the log when missing or unreadable
/// (then everything is delivered again, which is idempotent).
fn read_checkpoint(dir: &Path) -> Lsn {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::read(&path) {
        Ok(b) => decode_checkpoint(&b).unwrap_or_else(|| {
            tracing::error!(
                path = %path.display(),
                "unreadable queue checkpoint; re-delivering the whole queue"
            );
            Lsn::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Lsn::default(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "reading the queue checkpoint failed; re-delivering the whole queue");
            Lsn::default()
        }
    }
}

fn write_checkpoint(dir: &Path, at: Lsn, durable: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&encode_checkpoint(at))?;
    if durable {
        f.sync_data()?;
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Deletes closed segments whose records all end at or before `ckpt`.
fn remove_delivered(w: &mut WalWriter, ckpt: Lsn) -> io::Result<u64> {
    let mut below = ckpt.segment;
    if let Some(&(_, len)) = w.closed_segments().iter().find(|s| s.0 == ckpt.segment) {
        if ckpt.offset >= len {
            below = ckpt.segment + 1;
        }
    }
    w.remove_below(below.min(w.current_segment()))
}

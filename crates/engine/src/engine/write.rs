//! The write path, in the order of the durability steps in `lib.rs`: disk space
//! (`disk.rs`) → validate → backpressure → resolve series ids → WAL append → head insert (under the WAL lock)
//! → fsync per `WalSync` (group commit) → acknowledge. A backfill (`Inner::backfill`)
//! takes the same steps for the points it finds absent, deciding under the WAL lock.
//!
//! Not here: the WAL's framing and files (`wal.rs`), the head's layout (`head.rs`),
//! and sealing full heads, which a write only queues for the maintenance thread
//! (`maintain.rs`).

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{Points, SeriesPoints, StorageError, TimeRange, WriteBatch};

use super::{secs, Inner};
use crate::block::Decoded;
use crate::codec::put_uvarint;
use crate::index::SeriesEntry;
use crate::sealed::{Stop, Work};
use crate::wal::{self, Lsn, WalWriter, NEVER};
use crate::WalSync;

thread_local! {
    /// Reused WAL encoding buffer (one per writer thread).
    static ENC: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One series of a batch, resolved: its index in the batch, its entry and the
/// expiry of its points (seconds, or [`NEVER`]).
type Entry = (usize, Arc<SeriesEntry>, u64);

impl Inner {
    pub fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.check_writable()?;
        // Deletes and maintenance still run when space is short; new points wait.
        self.disk.check()?;
        let points = validate_batch(batch)?;
        if points == 0 {
            return Ok(());
        }
        self.admit()?;
        let now_ms = self.now_ms();
        let entries = self.resolve_series(batch, secs(now_ms))?;
        let (target, queued) = self.log_and_insert(batch, &entries, now_ms)?;
        self.stored(points, target, queued)
    }

    /// After a write or backfill is in the WAL and the head: count it, sync it when every
    /// write syncs, and hand full heads to the sealer.
    fn stored(&self, points: usize, target: u64, queued: Vec<u64>) -> Result<(), StorageError> {
        self.counters
            .points_written
            .fetch_add(points as u64, Ordering::Relaxed);
        self.counters
            .batches_written
            .fetch_add(1, Ordering::Relaxed);
        if self.cfg.wal_sync == WalSync::Always {
            self.sync_to(target)?;
        }
        if !queued.is_empty() {
            self.seal_queue.lock().extend(queued);
            self.kick();
        }
        Ok(())
    }

    /// Memory bound: above `max_head_bytes`, seal the biggest heads; if still
    /// above, refuse the write before anything is logged.
    fn admit(&self) -> Result<(), StorageError> {
        let max = self.cfg.max_head_bytes;
        if self.head.bytes() <= max {
            return Ok(());
        }
        if let Some(_g) = self.maint.try_lock_for(Duration::from_millis(200)) {
            if let Err(e) = self.seal_biggest_locked(max / 4 * 3) {
                tracing::error!(error = %e, "sealing under memory pressure failed");
            }
        }
        if self.head.bytes() > max {
            self.counters
                .backpressure_events
                .fetch_add(1, Ordering::Relaxed);
            return Err(StorageError::Backpressure {
                retry_after_secs: 1,
            });
        }
        Ok(())
    }

    /// The series of the batch that have points, registering new ones, with the
    /// expiry of their points (the batch's TTL, else `default_ttl_secs`).
    fn resolve_series(&self, batch: &WriteBatch, now_s: u64) -> Result<Vec<Entry>, StorageError> {
        let mut scratch = Vec::with_capacity(128);
        let mut entries: Vec<Entry> = Vec::with_capacity(batch.series.len());
        for (i, sp) in batch.series.iter().enumerate() {
            if sp.points.is_empty() {
                continue;
            }
            let (e, created) =
                self.registry
                    .get_or_create(&sp.key, &self.sealed.store, &mut scratch)?;
            if created {
                self.counters.series_created.fetch_add(1, Ordering::Relaxed);
            }
            let ttl = if sp.ttl_secs == 0 {
                self.cfg.default_ttl_secs
            } else {
                sp.ttl_secs
            };
            let expiry = if ttl == 0 {
                NEVER
            } else {
                now_s + u64::from(ttl)
            };
            entries.push((i, e, expiry));
        }
        Ok(entries)
    }

    /// Encodes the batch as one points record (outside the WAL lock, in the writer
    /// thread's reused buffer), then logs and inserts it under the lock. Returns what
    /// [`Self::append_and_insert`] returns.
    fn log_and_insert(
        &self,
        batch: &WriteBatch,
        entries: &[Entry],
        now_ms: i64,
    ) -> Result<(u64, Vec<u64>), StorageError> {
        with_points_record(batch, entries, |rec| {
            let mut wal = self.wal.lock();
            self.append_and_insert(&mut wal, batch, entries, rec, now_ms)
        })
    }

    /// Appends the frames and inserts into the head, the caller holding the WAL lock.
    /// Returns the group-commit position and the series that reached the seal size.
    fn append_and_insert(
        &self,
        wal: &mut WalWriter,
        batch: &WriteBatch,
        entries: &[Entry],
        rec: &[u8],
        now_ms: i64,
    ) -> Result<(u64, Vec<u64>), StorageError> {
        // Re-checked under the lock: close() flips `closed` under it.
        self.check_writable()?;
        let mut defs = Vec::new();
        let unlogged: Vec<&Arc<SeriesEntry>> = entries
            .iter()
            .map(|(_, e, _)| e)
            .filter(|e| !e.logged.load(Ordering::Acquire))
            .collect();
        if !unlogged.is_empty() {
            wal::encode_series_defs(&mut defs, unlogged.iter().map(|e| (e.id, &*e.key)));
        }
        let lsn = match wal.append(&[&defs, rec]) {
            Ok(l) => l,
            Err(e) => return Err(self.poison(format!("WAL write failed: {e}"))),
        };
        self.counters
            .wal_bytes_written
            .fetch_add((defs.len() + rec.len()) as u64, Ordering::Relaxed);
        for e in unlogged {
            e.logged.store(true, Ordering::Release);
        }
        let plsn = Lsn {
            segment: lsn.segment,
            offset: lsn.offset + defs.len() as u64,
        };
        let items: Vec<(u64, &Points, u64)> = entries
            .iter()
            .map(|(i, e, exp)| (e.id, &batch.series[*i].points, *exp))
            .collect();
        let queued = self
            .head
            .append_batch(&items, plsn, now_ms, self.cfg.seal_points, |k| {
                self.registry.mark_live(&entries[k].1)
            });
        Ok((wal.written(), queued))
    }

    /// [`kairosdb_model::Storage::backfill`]: stores only the points of `batch` whose
    /// series and timestamp hold no alive point, deciding under the WAL lock.
    ///
    /// Blocks change only under the maintenance lock, so with it held the sealed points
    /// of the batch's series are read first, while ordinary writes go on; the head, which
    /// writes do change, is read under the WAL lock, and what is absent from both is
    /// logged and inserted under that same lock. A write racing the backfill therefore
    /// either is in the head before the check (and is kept) or logged after the backfill
    /// (and wins, as any later write does).
    ///
    /// The WAL gets the outcome, not the request: an ordinary points record of the points
    /// stored, so replay, which applies records in log order with the last write
    /// winning, rebuilds exactly this (a point the backfill skipped is not in its record;
    /// a write logged after it replaces what it stored). The log format is unchanged.
    pub fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.check_writable()?;
        self.disk.check()?;
        if validate_batch(batch)? == 0 {
            return Ok(());
        }
        self.admit()?;
        let _m = self.maint.lock();
        let now_ms = self.now_ms();
        let now_s = secs(now_ms);
        let entries = self.resolve_series(batch, now_s)?;
        let mut sealed = Vec::with_capacity(entries.len());
        for (i, e, _) in &entries {
            let span = span_of(batch.series[*i].points.timestamps());
            sealed.push(self.sealed_timestamps(e, span, now_s)?);
        }
        let (target, queued, points) = {
            let mut wal = self.wal.lock();
            let mut absent = WriteBatch::new();
            let mut absent_entries: Vec<Entry> = Vec::new();
            for ((i, e, exp), sealed) in entries.iter().zip(&sealed) {
                let sp = &batch.series[*i];
                let ts = sp.points.timestamps();
                let mut stored: Vec<i64> = self
                    .head
                    .snapshot(e.id, span_of(ts), now_s)
                    .into_iter()
                    .flat_map(|run| run.ts)
                    .collect();
                stored.extend_from_slice(sealed);
                stored.sort_unstable();
                let keep: Vec<usize> = (0..ts.len())
                    .filter(|&k| stored.binary_search(&ts[k]).is_err())
                    .collect();
                if keep.is_empty() {
                    continue;
                }
                absent_entries.push((absent.series.len(), e.clone(), *exp));
                absent.series.push(SeriesPoints {
                    key: sp.key.clone(),
                    ttl_secs: sp.ttl_secs,
                    points: sp.points.pick(&keep),
                });
            }
            if absent_entries.is_empty() {
                return Ok(());
            }
            let (target, queued) = with_points_record(&absent, &absent_entries, |rec| {
                self.append_and_insert(&mut wal, &absent, &absent_entries, rec, now_ms)
            })?;
            (target, queued, absent.point_count())
        };
        self.stored(points, target, queued)
    }

    /// Timestamps of the alive sealed points of `e` in `range`, in no particular order
    /// (overlapping blocks may repeat one). The caller holds the maintenance lock.
    fn sealed_timestamps(
        &self,
        e: &SeriesEntry,
        range: TimeRange,
        now_s: u64,
    ) -> Result<Vec<i64>, StorageError> {
        let summary = *e.summary.lock();
        let mut d = Decoded::new();
        let runs = match self.sealed.read(
            e,
            &summary,
            range,
            now_s,
            false,
            &mut d,
            &mut Work::new(None),
        ) {
            Ok(runs) => runs,
            Err(Stop::Failed(err)) => return Err(err),
            Err(Stop::OverWorkLimit) => panic!("BUG: a read without a work limit stopped"),
        };
        Ok(runs.into_iter().flat_map(|run| run.ts).collect())
    }

    /// fsyncs the WAL up to at least `target` (group commit: one fsync covers
    /// every writer waiting behind it).
    pub fn sync_to(&self, target: u64) -> Result<(), StorageError> {
        let mut synced = self.synced.lock();
        if *synced >= target {
            return Ok(());
        }
        *synced = self.fsync_wal()?;
        Ok(())
    }

    pub fn sync_all(&self) -> Result<(), StorageError> {
        let target = self.wal.lock().written();
        let mut synced = self.synced.lock();
        *synced = self.fsync_wal()?.max(target);
        Ok(())
    }

    /// fsyncs the WAL's files as they are now (a failure poisons the engine); returns
    /// the WAL bytes written then, all of them durable now.
    fn fsync_wal(&self) -> Result<u64, StorageError> {
        let snap = self.wal.lock().sync_snapshot();
        for f in &snap.files {
            if let Err(e) = f.sync_data() {
                return Err(self.poison(format!("WAL fsync failed: {e}")));
            }
        }
        self.counters.wal_fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(snap.written)
    }
}

/// Encodes the series of `entries` as one points record in the writer thread's reused
/// buffer and hands it to `f`.
fn with_points_record<R>(
    batch: &WriteBatch,
    entries: &[Entry],
    f: impl FnOnce(&[u8]) -> Result<R, StorageError>,
) -> Result<R, StorageError> {
    let mut rec = ENC.with(|b| std::mem::take(&mut *b.borrow_mut()));
    rec.clear();
    let start = wal::begin_record(&mut rec, wal::REC_POINTS);
    put_uvarint(&mut rec, entries.len() as u64);
    for (i, e, exp) in entries {
        wal::encode_points_chunk(&mut rec, e.id, *exp, &batch.series[*i].points);
    }
    let len = wal::finish_record(&mut rec, start);
    let result = if len > wal::MAX_RECORD_LEN {
        Err(StorageError::InvalidInput(format!(
            "batch encodes to {len} bytes, over the {} byte WAL record limit; split it",
            wal::MAX_RECORD_LEN
        )))
    } else {
        f(&rec)
    };
    // Keep the buffer for the next write unless one huge batch bloated it.
    if rec.capacity() <= 16 << 20 {
        ENC.with(|b| *b.borrow_mut() = rec);
    }
    result
}

/// The smallest range holding every timestamp of `ts` (non-empty).
fn span_of(ts: &[i64]) -> TimeRange {
    let (lo, hi) = ts
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    TimeRange::new(lo, hi)
}

/// Checks every series of a write batch; returns how many points it holds.
fn validate_batch(batch: &WriteBatch) -> Result<usize, StorageError> {
    let mut points = 0usize;
    for sp in &batch.series {
        validate(sp)?;
        points += sp.points.len();
    }
    Ok(points)
}

/// Checks one series of a write batch.
fn validate(sp: &SeriesPoints) -> Result<(), StorageError> {
    if sp.key.metric.is_empty() {
        return Err(StorageError::InvalidInput(
            "metric name may not be empty".into(),
        ));
    }
    if sp.points.data_type() != sp.key.data_type {
        return Err(StorageError::InvalidInput(format!(
            "series {} is {} but its points are {}",
            sp.key,
            sp.key.data_type.ingest_name(),
            sp.points.data_type().ingest_name()
        )));
    }
    let (nts, nv) = match &sp.points {
        kairosdb_model::Points::Long { ts, values } => (ts.len(), values.len()),
        kairosdb_model::Points::Double { ts, values } => (ts.len(), values.len()),
        kairosdb_model::Points::String { ts, values } => (ts.len(), values.len()),
    };
    if nts != nv {
        return Err(StorageError::InvalidInput(format!(
            "series {} has {nts} timestamps but {nv} values",
            sp.key
        )));
    }
    Ok(())
}

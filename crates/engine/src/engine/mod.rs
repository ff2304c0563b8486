//! The engine proper: opening (registry load + WAL replay), the write path, reads,
//! deletes, sealing, checkpointing, retention and the two background threads.
//!
//! Lock order (never taken in the other direction):
//! `maint` → registry → `wal` → head shard → liveness flips/postings → series summary.
//! * `wal` is held across WAL append *and* head insert, so memory order equals log
//!   order and "last write wins" is the same before and after a restart.
//! * `maint` serialises every block mutation (seal, delete, retention, compaction) and WAL
//!   segment deletion; reads never take it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{
    DeleteRequest, Order, SeriesData, SeriesKey, SeriesPoints, SeriesQuery, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};
use parking_lot::{Condvar, Mutex};

use crate::block::Decoded;
use crate::codec::put_uvarint;
use crate::column::{merge_runs, Col, Run};
use crate::head::{Frozen, Head, HeadEdge, HeadInfo};
use crate::index::{Registry, SeriesEntry};
use crate::sealed::{self, Sealed, Work};
use crate::store::{corrupt, BlockSummary, Store};
use crate::wal::{self, Lsn, Record, WalWriter, NEVER};
use crate::{EngineConfig, WalSync};

/// What reading one series costs a read's `work_limit` besides its points, in stored
/// points: the block lookup in fjall, the head and summary locks and the per-series
/// work after the read (grouping, a result group) take about as long as decoding a
/// thousand points. Charged for every selected series before any is read, so a read
/// over many series stops at once instead of after part of the work.
pub(crate) const SERIES_WORK: u64 = 1024;

/// A head holding late points (see [`Engine::maintain`]) is sealed once it has had no
/// write for this long.
const LATE_SEAL_IDLE: Duration = Duration::from_secs(2);

/// Series sealed per fjall batch (and per hold of the maintenance lock).
const SEAL_BATCH: usize = 64;

/// Counters exported by `stats()`.
#[derive(Default)]
pub struct Counters {
    pub points_written: AtomicU64,
    pub batches_written: AtomicU64,
    pub series_created: AtomicU64,
    pub wal_bytes_written: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub wal_truncated_bytes: AtomicU64,
    pub wal_skipped_bytes: AtomicU64,
    pub wal_replayed_records: AtomicU64,
    pub wal_replayed_points: AtomicU64,
    pub wal_segments_removed: AtomicU64,
    pub seals: AtomicU64,
    pub points_sealed: AtomicU64,
    pub forced_seals: AtomicU64,
    pub backpressure_events: AtomicU64,
    pub points_deleted: AtomicU64,
    pub delete_blocks_dropped: AtomicU64,
    pub delete_blocks_rewritten: AtomicU64,
    pub points_expired: AtomicU64,
    pub blocks_expired: AtomicU64,
    pub compactions: AtomicU64,
    pub blocks_compacted: AtomicU64,
    pub queries: AtomicU64,
    pub points_read: AtomicU64,
    /// Series of `first`/`last` edge reads answered without reading the series in full.
    pub edge_reads: AtomicU64,
    pub maintenance_errors: AtomicU64,
}

/// State shared with the background threads.
#[derive(Default)]
struct Bg {
    stop: bool,
    kick: bool,
}

pub struct Inner {
    pub cfg: EngineConfig,
    pub sealed: Sealed,
    pub registry: Registry,
    pub head: Head,
    pub wal: Mutex<WalWriter>,
    /// Group-commit position up to which the WAL is fsynced.
    synced: Mutex<u64>,
    pub maint: Mutex<()>,
    poisoned: AtomicBool,
    poison_msg: Mutex<String>,
    closed: AtomicBool,
    pub counters: Counters,
    seal_queue: Mutex<Vec<u64>>,
    bg: Mutex<Bg>,
    bg_cv: Condvar,
    last_retention_ms: AtomicI64,
}

thread_local! {
    /// Reused WAL encoding buffer (one per writer thread).
    static ENC: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn secs(ms: i64) -> u64 {
    ms.div_euclid(1000).max(0) as u64
}

fn io_internal(what: &str, e: std::io::Error) -> StorageError {
    StorageError::Internal(format!("{what}: {e}"))
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

impl Inner {
    pub fn open(cfg: EngineConfig) -> Result<Arc<Inner>, StorageError> {
        let started = std::time::Instant::now();
        let wal_dir = cfg.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| io_internal("creating data directory", e))?;
        let store = Store::open(&cfg.data_dir.join("db"), cfg.cache_bytes)?;
        let registry = Registry::new();
        for (id, key) in store.load_series()? {
            registry.restore(id, key, true)?;
        }
        let sealed = Sealed::new(store, cfg.compression_level, cfg.seal_points)?;
        let open_secs = secs(cfg.clock.now_ms());
        for (id, s) in sealed.store.load_summaries()? {
            match registry.get(id) {
                Some(e) => {
                    *e.summary.lock() = s;
                    sealed.account_loaded(&s);
                    if !s.disjoint && s.blocks > 0 {
                        sealed.mark_unsettled(id, open_secs);
                    }
                }
                None => tracing::warn!(
                    series = id,
                    "block summary without a series definition; ignored"
                ),
            }
        }
        let head = Head::new();
        let counters = Counters::default();
        let now_ms = cfg.clock.now_ms();
        let report = {
            let mut ts = Vec::new();
            let mut vals = Col::new(kairosdb_model::DataType::Double);
            let mut points = 0u64;
            let mut max_watermark = 0u64;
            let rep = wal::replay(&wal_dir, cfg.wal_skip_corrupt, |lsn, payload| {
                let rec = wal::decode_record(payload)
                    .map_err(|e| corrupt(&format!("WAL record at {lsn:?}"), e))?;
                match rec {
                    Record::SeriesDefs(defs) => {
                        for (id, key) in defs {
                            let fresh = registry.get(id).is_none();
                            registry.restore(id, key.clone(), true)?;
                            if fresh {
                                sealed.store.put_series(id, &key)?;
                            }
                        }
                    }
                    Record::Points(mut pr) => {
                        while let Some(h) = pr.next_chunk(&mut ts, &mut vals) {
                            let h = h.map_err(|e| corrupt(&format!("WAL record at {lsn:?}"), e))?;
                            let e = registry.get(h.sid).ok_or_else(|| {
                                StorageError::Corruption(format!(
                                    "WAL record at {lsn:?} references unknown series {}",
                                    h.sid
                                ))
                            })?;
                            if e.key.data_type != h.data_type {
                                return Err(StorageError::Corruption(format!(
                                    "WAL record at {lsn:?}: series {} is {:?}, points are {:?}",
                                    h.sid, e.key.data_type, h.data_type
                                )));
                            }
                            // Already sealed into durable blocks before the crash.
                            if lsn <= e.summary.lock().sealed_lsn {
                                continue;
                            }
                            points += ts.len() as u64;
                            head.append_col(h.sid, &ts, &vals, h.expiry, lsn, now_ms, usize::MAX);
                        }
                    }
                    Record::Delete {
                        watermark,
                        range,
                        sids,
                    } => {
                        max_watermark = max_watermark.max(watermark);
                        for sid in sids {
                            if let Some(e) = registry.get(sid) {
                                head.remove_range(sid, range);
                                sealed.delete_range(&e, range, watermark)?;
                            }
                        }
                    }
                }
                Ok(())
            })?;
            counters
                .wal_replayed_points
                .store(points, Ordering::Relaxed);
            // A replayed delete applies to blocks with `seq < watermark`. If fjall lost
            // blocks sealed before the delete (its journal buffer dies with a killed
            // process), `next_block_seq` went back with them; blocks sealed from now on
            // must still sort at or above every watermark left in the WAL, or the next
            // replay would delete points written after the delete.
            sealed.advance_next_seq(max_watermark);
            rep
        };
        counters
            .wal_truncated_bytes
            .store(report.truncated_bytes, Ordering::Relaxed);
        counters
            .wal_skipped_bytes
            .store(report.skipped_bytes, Ordering::Relaxed);
        counters
            .wal_replayed_records
            .store(report.records, Ordering::Relaxed);
        for e in registry.all() {
            let has_head = !head.with_emptiness(e.id, |empty| empty);
            if has_head || e.summary.lock().blocks > 0 {
                registry.mark_live(&e);
            }
        }
        // Replay does not queue seals; queue the heads that are already big.
        let full_heads: Vec<u64> = head
            .infos()
            .into_iter()
            .filter(|i| i.points >= cfg.seal_points)
            .map(|i| i.sid)
            .collect();
        // New positions must sort after every `sealed_lsn` already persisted, even
        // if the WAL directory was emptied by hand, or replay would skip them.
        let max_sealed = registry
            .all()
            .iter()
            .map(|e| e.summary.lock().sealed_lsn.segment)
            .max()
            .unwrap_or(0);
        let next_segment = report
            .segments
            .last()
            .map_or(1, |s| s.0 + 1)
            .max(max_sealed + 1);
        let durable = cfg.wal_sync != WalSync::None;
        let writer = WalWriter::create(
            &wal_dir,
            next_segment,
            report.segments.clone(),
            cfg.wal_segment_bytes,
            durable,
        )
        .map_err(|e| io_internal("creating WAL segment", e))?;
        tracing::info!(
            series = registry.len(),
            replayed_records = report.records,
            replayed_points = counters.wal_replayed_points.load(Ordering::Relaxed),
            truncated_bytes = report.truncated_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "engine opened"
        );
        Ok(Arc::new(Inner {
            last_retention_ms: AtomicI64::new(now_ms),
            cfg,
            sealed,
            registry,
            head,
            wal: Mutex::new(writer),
            synced: Mutex::new(0),
            maint: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            poison_msg: Mutex::new(String::new()),
            closed: AtomicBool::new(false),
            counters,
            seal_queue: Mutex::new(full_heads),
            bg: Mutex::new(Bg::default()),
            bg_cv: Condvar::new(),
        }))
    }

    // -----------------------------------------------------------------------
    // Health
    // -----------------------------------------------------------------------

    pub fn poison(&self, what: String) -> StorageError {
        tracing::error!(reason = %what, "engine poisoned: refusing further writes");
        let mut m = self.poison_msg.lock();
        if m.is_empty() {
            *m = what;
        }
        self.poisoned.store(true, Ordering::Release);
        StorageError::Poisoned(m.clone())
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn poison_detail(&self) -> String {
        self.poison_msg.lock().clone()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        if self.is_poisoned() {
            return Err(StorageError::Poisoned(self.poison_detail()));
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        self.cfg.clock.now_ms()
    }

    // -----------------------------------------------------------------------
    // Write path: validate → WAL append → head insert → (fsync) → acknowledge
    // -----------------------------------------------------------------------

    pub fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut points = 0usize;
        for sp in &batch.series {
            validate(sp)?;
            points += sp.points.len();
        }
        if points == 0 {
            return Ok(());
        }
        self.admit()?;
        let now_ms = self.now_ms();
        let now_s = secs(now_ms);
        let mut scratch = Vec::with_capacity(128);
        let mut entries: Vec<(usize, Arc<SeriesEntry>, u64)> =
            Vec::with_capacity(batch.series.len());
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
        let mut rec = ENC.with(|b| std::mem::take(&mut *b.borrow_mut()));
        rec.clear();
        let start = wal::begin_record(&mut rec, wal::REC_POINTS);
        put_uvarint(&mut rec, entries.len() as u64);
        for (i, e, exp) in &entries {
            wal::encode_points_chunk(&mut rec, e.id, *exp, &batch.series[*i].points);
        }
        let len = wal::finish_record(&mut rec, start);
        let result = if len > wal::MAX_RECORD_LEN {
            Err(StorageError::InvalidInput(format!(
                "batch encodes to {len} bytes, over the {} byte WAL record limit; split it",
                wal::MAX_RECORD_LEN
            )))
        } else {
            self.append_and_insert(batch, &entries, &rec, now_ms)
        };
        // Keep the buffer for the next write unless one huge batch bloated it.
        if rec.capacity() <= 16 << 20 {
            ENC.with(|b| *b.borrow_mut() = rec);
        }
        let (target, queued) = result?;
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

    /// Appends the frames and inserts into the head under the WAL lock. Returns
    /// the group-commit position and the series that reached the seal size.
    fn append_and_insert(
        &self,
        batch: &WriteBatch,
        entries: &[(usize, Arc<SeriesEntry>, u64)],
        rec: &[u8],
        now_ms: i64,
    ) -> Result<(u64, Vec<u64>), StorageError> {
        let mut wal = self.wal.lock();
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
        let mut queued = Vec::new();
        for (i, e, exp) in entries {
            let q = self.head.append_points(
                e.id,
                &batch.series[*i].points,
                *exp,
                plsn,
                now_ms,
                self.cfg.seal_points,
                || self.registry.mark_live(e),
            );
            if q {
                queued.push(e.id);
            }
        }
        Ok((wal.written(), queued))
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

    /// fsyncs the WAL up to at least `target` (group commit: one fsync covers
    /// every writer waiting behind it).
    pub fn sync_to(&self, target: u64) -> Result<(), StorageError> {
        let mut synced = self.synced.lock();
        if *synced >= target {
            return Ok(());
        }
        let snap = self.wal.lock().sync_snapshot();
        for f in &snap.files {
            if let Err(e) = f.sync_data() {
                return Err(self.poison(format!("WAL fsync failed: {e}")));
            }
        }
        self.counters.wal_fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = snap.written;
        Ok(())
    }

    pub fn sync_all(&self) -> Result<(), StorageError> {
        let target = self.wal.lock().written();
        let mut synced = self.synced.lock();
        let snap = self.wal.lock().sync_snapshot();
        for f in &snap.files {
            if let Err(e) = f.sync_data() {
                return Err(self.poison(format!("WAL fsync failed: {e}")));
            }
        }
        self.counters.wal_fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = snap.written.max(target);
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Reads
    // -----------------------------------------------------------------------

    /// Alive points of one series in `range`: head snapshot first, then the block
    /// summary, then the blocks (so a concurrent seal is seen in one place or
    /// both, never neither).
    fn read_series(
        &self,
        e: &SeriesEntry,
        range: TimeRange,
        now_s: u64,
        d: &mut Decoded,
        work: &mut Work,
    ) -> Result<Run, StorageError> {
        let head_runs = self.head.snapshot(e.id, range, now_s);
        work.add(head_runs.iter().map(|r| r.len() as u64).sum())?;
        let mut summary = *e.summary.lock();
        let mut runs = loop {
            let runs = self.sealed.read(e, &summary, range, now_s, d, work)?;
            // A compaction that ran meanwhile may have merged blocks into one that
            // starts further before the range than the summary's `max_span` reaches;
            // it raises `max_span` before its commit, so this sees it (and reads again).
            let now = *e.summary.lock();
            if now.max_span <= summary.max_span {
                break runs;
            }
            summary = now;
        };
        runs.extend(head_runs);
        Ok(merge_runs(e.key.data_type, runs))
    }

    /// The first (`Asc`) or last (`Desc`) alive point of `e` in `range`, and how many
    /// alive points the range holds, decided from the head's bounds, the block summary
    /// and at most one block (the `first`/`last` pushdown: a "last value" over a day
    /// reads one point per series, not the day). `None` when that would be inexact
    /// (overlapping blocks, blocks reaching outside the range, expired points not yet
    /// removed, a concurrent change of the blocks); the caller then reads the series in
    /// full.
    ///
    /// The summary, the head, then the summary again: a seal that ran in between moved
    /// head points into blocks, and the series is read in full instead. Head points at
    /// or before the newest sealed point (late writes) are checked against the newest
    /// block, so none is counted twice; only those timestamps are copied out of the head.
    fn read_edge(
        &self,
        e: &SeriesEntry,
        range: TimeRange,
        now_s: u64,
        order: Order,
        blocks_alive: bool,
        d: &mut Decoded,
    ) -> Result<Option<(u64, Run)>, StorageError> {
        let before = *e.summary.lock();
        let dt = e.key.data_type;
        let Some(head) = self.head.edge(e.id, dt, range, order, before.max_ts, now_s) else {
            return Ok(None);
        };
        let s = *e.summary.lock();
        if s != before {
            return Ok(None);
        }
        if s.blocks == 0 || s.max_ts < range.start || s.min_ts > range.end {
            let count = head.count();
            return Ok(Some((count, head.point)));
        }
        let whole = range.start <= s.min_ts && s.max_ts <= range.end;
        if !(blocks_alive && s.disjoint && whole) {
            return Ok(None);
        }
        let head_after = head.count() == 0 || head.first_ts > s.max_ts;
        match order {
            Order::Desc if head_after && head.count() > 0 => {
                Ok(Some((s.points + head.count(), head.point)))
            }
            Order::Asc if head_after => {
                let Some(h) = self.sealed.edge_block(e, &s, true, d)? else {
                    return Ok(None);
                };
                Ok(Some((s.points + head.count(), sealed::point(d, &h, 0))))
            }
            Order::Desc if head.count() == 0 && s.last_seq != 0 && s.last_max_ts == s.max_ts => {
                // Fully sealed: the newest block's last point is in the summary.
                match Col::from_number_bits(e.key.data_type, s.last_value) {
                    Some(vals) => Ok(Some((
                        s.points,
                        Run {
                            ts: vec![s.max_ts],
                            vals,
                            exp: Vec::new(),
                        },
                    ))),
                    None => self.last_sealed_with_head(e, &s, head, d),
                }
            }
            Order::Desc if head.count() == 0 || head.first_ts >= s.last_start => {
                self.last_sealed_with_head(e, &s, head, d)
            }
            _ => Ok(None),
        }
    }

    /// [`Engine::read_edge`] for `last` when the newest block must be decoded: string
    /// values, or head points inside the newest block's span (each of them may
    /// overwrite a sealed point, which must not be counted twice).
    fn last_sealed_with_head(
        &self,
        e: &SeriesEntry,
        s: &BlockSummary,
        head: HeadEdge,
        d: &mut Decoded,
    ) -> Result<Option<(u64, Run)>, StorageError> {
        let Some(h) = self.sealed.edge_block(e, s, false, d)? else {
            return Ok(None);
        };
        let overwritten = count_common(&head.ts, &d.ts);
        let count = s.points + head.count() - overwritten;
        // On the same timestamp the head (written later) wins.
        if head.count() > 0 && head.last_ts >= s.max_ts {
            return Ok(Some((count, head.point)));
        }
        Ok(Some((count, sealed::point(d, &h, d.ts.len() - 1))))
    }

    pub fn query(&self, q: &SeriesQuery) -> Result<Vec<SeriesData>, StorageError> {
        self.check_open()?;
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        let now_s = secs(self.now_ms());
        let mut d = Decoded::new();
        let mut work = Work::new(q.work_limit);
        let mut out = Vec::new();
        let mut total = 0u64;
        if q.range.start > q.range.end || q.limit == Some(0) {
            return Ok(out);
        }
        // One point per series, every point counted: the edge read can answer.
        let edge = q.count_in_range && q.limit == Some(1);
        let blocks_alive = edge && !self.sealed.store.any_expired(now_s)?;
        let selected = self.registry.select(&q.metric, &q.filter);
        work.add(selected.len() as u64 * SERIES_WORK)?;
        if q.work_limit.is_some() && !edge {
            // A limited read whose blocks in range clearly hold more points than it may
            // decode stops before reading any (each summary's points taken as spread
            // evenly over its span); the read itself still counts exactly.
            let estimate: u64 = selected
                .iter()
                .filter_map(|&sid| self.registry.get(sid))
                .map(|e| sealed::points_in_range_estimate(&e.summary.lock(), q.range))
                .sum();
            work.fits(estimate)?;
        }
        for sid in selected {
            let Some(e) = self.registry.get(sid) else {
                continue;
            };
            if !e.live.load(Ordering::Acquire) {
                continue;
            }
            let fast = if edge {
                d.ts.clear();
                let found = self.read_edge(&e, q.range, now_s, q.order, blocks_alive, &mut d)?;
                // The one block an edge read may decode is counted after the fact.
                work.add(d.ts.len() as u64)?;
                found
            } else {
                None
            };
            let (in_range, run) = match fast {
                Some(found) => {
                    self.counters.edge_reads.fetch_add(1, Ordering::Relaxed);
                    found
                }
                None => {
                    let mut run = self.read_series(&e, q.range, now_s, &mut d, &mut work)?;
                    let n = run.len() as u64;
                    if q.order == Order::Desc {
                        run.reverse();
                    }
                    if let Some(limit) = q.limit {
                        run.truncate(limit);
                    }
                    (n, run)
                }
            };
            if run.is_empty() {
                continue;
            }
            let in_range = if q.count_in_range {
                in_range
            } else {
                run.len() as u64
            };
            self.counters
                .points_read
                .fetch_add(run.len() as u64, Ordering::Relaxed);
            total += in_range;
            if let Some(limit) = q.max_points.filter(|&l| total > l) {
                return Err(StorageError::TooManyPoints { limit });
            }
            out.push(SeriesData {
                key: e.key.clone(),
                points: run.vals.into_points(run.ts),
                in_range,
            });
        }
        Ok(out)
    }

    /// Live series of `metric` matching `filter` whose data bounds overlap `range`
    /// (bounds, not points: a series may be listed although its points in the
    /// range were deleted — like KairosDB's row-granular answer, spec §1.7).
    pub fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.check_open()?;
        let mut out = Vec::new();
        for sid in self.registry.select(metric, filter) {
            let Some(e) = self.registry.get(sid) else {
                continue;
            };
            if !e.live.load(Ordering::Acquire) {
                continue;
            }
            let s = *e.summary.lock();
            let in_blocks = s.blocks > 0 && s.min_ts <= range.end && s.max_ts >= range.start;
            if in_blocks || self.head.overlaps(sid, range) {
                out.push((*e.key).clone());
            }
        }
        out.sort();
        Ok(out)
    }

    // -----------------------------------------------------------------------
    // Delete (spec §1.8)
    // -----------------------------------------------------------------------

    /// Deletes the points of the matching series inside `range` (inclusive).
    /// Logged and fsynced in the WAL before blocks are rewritten, so replay
    /// re-applies it and deleted points never come back. Returns the number of
    /// series that lost at least one point.
    pub fn delete(&self, req: &DeleteRequest) -> Result<u64, StorageError> {
        self.check_writable()?;
        if req.range.start > req.range.end {
            return Ok(0);
        }
        // Held throughout: no seal, merge or retention rewrite runs until every block
        // below the watermark is done (an append-merge would move points still to be
        // deleted into a block above it).
        let _m = self.maint.lock();
        let sids: Vec<u64> = self
            .registry
            .select(&req.metric, &req.filter)
            .into_iter()
            .filter(|&sid| {
                self.registry
                    .get(sid)
                    .is_some_and(|e| e.live.load(Ordering::Acquire))
            })
            .collect();
        if sids.is_empty() {
            return Ok(0);
        }
        let watermark = self.sealed.next_seq();
        let mut rec = Vec::with_capacity(32 + sids.len() * 4);
        wal::encode_delete(&mut rec, watermark, req.range, &sids);
        let mut removed = vec![0u64; sids.len()];
        let target = {
            let mut wal = self.wal.lock();
            self.check_writable()?;
            if let Err(e) = wal.append(&[&rec]) {
                return Err(self.poison(format!("WAL write failed: {e}")));
            }
            for (i, &sid) in sids.iter().enumerate() {
                removed[i] = self.head.remove_range(sid, req.range) as u64;
            }
            wal.written()
        };
        self.counters
            .wal_bytes_written
            .fetch_add(rec.len() as u64, Ordering::Relaxed);
        self.sync_to(target)?;
        for (i, &sid) in sids.iter().enumerate() {
            let Some(e) = self.registry.get(sid) else {
                continue;
            };
            let out = self
                .sealed
                .delete_range(&e, req.range, watermark)
                .map_err(|err| self.poison_maint(err))?;
            removed[i] += out.points;
            self.counters
                .delete_blocks_dropped
                .fetch_add(out.dropped_blocks, Ordering::Relaxed);
            self.counters
                .delete_blocks_rewritten
                .fetch_add(out.rewritten_blocks, Ordering::Relaxed);
            self.check_dead(&e);
        }
        self.counters
            .points_deleted
            .fetch_add(removed.iter().sum(), Ordering::Relaxed);
        Ok(removed.iter().filter(|&&n| n > 0).count() as u64)
    }

    /// Hides a series from listings when it has no points left.
    fn check_dead(&self, e: &SeriesEntry) {
        self.head.with_emptiness(e.id, |empty| {
            if empty && e.summary.lock().blocks == 0 {
                self.registry.mark_dead(e);
            }
        });
    }

    /// A failed block write: the engine can no longer guarantee durability.
    fn poison_maint(&self, e: StorageError) -> StorageError {
        match e {
            StorageError::Internal(m) => self.poison(format!("block store write failed: {m}")),
            other => other,
        }
    }

    // -----------------------------------------------------------------------
    // Sealing, checkpointing, retention (maintenance lock held)
    // -----------------------------------------------------------------------

    /// Seals the head of one series into blocks.
    pub fn seal_series_locked(&self, sid: u64) -> Result<(), StorageError> {
        self.seal_whole_locked(&[sid])
    }

    /// Seals the whole heads of `sids`, up to [`SEAL_BATCH`] series per fjall batch.
    fn seal_whole_locked(&self, sids: &[u64]) -> Result<(), StorageError> {
        for sids in sids.chunks(SEAL_BATCH) {
            if self.is_poisoned() {
                return Ok(());
            }
            let frozen = sids
                .iter()
                .filter_map(|&sid| Some((self.registry.get(sid)?, self.head.freeze(sid)?)))
                .collect();
            self.seal_frozen_locked(frozen)?;
        }
        Ok(())
    }

    /// Seals the heads of `sids` that hold at least `seal_points` points. A head
    /// written out of time order keeps its newest points as a lateness window
    /// ([`Head::freeze_keeping`]), logged again; the WAL is fsynced before any block
    /// marks the window's old positions as sealed, so a crash or power loss cannot
    /// skip points that are only in the head.
    fn seal_full_locked(&self, sids: &[u64]) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Ok(());
        }
        let keep = sealed::lateness_window(self.cfg.seal_points);
        let mut frozen = Vec::with_capacity(sids.len());
        let mut relogged = false;
        {
            let mut wal = self.wal.lock();
            let mut buf = Vec::new();
            for &sid in sids {
                if self.head.len(sid) < self.cfg.seal_points {
                    continue;
                }
                let Some(e) = self.registry.get(sid) else {
                    continue;
                };
                let f = self.head.freeze_keeping(sid, keep, |kept| {
                    buf.clear();
                    let start = wal::begin_record(&mut buf, wal::REC_POINTS);
                    put_uvarint(&mut buf, 1);
                    let expiry = kept.expiry().unwrap_or(NEVER);
                    wal::encode_col_chunk(&mut buf, sid, expiry, &kept.ts, &kept.vals);
                    wal::finish_record(&mut buf, start);
                    let lsn = wal
                        .append(&[&buf])
                        .map_err(|err| self.poison(format!("WAL write failed: {err}")))?;
                    self.counters
                        .wal_bytes_written
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                    relogged = true;
                    Ok(lsn)
                })?;
                frozen.extend(f.map(|f| (e, f)));
            }
        }
        if relogged && self.cfg.wal_sync != WalSync::None {
            let target = self.wal.lock().written();
            self.sync_to(target)?;
        }
        self.seal_frozen_locked(frozen)
    }

    /// Writes frozen head chunks into blocks (one fjall batch) and drops them from
    /// the head.
    fn seal_frozen_locked(
        &self,
        frozen: Vec<(Arc<SeriesEntry>, Frozen)>,
    ) -> Result<(), StorageError> {
        if frozen.is_empty() {
            return Ok(());
        }
        let now_s = secs(self.now_ms());
        let items = frozen
            .iter()
            .map(|(e, f)| (&**e, f.chunk.to_run(TimeRange::ALL, now_s), f.last_lsn));
        let outs = self
            .sealed
            .seal(items, now_s)
            .map_err(|err| self.poison_maint(err))?;
        self.counters
            .seals
            .fetch_add(outs.len() as u64, Ordering::Relaxed);
        self.counters
            .points_sealed
            .fetch_add(outs.iter().map(|o| o.points).sum(), Ordering::Relaxed);
        for (e, _) in &frozen {
            self.head.commit_frozen(e.id, |empty| {
                if empty && e.summary.lock().blocks == 0 {
                    self.registry.mark_dead(e);
                }
            });
        }
        Ok(())
    }

    /// Merges the overlapping blocks of `sids` into disjoint ones (see
    /// [`Sealed::compact`]), one fjall batch per series.
    fn compact_locked(&self, sids: &[u64]) -> Result<(), StorageError> {
        let now_s = secs(self.now_ms());
        for &sid in sids {
            if self.is_poisoned() {
                return Ok(());
            }
            let Some(e) = self.registry.get(sid) else {
                continue;
            };
            let out = self
                .sealed
                .compact(&e, now_s, sealed::COMPACT_MAX_POINTS)
                .map_err(|err| self.poison_maint(err))?;
            if out.skipped_groups > 0 {
                tracing::warn!(
                    series = %e.key,
                    groups = out.skipped_groups,
                    "overlapping blocks left uncompacted: a group holds over {} points",
                    sealed::COMPACT_MAX_POINTS
                );
            }
            if out.blocks_in > 0 {
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .blocks_compacted
                    .fetch_add(out.blocks_in, Ordering::Relaxed);
            }
            if e.summary.lock().blocks == 0 {
                self.check_dead(&e);
            }
        }
        Ok(())
    }

    /// Seals the biggest heads until the head holds at most `target` bytes.
    fn seal_biggest_locked(&self, target: u64) -> Result<(), StorageError> {
        let mut infos = self.head.infos();
        infos.sort_unstable_by_key(|i| std::cmp::Reverse(i.bytes));
        for i in infos {
            if self.head.bytes() <= target {
                break;
            }
            self.seal_series_locked(i.sid)?;
        }
        Ok(())
    }

    /// Seals every head (close, explicit flush).
    pub fn seal_all_locked(&self) -> Result<(), StorageError> {
        self.seal_whole_locked(&self.head.series_ids())
    }

    /// Deletes WAL segments whose points are all in durable blocks. When the WAL
    /// is over `wal_max_bytes`, first force-seals the series holding the oldest
    /// segments so that it shrinks to about half the bound.
    pub fn checkpoint_locked(&self) -> Result<(), StorageError> {
        if self.is_poisoned() {
            return Ok(());
        }
        let (closed, current, current_len, total) = {
            let w = self.wal.lock();
            (
                w.closed_segments().to_vec(),
                w.current_segment(),
                w.current_len(),
                w.total_bytes(),
            )
        };
        let Some(&(oldest, _)) = closed.first() else {
            return Ok(());
        };
        if total > self.cfg.wal_max_bytes {
            let mut keep = current_len;
            let mut cutoff = current;
            for &(no, len) in closed.iter().rev() {
                if keep + len > self.cfg.wal_max_bytes / 2 {
                    break;
                }
                keep += len;
                cutoff = no;
            }
            let laggards: Vec<u64> = self
                .head
                .infos()
                .into_iter()
                .filter(|i| i.min_segment.is_some_and(|s| s < cutoff))
                .map(|i| i.sid)
                .collect();
            if !laggards.is_empty() {
                tracing::debug!(
                    series = laggards.len(),
                    wal_bytes = total,
                    "force-sealing series holding old WAL segments"
                );
                self.counters
                    .forced_seals
                    .fetch_add(laggards.len() as u64, Ordering::Relaxed);
            }
            self.seal_whole_locked(&laggards)?;
        }
        let needed = self.head.min_segment().unwrap_or(current).min(current);
        if oldest >= needed {
            return Ok(());
        }
        // Blocks, series definitions and delete rewrites must be durable before
        // the only other copy of them goes.
        self.sealed
            .store
            .persist()
            .map_err(|e| self.poison_maint(e))?;
        let before = self.wal.lock().closed_segments().len();
        let res = self.wal.lock().remove_below(needed);
        let after = self.wal.lock().closed_segments().len();
        self.counters
            .wal_segments_removed
            .fetch_add((before - after) as u64, Ordering::Relaxed);
        res.map(|_| ())
            .map_err(|e| io_internal("removing WAL segments", e))
    }

    /// Drops expired points from blocks and heads; hides series left empty.
    pub fn retention_locked(&self) -> Result<(), StorageError> {
        let now_s = secs(self.now_ms());
        let out = self
            .sealed
            .expire(&self.registry, now_s)
            .map_err(|e| self.poison_maint(e))?;
        self.counters
            .blocks_expired
            .fetch_add(out.dropped_blocks, Ordering::Relaxed);
        self.counters
            .points_expired
            .fetch_add(out.expired_points, Ordering::Relaxed);
        let mut touched = out.touched;
        touched.extend(self.head.purge_expired(now_s));
        for sid in touched {
            if let Some(e) = self.registry.get(sid) {
                self.check_dead(&e);
            }
        }
        self.last_retention_ms
            .store(self.now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// One maintenance pass: queued seals, age-based seals, compaction of series
    /// whose blocks have overlapped for [`sealed::SETTLE_DELAY_SECS`], checkpoint,
    /// and retention when due. The maintenance lock is taken per step so deletes
    /// and memory-pressure seals are not starved.
    pub fn maintain(&self) -> Result<(), StorageError> {
        let queued = std::mem::take(&mut *self.seal_queue.lock());
        for sids in queued.chunks(SEAL_BATCH) {
            let _m = self.maint.lock();
            self.seal_full_locked(sids)?;
        }
        let now = self.now_ms();
        let max_age = self.cfg.head_max_age.as_millis() as i64;
        // Also sealed early: idle heads holding late points (at or before the series'
        // newest sealed point, as writers running in parallel deliver them). Until
        // sealed, every read of the series merges them against its blocks, and the
        // first/last edge read cannot answer from the summary. Their seal merges them
        // into the newest block (see `Sealed::seal`), once the writes have stopped.
        let late_idle = LATE_SEAL_IDLE.as_millis() as i64;
        let late = |i: &HeadInfo| {
            now.saturating_sub(i.last_write_ms) >= late_idle
                && self.registry.get(i.sid).is_some_and(|e| {
                    let s = e.summary.lock();
                    s.blocks > 0 && i.min_ts <= s.max_ts
                })
        };
        let aged: Vec<u64> = self
            .head
            .infos()
            .into_iter()
            .filter(|i| {
                i.points > 0 && (now.saturating_sub(i.first_write_ms) >= max_age || late(i))
            })
            .map(|i| i.sid)
            .collect();
        for sids in aged.chunks(SEAL_BATCH) {
            let _m = self.maint.lock();
            self.seal_whole_locked(sids)?;
        }
        let unsettled = self.sealed.take_unsettled(secs(now));
        for sids in unsettled.chunks(SEAL_BATCH) {
            let _m = self.maint.lock();
            self.compact_locked(sids)?;
        }
        {
            let _m = self.maint.lock();
            self.checkpoint_locked()?;
        }
        let due = now.saturating_sub(self.last_retention_ms.load(Ordering::Relaxed))
            >= self.cfg.retention_interval.as_millis() as i64;
        if due {
            let _m = self.maint.lock();
            self.retention_locked()?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Background threads and close
    // -----------------------------------------------------------------------

    fn kick(&self) {
        let mut g = self.bg.lock();
        g.kick = true;
        self.bg_cv.notify_all();
    }

    /// Waits up to `d` or until kicked; returns false when stopping.
    fn wait(&self, d: Duration, consume_kick: bool) -> bool {
        let mut g = self.bg.lock();
        let kicked = consume_kick && g.kick;
        if !g.stop && !kicked {
            self.bg_cv.wait_for(&mut g, d);
        }
        if consume_kick {
            g.kick = false;
        }
        !g.stop
    }

    pub fn maintenance_loop(self: Arc<Self>) {
        while self.wait(self.cfg.maintenance_interval, true) {
            if self.is_poisoned() {
                continue;
            }
            if let Err(e) = self.maintain() {
                self.counters
                    .maintenance_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "engine maintenance failed");
            }
        }
    }

    pub fn sync_loop(self: Arc<Self>, every: Duration) {
        while self.wait(every, false) {
            let target = self.wal.lock().written();
            if *self.synced.lock() < target && self.sync_to(target).is_err() {
                // Poisoned; nothing more to do but keep the thread joinable.
                continue;
            }
        }
    }

    /// Marks the engine closed without sealing or syncing (crash simulation).
    #[cfg(test)]
    pub fn abandon(&self) {
        let _w = self.wal.lock();
        self.closed.store(true, Ordering::Release);
    }

    pub fn stop_background(&self) {
        let mut g = self.bg.lock();
        g.stop = true;
        self.bg_cv.notify_all();
    }

    /// Stops writes, seals every head, makes blocks durable, and leaves only an
    /// empty WAL segment, so the next open replays nothing.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let _w = self.wal.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        if self.is_poisoned() {
            // Keep the WAL as it is: it is the source of truth for the next open.
            return Err(StorageError::Poisoned(self.poison_detail()));
        }
        let _m = self.maint.lock();
        self.seal_all_locked()?;
        self.wal
            .lock()
            .rotate()
            .map_err(|e| self.poison(format!("WAL rotate failed: {e}")))?;
        self.checkpoint_locked()?;
        self.sealed.store.persist()?;
        self.sync_all()
    }

    // -----------------------------------------------------------------------
    // Stats
    // -----------------------------------------------------------------------

    pub fn stats(&self) -> StorageStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = vec![
            (
                "engine_points_written_total",
                "Points acknowledged by write()",
                l(&c.points_written),
            ),
            (
                "engine_write_batches_total",
                "Write batches acknowledged",
                l(&c.batches_written),
            ),
            (
                "engine_series_created_total",
                "New series registered",
                l(&c.series_created),
            ),
            (
                "engine_wal_bytes_written_total",
                "Bytes appended to the WAL",
                l(&c.wal_bytes_written),
            ),
            (
                "engine_wal_fsyncs_total",
                "WAL fsync calls (group commits)",
                l(&c.wal_fsyncs),
            ),
            (
                "engine_wal_truncated_bytes_total",
                "Torn WAL tail bytes truncated at open",
                l(&c.wal_truncated_bytes),
            ),
            (
                "engine_wal_skipped_bytes_total",
                "Corrupt WAL bytes skipped at open (wal_skip_corrupt)",
                l(&c.wal_skipped_bytes),
            ),
            (
                "engine_wal_replayed_records_total",
                "WAL records replayed at open",
                l(&c.wal_replayed_records),
            ),
            (
                "engine_wal_replayed_points_total",
                "Points re-inserted into the head at open",
                l(&c.wal_replayed_points),
            ),
            (
                "engine_wal_segments_removed_total",
                "WAL segments deleted by checkpoints",
                l(&c.wal_segments_removed),
            ),
            (
                "engine_seals_total",
                "Series heads sealed into blocks",
                l(&c.seals),
            ),
            (
                "engine_points_sealed_total",
                "Points sealed into blocks",
                l(&c.points_sealed),
            ),
            (
                "engine_forced_seals_total",
                "Seals forced by the WAL size bound",
                l(&c.forced_seals),
            ),
            (
                "engine_blocks_written_total",
                "Blocks written (seal, merge, rewrite)",
                l(&self.sealed.blocks_written),
            ),
            (
                "engine_blocks_removed_total",
                "Blocks removed (merge, rewrite, delete, TTL)",
                l(&self.sealed.blocks_removed),
            ),
            (
                "engine_backpressure_total",
                "Writes refused over max_head_bytes",
                l(&c.backpressure_events),
            ),
            (
                "engine_points_deleted_total",
                "Points removed by delete requests",
                l(&c.points_deleted),
            ),
            (
                "engine_delete_blocks_dropped_total",
                "Blocks dropped whole by deletes (never decoded)",
                l(&c.delete_blocks_dropped),
            ),
            (
                "engine_delete_blocks_rewritten_total",
                "Blocks straddling a delete range, decoded and re-encoded",
                l(&c.delete_blocks_rewritten),
            ),
            (
                "engine_points_expired_total",
                "Points removed from blocks by TTL",
                l(&c.points_expired),
            ),
            (
                "engine_blocks_expired_total",
                "Blocks dropped whole by TTL",
                l(&c.blocks_expired),
            ),
            (
                "engine_compactions_total",
                "Series whose overlapping blocks (late writes) were merged into disjoint ones",
                l(&c.compactions),
            ),
            (
                "engine_blocks_compacted_total",
                "Overlapping blocks merged away by compactions",
                l(&c.blocks_compacted),
            ),
            (
                "engine_queries_total",
                "Series queries served",
                l(&c.queries),
            ),
            (
                "engine_points_read_total",
                "Points returned by queries",
                l(&c.points_read),
            ),
            (
                "engine_edge_reads_total",
                "Series of first/last edge reads answered from summaries and at most one block",
                l(&c.edge_reads),
            ),
            (
                "engine_maintenance_errors_total",
                "Failed background maintenance passes",
                l(&c.maintenance_errors),
            ),
        ];
        let (wal_bytes, wal_segments) = {
            let w = self.wal.lock();
            (w.total_bytes(), w.segment_count())
        };
        let gauges = vec![
            (
                "engine_wal_bytes",
                "Bytes in WAL segments on disk",
                wal_bytes as f64,
            ),
            (
                "engine_wal_segments",
                "WAL segment files on disk",
                wal_segments as f64,
            ),
            (
                "engine_head_points",
                "Points in the in-memory head",
                self.head.points() as f64,
            ),
            (
                "engine_head_bytes",
                "Bytes accounted to the head (max_head_bytes bound)",
                self.head.bytes() as f64,
            ),
            (
                "engine_head_series",
                "Series with points in the head",
                self.head.series_count() as f64,
            ),
            (
                "engine_blocks",
                "Sealed blocks",
                self.sealed.block_count() as f64,
            ),
            (
                "engine_block_bytes",
                "Encoded bytes of sealed blocks",
                self.sealed.block_bytes() as f64,
            ),
            (
                "engine_unsettled_series",
                "Series with overlapping blocks waiting for a compaction",
                self.sealed.unsettled_count() as f64,
            ),
            (
                "engine_series",
                "Known series (including empty ones)",
                self.registry.len() as f64,
            ),
            (
                "engine_fjall_disk_bytes",
                "Apparent size of the fjall store (its journal is preallocated sparsely)",
                self.sealed.store.disk_bytes() as f64,
            ),
            (
                "engine_poisoned",
                "1 when a write failure poisoned the engine",
                f64::from(u8::from(self.is_poisoned())),
            ),
        ];
        StorageStats { counters, gauges }
    }
}

/// How many values two ascending, duplicate-free slices share.
fn count_common(a: &[i64], b: &[i64]) -> u64 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

//! Background maintenance, every step under the maintenance lock: seal heads into
//! blocks (full, aged, idle with late points, or the biggest under memory pressure),
//! compact overlapping blocks, checkpoint the WAL (force-sealing laggards when it is
//! over `wal_max_bytes`) and expire TTL'd points. [`Inner::maintain`] is one pass.
//!
//! Not here: when a pass runs (`threads.rs`), and how blocks are encoded, merged and
//! rewritten (`sealed.rs`, `block.rs`, `column.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{StorageError, TimeRange};

use super::{io_internal, secs, Inner};
use crate::codec::put_uvarint;
use crate::head::{Frozen, HeadInfo};
use crate::index::SeriesEntry;
use crate::sealed;
use crate::wal::{self, NEVER};
use crate::WalSync;

/// A head holding late points (see [`Inner::maintain`]) is sealed once it has had no
/// write for this long.
const LATE_SEAL_IDLE: Duration = Duration::from_secs(2);

/// How many of its own average gaps between writes a head must be quiet for before it is
/// idle ([`Inner::idle`]).
const IDLE_GAPS: i64 = 4;

/// A drained WAL's current segment is rotated away above this size.
const DRAINED_ROTATE_BYTES: u64 = 1 << 20;

/// Series sealed per fjall batch (and per hold of the maintenance lock).
const SEAL_BATCH: usize = 64;

impl Inner {
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
        for sids in self.aged_heads(now).chunks(SEAL_BATCH) {
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
            self.rotate_if_drained_locked()?;
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

    /// Heads to seal whole by age at `now`: older than `head_max_age`, idle (see
    /// [`Inner::idle`]), or idle and holding late points.
    fn aged_heads(&self, now: i64) -> Vec<u64> {
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
        self.head
            .infos()
            .into_iter()
            .filter(|i| {
                i.points > 0
                    && (now.saturating_sub(i.first_write_ms) >= max_age
                        || self.idle(i, now)
                        || late(i))
            })
            .map(|i| i.sid)
            .collect()
    }

    /// Whether a head has had no write for `head_idle` and for [`IDLE_GAPS`] of its own
    /// average gap between writes: its series stopped (a finished load, a host gone), so
    /// its points need not wait in the WAL for `head_max_age` (issue 21: the disk a minute
    /// after a load). A live series, written every few seconds or minutes, is never idle
    /// by this rule; a head of one point has no gap yet and waits a quarter of
    /// `head_max_age`. A series written again later appends to the small block this
    /// seal left (`Sealed::seal_into`'s append-merge), so no tiny blocks pile up.
    fn idle(&self, i: &HeadInfo, now: i64) -> bool {
        let floor = self.cfg.head_idle.as_millis() as i64;
        let wait = match i.points {
            0 | 1 => floor.max(self.cfg.head_max_age.as_millis() as i64 / 4),
            n => {
                let gap = i.last_write_ms.saturating_sub(i.first_write_ms) / (n as i64 - 1);
                floor.max(gap.saturating_mul(IDLE_GAPS))
            }
        };
        now.saturating_sub(i.last_write_ms) >= wait
    }

    /// Starts a new WAL segment when every head is sealed and the current one holds more
    /// than [`DRAINED_ROTATE_BYTES`], so the checkpoint can delete it: after a load, the
    /// WAL would otherwise keep its last segment (up to `wal_segment_bytes`) until the
    /// next write fills it. A write racing this lands in one segment or the other, and
    /// its head keeps that segment (`Head::min_segment`).
    fn rotate_if_drained_locked(&self) -> Result<(), StorageError> {
        if self.head.points() > 0 {
            return Ok(());
        }
        let mut wal = self.wal.lock();
        if wal.current_len() <= DRAINED_ROTATE_BYTES {
            return Ok(());
        }
        wal.rotate()
            .map_err(|e| self.poison(format!("WAL rotate failed: {e}")))
    }

    // -----------------------------------------------------------------------
    // Sealing
    // -----------------------------------------------------------------------

    /// Seals the head of one series into blocks.
    pub fn seal_series_locked(&self, sid: u64) -> Result<(), StorageError> {
        self.seal_whole_locked(&[sid])
    }

    /// Seals every head (close, explicit flush).
    pub fn seal_all_locked(&self) -> Result<(), StorageError> {
        self.seal_whole_locked(&self.head.series_ids())
    }

    /// Seals the biggest heads until the head holds at most `target` bytes.
    pub(super) fn seal_biggest_locked(&self, target: u64) -> Result<(), StorageError> {
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
    /// ([`crate::head::Head::freeze_keeping`]), logged again; the WAL is fsynced before
    /// any block marks the window's old positions as sealed, so a crash or power loss
    /// cannot skip points that are only in the head.
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
                    wal::encode_col_chunk(&mut buf, sid, expiry, &kept.ts.all(), &kept.vals);
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

    // -----------------------------------------------------------------------
    // Compaction, checkpoint, retention
    // -----------------------------------------------------------------------

    /// Merges the overlapping blocks of `sids` into disjoint ones (see
    /// [`sealed::Sealed::compact`]), one fjall batch per series.
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
            self.seal_laggards_locked(&closed, current, current_len, total)?;
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

    /// Force-seals the series whose head points sit in the oldest WAL segments, so
    /// that the WAL (`total` bytes: the `closed` segments and `current_len` bytes of
    /// segment `current`) can shrink to about half of `wal_max_bytes`.
    fn seal_laggards_locked(
        &self,
        closed: &[(u64, u64)],
        current: u64,
        current_len: u64,
        total: u64,
    ) -> Result<(), StorageError> {
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
        self.seal_whole_locked(&laggards)
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
}

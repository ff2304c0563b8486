//! Deletes (spec §1.8/§1.9), under the maintenance lock: select the live series →
//! WAL append of a delete record and head removal under the WAL lock → fsync, whatever
//! `WalSync` says → drop or rewrite the blocks in the range → hide series left empty.
//! Replay re-applies the record (`open.rs`), so deleted points never come back.
//!
//! Not here: how blocks straddling the range are rewritten (`sealed.rs`,
//! `Sealed::delete_range`) and the delete record's bytes (`wal.rs`).

use std::sync::atomic::Ordering;

use kairosdb_model::{DeleteRequest, StorageError, TagFilter, TimeRange};

use super::Inner;
use crate::wal;

impl Inner {
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
        let mut sids = self.live_series(&req.metric, &req.filter);
        if req.shard.is_some() || req.exact {
            let wanted = req.filter.tags.len();
            sids.retain(|&sid| {
                self.registry.get(sid).is_some_and(|e| {
                    req.shard
                        .as_ref()
                        .is_none_or(|s| s.holds(&e.key.metric, &e.key.tags))
                        && (!req.exact || e.key.tags.len() == wanted)
                })
            });
        }
        if sids.is_empty() {
            return Ok(0);
        }
        let watermark = self.sealed.next_seq();
        let mut removed = self.log_and_remove_from_head(watermark, req.range, &sids)?;
        for (i, &sid) in sids.iter().enumerate() {
            removed[i] += self.remove_from_blocks(sid, req.range, watermark)?;
        }
        self.counters
            .points_deleted
            .fetch_add(removed.iter().sum(), Ordering::Relaxed);
        Ok(removed.iter().filter(|&&n| n > 0).count() as u64)
    }

    /// Ids of the live series of `metric` matching `filter`.
    fn live_series(&self, metric: &str, filter: &TagFilter) -> Vec<u64> {
        self.registry
            .select(metric, filter)
            .into_iter()
            .filter(|&sid| {
                self.registry
                    .get(sid)
                    .is_some_and(|e| e.live.load(Ordering::Acquire))
            })
            .collect()
    }

    /// Logs the delete and removes the range from the heads of `sids` under the WAL
    /// lock, then fsyncs. Returns the points removed from each head.
    fn log_and_remove_from_head(
        &self,
        watermark: u64,
        range: TimeRange,
        sids: &[u64],
    ) -> Result<Vec<u64>, StorageError> {
        let mut rec = Vec::with_capacity(32 + sids.len() * 4);
        wal::encode_delete(&mut rec, watermark, range, sids);
        let mut removed = vec![0u64; sids.len()];
        let target = {
            let mut wal = self.wal.lock();
            self.check_writable()?;
            if let Err(e) = wal.append(&[&rec]) {
                return Err(self.poison(format!("WAL write failed: {e}")));
            }
            for (i, &sid) in sids.iter().enumerate() {
                removed[i] = self.head.remove_range(sid, range) as u64;
            }
            wal.written()
        };
        self.counters
            .wal_bytes_written
            .fetch_add(rec.len() as u64, Ordering::Relaxed);
        self.sync_to(target)?;
        Ok(removed)
    }

    /// Drops the blocks of one series inside the range and rewrites those straddling
    /// its ends; hides the series if nothing is left. Returns the points removed.
    fn remove_from_blocks(
        &self,
        sid: u64,
        range: TimeRange,
        watermark: u64,
    ) -> Result<u64, StorageError> {
        let Some(e) = self.registry.get(sid) else {
            return Ok(0);
        };
        let out = self
            .sealed
            .delete_range(&e, range, watermark)
            .map_err(|err| self.poison_maint(err))?;
        self.counters
            .delete_blocks_dropped
            .fetch_add(out.dropped_blocks, Ordering::Relaxed);
        self.counters
            .delete_blocks_rewritten
            .fetch_add(out.rewritten_blocks, Ordering::Relaxed);
        self.check_dead(&e);
        Ok(out.points)
    }
}

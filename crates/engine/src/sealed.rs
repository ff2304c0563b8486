//! Operations on a series' sealed blocks in fjall: sealing a sorted run into
//! blocks (append-merging into a small newest block), reading the blocks that
//! overlap a range, deleting a time range, expiring points by TTL, and compacting
//! blocks that overlap (late writes) into disjoint ones.
//!
//! Block precedence: a block's `seq` is global and increasing, so on equal
//! timestamps the higher seq wins. Rewrites (delete, retention) keep the original
//! seq so they never change precedence; an append-merge takes a new seq, which is
//! safe because it only merges into the series' newest block with points that are
//! all later than that block. A compaction merges each group of overlapping blocks
//! (newest seq winning) into new blocks with new seqs: they overlap no other block,
//! so their precedence over the rest does not matter.
//!
//! Every mutation runs under the engine's maintenance lock (one writer of blocks at
//! a time) and commits one fjall batch per series, which also rewrites the series'
//! [`BlockSummary`] and the `expiry` work list. Reads run concurrently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use kairosdb_model::{StorageError, TimeRange};
use parking_lot::Mutex;

use crate::block::{self, BlockHeader, Decoded, Expiry};
use crate::column::{merge_runs, Col, Run};
use crate::index::{Registry, SeriesEntry};
use crate::store::{corrupt, fjall_err, BlockId, BlockSummary, Store};
use crate::wal::{Lsn, NEVER};

/// Points a full head written out of time order keeps unsealed (see
/// `Inner::seal_full_locked`): parallel writers deliver a series up to a few requests
/// apart, and a straggler older than the sealed points would cost a rewrite of the
/// newest block. 256 points at the default `seal_points`, 42 min of 10 s data.
pub fn lateness_window(seal_points: usize) -> usize {
    seal_points / 8
}

/// Result of sealing one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealOutcome {
    pub blocks: u64,
    pub points: u64,
    pub bytes: u64,
}

/// Result of deleting a time range from one series' blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub points: u64,
    /// Blocks entirely inside the range, dropped without decoding.
    pub dropped_blocks: u64,
    /// Blocks straddling an end of the range, decoded and re-encoded.
    pub rewritten_blocks: u64,
}

/// How long a series' blocks may overlap before maintenance compacts them, counted
/// from the seal that first made them overlap. Late writes arrive in bursts (a
/// backfill, a collector replaying its buffer); waiting lets one compaction take a
/// burst's blocks together instead of rewriting the same block after every seal.
pub const SETTLE_DELAY_SECS: u64 = 10;

/// Result of compacting one series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactOutcome {
    /// Overlapping blocks read and removed.
    pub blocks_in: u64,
    /// Disjoint blocks written in their place.
    pub blocks_out: u64,
    /// Groups of overlapping blocks over the point limit, left as they are.
    pub skipped_groups: u64,
}

/// The most points of one group of overlapping blocks a compaction merges (it holds
/// them in memory: about 64 MiB of timestamps and values).
pub const COMPACT_MAX_POINTS: u64 = 4 << 20;

/// Result of one retention pass over blocks.
#[derive(Clone, Debug, Default)]
pub struct ExpireOutcome {
    pub touched: Vec<u64>,
    pub dropped_blocks: u64,
    pub rewritten_blocks: u64,
    pub expired_points: u64,
}

kairosdb_model::metrics! {
    /// Block writes and removals, exported with the engine's counters.
    #[derive(Default)]
    pub struct BlockCounters {
        counter blocks_written: "engine_blocks_written_total",
            "Blocks written (seal, merge, rewrite)";
        counter blocks_removed: "engine_blocks_removed_total",
            "Blocks removed (merge, rewrite, delete, TTL)";
    }
}

pub struct Sealed {
    pub store: Store,
    next_seq: AtomicU64,
    level: usize,
    /// Target points per block; a block holds at most twice this.
    seal_points: usize,
    blocks: AtomicU64,
    bytes: AtomicU64,
    pub counters: BlockCounters,
    /// Series whose blocks overlap (their summary is not `disjoint`), with the time
    /// (Unix seconds) the first overlapping seal ran: the compaction work list.
    unsettled: Mutex<HashMap<u64, u64>>,
}

/// Copies `d[range]` into a run, with expiry when any point can expire.
fn run_from_decoded(d: &Decoded, h: &BlockHeader, r: std::ops::Range<usize>) -> Run {
    let mut vals = Col::with_capacity(h.data_type, r.len());
    vals.extend_from_col(&d.vals, r.clone());
    let exp = if !d.exp.is_empty() {
        d.exp[r.clone()].to_vec()
    } else if h.max_exp != NEVER {
        vec![h.max_exp; r.len()]
    } else {
        Vec::new()
    };
    Run {
        ts: d.ts[r].to_vec(),
        vals,
        exp,
    }
}

/// Point `i` of a decoded block as a one-point run, values only (edge reads).
pub fn point(d: &Decoded, h: &BlockHeader, i: usize) -> Run {
    let mut run = run_from_decoded(d, h, i..i + 1);
    run.exp.clear();
    run
}

/// Why a read ended early: it reached its `SeriesQuery::work_limit` (not a failure:
/// the engine answers `Read::OverWorkLimit`), or it failed.
#[derive(Debug)]
pub enum Stop {
    OverWorkLimit,
    Failed(StorageError),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Stop {
        Stop::Failed(e)
    }
}

/// Stored points one read has touched, held against its `SeriesQuery::work_limit`.
#[derive(Debug)]
pub struct Work {
    done: u64,
    limit: u64,
}

impl Work {
    pub fn new(limit: Option<u64>) -> Work {
        Work {
            done: 0,
            limit: limit.unwrap_or(u64::MAX),
        }
    }

    /// Counts `points` more; stops the read once the total exceeds the limit.
    pub fn add(&mut self, points: u64) -> Result<(), Stop> {
        self.done = self.done.saturating_add(points);
        self.fits(0)
    }

    /// Stops the read when `points` more would exceed the limit (without counting them).
    pub fn fits(&self, points: u64) -> Result<(), Stop> {
        if self.done.saturating_add(points) > self.limit {
            return Err(Stop::OverWorkLimit);
        }
        Ok(())
    }
}

/// About how many sealed points of a series lie in `range`: its summary's points taken
/// as spread evenly between its first and last timestamp.
pub fn points_in_range_estimate(s: &BlockSummary, range: TimeRange) -> u64 {
    if s.blocks == 0 || s.max_ts < range.start || s.min_ts > range.end {
        return 0;
    }
    let span = i128::from(s.max_ts) - i128::from(s.min_ts);
    if span == 0 {
        return s.points;
    }
    let overlap = i128::from(s.max_ts.min(range.end)) - i128::from(s.min_ts.max(range.start));
    (i128::from(s.points) * overlap / span) as u64
}

fn encode_run(run: &Run, level: usize) -> Vec<u8> {
    let exp = if run.exp.is_empty() {
        Expiry::Uniform(NEVER)
    } else {
        Expiry::PerPoint(&run.exp)
    };
    block::encode(&run.ts, &run.vals, exp, level)
}

impl Sealed {
    pub fn new(store: Store, level: usize, seal_points: usize) -> Result<Sealed, StorageError> {
        let next = store.next_block_seq()?;
        Ok(Sealed {
            store,
            next_seq: AtomicU64::new(next),
            level,
            seal_points: seal_points.max(1),
            blocks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            counters: BlockCounters::default(),
            unsettled: Mutex::new(HashMap::new()),
        })
    }

    /// Puts series `sid` on the compaction work list (kept in memory; at open, the
    /// summaries that are not `disjoint` put their series back on it).
    pub fn mark_unsettled(&self, sid: u64, now_secs: u64) {
        self.unsettled.lock().entry(sid).or_insert(now_secs);
    }

    /// Series on the compaction work list.
    pub fn unsettled_count(&self) -> usize {
        self.unsettled.lock().len()
    }

    /// Takes off the work list the series that have overlapped for at least
    /// [`SETTLE_DELAY_SECS`], oldest first.
    pub fn take_unsettled(&self, now_secs: u64) -> Vec<u64> {
        let mut list = self.unsettled.lock();
        let mut due: Vec<(u64, u64)> = list
            .iter()
            .filter(|(_, &since)| now_secs.saturating_sub(since) >= SETTLE_DELAY_SECS)
            .map(|(&sid, &since)| (since, sid))
            .collect();
        due.sort_unstable();
        for (_, sid) in &due {
            list.remove(sid);
        }
        due.into_iter().map(|(_, sid)| sid).collect()
    }

    /// Accounts blocks found at open.
    pub fn account_loaded(&self, s: &BlockSummary) {
        self.blocks
            .fetch_add(u64::from(s.blocks), Ordering::Relaxed);
        self.bytes.fetch_add(s.bytes, Ordering::Relaxed);
    }

    /// The seq the next block will get; blocks below it exist now.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }

    /// Makes the next seq at least `at_least` (persisted with the next seal).
    pub fn advance_next_seq(&self, at_least: u64) {
        self.next_seq.fetch_max(at_least, Ordering::AcqRel);
    }

    pub fn block_count(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    pub fn block_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Writes `run` (non-empty) as block `(sid, run.ts[0], seq)`. `newest`: whether it
    /// becomes the append-merge target (see [`BlockSummary::add_block`]).
    fn add(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        summary: &mut BlockSummary,
        sid: u64,
        seq: u64,
        run: &Run,
        newest: bool,
    ) -> u64 {
        let bytes = encode_run(run, self.level);
        let id = BlockId {
            sid,
            start: run.ts[0],
            seq,
        };
        let min_exp = run.exp.iter().copied().min().unwrap_or(NEVER);
        if min_exp != NEVER {
            batch.insert(&self.store.expiry, id.expiry_key(min_exp), []);
        }
        let len = bytes.len() as u64;
        batch.insert(&self.store.blocks, id.key(), bytes);
        let last = run.len() - 1;
        let last_value = run.vals.number_bits(last).unwrap_or(0);
        summary.add_block(
            id,
            run.len() as u32,
            (run.ts[last], last_value),
            len,
            newest,
        );
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len, Ordering::Relaxed);
        self.counters.blocks_written.fetch_add(1, Ordering::Relaxed);
        len
    }

    fn remove(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        summary: &mut BlockSummary,
        id: BlockId,
        h: &BlockHeader,
        len: u64,
    ) {
        batch.remove(&self.store.blocks, id.key());
        if h.min_exp != NEVER {
            batch.remove(&self.store.expiry, id.expiry_key(h.min_exp));
        }
        self.account_removed(summary, id, h, len);
    }

    /// Replaces block `id` by the points of it that remain (`run`: sorted, unique; empty
    /// drops the block). The seq stays, so precedence between blocks never changes; the
    /// key's start follows the first remaining point. A key that stays the same is
    /// overwritten rather than removed and re-inserted in the same batch.
    fn rewrite(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        summary: &mut BlockSummary,
        id: BlockId,
        h: &BlockHeader,
        len: u64,
        run: &Run,
    ) {
        if run.is_empty() {
            self.remove(batch, summary, id, h, len);
            return;
        }
        let newest = summary.last_seq == id.seq;
        let same_key = run.ts[0] == id.start;
        let min_exp = run.exp.iter().copied().min().unwrap_or(NEVER);
        if !same_key {
            batch.remove(&self.store.blocks, id.key());
        }
        if h.min_exp != NEVER && !(same_key && min_exp == h.min_exp) {
            batch.remove(&self.store.expiry, id.expiry_key(h.min_exp));
        }
        self.account_removed(summary, id, h, len);
        self.add(batch, summary, id.sid, id.seq, run, newest);
    }

    /// Accounts a removed block in the summary and the gauges (keys are the caller's).
    fn account_removed(&self, summary: &mut BlockSummary, id: BlockId, h: &BlockHeader, len: u64) {
        summary.remove_block(id, h.count, len);
        self.blocks.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(
            len.min(self.bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.counters.blocks_removed.fetch_add(1, Ordering::Relaxed);
    }

    fn get_block(&self, id: BlockId) -> Result<Option<fjall::Slice>, StorageError> {
        self.store.blocks.get(id.key()).map_err(fjall_err)
    }

    fn header(&self, id: BlockId, bytes: &[u8]) -> Result<BlockHeader, StorageError> {
        block::decode_header(bytes).map_err(|e| corrupt(&format!("block {id:?}"), e))
    }

    fn decode(
        &self,
        id: BlockId,
        bytes: &[u8],
        d: &mut Decoded,
    ) -> Result<BlockHeader, StorageError> {
        block::decode(bytes, d).map_err(|e| corrupt(&format!("block {id:?}"), e))
    }

    /// Seals a run (sorted, unique timestamps; may be empty) for each series (at most
    /// once each) and records that its WAL records up to the given position are now
    /// in blocks, all in one fjall batch (the batch framing and the block sequence
    /// record are written once).
    pub fn seal<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a SeriesEntry, Run, Lsn)>,
        now_secs: u64,
    ) -> Result<Vec<SealOutcome>, StorageError> {
        let mut batch = self.store.batch();
        let mut done = Vec::new();
        for (e, run, sealed_lsn) in items {
            let (summary, out) = self.seal_into(&mut batch, e, run, sealed_lsn, now_secs)?;
            done.push((e, summary, out));
        }
        if done.iter().any(|(_, _, out)| out.blocks > 0) {
            self.store.put_next_block_seq(&mut batch, self.next_seq());
        }
        batch.commit().map_err(fjall_err)?;
        Ok(done
            .into_iter()
            .map(|(e, summary, out)| {
                *e.summary.lock() = summary;
                out
            })
            .collect())
    }

    /// Adds the seal of one series to `batch`; returns its new summary, to be
    /// installed once the batch is committed.
    fn seal_into(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        e: &SeriesEntry,
        mut run: Run,
        sealed_lsn: Lsn,
        now_secs: u64,
    ) -> Result<(BlockSummary, SealOutcome), StorageError> {
        let mut summary = *e.summary.lock();
        let mut out = SealOutcome::default();
        if !run.is_empty() {
            out.points = run.len() as u64;
            let (first, last) = (run.ts[0], run.ts[run.len() - 1]);
            // Append-merge: a small newest block that ends before the new points
            // absorbs them, so sparse series do not leave many tiny blocks. Blocks
            // of full seals (less the lateness window) are never rewritten this way.
            let append = summary.last_seq != 0
                && (summary.last_count as usize)
                    < self.seal_points - lateness_window(self.seal_points)
                && summary.last_max_ts < first
                && summary.last_count as usize + run.len() <= self.seal_points * 2;
            // Late merge: points reaching back into the newest block (writers that
            // deliver a series out of time order) are merged into it, when it is the
            // block ending the series and the blocks are disjoint; then they stay
            // disjoint. The newest block has the highest seq of the series, so giving
            // its points a new one changes no precedence between blocks.
            let late_merge = summary.disjoint
                && summary.last_seq != 0
                && summary.last_max_ts == summary.max_ts
                && (summary.last_start..=summary.last_max_ts).contains(&first);
            let mut late = !late_merge && summary.overlaps(first, last);
            if append || late_merge {
                let id = BlockId {
                    sid: e.id,
                    start: summary.last_start,
                    seq: summary.last_seq,
                };
                if let Some(bytes) = self.get_block(id)? {
                    let mut d = Decoded::new();
                    let h = self.decode(id, &bytes, &mut d)?;
                    let mut old = run_from_decoded(&d, &h, 0..h.count as usize);
                    old.retain_alive(now_secs);
                    self.remove(batch, &mut summary, id, &h, bytes.len() as u64);
                    run = merge_runs(h.data_type, vec![old, run]);
                } else {
                    late = summary.overlaps(first, last);
                }
            }
            for part in run.split_even(self.seal_points * 2) {
                let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
                out.bytes += self.add(batch, &mut summary, e.id, seq, &part, true);
                out.blocks += 1;
            }
            if late {
                summary.disjoint = false;
                self.mark_unsettled(e.id, now_secs);
            }
        }
        summary.sealed_lsn = summary.sealed_lsn.max(sealed_lsn);
        self.store.put_summary(batch, e.id, &summary);
        Ok((summary, out))
    }

    /// Runs of the blocks of `e` overlapping `range`, oldest seq first, without
    /// expired points; with each point's expiry when `with_exp` (else only where some
    /// point has expired meanwhile).
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &self,
        e: &SeriesEntry,
        summary: &BlockSummary,
        range: TimeRange,
        now_secs: u64,
        with_exp: bool,
        d: &mut Decoded,
        work: &mut Work,
    ) -> Result<Vec<Run>, Stop> {
        if summary.blocks == 0 || summary.max_ts < range.start || summary.min_ts > range.end {
            return Ok(Vec::new());
        }
        let from = (i128::from(range.start) - i128::from(summary.max_span))
            .max(i128::from(i64::MIN)) as i64;
        let mut hits: Vec<(BlockId, BlockHeader, fjall::Slice)> = Vec::new();
        for item in self.store.blocks_between(e.id, from, range.end) {
            let (id, bytes) = item?;
            let h = self.header(id, &bytes)?;
            if h.max_ts < range.start || h.min_ts > range.end || h.all_expired(now_secs) {
                continue;
            }
            hits.push((id, h, bytes));
        }
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        work.add(hits.iter().map(|b| u64::from(b.1.count)).sum())?;
        // Fast path (the common case): blocks that do not overlap each other and
        // hold no expired point are decoded straight into one output run.
        hits.sort_by_key(|b| b.1.min_ts);
        let disjoint = hits.windows(2).all(|w| w[0].1.max_ts < w[1].1.min_ts);
        let alive = hits
            .iter()
            .all(|b| b.1.min_exp > now_secs && (!with_exp || b.1.min_exp == NEVER));
        if disjoint && alive {
            let total: usize = hits.iter().map(|b| b.1.count as usize).sum();
            let mut run = Run {
                ts: Vec::with_capacity(total),
                vals: Col::with_capacity(e.key.data_type, total),
                exp: Vec::new(),
            };
            for (id, _, bytes) in &hits {
                block::decode_append_range(bytes, &mut run.ts, &mut run.vals, range)
                    .map_err(|er| corrupt(&format!("block {id:?}"), er))?;
            }
            return Ok(vec![run]);
        }
        let mut runs: Vec<(u64, Run)> = Vec::with_capacity(hits.len());
        for (id, _, bytes) in &hits {
            let h = self.decode(*id, bytes, d)?;
            let r = Run::bounds(&d.ts, range);
            if !r.is_empty() {
                let mut run = run_from_decoded(d, &h, r);
                run.retain_alive(now_secs);
                runs.push((id.seq, run));
            }
        }
        runs.sort_by_key(|r| r.0);
        Ok(runs.into_iter().map(|r| r.1).collect())
    }

    /// Decodes into `d` the block of `e` that starts first (`first == true`) or the
    /// newest block, for edge reads. For a `disjoint` summary these hold the series'
    /// first and last sealed points. `None` when the blocks changed since `summary` was
    /// taken: the block is gone, or its first/last point is not the summary's
    /// `min_ts`/`max_ts` (also after a delete narrowed it), or `last_seq` is unknown.
    pub fn edge_block(
        &self,
        e: &SeriesEntry,
        summary: &BlockSummary,
        first: bool,
        d: &mut Decoded,
    ) -> Result<Option<BlockHeader>, StorageError> {
        let found = if first {
            self.store
                .blocks_between(e.id, i64::MIN, i64::MAX)
                .next()
                .transpose()?
        } else if summary.last_seq != 0 && summary.last_max_ts == summary.max_ts {
            let id = BlockId {
                sid: e.id,
                start: summary.last_start,
                seq: summary.last_seq,
            };
            self.get_block(id)?.map(|bytes| (id, bytes))
        } else {
            None
        };
        let Some((id, bytes)) = found else {
            return Ok(None);
        };
        let h = self.decode(id, &bytes, d)?;
        let edge = if first { d.ts.first() } else { d.ts.last() };
        let expected = if first {
            summary.min_ts
        } else {
            summary.max_ts
        };
        Ok((edge == Some(&expected)).then_some(h))
    }

    /// Removes the points of `e` inside `range` from blocks with `seq < watermark`
    /// (the blocks that existed when the delete was logged). Idempotent, so WAL
    /// replay can apply it again.
    ///
    /// A block lying entirely inside the range is dropped on its header alone, never
    /// decoded; only blocks straddling an end of the range are decoded and re-encoded
    /// (user-needs: large deletes must not take minutes). One fjall batch per series,
    /// committed only when something changed.
    pub fn delete_range(
        &self,
        e: &SeriesEntry,
        range: TimeRange,
        watermark: u64,
    ) -> Result<DeleteOutcome, StorageError> {
        let mut summary = *e.summary.lock();
        let mut out = DeleteOutcome::default();
        if summary.blocks == 0 || summary.max_ts < range.start || summary.min_ts > range.end {
            return Ok(out);
        }
        let from = (i128::from(range.start) - i128::from(summary.max_span))
            .max(i128::from(i64::MIN)) as i64;
        let mut batch = self.store.batch();
        let mut d = Decoded::new();
        // The iterator reads a snapshot: the batch built meanwhile is committed after.
        for item in self.store.blocks_between(e.id, from, range.end) {
            let (id, bytes) = item?;
            if id.seq >= watermark {
                continue;
            }
            let h = self.header(id, &bytes)?;
            if h.max_ts < range.start || h.min_ts > range.end {
                continue;
            }
            let len = bytes.len() as u64;
            if range.start <= h.min_ts && h.max_ts <= range.end {
                self.remove(&mut batch, &mut summary, id, &h, len);
                out.points += u64::from(h.count);
                out.dropped_blocks += 1;
                continue;
            }
            let h = self.decode(id, &bytes, &mut d)?;
            let inside = Run::bounds(&d.ts, range);
            if inside.is_empty() {
                // The range falls between two points of the block.
                continue;
            }
            out.points += inside.len() as u64;
            let mut run = run_from_decoded(&d, &h, 0..h.count as usize);
            run.remove_range(range);
            self.rewrite(&mut batch, &mut summary, id, &h, len, &run);
            out.rewritten_blocks += 1;
        }
        if out.dropped_blocks + out.rewritten_blocks == 0 {
            return Ok(out);
        }
        self.store.put_summary(&mut batch, e.id, &summary);
        batch.commit().map_err(fjall_err)?;
        *e.summary.lock() = summary;
        Ok(out)
    }

    /// Merges each group of overlapping blocks of `e` (blocks chained by shared time
    /// ranges) into disjoint blocks of at most twice `seal_points`, the newest seq
    /// winning on equal timestamps and expired points dropped; blocks overlapping no
    /// other stay as they are. Afterwards the summary is `disjoint` again, so reads
    /// take the decode-in-place path and first/last reads the edge path. One fjall
    /// batch; the caller holds the maintenance lock.
    ///
    /// Concurrent reads see the batch whole or not at all (block reads use a fjall
    /// snapshot). A merged block can span more time than any block before, and a
    /// read starts its block scan `max_span` before its range: the live summary's
    /// `max_span` is raised before the commit, and a read whose summary predates that
    /// reads again (see `Inner::read_series`).
    ///
    /// A group of more than `max_points` points ([`COMPACT_MAX_POINTS`] from
    /// maintenance) is left as it is, and the series stays not `disjoint`.
    pub fn compact(
        &self,
        e: &SeriesEntry,
        now_secs: u64,
        max_points: u64,
    ) -> Result<CompactOutcome, StorageError> {
        let mut summary = *e.summary.lock();
        let mut out = CompactOutcome::default();
        if summary.disjoint || summary.blocks == 0 {
            return Ok(out);
        }
        // Keys sort by start (= first timestamp), so a block opens a new group when
        // it starts after every block of the current group has ended.
        let mut groups: Vec<Vec<(BlockId, BlockHeader, fjall::Slice)>> = Vec::new();
        let mut group = Vec::new();
        let mut group_max = i64::MIN;
        for item in self.store.blocks_between(e.id, i64::MIN, i64::MAX) {
            let (id, bytes) = item?;
            let h = self.header(id, &bytes)?;
            if group.is_empty() || h.min_ts > group_max {
                if group.len() > 1 {
                    groups.push(std::mem::take(&mut group));
                }
                group.clear();
                group_max = h.max_ts;
            } else {
                group_max = group_max.max(h.max_ts);
            }
            group.push((id, h, bytes));
        }
        if group.len() > 1 {
            groups.push(group);
        }
        // A group is merged in memory; one too big to hold (a whole history written
        // twice) stays as it is, read by merging as before.
        let before = groups.len();
        groups.retain(|g| g.iter().map(|b| u64::from(b.1.count)).sum::<u64>() <= max_points);
        out.skipped_groups = (before - groups.len()) as u64;
        let series_end = summary.max_ts;
        let mut batch = self.store.batch();
        let mut d = Decoded::new();
        for mut group in groups {
            group.sort_by_key(|b| b.0.seq);
            let mut runs = Vec::with_capacity(group.len());
            let mut end = i64::MIN;
            for (id, _, bytes) in &group {
                let h = self.decode(*id, bytes, &mut d)?;
                end = end.max(h.max_ts);
                runs.push(run_from_decoded(&d, &h, 0..h.count as usize));
            }
            let mut merged = merge_runs(e.key.data_type, runs);
            merged.retain_alive(now_secs);
            if !merged.is_empty() {
                let parts = merged.split_even(self.seal_points * 2);
                let last = parts.len() - 1;
                for (i, part) in parts.iter().enumerate() {
                    let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
                    // The block ending the series, with the highest seq of all and
                    // overlapping none, is a safe append-merge target.
                    let newest = i == last && end == series_end;
                    self.add(&mut batch, &mut summary, e.id, seq, part, newest);
                    out.blocks_out += 1;
                }
            }
            for (id, h, bytes) in &group {
                self.remove(&mut batch, &mut summary, *id, h, bytes.len() as u64);
                out.blocks_in += 1;
            }
        }
        summary.disjoint = summary.blocks > 0 && out.skipped_groups == 0;
        if out.blocks_out > 0 {
            self.store.put_next_block_seq(&mut batch, self.next_seq());
        }
        self.store.put_summary(&mut batch, e.id, &summary);
        {
            let mut live = e.summary.lock();
            live.max_span = live.max_span.max(summary.max_span);
        }
        batch.commit().map_err(fjall_err)?;
        *e.summary.lock() = summary;
        Ok(out)
    }

    /// Drops or rewrites every block holding points expired at `now_secs`,
    /// following the `expiry` work list (so untouched blocks are never read).
    pub fn expire(
        &self,
        registry: &Registry,
        now_secs: u64,
    ) -> Result<ExpireOutcome, StorageError> {
        let mut entries = self.store.expired_entries(now_secs)?;
        let mut out = ExpireOutcome::default();
        if entries.is_empty() {
            return Ok(out);
        }
        entries.sort_by_key(|(_, id)| *id);
        let mut d = Decoded::new();
        let mut i = 0;
        while i < entries.len() {
            let sid = entries[i].1.sid;
            let mut j = i;
            while j < entries.len() && entries[j].1.sid == sid {
                j += 1;
            }
            let entry = registry.get(sid);
            let mut summary = entry
                .as_ref()
                .map(|e| *e.summary.lock())
                .unwrap_or_default();
            let mut batch = self.store.batch();
            for &(min_exp, id) in &entries[i..j] {
                let Some(bytes) = self.get_block(id)? else {
                    // Stale work-list entry (block already rewritten or removed).
                    batch.remove(&self.store.expiry, id.expiry_key(min_exp));
                    continue;
                };
                let h = self.decode(id, &bytes, &mut d)?;
                if h.min_exp != min_exp {
                    batch.remove(&self.store.expiry, id.expiry_key(min_exp));
                }
                let mut run = run_from_decoded(&d, &h, 0..h.count as usize);
                run.retain_alive(now_secs);
                out.expired_points += u64::from(h.count) - run.len() as u64;
                if run.is_empty() {
                    out.dropped_blocks += 1;
                } else {
                    out.rewritten_blocks += 1;
                }
                self.rewrite(&mut batch, &mut summary, id, &h, bytes.len() as u64, &run);
            }
            if let Some(e) = &entry {
                self.store.put_summary(&mut batch, sid, &summary);
                batch.commit().map_err(fjall_err)?;
                *e.summary.lock() = summary;
                out.touched.push(sid);
            } else {
                batch.commit().map_err(fjall_err)?;
            }
            i = j;
        }
        Ok(out)
    }
}

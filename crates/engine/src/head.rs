//! The head: per-series in-memory columns of points not yet in sealed blocks.
//!
//! Series heads are spread over [`SHARDS`] mutex-protected maps (by series id), so
//! writers, readers and the sealer contend only when they touch the same shard.
//! Points are appended in write order; out-of-order and duplicate timestamps are
//! kept as written and resolved (sort, last write wins) when read or sealed.
//!
//! Sealing moves a series' active chunk into `frozen` (still visible to reads)
//! while it is encoded; [`Head::commit_frozen`] drops it once the blocks are in
//! fjall. Memory is accounted in [`Head::bytes`] for backpressure. Evenly spaced
//! timestamps are kept as runs (`times.rs`), so a collector's head costs about its
//! values alone. The head knows nothing about the WAL beyond the positions it is
//! handed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kairosdb_model::{DataType, Order, Points, TimeRange};
use parking_lot::Mutex;

use crate::column::{dedupe_order, Col, Run};
use crate::index::IdMap;
use crate::times::Times;
#[cfg(test)]
use crate::times::RUN_BYTES;
use crate::wal::{Lsn, NEVER};

pub const SHARDS: usize = 64;

/// Points of one series in write order, with expiry runs.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Timestamps in write order; no heap while evenly spaced (`times.rs`).
    pub ts: Times,
    pub vals: Col,
    /// `(first index, expiry secs)`; the expiry of point `i` is that of the last run
    /// starting at or before `i`. Empty iff the chunk is empty.
    exp: Vec<(u32, u64)>,
    /// Timestamps strictly increasing in write order (no sort needed).
    sorted: bool,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_exp: u64,
}

impl Chunk {
    pub fn new(dt: DataType) -> Chunk {
        Chunk {
            ts: Times::default(),
            vals: Col::new(dt),
            exp: Vec::new(),
            sorted: true,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            min_exp: NEVER,
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Expiry of the points when they share one ([`NEVER`] when empty), else `None`.
    pub fn expiry(&self) -> Option<u64> {
        match self.exp.as_slice() {
            [] => Some(NEVER),
            [(_, e)] => Some(*e),
            _ => None,
        }
    }

    /// Bytes accounted against `max_head_bytes`.
    pub fn bytes(&self) -> usize {
        self.ts.heap_bytes() + self.vals.value_bytes() + self.exp.len() * 16
    }

    fn note(&mut self, ts: &[i64], expiry: u64) {
        let Some((&first, &last)) = ts.first().zip(ts.last()) else {
            return;
        };
        let inc = ts.windows(2).all(|w| w[0] < w[1]);
        if inc {
            self.min_ts = self.min_ts.min(first);
            self.max_ts = self.max_ts.max(last);
        } else {
            for &t in ts {
                self.min_ts = self.min_ts.min(t);
                self.max_ts = self.max_ts.max(t);
            }
        }
        self.sorted &= inc && self.ts.last().is_none_or(|l| l < first);
        if self.exp.last().is_none_or(|r| r.1 != expiry) {
            self.exp.push((self.ts.len() as u32, expiry));
        }
        self.min_exp = self.min_exp.min(expiry);
    }

    pub fn append_points(&mut self, p: &Points, expiry: u64) {
        debug_assert_eq!(p.data_type(), self.vals.data_type());
        self.note(p.timestamps(), expiry);
        self.ts.extend_from_slice(p.timestamps());
        self.vals.extend_from_points(p);
    }

    pub fn append_col(&mut self, ts: &[i64], vals: &Col, expiry: u64) {
        self.note(ts, expiry);
        self.ts.extend_from_slice(ts);
        self.vals.extend_from_col(vals, 0..vals.len());
    }

    #[inline]
    fn exp_at(&self, i: usize) -> u64 {
        let r = self.exp.partition_point(|r| r.0 as usize <= i);
        self.exp[r - 1].1
    }

    /// Sorted, deduplicated (last write wins) points inside `range` that are alive
    /// at `now_secs` (expired points are dropped before deduplication; see
    /// [`Run`]), with their expiry.
    pub fn to_run(&self, range: TimeRange, now_secs: u64) -> Run {
        let dt = self.vals.data_type();
        if self.is_empty() || self.max_ts < range.start || self.min_ts > range.end {
            return Run::new(dt);
        }
        let with_exp = self.min_exp != NEVER;
        if self.min_exp <= now_secs {
            let (alive, _) = self.filtered(|_, e| e > now_secs);
            return alive.to_run(range, now_secs);
        }
        if self.sorted {
            let b = self.ts.bounds(range);
            let mut vals = Col::with_capacity(dt, b.len());
            vals.extend_from_col(&self.vals, b.clone());
            let exp = if with_exp {
                b.clone().map(|i| self.exp_at(i)).collect()
            } else {
                Vec::new()
            };
            return Run {
                ts: self.ts.slice(b).into_owned(),
                vals,
                exp,
            };
        }
        let order =
            dedupe_order(&self.ts.all()).unwrap_or_else(|| (0..self.len() as u32).collect());
        let idx: Vec<u32> = order
            .into_iter()
            .filter(|&i| range.contains(self.ts.get(i as usize)))
            .collect();
        let mut vals = Col::with_capacity(dt, idx.len());
        vals.extend_gather(&self.vals, &idx);
        Run {
            ts: idx.iter().map(|&i| self.ts.get(i as usize)).collect(),
            vals,
            exp: if with_exp {
                idx.iter().map(|&i| self.exp_at(i as usize)).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Sorts the chunk in place and keeps one point per timestamp (the last written), as
    /// every read would, so later reads take the sorted path instead of sorting again
    /// (concurrent writers append a series' batches out of time order). Only for a chunk
    /// whose points share one expiry (index-based expiry runs would not survive the
    /// reordering). Returns how many points were dropped as overwritten.
    fn normalize(&mut self) -> Option<usize> {
        if self.sorted {
            return Some(0);
        }
        if self.exp.len() > 1 {
            return None;
        }
        let ts = self.ts.all();
        let Some(order) = dedupe_order(&ts) else {
            self.sorted = true;
            return Some(0);
        };
        let mut vals = Col::with_capacity(self.vals.data_type(), order.len());
        vals.extend_gather(&self.vals, &order);
        let dropped = ts.len() - order.len();
        self.ts = Times::from_vec(order.iter().map(|&i| ts[i as usize]).collect());
        self.vals = vals;
        self.sorted = true;
        Some(dropped)
    }

    /// Bounds of the points inside `range` when they can be read off without sorting:
    /// timestamps strictly increasing and nothing expired at `now_secs`. `None` otherwise.
    fn plain_bounds(&self, range: TimeRange, now_secs: u64) -> Option<std::ops::Range<usize>> {
        if self.is_empty() || self.max_ts < range.start || self.min_ts > range.end {
            return Some(0..0);
        }
        if !(self.sorted && self.min_exp > now_secs) {
            return None;
        }
        // The whole chunk (the usual case of a read up to now) needs no search.
        if range.start <= self.min_ts && self.max_ts <= range.end {
            return Some(0..self.len());
        }
        Some(self.ts.bounds(range))
    }

    /// Point `i` as a one-point run, without its expiry (edge reads return values only).
    fn point(&self, i: usize) -> Run {
        let mut vals = Col::with_capacity(self.vals.data_type(), 1);
        vals.extend_from_col(&self.vals, i..i + 1);
        Run {
            ts: vec![self.ts.get(i)],
            vals,
            exp: Vec::new(),
        }
    }

    /// A copy holding only the points for which `keep(ts, expiry)` is true, in
    /// write order. Returns the copy and how many points were dropped.
    fn filtered(&self, keep: impl Fn(i64, u64) -> bool) -> (Chunk, usize) {
        let mut out = Chunk::new(self.vals.data_type());
        let mut dropped = 0;
        let mut i = 0;
        while i < self.len() {
            // Copy maximal kept stretches within one expiry run at once.
            let e = self.exp_at(i);
            if !keep(self.ts.get(i), e) {
                dropped += 1;
                i += 1;
                continue;
            }
            let run_end = self.exp[self.exp.partition_point(|r| r.0 as usize <= i)..]
                .first()
                .map_or(self.len(), |r| r.0 as usize);
            let mut j = i + 1;
            while j < run_end && keep(self.ts.get(j), e) {
                j += 1;
            }
            let mut vals = Col::new(self.vals.data_type());
            vals.extend_from_col(&self.vals, i..j);
            out.append_col(&self.ts.slice(i..j), &vals, e);
            i = j;
        }
        (out, dropped)
    }
}

/// One series' unsealed points.
#[derive(Debug)]
pub struct SeriesHead {
    pub active: Chunk,
    frozen: Option<Arc<Chunk>>,
    /// Oldest WAL segment holding points of `active` (valid when non-empty).
    min_segment: u64,
    /// Position of the newest WAL record appended to `active`.
    last_lsn: Lsn,
    frozen_min_segment: u64,
    frozen_bytes: usize,
    /// Clock time of the first append into an empty `active` (age-based sealing).
    pub first_write_ms: i64,
    /// Clock time of the latest append (idle late points are sealed early).
    last_write_ms: i64,
    queued: bool,
}

impl SeriesHead {
    fn new(dt: DataType) -> SeriesHead {
        SeriesHead {
            active: Chunk::new(dt),
            frozen: None,
            min_segment: 0,
            last_lsn: Lsn::default(),
            frozen_min_segment: 0,
            frozen_bytes: 0,
            first_write_ms: 0,
            last_write_ms: 0,
            queued: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty() && self.frozen.is_none()
    }

    /// Oldest WAL segment this head still needs.
    pub fn min_segment(&self) -> Option<u64> {
        let a = (!self.active.is_empty()).then_some(self.min_segment);
        let f = self.frozen.as_ref().map(|_| self.frozen_min_segment);
        match (a, f) {
            (Some(a), Some(f)) => Some(a.min(f)),
            (a, f) => a.or(f),
        }
    }

    pub fn bytes(&self) -> usize {
        self.active.bytes() + self.frozen_bytes
    }
}

/// What an edge read needs from a series' head within a range: how many points, the
/// timestamps of the first and last, and the one point the read asked for.
#[derive(Debug)]
pub struct HeadEdge {
    /// The first (`Asc`) or last (`Desc`) point, as a one-point run; empty when the
    /// range holds none.
    pub point: Run,
    /// Timestamps of the first and last point (meaningless when `count() == 0`).
    pub first_ts: i64,
    pub last_ts: i64,
    /// Points in the range.
    count: u64,
    /// The timestamps in the range up to the `sealed_max` the edge was asked for,
    /// ascending: the only ones that can overwrite a sealed point.
    pub ts: Vec<i64>,
}

impl HeadEdge {
    /// Points in the range.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn empty(dt: DataType) -> HeadEdge {
        HeadEdge {
            point: Run::new(dt),
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            count: 0,
            ts: Vec::new(),
        }
    }
}

/// A chunk taken out of `active` for sealing.
pub struct Frozen {
    pub chunk: Arc<Chunk>,
    pub last_lsn: Lsn,
}

/// Summary of one series head for maintenance decisions.
#[derive(Clone, Copy, Debug)]
pub struct HeadInfo {
    pub sid: u64,
    pub points: usize,
    pub bytes: usize,
    pub min_segment: Option<u64>,
    pub first_write_ms: i64,
    pub last_write_ms: i64,
    /// Smallest timestamp of the active chunk (`i64::MAX` when empty).
    pub min_ts: i64,
}

/// What appends changed in the head's totals, added with [`Head::account`].
#[derive(Debug, Default)]
pub struct Totals {
    bytes: i64,
    points: i64,
}

/// The body of every append, with the series' shard locked: `f` fills the active chunk.
/// Returns true when the series just reached `seal_points`.
#[allow(clippy::too_many_arguments)]
fn append_locked(
    shard: &mut IdMap<SeriesHead>,
    sid: u64,
    dt: DataType,
    lsn: Lsn,
    now_ms: i64,
    seal_points: usize,
    totals: &mut Totals,
    f: impl FnOnce(&mut Chunk),
) -> bool {
    let h = shard.entry(sid).or_insert_with(|| SeriesHead::new(dt));
    let before_bytes = h.active.bytes();
    let before_len = h.active.len();
    if before_len == 0 {
        h.min_segment = lsn.segment;
        h.first_write_ms = now_ms;
    }
    h.last_write_ms = now_ms;
    f(&mut h.active);
    h.last_lsn = h.last_lsn.max(lsn);
    // Timestamps turning from runs into a list can take fewer bytes.
    totals.bytes += h.active.bytes() as i64 - before_bytes as i64;
    totals.points += (h.active.len() - before_len) as i64;
    let queue = !h.queued && h.active.len() >= seal_points;
    if queue {
        h.queued = true;
    }
    queue
}

pub struct Head {
    shards: Box<[Mutex<IdMap<SeriesHead>>]>,
    /// Totals over every series; an append batch adds its share once ([`Totals`]), so
    /// they can dip below zero while a seal subtracts points not yet added: read clamped.
    bytes: AtomicI64,
    points: AtomicI64,
}

impl Head {
    pub fn new() -> Head {
        Head {
            shards: (0..SHARDS).map(|_| Mutex::new(IdMap::default())).collect(),
            bytes: AtomicI64::new(0),
            points: AtomicI64::new(0),
        }
    }

    #[inline]
    fn shard(&self, sid: u64) -> &Mutex<IdMap<SeriesHead>> {
        &self.shards[(sid as usize) % SHARDS]
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn points(&self) -> u64 {
        self.points.load(Ordering::Relaxed).max(0) as u64
    }

    /// Adds what a batch of appends changed to the head's totals.
    fn account(&self, t: Totals) {
        if t.bytes != 0 {
            self.bytes.fetch_add(t.bytes, Ordering::Relaxed);
        }
        if t.points != 0 {
            self.points.fetch_add(t.points, Ordering::Relaxed);
        }
    }

    pub fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// One series' points of a batch, as [`Head::append_batch`] appends them.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub fn append_points(
        &self,
        sid: u64,
        p: &Points,
        expiry: u64,
        lsn: Lsn,
        now_ms: i64,
        seal_points: usize,
        on_locked: impl FnOnce(),
    ) -> bool {
        let mut on_locked = Some(on_locked);
        let queued = self.append_batch(&[(sid, p, expiry)], lsn, now_ms, seal_points, |_| {
            if let Some(f) = on_locked.take() {
                f();
            }
        });
        !queued.is_empty()
    }

    /// Appends the series of one write batch, `(series id, points, expiry)` each, taking
    /// every shard's lock once for all its series and adding to the head's totals once:
    /// a lock, an unlock and two counter updates a series kept the cores waiting for
    /// the cold stores of each append to drain (8 % of HTTP ingest CPU, perf,
    /// 2026-12-07). `on_locked(i)` runs under the lock after item `i` is in. Returns
    /// the series that just reached `seal_points`, to be queued for sealing.
    pub fn append_batch(
        &self,
        items: &[(u64, &Points, u64)],
        lsn: Lsn,
        now_ms: i64,
        seal_points: usize,
        mut on_locked: impl FnMut(usize),
    ) -> Vec<u64> {
        let shard_of = |i: u32| items[i as usize].0 as usize % SHARDS;
        let mut order: Vec<u32> = (0..items.len() as u32).collect();
        // Stable: a series named twice keeps its items' order.
        order.sort_by_key(|&i| shard_of(i));
        let mut totals = Totals::default();
        let mut queued = Vec::new();
        for same_shard in order.chunk_by(|&a, &b| shard_of(a) == shard_of(b)) {
            let mut shard = self.shards[shard_of(same_shard[0])].lock();
            for &i in same_shard {
                let (sid, p, expiry) = items[i as usize];
                let append = |c: &mut Chunk| c.append_points(p, expiry);
                let dt = p.data_type();
                if append_locked(
                    &mut shard,
                    sid,
                    dt,
                    lsn,
                    now_ms,
                    seal_points,
                    &mut totals,
                    append,
                ) {
                    queued.push(sid);
                }
                on_locked(i as usize);
            }
        }
        self.account(totals);
        queued
    }

    /// Appends one series' replayed points (WAL replay, one record at a time).
    #[allow(clippy::too_many_arguments)]
    pub fn append_col(
        &self,
        sid: u64,
        ts: &[i64],
        vals: &Col,
        expiry: u64,
        lsn: Lsn,
        now_ms: i64,
        seal_points: usize,
    ) -> bool {
        let mut totals = Totals::default();
        let append = |c: &mut Chunk| c.append_col(ts, vals, expiry);
        let dt = vals.data_type();
        let mut shard = self.shard(sid).lock();
        let queue = append_locked(
            &mut shard,
            sid,
            dt,
            lsn,
            now_ms,
            seal_points,
            &mut totals,
            append,
        );
        drop(shard);
        self.account(totals);
        queue
    }

    /// Moves the active chunk to `frozen`. `None` when there is nothing to seal or
    /// a seal of this series is already in progress.
    pub fn freeze(&self, sid: u64) -> Option<Frozen> {
        let Ok(frozen) =
            self.freeze_keeping(sid, 0, |_| -> Result<Lsn, std::convert::Infallible> {
                unreachable!("no window is kept")
            });
        frozen
    }

    /// Like [`Head::freeze`], but when the active chunk was written out of time order
    /// (parallel writers delivering the series), its newest `keep` points stay active as
    /// a lateness window: stragglers older than them then join the head instead of
    /// reaching back into a sealed block, which would have to be rewritten. The window
    /// is handed to `relog` (under the shard lock, the caller holding the WAL lock)
    /// to be logged again, and its points take the returned position, so the seal can
    /// mark everything up to the frozen chunk's last position as sealed. Nothing
    /// changes when `relog` fails.
    pub fn freeze_keeping<E>(
        &self,
        sid: u64,
        keep: usize,
        relog: impl FnOnce(&Chunk) -> Result<Lsn, E>,
    ) -> Result<Option<Frozen>, E> {
        let mut shard = self.shard(sid).lock();
        let Some(h) = shard.get_mut(&sid) else {
            return Ok(None);
        };
        if h.active.is_empty() || h.frozen.is_some() {
            return Ok(None);
        }
        let windowed = keep > 0 && !h.active.sorted && h.active.len() > keep;
        if windowed {
            self.normalize(h);
        }
        // A chunk with mixed expiries cannot be sorted in place; it is sealed whole.
        let dt = h.active.vals.data_type();
        let mut kept = Chunk::new(dt);
        let n = h.active.len();
        if windowed && h.active.sorted && n > keep {
            let cut = n - keep;
            let mut vals = Col::with_capacity(dt, keep);
            vals.extend_from_col(&h.active.vals, cut..n);
            let expiry = h.active.expiry().unwrap_or(NEVER);
            kept.append_col(&h.active.ts.slice(cut..n), &vals, expiry);
        }
        let lsn = if kept.is_empty() {
            None
        } else {
            Some(relog(&kept)?)
        };
        let last_lsn = h.last_lsn;
        let frozen_min_segment = h.min_segment;
        let mut chunk = std::mem::replace(&mut h.active, Chunk::new(dt));
        if let Some(lsn) = lsn {
            let before = chunk.bytes();
            let cut = chunk.len() - kept.len();
            chunk.ts.truncate(cut);
            chunk.vals.truncate(cut);
            chunk.max_ts = chunk.ts.get(cut - 1);
            self.resize(before, chunk.bytes() + kept.bytes());
            h.active = kept;
            h.min_segment = lsn.segment;
            h.last_lsn = lsn;
        }
        let chunk = Arc::new(chunk);
        h.frozen_bytes = chunk.bytes();
        h.frozen_min_segment = frozen_min_segment;
        h.frozen = Some(chunk.clone());
        h.queued = false;
        Ok(Some(Frozen { chunk, last_lsn }))
    }

    /// Drops the frozen chunk after its blocks are committed. `on_locked(empty)`
    /// runs under the shard lock with whether the head is now empty.
    pub fn commit_frozen(&self, sid: u64, on_locked: impl FnOnce(bool)) {
        let mut shard = self.shard(sid).lock();
        let Some(h) = shard.get_mut(&sid) else {
            on_locked(true);
            return;
        };
        if let Some(f) = h.frozen.take() {
            self.bytes
                .fetch_sub(h.frozen_bytes as i64, Ordering::Relaxed);
            self.points.fetch_sub(f.len() as i64, Ordering::Relaxed);
            h.frozen_bytes = 0;
        }
        let empty = h.is_empty();
        if empty {
            shard.remove(&sid);
        }
        on_locked(empty);
    }

    /// Runs `f(head is empty)` under the series' shard lock.
    pub fn with_emptiness<R>(&self, sid: u64, f: impl FnOnce(bool) -> R) -> R {
        let shard = self.shard(sid).lock();
        f(shard.get(&sid).is_none_or(SeriesHead::is_empty))
    }

    /// Alive points of the series inside `range`, as runs oldest first (frozen,
    /// active).
    pub fn snapshot(&self, sid: u64, range: TimeRange, now_secs: u64) -> Vec<Run> {
        let (frozen, active) = {
            let mut shard = self.shard(sid).lock();
            let Some(h) = shard.get_mut(&sid) else {
                return Vec::new();
            };
            self.normalize(h);
            // The frozen chunk is immutable: clone the Arc and sort it unlocked.
            (h.frozen.clone(), h.active.to_run(range, now_secs))
        };
        let mut out = Vec::with_capacity(2);
        if let Some(f) = frozen {
            out.push(f.to_run(range, now_secs));
        }
        out.push(active);
        out
    }

    /// Count, first and last timestamp of `sid`'s head within `range` and its first
    /// (`Asc`) or last (`Desc`) point, read off the chunks' bounds (an active chunk
    /// written out of order is normalized first), plus the timestamps in the range up to
    /// `sealed_max` (the newest sealed timestamp; points after it cannot overwrite a
    /// sealed one, and usually none are before it). `None` when that would be inexact
    /// (mixed expiries out of order, a point expired at `now_secs`, or a chunk being
    /// sealed that overlaps the active one); the caller then takes a [`Head::snapshot`].
    pub fn edge(
        &self,
        sid: u64,
        dt: DataType,
        range: TimeRange,
        order: Order,
        sealed_max: i64,
        now_secs: u64,
    ) -> Option<HeadEdge> {
        let mut shard = self.shard(sid).lock();
        let Some(h) = shard.get_mut(&sid) else {
            return Some(HeadEdge::empty(dt));
        };
        self.normalize(h);
        // Frozen (written first), then active; at most these two.
        let mut parts: [Option<(&Chunk, std::ops::Range<usize>)>; 2] = [None, None];
        for (slot, c) in parts
            .iter_mut()
            .zip(h.frozen.as_deref().into_iter().chain([&h.active]))
        {
            let b = c.plain_bounds(range, now_secs)?;
            *slot = (!b.is_empty()).then_some((c, b));
        }
        let mut present = parts.iter().flatten();
        let Some(first) = present.next() else {
            return Some(HeadEdge::empty(dt));
        };
        let last = present.next().unwrap_or(first);
        // Frozen points were written before the active ones, but late data can make the
        // two overlap; then timestamps may repeat and only a merge can tell.
        if !std::ptr::eq(first, last)
            && first.0.ts.get(first.1.end - 1) >= last.0.ts.get(last.1.start)
        {
            return None;
        }
        let mut ts = Vec::new();
        let mut count = 0;
        for (c, b) in parts.iter().flatten() {
            // Usually the head starts after the newest block and overwrites nothing.
            if c.min_ts <= sealed_max {
                let part = c.ts.slice(b.clone());
                let upto = part.partition_point(|&t| t <= sealed_max);
                ts.extend_from_slice(&part[..upto]);
            }
            count += b.len() as u64;
        }
        let point = match order {
            Order::Asc => first.0.point(first.1.start),
            Order::Desc => last.0.point(last.1.end - 1),
        };
        Some(HeadEdge {
            point,
            first_ts: first.0.ts.get(first.1.start),
            last_ts: last.0.ts.get(last.1.end - 1),
            count,
            ts,
        })
    }

    /// [`Chunk::normalize`] on the active chunk, keeping the memory accounting.
    fn normalize(&self, h: &mut SeriesHead) {
        if h.active.sorted {
            return;
        }
        let before = h.active.bytes();
        if let Some(dropped) = h.active.normalize() {
            // Sorting may also make the timestamps evenly spaced (no heap).
            self.resize(before, h.active.bytes());
            self.points.fetch_sub(dropped as i64, Ordering::Relaxed);
        }
    }

    /// Accounts a change of the head's memory from `before` to `after` bytes.
    fn resize(&self, before: usize, after: usize) {
        self.bytes
            .fetch_add(after as i64 - before as i64, Ordering::Relaxed);
    }

    /// Does the head hold points of `sid` within `range` (bounds only)?
    pub fn overlaps(&self, sid: u64, range: TimeRange) -> bool {
        let shard = self.shard(sid).lock();
        shard.get(&sid).is_some_and(|h| {
            let ov = |c: &Chunk| !c.is_empty() && c.min_ts <= range.end && c.max_ts >= range.start;
            ov(&h.active) || h.frozen.as_deref().is_some_and(ov)
        })
    }

    pub fn len(&self, sid: u64) -> usize {
        self.shard(sid)
            .lock()
            .get(&sid)
            .map_or(0, |h| h.active.len())
    }

    /// Removes points inside `range` from the active chunk. Must not run while a
    /// seal of the series is in progress (the engine's maintenance lock ensures it).
    pub fn remove_range(&self, sid: u64, range: TimeRange) -> usize {
        self.rewrite(sid, |c| {
            if c.is_empty() || c.max_ts < range.start || c.min_ts > range.end {
                return None;
            }
            Some(c.filtered(|t, _| !range.contains(t)))
        })
    }

    fn rewrite(&self, sid: u64, f: impl FnOnce(&Chunk) -> Option<(Chunk, usize)>) -> usize {
        let mut shard = self.shard(sid).lock();
        let Some(h) = shard.get_mut(&sid) else {
            return 0;
        };
        debug_assert!(h.frozen.is_none(), "BUG: head rewrite during a seal");
        let Some((new, dropped)) = f(&h.active) else {
            return 0;
        };
        if dropped == 0 {
            return 0;
        }
        self.resize(h.active.bytes(), new.bytes());
        self.points.fetch_sub(dropped as i64, Ordering::Relaxed);
        h.active = new;
        if h.is_empty() {
            shard.remove(&sid);
        }
        dropped
    }

    /// Drops expired points from every head. Returns ids whose head changed.
    pub fn purge_expired(&self, now_secs: u64) -> Vec<u64> {
        let mut candidates = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            candidates.extend(
                shard
                    .iter()
                    .filter(|(_, h)| h.frozen.is_none() && h.active.min_exp <= now_secs)
                    .map(|(&sid, _)| sid),
            );
        }
        candidates.retain(|&sid| self.rewrite(sid, |c| Some(c.filtered(|_, e| e > now_secs))) > 0);
        candidates
    }

    /// Maintenance view of every series head.
    pub fn infos(&self) -> Vec<HeadInfo> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            out.extend(shard.iter().map(|(&sid, h)| HeadInfo {
                sid,
                points: h.active.len(),
                bytes: h.bytes(),
                min_segment: h.min_segment(),
                first_write_ms: h.first_write_ms,
                last_write_ms: h.last_write_ms,
                min_ts: h.active.min_ts,
            }));
        }
        out
    }

    /// Oldest WAL segment any head still needs.
    pub fn min_segment(&self) -> Option<u64> {
        self.shards
            .iter()
            .filter_map(|s| s.lock().values().filter_map(SeriesHead::min_segment).min())
            .min()
    }

    /// Ids of every series with head data.
    pub fn series_ids(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().keys().copied());
        }
        out
    }
}

impl Default for Head {
    fn default() -> Self {
        Head::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: u64, o: u64) -> Lsn {
        Lsn {
            segment: s,
            offset: o,
        }
    }

    /// The memory of every series head, summed: what `Head::bytes` must say.
    fn accounted(h: &Head) -> u64 {
        h.shards
            .iter()
            .map(|s| s.lock().values().map(|h| h.bytes() as u64).sum::<u64>())
            .sum()
    }

    fn longs(ts: &[i64], v: &[i64]) -> Points {
        Points::Long {
            ts: ts.to_vec(),
            values: v.to_vec(),
        }
    }

    #[test]
    fn out_of_order_and_duplicates_resolve_last_write_wins() {
        let h = Head::new();
        h.append_points(
            1,
            &longs(&[3, 1, 2], &[30, 10, 20]),
            NEVER,
            lsn(1, 24),
            0,
            100,
            || {},
        );
        h.append_points(
            1,
            &longs(&[2, 4], &[200, 40]),
            NEVER,
            lsn(1, 90),
            0,
            100,
            || {},
        );
        let runs = h.snapshot(1, TimeRange::ALL, 0);
        let r = &runs[0];
        assert_eq!(r.ts, vec![1, 2, 3, 4]);
        assert_eq!(r.vals, Col::Long(vec![10, 200, 30, 40]));
        let runs = h.snapshot(1, TimeRange::new(2, 3), 0);
        assert_eq!(runs[0].ts, vec![2, 3]);
        // The first read normalized the chunk: the overwritten point is gone for good.
        assert_eq!(h.points(), 4);
        // Sorted, the timestamps are one evenly spaced run again.
        assert_eq!(h.bytes(), 4 * 8 + 16 + RUN_BYTES as u64);
        assert_eq!(h.bytes(), accounted(&h));
        let range = TimeRange::new(2, 10);
        let edge = h.edge(1, DataType::Long, range, Order::Asc, 3, 0).unwrap();
        assert_eq!(
            (edge.count(), edge.first_ts, edge.last_ts, edge.ts),
            (3, 2, 4, vec![2, 3])
        );
        assert_eq!(edge.point.ts, vec![2]);
        assert_eq!(edge.point.vals, Col::Long(vec![200]));
        let last = h.edge(1, DataType::Long, range, Order::Desc, 3, 0).unwrap();
        assert_eq!(
            (last.point.ts, last.point.vals),
            (vec![4], Col::Long(vec![40]))
        );
        let whole = h.edge(1, DataType::Long, TimeRange::ALL, Order::Asc, i64::MIN, 0);
        let whole = whole.unwrap();
        assert_eq!((whole.count(), whole.ts), (4, vec![]));
    }

    /// A batch may name a series twice: its items are appended in batch order, so the
    /// later point of a timestamp wins however the items fall into shards.
    #[test]
    fn a_batch_appends_each_series_items_in_batch_order() {
        let h = Head::new();
        let first: Vec<Points> = (0..300).map(|v| longs(&[5], &[v])).collect();
        let second: Vec<Points> = (0..300).map(|v| longs(&[5], &[1000 + v])).collect();
        // Every series twice, the second time last; ids spread over every shard.
        let mut items: Vec<(u64, &Points, u64)> = Vec::new();
        for (i, p) in first.iter().enumerate() {
            items.push(((i as u64 * 7919) % 997, p, NEVER));
        }
        for (i, p) in second.iter().enumerate() {
            items.push(((i as u64 * 7919) % 997, p, NEVER));
        }
        let queued = h.append_batch(&items, lsn(1, 24), 0, 2, |_| {});
        assert_eq!(queued.len(), 300, "every series reached the seal size once");
        assert_eq!(h.points(), 600);
        for i in 0..300u64 {
            let runs = h.snapshot((i * 7919) % 997, TimeRange::ALL, 0);
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].vals, Col::Long(vec![1000 + i as i64]), "series {i}");
        }
    }

    #[test]
    fn freeze_commit_and_segments() {
        let h = Head::new();
        assert!(!h.append_points(7, &longs(&[1, 2], &[1, 2]), NEVER, lsn(3, 24), 5, 3, || {}));
        assert!(h.append_points(7, &longs(&[3], &[3]), NEVER, lsn(4, 24), 6, 3, || {}));
        assert_eq!(h.min_segment(), Some(3));
        let f = h.freeze(7).unwrap();
        assert_eq!(f.last_lsn, lsn(4, 24));
        assert!(h.freeze(7).is_none(), "second freeze while sealing");
        h.append_points(7, &longs(&[9], &[9]), NEVER, lsn(5, 24), 7, 3, || {});
        // Frozen and active are both readable.
        let runs = h.snapshot(7, TimeRange::ALL, 0);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].ts, vec![1, 2, 3]);
        assert_eq!(runs[1].ts, vec![9]);
        assert_eq!(h.min_segment(), Some(3));
        let mut was_empty = None;
        h.commit_frozen(7, |e| was_empty = Some(e));
        assert_eq!(was_empty, Some(false));
        assert_eq!(h.min_segment(), Some(5));
        assert_eq!(h.points(), 1);
    }

    #[test]
    fn freeze_keeping_leaves_a_relogged_window_only_for_out_of_order_heads() {
        let h = Head::new();
        // Written out of order, with one overwrite: 1..=10 once each, 9 twice.
        h.append_points(
            1,
            &longs(&[1, 2, 3, 5, 4], &[1, 2, 3, 5, 4]),
            NEVER,
            lsn(1, 24),
            0,
            100,
            || {},
        );
        h.append_points(
            1,
            &longs(&[9, 6, 8, 7, 10, 9], &[0, 6, 8, 7, 10, 9]),
            NEVER,
            lsn(2, 24),
            0,
            100,
            || {},
        );
        let (points, bytes) = (h.points(), h.bytes());
        let mut logged = None;
        let f = h
            .freeze_keeping(1, 3, |kept| -> Result<Lsn, ()> {
                logged = Some(kept.to_run(TimeRange::ALL, 0));
                Ok(lsn(3, 24))
            })
            .unwrap()
            .unwrap();
        let logged = logged.expect("window relogged");
        assert_eq!(
            (logged.ts, logged.vals),
            (vec![8, 9, 10], Col::Long(vec![8, 9, 10]))
        );
        assert_eq!(f.last_lsn, lsn(2, 24));
        assert_eq!(
            f.chunk.to_run(TimeRange::ALL, 0).ts,
            (1..=7).collect::<Vec<i64>>()
        );
        // The window is the active chunk at the relogged position; the frozen chunk
        // keeps the old segment until committed.
        assert_eq!(h.min_segment(), Some(1));
        let runs = h.snapshot(1, TimeRange::ALL, 0);
        assert_eq!(runs[1].ts, vec![8, 9, 10]);
        assert_eq!(h.points(), points - 1, "the overwrite is gone");
        assert!(
            h.bytes() < bytes,
            "one point less, and sorted timestamps in runs"
        );
        assert_eq!(h.bytes(), accounted(&h));
        h.commit_frozen(1, |_| {});
        assert_eq!(h.min_segment(), Some(3));
        assert_eq!((h.points(), h.len(1)), (3, 3));

        // In time order: sealed whole, nothing relogged.
        h.append_points(
            2,
            &longs(&[1, 2, 3, 4], &[1, 2, 3, 4]),
            NEVER,
            lsn(3, 90),
            0,
            100,
            || {},
        );
        let f = h
            .freeze_keeping(2, 2, |_| -> Result<Lsn, ()> {
                panic!("relogged a sorted head")
            })
            .unwrap()
            .unwrap();
        assert_eq!(f.chunk.len(), 4);
        assert_eq!(h.len(2), 0);

        // Mixed expiries cannot be sorted in place: sealed whole.
        h.append_points(3, &longs(&[5, 6], &[5, 6]), 100, lsn(3, 120), 0, 100, || {});
        h.append_points(
            3,
            &longs(&[1, 7], &[1, 7]),
            NEVER,
            lsn(3, 150),
            0,
            100,
            || {},
        );
        let f = h
            .freeze_keeping(3, 1, |_| -> Result<Lsn, ()> {
                panic!("relogged mixed expiries")
            })
            .unwrap()
            .unwrap();
        assert_eq!(f.chunk.len(), 4);

        // A failed relog changes nothing.
        h.append_points(
            4,
            &longs(&[3, 1, 2], &[3, 1, 2]),
            NEVER,
            lsn(3, 170),
            0,
            100,
            || {},
        );
        assert!(h.freeze_keeping(4, 1, |_| Err("disk full")).is_err());
        assert_eq!(h.len(4), 3);
        assert!(h.freeze(4).is_some(), "not left frozen");
    }

    #[test]
    fn remove_range_and_purge_expired() {
        let h = Head::new();
        h.append_points(
            1,
            &longs(&[1, 2, 3], &[1, 2, 3]),
            100,
            lsn(1, 24),
            0,
            100,
            || {},
        );
        h.append_points(
            1,
            &longs(&[4, 5], &[4, 5]),
            NEVER,
            lsn(1, 50),
            0,
            100,
            || {},
        );
        h.append_points(1, &longs(&[6], &[6]), 50, lsn(1, 70), 0, 100, || {});
        assert_eq!(h.remove_range(1, TimeRange::new(2, 4)), 3);
        let r = &h.snapshot(1, TimeRange::ALL, 0)[0];
        assert_eq!(r.ts, vec![1, 5, 6]);
        assert_eq!(r.exp, vec![100, NEVER, 50]);
        assert_eq!(h.purge_expired(60), vec![1]);
        let r = &h.snapshot(1, TimeRange::ALL, 0)[0];
        assert_eq!(r.ts, vec![1, 5]);
        assert_eq!(h.purge_expired(200), vec![1]);
        assert_eq!(h.snapshot(1, TimeRange::ALL, 0)[0].ts, vec![5]);
        assert_eq!(h.remove_range(1, TimeRange::ALL), 1);
        assert!(h.with_emptiness(1, |e| e));
        assert_eq!(h.points(), 0);
        assert_eq!(h.bytes(), 0);
        assert_eq!(h.series_count(), 0);
    }

    #[test]
    fn evenly_spaced_timestamps_cost_the_head_only_their_values() {
        let h = Head::new();
        let append = |ts: &[i64], at: u64| {
            let v: Vec<i64> = ts.to_vec();
            h.append_points(1, &longs(ts, &v), NEVER, lsn(1, at), 0, 100, || {});
        };
        let r = RUN_BYTES as u64;
        append(&[10, 20, 30, 40], 10);
        assert_eq!(
            h.bytes(),
            4 * 8 + 16 + r,
            "values, one expiry run, one time run"
        );
        // Out of order (two writers): a run each, then sorted by the next read, which
        // makes them one run again; the accounting follows both ways.
        append(&[70, 80], 20);
        append(&[50, 60], 30);
        assert_eq!(h.bytes(), 8 * 8 + 16 + 3 * r);
        assert_eq!(h.bytes(), accounted(&h));
        let all: Vec<i64> = (1..=8).map(|i| i * 10).collect();
        assert_eq!(h.snapshot(1, TimeRange::ALL, 0)[0].ts, all);
        assert_eq!(h.bytes(), 8 * 8 + 16 + r);
        assert_eq!(h.bytes(), accounted(&h));
        // Uneven steps cost a list once runs would cost more.
        append(&[81, 83, 86, 90, 95, 101, 108, 116, 125, 135], 40);
        assert_eq!(h.bytes(), 18 * 8 + 16 + 18 * 8);
        assert_eq!(h.bytes(), accounted(&h));
        let f = h.freeze(1).expect("a head to seal");
        assert_eq!(f.chunk.len(), 18);
        h.commit_frozen(1, |_| {});
        assert_eq!(h.bytes(), 0);
    }
}

//! The read path: series queries (head and blocks merged, limits and the work bound
//! applied), the `first`/`last` edge reads that answer from summaries and at most one
//! block, and the series listing by time range. Reads never take the write or
//! maintenance lock.
//!
//! Not here: decoding blocks and choosing which to read (`sealed.rs`, `block.rs`), the
//! head's snapshots (`head.rs`), and aggregation, which the query crate does on the
//! series returned.

use std::sync::atomic::Ordering;

use kairosdb_model::{
    Order, Read, SeriesData, SeriesKey, SeriesQuery, StorageError, TagFilter, TimeRange,
};

use super::{secs, Inner};
use crate::block::Decoded;
use crate::column::{merge_runs, Col, Run};
use crate::head::HeadEdge;
use crate::index::SeriesEntry;
use crate::sealed::{self, Stop, Work};
use crate::store::BlockSummary;
use crate::wal::NEVER;

/// What reading one series costs a read's `work_limit` besides its points, in stored
/// points: the block lookup in fjall, the head and summary locks and the per-series
/// work after the read (grouping, a result group) take about as long as decoding a
/// thousand points. Charged for every selected series before any is read, so a read
/// over many series stops at once instead of after part of the work.
pub(crate) const SERIES_WORK: u64 = 1024;

/// How a query reads each series, decided once per query.
struct Plan {
    now_s: u64,
    /// One point per series, every point counted: the edge read can answer.
    edge: bool,
    /// No block holds expired points yet (the edge read cannot see them).
    blocks_alive: bool,
    /// Answer each point's remaining TTL (`SeriesQuery::with_ttl`).
    with_ttl: bool,
}

impl Inner {
    /// The series `q` selects, or [`Read::OverWorkLimit`] when reading them needs more
    /// work than its `work_limit`.
    pub fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        match self.read_query(q) {
            Ok(series) => Ok(Read::Complete(series)),
            Err(Stop::OverWorkLimit) => Ok(Read::OverWorkLimit),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    fn read_query(&self, q: &SeriesQuery) -> Result<Vec<SeriesData>, Stop> {
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
        // The edge read answers values only, no TTLs.
        let edge = q.count_in_range && q.limit == Some(1) && !q.with_ttl;
        let plan = Plan {
            now_s,
            edge,
            blocks_alive: edge && !self.sealed.store.any_expired(now_s)?,
            with_ttl: q.with_ttl,
        };
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
            if q.shard
                .as_ref()
                .is_some_and(|s| !s.holds(&e.key.metric, &e.key.tags))
            {
                continue;
            }
            let (in_range, run) = self.query_series(&e, q, &plan, &mut d, &mut work)?;
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
                return Err(StorageError::TooManyPoints { limit }.into());
            }
            let ttl_secs = match q.with_ttl {
                true => remaining_ttls(&run.exp, now_s),
                false => Vec::new(),
            };
            out.push(SeriesData {
                key: e.key.clone(),
                points: run.vals.into_points(run.ts),
                in_range,
                ttl_secs,
            });
        }
        Ok(out)
    }

    /// The points of one series a query returns (ordered and limited), and how many
    /// alive points the range holds: from the edge read when the plan allows it and it
    /// can answer, else from reading the series in full.
    fn query_series(
        &self,
        e: &SeriesEntry,
        q: &SeriesQuery,
        plan: &Plan,
        d: &mut Decoded,
        work: &mut Work,
    ) -> Result<(u64, Run), Stop> {
        if plan.edge {
            d.ts.clear();
            let found = self.read_edge(e, q.range, plan.now_s, q.order, plan.blocks_alive, d)?;
            // The one block an edge read may decode is counted after the fact.
            work.add(d.ts.len() as u64)?;
            if let Some(found) = found {
                self.counters.edge_reads.fetch_add(1, Ordering::Relaxed);
                return Ok(found);
            }
        }
        let mut run = self.read_series(e, q.range, plan.now_s, plan.with_ttl, d, work)?;
        let n = run.len() as u64;
        if q.order == Order::Desc {
            run.reverse();
        }
        if let Some(limit) = q.limit {
            run.truncate(limit);
        }
        Ok((n, run))
    }

    /// Alive points of one series in `range`: head snapshot first, then the block
    /// summary, then the blocks (so a concurrent seal is seen in one place or
    /// both, never neither). With each point's expiry when `with_exp` (else only where
    /// the runs happen to carry them).
    fn read_series(
        &self,
        e: &SeriesEntry,
        range: TimeRange,
        now_s: u64,
        with_exp: bool,
        d: &mut Decoded,
        work: &mut Work,
    ) -> Result<Run, Stop> {
        let head_runs = self.head.snapshot(e.id, range, now_s);
        work.add(head_runs.iter().map(|r| r.len() as u64).sum())?;
        let mut summary = *e.summary.lock();
        let mut runs = loop {
            let runs = self
                .sealed
                .read(e, &summary, range, now_s, with_exp, d, work)?;
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

    /// [`Self::read_edge`] for `last` when the newest block must be decoded: string
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
        Ok(out)
    }
}

/// Each point's remaining TTL at `now_s` in whole seconds (0 = never expires) from the
/// expiries of a run (`exp`, seconds; empty when none expires): empty when none does.
/// An alive point has at least a second left.
fn remaining_ttls(exp: &[u64], now_s: u64) -> Vec<u32> {
    if exp.iter().all(|&e| e == NEVER) {
        return Vec::new();
    }
    exp.iter()
        .map(|&e| match e {
            NEVER => 0,
            e => e.saturating_sub(now_s).clamp(1, u64::from(u32::MAX)) as u32,
        })
        .collect()
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

//! One execution of a roll-up task (spec §13.1): for each roll-up query metric, roll up
//! every complete period not yet done, then re-run the recent periods that received late
//! data, recording progress after each period. Synchronous: the scheduler calls it on a
//! blocking thread.
//!
//! Not here: when tasks run or which process runs them (`scheduler.rs`), task storage
//! (`store.rs`), period arithmetic (`periods.rs`). The query itself is the ordinary query
//! engine (`kairosdb_query::execute`) with the roll-up's `save_as` aggregator appended, as
//! KairosDB appends it; the points reach storage through that aggregator.
//!
//! What this does better than KairosDB, and how:
//! * **Catch-up.** KairosDB restarts from its last run's wall-clock time and processes up
//!   to now once; after downtime longer than a period the periods in between are still
//!   covered, but a task that was never able to run starts from "now", and a failure
//!   moves the start past the failed periods. Here `done_through` only moves past a
//!   period once its results are stored, so every missed period is rolled up, in order,
//!   at most [`Limits::max_periods`] per execution (the scheduler calls again at once
//!   while work remains).
//! * **Never twice, never skipped.** Only complete periods (end ≤ now) are rolled up, and
//!   each result point is stamped with its period's start (`align_start_time` forced; or
//!   its end with `align_end_time`), so re-running a period overwrites the same points. A
//!   `kill -9` between writing a period and recording it re-runs that one period on
//!   restart, writing the same points again. KairosDB re-writes the running period every
//!   execution, stamped with its first point's time, so a changing first point leaves
//!   stale points behind.
//! * **Late data.** For periods that ended within `late_window` before `done_through`
//!   (and at most the last [`MAX_COUNTED_PERIODS`] periods), one count query per roll-up
//!   metric compares each period's source points with the count seen when it was rolled
//!   up; the periods that changed are rolled up again.
//! * **Isolation.** A failing roll-up metric records its error in the status and stops at
//!   the failed period; the task's other metrics and other tasks carry on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kairosdb_model::catalogue::{AggregatorSpec, RangeKind, RangeSpec};
use kairosdb_model::{MetricQuery, Num, OutColumn, QueryResult, Storage, TimeRange};
use kairosdb_protocol::query::QueryError;
use kairosdb_protocol::rollup::{Rollup, RollupTask};
use kairosdb_query::time::Zone;
use kairosdb_query::{Budget, Context};

use super::periods::{Grid, Period};
use super::store::{MetricProgress, MetricStatus, Progress};

/// How much one execution may do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Periods rolled up per roll-up metric per execution (catch-up continues next call).
    pub max_periods: usize,
    /// How far back (ms) before `done_through` late data re-runs a period; 0 = never.
    pub late_window_ms: i64,
}

/// What one execution did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub statuses: Vec<MetricStatus>,
    pub progress: Progress,
    /// Periods rolled up for the first time, and again because of late data.
    pub periods: u64,
    pub reruns: u64,
    pub points: u64,
    pub failures: u64,
    /// Complete periods still waiting (the catch-up was cut at `max_periods`).
    pub backlog: bool,
}

/// Everything an execution reads.
pub struct Execution<'a> {
    pub storage: &'a dyn Storage,
    pub task: &'a RollupTask,
    pub now: i64,
    pub limits: Limits,
    /// Set on shutdown: stop between periods.
    pub stop: &'a AtomicBool,
    /// Called after every period with the progress so far, to make it durable.
    pub save: &'a dyn Fn(&Progress) -> Result<(), kairosdb_model::StorageError>,
}

impl Execution<'_> {
    /// Runs the task once; `progress` is where it stood.
    pub fn run(&self, mut progress: Progress) -> Outcome {
        let mut out = Outcome::default();
        for (j, rollup) in self.task.rollups.iter().enumerate() {
            for k in 0..rollup.query.metrics.len() {
                if self.stop.load(Ordering::Relaxed) {
                    break;
                }
                let started = Instant::now();
                let mut metric = self.metric_progress(&progress, rollup, j, k);
                let result = self.run_metric(rollup, k, &mut metric, &mut progress, &mut out);
                out.statuses.push(status(
                    &rollup.query.metrics[k].name,
                    self.now,
                    started.elapsed().as_millis() as u64,
                    result,
                ));
            }
        }
        out.progress = progress;
        out
    }

    /// The stored progress of roll-up `j`'s metric `k`, or a fresh one when there is none
    /// or it belongs to another roll-up (the task was edited).
    fn metric_progress(
        &self,
        progress: &Progress,
        rollup: &Rollup,
        j: usize,
        k: usize,
    ) -> MetricProgress {
        let source = &rollup.query.metrics[k].name;
        match progress.find(j, k) {
            Some(p) if &p.source == source && p.save_as == rollup.save_as => p.clone(),
            _ => {
                let origin = Grid::first_origin(
                    rollup.period(k),
                    self.task.execution_interval,
                    &zone(rollup),
                    self.now,
                );
                MetricProgress {
                    rollup: j,
                    metric: k,
                    save_as: rollup.save_as.clone(),
                    source: source.clone(),
                    origin,
                    done_through: origin,
                    counts: Default::default(),
                }
            }
        }
    }

    /// Catch-up, then late re-runs. `Ok(points written)` or the first error.
    fn run_metric(
        &self,
        rollup: &Rollup,
        k: usize,
        metric: &mut MetricProgress,
        progress: &mut Progress,
        out: &mut Outcome,
    ) -> Result<u64, String> {
        if progress.find(metric.rollup, metric.metric) != Some(metric) {
            // A new grid is recorded before anything runs: its origin must not move with
            // the clock while the first periods keep failing.
            self.record(metric, progress)?;
        }
        let grid = Grid::new(rollup.period(k), zone(rollup), metric.origin);
        let mut written = 0;
        let due = grid.complete_from(metric.done_through, self.now, self.limits.max_periods + 1);
        out.backlog |= due.len() > self.limits.max_periods;
        for period in due.into_iter().take(self.limits.max_periods) {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(written);
            }
            let (points, seen) = self
                .roll_up(rollup, k, period)
                .inspect_err(|_| out.failures += 1)?;
            written += points;
            out.periods += 1;
            metric.done_through = period.end;
            metric.counts.insert(period.start, seen);
            self.record(metric, progress)?;
        }
        written += self.rerun_late(rollup, k, &grid, metric, progress, out)?;
        out.points += written;
        Ok(written)
    }

    /// Re-runs the periods in the late window whose source count changed.
    fn rerun_late(
        &self,
        rollup: &Rollup,
        k: usize,
        grid: &Grid,
        metric: &mut MetricProgress,
        progress: &mut Progress,
        out: &mut Outcome,
    ) -> Result<u64, String> {
        // At most MAX_COUNTED_PERIODS periods back: the counts are stored with the progress.
        let longest =
            super::periods::duration(rollup.period(k), &zone(rollup), metric.done_through)
                .saturating_mul(MAX_COUNTED_PERIODS);
        let window_start = metric
            .done_through
            .saturating_sub(self.limits.late_window_ms.min(longest))
            .max(metric.origin);
        metric.counts.retain(|start, _| *start >= window_start);
        if self.limits.late_window_ms <= 0 || window_start >= metric.done_through {
            self.record(metric, progress)?;
            return Ok(0);
        }
        let first = grid.period_of(window_start);
        let now_counts = count_points(
            self.storage,
            rollup,
            k,
            first.start,
            metric.done_through,
            self.now,
        )
        .inspect_err(|_| out.failures += 1)?;
        let mut written = 0;
        for period in grid.overlapping(first.start, metric.done_through, usize::MAX) {
            let current = now_counts.get(&period.start).copied().unwrap_or(0);
            let before = metric.counts.get(&period.start).copied().unwrap_or(0);
            if current == before || period.start < metric.origin {
                continue;
            }
            let (points, seen) = self
                .roll_up(rollup, k, period)
                .inspect_err(|_| out.failures += 1)?;
            written += points;
            out.reruns += 1;
            metric.counts.insert(period.start, seen);
        }
        self.record(metric, progress)?;
        Ok(written)
    }

    fn record(&self, metric: &MetricProgress, progress: &mut Progress) -> Result<(), String> {
        progress.put(metric.clone());
        (self.save)(progress).map_err(|e| format!("recording roll-up progress failed: {e}"))
    }

    /// Rolls up one period: `(points written, source points read)`.
    fn roll_up(&self, rollup: &Rollup, k: usize, period: Period) -> Result<(u64, u64), String> {
        let query = period_query(&rollup.query.metrics[k], &rollup.save_as, period);
        let result = execute(self.storage, rollup, &query, period, self.now)?;
        let written = result.results.iter().map(|g| g.ts.len() as u64).sum();
        Ok((written, result.sample_size))
    }
}

/// Rolls up every period overlapping `[from, to)` again (`GET /rollups/backfill/{id}`),
/// on each roll-up metric's own grid (or the aligned grid at `from` when it never ran).
/// Progress is left as it is. `Ok(points written)`; `Invalid` when the span holds more
/// than [`MAX_BACKFILL_PERIODS`] periods of one roll-up metric (each is a query), or the
/// first failure.
pub fn backfill(
    storage: &dyn Storage,
    task: &RollupTask,
    progress: &Progress,
    from: i64,
    to: i64,
    now: i64,
) -> Result<u64, QueryError> {
    let mut written = 0;
    for (j, rollup) in task.rollups.iter().enumerate() {
        for k in 0..rollup.query.metrics.len() {
            let origin = match progress.find(j, k) {
                Some(p) if p.save_as == rollup.save_as => p.origin,
                _ => Grid::aligned_origin(rollup.period(k), &zone(rollup), from),
            };
            let grid = Grid::new(rollup.period(k), zone(rollup), origin);
            let periods = grid.overlapping(from, to, MAX_BACKFILL_PERIODS + 1);
            if periods.len() > MAX_BACKFILL_PERIODS {
                return Err(QueryError::Invalid(format!(
                    "backfill of {} would run more than {MAX_BACKFILL_PERIODS} periods; \
                     backfill a shorter span at a time",
                    rollup.save_as
                )));
            }
            for period in periods {
                let query = period_query(&rollup.query.metrics[k], &rollup.save_as, period);
                let result =
                    execute(storage, rollup, &query, period, now).map_err(QueryError::Failed)?;
                written += result
                    .results
                    .iter()
                    .map(|g| g.ts.len() as u64)
                    .sum::<u64>();
            }
        }
    }
    Ok(written)
}

/// Most recent periods whose source counts are kept for the late-data check, whatever
/// the window: their counts are stored with the progress after every period.
const MAX_COUNTED_PERIODS: i64 = 360;

/// Most periods one backfill request may roll up per roll-up metric.
pub const MAX_BACKFILL_PERIODS: usize = 100_000;

fn zone(rollup: &Rollup) -> Zone {
    Zone::resolve(rollup.query.time_zone.as_deref()).unwrap_or(Zone::UTC)
}

/// The roll-up's query metric for one period: the last range aggregator's buckets start at
/// the period (so the period is exactly one bucket) and stamp the period's start, and a
/// `save_as` aggregator writes the results (KairosDB's `QueryParser.parseRollupTask`).
pub fn period_query(metric: &MetricQuery, save_as: &str, period: Period) -> MetricQuery {
    let mut query = metric.clone();
    if let Some(AggregatorSpec::Range(last)) = query
        .aggregators
        .iter_mut()
        .rev()
        .find(|a| matches!(a, AggregatorSpec::Range(_)))
    {
        last.start_time = Some(period.start);
        last.align_sampling = false;
        last.align_start_time = !last.align_end_time;
    }
    query.aggregators.push(AggregatorSpec::SaveAs {
        metric_name: save_as.to_owned(),
        tags: Vec::new(),
        ttl: 0,
        add_saved_from: true,
    });
    query
}

/// Runs `query` over `[period.start, period.end)` in the roll-up's zone.
fn execute(
    storage: &dyn Storage,
    rollup: &Rollup,
    query: &MetricQuery,
    period: Period,
    now: i64,
) -> Result<QueryResult, String> {
    let budget = Budget::default();
    let ctx = Context {
        range: TimeRange::new(period.start, period.end.saturating_sub(1)),
        time_zone: rollup.query.time_zone.as_deref(),
        now_ms: now,
        budget: &budget,
    };
    kairosdb_query::execute(storage, &ctx, query)
        .map(|e| e.expect_complete())
        .map_err(|e| e.to_string())
}

/// Source points per period in `[from, to)`: one `count` query over the window, sampled
/// on the roll-up's grid.
fn count_points(
    storage: &dyn Storage,
    rollup: &Rollup,
    k: usize,
    from: i64,
    to: i64,
    now: i64,
) -> Result<std::collections::BTreeMap<i64, u64>, String> {
    let mut query = rollup.query.metrics[k].clone();
    query.aggregators = vec![AggregatorSpec::Range(RangeSpec {
        kind: RangeKind::Count,
        sampling: rollup.period(k),
        align_sampling: false,
        align_start_time: true,
        align_end_time: false,
        start_time: Some(from),
        end_time: None,
        time_zone: None,
        trim: false,
    })];
    query.group_by_tags.clear();
    query.group_bys.clear();
    query.limit = None;
    let result = execute(
        storage,
        rollup,
        &query,
        Period {
            start: from,
            end: to,
        },
        now,
    )?;
    let mut counts = std::collections::BTreeMap::new();
    for group in &result.results {
        for (i, t) in group.ts.iter().enumerate() {
            let n = match &group.values {
                OutColumn::Long(v) => v[i] as u64,
                OutColumn::Double(v) => v[i] as u64,
                OutColumn::Number(v) => match v[i] {
                    Num::Long(l) => l as u64,
                    Num::Double(d) => d as u64,
                    Num::Null => 0,
                },
                _ => 0,
            };
            *counts.entry(*t).or_insert(0) += n;
        }
    }
    Ok(counts)
}

/// KairosDB's `RollupQueryMetricStatus` for one metric's run.
fn status(metric: &str, now: i64, length_ms: u64, result: Result<u64, String>) -> MetricStatus {
    let (count, error) = match result {
        Ok(n) => (n, None),
        Err(e) => (0, Some(e)),
    };
    MetricStatus {
        metric_name: metric.to_owned(),
        last_executed: kairos_date(now),
        data_point_count: count,
        execution_length: length_ms,
        last_execution_time: now,
        error_message: error,
    }
}

/// `dd MMM yyyy KK:mm:ss a` (Java's `SimpleDateFormat`, `KK` = hour 00–11) in UTC, the
/// zone this server reports in; `Never` for 0.
pub fn kairos_date(ms: i64) -> String {
    if ms == 0 {
        return "Never".to_owned();
    }
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return "Never".to_owned();
    };
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let hour = dt.hour();
    format!(
        "{:02} {} {} {:02}:{:02}:{:02} {}",
        dt.day(),
        ts.strftime("%b"),
        dt.year(),
        hour % 12,
        dt.minute(),
        dt.second(),
        if hour < 12 { "AM" } else { "PM" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_kairosdbs_status_does() {
        // 2026-12-07T13:05:09Z
        assert_eq!(kairos_date(1_796_648_709_000), "07 Dec 2026 01:05:09 PM");
        // 2026-12-07T00:00:00Z: KK prints midnight as 00.
        assert_eq!(kairos_date(1_796_601_600_000), "07 Dec 2026 00:00:00 AM");
        assert_eq!(kairos_date(0), "Never");
    }
}

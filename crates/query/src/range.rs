//! The range-aggregator framework (spec §5.1): avg, count, dev, first, gaps, last,
//! least_squares, max, min, percentile and sum fold the points of each sampling bucket.
//!
//! Buckets are found by walking the stream: the bucket of the current point `p` ends at
//! `bucketEnd(p.ts)` and holds `p` and every following point before that end (so with
//! `order: desc` the whole rest of the stream folds into one bucket, as in KairosDB).
//! Each bucket is returned at the first point's time, or at the bucket start
//! (`align_start_time`) or end (`align_end_time`). `gaps` walks every bucket instead
//! (exhaustive mode) and marks empty ones with a null point.
//!
//! Numeric kinds run over one `&[f64]` slice per bucket: a tight loop per bucket and no
//! allocation per point or per bucket.

use kairosdb_model::catalogue::{DevReturn, RangeKind};
use kairosdb_model::{GroupType, Num, OutColumn, Points, SeriesData};
use kairosdb_protocol::response::java_double_string;

use crate::aggregate::Stream;
use crate::column::{self, numbers};
use crate::time::{Buckets, Unit, Zone};
use crate::{Context, QueryError, Stop};

#[derive(Clone, Debug)]
pub(crate) struct Range {
    pub kind: RangeKind,
    pub unit: Unit,
    pub value: i64,
    /// Origin before alignment (`start_time` or the query start); also where `gaps`
    /// starts without `trim`.
    pub start: i64,
    /// Where `gaps` stops: `min(end_time or query end, now)`.
    pub end: i64,
    pub align_sampling: bool,
    pub align_start_time: bool,
    pub align_end_time: bool,
    pub trim: bool,
    pub zone: Zone,
}

/// Checks the budget every this many buckets.
const CHECK_EVERY: usize = 1 << 14;

impl Range {
    fn buckets(&self) -> Result<Buckets, QueryError> {
        if self.value <= 0 {
            // KairosDB divides by the sampling value and fails with a 500 (spec §14.19).
            return Err(QueryError::Failed(
                "java.lang.ArithmeticException: / by zero (sampling value must be greater than 0)"
                    .into(),
            ));
        }
        Ok(Buckets::new(
            self.unit,
            self.value,
            self.start,
            self.align_sampling,
            self.zone.clone(),
        ))
    }

    /// The time a bucket's result is stamped with.
    #[inline]
    fn return_time(&self, first_ts: i64, start: i64, end: i64) -> i64 {
        if self.align_start_time {
            start
        } else if self.align_end_time {
            end
        } else {
            first_ts
        }
    }

    /// `count` over series folded to one count a bucket (`fold.rs`): each bucket's counts
    /// added, stamped as `count` stamps it (by the bucket's first point).
    pub(crate) fn apply_counted(&self, s: Stream, ctx: &Context) -> Result<Stream, Stop> {
        if s.ts.is_empty() {
            return Ok(s);
        }
        let buckets = self.buckets()?;
        let counts = numbers(&s.values)?;
        let mut ts = Vec::new();
        let mut out = Vec::new();
        walk(&s.ts, &buckets, ctx, |lo, hi, start, end| {
            ts.push(self.return_time(s.ts[lo], start, end));
            out.push(counts[lo..hi].iter().sum::<f64>() as i64);
        })?;
        Ok(Stream {
            ts,
            values: OutColumn::Long(out),
            group_type: GroupType::Number,
        })
    }

    pub(crate) fn apply(&self, s: Stream, ctx: &Context) -> Result<Stream, Stop> {
        // Only `gaps` without `trim` has something to say about an empty group.
        if s.ts.is_empty() && (self.kind != RangeKind::Gaps || self.trim) {
            return Ok(s);
        }
        let buckets = self.buckets()?;
        if self.kind == RangeKind::Gaps {
            return self.gaps(s, &buckets, ctx);
        }
        let group_type = match self.kind {
            RangeKind::First | RangeKind::Last => s.group_type,
            _ => GroupType::Number,
        };
        let values = match &self.kind {
            RangeKind::Count => {
                let mut ts = Vec::new();
                let mut counts = Vec::new();
                walk(&s.ts, &buckets, ctx, |lo, hi, start, end| {
                    ts.push(self.return_time(s.ts[lo], start, end));
                    counts.push((hi - lo) as i64);
                })?;
                return Ok(Stream {
                    ts,
                    values: OutColumn::Long(counts),
                    group_type,
                });
            }
            RangeKind::First | RangeKind::Last => {
                let first = self.kind == RangeKind::First;
                let mut ts = Vec::new();
                let mut idx = Vec::new();
                walk(&s.ts, &buckets, ctx, |lo, hi, start, end| {
                    let i = if first { lo } else { hi - 1 };
                    // `last` keeps its own time unless a bucket alignment is asked for.
                    ts.push(if first || self.align_start_time || self.align_end_time {
                        self.return_time(s.ts[lo], start, end)
                    } else {
                        s.ts[i]
                    });
                    idx.push(i);
                })?;
                return Ok(Stream {
                    ts,
                    values: column::gather(&s.values, &idx),
                    group_type,
                });
            }
            RangeKind::LeastSquares => return Ok(self.least_squares(s, &buckets, ctx)?),
            RangeKind::Sum | RangeKind::Avg | RangeKind::Max | RangeKind::Min
                if matches!(s.values, OutColumn::Long(_)) =>
            {
                return Ok(self.fold_longs(&s, &buckets, ctx, group_type)?);
            }
            _ => numbers(&s.values)?,
        };
        let v: &[f64] = &values;
        let mut ts = Vec::new();
        let mut out = Vec::new();
        let mut scratch: Vec<f64> = Vec::new();
        let mut failure = None;
        walk(&s.ts, &buckets, ctx, |lo, hi, start, end| {
            let bucket = &v[lo..hi];
            let x = match &self.kind {
                RangeKind::Sum => sum(bucket.iter().copied()),
                RangeKind::Avg => sum(bucket.iter().copied()) / bucket.len() as f64,
                RangeKind::Max => fold_max(bucket.iter().copied()),
                RangeKind::Min => fold_min(bucket.iter().copied()),
                RangeKind::Dev { return_type, count } => {
                    dev(bucket, *return_type, f64::from(*count))
                }
                RangeKind::Percentile(p) => match percentile(bucket, *p, &mut scratch) {
                    Ok(x) => x,
                    Err(e) => {
                        failure.get_or_insert(e);
                        0.0
                    }
                },
                RangeKind::Count
                | RangeKind::First
                | RangeKind::Last
                | RangeKind::Gaps
                | RangeKind::LeastSquares => unreachable!("handled above"),
            };
            ts.push(self.return_time(s.ts[lo], start, end));
            out.push(x);
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(Stream {
            ts,
            values: OutColumn::Double(out),
            group_type,
        })
    }

    /// `sum`, `avg`, `max` and `min` of a long column, each value read as a double where
    /// it is added (in stream order, so the answer is bit for bit the one of the doubles
    /// [`numbers`] makes) without copying the column into doubles first: that copy and its
    /// fresh pages were a tenth of a `double-groupby` query (docs/benchmarks.md).
    fn fold_longs(
        &self,
        s: &Stream,
        buckets: &Buckets,
        ctx: &Context,
        group_type: GroupType,
    ) -> Result<Stream, QueryError> {
        let OutColumn::Long(v) = &s.values else {
            unreachable!("BUG: fold_longs on a column of another type")
        };
        let mut ts = Vec::new();
        let mut out = Vec::new();
        walk(&s.ts, buckets, ctx, |lo, hi, start, end| {
            let bucket = &v[lo..hi];
            // A long converts to a double monotonically: the largest double is the
            // largest long's (buckets are never empty).
            let x = match self.kind {
                RangeKind::Sum => sum_longs(bucket),
                RangeKind::Avg => sum_longs(bucket) / (hi - lo) as f64,
                RangeKind::Max => bucket.iter().copied().max().unwrap_or(i64::MIN) as f64,
                RangeKind::Min => bucket.iter().copied().min().unwrap_or(i64::MAX) as f64,
                _ => unreachable!("BUG: fold_longs of {:?}", self.kind),
            };
            ts.push(self.return_time(s.ts[lo], start, end));
            out.push(x);
        })?;
        Ok(Stream {
            ts,
            values: OutColumn::Double(out),
            group_type,
        })
    }

    /// `max`, `min` or `count` over the series of one group without merging them first:
    /// each series is walked on its own and the results are combined bucket by bucket.
    ///
    /// The answer is the one [`Range::apply`] gives on the merged stream: these folds do
    /// not depend on the order of the points within a bucket, and a bucket holds the same
    /// points either way as long as no point lies before the bucket origin (before it,
    /// buckets are found by rounding toward zero and depend on the stream's first point,
    /// as in KairosDB). `None` when that does not hold, or for any other kind: the caller
    /// merges and runs [`Range::apply`].
    pub(crate) fn apply_unmerged(
        &self,
        series: &[SeriesData],
        ctx: &Context,
    ) -> Option<Result<Stream, QueryError>> {
        if !matches!(
            self.kind,
            RangeKind::Max | RangeKind::Min | RangeKind::Count
        ) {
            return None;
        }
        let buckets = match self.buckets() {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let origin = buckets.origin();
        let before_origin = |s: &SeriesData| s.points.timestamps().first() < Some(&origin);
        if series.iter().any(before_origin) {
            return None;
        }
        // (bucket end, bucket start, its first point's time, folded value) per series and
        // bucket. The end names the bucket: from the origin on, buckets do not overlap, and
        // only the last one can have its end saturated at i64::MAX.
        let mut parts: Vec<(i64, i64, i64, f64)> = Vec::new();
        for s in series {
            let converted: Vec<f64>;
            let v: &[f64] = match &s.points {
                Points::Double { values, .. } => values,
                Points::Long { values, .. } => {
                    converted = values.iter().map(|&x| x as f64).collect();
                    &converted
                }
                Points::String { .. } => return None,
            };
            let ts = s.points.timestamps();
            let walked = walk(ts, &buckets, ctx, |lo, hi, start, end| {
                let x = match self.kind {
                    RangeKind::Max => fold_max(v[lo..hi].iter().copied()),
                    RangeKind::Min => fold_min(v[lo..hi].iter().copied()),
                    _ => (hi - lo) as f64,
                };
                parts.push((end, start, ts[lo], x));
            });
            if let Err(e) = walked {
                return Some(Err(e));
            }
        }
        // Max, min and sums of counts (below 2^53) are exact in any order.
        parts.sort_unstable_by_key(|p| p.0);
        let mut ts = Vec::new();
        let mut out: Vec<f64> = Vec::new();
        for bucket in parts.chunk_by(|a, b| a.0 == b.0) {
            let (end, start) = (bucket[0].0, bucket[0].1);
            let first = bucket.iter().map(|p| p.2).min().unwrap_or(start);
            let values = bucket.iter().map(|p| p.3);
            out.push(match self.kind {
                RangeKind::Max => values.fold(-f64::MAX, f64::max),
                RangeKind::Min => values.fold(f64::MAX, f64::min),
                _ => values.sum(),
            });
            ts.push(self.return_time(first, start, end));
        }
        let values = match self.kind {
            RangeKind::Count => OutColumn::Long(out.into_iter().map(|c| c as i64).collect()),
            _ => OutColumn::Double(out),
        };
        Some(Ok(Stream {
            ts,
            values,
            group_type: GroupType::Number,
        }))
    }

    /// Per bucket: one point → itself, two → both, more → the ends of the least-squares
    /// line through them (Apache Commons `SimpleRegression` with intercept).
    fn least_squares(
        &self,
        s: Stream,
        buckets: &Buckets,
        ctx: &Context,
    ) -> Result<Stream, QueryError> {
        let v = numbers(&s.values)?;
        let mut ts = Vec::new();
        let mut out = Vec::new();
        let original = |i: usize| -> Num {
            match &s.values {
                OutColumn::Long(x) => Num::Long(x[i]),
                OutColumn::Number(x) => x[i],
                _ => Num::Double(v[i]),
            }
        };
        walk(&s.ts, buckets, ctx, |lo, hi, _, _| {
            if hi - lo <= 2 {
                for i in lo..hi {
                    ts.push(s.ts[i]);
                    out.push(original(i));
                }
                return;
            }
            let (mut n, mut xbar, mut ybar) = (0.0f64, 0.0f64, 0.0f64);
            let (mut sum_xx, mut sum_xy, mut sum_x, mut sum_y) = (0.0f64, 0.0, 0.0, 0.0);
            for i in lo..hi {
                let (x, y) = (s.ts[i] as f64, v[i]);
                if n == 0.0 {
                    xbar = x;
                    ybar = y;
                } else {
                    let fact1 = 1.0 + n;
                    let fact2 = n / (1.0 + n);
                    let dx = x - xbar;
                    let dy = y - ybar;
                    sum_xx += dx * dx * fact2;
                    sum_xy += dx * dy * fact2;
                    xbar += dx / fact1;
                    ybar += dy / fact1;
                }
                sum_x += x;
                sum_y += y;
                n += 1.0;
            }
            let slope = if sum_xx.abs() < 10.0 * f64::MIN_POSITIVE {
                f64::NAN
            } else {
                sum_xy / sum_xx
            };
            let intercept = (sum_y - slope * sum_x) / n;
            for t in [s.ts[lo], s.ts[hi - 1]] {
                ts.push(t);
                out.push(Num::Double(intercept + slope * t as f64));
            }
        })?;
        Ok(Stream {
            ts,
            values: OutColumn::Number(out),
            group_type: GroupType::Number,
        })
    }

    /// Exhaustive mode: every bucket from the query start (or, with `trim`, from the
    /// first point) to the bucket starting at or before `min(end, now)` (with `trim`, to
    /// the last point); points pass unchanged, an empty bucket gives a null at its start.
    fn gaps(&self, s: Stream, buckets: &Buckets, ctx: &Context) -> Result<Stream, Stop> {
        let n = s.ts.len();
        // Refuse absurd bucket counts before allocating (e.g. 1 ms over years).
        if let Some(w) = buckets.fixed_width() {
            let span = if self.trim {
                i128::from(s.ts[n - 1]) - i128::from(s.ts[0])
            } else {
                i128::from(self.end) - i128::from(self.start)
            };
            let estimate = (span / i128::from(w)).max(0) as u64;
            ctx.budget.check(estimate.saturating_add(n as u64))?;
            ctx.budget.check_work(estimate.saturating_add(n as u64))?;
        }
        let mut ts = Vec::new();
        let mut idx: Vec<Option<usize>> = Vec::new();
        let mut next = if self.trim { s.ts[0] } else { self.start };
        let mut i = 0;
        let mut walked = 0usize;
        while i < n || (!self.trim && next <= self.end) {
            let (start, end) = buckets.range_of(next);
            next = end;
            let lo = i;
            while i < n && s.ts[i] < end {
                i += 1;
            }
            if i > lo {
                for j in lo..i {
                    ts.push(s.ts[j]);
                    idx.push(Some(j));
                }
            } else {
                ts.push(start);
                idx.push(None);
            }
            if end <= start {
                break; // saturated at the end of time
            }
            walked += 1;
            if walked.is_multiple_of(CHECK_EVERY) {
                ctx.budget.check(idx.len() as u64)?;
                ctx.budget.check_work(idx.len() as u64)?;
            }
        }
        Ok(Stream {
            ts,
            values: column::gather_or_null(&s.values, &idx),
            group_type: s.group_type,
        })
    }
}

/// Calls `f(lo, hi, bucket_start, bucket_end)` for each non-empty bucket of `ts`.
#[inline]
fn walk(
    ts: &[i64],
    buckets: &Buckets,
    ctx: &Context,
    mut f: impl FnMut(usize, usize, i64, i64),
) -> Result<(), QueryError> {
    let n = ts.len();
    let mut lo = 0;
    let mut count = 0usize;
    let width = buckets.fixed_width();
    let origin = buckets.origin();
    let (mut start, mut end) = (i64::MIN, i64::MIN);
    let mut last_len = 1;
    while lo < n {
        let t = ts[lo];
        // Dense data: the next point usually falls in the next fixed-width bucket.
        match width {
            Some(w)
                if start >= origin && t >= end && t - end < w && end.checked_add(w).is_some() =>
            {
                start = end;
                end += w;
            }
            _ => (start, end) = buckets.range_of(t),
        }
        let hi = bucket_end(ts, lo, end, last_len);
        last_len = hi - lo;
        f(lo, hi, start, end);
        lo = hi;
        count += 1;
        if count.is_multiple_of(CHECK_EVERY) {
            ctx.budget.check(0)?;
        }
    }
    Ok(())
}

/// The end of the bucket whose first point is `ts[lo]` (before `end`): the first index
/// past `lo` at or after `end`, or `ts.len()`. A stream is time-ordered (ascending, or
/// descending with `order: desc`, where everything after `lo` is before `end`), so the
/// points before `end` are a prefix of `ts[lo..]`.
///
/// Evenly spaced points fill their buckets alike, so the bucket is first tried at
/// `hint` points (the last bucket's length): two reads of `ts` where comparing every
/// point was half of `Range::apply` in `double-groupby-5` (perf, docs/benchmarks.md
/// session 7). Otherwise a galloping search, about 2·log₂ k reads for k points.
fn bucket_end(ts: &[i64], lo: usize, end: i64, hint: usize) -> usize {
    let n = ts.len();
    let guess = lo + hint.max(1);
    if guess < n {
        if ts[guess] >= end && ts[guess - 1] < end {
            return guess;
        }
    } else if ts[n - 1] < end {
        return n;
    }
    let mut below = lo; // ts[below] < end
    let mut step = 1;
    loop {
        let probe = below + step;
        if probe >= n || ts[probe] >= end {
            let hi = probe.min(n);
            return below + 1 + ts[below + 1..hi].partition_point(|&t| t < end);
        }
        below = probe;
        step *= 2;
    }
}

/// The largest value of a bucket. Plain comparisons (one `maxsd` each); values are
/// finite.
#[inline]
fn fold_max(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter()
        .fold(-f64::MAX, |m, x| if x > m { x } else { m })
}

/// The smallest value of a bucket (as [`fold_max`]).
#[inline]
fn fold_min(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter()
        .fold(f64::MAX, |m, x| if x < m { x } else { m })
}

/// Sum in stream order (floating-point order matters, spec §5.2).
#[inline]
fn sum(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = 0.0;
    for x in v {
        s += x;
    }
    s
}

/// What [`sum`] gives for `v` as doubles, added as integers when that is exact: with
/// every |partial sum| ≤ 2⁵³ each double addition is exact, so the order of the
/// additions no longer matters and the integer sum is the same number. The integer
/// loop vectorizes; the double one waits on each addition (a tenth of a
/// `double-groupby` query, perf 2026-12-07).
#[inline]
fn sum_longs(v: &[i64]) -> f64 {
    const EXACT: u128 = 1 << 53;
    // An upper bound of every |x| in one vectorized pass (the exact largest |x| compiled
    // to a scalar loop, the other half of `Range::apply`): `x ^ (x >> 63)` is x, or
    // |x| − 1 for a negative x, so their OR plus one bounds them all.
    let bound = u128::from(v.iter().fold(0u64, |acc, &x| acc | (x ^ (x >> 63)) as u64)) + 1;
    if bound * v.len() as u128 <= EXACT {
        return v.iter().sum::<i64>() as f64;
    }
    sum(v.iter().map(|&x| x as f64))
}

/// KairosDB's incremental sample standard deviation (a single point gives 0).
fn dev(v: &[f64], return_type: DevReturn, dev_count: f64) -> f64 {
    let (mut count, mut average, mut pwr, mut sd) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for &x in v {
        count += 1.0;
        average += (x - average) / count;
        pwr += (x * x - pwr) / count;
        sd = ((pwr * count - count * average * average) / (count - 1.0)).sqrt();
    }
    if sd.is_nan() {
        sd = 0.0;
    }
    match return_type {
        DevReturn::PosSd => average + sd * dev_count,
        DevReturn::NegSd => average - sd * dev_count,
        DevReturn::Value => sd,
    }
}

/// Exact percentile with KairosDB's interpolation: `pos = p·(n+1)`.
fn percentile(v: &[f64], p: f64, scratch: &mut Vec<f64>) -> Result<f64, QueryError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(QueryError::Failed(format!(
            "{} is not in [0..1]",
            java_double_string(p)
        )));
    }
    scratch.clear();
    scratch.extend_from_slice(v);
    scratch.sort_unstable_by(f64::total_cmp);
    Ok(percentile_sorted(scratch, p))
}

/// The `p` percentile (`0 ≤ p ≤ 1`) of ascending `sorted` values with KairosDB's
/// interpolation, `pos = p·(n+1)`; 0 for no values. Shared with the analytics plan's
/// `pNN` aggregates (`kairosdb_cluster::analytics`), so both answer the same number.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let pos = p * (n as f64 + 1.0);
    if pos < 1.0 {
        return sorted[0];
    }
    if pos >= n as f64 {
        return sorted[n - 1];
    }
    let lower = sorted[pos as usize - 1];
    let upper = sorted[pos as usize];
    lower + (pos - pos.floor()) * (upper - lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Integer sums are the double sums in stream order, bit for bit, small values
        /// or large.
        #[test]
        fn long_sums_are_the_double_sums(
            v in prop_oneof![
                proptest::collection::vec(-1000i64..1000, 1..500),
                proptest::collection::vec(any::<i64>(), 1..50),
                proptest::collection::vec((1i64 << 50)..(1i64 << 51), 1..20),
            ]
        ) {
            let doubles = sum(v.iter().map(|&x| x as f64));
            prop_assert_eq!(sum_longs(&v).to_bits(), doubles.to_bits());
        }
    }

    /// What `walk` did before the galloping search: compare every following point.
    fn bucket_end_by_scan(ts: &[i64], lo: usize, end: i64) -> usize {
        let mut hi = lo + 1;
        while hi < ts.len() && ts[hi] < end {
            hi += 1;
        }
        hi
    }

    proptest! {
        /// The guessed or galloping search ends every bucket where comparing each point
        /// does, whatever the guess, in ascending streams with repeated times and in
        /// descending ones.
        #[test]
        fn bucket_ends_are_found_where_a_scan_finds_them(
            mut ts in proptest::collection::vec(-50i64..50, 1..300),
            descending: bool,
            lo_pick in any::<proptest::sample::Index>(),
            past in 1i64..120,
            hint in 0usize..400,
        ) {
            ts.sort_unstable();
            if descending {
                ts.reverse();
            }
            let lo = lo_pick.index(ts.len());
            let end = ts[lo] + past;
            prop_assert_eq!(bucket_end(&ts, lo, end, hint), bucket_end_by_scan(&ts, lo, end));
        }
    }

    #[test]
    fn long_sums_near_the_exact_limit_keep_the_double_answer() {
        // The bound is looser than the largest |x|: around 2⁵³ / len both paths must
        // still give the doubles' sum.
        for len in [1usize, 2, 3, 7, 64] {
            for x in [
                (1i64 << 53) / len as i64,
                -((1i64 << 53) / len as i64),
                i64::MIN,
                i64::MAX,
            ] {
                let v = vec![x; len];
                let doubles = sum(v.iter().map(|&x| x as f64));
                assert_eq!(sum_longs(&v).to_bits(), doubles.to_bits(), "{len} × {x}");
            }
        }
    }

    #[test]
    fn sums_past_two_to_the_53_add_as_doubles() {
        // 2⁵³ + 1 + 1: each double addition rounds the 1 away; the integers would not.
        let v = [1i64 << 53, 1, 1];
        assert_eq!(sum_longs(&v), (1u64 << 53) as f64);
        assert_eq!(sum_longs(&[3, -5, 7]), 5.0);
    }
}

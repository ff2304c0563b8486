//! The push-down of a leading `max`, `min`, `first` or `last` ([`Fold`]): per series and
//! bucket, only the bucket's first point (it stamps the result) and the point the
//! aggregator picks matter, so a cluster worker sends only those ([`reduce`]) and the
//! control node aggregates them exactly as it would every point (property-tested in
//! `tests/pushdown.rs`). And of a leading `count`, where the storage says it always
//! does it: each numeric series becomes its buckets' counts, added up by
//! `Range::apply_counted`.
//!
//! * [`fold_of`]: whether a query's read may carry the hint, and with which buckets: the
//!   leading aggregator is one of the four, the query has no `limit`, no descending
//!   order and no time, value or bin group-by (they look at every point), and no point of
//!   the range lies before the buckets' origin (there KairosDB's buckets depend on the
//!   stream's first point, so a series cut down would change them).
//! * [`reduce`]: what a worker keeps. Text series stay whole (numeric aggregators pass
//!   them through to the next one).
//!
//! Not here: `max`/`min`/`count` without the merge (`Range::apply_unmerged`), the
//! whole-range `first`/`last` read (`Aggregator::edge_order`).

use kairosdb_model::catalogue::{AggregatorSpec, RangeKind};
use kairosdb_model::{Fold, FoldKeep, Points, SeriesData};

use crate::aggregate::Aggregator;
use crate::time::{Buckets, Zone};
use crate::Context;

/// The hint for the read of a query whose first aggregator is `spec` (built as
/// `aggregator`), or `None` when it cannot carry one (see the module docs; the caller
/// checked limit, order and group-bys).
pub(crate) fn fold_of(
    spec: &AggregatorSpec,
    aggregator: &Aggregator,
    ctx: &Context,
    counts: bool,
) -> Option<Fold> {
    let (AggregatorSpec::Range(r), Aggregator::Range(range)) = (spec, aggregator) else {
        return None;
    };
    let keep = match r.kind {
        RangeKind::Max => FoldKeep::Max,
        RangeKind::Min => FoldKeep::Min,
        RangeKind::First => FoldKeep::First,
        RangeKind::Last => FoldKeep::Last,
        // Only where the storage always counts (`Storage::folds_counts`).
        RangeKind::Count if counts => FoldKeep::Count,
        _ => return None,
    };
    if range.value <= 0 {
        return None;
    }
    let buckets = Buckets::new(
        range.unit,
        range.value,
        range.start,
        range.align_sampling,
        range.zone.clone(),
    );
    if buckets.origin() > ctx.range.start {
        return None;
    }
    Some(Fold {
        keep,
        unit: range.unit,
        value: range.value,
        start: range.start,
        align_sampling: range.align_sampling,
        time_zone: r.time_zone.clone().or(ctx.time_zone.map(str::to_owned)),
    })
}

/// Keeps of each numeric series only the points `fold` says matter; `in_range` is left as
/// it is (every point). A series with a point before the buckets' origin stays whole.
pub fn reduce(series: &mut [SeriesData], fold: &Fold) -> Result<(), String> {
    if fold.value <= 0 {
        return Ok(());
    }
    let zone = Zone::resolve(fold.time_zone.as_deref())?;
    let buckets = Buckets::new(fold.unit, fold.value, fold.start, fold.align_sampling, zone);
    for s in series.iter_mut() {
        if fold.keep == FoldKeep::Count {
            count(s, &buckets);
            continue;
        }
        let keep = match &s.points {
            Points::Long { ts, values } => {
                let v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
                kept(ts, &v, &buckets, fold.keep)
            }
            Points::Double { ts, values } => kept(ts, values, &buckets, fold.keep),
            Points::String { .. } => None,
        };
        if let Some(idx) = keep {
            if idx.len() < s.points.len() {
                s.points = s.points.pick(&idx);
            }
        }
    }
    Ok(())
}

/// A numeric series as one point a bucket, at its first point's time: the bucket's count
/// (text series stay whole: `count` counts them on the control node).
fn count(s: &mut SeriesData, buckets: &Buckets) {
    if matches!(s.points, Points::String { .. }) {
        return;
    }
    let ts = s.points.timestamps();
    let (mut at, mut counts) = (Vec::new(), Vec::new());
    let mut lo = 0;
    while lo < ts.len() {
        let (_, end) = buckets.range_of(ts[lo]);
        let mut hi = lo + 1;
        while hi < ts.len() && ts[hi] < end {
            hi += 1;
        }
        at.push(ts[lo]);
        counts.push((hi - lo) as i64);
        lo = hi;
    }
    // In the series' own type: its key says how its points are encoded.
    s.points = match s.points {
        Points::Long { .. } => Points::Long {
            ts: at,
            values: counts,
        },
        _ => Points::Double {
            ts: at,
            values: counts.into_iter().map(|c| c as f64).collect(),
        },
    };
}

/// The indexes to keep of one series (ascending), or `None` to keep it whole.
fn kept(ts: &[i64], v: &[f64], buckets: &Buckets, keep: FoldKeep) -> Option<Vec<usize>> {
    if ts.first().is_some_and(|&t| t < buckets.origin()) || ts.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let mut idx = Vec::new();
    let mut lo = 0;
    while lo < ts.len() {
        let (_, end) = buckets.range_of(ts[lo]);
        let mut hi = lo + 1;
        while hi < ts.len() && ts[hi] < end {
            hi += 1;
        }
        idx.push(lo);
        let picked = match keep {
            FoldKeep::First => None,
            FoldKeep::Last => Some(hi - 1),
            // The first of the extreme values, as `fold_max`/`fold_min` compare.
            FoldKeep::Max => Some((lo..hi).fold(lo, |m, i| if v[i] > v[m] { i } else { m })),
            FoldKeep::Min => Some((lo..hi).fold(lo, |m, i| if v[i] < v[m] { i } else { m })),
            FoldKeep::Count => unreachable!("BUG: counts are folded by `count`"),
        };
        if let Some(i) = picked.filter(|&i| i != lo) {
            idx.push(i);
        }
        lo = hi;
    }
    Some(idx)
}

//! Merged partials → the rows `/aggregate` answers: the rolling window, each aggregate,
//! `order_by` and `limit`.
//!
//! **Rolling window** (`rolling=N`): the row of bucket `b` is computed over the merged
//! partials of `b` and the `N − 1` buckets before it, so `rolling=3` with `window=5m` is a
//! trailing 15-minute window sliding by 5 minutes (PromQL's `avg_over_time(x[15m])` with a
//! 5-minute step; InfluxDB's `MOVING_AVERAGE(MEAN(x), 3)`, except that every aggregate,
//! percentiles included, is exact over the window's points instead of an aggregate of
//! aggregates). The older buckets of the first rows are read from before `from`
//! (`AggregateQuery::read_start`). A row is answered when its window holds a point.
//!
//! Rows are ordered by `order_by`, then by group and time (so the order is always the
//! same), and cut to `limit`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::params::{AggregateQuery, OrderField, ParamError};
use super::partial::{Partial, Partials};

/// Most values a rolling percentile may sort in all (each value is sorted once per
/// window it falls in).
pub const MAX_ROLLING_VALUES: u64 = 50_000_000;

/// One answered bucket of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The bucket's start (with no window: `from`), epoch milliseconds.
    pub timestamp: i64,
    /// The `group_by` tags' values.
    pub group: Vec<Option<String>>,
    /// One per aggregate of the query, in its order.
    pub values: Vec<f64>,
}

/// The rows of `q` over `merged` (the merge of every partition's partials).
pub fn rows(q: &AggregateQuery, merged: &Partials) -> Result<Vec<Row>, ParamError> {
    let mut budget = MAX_ROLLING_VALUES;
    let mut rows = Vec::new();
    for g in &merged.groups {
        for (timestamp, partial) in windows(q, &g.buckets, &mut budget)? {
            let values = q.aggs.iter().map(|a| partial.value(a)).collect();
            rows.push(Row {
                timestamp,
                group: g.group.clone(),
                values,
            });
        }
    }
    rows.sort_by(|a, b| compare(q, a, b));
    if let Some(limit) = q.limit {
        rows.truncate(limit);
    }
    Ok(rows)
}

/// The partial of each answered bucket of one group: its own (no rolling) or merged over
/// its rolling window.
fn windows(
    q: &AggregateQuery,
    buckets: &[(i64, Partial)],
    budget: &mut u64,
) -> Result<Vec<(i64, Partial)>, ParamError> {
    let first = q.first_bucket();
    let (Some(window), true) = (&q.window, q.rolling > 1) else {
        let answered = buckets.iter().filter(|(start, _)| *start >= first);
        return Ok(answered.cloned().collect());
    };
    let span = i64::from(q.rolling) * window.ms;
    // Every bucket whose window holds one of these buckets, from `first` on.
    let mut starts: Vec<i64> = buckets
        .iter()
        .flat_map(|(start, _)| (0..q.rolling).map(move |k| start + i64::from(k) * window.ms))
        .filter(|b| *b >= first && *b < q.to)
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let by_start: BTreeMap<i64, &Partial> = buckets.iter().map(|(s, p)| (*s, p)).collect();
    let mut out = Vec::with_capacity(starts.len());
    for b in starts {
        let mut inside = by_start.range(b - span + window.ms..=b).map(|(_, p)| *p);
        let Some(mut merged) = inside.next().cloned() else {
            continue;
        };
        inside.for_each(|p| merged.merge(p));
        spend(budget, merged.values.len() as u64)?;
        out.push((b, merged));
    }
    Ok(out)
}

fn spend(budget: &mut u64, values: u64) -> Result<(), ParamError> {
    *budget = budget.checked_sub(values).ok_or_else(|| {
        ParamError::validation(
            "rolling",
            format!("rolling percentiles over this range would sort more than {MAX_ROLLING_VALUES} values; narrow the range or the rolling window"),
        )
    })?;
    Ok(())
}

/// `order_by`, then group, then time.
fn compare(q: &AggregateQuery, a: &Row, b: &Row) -> Ordering {
    for key in &q.order_by {
        let ord = match key.field {
            OrderField::Time => a.timestamp.cmp(&b.timestamp),
            OrderField::Agg(i) => a.values[i].total_cmp(&b.values[i]),
            OrderField::Tag(i) => a.group[i].cmp(&b.group[i]),
        };
        let ord = if key.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.group.cmp(&b.group).then(a.timestamp.cmp(&b.timestamp))
}

#[cfg(test)]
mod tests;

//! Query execution above storage (spec §4.4), one metric query at a time:
//!
//! 1. read the matching series from [`Storage`] (per-series `limit`/`order` applied there);
//! 2. [`group`]: split the series by group type (`number` < `text`), then by the values of
//!    the `tag` group-by, if any;
//! 3. [`merge`]: merge each group's series into one time-ordered column stream;
//! 4. truncate each group to `limit`;
//! 5. (next: time/value/bin group-bys and the aggregator chain run here, over the merged
//!    columns of each group);
//! 6. emit one [`ResultGroup`] per non-empty group.
//!
//! Fixed surface: [`execute`], [`QueryError`].

mod group;
mod merge;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kairosdb_model::{
    GroupByResult, MetricQuery, QueryResult, ResultGroup, SeriesQuery, Storage, StorageError,
    TimeRange,
};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query cannot be run as asked (HTTP 400, text is the KairosDB error).
    #[error("{0}")]
    BadRequest(String),
    /// The query is valid but fails while running, as KairosDB's does with a 500
    /// (e.g. `rate` over equal timestamps, `percentile` outside [0..1]).
    #[error("{0}")]
    Failed(String),
    /// The per-query point or time limit was exceeded (HTTP 400 here; KairosDB answers 500).
    #[error("{0}")]
    Limit(String),
    /// The client went away; nobody reads the answer.
    #[error("query cancelled")]
    Cancelled,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Request-wide inputs of one metric query.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// Inclusive query range (relative times already resolved).
    pub range: TimeRange,
    /// Query-level IANA time zone or fixed offset; `None` = UTC (spec §14.3).
    pub time_zone: Option<&'a str>,
    /// Wall clock at request time (ms): `gaps` stops at `min(end, now)`.
    pub now_ms: i64,
    pub budget: &'a Budget,
}

/// Limits that stop a runaway query with a clear error instead of exhausting the server.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    /// Max data points one metric query may read from storage or produce (e.g. `gaps`
    /// nulls). `None` = unlimited.
    pub max_points: Option<u64>,
    /// Wall-clock deadline of the whole request and the limit it came from, in seconds
    /// (for the message).
    pub deadline: Option<(Instant, u64)>,
    /// Set when the client disconnects; the query stops at the next check.
    pub cancelled: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// Fails when `points` exceeds the point limit, the deadline passed or the query was
    /// cancelled. Called between phases and every few thousand buckets.
    pub fn check(&self, points: u64) -> Result<(), QueryError> {
        if let Some(max) = self.max_points {
            if points > max {
                return Err(QueryError::Limit(format!(
                    "Query exceeded limit of {max} data points"
                )));
            }
        }
        if let Some((deadline, secs)) = self.deadline {
            if Instant::now() >= deadline {
                return Err(QueryError::Limit(format!(
                    "Query exceeded time limit of {secs} seconds"
                )));
            }
        }
        if let Some(c) = &self.cancelled {
            if c.load(Ordering::Relaxed) {
                return Err(QueryError::Cancelled);
            }
        }
        Ok(())
    }
}

/// Runs one metric query of a request over `range` and returns its result
/// (`sample_size` and the result groups, one per type group for raw reads).
///
/// Groups without points are omitted, as KairosDB does since 2022 (spec §14.1), so a
/// query that matches nothing answers `"results":[]`.
pub fn execute(
    storage: &dyn Storage,
    ctx: &Context,
    query: &MetricQuery,
) -> Result<QueryResult, QueryError> {
    let range = ctx.range;
    if let Some(agg) = query.aggregators.first() {
        return Err(QueryError::BadRequest(format!(
            "aggregators are not supported by this server version yet: {agg}"
        )));
    }
    if let Some(gb) = query.group_by_other.first() {
        return Err(QueryError::BadRequest(format!(
            "time, value and bin group-bys are not supported by this server version yet: {gb}"
        )));
    }
    let series = storage.query(&SeriesQuery {
        metric: query.name.clone(),
        filter: query.filter.clone(),
        range,
        limit: query.limit,
        order: query.order,
    })?;
    let sample_size = series.iter().map(|s| s.points.len() as u64).sum();
    ctx.budget.check(sample_size)?;

    let mut results = Vec::new();
    for g in group::split(series, &query.group_by_tags) {
        let tags = (!query.exclude_tags).then(|| g.tag_values());
        let (mut ts, mut values) = merge::merge(g.series, query.order);
        if let Some(limit) = query.limit {
            if ts.len() > limit {
                ts.truncate(limit);
                values = merge::truncate(values, limit);
            }
        }
        if ts.is_empty() {
            continue;
        }
        let mut group_by = Vec::new();
        if !query.group_by_tags.is_empty() {
            group_by.push(GroupByResult::Tag {
                tags: query.group_by_tags.clone(),
                group: g.tag_key,
            });
        }
        group_by.push(GroupByResult::Type(g.group_type.to_string()));
        results.push(ResultGroup {
            name: query.name.clone(),
            alias: query.alias.clone(),
            group_by,
            tags,
            ts,
            values,
        });
    }
    Ok(QueryResult {
        sample_size,
        results,
    })
}

#[cfg(test)]
mod tests;

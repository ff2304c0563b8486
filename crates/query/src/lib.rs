//! Query execution above storage (spec §4.4), one metric query at a time:
//!
//! 1. build the aggregators and group-bys from their specs ([`aggregate`], [`groupby`]),
//!    refusing what KairosDB only refuses at run time;
//! 2. read the matching series from [`Storage`] (per-series `limit`/`order` applied there;
//!    a leading `first`/`last` over one bucket reads one point per series, see
//!    `Aggregator::edge_order`; a leading `max`, `min`, `first` or `last` over several
//!    lets the read keep only the points it needs, see [`fold`]);
//! 3. [`group`]: split the series by group type (`number` < `text`), then by the values of
//!    the `tag` group-by, if any;
//! 4. [`merge`]: merge each group's series into one time-ordered column stream;
//! 5. [`groupby`]: split each stream further by the `time`, `value` and `bin` group-bys;
//! 6. truncate each group to `limit`;
//! 7. run the aggregator chain in JSON order ([`aggregate`]; range aggregators in
//!    [`range`], calendar arithmetic in [`time`]), skipping numeric aggregators on text;
//! 8. emit one [`ResultGroup`] per non-empty group.
//!
//! Fixed surface: [`execute`] (its answer an [`Executed`]), [`Context`], [`Budget`],
//! [`QueryError`]; and [`percentile_sorted`], the percentile definition the analytics
//! plan's mergeable aggregates share.

mod aggregate;
mod column;
pub mod fold;
mod group;
mod groupby;
mod merge;
mod range;
pub mod time;

pub use range::percentile_sorted;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kairosdb_model::catalogue::AggregatorSpec;
use kairosdb_model::{
    GroupByResult, GroupType, MetricQuery, Order, QueryResult, Read, ResultGroup, SeriesQuery,
    Storage, StorageError, TimeRange,
};

use aggregate::{Aggregator, GroupInfo, Stream};
use groupby::GroupBy;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query cannot be run as asked (HTTP 400, text is the KairosDB error).
    #[error("{0}")]
    Invalid(String),
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

/// What [`execute`] returns when the query does not fail.
#[derive(Clone, Debug, PartialEq)]
pub enum Executed {
    /// The metric query ran to the end.
    Complete(QueryResult),
    /// The query needs more work than [`Budget::work_limit`] allows (or reads a backend
    /// that cannot read without blocking, or writes): nothing is answered; run it again
    /// without the limit.
    OverWorkLimit,
}

impl Executed {
    /// The result of a query run without a work limit.
    ///
    /// # Panics
    /// On [`Executed::OverWorkLimit`]: a query without a work limit never stops at one.
    pub fn expect_complete(self) -> QueryResult {
        match self {
            Executed::Complete(result) => result,
            Executed::OverWorkLimit => {
                panic!("BUG: a query stopped at a work limit it did not set")
            }
        }
    }
}

/// Why a query ended early inside this crate: it reached [`Budget::work_limit`] (not a
/// failure: [`execute`] answers [`Executed::OverWorkLimit`]), or it failed.
#[derive(Debug)]
pub(crate) enum Stop {
    OverWorkLimit,
    Failed(QueryError),
}

impl From<QueryError> for Stop {
    fn from(e: QueryError) -> Stop {
        Stop::Failed(e)
    }
}

impl Stop {
    /// The failure that stopped a run without a work limit (which never stops at one).
    pub(crate) fn into_failure(self) -> QueryError {
        match self {
            Stop::Failed(e) => e,
            Stop::OverWorkLimit => unreachable!("BUG: stopped at a work limit of None"),
        }
    }
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
    /// Most work this attempt may do, in stored points: passed to the read as
    /// [`SeriesQuery::work_limit`] and held against points produced beyond those read
    /// (`gaps`). Above it [`execute`] answers [`Executed::OverWorkLimit`] and the caller
    /// runs the query again without the limit; a query that writes (`save_as`) stops so
    /// before it reads. None = unlimited.
    pub work_limit: Option<u64>,
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

    /// Stops the query when producing `points` would exceed the [`Budget::work_limit`].
    pub(crate) fn check_work(&self, points: u64) -> Result<(), Stop> {
        match self.work_limit {
            Some(limit) if points > limit => Err(Stop::OverWorkLimit),
            _ => Ok(()),
        }
    }
}

/// Runs one metric query of a request and returns its result (`sample_size` and the
/// result groups), or [`Executed::OverWorkLimit`] when it needs more work than
/// `ctx.budget.work_limit`.
///
/// Groups without points are omitted, as KairosDB does since 2022 (spec §14.1), so a
/// query that matches nothing answers `"results":[]`.
pub fn execute(
    storage: &dyn Storage,
    ctx: &Context,
    query: &MetricQuery,
) -> Result<Executed, QueryError> {
    match run(storage, ctx, query) {
        Ok(result) => Ok(Executed::Complete(result)),
        Err(Stop::OverWorkLimit) => Ok(Executed::OverWorkLimit),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// [`execute`], with stopping at the work limit carried by `?` as [`Stop::OverWorkLimit`]
/// from wherever it happens (the read, `gaps`, `save_as`).
fn run(storage: &dyn Storage, ctx: &Context, query: &MetricQuery) -> Result<QueryResult, Stop> {
    // Everything that can be refused is refused before reading.
    let group_bys: Vec<GroupBy> = query
        .group_bys
        .iter()
        .filter_map(|g| GroupBy::new(g, ctx.range.start))
        .collect();
    let aggregators = query
        .aggregators
        .iter()
        .map(|a| Aggregator::new(a, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    // A work-limited attempt runs where it must not block: a query that writes
    // (`save_as`) stops before reading, to run again without the limit.
    if ctx.budget.work_limit.is_some() && aggregators.iter().any(Aggregator::writes) {
        return Err(Stop::OverWorkLimit);
    }

    // `first`/`last` over the whole range as one bucket: storage returns each series'
    // first or last point only, and still counts every point for `sample_size`.
    let plain = query.limit.is_none() && query.order == Order::Asc && group_bys.is_empty();
    let edge = aggregators
        .first()
        .filter(|_| plain)
        .and_then(|a| a.edge_order(ctx));
    // A leading `max`, `min`, `first` or `last` over several buckets: the read may carry
    // only the points that aggregator needs (a cluster's workers send no more, `fold.rs`).
    let fold = match (query.aggregators.first(), aggregators.first()) {
        (Some(spec), Some(a)) if plain && edge.is_none() => {
            fold::fold_of(spec, a, ctx, storage.folds_counts())
        }
        _ => None,
    };
    // A leading `count` folded by the storage: its number series come as counts.
    let counted = fold
        .as_ref()
        .is_some_and(|f| f.keep == kairosdb_model::FoldKeep::Count);
    let read_span = tracing::debug_span!("storage.read", series = tracing::field::Empty);
    let reading = read_span.enter();
    let read = storage
        .query(&SeriesQuery {
            metric: query.name.clone(),
            filter: query.filter.clone(),
            range: ctx.range,
            limit: if edge.is_some() { Some(1) } else { query.limit },
            order: edge.unwrap_or(query.order),
            max_points: ctx.budget.max_points,
            count_in_range: edge.is_some(),
            work_limit: ctx.budget.work_limit,
            shard: None,
            fold,
            with_ttl: false,
        })
        .map_err(|e| match e {
            StorageError::TooManyPoints { .. } => QueryError::Limit(e.to_string()),
            e => QueryError::Storage(e),
        })?;
    let (series, coverage) = match read {
        Read::Complete(series) => (series, None),
        Read::Partial { series, coverage } => (series, Some(coverage)),
        Read::OverWorkLimit => return Err(Stop::OverWorkLimit),
    };
    // `save_as` (and so a roll-up) never stores aggregates of part of the data: the
    // period is refused, and a retry once the cluster answers whole overwrites nothing.
    if let (Some(c), true) = (coverage, aggregators.iter().any(Aggregator::writes)) {
        return Err(Stop::Failed(QueryError::Storage(
            StorageError::Unavailable {
                message: format!(
                    "save_as refused on a partial read: {} of {} workers responded",
                    c.responding_nodes, c.total_nodes
                ),
                retry_after_secs: 1,
            },
        )));
    }
    read_span.record("series", series.len());
    drop(reading);
    let _aggregating = tracing::debug_span!("query.aggregate").entered();
    let sample_size = series.iter().map(|s| s.in_range).sum();
    ctx.budget.check(sample_size)?;
    if sample_size > 0 {
        for g in &group_bys {
            g.check()?;
        }
    }

    let mut groups = group::split(series, &query.group_by_tags);
    // No row matched: KairosDB still runs one empty group (no tags, no group-by results)
    // through the aggregators, so `gaps` marks the whole range (spec §4.4 step 4).
    let no_rows = groups.is_empty();
    if no_rows {
        groups.push(group::Group {
            group_type: GroupType::Number,
            tag_key: Vec::new(),
            series: Vec::new(),
        });
    }
    let mut results = Vec::new();
    for g in groups {
        // The last part of a group takes these; earlier parts copy them.
        let mut tags = Some(g.tags());
        let mut tag_group_by =
            (!query.group_by_tags.is_empty() && !no_rows).then(|| GroupByResult::Tag {
                tags: query.group_by_tags.clone(),
                group: g.tag_key,
            });
        // A first `max`, `min` or `count` folds each series on its own and combines the
        // buckets, skipping the merge (the same answer, see `Range::apply_unmerged`);
        // only where nothing else needs the merged stream.
        let unmerged = (g.series.len() > 1
            && !counted
            && g.group_type == GroupType::Number
            && query.order == Order::Asc
            && query.limit.is_none()
            && group_bys.is_empty())
        .then(|| aggregators.first()?.apply_unmerged(&g.series, ctx))
        .flatten()
        .transpose()?;
        let (merged, first_aggregator) = match unmerged {
            Some(s) => (s, 1),
            None => {
                let (ts, values) = merge::merge(g.series, query.order);
                let s = Stream {
                    ts,
                    values,
                    group_type: g.group_type,
                };
                (s, 0)
            }
        };
        let parts = groupby::split(merged, &group_bys);
        let last_part = parts.len().saturating_sub(1);
        for (i, (mut group_by, mut s)) in parts.into_iter().enumerate() {
            if let Some(limit) = query.limit {
                if s.ts.len() > limit {
                    s.ts.truncate(limit);
                    s.values = column::slice(s.values, 0, limit);
                }
            }
            let group_tags = tags.as_ref().expect("taken only by the last part");
            let info = GroupInfo {
                metric: &query.name,
                tags: group_tags,
                group_by_tags: &query.group_by_tags,
            };
            for (k, a) in aggregators.iter().enumerate().skip(first_aggregator) {
                if !a.accepts(s.group_type) {
                    continue;
                }
                s = match k == 0 && counted && s.group_type == GroupType::Number {
                    true => a.apply_counted(s, ctx)?,
                    false => a.apply(s, ctx, storage, &info)?,
                };
            }
            ctx.budget.check(0)?;
            if s.ts.is_empty() {
                continue;
            }
            let last = i == last_part;
            group_by.extend(take_last(&mut tag_group_by, last));
            if !no_rows {
                group_by.push(GroupByResult::Type(g.group_type));
            }
            results.push(ResultGroup {
                name: query.name.clone(),
                alias: query.alias.clone(),
                group_by,
                tags: if query.exclude_tags {
                    None
                } else {
                    take_last(&mut tags, last)
                },
                ts: s.ts,
                values: s.values,
            });
        }
    }
    Ok(QueryResult {
        sample_size,
        results,
        coverage,
    })
}

/// The value for the last user of `slot` (moved out), or a copy for an earlier one.
fn take_last<T: Clone>(slot: &mut Option<T>, last: bool) -> Option<T> {
    if last {
        slot.take()
    } else {
        slot.clone()
    }
}

/// Runs an aggregator chain (as in [`MetricQuery::aggregators`])
/// over one stream of points outside a query: benchmarks, and later the cluster router
/// re-aggregating partial results. `save_as` writes to `storage`. There is no second
/// attempt to hand the work to here, so `ctx.budget.work_limit` does not apply.
pub fn aggregate(
    storage: &dyn Storage,
    ctx: &Context,
    aggregators: &[AggregatorSpec],
    ts: Vec<i64>,
    values: kairosdb_model::OutColumn,
) -> Result<(Vec<i64>, kairosdb_model::OutColumn), QueryError> {
    let budget = Budget {
        work_limit: None,
        ..ctx.budget.clone()
    };
    let ctx = &Context {
        budget: &budget,
        ..ctx.clone()
    };
    let group_type = match values {
        kairosdb_model::OutColumn::Text(_) | kairosdb_model::OutColumn::TextOrNull(_) => {
            GroupType::Text
        }
        _ => GroupType::Number,
    };
    let mut s = Stream {
        ts,
        values,
        group_type,
    };
    let tags = Default::default();
    let info = GroupInfo {
        metric: "",
        tags: &tags,
        group_by_tags: &[],
    };
    for spec in aggregators {
        let a = Aggregator::new(spec, ctx)?;
        if a.accepts(s.group_type) {
            s = a
                .apply(s, ctx, storage, &info)
                .map_err(Stop::into_failure)?;
        }
    }
    Ok((s.ts, s.values))
}

#[cfg(test)]
mod tests;

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

use kairosdb_model::{
    GroupByResult, MetricQuery, QueryResult, ResultGroup, SeriesQuery, Storage, StorageError,
    TimeRange,
};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query cannot be run as asked (HTTP 400, text is the KairosDB error).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Runs one metric query of a request over `range` and returns its result
/// (`sample_size` and the result groups, one per type group for raw reads).
///
/// Groups without points are omitted, as KairosDB does since 2022 (spec §14.1), so a
/// query that matches nothing answers `"results":[]`.
pub fn execute(
    storage: &dyn Storage,
    range: TimeRange,
    query: &MetricQuery,
) -> Result<QueryResult, QueryError> {
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

//! A parsed KairosDB query request (spec §4.1, §4.2), with absolute times resolved.
//!
//! Produced by `kairosdb-protocol`, executed by the server with `kairosdb-query`.

use crate::read::{Order, TagFilter, TimeRange};

/// The whole `POST /api/v1/datapoints/query` body.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryRequest {
    /// Resolved inclusive range (relative times computed against "now").
    pub range: TimeRange,
    /// IANA time zone id; `None` = UTC (spec §14.3 decision).
    pub time_zone: Option<String>,
    /// Seconds a cached raw result may be reused; 0 = no cache.
    pub cache_time: u32,
    pub metrics: Vec<MetricQuery>,
}

/// One element of `metrics[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricQuery {
    pub name: String,
    pub filter: TagFilter,
    /// Tag filter in request form, for the response cache key: name → values as written.
    pub filter_text: Vec<(String, Vec<String>)>,
    /// Max points per group; `None` when absent or 0 (spec §4.2).
    pub limit: Option<usize>,
    pub order: Order,
    pub exclude_tags: bool,
    pub alias: Option<String>,
    /// Tag group-by (spec §6.1): group by these tag names. Empty = none.
    pub group_by_tags: Vec<String>,
    /// Aggregators in JSON order, as raw JSON text of each object (interpreted by
    /// `kairosdb-query`). Empty = raw read.
    pub aggregators: Vec<String>,
    /// Non-tag group-bys (time, value, bin) as raw JSON text, in JSON order.
    pub group_by_other: Vec<String>,
}

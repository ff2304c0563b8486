//! A parsed KairosDB query request (spec §4.1, §4.2), with absolute times resolved.
//!
//! Produced by `kairosdb-protocol`, executed by the server with `kairosdb-query`.

use crate::catalogue::{AggregatorSpec, GroupBySpec};
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
    /// Aggregators in JSON order. Empty = raw read.
    pub aggregators: Vec<AggregatorSpec>,
    /// The `time`, `value` and `bin` group-bys in JSON order (the first `tag` group-by is
    /// [`MetricQuery::group_by_tags`]; later ones have no effect, as in KairosDB).
    pub group_bys: Vec<GroupBySpec>,
}

/// KairosDB's `TimeUnit` (spec §4.1): relative times, samplings, `rate`/`sampler` units and
/// the `time` group-by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl TimeUnit {
    /// `TimeUnit.from`: the enum names in any case. Deliberate extension: the singular
    /// forms (`hour`) are accepted too (user-needs §2.5).
    pub fn parse(s: &str) -> Option<TimeUnit> {
        let l = s.to_ascii_lowercase();
        Some(match l.strip_suffix('s').unwrap_or(&l) {
            "millisecond" => TimeUnit::Milliseconds,
            "second" => TimeUnit::Seconds,
            "minute" => TimeUnit::Minutes,
            "hour" => TimeUnit::Hours,
            "day" => TimeUnit::Days,
            "week" => TimeUnit::Weeks,
            "month" => TimeUnit::Months,
            "year" => TimeUnit::Years,
            _ => return None,
        })
    }

    /// The upper-case enum name KairosDB prints (`HOURS`).
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Milliseconds => "MILLISECONDS",
            TimeUnit::Seconds => "SECONDS",
            TimeUnit::Minutes => "MINUTES",
            TimeUnit::Hours => "HOURS",
            TimeUnit::Days => "DAYS",
            TimeUnit::Weeks => "WEEKS",
            TimeUnit::Months => "MONTHS",
            TimeUnit::Years => "YEARS",
        }
    }
}

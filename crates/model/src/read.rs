//! What storage is asked to read ([`SeriesQuery`]) and what it returns ([`Read`]: the
//! [`SeriesData`], or that the read stopped at its work limit).
//!
//! Storage only selects series and time ranges; merging, grouping and
//! aggregation happen above it in `kairosdb-query`, over the returned columns.

use std::sync::Arc;

use regex::Regex;

use crate::batch::Points;
pub use crate::partition::{Coverage, Shard};
use crate::series::{SeriesKey, Tags};

/// Inclusive time range in ms (spec §4.1: both ends inclusive; no end = `i64::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    pub fn new(start: i64, end: i64) -> TimeRange {
        TimeRange { start, end }
    }

    pub fn contains(&self, ts: i64) -> bool {
        ts >= self.start && ts <= self.end
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// One accepted value for a tag: an exact string or a regex that must match the
/// whole tag value (spec §4.2, `regex:` prefix).
#[derive(Clone, Debug)]
pub enum TagMatcher {
    Exact(String),
    /// Compiled anchored (`^(?:...)$`) so it matches the whole value, like Java's `matches()`.
    Regex(Regex),
}

impl TagMatcher {
    /// Builds a whole-value regex matcher; returns the regex error text on failure.
    pub fn regex(pattern: &str) -> Result<TagMatcher, String> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(TagMatcher::Regex)
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            TagMatcher::Exact(s) => s == value,
            TagMatcher::Regex(r) => r.is_match(value),
        }
    }
}

impl PartialEq for TagMatcher {
    fn eq(&self, other: &TagMatcher) -> bool {
        match (self, other) {
            (TagMatcher::Exact(a), TagMatcher::Exact(b)) => a == b,
            (TagMatcher::Regex(a), TagMatcher::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// Tag filter: AND across tag names, OR across the matchers of one name. A series
/// missing a filtered tag never matches. Empty filter = every series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TagFilter {
    pub tags: Vec<(String, Vec<TagMatcher>)>,
}

impl TagFilter {
    /// A filter from `(tag name, accepted values)` pairs, as written in tests and tools: a
    /// value starting with `regex:` becomes a [`TagMatcher::regex`] (the spec §4.2 syntax),
    /// any other an exact value.
    ///
    /// Panics when a `regex:` value does not compile: meant for patterns written in the
    /// code, not for input (the protocol layer parses requests and reports bad patterns).
    pub fn from_pairs(pairs: &[(&str, &[&str])]) -> TagFilter {
        let matcher = |v: &str| match v.strip_prefix("regex:") {
            Some(r) => TagMatcher::regex(r)
                .unwrap_or_else(|e| panic!("tag filter regex {r:?} does not compile: {e}")),
            None => TagMatcher::Exact(v.to_string()),
        };
        TagFilter {
            tags: pairs
                .iter()
                .map(|(name, values)| {
                    let matchers = values.iter().map(|v| matcher(v)).collect();
                    (name.to_string(), matchers)
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    pub fn matches(&self, tags: &Tags) -> bool {
        self.tags
            .iter()
            .all(|(name, matchers)| match tags.get(name) {
                Some(v) => matchers.iter().any(|m| m.matches(v)),
                None => false,
            })
    }
}

/// Read every series of `metric` matching `filter`, points within `range`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesQuery {
    pub metric: String,
    pub filter: TagFilter,
    pub range: TimeRange,
    /// Per-series point limit applied while reading, honouring `order` (spec §4.8). None = all.
    pub limit: Option<usize>,
    pub order: Order,
    /// Most points the whole read may return; above it the read stops with
    /// [`crate::StorageError::TooManyPoints`] instead of holding them all (bounds a
    /// query's memory). None = unlimited.
    pub max_points: Option<u64>,
    /// Count every point in `range` into [`SeriesData::in_range`], also those a `limit`
    /// leaves out. The `first`/`last` pushdown reads one point per series this way and
    /// still reports KairosDB's `sample_size` (every point the aggregation covers).
    /// `max_points` then applies to the counted points, as if they had all been read.
    pub count_in_range: bool,
    /// Most stored points the read may touch (decoded block points, head points, a few
    /// per series visited), also those outside `range`; above it the read stops and
    /// answers [`Read::OverWorkLimit`]. A server sets it to try a small read on its
    /// async worker and runs the read on a blocking thread when it stops. Backends whose
    /// reads wait on the network stop every read that sets it. None = unlimited.
    pub work_limit: Option<u64>,
    /// Only the series of these partitions (cluster mode: a worker answers for the
    /// partitions the router asked it for, see `partition.rs`). None = every series.
    pub shard: Option<Shard>,
    /// A hint: the leading aggregator needs only some points of each series ([`Fold`]).
    /// A backend may follow it or ignore it; the answer is the same either way.
    pub fold: Option<Fold>,
    /// Also answer each point's remaining time to live ([`SeriesData::ttl_secs`]), so a
    /// copy of the points (a cluster moving a partition) can keep it. Backends that do
    /// not keep a TTL per point answer none.
    pub with_ttl: bool,
}

/// The points a leading `max`, `min`, `first` or `last` aggregator needs of a series: in
/// each of its buckets, the first point (it stamps the bucket's result) and the one the
/// aggregator picks. A cluster worker keeps only those before sending a series to its
/// control node (`kairosdb_query::fold::reduce`): the aggregator answers the same over
/// them as over every point, so a backend may also ignore the hint. `in_range` still
/// counts every point. The buckets are the aggregator's own: its sampling, its origin
/// (`start`, aligned to the sampling unless `align_sampling` is off) and time zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Fold {
    pub keep: FoldKeep,
    pub unit: crate::TimeUnit,
    pub value: i64,
    pub start: i64,
    pub align_sampling: bool,
    /// IANA id or fixed offset; None = UTC.
    pub time_zone: Option<String>,
}

/// Which point of a bucket a [`Fold`] keeps besides its first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldKeep {
    /// The largest value (`max`).
    Max,
    /// The smallest value (`min`).
    Min,
    /// Nothing more (`first`).
    First,
    /// The last point (`last`).
    Last,
    /// Not a point: the bucket's count, as one value at its first point's time (`count`;
    /// only where [`crate::Storage::folds_counts`] says the storage always does it).
    Count,
}

impl SeriesQuery {
    /// Every point of the series of `metric` matching `filter` in `range`, ascending, with
    /// no limits and no counting; set the other fields with struct-update syntax
    /// (`SeriesQuery { limit: Some(1), ..SeriesQuery::new(..) }`).
    pub fn new(metric: impl Into<String>, filter: TagFilter, range: TimeRange) -> SeriesQuery {
        SeriesQuery {
            metric: metric.into(),
            filter,
            range,
            limit: None,
            order: Order::Asc,
            max_points: None,
            count_in_range: false,
            work_limit: None,
            shard: None,
            fold: None,
            with_ttl: false,
        }
    }
}

/// Points of one series, ascending by timestamp (one value per timestamp: the last
/// one written wins), or descending when the query asked for `Order::Desc`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// Shared with the backend's own index where it has one: a read of a thousand
    /// series then copies no metric or tag strings.
    pub key: Arc<SeriesKey>,
    pub points: Points,
    /// Points of the series in the range: `points.len()`, or more when the query asked
    /// for [`SeriesQuery::count_in_range`] and a `limit` cut the read short.
    pub in_range: u64,
    /// Each point's remaining time to live in whole seconds, rounded up, beside
    /// `points`; 0 = it never expires. Empty when no point expires, or the query did not
    /// ask ([`SeriesQuery::with_ttl`]), or the backend does not keep a TTL per point (the
    /// embedded engine does; Cassandra and a cluster's control node answer none).
    pub ttl_secs: Vec<u32>,
}

impl SeriesData {
    /// A series read in full (`in_range` = the number of points).
    pub fn new(key: impl Into<Arc<SeriesKey>>, points: Points) -> SeriesData {
        let in_range = points.len() as u64;
        SeriesData {
            key: key.into(),
            points,
            in_range,
            ttl_secs: Vec::new(),
        }
    }
}

/// What a read returns when it does not fail.
///
/// Stopping at the work limit is not a failure, so it is not a `StorageError`: it only
/// happens to a read that set [`SeriesQuery::work_limit`], and its caller answers it by
/// reading again without the limit (on a thread that may block).
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// Every series that matched (in no particular order).
    Complete(Vec<SeriesData>),
    /// The read needs more work than its [`SeriesQuery::work_limit`] allows, or the
    /// backend cannot read without blocking. Nothing was read to the end; read again
    /// without the limit.
    OverWorkLimit,
    /// What a cluster could read: some partitions had no replica that answered, so their
    /// series are missing (cluster mode; other backends never answer this).
    Partial {
        series: Vec<SeriesData>,
        coverage: Coverage,
    },
}

impl Read {
    /// The series of a read that set no work limit.
    ///
    /// # Panics
    /// On [`Read::OverWorkLimit`]: a read without a work limit never stops at one.
    pub fn expect_complete(self) -> Vec<SeriesData> {
        match self {
            Read::Complete(series) => series,
            Read::OverWorkLimit => panic!("BUG: a read stopped at a work limit it did not set"),
            Read::Partial { .. } => panic!("BUG: a partial read where only complete ones occur"),
        }
    }
}

/// Delete every point of the matching series inside `range` (spec §1.8).
/// Series left without points disappear from name/tag listings.
#[derive(Clone, Debug, PartialEq)]
pub struct DeleteRequest {
    pub metric: String,
    pub filter: TagFilter,
    pub range: TimeRange,
    /// Only the series of these partitions (cluster mode: a worker drops the partitions
    /// that moved away, see `partition.rs`). None = every matching series.
    pub shard: Option<Shard>,
    /// Only series with no tag besides the filter's (a tag filter alone also matches
    /// series with more tags): the telemetry API deletes one record's point so.
    pub exact: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_reads_regex_prefixes() {
        let f = TagFilter::from_pairs(&[("host", &["a", "regex:b.*"]), ("dc", &["x"])]);
        let tags = |host: &str, dc: &str| Tags::from_pairs([("host", host), ("dc", dc)]);
        assert!(f.matches(&tags("a", "x")));
        assert!(f.matches(&tags("bcd", "x")));
        assert!(
            !f.matches(&tags("ab", "x")),
            "a regex matches the whole value"
        );
        assert!(!f.matches(&tags("a", "y")));
        assert_eq!(f.tags[0].1[0], TagMatcher::Exact("a".into()));
        assert_eq!(f.tags[0].1[1], TagMatcher::regex("b.*").unwrap());
        assert!(TagFilter::from_pairs(&[]).is_empty());
    }

    #[test]
    #[should_panic(expected = "does not compile")]
    fn from_pairs_refuses_a_bad_regex() {
        TagFilter::from_pairs(&[("host", &["regex:("])]);
    }

    #[test]
    fn new_series_query_reads_everything_ascending() {
        let q = SeriesQuery::new("m", TagFilter::default(), TimeRange::new(1, 2));
        assert_eq!(
            q,
            SeriesQuery {
                metric: "m".into(),
                filter: TagFilter::default(),
                range: TimeRange::new(1, 2),
                limit: None,
                order: Order::Asc,
                max_points: None,
                count_in_range: false,
                work_limit: None,
                shard: None,
                fold: None,
                with_ttl: false,
            }
        );
    }
}

//! Tests of the raw query path over a fixed in-memory set of series.

use std::sync::Mutex;

use kairosdb_model::*;

use crate::{execute, Budget, Context, Executed, QueryError};

/// The aggregator a JSON object asks for, checked as a query's would be.
pub(crate) fn agg(json: &str) -> catalogue::AggregatorSpec {
    kairosdb_protocol::query::parse_aggregator(json)
        .unwrap_or_else(|e| panic!("{json} is a valid aggregator: {e}"))
}

/// The group-by a JSON object asks for, checked as a query's would be.
pub(crate) fn group_by(json: &str) -> catalogue::GroupBySpec {
    kairosdb_protocol::query::parse_group_by(json)
        .unwrap_or_else(|e| panic!("{json} is a valid group-by: {e}"))
}

/// `execute` over `storage` with the query `range`, no time zone, the wall clock at `now_ms`
/// and an unlimited budget.
pub(crate) fn execute_at(
    storage: &dyn Storage,
    range: TimeRange,
    now_ms: i64,
    q: &MetricQuery,
) -> Result<QueryResult, QueryError> {
    let budget = Budget::default();
    let ctx = Context {
        range,
        time_zone: None,
        now_ms,
        budget: &budget,
    };
    execute(storage, &ctx, q).map(Executed::expect_complete)
}

fn run(range: TimeRange, q: &MetricQuery) -> Result<QueryResult, QueryError> {
    execute_at(&store(), range, 0, q)
}

/// How [`Fixed`] answers a [`SeriesQuery`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Filter, range, `order`, `limit`, `count_in_range` and the `fold` hint applied, as
    /// a real storage (a cluster worker) does.
    Honour,
    /// Filter and range only: every point in range, ascending, `in_range` = points read
    /// (what `execute` would aggregate without the pushdown).
    FullRead,
}

/// The storage of every test of `execute` here: a [`NullStorage`] whose reads come from
/// a fixed list of series ([`FixedSeries`]), which logs every query it receives.
type Fixed = NullStorage<FixedSeries>;

/// Answers a [`SeriesQuery`] from fixed series.
struct FixedSeries {
    series: Vec<SeriesData>,
    mode: Mode,
    /// Fail with `TooManyPoints` above `SeriesQuery::max_points` (counting the points
    /// `in_range` reports, as the `count_in_range` contract asks).
    enforce_max_points: bool,
    /// Answers `Storage::folds_counts` (a cluster's yes).
    counts: bool,
    seen: Mutex<Vec<SeriesQuery>>,
}

/// A store over `series` that answers as a real storage does ([`Mode::Honour`]).
fn fixed(series: Vec<SeriesData>) -> Fixed {
    fixed_with(series, Mode::Honour)
}

fn fixed_with(series: Vec<SeriesData>, mode: Mode) -> Fixed {
    NullStorage::reading(FixedSeries {
        series,
        mode,
        enforce_max_points: false,
        counts: false,
        seen: Mutex::new(Vec::new()),
    })
}

/// [`Mode::Honour`] over a storage that folds counts, as a cluster does.
fn fixed_counting(series: Vec<SeriesData>) -> Fixed {
    NullStorage::reading(FixedSeries {
        counts: true,
        ..fixed_with(series, Mode::Honour).into_reader()
    })
}

/// [`Mode::Honour`], failing above a query's `max_points`.
fn fixed_enforcing(series: Vec<SeriesData>) -> Fixed {
    NullStorage::reading(FixedSeries {
        enforce_max_points: true,
        ..fixed_with(series, Mode::Honour).into_reader()
    })
}

impl FixedSeries {
    fn queries(&self) -> Vec<SeriesQuery> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// The one query `execute` sent.
    fn only_query(&self) -> SeriesQuery {
        let q = self.queries();
        assert_eq!(q.len(), 1, "expected exactly one storage read: {q:?}");
        q.into_iter().next().expect("one query")
    }
}

impl Reader for FixedSeries {
    fn folds_counts(&self) -> bool {
        self.counts
    }

    fn read(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        self.seen.lock().expect("not poisoned").push(q.clone());
        let mut out = Vec::new();
        let mut total = 0u64;
        for s in &self.series {
            if s.key.metric != q.metric || !q.filter.matches(&s.key.tags) {
                continue;
            }
            let mut idx: Vec<usize> = (0..s.points.len())
                .filter(|&i| q.range.contains(s.points.timestamps()[i]))
                .collect();
            let counted = idx.len() as u64;
            if self.mode == Mode::Honour {
                if q.order == Order::Desc {
                    idx.reverse();
                }
                if let Some(l) = q.limit {
                    idx.truncate(l);
                }
            }
            if idx.is_empty() {
                continue;
            }
            let mut d = SeriesData::new(s.key.clone(), s.points.pick(&idx));
            if self.mode == Mode::Honour && q.count_in_range {
                d.in_range = counted;
            }
            total += d.in_range;
            if let Some(limit) = q.max_points {
                if self.enforce_max_points && total > limit {
                    return Err(StorageError::TooManyPoints { limit });
                }
            }
            out.push(d);
        }
        // The push-down hint, followed as a cluster worker follows it.
        if let (Mode::Honour, Some(fold)) = (self.mode, &q.fold) {
            crate::fold::reduce(&mut out, fold).map_err(StorageError::InvalidInput)?;
        }
        Ok(Read::Complete(out))
    }
}

fn key(dt: DataType, host: &str) -> SeriesKey {
    SeriesKey::new("m", dt, Tags::from_pairs([("host", host), ("dc", "eu")]))
}

fn store() -> Fixed {
    fixed(vec![
        SeriesData::new(
            key(DataType::Long, "a"),
            Points::Long {
                ts: vec![1, 3, 5],
                values: vec![10, 30, 50],
            },
        ),
        SeriesData::new(
            key(DataType::Long, "b"),
            Points::Long {
                ts: vec![2, 3],
                values: vec![20, 5],
            },
        ),
        SeriesData::new(
            key(DataType::Double, "a"),
            Points::Double {
                ts: vec![3],
                values: vec![7.5],
            },
        ),
        SeriesData::new(
            key(DataType::String, "c"),
            Points::String {
                ts: vec![4],
                values: vec!["up".into()],
            },
        ),
    ])
}

fn mq() -> MetricQuery {
    MetricQuery {
        name: "m".into(),
        filter: TagFilter::default(),
        filter_text: Vec::new(),
        limit: None,
        order: Order::Asc,
        exclude_tags: false,
        alias: None,
        group_by_tags: Vec::new(),
        aggregators: Vec::new(),
        group_bys: Vec::new(),
    }
}

#[test]
fn raw_read_splits_number_and_text_and_merges_with_value_tie_break() {
    let r = run(TimeRange::ALL, &mq()).unwrap();
    assert_eq!(r.sample_size, 7);
    assert_eq!(r.results.len(), 2);
    let num = &r.results[0];
    assert_eq!(num.group_by, vec![GroupByResult::Type(GroupType::Number)]);
    assert_eq!(num.ts, vec![1, 2, 3, 3, 3, 5]);
    assert_eq!(
        num.values,
        OutColumn::Number(vec![
            Num::Long(10),
            Num::Long(20),
            Num::Long(5),
            Num::Double(7.5),
            Num::Long(30),
            Num::Long(50)
        ])
    );
    let tags = num.tags.as_ref().unwrap();
    assert_eq!(tags.values("host"), vec!["a", "b"]);
    let text = &r.results[1];
    assert_eq!(text.group_by, vec![GroupByResult::Type(GroupType::Text)]);
    assert_eq!(text.values, OutColumn::Text(vec!["up".into()]));
}

#[test]
fn desc_order_and_limit_truncate_the_merged_group() {
    let mut q = mq();
    q.filter = TagFilter {
        tags: vec![(
            "host".into(),
            vec![TagMatcher::Exact("a".into()), TagMatcher::Exact("b".into())],
        )],
    };
    q.order = Order::Desc;
    q.limit = Some(3);
    q.exclude_tags = true;
    let r = run(TimeRange::ALL, &q).unwrap();
    let num = &r.results[0];
    assert!(num.tags.is_none());
    assert_eq!(num.ts, vec![5, 3, 3]);
    assert_eq!(
        num.values,
        OutColumn::Number(vec![Num::Long(50), Num::Long(30), Num::Double(7.5)])
    );
}

#[test]
fn single_type_groups_keep_their_column_type() {
    let mut q = mq();
    q.filter = TagFilter {
        tags: vec![("host".into(), vec![TagMatcher::regex("[ab]").unwrap()])],
    };
    let r = run(TimeRange::new(1, 2), &q).unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].values, OutColumn::Long(vec![10, 20]));
}

#[test]
fn tag_group_by_orders_groups_and_reports_group_objects() {
    let mut q = mq();
    q.group_by_tags = vec!["host".into()];
    let r = run(TimeRange::ALL, &q).unwrap();
    let groups: Vec<_> = r
        .results
        .iter()
        .map(|g| match &g.group_by[0] {
            GroupByResult::Tag { group, .. } => (group[0].1.clone(), g.ts.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("a".to_string(), vec![1, 3, 3, 5]),
            ("b".to_string(), vec![2, 3]),
            ("c".to_string(), vec![4])
        ]
    );
    assert_eq!(
        r.results[2].group_by[1],
        GroupByResult::Type(GroupType::Text)
    );
}

#[test]
fn no_match_gives_no_results() {
    let mut q = mq();
    q.name = "other".into();
    let r = run(TimeRange::ALL, &q).unwrap();
    assert_eq!(r.sample_size, 0);
    assert!(r.results.is_empty());
}

mod aggregators;
mod group_bys;
mod pushdown;
mod range_vectors;

//! Per-aggregator vectors of spec §5.2 (KairosDB's `*AggregatorTest` classes), plus the
//! pipeline rules of §4.4 step 7: type-group skipping, chaining in JSON order, `gaps`
//! followed by a numeric aggregator. Also home of the helpers the other test modules use
//! (stream builders, a one-aggregator runner, civil-date timestamps, a recording storage).
//!
//! Mixed string/number streams of the Java tests cannot be built here: groups are split by
//! type before aggregation (§4.4 step 4) and a column holds numbers or strings, so those
//! vectors are checked on their number half and their text half separately.

use std::fmt::Debug;
use std::sync::Arc;

use kairosdb_model::*;

use super::agg;

use super::{execute_at, fixed, Fixed};
use crate::aggregate::{Aggregator, GroupInfo, Stream};
use crate::{Budget, Context, QueryError, Stop};

// ---------------------------------------------------------------------------------------
// Helpers shared with `range_vectors` and `group_bys`.

/// Milliseconds of a civil date-time in `tz` (an IANA id or "UTC").
pub(super) fn at_in(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    zoned(tz, y, mo, d, h, mi).timestamp().as_millisecond()
}

/// Milliseconds of a UTC civil date-time.
pub(super) fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    at_in("UTC", y, mo, d, h, mi)
}

pub(super) fn zoned(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> jiff::Zoned {
    let zone = jiff::tz::TimeZone::get(tz).expect("known zone");
    jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(zone)
        .expect("valid civil time")
}

/// Every instant from `from` (inclusive) while before `until`, stepping by `step` in the
/// zone of `from` (so `1.month()` and `1.day()` are calendar steps).
pub(super) fn every(from: &jiff::Zoned, until: &jiff::Zoned, step: jiff::Span) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = from.clone();
    while t < *until {
        out.push(t.timestamp().as_millisecond());
        t = t.checked_add(step).expect("in range");
    }
    out
}

pub(super) fn longs(points: &[(i64, i64)]) -> Stream {
    Stream {
        ts: points.iter().map(|p| p.0).collect(),
        values: OutColumn::Long(points.iter().map(|p| p.1).collect()),
        group_type: GroupType::Number,
    }
}

pub(super) fn doubles(points: &[(i64, f64)]) -> Stream {
    Stream {
        ts: points.iter().map(|p| p.0).collect(),
        values: OutColumn::Double(points.iter().map(|p| p.1).collect()),
        group_type: GroupType::Number,
    }
}

/// A number group merged from long and double series.
pub(super) fn mixed(points: &[(i64, Num)]) -> Stream {
    Stream {
        ts: points.iter().map(|p| p.0).collect(),
        values: OutColumn::Number(points.iter().map(|p| p.1).collect()),
        group_type: GroupType::Number,
    }
}

pub(super) fn texts(points: &[(i64, &str)]) -> Stream {
    Stream {
        ts: points.iter().map(|p| p.0).collect(),
        values: OutColumn::Text(points.iter().map(|p| p.1.to_string()).collect()),
        group_type: GroupType::Text,
    }
}

/// Long points of value 1 at `ts` ("sum" then counts points, as in `RangeAggregatorTest`).
pub(super) fn ones(ts: &[i64]) -> Stream {
    Stream {
        ts: ts.to_vec(),
        values: OutColumn::Long(vec![1; ts.len()]),
        group_type: GroupType::Number,
    }
}

/// `(ts, doubleValue)` of every point; panics on strings and nulls.
pub(super) fn pairs(s: &Stream) -> Vec<(i64, f64)> {
    nullable(s)
        .into_iter()
        .map(|(t, v)| (t, v.expect("no null point")))
        .collect()
}

/// `(ts, doubleValue or None for a null point)`; panics on strings.
pub(super) fn nullable(s: &Stream) -> Vec<(i64, Option<f64>)> {
    let values: Vec<Option<f64>> = match &s.values {
        OutColumn::Long(v) => v.iter().map(|&x| Some(x as f64)).collect(),
        OutColumn::Double(v) => v.iter().map(|&x| Some(x)).collect(),
        OutColumn::Number(v) => v
            .iter()
            .map(|x| match *x {
                Num::Long(l) => Some(l as f64),
                Num::Double(d) => Some(d),
                Num::Null => None,
            })
            .collect(),
        other => panic!("not a number column: {other:?}"),
    };
    assert_eq!(s.ts.len(), values.len(), "BUG: column length");
    s.ts.iter().copied().zip(values).collect()
}

/// `(ts, string)` of a text column.
pub(super) fn strings(s: &Stream) -> Vec<(i64, String)> {
    match &s.values {
        OutColumn::Text(v) => s.ts.iter().copied().zip(v.iter().cloned()).collect(),
        other => panic!("not a text column: {other:?}"),
    }
}

pub(super) fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

/// Same timestamps, values within `tolerance`.
pub(super) fn assert_pairs_close(actual: &[(i64, f64)], expected: &[(i64, f64)], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a.0, e.0, "{actual:?} vs {expected:?}");
        assert_close(a.1, e.1, tolerance);
    }
}

/// The message of a run-time failure (`QueryError::Failed`), to compare with KairosDB's;
/// any other outcome reads "not a failure: …", which no expected message equals.
fn failure<T: Debug>(r: Result<T, QueryError>) -> String {
    match r {
        Err(QueryError::Failed(m)) => m,
        other => format!("not a failure: {other:?}"),
    }
}

/// Storage double: answers queries from fixed series and records every written batch.
pub(super) type Recorder = Fixed;

/// A [`Recorder`] over `series`.
pub(super) fn recorder(series: Vec<SeriesData>) -> Recorder {
    fixed(series).recording()
}

/// The series points written to `storage`, in order.
pub(super) fn written(storage: &Recorder) -> Vec<SeriesPoints> {
    storage
        .written()
        .into_iter()
        .flat_map(|b| b.series)
        .collect()
}

/// The request-wide inputs of one aggregator run: query range (its start is the default
/// origin `start_time`), query `time_zone` and the wall clock that caps `gaps`.
#[derive(Clone, Copy)]
pub(super) struct Q {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) tz: Option<&'static str>,
    pub(super) now: i64,
}

impl Q {
    /// Start 0 (KairosDB's default `start_time` in the unit tests), no end, UTC.
    pub(super) fn new() -> Q {
        Q {
            start: 0,
            end: i64::MAX,
            tz: None,
            now: i64::MAX,
        }
    }

    pub(super) fn range(start: i64, end: i64) -> Q {
        Q {
            start,
            end,
            ..Q::new()
        }
    }

    pub(super) fn tz(self, tz: &'static str) -> Q {
        Q {
            tz: Some(tz),
            ..self
        }
    }

    /// Applies the aggregators in order as `execute` does (skipping those that do not
    /// accept the current group type), over an empty group of metric `group`.
    pub(super) fn chain(&self, aggregators: &[&str], s: Stream) -> Result<Stream, QueryError> {
        let tags = GroupTags::default();
        let info = GroupInfo {
            metric: "group",
            tags: &tags,
            group_by_tags: &[],
        };
        self.chain_with(aggregators, s, &recorder(Vec::new()), &info)
    }

    pub(super) fn chain_with(
        &self,
        aggregators: &[&str],
        mut s: Stream,
        storage: &dyn Storage,
        info: &GroupInfo,
    ) -> Result<Stream, QueryError> {
        let budget = Budget::default();
        let ctx = Context {
            range: TimeRange::new(self.start, self.end),
            time_zone: self.tz,
            now_ms: self.now,
            budget: &budget,
        };
        for json in aggregators {
            let spec = kairosdb_protocol::query::parse_aggregator(json)
                .map_err(|e| QueryError::Invalid(e.message().to_owned()))?;
            let a = Aggregator::new(&spec, &ctx)?;
            if a.accepts(s.group_type) {
                s = a
                    .apply(s, &ctx, storage, info)
                    .map_err(Stop::into_failure)?;
            }
        }
        Ok(s)
    }

    pub(super) fn run(&self, aggregator: &str, s: Stream) -> Result<Stream, QueryError> {
        self.chain(&[aggregator], s)
    }
}

/// Runs one aggregator with [`Q::new`] and expects success.
pub(super) fn run(aggregator: &str, s: Stream) -> Stream {
    Q::new().run(aggregator, s).expect("aggregator succeeds")
}

/// The points of `AggregatorTest.test_longValues` (and its double and mixed twins).
fn long_points() -> Stream {
    longs(&[(1, 10), (1, 20), (1, 3), (2, 1), (2, 3), (2, 5), (3, 25)])
}

fn double_points() -> Stream {
    doubles(&[
        (1, 10.0),
        (1, 20.3),
        (1, 3.0),
        (2, 1.0),
        (2, 3.2),
        (2, 5.0),
        (3, 25.1),
    ])
}

/// The double points with 3 and 1 as longs.
const MIXED_POINTS: [(i64, Num); 7] = [
    (1, Num::Double(10.0)),
    (1, Num::Double(20.3)),
    (1, Num::Long(3)),
    (2, Num::Long(1)),
    (2, Num::Double(3.2)),
    (2, Num::Double(5.0)),
    (3, Num::Double(25.1)),
];

fn mixed_points() -> Stream {
    mixed(&MIXED_POINTS)
}

fn empty_numbers() -> Stream {
    longs(&[])
}

// ---------------------------------------------------------------------------------------
// sum, avg, count, min, max

#[test]
fn sum_of_longs_doubles_and_mixed() {
    let out = run(r#"{"name":"sum"}"#, long_points());
    assert_eq!(out.ts, vec![1, 2, 3]);
    assert_eq!(out.values, OutColumn::Double(vec![33.0, 9.0, 25.0]));
    assert_eq!(out.group_type, GroupType::Number);

    let out = run(r#"{"name":"sum"}"#, double_points());
    assert_eq!(pairs(&out), vec![(1, 33.3), (2, 9.2), (3, 25.1)]);

    let out = run(r#"{"name":"sum"}"#, mixed_points());
    assert_eq!(pairs(&out), vec![(1, 33.3), (2, 9.2), (3, 25.1)]);
}

#[test]
fn sum_adds_in_stream_order() {
    // MetricsResourceTest: 5 + 5.1 + 10 + 10.1 = 30.200000000000003 (not 30.2).
    let out = run(
        r#"{"name":"sum"}"#,
        doubles(&[(1, 5.0), (1, 5.1), (1, 10.0), (1, 10.1)]),
    );
    assert_eq!(pairs(&out), vec![(1, 30.200000000000003)]);
}

#[test]
fn sum_of_empty_group_is_empty() {
    let out = run(r#"{"name":"sum"}"#, empty_numbers());
    assert!(out.ts.is_empty());
    assert!(out.values.is_empty());
}

#[test]
fn avg_of_longs_doubles_mixed_and_legacy() {
    let out = run(r#"{"name":"avg"}"#, long_points());
    assert_eq!(out.values, OutColumn::Double(vec![11.0, 3.0, 25.0]));
    assert_eq!(out.ts, vec![1, 2, 3]);

    for s in [double_points(), mixed_points()] {
        let out = pairs(&run(r#"{"name":"avg"}"#, s));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], (1, 11.1));
        assert_eq!(out[1].0, 2);
        assert_close(out[1].1, 3.067, 1e-3);
        assert_eq!(out[2], (3, 25.1));
    }

    let legacy = longs(&[(1, 10), (1, 20), (1, 3), (1, 1), (1, 3), (1, 5), (1, 25)]);
    let out = pairs(&run(r#"{"name":"avg"}"#, legacy));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    assert_close(out[0].1, 9.571, 1e-3);
}

#[test]
fn count_of_longs_doubles_mixed_is_long() {
    for s in [long_points(), double_points(), mixed_points()] {
        let out = run(r#"{"name":"count"}"#, s);
        assert_eq!(out.ts, vec![1, 2, 3]);
        assert_eq!(out.values, OutColumn::Long(vec![3, 3, 1]));
        assert_eq!(out.group_type, GroupType::Number);
    }
}

#[test]
fn min_and_max() {
    let out = run(r#"{"name":"min"}"#, long_points());
    assert_eq!(out.values, OutColumn::Double(vec![3.0, 1.0, 25.0]));
    assert_eq!(out.ts, vec![1, 2, 3]);
    let out = run(r#"{"name":"min"}"#, double_points());
    assert_eq!(pairs(&out), vec![(1, 3.0), (2, 1.0), (3, 25.1)]);
    let out = run(r#"{"name":"min"}"#, mixed_points());
    assert_eq!(pairs(&out), vec![(1, 3.0), (2, 1.0), (3, 25.1)]);

    let out = run(r#"{"name":"max"}"#, long_points());
    assert_eq!(out.values, OutColumn::Double(vec![20.0, 5.0, 25.0]));
    let out = run(r#"{"name":"max"}"#, double_points());
    assert_eq!(pairs(&out), vec![(1, 20.3), (2, 5.0), (3, 25.1)]);
    let out = run(r#"{"name":"max"}"#, mixed_points());
    assert_eq!(pairs(&out), vec![(1, 20.3), (2, 5.0), (3, 25.1)]);
}

#[test]
fn max_with_negative_values() {
    use Num::{Double as D, Long as L};
    let s = mixed(&[
        (1, D(-10.0)),
        (1, D(-20.3)),
        (1, L(-3)),
        (2, D(1.0)),
        (2, D(-3.2)),
        (2, D(-5.0)),
        (3, D(-25.1)),
        (3, D(-10.1)),
    ]);
    let out = run(r#"{"name":"max"}"#, s.clone());
    assert_eq!(pairs(&out), vec![(1, -3.0), (2, 1.0), (3, -10.1)]);
    let out = run(r#"{"name":"min"}"#, s);
    assert_eq!(pairs(&out), vec![(1, -20.3), (2, -5.0), (3, -25.1)]);
}

// ---------------------------------------------------------------------------------------
// dev, percentile

#[test]
fn dev_of_ten_thousand_values() {
    let points: Vec<(i64, i64)> = (0..10_000).map(|i| (1, i)).collect();
    let out = pairs(&run(r#"{"name":"dev"}"#, longs(&points)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    assert_close(out[0].1, 2886.462, 0.44);
}

#[test]
fn dev_return_types() {
    // 1..10: sample standard deviation 3.02765 (integration test), mean 5.5.
    let points: Vec<(i64, i64)> = (1..=10).map(|i| (1, i)).collect();
    let dev = |json: &str| pairs(&run(json, longs(&points)))[0].1;
    let sd = dev(r#"{"name":"dev"}"#);
    assert_close(sd, 3.02765, 1e-5);
    assert_eq!(dev(r#"{"name":"dev","return_type":"value"}"#), sd);
    let pos = dev(r#"{"name":"dev","return_type":"pos_sd"}"#);
    assert_close(pos, 5.5 + sd, 1e-9);
    let neg = dev(r#"{"name":"dev","return_type":"neg_sd","dev_count":2}"#);
    assert_close(neg, 5.5 - 2.0 * sd, 1e-9);
}

#[test]
fn dev_of_single_point_is_zero() {
    let out = run(r#"{"name":"dev"}"#, longs(&[(1, 42), (2, 7)]));
    assert_eq!(pairs(&out), vec![(1, 0.0), (2, 0.0)]);
}

/// `PercentileAggregatorTest.getActualPercentile`.
fn expected_percentile(p: f64, values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let pos = p * (n as f64 + 1.0);
    if pos < 1.0 {
        return v[0];
    }
    if pos >= n as f64 {
        return v[n - 1];
    }
    let lower = v[pos as usize - 1];
    let upper = v[pos as usize];
    lower + (pos - pos.floor()) * (upper - lower)
}

/// Deterministic values in [0, 1) (xorshift64*), standing in for Java's `Random`.
fn random_values(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn percentile_is_exact() {
    // KairosDB samples 1028 values and its tests allow 10 %; the spec asks for exact.
    for (seed, n) in [(1u64, 10usize), (2, 100), (3, 10_000)] {
        let values = random_values(seed, n);
        let d: Vec<(i64, f64)> = values.iter().map(|&v| (1, v)).collect();
        let l: Vec<(i64, i64)> = values.iter().map(|&v| (1, (v * 1e9) as i64)).collect();
        let m: Vec<(i64, Num)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if i % 2 == 0 {
                    (1, Num::Long((v * 1e9) as i64))
                } else {
                    (1, Num::Double(v * 1e9))
                }
            })
            .collect();
        for (kind, s) in [
            ("doubles", doubles(&d)),
            ("longs", longs(&l)),
            ("mixed", mixed(&m)),
        ] {
            let values: Vec<f64> = pairs(&s).into_iter().map(|p| p.1).collect();
            for p in [0.75, 0.90, 0.95, 0.98, 0.999] {
                let json = format!(r#"{{"name":"percentile","percentile":{p}}}"#);
                let out = pairs(&run(&json, s.clone()));
                assert_eq!(
                    out,
                    vec![(1, expected_percentile(p, &values))],
                    "{kind} p {p} n {n}"
                );
            }
        }
    }
}

#[test]
fn percentile_edges_pick_smallest_and_largest() {
    let s = || longs(&[(1, 5), (1, 1), (1, 3)]);
    // pos = 0.1 · 4 < 1 → smallest; pos = 0.9 · 4 ≥ 3 → largest; 0.5 · 4 = 2 → v[1].
    assert_eq!(
        pairs(&run(r#"{"name":"percentile","percentile":0.1}"#, s())),
        vec![(1, 1.0)]
    );
    assert_eq!(
        pairs(&run(r#"{"name":"percentile","percentile":0.9}"#, s())),
        vec![(1, 5.0)]
    );
    assert_eq!(
        pairs(&run(r#"{"name":"percentile","percentile":0.5}"#, s())),
        vec![(1, 3.0)]
    );
    // 0.6 · 4 = 2.4 → 3 + 0.4 · (5 − 3).
    let out = pairs(&run(r#"{"name":"percentile","percentile":0.6}"#, s()));
    assert_close(out[0].1, 3.8, 1e-12);
}

#[test]
fn percentile_outside_zero_one_fails_at_run_time() {
    for (p, text) in [
        ("5.0", "5.0 is not in [0..1]"),
        ("1.2", "1.2 is not in [0..1]"),
        ("-2", "-2.0 is not in [0..1]"),
        ("1.00001", "1.00001 is not in [0..1]"),
    ] {
        let json = format!(r#"{{"name":"percentile","percentile":{p}}}"#);
        let r = Q::new().run(&json, longs(&[(1, 1), (1, 2)]));
        assert_eq!(failure(r), text, "{p}");
    }
}

// ---------------------------------------------------------------------------------------
// first, last

#[test]
fn first_keeps_the_first_point_and_its_type() {
    use Num::{Double as D, Long as L};
    let out = run(r#"{"name":"first"}"#, long_points());
    assert_eq!(out.ts, vec![1, 2, 3]);
    assert_eq!(out.values, OutColumn::Long(vec![10, 1, 25]));

    let out = run(r#"{"name":"first"}"#, double_points());
    assert_eq!(out.values, OutColumn::Double(vec![10.0, 1.0, 25.1]));

    // The mixed points and a fourth bucket.
    let s = mixed(&[&MIXED_POINTS[..], &[(4, D(23.4))]].concat());
    let out = run(r#"{"name":"first"}"#, s);
    assert_eq!(out.ts, vec![1, 2, 3, 4]);
    assert_eq!(
        out.values,
        OutColumn::Number(vec![D(10.0), L(1), D(25.1), D(23.4)])
    );
}

#[test]
fn first_and_last_of_strings() {
    let s = || {
        texts(&[
            (1, "a"),
            (1, "b"),
            (1, "c"),
            (2, "d"),
            (2, "e"),
            (2, "f"),
            (3, "g"),
        ])
    };
    let out = run(r#"{"name":"first"}"#, s());
    assert_eq!(out.group_type, GroupType::Text);
    assert_eq!(
        strings(&out),
        vec![(1, "a".into()), (2, "d".into()), (3, "g".into())]
    );
    let out = run(r#"{"name":"last"}"#, s());
    assert_eq!(out.group_type, GroupType::Text);
    assert_eq!(
        strings(&out),
        vec![(1, "c".into()), (2, "f".into()), (3, "g".into())]
    );
}

#[test]
fn last_keeps_the_last_point() {
    let out = run(r#"{"name":"last"}"#, long_points());
    assert_eq!(out.ts, vec![1, 2, 3]);
    assert_eq!(out.values, OutColumn::Long(vec![3, 5, 25]));

    let out = run(r#"{"name":"last"}"#, double_points());
    assert_eq!(out.values, OutColumn::Double(vec![3.0, 5.0, 25.1]));

    let legacy = longs(&[(1, 10), (1, 20), (1, 3), (1, 1), (1, 3), (1, 5), (1, 25)]);
    let out = run(r#"{"name":"last"}"#, legacy);
    assert_eq!((out.ts, out.values), (vec![1], OutColumn::Long(vec![25])));
}

/// `first` or `last` (`name`) in 5 ms buckets, with the `extra` properties, over points at
/// 0..=3 (first 11, last 3) and 5..=8 (first 1, last 25).
fn every_5_ms(name: &str, extra: &str) -> Vec<(i64, f64)> {
    let json =
        format!(r#"{{"name":"{name}","sampling":{{"value":5,"unit":"MILLISECONDS"}}{extra}}}"#);
    let s = longs(&[
        (0, 11),
        (1, 10),
        (2, 20),
        (3, 3),
        (5, 1),
        (6, 3),
        (7, 5),
        (8, 25),
    ]);
    pairs(&run(&json, s))
}

#[test]
fn last_with_align_start_time() {
    let out = every_5_ms("last", r#","align_start_time":true"#);
    assert_eq!(out, vec![(0, 3.0), (5, 25.0)]);
}

#[test]
fn last_without_alignment_keeps_its_own_time() {
    let out = every_5_ms("last", r#","align_start_time":false"#);
    assert_eq!(out, vec![(3, 3.0), (8, 25.0)]);
}

#[test]
fn last_with_align_end_time() {
    let out = every_5_ms("last", r#","align_end_time":true"#);
    assert_eq!(out, vec![(5, 3.0), (10, 25.0)]);
}

#[test]
fn align_start_time_wins_over_align_end_time() {
    let out = every_5_ms("last", r#","align_end_time":true,"align_start_time":true"#);
    assert_eq!(out, vec![(0, 3.0), (5, 25.0)]);
}

#[test]
fn first_with_alignments() {
    assert_eq!(every_5_ms("first", ""), vec![(0, 11.0), (5, 1.0)]);
    let out = every_5_ms("first", r#","align_start_time":true"#);
    assert_eq!(out, vec![(0, 11.0), (5, 1.0)]);
    let out = every_5_ms("first", r#","align_end_time":true"#);
    assert_eq!(out, vec![(5, 11.0), (10, 1.0)]);
}

// ---------------------------------------------------------------------------------------
// least_squares

#[test]
fn least_squares_one_and_two_points_pass_unchanged() {
    let json = r#"{"name":"least_squares","sampling":{"value":1,"unit":"HOURS"}}"#;
    assert_eq!(pairs(&run(json, longs(&[(1, 10)]))), vec![(1, 10.0)]);
    assert_eq!(
        pairs(&run(json, longs(&[(1, 10), (2, 20)]))),
        vec![(1, 10.0), (2, 20.0)]
    );
    assert!(run(json, empty_numbers()).ts.is_empty());
}

#[test]
fn least_squares_line_through_a_bucket() {
    let json = r#"{"name":"least_squares","sampling":{"value":1,"unit":"HOURS"}}"#;
    // Ten points on a line: the ends of the fitted line are the ends of the data.
    let points: Vec<(i64, i64)> = (1..=10).map(|i| (i * 1000, i)).collect();
    let out = pairs(&run(json, longs(&points)));
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].0, out[1].0), (1000, 10_000));
    assert_close(out[0].1, 1.0, 1e-9);
    assert_close(out[1].1, 10.0, 1e-9);
    // Off-line points: y = 0, 3, 0 at x = 0, 1, 2 → slope 0, intercept 1.
    let out = pairs(&run(json, longs(&[(0, 0), (1, 3), (2, 0)])));
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].0, out[1].0), (0, 2));
    assert_close(out[0].1, 1.0, 1e-12);
    assert_close(out[1].1, 1.0, 1e-12);
}

// ---------------------------------------------------------------------------------------
// gaps

fn gaps(q: Q, extra: &str, s: Stream) -> Vec<(i64, Option<f64>)> {
    let json = format!(r#"{{"name":"gaps"{extra}}}"#);
    nullable(&q.run(&json, s).expect("gaps succeeds"))
}

#[test]
fn gaps_one_gap_gives_one_null() {
    let s = longs(&[
        (0, 1),
        (1, 10),
        (1, 20),
        (1, 3),
        (2, 1),
        (2, 3),
        (4, 5),
        (5, 25),
    ]);
    assert_eq!(
        gaps(Q::range(0, 5), "", s),
        vec![
            (0, Some(1.0)),
            (1, Some(10.0)),
            (1, Some(20.0)),
            (1, Some(3.0)),
            (2, Some(1.0)),
            (2, Some(3.0)),
            (3, None),
            (4, Some(5.0)),
            (5, Some(25.0)),
        ]
    );
}

#[test]
fn gaps_several_gaps() {
    let s = longs(&[(1, 10), (4, 5), (5, 25)]);
    assert_eq!(
        gaps(Q::range(1, 5), "", s),
        vec![
            (1, Some(10.0)),
            (2, None),
            (3, None),
            (4, Some(5.0)),
            (5, Some(25.0)),
        ]
    );
}

#[test]
fn gaps_before_and_after_the_data() {
    let s = longs(&[(3, 10), (4, 5), (5, 25)]);
    assert_eq!(
        gaps(Q::range(1, 7), "", s),
        vec![
            (1, None),
            (2, None),
            (3, Some(10.0)),
            (4, Some(5.0)),
            (5, Some(25.0)),
            (6, None),
            (7, None),
        ]
    );
}

#[test]
fn gaps_with_trim_stay_within_the_data() {
    let s = longs(&[(3, 10), (5, 25)]);
    assert_eq!(
        gaps(Q::range(1, 7), r#","trim":true"#, s),
        vec![(3, Some(10.0)), (4, None), (5, Some(25.0))]
    );
}

#[test]
fn gaps_one_second_aligned_end_inclusive() {
    let extra = r#","align_start_time":true,"sampling":{"value":1,"unit":"SECONDS"}"#;
    for end in [3000, 3001] {
        let s = longs(&[(0, 0), (1000, 1), (2000, 2)]);
        assert_eq!(
            gaps(Q::range(0, end), extra, s),
            vec![
                (0, Some(0.0)),
                (1000, Some(1.0)),
                (2000, Some(2.0)),
                (3000, None)
            ],
            "end {end}"
        );
    }
    let s = longs(&[(0, 0), (1000, 1), (2000, 2), (3000, 3)]);
    assert_eq!(
        gaps(Q::range(0, 3000), extra, s),
        vec![
            (0, Some(0.0)),
            (1000, Some(1.0)),
            (2000, Some(2.0)),
            (3000, Some(3.0))
        ]
    );
}

#[test]
fn gaps_stop_at_now() {
    // `setEndTime` caps the end at the wall clock.
    let q = Q {
        now: 4,
        ..Q::range(1, 7)
    };
    assert_eq!(
        gaps(q, "", longs(&[(1, 10)])),
        vec![(1, Some(10.0)), (2, None), (3, None), (4, None)]
    );
}

#[test]
fn gaps_end_time_and_start_time_properties() {
    // `start_time`/`end_time` override the query range for gaps.
    let out = gaps(
        Q::range(0, 100),
        r#","start_time":2,"end_time":4"#,
        longs(&[(3, 7)]),
    );
    assert_eq!(out, vec![(2, None), (3, Some(7.0)), (4, None)]);
}

#[test]
fn gaps_on_text_marks_null_strings() {
    let out = Q::range(1, 3)
        .run(r#"{"name":"gaps"}"#, texts(&[(1, "a"), (3, "c")]))
        .unwrap();
    assert_eq!(out.group_type, GroupType::Text);
    assert_eq!(out.ts, vec![1, 2, 3]);
    assert_eq!(
        out.values,
        OutColumn::TextOrNull(vec![Some("a".into()), None, Some("c".into())])
    );
}

#[test]
fn gaps_on_an_empty_group_marks_every_bucket() {
    // KairosDB's exhaustive iterator runs while `next <= end` even without data, and the
    // empty group of a query that matched nothing goes through the aggregators (§4.4).
    let out = gaps(Q::range(1, 3), "", empty_numbers());
    assert_eq!(out, vec![(1, None), (2, None), (3, None)]);
}

const GAPS_CHAINED: &str =
    "No aggregator can be chained after org.kairosdb.core.aggregator.DataGapsMarkingAggregator";

#[test]
fn numeric_aggregator_after_gaps_fails_with_kairosdb_text() {
    for next in [
        r#"{"name":"sum"}"#,
        r#"{"name":"avg","sampling":{"value":1,"unit":"SECONDS"}}"#,
        r#"{"name":"rate"}"#,
        r#"{"name":"diff"}"#,
        r#"{"name":"scale","factor":2}"#,
        r#"{"name":"filter","filter_op":"lt","threshold":0}"#,
    ] {
        let r = Q::range(1, 5).chain(&[r#"{"name":"gaps"}"#, next], longs(&[(1, 10), (4, 5)]));
        assert_eq!(failure(r), GAPS_CHAINED, "{next}");
    }
}

#[test]
fn aggregator_after_gaps_without_nulls_is_fine() {
    let out = Q::range(1, 2)
        .chain(
            &[r#"{"name":"gaps"}"#, r#"{"name":"sum"}"#],
            longs(&[(1, 10), (2, 5)]),
        )
        .unwrap();
    assert_eq!(pairs(&out), vec![(1, 10.0), (2, 5.0)]);
}

// ---------------------------------------------------------------------------------------
// diff, rate, sampler

#[test]
fn diff_of_consecutive_points() {
    let diff = |p: &[(i64, i64)]| pairs(&run(r#"{"name":"diff"}"#, longs(p)));
    assert_eq!(
        diff(&[(1, 10), (2, 20), (3, 30), (4, 40)]),
        vec![(2, 10.0), (3, 10.0), (4, 10.0)]
    );
    assert_eq!(
        diff(&[(1, 10), (2, 10), (3, 5), (4, 20)]),
        vec![(2, 0.0), (3, -5.0), (4, 15.0)]
    );
    assert_eq!(
        diff(&[(1, 10), (1, 15), (2, 5), (2, 20), (3, 30)]),
        vec![(1, 5.0), (2, -10.0), (2, 15.0), (3, 10.0)]
    );
    assert!(diff(&[(1, 10)]).is_empty());
    let out = run(r#"{"name":"diff"}"#, longs(&[(1, 1), (2, 3)]));
    assert_eq!(out.values, OutColumn::Double(vec![2.0]));
}

#[test]
fn rate_per_millisecond() {
    let rate = |p: &[(i64, i64)]| pairs(&run(r#"{"name":"rate"}"#, longs(p)));
    assert_eq!(
        rate(&[(1, 10), (2, 20), (3, 30), (4, 40)]),
        vec![(2, 10.0), (3, 10.0), (4, 10.0)]
    );
    assert_eq!(
        rate(&[(1, 10), (3, 20), (5, 30), (7, 40)]),
        vec![(3, 5.0), (5, 5.0), (7, 5.0)]
    );
    assert_eq!(
        rate(&[(1, 10), (2, 10), (3, 5), (4, 20)]),
        vec![(2, 0.0), (3, -5.0), (4, 15.0)]
    );
}

#[test]
fn rate_with_sampling_or_unit() {
    let s = || longs(&[(0, 0), (1000, 5), (3000, 25)]);
    let per_second = [(1000, 5.0), (3000, 10.0)];
    assert_pairs_close(
        &pairs(&run(r#"{"name":"rate","unit":"SECONDS"}"#, s())),
        &per_second,
        1e-9,
    );
    assert_pairs_close(
        &pairs(&run(
            r#"{"name":"rate","sampling":{"value":1,"unit":"SECONDS"}}"#,
            s(),
        )),
        &per_second,
        1e-9,
    );
    assert_pairs_close(
        &pairs(&run(
            r#"{"name":"rate","sampling":{"value":2,"unit":"MINUTES"}}"#,
            s(),
        )),
        &[(1000, 600.0), (3000, 1200.0)],
        1e-9,
    );
}

#[test]
fn rate_per_calendar_month_uses_the_month_length() {
    // One per day, per month of February 2024 (29 days) → 29.
    let s = longs(&[(at(2024, 2, 1, 0, 0), 0), (at(2024, 2, 2, 0, 0), 1)]);
    let out = pairs(&run(r#"{"name":"rate","unit":"MONTHS"}"#, s));
    assert_pairs_close(&out, &[(at(2024, 2, 2, 0, 0), 29.0)], 1e-9);
}

#[test]
fn rate_per_day_across_dst_in_the_query_zone() {
    // 2024-03-10 in New York lasts 23 hours.
    let t0 = at_in("America/New_York", 2024, 3, 10, 0, 0);
    let s = longs(&[(t0, 0), (t0 + 3_600_000, 1)]);
    let out = Q::new()
        .tz("America/New_York")
        .run(r#"{"name":"rate","unit":"DAYS"}"#, s)
        .unwrap();
    assert_pairs_close(&pairs(&out), &[(t0 + 3_600_000, 23.0)], 1e-9);
}

#[test]
fn rate_with_equal_timestamps_fails() {
    let r = Q::new().run(r#"{"name":"rate"}"#, longs(&[(1, 10), (2, 20), (2, 30)]));
    assert_eq!(
        failure(r),
        "The rate aggregator cannot compute rate for data points with the same time stamp.  You must precede rate with another aggregator."
    );
}

#[test]
fn rate_in_descending_order() {
    // Negative time deltas cancel negative value deltas.
    let out = run(
        r#"{"name":"rate"}"#,
        longs(&[(7, 40), (5, 30), (3, 20), (1, 10)]),
    );
    assert_eq!(pairs(&out), vec![(5, 5.0), (3, 5.0), (1, 5.0)]);
}

#[test]
fn sampler_vectors() {
    let sampler = |p: &[(i64, i64)]| pairs(&run(r#"{"name":"sampler"}"#, longs(p)));
    assert_eq!(
        sampler(&[(1, 10), (2, 20), (3, 30), (4, 40)]),
        vec![(2, 20.0), (3, 30.0), (4, 40.0)]
    );
    assert_eq!(
        sampler(&[(1, 10), (2, 10), (3, 5), (4, 20)]),
        vec![(2, 10.0), (3, 5.0), (4, 20.0)]
    );
    assert_eq!(
        sampler(&[(1, 10), (2, 10), (4, 10), (6, 20)]),
        vec![(2, 10.0), (4, 5.0), (6, 10.0)]
    );
    // With a unit: value per (unit) of elapsed time.
    let out = pairs(&run(
        r#"{"name":"sampler","unit":"SECONDS"}"#,
        longs(&[(0, 1), (500, 10)]),
    ));
    assert_pairs_close(&out, &[(500, 20.0)], 1e-9);
}

#[test]
fn sampler_with_equal_timestamps_fails() {
    let r = Q::new().run(r#"{"name":"sampler"}"#, longs(&[(1, 10), (1, 20)]));
    assert_eq!(
        failure(r),
        "The sampler aggregator cannot compute rate for data points with the same time stamp.  You must precede sampler with another aggregator."
    );
}

// ---------------------------------------------------------------------------------------
// div, scale, sma

#[test]
fn div_divides() {
    let out = run(
        r#"{"name":"div","divisor":4}"#,
        mixed(&[(1, Num::Long(10)), (2, Num::Double(5.0))]),
    );
    assert_eq!(out.values, OutColumn::Double(vec![2.5, 1.25]));
    assert_eq!(out.ts, vec![1, 2]);
}

#[test]
fn scale_vectors() {
    let out = run(
        r#"{"name":"scale","factor":2.5}"#,
        longs(&[(1, 10), (1, 3), (2, 5), (3, 25)]),
    );
    assert_eq!(out.ts, vec![1, 1, 2, 3]);
    assert_eq!(out.values, OutColumn::Double(vec![25.0, 7.5, 12.5, 62.5]));
    // KairosDB's test reads longValue: truncated.
    let truncated: Vec<i64> = pairs(&out).iter().map(|p| p.1 as i64).collect();
    assert_eq!(truncated, vec![25, 7, 12, 62]);

    let out = pairs(&run(
        r#"{"name":"scale","factor":1.5}"#,
        doubles(&[(1, 10.0), (1, 20.3), (2, 3.2)]),
    ));
    assert_eq!(out[0], (1, 15.0));
    assert_close(out[1].1, 30.45, 1e-9);
    assert_close(out[2].1, 4.8, 1e-9);

    let out = run(
        r#"{"name":"scale","factor":0.5}"#,
        mixed(&[(1, Num::Double(10.0)), (2, Num::Long(1))]),
    );
    assert_eq!(pairs(&out), vec![(1, 5.0), (2, 0.5)]);

    // No factor: 0.
    let out = run(r#"{"name":"scale"}"#, longs(&[(1, 10)]));
    assert_eq!(pairs(&out), vec![(1, 0.0)]);
}

#[test]
fn sma_of_longs() {
    let out = run(
        r#"{"name":"sma","size":3}"#,
        longs(&[(1, 10), (1, 20), (1, 3), (2, 1), (2, 5), (3, 6)]),
    );
    assert_eq!(out.ts, vec![1, 2, 2, 3]);
    assert_eq!(out.values, OutColumn::Double(vec![11.0, 8.0, 3.0, 4.0]));
}

#[test]
fn sma_of_doubles_and_mixed() {
    use Num::{Double as D, Long as L};
    let d = doubles(&[(1, 10.0), (1, 20.3), (1, 3.0), (2, 1.0), (2, 5.2), (3, 6.0)]);
    let m = mixed(&[
        (1, D(10.0)),
        (1, D(20.3)),
        (1, L(3)),
        (2, L(1)),
        (2, D(5.2)),
        (3, D(6.0)),
    ]);
    for s in [d, m] {
        let out = pairs(&run(r#"{"name":"sma","size":3}"#, s));
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], (1, 11.1));
        assert_eq!(out[1], (2, 8.1));
        assert_eq!(out[2].0, 2);
        assert_close(out[2].1, 3.067, 1e-3);
        assert_eq!(out[3].0, 3);
        assert_close(out[3].1, 4.067, 1e-3);
    }
}

#[test]
fn sma_shorter_than_the_window_is_empty() {
    let out = run(r#"{"name":"sma","size":3}"#, longs(&[(1, 10), (2, 20)]));
    assert!(out.ts.is_empty());
    let out = run(r#"{"name":"sma","size":3}"#, longs(&[(1, 10)]));
    assert!(out.ts.is_empty());
}

#[test]
fn sma_without_size_fails() {
    for json in [r#"{"name":"sma"}"#, r#"{"name":"sma","size":0}"#] {
        let err = Q::new().run(json, longs(&[(1, 1)])).unwrap_err();
        assert!(matches!(err, QueryError::Failed(_)), "{json}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------
// filter

fn filter_points() -> Stream {
    longs(&[(1, 10), (2, 20), (3, 15), (4, 30), (5, 10), (6, 25)])
}

fn filter(op: &str, threshold: &str, s: Stream) -> Stream {
    run(
        &format!(r#"{{"name":"filter","filter_op":"{op}","threshold":{threshold}}}"#),
        s,
    )
}

#[test]
fn filter_lt() {
    let s = longs(&[(1, -10), (2, -20), (3, 30), (4, 40), (5, -50)]);
    let out = filter("lt", "0.0", s);
    assert_eq!(
        (out.ts, out.values),
        (vec![3, 4], OutColumn::Long(vec![30, 40]))
    );
    let s = longs(&[(1, -10), (2, -20), (3, -30), (4, -40), (5, -50)]);
    assert!(filter("lt", "0.0", s).ts.is_empty());
}

#[test]
fn filter_every_operation() {
    let kept = |op: &str, threshold: &str| {
        let out = filter(op, threshold, filter_points());
        assert_eq!(out.group_type, GroupType::Number);
        pairs(&out)
            .into_iter()
            .map(|(t, v)| (t, v as i64))
            .collect::<Vec<_>>()
    };
    assert_eq!(kept("lte", "15"), vec![(2, 20), (4, 30), (6, 25)]);
    assert_eq!(kept("gt", "20"), vec![(1, 10), (2, 20), (3, 15), (5, 10)]);
    assert_eq!(kept("gte", "20"), vec![(1, 10), (3, 15), (5, 10)]);
    assert_eq!(
        kept("equal", "10"),
        vec![(2, 20), (3, 15), (4, 30), (6, 25)]
    );
    assert_eq!(kept("ne", "10"), vec![(1, 10), (5, 10)]);
    assert_eq!(kept("lt", "20"), vec![(2, 20), (4, 30), (6, 25)]);
    // Case-insensitive operation names.
    assert_eq!(kept("GTE", "20"), vec![(1, 10), (3, 15), (5, 10)]);
}

#[test]
fn filter_keeps_the_column_type() {
    let out = filter("gt", "20", doubles(&[(1, 10.5), (2, 30.5)]));
    assert_eq!(out.values, OutColumn::Double(vec![10.5]));
}

#[test]
fn filter_string_threshold_on_strings() {
    let s = texts(&[
        (1, "alfa"),
        (2, "beta"),
        (3, "gamma"),
        (4, "delta"),
        (5, "alfa"),
        (6, "beta"),
    ]);
    let out = filter("equal", r#""alfa""#, s.clone());
    assert_eq!(out.group_type, GroupType::Text);
    assert_eq!(
        strings(&out),
        vec![
            (2, "beta".into()),
            (3, "gamma".into()),
            (4, "delta".into()),
            (6, "beta".into())
        ]
    );
    // Java `String.compareTo`: "beta" < "c" ≤ "delta" < "gamma".
    let out = filter("lt", r#""c""#, s);
    assert_eq!(
        strings(&out),
        vec![(3, "gamma".into()), (4, "delta".into())]
    );
}

#[test]
fn filter_numeric_threshold_on_mixed_data() {
    // `test_FilteringMixedTypes` [alfa, beta, 10, delta, 20.0, beta], gte 13.43543 →
    // only (3, 10): the string points are removed by a numeric threshold.
    let numbers = mixed(&[(3, Num::Long(10)), (5, Num::Double(20.0))]);
    let out = filter("gte", "13.43543", numbers);
    assert_eq!(pairs(&out), vec![(3, 10.0)]);
    let words = texts(&[(1, "alfa"), (2, "beta"), (4, "delta"), (6, "beta")]);
    assert!(filter("gte", "13.43543", words).ts.is_empty());
}

#[test]
fn filter_string_threshold_on_mixed_data() {
    // `test_FilteringMixedTypesStringThreshold`: equal "beta" → (1, alfa), (4, delta):
    // the numeric points are removed by a string threshold.
    let numbers = mixed(&[(3, Num::Long(10)), (5, Num::Double(20.0))]);
    assert!(filter("equal", r#""beta""#, numbers).ts.is_empty());
    let words = texts(&[(1, "alfa"), (2, "beta"), (4, "delta"), (6, "beta")]);
    let out = filter("equal", r#""beta""#, words);
    assert_eq!(strings(&out), vec![(1, "alfa".into()), (4, "delta".into())]);
}

#[test]
fn filter_numeric_string_threshold_compares_numbers() {
    // Documented deviation in `aggregate.rs` (`Threshold::Text`): KairosDB removes every
    // numeric point for a string threshold; here "20" also compares as the number 20.
    let out = filter("gte", r#""20""#, filter_points());
    assert_eq!(pairs(&out), vec![(1, 10.0), (3, 15.0), (5, 10.0)]);
}

#[test]
fn filter_orders_negative_zero_as_java_does() {
    // `compare(dp.getDoubleValue(), threshold)` boxes to Double: -0.0 < 0.0.
    let out = filter("lt", "0", doubles(&[(1, -0.0), (2, 0.0)]));
    assert_eq!(out.ts, vec![2]);
    let out = filter("equal", "0", doubles(&[(1, -0.0), (2, 0.0)]));
    assert_eq!(out.ts, vec![1]);
}

#[test]
fn filter_with_string_threshold_drops_gaps_nulls() {
    // `FilterOperation.filterData`: a null point is neither a string nor compared as a
    // number under a string threshold, so it is "not type compatible" and removed; only a
    // numeric threshold reads its value (and throws the gaps error).
    let chain = [
        r#"{"name":"gaps"}"#,
        r#"{"name":"filter","filter_op":"equal","threshold":"a"}"#,
    ];
    let out = Q::range(1, 3)
        .chain(&chain, texts(&[(1, "a"), (3, "c")]))
        .unwrap();
    assert_eq!(out.ts, vec![3]);
    let out = Q::range(1, 3)
        .chain(&chain, longs(&[(1, 10), (3, 30)]))
        .unwrap();
    assert!(out.ts.is_empty());
}

#[test]
fn filter_with_numeric_threshold_after_gaps_fails() {
    let r = Q::range(1, 3).chain(
        &[
            r#"{"name":"gaps"}"#,
            r#"{"name":"filter","filter_op":"equal","threshold":10}"#,
        ],
        longs(&[(1, 10), (3, 30)]),
    );
    assert_eq!(failure(r), GAPS_CHAINED);
}

// ---------------------------------------------------------------------------------------
// trim

#[test]
fn trim_vectors() {
    let one = || longs(&[(1, 10)]);
    let two = || longs(&[(1, 10), (2, 20)]);
    let three = || longs(&[(1, 10), (2, 20), (3, 30)]);
    let trim =
        |how: &str, s: Stream| pairs(&run(&format!(r#"{{"name":"trim","trim":"{how}"}}"#), s));
    assert!(trim("first", one()).is_empty());
    assert_eq!(trim("first", two()), vec![(2, 20.0)]);
    assert_eq!(trim("first", three()), vec![(2, 20.0), (3, 30.0)]);
    assert!(trim("last", one()).is_empty());
    assert_eq!(trim("last", two()), vec![(1, 10.0)]);
    assert_eq!(trim("last", three()), vec![(1, 10.0), (2, 20.0)]);
    assert!(trim("both", one()).is_empty());
    assert!(trim("both", two()).is_empty());
    assert_eq!(trim("both", three()), vec![(2, 20.0)]);
    assert_eq!(trim("BOTH", three()), vec![(2, 20.0)]);
    // Missing `trim`: no-op.
    assert_eq!(pairs(&run(r#"{"name":"trim"}"#, three())).len(), 3);
}

#[test]
fn trim_keeps_types() {
    let out = run(
        r#"{"name":"trim","trim":"first"}"#,
        longs(&[(1, 10), (2, 20)]),
    );
    assert_eq!(out.values, OutColumn::Long(vec![20]));
}

// ---------------------------------------------------------------------------------------
// save_as

fn saved(
    json: &str,
    tags: &[(&str, &[&str])],
    group_by_tags: &[&str],
) -> (Stream, Vec<SeriesPoints>) {
    // The group's tag map, as the union of one single-tag series per (name, value).
    let tags = GroupTags::new(
        tags.iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (*k, *v)))
            .map(|tag| {
                Arc::new(SeriesKey::new(
                    "group",
                    DataType::Long,
                    Tags::from_pairs([tag]),
                ))
            })
            .collect(),
    );
    let group_by_tags: Vec<String> = group_by_tags.iter().map(|t| t.to_string()).collect();
    let info = GroupInfo {
        metric: "group",
        tags: &tags,
        group_by_tags: &group_by_tags,
    };
    let storage = recorder(Vec::new());
    let out = Q::new()
        .chain_with(&[json], longs(&[(1, 10), (2, 20)]), &storage, &info)
        .expect("save_as succeeds");
    (out, written(&storage))
}

fn saved_points() -> Points {
    Points::Long {
        ts: vec![1, 2],
        values: vec![10, 20],
    }
}

#[test]
fn save_as_with_ttl() {
    let (out, written) = saved(
        r#"{"name":"save_as","metric_name":"testTtl","ttl":42}"#,
        &[],
        &[],
    );
    assert_eq!(out, longs(&[(1, 10), (2, 20)]), "pass-through");
    assert_eq!(
        written,
        vec![SeriesPoints {
            key: SeriesKey::new(
                "testTtl",
                DataType::Long,
                Tags::from_pairs([("saved_from", "group")])
            ),
            ttl_secs: 42,
            points: saved_points(),
        }]
    );
}

#[test]
fn save_as_without_ttl() {
    let (_, written) = saved(r#"{"name":"save_as","metric_name":"testTtl"}"#, &[], &[]);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].ttl_secs, 0);
    assert_eq!(written[0].points, saved_points());
}

#[test]
fn save_as_without_saved_from() {
    let (_, written) = saved(
        r#"{"name":"save_as","metric_name":"testTtl","tags":{"sweet_tag":"value"},"add_saved_from":false}"#,
        &[("host", &["tag_should_not_be_there"])],
        &[],
    );
    assert_eq!(written.len(), 1);
    assert_eq!(
        written[0].key.tags,
        Tags::from_pairs([("sweet_tag", "value")])
    );
}

#[test]
fn save_as_adds_tags_and_saved_from() {
    let (_, written) = saved(
        r#"{"name":"save_as","metric_name":"testTtl","tags":{"sweet_tag":"value"}}"#,
        &[("host", &["tag_should_not_be_there"])],
        &[],
    );
    assert_eq!(written.len(), 1);
    assert_eq!(
        written[0].key.tags,
        Tags::from_pairs([("saved_from", "group"), ("sweet_tag", "value")])
    );
}

#[test]
fn save_as_keeps_single_valued_group_by_tags() {
    let (_, written) = saved(
        r#"{"name":"save_as","metric_name":"testTtl","ttl":42}"#,
        &[
            ("host", &["bob"]),
            ("some_tag", &["tag_should_not_be_there"]),
            (
                "host2",
                &["host2_tag", "wont show up because there are two"],
            ),
        ],
        &["host", "host2"],
    );
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].ttl_secs, 42);
    assert_eq!(
        written[0].key.tags,
        Tags::from_pairs([("host", "bob"), ("saved_from", "group")])
    );
    assert_eq!(written[0].points, saved_points());
}

#[test]
fn save_as_in_a_query_with_tag_group_by() {
    let key = |host: &str| {
        SeriesKey::new(
            "m",
            DataType::Long,
            Tags::from_pairs([("host", host), ("dc", "eu")]),
        )
    };
    let storage = recorder(vec![
        SeriesData::new(
            key("a"),
            Points::Long {
                ts: vec![1, 2],
                values: vec![1, 2],
            },
        ),
        SeriesData::new(
            key("b"),
            Points::Long {
                ts: vec![1],
                values: vec![5],
            },
        ),
    ]);
    let mut q = super::mq();
    q.group_by_tags = vec!["host".into()];
    q.aggregators = vec![
        agg(r#"{"name":"sum","sampling":{"value":1,"unit":"HOURS"}}"#),
        agg(r#"{"name":"save_as","metric_name":"m.hourly"}"#),
    ];
    let r = execute_at(&storage, TimeRange::new(0, 100), 100, &q).unwrap();
    assert_eq!(r.results.len(), 2);
    let written = written(&storage);
    let got: Vec<(Tags, Points)> = written
        .into_iter()
        .map(|s| (s.key.tags, s.points))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Tags::from_pairs([("host", "a"), ("saved_from", "m")]),
                Points::Double {
                    ts: vec![1],
                    values: vec![3.0]
                }
            ),
            (
                Tags::from_pairs([("host", "b"), ("saved_from", "m")]),
                Points::Double {
                    ts: vec![1],
                    values: vec![5.0]
                }
            ),
        ]
    );
}

#[test]
fn save_as_works_on_text_and_skips_nulls() {
    let storage = recorder(Vec::new());
    let tags = GroupTags::default();
    let info = GroupInfo {
        metric: "group",
        tags: &tags,
        group_by_tags: &[],
    };
    let out = Q::range(1, 3)
        .chain_with(
            &[
                r#"{"name":"gaps"}"#,
                r#"{"name":"save_as","metric_name":"copy"}"#,
            ],
            texts(&[(1, "a"), (3, "c")]),
            &storage,
            &info,
        )
        .unwrap();
    assert_eq!(out.ts, vec![1, 2, 3]);
    let written = written(&storage);
    assert_eq!(written.len(), 1);
    assert_eq!(
        written[0].points,
        Points::String {
            ts: vec![1, 3],
            values: vec!["a".into(), "c".into()]
        }
    );
}

// ---------------------------------------------------------------------------------------
// score

fn score(thresholds: &str, order: &str, values: &[f64]) -> Vec<f64> {
    let points: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(r#","order":"{order}""#)
    };
    let json = format!(r#"{{"name":"score","thresholds":{thresholds}{order}}}"#);
    let out = run(&json, doubles(&points));
    assert_eq!(out.group_type, GroupType::Number);
    pairs(&out).into_iter().map(|p| p.1).collect()
}

#[test]
fn score_ascending_and_descending() {
    let two = r#"[{"value":0,"boundary":"inferior"},{"value":10,"boundary":"inferior"}]"#;
    assert_eq!(score(two, "", &[-1.0, 1.0, 11.0]), vec![0.0, 1.0, 2.0]);
    assert_eq!(
        score(two, "ascending", &[-1.0, 1.0, 11.0]),
        vec![0.0, 1.0, 2.0]
    );
    assert_eq!(
        score(two, "descending", &[-1.0, 1.0, 11.0]),
        vec![2.0, 1.0, 0.0]
    );
}

#[test]
fn score_boundaries() {
    let inferior = r#"[{"value":0,"boundary":"inferior"}]"#;
    assert_eq!(score(inferior, "ascending", &[0.0]), vec![1.0]);
    assert_eq!(score(inferior, "descending", &[0.0]), vec![0.0]);
    let superior = r#"[{"value":0,"boundary":"superior"}]"#;
    assert_eq!(score(superior, "ascending", &[0.0]), vec![0.0]);
    assert_eq!(score(superior, "descending", &[0.0]), vec![1.0]);
    // Default boundary: superior.
    assert_eq!(score(r#"[{"value":0}]"#, "", &[0.0]), vec![0.0]);
}

#[test]
fn score_sorts_thresholds() {
    let unsorted = r#"[{"value":3,"boundary":"inferior"},{"value":1,"boundary":"inferior"},{"value":2,"boundary":"inferior"}]"#;
    assert_eq!(
        score(unsorted, "", &[0.5, 1.5, 2.5, 3.5, 2.0]),
        vec![0.0, 1.0, 2.0, 3.0, 2.0]
    );
    // Equal values: inferior before superior, so a value equal to both scores 1.
    let tie = r#"[{"value":5,"boundary":"superior"},{"value":5,"boundary":"inferior"}]"#;
    assert_eq!(score(tie, "", &[5.0, 6.0, 4.0]), vec![1.0, 2.0, 0.0]);
}

// ---------------------------------------------------------------------------------------
// Pipeline rules (§4.4 step 7, §5.0)

#[test]
fn accepts_follows_the_registry() {
    let budget = Budget::default();
    let ctx = Context {
        range: TimeRange::new(0, 10),
        time_zone: None,
        now_ms: 10,
        budget: &budget,
    };
    let any = [
        r#"{"name":"count"}"#,
        r#"{"name":"first"}"#,
        r#"{"name":"gaps"}"#,
        r#"{"name":"last"}"#,
        r#"{"name":"filter","filter_op":"equal","threshold":"x"}"#,
        r#"{"name":"save_as","metric_name":"x"}"#,
        r#"{"name":"trim","trim":"first"}"#,
    ];
    let numeric = [
        r#"{"name":"avg"}"#,
        r#"{"name":"dev"}"#,
        r#"{"name":"diff"}"#,
        r#"{"name":"div","divisor":2}"#,
        r#"{"name":"least_squares"}"#,
        r#"{"name":"max"}"#,
        r#"{"name":"min"}"#,
        r#"{"name":"percentile","percentile":0.5}"#,
        r#"{"name":"rate"}"#,
        r#"{"name":"sampler"}"#,
        r#"{"name":"scale","factor":2}"#,
        r#"{"name":"score","thresholds":[]}"#,
        r#"{"name":"sma","size":2}"#,
        r#"{"name":"sum"}"#,
    ];
    for json in any {
        let a = Aggregator::new(&agg(json), &ctx).unwrap();
        assert!(
            a.accepts(GroupType::Number) && a.accepts(GroupType::Text),
            "{json}"
        );
    }
    for json in numeric {
        let a = Aggregator::new(&agg(json), &ctx).unwrap();
        assert!(
            a.accepts(GroupType::Number) && !a.accepts(GroupType::Text),
            "{json}"
        );
    }
}

#[test]
fn numeric_aggregators_leave_text_groups_untouched() {
    let s = texts(&[(1, "a"), (1, "b"), (2, "c")]);
    for json in [
        r#"{"name":"sum"}"#,
        r#"{"name":"avg","sampling":{"value":1,"unit":"HOURS"}}"#,
        r#"{"name":"rate"}"#,
        r#"{"name":"scale","factor":2}"#,
        r#"{"name":"percentile","percentile":5.0}"#,
    ] {
        assert_eq!(run(json, s.clone()), s, "{json}");
    }
}

#[test]
fn any_type_aggregators_work_on_text() {
    let s = || texts(&[(1, "a"), (1, "b"), (2, "c"), (5, "d")]);
    let out = run(r#"{"name":"count"}"#, s());
    assert_eq!(out.values, OutColumn::Long(vec![2, 1, 1]));
    assert_eq!(out.ts, vec![1, 2, 5]);
    assert_eq!(out.group_type, GroupType::Number, "count outputs numbers");

    let out = run(
        r#"{"name":"first","sampling":{"value":2,"unit":"MILLISECONDS"}}"#,
        s(),
    );
    assert_eq!(
        strings(&out),
        vec![(1, "a".into()), (2, "c".into()), (5, "d".into())]
    );
    let out = run(
        r#"{"name":"last","sampling":{"value":2,"unit":"MILLISECONDS"}}"#,
        s(),
    );
    assert_eq!(
        strings(&out),
        vec![(1, "b".into()), (2, "c".into()), (5, "d".into())]
    );

    let out = run(r#"{"name":"filter","filter_op":"ne","threshold":"b"}"#, s());
    assert_eq!(strings(&out), vec![(1, "b".into())]);

    let out = run(r#"{"name":"trim","trim":"both"}"#, s());
    assert_eq!(strings(&out), vec![(1, "b".into()), (2, "c".into())]);
}

#[test]
fn count_then_numeric_aggregator_applies_to_a_former_text_group() {
    // After `count` the group type is `number`, so `sum` runs.
    let out = Q::new()
        .chain(
            &[
                r#"{"name":"count"}"#,
                r#"{"name":"sum","sampling":{"value":10,"unit":"MILLISECONDS"}}"#,
            ],
            texts(&[(1, "a"), (1, "b"), (2, "c")]),
        )
        .unwrap();
    assert_eq!(pairs(&out), vec![(1, 3.0)]);
}

#[test]
fn aggregators_chain_in_json_order() {
    // Values t + 1 at t = 0..=8. sum(4 ms): 10, 26, 9 at 0, 4, 8; avg(1 year) → 15.
    let points: Vec<(i64, i64)> = (0..=8).map(|t| (t, t + 1)).collect();
    let sum4 = r#"{"name":"sum","sampling":{"value":4,"unit":"MILLISECONDS"}}"#;
    let avg_year = r#"{"name":"avg","sampling":{"value":1,"unit":"YEARS"}}"#;
    let out = Q::new().chain(&[sum4, avg_year], longs(&points)).unwrap();
    assert_eq!(pairs(&out), vec![(0, 15.0)]);
    // The other order: avg 5 then sum 5.
    let out = Q::new().chain(&[avg_year, sum4], longs(&points)).unwrap();
    assert_eq!(pairs(&out), vec![(0, 5.0)]);
}

/// `execute` of `aggregators` over one long series of metric `m` (`host=a`), the wall
/// clock at 100.
fn execute_over_one_series(
    points: &[(i64, i64)],
    range: TimeRange,
    aggregators: &[&str],
) -> Result<QueryResult, QueryError> {
    let store = fixed(vec![SeriesData::new(
        SeriesKey::new("m", DataType::Long, Tags::from_pairs([("host", "a")])),
        Points::Long {
            ts: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        },
    )]);
    let mut q = super::mq();
    q.aggregators = aggregators.iter().map(|a| agg(a)).collect();
    execute_at(&store, range, 100, &q)
}

#[test]
fn execute_chains_aggregators_in_json_order() {
    let points: Vec<(i64, i64)> = (0..=8).map(|t| (t, t + 1)).collect();
    let r = execute_over_one_series(
        &points,
        TimeRange::new(0, 100),
        &[
            r#"{"name":"sum","sampling":{"value":4,"unit":"MILLISECONDS"}}"#,
            r#"{"name":"avg","sampling":{"value":1,"unit":"YEARS"}}"#,
        ],
    )
    .unwrap();
    assert_eq!(r.sample_size, 9);
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].ts, vec![0]);
    assert_eq!(r.results[0].values, OutColumn::Double(vec![15.0]));
}

#[test]
fn execute_gaps_then_sum_fails_with_kairosdb_text() {
    let r = execute_over_one_series(
        &[(1, 10), (4, 5)],
        TimeRange::new(0, 5),
        &[r#"{"name":"gaps"}"#, r#"{"name":"sum"}"#],
    );
    assert_eq!(failure(r), GAPS_CHAINED);
}

#[test]
fn execute_gaps_on_no_data_returns_nulls() {
    // KairosDB: no rows → one empty group (§4.4 step 4) → gaps marks every bucket → the
    // group is not empty any more and is returned (name, no tags, no group_by).
    let r = execute_over_one_series(&[], TimeRange::new(1, 3), &[r#"{"name":"gaps"}"#]).unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].ts, vec![1, 2, 3]);
    assert!(r.results[0].group_by.is_empty());
}

#[test]
fn percentile_over_five_fails_in_execute() {
    let r = execute_over_one_series(
        &[(1, 10), (2, 5)],
        TimeRange::new(0, 5),
        &[r#"{"name":"percentile","percentile":5.0}"#],
    );
    assert_eq!(failure(r), "5.0 is not in [0..1]");
}

/// `sum`, `avg`, `max` and `min` read a long column straight (`Range::fold_longs`): the
/// answer must be bit for bit the one of the same values as doubles, whose addition order
/// and rounding KairosDB's answers carry. Values past 2^53 round when read as doubles, so
/// any other way of adding them (as integers first) would show here.
#[test]
fn long_columns_fold_to_the_same_bits_as_their_doubles() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let points: Vec<(i64, i64)> = (0..5_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let big = (x as i64) >> (x % 40); // a spread of magnitudes up to 2^63
            (i / 7 * 1_000, big)
        })
        .collect();
    for name in ["sum", "avg", "max", "min"] {
        let spec = format!(r#"{{"name":"{name}","sampling":{{"value":3,"unit":"seconds"}}}}"#);
        let from_longs = run(&spec, longs(&points));
        let as_doubles: Vec<(i64, f64)> = points.iter().map(|&(t, v)| (t, v as f64)).collect();
        let from_doubles = run(&spec, doubles(&as_doubles));
        let bits = |s: &Stream| -> Vec<(i64, u64)> {
            pairs(s)
                .into_iter()
                .map(|(t, v)| (t, v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&from_longs), bits(&from_doubles), "{name}");
        assert!(!from_longs.ts.is_empty());
    }
}

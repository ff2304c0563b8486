//! The `first`/`last` pushdown of `execute`: a leading `first`/`last` whose sampling puts
//! the whole query range into one bucket reads one point per series (`limit: 1`, `Asc` or
//! `Desc`, `count_in_range`), and must answer exactly as a read of every point does. And
//! the merge shortcut: a leading `max`, `min` or `count` folds each series of a group on
//! its own, and must answer exactly as over the merged stream.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use kairosdb_model::*;

use super::{agg, group_by};

use super::{fixed_counting, fixed_enforcing, fixed_with, Fixed, Mode};
use crate::{execute, Budget, Context, Executed, QueryError};

fn run(
    store: &Fixed,
    range: TimeRange,
    time_zone: Option<&str>,
    budget: &Budget,
    q: &MetricQuery,
) -> Result<QueryResult, QueryError> {
    attempt(store, range, time_zone, budget, q).map(Executed::expect_complete)
}

/// [`run`], answering [`Executed::OverWorkLimit`] where the budget's work limit stops it.
fn attempt(
    store: &Fixed,
    range: TimeRange,
    time_zone: Option<&str>,
    budget: &Budget,
    q: &MetricQuery,
) -> Result<Executed, QueryError> {
    let ctx = Context {
        range,
        time_zone,
        now_ms: 1_000,
        budget,
    };
    execute(store, &ctx, q)
}

fn key(dt: DataType, host: &str) -> SeriesKey {
    SeriesKey::new("m", dt, Tags::from_pairs([("host", host)]))
}

/// 9 points in [0, 9] (-1 and 12 lie outside), 5 in [5, 14].
fn fixed_series() -> Vec<SeriesData> {
    vec![
        SeriesData::new(
            key(DataType::Long, "a"),
            Points::Long {
                ts: vec![1, 3, 5, 7, 12],
                values: vec![10, 30, 50, 70, 120],
            },
        ),
        SeriesData::new(
            key(DataType::Double, "b"),
            Points::Double {
                ts: vec![-1, 2, 3, 8],
                values: vec![-0.5, 2.5, 3.5, 8.5],
            },
        ),
        SeriesData::new(
            key(DataType::String, "c"),
            Points::String {
                ts: vec![4, 9],
                values: vec!["x".into(), "y".into()],
            },
        ),
        // Another metric: never read.
        SeriesData::new(
            SeriesKey::new("other", DataType::Long, Tags::from_pairs([("host", "a")])),
            Points::Long {
                ts: vec![6],
                values: vec![600],
            },
        ),
    ]
}

/// A query of metric `m` with `aggregators`, tags left out of the answer.
fn mq(aggregators: &[&str]) -> MetricQuery {
    MetricQuery {
        exclude_tags: true,
        aggregators: aggregators.iter().map(|a| agg(a)).collect(),
        ..super::mq()
    }
}

/// The storage read `execute` sends for `q` over `range` (unlimited budget).
fn read_of(range: TimeRange, q: &MetricQuery) -> (SeriesQuery, QueryResult) {
    let store = fixed_with(fixed_series(), Mode::Honour);
    let r = run(&store, range, None, &Budget::default(), q).expect("query runs");
    (store.only_query(), r)
}

fn expected_read(range: TimeRange, limit: Option<usize>, order: Order, count: bool) -> SeriesQuery {
    SeriesQuery {
        metric: "m".into(),
        filter: TagFilter::default(),
        range,
        limit,
        order,
        max_points: None,
        count_in_range: count,
        work_limit: None,
        shard: None,
        fold: None,
        with_ttl: false,
    }
}

fn group(ts: Vec<i64>, values: OutColumn, group_type: GroupType) -> ResultGroup {
    ResultGroup {
        name: "m".into(),
        alias: None,
        group_by: vec![GroupByResult::Type(group_type)],
        tags: None,
        ts,
        values,
    }
}

const R0_9: TimeRange = TimeRange { start: 0, end: 9 };
const R5_14: TimeRange = TimeRange { start: 5, end: 14 };
const LAST_10: &str =
    r#"{"name":"last","sampling":{"value":10,"unit":"milliseconds"},"align_sampling":false}"#;
const FIRST_10: &str =
    r#"{"name":"first","sampling":{"value":10,"unit":"milliseconds"},"align_sampling":false}"#;

/// The answer of a one-bucket `first` or `last` over [`fixed_series`] in [`R0_9`]: every
/// point in range counted, and the one point chosen in the number group and in the text
/// group.
fn edge_answer(number: (i64, Num), text: (i64, &str)) -> QueryResult {
    QueryResult {
        coverage: None,
        sample_size: 9,
        results: vec![
            group(
                vec![number.0],
                OutColumn::Number(vec![number.1]),
                GroupType::Number,
            ),
            group(
                vec![text.0],
                OutColumn::Text(vec![text.1.into()]),
                GroupType::Text,
            ),
        ],
    }
}

/// One point per series, newest first, every point in range counted.
fn pushed_last(range: TimeRange) -> SeriesQuery {
    expected_read(range, Some(1), Order::Desc, true)
}

/// Every point in range, as without the pushdown.
fn plain(range: TimeRange) -> SeriesQuery {
    expected_read(range, None, Order::Asc, false)
}

/// `read` without its fold hint, and which point the hint keeps (`fold.rs`).
fn unfolded(read: &SeriesQuery) -> (SeriesQuery, Option<FoldKeep>) {
    let keep = read.fold.as_ref().map(|f| f.keep);
    (
        SeriesQuery {
            fold: None,
            ..read.clone()
        },
        keep,
    )
}

#[test]
fn pushdown_last_over_one_bucket_reads_each_series_newest_point() {
    // Sampling = the range's length (0..=9 is 10 ms). Answer: each type group's last point.
    let (read, r) = read_of(R0_9, &mq(&[LAST_10]));
    assert_eq!(read, pushed_last(R0_9));
    assert_eq!(r, edge_answer((8, Num::Double(8.5)), (9, "y")));
}

#[test]
fn pushdown_first_over_one_bucket_reads_each_series_oldest_point() {
    let (read, r) = read_of(R0_9, &mq(&[FIRST_10]));
    assert_eq!(read, expected_read(R0_9, Some(1), Order::Asc, true));
    assert_eq!(r, edge_answer((1, Num::Long(10)), (4, "x")));
}

#[test]
fn pushdown_holds_for_a_bucket_wider_than_the_range() {
    // 1 day, unaligned.
    let (read, r) = read_of(
        R0_9,
        &mq(&[
            r#"{"name":"last","sampling":{"value":1,"unit":"days"},"align_sampling":false,"align_start_time":true}"#,
        ]),
    );
    assert_eq!(read, pushed_last(R0_9));
    assert_eq!(r.sample_size, 9);
    assert_eq!(r.results[0].ts, vec![0]);
    assert_eq!(
        r.results[0].values,
        OutColumn::Number(vec![Num::Double(8.5)])
    );
}

#[test]
fn several_buckets_read_every_point() {
    // 1 ms buckets over 10 ms.
    let (read, r) = read_of(
        R0_9,
        &mq(&[
            r#"{"name":"last","sampling":{"value":1,"unit":"milliseconds"},"align_sampling":false}"#,
        ]),
    );
    // Every point, with the hint that a worker may keep each bucket's first and last.
    assert_eq!(unfolded(&read), (plain(R0_9), Some(FoldKeep::Last)));
    assert_eq!(r.sample_size, 9);
    assert_eq!(r.results[0].ts, vec![1, 2, 3, 5, 7, 8]);

    // 9 ms buckets over a 10 ms range: point 9 falls into a second bucket.
    let (read, _) = read_of(
        R0_9,
        &mq(&[
            r#"{"name":"last","sampling":{"value":9,"unit":"milliseconds"},"align_sampling":false}"#,
        ]),
    );
    assert_eq!(unfolded(&read), (plain(R0_9), Some(FoldKeep::Last)));
}

#[test]
fn aligned_buckets_crossing_a_boundary_read_every_point() {
    // [5, 14] with 10 ms buckets aligned to the whole second (0, 10, ...) crosses 10.
    let (read, r) = read_of(
        R5_14,
        &mq(&[
            r#"{"name":"last","sampling":{"value":10,"unit":"milliseconds"},"align_sampling":true}"#,
        ]),
    );
    assert_eq!(unfolded(&read), (plain(R5_14), Some(FoldKeep::Last)));
    assert_eq!(r.sample_size, 5);
    assert_eq!(r.results[0].ts, vec![8, 12]);
}

#[test]
fn unaligned_buckets_from_the_range_start_are_one_bucket() {
    // [5, 14] with 10 ms buckets from 5.
    let (read, r) = read_of(R5_14, &mq(&[LAST_10]));
    assert_eq!(read, pushed_last(R5_14));
    assert_eq!(r.sample_size, 5);
    assert_eq!(r.results[0].ts, vec![12]);
    assert_eq!(r.results[0].values, OutColumn::Number(vec![Num::Long(120)]));
}

#[test]
fn align_sampling_defaults_to_true() {
    let (read, _) = read_of(
        R5_14,
        &mq(&[r#"{"name":"last","sampling":{"value":10,"unit":"milliseconds"}}"#]),
    );
    assert_eq!(unfolded(&read), (plain(R5_14), Some(FoldKeep::Last)));
}

#[test]
fn other_range_aggregators_and_raw_reads_read_every_point() {
    let folds = [
        ("max", Some(FoldKeep::Max)),
        ("min", Some(FoldKeep::Min)),
        ("count", None),
        ("sum", None),
        ("avg", None),
        ("gaps", None),
    ];
    for (other, fold) in folds {
        let json = format!(
            r#"{{"name":"{other}","sampling":{{"value":10,"unit":"milliseconds"}},"align_sampling":false}}"#
        );
        let (read, _) = read_of(R0_9, &mq(&[&json]));
        assert_eq!(unfolded(&read), (plain(R0_9), fold), "{other}");
    }
    let (read, r) = read_of(R0_9, &mq(&[]));
    assert_eq!(read, plain(R0_9));
    assert_eq!(r.sample_size, 9);
}

#[test]
fn first_or_last_pushes_down_only_when_first_in_the_chain() {
    for before in [
        r#"{"name":"scale","factor":2}"#,
        r#"{"name":"filter","filter_op":"lt","threshold":0}"#,
        r#"{"name":"last","sampling":{"value":1,"unit":"milliseconds"},"align_sampling":false}"#,
    ] {
        let (read, _) = read_of(R0_9, &mq(&[before, LAST_10]));
        // Only a leading `last` over several buckets carries the fold hint.
        let fold = before.contains("last").then_some(FoldKeep::Last);
        assert_eq!(unfolded(&read), (plain(R0_9), fold), "{before}");
    }
}

#[test]
fn a_pushed_down_first_or_last_may_be_followed_by_anything() {
    let (read, r) = read_of(R0_9, &mq(&[LAST_10, r#"{"name":"scale","factor":2}"#]));
    assert_eq!(read, pushed_last(R0_9));
    assert_eq!(r.results[0].values, OutColumn::Double(vec![17.0]));
}

#[test]
fn a_query_limit_keeps_the_query_own_read() {
    let mut q = mq(&[LAST_10]);
    q.limit = Some(2);
    let (read, r) = read_of(R0_9, &q);
    assert_eq!(read, expected_read(R0_9, Some(2), Order::Asc, false));
    // Series a gives 1, 3; b gives 2, 3; the merged group is cut to 1, 2 before `last`.
    assert_eq!(r.results[0].ts, vec![2]);
    assert_eq!(
        r.results[0].values,
        OutColumn::Number(vec![Num::Double(2.5)])
    );
}

#[test]
fn descending_order_keeps_the_query_own_read() {
    for aggregator in [LAST_10, FIRST_10] {
        let mut q = mq(&[aggregator]);
        q.order = Order::Desc;
        let (read, _) = read_of(R0_9, &q);
        assert_eq!(
            read,
            expected_read(R0_9, None, Order::Desc, false),
            "{aggregator}"
        );
    }
}

#[test]
fn value_time_and_bin_group_bys_read_every_point() {
    for g in [
        r#"{"name":"value","range_size":10}"#,
        r#"{"name":"time","range_size":{"value":2,"unit":"MILLISECONDS"},"group_count":2}"#,
        r#"{"name":"bin","bins":[5]}"#,
    ] {
        let mut q = mq(&[LAST_10]);
        q.group_bys = vec![group_by(g)];
        let (read, _) = read_of(R0_9, &q);
        assert_eq!(read, plain(R0_9), "{g}");
    }
}

#[test]
fn a_tag_group_by_keeps_the_pushdown_and_each_group_takes_its_last_point() {
    let mut q = mq(&[LAST_10]);
    q.group_by_tags = vec!["host".into()];
    let (read, r) = read_of(R0_9, &q);
    assert_eq!(read, pushed_last(R0_9));
    let got: Vec<(Vec<i64>, OutColumn)> = r
        .results
        .iter()
        .map(|g| (g.ts.clone(), g.values.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (vec![7], OutColumn::Long(vec![70])),
            (vec![8], OutColumn::Double(vec![8.5])),
            (vec![9], OutColumn::Text(vec!["y".into()])),
        ]
    );
    assert_eq!(r.sample_size, 9);
}

// ---------------------------------------------------------------------------------------
// Randomized: pushdown vs. full read.

fn random_series(rng: &mut StdRng) -> Vec<SeriesData> {
    let n = rng.gen_range(1..=5);
    let mut keys: Vec<SeriesKey> = Vec::new();
    while keys.len() < n {
        let host = ["a", "b", "c", "d", "e"][rng.gen_range(0..5)];
        let dt = match rng.gen_range(0..5) {
            0 | 1 => DataType::Long,
            2 | 3 => DataType::Double,
            _ => DataType::String,
        };
        let tags = if rng.gen_bool(0.3) {
            let dc = ["eu", "us"][rng.gen_range(0..2)];
            Tags::from_pairs([("host", host), ("dc", dc)])
        } else {
            Tags::from_pairs([("host", host)])
        };
        let k = SeriesKey::new("m", dt, tags);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| {
            let count = rng.gen_range(0..=12);
            // A coarse grid half the time: many equal timestamps across series.
            let grid = if rng.gen_bool(0.5) { 10 } else { 1 };
            let mut ts: Vec<i64> = (0..count)
                .map(|_| rng.gen_range(0..200 / grid) * grid)
                .collect();
            ts.sort_unstable();
            ts.dedup();
            let points = match k.data_type {
                DataType::Long => Points::Long {
                    values: ts.iter().map(|_| rng.gen_range(0..3)).collect(),
                    ts,
                },
                DataType::Double => Points::Double {
                    values: ts
                        .iter()
                        .map(|_| [0.0, 1.0, 1.5, 2.0][rng.gen_range(0..4)])
                        .collect(),
                    ts,
                },
                DataType::String => Points::String {
                    values: ts
                        .iter()
                        .map(|_| ["p", "q", "r"][rng.gen_range(0..3)].to_string())
                        .collect(),
                    ts,
                },
            };
            SeriesData::new(k, points)
        })
        .collect()
}

/// Random series, a query range over them and one of `zones`.
fn random_case(
    rng: &mut StdRng,
    zones: &[Option<&'static str>],
) -> (Vec<SeriesData>, TimeRange, Option<&'static str>) {
    let series = random_series(rng);
    let s = rng.gen_range(-10..=250);
    let e = rng.gen_range(s..=250);
    (
        series,
        TimeRange::new(s, e),
        zones[rng.gen_range(0..zones.len())],
    )
}

fn random_edge_aggregator(rng: &mut StdRng) -> String {
    let mut a = json!({ "name": if rng.gen_bool(0.5) { "first" } else { "last" } });
    match rng.gen_range(0..12) {
        0 => {} // no sampling: 1 ms
        1 => a["sampling"] = json!({"value": 1, "unit": "seconds"}),
        2 => a["sampling"] = json!({"value": 1, "unit": "minutes"}),
        3 => a["sampling"] = json!({"value": 1, "unit": "days"}),
        _ => a["sampling"] = json!({"value": rng.gen_range(1..=400), "unit": "milliseconds"}),
    }
    for flag in ["align_sampling", "align_start_time", "align_end_time"] {
        match rng.gen_range(0..3) {
            0 => {}
            1 => a[flag] = json!(true),
            _ => a[flag] = json!(false),
        }
    }
    // A bucket origin other than the query start, often after it (points before the
    // origin fall into buckets whose start is after them).
    if rng.gen_bool(0.4) {
        a["start_time"] = json!(rng.gen_range(-50..450));
    }
    a.to_string()
}

const FOLLOWERS: &[&str] = &[
    r#"{"name":"scale","factor":2}"#,
    r#"{"name":"count","sampling":{"value":1,"unit":"minutes"},"align_sampling":false}"#,
    r#"{"name":"count"}"#,
    r#"{"name":"filter","filter_op":"gt","threshold":1}"#,
    r#"{"name":"sum","sampling":{"value":50,"unit":"milliseconds"}}"#,
];

/// Equal results, or the same error; `context` describes the case on failure.
fn assert_same_answer(
    got: Result<QueryResult, QueryError>,
    want: Result<QueryResult, QueryError>,
    context: impl Fn() -> String,
) {
    match (got, want) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{}", context()),
        (got, want) => assert_eq!(format!("{got:?}"), format!("{want:?}"), "{}", context()),
    }
}

#[test]
fn pushdown_answers_like_a_full_read() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f1e5);
    let cases = 3000;
    let mut pushed = 0;
    let zones = [None, None, None, Some("Europe/Paris"), Some("+05:30")];
    for case in 0..cases {
        let (series, range, time_zone) = random_case(&mut rng, &zones);
        let mut aggregators = vec![random_edge_aggregator(&mut rng)];
        if rng.gen_bool(0.4) {
            aggregators.push(FOLLOWERS[rng.gen_range(0..FOLLOWERS.len())].to_string());
        }
        let mut q = mq(&[]);
        q.aggregators = aggregators.iter().map(|a| agg(a)).collect();
        q.exclude_tags = rng.gen_bool(0.3);
        q.group_by_tags = match rng.gen_range(0..4) {
            0 | 1 => Vec::new(),
            2 => vec!["host".into()],
            _ => vec!["host".into(), "dc".into()],
        };

        let budget = Budget::default();
        let honour = fixed_with(series.clone(), Mode::Honour);
        let full = fixed_with(series.clone(), Mode::FullRead);
        let got = run(&honour, range, time_zone, &budget, &q);
        let want = run(&full, range, time_zone, &budget, &q);
        let read = honour.only_query();
        if read.count_in_range {
            pushed += 1;
            assert_eq!(read.limit, Some(1), "case {case}");
        }
        let context = || {
            format!(
                "case {case}: range {range:?} tz {time_zone:?} query {:?} group_by {:?}\n\
                 read {read:?}\nseries {series:?}",
                q.aggregators, q.group_by_tags
            )
        };
        assert_same_answer(got, want, context);
    }
    assert!(
        pushed * 4 > cases,
        "only {pushed} of {cases} cases used the pushdown"
    );
}

// ---------------------------------------------------------------------------------------
// Randomized: max/min/count folded per series (no merge) vs. over the merged stream.

/// A random range aggregator among `names`: samplings in ms, days, weeks and months,
/// random alignments, origins and time zones.
fn random_range_aggregator(rng: &mut StdRng, names: &[&str]) -> String {
    let name = names[rng.gen_range(0..names.len())];
    let mut a = json!({ "name": name });
    match rng.gen_range(0..10) {
        0 => {} // no sampling: 1 ms
        1 => a["sampling"] = json!({"value": 1, "unit": "days"}),
        2 => a["sampling"] = json!({"value": 1, "unit": "months"}),
        3 => a["sampling"] = json!({"value": 2, "unit": "weeks"}),
        _ => a["sampling"] = json!({"value": rng.gen_range(1..=60), "unit": "milliseconds"}),
    }
    for flag in ["align_sampling", "align_start_time", "align_end_time"] {
        if rng.gen_bool(0.5) {
            a[flag] = json!(rng.gen_bool(0.5));
        }
    }
    // An origin after the query start puts points before it (the merged path only).
    if rng.gen_bool(0.3) {
        a["start_time"] = json!(rng.gen_range(-50..250));
    }
    if rng.gen_bool(0.2) {
        a["time_zone"] = json!("Asia/Kolkata");
    }
    a.to_string()
}

#[test]
fn max_min_count_without_the_merge_answer_like_the_merged_stream() {
    let mut rng = StdRng::seed_from_u64(0xf01d_5eed);
    let cases = 3000;
    let mut shared_groups = 0;
    let zones = [None, None, Some("Europe/Paris"), Some("+05:30")];
    for case in 0..cases {
        let (series, range, time_zone) = random_case(&mut rng, &zones);
        let mut q = mq(&[]);
        q.aggregators = vec![agg(&random_range_aggregator(
            &mut rng,
            &["max", "min", "count"],
        ))];
        if rng.gen_bool(0.4) {
            q.aggregators
                .push(agg(FOLLOWERS[rng.gen_range(0..FOLLOWERS.len())]));
        }
        q.exclude_tags = rng.gen_bool(0.3);
        q.group_by_tags = match rng.gen_range(0..3) {
            0 => Vec::new(),
            1 => vec!["host".into()],
            _ => vec!["dc".into()],
        };
        // Cases with a group of several number series (the ones the shortcut can take).
        let mut groups: Vec<Vec<&str>> = series
            .iter()
            .filter(|s| s.key.data_type != DataType::String && !s.points.is_empty())
            .map(|s| {
                let value = |t: &String| s.key.tags.get(t).unwrap_or("");
                q.group_by_tags.iter().map(value).collect()
            })
            .collect();
        groups.sort();
        if groups.windows(2).any(|w| w[0] == w[1]) {
            shared_groups += 1;
        }
        // A limit no group reaches changes nothing but keeps the merged path.
        let mut merged = q.clone();
        merged.limit = Some(usize::MAX);

        let budget = Budget::default();
        let store = fixed_with(series.clone(), Mode::Honour);
        let got = run(&store, range, time_zone, &budget, &q);
        let want = run(&store, range, time_zone, &budget, &merged);
        let context = || {
            format!(
                "case {case}: range {range:?} tz {time_zone:?} query {:?} group_by {:?}\n\
                 series {series:?}",
                q.aggregators, q.group_by_tags
            )
        };
        assert_same_answer(got, want, context);
    }
    assert!(
        shared_groups * 4 > cases,
        "only {shared_groups} of {cases} cases had a group of several number series"
    );
}

// ---------------------------------------------------------------------------------------
// Randomized: the fold hint (a worker keeps only the points a leading max, min, first or
// last needs) vs. a read of every point.

#[test]
fn the_fold_hint_answers_like_a_read_of_every_point() {
    let mut rng = StdRng::seed_from_u64(0xf0_1d_ed);
    let cases = 3000;
    let (mut folded, mut thinned, mut counted) = (0, 0, 0);
    let zones = [None, None, Some("Europe/Paris"), Some("+05:30")];
    for case in 0..cases {
        let (series, range, time_zone) = random_case(&mut rng, &zones);
        let mut q = mq(&[]);
        q.aggregators = vec![agg(&random_range_aggregator(
            &mut rng,
            &["max", "min", "first", "last", "count"],
        ))];
        if rng.gen_bool(0.4) {
            q.aggregators
                .push(agg(FOLLOWERS[rng.gen_range(0..FOLLOWERS.len())]));
        }
        q.exclude_tags = rng.gen_bool(0.3);
        q.group_by_tags = match rng.gen_range(0..3) {
            0 => Vec::new(),
            1 => vec!["host".into()],
            _ => vec!["dc".into()],
        };
        let budget = Budget::default();
        // A storage that folds counts (a cluster) half the time.
        let honour = match rng.gen_bool(0.5) {
            true => fixed_counting(series.clone()),
            false => fixed_with(series.clone(), Mode::Honour),
        };
        let full = fixed_with(series.clone(), Mode::FullRead);
        let got = run(&honour, range, time_zone, &budget, &q);
        let want = run(&full, range, time_zone, &budget, &q);
        let read = honour.only_query();
        if let Some(fold) = &read.fold {
            folded += 1;
            counted += usize::from(fold.keep == FoldKeep::Count);
            let mut kept = series.clone();
            crate::fold::reduce(&mut kept, fold).unwrap();
            let before: usize = series.iter().map(|s| s.points.len()).sum();
            let after: usize = kept.iter().map(|s| s.points.len()).sum();
            if after < before {
                thinned += 1;
            }
        }
        let context = || {
            format!(
                "case {case}: range {range:?} tz {time_zone:?} query {:?} group_by {:?}\n\
                 read {read:?}\nseries {series:?}",
                q.aggregators, q.group_by_tags
            )
        };
        assert_same_answer(got, want, context);
    }
    assert!(
        folded * 3 > cases,
        "only {folded} of {cases} reads carried the hint"
    );
    assert!(
        thinned * 5 > cases,
        "only {thinned} of {cases} reads were thinned"
    );
    assert!(
        counted * 20 > cases,
        "only {counted} of {cases} reads folded counts"
    );
}

#[test]
fn the_fold_hint_keeps_each_buckets_first_point_and_its_pick() {
    let q = mq(&[
        r#"{"name":"max","sampling":{"value":10,"unit":"milliseconds"},"align_sampling":true}"#,
    ]);
    let series = vec![SeriesData::new(
        key(DataType::Long, "a"),
        Points::Long {
            ts: vec![0, 2, 4, 11, 13, 19, 25],
            values: vec![5, 9, 1, 3, 3, 2, 7],
        },
    )];
    let store = fixed_with(series.clone(), Mode::Honour);
    let budget = Budget::default();
    run(&store, TimeRange::new(0, 30), None, &budget, &q).unwrap();
    let fold = store
        .only_query()
        .fold
        .expect("a leading max over several buckets");
    assert_eq!(fold.keep, FoldKeep::Max);
    let mut kept = series;
    crate::fold::reduce(&mut kept, &fold).unwrap();
    // [0,10): first 0, max 9 at 2; [10,20): first 11 (max 3, the first of the two); [20,30): 25.
    assert_eq!(kept[0].points.timestamps(), [0, 2, 11, 25]);
    assert_eq!(kept[0].in_range, 7, "in_range still counts every point");
    // A start_time after the query start: points before the origin, no hint.
    let late = mq(&[
        r#"{"name":"max","sampling":{"value":10,"unit":"milliseconds"},"start_time":5,"align_sampling":false}"#,
    ]);
    let store = fixed_with(Vec::new(), Mode::Honour);
    run(&store, TimeRange::new(0, 30), None, &budget, &late).unwrap();
    assert_eq!(store.only_query().fold, None);
    // Other aggregators read every point.
    let sum = mq(&[r#"{"name":"sum","sampling":{"value":10,"unit":"milliseconds"}}"#]);
    let store = fixed_with(Vec::new(), Mode::Honour);
    run(&store, TimeRange::new(0, 30), None, &budget, &sum).unwrap();
    assert_eq!(store.only_query().fold, None);
}

// ---------------------------------------------------------------------------------------
// Budget.

#[test]
fn pushdown_keeps_max_points_budget() {
    let q = mq(&[LAST_10]);
    let range = TimeRange::new(0, 9); // 9 points in range, 3 read with the pushdown
    let limit_of = |max: u64| Budget {
        max_points: Some(max),
        ..Budget::default()
    };
    let expect_limit = |r: Result<QueryResult, QueryError>, max: u64, what: &str| match r {
        Err(QueryError::Limit(m)) => {
            assert_eq!(
                m,
                format!("Query exceeded limit of {max} data points"),
                "{what}"
            )
        }
        other => panic!("{what}: expected QueryError::Limit, got {other:?}"),
    };
    for max in [0, 3, 5, 8] {
        let budget = limit_of(max);
        // Storage that does not enforce `max_points`: `execute` checks `sample_size`.
        let store = fixed_with(fixed_series(), Mode::Honour);
        expect_limit(
            run(&store, range, None, &budget, &q),
            max,
            "pushdown, lenient storage",
        );
        let read = store.only_query();
        assert!(read.count_in_range, "the pushdown is used");
        assert_eq!(read.limit, Some(1));
        assert_eq!(read.max_points, Some(max));
        // Storage that enforces it over the counted points: `TooManyPoints` → `Limit`.
        let store = fixed_enforcing(fixed_series());
        expect_limit(
            run(&store, range, None, &budget, &q),
            max,
            "pushdown, enforcing storage",
        );
        assert!(store.only_query().count_in_range);
        // Same answer without the pushdown.
        let store = fixed_with(fixed_series(), Mode::FullRead);
        expect_limit(run(&store, range, None, &budget, &q), max, "full read");
    }
    // At the limit the query runs.
    let budget = limit_of(9);
    for store in [
        fixed_with(fixed_series(), Mode::Honour),
        fixed_enforcing(fixed_series()),
        fixed_with(fixed_series(), Mode::FullRead),
    ] {
        let r = run(&store, range, None, &budget, &q).expect("9 points are allowed");
        assert_eq!(r.sample_size, 9);
        assert_eq!(r.results[0].ts, vec![8]);
    }
}

/// `last` stamped at its bucket's start or end, with a `start_time` after the query start:
/// points before the origin fall into buckets found by truncating toward zero, so the
/// bucket (and its start/end) depends on the stream's first point, which a one-point
/// read per series does not see. Smallest case found by `pushdown_answers_like_a_full_read`.
#[test]
fn pushdown_last_with_start_time_after_the_query_start() {
    let series = vec![SeriesData::new(
        key(DataType::Long, "a"),
        Points::Long {
            ts: vec![50, 100],
            values: vec![1, 2],
        },
    )];
    let range = TimeRange::new(50, 140);
    // Origin 150, width 100: the bucket of 50 is [50, 150), the bucket of 100 is
    // [150, 250) (index truncated toward zero); the walk puts both points in the first.
    for (align, stamp) in [("align_start_time", 50), ("align_end_time", 150)] {
        let q = mq(&[&format!(
            r#"{{"name":"last","sampling":{{"value":100,"unit":"milliseconds"}},"align_sampling":false,"{align}":true,"start_time":150}}"#
        )]);
        let want = QueryResult {
            coverage: None,
            sample_size: 2,
            results: vec![group(
                vec![stamp],
                OutColumn::Long(vec![2]),
                GroupType::Number,
            )],
        };
        let full = fixed_with(series.clone(), Mode::FullRead);
        let r = run(&full, range, None, &Budget::default(), &q).expect("query runs");
        assert_eq!(r, want, "{align}: full read");
        let honour = fixed_with(series.clone(), Mode::Honour);
        let r = run(&honour, range, None, &Budget::default(), &q).expect("query runs");
        assert_eq!(r, want, "{align}: storage read {:?}", honour.only_query());
    }
}

#[test]
fn work_limit_reaches_the_read_and_bounds_what_gaps_produces() {
    let range = TimeRange::new(0, 999);
    let limited = |limit: u64| Budget {
        work_limit: Some(limit),
        ..Budget::default()
    };
    let store = fixed_with(fixed_series(), Mode::Honour);
    run(&store, range, None, &limited(77), &mq(&[])).expect("plain read runs");
    assert_eq!(store.only_query().work_limit, Some(77));

    // 1,000 one-millisecond buckets, nearly all of them nulls.
    let gaps = r#"{"name":"gaps","sampling":{"value":1,"unit":"milliseconds"}}"#;
    let store = fixed_with(fixed_series(), Mode::Honour);
    match attempt(&store, range, None, &limited(500), &mq(&[gaps])) {
        Ok(Executed::OverWorkLimit) => {}
        other => panic!("expected OverWorkLimit, got {other:?}"),
    }
    let r = run(&store, range, None, &limited(5_000), &mq(&[gaps])).expect("gaps runs");
    assert!(r.results[0].ts.len() >= 1_000, "{}", r.results[0].ts.len());

    // A query that writes never runs under a work limit: it stops before reading.
    let save = r#"{"name":"save_as","metric_name":"copy"}"#;
    let store = fixed_with(fixed_series(), Mode::Honour).recording();
    match attempt(&store, range, None, &limited(u64::MAX), &mq(&[save])) {
        Ok(Executed::OverWorkLimit) => {}
        other => panic!("expected OverWorkLimit, got {other:?}"),
    }
    assert!(store.queries().is_empty());
    assert_eq!(store.points_written(), 0);
    // Without the limit it reads, then writes.
    let r = run(&store, range, None, &Budget::default(), &mq(&[save]));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(store.only_query().work_limit, None);
    assert!(store.points_written() > 0, "save_as wrote its points");
}

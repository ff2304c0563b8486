//! Group-by vectors of spec §6 (KairosDB's `TimeGroupByTest`, `ValueGroupByTest`,
//! `BinGroupByTest`) and the combination rules of §6.5 / §4.5 checked through `execute`.

use kairosdb_model::*;

use super::aggregators::{at, doubles, longs, mixed, texts};
use super::{agg, execute_at, fixed, group_by, Fixed};
use crate::aggregate::Stream;
use crate::groupby::{self, GroupBy};

const DAY: i64 = 86_400_000;

fn number(r: &GroupByResult) -> i64 {
    match r {
        GroupByResult::Time { group_number, .. } | GroupByResult::Value { group_number, .. } => {
            *group_number
        }
        GroupByResult::Bin { bin_number, .. } => *bin_number,
        other => panic!("not a numbered group-by: {other:?}"),
    }
}

/// The group-by a JSON object asks for, for a query from `query_start`.
fn grouper(json: &str, query_start: i64) -> GroupBy {
    GroupBy::new(&group_by(json), query_start).expect("a time, value or bin group-by")
}

/// The group-by results of the one group a single long point falls into (query start 0).
fn results_of(json: &str, point: (i64, i64)) -> Vec<GroupByResult> {
    let mut parts = groupby::split(longs(&[point]), &[grouper(json, 0)]);
    assert_eq!(parts.len(), 1, "one group: {parts:?}");
    parts.remove(0).0
}

/// The group number of every point (points must have distinct timestamps), in stream
/// order.
fn ids(json: &str, query_start: i64, s: Stream) -> Vec<i64> {
    let order = s.ts.clone();
    let g = grouper(json, query_start);
    g.check().unwrap();
    let mut by_ts = std::collections::HashMap::new();
    for (results, part) in groupby::split(s, &[g]) {
        assert_eq!(results.len(), 1);
        for t in part.ts {
            assert!(
                by_ts.insert(t, number(&results[0])).is_none(),
                "distinct ts"
            );
        }
    }
    order.iter().map(|t| by_ts[t]).collect()
}

#[test]
fn time_one_day_by_seven_from_a_sunday() {
    // Start: Sunday 2023-12-31; the next Sunday..Saturday are groups 0..6.
    let sunday = at(2023, 12, 31, 0, 0);
    let week: Vec<(i64, i64)> = (0..7)
        .map(|d| (at(2024, 1, 7, 12, 0) + d * DAY, 1))
        .collect();
    let json = format!(
        r#"{{"name":"time","range_size":{{"value":1,"unit":"DAYS"}},"group_count":7,"start_date":{sunday}}}"#
    );
    assert_eq!(ids(&json, 0, longs(&week)), vec![0, 1, 2, 3, 4, 5, 6]);
    // Without `start_date` the query start is the origin.
    let json = r#"{"name":"time","range_size":{"value":1,"unit":"DAYS"},"group_count":7}"#;
    assert_eq!(ids(json, sunday, longs(&week)), vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn time_one_month_by_24() {
    let json = format!(
        r#"{{"name":"time","range_size":{{"value":1,"unit":"MONTHS"}},"group_count":24,"start_date":{}}}"#,
        at(2010, 1, 1, 1, 0)
    );
    let table = [
        (at(2010, 1, 1, 0, 0), 0),
        (at(2010, 1, 31, 0, 0), 0),
        (at(2010, 2, 1, 0, 0), 1),
        (at(2010, 2, 28, 0, 0), 1),
        (at(2010, 3, 1, 0, 0), 2),
        (at(2010, 3, 31, 0, 0), 2),
        (at(2010, 7, 1, 0, 0), 6),
        (at(2010, 7, 31, 0, 0), 6),
        (at(2010, 12, 1, 0, 0), 11),
        (at(2010, 12, 31, 0, 0), 11),
        (at(2011, 1, 31, 0, 0), 12),
        (at(2011, 2, 28, 0, 0), 13),
        (at(2012, 1, 31, 0, 0), 0),
        (at(2012, 2, 28, 0, 0), 1),
    ];
    let points: Vec<(i64, i64)> = table.iter().map(|&(t, _)| (t, 1)).collect();
    let expected: Vec<i64> = table.iter().map(|&(_, id)| id).collect();
    assert_eq!(ids(&json, 0, longs(&points)), expected);
}

#[test]
fn time_points_before_the_start_get_negative_ids() {
    // ⚠ Kept from KairosDB (spec §14.9): truncating division and remainder.
    let json = r#"{"name":"time","range_size":{"value":1,"unit":"DAYS"},"group_count":7}"#;
    let s = longs(&[(-DAY / 2, 1), (-DAY - 1, 1), (-8 * DAY - 1, 1)]);
    assert_eq!(ids(json, 0, s), vec![0, -1, -1]);
}

#[test]
fn time_year_is_52_weeks() {
    let json = r#"{"name":"time","range_size":{"value":1,"unit":"YEARS"},"group_count":3}"#;
    let s = longs(&[(364 * DAY - 1, 1), (364 * DAY, 1), (3 * 364 * DAY, 1)]);
    assert_eq!(ids(json, 0, s), vec![0, 1, 0]);
}

#[test]
fn time_result_shape() {
    let json = r#"{"name":"time","range_size":{"value":2,"unit":"DAYS"},"group_count":14}"#;
    assert_eq!(
        results_of(json, (4 * DAY, 1)),
        vec![GroupByResult::Time {
            range_value: 2,
            range_unit: "DAYS".into(),
            group_count: 14,
            group_number: 2,
        }]
    );
}

#[test]
fn value_range_three_longs_and_doubles() {
    let json = r#"{"name":"value","range_size":3}"#;
    let l: Vec<(i64, i64)> = (0..=6).map(|v| (v, v)).collect();
    assert_eq!(ids(json, 0, longs(&l)), vec![0, 0, 0, 1, 1, 1, 2]);
    let d = doubles(&[
        (0, 0.0),
        (1, 1.2),
        (2, 2.3),
        (3, 3.3),
        (4, 4.4),
        (5, 5.2),
        (6, 6.1),
    ]);
    assert_eq!(ids(json, 0, d), vec![0, 0, 0, 1, 1, 1, 2]);
    // Java int arithmetic truncates toward zero.
    let neg = mixed(&[
        (0, Num::Long(-4)),
        (1, Num::Long(-1)),
        (2, Num::Double(-3.9)),
    ]);
    assert_eq!(ids(json, 0, neg), vec![-1, 0, -1]);
    // Strings have no value group.
    assert_eq!(ids(json, 0, texts(&[(0, "7")])), vec![-1]);
}

#[test]
fn value_result_shape() {
    assert_eq!(
        results_of(r#"{"name":"value","range_size":5}"#, (0, 7)),
        vec![GroupByResult::Value {
            range_size: 5,
            group_number: 1
        }]
    );
}

#[test]
fn bin_table() {
    let json = r#"{"name":"bin","bins":[2,5,7]}"#;
    // One point per millisecond from 0.
    let l: Vec<(i64, i64)> = (0..).zip([1, 2, 4, 5, 6, 7, 8]).collect();
    assert_eq!(ids(json, 0, longs(&l)), vec![0, 1, 1, 2, 2, 3, 3]);
    let d: Vec<(i64, f64)> = (0..).zip([1.9, 2.0, 4.9, 5.0, 6.9, 7.0, 7.1]).collect();
    assert_eq!(ids(json, 0, doubles(&d)), vec![0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(ids(json, 0, texts(&[(0, "3")])), vec![-1]);
}

#[test]
fn bin_result_shape() {
    assert_eq!(
        results_of(r#"{"name":"bin","bins":[2,5,7]}"#, (0, 9)),
        vec![GroupByResult::Bin {
            bins: vec![2.0, 5.0, 7.0],
            bin_number: 3
        }]
    );
}

#[test]
fn split_orders_sub_groups_by_first_point_and_keeps_types() {
    let g = grouper(r#"{"name":"value","range_size":10}"#, 0);
    let s = mixed(&[
        (1, Num::Long(25)),
        (2, Num::Double(3.5)),
        (3, Num::Long(21)),
        (4, Num::Long(7)),
        (5, Num::Double(12.0)),
    ]);
    let parts = groupby::split(s, &[g]);
    let got: Vec<(i64, Vec<i64>, OutColumn)> = parts
        .into_iter()
        .map(|(r, p)| (number(&r[0]), p.ts, p.values))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                vec![1, 3],
                OutColumn::Number(vec![Num::Long(25), Num::Long(21)])
            ),
            (
                0,
                vec![2, 4],
                OutColumn::Number(vec![Num::Double(3.5), Num::Long(7)])
            ),
            (1, vec![5], OutColumn::Number(vec![Num::Double(12.0)])),
        ]
    );
}

#[test]
fn several_group_bys_split_the_cartesian_way() {
    let value = grouper(r#"{"name":"value","range_size":10}"#, 0);
    let bin = grouper(r#"{"name":"bin","bins":[5,15]}"#, 0);
    let s = longs(&[(1, 1), (2, 12), (3, 7), (4, 16), (5, 3)]);
    let parts = groupby::split(s, &[value, bin]);
    let got: Vec<(Vec<i64>, Vec<i64>)> = parts
        .into_iter()
        .map(|(r, p)| (r.iter().map(number).collect(), p.ts))
        .collect();
    assert_eq!(
        got,
        vec![
            (vec![0, 0], vec![1, 5]),
            (vec![1, 1], vec![2]),
            (vec![0, 1], vec![3]),
            (vec![1, 2], vec![4]),
        ]
    );
}

fn series(host: &str, dc: &str, points: &[(i64, i64)]) -> SeriesData {
    SeriesData::new(
        SeriesKey::new(
            "m",
            DataType::Long,
            Tags::from_pairs([("host", host), ("dc", dc)]),
        ),
        Points::Long {
            ts: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        },
    )
}

fn run_query(store: &Fixed, q: &MetricQuery) -> QueryResult {
    execute_at(store, TimeRange::new(0, 1000), 1000, q).expect("query runs")
}

#[test]
fn combined_group_bys_keep_parent_tags_and_order_entries() {
    let store = fixed(vec![
        series("b", "eu", &[(1, 25), (2, 3)]),
        series("a", "eu", &[(1, 1), (3, 14)]),
        series("a", "us", &[(2, 12)]),
        SeriesData::new(
            SeriesKey::new(
                "m",
                DataType::String,
                Tags::from_pairs([("host", "a"), ("dc", "eu")]),
            ),
            Points::String {
                ts: vec![5],
                values: vec!["up".into()],
            },
        ),
    ]);
    let mut q = super::mq();
    q.group_by_tags = vec!["host".into()];
    q.group_bys = vec![
        group_by(r#"{"name":"value","range_size":10}"#),
        group_by(
            r#"{"name":"time","range_size":{"value":2,"unit":"MILLISECONDS"},"group_count":2}"#,
        ),
    ];
    let r = run_query(&store, &q);
    let tag = |host: &str| GroupByResult::Tag {
        tags: vec!["host".into()],
        group: vec![("host".into(), host.into())],
    };
    let value = |n| GroupByResult::Value {
        range_size: 10,
        group_number: n,
    };
    let time = |n| GroupByResult::Time {
        range_value: 2,
        range_unit: "MILLISECONDS".into(),
        group_count: 2,
        group_number: n,
    };
    let number = GroupByResult::Type(GroupType::Number);
    let text = GroupByResult::Type(GroupType::Text);
    let got: Vec<(Vec<GroupByResult>, Vec<i64>)> = r
        .results
        .iter()
        .map(|g| (g.group_by.clone(), g.ts.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            // host=a numbers: (1,1) (2,12) (3,14) → value/time keys (0,0) (1,1) (1,1).
            (vec![value(0), time(0), tag("a"), number.clone()], vec![1]),
            (
                vec![value(1), time(1), tag("a"), number.clone()],
                vec![2, 3]
            ),
            // host=b numbers: (1,25) (2,3).
            (vec![value(2), time(0), tag("b"), number.clone()], vec![1]),
            (vec![value(0), time(1), tag("b"), number], vec![2]),
            // Text comes after every number group; value of a string = −1; 5 ms → 0.
            (vec![value(-1), time(0), tag("a"), text], vec![5]),
        ]
    );
    // Sub-groups keep all tags of their parent group.
    let tags = r.results[1].tags.as_ref().unwrap();
    assert_eq!(tags.values("dc"), vec!["eu", "us"]);
    assert_eq!(tags.values("host"), vec!["a"]);
}

#[test]
fn group_by_without_tag_group_by_ends_with_type() {
    let store = fixed(vec![series("a", "eu", &[(1, 1), (2, 9)])]);
    let mut q = super::mq();
    q.group_bys = vec![group_by(r#"{"name":"bin","bins":[5]}"#)];
    let r = run_query(&store, &q);
    let got: Vec<Vec<GroupByResult>> = r.results.iter().map(|g| g.group_by.clone()).collect();
    let bin = |bin_number| {
        vec![
            GroupByResult::Bin {
                bins: vec![5.0],
                bin_number,
            },
            GroupByResult::Type(GroupType::Number),
        ]
    };
    assert_eq!(got, vec![bin(0), bin(1)]);
}

#[test]
fn group_ids_come_from_raw_points_and_aggregators_run_per_sub_group() {
    let store = fixed(vec![series("a", "eu", &[(1, 1), (2, 11), (3, 2), (4, 12)])]);
    let mut q = super::mq();
    q.group_bys = vec![group_by(r#"{"name":"value","range_size":10}"#)];
    q.aggregators = vec![agg(
        r#"{"name":"sum","sampling":{"value":1,"unit":"HOURS"}}"#,
    )];
    let r = run_query(&store, &q);
    let got: Vec<(i64, Vec<i64>, OutColumn)> = r
        .results
        .iter()
        .map(|g| (number(&g.group_by[0]), g.ts.clone(), g.values.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, vec![1], OutColumn::Double(vec![3.0])),
            (1, vec![2], OutColumn::Double(vec![23.0])),
        ]
    );
}

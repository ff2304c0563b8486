use super::*;
use crate::analytics::params::{parse, Endpoint};
use crate::analytics::partial::GroupPartials;

fn query(params: &str) -> AggregateQuery {
    let pairs: Vec<(String, String)> = params
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    parse(&pairs, Endpoint::Aggregate, 0).unwrap()
}

fn partial(values: &[f64]) -> Partial {
    let mut p = Partial::of(values[0], true);
    values[1..].iter().for_each(|v| p.add(*v, true));
    p
}

fn group(host: &str, buckets: &[(i64, &[f64])]) -> GroupPartials {
    GroupPartials {
        group: vec![Some(host.to_owned())],
        buckets: buckets.iter().map(|(t, v)| (*t, partial(v))).collect(),
    }
}

#[test]
fn each_bucket_of_each_group_is_a_row_with_its_aggregates_in_order() {
    let q = query("key=m&from=0&to=300&window=100ms&agg=count,avg,p50&group_by=host");
    let merged = Partials {
        groups: vec![
            group("a", &[(0, &[1.0, 2.0, 3.0]), (200, &[10.0])]),
            group("b", &[(100, &[4.0, 6.0])]),
        ],
    };
    let got: Vec<(i64, String, Vec<f64>)> = rows(&q, &merged)
        .unwrap()
        .into_iter()
        .map(|r| (r.timestamp, r.group[0].clone().unwrap(), r.values))
        .collect();
    assert_eq!(
        got,
        [
            (0, "a".into(), vec![3.0, 2.0, 2.0]),
            (200, "a".into(), vec![1.0, 10.0, 10.0]),
            (100, "b".into(), vec![2.0, 5.0, 5.0]),
        ]
    );
}

#[test]
fn a_rolling_window_merges_the_bucket_with_the_ones_before_it_exactly() {
    // Buckets of 100 ms from 0; rolling over 3 buckets; `from` = 200, so buckets 0 and
    // 100 only feed the first rows' windows.
    let q = query("key=m&from=200&to=600&window=100ms&rolling=3&agg=avg,count,max,p50");
    assert_eq!(q.read_start(), 0);
    let merged = Partials {
        groups: vec![GroupPartials {
            group: vec![],
            buckets: vec![
                (0, partial(&[1.0])),
                (100, partial(&[2.0, 2.0])),
                (200, partial(&[9.0])),
                (400, partial(&[4.0])),
            ],
        }],
    };
    let got: Vec<(i64, Vec<f64>)> = rows(&q, &merged)
        .unwrap()
        .into_iter()
        .map(|r| (r.timestamp, r.values))
        .collect();
    assert_eq!(
        got,
        [
            // 0..300: 1, 2, 2, 9 — the average of the points, not of bucket averages.
            (200, vec![3.5, 4.0, 9.0, 2.0]),
            // 100..400: 2, 2, 9.
            (300, vec![13.0 / 3.0, 3.0, 9.0, 2.0]),
            // 200..500: 9, 4.
            (400, vec![6.5, 2.0, 9.0, 6.5]),
            // 300..600: 4.
            (500, vec![4.0, 1.0, 4.0, 4.0]),
        ]
    );
}

#[test]
fn order_by_then_group_then_time_and_limit_cuts_after_ordering() {
    let q = query("key=m&from=0&to=300&window=100ms&agg=avg&group_by=host&order_by=-avg&limit=3");
    let merged = Partials {
        groups: vec![
            group("a", &[(0, &[1.0]), (100, &[5.0])]),
            group("b", &[(0, &[5.0]), (200, &[3.0])]),
        ],
    };
    let got: Vec<(String, i64)> = rows(&q, &merged)
        .unwrap()
        .into_iter()
        .map(|r| (r.group[0].clone().unwrap(), r.timestamp))
        .collect();
    // Two rows of 5: group a first, then b; then the 3.
    assert_eq!(got, [("a".into(), 100), ("b".into(), 0), ("b".into(), 200)]);
    let by_tag = query("key=m&from=0&to=300&window=100ms&group_by=host&order_by=-host,-time");
    let got: Vec<(String, i64)> = rows(&by_tag, &merged)
        .unwrap()
        .into_iter()
        .map(|r| (r.group[0].clone().unwrap(), r.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            ("b".into(), 200),
            ("b".into(), 0),
            ("a".into(), 100),
            ("a".into(), 0)
        ]
    );
}

#[test]
fn no_window_is_one_row_per_group() {
    let q = query("key=m&from=5&to=10&agg=sum");
    let merged = Partials {
        groups: vec![GroupPartials {
            group: vec![],
            buckets: vec![(5, partial(&[1.0, 2.0]))],
        }],
    };
    let got = rows(&q, &merged).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].timestamp, got[0].values[0]), (5, 3.0));
    assert!(rows(&q, &Partials::default()).unwrap().is_empty());
}

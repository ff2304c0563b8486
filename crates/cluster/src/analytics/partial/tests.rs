use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::{partition_of, DataType, SeriesKey, Tags, WriteBatch};
use proptest::prelude::*;

use super::*;

fn request(window_ms: Option<i64>, group_by: &[&str], keep_values: bool) -> ComputeRequest {
    ComputeRequest {
        key: "m".into(),
        filter: Vec::new(),
        start: 0,
        end: i64::MAX,
        window_ms,
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        keep_values,
        max_points: None,
        shard: None,
    }
}

fn series(host: &str, points: Points) -> SeriesData {
    let tags = Tags::from_pairs([("host", host)]);
    SeriesData::new(SeriesKey::new("m", points.data_type(), tags), points)
}

fn doubles(host: &str, points: &[(i64, f64)]) -> SeriesData {
    let (ts, values) = points.iter().copied().unzip();
    series(host, Points::Double { ts, values })
}

#[test]
fn fold_buckets_on_the_epoch_groups_by_tag_and_reads_longs_as_numbers() {
    let data = [
        doubles("a", &[(0, 1.0), (59_999, 3.0), (60_000, 10.0)]),
        series(
            "b",
            Points::Long {
                ts: vec![30_000],
                values: vec![7],
            },
        ),
        series(
            "b",
            Points::String {
                ts: vec![1],
                values: vec!["text".into()],
            },
        ),
        doubles("c", &[(5, f64::NAN), (6, f64::INFINITY)]),
    ];
    let got = fold(&data, &request(Some(60_000), &["host"], false));
    /// Per group: its host and `(bucket, count, sum)` of each bucket.
    type Summary = Vec<(Option<String>, Vec<(i64, u64, f64)>)>;
    let summary: Summary = got
        .groups
        .iter()
        .map(|g| {
            let buckets = g
                .buckets
                .iter()
                .map(|(t, p)| (*t, p.count, p.sum))
                .collect();
            (g.group[0].clone(), buckets)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("a".into()), vec![(0, 2, 4.0), (60_000, 1, 10.0)]),
            (Some("b".into()), vec![(0, 1, 7.0)]),
        ],
        "text and non-finite values are left out; a group without values is not answered"
    );
    let a0 = &got.groups[0].buckets[0].1;
    assert_eq!((a0.min, a0.max, a0.values.len()), (1.0, 3.0, 0));
}

#[test]
fn without_a_window_everything_is_one_bucket_stamped_at_the_start_and_a_missing_tag_is_none() {
    let mut req = request(None, &["dc"], true);
    req.start = 42;
    let got = fold(&[doubles("a", &[(100, 1.0), (9_999_999, 2.0)])], &req);
    assert_eq!(got.groups.len(), 1);
    assert_eq!(got.groups[0].group, [None]);
    assert_eq!(got.groups[0].buckets.len(), 1);
    let (start, p) = &got.groups[0].buckets[0];
    assert_eq!((*start, p.count, p.values.len()), (42, 2, 2));
}

#[test]
fn aggregates_of_a_partial() {
    let mut p = Partial::of(4.0, true);
    for v in [1.0, 3.0, 2.0] {
        p.add(v, true);
    }
    let value = |name: &str| {
        let agg = match name {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "count" => Agg::Count,
            _ => Agg::Percentile {
                p: name[1..].parse::<f64>().unwrap() / 100.0,
                name: name.into(),
            },
        };
        p.value(&agg)
    };
    assert_eq!(value("avg"), 2.5);
    assert_eq!((value("min"), value("max")), (1.0, 4.0));
    assert_eq!((value("sum"), value("count")), (10.0, 4.0));
    // KairosDB's interpolation: pos = p·(n+1) = 2.5 → halfway between 2 and 3.
    assert_eq!(value("p50"), 2.5);
    assert_eq!(value("p100"), 4.0);
}

/// The sorted-array reference a percentile must equal: KairosDB's `pos = p·(n+1)`.
fn reference_percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let pos = p * (n + 1.0);
    if pos < 1.0 {
        return sorted[0];
    }
    if pos >= n {
        return sorted[sorted.len() - 1];
    }
    let i = pos.floor() as usize;
    sorted[i - 1] + (pos - pos.floor()) * (sorted[i] - sorted[i - 1])
}

fn cut_into(parts: &[usize], points: &[(i64, f64)]) -> Vec<Vec<(i64, f64)>> {
    let n = parts.len().max(1);
    let mut out = vec![Vec::new(); n];
    for (i, p) in points.iter().enumerate() {
        out[parts.get(i).copied().unwrap_or(0) % n].push(*p);
    }
    out
}

proptest! {
    /// However the points are spread over workers (unevenly, some with none), merging
    /// their partials gives what one node computes over all of them: counts, sums, min
    /// and max exactly (values are multiples of 1/8, so every sum is exact in f64), the
    /// average as Σsum/Σcount, never an average of averages; percentiles exactly the
    /// sorted-array reference.
    #[test]
    fn merged_partials_equal_one_node_over_all_points(
        raw in prop::collection::vec((0i64..600_000, -8000i32..8000), 1..300),
        parts in prop::collection::vec(0usize..5, 0..300),
        workers in 1usize..5,
        window in prop::option::of(1i64..200_000),
    ) {
        let points: Vec<(i64, f64)> = raw.iter().map(|(t, v)| (*t, f64::from(*v) / 8.0)).collect();
        let req = request(window, &[], true);
        let whole = fold(&[doubles("a", &points)], &req);
        let shares: Vec<usize> = parts.iter().map(|p| p % workers).collect();
        let answers: Vec<Partials> = cut_into(&shares, &points)
            .iter()
            .map(|share| fold(&[doubles("a", share)], &req))
            .collect();
        let mut merged = merge(answers);
        prop_assert_eq!(merged.groups.len(), whole.groups.len());
        for (m, w) in merged.groups.iter_mut().zip(&whole.groups) {
            prop_assert_eq!(m.buckets.len(), w.buckets.len());
            for ((mt, mp), (wt, wp)) in m.buckets.iter().zip(&w.buckets) {
                prop_assert_eq!(mt, wt);
                prop_assert_eq!((mp.count, mp.sum, mp.min, mp.max), (wp.count, wp.sum, wp.min, wp.max));
                let bucket: Vec<f64> = points
                    .iter()
                    .filter(|(t, _)| req.bucket(*t) == *wt)
                    .map(|(_, v)| *v)
                    .collect();
                let mean = bucket.iter().sum::<f64>() / bucket.len() as f64;
                prop_assert_eq!(mp.value(&Agg::Avg), mean);
                for p in [0.01, 0.5, 0.95, 0.99, 1.0] {
                    let agg = Agg::Percentile { p, name: String::new() };
                    prop_assert_eq!(mp.value(&agg), reference_percentile(&bucket, p));
                }
            }
        }
    }

    /// Merging is order-free: any grouping of the same answers merges to the same.
    #[test]
    fn merge_is_associative_and_commutative(
        raw in prop::collection::vec((0i64..10_000, -100i32..100, 0usize..3), 0..100),
    ) {
        let req = request(Some(1_000), &["host"], false);
        let answers: Vec<Partials> = (0..3)
            .map(|w| {
                let mine: Vec<SeriesData> = raw
                    .iter()
                    .filter(|(_, _, who)| *who == w)
                    .map(|(t, v, _)| doubles(&format!("h{}", v.rem_euclid(3)), &[(*t, f64::from(*v))]))
                    .collect();
                fold(&mine, &req)
            })
            .collect();
        let forward = merge(answers.clone());
        let backward = merge(answers.iter().rev().cloned());
        let nested = merge([merge(answers[..2].to_vec()), answers[2].clone()]);
        prop_assert_eq!(&forward, &backward);
        prop_assert_eq!(&forward, &nested);
    }
}

#[test]
fn compute_reads_through_the_storage_seam_and_keeps_to_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(dir.path());
    config.wal_sync = WalSync::None;
    let engine = Engine::open(config).unwrap();
    let batch = WriteBatch {
        series: (0..20)
            .map(|h| kairosdb_model::SeriesPoints {
                key: SeriesKey::new(
                    "m",
                    DataType::Double,
                    Tags::from_pairs([("host", format!("h{h}"))]),
                ),
                ttl_secs: 0,
                points: Points::Double {
                    ts: vec![1_000, 2_000],
                    values: vec![f64::from(h), 1.0],
                },
            })
            .collect(),
    };
    engine.write(&batch).unwrap();
    let req = request(None, &["host"], false);
    let (all, coverage) = compute(&engine, &req).unwrap();
    assert_eq!(coverage, None);
    assert_eq!(all.groups.len(), 20);
    assert_eq!(all.point_count(), 40);
    let half = ComputeRequest {
        shard: Some((4, vec![0, 1])),
        ..req.clone()
    };
    let (some, _) = compute(&engine, &half).unwrap();
    let expected = (0..20)
        .filter(|h| {
            let tags = Tags::from_pairs([("host", format!("h{h}"))]);
            partition_of("m", &tags, 4) < 2
        })
        .count();
    assert_eq!(some.groups.len(), expected);
    assert!(expected > 0 && expected < 20, "{expected}");
    // The shard's partials and the others' merge back to the whole.
    let rest = ComputeRequest {
        shard: Some((4, vec![2, 3])),
        ..req.clone()
    };
    let (other, _) = compute(&engine, &rest).unwrap();
    assert_eq!(merge([some, other]), all);
    let bad = ComputeRequest {
        window_ms: Some(0),
        ..req
    };
    assert!(matches!(
        compute(&engine, &bad),
        Err(StorageError::InvalidInput(_))
    ));
}

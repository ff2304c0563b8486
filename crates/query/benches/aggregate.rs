//! Aggregation benchmarks (criterion).
//!
//! * `range/*`: each range aggregator over 10 M points (10 s apart, a float random walk)
//!   in 1-minute buckets, as `sum`/`avg`/`max` run in a dashboard query. Throughput is
//!   input points per second on one core (target ≥ 50 M for sum/avg/max).
//! * `range_long/*`: `avg` and `max` of integers in 1-hour buckets (360 points each, as
//!   TSBS double-groupby) and `sum` in 1-minute buckets.
//! * `calendar/*`: 1-day buckets in Europe/Paris and 1-month buckets (zone arithmetic per
//!   bucket).
//! * `map/*`, `pairwise/*`, `window/*`, `select/*`: the other aggregator families over
//!   the same 10 M points.
//! * `group_by/*`: the value and time group-bys splitting 1 M points.
//! * `query/sum_1m_buckets`: end to end through `kairosdb_query::execute` over the
//!   embedded engine: 100 series × 100 k points read, merged per tag group and summed
//!   in 1-minute buckets. `query/max_1h_8_aligned_hosts_8h` is TSBS cpu-max-all-8's
//!   shape and `query/last_by_host_100` lastpoint's (one metric).
//!
//! Run: `cargo bench -p kairosdb-query --bench aggregate`. Inputs come from fixed seeds.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::{
    MetricQuery, NullStorage, Order, OutColumn, Points, SeriesKey, SeriesPoints, Storage,
    TagFilter, TagMatcher, Tags, TimeRange, WriteBatch,
};
use kairosdb_query::{aggregate, execute, Budget, Context};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const T0: i64 = 1_700_000_000_000;
const N: usize = 10_000_000;

fn walk(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = 50.0f64;
    let ts = (0..n as i64).map(|i| T0 + i * 10_000).collect();
    let values = (0..n)
        .map(|_| {
            v += rng.gen_range(-1.0..1.0);
            (v * 100.0).round() / 100.0
        })
        .collect();
    (ts, values)
}

/// The aggregator a JSON object asks for, as a query carries it.
fn spec(json: &str) -> kairosdb_model::catalogue::AggregatorSpec {
    kairosdb_protocol::query::parse_aggregator(json).expect("a valid aggregator")
}

fn bench_chain(c: &mut Criterion, group: &str, cases: &[(&str, &str)], ts: &[i64], values: &[f64]) {
    bench_column(c, group, cases, ts, &OutColumn::Double(values.to_vec()));
}

fn bench_column(
    c: &mut Criterion,
    group: &str,
    cases: &[(&str, &str)],
    ts: &[i64],
    values: &OutColumn,
) {
    let budget = Budget::default();
    let ctx = Context {
        range: TimeRange::new(T0, T0 + ts.len() as i64 * 10_000),
        time_zone: None,
        now_ms: i64::MAX,
        budget: &budget,
    };
    // A storage nobody writes to (no `save_as` in these benches).
    let storage = NullStorage::new();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(ts.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    for (name, json) in cases {
        let chain = vec![spec(json)];
        g.bench_function(*name, |b| {
            b.iter_batched(
                || (ts.to_vec(), values.clone()),
                |(t, v)| aggregate(&storage, &ctx, &chain, t, v).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn aggregators(c: &mut Criterion) {
    let (ts, values) = walk(N, 7);
    let minute = r#""sampling":{"value":1,"unit":"MINUTES"}"#;
    let range: Vec<(String, String)> = [
        "sum",
        "avg",
        "max",
        "min",
        "count",
        "dev",
        "first",
        "last",
        "least_squares",
    ]
    .iter()
    .map(|n| (n.to_string(), format!(r#"{{"name":"{n}",{minute}}}"#)))
    .chain([(
        "percentile".to_string(),
        format!(r#"{{"name":"percentile","percentile":0.95,{minute}}}"#),
    )])
    .collect();
    let range: Vec<(&str, &str)> = range
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    bench_chain(c, "range", &range, &ts, &values);
    // Integer gauges (TSBS's cpu fields) in 1-hour buckets, as double-groupby reads them.
    let longs = OutColumn::Long(values.iter().map(|v| v.round() as i64).collect());
    bench_column(
        c,
        "range_long",
        &[
            (
                "avg_1h",
                r#"{"name":"avg","sampling":{"value":1,"unit":"HOURS"}}"#,
            ),
            (
                "max_1h",
                r#"{"name":"max","sampling":{"value":1,"unit":"HOURS"}}"#,
            ),
            ("sum_1m", range[0].1),
        ],
        &ts,
        &longs,
    );
    bench_chain(
        c,
        "calendar",
        &[
            (
                "sum_1_day_paris",
                r#"{"name":"sum","sampling":{"value":1,"unit":"DAYS"},"time_zone":"Europe/Paris"}"#,
            ),
            (
                "sum_1_month",
                r#"{"name":"sum","sampling":{"value":1,"unit":"MONTHS"}}"#,
            ),
            (
                "gaps_1_minute",
                r#"{"name":"gaps","sampling":{"value":1,"unit":"MINUTES"}}"#,
            ),
        ],
        &ts,
        &values,
    );
    bench_chain(
        c,
        "map",
        &[
            ("scale", r#"{"name":"scale","factor":2.5}"#),
            ("div", r#"{"name":"div","divisor":3}"#),
            (
                "score",
                r#"{"name":"score","thresholds":[{"value":40},{"value":50},{"value":60}]}"#,
            ),
        ],
        &ts,
        &values,
    );
    bench_chain(
        c,
        "pairwise",
        &[
            ("rate", r#"{"name":"rate","unit":"SECONDS"}"#),
            ("sampler", r#"{"name":"sampler","unit":"SECONDS"}"#),
            ("diff", r#"{"name":"diff"}"#),
        ],
        &ts,
        &values,
    );
    bench_chain(
        c,
        "window",
        &[("sma_10", r#"{"name":"sma","size":10}"#)],
        &ts,
        &values,
    );
    bench_chain(
        c,
        "select",
        &[
            (
                "filter",
                r#"{"name":"filter","filter_op":"lt","threshold":50}"#,
            ),
            ("trim", r#"{"name":"trim","trim":"both"}"#),
        ],
        &ts,
        &values,
    );
}

fn host_tags(h: usize) -> Tags {
    Tags::from_pairs([
        ("host", format!("host_{h}")),
        ("dc", format!("dc_{}", h % 4)),
    ])
}

/// End to end through `execute` over the embedded engine.
fn query(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig {
        wal_sync: WalSync::None,
        ..EngineConfig::new(dir.path().join("data"))
    })
    .unwrap();
    const SERIES: usize = 100;
    const PER: usize = 100_000;
    for h in 0..SERIES {
        let (ts, values) = walk(PER, h as u64);
        engine
            .write(&WriteBatch {
                series: vec![SeriesPoints {
                    key: SeriesKey::new("cpu", kairosdb_model::DataType::Double, host_tags(h)),
                    ttl_secs: 0,
                    points: Points::Double { ts, values },
                }],
            })
            .unwrap();
    }
    engine.flush().unwrap();
    let budget = Budget::default();
    let ctx = Context {
        range: TimeRange::new(T0, T0 + PER as i64 * 10_000),
        time_zone: None,
        now_ms: i64::MAX,
        budget: &budget,
    };
    let q = MetricQuery {
        name: "cpu".into(),
        filter: TagFilter::default(),
        filter_text: Vec::new(),
        limit: None,
        order: Order::Asc,
        exclude_tags: false,
        alias: None,
        group_by_tags: vec!["dc".into()],
        aggregators: vec![spec(
            r#"{"name":"sum","sampling":{"value":1,"unit":"MINUTES"}}"#,
        )],
        group_bys: Vec::new(),
    };
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements((SERIES * PER) as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("sum_1m_buckets_by_dc", |b| {
        b.iter(|| execute(&engine, &ctx, &q).unwrap())
    });
    g.finish();

    // TSBS cpu-max-all-8's shape: 8 hosts on the same ticks merged into one group, the
    // max per hour over 8 hours (the aligned merge and partial block decoding).
    let hosts = (0..8)
        .map(|h| TagMatcher::Exact(format!("host_{}", h * 11)))
        .collect();
    let eight = MetricQuery {
        filter: TagFilter {
            tags: vec![("host".into(), hosts)],
        },
        group_by_tags: Vec::new(),
        aggregators: vec![spec(
            r#"{"name":"max","sampling":{"value":1,"unit":"HOURS"}}"#,
        )],
        ..q
    };
    let ctx = Context {
        range: TimeRange::new(T0 + 3_600_000, T0 + 9 * 3_600_000 - 1),
        ..ctx
    };
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(8 * 2_880));
    g.bench_function("max_1h_8_aligned_hosts_8h", |b| {
        b.iter(|| execute(&engine, &ctx, &eight).unwrap())
    });

    // TSBS lastpoint's shape for one metric: the last point of each of the 100 hosts,
    // grouped by host (edge reads, then 100 one-series groups).
    let last = MetricQuery {
        filter: TagFilter::default(),
        group_by_tags: vec!["host".into()],
        aggregators: vec![spec(
            r#"{"name":"last","sampling":{"value":30,"unit":"DAYS"}}"#,
        )],
        ..eight
    };
    let ctx = Context {
        range: TimeRange::new(T0, T0 + PER as i64 * 10_000),
        ..ctx
    };
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("last_by_host_100", |b| {
        b.iter(|| execute(&engine, &ctx, &last).unwrap())
    });
    g.finish();
}

criterion_group!(benches, aggregators, query);
criterion_main!(benches);

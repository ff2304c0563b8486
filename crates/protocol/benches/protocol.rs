//! Criterion benches for the wire formats, on TSBS-like "devops cpu-only" data
//! (10 tags per series, `cpu.*` metrics, one reading per 10 s):
//! * `ingest/*`: `parse_ingest` on one 10,000-point body (100 series × 100 points),
//!   integer and 2-decimal float values, and 1,000 series × 10 integer points (the shape
//!   of the side-by-side benchmark's requests) — reported as points/s;
//! * `telnet/put`: `parse_line` over 10,000 `put` lines — lines/s;
//! * `response/*`: `write_query_response` for 10,000 points (integers, 2-decimal
//!   doubles, and whole-number doubles as an aggregator of integers gives) — points/s; and
//!   `response/lastpoint_100_groups`, TSBS lastpoint's answer for one metric (100
//!   one-value groups with their 10 tags) — groups/s;
//! * `query_request/*`: `parse_query_request` on the bodies of the TSBS queries the
//!   side-by-side benchmark sends (`single_groupby`: one metric, one host, one `max`).
//!
//! Run: `cargo bench -p kairosdb-protocol`. Inputs are generated from a fixed seed. The
//! allocator is jemalloc, as in the server binary.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kairosdb_model::{
    BatchBuilder, DataType, GroupByResult, GroupTags, OutColumn, QueryResult, ResultGroup,
    SeriesKey, Tags,
};
use kairosdb_protocol::{ingest, query, response, telnet};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// Tiny deterministic generator (xorshift), enough for benchmark inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn host_tags(rng: &mut Rng, h: usize) -> Vec<(&'static str, String)> {
    let regions = ["us-east-1", "us-west-1", "eu-west-1", "ap-southeast-2"];
    vec![
        ("hostname", format!("host_{h}")),
        ("region", regions[rng.below(4) as usize].to_string()),
        ("datacenter", format!("{}a", regions[rng.below(4) as usize])),
        ("rack", rng.below(100).to_string()),
        (
            "os",
            ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"][rng.below(3) as usize].to_string(),
        ),
        ("arch", ["x64", "x86"][rng.below(2) as usize].to_string()),
        (
            "team",
            ["SF", "NYC", "LON", "CHI"][rng.below(4) as usize].to_string(),
        ),
        ("service", rng.below(20).to_string()),
        ("service_version", rng.below(2).to_string()),
        (
            "service_environment",
            ["production", "staging", "test"][rng.below(3) as usize].to_string(),
        ),
    ]
}

fn value(rng: &mut Rng, float: bool) -> String {
    let v = rng.below(10_000);
    if float {
        format!("{}.{:02}", v / 100, v % 100)
    } else {
        (v / 100).to_string()
    }
}

/// `hosts` × 10 fields series, 10,000 points in all (10 hosts: 100 points an object;
/// 100 hosts: 10, as the side-by-side benchmark's requests).
pub fn tsbs_json(float: bool, hosts: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut body = String::from("[");
    let per_object = 10_000 / (hosts * FIELDS.len()) as i64;
    for h in 0..hosts {
        let tags = host_tags(&mut rng, h);
        for f in FIELDS {
            if body.len() > 1 {
                body.push(',');
            }
            body.push_str(&format!("{{\"name\":\"cpu.{f}\",\"tags\":{{"));
            for (i, (k, v)) in tags.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&format!("\"{k}\":\"{v}\""));
            }
            body.push_str("},\"datapoints\":[");
            for p in 0..per_object {
                if p > 0 {
                    body.push(',');
                }
                let ts = 1_451_606_400_000i64 + p * 10_000;
                body.push_str(&format!("[{ts},{}]", value(&mut rng, float)));
            }
            body.push_str("]}");
        }
    }
    body.push(']');
    body.into_bytes()
}

/// 10,000 telnet `put` lines (seconds timestamps, as the TSBS telnet files) over
/// `hosts` × 10 series.
pub fn tsbs_telnet(hosts: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let hosts: Vec<_> = (0..hosts).map(|h| host_tags(&mut rng, h)).collect();
    let mut lines = Vec::new();
    for step in 0..(1000 / hosts.len()) as i64 {
        for tags in &hosts {
            for f in FIELDS {
                let mut l = format!(
                    "put cpu.{f} {} {}",
                    1_451_606_400 + step * 10,
                    value(&mut rng, false)
                );
                for (k, v) in tags {
                    l.push_str(&format!(" {k}={v}"));
                }
                lines.push(l.into_bytes());
            }
        }
    }
    lines
}

/// `kind`: "long" (raw integers), "double" (2-decimal floats) or "double_whole" (doubles
/// holding whole numbers, as a max, min, count or sum of integer data gives).
fn response_input(kind: &str) -> Vec<QueryResult> {
    let mut rng = Rng(7);
    let results = (0..10)
        .map(|g| {
            let ts: Vec<i64> = (0..1000).map(|p| 1_451_606_400_000 + p * 10_000).collect();
            let values = match kind {
                "double" => OutColumn::Double(
                    (0..1000)
                        .map(|_| rng.below(10_000) as f64 / 100.0)
                        .collect(),
                ),
                "double_whole" => {
                    OutColumn::Double((0..1000).map(|_| rng.below(100) as f64).collect())
                }
                _ => OutColumn::Long((0..1000).map(|_| rng.below(100) as i64).collect()),
            };
            ResultGroup {
                name: "cpu.usage_user".into(),
                alias: None,
                group_by: vec![GroupByResult::Type(kairosdb_model::GroupType::Number)],
                tags: Some(GroupTags::new(vec![Arc::new(SeriesKey::new(
                    "cpu.usage_user",
                    DataType::Long,
                    Tags::from_pairs([("hostname", format!("host_{g}"))]),
                ))])),
                ts,
                values,
            }
        })
        .collect();
    vec![QueryResult {
        coverage: None,
        sample_size: 10_000,
        results,
    }]
}

/// TSBS lastpoint's answer for one metric: 100 groups of one series (grouped by
/// hostname), each with its 10 tags and one value.
fn lastpoint_input() -> Vec<QueryResult> {
    let mut rng = Rng(11);
    let results = (0..100)
        .map(|h| {
            let tags = Tags::from_pairs(host_tags(&mut rng, h));
            let hostname = tags.get("hostname").unwrap().to_string();
            ResultGroup {
                name: "cpu.usage_user".into(),
                alias: None,
                group_by: vec![
                    GroupByResult::Tag {
                        tags: vec!["hostname".into()],
                        group: vec![("hostname".into(), hostname)],
                    },
                    GroupByResult::Type(kairosdb_model::GroupType::Number),
                ],
                tags: Some(GroupTags::new(vec![Arc::new(SeriesKey::new(
                    "cpu.usage_user",
                    DataType::Long,
                    tags,
                ))])),
                ts: vec![1_451_692_790_000],
                values: OutColumn::Long(vec![rng.below(100) as i64]),
            }
        })
        .collect();
    vec![QueryResult {
        coverage: None,
        sample_size: 100,
        results,
    }]
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    for (name, float, hosts) in [
        ("tsbs_int", false, 10),
        ("tsbs_float2", true, 10),
        ("tsbs_int_1000_series", false, 100),
    ] {
        let body = tsbs_json(float, hosts);
        let out = ingest::parse_ingest(&body);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.batch.point_count(), 10_000);
        g.throughput(Throughput::Elements(10_000));
        g.bench_function(name, |b| b.iter(|| ingest::parse_ingest(black_box(&body))));
    }
    g.finish();

    // One builder per 10,000 lines: 1,000 series × 10 points (TSBS, 100 hosts), or
    // 100 series × 100 points (10 hosts, mostly the repeat-series path).
    let mut g = c.benchmark_group("telnet");
    for (name, hosts) in [("put_1000_series", 100), ("put_100_series", 10)] {
        let lines = tsbs_telnet(hosts);
        assert_eq!(lines.len(), 10_000);
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut builder = BatchBuilder::new();
                for l in &lines {
                    telnet::parse_line(black_box(l), &mut builder).unwrap();
                }
                builder.finish()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("response");
    for name in ["long", "double", "double_whole"] {
        let input = response_input(name);
        let mut out = Vec::with_capacity(1 << 20);
        g.throughput(Throughput::Elements(10_000));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                response::write_query_response(&mut out, black_box(&input)).unwrap();
                out.len()
            })
        });
    }
    // Tag-heavy: 100 groups of one value each (throughput counts groups).
    let input = lastpoint_input();
    let mut out = Vec::with_capacity(1 << 20);
    g.throughput(Throughput::Elements(100));
    g.bench_function("lastpoint_100_groups", |b| {
        b.iter(|| {
            out.clear();
            response::write_query_response(&mut out, black_box(&input)).unwrap();
            out.len()
        })
    });
    g.finish();

    // The body `scripts/bench-vs-influxdb.sh` sends for single-groupby-1-1-1, and
    // cpu-max-all-8's (ten metrics, eight hosts).
    let mut g = c.benchmark_group("query_request");
    let agg = r#"[{"name": "max", "sampling": {"value": 60, "unit": "seconds"}, "align_start_time": true}]"#;
    let one = |m: &str, hosts: &str| {
        format!(r#"{{"name": "cpu.{m}", "tags": {{"hostname": [{hosts}]}}, "aggregators": {agg}}}"#)
    };
    let single = format!(
        r#"{{"start_absolute": 1451646180000, "end_absolute": 1451649779999, "metrics": [{}]}}"#,
        one("usage_user", r#""host_19""#)
    );
    let hosts: Vec<String> = (0..8).map(|h| format!(r#""host_{}""#, h * 11)).collect();
    let all: Vec<String> = FIELDS.iter().map(|f| one(f, &hosts.join(", "))).collect();
    let cpu_max_all_8 = format!(
        r#"{{"start_absolute": 1451646180000, "end_absolute": 1451674979999, "metrics": [{}]}}"#,
        all.join(", ")
    );
    for (name, body) in [("single_groupby", single), ("cpu_max_all_8", cpu_max_all_8)] {
        let parsed = query::parse_query_request(body.as_bytes(), 0).unwrap();
        assert!(!parsed.metrics.is_empty() && !parsed.metrics[0].aggregators.is_empty());
        g.bench_function(name, |b| {
            b.iter(|| query::parse_query_request(black_box(body.as_bytes()), 0).unwrap())
        });
    }
    g.finish();
}

criterion_group!(protocol, benches);
criterion_main!(protocol);

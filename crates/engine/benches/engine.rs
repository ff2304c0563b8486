//! Engine benchmarks (criterion), on TSBS-devops-like data: 100 hosts with 10 tags,
//! a 10 s float random walk rounded to 2 decimals.
//!
//! * `write/10k_batch`: `Engine::write` of 100 series × 100 points, `WalSync::None`,
//!   sealing left to the background thread (what a client sees).
//! * `write/10k_batch_inline_seal`: the same plus the sealing it causes, on the
//!   calling thread (sustained single-core cost of ingest).
//! * `block/encode_2048`, `block/decode_2048`: the pco block codec alone.
//! * `query/decode_sealed`: a full-range query of 100 sealed series (2 M points),
//!   through fjall, decode, merge and result building.
//!
//! Run: `cargo bench -p kairosdb-engine --bench engine`. Inputs come from fixed
//! seeds; the allocator is jemalloc, as in the server binary.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kairosdb_engine::internals::{decode, encode, Col, Decoded, Expiry, NEVER};
use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::{
    DataType, Points, SeriesKey, SeriesPoints, SeriesQuery, Storage, StorageError, TagFilter, Tags,
    TimeRange, WriteBatch,
};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const T0: i64 = 1_700_000_000_000;
const HOSTS: usize = 100;
const PER_BATCH: usize = 100;

fn host_tags(h: usize) -> Tags {
    Tags::from_pairs([
        ("hostname", format!("host_{h}")),
        ("region", format!("region_{}", h % 3)),
        ("datacenter", format!("dc_{}", h % 7)),
        ("rack", format!("{}", h % 50)),
        ("os", "Ubuntu16.04LTS".to_string()),
        ("arch", "x64".to_string()),
        ("team", format!("team_{}", h % 4)),
        ("service", format!("{}", h % 20)),
        ("service_version", format!("{}", h % 2)),
        ("service_environment", "production".to_string()),
    ])
}

/// Gaussian random walk (σ 0.5) rounded to 2 decimals.
fn walk(rng: &mut rand::rngs::StdRng, v: &mut f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            *v += 0.5 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (*v * 100.0).round() / 100.0
        })
        .collect()
}

fn devops_batch(rng: &mut rand::rngs::StdRng, state: &mut [f64]) -> WriteBatch {
    let series = (0..HOSTS)
        .map(|h| SeriesPoints {
            key: SeriesKey::new("cpu.usage_user", DataType::Double, host_tags(h)),
            ttl_secs: 0,
            points: Points::Double {
                ts: (0..PER_BATCH as i64).map(|i| T0 + i * 10_000).collect(),
                values: walk(rng, &mut state[h], PER_BATCH),
            },
        })
        .collect();
    WriteBatch { series }
}

/// Moves every timestamp of the batch forward by one batch span.
fn advance(b: &mut WriteBatch) {
    for s in &mut b.series {
        if let Points::Double { ts, .. } = &mut s.points {
            for t in ts.iter_mut() {
                *t += PER_BATCH as i64 * 10_000;
            }
        }
    }
}

fn bench_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements((HOSTS * PER_BATCH) as u64));
    g.measurement_time(Duration::from_secs(8));
    for (name, inline_seal) in [("10k_batch", false), ("10k_batch_inline_seal", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EngineConfig::new(dir.path());
        cfg.wal_sync = WalSync::None;
        cfg.background = !inline_seal;
        let engine = Engine::open(cfg).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut state = vec![50.0; HOSTS];
        let mut batch = devops_batch(&mut rng, &mut state);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    advance(&mut batch);
                    let t = Instant::now();
                    write_waiting(&engine, &batch);
                    if inline_seal {
                        engine.run_maintenance().unwrap();
                    }
                    spent += t.elapsed();
                }
                spent
            })
        });
        engine.close().unwrap();
    }
    g.finish();
}

/// Writes `batch`, waiting out back-pressure as a client would: with background sealing
/// the head outgrows `max_head_bytes` when writes outrun the seals, so the time includes
/// the waits and the figure is the sustained write rate (before, the bench panicked).
fn write_waiting(engine: &Engine, batch: &WriteBatch) {
    loop {
        match engine.write(batch) {
            Ok(()) => return,
            Err(StorageError::Backpressure { .. }) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

fn bench_block(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut v = 50.0;
    let n = 2048;
    let ts: Vec<i64> = (0..n as i64).map(|i| T0 + i * 10_000).collect();
    let vals = Col::Double(walk(&mut rng, &mut v, n));
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(n as u64));
    for level in [3usize, 8] {
        g.bench_function(format!("encode_2048_level{level}"), |b| {
            b.iter(|| encode(&ts, &vals, Expiry::Uniform(NEVER), level))
        });
    }
    let bytes = encode(&ts, &vals, Expiry::Uniform(NEVER), 3);
    eprintln!(
        "block: {} points → {} bytes = {:.3} B/pt (ts + value, header included)",
        n,
        bytes.len(),
        bytes.len() as f64 / n as f64
    );
    let mut d = Decoded::new();
    g.bench_function("decode_2048", |b| {
        b.iter(|| decode(&bytes, &mut d).unwrap())
    });
    let longs = Col::Long((0..n as i64).map(|i| 1000 + (i * 7919) % 13).collect());
    let lbytes = encode(&ts, &longs, Expiry::Uniform(NEVER), 3);
    g.bench_function("decode_2048_long", |b| {
        b.iter(|| decode(&lbytes, &mut d).unwrap())
    });
    g.finish();
}

/// `query/decode_sealed_2M`: every point of 100 series (2 M points in sealed blocks);
/// `query/one_hour_of_one_host`: 360 points of one series from inside its blocks.
fn bench_query(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.wal_sync = WalSync::None;
    cfg.background = false;
    let engine = Engine::open(cfg).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut state = vec![50.0; HOSTS];
    let rounds = 200; // 200 × 100 points per series = 20,000 points per series
    let mut batch = devops_batch(&mut rng, &mut state);
    for _ in 0..rounds {
        engine.write(&batch).unwrap();
        advance(&mut batch);
        batch = WriteBatch {
            series: batch
                .series
                .into_iter()
                .enumerate()
                .map(|(h, mut s)| {
                    if let Points::Double { values, .. } = &mut s.points {
                        *values = walk(&mut rng, &mut state[h], PER_BATCH);
                    }
                    s
                })
                .collect(),
        };
        engine.run_maintenance().unwrap();
    }
    engine.flush().unwrap();
    let total = (HOSTS * PER_BATCH * rounds) as u64;
    let q = SeriesQuery::new("cpu.usage_user", TagFilter::default(), TimeRange::ALL);
    assert_eq!(
        engine
            .query(&q)
            .unwrap()
            .expect_complete()
            .iter()
            .map(|s| s.points.len() as u64)
            .sum::<u64>(),
        total
    );
    let stats = engine.stats();
    let gauge = |n: &str| stats.gauges.iter().find(|g| g.0 == n).map_or(0.0, |g| g.2);
    eprintln!(
        "query setup: {total} points in {} blocks, {:.3} B/pt encoded",
        gauge("engine_blocks"),
        gauge("engine_block_bytes") / total as f64,
    );
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(total));
    g.sample_size(20);
    g.bench_function("decode_sealed_2M", |b| b.iter(|| engine.query(&q).unwrap()));
    g.finish();

    // TSBS single-groupby's read: one host, one hour (360 points) from inside its blocks.
    let start = T0 + 3_000 * 10_000;
    let hour = SeriesQuery {
        filter: TagFilter::from_pairs(&[("hostname", &["host_7"])]),
        range: TimeRange::new(start, start + 3_600_000 - 1),
        ..q
    };
    let got = engine.query(&hour).unwrap().expect_complete();
    assert_eq!((got.len(), got[0].points.len()), (1, 360));
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(360));
    g.bench_function("one_hour_of_one_host", |b| {
        b.iter(|| engine.query(&hour).unwrap())
    });
    g.finish();
    engine.close().unwrap();
}

criterion_group!(benches, bench_write, bench_block, bench_query);
criterion_main!(benches);

//! `kairosdb-bench`: load tool for the whole server.
//!
//! Sends TSBS "devops cpu-only" data (10 hosts tags, 10 `cpu.*` metrics, one reading every
//! 10 s) to a running server over HTTP JSON or telnet with C concurrent connections, and
//! reports points/s over wall time, the server's CPU seconds (from `/proc/PID/stat`),
//! **points per server CPU-second** (the stable figure on shared 2-core machines), request
//! latency and the server's peak RSS.
//!
//! Data comes either from a dataset written by `../shared/bench/run.py gen` (`--data DIR`,
//! its `kairos/*.json` or `telnet/*.txt` files, sent as they are) or from the built-in
//! generator (`--hosts`, `--hours`, `--values`), which follows the same model.
//!
//! ```sh
//! kairosdb-bench http   --url http://127.0.0.1:8080 --pid $PID -c 4 --hosts 100 --hours 24
//! kairosdb-bench telnet --addr 127.0.0.1:4242 --pid $PID -c 4 --hosts 100 --hours 6
//! ```

mod data;
mod proc_stat;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(version, about = "Load tool for a KairosDB-compatible server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// POST JSON batches to /api/v1/datapoints.
    Http {
        /// Server base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Compress bodies with gzip (Content-Encoding: gzip).
        #[arg(long)]
        gzip: bool,
        /// Send `Authorization: Bearer TOKEN` (a server with auth_enabled).
        #[arg(long, value_name = "TOKEN")]
        bearer: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Stream `put` lines to the telnet port; each connection ends with `version` and
    /// waits for the answer, so the clock stops once the server has read every line.
    Telnet {
        #[arg(long, default_value = "127.0.0.1:4242")]
        addr: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// PID of the server, to measure its CPU time and peak RSS; repeat it for a server of
    /// several processes (a cluster): their CPU seconds and peak RSS are summed.
    #[arg(long)]
    pid: Vec<u32>,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 4)]
    concurrency: usize,
    /// Dataset directory written by `../shared/bench/run.py gen`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Built-in generator: number of hosts (10 series each).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Built-in generator: hours of data at 10 s intervals.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Built-in generator: `int` (TSBS, truncated walk) or `float` (walk with 2 decimals).
    #[arg(long, default_value = "int")]
    values: String,
    /// Built-in generator: points per request (per telnet chunk).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

impl Common {
    fn load(&self, format: data::Format) -> Result<Vec<data::Batch>> {
        match &self.data {
            Some(dir) => data::read_dataset(dir, format),
            None => {
                let float = match self.values.as_str() {
                    "int" => false,
                    "float" => true,
                    other => bail!("--values must be int or float, not {other}"),
                };
                let steps = (self.hours * 360.0).round() as usize;
                Ok(data::generate(self.hosts, steps, float, self.batch, format))
            }
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Http {
            url,
            gzip,
            bearer,
            common,
        } => {
            let batches = common.load(data::Format::Json)?;
            let batches = if gzip {
                data::gzip_all(batches)?
            } else {
                batches
            };
            rt.block_on(run_http(&url, gzip, bearer, &common, batches))
        }
        Command::Telnet { addr, common } => {
            let batches = common.load(data::Format::Telnet)?;
            rt.block_on(run_telnet(&addr, &common, batches))
        }
    }
}

/// What every load run measures.
struct Run {
    start: Instant,
    cpu_before: Option<f64>,
    points: u64,
    bytes: u64,
    latencies_us: Vec<u64>,
}

/// The sum of `read` over `pids`; `None` without pids or when one cannot be read.
fn total(pids: &[u32], read: impl Fn(u32) -> Option<f64>) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| read(p)).sum()
}

impl Run {
    fn begin(pids: &[u32]) -> Run {
        Run {
            start: Instant::now(),
            cpu_before: total(pids, proc_stat::cpu_seconds),
            points: 0,
            bytes: 0,
            latencies_us: Vec::new(),
        }
    }

    fn report(mut self, kind: &str, pids: &[u32], errors: u64) {
        let wall = self.start.elapsed().as_secs_f64();
        println!(
            "{kind}: {} points, {:.1} MB in {wall:.2} s",
            self.points,
            self.bytes as f64 / 1e6
        );
        println!(
            "  points/s (wall):          {:.0}",
            self.points as f64 / wall
        );
        if let Some(before) = self.cpu_before {
            if let Some(after) = total(pids, proc_stat::cpu_seconds) {
                let cpu = after - before;
                println!("  server CPU seconds:       {cpu:.2}");
                println!(
                    "  points per server CPU-s:  {:.0}",
                    self.points as f64 / cpu.max(1e-9)
                );
            }
            if let Some(hwm) = total(pids, |p| proc_stat::peak_rss_bytes(p).map(|b| b as f64)) {
                println!(
                    "  server peak RSS:          {:.1} MiB",
                    hwm / (1 << 20) as f64
                );
            }
        }
        if !self.latencies_us.is_empty() {
            self.latencies_us.sort_unstable();
            let p = |q: f64| self.latencies_us[((self.latencies_us.len() - 1) as f64 * q) as usize];
            println!(
                "  request latency p50/p99/max: {} / {} / {} us",
                p(0.5),
                p(0.99),
                p(1.0)
            );
        }
        println!("  errors:                   {errors}");
    }
}

async fn run_http(
    url: &str,
    gzip: bool,
    bearer: Option<String>,
    common: &Common,
    batches: Vec<data::Batch>,
) -> Result<()> {
    let endpoint = format!("{}/api/v1/datapoints", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.concurrency)
        .build()?;
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let mut run = Run::begin(&common.pid);
    let mut tasks = Vec::new();
    for _ in 0..common.concurrency {
        let (client, queue, endpoint) = (client.clone(), queue.clone(), endpoint.clone());
        let bearer = bearer.clone();
        tasks.push(tokio::spawn(async move {
            let (mut points, mut bytes, mut errors, mut lat) = (0u64, 0u64, 0u64, Vec::new());
            loop {
                let Some(batch) = queue.lock().expect("queue").next() else {
                    break;
                };
                let mut req = client
                    .post(&endpoint)
                    .header("content-type", "application/json");
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                if let Some(token) = &bearer {
                    req = req.bearer_auth(token);
                }
                let t = Instant::now();
                let len = batch.body.len() as u64;
                match req.body(batch.body).send().await {
                    Ok(resp) if resp.status().as_u16() == 204 => {
                        points += batch.points;
                        bytes += len;
                    }
                    Ok(resp) => {
                        errors += 1;
                        if errors <= 3 {
                            let status = resp.status();
                            eprintln!("HTTP {status}: {}", resp.text().await.unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("request failed: {e}");
                        }
                    }
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            (points, bytes, errors, lat)
        }));
    }
    let mut errors = 0;
    for t in tasks {
        let (p, b, e, l) = t.await?;
        run.points += p;
        run.bytes += b;
        errors += e;
        run.latencies_us.extend(l);
    }
    run.report("http", &common.pid, errors);
    Ok(())
}

async fn run_telnet(addr: &str, common: &Common, batches: Vec<data::Batch>) -> Result<()> {
    // Split the chunks round-robin over the connections up front.
    let mut per_conn: Vec<Vec<data::Batch>> = (0..common.concurrency).map(|_| Vec::new()).collect();
    for (i, b) in batches.into_iter().enumerate() {
        per_conn[i % common.concurrency].push(b);
    }
    let mut run = Run::begin(&common.pid);
    let mut tasks = Vec::new();
    for chunks in per_conn {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr)
                .await
                .with_context(|| format!("connect {addr}"))?;
            stream.set_nodelay(true)?;
            let (read, mut write) = stream.into_split();
            let (mut points, mut bytes) = (0u64, 0u64);
            for c in chunks {
                write.write_all(&c.body).await?;
                points += c.points;
                bytes += c.body.len() as u64;
            }
            write.write_all(b"version\n").await?;
            let mut line = String::new();
            let n = tokio::time::timeout(
                Duration::from_secs(600),
                BufReader::new(read).read_line(&mut line),
            )
            .await
            .context("timed out waiting for the version answer")??;
            if n == 0 {
                bail!("server closed the connection before answering `version`");
            }
            anyhow::Ok((points, bytes))
        }));
    }
    for t in tasks {
        let (p, b) = t.await??;
        run.points += p;
        run.bytes += b;
    }
    run.report("telnet", &common.pid, 0);
    Ok(())
}

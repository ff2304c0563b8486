//! Process lifecycle: graceful SIGTERM, and `kill -9` while four clients write, with the
//! promise that every acknowledged point survives.
//!
//! Acknowledged means: HTTP 204 received; telnet lines followed by a `version` command whose
//! answer arrived on the same connection (the server writes pending lines before answering).
//! The server runs with `wal_sync = always`, so an acknowledgement implies an fsync.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{client, post, read_back, send, Server, Telnet};

#[tokio::test]
async fn sigterm_exits_0_and_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let body = json!([{ "name": "survivor.http", "datapoints": [[1000, 1], [2000, 2.5]], "tags": { "h": "a" } }]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let mut t = server.telnet();
    t.send(b"putm survivor.telnet 3000 3 h=a\nputs survivor.telnet.s 3000 three h=a\n");
    t.version();
    // An idle keep-alive HTTP connection and an open telnet connection must not block exit.
    let keep_alive = client();
    let a = send(keep_alive.get(server.url("/api/v1/version"))).await;
    assert_eq!(a.status, 200);

    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(t);

    let server = Server::start(&data, &[]);
    assert_eq!(
        read_back(&server, "survivor.http").await,
        vec![(1000, json!(1)), (2000, json!(2.5))]
    );
    assert_eq!(
        read_back(&server, "survivor.telnet").await,
        vec![(3000, json!(3))]
    );
    assert_eq!(
        read_back(&server, "survivor.telnet.s").await,
        vec![(3000, json!("three"))]
    );
}

/// Acknowledged points per metric: timestamp → value.
type Acked = Arc<Mutex<BTreeMap<String, BTreeMap<i64, i64>>>>;

const BATCH: i64 = 25;

/// A small deterministic generator for the kill moments (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_point() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("KAIROSDB_WAL_SYNC", "always")];
    let acked: Acked = Arc::default();
    let test_started = Instant::now();

    for round in 0..3i64 {
        let server = Server::start(&data, &env);
        verify(&server, &acked, seed).await;

        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..2 {
            let (url, acked, stop) = (
                server.url("/api/v1/datapoints"),
                acked.clone(),
                stop.clone(),
            );
            clients.push(tokio::spawn(http_client(
                url,
                format!("durable.http.{c}"),
                round,
                acked,
                stop,
            )));
        }
        for c in 0..2 {
            let (addr, acked, stop) = (server.telnet, acked.clone(), stop.clone());
            let metric = format!("durable.telnet.{c}");
            clients.push(tokio::task::spawn_blocking(move || {
                telnet_client(addr, metric, round, acked, stop)
            }));
        }
        let before: usize = count(&acked);
        tokio::time::sleep(Duration::from_millis(400 + rng.next(800))).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        // Every client must have had acknowledged writes, or the test proves nothing.
        let guard = acked.lock().unwrap();
        for metric in [
            "durable.http.0",
            "durable.http.1",
            "durable.telnet.0",
            "durable.telnet.1",
        ] {
            let in_round = guard.get(metric).map_or(0, |m| {
                m.range(round_base(round)..round_base(round + 1)).count()
            });
            assert!(
                in_round > 0,
                "round {round}: {metric} got no acknowledged write (seed {seed})"
            );
        }
        drop(guard);
        assert!(count(&acked) > before);
        eprintln!(
            "round {round}: {} points acknowledged so far",
            count(&acked)
        );
    }
    let server = Server::start(&data, &env);
    verify(&server, &acked, seed).await;
    assert!(
        test_started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        test_started.elapsed()
    );
}

fn round_base(round: i64) -> i64 {
    1_600_000_000_000 + round * 100_000_000
}

fn count(acked: &Acked) -> usize {
    acked.lock().unwrap().values().map(BTreeMap::len).sum()
}

async fn verify(server: &Server, acked: &Acked, seed: u64) {
    let expected = acked.lock().unwrap().clone();
    for (metric, points) in expected {
        let stored: BTreeMap<i64, serde_json::Value> =
            read_back(server, &metric).await.into_iter().collect();
        let missing: Vec<_> = points
            .iter()
            .filter(|(ts, v)| stored.get(ts) != Some(&json!(v)))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "{metric}: acknowledged points lost after kill -9, e.g. {missing:?} (seed {seed}, {} acked, {} stored)",
            points.len(),
            stored.len()
        );
    }
}

/// The `BATCH` points a client sends from its `seq`-th point on in `round`.
fn batch_points(round: i64, seq: i64) -> Vec<(i64, i64)> {
    (seq..seq + BATCH)
        .map(|i| (round_base(round) + i, i))
        .collect()
}

/// Records points the server acknowledged.
fn acknowledged(acked: &Acked, metric: &str, points: Vec<(i64, i64)>) {
    acked
        .lock()
        .unwrap()
        .entry(metric.to_string())
        .or_default()
        .extend(points);
}

async fn http_client(url: String, metric: String, round: i64, acked: Acked, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let points = batch_points(round, seq);
        let body = json!([{ "name": metric, "datapoints": points, "tags": { "client": metric } }]);
        match client.post(&url).body(body.to_string()).send().await {
            Ok(r) if r.status() == 204 => {
                acknowledged(&acked, &metric, points);
                seq += BATCH;
            }
            Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(r) => panic!("unexpected ingest answer {}", r.status()),
            Err(_) => break, // the server was killed
        }
    }
}

fn telnet_client(
    addr: std::net::SocketAddr,
    metric: String,
    round: i64,
    acked: Acked,
    stop: Arc<AtomicBool>,
) {
    let Ok(stream) = std::net::TcpStream::connect(addr) else {
        return;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut t = Telnet { stream };
    let mut seq = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let points = batch_points(round, seq);
        let mut text = String::new();
        for (ts, v) in &points {
            text.push_str(&format!("putm {metric} {ts} {v} client={metric}\n"));
        }
        text.push_str("version\n");
        use std::io::{BufRead, Write};
        if t.stream.write_all(text.as_bytes()).is_err() {
            break;
        }
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(&t.stream);
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 && line.starts_with("KairosDB ") => {
                acknowledged(&acked, &metric, points);
                seq += BATCH;
            }
            _ => break, // the server was killed
        }
    }
}

//! The `kairosdb` server in Cassandra mode against a **live** Cassandra: the HTTP and
//! telnet round trip, and Cassandra stopped and restarted in the middle of a sustained
//! ingest (the delivery queue holds, `/health/ready` follows, nothing acknowledged is
//! lost or written twice), and roll-up tasks shared by two servers on one keyspace.
//!
//! `scripts/test.sh` starts the node (`scripts/cassandra.sh`) and sets
//! `KAIROSDB_TEST_CASSANDRA=127.0.0.1:19042`; without it every case is listed as ignored
//! and the binary prints how to run them. The restart case starts and restarts a node of
//! its own (`kairosdb_cassandra::test_node`), so the shared node is never disturbed.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use serde_json::json;

use harness::{get, post, read_back, unique, Server};
use kairosdb_cassandra::test_node::TestNode;

const ENV: &str = "KAIROSDB_TEST_CASSANDRA";

fn main() {
    let args = Arguments::from_args();
    let cases: [(&str, fn()); 3] = [
        (
            "http_and_telnet_round_trip_through_a_live_cassandra",
            http_and_telnet_round_trip_through_a_live_cassandra,
        ),
        (
            "cassandra_restarted_mid_ingest_loses_and_doubles_nothing_acknowledged",
            cassandra_restarted_mid_ingest_loses_and_doubles_nothing_acknowledged,
        ),
        (
            "two_servers_on_one_keyspace_run_each_rollup_task_on_exactly_one_of_them",
            two_servers_on_one_keyspace_run_each_rollup_task_on_exactly_one_of_them,
        ),
    ];
    let skip = std::env::var_os(ENV).is_none();
    if skip {
        println!(
            "live: {} server tests on Cassandra skipped: {ENV} is not set. Run scripts/test.sh.",
            cases.len()
        );
    }
    let trials = cases
        .into_iter()
        .map(|(name, case)| {
            Trial::test(name, move || {
                case();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A server in Cassandra mode on a keyspace of its own (the node's data goes when
/// `scripts/cassandra.sh stop` ends the run).
fn on_cassandra(node: &str) -> Server {
    let keyspace = format!("kairosdb_live_{}", unique());
    Server::fresh(&[
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", node),
        ("KAIROSDB_CASSANDRA_KEYSPACE", keyspace.as_str()),
    ])
}

async fn wait_ready(server: &Server, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let ready = get(server, "/health/ready").await;
        if ready.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready after {within:?}: {}",
            ready.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Value of a Prometheus sample `name` (no labels) in `/metrics`.
async fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = get(server, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Reads `metric` until it has `n` points (the queue delivers in the background).
async fn read_until(server: &Server, metric: &str, n: usize, within: Duration) -> Vec<i64> {
    let deadline = Instant::now() + within;
    loop {
        let ts: Vec<i64> = read_back(server, metric)
            .await
            .into_iter()
            .map(|p| p.0)
            .collect();
        if ts.len() >= n || Instant::now() > deadline {
            return ts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn http_and_telnet_round_trip_through_a_live_cassandra() {
    let server = &on_cassandra(&std::env::var(ENV).unwrap());
    block_on(async {
        wait_ready(server, Duration::from_secs(60)).await;
        let body = json!([
            { "name": "live.http", "tags": { "host": "a b", "dc": "zürich" },
              "datapoints": [[1_700_000_000_000_i64, 1], [1_700_000_000_001_i64, 2.5]] },
            { "name": "live.http", "tags": { "host": "c" },
              "datapoints": [[1_700_000_000_000_i64, "text"]] },
        ]);
        let a = post(server, "/api/v1/datapoints", body.to_string()).await;
        assert_eq!(a.status, 204, "{}", a.text());
        let mut telnet = server.telnet();
        telnet.send(b"put live.telnet 1700000000000 42 host=t\n");
        assert!(telnet.version().starts_with("KairosDB"));

        let got = read_until(server, "live.http", 3, Duration::from_secs(30)).await;
        assert_eq!(
            got,
            [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_001]
        );
        let got = read_until(server, "live.telnet", 1, Duration::from_secs(30)).await;
        assert_eq!(got, [1_700_000_000_000]);

        let names = get(server, "/api/v1/metricnames").await.json();
        let mut names: Vec<String> = names["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["live.http", "live.telnet"]);

        let tags = post(
            server,
            "/api/v1/datapoints/query/tags",
            json!({ "start_absolute": 0, "metrics": [{ "name": "live.http" }] }).to_string(),
        )
        .await
        .json();
        let host = &tags["queries"][0]["results"][0]["tags"]["host"];
        assert_eq!(host, &json!(["a b", "c"]));
    });
}

/// Posts batches of 50 points without pause while `scripts/cassandra.sh restart` stops
/// a node of the test's own and starts it again on its data.
fn cassandra_restarted_mid_ingest_loses_and_doubles_nothing_acknowledged() {
    let node = Arc::new(TestNode::start(&[], &[]));
    let server = &on_cassandra(&node.address);
    block_on(async {
        wait_ready(server, Duration::from_secs(60)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url("/api/v1/datapoints");
        let ingest = tokio::spawn(ingest(url, stop.clone()));
        tokio::time::sleep(Duration::from_secs(2)).await;

        let started = Instant::now();
        let restarting = node.clone();
        let restart = tokio::task::spawn_blocking(move || restarting.restart());
        let (mut saw_unready, mut most_queued) = (false, 0.0_f64);
        while !restart.is_finished() {
            saw_unready |= get(server, "/health/ready").await.status == 503;
            let queued = metric(server, "kairosdb_queue_points").await.unwrap_or(0.0);
            most_queued = most_queued.max(queued);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        restart.await.expect("scripts/cassandra.sh restart");
        eprintln!("restart: node back after {:?}", started.elapsed());
        assert!(saw_unready, "/health/ready never reported the node down");
        assert!(most_queued > 0.0, "nothing was held in the queue");
        wait_ready(server, Duration::from_secs(60)).await;
        eprintln!("restart: server ready after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let (acked, refused) = ingest.await.unwrap();
        assert!(!acked.is_empty());

        let expect: Vec<i64> = acked.iter().flat_map(|&b| batch_timestamps(b)).collect();
        let got = read_until(
            server,
            "live.restart",
            expect.len(),
            Duration::from_secs(120),
        )
        .await;
        eprintln!(
            "restart: {} points acknowledged, {} read after {:?}",
            expect.len(),
            got.len(),
            started.elapsed()
        );
        let mut got_sorted = got.clone();
        got_sorted.dedup();
        assert_eq!(got_sorted.len(), got.len(), "a point was read twice");
        // Refused batches (503 when the queue is full) may or may not have landed; every
        // acknowledged one has, once.
        let read: std::collections::HashSet<i64> = got.iter().copied().collect();
        let missing: Vec<&i64> = expect.iter().filter(|t| !read.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged points missing (first {:?}); {} batches acknowledged, {refused} refused",
            missing.len(),
            missing.first(),
            acked.len()
        );
        assert!(got.len() <= expect.len() + refused * 50);
    });
}

fn batch_timestamps(batch: u64) -> impl Iterator<Item = i64> {
    let base = 1_700_000_000_000 + batch as i64 * 50;
    base..base + 50
}

/// Posts batch after batch until `stop`; returns the acknowledged batch numbers and how
/// many were refused.
async fn ingest(url: String, stop: Arc<AtomicBool>) -> (Vec<u64>, usize) {
    let client = harness::client();
    let (mut acked, mut refused) = (Vec::new(), 0);
    let mut batch = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        let points: Vec<(i64, i64)> = batch_timestamps(batch).map(|t| (t, t % 1000)).collect();
        let body =
            json!([{ "name": "live.restart", "tags": { "host": "a" }, "datapoints": points }]);
        match client.post(&url).body(body.to_string()).send().await {
            Ok(r) if r.status().as_u16() == 204 => acked.push(batch),
            Ok(r) => {
                assert_eq!(r.status().as_u16(), 503, "unexpected answer");
                refused += 1;
            }
            Err(e) => panic!("ingest request failed: {e}"),
        }
        batch += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (acked, refused)
}

/// Two processes share a keyspace and its roll-up tasks: a task created through one is
/// run by exactly one of them (the lease in `_Rollups`), and its results are complete.
fn two_servers_on_one_keyspace_run_each_rollup_task_on_exactly_one_of_them() {
    let node = std::env::var(ENV).unwrap();
    let keyspace = format!("kairosdb_live_{}", unique());
    let env = [
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", node.as_str()),
        ("KAIROSDB_CASSANDRA_KEYSPACE", keyspace.as_str()),
        ("KAIROSDB_ROLLUP_LATE_WINDOW_SECS", "5"),
    ];
    let a = Server::fresh(&env);
    block_on(async {
        wait_ready(&a, Duration::from_secs(60)).await;
        let b = Server::fresh(&env);
        wait_ready(&b, Duration::from_secs(60)).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            / 1000
            * 1000;
        let points: Vec<serde_json::Value> = (now - 5_000..now + 30_000)
            .step_by(500)
            .map(|t| json!([t, 1]))
            .collect();
        let body = json!([{"name": "src", "tags": {"h": "x"}, "datapoints": points}]);
        assert_eq!(
            post(&a, "/api/v1/datapoints", body.to_string())
                .await
                .status,
            204
        );
        let task = json!({
            "name": "shared",
            "execution_interval": {"value": 1, "unit": "seconds"},
            "rollups": [{"save_as": "src.1s", "query": {
                "start_relative": {"value": 1, "unit": "hours"},
                "metrics": [{"name": "src", "aggregators": [
                    {"name": "count", "sampling": {"value": 1, "unit": "seconds"}}]}]}}]
        });
        let created = post(&a, "/api/v1/rollups", task.to_string()).await;
        assert_eq!(created.status, 200, "{}", created.text());
        // Both see the task; let it run for a while.
        let id = created.json()["id"].as_str().unwrap().to_string();
        assert_eq!(get(&b, &format!("/api/v1/rollups/{id}")).await.status, 200);
        let rolled = read_until(&b, "src.1s", 6, Duration::from_secs(40)).await;
        assert!(rolled.len() >= 6, "rolled up: {rolled:?}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs_a = metric(&a, "kairosdb_rollup_executions_total")
            .await
            .unwrap_or(0.0);
        let runs_b = metric(&b, "kairosdb_rollup_executions_total")
            .await
            .unwrap_or(0.0);
        assert!(
            (runs_a > 0.0) != (runs_b > 0.0),
            "executions: a {runs_a}, b {runs_b}: exactly one server runs the task"
        );
        let values = read_back(&b, "src.1s").await;
        for pair in values.windows(2) {
            assert_eq!(pair[1].0 - pair[0].0, 1000, "no period skipped: {values:?}");
        }
        for (t, v) in &values {
            assert_eq!(
                v.as_i64(),
                Some(2),
                "two points a second at {t}: {values:?}"
            );
        }
    });
}

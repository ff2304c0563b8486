//! Cluster mode (issue 19) with real processes: three workers and a control node, each its
//! own `kairosdb` on 127.0.0.1, talking over HTTP. Every answer is compared with a model of
//! the acknowledged writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{client, get, post, send, Server};

/// A worker with its own data directory, which outlives the process (for restarts).
pub struct Worker {
    server: Option<Server>,
    data: PathBuf,
    pub address: String,
}

impl Worker {
    fn start(dir: &Path, i: usize) -> Worker {
        let data = dir.join(format!("worker{i}"));
        let server = Server::start(&data, &[("KAIROSDB_ROLE", "worker")]);
        let address = server.http.to_string();
        Worker {
            server: Some(server),
            data,
            address,
        }
    }

    /// Starts the worker again on its old address and data.
    fn restart(&mut self) {
        assert!(self.server.is_none(), "still running");
        let env = [
            ("KAIROSDB_ROLE", "worker"),
            ("KAIROSDB_BIND_ADDRESS", self.address.as_str()),
        ];
        self.server = Some(Server::start(&self.data, &env));
    }

    pub fn kill9(&mut self) {
        self.server.take().expect("running").kill9();
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }
}

pub struct Cluster {
    pub control: Server,
    pub workers: Vec<Worker>,
    pub _dir: tempfile::TempDir,
}

fn cluster(replication_factor: &str) -> Cluster {
    cluster_of(3, replication_factor, &[])
}

/// `workers` workers and a control node with `replication_factor` and `control_env`.
pub fn cluster_of(
    workers: usize,
    replication_factor: &str,
    control_env: &[(&str, &str)],
) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<Worker> = (0..workers).map(|i| Worker::start(dir.path(), i)).collect();
    let list: Vec<&str> = workers.iter().map(|w| w.address.as_str()).collect();
    let list = list.join(",");
    let mut env = vec![
        // The plan's variable names.
        ("NODE_ROLE", "control"),
        ("WORKER_HOSTS", list.as_str()),
        ("KAIROSDB_REPLICATION_FACTOR", replication_factor),
        ("KAIROSDB_CLUSTER_REQUEST_TIMEOUT_MS", "1000"),
    ];
    env.extend_from_slice(control_env);
    let control = Server::start(&dir.path().join("control"), &env);
    Cluster {
        control,
        workers,
        _dir: dir,
    }
}

/// `[{"name": metric, "tags": {"host": hN}, "datapoints": [[t, v], ...]}]` for hosts
/// `0..hosts`, one point each at `t`.
fn points_at(metric: &str, hosts: usize, t: i64) -> String {
    let body: Vec<serde_json::Value> = (0..hosts)
        .map(|h| {
            serde_json::json!({
                "name": metric,
                "tags": {"host": format!("h{h}")},
                "datapoints": [[t, h as i64 + t]],
            })
        })
        .collect();
    serde_json::Value::Array(body).to_string()
}

/// Every point of `metric` per host, as the server answers: host → [(t, v)].
async fn per_host(
    server: &Server,
    metric: &str,
    extra: &str,
) -> (u16, serde_json::Value, BTreeMap<String, Vec<(i64, i64)>>) {
    let query = serde_json::json!({
        "start_absolute": 0,
        "metrics": [{ "name": metric, "group_by": [{"name": "tag", "tags": ["host"]}] }],
    });
    let url = server.url(&format!("/api/v1/datapoints/query{extra}"));
    let answer = send(client().post(url).body(query.to_string())).await;
    let status = answer.status;
    let partial_header = answer
        .headers
        .get("x-kairosdb-partial")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut json = if status == 200 {
        answer.json()
    } else {
        serde_json::json!({"errors": answer.errors()})
    };
    json["partial_header"] = serde_json::json!(partial_header);
    let mut hosts = BTreeMap::new();
    for result in json["queries"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(host) = result["tags"]["host"][0].as_str() else {
            continue;
        };
        let values = result["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
            .collect();
        hosts.insert(host.to_owned(), values);
    }
    (status, json, hosts)
}

#[tokio::test]
async fn a_control_node_spreads_series_over_the_workers_and_answers_for_all_of_them() {
    let c = cluster("2");
    for t in 1..=3 {
        let answer = post(&c.control, "/api/v1/datapoints", points_at("spread", 30, t)).await;
        assert_eq!(answer.status, 204, "{}", answer.text());
    }
    let (status, json, hosts) = per_host(&c.control, "spread", "").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(hosts.len(), 30);
    for (host, values) in &hosts {
        let h: i64 = host[1..].parse().unwrap();
        assert_eq!(values, &[(1, h + 1), (2, h + 2), (3, h + 3)], "{host}");
    }
    assert!(
        json.get("is_partial").is_none(),
        "a whole answer is KairosDB's: {json}"
    );
    // Each worker holds only its partitions: with two copies over three workers, about
    // two thirds of the series each, and every series twice in all.
    let mut copies = 0;
    for w in &c.workers {
        let (_, _, held) = per_host(w.server(), "spread", "").await;
        assert!(
            held.len() < 30,
            "a worker holds {} of 30 series",
            held.len()
        );
        for (host, values) in &held {
            assert_eq!(values, &hosts[host], "the worker's copy of {host}");
        }
        copies += held.len();
    }
    assert_eq!(copies, 60, "every series on exactly two workers");
    // Names come from every worker.
    let names = get(&c.control, "/api/v1/metricnames").await.json();
    assert!(
        names["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "spread"),
        "{names}"
    );
}

#[tokio::test]
async fn with_two_copies_a_worker_killed_during_ingest_loses_nothing_acknowledged_and_catches_up() {
    let mut c = cluster("2");
    let mut acknowledged = Vec::new();
    for t in 1..=40 {
        if t == 15 {
            c.workers[1].kill9();
        }
        let answer = post(&c.control, "/api/v1/datapoints", points_at("steady", 20, t)).await;
        // With a replica down every series still has one: nothing is refused.
        assert_eq!(answer.status, 204, "t={t}: {}", answer.text());
        acknowledged.push(t);
    }
    let (status, json, hosts) = per_host(&c.control, "steady", "").await;
    assert_eq!(status, 200, "{json}");
    assert!(
        json.get("is_partial").is_none(),
        "two copies: still whole: {json}"
    );
    assert_eq!(hosts.len(), 20);
    for (host, values) in &hosts {
        let ts: Vec<i64> = values.iter().map(|p| p.0).collect();
        assert_eq!(ts, acknowledged, "{host}");
    }

    // Back on its old address and data: the control node's hints bring what it missed.
    c.workers[1].restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, held) = per_host(c.workers[1].server(), "steady", "").await;
        let complete = !held.is_empty() && held.values().all(|v| v.len() == acknowledged.len());
        if complete {
            for (host, values) in &held {
                assert_eq!(values, &hosts[host], "{host} on the restarted worker");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker 1 did not catch up: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = get(&c.control, "/metrics").await.text();
    assert!(
        metrics.contains("kairosdb_cluster_hinted_batches_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_one_copy_a_dead_worker_makes_answers_partial_with_its_counts() {
    let mut c = cluster("1");
    let answer = post(&c.control, "/api/v1/datapoints", points_at("single", 30, 1)).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    c.workers[0].kill9();

    let (status, json, hosts) = per_host(&c.control, "single", "").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["is_partial"], true, "{json}");
    assert_eq!(json["total_nodes"], 3);
    assert_eq!(json["responding_nodes"], 2);
    assert_eq!(json["partial_header"], "true");
    assert!(
        !hosts.is_empty() && hosts.len() < 30,
        "{} of 30 series",
        hosts.len()
    );

    let (status, json, _) = per_host(&c.control, "single", "?deny_partial_response=true").await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(
        json["errors"][0],
        "partial response denied: 2 of 3 workers responded"
    );

    // Series only the dead worker holds cannot be stored: refused, not acknowledged.
    let answer = post(&c.control, "/api/v1/datapoints", points_at("single", 30, 2)).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.headers.contains_key("retry-after"));
}

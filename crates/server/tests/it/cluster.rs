//! Cluster mode (issue 19) with real processes: three workers and a control node, each its
//! own `kairosdb` on 127.0.0.1, talking over HTTP. Every answer is compared with a model of
//! the acknowledged writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{client, get, post, send, Server};

/// The `cluster_secret` every node of these tests shares.
pub const SECRET: &str = "test-cluster-secret";

/// A worker with its own data directory, which outlives the process (for restarts).
pub struct Worker {
    server: Option<Server>,
    data: PathBuf,
    pub address: String,
}

impl Worker {
    /// Worker `i`; it joins the Raft group through `seed` (none: it starts the group).
    fn start(dir: &Path, i: usize, seed: Option<&str>) -> Worker {
        let data = dir.join(format!("worker{i}"));
        let mut env = vec![
            ("KAIROSDB_ROLE", "worker"),
            ("KAIROSDB_CLUSTER_SECRET", SECRET),
        ];
        if let Some(seed) = seed {
            env.push(("KAIROSDB_CLUSTER_SEEDS", seed));
        }
        let server = Server::start(&data, &env);
        let address = server.http.to_string();
        Worker {
            server: Some(server),
            data,
            address,
        }
    }

    /// Starts the worker again on its old address and data (its Raft state tells it
    /// which group it is in).
    fn restart(&mut self) {
        assert!(self.server.is_none(), "still running");
        let env = [
            ("KAIROSDB_ROLE", "worker"),
            ("KAIROSDB_BIND_ADDRESS", self.address.as_str()),
            ("KAIROSDB_CLUSTER_SECRET", SECRET),
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
    pub dir: tempfile::TempDir,
}

async fn cluster(replication_factor: &str) -> Cluster {
    cluster_of(3, replication_factor, &[]).await
}

/// `workers` workers and a control node with `replication_factor` and `control_env`;
/// worker 0 starts the Raft group, the others join through it. Returns once the control
/// node is ready.
pub async fn cluster_of(
    workers: usize,
    replication_factor: &str,
    control_env: &[(&str, &str)],
) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let first = Worker::start(dir.path(), 0, None);
    let seed = first.address.clone();
    let mut all = vec![first];
    all.extend((1..workers).map(|i| Worker::start(dir.path(), i, Some(&seed))));
    let control = control_with(
        &dir,
        "control",
        &all,
        replication_factor,
        &seed,
        control_env,
    )
    .await;
    Cluster {
        control,
        workers: all,
        dir,
    }
}

async fn control(
    dir: &tempfile::TempDir,
    name: &str,
    workers: &[Worker],
    replication_factor: &str,
    seed: &str,
) -> Server {
    control_with(dir, name, workers, replication_factor, seed, &[]).await
}

async fn control_with(
    dir: &tempfile::TempDir,
    name: &str,
    workers: &[Worker],
    replication_factor: &str,
    seed: &str,
    extra: &[(&str, &str)],
) -> Server {
    let list: Vec<&str> = workers.iter().map(|w| w.address.as_str()).collect();
    let list = list.join(",");
    let mut env = vec![
        // The plan's variable names.
        ("NODE_ROLE", "control"),
        ("WORKER_HOSTS", list.as_str()),
        ("CONTROL_HOST", seed),
        ("KAIROSDB_REPLICATION_FACTOR", replication_factor),
        ("KAIROSDB_CLUSTER_REQUEST_TIMEOUT_MS", "1000"),
        ("KAIROSDB_CLUSTER_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    let server = Server::start(&dir.path().join(name), &env);
    ready(&server).await;
    server
}

/// Waits (30 s at most) until `server` answers `/health/ready` with 200: a control node is
/// ready once the partitions are placed and its workers answer.
async fn ready(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(server, "/health/ready").await;
        if answer.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {} {}; log:\n{}",
            answer.status,
            answer.text(),
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node's Raft status (`GET /internal/v1/raft/status`), or `None` when it does not answer.
async fn raft_status(server: &Server) -> Option<serde_json::Value> {
    let url = server.url("/internal/v1/raft/status");
    let response = client()
        .get(url)
        .header("x-kairosdb-cluster-secret", SECRET)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// Waits until every node in `nodes` sees the same leader (not `not`) and `members`
/// members; that leader's id and the term.
async fn settled(nodes: &[&Server], members: usize, not: Option<u64>) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for n in nodes {
            seen.push(raft_status(n).await);
        }
        let agreed = seen.iter().all(|s| {
            s.as_ref().is_some_and(|s| {
                s["leader_id"] == seen[0].as_ref().unwrap()["leader_id"]
                    && !s["leader_id"].is_null()
                    && s["leader_id"].as_u64() != not
                    && s["members"].as_object().map(|m| m.len()) == Some(members)
            })
        });
        if agreed {
            let first = seen[0].as_ref().unwrap();
            return (
                first["leader_id"].as_u64().unwrap(),
                first["term"].as_u64().unwrap(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no agreement on a leader and {members} members: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    let c = cluster("2").await;
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
    // Telnet on the control node is routed the same way.
    let mut telnet = c.control.telnet();
    telnet.send(
        b"put spread.telnet 1700000005000 7 host=t1\nput spread.telnet 1700000006000 8 host=t2\n",
    );
    telnet.version();
    let (_, _, by_telnet) = per_host(&c.control, "spread.telnet", "").await;
    assert_eq!(by_telnet["t1"], [(1_700_000_005_000, 7)]);
    assert_eq!(by_telnet["t2"], [(1_700_000_006_000, 8)]);
    // Node-to-node calls need the cluster's secret.
    let refused = get(&c.control, "/internal/v1/raft/status").await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    let refused = post(c.workers[0].server(), "/internal/v1/write", Vec::new()).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    // Per-worker figures on the control node; every log line names its node.
    let metrics = get(&c.control, "/metrics").await.text();
    for w in &c.workers {
        let calls = format!(
            "kairosdb_cluster_worker_calls_total{{worker=\"{}\"}}",
            w.address
        );
        assert!(metrics.contains(&calls), "{calls} in {metrics}");
        let up = format!("kairosdb_cluster_worker_up{{worker=\"{}\"}} 1", w.address);
        assert!(metrics.contains(&up), "{up} in {metrics}");
    }
    let log = c.control.log_text();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        log.lines()
            .filter(|l| l.contains(" INFO ") || l.contains(" WARN "))
            .all(|l| l.starts_with("node="))
            && first.contains("role=control"),
        "{log}"
    );
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
    let mut c = cluster("2").await;
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
    let mut c = cluster("1").await;
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

#[tokio::test]
async fn every_node_joins_one_raft_group_and_a_killed_leader_is_replaced_while_ingest_goes_on() {
    let mut c = cluster("2").await;
    let second = control(&c.dir, "control2", &c.workers, "2", &c.workers[0].address).await;
    let mut nodes: Vec<&Server> = c.workers.iter().map(Worker::server).collect();
    nodes.push(&c.control);
    nodes.push(&second);
    let (leader, term) = settled(&nodes, 5, None).await;
    let status = raft_status(&c.control).await.unwrap();
    let roles: Vec<&str> = status["members"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "worker").count(),
        3,
        "{status}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "control").count(),
        2,
        "{status}"
    );
    assert_eq!(
        status["voters"].as_array().unwrap().len(),
        5,
        "every node votes: {status}"
    );

    // Kill the leader, whichever node it is; ingest through a control node that lives.
    let ids: Vec<u64> = {
        let mut ids = Vec::new();
        for n in &nodes {
            ids.push(raft_status(n).await.unwrap()["node_id"].as_u64().unwrap());
        }
        ids
    };
    let victim = ids
        .iter()
        .position(|&id| id == leader)
        .expect("the leader is a node");
    drop(nodes);
    let (writer, survivors): (&Server, Vec<&Server>) = match victim {
        0..=2 => {
            c.workers[victim].kill9();
            let mut rest: Vec<&Server> = c
                .workers
                .iter()
                .filter(|w| w.server.is_some())
                .map(Worker::server)
                .collect();
            rest.extend([&c.control, &second]);
            (&c.control, rest)
        }
        3 => {
            let control = std::mem::replace(&mut c.control, Server::fresh(&[]));
            control.kill9();
            let mut rest: Vec<&Server> = c.workers.iter().map(Worker::server).collect();
            rest.push(&second);
            (&second, rest)
        }
        _ => {
            second.kill9();
            let mut rest: Vec<&Server> = c.workers.iter().map(Worker::server).collect();
            rest.push(&c.control);
            // `second` is gone; the first control node writes.
            let answer = post(
                &c.control,
                "/api/v1/datapoints",
                points_at("failover", 5, 1),
            )
            .await;
            assert_eq!(answer.status, 204, "{}", answer.text());
            let (new_leader, new_term) = settled(&rest, 5, Some(leader)).await;
            assert_ne!(new_leader, leader);
            assert!(new_term > term);
            return;
        }
    };
    let killed = Instant::now();
    for t in 1..=20 {
        let answer = post(writer, "/api/v1/datapoints", points_at("failover", 5, t)).await;
        assert_eq!(answer.status, 204, "t={t}: {}", answer.text());
    }
    let (new_leader, new_term) = settled(&survivors, 5, Some(leader)).await;
    assert_ne!(new_leader, leader, "the dead leader cannot lead");
    assert!(
        new_term > term,
        "an election happened: term {term} → {new_term}"
    );
    eprintln!("new leader after {:?}", killed.elapsed());
    let metrics = get(writer, "/metrics").await.text();
    assert!(metrics.contains("kairosdb_raft_term"), "{metrics}");
}

#[tokio::test]
async fn without_a_worker_list_the_partitions_are_placed_on_the_first_workers_to_join() {
    let dir = tempfile::tempdir().unwrap();
    // The plan's layout: the control node starts the group, workers join through it.
    let control = Server::start(
        &dir.path().join("control"),
        &[
            ("NODE_ROLE", "control"),
            ("KAIROSDB_CLUSTER_SECRET", SECRET),
            ("KAIROSDB_CLUSTER_MIN_WORKERS", "3"),
            ("KAIROSDB_REPLICATION_FACTOR", "2"),
        ],
    );
    let answer = post(&control, "/api/v1/datapoints", points_at("placed", 10, 1)).await;
    assert_eq!(answer.status, 503, "no workers yet: {}", answer.text());
    assert!(
        answer.text().contains("0 of 3 workers joined"),
        "{}",
        answer.text()
    );
    // The analytics plan's API says whose fault it is: the cluster's Raft state.
    let metric = r#"{"key":"placed","value":1,"timestamp":1,"tags":{"host":"a"}}"#;
    let answer = post(&control, "/metrics", metric).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["code"], "RAFT_ERROR", "{}", answer.text());

    let seed = control.http.to_string();
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::start(dir.path(), i, Some(&seed)))
        .collect();
    ready(&control).await;
    let answer = post(&control, "/api/v1/datapoints", points_at("placed", 10, 1)).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let (_, json, hosts) = per_host(&control, "placed", "").await;
    assert_eq!(hosts.len(), 10, "{json}");

    // A fourth worker joins the group but gets no partitions: the placement is fixed.
    let late = Worker::start(dir.path(), 3, Some(&seed));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = raft_status(&control).await.unwrap();
        if status["members"].as_object().unwrap().len() == 5 {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the fourth worker did not join: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let placed: Vec<String> = workers.iter().map(|w| w.address.clone()).collect();
    let members = status["members"].as_object().unwrap();
    assert!(
        members
            .values()
            .any(|m| m["address"] == late.address.as_str() && m["role"] == "worker"),
        "{status}"
    );
    let (_, _, held) = per_host(late.server(), "placed", "").await;
    assert!(held.is_empty(), "the late worker holds nothing: {held:?}");
    let answer = post(&control, "/api/v1/datapoints", points_at("placed", 10, 2)).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let (_, _, held) = per_host(late.server(), "placed", "").await;
    assert!(
        held.is_empty(),
        "and is given nothing new: {held:?} (placed on {placed:?})"
    );
}

/// `GET /api/v1/cluster` once `workers` workers have joined the Raft group (30 s at most).
async fn joined(control: &Server, workers: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get(control, "/api/v1/cluster").await.json();
        if status["joined_workers"].as_array().map(Vec::len) == Some(workers) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{workers} workers did not join: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `moving` through the control node: whole, 20 hosts, every acknowledged round's
/// point once with its value, nothing else but (at most) points of refused rounds.
async fn assert_acknowledged_once(control: &Server, acknowledged: &[i64], refused: usize) {
    let (status, json, hosts) = per_host(control, "moving", "").await;
    assert_eq!(status, 200, "{json}");
    assert!(json.get("is_partial").is_none(), "{json}");
    assert_eq!(hosts.len(), 20);
    for (host, values) in &hosts {
        let h: i64 = host[1..].parse().unwrap();
        let ts: Vec<i64> = values.iter().map(|v| v.0).collect();
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "{host}: a point doubled: {ts:?}"
        );
        let acked: Vec<(i64, i64)> = acknowledged.iter().map(|&t| (t, h + t)).collect();
        for point in &acked {
            assert!(
                values.contains(point),
                "{host}: acknowledged {point:?} lost"
            );
        }
        // A refused round may have landed on some replicas: only refused rounds may show.
        let extra = values.iter().filter(|v| !acked.contains(v)).count();
        assert!(
            extra <= refused,
            "{host}: {extra} points nobody acknowledged"
        );
    }
}

/// `GET /api/v1/cluster` once the move under way is done (60 s at most).
async fn moved(control: &Server, epoch_after: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = get(control, "/api/v1/cluster").await.json();
        let done = status["moving_to"].is_null()
            && status["epoch"].as_u64() >= Some(epoch_after)
            && status["move"]["phase"] == "done";
        if done {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the move did not finish: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ingest at `url` until `stop`: 20 hosts, one point each per round; the rounds
/// acknowledged (204) and the number refused.
async fn ingest_until(
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<i64>, usize) {
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut t = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        t += 1;
        let answer = send(client().post(&url).body(points_at("moving", 20, t))).await;
        match answer.status {
            204 => acknowledged.push(t),
            _ => {
                if refused < 3 {
                    eprintln!("round {t} refused: {} {}", answer.status, answer.text());
                }
                refused += 1
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (acknowledged, refused)
}

#[tokio::test]
async fn a_worker_added_then_another_removed_under_load_loses_and_doubles_no_point() {
    // Unlimited: the load below is a pipeline's, not one client's.
    let mut c = cluster_of(3, "2", &[("KAIROSDB_RATE_LIMIT_PER_MINUTE", "0")]).await;
    let seed = c.workers[0].address.clone();
    c.workers.push(Worker::start(c.dir.path(), 3, Some(&seed)));
    let all: Vec<String> = c.workers.iter().map(|w| w.address.clone()).collect();
    let metadata = c.control.url("/api/v1/metadata/svc/key/k");
    let answer = send(client().post(&metadata).body("kept across moves")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(ingest_until(
        c.control.url("/api/v1/datapoints"),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Worker 3 joins the group but holds nothing until the partitions move onto it.
    let before = joined(&c.control, 4).await;
    let epoch = before["epoch"].as_u64().unwrap();
    let put = |workers: &[String]| {
        let body = serde_json::json!({ "workers": workers }).to_string();
        send(
            client()
                .put(c.control.url("/api/v1/cluster/workers"))
                .body(body),
        )
    };
    let answer = put(&all).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let after_add = moved(&c.control, epoch + 2).await;
    assert_eq!(
        after_add["workers"].as_array().unwrap().len(),
        4,
        "{after_add}"
    );
    assert!(
        after_add["move"]["points_copied"].as_u64() > Some(0),
        "{after_add}"
    );
    let (_, _, held) = per_host(c.workers[3].server(), "moving", "").await;
    assert!(!held.is_empty(), "the added worker holds its partitions");

    // Then worker 2 leaves: its partitions go to the others, and it is emptied.
    let without_2: Vec<String> = [0, 1, 3].iter().map(|&i| all[i].clone()).collect();
    let answer = put(&without_2).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let after_remove = moved(&c.control, epoch + 4).await;
    assert_eq!(
        after_remove["joined_workers"].as_array().unwrap().len(),
        3,
        "the removed worker left the Raft group: {after_remove}"
    );
    assert!(after_remove["move"]["error"].is_null(), "{after_remove}");
    let status = raft_status(&c.control).await.unwrap();
    assert_eq!(status["voters"].as_array().unwrap().len(), 4, "{status}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, refused) = load.await.unwrap();
    assert!(
        acknowledged.len() > 20,
        "{} rounds acknowledged",
        acknowledged.len()
    );
    eprintln!(
        "{} rounds acknowledged, {refused} refused",
        acknowledged.len()
    );

    let (_, _, left) = per_host(c.workers[2].server(), "moving", "").await;
    assert!(
        left.is_empty(),
        "the removed worker keeps nothing: {left:?}"
    );
    c.workers[2].kill9();
    // Every acknowledged point once, with its value: nothing lost, nothing doubled.
    assert_acknowledged_once(&c.control, &acknowledged, refused).await;
    let kept = get(&c.control, "/api/v1/metadata/svc/key/k").await;
    assert_eq!(kept.text(), "kept across moves");
}

#[tokio::test]
async fn a_move_waits_out_a_worker_killed_during_it_and_finishes_when_it_returns() {
    // Unlimited: the load below is a pipeline's, not one client's.
    let mut c = cluster_of(3, "2", &[("KAIROSDB_RATE_LIMIT_PER_MINUTE", "0")]).await;
    let seed = c.workers[0].address.clone();
    c.workers.push(Worker::start(c.dir.path(), 3, Some(&seed)));
    let all: Vec<String> = c.workers.iter().map(|w| w.address.clone()).collect();
    let epoch = joined(&c.control, 4).await["epoch"].as_u64().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(ingest_until(
        c.control.url("/api/v1/datapoints"),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Worker 1 dies as the move starts: it holds partitions and gains some.
    c.workers[1].kill9();
    let body = serde_json::json!({ "workers": all }).to_string();
    let answer = send(
        client()
            .put(c.control.url("/api/v1/cluster/workers"))
            .body(body),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    // The move cannot copy onto a dead worker: it waits, saying why.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = get(&c.control, "/api/v1/cluster").await.json();
        assert!(status["move"]["phase"] != "done", "{status}");
        if !status["move"]["error"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no error while worker 1 is down: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.workers[1].restart();
    let status = moved(&c.control, epoch + 2).await;
    assert_eq!(status["workers"].as_array().unwrap().len(), 4, "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, refused) = load.await.unwrap();
    eprintln!(
        "{} rounds acknowledged, {refused} refused",
        acknowledged.len()
    );
    assert!(acknowledged.len() > 20, "{} rounds", acknowledged.len());
    assert_acknowledged_once(&c.control, &acknowledged, refused).await;
}

/// Sends `signal` (`STOP`, `CONT`) to `server`'s process.
fn signal(server: &Server, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{signal}"), server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

#[tokio::test]
async fn a_paused_worker_holds_nothing_up_for_long_and_catches_up_when_it_resumes() {
    let c = cluster("2").await;
    let mut acknowledged = Vec::new();
    for t in 1..=30 {
        if t == 10 {
            signal(c.workers[2].server(), "STOP");
        }
        if t == 20 {
            signal(c.workers[2].server(), "CONT");
        }
        let answer = post(&c.control, "/api/v1/datapoints", points_at("paused", 20, t)).await;
        // A paused replica times out (1 s here); the other one acknowledges.
        assert_eq!(answer.status, 204, "t={t}: {}", answer.text());
        acknowledged.push(t);
        if (10..20).contains(&t) {
            // Reads fail over from the paused worker and stay whole.
            let (status, json, hosts) = per_host(&c.control, "paused", "").await;
            assert_eq!(status, 200, "{json}");
            assert!(json.get("is_partial").is_none(), "{json}");
            assert!(
                hosts.values().all(|v| v.len() == t as usize),
                "t={t}: {hosts:?}"
            );
        }
    }
    // Resumed, the worker gets what it missed from the control node's hints.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, held) = per_host(c.workers[2].server(), "paused", "").await;
        let complete = !held.is_empty() && held.values().all(|v| v.len() == acknowledged.len());
        if complete {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker 2 did not catch up: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, _, hosts) = per_host(&c.control, "paused", "").await;
    assert_eq!(hosts.len(), 20);
    for (host, values) in &hosts {
        let ts: Vec<i64> = values.iter().map(|v| v.0).collect();
        assert_eq!(ts, acknowledged, "{host}");
    }
}

/// `DELETE /api/v1/cluster/members/{id}` on `on`.
async fn remove_member(on: &Server, id: &str) -> crate::harness::Answer {
    let url = on.url(&format!("/api/v1/cluster/members/{id}"));
    send(client().delete(url)).await
}

/// A node's Raft id.
async fn node_id(server: &Server) -> u64 {
    raft_status(server).await.expect("answers")["node_id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_control_node_leaves_the_raft_group_on_request_but_not_the_quorum_nor_the_last_one() {
    let c = cluster("2").await;
    let second = control(&c.dir, "control2", &c.workers, "2", &c.workers[0].address).await;
    let mut nodes: Vec<&Server> = c.workers.iter().map(Worker::server).collect();
    nodes.push(&c.control);
    nodes.push(&second);
    settled(&nodes, 5, None).await;
    let (first_id, second_id) = (node_id(&c.control).await, node_id(&second).await);
    let worker_id = node_id(c.workers[0].server()).await;

    let answer = remove_member(&c.control, "12345").await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = remove_member(&c.control, "control2").await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = remove_member(&c.control, &worker_id.to_string()).await;
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(
        answer.text().contains("holds partitions"),
        "{}",
        answer.text()
    );

    // Two of the five voters paused: without the second control node, two of the four
    // voters left would answer, not a majority.
    signal(c.workers[1].server(), "STOP");
    signal(c.workers[2].server(), "STOP");
    let answer = remove_member(&c.control, &second_id.to_string()).await;
    signal(c.workers[1].server(), "CONT");
    signal(c.workers[2].server(), "CONT");
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(
        answer.text().contains("2 of the 4 voters left"),
        "{}",
        answer.text()
    );
    settled(&nodes, 5, None).await;

    // All answering, it leaves: out of the members and the voters, on every node.
    let answer = remove_member(&c.control, &second_id.to_string()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    drop(nodes);
    second.kill9();
    let mut nodes: Vec<&Server> = c.workers.iter().map(Worker::server).collect();
    nodes.push(&c.control);
    settled(&nodes, 4, None).await;
    let status = raft_status(&c.control).await.unwrap();
    let voters: Vec<u64> = status["voters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(voters.len(), 4, "{status}");
    assert!(!voters.contains(&second_id), "{status}");
    let cluster = get(&c.control, "/api/v1/cluster").await.json();
    let members = cluster["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "{cluster}");
    assert!(members.iter().all(|m| m["voter"] == true), "{cluster}");

    // The group goes on without it: data and Raft commands (metadata) are taken.
    let answer = post(&c.control, "/api/v1/datapoints", points_at("left", 5, 1)).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let metadata = c.control.url("/api/v1/metadata/svc/key/k");
    let answer = send(client().post(&metadata).body("after a control node left")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());

    // The last control node stays.
    let answer = remove_member(&c.control, &first_id.to_string()).await;
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(
        answer.text().contains("last control node"),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn a_control_node_leading_the_raft_group_leaves_and_the_others_elect_a_new_leader() {
    let dir = tempfile::tempdir().unwrap();
    fn env(seed: Option<&str>) -> Vec<(&str, &str)> {
        let mut env = vec![
            ("NODE_ROLE", "control"),
            ("KAIROSDB_CLUSTER_SECRET", SECRET),
            ("KAIROSDB_CLUSTER_MIN_WORKERS", "3"),
            ("KAIROSDB_REPLICATION_FACTOR", "2"),
        ];
        env.extend(seed.map(|s| ("CONTROL_HOST", s)));
        env
    }
    // The first control node starts the group, so it leads it.
    let first = Server::start(&dir.path().join("control"), &env(None));
    let seed = first.http.to_string();
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::start(dir.path(), i, Some(&seed)))
        .collect();
    let second = Server::start(&dir.path().join("control2"), &env(Some(&seed)));
    ready(&first).await;
    ready(&second).await;
    let mut nodes: Vec<&Server> = workers.iter().map(Worker::server).collect();
    nodes.extend([&first, &second]);
    let (leader, term) = settled(&nodes, 5, None).await;
    let first_id = node_id(&first).await;
    assert_eq!(leader, first_id, "the node that started the group leads it");

    // Asked of the other control node, the leader takes itself out.
    let answer = remove_member(&second, &first_id.to_string()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    drop(nodes);
    first.kill9();
    let mut nodes: Vec<&Server> = workers.iter().map(Worker::server).collect();
    nodes.push(&second);
    let (new_leader, new_term) = settled(&nodes, 4, Some(first_id)).await;
    assert!(new_term > term, "an election happened");
    let status = raft_status(&second).await.unwrap();
    assert_eq!(status["voters"].as_array().unwrap().len(), 4, "{status}");
    eprintln!("leader {leader} left; {new_leader} leads");
    let answer = post(&second, "/api/v1/datapoints", points_at("left", 5, 1)).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let metadata = second.url("/api/v1/metadata/svc/key/k");
    let answer = send(client().post(&metadata).body("after the leader left")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
}

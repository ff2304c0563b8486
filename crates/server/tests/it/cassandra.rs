//! Cassandra mode with the Cassandra address pointing at nothing (no Cassandra can run
//! here): ingest is still acknowledged (HTTP 204, telnet) into the local delivery queue,
//! `/health/ready` and the KairosDB health check report the datastore down, queries fail
//! with a clear 500, the queue depth is a metric (`kairosdb_queue_points`, and the
//! backlog `kairosdb_queue_size`), the queue survives `kill -9`, and a
//! full queue answers 503 + Retry-After. Delivery once Cassandra is back (nothing lost,
//! nothing duplicated) is tested on the in-memory cluster in
//! `crates/cassandra/tests/store.rs`; against a live cluster by `crates/cassandra/tests/live.rs`.
//!
//! Also here: server-type gating (spec §1.1.3), which is how ingest-only and query-only
//! processes are run.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{client, get, post, send, Server};

/// An address where nothing listens.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// Value of a Prometheus sample `name` (no labels) in `/metrics`.
async fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = get(server, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn points(metric: &str, n: usize, base: i64) -> String {
    let dps: Vec<[i64; 2]> = (0..n as i64).map(|i| [base + i, i]).collect();
    json!([{ "name": metric, "tags": { "host": "a" }, "datapoints": dps }]).to_string()
}

#[tokio::test]
async fn cassandra_down_ingest_is_queued_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cassandra = dead_address();
    let env = [
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", cassandra.as_str()),
        ("KAIROSDB_WAL_SYNC", "always"),
    ];
    let server = Server::start(&data, &env);

    for i in 0..5 {
        let a = post(
            &server,
            "/api/v1/datapoints",
            points("q.http", 100, i * 1000),
        )
        .await;
        assert_eq!(a.status, 204, "{}", a.text());
    }
    let mut telnet = server.telnet();
    telnet.send(b"put q.telnet 1000 1 host=a\nput q.telnet 2000 2 host=a\n");
    // `version` answers only after the puts before it were handled.
    assert!(telnet.version().starts_with("KairosDB"));

    let ready = get(&server, "/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    let detail = ready.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.to_lowercase().contains("cassandra"), "{detail}");
    assert_eq!(get(&server, "/api/v1/health/check").await.status, 500);
    assert_eq!(
        get(&server, "/api/v1/health/status").await.json(),
        json!(["JVM-Thread-Deadlock: OK", "Datastore-Query: FAIL"])
    );

    let q = post(
        &server,
        "/api/v1/datapoints/query",
        json!({ "start_absolute": 0, "metrics": [{ "name": "q.http" }] }).to_string(),
    )
    .await;
    assert_eq!(q.status, 500, "{}", q.text());
    assert!(
        q.errors()[0].contains("cassandra is not ready"),
        "{:?}",
        q.errors()
    );

    // Everything acknowledged is queued, and the depth is a metric.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queued = metric(&server, "kairosdb_queue_points").await;
        if queued == Some(502.0) {
            break;
        }
        assert!(Instant::now() < deadline, "queue_points = {queued:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(&server, "kairosdb_queue_delivery_errors_total")
            .await
            .unwrap_or(0.0)
            >= 1.0
    );
    // KairosDB's backlog figure says the same (it read 0 here before issue 17), in both
    // exposition formats.
    assert_eq!(metric(&server, "kairosdb_queue_size").await, Some(502.0));
    assert_eq!(
        get(&server, "/api/v1/metrics").await.json()["kairosdb_queue_size"],
        json!(502)
    );

    // kill -9, then the same data directory: the queue is replayed, still undelivered.
    server.kill9();
    let server = Server::start(&data, &env);
    assert_eq!(metric(&server, "kairosdb_queue_points").await, Some(502.0));
    assert_eq!(metric(&server, "kairosdb_queue_size").await, Some(502.0));
    assert_eq!(
        metric(&server, "kairosdb_queue_replayed_batches_total").await,
        Some(6.0),
        "5 HTTP batches and 1 telnet batch"
    );
    assert_eq!(get(&server, "/health/ready").await.status, 503);
    // The driver's own runtime is entered from the server's blocking threads: no panic.
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
    drop(server);
}

#[tokio::test]
async fn full_queue_answers_503_with_retry_after() {
    let cassandra = dead_address();
    let server = Server::fresh(&[
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", cassandra.as_str()),
        ("KAIROSDB_QUEUE_MAX_MB", "1"),
    ]);
    // Values that do not compress, so the 1 MiB bound is reached in a few requests.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let dps: Vec<(i64, u64)> = (0..20_000i64)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (i * 1000, x >> 2)
        })
        .collect();
    let body =
        json!([{ "name": "q.full", "tags": { "host": "a" }, "datapoints": dps }]).to_string();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let a = send(
            client()
                .post(server.url("/api/v1/datapoints"))
                .body(body.clone()),
        )
        .await;
        statuses.push(a.status);
        if a.status == 503 {
            assert!(a.headers.contains_key("retry-after"), "{:?}", a.headers);
            assert!(!a.errors().is_empty());
            break;
        }
        assert_eq!(a.status, 204, "{}", a.text());
    }
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert!(statuses[0] == 204, "{statuses:?}");
}

#[tokio::test]
async fn server_type_disables_api_classes() {
    let forbidden = |class: &str| {
        format!(
            "{{\"errors\": [\"Forbidden: {class} API methods are disabled on this KairosDB instance.\"]}}"
        )
    };
    let g_query = json!({ "start_absolute": 0, "metrics": [{ "name": "g" }] }).to_string();
    // Query-only: ingest and delete refused with KairosDB's exact body; no telnet.
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "QUERY")]);
    assert_eq!(server.telnet.port(), 0, "no telnet listener without INGEST");
    let a = post(&server, "/api/v1/datapoints", points("g", 1, 1)).await;
    assert_eq!((a.status, a.text()), (403, forbidden("INGEST")));
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let a =
        send(client().request(reqwest::Method::OPTIONS, server.url("/api/v1/datapoints"))).await;
    assert_eq!(a.status, 403);
    let a = post(&server, "/api/v1/datapoints/delete", g_query.clone()).await;
    assert_eq!((a.status, a.text()), (403, forbidden("DELETE")));
    let a = send(client().delete(server.url("/api/v1/metric/g"))).await;
    assert_eq!((a.status, a.text()), (403, forbidden("DELETE")));
    let a = post(&server, "/api/v1/datapoints/query", g_query.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(get(&server, "/api/v1/metricnames").await.status, 200);
    // Never gated: version, health, features.
    assert_eq!(get(&server, "/api/v1/version").await.status, 200);
    assert_eq!(get(&server, "/api/v1/health/check").await.status, 204);
    drop(server);

    // Ingest + delete: queries refused, telnet on.
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "INGEST,DELETE")]);
    assert_ne!(server.telnet.port(), 0);
    let a = post(&server, "/api/v1/datapoints", points("g", 1, 1)).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let a = get(&server, "/api/v1/metricnames").await;
    assert_eq!((a.status, a.text()), (403, forbidden("QUERY")));
    let a = post(&server, "/api/v1/datapoints/query/tags", g_query.clone()).await;
    assert_eq!((a.status, a.text()), (403, forbidden("QUERY")));
    let a = send(client().delete(server.url("/api/v1/metric/g"))).await;
    assert_eq!(a.status, 204, "{}", a.text());
}

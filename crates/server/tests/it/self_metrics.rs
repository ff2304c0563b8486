//! Self-metrics (spec §11.1): with `self_metrics` on, the server writes `kairosdb.*`
//! metrics tagged `host=<hostname>` into its own store every interval (HTTP ingest and
//! telnet command counts per interval, process figures); with it off, none.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{get, post, Server};

const TELNET: &str = "kairosdb.protocol.telnet_request_count";

const NAMES: [&str; 6] = [
    "kairosdb.http.ingest_count",
    "kairosdb.jvm.free_memory",
    "kairosdb.jvm.max_memory",
    "kairosdb.jvm.thread_count",
    "kairosdb.jvm.total_memory",
    TELNET,
];

async fn metric_names(server: &Server) -> Vec<String> {
    let a = get(server, "/api/v1/metricnames").await;
    assert_eq!(a.status, 200, "{}", a.text());
    serde_json::from_value(a.json()["results"].clone()).expect("names")
}

/// Every point of `metric` with `tags` so far: (sum of values, host tag values).
async fn total(server: &Server, metric: &str, tags: serde_json::Value) -> (i64, serde_json::Value) {
    let query = json!({
        "start_absolute": 0,
        "metrics": [{ "name": metric, "tags": tags }],
    });
    let a = post(server, "/api/v1/datapoints/query", query.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let result = a.json()["queries"][0]["results"][0].clone();
    let sum = result["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| p[1].as_i64().expect("long"))
        .sum();
    (sum, result["tags"]["host"].clone())
}

#[tokio::test]
async fn reports_kairosdb_metrics_with_the_host_tag() {
    let server = Server::fresh(&[
        ("KAIROSDB_SELF_METRICS", "true"),
        ("KAIROSDB_SELF_METRICS_INTERVAL_SECS", "1"),
    ]);
    let body = json!([{ "name": "app.req", "datapoints": [[1000, 1], [2000, 2], [3000, 3]],
                        "tags": { "host": "a" } }]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let mut telnet = server.telnet();
    telnet.send(b"putm t.m 1000 1 h=a\nputm t.m 2000 2 h=a\nput t.m 3 3 h=a\n");
    telnet.version();

    // Counts are per interval; their sum reaches the 3 points once a report ran after the
    // ingest (the self-metrics themselves are not counted).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (sum, hosts) = loop {
        let names = metric_names(&server).await;
        if NAMES.iter().all(|n| names.iter().any(|m| m == n)) {
            let http = total(&server, "kairosdb.http.ingest_count", json!({})).await;
            let putm = total(&server, TELNET, json!({ "method": "putm" })).await;
            let put = total(&server, TELNET, json!({ "method": "put" })).await;
            let version = total(&server, TELNET, json!({ "method": "version" })).await;
            if (http.0, putm.0, put.0, version.0) == (3, 2, 1, 1) {
                assert_eq!(putm.1, http.1);
                break http;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete report: {names:?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sum, 3);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| std::env::var("HOSTNAME").unwrap_or_default());
    assert_eq!(hosts, json!([hostname]));
    let names = metric_names(&server).await;
    assert!(names.contains(&"app.req".to_string()), "{names:?}");
    assert!(names.contains(&"t.m".to_string()), "{names:?}");
    // The reporter stops with the server: a clean shutdown.
    assert!(server.terminate(Duration::from_secs(15)).success());
}

#[tokio::test]
async fn self_metrics_false_writes_nothing() {
    let server = Server::fresh(&[
        ("KAIROSDB_SELF_METRICS", "false"),
        ("KAIROSDB_SELF_METRICS_INTERVAL_SECS", "1"),
    ]);
    let body = json!([{ "name": "app.req", "datapoints": [[1000, 1]] , "tags": { "host": "a" } }]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());
    // Proving absence needs time: three intervals in which a report would have been written.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(metric_names(&server).await, vec!["app.req".to_string()]);
}

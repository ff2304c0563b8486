//! Self-metrics (spec §11.1): with `self_metrics` on, the server writes `kairosdb.*`
//! metrics tagged `host=<hostname>` into its own store every interval (HTTP ingest and
//! telnet command counts, request and query timings, requests per path, points per
//! metric, queue size, process figures); with it off, none. The health check queries one
//! of them (spec §11.2).

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

/// Sum of every point of `metric` with `tags` so far (0 when there is none), and the
/// values of the result's tag `tag`.
async fn sum(
    server: &Server,
    metric: &str,
    tags: serde_json::Value,
    tag: &str,
) -> (f64, Vec<String>) {
    let query = json!({
        "start_absolute": 0,
        "metrics": [{ "name": metric, "tags": tags }],
    });
    let a = post(server, "/api/v1/datapoints/query", query.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let Some(result) = a.json()["queries"][0]["results"].get(0).cloned() else {
        return (0.0, Vec::new());
    };
    let total = result["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| p[1].as_f64().expect("number"))
        .sum();
    let values = serde_json::from_value(result["tags"][tag].clone()).unwrap_or_default();
    (total, values)
}

/// Names written once a report ran after some ingest and queries (timings carry
/// metrics4j's `timeStats` fields, sizes its `stats` fields).
const TAGGED_NAMES: [&str; 13] = [
    "kairosdb.datastore.query_sample_size.sum",
    "kairosdb.datastore.query_time.avg",
    "kairosdb.datastore.query_time.count",
    "kairosdb.http.ingest_time.count",
    "kairosdb.http.ingest_time.max",
    "kairosdb.http.query_time.count",
    "kairosdb.http.query_time.total",
    "kairosdb.http.request_time.count",
    "kairosdb.http.request_time.min",
    "kairosdb.metric_counters",
    "kairosdb.protocol.http_request_count",
    "kairosdb.queue.file_queue.size",
    "kairosdb.jvm.thread_count",
];

#[tokio::test]
async fn reports_timings_request_counts_and_points_per_metric() {
    let server = Server::fresh(&[
        ("KAIROSDB_SELF_METRICS", "true"),
        ("KAIROSDB_SELF_METRICS_INTERVAL_SECS", "1"),
    ]);
    // A client's own `kairosdb.*` metric is stored but not counted in metric_counters.
    let body = json!([{ "name": "app.req", "datapoints": [[1000, 1], [2000, 2], [3000, 3]],
                        "tags": { "host": "a" } },
                      { "name": "kairosdb.custom", "datapoints": [[1000, 1]],
                        "tags": { "host": "a" } }]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let mut telnet = server.telnet();
    telnet.send(b"put t.m 1000 1 h=a\nput t.m 2000 2 h=b\nput kairosdb.custom 5 5 h=a\n");
    telnet.version();
    // One request with two metric queries of app.req (query_index 1 and 2), one failing.
    let query = json!({ "start_absolute": 0,
                        "metrics": [{ "name": "app.req" }, { "name": "app.req" }] });
    let a = post(&server, "/api/v1/datapoints/query", query.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let a = post(&server, "/api/v1/datapoints/query", "{not json").await;
    assert_eq!(a.status, 400, "{}", a.text());
    // The health check's datastore query runs against the real engine.
    let a = get(&server, "/api/v1/health/check").await;
    assert_eq!(a.status, 204, "{}", a.text());

    // Everything is per interval: sums over all reports reach the counts once a report
    // ran after the requests above (the test's own polling adds query requests).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = metric_names(&server).await;
        if TAGGED_NAMES.iter().all(|n| names.iter().any(|m| m == n)) {
            let counters = "kairosdb.metric_counters";
            let http = sum(
                &server,
                counters,
                json!({ "metric_name": "app.req" }),
                "host",
            )
            .await;
            let telnet = sum(&server, counters, json!({ "metric_name": "t.m" }), "host").await;
            let ingest = json!({ "method": "POST", "path": "/api/v1/datapoints" });
            let posts = sum(
                &server,
                "kairosdb.protocol.http_request_count",
                ingest,
                "path",
            )
            .await;
            if (http.0, telnet.0, posts.0) == (3.0, 2.0, 1.0) {
                assert_eq!(posts.1, vec!["/api/v1/datapoints"]);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete report: {names:?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Our own metrics are not in metric_counters.
    let (_, counted) = sum(
        &server,
        "kairosdb.metric_counters",
        json!({}),
        "metric_name",
    )
    .await;
    assert!(counted.contains(&"app.req".to_string()), "{counted:?}");
    assert!(
        !counted.iter().any(|n| n.starts_with("kairosdb.")),
        "{counted:?}"
    );
    // Exactly one failed query request; its time is a non-negative number of ms.
    let failed = json!({ "request": "/datapoints/query", "status": "failed" });
    let name = "kairosdb.http.request_time.count";
    assert_eq!(sum(&server, name, failed.clone(), "status").await.0, 1.0);
    let max = sum(&server, "kairosdb.http.request_time.max", failed, "host").await;
    assert!(max.0 >= 0.0 && max.1.len() == 1, "{max:?}");
    // Both metric queries of the first request read the 3 points of app.req.
    for index in ["1", "2"] {
        let tags = json!({ "metric_name": "app.req", "query_index": index });
        let name = "kairosdb.datastore.query_sample_size.sum";
        assert_eq!(sum(&server, name, tags.clone(), "host").await.0, 3.0);
        let name = "kairosdb.http.query_time.count";
        assert_eq!(
            sum(&server, name, tags, "query_index").await,
            (1.0, vec![index.to_string()])
        );
    }
    let name = "kairosdb.http.ingest_time.count";
    assert_eq!(sum(&server, name, json!({}), "host").await.0, 1.0);
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

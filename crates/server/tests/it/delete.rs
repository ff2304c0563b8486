//! Deletes end to end (spec §1.8, §1.9, §1.10; user-needs: kairosdb#446, #509, #111):
//! `POST /api/v1/datapoints/delete` removes exactly the points its tag filter and
//! inclusive range select, in sealed blocks and in the head; `DELETE /api/v1/metric/{name}`
//! removes the metric with its names and tags; emptied series, metrics and tags leave
//! `/metricnames`, `/tagnames`, `/tagvalues` and `/query/tags`. All of it again after
//! `kill -9` (WAL replay) and after a clean restart on the same data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{client, get, post, send, Server};

const BASE: i64 = 1_600_000_000_000;
const SEALED: i64 = 3000;
const TOTAL: i64 = 3100;

fn at(i: i64) -> i64 {
    BASE + i * 1000
}

/// The series of `del.cpu`: (host, dc). `ab` checks that `regex:a|c` matches whole
/// values only; `c` has no `dc` tag.
const CPU: [(&str, Option<&str>); 4] = [
    ("a", Some("x")),
    ("b", Some("x")),
    ("ab", Some("y")),
    ("c", None),
];

fn tags(host: &str, dc: Option<&str>) -> Value {
    match dc {
        Some(dc) => json!({ "host": host, "dc": dc }),
        None => json!({ "host": host }),
    }
}

async fn ingest(server: &Server, body: Value) {
    let a = post(server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "ingest: {}", a.text());
}

async fn ingest_range(server: &Server, from: i64, to: i64) {
    let mut body = Vec::new();
    for (host, dc) in CPU {
        let points: Vec<(i64, i64)> = (from..to).map(|i| (at(i), i)).collect();
        body.push(json!({ "name": "del.cpu", "datapoints": points, "tags": tags(host, dc) }));
    }
    let points: Vec<(i64, i64)> = (from..to).map(|i| (at(i), i)).collect();
    body.push(json!({ "name": "del.mem", "datapoints": points, "tags": { "host": "a" } }));
    body.push(json!({
        "name": "del.gone",
        "datapoints": points,
        "tags": { "host": "z", "only_gone": "yes" },
    }));
    ingest(server, Value::Array(body)).await;
}

/// Polls `/metrics` until the engine reports sealed blocks (the maintenance thread
/// seals heads of 2048 points).
async fn wait_for_blocks(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = get(server, "/metrics").await;
        assert_eq!(a.status, 200);
        let blocks = a
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("kairosdb_engine_blocks "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if blocks >= 6.0 {
            return;
        }
        assert!(Instant::now() < deadline, "no blocks sealed in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sorted timestamp indices of the one series of `metric` with exactly `host`.
async fn series(server: &Server, metric: &str, host: &str) -> Vec<i64> {
    let q = json!({
        "start_absolute": 0,
        "metrics": [{ "name": metric, "tags": { "host": [host] } }],
    });
    let a = post(server, "/api/v1/datapoints/query", q.to_string()).await;
    assert_eq!(a.status, 200, "query: {}", a.text());
    let v = a.json();
    let mut out: Vec<i64> = v["queries"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| r["values"].as_array().expect("values").clone())
        .map(|p| (p[0].as_i64().unwrap() - BASE) / 1000)
        .collect();
    out.sort_unstable();
    out
}

async fn results(server: &Server, path: &str) -> Vec<String> {
    let a = get(server, path).await;
    assert_eq!(a.status, 200, "{path}: {}", a.text());
    a.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The `tags` object of `/query/tags` for `metric`, as name → values.
async fn query_tags(server: &Server, metric: &str) -> BTreeMap<String, BTreeSet<String>> {
    let q = json!({ "start_absolute": 0, "metrics": [{ "name": metric }] });
    let a = post(server, "/api/v1/datapoints/query/tags", q.to_string()).await;
    assert_eq!(a.status, 200, "query/tags: {}", a.text());
    let v = a.json();
    let tags = v["queries"][0]["results"][0]["tags"]
        .as_object()
        .unwrap_or_else(|| panic!("no tags object in {v}"));
    tags.iter()
        .map(|(k, vals)| {
            let vals = vals
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            (k.clone(), vals)
        })
        .collect()
}

async fn delete(server: &Server, body: Value) {
    let a = post(server, "/api/v1/datapoints/delete", body.to_string()).await;
    assert_eq!(a.status, 204, "delete {body}: {}", a.text());
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What must hold after the deletes below, before and after every restart.
async fn check(server: &Server, when: &str) {
    let all: Vec<i64> = (0..TOTAL).collect();
    // host=a: [500, 1499] deleted by `regex:a|c`, both ends inclusive.
    let a: Vec<i64> = (0..500).chain(1500..TOTAL).collect();
    assert_eq!(series(server, "del.cpu", "a").await, a, "{when}: host=a");
    // host=b: [2990, 3010] deleted, straddling the sealed blocks and the head.
    let b: Vec<i64> = (0..2990).chain(3011..TOTAL).collect();
    assert_eq!(series(server, "del.cpu", "b").await, b, "{when}: host=b");
    // host=ab is not matched by `regex:a|c` (whole value) nor by host=b.
    assert_eq!(
        series(server, "del.cpu", "ab").await,
        all,
        "{when}: host=ab"
    );
    // host=c: everything deleted.
    assert!(
        series(server, "del.cpu", "c").await.is_empty(),
        "{when}: host=c"
    );
    // Other metrics with the same tag value are untouched.
    assert_eq!(series(server, "del.mem", "a").await, all, "{when}: del.mem");
    assert!(
        series(server, "del.gone", "z").await.is_empty(),
        "{when}: del.gone"
    );

    assert_eq!(
        results(server, "/api/v1/metricnames?prefix=del.").await,
        vec!["del.cpu", "del.mem"],
        "{when}: metricnames"
    );
    let tag_names = results(server, "/api/v1/tagnames").await;
    assert_eq!(tag_names, vec!["dc", "host"], "{when}: tagnames");
    let tag_values = results(server, "/api/v1/tagvalues").await;
    assert_eq!(
        tag_values,
        vec!["a", "ab", "b", "x", "y"],
        "{when}: tagvalues"
    );
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("dc".to_string(), set(&["x", "y"])),
        ("host".to_string(), set(&["a", "ab", "b"])),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        query_tags(server, "del.cpu").await,
        expected,
        "{when}: query/tags"
    );
    assert!(
        query_tags(server, "del.gone").await.is_empty(),
        "{when}: query/tags of a deleted metric"
    );
}

#[tokio::test]
async fn deletes_remove_exactly_what_they_select_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("KAIROSDB_WAL_SYNC", "always")];
    let server = Server::start(&data, &env);
    ingest_range(&server, 0, SEALED).await;
    wait_for_blocks(&server).await;
    // The last 100 points of every series stay in the head.
    ingest_range(&server, SEALED, TOTAL).await;

    delete(
        &server,
        json!({
            "start_absolute": at(500),
            "end_absolute": at(1499),
            "metrics": [{ "name": "del.cpu", "tags": { "host": ["regex:a|c"] } }],
        }),
    )
    .await;
    delete(
        &server,
        json!({
            "start_absolute": at(2990),
            "end_absolute": at(3010),
            "metrics": [{ "name": "del.cpu", "tags": { "host": ["b"], "dc": ["x", "y"] } }],
        }),
    )
    .await;
    // A filter on a tag host=c lacks never matches it; an unknown value matches nothing.
    delete(
        &server,
        json!({
            "start_absolute": 0,
            "metrics": [
                { "name": "del.cpu", "tags": { "host": ["c"], "dc": ["regex:.*"] } },
                { "name": "del.cpu", "tags": { "host": ["nobody"] } },
            ],
        }),
    )
    .await;
    assert_eq!(series(&server, "del.cpu", "c").await.len(), 2100);
    // No end: everything from the start on (spec §1.8: end defaults to Long.MAX_VALUE).
    delete(
        &server,
        json!({ "start_absolute": 0, "metrics": [{ "name": "del.cpu", "tags": { "host": ["c"] } }] }),
    )
    .await;
    let a = send(client().delete(server.url("/api/v1/metric/del.gone"))).await;
    assert_eq!(a.status, 204, "DELETE metric: {}", a.text());
    check(&server, "before restart").await;

    server.kill9();
    let server = Server::start(&data, &env);
    check(&server, "after kill -9").await;

    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    let server = Server::start(&data, &env);
    check(&server, "after a clean restart").await;

    // A deleted metric written again holds only the new points, tags included.
    ingest(
        &server,
        json!([{ "name": "del.gone", "datapoints": [[at(7), 7]], "tags": { "host": "z2" } }]),
    )
    .await;
    assert_eq!(series(&server, "del.gone", "z2").await, vec![7]);
    assert!(series(&server, "del.gone", "z").await.is_empty());
    assert_eq!(
        results(&server, "/api/v1/metricnames?prefix=del.").await,
        vec!["del.cpu", "del.gone", "del.mem"]
    );
    server.kill9();
    let server = Server::start(&data, &env);
    assert_eq!(series(&server, "del.gone", "z2").await, vec![7]);
    assert!(series(&server, "del.gone", "z").await.is_empty());
    assert!(!results(&server, "/api/v1/tagnames")
        .await
        .contains(&"only_gone".to_string()));
}

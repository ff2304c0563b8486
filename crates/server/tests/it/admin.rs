//! The Admin API end to end (spec §1.15): `scheduledjobs` lists the background jobs the
//! server runs; a query that is really executing (hundreds of thousands of stored points
//! through a heavy aggregator, one metric query at a time) is listed by `runningqueries`
//! under KairosDB's key names, `killquery` stops it (its client gets 500 and KairosDB's
//! error body) and it leaves the list; an unknown hash is a 204, as in KairosDB.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{get, post, Server};

const POINTS: i64 = 400_000;
const BASE: i64 = 1_600_000_000_000;

#[tokio::test]
async fn scheduledjobs_lists_the_background_jobs_of_the_embedded_engine() {
    let server = Server::fresh(&[]);
    let answer = get(&server, "/api/v1/admin/scheduledjobs").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!([
            "kairosdb.engine.maintenance",
            "kairosdb.engine.wal_sync",
            "kairosdb.metrics.prometheus_upkeep"
        ])
    );
    let server = Server::fresh(&[
        ("KAIROSDB_WAL_SYNC", "always"),
        ("KAIROSDB_ENABLE_PROMETHEUS", "false"),
    ]);
    let answer = get(&server, "/api/v1/admin/scheduledjobs").await;
    assert_eq!(answer.json(), json!(["kairosdb.engine.maintenance"]));
}

#[tokio::test]
async fn killquery_of_an_unknown_hash_is_a_204_and_kills_nothing() {
    let server = Server::fresh(&[]);
    let answer = get(&server, "/api/v1/admin/killquery/0123456789abcdef").await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let answer = get(&server, "/api/v1/admin/runningqueries").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({ "queries": [], "queries waiting": 0 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_query_is_listed_with_kairosdbs_keys_and_killquery_ends_it_with_500() {
    let server = Server::fresh(&[("KAIROSDB_QUERY_CONCURRENCY", "1")]);
    let datapoints: Vec<[f64; 2]> = (0..POINTS)
        .map(|i| [(BASE + i) as f64, ((i * 7919) % 10_007) as f64])
        .collect();
    let body = json!([{ "name": "admin.heavy", "tags": { "h": "a" }, "datapoints": datapoints }]);
    let answer = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());

    // The same heavy metric query many times over: with one query slot they run one after
    // the other, so the request runs for a long while and is listed while it does.
    let metric = json!({
        "name": "admin.heavy",
        "tags": { "h": ["a"] },
        "aggregators": [
            { "name": "percentile", "percentile": 0.5, "sampling": { "value": 1, "unit": "seconds" } },
            { "name": "dev", "sampling": { "value": 10, "unit": "seconds" } },
        ],
    });
    let query = json!({ "start_absolute": BASE, "metrics": vec![metric; 50] });
    let url = server.url("/api/v1/datapoints/query");
    let started = Instant::now();
    let running = tokio::spawn(async move {
        crate::harness::send(crate::harness::client().post(url).body(query.to_string())).await
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let v = get(&server, "/api/v1/admin/runningqueries").await.json();
        if let Some(q) = v["queries"].as_array().and_then(|q| q.first()) {
            break (q.clone(), v["queries waiting"].clone());
        }
        assert!(
            !running.is_finished(),
            "the query ended before it was listed"
        );
        assert!(Instant::now() < deadline, "the query was never listed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let (entry, waiting) = listed;
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["metric name", "query JSON", "query hash"], "{entry}");
    assert_eq!(entry["metric name"], "admin.heavy");
    assert_eq!(entry["query JSON"]["start_absolute"], BASE);
    assert_eq!(entry["query JSON"]["metrics"].as_array().unwrap().len(), 50);
    assert!(waiting.as_u64().is_some_and(|w| w < 50), "{waiting}");
    let hash = entry["query hash"].as_str().unwrap();
    assert_eq!(hash.len(), 32, "{hash}");

    let answer = get(&server, &format!("/api/v1/admin/killquery/{hash}")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let answer = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the killed query was not answered")
        .unwrap();
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert_eq!(answer.errors(), ["query killed by /api/v1/admin/killquery"]);
    eprintln!("killed after {:?}", started.elapsed());
    let after: Value = get(&server, "/api/v1/admin/runningqueries").await.json();
    assert_eq!(after, json!({ "queries": [], "queries waiting": 0 }));
}

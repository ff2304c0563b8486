//! Malformed and hostile queries get a clear 4xx quickly, and the server stays healthy:
//! `gaps` at 1 ms over years, deep nesting, an enormous `limit`, a huge bucket count, a
//! query over more points than the point limit, and a calendar sampling of 0.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{get, post, Server};

#[tokio::test]
async fn hostile_queries_get_clear_errors_and_the_server_stays_healthy() {
    let server = Server::fresh(&[
        ("KAIROSDB_QUERY_MAX_POINTS", "1000"),
        ("KAIROSDB_QUERY_TIME_LIMIT_SECS", "20"),
    ]);
    let year = 365 * 86_400_000i64;
    let t0 = 1_600_000_000_000i64;
    let points: Vec<_> = (0..600).map(|i| json!([t0 + i * 1000, i])).collect();
    let body = json!([{"name": "h", "datapoints": points, "tags": {"host": "a"}}]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());

    let query = |aggregators: serde_json::Value, extra: serde_json::Value| {
        let mut q = json!({
            "start_absolute": t0 - 10 * year,
            "end_absolute": t0 + year,
            "metrics": [{"name": "h", "aggregators": aggregators}]
        });
        if let serde_json::Value::Object(m) = extra {
            for (k, v) in m {
                q["metrics"][0][k] = v;
            }
        }
        q.to_string()
    };
    let ask = |aggregators, extra| {
        post(
            &server,
            "/api/v1/datapoints/query",
            query(aggregators, extra),
        )
    };
    let started = Instant::now();

    // gaps at 1 ms over 11 years: refused before anything is allocated.
    let a = ask(
        json!([{"name": "gaps", "sampling": {"value": 1, "unit": "milliseconds"}}]),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.errors(), vec!["Query exceeded limit of 1000 data points"]);

    // The same with `trim`: the span between the first and last point decides.
    let a = ask(
        json!([{"name": "gaps", "trim": true, "sampling": {"value": 1, "unit": "milliseconds"}}]),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());

    // A sum at 1 ms over years only has buckets where points are: fine.
    let a = ask(
        json!([{"name": "sum", "sampling": {"value": 1, "unit": "milliseconds"}}]),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json()["queries"][0]["results"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        600
    );

    // An enormous limit is no limit.
    let a = ask(json!([]), json!({"limit": 2147483647})).await;
    assert_eq!(a.status, 200, "{}", a.text());

    // Deep nesting: a parse error, not a stack overflow.
    let deep = format!(
        "{{\"start_absolute\":1,\"metrics\":[{{\"name\":\"h\",\"x\":{}{}}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let a = post(&server, "/api/v1/datapoints/query", deep).await;
    assert_eq!(a.status, 400, "{}", a.text());

    // More points than the point limit: a 400 from the read itself.
    for i in 0..2 {
        let points: Vec<_> = (0..600).map(|j| json!([t0 + j * 1000, j])).collect();
        let body =
            json!([{"name": "big", "datapoints": points, "tags": {"host": format!("h{i}")}}]);
        let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
        assert_eq!(a.status, 204, "{}", a.text());
    }
    let big = json!({"start_absolute": 0, "metrics": [{"name": "big"}]}).to_string();
    let a = post(&server, "/api/v1/datapoints/query", big).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.errors(), vec!["Query exceeded limit of 1000 data points"]);

    // A sampling value of 0 fails at run time as in KairosDB (500), with a reason.
    let a = ask(
        json!([{"name": "avg", "sampling": {"value": 0, "unit": "days"}}]),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 500, "{}", a.text());
    assert!(
        a.text().contains("sampling value must be greater than 0"),
        "{}",
        a.text()
    );

    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let a = get(&server, "/api/v1/health/check").await;
    assert_eq!(a.status, 204, "{}", a.text());
}

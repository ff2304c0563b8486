//! Malformed and hostile queries get a clear 4xx quickly, and the server stays healthy:
//! `gaps` at 1 ms over years, deep nesting, an enormous `limit`, a huge bucket count, a
//! query over more points than the point limit, and a calendar sampling of 0. Bodies of
//! the wrong shape are a short 400, counted on `/metrics`, however big they are.

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

    // A sampling value of 0 fails at run time, with a reason: KairosDB answers 500, here
    // it is the query's fault, a 400.
    let a = ask(
        json!([{"name": "avg", "sampling": {"value": 0, "unit": "days"}}]),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
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

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_short_400_and_counted() {
    let server = Server::fresh(&[]);
    // 2 MB of JSON array where a query object belongs: KairosDB answers 500 and echoes
    // the whole body in its message.
    let big = format!("[{}1]", "1,".repeat(1_000_000));
    let a = post(&server, "/api/v1/datapoints/query", big).await;
    assert_eq!(a.status, 400, "{}", &a.text()[..200]);
    let message = &a.errors()[0];
    assert!(message.starts_with("Not a JSON Object: [1,1,"), "{message}");
    assert!(a.body.len() < 2_000, "{} bytes of error", a.body.len());
    assert!(message.ends_with("bytes in all)"), "{message}");
    // A non-numeric string timestamp inside `datapoints` (KairosDB: 500).
    let body = json!([{"name": "m", "tags": {"h": "a"}, "datapoints": [["x", 1]]}]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let metrics = get(&server, "/api/v1/metrics").await.json();
    assert_eq!(metrics["kairosdb_http_bad_requests_total"], 2, "{metrics}");
}

/// A deterministic pseudo-random source (xorshift64*), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `body`: cut it, drop or repeat a slice, put a hostile token somewhere,
/// or swap a value for one of another JSON type.
fn mutate(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "null",
        "true",
        "-1",
        "0",
        "1e999",
        "-9223372036854775809",
        "\"\\u0000\"",
        "[]",
        "{}",
        "\"x\"",
        "1.5",
        "99999999999999999999",
        "\"regex:(\"",
    ];
    let mut out = body.to_vec();
    let at = rng.below(out.len() + 1);
    match rng.below(5) {
        0 => out.truncate(at),
        1 => {
            let end = (at + rng.below(20)).min(out.len());
            out.drain(at..end);
        }
        2 => {
            let end = (at + rng.below(40)).min(out.len());
            let slice = out[at..end].to_vec();
            out.splice(at..at, slice);
        }
        _ => {
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            let end = (at + rng.below(8)).min(out.len());
            out.splice(at..end, token.iter().copied());
        }
    }
    out
}

/// Issue 22: mutated KairosDB fixtures sent to the ingest, query, tags and delete
/// endpoints are answered as the client's mistake (or served), never with a 5xx.
#[tokio::test]
async fn mutated_kairosdb_fixtures_never_get_a_5xx() {
    let server = Server::fresh(&[("KAIROSDB_QUERY_TIME_LIMIT_SECS", "10")]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/kairosdb-conformance/unit-resources");
    let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    fixtures.sort();
    let endpoints = [
        "/api/v1/datapoints",
        "/api/v1/datapoints/query",
        "/api/v1/datapoints/query/tags",
        "/api/v1/datapoints/delete",
    ];
    let client = crate::harness::client();
    let mut rng = Rng(0x6b61_6972_6f73_6462);
    let mut sent = 0;
    for (name, body) in &fixtures {
        for _ in 0..8 {
            let mutated = mutate(body, &mut rng);
            let path = endpoints[rng.below(endpoints.len())];
            let a = crate::harness::send(client.post(server.url(path)).body(mutated.clone())).await;
            sent += 1;
            assert!(
                a.status < 500,
                "{path} with a mutation of {name} got {}: {}\nbody: {}",
                a.status,
                a.text(),
                String::from_utf8_lossy(&mutated)
            );
            assert!(
                a.body.len() < 64 * 1024,
                "{path}: {} bytes of answer",
                a.body.len()
            );
        }
    }
    assert!(sent >= 500, "{sent}");
    assert_eq!(get(&server, "/health/ready").await.status, 200);
}

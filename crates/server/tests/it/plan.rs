//! The analytics plan's API (issue 19) with real processes: workers and a control node,
//! each its own `kairosdb`, as in `cluster.rs`. Writes go in as JSON and as bincode
//! (encoded here byte by byte from the layout docs/cluster.md draws, not with the
//! server's code); every `/aggregate` and `/analytics` answer is compared with a model
//! computed in the test from what was written.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cluster::{cluster_of, Cluster};
use crate::harness::{client, get, post, send, Answer, Server};

/// Minute-aligned (`1_699_999_980_000 = 28_333_333 × 60_000`): 2023-11-14T22:13:00Z.
const BASE: i64 = 1_699_999_980_000;
const METRIC: &str = "plan.cpu";

/// One written point.
#[derive(Clone, Debug)]
struct Point {
    host: String,
    dc: String,
    t: i64,
    v: f64,
}

impl Point {
    fn json(&self) -> Value {
        json!({"key": METRIC, "value": self.v, "timestamp": self.t,
               "tags": {"host": self.host, "datacenter": self.dc}})
    }
}

/// Hosts and their datacenters; three minutes of points every 20 s each. Values are
/// multiples of 1/4, so every sum is exact and the model's floats equal the server's.
fn points() -> Vec<Point> {
    let hosts = [
        ("web-1", "eu"),
        ("web-2", "us"),
        ("web-3", "eu"),
        ("db-1", "eu"),
    ];
    let mut out = Vec::new();
    for (i, (host, dc)) in hosts.iter().enumerate() {
        for k in 0..9i64 {
            out.push(Point {
                host: (*host).into(),
                dc: (*dc).into(),
                t: BASE + k * 20_000 + i as i64,
                v: ((i as i64 * 7 + k * k) % 23) as f64 / 4.0,
            });
        }
    }
    out
}

/// `Vec<PlanMetric>` in bincode 1's layout: `u64` counts and lengths, `f64`/`i64` LE.
fn bincode_of(points: &[Point]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = (points.len() as u64).to_le_bytes().to_vec();
    for p in points {
        string(&mut out, METRIC);
        out.extend_from_slice(&p.v.to_le_bytes());
        out.extend_from_slice(&p.t.to_le_bytes());
        out.extend_from_slice(&2u64.to_le_bytes());
        string(&mut out, "datacenter");
        string(&mut out, &p.dc);
        string(&mut out, "host");
        string(&mut out, &p.host);
    }
    out
}

/// KairosDB's percentile (`pos = p·(n+1)`) over a sorted list, as the model's reference.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len() as f64;
    let pos = p * (n + 1.0);
    if pos < 1.0 {
        return sorted[0];
    }
    if pos >= n {
        return sorted[sorted.len() - 1];
    }
    let i = pos as usize;
    sorted[i - 1] + (pos - pos.floor()) * (sorted[i] - sorted[i - 1])
}

/// The model's `/aggregate` rows for `window=1m&group_by=host&agg=avg,min,max,sum,count,p50,p95`
/// over `points`, in the server's default order (group, then time).
fn model_rows(points: &[&Point]) -> Vec<Value> {
    let mut buckets: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for p in points {
        let bucket = p.t.div_euclid(60_000) * 60_000;
        buckets
            .entry((p.host.clone(), bucket))
            .or_default()
            .push(p.v);
    }
    buckets
        .into_iter()
        .map(|((host, bucket), values)| {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let sum: f64 = values.iter().sum();
            json!({
                "timestamp": bucket,
                "group": {"host": host},
                "avg": sum / values.len() as f64,
                "min": sorted[0],
                "max": sorted[sorted.len() - 1],
                "sum": sum,
                "count": values.len(),
                "p50": percentile(&sorted, 0.5),
                "p95": percentile(&sorted, 0.95),
            })
        })
        .collect()
}

/// Equal JSON, numbers within 1e-12 of each other: a float may lose its last bit in a
/// JSON round trip (the exact bits are checked through bincode below).
fn assert_close(got: &Value, want: &Value) {
    fn close(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }
    assert!(close(got, want), "got {got}\nwant {want}");
}

fn mean(points: &[&Point]) -> f64 {
    points.iter().map(|p| p.v).sum::<f64>() / points.len() as f64
}

fn range() -> String {
    format!("from={BASE}&to={}", BASE + 180_000)
}

/// Writes `points`: the first few with `POST /metrics`, half the rest as a JSON
/// `/insert`, the others as a bincode `/insert`. Answers the `worker_node`s named.
async fn write_all(control: &Server, points: &[Point]) -> Vec<(Point, String)> {
    let mut homes = Vec::new();
    for p in &points[..3] {
        let a = post(control, "/metrics", p.json().to_string()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let body = a.json();
        assert_eq!(body["success"], true, "{body}");
        homes.push((p.clone(), body["worker_node"].as_str().unwrap().to_owned()));
    }
    let rest = &points[3..];
    let (json_part, binary_part) = rest.split_at(rest.len() / 2);
    let body = Value::Array(json_part.iter().map(Point::json).collect());
    let a = send(
        client()
            .post(control.url("/insert"))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(
        (a.status, a.json()["count"].as_u64()),
        (200, Some(json_part.len() as u64)),
        "{}",
        a.text()
    );
    let a = send(
        client()
            .post(control.url("/insert"))
            .header("content-type", "application/octet-stream")
            .body(bincode_of(binary_part)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["count"].as_u64(), Some(binary_part.len() as u64));
    homes
}

async fn analytics(server: &Server, query: &str) -> Answer {
    get(
        server,
        &format!("/analytics?key={METRIC}&{}&{query}", range()),
    )
    .await
}

/// `/analytics` in bincode: `f64 average | u8 is_partial | u32 total | u32 responding`.
async fn analytics_bincode(server: &Server, query: &str) -> (f64, bool, u32, u32) {
    let url = server.url(&format!("/analytics?key={METRIC}&{}&{query}", range()));
    let a = send(
        client()
            .get(url)
            .header("accept", "application/octet-stream"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.headers["content-type"], "application/octet-stream");
    let b = &a.body;
    assert_eq!(b.len(), 17, "{b:?}");
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let average = f64::from_le_bytes(b[..8].try_into().unwrap());
    (average, b[8] == 1, u32_at(9), u32_at(13))
}

#[tokio::test]
async fn metrics_and_inserts_in_json_and_bincode_aggregate_to_what_a_model_computes() {
    let c = cluster_of(3, "2", &[]).await;
    let points = points();
    let homes = write_all(&c.control, &points).await;
    let addresses: Vec<&str> = c.workers.iter().map(|w| w.address.as_str()).collect();
    for (p, home) in &homes {
        // `worker_node` is a worker, and it holds the series.
        let w = addresses
            .iter()
            .position(|a| a == home)
            .unwrap_or_else(|| panic!("{home} is not a worker"));
        let query = json!({"start_absolute": p.t, "end_absolute": p.t, "metrics": [{"name": METRIC,
            "tags": {"host": [p.host.clone()], "datacenter": [p.dc.clone()]}}]});
        let a = post(
            c.workers[w].server(),
            "/api/v1/datapoints/query",
            query.to_string(),
        )
        .await;
        let values = &a.json()["queries"][0]["results"][0]["values"];
        assert_close(values, &json!([[p.t, p.v]]));
    }

    let selected: Vec<&Point> = points
        .iter()
        .filter(|p| p.host.starts_with("web-") && p.dc == "eu")
        .collect();
    let path = format!(
        "/aggregate?key={METRIC}&{}&window=1m&hosts=web-*&datacenters=eu&group_by=host&agg=avg,min,max,sum,count,p50,p95",
        range()
    );
    let a = get(&c.control, &path).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let mut body = a.json();
    assert_eq!(body["is_partial"], false);
    assert_eq!(
        (
            body["total_nodes"].clone(),
            body["responding_nodes"].clone()
        ),
        (json!(3), json!(3))
    );
    let mut results = body["results"].take();
    for row in results.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("time");
    }
    assert_close(&results, &Value::Array(model_rows(&selected)));

    // Ordered by the largest average, cut to two rows.
    let a = get(&c.control, &format!("{path}&order_by=-avg,time&limit=2")).await;
    let mut model = model_rows(&selected);
    model.sort_by(|x, y| {
        y["avg"]
            .as_f64()
            .unwrap()
            .total_cmp(&x["avg"].as_f64().unwrap())
    });
    let averages: Vec<Value> = a.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["avg"].clone())
        .collect();
    let expected: Vec<Value> = model[..2].iter().map(|r| r["avg"].clone()).collect();
    assert_close(&json!(averages), &json!(expected));

    let a = analytics(&c.control, "hosts=web-*&datacenters=eu").await;
    assert_close(
        &a.json(),
        &json!({"average": mean(&selected), "is_partial": false, "total_nodes": 3, "responding_nodes": 3}),
    );
    assert_eq!(
        analytics_bincode(&c.control, "hosts=web-*&datacenters=eu")
            .await
            .0,
        mean(&selected)
    );
    let us: Vec<&Point> = points.iter().filter(|p| p.dc == "us").collect();
    assert_eq!(
        analytics_bincode(&c.control, "tags=datacenter:us").await,
        (mean(&us), false, 3, 3)
    );

    // Each worker's /compute answers its own share: with two copies, every point twice.
    let mut counted = 0;
    for w in &c.workers {
        let params = json!({"key": METRIC, "from": BASE, "to": BASE + 180_000});
        let a = post(w.server(), "/compute", params.to_string()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let groups = a.json()["groups"].as_array().unwrap().clone();
        counted += groups
            .iter()
            .map(|g| g["buckets"][0][1]["count"].as_u64().unwrap())
            .sum::<u64>();
    }
    assert_eq!(counted, 2 * points.len() as u64);

    // The control node's own Join may still be on its way through Raft: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let health = loop {
        let health = get(&c.control, "/health").await.json();
        let members = health["raft_status"]["members"]
            .as_object()
            .map_or(0, |m| m.len());
        if (members == 4 && health["status"] == "healthy") || std::time::Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (health["status"].clone(), health["role"].clone()),
        (json!("healthy"), json!("control")),
        "{health}"
    );
    assert_eq!(health["workers"]["total"], 3);
    assert_eq!(health["workers"]["healthy"], 3);
    assert_eq!(
        health["raft_status"]["members"].as_object().unwrap().len(),
        4
    );
    // Every point stored twice, as the workers' own storage figures count them.
    let mut written = 0;
    for w in &c.workers {
        let health = get(w.server(), "/health").await.json();
        assert_eq!(
            (health["status"].clone(), health["role"].clone()),
            (json!("healthy"), json!("worker"))
        );
        written += health["storage"]["figures"]["engine_points_written_total"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(written, 2 * points.len() as u64);
}

#[tokio::test]
async fn with_one_copy_and_a_dead_worker_analytics_is_partial_over_the_other_two() {
    let mut c: Cluster = cluster_of(3, "1", &[]).await;
    // Thirty hosts, so that every worker holds some.
    let points: Vec<Point> = (0..30)
        .map(|h| Point {
            host: format!("h{h}"),
            dc: "eu".into(),
            t: BASE + h,
            v: f64::from(h as i32) / 2.0,
        })
        .collect();
    let body = Value::Array(points.iter().map(Point::json).collect());
    let a = post(&c.control, "/insert", body.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    c.workers[0].kill9();

    let a = analytics(&c.control, "").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.json();
    assert_eq!(
        (
            body["is_partial"].clone(),
            body["total_nodes"].clone(),
            body["responding_nodes"].clone()
        ),
        (json!(true), json!(3), json!(2)),
        "{body}"
    );
    // The average is over exactly the hosts the other two workers hold.
    let a = get(
        &c.control,
        &format!(
            "/aggregate?key={METRIC}&{}&group_by=host&agg=count",
            range()
        ),
    )
    .await;
    let rows = a.json();
    assert_eq!(rows["is_partial"], true);
    let present: Vec<String> = rows["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["group"]["host"].as_str().unwrap().to_owned())
        .collect();
    assert!(!present.is_empty() && present.len() < 30, "{present:?}");
    let held: Vec<&Point> = points
        .iter()
        .filter(|p| present.contains(&p.host))
        .collect();
    assert_close(&body["average"], &json!(mean(&held)));
    let (average, partial, total, responding) = analytics_bincode(&c.control, "").await;
    assert_eq!(
        (average, partial, total, responding),
        (mean(&held), true, 3, 2)
    );

    // One copy: some partitions have no healthy replica.
    let a = get(&c.control, "/health").await;
    assert_eq!(a.status, 503, "{}", a.text());
    let health = a.json();
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(
        (
            health["workers"]["total"].clone(),
            health["workers"]["healthy"].clone()
        ),
        (json!(3), json!(2))
    );
}

/// The plan's error body: `(status, code)`, checked for its four fields.
fn plan_error(a: &Answer) -> (u16, String) {
    let body = a.json();
    for field in ["error", "code", "message"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
    assert!(body["details"].is_object(), "{body}");
    (a.status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn bad_input_and_a_token_over_its_rate_limit_get_the_plans_error_bodies() {
    let writer = crate::auth::hash_secret(&["--token"], "writer-secret\n");
    let reader = crate::auth::hash_secret(&["--token"], "reader-secret\n");
    let config = format!(
        "auth_enabled = true\n\
         [[auth.tokens]]\nname = \"writer\"\ntoken_hash = \"{}\"\nscopes = [\"write\"]\nrate_per_minute = 1\nburst = 1\n\
         [[auth.tokens]]\nname = \"reader\"\ntoken_hash = \"{}\"\nscopes = [\"read\"]\n",
        writer.trim(),
        reader.trim()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("control.toml");
    std::fs::write(&file, config).unwrap();
    let c = cluster_of(1, "1", &[("KAIROSDB_CONFIG", file.to_str().unwrap())]).await;
    let url = |path: &str| c.control.url(path);
    let metric = r#"{"key":"k","value":1,"timestamp":"2024-01-01T00:00:00Z","tags":{"host":"a"}}"#;

    let a = send(client().post(url("/metrics")).body(metric)).await;
    assert_eq!(plan_error(&a), (401, "AUTH_ERROR".into()));
    let a = send(
        client()
            .post(url("/metrics"))
            .bearer_auth("reader-secret")
            .body(metric),
    )
    .await;
    assert_eq!(plan_error(&a), (403, "AUTH_ERROR".into()));
    let a = send(
        client()
            .post(url("/metrics"))
            .bearer_auth("writer-secret")
            .body(metric),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let a = send(
        client()
            .post(url("/metrics"))
            .bearer_auth("writer-secret")
            .body(metric),
    )
    .await;
    assert_eq!(plan_error(&a), (429, "RATE_LIMIT_EXCEEDED".into()));
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(a.headers["x-ratelimit-limit"], "1");

    // The reader has no rate of its own: the control node's default, 1,000 a minute
    // (a burst of ten seconds' worth, 167).
    let read = |path: &str| send(client().get(url(path)).bearer_auth("reader-secret"));
    let a = read("/analytics?key=k&from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:01Z").await;
    assert_eq!(a.json()["average"], 1.0, "{}", a.text());
    assert_eq!(a.headers["x-ratelimit-limit"], "167");
    let cases = [
        ("/aggregate", "VALIDATION_ERROR", "key is required"),
        (
            "/aggregate?key=k&window=0s",
            "VALIDATION_ERROR",
            "longer than zero",
        ),
        (
            "/aggregate?key=k&from=tomorrow",
            "INVALID_REQUEST",
            "tomorrow",
        ),
        (
            "/aggregate?key=k&agg=p95&hosts=a&unknown=1",
            "INVALID_REQUEST",
            "unknown parameter",
        ),
        (
            "/analytics?key=k&from=2020-01-01&to=2020-01-02",
            "NOT_FOUND",
            "no points",
        ),
    ];
    for (path, code, needle) in cases {
        let a = read(path).await;
        let (status, got) = plan_error(&a);
        assert_eq!(got, code, "{path}: {}", a.text());
        assert_eq!(
            status,
            if code == "NOT_FOUND" { 404 } else { 400 },
            "{path}"
        );
        assert!(
            a.json()["message"].as_str().unwrap().contains(needle),
            "{path}: {}",
            a.text()
        );
    }
    let a = send(
        client()
            .post(url("/insert"))
            .bearer_auth("writer-secret")
            .header("content-type", "application/json")
            .body("not json"),
    )
    .await;
    // The writer's one request a minute is spent: the limit answers before the body is read.
    assert_eq!(plan_error(&a).1, "RATE_LIMIT_EXCEEDED");
}

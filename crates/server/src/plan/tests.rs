//! The plan's routes in-process, over a real engine in a temporary directory (a control
//! node here has no workers: its reads compute over its own storage, which is what a
//! worker's `/compute` does; the pushed-down path over real workers is in
//! `crate::cluster::tests` and `tests/it/plan.rs`), and their place in authentication.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use kairosdb_cluster::analytics::{codec, AnalyticsAnswer, Partials, PlanMetric};
use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::Storage;

use super::*;
use crate::config::{Config, Settings};
use crate::http::router;
use crate::metrics::ServerMetrics;

struct Node {
    app: Router,
    _dir: tempfile::TempDir,
}

/// The `cluster_secret` of the nodes with `auth_enabled`.
const SECRET: &str = "unit-test-cluster-secret";

/// A node of `role` on its own engine, with `toml` settings.
fn node(role: &str, toml: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineConfig::new(dir.path());
    engine.wal_sync = WalSync::None;
    let engine: Arc<dyn Storage> = Arc::new(Engine::open(engine).unwrap());
    let mut settings = Settings::from_toml_str(toml).unwrap();
    settings.role = Some(role.into());
    settings.cluster_workers = Some("127.0.0.1:9".into());
    // Required with auth_enabled on a cluster node; unset when a test sets none.
    if settings.auth_enabled == Some(true) && settings.cluster_secret.is_none() {
        settings.cluster_secret = Some(SECRET.into());
    }
    settings.data_dir = Some(dir.path().into());
    let config = Config::resolve(settings).unwrap();
    let state = AppState::new(
        engine,
        Arc::new(config),
        Arc::new(ServerMetrics::default()),
        None,
    );
    Node {
        app: router(Arc::new(state)),
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo("192.0.2.1:5".parse::<SocketAddr>().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn metric(key: &str, value: f64, timestamp: i64, host: &str) -> PlanMetric {
    PlanMetric {
        key: key.into(),
        value,
        timestamp,
        tags: [("host".to_string(), host.to_string())].into(),
    }
}

/// The plan's error body: status, code, and the whole body.
fn plan_error(a: &Answer) -> (StatusCode, String, Value) {
    let body = a.json();
    assert!(
        body["error"].is_string() && body["message"].is_string() && body["details"].is_object(),
        "not the plan's error shape: {body}"
    );
    (a.status, body["code"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn a_control_node_stores_json_and_bincode_metrics_and_aggregates_them() {
    let n = node("control", "");
    let one = r#"{"key":"cpu","value":1.0,"timestamp":"2023-11-14T22:13:20Z","tags":{"host":"a"}}"#;
    let a = send(&n.app, post("/metrics", "application/json", one)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    assert_eq!(a.json()["success"], true);
    assert!(
        a.json()["worker_node"].is_null(),
        "no cluster behind this node"
    );
    let batch = json!([
        {"key": "cpu", "value": 3.0, "timestamp": 1_700_000_030_000i64, "tags": {"host": "a"}},
        {"key": "cpu", "value": 8.0, "timestamp": 1_700_000_000_000i64, "tags": {"host": "b"}},
    ]);
    let a = send(
        &n.app,
        post("/insert", "application/json", batch.to_string()),
    )
    .await;
    assert_eq!(
        (a.status, a.json()["count"].clone()),
        (StatusCode::OK, json!(2))
    );
    let binary = codec::encode(&vec![metric("cpu", 4.0, 1_700_000_090_000, "b")]);
    let a = send(&n.app, post("/insert", "application/octet-stream", binary)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());

    let range = "from=1700000000000&to=1700000120000";
    let a = send(
        &n.app,
        get(&format!(
            "/aggregate?key=cpu&{range}&window=1m&group_by=host&agg=avg,count,max,p50"
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    let body = a.json();
    assert_eq!(
        (body["is_partial"].clone(), body["total_nodes"].clone()),
        (json!(false), json!(1))
    );
    let rows: Vec<(String, i64, f64, u64)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"]["host"].as_str().unwrap().to_owned(),
                r["timestamp"].as_i64().unwrap(),
                r["avg"].as_f64().unwrap(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // Buckets on the minute: 1_699_999_980_000 holds 22:13:20 and :50; the next :14:50.
    assert_eq!(
        rows,
        [
            ("a".into(), 1_699_999_980_000, 2.0, 2),
            ("b".into(), 1_699_999_980_000, 8.0, 1),
            ("b".into(), 1_700_000_040_000, 4.0, 1),
        ]
    );
    assert_eq!(body["results"][0]["time"], "2023-11-14T22:13:00Z");

    let a = send(&n.app, get(&format!("/analytics?key=cpu&{range}&hosts=*"))).await;
    assert_eq!(
        a.json(),
        json!({"average": 4.0, "is_partial": false, "total_nodes": 1, "responding_nodes": 1})
    );
    let mut request = get(&format!("/analytics?key=cpu&{range}&hosts=b"));
    request
        .headers_mut()
        .insert(header::ACCEPT, "application/octet-stream".parse().unwrap());
    let a = send(&n.app, request).await;
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/octet-stream");
    let answer: AnalyticsAnswer = codec::decode(&a.body, 64).unwrap();
    assert_eq!(answer.average, 6.0);

    // The same points are a KairosDB series: the KairosDB API reads them too.
    let query = json!({"start_absolute": 0, "metrics": [{"name": "cpu", "aggregators": [{"name": "count", "sampling": {"value": 1, "unit": "days"}}]}]});
    let a = send(
        &n.app,
        post(
            "/api/v1/datapoints/query",
            "application/json",
            query.to_string(),
        ),
    )
    .await;
    assert_eq!(a.json()["queries"][0]["results"][0]["values"][0][1], 4);
}

#[tokio::test]
async fn json_metrics_keep_every_double_bit_for_bit() {
    let n = node("control", "");
    // Awkward doubles, then pseudo-random bit patterns (finite ones).
    let mut values = vec![
        0.1 + 0.2,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -0.0,
        123_456.789_012_345_68,
    ];
    let mut bits: u64 = 0x9e37_79b9_7f4a_7c15;
    while values.len() < 300 {
        bits = bits
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = f64::from_bits(bits);
        if v.is_finite() {
            values.push(v);
        }
    }
    let batch: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"key": "bits", "value": v, "timestamp": 1_000 + i as i64, "tags": {"host": "a"}}))
        .collect();
    let a = send(
        &n.app,
        post(
            "/insert",
            "application/json",
            Value::Array(batch).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    let query = json!({"start_absolute": 0, "metrics": [{"name": "bits"}]});
    let a = send(
        &n.app,
        post(
            "/api/v1/datapoints/query",
            "application/json",
            query.to_string(),
        ),
    )
    .await;
    let stored: Vec<f64> = a.json()["queries"][0]["results"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(stored.len(), values.len());
    for (i, (got, want)) in stored.iter().zip(&values).enumerate() {
        // -0.0 is stored as KairosDB stores it; every other value keeps its bits.
        if *want != 0.0 {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "value {i}: {want:e} came back {got:e}"
            );
        }
    }
}

#[tokio::test]
async fn bad_input_is_refused_in_the_plans_error_shape() {
    let n = node("control", "");
    let cases: Vec<(Request<Body>, StatusCode, &str, &str)> = vec![
        (
            post("/insert", "application/json", "[{"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "invalid JSON",
        ),
        (
            post("/insert", "application/octet-stream", vec![1u8, 2, 3]),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "bincode",
        ),
        (
            // Not declared bincode: read as JSON (as curl -d's form type is).
            post("/insert", "text/csv", "a,b"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "invalid JSON",
        ),
        (
            post(
                "/insert",
                "application/json",
                r#"[{"key":"k","value":1,"timestamp":1,"tags":{"host":"a"}},{"key":"k","value":1,"timestamp":1}]"#,
            ),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "1 of 2 metrics cannot be stored",
        ),
        (
            post(
                "/metrics",
                "application/json",
                r#"{"key":"k","value":1,"timestamp":"noon","tags":{"h":"a"}}"#,
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "noon",
        ),
        (
            get("/aggregate?key=cpu&window=5x"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "not a duration",
        ),
        (
            get("/aggregate?key=cpu&agg=median"),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "unknown aggregate",
        ),
        (
            get("/aggregate?key=cpu&from=2024-01-02&to=2024-01-01"),
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "must be before",
        ),
        (
            get("/analytics?key=nothing"),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no points",
        ),
        (
            get("/insert"),
            StatusCode::METHOD_NOT_ALLOWED,
            "INVALID_REQUEST",
            "not allowed",
        ),
    ];
    for (request, status, code, needle) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let a = send(&n.app, request).await;
        let (got_status, got_code, body) = plan_error(&a);
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{what}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
    let a = send(&n.app, get("/aggregate?key=cpu&limit=0")).await;
    assert_eq!(plan_error(&a).2["details"]["parameter"], "limit");
    let a = send(
        &n.app,
        post(
            "/insert",
            "application/json",
            r#"[{"key":"","value":1,"timestamp":1,"tags":{"h":"a"}}]"#,
        ),
    )
    .await;
    assert_eq!(
        plan_error(&a).2["details"]["errors"],
        json!([{"index": 0, "message": "key may not be empty"}])
    );
}

#[tokio::test]
async fn a_worker_computes_its_partials_in_json_and_bincode() {
    let n = node("worker", "");
    let batch = vec![
        metric("m", 1.0, 60_000, "a"),
        metric("m", 2.0, 61_000, "a"),
        metric("m", 5.0, 125_000, "b"),
    ];
    let a = send(
        &n.app,
        post("/insert", "application/x-bincode", codec::encode(&batch)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let params = json!({"key": "m", "from": 0, "to": "1970-01-01T00:05:00Z", "window": "1m", "group_by": ["host"], "agg": "p99"});
    let a = send(
        &n.app,
        post("/compute", "application/json", params.to_string()),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    let json_partials: Partials = serde_json::from_slice(&a.body).unwrap();
    let summary: Vec<(Option<String>, i64, u64, f64, usize)> = json_partials
        .groups
        .iter()
        .flat_map(|g| {
            g.buckets
                .iter()
                .map(|(t, p)| (g.group[0].clone(), *t, p.count, p.sum, p.values.len()))
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("a".into()), 60_000, 2, 3.0, 2),
            (Some("b".into()), 120_000, 1, 5.0, 1),
        ]
    );
    let mut request = post(
        "/compute?key=m&from=0&to=300000&window=1m&group_by=host&agg=p99",
        "application/json",
        "",
    );
    request
        .headers_mut()
        .insert(header::ACCEPT, "application/octet-stream".parse().unwrap());
    let a = send(&n.app, request).await;
    let binary: Partials = codec::decode(&a.body, a.body.len() as u64).unwrap();
    assert_eq!(binary, json_partials);
    // A worker has no /aggregate (control nodes do), and /compute refuses what only a
    // merge can do.
    assert_eq!(
        send(&n.app, get("/aggregate?key=m")).await.status,
        StatusCode::NOT_FOUND
    );
    let a = send(
        &n.app,
        post("/compute", "application/json", r#"{"key":"m","limit":3}"#),
    )
    .await;
    assert_eq!(plan_error(&a).1, "INVALID_REQUEST");
}

#[tokio::test]
async fn a_single_node_keeps_todays_api() {
    let n = node("single", "");
    let a = send(&n.app, post("/insert", "application/json", "[]")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.json()["errors"].is_array(),
        "KairosDB's shape: {}",
        a.json()
    );
    let a = send(&n.app, post("/metrics", "application/json", "{}")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.json()["errors"].is_array());
    let a = send(&n.app, get("/health")).await;
    assert_eq!(a.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn health_is_the_plans_shape_on_cluster_nodes() {
    let w = node("worker", "");
    let a = send(&w.app, get("/health")).await;
    assert_eq!(a.status, StatusCode::OK);
    let body = a.json();
    assert_eq!(
        (body["status"].clone(), body["role"].clone()),
        (json!("healthy"), json!("worker"))
    );
    assert!(body["node_id"].is_string());
    assert!(
        body["storage"]["figures"]["engine_head_points"].is_number(),
        "{body}"
    );
    assert_eq!(body["raft_status"]["state"], "static");
    assert_eq!(body["raft_status"]["term"], 0);
    assert!(body["raft_status"]["leader_id"].is_null());
    let c = node("control", "");
    let body = send(&c.app, get("/health")).await.json();
    assert_eq!(body["role"], "control");
    assert!(
        body["workers"]["total"].is_number() && body["workers"]["healthy"].is_number(),
        "{body}"
    );
    // The probes stay KairosDB-rs's own.
    assert_eq!(
        send(&c.app, get("/health/live")).await.json(),
        json!({"status": "ok"})
    );
}

fn token_toml(name: &str, token: &str, scopes: &str, extra: &str) -> String {
    format!(
        "[[auth.tokens]]\nname = \"{name}\"\ntoken_hash = \"{}\"\nscopes = {scopes}\n{extra}\n",
        crate::auth::credentials::hash_token(token)
    )
}

fn with_token(mut request: Request<Body>, token: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    request
}

#[tokio::test]
async fn plan_routes_need_their_scopes_and_refuse_in_the_plans_shape() {
    let toml = format!(
        "auth_enabled = true\n{}{}",
        token_toml(
            "writer",
            "w-token",
            "[\"write\"]",
            "rate_per_minute = 1\nburst = 1"
        ),
        token_toml("reader", "r-token", "[\"read\"]", ""),
    );
    let n = node("control", &toml);
    let body = r#"{"key":"k","value":1,"timestamp":1,"tags":{"h":"a"}}"#;
    let a = send(&n.app, post("/metrics", "application/json", body)).await;
    assert_eq!(plan_error(&a).1, "AUTH_ERROR");
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers.contains_key(header::WWW_AUTHENTICATE));
    let a = send(
        &n.app,
        with_token(post("/metrics", "application/json", body), "r-token"),
    )
    .await;
    assert_eq!(
        (a.status, plan_error(&a).1.as_str()),
        (StatusCode::FORBIDDEN, "AUTH_ERROR")
    );
    let a = send(
        &n.app,
        with_token(post("/metrics", "application/json", body), "w-token"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(
        &n.app,
        with_token(post("/metrics", "application/json", body), "w-token"),
    )
    .await;
    let (status, code, err) = plan_error(&a);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED")
    );
    assert!(a.headers.contains_key(header::RETRY_AFTER));
    assert!(err["details"]["retry_after_secs"].as_u64().unwrap() >= 1);
    let a = send(&n.app, with_token(get("/aggregate?key=k"), "r-token")).await;
    assert_eq!(a.status, StatusCode::OK);
    // The KairosDB API keeps KairosDB's error body; /health and GET /metrics stay open.
    let a = send(&n.app, post("/api/v1/datapoints", "application/json", "[]")).await;
    assert!(a.json()["errors"].is_array());
    assert_eq!(send(&n.app, get("/health")).await.status, StatusCode::OK);
    assert_ne!(
        send(&n.app, get("/metrics")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn the_scope_of_each_plan_route_depends_on_the_role() {
    use crate::auth::Scope;
    let s = |role, method: Method, path: &str| required_scope(role, &method, path);
    assert_eq!(
        s(NodeRole::Control, Method::POST, "/metrics"),
        Some(Scope::Write)
    );
    assert_eq!(
        s(NodeRole::Control, Method::POST, "/insert"),
        Some(Scope::Write)
    );
    assert_eq!(
        s(NodeRole::Control, Method::GET, "/aggregate"),
        Some(Scope::Read)
    );
    assert_eq!(
        s(NodeRole::Control, Method::HEAD, "/analytics"),
        Some(Scope::Read)
    );
    assert_eq!(
        s(NodeRole::Worker, Method::POST, "/insert"),
        Some(Scope::Admin)
    );
    assert_eq!(
        s(NodeRole::Worker, Method::POST, "/compute"),
        Some(Scope::Admin)
    );
    assert_eq!(
        s(NodeRole::Control, Method::GET, "/metrics"),
        None,
        "Prometheus stays open"
    );
    assert_eq!(s(NodeRole::Control, Method::POST, "/compute"), None);
    assert_eq!(s(NodeRole::Single, Method::POST, "/insert"), None);
    assert!(speaks_plan(NodeRole::Worker, &Method::GET, "/compute"));
    assert!(!speaks_plan(NodeRole::Control, &Method::GET, "/metrics"));
    assert!(!speaks_plan(NodeRole::Single, &Method::POST, "/insert"));
}

#[tokio::test]
async fn a_workers_internal_calls_are_never_rate_limited_by_the_role_default() {
    let n = node("worker", "rate_limit_burst = 1");
    for _ in 0..5 {
        let a = send(&n.app, get("/internal/v1/health")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(!a.headers.contains_key("x-ratelimit-limit"));
    }
    // Its plan routes are limited (5,000 a minute by default, burst 1 here).
    let insert = || post("/insert", "application/json", "[]");
    assert_eq!(send(&n.app, insert()).await.status, StatusCode::OK);
    let a = send(&n.app, insert()).await;
    assert_eq!(
        (a.status, plan_error(&a).1.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED")
    );
    assert_eq!(a.headers["x-ratelimit-limit"], "1");
}

#[tokio::test]
async fn server_type_turns_plan_routes_off_by_class_in_the_plans_shape() {
    let n = node("control", "server_type = \"QUERY\"");
    let one = r#"{"key":"cpu","value":1.0,"timestamp":1,"tags":{"host":"a"}}"#;
    let a = send(&n.app, post("/metrics", "application/json", one)).await;
    assert_eq!(plan_error(&a).0, StatusCode::FORBIDDEN);
    assert_eq!(plan_error(&a).1, "FORBIDDEN");
    let a = send(&n.app, post("/insert", "application/json", "[]")).await;
    assert_eq!(plan_error(&a).1, "FORBIDDEN");
    // Queries are served (whatever they find); Prometheus' GET /metrics is not gated.
    let a = send(&n.app, get("/aggregate?metric=cpu")).await;
    assert_ne!(a.status, StatusCode::FORBIDDEN);
    let a = send(&n.app, get("/metrics")).await;
    assert_ne!(a.status, StatusCode::FORBIDDEN);

    let n = node("control", "server_type = \"INGEST\"");
    let a = send(&n.app, get("/aggregate?metric=cpu")).await;
    assert_eq!(plan_error(&a).1, "FORBIDDEN");
    // A single node has no plan routes: still no route, not a refusal.
    let n = node("single", "server_type = \"QUERY\"");
    let a = send(&n.app, post("/insert", "application/json", "[]")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

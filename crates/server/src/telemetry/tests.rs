//! The telemetry API in-process over a real engine: CRUD round trips, ids, isolation,
//! listing filters and cursors, its place in authentication.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::Storage;

use crate::config::{Config, Settings};
use crate::http::AppState;
use crate::metrics::ServerMetrics;

struct Node {
    telemetry: Router,
    kairos: Router,
    _dir: tempfile::TempDir,
}

fn node(toml: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineConfig::new(dir.path());
    engine.wal_sync = WalSync::None;
    let engine: Arc<dyn Storage> = Arc::new(Engine::open(engine).unwrap());
    let mut settings = Settings::from_toml_str(toml).unwrap();
    settings.data_dir = Some(dir.path().into());
    let config = Config::resolve(settings).unwrap();
    // Wrapped as `main.rs` wraps it: the live tail hears every write.
    let watch = crate::watch::Watch::new(None);
    let storage = crate::watch::Watched::new(engine, watch.clone());
    let state = Arc::new(
        AppState::new(
            storage,
            Arc::new(config),
            Arc::new(ServerMetrics::default()),
            None,
        )
        .with_watch(watch),
    );
    Node {
        telemetry: super::router(state.clone(), tokio_util::sync::CancellationToken::new()),
        kairos: crate::http::router(state),
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(app: &Router, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = request
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo("192.0.2.1:5".parse::<SocketAddr>().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer { status, body }
}

async fn create(n: &Node, record: Value) -> Value {
    let a = call(&n.telemetry, Method::POST, "/metrics", Some(record)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json());
    a.json()
}

/// The plan's error shape: `(status, code)`.
fn refusal(a: &Answer) -> (StatusCode, String) {
    let body = a.json();
    assert!(
        body["message"].is_string() && body["details"].is_object(),
        "{body}"
    );
    (a.status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_record_round_trips_through_create_read_update_and_delete() {
    let n = node("");
    let made = create(
        &n,
        json!({"name": "cpu", "tags": ["web", "env:prod"], "value": 41.5, "timestamp": "2024-05-01T12:00:00Z"}),
    )
    .await;
    assert_eq!(made["tags"], json!(["env:prod", "web"]));
    assert_eq!(made["timestamp"], 1_714_564_800_000i64);
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("/metrics/{id}");
    let read = call(&n.telemetry, Method::GET, &path, None).await;
    assert_eq!(read.json(), made);

    // The KairosDB API sees the same point, with the tag list as tags.
    let query = json!({"start_absolute": 0, "metrics": [{"name": "cpu", "tags": {"env": ["prod"], "web": ["true"]}}]});
    let a = call(
        &n.kairos,
        Method::POST,
        "/api/v1/datapoints/query",
        Some(query),
    )
    .await;
    assert_eq!(
        a.json()["queries"][0]["results"][0]["values"],
        json!([[1_714_564_800_000i64, 41.5]])
    );

    // A new value stays in place; a new time moves the record, which keeps its id.
    let a = call(&n.telemetry, Method::PUT, &path, Some(json!({"value": 7}))).await;
    assert_eq!(
        (a.status, a.json()["value"].clone(), a.json()["id"].clone()),
        (StatusCode::OK, json!(7.0), json!(id))
    );
    let a = call(
        &n.telemetry,
        Method::PUT,
        &path,
        Some(json!({"timestamp": 1_714_564_860_000i64, "tags": ["env:dev"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    assert_eq!(a.json()["id"], json!(id), "the id survives a move");
    let moved = call(&n.telemetry, Method::GET, &path, None).await.json();
    assert_eq!(
        (
            moved["timestamp"].clone(),
            moved["tags"].clone(),
            moved["value"].clone()
        ),
        (json!(1_714_564_860_000i64), json!(["env:dev"]), json!(7.0))
    );
    let listed = call(&n.telemetry, Method::GET, "/metrics?name=cpu", None)
        .await
        .json();
    assert_eq!(
        listed["records"],
        json!([moved]),
        "listed once, under its first id, at its new place"
    );

    let a = call(&n.telemetry, Method::DELETE, &path, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(&n.telemetry, Method::GET, &path, None).await;
    assert_eq!(refusal(&a), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    let a = call(&n.telemetry, Method::DELETE, &path, None).await;
    assert_eq!(refusal(&a), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    let listed = call(&n.telemetry, Method::GET, "/metrics?name=cpu", None)
        .await
        .json();
    assert_eq!(listed["records"], json!([]));
}

#[tokio::test]
async fn updates_and_deletes_touch_their_record_and_no_other() {
    let n = node("");
    let a = create(
        &n,
        json!({"name": "m", "tags": ["host:a"], "value": 1, "timestamp": 10}),
    )
    .await;
    // Same tags and one more, and the same series at another time.
    let b = create(
        &n,
        json!({"name": "m", "tags": ["host:a", "dc:eu"], "value": 2, "timestamp": 10}),
    )
    .await;
    let c = create(
        &n,
        json!({"name": "m", "tags": ["host:a"], "value": 3, "timestamp": 11}),
    )
    .await;
    let path = |r: &Value| format!("/metrics/{}", r["id"].as_str().unwrap());
    let a2 = call(
        &n.telemetry,
        Method::PUT,
        &path(&a),
        Some(json!({"value": 100})),
    )
    .await;
    assert_eq!(a2.status, StatusCode::OK);
    assert_eq!(
        call(&n.telemetry, Method::DELETE, &path(&a), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    for (r, value) in [(&b, 2.0), (&c, 3.0)] {
        let got = call(&n.telemetry, Method::GET, &path(r), None).await.json();
        assert_eq!(got["value"], json!(value), "{r}");
    }
    // Creating where a record is: 409 with its id, the stored value unchanged.
    let again = call(
        &n.telemetry,
        Method::POST,
        "/metrics",
        Some(json!({"name": "m", "tags": ["host:a"], "value": 9, "timestamp": 11})),
    )
    .await;
    assert_eq!(refusal(&again), (StatusCode::CONFLICT, "CONFLICT".into()));
    assert_eq!(again.json()["details"]["id"], c["id"]);
    // Moving onto another record: 409, both unchanged.
    let onto = call(
        &n.telemetry,
        Method::PUT,
        &path(&c),
        Some(json!({"tags": ["host:a", "dc:eu"], "timestamp": 10})),
    )
    .await;
    assert_eq!(refusal(&onto), (StatusCode::CONFLICT, "CONFLICT".into()));
    assert_eq!(
        call(&n.telemetry, Method::GET, &path(&c), None)
            .await
            .json()["value"],
        json!(3.0)
    );
}

#[tokio::test]
async fn bad_ids_bodies_and_parameters_get_400_in_one_shape() {
    let n = node("");
    for (method, path, body) in [
        (Method::GET, "/metrics/not-an-id", None),
        (Method::PUT, "/metrics/AQ", Some(json!({"value": 1}))),
        (
            Method::POST,
            "/metrics",
            Some(json!({"name": "m", "value": 1})),
        ),
        (
            Method::POST,
            "/metrics",
            Some(json!({"name": "m", "value": 1, "timestamp": "noon"})),
        ),
        (
            Method::POST,
            "/metrics",
            Some(json!({"name": "m", "value": 1, "timestamp": 1, "tags": ["a:"]})),
        ),
        (
            Method::POST,
            "/metrics",
            Some(json!({"name": "m", "value": 1, "timestamp": 1, "colour": "red"})),
        ),
        (Method::GET, "/metrics?limt=3", None),
        (Method::GET, "/metrics?from=10&to=5", None),
        (Method::GET, "/metrics?cursor=zzz", None),
    ] {
        let a = call(&n.telemetry, method.clone(), path, body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body:?}: {}",
            a.json()
        );
        let (_, code) = refusal(&a);
        assert!(
            code == "INVALID_REQUEST" || code == "VALIDATION_ERROR",
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_listing_filters_orders_newest_first_and_pages_without_repeats_or_gaps() {
    let n = node("");
    for t in 0..25 {
        let env = if t % 2 == 0 { "env:prod" } else { "env:dev" };
        create(&n, json!({"name": "ev", "tags": [env, format!("host:h{}", t % 3)], "value": t, "timestamp": 1_000 + t / 2})).await;
    }
    create(
        &n,
        json!({"name": "other", "tags": ["env:prod"], "value": 0, "timestamp": 5_000}),
    )
    .await;

    let page = |q: String| {
        let n = &n;
        async move {
            call(&n.telemetry, Method::GET, &format!("/metrics?{q}"), None)
                .await
                .json()
        }
    };
    // Every `ev` record, 4 at a time, newest first: each once, in order.
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut cursor = String::new();
    loop {
        let body = page(format!("name=ev&limit=4{cursor}")).await;
        for r in body["records"].as_array().unwrap() {
            seen.push((
                r["timestamp"].as_i64().unwrap(),
                r["id"].as_str().unwrap().to_owned(),
            ));
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id, no repeats");

    // Filters: a tag, a range, and all of it as one `filters` object; across names.
    let prod = page("name=ev&tag=env:prod".into()).await;
    assert_eq!(prod["records"].as_array().unwrap().len(), 13);
    let ranged = page("tag=env:prod&from=1003&to=5000&sort=timestamp".into()).await;
    let ts: Vec<i64> = ranged["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ts,
        [1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 5000]
    );
    let filters = r#"{"tags":["env:prod"],"from":1003,"to":5000,"sort":"timestamp"}"#;
    let same = page(format!("filters={}", urlencode(filters))).await;
    assert_eq!(same, ranged);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_telemetry_listener_needs_credentials_for_every_record_when_auth_is_on() {
    let n = node(&format!(
        "auth_enabled = true\n[[auth.tokens]]\nname = \"reader\"\ntoken_hash = \"{}\"\nscopes = [\"read\"]\n",
        crate::auth::credentials::hash_token("a")
    ));
    // GET /metrics is Prometheus on the main listener, open by default; here it is records.
    let a = call(&n.telemetry, Method::GET, "/metrics", None).await;
    assert_eq!(refusal(&a), (StatusCode::UNAUTHORIZED, "AUTH_ERROR".into()));
    let mut request = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer a")
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo("192.0.2.1:5".parse::<SocketAddr>().unwrap()));
    let response = n.telemetry.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut request = Request::post("/metrics")
        .header(header::AUTHORIZATION, "Bearer a")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"m","value":1,"timestamp":1}"#))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo("192.0.2.1:5".parse::<SocketAddr>().unwrap()));
    let response = n.telemetry.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "read only");
}

#[tokio::test]
async fn the_stream_sends_matching_new_records_as_server_sent_events() {
    use futures_util::StreamExt;
    let n = node("");
    let request = Request::get("/metrics/stream?name=deploys&tag=env:prod")
        .body(Body::empty())
        .unwrap();
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo("192.0.2.1:5".parse::<SocketAddr>().unwrap()));
    let response = n.telemetry.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    // Another name, then the right name without the tag, then one that matches.
    create(
        &n,
        json!({"name": "other", "tags": ["env:prod"], "value": 1, "timestamp": 1}),
    )
    .await;
    create(
        &n,
        json!({"name": "deploys", "tags": ["env:dev"], "value": 2, "timestamp": 2}),
    )
    .await;
    let wanted = create(
        &n,
        json!({"name": "deploys", "tags": ["env:prod", "api"], "value": 3, "timestamp": 3}),
    )
    .await;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line in {text:?}"));
    assert!(text.starts_with("event: record\n"), "{text:?}");
    assert_eq!(serde_json::from_str::<Value>(data).unwrap(), wanted);
    // A point written through the KairosDB API is a record too: streamed with the id
    // GET /metrics gives it.
    let ingest = json!([{"name": "deploys", "tags": {"env": "prod", "host": "b"},
        "datapoints": [[4, 7]]}]);
    let a = call(&n.kairos, Method::POST, "/api/v1/datapoints", Some(ingest)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let streamed: Value = serde_json::from_str(data).unwrap();
    assert_eq!(streamed["value"], 7.0);
    assert_eq!(streamed["tags"], json!(["env:prod", "host:b"]));
    let listed = call(
        &n.telemetry,
        Method::GET,
        "/metrics?name=deploys&tag=host:b",
        None,
    )
    .await;
    assert_eq!(listed.json()["records"][0]["id"], streamed["id"]);
    // A bad filter is refused before the stream starts.
    let a = call(&n.telemetry, Method::GET, "/metrics/stream?nme=x", None).await;
    assert_eq!(
        refusal(&a),
        (StatusCode::BAD_REQUEST, "INVALID_REQUEST".into())
    );
}

#[tokio::test]
async fn a_question_in_plain_words_is_answered_with_how_it_was_read() {
    let n = node("");
    let now = jiff::Timestamp::now().as_millisecond();
    for (host, values) in [("a", [10.0, 30.0]), ("b", [5.0, 7.0])] {
        for (k, v) in values.iter().enumerate() {
            create(&n, json!({"name": "temperature", "tags": [format!("host:{host}")], "value": v, "timestamp": now - 60_000 * (k as i64 + 1)})).await;
        }
    }
    create(
        &n,
        json!({"name": "deploys", "tags": ["service:api"], "value": 1, "timestamp": now - 1_000}),
    )
    .await;
    let ask = |prompt: &str| {
        let path = format!("/query?prompt={}", urlencode(prompt));
        let n = &n;
        async move { call(&n.telemetry, Method::GET, &path, None).await }
    };
    // Misspelled, grouped, ranked.
    let a = ask("top 1 hosts by average temprature in the last hour").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    let body = a.json();
    assert_eq!(body["interpretation"]["metric"], "temperature");
    assert_eq!(body["interpretation"]["group_by"], json!(["host"]));
    assert_eq!(
        body["kairosdb_query"]["metrics"][0]["aggregators"][0]["name"],
        "avg"
    );
    assert_eq!(
        body["results"],
        json!([{"group": {"host": "a"}, "value": 20.0, "timestamp": body["results"][0]["timestamp"]}])
    );
    // A tag condition and an aggregate.
    let body = ask("max temperature on host b in the last hour")
        .await
        .json();
    assert_eq!(body["results"][0]["value"], 7.0, "{body}");
    // Every metric counted.
    let body = ask("top 5 events in the last hour").await.json();
    assert_eq!(
        body["results"],
        json!([{"metric": "temperature", "value": 4}, {"metric": "deploys", "value": 1}])
    );
    // Records themselves, the highest first.
    let body = ask("the 2 highest temperature values in the last hour")
        .await
        .json();
    let values: Vec<f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [30.0, 10.0], "{body}");
    // No guess: suggestions.
    let a = ask("average banana consumption").await;
    assert_eq!(
        refusal(&a),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR".into())
    );
    assert!(a.json()["details"]["suggestions"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn server_type_turns_the_telemetry_routes_off_by_class_in_the_plans_shape() {
    let n = node("server_type = \"QUERY\"");
    let body = json!({"name": "deploys", "tags": [], "value": 1, "timestamp": 1});
    let a = call(&n.telemetry, Method::POST, "/metrics", Some(body)).await;
    assert_eq!(refusal(&a), (StatusCode::FORBIDDEN, "FORBIDDEN".into()));
    assert!(
        a.json()["message"].as_str().unwrap().contains("INGEST"),
        "{}",
        a.json()
    );
    let a = call(&n.telemetry, Method::DELETE, "/metrics/AAAA", None).await;
    assert_eq!(refusal(&a), (StatusCode::FORBIDDEN, "FORBIDDEN".into()));
    // Reading is a query: served.
    let a = call(&n.telemetry, Method::GET, "/metrics?name=deploys", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &n.telemetry,
        Method::GET,
        "/query?prompt=count%20deploys",
        None,
    )
    .await;
    assert_ne!(a.status, StatusCode::FORBIDDEN);
}

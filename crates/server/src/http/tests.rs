//! In-process router tests against a fake storage: status mapping, headers, CORS,
//! fallbacks, health. End-to-end behaviour with the real engine is in `tests/it/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use kairosdb_model::StorageError;

use super::*;
use crate::config::{Config, Settings};
use crate::fake_storage::FakeStorage;

fn app(healthy: bool, settings: Settings) -> Router {
    app_with(
        FakeStorage {
            unhealthy: !healthy,
            ..FakeStorage::default()
        },
        settings,
    )
}

fn app_with(storage: FakeStorage, settings: Settings) -> Router {
    router(Arc::new(AppState::new(
        Arc::new(storage),
        Arc::new(Config::resolve(settings).unwrap()),
        Arc::new(ServerMetrics::default()),
        None,
    )))
}

/// `GET path` from an app over a healthy or unhealthy storage, default settings.
async fn get_from(healthy: bool, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    call(app(healthy, Settings::default()), get(path)).await
}

async fn call(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn version_has_kairosdb_shape_and_standard_headers() {
    let (status, headers, body) = get_from(true, "/api/v1/version").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("{\"version\": \"KairosDB "), "{text}");
    assert!(text.ends_with("\"}\n"), "{text}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(headers[header::PRAGMA], "no-cache");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::EXPIRES], "0");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
}

#[tokio::test]
async fn preflight_echoes_the_request() {
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/datapoints/query")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(app(true, Settings::default()), request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type"
    );
    assert_eq!(headers["access-control-allow_method"], "POST");
    assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "86400");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn unknown_path_and_wrong_method_have_error_bodies() {
    let (status, _, body) = get_from(true, "/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"][0].as_str().unwrap().contains("/api/v1/nope"));
    let (status, _, body) = get_from(true, "/api/v1/datapoints").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"].is_array());
}

#[tokio::test]
async fn names_are_json_escaped_and_prefix_filtered() {
    let (status, _, body) = get_from(true, "/api/v1/metricnames").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, br#"{"results":["a.b","c\"d"]}"#);
    let (_, _, body) = get_from(true, "/api/v1/metricnames?prefix=c").await;
    assert_eq!(body, br#"{"results":["c\"d"]}"#);
    let (_, _, body) = get_from(true, "/api/v1/metricnames?prefix=").await;
    assert_eq!(body, br#"{"results":["a.b","c\"d"]}"#);
    let (status, _, body) = get_from(true, "/api/v1/tagnames").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, br#"{"errors":["disk on fire"]}"#);
}

#[tokio::test]
async fn health_follows_storage() {
    let (status, _, body) = get_from(true, "/api/v1/health/check").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let settings = Settings {
        health_check_status: Some(200),
        ..Settings::default()
    };
    let (status, _, _) = call(app(true, settings), get("/api/v1/health/check")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get_from(false, "/api/v1/health/check").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _, body) = get_from(false, "/api/v1/health/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        br#"["JVM-Thread-Deadlock: OK","Datastore-Query: FAIL"]"#
    );
    let (status, _, _) = get_from(false, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = get_from(false, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get_from(true, "/health").await;
    assert_eq!(status, StatusCode::OK);
}

/// Spec §11.2: the Datastore-Query check is a real query of `kairosdb.jvm.thread_count`
/// over the last 10 minutes; a query error fails it while the storage says it is healthy.
#[tokio::test]
async fn health_check_runs_a_datastore_query_and_fails_when_it_errors() {
    let storage = Arc::new(FakeStorage::default());
    let state = Arc::new(AppState::new(
        storage.clone(),
        Arc::new(Config::resolve(Settings::default()).unwrap()),
        Arc::new(ServerMetrics::default()),
        None,
    ));
    let (status, _, _) = call(router(state), get("/api/v1/health/check")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(storage.queried(), vec!["kairosdb.jvm.thread_count"]);

    let failing = || FakeStorage {
        fail_metrics: vec!["kairosdb.jvm.thread_count"],
        ..FakeStorage::default()
    };
    let (status, _, body) = call(
        app_with(failing(), Settings::default()),
        get("/api/v1/health/check"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.is_empty());
    let (status, _, body) = call(
        app_with(failing(), Settings::default()),
        get("/api/v1/health/status"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        br#"["JVM-Thread-Deadlock: OK","Datastore-Query: FAIL"]"#
    );
    // The load-balancer probes only ask `Storage::health`.
    let (status, _, _) = call(
        app_with(failing(), Settings::default()),
        get("/health/ready"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_json_has_server_and_storage_figures() {
    let (status, _, body) = get_from(true, "/api/v1/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["kairosdb_datapoints_ingested_total"], 0);
    assert_eq!(v["kairosdb_fake_writes_total"], 3);
    assert_eq!(v["kairosdb_http_queries_cancelled_total"], 0);
    assert_eq!(v["kairosdb_query_cache_hits_total"], 0);
    assert_eq!(v["kairosdb_query_cache_bytes"], 0);
    // Prometheus is off in this app.
    let (status, _, _) = get_from(true, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn json_responses_are_gzipped_on_request() {
    let request = Request::get("/api/v1/health/status")
        .header(header::ACCEPT_ENCODING, "deflate, gzip;q=0.5")
        .body(Body::empty())
        .unwrap();
    let (_, headers, body) = call(app(true, Settings::default()), request).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let plain = body::gunzip(&body, 1 << 20).unwrap();
    assert_eq!(
        plain,
        br#"["JVM-Thread-Deadlock: OK","Datastore-Query: OK"]"#
    );
}

#[tokio::test]
async fn too_large_ingest_is_413_before_parsing() {
    let settings = Settings {
        max_request_bytes: Some(10),
        ..Settings::default()
    };
    let request = Request::post("/api/v1/datapoints")
        .body(Body::from(vec![b' '; 11]))
        .unwrap();
    let (status, _, body) = call(app(true, settings), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"][0]
        .as_str()
        .unwrap()
        .contains("limit of 10 bytes"));
}

#[tokio::test]
async fn query_get_without_query_is_kairosdb_400() {
    let (status, _, body) = get_from(true, "/api/v1/datapoints/query").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        br#"{"errors":["query json must not be null or empty"]}"#
    );
}

#[test]
fn storage_errors_map_to_statuses() {
    let status = |e: StorageError| ApiError::from(e).into_response();
    let r = status(StorageError::Backpressure {
        retry_after_secs: 2,
    });
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    assert_eq!(
        status(StorageError::InvalidInput("x".into())).status(),
        StatusCode::BAD_REQUEST
    );
    for e in [
        StorageError::Poisoned("x".into()),
        StorageError::Internal("x".into()),
        StorageError::Corruption("x".into()),
    ] {
        assert_eq!(status(e).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(
        status(StorageError::Closed).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(StorageError::Unsupported("x".into())).status(),
        StatusCode::NOT_IMPLEMENTED
    );
}

#[test]
fn accept_encoding_parsing() {
    let h = |v: &str| {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        accepts_gzip(&m)
    };
    assert!(h("gzip"));
    assert!(h("br, GZIP"));
    assert!(h("*"));
    assert!(!h("gzip;q=0"));
    assert!(!h("deflate"));
    assert!(!accepts_gzip(&HeaderMap::new()));
}

fn ingest_request(body: &str) -> Request<Body> {
    Request::post("/api/v1/datapoints")
        .body(Body::from(body.to_string()))
        .unwrap()
}

const TWO_POINTS: &str = r#"[{"name":"m","datapoints":[[1,1],[2,2]],"tags":{"h":"a"}}]"#;

#[tokio::test]
async fn ingest_reports_storage_failures() {
    let storage = FakeStorage::failing([StorageError::Backpressure {
        retry_after_secs: 3,
    }]);
    let (status, headers, body) = call(
        app_with(storage, Settings::default()),
        ingest_request(TWO_POINTS),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "3");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"][0].as_str().unwrap().contains("retry"), "{v}");

    let storage = FakeStorage::failing([StorageError::Poisoned("fsync failed".into())]);
    let (status, _, body) = call(
        app_with(storage, Settings::default()),
        ingest_request(TWO_POINTS),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["errors"][0].as_str().unwrap().contains("fsync failed"),
        "{v}"
    );
}

#[tokio::test]
async fn ingest_writes_in_chunks_of_max_batch_size() {
    let storage = Arc::new(FakeStorage::default());
    let state = Arc::new(AppState::new(
        storage.clone(),
        Arc::new(
            Config::resolve(Settings {
                max_batch_size: Some(1),
                ..Settings::default()
            })
            .unwrap(),
        ),
        Arc::new(ServerMetrics::default()),
        None,
    ));
    let (status, _, _) = call(router(state.clone()), ingest_request(TWO_POINTS)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(*storage.attempts.lock().unwrap(), 2);
    assert_eq!(storage.points_written(), 2);
    let m = &state.metrics;
    assert_eq!(
        m.batches_processed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        m.datapoints_ingested
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

/// axum's own extractor refusals are plain text; ours keep KairosDB's error body
/// (`extract.rs`, found by schemathesis).
#[tokio::test]
async fn refused_path_and_query_parameters_answer_kairosdb_errors() {
    for (method, path) in [
        ("GET", "/api/v1/rollups/backfill/x?startTime=a&startTime=b"),
        ("GET", "/api/v1/metadata/s/k?startsWith=a&startsWith=b"),
        ("GET", "/api/v1/metadata/%FF"),
        ("DELETE", "/api/v1/metric/%C3"),
        ("GET", "/api/v1/rollups/%FF"),
        ("GET", "/api/v1/admin/killquery/%FF"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = call(app(true, Settings::default()), request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}");
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with("application/json"), "{path}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json["errors"][0].is_string(), "{path}: {json}");
    }
}

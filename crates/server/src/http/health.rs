//! Operational endpoints: KairosDB's health checks (spec §1.12, §11.2), the load-balancer
//! probes `/health`, `/health/live`, `/health/ready`, and the server's figures on
//! `/metrics` (Prometheus text) and `GET /api/v1/metrics` (JSON).
//!
//! The health checks run a real datastore query, as KairosDB's do; the probes only ask
//! `Storage::health` (cheap enough for a load balancer's frequent polling).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use kairosdb_model::{HealthStatus, Sample};
use kairosdb_protocol::query::parse_query_request;

use super::{blocking, json_response, now_ms, ApiError, AppState, State};
use crate::metrics;

/// KairosDB's `DatastoreQueryHealthCheck` query (spec §11.2): `<metric-prefix>jvm.thread_count`
/// over the last 10 minutes. The self-metrics report writes that metric; the check only
/// needs the query to succeed, not to find points.
const CHECK_QUERY: &str = r#"{"start_relative":{"value":10,"unit":"minutes"},
    "metrics":[{"name":"kairosdb.jvm.thread_count"}]}"#;

/// What the two KairosDB checks look at.
struct Health {
    /// `Storage::health`: can the backend serve reads and writes (e.g. not poisoned)?
    storage: HealthStatus,
    /// The datastore query's error, if it failed.
    query: Result<(), String>,
}

/// KairosDB's two checks, in its registration order (spec §1.12). The deadlock check has
/// no JVM to inspect here and always passes; it is kept so tools that look for both names
/// find them. The datastore check runs [`CHECK_QUERY`], as KairosDB's does, and also
/// fails while the storage reports itself unhealthy.
fn checks(health: &Health) -> [(&'static str, bool); 2] {
    [
        ("JVM-Thread-Deadlock", true),
        ("Datastore-Query", health.storage.ok && health.query.is_ok()),
    ]
}

async fn storage_health(state: &AppState) -> Result<HealthStatus, ApiError> {
    let storage = state.storage.clone();
    blocking(move || Ok(storage.health())).await
}

/// Both signals of the datastore check, on the blocking pool.
async fn health(state: &Arc<AppState>) -> Result<Health, ApiError> {
    let storage = storage_health(state).await?;
    let shared = state.clone();
    let query = blocking(move || Ok(datastore_query(&shared))).await?;
    Ok(Health { storage, query })
}

/// [`CHECK_QUERY`] through the path HTTP queries take: parse, then `kairosdb_query::execute`
/// against the storage, with the configured limits.
fn datastore_query(state: &AppState) -> Result<(), String> {
    let now = now_ms();
    let request = parse_query_request(CHECK_QUERY.as_bytes(), now)
        .map_err(|e| format!("BUG: health query rejected: {}", e.message()))?;
    let budget = (state.config).query_budget(Instant::now(), Arc::new(AtomicBool::new(false)));
    let ctx = kairosdb_query::Context {
        range: request.range,
        time_zone: request.time_zone.as_deref(),
        now_ms: now,
        budget: &budget,
    };
    for metric in &request.metrics {
        kairosdb_query::execute(&*state.storage, &ctx, metric).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `GET /api/v1/health/check`: `health_check_status` (204 by default) when every check
/// passes, 500 otherwise; empty body.
pub async fn check(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let health = health(&state).await?;
    let status = if checks(&health).iter().all(|(_, ok)| *ok) {
        StatusCode::from_u16(state.config.health_check_status).unwrap_or(StatusCode::NO_CONTENT)
    } else {
        tracing::warn!(
            storage = %health.storage.detail,
            query = ?health.query,
            "health check failed"
        );
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok(json_response(status, Vec::new()))
}

/// `GET /api/v1/health/status`: always 200, `["JVM-Thread-Deadlock: OK","Datastore-Query: OK"]`.
pub async fn status(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let health = health(&state).await?;
    let lines: Vec<String> = checks(&health)
        .iter()
        .map(|(name, ok)| format!("{name}: {}", if *ok { "OK" } else { "FAIL" }))
        .collect();
    let body = serde_json::to_vec(&lines).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /health`: 200 `{"status":"ok"}` or 503 `{"status":"unhealthy","detail":...}`; on a
/// control or worker node the analytics plan's answer instead (`crate::plan::health`).
pub async fn probe(axum::extract::State(state): State) -> Result<Response, ApiError> {
    if state.config.role != crate::config::NodeRole::Single {
        return crate::plan::health::respond(&state).await;
    }
    readiness(&state).await
}

/// `GET /health/live`: the process is up and serving HTTP.
pub async fn live() -> Response {
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// `GET /health/ready`: the storage can serve reads and writes (`Storage::health`).
pub async fn ready(axum::extract::State(state): State) -> Result<Response, ApiError> {
    readiness(&state).await
}

async fn readiness(state: &AppState) -> Result<Response, ApiError> {
    let health = storage_health(state).await?;
    // Redis down is no reason to take the server out of rotation: answers come from
    // storage. The detail says so.
    let cache = state.watch.cache().and_then(|c| c.health());
    let (status, body) = if health.ok {
        let body = match cache {
            None => serde_json::json!({ "status": "ok" }),
            Some(detail) => {
                serde_json::json!({ "status": "ok", "cache": "degraded", "detail": detail })
            }
        };
        (StatusCode::OK, body)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unhealthy", "detail": health.detail }),
        )
    };
    let body = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(status, body))
}

async fn figures(state: &AppState) -> Result<Vec<Sample>, ApiError> {
    let storage = state.storage.clone();
    let mut stats = blocking(move || Ok(storage.stats())).await?;
    if let Some(cache) = &state.query_cache {
        stats.append(cache.stats());
    }
    if let Some(redis) = state.watch.cache() {
        stats.append(redis.stats());
    }
    stats.append(state.rollups.metrics.collect());
    if let Some(membership) = &state.membership {
        stats.append(membership.stats());
    }
    Ok(state.metrics.snapshot(&stats))
}

/// `GET /metrics`: Prometheus text format (404 when `enable_prometheus` is off).
pub async fn metrics_prometheus(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let Some(handle) = &state.prometheus else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Prometheus metrics are disabled (enable_prometheus = false)",
        ));
    };
    let figures = figures(&state).await?;
    let text = metrics::render_prometheus(handle, &figures);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// `GET /api/v1/metrics`: the same figures as one JSON object, name → value.
pub async fn metrics_json(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let figures = figures(&state).await?;
    let object: serde_json::Map<String, serde_json::Value> = figures
        .into_iter()
        .map(|f| {
            // Counts print as integers, other gauges as numbers.
            let value = if f.value.fract() == 0.0 && f.value.abs() < 9e15 {
                serde_json::json!(f.value as i64)
            } else {
                serde_json::json!(f.value)
            };
            // A figure per worker: `name{worker="host:port"}`, as Prometheus writes it.
            let labels: Vec<String> = f.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            match labels.is_empty() {
                true => (f.name, value),
                false => (format!("{}{{{}}}", f.name, labels.join(",")), value),
            }
        })
        .collect();
    let body = serde_json::to_vec(&object).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

//! Operational endpoints: KairosDB's health checks (spec §1.12, §11.2), the load-balancer
//! probes `/health`, `/health/live`, `/health/ready`, and the server's figures on
//! `/metrics` (Prometheus text) and `GET /api/v1/metrics` (JSON).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use kairosdb_model::{HealthStatus, Sample};

use super::{blocking, json_response, ApiError, State};
use crate::metrics;

/// KairosDB's two checks, in its registration order (spec §1.12). The deadlock check has
/// no JVM to inspect here and always passes; it is kept so tools that look for both names
/// find them. The datastore check asks the storage whether it can serve.
fn checks(storage: &HealthStatus) -> [(&'static str, bool); 2] {
    [
        ("JVM-Thread-Deadlock", true),
        ("Datastore-Query", storage.ok),
    ]
}

async fn storage_health(state: &super::AppState) -> Result<HealthStatus, ApiError> {
    let storage = state.storage.clone();
    blocking(move || Ok(storage.health())).await
}

/// `GET /api/v1/health/check`: `health_check_status` (204 by default) when every check
/// passes, 500 otherwise; empty body.
pub async fn check(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let health = storage_health(&state).await?;
    let status = if checks(&health).iter().all(|(_, ok)| *ok) {
        StatusCode::from_u16(state.config.health_check_status).unwrap_or(StatusCode::NO_CONTENT)
    } else {
        tracing::warn!(detail = %health.detail, "health check failed");
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok(json_response(status, Vec::new()))
}

/// `GET /api/v1/health/status`: always 200, `["JVM-Thread-Deadlock: OK","Datastore-Query: OK"]`.
pub async fn status(axum::extract::State(state): State) -> Result<Response, ApiError> {
    let health = storage_health(&state).await?;
    let lines: Vec<String> = checks(&health)
        .iter()
        .map(|(name, ok)| format!("{name}: {}", if *ok { "OK" } else { "FAIL" }))
        .collect();
    let body = serde_json::to_vec(&lines).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /health`: 200 `{"status":"ok"}` or 503 `{"status":"unhealthy","detail":...}`.
pub async fn probe(axum::extract::State(state): State) -> Result<Response, ApiError> {
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

async fn readiness(state: &super::AppState) -> Result<Response, ApiError> {
    let health = storage_health(state).await?;
    let (status, body) = if health.ok {
        (StatusCode::OK, serde_json::json!({ "status": "ok" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unhealthy", "detail": health.detail }),
        )
    };
    let body = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(status, body))
}

async fn figures(state: &super::AppState) -> Result<Vec<Sample>, ApiError> {
    let storage = state.storage.clone();
    let mut stats = blocking(move || Ok(storage.stats())).await?;
    if let Some(cache) = &state.query_cache {
        stats.append(cache.stats());
    }
    stats.append(state.rollups.metrics.collect());
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
            (f.name, value)
        })
        .collect();
    let body = serde_json::to_vec(&object).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

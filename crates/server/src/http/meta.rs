//! Names and version: `GET /api/v1/metricnames` (spec §1.10), the pre-1.3 `GET /api/v1/tagnames`
//! and `GET /api/v1/tagvalues`, `GET /api/v1/version` (spec §1.3) and
//! `DELETE /api/v1/metric/{name}` (spec §1.9).

use super::extract::ApiPath;
use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use kairosdb_model::{DeleteRequest, TagFilter, TimeRange};

use super::{blocking, json_response, results_response, ApiError, State};

/// `KairosDB <version>-<release>.<build>` (spec §1.3, §14.22): the KairosDB version whose
/// API we implement, then this implementation and its crate version. Clients check that it
/// starts with `KairosDB` (user-needs §2.4).
pub fn version_string() -> String {
    format!("KairosDB 1.3.2-kairosdb-rs.{}", env!("CARGO_PKG_VERSION"))
}

/// `{"version": "KairosDB ..."}` plus a newline, with the space after the colon, exactly as
/// KairosDB prints it.
pub async fn version() -> Response {
    let body = format!("{{\"version\": \"{}\"}}\n", version_string());
    json_response(StatusCode::OK, body.into_bytes())
}

/// `?prefix=p` keeps names starting with `p`. An empty prefix means no filter (spec §14.20:
/// Cassandra KairosDB fails with 500 there; H2 returns everything).
pub async fn metric_names(
    axum::extract::State(state): State,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let prefix = params
        .0
        .into_iter()
        .find(|(k, _)| k == "prefix")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    blocking(move || {
        let names = state.storage.metric_names(prefix.as_deref())?;
        Ok(results_response(&names))
    })
    .await
}

/// Deviation from KairosDB 1.3 (spec §1.2): `/tagnames` and `/tagvalues` were removed in
/// 1.3 and answer 404 there. We keep the 1.2 behaviour (`{"results":[...]}` over all series)
/// because older SDKs (python-kairosdb, the `kairosdb` crate) still call them
/// (user-needs §5.15).
pub async fn tag_names(axum::extract::State(state): State) -> Result<Response, ApiError> {
    blocking(move || Ok(results_response(&state.storage.tag_names()?))).await
}

/// See [`tag_names`] for why this pre-1.3 endpoint exists.
pub async fn tag_values(axum::extract::State(state): State) -> Result<Response, ApiError> {
    blocking(move || Ok(results_response(&state.storage.tag_values()?))).await
}

/// Deletes every point of the metric; its name then disappears from `/metricnames`.
pub async fn delete_metric(
    axum::extract::State(state): State,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        state.delete(&DeleteRequest {
            metric: name,
            filter: TagFilter::default(),
            range: TimeRange::ALL,
            shard: None,
            exact: false,
        })?;
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await
}

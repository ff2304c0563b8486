//! `POST /metrics` (one plan metric) and `POST /insert` (a batch), in JSON or bincode
//! (`Content-Type: application/octet-stream`): body → `PlanMetric`s → checks → the batch →
//! the same last hop as KairosDB's ingest (`writer.rs`: split at `max_batch_size`, then
//! `Storage::write`). On a control node the storage is the cluster, so each series goes to
//! the replicas of its partition and the answer comes once enough of them stored it.
//!
//! Nothing is written unless every metric of the body can be: a refusal lists each bad
//! metric by index.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use kairosdb_cluster::analytics::params::format_time;
use kairosdb_cluster::analytics::{codec, metric, PlanMetric};
use kairosdb_model::Tags;

use super::{answer, blocking, body_format, Format, PlanError};
use crate::http::{body, AppState};
use crate::writer;

/// At most this many bad metrics are listed in a refusal.
const MAX_LISTED: usize = 100;

/// `POST /metrics`' answer.
#[derive(Serialize)]
struct Stored {
    success: bool,
    message: String,
    /// `host:port` of the first replica of the metric's partition (`null` on a node that
    /// does not route).
    worker_node: Option<String>,
}

/// `POST /insert`'s answer.
#[derive(Serialize)]
struct Inserted {
    success: bool,
    message: String,
    /// Metrics stored.
    count: usize,
}

/// `POST /metrics`: `{key, value, timestamp, tags}` → `{success, message, worker_node}`.
pub async fn metric(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PlanError> {
    let raw = read(&state, &headers, body).await?;
    let m: PlanMetric = match body_format(&headers) {
        Format::Json => metric::parse_json_one(&raw).map_err(PlanError::invalid)?,
        Format::Bincode => decode(&raw)?,
    };
    let placed = state.cluster.as_ref().and_then(|f| f.cluster().ok());
    let worker_node = placed.map(|c| {
        let tags = Tags::from_pairs(m.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c.home_address(&m.key, &tags).to_owned()
    });
    let message = format!("stored {} at {}", m.key, format_time(m.timestamp));
    store(&state, vec![m]).await?;
    let stored = Stored {
        success: true,
        message,
        worker_node,
    };
    Ok(answer(Format::Json, &stored))
}

/// `POST /insert`: a JSON array of metrics or the bincode of `Vec<PlanMetric>` →
/// `{success, message, count}`.
pub async fn insert(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PlanError> {
    let raw = read(&state, &headers, body).await?;
    let metrics: Vec<PlanMetric> = match body_format(&headers) {
        Format::Json => metric::parse_json_batch(&raw).map_err(PlanError::invalid)?,
        Format::Bincode => decode(&raw)?,
    };
    let count = store(&state, metrics).await?;
    let inserted = Inserted {
        success: true,
        message: format!("stored {count} metrics"),
        count,
    };
    Ok(answer(Format::Json, &inserted))
}

async fn read(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, PlanError> {
    let raw = body::read(headers, body, state.config.max_request_bytes).await?;
    Ok(raw)
}

fn decode<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, PlanError> {
    codec::decode(raw, raw.len() as u64).map_err(|e| PlanError::invalid(e.to_string()))
}

/// Checks and writes `metrics`; answers how many were stored.
async fn store(state: &Arc<AppState>, metrics: Vec<PlanMetric>) -> Result<usize, PlanError> {
    let count = metrics.len();
    let batch = metric::to_batch(&metrics).map_err(|problems| refused(count, problems))?;
    let state = state.clone();
    blocking(move || {
        let mut chunks = writer::split(batch, state.config.max_batch_size);
        writer::write_chunks(&*state.storage, &state.metrics, &mut chunks)?;
        Ok(count)
    })
    .await
}

/// The `VALIDATION_ERROR` for metrics that cannot be stored.
fn refused(count: usize, problems: Vec<(usize, String)>) -> PlanError {
    let (first, reason) = &problems[0];
    let message = format!(
        "{} of {count} metrics cannot be stored, so none was: metric {first}: {reason}",
        problems.len()
    );
    let listed: Vec<serde_json::Value> = problems
        .iter()
        .take(MAX_LISTED)
        .map(|(index, reason)| serde_json::json!({ "index": index, "message": reason }))
        .collect();
    PlanError::validation(message).detail("errors", listed)
}

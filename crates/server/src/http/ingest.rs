//! `POST /api/v1/datapoints` (spec §1.4, §2): body → gunzip → `parse_ingest` → validation →
//! `Storage::write` → 204, or 400 with every error message. Also `GET /api/v1/datapoints/index`
//! ([`index`], spec §1.5), the other INGEST-class endpoint.
//!
//! Spec §2.6: metric objects that passed validation ARE stored even when others failed; the
//! answer is then 400 listing the errors. Unlike KairosDB (which queues and answers before
//! storing, spec §1.4), the answer comes after storage acknowledged the write, so a 204
//! means "durable per `wal_sync`" and storage failures reach the client (503 with
//! `Retry-After` under back-pressure, 500 otherwise), user-needs §1.7.
//!
//! Bodies bigger than `max_batch_size` points are written in several writes; if a later
//! one fails, the earlier ones stay stored, and a retry of the whole request rewrites the
//! same points (same series and timestamp: the last write wins), so retrying is safe.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::field::Empty;

use kairosdb_protocol::ingest::parse_ingest;

use super::body::{self, Encoding};
use super::{blocking, json_response, ApiError, AppState, State};
use crate::metrics::ServerMetrics;
use crate::writer;

/// `POST /api/v1/datapoints`: gzip when `Content-Encoding: gzip` or
/// `Content-Type: application/gzip`.
pub async fn ingest(state: State, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let encoding = body::encoding(&headers, true);
    handle(state, headers, body, encoding).await
}

/// `POST /api/v1/datapoints/gzip`: always gzip (alias for clients that cannot set headers).
pub async fn ingest_gzip(
    state: State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    handle(state, headers, body, Encoding::Gzip).await
}

/// `GET /api/v1/datapoints/index?start_absolute=&end_absolute=&metric=` (spec §1.5).
///
/// KairosDB (`MetricsResource.index` → `Datastore.indexMetricTags`): on Cassandra, rewrites
/// the `tag_indexed_row_keys` entries (with `row_keys`/`row_key_time_index`, in batches) for
/// every row key of `metric` in the range, so a metric added to `tag_indexed_metrics` after
/// it was written can use the tag index; the H2 and memory stores do nothing; 204, or 500
/// on a datastore error. A missing parameter is a 500 there too (unboxing a null `Long`);
/// one that is not a long is a 404 (JAX-RS answers a failed `@QueryParam` conversion so).
///
/// Here: the same, through [`kairosdb_model::Storage::index_metric_tags`]: the Cassandra
/// store writes the `tag_indexed_row_keys` rows; the embedded engine has no separate tag
/// index to rebuild (its index is written with every series), so it does nothing, as
/// KairosDB's non-Cassandra stores do. Deliberate difference: a missing or non-numeric
/// parameter is the client's mistake, a 400.
pub async fn index(
    axum::extract::State(state): State,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let params = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let param = |name: &str| {
        params
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
    };
    for name in ["start_absolute", "end_absolute"] {
        let value = param(name)?;
        if value.parse::<i64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "query parameter {name} is not a long: {value:?}"
            )));
        }
    }
    let metric = param("metric")?.to_owned();
    let long = |name: &str| param(name).map(|v| v.parse::<i64>().unwrap_or_default());
    let range = kairosdb_model::TimeRange::new(long("start_absolute")?, long("end_absolute")?);
    let storage = state.storage.clone();
    blocking(move || {
        let rows = storage.index_metric_tags(&metric, range)?;
        tracing::info!(metric, rows, "tag index rebuilt");
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await
}

async fn handle(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = write(&state, &headers, body, encoding).await;
    if !matches!(&result, Ok(r) if r.status() == StatusCode::NO_CONTENT) {
        ServerMetrics::add(&state.metrics.ingestion_errors, 1);
    }
    // `kairosdb.http.ingest_time` (spec §11.1): every answered request.
    state.metrics.tallies.ingest_done(started.elapsed());
    result
}

async fn write(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let limit = state.config.max_request_bytes;
    let raw = body::read(headers, body, body::raw_limit(limit, encoding)).await?;
    let state = state.clone();
    blocking(move || {
        let parse = tracing::debug_span!(
            "ingest.parse",
            bytes = raw.len(),
            points = Empty,
            errors = Empty
        );
        let parsing = parse.enter();
        let json = body::decode(raw, encoding, limit)?;
        let outcome = parse_ingest(&json);
        drop(json);
        // Deliberate difference: bodies that make KairosDB's parser throw (a non-numeric
        // string timestamp inside `datapoints`: a 500 there, spec §1.4) are the client's
        // mistake, so 400 like every other rejected body.
        let status = match outcome.status() {
            204 => StatusCode::NO_CONTENT,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut batch = outcome.batch;
        let mut errors = outcome.errors;
        if state.config.enable_validation {
            errors.extend(writer::validate(&mut batch));
        }
        parse.record("points", batch.point_count());
        parse.record("errors", errors.len());
        drop(parsing);
        let mut chunks = writer::split(batch, state.config.max_batch_size);
        let handed = chunks.iter().map(|c| c.point_count()).sum::<usize>();
        let written = writer::write_chunks(&*state.storage, &state.metrics, &mut chunks);
        let left = chunks.iter().map(|c| c.point_count()).sum::<usize>();
        ServerMetrics::add(
            &state.metrics.http_datapoints_ingested,
            (handed - left) as u64,
        );
        if let Err(e) = written {
            // The storage failure decides the status; parse errors are listed after it.
            let mut error = ApiError::from(e);
            error.errors.extend(errors);
            return Err(error);
        }
        if errors.is_empty() {
            Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
        } else {
            let status = if status == StatusCode::NO_CONTENT {
                StatusCode::BAD_REQUEST
            } else {
                status
            };
            Err(ApiError::with_errors(status, errors))
        }
    })
    .await
}

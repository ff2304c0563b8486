//! Endpoints that take a KairosDB query body (spec §1.6–§1.8, §4):
//!
//! * `POST /api/v1/datapoints/query` and `GET ...?query=<urlencoded json>`:
//!   `parse_query_request` → `kairosdb_query::execute` per metric → `write_query_response` → 200;
//! * `POST /api/v1/datapoints/query/tags`: the tag sets of the matching series, answered
//!   from `Storage::series_keys` (the index) without reading points, so Grafana's
//!   `start_absolute: 0` tag lookups stay cheap (user-needs §2.5);
//! * `POST /api/v1/datapoints/delete`: deletes what the query matches → 204.
//!
//! Parse errors and `QueryError::BadRequest` → 400 with the single KairosDB message;
//! storage failures → 500 (503 under back-pressure).

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use kairosdb_model::{DeleteRequest, QueryRequest};
use kairosdb_protocol::query::parse_query_request;
use kairosdb_protocol::response::{write_query_response, write_tags_response};

use super::body;
use super::{blocking, json_response, now_ms, ApiError, AppState, State};

pub async fn query_post(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_query_body(&state, &headers, body).await?;
    blocking(move || run_query(&state, &body)).await
}

pub async fn query_get(axum::extract::State(state): State, uri: Uri) -> Result<Response, ApiError> {
    let params = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let json = params
        .0
        .into_iter()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("query json must not be null or empty"))?;
    blocking(move || run_query(&state, json.as_bytes())).await
}

fn run_query(state: &AppState, body: &[u8]) -> Result<Response, ApiError> {
    let request = parse(body)?;
    let budget = kairosdb_query::Budget::default();
    let ctx = kairosdb_query::Context {
        range: request.range,
        time_zone: request.time_zone.as_deref(),
        now_ms: now_ms(),
        budget: &budget,
    };
    let mut results = Vec::with_capacity(request.metrics.len());
    for metric in &request.metrics {
        results.push(kairosdb_query::execute(&*state.storage, &ctx, metric)?);
    }
    let mut out = Vec::new();
    write_query_response(&mut out, &results).map_err(ApiError::internal)?;
    Ok(json_response(StatusCode::OK, out))
}

/// Spec §1.7: one `queries[]` element per metric, each with exactly one result whose `tags`
/// are the union over the matching series (aggregators and group-bys are ignored).
pub async fn query_tags(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_query_body(&state, &headers, body).await?;
    blocking(move || {
        let request = parse(&body)?;
        let mut tag_sets = Vec::with_capacity(request.metrics.len());
        for metric in &request.metrics {
            let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for key in state
                .storage
                .series_keys(&metric.name, &metric.filter, request.range)?
            {
                for (name, value) in key.tags.iter() {
                    tags.entry(name.to_string())
                        .or_default()
                        .insert(value.to_string());
                }
            }
            tag_sets.push(tags);
        }
        let results: Vec<_> = request
            .metrics
            .iter()
            .zip(&tag_sets)
            .map(|(m, tags)| (m.name.as_str(), tags))
            .collect();
        let mut out = Vec::new();
        write_tags_response(&mut out, &results);
        Ok(json_response(StatusCode::OK, out))
    })
    .await
}

/// Spec §1.8: every point of every matching series inside the query range is deleted.
pub async fn delete(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_query_body(&state, &headers, body).await?;
    blocking(move || {
        let request = parse(&body)?;
        for metric in request.metrics {
            state.storage.delete(&DeleteRequest {
                metric: metric.name,
                filter: metric.filter,
                range: request.range,
            })?;
        }
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await
}

fn parse(body: &[u8]) -> Result<QueryRequest, ApiError> {
    // KairosDB answers some bodies with 500 (e.g. valid JSON that is not an object); the
    // parser says which.
    parse_query_request(body, now_ms()).map_err(|e| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.message())
    })
}

/// Query bodies are small; KairosDB does not inflate them (spec §1.1), but accepting
/// `Content-Encoding: gzip` costs nothing and helps clients that compress everything.
async fn read_query_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let limit = state.config.max_request_bytes;
    let encoding = body::encoding(headers, false);
    let raw = body::read(headers, body, body::raw_limit(limit, encoding)).await?;
    match encoding {
        body::Encoding::Identity => Ok(raw),
        body::Encoding::Gzip => {
            Ok(blocking(move || Ok(body::decode(raw, encoding, limit)?)).await?)
        }
    }
}

//! The roll-ups API, `/api/v1/rollups` (spec §1.14, KairosDB's `RollUpResource`): tasks
//! created, listed, read, replaced and deleted in the metadata store, their status, and
//! backfill. Not gated by `server_type` (spec §1.1.3). Running tasks is `rollup/`.
//!
//! Answers, as KairosDB gives them:
//! * create and replace: 200 `{"id","name","attributes":{"url":"/api/v1/rollups/<id>"}}`;
//!   400 `{"errors":[...]}` with the validation text; an empty body is a 500;
//! * list: 200, a JSON array of the stored task documents;
//! * read, replace, delete, backfill of an unknown id: 404 `Resource not found for id <id>`;
//! * delete: 204;
//! * status: 200 with snake_case keys, or 404 `Status not found for id <id>`;
//! * backfill: `startTime` (and `endTime`, default now) as `yyyy-MM-dd-HH-mm-ss-SSS` in
//!   UTC; runs synchronously, then 204.
//!
//! Deviations: a missing or unparsable `startTime` is a 400 with a sentence (KairosDB: 500
//! with the Java exception text), and a backfill that would run more than
//! `MAX_BACKFILL_PERIODS` periods is refused with a 400 rather than tying up the server.

use super::extract::{ApiPath, ApiQuery};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use kairosdb_protocol::query::QueryError;
use kairosdb_protocol::rollup::{parse_rollup_task, RollupTask};

use super::{blocking, body, json_response, now_ms, ApiError, State};
use crate::rollup::run::backfill as run_backfill;
use crate::rollup::store::TaskStatus;

const RESOURCE_URL: &str = "/api/v1/rollups/";

/// `POST /api/v1/rollups`.
pub async fn create(
    axum::extract::State(state): State,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let result = async {
        let task = read_task(&state, &headers, request).await?;
        save(&state, &uuid::Uuid::new_v4().to_string(), &task).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/rollups`.
pub async fn list(axum::extract::State(state): State) -> Response {
    let rollups = state.rollups.clone();
    blocking(move || {
        let tasks = rollups.store.tasks()?;
        let body = format!("[{}]", tasks.into_values().collect::<Vec<_>>().join(","));
        Ok(json_response(StatusCode::OK, body.into_bytes()))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/rollups/{id}`.
pub async fn get(axum::extract::State(state): State, ApiPath(id): ApiPath<String>) -> Response {
    let rollups = state.rollups.clone();
    blocking(move || match rollups.store.task(&id)? {
        Some(json) => Ok(json_response(StatusCode::OK, json.into_bytes())),
        None => Err(not_found(&id)),
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /api/v1/rollups/{id}`: replaces the task, keeping its id (and its progress).
pub async fn update(
    axum::extract::State(state): State,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    request: Body,
) -> Response {
    let result = async {
        let rollups = state.rollups.clone();
        let known = {
            let id = id.clone();
            blocking(move || Ok(rollups.store.task(&id)?.is_some())).await?
        };
        if !known {
            return Err(not_found(&id));
        }
        let task = read_task(&state, &headers, request).await?;
        save(&state, &id, &task).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /api/v1/rollups/{id}`: the task, its status and its progress.
pub async fn delete(axum::extract::State(state): State, ApiPath(id): ApiPath<String>) -> Response {
    let rollups = state.rollups.clone();
    let result = blocking(move || {
        if rollups.store.task(&id)?.is_none() {
            return Err(not_found(&id));
        }
        rollups.store.delete_task(&id)?;
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await;
    state.rollups.wake.notify_one();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/rollups/status/{id}`.
pub async fn status(axum::extract::State(state): State, ApiPath(id): ApiPath<String>) -> Response {
    let rollups = state.rollups.clone();
    blocking(move || match rollups.store.status(&id)? {
        Some(status) => {
            let body = serde_json::to_vec(&SnakeStatus::from(status))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(json_response(StatusCode::OK, body))
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Status not found for id {id}"),
        )),
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub struct BackfillParams {
    #[serde(rename = "startTime")]
    start_time: Option<String>,
    #[serde(rename = "endTime")]
    end_time: Option<String>,
}

/// `GET /api/v1/rollups/backfill/{id}?startTime=...[&endTime=...]`.
pub async fn backfill(
    axum::extract::State(state): State,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<BackfillParams>,
) -> Response {
    let now = now_ms();
    let result = async {
        let Some(start) = params.start_time.filter(|s| !s.is_empty()) else {
            return Err(ApiError::bad_request("startTime must be specified"));
        };
        let from = parse_time(&start)?;
        let to = match params.end_time.filter(|s| !s.is_empty()) {
            Some(end) => parse_time(&end)?,
            None => now,
        };
        let rollups = state.rollups.clone();
        blocking(move || {
            let Some(json) = rollups.store.task(&id)? else {
                return Err(not_found(&id));
            };
            let task = crate::rollup::Rollups::parse(&json, now).map_err(ApiError::internal)?;
            let progress = rollups.store.progress(&id)?;
            run_backfill(&*rollups.storage, &task, &progress, from, to, now)
                .map_err(query_error)?;
            Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Resource not found for id {id}"),
    )
}

/// Every refused task body is the client's mistake: 400 (KairosDB: 500 for an empty or
/// non-object body).
fn query_error(e: QueryError) -> ApiError {
    ApiError::bad_request(e.message())
}

/// Reads and validates a task body.
async fn read_task(
    state: &super::AppState,
    headers: &HeaderMap,
    request: Body,
) -> Result<RollupTask, ApiError> {
    let limit = state.config.max_request_bytes;
    let encoding = body::encoding(headers, false);
    let raw = body::read(headers, request, body::raw_limit(limit, encoding)).await?;
    blocking(move || {
        let bytes = body::decode(raw, encoding, limit)?;
        parse_rollup_task(&bytes, now_ms()).map_err(query_error)
    })
    .await
}

/// Stores `task` under `id`, wakes the scheduler, and answers as KairosDB does.
async fn save(state: &super::AppState, id: &str, task: &RollupTask) -> Result<Response, ApiError> {
    let rollups = state.rollups.clone();
    let (stored_id, json) = (id.to_owned(), task.stored_json(id));
    blocking(move || Ok(rollups.store.put_task(&stored_id, &json)?)).await?;
    state.rollups.wake.notify_one();
    Ok(created(id, &task.name))
}

/// KairosDB's `RollupResponse`.
fn created(id: &str, name: &str) -> Response {
    // KairosDB's member order: id, name, attributes.
    let body = format!(
        r#"{{"id":{},"name":{},"attributes":{{"url":{}}}}}"#,
        serde_json::Value::from(id),
        serde_json::Value::from(name),
        serde_json::Value::from(format!("{RESOURCE_URL}{id}")),
    );
    json_response(StatusCode::OK, body.into_bytes())
}

/// `yyyy-MM-dd-HH-mm-ss-SSS` (KairosDB's backfill time format) in UTC → ms.
fn parse_time(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{text} is not a time of the form yyyy-MM-dd-HH-mm-ss-SSS"
        ))
    };
    let parts: Vec<i64> = text
        .split('-')
        .map(|p| p.parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, mo, d, h, mi, s, ms] = parts[..] else {
        return Err(bad());
    };
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).map_err(|_| bad())?,
        i8::try_from(mo).map_err(|_| bad())?,
        i8::try_from(d).map_err(|_| bad())?,
        i8::try_from(h).map_err(|_| bad())?,
        i8::try_from(mi).map_err(|_| bad())?,
        i8::try_from(s).map_err(|_| bad())?,
        i32::try_from(ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(bad)?,
    )
    .map_err(|_| bad())?;
    let ts = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| bad())?
        .timestamp();
    Ok(ts.as_millisecond())
}

/// The status as the API answers it: KairosDB re-serializes the stored status with its
/// snake_case Gson, leaving out absent fields.
#[derive(Serialize)]
struct SnakeStatus {
    statuses: Vec<SnakeMetric>,
    executing_host: String,
    next_scheduled: String,
}

#[derive(Serialize)]
struct SnakeMetric {
    metric_name: String,
    last_executed: String,
    data_point_count: u64,
    execution_length: u64,
    last_execution_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

impl From<TaskStatus> for SnakeStatus {
    fn from(s: TaskStatus) -> SnakeStatus {
        SnakeStatus {
            statuses: s
                .statuses
                .into_iter()
                .map(|m| SnakeMetric {
                    metric_name: m.metric_name,
                    last_executed: m.last_executed,
                    data_point_count: m.data_point_count,
                    execution_length: m.execution_length,
                    last_execution_time: m.last_execution_time,
                    error_message: m.error_message,
                })
                .collect(),
            executing_host: s.executing_host,
            next_scheduled: s.next_scheduled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_times_are_kairosdbs_format_in_utc() {
        assert_eq!(
            parse_time("2026-12-07-13-05-09-250").unwrap(),
            1_796_648_709_250
        );
        assert!(parse_time("2026-12-07").is_err());
        assert!(parse_time("2026-13-07-00-00-00-000").is_err());
        assert!(parse_time("x").is_err());
    }
}

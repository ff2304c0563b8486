//! The metadata API, `/api/v1/metadata/{service}[/{serviceKey}[/{key}]]` (spec §1.13,
//! KairosDB's `MetadataResource`): a string store over the backend's
//! [`kairosdb_model::ServiceStore`]. Not gated by `server_type` (spec §1.1.3).
//!
//! Answers, as KairosDB gives them:
//! * a service starting with `_` is reserved: 401, empty body, on every call;
//! * listings: 200 `{"results":[...]}`; `?startsWith=` (empty = no filter) on keys;
//! * a value: 200 with the raw value as the body, not JSON-quoted, under the JSON content
//!   type, or `text/plain` when the client prefers it; a missing key is 404 with
//!   `{"errors":["Key not found"]}` (JSON) or an empty body (text/plain);
//! * set and delete: 204 (delete also when the key did not exist);
//! * a store failure: the one error mapping of `mod.rs` (500 `{"errors":[...]}`; the
//!   text/plain value read gets an empty body, as KairosDB's does).
//!
//! Deviation: KairosDB answers any other failure of a metadata call with 500 (it catches
//! every exception); here a closed or over-capacity store is 503 like every other call,
//! and a body over `max_request_bytes` is 413.

use super::extract::{ApiPath, ApiQuery};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::body;
use super::{blocking, json_response, results_response, ApiError, State};

/// `text/plain; charset=UTF-8`, the type of the plain variant of a value read.
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=UTF-8");

/// 401 with an empty body for a reserved (`_`) service; KairosDB's `checkLocalService`.
fn reserved(service: &str) -> Option<Response> {
    service.starts_with('_').then(|| {
        tracing::warn!(service, "metadata: attempt to access a local service");
        StatusCode::UNAUTHORIZED.into_response()
    })
}

/// `GET /metadata/{service}`: the service keys.
pub async fn list_service_keys(
    axum::extract::State(state): State,
    ApiPath(service): ApiPath<String>,
) -> Response {
    if let Some(r) = reserved(&service) {
        return r;
    }
    blocking(move || {
        Ok(results_response(
            &state.storage.list_service_keys(&service)?,
        ))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub struct KeysParams {
    #[serde(rename = "startsWith")]
    starts_with: Option<String>,
}

/// `GET /metadata/{service}/{serviceKey}[?startsWith=p]`: the keys, sorted.
pub async fn list_keys(
    axum::extract::State(state): State,
    ApiPath((service, service_key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<KeysParams>,
) -> Response {
    if let Some(r) = reserved(&service) {
        return r;
    }
    let prefix = params.starts_with.filter(|p| !p.is_empty());
    blocking(move || {
        let keys = state
            .storage
            .list_keys(&service, &service_key, prefix.as_deref())?;
        Ok(results_response(&keys))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// Does the client prefer `text/plain` to JSON? KairosDB offers both variants of a value
/// read (JAX-RS picks by `Accept`). Here: text/plain when its best quality in `Accept`
/// (from `text/plain` or `text/*`) is higher than JSON's (from `application/json` or
/// `application/*`); `*/*`, no header or a tie give JSON.
fn prefers_text(headers: &HeaderMap) -> bool {
    let (mut text, mut json) = (0.0f32, 0.0f32);
    for item in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match range.as_str() {
            "text/plain" | "text/*" => text = text.max(q),
            "application/json" | "application/*" => json = json.max(q),
            _ => {}
        }
    }
    text > json
}

/// `GET /metadata/{service}/{serviceKey}/{key}`: the raw value.
pub async fn get_value(
    axum::extract::State(state): State,
    ApiPath((service, service_key, key)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = reserved(&service) {
        return r;
    }
    let text = prefers_text(&headers);
    let result = blocking(move || Ok(state.storage.get_value(&service, &service_key, &key)?)).await;
    let content_type = if text { TEXT } else { super::JSON };
    let mut response = match result {
        Ok(Some(value)) => (StatusCode::OK, value).into_response(),
        Ok(None) if text => StatusCode::NOT_FOUND.into_response(),
        Ok(None) => return ApiError::new(StatusCode::NOT_FOUND, "Key not found").into_response(),
        Err(e) if text => {
            tracing::warn!(errors = ?e.errors, "metadata: reading a value failed");
            e.status.into_response()
        }
        Err(e) => return e.into_response(),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// `POST /metadata/{service}/{serviceKey}/{key}`: stores the body (UTF-8) as the value.
pub async fn set_value(
    axum::extract::State(state): State,
    ApiPath((service, service_key, key)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    if let Some(r) = reserved(&service) {
        return r;
    }
    let limit = state.config.max_request_bytes;
    let encoding = body::encoding(&headers, false);
    let result = async {
        let raw = body::read(&headers, request_body, body::raw_limit(limit, encoding)).await?;
        blocking(move || {
            let bytes = body::decode(raw, encoding, limit)?;
            // Java decodes the entity as UTF-8, replacing what is not.
            let value = String::from_utf8_lossy(&bytes);
            state
                .storage
                .set_value(&service, &service_key, &key, &value)?;
            Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /metadata/{service}/{serviceKey}/{key}`: 204 whether or not it existed.
pub async fn delete_key(
    axum::extract::State(state): State,
    ApiPath((service, service_key, key)): ApiPath<(String, String, String)>,
) -> Response {
    if let Some(r) = reserved(&service) {
        return r;
    }
    blocking(move || {
        state.storage.delete_key(&service, &service_key, &key)?;
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn text_only_when_preferred() {
        assert!(!prefers_text(&HeaderMap::new()));
        assert!(!prefers_text(&accept("*/*")));
        assert!(!prefers_text(&accept("application/json")));
        assert!(!prefers_text(&accept("text/plain, application/json")));
        assert!(prefers_text(&accept("text/plain")));
        assert!(prefers_text(&accept("text/*;q=0.9, */*;q=0.1")));
        assert!(prefers_text(&accept("application/json;q=0.5, text/plain")));
        assert!(!prefers_text(&accept("text/plain;q=0")));
    }
}

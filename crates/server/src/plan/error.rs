//! The analytics plan's error body, `{"error", "code", "message", "details"}`, for every
//! refusal on a plan route: its handlers', and the authentication and rate-limit
//! middleware's (`auth::middleware` picks this shape by path, [`super::speaks_plan`]).
//!
//! * `error`: the HTTP status' reason phrase (`"Bad Request"`);
//! * `code`: one of [`Code`], what a client switches on;
//! * `message`: a sentence with the values in it;
//! * `details`: an object with what a program may want (the parameter at fault, the
//!   metrics that were refused, `retry_after_secs`); `{}` when there is nothing to add.
//!
//! The status of a storage failure comes from the server's one mapping
//! (`ApiError::from(StorageError)`); only the body differs from the KairosDB API's.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use kairosdb_cluster::analytics::ParamError;
use kairosdb_model::StorageError;

use crate::http::body::BodyError;
use crate::http::{json_response, ApiError};

/// The plan's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// The request cannot be read: a body or parameter that does not parse, an unknown
    /// parameter, a method the path does not take, a body over the size limit.
    InvalidRequest,
    /// The request reads but asks for something that makes no sense or cannot be stored.
    ValidationError,
    /// Nothing to answer: `/analytics` over a range without a point; an unknown record.
    NotFound,
    /// The telemetry API: a record already exists where one is created or moved (409).
    Conflict,
    /// No or wrong credentials (401), or a missing scope (403).
    AuthError,
    /// This process's `server_type` turns the route's class (ingest, query, delete) off
    /// (403).
    Forbidden,
    /// The token's (or client's) rate limit: 429 with `Retry-After`.
    RateLimitExceeded,
    /// The cluster's Raft state cannot serve the request: it is forming (no placement
    /// decided yet, no leader to decide it), or a layout change or metadata change was
    /// not committed. 503 with `Retry-After`.
    RaftError,
    /// Storage refused or failed: back-pressure, workers that do not answer, a full disk.
    StorageError,
    /// A bug or an unexpected failure.
    InternalError,
}

/// A refusal on a plan route.
#[derive(Debug)]
pub struct PlanError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub details: Map<String, Value>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u32>,
}

impl PlanError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> PlanError {
        PlanError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
        }
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid(message: impl Into<String>) -> PlanError {
        PlanError::new(StatusCode::BAD_REQUEST, Code::InvalidRequest, message)
    }

    /// 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> PlanError {
        PlanError::new(StatusCode::BAD_REQUEST, Code::ValidationError, message)
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> PlanError {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// A refusal of the server's other error path (authentication, rate limits, the 405
    /// fallback) in the plan's shape: same status, message and `Retry-After`.
    pub fn from_api(e: ApiError, code: Code) -> PlanError {
        let mut out = PlanError::new(e.status, code, e.errors.join("; "));
        if let Some(secs) = e.retry_after {
            out = out.detail("retry_after_secs", secs);
            out.retry_after = Some(secs);
        }
        out
    }
}

impl From<StorageError> for PlanError {
    fn from(e: StorageError) -> PlanError {
        let code = match &e {
            StorageError::InvalidInput(_) | StorageError::TooManyPoints { .. } => {
                Code::ValidationError
            }
            StorageError::Unavailable { message, .. }
                if crate::cluster::is_raft_refusal(message) =>
            {
                Code::RaftError
            }
            StorageError::Backpressure { .. }
            | StorageError::Closed
            | StorageError::Unavailable { .. }
            | StorageError::InsufficientStorage(_)
            | StorageError::Poisoned(_)
            | StorageError::Corruption(_) => Code::StorageError,
            StorageError::Unsupported(_) | StorageError::Internal(_) => Code::InternalError,
        };
        PlanError::from_api(ApiError::from(e), code)
    }
}

impl From<ParamError> for PlanError {
    fn from(e: ParamError) -> PlanError {
        let parameter = e.parameter().to_owned();
        let out = match e {
            ParamError::Invalid { message, .. } => PlanError::invalid(message),
            ParamError::Validation { message, .. } => PlanError::validation(message),
        };
        out.detail("parameter", parameter)
    }
}

impl From<BodyError> for PlanError {
    fn from(e: BodyError) -> PlanError {
        PlanError::from_api(ApiError::from(e), Code::InvalidRequest)
    }
}

impl From<tokio::task::JoinError> for PlanError {
    fn from(e: tokio::task::JoinError) -> PlanError {
        PlanError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::InternalError,
            format!("request task failed: {e}"),
        )
    }
}

impl IntoResponse for PlanError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = ?self.code, message = %self.message, "plan request failed");
        }
        let body = serde_json::json!({
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "code": self.code,
            "message": self.message,
            "details": self.details,
        });
        let bytes = serde_json::to_vec(&body)
            .unwrap_or_else(|e| panic!("BUG: serialising an error body failed: {e}"));
        let mut response = json_response(self.status, bytes);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: PlanError) -> (StatusCode, Option<String>, Value) {
        let response = e.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_body_has_error_code_message_and_details() {
        let e = PlanError::validation("window \"0s\" must be longer than zero")
            .detail("parameter", "window");
        let (status, retry, body) = body_of(e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(retry, None);
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Bad Request",
                "code": "VALIDATION_ERROR",
                "message": "window \"0s\" must be longer than zero",
                "details": {"parameter": "window"},
            })
        );
    }

    #[test]
    fn every_code_is_written_as_the_plan_spells_it() {
        let codes = [
            (Code::InvalidRequest, "INVALID_REQUEST"),
            (Code::ValidationError, "VALIDATION_ERROR"),
            (Code::NotFound, "NOT_FOUND"),
            (Code::Conflict, "CONFLICT"),
            (Code::AuthError, "AUTH_ERROR"),
            (Code::RateLimitExceeded, "RATE_LIMIT_EXCEEDED"),
            (Code::RaftError, "RAFT_ERROR"),
            (Code::StorageError, "STORAGE_ERROR"),
            (Code::InternalError, "INTERNAL_ERROR"),
        ];
        for (code, text) in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), text);
        }
    }

    #[tokio::test]
    async fn storage_errors_keep_the_servers_status_and_retry_after() {
        let cases = [
            (
                StorageError::Backpressure {
                    retry_after_secs: 3,
                },
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_ERROR",
                Some("3"),
            ),
            (
                StorageError::TooManyPoints { limit: 5 },
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                None,
            ),
            (
                StorageError::InsufficientStorage("disk".into()),
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_ERROR",
                None,
            ),
            (
                StorageError::Internal("oops".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                None,
            ),
        ];
        for (e, status, code, retry) in cases {
            let (got_status, got_retry, body) = body_of(PlanError::from(e)).await;
            assert_eq!(got_status, status);
            assert_eq!(body["code"], code);
            assert_eq!(got_retry.as_deref(), retry);
            assert!(body["details"].is_object());
        }
    }

    #[test]
    fn parameter_errors_name_the_parameter_and_pick_the_code() {
        let e = PlanError::from(ParamError::invalid("from", "from: \"noon\" is not a time"));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, Code::InvalidRequest)
        );
        assert_eq!(e.details["parameter"], "from");
        let e = PlanError::from(ParamError::validation("limit", "limit must be at least 1"));
        assert_eq!(e.code, Code::ValidationError);
    }
}

//! The analytics plan's HTTP API (issue 19; the API and its decisions are described in
//! docs/cluster.md, "The analytics plan's API"), served by cluster nodes only:
//!
//! | node | route | scope | module |
//! |---|---|---|---|
//! | control | `POST /metrics`, `POST /insert` | `write` | [`ingest`] |
//! | control | `GET /analytics`, `GET /aggregate` | `read` | [`read`] |
//! | worker | `POST /insert`, `POST /compute` | `admin` | [`ingest`], [`read`] |
//! | both | `GET /health` | open | [`health`] |
//!
//! A plan metric is a KairosDB series point, so writes go through the node's `Storage`
//! (on a control node `ClusterStorage`, which routes by partition) and reads compute
//! mergeable partial aggregates (`kairosdb_cluster::analytics`) pushed down to the
//! workers. A worker's `/insert` and `/compute` need `admin`: they act on that worker
//! alone, outside the control node's placement, as its `/internal/v1/*` calls do.
//!
//! These routes are mounted beside `http::routes()` ([`routes`]), not in it: that table is
//! the KairosDB API every role serves and what `openapi.json` documents (schemathesis
//! fuzzes a single node from it), while these exist only on control and worker nodes. Two
//! paths are shared: `GET /metrics` stays the Prometheus text (the plan's is `POST`), and
//! the one `GET /health` route answers the plan's shape on cluster nodes
//! (`http/health.rs` → [`health::respond`]).
//!
//! Refusals use the plan's error body ([`error`]), also those of the authentication and
//! rate-limit middleware on these routes ([`speaks_plan`]).

pub mod error;
pub mod health;
pub mod ingest;
pub mod read;

use std::sync::Arc;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Scope;
use crate::config::NodeRole;
use crate::http::{json_response, AppState};
pub use error::{Code, PlanError};

/// The plan's routes on a node of `role` (none on a single node).
pub fn routes(role: NodeRole) -> Router<Arc<AppState>> {
    match role {
        NodeRole::Single => Router::new(),
        NodeRole::Control => Router::new()
            .route("/metrics", post(ingest::metric))
            .route("/insert", post(ingest::insert))
            .route("/analytics", get(read::analytics))
            .route("/aggregate", get(read::aggregate)),
        NodeRole::Worker => Router::new()
            .route("/insert", post(ingest::insert))
            .route("/compute", post(read::compute)),
    }
}

/// The scope `method path` needs as a plan route on a node of `role`, `None` when it is
/// not one there. Checked before `[auth] open_paths`: `/metrics` there opens the
/// Prometheus `GET`, never the plan's `POST`.
pub fn required_scope(role: NodeRole, method: &Method, path: &str) -> Option<Scope> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match (role, path) {
        (NodeRole::Control, "/metrics" | "/insert") if post => Some(Scope::Write),
        (NodeRole::Control, "/analytics" | "/aggregate") if get => Some(Scope::Read),
        (NodeRole::Worker, "/insert" | "/compute") if post => Some(Scope::Admin),
        _ => None,
    }
}

/// Whether a refusal of `method path` on a node of `role` is written in the plan's shape:
/// the plan's routes, and their paths with a method they do not take.
pub fn speaks_plan(role: NodeRole, method: &Method, path: &str) -> bool {
    required_scope(role, method, path).is_some()
        || match role {
            NodeRole::Single => false,
            NodeRole::Control => matches!(path, "/insert" | "/analytics" | "/aggregate"),
            NodeRole::Worker => matches!(path, "/insert" | "/compute"),
        }
}

/// How a binary body or answer is asked for: `application/octet-stream` or
/// `application/bincode` (also `application/x-bincode`).
fn is_bincode(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    [
        "application/octet-stream",
        "application/bincode",
        "application/x-bincode",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

/// The format of a body or an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Bincode,
}

/// The format of a request body: bincode when `Content-Type` says so, else JSON whatever
/// it says (curl's `-d` sends `application/x-www-form-urlencoded`; KairosDB's ingest
/// reads any content type as JSON too).
pub fn body_format(headers: &HeaderMap) -> Format {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_bincode(declared) {
        Format::Bincode
    } else {
        Format::Json
    }
}

/// The format of an answer, from `Accept`: bincode when it names a binary type first,
/// else JSON.
pub fn answer_format(headers: &HeaderMap) -> Format {
    let first = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("");
    if is_bincode(first) {
        Format::Bincode
    } else {
        Format::Json
    }
}

/// A 200 answer in `format`.
pub fn answer<T: serde::Serialize>(format: Format, value: &T) -> Response {
    match format {
        Format::Json => {
            let body = serde_json::to_vec(value)
                .unwrap_or_else(|e| panic!("BUG: a plan answer did not serialise: {e}"));
            json_response(StatusCode::OK, body)
        }
        Format::Bincode => {
            let mut response = json_response(
                StatusCode::OK,
                kairosdb_cluster::analytics::codec::encode(value),
            );
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
    }
}

/// Runs `f` on the blocking pool, inside the caller's trace span.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PlanError> + Send + 'static,
) -> Result<T, PlanError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await?
}

#[cfg(test)]
mod tests;

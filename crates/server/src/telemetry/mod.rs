//! The telemetry API (issue 20, docs/telemetry.md) on its own listener
//! (`telemetry_bind_address`): records by id over the same storage, in the analytics plan's
//! error shape (`crate::plan::PlanError`), behind the same authentication and rate limits
//! as the main listener (`auth::middleware`, told apart by [`Listener`]).
//!
//! * `records.rs`: `POST /metrics`, `GET /metrics` (filters, cursor), `GET`, `PUT` and
//!   `DELETE /metrics/{id}`.
//! * `stream.rs`: `GET /metrics/stream`, Server-Sent Events of the records created and
//!   changed here ([`Telemetry::hub`]).
//! * `question.rs`: `GET /query?prompt=`, questions in plain words.
//!
//! Not here: what a record, an id, a listing and a prompt are (`kairosdb_telemetry`). Not
//! built yet: the Redis cache (docs/telemetry.md).

mod question;
mod records;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::Method;
use axum::routing::get;
use axum::{middleware, Extension, Router};
use kairosdb_telemetry::Record;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::Scope;
use crate::http::AppState;

/// Records a slow stream client may fall behind by before it is told it missed some.
const HUB_CAPACITY: usize = 4096;

/// The telemetry routes' state: the server's, and the records written here as they are.
pub struct Telemetry {
    pub app: Arc<AppState>,
    /// Each record created or changed through this listener, for `/metrics/stream`.
    pub hub: broadcast::Sender<Arc<Record>>,
    /// Ends the streams when the server shuts down.
    pub shutdown: CancellationToken,
}

/// Marks a request as the telemetry listener's (for `auth::middleware`).
#[derive(Clone, Copy, Debug)]
pub struct Listener;

/// The scope a telemetry request needs: `read` to look, `write` to create or change,
/// `delete` to delete.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if method == Method::OPTIONS || !(path.starts_with("/metrics") || path == "/query") {
        return None;
    }
    Some(match *method {
        Method::GET | Method::HEAD => Scope::Read,
        Method::DELETE => Scope::Delete,
        _ => Scope::Write,
    })
}

/// The telemetry listener's router; its streams end when `shutdown` is cancelled.
pub fn router(state: Arc<AppState>, shutdown: CancellationToken) -> Router {
    let telemetry = Arc::new(Telemetry {
        app: state.clone(),
        hub: broadcast::channel(HUB_CAPACITY).0,
        shutdown,
    });
    Router::new()
        .route("/metrics", get(records::list).post(records::create))
        .route("/metrics/stream", get(stream::stream))
        .route("/query", get(question::query))
        .route(
            "/metrics/{id}",
            get(records::fetch)
                .put(records::update)
                .delete(records::remove),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state,
            crate::auth::middleware,
        ))
        .layer(Extension(Listener))
        .with_state(telemetry)
}

async fn not_found(uri: axum::http::Uri) -> crate::plan::PlanError {
    crate::plan::PlanError::new(
        axum::http::StatusCode::NOT_FOUND,
        crate::plan::Code::NotFound,
        format!(
            "no route {}: the telemetry API serves /metrics and /metrics/{{id}}",
            uri.path()
        ),
    )
}

//! The telemetry API (issue 20, docs/telemetry.md) on its own listener
//! (`telemetry_bind_address`): records by id over the same storage, in the analytics plan's
//! error shape (`crate::plan::PlanError`), behind the same authentication and rate limits
//! as the main listener (`auth::middleware`, told apart by [`Listener`]).
//!
//! * `records.rs`: `POST /metrics`, `GET /metrics` (filters, cursor), `GET`, `PUT` and
//!   `DELETE /metrics/{id}`.
//! * `stream.rs`: `GET /metrics/stream`, Server-Sent Events of the records written, through
//!   any API (`crate::watch`).
//! * `question.rs`: `GET /query?prompt=`, questions in plain words.
//!
//! Listings and prompt answers are kept in the Redis cache when there is one
//! ([`Telemetry::cache`], [`cached`]).
//!
//! Not here: what a record, an id, a listing and a prompt are (`kairosdb_telemetry`); how
//! a cached answer is kept right (`crate::redis_cache`).

mod question;
mod records;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::Method;
use axum::routing::get;
use axum::{middleware, Extension, Router};
use tokio_util::sync::CancellationToken;

use crate::auth::Scope;
use crate::http::AppState;
use crate::plan::PlanError;
use crate::redis_cache::{Lookup, RedisCache, Snapshot};

/// The answer cached under `key` when it is still valid; otherwise `compute`d, given the
/// snapshot of `deps` it is computed under (which it may extend, `None` when it must not be
/// stored), and stored. Runs on the blocking pool.
pub fn cached(
    cache: Option<&RedisCache>,
    key: &str,
    deps: &[&str],
    compute: impl FnOnce(Option<Snapshot>) -> Result<(Vec<u8>, Option<Snapshot>), PlanError>,
) -> Result<Vec<u8>, PlanError> {
    let snapshot = match cache.map(|c| c.lookup(key, deps)) {
        Some(Lookup::Hit(body)) => return Ok(body),
        Some(Lookup::Miss(snapshot)) => snapshot,
        None => None,
    };
    let (body, snapshot) = compute(snapshot)?;
    if let (Some(cache), Some(snapshot)) = (cache, snapshot) {
        cache.store(key, &snapshot, &body);
    }
    Ok(body)
}

/// A JSON answer made of bytes already serialised (or read from the cache).
pub fn json_bytes(body: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The telemetry routes' state: the server's, and the records written here as they are.
pub struct Telemetry {
    pub app: Arc<AppState>,
    /// Where listings and prompt answers are cached; `None` without Redis or with
    /// `telemetry_cache_ttl_secs = 0`.
    pub cache: Option<Arc<RedisCache>>,
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
        cache: state
            .watch
            .cache()
            .filter(|_| state.config.telemetry_cache_ttl_secs > 0)
            .cloned(),
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
            state.clone(),
            server_type_gate,
        ))
        .layer(middleware::from_fn_with_state(
            state,
            crate::auth::middleware,
        ))
        .layer(Extension(Listener))
        .with_state(telemetry)
}

/// `server_type` applies here too: creating and changing records is ingest, reading and
/// asking is query, deleting is delete.
async fn server_type_gate(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use crate::config::ApiClass;
    let class = match *request.method() {
        Method::GET | Method::HEAD => ApiClass::Query,
        Method::DELETE => ApiClass::Delete,
        Method::OPTIONS => return next.run(request).await,
        _ => ApiClass::Ingest,
    };
    if !state.config.roles.serves(class) {
        return crate::http::class_disabled(class, true);
    }
    next.run(request).await
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

//! The HTTP API (spec §1): the route table, the one mapping from errors to HTTP status and
//! KairosDB's `{"errors":[...]}` body, and the headers every response carries.
//!
//! Handlers live beside this file, one per concern: [`ingest`] (`/datapoints`), [`query`]
//! (`/datapoints/query`, `/query/tags`, `/datapoints/delete`), [`meta`] (names, version,
//! metric delete), [`health`] (health checks, probes and metrics), [`body`] (reading and
//! gunzipping request bodies), [`metadata`] (`/metadata`, the service key/value store).
//! Storage calls always run in `spawn_blocking`.
//!
//! Authentication, scopes and rate limits (issue 22): `crate::auth::middleware`, outside
//! the server-type gate, so a refused client learns nothing about this process's roles.
//!
//! Server-type gating (spec §1.1.3, `server_type`): [`server_type_gate`] answers 403 for
//! the API classes this process does not serve.
//!
//! The Admin API and the registry of running queries: [`admin`].
//!
//! The web UI's static files are served by the fallback, from `ui.rs`.
//!
//! Roll-up tasks: [`rollups`].
//!
//! The OpenAPI 3.1 document of every route, served at `/api/v1/openapi.json`: [`openapi`].
//!
//! On control and worker nodes, the analytics plan's routes are merged in beside the table
//! (`crate::plan`, which says why they are not in it).
//!
//! Trace spans of every request while `otel_enabled`: `crate::otel::trace_request`.
//!
//! `/api/v1/datapoints/index` on Cassandra answers 501 (see [`ingest::index`]).

pub mod admin;
pub mod body;
pub mod extract;
pub mod features;
pub mod health;
pub mod ingest;
pub mod meta;
pub mod metadata;
pub mod openapi;
pub mod query;
pub mod rollups;
pub mod serve;
pub mod tls;

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use kairosdb_model::{Storage, StorageError};

use crate::config::{ApiClass, Config};
use crate::metrics::ServerMetrics;
use crate::query_cache::QueryCache;

/// Shared by every handler.
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub config: Arc<Config>,
    pub metrics: Arc<ServerMetrics>,
    /// Present when `enable_prometheus` is on.
    pub prometheus: Option<PrometheusHandle>,
    /// One permit per metric query that may run at once, server-wide (`query_concurrency`).
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// The `cache_time` cache; `None` when `query_cache_mb = 0` (and it is in memory).
    pub query_cache: Option<Arc<QueryCache>>,
    /// Every write after storage, and the Redis cache if there is one (`crate::watch`).
    pub watch: Arc<crate::watch::Watch>,
    /// How long one request's metric queries may run on the async worker together before
    /// the rest go to the blocking pool (`query::INLINE_TIME`; tests widen it so that which
    /// queries run inline does not depend on the machine's load).
    pub inline_time: std::time::Duration,
    /// The query requests in flight, for the Admin API (`admin.rs`).
    pub running: admin::RunningQueries,
    /// Roll-up tasks (`rollups.rs` and `crate::rollup`).
    pub rollups: Arc<crate::rollup::Rollups>,
    /// Users, tokens, scopes and rate-limit buckets (`crate::auth`).
    pub auth: Arc<crate::auth::Auth>,
    /// This node in the cluster's Raft group (control and worker roles).
    pub membership: Option<Arc<kairosdb_cluster::raft::Membership>>,
    /// A control node's cluster, once placed (the same object as `storage`), for what only
    /// a cluster answers: the analytics plan's pushed-down aggregates, worker counts and
    /// `worker_node` (`crate::plan`). `None` on other roles.
    pub cluster: Option<Arc<crate::cluster::Forming>>,
}

impl AppState {
    /// The state for `config`: query slots and cache sized from it.
    pub fn new(
        storage: Arc<dyn Storage>,
        config: Arc<Config>,
        metrics: Arc<ServerMetrics>,
        prometheus: Option<PrometheusHandle>,
    ) -> AppState {
        let cache_bytes = config.query_cache_mb.saturating_mul(1 << 20);
        let query_cache = (cache_bytes > 0).then(|| Arc::new(QueryCache::new(cache_bytes)));
        let rollups = Arc::new(crate::rollup::Rollups::new(
            storage.clone(),
            config.rollup_late_window_secs,
        ));
        let auth = crate::auth::Auth::new(&config)
            .unwrap_or_else(|e| panic!("BUG: Config::resolve validated the auth settings: {e}"));
        AppState {
            storage,
            rollups,
            auth: Arc::new(auth),
            cluster: None,
            query_slots: Arc::new(tokio::sync::Semaphore::new(config.query_concurrency)),
            query_cache,
            inline_time: query::INLINE_TIME,
            running: admin::RunningQueries::default(),
            watch: crate::watch::Watch::new(None),
            config,
            metrics,
            prometheus,
            membership: None,
        }
    }

    /// The state whose storage is watched by `watch` (`main.rs` wraps it); with
    /// `query_cache = "redis"`, the `cache_time` cache is its Redis.
    pub fn with_watch(mut self, watch: Arc<crate::watch::Watch>) -> Self {
        if self.config.query_cache == crate::config::QueryCacheKind::Redis {
            if let Some(redis) = watch.cache() {
                self.query_cache = Some(Arc::new(QueryCache::shared(redis.clone())));
            }
        }
        self.watch = watch;
        self
    }

    /// The state of a cluster node, with its Raft membership.
    pub fn with_membership(mut self, membership: Arc<kairosdb_cluster::raft::Membership>) -> Self {
        self.membership = Some(membership);
        self
    }

    /// Every HTTP delete goes through here: it also empties the `cache_time` cache, so a
    /// query after a delete never sees the deleted points (see `query_cache.rs`).
    pub fn delete(&self, request: &kairosdb_model::DeleteRequest) -> Result<u64, StorageError> {
        let result = self.storage.delete(request);
        if let Some(cache) = &self.query_cache {
            cache.invalidate_all();
        }
        result
    }
}

pub type State = axum::extract::State<Arc<AppState>>;

/// `application/json; charset=UTF-8`, the content type of every KairosDB resource (§1.1.1).
pub const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=UTF-8");

/// The route table: every path the API serves, each of its methods and their handlers.
/// [`router`] is built from it, and `openapi.rs`'s test compares it with the OpenAPI
/// document, both ways. API routes ([`Route::api`]) also answer the CORS pre-flight,
/// `OPTIONS` (spec §1.1.4). A `GET` route answers `HEAD` too (axum's rule; not listed).
pub fn routes() -> Vec<Route> {
    vec![
        Route::api("/api/v1/version").get(meta::version),
        // The OpenAPI 3.1 document of every route below (`openapi.rs`).
        Route::api("/api/v1/openapi.json").get(openapi::document),
        // PUT = POST: an addition, KairosDB 1.3 answers PUT with 405 (spec §1.2).
        Route::api("/api/v1/datapoints")
            .post(ingest::ingest)
            .put(ingest::ingest),
        Route::api("/api/v1/datapoints/gzip")
            .post(ingest::ingest_gzip)
            .put(ingest::ingest_gzip),
        Route::api("/api/v1/datapoints/index").get(ingest::index),
        Route::api("/api/v1/datapoints/query")
            .get(query::query_get)
            .post(query::query_post)
            // DELETE = `POST /datapoints/delete` (an addition, see `query::delete`).
            .delete(query::delete),
        Route::api("/api/v1/datapoints/query/tags").post(query::query_tags),
        Route::api("/api/v1/datapoints/delete").post(query::delete),
        Route::api("/api/v1/metric/{name}").delete(meta::delete_metric),
        Route::api("/api/v1/metricnames").get(meta::metric_names),
        Route::api("/api/v1/tagnames").get(meta::tag_names),
        Route::api("/api/v1/tagvalues").get(meta::tag_values),
        Route::api("/api/v1/metadata/{service}").get(metadata::list_service_keys),
        Route::api("/api/v1/metadata/{service}/{service_key}").get(metadata::list_keys),
        Route::api("/api/v1/metadata/{service}/{service_key}/{key}")
            .get(metadata::get_value)
            .post(metadata::set_value)
            .delete(metadata::delete_key),
        Route::api("/api/v1/health/check").get(health::check),
        Route::api("/api/v1/health/status").get(health::status),
        Route::api("/api/v1/metrics").get(health::metrics_json),
        Route::api("/api/v1/features").get(features::features),
        // KairosDB's own test calls the list with a trailing slash.
        Route::api("/api/v1/features/").get(features::features),
        Route::api("/api/v1/features/{feature}").get(features::feature),
        Route::api("/api/v1/admin/scheduledjobs").get(admin::scheduled_jobs_handler),
        Route::api("/api/v1/admin/runningqueries").get(admin::running_queries),
        Route::api("/api/v1/admin/killquery/{hash}").get(admin::kill_query),
        Route::api("/api/v1/rollups")
            .get(rollups::list)
            .post(rollups::create),
        // KairosDB's own roll-up pages call the list with a trailing slash.
        Route::api("/api/v1/rollups/")
            .get(rollups::list)
            .post(rollups::create),
        Route::api("/api/v1/rollups/{id}")
            .get(rollups::get)
            .put(rollups::update)
            .delete(rollups::delete),
        Route::api("/api/v1/rollups/status/{id}").get(rollups::status),
        Route::api("/api/v1/rollups/backfill/{id}").get(rollups::backfill),
        Route::other("/health").get(health::probe),
        Route::other("/health/live").get(health::live),
        Route::other("/health/ready").get(health::ready),
        Route::other("/metrics").get(health::metrics_prometheus),
    ]
}

/// One row of [`routes`]: a path, its methods, and the handler of each.
pub struct Route {
    pub path: &'static str,
    /// In the order they were added.
    pub methods: Vec<Method>,
    handlers: MethodRouter<Arc<AppState>>,
}

impl Route {
    /// A route of the REST API: it answers the CORS pre-flight too.
    fn api(path: &'static str) -> Route {
        Route::other(path).on(Method::OPTIONS, preflight)
    }

    /// A route outside the API (probes, `/metrics`): no pre-flight.
    fn other(path: &'static str) -> Route {
        Route {
            path,
            methods: Vec::new(),
            handlers: MethodRouter::new(),
        }
    }

    fn on<H, T>(mut self, method: Method, handler: H) -> Route
    where
        H: axum::handler::Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|e| panic!("BUG: a route names an unroutable method: {e}"));
        self.handlers = self.handlers.on(filter, handler);
        self.methods.push(method);
        self
    }

    fn get<H: axum::handler::Handler<T, Arc<AppState>>, T: 'static>(self, h: H) -> Route {
        self.on(Method::GET, h)
    }

    fn post<H: axum::handler::Handler<T, Arc<AppState>>, T: 'static>(self, h: H) -> Route {
        self.on(Method::POST, h)
    }

    fn put<H: axum::handler::Handler<T, Arc<AppState>>, T: 'static>(self, h: H) -> Route {
        self.on(Method::PUT, h)
    }

    fn delete<H: axum::handler::Handler<T, Arc<AppState>>, T: 'static>(self, h: H) -> Route {
        self.on(Method::DELETE, h)
    }
}

/// The router: [`routes`], the fallbacks, and the middleware every request passes
/// (outermost last: standard headers, request count, auth, server-type gate).
pub fn router(state: Arc<AppState>) -> Router {
    let traced = state.config.otel_enabled;
    let api = routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handlers));
    // Cluster nodes talk Raft; a worker also answers its control nodes (`crate::cluster`);
    // cluster nodes serve the analytics plan's API beside the KairosDB one (`crate::plan`:
    // why it is not in `routes()`).
    let role = state.config.role;
    let api = match role {
        crate::config::NodeRole::Worker => api
            .merge(crate::cluster::worker_routes())
            .merge(crate::cluster::raft_routes()),
        crate::config::NodeRole::Control => api
            .merge(crate::cluster::raft_routes())
            .merge(crate::cluster::moves::routes()),
        crate::config::NodeRole::Single => api,
    };
    let api = api.merge(crate::plan::routes(role));
    let router = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            server_type_gate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(middleware::from_fn(standard_headers))
        .with_state(state);
    // Outermost, so the span covers authentication and its status is the one sent.
    match traced {
        true => router.layer(middleware::from_fn(crate::otel::trace_request)),
        false => router,
    }
}

/// The API class of a request, for server-type gating (spec §1.1.3), or `None` when ungated.
fn api_class(method: &Method, path: &str) -> Option<ApiClass> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/api/v1/datapoints/query" if method == Method::DELETE => Some(ApiClass::Delete),
        "/api/v1/datapoints" | "/api/v1/datapoints/gzip" | "/api/v1/datapoints/index" => {
            Some(ApiClass::Ingest)
        }
        "/api/v1/metricnames" | "/api/v1/datapoints/query" | "/api/v1/datapoints/query/tags" => {
            Some(ApiClass::Query)
        }
        "/api/v1/datapoints/delete" => Some(ApiClass::Delete),
        p if p.starts_with("/api/v1/metric/") => Some(ApiClass::Delete),
        // The analytics plan's routes (`crate::plan`); `/compute` is the control node's
        // fan-out to its workers, never gated. GET /metrics is Prometheus.
        "/metrics" | "/insert" if method == Method::POST => Some(ApiClass::Ingest),
        "/analytics" | "/aggregate" => Some(ApiClass::Query),
        _ => None,
    }
}

/// The 403 of a route whose API class `server_type` turns off: KairosDB's exact body, or
/// the plan's error shape on the plan's and the telemetry API's routes.
pub fn class_disabled(class: ApiClass, plan_shape: bool) -> Response {
    if plan_shape {
        let message = format!(
            "{} routes are disabled on this instance (server_type)",
            class.name()
        );
        return crate::plan::PlanError::new(
            StatusCode::FORBIDDEN,
            crate::plan::Code::Forbidden,
            message,
        )
        .into_response();
    }
    let body = format!(
        "{{\"errors\": [\"Forbidden: {} API methods are disabled on this KairosDB instance.\"]}}",
        class.name()
    );
    json_response(StatusCode::FORBIDDEN, body.into_bytes())
}

/// 403 with KairosDB's exact body when the path's API class is disabled on this process.
async fn server_type_gate(
    axum::extract::State(state): State,
    request: Request,
    next: Next,
) -> Response {
    let roles = state.config.roles;
    let (method, path) = (request.method(), request.uri().path());
    let plan = crate::plan::speaks_plan(state.config.role, method, path);
    // A plan path on a role without the plan's routes is no route at all (404).
    let routed = plan || path.starts_with("/api/");
    if let Some(class) = api_class(method, path).filter(|c| routed && !roles.serves(*c)) {
        return class_disabled(class, plan);
    }
    next.run(request).await
}

/// `kairosdb.protocol.http_request_count` (spec §11.1): every request under `/api/`, as
/// KairosDB's `MonitorFilter` (mapped to `/api/*`) counts them, before routing, so
/// refused and unknown paths count too.
async fn count_request(
    axum::extract::State(state): State,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/");
    if api {
        let tallies = &state.metrics.tallies;
        tallies.http_request(request.method().as_str(), path);
    }
    let response = next.run(request).await;
    if api && response.status() == StatusCode::BAD_REQUEST {
        ServerMetrics::add(&state.metrics.http_bad_requests, 1);
    }
    response
}

/// CORS pre-flight, spec §1.1.4: 200, empty body, the request's headers and method echoed.
async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    if let Some(h) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    if let Some(m) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        // KairosDB's header name really has an underscore (spec §14.16); kept for
        // compatibility. The standard name is added too so browsers accept DELETE.
        out.insert(
            HeaderName::from_static("access-control-allow_method"),
            m.clone(),
        );
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m.clone());
    }
    response
}

/// The web UI's files (`ui.rs`), else 404.
///
/// Deviation from KairosDB: unknown paths answer 404 with an `{"errors":[...]}` body;
/// Jersey's 404 has no KairosDB body (spec §1.2). Clients only look at the status.
async fn not_found(method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Some(page) = crate::ui::serve(&method, &uri, &headers) {
        return page;
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Resource not found: {method} {}", uri.path()),
    )
    .into_response()
}

/// 405, in the analytics plan's shape on its paths (`crate::plan::speaks_plan`).
async fn method_not_allowed(
    axum::extract::State(state): State,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    );
    if crate::plan::speaks_plan(state.config.role, &method, uri.path()) {
        return crate::plan::PlanError::from_api(e, crate::plan::Code::InvalidRequest)
            .into_response();
    }
    e.into_response()
}

/// Adds KairosDB's standard headers (spec §1.1.1) to every response, the JSON content type
/// where a handler set none (KairosDB sends it even on 204), and gzips JSON bodies for
/// clients that accept it (spec §1.1: Jetty's gzip handler).
///
/// Deviation: KairosDB's 400 responses carry only `Access-Control-Allow-Origin`; we send
/// the four standard headers on every response.
async fn standard_headers(request: Request, next: Next) -> Response {
    let accepts_gzip = accepts_gzip(request.headers());
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    if !h.contains_key(header::CONTENT_TYPE) {
        h.insert(header::CONTENT_TYPE, JSON);
    }
    let is_json = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if accepts_gzip && is_json && !h.contains_key(header::CONTENT_ENCODING) {
        return gzip_response(response).await;
    }
    response
}

/// Bodies shorter than this are not worth compressing (Jetty's GzipHandler default).
const MIN_GZIP_BYTES: usize = 32;
/// Bigger bodies are compressed on a blocking thread.
const INLINE_GZIP_BYTES: usize = 64 * 1024;

async fn gzip_response(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    // Our JSON bodies are complete in memory, so collecting them is a move, not a copy.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("could not buffer the response body").into_response();
    };
    if bytes.len() < MIN_GZIP_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let len = bytes.len();
    let compress = move || {
        let mut e = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        e.write_all(&bytes).and_then(|()| e.finish())
    };
    let compressed = if len > INLINE_GZIP_BYTES {
        tokio::task::spawn_blocking(compress)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    } else {
        compress()
    };
    let Ok(compressed) = compressed else {
        return ApiError::internal("could not compress the response body").into_response();
    };
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(compressed))
}

/// True when `Accept-Encoding` lists `gzip` (or `*`) without `q=0`.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// A 200/204 JSON response from ready-made bytes.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// `{"results":[...]}` for the name listings (spec §1.10).
pub fn results_response(names: &[String]) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "results": names }))
        .unwrap_or_else(|e| panic!("BUG: serialising strings failed: {e}"));
    json_response(StatusCode::OK, body)
}

/// Every failure answer: a status and KairosDB's error body (spec §1.1.2).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<String>,
    /// Seconds for `Retry-After` (back-pressure).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errors: vec![message.into()],
            retry_after: None,
        }
    }

    /// Several messages, e.g. every ingest validation error (spec §1.4).
    pub fn with_errors(status: StatusCode, errors: Vec<String>) -> ApiError {
        ApiError {
            status,
            errors,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// The one mapping from storage errors to HTTP, explicit per variant.
impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        let message = e.to_string();
        match e {
            StorageError::InvalidInput(_) | StorageError::TooManyPoints { .. } => {
                ApiError::bad_request(message)
            }
            StorageError::Backpressure { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            },
            StorageError::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
            StorageError::Unavailable {
                retry_after_secs, ..
            } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            },
            StorageError::InsufficientStorage(_) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, message)
            }
            StorageError::Unsupported(_) => ApiError::new(StatusCode::NOT_IMPLEMENTED, message),
            StorageError::Poisoned(_) | StorageError::Corruption(_) | StorageError::Internal(_) => {
                ApiError::internal(message)
            }
        }
    }
}

impl From<body::BodyError> for ApiError {
    fn from(e: body::BodyError) -> ApiError {
        let status = match e {
            body::BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            body::BodyError::BadGzip(_) | body::BodyError::Read(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<kairosdb_query::QueryError> for ApiError {
    fn from(e: kairosdb_query::QueryError) -> ApiError {
        match e {
            kairosdb_query::QueryError::Invalid(m) | kairosdb_query::QueryError::Limit(m) => {
                ApiError::bad_request(m)
            }
            // Deliberate difference: KairosDB answers these (a `sampling` of 0, `percentile`
            // above 1, `rate` over equal timestamps) with 500; they are the query's fault.
            kairosdb_query::QueryError::Failed(m) => ApiError::bad_request(m),
            // Nobody reads this answer; 499 is what proxies log for a client that left.
            kairosdb_query::QueryError::Cancelled => ApiError::new(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "query cancelled: the client disconnected",
            ),
            kairosdb_query::QueryError::Storage(s) => ApiError::from(s),
        }
    }
}

/// A query stopped by `killquery`: 500, as KairosDB answers a query whose thread was
/// interrupted (`MetricsResource`'s `catch (Exception e)`), see `admin.rs`.
impl From<admin::Killed> for ApiError {
    fn from(e: admin::Killed) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("request task failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, errors = ?self.errors, "request failed");
        }
        let errors: Vec<String> = self.errors.into_iter().map(excerpt).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "errors": errors }))
            .unwrap_or_else(|e| panic!("BUG: serialising strings failed: {e}"));
        let mut response = json_response(self.status, body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Longest error message answered, in characters.
const MAX_ERROR_CHARS: usize = 400;

/// An error message of at most [`MAX_ERROR_CHARS`] characters: messages that quote the
/// input (Gson's `Not a JSON Object: <the whole body>`, spec §4.1) keep their start and
/// say how long they were, instead of echoing megabytes back (issue 22).
fn excerpt(message: String) -> String {
    let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_CHARS) else {
        return message;
    };
    format!("{}… ({} bytes in all)", &message[..cut], message.len())
}

/// Runs a storage call on a blocking thread, inside the caller's trace span.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await?
}

/// Milliseconds since the epoch, for relative query times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;

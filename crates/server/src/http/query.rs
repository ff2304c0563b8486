//! Endpoints that take a KairosDB query body (spec §1.6–§1.8, §4):
//!
//! * `POST /api/v1/datapoints/query` and `GET ...?query=<urlencoded json>`:
//!   `parse_query_request` → `kairosdb_query::execute` per metric → `write_query_response` → 200
//!   (see [`run_query`] for concurrency, limits, cancellation and `cache_time`);
//! * `POST /api/v1/datapoints/query/tags`: the tag sets of the matching series, answered
//!   from `Storage::series_keys` (the index) without reading points, so Grafana's
//!   `start_absolute: 0` tag lookups stay cheap (user-needs §2.5);
//! * `POST /api/v1/datapoints/delete`: deletes what the query matches → 204; also
//!   `DELETE /api/v1/datapoints/query` with the same body (see [`delete`]).
//!
//! Parse errors, `QueryError::Invalid` and the point/time limits → 400 with the single
//! KairosDB message; storage failures → 500 (503 under back-pressure).
//!
//! Small work stays on the async worker that owns the connection ([`INLINE_BODY_BYTES`],
//! [`INLINE_WORK_POINTS`], [`INLINE_RESPONSE_WEIGHT`]): handing a query that reads a few
//! hundred points to the blocking pool and back cost more server CPU than the query
//! itself (thread wake-ups on both sides; single-groupby-1-1-1 in docs/benchmarks.md).
//! Bigger work, and every read of a backend that reads over the network, runs on the
//! blocking pool.
//!
//! Each request is timed for `kairosdb.http.request_time` and each metric query that
//! completes for `kairosdb.http.query_time` and `kairosdb.datastore.*` (spec §11.1,
//! `metrics::Tallies`; written by `self_metrics.rs`).
//!
//! Not here: the response is rendered whole in memory before the first byte is sent (no
//! temp file, unlike KairosDB, spec §4.8), so a failing metric query or a NaN never
//! produces a truncated 200; `query_max_points` and `query_concurrency` bound that memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use tokio::task::JoinSet;
use tracing::field::Empty;

use kairosdb_model::{
    Coverage, DeleteRequest, MetricQuery, QueryRequest, QueryResult, SeriesKey, Storage,
    StorageError,
};
use kairosdb_protocol::query::parse_query_request;
use kairosdb_protocol::response::{join_query_results, write_query_result, write_tags_response};
use kairosdb_query::{Budget, Executed, QueryError};

use super::admin::{InFlight, Killed};
use super::body;
use super::{blocking, json_response, now_ms, ApiError, AppState, State};
use crate::metrics::ServerMetrics;
use crate::query_cache::CachedStorage;

/// Query bodies up to this size are parsed on the async worker (a few microseconds).
const INLINE_BODY_BYTES: usize = 16 * 1024;

/// A metric query is first tried on the async worker with this work limit (stored points
/// decoded or produced, see `SeriesQuery::work_limit`): about 0.1 ms of decoding and
/// aggregation. A query that needs more stops at the limit (`Executed::OverWorkLimit`)
/// and runs on the blocking pool.
const INLINE_WORK_POINTS: u64 = 32 * 1024;

/// The metric queries of one request stop being tried on the async worker once they have
/// taken this long together; the rest run on the blocking pool.
pub(super) const INLINE_TIME: Duration = Duration::from_millis(1);

/// Responses up to this weight (values, plus 16 per result group for its name and tags)
/// are written on the async worker.
const INLINE_RESPONSE_WEIGHT: usize = 16 * 1024;

/// KairosDB's `request` tag values of `kairosdb.http.request_time` (spec §11.1); it times
/// only the first, the other two are our addition.
const QUERY_URL: &str = "/datapoints/query";

/// Marks a cluster's partial answer (beside `is_partial` in the body).
pub const PARTIAL_HEADER: &str = "x-kairosdb-partial";
const TAGS_URL: &str = "/datapoints/query/tags";
const DELETE_URL: &str = "/datapoints/delete";

/// Records a query-class request for `kairosdb.http.request_time`: `status=success` for a
/// 2xx answer, `failed` for an error.
fn timed(
    state: &AppState,
    request: &'static str,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let tallies = &state.metrics.tallies;
    tallies.request_done(request, result.is_ok(), started.elapsed());
    result
}

pub async fn query_post(
    axum::extract::State(state): State,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let deny = deny_partial(&state, &uri);
    let result = match read_query_body(&state, &headers, body).await {
        Ok(body) => run_query(state.clone(), body, started, deny).await,
        Err(e) => Err(e),
    };
    timed(&state, QUERY_URL, started, result)
}

pub async fn query_get(axum::extract::State(state): State, uri: Uri) -> Result<Response, ApiError> {
    let started = Instant::now();
    let deny = deny_partial(&state, &uri);
    let result = match query_param(&uri) {
        Ok(json) => run_query(state.clone(), json.into_bytes(), started, deny).await,
        Err(e) => Err(e),
    };
    timed(&state, QUERY_URL, started, result)
}

/// Cluster mode: is a partial answer an error for this request? `deny_partial_response`
/// in the configuration, or `?deny_partial_response=true` (VictoriaMetrics' parameter).
fn deny_partial(state: &AppState, uri: &Uri) -> bool {
    state.config.deny_partial_response
        || uri.query().is_some_and(|q| {
            q.split('&').any(|pair| {
                matches!(
                    pair.split_once('='),
                    Some(("deny_partial_response", "true" | "1"))
                )
            })
        })
}

/// The `query` parameter of `GET /api/v1/datapoints/query`.
fn query_param(uri: &Uri) -> Result<String, ApiError> {
    let params = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    params
        .0
        .into_iter()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("query json must not be null or empty"))
}

/// Runs every metric query of one request and answers 200 with all results, or the error
/// of the first failing metric query in request order.
///
/// * **Concurrency** (spec §4.4 step 1, user-needs §1.1): each metric query runs on the
///   blocking pool as soon as it gets one of the `query_concurrency` server-wide
///   [`AppState::query_slots`]; results are put back in request order. Deviation from
///   KairosDB, which runs the metric queries of one request one after another (§4.8,
///   `kairosdb/kairosdb#300`).
/// * **Limits**: a [`Budget`] from `query_max_points` and `query_time_limit_secs` (deadline
///   counted from the arrival of the request), checked by `kairosdb-query` and before each
///   metric query starts. When the deadline passes the request is answered at once, even
///   if a storage read is still running. Deviation: 400 instead of KairosDB's 500, since
///   the client has to change the query (user-needs §1.2).
/// * **Cancellation**: [`CancelOnDrop`] sets the budget's `cancelled` flag when this future
///   is dropped (the client disconnected, see `serve.rs`) or returns, so running metric
///   queries stop at their next check and queued ones never start.
/// * **`cache_time`**: reads go through [`CachedStorage`] (`query_cache.rs`).
/// * **Admin API**: the request is in [`AppState::running`] while its metric queries
///   execute; `killquery` sets the same cancelled flag and answers the client with 500
///   ([`Killed`], `admin.rs`).
async fn run_query(
    state: Arc<AppState>,
    body: Vec<u8>,
    started: Instant,
    deny_partial: bool,
) -> Result<Response, ApiError> {
    let cancel = CancelOnDrop::new(state.metrics.clone());
    let span = tracing::debug_span!("query.parse", bytes = body.len(), metric_queries = Empty);
    let (request, body) = if body.len() <= INLINE_BODY_BYTES {
        (span.in_scope(|| parse(&body))?, body)
    } else {
        let span = span.clone();
        blocking(move || span.in_scope(|| parse(&body)).map(|r| (r, body))).await?
    };
    span.record("metric_queries", request.metrics.len());
    let budget = state.config.query_budget(started, cancel.flag.clone());
    let registered = state
        .running
        .register(body, request.metrics.len(), cancel.flag.clone());
    let results = execute_all(&state, request, budget, registered.entry.clone()).await;
    cancel.finished();
    // A killed request's metric queries may end in `Cancelled` before the kill signal is
    // seen: the answer is the kill's either way.
    let killed = registered.entry.was_killed();
    drop(registered);
    let parts = results.map_err(|e| if killed { Killed.into() } else { e })?;
    let partial = parts
        .iter()
        .filter_map(Part::coverage)
        .reduce(Coverage::worst);
    if let (Some(c), true) = (partial, deny_partial) {
        return Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "partial response denied: {} of {} workers responded",
                    c.responding_nodes, c.total_nodes
                ),
            )
        });
    }
    let weight: usize = parts.iter().map(Part::weight).sum();
    let render = move || {
        let _span = tracing::debug_span!("query.render").entered();
        // Rendered in request order, so the first value JSON cannot hold (NaN, Infinity)
        // is the one reported, as when the whole response is written at once.
        let mut rendered = Vec::with_capacity(parts.len());
        for part in parts {
            rendered.push(part.render().map_err(ApiError::internal)?);
        }
        let mut out = Vec::with_capacity(rendered.iter().map(Vec::len).sum::<usize>() + 16);
        join_query_results(&mut out, rendered.iter().map(Vec::as_slice), partial);
        let mut response = json_response(StatusCode::OK, out);
        if partial.is_some() {
            response
                .headers_mut()
                .insert(PARTIAL_HEADER, axum::http::HeaderValue::from_static("true"));
        }
        Ok(response)
    };
    if weight <= INLINE_RESPONSE_WEIGHT {
        render()
    } else {
        blocking(render).await
    }
}

/// One metric query's answer: its result, or (for a big one, rendered on the blocking
/// thread that ran the query, so the metric queries of a request render in parallel)
/// its `queries[]` element or the rendering error.
enum Part {
    Result(QueryResult),
    Rendered(Result<Vec<u8>, String>, Option<Coverage>),
}

impl Part {
    /// Results above this weight are rendered where they were computed.
    const RENDER_THERE: usize = 1024;

    /// What writing the part as JSON still costs, in [`INLINE_RESPONSE_WEIGHT`] units
    /// (values, plus 16 per result group for its name and tags).
    fn weight(&self) -> usize {
        match self {
            Part::Result(r) => r.results.iter().map(|g| g.ts.len() + 16).sum(),
            Part::Rendered(..) => 0,
        }
    }

    /// Set when a cluster answered this metric query partially.
    fn coverage(&self) -> Option<Coverage> {
        match self {
            Part::Result(r) => r.coverage,
            Part::Rendered(_, coverage) => *coverage,
        }
    }

    /// The result of a metric query that ran on the blocking pool.
    fn from_pool(result: QueryResult) -> Part {
        let part = Part::Result(result);
        if part.weight() > Part::RENDER_THERE {
            let coverage = part.coverage();
            Part::Rendered(part.render(), coverage)
        } else {
            part
        }
    }

    fn render(self) -> Result<Vec<u8>, String> {
        match self {
            Part::Result(r) => {
                let mut out = Vec::new();
                write_query_result(&mut out, &r)?;
                Ok(out)
            }
            Part::Rendered(bytes, _) => bytes,
        }
    }
}

/// Sets the request's cancellation flag when dropped. Dropped without
/// [`finished`](CancelOnDrop::finished) means nobody waits for the answer any more; that
/// is counted in `kairosdb_http_queries_cancelled_total`.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    metrics: Arc<ServerMetrics>,
    finished: bool,
}

impl CancelOnDrop {
    fn new(metrics: Arc<ServerMetrics>) -> CancelOnDrop {
        CancelOnDrop {
            flag: Arc::new(AtomicBool::new(false)),
            metrics,
            finished: false,
        }
    }

    /// The answer is decided; metric queries still running (after an error) can stop.
    fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Relaxed);
        if !self.finished {
            ServerMetrics::add(&self.metrics.queries_cancelled, 1);
        }
    }
}

/// What every metric query of one request shares.
struct RequestContext {
    storage: Arc<dyn Storage>,
    request: QueryRequest,
    now_ms: i64,
    budget: Budget,
    /// Which metric queries run, for `runningqueries`.
    running: Arc<InFlight>,
    metrics: Arc<ServerMetrics>,
}

impl RequestContext {
    /// One metric query, on a blocking thread that holds a query slot (without a work
    /// limit, so it runs to the end).
    fn run(&self, i: usize, metric: &MetricQuery) -> Result<Part, QueryError> {
        let started = Instant::now();
        self.running.start(i);
        let result = self
            .run_within(metric, &self.budget)
            .map(Executed::expect_complete);
        self.running.stop(i, false);
        let result = result?;
        let executed = started.elapsed();
        let sample_size = result.sample_size;
        let part = Part::from_pool(result);
        self.record(i, metric, started.elapsed(), executed, sample_size);
        Ok(part)
    }

    /// A metric query that completed, for `kairosdb.http.query_time` (`http`: its start
    /// to its result, rendered when rendered here) and `kairosdb.datastore.*`
    /// (`executed`: read and aggregation). `query_index` is 1-based, as in KairosDB.
    fn record(
        &self,
        i: usize,
        metric: &MetricQuery,
        http: Duration,
        executed: Duration,
        sample_size: u64,
    ) {
        let tallies = &self.metrics.tallies;
        tallies.metric_query_done(&metric.name, i + 1, http, executed, sample_size);
    }

    /// One metric query on the async worker: `Ok(None)` when it needs more work than
    /// [`INLINE_WORK_POINTS`] (or the backend cannot read without blocking), and has to
    /// run on the blocking pool instead.
    fn try_inline(
        &self,
        i: usize,
        metric: &MetricQuery,
    ) -> Result<Option<QueryResult>, QueryError> {
        let budget = Budget {
            work_limit: Some(INLINE_WORK_POINTS),
            ..self.budget.clone()
        };
        let started = Instant::now();
        self.running.start(i);
        let result = self.run_within(metric, &budget);
        let over_limit = matches!(result, Ok(Executed::OverWorkLimit));
        self.running.stop(i, over_limit);
        match result? {
            Executed::Complete(result) => {
                let took = started.elapsed();
                self.record(i, metric, took, took, result.sample_size);
                Ok(Some(result))
            }
            Executed::OverWorkLimit => Ok(None),
        }
    }

    fn run_within(&self, metric: &MetricQuery, budget: &Budget) -> Result<Executed, QueryError> {
        let span = tracing::debug_span!(
            "query.metric",
            metric = %metric.name,
            sample_size = Empty,
            over_work_limit = Empty,
            otel.status_code = Empty,
        );
        let _entered = span.enter();
        // A request that was cancelled or ran out of time while this query waited for its
        // slot does not start it.
        budget.check(0)?;
        let ctx = kairosdb_query::Context {
            range: self.request.range,
            time_zone: self.request.time_zone.as_deref(),
            now_ms: self.now_ms,
            budget,
        };
        let executed = kairosdb_query::execute(&*self.storage, &ctx, metric);
        match &executed {
            Ok(Executed::Complete(r)) => span.record("sample_size", r.sample_size),
            Ok(Executed::OverWorkLimit) => span.record("over_work_limit", true),
            Err(_) => span.record("otel.status_code", "ERROR"),
        };
        executed
    }
}

/// Runs the metric queries of `request` and returns their results in request order, or the
/// first error in request order.
///
/// Small queries first, one after another on this async worker, without a slot: each is
/// tried with a work limit, and the first that stops at it, and every later one once
/// `state.inline_time` ([`INLINE_TIME`]) has passed, runs on the blocking pool instead.
/// Reads through the `cache_time` cache never run here (an identical read may be loading
/// on another thread, and waiting for it would block the worker).
///
/// The rest run concurrently (bounded by the server-wide slots). Slots are taken in
/// request order, one at a time, while finished queries are collected, so the queries
/// that the answer waits for first start first and an early error answers at once.
/// Dropping this future (early answer, disconnect) detaches the running queries, which
/// then see the cancelled flag; queries without a slot never start.
async fn execute_all(
    state: &AppState,
    mut request: QueryRequest,
    budget: Budget,
    running: Arc<InFlight>,
) -> Result<Vec<Part>, ApiError> {
    let cached = state.query_cache.is_some() && request.cache_time > 0;
    let storage: Arc<dyn Storage> = match &state.query_cache {
        Some(cache) if cached => Arc::new(CachedStorage::new(
            state.storage.clone(),
            cache.clone(),
            Duration::from_secs(request.cache_time.into()),
        )),
        _ => state.storage.clone(),
    };
    let metrics = std::mem::take(&mut request.metrics);
    let n = metrics.len();
    let deadline = budget
        .deadline
        .map(|(d, _)| tokio::time::Instant::from_std(d));
    let shared = Arc::new(RequestContext {
        storage,
        request,
        now_ms: now_ms(),
        budget,
        running,
        metrics: state.metrics.clone(),
    });
    let killed = shared.running.kill_signal.notified();
    tokio::pin!(killed);

    let mut results: Vec<Option<Part>> = Vec::with_capacity(n);
    let mut metrics = metrics.into_iter();
    if !cached {
        let inline_started = Instant::now();
        while inline_started.elapsed() < state.inline_time {
            let Some(metric) = metrics.as_slice().first() else {
                break;
            };
            // Every query before this one succeeded: its error is the first in order.
            let Some(result) = shared.try_inline(results.len(), metric)? else {
                break;
            };
            results.push(Some(Part::Result(result)));
            metrics.next();
        }
    }
    let done_inline = results.len();
    let mut to_start = metrics.enumerate().map(|(i, m)| (i + done_inline, m));
    results.resize_with(n, || None);
    let mut waiting = to_start.next();
    // One pending acquire, kept across loop turns so the request keeps its place in the
    // semaphore's FIFO queue.
    let mut acquire = Box::pin(state.query_slots.clone().acquire_owned());
    let mut running = JoinSet::new();
    let far_future = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let timeout = tokio::time::sleep_until(deadline.unwrap_or(far_future));
    tokio::pin!(timeout);

    // The failing metric query with the lowest index so far.
    let mut first_error: Option<(usize, QueryError)> = None;
    loop {
        // Decided once every query before the first error (or every query) has finished.
        let before_error = first_error.as_ref().map_or(n, |(i, _)| *i);
        if results[..before_error].iter().all(Option::is_some) {
            return match first_error {
                Some((_, e)) => Err(e.into()),
                None => Ok(results.into_iter().flatten().collect()),
            };
        }
        tokio::select! {
            // Queries after a known error cannot change the answer: they are not started.
            slot = &mut acquire, if waiting.as_ref().is_some_and(|(i, _)| *i < before_error) => {
                let slot = slot.map_err(|_| ApiError::internal("BUG: query slots closed"))?;
                let Some((i, metric)) = waiting.take() else {
                    unreachable!("guarded by waiting.is_some_and(..)")
                };
                let (shared, span) = (shared.clone(), tracing::Span::current());
                running.spawn_blocking(move || {
                    let result = span.in_scope(|| shared.run(i, &metric));
                    drop(slot);
                    (i, result)
                });
                waiting = to_start.next();
                if waiting.is_some() {
                    acquire = Box::pin(state.query_slots.clone().acquire_owned());
                }
            }
            Some(joined) = running.join_next() => {
                // A panic loses its index; it is a bug either way, answered with a 500.
                let (i, result) = joined?;
                match result {
                    Ok(r) => results[i] = Some(r),
                    Err(e) => {
                        if first_error.as_ref().is_none_or(|(first, _)| i < *first) {
                            first_error = Some((i, e));
                        }
                    }
                }
            }
            // `killquery`: answered at once, even while a storage read is still running.
            // (Guarded like the branches above, so `else` still catches an undecided end.)
            () = &mut killed, if waiting.is_some() || !running.is_empty() => {
                return Err(Killed.into());
            }
            () = &mut timeout, if deadline.is_some() => {
                // The limit's own message (Budget::check is the one place it is worded).
                shared.budget.check(0)?;
                // Not yet by the budget's clock: look again in a moment.
                timeout.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(1));
            }
            else => return Err(ApiError::internal("BUG: metric queries ended undecided")),
        }
    }
}

/// Spec §1.7: one `queries[]` element per metric, each with exactly one result whose `tags`
/// are the union over the matching series (aggregators and group-bys are ignored).
pub async fn query_tags(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = match read_query_body(&state, &headers, body).await {
        Ok(body) => tags_of(state.clone(), body).await,
        Err(e) => Err(e),
    };
    timed(&state, TAGS_URL, started, result)
}

/// Answers on the async worker when the body is small and the storage lists series
/// keys without waiting on I/O (`Storage::series_keys_now`: the embedded engine's
/// index); on the blocking pool otherwise. Handing a lookup of a few hundred series to
/// the pool and back cost more server CPU than the lookup (query-tags in
/// docs/benchmarks.md).
async fn tags_of(state: Arc<AppState>, body: Vec<u8>) -> Result<Response, ApiError> {
    // A small body is parsed here once, whichever side answers.
    let parsed = if body.len() <= INLINE_BODY_BYTES {
        let request = parse(&body)?;
        let now = tag_sets(&request, |m| {
            state
                .storage
                .series_keys_now(&m.name, &m.filter, request.range)
        });
        if let Some(sets) = now {
            return Ok(tags_response(&request, &sets?));
        }
        Some(request)
    } else {
        None
    };
    blocking(move || {
        let request = match parsed {
            Some(request) => request,
            None => parse(&body)?,
        };
        let sets = tag_sets(&request, |m| {
            Some(state.storage.series_keys(&m.name, &m.filter, request.range))
        });
        let sets = sets.expect("every metric answered")?;
        Ok(tags_response(&request, &sets))
    })
    .await
}

/// Tag name → values of the series matching one metric query.
type TagSet = BTreeMap<String, BTreeSet<String>>;

/// The tag set of every metric of `request`, from the series keys `keys_of` lists for
/// it; `None` as soon as `keys_of` answers none.
fn tag_sets(
    request: &QueryRequest,
    mut keys_of: impl FnMut(&MetricQuery) -> Option<Result<Vec<SeriesKey>, StorageError>>,
) -> Option<Result<Vec<TagSet>, ApiError>> {
    let mut sets = Vec::with_capacity(request.metrics.len());
    for metric in &request.metrics {
        let keys = match keys_of(metric)? {
            Ok(keys) => keys,
            Err(e) => return Some(Err(e.into())),
        };
        // Borrowed while the series are walked; each distinct name and value is copied
        // once at the end, not once a series (docs/benchmarks.md, "query/tags").
        let mut borrowed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for key in &keys {
            for (name, value) in key.tags.iter() {
                borrowed.entry(name).or_default().insert(value);
            }
        }
        let tags: TagSet = borrowed
            .into_iter()
            .map(|(name, values)| {
                let values = values.into_iter().map(str::to_owned).collect();
                (name.to_owned(), values)
            })
            .collect();
        sets.push(tags);
    }
    Some(Ok(sets))
}

fn tags_response(request: &QueryRequest, sets: &[TagSet]) -> Response {
    let results: Vec<_> = request
        .metrics
        .iter()
        .zip(sets)
        .map(|(m, tags)| (m.name.as_str(), tags))
        .collect();
    let mut out = Vec::new();
    write_tags_response(&mut out, &results);
    json_response(StatusCode::OK, out)
}

/// Spec §1.8: every point of every matching series inside the query range is deleted.
///
/// Also answers `DELETE /api/v1/datapoints/query` (same body, status and errors; DELETE
/// class for `server_type`): an addition from issue 18's compatibility matrix; KairosDB
/// 1.3 has no such method there and answers 405.
pub async fn delete(
    axum::extract::State(state): State,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = match read_query_body(&state, &headers, body).await {
        Ok(body) => delete_matching(state.clone(), body).await,
        Err(e) => Err(e),
    };
    timed(&state, DELETE_URL, started, result)
}

async fn delete_matching(state: Arc<AppState>, body: Vec<u8>) -> Result<Response, ApiError> {
    blocking(move || {
        let request = parse(&body)?;
        for metric in request.metrics {
            state.delete(&DeleteRequest {
                metric: metric.name,
                filter: metric.filter,
                range: request.range,
                shard: None,
                exact: false,
            })?;
        }
        Ok(json_response(StatusCode::NO_CONTENT, Vec::new()))
    })
    .await
}

fn parse(body: &[u8]) -> Result<QueryRequest, ApiError> {
    // Deliberate difference: KairosDB answers some bodies with 500 (valid JSON that is not
    // an object, `metrics` that is not an array, a bad tag regex); every body it refuses
    // is the client's mistake here, a 400.
    parse_query_request(body, now_ms()).map_err(|e| ApiError::bad_request(e.message()))
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

#[cfg(test)]
mod tests;

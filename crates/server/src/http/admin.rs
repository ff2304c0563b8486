//! The Admin API (spec §1.15, KairosDB's `AdminResource`): the scheduled background jobs,
//! the metric queries running right now, and killing one of them by its hash. Also the
//! registry of in-flight queries that `query.rs` fills. Not gated by `server_type`
//! (spec §1.1.3).
//!
//! * `GET /api/v1/admin/scheduledjobs` → 200, a JSON array of job id strings: the
//!   background jobs this process really runs (KairosDB lists its Quartz job ids; ours are
//!   threads and tasks, named by what they do, see [`scheduled_jobs`]).
//! * `GET /api/v1/admin/runningqueries` → 200,
//!   `{"queries":[{"query hash":..,"metric name":..,"query JSON":{..}}],"queries waiting":N}`:
//!   one entry per metric query that is executing (KairosDB: that holds one of the
//!   `concurrentQueryThreads` permits); `query JSON` is the whole request body, as
//!   KairosDB's `QueryMetric.getJsonObj()` is; `queries waiting` counts the metric queries
//!   of live requests still waiting for a query slot (KairosDB: the semaphore's queue).
//! * `GET /api/v1/admin/killquery/{hash}` → 204 whether or not a query has that hash
//!   (KairosDB interrupts the thread if there is one and says nothing otherwise). Every
//!   live request with a metric query of that hash is stopped: its running metric queries
//!   see the cancelled flag of the disconnect mechanism (`query.rs`, `CancelOnDrop`), the
//!   queued ones never start, and its client is answered at once with **500**
//!   `{"errors":["query killed ..."]}` ([`Killed`]): KairosDB's interrupted query thread
//!   ends in the resource's `catch (Exception e)`, which answers 500.
//!
//! The hash is KairosDB's: the MD5, in hex, of its cache string (spec §4.4: start/end
//! fields, metric name, sorted filter tags), so it is equal for identical metric queries.
//! Deviation: two requests with the same metric query share a hash (KairosDB runs them one
//! after the other instead), and a kill stops both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use super::extract::ApiPath;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{json_response, AppState, State};
use crate::config::{Datastore, WalSyncPolicy};

/// `GET /api/v1/admin/scheduledjobs`.
pub async fn scheduled_jobs_handler(axum::extract::State(state): State) -> Response {
    let body = serde_json::to_vec(&scheduled_jobs(&state))
        .unwrap_or_else(|e| panic!("BUG: serialising strings failed: {e}"));
    json_response(StatusCode::OK, body)
}

/// The background jobs this process runs, from the same settings that start them
/// (`kairosdb_engine::Engine::open`, `DeliveryQueue::open`, `main.rs`).
///
/// Then, as KairosDB lists its roll-up jobs (by task id), the roll-up tasks this process
/// runs (`rollup/scheduler.rs`).
pub fn scheduled_jobs(state: &AppState) -> Vec<String> {
    let config = &state.config;
    let mut jobs: Vec<&str> = Vec::new();
    match config.datastore {
        Datastore::Embedded => {
            // Thread `kairos-maint`: seal the head into blocks, compact, expire TTLs.
            jobs.push("kairosdb.engine.maintenance");
            if config.wal_sync == WalSyncPolicy::Interval {
                // Thread `kairos-wal-sync`: group fsync every `wal_sync_interval_ms`.
                jobs.push("kairosdb.engine.wal_sync");
            }
        }
        // Thread `kairos-queue`: delivers the durable local queue to Cassandra.
        Datastore::Cassandra => jobs.push("kairosdb.queue.delivery"),
    }
    if state.prometheus.is_some() {
        jobs.push("kairosdb.metrics.prometheus_upkeep");
    }
    let mut jobs: Vec<String> = jobs.into_iter().map(str::to_owned).collect();
    jobs.extend(
        state
            .rollups
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    jobs
}

/// `GET /api/v1/admin/runningqueries`.
pub async fn running_queries(axum::extract::State(state): State) -> Response {
    let (queries, waiting) = state.running.list();
    let body = json!({ "queries": queries, "queries waiting": waiting });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// `GET /api/v1/admin/killquery/{hash}`.
pub async fn kill_query(
    axum::extract::State(state): State,
    ApiPath(hash): ApiPath<String>,
) -> Response {
    let killed = state.running.kill(&hash);
    tracing::info!(hash, requests = killed, "killquery");
    json_response(StatusCode::NO_CONTENT, Vec::new())
}

/// The answer of a request stopped by `killquery` (mapped to 500 in `mod.rs`).
#[derive(Debug)]
pub struct Killed;

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query killed by /api/v1/admin/killquery")
    }
}

/// Where a metric query of a registered request is.
const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// One query request in flight: its body (the `query JSON`, parsed again only when the
/// list is asked for, so the query path pays a lock and a few atomics, nothing more).
pub struct InFlight {
    body: Vec<u8>,
    metrics: Vec<AtomicU8>,
    /// The request's budget flag, shared with `CancelOnDrop`.
    cancel: Arc<AtomicBool>,
    killed: AtomicBool,
    /// Wakes the request's `execute_all` so the client is answered at once.
    pub kill_signal: tokio::sync::Notify,
}

impl InFlight {
    pub fn start(&self, metric: usize) {
        self.set(metric, RUNNING);
    }

    /// A metric query ended (or went back to wait for a slot, `waiting = true`).
    pub fn stop(&self, metric: usize, waiting: bool) {
        self.set(metric, if waiting { WAITING } else { DONE });
    }

    fn set(&self, metric: usize, state: u8) {
        if let Some(s) = self.metrics.get(metric) {
            s.store(state, Ordering::Relaxed);
        }
    }

    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

/// Every query request in flight, by a private id.
#[derive(Default)]
pub struct RunningQueries {
    next_id: AtomicU64,
    requests: Mutex<HashMap<u64, Arc<InFlight>>>,
}

/// Removes its request from the registry when dropped (answer sent, error, disconnect).
pub struct Registered<'a> {
    registry: &'a RunningQueries,
    id: u64,
    pub entry: Arc<InFlight>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl RunningQueries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<InFlight>>> {
        // A panic while holding this lock leaves a consistent map (one insert or remove).
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a parsed request with `metrics` metric queries, all waiting.
    pub fn register(
        &self,
        body: Vec<u8>,
        metrics: usize,
        cancel: Arc<AtomicBool>,
    ) -> Registered<'_> {
        let entry = Arc::new(InFlight {
            body,
            metrics: (0..metrics).map(|_| AtomicU8::new(WAITING)).collect(),
            cancel,
            killed: AtomicBool::new(false),
            kill_signal: tokio::sync::Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, entry.clone());
        Registered {
            registry: self,
            id,
            entry,
        }
    }

    fn snapshot(&self) -> Vec<Arc<InFlight>> {
        self.lock().values().cloned().collect()
    }

    /// The running metric queries (KairosDB's keys) and how many wait for a slot.
    pub fn list(&self) -> (Vec<Value>, usize) {
        let mut queries = Vec::new();
        let mut waiting = 0;
        for request in self.snapshot() {
            let json: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            for (i, state) in request.metrics.iter().enumerate() {
                match state.load(Ordering::Relaxed) {
                    RUNNING => queries.push(json!({
                        "query hash": query_hash(&json, i),
                        "metric name": json["metrics"][i]["name"],
                        "query JSON": json,
                    })),
                    WAITING => waiting += 1,
                    _ => {}
                }
            }
        }
        (queries, waiting)
    }

    /// Stops every request with a metric query (running or waiting) of this hash; returns
    /// how many.
    pub fn kill(&self, hash: &str) -> usize {
        let mut killed = 0;
        for request in self.snapshot() {
            let json: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let matches = (0..request.metrics.len()).any(|i| {
                request.metrics[i].load(Ordering::Relaxed) != DONE && query_hash(&json, i) == hash
            });
            if matches {
                request.killed.store(true, Ordering::Relaxed);
                request.cancel.store(true, Ordering::Relaxed);
                request.kill_signal.notify_one();
                killed += 1;
            }
        }
        killed
    }
}

/// KairosDB's cache string of metric query `i` (spec §4.4 step 2:
/// `[start_absolute:][start_relative:][end_absolute:][end_relative:]<name>:` and
/// `<tag>=<value>:` for every filter tag value, sorted), as the hex MD5 KairosDB answers.
fn query_hash(query: &Value, i: usize) -> String {
    let mut s = String::new();
    for key in [
        "start_absolute",
        "start_relative",
        "end_absolute",
        "end_relative",
    ] {
        if let Some(v) = query.get(key).filter(|v| !v.is_null()) {
            s.push_str(&v.to_string());
            s.push(':');
        }
    }
    let metric = &query["metrics"][i];
    if let Some(name) = metric["name"].as_str() {
        s.push_str(name);
        s.push(':');
    }
    let mut tags: Vec<String> = Vec::new();
    if let Some(map) = metric["tags"].as_object() {
        for (tag, values) in map {
            let values = match values {
                Value::Array(a) => a.clone(),
                v => vec![v.clone()],
            };
            for v in values {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                tags.push(format!("{tag}={v}:"));
            }
        }
    }
    tags.sort();
    s.extend(tags);
    use md5::Digest;
    format!("{:x}", md5::Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_md5_of_kairosdbs_cache_string() {
        let q = serde_json::json!({"start_absolute": 1, "metrics": [{"name": "m", "tags": {"host": "a"}}]});
        // md5("1:m:host=a:")
        assert_eq!(query_hash(&q, 0), "f01a18176b355c8c2da3c2a6fb862fd6");
    }

    #[test]
    fn the_hash_depends_on_range_name_and_tags_but_not_on_aggregators_or_tag_order() {
        let q = |v: Value| query_hash(&v, 0);
        let base = q(
            json!({"start_absolute": 1, "metrics": [{"name": "m", "tags": {"a": ["1", "2"], "b": "x"}}]}),
        );
        let same = q(
            json!({"start_absolute": 1, "metrics": [{"name": "m", "tags": {"b": ["x"], "a": ["2", "1"]}, "aggregators": [{"name": "sum"}]}]}),
        );
        assert_eq!(base, same);
        assert_eq!(base.len(), 32);
        assert_ne!(
            base,
            q(
                json!({"start_absolute": 2, "metrics": [{"name": "m", "tags": {"a": ["1", "2"], "b": "x"}}]})
            )
        );
        assert_ne!(
            base,
            q(
                json!({"start_absolute": 1, "metrics": [{"name": "n", "tags": {"a": ["1", "2"], "b": "x"}}]})
            )
        );
        assert_ne!(
            base,
            q(
                json!({"start_absolute": 1, "metrics": [{"name": "m", "tags": {"a": ["1"], "b": "x"}}]})
            )
        );
    }

    #[test]
    fn a_registered_request_is_listed_while_running_and_forgotten_when_dropped() {
        let registry = RunningQueries::default();
        let body = br#"{"start_absolute":1,"metrics":[{"name":"a"},{"name":"b"}]}"#.to_vec();
        let registered = registry.register(body, 2, Arc::default());
        assert_eq!(registry.list().1, 2);
        registered.entry.start(1);
        let (queries, waiting) = registry.list();
        assert_eq!(waiting, 1);
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0]["metric name"], "b");
        assert_eq!(queries[0]["query JSON"]["metrics"][0]["name"], "a");
        let hash = queries[0]["query hash"].as_str().unwrap().to_owned();
        assert_eq!(registry.kill("no-such-hash"), 0);
        assert!(!registered.entry.was_killed());
        assert_eq!(registry.kill(&hash), 1);
        assert!(registered.entry.was_killed());
        assert!(registered.entry.cancel.load(Ordering::Relaxed));
        drop(registered);
        assert_eq!(registry.list(), (vec![], 0));
    }
}

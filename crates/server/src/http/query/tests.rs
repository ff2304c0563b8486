//! Query execution over HTTP against a scripted storage: request order under concurrency,
//! the server-wide bound, the first error in request order, point and time limits,
//! cancellation on client disconnect, `cache_time`, and small reads on the async worker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::config::{Config, Settings};
use crate::fake_storage::{FakeStorage, QueryHook};
use crate::http::{router, AppState};
use crate::metrics::ServerMetrics;

/// How long any scripted wait may take before the test gives up (and fails).
const PATIENCE: Duration = Duration::from_secs(10);

fn app_state(storage: FakeStorage, settings: Settings) -> (Arc<AppState>, Arc<FakeStorage>) {
    app_state_inline_for(storage, settings, Duration::from_secs(60))
}

/// The state with `inline_time` set: the tests' default is wide enough that a loaded
/// machine never moves a small read to the pool by the clock.
fn app_state_inline_for(
    storage: FakeStorage,
    settings: Settings,
    inline_time: Duration,
) -> (Arc<AppState>, Arc<FakeStorage>) {
    let storage = Arc::new(storage);
    let mut state = AppState::new(
        storage.clone(),
        Arc::new(Config::resolve(settings).unwrap()),
        Arc::new(ServerMetrics::default()),
        None,
    );
    state.inline_time = inline_time;
    (Arc::new(state), storage)
}

fn query(metrics: &[&str], cache_time: u32) -> Request<Body> {
    let metrics: Vec<_> = metrics.iter().map(|m| json!({ "name": m })).collect();
    let body = json!({ "start_absolute": 0, "cache_time": cache_time, "metrics": metrics });
    Request::post("/api/v1/datapoints/query")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn call(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, value)
}

/// The metric names of the `queries[]` of a response, in order.
fn names(v: &serde_json::Value) -> Vec<String> {
    v["queries"]
        .as_array()
        .unwrap_or_else(|| panic!("no queries in {v}"))
        .iter()
        .map(|q| q["results"][0]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `condition` until it holds or `PATIENCE` runs out; returns whether it held.
fn wait_until(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

async fn wait_until_async(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// A latch reads can wait on until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until open (true) or `PATIENCE` ran out (false).
    fn wait(&self) -> bool {
        let guard = self.0 .0.lock().unwrap();
        let (guard, _) = self
            .0
             .1
            .wait_timeout_while(guard, PATIENCE, |open| !*open)
            .unwrap();
        *guard
    }
}

fn hook(f: impl Fn(&str) + Send + Sync + 'static) -> Option<QueryHook> {
    Some(Box::new(move |q| f(&q.metric)))
}

/// A storage answering one point per read, each read held until `gate` opens.
fn gated(gate: &Gate) -> FakeStorage {
    let held = gate.clone();
    FakeStorage {
        points_per_series: 1,
        on_query: hook(move |_| {
            held.wait();
        }),
        ..FakeStorage::default()
    }
}

fn concurrency(n: usize) -> Settings {
    Settings {
        query_concurrency: Some(n),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_back_in_request_order_when_the_first_read_is_slowest() {
    // "slow" returns only after both other reads have returned.
    let fast_done = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let (done, flag) = (fast_done.clone(), overlapped.clone());
    let storage = FakeStorage {
        points_per_series: 2,
        on_query: hook(move |metric| {
            if metric == "slow" {
                flag.store(
                    wait_until(|| done.load(Ordering::SeqCst) == 2),
                    Ordering::SeqCst,
                );
            } else {
                done.fetch_add(1, Ordering::SeqCst);
            }
        }),
        ..FakeStorage::default()
    };
    let (state, _) = app_state(storage, concurrency(3));
    let (status, v) = call(&state, query(&["slow", "fast.1", "fast.2"], 0)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        overlapped.load(Ordering::SeqCst),
        "the metric queries did not run concurrently"
    );
    assert_eq!(names(&v), ["slow", "fast.1", "fast.2"]);
    assert_eq!(v["queries"][0]["sample_size"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_query_concurrency_reads_run_at_once_server_wide() {
    // Each read waits until two reads have started (so a working bound is reached), then
    // lingers so a third one, if the bound leaked, would overlap.
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let storage = FakeStorage {
        points_per_series: 1,
        on_query: hook(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            wait_until(|| counter.load(Ordering::SeqCst) >= 2);
            std::thread::sleep(Duration::from_millis(30));
        }),
        ..FakeStorage::default()
    };
    let (state, storage) = app_state(storage, concurrency(2));
    // Two requests at once share the server-wide bound.
    let (a, b) = tokio::join!(
        call(&state, query(&["a.1", "a.2", "a.3"], 0)),
        call(&state, query(&["b.1", "b.2", "b.3"], 0)),
    );
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::OK, "{}", b.1);
    assert_eq!(names(&a.1), ["a.1", "a.2", "a.3"]);
    assert_eq!(names(&b.1), ["b.1", "b.2", "b.3"]);
    assert_eq!(storage.queried().len(), 6);
    assert_eq!(storage.max_reads_running.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_error_in_request_order_decides() {
    // "bad.first" fails only after "bad.second" has failed.
    let second_failed = Arc::new(AtomicBool::new(false));
    let flag = second_failed.clone();
    let storage = FakeStorage {
        points_per_series: 1,
        fail_metrics: vec!["bad.first", "bad.second"],
        on_query: hook(move |metric| match metric {
            "bad.first" => {
                wait_until(|| flag.load(Ordering::SeqCst));
            }
            "bad.second" => flag.store(true, Ordering::SeqCst),
            _ => {}
        }),
        ..FakeStorage::default()
    };
    let (state, _) = app_state(storage, concurrency(3));
    let (status, v) = call(&state, query(&["ok", "bad.first", "bad.second"], 0)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(v, json!({ "errors": ["disk on fire reading bad.first"] }));
    assert!(second_failed.load(Ordering::SeqCst));
}

#[tokio::test]
async fn the_point_limit_is_a_400_with_kairosdb_text() {
    let limit = |n| Settings {
        query_max_points: Some(n),
        ..Settings::default()
    };
    let five = || FakeStorage::with_points(5);
    let (state, _) = app_state(five(), limit(4));
    let (status, v) = call(&state, query(&["m"], 0)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v,
        json!({ "errors": ["Query exceeded limit of 4 data points"] })
    );
    // Reaching the limit is allowed; 0 means no limit.
    for n in [5, 0] {
        let (state, _) = app_state(five(), limit(n));
        let (status, v) = call(&state, query(&["m"], 0)).await;
        assert_eq!(status, StatusCode::OK, "limit {n}: {v}");
        assert_eq!(v["queries"][0]["sample_size"], 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_answers_at_the_deadline_while_storage_still_reads() {
    let gate = Gate::default();
    let storage = gated(&gate);
    let settings = Settings {
        query_time_limit_secs: Some(1),
        query_concurrency: Some(1),
        ..Settings::default()
    };
    let (state, storage) = app_state(storage, settings);
    let started = Instant::now();
    let (status, v) = call(&state, query(&["stuck", "queued"], 0)).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v,
        json!({ "errors": ["Query exceeded time limit of 1 seconds"] })
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The stuck read returns later; the queued query never starts, and the slot comes back.
    gate.open();
    assert!(wait_until_async(|| state.query_slots.available_permits() == 1).await);
    assert_eq!(storage.queried(), ["stuck"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnect_cancels_the_request() {
    use tokio::io::AsyncWriteExt;

    let gate = Gate::default();
    let storage = gated(&gate);
    let (state, storage) = app_state(storage, concurrency(1));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::http::serve::serve(
        listener,
        router(state.clone()),
        crate::http::serve::Options::plain(Duration::from_secs(60)),
        shutdown.clone(),
    ));

    let body = json!({ "start_absolute": 0, "metrics": [{ "name": "slow" }, { "name": "next" }] })
        .to_string();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/datapoints/query HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(body.as_bytes()).await.unwrap();
    assert!(wait_until_async(|| storage.queried() == ["slow"]).await);
    drop(client);

    // The handler is dropped while the storage read is still blocked...
    let cancelled = || state.metrics.queries_cancelled.load(Ordering::SeqCst) == 1;
    assert!(
        wait_until_async(cancelled).await,
        "the disconnect did not cancel the request"
    );
    assert_eq!(storage.reads_done.load(Ordering::SeqCst), 0);
    // ...and once it returns, the next metric query never starts.
    gate.open();
    assert!(wait_until_async(|| state.query_slots.available_permits() == 1).await);
    assert_eq!(storage.queried(), ["slow"]);
    shutdown.cancel();
}

fn inline_storage(heavy: Vec<&'static str>) -> FakeStorage {
    FakeStorage {
        points_per_series: 3,
        reads_inline: true,
        heavy_metrics: heavy,
        ..FakeStorage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_reads_run_inline_in_order_and_a_big_one_moves_the_rest_to_the_pool() {
    use super::INLINE_WORK_POINTS;
    let limited = Some(INLINE_WORK_POINTS);
    // Every read fits: all three run on the worker, each with the inline work limit.
    let (state, storage) = app_state(inline_storage(vec![]), Settings::default());
    let (status, all_inline) = call(&state, query(&["a", "b", "c"], 0)).await;
    assert_eq!(status, StatusCode::OK, "{all_inline}");
    assert_eq!(names(&all_inline), ["a", "b", "c"]);
    assert_eq!(*storage.work_limits.lock().unwrap(), [limited; 3]);
    assert_eq!(storage.refused.load(Ordering::SeqCst), 0);

    // "big" stops at the limit: it and every later read run again without one.
    let (state, storage) = app_state(inline_storage(vec!["big"]), Settings::default());
    let (status, v) = call(&state, query(&["a", "big", "c"], 0)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(names(&v), ["a", "big", "c"]);
    assert_eq!(*storage.work_limits.lock().unwrap(), [limited, None, None]);
    // "a" ran inline first; "big" and "c" then run concurrently on the pool, in either order.
    let mut queried = storage.queried();
    assert_eq!(queried[0], "a");
    queried[1..].sort();
    assert_eq!(queried, ["a", "big", "c"]);
    assert_eq!(storage.refused.load(Ordering::SeqCst), 1);
    assert_eq!(v["queries"][2], all_inline["queries"][2]);

    // A backend that reads over the network refuses the first attempt only.
    let (state, storage) = app_state(FakeStorage::with_points(3), Settings::default());
    let (status, v) = call(&state, query(&["a", "b", "c"], 0)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, all_inline);
    assert_eq!(*storage.work_limits.lock().unwrap(), [None; 3]);
    assert_eq!(storage.refused.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_inline_time_is_spent_the_reads_run_on_the_pool_without_a_limit() {
    let (state, storage) =
        app_state_inline_for(inline_storage(vec![]), Settings::default(), Duration::ZERO);
    let (status, v) = call(&state, query(&["a", "b", "c"], 0)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(names(&v), ["a", "b", "c"]);
    assert_eq!(*storage.work_limits.lock().unwrap(), [None; 3]);
    assert_eq!(storage.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_inline_error_answers_at_once_and_later_reads_never_start() {
    let storage = FakeStorage {
        fail_metrics: vec!["b"],
        ..inline_storage(vec![])
    };
    let (state, storage) = app_state(storage, Settings::default());
    let (status, v) = call(&state, query(&["a", "b", "c"], 0)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(v, json!({ "errors": ["disk on fire reading b"] }));
    assert_eq!(storage.queried(), ["a", "b"]);
}

#[tokio::test]
async fn reads_through_the_cache_never_run_inline() {
    let (state, storage) = app_state(inline_storage(vec![]), Settings::default());
    assert!(state.query_cache.is_some());
    let (status, v) = call(&state, query(&["a", "b"], 60)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(*storage.work_limits.lock().unwrap(), [None, None]);
    assert_eq!(storage.refused.load(Ordering::SeqCst), 0);
}

/// Big results are rendered on the blocking threads that computed them, small ones at the
/// end; either way the response is the same, and the reported rendering error is the
/// first in request order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_rendered_on_the_pool_join_into_the_same_response() {
    for points in [3, 5_000] {
        let storage = FakeStorage::with_points(points);
        let (state, _) = app_state(storage, concurrency(3));
        let (status, v) = call(&state, query(&["a", "b", "c"], 0)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(names(&v), ["a", "b", "c"]);
        let values = v["queries"][2]["results"][0]["values"].as_array().unwrap();
        assert_eq!(values.len(), points);
        assert_eq!(values[points - 1], json!([points, points]));
    }
    // Two results that cannot be written (a NaN), both rendered on the pool: the error
    // is the first one's, in KairosDB's words.
    let storage = FakeStorage {
        points_per_series: 5_000,
        nan_metrics: vec!["nan.first", "nan.second"],
        ..FakeStorage::default()
    };
    let (state, storage) = app_state(storage, concurrency(3));
    let (status, v) = call(&state, query(&["ok", "nan.second", "nan.first"], 0)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        v,
        json!({ "errors": [
            "NaN or Infinity:NaN data point=DoubleDataPoint{m_timestamp=2, m_value=NaN}"
        ] })
    );
    assert_eq!(storage.queried().len(), 3);
}

#[tokio::test]
async fn cache_time_reuses_identical_reads_until_a_delete() {
    let storage = FakeStorage::with_points(3);
    let (state, storage) = app_state(storage, Settings::default());
    // The same read twice in one request, then again in a second request: one storage read.
    for _ in 0..2 {
        let (status, v) = call(&state, query(&["m", "m"], 60)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["queries"][1]["sample_size"], 3);
    }
    assert_eq!(storage.queried(), ["m"]);
    // Without cache_time storage is read every time.
    call(&state, query(&["m"], 0)).await;
    assert_eq!(storage.queried().len(), 2);
    // A delete empties the cache.
    let delete = Request::post("/api/v1/datapoints/delete")
        .body(Body::from(
            json!({ "start_absolute": 0, "metrics": [{ "name": "m" }] }).to_string(),
        ))
        .unwrap();
    let response = router(state.clone()).oneshot(delete).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    call(&state, query(&["m"], 60)).await;
    assert_eq!(storage.queried().len(), 3);
}

#[tokio::test]
async fn query_cache_mb_0_turns_the_cache_off() {
    let storage = FakeStorage::with_points(1);
    let settings = Settings {
        query_cache_mb: Some(0),
        ..Settings::default()
    };
    let (state, storage) = app_state(storage, settings);
    assert!(state.query_cache.is_none());
    call(&state, query(&["m"], 60)).await;
    call(&state, query(&["m"], 60)).await;
    assert_eq!(storage.queried().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killquery_answers_the_running_query_at_once_with_500_and_removes_it_from_the_list() {
    let gate = Gate::default();
    let storage = gated(&gate);
    let (state, storage) = app_state(storage, concurrency(1));
    let request = query(&["stuck", "queued"], 0);
    let running = tokio::spawn({
        let state = state.clone();
        async move { call(&state, request).await }
    });
    assert!(wait_until_async(|| storage.queried() == ["stuck"]).await);

    let list = || async {
        let request = Request::get("/api/v1/admin/runningqueries")
            .body(Body::empty())
            .unwrap();
        call(&state, request).await
    };
    let (status, v) = list().await;
    assert_eq!(status, StatusCode::OK);
    let queries = v["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 1, "{v}");
    assert_eq!(queries[0]["metric name"], "stuck");
    assert_eq!(queries[0]["query JSON"]["metrics"][1]["name"], "queued");
    assert_eq!(v["queries waiting"], 1, "{v}");
    let hash = queries[0]["query hash"].as_str().unwrap();

    let kill = Request::get(format!("/api/v1/admin/killquery/{hash}"))
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(kill).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Answered while the storage read is still blocked.
    let (status, v) = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the killed query was not answered")
        .unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        v,
        json!({ "errors": ["query killed by /api/v1/admin/killquery"] })
    );
    assert_eq!(storage.reads_done.load(Ordering::SeqCst), 0);
    assert_eq!(
        list().await.1,
        json!({ "queries": [], "queries waiting": 0 })
    );
    // The read returns later; the queued metric query never starts.
    gate.open();
    assert!(wait_until_async(|| state.query_slots.available_permits() == 1).await);
    assert_eq!(storage.queried(), ["stuck"]);
}

/// Issue 22: where KairosDB answers a query's own mistake with a 500 (an `sma` `size` of 0,
/// a `sampling` value of 0, a `filter` without `filter_op`, a `percentile` above 1), the
/// answer is a 400 with a message that says why (README, deliberate differences).
#[tokio::test]
async fn aggregator_mistakes_kairosdb_answers_with_500_are_400s() {
    for aggregator in [
        json!({ "name": "sma", "size": 0 }),
        json!({ "name": "sum", "sampling": { "value": 0, "unit": "minutes" } }),
        json!({ "name": "filter", "threshold": 1 }),
        json!({ "name": "percentile", "percentile": 1.5, "sampling": { "value": 1, "unit": "minutes" } }),
    ] {
        let (state, _) = app_state(FakeStorage::with_points(5), Settings::default());
        let body = json!({
            "start_absolute": 0,
            "metrics": [{ "name": "m", "aggregators": [aggregator] }]
        });
        let request = Request::post("/api/v1/datapoints/query")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, v) = call(&state, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{aggregator}: {v}");
        let message = v["errors"][0].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{aggregator}: {v}");
    }
}

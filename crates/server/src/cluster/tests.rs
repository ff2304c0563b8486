//! The storage conformance suite over a real cluster in one process: three workers (each
//! an embedded engine behind the worker routes on 127.0.0.1) and a `ClusterStorage` with
//! replication factor 2 in front of them; then what only a cluster does: a worker that
//! stops answering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kairosdb_cluster::raft::MemoryMetadata;
use kairosdb_cluster::{ClusterOptions, ClusterStorage, Layout, MoveProgress};
use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::suite::Fixture;
use kairosdb_model::{
    DataType, Points, Read, SeriesKey, SeriesPoints, SeriesQuery, Storage, StorageError, TagFilter,
    Tags, TimeRange, WriteBatch,
};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Settings};
use crate::http::AppState;

/// One worker: its engine served on 127.0.0.1 until `stop`.
struct Worker {
    address: SocketAddr,
    engine: Arc<dyn Storage>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

struct Cluster {
    storage: Arc<ClusterStorage>,
    workers: Vec<Worker>,
    runtime: tokio::runtime::Runtime,
    _hints: tempfile::TempDir,
}

impl Fixture for Cluster {
    fn storage(&self) -> &dyn Storage {
        &*self.storage
    }
}

/// Something to run on a worker when the next write reaches it (once armed, the copy's),
/// before that write is stored: what lands "during the copy", at the one moment that
/// matters.
#[derive(Clone, Default)]
struct Gate(Arc<std::sync::Mutex<Option<Action>>>);

type Action = Box<dyn FnOnce() + Send>;

impl Gate {
    fn arm(&self, f: impl FnOnce() + Send + 'static) {
        *self.0.lock().unwrap() = Some(Box::new(f));
    }

    fn fired(&self) -> bool {
        self.0.lock().unwrap().is_none()
    }

    /// Runs the armed action (on a blocking thread: it may call the cluster) before a
    /// write goes on to the worker; the writes the action makes pass.
    async fn layer(
        self,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let write = request.uri().path() == "/internal/v1/write";
        let armed = if write {
            self.0.lock().unwrap().take()
        } else {
            None
        };
        if let Some(f) = armed {
            tokio::task::spawn_blocking(f).await.unwrap();
        }
        next.run(request).await
    }
}

fn worker_gated(runtime: &tokio::runtime::Runtime, gate: Option<Gate>) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineConfig::new(dir.path());
    engine.wal_sync = WalSync::None;
    let engine: Arc<dyn Storage> = Arc::new(Engine::open(engine).unwrap());
    let settings = Settings {
        role: Some("worker".into()),
        data_dir: Some(dir.path().into()),
        ..Settings::default()
    };
    let config = Arc::new(Config::resolve(settings).unwrap());
    let state = Arc::new(AppState::new(engine.clone(), config, Arc::default(), None));
    let mut app = crate::http::router(state);
    if let Some(gate) = gate {
        app = app.layer(axum::middleware::from_fn(move |request, next| {
            gate.clone().layer(request, next)
        }));
    }
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let options = crate::http::serve::Options::plain(Duration::from_secs(5));
    runtime.spawn(crate::http::serve::serve(
        listener,
        app,
        options,
        stop.clone(),
    ));
    Worker {
        address,
        engine,
        stop,
        _dir: dir,
    }
}

fn cluster(workers: usize, replication_factor: usize) -> Cluster {
    cluster_placed_on(workers, workers, replication_factor)
}

/// `workers` workers, the partitions placed on the first `placed`.
fn cluster_placed_on(workers: usize, placed: usize, replication_factor: usize) -> Cluster {
    cluster_gated(workers, placed, replication_factor, None)
}

/// [`cluster_placed_on`], the last worker behind `gate`.
fn cluster_gated(
    workers: usize,
    placed: usize,
    replication_factor: usize,
    gate: Option<Gate>,
) -> Cluster {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut gate = gate;
    let workers: Vec<Worker> = (0..workers)
        .map(|w| {
            let gate = if w == workers - 1 { gate.take() } else { None };
            worker_gated(&runtime, gate)
        })
        .collect();
    let hints = tempfile::tempdir().unwrap();
    let addresses = workers[..placed]
        .iter()
        .map(|w| w.address.to_string())
        .collect();
    let storage = Arc::new(
        ClusterStorage::open(ClusterOptions {
            layout: Layout::fixed(addresses),
            metadata: Arc::new(MemoryMetadata::default()),
            partitions: 16,
            replication_factor,
            write_min_replicas: 1,
            request_timeout: Duration::from_secs(2),
            hints_dir: Some(hints.path().into()),
            hints_max_bytes: 64 << 20,
            io_threads: 2,
            secret: None,
        })
        .unwrap(),
    );
    Cluster {
        storage,
        workers,
        runtime,
        _hints: hints,
    }
}

fn open() -> Box<dyn Fixture> {
    Box::new(cluster(3, 2))
}

kairosdb_model::storage_suite_tests!(open);

fn hosts(n: usize) -> WriteBatch {
    WriteBatch {
        series: (0..n)
            .map(|i| SeriesPoints {
                key: SeriesKey::new(
                    "c",
                    DataType::Long,
                    Tags::from_pairs([("host", format!("h{i}"))]),
                ),
                ttl_secs: 0,
                points: Points::Long {
                    ts: vec![1, 2],
                    values: vec![i as i64, 1],
                },
            })
            .collect(),
    }
}

fn read_all(c: &Cluster) -> Read {
    let q = SeriesQuery::new("c", TagFilter::default(), TimeRange::ALL);
    c.storage.query(&q).unwrap()
}

impl Cluster {
    fn stop(&self, w: usize) {
        self.workers[w].stop.cancel();
        // The listener is gone once serve returns; give it a moment.
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn with_two_copies_one_silent_worker_loses_nothing_and_reads_stay_whole() {
    let c = cluster(3, 2);
    c.stop(1);
    // Written while worker 1 is away: every series still has a replica that stores it.
    c.storage.write(&hosts(40)).unwrap();
    let Read::Complete(series) = read_all(&c) else {
        panic!("a read with one of three workers down and two copies is whole")
    };
    assert_eq!(series.len(), 40);
    assert!(series.iter().all(|s| s.points.len() == 2));
    drop(c.runtime);
}

#[test]
fn with_one_copy_a_silent_worker_makes_reads_partial_and_its_writes_fail() {
    let c = cluster(3, 1);
    c.storage.write(&hosts(40)).unwrap();
    c.stop(2);
    let Read::Partial { series, coverage } = read_all(&c) else {
        panic!("worker 2's partitions have no other copy")
    };
    assert_eq!((coverage.total_nodes, coverage.responding_nodes), (3, 2));
    assert!(
        !series.is_empty() && series.len() < 40,
        "{} series",
        series.len()
    );
    // A series that only worker 2 holds cannot be acknowledged.
    let err = c.storage.write(&hosts(40)).unwrap_err();
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
}

#[test]
fn a_delete_needs_every_worker() {
    let c = cluster(3, 2);
    c.storage.write(&hosts(10)).unwrap();
    c.stop(0);
    let request = kairosdb_model::DeleteRequest {
        metric: "c".into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    };
    let err = c.storage.delete(&request).unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
}

/// Every host's points of `c` in buckets of 1 ms, grouped by host, with their values.
fn compute_request() -> kairosdb_cluster::ComputeRequest {
    kairosdb_cluster::ComputeRequest {
        key: "c".into(),
        filter: Vec::new(),
        start: 0,
        end: 10,
        window_ms: Some(1),
        group_by: vec!["host".into()],
        keep_values: true,
        max_points: None,
        shard: None,
    }
}

#[test]
fn pushed_down_partials_equal_those_of_the_points_read_through_the_cluster() {
    let c = cluster(3, 2);
    c.storage.write(&hosts(30)).unwrap();
    let request = compute_request();
    let (pushed, coverage) = c.storage.compute(&request).unwrap();
    assert_eq!(coverage, None);
    let (read, _) = kairosdb_cluster::analytics::partial::compute(&*c.storage, &request).unwrap();
    assert_eq!(pushed, read);
    assert_eq!(
        pushed.groups.len(),
        30,
        "each host once, though stored twice"
    );
    // With a worker away, its partitions are computed by their other replicas.
    c.stop(1);
    let (again, coverage) = c.storage.compute(&request).unwrap();
    assert_eq!((again, coverage), (pushed, None));
}

#[test]
fn with_one_copy_a_silent_worker_makes_compute_partial() {
    let c = cluster(3, 1);
    c.storage.write(&hosts(40)).unwrap();
    c.stop(0);
    let (partials, coverage) = c.storage.compute(&compute_request()).unwrap();
    let coverage = coverage.expect("worker 0's partitions have no other copy");
    assert_eq!((coverage.total_nodes, coverage.responding_nodes), (3, 2));
    assert!(!partials.groups.is_empty() && partials.groups.len() < 40);
}

#[test]
fn the_home_of_a_series_is_the_first_replica_of_its_partition() {
    let c = cluster(3, 2);
    let tags = Tags::from_pairs([("host", "h1")]);
    let home = c.storage.home_address("c", &tags);
    let p = kairosdb_model::partition_of("c", &tags, 16);
    assert_eq!(home, c.storage.holders(p)[0]);
    assert_eq!(c.storage.worker_count(), 3);
    let health = c.storage.cluster_health();
    assert_eq!(health.workers.len(), 3);
    assert!(health.workers.iter().all(|w| w.healthy) && health.status.ok);
}

impl Cluster {
    fn addresses(&self, which: std::ops::Range<usize>) -> Vec<String> {
        self.workers[which]
            .iter()
            .map(|w| w.address.to_string())
            .collect()
    }

    /// The hosts of `c` stored on worker `w` itself.
    fn hosts_on(&self, w: usize) -> Vec<String> {
        let q = SeriesQuery::new("c", TagFilter::default(), TimeRange::ALL);
        let mut hosts: Vec<String> = self.workers[w]
            .engine
            .query(&q)
            .unwrap()
            .expect_complete()
            .iter()
            .map(|s| s.key.tags.get("host").unwrap().to_owned())
            .collect();
        hosts.sort();
        hosts
    }

    /// The hosts whose partition worker `w` holds, of `h0..h{n}`.
    fn hosts_held_by(&self, w: usize, n: usize) -> Vec<String> {
        let address = self.workers[w].address.to_string();
        let mut hosts: Vec<String> = (0..n)
            .map(|i| format!("h{i}"))
            .filter(|h| {
                let p = kairosdb_model::partition_of("c", &Tags::from_pairs([("host", h)]), 16);
                self.storage.holders(p).contains(&address)
            })
            .collect();
        hosts.sort();
        hosts
    }

    /// Moves the partitions from the workers `from` onto `to`, writing `during` while
    /// they move, as a control node's driver does.
    fn move_partitions(&self, from: Vec<String>, to: Vec<String>, during: &WriteBatch) {
        self.storage
            .set_layout(Layout {
                epoch: 0,
                workers: from.clone(),
                moving_to: Some(to.clone()),
            })
            .unwrap();
        self.storage.write(during).unwrap();
        let progress = MoveProgress::default();
        self.storage.copy_moving(&progress).unwrap();
        let moved = progress
            .partitions
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(moved > 0 && moved < 16, "{moved} partitions gain a replica");
        self.storage.set_layout(Layout::fixed(to)).unwrap();
        self.storage.drop_unheld(&from).unwrap();
    }
}

/// Every host of `c` once, each with its two points.
fn assert_whole(c: &Cluster, n: usize) {
    let Read::Complete(series) = read_all(c) else {
        panic!("a whole read")
    };
    assert_eq!(series.len(), n);
    assert!(series.iter().all(|s| s.points.len() == 2));
}

#[test]
fn a_worker_added_gets_exactly_the_partitions_it_gains_and_nothing_is_lost() {
    let c = cluster_placed_on(3, 2, 2);
    c.storage.write(&hosts(60)).unwrap();
    assert!(c.hosts_on(2).is_empty());
    // Written during the move: to the old holders and the new replicas alike.
    c.move_partitions(c.addresses(0..2), c.addresses(0..3), &hosts(80));
    assert_whole(&c, 80);
    for w in 0..3 {
        assert_eq!(
            c.hosts_on(w),
            c.hosts_held_by(w, 80),
            "worker {w} holds its partitions, no more"
        );
    }
    // The new worker's copies are real: with an old one away, reads stay whole.
    c.stop(0);
    assert_whole(&c, 80);
}

#[test]
fn a_worker_removed_hands_its_partitions_to_the_others_and_is_emptied() {
    let c = cluster(3, 2);
    c.storage.write(&hosts(60)).unwrap();
    c.move_partitions(c.addresses(0..3), c.addresses(0..2), &hosts(70));
    assert!(c.hosts_on(2).is_empty(), "the removed worker keeps nothing");
    assert_whole(&c, 70);
    c.stop(2);
    assert_whole(&c, 70);
    assert_eq!(c.storage.worker_count(), 2);
}

/// Host `h{i}`'s point at 1 with value `base + i` (and no other).
fn hosts_at_one(n: usize, base: i64) -> WriteBatch {
    let mut batch = hosts(n);
    for (i, s) in batch.series.iter_mut().enumerate() {
        s.points = Points::Long {
            ts: vec![1],
            values: vec![base + i as i64],
        };
    }
    batch
}

/// The (timestamp, value) pairs of host `h{i}` of `c` on worker `w` itself.
fn stored_on(c: &Cluster, w: usize, host: &str) -> Vec<(i64, i64)> {
    let q = SeriesQuery::new(
        "c",
        TagFilter::from_pairs(&[("host", &[host])]),
        TimeRange::ALL,
    );
    let series = c.workers[w].engine.query(&q).unwrap().expect_complete();
    match series.first().map(|s| &s.points) {
        Some(Points::Long { ts, values }) => {
            ts.iter().copied().zip(values.iter().copied()).collect()
        }
        _ => Vec::new(),
    }
}

/// The race of docs/cluster.md ("Moving partitions"): the copy reads a point's old value
/// from its holder, a write overwrites the point (on the holders and, being written
/// during the move, on the new replica too), then the copy's old value reaches the new
/// replica. The new replica keeps the newest value: the copy is a backfill.
#[test]
fn a_point_overwritten_while_its_partition_is_copied_keeps_the_newest_value_on_the_new_replica() {
    let gate = Gate::default();
    let c = cluster_gated(3, 2, 2, Some(gate.clone()));
    c.storage.write(&hosts_at_one(60, 0)).unwrap();
    c.storage
        .set_layout(Layout {
            epoch: 0,
            workers: c.addresses(0..2),
            moving_to: Some(c.addresses(0..3)),
        })
        .unwrap();
    let storage = c.storage.clone();
    gate.arm(move || storage.write(&hosts_at_one(60, 1000)).unwrap());
    c.storage.copy_moving(&MoveProgress::default()).unwrap();
    assert!(
        gate.fired(),
        "the overwrite ran between the copy's read and its write"
    );
    c.storage
        .set_layout(Layout::fixed(c.addresses(0..3)))
        .unwrap();
    c.storage.drop_unheld(&c.addresses(0..2)).unwrap();
    let gained = c.hosts_held_by(2, 60);
    assert!(!gained.is_empty());
    for host in &gained {
        let i: i64 = host[1..].parse().unwrap();
        assert_eq!(
            stored_on(&c, 2, host),
            [(1, 1000 + i)],
            "{host} on the new replica"
        );
    }
    // And so through the cluster, whichever replica answers.
    c.stop(0);
    let Read::Complete(series) = read_all(&c) else {
        panic!("whole")
    };
    for s in series {
        let i: i64 = s.key.tags.get("host").unwrap()[1..].parse().unwrap();
        assert_eq!(
            s.points,
            Points::Long {
                ts: vec![1],
                values: vec![1000 + i]
            },
            "{}",
            s.key
        );
    }
}

/// A copied point keeps the time it had left on its old holder (rounded up a little,
/// `wire::ttl_class`), each of a series' TTLs apart; one without a TTL stays without.
#[test]
fn copied_points_keep_the_ttl_they_had_left() {
    let c = cluster_placed_on(3, 2, 2);
    let mut batch = WriteBatch::new();
    for (ttl_secs, ts) in [(3600, 1), (86_400, 2), (0, 3)] {
        for mut s in hosts_at_one(40, 0).series {
            s.ttl_secs = ttl_secs;
            s.points = Points::Long {
                ts: vec![ts],
                values: vec![ts],
            };
            batch.series.push(s);
        }
    }
    c.storage.write(&batch).unwrap();
    c.move_partitions(c.addresses(0..2), c.addresses(0..3), &WriteBatch::new());
    let gained = c.hosts_held_by(2, 40);
    assert!(!gained.is_empty());
    let q = SeriesQuery {
        with_ttl: true,
        ..SeriesQuery::new("c", TagFilter::default(), TimeRange::ALL)
    };
    let copied = c.workers[2].engine.query(&q).unwrap().expect_complete();
    assert_eq!(copied.len(), gained.len());
    for s in copied {
        assert_eq!(s.points.timestamps(), [1, 2, 3], "{}", s.key);
        let ttl = &s.ttl_secs;
        assert!((3540..=3660).contains(&ttl[0]), "{}: {ttl:?}", s.key);
        assert!(
            (86_340..=86_400 + 86_400 / 64).contains(&ttl[1]),
            "{}: {ttl:?}",
            s.key
        );
        assert_eq!(ttl[2], 0, "{}: never expires", s.key);
    }
}

#[test]
fn deletes_wait_while_partitions_move() {
    let c = cluster_placed_on(3, 2, 2);
    c.storage.write(&hosts(10)).unwrap();
    c.storage
        .set_layout(Layout {
            epoch: 0,
            workers: c.addresses(0..2),
            moving_to: Some(c.addresses(0..3)),
        })
        .unwrap();
    let request = kairosdb_model::DeleteRequest {
        metric: "c".into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    };
    let err = c.storage.delete(&request).unwrap_err();
    assert!(err.to_string().contains("moving"), "{err}");
    assert_whole(&c, 10);
}

/// `c` for 3 hosts, one point a millisecond over [0, 1000), values zig-zagging.
fn dense() -> WriteBatch {
    WriteBatch {
        series: (0..3)
            .map(|h| SeriesPoints {
                key: SeriesKey::new(
                    "c",
                    DataType::Long,
                    Tags::from_pairs([("host", format!("h{h}"))]),
                ),
                ttl_secs: 0,
                points: Points::Long {
                    ts: (0..1000).collect(),
                    values: (0..1000).map(|t| (t * 7 + h * 13) % 101).collect(),
                },
            })
            .collect(),
    }
}

/// Runs the KairosDB query `body` over `storage` with the query engine.
fn run_query(storage: &dyn Storage, body: &str) -> kairosdb_model::QueryResult {
    let request = kairosdb_protocol::query::parse_query(body.as_bytes(), 10_000).unwrap();
    let budget = kairosdb_query::Budget::default();
    let ctx = kairosdb_query::Context {
        range: request.range,
        time_zone: request.time_zone.as_deref(),
        now_ms: 10_000,
        budget: &budget,
    };
    kairosdb_query::execute(storage, &ctx, &request.metrics[0])
        .unwrap()
        .expect_complete()
}

#[test]
fn a_leading_max_min_first_last_or_count_crosses_the_network_thinned_and_answers_as_one_node() {
    let c = cluster(3, 2);
    c.storage.write(&dense()).unwrap();
    let single_dir = tempfile::tempdir().unwrap();
    let single = Engine::open(EngineConfig::new(single_dir.path())).unwrap();
    single.write(&dense()).unwrap();
    for name in ["max", "min", "first", "last", "count"] {
        let body = format!(
            r#"{{"start_absolute": 0, "end_absolute": 999, "metrics": [{{"name": "c",
                "group_by": [{{"name": "tag", "tags": ["host"]}}],
                "aggregators": [{{"name": "{name}", "sampling": {{"value": 100, "unit": "milliseconds"}}}}]}}]}}"#
        );
        assert_eq!(
            run_query(&*c.storage, &body),
            run_query(&single, &body),
            "{name}"
        );
    }
    // What the workers send for a max: per series and bucket its first point and its
    // largest, while `in_range` still counts every point.
    let fold = kairosdb_model::Fold {
        keep: kairosdb_model::FoldKeep::Max,
        unit: kairosdb_model::TimeUnit::Milliseconds,
        value: 100,
        start: 0,
        align_sampling: true,
        time_zone: None,
    };
    let q = SeriesQuery {
        fold: Some(fold),
        ..SeriesQuery::new("c", TagFilter::default(), TimeRange::new(0, 999))
    };
    let Read::Complete(series) = c.storage.query(&q).unwrap() else {
        panic!("whole")
    };
    assert_eq!(series.len(), 3);
    for s in &series {
        assert!(s.points.len() <= 20, "{} points sent", s.points.len());
        assert_eq!(s.in_range, 1000);
    }
}

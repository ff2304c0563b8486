//! The control node's storage: the whole cluster behind the `Storage` seam, so the HTTP
//! API, the query engine, roll-ups and self-metrics run on a control node unchanged
//! (docs/cluster.md: writes, reads, hints).
//!
//! * `write`: each series to every replica of its partition, all workers at once; acknowledged
//!   when every series has `write_min_replicas` replicas that stored it. A replica that
//!   failed gets its share as a hint (`hints.rs`). `backfill` is routed the same way, each
//!   worker keeping the points it holds, without hints.
//! * `query`: each partition read from one replica (the first that has no pending hints
//!   here, then the others); a worker that does not answer has its partitions asked of
//!   their next replicas; partitions nobody answered for make a [`Read::Partial`].
//! * names, tags and series keys: every worker, merged; deletes: every worker, or an error.
//! * metadata: the Raft state's ([`ClusterOptions::metadata`]).
//! * layouts ([`ClusterStorage::set_layout`]): during a move, writes go to a partition's
//!   holders and incoming replicas, reads to its holders; every data call carries the
//!   layout epoch, and a worker that knows a newer one refuses it: the call waits for
//!   this router to catch up and runs once more ([`ClusterStorage::fenced`]).
//! * the analytics plan's `/compute`: pushed down to one replica per partition like a
//!   read, the partial aggregates merged here ([`ClusterStorage::compute`]).
//!
//! Storage calls are synchronous and come from blocking threads; they run their network
//! calls on this router's own small runtime (the Cassandra driver's arrangement).
//! A read that sets a work limit answers [`Read::OverWorkLimit`] at once: it would wait on
//! the network.
//!
//! Not here: the worker's side of the calls (the server's `cluster` module), copying
//! partitions during a move (`moves.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use kairosdb_engine::{DeliveryQueue, QueueOptions, WalSync};
use kairosdb_model::metrics::{Kind, Labeled};
use kairosdb_model::{
    partition_of, Coverage, DeleteRequest, HealthStatus, Read, SeriesData, SeriesKey, SeriesPoints,
    SeriesQuery, ServiceStore, Shard, Storage, StorageError, StorageStats, TagFilter, Tags,
    TimeRange, WriteBatch,
};
use parking_lot::{Mutex, RwLock};

use crate::analytics::{self, ComputeRequest, Partials};
use crate::client::{CallError, WorkerClient};
use crate::hints::RemoteWorker;
use crate::placement::{Placement, WorkerId};
use crate::wire::{self, ReadRequest, Selection};

/// How a control node reaches and uses its workers.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Where the partitions live to begin with ([`ClusterStorage::set_layout`] changes it).
    pub layout: Layout,
    /// Partitions of the series space; fixed for the life of a cluster.
    pub partitions: u32,
    /// Copies of each partition.
    pub replication_factor: usize,
    /// Replicas that must store a write before it is acknowledged (at most the copies
    /// a partition has).
    pub write_min_replicas: usize,
    /// Longest wait for one worker call.
    pub request_timeout: Duration,
    /// Where the hinted hand-off queues live (one directory per worker); `None` keeps
    /// no hints.
    pub hints_dir: Option<PathBuf>,
    /// Most bytes of hints kept per worker.
    pub hints_max_bytes: u64,
    /// Threads of the router's network runtime.
    pub io_threads: usize,
    /// Sent with every call (`cluster_secret`); workers with one refuse calls without it.
    pub secret: Option<String>,
    /// KairosDB's metadata store: the Raft state on a cluster node
    /// (`raft::RaftMetadata`), not the workers, so partition moves never have to find it.
    pub metadata: Arc<dyn ServiceStore + Send + Sync>,
}

/// Where the partitions live: the workers they are placed on and, during a move, the
/// workers they are moving onto (docs/cluster.md, "Moving partitions").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The Raft state's layout epoch; sent with every data call so a worker that knows a
    /// newer one refuses it. 0: a layout outside Raft (tests, tools), never refused.
    pub epoch: u64,
    pub workers: Vec<String>,
    pub moving_to: Option<Vec<String>>,
}

impl Layout {
    /// A fixed list of workers, outside Raft.
    pub fn fixed(workers: Vec<String>) -> Layout {
        Layout {
            epoch: 0,
            workers,
            moving_to: None,
        }
    }
}

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter writes: "cluster_writes_total",
            "Batches written to the cluster.";
        counter write_failures: "cluster_write_failures_total",
            "Batches refused because too few replicas stored them.";
        counter replica_misses: "cluster_replica_misses_total",
            "Sub-batches a replica did not store (kept as a hint when hints are on).";
        counter hinted_batches: "cluster_hinted_batches_total",
            "Sub-batches kept as hints for a replica that missed them.";
        counter reads: "cluster_reads_total",
            "Series reads fanned out to the workers.";
        counter partial_reads: "cluster_partial_reads_total",
            "Reads answered partially: some partitions had no replica that answered.";
        counter failovers: "cluster_read_failovers_total",
            "Worker reads that failed and were asked again of other replicas.";
        counter worker_errors: "cluster_worker_errors_total",
            "Worker calls that got no answer (down, slow or unreachable).";
        counter computes: "cluster_computes_total",
            "Partial aggregates fanned out to the workers (the analytics plan's /compute).";
        counter stale_calls: "cluster_stale_layout_calls_total",
            "Worker calls refused because this node routed by an older layout than the worker knew.";
    }
}

/// One worker as the control node last heard from it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerState {
    pub id: WorkerId,
    pub address: String,
    pub healthy: bool,
    /// Its own words, or why it did not answer.
    pub detail: String,
}

/// [`ClusterStorage::cluster_health`]'s answer.
#[derive(Clone, Debug)]
pub struct ClusterHealth {
    /// Placed workers first, in the layout's order, then those a move brings in.
    pub workers: Vec<WorkerState>,
    /// What [`Storage::health`] answers.
    pub status: HealthStatus,
}

/// A worker this router has routed to: its client and its hint queue, kept for the life
/// of the router (a layout change keeps what was not delivered yet).
pub(crate) struct Slot {
    pub(crate) client: Arc<WorkerClient>,
    hints: Option<DeliveryQueue>,
    /// Calls made to it through [`ClusterStorage::fan_out`], those that got no answer,
    /// and the nanoseconds they took: `/metrics` per worker.
    calls: AtomicU64,
    unanswered: AtomicU64,
    call_ns: AtomicU64,
    /// Whether its last call got an answer.
    answered_last: std::sync::atomic::AtomicBool,
}

impl Slot {
    fn record(&self, took: Duration, answered: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        if !answered {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
        }
        self.answered_last.store(answered, Ordering::Relaxed);
    }

    /// Points waiting in its hints.
    pub(crate) fn pending_hints(&self) -> u64 {
        self.hints.as_ref().map_or(0, |q| q.stats().backlog_points)
    }
}

/// One layout, resolved to slots: who to write, who to read.
pub(crate) struct Routing {
    pub(crate) epoch: u64,
    /// The layout's workers: placed ones first, then those a move brings in.
    pub(crate) workers: Vec<Arc<Slot>>,
    /// `holders[p]`: the workers holding partition `p` (indexes into `workers`, best
    /// first): reads ask them.
    pub(crate) holders: Vec<Vec<usize>>,
    /// `incoming[p]`: during a move, the workers holding `p` once it is done (empty
    /// otherwise): writes go to them too.
    pub(crate) incoming: Vec<Vec<usize>>,
}

impl Routing {
    pub(crate) fn moving(&self) -> bool {
        self.incoming.iter().any(|i| !i.is_empty())
    }

    /// Who a write of partition `p` goes to: its holders and incoming replicas.
    fn targets(&self, p: u32) -> impl Iterator<Item = usize> + '_ {
        let holders = &self.holders[p as usize];
        let incoming = self.incoming[p as usize]
            .iter()
            .filter(move |w| !holders.contains(w));
        holders.iter().chain(incoming).copied()
    }

    fn address(&self, w: usize) -> &str {
        &self.workers[w].client.address
    }
}

/// The cluster as a `Storage`.
pub struct ClusterStorage {
    opts: ClusterOptions,
    /// Every worker routed to so far, by address.
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    routing: RwLock<Arc<Routing>>,
    /// The newest layout epoch a worker said it knows (a refused call): the router
    /// waits for its own layout to catch up, then tries once more.
    newest_seen: AtomicU64,
    pub(crate) runtime: tokio::runtime::Runtime,
    counters: Counters,
}

impl ClusterStorage {
    /// Connects to nothing yet: workers are called on demand. Opens the hint queues (and
    /// starts delivering what they kept from before).
    pub fn open(opts: ClusterOptions) -> Result<ClusterStorage, StorageError> {
        if opts.layout.workers.is_empty() {
            return Err(StorageError::InvalidInput(
                "a control node needs at least one worker".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.io_threads.max(1))
            .thread_name("cluster-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Internal(format!("cluster runtime: {e}")))?;
        let empty = Routing {
            epoch: 0,
            workers: Vec::new(),
            holders: Vec::new(),
            incoming: Vec::new(),
        };
        let cluster = ClusterStorage {
            opts: opts.clone(),
            slots: Mutex::new(BTreeMap::new()),
            routing: RwLock::new(Arc::new(empty)),
            newest_seen: AtomicU64::new(0),
            runtime,
            counters: Counters::default(),
        };
        cluster.set_layout(opts.layout)?;
        Ok(cluster)
    }

    /// Routes by `layout` from now on (a call under way finishes by the one it started
    /// with). Opens the hint queues of workers it has not routed to before.
    pub fn set_layout(&self, layout: Layout) -> Result<(), StorageError> {
        let mut addresses = layout.workers.clone();
        for w in layout.moving_to.iter().flatten() {
            if !addresses.contains(w) {
                addresses.push(w.clone());
            }
        }
        let workers = addresses
            .iter()
            .map(|a| self.slot(a))
            .collect::<Result<Vec<_>, _>>()?;
        let index = |list: &[String]| -> (Vec<WorkerId>, Vec<usize>) {
            let ids = list.iter().map(|a| WorkerId::of_address(a)).collect();
            let at = list
                .iter()
                .map(|a| addresses.iter().position(|b| b == a).expect("listed above"))
                .collect();
            (ids, at)
        };
        let partitions = self.opts.partitions;
        let place = |list: &[String]| -> Vec<Vec<usize>> {
            let (ids, at) = index(list);
            let placement = Placement::new(partitions, self.opts.replication_factor, &ids);
            (0..partitions)
                .map(|p| placement.replicas(p).iter().map(|&i| at[i]).collect())
                .collect()
        };
        let holders = place(&layout.workers);
        let incoming = match &layout.moving_to {
            Some(next) if !next.is_empty() => place(next),
            _ => vec![Vec::new(); partitions as usize],
        };
        let routing = Routing {
            epoch: layout.epoch,
            workers,
            holders,
            incoming,
        };
        *self.routing.write() = Arc::new(routing);
        Ok(())
    }

    /// The layout epoch this router routes by.
    pub fn layout_epoch(&self) -> u64 {
        self.routing.read().epoch
    }

    pub(crate) fn routing(&self) -> Arc<Routing> {
        self.routing.read().clone()
    }

    /// The worker at `address`, opened (with its hint queue) the first time.
    fn slot(&self, address: &str) -> Result<Arc<Slot>, StorageError> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(address) {
            return Ok(slot.clone());
        }
        let id = WorkerId::of_address(address);
        let client = Arc::new(WorkerClient::new(
            id,
            address,
            self.opts.request_timeout,
            self.opts.secret.as_deref(),
        ));
        let hints = match &self.opts.hints_dir {
            None => None,
            Some(dir) => {
                let remote = Arc::new(RemoteWorker::new(
                    client.clone(),
                    self.runtime.handle().clone(),
                ));
                let queue = QueueOptions {
                    max_bytes: self.opts.hints_max_bytes,
                    // A hint stands in for a replica's acknowledgement: on disk first.
                    sync: WalSync::Always,
                    ..QueueOptions::new(dir.join(id.to_string()))
                };
                Some(DeliveryQueue::open(remote, queue)?)
            }
        };
        let slot = Arc::new(Slot {
            client,
            hints,
            calls: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            call_ns: AtomicU64::new(0),
            answered_last: std::sync::atomic::AtomicBool::new(true),
        });
        slots.insert(address.to_owned(), slot.clone());
        Ok(slot)
    }

    /// The addresses holding partition `p` in the layout routed by, best first.
    pub fn holders(&self, p: u32) -> Vec<String> {
        let r = self.routing();
        r.holders[p as usize]
            .iter()
            .map(|&w| r.address(w).to_owned())
            .collect()
    }

    /// The client of the worker at `address` (routed to or not).
    pub(crate) fn client_of(&self, address: &str) -> Result<Arc<WorkerClient>, StorageError> {
        self.slot(address).map(|s| s.client.clone())
    }

    /// Workers this control node routes to (what a whole answer's `total_nodes` is).
    pub fn worker_count(&self) -> usize {
        self.routing().workers.len()
    }

    /// The `host:port` of the first replica of the series `metric` + `tags`: the worker
    /// its partition calls home (the analytics plan's `worker_node`).
    pub fn home_address(&self, metric: &str, tags: &Tags) -> String {
        let r = self.routing();
        let partition = partition_of(metric, tags, self.opts.partitions);
        r.address(r.holders[partition as usize][0]).to_owned()
    }

    /// The analytics plan's `/compute` pushed down: each partition's partial aggregates
    /// from one replica (as [`Storage::query`] reads), merged here exactly. The coverage
    /// is set when some partition had no replica that answered.
    pub fn compute(
        &self,
        request: &ComputeRequest,
    ) -> Result<(Partials, Option<Coverage>), StorageError> {
        self.counters.computes.fetch_add(1, Ordering::Relaxed);
        let (answers, coverage) = self.fenced(|r| {
            let all = (0..self.opts.partitions).collect();
            self.scatter(r, all, |c, shard| {
                let request = ComputeRequest {
                    shard: Some((shard.partitions(), shard.iter().collect())),
                    ..request.clone()
                };
                let epoch = r.epoch;
                async move { c.compute(&request, epoch).await }
            })
        })?;
        let merged = analytics::partial::merge(answers);
        // Each worker kept to `max_points` alone; the computation as a whole must too.
        if let Some(limit) = request.max_points {
            if merged.point_count() > limit {
                return Err(StorageError::TooManyPoints { limit });
            }
        }
        Ok((merged, coverage))
    }

    /// Every worker's health, asked at once, and the cluster's: healthy while every
    /// partition has a replica that answers healthy.
    pub fn cluster_health(&self) -> ClusterHealth {
        let r = self.routing();
        let answers = self.fan_out(&r, (0..r.workers.len()).collect(), |c, _| async move {
            c.health().await
        });
        let mut workers = Vec::with_capacity(answers.len());
        let mut down = BTreeSet::new();
        for (w, answer) in answers {
            let (healthy, detail) = match answer {
                Ok(h) => (h.ok, h.detail),
                Err(e) => (false, e.into_storage_error().to_string()),
            };
            if !healthy {
                down.insert(w);
            }
            workers.push(WorkerState {
                id: r.workers[w].client.id,
                address: r.address(w).to_owned(),
                healthy,
                detail,
            });
        }
        let status = Self::health_status(&r, &workers, &down);
        ClusterHealth { workers, status }
    }

    fn health_status(r: &Routing, workers: &[WorkerState], down: &BTreeSet<usize>) -> HealthStatus {
        let detail: Vec<String> = workers
            .iter()
            .filter(|w| !w.healthy)
            .map(|w| format!("{}: {}", w.address, w.detail))
            .collect();
        let uncovered = Self::uncovered(r, down);
        HealthStatus {
            ok: uncovered == 0,
            detail: match (down.len(), uncovered) {
                (0, _) => format!("{} workers healthy", r.workers.len()),
                (_, 0) => format!(
                    "every partition has a healthy replica; {}",
                    detail.join("; ")
                ),
                (_, n) => format!(
                    "{n} partitions have no healthy replica; {}",
                    detail.join("; ")
                ),
            },
        }
    }

    /// Runs `op` over the current routing; when a worker refused it for routing by an
    /// older layout than it knows, waits (a little) until this router has the newer one
    /// and runs it once more.
    pub(crate) fn fenced<T>(
        &self,
        op: impl Fn(&Routing) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let r = self.routing();
        match op(&r) {
            Err(e) if self.newest_seen.load(Ordering::Relaxed) > r.epoch => {
                tracing::debug!(epoch = r.epoch, error = %e, "a worker knows a newer layout; waiting for it");
                self.await_newest()?;
                op(&self.routing())
            }
            other => other,
        }
    }

    /// Waits up to 5 s for the routing to reach the newest epoch a worker reported.
    fn await_newest(&self) -> Result<(), StorageError> {
        let wanted = self.newest_seen.load(Ordering::Relaxed);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.layout_epoch() < wanted {
            if std::time::Instant::now() > deadline {
                return Err(StorageError::Unavailable {
                    message: format!(
                        "the cluster's layout changed (epoch {wanted}) and this control node \
                         has not caught up yet"
                    ),
                    retry_after_secs: 1,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Notes a refusal for routing by an older layout; the error to fail the call with.
    fn stale(&self, epoch: u64) -> StorageError {
        self.newest_seen.fetch_max(epoch, Ordering::Relaxed);
        self.counters.stale_calls.fetch_add(1, Ordering::Relaxed);
        StorageError::Unavailable {
            message: format!("the cluster's layout changed (epoch {epoch}); retry"),
            retry_after_secs: 1,
        }
    }

    /// Hands every worker's share of a call to it at once; answers in worker order.
    pub(crate) fn fan_out<T, F, Fut>(
        &self,
        r: &Routing,
        targets: Vec<usize>,
        call: F,
    ) -> Vec<(usize, Result<T, CallError>)>
    where
        F: Fn(Arc<WorkerClient>, usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let calls = targets.iter().map(|&w| {
            let slot = r.workers[w].clone();
            let call = call(slot.client.clone(), w);
            async move {
                let started = std::time::Instant::now();
                let answer = call.await;
                let answered = !matches!(answer, Err(CallError::Unreachable(_)));
                slot.record(started.elapsed(), answered);
                answer
            }
        });
        let answers = self.runtime.block_on(join_all(calls));
        for answer in &answers {
            if matches!(answer, Err(CallError::Unreachable(_))) {
                self.counters.worker_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        targets.into_iter().zip(answers).collect()
    }

    /// Every worker's answer; the first refusal is the error. Workers that did not
    /// answer are listed beside the answers that came.
    fn everyone<T, F, Fut>(
        &self,
        r: &Routing,
        call: F,
    ) -> Result<(Vec<T>, Vec<usize>), StorageError>
    where
        F: Fn(Arc<WorkerClient>, usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut answers = Vec::new();
        let mut silent = Vec::new();
        for (w, answer) in self.fan_out(r, (0..r.workers.len()).collect(), call) {
            match answer {
                Ok(a) => answers.push(a),
                Err(CallError::Unreachable(why)) => {
                    tracing::warn!(worker = %r.address(w), %why, "worker did not answer");
                    silent.push(w);
                }
                Err(CallError::Stale(epoch)) => return Err(self.stale(epoch)),
                Err(CallError::Refused(e)) => return Err(e),
            }
        }
        Ok((answers, silent))
    }

    /// The partitions with no holder outside `down`.
    fn uncovered(r: &Routing, down: &BTreeSet<usize>) -> usize {
        r.holders
            .iter()
            .filter(|holders| holders.iter().all(|w| down.contains(w)))
            .count()
    }

    /// Asks every partition of `todo` of one of its holders, each worker for all its
    /// partitions at once (`call` with that worker's [`Shard`]), preferring holders with
    /// no hints pending here (they hold everything written). A worker that does not answer
    /// has its partitions asked of their next holders. Answers what came back and, when
    /// some partition had no holder that answered, how many workers did.
    pub(crate) fn scatter<T, F, Fut>(
        &self,
        r: &Routing,
        mut todo: Vec<u32>,
        call: F,
    ) -> Result<(Vec<T>, Option<Coverage>), StorageError>
    where
        F: Fn(Arc<WorkerClient>, Shard) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let partitions = self.opts.partitions;
        let pending: Vec<u64> = r.workers.iter().map(|s| s.pending_hints()).collect();
        let mut down: BTreeSet<usize> = BTreeSet::new();
        let mut missing = 0usize;
        let mut out = Vec::new();
        while !todo.is_empty() {
            let mut assigned: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for p in todo.drain(..) {
                let best = r.holders[p as usize]
                    .iter()
                    .filter(|w| !down.contains(w))
                    .min_by_key(|&&w| pending[w] > 0);
                match best {
                    Some(&w) => assigned.entry(w).or_default().push(p),
                    None => missing += 1,
                }
            }
            let answers = self.fan_out(r, assigned.keys().copied().collect(), |c, w| {
                call(c, Shard::new(partitions, assigned[&w].iter().copied()))
            });
            for (w, answer) in answers {
                match answer {
                    Ok(t) => out.push(t),
                    Err(CallError::Refused(e)) => return Err(e),
                    Err(CallError::Stale(epoch)) => return Err(self.stale(epoch)),
                    Err(CallError::Unreachable(why)) => {
                        tracing::warn!(worker = %r.address(w), %why, "read failed over");
                        self.counters.failovers.fetch_add(1, Ordering::Relaxed);
                        down.insert(w);
                        todo.extend(&assigned[&w]);
                    }
                }
            }
        }
        if missing == 0 {
            return Ok((out, None));
        }
        self.counters.partial_reads.fetch_add(1, Ordering::Relaxed);
        let total = r.workers.len() as u32;
        let coverage = Coverage {
            total_nodes: total,
            responding_nodes: total - down.len() as u32,
        };
        Ok((out, Some(coverage)))
    }

    fn names_of(
        &self,
        kind: &'static str,
        prefix: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        let r = self.routing();
        let prefix = prefix.map(str::to_owned);
        let (lists, silent) = self.everyone(&r, |c, _| {
            let prefix = prefix.clone();
            async move { c.names(kind, prefix.as_deref()).await }
        })?;
        self.note_missing(&r, &silent, kind);
        let merged: BTreeSet<String> = lists.into_iter().flatten().collect();
        Ok(merged.into_iter().collect())
    }

    /// A listing that some workers did not answer: complete when their partitions have
    /// other replicas that did, else logged and counted as partial (listings have no
    /// place for a partial flag).
    fn note_missing(&self, r: &Routing, silent: &[usize], what: &str) {
        let down: BTreeSet<usize> = silent.iter().copied().collect();
        if !down.is_empty() && Self::uncovered(r, &down) > 0 {
            self.counters.partial_reads.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                what,
                workers_down = down.len(),
                "listing is missing the partitions of unreachable workers"
            );
        }
    }

    /// One write over routing `r`: each series to its partition's holders and incoming
    /// replicas; acknowledged when enough of each set stored it. A `backfill` asks each
    /// replica to keep the points it holds (`Storage::backfill`) and keeps no hints: a hint
    /// is delivered as an ordinary write, which could replace a newer point.
    fn write_with(
        &self,
        r: &Routing,
        batch: &WriteBatch,
        backfill: bool,
    ) -> Result<(), StorageError> {
        let partitions = self.opts.partitions;
        let mut partition_of_series = Vec::with_capacity(batch.series.len());
        let mut shares: BTreeMap<usize, Vec<SeriesPoints>> = BTreeMap::new();
        for s in &batch.series {
            let p = partition_of(&s.key.metric, &s.key.tags, partitions);
            for w in r.targets(p) {
                shares.entry(w).or_default().push(s.clone());
            }
            partition_of_series.push(p);
        }
        let shares: BTreeMap<usize, WriteBatch> = shares
            .into_iter()
            .map(|(w, series)| (w, WriteBatch { series }))
            .collect();
        // `Bytes`: each call shares its body instead of copying it.
        let bodies: BTreeMap<usize, bytes::Bytes> = shares
            .iter()
            .map(|(&w, b)| (w, wire::encode_write(b).into()))
            .collect();
        let answers = self.fan_out(r, shares.keys().copied().collect(), |c, w| {
            let body = bodies[&w].clone();
            let epoch = r.epoch;
            async move {
                match backfill {
                    true => c.backfill(body, epoch).await,
                    false => c.write(body, epoch).await,
                }
            }
        });
        let mut stored = vec![false; r.workers.len()];
        let mut refusal: Option<StorageError> = None;
        let mut stale: Option<StorageError> = None;
        let mut missed = Vec::new();
        for (w, answer) in answers {
            match answer {
                Ok(()) => stored[w] = true,
                // The same bad input every replica would refuse: not a replica failure.
                Err(CallError::Refused(
                    e @ (StorageError::InvalidInput(_) | StorageError::Unsupported(_)),
                )) => return Err(e),
                // Routed by an older layout: no hint, the whole write is retried by the
                // newer one (that worker may hold the series there, and never got it).
                Err(CallError::Stale(epoch)) => stale = Some(self.stale(epoch)),
                Err(e) => {
                    self.counters.replica_misses.fetch_add(1, Ordering::Relaxed);
                    let e = e.into_storage_error();
                    tracing::debug!(worker = %r.address(w), error = %e, "replica missed a write");
                    missed.push(w);
                    refusal = Some(e);
                }
            }
        }
        let hinted = if backfill { Vec::new() } else { missed };
        for w in hinted {
            if let Some(queue) = &r.workers[w].hints {
                match queue.write(&shares[&w]) {
                    Ok(()) => {
                        self.counters.hinted_batches.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(worker = %r.address(w), error = %e, "hint not kept");
                    }
                }
            }
        }
        if let Some(e) = stale {
            return Err(e);
        }
        let enough = |set: &[usize]| {
            let need = self.opts.write_min_replicas.clamp(1, set.len().max(1));
            set.is_empty() || set.iter().filter(|&&w| stored[w]).count() >= need
        };
        let short = partition_of_series
            .iter()
            .filter(|&&p| !(enough(&r.holders[p as usize]) && enough(&r.incoming[p as usize])))
            .count();
        if short == 0 {
            return Ok(());
        }
        self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
        Err(match refusal {
            Some(
                e @ (StorageError::Backpressure { .. } | StorageError::InsufficientStorage(_)),
            ) => e,
            other => StorageError::Unavailable {
                message: format!(
                    "{short} of {} series were stored on fewer than {} replicas{}",
                    partition_of_series.len(),
                    self.opts.write_min_replicas,
                    other.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
                retry_after_secs: 1,
            },
        })
    }

    fn query_with(&self, r: &Routing, q: &SeriesQuery) -> Result<Read, StorageError> {
        let partitions = self.opts.partitions;
        // A caller's shard over the cluster's partitions selects them; over another count
        // it is applied to what comes back.
        let (todo, filter_after): (Vec<u32>, Option<&Shard>) = match &q.shard {
            Some(shard) if shard.partitions() == partitions => (shard.iter().collect(), None),
            Some(shard) => ((0..partitions).collect(), Some(shard)),
            None => ((0..partitions).collect(), None),
        };
        let (answers, coverage) = self.scatter(r, todo, |c, shard| {
            let request = ReadRequest::new(&SeriesQuery {
                shard: Some(shard),
                ..q.clone()
            });
            let epoch = r.epoch;
            async move { c.read(&request, epoch).await }
        })?;
        let mut series: Vec<SeriesData> = answers.into_iter().flatten().collect();
        if let Some(shard) = filter_after {
            series.retain(|s| shard.holds(&s.key.metric, &s.key.tags));
        }
        // Each worker kept to `max_points` alone; the read as a whole must too.
        if let Some(limit) = q.max_points {
            if series.iter().map(|s| s.in_range).sum::<u64>() > limit {
                return Err(StorageError::TooManyPoints { limit });
            }
        }
        Ok(match coverage {
            None => Read::Complete(series),
            Some(coverage) => Read::Partial { series, coverage },
        })
    }

    /// Every worker must answer: a worker that missed a delete would bring the points back
    /// when it returns (deletes are not hinted). Refused while partitions move: a copy
    /// under way could bring back what it deletes.
    fn delete_with(&self, r: &Routing, request: &DeleteRequest) -> Result<u64, StorageError> {
        if r.moving() {
            return Err(StorageError::Unavailable {
                message: "partitions are moving between workers; deletes wait until the move \
                          is done (GET /api/v1/cluster)"
                    .into(),
                retry_after_secs: 5,
            });
        }
        let selection = Selection::of_delete(request);
        let (counts, silent) = self.everyone(r, |c, _| {
            let selection = selection.clone();
            let epoch = r.epoch;
            async move { c.delete(&selection, epoch).await }
        })?;
        if !silent.is_empty() {
            let names: Vec<&str> = silent.iter().map(|&w| r.address(w)).collect();
            return Err(StorageError::Unavailable {
                message: format!(
                    "delete not applied everywhere: worker(s) {} did not answer; retry when they are back",
                    names.join(", ")
                ),
                retry_after_secs: 5,
            });
        }
        Ok(counts.into_iter().max().unwrap_or(0))
    }
}

impl Storage for ClusterStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.fenced(|r| self.write_with(r, batch, false))
    }

    /// Each replica stores the points it does not hold yet, as a write routes them; a
    /// replica that missed it gets no hint (a hint would be an ordinary write).
    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.fenced(|r| self.write_with(r, batch, true))
    }

    fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        if q.work_limit.is_some() {
            return Ok(Read::OverWorkLimit);
        }
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.fenced(|r| self.query_with(r, q))
    }

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        let r = self.routing();
        let selection = Selection::new(metric, filter, range);
        let (lists, silent) = self.everyone(&r, |c, _| {
            let selection = selection.clone();
            async move { c.series_keys(&selection).await }
        })?;
        self.note_missing(&r, &silent, "series keys");
        let merged: BTreeSet<SeriesKey> = lists.into_iter().flatten().collect();
        Ok(merged.into_iter().collect())
    }

    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.names_of("metric_names", prefix)
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.names_of("tag_names", None)
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.names_of("tag_values", None)
    }

    /// Answers the most series one worker touched (each series is on several).
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        self.fenced(|r| self.delete_with(r, request))
    }

    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        let r = self.routing();
        let selection = Selection::new(metric, &TagFilter::default(), range);
        let (counts, _) = self.everyone(&r, |c, _| {
            let selection = selection.clone();
            async move { c.index(&selection).await }
        })?;
        Ok(counts.into_iter().max().unwrap_or(0))
    }

    fn sync(&self) -> Result<(), StorageError> {
        let r = self.routing();
        for slot in self.slots.lock().values() {
            if let Some(q) = &slot.hints {
                q.sync()?;
            }
        }
        let (_, silent) = self.everyone(&r, |c, _| async move { c.sync().await })?;
        match silent.is_empty() {
            true => Ok(()),
            false => Err(StorageError::Unavailable {
                message: format!("{} worker(s) did not sync", silent.len()),
                retry_after_secs: 1,
            }),
        }
    }

    /// Ready while every partition has a replica that answers healthy.
    fn health(&self) -> HealthStatus {
        self.cluster_health().status
    }

    /// The workers count each series' buckets where the points are (`moves.rs` is not
    /// involved: `kairosdb_query::fold::reduce` on the worker's read).
    fn folds_counts(&self) -> bool {
        true
    }

    fn stats(&self) -> StorageStats {
        let mut stats = self.counters.collect();
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        let pending: u64 = slots.iter().map(|s| s.pending_hints()).sum();
        let r = self.routing();
        stats.labeled = Self::per_worker(&slots);
        stats.gauges.extend([
            (
                "cluster_hinted_points",
                "Points kept as hints for workers that missed them, not yet delivered.",
                pending as f64,
            ),
            (
                "cluster_workers",
                "Workers this control node routes to.",
                r.workers.len() as f64,
            ),
            (
                "cluster_layout_epoch",
                "The layout epoch this control node routes by.",
                r.epoch as f64,
            ),
            (
                "cluster_moving",
                "1 while partitions are moving between workers.",
                f64::from(u8::from(r.moving())),
            ),
        ]);
        stats
    }
}

impl ClusterStorage {
    /// `/metrics` per worker routed to (since this node started), labelled `worker`.
    fn per_worker(slots: &[Arc<Slot>]) -> Vec<Labeled> {
        let figure = |name, help, kind, read: &dyn Fn(&Slot) -> f64| Labeled {
            name,
            help,
            kind,
            label: "worker",
            values: slots
                .iter()
                .map(|s| (s.client.address.clone(), read(s)))
                .collect(),
        };
        vec![
            figure(
                "cluster_worker_calls_total",
                "Calls this control node made to the worker.",
                Kind::Counter,
                &|s| s.calls.load(Ordering::Relaxed) as f64,
            ),
            figure(
                "cluster_worker_call_errors_total",
                "Calls to the worker that got no answer (down, slow or unreachable).",
                Kind::Counter,
                &|s| s.unanswered.load(Ordering::Relaxed) as f64,
            ),
            figure(
                "cluster_worker_call_seconds_sum",
                "Time the calls to the worker took, in total (only grows; a gauge because it \
                 is fractional); divided by the calls, their mean.",
                Kind::Gauge,
                &|s| s.call_ns.load(Ordering::Relaxed) as f64 / 1e9,
            ),
            figure(
                "cluster_worker_up",
                "1 while the worker answered its last call.",
                Kind::Gauge,
                &|s| f64::from(u8::from(s.answered_last.load(Ordering::Relaxed))),
            ),
            figure(
                "cluster_worker_hinted_points",
                "Points kept as hints for the worker, not yet delivered.",
                Kind::Gauge,
                &|s| s.pending_hints() as f64,
            ),
        ]
    }
}

/// Metadata is the Raft state's (`ClusterOptions::metadata`).
impl ServiceStore for ClusterStorage {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.opts
            .metadata
            .set_value(service, service_key, key, value)
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.opts.metadata.get_value(service, service_key, key)
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.opts.metadata.list_service_keys(service)
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.opts
            .metadata
            .list_keys(service, service_key, starts_with)
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.opts.metadata.delete_key(service, service_key, key)
    }
}

impl ClusterStorage {
    /// Closes the hint queues (what they keep is delivered after the next start).
    pub fn close(&self) -> Result<(), StorageError> {
        let mut result = Ok(());
        for slot in self.slots.lock().values() {
            if let Some(q) = &slot.hints {
                if let Err(e) = q.close() {
                    tracing::warn!(error = %e, "closing a hint queue");
                    result = Err(e);
                }
            }
        }
        result
    }
}

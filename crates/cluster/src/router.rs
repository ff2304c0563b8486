//! The control node's storage: the whole cluster behind the `Storage` seam, so the HTTP
//! API, the query engine, roll-ups and self-metrics run on a control node unchanged
//! (docs/cluster.md: writes, reads, hints).
//!
//! * `write`: each series to every replica of its partition, all workers at once; acknowledged
//!   when every series has `write_min_replicas` replicas that stored it. A replica that
//!   failed gets its share as a hint (`hints.rs`).
//! * `query`: each partition read from one replica (the first that has no pending hints
//!   here, then the others); a worker that does not answer has its partitions asked of
//!   their next replicas; partitions nobody answered for make a [`Read::Partial`].
//! * names, tags and series keys: every worker, merged; deletes: every worker, or an error.
//! * metadata: on the replicas of the service's partition.
//! * the analytics plan's `/compute`: pushed down to one replica per partition like a
//!   read, the partial aggregates merged here ([`ClusterStorage::compute`]).
//!
//! Storage calls are synchronous and come from blocking threads; they run their network
//! calls on this router's own small runtime (the Cassandra driver's arrangement).
//! A read that sets a work limit answers [`Read::OverWorkLimit`] at once: it would wait on
//! the network.
//!
//! Not here: the worker's side of the calls (the server's `cluster` module), membership
//! changes (docs/cluster.md, planned).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use kairosdb_engine::{DeliveryQueue, QueueOptions, WalSync};
use kairosdb_model::{
    partition_of, Coverage, DeleteRequest, HealthStatus, Read, SeriesData, SeriesKey, SeriesPoints,
    SeriesQuery, ServiceStore, Shard, Storage, StorageError, StorageStats, TagFilter, Tags,
    TimeRange, WriteBatch,
};

use crate::analytics::{self, ComputeRequest, Partials};
use crate::client::{CallError, MetaAnswer, MetaCall, WorkerClient};
use crate::hints::RemoteWorker;
use crate::placement::{Placement, WorkerId};
use crate::wire::{self, ReadRequest, Selection};

/// How a control node reaches and uses its workers.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `host:port` of each worker's HTTP listener.
    pub workers: Vec<String>,
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
    /// In the order of `cluster_workers`.
    pub workers: Vec<WorkerState>,
    /// What [`Storage::health`] answers.
    pub status: HealthStatus,
}

/// The cluster as a `Storage`.
pub struct ClusterStorage {
    placement: Placement,
    workers: Vec<Arc<WorkerClient>>,
    /// `hints[w]`: what worker `w` missed, on its way to it.
    hints: Vec<Option<DeliveryQueue>>,
    min_replicas: usize,
    runtime: tokio::runtime::Runtime,
    counters: Counters,
}

impl ClusterStorage {
    /// Connects to nothing yet: workers are called on demand. Opens the hint queues (and
    /// starts delivering what they kept from before).
    pub fn open(opts: ClusterOptions) -> Result<ClusterStorage, StorageError> {
        if opts.workers.is_empty() {
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
        let ids: Vec<WorkerId> = opts
            .workers
            .iter()
            .map(|a| WorkerId::of_address(a))
            .collect();
        let workers: Vec<Arc<WorkerClient>> = opts
            .workers
            .iter()
            .zip(&ids)
            .map(|(address, id)| {
                let secret = opts.secret.as_deref();
                Arc::new(WorkerClient::new(
                    *id,
                    address,
                    opts.request_timeout,
                    secret,
                ))
            })
            .collect();
        let mut hints = Vec::with_capacity(workers.len());
        for w in &workers {
            hints.push(match &opts.hints_dir {
                None => None,
                Some(dir) => {
                    let remote = Arc::new(RemoteWorker::new(w.clone(), runtime.handle().clone()));
                    let queue = QueueOptions {
                        max_bytes: opts.hints_max_bytes,
                        // A hint stands in for a replica's acknowledgement: on disk first.
                        sync: WalSync::Always,
                        ..QueueOptions::new(dir.join(w.id.to_string()))
                    };
                    Some(DeliveryQueue::open(remote, queue)?)
                }
            });
        }
        let placement = Placement::new(opts.partitions, opts.replication_factor, &ids);
        let copies = placement.replicas(0).len();
        Ok(ClusterStorage {
            placement,
            workers,
            hints,
            min_replicas: opts.write_min_replicas.clamp(1, copies),
            runtime,
            counters: Counters::default(),
        })
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Workers this control node routes to (what a whole answer's `total_nodes` is).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The `host:port` of the first replica of the series `metric` + `tags`: the worker
    /// its partition calls home (the analytics plan's `worker_node`).
    pub fn home_address(&self, metric: &str, tags: &Tags) -> &str {
        let partition = partition_of(metric, tags, self.placement.partitions());
        let home = self.placement.replicas(partition)[0];
        &self.workers[home].address
    }

    /// The analytics plan's `/compute` pushed down: each partition's partial aggregates
    /// from one replica (as [`Storage::query`] reads), merged here exactly. The coverage
    /// is set when some partition had no replica that answered.
    pub fn compute(
        &self,
        request: &ComputeRequest,
    ) -> Result<(Partials, Option<Coverage>), StorageError> {
        self.counters.computes.fetch_add(1, Ordering::Relaxed);
        let all = (0..self.placement.partitions()).collect();
        let (answers, coverage) = self.scatter(all, |c, shard| {
            let request = ComputeRequest {
                shard: Some((shard.partitions(), shard.iter().collect())),
                ..request.clone()
            };
            async move { c.compute(&request).await }
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
        let answers = self.fan_out((0..self.workers.len()).collect(), |c, _| async move {
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
                id: self.workers[w].id,
                address: self.workers[w].address.clone(),
                healthy,
                detail,
            });
        }
        let status = self.health_status(&workers, &down);
        ClusterHealth { workers, status }
    }

    fn health_status(&self, workers: &[WorkerState], down: &BTreeSet<usize>) -> HealthStatus {
        let detail: Vec<String> = workers
            .iter()
            .filter(|w| !w.healthy)
            .map(|w| format!("{}: {}", w.address, w.detail))
            .collect();
        let uncovered = self.uncovered(down);
        HealthStatus {
            ok: uncovered == 0,
            detail: match (down.len(), uncovered) {
                (0, _) => format!("{} workers healthy", self.workers.len()),
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

    /// Points waiting in the hints for worker `w`.
    fn pending_hints(&self, w: usize) -> u64 {
        self.hints[w]
            .as_ref()
            .map_or(0, |q| q.stats().backlog_points)
    }

    /// Hands every worker's share of a call to it at once; answers in worker order.
    fn fan_out<T, F, Fut>(&self, targets: Vec<usize>, call: F) -> Vec<(usize, Result<T, CallError>)>
    where
        F: Fn(Arc<WorkerClient>, usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let calls = targets.iter().map(|&w| call(self.workers[w].clone(), w));
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
    fn everyone<T, F, Fut>(&self, call: F) -> Result<(Vec<T>, Vec<usize>), StorageError>
    where
        F: Fn(Arc<WorkerClient>, usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut answers = Vec::new();
        let mut silent = Vec::new();
        for (w, answer) in self.fan_out((0..self.workers.len()).collect(), call) {
            match answer {
                Ok(a) => answers.push(a),
                Err(CallError::Unreachable(why)) => {
                    tracing::warn!(worker = %self.workers[w].address, %why, "worker did not answer");
                    silent.push(w);
                }
                Err(CallError::Refused(e)) => return Err(e),
            }
        }
        Ok((answers, silent))
    }

    /// The partitions with no replica among `up` workers.
    fn uncovered(&self, down: &BTreeSet<usize>) -> usize {
        (0..self.placement.partitions())
            .filter(|&p| self.placement.replicas(p).iter().all(|w| down.contains(w)))
            .count()
    }

    /// Asks every partition of `todo` of one of its replicas, each worker for all its
    /// partitions at once (`call` with that worker's [`Shard`]), preferring replicas with
    /// no hints pending here (they hold everything written). A worker that does not answer
    /// has its partitions asked of their next replicas. Answers what came back and, when
    /// some partition had no replica that answered, how many workers did.
    fn scatter<T, F, Fut>(
        &self,
        mut todo: Vec<u32>,
        call: F,
    ) -> Result<(Vec<T>, Option<Coverage>), StorageError>
    where
        F: Fn(Arc<WorkerClient>, Shard) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let partitions = self.placement.partitions();
        let pending: Vec<u64> = (0..self.workers.len())
            .map(|w| self.pending_hints(w))
            .collect();
        let mut down: BTreeSet<usize> = BTreeSet::new();
        let mut missing = 0usize;
        let mut out = Vec::new();
        while !todo.is_empty() {
            let mut assigned: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for p in todo.drain(..) {
                let best = self
                    .placement
                    .replicas(p)
                    .iter()
                    .filter(|w| !down.contains(w))
                    .min_by_key(|&&w| pending[w] > 0);
                match best {
                    Some(&w) => assigned.entry(w).or_default().push(p),
                    None => missing += 1,
                }
            }
            let answers = self.fan_out(assigned.keys().copied().collect(), |c, w| {
                call(c, Shard::new(partitions, assigned[&w].iter().copied()))
            });
            for (w, answer) in answers {
                match answer {
                    Ok(t) => out.push(t),
                    Err(CallError::Refused(e)) => return Err(e),
                    Err(CallError::Unreachable(why)) => {
                        tracing::warn!(worker = %self.workers[w].address, %why, "read failed over");
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
        let total = self.workers.len() as u32;
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
        let prefix = prefix.map(str::to_owned);
        let (lists, silent) = self.everyone(|c, _| {
            let prefix = prefix.clone();
            async move { c.names(kind, prefix.as_deref()).await }
        })?;
        self.note_missing(&silent, kind);
        let merged: BTreeSet<String> = lists.into_iter().flatten().collect();
        Ok(merged.into_iter().collect())
    }

    /// A listing that some workers did not answer: complete when their partitions have
    /// other replicas that did, else logged and counted as partial (listings have no
    /// place for a partial flag).
    fn note_missing(&self, silent: &[usize], what: &str) {
        let down: BTreeSet<usize> = silent.iter().copied().collect();
        if !down.is_empty() && self.uncovered(&down) > 0 {
            self.counters.partial_reads.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                what,
                workers_down = down.len(),
                "listing is missing the partitions of unreachable workers"
            );
        }
    }

    /// The replicas holding the metadata of `service`, best first.
    fn meta_replicas(&self, service: &str) -> Vec<usize> {
        let p = partition_of(service, &Default::default(), self.placement.partitions());
        self.placement.replicas(p).to_vec()
    }

    /// A metadata change: every replica of the service's partition, enough of them must
    /// answer.
    fn meta_change(&self, call: MetaCall, service: &str) -> Result<(), StorageError> {
        let replicas = self.meta_replicas(service);
        let answers = self.fan_out(replicas, |c, _| {
            let call = call.clone();
            async move { c.meta(&call).await }
        });
        let mut stored = 0;
        let mut last = None;
        for (_, answer) in answers {
            match answer {
                Ok(_) => stored += 1,
                Err(CallError::Refused(e)) => return Err(e),
                Err(e) => last = Some(e.into_storage_error()),
            }
        }
        match (stored >= self.min_replicas, last) {
            (true, _) | (false, None) => Ok(()),
            (false, Some(e)) => Err(e),
        }
    }

    /// A metadata read: the first replica that answers.
    fn meta_read(&self, call: MetaCall, service: &str) -> Result<MetaAnswer, StorageError> {
        let mut last = None;
        for w in self.meta_replicas(service) {
            let answer = self.runtime.block_on(self.workers[w].meta(&call));
            match answer {
                Ok(a) => return Ok(a),
                Err(CallError::Refused(e)) => return Err(e),
                Err(e) => last = Some(e.into_storage_error()),
            }
        }
        Err(last.unwrap_or_else(|| StorageError::Internal("no replica for metadata".into())))
    }

    fn list(answer: MetaAnswer) -> Vec<String> {
        match answer {
            MetaAnswer::List(l) => l,
            MetaAnswer::Value(_) => Vec::new(),
        }
    }
}

impl Storage for ClusterStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let partitions = self.placement.partitions();
        // Each series' replicas, and each worker's share.
        let mut replicas_of = Vec::with_capacity(batch.series.len());
        let mut shares: BTreeMap<usize, Vec<SeriesPoints>> = BTreeMap::new();
        for s in &batch.series {
            let p = partition_of(&s.key.metric, &s.key.tags, partitions);
            let replicas = self.placement.replicas(p);
            for &w in replicas {
                shares.entry(w).or_default().push(s.clone());
            }
            replicas_of.push(replicas);
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
        let answers = self.fan_out(shares.keys().copied().collect(), |c, w| {
            let body = bodies[&w].clone();
            async move { c.write(body).await }
        });
        let mut stored = vec![false; self.workers.len()];
        let mut refusal: Option<StorageError> = None;
        let mut missed = Vec::new();
        for (w, answer) in answers {
            match answer {
                Ok(()) => stored[w] = true,
                // The same bad input every replica would refuse: not a replica failure.
                Err(CallError::Refused(e @ StorageError::InvalidInput(_))) => return Err(e),
                Err(e) => {
                    self.counters.replica_misses.fetch_add(1, Ordering::Relaxed);
                    let e = e.into_storage_error();
                    tracing::debug!(worker = %self.workers[w].address, error = %e, "replica missed a write");
                    missed.push(w);
                    refusal = Some(e);
                }
            }
        }
        for w in missed {
            if let Some(queue) = &self.hints[w] {
                match queue.write(&shares[&w]) {
                    Ok(()) => {
                        self.counters.hinted_batches.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(worker = %self.workers[w].address, error = %e, "hint not kept");
                    }
                }
            }
        }
        let short = replicas_of
            .iter()
            .filter(|replicas| replicas.iter().filter(|&&w| stored[w]).count() < self.min_replicas)
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
                    replicas_of.len(),
                    self.min_replicas,
                    other.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
                retry_after_secs: 1,
            },
        })
    }

    fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        if q.work_limit.is_some() {
            return Ok(Read::OverWorkLimit);
        }
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let partitions = self.placement.partitions();
        // A caller's shard over the cluster's partitions selects them; over another count
        // it is applied to what comes back.
        let (todo, filter_after): (Vec<u32>, Option<&Shard>) = match &q.shard {
            Some(shard) if shard.partitions() == partitions => (shard.iter().collect(), None),
            Some(shard) => ((0..partitions).collect(), Some(shard)),
            None => ((0..partitions).collect(), None),
        };
        let (answers, coverage) = self.scatter(todo, |c, shard| {
            let request = ReadRequest::new(&SeriesQuery {
                shard: Some(shard),
                ..q.clone()
            });
            async move { c.read(&request).await }
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

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        let selection = Selection::new(metric, filter, range);
        let (lists, silent) = self.everyone(|c, _| {
            let selection = selection.clone();
            async move { c.series_keys(&selection).await }
        })?;
        self.note_missing(&silent, "series keys");
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

    /// Every worker must answer: a worker that missed a delete would bring the points back
    /// when it returns (deletes are not hinted). Answers the most series one worker
    /// touched (each series is on several).
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        let selection = Selection::new(&request.metric, &request.filter, request.range);
        let (counts, silent) = self.everyone(|c, _| {
            let selection = selection.clone();
            async move { c.delete(&selection).await }
        })?;
        if !silent.is_empty() {
            let names: Vec<&str> = silent
                .iter()
                .map(|&w| self.workers[w].address.as_str())
                .collect();
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

    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        let selection = Selection::new(metric, &TagFilter::default(), range);
        let (counts, _) = self.everyone(|c, _| {
            let selection = selection.clone();
            async move { c.index(&selection).await }
        })?;
        Ok(counts.into_iter().max().unwrap_or(0))
    }

    fn sync(&self) -> Result<(), StorageError> {
        for q in self.hints.iter().flatten() {
            q.sync()?;
        }
        let (_, silent) = self.everyone(|c, _| async move { c.sync().await })?;
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

    fn stats(&self) -> StorageStats {
        let mut stats = self.counters.collect();
        let pending: u64 = (0..self.workers.len()).map(|w| self.pending_hints(w)).sum();
        stats.gauges.push((
            "cluster_hinted_points",
            "Points kept as hints for workers that missed them, not yet delivered.",
            pending as f64,
        ));
        stats.gauges.push((
            "cluster_workers",
            "Workers this control node routes to.",
            self.workers.len() as f64,
        ));
        stats
    }
}

impl ServiceStore for ClusterStorage {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        let call = MetaCall::Set {
            service: service.into(),
            service_key: service_key.into(),
            key: key.into(),
            value: value.into(),
        };
        self.meta_change(call, service)
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        let call = MetaCall::Get {
            service: service.into(),
            service_key: service_key.into(),
            key: key.into(),
        };
        Ok(match self.meta_read(call, service)? {
            MetaAnswer::Value(v) => v,
            MetaAnswer::List(_) => None,
        })
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        let call = MetaCall::ServiceKeys {
            service: service.into(),
        };
        self.meta_read(call, service).map(Self::list)
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        let call = MetaCall::Keys {
            service: service.into(),
            service_key: service_key.into(),
            starts_with: starts_with.map(str::to_owned),
        };
        self.meta_read(call, service).map(Self::list)
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        let call = MetaCall::Delete {
            service: service.into(),
            service_key: service_key.into(),
            key: key.into(),
        };
        self.meta_change(call, service)
    }
}

impl ClusterStorage {
    /// Closes the hint queues (what they keep is delivered after the next start).
    pub fn close(&self) -> Result<(), StorageError> {
        let mut result = Ok(());
        for q in self.hints.iter().flatten() {
            if let Err(e) = q.close() {
                tracing::warn!(error = %e, "closing a hint queue");
                result = Err(e);
            }
        }
        result
    }
}

//! When roll-up tasks run, and on which process (spec §13.1).
//!
//! One loop per server: every pass reads the task list from the store (so tasks created
//! through another process sharing the Cassandra keyspace are seen), runs each task that
//! is due on a blocking thread, one task at a time, and sleeps until the next one is due,
//! a task changes ([`Rollups::wake`]) or [`POLL`] passes.
//!
//! * A task is due at start-up (a restart catches up at once), then every
//!   `execution_interval` after its last execution, or right away while its catch-up
//!   still has periods waiting.
//! * **One process per task.** With a store several processes share (Cassandra), a
//!   process takes the task's lease in the store (`_Rollups`/`Lease`) before running it:
//!   it writes itself as owner for [`LEASE`], waits [`SETTLE`], and reads the lease back;
//!   only the owner it reads runs the task. The store's last write wins, so all
//!   contenders read the same owner once their writes have landed. Deliberately not
//!   claimed: a process that stalls for longer than [`SETTLE`] between reading an expired
//!   lease and writing its own can run beside the owner for one execution; both then
//!   write the same points (re-running a period is idempotent, `run.rs`).
//!   A dead owner's lease expires after [`LEASE`] and another process takes over.
//! * A failing task records its error in its status and runs again at its next
//!   interval; the other tasks do not wait for it.
//!
//! Not here: what an execution does (`run.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::{BatchBuilder, Tags, Value};
use kairosdb_protocol::rollup::RollupTask;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::periods::duration;
use super::run::{kairos_date, Execution, Limits, Outcome};
use super::store::{Lease, TaskStatus};
use super::Rollups;
use crate::http::now_ms;

/// Longest sleep between passes (tasks added by another process are seen this late).
pub const POLL: Duration = Duration::from_secs(5);
/// How long a lease holds without being renewed.
pub const LEASE: Duration = Duration::from_secs(120);
/// How long contenders wait for each other's lease writes to land.
pub const SETTLE: Duration = Duration::from_millis(500);
/// Periods per roll-up metric per execution; a longer catch-up continues at the next pass.
const MAX_PERIODS: usize = 500;

/// How the loop is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Host name for statuses and self-metrics.
    pub host: String,
    /// This process's name in leases: stable across restarts (host and HTTP address),
    /// so a restarted process takes its own lease back at once instead of waiting for
    /// it to expire.
    pub owner: String,
    /// Whether other processes may share the store (Cassandra): leases then settle.
    pub shared_store: bool,
    /// `Some(ttl)`: write `kairosdb.rollup.*` self-metrics with this TTL.
    pub self_metrics_ttl: Option<u32>,
}

/// Starts the loop; it ends when `shutdown` is cancelled (an execution in progress stops
/// after its current period).
pub fn spawn(
    rollups: Arc<Rollups>,
    options: Options,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let owner = options.owner.clone();
        let mut scheduler = Scheduler {
            rollups,
            options,
            owner,
            next: HashMap::new(),
            lag: HashMap::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let stop = scheduler.stop.clone();
        let watch = shutdown.clone();
        tokio::spawn(async move {
            watch.cancelled().await;
            stop.store(true, Ordering::Relaxed);
        });
        loop {
            let sleep = scheduler.pass().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = scheduler.rollups.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    })
}

struct Scheduler {
    rollups: Arc<Rollups>,
    options: Options,
    /// This process's lease owner id.
    owner: String,
    /// Task id → when it is next due (ms).
    next: HashMap<String, i64>,
    /// Task id → how far its least advanced roll-up metric was behind after its last
    /// execution here (ms).
    lag: HashMap<String, i64>,
    stop: Arc<AtomicBool>,
}

impl Scheduler {
    /// Runs every due task once; returns how long to sleep.
    async fn pass(&mut self) -> Duration {
        let store = self.rollups.store.clone();
        let tasks = match tokio::task::spawn_blocking(move || store.tasks()).await {
            Ok(Ok(tasks)) => tasks,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading roll-up tasks failed");
                return POLL;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading roll-up tasks panicked");
                return POLL;
            }
        };
        self.rollups
            .metrics
            .tasks
            .store(tasks.len() as i64, Ordering::Relaxed);
        self.next.retain(|id, _| tasks.contains_key(id));
        self.lag.retain(|id, _| tasks.contains_key(id));
        self.rollups
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id| tasks.contains_key(id));
        for (id, json) in tasks {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let now = now_ms();
            if self.next.get(&id).is_some_and(|due| *due > now) {
                continue;
            }
            let task = match Rollups::parse(&json, now) {
                Ok(task) => task,
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "roll-up task skipped");
                    self.next.insert(id, now + 60_000);
                    continue;
                }
            };
            let interval = duration(
                task.execution_interval,
                &kairosdb_query::time::Zone::UTC,
                now,
            )
            .max(1);
            if !self.take_lease(&id, now).await {
                self.rollups
                    .scheduled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                self.next.insert(id, now + POLL.as_millis() as i64);
                continue;
            }
            self.rollups
                .scheduled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone());
            let outcome = self.execute(&id, task.clone(), now, interval).await;
            let due = if outcome.backlog { now } else { now + interval };
            self.lag
                .insert(id.clone(), oldest_lag(&outcome, now, &task));
            self.next.insert(id, due);
        }
        let lag = self.lag.values().max().copied().unwrap_or(0);
        self.rollups
            .metrics
            .lag_seconds
            .store(lag / 1000, Ordering::Relaxed);
        let now = now_ms();
        let soonest = self
            .next
            .values()
            .min()
            .copied()
            .unwrap_or(now + POLL.as_millis() as i64);
        Duration::from_millis(
            soonest
                .saturating_sub(now)
                .clamp(0, POLL.as_millis() as i64) as u64,
        )
    }

    /// Takes or renews the task's lease; false when another live process holds it.
    /// Without a shared store (the embedded engine, one process per data directory) the
    /// task is always this process's.
    async fn take_lease(&self, id: &str, now: i64) -> bool {
        if !self.options.shared_store {
            return true;
        }
        let store = self.rollups.store.clone();
        let (id, owner) = (id.to_owned(), self.owner.clone());
        let lease = Lease {
            owner: owner.clone(),
            until: now + LEASE.as_millis() as i64,
        };
        let held_elsewhere = {
            let (store, id) = (store.clone(), id.clone());
            let current = tokio::task::spawn_blocking(move || store.lease(&id)).await;
            match current {
                Ok(Ok(Some(l))) => l.owner != owner && l.until > now,
                Ok(Ok(None)) => false,
                _ => return false,
            }
        };
        if held_elsewhere {
            return false;
        }
        let written = {
            let (store, id, lease) = (store.clone(), id.clone(), lease.clone());
            tokio::task::spawn_blocking(move || store.put_lease(&id, &lease)).await
        };
        if !matches!(written, Ok(Ok(()))) {
            return false;
        }
        tokio::time::sleep(SETTLE).await;
        let back = tokio::task::spawn_blocking(move || store.lease(&id)).await;
        matches!(back, Ok(Ok(Some(l))) if l.owner == lease.owner)
    }

    /// One execution on a blocking thread; its status and self-metrics are written.
    async fn execute(&self, id: &str, task: RollupTask, now: i64, interval: i64) -> Outcome {
        let rollups = self.rollups.clone();
        let stop = self.stop.clone();
        let (task_id, host) = (id.to_owned(), self.options.host.clone());
        let ttl = self.options.self_metrics_ttl;
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = execute_blocking(&rollups, &task_id, &task, now, &stop);
            let status = TaskStatus {
                statuses: outcome.statuses.clone(),
                executing_host: host.clone(),
                next_scheduled: kairos_date(if outcome.backlog { now } else { now + interval }),
            };
            if let Err(e) = rollups.store.put_status(&task_id, &status) {
                tracing::warn!(task = %task_id, error = %e, "writing roll-up status failed");
            }
            if let Some(ttl) = ttl {
                write_self_metrics(&rollups, &task, &outcome, &host, ttl, now);
            }
            outcome
        })
        .await;
        match joined {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(task = %id, error = %e, "roll-up execution panicked");
                self.rollups
                    .metrics
                    .failures
                    .fetch_add(1, Ordering::Relaxed);
                Outcome::default()
            }
        }
    }
}

/// Reads the progress, runs the task, counts what it did.
fn execute_blocking(
    rollups: &Rollups,
    id: &str,
    task: &RollupTask,
    now: i64,
    stop: &AtomicBool,
) -> Outcome {
    let progress = match rollups.store.progress(id) {
        Ok(p) => p,
        Err(e) => {
            // Unreadable progress is not overwritten: that could roll periods up twice
            // or skip them. The status says why the task is not running.
            tracing::error!(task = %id, error = %e, "roll-up progress unreadable; task not run");
            rollups.metrics.failures.fetch_add(1, Ordering::Relaxed);
            let statuses = task
                .rollups
                .iter()
                .flat_map(|r| r.query.metrics.iter())
                .map(|m| super::store::MetricStatus {
                    metric_name: m.name.clone(),
                    last_executed: kairos_date(now),
                    last_execution_time: now,
                    error_message: Some(e.to_string()),
                    ..Default::default()
                })
                .collect();
            return Outcome {
                statuses,
                ..Outcome::default()
            };
        }
    };
    let save = |p: &super::store::Progress| rollups.store.put_progress(id, p);
    let execution = Execution {
        storage: &*rollups.storage,
        task,
        now,
        limits: Limits {
            max_periods: MAX_PERIODS,
            late_window_ms: rollups.late_window_ms,
        },
        stop,
        save: &save,
    };
    let outcome = execution.run(progress);
    let m = &rollups.metrics;
    m.executions.fetch_add(1, Ordering::Relaxed);
    m.periods.fetch_add(outcome.periods, Ordering::Relaxed);
    m.reruns.fetch_add(outcome.reruns, Ordering::Relaxed);
    m.points.fetch_add(outcome.points, Ordering::Relaxed);
    m.failures.fetch_add(outcome.failures, Ordering::Relaxed);
    outcome
}

/// How long ago the oldest complete period not yet rolled up ended (ms): 0 when every
/// roll-up metric of the task is current.
fn oldest_lag(outcome: &Outcome, now: i64, task: &RollupTask) -> i64 {
    let mut lag = 0;
    for m in &outcome.progress.metrics {
        let Some(rollup) = task.rollups.get(m.rollup) else {
            continue;
        };
        if m.metric >= rollup.query.metrics.len() {
            continue;
        }
        let zone = kairosdb_query::time::Zone::resolve(rollup.query.time_zone.as_deref())
            .unwrap_or_default();
        let grid = super::periods::Grid::new(rollup.period(m.metric), zone, m.origin);
        let next = grid.period_of(m.done_through);
        if next.end <= now {
            lag = lag.max(now - next.end);
        }
    }
    lag
}

/// KairosDB's roll-up statistics (`RollupStats`): per roll-up, tags `rollup` (save_as),
/// `rollup-task` (task name) and, for the time, `status`.
fn write_self_metrics(
    rollups: &Rollups,
    task: &RollupTask,
    outcome: &Outcome,
    host: &str,
    ttl: u32,
    now: i64,
) {
    let mut b = BatchBuilder::new();
    let mut k = 0;
    for rollup in &task.rollups {
        let n = rollup.query.metrics.len();
        let statuses = outcome.statuses.get(k..k + n).unwrap_or(&[]);
        k += n;
        let failed = statuses.iter().any(|s| s.error_message.is_some());
        let time: u64 = statuses.iter().map(|s| s.execution_length).sum();
        let base = [
            ("host", host),
            ("rollup", rollup.save_as.as_str()),
            ("rollup-task", task.name.as_str()),
        ];
        let tags = Tags::from_pairs(base);
        b.push(
            "kairosdb.rollup.job_run_count",
            &tags,
            ttl,
            now,
            Value::Long(1),
        );
        b.push(
            "kairosdb.rollup.job_query_count",
            &tags,
            ttl,
            now,
            Value::Long(n as i64),
        );
        let status = if failed { "failure" } else { "success" };
        let timed = Tags::from_pairs(base.into_iter().chain([("status", status)]));
        b.push(
            "kairosdb.rollup.execution_time",
            &timed,
            ttl,
            now,
            Value::Long(time as i64),
        );
    }
    if let Err(e) = rollups.storage.write(&b.finish()) {
        tracing::warn!(error = %e, "writing roll-up self-metrics failed");
    }
}

//! Roll-ups (spec §1.14, §13.1): tasks that keep downsampled copies of metrics current.
//! A task runs its queries every `execution_interval`, one period of the last range
//! aggregator's sampling at a time, and saves the results as the `save_as` metric.
//!
//! Files, in the order data flows:
//! * `kairosdb_protocol::rollup`: task JSON → [`RollupTask`], KairosDB's validation texts;
//! * [`store`]: tasks, statuses, progress and leases in the metadata store (`_Rollups`);
//! * [`scheduler`]: which task runs when, and on which process (leases);
//! * [`run`]: one execution: catch-up, late-data re-runs, progress after every period;
//! * [`periods`]: the period grid.
//!
//! The REST API is `http/rollups.rs`; it reaches this module through [`Rollups`].
//!
//! Not here: a query engine or a writer of its own. Periods run through
//! `kairosdb_query::execute` and write through its `save_as` aggregator, on the one
//! storage handle every request uses, so roll-ups behave the same on every backend.

pub mod periods;
pub mod run;
pub mod scheduler;
pub mod store;

use std::sync::Arc;

use kairosdb_model::Storage;
use kairosdb_protocol::rollup::RollupTask;

use store::TaskStore;

kairosdb_model::metrics! {
    /// Roll-up progress and errors, on `/metrics` as `kairosdb_rollup_*`.
    #[derive(Debug, Default)]
    pub struct RollupMetrics {
        counter periods: "rollup_periods_total",
            "Roll-up periods rolled up for the first time.";
        counter reruns: "rollup_period_reruns_total",
            "Roll-up periods rolled up again because late data arrived in them.";
        counter points: "rollup_points_written_total",
            "Points written by roll-ups.";
        counter failures: "rollup_failures_total",
            "Roll-up metric runs that failed (the period is retried at the next run).";
        counter executions: "rollup_executions_total",
            "Roll-up task executions run by this process.";
        gauge tasks: "rollup_tasks",
            "Roll-up tasks defined.";
        gauge lag_seconds: "rollup_lag_seconds",
            "How long ago the oldest complete roll-up period not yet rolled up ended, over the tasks this process runs (0 when all are current).";
    }
}

/// The roll-up tasks of one server, shared by the API and the scheduler.
pub struct Rollups {
    pub store: TaskStore,
    pub storage: Arc<dyn Storage>,
    pub metrics: Arc<RollupMetrics>,
    /// Wakes the scheduler when a task was created, changed or deleted.
    pub wake: tokio::sync::Notify,
    /// How far back late data re-runs a period, in ms.
    pub late_window_ms: i64,
    /// Ids of the tasks this process runs (all of them on a store of its own; those whose
    /// lease it holds on a shared one): KairosDB lists them in `admin/scheduledjobs`.
    pub scheduled: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Rollups {
    pub fn new(storage: Arc<dyn Storage>, late_window_secs: u64) -> Rollups {
        Rollups {
            store: TaskStore::new(storage.clone()),
            storage,
            metrics: Arc::default(),
            wake: tokio::sync::Notify::new(),
            scheduled: Default::default(),
            late_window_ms: i64::try_from(late_window_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    /// A stored task, parsed again (tasks are stored as their JSON, as KairosDB does).
    pub fn parse(json: &str, now: i64) -> Result<RollupTask, String> {
        kairosdb_protocol::rollup::parse_rollup_task(json.as_bytes(), now)
            .map_err(|e| format!("the stored task does not parse: {}", e.message()))
    }
}

#[cfg(test)]
mod tests;

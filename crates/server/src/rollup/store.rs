//! Where roll-up tasks live: the metadata store's `_Rollups` service (spec §13.1), laid out
//! as KairosDB lays it out, so a Cassandra keyspace shared with Java KairosDB shows the same
//! tasks to both:
//!
//! | service key | key | value |
//! |---|---|---|
//! | `Config` | task id | the task JSON with `"id"` first (KairosDB's) |
//! | `Status` | task id | the last run's status, Gson's camelCase field names (KairosDB's) |
//! | `Progress` | task id | ours: each roll-up metric's period grid and how far it is done |
//! | `Lease` | task id | ours: which process runs the task, until when |
//!
//! KairosDB ignores the two service keys it does not know.
//!
//! Not here: deciding what to run (`run.rs`) or when (`scheduler.rs`).

use std::collections::BTreeMap;

use kairosdb_model::{Storage, StorageError};
use serde::{Deserialize, Serialize};

pub const SERVICE: &str = "_Rollups";
const CONFIG: &str = "Config";
const STATUS: &str = "Status";
const PROGRESS: &str = "Progress";
const LEASE: &str = "Lease";

/// The last run of a task as KairosDB stores it (`RollupTaskStatus`, serialized by Gson
/// with its field names) and as the status API answers it (snake_case, `serde` renames
/// at the HTTP edge).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub statuses: Vec<MetricStatus>,
    pub executing_host: String,
    pub next_scheduled: String,
}

/// One roll-up query metric's last run (`RollupQueryMetricStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    pub metric_name: String,
    /// `dd MMM yyyy KK:mm:ss a`, or `Never`.
    pub last_executed: String,
    #[serde(default)]
    pub data_point_count: u64,
    #[serde(default)]
    pub execution_length: u64,
    #[serde(default)]
    pub last_execution_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// How far each roll-up query metric of a task is done.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub metrics: Vec<MetricProgress>,
}

/// One roll-up query metric (`rollups[rollup].query.metrics[metric]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricProgress {
    pub rollup: usize,
    pub metric: usize,
    /// What the progress belongs to: a changed task that saves another metric, or reads
    /// another one, starts over.
    pub save_as: String,
    pub source: String,
    /// A period start: the grid every period of this roll-up lies on.
    pub origin: i64,
    /// Every period ending at or before this instant has been rolled up.
    pub done_through: i64,
    /// Source points counted in each recent period when it was rolled up (period start →
    /// count), to see late data (`run.rs`).
    #[serde(default)]
    pub counts: BTreeMap<i64, u64>,
}

impl Progress {
    pub fn find(&self, rollup: usize, metric: usize) -> Option<&MetricProgress> {
        self.metrics
            .iter()
            .find(|m| m.rollup == rollup && m.metric == metric)
    }

    pub fn put(&mut self, p: MetricProgress) {
        self.metrics
            .retain(|m| !(m.rollup == p.rollup && m.metric == p.metric));
        self.metrics.push(p);
    }
}

/// Which process runs a task until when (ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// The `_Rollups` records of one store.
#[derive(Clone)]
pub struct TaskStore {
    storage: std::sync::Arc<dyn Storage>,
}

impl TaskStore {
    pub fn new(storage: std::sync::Arc<dyn Storage>) -> TaskStore {
        TaskStore { storage }
    }

    /// Every task: id → stored JSON.
    pub fn tasks(&self) -> Result<BTreeMap<String, String>, StorageError> {
        let mut out = BTreeMap::new();
        for id in self.storage.list_keys(SERVICE, CONFIG, None)? {
            if let Some(json) = self.storage.get_value(SERVICE, CONFIG, &id)? {
                out.insert(id, json);
            }
        }
        Ok(out)
    }

    pub fn task(&self, id: &str) -> Result<Option<String>, StorageError> {
        self.storage.get_value(SERVICE, CONFIG, id)
    }

    pub fn put_task(&self, id: &str, json: &str) -> Result<(), StorageError> {
        self.storage.set_value(SERVICE, CONFIG, id, json)
    }

    /// Removes the task and everything kept about it.
    pub fn delete_task(&self, id: &str) -> Result<(), StorageError> {
        self.storage.delete_key(SERVICE, CONFIG, id)?;
        for key in [STATUS, PROGRESS, LEASE] {
            self.storage.delete_key(SERVICE, key, id)?;
        }
        Ok(())
    }

    pub fn status(&self, id: &str) -> Result<Option<TaskStatus>, StorageError> {
        self.read(STATUS, id)
    }

    pub fn put_status(&self, id: &str, status: &TaskStatus) -> Result<(), StorageError> {
        self.write(STATUS, id, status)
    }

    pub fn progress(&self, id: &str) -> Result<Progress, StorageError> {
        Ok(self.read(PROGRESS, id)?.unwrap_or_default())
    }

    pub fn put_progress(&self, id: &str, progress: &Progress) -> Result<(), StorageError> {
        self.write(PROGRESS, id, progress)
    }

    pub fn lease(&self, id: &str) -> Result<Option<Lease>, StorageError> {
        self.read(LEASE, id)
    }

    pub fn put_lease(&self, id: &str, lease: &Lease) -> Result<(), StorageError> {
        self.write(LEASE, id, lease)
    }

    /// A record that does not parse is reported, not ignored: it would otherwise be
    /// overwritten with a fresh one and, for progress, roll periods up a second time.
    fn read<T: for<'de> Deserialize<'de>>(
        &self,
        service_key: &str,
        id: &str,
    ) -> Result<Option<T>, StorageError> {
        let Some(json) = self.storage.get_value(SERVICE, service_key, id)? else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            StorageError::Corruption(format!(
                "{SERVICE}/{service_key}/{id} does not parse ({e}): {json}"
            ))
        })
    }

    fn write<T: Serialize>(
        &self,
        service_key: &str,
        id: &str,
        value: &T,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_string(value)
            .map_err(|e| StorageError::Internal(format!("serializing {service_key}: {e}")))?;
        self.storage.set_value(SERVICE, service_key, id, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_stored_with_kairosdbs_field_names() {
        let status = TaskStatus {
            statuses: vec![MetricStatus {
                metric_name: "cpu".into(),
                last_executed: "Never".into(),
                data_point_count: 3,
                execution_length: 4,
                last_execution_time: 5,
                error_message: None,
            }],
            executing_host: "box".into(),
            next_scheduled: "07 Dec 2026 01:00:00 AM".into(),
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"statuses":[{"metricName":"cpu","lastExecuted":"Never","dataPointCount":3,"executionLength":4,"lastExecutionTime":5}],"executingHost":"box","nextScheduled":"07 Dec 2026 01:00:00 AM"}"#
        );
        // KairosDB's error statuses have no dataPointCount.
        let java = r#"{"statuses":[{"metricName":"cpu","lastExecuted":"x","executionLength":0,"lastExecutionTime":9,"errorMessage":"boom"}],"executingHost":"h","nextScheduled":"Never"}"#;
        let read: TaskStatus = serde_json::from_str(java).unwrap();
        assert_eq!(read.statuses[0].error_message.as_deref(), Some("boom"));
    }
}

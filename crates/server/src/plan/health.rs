//! `GET /health` on cluster nodes, in the plan's shape (`http/health.rs::probe` hands the
//! request here when `role` is not `single`, whose answer stays KairosDB-rs's own):
//!
//! * control: `{status, role, node_id, workers: {total, healthy, nodes: [...]}, raft_status}`;
//! * worker: `{status, role, node_id, storage: {healthy, detail, figures}, raft_status}`
//!   (the figures are `Storage::stats`, as `/metrics` exports them).
//!
//! `status` is `healthy`, `degraded` (a control node with some workers down but a healthy
//! replica for every partition) or `unhealthy` (some partition without one, or a worker's
//! storage refusing work); `unhealthy` answers 503, the others 200, so a load balancer
//! that only reads the status keeps working.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::config::{Config, NodeRole};
use crate::http::{blocking, json_response, ApiError, AppState};

/// The plan's `/health` for this node's role.
pub async fn respond(state: &Arc<AppState>) -> Result<Response, ApiError> {
    let shared = state.clone();
    let (status, body) = blocking(move || {
        Ok(match shared.config.role {
            NodeRole::Control => control(&shared),
            NodeRole::Worker | NodeRole::Single => worker(&shared),
        })
    })
    .await?;
    let code = match status {
        "unhealthy" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(code, bytes))
}

fn control(state: &AppState) -> (&'static str, Value) {
    let me = node_id(&state.config);
    let Some(cluster) = state.cluster.as_ref().and_then(|f| f.cluster().ok()) else {
        // Not placed yet (`cluster::forming`): the storage says why.
        let health = state.storage.health();
        let status = if health.ok { "healthy" } else { "unhealthy" };
        let body = json!({"status": status, "role": "control", "node_id": me,
            "workers": {"total": 0, "healthy": 0, "nodes": []},
            "raft_status": raft_status(state, members(&me, "control", &[]))});
        return (status, body);
    };
    let health = cluster.cluster_health();
    let healthy = health.workers.iter().filter(|w| w.healthy).count();
    let status = match (health.status.ok, healthy == health.workers.len()) {
        (true, true) => "healthy",
        (true, false) => "degraded",
        (false, _) => "unhealthy",
    };
    let nodes: Vec<Value> = health
        .workers
        .iter()
        .map(|w| json!({"id": w.id.to_string(), "address": w.address, "healthy": w.healthy, "detail": w.detail}))
        .collect();
    let workers: Vec<(String, String)> = health
        .workers
        .iter()
        .map(|w| (w.id.to_string(), w.address.clone()))
        .collect();
    let body = json!({
        "status": status,
        "role": "control",
        "node_id": me,
        "workers": {"total": health.workers.len(), "healthy": healthy, "nodes": nodes},
        "raft_status": raft_status(state, members(&me, "control", &workers)),
    });
    (status, body)
}

fn worker(state: &AppState) -> (&'static str, Value) {
    let me = node_id(&state.config);
    let health = state.storage.health();
    let stats = state.storage.stats();
    let mut figures = Map::new();
    for (name, _, value) in &stats.counters {
        figures.insert((*name).to_owned(), json!(value));
    }
    for (name, _, value) in &stats.gauges {
        figures.insert((*name).to_owned(), json!(value));
    }
    let status = if health.ok { "healthy" } else { "unhealthy" };
    let body = json!({
        "status": status,
        "role": "worker",
        "node_id": me,
        "storage": {"healthy": health.ok, "detail": health.detail, "figures": figures},
        "raft_status": raft_status(state, members(&me, "worker", &[])),
    });
    (status, body)
}

/// This node's name in the plan's answers: its `bind_address`, or the host name and port
/// when it listens on every address. (The Raft work gives nodes ids of their own.)
pub fn node_id(config: &Config) -> String {
    let bind = config.bind_address;
    if bind.ip().is_unspecified() {
        format!("{}:{}", crate::self_metrics::hostname(), bind.port())
    } else {
        bind.to_string()
    }
}

/// The static membership: this node, and a control node's workers (`(id, address)`).
fn members(me: &str, role: &str, workers: &[(String, String)]) -> Vec<Value> {
    let mut out = vec![json!({"id": me, "address": me, "role": role})];
    out.extend(
        workers
            .iter()
            .map(|(id, address)| json!({"id": id, "address": address, "role": "worker"})),
    );
    out
}

/// `raft_status`: this node's Raft state (`kairosdb_cluster::raft::RaftStatus`: state,
/// term, `leader_id`, `last_heartbeat_ms`, voters, members). A node without Raft (a test
/// double) answers the static list, without a leader or a term rather than invented ones.
pub fn raft_status(state: &AppState, members: Vec<Value>) -> Value {
    match &state.membership {
        Some(m) => serde_json::to_value(m.status()).unwrap_or(Value::Null),
        None => json!({"state": "static", "leader_id": null, "term": 0, "members": members}),
    }
}

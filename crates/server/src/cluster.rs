//! Cluster roles in the server (issue 19, docs/cluster.md).
//!
//! * **Worker**: the internal API a control node calls, `/internal/v1/*`, over this
//!   process's own storage (the embedded engine): [`worker_routes`]; `compute` is the
//!   analytics plan's partial aggregates of a shard (`crate::plan` has the public API). Bytes and JSON are
//!   `kairosdb_cluster::wire`'s; a storage error is answered with its status and a
//!   `WireError` body, so the control node raises the same error.
//! * **Control**: the storage is `kairosdb_cluster::ClusterStorage` ([`open_control`]); the
//!   whole API runs over it unchanged. Partial answers are marked in `http/query.rs`.
//!
//! The internal routes are not in the OpenAPI document (they are not for clients) and
//! need the `admin` scope when authentication is on.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use kairosdb_cluster::analytics::{self, ComputeRequest};
use kairosdb_cluster::client::{
    KeyJson, WorkerHealth, BACKFILL_HEADER, EPOCH_HEADER, STALE_LAYOUT,
};
use kairosdb_cluster::raft::{
    Admitted, ClusterState, Command, Committed, JoinRequest, LeaveRequest, Member, Membership,
    RaftMetadata, RaftOptions, TypeConfig,
};
use kairosdb_cluster::wire::{self, Malformed, ReadRequest, Selection, WireError};
use kairosdb_cluster::{ClusterOptions, ClusterStorage, Layout};

pub use forming::Forming;
use kairosdb_model::{ServiceStore, Storage, StorageError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};

use crate::config::{Config, NodeRole};
use crate::http::{body, AppState};

/// Whether a storage refusal comes from the cluster's Raft state rather than its workers
/// (the analytics plan's `RAFT_ERROR`): the cluster is forming, or a metadata or layout
/// change was not committed.
pub fn is_raft_refusal(message: &str) -> bool {
    message.starts_with(forming::FORMING)
        || message.starts_with(kairosdb_cluster::raft::metadata::NOT_COMMITTED)
}

/// The prefix of every internal route.
pub const INTERNAL: &str = "/internal/v1/";

/// The control node's storage routing by `layout`, hints in `data_dir/hints`, metadata
/// in the Raft state.
fn open_control(
    config: &Config,
    layout: Layout,
    metadata: Arc<dyn ServiceStore + Send + Sync>,
) -> Result<ClusterStorage, StorageError> {
    ClusterStorage::open(ClusterOptions {
        layout,
        metadata,
        partitions: config.cluster_partitions,
        replication_factor: config.replication_factor,
        write_min_replicas: config.write_min_replicas,
        request_timeout: std::time::Duration::from_millis(config.cluster_request_timeout_ms),
        hints_dir: Some(config.data_dir.join("hints")),
        hints_max_bytes: config.queue_max_mb.saturating_mul(1 << 20),
        io_threads: 2,
        secret: Some(config.cluster_secret.clone()),
    })
}

/// This node's id in the cluster: `node_id`, else the one kept in `data_dir/raft/node_id`
/// (made at first start).
fn node_id(config: &Config) -> anyhow::Result<u64> {
    let dir = config.data_dir.join("raft");
    std::fs::create_dir_all(&dir)?;
    match config.node_id {
        0 => stored_node_id(&dir),
        id => Ok(id),
    }
}

/// What starts a cluster node's log lines: `node=<id> role=<role>`; `None` on a single
/// node.
pub fn log_label(config: &Config) -> anyhow::Result<Option<String>> {
    let role = match config.role {
        NodeRole::Single => return Ok(None),
        NodeRole::Control => "control",
        NodeRole::Worker => "worker",
    };
    Ok(Some(format!("node={} role={role}", node_id(config)?)))
}

/// The log's line format, after the node's label when it has one.
pub struct NodeFormat {
    label: Option<String>,
    inner: tracing_subscriber::fmt::format::Format,
}

impl NodeFormat {
    pub fn new(label: Option<String>) -> NodeFormat {
        NodeFormat {
            label,
            inner: tracing_subscriber::fmt::format::Format::default(),
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for NodeFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if let Some(label) = &self.label {
            write!(writer, "{label} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// Starts this node's Raft membership (`kairosdb_cluster::raft`): its id ([`node_id`]),
/// the address others reach it at, and the seeds to join through.
pub async fn join(config: &Config, bound: SocketAddr) -> anyhow::Result<Arc<Membership>> {
    let dir = config.data_dir.join("raft");
    let id = node_id(config)?;
    let address = match config.advertise_address.as_str() {
        "" if bound.ip().is_unspecified() => {
            format!("{}:{}", crate::self_metrics::hostname(), bound.port())
        }
        "" => bound.to_string(),
        given => given.to_owned(),
    };
    let role = match config.role {
        NodeRole::Control => "control",
        _ => "worker",
    };
    tracing::info!(id, %address, role, seeds = ?config.cluster_seeds, "joining the cluster");
    let options = RaftOptions {
        id,
        member: Member {
            address,
            role: role.into(),
        },
        dir,
        seeds: config.cluster_seeds.clone(),
        secret: Some(config.cluster_secret.clone()),
    };
    Membership::start(options)
        .await
        .map_err(|e| anyhow::anyhow!("raft: {e}"))
}

/// The node id kept in `dir/node_id`, made (random, non-zero) when there is none.
fn stored_node_id(dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: not a node id: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 8];
            getrandom::getrandom(&mut bytes)?;
            let id = u64::from_le_bytes(bytes) >> 1 | 1;
            std::fs::write(&path, format!("{id}\n"))?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

/// Follows where the partitions live, as the Raft state says: places them once (a `Place`
/// command: the static `cluster_workers`, or the first `cluster_min_workers` workers to
/// join), then opens the cluster over them and hands it to `forming`, then routes by each
/// new layout as moves start and settle, and drives the moves this node was asked to
/// (`moves.rs`). Every control node routes by the Raft state, whatever its own
/// configuration says.
pub fn spawn_placement(config: Arc<Config>, membership: Arc<Membership>, forming: Arc<Forming>) {
    tokio::spawn(async move {
        loop {
            let (layout, driver) =
                membership.with_state(|s| (layout_of(s), s.moving.as_ref().map(|m| m.driver)));
            match (layout, forming.shared()) {
                (None, _) => {
                    let candidate =
                        membership.with_state(|s| placement_candidate(&config, s, &forming));
                    if let Some(workers) = candidate {
                        if let Err(e) = membership.propose(Command::Place { workers }).await {
                            forming.waiting(format!("placing the partitions: {e}"));
                        }
                    }
                }
                (Some(layout), None) => form(&config, &membership, &forming, layout).await,
                (Some(layout), Some(cluster)) if cluster.layout_epoch() != layout.epoch => {
                    tracing::info!(epoch = layout.epoch, workers = ?layout.workers, moving_to = ?layout.moving_to, "routing by a new layout");
                    if let Err(e) = cluster.set_layout(layout) {
                        tracing::warn!(error = %e, "cannot route by the new layout");
                    }
                }
                (Some(_), Some(_)) => {}
            }
            if driver == Some(membership.id) {
                moves::drive(&config, &membership, &forming);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}

/// Where the partitions live, once placed.
fn layout_of(state: &ClusterState) -> Option<Layout> {
    let workers = state.placement.clone()?;
    Some(Layout {
        epoch: state.epoch,
        workers,
        moving_to: state.moving.as_ref().map(|m| m.workers.clone()),
    })
}

/// Opens the cluster over its first layout.
async fn form(
    config: &Arc<Config>,
    membership: &Arc<Membership>,
    forming: &Forming,
    layout: Layout,
) {
    if !config.cluster_workers.is_empty()
        && sorted(&config.cluster_workers) != sorted(&layout.workers)
    {
        tracing::warn!(placed = ?layout.workers, configured = ?config.cluster_workers,
            "cluster_workers differs from the cluster's placement; routing by the placement");
    }
    let metadata = Arc::new(RaftMetadata::new(
        membership.clone(),
        tokio::runtime::Handle::current(),
    ));
    let opening = config.clone();
    let opened =
        tokio::task::spawn_blocking(move || open_control(&opening, layout, metadata)).await;
    match opened {
        Ok(Ok(cluster)) => {
            tracing::info!("cluster placed; routing to its workers");
            forming.formed(cluster);
        }
        Ok(Err(e)) => forming.waiting(format!("cannot open the cluster: {e}")),
        Err(e) => forming.waiting(format!("cannot open the cluster: {e}")),
    }
}

/// The workers to propose for the placement, once known.
fn placement_candidate(
    config: &Config,
    state: &ClusterState,
    forming: &Forming,
) -> Option<Vec<String>> {
    if !config.cluster_workers.is_empty() {
        return Some(config.cluster_workers.clone());
    }
    let joined = state.worker_addresses();
    if joined.len() >= config.cluster_min_workers {
        return Some(joined);
    }
    forming.waiting(format!(
        "{} of {} workers joined (cluster_min_workers)",
        joined.len(),
        config.cluster_min_workers
    ));
    None
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}

/// `/internal/v1/*`, served by workers.
pub fn worker_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/internal/v1/write", post(write))
        .route("/internal/v1/read", post(read))
        .route("/internal/v1/series_keys", post(series_keys))
        .route("/internal/v1/names", post(names))
        .route("/internal/v1/delete", post(delete))
        .route("/internal/v1/index", post(index))
        .route("/internal/v1/sync", post(sync))
        .route("/internal/v1/compute", post(compute))
        .route("/internal/v1/health", get(health))
}

/// `/internal/v1/raft/*`, served by every cluster node (`kairosdb_cluster::raft`): openraft's
/// messages (the answer is openraft's `Result` as JSON), joining, and this node's status.
pub fn raft_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/internal/v1/raft/append", post(raft_append))
        .route("/internal/v1/raft/vote", post(raft_vote))
        .route("/internal/v1/raft/snapshot", post(raft_snapshot))
        .route("/internal/v1/raft/join", post(raft_join))
        .route("/internal/v1/raft/propose", post(raft_propose))
        .route("/internal/v1/raft/leave", post(raft_leave))
        .route("/internal/v1/raft/status", get(raft_status))
        .route("/internal/v1/layout", get(layout))
}

type State = AxumState<Arc<AppState>>;

fn membership(state: &AppState) -> Result<&Arc<Membership>, Failure> {
    state.membership.as_ref().ok_or_else(|| {
        Failure::from(StorageError::Unavailable {
            message: "this node has not joined a cluster yet".into(),
            retry_after_secs: 1,
        })
    })
}

async fn raft_append(
    AxumState(state): State,
    axum::Json(request): axum::Json<AppendEntriesRequest<TypeConfig>>,
) -> Answer {
    let m = membership(&state)?;
    m.heard_from_leader();
    Ok(json(&m.raft().append_entries(request).await))
}

async fn raft_vote(
    AxumState(state): State,
    axum::Json(request): axum::Json<VoteRequest<u64>>,
) -> Answer {
    Ok(json(&membership(&state)?.raft().vote(request).await))
}

async fn raft_snapshot(
    AxumState(state): State,
    axum::Json(request): axum::Json<InstallSnapshotRequest<TypeConfig>>,
) -> Answer {
    Ok(json(
        &membership(&state)?.raft().install_snapshot(request).await,
    ))
}

async fn raft_join(
    AxumState(state): State,
    axum::Json(request): axum::Json<JoinRequest>,
) -> Answer {
    membership(&state)?.join(request).await.map_err(|e| {
        Failure::from(StorageError::Unavailable {
            message: format!("join: {e}"),
            retry_after_secs: 1,
        })
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn raft_leave(
    AxumState(state): State,
    axum::Json(request): axum::Json<LeaveRequest>,
) -> Answer {
    membership(&state)?.leave(request.id).await.map_err(|e| {
        Failure::from(StorageError::Unavailable {
            message: format!("leave: {e}"),
            retry_after_secs: 1,
        })
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn raft_propose(AxumState(state): State, axum::Json(command): axum::Json<Command>) -> Answer {
    let index = membership(&state)?.commit(command).await.map_err(|e| {
        Failure::from(StorageError::Unavailable {
            message: format!("propose: {e}"),
            retry_after_secs: 1,
        })
    })?;
    Ok(json(&Committed { index }))
}

/// `GET /internal/v1/layout`: the layout epoch this node works by. A control node: the
/// one it routes by (0 until placed). A worker: the one it refuses older calls by, once
/// the calls it admitted under an older one are done, so a driver that sees every node
/// at an epoch knows no write routed by an older layout is still landing (`moves.rs`).
async fn layout(AxumState(state): State) -> Answer {
    let m = membership(&state)?;
    let epoch = match &state.cluster {
        Some(forming) => forming.shared().map_or(0, |c| c.layout_epoch()),
        None => m.drained_epoch().await,
    };
    Ok(json(&serde_json::json!({ "epoch": epoch })))
}

/// Admits a data call routed by the layout in its `EPOCH_HEADER` (a call without one, a
/// hint or a tool, is never refused), or refuses it with 409 and this node's newer epoch.
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Option<Admitted>, Failure> {
    let (Some(m), Some(epoch)) = (&state.membership, headers.get(EPOCH_HEADER)) else {
        return Ok(None);
    };
    let epoch: u64 = epoch
        .to_str()
        .ok()
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| Failure::from(Malformed(format!("{EPOCH_HEADER}: not an epoch"))))?;
    match m.admit(epoch).await {
        Ok(admitted) => Ok(Some(admitted)),
        Err(mine) => Err(Failure(
            StatusCode::CONFLICT,
            WireError {
                kind: STALE_LAYOUT.into(),
                message: format!("routed by layout epoch {epoch}; this worker is at {mine}"),
                retry_after_secs: 1,
                limit: mine,
            },
        )),
    }
}

async fn raft_status(AxumState(state): State) -> Answer {
    Ok(json(&membership(&state)?.status()))
}

/// A failed internal call, as the control node reads it.
struct Failure(StatusCode, WireError);

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Failure {
        let status = crate::http::ApiError::from(e.clone()).status;
        Failure(status, WireError::new(&e))
    }
}

impl From<Malformed> for Failure {
    fn from(e: Malformed) -> Failure {
        Failure::from(StorageError::InvalidInput(e.to_string()))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.1).expect("BUG: WireError serialises");
        (self.0, body).into_response()
    }
}

type Answer = Result<Response, Failure>;

async fn raw_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Failure> {
    body::read(headers, body, state.config.max_request_bytes)
        .await
        .map_err(|e| Failure::from(StorageError::InvalidInput(e.to_string())))
}

async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Failure> {
    let raw = raw_body(state, headers, body).await?;
    serde_json::from_slice(&raw).map_err(|e| Failure::from(Malformed(e.to_string())))
}

/// Runs `f` on the blocking pool with the storage.
async fn on_storage<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Storage) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let storage = state.storage.clone();
    tokio::task::spawn_blocking(move || f(&*storage))
        .await
        .map_err(|e| Failure::from(StorageError::Internal(format!("worker task: {e}"))))?
}

fn json<T: Serialize>(value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("BUG: wire types serialise");
    crate::http::json_response(StatusCode::OK, body)
}

/// `POST /internal/v1/write`; with `BACKFILL_HEADER` a backfill, which stores only the
/// points this worker does not hold yet (a partition copy, `kairosdb_cluster::moves`).
async fn write(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let backfill = match headers.get(BACKFILL_HEADER) {
        None => false,
        Some(v) if v == "1" => true,
        Some(v) => {
            let v = String::from_utf8_lossy(v.as_bytes());
            return Err(Malformed(format!("{BACKFILL_HEADER}: {v:?}, expected 1")).into());
        }
    };
    let raw = raw_body(&state, &headers, body).await?;
    let _admitted = admit(&state, &headers).await?;
    let points = on_storage(&state, move |s| {
        let batch = wire::decode_write(&raw)?;
        match backfill {
            true => s.backfill(&batch)?,
            false => s.write(&batch)?,
        }
        Ok(batch.point_count())
    })
    .await?;
    crate::metrics::ServerMetrics::add(&state.metrics.http_datapoints_ingested, points as u64);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn read(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let request: ReadRequest = json_body(&state, &headers, body).await?;
    let _admitted = admit(&state, &headers).await?;
    let bytes = on_storage(&state, move |s| {
        let copy = request.ttls;
        let query = request.into_query()?;
        // No work limit was set: the read is complete.
        let mut series = s.query(&query)?.expect_complete();
        // Only what the control node's leading aggregator needs crosses the network.
        if let Some(fold) = &query.fold {
            kairosdb_query::fold::reduce(&mut series, fold).map_err(Malformed)?;
        }
        Ok(match copy {
            true => wire::encode_copy(series),
            false => wire::encode_series(series),
        })
    })
    .await?;
    Ok((StatusCode::OK, bytes).into_response())
}

async fn series_keys(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let selection: Selection = json_body(&state, &headers, body).await?;
    let keys = on_storage(&state, move |s| {
        let filter = wire::filter_from_wire(selection.filter)?;
        let range = kairosdb_model::TimeRange::new(selection.start, selection.end);
        let keys = s.series_keys(&selection.metric, &filter, range)?;
        Ok(keys.iter().map(KeyJson::new).collect::<Vec<_>>())
    })
    .await?;
    Ok(json(&keys))
}

async fn names(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let (kind, prefix): (String, Option<String>) = json_body(&state, &headers, body).await?;
    let names = on_storage(&state, move |s| {
        Ok(match kind.as_str() {
            "metric_names" => s.metric_names(prefix.as_deref())?,
            "tag_names" => s.tag_names()?,
            "tag_values" => s.tag_values()?,
            other => return Err(Malformed(format!("unknown listing {other:?}")).into()),
        })
    })
    .await?;
    Ok(json(&names))
}

async fn delete(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let selection: Selection = json_body(&state, &headers, body).await?;
    let request = selection.into_delete()?;
    let _admitted = admit(&state, &headers).await?;
    let state2 = state.clone();
    let series = on_storage(&state, move |_| Ok(state2.delete(&request)?)).await?;
    Ok(json(&series))
}

async fn index(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let selection: Selection = json_body(&state, &headers, body).await?;
    let range = kairosdb_model::TimeRange::new(selection.start, selection.end);
    let rows = on_storage(&state, move |s| {
        Ok(s.index_metric_tags(&selection.metric, range)?)
    })
    .await?;
    Ok(json(&rows))
}

/// The analytics plan's partial aggregates of the shard the control node asks for
/// (`ClusterStorage::compute`): a JSON `ComputeRequest` in, bincode `Partials` out.
async fn compute(AxumState(state): State, headers: HeaderMap, body: Body) -> Answer {
    let request: ComputeRequest = json_body(&state, &headers, body).await?;
    let _admitted = admit(&state, &headers).await?;
    let bytes = on_storage(&state, move |s| {
        let (partials, _) = analytics::partial::compute(s, &request)?;
        Ok(analytics::codec::encode(&partials))
    })
    .await?;
    Ok((StatusCode::OK, bytes).into_response())
}

async fn sync(AxumState(state): State) -> Answer {
    on_storage(&state, |s| Ok(s.sync()?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn health(AxumState(state): State) -> Answer {
    let health = on_storage(&state, |s| Ok(s.health())).await?;
    Ok(json(&WorkerHealth::from(health)))
}

mod forming;
pub mod moves;
#[cfg(test)]
mod tests;

//! Adding and removing workers (docs/cluster.md, "Moving partitions"): the admin API of a
//! control node and the move it drives.
//!
//! * `GET /api/v1/cluster`: where the partitions live, and the move under way.
//! * `PUT /api/v1/cluster/workers` `{"workers": [...]}`: move the partitions onto these
//!   workers (each must have joined the cluster). A `Move` command in the Raft state makes
//!   every node route writes to old and new replicas; this node becomes its driver.
//! * `DELETE /api/v1/cluster/move`: give the move up (the partitions stay where they were).
//! * `DELETE /api/v1/cluster/members/{id}`: take a member out of the Raft group: a control
//!   node being retired, or a worker that holds no partitions. Refused (409) for a worker
//!   that holds some, the move's driver, the last control node, or when the voters left
//!   would not have a majority that answers (`kairosdb_cluster::raft::leave`).
//!
//! The driver ([`drive`]): waits until every node works by the moving layout (a worker
//! refuses calls routed by an older one, and has finished those it admitted before), copies
//! the partitions that gain a replica (`ClusterStorage::copy_moving`), settles the move
//! (`Settle`: reads go to the new replicas), waits until every node works by the settled
//! layout, drops the moved partitions from the workers that no longer hold them, and
//! takes removed workers out of the Raft group. A
//! step that fails is tried again; a driver that restarts starts over (copies are
//! idempotent); `PUT` the same list on another control node to drive it from there.
//!
//! Not here: the copy itself (`kairosdb_cluster::moves`), routing by a layout
//! (`kairosdb_cluster::router`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use kairosdb_cluster::raft::{Command, Membership, Refusal};
use kairosdb_cluster::{ClusterStorage, MoveProgress};
use serde::Deserialize;
use serde_json::json;
use std::sync::Mutex;

use super::Forming;
use crate::config::Config;
use crate::http::extract::ApiPath;
use crate::http::{ApiError, AppState};

/// How long the driver waits for every node to work by a layout before trying again.
const LAYOUT_WAIT: Duration = Duration::from_secs(30);
/// How long a member that does not answer may hold the driver up: a node that is down
/// takes no call (and a worker coming back applies the Raft log before it is reached).
const UNREACHABLE_GRACE: Duration = Duration::from_secs(10);

/// The move this control node drives: what it is doing and how far it has come.
#[derive(Default)]
pub struct Mover {
    running: AtomicBool,
    pub progress: MoveProgress,
    /// The step under way, and the last error (cleared by the next success).
    phase: Mutex<(&'static str, Option<String>)>,
}

impl Mover {
    fn phase(&self, phase: &'static str) {
        tracing::info!(phase, "partition move");
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = (phase, None);
    }

    fn failed(&self, error: String) {
        tracing::warn!(%error, "partition move step failed; retrying");
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(error);
    }
}

/// The admin routes of a control node.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/cluster", get(status))
        .route("/api/v1/cluster/workers", put(set_workers))
        .route("/api/v1/cluster/move", delete(abort))
        .route("/api/v1/cluster/members/{id}", delete(remove_member))
}

/// Starts driving the move in the Raft state, unless this node already is.
pub fn drive(config: &Arc<Config>, membership: &Arc<Membership>, forming: &Arc<Forming>) {
    let Some(cluster) = forming.shared() else {
        return;
    };
    let mover = forming.mover.clone();
    if mover.running.swap(true, Ordering::AcqRel) {
        return;
    }
    let http = kairosdb_cluster::client::internal_client(
        Duration::from_secs(5),
        Some(config.cluster_secret.as_str()),
    );
    let membership = membership.clone();
    tokio::spawn(async move {
        run(&membership, &cluster, &mover, &http).await;
        mover.running.store(false, Ordering::Release);
    });
}

/// The move's steps, each tried until it is done, while the move is still this node's.
async fn run(
    membership: &Membership,
    cluster: &Arc<ClusterStorage>,
    mover: &Arc<Mover>,
    http: &reqwest::Client,
) {
    loop {
        let (epoch, previous, mine) = membership.with_state(|s| {
            let mine = s.moving.as_ref().is_some_and(|m| m.driver == membership.id);
            (s.epoch, s.placement.clone().unwrap_or_default(), mine)
        });
        if !mine {
            return;
        }
        if let Err(e) = step_copy(membership, cluster, mover, http, epoch).await {
            mover.failed(e);
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        mover.phase("settling");
        if let Err(e) = membership.propose(Command::Settle { epoch }).await {
            mover.failed(format!("settling: {e}"));
            continue;
        }
        if membership.layout_epoch() != epoch + 1 {
            // Aborted (or settled by another driver) meanwhile.
            return;
        }
        finish(membership, cluster, mover, http, epoch + 1, &previous).await;
        return;
    }
}

/// Waits for every node to route by the moving layout `epoch`, then copies.
async fn step_copy(
    membership: &Membership,
    cluster: &Arc<ClusterStorage>,
    mover: &Arc<Mover>,
    http: &reqwest::Client,
    epoch: u64,
) -> Result<(), String> {
    mover.phase("waiting for every node to route by the move");
    everyone_at(membership, http, epoch).await?;
    mover.phase("copying");
    let (c, m) = (cluster.clone(), mover.clone());
    tokio::task::spawn_blocking(move || c.copy_moving(&m.progress))
        .await
        .map_err(|e| format!("copy task: {e}"))?
        .map_err(|e| format!("copying: {e}"))
}

/// After the settle: once every node routes by it, drop what moved away.
async fn finish(
    membership: &Membership,
    cluster: &Arc<ClusterStorage>,
    mover: &Arc<Mover>,
    http: &reqwest::Client,
    epoch: u64,
    previous: &[String],
) {
    for attempt in 1..=5 {
        mover.phase("waiting for every node to route by the settled layout");
        let dropped = match everyone_at(membership, http, epoch).await {
            Err(e) => Err(e),
            Ok(()) => {
                mover.phase("dropping moved partitions from their old workers");
                let (c, previous) = (cluster.clone(), previous.to_vec());
                match tokio::task::spawn_blocking(move || c.drop_unheld(&previous)).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match dropped {
            Ok(series) => {
                tracing::info!(series, "moved partitions dropped from their old workers");
                let errors = retire(membership, mover, previous).await;
                mover.phase("done");
                for e in errors {
                    mover.failed(e);
                }
                return;
            }
            Err(e) if attempt == 5 => {
                mover.failed(format!("the move is done, but the moved partitions stay on their old workers (unread): {e}"));
            }
            Err(e) => {
                mover.failed(e);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Takes the workers of `previous` that hold nothing now out of the Raft group, so a
/// removed worker that is shut down does not count against the quorum.
async fn retire(membership: &Membership, mover: &Mover, previous: &[String]) -> Vec<String> {
    mover.phase("taking removed workers out of the Raft group");
    let gone: Vec<u64> = membership.with_state(|s| {
        let placed = s.placement.clone().unwrap_or_default();
        s.members
            .iter()
            .filter(|(_, m)| {
                m.role == "worker" && previous.contains(&m.address) && !placed.contains(&m.address)
            })
            .map(|(&id, _)| id)
            .collect()
    });
    let mut errors = Vec::new();
    for id in gone {
        match membership.leave(id).await {
            Ok(()) => tracing::info!(id, "removed worker left the Raft group"),
            Err(e) => errors.push(format!("member {id} could not leave the Raft group: {e}")),
        }
    }
    errors
}

/// Waits until every member that answers works by layout `epoch` or a newer one
/// (`GET /internal/v1/layout`); members that do not answer are waited for
/// [`UNREACHABLE_GRACE`].
async fn everyone_at(
    membership: &Membership,
    http: &reqwest::Client,
    epoch: u64,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let members: Vec<String> =
            membership.with_state(|s| s.members.values().map(|m| m.address.clone()).collect());
        let mut behind = Vec::new();
        let mut silent = Vec::new();
        for address in members {
            let url = format!("http://{address}/internal/v1/layout");
            let answer = async {
                http.get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<serde_json::Value>()
                    .await
            };
            match answer.await {
                Ok(v) if v["epoch"].as_u64().unwrap_or(0) >= epoch => {}
                Ok(v) => behind.push(format!("{address} at {}", v["epoch"])),
                Err(e) => silent.push(format!("{address}: {e}")),
            }
        }
        if behind.is_empty() && (silent.is_empty() || started.elapsed() > UNREACHABLE_GRACE) {
            if !silent.is_empty() {
                tracing::warn!(
                    ?silent,
                    epoch,
                    "going on without members that do not answer"
                );
            }
            return Ok(());
        }
        if started.elapsed() > LAYOUT_WAIT {
            return Err(format!(
                "nodes not yet at layout epoch {epoch}: {}",
                behind
                    .into_iter()
                    .chain(silent)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type State = AxumState<Arc<AppState>>;

fn parts(state: &AppState) -> Result<(&Arc<Membership>, &Arc<Forming>), ApiError> {
    match (&state.membership, &state.cluster) {
        (Some(m), Some(f)) => Ok((m, f)),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this control node has not joined its cluster yet",
        )),
    }
}

/// `GET /api/v1/cluster`.
async fn status(AxumState(state): State) -> Result<Response, ApiError> {
    let (membership, forming) = parts(&state)?;
    Ok(Json(describe(membership, forming)).into_response())
}

fn describe(membership: &Membership, forming: &Forming) -> serde_json::Value {
    let (epoch, workers, moving, joined) = membership.with_state(|s| {
        (
            s.epoch,
            s.placement.clone(),
            s.moving.clone(),
            s.worker_addresses(),
        )
    });
    let mover = &forming.mover;
    let (phase, error) = mover
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let progress = &mover.progress;
    let voters = membership.voters();
    let members: Vec<serde_json::Value> = membership.with_state(|s| {
        s.members
            .iter()
            .map(|(id, m)| {
                json!({"id": id, "address": m.address, "role": m.role, "voter": voters.contains(id)})
            })
            .collect()
    });
    json!({
        "epoch": epoch,
        "workers": workers,
        "joined_workers": joined,
        "members": members,
        "moving_to": moving.as_ref().map(|m| &m.workers),
        "driver": moving.as_ref().map(|m| m.driver),
        "move": {
            "driving": mover.running.load(Ordering::Acquire),
            "phase": phase,
            "error": error,
            "partitions": progress.partitions.load(Ordering::Relaxed),
            "partitions_copied": progress.partitions_copied.load(Ordering::Relaxed),
            "points_copied": progress.points_copied.load(Ordering::Relaxed),
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Workers {
    workers: Vec<String>,
}

/// `PUT /api/v1/cluster/workers`: move the partitions onto `workers`.
async fn set_workers(
    AxumState(state): State,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (membership, forming) = parts(&state)?;
    let Workers { workers } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"workers\": [\"host:port\", ...]}}: {e}"
        ))
    })?;
    let wanted: BTreeSet<&String> = workers.iter().collect();
    if wanted.is_empty() || wanted.len() != workers.len() {
        return Err(ApiError::bad_request(
            "workers: a non-empty list without repeats",
        ));
    }
    let (epoch, placed, moving, joined) = membership.with_state(|s| {
        (
            s.epoch,
            s.placement.clone(),
            s.moving.clone(),
            s.worker_addresses(),
        )
    });
    let strangers: Vec<&str> = workers
        .iter()
        .filter(|w| !joined.contains(w))
        .map(String::as_str)
        .collect();
    if !strangers.is_empty() {
        return Err(ApiError::bad_request(format!(
            "not workers of this cluster: {} (start them with cluster_seeds naming a member; joined: {})",
            strangers.join(", "),
            joined.join(", ")
        )));
    }
    let Some(placed) = placed else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster is forming",
        ));
    };
    match &moving {
        Some(m) if m.workers.iter().collect::<BTreeSet<_>>() != wanted => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "a move onto {} is under way: wait for it, or DELETE /api/v1/cluster/move",
                    m.workers.join(", ")
                ),
            ));
        }
        None if placed.iter().collect::<BTreeSet<_>>() == wanted => {
            return Ok(Json(describe(membership, forming)).into_response());
        }
        _ => {}
    }
    // The same list during its move hands the driving to this node.
    let workers = moving.map_or(workers, |m| m.workers);
    let command = Command::Move {
        from_epoch: epoch,
        workers: workers.clone(),
        driver: membership.id,
    };
    membership.propose(command).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the move was not committed: {e}"),
        )
    })?;
    let started = membership.with_state(|s| {
        s.moving
            .as_ref()
            .is_some_and(|m| m.workers == workers && m.driver == membership.id)
    });
    if !started {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the layout changed meanwhile; look again (GET /api/v1/cluster)",
        ));
    }
    drive(&state.config, membership, forming);
    Ok((StatusCode::ACCEPTED, Json(describe(membership, forming))).into_response())
}

/// `DELETE /api/v1/cluster/members/{id}`: 204 once member `id` is out of the Raft group
/// (the state machine and the voters); 404 for an id that is neither, 409 when it may not
/// leave now (the answer says why and what to do first), 503 when the change was not
/// committed (ask again: a leave cut short is finished so). Shut the node down afterwards:
/// it no longer hears of layout changes, and started again it asks to join like a new one.
async fn remove_member(
    AxumState(state): State,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (membership, _) = parts(&state)?;
    let id: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{id:?} is not a member id (GET /api/v1/cluster lists the members)"
        ))
    })?;
    membership.may_leave(id).await.map_err(|refusal| {
        let status = match refusal {
            Refusal::Unknown(_) => StatusCode::NOT_FOUND,
            Refusal::Refused(_) => StatusCode::CONFLICT,
        };
        ApiError::new(status, refusal.to_string())
    })?;
    membership.leave(id).await.map_err(|e| ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("member {id} did not leave: {e}"),
        )
    })?;
    tracing::info!(id, "member left the Raft group on request");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/v1/cluster/move`.
async fn abort(AxumState(state): State) -> Result<Response, ApiError> {
    let (membership, forming) = parts(&state)?;
    let (epoch, moving) = membership.with_state(|s| (s.epoch, s.moving.is_some()));
    if !moving {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no move is under way"));
    }
    membership
        .propose(Command::Abort { epoch })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the abort was not committed: {e}"),
            )
        })?;
    Ok(Json(describe(membership, forming)).into_response())
}

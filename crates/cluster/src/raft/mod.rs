//! The cluster's membership by Raft (openraft): every node, control and worker, is a voter
//! of one Raft group whose state machine holds the members (id, role, address). Data is
//! never in the Raft log: it is replicated by the replication factor (`router.rs`).
//!
//! * Start ([`Membership::start`]): a node without `cluster_seeds` that was never part of a
//!   cluster creates one with itself as the only voter; a node with seeds asks them to let
//!   it join. Either way it then makes sure it is listed in the state machine.
//! * Join ([`Membership::join`], `POST /internal/v1/raft/join` on any member): the leader
//!   adds the node as a learner, catches it up, makes it a voter and records it; a follower
//!   forwards the request to the leader.
//! * Elections and failover are openraft's: heartbeats every 250 ms, a new election after
//!   1–2 s without one (wide, for loaded machines).
//! * Durable state: `store.rs` (`data_dir/raft/`). Messages: `network.rs`.
//!
//! * The state machine (`state.rs`): members, where partitions live, metadata.
//!
//! * Leave ([`Membership::leave`], `POST /internal/v1/raft/leave`): a worker moved out of
//!   the layout is taken out of the group, so it no longer counts towards the quorum; so is
//!   a control node an admin removes (`DELETE /api/v1/cluster/members/{id}`), once
//!   [`Membership::may_leave`] finds nothing against it (`leave.rs`).

pub mod leave;
pub mod metadata;
pub mod network;
mod state;
pub mod store;

pub use leave::Refusal;
pub use metadata::{MemoryMetadata, RaftMetadata};
pub use state::{Applied, ClusterState, Command, Member, Move};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// Our Raft: commands change the cluster's state (`state.rs`).
    pub TypeConfig:
        D = Command,
        R = Applied,
);

/// The answer of `POST /internal/v1/raft/propose`: where the command was committed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
}

/// The body of `POST /internal/v1/raft/leave`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaveRequest {
    pub id: u64,
}

/// The body of `POST /internal/v1/raft/join`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: u64,
    pub member: Member,
}

/// How this node takes part.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    pub id: u64,
    pub member: Member,
    /// `data_dir/raft`.
    pub dir: PathBuf,
    /// Addresses of members to join through; empty = start a cluster if there is none.
    pub seeds: Vec<String>,
    /// `cluster_secret`, sent with every message to another node.
    pub secret: Option<String>,
}

/// This node's Raft status, for `/health` bodies and `GET /internal/v1/raft/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RaftStatus {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    /// Milliseconds since the leader was last heard from (a follower), or since a quorum
    /// last acknowledged it (the leader).
    pub last_heartbeat_ms: Option<u64>,
    pub voters: Vec<u64>,
    pub members: BTreeMap<u64, Member>,
}

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter leader_changes: "raft_leader_changes_total",
            "Times this node saw the leader change (elections that elected someone).";
        counter proposals: "raft_proposals_total",
            "Commands this node proposed as leader.";
        counter proposal_failures: "raft_proposal_failures_total",
            "Commands this node proposed that failed.";
        counter joins: "raft_joins_total",
            "Join requests this node carried out as leader.";
    }
}

/// This node in the Raft group.
pub struct Membership {
    pub id: u64,
    raft: Raft<TypeConfig>,
    machine: store::StateMachine,
    member: Member,
    http: reqwest::Client,
    /// When a leader's append last arrived here (followers).
    heard: Mutex<Option<Instant>>,
    counters: Counters,
    /// Nanoseconds of the last proposal, for `raft_proposal_seconds`.
    last_proposal_ns: AtomicU64,
    /// Held (shared) by each data call a worker admits under the layout epoch it checked
    /// ([`Membership::admit`]); taken whole by [`Membership::drained_epoch`].
    gate: Arc<tokio::sync::RwLock<()>>,
}

/// A data call admitted under the current layout: held until it is done.
pub type Admitted = tokio::sync::OwnedRwLockReadGuard<()>;

impl Membership {
    /// Opens the Raft state in `opts.dir`, starts the node, and (in the background) makes
    /// sure it is a member.
    pub async fn start(opts: RaftOptions) -> Result<Arc<Membership>, String> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
        let log = store::LogStore::open(&opts.dir).map_err(|e| e.to_string())?;
        let machine = store::StateMachine::open(&opts.dir).map_err(|e| e.to_string())?;
        let config = Config {
            cluster_name: "kairosdb".into(),
            heartbeat_interval: 250,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(200),
            max_in_snapshot_log_to_keep: 50,
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(|e| e.to_string())?);
        let network = network::Network::new(Duration::from_millis(800), opts.secret.as_deref());
        let raft = Raft::new(opts.id, config, network, log, machine.clone())
            .await
            .map_err(|e| format!("raft: {e}"))?;
        let membership = Arc::new(Membership {
            id: opts.id,
            raft,
            machine,
            member: opts.member.clone(),
            http: crate::client::internal_client(Duration::from_secs(5), opts.secret.as_deref()),
            heard: Mutex::new(None),
            counters: Counters::default(),
            last_proposal_ns: AtomicU64::new(0),
            gate: Arc::default(),
        });
        let initialized = membership
            .raft
            .is_initialized()
            .await
            .map_err(|e| e.to_string())?;
        if !initialized && opts.seeds.is_empty() {
            let me = BasicNode::new(&opts.member.address);
            membership
                .raft
                .initialize(BTreeMap::from([(opts.id, me)]))
                .await
                .map_err(|e| format!("cannot start a new cluster: {e}"))?;
            tracing::info!(id = opts.id, "started a new cluster");
        }
        tokio::spawn(membership.clone().register(opts.seeds));
        tokio::spawn(membership.clone().watch_leader());
        Ok(membership)
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The cluster's state as applied on this node.
    pub fn state(&self) -> ClusterState {
        self.machine.view()
    }

    /// `f` over the state as applied on this node, without copying it.
    pub fn with_state<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        self.machine.with_view(f)
    }

    /// The layout epoch applied on this node (0 until the partitions are placed).
    pub fn layout_epoch(&self) -> u64 {
        self.with_state(|s| s.epoch)
    }

    /// Admits a worker's data call routed by layout `epoch`, or refuses it with the newer
    /// epoch this node knows (the caller must route by it). Hold the answer until the call
    /// is done.
    pub async fn admit(&self, epoch: u64) -> Result<Admitted, u64> {
        let admitted = self.gate.clone().read_owned().await;
        match self.layout_epoch() {
            mine if mine > epoch => Err(mine),
            _ => Ok(admitted),
        }
    }

    /// The layout epoch applied here, once every call admitted under an older one is done:
    /// from then on this node takes no call routed by an older layout.
    pub async fn drained_epoch(&self) -> u64 {
        let _drained = self.gate.write().await;
        self.layout_epoch()
    }

    /// Notes that the leader was heard from (an append arrived).
    pub fn heard_from_leader(&self) {
        *self.heard.lock() = Some(Instant::now());
    }

    pub fn status(&self) -> RaftStatus {
        let m = self.raft.metrics().borrow().clone();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let last_heartbeat_ms = match m.state {
            ServerState::Leader => m.millis_since_quorum_ack,
            _ => self.heard.lock().map(|t| t.elapsed().as_millis() as u64),
        };
        RaftStatus {
            node_id: self.id,
            state: state.into(),
            term: m.current_term,
            leader_id: m.current_leader,
            last_heartbeat_ms,
            voters: m.membership_config.membership().voter_ids().collect(),
            members: self.state().members,
        }
    }

    /// Adds `request`'s node to the cluster (on the leader; forwarded there otherwise).
    pub async fn join(&self, request: JoinRequest) -> Result<(), String> {
        let node = BasicNode::new(&request.member.address);
        match self.raft.add_learner(request.id, node, true).await {
            Ok(_) => {}
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let Some(leader) = f.leader_node else {
                    return Err("no leader yet; try again".into());
                };
                return self.forward(&leader.addr, "join", &request).await.map(drop);
            }
            Err(e) => return Err(e.to_string()),
        }
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([request.id]));
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(|e| e.to_string())?;
        self.propose(Command::Join {
            id: request.id,
            member: request.member,
        })
        .await?;
        self.counters.joins.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The voters of the Raft group, as this node knows them.
    pub fn voters(&self) -> BTreeSet<u64> {
        let m = self.raft.metrics().borrow().clone();
        let voters = m.membership_config.membership().voter_ids().collect();
        voters
    }

    /// Whether member `id` may leave the group now (`leave::refusal`): asks every other
    /// voter whether it answers (`GET /internal/v1/raft/status`, a second at most), so the
    /// quorum is judged by the voters that are up, not by those listed.
    pub async fn may_leave(&self, id: u64) -> Result<(), Refusal> {
        let nodes: Vec<(u64, String)> = {
            let m = self.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter_map(|v| Some((v, membership.get_node(&v)?.addr.clone())))
                .collect()
        };
        let probes = nodes.iter().map(|(v, address)| async move {
            if *v == self.id {
                return Some(*v);
            }
            let url = format!("http://{address}/internal/v1/raft/status");
            let answer = self
                .http
                .get(url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            answer.ok()?.error_for_status().ok().map(|_| *v)
        });
        let answering: BTreeSet<u64> = futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        let voters: BTreeSet<u64> = nodes.iter().map(|(v, _)| *v).collect();
        match self.with_state(|s| leave::refusal(s, &voters, &answering, id)) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Takes member `id` out of the state machine and the Raft group (on the leader;
    /// forwarded there otherwise). Refused for a member the state says must stay
    /// (`leave::refusal_by_state`: a worker partitions are placed or moving on, the
    /// driver of the move, the last control node); the quorum is the caller's to check
    /// ([`Membership::may_leave`]).
    ///
    /// The state machine first, then the voters: a leader that takes itself out steps down
    /// once the new voters are committed, and could not record it afterwards. A leave cut
    /// short in between (a voter no longer listed) is finished by asking again.
    pub async fn leave(&self, id: u64) -> Result<(), String> {
        let (leader, node) = {
            let m = self.raft.metrics().borrow().clone();
            let node = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).cloned());
            (m.current_leader, node)
        };
        match (leader, node) {
            (Some(l), _) if l == self.id => {}
            (Some(_), Some(node)) => {
                return self
                    .forward(&node.addr, "leave", &LeaveRequest { id })
                    .await
                    .map(drop)
            }
            _ => return Err("no leader yet; try again".into()),
        }
        if let Some(refusal) = self.with_state(|s| leave::refusal_by_state(s, id)) {
            return Err(refusal.to_string());
        }
        if self.with_state(|s| s.members.contains_key(&id)) {
            self.propose(Command::Leave { id }).await?;
            if self.with_state(|s| s.members.contains_key(&id)) {
                let why = self.with_state(|s| leave::refusal_by_state(s, id));
                return Err(format!(
                    "member {id} was not taken out: {}",
                    why.map_or("its state changed meanwhile; look again".into(), |r| {
                        r.to_string()
                    })
                ));
            }
        }
        let (voter, known) = {
            let m = self.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            let voter = membership.voter_ids().any(|v| v == id);
            (voter, membership.get_node(&id).is_some())
        };
        let change = match (voter, known) {
            (true, _) => ChangeMembers::RemoveVoters(BTreeSet::from([id])),
            (false, true) => ChangeMembers::RemoveNodes(BTreeSet::from([id])),
            (false, false) => return Ok(()),
        };
        match self.raft.change_membership(change, false).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let Some(leader) = f.leader_node else {
                    return Err("no leader yet; try again".into());
                };
                self.forward(&leader.addr, "leave", &LeaveRequest { id })
                    .await
                    .map(drop)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends `request` to `POST /internal/v1/raft/{path}` on `node`; the answer's body.
    async fn forward(
        &self,
        node: &str,
        path: &str,
        request: &impl Serialize,
    ) -> Result<bytes::Bytes, String> {
        let url = format!("http://{node}/internal/v1/raft/{path}");
        let response = self
            .http
            .post(url)
            .json(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().is_success() {
            true => response.bytes().await.map_err(|e| e.to_string()),
            false => Err(response.text().await.unwrap_or_default()),
        }
    }

    /// Commits `command` and waits until this node has applied it, so what it reads next
    /// includes it.
    pub async fn propose(&self, command: Command) -> Result<(), String> {
        let index = self.commit(command).await?;
        self.raft
            .wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(index), "a proposal applied here")
            .await
            .map(drop)
            .map_err(|e| format!("committed at {index} but not applied here yet: {e}"))
    }

    /// Commits `command` through the leader (`POST /internal/v1/raft/propose` there when
    /// this node is not it); the index of its log entry.
    pub async fn commit(&self, command: Command) -> Result<u64, String> {
        self.counters.proposals.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = match self.raft.client_write(command.clone()).await {
            Ok(r) => Ok(r.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => match f.leader_node {
                Some(leader) => self
                    .forward(&leader.addr, "propose", &command)
                    .await
                    .and_then(|body| {
                        serde_json::from_slice::<Committed>(&body)
                            .map(|c| c.index)
                            .map_err(|e| format!("the leader's answer: {e}"))
                    }),
                None => Err("no leader yet; try again".into()),
            },
            Err(e) => Err(e.to_string()),
        };
        self.last_proposal_ns
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if result.is_err() {
            self.counters
                .proposal_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Until this node is in the state machine: ask to join (through the seeds, or through
    /// itself when it started the cluster), every second.
    async fn register(self: Arc<Self>, seeds: Vec<String>) {
        let request = JoinRequest {
            id: self.id,
            member: self.member.clone(),
        };
        loop {
            if self.state().members.get(&self.id) == Some(&self.member) {
                return;
            }
            let result = match seeds.is_empty() {
                true => self.join(request.clone()).await,
                false => {
                    let mut last = Err("no seed answered".to_string());
                    for seed in &seeds {
                        last = self.forward(seed, "join", &request).await.map(drop);
                        if last.is_ok() {
                            break;
                        }
                    }
                    last
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "joining the cluster; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Logs and counts leader changes.
    async fn watch_leader(self: Arc<Self>) {
        let mut metrics = self.raft.metrics();
        let mut leader = None;
        while metrics.changed().await.is_ok() {
            let m = metrics.borrow().clone();
            if m.current_leader != leader && m.current_leader.is_some() {
                tracing::info!(node = self.id, leader = ?m.current_leader, term = m.current_term, "raft leader");
                self.counters.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            leader = m.current_leader;
        }
    }

    /// Figures for `/metrics`.
    pub fn stats(&self) -> kairosdb_model::StorageStats {
        let mut stats = self.counters.collect();
        let m = self.raft.metrics().borrow().clone();
        let gauges = [
            ("raft_term", "Current Raft term.", m.current_term as f64),
            (
                "raft_is_leader",
                "1 while this node is the Raft leader.",
                f64::from(u8::from(m.state == ServerState::Leader)),
            ),
            (
                "raft_has_leader",
                "1 while this node knows a leader.",
                f64::from(u8::from(m.current_leader.is_some())),
            ),
            (
                "raft_members",
                "Members in the cluster's state machine.",
                self.state().members.len() as f64,
            ),
            (
                "raft_last_proposal_seconds",
                "How long the last proposal took to commit.",
                self.last_proposal_ns.load(Ordering::Relaxed) as f64 / 1e9,
            ),
        ];
        stats.gauges.extend(gauges);
        stats
    }

    /// Stops the Raft node.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

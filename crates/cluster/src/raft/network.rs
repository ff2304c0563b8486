//! Raft's messages between nodes: JSON over HTTP to `/internal/v1/raft/{append,vote,snapshot}`
//! on the target's HTTP port (the server's `cluster.rs` answers them). The answer body is
//! openraft's own `Result` as JSON, so a remote Raft error comes back typed.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{de::DeserializeOwned, Serialize};

use super::TypeConfig;

type NodeId = u64;

/// Hands out one connection per peer; they share one HTTP client (and its pool).
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
}

impl Network {
    pub fn new(timeout: Duration, secret: Option<&str>) -> Network {
        Network {
            http: crate::client::internal_client(timeout, secret),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            http: self.http.clone(),
            target,
            base: format!("http://{}/internal/v1/raft", node.addr),
        }
    }
}

/// One peer.
pub struct Peer {
    http: reqwest::Client,
    target: NodeId,
    base: String,
}

impl Peer {
    async fn call<Req, Resp, Err>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, Err>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Err: std::error::Error + DeserializeOwned,
    {
        let sent = self
            .http
            .post(format!("{}/{path}", self.base))
            .json(request)
            .send()
            .await;
        let response = sent.map_err(|e| match e.is_connect() {
            // Not retried at once: the peer is down.
            true => RPCError::Unreachable(Unreachable::new(&e)),
            false => RPCError::Network(NetworkError::new(&e)),
        })?;
        let answer: Result<Resp, Err> = response
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("append", &request).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &request).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        _: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", &request).await
    }
}

//! KairosDB's metadata store (`/api/v1/metadata`) on a cluster: in the Raft state
//! (`state.rs`), so every node reads it locally and no partition move has to carry it.
//! A change is a Raft command, answered once it is committed and applied on this node (a
//! read on this node right after sees it; another node sees it within a heartbeat).
//!
//! Not here: the map's semantics (`kairosdb_model::ServiceMap`, checked by the storage
//! suite).

use std::sync::Arc;

use kairosdb_model::{ServiceMap, ServiceStore, StorageError};
use parking_lot::Mutex;

use super::{Command, Membership};
use crate::client::MetaCall;

/// How a metadata change that Raft did not commit is refused.
pub const NOT_COMMITTED: &str = "metadata change not committed";

/// The metadata store over this node's Raft membership. Its calls block: call them from
/// blocking threads (as every `Storage` call is).
pub struct RaftMetadata {
    membership: Arc<Membership>,
    runtime: tokio::runtime::Handle,
}

impl RaftMetadata {
    /// `runtime`: where the membership runs.
    pub fn new(membership: Arc<Membership>, runtime: tokio::runtime::Handle) -> RaftMetadata {
        RaftMetadata {
            membership,
            runtime,
        }
    }

    fn change(&self, call: MetaCall) -> Result<(), StorageError> {
        self.runtime
            .block_on(self.membership.propose(Command::Meta(call)))
            .map_err(|e| StorageError::Unavailable {
                message: format!("{NOT_COMMITTED}: {e}"),
                retry_after_secs: 1,
            })
    }

    fn read<T>(&self, f: impl FnOnce(&ServiceMap) -> T) -> Result<T, StorageError> {
        Ok(self.membership.with_state(|s| f(&s.metadata)))
    }
}

impl ServiceStore for RaftMetadata {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.change(MetaCall::Set {
            service: service.into(),
            service_key: service_key.into(),
            key: key.into(),
            value: value.into(),
        })
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.read(|m| m.get_value(service, service_key, key))
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.read(|m| m.list_service_keys(service))
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.read(|m| m.list_keys(service, service_key, starts_with))
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.change(MetaCall::Delete {
            service: service.into(),
            service_key: service_key.into(),
            key: key.into(),
        })
    }
}

/// The metadata store in memory, for a router outside Raft (tests, tools).
#[derive(Default)]
pub struct MemoryMetadata(Mutex<ServiceMap>);

impl ServiceStore for MemoryMetadata {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.0.lock().set_value(service, service_key, key, value);
        Ok(())
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        Ok(self.0.lock().get_value(service, service_key, key))
    }

    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.0.lock().list_service_keys(service))
    }

    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self.0.lock().list_keys(service, service_key, starts_with))
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.0.lock().delete_key(service, service_key, key);
        Ok(())
    }
}

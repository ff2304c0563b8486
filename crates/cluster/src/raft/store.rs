//! Raft's durable state on one node (`data_dir/raft/`): the log with the vote, the committed
//! id and the last purged id (`log.json`), and the state machine with its applied position
//! and membership (`state.json`). Each file is replaced whole and atomically (write a
//! temporary file, fsync, rename, fsync the directory) before openraft is told the change
//! is done, so a crash leaves the old or the new file, never a torn one.
//!
//! Whole-file rewrites are fine because only the cluster's metadata goes through Raft (a
//! handful of members; a few entries per election or membership change), and snapshots
//! purge the log (`mod.rs` config). Data never goes through here.
//!
//! Corruption policy: a file that does not parse stops the node at start with its path;
//! Raft state is not guessed at (another member holds the same state: delete the
//! directory and let the node join again).

// openraft's `StorageError` is large, and its traits return it: not ours to box.
#![allow(clippy::result_large_err)]
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use parking_lot::{Mutex, RwLock};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{Applied, ClusterState, TypeConfig};

type NodeId = u64;
type Node = openraft::BasicNode;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// Writes `value` as JSON to `dir/name`, atomically and durably.
fn save<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(value)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn load<T: DeserializeOwned>(dir: &Path, name: &str) -> std::io::Result<Option<T>> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(name).display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

// --- The log ----------------------------------------------------------------------------

#[derive(Default, Serialize, Deserialize)]
struct LogFile {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
}

/// The log, the vote and the committed id.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    file: Arc<Mutex<LogFile>>,
}

impl LogStore {
    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        let file = load(dir, "log.json")?.unwrap_or_default();
        Ok(LogStore {
            dir: dir.to_owned(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Changes the log under its lock and writes it before answering.
    fn change(&self, f: impl FnOnce(&mut LogFile)) -> std::io::Result<()> {
        let mut file = self.file.lock();
        f(&mut file);
        save(&self.dir, "log.json", &*file)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        Ok(self
            .file
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let file = self.file.lock();
        let last = file.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: file.last_purged,
            last_log_id: last.or(file.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.change(|f| f.vote = Some(*vote))
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        Ok(self.file.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.change(|f| f.committed = committed)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self.file.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.change(|f| {
            for e in entries {
                f.entries.insert(e.log_id.index, e);
            }
        });
        // Durable (or failed) before the callback: that is what it reports.
        let reported = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
        callback.log_io_completed(reported);
        result.map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.change(|f| {
            f.entries.split_off(&log_id.index);
        })
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.change(|f| {
            f.last_purged = Some(log_id);
            f.entries = f.entries.split_off(&(log_id.index + 1));
        })
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

// --- The state machine ------------------------------------------------------------------

/// The state machine as written to `state.json` (and sent as a snapshot).
#[derive(Clone, Default, Serialize, Deserialize)]
struct Machine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    state: ClusterState,
    /// Name of the snapshot this state was last taken as.
    snapshot_id: String,
}

/// The cluster's metadata, applied from the log; readers see it through [`StateMachine::view`].
#[derive(Clone)]
pub struct StateMachine {
    dir: PathBuf,
    applied: Arc<RwLock<Machine>>,
    snapshots_taken: u64,
}

impl StateMachine {
    pub fn open(dir: &Path) -> std::io::Result<StateMachine> {
        let applied = load(dir, "state.json")?.unwrap_or_default();
        Ok(StateMachine {
            dir: dir.to_owned(),
            applied: Arc::new(RwLock::new(applied)),
            snapshots_taken: 0,
        })
    }

    /// What the cluster's metadata is, as applied here.
    pub fn view(&self) -> ClusterState {
        self.applied.read().state.clone()
    }

    /// `f` over the applied metadata, without copying it.
    pub fn with_view<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.applied.read().state)
    }

    fn persist(&self, applied: &Machine) -> Result<()> {
        save(&self.dir, "state.json", applied)
            .map_err(|e| StorageIOError::write_state_machine(&e).into())
    }

    fn snapshot_of(applied: &Machine) -> Snapshot<TypeConfig> {
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id: applied.snapshot_id.clone(),
        };
        let data = serde_json::to_vec(applied).expect("BUG: the state machine serialises");
        Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        self.snapshots_taken += 1;
        let mut applied = self.applied.write();
        applied.snapshot_id = match applied.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshots_taken),
            None => format!("--{}", self.snapshots_taken),
        };
        self.persist(&applied)?;
        Ok(Self::snapshot_of(&applied))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>)> {
        let applied = self.applied.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.applied.write();
        let mut replies = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(command) => applied.state.apply(command),
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            replies.push(Applied {
                members: applied.state.members.len(),
            });
        }
        self.persist(&applied)?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let mut received: Machine = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        received.last_applied = meta.last_log_id;
        received.membership = meta.last_membership.clone();
        received.snapshot_id = meta.snapshot_id.clone();
        self.persist(&received)?;
        *self.applied.write() = received;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let applied = self.applied.read();
        Ok((applied.last_applied.is_some()).then(|| Self::snapshot_of(&applied)))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::raft::{Command, Member};

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 7), index),
            payload,
        }
    }

    fn join(id: u64) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(Command::Join {
            id,
            member: Member {
                address: format!("w{id}:8080"),
                role: "worker".into(),
            },
        })
    }

    #[tokio::test]
    async fn the_log_and_the_vote_survive_a_reopen_and_truncate_and_purge_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        log.save_vote(&Vote::new(3, 7)).await.unwrap();
        {
            let mut file = log.file.lock();
            for i in 1..=5 {
                file.entries.insert(i, entry(i, join(i)));
            }
        }
        log.truncate(LogId::new(CommittedLeaderId::new(1, 7), 4))
            .await
            .unwrap();
        log.purge(LogId::new(CommittedLeaderId::new(1, 7), 1))
            .await
            .unwrap();

        let mut again = LogStore::open(dir.path()).unwrap();
        assert_eq!(again.read_vote().await.unwrap(), Some(Vote::new(3, 7)));
        let kept: Vec<u64> = again
            .try_get_log_entries(0..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(kept, [2, 3], "1 purged, 4 and 5 truncated");
        let state = again.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(1));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(3));
    }

    #[tokio::test]
    async fn applied_members_survive_a_reopen_and_travel_as_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut machine = StateMachine::open(dir.path()).unwrap();
        machine
            .apply([
                entry(1, join(1)),
                entry(2, EntryPayload::Blank),
                entry(3, join(2)),
            ])
            .await
            .unwrap();
        let members = machine.view().members;
        assert_eq!(members.keys().copied().collect::<Vec<_>>(), [1, 2]);

        let again = StateMachine::open(dir.path()).unwrap();
        assert_eq!(again.view().members, members);

        let snapshot = machine.build_snapshot().await.unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut receiver = StateMachine::open(other.path()).unwrap();
        receiver
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(receiver.view().members, members);
        let (applied, _) = receiver.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(3));
    }

    #[test]
    fn a_torn_state_file_stops_the_node_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.json"), b"{\"vote\":").unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("log.json"), "{err}");
    }
}

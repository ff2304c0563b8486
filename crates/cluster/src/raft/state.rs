//! What the Raft log decides: the cluster's state machine (docs/cluster.md, "Membership" and
//! "Moving partitions").
//!
//! * the members (id → address and role);
//! * where partitions live: the workers they are placed on, the layout `epoch` (bumped by
//!   every change of where they live, so a worker can refuse a router that routes by an
//!   older one), and a move in progress (the workers the partitions are moving onto and
//!   the control node copying them);
//! * KairosDB's metadata store (`/api/v1/metadata`): small, rarely written, read anywhere,
//!   so it lives here rather than on the workers, where a move would have to find it.
//!
//! Commands that no longer fit the state (a move from an epoch that has passed) change
//! nothing: the proposer reads the state afterwards to learn what happened.
//!
//! Not here: applying the log durably (`store.rs`), routing by the layout (`router.rs`),
//! copying the partitions (`moves.rs`).

use std::collections::BTreeMap;

use kairosdb_model::ServiceMap;
use serde::{Deserialize, Serialize};

use crate::client::MetaCall;

/// One member as the state machine lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `host:port` of its HTTP listener.
    pub address: String,
    /// `control` or `worker`.
    pub role: String,
}

/// What the Raft log records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Join {
        id: u64,
        member: Member,
    },
    /// The workers (addresses) the partitions are placed on. Only the first is applied:
    /// every control node then routes by the same list. Epoch 1.
    Place {
        workers: Vec<String>,
    },
    /// Start moving the partitions onto `workers`, copied by the control node `driver`;
    /// applied only at `from_epoch` with no other move running. Repeated for the same
    /// workers during their move, it hands the copying to the new `driver`.
    Move {
        from_epoch: u64,
        workers: Vec<String>,
        driver: u64,
    },
    /// The move of `epoch` is copied: the partitions live on its workers from now on.
    Settle {
        epoch: u64,
    },
    /// The move of `epoch` is given up: the partitions stay where they were.
    Abort {
        epoch: u64,
    },
    /// A metadata change (`MetaCall::Set` or `Delete`; reads are not logged).
    Meta(MetaCall),
    /// Member `id` left the cluster. Not applied to a worker that partitions are placed
    /// on or moving onto (move them off it first), to the driver of the move under way, or
    /// to the last control node (`leave::refusal_by_state`).
    Leave {
        id: u64,
    },
}

/// The answer to an applied command: the member count after it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied {
    pub members: usize,
}

/// A move in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The workers the partitions are moving onto.
    pub workers: Vec<String>,
    /// The control node copying them.
    pub driver: u64,
}

/// The cluster's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub members: BTreeMap<u64, Member>,
    /// The workers the partitions are placed on, once decided.
    #[serde(default)]
    pub placement: Option<Vec<String>>,
    /// Bumped by every change of where partitions live; 0 until placed.
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub moving: Option<Move>,
    /// KairosDB's metadata store.
    #[serde(default, with = "metadata_json")]
    pub metadata: ServiceMap,
}

impl ClusterState {
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Join { id, member } => {
                self.members.insert(id, member);
            }
            Command::Place { workers } => {
                if self.placement.is_none() {
                    self.placement = Some(workers);
                    self.epoch = 1;
                }
            }
            Command::Move {
                from_epoch,
                workers,
                driver,
            } => match &mut self.moving {
                Some(m) if m.workers == workers => m.driver = driver,
                Some(_) => {}
                None if from_epoch == self.epoch && self.placement.is_some() => {
                    self.moving = Some(Move { workers, driver });
                    self.epoch += 1;
                }
                None => {}
            },
            Command::Settle { epoch } => {
                if epoch == self.epoch {
                    if let Some(m) = self.moving.take() {
                        self.placement = Some(m.workers);
                        self.epoch += 1;
                    }
                }
            }
            Command::Abort { epoch } => {
                if epoch == self.epoch && self.moving.take().is_some() {
                    self.epoch += 1;
                }
            }
            Command::Leave { id } => {
                // Checked again here, in log order: two leaves proposed at once must not
                // both pass (the last two control nodes, say).
                if super::leave::refusal_by_state(self, id).is_none() {
                    self.members.remove(&id);
                }
            }
            Command::Meta(call) => match call {
                MetaCall::Set {
                    service,
                    service_key,
                    key,
                    value,
                } => self
                    .metadata
                    .set_value(&service, &service_key, &key, &value),
                MetaCall::Delete {
                    service,
                    service_key,
                    key,
                } => self.metadata.delete_key(&service, &service_key, &key),
                _ => {}
            },
        }
    }

    /// The addresses of the members that are workers, sorted.
    pub fn worker_addresses(&self) -> Vec<String> {
        let mut workers: Vec<String> = self
            .members
            .values()
            .filter(|m| m.role == "worker")
            .map(|m| m.address.clone())
            .collect();
        workers.sort();
        workers
    }
}

/// The metadata as a JSON list of `[service, service key, {key: value}]` (JSON objects
/// cannot have a pair as key).
mod metadata_json {
    use std::collections::BTreeMap;

    use kairosdb_model::ServiceMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Entry = (String, String, BTreeMap<String, String>);

    pub fn serialize<S: Serializer>(map: &ServiceMap, s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<(&str, &str, &BTreeMap<String, String>)> = map.entries().collect();
        entries.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ServiceMap, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        let mut map = ServiceMap::default();
        for (service, service_key, keys) in entries {
            map.insert_entry(&service, &service_key, keys);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> ClusterState {
        let mut s = ClusterState::default();
        s.apply(Command::Place {
            workers: vec!["a:1".into(), "b:1".into()],
        });
        s
    }

    fn move_to(from_epoch: u64, workers: &[&str], driver: u64) -> Command {
        Command::Move {
            from_epoch,
            workers: workers.iter().map(|w| w.to_string()).collect(),
            driver,
        }
    }

    #[test]
    fn the_first_placement_is_epoch_one_and_a_second_changes_nothing() {
        let mut s = placed();
        assert_eq!(s.epoch, 1);
        s.apply(Command::Place {
            workers: vec!["c:1".into()],
        });
        assert_eq!(
            s.placement.as_deref(),
            Some(&["a:1".to_string(), "b:1".into()][..])
        );
        assert_eq!(s.epoch, 1);
    }

    #[test]
    fn a_move_starts_only_from_the_current_epoch_and_settles_onto_its_workers() {
        let mut s = placed();
        s.apply(move_to(0, &["a:1", "b:1", "c:1"], 7));
        assert_eq!((s.epoch, s.moving.is_some()), (1, false), "stale epoch");
        s.apply(move_to(1, &["a:1", "b:1", "c:1"], 7));
        assert_eq!(s.epoch, 2);
        // Another list while moving: refused. The same list: a new driver.
        s.apply(move_to(2, &["a:1"], 8));
        s.apply(move_to(2, &["a:1", "b:1", "c:1"], 9));
        assert_eq!(
            s.moving.as_ref().map(|m| (m.workers.len(), m.driver)),
            Some((3, 9))
        );
        s.apply(Command::Settle { epoch: 1 });
        assert_eq!(s.epoch, 2, "a settle of another epoch changes nothing");
        s.apply(Command::Settle { epoch: 2 });
        assert_eq!(s.epoch, 3);
        assert_eq!(s.moving, None);
        assert_eq!(s.placement.map(|p| p.len()), Some(3));
    }

    #[test]
    fn an_aborted_move_leaves_the_placement_and_bumps_the_epoch() {
        let mut s = placed();
        s.apply(move_to(1, &["c:1"], 7));
        s.apply(Command::Abort { epoch: 2 });
        assert_eq!((s.epoch, s.moving.is_none()), (3, true));
        assert_eq!(s.placement.map(|p| p.len()), Some(2));
    }

    #[test]
    fn a_member_leaves_only_once_no_partition_is_placed_on_it() {
        let mut s = placed();
        for (id, address) in [(1, "a:1"), (2, "b:1"), (3, "c:1")] {
            s.apply(Command::Join {
                id,
                member: Member {
                    address: address.into(),
                    role: "worker".into(),
                },
            });
        }
        s.apply(Command::Leave { id: 2 });
        assert!(s.members.contains_key(&2), "b:1 holds partitions");
        s.apply(Command::Leave { id: 3 });
        assert!(!s.members.contains_key(&3));
        s.apply(move_to(1, &["a:1"], 7));
        s.apply(Command::Settle { epoch: 2 });
        s.apply(Command::Leave { id: 2 });
        assert_eq!(s.members.keys().collect::<Vec<_>>(), [&1]);
    }

    #[test]
    fn of_two_control_nodes_leaving_at_once_the_last_stays() {
        let mut s = placed();
        for id in [10, 11] {
            s.apply(Command::Join {
                id,
                member: Member {
                    address: format!("c{id}:1"),
                    role: "control".into(),
                },
            });
        }
        s.apply(Command::Leave { id: 10 });
        s.apply(Command::Leave { id: 11 });
        assert_eq!(s.members.keys().collect::<Vec<_>>(), [&11]);
    }

    #[test]
    fn metadata_changes_apply_and_survive_json() {
        let mut s = placed();
        let set = |k: &str, v: &str| {
            Command::Meta(MetaCall::Set {
                service: "svc".into(),
                service_key: "sk".into(),
                key: k.into(),
                value: v.into(),
            })
        };
        s.apply(set("k1", "v1"));
        s.apply(set("k2", "v2"));
        s.apply(Command::Meta(MetaCall::Delete {
            service: "svc".into(),
            service_key: "sk".into(),
            key: "k1".into(),
        }));
        let back: ClusterState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.metadata.list_keys("svc", "sk", None), ["k2"]);
        assert_eq!(
            back.metadata.get_value("svc", "sk", "k2").as_deref(),
            Some("v2")
        );
    }

    #[test]
    fn a_state_written_before_moves_existed_still_reads() {
        let old = r#"{"members":{},"placement":["a:1"]}"#;
        let s: ClusterState = serde_json::from_str(old).unwrap();
        assert_eq!(
            (s.epoch, s.moving, s.placement.map(|p| p.len())),
            (0, None, Some(1))
        );
    }
}

//! Whether a member may leave the Raft group now (docs/cluster.md, "Membership"): the
//! rules, apart from the Raft calls that carry a leave out (`Membership::leave`).
//!
//! A member is refused when it
//! * is a worker that partitions are placed or moving on (move them off it first);
//! * drives the move under way (hand the move to another control node first);
//! * is the last control node (nothing could route, move or leave any more);
//! * would take the quorum with it: the voters left must have a majority that answers,
//!   and so must the voters now (the change is committed by both, joint consensus).
//!
//! Not here: finding out which voters answer (`Membership::may_leave` asks each), the
//! admin route (the server's `cluster/moves.rs`).

use std::collections::BTreeSet;

use super::ClusterState;

/// Why a member cannot leave now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Neither a member nor a voter.
    Unknown(u64),
    /// It may not leave now; the sentence says why and what to do first.
    Refused(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unknown(id) => write!(f, "{id} is not a member of this cluster"),
            Refusal::Refused(why) => f.write_str(why),
        }
    }
}

/// The rules that need only the state machine: placed or moving worker, the move's
/// driver, the last control node. `None`: it may leave as far as the state says.
pub fn refusal_by_state(state: &ClusterState, id: u64) -> Option<Refusal> {
    let member = state.members.get(&id)?;
    let listed = |list: &[String]| list.contains(&member.address);
    if state.placement.as_deref().is_some_and(listed)
        || state.moving.as_ref().is_some_and(|m| listed(&m.workers))
    {
        return Some(Refusal::Refused(format!(
            "member {id} ({}) holds partitions: move them off it first \
             (PUT /api/v1/cluster/workers without it)",
            member.address
        )));
    }
    if state.moving.as_ref().is_some_and(|m| m.driver == id) {
        return Some(Refusal::Refused(format!(
            "member {id} ({}) drives the move under way: wait for it, or PUT the same \
             workers on another control node to drive it from there",
            member.address
        )));
    }
    let controls = state.members.values().filter(|m| m.role == "control");
    if member.role == "control" && controls.count() == 1 {
        return Some(Refusal::Refused(format!(
            "member {id} ({}) is the last control node: start another one first",
            member.address
        )));
    }
    None
}

/// Every rule: [`refusal_by_state`], then the quorum. `voters`: the Raft group's voters;
/// `answering`: those of them that answered just now.
pub fn refusal(
    state: &ClusterState,
    voters: &BTreeSet<u64>,
    answering: &BTreeSet<u64>,
    id: u64,
) -> Option<Refusal> {
    if !state.members.contains_key(&id) && !voters.contains(&id) {
        return Some(Refusal::Unknown(id));
    }
    if let Some(r) = refusal_by_state(state, id) {
        return Some(r);
    }
    if !voters.contains(&id) {
        return None;
    }
    let up = |set: &BTreeSet<u64>| set.iter().filter(|v| answering.contains(v)).count();
    let now = up(voters);
    if now * 2 <= voters.len() {
        return Some(Refusal::Refused(format!(
            "only {now} of the {} voters answer: the cluster has no quorum to change its \
             members; bring the others back first",
            voters.len()
        )));
    }
    let after: BTreeSet<u64> = voters.iter().copied().filter(|&v| v != id).collect();
    let left = up(&after);
    if after.is_empty() || left * 2 <= after.len() {
        return Some(Refusal::Refused(format!(
            "without member {id}, {left} of the {} voters left would answer: not a \
             majority, the cluster would stop; bring the others back first",
            after.len()
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Member};
    use super::*;

    /// Workers 1–3 (1 and 2 placed), control nodes 10 and 11.
    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        for (id, address, role) in [
            (1, "w1:1", "worker"),
            (2, "w2:1", "worker"),
            (3, "w3:1", "worker"),
            (10, "c1:1", "control"),
            (11, "c2:1", "control"),
        ] {
            s.apply(Command::Join {
                id,
                member: Member {
                    address: address.into(),
                    role: role.into(),
                },
            });
        }
        s.apply(Command::Place {
            workers: vec!["w1:1".into(), "w2:1".into()],
        });
        s
    }

    fn ids(list: &[u64]) -> BTreeSet<u64> {
        list.iter().copied().collect()
    }

    const ALL: &[u64] = &[1, 2, 3, 10, 11];

    fn refused(r: Option<Refusal>) -> String {
        match r {
            Some(Refusal::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_control_node_or_an_unplaced_worker_leaves_while_the_rest_answer() {
        let s = state();
        assert_eq!(refusal(&s, &ids(ALL), &ids(ALL), 11), None);
        assert_eq!(refusal(&s, &ids(ALL), &ids(ALL), 3), None);
        // A voter that the state machine no longer lists (a leave half done) may go.
        assert_eq!(refusal(&s, &ids(&[1, 2, 10, 11, 12]), &ids(ALL), 12), None);
        // A down member leaving is what frees the quorum of it.
        assert_eq!(refusal(&s, &ids(ALL), &ids(&[1, 2, 10]), 11), None);
    }

    #[test]
    fn unknown_members_placed_workers_the_driver_and_the_last_control_node_stay() {
        let mut s = state();
        assert_eq!(
            refusal(&s, &ids(ALL), &ids(ALL), 99),
            Some(Refusal::Unknown(99))
        );
        assert!(refused(refusal(&s, &ids(ALL), &ids(ALL), 1)).contains("holds partitions"));
        s.apply(Command::Move {
            from_epoch: 1,
            workers: vec!["w1:1".into(), "w3:1".into()],
            driver: 10,
        });
        assert!(refused(refusal(&s, &ids(ALL), &ids(ALL), 3)).contains("holds partitions"));
        assert!(refused(refusal(&s, &ids(ALL), &ids(ALL), 10)).contains("drives the move"));
        s.apply(Command::Abort { epoch: 2 });
        s.apply(Command::Leave { id: 11 });
        let voters = ids(&[1, 2, 3, 10]);
        assert!(refused(refusal(&s, &voters, &voters, 10)).contains("last control node"));
    }

    #[test]
    fn a_member_whose_leaving_would_cost_the_quorum_stays() {
        let s = state();
        // Workers 2 and 3 down: 3 of 5 answer, but 2 of the 4 left would not be a majority.
        let why = refused(refusal(&s, &ids(ALL), &ids(&[1, 10, 11]), 11));
        assert!(why.contains("2 of the 4 voters left"), "{why}");
        // Already without a quorum, nothing leaves.
        let why = refused(refusal(&s, &ids(ALL), &ids(&[10, 11]), 3));
        assert!(why.contains("only 2 of the 5 voters answer"), "{why}");
    }
}

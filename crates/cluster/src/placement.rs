//! Which workers hold each partition: rendezvous (highest-random-weight) hashing. Each
//! worker scores `xxh3(partition, worker id)` for every partition; the
//! `replication_factor` highest scores hold it, best first. Adding or removing a worker
//! changes only the partitions it gains or loses, and spreads them over every other worker
//! (property-tested below), unlike a modulo or a ring without virtual nodes.
//!
//! Not here: a series' partition (`kairosdb_model::partition_of`), moving data when the
//! map changes (docs/cluster.md).

use std::fmt;

/// A worker's identity in placement: stable across restarts and address changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u64);

impl WorkerId {
    /// The id of a worker known only by its address (a static `cluster_workers` list).
    pub fn of_address(address: &str) -> WorkerId {
        WorkerId(xxhash_rust::xxh3::xxh3_64(address.as_bytes()))
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The replicas of every partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    partitions: u32,
    workers: Vec<WorkerId>,
    /// `replicas[p]`: indexes into `workers`, best first.
    replicas: Vec<Vec<usize>>,
}

impl Placement {
    /// Places `partitions` partitions on `workers` with `replication_factor` replicas each
    /// (fewer when there are fewer workers).
    pub fn new(partitions: u32, replication_factor: usize, workers: &[WorkerId]) -> Placement {
        let copies = replication_factor.clamp(1, workers.len().max(1));
        let replicas = (0..partitions)
            .map(|p| {
                let mut scored: Vec<(u64, usize)> = workers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (score(p, *w), i))
                    .collect();
                // Highest score first; a tie (never in practice) falls to the lower id.
                scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(workers[a.1].cmp(&workers[b.1])));
                scored.into_iter().take(copies).map(|(_, i)| i).collect()
            })
            .collect();
        Placement {
            partitions,
            workers: workers.to_vec(),
            replicas,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn workers(&self) -> &[WorkerId] {
        &self.workers
    }

    /// The workers (as indexes into [`Placement::workers`]) holding `partition`, best first.
    pub fn replicas(&self, partition: u32) -> &[usize] {
        &self.replicas[partition as usize]
    }
}

fn score(partition: u32, worker: WorkerId) -> u64 {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&partition.to_le_bytes());
    bytes[4..].copy_from_slice(&worker.0.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn ids(n: u64) -> Vec<WorkerId> {
        (1..=n).map(|i| WorkerId(i * 7919)).collect()
    }

    /// The worker ids holding each partition.
    fn holders(p: &Placement) -> Vec<BTreeSet<WorkerId>> {
        (0..p.partitions())
            .map(|i| p.replicas(i).iter().map(|&w| p.workers()[w]).collect())
            .collect()
    }

    #[test]
    fn every_partition_has_distinct_replicas_and_load_is_even() {
        let p = Placement::new(256, 2, &ids(4));
        let mut load = [0usize; 4];
        for part in 0..256 {
            let r = p.replicas(part);
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            for &w in r {
                load[w] += 1;
            }
        }
        // 512 replicas over 4 workers: 128 each on average.
        assert!(load.iter().all(|&l| (96..=160).contains(&l)), "{load:?}");
    }

    #[test]
    fn fewer_workers_than_copies_hold_every_partition_on_all_of_them() {
        let p = Placement::new(8, 3, &ids(2));
        assert!((0..8).all(|part| p.replicas(part).len() == 2));
    }

    #[test]
    fn the_order_of_the_worker_list_does_not_matter() {
        let mut reversed = ids(5);
        reversed.reverse();
        assert_eq!(
            holders(&Placement::new(64, 2, &ids(5))),
            holders(&Placement::new(64, 2, &reversed))
        );
    }

    proptest! {
        /// Adding a worker moves only partitions onto it: every other holder keeps what it
        /// had or loses it to the new worker.
        #[test]
        fn adding_a_worker_moves_only_what_it_gains(n in 1u64..8, rf in 1usize..4, partitions in 1u32..300) {
            let before = holders(&Placement::new(partitions, rf, &ids(n)));
            let grown: Vec<WorkerId> = ids(n + 1);
            let new = grown[n as usize];
            let after = holders(&Placement::new(partitions, rf, &grown));
            for (b, a) in before.iter().zip(&after) {
                let lost: Vec<_> = b.difference(a).collect();
                let gained: Vec<_> = a.difference(b).collect();
                prop_assert!(gained.iter().all(|w| **w == new), "gained {gained:?}");
                if n as usize >= rf {
                    prop_assert_eq!(lost.len(), gained.len());
                } else {
                    // Fewer workers than copies: the new one is an extra replica.
                    prop_assert!(lost.is_empty());
                }
            }
        }

        /// Removing a worker moves only the partitions it held.
        #[test]
        fn removing_a_worker_moves_only_what_it_held(n in 2u64..8, rf in 1usize..4, partitions in 1u32..300, gone in 0usize..8) {
            let all = ids(n);
            let gone = all[gone % all.len()];
            let rest: Vec<WorkerId> = all.iter().copied().filter(|w| *w != gone).collect();
            let before = holders(&Placement::new(partitions, rf, &all));
            let after = holders(&Placement::new(partitions, rf, &rest));
            for (b, a) in before.iter().zip(&after) {
                if b.contains(&gone) {
                    let kept: BTreeSet<_> = b.iter().copied().filter(|w| *w != gone).collect();
                    prop_assert!(kept.is_subset(a));
                } else {
                    prop_assert_eq!(b, a);
                }
            }
        }
    }
}

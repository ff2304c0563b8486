//! Cluster mode (issue 19): which partition a series belongs to, a read limited to some
//! partitions, and how much of the cluster answered a read.
//!
//! A series' partition is a hash of its metric name and tags (not its data type: a
//! series written as longs and as doubles stays in one place), modulo the cluster's
//! partition count. The hash is pinned (`partition_of_is_pinned`): every node of a
//! cluster, whatever its version, must place a series in the same partition.
//!
//! Not here: which nodes hold a partition (`kairosdb-cluster`'s placement).

use crate::series::Tags;

/// The partition of the series `metric` + `tags` among `partitions` (at least 1).
///
/// xxh3-64 (seed 0) over the metric and each tag name and value, each preceded by its
/// length as a little-endian u32, so no two different series share one input.
pub fn partition_of(metric: &str, tags: &Tags, partitions: u32) -> u32 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut put = |s: &str| {
        h.update(&(s.len() as u32).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(metric);
    for (k, v) in tags.iter() {
        put(k);
        put(v);
    }
    (h.digest() % u64::from(partitions.max(1))) as u32
}

/// The partitions a read is limited to ([`crate::SeriesQuery::shard`]): a cluster reads
/// each partition from one replica, and asks each worker only for the partitions it was
/// given, so no point is counted twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    partitions: u32,
    /// Bit `p` set: partition `p` is wanted.
    wanted: Vec<u64>,
}

impl Shard {
    /// The given partitions of `partitions` (numbers past the count are ignored).
    pub fn new(partitions: u32, wanted: impl IntoIterator<Item = u32>) -> Shard {
        let mut bits = vec![0u64; (partitions as usize).div_ceil(64)];
        for p in wanted.into_iter().filter(|&p| p < partitions) {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        Shard {
            partitions,
            wanted: bits,
        }
    }

    /// The partition count this shard is over.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn contains(&self, partition: u32) -> bool {
        partition < self.partitions
            && self.wanted[partition as usize / 64] & (1 << (partition % 64)) != 0
    }

    /// Is the series `metric` + `tags` in one of the wanted partitions?
    pub fn holds(&self, metric: &str, tags: &Tags) -> bool {
        self.contains(partition_of(metric, tags, self.partitions))
    }

    /// The wanted partitions, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.partitions).filter(|&p| self.contains(p))
    }
}

/// How much of a cluster answered a read: every worker, or fewer with some partitions
/// unread (then the answer is partial). Carried by [`crate::Read::Partial`] and, for a
/// query, by [`crate::QueryResult::coverage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Workers the read needed.
    pub total_nodes: u32,
    /// Of them, those that answered.
    pub responding_nodes: u32,
}

impl Coverage {
    /// The less complete of two (a query of several reads is as partial as its worst).
    pub fn worst(self, other: Coverage) -> Coverage {
        if other.responding_nodes * self.total_nodes.max(1)
            < self.responding_nodes * other.total_nodes.max(1)
        {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_is_pinned() {
        // Changing these moves every series of every existing cluster.
        let tags = Tags::from_pairs([("host", "a"), ("dc", "eu")]);
        assert_eq!(partition_of("cpu", &tags, 1 << 20), 126528);
        assert_eq!(partition_of("cpu", &Tags::new(), 1 << 20), 250348);
        assert_eq!(
            partition_of("cpu", &tags, 256),
            partition_of("cpu", &tags, 1 << 20) % 256
        );
    }

    #[test]
    fn names_and_values_cannot_trade_characters() {
        let a = Tags::from_pairs([("ab", "c")]);
        let b = Tags::from_pairs([("a", "bc")]);
        assert_ne!(
            partition_of("m", &a, 1 << 30),
            partition_of("m", &b, 1 << 30)
        );
    }

    #[test]
    fn series_spread_evenly_over_partitions() {
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            let tags = Tags::from_pairs([("host", format!("h{i}"))]);
            counts[partition_of("cpu", &tags, 16) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_shard_holds_exactly_its_partitions() {
        let shard = Shard::new(130, [0, 64, 129, 500]);
        assert_eq!(shard.iter().collect::<Vec<_>>(), [0, 64, 129]);
        assert!(!shard.contains(1) && !shard.contains(130) && !shard.contains(500));
    }

    #[test]
    fn the_worst_coverage_has_the_smallest_share_answering() {
        let all = Coverage {
            total_nodes: 3,
            responding_nodes: 3,
        };
        let two = Coverage {
            total_nodes: 3,
            responding_nodes: 2,
        };
        assert_eq!(all.worst(two), two);
        assert_eq!(two.worst(all), two);
    }
}

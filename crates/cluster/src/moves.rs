//! Moving partitions between workers (docs/cluster.md, "Moving partitions"): the data side
//! of a move, run by the control node driving it once every node routes by the moving
//! layout (writes go to old and new replicas, reads to the old ones).
//!
//! * [`ClusterStorage::copy_moving`]: every partition gaining a replica is read from one of
//!   its holders, metric by metric, a few partitions at a time, with each point's
//!   remaining TTL, and *backfilled* onto the replicas it gains: each stores only the
//!   points it does not hold yet (`Storage::backfill`, `BACKFILL_HEADER`). A write that
//!   reached the new replica first (the move's dual writes) is so never replaced by the
//!   older value the copy read before it, whichever lands first. A copy is idempotent, so
//!   a failed one is simply run again.
//! * [`ClusterStorage::drop_unheld`]: once the move is settled and every node routes by the
//!   new layout, each worker deletes the partitions it no longer holds (a sharded delete).
//!
//! A copied point keeps its TTL: the time it had left on its old holder, rounded up a
//! little (`wire::ttl_class`) so that a series crosses in few parts. Not here: when to
//! copy and settle (the server's `cluster/moves.rs`), the layouts themselves
//! (`router.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kairosdb_model::{
    partition_of, SeriesPoints, SeriesQuery, Shard, StorageError, TagFilter, TimeRange, WriteBatch,
};

use crate::client::{CallError, WorkerClient};
use crate::router::{ClusterStorage, Routing};
use crate::wire::{self, ReadRequest, Selection};

/// Partitions copied per round: bounds what one read holds.
const PARTITIONS_PER_ROUND: usize = 16;

/// Most points of one backfill call: bounds its body and how long the receiving worker
/// holds its write lock deciding which points it lacks.
const POINTS_PER_WRITE: usize = 65_536;

/// How far a move has come, for `GET /api/v1/cluster`.
#[derive(Debug, Default)]
pub struct MoveProgress {
    /// Partitions that gain a replica in this move.
    pub partitions: AtomicU64,
    pub partitions_copied: AtomicU64,
    pub points_copied: AtomicU64,
}

/// A copy from one holder that failed.
enum CopyError {
    /// The holder did not answer: its partitions are copied from another one.
    Source(CallError),
    /// Anything else: the copy stops and is tried again later.
    Fatal(StorageError),
}

impl ClusterStorage {
    /// Copies every partition that gains a replica in the move under way from one of
    /// its holders (the first that answers, preferring those with no hints pending) to
    /// the replicas it gains. Nothing to do when no move is under way.
    pub fn copy_moving(&self, progress: &MoveProgress) -> Result<(), StorageError> {
        let r = self.routing();
        let moving: Vec<u32> = (0..r.holders.len() as u32)
            .filter(|&p| !gained(&r, p).is_empty())
            .collect();
        progress
            .partitions
            .store(moving.len() as u64, Ordering::Relaxed);
        progress.partitions_copied.store(0, Ordering::Relaxed);
        tracing::info!(
            epoch = r.epoch,
            partitions = moving.len(),
            "copying moving partitions"
        );
        for round in moving.chunks(PARTITIONS_PER_ROUND) {
            self.copy_round(&r, round, progress)?;
        }
        Ok(())
    }

    fn copy_round(
        &self,
        r: &Routing,
        round: &[u32],
        progress: &MoveProgress,
    ) -> Result<(), StorageError> {
        let mut todo = round.to_vec();
        let mut down = BTreeSet::new();
        while !todo.is_empty() {
            let mut by_source: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for p in todo.drain(..) {
                let source = r.holders[p as usize]
                    .iter()
                    .filter(|w| !down.contains(*w))
                    .min_by_key(|&&w| r.workers[w].pending_hints() > 0);
                match source {
                    Some(&w) => by_source.entry(w).or_default().push(p),
                    None => {
                        return Err(StorageError::Unavailable {
                            message: format!(
                                "partition {p} has no holder that answers; the move waits for one"
                            ),
                            retry_after_secs: 5,
                        })
                    }
                }
            }
            for (source, partitions) in by_source {
                match self.copy_from(r, source, &partitions, progress) {
                    Ok(()) => {}
                    Err(CopyError::Source(e)) => {
                        tracing::warn!(source = %r.workers[source].client.address, error = ?e,
                            "copy source failed; trying another holder");
                        down.insert(source);
                        todo.extend(partitions);
                    }
                    Err(CopyError::Fatal(e)) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Copies `partitions` from `source`, metric by metric.
    fn copy_from(
        &self,
        r: &Routing,
        source: usize,
        partitions: &[u32],
        progress: &MoveProgress,
    ) -> Result<(), CopyError> {
        let client = &r.workers[source].client;
        let count = r.holders.len() as u32;
        let shard = Shard::new(count, partitions.iter().copied());
        let metrics = self
            .runtime
            .block_on(client.names("metric_names", None))
            .map_err(source_error)?;
        for metric in metrics {
            let query = SeriesQuery {
                shard: Some(shard.clone()),
                ..SeriesQuery::new(metric, TagFilter::default(), TimeRange::ALL)
            };
            let request = ReadRequest {
                ttls: true,
                ..ReadRequest::new(&query)
            };
            let batch = self
                .runtime
                .block_on(client.read_copy(&request, r.epoch))
                .map_err(source_error)?;
            let mut shares: BTreeMap<usize, Vec<SeriesPoints>> = BTreeMap::new();
            let mut points = 0u64;
            for s in batch.series {
                let p = partition_of(&s.key.metric, &s.key.tags, count);
                points += s.points.len() as u64;
                for w in gained(r, p) {
                    shares.entry(w).or_default().push(s.clone());
                }
            }
            for (w, series) in shares {
                for part in in_parts(series, POINTS_PER_WRITE) {
                    let body = wire::encode_write(&part);
                    self.runtime
                        .block_on(r.workers[w].client.backfill(body.into(), r.epoch))
                        .map_err(|e| {
                            CopyError::Fatal(StorageError::Unavailable {
                                message: format!(
                                    "copying to {}: {}",
                                    r.workers[w].client.address,
                                    e.into_storage_error()
                                ),
                                retry_after_secs: 5,
                            })
                        })?;
                }
            }
            progress.points_copied.fetch_add(points, Ordering::Relaxed);
        }
        progress
            .partitions_copied
            .fetch_add(partitions.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes from each worker the partitions it does not hold in the layout routed by,
    /// on every worker routed to before too (`previous`: the workers before the move, so
    /// one that left is emptied as well, when it answers). Answers the series deleted.
    pub fn drop_unheld(&self, previous: &[String]) -> Result<u64, StorageError> {
        let r = self.routing();
        if r.moving() {
            return Err(StorageError::Internal(
                "BUG: dropping partitions while they move".into(),
            ));
        }
        let count = r.holders.len() as u32;
        let mut targets: Vec<(Arc<WorkerClient>, Vec<u32>)> = Vec::new();
        for (w, slot) in r.workers.iter().enumerate() {
            let unheld: Vec<u32> = (0..count)
                .filter(|&p| !r.holders[p as usize].contains(&w))
                .collect();
            targets.push((slot.client.clone(), unheld));
        }
        for address in previous {
            if r.workers.iter().all(|s| &s.client.address != address) {
                let client = self.client_of(address)?;
                targets.push((client, (0..count).collect()));
            }
        }
        let mut deleted = 0;
        for (client, unheld) in targets {
            if unheld.is_empty() {
                continue;
            }
            match self.drop_from(&client, count, &unheld, r.epoch) {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::warn!(worker = %client.address, error = %e,
                        "could not drop the partitions it no longer holds");
                    if r.workers.iter().any(|s| s.client.address == client.address) {
                        return Err(e);
                    }
                }
            }
        }
        Ok(deleted)
    }

    fn drop_from(
        &self,
        client: &WorkerClient,
        count: u32,
        unheld: &[u32],
        epoch: u64,
    ) -> Result<u64, StorageError> {
        let metrics = self
            .runtime
            .block_on(client.names("metric_names", None))
            .map_err(CallError::into_storage_error)?;
        let mut deleted = 0;
        for metric in metrics {
            let selection = Selection {
                shard: Some((count, unheld.to_vec())),
                ..Selection::new(&metric, &TagFilter::default(), TimeRange::ALL)
            };
            deleted += self
                .runtime
                .block_on(client.delete(&selection, epoch))
                .map_err(CallError::into_storage_error)?;
        }
        tracing::info!(worker = %client.address, series = deleted, "dropped the partitions it no longer holds");
        Ok(deleted)
    }
}

/// `series` as batches of at most `max` points each, a series split where it must be.
fn in_parts(series: Vec<SeriesPoints>, max: usize) -> Vec<WriteBatch> {
    let mut parts = vec![WriteBatch::new()];
    for s in series {
        let mut from = 0;
        while from < s.points.len() {
            let room = max - parts.last().map_or(0, WriteBatch::point_count);
            if room == 0 {
                parts.push(WriteBatch::new());
                continue;
            }
            let to = s.points.len().min(from + room);
            let points = match (from, to) {
                (0, to) if to == s.points.len() => s.points.clone(),
                _ => s.points.pick(&(from..to).collect::<Vec<_>>()),
            };
            let part = parts.last_mut().expect("BUG: parts start with one");
            part.series.push(SeriesPoints {
                key: s.key.clone(),
                ttl_secs: s.ttl_secs,
                points,
            });
            from = to;
        }
    }
    parts.retain(|p| !p.series.is_empty());
    parts
}

/// The workers that hold partition `p` after the move and not before.
fn gained(r: &Routing, p: u32) -> Vec<usize> {
    let holders = &r.holders[p as usize];
    r.incoming[p as usize]
        .iter()
        .copied()
        .filter(|w| !holders.contains(w))
        .collect()
}

fn source_error(e: CallError) -> CopyError {
    match e {
        CallError::Unreachable(_) => CopyError::Source(e),
        e => CopyError::Fatal(e.into_storage_error()),
    }
}

#[cfg(test)]
mod tests {
    use kairosdb_model::{DataType, Points, SeriesKey, Tags};

    use super::*;

    fn series(host: &str, n: i64, ttl_secs: u32) -> SeriesPoints {
        SeriesPoints {
            key: SeriesKey::new("m", DataType::Long, Tags::from_pairs([("host", host)])),
            ttl_secs,
            points: Points::Long {
                ts: (0..n).collect(),
                values: (0..n).map(|t| t * 10).collect(),
            },
        }
    }

    #[test]
    fn copies_are_written_in_parts_of_at_most_so_many_points_and_lose_none() {
        let all = vec![series("a", 5, 0), series("b", 12, 60), series("c", 1, 0)];
        let parts = in_parts(all.clone(), 4);
        assert!(parts
            .iter()
            .all(|p| p.point_count() == 4 || p == parts.last().unwrap()));
        assert_eq!(parts.iter().map(WriteBatch::point_count).sum::<usize>(), 18);
        assert_eq!(parts.len(), 5);
        // Put back together, part by part, each series is what it was, TTL included.
        for s in &all {
            let mut ts = Vec::new();
            let mut values = Vec::new();
            for p in parts
                .iter()
                .flat_map(|p| &p.series)
                .filter(|p| p.key == s.key)
            {
                assert_eq!(p.ttl_secs, s.ttl_secs);
                let Points::Long { ts: t, values: v } = &p.points else {
                    panic!("longs")
                };
                ts.extend_from_slice(t);
                values.extend_from_slice(v);
            }
            assert_eq!(Points::Long { ts, values }, s.points);
        }
        assert!(in_parts(Vec::new(), 4).is_empty());
    }
}

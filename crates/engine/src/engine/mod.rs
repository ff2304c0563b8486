//! The engine proper, split by job: the shared state ([`Inner`], its [`Counters`]) and
//! the small helpers every job uses (health checks, poisoning, hiding empty series).
//!
//! Not here: the jobs themselves, each in its own file, read top to bottom —
//! `open.rs` (registry load and WAL replay), `write.rs` (validate → WAL append → head
//! insert → fsync), `read.rs` (queries, edge reads, series listing), `delete.rs`,
//! `maintain.rs` (seal, compact, checkpoint, retention), `threads.rs` (the two
//! background threads and close) and `stats.rs`. The public [`crate::Engine`] wrapper
//! is in `lib.rs`.
//!
//! Lock order (never taken in the other direction):
//! `maint` → registry → `wal` → head shard → liveness flips/postings → series summary.
//! * `wal` is held across WAL append *and* head insert, so memory order equals log
//!   order and "last write wins" is the same before and after a restart.
//! * `maint` serialises every block mutation (seal, delete, retention, compaction) and WAL
//!   segment deletion; reads never take it.

mod delete;
mod maintain;
mod open;
mod read;
mod stats;
mod threads;
mod write;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use kairosdb_model::StorageError;
use parking_lot::{Condvar, Mutex};

use crate::head::Head;
use crate::index::{Registry, SeriesEntry};
use crate::sealed::Sealed;
use crate::wal::WalWriter;
use crate::EngineConfig;

/// The work-limit tests price their reads in it.
#[cfg(test)]
pub(crate) use read::SERIES_WORK;

kairosdb_model::metrics! {
    /// The engine's counters, bumped where each event happens; `stats.rs` exports them
    /// with the block counts of `Sealed` and the gauges read from the engine's state.
    #[derive(Default)]
    pub struct Counters {
        counter points_written: "engine_points_written_total",
            "Points acknowledged by write()";
        counter batches_written: "engine_write_batches_total",
            "Write batches acknowledged";
        counter series_created: "engine_series_created_total",
            "New series registered";
        counter wal_bytes_written: "engine_wal_bytes_written_total",
            "Bytes appended to the WAL";
        counter wal_fsyncs: "engine_wal_fsyncs_total",
            "WAL fsync calls (group commits)";
        counter wal_truncated_bytes: "engine_wal_truncated_bytes_total",
            "Torn WAL tail bytes truncated at open";
        counter wal_skipped_bytes: "engine_wal_skipped_bytes_total",
            "Corrupt WAL bytes skipped at open (wal_skip_corrupt)";
        counter wal_replayed_records: "engine_wal_replayed_records_total",
            "WAL records replayed at open";
        counter wal_replayed_points: "engine_wal_replayed_points_total",
            "Points re-inserted into the head at open";
        counter wal_segments_removed: "engine_wal_segments_removed_total",
            "WAL segments deleted by checkpoints";
        counter seals: "engine_seals_total",
            "Series heads sealed into blocks";
        counter points_sealed: "engine_points_sealed_total",
            "Points sealed into blocks";
        counter forced_seals: "engine_forced_seals_total",
            "Seals forced by the WAL size bound";
        counter backpressure_events: "engine_backpressure_total",
            "Writes refused over max_head_bytes";
        counter points_deleted: "engine_points_deleted_total",
            "Points removed by delete requests";
        counter delete_blocks_dropped: "engine_delete_blocks_dropped_total",
            "Blocks dropped whole by deletes (never decoded)";
        counter delete_blocks_rewritten: "engine_delete_blocks_rewritten_total",
            "Blocks straddling a delete range, decoded and re-encoded";
        counter points_expired: "engine_points_expired_total",
            "Points removed from blocks by TTL";
        counter blocks_expired: "engine_blocks_expired_total",
            "Blocks dropped whole by TTL";
        counter compactions: "engine_compactions_total",
            "Series whose overlapping blocks (late writes) were merged into disjoint ones";
        counter blocks_compacted: "engine_blocks_compacted_total",
            "Overlapping blocks merged away by compactions";
        counter queries: "engine_queries_total",
            "Series queries served";
        counter points_read: "engine_points_read_total",
            "Points returned by queries";
        /// Series of `first`/`last` edge reads answered without reading the series in full.
        counter edge_reads: "engine_edge_reads_total",
            "Series of first/last edge reads answered from summaries and at most one block";
        counter maintenance_errors: "engine_maintenance_errors_total",
            "Failed background maintenance passes";
    }
}

/// State shared with the background threads.
#[derive(Default)]
struct Bg {
    stop: bool,
    kick: bool,
}

pub struct Inner {
    pub cfg: EngineConfig,
    pub sealed: Sealed,
    pub registry: Registry,
    pub head: Head,
    pub wal: Mutex<WalWriter>,
    /// Group-commit position up to which the WAL is fsynced.
    synced: Mutex<u64>,
    pub maint: Mutex<()>,
    poisoned: AtomicBool,
    poison_msg: Mutex<String>,
    closed: AtomicBool,
    pub counters: Counters,
    seal_queue: Mutex<Vec<u64>>,
    bg: Mutex<Bg>,
    bg_cv: Condvar,
    last_retention_ms: AtomicI64,
    /// Refuses writes before the disk is full (`disk.rs`).
    disk: crate::disk::DiskGuard,
}

fn secs(ms: i64) -> u64 {
    ms.div_euclid(1000).max(0) as u64
}

fn io_internal(what: &str, e: std::io::Error) -> StorageError {
    StorageError::Internal(format!("{what}: {e}"))
}

impl Inner {
    // -----------------------------------------------------------------------
    // Health
    // -----------------------------------------------------------------------

    pub fn poison(&self, what: String) -> StorageError {
        tracing::error!(reason = %what, "engine poisoned: refusing further writes");
        let mut m = self.poison_msg.lock();
        if m.is_empty() {
            *m = what;
        }
        self.poisoned.store(true, Ordering::Release);
        StorageError::Poisoned(m.clone())
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn poison_detail(&self) -> String {
        self.poison_msg.lock().clone()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs one metadata write on fjall and fsyncs fjall's journal before returning,
    /// so an acknowledged metadata change survives a crash. Refused when closed or
    /// poisoned; a failed write or fsync poisons (nothing is silently lost).
    pub fn durable_meta_write(
        &self,
        f: impl FnOnce(&crate::store::Store) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.check_writable()?;
        let store = &self.sealed.store;
        f(store)
            .and_then(|()| store.persist())
            .map_err(|e| self.poison(format!("metadata write failed: {e}")))
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        if self.is_poisoned() {
            return Err(StorageError::Poisoned(self.poison_detail()));
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        self.cfg.clock.now_ms()
    }

    /// A failed block write: the engine can no longer guarantee durability.
    fn poison_maint(&self, e: StorageError) -> StorageError {
        match e {
            StorageError::Internal(m) => self.poison(format!("block store write failed: {m}")),
            other => other,
        }
    }

    /// Hides a series from listings when it has no points left.
    fn check_dead(&self, e: &SeriesEntry) {
        self.head.with_emptiness(e.id, |empty| {
            if empty && e.summary.lock().blocks == 0 {
                self.registry.mark_dead(e);
            }
        });
    }
}

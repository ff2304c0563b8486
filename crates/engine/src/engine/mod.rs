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

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

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

/// Counters exported by `stats()`.
#[derive(Default)]
pub struct Counters {
    pub points_written: AtomicU64,
    pub batches_written: AtomicU64,
    pub series_created: AtomicU64,
    pub wal_bytes_written: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub wal_truncated_bytes: AtomicU64,
    pub wal_skipped_bytes: AtomicU64,
    pub wal_replayed_records: AtomicU64,
    pub wal_replayed_points: AtomicU64,
    pub wal_segments_removed: AtomicU64,
    pub seals: AtomicU64,
    pub points_sealed: AtomicU64,
    pub forced_seals: AtomicU64,
    pub backpressure_events: AtomicU64,
    pub points_deleted: AtomicU64,
    pub delete_blocks_dropped: AtomicU64,
    pub delete_blocks_rewritten: AtomicU64,
    pub points_expired: AtomicU64,
    pub blocks_expired: AtomicU64,
    pub compactions: AtomicU64,
    pub blocks_compacted: AtomicU64,
    pub queries: AtomicU64,
    pub points_read: AtomicU64,
    /// Series of `first`/`last` edge reads answered without reading the series in full.
    pub edge_reads: AtomicU64,
    pub maintenance_errors: AtomicU64,
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

//! The embedded storage engine of kairosdb-rs: a write-ahead log, an in-memory head,
//! pco-compressed sealed blocks and a tag index in fjall, and TTL retention.
//!
//! Durability steps of a write, in order, and the file doing each:
//! 0. **disk space**: refuse while the data directory's disk is below
//!    `min_free_disk_bytes` (507 at the HTTP edge; accepted again once space returns) —
//!    `disk.rs`;
//! 1. **validate** the batch (types, lengths) and apply backpressure when the head is
//!    over `max_head_bytes` — `engine/write.rs` (`Inner::write`, `Inner::admit`);
//! 2. **resolve series ids**, registering new series in fjall's `series` keyspace —
//!    `index.rs` (`Registry::get_or_create`), `store.rs`;
//! 3. **WAL append**: series definitions the WAL has not seen yet, then one points
//!    record, each framed `len | crc32 | payload` — `wal.rs`;
//! 4. **head insert** under the same lock, so memory order equals log order (last
//!    write wins identically before and after a restart) — `head.rs`;
//! 5. **fsync** per [`WalSync`] (group commit) — `engine/write.rs` (`Inner::sync_to`);
//! 6. **acknowledge** (`write` returns `Ok`).
//!
//! A backfill (`Storage::backfill`: store only the points that are absent, as a cluster's
//! partition copy does) takes the same steps for the points it stores, deciding which
//! under the maintenance lock (blocks) and the WAL lock (head), and logs only those, as an
//! ordinary points record: replay needs nothing new — `engine/write.rs`
//! (`Inner::backfill`).
//!
//! Then, in the background (`engine/threads.rs` runs `Inner::maintain` of
//! `engine/maintain.rs`):
//! * **seal** heads of ≥ `seal_points` points (or older than `head_max_age`, or idle
//!   for `head_idle` and four of their own write gaps) into
//!   blocks — `column.rs` sorts and deduplicates, `block.rs` encodes with pco,
//!   `sealed.rs` writes them to fjall's `blocks` keyspace, up to 64 series per batch;
//!   a full head written out of time order keeps its newest points as a lateness
//!   window, logged again in the WAL (`Inner::seal_full_locked`);
//! * **compact** series whose blocks overlap (late writes) into disjoint blocks —
//!   `sealed.rs` (`Sealed::compact`), via `Inner::compact_locked`;
//! * **checkpoint**: persist fjall, then delete WAL segments whose points are all
//!   in blocks; force-seal laggards when the WAL passes `wal_max_bytes`
//!   (`Inner::checkpoint_locked`, `Inner::seal_laggards_locked`);
//! * **expire** TTL'd points from blocks and heads — `sealed.rs` (`Sealed::expire`).
//!
//! Deletes (`engine/delete.rs`, `Inner::delete`, spec §1.8/§1.9) hold the maintenance lock:
//! select the live series matching the tag filter (`index.rs`, `Registry::select`) →
//! **WAL append** of a delete record and **head removal** under the WAL lock →
//! **fsync**, whatever [`WalSync`] says → drop the blocks inside the range and rewrite
//! the ones straddling its ends (`sealed.rs`, `Sealed::delete_range`) → series left
//! without points leave every listing (`Registry::mark_dead`). Replay re-applies the
//! record, so deleted points never come back.
//!
//! Opening (`engine/open.rs`, `Inner::open`) loads the series and block summaries from
//! fjall and replays the WAL (`Replay`): points back into the head unless already
//! sealed, deletes again on the head and the blocks.
//!
//! Reads (`engine/read.rs`, `Inner::query`) merge blocks (by sequence) and the head
//! without taking the write lock. On-disk formats are drawn byte by byte in
//! `docs/format/`.
//!
//! Public surface (fixed; the server codes against it): [`EngineConfig`],
//! [`WalSync`], [`Engine::open`], [`Engine::close`], and
//! `impl kairosdb_model::Storage for Engine`.

mod block;
mod codec;
mod column;
pub mod disk;
mod engine;
mod head;
mod index;
pub mod queue;
mod sealed;
mod services;
mod store;
mod times;
mod wal;

#[cfg(test)]
mod tests;

/// Codec entry points for the benchmarks and the fuzz targets (`fuzz/`): block, WAL
/// and delivery-queue encoders and decoders. Not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::block::{
        decode, decode_append_range, decode_header, encode, reseal, BlockHeader, Decoded, Expiry,
    };
    pub use crate::column::{Col, StrCol};
    pub use crate::queue::{decode_batch, encode_batch};
    pub use crate::wal::{
        begin_record, decode_record, encode_delete, encode_points_chunk, encode_series_defs,
        finish_record, scan_segment, segment_header, ChunkHeader, Lsn, PointsReader, Record,
        SegmentScan, NEVER, REC_POINTS, SEGMENT_HEADER_LEN,
    };
}

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kairosdb_model::{
    DeleteRequest, HealthStatus, Read, SeriesKey, SeriesQuery, ServiceStore, Storage, StorageError,
    StorageStats, TagFilter, TimeRange, WriteBatch,
};
use parking_lot::{Mutex, RwLock};

use crate::engine::Inner;
pub use crate::queue::{DeliveryQueue, QueueOptions};

/// When the WAL is fsynced relative to acknowledging a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSync {
    /// fsync before `write` returns.
    Always,
    /// Group fsync at least every given interval (default 1 s).
    Interval(Duration),
    /// Never fsync explicitly (the OS decides).
    None,
}

/// Source of "now" for TTLs and head ages. Tests use [`Clock::manual`].
#[derive(Clone)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// Wall-clock time.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that only moves when told to (ms since the epoch).
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            t.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(t) => write!(f, "Clock::manual({})", t.load(Ordering::Relaxed)),
            None => f.write_str("Clock::system"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub wal_sync: WalSync,
    /// Upper bound for in-memory head data; above it writes get `Backpressure`.
    pub max_head_bytes: u64,
    /// TTL applied to points written with ttl 0; 0 = keep forever.
    pub default_ttl_secs: u32,
    /// WAL segment size at which a new segment starts (default 64 MiB).
    pub wal_segment_bytes: u64,
    /// WAL size above which the series holding the oldest segments are sealed
    /// early, bounding disk use and restart time (default 256 MiB).
    pub wal_max_bytes: u64,
    /// Replay past corruption in a WAL segment that is not the last one (skipping
    /// the rest of that segment) instead of refusing to open. Default false.
    pub wal_skip_corrupt: bool,
    /// A series head is sealed into a block at this many points (default 2048);
    /// blocks hold up to twice this.
    pub seal_points: usize,
    /// Heads older than this are sealed even when small (default 1 h).
    pub head_max_age: Duration,
    /// Heads with no write for this long, and for four of their own gaps between writes,
    /// are sealed: a finished load leaves no raw points in the WAL (default 30 s).
    pub head_idle: Duration,
    /// Period of the background maintenance pass (default 1 s).
    pub maintenance_interval: Duration,
    /// Period of the TTL retention pass (default 60 s).
    pub retention_interval: Duration,
    /// pco compression level for blocks, 0–12 (default 3: within ~2 % of level 8's
    /// size on TSBS-like data at ~3x the encode speed).
    pub compression_level: usize,
    /// fjall block cache size (default 64 MiB).
    pub cache_bytes: u64,
    /// Writes are refused ([`StorageError::InsufficientStorage`]) while the data
    /// directory's file system has less than this available (`disk.rs`); 0 = never.
    /// Default 256 MiB.
    pub min_free_disk_bytes: u64,
    /// Run the maintenance thread (default true). Tests turn it off and call
    /// [`Engine::run_maintenance`] to be deterministic.
    pub background: bool,
    /// Time source for TTLs and head ages.
    pub clock: Clock,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            wal_sync: WalSync::Interval(Duration::from_secs(1)),
            max_head_bytes: 1 << 30,
            default_ttl_secs: 0,
            wal_segment_bytes: 64 << 20,
            wal_max_bytes: 256 << 20,
            wal_skip_corrupt: false,
            seal_points: 2048,
            head_max_age: Duration::from_secs(3600),
            head_idle: Duration::from_secs(30),
            maintenance_interval: Duration::from_secs(1),
            retention_interval: Duration::from_secs(60),
            compression_level: block::DEFAULT_LEVEL,
            cache_bytes: 64 << 20,
            min_free_disk_bytes: 256 << 20,
            background: true,
            clock: Clock::system(),
        }
    }

    fn validate(&self) -> Result<(), StorageError> {
        let bad = |m: String| Err(StorageError::InvalidInput(m));
        if self.seal_points == 0 || self.seal_points > (block::MAX_BLOCK_POINTS / 2) as usize {
            return bad(format!(
                "seal_points must be 1..={}, got {}",
                block::MAX_BLOCK_POINTS / 2,
                self.seal_points
            ));
        }
        if self.compression_level > 12 {
            return bad(format!(
                "compression_level must be 0..=12, got {}",
                self.compression_level
            ));
        }
        if self.wal_segment_bytes < 4096 {
            return bad(format!(
                "wal_segment_bytes must be at least 4096, got {}",
                self.wal_segment_bytes
            ));
        }
        if let WalSync::Interval(d) = self.wal_sync {
            if d.is_zero() {
                return bad("WalSync::Interval needs a non-zero interval".into());
            }
        }
        Ok(())
    }
}

/// The embedded store. Share it behind an `Arc`; all methods take `&self`.
///
/// [`Engine::close`] waits for in-flight calls, seals and syncs, and releases the
/// data directory (so it can be opened again in the same process); afterwards
/// every call returns [`StorageError::Closed`].
pub struct Engine {
    inner: RwLock<Option<Arc<Inner>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Opens (or creates) the store in `config.data_dir`, replaying the WAL.
    pub fn open(config: EngineConfig) -> Result<Engine, StorageError> {
        config.validate()?;
        let background = config.background;
        let sync = config.wal_sync;
        let inner = Inner::open(config)?;
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StorageError::Internal(format!("spawning {name}: {e}")))
        };
        if let WalSync::Interval(every) = sync {
            let i = inner.clone();
            threads.push(spawn(
                "kairos-wal-sync",
                Box::new(move || i.sync_loop(every)),
            )?);
        }
        if background {
            let i = inner.clone();
            threads.push(spawn(
                "kairos-maint",
                Box::new(move || i.maintenance_loop()),
            )?);
        }
        Ok(Engine {
            inner: RwLock::new(Some(inner)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on the open engine; `Closed` after [`Engine::close`].
    fn with<R>(
        &self,
        f: impl FnOnce(&Inner) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        match &*self.inner.read() {
            Some(i) => f(i),
            None => Err(StorageError::Closed),
        }
    }

    /// Seals/flushes what is needed, syncs the WAL and stops background work.
    /// Later calls return `Ok` and do nothing; later writes get `Closed`.
    pub fn close(&self) -> Result<(), StorageError> {
        if let Some(i) = &*self.inner.read() {
            i.stop_background();
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        // Waits for in-flight calls (they hold the read lock).
        let Some(inner) = self.inner.write().take() else {
            return Ok(());
        };
        inner.close()
    }

    /// Seals every head into blocks and checkpoints the WAL (admin and tests).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.with(|i| {
            let _m = i.maint.lock();
            i.seal_all_locked()?;
            i.wal
                .lock()
                .rotate()
                .map_err(|e| i.poison(format!("WAL rotate failed: {e}")))?;
            i.checkpoint_locked()
        })
    }

    /// Runs one maintenance pass now (seals, checkpoint, retention when due).
    pub fn run_maintenance(&self) -> Result<(), StorageError> {
        self.with(|i| i.maintain())
    }

    /// Runs the TTL retention pass now.
    pub fn run_retention(&self) -> Result<(), StorageError> {
        self.with(|i| {
            let _m = i.maint.lock();
            i.retention_locked()
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the engine on drop failed");
        }
    }
}

/// Metadata is read and written straight in fjall's `services` keyspace (see
/// `services.rs`): a set or delete is acknowledged once fjall's journal is fsynced.
impl ServiceStore for Engine {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.with(|i| {
            i.durable_meta_write(|st| {
                services::set_value(&st.db, &st.services, service, service_key, key, value)
            })
        })
    }
    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.with(|i| services::get_value(&i.sealed.store.services, service, service_key, key))
    }
    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.with(|i| services::list_service_keys(&i.sealed.store.services, service))
    }
    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.with(|i| {
            services::list_keys(&i.sealed.store.services, service, service_key, starts_with)
        })
    }
    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.with(|i| {
            i.durable_meta_write(|st| {
                services::delete_key(&st.db, &st.services, service, service_key, key)
            })
        })
    }
}

impl Storage for Engine {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.with(|i| i.write(batch))
    }
    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.with(|i| i.backfill(batch))
    }
    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.with(|i| i.query(query))
    }
    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.with(|i| i.series_keys(metric, filter, range))
    }
    /// The index, the summaries and the heads are in memory.
    fn series_keys_now(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Option<Result<Vec<SeriesKey>, StorageError>> {
        Some(self.series_keys(metric, filter, range))
    }
    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.with(|i| Ok(i.registry.metric_names(prefix)))
    }
    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.with(|i| Ok(i.registry.tag_names()))
    }
    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.with(|i| Ok(i.registry.tag_values()))
    }
    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        self.with(|i| i.delete(request))
    }
    /// Its index is complete: nothing to rebuild.
    fn index_metric_tags(&self, _metric: &str, _range: TimeRange) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.with(|i| {
            if i.is_poisoned() {
                return Err(StorageError::Poisoned(i.poison_detail()));
            }
            i.sync_all()?;
            i.sealed.store.persist()
        })
    }
    fn health(&self) -> HealthStatus {
        match &*self.inner.read() {
            Some(i) if i.is_poisoned() => HealthStatus {
                ok: false,
                detail: format!("poisoned: {}", i.poison_detail()),
            },
            Some(i) if !i.is_closed() => HealthStatus {
                ok: true,
                detail: String::new(),
            },
            _ => HealthStatus {
                ok: false,
                detail: "closed".into(),
            },
        }
    }
    fn stats(&self) -> StorageStats {
        match &*self.inner.read() {
            Some(i) => i.stats(),
            None => StorageStats::default(),
        }
    }
}

//! Opening the engine: the series registry and block summaries from fjall, the WAL
//! replayed into the head (its deletes into the blocks too), then a fresh WAL segment
//! to append to. [`Inner::open`] lists the steps; each is one function below, in the
//! order they run.
//!
//! Not here: reading WAL segments, torn-tail truncation and the corruption policy
//! (`wal.rs`, `wal::replay`), and what the records mean when they are first written
//! (`write.rs`, `delete.rs`, and `maintain.rs` for the lateness window a seal logs
//! again).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kairosdb_model::{DataType, SeriesKey, StorageError, TimeRange};
use parking_lot::{Condvar, Mutex};

use super::{io_internal, secs, Bg, Counters, Inner};
use crate::column::Col;
use crate::head::Head;
use crate::index::Registry;
use crate::sealed::Sealed;
use crate::store::{corrupt, Store};
use crate::wal::{self, Lsn, PointsReader, Record, ReplayReport, WalWriter};
use crate::{EngineConfig, WalSync};

impl Inner {
    /// Opens (or creates) the store in `cfg.data_dir`, replaying the WAL.
    pub fn open(cfg: EngineConfig) -> Result<Arc<Inner>, StorageError> {
        let started = Instant::now();
        let wal_dir = cfg.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| io_internal("creating data directory", e))?;
        let store = Store::open(&cfg.data_dir.join("db"), cfg.cache_bytes)?;
        let registry = load_series(&store)?;
        let sealed = Sealed::new(store, cfg.compression_level, cfg.seal_points)?;
        load_summaries(&registry, &sealed, secs(cfg.clock.now_ms()))?;
        let head = Head::new();
        let now_ms = cfg.clock.now_ms();
        let replayed =
            Replay::new(&registry, &sealed, &head, now_ms).run(&wal_dir, cfg.wal_skip_corrupt)?;
        mark_live(&registry, &head);
        let writer = create_wal_writer(&wal_dir, &cfg, &registry, &replayed.report)?;
        log_opened(&registry, &replayed, started);
        Ok(Arc::new(Inner::assemble(
            cfg, sealed, registry, head, writer, &replayed, now_ms,
        )))
    }

    /// The engine state around what `open` loaded, with the replay counted and the
    /// heads that are already big queued for sealing.
    fn assemble(
        cfg: EngineConfig,
        sealed: Sealed,
        registry: Registry,
        head: Head,
        writer: WalWriter,
        replayed: &Replayed,
        now_ms: i64,
    ) -> Inner {
        let counters = Counters::default();
        replayed.count(&counters);
        // Replay does not queue seals; queue the heads that are already big.
        let full_heads: Vec<u64> = head
            .infos()
            .into_iter()
            .filter(|i| i.points >= cfg.seal_points)
            .map(|i| i.sid)
            .collect();
        Inner {
            last_retention_ms: AtomicI64::new(now_ms),
            disk: crate::disk::DiskGuard::new(cfg.data_dir.clone(), cfg.min_free_disk_bytes),
            cfg,
            sealed,
            registry,
            head,
            wal: Mutex::new(writer),
            synced: Mutex::new(0),
            maint: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            poison_msg: Mutex::new(String::new()),
            closed: AtomicBool::new(false),
            counters,
            seal_queue: Mutex::new(full_heads),
            bg: Mutex::new(Bg::default()),
            bg_cv: Condvar::new(),
        }
    }
}

/// Every series definition fjall holds, live until the end of `open` says otherwise.
fn load_series(store: &Store) -> Result<Registry, StorageError> {
    let registry = Registry::new();
    for (id, key) in store.load_series()? {
        registry.restore(id, key, true)?;
    }
    Ok(registry)
}

/// Block summaries into their series; series whose blocks overlap wait for a
/// compaction from `open_secs` on.
fn load_summaries(
    registry: &Registry,
    sealed: &Sealed,
    open_secs: u64,
) -> Result<(), StorageError> {
    for (id, s) in sealed.store.load_summaries()? {
        match registry.get(id) {
            Some(e) => {
                *e.summary.lock() = s;
                sealed.account_loaded(&s);
                if !s.disjoint && s.blocks > 0 {
                    sealed.mark_unsettled(id, open_secs);
                }
            }
            None => tracing::warn!(
                series = id,
                "block summary without a series definition; ignored"
            ),
        }
    }
    Ok(())
}

/// WAL replay: applies each record to the registry, the head and the blocks, the way
/// the write, delete and seal paths applied it before the restart.
struct Replay<'a> {
    registry: &'a Registry,
    sealed: &'a Sealed,
    head: &'a Head,
    now_ms: i64,
    /// Chunk buffers reused across records.
    ts: Vec<i64>,
    vals: Col,
    /// Points re-inserted into the head.
    points: u64,
    /// The highest delete watermark replayed.
    max_watermark: u64,
}

/// What replay did, for the counters and the start-up log.
struct Replayed {
    report: ReplayReport,
    points: u64,
}

impl<'a> Replay<'a> {
    fn new(registry: &'a Registry, sealed: &'a Sealed, head: &'a Head, now_ms: i64) -> Self {
        Replay {
            registry,
            sealed,
            head,
            now_ms,
            ts: Vec::new(),
            vals: Col::new(DataType::Double),
            points: 0,
            max_watermark: 0,
        }
    }

    fn run(mut self, wal_dir: &Path, skip_corrupt: bool) -> Result<Replayed, StorageError> {
        let report = wal::replay(wal_dir, skip_corrupt, |lsn, payload| {
            self.apply(lsn, payload)
        })?;
        // A replayed delete applies to blocks with `seq < watermark`. If fjall lost
        // blocks sealed before the delete (its journal buffer dies with a killed
        // process), `next_block_seq` went back with them; blocks sealed from now on
        // must still sort at or above every watermark left in the WAL, or the next
        // replay would delete points written after the delete.
        self.sealed.advance_next_seq(self.max_watermark);
        Ok(Replayed {
            report,
            points: self.points,
        })
    }

    fn apply(&mut self, lsn: Lsn, payload: &[u8]) -> Result<(), StorageError> {
        let rec = wal::decode_record(payload)
            .map_err(|e| corrupt(&format!("WAL record at {lsn:?}"), e))?;
        match rec {
            Record::SeriesDefs(defs) => self.series_defs(defs),
            Record::Points(pr) => self.points(lsn, pr),
            Record::Delete {
                watermark,
                range,
                sids,
            } => self.delete(watermark, range, sids),
        }
    }

    /// Series first logged by a write; fjall may not have persisted them.
    fn series_defs(&mut self, defs: Vec<(u64, SeriesKey)>) -> Result<(), StorageError> {
        for (id, key) in defs {
            let fresh = self.registry.get(id).is_none();
            self.registry.restore(id, key.clone(), true)?;
            if fresh {
                self.sealed.store.put_series(id, &key)?;
            }
        }
        Ok(())
    }

    /// Points back into the head, except those already sealed into durable blocks.
    fn points(&mut self, lsn: Lsn, mut pr: PointsReader<'_>) -> Result<(), StorageError> {
        while let Some(h) = pr.next_chunk(&mut self.ts, &mut self.vals) {
            let h = h.map_err(|e| corrupt(&format!("WAL record at {lsn:?}"), e))?;
            let e = self.registry.get(h.sid).ok_or_else(|| {
                StorageError::Corruption(format!(
                    "WAL record at {lsn:?} references unknown series {}",
                    h.sid
                ))
            })?;
            if e.key.data_type != h.data_type {
                return Err(StorageError::Corruption(format!(
                    "WAL record at {lsn:?}: series {} is {:?}, points are {:?}",
                    h.sid, e.key.data_type, h.data_type
                )));
            }
            // Already sealed into durable blocks before the crash.
            if lsn <= e.summary.lock().sealed_lsn {
                continue;
            }
            self.points += self.ts.len() as u64;
            self.head.append_col(
                h.sid,
                &self.ts,
                &self.vals,
                h.expiry,
                lsn,
                self.now_ms,
                usize::MAX,
            );
        }
        Ok(())
    }

    /// A delete again, on the head and on the blocks below its watermark.
    fn delete(
        &mut self,
        watermark: u64,
        range: TimeRange,
        sids: Vec<u64>,
    ) -> Result<(), StorageError> {
        self.max_watermark = self.max_watermark.max(watermark);
        for sid in sids {
            if let Some(e) = self.registry.get(sid) {
                self.head.remove_range(sid, range);
                self.sealed.delete_range(&e, range, watermark)?;
            }
        }
        Ok(())
    }
}

impl Replayed {
    fn count(&self, c: &Counters) {
        c.wal_replayed_points.store(self.points, Ordering::Relaxed);
        c.wal_truncated_bytes
            .store(self.report.truncated_bytes, Ordering::Relaxed);
        c.wal_skipped_bytes
            .store(self.report.skipped_bytes, Ordering::Relaxed);
        c.wal_replayed_records
            .store(self.report.records, Ordering::Relaxed);
    }
}

/// Series with points (in the head or in blocks) are listed; the rest are hidden.
fn mark_live(registry: &Registry, head: &Head) {
    for e in registry.all() {
        let has_head = !head.with_emptiness(e.id, |empty| empty);
        if has_head || e.summary.lock().blocks > 0 {
            registry.mark_live(&e);
        }
    }
}

/// A new WAL segment after the replayed ones.
fn create_wal_writer(
    wal_dir: &Path,
    cfg: &EngineConfig,
    registry: &Registry,
    report: &ReplayReport,
) -> Result<WalWriter, StorageError> {
    // New positions must sort after every `sealed_lsn` already persisted, even
    // if the WAL directory was emptied by hand, or replay would skip them.
    let max_sealed = registry
        .all()
        .iter()
        .map(|e| e.summary.lock().sealed_lsn.segment)
        .max()
        .unwrap_or(0);
    let next_segment = report
        .segments
        .last()
        .map_or(1, |s| s.0 + 1)
        .max(max_sealed + 1);
    let durable = cfg.wal_sync != WalSync::None;
    WalWriter::create(
        wal_dir,
        next_segment,
        report.segments.clone(),
        cfg.wal_segment_bytes,
        durable,
    )
    .map_err(|e| io_internal("creating WAL segment", e))
}

fn log_opened(registry: &Registry, replayed: &Replayed, started: Instant) {
    tracing::info!(
        series = registry.len(),
        replayed_records = replayed.report.records,
        replayed_points = replayed.points,
        truncated_bytes = replayed.report.truncated_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "engine opened"
    );
}

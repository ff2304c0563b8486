//! The engine's figures for `/metrics` and `/api/v1/metrics`: its [`Counters`]
//! (declared in `mod.rs`), the block counts of `Sealed` (declared in `sealed.rs`) and
//! the gauges below, read from the engine's state at each scrape.
//!
//! Not here: counting (each job bumps its counter where the event happens) and the
//! exposition formats (the server's `metrics.rs`).
//!
//! [`Counters`]: super::Counters

use kairosdb_model::{Gauge, StorageStats};

use super::Inner;

/// Gauges read from the engine's state.
const GAUGES: &[Gauge<Inner>] = &[
    Gauge::new("engine_wal_bytes", "Bytes in WAL segments on disk", |i| {
        i.wal.lock().total_bytes() as f64
    }),
    Gauge::new("engine_wal_segments", "WAL segment files on disk", |i| {
        i.wal.lock().segment_count() as f64
    }),
    Gauge::new("engine_head_points", "Points in the in-memory head", |i| {
        i.head.points() as f64
    }),
    Gauge::new(
        "engine_head_bytes",
        "Bytes accounted to the head (max_head_bytes bound)",
        |i| i.head.bytes() as f64,
    ),
    Gauge::new(
        "engine_head_series",
        "Series with points in the head",
        |i| i.head.series_count() as f64,
    ),
    Gauge::new("engine_blocks", "Sealed blocks", |i| {
        i.sealed.block_count() as f64
    }),
    Gauge::new(
        "engine_block_bytes",
        "Encoded bytes of sealed blocks",
        |i| i.sealed.block_bytes() as f64,
    ),
    Gauge::new(
        "engine_unsettled_series",
        "Series with overlapping blocks waiting for a compaction",
        |i| i.sealed.unsettled_count() as f64,
    ),
    Gauge::new(
        "engine_series",
        "Known series (including empty ones)",
        |i| i.registry.len() as f64,
    ),
    Gauge::new(
        "engine_fjall_disk_bytes",
        "Apparent size of the fjall store (its journal is preallocated sparsely)",
        |i| i.sealed.store.disk_bytes() as f64,
    ),
    Gauge::new(
        "engine_poisoned",
        "1 when a write failure poisoned the engine",
        |i| f64::from(u8::from(i.is_poisoned())),
    ),
];

impl Inner {
    pub fn stats(&self) -> StorageStats {
        let mut stats = self.counters.collect();
        stats.append(self.sealed.counters.collect());
        stats.read_gauges(GAUGES, self);
        stats
    }
}

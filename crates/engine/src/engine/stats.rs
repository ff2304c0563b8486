//! The engine's counters and gauges as [`StorageStats`], for `/metrics` and
//! `/api/v1/metrics`.
//!
//! Not here: counting (each job bumps its [`super::Counters`] where it happens) and
//! the exposition formats (the server's `metrics.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use kairosdb_model::StorageStats;

use super::Inner;

impl Inner {
    pub fn stats(&self) -> StorageStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = vec![
            (
                "engine_points_written_total",
                "Points acknowledged by write()",
                l(&c.points_written),
            ),
            (
                "engine_write_batches_total",
                "Write batches acknowledged",
                l(&c.batches_written),
            ),
            (
                "engine_series_created_total",
                "New series registered",
                l(&c.series_created),
            ),
            (
                "engine_wal_bytes_written_total",
                "Bytes appended to the WAL",
                l(&c.wal_bytes_written),
            ),
            (
                "engine_wal_fsyncs_total",
                "WAL fsync calls (group commits)",
                l(&c.wal_fsyncs),
            ),
            (
                "engine_wal_truncated_bytes_total",
                "Torn WAL tail bytes truncated at open",
                l(&c.wal_truncated_bytes),
            ),
            (
                "engine_wal_skipped_bytes_total",
                "Corrupt WAL bytes skipped at open (wal_skip_corrupt)",
                l(&c.wal_skipped_bytes),
            ),
            (
                "engine_wal_replayed_records_total",
                "WAL records replayed at open",
                l(&c.wal_replayed_records),
            ),
            (
                "engine_wal_replayed_points_total",
                "Points re-inserted into the head at open",
                l(&c.wal_replayed_points),
            ),
            (
                "engine_wal_segments_removed_total",
                "WAL segments deleted by checkpoints",
                l(&c.wal_segments_removed),
            ),
            (
                "engine_seals_total",
                "Series heads sealed into blocks",
                l(&c.seals),
            ),
            (
                "engine_points_sealed_total",
                "Points sealed into blocks",
                l(&c.points_sealed),
            ),
            (
                "engine_forced_seals_total",
                "Seals forced by the WAL size bound",
                l(&c.forced_seals),
            ),
            (
                "engine_blocks_written_total",
                "Blocks written (seal, merge, rewrite)",
                l(&self.sealed.blocks_written),
            ),
            (
                "engine_blocks_removed_total",
                "Blocks removed (merge, rewrite, delete, TTL)",
                l(&self.sealed.blocks_removed),
            ),
            (
                "engine_backpressure_total",
                "Writes refused over max_head_bytes",
                l(&c.backpressure_events),
            ),
            (
                "engine_points_deleted_total",
                "Points removed by delete requests",
                l(&c.points_deleted),
            ),
            (
                "engine_delete_blocks_dropped_total",
                "Blocks dropped whole by deletes (never decoded)",
                l(&c.delete_blocks_dropped),
            ),
            (
                "engine_delete_blocks_rewritten_total",
                "Blocks straddling a delete range, decoded and re-encoded",
                l(&c.delete_blocks_rewritten),
            ),
            (
                "engine_points_expired_total",
                "Points removed from blocks by TTL",
                l(&c.points_expired),
            ),
            (
                "engine_blocks_expired_total",
                "Blocks dropped whole by TTL",
                l(&c.blocks_expired),
            ),
            (
                "engine_compactions_total",
                "Series whose overlapping blocks (late writes) were merged into disjoint ones",
                l(&c.compactions),
            ),
            (
                "engine_blocks_compacted_total",
                "Overlapping blocks merged away by compactions",
                l(&c.blocks_compacted),
            ),
            (
                "engine_queries_total",
                "Series queries served",
                l(&c.queries),
            ),
            (
                "engine_points_read_total",
                "Points returned by queries",
                l(&c.points_read),
            ),
            (
                "engine_edge_reads_total",
                "Series of first/last edge reads answered from summaries and at most one block",
                l(&c.edge_reads),
            ),
            (
                "engine_maintenance_errors_total",
                "Failed background maintenance passes",
                l(&c.maintenance_errors),
            ),
        ];
        let (wal_bytes, wal_segments) = {
            let w = self.wal.lock();
            (w.total_bytes(), w.segment_count())
        };
        let gauges = vec![
            (
                "engine_wal_bytes",
                "Bytes in WAL segments on disk",
                wal_bytes as f64,
            ),
            (
                "engine_wal_segments",
                "WAL segment files on disk",
                wal_segments as f64,
            ),
            (
                "engine_head_points",
                "Points in the in-memory head",
                self.head.points() as f64,
            ),
            (
                "engine_head_bytes",
                "Bytes accounted to the head (max_head_bytes bound)",
                self.head.bytes() as f64,
            ),
            (
                "engine_head_series",
                "Series with points in the head",
                self.head.series_count() as f64,
            ),
            (
                "engine_blocks",
                "Sealed blocks",
                self.sealed.block_count() as f64,
            ),
            (
                "engine_block_bytes",
                "Encoded bytes of sealed blocks",
                self.sealed.block_bytes() as f64,
            ),
            (
                "engine_unsettled_series",
                "Series with overlapping blocks waiting for a compaction",
                self.sealed.unsettled_count() as f64,
            ),
            (
                "engine_series",
                "Known series (including empty ones)",
                self.registry.len() as f64,
            ),
            (
                "engine_fjall_disk_bytes",
                "Apparent size of the fjall store (its journal is preallocated sparsely)",
                self.sealed.store.disk_bytes() as f64,
            ),
            (
                "engine_poisoned",
                "1 when a write failure poisoned the engine",
                f64::from(u8::from(self.is_poisoned())),
            ),
        ];
        StorageStats { counters, gauges }
    }
}

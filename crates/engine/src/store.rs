//! Everything kept in fjall (`data_dir/db/`): keyspaces, their key and value
//! layouts, and the per-series block summary.
//!
//! Keyspaces (byte layouts in `docs/format/index.md`):
//! * `meta`: format version and the next block sequence number.
//! * `series`: series id → canonical series key (the durable series registry).
//! * `series_stats`: series id → [`BlockSummary`] of its sealed blocks.
//! * `blocks`: `series_id BE ‖ block_start (sign-flipped) BE ‖ seq BE` → block bytes.
//! * `expiry`: `min_expiry BE ‖ block key` → empty; the retention work list.
//! * `services`: the metadata store (`services.rs`). Added without a format version
//!   bump: a data directory without it gets an empty one.
//!
//! fjall writes go to OS buffers; durability comes from [`Store::persist`], which
//! checkpointing calls before deleting WAL segments (the WAL still holds anything
//! fjall may lose in a crash before that).

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode, Readable};
use kairosdb_model::{SeriesKey, StorageError};

use crate::codec::{
    decode_series_key, encode_series_key, put_ivarint, put_uvarint, DecodeError, Reader,
};
use crate::wal::Lsn;

pub const FORMAT_VERSION: u8 = 1;
const META_FORMAT: &[u8] = b"format_version";
const META_NEXT_SEQ: &[u8] = b"next_block_seq";
pub const BLOCK_KEY_LEN: usize = 24;
pub const EXPIRY_KEY_LEN: usize = 32;

pub fn fjall_err(e: fjall::Error) -> StorageError {
    StorageError::Internal(format!("fjall: {e}"))
}

pub fn corrupt(what: &str, e: DecodeError) -> StorageError {
    StorageError::Corruption(format!("{what}: {e}"))
}

/// Maps a signed timestamp to an unsigned value with the same order, so big-endian
/// keys sort negative timestamps first.
#[inline]
pub fn flip(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

#[inline]
pub fn unflip(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Identity of a sealed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockId {
    pub sid: u64,
    pub start: i64,
    pub seq: u64,
}

impl BlockId {
    pub fn key(&self) -> [u8; BLOCK_KEY_LEN] {
        let mut k = [0u8; BLOCK_KEY_LEN];
        k[..8].copy_from_slice(&self.sid.to_be_bytes());
        k[8..16].copy_from_slice(&flip(self.start).to_be_bytes());
        k[16..].copy_from_slice(&self.seq.to_be_bytes());
        k
    }

    pub fn from_key(k: &[u8]) -> Option<BlockId> {
        if k.len() != BLOCK_KEY_LEN {
            return None;
        }
        Some(BlockId {
            sid: u64::from_be_bytes(k[..8].try_into().ok()?),
            start: unflip(u64::from_be_bytes(k[8..16].try_into().ok()?)),
            seq: u64::from_be_bytes(k[16..].try_into().ok()?),
        })
    }

    /// Key in the `expiry` keyspace: `min_expiry BE ‖ block key`.
    pub fn expiry_key(&self, min_exp: u64) -> [u8; EXPIRY_KEY_LEN] {
        let mut k = [0u8; EXPIRY_KEY_LEN];
        k[..8].copy_from_slice(&min_exp.to_be_bytes());
        k[8..].copy_from_slice(&self.key());
        k
    }

    pub fn from_expiry_key(k: &[u8]) -> Option<(u64, BlockId)> {
        if k.len() != EXPIRY_KEY_LEN {
            return None;
        }
        let exp = u64::from_be_bytes(k[..8].try_into().ok()?);
        Some((exp, BlockId::from_key(&k[8..])?))
    }
}

/// What the engine knows about one series' sealed blocks without reading them.
/// Persisted in `series_stats`, updated in the same fjall batch as the blocks.
///
/// `min_ts`/`max_ts`/`max_span` are bounds: they widen on seal but are only reset
/// (not narrowed) by deletes and retention, which is safe for planning reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockSummary {
    pub blocks: u32,
    pub points: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Largest `max_ts - min_ts` of any block: reads scan block keys from
    /// `range.start - max_span` so a block starting earlier is not missed.
    pub max_span: u64,
    /// The newest block (highest seq), the candidate for append-merging small seals;
    /// `last_seq == 0` means none.
    pub last_seq: u64,
    pub last_start: i64,
    pub last_count: u32,
    pub last_max_ts: i64,
    /// The value at `last_max_ts` (its 64 bits, see `Col::number_bits`; 0 for strings):
    /// a `last` edge read of a fully sealed series answers without decoding a block.
    pub last_value: u64,
    /// Every WAL record of this series at or before this position is in blocks.
    pub sealed_lsn: Lsn,
    /// No two blocks hold the same timestamp, so `points` counts distinct timestamps and
    /// the block holding `max_ts` holds the series' newest sealed point. Set by the first
    /// block; cleared for good (until the series has no blocks) by a seal whose points
    /// fall inside `min_ts..=max_ts` (late data). Rewrites only drop points, so they
    /// keep it. Edge reads (`first`/`last` pushdown) answer from the summary only then.
    pub disjoint: bool,
}

const SUMMARY_VERSION: u8 = 3;
/// Versions 1 and 2 were fixed-width little-endian; version 2 is 98 bytes.
const SUMMARY_V2_LEN: usize = 1 + 4 + 8 * 5 + 8 + 8 + 4 + 8 + 16 + 8 + 1;
/// Version 1 had neither `last_value` nor `disjoint`; read as unknown (`disjoint`
/// false, so nothing reads `last_value`).
const SUMMARY_V1_LEN: usize = SUMMARY_V2_LEN - 9;

impl BlockSummary {
    /// Version 3: varints, times as differences (about 40 bytes instead of version
    /// 2's 98; every seal writes one, see docs/format/index.md, `series_stats`).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48);
        b.push(SUMMARY_VERSION);
        put_uvarint(&mut b, u64::from(self.blocks));
        put_uvarint(&mut b, self.points);
        put_uvarint(&mut b, self.bytes);
        put_ivarint(&mut b, self.min_ts);
        put_ivarint(&mut b, self.max_ts.wrapping_sub(self.min_ts));
        put_uvarint(&mut b, self.max_span);
        put_uvarint(&mut b, self.last_seq);
        put_ivarint(&mut b, self.last_start.wrapping_sub(self.min_ts));
        put_uvarint(&mut b, u64::from(self.last_count));
        put_ivarint(&mut b, self.last_max_ts.wrapping_sub(self.last_start));
        put_uvarint(&mut b, self.sealed_lsn.segment);
        put_uvarint(&mut b, self.sealed_lsn.offset);
        put_uvarint(&mut b, self.last_value);
        b.push(u8::from(self.disjoint));
        b
    }

    pub fn decode(b: &[u8]) -> Result<BlockSummary, DecodeError> {
        let mut r = Reader::new(b);
        let v = r.u8("summary version")?;
        let s = match v {
            SUMMARY_VERSION => {
                let blocks = r.uvarint("blocks")?;
                let points = r.uvarint("points")?;
                let bytes = r.uvarint("bytes")?;
                let min_ts = r.ivarint("min_ts")?;
                let max_ts = min_ts.wrapping_add(r.ivarint("max_ts")?);
                let max_span = r.uvarint("max_span")?;
                let last_seq = r.uvarint("last_seq")?;
                let last_start = min_ts.wrapping_add(r.ivarint("last_start")?);
                let last_count = r.uvarint("last_count")?;
                let last_max_ts = last_start.wrapping_add(r.ivarint("last_max_ts")?);
                let narrow = |n: u64, what| {
                    u32::try_from(n).map_err(|_| DecodeError::Invalid { what, offset: 0 })
                };
                BlockSummary {
                    blocks: narrow(blocks, "blocks")?,
                    points,
                    bytes,
                    min_ts,
                    max_ts,
                    max_span,
                    last_seq,
                    last_start,
                    last_count: narrow(last_count, "last_count")?,
                    last_max_ts,
                    sealed_lsn: Lsn {
                        segment: r.uvarint("sealed segment")?,
                        offset: r.uvarint("sealed offset")?,
                    },
                    last_value: r.uvarint("last_value")?,
                    disjoint: r.u8("disjoint")? == 1,
                }
            }
            1 | 2 if b.len() == [SUMMARY_V1_LEN, SUMMARY_V2_LEN][usize::from(v) - 1] => {
                BlockSummary {
                    blocks: r.u32_le("blocks")?,
                    points: r.u64_le("points")?,
                    bytes: r.u64_le("bytes")?,
                    min_ts: r.i64_le("min_ts")?,
                    max_ts: r.i64_le("max_ts")?,
                    max_span: r.u64_le("max_span")?,
                    last_seq: r.u64_le("last_seq")?,
                    last_start: r.i64_le("last_start")?,
                    last_count: r.u32_le("last_count")?,
                    last_max_ts: r.i64_le("last_max_ts")?,
                    sealed_lsn: Lsn {
                        segment: r.u64_le("sealed segment")?,
                        offset: r.u64_le("sealed offset")?,
                    },
                    last_value: if v >= 2 { r.u64_le("last_value")? } else { 0 },
                    disjoint: v >= 2 && r.u8("disjoint")? == 1,
                }
            }
            _ => {
                return Err(DecodeError::Version {
                    what: "series summary",
                    version: v,
                })
            }
        };
        if !r.is_empty() {
            return Err(DecodeError::Invalid {
                what: "summary length",
                offset: r.pos(),
            });
        }
        Ok(s)
    }

    /// The fixed-width encoding of versions 1 and 2 (tests of the old formats).
    #[cfg(test)]
    fn encode_fixed(&self, version: u8) -> Vec<u8> {
        let mut b = vec![version];
        b.extend_from_slice(&self.blocks.to_le_bytes());
        b.extend_from_slice(&self.points.to_le_bytes());
        b.extend_from_slice(&self.bytes.to_le_bytes());
        b.extend_from_slice(&self.min_ts.to_le_bytes());
        b.extend_from_slice(&self.max_ts.to_le_bytes());
        b.extend_from_slice(&self.max_span.to_le_bytes());
        b.extend_from_slice(&self.last_seq.to_le_bytes());
        b.extend_from_slice(&self.last_start.to_le_bytes());
        b.extend_from_slice(&self.last_count.to_le_bytes());
        b.extend_from_slice(&self.last_max_ts.to_le_bytes());
        b.extend_from_slice(&self.sealed_lsn.segment.to_le_bytes());
        b.extend_from_slice(&self.sealed_lsn.offset.to_le_bytes());
        if version >= 2 {
            b.extend_from_slice(&self.last_value.to_le_bytes());
            b.push(u8::from(self.disjoint));
        }
        b
    }

    /// Accounts a new block. `newest`: it is the series' newest block (a seal, or the
    /// rewrite of the block that was newest), so it becomes the append-merge target.
    ///
    /// A rewritten *older* block must never become the target, even when the newest
    /// one was just removed (`last_seq == 0`): merging gives the merged points a new,
    /// higher seq, which would let that block's old values beat newer blocks holding
    /// the same timestamps. With no known newest block, the next seal starts one.
    pub fn add_block(
        &mut self,
        id: BlockId,
        count: u32,
        (max_ts, last_value): (i64, u64),
        bytes: u64,
        newest: bool,
    ) {
        if self.blocks == 0 {
            self.min_ts = id.start;
            self.max_ts = max_ts;
            self.disjoint = true;
        } else {
            self.min_ts = self.min_ts.min(id.start);
            self.max_ts = self.max_ts.max(max_ts);
        }
        self.blocks += 1;
        self.points += u64::from(count);
        self.bytes += bytes;
        self.max_span = self.max_span.max(max_ts.wrapping_sub(id.start) as u64);
        if newest {
            debug_assert!(id.seq >= self.last_seq, "BUG: newest block with an old seq");
            self.last_seq = id.seq;
            self.last_start = id.start;
            self.last_count = count;
            self.last_max_ts = max_ts;
            self.last_value = last_value;
        }
    }

    /// Would sealed points spanning `min_ts..=max_ts` share a timestamp range with the
    /// blocks? (Bounds, so conservative.) Called by a seal before it adds its blocks.
    pub fn overlaps(&self, min_ts: i64, max_ts: i64) -> bool {
        self.blocks > 0 && min_ts <= self.max_ts && max_ts >= self.min_ts
    }

    /// Accounts a removed block.
    pub fn remove_block(&mut self, id: BlockId, count: u32, bytes: u64) {
        self.blocks = self.blocks.saturating_sub(1);
        self.points = self.points.saturating_sub(u64::from(count));
        self.bytes = self.bytes.saturating_sub(bytes);
        if id.seq == self.last_seq {
            self.last_seq = 0;
        }
        if self.blocks == 0 {
            let lsn = self.sealed_lsn;
            *self = BlockSummary {
                sealed_lsn: lsn,
                ..BlockSummary::default()
            };
        }
    }
}

/// The fjall database and its keyspaces.
pub struct Store {
    pub db: Database,
    pub meta: Keyspace,
    pub series: Keyspace,
    pub stats: Keyspace,
    pub blocks: Keyspace,
    pub expiry: Keyspace,
    /// Metadata (`services.rs`).
    pub services: Keyspace,
}

impl Store {
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StorageError> {
        // Two fjall workers at most: this machine class has ~1 effective core and
        // ingest must keep the CPU.
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 2);
        let db = Database::builder(path)
            .cache_size(cache_bytes)
            .worker_threads(workers)
            .open()
            .map_err(fjall_err)?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(fjall_err)
        };
        let store = Store {
            meta: ks("meta")?,
            series: ks("series")?,
            stats: ks("series_stats")?,
            blocks: ks("blocks")?,
            expiry: ks("expiry")?,
            services: ks("services")?,
            db,
        };
        match store.meta.get(META_FORMAT).map_err(fjall_err)? {
            None => store
                .meta
                .insert(META_FORMAT, [FORMAT_VERSION])
                .map_err(fjall_err)?,
            Some(v) if v.as_ref() == [FORMAT_VERSION] => {}
            Some(v) => {
                return Err(StorageError::Corruption(format!(
                "data directory has storage format {:?}; this build reads format {FORMAT_VERSION}",
                v.as_ref()
            )))
            }
        }
        Ok(store)
    }

    pub fn batch(&self) -> OwnedWriteBatch {
        self.db.batch()
    }

    /// fsyncs fjall's journal: everything written so far survives a crash.
    pub fn persist(&self) -> Result<(), StorageError> {
        self.db.persist(PersistMode::SyncAll).map_err(fjall_err)
    }

    pub fn next_block_seq(&self) -> Result<u64, StorageError> {
        Ok(match self.meta.get(META_NEXT_SEQ).map_err(fjall_err)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StorageError::Corruption("meta next_block_seq is not 8 bytes".into())
            })?),
            None => 1,
        })
    }

    pub fn put_next_block_seq(&self, b: &mut OwnedWriteBatch, next: u64) {
        b.insert(&self.meta, META_NEXT_SEQ, next.to_be_bytes());
    }

    pub fn put_series(&self, id: u64, key: &SeriesKey) -> Result<(), StorageError> {
        let mut v = Vec::with_capacity(64);
        encode_series_key(&mut v, key);
        self.series.insert(id.to_be_bytes(), v).map_err(fjall_err)
    }

    pub fn put_summary(&self, b: &mut OwnedWriteBatch, sid: u64, s: &BlockSummary) {
        b.insert(&self.stats, sid.to_be_bytes(), s.encode());
    }

    /// All series definitions, in id order.
    pub fn load_series(&self) -> Result<Vec<(u64, SeriesKey)>, StorageError> {
        let mut out = Vec::new();
        for kv in self.series.iter() {
            let (k, v) = kv.into_inner().map_err(fjall_err)?;
            let id = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
                StorageError::Corruption("series keyspace key is not 8 bytes".into())
            })?);
            let mut r = Reader::new(&v);
            let key = decode_series_key(&mut r).map_err(|e| corrupt(&format!("series {id}"), e))?;
            out.push((id, key));
        }
        Ok(out)
    }

    pub fn load_summaries(&self) -> Result<Vec<(u64, BlockSummary)>, StorageError> {
        let mut out = Vec::new();
        for kv in self.stats.iter() {
            let (k, v) = kv.into_inner().map_err(fjall_err)?;
            let id =
                u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
                    StorageError::Corruption("series_stats key is not 8 bytes".into())
                })?);
            let s = BlockSummary::decode(&v)
                .map_err(|e| corrupt(&format!("summary of series {id}"), e))?;
            out.push((id, s));
        }
        Ok(out)
    }

    /// Blocks of `sid` whose start lies in `[from, to]`, in key order, as of one
    /// snapshot: a batch committed meanwhile is seen whole or not at all (a plain
    /// range read sees each of its keys as it lands, so a read racing a compaction
    /// could miss both a removed block and the one replacing it).
    pub fn blocks_between(
        &self,
        sid: u64,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Result<(BlockId, fjall::Slice), StorageError>> + '_ {
        let lo = BlockId {
            sid,
            start: from,
            seq: 0,
        }
        .key();
        let hi = BlockId {
            sid,
            start: to,
            seq: u64::MAX,
        }
        .key();
        self.db.snapshot().range(&self.blocks, lo..=hi).map(|kv| {
            let (k, v) = kv.into_inner().map_err(fjall_err)?;
            let id = BlockId::from_key(&k)
                .ok_or_else(|| StorageError::Corruption("block key is not 24 bytes".into()))?;
            Ok((id, v))
        })
    }

    /// Expiry work list entries with `min_expiry <= now`.
    pub fn expired_entries(&self, now_secs: u64) -> Result<Vec<(u64, BlockId)>, StorageError> {
        let mut out = Vec::new();
        let hi = (now_secs.saturating_add(1)).to_be_bytes();
        for kv in self.expiry.range(..hi.as_slice()) {
            let k = kv.key().map_err(fjall_err)?;
            let e = BlockId::from_expiry_key(&k)
                .ok_or_else(|| StorageError::Corruption("expiry key is not 32 bytes".into()))?;
            out.push(e);
        }
        Ok(out)
    }

    /// Does any block hold a point expired at `now_secs` (an expiry work-list entry at or
    /// before it; stale entries make this conservative)?
    pub fn any_expired(&self, now_secs: u64) -> Result<bool, StorageError> {
        let hi = (now_secs.saturating_add(1)).to_be_bytes();
        match self.expiry.range(..hi.as_slice()).next() {
            None => Ok(false),
            Some(kv) => kv.key().map(|_| true).map_err(fjall_err),
        }
    }

    /// On-disk size of the fjall database (tables and journals).
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keys_sort_by_series_then_time_then_seq() {
        let ids = [
            BlockId {
                sid: 1,
                start: i64::MIN,
                seq: 9,
            },
            BlockId {
                sid: 1,
                start: -1,
                seq: 1,
            },
            BlockId {
                sid: 1,
                start: 0,
                seq: 5,
            },
            BlockId {
                sid: 1,
                start: 0,
                seq: 6,
            },
            BlockId {
                sid: 1,
                start: i64::MAX,
                seq: 0,
            },
            BlockId {
                sid: 2,
                start: i64::MIN,
                seq: 0,
            },
        ];
        for w in ids.windows(2) {
            assert!(w[0].key() < w[1].key());
        }
        for id in ids {
            assert_eq!(BlockId::from_key(&id.key()), Some(id));
            assert_eq!(BlockId::from_expiry_key(&id.expiry_key(77)), Some((77, id)));
        }
        assert_eq!(
            BlockId {
                sid: 1,
                start: 0,
                seq: 2
            }
            .key(),
            [0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
    }

    #[test]
    fn summary_round_trips_and_tracks_last_block() {
        let mut s = BlockSummary::default();
        s.add_block(
            BlockId {
                sid: 1,
                start: 100,
                seq: 3,
            },
            10,
            (200, 7),
            50,
            true,
        );
        s.add_block(
            BlockId {
                sid: 1,
                start: 0,
                seq: 4,
            },
            5,
            (50, 8),
            20,
            true,
        );
        assert_eq!(
            (s.blocks, s.points, s.min_ts, s.max_ts, s.max_span),
            (2, 15, 0, 200, 100)
        );
        assert_eq!(
            (s.last_seq, s.last_start, s.last_count, s.last_value),
            (4, 0, 5, 8)
        );
        s.sealed_lsn = Lsn {
            segment: 3,
            offset: 99,
        };
        assert_eq!(BlockSummary::decode(&s.encode()), Ok(s));
        s.remove_block(
            BlockId {
                sid: 1,
                start: 0,
                seq: 4,
            },
            5,
            20,
        );
        assert_eq!(s.last_seq, 0);
        s.remove_block(
            BlockId {
                sid: 1,
                start: 100,
                seq: 3,
            },
            10,
            50,
        );
        assert_eq!(s.blocks, 0);
        assert_eq!(
            s.sealed_lsn,
            Lsn {
                segment: 3,
                offset: 99
            }
        );
        assert!(BlockSummary::decode(&[2]).is_err());
        assert!(BlockSummary::decode(&[9]).is_err());
    }

    #[test]
    fn summary_disjoint_flag_is_persisted_and_version_1_reads_as_unknown() {
        let mut s = BlockSummary::default();
        let id = |start, seq| BlockId { sid: 1, start, seq };
        s.add_block(id(100, 1), 10, (200, 3), 50, true);
        assert!(s.disjoint, "the first block");
        assert!(!s.overlaps(201, 300) && !s.overlaps(0, 99));
        assert!(s.overlaps(150, 160) && s.overlaps(0, 100) && s.overlaps(200, 250));
        assert_eq!(BlockSummary::decode(&s.encode()), Ok(s));
        let v2 = s.encode_fixed(2);
        assert_eq!(v2.len(), 98);
        assert_eq!(BlockSummary::decode(&v2), Ok(s), "version 2 still reads");
        let v1 = s.encode_fixed(1);
        let old = BlockSummary::decode(&v1).expect("version 1 still reads");
        assert_eq!(
            old,
            BlockSummary {
                disjoint: false,
                last_value: 0,
                ..s
            }
        );
        // Version 2 without its new fields, or version 1 with them, is corrupt.
        let mut short = v1.clone();
        short[0] = 2;
        assert!(BlockSummary::decode(&short).is_err());
        let mut long = v2.clone();
        long[0] = 1;
        assert!(BlockSummary::decode(&long).is_err());
        // Emptied: the flag resets with everything else, and the next block sets it.
        s.disjoint = false;
        s.remove_block(id(100, 1), 10, 50);
        assert!(!s.disjoint);
        s.add_block(id(5, 2), 1, (5, 4), 9, true);
        assert!(s.disjoint);
    }

    #[test]
    fn summary_version_3_is_compact_and_round_trips_extremes() {
        let mut s = BlockSummary::default();
        assert_eq!(BlockSummary::decode(&s.encode()), Ok(s), "empty");
        // A typical series: a day of 10 s points in a few blocks, deep in the WAL.
        let t0 = 1_451_606_400_000;
        s.add_block(
            BlockId {
                sid: 7,
                start: t0,
                seq: 4_100,
            },
            1792,
            (t0 + 17_910_000, 48),
            700,
            true,
        );
        s.sealed_lsn = Lsn {
            segment: 3,
            offset: 40 << 20,
        };
        let b = s.encode();
        assert!(b.len() <= 40, "{} bytes", b.len());
        assert_eq!(BlockSummary::decode(&b), Ok(s));
        let extreme = BlockSummary {
            blocks: u32::MAX,
            points: u64::MAX,
            bytes: u64::MAX,
            min_ts: i64::MIN,
            max_ts: i64::MAX,
            max_span: u64::MAX,
            last_seq: u64::MAX,
            last_start: i64::MAX,
            last_count: u32::MAX,
            last_max_ts: i64::MIN,
            sealed_lsn: Lsn {
                segment: u64::MAX,
                offset: u64::MAX,
            },
            last_value: f64::NAN.to_bits(),
            disjoint: true,
        };
        assert_eq!(BlockSummary::decode(&extreme.encode()), Ok(extreme));
        let full = extreme.encode();
        for cut in 1..full.len() {
            assert!(BlockSummary::decode(&full[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = full.clone();
        long.push(0);
        assert!(BlockSummary::decode(&long).is_err());
    }
}

//! The write-ahead log: segment files in `data_dir/wal/`, record framing, the three
//! record payloads (series definitions, point batches, deletes), appending with
//! rotation, group-commit fsync, and replay with torn-tail truncation.
//!
//! Not here: what a replayed record does to the head or blocks (`engine/open.rs`), and
//! when segments may be deleted (checkpointing in `engine/maintain.rs`). Byte layouts
//! are drawn in `docs/format/wal.md`.
//!
//! Corruption policy on replay:
//! * Last segment: a bad frame (short header, zero or oversized length, CRC
//!   mismatch) is a torn tail. The file is truncated at the last good record,
//!   counted (`wal_truncated_bytes`) and logged. Everything after the first bad
//!   frame of the last segment is dropped, as in Prometheus' WAL repair.
//! * Any earlier segment: a bad frame cannot come from a crash while appending
//!   (segments are fsynced when rotated under `WalSync::Always`/`Interval`), so it
//!   is real corruption: `Engine::open` fails with `StorageError::Corruption`
//!   naming the file, offset and reason. Setting `EngineConfig::wal_skip_corrupt`
//!   instead skips the rest of that segment with an error-level log and a counter
//!   (for `WalSync::None` after a power loss, where the OS may have lost an older
//!   segment's tail).
//! * A frame with a valid CRC whose payload does not decode is always an error.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kairosdb_model::{DataType, Points, SeriesKey, StorageError, TimeRange};

use crate::codec::{
    decode_series_key, encode_series_key, put_ivarint, put_uvarint, DecodeError, Reader,
};
use crate::column::Col;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"KRSDBWAL";
/// Segment format version (byte 8 of the header).
pub const SEGMENT_VERSION: u8 = 1;
/// magic(8) | version u8 | reserved [u8; 7] | segment number u64 LE.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// len u32 LE | crc32 u32 LE, before every payload.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest payload we write or accept; a bigger batch is rejected as input.
pub const MAX_RECORD_LEN: usize = 512 << 20;

pub const REC_SERIES_DEFS: u8 = 1;
pub const REC_POINTS: u8 = 2;
pub const REC_DELETE: u8 = 3;

/// Expiry value meaning "never expires" in memory and in blocks.
pub const NEVER: u64 = u64::MAX;

/// Position of a record: segment number and byte offset of its frame in that segment.
/// Ordered like the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn {
    pub segment: u64,
    pub offset: u64,
}

pub fn segment_file_name(no: u64) -> String {
    format!("{no:020}.wal")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment numbers present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(no) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push(no);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The 24-byte header of segment `no`.
pub fn segment_header(no: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8] = SEGMENT_VERSION;
    h[16..24].copy_from_slice(&no.to_le_bytes());
    h
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------
// Record encoding
// ---------------------------------------------------------------------------

/// Starts a frame in `buf`: reserves the 8-byte frame header and writes the type.
pub fn begin_record(buf: &mut Vec<u8>, rec_type: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    buf.push(rec_type);
    start
}

/// Fills in length and CRC of the frame begun at `start`. Returns the payload length.
pub fn finish_record(buf: &mut [u8], start: usize) -> usize {
    let payload_len = buf.len() - start - FRAME_HEADER_LEN;
    let crc = crc32fast::hash(&buf[start + FRAME_HEADER_LEN..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    payload_len
}

/// Encodes one series-definitions frame.
pub fn encode_series_defs<'a>(
    buf: &mut Vec<u8>,
    defs: impl ExactSizeIterator<Item = (u64, &'a SeriesKey)>,
) {
    let start = begin_record(buf, REC_SERIES_DEFS);
    put_uvarint(buf, defs.len() as u64);
    for (id, key) in defs {
        put_uvarint(buf, id);
        encode_series_key(buf, key);
    }
    finish_record(buf, start);
}

/// Appends one series chunk of a points record (see [`begin_record`] with
/// [`REC_POINTS`]; the caller writes the series count first).
pub fn encode_points_chunk(buf: &mut Vec<u8>, sid: u64, expiry: u64, points: &Points) {
    let ts = points.timestamps();
    encode_chunk_head(buf, sid, points.data_type(), expiry, ts);
    match points {
        Points::Long { values, .. } => encode_longs(buf, values),
        Points::Double { values, .. } => encode_doubles(buf, values),
        Points::String { values, .. } => encode_strings(buf, values.iter().map(String::as_str)),
    }
}

/// [`encode_points_chunk`] for points held in a column (the head's re-logged window).
pub fn encode_col_chunk(buf: &mut Vec<u8>, sid: u64, expiry: u64, ts: &[i64], vals: &Col) {
    debug_assert_eq!(ts.len(), vals.len());
    encode_chunk_head(buf, sid, vals.data_type(), expiry, ts);
    match vals {
        Col::Long(v) => encode_longs(buf, v),
        Col::Double(v) => encode_doubles(buf, v),
        Col::Str(s) => encode_strings(buf, (0..s.len()).map(|i| s.get(i))),
    }
}

fn encode_chunk_head(buf: &mut Vec<u8>, sid: u64, dt: DataType, expiry: u64, ts: &[i64]) {
    put_uvarint(buf, sid);
    buf.push(dt.code());
    put_uvarint(buf, if expiry == NEVER { 0 } else { expiry });
    put_uvarint(buf, ts.len() as u64);
    // Worst case 10 bytes per timestamp plus the values; reserve once.
    buf.reserve(ts.len() * 19);
    let mut prev = 0i64;
    for &t in ts {
        put_ivarint(buf, t.wrapping_sub(prev));
        prev = t;
    }
}

fn encode_longs(buf: &mut Vec<u8>, values: &[i64]) {
    let mut prev = 0i64;
    for &v in values {
        put_ivarint(buf, v.wrapping_sub(prev));
        prev = v;
    }
}

fn encode_doubles(buf: &mut Vec<u8>, values: &[f64]) {
    for &v in values {
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn encode_strings<'a>(buf: &mut Vec<u8>, values: impl Iterator<Item = &'a str>) {
    for v in values {
        put_uvarint(buf, v.len() as u64);
        buf.extend_from_slice(v.as_bytes());
    }
}

/// Encodes one delete frame.
pub fn encode_delete(buf: &mut Vec<u8>, watermark: u64, range: TimeRange, sids: &[u64]) {
    let start = begin_record(buf, REC_DELETE);
    put_uvarint(buf, watermark);
    buf.extend_from_slice(&range.start.to_le_bytes());
    buf.extend_from_slice(&range.end.to_le_bytes());
    put_uvarint(buf, sids.len() as u64);
    for &s in sids {
        put_uvarint(buf, s);
    }
    finish_record(buf, start);
}

// ---------------------------------------------------------------------------
// Record decoding
// ---------------------------------------------------------------------------

/// A decoded record payload. Points are decoded lazily chunk by chunk into
/// caller-owned buffers so replay allocates nothing per point.
pub enum Record<'a> {
    SeriesDefs(Vec<(u64, SeriesKey)>),
    Points(PointsReader<'a>),
    Delete {
        watermark: u64,
        range: TimeRange,
        sids: Vec<u64>,
    },
}

pub fn decode_record(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut r = Reader::new(payload);
    match r.u8("record type")? {
        REC_SERIES_DEFS => {
            let n = r.len(r.remaining(), "definition count")?;
            let mut defs = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.uvarint("series id")?;
                defs.push((id, decode_series_key(&mut r)?));
            }
            expect_end(&r)?;
            Ok(Record::SeriesDefs(defs))
        }
        REC_POINTS => {
            let n = r.len(r.remaining(), "series count")?;
            Ok(Record::Points(PointsReader { r, left: n }))
        }
        REC_DELETE => {
            let watermark = r.uvarint("delete watermark")?;
            let start = r.i64_le("delete start")?;
            let end = r.i64_le("delete end")?;
            let n = r.len(r.remaining(), "delete series count")?;
            let mut sids = Vec::with_capacity(n);
            for _ in 0..n {
                sids.push(r.uvarint("series id")?);
            }
            expect_end(&r)?;
            Ok(Record::Delete {
                watermark,
                range: TimeRange::new(start, end),
                sids,
            })
        }
        _ => Err(DecodeError::Invalid {
            what: "record type",
            offset: 0,
        }),
    }
}

fn expect_end(r: &Reader<'_>) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what: "trailing bytes",
            offset: r.pos(),
        })
    }
}

/// Header of one series chunk in a points record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub sid: u64,
    pub data_type: DataType,
    /// Expiry in unix seconds; [`NEVER`] when the points never expire.
    pub expiry: u64,
}

pub struct PointsReader<'a> {
    r: Reader<'a>,
    left: usize,
}

impl PointsReader<'_> {
    /// Decodes the next chunk, appending to `ts` and `vals` (which are cleared
    /// first; `vals` is re-typed if needed). `None` after the last chunk.
    pub fn next_chunk(
        &mut self,
        ts: &mut Vec<i64>,
        vals: &mut Col,
    ) -> Option<Result<ChunkHeader, DecodeError>> {
        if self.left == 0 {
            return if self.r.is_empty() {
                None
            } else {
                Some(Err(DecodeError::Invalid {
                    what: "trailing bytes",
                    offset: self.r.pos(),
                }))
            };
        }
        self.left -= 1;
        Some(self.chunk(ts, vals))
    }

    fn chunk(&mut self, ts: &mut Vec<i64>, vals: &mut Col) -> Result<ChunkHeader, DecodeError> {
        let r = &mut self.r;
        let sid = r.uvarint("series id")?;
        let at = r.pos();
        let dt = DataType::from_code(r.u8("data type")?).ok_or(DecodeError::Invalid {
            what: "data type",
            offset: at,
        })?;
        let expiry = match r.uvarint("expiry")? {
            0 => NEVER,
            e => e,
        };
        // Every point takes at least one byte per column, which bounds `n`.
        let n = r.len(r.remaining() / 2, "point count")?;
        ts.clear();
        ts.reserve(n);
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(r.ivarint("timestamp")?);
            ts.push(prev);
        }
        if vals.data_type() != dt {
            *vals = Col::new(dt);
        }
        vals.clear();
        match vals {
            Col::Long(v) => {
                v.reserve(n);
                let mut prev = 0i64;
                for _ in 0..n {
                    prev = prev.wrapping_add(r.ivarint("long value")?);
                    v.push(prev);
                }
            }
            Col::Double(v) => {
                let bytes = r.take(n * 8, "double values")?;
                v.extend(
                    bytes
                        .chunks_exact(8)
                        .map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().expect("8")))),
                );
            }
            Col::Str(s) => {
                s.ends.reserve(n);
                for _ in 0..n {
                    let v = r.str("string value")?;
                    s.push(v);
                }
            }
        }
        Ok(ChunkHeader {
            sid,
            data_type: dt,
            expiry,
        })
    }
}

/// Decodes a string column fully (helper for tests).
#[cfg(test)]
fn strcol_values(s: &crate::column::StrCol) -> Vec<String> {
    (0..s.len()).map(|i| s.get(i).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// The appending side of the WAL. Owned by the engine behind one mutex; the head
/// is updated under the same mutex so replay order equals memory order.
pub struct WalWriter {
    dir: PathBuf,
    segment_bytes: u64,
    /// fsync rotated segments and the directory (`WalSync::Always`/`Interval`).
    durable: bool,
    file: Arc<File>,
    seg_no: u64,
    seg_len: u64,
    /// Older segments still on disk: (number, length), ascending.
    closed: Vec<(u64, u64)>,
    /// Rotated segments not yet fsynced: (number, file). In `WalSync::None`
    /// mode only an explicit `sync()` drains it; checkpoints drop removed ones.
    unsynced: Vec<(u64, Arc<File>)>,
    /// Total bytes appended since open; the group-commit position.
    written: u64,
    #[cfg(test)]
    pub fail_next: bool,
}

/// What a sync needs, taken under the WAL lock and used outside it.
pub struct SyncSnapshot {
    pub files: Vec<Arc<File>>,
    pub written: u64,
}

impl WalWriter {
    /// Creates segment `no` (the replayed segments `closed` stay on disk).
    pub fn create(
        dir: &Path,
        no: u64,
        closed: Vec<(u64, u64)>,
        segment_bytes: u64,
        durable: bool,
    ) -> io::Result<WalWriter> {
        let file = create_segment(dir, no, durable)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            segment_bytes,
            durable,
            file: Arc::new(file),
            seg_no: no,
            seg_len: SEGMENT_HEADER_LEN as u64,
            closed,
            unsynced: Vec::new(),
            written: 0,
            #[cfg(test)]
            fail_next: false,
        })
    }

    /// Appends complete frames with one `write` each; rotates first when the
    /// current segment would pass its target size. Returns the position of the
    /// first frame. On error the caller must poison the engine: a frame may be
    /// half-written.
    pub fn append(&mut self, frames: &[&[u8]]) -> io::Result<Lsn> {
        let total: u64 = frames.iter().map(|f| f.len() as u64).sum();
        if self.seg_len > SEGMENT_HEADER_LEN as u64 && self.seg_len + total > self.segment_bytes {
            self.rotate()?;
        }
        #[cfg(test)]
        if self.fail_next {
            return Err(io::Error::other("injected WAL write failure"));
        }
        let lsn = Lsn {
            segment: self.seg_no,
            offset: self.seg_len,
        };
        for f in frames {
            (&*self.file).write_all(f)?;
        }
        self.seg_len += total;
        self.written += total;
        Ok(lsn)
    }

    /// Starts a new segment. The old one is queued for the next fsync.
    pub fn rotate(&mut self) -> io::Result<()> {
        let no = self.seg_no + 1;
        let file = Arc::new(create_segment(&self.dir, no, self.durable)?);
        let old = std::mem::replace(&mut self.file, file);
        self.unsynced.push((self.seg_no, old));
        self.closed.push((self.seg_no, self.seg_len));
        self.seg_no = no;
        self.seg_len = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    pub fn current_segment(&self) -> u64 {
        self.seg_no
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Closed segments (number, length), ascending; the current one is excluded.
    pub fn closed_segments(&self) -> &[(u64, u64)] {
        &self.closed
    }

    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }

    pub fn total_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.1).sum::<u64>() + self.seg_len
    }

    pub fn current_len(&self) -> u64 {
        self.seg_len
    }

    /// Files to fsync to make everything written so far durable.
    pub fn sync_snapshot(&mut self) -> SyncSnapshot {
        let mut files: Vec<Arc<File>> = std::mem::take(&mut self.unsynced)
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        files.push(self.file.clone());
        SyncSnapshot {
            files,
            written: self.written,
        }
    }

    /// Deletes closed segments numbered below `no`. Returns bytes removed.
    pub fn remove_below(&mut self, no: u64) -> io::Result<u64> {
        let mut removed = 0;
        while let Some(&(s, len)) = self.closed.first() {
            if s >= no {
                break;
            }
            let path = self.dir.join(segment_file_name(s));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.closed.remove(0);
            removed += len;
        }
        // A deleted segment needs no fsync (and must not keep its fd open).
        self.unsynced.retain(|(s, _)| *s >= no);
        if removed > 0 && self.durable {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

fn create_segment(dir: &Path, no: u64, durable: bool) -> io::Result<File> {
    let path = dir.join(segment_file_name(no));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    file.write_all(&segment_header(no))?;
    if durable {
        file.sync_data()?;
        sync_dir(dir)?;
    }
    Ok(file)
}

// ---------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Segments left on disk after replay: (number, length), ascending.
    pub segments: Vec<(u64, u64)>,
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut from the torn tail of the last segment.
    pub truncated_bytes: u64,
    /// Bytes skipped in earlier segments (only with `skip_corrupt`).
    pub skipped_bytes: u64,
}

/// Why a frame is bad (for the log and the corruption error).
fn check_frame(data: &[u8], pos: usize) -> Result<(usize, u32), &'static str> {
    let rest = &data[pos..];
    if rest.len() < FRAME_HEADER_LEN {
        return Err("incomplete frame header");
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4"));
    if len == 0 {
        return Err("zero record length");
    }
    if len > MAX_RECORD_LEN || len > rest.len() - FRAME_HEADER_LEN {
        return Err("record length past end of segment");
    }
    Ok((len, crc))
}

/// What [`scan_segment`] found in the bytes of one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Magic, version and segment number are right; nothing else is read when not.
    pub header_ok: bool,
    /// End of the last good frame (the end of the segment header when there is none).
    pub good_end: usize,
    /// Why the bytes from `good_end` on are not a frame; `None` when the data ends there.
    pub bad: Option<&'static str>,
    /// Good frames handed to the callback.
    pub records: u64,
}

/// Walks the frames of one segment's bytes (segment number `no`), calling `f` with
/// each good record's position and payload, and stops at the first bad frame. Pure:
/// [`replay`] decides what a bad header or frame means for the file. Never panics,
/// whatever `data` holds (fuzzed by `fuzz/fuzz_targets/wal_replay.rs`).
pub fn scan_segment(
    data: &[u8],
    no: u64,
    mut f: impl FnMut(Lsn, &[u8]) -> Result<(), StorageError>,
) -> Result<SegmentScan, StorageError> {
    let header_ok = data.len() >= SEGMENT_HEADER_LEN
        && data[..8] == SEGMENT_MAGIC
        && data[8] == SEGMENT_VERSION
        && data[16..24] == no.to_le_bytes();
    let mut scan = SegmentScan {
        header_ok,
        good_end: SEGMENT_HEADER_LEN.min(data.len()),
        bad: None,
        records: 0,
    };
    if !header_ok {
        return Ok(scan);
    }
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        let (len, crc) = match check_frame(data, pos) {
            Ok(v) => v,
            Err(why) => {
                scan.bad = Some(why);
                break;
            }
        };
        let payload = &data[pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + len];
        if crc32fast::hash(payload) != crc {
            scan.bad = Some("CRC mismatch");
            break;
        }
        f(
            Lsn {
                segment: no,
                offset: pos as u64,
            },
            payload,
        )?;
        scan.records += 1;
        pos += FRAME_HEADER_LEN + len;
        scan.good_end = pos;
    }
    Ok(scan)
}

/// Replays every segment in `dir` in order, calling `f` with each record's
/// position and payload. Truncates a torn tail of the last segment; see the module
/// docs for corruption elsewhere.
pub fn replay(
    dir: &Path,
    skip_corrupt: bool,
    mut f: impl FnMut(Lsn, &[u8]) -> Result<(), StorageError>,
) -> Result<ReplayReport, StorageError> {
    let io_err = |e: io::Error, what: &str| StorageError::Internal(format!("{what}: {e}"));
    let segs = list_segments(dir).map_err(|e| io_err(e, "listing WAL segments"))?;
    let mut report = ReplayReport::default();
    for (i, &no) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let path = dir.join(segment_file_name(no));
        let data =
            std::fs::read(&path).map_err(|e| io_err(e, &format!("reading {}", path.display())))?;
        let scan = scan_segment(&data, no, &mut f)?;
        if !scan.header_ok {
            if last && data.len() <= SEGMENT_HEADER_LEN {
                // Crash while creating the segment: nothing was ever acknowledged in it.
                tracing::warn!(path = %path.display(), len = data.len(), "removing WAL segment with a torn header");
                report.truncated_bytes += data.len() as u64;
                std::fs::remove_file(&path).map_err(|e| io_err(e, "removing torn segment"))?;
                continue;
            }
            let msg = format!(
                "WAL segment {} has a bad header (magic/version/number)",
                path.display()
            );
            if skip_corrupt {
                tracing::error!("{msg}; skipping the whole segment (wal_skip_corrupt)");
                report.skipped_bytes += data.len() as u64;
                report.segments.push((no, data.len() as u64));
                continue;
            }
            return Err(StorageError::Corruption(msg));
        }
        let pos = scan.good_end;
        report.records += scan.records;
        report.bytes += (pos - SEGMENT_HEADER_LEN) as u64;
        let mut kept = data.len() as u64;
        if let Some(why) = scan.bad {
            let cut = (data.len() - pos) as u64;
            if last {
                tracing::warn!(
                    path = %path.display(), offset = pos, bytes = cut, reason = why,
                    "truncating torn tail of the last WAL segment"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err(e, "opening segment for truncation"))?;
                file.set_len(pos as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_err(e, "truncating torn WAL tail"))?;
                report.truncated_bytes += cut;
                kept = pos as u64;
            } else if skip_corrupt {
                tracing::error!(
                    path = %path.display(), offset = pos, bytes = cut, reason = why,
                    "CORRUPT WAL segment: skipping the rest of it (wal_skip_corrupt); acknowledged points may be lost"
                );
                report.skipped_bytes += cut;
            } else {
                return Err(StorageError::Corruption(format!(
                    "WAL segment {} is corrupt at byte {pos} ({why}) and is not the last segment; \
                     set wal_skip_corrupt to skip the rest of it",
                    path.display()
                )));
            }
        }
        report.segments.push((no, kept));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut b = Vec::new();
                let s = begin_record(&mut b, REC_POINTS);
                put_uvarint(&mut b, 1);
                encode_points_chunk(
                    &mut b,
                    i as u64 + 1,
                    NEVER,
                    &Points::Long {
                        ts: vec![i as i64, i as i64 + 1],
                        values: vec![7, -7],
                    },
                );
                finish_record(&mut b, s);
                b
            })
            .collect()
    }

    fn write_segment(dir: &Path, frames: &[Vec<u8>]) -> (u64, Vec<u64>) {
        let mut w = WalWriter::create(dir, 1, Vec::new(), 64 << 20, false).unwrap();
        let mut ends = Vec::new();
        for f in frames {
            w.append(&[f]).unwrap();
            ends.push(w.current_len());
        }
        (w.current_segment(), ends)
    }

    fn collect(dir: &Path, skip: bool) -> Result<(Vec<Lsn>, ReplayReport), StorageError> {
        let mut seen = Vec::new();
        let rep = replay(dir, skip, |lsn, p| {
            assert!(matches!(decode_record(p), Ok(Record::Points(_))));
            seen.push(lsn);
            Ok(())
        })?;
        Ok((seen, rep))
    }

    #[test]
    fn frame_bytes_are_pinned() {
        let mut b = Vec::new();
        encode_delete(&mut b, 5, TimeRange::new(1, 2), &[9]);
        let payload: Vec<u8> = vec![3, 5, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert_eq!(&b[8..], &payload[..]);
        assert_eq!(&b[..4], &(payload.len() as u32).to_le_bytes());
        assert_eq!(&b[4..8], &crc32fast::hash(&payload).to_le_bytes());
        assert_eq!(
            &segment_header(7)[..],
            &[
                b'K', b'R', b'S', b'D', b'B', b'W', b'A', b'L', 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,
                0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn torn_tail_truncated_at_every_offset_of_last_record() {
        let frames = payloads(3);
        let dir = tempfile::tempdir().unwrap();
        let (no, ends) = write_segment(dir.path(), &frames);
        let path = dir.path().join(segment_file_name(no));
        let full = std::fs::read(&path).unwrap();
        let good = ends[1] as usize;
        for cut in good..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (seen, rep) = collect(dir.path(), false).unwrap();
            assert_eq!(seen.len(), 2, "cut at {cut}");
            assert_eq!(rep.truncated_bytes, (cut - good) as u64);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
        }
        // Whole file again: all three records, nothing cut.
        std::fs::write(&path, &full).unwrap();
        let (seen, rep) = collect(dir.path(), false).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(rep.truncated_bytes, 0);
    }

    #[test]
    fn crc_mismatch_and_garbage_tail_are_truncated() {
        let frames = payloads(3);
        let dir = tempfile::tempdir().unwrap();
        let (no, ends) = write_segment(dir.path(), &frames);
        let path = dir.path().join(segment_file_name(no));
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0x40; // flip a payload bit of record 3
        std::fs::write(&path, &data).unwrap();
        let (seen, rep) = collect(dir.path(), false).unwrap();
        assert_eq!(seen.len(), 2);
        assert!(rep.truncated_bytes > 0);
        // Garbage and zero fill after good records.
        let mut data = std::fs::read(&path).unwrap();
        data.extend_from_slice(&[0u8; 100]);
        data.extend_from_slice(&[0xAB; 37]);
        std::fs::write(&path, &data).unwrap();
        let (seen, _) = collect(dir.path(), false).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[1]);
    }

    #[test]
    fn corruption_in_older_segment_is_an_error_unless_skipped() {
        let frames = payloads(4);
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1, Vec::new(), 64 << 20, false).unwrap();
        w.append(&[&frames[0]]).unwrap();
        w.append(&[&frames[1]]).unwrap();
        w.rotate().unwrap();
        w.append(&[&frames[2]]).unwrap();
        w.append(&[&frames[3]]).unwrap();
        drop(w);
        let p1 = dir.path().join(segment_file_name(1));
        let mut d = std::fs::read(&p1).unwrap();
        let n = d.len();
        d[n - 3] ^= 1;
        std::fs::write(&p1, &d).unwrap();
        let err = collect(dir.path(), false).unwrap_err();
        assert!(
            matches!(err, StorageError::Corruption(ref m) if m.contains("not the last segment"))
        );
        let (seen, rep) = collect(dir.path(), true).unwrap();
        assert_eq!(seen.len(), 3);
        assert!(rep.skipped_bytes > 0);
        assert_eq!(seen[1].segment, 2);
    }

    #[test]
    fn torn_segment_header_of_last_segment_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let frames = payloads(1);
        write_segment(dir.path(), &frames);
        std::fs::write(dir.path().join(segment_file_name(2)), b"KRS").unwrap();
        let (seen, rep) = collect(dir.path(), false).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(rep.segments.len(), 1);
        assert!(!dir.path().join(segment_file_name(2)).exists());
    }

    #[test]
    fn rotation_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let frames = payloads(10);
        let seg = (SEGMENT_HEADER_LEN + 2 * frames[0].len()) as u64;
        let mut w = WalWriter::create(dir.path(), 1, Vec::new(), seg, true).unwrap();
        for f in &frames {
            w.append(&[f]).unwrap();
        }
        assert_eq!(w.segment_count(), 5);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![1, 2, 3, 4, 5]);
        let snap = w.sync_snapshot();
        assert_eq!(snap.files.len(), 5);
        assert!(w.remove_below(3).unwrap() > 0);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![3, 4, 5]);
        let (seen, _) = collect(dir.path(), false).unwrap();
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn defs_and_delete_round_trip() {
        let key = SeriesKey::new(
            "m",
            DataType::Double,
            kairosdb_model::Tags::from_pairs([("h", "a")]),
        );
        let mut b = Vec::new();
        encode_series_defs(&mut b, [(42u64, &key)].into_iter());
        match decode_record(&b[8..]).unwrap() {
            Record::SeriesDefs(d) => assert_eq!(d, vec![(42, key)]),
            _ => panic!("wrong record"),
        }
        let mut b = Vec::new();
        encode_delete(&mut b, 9, TimeRange::ALL, &[1, 2, 3]);
        match decode_record(&b[8..]).unwrap() {
            Record::Delete {
                watermark,
                range,
                sids,
            } => {
                assert_eq!(watermark, 9);
                assert_eq!(range, TimeRange::ALL);
                assert_eq!(sids, vec![1, 2, 3]);
            }
            _ => panic!("wrong record"),
        }
    }

    fn arb_points() -> impl Strategy<Value = Points> {
        let n = 0usize..40;
        prop_oneof![
            n.clone()
                .prop_flat_map(|n| (
                    proptest::collection::vec(any::<i64>(), n),
                    proptest::collection::vec(any::<i64>(), n)
                ))
                .prop_map(|(ts, values)| Points::Long { ts, values }),
            n.clone()
                .prop_flat_map(|n| (
                    proptest::collection::vec(any::<i64>(), n),
                    proptest::collection::vec(any::<f64>(), n)
                ))
                .prop_map(|(ts, values)| Points::Double { ts, values }),
            n.prop_flat_map(|n| (
                proptest::collection::vec(any::<i64>(), n),
                proptest::collection::vec(".{0,12}", n)
            ))
            .prop_map(|(ts, values)| Points::String { ts, values }),
        ]
    }

    proptest! {
        #[test]
        fn points_records_round_trip(chunks in proptest::collection::vec((any::<u64>(), any::<u64>(), arb_points()), 0..5)) {
            let mut b = Vec::new();
            let s = begin_record(&mut b, REC_POINTS);
            put_uvarint(&mut b, chunks.len() as u64);
            for (sid, exp, p) in &chunks {
                encode_points_chunk(&mut b, *sid, *exp, p);
            }
            finish_record(&mut b, s);
            let Record::Points(mut pr) = decode_record(&b[8..]).unwrap() else { panic!("type") };
            let mut ts = Vec::new();
            let mut vals = Col::new(DataType::Long);
            for (sid, exp, p) in &chunks {
                let h = pr.next_chunk(&mut ts, &mut vals).unwrap().unwrap();
                prop_assert_eq!(h.sid, *sid);
                let want_exp = if *exp == 0 { NEVER } else { *exp };
                prop_assert_eq!(h.expiry, want_exp);
                prop_assert_eq!(&ts[..], p.timestamps());
                match (&vals, p) {
                    (Col::Long(v), Points::Long { values, .. }) => prop_assert_eq!(v, values),
                    (Col::Double(v), Points::Double { values, .. }) => {
                        let a: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
                        let b: Vec<u64> = values.iter().map(|x| x.to_bits()).collect();
                        prop_assert_eq!(a, b);
                    }
                    (Col::Str(v), Points::String { values, .. }) => prop_assert_eq!(&strcol_values(v), values),
                    _ => prop_assert!(false, "type mismatch"),
                }
            }
            prop_assert!(pr.next_chunk(&mut ts, &mut vals).is_none());
        }

        #[test]
        fn record_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Record::Points(mut pr)) = decode_record(&bytes) {
                let mut ts = Vec::new();
                let mut vals = Col::new(DataType::Long);
                while let Some(r) = pr.next_chunk(&mut ts, &mut vals) {
                    if r.is_err() { break; }
                }
            }
        }
    }
}

//! The sealed block codec: one series' points for a time span, compressed with
//! `pco` (timestamps as i64, or nothing when they are evenly spaced; longs as i64,
//! doubles as decimal mantissas when every value has a short decimal form, else as f64;
//! strings as pco-coded lengths plus raw UTF-8), behind a varint
//! header of about 20 bytes (version 2; version 1's fixed 56-byte header is still
//! read).
//!
//! A block is immutable, sorted by timestamp with unique timestamps, and never empty.
//! Blocks are stored in fjall by `store.rs`; which block wins on overlap is decided
//! by the read path (`engine/read.rs`). Layout: `docs/format/block.md`.

use std::ops::Range;

use kairosdb_model::{DataType, TimeRange};
use pco::standalone::{
    simple_compress, simple_decompress_into_uninit, DecompressorItem, FileDecompressor,
};
use pco::{ChunkConfig, DeltaSpec, ModeSpec};

use crate::codec::{put_ivarint, put_uvarint, DecodeError, Reader};
use crate::column::{Col, StrCol};
use crate::wal::NEVER;

pub const BLOCK_VERSION: u8 = 2;
/// Default pco level (see `EngineConfig::compression_level`).
pub const DEFAULT_LEVEL: usize = 3;
/// Length of version 1's fixed header.
const V1_HEADER_LEN: usize = 56;
/// Version 2: version, data type, flags, CRC (4), then the varint fields.
const V2_FIXED_LEN: usize = 7;
const FLAG_EXPIRY_COLUMN: u8 = 1;
/// The timestamps are `min_ts + i · step` with `step = span / (count − 1)` (evenly spaced,
/// as most collectors send them): the block has no timestamp column (`ts_len` 0), and a
/// read finds any point's time without decoding.
const FLAG_REGULAR_TIMESTAMPS: u8 = 2;
/// Double values are stored as `u8 k ‖ pco(i64 m)` with value `m / 10^k`, exactly
/// (see [`as_decimals`]): what a collector sends as `12.34` is stored like the integer
/// 1234. On a 2-decimal random walk: 8 % fewer bytes than pco's float modes, and faster
/// both ways (docs/benchmarks.md, session 6).
const FLAG_DECIMAL_DOUBLES: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_EXPIRY_COLUMN | FLAG_REGULAR_TIMESTAMPS | FLAG_DECIMAL_DOUBLES;
/// Most decimal places a decimal double column uses (an f64 holds about 15.9
/// significant digits; every 10^k here is exact).
const MAX_DECIMALS: usize = 15;
const POW10: [f64; MAX_DECIMALS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Mantissas up to 2^53 are exact in an f64.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;
/// Guards allocations sized from a (corrupt) header.
pub const MAX_BLOCK_POINTS: u32 = 1 << 22;

/// The fixed header of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub data_type: DataType,
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Earliest / latest expiry (unix seconds) of any point; [`NEVER`] = no TTL.
    pub min_exp: u64,
    pub max_exp: u64,
    ts_len: u32,
    val_len: u32,
    exp_len: u32,
    crc: u32,
    flags: u8,
    version: u8,
    /// Header length: where the timestamp column starts.
    body_at: usize,
}

impl BlockHeader {
    /// True when every point has expired at `now_secs`.
    pub fn all_expired(&self, now_secs: u64) -> bool {
        self.max_exp <= now_secs
    }

    /// True when some (not necessarily all) points have expired at `now_secs`.
    #[cfg(test)]
    pub fn some_expired(&self, now_secs: u64) -> bool {
        self.min_exp <= now_secs
    }

    pub fn has_expiry_column(&self) -> bool {
        self.flags & FLAG_EXPIRY_COLUMN != 0
    }

    fn has_regular_timestamps(&self) -> bool {
        self.flags & FLAG_REGULAR_TIMESTAMPS != 0
    }

    fn has_decimal_doubles(&self) -> bool {
        self.flags & FLAG_DECIMAL_DOUBLES != 0
    }

    /// The spacing of regular timestamps (0 for a one-point block).
    fn regular_step(&self) -> i128 {
        match self.count {
            0 | 1 => 0,
            n => (i128::from(self.max_ts) - i128::from(self.min_ts)) / i128::from(n - 1),
        }
    }
}

/// Expiry of the points being encoded.
pub enum Expiry<'a> {
    Uniform(u64),
    PerPoint(&'a [u64]),
}

/// Decoded block columns; reused across blocks to avoid allocation.
#[derive(Debug)]
pub struct Decoded {
    pub ts: Vec<i64>,
    pub vals: Col,
    /// Per-point expiry, or empty when the block's expiry is uniform.
    pub exp: Vec<u64>,
}

impl Decoded {
    pub fn new() -> Decoded {
        Decoded {
            ts: Vec::new(),
            vals: Col::new(DataType::Double),
            exp: Vec::new(),
        }
    }

    /// Expiry of point `i` given the block header.
    #[cfg(test)]
    pub fn expiry(&self, h: &BlockHeader, i: usize) -> u64 {
        if self.exp.is_empty() {
            h.max_exp
        } else {
            self.exp[i]
        }
    }
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded::new()
    }
}

fn pco_err(column: &'static str, e: pco::errors::PcoError) -> DecodeError {
    DecodeError::Pco {
        column,
        detail: e.to_string(),
    }
}

/// Encodes a block. `ts` must be strictly increasing and non-empty, with
/// `vals.len() == ts.len()` (a `BUG` otherwise).
pub fn encode(ts: &[i64], vals: &Col, expiry: Expiry<'_>, level: usize) -> Vec<u8> {
    assert!(!ts.is_empty(), "BUG: encoding an empty block");
    assert_eq!(ts.len(), vals.len(), "BUG: block columns differ in length");
    debug_assert!(ts.windows(2).all(|w| w[0] < w[1]), "BUG: block not sorted");
    assert!(
        ts.len() <= MAX_BLOCK_POINTS as usize,
        "BUG: block too large"
    );
    let cfg = ChunkConfig::default().with_compression_level(level);
    // Timestamps are near-regular: first-order deltas in pco's classic mode are
    // both smaller and ~4x faster to find than the automatic search.
    let ts_cfg = cfg
        .clone()
        .with_delta_spec(DeltaSpec::TryConsecutive(1))
        .with_mode_spec(ModeSpec::Classic);
    let regular = is_regular(ts);
    // pco only fails on invalid configuration or empty input, both excluded above.
    let ts_col = if regular {
        Vec::new()
    } else {
        simple_compress(ts, &ts_cfg).expect("BUG: pco rejected timestamps")
    };
    let mut decimal = false;
    let val_col = match vals {
        Col::Long(v) => simple_compress(v, &cfg).expect("BUG: pco rejected longs"),
        Col::Double(v) => match as_decimals(v) {
            Some((k, m)) => {
                decimal = true;
                let mut col = vec![k];
                col.extend(simple_compress(&m, &cfg).expect("BUG: pco rejected mantissas"));
                col
            }
            None => simple_compress(v, &cfg).expect("BUG: pco rejected doubles"),
        },
        Col::Str(s) => encode_strings(s, &cfg),
    };
    let (min_exp, max_exp, exp_col) = match expiry {
        Expiry::Uniform(e) => (e, e, Vec::new()),
        Expiry::PerPoint(e) => {
            assert_eq!(e.len(), ts.len(), "BUG: expiry column length");
            let min = e.iter().copied().min().unwrap_or(NEVER);
            let max = e.iter().copied().max().unwrap_or(NEVER);
            if min == max {
                (min, max, Vec::new())
            } else {
                let c = simple_compress(e, &cfg).expect("BUG: pco rejected expiry");
                (min, max, c)
            }
        }
    };
    let mut flags = 0;
    if !exp_col.is_empty() {
        flags |= FLAG_EXPIRY_COLUMN;
    }
    if regular {
        flags |= FLAG_REGULAR_TIMESTAMPS;
    }
    if decimal {
        flags |= FLAG_DECIMAL_DOUBLES;
    }
    let mut out = Vec::with_capacity(40 + ts_col.len() + val_col.len() + exp_col.len());
    out.extend_from_slice(&[BLOCK_VERSION, vals.data_type().code(), flags, 0, 0, 0, 0]);
    put_uvarint(&mut out, ts.len() as u64);
    put_ivarint(&mut out, ts[0]);
    put_uvarint(&mut out, ts[ts.len() - 1].wrapping_sub(ts[0]) as u64);
    // Expiries as `e + 1`, so NEVER (u64::MAX) takes one byte.
    put_uvarint(&mut out, min_exp.wrapping_add(1));
    put_uvarint(&mut out, max_exp.wrapping_add(1));
    put_uvarint(&mut out, ts_col.len() as u64);
    put_uvarint(&mut out, val_col.len() as u64);
    put_uvarint(&mut out, exp_col.len() as u64);
    out.extend_from_slice(&ts_col);
    out.extend_from_slice(&val_col);
    out.extend_from_slice(&exp_col);
    let crc = block_crc(&out, BLOCK_VERSION);
    out[3..7].copy_from_slice(&crc.to_le_bytes());
    out
}

/// True when the (sorted, unique) timestamps are evenly spaced; one point counts.
fn is_regular(ts: &[i64]) -> bool {
    match ts {
        [] => false,
        [_] => true,
        [a, b, ..] => match b.checked_sub(*a) {
            Some(step) => ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step),
            None => false,
        },
    }
}

/// The doubles as `(k, m)` with `v[i]` bit for bit `m[i] as f64 / 10^k`, for the
/// smallest `k ≤ MAX_DECIMALS` that holds for all, or `None` (NaN, infinities, −0.0,
/// values with more decimals, or a mantissa over 2^53: the column stays f64). The
/// division is IEEE's correctly rounded one, so the decoder, dividing the same two
/// exact numbers, gets the same bits on every machine.
fn as_decimals(v: &[f64]) -> Option<(u8, Vec<i64>)> {
    // Checked through the i64, as the decoder sees it: −0.0 would come back as +0.0.
    let mantissa = |x: f64, k: usize| {
        let m = (x * POW10[k]).round();
        let exact =
            m.abs() <= MAX_MANTISSA && ((m as i64) as f64 / POW10[k]).to_bits() == x.to_bits();
        exact.then_some(m as i64)
    };
    let mut k = 0;
    for &x in v {
        while mantissa(x, k).is_none() {
            k += 1;
            if k > MAX_DECIMALS {
                return None;
            }
        }
    }
    // A value exact at a smaller k is almost always exact at this one too; checking
    // each again makes it always.
    let m = v
        .iter()
        .map(|&x| mantissa(x, k))
        .collect::<Option<Vec<i64>>>()?;
    Some((k as u8, m))
}

/// String column: `lens_len u32 LE | pco(u32 byte lengths) | concatenated UTF-8`.
fn encode_strings(s: &StrCol, cfg: &ChunkConfig) -> Vec<u8> {
    let mut lens: Vec<u32> = Vec::with_capacity(s.len());
    let mut prev = 0usize;
    for &e in &s.ends {
        lens.push(u32::try_from(e - prev).expect("BUG: string value over 4 GiB"));
        prev = e;
    }
    let lens_col = simple_compress(&lens, cfg).expect("BUG: pco rejected lengths");
    let mut out = Vec::with_capacity(4 + lens_col.len() + s.bytes.len());
    out.extend_from_slice(&(lens_col.len() as u32).to_le_bytes());
    out.extend_from_slice(&lens_col);
    out.extend_from_slice(&s.bytes);
    out
}

/// CRC-32 of the whole block without its CRC field (`b` is at least a header long).
fn block_crc(b: &[u8], version: u8) -> u32 {
    let crc_at = if version == 1 { 52 } else { 3 };
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..crc_at]);
    h.update(&b[crc_at + 4..]);
    h.finalize()
}

/// Rewrites the CRC field of `b` to match its contents, when the header parses; false
/// otherwise. The engine never calls it: it lets the fuzz target
/// (`fuzz/fuzz_targets/block_decode.rs`) reach the column decoders behind the checksum.
pub fn reseal(b: &mut [u8]) -> bool {
    let Ok(h) = decode_header(b) else {
        return false;
    };
    let crc_at = if h.version == 1 { 52 } else { 3 };
    let crc = block_crc(b, h.version);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    true
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads and sanity-checks the header (the CRC is checked by [`decode`]).
pub fn decode_header(b: &[u8]) -> Result<BlockHeader, DecodeError> {
    let bad = |what, offset| DecodeError::Invalid { what, offset };
    let h = match b.first() {
        Some(1) => decode_header_v1(b)?,
        Some(2) => decode_header_v2(b)?,
        Some(&v) => {
            return Err(DecodeError::Version {
                what: "block",
                version: v,
            })
        }
        None => {
            return Err(DecodeError::Truncated {
                what: "block header",
                offset: 0,
            })
        }
    };
    if h.count == 0 || h.count > MAX_BLOCK_POINTS || h.min_ts > h.max_ts || h.min_exp > h.max_exp {
        return Err(bad("block header", 0));
    }
    let body = h.ts_len as u64 + h.val_len as u64 + h.exp_len as u64;
    if body != (b.len() - h.body_at) as u64 {
        return Err(bad("block column lengths", h.body_at));
    }
    if h.flags & !KNOWN_FLAGS != 0
        || (h.has_decimal_doubles() && h.data_type != DataType::Double)
        || h.has_expiry_column() != (h.exp_len > 0)
        || h.has_regular_timestamps() != (h.ts_len == 0)
    {
        return Err(bad("block flags", 2));
    }
    if h.has_regular_timestamps() {
        // One point spans nothing; more are strictly increasing by a whole step.
        let span = i128::from(h.max_ts) - i128::from(h.min_ts);
        let fits = match h.count {
            1 => span == 0,
            n => span > 0 && span % i128::from(n - 1) == 0,
        };
        if !fits {
            return Err(bad("block span (regular timestamps)", 0));
        }
    }
    Ok(h)
}

fn decode_header_v2(b: &[u8]) -> Result<BlockHeader, DecodeError> {
    let mut r = Reader::new(b);
    let fixed = r.array::<V2_FIXED_LEN>("block header")?;
    let data_type = DataType::from_code(fixed[1]).ok_or(DecodeError::Invalid {
        what: "block data type",
        offset: 1,
    })?;
    let narrow = |v: u64, what, r: &Reader<'_>| {
        u32::try_from(v).map_err(|_| DecodeError::Invalid {
            what,
            offset: r.pos(),
        })
    };
    let count = r.uvarint("block count")?;
    let count = narrow(count, "block count", &r)?;
    let min_ts = r.ivarint("block min_ts")?;
    let span = r.uvarint("block span")?;
    let max_ts = (i128::from(min_ts) + i128::from(span))
        .try_into()
        .map_err(|_| DecodeError::Invalid {
            what: "block span",
            offset: r.pos(),
        })?;
    let min_exp = r.uvarint("block min_exp")?.wrapping_sub(1);
    let max_exp = r.uvarint("block max_exp")?.wrapping_sub(1);
    let ts_len = r.uvarint("timestamp column length")?;
    let val_len = r.uvarint("value column length")?;
    let exp_len = r.uvarint("expiry column length")?;
    Ok(BlockHeader {
        data_type,
        count,
        min_ts,
        max_ts,
        min_exp,
        max_exp,
        ts_len: narrow(ts_len, "timestamp column length", &r)?,
        val_len: narrow(val_len, "value column length", &r)?,
        exp_len: narrow(exp_len, "expiry column length", &r)?,
        crc: u32::from_le_bytes(fixed[3..7].try_into().expect("4 bytes")),
        flags: fixed[2],
        version: 2,
        body_at: r.pos(),
    })
}

fn decode_header_v1(b: &[u8]) -> Result<BlockHeader, DecodeError> {
    if b.len() < V1_HEADER_LEN {
        return Err(DecodeError::Truncated {
            what: "block header",
            offset: b.len(),
        });
    }
    let data_type = DataType::from_code(b[1]).ok_or(DecodeError::Invalid {
        what: "block data type",
        offset: 1,
    })?;
    Ok(BlockHeader {
        data_type,
        flags: b[2],
        count: le_u32(b, 4),
        min_ts: le_u64(b, 8) as i64,
        max_ts: le_u64(b, 16) as i64,
        min_exp: le_u64(b, 24),
        max_exp: le_u64(b, 32),
        ts_len: le_u32(b, 40),
        val_len: le_u32(b, 44),
        exp_len: le_u32(b, 48),
        crc: le_u32(b, 52),
        version: 1,
        body_at: V1_HEADER_LEN,
    })
}

/// Decodes a whole block into `out` (buffers are reused).
pub fn decode(b: &[u8], out: &mut Decoded) -> Result<BlockHeader, DecodeError> {
    let dt = decode_header(b)?.data_type;
    if out.vals.data_type() == dt {
        out.vals.clear();
    } else {
        out.vals = Col::new(dt);
    }
    out.ts.clear();
    out.exp.clear();
    let h = decode_append(b, &mut out.ts, &mut out.vals)?;
    if h.has_expiry_column() {
        let exp_at = h.body_at + h.ts_len as usize + h.val_len as usize;
        let n = h.count as usize;
        decode_numbers_into(&b[exp_at..], &mut out.exp, n, 0..n, "expiry")?;
    }
    Ok(h)
}

/// Decodes timestamps and values of a block, appending them to `ts` and `vals`
/// (whose type must match the block's). The expiry column is not read: use
/// [`decode`] unless the header shows no point can have expired.
pub fn decode_append(
    b: &[u8],
    ts: &mut Vec<i64>,
    vals: &mut Col,
) -> Result<BlockHeader, DecodeError> {
    decode_append_range(b, ts, vals, TimeRange::ALL)
}

/// [`decode_append`] of the points within `range` only. The timestamps are decoded whole
/// and checked (none are stored when they are regular), the number values only as far
/// as the range's last point: a read whose range ends inside the block skips the rest.
/// On error nothing is appended.
pub fn decode_append_range(
    b: &[u8],
    ts: &mut Vec<i64>,
    vals: &mut Col,
    range: TimeRange,
) -> Result<BlockHeader, DecodeError> {
    let h = decode_header(b)?;
    if block_crc(b, h.version) != h.crc {
        return Err(DecodeError::Invalid {
            what: "block checksum",
            offset: if h.version == 1 { 52 } else { 3 },
        });
    }
    if vals.data_type() != h.data_type {
        return Err(DecodeError::Invalid {
            what: "block data type (differs from its series)",
            offset: 1,
        });
    }
    let n = h.count as usize;
    let ts_at = h.body_at;
    let val_at = ts_at + h.ts_len as usize;
    let exp_at = val_at + h.val_len as usize;
    let base = ts.len();
    let vbase = vals.len();
    let res = (|| {
        if h.has_regular_timestamps() {
            // Checked by the header: strictly increasing, point n − 1 at max_ts, so
            // min_ts + i·step fits an i64 for every i < n (and the encoder marks a block
            // regular only when the step fits one); computed modulo 2⁶⁴, which gives that
            // value even where i·step alone does not fit.
            let (min, step) = (i128::from(h.min_ts), h.regular_step());
            // How many points lie at or before `t`.
            let upto = |t: i64| match i128::from(t) - min {
                d if d < 0 => 0,
                _ if step == 0 => 1,
                d => (d / step + 1).min(n as i128) as usize,
            };
            let first = match range.start {
                i64::MIN => 0,
                start => upto(start - 1),
            };
            let keep = upto(range.end).max(first);
            let step = step as i64;
            ts.extend(
                (first as i64..keep as i64).map(|i| h.min_ts.wrapping_add(i.wrapping_mul(step))),
            );
            return decode_values(&b[val_at..exp_at], &h, vals, first..keep);
        }
        let decoded = decode_timestamps_until(&b[ts_at..val_at], ts, n, range.end)?;
        // The header's bounds must match the data (they are used to skip blocks).
        let t = &ts[base..];
        let last_ok = decoded < n || t[n - 1] == h.max_ts;
        if t[0] != h.min_ts || !last_ok || !t.windows(2).all(|w| w[0] < w[1]) {
            return Err(DecodeError::Invalid {
                what: "block timestamps (unsorted or header mismatch)",
                offset: ts_at,
            });
        }
        let keep = t.partition_point(|&x| x <= range.end);
        let first = t[..keep].partition_point(|&x| x < range.start);
        ts.truncate(base + keep);
        ts.drain(base..base + first);
        decode_values(&b[val_at..exp_at], &h, vals, first..keep)
    })();
    if let Err(e) = res {
        ts.truncate(base);
        vals.truncate(vbase);
        return Err(e);
    }
    Ok(h)
}

/// Appends values `wanted` of the `n` values of a value column to `vals`. The numbers
/// before `wanted.start` are decoded too (pco reads from the start), the ones after
/// `wanted.end` are not.
fn decode_values(
    src: &[u8],
    h: &BlockHeader,
    vals: &mut Col,
    wanted: Range<usize>,
) -> Result<(), DecodeError> {
    let n = h.count as usize;
    match vals {
        Col::Long(v) => decode_numbers_into(src, v, n, wanted, "long values"),
        Col::Double(v) if h.has_decimal_doubles() => decode_decimals_into(src, v, n, wanted),
        Col::Double(v) => decode_numbers_into(src, v, n, wanted, "double values"),
        Col::Str(_) => {
            let mut tmp = StrCol::default();
            decode_strings(src, &mut tmp, n)?;
            vals.extend_from_col(&Col::Str(tmp), wanted);
            Ok(())
        }
    }
}

/// Appends values `wanted` of a decimal double column (`u8 k ‖ pco(i64 m)`, value
/// `m / 10^k`) to `dst`.
fn decode_decimals_into(
    src: &[u8],
    dst: &mut Vec<f64>,
    n: usize,
    wanted: Range<usize>,
) -> Result<(), DecodeError> {
    let (&k, mantissas) = src.split_first().ok_or(DecodeError::Truncated {
        what: "decimal double column",
        offset: 0,
    })?;
    let p = *POW10.get(usize::from(k)).ok_or(DecodeError::Invalid {
        what: "decimal double exponent",
        offset: 0,
    })?;
    let mut m: Vec<i64> = Vec::new();
    decode_numbers_into(mantissas, &mut m, n, wanted, "decimal double values")?;
    dst.extend(m.into_iter().map(|m| m as f64 / p));
    Ok(())
}

/// Appends the `n` timestamps of a pco column to `dst`, or stops early: after the first
/// batch of [`TS_STEP`] that reaches past `until`. Returns how many were appended.
fn decode_timestamps_until(
    src: &[u8],
    dst: &mut Vec<i64>,
    n: usize,
    until: i64,
) -> Result<usize, DecodeError> {
    const COLUMN: &str = "timestamps";
    let base = dst.len();
    let fail = |dst: &mut Vec<i64>, e| {
        dst.truncate(base);
        pco_err(COLUMN, e)
    };
    let mut chunk = one_chunk::<i64>(src, n, COLUMN)?;
    dst.resize(base + n, 0);
    let mut done = 0;
    while done < n {
        // A multiple of pco's batch of 256, or the rest of the chunk.
        let step = (n - done).min(TS_STEP);
        let p = chunk
            .read(&mut dst[base + done..base + done + step])
            .map_err(|e| fail(dst, e))?;
        if p.n_processed != step {
            dst.truncate(base);
            return Err(DecodeError::Pco {
                column: COLUMN,
                detail: format!("expected {n} numbers, got {}", done + p.n_processed),
            });
        }
        done += step;
        if dst[base + done - 1] > until {
            break;
        }
    }
    dst.truncate(base + done);
    Ok(done)
}

/// Timestamps decoded per step by [`decode_timestamps_until`].
const TS_STEP: usize = 512;

/// Appends numbers `wanted` of the `n` of a pco column to `dst`; decoding stops after
/// `wanted.end`.
fn decode_numbers_into<T: pco::data_types::Number + Default>(
    src: &[u8],
    dst: &mut Vec<T>,
    n: usize,
    wanted: Range<usize>,
    column: &'static str,
) -> Result<(), DecodeError> {
    /// pco's batch (`FULL_BATCH_N`).
    const BATCH: usize = 256;
    let (skip, keep) = (wanted.start, wanted.end);
    if keep == 0 {
        return Ok(());
    }
    let base = dst.len();
    if skip == 0 || keep == n {
        dst.reserve(keep);
        // Straight into the spare capacity: no zeroing of what pco overwrites anyway.
        let p = simple_decompress_into_uninit(src, &mut dst.spare_capacity_mut()[..keep])
            .map_err(|e| pco_err(column, e))?;
        // A full read must end the data exactly; a partial one stops inside it.
        if p.n_processed != keep || (keep == n && !p.finished) {
            return Err(DecodeError::Pco {
                column,
                detail: format!("expected {n} numbers, got {}", p.n_processed),
            });
        }
        // SAFETY: pco initialized the first `n_processed` (= `keep`) spare elements.
        unsafe { dst.set_len(base + keep) };
        dst.drain(base..base + skip);
        return Ok(());
    }
    // A range strictly inside the column. pco still decodes from the first number, but
    // a batch at a time into a small buffer, and only the wanted numbers are stored: a
    // read of one hour from a block of several no longer writes the hours before it to
    // memory.
    let mut chunk = one_chunk::<T>(src, n, column)?;
    dst.reserve(wanted.len());
    let mut buf = [T::default(); BATCH];
    let mut done = 0;
    while done < keep {
        let step = (n - done).min(BATCH);
        let p = chunk.read(&mut buf[..step]).map_err(|e| {
            dst.truncate(base);
            pco_err(column, e)
        })?;
        if p.n_processed != step {
            dst.truncate(base);
            return Err(DecodeError::Pco {
                column,
                detail: format!("expected {n} numbers, got {}", done + p.n_processed),
            });
        }
        let (from, to) = (skip.max(done) - done, keep.min(done + step) - done);
        if from < to {
            dst.extend_from_slice(&buf[from..to]);
        }
        done += step;
    }
    Ok(())
}

/// The decompressor of a standalone pco column that must hold one chunk of `n` numbers.
fn one_chunk<'a, T: pco::data_types::Number>(
    src: &'a [u8],
    n: usize,
    column: &'static str,
) -> Result<pco::standalone::ChunkDecompressor<T, &'a [u8]>, DecodeError> {
    let (file, rest) = FileDecompressor::new(src).map_err(|e| pco_err(column, e))?;
    match file.chunk_decompressor::<T, _>(rest) {
        Ok(DecompressorItem::Chunk(c)) if c.n() == n => Ok(c),
        Ok(_) => Err(DecodeError::Pco {
            column,
            detail: format!("expected one chunk of {n} numbers"),
        }),
        Err(e) => Err(pco_err(column, e)),
    }
}

fn decode_strings(src: &[u8], out: &mut StrCol, n: usize) -> Result<(), DecodeError> {
    if src.len() < 4 {
        return Err(DecodeError::Truncated {
            what: "string column",
            offset: 0,
        });
    }
    let lens_len = le_u32(src, 0) as usize;
    if lens_len > src.len() - 4 {
        return Err(DecodeError::Invalid {
            what: "string lengths size",
            offset: 0,
        });
    }
    let mut lens: Vec<u32> = Vec::new();
    decode_numbers_into(&src[4..4 + lens_len], &mut lens, n, 0..n, "string lengths")?;
    let bytes = &src[4 + lens_len..];
    let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
    if total != bytes.len() as u64 {
        return Err(DecodeError::Invalid {
            what: "string bytes length",
            offset: 4 + lens_len,
        });
    }
    out.bytes.clear();
    out.ends.clear();
    out.ends.reserve(n);
    let mut at = 0usize;
    for &l in &lens {
        let s =
            std::str::from_utf8(&bytes[at..at + l as usize]).map_err(|_| DecodeError::Invalid {
                what: "string value UTF-8",
                offset: 4 + lens_len + at,
            })?;
        out.push(s);
        at += l as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(ts: &[i64], vals: &Col, exp: Expiry<'_>) -> (BlockHeader, Decoded, usize) {
        let b = encode(ts, vals, exp, 8);
        let mut d = Decoded::new();
        let h = decode(&b, &mut d).unwrap();
        (h, d, b.len())
    }

    fn sorted_unique(mut ts: Vec<i64>) -> Vec<i64> {
        ts.sort_unstable();
        ts.dedup();
        ts
    }

    #[test]
    fn header_bytes_are_pinned() {
        // Irregular timestamps: a pco timestamp column.
        let b = encode(
            &[1_000, 11_000, 11_001],
            &Col::Long(vec![1, 2, 3]),
            Expiry::PerPoint(&[5, 5, 5]),
            3,
        );
        assert_eq!(&b[..3], &[2, DataType::Long.code(), 0]);
        let h = decode_header(&b).unwrap();
        // count 3, min_ts 1000 (zig-zag varint), span 10001, expiries 5 + 1 twice.
        let mut fields = vec![3, 0xD0, 0x0F, 0x91, 0x4E, 6, 6];
        put_uvarint(&mut fields, u64::from(h.ts_len));
        put_uvarint(&mut fields, u64::from(h.val_len));
        fields.push(0);
        assert_eq!(&b[7..7 + fields.len()], &fields[..]);
        assert_eq!(h.body_at, 7 + fields.len());
        assert_eq!(h.body_at + h.ts_len as usize + h.val_len as usize, b.len());
        // Columns are standalone pco streams (pco's own magic first).
        assert_eq!(&b[h.body_at..h.body_at + 4], b"pco!");
        assert_eq!(le_u32(&b, 3), block_crc(&b, 2));
        // Evenly spaced: flag 2, no timestamp column, the value column right after.
        let b = encode(
            &[1_000, 11_000],
            &Col::Long(vec![1, 2]),
            Expiry::Uniform(NEVER),
            3,
        );
        assert_eq!(
            &b[..3],
            &[2, DataType::Long.code(), FLAG_REGULAR_TIMESTAMPS]
        );
        let h = decode_header(&b).unwrap();
        let mut fields = vec![2, 0xD0, 0x0F, 0x90, 0x4E, 0, 0, 0];
        put_uvarint(&mut fields, u64::from(h.val_len));
        fields.push(0);
        assert_eq!(&b[7..7 + fields.len()], &fields[..]);
        assert_eq!(&b[h.body_at..h.body_at + 4], b"pco!");
        // No TTL: both expiries take one byte.
        let b = encode(&[1], &Col::Long(vec![1]), Expiry::Uniform(NEVER), 3);
        assert_eq!(&b[7..12], &[1, 2, 0, 0, 0]);
        assert_eq!(
            (
                decode_header(&b).unwrap().min_exp,
                decode_header(&b).unwrap().max_exp
            ),
            (NEVER, NEVER)
        );
    }

    /// Evenly spaced timestamps (one point included) are stored without a timestamp
    /// column and decode exactly; any other spacing, or a step that overflows, keeps it.
    #[test]
    fn regular_timestamps_need_no_column() {
        let v = |n: usize| Col::Long((0..n as i64).collect());
        for (ts, regular) in [
            (vec![7], true),
            (vec![-20, -10, 0, 10], true),
            (
                (0..2048).map(|i| 1_700_000_000_000 + i * 10_000).collect(),
                true,
            ),
            (vec![i64::MIN, -1], true),
            (vec![i64::MIN, 0], false),
            (vec![i64::MIN, i64::MAX], false),
            (vec![0, 10, 20, 31], false),
            (vec![0, 10, 21, 31], false),
        ] {
            let (h, d, _) = round_trip(&ts, &v(ts.len()), Expiry::Uniform(NEVER));
            assert_eq!(h.has_regular_timestamps(), regular, "{ts:?}");
            assert_eq!(h.ts_len == 0, regular, "{ts:?}");
            assert_eq!((d.ts, d.vals), (ts.clone(), v(ts.len())));
        }
        // A header claiming regular timestamps whose span the count does not divide.
        let b = encode(&[0, 10, 20], &v(3), Expiry::Uniform(NEVER), 3);
        let mut c = b.clone();
        c[9] = 21; // the span varint (20 before), for 3 points
        assert!(matches!(
            decode_header(&c),
            Err(DecodeError::Invalid { what, .. }) if what.contains("regular")
        ));
        // One point whose header spans time.
        let one = encode(&[5], &v(1), Expiry::Uniform(NEVER), 3);
        let mut c = one.clone();
        assert_eq!(c[9], 0, "the span varint");
        c[9] = 1;
        assert!(decode_header(&c).is_err());
        // Unknown flags are refused.
        let mut c = b.clone();
        c[2] |= 0x80;
        assert!(decode_header(&c).is_err());
    }

    /// Version 1's fixed 56-byte header, as written before version 2.
    fn as_version_1(b: &[u8]) -> Vec<u8> {
        let h = decode_header(b).unwrap();
        let mut out = vec![1, h.data_type.code(), h.flags, 0];
        out.extend_from_slice(&h.count.to_le_bytes());
        out.extend_from_slice(&h.min_ts.to_le_bytes());
        out.extend_from_slice(&h.max_ts.to_le_bytes());
        out.extend_from_slice(&h.min_exp.to_le_bytes());
        out.extend_from_slice(&h.max_exp.to_le_bytes());
        out.extend_from_slice(&h.ts_len.to_le_bytes());
        out.extend_from_slice(&h.val_len.to_le_bytes());
        out.extend_from_slice(&h.exp_len.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&b[h.body_at..]);
        let crc = block_crc(&out, 1);
        out[52..56].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn version_1_blocks_still_decode() {
        let ts: Vec<i64> = (0..50).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        let vals = Col::Double((0..50).map(|i| f64::from(i) / 4.0).collect());
        let exp: Vec<u64> = (0..50).map(|i| 100 + i % 3).collect();
        let v2 = encode(&ts, &vals, Expiry::PerPoint(&exp), 3);
        let v1 = as_version_1(&v2);
        assert_eq!(
            v1.len(),
            v2.len() + V1_HEADER_LEN - decode_header(&v2).unwrap().body_at
        );
        let (mut a, mut b) = (Decoded::new(), Decoded::new());
        let h1 = decode(&v1, &mut a).unwrap();
        let h2 = decode(&v2, &mut b).unwrap();
        assert_eq!((&a.ts, &a.vals, &a.exp), (&b.ts, &b.vals, &b.exp));
        assert_eq!(
            (h1.count, h1.min_ts, h1.max_ts, h1.min_exp, h1.max_exp),
            (h2.count, h2.min_ts, h2.max_ts, h2.min_exp, h2.max_exp)
        );
        let mut c = v1.clone();
        c[60] ^= 1;
        assert!(decode(&c, &mut a).is_err(), "version 1 checksum");
    }

    #[test]
    fn special_values_round_trip_bit_exact() {
        let ts = vec![i64::MIN, -5, -1, 0, 1, i64::MAX];
        let f = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::MIN_POSITIVE,
            1.5,
        ];
        let (h, d, _) = round_trip(&ts, &Col::Double(f.clone()), Expiry::Uniform(NEVER));
        assert_eq!(d.ts, ts);
        let Col::Double(got) = &d.vals else {
            panic!("type")
        };
        let a: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
        let b: Vec<u64> = f.iter().map(|x| x.to_bits()).collect();
        assert_eq!(a, b);
        assert_eq!((h.min_ts, h.max_ts, h.count), (i64::MIN, i64::MAX, 6));
        let l = vec![i64::MIN, i64::MAX, 0, -1, 1, 42];
        let (_, d, _) = round_trip(&ts, &Col::Long(l.clone()), Expiry::Uniform(5));
        assert_eq!(d.vals, Col::Long(l));
    }

    #[test]
    fn per_point_expiry_column_only_when_needed() {
        let ts = vec![1, 2, 3];
        let v = Col::Long(vec![1, 2, 3]);
        let (h, d, _) = round_trip(&ts, &v, Expiry::PerPoint(&[9, 9, 9]));
        assert!(!h.has_expiry_column());
        assert!(d.exp.is_empty());
        assert_eq!((h.min_exp, h.max_exp), (9, 9));
        let (h, d, _) = round_trip(&ts, &v, Expiry::PerPoint(&[9, NEVER, 7]));
        assert!(h.has_expiry_column());
        assert_eq!(d.exp, vec![9, NEVER, 7]);
        assert_eq!((h.min_exp, h.max_exp), (7, NEVER));
        assert!(h.some_expired(7) && !h.all_expired(7));
    }

    #[test]
    fn corruption_is_detected_not_panicking() {
        let ts: Vec<i64> = (0..100).map(|i| i * 10).collect();
        let b = encode(
            &ts,
            &Col::Double((0..100).map(f64::from).collect()),
            Expiry::Uniform(NEVER),
            8,
        );
        let mut d = Decoded::new();
        for b in [b.clone(), as_version_1(&b)] {
            for i in 0..b.len() {
                let mut c = b.clone();
                c[i] ^= 0x10;
                assert!(decode(&c, &mut d).is_err(), "flip at byte {i} not detected");
            }
        }
        let mut c = b.clone();
        let last = c.len() - 1;
        c[last] ^= 1;
        assert!(decode(&c, &mut d).is_err());
        assert!(decode(&b[..b.len() - 1], &mut d).is_err());
        assert!(decode(&b[..10], &mut d).is_err());
    }

    /// Evenly spaced timestamps whose span does not fit an i64 (the step does: the
    /// encoder keeps the column otherwise) decode exactly, from every point on.
    #[test]
    fn regular_timestamps_wider_than_an_i64_decode() {
        for ts in [
            vec![-(1i64 << 62), 0, 1 << 62],
            vec![i64::MIN, -1, i64::MAX - 1],
        ] {
            let vals = Col::Long(vec![7; ts.len()]);
            let b = encode(&ts, &vals, Expiry::Uniform(NEVER), 3);
            assert!(
                decode_header(&b).unwrap().has_regular_timestamps(),
                "{ts:?}"
            );
            for (i, &t) in ts.iter().enumerate() {
                let (mut got, mut v) = (Vec::new(), Col::with_capacity(DataType::Long, 0));
                decode_append_range(&b, &mut got, &mut v, TimeRange::new(t, i64::MAX)).unwrap();
                assert_eq!(got, ts[i..], "{ts:?} from {t}");
            }
        }
    }

    /// Decoding a time range gives exactly that slice of the whole decode, for every
    /// value type and bound (before the first point, on a point, between points, between
    /// batches of 256, past the last), with evenly spaced timestamps and without,
    /// appended after what the vectors held; a flipped value byte is still caught.
    #[test]
    fn decode_range_is_the_slice_of_the_whole_block() {
        decode_range_cases(1);
        decode_range_cases(3);
    }

    /// [`decode_range_is_the_slice_of_the_whole_block`] with every `jitter`-th point 1 ms
    /// late (1: evenly spaced).
    fn decode_range_cases(jitter: i64) {
        let n = 700;
        let ts: Vec<i64> = (0..n)
            .map(|i| 1_000 + i * 10 + i64::from(i % jitter == 1))
            .collect();
        let mut text = StrCol::default();
        for i in 0..n {
            text.push(&format!("v{}", i % 13));
        }
        let cols = [
            Col::Long((0..n).map(|i| (i * 7919) % 1000 - 500).collect()),
            Col::Double((0..n).map(|i| i as f64 / 3.0).collect()),
            Col::Str(text),
        ];
        for vals in cols {
            let b = encode(&ts, &vals, Expiry::Uniform(NEVER), 3);
            let dt = vals.data_type();
            let bounds = [
                i64::MIN,
                999,
                1_000,
                1_005,
                3_550,
                3_560,
                3_561,
                7_990,
                i64::MAX,
            ];
            for (start, end) in bounds.iter().flat_map(|&s| bounds.map(|e| (s, e))) {
                let (mut got_ts, mut got_vals) = (vec![-1], Col::with_capacity(dt, 0));
                got_vals.extend_from_col(&vals, 0..1);
                let range = TimeRange::new(start, end);
                decode_append_range(&b, &mut got_ts, &mut got_vals, range).unwrap();
                let (first, keep) = (
                    ts.partition_point(|&t| t < start),
                    ts.partition_point(|&t| t <= end),
                );
                let wanted = first..keep.max(first);
                let mut want_ts = vec![-1];
                want_ts.extend_from_slice(&ts[wanted.clone()]);
                let mut want_vals = Col::with_capacity(dt, 0);
                want_vals.extend_from_col(&vals, 0..1);
                want_vals.extend_from_col(&vals, wanted);
                assert_eq!(
                    (got_ts, got_vals),
                    (want_ts, want_vals),
                    "{dt:?} {start}..={end}"
                );
            }
            let mut c = b.clone();
            let at = c.len() - 20;
            c[at] ^= 0x10;
            let (mut t, mut v) = (Vec::new(), Col::with_capacity(dt, 0));
            let range = TimeRange::new(1_500, 2_000);
            assert!(decode_append_range(&c, &mut t, &mut v, range).is_err());
            assert!(
                t.is_empty() && v.is_empty(),
                "a failed decode appends nothing"
            );
            let h = decode_header(&b).unwrap();
            assert_eq!(h.has_regular_timestamps(), jitter == 1);
            if jitter == 1 {
                continue;
            }
            // Timestamps stop one step past the cut.
            let ts_col = &b[h.body_at..h.body_at + h.ts_len as usize];
            for (until, decoded) in [
                (1_005, TS_STEP),
                (6_120, n as usize),
                (i64::MAX, n as usize),
            ] {
                let mut t = Vec::new();
                assert_eq!(
                    decode_timestamps_until(ts_col, &mut t, n as usize, until).unwrap(),
                    decoded
                );
                assert_eq!(t, ts[..decoded]);
            }
        }
    }

    /// TSBS-like float random walk: 10 s spacing, rounded to 2 decimals. The
    /// format must stay at or below 1.5 bytes per point (ts + value) for
    /// 2048-point blocks, header included.
    #[test]
    fn random_walk_bytes_per_point_bound() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 2048 * 8;
        let mut v = 50.0f64;
        let mut total = 0usize;
        let mut ts_all = Vec::with_capacity(n);
        let mut vals_all = Vec::with_capacity(n);
        for i in 0..n {
            // Box-Muller normal step, sigma 0.5.
            let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            v += 0.5 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            ts_all.push(1_700_000_000_000 + i as i64 * 10_000);
            vals_all.push((v * 100.0).round() / 100.0);
        }
        for c in 0..n / 2048 {
            let r = c * 2048..(c + 1) * 2048;
            let b = encode(
                &ts_all[r.clone()],
                &Col::Double(vals_all[r].to_vec()),
                Expiry::Uniform(NEVER),
                DEFAULT_LEVEL,
            );
            total += b.len();
        }
        let bpp = total as f64 / n as f64;
        eprintln!("random walk: {bpp:.3} bytes/point");
        assert!(bpp <= 1.5, "random walk takes {bpp} bytes per point");
        // Integer gauge (0..100) and counter: far smaller.
        let gauge: Vec<i64> = (0..2048).map(|_| rng.gen_range(0..100)).collect();
        let b = encode(
            &ts_all[..2048],
            &Col::Long(gauge),
            Expiry::Uniform(NEVER),
            DEFAULT_LEVEL,
        );
        let g = b.len() as f64 / 2048.0;
        let mut c = 0i64;
        let counter: Vec<i64> = (0..2048)
            .map(|_| {
                c += rng.gen_range(0..2000);
                c
            })
            .collect();
        let b = encode(
            &ts_all[..2048],
            &Col::Long(counter),
            Expiry::Uniform(NEVER),
            DEFAULT_LEVEL,
        );
        let k = b.len() as f64 / 2048.0;
        // A realistic integer gauge: a level that moves by small steps.
        let mut level = 5_000i64;
        let slow: Vec<i64> = (0..2048)
            .map(|_| {
                level += rng.gen_range(-3..=3);
                level
            })
            .collect();
        let b = encode(
            &ts_all[..2048],
            &Col::Long(slow),
            Expiry::Uniform(NEVER),
            DEFAULT_LEVEL,
        );
        let s = b.len() as f64 / 2048.0;
        eprintln!("uniform gauge 0..100: {g:.3} B/pt, step gauge ±3: {s:.3} B/pt, counter +0..2000: {k:.3} B/pt");
        assert!(g < 1.0, "integer gauge takes {g} bytes per point");
        assert!(s < 0.5, "step gauge takes {s} bytes per point");
        assert!(k < 1.6, "counter takes {k} bytes per point");
    }

    fn double_bits(c: &Col) -> Vec<u64> {
        let Col::Double(v) = c else { panic!("type") };
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Doubles with a short decimal form (what collectors send as text) are stored as
    /// `u8 k ‖ pco(i64 mantissas)`: fewer bytes than the f64 column, the same bits back.
    #[test]
    fn decimal_doubles_are_stored_as_mantissas_and_decode_bit_exact() {
        let ts: Vec<i64> = (0..2048).map(|i| i * 10_000).collect();
        let mut level = 50.0f64;
        let walk: Vec<f64> = (0..2048)
            .map(|i| {
                level += f64::from((i * 7919 % 201) - 100) / 100.0;
                (level * 100.0).round() / 100.0
            })
            .collect();
        let b = encode(&ts, &Col::Double(walk.clone()), Expiry::Uniform(NEVER), 3);
        let h = decode_header(&b).unwrap();
        assert!(h.has_decimal_doubles());
        // The exponent byte leads the value column; the mantissas are a pco stream.
        let col = &b[h.body_at..h.body_at + h.val_len as usize];
        assert_eq!((col[0], &col[1..5]), (2, &b"pco!"[..]));
        let f64_col = simple_compress(&walk, &ChunkConfig::default().with_compression_level(3));
        assert!(
            col.len() < f64_col.unwrap().len() * 95 / 100,
            "decimal column {} bytes is not 5 % under the f64 one",
            col.len()
        );
        let mut d = Decoded::new();
        decode(&b, &mut d).unwrap();
        assert_eq!(
            double_bits(&d.vals),
            double_bits(&Col::Double(walk.clone()))
        );
        // A range inside the block decodes the same bits.
        let (mut t, mut v) = (Vec::new(), Col::new(DataType::Double));
        decode_append_range(&b, &mut t, &mut v, TimeRange::new(5_000_000, 9_000_000)).unwrap();
        assert_eq!(
            double_bits(&v),
            double_bits(&Col::Double(walk[500..901].to_vec()))
        );
        // Whole numbers take k = 0.
        let b = encode(
            &[1, 2],
            &Col::Double(vec![3.0, -7.0]),
            Expiry::Uniform(NEVER),
            3,
        );
        let h = decode_header(&b).unwrap();
        assert!(h.has_decimal_doubles());
        assert_eq!(b[h.body_at], 0);
    }

    /// Any double without an exact short decimal form keeps the f64 column: NaN,
    /// infinities, −0.0 (its mantissa would be +0), more than 15 decimals, 2^53 and
    /// beyond as a mantissa.
    #[test]
    fn doubles_without_a_short_decimal_form_keep_the_f64_column() {
        for odd in [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.1 + 0.2,
            1.0 / 3.0,
            1e-20,
            9_007_199_254_740_993.0 * 2.0,
            f64::MAX,
        ] {
            let v = vec![1.25, odd, 2.5];
            let b = encode(
                &[1, 2, 3],
                &Col::Double(v.clone()),
                Expiry::Uniform(NEVER),
                3,
            );
            let h = decode_header(&b).unwrap();
            assert!(!h.has_decimal_doubles(), "{odd:?} took the decimal column");
            assert_eq!(&b[h.body_at..h.body_at + 4], b"pco!");
            let mut d = Decoded::new();
            decode(&b, &mut d).unwrap();
            assert_eq!(double_bits(&d.vals), double_bits(&Col::Double(v)));
        }
    }

    #[test]
    fn a_decimal_flag_on_a_non_double_block_or_a_bad_exponent_is_refused() {
        let mut b = encode(&[1, 2], &Col::Long(vec![1, 2]), Expiry::Uniform(NEVER), 3);
        b[2] |= FLAG_DECIMAL_DOUBLES;
        assert!(reseal(&mut b) || decode_header(&b).is_err());
        assert!(decode(&b, &mut Decoded::new()).is_err());
        let mut b = encode(
            &[1, 2],
            &Col::Double(vec![0.5, 0.25]),
            Expiry::Uniform(NEVER),
            3,
        );
        let h = decode_header(&b).unwrap();
        assert_eq!(b[h.body_at], 2);
        b[h.body_at] = MAX_DECIMALS as u8 + 1;
        assert!(reseal(&mut b));
        let err = decode(&b, &mut Decoded::new()).unwrap_err();
        assert!(err.to_string().contains("exponent"), "{err}");
    }

    proptest! {
        #[test]
        fn longs_round_trip(ts in proptest::collection::vec(any::<i64>(), 1..300), seed in any::<i64>()) {
            let ts = sorted_unique(ts);
            let v: Vec<i64> = ts.iter().map(|t| t.wrapping_mul(seed)).collect();
            let (h, d, _) = round_trip(&ts, &Col::Long(v.clone()), Expiry::Uniform(NEVER));
            prop_assert_eq!(&d.ts, &ts);
            prop_assert_eq!(d.vals, Col::Long(v));
            prop_assert_eq!(h.count as usize, ts.len());
        }

        #[test]
        fn doubles_round_trip(pairs in proptest::collection::btree_map(any::<i64>(), any::<f64>(), 1..300)) {
            let ts: Vec<i64> = pairs.keys().copied().collect();
            let v: Vec<f64> = pairs.values().copied().collect();
            let (_, d, _) = round_trip(&ts, &Col::Double(v.clone()), Expiry::Uniform(NEVER));
            prop_assert_eq!(&d.ts, &ts);
            let Col::Double(got) = d.vals else { panic!("type") };
            prop_assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }

        /// Decimal values of one scale up to 15 decimals and mantissas near 2^53, or
        /// of mixed scales (the block takes the largest), take the decimal column and
        /// come back bit for bit.
        #[test]
        fn decimal_doubles_round_trip(
            one_scale in (0usize..=MAX_DECIMALS, proptest::collection::vec(-(1i64 << 50)..=1i64 << 50, 1..200)),
            mixed in proptest::collection::vec((-999_999i64..=999_999, 0usize..=9), 1..200),
        ) {
            let (k, ms) = one_scale;
            let one: Vec<f64> = ms.iter().map(|&m| m as f64 / POW10[k]).collect();
            let mixed: Vec<f64> = mixed.iter().map(|&(m, k)| m as f64 / POW10[k]).collect();
            for v in [one, mixed] {
                let ts: Vec<i64> = (0..v.len() as i64).collect();
                let b = encode(&ts, &Col::Double(v.clone()), Expiry::Uniform(NEVER), 3);
                prop_assert!(decode_header(&b).unwrap().has_decimal_doubles());
                let mut d = Decoded::new();
                decode(&b, &mut d).unwrap();
                prop_assert_eq!(double_bits(&d.vals), double_bits(&Col::Double(v)));
            }
        }

        #[test]
        fn strings_round_trip(pairs in proptest::collection::btree_map(any::<i64>(), ".{0,20}", 1..100),
                              exp in proptest::collection::vec(any::<u64>(), 100)) {
            let ts: Vec<i64> = pairs.keys().copied().collect();
            let mut s = StrCol::default();
            for v in pairs.values() { s.push(v); }
            let e = &exp[..ts.len()];
            let (h, d, _) = round_trip(&ts, &Col::Str(s.clone()), Expiry::PerPoint(e));
            prop_assert_eq!(&d.vals, &Col::Str(s));
            for (i, &x) in e.iter().enumerate() {
                prop_assert_eq!(d.expiry(&h, i), x);
            }
        }

        #[test]
        fn regular_blocks_decode_any_range(start in any::<i64>(), step in 1i64..1 << 40,
                                           n in 1i64..300, cut in any::<prop::sample::Index>(),
                                           cut2 in any::<prop::sample::Index>(),
                                           until in any::<i64>(), from in any::<i64>()) {
            let end = step.checked_mul(n - 1).and_then(|span| start.checked_add(span));
            prop_assume!(end.is_some());
            let ts: Vec<i64> = (0..n).map(|i| start + i * step).collect();
            let vals = Col::Long(ts.iter().map(|t| t.wrapping_mul(3)).collect());
            let b = encode(&ts, &vals, Expiry::Uniform(NEVER), 3);
            prop_assert!(decode_header(&b).unwrap().has_regular_timestamps());
            let (at, at2) = (ts[cut.index(ts.len())], ts[cut2.index(ts.len())]);
            let ends = [until, at, at.saturating_sub(1), i64::MIN, i64::MAX];
            let starts = [from, at2, at2.saturating_add(1), i64::MIN, i64::MAX];
            for (s, e) in starts.iter().flat_map(|&s| ends.map(|e| (s, e))) {
                let (mut got_ts, mut got_vals) = (Vec::new(), Col::with_capacity(DataType::Long, 0));
                decode_append_range(&b, &mut got_ts, &mut got_vals, TimeRange::new(s, e)).unwrap();
                let first = ts.partition_point(|&t| t < s);
                let keep = ts.partition_point(|&t| t <= e).max(first);
                let mut want_vals = Col::with_capacity(DataType::Long, 0);
                want_vals.extend_from_col(&vals, first..keep);
                prop_assert_eq!(&got_ts[..], &ts[first..keep]);
                prop_assert_eq!(got_vals, want_vals);
            }
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = Decoded::new();
            let _ = decode(&bytes, &mut d);
        }
    }
}

//! What a control node and a worker say to each other over `/internal/v1/*` (docs/cluster.md,
//! bytes in docs/format/wire.md).
//!
//! * **Writes**: the body is one delivery-queue frame (`len | crc32 | payload`, the batch
//!   record of docs/format/queue.md), checked against its CRC before it is decoded.
//! * **Reads**: the request is JSON ([`ReadRequest`], a [`SeriesQuery`] with its regexes as
//!   their anchored patterns); the answer is two frames: the series as a queue batch
//!   record (TTL 0), then a counts record (type [`REC_COUNTS`]: version, then each
//!   series' `in_range` as a uvarint, in the same order). A partition copy's read
//!   ([`ReadRequest::ttls`]) is answered as a write body instead, each series split by
//!   its points' remaining TTLs ([`encode_copy`]), ready to be written elsewhere.
//! * **Errors**: a worker answers a failed call with [`WireError`] JSON, from which the
//!   router rebuilds the same [`StorageError`] (so back-pressure stays a 503 with its
//!   `Retry-After`, a bad query a 400).
//!
//! Every decoder here returns an error on any input, never panics.

use std::sync::Arc;

use kairosdb_engine::internals::{decode_batch, encode_batch};
use kairosdb_model::{
    DeleteRequest, Fold, FoldKeep, Order, SeriesData, SeriesPoints, SeriesQuery, Shard,
    StorageError, TagFilter, TagMatcher, TimeRange, TimeUnit, WriteBatch,
};
use serde::{Deserialize, Serialize};

/// `len u32 LE | crc32 u32 LE` before every payload (the WAL's frame).
const FRAME_HEADER_LEN: usize = 8;
/// Payload type of a read answer's counts frame.
pub const REC_COUNTS: u8 = 0x21;
const COUNTS_VERSION: u8 = 1;

/// A body that is not what it claims to be.
#[derive(Debug, thiserror::Error)]
#[error("bad cluster message: {0}")]
pub struct Malformed(pub String);

impl From<Malformed> for StorageError {
    fn from(e: Malformed) -> StorageError {
        StorageError::Internal(e.to_string())
    }
}

/// The body of `POST /internal/v1/write`.
pub fn encode_write(batch: &WriteBatch) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_batch(&mut buf, batch, 0);
    buf
}

pub fn decode_write(body: &[u8]) -> Result<WriteBatch, Malformed> {
    let (payload, rest) = frame(body)?;
    if !rest.is_empty() {
        return Err(Malformed(format!("{} bytes after the batch", rest.len())));
    }
    decode_batch(payload)
        .map(|(batch, _)| batch)
        .map_err(|e| Malformed(format!("write batch: {e}")))
}

/// The answer of `POST /internal/v1/read` for a partition copy ([`ReadRequest::ttls`]): the
/// body of a write ([`encode_write`]) holding the series read, each split into parts of
/// one TTL: its points' remaining TTLs ([`SeriesData::ttl_secs`]) rounded up by
/// [`ttl_class`], 0 for points that never expire (the receiving worker's default TTL then
/// applies, as it did where they were written).
pub fn encode_copy(series: Vec<SeriesData>) -> Vec<u8> {
    let mut batch = WriteBatch::new();
    for s in series {
        let key = Arc::unwrap_or_clone(s.key);
        if s.ttl_secs.is_empty() {
            batch.series.push(SeriesPoints {
                key,
                ttl_secs: 0,
                points: s.points,
            });
            continue;
        }
        let mut parts: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &ttl) in s.ttl_secs.iter().enumerate() {
            parts.entry(ttl_class(ttl)).or_default().push(i);
        }
        for (ttl_secs, idx) in parts {
            batch.series.push(SeriesPoints {
                key: key.clone(),
                ttl_secs,
                points: s.points.pick(&idx),
            });
        }
    }
    encode_write(&batch)
}

/// A remaining TTL (seconds; 0 = none) rounded up so that a series' points travel in few
/// parts (at most 64 per power of two of seconds, whatever their number): to the next
/// whole minute, and from 64 × 64 s on to the next multiple of 1/64 of the largest power
/// of two below it. A copied point so lives at most a minute, or 1/64 (1.6 %) of the time
/// it had left, longer than on its old worker; never shorter.
pub fn ttl_class(ttl_secs: u32) -> u32 {
    if ttl_secs == 0 {
        return 0;
    }
    let t = u64::from(ttl_secs);
    let power = 1u64 << (63 - t.leading_zeros());
    let step = (power / 64).max(60);
    t.div_ceil(step)
        .saturating_mul(step)
        .min(u64::from(u32::MAX)) as u32
}

/// The answer of `POST /internal/v1/read`.
pub fn encode_series(series: Vec<SeriesData>) -> Vec<u8> {
    let mut counts = Vec::with_capacity(series.len() * 2 + 2);
    let batch = WriteBatch {
        series: series
            .into_iter()
            .map(|s| {
                put_uvarint(&mut counts, s.in_range);
                SeriesPoints {
                    key: Arc::unwrap_or_clone(s.key),
                    ttl_secs: 0,
                    points: s.points,
                }
            })
            .collect(),
    };
    let mut buf = Vec::new();
    encode_batch(&mut buf, &batch, 0);
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    buf.push(REC_COUNTS);
    buf.push(COUNTS_VERSION);
    buf.extend_from_slice(&counts);
    seal(&mut buf, start);
    buf
}

pub fn decode_series(body: &[u8]) -> Result<Vec<SeriesData>, Malformed> {
    let (payload, rest) = frame(body)?;
    let (batch, _) = decode_batch(payload).map_err(|e| Malformed(format!("series: {e}")))?;
    let (counts, rest) = frame(rest)?;
    if !rest.is_empty() {
        return Err(Malformed(format!("{} bytes after the counts", rest.len())));
    }
    let Some((&[REC_COUNTS, COUNTS_VERSION], mut counts)) = counts.split_first_chunk::<2>() else {
        return Err(Malformed("not a counts record".into()));
    };
    let mut out = Vec::with_capacity(batch.series.len());
    for s in batch.series {
        let in_range = take_uvarint(&mut counts)
            .ok_or_else(|| Malformed("fewer counts than series".into()))?;
        out.push(SeriesData {
            key: Arc::new(s.key),
            points: s.points,
            in_range,
            ttl_secs: Vec::new(),
        });
    }
    if !counts.is_empty() {
        return Err(Malformed("more counts than series".into()));
    }
    Ok(out)
}

/// One tag value matcher of a [`ReadRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    Exact(String),
    /// The anchored pattern (`^(?:...)$`), compiled as is.
    Regex(String),
}

/// A tag filter as sent: `[name, [matchers]]` pairs.
pub type Filter = Vec<(String, Vec<Matcher>)>;

pub fn filter_to_wire(filter: &TagFilter) -> Filter {
    filter
        .tags
        .iter()
        .map(|(name, matchers)| {
            let matchers = matchers
                .iter()
                .map(|m| match m {
                    TagMatcher::Exact(v) => Matcher::Exact(v.clone()),
                    TagMatcher::Regex(r) => Matcher::Regex(r.as_str().to_owned()),
                })
                .collect();
            (name.clone(), matchers)
        })
        .collect()
}

pub fn filter_from_wire(filter: Filter) -> Result<TagFilter, Malformed> {
    let mut tags = Vec::with_capacity(filter.len());
    for (name, matchers) in filter {
        let matchers = matchers
            .into_iter()
            .map(|m| match m {
                Matcher::Exact(v) => Ok(TagMatcher::Exact(v)),
                Matcher::Regex(p) => regex::Regex::new(&p)
                    .map(TagMatcher::Regex)
                    .map_err(|e| Malformed(format!("regex {p:?}: {e}"))),
            })
            .collect::<Result<_, _>>()?;
        tags.push((name, matchers));
    }
    Ok(TagFilter { tags })
}

/// The body of `POST /internal/v1/read`: a [`SeriesQuery`] (its `work_limit` is the
/// router's business and is not sent).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReadRequest {
    pub metric: String,
    pub filter: Filter,
    pub start: i64,
    pub end: i64,
    pub limit: Option<usize>,
    pub descending: bool,
    pub max_points: Option<u64>,
    pub count_in_range: bool,
    /// `(partition count, wanted partitions)`.
    pub shard: Option<(u32, Vec<u32>)>,
    /// The push-down hint ([`kairosdb_model::Fold`]); older control nodes send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<FoldJson>,
    /// A partition copy's read: each point's remaining TTL is read too
    /// ([`SeriesQuery::with_ttl`]) and the answer is [`encode_copy`]'s, not a read answer.
    /// Set by the copy (`moves.rs`) only: [`ReadRequest::new`] leaves it off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ttls: bool,
}

/// A [`Fold`] as JSON: `keep` is `max`, `min`, `first` or `last`; `unit` KairosDB's
/// upper-case unit name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FoldJson {
    pub keep: String,
    pub unit: String,
    pub value: i64,
    pub start: i64,
    pub align_sampling: bool,
    pub time_zone: Option<String>,
}

impl FoldJson {
    pub fn new(f: &Fold) -> FoldJson {
        let keep = match f.keep {
            FoldKeep::Max => "max",
            FoldKeep::Min => "min",
            FoldKeep::First => "first",
            FoldKeep::Last => "last",
            FoldKeep::Count => "count",
        };
        FoldJson {
            keep: keep.into(),
            unit: f.unit.name().into(),
            value: f.value,
            start: f.start,
            align_sampling: f.align_sampling,
            time_zone: f.time_zone.clone(),
        }
    }

    pub fn into_fold(self) -> Result<Fold, Malformed> {
        let keep = match self.keep.as_str() {
            "max" => FoldKeep::Max,
            "min" => FoldKeep::Min,
            "first" => FoldKeep::First,
            "last" => FoldKeep::Last,
            "count" => FoldKeep::Count,
            other => return Err(Malformed(format!("fold keep {other:?}"))),
        };
        let unit = TimeUnit::parse(&self.unit)
            .ok_or_else(|| Malformed(format!("fold unit {:?}", self.unit)))?;
        Ok(Fold {
            keep,
            unit,
            value: self.value,
            start: self.start,
            align_sampling: self.align_sampling,
            time_zone: self.time_zone,
        })
    }
}

impl ReadRequest {
    pub fn new(q: &SeriesQuery) -> ReadRequest {
        ReadRequest {
            metric: q.metric.clone(),
            filter: filter_to_wire(&q.filter),
            start: q.range.start,
            end: q.range.end,
            limit: q.limit,
            descending: q.order == Order::Desc,
            max_points: q.max_points,
            count_in_range: q.count_in_range,
            shard: q
                .shard
                .as_ref()
                .map(|s| (s.partitions(), s.iter().collect())),
            fold: q.fold.as_ref().map(FoldJson::new),
            ttls: false,
        }
    }

    pub fn into_query(self) -> Result<SeriesQuery, Malformed> {
        Ok(SeriesQuery {
            limit: self.limit,
            order: if self.descending {
                Order::Desc
            } else {
                Order::Asc
            },
            max_points: self.max_points,
            count_in_range: self.count_in_range,
            shard: self.shard.map(|(n, wanted)| Shard::new(n, wanted)),
            fold: self.fold.map(FoldJson::into_fold).transpose()?,
            with_ttl: self.ttls,
            ..SeriesQuery::new(
                self.metric,
                filter_from_wire(self.filter)?,
                TimeRange::new(self.start, self.end),
            )
        })
    }
}

/// The body of `POST /internal/v1/series_keys` and `/internal/v1/delete`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    pub metric: String,
    pub filter: Filter,
    pub start: i64,
    pub end: i64,
    /// `(partition count, wanted partitions)`; deletes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(u32, Vec<u32>)>,
    /// [`DeleteRequest::exact`]; deletes only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
}

impl Selection {
    pub fn new(metric: &str, filter: &TagFilter, range: TimeRange) -> Selection {
        Selection {
            metric: metric.to_owned(),
            filter: filter_to_wire(filter),
            start: range.start,
            end: range.end,
            shard: None,
            exact: false,
        }
    }

    /// A delete's selection.
    pub fn of_delete(request: &DeleteRequest) -> Selection {
        Selection {
            shard: request
                .shard
                .as_ref()
                .map(|s| (s.partitions(), s.iter().collect())),
            exact: request.exact,
            ..Selection::new(&request.metric, &request.filter, request.range)
        }
    }

    pub fn into_delete(self) -> Result<DeleteRequest, Malformed> {
        Ok(DeleteRequest {
            metric: self.metric,
            filter: filter_from_wire(self.filter)?,
            range: TimeRange::new(self.start, self.end),
            shard: self.shard.map(|(n, wanted)| Shard::new(n, wanted)),
            exact: self.exact,
        })
    }
}

/// A worker's failed call, so the router can raise the same [`StorageError`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireError {
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub retry_after_secs: u32,
    #[serde(default)]
    pub limit: u64,
}

impl WireError {
    pub fn new(e: &StorageError) -> WireError {
        let (kind, retry_after_secs, limit) = match e {
            StorageError::InvalidInput(_) => ("invalid_input", 0, 0),
            StorageError::Backpressure { retry_after_secs } => {
                ("backpressure", *retry_after_secs, 0)
            }
            StorageError::Poisoned(_) => ("poisoned", 0, 0),
            StorageError::Corruption(_) => ("corruption", 0, 0),
            StorageError::TooManyPoints { limit } => ("too_many_points", 0, *limit),
            StorageError::InsufficientStorage(_) => ("insufficient_storage", 0, 0),
            StorageError::Closed => ("closed", 0, 0),
            StorageError::Unavailable {
                retry_after_secs, ..
            } => ("unavailable", *retry_after_secs, 0),
            StorageError::Unsupported(_) => ("unsupported", 0, 0),
            StorageError::Internal(_) => ("internal", 0, 0),
        };
        WireError {
            kind: kind.to_owned(),
            message: e.to_string(),
            retry_after_secs,
            limit,
        }
    }

    /// The error as the worker raised it, its message prefixed with the worker's name.
    pub fn into_storage_error(self, worker: &str) -> StorageError {
        let message = format!("worker {worker}: {}", self.message);
        match self.kind.as_str() {
            "invalid_input" => StorageError::InvalidInput(self.message),
            "backpressure" => StorageError::Backpressure {
                retry_after_secs: self.retry_after_secs.max(1),
            },
            "poisoned" => StorageError::Poisoned(message),
            "corruption" => StorageError::Corruption(message),
            "too_many_points" => StorageError::TooManyPoints { limit: self.limit },
            "insufficient_storage" => StorageError::InsufficientStorage(message),
            "unsupported" => StorageError::Unsupported(message),
            "unavailable" | "closed" => StorageError::Unavailable {
                message,
                retry_after_secs: self.retry_after_secs.max(1),
            },
            _ => StorageError::Internal(message),
        }
    }
}

/// Splits one frame off `body`: its checked payload and what follows.
fn frame(body: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let Some((header, rest)) = body.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(Malformed(format!("{} bytes: no frame header", body.len())));
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if rest.len() < len {
        return Err(Malformed(format!(
            "frame of {len} bytes, {} sent",
            rest.len()
        )));
    }
    let (payload, rest) = rest.split_at(len);
    if crc32fast::hash(payload) != crc {
        return Err(Malformed("frame checksum mismatch".into()));
    }
    Ok((payload, rest))
}

/// Fills in the frame header begun at `start`.
fn seal(buf: &mut [u8], start: usize) {
    let payload = &buf[start + FRAME_HEADER_LEN..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn take_uvarint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *buf = &buf[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use kairosdb_model::{DataType, Points, SeriesKey, Tags};

    use super::*;

    fn series(host: &str, points: Points, in_range: u64) -> SeriesData {
        let key = SeriesKey::new("m", points.data_type(), Tags::from_pairs([("host", host)]));
        SeriesData {
            key: Arc::new(key),
            points,
            in_range,
            ttl_secs: Vec::new(),
        }
    }

    fn sample() -> Vec<SeriesData> {
        vec![
            series(
                "a",
                Points::Long {
                    ts: vec![3, 2, 1],
                    values: vec![-1, 0, i64::MAX],
                },
                3,
            ),
            series(
                "b",
                Points::Double {
                    ts: vec![1],
                    values: vec![0.25],
                },
                1_000_000,
            ),
            series(
                "c",
                Points::String {
                    ts: vec![5, 9],
                    values: vec!["x".into(), "".into()],
                },
                2,
            ),
        ]
    }

    #[test]
    fn series_round_trip_with_their_counts_and_order() {
        assert_eq!(decode_series(&encode_series(sample())).unwrap(), sample());
        assert_eq!(
            decode_series(&encode_series(Vec::new())).unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn a_write_round_trips() {
        let batch = WriteBatch {
            series: vec![SeriesPoints {
                key: SeriesKey::new("w", DataType::Long, Tags::new()),
                ttl_secs: 60,
                points: Points::Long {
                    ts: vec![1, 2],
                    values: vec![7, 8],
                },
            }],
        };
        assert_eq!(decode_write(&encode_write(&batch)).unwrap(), batch);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused_not_a_panic() {
        let body = encode_series(sample());
        for cut in 0..body.len() {
            assert!(decode_series(&body[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..body.len() {
            let mut bad = body.clone();
            bad[i] ^= 0x40;
            // A flipped length byte may still frame garbage; the CRC or the decoder refuses.
            assert!(decode_series(&bad).is_err(), "byte {i}");
        }
        assert!(decode_write(b"").is_err());
        assert!(decode_write(&body).is_err(), "a read answer is not a write");
    }

    #[test]
    fn a_read_request_round_trips_with_regexes_and_shard() {
        let q = SeriesQuery {
            limit: Some(5),
            order: Order::Desc,
            max_points: Some(9),
            count_in_range: true,
            shard: Some(Shard::new(16, [3, 9])),
            ..SeriesQuery::new(
                "cpu",
                TagFilter::from_pairs(&[("host", &["a", "regex:b.*"])]),
                TimeRange::new(-5, 10),
            )
        };
        let sent = serde_json::to_string(&ReadRequest::new(&q)).unwrap();
        let back = serde_json::from_str::<ReadRequest>(&sent)
            .unwrap()
            .into_query()
            .unwrap();
        assert_eq!(back, q);
    }

    #[test]
    fn a_copy_splits_each_series_by_ttl_class_and_decodes_as_a_write() {
        let mut timed = series(
            "t",
            Points::Long {
                ts: vec![1, 2, 3, 4],
                values: vec![10, 20, 30, 40],
            },
            4,
        );
        timed.ttl_secs = vec![100, 0, 119, 3600];
        let plain = sample().remove(1);
        let batch = decode_write(&encode_copy(vec![timed, plain.clone()])).unwrap();
        let parts: Vec<(u32, &[i64])> = batch
            .series
            .iter()
            .map(|s| (s.ttl_secs, s.points.timestamps()))
            .collect();
        assert_eq!(
            parts,
            [
                (0, &[2][..]),
                (120, &[1, 3][..]),
                (3600, &[4][..]),
                (0, &[1][..])
            ]
        );
        assert_eq!(
            batch.series[1].points,
            Points::Long {
                ts: vec![1, 3],
                values: vec![10, 30]
            }
        );
        assert_eq!(batch.series[3].key, *plain.key);
        assert_eq!(batch.series[3].points, plain.points);
    }

    #[test]
    fn ttl_classes_never_shorten_add_at_most_a_minute_or_a_64th_and_stay_few() {
        assert_eq!(ttl_class(0), 0, "never expires stays so");
        let probes = (1..=100_000u32)
            .chain((1..=2000).map(|i| i * 2_147_483))
            .chain([u32::MAX - 1, u32::MAX]);
        for t in probes {
            let c = ttl_class(t);
            assert!(c >= t, "{t} → {c}");
            let slack = u64::from(c - t);
            assert!(slack < 60 || slack * 64 <= u64::from(t), "{t} → {c}");
        }
        // A day of distinct TTLs, one a second, crosses as a few hundred parts.
        let day: std::collections::BTreeSet<u32> = (1..=86_400).map(ttl_class).collect();
        assert!(day.len() < 400, "{} classes", day.len());
    }

    #[test]
    fn errors_keep_their_kind_across_the_wire() {
        let e = StorageError::Backpressure {
            retry_after_secs: 7,
        };
        let back = WireError::new(&e).into_storage_error("w1");
        assert!(matches!(
            back,
            StorageError::Backpressure {
                retry_after_secs: 7
            }
        ));
        let e = StorageError::TooManyPoints { limit: 10 };
        assert_eq!(
            WireError::new(&e).into_storage_error("w1").to_string(),
            e.to_string()
        );
        let e = StorageError::Unsupported("no backfill".into());
        let back = WireError::new(&e).into_storage_error("w1");
        assert!(matches!(back, StorageError::Unsupported(_)), "{back:?}");
    }
}

//! Byte-level helpers shared by the WAL, block and index formats: LEB128 varints,
//! zigzag, a bounds-checked [`Reader`], and the canonical series-key encoding.
//!
//! Nothing here does I/O. Every decoder returns [`DecodeError`] on bad input and
//! never panics: the WAL and blocks are read back from disk, which may hold garbage.
//! The byte layouts are drawn in `docs/format/` (varints in its `README.md`).

use kairosdb_model::{DataType, SeriesKey, Tags};

/// Why bytes could not be decoded. Callers turn it into `StorageError::Corruption`
/// (or, for the torn tail of the last WAL segment, into a truncation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data reading {what} at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("invalid {what} at byte {offset}")]
    Invalid { what: &'static str, offset: usize },
    #[error("unsupported {what} version {version}")]
    Version { what: &'static str, version: u8 },
    #[error("pco column {column} failed to decode: {detail}")]
    Pco {
        column: &'static str,
        detail: String,
    },
}

/// Appends `v` as an unsigned LEB128 varint (1–10 bytes).
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` zigzag-encoded as a varint (small magnitudes of either sign are short).
#[inline]
pub fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// Appends a length-prefixed byte string.
#[inline]
pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// A bounds-checked cursor over a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(what)),
        }
    }

    #[inline]
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn i64_le(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn uvarint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.truncated(what));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Invalid {
                    what,
                    offset: self.pos - 1,
                });
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Invalid {
                    what,
                    offset: self.pos - 1,
                });
            }
        }
    }

    #[inline]
    pub fn ivarint(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.uvarint(what).map(unzigzag)
    }

    /// A varint that must fit `usize` and be at most `max` (guards allocations
    /// sized from untrusted input).
    pub fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let at = self.pos;
        let v = self.uvarint(what)?;
        if v > max as u64 {
            return Err(DecodeError::Invalid { what, offset: at });
        }
        Ok(v as usize)
    }

    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.len(self.remaining(), what)?;
        self.take(n, what)
    }

    pub fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Invalid { what, offset: at })
    }

    pub fn truncated(&self, what: &'static str) -> DecodeError {
        DecodeError::Truncated {
            what,
            offset: self.pos,
        }
    }
}

/// Canonical series-key encoding (format in `docs/format/series_key.md`):
/// `data_type u8 | metric (varint len + UTF-8) | tag count varint | (name, value)*`
/// with tags in their sorted order. Used in WAL series definitions and as the
/// value of the fjall `series` keyspace; its xxh3 keys the in-memory registry.
pub fn encode_series_key(buf: &mut Vec<u8>, key: &SeriesKey) {
    buf.push(key.data_type.code());
    put_bytes(buf, key.metric.as_bytes());
    put_uvarint(buf, key.tags.len() as u64);
    for (k, v) in key.tags.iter() {
        put_bytes(buf, k.as_bytes());
        put_bytes(buf, v.as_bytes());
    }
}

pub fn decode_series_key(r: &mut Reader<'_>) -> Result<SeriesKey, DecodeError> {
    let at = r.pos();
    let dt = DataType::from_code(r.u8("series data type")?).ok_or(DecodeError::Invalid {
        what: "series data type",
        offset: at,
    })?;
    let metric = r.str("metric name")?.to_owned();
    let n = r.len(r.remaining() / 2, "tag count")?;
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.pos();
        let k = r.str("tag name")?;
        let v = r.str("tag value")?;
        // Canonical keys hold tags sorted and unique; anything else is corrupt.
        if let Some((pk, _)) = pairs.last() {
            if pk.as_str() >= k {
                return Err(DecodeError::Invalid {
                    what: "tag order",
                    offset: at,
                });
            }
        }
        pairs.push((k.to_owned(), v.to_owned()));
    }
    Ok(SeriesKey::new(metric, dt, Tags::from_pairs(pairs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_pinned_bytes() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 0);
        put_uvarint(&mut b, 127);
        put_uvarint(&mut b, 128);
        put_uvarint(&mut b, 300);
        assert_eq!(b, vec![0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
        let mut b = Vec::new();
        put_ivarint(&mut b, -1);
        put_ivarint(&mut b, 1);
        assert_eq!(b, vec![0x01, 0x02]);
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        let mut r = Reader::new(&[0xff; 11]);
        assert!(matches!(r.uvarint("x"), Err(DecodeError::Invalid { .. })));
        let mut r = Reader::new(&[0x80, 0x80]);
        assert!(matches!(r.uvarint("x"), Err(DecodeError::Truncated { .. })));
        // 10th byte may only carry one bit.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(r.uvarint("x").is_err());
        let mut b = Vec::new();
        put_uvarint(&mut b, u64::MAX);
        assert_eq!(Reader::new(&b).uvarint("x"), Ok(u64::MAX));
    }

    #[test]
    fn series_key_rejects_unsorted_tags() {
        let mut b = vec![DataType::Long.code()];
        put_bytes(&mut b, b"m");
        put_uvarint(&mut b, 2);
        for s in ["b", "1", "a", "2"] {
            put_bytes(&mut b, s.as_bytes());
        }
        assert!(decode_series_key(&mut Reader::new(&b)).is_err());
    }

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            put_ivarint(&mut b, i);
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.uvarint("u").unwrap(), v);
            prop_assert_eq!(r.ivarint("i").unwrap(), i);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn series_keys_round_trip(
            metric in ".{0,20}",
            tags in proptest::collection::btree_map(".{1,8}", ".{0,8}", 0..5),
            dt in 1u8..=3,
        ) {
            let key = SeriesKey::new(metric, DataType::from_code(dt).unwrap(), Tags::from_pairs(tags));
            let mut b = Vec::new();
            encode_series_key(&mut b, &key);
            let mut r = Reader::new(&b);
            prop_assert_eq!(decode_series_key(&mut r).unwrap(), key);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn series_key_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_series_key(&mut Reader::new(&bytes));
        }
    }
}

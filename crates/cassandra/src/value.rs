//! `data_points.value` encodings (spec §8.2, §8.4).
//!
//! * `kairos_long`: zig-zag varint (KairosDB `Util.packLong`, protobuf `sint64`).
//! * `kairos_double`: 8-byte IEEE-754 big-endian (`DataOutput.writeDouble`).
//! * `kairos_string`: Java `DataOutput.writeUTF` — 2-byte length, modified UTF-8.
//! * `kairos_legacy`: read-only formats of KairosDB < 1.0, chosen by the
//!   column's low bit (see [`crate::rowspec::legacy_column_is_long`]).
//!
//! Decoders ignore bytes after the value, as KairosDB's `DataInput` readers
//! do. Not here: `kairos_complex` (no plugin registers it by default) and the
//! internal legacy form KairosDB uses in its temp/cache files.

use kairosdb_model::{DataType, Value};

use crate::error::{DecodeError, EncodeError};
use crate::rowspec::legacy_column_is_long;

/// Appends `v` as a zig-zag varint.
pub fn encode_long(v: i64, out: &mut Vec<u8>) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u & !0x7F != 0 {
        out.push((u & 0x7F) as u8 | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Reads a zig-zag varint; returns the value and the bytes it used. Like
/// KairosDB's `unpackUnsignedLong`, at most ten groups are read and bits
/// beyond 64 are dropped.
pub fn decode_long(bytes: &[u8]) -> Result<(i64, usize), DecodeError> {
    let mut result: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    while shift < 64 {
        let b = *bytes.get(i).ok_or(DecodeError::Truncated {
            what: "varint long",
            needed: i + 1,
            available: bytes.len(),
        })?;
        i += 1;
        result |= ((b & 0x7F) as u64) << shift;
        if b & 0x80 == 0 {
            let v = ((result >> 1) as i64) ^ -((result & 1) as i64);
            return Ok((v, i));
        }
        shift += 7;
    }
    Err(DecodeError::VarintTooLong)
}

pub fn encode_double(v: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn decode_double(bytes: &[u8]) -> Result<f64, DecodeError> {
    let b: [u8; 8] =
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
                what: "double",
                needed: 8,
                available: bytes.len(),
            })?;
    Ok(f64::from_be_bytes(b))
}

/// Java `writeUTF`: length (u16 BE) then modified UTF-8 — U+0000 as `C0 80`
/// and each UTF-16 code unit of a supplementary character as 3 bytes.
pub fn encode_string(s: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len: usize = s
        .encode_utf16()
        .map(|u| match u {
            0x0001..=0x007F => 1,
            0x0000 | 0x0080..=0x07FF => 2,
            _ => 3,
        })
        .sum();
    if len > u16::MAX as usize {
        return Err(EncodeError::StringTooLong { len });
    }
    out.reserve(2 + len);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    for u in s.encode_utf16() {
        match u {
            0x0001..=0x007F => out.push(u as u8),
            0x0000 | 0x0080..=0x07FF => {
                out.push(0xC0 | (u >> 6) as u8);
                out.push(0x80 | (u & 0x3F) as u8);
            }
            _ => {
                out.push(0xE0 | (u >> 12) as u8);
                out.push(0x80 | ((u >> 6) & 0x3F) as u8);
                out.push(0x80 | (u & 0x3F) as u8);
            }
        }
    }
    Ok(())
}

/// Java `readUTF`. Accepts what Java accepts (including standard 3-byte
/// UTF-8 and overlong 2-byte forms) and rejects what it rejects (4-byte
/// forms, stray continuation bytes). Deviation: an unpaired surrogate is an
/// error, since a Rust `String` cannot hold one.
pub fn decode_string(bytes: &[u8]) -> Result<String, DecodeError> {
    let len_bytes: [u8; 2] =
        bytes
            .get(..2)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
                what: "string length",
                needed: 2,
                available: bytes.len(),
            })?;
    let len = u16::from_be_bytes(len_bytes) as usize;
    let body = bytes.get(2..2 + len).ok_or(DecodeError::Truncated {
        what: "string",
        needed: len,
        available: bytes.len() - 2,
    })?;
    let mut units = Vec::with_capacity(len);
    let mut i = 0;
    let cont = |j: usize| -> Result<u16, DecodeError> {
        match body.get(j) {
            Some(&b) if b & 0xC0 == 0x80 => Ok((b & 0x3F) as u16),
            _ => Err(DecodeError::MalformedModifiedUtf8 { offset: 2 + j }),
        }
    };
    while i < body.len() {
        let c = body[i];
        match c >> 4 {
            0..=7 => {
                units.push(c as u16);
                i += 1;
            }
            12 | 13 => {
                units.push(((c & 0x1F) as u16) << 6 | cont(i + 1)?);
                i += 2;
            }
            14 => {
                units.push(((c & 0x0F) as u16) << 12 | cont(i + 1)? << 6 | cont(i + 2)?);
                i += 3;
            }
            _ => return Err(DecodeError::MalformedModifiedUtf8 { offset: 2 + i }),
        }
    }
    String::from_utf16(&units).map_err(|_| DecodeError::UnpairedSurrogate)
}

/// Appends the `data_points.value` bytes of `v`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match v {
        Value::Long(x) => encode_long(*x, out),
        Value::Double(x) => encode_double(*x, out),
        Value::String(s) => encode_string(s, out)?,
    }
    Ok(())
}

/// Decodes a `data_points.value` cell of a row of type `data_type`.
pub fn decode_value(data_type: DataType, bytes: &[u8]) -> Result<Value, DecodeError> {
    Ok(match data_type {
        DataType::Long => Value::Long(decode_long(bytes)?.0),
        DataType::Double => Value::Double(decode_double(bytes)?),
        DataType::String => Value::String(decode_string(bytes)?),
    })
}

/// Legacy long: big-endian two's complement without leading zero bytes
/// (0 is empty, negatives are always 8 bytes). Written only by KairosDB
/// < 1.0; kept to build test fixtures and for completeness.
pub fn encode_legacy_long(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(8);
    bytes[first..].to_vec()
}

/// Shifts the bytes in. Deviation: more than 8 bytes is an error (KairosDB
/// keeps the last 8; no writer produced such a cell).
pub fn decode_legacy_long(bytes: &[u8]) -> Result<i64, DecodeError> {
    if bytes.len() > 8 {
        return Err(DecodeError::LegacyLongTooLong { len: bytes.len() });
    }
    Ok(bytes.iter().fold(0i64, |acc, &b| (acc << 8) | b as i64))
}

/// Legacy float form: `01` then a 4-byte IEEE float.
pub fn encode_legacy_float(v: f32) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

/// Legacy double form: `02` then an 8-byte IEEE double.
pub fn encode_legacy_double(v: f64) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

/// `01` → 4-byte float follows; any other flag → 8-byte double follows.
pub fn decode_legacy_double(bytes: &[u8]) -> Result<f64, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Truncated {
            what: "legacy double flag",
            needed: 1,
            available: 0,
        }),
        Some((0x01, rest)) => {
            let b: [u8; 4] =
                rest.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(DecodeError::Truncated {
                        what: "legacy float",
                        needed: 4,
                        available: rest.len(),
                    })?;
            Ok(f32::from_be_bytes(b) as f64)
        }
        Some((_, rest)) => decode_double(rest),
    }
}

/// Decodes a cell of a `kairos_legacy` row: the column's low bit says
/// long (0) or double (1).
pub fn decode_legacy_cell(column: u32, bytes: &[u8]) -> Result<Value, DecodeError> {
    if legacy_column_is_long(column) {
        decode_legacy_long(bytes).map(Value::Long)
    } else {
        decode_legacy_double(bytes).map(Value::Double)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn long_bytes(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_long(v, &mut out);
        out
    }

    fn string_bytes(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_string(s, &mut out).unwrap();
        out
    }

    #[test]
    fn long_vectors() {
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (1, "02"),
            (-1, "01"),
            (2, "04"),
            (-2, "03"),
            (63, "7e"),
            (64, "80 01"),
            (123, "f6 01"),
            (-123, "f5 01"),
            (300, "d8 04"),
            (789, "aa 0c"),
            (1349109376, "80 9a ce 86 0a"),
            (12345678999, "ae f2 e0 fd 5b"),
            (i64::MAX, "fe ff ff ff ff ff ff ff ff 01"),
            (i64::MIN, "ff ff ff ff ff ff ff ff ff 01"),
        ];
        for &(v, h) in cases {
            let bytes = hex(h);
            assert_eq!(long_bytes(v), bytes, "encode {v}");
            assert_eq!(decode_long(&bytes), Ok((v, bytes.len())), "decode {v}");
        }
    }

    // ValueSerializerTest.testPackUnpack's ranges (sampled where Java samples).
    #[test]
    fn long_pack_unpack_ranges() {
        let mut values: Vec<i64> = vec![0, 256, -1];
        values.extend(1..0x100_0000);
        let mut v = 0x100_0000i64;
        while v < 0x7000_0000_0000_0000 {
            values.push(v);
            v += (v >> 6).max(1);
        }
        for v in values {
            let b = long_bytes(v);
            assert_eq!(decode_long(&b), Ok((v, b.len())));
        }
    }

    #[test]
    fn long_decode_errors() {
        assert!(matches!(
            decode_long(&[]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode_long(&[0x80]),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(decode_long(&[0xff; 11]), Err(DecodeError::VarintTooLong));
        assert_eq!(
            DecodeError::VarintTooLong.to_string(),
            "Variable length quantity is too long"
        );
        // Trailing bytes are ignored, as by Java's DataInput.
        assert_eq!(decode_long(&[0x02, 0x55]), Ok((1, 1)));
    }

    #[test]
    fn double_vectors() {
        let cases: &[(f64, &str)] = &[
            (13.2, "40 2a 66 66 66 66 66 66"),
            (123.56, "40 5e e3 d7 0a 3d 70 a4"),
            (23.1, "40 37 19 99 99 99 99 9a"),
            (-1.5, "bf f8 00 00 00 00 00 00"),
        ];
        for &(v, h) in cases {
            let mut out = Vec::new();
            encode_double(v, &mut out);
            assert_eq!(out, hex(h));
            assert_eq!(decode_double(&out), Ok(v));
        }
        assert!(matches!(
            decode_double(&[0; 7]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn string_vectors() {
        let cases: &[(&str, &str)] = &[
            ("sweet", "00 05 73 77 65 65 74"),
            ("a\u{0}b", "00 04 61 c0 80 62"),
            ("é", "00 02 c3 a9"),
            ("\u{1F600}", "00 06 ed a0 bd ed b8 80"),
            ("", "00 00"),
        ];
        for &(s, h) in cases {
            let bytes = hex(h);
            assert_eq!(string_bytes(s), bytes, "encode {s:?}");
            assert_eq!(decode_string(&bytes).as_deref(), Ok(s), "decode {s:?}");
        }
    }

    #[test]
    fn string_limits_and_errors() {
        let max = "a".repeat(65535);
        assert_eq!(string_bytes(&max).len(), 65537);
        let mut out = Vec::new();
        assert_eq!(
            encode_string(&"é".repeat(32768), &mut out),
            Err(EncodeError::StringTooLong { len: 65536 })
        );
        assert!(matches!(
            decode_string(&[0]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode_string(&[0, 3, b'a']),
            Err(DecodeError::Truncated { .. })
        ));
        // A 4-byte UTF-8 form is not modified UTF-8.
        assert!(matches!(
            decode_string(&hex("00 04 f0 9f 98 80")),
            Err(DecodeError::MalformedModifiedUtf8 { offset: 2 })
        ));
        assert!(matches!(
            decode_string(&hex("00 02 c3 41")),
            Err(DecodeError::MalformedModifiedUtf8 { offset: 3 })
        ));
        assert_eq!(
            decode_string(&hex("00 03 ed a0 bd")),
            Err(DecodeError::UnpairedSurrogate)
        );
        // Java accepts a raw NUL byte and overlong two-byte forms.
        assert_eq!(
            decode_string(&hex("00 03 00 c1 81")).as_deref(),
            Ok("\u{0}A")
        );
    }

    #[test]
    fn legacy_longs() {
        assert_eq!(encode_legacy_long(0), Vec::<u8>::new());
        assert_eq!(encode_legacy_long(256), vec![1, 0]);
        assert_eq!(encode_legacy_long(-1), vec![0xff; 8]);
        // ValueSerializerTest.testLongs: byte count per magnitude.
        for (n, lo) in (1..=8).zip([
            1i64,
            0x100,
            0x1_0000,
            0x100_0000,
            1 << 32,
            1 << 40,
            1 << 48,
            1 << 56,
        ]) {
            let hi = if n == 8 {
                0x6fff_ffff_ffff_ffff
            } else {
                (lo << 8) - 1
            };
            for v in [lo, lo + 1, hi] {
                let b = encode_legacy_long(v);
                assert_eq!(b.len(), n, "{v:#x}");
                assert_eq!(decode_legacy_long(&b), Ok(v));
            }
        }
        assert_eq!(decode_legacy_long(&[]), Ok(0));
        assert_eq!(decode_legacy_long(&[0xff; 8]), Ok(-1));
        assert!(matches!(
            decode_legacy_long(&[0; 9]),
            Err(DecodeError::LegacyLongTooLong { len: 9 })
        ));
    }

    #[test]
    fn legacy_doubles_and_cells() {
        let f = encode_legacy_float(1.5);
        assert_eq!(f, hex("01 3f c0 00 00"));
        assert_eq!(decode_legacy_double(&f), Ok(1.5));
        let d = encode_legacy_double(-1.5);
        assert_eq!(d, hex("02 bf f8 00 00 00 00 00 00"));
        assert_eq!(decode_legacy_double(&d), Ok(-1.5));
        assert!(decode_legacy_double(&[]).is_err());
        assert!(decode_legacy_double(&[1, 0]).is_err());
        assert_eq!(
            decode_legacy_cell(0x5fb38300, &[1, 0]),
            Ok(Value::Long(256))
        );
        assert_eq!(decode_legacy_cell(0x5fb38301, &d), Ok(Value::Double(-1.5)));
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Long),
            prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), Just(-1i64)]
                .prop_map(Value::Long),
            any::<f64>().prop_map(Value::Double),
            prop_oneof![
                Just(f64::NAN),
                Just(0.0),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(f64::MIN_POSITIVE),
            ]
            .prop_map(Value::Double),
            any::<String>().prop_map(Value::String),
            "[a\u{0}\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{1F600}]{0,12}"
                .prop_map(Value::String),
        ]
    }

    /// Compares doubles by bits so NaN payloads and the sign of zero count.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn value_round_trip(v in any_value()) {
            let mut out = Vec::new();
            encode_value(&v, &mut out).unwrap();
            let back = decode_value(v.data_type(), &out).unwrap();
            prop_assert!(same(&v, &back), "{:?} -> {:?}", v, back);
        }

        #[test]
        fn string_length_prefix_matches(s in any::<String>()) {
            let b = string_bytes(&s);
            prop_assert_eq!(u16::from_be_bytes([b[0], b[1]]) as usize, b.len() - 2);
            prop_assert!(!b[2..].contains(&0));
        }

        #[test]
        fn legacy_long_round_trip(v in any::<i64>()) {
            prop_assert_eq!(decode_legacy_long(&encode_legacy_long(v)), Ok(v));
        }

        #[test]
        fn legacy_double_round_trip(v in any::<f64>(), f in any::<f32>()) {
            let d = decode_legacy_double(&encode_legacy_double(v)).unwrap();
            prop_assert_eq!(d.to_bits(), v.to_bits());
            let g = decode_legacy_double(&encode_legacy_float(f)).unwrap();
            if f.is_nan() {
                prop_assert!(g.is_nan());
            } else {
                prop_assert_eq!((g as f32).to_bits(), f.to_bits());
            }
        }

        #[test]
        fn value_decoders_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            column in any::<u32>(),
        ) {
            for t in [DataType::Long, DataType::Double, DataType::String] {
                let _ = decode_value(t, &bytes);
            }
            let _ = decode_legacy_cell(column, &bytes);
            let _ = decode_legacy_double(&bytes);
        }

        #[test]
        fn string_decoder_never_panics_on_length_prefixed_bytes(
            body in proptest::collection::vec(prop_oneof![any::<u8>(), 0xc0u8..0xf0, 0x80u8..0xc0], 0..40)
        ) {
            let mut bytes = (body.len() as u16).to_be_bytes().to_vec();
            bytes.extend_from_slice(&body);
            let _ = decode_string(&bytes);
        }
    }
}

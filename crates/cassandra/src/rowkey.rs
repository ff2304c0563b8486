//! The `data_points.key` blob: KairosDB's row key (spec §8.1).
//!
//! ```text
//! metric UTF-8 | 00 | row time (i64 BE) | [00 | type len | type UTF-8] | tag string
//! ```
//!
//! The bracketed type section is absent for `kairos_legacy` keys (written by
//! KairosDB < 1.0). In the upper bound of a `row_key_index` range scan its
//! first byte is `FF` instead of `00` (spec §7.5 step 1). The tag string is
//! `escName=escValue:` per tag, in Java `String.compareTo` order of the names.
//!
//! This module only converts bytes; which row keys exist is the index's job
//! (see [`crate::index`]).

use std::cmp::Ordering;

use kairosdb_model::{DataType, Tags};

use crate::error::{DecodeError, EncodeError};

/// Datastore type name of rows written by KairosDB < 1.0 (spec §8.2).
pub const LEGACY_TYPE: &str = "kairos_legacy";

/// The data type part of a row key: the datastore type name (spec §8.2).
///
/// Build it with [`StoreType::from_name`] so that the three types we store
/// are always [`StoreType::Known`]; other names (`kairos_complex`, a plugin's
/// type, the empty name of a scan bound) are kept verbatim so that a row key
/// read from an existing cluster re-encodes to the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreType {
    /// `kairos_long`, `kairos_double` or `kairos_string`.
    Known(DataType),
    /// `kairos_legacy`: the key has no type section.
    Legacy,
    /// Any other name, stored in the type section as is.
    Other(String),
}

impl StoreType {
    pub fn from_name(name: &str) -> StoreType {
        if name == LEGACY_TYPE {
            StoreType::Legacy
        } else if let Some(t) = DataType::from_store_name(name) {
            StoreType::Known(t)
        } else {
            StoreType::Other(name.to_string())
        }
    }

    pub fn name(&self) -> &str {
        match self {
            StoreType::Known(t) => t.store_name(),
            StoreType::Legacy => LEGACY_TYPE,
            StoreType::Other(s) => s,
        }
    }
}

impl From<DataType> for StoreType {
    fn from(t: DataType) -> StoreType {
        StoreType::Known(t)
    }
}

/// One decoded row key of `data_points`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub metric: String,
    /// Start of the row in ms since the epoch (see [`crate::RowSpec::row_time`]).
    pub row_time: i64,
    pub data_type: StoreType,
    pub tags: Tags,
}

/// Java `String.compareTo`: lexicographic over UTF-16 code units. It differs
/// from Rust's byte order only when a supplementary character (4-byte UTF-8,
/// surrogates D800–DFFF in UTF-16) meets a character in E000–FFFF.
pub fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

impl RowKey {
    pub fn new(
        metric: impl Into<String>,
        row_time: i64,
        data_type: impl Into<StoreType>,
        tags: Tags,
    ) -> RowKey {
        RowKey {
            metric: metric.into(),
            row_time,
            data_type: data_type.into(),
            tags,
        }
    }

    /// The bytes stored in `data_points.key` and `row_key_index.column1`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_with_marker(0x00)
    }

    /// The same key with `FF` in place of the type-section marker: the
    /// exclusive upper bound of a `row_key_index` scan (spec §7.5 step 1).
    /// A legacy key has no marker byte, so it encodes as [`RowKey::encode`],
    /// exactly as in KairosDB.
    pub fn encode_end_search(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_with_marker(0xFF)
    }

    fn encode_with_marker(&self, marker: u8) -> Result<Vec<u8>, EncodeError> {
        if self.metric.as_bytes().contains(&0) {
            return Err(EncodeError::MetricContainsNul {
                metric: self.metric.clone(),
            });
        }
        let type_name = self.data_type.name();
        // KairosDB compares the name, so a type spelled "kairos_legacy" in
        // `Other` is legacy too.
        let typed = type_name != LEGACY_TYPE;
        if typed && type_name.len() > 127 {
            return Err(EncodeError::DataTypeTooLong {
                name: type_name.to_string(),
                len: type_name.len(),
            });
        }
        let mut out = Vec::with_capacity(self.metric.len() + 12 + type_name.len() + 16);
        out.extend_from_slice(self.metric.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.row_time.to_be_bytes());
        if typed {
            out.push(marker);
            out.push(type_name.len() as u8);
            out.extend_from_slice(type_name.as_bytes());
        }
        write_tag_string(&self.tags, &mut out);
        Ok(out)
    }

    /// Parses a stored row key.
    ///
    /// Follows KairosDB's reader: a byte other than `00` after the row time
    /// starts the tag string of a legacy key, and an unterminated last tag
    /// is dropped. Deviations, both for bytes KairosDB never writes: the
    /// `FF` scan-bound marker is an error rather than garbage tags; invalid
    /// UTF-8 is an error rather than U+FFFD replacement; a legacy key that
    /// ends right after the row time has no tags instead of throwing.
    pub fn decode(bytes: &[u8]) -> Result<RowKey, DecodeError> {
        let nul = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::MissingMetricTerminator)?;
        let metric = std::str::from_utf8(&bytes[..nul])
            .map_err(|_| DecodeError::InvalidUtf8 {
                what: "row key metric name",
            })?
            .to_string();
        let rest = &bytes[nul + 1..];
        let time: [u8; 8] =
            rest.get(..8)
                .and_then(|t| t.try_into().ok())
                .ok_or(DecodeError::Truncated {
                    what: "row key row time",
                    needed: 8,
                    available: rest.len(),
                })?;
        let row_time = i64::from_be_bytes(time);
        let mut rest = &rest[8..];
        let data_type = match rest.first() {
            Some(0x00) => {
                let len = *rest.get(1).ok_or(DecodeError::Truncated {
                    what: "row key data type length",
                    needed: 1,
                    available: 0,
                })?;
                if len > 127 {
                    return Err(DecodeError::DataTypeLength { len });
                }
                let len = len as usize;
                let name = rest.get(2..2 + len).ok_or(DecodeError::Truncated {
                    what: "row key data type",
                    needed: len,
                    available: rest.len() - 2,
                })?;
                let name = std::str::from_utf8(name).map_err(|_| DecodeError::InvalidUtf8 {
                    what: "row key data type",
                })?;
                rest = &rest[2 + len..];
                StoreType::from_name(name)
            }
            Some(0xFF) => return Err(DecodeError::EndSearchKey),
            _ => StoreType::Legacy,
        };
        let tags = parse_tag_string(rest)?;
        Ok(RowKey {
            metric,
            row_time,
            data_type,
            tags,
        })
    }
}

/// Bounds of the legacy `row_key_index` scan of spec §7.5 step 1: keys of
/// type `""` with no tags at the two row times; the upper one carries the
/// `FF` marker. Use as `column1 >= lower AND column1 < upper`.
pub fn index_scan_bounds(
    metric: &str,
    start_row_time: i64,
    end_row_time: i64,
) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
    let lower = RowKey::new(
        metric,
        start_row_time,
        StoreType::Other(String::new()),
        Tags::new(),
    );
    let upper = RowKey::new(
        metric,
        end_row_time,
        StoreType::Other(String::new()),
        Tags::new(),
    );
    Ok((lower.encode()?, upper.encode_end_search()?))
}

/// Appends `escName=escValue:` per tag in Java string order of the names.
fn write_tag_string(tags: &Tags, out: &mut Vec<u8>) {
    let mut sorted: Vec<(&str, &str)> = tags.iter().collect();
    // `Tags` is in byte order; re-sort only when that differs from Java's.
    if !sorted
        .windows(2)
        .all(|w| java_string_cmp(w[0].0, w[1].0) == Ordering::Less)
    {
        sorted.sort_by(|a, b| java_string_cmp(a.0, b.0));
    }
    for (name, value) in sorted {
        escape_into(name, b':', out);
        out.push(b'=');
        escape_into(value, b'=', out);
        out.push(b':');
    }
}

/// Names escape `:` and `=` with `:`; values escape them with `=`.
fn escape_into(s: &str, escape: u8, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        if b == b':' || b == b'=' {
            out.push(escape);
        }
        out.push(b);
    }
}

/// KairosDB's tag string parser (`extractTags`), on bytes: `:` and `=` are
/// ASCII, so skipping "the next char" after an escape byte and skipping the
/// next byte give the same split (continuation bytes are never ASCII).
fn parse_tag_string(bytes: &[u8]) -> Result<Tags, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
        what: "row key tag string",
    })?;
    let mut tags = Tags::new();
    let mut mark = 0;
    let mut name: Option<String> = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let b = bytes[pos];
        match name.take() {
            None => {
                if b == b'=' {
                    name = Some(unescape(&bytes[mark..pos], b':')?);
                    mark = pos + 1;
                } else if b == b':' {
                    pos += 1;
                }
            }
            Some(n) => {
                if b == b':' {
                    let value = unescape(&bytes[mark..pos], b'=')?;
                    mark = pos + 1;
                    tags.insert(n, value);
                } else {
                    if b == b'=' {
                        pos += 1;
                    }
                    name = Some(n);
                }
            }
        }
        pos += 1;
    }
    Ok(tags)
}

/// Removes each escape byte and keeps the byte after it.
fn unescape(bytes: &[u8], escape: u8) -> Result<String, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == escape {
            i += 1;
        }
        if let Some(&b) = bytes.get(i) {
            out.push(b);
        }
        i += 1;
    }
    // Only ASCII bytes were removed from valid UTF-8, so this cannot fail;
    // report rather than panic all the same.
    String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8 {
        what: "row key tag",
    })
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

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        Tags::from_pairs(pairs.iter().copied())
    }

    // §8.1, test_toByteBuffer_legacyType.
    #[test]
    fn legacy_key_bytes() {
        let key = RowKey::new("myMetric", 12345, StoreType::Legacy, tags(&[("a", "b")]));
        let bytes = key.encode().unwrap();
        assert_eq!(
            bytes,
            hex("6d 79 4d 65 74 72 69 63 00 00 00 00 00 00 00 30 39 61 3d 62 3a")
        );
        assert_eq!(bytes.len(), 21);
        assert_eq!(RowKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn long_key_bytes() {
        let key = RowKey::new("myMetric", 12345, DataType::Long, tags(&[("a", "b")]));
        let bytes = key.encode().unwrap();
        assert_eq!(
            bytes,
            hex("6d 79 4d 65 74 72 69 63 00 00 00 00 00 00 00 30 39 00 0b 6b 61 69 72 6f 73 5f 6c 6f 6e 67 61 3d 62 3a")
        );
        assert_eq!(RowKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn archive_file_tracked_key_bytes() {
        let spec = crate::RowSpec::default();
        let row_time = spec.row_time(1359788400000);
        assert_eq!(row_time, 1358985600000);
        let key = RowKey::new(
            "archive_file_tracked",
            row_time,
            DataType::Long,
            tags(&[("host", "server1"), ("data_center", "DC1")]),
        );
        let bytes = key.encode().unwrap();
        let expected = hex(concat!(
            "61 72 63 68 69 76 65 5f 66 69 6c 65 5f 74 72 61 63 6b 65 64 00 00 00 01 3c 69 da 9c 00 00 0b 6b 61 69 72 6f 73 5f 6c 6f 6e 67 ",
            "64 61 74 61 5f 63 65 6e 74 65 72 3d 44 43 31 3a 68 6f 73 74 3d 73 65 72 76 65 72 31 3a"
        ));
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 71);
        assert!(bytes.ends_with(b"data_center=DC1:host=server1:"));
        assert_eq!(RowKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn escaping_example() {
        let key = RowKey::new(
            "m",
            0,
            StoreType::Legacy,
            tags(&[("a:a", "b:b"), ("c=c", "d=d")]),
        );
        let bytes = key.encode().unwrap();
        assert_eq!(&bytes[10..], b"a::a=b=:b:c:=c=d==d:");
        assert_eq!(RowKey::decode(&bytes).unwrap(), key);
    }

    // DataPointsRowKeySerializerTest.test_toByteBuffer_tagsWithColonEquals.
    #[test]
    fn tags_with_colon_equals_round_trip() {
        let t = tags(&[
            ("a:a", "b:b"),
            ("c=c", "d=d"),
            (":e", "f\\"),
            ("=a=", "==="),
            (":a:", ":::"),
            ("=b=", ":::"),
            (":b:", "==="),
            ("=c=", "normal"),
        ]);
        let key = RowKey::new("myMetric", 12345, StoreType::from_name("myDataType"), t);
        let back = RowKey::decode(&key.encode().unwrap()).unwrap();
        assert_eq!(back.tags.len(), 8);
        assert_eq!(back, key);
        assert_eq!(back.data_type, StoreType::Other("myDataType".into()));
    }

    #[test]
    fn tag_order_is_java_utf16_order() {
        // U+1F600 (surrogates D83D..) sorts before U+FF01 in Java, after it in bytes.
        let key = RowKey::new(
            "m",
            0,
            StoreType::Legacy,
            tags(&[("\u{FF01}", "x"), ("\u{1F600}", "y")]),
        );
        let bytes = key.encode().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes[10..]).unwrap(),
            "\u{1F600}=y:\u{FF01}=x:"
        );
        assert_eq!(RowKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn scan_bounds() {
        let (lo, hi) = index_scan_bounds("m", 0, 1814400000).unwrap();
        assert_eq!(lo, hex("6d 00 00 00 00 00 00 00 00 00 00 00"));
        assert_eq!(hi, hex("6d 00 00 00 00 00 6c 25 8c 00 ff 00"));
        assert!(matches!(
            RowKey::decode(&hi),
            Err(DecodeError::EndSearchKey)
        ));
        let lo_key = RowKey::decode(&lo).unwrap();
        assert_eq!(lo_key.data_type, StoreType::Other(String::new()));
    }

    #[test]
    fn decode_errors() {
        assert!(matches!(
            RowKey::decode(b"abc"),
            Err(DecodeError::MissingMetricTerminator)
        ));
        assert!(matches!(
            RowKey::decode(b"abc\0\0\0"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            RowKey::decode(&hex("61 00 00 00 00 00 00 00 00 00 00 05 6b")),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            RowKey::decode(&hex("61 00 00 00 00 00 00 00 00 00 00 80")),
            Err(DecodeError::DataTypeLength { len: 0x80 })
        ));
        assert!(matches!(
            RowKey::decode(&hex("ff 00 00 00 00 00 00 00 00 00")),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        // A legacy key with nothing after the time has no tags.
        let k = RowKey::decode(&hex("61 00 00 00 00 00 00 00 00 07")).unwrap();
        assert_eq!(
            (k.row_time, k.data_type, k.tags.len()),
            (7, StoreType::Legacy, 0)
        );
    }

    #[test]
    fn unterminated_tags_are_dropped_like_kairosdb() {
        let mut bytes = RowKey::new("m", 0, DataType::Long, Tags::new())
            .encode()
            .unwrap();
        bytes.extend_from_slice(b"a=b:c=d");
        let k = RowKey::decode(&bytes).unwrap();
        assert_eq!(k.tags, tags(&[("a", "b")]));
    }

    #[test]
    fn encode_errors() {
        let k = RowKey::new("a\0b", 0, DataType::Long, Tags::new());
        assert!(matches!(
            k.encode(),
            Err(EncodeError::MetricContainsNul { .. })
        ));
        let k = RowKey::new("m", 0, StoreType::Other("x".repeat(128)), Tags::new());
        assert!(matches!(
            k.encode(),
            Err(EncodeError::DataTypeTooLong { len: 128, .. })
        ));
    }

    fn store_type() -> impl Strategy<Value = StoreType> {
        prop_oneof![
            Just(StoreType::Known(DataType::Long)),
            Just(StoreType::Known(DataType::Double)),
            Just(StoreType::Known(DataType::String)),
            Just(StoreType::Legacy),
            "[a-z_]{0,20}".prop_map(|s| StoreType::from_name(&s)),
        ]
    }

    fn tag_text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-c:=]{0,6}", "\\PC{0,8}", any::<String>(),]
    }

    proptest! {
        #[test]
        fn row_key_round_trip(
            metric in "[^\u{0}]{0,30}",
            row_time in any::<i64>(),
            data_type in store_type(),
            pairs in proptest::collection::vec((tag_text(), tag_text()), 0..6),
        ) {
            let key = RowKey::new(metric, row_time, data_type, Tags::from_pairs(pairs));
            let bytes = key.encode().unwrap();
            prop_assert_eq!(RowKey::decode(&bytes).unwrap(), key.clone());
            // The end-search bound sorts after the key for every typed key.
            if key.data_type != StoreType::Legacy {
                prop_assert!(key.encode_end_search().unwrap() > bytes);
            }
        }

        #[test]
        fn row_key_from_negative_timestamp_round_trips(ts in i64::MIN..0i64, metric in "[a-z.]{1,10}") {
            let spec = crate::RowSpec::default();
            let key = RowKey::new(metric, spec.row_time(ts), DataType::Double, Tags::from_pairs([("h", "x")]));
            prop_assert_eq!(RowKey::decode(&key.encode().unwrap()).unwrap(), key);
        }

        #[test]
        fn row_key_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RowKey::decode(&bytes);
        }

        #[test]
        fn row_key_decode_never_panics_after_prefix(
            tail in proptest::collection::vec(prop_oneof![Just(b':'), Just(b'='), Just(0u8), any::<u8>()], 0..40)
        ) {
            let mut bytes = hex("6d 00 00 00 00 00 00 00 00 01 00 01 78");
            bytes.extend_from_slice(&tail);
            let _ = RowKey::decode(&bytes);
        }
    }
}

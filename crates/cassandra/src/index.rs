//! What the index tables hold (spec §8.5): `string_index`, `row_key_index`,
//! `row_keys`, `row_key_time_index` and `tag_indexed_row_keys`.
//!
//! These are the values bound to the statements of [`crate::schema`]; this
//! module decides their content, not when they are written (spec §7.4).

use kairosdb_model::Tags;

use crate::rowkey::{java_string_cmp, RowKey};

/// `string_index.key` of the metric names (UTF-8 of `metric_names`).
pub const METRIC_NAMES_KEY: &[u8] = b"metric_names";
/// `string_index.key` of tag names on installations older than 1.3.
pub const TAG_NAMES_KEY: &[u8] = b"tag_names";
/// `string_index.key` of tag values on installations older than 1.3.
pub const TAG_VALUES_KEY: &[u8] = b"tag_values";
/// `string_index.value` of every entry (the insert writes the literal `0x00`).
pub const STRING_INDEX_VALUE: &[u8] = &[0x00];
/// `table_name` of every `row_keys`, `tag_indexed_row_keys` and
/// `row_key_time_index` row.
pub const DATA_POINTS_TABLE: &str = "data_points";

/// Exclusive upper bound of a metric-name prefix scan (spec §7.5): the
/// prefix's UTF-8 bytes with the last byte incremented. UTF-8 never contains
/// `FF`, so the increment cannot carry. `None` for the empty prefix, which
/// KairosDB fails on (§14.20) and we treat as "no prefix".
pub fn prefix_upper_bound(prefix: &str) -> Option<Vec<u8>> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.last_mut()?;
    *last = last.wrapping_add(1);
    Some(bytes)
}

/// Exclusive upper bound of a metric-name prefix scan as text: the prefix
/// with its last character incremented (U+D7FF → U+E000; a last character
/// U+10FFFF is dropped and the one before incremented). For ASCII this is
/// [`prefix_upper_bound`]'s byte rule; for other text the byte rule can give
/// invalid UTF-8 (a last byte `BF`), which a `text` column cannot bind.
/// Every string in `[prefix, bound)` starts with `prefix`, because UTF-8
/// byte order is code-point order. `None`: no bound (scan to the end).
pub fn prefix_upper_bound_text(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `row_key_index` (legacy, read and delete only): partition = metric name,
/// `column1` = the encoded row key, value empty.
pub fn row_key_index_key(metric: &str) -> &[u8] {
    metric.as_bytes()
}

/// One `row_keys` row (`mtime` is `now()` on the server; `value` unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowKeysEntry<'a> {
    pub metric: &'a str,
    pub table_name: &'static str,
    /// CQL timestamp = ms since the epoch.
    pub row_time: i64,
    pub data_type: &'a str,
    pub tags: &'a Tags,
}

impl<'a> RowKeysEntry<'a> {
    pub fn new(key: &'a RowKey) -> RowKeysEntry<'a> {
        RowKeysEntry {
            metric: &key.metric,
            table_name: DATA_POINTS_TABLE,
            row_time: key.row_time,
            data_type: key.data_type.name(),
            tags: &key.tags,
        }
    }
}

/// `tag_indexed_row_keys.single_tag_pair`: `name=value`, no escaping.
pub fn single_tag_pair(name: &str, value: &str) -> String {
    let mut s = String::with_capacity(name.len() + 1 + value.len());
    s.push_str(name);
    s.push('=');
    s.push_str(value);
    s
}

/// `tag_indexed_row_keys.tag_collection_hash`: Guava `murmur3_32()` (x86,
/// seed 0) streamed over the UTF-8 of name then value of every indexed tag,
/// in Java string order of the names; `indexed` says which names count.
///
/// ⚠ Guava before 31 hashed supplementary characters differently in
/// `putString`; this matches hashing the UTF-8 bytes, as current Guava does.
pub fn tag_collection_hash(tags: &Tags, indexed: impl Fn(&str) -> bool) -> i32 {
    let mut pairs: Vec<(&str, &str)> = tags.iter().filter(|(k, _)| indexed(k)).collect();
    pairs.sort_by(|a, b| java_string_cmp(a.0, b.0));
    let mut bytes = Vec::new();
    for (k, v) in pairs {
        bytes.extend_from_slice(k.as_bytes());
        bytes.extend_from_slice(v.as_bytes());
    }
    murmur3_32(&bytes, 0) as i32
}

/// MurmurHash3 x86 32-bit (Guava's `murmur3_32()`), from the `murmur3` crate.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    // Reading from an in-memory slice cannot fail.
    murmur3::murmur3_32(&mut std::io::Cursor::new(data), seed).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_bounds_as_text() {
        use super::{prefix_upper_bound, prefix_upper_bound_text};
        assert_eq!(prefix_upper_bound_text("cpu.").as_deref(), Some("cpu/"));
        assert_eq!(
            prefix_upper_bound_text("cpu.").unwrap().as_bytes(),
            prefix_upper_bound("cpu.").unwrap().as_slice(),
            "ASCII: the spec's byte rule"
        );
        // "п" is D0 BF: the byte rule gives D0 C0, not UTF-8.
        assert!(String::from_utf8(prefix_upper_bound("cpuп").unwrap()).is_err());
        assert_eq!(prefix_upper_bound_text("cpuп").as_deref(), Some("cpuр"));
        assert_eq!(
            prefix_upper_bound_text("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound_text("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound_text("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound_text(""), None);
        for (name, inside) in [
            ("cpuп.x", true),
            ("cpuр", false),
            ("cpuп", true),
            ("cpuо", false),
        ] {
            let hi = prefix_upper_bound_text("cpuп").unwrap();
            let within = name >= "cpuп" && name < hi.as_str();
            assert_eq!(within, inside, "{name}");
            assert_eq!(within, name.starts_with("cpuп"), "{name}");
        }
    }

    use super::*;
    use kairosdb_model::DataType;

    #[test]
    fn murmur3_reference_vectors() {
        // Published MurmurHash3_x86_32 test vectors.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn spec_tag_collection_hashes() {
        let one = Tags::from_pairs([("host", "server1")]);
        assert_eq!(tag_collection_hash(&one, |_| true), -2125777964);
        let two = Tags::from_pairs([("host", "server1"), ("data_center", "DC1")]);
        assert_eq!(tag_collection_hash(&two, |_| true), -934437578);
        assert_eq!(tag_collection_hash(&two, |k| k == "host"), -2125777964);
    }

    #[test]
    fn string_index_and_pairs() {
        assert_eq!(METRIC_NAMES_KEY, "metric_names".as_bytes());
        assert_eq!(STRING_INDEX_VALUE, [0u8]);
        assert_eq!(prefix_upper_bound("cpu"), Some(b"cpv".to_vec()));
        assert_eq!(prefix_upper_bound("é"), Some(vec![0xc3, 0xaa]));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(single_tag_pair("a:b", "c=d"), "a:b=c=d");
        assert_eq!(row_key_index_key("m"), b"m");
    }

    #[test]
    fn row_keys_entry_fields() {
        let key = RowKey::new("m", 42, DataType::Double, Tags::from_pairs([("h", "x")]));
        let e = RowKeysEntry::new(&key);
        assert_eq!(
            (e.metric, e.table_name, e.row_time, e.data_type),
            ("m", "data_points", 42, "kairos_double")
        );
        assert_eq!(e.tags.get("h"), Some("x"));
    }
}

//! Series identity: metric name + data type + sorted tags (spec §2.4, §4.4 step 3).
//!
//! A long and a double written under the same name and tags are two different
//! series, exactly as in KairosDB (different row keys because the data type is
//! part of the key).

use std::cmp::Ordering;
use std::fmt;

/// KairosDB's stored data types (spec §2.3, §8.2). The names are the datastore
/// type names used in Cassandra row keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// `kairos_long`: signed 64-bit integers.
    Long,
    /// `kairos_double`: IEEE-754 doubles.
    Double,
    /// `kairos_string`: UTF-8 text.
    String,
}

impl DataType {
    /// The datastore type name (`kairos_long`, ...), as stored in Cassandra row keys.
    pub fn store_name(self) -> &'static str {
        match self {
            DataType::Long => "kairos_long",
            DataType::Double => "kairos_double",
            DataType::String => "kairos_string",
        }
    }

    /// The ingest type name (`long`, `double`, `string`) accepted in JSON `type`.
    pub fn ingest_name(self) -> &'static str {
        match self {
            DataType::Long => "long",
            DataType::Double => "double",
            DataType::String => "string",
        }
    }

    /// Parses an ingest type name (`"long"`, `"double"`, `"string"`); case-sensitive as in KairosDB.
    pub fn from_ingest_name(s: &str) -> Option<DataType> {
        match s {
            "long" => Some(DataType::Long),
            "double" => Some(DataType::Double),
            "string" => Some(DataType::String),
            _ => None,
        }
    }

    /// Parses a datastore type name (`kairos_long`, ...).
    pub fn from_store_name(s: &str) -> Option<DataType> {
        match s {
            "kairos_long" => Some(DataType::Long),
            "kairos_double" => Some(DataType::Double),
            "kairos_string" => Some(DataType::String),
            _ => None,
        }
    }

    /// Stable one-byte code used by on-disk formats (WAL, blocks, index).
    pub fn code(self) -> u8 {
        match self {
            DataType::Long => 1,
            DataType::Double => 2,
            DataType::String => 3,
        }
    }

    /// Inverse of [`DataType::code`].
    pub fn from_code(c: u8) -> Option<DataType> {
        match c {
            1 => Some(DataType::Long),
            2 => Some(DataType::Double),
            3 => Some(DataType::String),
            _ => None,
        }
    }

    /// KairosDB's "group type" (spec §4.4 step 4).
    pub fn group_type(self) -> GroupType {
        match self {
            DataType::Long | DataType::Double => GroupType::Number,
            DataType::String => GroupType::Text,
        }
    }
}

/// KairosDB's "group type" (spec §4.4 step 4): numbers and strings never share a result
/// group, and aggregators say which they accept. Ordered as KairosDB lists the groups
/// (`number` before `text`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupType {
    Number,
    Text,
}

impl GroupType {
    /// The name in `{"name":"type","type":"number"}`.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Number => "number",
            GroupType::Text => "text",
        }
    }
}

/// One value of a data point.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Long(i64),
    Double(f64),
    String(String),
}

impl Value {
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Long(_) => DataType::Long,
            Value::Double(_) => DataType::Double,
            Value::String(_) => DataType::String,
        }
    }
}

/// Tags of a series, kept sorted by name (byte order, which equals Java String
/// order for BMP text) with unique names. Construct with [`Tags::from_pairs`] or
/// [`Tags::insert`] so the invariant holds.
///
/// Stored as one string holding every name and value in order, plus where each ends: two
/// allocations per series instead of one per string. Series keys live in the engine's
/// index for the life of the series, and a query reading a thousand series' tags then
/// touches a few cache lines per series instead of one per string (lastpoint spent most
/// of its group building and tag writing on cache misses in scattered tag strings).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags {
    /// `name₀ value₀ name₁ value₁ …`, concatenated.
    text: String,
    /// The end of each name and value in `text`: two per tag.
    ends: Vec<usize>,
}

impl Tags {
    pub fn new() -> Tags {
        Tags::default()
    }

    /// Builds tags from pairs already sorted by name with unique names (what a
    /// parser's sorted tag list holds), skipping [`Tags::from_pairs`]' copy and sort.
    pub fn from_sorted_unique<'t>(
        pairs: impl ExactSizeIterator<Item = (&'t str, &'t str)> + Clone,
    ) -> Tags {
        debug_assert!(pairs
            .clone()
            .zip(pairs.clone().skip(1))
            .all(|(a, b)| a.0 < b.0));
        let mut t = Tags {
            text: String::with_capacity(pairs.clone().map(|(k, v)| k.len() + v.len()).sum()),
            ends: Vec::with_capacity(2 * pairs.len()),
        };
        for (k, v) in pairs {
            t.text.push_str(k);
            t.ends.push(t.text.len());
            t.text.push_str(v);
            t.ends.push(t.text.len());
        }
        t
    }

    /// Builds sorted tags; a later duplicate name replaces an earlier one.
    pub fn from_pairs<I, K, V>(pairs: I) -> Tags
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable: of equal names, the last one written is the last of its run.
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let kept: Vec<(&str, &str)> = pairs
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| {
                pairs
                    .get(i + 1)
                    .is_none_or(|next| next.0.as_ref() != k.as_ref())
            })
            .map(|(_, (k, v))| (k.as_ref(), v.as_ref()))
            .collect();
        Tags::from_sorted_unique(kept.into_iter())
    }

    /// Inserts or replaces a tag, keeping the order.
    pub fn insert(&mut self, name: String, value: String) {
        match self.find(&name) {
            Ok(i) => {
                let (start, end) = (self.ends[2 * i], self.ends[2 * i + 1]);
                self.text.replace_range(start..end, &value);
                for e in &mut self.ends[2 * i + 1..] {
                    *e = *e - (end - start) + value.len();
                }
            }
            Err(i) => {
                let at = self.start(2 * i);
                self.text.insert_str(at, &value);
                self.text.insert_str(at, &name);
                for e in &mut self.ends[2 * i..] {
                    *e += name.len() + value.len();
                }
                let ends = [at + name.len(), at + name.len() + value.len()];
                self.ends.splice(2 * i..2 * i, ends);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| self.part(2 * i + 1))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        (0..self.len()).map(|i| self.pair(i))
    }

    /// Tag number `i` in name order, as `(name, value)`; panics when `i >= len()`.
    pub fn pair(&self, i: usize) -> (&str, &str) {
        (self.part(2 * i), self.part(2 * i + 1))
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Index of the tag called `name`, or where it would be inserted.
    fn find(&self, name: &str) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.part(2 * mid).cmp(name) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Name (`j` even) or value (`j` odd) number `j`.
    fn part(&self, j: usize) -> &str {
        &self.text[self.start(j)..self.ends[j]]
    }

    fn start(&self, j: usize) -> usize {
        if j == 0 {
            0
        } else {
            self.ends[j - 1]
        }
    }
}

/// Tag by tag, as a sorted list of `(name, value)` pairs compares.
impl Ord for Tags {
    fn cmp(&self, other: &Tags) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Tags {
    fn partial_cmp(&self, other: &Tags) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The identity of one series: (metric, data type, sorted tags).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub metric: String,
    pub data_type: DataType,
    pub tags: Tags,
}

impl SeriesKey {
    pub fn new(metric: impl Into<String>, data_type: DataType, tags: Tags) -> SeriesKey {
        SeriesKey {
            metric: metric.into(),
            data_type,
            tags,
        }
    }
}

impl fmt::Display for SeriesKey {
    /// `metric:kairos_type:k1=v1:k2=v2:` — the shape of KairosDB's H2 metric id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.metric, self.data_type.store_name())?;
        for (k, v) in self.tags.iter() {
            write!(f, "{k}={v}:")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_pairs_build_the_same_tags_as_any_pairs() {
        let pairs = [("a", "1"), ("b", "2"), ("c\u{e9}", "")];
        let t = Tags::from_sorted_unique(pairs.iter().copied());
        assert_eq!(t, Tags::from_pairs(pairs));
        assert_eq!(t.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(Tags::from_sorted_unique(std::iter::empty()), Tags::new());
    }

    #[test]
    fn tags_are_sorted_and_unique() {
        let t = Tags::from_pairs([("b", "2"), ("a", "1"), ("b", "3")]);
        let v: Vec<_> = t.iter().collect();
        assert_eq!(v, vec![("a", "1"), ("b", "3")]);
        assert_eq!(t.get("b"), Some("3"));
        assert_eq!(t.get("c"), None);
    }

    #[test]
    fn tags_insert_keeps_order_and_replaces() {
        let mut t = Tags::new();
        for (k, v) in [
            ("m", "1"),
            ("a", "22"),
            ("z", ""),
            ("m", "333"),
            ("a", ""),
            ("b", "x"),
        ] {
            t.insert(k.into(), v.into());
        }
        let v: Vec<_> = t.iter().collect();
        assert_eq!(v, vec![("a", ""), ("b", "x"), ("m", "333"), ("z", "")]);
        assert_eq!(t, Tags::from_pairs(v.iter().rev().copied()));
        assert_eq!(t.len(), 4);
        assert_eq!(t.get("m"), Some("333"));
        assert_eq!(t.get("z"), Some(""));
        assert_eq!(t.get(""), None);
        assert!(Tags::new().is_empty());
        assert_eq!(
            format!("{t:?}"),
            r#"{"a": "", "b": "x", "m": "333", "z": ""}"#
        );
    }

    #[test]
    fn tags_order_tag_by_tag() {
        // Not the order of the concatenated text ("ac" > "abx").
        let a = Tags::from_pairs([("a", "c")]);
        let ab = Tags::from_pairs([("ab", "x")]);
        assert!(a < ab);
        assert!(Tags::new() < a);
        assert!(Tags::from_pairs([("a", "c"), ("b", "")]) > a);
    }

    #[test]
    fn type_codes_round_trip() {
        for t in [DataType::Long, DataType::Double, DataType::String] {
            assert_eq!(DataType::from_code(t.code()), Some(t));
            assert_eq!(DataType::from_store_name(t.store_name()), Some(t));
            assert_eq!(DataType::from_ingest_name(t.ingest_name()), Some(t));
        }
    }

    #[test]
    fn display_is_h2_style_id() {
        let k = SeriesKey::new("m", DataType::Long, Tags::from_pairs([("host", "a")]));
        assert_eq!(k.to_string(), "m:kairos_long:host=a:");
    }
}

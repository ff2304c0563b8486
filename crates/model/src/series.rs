//! Series identity: metric name + data type + sorted tags (spec §2.4, §4.4 step 3).
//!
//! A long and a double written under the same name and tags are two different
//! series, exactly as in KairosDB (different row keys because the data type is
//! part of the key).

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

    /// KairosDB's "group type" (spec §4.4 step 4): `number` or `text`.
    pub fn group_type(self) -> &'static str {
        match self {
            DataType::Long | DataType::Double => "number",
            DataType::String => "text",
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    pub fn new() -> Tags {
        Tags(Vec::new())
    }

    /// Builds sorted tags; a later duplicate name replaces an earlier one.
    pub fn from_pairs<I, K, V>(pairs: I) -> Tags
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut t = Tags::new();
        for (k, v) in pairs {
            t.insert(k.into(), v.into());
        }
        t
    }

    /// Inserts or replaces a tag, keeping the order.
    pub fn insert(&mut self, name: String, value: String) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
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
    fn tags_are_sorted_and_unique() {
        let t = Tags::from_pairs([("b", "2"), ("a", "1"), ("b", "3")]);
        let v: Vec<_> = t.iter().collect();
        assert_eq!(v, vec![("a", "1"), ("b", "3")]);
        assert_eq!(t.get("b"), Some("3"));
        assert_eq!(t.get("c"), None);
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

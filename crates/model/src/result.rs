//! Query results ready to be written as KairosDB response JSON (spec §4.5).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::series::{GroupType, SeriesKey};

/// One numeric output value. Longs and doubles keep their own JSON form
/// (spec §4.5: long → integer, double → §4.6 text); `Null` comes from `gaps`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Long(i64),
    Double(f64),
    Null,
}

/// The values of one result group, as a column.
#[derive(Clone, Debug, PartialEq)]
pub enum OutColumn {
    Long(Vec<i64>),
    Double(Vec<f64>),
    /// Mixed longs/doubles/nulls (e.g. a number group merged from a long and a double series).
    Number(Vec<Num>),
    Text(Vec<String>),
    /// Strings with the null points `gaps` inserts into a text group.
    TextOrNull(Vec<Option<String>>),
}

impl OutColumn {
    pub fn len(&self) -> usize {
        match self {
            OutColumn::Long(v) => v.len(),
            OutColumn::Double(v) => v.len(),
            OutColumn::Number(v) => v.len(),
            OutColumn::Text(v) => v.len(),
            OutColumn::TextOrNull(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `group_by` entry of a result (spec §4.5, §6).
#[derive(Clone, Debug, PartialEq)]
pub enum GroupByResult {
    /// `{"name":"type","type":"number"}`
    Type(GroupType),
    /// `{"name":"tag","tags":[...],"group":{...}}`
    Tag {
        tags: Vec<String>,
        group: Vec<(String, String)>,
    },
    /// `{"name":"time","range_size":{"value":v,"unit":"U"},"group_count":n,"group":{"group_number":g}}`
    Time {
        range_value: i64,
        range_unit: String,
        group_count: i64,
        group_number: i64,
    },
    /// `{"name":"value","range_size":r,"group":{"group_number":g}}`
    Value { range_size: i64, group_number: i64 },
    /// `{"name":"bin","bins":[...],"group":{"bin_number":b}}`
    Bin { bins: Vec<f64>, bin_number: i64 },
}

/// The `tags` of a result group (spec §4.5): every tag name of the group's series, each
/// with its distinct values, names and values in byte order (as the `BTreeMap` of
/// strings this replaced; equal to Java's order for BMP text).
///
/// Borrows its strings from the series keys, shared with storage's index: a group costs
/// two `Vec`s of indexes and `Arc`s instead of a map of copied strings (a lastpoint query
/// has a thousand one-series groups). The union is taken once per group; the parts a
/// `time`/`value`/`bin` group-by splits it into copy only the indexes.
#[derive(Clone, Default)]
pub struct GroupTags {
    keys: Vec<Arc<SeriesKey>>,
    /// Each distinct `(name, value)` once, sorted by name, then value, as (index in
    /// `keys`, index of the tag in that key's tags).
    union: Vec<(usize, usize)>,
}

impl GroupTags {
    /// The tags of a group made of the series with these keys.
    pub fn new(keys: Vec<Arc<SeriesKey>>) -> GroupTags {
        let union = match keys.as_slice() {
            // One series: its tags are already sorted with unique names.
            [key] => (0..key.tags.len()).map(|t| (0, t)).collect(),
            keys => {
                let mut distinct = BTreeMap::new();
                for (k, key) in keys.iter().enumerate() {
                    for (t, pair) in key.tags.iter().enumerate() {
                        distinct.entry(pair).or_insert((k, t));
                    }
                }
                distinct.into_values().collect()
            }
        };
        GroupTags { keys, union }
    }

    /// Distinct `(name, value)` pairs, sorted by name, then value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.union.iter().map(|&(k, t)| self.keys[k].tags.pair(t))
    }

    /// The distinct values of tag `name`, sorted; empty when no series has it.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.pairs()
            .filter(|&(n, _)| n == name)
            .map(|(_, v)| v)
            .collect()
    }
}

/// Equal when the tag maps are equal, whichever series they came from.
impl PartialEq for GroupTags {
    fn eq(&self, other: &GroupTags) -> bool {
        self.pairs().eq(other.pairs())
    }
}

/// Prints the tag map, `{"host": ["a", "b"]}`, not the keys.
impl fmt::Debug for GroupTags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<_> = self.pairs().collect();
        let mut map = f.debug_map();
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            map.entry(&group[0].0, &group.iter().map(|p| p.1).collect::<Vec<_>>());
        }
        map.finish()
    }
}

/// One element of `results[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultGroup {
    pub name: String,
    pub alias: Option<String>,
    pub group_by: Vec<GroupByResult>,
    /// Tag name → sorted distinct values; `None` when `exclude_tags` is set.
    pub tags: Option<GroupTags>,
    pub ts: Vec<i64>,
    pub values: OutColumn,
}

/// One element of `queries[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub sample_size: u64,
    pub results: Vec<ResultGroup>,
    /// Set when the read was a cluster's partial answer (`Read::Partial`).
    pub coverage: Option<crate::Coverage>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{DataType, Tags};

    fn tags_of(series: &[&[(&str, &str)]]) -> GroupTags {
        GroupTags::new(
            series
                .iter()
                .map(|t| {
                    let tags = Tags::from_pairs(t.iter().copied());
                    Arc::new(SeriesKey::new("m", DataType::Long, tags))
                })
                .collect(),
        )
    }

    #[test]
    fn group_tags_are_the_sorted_union_of_the_series_tags() {
        let t = tags_of(&[
            &[("host", "b"), ("dc", "eu")],
            &[("host", "a"), ("dc", "eu"), ("rack", "1")],
            &[("host", "b")],
        ]);
        assert_eq!(
            t.pairs().collect::<Vec<_>>(),
            vec![("dc", "eu"), ("host", "a"), ("host", "b"), ("rack", "1")]
        );
        assert_eq!(t.values("host"), vec!["a", "b"]);
        assert_eq!(t.values("dc"), vec!["eu"]);
        assert!(t.values("none").is_empty());
        assert_eq!(
            format!("{t:?}"),
            r#"{"dc": ["eu"], "host": ["a", "b"], "rack": ["1"]}"#
        );
        let one = tags_of(&[&[("host", "a"), ("dc", "eu")]]);
        assert_eq!(
            one.pairs().collect::<Vec<_>>(),
            vec![("dc", "eu"), ("host", "a")]
        );
        assert_eq!(GroupTags::default().pairs().count(), 0);
    }

    #[test]
    fn group_tags_compare_as_tag_maps() {
        let two = tags_of(&[&[("host", "a")], &[("host", "b")]]);
        let same = tags_of(&[&[("host", "b")], &[("host", "a")], &[("host", "a")]]);
        assert_eq!(two, same);
        assert_ne!(two, tags_of(&[&[("host", "a")]]));
    }
}

//! Query results ready to be written as KairosDB response JSON (spec §4.5).

use std::collections::{BTreeMap, BTreeSet};

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
    Type(String),
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

/// One element of `results[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultGroup {
    pub name: String,
    pub alias: Option<String>,
    pub group_by: Vec<GroupByResult>,
    /// Tag name → sorted distinct values; `None` when `exclude_tags` is set.
    pub tags: Option<BTreeMap<String, BTreeSet<String>>>,
    pub ts: Vec<i64>,
    pub values: OutColumn,
}

/// One element of `queries[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub sample_size: u64,
    pub results: Vec<ResultGroup>,
}

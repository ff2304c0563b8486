//! Type split and tag grouping (spec §4.4 step 4).
//!
//! Series are split by group type (`number` for long/double, `text` for string; in that
//! order), then, with a `tag` group-by, by their values of the grouped tags (a series
//! missing a tag contributes `""`). Tag groups are ordered by the string
//! `t1 + v1 + t2 + v2 …`, as KairosDB orders them.

use std::collections::{BTreeMap, BTreeSet};

use kairosdb_model::SeriesData;

pub(crate) struct Group {
    pub group_type: &'static str,
    /// `(tag, value)` for each grouped tag, in group-by order; empty without a tag group-by.
    pub tag_key: Vec<(String, String)>,
    pub series: Vec<SeriesData>,
}

impl Group {
    /// Tag name → sorted distinct values over every series of the group.
    pub fn tag_values(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in &self.series {
            for (k, v) in s.key.tags.iter() {
                // Most series of a group share most tags: copy a string only when new.
                match out.get_mut(k) {
                    Some(values) => {
                        if !values.contains(v) {
                            values.insert(v.to_string());
                        }
                    }
                    None => {
                        out.insert(k.to_string(), BTreeSet::from([v.to_string()]));
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn split(series: Vec<SeriesData>, group_by_tags: &[String]) -> Vec<Group> {
    // (group type, ordering string, tag key) → series
    let mut groups: BTreeMap<(&'static str, String), Group> = BTreeMap::new();
    for s in series {
        let group_type = s.key.data_type.group_type();
        let tag_key: Vec<(String, String)> = group_by_tags
            .iter()
            .map(|t| (t.clone(), s.key.tags.get(t).unwrap_or("").to_string()))
            .collect();
        let order: String = tag_key
            .iter()
            .flat_map(|(t, v)| [t.as_str(), v.as_str()])
            .collect();
        groups
            .entry((group_type, order))
            .or_insert_with(|| Group {
                group_type,
                tag_key,
                series: Vec::new(),
            })
            .series
            .push(s);
    }
    groups.into_values().collect()
}

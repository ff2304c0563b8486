//! Type split and tag grouping (spec §4.4 step 4).
//!
//! Series are split by group type (`number` for long/double, `text` for string; in that
//! order), then, with a `tag` group-by, by their values of the grouped tags (a series
//! missing a tag contributes `""`). Tag groups are ordered by the string
//! `t1 + v1 + t2 + v2 …`, as KairosDB orders them.

use std::collections::BTreeMap;

use kairosdb_model::{GroupTags, SeriesData};

pub(crate) struct Group {
    pub group_type: &'static str,
    /// `(tag, value)` for each grouped tag, in group-by order; empty without a tag group-by.
    pub tag_key: Vec<(String, String)>,
    pub series: Vec<SeriesData>,
}

impl Group {
    /// The tags of every series of the group (shared keys, no string copies).
    pub fn tags(&self) -> GroupTags {
        GroupTags::new(self.series.iter().map(|s| s.key.clone()).collect())
    }
}

pub(crate) fn split(series: Vec<SeriesData>, group_by_tags: &[String]) -> Vec<Group> {
    // (group type, ordering string) → group. The ordering string is built in one reused
    // buffer; it and the tag key are copied only for a new group.
    let mut groups: BTreeMap<(&'static str, String), Group> = BTreeMap::new();
    let mut order = String::new();
    for s in series {
        let group_type = s.key.data_type.group_type();
        order.clear();
        for t in group_by_tags {
            order.push_str(t);
            order.push_str(s.key.tags.get(t).unwrap_or(""));
        }
        let key = (group_type, std::mem::take(&mut order));
        match groups.get_mut(&key) {
            Some(g) => {
                g.series.push(s);
                order = key.1;
            }
            None => {
                let tag_key = group_by_tags
                    .iter()
                    .map(|t| (t.clone(), s.key.tags.get(t).unwrap_or("").to_string()))
                    .collect();
                groups.insert(
                    key,
                    Group {
                        group_type,
                        tag_key,
                        series: vec![s],
                    },
                );
            }
        }
    }
    groups.into_values().collect()
}

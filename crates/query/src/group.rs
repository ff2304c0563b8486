//! Type split and tag grouping (spec §4.4 step 4).
//!
//! Series are split by group type (`number` for long/double, `text` for string; in that
//! order), then, with a `tag` group-by, by their values of the grouped tags (a series
//! missing a tag contributes `""`). Tag groups are ordered by the string
//! `t1 + v1 + t2 + v2 …`, as KairosDB orders them.

use std::ops::Range;

use kairosdb_model::{GroupTags, GroupType, SeriesData};

pub(crate) struct Group {
    pub group_type: GroupType,
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
    // Each series' ordering string goes into one shared buffer. The series are sorted by
    // (group type, ordering string), stably so that a group keeps its series in read
    // order, and each run of equal keys becomes a group: one sort instead of a map
    // lookup per series (lastpoint groups 100 series into 100 groups per metric).
    let mut text = String::new();
    let mut keyed: Vec<(GroupType, Range<usize>, SeriesData)> = series
        .into_iter()
        .map(|s| {
            let start = text.len();
            for t in group_by_tags {
                text.push_str(t);
                text.push_str(s.key.tags.get(t).unwrap_or(""));
            }
            (s.key.data_type.group_type(), start..text.len(), s)
        })
        .collect();
    let order = |a: &(GroupType, Range<usize>, SeriesData),
                 b: &(GroupType, Range<usize>, SeriesData)| {
        a.0.cmp(&b.0)
            .then_with(|| text[a.1.clone()].cmp(&text[b.1.clone()]))
    };
    keyed.sort_by(order);
    let mut groups: Vec<Group> = Vec::new();
    let mut last: Option<(GroupType, Range<usize>)> = None;
    for (group_type, range, s) in keyed {
        let same = last
            .as_ref()
            .is_some_and(|(t, r)| *t == group_type && text[r.clone()] == text[range.clone()]);
        match groups.last_mut() {
            Some(g) if same => g.series.push(s),
            _ => {
                let tag_key = group_by_tags
                    .iter()
                    .map(|t| (t.clone(), s.key.tags.get(t).unwrap_or("").to_string()))
                    .collect();
                groups.push(Group {
                    group_type,
                    tag_key,
                    series: vec![s],
                });
                last = Some((group_type, range));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use kairosdb_model::{DataType, Points, SeriesKey, Tags};

    use super::*;

    fn series(dt: DataType, id: i64, tags: &[(&str, &str)]) -> SeriesData {
        let points = match dt {
            DataType::String => Points::String {
                ts: vec![id],
                values: vec![String::new()],
            },
            _ => Points::Long {
                ts: vec![id],
                values: vec![0],
            },
        };
        SeriesData::new(
            SeriesKey::new("m", dt, Tags::from_pairs(tags.iter().copied())),
            points,
        )
    }

    /// Group type, tag key, and the ids of its series in order.
    type Shape = (GroupType, Vec<(String, String)>, Vec<i64>);

    fn shape(groups: &[Group]) -> Vec<Shape> {
        groups
            .iter()
            .map(|g| {
                let ids = g.series.iter().map(|s| s.points.timestamps()[0]).collect();
                (g.group_type, g.tag_key.clone(), ids)
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(t, v)| (t.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn groups_by_type_then_ordering_string_keeping_read_order_within_a_group() {
        use DataType::{Double, Long, String};
        let input = vec![
            series(Long, 1, &[("host", "b"), ("dc", "x")]),
            series(String, 2, &[("host", "a"), ("dc", "x")]),
            series(Double, 3, &[("host", "a"), ("dc", "y")]),
            series(Long, 4, &[("host", "b"), ("dc", "x")]),
            series(Long, 5, &[("dc", "x")]),
            series(Long, 6, &[("host", "a"), ("dc", "y")]),
            series(Long, 7, &[("host", "ab"), ("dc", "x")]),
        ];
        let groups = split(input, &["host".into(), "dc".into()]);
        assert_eq!(
            shape(&groups),
            vec![
                // The strings "hostabdcx" < "hostadcy" < "hostbdcx" < "hostdcx" (a
                // missing tag groups as ""): KairosDB's order, not tag by tag.
                (
                    GroupType::Number,
                    pairs(&[("host", "ab"), ("dc", "x")]),
                    vec![7]
                ),
                (
                    GroupType::Number,
                    pairs(&[("host", "a"), ("dc", "y")]),
                    vec![3, 6]
                ),
                (
                    GroupType::Number,
                    pairs(&[("host", "b"), ("dc", "x")]),
                    vec![1, 4]
                ),
                (
                    GroupType::Number,
                    pairs(&[("host", ""), ("dc", "x")]),
                    vec![5]
                ),
                (
                    GroupType::Text,
                    pairs(&[("host", "a"), ("dc", "x")]),
                    vec![2]
                ),
            ]
        );
    }

    #[test]
    fn without_tag_group_bys_one_group_per_type() {
        use DataType::{Double, Long, String};
        let input = vec![
            series(String, 1, &[("host", "a")]),
            series(Double, 2, &[("host", "b")]),
            series(Long, 3, &[("host", "a")]),
        ];
        assert_eq!(
            shape(&split(input, &[])),
            vec![
                (GroupType::Number, vec![], vec![2, 3]),
                (GroupType::Text, vec![], vec![1])
            ]
        );
        assert!(split(Vec::new(), &["host".into()]).is_empty());
    }
}

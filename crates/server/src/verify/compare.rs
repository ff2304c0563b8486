//! The comparison of `kairosdb verify`: pure functions over two KairosDB query responses
//! (`{"queries":[{"sample_size":..,"results":[{"name","group_by","tags","values"}]}]}`)
//! and two metric-name lists, returning the differences found. No I/O here.
//!
//! What counts as equal:
//! * result groups are matched by (name, tags, group_by), whatever their order, and tag
//!   values compare as sets (kairosdb-rs sorts them, KairosDB keeps insertion order: a
//!   deliberate difference in README.md, not a data difference);
//! * points are matched by timestamp; numbers are equal within a relative tolerance, or an
//!   absolute epsilon for values near 0; strings and everything else compare exactly;
//! * an error answer matches an error answer with the same status (the texts may differ),
//!   and a reference's 500 matches a candidate's 400 (KairosDB's 500 for a client's
//!   mistake is a 400 in kairosdb-rs).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// How close two numbers must be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// |a - b| <= relative * max(|a|, |b|) ...
    pub relative: f64,
    /// ... or |a - b| <= absolute (values near 0, where a relative bound means nothing).
    pub absolute: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            relative: 1e-9,
            absolute: 1e-12,
        }
    }
}

impl Tolerance {
    pub fn numbers_match(&self, a: f64, b: f64) -> bool {
        if a == b || (a.is_nan() && b.is_nan()) {
            return true;
        }
        let diff = (a - b).abs();
        diff <= self.absolute || diff <= self.relative * a.abs().max(b.abs())
    }
}

/// What else the comparison may ignore.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    pub tolerance: Tolerance,
    /// Do not compare `sample_size` (the number of raw points read), which depends on how
    /// a backend reads, not on the answer.
    pub ignore_sample_size: bool,
}

/// At most this many point differences are listed per result group; the rest are counted.
pub const MAX_POINT_DIFFS_PER_GROUP: usize = 5;

/// One difference between the reference's answer and the candidate's.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// The HTTP statuses differ (a success against an error, or two different errors).
    Status {
        reference: u16,
        candidate: u16,
        detail: String,
    },
    /// An answer is not a KairosDB query response.
    Malformed {
        side: Side,
        detail: String,
    },
    QueryCount {
        reference: usize,
        candidate: usize,
    },
    SampleSize {
        query: usize,
        reference: Value,
        candidate: Value,
    },
    MissingGroup {
        query: usize,
        group: String,
        points: usize,
    },
    ExtraGroup {
        query: usize,
        group: String,
        points: usize,
    },
    Value {
        query: usize,
        group: String,
        timestamp: i64,
        reference: Value,
        candidate: Value,
    },
    MissingPoint {
        query: usize,
        group: String,
        timestamp: i64,
        value: Value,
    },
    ExtraPoint {
        query: usize,
        group: String,
        timestamp: i64,
        value: Value,
    },
    /// More point differences in a group than are listed.
    MorePoints {
        query: usize,
        group: String,
        count: usize,
    },
    MissingMetricName(String),
    ExtraMetricName(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Reference,
    Candidate,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Reference => "reference",
            Side::Candidate => "candidate",
        })
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Status {
                reference,
                candidate,
                detail,
            } => write!(
                f,
                "status: reference answered {reference}, candidate {candidate}{detail}"
            ),
            Difference::Malformed { side, detail } => {
                write!(f, "{side} answer is not a query response: {detail}")
            }
            Difference::QueryCount {
                reference,
                candidate,
            } => write!(
                f,
                "number of queries: reference {reference}, candidate {candidate}"
            ),
            Difference::SampleSize {
                query,
                reference,
                candidate,
            } => write!(
                f,
                "queries[{query}] sample_size: reference {reference}, candidate {candidate}"
            ),
            Difference::MissingGroup {
                query,
                group,
                points,
            } => write!(
                f,
                "queries[{query}] group {group}: missing from the candidate ({points} points)"
            ),
            Difference::ExtraGroup {
                query,
                group,
                points,
            } => write!(
                f,
                "queries[{query}] group {group}: only in the candidate ({points} points)"
            ),
            Difference::Value {
                query,
                group,
                timestamp,
                reference,
                candidate,
            } => write!(
                f,
                "queries[{query}] group {group} at {timestamp}: reference {reference}, candidate {candidate}"
            ),
            Difference::MissingPoint {
                query,
                group,
                timestamp,
                value,
            } => write!(
                f,
                "queries[{query}] group {group} at {timestamp}: missing from the candidate (reference {value})"
            ),
            Difference::ExtraPoint {
                query,
                group,
                timestamp,
                value,
            } => write!(
                f,
                "queries[{query}] group {group} at {timestamp}: only in the candidate (candidate {value})"
            ),
            Difference::MorePoints {
                query,
                group,
                count,
            } => write!(
                f,
                "queries[{query}] group {group}: {count} more point differences not listed"
            ),
            Difference::MissingMetricName(name) => {
                write!(f, "metric {name:?} is missing from the candidate's names")
            }
            Difference::ExtraMetricName(name) => {
                write!(f, "metric {name:?} is only in the candidate's names")
            }
        }
    }
}

/// Compares two answers to the same query request: `(status, body)` of each side.
pub fn compare_answers(
    reference: (u16, &Value),
    candidate: (u16, &Value),
    options: &Options,
) -> Vec<Difference> {
    let (ref_status, ref_body) = reference;
    let (cand_status, cand_body) = candidate;
    if ref_status != 200 || cand_status != 200 {
        // KairosDB answers some client mistakes with 500 where kairosdb-rs answers 400
        // (README, "Deliberate differences"): the same refusal.
        if ref_status == cand_status || (ref_status, cand_status) == (500, 400) {
            return Vec::new();
        }
        let errors = |side: &str, body: &Value| match body.get("errors") {
            Some(e) => format!("; {side} errors: {e}"),
            None => String::new(),
        };
        return vec![Difference::Status {
            reference: ref_status,
            candidate: cand_status,
            detail: format!(
                "{}{}",
                errors("reference", ref_body),
                errors("candidate", cand_body)
            ),
        }];
    }
    compare_responses(ref_body, cand_body, options)
}

/// Compares two successful query responses.
pub fn compare_responses(
    reference: &Value,
    candidate: &Value,
    options: &Options,
) -> Vec<Difference> {
    let (ref_queries, cand_queries) = match (queries(reference), queries(candidate)) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(detail), _) => {
            return vec![Difference::Malformed {
                side: Side::Reference,
                detail,
            }]
        }
        (_, Err(detail)) => {
            return vec![Difference::Malformed {
                side: Side::Candidate,
                detail,
            }]
        }
    };
    let mut diffs = Vec::new();
    if ref_queries.len() != cand_queries.len() {
        diffs.push(Difference::QueryCount {
            reference: ref_queries.len(),
            candidate: cand_queries.len(),
        });
    }
    for (i, (r, c)) in ref_queries.iter().zip(cand_queries).enumerate() {
        compare_query(i, r, c, options, &mut diffs);
    }
    diffs
}

/// Names in `reference` but not in `candidate` and the other way round (order ignored).
pub fn compare_metric_names(reference: &[String], candidate: &[String]) -> Vec<Difference> {
    let r: std::collections::BTreeSet<&String> = reference.iter().collect();
    let c: std::collections::BTreeSet<&String> = candidate.iter().collect();
    let mut diffs: Vec<Difference> = r
        .difference(&c)
        .map(|n| Difference::MissingMetricName((*n).clone()))
        .collect();
    diffs.extend(
        c.difference(&r)
            .map(|n| Difference::ExtraMetricName((*n).clone())),
    );
    diffs
}

fn queries(body: &Value) -> Result<&Vec<Value>, String> {
    body.get("queries")
        .and_then(Value::as_array)
        .ok_or_else(|| "no \"queries\" array".to_string())
}

fn compare_query(
    index: usize,
    reference: &Value,
    candidate: &Value,
    options: &Options,
    diffs: &mut Vec<Difference>,
) {
    if !options.ignore_sample_size && reference.get("sample_size") != candidate.get("sample_size") {
        diffs.push(Difference::SampleSize {
            query: index,
            reference: reference.get("sample_size").cloned().unwrap_or(Value::Null),
            candidate: candidate.get("sample_size").cloned().unwrap_or(Value::Null),
        });
    }
    let empty = Vec::new();
    let results = |q: &'_ Value| -> Vec<Value> {
        q.get("results")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .clone()
    };
    let mut cand_groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for group in results(candidate) {
        cand_groups
            .entry(group_key(&group))
            .or_default()
            .push(group);
    }
    for group in results(reference) {
        let key = group_key(&group);
        let found = cand_groups.get_mut(&key).and_then(|v| {
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        });
        match found {
            Some(cand) => compare_points(index, &key, &group, &cand, options, diffs),
            None => diffs.push(Difference::MissingGroup {
                query: index,
                group: key,
                points: points(&group).len(),
            }),
        }
    }
    for (key, rest) in cand_groups {
        for group in rest {
            diffs.push(Difference::ExtraGroup {
                query: index,
                group: key.clone(),
                points: points(&group).len(),
            });
        }
    }
}

/// How a result group is named in matching and in the report:
/// `name {tag=[v1,v2]} group_by=[...]`, with object keys and tag values sorted.
pub fn group_key(group: &Value) -> String {
    let name = group.get("name").and_then(Value::as_str).unwrap_or("?");
    let mut key = name.to_string();
    if let Some(tags) = group.get("tags").and_then(Value::as_object) {
        let mut tags: Vec<(&String, Vec<String>)> = tags
            .iter()
            .map(|(k, v)| {
                let mut values: Vec<String> = match v.as_array() {
                    Some(a) => a.iter().map(scalar_text).collect(),
                    None => vec![scalar_text(v)],
                };
                values.sort();
                (k, values)
            })
            .collect();
        tags.sort();
        let tags: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{k}=[{}]", v.join(",")))
            .collect();
        key.push_str(&format!(" {{{}}}", tags.join(", ")));
    }
    if let Some(group_by) = group.get("group_by").and_then(Value::as_array) {
        if !group_by.is_empty() {
            let mut parts: Vec<String> = group_by.iter().map(canonical).collect();
            parts.sort();
            key.push_str(&format!(" group_by=[{}]", parts.join(",")));
        }
    }
    key
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSON text with object keys sorted at every level, whatever serde_json's map order.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// The `[timestamp, value]` pairs of a group, sorted by timestamp (stable, so points with
/// equal timestamps keep their order); pairs without an integer timestamp are skipped.
fn points(group: &Value) -> Vec<(i64, &Value)> {
    let mut points: Vec<(i64, &Value)> = group
        .get("values")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(|pair| {
                    let pair = pair.as_array()?;
                    Some((pair.first()?.as_i64()?, pair.get(1).unwrap_or(&Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default();
    points.sort_by_key(|p| p.0);
    points
}

fn compare_points(
    query: usize,
    key: &str,
    reference: &Value,
    candidate: &Value,
    options: &Options,
    diffs: &mut Vec<Difference>,
) {
    let r = points(reference);
    let c = points(candidate);
    let mut found = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < r.len() || j < c.len() {
        let next = match (r.get(i), c.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                i += 1;
                j += 1;
                if values_match(a.1, b.1, &options.tolerance) {
                    continue;
                }
                Difference::Value {
                    query,
                    group: key.to_string(),
                    timestamp: a.0,
                    reference: a.1.clone(),
                    candidate: b.1.clone(),
                }
            }
            (Some(a), b) if b.is_none_or(|b| a.0 < b.0) => {
                i += 1;
                Difference::MissingPoint {
                    query,
                    group: key.to_string(),
                    timestamp: a.0,
                    value: a.1.clone(),
                }
            }
            (_, Some(b)) => {
                j += 1;
                Difference::ExtraPoint {
                    query,
                    group: key.to_string(),
                    timestamp: b.0,
                    value: b.1.clone(),
                }
            }
            (None, None) => unreachable!("the loop condition"),
            (Some(_), _) => unreachable!("covered by the guard above"),
        };
        found.push(next);
    }
    let more = found.len().saturating_sub(MAX_POINT_DIFFS_PER_GROUP);
    found.truncate(MAX_POINT_DIFFS_PER_GROUP);
    diffs.extend(found);
    if more > 0 {
        diffs.push(Difference::MorePoints {
            query,
            group: key.to_string(),
            count: more,
        });
    }
}

/// Are two point values equal? Numbers within the tolerance (integers exactly when both
/// are integers, so values above 2^53 are not rounded), strings exactly, arrays and objects
/// (e.g. histogram values) element by element.
pub fn values_match(a: &Value, b: &Value, tolerance: &Tolerance) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                // Exact arithmetic: an f64 cannot tell 2^53 from 2^53 + 1.
                let diff = (i128::from(x) - i128::from(y)).unsigned_abs() as f64;
                let max = x.unsigned_abs().max(y.unsigned_abs()) as f64;
                return diff <= tolerance.absolute || diff <= tolerance.relative * max;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => tolerance.numbers_match(x, y),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| values_match(x, y, tolerance))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| values_match(xv, yv, tolerance)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(groups: Value) -> Value {
        json!({"queries": [{"sample_size": 3, "results": groups}]})
    }

    fn two_groups() -> Value {
        response(json!([
            {"name": "cpu", "group_by": [{"name": "tag", "tags": ["host"], "group": {"host": "a"}}],
             "tags": {"host": ["a"], "dc": ["x", "y"]}, "values": [[1000, 1.5], [2000, 2], [3000, "up"]]},
            {"name": "cpu", "group_by": [{"name": "tag", "tags": ["host"], "group": {"host": "b"}}],
             "tags": {"host": ["b"]}, "values": [[1000, 0.0]]}
        ]))
    }

    fn compare(a: &Value, b: &Value) -> Vec<Difference> {
        compare_responses(a, b, &Options::default())
    }

    #[test]
    fn kairosdbs_500_for_a_bad_query_matches_our_400_but_not_the_reverse() {
        let e = json!({"errors": ["Not a JSON Object: [1]"]});
        let o = Options::default();
        assert!(compare_answers((500, &e), (400, &e), &o).is_empty());
        assert_eq!(compare_answers((400, &e), (500, &e), &o).len(), 1);
        assert_eq!(
            compare_answers((200, &two_groups()), (400, &e), &o).len(),
            1
        );
    }

    #[test]
    fn identical_responses_match() {
        assert_eq!(compare(&two_groups(), &two_groups()), vec![]);
    }

    #[test]
    fn a_planted_difference_is_reported_with_group_and_timestamp() {
        let mut candidate = two_groups();
        candidate["queries"][0]["results"][0]["values"][1][1] = json!(2.5);
        let diffs = compare(&two_groups(), &candidate);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(matches!(
            &diffs[0],
            Difference::Value { query: 0, timestamp: 2000, reference, candidate, group }
                if reference == &json!(2) && candidate == &json!(2.5) && group.starts_with("cpu {")
        ));
        let text = diffs[0].to_string();
        assert!(
            text.contains("at 2000") && text.contains("host=[a]"),
            "{text}"
        );
    }

    #[test]
    fn group_and_tag_value_order_are_ignored() {
        let mut candidate = two_groups();
        let results = candidate["queries"][0]["results"].as_array_mut().unwrap();
        results.reverse();
        results[1]["tags"]["dc"] = json!(["y", "x"]);
        assert_eq!(compare(&two_groups(), &candidate), vec![]);
    }

    #[test]
    fn point_order_is_ignored() {
        let mut candidate = two_groups();
        candidate["queries"][0]["results"][0]["values"]
            .as_array_mut()
            .unwrap()
            .reverse();
        assert_eq!(compare(&two_groups(), &candidate), vec![]);
    }

    #[test]
    fn tolerance_is_honoured() {
        let mut candidate = two_groups();
        candidate["queries"][0]["results"][0]["values"][0][1] = json!(1.5 * (1.0 + 1e-12));
        // Near zero the absolute epsilon applies.
        candidate["queries"][0]["results"][1]["values"][0][1] = json!(1e-15);
        assert_eq!(compare(&two_groups(), &candidate), vec![]);

        candidate["queries"][0]["results"][0]["values"][0][1] = json!(1.5 * (1.0 + 1e-6));
        assert_eq!(compare(&two_groups(), &candidate).len(), 1);
        let loose = Options {
            tolerance: Tolerance {
                relative: 1e-5,
                absolute: 1e-12,
            },
            ..Options::default()
        };
        assert_eq!(compare_responses(&two_groups(), &candidate, &loose), vec![]);
    }

    #[test]
    fn strings_compare_exactly_and_types_matter() {
        let mut candidate = two_groups();
        candidate["queries"][0]["results"][0]["values"][2][1] = json!("Up");
        assert_eq!(compare(&two_groups(), &candidate).len(), 1);
        candidate["queries"][0]["results"][0]["values"][2][1] = json!(1);
        assert_eq!(compare(&two_groups(), &candidate).len(), 1);
    }

    #[test]
    fn large_integers_are_not_rounded() {
        let a = json!(9_007_199_254_740_993_i64);
        let b = json!(9_007_199_254_740_992_i64);
        let exact = Tolerance {
            relative: 0.0,
            absolute: 0.0,
        };
        assert!(!values_match(&a, &b, &exact));
        assert!(values_match(&a, &a, &exact));
    }

    #[test]
    fn missing_and_extra_groups_and_points_are_reported() {
        let mut candidate = two_groups();
        candidate["queries"][0]["results"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        candidate["queries"][0]["results"][0]["values"]
            .as_array_mut()
            .unwrap()
            .push(json!([4000, 7]));
        candidate["queries"][0]["results"][0]["values"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        let diffs = compare(&two_groups(), &candidate);
        assert!(
            diffs.iter().any(|d| matches!(d,
                Difference::MissingGroup { group, points: 1, .. } if group.contains("host=[b]"))),
            "{diffs:?}"
        );
        assert!(diffs.iter().any(|d| matches!(
            d,
            Difference::MissingPoint {
                timestamp: 1000,
                ..
            }
        )));
        assert!(diffs.iter().any(|d| matches!(
            d,
            Difference::ExtraPoint {
                timestamp: 4000,
                ..
            }
        )));
        assert_eq!(diffs.len(), 3, "{diffs:?}");

        let diffs = compare(&candidate, &two_groups());
        assert!(diffs
            .iter()
            .any(|d| matches!(d, Difference::ExtraGroup { .. })));
    }

    #[test]
    fn sample_size_is_compared_unless_ignored() {
        let mut candidate = two_groups();
        candidate["queries"][0]["sample_size"] = json!(4);
        assert!(matches!(
            compare(&two_groups(), &candidate).as_slice(),
            [Difference::SampleSize { query: 0, .. }]
        ));
        let options = Options {
            ignore_sample_size: true,
            ..Options::default()
        };
        assert_eq!(
            compare_responses(&two_groups(), &candidate, &options),
            vec![]
        );
    }

    #[test]
    fn point_differences_are_capped_per_group() {
        let many: Vec<Value> = (0..20).map(|t| json!([t, t])).collect();
        let other: Vec<Value> = (0..20).map(|t| json!([t, t + 1])).collect();
        let diffs = compare(
            &response(json!([{"name": "m", "tags": {}, "values": many}])),
            &response(json!([{"name": "m", "tags": {}, "values": other}])),
        );
        assert_eq!(diffs.len(), MAX_POINT_DIFFS_PER_GROUP + 1);
        assert!(matches!(
            diffs.last(),
            Some(Difference::MorePoints { count: 15, .. })
        ));
    }

    #[test]
    fn errors_match_by_status() {
        let err = json!({"errors": ["bad"]});
        let other = json!({"errors": ["worse"]});
        let opts = Options::default();
        assert_eq!(compare_answers((400, &err), (400, &other), &opts), vec![]);
        let diffs = compare_answers((200, &two_groups()), (500, &other), &opts);
        assert!(matches!(
            diffs.as_slice(),
            [Difference::Status { reference: 200, candidate: 500, detail }] if detail.contains("worse")
        ));
    }

    #[test]
    fn malformed_answers_are_reported() {
        let diffs = compare(&two_groups(), &json!({"nope": 1}));
        assert!(matches!(
            diffs.as_slice(),
            [Difference::Malformed {
                side: Side::Candidate,
                ..
            }]
        ));
    }

    #[test]
    fn metric_name_lists_compare_as_sets() {
        let r = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let c = vec!["d".to_string(), "c".to_string(), "a".to_string()];
        assert_eq!(
            compare_metric_names(&r, &c),
            vec![
                Difference::MissingMetricName("b".into()),
                Difference::ExtraMetricName("d".into())
            ]
        );
        assert_eq!(compare_metric_names(&r, &r), vec![]);
    }
}

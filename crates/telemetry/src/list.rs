//! The listing's parameters (`GET /metrics?name=&tag=&from=&to=&limit=&sort=&cursor=`, or
//! the same as one JSON object in `filters=`), its order and its cursor (docs/telemetry.md,
//! "Listing").
//!
//! Records are ordered by time, newest first unless `sort=timestamp`, ties by id; a page
//! ends with a cursor naming its last record, and the next page starts strictly after it,
//! so pages neither repeat nor skip a record while records are added. An unknown or
//! repeated parameter is refused, so a typo is not silently ignored.

use base64::Engine as _;
use serde::Deserialize;

use crate::record::{parse_time, RecordError};

/// Records a page holds unless `limit` says otherwise, and at most.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Where the previous page ended: its last record's time and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = format!("{}:{}", self.timestamp, self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ts, id) = text.split_once(':')?;
        Some(Cursor {
            timestamp: ts.parse().ok()?,
            id: id.to_owned(),
        })
    }

    /// Whether a record at `timestamp` with `id` comes after this cursor in `sort` order.
    pub fn before(&self, sort: Sort, timestamp: i64, id: &str) -> bool {
        let here = (self.timestamp, self.id.as_str());
        match sort {
            Sort::OldestFirst => (timestamp, id) > here,
            Sort::NewestFirst => (timestamp, id) < here,
        }
    }
}

/// A listing request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// The metric (record name); `None`: every metric.
    pub name: Option<String>,
    /// Tags every record must have, as a tag list says them (`name:value` or bare).
    pub tags: Vec<String>,
    /// Inclusive time range, epoch ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: usize,
    pub sort: Sort,
    pub cursor: Option<Cursor>,
}

/// `filters=`: the parameters as one JSON object.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Filters {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    tag: Option<String>,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
    limit: Option<usize>,
    sort: Option<String>,
    cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> RecordError {
    RecordError::Invalid(message.into())
}

impl ListQuery {
    /// From the query string's pairs, in order.
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery, RecordError> {
        let mut f = Filters::default();
        let mut seen = Vec::new();
        for (key, value) in pairs {
            let once = key != "tag";
            if once && seen.contains(&key.as_str()) {
                return Err(invalid(format!("parameter {key} is given twice")));
            }
            seen.push(key.as_str());
            match key.as_str() {
                "name" => f.name = Some(value.clone()),
                "tag" => f.tags.push(value.clone()),
                "from" => f.from = Some(serde_json::Value::String(value.clone())),
                "to" => f.to = Some(serde_json::Value::String(value.clone())),
                "limit" => {
                    f.limit = Some(value.parse().map_err(|_| {
                        invalid(format!("limit {value:?}: expected a whole number"))
                    })?)
                }
                "sort" => f.sort = Some(value.clone()),
                "cursor" => f.cursor = Some(value.clone()),
                "filters" => {
                    let given: Filters = serde_json::from_str(value)
                        .map_err(|e| invalid(format!("filters: {e}")))?;
                    merge(&mut f, given)?;
                }
                other => {
                    return Err(invalid(format!(
                        "unknown parameter {other:?}: the listing takes name, tag, from, to, \
                         limit, sort, cursor and filters"
                    )))
                }
            }
        }
        ListQuery::from_filters(f)
    }

    fn from_filters(f: Filters) -> Result<ListQuery, RecordError> {
        let time = |v: Option<serde_json::Value>| -> Result<Option<i64>, RecordError> {
            v.map(|v| match v {
                serde_json::Value::String(s) => parse_time(&s),
                other => crate::record::timestamp_of(&other),
            })
            .transpose()
        };
        let (from, to) = (time(f.from)?, time(f.to)?);
        if let (Some(a), Some(b)) = (from, to) {
            if a > b {
                return Err(invalid(format!("from {a} is after to {b}")));
            }
        }
        let limit = f.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(invalid(format!("limit {limit}: between 1 and {MAX_LIMIT}")));
        }
        let sort = match f.sort.as_deref() {
            None | Some("-timestamp") | Some("desc") | Some("newest") => Sort::NewestFirst,
            Some("timestamp") | Some("asc") | Some("oldest") => Sort::OldestFirst,
            Some(other) => {
                return Err(invalid(format!(
                    "sort {other:?}: -timestamp (newest first, the default) or timestamp"
                )))
            }
        };
        let cursor = f
            .cursor
            .map(|c| {
                Cursor::decode(&c).ok_or_else(|| invalid(format!("cursor {c:?}: not one of ours")))
            })
            .transpose()?;
        let mut tags = f.tags;
        tags.extend(f.tag);
        crate::record::tags_of(&tags)?;
        if f.name.as_deref() == Some("") {
            return Err(invalid("name must not be empty"));
        }
        Ok(ListQuery {
            name: f.name,
            tags,
            from,
            to,
            limit,
            sort,
            cursor,
        })
    }
}

/// `filters=` beside single parameters: a field given both ways is refused.
fn merge(into: &mut Filters, given: Filters) -> Result<(), RecordError> {
    fn one<T>(slot: &mut Option<T>, v: Option<T>, name: &str) -> Result<(), RecordError> {
        match (slot.is_some(), v) {
            (true, Some(_)) => Err(invalid(format!("{name} is given twice"))),
            (_, Some(v)) => {
                *slot = Some(v);
                Ok(())
            }
            _ => Ok(()),
        }
    }
    one(&mut into.name, given.name, "name")?;
    one(&mut into.from, given.from, "from")?;
    one(&mut into.to, given.to, "to")?;
    one(&mut into.limit, given.limit, "limit")?;
    one(&mut into.sort, given.sort, "sort")?;
    one(&mut into.cursor, given.cursor, "cursor")?;
    into.tags.extend(given.tags);
    into.tags.extend(given.tag);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ListQuery, RecordError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListQuery::parse(&pairs)
    }

    #[test]
    fn the_defaults_are_newest_first_a_hundred_at_a_time() {
        let q = parse(&[]).unwrap();
        assert_eq!(
            (q.limit, q.sort, q.name, q.cursor),
            (100, Sort::NewestFirst, None, None)
        );
    }

    #[test]
    fn parameters_and_the_filters_object_say_the_same() {
        let by_params = parse(&[
            ("name", "cpu"),
            ("tag", "env:prod"),
            ("tag", "web"),
            ("from", "2024-05-01T00:00:00Z"),
            ("to", "1714608000000"),
            ("limit", "5"),
            ("sort", "timestamp"),
        ])
        .unwrap();
        let json = r#"{"name":"cpu","tags":["env:prod","web"],"from":"2024-05-01T00:00:00Z","to":1714608000000,"limit":5,"sort":"timestamp"}"#;
        assert_eq!(parse(&[("filters", json)]).unwrap(), by_params);
        assert_eq!(by_params.from, Some(1_714_521_600_000));
    }

    #[test]
    fn bad_parameters_are_refused_with_their_name() {
        for (q, says) in [
            (&[("limt", "5")][..], "unknown parameter"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "x")], "limit"),
            (&[("sort", "value")], "sort"),
            (&[("from", "10"), ("to", "5")], "after"),
            (&[("name", "a"), ("name", "b")], "twice"),
            (&[("name", "a"), ("filters", r#"{"name":"b"}"#)], "twice"),
            (&[("filters", r#"{"nam":"b"}"#)], "filters"),
            (&[("cursor", "nope!")], "cursor"),
            (&[("tag", "a:")], "tag"),
            (&[("from", "last tuesday")], "time"),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains(says), "{q:?}: {e}");
        }
    }

    #[test]
    fn a_cursor_names_a_position_and_pages_go_strictly_after_it() {
        let c = Cursor {
            timestamp: 10,
            id: "AQ-x_".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert!(c.before(Sort::NewestFirst, 9, "zzz"));
        assert!(c.before(Sort::NewestFirst, 10, "AQ-x"));
        assert!(!c.before(Sort::NewestFirst, 10, "AQ-x_"));
        assert!(c.before(Sort::OldestFirst, 10, "AQ-x_a"));
        assert!(!c.before(Sort::OldestFirst, 9, "zzz"));
    }
}

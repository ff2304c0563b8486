//! A record is a data point (docs/telemetry.md, "Records are points"): `name` is the
//! metric, the tag list maps onto KairosDB tags, `value` is a double, `timestamp` the
//! point's time. So the KairosDB API reads what the telemetry API writes, and the other way
//! round.
//!
//! The tag list: `"name:value"` or `"name=value"` is that tag; a bare `"word"` is the tag
//! `word` with the value `true`, and a tag whose value is `true` is listed back bare. Tags
//! come back sorted by name (a series' tags are a set).

use std::collections::BTreeMap;

use kairosdb_model::{SeriesKey, Tags};
use serde::{Deserialize, Serialize};

/// The value a bare tag stands for.
pub const FLAG: &str = "true";

/// A record as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub value: f64,
    /// Epoch milliseconds.
    pub timestamp: i64,
}

/// A record as a client sends it (`POST`, and `PUT` with every field optional).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub value: Option<f64>,
    /// Epoch milliseconds, or an RFC 3339 string with an offset.
    pub timestamp: Option<serde_json::Value>,
}

/// Why a record cannot be stored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> RecordError {
    RecordError::Invalid(message.into())
}

/// The KairosDB tags of a tag list.
pub fn tags_of(list: &[String]) -> Result<Tags, RecordError> {
    let mut tags = BTreeMap::new();
    for item in list {
        let (name, value) = match item.find([':', '=']) {
            Some(at) => (&item[..at], &item[at + 1..]),
            None => (item.as_str(), FLAG),
        };
        if name.is_empty() || value.is_empty() {
            return Err(invalid(format!(
                "tag {item:?}: expected \"name:value\" or a bare word, neither part empty"
            )));
        }
        if tags.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(invalid(format!("tag {name:?} is given twice")));
        }
    }
    Ok(Tags::from_pairs(tags))
}

/// The tag list of KairosDB tags (sorted by name; `true` values bare).
pub fn list_of(tags: &Tags) -> Vec<String> {
    tags.iter()
        .map(|(name, value)| match value {
            FLAG => name.to_owned(),
            _ => format!("{name}:{value}"),
        })
        .collect()
}

/// A timestamp as a client sends it: epoch milliseconds or RFC 3339 with an offset.
pub fn timestamp_of(value: &serde_json::Value) -> Result<i64, RecordError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| invalid(format!("timestamp {n}: expected whole epoch milliseconds"))),
        serde_json::Value::String(s) => parse_time(s),
        other => Err(invalid(format!(
            "timestamp {other}: expected epoch milliseconds or an RFC 3339 time"
        ))),
    }
}

/// Epoch milliseconds or RFC 3339 (`2024-05-01T12:00:00Z`, `...+02:00`) as epoch ms.
pub fn parse_time(s: &str) -> Result<i64, RecordError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            invalid(format!(
                "time {s:?}: expected epoch milliseconds or RFC 3339 with an offset ({e})"
            ))
        })
}

/// A new record's series and point: every field is required.
pub fn new_point(input: &RecordInput) -> Result<(SeriesKey, i64, f64), RecordError> {
    let name = input
        .name
        .as_deref()
        .ok_or_else(|| invalid("name is required"))?;
    let value = input.value.ok_or_else(|| invalid("value is required"))?;
    let timestamp = input
        .timestamp
        .as_ref()
        .ok_or_else(|| invalid("timestamp is required"))?;
    let tags = tags_of(input.tags.as_deref().unwrap_or_default())?;
    point(name, tags, timestamp_of(timestamp)?, value)
}

/// The series and point of `name`, `tags`, `timestamp` and `value`, checked.
pub fn point(
    name: &str,
    tags: Tags,
    timestamp: i64,
    value: f64,
) -> Result<(SeriesKey, i64, f64), RecordError> {
    if name.trim().is_empty() {
        return Err(invalid("name must not be empty"));
    }
    if !value.is_finite() {
        return Err(invalid(format!("value {value}: must be a finite number")));
    }
    if timestamp < 0 {
        return Err(invalid(format!("timestamp {timestamp}: before 1970")));
    }
    let key = SeriesKey::new(name, kairosdb_model::DataType::Double, tags);
    Ok((key, timestamp, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_tag_list_maps_onto_tags_and_back_sorted_with_flags_bare() {
        let tags = tags_of(&list(&["web", "env:prod", "region=eu"])).unwrap();
        assert_eq!(tags.get("env"), Some("prod"));
        assert_eq!(tags.get("region"), Some("eu"));
        assert_eq!(tags.get("web"), Some(FLAG));
        assert_eq!(list_of(&tags), ["env:prod", "region:eu", "web"]);
    }

    #[test]
    fn a_tag_value_may_hold_colons_after_the_first() {
        let tags = tags_of(&list(&["url:http://a:80/x"])).unwrap();
        assert_eq!(tags.get("url"), Some("http://a:80/x"));
    }

    #[test]
    fn empty_parts_and_repeated_names_are_refused() {
        for bad in [&[":x"][..], &["x:"], &[""], &["a:1", "a:2"], &["a", "a"]] {
            assert!(tags_of(&list(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_are_epoch_ms_or_rfc3339() {
        assert_eq!(
            timestamp_of(&serde_json::json!(1_714_564_800_000i64)),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            timestamp_of(&serde_json::json!("2024-05-01T14:00:00+02:00")),
            Ok(1_714_564_800_000)
        );
        assert!(timestamp_of(&serde_json::json!("yesterday")).is_err());
        assert!(timestamp_of(&serde_json::json!(1.5)).is_err());
        assert!(timestamp_of(&serde_json::json!(null)).is_err());
    }

    #[test]
    fn a_new_record_needs_every_field_and_a_finite_value() {
        let good = RecordInput {
            name: Some("cpu".into()),
            tags: Some(list(&["host:a"])),
            value: Some(1.5),
            timestamp: Some(serde_json::json!(10)),
        };
        let (key, ts, v) = new_point(&good).unwrap();
        assert_eq!((key.metric.as_str(), ts, v), ("cpu", 10, 1.5));
        for broken in [
            RecordInput {
                name: None,
                ..good.clone()
            },
            RecordInput {
                value: None,
                ..good.clone()
            },
            RecordInput {
                timestamp: None,
                ..good.clone()
            },
            RecordInput {
                value: Some(f64::NAN),
                ..good.clone()
            },
            RecordInput {
                name: Some(" ".into()),
                ..good.clone()
            },
            RecordInput {
                timestamp: Some(serde_json::json!(-1)),
                ..good.clone()
            },
        ] {
            assert!(new_point(&broken).is_err(), "{broken:?}");
        }
        // No tags is allowed: the record is a tagless point.
        let bare = RecordInput { tags: None, ..good };
        assert!(new_point(&bare).unwrap().0.tags.is_empty());
    }
}

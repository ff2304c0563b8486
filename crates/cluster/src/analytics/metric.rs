//! A plan metric, `{key, value, timestamp, tags}`: one point of a KairosDB series (metric
//! name = `key`, tags = `tags`, a double value), in the two forms the plan's ingest takes.
//!
//! * JSON: `timestamp` is epoch milliseconds (an integer) or an RFC 3339 / ISO 8601
//!   string with an offset (`2024-05-01T12:00:00Z`); `tags` may be left out.
//! * bincode ([`PlanMetric`], `codec.rs`): `timestamp` is epoch milliseconds.
//!
//! [`to_batch`] checks a list of them as KairosDB's ingest would (a non-empty key, at least
//! one tag, no empty tag name or value) plus a finite value, and builds the `WriteBatch`
//! the node's storage writes. Not here: reading bodies, answering (the server's `plan`).

use std::collections::BTreeMap;

use kairosdb_model::{BatchBuilder, DataType, WriteBatch};
use serde::{Deserialize, Serialize};

use super::params::parse_time;

/// A plan metric; also its bincode layout (field order included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanMetric {
    pub key: String,
    pub value: f64,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub tags: BTreeMap<String, String>,
}

/// A plan metric as JSON writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonMetric {
    key: String,
    value: f64,
    timestamp: When,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum When {
    Millis(i64),
    Text(String),
    Other(serde_json::Value),
}

impl JsonMetric {
    fn resolve(self) -> Result<PlanMetric, String> {
        let timestamp = match self.timestamp {
            When::Millis(ms) => ms,
            When::Text(text) => parse_time(&text)?,
            When::Other(v) => {
                return Err(format!(
                "timestamp {v} is neither epoch milliseconds (an integer) nor an RFC 3339 string"
            ))
            }
        };
        Ok(PlanMetric {
            key: self.key,
            value: self.value,
            timestamp,
            tags: self.tags,
        })
    }
}

/// One JSON metric (`POST /metrics`); `Err` is the reason, for an `INVALID_REQUEST`.
pub fn parse_json_one(body: &[u8]) -> Result<PlanMetric, String> {
    serde_json::from_slice::<JsonMetric>(body)
        .map_err(|e| format!("invalid metric JSON: {e}"))?
        .resolve()
}

/// A JSON array of metrics (`POST /insert`); `Err` is the reason, for an `INVALID_REQUEST`.
pub fn parse_json_batch(body: &[u8]) -> Result<Vec<PlanMetric>, String> {
    let metrics: Vec<JsonMetric> = serde_json::from_slice(body)
        .map_err(|e| format!("invalid JSON: expected an array of metrics: {e}"))?;
    metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.resolve().map_err(|e| format!("metric {i}: {e}")))
        .collect()
}

/// Why a metric cannot be stored, or `None` when it can.
pub fn problem(m: &PlanMetric) -> Option<String> {
    if m.key.is_empty() {
        return Some("key may not be empty".into());
    }
    if !m.value.is_finite() {
        return Some(format!("value {} is not a finite number", m.value));
    }
    // KairosDB's ingest rule: a series has at least one tag, so what is written here
    // exports and imports through KairosDB's own ingest unchanged.
    if m.tags.is_empty() {
        return Some("tags must hold at least one tag (a KairosDB series has one)".into());
    }
    if let Some((name, _)) = m.tags.iter().find(|(k, v)| k.is_empty() || v.is_empty()) {
        return Some(format!("tag {name:?} has an empty name or value"));
    }
    None
}

/// The batch of `metrics`, or every problem as `(index, reason)` (nothing is written
/// unless every metric can be). TTL 0: the store's `default_ttl_secs` applies, as to
/// KairosDB ingest without a `ttl`.
pub fn to_batch(metrics: &[PlanMetric]) -> Result<WriteBatch, Vec<(usize, String)>> {
    let problems: Vec<(usize, String)> = metrics
        .iter()
        .enumerate()
        .filter_map(|(i, m)| problem(m).map(|p| (i, p)))
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut builder = BatchBuilder::new();
    for m in metrics {
        let tags: Vec<(&str, &str)> = m.tags.iter().map(|(k, v)| (&**k, &**v)).collect();
        let slot = builder.slot_sorted(&m.key, DataType::Double, &tags, 0);
        builder.push_double(slot, m.timestamp, m.value);
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use kairosdb_model::{Points, Tags};

    use super::*;

    fn metric(key: &str, value: f64, timestamp: i64, tags: &[(&str, &str)]) -> PlanMetric {
        PlanMetric {
            key: key.into(),
            value,
            timestamp,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn json_timestamps_are_epoch_milliseconds_or_rfc_3339() {
        let body = br#"[{"key":"cpu","value":1,"timestamp":1700000000000,"tags":{"host":"a"}},
                        {"key":"cpu","value":2.5,"timestamp":"2023-11-14T22:13:20Z","tags":{"host":"a"}},
                        {"key":"cpu","value":3,"timestamp":"2023-11-14T23:13:20.5+01:00"}]"#;
        let got = parse_json_batch(body).unwrap();
        assert_eq!(
            got[0],
            metric("cpu", 1.0, 1_700_000_000_000, &[("host", "a")])
        );
        assert_eq!(got[1].timestamp, 1_700_000_000_000);
        assert_eq!(got[2].timestamp, 1_700_000_000_500);
        assert!(got[2].tags.is_empty());
    }

    #[test]
    fn unreadable_json_says_why() {
        for (body, needle) in [
            (&br#"{"key":"cpu"}"#[..], "expected an array"),
            (
                br#"[{"key":"c","value":1,"timestamp":1.5,"tags":{}}]"#,
                "neither epoch",
            ),
            (
                br#"[{"key":"c","value":1,"timestamp":"yesterday"}]"#,
                "yesterday",
            ),
            (
                br#"[{"key":"c","value":"1","timestamp":1}]"#,
                "invalid JSON",
            ),
            (
                br#"[{"key":"c","value":1,"timestamp":1,"tag":{}}]"#,
                "unknown field",
            ),
        ] {
            let e = parse_json_batch(body).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        assert!(parse_json_one(br#"{"key":"c","value":1}"#)
            .unwrap_err()
            .contains("timestamp"));
    }

    #[test]
    fn a_batch_is_one_double_series_per_key_and_tags() {
        let batch = to_batch(&[
            metric("cpu", 1.0, 10, &[("host", "a")]),
            metric("cpu", 2.0, 20, &[("host", "a")]),
            metric("cpu", 3.0, 10, &[("host", "b")]),
        ])
        .unwrap();
        assert_eq!(batch.series.len(), 2);
        let a = &batch.series[0];
        assert_eq!(a.key.metric, "cpu");
        assert_eq!(a.key.tags, Tags::from_pairs([("host", "a")]));
        assert_eq!(
            a.points,
            Points::Double {
                ts: vec![10, 20],
                values: vec![1.0, 2.0]
            }
        );
    }

    #[test]
    fn every_bad_metric_is_reported_and_nothing_is_built() {
        let problems = to_batch(&[
            metric("", 1.0, 1, &[("host", "a")]),
            metric("ok", 1.0, 1, &[("host", "a")]),
            metric("nan", f64::NAN, 1, &[("host", "a")]),
            metric("untagged", 1.0, 1, &[]),
            metric("empty", 1.0, 1, &[("host", "")]),
        ])
        .unwrap_err();
        let indexes: Vec<usize> = problems.iter().map(|p| p.0).collect();
        assert_eq!(indexes, [0, 2, 3, 4], "{problems:?}");
    }
}

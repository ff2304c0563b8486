//! Roll-up task JSON (spec §1.14, §13.1): a `POST/PUT /api/v1/rollups` body → [`RollupTask`],
//! with KairosDB's validation texts (`QueryParser.parseRollupTask`), and the stored form
//! of a task (the submitted JSON, compact, with `"id":"<uuid>",` right after the first `{`).
//!
//! Not here: running tasks, their schedule or their storage (`server/src/rollup/`).
//!
//! Each roll-up's `query` is parsed exactly like a query body ([`crate::query`]), and its
//! messages get the roll-up's context: `rollup[0].query.metric[0].start_time relative or
//! absolute time must be set`. Every query metric needs a range aggregator; its LAST range
//! aggregator's sampling is the roll-up's period.
//!
//! Deviations from KairosDB, and why:
//! * KairosDB concatenates the context of every roll-up onto the previous one
//!   (`rollup[0].query[0]rollup[1]...`); we name each roll-up on its own (`rollup[1]...`).
//! * `execution_interval` needs a positive `value` and a `unit`: KairosDB accepts 0 or no
//!   unit and then fails when it schedules the task.
//! * A `time_zone` must be a zone the query parser knows; KairosDB fails later.
//! * A body whose `id` member differs from the path's id on PUT keeps the path's id (KairosDB
//!   rewrites the JSON with a regular expression that leaves the old id in place).

use kairosdb_model::catalogue::{AggregatorSpec, Sampling};
use kairosdb_model::{QueryRequest, TimeUnit};

use crate::javanum;
use crate::lenient::{self, Node};
use crate::query::{parse_query_request, QueryError};

/// One validated task.
#[derive(Clone, Debug)]
pub struct RollupTask {
    pub name: String,
    pub execution_interval: Sampling,
    pub rollups: Vec<Rollup>,
    /// The submitted JSON, compact, without an `id` member (see [`RollupTask::stored_json`]).
    pub json: String,
}

/// One `rollups[]` element: the query whose results are saved as `save_as`.
#[derive(Clone, Debug)]
pub struct Rollup {
    pub save_as: String,
    /// IANA id or fixed offset; `None` = UTC.
    pub time_zone: Option<String>,
    pub query: QueryRequest,
}

impl Rollup {
    /// The sampling of the last range aggregator of query metric `k`: the roll-up period.
    pub fn period(&self, k: usize) -> Sampling {
        self.query.metrics[k]
            .aggregators
            .iter()
            .rev()
            .find_map(|a| match a {
                AggregatorSpec::Range(r) => Some(r.sampling),
                _ => None,
            })
            .expect("BUG: a parsed roll-up query metric has a range aggregator")
    }
}

impl RollupTask {
    /// The task as stored and listed: `{"id":"<id>",` + the rest of the submitted JSON.
    pub fn stored_json(&self, id: &str) -> String {
        let rest = self.json.strip_prefix('{').unwrap_or(&self.json);
        let comma = if rest.starts_with('}') { "" } else { "," };
        format!("{{\"id\":{}{comma}{rest}", serde_json::Value::from(id))
    }
}

/// Parses a task body; `now_ms` resolves the queries' relative times (validated, unused
/// when the task runs). `Err` is KairosDB's 400 (or 500) text.
pub fn parse_rollup_task(body: &[u8], now_ms: i64) -> Result<RollupTask, QueryError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(QueryError::Failed("Roll-up task body is empty".into()));
    }
    let root = lenient::parse(&text, 256)
        .map_err(|e| QueryError::Invalid(format!("com.google.gson.JsonSyntaxException: {e}")))?;
    let Node::Object(members) = &root else {
        return Err(QueryError::Failed(format!(
            "Not a JSON Object: {}",
            root.to_json()
        )));
    };
    let name = match root.get("name") {
        None | Some(Node::Null) => return Err(invalid("name may not be null")),
        Some(n) => string(n, "name")?,
    };
    if name.is_empty() {
        return Err(invalid("name may not be empty"));
    }
    let execution_interval = match root.get("execution_interval") {
        None | Some(Node::Null) => return Err(invalid("executionInterval may not be null")),
        Some(n) => interval(n)?,
    };
    let mut rollups = Vec::new();
    if let Some(list) = root.get("rollups") {
        let Node::Array(items) = list else {
            return Err(invalid("rollups must be an array"));
        };
        for (j, item) in items.iter().enumerate() {
            rollups.push(rollup(item, j, now_ms)?);
        }
    }
    // The stored JSON never carries a stale id: it is put back in front by `stored_json`.
    let kept: Vec<(String, Node)> = members.iter().filter(|(k, _)| k != "id").cloned().collect();
    Ok(RollupTask {
        name,
        execution_interval,
        rollups,
        json: Node::Object(kept).to_json(),
    })
}

fn invalid(message: &str) -> QueryError {
    QueryError::Invalid(message.to_owned())
}

fn string(n: &Node, what: &str) -> Result<String, QueryError> {
    match n {
        Node::Str(s) => Ok(s.clone()),
        Node::Number(s) => Ok(s.clone()),
        Node::Bool(b) => Ok(b.to_string()),
        _ => Err(QueryError::Invalid(format!("{what} must be a string"))),
    }
}

/// `{"value": n, "unit": "hours"}`.
fn interval(n: &Node) -> Result<Sampling, QueryError> {
    // Gson's `nextLong` (KairosDB's `Duration.value` is a long): `1.0` and `"2"` are whole
    // numbers too. (`1.0` was refused here until schemathesis sent one, issue 22.)
    let value = match n.get("value") {
        Some(Node::Number(s)) => javanum::gson_long_from_number(s),
        Some(Node::Str(s)) => javanum::gson_long_from_text(s.trim()),
        _ => None,
    };
    let Some(value) = value.filter(|v| *v >= 1) else {
        return Err(invalid(
            "executionInterval.value must be a whole number greater than or equal to 1",
        ));
    };
    let unit = match n.get("unit") {
        None | Some(Node::Null) => return Err(invalid("executionInterval.unit may not be null")),
        Some(u) => string(u, "executionInterval.unit")?,
    };
    let unit = TimeUnit::parse(&unit).ok_or_else(|| {
        QueryError::Invalid(format!(
            "executionInterval.unit {unit} is not a valid time unit, must be one of \
             MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"
        ))
    })?;
    Ok(Sampling { value, unit })
}

/// `rollups[j]`: `save_as`, `time_zone` and the query, with the `rollup[j]` context.
fn rollup(item: &Node, j: usize, now_ms: i64) -> Result<Rollup, QueryError> {
    let ctx = format!("rollup[{j}]");
    if !matches!(item, Node::Object(_)) {
        return Err(QueryError::Invalid(format!("{ctx} must be an object")));
    }
    let save_as = match item.get("save_as") {
        None | Some(Node::Null) => String::new(),
        Some(n) => string(n, &format!("{ctx}.saveAs"))?,
    };
    if save_as.is_empty() {
        return Err(QueryError::Invalid(format!(
            "{ctx}.saveAs may not be empty"
        )));
    }
    let time_zone = match item.get("time_zone") {
        None | Some(Node::Null) => None,
        Some(n) => Some(string(n, &format!("{ctx}.timeZone"))?).filter(|z| !z.is_empty()),
    };
    let Some(query) = item.get("query").filter(|q| matches!(q, Node::Object(_))) else {
        return Err(QueryError::Invalid(format!("{ctx}.query may not be null")));
    };
    let mut query = parse_query_request(query.to_json().as_bytes(), now_ms)
        .map_err(|e| with_context(&ctx, e))?;
    if let Some(tz) = &time_zone {
        // The roll-up's zone aligns its periods (KairosDB sets it on the last range
        // aggregator); validated like a query's `time_zone`.
        let probe = format!(
            "{{\"time_zone\":{},\"metrics\":[]}}",
            serde_json::Value::from(tz.as_str())
        );
        if let Err(QueryError::Invalid(m)) = parse_query_request(probe.as_bytes(), now_ms) {
            if !m.starts_with("query.metric[]") {
                return Err(with_context(&ctx, QueryError::Invalid(m)));
            }
        }
        query.time_zone = Some(tz.clone());
    }
    for (k, metric) in query.metrics.iter().enumerate() {
        if !metric
            .aggregators
            .iter()
            .any(|a| matches!(a, AggregatorSpec::Range(_)))
        {
            return Err(QueryError::Invalid(format!(
                "{ctx}.query[{k}].aggregator At least one aggregator must be a range aggregator"
            )));
        }
    }
    Ok(Rollup {
        save_as,
        time_zone,
        query,
    })
}

/// `query.metric[0]...` → `rollup[0].query.metric[0]...`.
fn with_context(ctx: &str, e: QueryError) -> QueryError {
    let prefix = |m: &str| {
        if m.starts_with("query.") {
            format!("{ctx}.{m}")
        } else {
            format!("{ctx}.query {m}")
        }
    };
    match e {
        QueryError::Invalid(m) => QueryError::Invalid(prefix(&m)),
        QueryError::Failed(m) => QueryError::Failed(prefix(&m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn task(rollups: &str) -> String {
        format!(
            r#"{{"name":"MyRollup","execution_interval":{{"value":1,"unit":"hours"}},"rollups":{rollups}}}"#
        )
    }

    const QUERY: &str = r#"{"start_relative":{"value":1,"unit":"hours"},"metrics":[{"name":"cpu","tags":{"host":["a"]},"aggregators":[{"name":"sum","sampling":{"value":10,"unit":"minutes"}}]}]}"#;

    fn error(body: &str) -> String {
        parse_rollup_task(body.as_bytes(), NOW)
            .unwrap_err()
            .message()
            .to_owned()
    }

    /// Gson reads a long from `5482.0` and `"2"` (issue 22: schemathesis sent `5482.0`).
    #[test]
    fn the_execution_interval_is_read_as_gson_reads_a_long() {
        for (value, expected) in [("5482.0", 5482), ("\"2\"", 2), ("3", 3), ("1e1", 10)] {
            let body =
                format!(r#"{{"name":"r","execution_interval":{{"value":{value},"unit":"days"}}}}"#);
            let t = parse_rollup_task(body.as_bytes(), NOW).unwrap();
            assert_eq!(t.execution_interval.value, expected, "{value}");
        }
        for value in ["1.5", "0", "-1", "\"x\""] {
            let body =
                format!(r#"{{"name":"r","execution_interval":{{"value":{value},"unit":"days"}}}}"#);
            assert_eq!(
                error(&body),
                "executionInterval.value must be a whole number greater than or equal to 1",
                "{value}"
            );
        }
    }

    #[test]
    fn a_valid_task_parses_with_its_period_and_keeps_its_json() {
        let body = task(&format!(
            r#"[{{"save_as":"cpu.10m","time_zone":"Europe/Paris","query":{QUERY}}}]"#
        ));
        let t = parse_rollup_task(body.as_bytes(), NOW).unwrap();
        assert_eq!(t.name, "MyRollup");
        assert_eq!(
            t.execution_interval,
            Sampling {
                value: 1,
                unit: TimeUnit::Hours
            }
        );
        assert_eq!(t.rollups[0].save_as, "cpu.10m");
        assert_eq!(
            t.rollups[0].period(0),
            Sampling {
                value: 10,
                unit: TimeUnit::Minutes
            }
        );
        assert_eq!(
            t.rollups[0].query.time_zone.as_deref(),
            Some("Europe/Paris")
        );
        let stored = t.stored_json("abc");
        assert!(
            stored.starts_with(r#"{"id":"abc","name":"MyRollup","execution_interval""#),
            "{stored}"
        );
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["rollups"][0]["query"]["metrics"][0]["name"], "cpu");
    }

    #[test]
    fn an_id_in_the_body_is_replaced_not_doubled() {
        let body = r#"{"id":"old","name":"n","execution_interval":{"value":1,"unit":"minutes"},"rollups":[]}"#;
        let t = parse_rollup_task(body.as_bytes(), NOW).unwrap();
        assert_eq!(
            t.stored_json("new"),
            r#"{"id":"new","name":"n","execution_interval":{"value":1,"unit":"minutes"},"rollups":[]}"#
        );
    }

    #[test]
    fn validation_messages_are_kairosdbs() {
        assert_eq!(
            error(r#"{"name":"","execution_interval":{"value":1,"unit":"hours"}}"#),
            "name may not be empty"
        );
        assert_eq!(
            error(r#"{"execution_interval":{"value":1,"unit":"hours"}}"#),
            "name may not be null"
        );
        assert_eq!(
            error(r#"{"name":"x"}"#),
            "executionInterval may not be null"
        );
        assert_eq!(
            error(&task(&format!(r#"[{{"save_as":"","query":{QUERY}}}]"#))),
            "rollup[0].saveAs may not be empty"
        );
        let no_start = r#"{"metrics":[{"name":"cpu","aggregators":[{"name":"sum","sampling":{"value":1,"unit":"minutes"}}]}]}"#;
        assert_eq!(
            error(&task(&format!(r#"[{{"save_as":"x","query":{no_start}}}]"#))),
            "rollup[0].query.metric[0].start_time relative or absolute time must be set"
        );
        let no_range = r#"{"start_absolute":0,"metrics":[{"name":"cpu","aggregators":[{"name":"div","divisor":2}]}]}"#;
        assert_eq!(
            error(&task(&format!(r#"[{{"save_as":"x","query":{no_range}}}]"#))),
            "rollup[0].query[0].aggregator At least one aggregator must be a range aggregator"
        );
    }

    #[test]
    fn the_second_rollup_is_named_on_its_own() {
        let rollups =
            format!(r#"[{{"save_as":"a","query":{QUERY}}},{{"save_as":"","query":{QUERY}}}]"#);
        assert_eq!(error(&task(&rollups)), "rollup[1].saveAs may not be empty");
    }

    #[test]
    fn bad_intervals_and_zones_are_refused_up_front() {
        let zero = r#"{"name":"x","execution_interval":{"value":0,"unit":"hours"}}"#;
        assert!(error(zero).contains("greater than or equal to 1"));
        let no_unit = r#"{"name":"x","execution_interval":{"value":1}}"#;
        assert_eq!(error(no_unit), "executionInterval.unit may not be null");
        let zone = task(&format!(
            r#"[{{"save_as":"a","time_zone":"Mars/Olympus","query":{QUERY}}}]"#
        ));
        assert!(error(&zone).starts_with("rollup[0]."), "{}", error(&zone));
    }

    #[test]
    fn bodies_that_are_not_objects_fail() {
        assert!(matches!(
            parse_rollup_task(b"", NOW),
            Err(QueryError::Failed(_))
        ));
        assert!(matches!(
            parse_rollup_task(b"[]", NOW),
            Err(QueryError::Failed(_))
        ));
        assert!(matches!(
            parse_rollup_task(b"{", NOW),
            Err(QueryError::Invalid(_))
        ));
    }
}

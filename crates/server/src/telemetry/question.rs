//! `GET /query?prompt=...` (docs/telemetry.md, "Questions"): the prompt read by
//! `kairosdb_telemetry::prompt` against the store's real metric and tag names, then run:
//!
//! * one metric with an aggregate: the KairosDB query the interpretation shows, through
//!   the query engine, one row per group, ranked and cut by the prompt's order and size;
//! * one metric, no aggregate: its records (newest first, or by value when ranked);
//! * every metric (`top 5 events today`): the records of each metric counted.
//!
//! The answer shows how the prompt was understood next to the rows; a prompt that cannot
//! be read is a 400 with suggestions, never a guess.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use kairosdb_model::{OutColumn, Read, SeriesQuery, Storage, TagFilter, TagMatcher, TimeRange};
use kairosdb_telemetry::prompt::{Aggregate, Context, Interpretation, Interpreter, Rules};
use kairosdb_telemetry::RecordId;
use serde_json::{json, Value};

use super::Telemetry;
use crate::plan::{blocking, PlanError};
use crate::redis_cache;

/// Rows a ranked answer keeps unless the prompt says how many.
const DEFAULT_ROWS: usize = 100;

pub async fn query(State(t): State<Arc<Telemetry>>, uri: Uri) -> Result<Response, PlanError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| PlanError::invalid(format!("unreadable query string: {}", e.body_text())))?;
    let mut prompt = None;
    let mut time_zone = None;
    for (key, value) in pairs {
        match key.as_str() {
            "prompt" if prompt.is_none() => prompt = Some(value),
            "tz" | "time_zone" if time_zone.is_none() => time_zone = Some(value),
            other => {
                return Err(PlanError::invalid(format!(
                    "parameter {other:?}: /query takes one prompt and an optional tz"
                )))
            }
        }
    }
    let prompt =
        prompt.ok_or_else(|| PlanError::invalid("prompt is required: /query?prompt=..."))?;
    let storage = t.app.storage.clone();
    let config = t.app.config.clone();
    let cache = t.cache.clone();
    let body = blocking(move || {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        // Relative times are read against this second: one prompt asked many times in a
        // second is answered once (a write to what it covers still ends the answer).
        let key = redis_cache::answer_key(
            "p",
            &format!("{prompt:?} {time_zone:?} {}", now_ms.div_euclid(1000)),
        );
        let deps = [redis_cache::NAMES, redis_cache::META];
        super::cached(cache.as_deref(), &key, &deps, |snapshot| {
            let metrics = storage.metric_names(None)?;
            let tag_names = storage.tag_names()?;
            let ctx = Context {
                now_ms,
                time_zone: time_zone.as_deref(),
                metrics: &metrics,
                tag_names: &tag_names,
            };
            let interpretation = Rules.interpret(&prompt, &ctx).map_err(|u| {
                PlanError::validation(format!("cannot read the prompt: {}", u.reason))
                    .detail("suggestions", json!(u.suggestions))
            })?;
            // The data it reads, snapshotted before it is read.
            let data = match &interpretation.metric {
                Some(m) => redis_cache::metric(m),
                None => redis_cache::ALL.to_owned(),
            };
            let snapshot = match (cache.as_deref(), snapshot) {
                (Some(c), Some(s)) => c.extend(s, &[data]),
                _ => None,
            };
            let budget = config.query_budget(std::time::Instant::now(), Arc::default());
            let rows = run(&*storage, &interpretation, &metrics, &budget, now_ms)?;
            let answer = json!({
                "prompt": prompt,
                "interpretation": interpretation,
                "kairosdb_query": interpretation.kairosdb_query(),
                "results": rows,
            });
            Ok((serde_json::to_vec(&answer).expect("BUG: JSON"), snapshot))
        })
    })
    .await?;
    Ok(super::json_bytes(body))
}

fn run(
    storage: &dyn Storage,
    i: &Interpretation,
    metrics: &[String],
    budget: &kairosdb_query::Budget,
    now_ms: i64,
) -> Result<Vec<Value>, PlanError> {
    let mut rows = match (&i.metric, i.aggregate) {
        (None, _) => counts(storage, i, metrics)?,
        (Some(metric), Aggregate::None) => records(storage, i, metric)?,
        (Some(_), _) => aggregated(storage, i, budget, now_ms)?,
    };
    let value = |r: &Value| r["value"].as_f64().unwrap_or(f64::NEG_INFINITY);
    match i.order.as_deref() {
        Some("asc") => rows.sort_by(|a, b| value(a).total_cmp(&value(b))),
        Some(_) => rows.sort_by(|a, b| value(b).total_cmp(&value(a))),
        // Every metric counted: the most first.
        None if i.metric.is_none() => rows.sort_by(|a, b| value(b).total_cmp(&value(a))),
        None => {}
    }
    rows.truncate(i.limit.unwrap_or(DEFAULT_ROWS));
    Ok(rows)
}

fn filter(i: &Interpretation) -> TagFilter {
    let mut tags: Vec<(String, Vec<TagMatcher>)> = Vec::new();
    for (k, v) in &i.tags {
        match tags.iter_mut().find(|(name, _)| name == k) {
            Some((_, values)) => values.push(TagMatcher::Exact(v.clone())),
            None => tags.push((k.clone(), vec![TagMatcher::Exact(v.clone())])),
        }
    }
    TagFilter { tags }
}

fn series(
    storage: &dyn Storage,
    q: &SeriesQuery,
) -> Result<Vec<kairosdb_model::SeriesData>, PlanError> {
    Ok(match storage.query(q)? {
        Read::Complete(s) | Read::Partial { series: s, .. } => s,
        Read::OverWorkLimit => unreachable!("BUG: no work limit was set"),
    })
}

/// Every metric's records in the range, counted.
fn counts(
    storage: &dyn Storage,
    i: &Interpretation,
    metrics: &[String],
) -> Result<Vec<Value>, PlanError> {
    let mut rows = Vec::new();
    for metric in metrics {
        let q = SeriesQuery {
            limit: Some(1),
            count_in_range: true,
            ..SeriesQuery::new(metric.clone(), filter(i), TimeRange::new(i.start, i.end))
        };
        let n: u64 = series(storage, &q)?.iter().map(|s| s.in_range).sum();
        if n > 0 {
            rows.push(json!({"metric": metric, "value": n}));
        }
    }
    Ok(rows)
}

/// One metric's records (numbers), newest first.
fn records(
    storage: &dyn Storage,
    i: &Interpretation,
    metric: &str,
) -> Result<Vec<Value>, PlanError> {
    let q = SeriesQuery::new(metric, filter(i), TimeRange::new(i.start, i.end));
    let mut rows: Vec<(i64, Value)> = Vec::new();
    for s in series(storage, &q)? {
        for (n, &t) in s.points.timestamps().iter().enumerate() {
            let value = match &s.points {
                kairosdb_model::Points::Long { values, .. } => values[n] as f64,
                kairosdb_model::Points::Double { values, .. } => values[n],
                kairosdb_model::Points::String { .. } => continue,
            };
            let id = RecordId::of(&s.key, t).encode();
            let tags = kairosdb_telemetry::record::list_of(&s.key.tags);
            rows.push((
                t,
                json!({"id": id, "name": metric, "tags": tags, "value": value, "timestamp": t}),
            ));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// The interpretation's KairosDB query through the query engine: a row per group.
fn aggregated(
    storage: &dyn Storage,
    i: &Interpretation,
    budget: &kairosdb_query::Budget,
    now_ms: i64,
) -> Result<Vec<Value>, PlanError> {
    let body = i.kairosdb_query().expect("one metric").to_string();
    let request = kairosdb_protocol::query::parse_query(body.as_bytes(), now_ms)
        .map_err(|e| PlanError::validation(format!("the query the prompt became: {e}")))?;
    let ctx = kairosdb_query::Context {
        range: request.range,
        time_zone: request.time_zone.as_deref(),
        now_ms,
        budget,
    };
    let result = kairosdb_query::execute(storage, &ctx, &request.metrics[0])
        .map_err(|e| PlanError::validation(e.to_string()))?
        .expect_complete();
    let mut rows = Vec::new();
    for g in result.results {
        let Some(value) = last_number(&g.values) else {
            continue;
        };
        let group: serde_json::Map<String, Value> = g
            .group_by
            .iter()
            .filter_map(|b| match b {
                kairosdb_model::GroupByResult::Tag { group, .. } => Some(group),
                _ => None,
            })
            .flatten()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        rows.push(json!({"group": group, "value": value, "timestamp": g.ts.last()}));
    }
    Ok(rows)
}

/// The (one) bucket's value of a group.
fn last_number(values: &OutColumn) -> Option<f64> {
    match values {
        OutColumn::Long(v) => v.last().map(|&x| x as f64),
        OutColumn::Double(v) => v.last().copied(),
        OutColumn::Number(v) => v.iter().rev().find_map(|n| match n {
            kairosdb_model::Num::Long(x) => Some(*x as f64),
            kairosdb_model::Num::Double(x) => Some(*x),
            kairosdb_model::Num::Null => None,
        }),
        OutColumn::Text(_) | OutColumn::TextOrNull(_) => None,
    }
}

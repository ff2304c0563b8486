//! The prompt corpus (`corpus.txt`): every prompt read as a person meant it, or refused.

use super::*;

const METRICS: &[&str] = &[
    "cpu.usage_user",
    "cpu.usage_system",
    "memory.used",
    "disk.free",
    "http.requests",
    "http.latency",
    "deploys",
    "errors",
    "temperature",
    "queue.depth",
    "orders.count",
    "login.failures",
];
const TAGS: &[&str] = &["host", "region", "service", "env", "dc"];

fn ms(iso: &str) -> i64 {
    iso.parse::<Timestamp>()
        .unwrap_or_else(|e| panic!("{iso}: {e}"))
        .as_millisecond()
}

/// Checks one expectation `key=value` against `i`; the failure's text.
fn check(i: &Interpretation, key: &str, value: &str) -> Result<(), String> {
    let got = match key {
        "metric" => i.metric.clone().unwrap_or_else(|| "*".into()),
        "how" => {
            return i
                .metric_match
                .starts_with(value)
                .then_some(())
                .ok_or_else(|| format!("how: {:?}", i.metric_match))
        }
        "agg" => i.aggregate.name(),
        "tags" => i
            .tags
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(","),
        "by" => i.group_by.join(","),
        "order" => i.order.clone().unwrap_or_default(),
        "limit" => i.limit.map(|l| l.to_string()).unwrap_or_default(),
        "time" => i.time.clone(),
        "tz" => i.time_zone.clone(),
        "start" => {
            return (i.start == ms(value))
                .then_some(())
                .ok_or_else(|| format!("start {}", Timestamp::from_millisecond(i.start).unwrap()))
        }
        "end" => {
            return (i.end == ms(value))
                .then_some(())
                .ok_or_else(|| format!("end {}", Timestamp::from_millisecond(i.end).unwrap()))
        }
        other => panic!("unknown expectation {other}"),
    };
    (got == value)
        .then_some(())
        .ok_or_else(|| format!("{key}: {got:?}"))
}

/// `key=value` pairs; a value may hold spaces (up to the next ` key=`).
fn expectations(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in text.split_whitespace() {
        match part.split_once('=') {
            Some((k, v)) if k.chars().all(|c| c.is_ascii_lowercase()) => {
                out.push((k.into(), v.into()))
            }
            _ => match out.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(part);
                }
                None => out.push((part.into(), String::new())),
            },
        }
    }
    out
}

#[test]
fn the_corpus_is_read_as_meant() {
    let metrics: Vec<String> = METRICS.iter().map(|m| m.to_string()).collect();
    let tags: Vec<String> = TAGS.iter().map(|t| t.to_string()).collect();
    let ctx = Context {
        now_ms: ms("2024-05-08T14:30:00Z"),
        time_zone: None,
        metrics: &metrics,
        tag_names: &tags,
    };
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in include_str!("corpus.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        cases += 1;
        let (prompt, want) = line.split_once('|').expect("prompt | expectations");
        let prompt = prompt.trim();
        let got = Rules.interpret(prompt, &ctx);
        for (key, value) in expectations(want) {
            let outcome = match (key.as_str(), &got) {
                ("unreadable", Err(_)) => Ok(()),
                ("suggest", Err(u)) => u
                    .suggestions
                    .iter()
                    .any(|s| s.contains(&value))
                    .then_some(())
                    .ok_or_else(|| format!("suggestions {:?}", u.suggestions)),
                (_, Err(u)) => Err(format!("unreadable: {}", u.reason)),
                ("unreadable", Ok(i)) => Err(format!("read as {i:?}")),
                (key, Ok(i)) => check(i, key, &value),
            };
            if let Err(e) = outcome {
                failures.push(format!("{prompt:?}: wanted {key}={value}, got {e}"));
            }
        }
    }
    assert!(cases >= 100, "the corpus has {cases} prompts");
    assert!(
        failures.is_empty(),
        "{} of {cases}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn an_interpretation_becomes_a_kairosdb_query() {
    let metrics = vec!["http.latency".to_string()];
    let tags = vec!["host".to_string(), "service".to_string()];
    let ctx = Context {
        now_ms: ms("2024-05-08T14:30:00Z"),
        time_zone: None,
        metrics: &metrics,
        tag_names: &tags,
    };
    let i = Rules
        .interpret(
            "p95 http latency on host web-1 by service in the last hour",
            &ctx,
        )
        .unwrap();
    let q = i.kairosdb_query().unwrap();
    assert_eq!(
        q,
        json!({
            "start_absolute": ms("2024-05-08T13:30:00Z"),
            "end_absolute": ms("2024-05-08T14:30:00Z"),
            "metrics": [{
                "name": "http.latency",
                "tags": {"host": ["web-1"]},
                "group_by": [{"name": "tag", "tags": ["service"]}],
                "aggregators": [{"name": "percentile", "percentile": 0.95,
                    "sampling": {"value": 3_600_001, "unit": "milliseconds"},
                    "align_sampling": false, "align_start_time": true}],
            }],
        })
    );
}

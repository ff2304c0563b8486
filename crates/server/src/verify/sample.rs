//! Generated queries for `kairosdb verify --sample N`: a deterministic mix of KairosDB
//! queries over the reference's metrics, the same for a given seed, metric list, tags and
//! time window. Pure; the caller fetches names and tags.
//!
//! The metrics are shuffled with the seed and taken round-robin, so every metric is read
//! once before any is read twice (N >= the number of metrics covers them all); the query
//! kind advances each round, so one metric is read in different ways.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Tags of a metric as `/api/v1/datapoints/query/tags` lists them: name → values.
pub type Tags = BTreeMap<String, Vec<String>>;

/// One generated query and a one-line description for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub description: String,
    pub body: Value,
}

/// The kinds of query, in the order they are handed out.
const KINDS: [Kind; 7] = [
    Kind::Raw,
    Kind::TagFilter,
    Kind::GroupByTag,
    Kind::Aggregate("sum"),
    Kind::Aggregate("avg"),
    Kind::Aggregate("count"),
    Kind::LimitDesc,
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Raw,
    TagFilter,
    GroupByTag,
    Aggregate(&'static str),
    LimitDesc,
}

/// A small seeded generator (SplitMix64): enough to pick metrics and tags reproducibly
/// without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The metrics the `n` queries read, in order: `names` sorted, shuffled with `seed`, taken
/// round-robin. Empty when there are no names.
pub fn choose_metrics(names: &[String], n: usize, seed: u64) -> Vec<String> {
    let mut names: Vec<String> = names.to_vec();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng::new(seed);
    // Fisher–Yates.
    for i in (1..names.len()).rev() {
        let j = rng.below(i + 1);
        names.swap(i, j);
    }
    (0..n).map(|i| names[i % names.len()].clone()).collect()
}

/// Builds query `i` of the plan for `metric` over `[start, end]` (milliseconds, both
/// inclusive as in KairosDB). `round` is how many times the metric list has been gone
/// through before, which picks the kind; `tags` are the metric's tags (kinds that need a
/// tag fall back to a raw read for a metric without tags).
pub fn build_query(
    metric: &str,
    round: usize,
    tags: &Tags,
    window: (i64, i64),
    rng: &mut Rng,
) -> Sample {
    let (start, end) = window;
    let mut metric_query = json!({ "name": metric });
    let kind = KINDS[round % KINDS.len()];
    let tag_names: Vec<&String> = tags
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect();
    let description = match kind {
        Kind::TagFilter if !tag_names.is_empty() => {
            let tag = tag_names[rng.below(tag_names.len())];
            let values = &tags[tag];
            let value = &values[rng.below(values.len())];
            metric_query["tags"] = json!({ tag: [value] });
            format!("{metric} where {tag}={value}")
        }
        Kind::GroupByTag if !tag_names.is_empty() => {
            let tag = tag_names[rng.below(tag_names.len())];
            metric_query["group_by"] = json!([{ "name": "tag", "tags": [tag] }]);
            format!("{metric} grouped by tag {tag}")
        }
        Kind::Aggregate(name) => {
            let (value, unit) = sampling_for(end.saturating_sub(start));
            metric_query["aggregators"] = json!([{
                "name": name,
                "sampling": { "value": value, "unit": unit },
            }]);
            format!("{name} of {metric} per {value} {unit}")
        }
        Kind::LimitDesc => {
            metric_query["limit"] = json!(100);
            metric_query["order"] = json!("desc");
            format!("newest 100 points of {metric}")
        }
        Kind::Raw | Kind::TagFilter | Kind::GroupByTag => format!("raw points of {metric}"),
    };
    Sample {
        description,
        body: json!({
            "start_absolute": start,
            "end_absolute": end,
            "metrics": [metric_query],
        }),
    }
}

/// A sampling period that cuts `span_ms` into at most ~1000 buckets, in a whole unit.
fn sampling_for(span_ms: i64) -> (i64, &'static str) {
    const UNITS: [(i64, &str); 7] = [
        (1_000, "seconds"),
        (60_000, "minutes"),
        (3_600_000, "hours"),
        (86_400_000, "days"),
        (604_800_000, "weeks"),
        (2_629_746_000, "months"),
        (31_556_952_000, "years"),
    ];
    for (ms, unit) in UNITS {
        if span_ms / ms <= 1000 {
            return (1, unit);
        }
    }
    let years = span_ms / 31_556_952_000 / 1000 + 1;
    (years, "years")
}

/// The request body of `/api/v1/datapoints/query/tags` for one metric over the window.
pub fn tags_request(metric: &str, window: (i64, i64)) -> Value {
    json!({
        "start_absolute": window.0,
        "end_absolute": window.1,
        "metrics": [{ "name": metric }],
    })
}

/// The tags of the first result of a `/query/tags` answer.
pub fn tags_from_answer(answer: &Value) -> Tags {
    let mut tags = Tags::new();
    if let Some(map) = answer
        .pointer("/queries/0/results/0/tags")
        .and_then(Value::as_object)
    {
        for (name, values) in map {
            let mut values: Vec<String> = values
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            values.sort();
            tags.insert(name.clone(), values);
        }
    }
    tags
}

/// The whole sample: `n` queries over `names`, asking `tags_of` for each chosen metric's
/// tags (once per metric).
pub fn generate<E>(
    names: &[String],
    n: usize,
    seed: u64,
    window: (i64, i64),
    mut tags_of: impl FnMut(&str) -> Result<Tags, E>,
) -> Result<Vec<Sample>, E> {
    let chosen = choose_metrics(names, n, seed);
    let distinct = {
        let mut d = chosen.clone();
        d.sort();
        d.dedup();
        d.len().max(1)
    };
    let mut tags: BTreeMap<String, Tags> = BTreeMap::new();
    // A second stream, so the tag picks do not shift the metric order.
    let mut rng = Rng::new(seed ^ 0x5EED_5EED_5EED_5EED);
    let mut out = Vec::with_capacity(chosen.len());
    for (i, metric) in chosen.iter().enumerate() {
        if !tags.contains_key(metric) {
            let t = tags_of(metric)?;
            tags.insert(metric.clone(), t);
        }
        out.push(build_query(
            metric,
            i / distinct,
            &tags[metric],
            window,
            &mut rng,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["cpu", "mem", "disk"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn tags_of(metric: &str) -> Result<Tags, ()> {
        let mut t = Tags::new();
        if metric != "disk" {
            t.insert("host".into(), vec!["a".into(), "b".into()]);
        }
        Ok(t)
    }

    #[test]
    fn the_same_seed_gives_the_same_queries() {
        let a = generate(&names(), 20, 7, (0, 1000), tags_of).unwrap();
        let b = generate(&names(), 20, 7, (0, 1000), tags_of).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        let c = generate(&names(), 20, 8, (0, 1000), tags_of).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn every_metric_is_read_before_any_twice_and_kinds_vary() {
        let chosen = choose_metrics(&names(), 6, 1);
        let mut first: Vec<&String> = chosen[..3].iter().collect();
        first.sort();
        assert_eq!(first, vec!["cpu", "disk", "mem"]);
        assert_eq!(chosen[..3], chosen[3..]);

        let sample = generate(&names(), 21, 1, (0, 86_400_000), tags_of).unwrap();
        let cpu: Vec<&Sample> = sample
            .iter()
            .filter(|s| s.body["metrics"][0]["name"] == "cpu")
            .collect();
        assert_eq!(cpu.len(), 7);
        assert!(cpu[1].body["metrics"][0]["tags"]["host"].is_array());
        assert_eq!(cpu[2].body["metrics"][0]["group_by"][0]["tags"][0], "host");
        assert_eq!(cpu[3].body["metrics"][0]["aggregators"][0]["name"], "sum");
        assert_eq!(
            cpu[3].body["metrics"][0]["aggregators"][0]["sampling"]["unit"],
            "hours"
        );
        assert_eq!(cpu[6].body["metrics"][0]["order"], "desc");
        // `disk` has no tags: the tag kinds fall back to raw reads.
        let disk: Vec<&Sample> = sample
            .iter()
            .filter(|s| s.body["metrics"][0]["name"] == "disk")
            .collect();
        assert!(disk[1].body["metrics"][0].get("tags").is_none());
        assert_eq!(sample[0].body["start_absolute"], 0);
        assert_eq!(sample[0].body["end_absolute"], 86_400_000);
    }

    #[test]
    fn tags_are_fetched_once_per_metric() {
        let mut calls = Vec::new();
        generate(&names(), 20, 3, (0, 1), |m| {
            calls.push(m.to_string());
            tags_of(m)
        })
        .unwrap();
        calls.sort();
        assert_eq!(calls, vec!["cpu", "disk", "mem"]);
    }

    #[test]
    fn no_names_no_queries() {
        assert!(generate(&[], 5, 1, (0, 1), tags_of).unwrap().is_empty());
    }

    #[test]
    fn sampling_keeps_bucket_counts_bounded() {
        assert_eq!(sampling_for(60_000), (1, "seconds"));
        assert_eq!(sampling_for(86_400_000), (1, "hours"));
        assert_eq!(sampling_for(3_600_000), (1, "minutes"));
        // 1970 to 2026: months.
        assert_eq!(sampling_for(1_780_000_000_000), (1, "months"));
        let (v, unit) = sampling_for(i64::MAX);
        assert_eq!(unit, "years");
        assert!(i64::MAX / (v * 31_556_952_000) <= 1000);
    }

    #[test]
    fn tags_are_read_from_a_query_tags_answer() {
        let answer =
            json!({"queries": [{"results": [{"name": "m", "tags": {"host": ["b", "a"]}}]}]});
        let tags = tags_from_answer(&answer);
        assert_eq!(tags["host"], vec!["a", "b"]);
        assert!(tags_from_answer(&json!({})).is_empty());
    }
}

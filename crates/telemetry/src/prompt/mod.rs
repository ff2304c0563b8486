//! Questions in plain words (`GET /query?prompt=`, docs/telemetry.md, "Questions"): a
//! deterministic reading, no network and no model. [`Rules`] reads, in this order,
//!
//! 1. a time zone (`in Europe/Paris`, `utc`) and a time phrase (`time.rs`; default: the
//!    last 24 hours);
//! 2. ordering and size: `top 5`, `bottom 3`, `limit 10`, `highest first`, `ascending`;
//! 3. an aggregate: average, max, min, sum, count (`how many`), a percentile (`p95`,
//!    `95th percentile`, `median`), rate;
//! 4. grouping: `by host`, `per region`, `for each service`;
//! 5. tag conditions: `on host web-1`, `where region is eu`, `with env prod`, `dc=eu1`;
//! 6. the metric, from the words left, matched against the real metric names: exactly, by
//!    a part of a dotted name (`cpu` → `cpu.usage_user`), or despite a misspelling (edit
//!    distance); a generic word (`events`, `records`) means every metric.
//!
//! A prompt that names no metric it can find is [`Unreadable`], with the closest metric
//! names as suggestions: it never guesses. [`Interpreter`] is the seam for another reader
//! (a model plugin) behind the same answer.

mod time;
mod words;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{json, Value};

use words::Words;

/// What a prompt is read against.
pub struct Context<'a> {
    pub now_ms: i64,
    /// The default time zone (the prompt may name another); `None` = UTC.
    pub time_zone: Option<&'a str>,
    /// The store's metric names.
    pub metrics: &'a [String],
    /// The store's tag names.
    pub tag_names: &'a [String],
}

/// The aggregate a prompt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The records themselves.
    None,
    Avg,
    Max,
    Min,
    Sum,
    Count,
    /// A percentile, 0 < p < 1.
    Percentile(f64),
    /// Change per second.
    Rate,
}

impl Aggregate {
    pub fn name(self) -> String {
        match self {
            Aggregate::None => "none".into(),
            Aggregate::Avg => "avg".into(),
            Aggregate::Max => "max".into(),
            Aggregate::Min => "min".into(),
            Aggregate::Sum => "sum".into(),
            Aggregate::Count => "count".into(),
            Aggregate::Percentile(p) => format!("p{}", (p * 1000.0).round() / 10.0),
            Aggregate::Rate => "rate".into(),
        }
    }
}

/// How a prompt was understood.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interpretation {
    /// `None`: every metric (`top 5 events`).
    pub metric: Option<String>,
    /// How the metric was found: `exact`, `part of the name`, `close to "cpuu"`, `every
    /// metric`.
    pub metric_match: String,
    pub start: i64,
    pub end: i64,
    /// The time phrase as understood (`last 3 hours`, `today`, `last 24 hours (default)`).
    pub time: String,
    pub time_zone: String,
    pub aggregate: Aggregate,
    pub group_by: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// `desc` or `asc`, when the prompt orders.
    pub order: Option<String>,
    pub limit: Option<usize>,
}

/// A prompt that cannot be read, and what might have been meant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unreadable {
    pub reason: String,
    pub suggestions: Vec<String>,
}

/// Reads a prompt (the seam for another reader, such as a model plugin).
pub trait Interpreter: Send + Sync {
    fn interpret(&self, prompt: &str, ctx: &Context) -> Result<Interpretation, Unreadable>;
}

/// The deterministic reader.
pub struct Rules;

const GENERIC: &[&str] = &[
    "events",
    "event",
    "records",
    "record",
    "metrics",
    "metric",
    "things",
    "data",
    "points",
    "everything",
];

/// Words that start a time phrase.
const TIME_WORDS: &[&str] = &[
    "today",
    "yesterday",
    "last",
    "past",
    "since",
    "this",
    "between",
    "from",
    "in",
];

const STOP: &[&str] = &[
    "what", "whats", "what's", "which", "who", "are", "is", "was", "were", "the", "a", "an",
    "show", "me", "give", "list", "get", "tell", "display", "find", "of", "for", "in", "on", "at",
    "all", "my", "our", "please", "with", "and", "how", "much", "did", "do", "does", "has", "have",
    "had", "there", "value", "values", "over", "during", "to", "from", "been", "see", "i", "want",
    "need", "can", "you", "it", "its", "by", "per", "each", "every", "across", "so", "far", "than",
    "time", "series", "level", "levels", "latest", "current", "now", "reading", "readings",
    "stats", "look", "looked", "looks", "like", "been", "being", "be", "happened", "happen",
];

impl Interpreter for Rules {
    fn interpret(&self, prompt: &str, ctx: &Context) -> Result<Interpretation, Unreadable> {
        let mut words = Words::new(prompt);
        if words.is_empty() {
            return Err(unreadable("the prompt is empty", ctx, &[]));
        }
        let (zone_name, tz) = match time::zone(&mut words) {
            Some(z) => z,
            None => match ctx.time_zone.and_then(|n| TimeZone::get(n).ok()) {
                Some(tz) => (ctx.time_zone.unwrap_or("UTC").to_owned(), tz),
                None => ("UTC".into(), TimeZone::UTC),
            },
        };
        let now = Timestamp::from_millisecond(ctx.now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let range = time::range(&mut words, now, &tz).unwrap_or(time::Range {
            start: ctx.now_ms - 86_400_000,
            end: ctx.now_ms,
            phrase: "last 24 hours (default)".into(),
        });
        let (mut order, mut limit) = order_and_limit(&mut words);
        let lowest_first = words.free().iter().any(|(_, w)| {
            matches!(
                *w,
                "fewest" | "least" | "lowest" | "smallest" | "minimum" | "min"
            )
        });
        let which = which(&mut words, ctx);
        let aggregate = aggregate(&mut words);
        let mut group_by = group_by(&mut words, ctx);
        // `which host had the most errors`: the groups ranked, the first one.
        if let Some(tag) = which {
            if !group_by.contains(&tag) {
                group_by.insert(0, tag);
            }
            limit = limit.or(Some(1));
            order = order.or(Some(if lowest_first { "asc" } else { "desc" }.into()));
        }
        let tags = tags(&mut words, ctx);
        let (metric, metric_match) = metric(&mut words, ctx)?;
        let aggregate = match (aggregate, &order, &metric) {
            // `top 5 events`: the metrics with the most records.
            (None, _, None) => Aggregate::Count,
            // `top 5 hosts by cpu`: rank groups by their largest value.
            (None, Some(_), Some(_)) if !group_by.is_empty() => Aggregate::Max,
            (None, _, _) => Aggregate::None,
            (Some(a), _, _) => a,
        };
        Ok(Interpretation {
            metric,
            metric_match,
            start: range.start,
            end: range.end,
            time: range.phrase,
            time_zone: zone_name,
            aggregate,
            group_by,
            tags,
            order,
            limit,
        })
    }
}

fn unreadable(reason: &str, ctx: &Context, near: &[&str]) -> Unreadable {
    let mut scored: Vec<(f64, &String)> = ctx
        .metrics
        .iter()
        .map(|m| {
            let best = near
                .iter()
                .map(|w| {
                    strsim::normalized_damerau_levenshtein(w, &m.to_lowercase())
                        .max(segment_score(w, m))
                })
                .fold(0.0, f64::max);
            (best, m)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut suggestions: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, m)| format!("average {m} over the last hour"))
        .collect();
    suggestions.push("top 5 events today".into());
    Unreadable {
        reason: reason.into(),
        suggestions,
    }
}

/// `top 5`, `bottom 3`, `limit 10`, `5 highest`, `highest first`, `descending`.
fn order_and_limit(words: &mut Words) -> (Option<String>, Option<usize>) {
    let (mut order, mut limit) = (None, None);
    for i in 0..words.len() {
        if !words.is_free(i) {
            continue;
        }
        let w = words.lower(i).to_owned();
        let next = words.lower_at(i + 1);
        if let (Ok(n), true) = (
            w.parse::<usize>(),
            matches!(
                next.as_str(),
                "lowest" | "smallest" | "highest" | "largest" | "biggest"
            ),
        ) {
            let asc = matches!(next.as_str(), "lowest" | "smallest");
            order = Some(if asc { "asc" } else { "desc" }.to_owned());
            limit = Some(n.max(1));
            words.take(i..i + 2);
            continue;
        }
        match w.as_str() {
            "top" | "bottom" | "limit" | "first" => {
                let n = next.parse::<usize>().ok().filter(|n| *n > 0);
                if w == "first" && n.is_none() {
                    continue;
                }
                if w != "limit" && w != "first" {
                    order = Some(if w == "top" { "desc" } else { "asc" }.to_owned());
                }
                limit = n.or(Some(if w == "limit" { 100 } else { 10 }));
                words.take(i..i + if n.is_some() { 2 } else { 1 });
            }
            "highest" | "largest" | "biggest" | "most" if next == "first" => {
                order = Some("desc".into());
                words.take(i..i + 2);
            }
            "lowest" | "smallest" | "least" if next == "first" => {
                order = Some("asc".into());
                words.take(i..i + 2);
            }
            "descending" | "desc" | "decreasing" => {
                order = Some("desc".into());
                words.take(i..i + 1);
            }
            "ascending" | "asc" | "increasing" => {
                order = Some("asc".into());
                words.take(i..i + 1);
            }
            _ => {}
        }
    }
    (order, limit)
}

/// The aggregate word or phrase, taken.
fn aggregate(words: &mut Words) -> Option<Aggregate> {
    for i in 0..words.len() {
        if !words.is_free(i) {
            continue;
        }
        let w = words.lower(i).to_owned();
        let next = words.lower_at(i + 1);
        let found = match w.as_str() {
            "average" | "avg" | "mean" => Some((Aggregate::Avg, 1)),
            "max" | "maximum" | "highest" | "peak" | "largest" | "biggest" => {
                Some((Aggregate::Max, 1))
            }
            "min" | "minimum" | "lowest" | "smallest" => Some((Aggregate::Min, 1)),
            "sum" | "total" => Some((Aggregate::Sum, 1)),
            "count" | "most" | "fewest" => Some((Aggregate::Count, 1)),
            "number" if next == "of" => Some((Aggregate::Count, 2)),
            "how" if next == "many" => Some((Aggregate::Count, 2)),
            "median" => Some((Aggregate::Percentile(0.5), 1)),
            "rate" => Some((Aggregate::Rate, 1)),
            "per" | "a" if matches!(next.as_str(), "second" | "sec" | "minute" | "min") => {
                Some((Aggregate::Rate, 2))
            }
            _ => percentile(&w, &next),
        };
        if let Some((a, used)) = found {
            words.take(i..i + used);
            return Some(a);
        }
    }
    None
}

/// `p95`, `p99.9`, `95th percentile`, `95 percentile`, `percentile 95`.
fn percentile(w: &str, next: &str) -> Option<(Aggregate, usize)> {
    let as_p = |n: &str| {
        n.parse::<f64>()
            .ok()
            .filter(|p| *p > 0.0 && *p < 100.0)
            .map(|p| Aggregate::Percentile(p / 100.0))
    };
    if let Some(n) = w.strip_prefix('p') {
        if let Some(a) = as_p(n) {
            return Some((a, 1));
        }
    }
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if !digits.is_empty() && (next == "percentile" || next == "pct") {
        return as_p(digits).map(|a| (a, 2));
    }
    if w == "percentile" {
        let n = next.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        return as_p(n).map(|a| (a, 2));
    }
    None
}

/// `which host` / `what region`: the tag whose groups are ranked, taken.
fn which(words: &mut Words, ctx: &Context) -> Option<String> {
    for i in 0..words.len() {
        if words.is_free(i)
            && matches!(words.lower(i), "which" | "what")
            && !ctx.tag_names.is_empty()
        {
            if let Some(tag) = tag_name(&words.lower_at(i + 1), ctx) {
                words.take(i..i + 2);
                return Some(tag);
            }
        }
    }
    None
}

/// `by host`, `per region`, `for each service`, `grouped by dc`; plural tag names too.
fn group_by(words: &mut Words, ctx: &Context) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..words.len() {
        if !words.is_free(i) {
            continue;
        }
        let w = words.lower(i).to_owned();
        let (tag_at, used) = match (w.as_str(), words.lower_at(i + 1).as_str()) {
            ("by" | "per", _) => (i + 1, 2),
            ("for" | "across", "each" | "every" | "all") => (i + 2, 3),
            ("grouped" | "broken" | "split", "by" | "down") => {
                let by = if words.lower_at(i + 1) == "down" {
                    1
                } else {
                    0
                };
                (i + 2 + by, 3 + by)
            }
            _ => continue,
        };
        let candidate = words.lower_at(tag_at);
        if candidate.is_empty() || is_time_unit(&candidate) {
            continue;
        }
        let Some(tag) = tag_name(&candidate, ctx) else {
            continue;
        };
        // `by cpu`: a metric, not a grouping (`top 5 hosts by cpu`).
        if ctx.tag_names.is_empty()
            && ctx
                .metrics
                .iter()
                .any(|m| m.to_lowercase().contains(&candidate))
        {
            continue;
        }
        words.take(i..i + used);
        if !out.contains(&tag) {
            out.push(tag);
        }
        // `by service and region`: more groupings, unless a value follows (a condition).
        let mut at = i + used;
        while words.lower_at(at) == "and" {
            let Some(more) =
                tag_name(&words.lower_at(at + 1), ctx).filter(|_| !ctx.tag_names.is_empty())
            else {
                break;
            };
            let after = words.lower_at(at + 2);
            let value_follows = !after.is_empty()
                && !STOP.contains(&after.as_str())
                && !TIME_WORDS.contains(&after.as_str());
            if value_follows {
                break;
            }
            words.take(at..at + 2);
            if !out.contains(&more) {
                out.push(more);
            }
            at += 2;
        }
    }
    // `top 5 hosts by cpu`: the thing ranked is the grouping.
    for i in 0..words.len() {
        if words.is_free(i) {
            let w = words.lower(i).to_owned();
            if let Some(tag) = plural_tag(&w, ctx) {
                words.take(i..i + 1);
                if !out.contains(&tag) {
                    out.push(tag);
                }
            }
        }
    }
    out
}

fn is_time_unit(w: &str) -> bool {
    matches!(
        w.trim_end_matches('s'),
        "second" | "sec" | "minute" | "min" | "hour" | "hr" | "day" | "week" | "month"
    )
}

/// `host` or `hosts` as a known tag name (any word when the store has no tags listed).
fn tag_name(w: &str, ctx: &Context) -> Option<String> {
    if ctx.tag_names.is_empty() {
        return Some(w.trim_end_matches('s').to_owned()).filter(|t| !t.is_empty());
    }
    let singular = w
        .strip_suffix("es")
        .filter(|s| s.ends_with('s'))
        .or_else(|| w.strip_suffix('s'));
    let exact = ctx
        .tag_names
        .iter()
        .find(|t| t.to_lowercase() == w || Some(t.to_lowercase().as_str()) == singular);
    // A misspelled tag name (`hostt`): the closest, when close enough.
    let close = || {
        ctx.tag_names
            .iter()
            .map(|t| {
                (
                    strsim::normalized_damerau_levenshtein(w, &t.to_lowercase()),
                    t,
                )
            })
            .filter(|(s, t)| *s >= 0.8 && t.len() >= 4 && w.len() >= 5)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, t)| t)
    };
    exact.or_else(close).cloned()
}

/// A plural known tag name (`hosts`, `regions`): what a `top 5 hosts` ranks.
fn plural_tag(w: &str, ctx: &Context) -> Option<String> {
    let singular = w.strip_suffix('s')?;
    ctx.tag_names
        .iter()
        .find(|t| t.to_lowercase() == singular)
        .cloned()
}

/// Tag conditions, taken: `on host web-1`, `where region is eu`, `with env prod`,
/// `dc=eu1`, `service:api`.
fn tags(words: &mut Words, ctx: &Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..words.len() {
        if !words.is_free(i) {
            continue;
        }
        let w = words.lower(i).to_owned();
        // name=value, name:value (not a clock time)
        if let Some((k, v)) = w.split_once(['=', ':']) {
            if !k.is_empty() && !v.is_empty() && !k.chars().all(|c| c.is_ascii_digit()) {
                let value = words
                    .original(i)
                    .unwrap_or("")
                    .split_once(['=', ':'])
                    .map(|p| p.1.to_owned())
                    .unwrap_or_default();
                words.take(i..i + 1);
                out.push((tag_name(k, ctx).unwrap_or_else(|| k.to_owned()), value));
                continue;
            }
        }
        let introduced = matches!(
            w.as_str(),
            "where" | "with" | "on" | "for" | "at" | "from" | "and" | "in"
        );
        let at = if introduced { i + 1 } else { i };
        let name = words.lower_at(at);
        let known = !name.is_empty() && !ctx.tag_names.is_empty() && tag_name(&name, ctx).is_some();
        let any_after_where = w == "where" && !name.is_empty();
        // `on web-3`: a bare value after `on` is a host, the usual tag.
        if w == "on"
            && !known
            && !name.is_empty()
            && !STOP.contains(&name.as_str())
            && !TIME_WORDS.contains(&name.as_str())
        {
            if let Some(host) = ctx.tag_names.iter().find(|t| t.as_str() == "host") {
                let value = words.original(at).unwrap_or_default().to_owned();
                words.take(i..at + 1);
                out.push((host.clone(), value));
                continue;
            }
        }
        if !(any_after_where || known && introduced) {
            continue;
        }
        let mut v = at + 1;
        if matches!(
            words.lower_at(v).as_str(),
            "is" | "=" | "==" | "equals" | "equal" | "of"
        ) {
            v += 1;
            if words.lower_at(v) == "to" {
                v += 1;
            }
        }
        let Some(value) = words.original(v).map(str::to_owned) else {
            continue;
        };
        if STOP.contains(&value.to_lowercase().as_str()) && value.to_lowercase() != "on" {
            continue;
        }
        let name = tag_name(&name, ctx).unwrap_or(name);
        words.take(i..v + 1);
        out.push((name, value));
    }
    out
}

/// A word without its common English endings (`deployments`, `deploys` → `deploy`;
/// `failures`, `failed` → `fail`).
fn stem(w: &str) -> &str {
    for suffix in [
        "ments", "ment", "ures", "ure", "ings", "ing", "ed", "es", "s",
    ] {
        if let Some(s) = w.strip_suffix(suffix) {
            if s.len() >= 3 {
                return s;
            }
        }
    }
    w
}

/// Whether word `w` is a part of a name: equal, or equal once both are stemmed.
fn same_word(w: &str, part: &str) -> bool {
    w == part || stem(w) == stem(part)
}

/// How well the word `w` names a part of the dotted metric `m`.
fn segment_score(w: &str, m: &str) -> f64 {
    m.to_lowercase()
        .split(['.', '_', '-'])
        .map(
            |part| match strsim::normalized_damerau_levenshtein(w, part) {
                s if s == 1.0 || same_word(w, part) => 0.9,
                s => s * 0.8,
            },
        )
        .fold(0.0, f64::max)
}

/// Whether every word of the run `c` (joined by `.` or `_`) is a part of `m`.
fn all_parts(c: &str, m: &str) -> bool {
    let lower = m.to_lowercase();
    let parts: Vec<&str> = lower.split(['.', '_', '-']).collect();
    c.contains(['.', '_'])
        && c.split(['.', '_'])
            .all(|w| parts.iter().any(|p| same_word(w, p)))
}

/// The metric the free words name.
fn metric(words: &mut Words, ctx: &Context) -> Result<(Option<String>, String), Unreadable> {
    let free: Vec<(usize, String)> = words
        .free()
        .into_iter()
        .map(|(i, w)| (i, w.to_owned()))
        .filter(|(_, w)| !STOP.contains(&w.as_str()))
        .collect();
    let content: Vec<&str> = free
        .iter()
        .map(|(_, w)| w.as_str())
        .filter(|w| !GENERIC.contains(w))
        .collect();
    // Candidates: each word, and runs of two or three joined as names are joined.
    let mut candidates: Vec<String> = content.iter().map(|w| w.to_string()).collect();
    for n in 2..=3 {
        for run in content.windows(n) {
            for sep in [".", "_", ""] {
                candidates.push(run.join(sep));
            }
        }
    }
    let mut best: Option<(f64, usize, &String, String)> = None;
    let mut scores: Vec<(f64, usize, &String)> = Vec::new();
    for m in ctx.metrics {
        let mut mine = (0.0f64, 0usize);
        let lower = m.to_lowercase();
        for c in &candidates {
            let (score, how) = if *c == lower {
                (1.0, "exact".to_owned())
            } else {
                let whole = strsim::normalized_damerau_levenshtein(c, &lower);
                let part = segment_score(c, m);
                // Every word of a run found in the name: better than one part.
                let part = if all_parts(c, m) {
                    part.max(0.95)
                } else {
                    part
                };
                if part >= whole && part >= 0.9 {
                    (part, "part of the name".to_owned())
                } else {
                    (whole.max(part), format!("close to {c:?}"))
                }
            };
            // More words matched, then the shorter name, win ties.
            let words_in = c.split(['.', '_']).count();
            if score > mine.0 + 1e-9 || ((score - mine.0).abs() <= 1e-9 && words_in > mine.1) {
                mine = (score, words_in);
            }
            let better = match &best {
                None => true,
                Some((s, n, name, _)) => {
                    score > *s + 1e-9
                        || ((score - s).abs() <= 1e-9
                            && (words_in > *n || (words_in == *n && m.len() < name.len())))
                }
            };
            if better {
                best = Some((score, words_in, m, how));
            }
        }
        scores.push((mine.0, mine.1, m));
    }
    let generic = free.iter().any(|(_, w)| GENERIC.contains(&w.as_str()));
    // Several metrics named as well as the best by a part (`cpu`: cpu.usage_user and
    // cpu.usage_system): a guess; ask instead.
    if let Some((score, n, _, _)) = &best {
        let tied: Vec<&String> = scores
            .iter()
            .filter(|(s, k, _)| (s - score).abs() <= 1e-9 && k == n)
            .map(|(_, _, m)| *m)
            .collect();
        if *score >= 0.75 && *score < 1.0 && tied.len() > 1 {
            let mut u = unreadable(
                &format!(
                    "more than one metric matches: {}",
                    tied.iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ctx,
                &content,
            );
            u.suggestions = tied
                .iter()
                .map(|m| format!("average {m} over the last hour"))
                .collect();
            return Err(u);
        }
    }
    match best {
        Some((score, _, m, how)) if score >= 0.75 => {
            for (i, w) in &free {
                if m.to_lowercase().contains(w.as_str())
                    || strsim::normalized_damerau_levenshtein(w, &m.to_lowercase()) >= 0.75
                    || segment_score(w, m) >= 0.75
                {
                    words.take(*i..*i + 1);
                }
            }
            Ok((Some(m.clone()), how))
        }
        _ if generic && content.is_empty() => Ok((None, "every metric".into())),
        _ => Err(unreadable(
            if content.is_empty() {
                "the prompt names no metric"
            } else {
                "no metric of this store matches the prompt"
            },
            ctx,
            &content,
        )),
    }
}

impl Interpretation {
    /// The KairosDB query this interpretation runs (for one metric; `None` when it covers
    /// every metric, which runs one count per metric).
    pub fn kairosdb_query(&self) -> Option<Value> {
        let metric = self.metric.as_ref()?;
        let mut tags = serde_json::Map::new();
        for (k, v) in &self.tags {
            tags.entry(k.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("an array")
                .push(json!(v));
        }
        let whole = json!({"value": (self.end - self.start + 1).max(1), "unit": "milliseconds"});
        let range = |name: &str| json!({"name": name, "sampling": whole, "align_sampling": false, "align_start_time": true});
        let aggregators = match self.aggregate {
            Aggregate::None => json!([]),
            Aggregate::Avg => json!([range("avg")]),
            Aggregate::Max => json!([range("max")]),
            Aggregate::Min => json!([range("min")]),
            Aggregate::Sum => json!([range("sum")]),
            Aggregate::Count => json!([range("count")]),
            Aggregate::Percentile(p) => {
                let mut a = range("percentile");
                a["percentile"] = json!(p);
                json!([a])
            }
            Aggregate::Rate => json!([{"name": "rate", "unit": "seconds"}, range("avg")]),
        };
        let mut m = json!({"name": metric, "tags": tags, "aggregators": aggregators});
        if !self.group_by.is_empty() {
            m["group_by"] = json!([{"name": "tag", "tags": self.group_by}]);
        }
        let mut q = json!({"start_absolute": self.start, "end_absolute": self.end, "metrics": [m]});
        if self.time_zone != "UTC" {
            q["time_zone"] = json!(self.time_zone);
        }
        Some(q)
    }
}

#[cfg(test)]
mod tests;

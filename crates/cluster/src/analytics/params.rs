//! The parameters of `GET /aggregate`, `GET /analytics` and `POST /compute`, read and
//! checked into an [`AggregateQuery`] (docs/cluster.md, "The analytics plan's API").
//!
//! Two kinds of refusal, as the plan's error codes tell them apart: a value that cannot be
//! read at all (a timestamp or number that does not parse, an unknown parameter, a
//! parameter given twice) is [`ParamError::Invalid`] (`INVALID_REQUEST`); one that reads
//! but makes no sense (`from` after `to`, an unknown aggregate, a zero window, too many
//! buckets) is [`ParamError::Validation`] (`VALIDATION_ERROR`). Both name the parameter.
//!
//! Not here: running the query (`partial.rs`, `report.rs`), HTTP.

use std::collections::BTreeMap;

use kairosdb_model::{TagFilter, TagMatcher};

/// Most buckets one group of an `/aggregate` answer may have (VictoriaMetrics refuses
/// above 30,000 points per series by default; this is the same kind of guard).
pub const MAX_BUCKETS: i64 = 50_000;
/// Longest rolling window, in buckets.
pub const MAX_ROLLING: u32 = 1_000;
/// The range when `from` is not given: the hour before `to`.
pub const DEFAULT_SPAN_MS: i64 = 3_600_000;

/// A refused parameter: its name and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// The value cannot be read (`INVALID_REQUEST`).
    #[error("{message}")]
    Invalid { parameter: String, message: String },
    /// The value reads but is not acceptable (`VALIDATION_ERROR`).
    #[error("{message}")]
    Validation { parameter: String, message: String },
}

impl ParamError {
    pub fn invalid(parameter: &str, message: impl Into<String>) -> ParamError {
        ParamError::Invalid {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    pub fn validation(parameter: &str, message: impl Into<String>) -> ParamError {
        ParamError::Validation {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    pub fn parameter(&self) -> &str {
        match self {
            ParamError::Invalid { parameter, .. } | ParamError::Validation { parameter, .. } => {
                parameter
            }
        }
    }
}

/// Which endpoint the parameters are for: each takes its own set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Aggregate,
    Analytics,
    Compute,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Aggregate => "/aggregate",
            Endpoint::Analytics => "/analytics",
            Endpoint::Compute => "/compute",
        }
    }

    /// The parameters it takes.
    fn takes(self) -> &'static [&'static str] {
        const SELECT: [&str; 6] = ["key", "from", "to", "tags", "hosts", "datacenters"];
        match self {
            Endpoint::Analytics => &SELECT,
            Endpoint::Compute => &[
                "key",
                "from",
                "to",
                "tags",
                "hosts",
                "datacenters",
                "window",
                "agg",
                "group_by",
            ],
            Endpoint::Aggregate => &[
                "key",
                "from",
                "to",
                "tags",
                "hosts",
                "datacenters",
                "window",
                "agg",
                "group_by",
                "rolling",
                "order_by",
                "limit",
            ],
        }
    }
}

/// One aggregate of `agg=`.
#[derive(Clone, Debug, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    /// `pNN`: the NN-th percentile, `p` in (0, 1]; `name` as written (`p99.9`).
    Percentile {
        p: f64,
        name: String,
    },
}

impl Agg {
    /// The default of `/aggregate`: every aggregate that needs no values kept.
    pub const CHEAP: [Agg; 5] = [Agg::Avg, Agg::Min, Agg::Max, Agg::Sum, Agg::Count];

    pub fn name(&self) -> &str {
        match self {
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Sum => "sum",
            Agg::Count => "count",
            Agg::Percentile { name, .. } => name,
        }
    }

    fn parse(text: &str) -> Option<Agg> {
        Some(match text {
            "avg" | "mean" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "count" => Agg::Count,
            _ => {
                let number = text.strip_prefix('p')?;
                let n: f64 = number.parse().ok()?;
                let digits = number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                if !(digits && n > 0.0 && n <= 100.0) {
                    return None;
                }
                // `99.9e-2` is read with one rounding; `99.9 / 100.0` would take two.
                let p = format!("{number}e-2").parse().ok()?;
                Agg::Percentile {
                    p,
                    name: text.to_owned(),
                }
            }
        })
    }
}

/// What `order_by` sorts on.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderField {
    Time,
    /// An aggregate, by its index in [`AggregateQuery::aggs`].
    Agg(usize),
    /// A `group_by` tag, by its index in [`AggregateQuery::group_by`].
    Tag(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderKey {
    pub field: OrderField,
    pub descending: bool,
}

/// A bucket width: `text` as written, `ms` its length.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub ms: i64,
    pub text: String,
}

/// A checked `/aggregate` (or `/analytics`, `/compute`) request.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateQuery {
    /// The metric.
    pub key: String,
    /// `tags`, `hosts` (tag `host`) and `datacenters` (tag `datacenter`).
    pub filter: TagFilter,
    /// Inclusive, epoch milliseconds.
    pub from: i64,
    /// Exclusive.
    pub to: i64,
    /// Bucket width; `None`: one bucket for the whole range.
    pub window: Option<Window>,
    /// Buckets each answer is computed over (this one and the ones before it); 1 = none.
    pub rolling: u32,
    pub aggs: Vec<Agg>,
    pub group_by: Vec<String>,
    pub order_by: Vec<OrderKey>,
    pub limit: Option<usize>,
}

impl AggregateQuery {
    /// Whether an aggregate needs the values themselves (a percentile).
    pub fn needs_values(&self) -> bool {
        self.aggs
            .iter()
            .any(|a| matches!(a, Agg::Percentile { .. }))
    }

    /// The first instant read: `from`, or earlier by the rolling window's older buckets.
    pub fn read_start(&self) -> i64 {
        match &self.window {
            Some(w) => self
                .from
                .saturating_sub(i64::from(self.rolling - 1).saturating_mul(w.ms)),
            None => self.from,
        }
    }

    /// The start of the first bucket answered.
    pub fn first_bucket(&self) -> i64 {
        match &self.window {
            Some(w) => bucket_start(self.from, w.ms),
            None => self.from,
        }
    }
}

/// The bucket `t` falls in: buckets are aligned on the epoch (as InfluxDB's
/// `GROUP BY time()` and VictoriaMetrics' steps are), `[k·w, (k+1)·w)`.
pub fn bucket_start(t: i64, window_ms: i64) -> i64 {
    t.div_euclid(window_ms) * window_ms
}

/// The parameters as `(name, value)` pairs, by name, values in order.
type Pairs<'a> = BTreeMap<&'a str, Vec<&'a str>>;

/// Reads and checks the parameters of `endpoint`; `now_ms` is the default `to`.
pub fn parse(
    pairs: &[(String, String)],
    endpoint: Endpoint,
    now_ms: i64,
) -> Result<AggregateQuery, ParamError> {
    let params = collect(pairs, endpoint)?;
    let key = single(&params, "key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ParamError::validation("key", "key is required: the metric to read"))?
        .to_owned();
    let (from, to) = range(&params, now_ms)?;
    let window = single(&params, "window")?
        .map(|w| parse_window(w, "window"))
        .transpose()?;
    let rolling = rolling(&params, window.as_ref())?;
    let aggs = aggs(&params, endpoint)?;
    let group_by = names(&params, "group_by");
    let order_by = order_by(&params, &aggs, &group_by)?;
    let limit = single(&params, "limit")?.map(parse_limit).transpose()?;
    let query = AggregateQuery {
        key,
        filter: filter(&params)?,
        from,
        to,
        window,
        rolling,
        aggs,
        group_by,
        order_by,
        limit,
    };
    check_buckets(&query)?;
    Ok(query)
}

/// Groups the pairs by name; unknown names are refused.
fn collect(pairs: &[(String, String)], endpoint: Endpoint) -> Result<Pairs<'_>, ParamError> {
    let mut params = Pairs::new();
    for (name, value) in pairs {
        if !endpoint.takes().contains(&name.as_str()) {
            return Err(ParamError::invalid(
                name,
                format!(
                    "unknown parameter {name:?}; {} takes {}",
                    endpoint.path(),
                    endpoint.takes().join(", ")
                ),
            ));
        }
        params
            .entry(name.as_str())
            .or_default()
            .push(value.as_str());
    }
    Ok(params)
}

/// A parameter given at most once.
fn single<'a>(params: &Pairs<'a>, name: &str) -> Result<Option<&'a str>, ParamError> {
    match params.get(name).map(Vec::as_slice) {
        None => Ok(None),
        Some([one]) => Ok(Some(one)),
        Some(_) => Err(ParamError::invalid(
            name,
            format!("{name} is given more than once"),
        )),
    }
}

/// A list parameter: comma lists, repeating the parameter adds to the list; blank items
/// are skipped.
fn list<'a>(params: &Pairs<'a>, name: &str) -> Vec<&'a str> {
    params
        .get(name)
        .into_iter()
        .flatten()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// A list of names without repeats, in first-seen order.
fn names(params: &Pairs<'_>, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in list(params, name) {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

fn range(params: &Pairs<'_>, now_ms: i64) -> Result<(i64, i64), ParamError> {
    let time = |name: &str| -> Result<Option<i64>, ParamError> {
        single(params, name)?
            .map(|t| parse_time(t).map_err(|e| ParamError::invalid(name, format!("{name}: {e}"))))
            .transpose()
    };
    let to = time("to")?.unwrap_or(now_ms);
    let from = time("from")?.unwrap_or(to.saturating_sub(DEFAULT_SPAN_MS));
    if from >= to {
        return Err(ParamError::validation(
            "from",
            format!(
                "from ({}) must be before to ({})",
                format_time(from),
                format_time(to)
            ),
        ));
    }
    Ok((from, to))
}

/// An instant: epoch milliseconds (an integer), an RFC 3339 / ISO 8601 timestamp with an
/// offset (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`), or a date
/// (`2024-05-01`, midnight UTC). `Err` says why not.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        if text.len() == 10 {
            let ts = date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(ts.timestamp().as_millisecond());
        }
    }
    Err(format!(
        "{text:?} is not a time: expected epoch milliseconds or RFC 3339 with an offset, \
         e.g. 2024-05-01T12:00:00Z"
    ))
}

/// `ms` as RFC 3339 in UTC (`2024-05-01T12:00:00Z`).
pub fn format_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// `500ms`, `30s`, `5m`, `1h`, `1d`, `1w`: a fixed length (months and years vary, so
/// they are not windows).
fn parse_window(text: &str, parameter: &str) -> Result<Window, ParamError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => {
            return Err(ParamError::invalid(
                parameter,
                format!("{parameter} {text:?} is not a duration: expected a number and ms, s, m, h, d or w, e.g. 5m"),
            ))
        }
    };
    let n: i64 = number.parse().map_err(|_| {
        ParamError::invalid(
            parameter,
            format!("{parameter} {text:?} does not start with a whole number"),
        )
    })?;
    let ms = n.checked_mul(unit_ms).filter(|ms| *ms > 0).ok_or_else(|| {
        ParamError::validation(
            parameter,
            format!("{parameter} {text:?} must be longer than zero (and fit in 292 million years)"),
        )
    })?;
    Ok(Window {
        ms,
        text: text.to_owned(),
    })
}

/// `rolling`: a number of buckets, or a duration that is a whole number of windows.
fn rolling(params: &Pairs<'_>, window: Option<&Window>) -> Result<u32, ParamError> {
    let Some(text) = single(params, "rolling")? else {
        return Ok(1);
    };
    let Some(window) = window else {
        return Err(ParamError::validation(
            "rolling",
            "rolling needs a window: it spans that many buckets",
        ));
    };
    let buckets: i64 = match text.parse::<i64>() {
        Ok(n) => n,
        Err(_) => {
            let span = parse_window(text, "rolling")?;
            if span.ms % window.ms != 0 {
                return Err(ParamError::validation(
                    "rolling",
                    format!(
                        "rolling {text:?} is not a whole number of windows of {}",
                        window.text
                    ),
                ));
            }
            span.ms / window.ms
        }
    };
    if !(1..=i64::from(MAX_ROLLING)).contains(&buckets) {
        return Err(ParamError::validation(
            "rolling",
            format!("rolling must span 1 to {MAX_ROLLING} buckets, not {buckets}"),
        ));
    }
    Ok(buckets as u32)
}

fn aggs(params: &Pairs<'_>, endpoint: Endpoint) -> Result<Vec<Agg>, ParamError> {
    let asked = list(params, "agg");
    if endpoint == Endpoint::Analytics {
        return Ok(vec![Agg::Avg]);
    }
    if asked.is_empty() {
        return Ok(Agg::CHEAP.to_vec());
    }
    let mut out: Vec<Agg> = Vec::new();
    for text in asked {
        let agg = Agg::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
            ParamError::validation(
                "agg",
                format!("unknown aggregate {text:?}; expected avg, min, max, sum, count or pNN with 0 < NN <= 100 (p50, p95, p99, p99.9)"),
            )
        })?;
        if !out.contains(&agg) {
            out.push(agg);
        }
    }
    Ok(out)
}

/// `order_by=-avg,time`: `time`, an aggregate of `agg` or a tag of `group_by`, each
/// descending with a leading `-` (ascending with `+` or nothing).
fn order_by(
    params: &Pairs<'_>,
    aggs: &[Agg],
    group_by: &[String],
) -> Result<Vec<OrderKey>, ParamError> {
    list(params, "order_by")
        .into_iter()
        .map(|text| {
            let (descending, name) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.strip_prefix('+').unwrap_or(text)),
            };
            let field = if name == "time" {
                OrderField::Time
            } else if let Some(i) = aggs.iter().position(|a| a.name() == name) {
                OrderField::Agg(i)
            } else if let Some(i) = group_by.iter().position(|g| g == name) {
                OrderField::Tag(i)
            } else {
                return Err(ParamError::validation(
                    "order_by",
                    format!("cannot order by {name:?}: expected time, an aggregate of agg or a tag of group_by"),
                ));
            };
            Ok(OrderKey { field, descending })
        })
        .collect()
}

fn parse_limit(text: &str) -> Result<usize, ParamError> {
    let n: i64 = text.parse().map_err(|_| {
        ParamError::invalid("limit", format!("limit {text:?} is not a whole number"))
    })?;
    usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        ParamError::validation("limit", format!("limit must be at least 1, not {n}"))
    })
}

/// `tags=env:prod,region:eu`, `hosts=web-*`, `datacenters=eu-?`: every value given for one
/// tag name is accepted (OR, as KairosDB's tag filters); different names must all match.
fn filter(params: &Pairs<'_>) -> Result<TagFilter, ParamError> {
    let mut tags: BTreeMap<String, Vec<TagMatcher>> = BTreeMap::new();
    for pair in list(params, "tags") {
        let (name, value) = pair.split_once(':').ok_or_else(|| {
            ParamError::invalid("tags", format!("tags item {pair:?} is not name:value"))
        })?;
        if name.is_empty() || value.is_empty() {
            return Err(ParamError::validation(
                "tags",
                format!("tags item {pair:?} has an empty name or value"),
            ));
        }
        tags.entry(name.to_owned())
            .or_default()
            .push(matcher(value));
    }
    for (parameter, tag) in [("hosts", "host"), ("datacenters", "datacenter")] {
        for value in list(params, parameter) {
            tags.entry(tag.to_owned()).or_default().push(matcher(value));
        }
    }
    Ok(TagFilter {
        tags: tags.into_iter().collect(),
    })
}

/// A value with `*` (any run of characters) or `?` (one character) matches as a
/// wildcard, anchored at both ends; any other value exactly.
pub fn matcher(value: &str) -> TagMatcher {
    if !value.contains(['*', '?']) {
        return TagMatcher::Exact(value.to_owned());
    }
    let mut pattern = String::with_capacity(value.len() + 8);
    let mut literal = [0u8; 4];
    for c in value.chars() {
        match c {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            c => pattern.push_str(&regex::escape(c.encode_utf8(&mut literal))),
        }
    }
    TagMatcher::regex(&pattern)
        .unwrap_or_else(|e| panic!("BUG: an escaped wildcard is a regex: {e}"))
}

fn check_buckets(q: &AggregateQuery) -> Result<(), ParamError> {
    let Some(window) = &q.window else {
        return Ok(());
    };
    let span = q.to - q.first_bucket();
    let buckets = span / window.ms + i64::from(span % window.ms != 0);
    if buckets > MAX_BUCKETS {
        return Err(ParamError::validation(
            "window",
            format!(
                "a window of {} makes {buckets} buckets between {} and {}; at most {MAX_BUCKETS}: widen the window or narrow the range",
                window.text,
                format_time(q.from),
                format_time(q.to)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

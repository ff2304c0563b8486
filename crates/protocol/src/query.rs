//! Query JSON parsing (spec §4.1–§4.3, Appendix A): `POST /api/v1/datapoints/query`
//! (and `/query/tags`, `/delete`) bodies → [`QueryRequest`], with KairosDB's validation
//! texts and order of checks (`QueryParser.parseQueryMetric`).
//!
//! The body is parsed leniently into an order-preserving tree ([`crate::lenient`]);
//! then the top-level fields, each metric, its `group_by` (before `aggregators`, as in
//! KairosDB), `aggregators`, `plugins`, `order` and tag filter are read in KairosDB's
//! order so that the FIRST error reported is KairosDB's. Each aggregator and group-by is
//! checked against its row in [`kairosdb_model::catalogue`] (name, unknown property —
//! "no matching setter" —, each property's value as Gson converts it for the setter:
//! numbers, time units, time zones, enum values, `sampling.value`, `thresholds`), then
//! the row builds its typed spec with the bean validations (`divisor`, `percentile`, the
//! group-bys'), so `kairosdb-query` gets [`AggregatorSpec`]s and [`GroupBySpec`]s and
//! needs none of Gson's coercions.
//!
//! [`AggregatorSpec`]: kairosdb_model::catalogue::AggregatorSpec
//!
//! Leniency on purpose (user-needs §2.5): numbers may be strings, units any case (plural,
//! and — a small extension over KairosDB — singular), unknown top-level and metric fields
//! are ignored. Time zones are checked against jiff's bundled IANA database plus fixed
//! offsets; `query.<tz> is not a valid time zone, must be one of [...]` lists those ids.

use std::fmt;

use kairosdb_model::catalogue::{
    self, AggregatorSpec, Family, GroupBySpec, Processor, PropKind, PropValue, Property, Props,
    Sampling, ScoreThreshold, Threshold,
};
use kairosdb_model::{
    MetricQuery, Order, QueryRequest, TagFilter, TagMatcher, TimeRange, TimeUnit as Unit,
};

use crate::civil::add_months;
use crate::javanum;
use crate::lenient::{self, Node};

/// A query that KairosDB would refuse, with the status it answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// 400 with `{"errors":[message]}`: syntax, validation and `QueryException`s.
    #[error("{0}")]
    Invalid(String),
    /// 500: KairosDB throws a runtime exception for this body (e.g. valid JSON that is
    /// not an object: `Not a JSON Object: ...`).
    #[error("{0}")]
    Failed(String),
}

impl QueryError {
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Invalid(_) => 400,
            QueryError::Failed(_) => 500,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            QueryError::Invalid(m) | QueryError::Failed(m) => m,
        }
    }
}

use QueryError::{Failed, Invalid};

/// Text that only error messages use (a Gson path such as `$.sampling.value`, a query
/// context such as `query.metric[0].aggregators[1]`), written out only when a message
/// is built. Formatting them eagerly was most of the cost of parsing a valid query.
struct Lazy<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

type Text<'a> = &'a dyn fmt::Display;

/// Parses a query body; `now_ms` resolves relative times. `Err` holds the single
/// KairosDB error text (HTTP 400; see [`parse_query_request`] for the status).
pub fn parse_query(body: &[u8], now_ms: i64) -> Result<QueryRequest, String> {
    parse_query_request(body, now_ms).map_err(|e| e.message().to_owned())
}

const UNITS: &str = "MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS";
/// Gson builds the tree recursively; deeper documents would overflow Java's stack.
const MAX_DEPTH: usize = 256;

/// Like [`parse_query`], keeping KairosDB's HTTP status (400 or 500).
pub fn parse_query_request(body: &[u8], now_ms: i64) -> Result<QueryRequest, QueryError> {
    // Java decodes the body as UTF-8 with replacement characters.
    let text = String::from_utf8_lossy(body);
    let root = match lenient::parse(&text, MAX_DEPTH) {
        Ok(n) => n,
        // An empty document is JsonNull for Gson's `JsonParser`.
        Err(e) if e.eof && is_blank(&text) => Node::Null,
        Err(e) => return Err(Invalid(format!("com.google.gson.JsonSyntaxException: {e}"))),
    };
    if !matches!(root, Node::Object(_)) {
        return Err(Failed(format!("Not a JSON Object: {}", gson_text(&root))));
    }

    // Top-level fields (Gson reflective adapter, document order).
    let mut start_absolute = None;
    let mut end_absolute = None;
    let mut start_relative: Option<Relative> = None;
    let mut end_relative: Option<Relative> = None;
    let mut cache_time: i32 = 0;
    let mut time_zone: Option<String> = None;
    for (key, value) in root.members() {
        let path = Lazy(|f| write!(f, "$.{key}"));
        let path: Text<'_> = &path;
        match key {
            "start_absolute" => start_absolute = gson_long(value, path)?,
            "end_absolute" => end_absolute = gson_long(value, path)?,
            "cache_time" => {
                if let Some(v) = gson_int(value, path)? {
                    cache_time = v;
                }
            }
            "start_relative" => start_relative = relative(value, path)?,
            "end_relative" => end_relative = relative(value, path)?,
            "time_zone" => {
                time_zone = match value {
                    Node::Null => None,
                    v => {
                        let tz = get_as_string(v).map_err(Failed)?;
                        check_time_zone(&tz).map_err(|m| Invalid(format!("query.{m}")))?
                    }
                }
            }
            _ => {}
        }
    }
    // Bean validation of the query object (no `query.` prefix ⚠).
    if cache_time < 0 {
        return Err(Invalid(
            "cache_time must be greater than or equal to 0".into(),
        ));
    }
    for (name, rel) in [
        ("start_relative", &start_relative),
        ("end_relative", &end_relative),
    ] {
        if let Some(r) = rel {
            if r.value < 0 {
                return Err(Invalid(format!(
                    "{name}.value must be greater than or equal to 0"
                )));
            }
            if r.unit.is_none() {
                return Err(Invalid(format!("{name}.unit may not be null")));
            }
        }
    }

    if let Some(plugins) = root.get("plugins") {
        check_plugins("", plugins)?;
    }
    let metrics = match root.get("metrics") {
        None => {
            return Err(Invalid(
                "query.metric[] must have a size of at least 1".into(),
            ))
        }
        Some(Node::Array(items)) => items,
        Some(other) => {
            return Err(Failed(format!(
                "java.lang.ClassCastException: {} cannot be cast to com.google.gson.JsonArray",
                gson_class(other)
            )))
        }
    };

    let start = match (start_absolute, &start_relative) {
        (Some(s), _) => Some(s),
        (None, Some(r)) => Some(r.before(now_ms)),
        (None, None) => None,
    };
    let end = match (end_absolute, &end_relative) {
        (Some(e), _) => e,
        (None, Some(r)) => r.before(now_ms),
        // No end = Long.MAX_VALUE, not "now" (spec §4.1, §14.4).
        (None, None) => i64::MAX,
    };

    let mut out = Vec::with_capacity(metrics.len());
    for (i, m) in metrics.iter().enumerate() {
        let ctx = Lazy(|f| write!(f, "query.metric[{i}]"));
        let ctx: Text<'_> = &ctx;
        let mut mq = metric(m, ctx)?;
        let Some(start) = start else {
            return Err(Invalid(format!(
                "{ctx}.start_time relative or absolute time must be set"
            )));
        };
        if end < start {
            return Err(Invalid(format!(
                "{ctx}.end_time must be greater than the start time"
            )));
        }
        // Group-bys first, then aggregators (KairosDB's feature processor order).
        if let Some(gb) = m.get("group_by") {
            for (j, item) in processor_array(gb)?.iter().enumerate() {
                match processor(item, ctx, Family::GroupBy, j, catalogue::group_by)? {
                    // Only the first tag group-by groups (`QueryParser`).
                    GroupBySpec::Tag { tags } if mq.group_by_tags.is_empty() => {
                        mq.group_by_tags = tags;
                    }
                    GroupBySpec::Tag { .. } => {}
                    other => mq.group_bys.push(other),
                }
            }
        }
        if let Some(aggs) = m.get("aggregators") {
            for (j, item) in processor_array(aggs)?.iter().enumerate() {
                let spec = processor(item, ctx, Family::Aggregators, j, catalogue::aggregator)?;
                mq.aggregators.push(spec);
            }
        }
        if let Some(plugins) = m.get("plugins") {
            check_plugins(&ctx.to_string(), plugins)?;
        }
        if let Some(order) = m.get("order") {
            let o = get_as_string(order).map_err(Failed)?;
            mq.order = if o.eq_ignore_ascii_case("asc") {
                Order::Asc
            } else if o.eq_ignore_ascii_case("desc") {
                Order::Desc
            } else {
                return Err(Invalid(format!(
                    "{ctx}.order must be either 'asc' or 'desc'"
                )));
            };
        }
        out.push(mq);
    }

    Ok(QueryRequest {
        range: match start {
            Some(s) => TimeRange::new(s, end),
            None => TimeRange::new(i64::MIN, end),
        },
        time_zone,
        cache_time: u32::try_from(cache_time).unwrap_or(0),
        metrics: out,
    })
}

/// One aggregator object on its own (for tools and tests, and requests that carry
/// aggregators outside a query), checked as the first aggregator of `query.metric[0]`.
pub fn parse_aggregator(json: &str) -> Result<AggregatorSpec, QueryError> {
    let item = parse_object(json)?;
    processor(
        &item,
        &"query.metric[0]",
        Family::Aggregators,
        0,
        catalogue::aggregator,
    )
}

/// One group-by object on its own, checked as the first group-by of `query.metric[0]`.
pub fn parse_group_by(json: &str) -> Result<GroupBySpec, QueryError> {
    let item = parse_object(json)?;
    processor(
        &item,
        &"query.metric[0]",
        Family::GroupBy,
        0,
        catalogue::group_by,
    )
}

fn parse_object(json: &str) -> Result<Node, QueryError> {
    lenient::parse(json, MAX_DEPTH)
        .map_err(|e| Invalid(format!("com.google.gson.JsonSyntaxException: {e}")))
}

fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// `JsonElement.toString()` for messages.
fn gson_text(n: &Node) -> String {
    n.to_json()
}

fn gson_class(n: &Node) -> &'static str {
    match n {
        Node::Null => "com.google.gson.JsonNull",
        Node::Object(_) => "com.google.gson.JsonObject",
        Node::Array(_) => "com.google.gson.JsonArray",
        _ => "com.google.gson.JsonPrimitive",
    }
}

fn token(n: &Node) -> &'static str {
    match n {
        Node::Null => "NULL",
        Node::Bool(_) => "BOOLEAN",
        Node::Number(_) => "NUMBER",
        Node::Str(_) => "STRING",
        Node::Array(_) => "BEGIN_ARRAY",
        Node::Object(_) => "BEGIN_OBJECT",
    }
}

/// `JsonElement.getAsString()` (arrays of one element delegate to it). `Err` is the
/// message of the runtime exception Java throws.
fn get_as_string(n: &Node) -> Result<String, String> {
    let mut n = n;
    loop {
        return match n {
            Node::Str(s) => Ok(s.clone()),
            Node::Number(s) => Ok(s.clone()),
            Node::Bool(b) => Ok(b.to_string()),
            Node::Null => Err("JsonNull".into()),
            Node::Object(_) => Err("JsonObject".into()),
            Node::Array(items) if items.len() == 1 => {
                n = &items[0];
                continue;
            }
            Node::Array(_) => Err("java.lang.IllegalStateException".into()),
        };
    }
}

/// Gson `Long` field (`nextLong` coercions); `Ok(None)` for null.
fn gson_long(n: &Node, path: Text<'_>) -> Result<Option<i64>, QueryError> {
    let r = match n {
        Node::Null => return Ok(None),
        Node::Number(s) => javanum::gson_long_from_number(s).ok_or_else(|| s.clone()),
        Node::Str(s) => javanum::gson_long_from_text(s).ok_or_else(|| s.clone()),
        other => {
            return Err(Invalid(format!(
                "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected a long but was {} at path {path}",
                token(other)
            )))
        }
    };
    r.map(Some).map_err(|s| {
        Invalid(format!(
            "com.google.gson.JsonSyntaxException: java.lang.NumberFormatException: Expected a long but was {s} at path {path}"
        ))
    })
}

/// Gson `int` field; `Ok(None)` for null (a primitive keeps its default).
fn gson_int(n: &Node, path: Text<'_>) -> Result<Option<i32>, QueryError> {
    let (raw, is_str) = match n {
        Node::Null => return Ok(None),
        Node::Number(s) => (s, false),
        Node::Str(s) => (s, true),
        other => {
            return Err(Invalid(format!(
                "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected an int but was {} at path {path}",
                token(other)
            )))
        }
    };
    javanum::gson_int(raw, is_str).map(Some).ok_or_else(|| {
        Invalid(format!(
            "com.google.gson.JsonSyntaxException: java.lang.NumberFormatException: For input string: \"{raw}\""
        ))
    })
}

/// Gson `double` (`nextDouble`: a `NumberFormatException` is not wrapped).
fn gson_double(n: &Node, path: Text<'_>) -> Result<Option<f64>, PropError> {
    match n {
        Node::Null => Ok(None),
        Node::Number(s) => Ok(s.parse::<f64>().ok()),
        Node::Str(s) => javanum::parse_double(s).map(Some).map_err(PropError::NumberFormat),
        other => Err(PropError::Syntax(format!(
            "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected a double but was {} at path {path}",
            token(other)
        ))),
    }
}

/// Gson `boolean` field.
fn gson_bool(n: &Node, path: Text<'_>) -> Result<Option<bool>, String> {
    match n {
        Node::Null => Ok(None),
        Node::Bool(b) => Ok(Some(*b)),
        Node::Str(s) => Ok(Some(s.eq_ignore_ascii_case("true"))),
        other => Err(format!(
            "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected a boolean but was {} at path {path}",
            token(other)
        )),
    }
}

/// The `TimeUnitDeserializer`: `Err` is the contextual message without its prefix.
fn time_unit(n: &Node) -> Result<Option<Unit>, QueryError> {
    if matches!(n, Node::Null) {
        return Ok(None);
    }
    let s = get_as_string(n).map_err(Failed)?;
    Unit::parse(&s).map(Some).ok_or_else(|| {
        Invalid(format!(
            "{s} is not a valid time unit, must be one of {UNITS}"
        ))
    })
}

/// `start_relative` / `end_relative` (`RelativeTime`).
struct Relative {
    value: i64,
    unit: Option<Unit>,
}

fn relative(n: &Node, path: Text<'_>) -> Result<Option<Relative>, QueryError> {
    match n {
        Node::Null => Ok(None),
        Node::Object(_) => {
            let mut r = Relative {
                value: 0,
                unit: None,
            };
            for (k, v) in n.members() {
                match k {
                    "value" => {
                        if let Some(x) = gson_long(v, &Lazy(|f| write!(f, "{path}.value")))? {
                            r.value = x;
                        }
                    }
                    "unit" => {
                        r.unit = time_unit(v).map_err(|e| match e {
                            Invalid(m) => Invalid(format!("query.{m}")),
                            other => other,
                        })?;
                    }
                    _ => {}
                }
            }
            Ok(Some(r))
        }
        other => Err(Invalid(format!(
            "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected BEGIN_OBJECT but was {} at path {path}",
            token(other)
        ))),
    }
}

impl Relative {
    /// `RelativeTime.getTimeRelativeTo(now)`: a UTC calendar, milliseconds subtracted as a
    /// long, other units through `Calendar.add(field, -(int) value)` (months and years
    /// clamp the day of month). Deviation: the proleptic Gregorian calendar is used
    /// before 1582 (Java switches to Julian).
    fn before(&self, now: i64) -> i64 {
        let unit = self.unit.unwrap_or(Unit::Milliseconds);
        if unit == Unit::Milliseconds {
            return now.wrapping_sub(self.value);
        }
        let n = i64::from((self.value as i32).wrapping_neg());
        let fixed = |ms: i64| now.wrapping_add(n.wrapping_mul(ms));
        match unit {
            Unit::Milliseconds => now,
            Unit::Seconds => fixed(1_000),
            Unit::Minutes => fixed(60_000),
            Unit::Hours => fixed(3_600_000),
            Unit::Days => fixed(86_400_000),
            Unit::Weeks => fixed(604_800_000),
            Unit::Months => add_months(now, n),
            Unit::Years => add_months(now, n.wrapping_mul(12)),
        }
    }
}

/// `DateTimeZoneDeserializer`: `""` → UTC (`None`); an unknown id → the contextual
/// message (caller adds the prefix).
fn check_time_zone(tz: &str) -> Result<Option<String>, String> {
    if tz.is_empty() {
        return Ok(None);
    }
    // jiff's bundled IANA database (the ids Joda-Time knows, and case-insensitive).
    let db = jiff::tz::db();
    if is_offset(tz) || db.get(tz).is_ok() {
        return Ok(Some(tz.to_owned()));
    }
    let mut ids: Vec<String> = db.available().map(|n| n.to_string()).collect();
    ids.sort();
    Err(format!(
        "{tz} is not a valid time zone, must be one of [{}]",
        ids.join(", ")
    ))
}

/// Joda fixed offsets: `±hh`, `±hh:mm`, `±hh:mm:ss`, `±hh:mm:ss.SSS`.
fn is_offset(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 3 || !matches!(b[0], b'+' | b'-') {
        return false;
    }
    let two = |i: usize, max: u8| -> bool {
        b.len() >= i + 2
            && b[i].is_ascii_digit()
            && b[i + 1].is_ascii_digit()
            && (b[i] - b'0') * 10 + (b[i + 1] - b'0') <= max
    };
    match b.len() {
        3 => two(1, 23),
        6 => two(1, 23) && b[3] == b':' && two(4, 59),
        9 => two(1, 23) && b[3] == b':' && two(4, 59) && b[6] == b':' && two(7, 59),
        13 => {
            two(1, 23)
                && b[3] == b':'
                && two(4, 59)
                && b[6] == b':'
                && two(7, 59)
                && b[9] == b'.'
                && b[10..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// One `metrics[]` element (KairosDB `MetricDeserializer` + bean validation).
fn metric(m: &Node, ctx: Text<'_>) -> Result<MetricQuery, QueryError> {
    if !matches!(m, Node::Object(_)) {
        return Err(Invalid(format!(
            "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Not a JSON Object: {}",
            gson_text(m)
        )));
    }
    let name = match m.get("name") {
        None => None,
        Some(n) => Some(get_as_string(n).map_err(Failed)?),
    };
    let exclude_tags = match m.get("exclude_tags") {
        None => false,
        Some(n) => get_as_boolean(n)?,
    };
    let mut filter = TagFilter::default();
    let mut filter_text: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(tags) = m.get("tags") {
        if !matches!(tags, Node::Object(_)) {
            return Err(Invalid(format!(
                "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Not a JSON Object: {}",
                gson_text(tags)
            )));
        }
        // TreeMultimap: names and values sorted, values distinct.
        let mut multimap: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for (count, (key, value)) in tags.members().into_iter().enumerate() {
            let tctx = Lazy(|f| write!(f, "{ctx}.tags[{count}]"));
            if key.is_empty() {
                return Err(Invalid(format!("{tctx} name must not be empty")));
            }
            let bad = || Invalid(format!("{tctx}.{key} value must not be null or empty"));
            let values: Vec<&Node> = match value {
                Node::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            let entry = multimap.entry(key.to_owned()).or_default();
            for v in values {
                if matches!(v, Node::Null) {
                    return Err(bad());
                }
                let s = get_as_string(v).map_err(Failed)?;
                if s.is_empty() {
                    return Err(bad());
                }
                entry.insert(s);
            }
        }
        for (k, vs) in multimap {
            // `"host": []` adds no value and so no condition on `host`.
            if vs.is_empty() {
                continue;
            }
            let mut matchers = Vec::with_capacity(vs.len());
            for v in &vs {
                // Regex values (default prefix `regex:`) must match the whole tag value.
                match v.strip_prefix("regex:") {
                    Some(p) => matchers.push(TagMatcher::regex(p).map_err(|e| {
                        Failed(format!("java.util.regex.PatternSyntaxException: {e}"))
                    })?),
                    None => matchers.push(TagMatcher::Exact(v.clone())),
                }
            }
            filter.tags.push((k.clone(), matchers));
            filter_text.push((k, vs.into_iter().collect()));
        }
    }
    let limit = match m.get("limit") {
        None => 0,
        Some(n) => get_as_int(n)?,
    };
    let alias = match m.get("alias") {
        None => None,
        Some(n) => Some(get_as_string(n).map_err(Failed)?),
    };
    let name = match name {
        None => return Err(Invalid(format!("{ctx}.name may not be null"))),
        Some(n) if n.is_empty() => return Err(Invalid(format!("{ctx}.name may not be empty"))),
        Some(n) => n,
    };
    Ok(MetricQuery {
        name,
        filter,
        filter_text,
        // 0 (and, deliberately, negative values) mean no limit.
        limit: usize::try_from(limit).ok().filter(|&l| l > 0),
        order: Order::Asc,
        exclude_tags,
        alias,
        group_by_tags: Vec::new(),
        aggregators: Vec::new(),
        group_bys: Vec::new(),
    })
}

/// `JsonElement.getAsBoolean()`.
fn get_as_boolean(n: &Node) -> Result<bool, QueryError> {
    match n {
        Node::Bool(b) => Ok(*b),
        Node::Array(items) if items.len() == 1 => get_as_boolean(&items[0]),
        other => Ok(get_as_string(other)
            .map_err(Failed)?
            .eq_ignore_ascii_case("true")),
    }
}

/// `JsonElement.getAsInt()` (number: int, else long cast, else BigDecimal; string:
/// `Integer.parseInt`, whose failure is a 500 in KairosDB).
fn get_as_int(n: &Node) -> Result<i64, QueryError> {
    match n {
        Node::Number(s) => Ok(i64::from(javanum::number_long_value(s) as i32)),
        Node::Array(items) if items.len() == 1 => get_as_int(&items[0]),
        other => {
            let s = get_as_string(other).map_err(Failed)?;
            javanum::parse_int(&s)
                .map(i64::from)
                .map_err(|e| Failed(format!("java.lang.NumberFormatException: {e}")))
        }
    }
}

fn processor_array(n: &Node) -> Result<&[Node], QueryError> {
    match n {
        Node::Array(items) => Ok(items),
        other => Err(Failed(format!(
            "java.lang.IllegalStateException: Not a JSON Array: {}",
            gson_text(other)
        ))),
    }
}

/// Query plugins (query or metric level). Only `samplePlugin` is registered in the
/// default KairosDB build; it is accepted and has no effect here (its only use is tests).
fn check_plugins(ctx: &str, n: &Node) -> Result<(), QueryError> {
    for (j, item) in processor_array(n)?.iter().enumerate() {
        if !matches!(item, Node::Object(_)) {
            return Err(Failed(format!(
                "java.lang.IllegalStateException: Not a JSON Object: {}",
                gson_text(item)
            )));
        }
        let name = match item.get("name") {
            None => String::new(),
            Some(v) => get_as_string(v).map_err(Failed)?,
        };
        if name.is_empty() {
            let prefix = if ctx.is_empty() {
                String::new()
            } else {
                format!("{ctx}.")
            };
            return Err(Invalid(format!("{prefix}plugins[{j}] must have a name")));
        }
        if name != "samplePlugin" {
            return Err(Invalid(format!(
                "{ctx}.plugins[{j}].{name} invalid query plugin name"
            )));
        }
    }
    Ok(())
}

enum PropError {
    /// A `NumberFormatException` from `nextDouble`: `<ctx>.<property> <message>`.
    NumberFormat(String),
    /// A Gson syntax exception: its own message.
    Syntax(String),
}

impl PropError {
    fn into_query_error(self, qctx: Text<'_>, key: &str) -> QueryError {
        match self {
            PropError::NumberFormat(m) => Invalid(format!("{qctx}.{key} {m}")),
            PropError::Syntax(m) => Invalid(m),
        }
    }
}

/// Deliberate leniency: Grafana's v3 plugin sends the alignment flags with `rate` and
/// `sampler`; KairosDB 1.3 answers 400 ("no matching setter"), which breaks those panels.
/// Every aggregator accepts them; those that are not range aggregators ignore them.
const ALIGN_FLAGS: &[Property] = &[
    Property {
        name: "align_sampling",
        kind: PropKind::Bool,
        feature: None,
    },
    Property {
        name: "align_start_time",
        kind: PropKind::Bool,
        feature: None,
    },
    Property {
        name: "align_end_time",
        kind: PropKind::Bool,
        feature: None,
    },
];

/// One aggregator / group-by object → its typed spec: the name looked up in the
/// catalogue (`find`), every property checked and converted as Gson would for its
/// setter, then the row's bean validation.
fn processor<S: 'static>(
    item: &Node,
    ctx: Text<'_>,
    family: Family,
    j: usize,
    find: fn(&str) -> Option<&'static Processor<S>>,
) -> Result<S, QueryError> {
    if !matches!(item, Node::Object(_)) {
        return Err(Failed(format!(
            "java.lang.IllegalStateException: Not a JSON Object: {}",
            gson_text(item)
        )));
    }
    let name = match item.get("name") {
        None => String::new(),
        Some(v) => get_as_string(v).map_err(Failed)?,
    };
    let field = family.name();
    if name.is_empty() {
        return Err(Invalid(format!("{ctx}.{field}[{j}] must have a name")));
    }
    let qctx = Lazy(|f| write!(f, "{ctx}.{field}[{j}]"));
    let qctx: Text<'_> = &qctx;
    let Some(def) = find(&name) else {
        return Err(Invalid(format!("{qctx}.{name} invalid {field} name")));
    };
    let props = properties(item, def, family, qctx)?;
    // Bean validation of the whole object (Java field names ⚠, spec §4.3).
    (def.build)(&props).map_err(|m| Invalid(format!("{qctx}.{m}")))
}

/// The properties of one object in JSON order (`deserializeProperties`).
fn properties<S>(
    item: &Node,
    def: &'static Processor<S>,
    family: Family,
    qctx: Text<'_>,
) -> Result<Props, QueryError> {
    let mut props = Props::default();
    for (key, value) in item.members() {
        if key == "name" {
            continue;
        }
        let lenient = || match family {
            Family::Aggregators => ALIGN_FLAGS.iter().find(|p| p.name == key),
            Family::GroupBy => None,
        };
        let Some(p) = def
            .all_properties()
            .find(|p| p.name == key)
            .or_else(lenient)
        else {
            return Err(Invalid(format!(
                "Property '{key}' was specified for object '{}' but no matching setter was found on 'class org.kairosdb.core.{}.{}'",
                def.name,
                family.package(),
                def.class
            )));
        };
        if let Some(v) = read_prop(value, p.kind, key, qctx)? {
            props.set(p.name, v);
        }
    }
    Ok(props)
}

/// Converts one property value as Gson would for the setter's type, with KairosDB's
/// error texts. `None`: null, which leaves the property at its default.
fn read_prop(
    v: &Node,
    kind: PropKind,
    key: &str,
    qctx: Text<'_>,
) -> Result<Option<PropValue>, QueryError> {
    if matches!(v, Node::Null) {
        return Ok(None);
    }
    let path = Lazy(|f| write!(f, "$.{key}"));
    let path: Text<'_> = &path;
    let value = match kind {
        PropKind::Bool => gson_bool(v, path).map_err(Invalid)?.map(PropValue::Bool),
        PropKind::Long => gson_long(v, path)?.map(PropValue::Long),
        PropKind::Int => gson_int(v, path)?.map(PropValue::Int),
        PropKind::Double => gson_double(v, path)
            .map_err(|e| e.into_query_error(qctx, key))?
            .map(PropValue::Double),
        PropKind::Str => string_prop(v, path)?.map(PropValue::Str),
        PropKind::Any => Some(PropValue::Any(threshold(v))),
        PropKind::Unit => time_unit(v)
            .map_err(|e| in_context(e, qctx))?
            .map(PropValue::Unit),
        PropKind::TimeZone => {
            let tz = get_as_string(v).map_err(Failed)?;
            check_time_zone(&tz).map_err(|m| Invalid(format!("{qctx}.{m}")))?;
            // As written: `""` is UTC even under a query time zone.
            Some(PropValue::TimeZone(tz))
        }
        PropKind::Enum(names) => Some(PropValue::Enum(enum_prop(v, names, qctx)?)),
        PropKind::LooseEnum(names) => match v {
            Node::Str(s) => names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(s))
                .map(PropValue::Enum),
            _ => None,
        },
        PropKind::Duration => Some(PropValue::Duration(duration(v, key, path, qctx)?)),
        PropKind::DoubleArray => Some(PropValue::Doubles(doubles(v, key, path, qctx)?)),
        PropKind::StringArray => Some(PropValue::Strings(strings(v, path)?)),
        PropKind::Thresholds => Some(PropValue::Thresholds(thresholds(v, key, path, qctx)?)),
        PropKind::StringMap => Some(PropValue::Map(string_map(v, path)?)),
    };
    Ok(value)
}

/// Prefixes a contextual message (`<value> is not a valid time unit ...`) with the
/// processor's context.
fn in_context(e: QueryError, qctx: Text<'_>) -> QueryError {
    match e {
        Invalid(m) => Invalid(format!("{qctx}.{m}")),
        other => other,
    }
}

fn expected(what: &str, v: &Node, path: impl fmt::Display) -> QueryError {
    Invalid(format!(
        "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected {what} but was {} at path {path}",
        token(v)
    ))
}

/// A `String` setter. Only a JSON string sets it (a number or boolean leaves the default).
fn string_prop(v: &Node, path: Text<'_>) -> Result<Option<String>, QueryError> {
    match v {
        Node::Object(_) | Node::Array(_) => Err(expected("a string", v, path)),
        Node::Str(s) => Ok(Some(s.clone())),
        _ => Ok(None),
    }
}

/// `Object m_threshold`: numbers and strings keep their type.
fn threshold(v: &Node) -> Threshold {
    match v {
        Node::Number(s) => Threshold::Number(s.parse().unwrap_or(0.0)),
        Node::Str(s) => Threshold::Text(s.clone()),
        _ => Threshold::Other,
    }
}

/// A Java enum read with `valueOf` on the upper-cased text: the constant's index.
fn enum_prop(v: &Node, names: &[&str], qctx: Text<'_>) -> Result<usize, QueryError> {
    let s = get_as_string(v).map_err(Failed)?;
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&s)) {
        return Ok(i);
    }
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.to_ascii_lowercase()))
        .collect();
    let (last, rest) = quoted.split_last().expect("BUG: an enum without constants");
    // KairosDB says "trim type" for every enum ⚠ (spec §14.17).
    Err(Invalid(format!(
        "{qctx}.{s} is not a valid trim type, must be {} or {last}.",
        rest.join(", ")
    )))
}

/// `Sampling` / `Duration`: `{"value": long ≥ 0, "unit": TimeUnit}` (value defaults to 0).
fn duration(v: &Node, key: &str, path: Text<'_>, qctx: Text<'_>) -> Result<Sampling, QueryError> {
    if !matches!(v, Node::Object(_)) {
        return Err(expected("BEGIN_OBJECT", v, path));
    }
    let mut value = 0i64;
    let mut unit = None;
    for (k, x) in v.members() {
        match k {
            "value" => {
                let vpath = Lazy(|f| write!(f, "{path}.value"));
                value = gson_long(x, &vpath)?.unwrap_or(0);
            }
            "unit" => unit = time_unit(x).map_err(|e| in_context(e, qctx))?,
            _ => {}
        }
    }
    if value < 0 {
        return Err(Invalid(format!(
            "{qctx}.{key}.value must be greater than or equal to 0"
        )));
    }
    match unit {
        Some(unit) => Ok(Sampling { value, unit }),
        None => Err(Invalid(format!("{qctx}.{key}.unit may not be null"))),
    }
}

fn array<'n>(v: &'n Node, path: Text<'_>) -> Result<&'n [Node], QueryError> {
    match v {
        Node::Array(items) => Ok(items),
        other => Err(expected("BEGIN_ARRAY", other, path)),
    }
}

/// `double[]`: every element must read as a double; nulls and values that are not
/// finite numbers are left out.
fn doubles(v: &Node, key: &str, path: Text<'_>, qctx: Text<'_>) -> Result<Vec<f64>, QueryError> {
    let items = array(v, path)?;
    let mut out = Vec::with_capacity(items.len());
    for x in items {
        let d = gson_double(x, path).map_err(|e| e.into_query_error(qctx, key))?;
        let keep = match x {
            Node::Str(_) => d.filter(|d| d.is_finite()),
            _ => d,
        };
        out.extend(keep);
    }
    Ok(out)
}

/// `List<String>`: objects and arrays are refused first; then each element is read with
/// `getAsString` (a null one is a 500, as in KairosDB).
fn strings(v: &Node, path: Text<'_>) -> Result<Vec<String>, QueryError> {
    let items = array(v, path)?;
    if let Some(x) = items
        .iter()
        .find(|x| matches!(x, Node::Object(_) | Node::Array(_)))
    {
        return Err(expected("a string", x, path));
    }
    items
        .iter()
        .map(|x| get_as_string(x).map_err(Failed))
        .collect()
}

/// `score`'s `Threshold[]`.
fn thresholds(
    v: &Node,
    key: &str,
    path: Text<'_>,
    qctx: Text<'_>,
) -> Result<Vec<ScoreThreshold>, QueryError> {
    let items = array(v, path)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        let tpath = Lazy(|f| write!(f, "{path}[{i}]"));
        if !matches!(t, Node::Object(_)) {
            return Err(expected("BEGIN_OBJECT", t, &tpath));
        }
        let mut threshold = ScoreThreshold {
            value: 0.0,
            inferior: false,
        };
        for (k, x) in t.members() {
            match k {
                "value" => {
                    let vpath = Lazy(|f| write!(f, "{tpath}.value"));
                    let d = gson_double(x, &vpath).map_err(|e| e.into_query_error(qctx, key))?;
                    threshold.value = d.unwrap_or(0.0);
                }
                // Deliberate: KairosDB silently turns an unknown boundary into null and
                // fails later with a NullPointerException (500).
                "boundary" => {
                    let b = get_as_string(x).map_err(Failed)?;
                    threshold.inferior = b.eq_ignore_ascii_case("inferior");
                    if !threshold.inferior && !b.eq_ignore_ascii_case("superior") {
                        return Err(Invalid(format!(
                            "{qctx}.{key}[{i}].boundary {b} is not a valid boundary, must be 'superior' or 'inferior'"
                        )));
                    }
                }
                _ => {}
            }
        }
        out.push(threshold);
    }
    Ok(out)
}

/// `Map<String, String>`: strings, numbers (as written) and booleans; other values are
/// left out.
fn string_map(v: &Node, path: Text<'_>) -> Result<Vec<(String, String)>, QueryError> {
    if !matches!(v, Node::Object(_)) {
        return Err(expected("BEGIN_OBJECT", v, path));
    }
    Ok(v.members()
        .into_iter()
        .filter_map(|(k, x)| match x {
            Node::Str(s) | Node::Number(s) => Some((k.to_owned(), s.clone())),
            Node::Bool(b) => Some((k.to_owned(), b.to_string())),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests;

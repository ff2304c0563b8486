//! Ingest JSON parsing (spec §2, Appendix A): `POST /api/v1/datapoints` bodies →
//! [`WriteBatch`] plus KairosDB's error texts, with KairosDB's partial-failure semantics.
//!
//! How it works (the hot path):
//! 1. serde_json streams the body through the visitors below; no `Value` tree is built.
//!    Each metric object's fields are read into reusable scratch buffers. `datapoints`
//!    is taken as one `&RawValue` (serde validates it and borrows it from the body);
//!    a hand-written scanner then parses the usual `[[integer, plain number], ...]` shape
//!    straight into per-object long/double columns. Any other shape is staged entry by
//!    entry as raw JSON slices, so that the metric-level `type` (which may come after
//!    `datapoints`) can still decide how each value is converted.
//! 2. At the end of each metric object it is validated exactly as KairosDB's
//!    `DataPointsParser.validateAndAddDataPoints` does, the series slot is resolved once
//!    per (object, data type), and the columns are appended to the batch in one go (the
//!    staged entries go through Java's conversion rules one by one).
//!    Before serde, [`common`] tries the shape nearly every client sends with a
//!    hand-written tokenizer (the same state, scanner and step 2); any other body, or
//!    any surprise in it, goes to serde whole.
//! 3. Only if the strict parse hits a syntax error is the body rewritten by
//!    [`crate::lenient::to_strict`] (Gson lenient mode, which KairosDB applies inside each
//!    metric object) and parsed again.
//!
//! Partial failure (spec §2.6): validation errors are collected and parsing goes on; a
//! syntax error (or a Gson type-coercion error, which KairosDB reports the same way)
//! aborts with that single error, keeping the points of the metric objects completed
//! before it; a runtime exception in KairosDB (e.g. a non-numeric string timestamp inside
//! `datapoints`) is a 500 and keeps what was stored before it.
//!
//! Deliberate deviations, each marked below: `skip_validate` still rejects null/empty
//! metric names (spec §14.13); a negative `ttl` means "no TTL"; lenient syntax is only
//! accepted where KairosDB accepts it but error texts are approximations of Gson's; a
//! JSON number typed long whose integer part does not fit 64 bits is stored as the double
//! it denotes, or refused when that is not finite or the type was explicitly `long`,
//! instead of wrapped (issue 17, [`to_long`]; with or without `skip_validate`).

use std::borrow::Cow;
use std::fmt;

use kairosdb_model::batch::SeriesSlot;
use kairosdb_model::{BatchBuilder, DataType, WriteBatch};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::javanum;
use crate::lenient;

mod common;

/// Result of parsing one ingest body.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Points of every metric object that passed validation (spec §2.6: stored even
    /// when other objects fail).
    pub batch: WriteBatch,
    /// KairosDB error texts in encounter order (Appendix A). Non-empty → HTTP 400
    /// (or 500 when `internal_error` is set).
    pub errors: Vec<String>,
    /// KairosDB would answer 500: the body made its parser throw something other than a
    /// syntax or validation error (spec §1.4, e.g. `NumberFormatException` for a
    /// non-numeric string timestamp inside `datapoints`). `errors` then holds that one
    /// message; `batch` holds what KairosDB had already stored before the exception.
    pub internal_error: bool,
}

impl IngestOutcome {
    /// The HTTP status KairosDB answers with: 204, 400 or 500.
    pub fn status(&self) -> u16 {
        if self.internal_error {
            500
        } else if self.errors.is_empty() {
            204
        } else {
            400
        }
    }
}

const EOF_MESSAGE: &str = "Invalid json. No content due to end of input.";

/// Parses an (already decompressed) ingest body.
pub fn parse_ingest(body: &[u8]) -> IngestOutcome {
    let first = body
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    let Some(first) = first else {
        return failed(Vec::new(), EOF_MESSAGE.to_owned(), false);
    };
    match body[first] {
        b'[' | b'{' => {}
        // KairosDB peeks the first token with a strict reader: a JSON primitive there
        // is "Invalid start of json.", anything else a syntax error.
        b'"' => return failed(Vec::new(), "Invalid start of json.".to_owned(), false),
        _ => {
            let text = String::from_utf8_lossy(body);
            return match lenient::to_strict(&text, true) {
                Ok(_) => failed(Vec::new(), "Invalid start of json.".to_owned(), false),
                Err(p) => failed(Vec::new(), p.error.to_string(), false),
            };
        }
    }

    let run = common::run(body).unwrap_or_else(|| run(body));
    match run.end {
        End::Ok => run.outcome(),
        End::Abort(..) | End::Eof { .. } => run.finish_with_end(),
        End::Syntax(_) => {
            // Strict JSON failed: retry with Gson's leniency (spec §2.1).
            let text = String::from_utf8_lossy(body);
            match lenient::to_strict(&text, true) {
                Ok(json) => {
                    let second = self::run(&json);
                    second.finish_with_end()
                }
                Err(partial) => {
                    let second = self::run(&partial.json);
                    if partial.error.eof {
                        // Where the input ended decides KairosDB's message (spec §2.1).
                        second.finish_with_end()
                    } else {
                        failed(
                            second.builder.finish().series,
                            partial.error.to_string(),
                            false,
                        )
                    }
                }
            }
        }
    }
}

fn failed(
    series: Vec<kairosdb_model::SeriesPoints>,
    message: String,
    internal: bool,
) -> IngestOutcome {
    IngestOutcome {
        batch: WriteBatch { series },
        errors: vec![message],
        internal_error: internal,
    }
}

/// How one pass over a body ended.
enum End {
    Ok,
    /// Our visitor stopped the parse: KairosDB threw (syntax-class or runtime).
    Abort(AbortKind, String),
    /// Input ended; `in_object` = inside a metric object (else at the array level).
    Eof {
        in_object: bool,
        line: usize,
        column: usize,
        path: String,
    },
    /// A strict-JSON syntax error (the lenient retry may still accept the body).
    Syntax(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AbortKind {
    /// Gson `JsonSyntaxException` class: 400 with this single message.
    Syntax,
    /// Any other exception: 500.
    Internal,
}

struct Run {
    builder: BatchBuilder,
    errors: Vec<String>,
    end: End,
}

impl Run {
    fn outcome(self) -> IngestOutcome {
        IngestOutcome {
            batch: self.builder.finish(),
            errors: self.errors,
            internal_error: false,
        }
    }

    fn finish_with_end(mut self) -> IngestOutcome {
        match std::mem::replace(&mut self.end, End::Ok) {
            End::Ok => self.outcome(),
            End::Abort(kind, msg) => failed(
                self.builder.finish().series,
                msg,
                kind == AbortKind::Internal,
            ),
            End::Eof {
                in_object: true,
                line,
                column,
                path,
            } => failed(
                self.builder.finish().series,
                format!(
                    "java.io.EOFException: End of input at line {line} column {column} path {path}"
                ),
                false,
            ),
            End::Eof {
                in_object: false, ..
            } => {
                // KairosDB catches the EOFException twice (in the array loop and again
                // around `endArray`), keeping the validation errors so far (spec §2.1 ⚠).
                self.errors.push(EOF_MESSAGE.to_owned());
                self.errors.push(EOF_MESSAGE.to_owned());
                self.outcome()
            }
            End::Syntax(msg) => failed(self.builder.finish().series, msg, false),
        }
    }
}

/// One strict serde pass over `json`.
fn run(json: &[u8]) -> Run {
    let mut st = State::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    // KairosDB never reads past the top-level value, so trailing bytes are ignored
    // (no `de.end()`).
    let result = BodySeed { st: &mut st }.deserialize(&mut de);
    let end = match result {
        Ok(()) => End::Ok,
        Err(e) => {
            let path = st.path();
            match st.abort.take() {
                Some((kind, msg)) => {
                    let msg = if kind == AbortKind::Syntax {
                        format!(
                            "{msg} at line {} column {} path {path}",
                            e.line(),
                            e.column()
                        )
                    } else {
                        msg
                    };
                    End::Abort(kind, msg)
                }
                None if e.is_eof() => End::Eof {
                    in_object: st.in_object,
                    line: e.line(),
                    column: e.column(),
                    path,
                },
                None => End::Syntax(format!(
                    "com.google.gson.stream.MalformedJsonException: {e} path {path}"
                )),
            }
        }
    };
    Run {
        builder: st.builder,
        errors: st.errors,
        end,
    }
}

/// One `datapoints` entry, staged as raw JSON slices until the object is complete.
#[derive(Clone, Copy)]
struct Staged<'de> {
    /// Number of elements (3 = three or more); [`NULL_ENTRY`] for a JSON `null` entry.
    len: u8,
    ts: &'de str,
    value: &'de str,
    ty: &'de str,
}

const NULL_ENTRY: u8 = u8::MAX;

struct State<'de> {
    builder: BatchBuilder,
    errors: Vec<String>,
    abort: Option<(AbortKind, String)>,
    in_object: bool,
    index: usize,
    /// Current member name inside the metric object (for Gson-style paths).
    key: Cow<'de, str>,
    /// Tags of the current object in JSON order: name, value (`None` = JSON null).
    tags: Vec<(Cow<'de, str>, Option<Cow<'de, str>>)>,
    /// The `datapoints` of the current object.
    dp: Staging<'de>,
}

/// The `datapoints` of one metric object, staged until the object is complete.
struct Staging<'de> {
    /// Generic staging of `datapoints` entries (used when `fast` is false, or when a
    /// metric-level `type` asks for Java's conversions).
    points: Vec<Staged<'de>>,
    /// The raw `datapoints` array of the current object.
    raw: &'de str,
    /// Every entry was `[integer, plain number]` and is staged in the columns below.
    fast: bool,
    long_cols: (Vec<i64>, Vec<i64>),
    double_cols: (Vec<i64>, Vec<f64>),
}

impl State<'_> {
    fn new() -> Self {
        State {
            builder: BatchBuilder::new(),
            errors: Vec::new(),
            abort: None,
            in_object: false,
            index: 0,
            key: Cow::Borrowed(""),
            tags: Vec::new(),
            dp: Staging {
                points: Vec::new(),
                raw: "",
                fast: false,
                long_cols: (Vec::new(), Vec::new()),
                double_cols: (Vec::new(), Vec::new()),
            },
        }
    }

    fn path(&self) -> String {
        if self.in_object {
            if self.key.is_empty() {
                format!("$[{}]", self.index)
            } else {
                format!("$[{}].{}", self.index, self.key)
            }
        } else {
            "$".to_owned()
        }
    }

    /// Records why the parse stops and returns the serde error that unwinds it.
    fn abort<E: de::Error>(&mut self, kind: AbortKind, msg: String) -> E {
        self.abort = Some((kind, msg));
        E::custom("ingest aborted")
    }

    /// Empties the scratch buffers at the start of a metric object.
    fn begin_object(&mut self) {
        self.in_object = true;
        self.key = Cow::Borrowed("");
        self.tags.clear();
        self.dp.points.clear();
        self.dp.fast = false;
        self.dp.clear_columns();
    }
}

impl<'de> Staging<'de> {
    fn clear_columns(&mut self) {
        self.long_cols.0.clear();
        self.long_cols.1.clear();
        self.double_cols.0.clear();
        self.double_cols.1.clear();
    }

    /// Stages a raw `datapoints` value: into the columns when every entry is
    /// `[integer, plain number]`, else entry by entry. `Ok(false)` for JSON null (no
    /// datapoints); `Err` is Gson's exception text for a value that is not an array.
    fn stage(&mut self, raw: &'de str) -> Result<bool, String> {
        self.points.clear();
        self.clear_columns();
        self.fast = false;
        match raw.as_bytes()[0] {
            b'n' => Ok(false),
            b'[' => {
                self.raw = raw;
                self.fast =
                    scan_fast(raw.as_bytes(), &mut self.long_cols, &mut self.double_cols).is_some();
                if !self.fast {
                    self.clear_columns();
                    scan_entries(raw, &mut self.points).map_err(expected_array)?;
                }
                Ok(true)
            }
            _ => Err(expected_array(json_kind(raw))),
        }
    }
}

fn expected_array(kind: &str) -> String {
    format!("java.lang.IllegalStateException: Expected BEGIN_ARRAY but was {kind}")
}

/// Gson's error for a metric object or a `tags` value that is not a JSON object.
fn expected_object<E: de::Error>(st: &mut State<'_>, kind: &str) -> E {
    st.abort(
        AbortKind::Syntax,
        format!("java.lang.IllegalStateException: Expected BEGIN_OBJECT but was {kind}"),
    )
}

/// The `visit_*` methods for the JSON kinds a visitor that expects an object refuses
/// with [`expected_object`] (null is left to each visitor: KairosDB treats it apart).
macro_rules! refuse_non_objects {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(expected_object(self.st, "BOOLEAN"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(expected_object(self.st, "NUMBER"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(expected_object(self.st, "NUMBER"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(expected_object(self.st, "NUMBER"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(expected_object(self.st, "STRING"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(expected_object(self.st, "BEGIN_ARRAY"))
        }
    };
}

struct BodySeed<'a, 'de> {
    st: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric object or an array of metric objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.st.index = i;
            match seq.next_element_seed(MetricSeed { st: &mut *self.st })? {
                Some(()) => i += 1,
                None => return Ok(()),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.st.index = 0;
        MetricSeed { st: self.st }.visit_map(map)
    }
}

fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "BEGIN_OBJECT",
        Some(b'[') => "BEGIN_ARRAY",
        Some(b'"') => "STRING",
        Some(b't' | b'f') => "BOOLEAN",
        Some(b'n') => "NULL",
        _ => "NUMBER",
    }
}

struct MetricSeed<'a, 'de> {
    st: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for MetricSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Fields of one metric object (KairosDB's `NewMetric`).
#[derive(Default)]
struct Metric<'de> {
    /// `None` = absent or JSON null.
    name: Option<Cow<'de, str>>,
    timestamp: Option<i64>,
    time: Option<i64>,
    /// Raw JSON; `None` = absent (JSON `null` is `Some("null")`, a `JsonNull`).
    value: Option<&'de str>,
    /// `datapoints` present and not null.
    has_datapoints: bool,
    skip_validate: bool,
    ty: Option<Cow<'de, str>>,
    ttl: i32,
}

enum Field {
    Name,
    Timestamp,
    Time,
    Value,
    Tags,
    Datapoints,
    SkipValidate,
    Type,
    Ttl,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = (Field, Cow<'de, str>);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

fn field_of(k: &str) -> Field {
    match k {
        "name" => Field::Name,
        "timestamp" => Field::Timestamp,
        "time" => Field::Time,
        "value" => Field::Value,
        "tags" => Field::Tags,
        "datapoints" => Field::Datapoints,
        "skip_validate" => Field::SkipValidate,
        "type" => Field::Type,
        "ttl" => Field::Ttl,
        _ => Field::Other,
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = (Field, Cow<'de, str>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((field_of(v), Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((field_of(v), Cow::Owned(v.to_owned())))
    }
}

/// A string-typed Gson field (`String` adapter in lenient mode): strings, numbers (as
/// written) and booleans become text; null is `None`; arrays/objects are errors.
fn gson_string<'de>(raw: &'de str) -> Result<Option<Cow<'de, str>>, String> {
    match raw.as_bytes()[0] {
        b'"' => Ok(Some(unquote(raw))),
        b'n' => Ok(None),
        b'{' | b'[' => Err(format!(
            "java.lang.IllegalStateException: Expected a string but was {}",
            json_kind(raw)
        )),
        _ => Ok(Some(Cow::Borrowed(raw))),
    }
}

/// The text of a JSON string literal (validated by serde already).
fn unquote(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        Cow::Borrowed(inner)
    } else {
        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
    }
}

/// Gson `Long` field (`nextLong`): numbers that are exactly integral, numeric strings.
fn gson_long(raw: &str) -> Result<Option<i64>, String> {
    let r = match raw.as_bytes()[0] {
        b'n' => return Ok(None),
        b'"' => {
            let s = unquote(raw);
            javanum::gson_long_from_text(&s).ok_or_else(|| s.into_owned())
        }
        b'-' | b'0'..=b'9' => javanum::gson_long_from_number(raw).ok_or_else(|| raw.to_owned()),
        _ => {
            return Err(format!(
                "java.lang.IllegalStateException: Expected a long but was {}",
                json_kind(raw)
            ))
        }
    };
    r.map(Some)
        .map_err(|s| format!("java.lang.NumberFormatException: Expected a long but was {s}"))
}

/// Gson `int` field (`nextInt`): numbers and numeric strings; null is `None`.
fn gson_int(raw: &str) -> Result<Option<i32>, String> {
    let r = match raw.as_bytes()[0] {
        b'n' => return Ok(None),
        b'"' => {
            let s = unquote(raw);
            javanum::gson_int(&s, true).ok_or_else(|| s.into_owned())
        }
        b'-' | b'0'..=b'9' => javanum::gson_int(raw, false).ok_or_else(|| raw.to_owned()),
        _ => {
            return Err(format!(
                "java.lang.IllegalStateException: Expected an int but was {}",
                json_kind(raw)
            ))
        }
    };
    r.map(Some)
        .map_err(|s| format!("java.lang.NumberFormatException: Expected an int but was {s}"))
}

/// Gson `boolean` field: strings go through `Boolean.parseBoolean`; null is `None`.
fn gson_bool(raw: &str) -> Result<Option<bool>, String> {
    match raw.as_bytes()[0] {
        b'n' => Ok(None),
        b't' => Ok(Some(true)),
        b'f' => Ok(Some(false)),
        b'"' => Ok(Some(unquote(raw).eq_ignore_ascii_case("true"))),
        _ => Err(format!(
            "java.lang.IllegalStateException: Expected a boolean but was {}",
            json_kind(raw)
        )),
    }
}

impl<'de> Visitor<'de> for MetricSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `[null]`: Gson yields a null metric and KairosDB throws a NullPointerException.
        Err(self.st.abort(
            AbortKind::Internal,
            format!(
                "java.lang.NullPointerException: metric[{}] is null",
                self.st.index
            ),
        ))
    }

    refuse_non_objects!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        st.begin_object();
        let mut m = Metric::default();
        while let Some((field, key)) = map.next_key_seed(KeySeed)? {
            st.key = key;
            read_member(st, &mut m, field, &mut map)?;
        }
        st.key = Cow::Borrowed("");
        let r = commit(st, &m);
        st.in_object = false;
        r.map_err(|msg| st.abort(AbortKind::Internal, msg))
    }
}

/// Reads the value of one member of a metric object: tags and `datapoints` into the
/// scratch buffers of `st`, the other fields into `m`.
fn read_member<'de, A: MapAccess<'de>>(
    st: &mut State<'de>,
    m: &mut Metric<'de>,
    field: Field,
    map: &mut A,
) -> Result<(), A::Error> {
    match field {
        Field::Tags => {
            st.tags.clear();
            map.next_value_seed(TagsSeed { st })
        }
        Field::Other => map.next_value::<IgnoredAny>().map(drop),
        _ => {
            let raw: &'de RawValue = map.next_value()?;
            read_value(st, m, field, raw.get()).map_err(|e| st.abort(AbortKind::Syntax, e))
        }
    }
}

/// One member's raw value through KairosDB's Gson field adapter; `Err` is Gson's
/// exception text (a syntax-class error).
fn read_value<'de>(
    st: &mut State<'de>,
    m: &mut Metric<'de>,
    field: Field,
    raw: &'de str,
) -> Result<(), String> {
    match field {
        Field::Name => m.name = gson_string(raw)?,
        Field::Type => m.ty = gson_string(raw)?,
        Field::Timestamp => m.timestamp = gson_long(raw)?,
        Field::Time => m.time = gson_long(raw)?,
        Field::Value => m.value = Some(raw),
        // Gson primitive fields: null leaves the default.
        Field::Ttl => {
            if let Some(ttl) = gson_int(raw)? {
                m.ttl = ttl;
            }
        }
        Field::SkipValidate => {
            if let Some(skip) = gson_bool(raw)? {
                m.skip_validate = skip;
            }
        }
        Field::Datapoints => m.has_datapoints = st.dp.stage(raw)?,
        Field::Tags | Field::Other => unreachable!("BUG: read_member reads these itself"),
    }
    Ok(())
}

struct TagsSeed<'a, 'de> {
    st: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for TagsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tags object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    // Gson's map adapter also reads `[[k,v],...]`; nobody sends that, so it is
    // reported like any other non-object (deliberate simplification).
    refuse_non_objects!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        while let Some((_, name)) = map.next_key_seed(KeySeed)? {
            let raw: &'de RawValue = map.next_value()?;
            let value = gson_string(raw.get()).map_err(|e| st.abort(AbortKind::Syntax, e))?;
            if st.tags.iter().any(|(k, _)| *k == name) {
                return Err(st.abort(
                    AbortKind::Syntax,
                    format!("com.google.gson.JsonSyntaxException: duplicate key: {name}"),
                ));
            }
            st.tags.push((name, value));
        }
        Ok(())
    }
}

/// Fast staging of a `datapoints` array whose entries are all `[integer, plain number]`
/// (the shape every client sends): fills the per-object columns and returns where the
/// array ends (just past its `]`); returns `None` at the first other entry (the caller
/// then uses [`scan_entries`], or [`common`] gives the body to serde). `raw` starts with
/// the array's `[`; it need not be valid JSON, nor end with the array: whatever this
/// accepts is valid JSON.
fn scan_fast(
    raw: &[u8],
    st_long: &mut (Vec<i64>, Vec<i64>),
    st_double: &mut (Vec<i64>, Vec<f64>),
) -> Option<usize> {
    let n = raw.len();
    let mut i = skip_ws(raw, 1);
    if i < n && raw[i] == b']' {
        return Some(i + 1);
    }
    loop {
        if i >= n || raw[i] != b'[' {
            return None;
        }
        i = skip_ws(raw, i + 1);
        // Timestamp: a plain integer, scanned and parsed in one pass.
        let neg = i < n && raw[i] == b'-';
        i += usize::from(neg);
        let start = i;
        let digits;
        (i, digits) = scan_digits(raw, i, 0);
        if i == start || i - start > 18 || (raw[start] == b'0' && i - start > 1) {
            return None;
        }
        // At most 18 digits: below 2^63.
        let ts = if neg { -(digits as i64) } else { digits as i64 };
        i = skip_ws(raw, i);
        if i >= n || raw[i] != b',' {
            return None;
        }
        i = skip_ws(raw, i + 1);
        // Value: digits with at most one dot, no exponent, scanned and parsed in one
        // pass (see `fast_number` for why the double is exact).
        let neg = i < n && raw[i] == b'-';
        i += usize::from(neg);
        let start = i;
        let mut mant;
        (i, mant) = scan_digits(raw, i, 0);
        let int_digits = i - start;
        let mut frac = 0usize;
        let is_double = i < n && raw[i] == b'.';
        if is_double {
            i += 1;
            let fs = i;
            (i, mant) = scan_digits(raw, i, mant);
            frac = i - fs;
        }
        if int_digits == 0
            || int_digits + frac > 18
            || (is_double && frac == 0)
            || (raw[start] == b'0' && int_digits > 1)
        {
            return None;
        }
        i = skip_ws(raw, i);
        if i >= n || raw[i] != b']' {
            return None;
        }
        if is_double {
            if mant > (1u64 << 53) || frac >= POW10.len() {
                return None;
            }
            let v = mant as f64 / POW10[frac];
            st_double.0.push(ts);
            st_double.1.push(if neg { -v } else { v });
        } else {
            let v = mant as i64;
            st_long.0.push(ts);
            st_long.1.push(if neg { -v } else { v });
        }
        i = skip_ws(raw, i + 1);
        match raw.get(i) {
            Some(b',') => i = skip_ws(raw, i + 1),
            Some(b']') => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Reads the decimal digits from `i` on, appending them to `acc` (wrapping: callers
/// bound the digit count); returns where they end and the number.
#[inline]
fn scan_digits(raw: &[u8], mut i: usize, mut acc: u64) -> (usize, u64) {
    while i < raw.len() {
        let d = raw[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    (i, acc)
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON value starting at `i` in valid JSON `b`.
fn value_end(b: &[u8], mut i: usize) -> usize {
    match b[i] {
        b'"' => string_end(b, i),
        b'[' | b'{' => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            i
        }
    }
}

/// End (exclusive) of the string literal starting at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i.min(b.len())
}

/// Generic staging of a `datapoints` array (valid JSON) as raw slices, in order.
/// `Err` names the JSON kind of an entry that is not an array or null (Gson then
/// throws "Expected BEGIN_ARRAY").
fn scan_entries<'de>(raw: &'de str, out: &mut Vec<Staged<'de>>) -> Result<(), &'static str> {
    let b = raw.as_bytes();
    let mut i = skip_ws(b, 1);
    while i < b.len() && b[i] != b']' {
        let start = i;
        let end = value_end(b, i);
        if end <= start {
            break; // Not reachable on valid JSON; guards against looping forever.
        }
        match b[start] {
            b'n' => out.push(Staged {
                len: NULL_ENTRY,
                ts: "",
                value: "",
                ty: "",
            }),
            b'[' => {
                let mut e = Staged {
                    len: 0,
                    ts: "",
                    value: "",
                    ty: "",
                };
                let mut k = skip_ws(b, start + 1);
                while k < end - 1 && b[k] != b']' {
                    let ve = value_end(b, k);
                    if ve <= k {
                        break;
                    }
                    let item = &raw[k..ve];
                    match e.len {
                        0 => e.ts = item,
                        1 => e.value = item,
                        2 => e.ty = item,
                        _ => {}
                    }
                    e.len = e.len.saturating_add(1).min(3);
                    k = skip_ws(b, ve);
                    if k < b.len() && b[k] == b',' {
                        k = skip_ws(b, k + 1);
                    }
                }
                out.push(e);
            }
            _ => return Err(json_kind(&raw[start..end])),
        }
        i = skip_ws(b, end);
        if i < b.len() && b[i] == b',' {
            i = skip_ws(b, i + 1);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Validation and conversion (KairosDB `validateAndAddDataPoints`, spec §2.2, §2.3).

/// A KairosDB runtime exception: 500 with this message.
type Fatal = String;

/// Gson `JsonElement` view of a raw JSON slice.
enum Elem<'a> {
    Null,
    Bool(bool),
    Num(&'a str),
    Str(Cow<'a, str>),
    Array(&'a str),
    Object,
}

fn elem(raw: &str) -> Elem<'_> {
    match raw.as_bytes()[0] {
        b'n' => Elem::Null,
        b't' => Elem::Bool(true),
        b'f' => Elem::Bool(false),
        b'"' => Elem::Str(unquote(raw)),
        b'[' => Elem::Array(raw),
        b'{' => Elem::Object,
        _ => Elem::Num(raw),
    }
}

/// `JsonArray` getters delegate to the only element when there is exactly one; this
/// peels every level of `[[[x]]]` in one linear pass (deep nesting stays cheap).
fn single_element(raw: &str) -> Result<&str, Fatal> {
    let not_single = || "java.lang.IllegalStateException".to_owned();
    let b = raw.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        depth += 1;
        i = skip_ws(b, i + 1);
    }
    if i >= b.len() || b[i] == b']' {
        return Err(not_single());
    }
    let end = value_end(b, i);
    let inner = &raw[i..end];
    let mut k = end;
    for _ in 0..depth {
        k = skip_ws(b, k);
        if k >= b.len() || b[k] != b']' {
            return Err(not_single());
        }
        k += 1;
    }
    Ok(inner)
}

/// `JsonElement.getAsString()`.
fn as_string(mut raw: &str) -> Result<Cow<'_, str>, Fatal> {
    loop {
        return match elem(raw) {
            Elem::Null => Err("java.lang.UnsupportedOperationException: JsonNull".to_owned()),
            Elem::Object => Err("java.lang.UnsupportedOperationException: JsonObject".to_owned()),
            Elem::Bool(b) => Ok(Cow::Borrowed(if b { "true" } else { "false" })),
            Elem::Num(n) => Ok(Cow::Borrowed(n)),
            Elem::Str(s) => Ok(s),
            Elem::Array(a) => {
                raw = single_element(a)?;
                continue;
            }
        };
    }
}

fn nfe(s: &str) -> Fatal {
    format!("java.lang.NumberFormatException: {s}")
}

/// `JsonElement.getAsLong()`.
fn as_long(mut raw: &str) -> Result<i64, Fatal> {
    loop {
        return match elem(raw) {
            Elem::Num(n) => Ok(javanum::number_long_value(n)),
            Elem::Str(s) => javanum::parse_long(&s).map_err(|e| nfe(&e)),
            Elem::Bool(b) => Err(nfe(&format!("For input string: \"{b}\""))),
            Elem::Null => Err("java.lang.UnsupportedOperationException: JsonNull".to_owned()),
            Elem::Object => Err("java.lang.UnsupportedOperationException: JsonObject".to_owned()),
            Elem::Array(a) => {
                raw = single_element(a)?;
                continue;
            }
        };
    }
}

/// `JsonElement.getAsDouble()`.
fn as_double(mut raw: &str) -> Result<f64, Fatal> {
    loop {
        return match elem(raw) {
            Elem::Num(n) => n.parse::<f64>().map_err(|e| nfe(&e.to_string())),
            Elem::Str(s) => javanum::parse_double(&s).map_err(|e| nfe(&e)),
            Elem::Bool(b) => Err(nfe(&format!("For input string: \"{b}\""))),
            Elem::Null => Err("java.lang.UnsupportedOperationException: JsonNull".to_owned()),
            Elem::Object => Err("java.lang.UnsupportedOperationException: JsonObject".to_owned()),
            Elem::Array(a) => {
                raw = single_element(a)?;
                continue;
            }
        };
    }
}

/// `Validator.isNotNullOrEmpty(JsonElement)`: `Ok(Some(suffix))` is a validation error.
fn not_null_or_empty(raw: &str) -> Result<Option<&'static str>, Fatal> {
    Ok(match elem(raw) {
        Elem::Null => Some("may not be empty."),
        Elem::Object => None,
        Elem::Array(a) if a[1..].trim_start().starts_with(']') => {
            Some("may not be an empty array.")
        }
        _ => {
            if as_string(raw)?.is_empty() {
                Some("may not be empty.")
            } else {
                None
            }
        }
    })
}

/// `findType`: `None` = "value is an invalid type".
fn find_type(raw: &str) -> Option<DataType> {
    let text: Cow<'_, str> = match elem(raw) {
        Elem::Num(n) => Cow::Borrowed(n),
        Elem::Str(s) if javanum::kairos_is_number(&s) => s,
        Elem::Str(_) | Elem::Bool(_) => return Some(DataType::String),
        Elem::Null | Elem::Array(_) | Elem::Object => return None,
    };
    Some(if text.contains('.') {
        DataType::Double
    } else {
        DataType::Long
    })
}

/// A converted value, ready for the batch.
enum Conv<'a> {
    Long(i64),
    Double(f64),
    Str(Cow<'a, str>),
}

/// Why a value is not converted.
enum Reject {
    /// A KairosDB runtime exception: 500, parsing stops.
    Fatal(Fatal),
    /// A JSON number outside what it can be stored as (issue 17): a validation error
    /// ending in this text, for the value `text`.
    OutOfRange { text: String, why: &'static str },
}

impl From<Fatal> for Reject {
    fn from(f: Fatal) -> Reject {
        Reject::Fatal(f)
    }
}

/// Texts of [`Reject::OutOfRange`].
const NOT_LONG_NOR_FINITE: &str = "is out of range: beyond a 64-bit long and not a finite double.";
const NOT_LONG: &str = "is out of range for type long (64-bit).";
const TS_OUT_OF_RANGE: &str = "is out of range: not a 64-bit millisecond timestamp.";

/// Whether a value's type came from its own text (`findType`) or from an explicit
/// `type` (the metric's or the entry's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typing {
    Inferred,
    Explicit,
}

/// The registered type factories' `getDataPoint(ts, JsonElement)`, except for JSON
/// numbers whose integer part does not fit a long (see [`to_long`]).
fn convert(ty: DataType, raw: &str, typing: Typing) -> Result<Conv<'_>, Reject> {
    Ok(match ty {
        DataType::Long if raw.starts_with('n') => Conv::Long(0),
        DataType::Long => to_long(raw, typing)?,
        DataType::Double => Conv::Double(if raw.starts_with('n') {
            0.0
        } else {
            as_double(raw)?
        }),
        DataType::String => Conv::Str(as_string(raw)?),
    })
}

/// A value of type long. Deliberate deviation (issue 17): KairosDB converts a JSON number
/// with `BigDecimal.longValue()`, which silently wraps one whose integer part does not
/// fit 64 bits (`12345678901234567890` → -6101065172474983726, `1e400` → 0) and cuts the
/// fraction of one written with an exponent (`1e-05`, as Python's and JavaScript's JSON
/// write small floats, → 0). Here such a number is stored as the double it denotes when
/// its type was inferred (KairosDB typed it long only because its text has no `.`), and
/// rejected when that double is not finite or when the client asked for type long
/// explicitly. Numeric strings keep Java's `Long.parseLong` (a loud 500 on overflow,
/// never a wrong value).
fn to_long(raw: &str, typing: Typing) -> Result<Conv<'_>, Reject> {
    let inner = if raw.starts_with('[') {
        single_element(raw)?
    } else {
        raw
    };
    let Elem::Num(n) = elem(inner) else {
        return Ok(Conv::Long(as_long(inner)?));
    };
    let whole = typing == Typing::Explicit || javanum::number_is_whole(n);
    if let Some(v) = javanum::number_long_value_exact(n).filter(|_| whole) {
        return Ok(Conv::Long(v));
    }
    let out_of_range = |why| Reject::OutOfRange {
        text: shorten(n),
        why,
    };
    if typing == Typing::Explicit {
        return Err(out_of_range(NOT_LONG));
    }
    match n.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(Conv::Double(d)),
        _ => Err(out_of_range(NOT_LONG_NOR_FINITE)),
    }
}

/// `text`, cut to 40 characters for an error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// Plain JSON number text without exponent: the Java type by KairosDB's rule (contains
/// `.` → double) and its value, exactly as Java computes it. `None` = use the slow path.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[inline]
fn fast_number(raw: &[u8]) -> Option<Conv<'static>> {
    let (neg, d) = match raw.first()? {
        b'-' => (true, &raw[1..]),
        _ => (false, raw),
    };
    if d.is_empty() || d.len() > 19 {
        return None;
    }
    let mut mant: u64 = 0;
    let mut frac: usize = 0;
    let mut dot = false;
    for &c in d {
        if c == b'.' {
            if dot {
                return None;
            }
            dot = true;
            continue;
        }
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            return None;
        }
        mant = mant * 10 + u64::from(x);
        frac += usize::from(dot);
    }
    if !dot {
        let v = i64::try_from(mant).ok()?;
        Some(Conv::Long(if neg { -v } else { v }))
    } else {
        // Clinger's fast path: both operands exact, one correctly rounded division,
        // hence the same double as Java's `Double.parseDouble`.
        if mant > (1u64 << 53) || frac >= POW10.len() {
            return None;
        }
        let v = mant as f64 / POW10[frac];
        Some(Conv::Double(if neg { -v } else { v }))
    }
}

fn registered(ty: &str) -> Result<DataType, String> {
    DataType::from_ingest_name(ty).ok_or_else(|| format!("Unregistered data point type '{ty}'"))
}

/// Resolves series slots for one metric object lazily, once per data type.
struct Slots<'t> {
    name: &'t str,
    tags: &'t [(&'t str, &'t str)],
    ttl: u32,
    slots: [Option<SeriesSlot>; 3],
}

impl<'t> Slots<'t> {
    fn new(name: &'t str, tags: &'t [(&'t str, &'t str)], ttl: i32) -> Slots<'t> {
        Slots {
            name,
            tags,
            // Deliberate deviation: a negative TTL means "no TTL" (see module docs).
            ttl: u32::try_from(ttl).unwrap_or(0),
            slots: [None; 3],
        }
    }

    #[inline]
    fn get(&mut self, b: &mut BatchBuilder, ty: DataType) -> SeriesSlot {
        let i = ty.code() as usize - 1;
        match self.slots[i] {
            Some(s) => s,
            None => {
                let s = b.slot_sorted(self.name, ty, self.tags, self.ttl);
                self.slots[i] = Some(s);
                s
            }
        }
    }

    fn push(&mut self, b: &mut BatchBuilder, ts: i64, v: Conv<'_>) {
        match v {
            Conv::Long(x) => {
                let s = self.get(b, DataType::Long);
                b.push_long(s, ts, x);
            }
            Conv::Double(x) => {
                let s = self.get(b, DataType::Double);
                b.push_double(s, ts, x);
            }
            Conv::Str(x) => {
                let s = self.get(b, DataType::String);
                b.push_string(s, ts, x.into_owned());
            }
        }
    }
}

/// `metric[i](name=n)` (or `metric[i]` without a name or validation): the prefix
/// of KairosDB's ingest error messages, formatted only when an error is reported.
struct MetricCtx<'a> {
    index: usize,
    name: Option<&'a str>,
}

impl std::fmt::Display for MetricCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(n) => write!(f, "metric[{}](name={n})", self.index),
            None => write!(f, "metric[{}]", self.index),
        }
    }
}

impl Metric<'_> {
    /// The timestamp of the single-point form: `time`, else `timestamp`.
    fn point_timestamp(&self) -> Option<i64> {
        self.time.or(self.timestamp)
    }
}

/// Validates one complete metric object (KairosDB's `validateAndAddDataPoints`, rules
/// 1–7) and moves its points into the batch. Validation errors go to `st.errors`;
/// `Err` is a KairosDB runtime exception (500) that ends the parse.
fn commit(st: &mut State<'_>, m: &Metric<'_>) -> Result<(), Fatal> {
    let validate = !m.skip_validate;
    let errors_before = st.errors.len();
    let name = check_name(&mut st.errors, st.index, m.name.as_deref());
    // Formatted only into error messages: building it for every metric object
    // cost ~5 % of ingest CPU (perf, 2026-11-23).
    let ctx = MetricCtx {
        index: st.index,
        name: name.filter(|_| validate),
    };
    if validate {
        check_single_point(&mut st.errors, &ctx, m)?;
        check_tags(&mut st.errors, &ctx, &st.tags);
    }
    if st.errors.len() > errors_before {
        return Ok(());
    }
    let Some(name) = name else {
        return Ok(());
    };
    let tags = sorted_tags(&st.tags)?;
    let mut sink = Sink {
        builder: &mut st.builder,
        errors: &mut st.errors,
        slots: Slots::new(name, &tags, m.ttl),
        ctx,
        metric_type: m.ty.as_deref(),
        validate,
    };
    sink.single_point(m)?;
    if m.has_datapoints {
        sink.datapoints(&mut st.dp)?;
    }
    Ok(())
}

/// Rule 1: the name. Deliberate deviation: also checked with `skip_validate`
/// (spec §14.13), since a nameless series cannot be stored or queried.
fn check_name<'m>(errors: &mut Vec<String>, i: usize, name: Option<&'m str>) -> Option<&'m str> {
    match name {
        None => {
            errors.push(format!("metric[{i}].name may not be null."));
            None
        }
        Some("") => {
            errors.push(format!("metric[{i}].name may not be empty."));
            None
        }
        Some(n) => Some(n),
    }
}

/// Rules 2 and 3: the single-point form (`timestamp` and `value` beside the name).
fn check_single_point(
    errors: &mut Vec<String>,
    ctx: &MetricCtx<'_>,
    m: &Metric<'_>,
) -> Result<(), Fatal> {
    if m.point_timestamp().is_none() {
        if m.value.is_some_and(|v| !v.starts_with('n')) {
            errors.push(format!("{ctx}.timestamp may not be null."));
        }
        return Ok(());
    }
    match m.value {
        None => errors.push(format!("{ctx}.value may not be null.")),
        // With `type` string the value only has to be present (no emptiness check).
        Some(_) if m.ty.as_deref() == Some("string") => {}
        Some(raw) => {
            if let Some(msg) = not_null_or_empty(raw)? {
                errors.push(format!("{ctx}.value {msg}"));
            }
        }
    }
    Ok(())
}

/// Rules 4 and 5: at least one tag, none with an empty name or a null or empty value.
fn check_tags(
    errors: &mut Vec<String>,
    ctx: &MetricCtx<'_>,
    tags: &[(Cow<'_, str>, Option<Cow<'_, str>>)],
) {
    if tags.is_empty() {
        errors.push(format!(
            "{ctx}.tags count must be greater than or equal to 1."
        ));
        return;
    }
    for (k, (tname, tvalue)) in tags.iter().enumerate() {
        if tname.is_empty() {
            errors.push(format!("{ctx}.tag[{k}].name may not be empty."));
        }
        let problem = match tvalue.as_deref() {
            None => "may not be null.",
            Some("") => "may not be empty.",
            Some(_) => continue,
        };
        errors.push(if tname.is_empty() {
            format!("{ctx}.tag[{k}].value {problem}")
        } else {
            format!("{ctx}.tag[{tname}].value {problem}")
        });
    }
}

/// Tags sorted by name (KairosDB `ImmutableSortedMap.copyOf`), which also refuses
/// null values (possible only with `skip_validate`).
fn sorted_tags<'t>(
    tags: &'t [(Cow<'_, str>, Option<Cow<'_, str>>)],
) -> Result<Vec<(&'t str, &'t str)>, Fatal> {
    let mut sorted: Vec<(&str, &str)> = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        match v {
            Some(v) => sorted.push((k, v)),
            None => return Err("java.lang.NullPointerException: null value in entry".to_owned()),
        }
    }
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(sorted)
}

/// Why one `datapoints` entry is not stored.
enum Skip {
    /// A validation error: reported, and parsing goes on (spec §2.6).
    Invalid(String),
    /// A KairosDB runtime exception: 500, parsing stops.
    Fatal(Fatal),
}

/// Where the points and validation errors of one valid metric object go.
struct Sink<'a> {
    builder: &'a mut BatchBuilder,
    errors: &'a mut Vec<String>,
    slots: Slots<'a>,
    ctx: MetricCtx<'a>,
    /// The metric-level `type`.
    metric_type: Option<&'a str>,
    validate: bool,
}

impl Sink<'_> {
    #[inline]
    fn push(&mut self, ts: i64, v: Conv<'_>) {
        self.slots.push(self.builder, ts, v);
    }

    /// Rule 6: the single point, typed by the metric's `type` or else by its value.
    fn single_point(&mut self, m: &Metric<'_>) -> Result<(), Fatal> {
        let (Some(ts), Some(raw)) = (m.point_timestamp(), m.value) else {
            return Ok(());
        };
        let (ty, typing) = match self.metric_type {
            Some(t) => (t, Typing::Explicit),
            None => match find_type(raw) {
                Some(t) => (t.ingest_name(), Typing::Inferred),
                None => {
                    self.errors
                        .push(format!("{} value is an invalid type", self.ctx));
                    return Ok(());
                }
            },
        };
        match registered(ty) {
            Ok(t) => match convert(t, raw, typing) {
                Ok(v) => self.push(ts, v),
                Err(Reject::Fatal(e)) => return Err(e),
                Err(Reject::OutOfRange { text, why }) => {
                    self.errors.push(format!("{}.value {text} {why}", self.ctx));
                }
            },
            Err(e) => self.errors.push(e),
        }
        Ok(())
    }

    /// Rule 7: the `datapoints` entries.
    fn datapoints(&mut self, dp: &mut Staging<'_>) -> Result<(), Fatal> {
        if dp.fast {
            if self.metric_type.is_none() {
                self.columns(dp);
                return Ok(());
            }
            // A metric-level `type` needs Java's conversions on the raw text.
            dp.points.clear();
            let _ = scan_entries(dp.raw, &mut dp.points);
        }
        self.entries(&dp.points)
    }

    /// Hot path: whole columns into the batch, one slot lookup per type.
    fn columns(&mut self, dp: &Staging<'_>) {
        let (ts, v) = &dp.long_cols;
        if !ts.is_empty() {
            let s = self.slots.get(self.builder, DataType::Long);
            self.builder.extend_long(s, ts, v);
        }
        let (ts, v) = &dp.double_cols;
        if !ts.is_empty() {
            let s = self.slots.get(self.builder, DataType::Double);
            self.builder.extend_double(s, ts, v);
        }
    }

    /// The staged entries one by one, in order.
    fn entries(&mut self, points: &[Staged<'_>]) -> Result<(), Fatal> {
        let metric_dt = self.metric_type.map(registered);
        let mut j = 0usize; // ⚠ only advances after a stored point (spec §2.2, §14.14)
        for (pos, e) in points.iter().enumerate() {
            let point = match fast_entry(e, &metric_dt) {
                Some(point) => Ok(point),
                None => self.entry(e, j, pos, &metric_dt),
            };
            match point {
                Ok((ts, v)) => {
                    self.push(ts, v);
                    j += 1;
                }
                Err(Skip::Invalid(msg)) => self.errors.push(msg),
                Err(Skip::Fatal(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// One entry through Java's validation and conversions: `j` is KairosDB's index
    /// for its messages, `pos` the entry's position in the array (for ours).
    fn entry<'e>(
        &self,
        e: &Staged<'e>,
        j: usize,
        pos: usize,
        metric_dt: &Option<Result<DataType, String>>,
    ) -> Result<(i64, Conv<'e>), Skip> {
        let ctx = &self.ctx;
        match e.len {
            NULL_ENTRY => {
                return Err(Skip::Fatal(
                    "java.lang.NullPointerException: null datapoints entry".to_owned(),
                ))
            }
            0 => {
                return Err(Skip::Invalid(format!(
                    "{ctx}.datapoints[{j}].timestamp cannot be null or empty."
                )))
            }
            1 => {
                return Err(Skip::Invalid(format!(
                    "{ctx}.datapoints[{j}].value cannot be null or empty."
                )))
            }
            _ => {}
        }
        let ts = self.entry_timestamp(e, j, pos)?;
        let entry_type: Option<Cow<'_, str>> = if e.len >= 3 {
            Some(as_string(e.ty).map_err(Skip::Fatal)?)
        } else {
            self.metric_type.map(Cow::Borrowed)
        };
        if entry_type.as_deref() == Some("string") {
            // `isNotNull`: a JsonElement from an array is never Java null.
        } else if let Some(msg) = not_null_or_empty(e.value).map_err(Skip::Fatal)? {
            return Err(Skip::Invalid(format!("{ctx}.datapoints[{j}].value {msg}")));
        }
        let typing = if entry_type.is_some() {
            Typing::Explicit
        } else {
            Typing::Inferred
        };
        let dt = self.entry_data_type(e, entry_type, metric_dt)?;
        match convert(dt, e.value, typing) {
            Ok(v) => Ok((ts, v)),
            Err(Reject::Fatal(f)) => Err(Skip::Fatal(f)),
            // Our own message, so it names the entry's real position (KairosDB's `j`
            // repeats an index after a skipped entry).
            Err(Reject::OutOfRange { text, why }) => Err(Skip::Invalid(format!(
                "{ctx}.datapoints[{pos}].value {text} {why}"
            ))),
        }
    }

    /// Deliberate deviation (issue 17): a timestamp KairosDB would wrap through
    /// `BigDecimal.longValue()` (`1e19` → -8446744073709551616) is refused.
    fn entry_timestamp(&self, e: &Staged<'_>, j: usize, pos: usize) -> Result<i64, Skip> {
        if !e.ts.starts_with('n') {
            if let Elem::Num(n) = elem(e.ts) {
                if javanum::number_long_value_exact(n).is_none() {
                    return Err(Skip::Invalid(format!(
                        "{}.datapoints[{pos}].timestamp {} {TS_OUT_OF_RANGE}",
                        self.ctx,
                        shorten(n)
                    )));
                }
            }
            return as_long(e.ts).map_err(Skip::Fatal);
        }
        if self.validate {
            return Err(Skip::Invalid(format!(
                "{}.datapoints[{j}].timestamp may not be null.",
                self.ctx
            )));
        }
        Err(Skip::Fatal(
            "java.lang.NullPointerException: null timestamp".to_owned(),
        ))
    }

    /// The entry's data type: its own `type`, the metric's, or else inferred from
    /// the value.
    fn entry_data_type(
        &self,
        e: &Staged<'_>,
        entry_type: Option<Cow<'_, str>>,
        metric_dt: &Option<Result<DataType, String>>,
    ) -> Result<DataType, Skip> {
        let resolved = match entry_type {
            None => {
                return find_type(e.value)
                    .ok_or_else(|| Skip::Invalid(format!("{} value is an invalid type", self.ctx)))
            }
            Some(t) if e.len < 3 => metric_dt.clone().unwrap_or_else(|| registered(&t)),
            Some(t) => registered(&t),
        };
        resolved.map_err(Skip::Invalid)
    }
}

/// The fast path of one entry: `[integer, plain number]`, inferred or with a numeric
/// metric type. `None` = take the slow path.
#[inline]
fn fast_entry(
    e: &Staged<'_>,
    metric_dt: &Option<Result<DataType, String>>,
) -> Option<(i64, Conv<'static>)> {
    if e.len != 2 {
        return None;
    }
    let ts = javanum::short_long(e.ts.as_bytes())?;
    let v = fast_number(e.value.as_bytes())?;
    let v = match (metric_dt, v) {
        (None, v) => v,
        // `getAsLong` truncates (BigDecimal); exact here, see `fast_number`.
        (Some(Ok(DataType::Long)), Conv::Double(x)) => Conv::Long(x.trunc() as i64),
        (Some(Ok(DataType::Long)), v @ Conv::Long(_)) => v,
        (Some(Ok(DataType::Double)), Conv::Long(x)) => Conv::Double(x as f64),
        (Some(Ok(DataType::Double)), v @ Conv::Double(_)) => v,
        _ => return None,
    };
    Some((ts, v))
}

#[cfg(test)]
mod tests;

//! Gson-lenient JSON (spec §2.1, §4.1): a small iterative parser for the syntax that
//! KairosDB's Gson 2.8.9 `JsonReader` accepts in lenient mode, with two outputs:
//!
//! * [`to_strict`] rewrites a body into strict JSON text for the serde-based ingest
//!   parser (used only after the strict fast path failed, so it costs nothing on
//!   well-formed bodies);
//! * [`parse`] builds an order-preserving [`Node`] tree, used for query bodies (small,
//!   and key order and number text matter there).
//!
//! Accepted on top of RFC 8259 (Gson `JsonReader.setLenient` documentation): `//`, `#`
//! and `/* */` comments; `'single quoted'` and unquoted names and strings; `=` and `=>`
//! as name separators; `;` as element/member separator; an omitted array element is
//! `null` (`[1,]` = `[1,null]`, `[,1]` = `[null,1]`); the `)]}'` non-execute prefix;
//! keywords in any letter case (`TRUE`); raw control characters inside strings; unknown
//! escapes (`\x` = `x`) and escaped newlines. An unquoted literal that is not a keyword
//! or a JSON number is a string (so `NaN` and `Infinity` become strings, as in Gson's
//! `JsonElement` reading). Lone UTF-16 surrogate escapes become U+FFFD.
//!
//! Not for: strict validation (serde_json does that on the hot path) or anything
//! about KairosDB semantics.

use std::fmt;

/// A syntax error with Gson-style position (1-based line and column) and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// Gson-style JSON path of the element being read, e.g. `$[0].tags`.
    pub path: String,
    /// The input ended too early (Gson throws `EOFException` here).
    pub eof: bool,
}

impl fmt::Display for SyntaxError {
    /// Mirrors the text KairosDB puts in the 400 body, which is `toString()` of Gson's
    /// exception (spec §1.4: the exact Gson text cannot be reproduced byte for byte;
    /// this keeps its shape).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = if self.eof {
            "java.io.EOFException"
        } else {
            "com.google.gson.stream.MalformedJsonException"
        };
        write!(
            f,
            "{class}: {} at line {} column {} path {}",
            self.message, self.line, self.column, self.path
        )
    }
}

/// A JSON value with object key order and number text preserved.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// A JSON number exactly as written (`1.50`, `-0`, `1e5`).
    Number(String),
    Str(String),
    Array(Vec<Node>),
    /// Members in document order; duplicate names are kept (Gson keeps the last value
    /// at the first position, see [`Node::get`]).
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Member `name` of an object: the LAST occurrence wins, as `JsonObject.add`
    /// replaces earlier values.
    pub fn get(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Object members with duplicates collapsed Gson-style: first position, last value.
    pub fn members(&self) -> Vec<(&str, &Node)> {
        let mut out: Vec<(&str, &Node)> = Vec::new();
        if let Node::Object(members) = self {
            for (k, v) in members {
                match out.iter_mut().find(|(ok, _)| *ok == k.as_str()) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k.as_str(), v)),
                }
            }
        }
        out
    }

    /// Writes the node as compact strict JSON (numbers as written).
    pub fn write_json(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Number(n) => out.push_str(n),
            Node::Str(s) => write_json_string(out, s),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Node::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Compact strict JSON text of the node.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

/// Appends `s` as a strict JSON string literal.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Result of [`to_strict`] when the input is not acceptable even leniently: the strict
/// text of everything before the error (so the caller can still parse and keep the
/// complete metric objects before it, spec §2.6) and the error.
#[derive(Debug)]
pub struct Partial {
    pub json: Vec<u8>,
    pub error: SyntaxError,
}

/// Rewrites the FIRST JSON value of `input` as strict JSON; anything after it is
/// ignored (KairosDB's ingest parser never reads past the top-level value).
///
/// `outer_strict`: ingest mode. KairosDB reads the document level and the top-level
/// array with a strict reader and only each metric object leniently (Gson's
/// `fromJson` switches leniency on per object), so lenient syntax there is an error.
pub fn to_strict(input: &str, outer_strict: bool) -> Result<Vec<u8>, Partial> {
    let mut sink = StrictWriter::default();
    let mut p = Parser::new(input, outer_strict, usize::MAX);
    match p.value(&mut sink) {
        Ok(()) => Ok(sink.out),
        Err(error) => Err(Partial {
            json: sink.out,
            error,
        }),
    }
}

/// Parses a whole document leniently into a [`Node`] (Gson `JsonParser.parseString`:
/// one value, then only whitespace and comments). Nesting deeper than `max_depth`
/// is an error (Java would overflow its stack).
pub fn parse(input: &str, max_depth: usize) -> Result<Node, SyntaxError> {
    let mut sink = NodeBuilder::default();
    let mut p = Parser::new(input, false, max_depth);
    p.value(&mut sink)?;
    p.end_of_document()?;
    Ok(sink.result.unwrap_or(Node::Null))
}

/// Receives the parse events.
trait Sink {
    fn begin_array(&mut self);
    fn end_array(&mut self);
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn key(&mut self, k: &str);
    fn string(&mut self, s: &str);
    fn number(&mut self, raw: &str);
    fn boolean(&mut self, b: bool);
    fn null(&mut self);
}

#[derive(Default)]
struct StrictWriter {
    out: Vec<u8>,
    /// Per open container: has an element been written yet?
    nonempty: Vec<bool>,
    after_key: bool,
}

impl StrictWriter {
    fn sep(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(n) = self.nonempty.last_mut() {
            if *n {
                self.out.push(b',');
            }
            *n = true;
        }
    }

    fn quoted(&mut self, s: &str) {
        let mut tmp = String::with_capacity(s.len() + 2);
        write_json_string(&mut tmp, s);
        self.out.extend_from_slice(tmp.as_bytes());
    }
}

impl Sink for StrictWriter {
    fn begin_array(&mut self) {
        self.sep();
        self.out.push(b'[');
        self.nonempty.push(false);
    }
    fn end_array(&mut self) {
        self.nonempty.pop();
        self.out.push(b']');
    }
    fn begin_object(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.nonempty.push(false);
    }
    fn end_object(&mut self) {
        self.nonempty.pop();
        self.out.push(b'}');
    }
    fn key(&mut self, k: &str) {
        self.sep();
        self.quoted(k);
        self.out.push(b':');
        self.after_key = true;
    }
    fn string(&mut self, s: &str) {
        self.sep();
        self.quoted(s);
    }
    fn number(&mut self, raw: &str) {
        self.sep();
        self.out.extend_from_slice(raw.as_bytes());
    }
    fn boolean(&mut self, b: bool) {
        self.sep();
        self.out
            .extend_from_slice(if b { b"true" as &[u8] } else { b"false" });
    }
    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
    }
}

enum Frame {
    Array(Vec<Node>),
    Object(Vec<(String, Node)>, Option<String>),
}

#[derive(Default)]
struct NodeBuilder {
    stack: Vec<Frame>,
    result: Option<Node>,
}

impl NodeBuilder {
    fn put(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.result = Some(node),
            Some(Frame::Array(items)) => items.push(node),
            Some(Frame::Object(members, key)) => {
                let k = key.take().unwrap_or_default();
                members.push((k, node));
            }
        }
    }
}

impl Sink for NodeBuilder {
    fn begin_array(&mut self) {
        self.stack.push(Frame::Array(Vec::new()));
    }
    fn end_array(&mut self) {
        if let Some(Frame::Array(items)) = self.stack.pop() {
            self.put(Node::Array(items));
        }
    }
    fn begin_object(&mut self) {
        self.stack.push(Frame::Object(Vec::new(), None));
    }
    fn end_object(&mut self) {
        if let Some(Frame::Object(members, _)) = self.stack.pop() {
            self.put(Node::Object(members));
        }
    }
    fn key(&mut self, k: &str) {
        if let Some(Frame::Object(_, key)) = self.stack.last_mut() {
            *key = Some(k.to_owned());
        }
    }
    fn string(&mut self, s: &str) {
        self.put(Node::Str(s.to_owned()));
    }
    fn number(&mut self, raw: &str) {
        self.put(Node::Number(raw.to_owned()));
    }
    fn boolean(&mut self, b: bool) {
        self.put(Node::Bool(b));
    }
    fn null(&mut self) {
        self.put(Node::Null);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

enum PathSeg {
    Index(usize),
    Name(String),
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    stack: Vec<Container>,
    path: Vec<PathSeg>,
    outer_strict: bool,
    max_depth: usize,
    scratch: String,
}

/// Gson `isLiteral`: characters that end an unquoted literal.
fn is_literal(c: u8) -> bool {
    !matches!(
        c,
        b'/' | b'\\'
            | b';'
            | b'#'
            | b'='
            | b'{'
            | b'}'
            | b'['
            | b']'
            | b':'
            | b','
            | b' '
            | b'\t'
            | 0x0c
            | b'\r'
            | b'\n'
    )
}

/// RFC 8259 number grammar, which is what Gson's `peekNumber` accepts.
pub(crate) fn is_json_number(s: &[u8]) -> bool {
    let mut i = 0;
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return false;
        }
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return false;
        }
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    i == s.len()
}

enum State {
    Value,
    ArrayStart,
    ArrayNext,
    ObjectStart,
    ObjectNext,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, outer_strict: bool, max_depth: usize) -> Parser<'a> {
        Parser {
            s,
            b: s.as_bytes(),
            pos: 0,
            stack: Vec::new(),
            path: Vec::new(),
            outer_strict,
            max_depth,
            scratch: String::new(),
        }
    }

    fn lenient_here(&self) -> bool {
        !(self.outer_strict && (self.stack.is_empty() || self.stack == [Container::Array]))
    }

    fn path_string(&self) -> String {
        let mut p = String::from("$");
        for seg in &self.path {
            match seg {
                PathSeg::Index(i) => {
                    use std::fmt::Write;
                    let _ = write!(p, "[{i}]");
                }
                PathSeg::Name(n) => {
                    p.push('.');
                    p.push_str(n);
                }
            }
        }
        p
    }

    fn error_at(&self, pos: usize, message: &str, eof: bool) -> SyntaxError {
        let pos = pos.min(self.b.len());
        let before = &self.b[..pos];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        SyntaxError {
            message: message.to_owned(),
            line,
            column: pos - line_start + 1,
            path: self.path_string(),
            eof,
        }
    }

    fn err(&self, message: &str) -> SyntaxError {
        self.error_at(self.pos, message, false)
    }

    fn eof(&self) -> SyntaxError {
        self.error_at(self.pos, "End of input", true)
    }

    fn check_lenient(&self) -> Result<(), SyntaxError> {
        if self.lenient_here() {
            Ok(())
        } else {
            Err(self.err("Use JsonReader.setLenient(true) to accept malformed JSON"))
        }
    }

    /// Gson `nextNonWhitespace`: skips whitespace and (leniently) comments; returns the
    /// next byte without consuming it, or `None` at the end.
    fn skip_ws(&mut self) -> Result<Option<u8>, SyntaxError> {
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Ok(None);
            };
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' => match self.b.get(self.pos + 1) {
                    Some(b'*') => {
                        self.check_lenient()?;
                        match find(&self.b[self.pos + 2..], b"*/") {
                            Some(end) => self.pos += 2 + end + 2,
                            None => {
                                self.pos = self.b.len();
                                return Err(self.err("Unterminated comment"));
                            }
                        }
                    }
                    Some(b'/') => {
                        self.check_lenient()?;
                        self.skip_to_end_of_line();
                    }
                    _ => return Ok(Some(c)),
                },
                b'#' => {
                    self.check_lenient()?;
                    self.skip_to_end_of_line();
                }
                _ => return Ok(Some(c)),
            }
        }
    }

    fn skip_to_end_of_line(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            self.pos += 1;
            if c == b'\n' || c == b'\r' {
                break;
            }
        }
    }

    /// After the top-level value: only whitespace and comments may follow.
    fn end_of_document(&mut self) -> Result<(), SyntaxError> {
        match self.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.err("Did not consume the entire document.")),
        }
    }

    /// Parses one complete value (iteratively, no recursion).
    fn value(&mut self, sink: &mut impl Sink) -> Result<(), SyntaxError> {
        if self.stack.is_empty() && self.lenient_here() && self.b[self.pos..].starts_with(b")]}'\n")
        {
            self.pos += 5;
        }
        let mut state = State::Value;
        loop {
            state = match state {
                State::Value => {
                    let Some(c) = self.skip_ws()? else {
                        return Err(self.eof());
                    };
                    match c {
                        b'{' | b'[' => {
                            if self.stack.len() >= self.max_depth {
                                return Err(self.err("Nesting too deep"));
                            }
                            self.pos += 1;
                            if c == b'{' {
                                sink.begin_object();
                                self.stack.push(Container::Object);
                                self.path.push(PathSeg::Name(String::new()));
                                State::ObjectStart
                            } else {
                                sink.begin_array();
                                self.stack.push(Container::Array);
                                self.path.push(PathSeg::Index(0));
                                State::ArrayStart
                            }
                        }
                        b'"' | b'\'' => {
                            if c == b'\'' {
                                self.check_lenient()?;
                            }
                            self.pos += 1;
                            self.string(c)?;
                            sink.string(&self.scratch);
                            match self.after_value() {
                                Some(s) => s,
                                None => return Ok(()),
                            }
                        }
                        _ => {
                            self.literal_value(sink)?;
                            match self.after_value() {
                                Some(s) => s,
                                None => return Ok(()),
                            }
                        }
                    }
                }
                State::ArrayStart | State::ArrayNext => {
                    let first = matches!(state, State::ArrayStart);
                    let Some(c) = self.skip_ws()? else {
                        return Err(self.eof());
                    };
                    if c == b']' {
                        self.pos += 1;
                        sink.end_array();
                        self.stack.pop();
                        self.path.pop();
                        match self.after_value() {
                            Some(s) => s,
                            None => return Ok(()),
                        }
                    } else if first {
                        if c == b',' || c == b';' {
                            // `[,1]`: an omitted element reads as null.
                            self.check_lenient()?;
                            sink.null();
                            State::ArrayNext
                        } else {
                            State::Value
                        }
                    } else {
                        if c == b';' {
                            self.check_lenient()?;
                        } else if c != b',' {
                            return Err(self.err("Unterminated array"));
                        }
                        self.pos += 1;
                        if let Some(PathSeg::Index(i)) = self.path.last_mut() {
                            *i += 1;
                        }
                        match self.skip_ws()? {
                            None => return Err(self.eof()),
                            Some(b',' | b';' | b']') => {
                                // `[1,]`, `[1,,2]`: omitted element = null.
                                self.check_lenient()?;
                                sink.null();
                                State::ArrayNext
                            }
                            Some(_) => State::Value,
                        }
                    }
                }
                State::ObjectStart | State::ObjectNext => {
                    let first = matches!(state, State::ObjectStart);
                    let Some(c) = self.skip_ws()? else {
                        return Err(self.eof());
                    };
                    if c == b'}' {
                        self.pos += 1;
                        sink.end_object();
                        self.stack.pop();
                        self.path.pop();
                        match self.after_value() {
                            Some(s) => s,
                            None => return Ok(()),
                        }
                    } else {
                        if !first {
                            if c == b';' {
                                self.check_lenient()?;
                            } else if c != b',' {
                                return Err(self.err("Unterminated object"));
                            }
                            self.pos += 1;
                        }
                        self.name(sink)?;
                        State::Value
                    }
                }
            };
        }
    }

    /// What follows a complete value: `None` when it was the top-level value.
    fn after_value(&self) -> Option<State> {
        match self.stack.last() {
            None => None,
            Some(Container::Array) => Some(State::ArrayNext),
            Some(Container::Object) => Some(State::ObjectNext),
        }
    }

    /// Reads a member name and its separator, and emits the key.
    fn name(&mut self, sink: &mut impl Sink) -> Result<(), SyntaxError> {
        let Some(c) = self.skip_ws()? else {
            return Err(self.eof());
        };
        match c {
            b'"' => {
                self.pos += 1;
                self.string(b'"')?;
            }
            b'\'' => {
                self.check_lenient()?;
                self.pos += 1;
                self.string(b'\'')?;
            }
            b'}' => return Err(self.err("Expected name")),
            _ => {
                let start = self.pos;
                while self.b.get(self.pos).is_some_and(|&c| is_literal(c)) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.err("Expected name"));
                }
                self.check_lenient()?;
                self.scratch.clear();
                self.scratch.push_str(&self.s[start..self.pos]);
            }
        }
        match self.skip_ws()? {
            None => return Err(self.eof()),
            Some(b':') => self.pos += 1,
            Some(b'=') => {
                self.check_lenient()?;
                self.pos += 1;
                if self.b.get(self.pos) == Some(&b'>') {
                    self.pos += 1;
                }
            }
            Some(_) => return Err(self.err("Expected ':'")),
        }
        if let Some(PathSeg::Name(n)) = self.path.last_mut() {
            n.clear();
            n.push_str(&self.scratch);
        }
        sink.key(&self.scratch);
        Ok(())
    }

    /// A keyword, number or (leniently) unquoted string.
    fn literal_value(&mut self, sink: &mut impl Sink) -> Result<(), SyntaxError> {
        let start = self.pos;
        while self.b.get(self.pos).is_some_and(|&c| is_literal(c)) {
            self.pos += 1;
        }
        let lit = &self.s[start..self.pos];
        if lit.is_empty() {
            return Err(self.err("Expected value"));
        }
        if lit.eq_ignore_ascii_case("true") {
            sink.boolean(true);
        } else if lit.eq_ignore_ascii_case("false") {
            sink.boolean(false);
        } else if lit.eq_ignore_ascii_case("null") {
            sink.null();
        } else if is_json_number(lit.as_bytes()) {
            sink.number(lit);
        } else {
            let save = self.pos;
            self.pos = start;
            self.check_lenient()?;
            self.pos = save;
            sink.string(lit);
        }
        Ok(())
    }

    /// Reads a string body after its opening quote into `self.scratch`.
    fn string(&mut self, quote: u8) -> Result<(), SyntaxError> {
        self.scratch.clear();
        let mut pending_high: Option<u16> = None;
        loop {
            let start = self.pos;
            while let Some(&c) = self.b.get(self.pos) {
                if c == quote || c == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            if self.pos > start {
                if let Some(_h) = pending_high.take() {
                    self.scratch.push('\u{FFFD}');
                }
                self.scratch.push_str(&self.s[start..self.pos]);
            }
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.error_at(self.pos, "Unterminated string", true));
            };
            self.pos += 1;
            if c == quote {
                if pending_high.take().is_some() {
                    self.scratch.push('\u{FFFD}');
                }
                return Ok(());
            }
            // Escape.
            let Some(&e) = self.b.get(self.pos) else {
                return Err(self.error_at(self.pos, "Unterminated escape sequence", true));
            };
            if e == b'u' {
                let hex = self.b.get(self.pos + 1..self.pos + 5).ok_or_else(|| {
                    self.error_at(self.b.len(), "Unterminated escape sequence", true)
                })?;
                let text = std::str::from_utf8(hex).unwrap_or("");
                let Ok(unit) = u16::from_str_radix(text, 16) else {
                    return Err(self.err(&format!("Malformed Unicode escape \\u{text}")));
                };
                if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.err(&format!("Malformed Unicode escape \\u{text}")));
                }
                self.pos += 5;
                match unit {
                    0xD800..=0xDBFF => {
                        if pending_high.replace(unit).is_some() {
                            self.scratch.push('\u{FFFD}');
                        }
                    }
                    0xDC00..=0xDFFF => match pending_high.take() {
                        Some(h) => {
                            let cp = 0x10000
                                + ((u32::from(h) - 0xD800) << 10)
                                + (u32::from(unit) - 0xDC00);
                            self.scratch.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        }
                        None => self.scratch.push('\u{FFFD}'),
                    },
                    _ => {
                        if pending_high.take().is_some() {
                            self.scratch.push('\u{FFFD}');
                        }
                        self.scratch
                            .push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
                    }
                }
                continue;
            }
            if pending_high.take().is_some() {
                self.scratch.push('\u{FFFD}');
            }
            let ch = match e {
                b't' => '\t',
                b'b' => '\u{8}',
                b'n' => '\n',
                b'r' => '\r',
                b'f' => '\u{c}',
                _ => {
                    // `\'`, `\"`, `\\`, `\/`, an escaped newline, and (Gson 2.8.9) any
                    // other character stand for themselves.
                    let rest = &self.s[self.pos..];
                    let ch = rest.chars().next().unwrap_or('\u{FFFD}');
                    self.pos += ch.len_utf8();
                    self.scratch.push(ch);
                    continue;
                }
            };
            self.pos += 1;
            self.scratch.push(ch);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(s: &str) -> String {
        String::from_utf8(to_strict(s, false).unwrap()).unwrap()
    }

    #[test]
    fn strict_json_passes_through() {
        assert_eq!(
            strict(r#" {"a" : [1, -2.5e3, true, null, "x\"y"], "b":{}} "#),
            r#"{"a":[1,-2.5e3,true,null,"x\"y"],"b":{}}"#
        );
    }

    #[test]
    fn gson_leniencies() {
        assert_eq!(strict("[2,]"), "[2,null]");
        assert_eq!(strict("[,2]"), "[null,2]");
        assert_eq!(strict("[1,,2]"), "[1,null,2]");
        assert_eq!(strict("[1;2]"), "[1,2]");
        assert_eq!(strict("{'a':'b'}"), r#"{"a":"b"}"#);
        assert_eq!(strict("{a=b; c=>1}"), r#"{"a":"b","c":1}"#);
        assert_eq!(strict("// c\n{ /* x */ \"a\": 1 # y\n}"), r#"{"a":1}"#);
        assert_eq!(
            strict("[NaN, Infinity, TRUE, Null, 01]"),
            r#"["NaN","Infinity",true,null,"01"]"#
        );
        assert_eq!(strict(")]}'\n[1]"), "[1]");
        assert_eq!(strict("[\"a\tb\\x\"]"), r#"["a\tbx"]"#);
        assert_eq!(
            strict(r#"["\ud83d\ude00", "\ud800"]"#),
            "[\"\u{1F600}\",\"\u{FFFD}\"]"
        );
        assert_eq!(strict("[1] trailing garbage {"), "[1]");
    }

    #[test]
    fn errors_have_positions() {
        let e = to_strict("{\"a\":}", false).unwrap_err();
        assert_eq!(e.error.message, "Expected value");
        assert_eq!((e.error.line, e.error.column), (1, 6));
        assert_eq!(e.error.path, "$.a");
        assert!(e.error.to_string().starts_with(
            "com.google.gson.stream.MalformedJsonException: Expected value at line 1 column 6"
        ));
        let e = to_strict("[{\"a\":1},{\"b\"", false).unwrap_err();
        assert!(e.error.eof);
        assert_eq!(String::from_utf8(e.json).unwrap(), r#"[{"a":1},{"#);
        assert!(
            to_strict("{\"a\":1,}", false).is_err(),
            "no trailing comma in objects"
        );
    }

    #[test]
    fn outer_level_is_strict_in_ingest_mode() {
        assert!(to_strict("[{a:1}]", true).is_ok());
        assert!(to_strict("[{'a':[1,]}]", true).is_ok());
        assert!(to_strict("[{\"a\":1};{\"a\":2}]", true).is_err());
        assert!(to_strict("[/*c*/{\"a\":1}]", true).is_err());
        assert!(to_strict("[{\"a\":1},]", true).is_err());
    }

    #[test]
    fn parse_keeps_order_numbers_and_checks_the_end() {
        let n = parse("{b:1.50, a:'x', b:2} // done", 64).unwrap();
        assert_eq!(n.get("b"), Some(&Node::Number("2".into())));
        assert_eq!(n.members()[0], ("b", &Node::Number("2".into())));
        assert_eq!(n.to_json(), r#"{"b":1.50,"a":"x","b":2}"#);
        assert!(parse("{} {}", 64).is_err());
        assert!(parse(&"[".repeat(100), 64).is_err());
        let deep = "[".repeat(100_000);
        assert!(to_strict(&deep, false).is_err());
    }
}

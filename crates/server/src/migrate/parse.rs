//! Readers for KairosDB's configuration files, both into one flat, ordered list of
//! `(dotted.key, value)` entries for `migrate-config`:
//!
//! * Java `.properties` (KairosDB 1.0–1.2's `kairosdb.properties`), the whole format of
//!   `java.util.Properties.load`: `key=value`, `key: value`, `key value`, `#`/`!` comments,
//!   `\` line continuations, `\t \n \r \f \uXXXX` escapes, escaped separators in keys.
//! * HOCON's simple subset (KairosDB 1.3's `kairosdb.conf`): nested `a { b: 1 }` blocks,
//!   dotted keys, `=`/`:`, quoted (and `"""` triple-quoted) strings and keys, unquoted
//!   values, lists `[a, b]`, `#` and `//` comments, `include` lines. Not evaluated, only
//!   recognised: `${...}` substitutions, `+=`, and lists of objects (KairosDB's
//!   `read_clusters`), which come back as [`Item::Unsupported`] so they are reported.
//!
//! Why hand-written: the `hocon` crate (0.9) is unmaintained and pulls nom 4 and an old
//! reqwest; `java-properties` pulls encoding_rs for what is a Latin-1 fallback here. Both
//! readers together are smaller than either dependency's API glue would be, and they are
//! only used by this subcommand. Not here: what the keys mean (`mod.rs`).

use std::fmt;

/// A configuration value.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Text(String),
    List(Vec<String>),
    /// A construct migrate-config does not evaluate; the text says which.
    Unsupported(String),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Text(t) => write!(f, "{t:?}"),
            Item::List(l) => write!(f, "{l:?}"),
            Item::Unsupported(what) => f.write_str(what),
        }
    }
}

/// A syntax error with its 1-based line.
#[derive(Debug, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Entries in file order; a key set twice keeps its first position and its last value
/// (both formats let a later line win).
pub type Entries = Vec<(String, Item)>;

fn dedup_last_wins(entries: Entries) -> Entries {
    let mut out: Entries = Vec::with_capacity(entries.len());
    for (key, item) in entries {
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = item,
            None => out.push((key, item)),
        }
    }
    out
}

/// File bytes as text: UTF-8 when valid, else ISO-8859-1 (what `Properties.load` reads).
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Does this text look like HOCON rather than a properties file? A properties file has no
/// line that opens (`... {`) or closes (`}`) a block.
pub fn looks_like_hocon(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        !l.starts_with('#') && !l.starts_with('!') && (l.ends_with('{') || l.starts_with('}'))
    })
}

// --- .properties ---------------------------------------------------------------------

/// Parses a Java properties file. Never fails: every line is something in this format.
pub fn properties(text: &str) -> Entries {
    let mut entries = Vec::new();
    let mut lines = text.split(['\n', '\r']).peekable();
    while let Some(first) = lines.next() {
        let line = first.trim_start_matches([' ', '\t', '\x0c']);
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues.
        let mut logical = line.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            // `\r\n` splits into a line and an empty one; skip that empty piece.
            let next = loop {
                match lines.next() {
                    Some("") if lines.peek().is_some() => continue,
                    other => break other,
                }
            };
            match next {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key, value) = split_property(&logical);
        entries.push((unescape(key), Item::Text(unescape(value))));
    }
    dedup_last_wins(entries)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_property(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    // Java throws on a malformed \u escape; keep the text instead.
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// --- HOCON ---------------------------------------------------------------------------

/// Parses the HOCON subset described in the module comment.
pub fn hocon(text: &str) -> Result<Entries, SyntaxError> {
    let mut parser = Hocon {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut entries = Vec::new();
    parser.skip_blank();
    // A root object may be written with braces.
    if parser.peek() == Some('{') {
        parser.bump();
        parser.object_body(&[], Some('}'), &mut entries)?;
        parser.skip_blank();
        if let Some(c) = parser.peek() {
            return Err(parser.error(format!("unexpected {c:?} after the root object")));
        }
    } else {
        parser.object_body(&[], None, &mut entries)?;
    }
    Ok(dedup_last_wins(entries))
}

struct Hocon {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

/// Characters that end an unquoted key or value.
const FORBIDDEN: &[char] = &[
    '$', '"', '{', '}', '[', ']', ':', '=', ',', '+', '#', '`', '^', '?', '!', '@', '*', '&', '\\',
];

impl Hocon {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message,
        }
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || (self.peek() == Some('/') && self.peek_at(1) == Some('/'))
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Spaces and tabs (not newlines).
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(c) if c != '\n' && c.is_whitespace()) {
            self.bump();
        }
    }

    /// Whitespace, newlines and comments.
    fn skip_blank(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    /// Fields up to `close` (or the end of the text when `close` is `None`).
    fn object_body(
        &mut self,
        prefix: &[String],
        close: Option<char>,
        out: &mut Entries,
    ) -> Result<(), SyntaxError> {
        loop {
            self.skip_blank();
            while self.peek() == Some(',') {
                self.bump();
                self.skip_blank();
            }
            match self.peek() {
                None => {
                    return match close {
                        Some(c) => Err(self.error(format!("missing {c:?} at the end of the file"))),
                        None => Ok(()),
                    }
                }
                Some(c) if Some(c) == close => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => self.field(prefix, out)?,
            }
        }
    }

    fn field(&mut self, prefix: &[String], out: &mut Entries) -> Result<(), SyntaxError> {
        let path = self.key_path()?;
        if path == ["include"] && self.peek_is_include_target() {
            self.skip_spaces();
            let (target, _) = self.scalar()?;
            out.push((
                join(prefix, &path),
                Item::Unsupported(format!("an include of {target}")),
            ));
            return Ok(());
        }
        self.skip_spaces();
        let mut full = prefix.to_vec();
        full.extend(path);
        match self.peek() {
            Some('{') => {
                self.bump();
                self.object_body(&full, Some('}'), out)
            }
            Some(':') | Some('=') => {
                self.bump();
                self.skip_spaces();
                if self.peek() == Some('{') {
                    self.bump();
                    return self.object_body(&full, Some('}'), out);
                }
                let item = self.value()?;
                out.push((full.join("."), item));
                Ok(())
            }
            Some('+') if self.peek_at(1) == Some('=') => {
                self.pos += 2;
                self.skip_spaces();
                let _ = self.value()?;
                out.push((full.join("."), Item::Unsupported("a += append".to_string())));
                Ok(())
            }
            other => Err(self.error(format!(
                "expected ':', '=' or '{{' after the key {:?}, found {}",
                full.join("."),
                other.map_or("the end of the file".to_string(), |c| format!("{c:?}"))
            ))),
        }
    }

    /// Is an `include` key followed by a file name rather than `:`/`=`/`{`?
    fn peek_is_include_target(&mut self) -> bool {
        let save = (self.pos, self.line);
        self.skip_spaces();
        let rest: String = self.chars[self.pos..].iter().take(16).collect();
        (self.pos, self.line) = save;
        ["\"", "required(", "file(", "url(", "classpath("]
            .iter()
            .any(|p| rest.starts_with(p))
    }

    /// `a.b."c d".e`
    fn key_path(&mut self) -> Result<Vec<String>, SyntaxError> {
        let mut path = Vec::new();
        loop {
            let segment = match self.peek() {
                Some('"') => self.quoted()?,
                _ => {
                    let mut s = String::new();
                    while let Some(c) = self.peek() {
                        if c.is_whitespace()
                            || c == '.'
                            || FORBIDDEN.contains(&c)
                            || self.at_comment()
                        {
                            break;
                        }
                        s.push(c);
                        self.bump();
                    }
                    if s.is_empty() {
                        return Err(self.error(match self.peek() {
                            Some(c) => format!("expected a key, found {c:?}"),
                            None => "expected a key".to_string(),
                        }));
                    }
                    s
                }
            };
            path.push(segment);
            if self.peek() == Some('.') {
                self.bump();
            } else {
                return Ok(path);
            }
        }
    }

    /// A value after `:`/`=`: a list, a quoted string, a substitution or unquoted text.
    fn value(&mut self) -> Result<Item, SyntaxError> {
        match self.peek() {
            Some('[') => {
                self.bump();
                self.list()
            }
            _ => {
                let (text, substitution) = self.scalar()?;
                Ok(if substitution {
                    Item::Unsupported(format!("a substitution ({text})"))
                } else {
                    Item::Text(text)
                })
            }
        }
    }

    /// A string value, up to the end of the line, a `,`, `}`, `]` or a comment. Adjacent
    /// pieces concatenate (`"a" b` is `a b`). Returns whether it holds a `${...}`.
    fn scalar(&mut self) -> Result<(String, bool), SyntaxError> {
        let mut text = String::new();
        let mut substitution = false;
        loop {
            match self.peek() {
                None | Some('\n') | Some(',') | Some('}') | Some(']') => break,
                _ if self.at_comment() => break,
                Some('"') => text.push_str(&self.quoted()?),
                Some('$') if self.peek_at(1) == Some('{') => {
                    substitution = true;
                    while let Some(c) = self.bump() {
                        text.push(c);
                        if c == '}' {
                            break;
                        }
                    }
                }
                Some(c) if c.is_whitespace() => {
                    // Whitespace between pieces counts; trailing whitespace does not.
                    let start = self.pos;
                    self.skip_spaces();
                    match self.peek() {
                        None | Some('\n') | Some(',') | Some('}') | Some(']') => break,
                        _ if self.at_comment() => break,
                        _ => text.extend(&self.chars[start..self.pos]),
                    }
                }
                Some('{') | Some('[') => {
                    return Err(self.error(
                        "an object or list inside a string value is not supported".to_string(),
                    ))
                }
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
        Ok((text, substitution))
    }

    /// `"..."` with JSON escapes, or `"""..."""` taken verbatim.
    fn quoted(&mut self) -> Result<String, SyntaxError> {
        if self.peek_at(1) == Some('"') && self.peek_at(2) == Some('"') {
            self.pos += 3;
            let mut s = String::new();
            loop {
                if self.peek() == Some('"')
                    && self.peek_at(1) == Some('"')
                    && self.peek_at(2) == Some('"')
                {
                    self.pos += 3;
                    return Ok(s);
                }
                match self.bump() {
                    Some(c) => s.push(c),
                    None => return Err(self.error("unterminated \"\"\" string".to_string())),
                }
            }
        }
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error("unterminated string".to_string())),
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('b') => s.push('\x08'),
                    Some('f') => s.push('\x0c'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(c) => s.push(c),
                            None => return Err(self.error(format!("invalid escape \\u{hex}"))),
                        }
                    }
                    Some(c) => s.push(c),
                    None => return Err(self.error("unterminated string".to_string())),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// The items of a list after its `[`: strings; objects or nested lists make the whole
    /// list [`Item::Unsupported`].
    fn list(&mut self) -> Result<Item, SyntaxError> {
        let mut items = Vec::new();
        let mut unsupported = None;
        loop {
            self.skip_blank();
            match self.peek() {
                None => return Err(self.error("missing ']' at the end of the file".to_string())),
                Some(']') => {
                    self.bump();
                    break;
                }
                Some(',') => {
                    self.bump();
                }
                Some('{') => {
                    self.bump();
                    let mut ignored = Vec::new();
                    self.object_body(&[], Some('}'), &mut ignored)?;
                    unsupported = Some("a list of objects");
                }
                Some('[') => {
                    self.bump();
                    self.list()?;
                    unsupported = Some("a list of lists");
                }
                Some(_) => {
                    let (text, substitution) = self.scalar()?;
                    if substitution {
                        unsupported = Some("a list with a substitution");
                    }
                    items.push(text);
                }
            }
        }
        Ok(match unsupported {
            Some(what) => Item::Unsupported(what.to_string()),
            None => Item::List(items),
        })
    }
}

fn join(prefix: &[String], path: &[String]) -> String {
    let mut all = prefix.to_vec();
    all.extend_from_slice(path);
    all.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Item {
        Item::Text(s.to_string())
    }

    #[test]
    fn properties_basics() {
        let e = properties(
            "# comment\n! also a comment\n  a.b=1\nc : two words  \nd e\n\nempty=\nonly_key\n",
        );
        assert_eq!(
            e,
            vec![
                ("a.b".into(), text("1")),
                ("c".into(), text("two words  ")),
                ("d".into(), text("e")),
                ("empty".into(), text("")),
                ("only_key".into(), text("")),
            ]
        );
    }

    #[test]
    fn properties_continuations_and_escapes() {
        let e = properties(
            "list=a,\\\n    b,\\\r\n  c\nkey\\=with\\:seps=v\\tx\\u0041\nback=slash\\\\\nnext=1\n# not \\\ncontinued=2\n",
        );
        assert_eq!(e[0], ("list".into(), text("a,b,c")));
        assert_eq!(e[1], ("key=with:seps".into(), text("v\txA")));
        // An even number of backslashes does not continue.
        assert_eq!(e[2], ("back".into(), text("slash\\")));
        assert_eq!(e[3], ("next".into(), text("1")));
        // A comment line never continues.
        assert_eq!(e[4], ("continued".into(), text("2")));
    }

    #[test]
    fn properties_later_lines_win() {
        let e = properties("a=1\nb=2\na=3\n");
        assert_eq!(e, vec![("a".into(), text("3")), ("b".into(), text("2"))]);
    }

    #[test]
    fn latin1_fallback() {
        assert_eq!(decode(b"a=caf\xe9"), "a=café");
        assert_eq!(decode("a=café".as_bytes()), "a=café");
    }

    #[test]
    fn hocon_nested_blocks_and_separators() {
        let e = hocon(
            r#"
            # comment
            kairosdb: {
                service.telnet: "org.Telnet"   // trailing comment
                jetty {
                    port: 8080
                    address = "0.0.0.0"
                }
                service.http = org.kairosdb.core.http.WebServletModule
                reporter: { schedule: "0 */1 * * * ?", ttl: 0 }
                cluster: {
                    cql_host_list: ["kairos01", "kairos02"]
                    empty: []
                    "quoted key".x: unquoted words here
                }
            }
            kairosdb.jetty.port = 9090
            "#,
        )
        .unwrap();
        let get = |k: &str| e.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("kairosdb.service.telnet"), Some(text("org.Telnet")));
        // The later top-level line wins.
        assert_eq!(get("kairosdb.jetty.port"), Some(text("9090")));
        assert_eq!(get("kairosdb.jetty.address"), Some(text("0.0.0.0")));
        assert_eq!(
            get("kairosdb.service.http"),
            Some(text("org.kairosdb.core.http.WebServletModule"))
        );
        assert_eq!(
            get("kairosdb.reporter.schedule"),
            Some(text("0 */1 * * * ?"))
        );
        assert_eq!(get("kairosdb.reporter.ttl"), Some(text("0")));
        assert_eq!(
            get("kairosdb.cluster.cql_host_list"),
            Some(Item::List(vec!["kairos01".into(), "kairos02".into()]))
        );
        assert_eq!(get("kairosdb.cluster.empty"), Some(Item::List(vec![])));
        assert_eq!(
            get("kairosdb.cluster.quoted key.x"),
            Some(text("unquoted words here"))
        );
    }

    #[test]
    fn hocon_unsupported_constructs_are_flagged_not_fatal() {
        let e = hocon(
            "include \"other.conf\"\na: ${HOME}\nb += 1\nc: [ { name: x }, { name: y } ]\nd: \"\"\"multi\nline\"\"\"\n",
        )
        .unwrap();
        assert!(
            matches!(&e[0], (k, Item::Unsupported(w)) if k == "include" && w.contains("other.conf"))
        );
        assert!(matches!(&e[1], (k, Item::Unsupported(w)) if k == "a" && w.contains("${HOME}")));
        assert!(matches!(&e[2], (k, Item::Unsupported(_)) if k == "b"));
        assert!(matches!(&e[3], (k, Item::Unsupported(w)) if k == "c" && w.contains("objects")));
        assert_eq!(e[4], ("d".into(), text("multi\nline")));
    }

    #[test]
    fn hocon_root_braces_and_errors() {
        assert_eq!(hocon("{ a: 1 }").unwrap(), vec![("a".into(), text("1"))]);
        let err = hocon("a {\n b: 1\n").unwrap_err();
        assert!(err.message.contains("missing"), "{err}");
        let err = hocon("a: 1\nb c\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(hocon("a: \"open\n").is_err());
    }

    #[test]
    fn format_sniffing() {
        assert!(looks_like_hocon("kairosdb: {\n a: 1\n}\n"));
        assert!(looks_like_hocon("kairosdb {\n}\n"));
        assert!(!looks_like_hocon(
            "# a { comment {\nkairosdb.datastore.cassandra.replication={'class': 'SimpleStrategy'}\n"
        ));
    }
}

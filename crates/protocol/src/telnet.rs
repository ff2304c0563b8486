//! Telnet line parsing (spec §3, user-needs §1.8): `put`, `putm`, `puts` and `version`.
//!
//! Fixed surface (the server codes against it): [`parse_line`] and [`Line`]. Framing
//! (`\n` / `\r\n`, the 1024-byte line limit) and answering `version` are the server's.
//!
//! Rules, as KairosDB's `PutMillisecondCommand`/`PutCommand`/`PutStringCommand` and
//! `WordSplitter` apply them:
//! * words are separated by runs of any byte ≤ `' '` (so `\r`, tabs and double spaces are
//!   fine); a word starting with `"` after a separator is quoted up to a `"` followed by a
//!   separator or the end (quotes removed, inner `"` kept);
//! * the command word is case-sensitive; `put` treats timestamps `< 3_000_000_000` as
//!   seconds (×1000, also for negative values ⚠), `putm` and `puts` take milliseconds;
//! * a value containing `.` is a double (`Double.parseDouble`), otherwise a long
//!   (KairosDB `Util.parseLong`: no `+`, no exponent); `puts` stores the word verbatim;
//! * each tag word is split on `=` as Java's `String.split` does (trailing empty parts
//!   dropped, so `a=b=c` is tag `a`=`b` ⚠ and `fum=` is malformed); `kairos_opt.ttl=<int>`
//!   sets the TTL; a line without tags gets `add=tag` ⚠.
//!
//! Deliberate deviations: the line must be valid UTF-8 (KairosDB decodes ISO-8859-1, which
//! turns UTF-8 names into mojibake; user-needs §1.8 asks for UTF-8), a negative
//! `kairos_opt.ttl` means "no TTL" (Cassandra would reject it at write time and lose the
//! point; the default H2 store ignores TTLs), and an integer value beyond a 64-bit long
//! is stored as the double it denotes instead of refused (issue 17, the HTTP rule).

use kairosdb_model::batch::SeriesSlot;
use kairosdb_model::{BatchBuilder, DataType};

use crate::javanum;

/// What one line was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `put`/`putm`/`puts`: this many points were pushed into the builder.
    Points(usize),
    /// `version`: the server answers with its version line.
    Version,
    /// Blank line: ignored.
    Empty,
}

/// Parses one line (without its `\n`; a trailing `\r` is allowed) and pushes its
/// points into `builder`. `Err` holds a short reason for the log; the line is counted
/// as bad and the connection goes on.
pub fn parse_line(line: &[u8], builder: &mut BatchBuilder) -> Result<Line, String> {
    match repeat_put(line, builder) {
        Some(done) => Ok(done),
        None => parse_whole_line(line, builder),
    }
}

/// The hot path: a `put` or `putm` line without `"` whose metric and tag text, byte for
/// byte, and value type an earlier line of this batch already stored. Only its timestamp
/// and value are read: the rest is text that was valid UTF-8 and valid tags before
/// (skipping the UTF-8 pass and the word splitter over it was 10 % of telnet ingest CPU,
/// perf, 2026-12-07). `None` leaves the line to [`parse_whole_line`], which words every
/// error.
fn repeat_put(line: &[u8], builder: &mut BatchBuilder) -> Option<Line> {
    if memchr::memchr(b'"', line).is_some() {
        return None;
    }
    let mut i = 0;
    let kind = match plain_word(line, &mut i)? {
        b"put" => Put::Seconds,
        b"putm" => Put::Millis,
        _ => return None,
    };
    let metric = plain_word(line, &mut i)?;
    let ts_word = plain_word(line, &mut i)?;
    let value_word = plain_word(line, &mut i)?;
    let rest = line[i..].trim_ascii();
    let value = match javanum::short_long(value_word) {
        Some(v) => Val::Long(v),
        None => {
            let value_word = std::str::from_utf8(value_word).ok()?;
            if value_word.contains('.') {
                Val::Double(javanum::parse_double(value_word).ok()?)
            } else {
                long_value(value_word).ok()?
            }
        }
    };
    let slot = builder.memo_slot(value.data_type(), &[metric, rest])?;
    let mut ts = match javanum::short_long(ts_word) {
        Some(ts) => ts,
        None => javanum::kairos_parse_long(std::str::from_utf8(ts_word).ok()?).ok()?,
    };
    if kind == Put::Seconds && ts < 3_000_000_000 {
        ts = ts.wrapping_mul(1000);
    }
    push(builder, slot, ts, value);
    Some(Line::Points(1))
}

/// The next word of a line without `"` (KairosDB's splitter then breaks at every byte
/// ≤ `' '`, as [`Words`] does), advancing `i` past it.
#[inline]
fn plain_word<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let start = *i + b.get(*i..)?.iter().position(|&c| c > b' ')?;
    *i = find_separator(b, start);
    Some(&b[start..*i])
}

/// Every line not taken by [`repeat_put`]: the whole of KairosDB's parsing.
fn parse_whole_line(line: &[u8], builder: &mut BatchBuilder) -> Result<Line, String> {
    let line = std::str::from_utf8(line).map_err(|e| {
        format!(
            "line is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let mut words = Words::new(line);
    let Some(cmd) = words.next() else {
        return Ok(Line::Empty);
    };
    let kind = match cmd {
        "put" => Put::Seconds,
        "putm" => Put::Millis,
        "puts" => Put::String,
        "version" => return Ok(Line::Version),
        _ => return Err(format!("Unknown command: '{}'", truncate(cmd))),
    };

    const USAGE: &str =
        "not enough words: expected <cmd> <metric> <timestamp> <value> [<tag>=<value> ...]";
    let metric = words.next().ok_or(USAGE)?;
    // Java order: timestamp, then metric name, then value, then tags.
    let ts_word = words.next().ok_or(USAGE)?;
    let mut ts = javanum::kairos_parse_long(ts_word)?;
    if kind == Put::Seconds && ts < 3_000_000_000 {
        // "Backwards compatible hack for the next 30 years": seconds → ms (Java wraps).
        ts = ts.wrapping_mul(1000);
    }
    if metric.is_empty() {
        return Err("metricName may not be empty.".to_owned());
    }
    let value_word = words.next().ok_or(USAGE)?;
    let value = match kind {
        Put::String => Val::Str(value_word),
        _ if value_word.contains('.') => Val::Double(javanum::parse_double(value_word)?),
        _ => long_value(value_word)?,
    };

    // Lines repeating a series' exact metric and tag text reuse its slot without
    // re-parsing the tags (only when no `"` quoting is involved).
    let data_type = value.data_type();
    let memo_key = (!words.quoting).then(|| {
        let rest = line.as_bytes()[words.i..].trim_ascii();
        [metric.as_bytes(), rest]
    });
    if let Some(key) = &memo_key {
        if let Some(slot) = builder.memo_slot(data_type, key) {
            push(builder, slot, ts, value);
            return Ok(Line::Points(1));
        }
    }

    let mut tags: TagList<'_> = TagList::new();
    let mut ttl: i32 = 0;
    for word in words {
        let n = tags.len();
        let wb = word.as_bytes();
        let Some(eq) = memchr::memchr(b'=', wb) else {
            return Err(format!("tag[{n}] must be in the format 'name=value'."));
        };
        let (name, rest) = (&word[..eq], &word[eq + 1..]);
        // Java `split("=")` drops trailing empty parts: the tag is malformed unless some
        // part after the name is non-empty.
        if rest.bytes().all(|b| b == b'=') {
            return Err(format!("tag[{n}] must be in the format 'name=value'."));
        }
        if name.is_empty() {
            return Err(format!("tag[{n}].name may not be empty."));
        }
        let value = match memchr::memchr(b'=', rest.as_bytes()) {
            Some(p) => &rest[..p],
            None => rest,
        };
        if value.is_empty() {
            return Err(format!("tag[{n}].value may not be empty."));
        }
        if name == "kairos_opt.ttl" {
            ttl = javanum::parse_int(value)
                .map_err(|_| "tag[kairos_opt.ttl] must be a number".to_owned())?;
        } else {
            tags.push((name, value));
        }
    }
    if tags.is_empty() {
        tags.push(("add", "tag"));
    }
    let tags = tags.sorted();
    if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
        // Guava's ImmutableSortedMap.Builder refuses duplicate names; the line is lost.
        return Err(format!(
            "Multiple entries with same key: {}={} and {}={}",
            w[0].0, w[0].1, w[1].0, w[1].1
        ));
    }
    let ttl_secs = u32::try_from(ttl).unwrap_or(0);
    let slot = builder.slot_sorted(metric, data_type, tags, ttl_secs);
    if let Some(key) = &memo_key {
        builder.memo_insert(data_type, key, slot);
    }
    push(builder, slot, ts, value);
    Ok(Line::Points(1))
}

/// A `put`/`putm` value without `.`: KairosDB's `Util.parseLong`. Deliberate deviation
/// (issue 17, as on HTTP): an integer beyond a 64-bit long, which KairosDB refuses with
/// "Over/underflow", is stored as the double it denotes; one beyond a finite double
/// (more than 308 digits) is refused.
fn long_value(word: &str) -> Result<Val<'_>, String> {
    let digits = word.strip_prefix('-').unwrap_or(word);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match javanum::kairos_parse_long(word) {
        Ok(v) => Ok(Val::Long(v)),
        // Only an overflow fails on an all-digit word.
        Err(_) if integer => match word.parse::<f64>() {
            Ok(d) if d.is_finite() => Ok(Val::Double(d)),
            _ => Err(format!(
                "value {}... is out of range: beyond a 64-bit long and not a finite double.",
                truncate(word)
            )),
        },
        Err(e) => Err(e),
    }
}

#[inline]
fn push(builder: &mut BatchBuilder, slot: SeriesSlot, ts: i64, value: Val<'_>) {
    match value {
        Val::Long(v) => builder.push_long(slot, ts, v),
        Val::Double(v) => builder.push_double(slot, ts, v),
        Val::Str(v) => builder.push_string(slot, ts, v.to_owned()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Put {
    Seconds,
    Millis,
    String,
}

enum Val<'a> {
    Long(i64),
    Double(f64),
    Str(&'a str),
}

impl Val<'_> {
    fn data_type(&self) -> DataType {
        match self {
            Val::Long(_) => DataType::Long,
            Val::Double(_) => DataType::Double,
            Val::Str(_) => DataType::String,
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Tags of one line without a heap allocation for the usual ≤ 16 tags.
struct TagList<'a> {
    inline: [(&'a str, &'a str); 16],
    len: usize,
    spill: Vec<(&'a str, &'a str)>,
}

impl<'a> TagList<'a> {
    fn new() -> TagList<'a> {
        TagList {
            inline: [("", ""); 16],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        if self.spill.is_empty() {
            self.len
        } else {
            self.spill.len()
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, t: (&'a str, &'a str)) {
        if self.spill.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = t;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(t);
        }
    }

    /// Sorts by name (byte order = the model's tag order) and returns the slice.
    fn sorted(&mut self) -> &[(&'a str, &'a str)] {
        let s: &mut [(&str, &str)] = if self.spill.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        };
        // Insertion sort: a handful of tags, often already sorted.
        for i in 1..s.len() {
            let mut j = i;
            while j > 0 && s[j - 1].0 > s[j].0 {
                s.swap(j - 1, j);
                j -= 1;
            }
        }
        s
    }
}

/// Index of the first byte ≤ `' '` at or after `i` (or `b.len()`), 8 bytes at a time.
#[inline]
fn find_separator(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // High bit set in bytes < 0x21 ("has less than" trick); the lowest flagged byte
        // is exact, and bytes ≥ 0x80 (UTF-8) are excluded by `!x`.
        let t = x.wrapping_sub(0x21 * LO) & !x & HI;
        if t != 0 {
            return i + (t.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] > b' ' {
        i += 1;
    }
    i
}

/// KairosDB's `WordSplitter.splitString` as a lazy iterator.
struct Words<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    start: usize,
    quoted: bool,
    prev: u8,
    last: u8,
    done: bool,
    /// The line contains a `"`: run KairosDB's quote-aware state machine.
    quoting: bool,
}

impl<'a> Words<'a> {
    fn new(s: &'a str) -> Words<'a> {
        Words {
            s,
            b: s.as_bytes(),
            i: 0,
            start: 0,
            quoted: false,
            prev: b' ',
            last: b' ',
            done: false,
            quoting: memchr::memchr(b'"', s.as_bytes()).is_some(),
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        if !self.quoting {
            // No `"` in the line: plain splitting on bytes ≤ ' ' (same result).
            let b = self.b;
            let mut i = self.i;
            while i < b.len() && b[i] <= b' ' {
                i += 1;
            }
            if i == b.len() {
                self.done = true;
                return None;
            }
            let start = i;
            let i = find_separator(b, i);
            self.i = i;
            return Some(&self.s[start..i]);
        }
        while self.i < self.b.len() {
            let i = self.i;
            let c = self.b[i];
            self.last = c;
            self.i += 1;
            // Normal word break.
            if c <= b' ' && !self.quoted {
                let start = self.start;
                self.start = i + 1;
                self.prev = c;
                if i > start {
                    return Some(&self.s[start..i]);
                }
                continue;
            }
            // Start of a quoted section.
            if c == b'"' && self.prev <= b' ' && !self.quoted {
                self.quoted = true;
                self.start = i + 1;
                self.prev = c;
                continue;
            }
            // End of a quoted section: a separator right after a quote.
            if self.quoted && self.prev == b'"' && c <= b' ' {
                let start = self.start;
                self.quoted = false;
                self.start = i + 1;
                self.prev = c;
                if i > start {
                    return Some(&self.s[start..i - 1]);
                }
                continue;
            }
            self.prev = c;
        }
        self.done = true;
        if self.start < self.b.len() {
            if self.quoted && self.last == b'"' {
                return Some(&self.s[self.start..self.b.len() - 1]);
            }
            return Some(&self.s[self.start..]);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::{DataType, Points, Tags, WriteBatch};

    fn one(line: &str) -> Result<WriteBatch, String> {
        let mut b = BatchBuilder::new();
        parse_line(line.as_bytes(), &mut b)?;
        Ok(b.finish())
    }

    fn split(s: &str) -> Vec<&str> {
        Words::new(s).collect()
    }

    #[test]
    fn word_splitter_matches_java() {
        assert_eq!(split("  put\tm  1 \r"), vec!["put", "m", "1"]);
        assert_eq!(
            split(r#"quoted string "with"in" it"#),
            vec!["quoted", "string", "with\"in", "it"]
        );
        assert_eq!(split(r#""a b" c"#), vec!["a b", "c"]);
        assert_eq!(split(r#"x "a b""#), vec!["x", "a b"]);
        assert_eq!(split(r#"x "unterminated"#), vec!["x", "unterminated"]);
        assert_eq!(split(r#""" x"#), vec!["", "x"]);
        assert!(split(" \t\r").is_empty());
    }

    #[test]
    fn put_seconds_and_millis() {
        let b = one("put sys.cpu 1349109376 42 host=a").unwrap();
        let s = &b.series[0];
        assert_eq!(s.key.metric, "sys.cpu");
        assert_eq!(s.key.tags, Tags::from_pairs([("host", "a")]));
        assert_eq!(
            s.points,
            Points::Long {
                ts: vec![1349109376000],
                values: vec![42]
            }
        );
        let b = one("put m 3000000000 1 host=a").unwrap();
        assert_eq!(b.series[0].points.timestamps(), &[3000000000]);
        let b = one("put m -5 1 host=a").unwrap();
        assert_eq!(b.series[0].points.timestamps(), &[-5000]);
        let b = one("putm m 1000 1.5 host=a").unwrap();
        assert_eq!(
            b.series[0].points,
            Points::Double {
                ts: vec![1000],
                values: vec![1.5]
            }
        );
        let b = one("puts m 1000 hello host=a").unwrap();
        assert_eq!(
            b.series[0].points,
            Points::String {
                ts: vec![1000],
                values: vec!["hello".into()]
            }
        );
    }

    #[test]
    fn collectd_and_sloppy_spacing() {
        let b = one("put  m  1349109376  1.5e3   fqdn=h  a=b\r").unwrap();
        assert_eq!(
            b.series[0].key.tags,
            Tags::from_pairs([("fqdn", "h"), ("a", "b")])
        );
        assert_eq!(
            b.series[0].points,
            Points::Double {
                ts: vec![1349109376000],
                values: vec![1500.0]
            }
        );
    }

    #[test]
    fn tags_rules() {
        let b = one("put m 1 1").unwrap();
        assert_eq!(b.series[0].key.tags, Tags::from_pairs([("add", "tag")]));
        let b = one("put m 1 1 a=b=c").unwrap();
        assert_eq!(b.series[0].key.tags, Tags::from_pairs([("a", "b")]));
        let b = one("put m 1 1 kairos_opt.ttl=60 x=y").unwrap();
        assert_eq!(b.series[0].ttl_secs, 60);
        assert_eq!(b.series[0].key.tags, Tags::from_pairs([("x", "y")]));
        let b = one("put m 1 1 kairos_opt.ttl=60").unwrap();
        assert_eq!(b.series[0].key.tags, Tags::from_pairs([("add", "tag")]));
        let b = one("put m 1 1 kairos_opt.ttl=-5 x=y").unwrap();
        assert_eq!(b.series[0].ttl_secs, 0);
        let b = one("put 你好 1 1 ключ=значение").unwrap();
        assert_eq!(b.series[0].key.metric, "你好");
        assert_eq!(
            b.series[0].key.tags,
            Tags::from_pairs([("ключ", "значение")])
        );
        let b = one("put m 1 1 a:b=c=d x=a:b").unwrap();
        assert_eq!(
            b.series[0].key.tags,
            Tags::from_pairs([("a:b", "c"), ("x", "a:b")])
        );
    }

    #[test]
    fn error_texts() {
        let cases = [
            (
                "put m 1 1 fum=",
                "tag[0] must be in the format 'name=value'.",
            ),
            (
                "put m 1 1 a=b fum",
                "tag[1] must be in the format 'name=value'.",
            ),
            ("put m 1 1 =x", "tag[0].name may not be empty."),
            ("put m 1 1 a==b", "tag[0].value may not be empty."),
            (
                "put m 1 1 a==",
                "tag[0] must be in the format 'name=value'.",
            ),
            ("put m 1 1 =", "tag[0] must be in the format 'name=value'."),
            (
                "put m 1 1 kairos_opt.ttl=x",
                "tag[kairos_opt.ttl] must be a number",
            ),
            ("put \"\" 1 1 a=b", "metricName may not be empty."),
            ("put m abc 1 a=b", "Malformed:  abc"),
            ("put m +1 1 a=b", "Malformed:  +1"),
            ("put m 1 1e5 a=b", "Malformed:  1e5"),
            ("put m 1 1.2.3 a=b", "multiple points"),
            ("put m 1 x.y a=b", "For input string: \"x.y\""),
            (
                "put m 1 1 a=b a=c",
                "Multiple entries with same key: a=b and a=c",
            ),
            ("PUT m 1 1 a=b", "Unknown command: 'PUT'"),
        ];
        for (line, want) in cases {
            assert_eq!(one(line).unwrap_err(), want, "{line}");
        }
        assert!(one("put m 1").unwrap_err().starts_with("not enough words"));
        assert!(one("put").is_err());
        let mut b = BatchBuilder::new();
        assert!(parse_line(b"put m\xff 1 1 a=b", &mut b)
            .unwrap_err()
            .contains("UTF-8"));
        assert!(b.is_empty());
    }

    #[test]
    fn an_integer_beyond_a_long_is_stored_as_the_double_it_denotes() {
        // 2^63, the double nearest to ±9223372036854775808 and ±9223372036854775809.
        const TWO_POW_63: f64 = (1u64 << 63) as f64;
        for (line, ts, v) in [
            (
                "put m 1349109376 12345678901234567890 host=a",
                1349109376000,
                1.2345678901234567e19,
            ),
            ("putm m 5 -9223372036854775809 host=a", 5, -TWO_POW_63),
            ("putm m 5 9223372036854775808 host=a", 5, TWO_POW_63),
        ] {
            let b = one(line).unwrap();
            assert_eq!(
                b.series[0].points,
                Points::Double {
                    ts: vec![ts],
                    values: vec![v]
                },
                "{line}"
            );
            assert_eq!(b.series[0].key.data_type, DataType::Double, "{line}");
        }
    }

    #[test]
    fn integers_that_fit_a_long_stay_longs() {
        for (word, v) in [
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
            ("-0", 0),
        ] {
            let b = one(&format!("putm m 5 {word} host=a")).unwrap();
            assert_eq!(
                b.series[0].points,
                Points::Long {
                    ts: vec![5],
                    values: vec![v]
                },
                "{word}"
            );
        }
        // No exponent without a `.` on telnet, as in KairosDB.
        assert_eq!(one("put m 1 1e19 a=b").unwrap_err(), "Malformed:  1e19");
    }

    #[test]
    fn an_integer_beyond_a_finite_double_is_refused() {
        let line = format!("putm m 5 {} host=a", "9".repeat(400));
        assert_eq!(
            one(&line).unwrap_err(),
            format!(
                "value {}... is out of range: beyond a 64-bit long and not a finite double.",
                "9".repeat(64)
            )
        );
        let line = format!("putm m 5 -{} host=a", "9".repeat(400));
        assert!(one(&line).unwrap_err().starts_with("value -999"));
    }

    #[test]
    fn version_and_empty() {
        let mut b = BatchBuilder::new();
        assert_eq!(parse_line(b"version", &mut b), Ok(Line::Version));
        assert_eq!(parse_line(b"version\r", &mut b), Ok(Line::Version));
        assert_eq!(parse_line(b"", &mut b), Ok(Line::Empty));
        assert_eq!(parse_line(b" \r", &mut b), Ok(Line::Empty));
        assert!(b.is_empty());
    }

    #[test]
    fn same_series_accumulates_in_any_tag_order() {
        let mut b = BatchBuilder::new();
        parse_line(b"put m 1 1 a=1 b=2", &mut b).unwrap();
        parse_line(b"put m 2 2 b=2 a=1", &mut b).unwrap();
        parse_line(b"put m 3 2.5 b=2 a=1", &mut b).unwrap();
        let batch = b.finish();
        assert_eq!(batch.series.len(), 2);
        assert_eq!(
            batch.series[0].points,
            Points::Long {
                ts: vec![1000, 2000],
                values: vec![1, 2]
            }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_lines_never_panic(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut b = BatchBuilder::new();
            let r = parse_line(&line, &mut b);
            proptest::prop_assert_eq!(matches!(r, Ok(Line::Points(1))), b.point_count() == 1);
        }

        #[test]
        fn put_like_lines_never_panic(line in r#"(put|putm|puts|version|x)?[ \t\r"]{0,2}[a-z=0-9.\-" \t]{0,60}"#) {
            let mut b = BatchBuilder::new();
            let _ = parse_line(line.as_bytes(), &mut b);
        }

        /// Lines repeating a series' text take the memo path; every answer and every
        /// stored point is the whole parse's.
        #[test]
        fn repeated_lines_answer_as_the_whole_parse_does(lines in proptest::collection::vec(
            (
                0..4usize,
                proptest::sample::select(vec!["put", "putm", "puts", "put\t", "x"]),
                proptest::sample::select(vec!["m", "m.n", "caf\u{e9}"]),
                proptest::sample::select(vec![
                    "h=a", "h=a ", " h=a\t", "h=a d=b", "d=b h=a", "h=a\u{1}", "h=a h=b",
                    "h=\"a\"", "kairos_opt.ttl=5 h=a", "", "h=", "=a", "h=a\r",
                ]),
                proptest::sample::select(vec!["1", "1451606400", "3000000000", "-5", "1.5", "9x", "99999999999999999999", "\u{e9}", "-", "007"]),
                proptest::sample::select(vec![
                    "1", "-2", "2.5", "1e3", "0x10", "x", "99999999999999999999", "NaN", "\u{e9}", "",
                    "-", "+3", "-0", "0042", "999999999999999999", "-999999999999999999",
                    "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                ]),
            ),
            1..16,
        )) {
            // Most lines reuse one of three series texts, so repeats are common.
            let common = ["put m h=a", "putm m.n d=b h=a", "put caf\u{e9} h=a\t"];
            let (mut fast, mut whole) = (BatchBuilder::new(), BatchBuilder::new());
            for (series, cmd, metric, tags, ts, value) in lines {
                let line = match common.get(series) {
                    Some(text) => {
                        let (head, tags) = text.rsplit_once(' ').unwrap_or((text, ""));
                        format!("{head} {ts} {value} {tags}")
                    }
                    None => format!("{cmd} {metric} {ts} {value} {tags}"),
                };
                proptest::prop_assert_eq!(
                    parse_line(line.as_bytes(), &mut fast),
                    parse_whole_line(line.as_bytes(), &mut whole),
                    "{:?}", line
                );
            }
            proptest::prop_assert_eq!(fast.finish(), whole.finish());
        }

        #[test]
        fn valid_puts_round_trip(
            metric in "[a-z.\u{e9}]{1,10}",
            ts in 3_000_000_000i64..i64::MAX,
            v in proptest::prelude::any::<i64>(),
            tags in proptest::collection::btree_map("[a-z]{1,5}", "[a-z0-9:]{1,5}", 1..5),
        ) {
            let mut line = format!("put {metric} {ts} {v}");
            for (k, val) in &tags {
                line.push_str(&format!(" {k}={val}"));
            }
            let mut b = BatchBuilder::new();
            proptest::prop_assert_eq!(parse_line(line.as_bytes(), &mut b), Ok(Line::Points(1)));
            let batch = b.finish();
            proptest::prop_assert_eq!(&batch.series[0].key.tags, &Tags::from_pairs(tags));
            proptest::prop_assert_eq!(&batch.series[0].points, &Points::Long { ts: vec![ts], values: vec![v] });
        }
    }
}

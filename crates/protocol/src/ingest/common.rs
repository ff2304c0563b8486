//! The common shape of an ingest body, read by hand: a JSON array of metric objects
//! whose members are only `name`, `tags`, `datapoints`, `type` and `ttl`, with strings
//! free of escapes, an integer `ttl` and every `datapoints` entry
//! `[integer, plain number]`. Nearly every client
//! sends exactly that.
//!
//! Why: at 1,000 series a request (10 points an object) serde's visitors, its string
//! reader and the `RawValue` pass over `datapoints` were a third of the server's ingest
//! CPU (perf, 2026-12-07, docs/benchmarks.md "session 4").
//!
//! What it shares with the serde path: the per-object state ([`State`], [`Metric`]), the
//! `datapoints` scanner ([`scan_fast`]) and all validation and conversion ([`commit`]).
//! Only the tokenizing is its own.
//!
//! Not here: anything else. At the first byte outside that shape (another member, an
//! escape, a number written otherwise, a syntax error, a duplicate member or tag, a
//! KairosDB runtime exception) [`run`] returns `None` and the caller parses the whole
//! body again with serde, so every answer, error text included, is the serde path's.

use std::borrow::Cow;

use super::{commit, field_of, scan_fast, skip_ws, End, Field, Metric, Run, State};

/// Parses `body` if it has the common shape; `None` if not (nothing of this pass is kept).
pub(super) fn run(body: &[u8]) -> Option<Run> {
    let text = std::str::from_utf8(body).ok()?;
    let b = text.as_bytes();
    let mut st = State::new();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) != Some(&b']') {
        loop {
            i = object(&mut st, text, i)?;
            st.index += 1;
            i = skip_ws(b, i);
            match b.get(i)? {
                b',' => i = skip_ws(b, i + 1),
                b']' => break,
                _ => return None,
            }
        }
    }
    // Bytes after the array are ignored, as KairosDB (and the serde path) ignore them.
    Some(Run {
        builder: st.builder,
        errors: st.errors,
        end: End::Ok,
    })
}

/// One metric object starting at `i`; returns where it ends (past its `}`).
fn object<'de>(st: &mut State<'de>, text: &'de str, mut i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    st.begin_object();
    let mut m = Metric::default();
    let mut seen = 0u8;
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return finish(st, &m, i + 1);
    }
    loop {
        let (key, j) = string(text, i)?;
        i = skip_ws(b, j);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let field = field_of(key);
        let bit = match field {
            Field::Name => 1,
            Field::Tags => 2,
            Field::Datapoints => 4,
            Field::Type => 8,
            Field::Ttl => 16,
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        i = match field {
            Field::Name => {
                let (v, j) = string(text, i)?;
                m.name = Some(Cow::Borrowed(v));
                j
            }
            Field::Type => {
                let (v, j) = string(text, i)?;
                m.ty = Some(Cow::Borrowed(v));
                j
            }
            Field::Tags => tags(st, text, i)?,
            Field::Ttl => {
                let (ttl, j) = integer(text, i)?;
                m.ttl = ttl;
                j
            }
            _ => datapoints(st, &mut m, text, i)?,
        };
        i = skip_ws(b, i);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return finish(st, &m, i + 1),
            _ => return None,
        }
    }
}

/// Validates and stores the object, as the serde path does at its end.
fn finish(st: &mut State<'_>, m: &Metric<'_>, end: usize) -> Option<usize> {
    // A runtime exception (500) is left to the serde path, which words it.
    commit(st, m).ok()?;
    st.in_object = false;
    Some(end)
}

/// A `tags` object of string values starting at `i`.
fn tags<'de>(st: &mut State<'de>, text: &'de str, mut i: usize) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    st.tags.clear();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (name, j) = string(text, i)?;
        i = skip_ws(b, j);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let (value, j) = string(text, skip_ws(b, i + 1))?;
        if st.tags.iter().any(|(k, _)| k == name) {
            return None;
        }
        st.tags
            .push((Cow::Borrowed(name), Some(Cow::Borrowed(value))));
        i = skip_ws(b, j);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// A `datapoints` array starting at `i`, staged in the object's columns.
fn datapoints<'de>(
    st: &mut State<'de>,
    m: &mut Metric<'de>,
    text: &'de str,
    i: usize,
) -> Option<usize> {
    let rest = text.as_bytes().get(i..)?;
    if rest.first() != Some(&b'[') {
        return None;
    }
    let dp = &mut st.dp;
    dp.points.clear();
    dp.clear_columns();
    let len = scan_fast(rest, &mut dp.long_cols, &mut dp.double_cols)?;
    dp.raw = text.get(i..i + len)?;
    dp.fast = true;
    m.has_datapoints = true;
    Some(i + len)
}

/// A JSON integer that fits an `int` (Gson's `nextInt`) starting at `i`.
fn integer(text: &str, i: usize) -> Option<(i32, usize)> {
    let b = text.as_bytes();
    let digits_at = i + usize::from(b.get(i) == Some(&b'-'));
    let len = b
        .get(digits_at..)?
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if len == 0 || (len > 1 && b[digits_at] == b'0') {
        return None;
    }
    let end = digits_at + len;
    Some((text.get(i..end)?.parse().ok()?, end))
}

/// Where the first `"`, `\` or control character (below 0x20) of `b` is, read eight
/// bytes at a time: byte by byte, the strings of a TSBS body were 9 % of HTTP ingest
/// CPU (perf, 2026-12-07).
pub(super) fn string_end(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // `(v - ONES) & !v & HIGHS` marks the bytes of `v` that are zero (below 0x20 with
    // `ONES * 0x20`). A borrow can mark a byte above a marked one, never below it, so
    // the lowest mark of the three is the first byte sought.
    let zero = |v: u64, below: u64| v.wrapping_sub(ONES * below) & !v & HIGHS;
    let mut i = 0;
    while let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*word);
        let hit = zero(x ^ (ONES * u64::from(b'"')), 1)
            | zero(x ^ (ONES * u64::from(b'\\')), 1)
            | zero(x, 0x20);
        if hit != 0 {
            return Some(i + hit.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    Some(
        i + rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?,
    )
}

/// A string literal without escapes or control characters starting at `i`: its text
/// and where it ends (past the closing quote).
fn string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let end = start + string_end(b.get(start..)?)?;
    if b[end] != b'"' {
        return None;
    }
    Some((text.get(start..end)?, end + 1))
}

//! Query response JSON writing (spec §4.5, §4.6), byte for byte as KairosDB's org.json
//! writer prints it: fixed key order, no whitespace, Java `Double.toString` numbers with
//! org.json's trailing-zero trimming, and org.json string escaping.
//!
//! Writes straight into a `Vec<u8>` (no intermediate tree). Not for: deciding what the
//! results are (that is `kairosdb-query`), or the error bodies (the server).

use std::collections::{BTreeMap, BTreeSet};

use kairosdb_model::{Coverage, GroupByResult, Num, OutColumn, QueryResult, ResultGroup};

/// Appends `{"queries":[...]}` for the given results to `out`.
/// `Err` names a NaN/Infinity value (spec §4.6: the query fails with 500).
pub fn write_query_response(out: &mut Vec<u8>, queries: &[QueryResult]) -> Result<(), String> {
    out.extend_from_slice(b"{\"queries\":[");
    for (i, q) in queries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_query_result(out, q)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// One element of the query response's `queries[]`, as [`write_query_response`] writes
/// it: a server may render the results of a request's metric queries on several threads
/// and [`join_query_results`] them.
pub fn write_query_result(out: &mut Vec<u8>, q: &QueryResult) -> Result<(), String> {
    out.extend_from_slice(b"{\"sample_size\":");
    write_u64(out, q.sample_size);
    out.extend_from_slice(b",\"results\":[");
    for (j, group) in q.results.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_group(out, group)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The query response around `queries[]` elements written by [`write_query_result`].
///
/// A cluster's partial answer (`partial`) adds `"is_partial":true`, `"total_nodes"` and
/// `"responding_nodes"` after `queries` (docs/cluster.md); other answers are KairosDB's.
pub fn join_query_results<'a>(
    out: &mut Vec<u8>,
    parts: impl IntoIterator<Item = &'a [u8]>,
    partial: Option<Coverage>,
) {
    out.extend_from_slice(b"{\"queries\":[");
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    out.push(b']');
    if let Some(c) = partial {
        let fields = format!(
            ",\"is_partial\":true,\"total_nodes\":{},\"responding_nodes\":{}",
            c.total_nodes, c.responding_nodes
        );
        out.extend_from_slice(fields.as_bytes());
    }
    out.push(b'}');
}

/// Appends the `/api/v1/datapoints/query/tags` response (spec §1.7): one `queries[]`
/// element per metric, each with exactly one result, no `sample_size`, no `group_by`,
/// `values` always `[]`, `tags` always printed (possibly `{}`).
pub fn write_tags_response(
    out: &mut Vec<u8>,
    results: &[(&str, &BTreeMap<String, BTreeSet<String>>)],
) {
    out.extend_from_slice(b"{\"queries\":[");
    for (i, (name, tags)) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"results\":[{\"name\":");
        write_json_string(out, name);
        out.extend_from_slice(b",\"tags\":");
        let pairs = tags
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| (name.as_str(), v.as_str())));
        write_tags(out, pairs);
        out.extend_from_slice(b",\"values\":[]}]}");
    }
    out.extend_from_slice(b"]}");
}

fn write_group(out: &mut Vec<u8>, g: &ResultGroup) -> Result<(), String> {
    out.extend_from_slice(b"{\"name\":");
    write_json_string(out, &g.name);
    if let Some(alias) = &g.alias {
        out.extend_from_slice(b",\"alias\":");
        write_json_string(out, alias);
    }
    if !g.group_by.is_empty() {
        out.extend_from_slice(b",\"group_by\":[");
        for (i, gb) in g.group_by.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_group_by(out, gb)?;
        }
        out.push(b']');
    }
    if let Some(tags) = &g.tags {
        out.extend_from_slice(b",\"tags\":");
        write_tags(out, tags.pairs());
    }
    out.extend_from_slice(b",\"values\":[");
    debug_assert_eq!(
        g.ts.len(),
        g.values.len(),
        "BUG: ts and values differ in length"
    );
    let ts = &g.ts;
    match &g.values {
        OutColumn::Long(v) => {
            for (i, (&t, &x)) in ts.iter().zip(v).enumerate() {
                pair_start(out, i, t);
                write_i64(out, x);
                out.push(b']');
            }
        }
        OutColumn::Double(v) => {
            for (i, (&t, &x)) in ts.iter().zip(v).enumerate() {
                pair_start(out, i, t);
                write_double_point(out, t, x)?;
                out.push(b']');
            }
        }
        OutColumn::Number(v) => {
            for (i, (&t, x)) in ts.iter().zip(v).enumerate() {
                pair_start(out, i, t);
                match *x {
                    Num::Long(l) => write_i64(out, l),
                    Num::Double(d) => write_double_point(out, t, d)?,
                    Num::Null => out.extend_from_slice(b"null"),
                }
                out.push(b']');
            }
        }
        OutColumn::Text(v) => {
            for (i, (&t, x)) in ts.iter().zip(v).enumerate() {
                pair_start(out, i, t);
                write_json_string(out, x);
                out.push(b']');
            }
        }
        OutColumn::TextOrNull(v) => {
            for (i, (&t, x)) in ts.iter().zip(v).enumerate() {
                pair_start(out, i, t);
                match x {
                    Some(s) => write_json_string(out, s),
                    None => out.extend_from_slice(b"null"),
                }
                out.push(b']');
            }
        }
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

#[inline]
fn pair_start(out: &mut Vec<u8>, i: usize, ts: i64) {
    if i > 0 {
        out.extend_from_slice(b",[");
    } else {
        out.push(b'[');
    }
    write_i64(out, ts);
    out.push(b',');
}

fn write_double_point(out: &mut Vec<u8>, ts: i64, v: f64) -> Result<(), String> {
    if write_java_double(out, v) {
        Ok(())
    } else {
        Err(format!(
            "NaN or Infinity:{} data point=DoubleDataPoint{{m_timestamp={ts}, m_value={}}}",
            java_special(v),
            java_special(v)
        ))
    }
}

fn java_special(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Writes `{"name":["value",...],...}` from distinct `(name, value)` pairs sorted by name,
/// then value.
fn write_tags<'a>(out: &mut Vec<u8>, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push(b'{');
    let mut current: Option<&str> = None;
    for (name, value) in pairs {
        if current == Some(name) {
            out.push(b',');
        } else {
            if current.is_some() {
                out.extend_from_slice(b"],");
            }
            write_json_string(out, name);
            out.extend_from_slice(b":[");
            current = Some(name);
        }
        write_json_string(out, value);
    }
    if current.is_some() {
        out.push(b']');
    }
    out.push(b'}');
}

fn write_group_by(out: &mut Vec<u8>, gb: &GroupByResult) -> Result<(), String> {
    match gb {
        GroupByResult::Type(t) => {
            out.extend_from_slice(b"{\"name\":\"type\",\"type\":");
            write_json_string(out, t.name());
            out.push(b'}');
        }
        GroupByResult::Tag { tags, group } => {
            out.extend_from_slice(b"{\"name\":\"tag\",\"tags\":[");
            for (i, t) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, t);
            }
            out.extend_from_slice(b"],\"group\":{");
            for (i, (k, v)) in group.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, k);
                out.push(b':');
                write_json_string(out, v);
            }
            out.extend_from_slice(b"}}");
        }
        GroupByResult::Time {
            range_value,
            range_unit,
            group_count,
            group_number,
        } => {
            out.extend_from_slice(b"{\"name\":\"time\",\"range_size\":{\"value\":");
            write_i64(out, *range_value);
            out.extend_from_slice(b",\"unit\":");
            write_json_string(out, range_unit);
            out.extend_from_slice(b"},\"group_count\":");
            write_i64(out, *group_count);
            out.extend_from_slice(b",\"group\":{\"group_number\":");
            write_i64(out, *group_number);
            out.extend_from_slice(b"}}");
        }
        GroupByResult::Value {
            range_size,
            group_number,
        } => {
            out.extend_from_slice(b"{\"name\":\"value\",\"range_size\":");
            write_i64(out, *range_size);
            out.extend_from_slice(b",\"group\":{\"group_number\":");
            write_i64(out, *group_number);
            out.extend_from_slice(b"}}");
        }
        GroupByResult::Bin { bins, bin_number } => {
            out.extend_from_slice(b"{\"name\":\"bin\",\"bins\":[");
            for (i, &b) in bins.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_java_double(out, b) {
                    return Err(format!("NaN or Infinity:{} in bins", java_special(b)));
                }
            }
            out.extend_from_slice(b"],\"group\":{\"bin_number\":");
            write_i64(out, *bin_number);
            out.extend_from_slice(b"}}");
        }
    }
    Ok(())
}

#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

#[inline]
fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Java's `Double.toString(v)` (for messages): the org.json form with `.0` kept
/// (`5.0`, `1.0E7`, `NaN`).
pub fn java_double_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let mut out = Vec::new();
    write_java_double(&mut out, v);
    let mut s = String::from_utf8(out).unwrap_or_default();
    if !s.contains(['.', 'E']) {
        s.push_str(".0");
    }
    s
}

/// Writes `v` as org.json prints a Java double (spec §4.6): `Double.toString` (plain
/// notation for 1e-3 ≤ |v| < 1e7, else `d.dddE±n`, shortest round-trip digits), then,
/// only for plain notation, trailing zeros and a trailing `.` removed (`55.0` → `55`,
/// `-0.0` → `-0`, `1.0E7` stays). Returns `false` (writing nothing) for NaN/±Infinity,
/// which org.json refuses.
pub fn write_java_double(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return true;
    }
    let a = v.abs();
    // Whole numbers in the plain range (a max, min, count or sum of integer data) print
    // as the integer: `Double.toString` gives "57.0" and org.json drops the ".0". This
    // skips ryu, whose digit search is at its slowest on such values.
    // (`as` casts, not `fract()`: without SSE4.1 that is a libm call.)
    if a < 1e7 && (v as i64) as f64 == v {
        write_i64(out, v as i64);
        return true;
    }
    write_shortest(out, v);
    true
}

/// [`write_java_double`] of a finite, non-zero `v` through ryu's shortest round-trip
/// digits, re-laid-out Java style.
fn write_shortest(out: &mut Vec<u8>, v: f64) {
    let a = v.abs();
    let mut rb = ryu::Buffer::new();
    let s = rb.format_finite(v).as_bytes();
    if (1e-3..1e7).contains(&a) {
        // Java's plain range: ryu also prints plain decimal here with the same digits;
        // org.json then drops a trailing ".0".
        out.extend_from_slice(s.strip_suffix(b".0").unwrap_or(s));
        return;
    }
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    // Split into mantissa text and exponent.
    let (mant, exp10) = match s.iter().position(|&c| c == b'e') {
        Some(p) => {
            let e = std::str::from_utf8(&s[p + 1..])
                .ok()
                .and_then(|t| t.parse::<i32>().ok())
                .unwrap_or(0);
            (&s[..p], e)
        }
        None => (s, 0),
    };
    // digits without the point; `point` = number of digits before the point.
    let mut digits = [0u8; 32];
    let mut n = 0;
    let mut point = mant.len() as i32;
    for &c in mant {
        if c == b'.' {
            point = n as i32;
        } else {
            digits[n] = c;
            n += 1;
        }
    }
    // Strip leading zeros (e.g. "0.001") and trailing zeros (e.g. "100.0").
    let mut lead = 0;
    while lead < n - 1 && digits[lead] == b'0' {
        lead += 1;
        point -= 1;
    }
    let mut end = n;
    while end > lead + 1 && digits[end - 1] == b'0' {
        end -= 1;
    }
    let mut d = &digits[lead..end];
    // Java prints at least two significant digits' worth of precision: when the shortest
    // form has one digit, it picks the closest two-digit decimal, which differs only
    // where the double is not exactly that decimal (e.g. `Double.MIN_VALUE` prints as
    // `4.9E-324`, not `5.0E-324`). Integral values are exact, so skip the slow path.
    let two: [u8; 2];
    // Only subnormals have so little precision that this changes anything.
    if d.len() == 1 && a < f64::MIN_POSITIVE {
        let t = format!("{:.1e}", v.abs());
        let tb = t.as_bytes();
        if tb.len() >= 3 && tb[2] != b'0' {
            two = [tb[0], tb[2]];
            let e: i32 = t[t.find('e').map_or(t.len(), |p| p + 1)..]
                .parse()
                .unwrap_or(0);
            point = e + 1 - exp10;
            d = &two;
        }
    }
    // value = 0.d1d2... × 10^(point + exp10) = d1.d2... × 10^(sci)
    let sci = point + exp10 - 1;
    if neg {
        out.push(b'-');
    }
    if (-3..7).contains(&sci) {
        if sci >= 0 {
            let int_len = (sci + 1) as usize;
            if d.len() <= int_len {
                out.extend_from_slice(d);
                out.resize(out.len() + int_len - d.len(), b'0');
            } else {
                out.extend_from_slice(&d[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&d[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-sci - 1) as usize, b'0');
            out.extend_from_slice(d);
        }
    } else {
        out.push(d[0]);
        out.push(b'.');
        if d.len() > 1 {
            out.extend_from_slice(&d[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        write_i64(out, i64::from(sci));
    }
}

/// True for the bytes [`write_json_string`] looks at before copying a string whole:
/// control characters, `"`, `\\`, `<`, and the UTF-8 lead bytes 0xC2 and 0xE2 (which
/// start U+0080–U+009F and U+2000–U+20FF, escaped as KairosDB does).
const fn starts_escape(c: u8) -> bool {
    // `|`, not `||`: no branches, so a fold over a long string vectorizes.
    (c < 0x20) | (c == b'"') | (c == b'\\') | (c == b'<') | (c == 0xC2) | (c == 0xE2)
}

/// [`starts_escape`] for every byte.
static STARTS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = starts_escape(c as u8);
        c += 1;
    }
    table
};

/// Appends `s` quoted as org.json's `JSONObject.quote` does (spec §4.6): `\"`, `\\`,
/// `\b \t \n \f \r`; `/` escaped only after `<`; other chars below U+0020, in
/// U+0080–U+009F or in U+2000–U+20FF as `\u` + 4 lower-case hex digits; the rest raw.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most strings (names, tag values) hold none of the bytes that start an escape: copy
    // them whole. `/` is escaped only after `<`, so `<` is what to look for. Short strings
    // (most tag names and values) are checked by table, one load a byte; longer ones by a
    // branch-free fold over every byte, which the compiler vectorizes.
    let plain = if bytes.len() < 32 {
        !bytes.iter().any(|&c| STARTS_ESCAPE[usize::from(c)])
    } else {
        !bytes
            .iter()
            .fold(false, |special, &c| special | starts_escape(c))
    };
    if plain {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_escaped(out, bytes);
    }
}

/// [`write_json_string`] byte by byte, for strings that may need escapes.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'/' if i > 0 && bytes[i - 1] == b'<' => b"\\/",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                write_u_escape(out, u32::from(c));
                i += 1;
                start = i;
                continue;
            }
            // U+0080–U+009F: C2 80..C2 9F; U+2000–U+20FF: E2 80 80..E2 83 BF.
            0xC2 if matches!(bytes.get(i + 1), Some(0x80..=0x9F)) => {
                out.extend_from_slice(&bytes[start..i]);
                write_u_escape(out, u32::from(bytes[i + 1] & 0x3F) | 0x80);
                i += 2;
                start = i;
                continue;
            }
            0xE2 if matches!(bytes.get(i + 1), Some(0x80..=0x83)) => {
                out.extend_from_slice(&bytes[start..i]);
                let cp =
                    0x2000 | (u32::from(bytes[i + 1] & 0x3F) << 6) | u32::from(bytes[i + 2] & 0x3F);
                write_u_escape(out, cp);
                i += 3;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_u_escape(out: &mut Vec<u8>, cp: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((cp >> shift) & 0xF) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kairosdb_model::{DataType, GroupTags, GroupType, SeriesKey, Tags};

    use super::*;

    /// The tags of a group of series with these tags.
    fn tags_of(series: &[&[(&str, &str)]]) -> GroupTags {
        GroupTags::new(
            series
                .iter()
                .map(|tags| {
                    let tags = Tags::from_pairs(tags.iter().copied());
                    Arc::new(SeriesKey::new("m", DataType::Double, tags))
                })
                .collect(),
        )
    }

    fn d(v: f64) -> String {
        let mut out = Vec::new();
        assert!(write_java_double(&mut out, v));
        String::from_utf8(out).unwrap()
    }

    fn q(s: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_follow_java_and_org_json() {
        // Vectors of spec §4.6 and the Java fixtures.
        assert_eq!(d(55.0), "55");
        assert_eq!(d(0.5), "0.5");
        assert_eq!(d(30.200000000000003), "30.200000000000003");
        assert_eq!(d(-0.0), "-0");
        assert_eq!(d(0.0), "0");
        assert_eq!(d(1.0e7), "1.0E7");
        assert_eq!(d(1.2345678e7), "1.2345678E7");
        assert_eq!(d(1.0e-4), "1.0E-4");
        assert_eq!(d(60.2), "60.2");
        assert_eq!(d(20.1), "20.1");
        assert_eq!(d(2.9), "2.9");
        assert_eq!(d(0.001), "0.001");
        assert_eq!(d(0.00123), "0.00123");
        assert_eq!(d(9999999.0), "9999999");
        assert_eq!(d(1234567.5), "1234567.5");
        assert_eq!(d(100.0), "100");
        assert_eq!(d(-1.5e-7), "-1.5E-7");
        assert_eq!(d(1.0e10), "1.0E10");
        assert_eq!(d(1.0e21), "1.0E21");
        assert_eq!(d(123456789.0), "1.23456789E8");
        assert_eq!(d(f64::MAX), "1.7976931348623157E308");
        assert_eq!(d(f64::MIN_POSITIVE), "2.2250738585072014E-308");
        assert_eq!(d(5e-324), "4.9E-324");
        assert_eq!(d(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(d(3.0277), "3.0277");
        let mut out = Vec::new();
        assert!(!write_java_double(&mut out, f64::NAN));
        assert!(!write_java_double(&mut out, f64::INFINITY));
        assert!(out.is_empty());
    }

    #[test]
    fn strings_escape_like_org_json() {
        assert_eq!(q("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(q("</script>/x"), r#""<\/script>/x""#);
        assert_eq!(q("\u{8}\t\n\u{c}\r\u{1}"), r#""\b\t\n\f\r\u0001""#);
        assert_eq!(
            q("\u{85}\u{a0}\u{2028}\u{20ff}\u{2100}é你"),
            "\"\\u0085\u{a0}\\u2028\\u20ff\u{2100}é你\""
        );
        assert_eq!(q("😀"), "\"😀\"");
        // Strings without escapes are copied whole; one special byte anywhere switches.
        assert_eq!(q(""), r#""""#);
        assert_eq!(q("host_12/a<b"), r#""host_12/a<b""#);
        assert_eq!(
            q("a long plain tag value, 40 bytes or more"),
            r#""a long plain tag value, 40 bytes or more""#
        );
        assert_eq!(
            q("a long plain tag value, 40 bytes or more\n"),
            r#""a long plain tag value, 40 bytes or more\n""#
        );
        assert_eq!(q("x</"), r#""x<\/""#);
    }

    #[test]
    fn writes_the_documented_response() {
        // The MetricsResourceTest expectation (conformance README, query-metric-absolute-dates).
        let q = QueryResult {
            coverage: None,
            sample_size: 10,
            results: vec![ResultGroup {
                name: "abc.123".into(),
                alias: None,
                group_by: vec![GroupByResult::Type(GroupType::Number)],
                tags: Some(tags_of(&[
                    &[("server", "server2")],
                    &[("server", "server1")],
                ])),
                ts: vec![1, 2, 3],
                values: OutColumn::Double(vec![60.2, 30.200000000000003, 20.1]),
            }],
        };
        let mut out = Vec::new();
        write_query_response(&mut out, &[q]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"queries":[{"sample_size":10,"results":[{"name":"abc.123","group_by":[{"name":"type","type":"number"}],"tags":{"server":["server1","server2"]},"values":[[1,60.2],[2,30.200000000000003],[3,20.1]]}]}]}"#
        );
    }

    #[test]
    fn group_by_shapes_alias_and_mixed_values() {
        let q = QueryResult {
            coverage: None,
            sample_size: 3,
            results: vec![ResultGroup {
                name: "m".into(),
                alias: Some("x".into()),
                group_by: vec![
                    GroupByResult::Time {
                        range_value: 2,
                        range_unit: "MILLISECONDS".into(),
                        group_count: 2,
                        group_number: 0,
                    },
                    GroupByResult::Value {
                        range_size: 5,
                        group_number: 1,
                    },
                    GroupByResult::Bin {
                        bins: vec![2.0, 5.5, 7.0],
                        bin_number: 3,
                    },
                    GroupByResult::Tag {
                        tags: vec!["host".into(), "dc".into()],
                        group: vec![("host".into(), "server1".into()), ("dc".into(), "".into())],
                    },
                    GroupByResult::Type(GroupType::Number),
                ],
                tags: None,
                ts: vec![1, 2, 3],
                values: OutColumn::Number(vec![Num::Long(1), Num::Double(2.5), Num::Null]),
            }],
        };
        let mut out = Vec::new();
        write_query_response(&mut out, &[q]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"queries":[{"sample_size":3,"results":[{"name":"m","alias":"x","group_by":["#,
                r#"{"name":"time","range_size":{"value":2,"unit":"MILLISECONDS"},"group_count":2,"group":{"group_number":0}},"#,
                r#"{"name":"value","range_size":5,"group":{"group_number":1}},"#,
                r#"{"name":"bin","bins":[2,5.5,7],"group":{"bin_number":3}},"#,
                r#"{"name":"tag","tags":["host","dc"],"group":{"host":"server1","dc":""}},"#,
                r#"{"name":"type","type":"number"}],"values":[[1,1],[2,2.5],[3,null]]}]}]}"#
            )
        );
    }

    #[test]
    fn text_values_empty_queries_and_nan() {
        let mut out = Vec::new();
        write_query_response(&mut out, &[]).unwrap();
        assert_eq!(out, br#"{"queries":[]}"#);

        let mut g = ResultGroup {
            name: "m".into(),
            alias: None,
            group_by: vec![],
            tags: Some(GroupTags::default()),
            ts: vec![5],
            values: OutColumn::Text(vec!["a\"b".into()]),
        };
        let mut out = Vec::new();
        write_query_response(
            &mut out,
            &[QueryResult {
                coverage: None,
                sample_size: 1,
                results: vec![g.clone()],
            }],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"queries":[{"sample_size":1,"results":[{"name":"m","tags":{},"values":[[5,"a\"b"]]}]}]}"#
        );
        g.values = OutColumn::Double(vec![f64::NAN]);
        let mut out = Vec::new();
        let err = write_query_response(
            &mut out,
            &[QueryResult {
                coverage: None,
                sample_size: 1,
                results: vec![g],
            }],
        )
        .unwrap_err();
        assert!(err.starts_with("NaN or Infinity:NaN"), "{err}");
    }

    /// Results rendered one by one and joined are byte for byte the whole response.
    #[test]
    fn joined_results_are_the_whole_response() {
        let q = |n: i64| QueryResult {
            coverage: None,
            sample_size: n as u64,
            results: vec![ResultGroup {
                name: format!("m{n}"),
                alias: None,
                group_by: vec![],
                tags: Some(GroupTags::default()),
                ts: (0..n).collect(),
                values: OutColumn::Long((0..n).map(|v| v * 3).collect()),
            }],
        };
        for queries in [vec![], vec![q(1)], vec![q(2), q(0), q(3)]] {
            let mut whole = Vec::new();
            write_query_response(&mut whole, &queries).unwrap();
            let parts: Vec<Vec<u8>> = queries
                .iter()
                .map(|r| {
                    let mut part = Vec::new();
                    write_query_result(&mut part, r).unwrap();
                    part
                })
                .collect();
            let mut joined = Vec::new();
            join_query_results(&mut joined, parts.iter().map(Vec::as_slice), None);
            assert_eq!(
                String::from_utf8(joined).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }

    #[test]
    fn tags_response_shape() {
        let tags = BTreeMap::from([(
            "dc".to_string(),
            BTreeSet::from(["awsuse".to_string(), "awsusw".to_string()]),
        )]);
        let empty = BTreeMap::new();
        let mut out = Vec::new();
        write_tags_response(&mut out, &[("abc_123", &tags), ("x", &empty)]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"queries":[{"results":[{"name":"abc_123","tags":{"dc":["awsuse","awsusw"]},"values":[]}]},{"results":[{"name":"x","tags":{},"values":[]}]}]}"#
        );
    }

    /// `query-response-two-groups-*.json` (KairosDB's formatter tests), compared as JSON
    /// values since the Java test compares order-insensitively.
    #[test]
    fn formatter_fixtures() {
        for (file, with_tags) in [
            ("query-response-two-groups-valid.json", true),
            ("query-response-two-groups-no-tags.json", false),
        ] {
            let group = |name: &str, g: i64, tags: [(&str, &str); 2], vals: [f64; 3]| ResultGroup {
                name: name.into(),
                alias: None,
                group_by: vec![GroupByResult::Value {
                    range_size: 10,
                    group_number: g,
                }],
                tags: with_tags.then(|| tags_of(&[&tags])),
                ts: vec![12345, 56789, 98765],
                values: OutColumn::Number(vals.iter().map(|&v| Num::Double(v)).collect()),
            };
            let q = QueryResult {
                coverage: None,
                sample_size: 10,
                results: vec![
                    group(
                        "metric1",
                        0,
                        [("tag1", "value1"), ("tag2", "value2")],
                        [1.0, 2.0, 2.9],
                    ),
                    group(
                        "metric2",
                        1,
                        [("tag3", "value3"), ("tag4", "value4")],
                        [5.0, 6.0, 7.9],
                    ),
                ],
            };
            let mut out = Vec::new();
            write_query_response(&mut out, &[q]).unwrap();
            let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let want: serde_json::Value =
                serde_json::from_slice(&crate::fixtures::read(file)).unwrap();
            assert_eq!(ours, want, "{file}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_strings_are_written_as_the_escaping_loop_does(s in "[a-z_/<\"\\\\\n\u{80}-\u{a0}\u{2000}-\u{2100}é]{0,12}") {
            let mut slow = Vec::new();
            write_escaped(&mut slow, s.as_bytes());
            proptest::prop_assert_eq!(q(&s).into_bytes(), slow);
        }

        #[test]
        fn whole_numbers_skip_ryu_and_print_as_it_would(i in -10_000_001i64..10_000_001, scale in 0u32..8) {
            let v = (i / 10i64.pow(scale)) as f64 * 10f64.powi(scale as i32);
            proptest::prop_assume!(v != 0.0);
            let mut slow = Vec::new();
            write_shortest(&mut slow, v);
            proptest::prop_assert_eq!(d(v), String::from_utf8(slow).unwrap());
        }

        #[test]
        fn java_doubles_round_trip_and_pick_the_right_notation(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let text = d(v);
            let back: f64 = text.replace('E', "e").parse().unwrap();
            proptest::prop_assert_eq!(back.to_bits(), v.to_bits(), "{}", text);
            let plain = v == 0.0 || (1e-3..1e7).contains(&v.abs());
            proptest::prop_assert_eq!(!text.contains('E'), plain, "{}", text);
            if text.contains('E') {
                // d.ddddE±n with at least one fraction digit.
                let mant = text.trim_start_matches('-').split('E').next().unwrap();
                proptest::prop_assert!(mant.len() >= 3 && mant.as_bytes()[1] == b'.', "{}", text);
            } else {
                proptest::prop_assert!(!text.ends_with(".0") && !text.ends_with('.'), "{}", text);
            }
        }
    }
}

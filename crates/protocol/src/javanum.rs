//! Java number parsing and conversion rules that KairosDB's behaviour depends on:
//! `Long.parseLong`, `Integer.parseInt`, `Double.parseDouble`, Gson's `nextLong`/`nextInt`
//! coercions, `LazilyParsedNumber.longValue` (BigDecimal truncation and 64-bit wrap) and
//! KairosDB's own `Util.parseLong` / `Util.isNumber`.
//!
//! Error texts are Java's `NumberFormatException` messages, because KairosDB puts them
//! in responses or logs. Not for: JSON syntax (serde_json / [`crate::lenient`]).

/// Java `Long.parseLong(s)`: optional `+`/`-`, ASCII digits, no overflow.
pub(crate) fn parse_long(s: &str) -> Result<i64, String> {
    let err = || format!("For input string: \"{s}\"");
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(err());
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut acc: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(err());
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(c - b'0')))
            .ok_or_else(err)?;
    }
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or_else(err)
    }
}

/// Java `Integer.parseInt(s)`.
pub(crate) fn parse_int(s: &str) -> Result<i32, String> {
    let v = parse_long(s)?;
    i32::try_from(v).map_err(|_| format!("For input string: \"{s}\""))
}

/// KairosDB `Util.parseLong` (telnet timestamps and long values): optional leading `-`
/// only, ASCII digits, overflow checked. Messages as in the Java source (two spaces).
pub(crate) fn kairos_parse_long(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return Err("Malformed:  ".to_owned());
    };
    let (neg, digits) = if first == b'-' {
        if b.len() == 1 {
            return Err(format!("Missing digits:  {s}"));
        }
        (true, &b[1..])
    } else {
        (false, b)
    };
    let mut acc: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(format!("Malformed:  {s}"));
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(c - b'0')))
            .ok_or_else(|| format!("Over/underflow:  {s}"))?;
    }
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg()
            .ok_or_else(|| format!("Over/underflow:  {s}"))
    }
}

/// A word of 1 to 18 ASCII digits after an optional `-`: the long
/// [`kairos_parse_long`] reads from it (no such word can overflow), read without
/// going through `str` (telnet values, ingest timestamps). `None` for every other word.
#[inline]
pub(crate) fn short_long(word: &[u8]) -> Option<i64> {
    let (neg, digits) = match word.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, word),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(if neg { -v } else { v })
}

/// Java `Double.parseDouble(s)`: trims chars ≤ U+0020, optional sign, `NaN`,
/// `Infinity`, decimal with optional exponent and optional `f`/`F`/`d`/`D` suffix.
/// Hexadecimal floating literals (`0x1p3`) are not supported (deliberate: no client
/// sends them; they fail with Java's generic message).
pub(crate) fn parse_double(s: &str) -> Result<f64, String> {
    let t = s.trim_matches(|c: char| c <= ' ');
    if t.is_empty() {
        return Err("empty String".to_owned());
    }
    let err = || format!("For input string: \"{s}\"");
    let b = t.as_bytes();
    let (neg, body) = match b[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    match body {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => {
            return Ok(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        _ => {}
    }
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    let bb = body.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    let mut points = 0;
    while i < bb.len() {
        match bb[i] {
            b'0'..=b'9' => digits += 1,
            b'.' => {
                points += 1;
                if points > 1 {
                    return Err("multiple points".to_owned());
                }
            }
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return Err(err());
    }
    if i < bb.len() {
        if !matches!(bb[i], b'e' | b'E') {
            return Err(err());
        }
        i += 1;
        if matches!(bb.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while i < bb.len() && bb[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i != bb.len() {
            return Err(err());
        }
    }
    let v: f64 = body.parse().map_err(|_| err())?;
    Ok(if neg { -v } else { v })
}

/// Gson `JsonReader.nextLong` on a string or unquoted token: `Long.parseLong`, else a
/// double that must be exactly integral. `None` = Java's "Expected a long" error.
pub(crate) fn gson_long_from_text(s: &str) -> Option<i64> {
    if let Ok(v) = parse_long(s) {
        return Some(v);
    }
    let d = parse_double(s).ok()?;
    java_double_to_long_exact(d)
}

/// Gson `nextLong` on a JSON number token: exact integer text, else via double.
pub(crate) fn gson_long_from_number(raw: &str) -> Option<i64> {
    if let Ok(v) = raw.parse::<i64>() {
        return Some(v);
    }
    let d: f64 = raw.parse().ok()?;
    java_double_to_long_exact(d)
}

/// `(long) d == d` check used by Gson (Java's cast saturates; NaN → 0).
fn java_double_to_long_exact(d: f64) -> Option<i64> {
    let r = d as i64; // Rust's cast saturates and maps NaN to 0, like Java's.
    if r as f64 == d {
        Some(r)
    } else {
        None
    }
}

/// Gson `nextInt` on a number token or string.
pub(crate) fn gson_int(raw: &str, is_string: bool) -> Option<i32> {
    let v = if is_string {
        if let Ok(v) = parse_int(raw) {
            return Some(v);
        }
        let d = parse_double(raw).ok()?;
        let r = d as i32;
        return (f64::from(r) == d).then_some(r);
    } else {
        gson_long_from_number(raw)?
    };
    i32::try_from(v).ok()
}

/// `LazilyParsedNumber.longValue()` of a JSON number text: `Long.parseLong`, else
/// `new BigDecimal(text).longValue()`, i.e. the integer part truncated toward zero,
/// wrapped to its low 64 bits (`1.9` → 1, `1e3` → 1000, `1e400` → 0,
/// `18446744073709551617` → 1). Exact for any length, computed mod 2^64.
pub(crate) fn number_long_value(raw: &str) -> i64 {
    if let Ok(v) = raw.parse::<i64>() {
        return v;
    }
    let n = IntegerPart::of(raw);
    let mut acc: u64 = 0;
    for &d in n.digits() {
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
    }
    // Trailing zeros implied by the exponent; 10^64 ≡ 0 (mod 2^64), so stop early.
    for _ in 0..n.zeros.min(64) {
        acc = acc.wrapping_mul(10);
    }
    let v = acc as i64;
    if n.neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// The integer part of a JSON number text, truncated toward zero like
/// [`number_long_value`], or `None` when it does not fit a 64-bit long (where
/// `number_long_value` would wrap): `1e3` → 1000, `-0` → 0, `1.9` → 1,
/// `-9223372036854775808` → `i64::MIN`, `9223372036854775808`, `1e19`, `1e400` → `None`.
pub(crate) fn number_long_value_exact(raw: &str) -> Option<i64> {
    if let Ok(v) = raw.parse::<i64>() {
        return Some(v);
    }
    let n = IntegerPart::of(raw);
    // Magnitude bound: 2^63 for a negative number (i64::MIN), 2^63 - 1 otherwise.
    let limit = if n.neg { 1u64 << 63 } else { i64::MAX as u64 };
    let mut acc: u64 = 0;
    for &d in n.digits() {
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        if acc > limit {
            return None;
        }
    }
    // A non-zero value overflows after at most 19 more zeros, so this loop is short
    // even for an exponent like `1e999999`.
    let mut zeros = n.zeros;
    while acc != 0 && zeros > 0 {
        acc = acc.checked_mul(10).filter(|&a| a <= limit)?;
        zeros -= 1;
    }
    Some(if n.neg {
        (acc as i64).wrapping_neg() // 2^63 → i64::MIN
    } else {
        acc as i64
    })
}

/// Whether a JSON number text denotes a whole number: `1e3`, `0e-5` and `1.50e1` do;
/// `1e-5`, `15e-1` and `0.5` do not.
pub(crate) fn number_is_whole(raw: &str) -> bool {
    let n = IntegerPart::of(raw);
    n.mantissa[n.take..].iter().all(|&d| d == b'0')
}

/// The integer part of a JSON number text, as decimal digits: `digits()` then `zeros`
/// more zeros implied by the exponent.
struct IntegerPart {
    neg: bool,
    /// Every mantissa digit, without sign and point.
    mantissa: Vec<u8>,
    /// How many of `mantissa` belong to the integer part.
    take: usize,
    zeros: u64,
}

impl IntegerPart {
    fn of(raw: &str) -> IntegerPart {
        let b = raw.as_bytes();
        let (neg, b) = match b.first() {
            Some(b'-') => (true, &b[1..]),
            Some(b'+') => (false, &b[1..]),
            _ => (false, b),
        };
        let epos = b.iter().position(|&c| c == b'e' || c == b'E');
        let (mant, exp): (&[u8], i64) = match epos {
            Some(p) => {
                let e = std::str::from_utf8(&b[p + 1..])
                    .ok()
                    .and_then(|t| t.trim_start_matches('+').parse::<i64>().ok())
                    // Exponents beyond i64 are nonsense; treat as huge.
                    .unwrap_or(if b.get(p + 1) == Some(&b'-') {
                        i64::MIN / 2
                    } else {
                        i64::MAX / 2
                    });
                (&b[..p], e)
            }
            None => (b, 0),
        };
        let point = mant.iter().position(|&c| c == b'.').unwrap_or(mant.len());
        let mantissa: Vec<u8> = mant
            .iter()
            .copied()
            .filter(|c| c.is_ascii_digit())
            .collect();
        // Number of digits that belong to the integer part after applying the exponent.
        let int_digits = (point as i64).saturating_add(exp).max(0) as u64;
        let take = int_digits.min(mantissa.len() as u64) as usize;
        IntegerPart {
            neg,
            mantissa,
            take,
            zeros: int_digits - take as u64,
        }
    }

    fn digits(&self) -> &[u8] {
        &self.mantissa[..self.take]
    }
}

/// KairosDB `Util.isNumber` (spec §2.3): optional leading `+`, `-` or `.` (not alone),
/// then digits and dots; a second dot fails only if another character follows it;
/// must not end with `.`. ASCII digits only (Java's `Character.isDigit` also accepts
/// other scripts' digits, which would then fail to parse).
pub(crate) fn kairos_is_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut start = 0;
    if matches!(b[0], b'+' | b'-' | b'.') {
        start = 1;
        if b.len() == 1 {
            return false;
        }
    }
    let mut points = 0;
    for &c in &b[start..] {
        if points > 1 {
            return false;
        }
        if c == b'.' {
            points += 1;
        } else if !c.is_ascii_digit() {
            return false;
        }
    }
    b[b.len() - 1] != b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_parsers() {
        assert_eq!(parse_long("+5"), Ok(5));
        assert_eq!(parse_long("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_long("9223372036854775808").is_err());
        assert_eq!(parse_long("1.5"), Err("For input string: \"1.5\"".into()));
        assert_eq!(kairos_parse_long("123"), Ok(123));
        assert_eq!(kairos_parse_long("-5"), Ok(-5));
        assert_eq!(kairos_parse_long("+5"), Err("Malformed:  +5".into()));
        assert_eq!(kairos_parse_long("-"), Err("Missing digits:  -".into()));
        assert_eq!(kairos_parse_long("1e5"), Err("Malformed:  1e5".into()));
        assert_eq!(
            kairos_parse_long("99999999999999999999"),
            Err("Over/underflow:  99999999999999999999".into())
        );
        assert!(parse_int("2147483648").is_err());
    }

    #[test]
    fn double_parser_follows_java() {
        assert_eq!(parse_double("1.5e3"), Ok(1500.0));
        assert_eq!(parse_double(" 2.5d "), Ok(2.5));
        assert_eq!(parse_double("-.5"), Ok(-0.5));
        assert_eq!(parse_double("1."), Ok(1.0));
        assert!(parse_double("NaN").unwrap().is_nan());
        assert_eq!(parse_double("-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_double("0.7.1"), Err("multiple points".into()));
        assert_eq!(parse_double(""), Err("empty String".into()));
        assert_eq!(parse_double("abc"), Err("For input string: \"abc\"".into()));
        assert!(parse_double("inf").is_err());
        assert!(parse_double("1e").is_err());
    }

    #[test]
    fn big_decimal_long_value() {
        assert_eq!(number_long_value("1.9"), 1);
        assert_eq!(number_long_value("-1.9"), -1);
        assert_eq!(number_long_value("1e3"), 1000);
        assert_eq!(number_long_value("1.5e3"), 1500);
        assert_eq!(number_long_value("1e400"), 0);
        assert_eq!(number_long_value("1e-5"), 0);
        assert_eq!(number_long_value("18446744073709551617"), 1);
        assert_eq!(
            number_long_value("12345678901234567890"),
            12345678901234567890u64 as i64
        );
        assert_eq!(number_long_value("-0.5"), 0);
    }

    #[test]
    fn exact_long_value_is_none_where_big_decimal_would_wrap() {
        for (text, v) in [
            ("0", 0),
            ("-0", 0),
            ("1e3", 1000),
            ("1E+3", 1000),
            ("1.9", 1),
            ("-1.9", -1),
            ("1e-5", 0),
            ("0e999999", 0),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
            ("9.223372036854775807e18", i64::MAX),
            ("-9223372036854775808.9", i64::MIN),
        ] {
            assert_eq!(number_long_value_exact(text), Some(v), "{text}");
            assert_eq!(number_long_value(text), v, "{text}");
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "12345678901234567890",
            "18446744073709551617",
            "1e19",
            "-1e19",
            "1e400",
            "-1e400",
            "1e999999",
            "1e99999999999999999999999",
        ] {
            assert_eq!(number_long_value_exact(text), None, "{text}");
        }
    }

    #[test]
    fn gson_coercions() {
        assert_eq!(gson_long_from_number("1.0"), Some(1));
        assert_eq!(gson_long_from_number("1.5"), None);
        assert_eq!(gson_long_from_number("1e3"), Some(1000));
        assert_eq!(gson_long_from_text("1234"), Some(1234));
        assert_eq!(gson_long_from_text("12.0"), Some(12));
        assert_eq!(gson_long_from_text("abc"), None);
        assert_eq!(gson_long_from_text("NaN"), None);
        assert_eq!(gson_int("5", true), Some(5));
        assert_eq!(gson_int("3000000000", false), None);
    }

    #[test]
    fn is_number_follows_util() {
        for s in [
            "123", "123.3", "0.000000", "+5", "-5", ".5", "-.5", "1.2", ".5.5",
        ] {
            assert!(kairos_is_number(s), "{s}");
        }
        for s in [
            "", "+", ".", "3.", "6.0.5", "1e5", "abc", "1..5", " 1", "1.2.",
        ] {
            assert!(!kairos_is_number(s), "{s}");
        }
    }
}

//! Calendar arithmetic checks: zone resolution, the alignment table and bucket ranges of
//! spec §5.1 (Joda-Time semantics: local days and weeks across DST changes, month and
//! year differences with day-of-month clamping, truncation toward zero before the origin)
//! and `Util.getSamplingDuration` for `rate`/`sampler`.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::*;

const HOUR: i64 = 3_600_000;

fn at_in(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(TimeZone::get(tz).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    at_in("UTC", y, mo, d, h, mi)
}

fn zone(id: &str) -> Zone {
    Zone::resolve(Some(id)).unwrap()
}

/// Wall-clock time of `t` in `tz`.
fn local(tz: &str, t: i64) -> DateTime {
    Timestamp::from_millisecond(t)
        .unwrap()
        .to_zoned(TimeZone::get(tz).unwrap())
        .datetime()
}

#[test]
fn resolve_utc_spellings() {
    for id in [None, Some(""), Some("UTC")] {
        let z = Zone::resolve(id).unwrap();
        assert!(z.0.is_none(), "{id:?}");
    }
}

#[test]
fn resolve_fixed_offsets() {
    assert_eq!(zone("+05:30").offset_ms(0), 5 * HOUR + 30 * 60_000);
    assert_eq!(zone("-03").offset_ms(at(2024, 7, 1, 0, 0)), -3 * HOUR);
    assert_eq!(zone("+00:00").offset_ms(0), 0);
}

#[test]
fn resolve_iana_ids() {
    let paris = zone("Europe/Paris");
    assert_eq!(paris.offset_ms(at(2014, 7, 1, 0, 0)), 2 * HOUR);
    assert_eq!(paris.offset_ms(at(2014, 1, 1, 0, 0)), HOUR);
    assert!(Zone::resolve(Some("Not/AZone")).is_err());
}

#[test]
fn alignment_table() {
    // Friday 2015-01-02T01:11:12.345Z.
    let t = at(2015, 1, 2, 1, 11) + 12_345;
    let origin = |unit| Buckets::new(unit, 1, t, true, Zone::UTC).origin();
    assert_eq!(origin(Unit::Years), at(2015, 1, 1, 0, 0));
    assert_eq!(origin(Unit::Months), at(2015, 1, 1, 0, 0));
    assert_eq!(origin(Unit::Weeks), at(2014, 12, 29, 0, 0));
    for unit in [Unit::Days, Unit::Hours, Unit::Minutes, Unit::Seconds] {
        assert_eq!(origin(unit), at(2015, 1, 2, 0, 0), "{unit:?}");
    }
    assert_eq!(origin(Unit::Milliseconds), at(2015, 1, 2, 1, 11) + 12_000);
    // Without alignment the origin is the start.
    assert_eq!(
        Buckets::new(Unit::Years, 1, t, false, Zone::UTC).origin(),
        t
    );
}

#[test]
fn alignment_in_a_zone_is_local() {
    // Start 0 in Paris aligns to 1970-01-01T00:00+01:00.
    let b = Buckets::new(Unit::Months, 1, 0, true, zone("Europe/Paris"));
    assert_eq!(b.origin(), -HOUR);
    // A Sunday evening in New York is already Monday in UTC: the week starts the
    // previous Monday, local midnight.
    let t = at_in("America/New_York", 2024, 3, 10, 22, 0);
    let b = Buckets::new(Unit::Weeks, 1, t, true, zone("America/New_York"));
    assert_eq!(b.origin(), at_in("America/New_York", 2024, 3, 4, 0, 0));
}

/// Asserts the bucket `(start, end)` each point falls into: `(point, bucket)` cases.
fn assert_buckets(b: &Buckets, cases: &[(i64, (i64, i64))]) {
    for &(t, bucket) in cases {
        let at = Timestamp::from_millisecond(t).unwrap();
        assert_eq!(b.range_of(t), bucket, "bucket of {at}");
    }
}

/// Walks consecutive buckets from the bucket of `from` while they start before `until`.
fn walk(b: &Buckets, from: i64, until: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < until {
        let (start, end) = b.range_of(t);
        out.push((start, end));
        t = end;
    }
    out
}

#[test]
fn new_york_days_across_dst() {
    let tz = "America/New_York";
    let ny = zone(tz);
    for (from, until, hours) in [
        (
            at_in(tz, 2024, 3, 8, 0, 0),
            at_in(tz, 2024, 3, 12, 0, 0),
            [24, 24, 23, 24],
        ),
        (
            at_in(tz, 2024, 11, 1, 0, 0),
            at_in(tz, 2024, 11, 5, 0, 0),
            [24, 24, 25, 24],
        ),
    ] {
        let b = Buckets::new(
            Unit::Days,
            1,
            at_in(tz, 2024, 1, 15, 13, 0),
            true,
            ny.clone(),
        );
        let buckets = walk(&b, from, until);
        let lengths: Vec<i64> = buckets.iter().map(|(s, e)| (e - s) / HOUR).collect();
        assert_eq!(lengths, hours);
        for (start, end) in &buckets {
            for t in [*start, *end] {
                let l = local(tz, t);
                assert_eq!((l.hour(), l.minute(), l.second()), (0, 0, 0), "{l}");
            }
        }
        // A point in the middle of the short/long day falls into that day.
        let noon = buckets[2].0 + 12 * HOUR;
        assert_eq!(b.range_of(noon), buckets[2]);
    }
}

#[test]
fn new_york_week_with_dst_change_is_167_hours() {
    let tz = "America/New_York";
    let b = Buckets::new(Unit::Weeks, 1, 0, true, zone(tz));
    let (start, end) = b.range_of(at_in(tz, 2024, 3, 10, 12, 0));
    assert_eq!(start, at_in(tz, 2024, 3, 4, 0, 0));
    assert_eq!(end, at_in(tz, 2024, 3, 11, 0, 0));
    assert_eq!(end - start, 167 * HOUR);
}

#[test]
fn paris_months_across_dst() {
    let tz = "Europe/Paris";
    let b = Buckets::new(Unit::Months, 1, 0, true, zone(tz));
    let (start, end) = b.range_of(at_in(tz, 2014, 3, 15, 12, 0));
    assert_eq!(
        (start, end),
        (at_in(tz, 2014, 3, 1, 0, 0), at_in(tz, 2014, 4, 1, 0, 0))
    );
    assert_eq!(end - start, 743 * HOUR);
    let (start, end) = b.range_of(at_in(tz, 2014, 10, 31, 23, 59));
    assert_eq!(
        (start, end),
        (at_in(tz, 2014, 10, 1, 0, 0), at_in(tz, 2014, 11, 1, 0, 0))
    );
    assert_eq!(end - start, 745 * HOUR);
}

#[test]
fn fixed_offset_days() {
    let b = Buckets::new(Unit::Days, 1, at(2024, 1, 10, 12, 0), true, zone("+05:30"));
    assert_eq!(b.origin(), at(2024, 1, 9, 18, 30));
    assert_eq!(
        b.range_of(at(2024, 1, 11, 0, 0)),
        (at(2024, 1, 10, 18, 30), at(2024, 1, 11, 18, 30))
    );
}

#[test]
fn sub_day_units_are_utc_arithmetic_in_any_zone() {
    // Hours in Kathmandu (+05:45) stay whole UTC hours from the (local midnight) origin.
    let b = Buckets::new(
        Unit::Hours,
        1,
        at(2024, 1, 10, 12, 0),
        true,
        zone("Asia/Kathmandu"),
    );
    assert_eq!(b.origin(), at(2024, 1, 9, 18, 15));
    assert_eq!(
        b.range_of(at(2024, 1, 10, 12, 20)),
        (at(2024, 1, 10, 12, 15), at(2024, 1, 10, 13, 15))
    );
}

#[test]
fn months_from_the_31st_clamp_like_joda() {
    let b = Buckets::new(Unit::Months, 1, at(2014, 1, 31, 0, 0), false, Zone::UTC);
    let jan_31 = (at(2014, 1, 31, 0, 0), at(2014, 2, 28, 0, 0));
    let feb_28 = (at(2014, 2, 28, 0, 0), at(2014, 3, 31, 0, 0));
    assert_buckets(
        &b,
        &[
            (at(2014, 2, 27, 23, 59), jan_31),
            (at(2014, 2, 28, 0, 0), feb_28),
            (at(2014, 3, 30, 12, 0), feb_28),
        ],
    );
}

#[test]
fn years_from_february_29th() {
    let b = Buckets::new(Unit::Years, 1, at(2012, 2, 29, 0, 0), false, Zone::UTC);
    let from_2012 = (at(2012, 2, 29, 0, 0), at(2013, 2, 28, 0, 0));
    let from_2013 = (at(2013, 2, 28, 0, 0), at(2014, 2, 28, 0, 0));
    assert_buckets(
        &b,
        &[
            (at(2013, 2, 27, 12, 0), from_2012),
            (at(2013, 2, 28, 12, 0), from_2013),
        ],
    );
}

#[test]
fn multi_unit_buckets() {
    let b = Buckets::new(Unit::Months, 3, at(2014, 1, 1, 1, 1), false, Zone::UTC);
    assert_eq!(
        b.range_of(at(2014, 5, 20, 0, 0)),
        (at(2014, 4, 1, 1, 1), at(2014, 7, 1, 1, 1))
    );
    let b = Buckets::new(Unit::Minutes, 15, at(2014, 1, 1, 10, 7), true, Zone::UTC);
    assert_eq!(
        b.range_of(at(2014, 1, 1, 10, 7)),
        (at(2014, 1, 1, 10, 0), at(2014, 1, 1, 10, 15))
    );
}

#[test]
fn times_before_the_origin_truncate_toward_zero() {
    // Joda: numberOfPastPeriods = difference / value, truncated toward zero.
    let b = Buckets::new(Unit::Milliseconds, 100, 1000, false, Zone::UTC);
    assert_buckets(&b, &[(950, (1000, 1100)), (850, (900, 1000))]);
    let b = Buckets::new(Unit::Months, 1, at(2014, 3, 10, 0, 0), false, Zone::UTC);
    let from_march_10 = (at(2014, 3, 10, 0, 0), at(2014, 4, 10, 0, 0));
    let from_february_10 = (at(2014, 2, 10, 0, 0), at(2014, 3, 10, 0, 0));
    assert_buckets(
        &b,
        &[
            (at(2014, 3, 1, 0, 0), from_march_10),
            (at(2014, 2, 5, 0, 0), from_february_10),
        ],
    );
}

#[test]
fn sampling_durations() {
    let day = 24 * HOUR;
    let ny = "America/New_York";
    let ny_spring_forward = at_in(ny, 2024, 3, 10, 0, 0);
    let paris = "Europe/Paris";
    let paris_october = at_in(paris, 2014, 10, 1, 0, 0);
    // (zone, unit, value, t, duration of `value` units from t)
    let cases = [
        ("UTC", Unit::Milliseconds, 5, 123, 5),
        ("UTC", Unit::Seconds, 3, 0, 3_000),
        ("UTC", Unit::Minutes, 2, 0, 120_000),
        ("UTC", Unit::Hours, 2, 0, 2 * HOUR),
        ("UTC", Unit::Days, 1, 0, day),
        ("UTC", Unit::Weeks, 1, 0, 7 * day),
        ("UTC", Unit::Months, 1, at(2024, 2, 1, 0, 0), 29 * day),
        ("UTC", Unit::Months, 1, at(2023, 2, 1, 0, 0), 28 * day),
        // Jan 31 + 1 month = Feb 29 (clamped).
        ("UTC", Unit::Months, 1, at(2024, 1, 31, 0, 0), 29 * day),
        ("UTC", Unit::Years, 1, at(2024, 1, 1, 0, 0), 366 * day),
        (ny, Unit::Days, 1, ny_spring_forward, 23 * HOUR),
        (ny, Unit::Hours, 24, ny_spring_forward, 24 * HOUR),
        (paris, Unit::Months, 1, paris_october, 745 * HOUR),
    ];
    for (tz, unit, value, t, duration) in cases {
        assert_eq!(
            sampling_duration(&zone(tz), unit, value, t),
            duration,
            "{value} {unit:?} from {t} in {tz}"
        );
    }
}

/// Asserts that no (zone, unit, start, align, t) at the ends of the i64 range makes the
/// bucket computation panic or return start > end, and that no `sampling_duration` panics;
/// lists every failure otherwise.
fn assert_no_extreme_failures(units: &[Unit]) {
    let extremes = [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX];
    let mut failures = Vec::new();
    for (name, z) in [
        ("UTC", Zone::UTC),
        ("America/New_York", zone("America/New_York")),
        ("+05:30", zone("+05:30")),
    ] {
        for &unit in units {
            for start in extremes {
                for align in [false, true] {
                    for t in extremes {
                        let z = z.clone();
                        let r = std::panic::catch_unwind(move || {
                            Buckets::new(unit, 1, start, align, z).range_of(t)
                        });
                        match r {
                            Ok((s, e)) if s <= e => {}
                            Ok((s, e)) => failures.push(format!(
                                "{name} {unit:?} start {start} align {align} t {t}: {s} > {e}"
                            )),
                            Err(_) => failures.push(format!(
                                "{name} {unit:?} start {start} align {align} t {t}: panic"
                            )),
                        }
                    }
                }
            }
            for t in extremes {
                let z = z.clone();
                if std::panic::catch_unwind(move || sampling_duration(&z, unit, 1, t)).is_err() {
                    failures.push(format!("{name} sampling_duration {unit:?} t {t}: panic"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn extreme_timestamps_do_not_panic() {
    // Ingest accepts any signed 64-bit timestamp (spec §2.2), and the query start is the
    // bucket origin, so both ends of the range must be safe for every unit and zone.
    assert_no_extreme_failures(&[
        Unit::Milliseconds,
        Unit::Seconds,
        Unit::Minutes,
        Unit::Hours,
        Unit::Days,
        Unit::Weeks,
    ]);
}

#[test]
fn extreme_timestamps_do_not_panic_for_months_and_years() {
    assert_no_extreme_failures(&[Unit::Months, Unit::Years]);
}

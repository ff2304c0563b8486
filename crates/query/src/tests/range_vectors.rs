//! The range-aggregator framework vectors of spec §5.1 (KairosDB's `RangeAggregatorTest`),
//! run through `sum` over points of value 1, so each bucket's value counts its points.
//! Each test starts from the same origin as the Java test: `setStartTime(x)` is the query
//! start here, and tests that never set it start at 0.

use jiff::{Span, ToSpan};

use super::aggregators::{at, at_in, every, ones, pairs, zoned, Q};

/// `sum` with the given sampling and extra properties.
fn sum(value: i64, unit: &str, extra: &str) -> String {
    format!(r#"{{"name":"sum","sampling":{{"value":{value},"unit":"{unit}"}}{extra}}}"#)
}

const NO_ALIGN: &str = r#","align_sampling":false"#;
const ALIGN_START: &str = r#","align_sampling":true,"align_start_time":true"#;
const ALIGN_END: &str = r#","align_sampling":true,"align_end_time":true"#;

/// `(bucket start, points counted)` of `aggregator` under `q` over points of value 1 at `ts`.
fn buckets(q: Q, aggregator: &str, ts: &[i64]) -> Vec<(i64, f64)> {
    pairs(&q.run(aggregator, ones(ts)).expect("aggregator succeeds"))
}

/// A query from `start` without an end.
fn from(start: i64) -> Q {
    Q::range(start, i64::MAX)
}

/// Bucket values only.
fn counts(out: &[(i64, f64)]) -> Vec<f64> {
    out.iter().map(|p| p.1).collect()
}

/// Bucket starts only.
fn starts(out: &[(i64, f64)]) -> Vec<i64> {
    out.iter().map(|p| p.0).collect()
}

#[test]
fn yearly_without_alignment() {
    let start = zoned("UTC", 2014, 1, 1, 0, 0);
    let ts = every(&start, &zoned("UTC", 2015, 6, 2, 0, 0), 1.month());
    let out = buckets(from(at(2014, 1, 1, 0, 0)), &sum(1, "YEARS", NO_ALIGN), &ts);
    assert_eq!(
        out,
        vec![(at(2014, 1, 1, 0, 0), 12.0), (at(2015, 1, 1, 0, 0), 6.0)]
    );
}

#[test]
fn three_months_without_alignment() {
    let start = zoned("UTC", 2014, 1, 1, 1, 1);
    let ts = every(&start, &zoned("UTC", 2014, 7, 10, 1, 1), 1.day());
    let out = buckets(from(at(2014, 1, 1, 1, 1)), &sum(3, "MONTHS", NO_ALIGN), &ts);
    assert_eq!(
        out,
        vec![
            (at(2014, 1, 1, 1, 1), 90.0),
            (at(2014, 4, 1, 1, 1), 91.0),
            (at(2014, 7, 1, 1, 1), 9.0),
        ]
    );
}

fn every_five_days_2014() -> Vec<i64> {
    let start = zoned("UTC", 2014, 1, 1, 1, 1);
    every(&start, &zoned("UTC", 2014, 7, 10, 1, 1), 5.days())
}

#[test]
fn three_months_aligned_start_time() {
    let q = from(at(2014, 1, 1, 1, 1)).tz("UTC");
    let out = buckets(q, &sum(3, "MONTHS", ALIGN_START), &every_five_days_2014());
    assert_eq!(
        starts(&out),
        vec![
            at(2014, 1, 1, 0, 0),
            at(2014, 4, 1, 0, 0),
            at(2014, 7, 1, 0, 0)
        ]
    );
    // 18 points in Jan–Mar (days 0, 5, …, 85), 19 in Apr–Jun, 1 in July.
    assert_eq!(counts(&out), vec![18.0, 19.0, 1.0]);
}

#[test]
fn three_months_aligned_end_time() {
    let q = from(at(2014, 1, 1, 1, 1)).tz("UTC");
    let out = buckets(q, &sum(3, "MONTHS", ALIGN_END), &every_five_days_2014());
    assert_eq!(
        starts(&out),
        vec![
            at(2014, 4, 1, 0, 0),
            at(2014, 7, 1, 0, 0),
            at(2014, 10, 1, 0, 0)
        ]
    );
}

/// 1-month buckets over daily points from 2014-03-10 to 2014-05-22, the query starting
/// at the first point.
fn monthly_from_march_10(alignment: &str) -> Vec<(i64, f64)> {
    let start = zoned("UTC", 2014, 3, 10, 0, 0);
    let ts = every(&start, &zoned("UTC", 2014, 5, 23, 0, 0), 1.day());
    let q = from(at(2014, 3, 10, 0, 0));
    buckets(q, &sum(1, "MONTHS", alignment), &ts)
}

#[test]
fn one_month_from_mid_month_without_alignment() {
    assert_eq!(
        monthly_from_march_10(NO_ALIGN),
        vec![
            (at(2014, 3, 10, 0, 0), 31.0),
            (at(2014, 4, 10, 0, 0), 30.0),
            (at(2014, 5, 10, 0, 0), 13.0),
        ]
    );
}

#[test]
fn one_month_from_mid_month_aligned_start_time() {
    assert_eq!(
        monthly_from_march_10(ALIGN_START),
        vec![
            (at(2014, 3, 1, 0, 0), 22.0),
            (at(2014, 4, 1, 0, 0), 30.0),
            (at(2014, 5, 1, 0, 0), 22.0),
        ]
    );
}

#[test]
fn one_month_from_mid_month_aligned_end_time() {
    assert_eq!(
        monthly_from_march_10(ALIGN_END),
        vec![
            (at(2014, 4, 1, 0, 0), 22.0),
            (at(2014, 5, 1, 0, 0), 30.0),
            (at(2014, 6, 1, 0, 0), 22.0),
        ]
    );
}

/// 1-week buckets over daily points from Friday 2015-01-02T01:11 to 2015-01-18, the
/// query starting at the first point.
fn weekly_from_2015_01_02(alignment: &str) -> Vec<(i64, f64)> {
    let start = zoned("UTC", 2015, 1, 2, 1, 11);
    let ts = every(&start, &zoned("UTC", 2015, 1, 18, 11, 11), 1.day());
    let q = from(at(2015, 1, 2, 1, 11));
    buckets(q, &sum(1, "WEEKS", alignment), &ts)
}

#[test]
fn one_week_aligned_start_time() {
    assert_eq!(
        weekly_from_2015_01_02(ALIGN_START),
        vec![
            (at(2014, 12, 29, 0, 0), 3.0),
            (at(2015, 1, 5, 0, 0), 7.0),
            (at(2015, 1, 12, 0, 0), 7.0),
        ]
    );
}

#[test]
fn one_week_aligned_end_time() {
    assert_eq!(
        weekly_from_2015_01_02(ALIGN_END),
        vec![
            (at(2015, 1, 5, 0, 0), 3.0),
            (at(2015, 1, 12, 0, 0), 7.0),
            (at(2015, 1, 19, 0, 0), 7.0),
        ]
    );
}

/// Hourly points of one Paris month, counted by a 1-month aligned bucket from 0.
fn paris_month(month: i8) -> Vec<(i64, f64)> {
    let from = zoned("Europe/Paris", 2014, month, 1, 0, 0);
    let until = zoned("Europe/Paris", 2014, month + 1, 1, 0, 0);
    let ts = every(&from, &until, 1.hour());
    let q = Q::new().tz("Europe/Paris");
    buckets(q, &sum(1, "MONTHS", r#","align_sampling":true"#), &ts)
}

#[test]
fn paris_march_has_743_hours() {
    assert_eq!(
        paris_month(3),
        vec![(at_in("Europe/Paris", 2014, 3, 1, 0, 0), 743.0)]
    );
}

#[test]
fn paris_october_has_745_hours() {
    assert_eq!(
        paris_month(10),
        vec![(at_in("Europe/Paris", 2014, 10, 1, 0, 0), 745.0)]
    );
}

#[test]
fn paris_month_from_the_aggregator_time_zone_property() {
    // The aggregator's own `time_zone` wins over the query's.
    let from = zoned("Europe/Paris", 2014, 3, 1, 0, 0);
    let until = zoned("Europe/Paris", 2014, 4, 1, 0, 0);
    let ts = every(&from, &until, 1.hour());
    let q = Q::new().tz("Asia/Tokyo");
    let out = buckets(q, &sum(1, "MONTHS", r#","time_zone":"Europe/Paris""#), &ts);
    assert_eq!(counts(&out), vec![743.0]);
}

#[test]
fn yearly_over_leap_years() {
    let start = zoned("UTC", 2010, 1, 1, 0, 0);
    let ts = every(&start, &zoned("UTC", 2014, 1, 1, 0, 0), 1.day());
    let out = buckets(Q::new(), &sum(1, "YEARS", NO_ALIGN), &ts);
    assert_eq!(counts(&out), vec![365.0, 365.0, 366.0, 365.0]);
    assert_eq!(out[2].0, at(2012, 1, 1, 0, 0));
}

/// Counts of unaligned 1-`unit` buckets over points every `step` from 2014-01-01 UTC,
/// while before `length` later.
fn unaligned_counts_from_2014(unit: &str, length: Span, step: Span) -> Vec<f64> {
    let start = zoned("UTC", 2014, 1, 1, 0, 0);
    let until = start.checked_add(length).unwrap();
    let ts = every(&start, &until, step);
    counts(&buckets(Q::new(), &sum(1, unit, NO_ALIGN), &ts))
}

#[test]
fn one_day_without_alignment() {
    let counts = unaligned_counts_from_2014("DAYS", 2.days().hours(3), 1.hour());
    assert_eq!(counts, vec![24.0, 24.0, 3.0]);
}

#[test]
fn one_hour_without_alignment() {
    let counts = unaligned_counts_from_2014("HOURS", 2.hours().minutes(20), 10.minutes());
    assert_eq!(counts, vec![6.0, 6.0, 2.0]);
}

#[test]
fn one_minute_without_alignment() {
    let counts = unaligned_counts_from_2014("MINUTES", 2.minutes().seconds(20), 10.seconds());
    assert_eq!(counts, vec![6.0, 6.0, 2.0]);
}

#[test]
fn one_second_without_alignment() {
    let length = 2.seconds().milliseconds(200);
    let counts = unaligned_counts_from_2014("SECONDS", length, 100.milliseconds());
    assert_eq!(counts, vec![10.0, 10.0, 2.0]);
}

#[test]
fn one_millisecond_two_points_per_millisecond() {
    let t0 = at(2014, 1, 1, 0, 0);
    let ts = [t0, t0, t0 + 1, t0 + 1, t0 + 2, t0 + 2];
    let out = buckets(from(t0), &sum(1, "MILLISECONDS", NO_ALIGN), &ts);
    assert_eq!(out, vec![(t0, 2.0), (t0 + 1, 2.0), (t0 + 2, 2.0)]);
}

#[test]
fn one_millisecond_over_two_months_does_not_overflow() {
    let start = zoned("UTC", 2014, 1, 1, 0, 0);
    let distinct = every(&start, &zoned("UTC", 2014, 3, 1, 0, 0), 10.seconds());
    let ts: Vec<i64> = distinct.iter().flat_map(|&t| [t, t]).collect();
    let q = from(at(2014, 1, 1, 0, 0));
    let out = buckets(q, &sum(1, "MILLISECONDS", NO_ALIGN), &ts);
    assert_eq!(distinct.len(), 59 * 8640);
    assert_eq!(out.len(), distinct.len());
    assert!(out.iter().zip(&distinct).all(|(p, &t)| *p == (t, 2.0)));
}

#[test]
fn sub_day_units_align_to_midnight() {
    // ⚠ KairosDB aligns seconds/minutes/hours sampling to midnight (spec §14.6): 7-hour
    // buckets from 2014-01-01T10:00 start at 07:00 and 14:00, not at 10:00.
    let ts = [
        at(2014, 1, 1, 10, 0),
        at(2014, 1, 1, 13, 59),
        at(2014, 1, 1, 14, 0),
    ];
    let q = from(at(2014, 1, 1, 10, 0));
    let out = buckets(q, &sum(7, "HOURS", ALIGN_START), &ts);
    assert_eq!(
        out,
        vec![(at(2014, 1, 1, 7, 0), 2.0), (at(2014, 1, 1, 14, 0), 1.0)]
    );
}

#[test]
fn milliseconds_align_to_the_whole_second() {
    // Start 1234 → origin 1000: 300 ms buckets [1000, 1300), [1300, 1600), …
    let ts = [1250, 1299, 1300, 1599];
    let out = buckets(from(1234), &sum(300, "MILLISECONDS", ALIGN_START), &ts);
    assert_eq!(out, vec![(1000, 2.0), (1300, 2.0)]);
}

#[test]
fn descending_stream_folds_into_one_bucket() {
    // ⚠ With `order: desc` every later point is before the bucket end (spec §5.1).
    let out = buckets(Q::new(), &sum(1, "MILLISECONDS", ""), &[5, 4, 3, 2, 1]);
    assert_eq!(out, vec![(5, 5.0)]);
}

#[test]
fn new_york_days_follow_local_midnights_across_dst() {
    let tz = "America/New_York";
    for (first_day, until, expected) in [
        // Spring forward on 2024-03-10: a 23-hour day.
        (
            zoned(tz, 2024, 3, 9, 0, 0),
            zoned(tz, 2024, 3, 12, 0, 0),
            [24.0, 23.0, 24.0],
        ),
        // Fall back on 2024-11-03: a 25-hour day.
        (
            zoned(tz, 2024, 11, 2, 0, 0),
            zoned(tz, 2024, 11, 5, 0, 0),
            [24.0, 25.0, 24.0],
        ),
    ] {
        let ts = every(&first_day, &until, 1.hour());
        let q = from(first_day.timestamp().as_millisecond()).tz(tz);
        let out = buckets(q, &sum(1, "DAYS", ALIGN_START), &ts);
        assert_eq!(counts(&out), expected);
        let day = first_day.date();
        let midnights: Vec<i64> = (0i64..3)
            .map(|i| {
                let d = day.checked_add(i.days()).unwrap();
                at_in(tz, d.year(), d.month(), d.day(), 0, 0)
            })
            .collect();
        assert_eq!(starts(&out), midnights);
    }
}

#[test]
fn fixed_offset_time_zone() {
    // "+05:30": days start at 18:30 UTC.
    let ts = [
        at(2024, 1, 10, 18, 29),
        at(2024, 1, 10, 18, 30),
        at(2024, 1, 11, 18, 29),
        at(2024, 1, 11, 18, 30),
    ];
    let q = from(at(2024, 1, 10, 12, 0)).tz("+05:30");
    let out = buckets(q, &sum(1, "DAYS", ALIGN_START), &ts);
    assert_eq!(
        out,
        vec![
            (at(2024, 1, 9, 18, 30), 1.0),
            (at(2024, 1, 10, 18, 30), 2.0),
            (at(2024, 1, 11, 18, 30), 1.0),
        ]
    );
    // The same offset as an aggregator property.
    let property = r#","align_start_time":true,"time_zone":"+05:30""#;
    let out = buckets(from(at(2024, 1, 10, 12, 0)), &sum(1, "DAYS", property), &ts);
    assert_eq!(out[0].0, at(2024, 1, 9, 18, 30));
}

/// The bucket walk's shortcut for dense fixed-width data must give Java's buckets also
/// around and before the origin, where the index truncates toward zero.
#[test]
fn fixed_width_walk_matches_java_buckets_around_the_origin() {
    let origin = 1_000i64;
    let w = 60_000i64;
    let ts: Vec<i64> = (-40..40).map(|i| origin + i * 7_000 + (i % 3)).collect();
    // Java: the bucket of the current point ends at S + (n+1)·w with n = (t−S)/w
    // truncated; it takes every following point before that end.
    let mut expected = Vec::new();
    let mut lo = 0;
    while lo < ts.len() {
        let end = origin + ((ts[lo] - origin) / w + 1) * w;
        let mut hi = lo + 1;
        while hi < ts.len() && ts[hi] < end {
            hi += 1;
        }
        expected.push((ts[lo], (hi - lo) as f64));
        lo = hi;
    }
    let out = buckets(from(origin), &sum(1, "MINUTES", NO_ALIGN), &ts);
    assert_eq!(out, expected);
}

//! Time phrases of a prompt: `today`, `yesterday`, `this week`, `last week`, `this month`,
//! `last 3 hours` (`past`, `3h`, `the last hour`), `since monday`, `since 9:00`,
//! `between 9:00 and 17:00` (`from … to …`), each in the prompt's time zone (`in
//! Europe/Paris`, `UTC`). Weeks start on Monday.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::words::Words;

/// An inclusive range in epoch ms, and how it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub start: i64,
    pub end: i64,
    pub phrase: String,
}

/// The time zone named in the prompt (`in Europe/Paris`, `in utc`), taking its words.
pub fn zone(words: &mut Words) -> Option<(String, TimeZone)> {
    for i in 0..words.len() {
        if words.is_free(i) && words.lower(i) == "in" {
            if let Some(name) = words.original(i + 1) {
                let name = name.to_owned();
                if let Some(tz) = named_zone(&name) {
                    words.take(i..i + 2);
                    return Some((name, tz));
                }
            }
        }
    }
    for i in 0..words.len() {
        let w = words.lower(i);
        if words.is_free(i) && (w == "utc" || w == "gmt") {
            words.take(i..i + 1);
            return Some(("UTC".into(), TimeZone::UTC));
        }
    }
    None
}

fn named_zone(name: &str) -> Option<TimeZone> {
    match name.to_ascii_lowercase().as_str() {
        "utc" | "gmt" | "z" => Some(TimeZone::UTC),
        _ if name.contains('/') => TimeZone::get(name).ok(),
        _ => None,
    }
}

/// The range the prompt's time phrase names, taking its words; `None` when there is none.
pub fn range(words: &mut Words, now: Timestamp, tz: &TimeZone) -> Option<Range> {
    let now_z = now.to_zoned(tz.clone());
    let today = now_z.date();
    let now_ms = now.as_millisecond();
    let ms = |date: Date, time: Time| -> i64 {
        date.to_datetime(time)
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(now_ms)
    };
    let midnight = |date: Date| ms(date, Time::midnight());
    let n = words.len();
    for i in 0..n {
        if !words.is_free(i) {
            continue;
        }
        let w = words.lower(i).to_owned();
        let next = words.lower_at(i + 1);
        let after = words.lower_at(i + 2);
        // between 2024-05-01 and 2024-05-03 (whole days)
        if w == "between" || w == "from" {
            let joiner = words.lower_at(i + 2);
            if let (Some(a), Some(b), true) = (
                date(&next),
                date(&words.lower_at(i + 3)),
                matches!(joiner.as_str(), "and" | "to" | "until"),
            ) {
                words.take(i..i + 4);
                return Some(Range {
                    start: midnight(a),
                    end: (midnight(b.tomorrow().ok()?) - 1).min(now_ms),
                    phrase: format!("from {a} to {b}"),
                });
            }
        }
        // between 9:00 and 17:00 / from 9 to 5pm
        if w == "between" || w == "from" {
            if let (Some(a), Some(b)) = (clock(&next), clock_after(words, i + 2)) {
                let (b, used) = b;
                let day = if words.lower_at(i + 2 + used) == "yesterday" {
                    words.take(i + 2 + used..i + 3 + used);
                    today.yesterday().ok()?
                } else {
                    today
                };
                words.take(i..i + 2 + used);
                return Some(Range {
                    start: ms(day, a),
                    end: ms(day, b) - 1,
                    phrase: format!("{day} between {a} and {b}"),
                });
            }
        }
        match w.as_str() {
            "today" => {
                words.take(i..i + 1);
                return Some(Range {
                    start: midnight(today),
                    end: now_ms,
                    phrase: "today".into(),
                });
            }
            "yesterday" => {
                let y = today.yesterday().ok()?;
                // yesterday morning / afternoon / evening
                if let Some((a, b)) = part_of_day(&next) {
                    words.take(i..i + 2);
                    return Some(Range {
                        start: ms(y, Time::constant(a, 0, 0, 0)),
                        end: if b == 24 {
                            midnight(today) - 1
                        } else {
                            ms(y, Time::constant(b, 0, 0, 0)) - 1
                        },
                        phrase: format!("yesterday {next}"),
                    });
                }
                words.take(i..i + 1);
                return Some(Range {
                    start: midnight(y),
                    end: midnight(today) - 1,
                    phrase: "yesterday".into(),
                });
            }
            "last" if next == "night" => {
                words.take(i..i + 2);
                let y = today.yesterday().ok()?;
                return Some(Range {
                    start: ms(y, Time::constant(18, 0, 0, 0)),
                    end: (ms(today, Time::constant(6, 0, 0, 0)) - 1).min(now_ms),
                    phrase: "last night".into(),
                });
            }
            "last" | "previous" if next == "year" => {
                words.take(i..i + 2);
                let this = today.first_of_year();
                let start = this.checked_sub(1.year()).ok()?;
                return Some(Range {
                    start: midnight(start),
                    end: midnight(this) - 1,
                    phrase: "last year".into(),
                });
            }
            "on" if weekday(&next).is_some() || date(&next).is_some() => {
                // on monday: that whole day (the last one); on 2024-05-01
                let day = match date(&next) {
                    Some(d) => d,
                    None => {
                        let wd = weekday(&next)?;
                        let back = (today.weekday().to_monday_zero_offset()
                            - wd.to_monday_zero_offset())
                        .rem_euclid(7);
                        today.checked_sub((back as i64).days()).ok()?
                    }
                };
                words.take(i..i + 2);
                return Some(Range {
                    start: midnight(day),
                    end: (midnight(day.tomorrow().ok()?) - 1).min(now_ms),
                    phrase: format!("on {day}"),
                });
            }
            "tonight" | "this"
                if w == "tonight"
                    || next == "morning"
                    || next == "evening"
                    || next == "afternoon" =>
            {
                let part = if w == "tonight" {
                    "evening"
                } else {
                    next.as_str()
                };
                let (a, b) = match part {
                    "morning" => (6, 12),
                    "afternoon" => (12, 18),
                    _ => (18, 24),
                };
                words.take(i..i + if w == "tonight" { 1 } else { 2 });
                let start = ms(today, Time::constant(a, 0, 0, 0));
                let end = if b == 24 {
                    midnight(today.tomorrow().ok()?) - 1
                } else {
                    ms(today, Time::constant(b, 0, 0, 0)) - 1
                };
                return Some(Range {
                    start,
                    end: end.min(now_ms),
                    phrase: format!("this {part}"),
                });
            }
            "this" | "current" if next == "week" || next == "month" || next == "year" => {
                words.take(i..i + 2);
                let start = match next.as_str() {
                    "week" => monday_of(today),
                    "month" => today.first_of_month(),
                    _ => today.first_of_year(),
                };
                return Some(Range {
                    start: midnight(start),
                    end: now_ms,
                    phrase: format!("this {next}"),
                });
            }
            "last" | "past" | "previous" | "prior" => {
                // last week / last month: the whole previous one.
                if (next == "week" || next == "month") && w != "past" {
                    words.take(i..i + 2);
                    let (start, end) = if next == "week" {
                        let this = monday_of(today);
                        (this.checked_sub(7.days()).ok()?, this)
                    } else {
                        let this = today.first_of_month();
                        (this.checked_sub(1.month()).ok()?, this)
                    };
                    return Some(Range {
                        start: midnight(start),
                        end: midnight(end) - 1,
                        phrase: format!("last {next}"),
                    });
                }
                // last 3 hours, past hour, last 15m, last 2 days
                let (count, unit_at) = match number(&next) {
                    Some(c) => (c, i + 2),
                    None => (1, i + 1),
                };
                let unit_word = words.lower_at(unit_at);
                if let Some(span_ms) = unit_ms(&unit_word) {
                    words.take(i..unit_at + 1);
                    return Some(Range {
                        start: now_ms - count * span_ms,
                        end: now_ms,
                        phrase: format!("last {count} {}", unit_name(&unit_word, count)),
                    });
                }
                if let Some((count, span_ms, name)) = compact(&next) {
                    words.take(i..i + 2);
                    return Some(Range {
                        start: now_ms - count * span_ms,
                        end: now_ms,
                        phrase: format!("last {count} {name}"),
                    });
                }
            }
            "since" => {
                if let Some(d) = date(&next) {
                    words.take(i..i + 2);
                    return Some(Range {
                        start: midnight(d),
                        end: now_ms,
                        phrase: format!("since {d}"),
                    });
                }
                // since last monday: the one before this week's
                if next == "last" {
                    if let Some(day) = weekday(&after) {
                        words.take(i..i + 3);
                        let back = (today.weekday().to_monday_zero_offset()
                            - day.to_monday_zero_offset())
                        .rem_euclid(7);
                        let back = if back == 0 { 7 } else { back };
                        let date = today.checked_sub((back as i64).days()).ok()?;
                        return Some(Range {
                            start: midnight(date),
                            end: now_ms,
                            phrase: format!("since last {}", weekday_name(day)),
                        });
                    }
                }
                if let Some(day) = weekday(&next) {
                    words.take(i..i + 2);
                    let back = (today.weekday().to_monday_zero_offset()
                        - day.to_monday_zero_offset())
                    .rem_euclid(7);
                    let date = today.checked_sub((back as i64).days()).ok()?;
                    return Some(Range {
                        start: midnight(date),
                        end: now_ms,
                        phrase: format!("since {}", weekday_name(day)),
                    });
                }
                if let Some(t) = clock(&next) {
                    words.take(i..i + 2);
                    return Some(Range {
                        start: ms(today, t),
                        end: now_ms,
                        phrase: format!("since {t} today"),
                    });
                }
                if next == "yesterday" {
                    words.take(i..i + 2);
                    return Some(Range {
                        start: midnight(today.yesterday().ok()?),
                        end: now_ms,
                        phrase: "since yesterday".into(),
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// `2024-05-01`.
fn date(w: &str) -> Option<Date> {
    (w.len() == 10).then(|| w.parse::<Date>().ok()).flatten()
}

/// The hours of `morning`, `afternoon`, `evening`.
fn part_of_day(w: &str) -> Option<(i8, i8)> {
    match w {
        "morning" => Some((6, 12)),
        "afternoon" => Some((12, 18)),
        "evening" => Some((18, 24)),
        _ => None,
    }
}

/// The clock time at `i` and the words it used, for `… and 17:00` / `… to 5 pm`.
fn clock_after(words: &Words, i: usize) -> Option<(Time, usize)> {
    let joiner = words.lower_at(i);
    if joiner != "and" && joiner != "to" && joiner != "until" && joiner != "-" {
        return None;
    }
    let t = words.lower_at(i + 1);
    clock(&t).map(|t| (t, 2))
}

fn monday_of(d: Date) -> Date {
    let back = d.weekday().to_monday_zero_offset() as i64;
    d.checked_sub(back.days()).unwrap_or(d)
}

/// `9:00`, `17:30`, `9am`, `5pm`, `9`, `noon`, `midnight`.
pub fn clock(w: &str) -> Option<Time> {
    match w {
        "noon" | "midday" => return Some(Time::constant(12, 0, 0, 0)),
        "midnight" => return Some(Time::midnight()),
        _ => {}
    }
    let (body, pm) = if let Some(b) = w.strip_suffix("pm") {
        (b, Some(true))
    } else if let Some(b) = w.strip_suffix("am") {
        (b, Some(false))
    } else {
        (w, None)
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?),
        None if pm.is_some() || body.len() <= 2 => (body.parse::<i8>().ok()?, 0),
        None => return None,
    };
    let h = match pm {
        Some(true) if h < 12 => h + 12,
        Some(false) if h == 12 => 0,
        _ => h,
    };
    Time::new(h, m, 0, 0).ok()
}

fn number(w: &str) -> Option<i64> {
    match w {
        "a" | "an" | "one" => Some(1),
        "two" => Some(2),
        "three" => Some(3),
        "four" => Some(4),
        "five" => Some(5),
        "six" => Some(6),
        "seven" => Some(7),
        "ten" => Some(10),
        "twelve" => Some(12),
        "fifteen" => Some(15),
        "thirty" => Some(30),
        _ => w.parse().ok().filter(|n| *n > 0),
    }
}

/// `15m`, `3h`, `7d`, `2w`, `30s`: (count, unit ms, unit name).
fn compact(w: &str) -> Option<(i64, i64, &'static str)> {
    let split = w.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = w.split_at(split);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let (ms, name) = match unit {
        "s" | "sec" | "secs" => (1_000, "seconds"),
        "m" | "min" | "mins" => (60_000, "minutes"),
        "h" | "hr" | "hrs" => (3_600_000, "hours"),
        "d" => (86_400_000, "days"),
        "w" | "wk" => (604_800_000, "weeks"),
        _ => return None,
    };
    Some((n, ms, name))
}

fn unit_ms(w: &str) -> Option<i64> {
    Some(match w.trim_end_matches('s') {
        "second" | "sec" => 1_000,
        "minute" | "min" => 60_000,
        "hour" | "hr" => 3_600_000,
        "day" => 86_400_000,
        "week" => 604_800_000,
        "month" => 30 * 86_400_000,
        _ => return None,
    })
}

fn unit_name(w: &str, count: i64) -> String {
    let base = match w.trim_end_matches('s') {
        "sec" => "second",
        "min" => "minute",
        "hr" => "hour",
        other => other,
    };
    if count == 1 {
        base.to_owned()
    } else {
        format!("{base}s")
    }
}

pub fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

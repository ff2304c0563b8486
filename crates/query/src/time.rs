//! Time units, time zones and the calendar arithmetic of KairosDB's range aggregators,
//! `rate`/`sampler` and the `time` group-by (spec §5.1, §6.2), as Joda-Time computes it:
//!
//! * milliseconds, seconds, minutes, hours: plain UTC arithmetic, whatever the zone;
//! * days, weeks: arithmetic on local wall-clock time, so buckets follow local midnights
//!   (23 h and 25 h days at DST changes);
//! * months, years: calendar differences and additions on local wall-clock time (adding
//!   clamps the day of month).
//!
//! Local → UTC conversion follows Joda's `convertLocalToUTC(local, false, original)`: the
//! offset of the original instant is kept when it is still valid, otherwise the offset
//! after a DST gap and the earlier offset in an overlap.

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use kairosdb_protocol::civil::{self, DAY_MS};

pub use kairosdb_model::TimeUnit as Unit;

/// Length in ms of units that are pure UTC arithmetic in Joda (shorter than 12 h).
fn utc_ms(unit: Unit) -> Option<i64> {
    match unit {
        Unit::Milliseconds => Some(1),
        Unit::Seconds => Some(1_000),
        Unit::Minutes => Some(60_000),
        Unit::Hours => Some(3_600_000),
        _ => None,
    }
}

/// Length in ms of units that are fixed on the local time line (days, weeks).
fn local_ms(unit: Unit) -> Option<i64> {
    match unit {
        Unit::Days => Some(DAY_MS),
        Unit::Weeks => Some(7 * DAY_MS),
        _ => None,
    }
}

/// A time zone for calendar arithmetic; UTC needs no lookups.
#[derive(Clone, Debug, Default)]
pub struct Zone(Option<TimeZone>);

impl Zone {
    pub const UTC: Zone = Zone(None);

    /// Resolves a KairosDB `time_zone` value (already validated by the protocol crate):
    /// absent or `""` → UTC, an IANA id, or a Joda fixed offset (`+05:30`).
    pub fn resolve(id: Option<&str>) -> Result<Zone, String> {
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return Ok(Zone::UTC);
        };
        if id == "UTC" {
            return Ok(Zone::UTC);
        }
        if let Some(offset) = fixed_offset(id) {
            return Ok(Zone(Some(TimeZone::fixed(offset))));
        }
        TimeZone::get(id)
            .map(|tz| Zone(Some(tz)))
            .map_err(|e| format!("{id} is not a valid time zone: {e}"))
    }

    /// Offset from UTC in ms at instant `t` (times beyond jiff's ±9999 years use the
    /// offset at that limit).
    fn offset_ms(&self, t: i64) -> i64 {
        match &self.0 {
            None => 0,
            Some(tz) => i64::from(tz.to_offset(timestamp(t)).seconds()) * 1000,
        }
    }

    fn to_local(&self, t: i64) -> i64 {
        t.saturating_add(self.offset_ms(t))
    }

    /// Joda `convertLocalToUTC(local, false, original)`.
    fn local_to_utc(&self, local: i64, original: i64) -> i64 {
        if self.0.is_none() {
            return local;
        }
        let offset = self.offset_ms(original);
        let utc = local.saturating_sub(offset);
        if self.offset_ms(utc) == offset {
            return utc;
        }
        self.local_to_utc_plain(local)
    }

    /// Joda `convertLocalToUTC(local, false)`: in a gap the later offset wins (the time
    /// moves forward), in an overlap the earlier one.
    fn local_to_utc_plain(&self, local: i64) -> i64 {
        let Some(tz) = &self.0 else {
            return local;
        };
        let offset_local = self.offset_ms(local);
        let mut offset = self.offset_ms(local.saturating_sub(offset_local));
        if offset_local != offset && offset_local < 0 {
            let next = |t: i64| -> i64 {
                tz.following(timestamp(t))
                    .next()
                    .map_or(i64::MAX, |tr| tr.timestamp().as_millisecond())
            };
            if next(local.saturating_sub(offset_local)) != next(local.saturating_sub(offset)) {
                offset = offset_local;
            }
        }
        local.saturating_sub(offset)
    }
}

fn timestamp(t: i64) -> Timestamp {
    Timestamp::from_millisecond(t).unwrap_or(if t < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Joda fixed offsets: `±hh`, `±hh:mm`, `±hh:mm:ss` (fractions ignored).
fn fixed_offset(id: &str) -> Option<Offset> {
    let sign = match id.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut secs = 0i32;
    for (i, part) in id[1..].split(':').enumerate() {
        let part = part.split('.').next()?;
        let n: i32 = part.parse().ok()?;
        secs += n * [3600, 60, 1].get(i)?;
    }
    Offset::from_seconds(sign * secs).ok()
}

/// Adds `n` units to the local time `local` (calendar-aware for months and years).
fn add_local(local: i64, unit: Unit, n: i64) -> i64 {
    match unit {
        Unit::Months => civil::add_months(local, n),
        Unit::Years => civil::add_months(local, n.saturating_mul(12)),
        _ => {
            let ms = utc_ms(unit).or(local_ms(unit)).unwrap_or(1);
            local.saturating_add(n.saturating_mul(ms))
        }
    }
}

/// Joda's `getDifferenceAsLong` of the unit's field: whole units from `s` to `t`
/// (truncated toward zero), on UTC or local times as the unit requires.
fn difference(zone: &Zone, unit: Unit, t: i64, s: i64) -> i64 {
    if let Some(ms) = utc_ms(unit) {
        return ((i128::from(t) - i128::from(s)) / i128::from(ms)) as i64;
    }
    let (lt, ls) = (zone.to_local(t), zone.to_local(s));
    match unit {
        Unit::Months => month_difference(lt, ls),
        Unit::Years => year_difference(lt, ls),
        _ => {
            let ms = local_ms(unit).unwrap_or(DAY_MS);
            ((i128::from(lt) - i128::from(ls)) / i128::from(ms)) as i64
        }
    }
}

/// `BasicMonthOfYearDateTimeField.getDifferenceAsLong` on local times.
fn month_difference(minuend: i64, subtrahend: i64) -> i64 {
    if minuend < subtrahend {
        return -month_difference(subtrahend, minuend);
    }
    let (my, mm, md) = civil::civil_from_days(minuend.div_euclid(DAY_MS));
    let (sy, sm, sd) = civil::civil_from_days(subtrahend.div_euclid(DAY_MS));
    let mut difference = (my - sy) * 12 + mm - sm;
    // When the minuend is the last day of its month and the subtrahend's day is larger,
    // compare as if the subtrahend were on that day (a month after Jan 31 is Feb 28).
    let mut sub_day = sd;
    if md == civil::days_in_month(my, mm) && sd > md {
        sub_day = md;
    }
    // Time since the start of each month, computed without multiplying whole days back
    // (which would overflow near the ends of the i64 range).
    let minuend_rem = (md - 1) * DAY_MS + minuend.rem_euclid(DAY_MS);
    let subtrahend_rem = (sub_day - 1) * DAY_MS + subtrahend.rem_euclid(DAY_MS);
    if minuend_rem < subtrahend_rem {
        difference -= 1;
    }
    difference
}

/// `BasicGJChronology.getYearDifference` (with the Feb 29 balancing) on local times.
fn year_difference(minuend: i64, subtrahend: i64) -> i64 {
    if minuend < subtrahend {
        return -year_difference(subtrahend, minuend);
    }
    const FEB_29: i64 = (31 + 29 - 1) * DAY_MS;
    // (year, time since Jan 1) without multiplying whole days back (overflow near the
    // ends of the i64 range).
    let split = |t: i64| {
        let days = t.div_euclid(DAY_MS);
        let (y, _, _) = civil::civil_from_days(days);
        let day_of_year = days - civil::days_from_civil(y, 1, 1);
        (y, day_of_year * DAY_MS + t.rem_euclid(DAY_MS))
    };
    let (my, mut minuend_rem) = split(minuend);
    let (sy, mut subtrahend_rem) = split(subtrahend);
    if subtrahend_rem >= FEB_29 {
        if civil::is_leap(sy) {
            if !civil::is_leap(my) {
                subtrahend_rem -= DAY_MS;
            }
        } else if minuend_rem >= FEB_29 && civil::is_leap(my) {
            minuend_rem -= DAY_MS;
        }
    }
    let mut difference = my - sy;
    if minuend_rem < subtrahend_rem {
        difference -= 1;
    }
    difference
}

/// Joda's field `add(instant, n)`: UTC arithmetic for short units, local arithmetic
/// converted back with the original instant's offset preferred for the others.
fn add(zone: &Zone, unit: Unit, instant: i64, n: i64) -> i64 {
    if let Some(ms) = utc_ms(unit) {
        return instant.saturating_add(n.saturating_mul(ms));
    }
    zone.local_to_utc(add_local(zone.to_local(instant), unit, n), instant)
}

/// Length in ms of `value` units starting at `t` (`Util.getSamplingDuration`, used by
/// `rate` and `sampler`).
pub fn sampling_duration(zone: &Zone, unit: Unit, value: i64, t: i64) -> i64 {
    if unit == Unit::Milliseconds {
        return value;
    }
    if let Some(ms) = utc_ms(unit) {
        return value.saturating_mul(ms);
    }
    // `DateTime.plusX((int) value)`.
    let n = i64::from(value as i32);
    let end = zone.local_to_utc_plain(add_local(zone.to_local(t), unit, n));
    end.saturating_sub(t)
}

/// The buckets of a range aggregator: width `value × unit` counted from an origin, in a
/// zone (spec §5.1).
#[derive(Clone, Debug)]
pub struct Buckets {
    unit: Unit,
    value: i64,
    origin: i64,
    zone: Zone,
    /// Width in ms when buckets are plain UTC arithmetic (the fast path).
    fixed: Option<i64>,
}

impl Buckets {
    /// `value` must be positive. With `align`, the origin moves to the unit's boundary in
    /// the zone (years → Jan 1, months → the 1st, weeks → Monday, days/hours/minutes/
    /// seconds → midnight ⚠, milliseconds → the whole second).
    pub fn new(unit: Unit, value: i64, start: i64, align: bool, zone: Zone) -> Buckets {
        debug_assert!(value > 0, "BUG: bucket width must be positive");
        let origin = if align {
            align_start(&zone, unit, start)
        } else {
            start
        };
        let fixed = utc_ms(unit).and_then(|ms| ms.checked_mul(value));
        Buckets {
            unit,
            value,
            origin,
            zone,
            fixed,
        }
    }

    pub fn origin(&self) -> i64 {
        self.origin
    }

    /// `[start, end)` of the bucket containing `t` (Joda `getStartRange`/`getEndRange`:
    /// the index is truncated toward zero, so times before the origin fall into the
    /// first bucket).
    #[inline]
    pub fn range_of(&self, t: i64) -> (i64, i64) {
        if let Some(w) = self.fixed {
            // i64 arithmetic when nothing can overflow (the common case), else i128.
            if let Some(d) = t.checked_sub(self.origin) {
                let start = self.origin + d / w * w;
                if let Some(end) = start.checked_add(w) {
                    return (start, end);
                }
            }
            let (t, o, w) = (i128::from(t), i128::from(self.origin), i128::from(w));
            let start = o + (t - o) / w * w;
            return (saturate(start), saturate(start + w));
        }
        let n = difference(&self.zone, self.unit, t, self.origin) / self.value;
        (
            add(
                &self.zone,
                self.unit,
                self.origin,
                n.saturating_mul(self.value),
            ),
            add(
                &self.zone,
                self.unit,
                self.origin,
                n.saturating_add(1).saturating_mul(self.value),
            ),
        )
    }

    /// End of the bucket containing `t`.
    #[inline]
    pub fn end_of(&self, t: i64) -> i64 {
        self.range_of(t).1
    }

    /// Width in ms when it is fixed (for bucket-count estimates).
    pub fn fixed_width(&self) -> Option<i64> {
        self.fixed
    }
}

fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `RangeAggregator.alignRangeBoundary`.
fn align_start(zone: &Zone, unit: Unit, t: i64) -> i64 {
    if unit == Unit::Milliseconds {
        return t.saturating_sub(t.rem_euclid(1000));
    }
    let local = zone.to_local(t);
    let days = local.div_euclid(DAY_MS);
    let aligned_days = match unit {
        Unit::Years => {
            let (y, _, _) = civil::civil_from_days(days);
            civil::days_from_civil(y, 1, 1)
        }
        Unit::Months => {
            let (y, m, _) = civil::civil_from_days(days);
            civil::days_from_civil(y, m, 1)
        }
        // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
        Unit::Weeks => days - (days + 3).rem_euclid(7),
        _ => days,
    };
    zone.local_to_utc(aligned_days.saturating_mul(DAY_MS), t)
}

/// Year and month (1-12) of `t` in UTC, for the `time` group-by's month arithmetic.
pub fn utc_year_month(t: i64) -> (i64, i64) {
    let (y, m, _) = civil::civil_from_days(t.div_euclid(DAY_MS));
    (y, m)
}

#[cfg(test)]
mod tests;

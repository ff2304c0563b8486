//! The periods of a roll-up (spec §13.1): back-to-back buckets of the last range
//! aggregator's sampling, in the roll-up's time zone, from an origin fixed when the roll-up
//! first ran. Pure arithmetic over `kairosdb_query::time::Buckets`, so a roll-up period is
//! exactly the bucket a query with the same sampling would use.
//!
//! Not here: what runs in a period, or which periods are due (`run.rs`).
//!
//! Why the origin is kept: KairosDB re-aligns every run from the run's own start time, so
//! with a sampling that does not divide a day (7 minutes) two runs cut different periods.
//! Keeping the first aligned origin makes every period boundary permanent.

use kairosdb_model::catalogue::Sampling;
use kairosdb_query::time::{Buckets, Zone};

/// `[start, end)` in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

/// The period grid of one roll-up query metric.
#[derive(Clone, Debug)]
pub struct Grid {
    buckets: Buckets,
}

impl Grid {
    /// The grid through `origin` (a period start).
    pub fn new(sampling: Sampling, zone: Zone, origin: i64) -> Grid {
        Grid {
            buckets: Buckets::new(sampling.unit, sampling.value.max(1), origin, false, zone),
        }
    }

    /// Where a roll-up that never ran starts (KairosDB's `calculateStartTime`: now minus
    /// the execution interval minus one sampling), aligned as the range aggregator aligns
    /// (`align_sampling`): the start of the aligned bucket holding that instant.
    pub fn first_origin(sampling: Sampling, interval: Sampling, zone: &Zone, now: i64) -> i64 {
        let back = now
            .saturating_sub(duration(interval, zone, now))
            .saturating_sub(duration(sampling, zone, now));
        Grid::aligned_origin(sampling, zone, back)
    }

    /// The start of the aligned bucket holding `t` (`align_sampling`).
    pub fn aligned_origin(sampling: Sampling, zone: &Zone, t: i64) -> i64 {
        let aligned = Buckets::new(sampling.unit, sampling.value.max(1), t, true, zone.clone());
        aligned.range_of(t).0
    }

    /// The period holding `t`.
    pub fn period_of(&self, t: i64) -> Period {
        let (start, end) = self.buckets.range_of(t);
        Period { start, end }
    }

    /// The complete periods (`end <= now`) from the one holding `from`, at most `max`.
    pub fn complete_from(&self, from: i64, now: i64, max: usize) -> Vec<Period> {
        let mut out = Vec::new();
        let mut p = self.period_of(from);
        while p.end <= now && out.len() < max {
            out.push(p);
            if p.end <= p.start {
                break; // saturated at the end of time
            }
            p = self.period_of(p.end);
        }
        out
    }

    /// The periods that overlap `[from, to)`, complete or not, at most `max`.
    pub fn overlapping(&self, from: i64, to: i64, max: usize) -> Vec<Period> {
        let mut out = Vec::new();
        let mut p = self.period_of(from);
        while p.start < to && out.len() < max {
            out.push(p);
            if p.end <= p.start {
                break;
            }
            p = self.period_of(p.end);
        }
        out
    }
}

/// Length in ms of `d` starting at `t` (calendar units in `zone`).
pub fn duration(d: Sampling, zone: &Zone, t: i64) -> i64 {
    kairosdb_query::time::sampling_duration(zone, d.unit, d.value, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::TimeUnit;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn s(value: i64, unit: TimeUnit) -> Sampling {
        Sampling { value, unit }
    }

    #[test]
    fn a_new_rollup_starts_one_interval_and_one_period_back_on_a_boundary() {
        // 2026-12-07T10:37:00Z; 10-minute periods, hourly runs: 09:27 → aligned to 09:20.
        let now = 1_796_639_820_000;
        let origin = Grid::first_origin(
            s(10, TimeUnit::Minutes),
            s(1, TimeUnit::Hours),
            &Zone::UTC,
            now,
        );
        assert_eq!(origin, now - HOUR - 17 * MIN);
        assert_eq!(origin % (10 * MIN), 0);
    }

    #[test]
    fn complete_periods_stop_before_the_one_still_running() {
        let g = Grid::new(s(10, TimeUnit::Minutes), Zone::UTC, 0);
        let ps = g.complete_from(0, 35 * MIN, 100);
        assert_eq!(ps.len(), 3);
        assert_eq!(
            ps[2],
            Period {
                start: 20 * MIN,
                end: 30 * MIN
            }
        );
        assert_eq!(g.complete_from(0, 35 * MIN, 2).len(), 2, "capped");
        assert!(g.complete_from(30 * MIN, 35 * MIN, 100).is_empty());
    }

    #[test]
    fn periods_keep_their_origin_for_samplings_that_do_not_divide_a_day() {
        let origin = 3 * MIN;
        let g = Grid::new(s(7, TimeUnit::Minutes), Zone::UTC, origin);
        let p = g.period_of(origin + 2 * 24 * HOUR + MIN);
        assert_eq!((p.start - origin) % (7 * MIN), 0);
        assert_eq!(p.end - p.start, 7 * MIN);
    }

    #[test]
    fn monthly_periods_follow_the_calendar_in_the_zone() {
        let zone = Zone::resolve(Some("Europe/Paris")).unwrap();
        // 2026-01-01T00:00+01:00
        let jan = 1_767_222_000_000;
        let g = Grid::new(s(1, TimeUnit::Months), zone, jan);
        let ps = g.overlapping(jan, jan + 40 * 24 * HOUR, 10);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].end - ps[0].start, 31 * 24 * HOUR);
        assert_eq!(ps[1].start, ps[0].end);
    }
}

//! The timestamps of a head chunk, kept as runs of `first + i · step` while they are
//! evenly spaced.
//!
//! Collectors write at a fixed interval, so most heads hold regular timestamps; a head
//! then costs 8 bytes a point (its values) instead of 16. A load that fills every head
//! at once (time-major, as TSBS writes) peaks at about half the head memory. Writers on
//! several connections deliver a series' batches slightly out of order, so a chunk is
//! a list of runs in write order, each one evenly spaced; one more run starts wherever
//! a batch does not continue the last one. When runs get short (irregular timestamps),
//! the chunk turns into a plain list for the rest of its life, so an irregular series
//! pays what it paid before.
//!
//! Not here: sorting, deduplication and expiry (the chunk does those on the list form
//! it reads off [`Times::all`]).

use std::borrow::Cow;
use std::ops::Range;

use kairosdb_model::TimeRange;

/// One evenly spaced run: `len` timestamps `first + i · step`, `step > 0` once `len ≥ 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progression {
    first: i64,
    step: i64,
    /// Index one past this run's last timestamp in the chunk.
    end: usize,
}

/// A run costs what three list timestamps cost.
pub const RUN_BYTES: usize = std::mem::size_of::<Progression>();

/// Timestamps in write order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Times {
    /// Evenly spaced runs, in write order.
    Runs(Vec<Progression>),
    /// Anything else, as written.
    List(Vec<i64>),
}

impl Default for Times {
    fn default() -> Times {
        Times::Runs(Vec::new())
    }
}

impl Times {
    pub fn len(&self) -> usize {
        match self {
            Times::Runs(r) => r.last().map_or(0, |r| r.end),
            Times::List(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes used (what the head accounts for its timestamps).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Times::Runs(r) => r.len() * RUN_BYTES,
            Times::List(v) => v.len() * 8,
        }
    }

    /// True when the chunk is one evenly spaced run (or empty).
    #[cfg(test)]
    pub fn is_regular(&self) -> bool {
        matches!(self, Times::Runs(r) if r.len() <= 1)
    }

    /// Timestamp `i` (`i < len`).
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            Times::Runs(runs) => {
                let k = match runs.as_slice() {
                    [_] => 0,
                    _ => runs.partition_point(|r| r.end <= i),
                };
                let r = runs[k];
                let start = if k == 0 { 0 } else { runs[k - 1].end };
                debug_assert!(i < r.end, "BUG: timestamp index out of range");
                // Cannot overflow: every timestamp of a run was appended as an i64.
                r.first + r.step * (i - start) as i64
            }
            Times::List(v) => v[i],
        }
    }

    pub fn last(&self) -> Option<i64> {
        let n = self.len();
        (n > 0).then(|| self.get(n - 1))
    }

    /// Appends `ts`, extending the last run while the progression holds.
    pub fn extend_from_slice(&mut self, ts: &[i64]) {
        let Times::Runs(runs) = self else {
            if let Times::List(v) = self {
                v.extend_from_slice(ts);
            }
            return;
        };
        for (k, &t) in ts.iter().enumerate() {
            if !continues(runs, t) {
                let len = runs.last().map_or(0, |r| r.end);
                // Runs that cost more than the list (irregular timestamps): switch
                // for good. A few runs may (at most 96 bytes a chunk).
                if runs.len() >= 4 && (runs.len() + 1) * RUN_BYTES > (len + 1) * 8 {
                    let mut v = Vec::with_capacity((len + ts.len() - k).next_power_of_two());
                    v.extend((0..len).map(|i| self.get(i)));
                    v.extend_from_slice(&ts[k..]);
                    *self = Times::List(v);
                    return;
                }
                runs.push(Progression {
                    first: t,
                    step: 0,
                    end: len + 1,
                });
            }
        }
    }

    /// Drops every timestamp from index `n` on.
    pub fn truncate(&mut self, n: usize) {
        match self {
            Times::Runs(runs) => {
                let keep = runs.partition_point(|r| r.end <= n);
                if keep < runs.len() {
                    let start = if keep == 0 { 0 } else { runs[keep - 1].end };
                    runs[keep].end = n;
                    runs.truncate(if n > start { keep + 1 } else { keep });
                }
            }
            Times::List(v) => v.truncate(n),
        }
    }

    /// Timestamps `r` as a slice: borrowed from a list, made from runs.
    pub fn slice(&self, r: Range<usize>) -> Cow<'_, [i64]> {
        match self {
            Times::Runs(_) => Cow::Owned(r.map(|i| self.get(i)).collect()),
            Times::List(v) => Cow::Borrowed(&v[r]),
        }
    }

    /// All timestamps as a slice (see [`Times::slice`]).
    pub fn all(&self) -> Cow<'_, [i64]> {
        self.slice(0..self.len())
    }

    /// Indexes of the timestamps inside `range`, for timestamps in increasing order
    /// (what `Run::bounds` of `column.rs` computes for a slice).
    pub fn bounds(&self, range: TimeRange) -> Range<usize> {
        let n = self.len();
        let before = |t: i64| partition(n, |i| self.get(i) < t);
        let lo = before(range.start);
        let hi = partition(n, |i| self.get(i) <= range.end);
        lo..hi.max(lo)
    }

    /// Builds from a list, as runs when they are worth it.
    pub fn from_vec(v: Vec<i64>) -> Times {
        let mut t = Times::default();
        t.extend_from_slice(&v);
        match t {
            Times::Runs(_) => t,
            Times::List(_) => Times::List(v),
        }
    }
}

/// Extends the last run by `t` when `t` continues it.
fn continues(runs: &mut [Progression], t: i64) -> bool {
    let start = match runs {
        [] => return false,
        [.., p, _] => p.end,
        [_] => 0,
    };
    let r = runs.last_mut().expect("checked above");
    let ok = match r.end - start {
        1 => match t.checked_sub(r.first) {
            Some(d) if d > 0 => {
                r.step = d;
                true
            }
            _ => false,
        },
        n => {
            (n as i64)
                .checked_mul(r.step)
                .and_then(|o| r.first.checked_add(o))
                == Some(t)
        }
    };
    if ok {
        r.end += 1;
    }
    ok
}

/// The first index in `0..n` where `pred` is false (`pred` true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn as_vec(t: &Times) -> Vec<i64> {
        t.all().into_owned()
    }

    #[test]
    fn evenly_spaced_timestamps_take_one_run() {
        let mut t = Times::default();
        t.extend_from_slice(&[10, 20, 30]);
        t.extend_from_slice(&[40]);
        assert!(t.is_regular());
        assert_eq!(t.heap_bytes(), RUN_BYTES);
        assert_eq!(as_vec(&t), vec![10, 20, 30, 40]);
    }

    #[test]
    fn batches_delivered_out_of_order_take_a_run_each() {
        let mut t = Times::default();
        for batch in [[50, 60], [30, 40], [70, 80], [90, 100]] {
            t.extend_from_slice(&batch);
        }
        assert_eq!(t.heap_bytes(), 3 * RUN_BYTES, "70 continues 60's run");
        assert_eq!(as_vec(&t), vec![50, 60, 30, 40, 70, 80, 90, 100]);
        assert_eq!(t.get(2), 30);
        assert!(!t.is_regular());
    }

    #[test]
    fn irregular_timestamps_become_a_list_once_runs_cost_more() {
        let mut t = Times::default();
        let jitter: Vec<i64> = (0..40).map(|i| i * 10 + i % 3).collect();
        t.extend_from_slice(&jitter);
        assert!(matches!(t, Times::List(_)));
        assert_eq!(as_vec(&t), jitter);
        assert_eq!(t.heap_bytes(), 40 * 8);
    }

    #[test]
    fn a_repeated_or_falling_second_timestamp_is_not_a_progression() {
        for second in [10, 9, i64::MIN] {
            let mut t = Times::default();
            t.extend_from_slice(&[10, second]);
            assert_eq!(as_vec(&t), vec![10, second]);
            assert_eq!(t.heap_bytes(), 2 * RUN_BYTES, "a run each");
        }
    }

    #[test]
    fn a_progression_at_the_ends_of_i64_does_not_overflow() {
        let mut t = Times::default();
        t.extend_from_slice(&[i64::MIN, 0, i64::MAX - 1]);
        assert!(!t.is_regular(), "the step does not fit an i64");
        assert_eq!(as_vec(&t), vec![i64::MIN, 0, i64::MAX - 1]);
        let b = t.bounds(TimeRange::new(i64::MIN, i64::MAX));
        assert_eq!(b, 0..3);
    }

    proptest! {
        /// Whatever is appended, a `Times` reads back exactly like a `Vec<i64>`, and
        /// its bounds are those of the slice.
        #[test]
        fn times_behave_like_a_vec(
            parts in proptest::collection::vec(
                prop_oneof![
                    // runs of a progression (the common case) ...
                    (-1000i64..1000, 1i64..50, 0usize..20)
                        .prop_map(|(a, s, n)| (0..n as i64).map(|i| a + s * i).collect::<Vec<_>>()),
                    // ... and anything at all
                    proptest::collection::vec(any::<i64>(), 0..5),
                ],
                0..6,
            ),
            cut in 0usize..100,
            lo in -2000i64..2000,
            span in 0i64..3000,
        ) {
            let mut t = Times::default();
            let mut v: Vec<i64> = Vec::new();
            for p in &parts {
                t.extend_from_slice(p);
                v.extend_from_slice(p);
                prop_assert_eq!(as_vec(&t), v.clone());
                prop_assert_eq!(t.len(), v.len());
            }
            prop_assert_eq!(t.last(), v.last().copied());
            for (i, &want) in v.iter().enumerate() {
                prop_assert_eq!(t.get(i), want);
            }
            if v.windows(2).all(|w| w[0] < w[1]) {
                let r = TimeRange::new(lo, lo + span);
                prop_assert_eq!(t.bounds(r), crate::column::Run::bounds(&v, r));
            }
            t.truncate(cut);
            v.truncate(cut);
            prop_assert_eq!(as_vec(&t), v.clone());
            prop_assert_eq!(Times::from_vec(v.clone()).all().into_owned(), v);
        }
    }
}

//! Typed value columns ([`Col`]) used by the head, the block codec, the WAL replay and
//! the read path, plus the sort/dedupe/merge helpers that give "one value per
//! timestamp, the last written wins".
//!
//! Strings live in one byte arena with end offsets ([`StrCol`]), so appending a
//! string point never allocates per point. This module holds data only; locking
//! and persistence live elsewhere.

use std::ops::Range;

use kairosdb_model::{DataType, Points, TimeRange};

use crate::wal::NEVER;

/// Strings as one UTF-8 arena plus end offsets: value `i` is
/// `bytes[ends[i-1]..ends[i]]` (with `ends[-1] = 0`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrCol {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

impl StrCol {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    #[inline]
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Every push goes through `push(&str)`, and decoders validate UTF-8 before
        // pushing, so slices at `ends` are always char boundaries.
        std::str::from_utf8(&self.bytes[start..self.ends[i]])
            .expect("BUG: StrCol holds invalid UTF-8")
    }

    #[inline]
    pub fn push(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
        self.ends.push(self.bytes.len());
    }

    fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.ends.truncate(n);
            self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
        }
    }
}

/// One typed column of values.
#[derive(Clone, Debug, PartialEq)]
pub enum Col {
    Long(Vec<i64>),
    Double(Vec<f64>),
    Str(StrCol),
}

impl Col {
    pub fn new(dt: DataType) -> Col {
        match dt {
            DataType::Long => Col::Long(Vec::new()),
            DataType::Double => Col::Double(Vec::new()),
            DataType::String => Col::Str(StrCol::default()),
        }
    }

    pub fn with_capacity(dt: DataType, n: usize) -> Col {
        match dt {
            DataType::Long => Col::Long(Vec::with_capacity(n)),
            DataType::Double => Col::Double(Vec::with_capacity(n)),
            DataType::String => Col::Str(StrCol {
                bytes: Vec::new(),
                ends: Vec::with_capacity(n),
            }),
        }
    }

    /// The number at `i` as its 64 bits (two's complement or IEEE 754), for summaries
    /// that keep one value; `None` for strings.
    pub fn number_bits(&self, i: usize) -> Option<u64> {
        match self {
            Col::Long(v) => Some(v[i] as u64),
            Col::Double(v) => Some(v[i].to_bits()),
            Col::Str(_) => None,
        }
    }

    /// A one-value column from [`Col::number_bits`]; `None` for strings.
    pub fn from_number_bits(dt: DataType, bits: u64) -> Option<Col> {
        match dt {
            DataType::Long => Some(Col::Long(vec![bits as i64])),
            DataType::Double => Some(Col::Double(vec![f64::from_bits(bits)])),
            DataType::String => None,
        }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Col::Long(_) => DataType::Long,
            Col::Double(_) => DataType::Double,
            Col::Str(_) => DataType::String,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Col::Long(v) => v.len(),
            Col::Double(v) => v.len(),
            Col::Str(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        match self {
            Col::Long(v) => v.clear(),
            Col::Double(v) => v.clear(),
            Col::Str(s) => {
                s.bytes.clear();
                s.ends.clear();
            }
        }
    }

    pub fn truncate(&mut self, n: usize) {
        match self {
            Col::Long(v) => v.truncate(n),
            Col::Double(v) => v.truncate(n),
            Col::Str(s) => s.truncate(n),
        }
    }

    /// Removes the first `n` values.
    pub fn remove_front(&mut self, n: usize) {
        match self {
            Col::Long(v) => drop(v.drain(..n)),
            Col::Double(v) => drop(v.drain(..n)),
            Col::Str(s) => {
                if n == 0 {
                    return;
                }
                let cut = s.ends[n - 1];
                s.bytes.drain(..cut);
                s.ends.drain(..n);
                for e in &mut s.ends {
                    *e -= cut;
                }
            }
        }
    }

    /// Bytes this column accounts for in the head (values only, not capacity).
    pub fn value_bytes(&self) -> usize {
        match self {
            Col::Long(v) => v.len() * 8,
            Col::Double(v) => v.len() * 8,
            Col::Str(s) => s.bytes.len() + s.ends.len() * 8,
        }
    }

    /// Appends the values of model `Points` (types must match; checked by the caller).
    pub fn extend_from_points(&mut self, p: &Points) {
        match (self, p) {
            (Col::Long(d), Points::Long { values, .. }) => d.extend_from_slice(values),
            (Col::Double(d), Points::Double { values, .. }) => d.extend_from_slice(values),
            (Col::Str(d), Points::String { values, .. }) => {
                d.bytes.reserve(values.iter().map(String::len).sum());
                for v in values {
                    d.push(v);
                }
            }
            _ => panic!("BUG: column type differs from points type"),
        }
    }

    /// Appends `src[range]`.
    pub fn extend_from_col(&mut self, src: &Col, range: Range<usize>) {
        match (self, src) {
            (Col::Long(d), Col::Long(s)) => d.extend_from_slice(&s[range]),
            (Col::Double(d), Col::Double(s)) => d.extend_from_slice(&s[range]),
            (Col::Str(d), Col::Str(s)) => {
                if range.is_empty() {
                    return;
                }
                let base = if range.start == 0 {
                    0
                } else {
                    s.ends[range.start - 1]
                };
                let end = s.ends[range.end - 1];
                let shift = d.bytes.len();
                d.bytes.extend_from_slice(&s.bytes[base..end]);
                d.ends
                    .extend(s.ends[range].iter().map(|&e| e - base + shift));
            }
            _ => panic!("BUG: column types differ"),
        }
    }

    /// Appends `src[i]` for every index in `idx`.
    pub fn extend_gather(&mut self, src: &Col, idx: &[u32]) {
        match (self, src) {
            (Col::Long(d), Col::Long(s)) => d.extend(idx.iter().map(|&i| s[i as usize])),
            (Col::Double(d), Col::Double(s)) => d.extend(idx.iter().map(|&i| s[i as usize])),
            (Col::Str(d), Col::Str(s)) => {
                for &i in idx {
                    d.push(s.get(i as usize));
                }
            }
            _ => panic!("BUG: column types differ"),
        }
    }

    pub fn reverse(&mut self) {
        match self {
            Col::Long(v) => v.reverse(),
            Col::Double(v) => v.reverse(),
            Col::Str(s) => {
                let n = s.len();
                let mut out = StrCol {
                    bytes: Vec::with_capacity(s.bytes.len()),
                    ends: Vec::with_capacity(n),
                };
                for i in (0..n).rev() {
                    out.push(s.get(i));
                }
                *s = out;
            }
        }
    }

    /// Converts to model points with the given timestamps (same length).
    pub fn into_points(self, ts: Vec<i64>) -> Points {
        debug_assert_eq!(ts.len(), self.len(), "BUG: ts and values differ in length");
        match self {
            Col::Long(values) => Points::Long { ts, values },
            Col::Double(values) => Points::Double { ts, values },
            Col::Str(s) => {
                let values = (0..s.len()).map(|i| s.get(i).to_owned()).collect();
                Points::String { ts, values }
            }
        }
    }
}

/// Indices that sort `ts` ascending, keeping for each distinct timestamp only the
/// LAST index (the most recently written value wins). `None` when `ts` is already
/// strictly increasing (nothing to do).
pub fn dedupe_order(ts: &[i64]) -> Option<Vec<u32>> {
    if ts.windows(2).all(|w| w[0] < w[1]) {
        return None;
    }
    // Stable: equal timestamps stay in write order, so the last one of each run is
    // the newest.
    let idx = insertion_order(ts).unwrap_or_else(|| {
        let mut idx: Vec<u32> = (0..ts.len() as u32).collect();
        idx.sort_by_key(|&i| ts[i as usize]);
        idx
    });
    let mut out: Vec<u32> = Vec::with_capacity(idx.len());
    for &i in &idx {
        match out.last_mut() {
            Some(last) if ts[*last as usize] == ts[i as usize] => *last = i,
            _ => out.push(i),
        }
    }
    Some(out)
}

/// The stable sorting order of `ts` by insertion, when that moves at most 8 indexes a
/// point; `None` past that budget. A head written by concurrent connections is sorted
/// batches, a few of them swapped with their neighbour: insertion sorts that in about
/// one pass, where the general sort's merges cost a tenth of the TSBS ingest's CPU
/// (perf, 2026-12-07).
fn insertion_order(ts: &[i64]) -> Option<Vec<u32>> {
    let mut budget = 8 * ts.len();
    let mut idx: Vec<u32> = Vec::with_capacity(ts.len());
    for (i, &t) in ts.iter().enumerate() {
        let mut j = idx.len();
        while j > 0 && ts[idx[j - 1] as usize] > t {
            j -= 1;
        }
        budget = budget.checked_sub(idx.len() - j)?;
        idx.insert(j, i as u32);
    }
    Some(idx)
}

/// A sorted run of points with unique timestamps, and optionally the expiry
/// (unix seconds) of each point: `exp` is empty when no point expires.
///
/// Expiry semantics: an expired point is removed from its source *before* sources
/// are merged, so it never hides anything. Deliberate deviation from Cassandra: if a
/// value with a TTL overwrote an older value of the same timestamp and then expires,
/// the older value becomes visible again. This is the only rule that behaves the
/// same before and after the retention pass physically removes expired points.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub ts: Vec<i64>,
    pub vals: Col,
    pub exp: Vec<u64>,
}

impl Run {
    pub fn new(dt: DataType) -> Run {
        Run {
            ts: Vec::new(),
            vals: Col::new(dt),
            exp: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Index range of the points inside `range` (the run is sorted).
    pub fn bounds(ts: &[i64], range: TimeRange) -> Range<usize> {
        let lo = ts.partition_point(|&t| t < range.start);
        let hi = ts.partition_point(|&t| t <= range.end);
        lo..hi.max(lo)
    }

    /// Drops points whose expiry is at or before `now_secs`.
    pub fn retain_alive(&mut self, now_secs: u64) {
        if self.exp.is_empty() || self.exp.iter().all(|&e| e > now_secs) {
            return;
        }
        let keep: Vec<u32> = (0..self.len() as u32)
            .filter(|&i| self.exp[i as usize] > now_secs)
            .collect();
        self.retain_indices(&keep);
    }

    /// Keeps only the points at `keep` (ascending indices).
    pub fn retain_indices(&mut self, keep: &[u32]) {
        let mut vals = Col::with_capacity(self.vals.data_type(), keep.len());
        vals.extend_gather(&self.vals, keep);
        self.ts = keep.iter().map(|&i| self.ts[i as usize]).collect();
        if !self.exp.is_empty() {
            self.exp = keep.iter().map(|&i| self.exp[i as usize]).collect();
            if self.exp.iter().all(|&e| e == NEVER) {
                self.exp.clear();
            }
        }
        self.vals = vals;
    }

    /// Drops points inside `range`; returns how many were dropped.
    pub fn remove_range(&mut self, range: TimeRange) -> usize {
        let b = Run::bounds(&self.ts, range);
        if b.is_empty() {
            return 0;
        }
        let n = b.len();
        let keep: Vec<u32> = (0..b.start as u32)
            .chain(b.end as u32..self.len() as u32)
            .collect();
        self.retain_indices(&keep);
        n
    }

    /// Splits into consecutive runs of at most `max` points, sized evenly.
    pub fn split_even(self, max: usize) -> Vec<Run> {
        let n = self.len();
        let parts = n.div_ceil(max.max(1)).max(1);
        if parts == 1 {
            return vec![self];
        }
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for p in 0..parts {
            let end = start + n / parts + usize::from(p < n % parts);
            let mut vals = Col::with_capacity(self.vals.data_type(), end - start);
            vals.extend_from_col(&self.vals, start..end);
            out.push(Run {
                ts: self.ts[start..end].to_vec(),
                vals,
                exp: if self.exp.is_empty() {
                    Vec::new()
                } else {
                    self.exp[start..end].to_vec()
                },
            });
            start = end;
        }
        out
    }

    pub fn reverse(&mut self) {
        self.ts.reverse();
        self.vals.reverse();
        self.exp.reverse();
    }

    pub fn truncate(&mut self, n: usize) {
        self.ts.truncate(n);
        self.vals.truncate(n);
        self.exp.truncate(n);
    }
}

/// Merges runs given oldest first (each sorted, unique timestamps) into one sorted
/// run; on equal timestamps the run given later wins. Disjoint runs (the normal
/// case: blocks in time order, then the head) are concatenated without sorting.
pub fn merge_runs(dt: DataType, mut runs: Vec<Run>) -> Run {
    runs.retain(|r| !r.is_empty());
    match runs.len() {
        0 => return Run::new(dt),
        1 => return runs.pop().expect("one run"),
        _ => {}
    }
    let with_exp = runs.iter().any(|r| !r.exp.is_empty());
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| runs[i].ts[0]);
    let disjoint = order
        .windows(2)
        .all(|w| runs[w[0]].ts[runs[w[0]].len() - 1] < runs[w[1]].ts[0]);
    let total: usize = runs.iter().map(Run::len).sum();
    let push_exp = |out: &mut Run, r: &Run, range: Range<usize>| {
        if with_exp {
            if r.exp.is_empty() {
                out.exp.extend(std::iter::repeat_n(NEVER, range.len()));
            } else {
                out.exp.extend_from_slice(&r.exp[range]);
            }
        }
    };
    if disjoint {
        // Extend the earliest run in place: usually the big block run, followed
        // by the small head runs, so the bulk of the data is never copied again.
        let mut out = std::mem::replace(&mut runs[order[0]], Run::new(dt));
        if with_exp && out.exp.is_empty() {
            out.exp = vec![NEVER; out.len()];
        }
        out.ts.reserve(total - out.len());
        for &i in &order[1..] {
            let r = &runs[i];
            out.ts.extend_from_slice(&r.ts);
            out.vals.extend_from_col(&r.vals, 0..r.len());
            push_exp(&mut out, r, 0..r.len());
        }
        return out;
    }
    let mut out = Run {
        ts: Vec::with_capacity(total),
        vals: Col::with_capacity(dt, total),
        exp: Vec::with_capacity(if with_exp { total } else { 0 }),
    };
    // General case: (ts, run rank, position) sorted; the highest rank wins a tie.
    let mut all: Vec<(i64, u32, u32)> = Vec::with_capacity(total);
    for (r, run) in runs.iter().enumerate() {
        all.extend(
            run.ts
                .iter()
                .enumerate()
                .map(|(p, &t)| (t, r as u32, p as u32)),
        );
    }
    all.sort_unstable();
    let mut k = 0;
    while k < all.len() {
        let mut j = k;
        while j + 1 < all.len() && all[j + 1].0 == all[k].0 {
            j += 1;
        }
        let (t, r, p) = all[j];
        let run = &runs[r as usize];
        let p = p as usize;
        out.ts.push(t);
        out.vals.extend_from_col(&run.vals, p..p + 1);
        push_exp(&mut out, run, p..p + 1);
        k = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_run(ts: &[i64], v: &[i64]) -> Run {
        Run {
            ts: ts.to_vec(),
            vals: Col::Long(v.to_vec()),
            exp: Vec::new(),
        }
    }

    #[test]
    fn merge_carries_expiry_and_retain_alive_drops() {
        let old = long_run(&[1, 2], &[10, 20]);
        let mut new = long_run(&[2, 3], &[99, 30]);
        new.exp = vec![50, 60];
        let mut m = merge_runs(DataType::Long, vec![old, new]);
        assert_eq!(m.vals, Col::Long(vec![10, 99, 30]));
        assert_eq!(m.exp, vec![NEVER, 50, 60]);
        m.retain_alive(50);
        assert_eq!(m.ts, vec![1, 3]);
        assert_eq!(m.exp, vec![NEVER, 60]);
        m.retain_alive(60);
        assert_eq!(m.ts, vec![1]);
        assert!(m.exp.is_empty());
    }

    #[test]
    fn split_remove_and_bounds() {
        let r = long_run(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]);
        let parts = r.clone().split_even(2);
        assert_eq!(
            parts.iter().map(Run::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(parts[2].ts, vec![5]);
        assert_eq!(Run::bounds(&r.ts, TimeRange::new(2, 4)), 1..4);
        assert_eq!(Run::bounds(&r.ts, TimeRange::new(9, 4)), 5..5);
        let mut r2 = r.clone();
        assert_eq!(r2.remove_range(TimeRange::new(2, 3)), 2);
        assert_eq!(r2.ts, vec![1, 4, 5]);
        assert_eq!(r2.vals, Col::Long(vec![1, 4, 5]));
    }

    #[test]
    fn dedupe_keeps_last_written() {
        let ts = [5, 1, 5, 3, 1];
        let order = dedupe_order(&ts).unwrap();
        assert_eq!(order, vec![4, 3, 2]);
        assert_eq!(dedupe_order(&[1, 2, 3]), None);
        assert!(dedupe_order(&[1, 1]).is_some());
    }

    proptest::proptest! {
        /// Insertion (nearly sorted input) and the general sort give the same order.
        #[test]
        fn insertion_order_is_the_stable_sort_order(
            batches in proptest::collection::vec((0i64..50, 1usize..12), 1..40),
        ) {
            // Sorted batches, some overlapping or out of order, as concurrent writers
            // deliver them.
            let ts: Vec<i64> = batches
                .iter()
                .flat_map(|&(start, n)| (0..n as i64).map(move |k| start + 2 * k))
                .collect();
            let mut sorted: Vec<u32> = (0..ts.len() as u32).collect();
            sorted.sort_by_key(|&i| ts[i as usize]);
            if let Some(order) = insertion_order(&ts) {
                proptest::prop_assert_eq!(order, sorted);
            }
        }
    }

    #[test]
    fn insertion_order_gives_up_on_reversed_input() {
        let reversed: Vec<i64> = (0..100).rev().collect();
        assert_eq!(insertion_order(&reversed), None);
        let order = dedupe_order(&reversed).unwrap();
        assert_eq!(order, (0..100).rev().collect::<Vec<u32>>());
        let swapped: Vec<i64> = (10..20).chain(0..10).chain(20..30).collect();
        assert!(insertion_order(&swapped).is_some());
    }

    #[test]
    fn merge_prefers_later_runs() {
        let a = long_run(&[1, 2, 3], &[10, 20, 30]);
        let b = long_run(&[2, 4], &[200, 400]);
        let m = merge_runs(DataType::Long, vec![a.clone(), b.clone()]);
        assert_eq!(m.ts, vec![1, 2, 3, 4]);
        assert_eq!(m.vals, Col::Long(vec![10, 200, 30, 400]));
        let m = merge_runs(DataType::Long, vec![b, a]);
        assert_eq!(m.vals, Col::Long(vec![10, 20, 30, 400]));
    }

    #[test]
    fn merge_concatenates_disjoint_runs_in_time_order() {
        let a = long_run(&[10, 11], &[1, 2]);
        let b = long_run(&[1, 2], &[3, 4]);
        let m = merge_runs(DataType::Long, vec![a, b]);
        assert_eq!(m.ts, vec![1, 2, 10, 11]);
        assert_eq!(m.vals, Col::Long(vec![3, 4, 1, 2]));
    }

    #[test]
    fn strings_gather_extend_reverse() {
        let mut s = Col::new(DataType::String);
        s.extend_from_points(&Points::String {
            ts: vec![1, 2, 3],
            values: vec!["a".into(), "".into(), "ccc".into()],
        });
        let mut d = Col::new(DataType::String);
        d.extend_from_col(&s, 1..3);
        d.extend_gather(&s, &[0]);
        d.reverse();
        assert_eq!(
            d.into_points(vec![0, 0, 0]),
            Points::String {
                ts: vec![0, 0, 0],
                values: vec!["a".into(), "ccc".into(), "".into()]
            }
        );
        s.truncate(1);
        assert_eq!(s.value_bytes(), 1 + 8);
    }
}

//! Merging the series of one group into a single time-ordered stream (spec §4.4 step 4):
//! ascending by timestamp, ties broken by ascending value (descending and descending for
//! `order: desc`). Input series are already sorted in the query's order by storage, so
//! numbers are merged k-way with a heap on primitive keys (O(n log k)); text groups,
//! rare, sort references.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use kairosdb_model::{Num, Order, OutColumn, Points, SeriesData};

/// Merges the series of one group. A group holds only numbers or only strings (groups
/// are split by type first).
pub(crate) fn merge(mut series: Vec<SeriesData>, order: Order) -> (Vec<i64>, OutColumn) {
    if series.len() == 1 {
        return match series.pop().expect("one series").points {
            Points::Long { ts, values } => (ts, OutColumn::Long(values)),
            Points::Double { ts, values } => (ts, OutColumn::Double(values)),
            Points::String { ts, values } => (ts, OutColumn::Text(values)),
        };
    }
    let is = |f: fn(&Points) -> bool| series.iter().all(|s| f(&s.points));
    if is(|p| matches!(p, Points::Long { .. })) {
        let cols: Vec<(&[i64], &[i64])> = series
            .iter()
            .filter_map(|s| match &s.points {
                Points::Long { ts, values } => Some((ts.as_slice(), values.as_slice())),
                _ => None,
            })
            .collect();
        let (ts, values) = merge_typed(&cols, order);
        return (ts, OutColumn::Long(values));
    }
    if is(|p| matches!(p, Points::Double { .. })) {
        let cols: Vec<(&[i64], &[f64])> = series
            .iter()
            .filter_map(|s| match &s.points {
                Points::Double { ts, values } => Some((ts.as_slice(), values.as_slice())),
                _ => None,
            })
            .collect();
        let (ts, values) = merge_typed(&cols, order);
        return (ts, OutColumn::Double(values));
    }
    if is(|p| matches!(p, Points::String { .. })) {
        return merge_text(&series, order);
    }
    // Longs and doubles together: merged as `Num`s (rare: a metric written both ways).
    let owned: Vec<(&[i64], Vec<Num>)> = series
        .iter()
        .map(|s| match &s.points {
            Points::Long { ts, values } => (
                ts.as_slice(),
                values.iter().map(|&v| Num::Long(v)).collect(),
            ),
            Points::Double { ts, values } => (
                ts.as_slice(),
                values.iter().map(|&v| Num::Double(v)).collect(),
            ),
            Points::String { ts, .. } => (ts.as_slice(), vec![Num::Null; ts.len()]),
        })
        .collect();
    let cols: Vec<(&[i64], &[Num])> = owned.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    let (ts, values) = merge_typed(&cols, order);
    (ts, OutColumn::Number(values))
}

/// Text groups: every point reference sorted by (timestamp, string).
fn merge_text(series: &[SeriesData], order: Order) -> (Vec<i64>, OutColumn) {
    let text = |si: u32, pi: u32| -> &str {
        match &series[si as usize].points {
            Points::String { values, .. } => &values[pi as usize],
            _ => "",
        }
    };
    let total: usize = series.iter().map(|s| s.points.len()).sum();
    let mut refs: Vec<(i64, u32, u32)> = Vec::with_capacity(total);
    for (si, s) in series.iter().enumerate() {
        for (pi, &t) in s.points.timestamps().iter().enumerate() {
            refs.push((t, si as u32, pi as u32));
        }
    }
    refs.sort_unstable_by(|a, b| {
        let o =
            a.0.cmp(&b.0)
                .then_with(|| text(a.1, a.2).cmp(text(b.1, b.2)));
        if order == Order::Desc {
            o.reverse()
        } else {
            o
        }
    });
    let ts = refs.iter().map(|r| r.0).collect();
    let values = refs.iter().map(|r| text(r.1, r.2).to_owned()).collect();
    (ts, OutColumn::Text(values))
}

/// `f64::total_cmp` order as an integer key.
#[inline]
fn order_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// A value that orders as its `doubleValue`.
trait AsDouble: Copy {
    fn as_double(self) -> f64;
}

impl AsDouble for i64 {
    #[inline]
    fn as_double(self) -> f64 {
        self as f64
    }
}

impl AsDouble for f64 {
    #[inline]
    fn as_double(self) -> f64 {
        self
    }
}

impl AsDouble for Num {
    #[inline]
    fn as_double(self) -> f64 {
        match self {
            Num::Long(l) => l as f64,
            Num::Double(d) => d,
            Num::Null => f64::NAN,
        }
    }
}

/// Merge of series of one value type (the common case), aligned or by the heap.
fn merge_typed<T: AsDouble>(cols: &[(&[i64], &[T])], order: Order) -> (Vec<i64>, Vec<T>) {
    merge_aligned(cols, order).unwrap_or_else(|| merge_heap(cols, order))
}

/// k-way merge: the heap holds each series' next (timestamp, value key, series), over
/// plain slices.
fn merge_heap<T: AsDouble>(cols: &[(&[i64], &[T])], order: Order) -> (Vec<i64>, Vec<T>) {
    let total: usize = cols.iter().map(|c| c.0.len()).sum();
    let mut ts = Vec::with_capacity(total);
    let mut values = Vec::with_capacity(total);
    let mut cursor = vec![0usize; cols.len()];
    // One min-heap for both orders: descending keys are bit-inverted (`!x` reverses the
    // order of i64 without overflow).
    let flip = if order == Order::Desc { !0i64 } else { 0 };
    let key = |si: usize, pi: usize| {
        Reverse((
            cols[si].0[pi] ^ flip,
            order_key(cols[si].1[pi].as_double()) ^ flip,
            si as u32,
        ))
    };
    let mut heap: BinaryHeap<Reverse<(i64, i64, u32)>> = (0..cols.len())
        .filter(|&si| !cols[si].0.is_empty())
        .map(|si| key(si, 0))
        .collect();
    // Replacing the top in place sifts once per point (pop + push would sift twice).
    while let Some(mut top) = heap.peek_mut() {
        let si = top.0 .2 as usize;
        let pi = cursor[si];
        ts.push(cols[si].0[pi]);
        values.push(cols[si].1[pi]);
        cursor[si] = pi + 1;
        if pi + 1 < cols[si].0.len() {
            *top = key(si, pi + 1);
        } else {
            PeekMut::pop(top);
        }
    }
    (ts, values)
}

/// Sorts 8 keys with a sorting network (Batcher's odd-even merge sort, 19 branch-free
/// compare-exchanges, unrolled so the keys stay in registers).
#[inline]
fn sort8(k: &mut [u128; 8]) {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = *k;
    macro_rules! cx {
        ($x:ident, $y:ident) => {
            let (lo, hi) = ($x.min($y), $x.max($y));
            $x = lo;
            $y = hi;
        };
    }
    cx!(a0, a2);
    cx!(a1, a3);
    cx!(a4, a6);
    cx!(a5, a7);
    cx!(a0, a4);
    cx!(a1, a5);
    cx!(a2, a6);
    cx!(a3, a7);
    cx!(a0, a1);
    cx!(a2, a3);
    cx!(a4, a5);
    cx!(a6, a7);
    cx!(a2, a4);
    cx!(a3, a5);
    cx!(a1, a4);
    cx!(a3, a6);
    cx!(a1, a2);
    cx!(a3, a4);
    cx!(a5, a6);
    *k = [a0, a1, a2, a3, a4, a5, a6, a7];
}

/// Series sampled on the same ticks (collectors of one interval, TSBS) share one
/// timestamp column: then the merge is, per timestamp, the series' values sorted by
/// (value, series) — what the heap yields, at a fraction of its cost. `None` when the
/// timestamp columns differ.
fn merge_aligned<T: AsDouble>(cols: &[(&[i64], &[T])], order: Order) -> Option<(Vec<i64>, Vec<T>)> {
    let shared = cols.first()?.0;
    if cols.iter().any(|c| c.0 != shared) {
        return None;
    }
    let k = cols.len();
    let flip = if order == Order::Desc { !0i64 } else { 0 };
    let mut ts = Vec::with_capacity(shared.len() * k);
    let mut values = Vec::with_capacity(shared.len() * k);
    if k <= 8 {
        // (value key, series) packed in one u128, ordered by a branch-free sorting
        // network over 8 slots (unused ones hold u128::MAX and sort last): about half
        // the time of sorting the pairs.
        let mut keys = [u128::MAX; 8];
        for (pi, &t) in shared.iter().enumerate() {
            for (si, (slot, c)) in keys.iter_mut().zip(cols).enumerate() {
                let key = (order_key(c.1[pi].as_double()) ^ flip) as u64 ^ (1 << 63);
                *slot = (u128::from(key) << 32) | si as u128;
            }
            sort8(&mut keys);
            ts.resize(ts.len() + k, t);
            values.extend(keys[..k].iter().map(|&key| cols[key as u32 as usize].1[pi]));
            keys = [u128::MAX; 8];
        }
        return Some((ts, values));
    }
    let mut keys: Vec<(i64, u32)> = Vec::with_capacity(k);
    for (pi, &t) in shared.iter().enumerate() {
        keys.clear();
        keys.extend(
            cols.iter()
                .enumerate()
                .map(|(si, c)| (order_key(c.1[pi].as_double()) ^ flip, si as u32)),
        );
        keys.sort_unstable();
        ts.resize(ts.len() + k, t);
        values.extend(keys.iter().map(|&(_, si)| cols[si as usize].1[pi]));
    }
    Some((ts, values))
}

#[cfg(test)]
mod tests {
    use kairosdb_model::{SeriesKey, Tags};

    use super::*;

    /// A small deterministic generator (xorshift64).
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// The heap merge equals sorting every point by (ts, value) — ascending, and both
    /// descending for `order: desc` — for long, double and mixed groups.
    #[test]
    fn heap_merge_equals_a_full_sort() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        for round in 0..400 {
            let k = 2 + (next() % 6) as usize;
            let mut series = Vec::new();
            let mut all: Vec<(i64, f64, Num)> = Vec::new();
            // Every other hundred rounds: all series on the same ticks (the aligned path).
            let aligned = (round / 100) % 2 == 1;
            let (shared_t, shared_n) = ((next() % 5) as i64, (next() % 20) as usize);
            let shared_seed = next();
            for si in 0..k {
                let mut t = if aligned {
                    shared_t
                } else {
                    (next() % 5) as i64
                };
                let n = if aligned {
                    shared_n
                } else {
                    (next() % 20) as usize
                };
                let mut tick = shared_seed;
                let mut ts = Vec::new();
                let long = match round % 3 {
                    0 => true,
                    1 => false,
                    _ => si % 2 == 0,
                };
                let (mut lv, mut dv) = (Vec::new(), Vec::new());
                for _ in 0..n {
                    let step = if aligned {
                        tick = tick.rotate_left(7) ^ 0x2545_f491;
                        tick
                    } else {
                        next()
                    };
                    t += 1 + (step % 3) as i64;
                    ts.push(t);
                    let v = (next() % 7) as i64 - 3;
                    if long {
                        lv.push(v);
                        all.push((t, v as f64, Num::Long(v)));
                    } else {
                        let d = v as f64 + 0.5;
                        dv.push(d);
                        all.push((t, d, Num::Double(d)));
                    }
                }
                let points = if long {
                    Points::Long { ts, values: lv }
                } else {
                    Points::Double { ts, values: dv }
                };
                let tags = Tags::from_pairs([("s", si.to_string())]);
                let data_type = points.data_type();
                series.push(SeriesData::new(
                    SeriesKey::new("m", data_type, tags),
                    points,
                ));
            }
            for order in [Order::Asc, Order::Desc] {
                let mut input = series.clone();
                if order == Order::Desc {
                    for s in &mut input {
                        s.points = match &s.points {
                            Points::Long { ts, values } => Points::Long {
                                ts: ts.iter().rev().copied().collect(),
                                values: values.iter().rev().copied().collect(),
                            },
                            Points::Double { ts, values } => Points::Double {
                                ts: ts.iter().rev().copied().collect(),
                                values: values.iter().rev().copied().collect(),
                            },
                            other => other.clone(),
                        };
                    }
                }
                let mut want = all.clone();
                want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                if order == Order::Desc {
                    want.reverse();
                }
                let (ts, col) = merge(input, order);
                let got: Vec<(i64, f64)> = ts
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        let v = match &col {
                            OutColumn::Long(v) => v[i] as f64,
                            OutColumn::Double(v) => v[i],
                            OutColumn::Number(v) => match v[i] {
                                Num::Long(l) => l as f64,
                                Num::Double(d) => d,
                                Num::Null => f64::NAN,
                            },
                            _ => unreachable!(),
                        };
                        (t, v)
                    })
                    .collect();
                let want: Vec<(i64, f64)> = want.iter().map(|w| (w.0, w.1)).collect();
                assert_eq!(got, want, "round {round} {order:?}");
            }
        }
    }

    /// Ties in the value key that are told apart in the output (a long and the double of
    /// the same value; longs above 2^53 that share a double) come out of the aligned
    /// path exactly as out of the heap.
    #[test]
    fn aligned_merge_breaks_ties_as_the_heap_does() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let big = 1i64 << 53;
        for round in 0..200 {
            let k = 2 + (next() % 20) as usize;
            let n = 1 + (next() % 12) as usize;
            let ts: Vec<i64> = (0..n as i64).map(|i| i * 10).collect();
            let cols: Vec<Vec<Num>> = (0..k)
                .map(|_| {
                    (0..n)
                        .map(|_| match next() % 4 {
                            0 => Num::Long((next() % 3) as i64),
                            1 => Num::Double((next() % 3) as f64),
                            2 => Num::Long(big + (next() % 2) as i64),
                            _ => Num::Double(big as f64),
                        })
                        .collect()
                })
                .collect();
            for order in [Order::Asc, Order::Desc] {
                // Each series in the read's order (descending for `Desc`).
                let (ts, cols) = match order {
                    Order::Asc => (ts.clone(), cols.clone()),
                    Order::Desc => (
                        ts.iter().rev().copied().collect(),
                        cols.iter()
                            .map(|c| c.iter().rev().copied().collect())
                            .collect(),
                    ),
                };
                let slices: Vec<(&[i64], &[Num])> =
                    cols.iter().map(|c| (ts.as_slice(), c.as_slice())).collect();
                let aligned = merge_aligned(&slices, order).expect("same timestamps");
                assert_eq!(
                    aligned,
                    merge_heap(&slices, order),
                    "round {round} {order:?}"
                );
            }
        }
    }

    /// The 8-slot network sorts every arrangement of 8 values drawn from 3 (ties
    /// included), and every shorter prefix padded as the merge pads it.
    #[test]
    fn sort8_sorts_everything() {
        for code in 0..3u32.pow(8) {
            for k in 1..=8 {
                let mut a = [u128::MAX; 8];
                for (i, slot) in a.iter_mut().take(k).enumerate() {
                    *slot = u128::from(code / 3u32.pow(i as u32) % 3);
                }
                let mut want = a;
                want.sort_unstable();
                sort8(&mut a);
                assert_eq!(a, want, "code {code} k {k}");
            }
        }
    }
}

//! Merging the series of one group into a single time-ordered stream (spec §4.4 step 4):
//! ascending by timestamp, ties broken by ascending value (descending and descending for
//! `order: desc`). Input series are already sorted in the query's order by storage.

use std::cmp::Ordering;

use kairosdb_model::{Num, Order, OutColumn, Points, SeriesData};

/// Merges the series of one group. A group holds only numbers or only strings.
pub(crate) fn merge(mut series: Vec<SeriesData>, order: Order) -> (Vec<i64>, OutColumn) {
    if series.len() == 1 {
        return match series.pop().expect("one series").points {
            Points::Long { ts, values } => (ts, OutColumn::Long(values)),
            Points::Double { ts, values } => (ts, OutColumn::Double(values)),
            Points::String { ts, values } => (ts, OutColumn::Text(values)),
        };
    }
    let all_long = series
        .iter()
        .all(|s| matches!(s.points, Points::Long { .. }));
    let all_double = series
        .iter()
        .all(|s| matches!(s.points, Points::Double { .. }));
    let all_text = series
        .iter()
        .all(|s| matches!(s.points, Points::String { .. }));

    // (ts, series index, point index) for every point, sorted.
    let total: usize = series.iter().map(|s| s.points.len()).sum();
    let mut refs: Vec<(i64, u32, u32)> = Vec::with_capacity(total);
    for (si, s) in series.iter().enumerate() {
        for (pi, &t) in s.points.timestamps().iter().enumerate() {
            refs.push((t, si as u32, pi as u32));
        }
    }
    let cmp_value = |a: &(i64, u32, u32), b: &(i64, u32, u32)| -> Ordering {
        match (&series[a.1 as usize].points, &series[b.1 as usize].points) {
            (Points::String { values: va, .. }, Points::String { values: vb, .. }) => {
                va[a.2 as usize].cmp(&vb[b.2 as usize])
            }
            (pa, pb) => numeric(pa, a.2 as usize).total_cmp(&numeric(pb, b.2 as usize)),
        }
    };
    match order {
        Order::Asc => refs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_value(a, b))),
        Order::Desc => refs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| cmp_value(b, a))),
    }

    let ts: Vec<i64> = refs.iter().map(|r| r.0).collect();
    let column = if all_long {
        OutColumn::Long(
            refs.iter()
                .map(|r| long_at(&series[r.1 as usize].points, r.2 as usize))
                .collect(),
        )
    } else if all_double {
        OutColumn::Double(
            refs.iter()
                .map(|r| numeric(&series[r.1 as usize].points, r.2 as usize))
                .collect(),
        )
    } else if all_text {
        OutColumn::Text(
            refs.iter()
                .map(|r| match &series[r.1 as usize].points {
                    Points::String { values, .. } => values[r.2 as usize].clone(),
                    _ => unreachable!("all series are strings"),
                })
                .collect(),
        )
    } else {
        OutColumn::Number(
            refs.iter()
                .map(|r| match &series[r.1 as usize].points {
                    Points::Long { values, .. } => Num::Long(values[r.2 as usize]),
                    Points::Double { values, .. } => Num::Double(values[r.2 as usize]),
                    Points::String { .. } => Num::Null,
                })
                .collect(),
        )
    };
    (ts, column)
}

fn numeric(points: &Points, i: usize) -> f64 {
    match points {
        Points::Long { values, .. } => values[i] as f64,
        Points::Double { values, .. } => values[i],
        Points::String { .. } => f64::NAN,
    }
}

fn long_at(points: &Points, i: usize) -> i64 {
    match points {
        Points::Long { values, .. } => values[i],
        _ => unreachable!("all series are longs"),
    }
}

//! Operations on one group's value column ([`OutColumn`]) that keep each point's type:
//! selecting points by index (`first`, `last`, `filter`, `trim`, group-bys), inserting
//! `gaps` nulls, and the numeric view numeric aggregators read.

use std::borrow::Cow;

use kairosdb_model::{Num, OutColumn};

use crate::QueryError;

/// KairosDB's error when a numeric aggregator meets a `gaps` null (spec §5.2).
pub(crate) const GAPS_CHAINED: &str =
    "No aggregator can be chained after org.kairosdb.core.aggregator.DataGapsMarkingAggregator";

/// The values as doubles (`DataPoint.getDoubleValue`). Borrowed for double columns.
pub(crate) fn numbers(col: &OutColumn) -> Result<Cow<'_, [f64]>, QueryError> {
    match col {
        OutColumn::Double(v) => Ok(Cow::Borrowed(v)),
        OutColumn::Long(v) => Ok(Cow::Owned(v.iter().map(|&x| x as f64).collect())),
        OutColumn::Number(v) => v
            .iter()
            .map(|x| match *x {
                Num::Long(l) => Ok(l as f64),
                Num::Double(d) => Ok(d),
                Num::Null => Err(QueryError::Failed(GAPS_CHAINED.into())),
            })
            .collect::<Result<Vec<f64>, _>>()
            .map(Cow::Owned),
        OutColumn::Text(_) | OutColumn::TextOrNull(_) => Err(QueryError::Failed(
            "BUG: a numeric aggregator was applied to a text group".into(),
        )),
    }
}

/// The points at `idx`, in that order.
pub(crate) fn gather(col: &OutColumn, idx: &[usize]) -> OutColumn {
    fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
        idx.iter().map(|&i| v[i].clone()).collect()
    }
    match col {
        OutColumn::Long(v) => OutColumn::Long(pick(v, idx)),
        OutColumn::Double(v) => OutColumn::Double(pick(v, idx)),
        OutColumn::Number(v) => OutColumn::Number(pick(v, idx)),
        OutColumn::Text(v) => OutColumn::Text(pick(v, idx)),
        OutColumn::TextOrNull(v) => OutColumn::TextOrNull(pick(v, idx)),
    }
}

/// The points at `idx`, with a null point for every `None` (`gaps`).
pub(crate) fn gather_or_null(col: &OutColumn, idx: &[Option<usize>]) -> OutColumn {
    if idx.iter().all(Option::is_some) {
        let idx: Vec<usize> = idx.iter().flatten().copied().collect();
        return gather(col, &idx);
    }
    let num = |f: &dyn Fn(usize) -> Num| -> OutColumn {
        OutColumn::Number(idx.iter().map(|i| i.map_or(Num::Null, f)).collect())
    };
    match col {
        OutColumn::Long(v) => num(&|i| Num::Long(v[i])),
        OutColumn::Double(v) => num(&|i| Num::Double(v[i])),
        OutColumn::Number(v) => num(&|i| v[i]),
        OutColumn::Text(v) => {
            OutColumn::TextOrNull(idx.iter().map(|i| i.map(|i| v[i].clone())).collect())
        }
        OutColumn::TextOrNull(v) => {
            OutColumn::TextOrNull(idx.iter().map(|i| i.and_then(|i| v[i].clone())).collect())
        }
    }
}

/// Points `lo..hi`.
pub(crate) fn slice(col: OutColumn, lo: usize, hi: usize) -> OutColumn {
    fn cut<T>(mut v: Vec<T>, lo: usize, hi: usize) -> Vec<T> {
        v.truncate(hi);
        v.drain(..lo.min(v.len()));
        v
    }
    match col {
        OutColumn::Long(v) => OutColumn::Long(cut(v, lo, hi)),
        OutColumn::Double(v) => OutColumn::Double(cut(v, lo, hi)),
        OutColumn::Number(v) => OutColumn::Number(cut(v, lo, hi)),
        OutColumn::Text(v) => OutColumn::Text(cut(v, lo, hi)),
        OutColumn::TextOrNull(v) => OutColumn::TextOrNull(cut(v, lo, hi)),
    }
}

/// One point's value for the value and bin group-bys: `Some(long)` / `Some(double)` for
/// numbers, `None` for strings and nulls.
#[derive(Clone, Copy)]
pub(crate) enum Scalar {
    Long(i64),
    Double(f64),
    Other,
}

pub(crate) fn scalar_at(col: &OutColumn, i: usize) -> Scalar {
    match col {
        OutColumn::Long(v) => Scalar::Long(v[i]),
        OutColumn::Double(v) => Scalar::Double(v[i]),
        OutColumn::Number(v) => match v[i] {
            Num::Long(l) => Scalar::Long(l),
            Num::Double(d) => Scalar::Double(d),
            Num::Null => Scalar::Other,
        },
        OutColumn::Text(_) | OutColumn::TextOrNull(_) => Scalar::Other,
    }
}

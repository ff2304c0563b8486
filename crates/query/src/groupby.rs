//! The `time`, `value` and `bin` group-bys (spec §6.2–§6.5): each splits a merged group
//! into sub-groups by a number computed from every raw point; several combine into their
//! cartesian split. Sub-groups come in the order of their first point.

use std::collections::HashMap;

use kairosdb_model::catalogue::GroupBySpec;
use kairosdb_model::GroupByResult;

use crate::aggregate::Stream;
use crate::column::{self, scalar_at, Scalar};
use crate::time::{utc_year_month, Unit};
use crate::QueryError;

#[derive(Clone, Debug)]
pub(crate) enum GroupBy {
    Time {
        value: i64,
        unit: Unit,
        count: i64,
        start: i64,
    },
    Value {
        size: i64,
    },
    Bin {
        bins: Vec<f64>,
    },
}

impl GroupBy {
    /// The group-by `spec` asks for; `query_start` is the default origin of `time`.
    /// `None` for the tag group-by, which groups series, not points ([`crate::group`]).
    pub(crate) fn new(spec: &GroupBySpec, query_start: i64) -> Option<GroupBy> {
        Some(match spec {
            GroupBySpec::Tag { .. } => return None,
            GroupBySpec::Time {
                range_size,
                group_count,
                start_date,
            } => GroupBy::Time {
                value: range_size.value,
                unit: range_size.unit,
                count: *group_count,
                start: start_date.unwrap_or(query_start),
            },
            GroupBySpec::Value { range_size } => GroupBy::Value { size: *range_size },
            GroupBySpec::Bin { bins } => GroupBy::Bin { bins: bins.clone() },
        })
    }

    /// Checks what KairosDB only discovers at run time (division by zero, no bins).
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        let fail = |m: &str| Err(QueryError::Failed(m.to_owned()));
        match self {
            GroupBy::Time {
                value, unit, count, ..
            } => {
                if *count < 1 {
                    return fail("time group_by: group_count must be greater than or equal to 1");
                }
                if *unit != Unit::Months && time_size_ms(*value, *unit) == 0 {
                    return fail("java.lang.ArithmeticException: / by zero (time group_by range_size value is 0)");
                }
            }
            GroupBy::Value { size } if *size < 1 => {
                return fail("value group_by: range_size must be greater than or equal to 1")
            }
            GroupBy::Bin { bins } if bins.is_empty() => {
                return fail("bin group_by: bins must hold at least one value")
            }
            _ => {}
        }
        Ok(())
    }

    /// The group number of point `i` (Java `int` arithmetic).
    fn id(&self, s: &Stream, i: usize) -> i64 {
        match self {
            GroupBy::Time {
                value,
                unit,
                count,
                start,
            } => {
                let t = s.ts[i];
                let id = if *unit == Unit::Months {
                    // UTC calendar months, ignoring the day of month and time zone.
                    let (ty, tm) = utc_year_month(t);
                    let (sy, sm) = utc_year_month(*start);
                    ((ty - sy) * 12 + (tm - sm)) % count
                } else {
                    let size = time_size_ms(*value, *unit);
                    (((i128::from(t) - i128::from(*start)) / i128::from(size)) % i128::from(*count))
                        as i64
                };
                i64::from(id as i32)
            }
            GroupBy::Value { size } => match scalar_at(&s.values, i) {
                Scalar::Long(l) => i64::from((l / size) as i32),
                Scalar::Double(d) => i64::from(d as i32) / size,
                Scalar::Other => -1,
            },
            GroupBy::Bin { bins } => {
                let v = match scalar_at(&s.values, i) {
                    Scalar::Long(l) => l as f64,
                    Scalar::Double(d) => d,
                    Scalar::Other => return -1,
                };
                if v < bins[0] {
                    return 0;
                }
                for k in 0..bins.len() - 1 {
                    if v >= bins[k] && v < bins[k + 1] {
                        return k as i64 + 1;
                    }
                }
                bins.len() as i64
            }
        }
    }

    fn result(&self, id: i64) -> GroupByResult {
        match self {
            GroupBy::Time {
                value, unit, count, ..
            } => GroupByResult::Time {
                range_value: *value,
                range_unit: unit.name().to_owned(),
                group_count: *count,
                group_number: id,
            },
            GroupBy::Value { size } => GroupByResult::Value {
                range_size: *size,
                group_number: id,
            },
            GroupBy::Bin { bins } => GroupByResult::Bin {
                bins: bins.clone(),
                bin_number: id,
            },
        }
    }
}

/// `TimeGroupBy.convertGroupSizeToMillis` (a year is 52 weeks ⚠).
fn time_size_ms(value: i64, unit: Unit) -> i64 {
    let per = match unit {
        Unit::Milliseconds => 1,
        Unit::Seconds => 1_000,
        Unit::Minutes => 60_000,
        Unit::Hours => 3_600_000,
        Unit::Days => 86_400_000,
        Unit::Weeks => 7 * 86_400_000,
        Unit::Years => 52 * 7 * 86_400_000,
        Unit::Months => 0,
    };
    value.saturating_mul(per)
}

/// Splits one stream by the group-bys; each part comes with its group-by results in
/// group-by order.
pub(crate) fn split(s: Stream, group_bys: &[GroupBy]) -> Vec<(Vec<GroupByResult>, Stream)> {
    if group_bys.is_empty() {
        return vec![(Vec::new(), s)];
    }
    let mut order: Vec<Vec<i64>> = Vec::new();
    let mut members: HashMap<Vec<i64>, Vec<usize>> = HashMap::new();
    let mut key = Vec::with_capacity(group_bys.len());
    for i in 0..s.ts.len() {
        key.clear();
        key.extend(group_bys.iter().map(|g| g.id(&s, i)));
        match members.get_mut(&key) {
            Some(v) => v.push(i),
            None => {
                order.push(key.clone());
                members.insert(key.clone(), vec![i]);
            }
        }
    }
    order
        .into_iter()
        .map(|k| {
            let idx = members.remove(&k).unwrap_or_default();
            let results = group_bys
                .iter()
                .zip(&k)
                .map(|(g, &id)| g.result(id))
                .collect();
            let part = Stream {
                ts: idx.iter().map(|&i| s.ts[i]).collect(),
                values: column::gather(&s.values, &idx),
                group_type: s.group_type,
            };
            (results, part)
        })
        .collect()
}

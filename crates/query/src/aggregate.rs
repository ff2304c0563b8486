//! The 21 aggregators of spec §5, applied to one group's merged stream in JSON order.
//!
//! [`Aggregator::new`] takes the typed [`AggregatorSpec`] a parsed query carries (what
//! each aggregator is, and its checks with KairosDB's 400 texts, live in
//! `kairosdb_model::catalogue`) and fills in the request's defaults;
//! [`Aggregator::apply`] maps a [`Stream`] to a new one. Numeric aggregators read the values as one `f64` slice and
//! write one output column, bucket by bucket, without per-point allocation. The range
//! aggregators share [`crate::range`].

use kairosdb_model::catalogue::{self, AggregatorSpec, FilterOp, RangeKind, ScoreThreshold};
use kairosdb_model::{
    BatchBuilder, GroupTags, GroupType, Order, OutColumn, SeriesData, Storage, Tags, Value,
};

use crate::column::{self, numbers};
use crate::range::Range;
use crate::time::{self, Unit, Zone};
use crate::{Context, QueryError, Stop};

/// One group's points in stream order, and its current group type (`number` / `text`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stream {
    pub ts: Vec<i64>,
    pub values: OutColumn,
    pub group_type: GroupType,
}

/// What `save_as` needs to know about the group it saves.
pub(crate) struct GroupInfo<'a> {
    pub metric: &'a str,
    pub tags: &'a GroupTags,
    /// Tag names of the query's `tag` group-by.
    pub group_by_tags: &'a [String],
}

#[derive(Clone, Debug)]
pub(crate) enum Aggregator {
    Range(Box<Range>),
    Diff,
    Div(f64),
    Filter {
        op: FilterOp,
        threshold: Threshold,
    },
    Rate {
        unit: Unit,
        value: i64,
        zone: Zone,
    },
    Sampler {
        unit: Unit,
        zone: Zone,
    },
    SaveAs(SaveAs),
    Scale(f64),
    Score {
        thresholds: Vec<ScoreThreshold>,
        descending: bool,
    },
    Sma(usize),
    Trim {
        first: bool,
        last: bool,
    },
}

/// Does `op` remove a point that compares with the threshold as `o`?
fn holds(op: FilterOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        FilterOp::Lte => o != Greater,
        FilterOp::Lt => o == Less,
        FilterOp::Gte => o != Less,
        FilterOp::Gt => o == Greater,
        FilterOp::Equal => o == Equal,
        FilterOp::Ne => o != Equal,
    }
}

/// `filter`'s threshold: a JSON number is compared with numeric points, a JSON string
/// with string points; points of the other kind are removed (spec §5.2).
#[derive(Clone, Debug)]
pub(crate) enum Threshold {
    Number(f64),
    /// A string; `numeric` is its value when it reads as a number. Deliberate leniency:
    /// such a threshold also compares numerically with numeric points (KairosDB removes
    /// every numeric point, which is never what a client sending `"10"` means).
    Text {
        text: String,
        numeric: Option<f64>,
    },
    /// Anything else (booleans, objects) removes every point, as in KairosDB.
    Other,
}

impl From<&catalogue::Threshold> for Threshold {
    fn from(t: &catalogue::Threshold) -> Threshold {
        match t {
            catalogue::Threshold::Number(n) => Threshold::Number(*n),
            catalogue::Threshold::Text(s) => Threshold::Text {
                numeric: s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
                text: s.clone(),
            },
            catalogue::Threshold::Other => Threshold::Other,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SaveAs {
    metric: String,
    tags: Vec<(String, String)>,
    ttl: u32,
    add_saved_from: bool,
}

fn zone(time_zone: &Option<String>, ctx: &Context) -> Result<Zone, QueryError> {
    Zone::resolve(time_zone.as_deref().or(ctx.time_zone)).map_err(QueryError::Invalid)
}

impl Aggregator {
    /// The aggregator `spec` asks for, with the request's defaults (query range, time
    /// zone, clock) filled in. Refuses what KairosDB only refuses at run time.
    pub(crate) fn new(spec: &AggregatorSpec, ctx: &Context) -> Result<Aggregator, QueryError> {
        Ok(match spec {
            AggregatorSpec::Range(r) => Aggregator::Range(Box::new(Range {
                kind: r.kind.clone(),
                unit: r.sampling.unit,
                value: r.sampling.value,
                start: r.start_time.unwrap_or(ctx.range.start),
                // `setEndTime`: gaps never run past "now".
                end: r.end_time.unwrap_or(ctx.range.end).min(ctx.now_ms),
                align_sampling: r.align_sampling,
                align_start_time: r.align_start_time,
                align_end_time: r.align_end_time,
                trim: r.trim,
                zone: zone(&r.time_zone, ctx)?,
            })),
            AggregatorSpec::Diff => Aggregator::Diff,
            AggregatorSpec::Div { divisor } => Aggregator::Div(*divisor),
            AggregatorSpec::Filter { op, threshold } => Aggregator::Filter {
                // KairosDB fails with a NullPointerException (500) at run time.
                op: op.ok_or_else(|| {
                    QueryError::Failed(
                        "filter aggregator: filter_op is required (one of 'lte', 'lt', 'gte', 'gt', 'equal', 'ne')".into(),
                    )
                })?,
                threshold: threshold.into(),
            },
            AggregatorSpec::Rate {
                sampling,
                unit,
                time_zone,
            } => {
                let (value, unit) = match (sampling, unit) {
                    (Some(s), _) => (s.value, s.unit),
                    (None, Some(u)) => (1, *u),
                    (None, None) => (1, Unit::Milliseconds),
                };
                Aggregator::Rate {
                    unit,
                    value,
                    zone: zone(time_zone, ctx)?,
                }
            }
            AggregatorSpec::Sampler { unit, time_zone } => Aggregator::Sampler {
                unit: unit.unwrap_or(Unit::Milliseconds),
                zone: zone(time_zone, ctx)?,
            },
            AggregatorSpec::SaveAs {
                metric_name,
                tags,
                ttl,
                add_saved_from,
            } => Aggregator::SaveAs(SaveAs {
                metric: metric_name.clone(),
                tags: tags.clone(),
                ttl: *ttl,
                add_saved_from: *add_saved_from,
            }),
            AggregatorSpec::Scale { factor } => Aggregator::Scale(*factor),
            AggregatorSpec::Score {
                thresholds,
                descending,
            } => Aggregator::Score {
                thresholds: thresholds.clone(),
                descending: *descending,
            },
            AggregatorSpec::Sma { size } => {
                if *size <= 0 {
                    // KairosDB: `checkState(m_size != 0)` fails with a 500.
                    return Err(QueryError::Failed(
                        "sma aggregator: size must be greater than 0".into(),
                    ));
                }
                Aggregator::Sma(usize::try_from(*size).unwrap_or(usize::MAX))
            }
            AggregatorSpec::Trim { first, last } => Aggregator::Trim {
                first: *first,
                last: *last,
            },
        })
    }

    /// The storage read order that lets this aggregator, first in the chain, see only
    /// each series' first (`Asc`) or last (`Desc`) point in the range and still give the
    /// answer it gives over every point: `first`/`last` whose sampling puts the whole
    /// query range into one bucket. `None` for anything else.
    ///
    /// One bucket is checked by running the aggregator itself over two points at the
    /// range's ends: with the bucket origin at or before the range start, buckets are
    /// contiguous, so when those share one, every point in between does too. Merging keeps it exact: a group's merged stream starts with
    /// its smallest timestamp and ends with its largest, ties ordered by value, and
    /// each series' own first or last point is the only one of it that can be there.
    pub(crate) fn edge_order(&self, ctx: &Context) -> Option<Order> {
        let Aggregator::Range(r) = self else {
            return None;
        };
        let order = match r.kind {
            RangeKind::First => Order::Asc,
            RangeKind::Last => Order::Desc,
            _ => return None,
        };
        // A `start_time` after the range start puts points before it into buckets found
        // by rounding toward zero (as KairosDB does), which depend on the stream's first
        // point: `last` stamped with its bucket's start or end would then change when it
        // saw only the series' last points.
        if r.start > ctx.range.start {
            return None;
        }
        let probe = Stream {
            ts: vec![ctx.range.start, ctx.range.end],
            values: OutColumn::Long(vec![0, 0]),
            group_type: GroupType::Number,
        };
        let one_bucket = r.apply(probe, ctx).is_ok_and(|s| s.ts.len() == 1);
        one_bucket.then_some(order)
    }

    /// Does this aggregator apply to a group of this type (spec §5.0 "accepts")?
    pub(crate) fn accepts(&self, group_type: GroupType) -> bool {
        let any = match self {
            Aggregator::Range(r) => matches!(
                r.kind,
                RangeKind::Count | RangeKind::First | RangeKind::Gaps | RangeKind::Last
            ),
            Aggregator::Filter { .. } | Aggregator::SaveAs(_) | Aggregator::Trim { .. } => true,
            _ => false,
        };
        any || group_type == GroupType::Number
    }

    /// [`Range::apply_unmerged`] for a range aggregator (the group's series folded without
    /// merging them); `None` for every other aggregator.
    pub(crate) fn apply_unmerged(
        &self,
        series: &[SeriesData],
        ctx: &Context,
    ) -> Option<Result<Stream, QueryError>> {
        match self {
            Aggregator::Range(r) => r.apply_unmerged(series, ctx),
            _ => None,
        }
    }

    /// A leading `count` over series the storage already counted (`fold.rs`): the
    /// buckets' counts added up.
    pub(crate) fn apply_counted(&self, s: Stream, ctx: &Context) -> Result<Stream, Stop> {
        match self {
            Aggregator::Range(r) => r.apply_counted(s, ctx),
            _ => unreachable!("BUG: only a leading count is folded"),
        }
    }

    /// Applies the aggregator to one group (the caller checked [`Aggregator::accepts`]).
    pub(crate) fn apply(
        &self,
        s: Stream,
        ctx: &Context,
        storage: &dyn Storage,
        group: &GroupInfo,
    ) -> Result<Stream, Stop> {
        let out = |ts: Vec<i64>, values: Vec<f64>| Stream {
            ts,
            values: OutColumn::Double(values),
            group_type: GroupType::Number,
        };
        let applied = match self {
            // Only a range aggregator (`gaps`) may stop at the work limit.
            Aggregator::Range(r) => return r.apply(s, ctx),
            Aggregator::Diff => {
                let v = numbers(&s.values)?;
                let n = v.len().saturating_sub(1);
                let ts = s.ts[1.min(s.ts.len())..].to_vec();
                let values = (0..n).map(|i| v[i + 1] - v[i]).collect();
                Ok(out(ts, values))
            }
            Aggregator::Div(d) => {
                let values = numbers(&s.values)?.iter().map(|x| x / d).collect();
                Ok(out(s.ts, values))
            }
            Aggregator::Scale(f) => {
                let values = numbers(&s.values)?.iter().map(|x| x * f).collect();
                Ok(out(s.ts, values))
            }
            Aggregator::Rate { unit, value, zone } => rate(&s, "rate", |t| {
                time::sampling_duration(zone, *unit, *value, t)
            })
            .map(|(ts, v)| out(ts, v)),
            Aggregator::Sampler { unit, zone } => rate(&s, "sampler", |t| {
                time::sampling_duration(zone, *unit, 1, t)
            })
            .map(|(ts, v)| out(ts, v)),
            Aggregator::Score {
                thresholds,
                descending,
            } => {
                let n = thresholds.len();
                let values = numbers(&s.values)?
                    .iter()
                    .map(|&x| {
                        // Thresholds below x (an inferior threshold equal to x counts too).
                        let score = thresholds
                            .iter()
                            .take_while(|t| x > t.value || (x == t.value && t.inferior))
                            .count();
                        (if *descending { n - score } else { score }) as f64
                    })
                    .collect();
                Ok(out(s.ts, values))
            }
            Aggregator::Sma(size) => {
                let v = numbers(&s.values)?;
                let size = *size;
                if v.len() + 1 < size {
                    return Ok(out(Vec::new(), Vec::new()));
                }
                let skip = size - 1;
                let mut values = Vec::with_capacity(v.len() - skip);
                for i in skip..v.len() {
                    // Summed oldest first, as KairosDB does.
                    let lo = (i + 1).saturating_sub(size);
                    let w = &v[lo..=i];
                    values.push(w.iter().sum::<f64>() / w.len() as f64);
                }
                Ok(out(s.ts[skip..].to_vec(), values))
            }
            Aggregator::Filter { op, threshold } => filter(s, *op, threshold),
            Aggregator::Trim { first, last } => {
                let n = s.ts.len();
                let lo = usize::from(*first).min(n);
                let hi = n.saturating_sub(usize::from(*last)).max(lo);
                Ok(Stream {
                    ts: s.ts[lo..hi].to_vec(),
                    values: column::slice(s.values, lo, hi),
                    group_type: s.group_type,
                })
            }
            Aggregator::SaveAs(save) => {
                save.write(&s, storage, group)?;
                Ok(s)
            }
        };
        Ok(applied?)
    }
}

/// `rate` / `sampler`: one output per consecutive pair, at the later timestamp.
fn rate(
    s: &Stream,
    name: &str,
    duration: impl Fn(i64) -> i64,
) -> Result<(Vec<i64>, Vec<f64>), QueryError> {
    let v = numbers(&s.values)?;
    let n = v.len().saturating_sub(1);
    let mut ts = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let (t0, t1) = (s.ts[i], s.ts[i + 1]);
        if t0 == t1 {
            return Err(QueryError::Failed(format!(
                "The {name} aggregator cannot compute rate for data points with the same time stamp.  You must precede {name} with another aggregator."
            )));
        }
        let delta = if name == "rate" {
            v[i + 1] - v[i]
        } else {
            v[i + 1]
        };
        ts.push(t1);
        values.push(delta / (t1 as f64 - t0 as f64) * duration(t0) as f64);
    }
    Ok((ts, values))
}

fn filter(s: Stream, op: FilterOp, threshold: &Threshold) -> Result<Stream, QueryError> {
    use kairosdb_model::Num;
    // `true` = the point is removed.
    let by_number = |x: f64| -> bool {
        match threshold {
            Threshold::Number(t)
            | Threshold::Text {
                numeric: Some(t), ..
            } => holds(op, x.total_cmp(t)), // `Double.compareTo`: -0.0 < 0.0

            _ => true,
        }
    };
    let by_text = |x: &str| -> bool {
        match threshold {
            Threshold::Text { text, .. } => holds(op, java_compare(x, text)),
            _ => true,
        }
    };
    // A null (from `gaps`) only fails when KairosDB reads its value: against a numeric
    // threshold. Otherwise it is "not type compatible" and removed.
    let null_fails = matches!(
        threshold,
        Threshold::Number(_)
            | Threshold::Text {
                numeric: Some(_),
                ..
            }
    );
    let null = || -> Result<(), QueryError> {
        if null_fails {
            Err(QueryError::Failed(column::GAPS_CHAINED.into()))
        } else {
            Ok(())
        }
    };
    let keep: Vec<usize> = match &s.values {
        OutColumn::Long(v) => (0..v.len()).filter(|&i| !by_number(v[i] as f64)).collect(),
        OutColumn::Double(v) => (0..v.len()).filter(|&i| !by_number(v[i])).collect(),
        OutColumn::Number(v) => {
            let mut keep = Vec::new();
            for (i, x) in v.iter().enumerate() {
                let removed = match *x {
                    Num::Long(l) => by_number(l as f64),
                    Num::Double(d) => by_number(d),
                    Num::Null => {
                        null()?;
                        true
                    }
                };
                if !removed {
                    keep.push(i);
                }
            }
            keep
        }
        OutColumn::Text(v) => (0..v.len()).filter(|&i| !by_text(&v[i])).collect(),
        OutColumn::TextOrNull(v) => {
            let mut keep = Vec::new();
            for (i, x) in v.iter().enumerate() {
                match x {
                    Some(x) if !by_text(x) => keep.push(i),
                    Some(_) => {}
                    None => null()?,
                }
            }
            keep
        }
    };
    Ok(Stream {
        ts: keep.iter().map(|&i| s.ts[i]).collect(),
        values: column::gather(&s.values, &keep),
        group_type: s.group_type,
    })
}

/// Java `String.compareTo`: UTF-16 code unit order.
fn java_compare(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

impl Aggregator {
    /// Does the aggregator write to storage (`save_as`)?
    pub(crate) fn writes(&self) -> bool {
        matches!(self, Aggregator::SaveAs(_))
    }
}

impl SaveAs {
    /// Re-ingests the group's points as `metric_name` (spec §5.2 `save_as`): tags are the
    /// `tags` property, `saved_from` (unless disabled) and every `tag` group-by tag that
    /// has exactly one value in the group. Null points (from `gaps`) are not saved.
    fn write(
        &self,
        s: &Stream,
        storage: &dyn Storage,
        group: &GroupInfo,
    ) -> Result<(), QueryError> {
        if s.ts.is_empty() || self.metric.is_empty() {
            return Ok(());
        }
        let mut tags = Tags::new();
        for (k, v) in &self.tags {
            tags.insert(k.clone(), v.clone());
        }
        if self.add_saved_from {
            tags.insert("saved_from".into(), group.metric.to_owned());
        }
        for name in group.group_by_tags {
            if let [value] = group.tags.values(name)[..] {
                tags.insert(name.clone(), value.to_owned());
            }
        }
        let mut b = BatchBuilder::new();
        for (i, &t) in s.ts.iter().enumerate() {
            use kairosdb_model::Num;
            let value = match &s.values {
                OutColumn::Long(v) => Value::Long(v[i]),
                OutColumn::Double(v) => Value::Double(v[i]),
                OutColumn::Number(v) => match v[i] {
                    Num::Long(l) => Value::Long(l),
                    Num::Double(d) => Value::Double(d),
                    Num::Null => continue,
                },
                OutColumn::Text(v) => Value::String(v[i].clone()),
                OutColumn::TextOrNull(v) => match &v[i] {
                    Some(x) => Value::String(x.clone()),
                    None => continue,
                },
            };
            b.push(&self.metric, &tags, self.ttl, t, value);
        }
        storage.write(&b.finish())?;
        Ok(())
    }
}

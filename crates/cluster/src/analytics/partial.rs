//! Partial aggregates that merge exactly: what a worker's `/compute` answers for its
//! share of the series, and what the control node combines into `/aggregate`'s and
//! `/analytics`' answers.
//!
//! A [`Partial`] holds, for one bucket of one group, the count, sum, minimum and maximum
//! of the values, and the values themselves when a percentile is asked. Merging adds
//! counts and sums, takes the smaller minimum and the larger maximum, and concatenates
//! the values, so the merged partial is the one a single node would have computed over
//! all the points: the average is `Σsum / Σcount`, never an average of averages, and a
//! percentile is computed over every value (exact, with KairosDB's interpolation; no
//! sketch). Sums are exact whenever the total is representable in an `f64`; otherwise
//! they differ from a one-node sum by the rounding of a different addition order.
//!
//! Not here: which workers answer for which partitions (`ClusterStorage::compute`),
//! turning merged partials into rows (`report.rs`).

use std::collections::BTreeMap;

use kairosdb_model::{
    Coverage, Points, Read, SeriesData, SeriesQuery, Shard, Storage, StorageError, TimeRange,
};
use serde::{Deserialize, Serialize};

use super::params::{bucket_start, Agg, AggregateQuery};
use crate::wire::{self, Filter, Malformed};

/// The aggregates of one bucket of one group, mergeable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Every value, in no order; empty unless percentiles were asked for.
    pub values: Vec<f64>,
}

impl Partial {
    /// A partial of one value.
    pub fn of(v: f64, keep_values: bool) -> Partial {
        Partial {
            count: 1,
            sum: v,
            min: v,
            max: v,
            values: if keep_values { vec![v] } else { Vec::new() },
        }
    }

    pub fn add(&mut self, v: f64, keep_values: bool) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if keep_values {
            self.values.push(v);
        }
    }

    /// Folds `other` in: the partial of both sets of values.
    pub fn merge(&mut self, other: &Partial) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.values.extend_from_slice(&other.values);
    }

    /// The value of `agg` over this partial's points (a percentile needs the values).
    pub fn value(&self, agg: &Agg) -> f64 {
        match agg {
            Agg::Avg => self.sum / self.count as f64,
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Sum => self.sum,
            Agg::Count => self.count as f64,
            Agg::Percentile { p, .. } => {
                let mut sorted = self.values.clone();
                sorted.sort_unstable_by(f64::total_cmp);
                kairosdb_query::percentile_sorted(&sorted, *p)
            }
        }
    }
}

/// What to compute: the body of a worker's `POST /internal/v1/compute` (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputeRequest {
    pub key: String,
    pub filter: Filter,
    /// Inclusive, epoch milliseconds.
    pub start: i64,
    /// Inclusive.
    pub end: i64,
    /// Bucket width (epoch-aligned buckets); `None`: one bucket, stamped `start`.
    pub window_ms: Option<i64>,
    /// The tags whose values make the groups.
    pub group_by: Vec<String>,
    /// Keep the values (for percentiles).
    pub keep_values: bool,
    /// Most points the read may return (`query_max_points`).
    pub max_points: Option<u64>,
    /// `(partition count, wanted partitions)`: only these partitions' series.
    pub shard: Option<(u32, Vec<u32>)>,
}

impl ComputeRequest {
    /// The partials `q` needs: its range (from the first instant of its rolling window)
    /// over all partitions.
    pub fn new(q: &AggregateQuery, max_points: Option<u64>) -> ComputeRequest {
        ComputeRequest {
            key: q.key.clone(),
            filter: wire::filter_to_wire(&q.filter),
            start: q.read_start(),
            end: q.to - 1,
            window_ms: q.window.as_ref().map(|w| w.ms),
            group_by: q.group_by.clone(),
            keep_values: q.needs_values(),
            max_points,
            shard: None,
        }
    }

    /// The storage read it makes.
    pub fn series_query(&self) -> Result<SeriesQuery, Malformed> {
        if self.window_ms.is_some_and(|w| w <= 0) {
            return Err(Malformed(format!("window of {:?} ms", self.window_ms)));
        }
        Ok(SeriesQuery {
            max_points: self.max_points,
            shard: self.shard.clone().map(|(n, wanted)| Shard::new(n, wanted)),
            ..SeriesQuery::new(
                self.key.clone(),
                wire::filter_from_wire(self.filter.clone())?,
                TimeRange::new(self.start, self.end),
            )
        })
    }

    fn bucket(&self, t: i64) -> i64 {
        match self.window_ms {
            Some(w) => bucket_start(t, w),
            None => self.start,
        }
    }
}

/// One group's partials, by bucket start, ascending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPartials {
    /// The values of the `group_by` tags, in their order (`None`: the series has no such
    /// tag).
    pub group: Vec<Option<String>>,
    pub buckets: Vec<(i64, Partial)>,
}

/// Every group's partials, groups sorted by their tag values: `/compute`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Partials {
    pub groups: Vec<GroupPartials>,
}

/// Groups → bucket start → partial, while folding.
type Folding = BTreeMap<Vec<Option<String>>, BTreeMap<i64, Partial>>;

impl Partials {
    /// The points folded in, over every group and bucket.
    pub fn point_count(&self) -> u64 {
        self.groups
            .iter()
            .flat_map(|g| &g.buckets)
            .map(|(_, p)| p.count)
            .sum()
    }

    fn from_folding(folding: Folding) -> Partials {
        let groups = folding
            .into_iter()
            .map(|(group, buckets)| GroupPartials {
                group,
                buckets: buckets.into_iter().collect(),
            })
            .collect();
        Partials { groups }
    }
}

/// The partials of `series` (numbers only: long and double points; text and values that
/// are not finite are left out).
pub fn fold(series: &[SeriesData], req: &ComputeRequest) -> Partials {
    let mut folding = Folding::new();
    for s in series {
        let group: Vec<Option<String>> = req
            .group_by
            .iter()
            .map(|name| s.key.tags.get(name).map(str::to_owned))
            .collect();
        let buckets = folding.entry(group).or_default();
        let mut add = |t: i64, v: f64| {
            if !v.is_finite() {
                return;
            }
            match buckets.entry(req.bucket(t)) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Partial::of(v, req.keep_values));
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    e.get_mut().add(v, req.keep_values)
                }
            }
        };
        match &s.points {
            Points::Double { ts, values } => ts.iter().zip(values).for_each(|(t, v)| add(*t, *v)),
            Points::Long { ts, values } => {
                ts.iter().zip(values).for_each(|(t, v)| add(*t, *v as f64))
            }
            Points::String { .. } => {}
        }
    }
    folding.retain(|_, buckets| !buckets.is_empty());
    Partials::from_folding(folding)
}

/// The partials of every answer together: per group and bucket, one [`Partial::merge`].
pub fn merge(answers: impl IntoIterator<Item = Partials>) -> Partials {
    let mut folding = Folding::new();
    for answer in answers {
        for g in answer.groups {
            let buckets = folding.entry(g.group).or_default();
            for (start, partial) in g.buckets {
                match buckets.entry(start) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(partial);
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        e.get_mut().merge(&partial)
                    }
                }
            }
        }
    }
    Partials::from_folding(folding)
}

/// Computes `req` over `storage` (a worker's engine, or any store): one read through the
/// storage seam, then [`fold`]. The coverage is the read's, when it was partial.
pub fn compute(
    storage: &dyn Storage,
    req: &ComputeRequest,
) -> Result<(Partials, Option<Coverage>), StorageError> {
    let query = req
        .series_query()
        .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
    let (series, coverage) = match storage.query(&query)? {
        Read::Complete(series) => (series, None),
        Read::Partial { series, coverage } => (series, Some(coverage)),
        Read::OverWorkLimit => {
            panic!("BUG: a read without a work limit stopped at one")
        }
    };
    Ok((fold(&series, req), coverage))
}

#[cfg(test)]
mod tests;

//! [`WriteBatch`]: the columnar unit of ingest, from protocol parsers to storage.
//!
//! Points are grouped per series and per TTL so storage can append whole
//! columns without per-point dispatch.

use crate::series::{DataType, SeriesKey};

/// Timestamps (ms since epoch) and values of one series, as parallel columns.
/// Invariant: `ts.len() == values.len()`.
#[derive(Clone, Debug, PartialEq)]
pub enum Points {
    Long { ts: Vec<i64>, values: Vec<i64> },
    Double { ts: Vec<i64>, values: Vec<f64> },
    String { ts: Vec<i64>, values: Vec<String> },
}

impl Points {
    pub fn empty(data_type: DataType) -> Points {
        match data_type {
            DataType::Long => Points::Long {
                ts: Vec::new(),
                values: Vec::new(),
            },
            DataType::Double => Points::Double {
                ts: Vec::new(),
                values: Vec::new(),
            },
            DataType::String => Points::String {
                ts: Vec::new(),
                values: Vec::new(),
            },
        }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Points::Long { .. } => DataType::Long,
            Points::Double { .. } => DataType::Double,
            Points::String { .. } => DataType::String,
        }
    }

    pub fn timestamps(&self) -> &[i64] {
        match self {
            Points::Long { ts, .. } | Points::Double { ts, .. } | Points::String { ts, .. } => ts,
        }
    }

    pub fn len(&self) -> usize {
        self.timestamps().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Points for one series with one TTL.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    pub key: SeriesKey,
    /// Time to live in seconds, counted from the moment the point is written;
    /// 0 = no per-point TTL (the store applies its default, if any). (spec §2.5)
    pub ttl_secs: u32,
    pub points: Points,
}

/// A batch of points for many series. Storage writes a batch atomically with
/// respect to acknowledgement: when `write` returns `Ok`, every point is durable
/// according to the store's sync policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    pub series: Vec<SeriesPoints>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Total number of points in the batch.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.point_count() == 0
    }
}

/// Accumulates single points into a [`WriteBatch`], grouping them per (series, TTL).
/// Used by the JSON and telnet parsers.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    batch: WriteBatch,
    index: std::collections::HashMap<(SeriesKey, u32), usize>,
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// Adds one point. The value's type decides the series' data type.
    pub fn push(
        &mut self,
        metric: &str,
        tags: &crate::Tags,
        ttl_secs: u32,
        ts: i64,
        value: crate::Value,
    ) {
        let key = SeriesKey::new(metric, value.data_type(), tags.clone());
        let slot = match self.index.get(&(key.clone(), ttl_secs)) {
            Some(&i) => i,
            None => {
                let i = self.batch.series.len();
                self.batch.series.push(SeriesPoints {
                    points: Points::empty(key.data_type),
                    key: key.clone(),
                    ttl_secs,
                });
                self.index.insert((key, ttl_secs), i);
                i
            }
        };
        match (&mut self.batch.series[slot].points, value) {
            (Points::Long { ts: t, values }, crate::Value::Long(v)) => {
                t.push(ts);
                values.push(v);
            }
            (Points::Double { ts: t, values }, crate::Value::Double(v)) => {
                t.push(ts);
                values.push(v);
            }
            (Points::String { ts: t, values }, crate::Value::String(v)) => {
                t.push(ts);
                values.push(v);
            }
            _ => panic!("BUG: series data type and value type disagree"),
        }
    }

    pub fn point_count(&self) -> usize {
        self.batch.point_count()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.series.is_empty()
    }

    pub fn finish(self) -> WriteBatch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Tags, Value};

    #[test]
    fn builder_groups_by_series_type_and_ttl() {
        let tags = Tags::from_pairs([("host", "a")]);
        let mut b = BatchBuilder::new();
        b.push("m", &tags, 0, 1, Value::Long(1));
        b.push("m", &tags, 0, 2, Value::Double(2.5));
        b.push("m", &tags, 0, 3, Value::Long(3));
        b.push("m", &tags, 60, 4, Value::Long(4));
        let batch = b.finish();
        assert_eq!(batch.series.len(), 3);
        assert_eq!(batch.point_count(), 4);
        assert_eq!(
            batch.series[0].points,
            Points::Long {
                ts: vec![1, 3],
                values: vec![1, 3]
            }
        );
        assert_eq!(batch.series[2].ttl_secs, 60);
    }
}

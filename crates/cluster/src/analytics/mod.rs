//! The analytics plan's data and computations (issue 19; the API is described in
//! docs/cluster.md, "The analytics plan's API"). Pure: no HTTP, and no I/O but the
//! `Storage` seam that [`partial::compute`] reads through.
//!
//! * [`metric`]: a plan metric `{key, value, timestamp, tags}`, which is one point of a
//!   KairosDB series (metric name = key), in its JSON and bincode forms.
//! * [`params`]: the parameters of `/aggregate`, `/analytics` and `/compute`, checked.
//! * [`partial`]: mergeable partial aggregates (count, sum, min, max and, for percentiles,
//!   the values), what a worker's `/compute` answers, and their exact merge.
//! * [`report`]: merged partials → `/aggregate`'s rows (rolling window, aggregates,
//!   `order_by`, `limit`).
//! * [`codec`]: the bincode layout of the binary bodies.
//!
//! Not here: the HTTP handlers (the server's `plan` module); asking every partition of
//! one replica and merging (`ClusterStorage::compute`).

pub mod codec;
pub mod metric;
pub mod params;
pub mod partial;
pub mod report;

use serde::{Deserialize, Serialize};

pub use metric::PlanMetric;
pub use params::{AggregateQuery, Endpoint, ParamError};
pub use partial::{ComputeRequest, Partial, Partials};

/// `GET /analytics`' answer, in JSON and in bincode (this field order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsAnswer {
    /// The mean of every value of the metric in the range (`Σsum / Σcount`).
    pub average: f64,
    /// Some partitions had no worker that answered: the average is over the rest.
    pub is_partial: bool,
    /// Workers the answer needed (1 on a node that is not a control node).
    pub total_nodes: u32,
    /// Workers that answered.
    pub responding_nodes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytics_answer_is_17_bytes_of_bincode_and_round_trips_in_both_forms() {
        let a = AnalyticsAnswer {
            average: 2.5,
            is_partial: true,
            total_nodes: 3,
            responding_nodes: 2,
        };
        let bytes = codec::encode(&a);
        let mut expected = 2.5f64.to_le_bytes().to_vec();
        expected.push(1);
        expected.extend_from_slice(&3u32.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(codec::decode::<AnalyticsAnswer>(&bytes, 64).unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"average":2.5,"is_partial":true,"total_nodes":3,"responding_nodes":2}"#
        );
        assert_eq!(serde_json::from_str::<AnalyticsAnswer>(&json).unwrap(), a);
    }
}

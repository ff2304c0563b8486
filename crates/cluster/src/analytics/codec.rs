//! The bincode encoding of the analytics plan's binary bodies: `/insert`'s
//! `Vec<PlanMetric>`, `/analytics`' answer and the partial aggregates `/compute` answers.
//!
//! The layout is bincode 1.x's default (`bincode::serialize`): integers and floats
//! little-endian at their full width, a `String`, `Vec` or map as a `u64` length and its
//! items, a `bool` as one byte, an `Option` as a `0`/`1` byte and the value. bincode 2's
//! `config::legacy()` writes the same bytes, so a client on either version talks to us
//! (the layout of each body is drawn in docs/cluster.md). Decoding refuses trailing bytes
//! and stops at a byte limit, so a forged length cannot make it allocate more than the
//! body's size.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A body that is not the bincode of what it should be.
#[derive(Debug, thiserror::Error)]
#[error("invalid bincode body: {0}")]
pub struct CodecError(String);

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

/// `value` in the plan's bincode layout.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    options()
        .serialize(value)
        .unwrap_or_else(|e| panic!("BUG: a plan type did not serialise: {e}"))
}

/// Decodes all of `bytes`, reading at most `limit` bytes of lengths and values.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: u64) -> Result<T, CodecError> {
    options()
        .reject_trailing_bytes()
        .with_limit(limit)
        .deserialize(bytes)
        .map_err(|e| CodecError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analytics::metric::PlanMetric;

    #[test]
    fn a_metric_is_laid_out_as_docs_cluster_md_draws_it() {
        let m = PlanMetric {
            key: "cpu".into(),
            value: 1.5,
            timestamp: 1_700_000_000_000,
            tags: BTreeMap::from([("host".to_string(), "a".to_string())]),
        };
        let mut expected = Vec::new();
        expected.extend_from_slice(&1u64.to_le_bytes()); // one metric
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"cpu");
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes()); // one tag
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.extend_from_slice(b"host");
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(b"a");
        let batch = vec![m];
        assert_eq!(encode(&batch), expected);
        assert_eq!(
            decode::<Vec<PlanMetric>>(&expected, 1 << 20).unwrap(),
            batch
        );
    }

    #[test]
    fn truncated_padded_and_forged_bodies_are_refused() {
        let batch = vec![PlanMetric {
            key: "k".into(),
            value: -0.0,
            timestamp: -5,
            tags: BTreeMap::new(),
        }];
        let body = encode(&batch);
        for cut in 0..body.len() {
            assert!(
                decode::<Vec<PlanMetric>>(&body[..cut], 1 << 20).is_err(),
                "{cut}"
            );
        }
        let mut padded = body.clone();
        padded.push(0);
        assert!(decode::<Vec<PlanMetric>>(&padded, 1 << 20).is_err());
        // A count of 2^60 metrics in a 16-byte body: refused, not allocated.
        let mut forged = (1u64 << 60).to_le_bytes().to_vec();
        forged.extend_from_slice(&[0; 8]);
        assert!(decode::<Vec<PlanMetric>>(&forged, 16).is_err());
    }
}

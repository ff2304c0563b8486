//! A record's id: its point, named (docs/telemetry.md, "Ids"). The id is the URL-safe
//! base64 (no padding) of
//!
//! ```text
//! u8 version = 1 | i64 timestamp (big-endian) | u16 len | metric name
//!   | u16 tag count | tag count × (u16 len | name | u16 len | value)     (UTF-8, sorted by name)
//! ```
//!
//! so it needs no index, survives restarts and names exactly one point: a lookup, update or
//! delete by id touches that series at that time and nothing else. Clients treat it as
//! opaque. A record moved by an update keeps its first id (the server's redirects).
//!
//! Not here: the redirects of moved records (the server's `telemetry` module).

use base64::Engine as _;
use kairosdb_model::{SeriesKey, Tags};

const VERSION: u8 = 1;

/// A record's point: series (metric and tags) and time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    pub name: String,
    pub tags: Tags,
    pub timestamp: i64,
}

impl RecordId {
    pub fn of(key: &SeriesKey, timestamp: i64) -> RecordId {
        RecordId {
            name: key.metric.clone(),
            tags: key.tags.clone(),
            timestamp,
        }
    }

    /// The id as clients see it.
    pub fn encode(&self) -> String {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put(&mut out, &self.name);
        out.extend_from_slice(&(self.tags.len() as u16).to_be_bytes());
        for (name, value) in self.tags.iter() {
            put(&mut out, name);
            put(&mut out, value);
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// The id a client sent; `None` when it is not one of ours.
    pub fn decode(id: &str) -> Option<RecordId> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .ok()?;
        let mut r = Reader(&bytes);
        if r.take(1)? != [VERSION] {
            return None;
        }
        let timestamp = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let name = r.string()?;
        let count = r.u16()?;
        let mut pairs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            pairs.push((r.string()?, r.string()?));
        }
        let tags = Tags::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let canonical = r.0.is_empty() && tags.len() == pairs.len() && !name.is_empty();
        canonical.then_some(RecordId {
            name,
            tags,
            timestamp,
        })
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(name: &str, tags: &[(&str, &str)], timestamp: i64) -> RecordId {
        RecordId {
            name: name.into(),
            tags: Tags::from_pairs(tags.iter().copied()),
            timestamp,
        }
    }

    #[test]
    fn the_bytes_of_an_id_are_pinned() {
        // Ids are stored by clients: a change of format breaks their links. 01 | ts
        // 00 00 01 8f 34 06 9e 00 | 00 03 "cpu" | 00 01 | 00 04 "host" | 00 01 "a".
        let a = id("cpu", &[("host", "a")], 1_714_564_800_000);
        assert_eq!(a.encode(), "AQAAAY80Bp4AAANjcHUAAQAEaG9zdAABYQ");
        assert_eq!(RecordId::decode(&a.encode()), Some(a));
    }

    #[test]
    fn what_is_not_an_id_is_refused() {
        // Empty, not base64, too short, version 2, trailing bytes, an empty name.
        for bad in [
            "",
            "!!",
            "AQ",
            "AgAAAY80Bp4AAANjcHUAAA",
            "AQAAAY80Bp4AAANjcHUAAAA",
            "AQAAAY80Bp4AAAAAAA",
        ] {
            assert_eq!(RecordId::decode(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_id_decodes_to_its_point(
            name in "[a-z.]{1,12}",
            tags in proptest::collection::btree_map("[a-z]{1,5}", "[^\u{0}]{1,8}", 0..4),
            timestamp in any::<i64>(),
        ) {
            let tags = Tags::from_pairs(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let original = RecordId { name, tags, timestamp };
            let encoded = original.encode();
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(RecordId::decode(&encoded), Some(original));
        }
    }
}

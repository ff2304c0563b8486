//! [`WriteBatch`]: the columnar unit of ingest, from protocol parsers to storage.
//!
//! Points are grouped per series and per TTL so storage can append whole
//! columns without per-point dispatch.

use crate::series::{DataType, SeriesKey, Value};

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

    /// The points at `idx` (indexes into these, in the order given).
    pub fn pick(&self, idx: &[usize]) -> Points {
        match self {
            Points::Long { ts, values } => Points::Long {
                ts: idx.iter().map(|&i| ts[i]).collect(),
                values: idx.iter().map(|&i| values[i]).collect(),
            },
            Points::Double { ts, values } => Points::Double {
                ts: idx.iter().map(|&i| ts[i]).collect(),
                values: idx.iter().map(|&i| values[i]).collect(),
            },
            Points::String { ts, values } => Points::String {
                ts: idx.iter().map(|&i| ts[i]).collect(),
                values: idx.iter().map(|&i| values[i].clone()).collect(),
            },
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

    /// The value at `i` (panics when out of range, like slice indexing).
    pub fn value(&self, i: usize) -> Value {
        match self {
            Points::Long { values, .. } => Value::Long(values[i]),
            Points::Double { values, .. } => Value::Double(values[i]),
            Points::String { values, .. } => Value::String(values[i].clone()),
        }
    }

    /// Appends one point. A value of another type than the columns' is not appended
    /// and `false` is returned.
    pub fn push(&mut self, t: i64, value: Value) -> bool {
        match (self, value) {
            (Points::Long { ts, values }, Value::Long(v)) => {
                ts.push(t);
                values.push(v);
            }
            (Points::Double { ts, values }, Value::Double(v)) => {
                ts.push(t);
                values.push(v);
            }
            (Points::String { ts, values }, Value::String(v)) => {
                ts.push(t);
                values.push(v);
            }
            _ => return false,
        }
        true
    }

    /// Keeps the first `n` points.
    pub fn truncate(&mut self, n: usize) {
        match self {
            Points::Long { ts, values } => {
                ts.truncate(n);
                values.truncate(n);
            }
            Points::Double { ts, values } => {
                ts.truncate(n);
                values.truncate(n);
            }
            Points::String { ts, values } => {
                ts.truncate(n);
                values.truncate(n);
            }
        }
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

/// Handle of one (series, TTL) inside a [`BatchBuilder`], returned by
/// [`BatchBuilder::slot`] / [`BatchBuilder::slot_sorted`]. Valid only for the builder
/// that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesSlot(u32);

impl SeriesSlot {
    /// Index of the series in [`WriteBatch::series`] once the builder is finished.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Accumulates points into a [`WriteBatch`], grouping them per (series, TTL).
/// Used by the JSON and telnet parsers.
///
/// Speed: a series is identified by a canonical byte encoding of (type, TTL, metric,
/// sorted tags) built in a reused scratch buffer and hashed once (xxh3, per-builder
/// random seed); a hit costs one hash and one `memcmp`, with no `SeriesKey` clone or
/// allocation. Parsers resolve a [`SeriesSlot`] once per metric object / line and then
/// push values straight into the typed columns.
#[derive(Debug)]
pub struct BatchBuilder {
    batch: WriteBatch,
    /// Canonical key bytes of every slot, concatenated; slot `i` is
    /// `key_arena[key_ends[i-1]..key_ends[i]]`.
    key_arena: Vec<u8>,
    key_ends: Vec<usize>,
    /// Hash → first slot with that hash; further slots chain through `next`.
    heads: std::collections::HashMap<u64, u32, BuildIdentity>,
    next: Vec<u32>,
    seed: u64,
    scratch: Vec<u8>,
    /// Caller-keyed shortcut to slots (see [`BatchBuilder::memo_slot`]): hash → index
    /// in `memo_entries`.
    memo: std::collections::HashMap<u64, u32, BuildIdentity>,
    memo_entries: Vec<MemoEntry>,
    memo_arena: Vec<u8>,
    /// The entry of the last memo hit or insert, or [`NO_SLOT`].
    memo_last: u32,
}

/// One key remembered by [`BatchBuilder::memo_insert`].
#[derive(Clone, Copy, Debug)]
struct MemoEntry {
    slot: u32,
    /// The key's parts, each behind its `u32` length, are `memo_arena[start..end]`.
    start: usize,
    end: usize,
    /// The entry looked up right after this one the last time, or [`NO_SLOT`].
    next: u32,
}

const NO_SLOT: u32 = u32::MAX;

impl Default for BatchBuilder {
    fn default() -> BatchBuilder {
        use std::hash::BuildHasher;
        // A per-builder random seed keeps hash flooding of one batch impractical.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x6b61_6972_6f73u64);
        BatchBuilder {
            batch: WriteBatch::default(),
            key_arena: Vec::new(),
            key_ends: Vec::new(),
            heads: std::collections::HashMap::default(),
            next: Vec::new(),
            seed,
            scratch: Vec::with_capacity(256),
            memo: std::collections::HashMap::default(),
            memo_entries: Vec::new(),
            memo_arena: Vec::new(),
            memo_last: NO_SLOT,
        }
    }
}

/// The keys of `BatchBuilder::heads` are already xxh3 hashes.
#[derive(Clone, Copy, Debug, Default)]
struct BuildIdentity;

impl std::hash::BuildHasher for BuildIdentity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[inline]
fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
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
        let slot = self.slot(metric, value.data_type(), tags, ttl_secs);
        self.push_value(slot, ts, value);
    }

    /// Finds or creates the slot of (metric, data type, tags, TTL).
    pub fn slot(
        &mut self,
        metric: &str,
        data_type: DataType,
        tags: &crate::Tags,
        ttl_secs: u32,
    ) -> SeriesSlot {
        self.slot_of(metric, data_type, tags.iter(), ttl_secs)
    }

    /// Like [`BatchBuilder::slot`] for borrowed tags. `tags` must be sorted by name
    /// (byte order) with unique names, as [`crate::Tags`] keeps them.
    pub fn slot_sorted<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        metric: &str,
        data_type: DataType,
        tags: &[(K, V)],
        ttl_secs: u32,
    ) -> SeriesSlot {
        debug_assert!(
            tags.windows(2).all(|w| w[0].0.as_ref() < w[1].0.as_ref()),
            "BUG: tags passed to slot_sorted are not sorted and unique"
        );
        let tags = tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
        self.slot_of(metric, data_type, tags, ttl_secs)
    }

    /// [`BatchBuilder::slot`] for tags sorted by name with unique names.
    fn slot_of<'t>(
        &mut self,
        metric: &str,
        data_type: DataType,
        tags: impl ExactSizeIterator<Item = (&'t str, &'t str)> + Clone,
        ttl_secs: u32,
    ) -> SeriesSlot {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        key.push(data_type.code());
        key.extend_from_slice(&ttl_secs.to_le_bytes());
        put_str(&mut key, metric);
        key.extend_from_slice(&(tags.len() as u32).to_le_bytes());
        for (k, v) in tags.clone() {
            put_str(&mut key, k);
            put_str(&mut key, v);
        }
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&key, self.seed);
        let mut cur = self.heads.get(&hash).copied().unwrap_or(NO_SLOT);
        let head = cur;
        while cur != NO_SLOT {
            let i = cur as usize;
            let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
            if self.key_arena[start..self.key_ends[i]] == key[..] {
                self.scratch = key;
                return SeriesSlot(cur);
            }
            cur = self.next[i];
        }
        let i = self.batch.series.len();
        assert!(
            i < NO_SLOT as usize,
            "BUG: more than 2^32-1 series in one batch"
        );
        let tags = crate::Tags::from_sorted_unique(tags);
        self.batch.series.push(SeriesPoints {
            key: SeriesKey::new(metric, data_type, tags),
            ttl_secs,
            points: Points::empty(data_type),
        });
        self.key_arena.extend_from_slice(&key);
        self.key_ends.push(self.key_arena.len());
        self.next.push(head);
        self.heads.insert(hash, i as u32);
        self.scratch = key;
        SeriesSlot(i as u32)
    }

    fn memo_hash(&self, data_type: DataType, key: &[&[u8]]) -> u64 {
        let mut h = self.seed ^ u64::from(data_type.code());
        for part in key {
            h = xxhash_rust::xxh3::xxh3_64_with_seed(part, h ^ part.len() as u64);
        }
        h
    }

    /// Returns the slot remembered with [`BatchBuilder::memo_insert`] under `key` (opaque
    /// byte strings chosen by the caller, e.g. a telnet line's raw metric and tag text)
    /// and `data_type`, skipping tag parsing, sorting and key building on repeats.
    ///
    /// Collectors send their series in the same order every round, so the key that
    /// followed the previous one last time is compared first, byte for byte, and the
    /// hash is computed only when that guess is wrong (hashing ~180 bytes of tag text
    /// and probing the table were 11 % of telnet ingest CPU, perf, 2026-12-07).
    pub fn memo_slot(&mut self, data_type: DataType, key: &[&[u8]]) -> Option<SeriesSlot> {
        let last = self.memo_last as usize;
        let guess = self.memo_entries.get(last).map_or(NO_SLOT, |e| e.next);
        if self.memo_matches(guess, data_type, key) {
            self.memo_last = guess;
            return Some(SeriesSlot(self.memo_entries[guess as usize].slot));
        }
        let found = *self.memo.get(&self.memo_hash(data_type, key))?;
        if !self.memo_matches(found, data_type, key) {
            return None;
        }
        self.memo_follow(found);
        Some(SeriesSlot(self.memo_entries[found as usize].slot))
    }

    /// Whether memo entry `e` exists and holds `key` for a series of `data_type`.
    fn memo_matches(&self, e: u32, data_type: DataType, key: &[&[u8]]) -> bool {
        let Some(entry) = self.memo_entries.get(e as usize) else {
            return false;
        };
        if self.slot_type(SeriesSlot(entry.slot)) != data_type {
            return false;
        }
        let mut stored = &self.memo_arena[entry.start..entry.end];
        for part in key {
            let Some((len, rest)) = stored.split_first_chunk::<4>() else {
                return false;
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len != part.len() || rest.get(..len) != Some(*part) {
                return false;
            }
            stored = &rest[len..];
        }
        stored.is_empty()
    }

    /// Makes `e` the guess after the previous entry, and the previous entry for the next.
    fn memo_follow(&mut self, e: u32) {
        if let Some(last) = self.memo_entries.get_mut(self.memo_last as usize) {
            last.next = e;
        }
        self.memo_last = e;
    }

    /// Remembers `slot` under `key` and `data_type` for [`BatchBuilder::memo_slot`].
    /// The caller guarantees that equal keys always mean the same series, and `slot`
    /// is of `data_type`.
    pub fn memo_insert(&mut self, data_type: DataType, key: &[&[u8]], slot: SeriesSlot) {
        debug_assert_eq!(self.slot_type(slot), data_type);
        let e = u32::try_from(self.memo_entries.len()).unwrap_or(NO_SLOT);
        if e == NO_SLOT {
            return; // past 2^32 - 1 keys the memo stops growing; lookups still work
        }
        let h = self.memo_hash(data_type, key);
        let start = self.memo_arena.len();
        for part in key {
            self.memo_arena
                .extend_from_slice(&(part.len() as u32).to_le_bytes());
            self.memo_arena.extend_from_slice(part);
        }
        self.memo_entries.push(MemoEntry {
            slot: slot.0,
            start,
            end: self.memo_arena.len(),
            next: NO_SLOT,
        });
        self.memo.insert(h, e);
        self.memo_follow(e);
    }

    /// Data type of a slot's series.
    pub fn slot_type(&self, slot: SeriesSlot) -> DataType {
        self.batch.series[slot.index()].key.data_type
    }

    /// Appends a value of the slot's type. Panics if the type differs (a caller bug).
    pub fn push_value(&mut self, slot: SeriesSlot, ts: i64, value: crate::Value) {
        match value {
            crate::Value::Long(v) => self.push_long(slot, ts, v),
            crate::Value::Double(v) => self.push_double(slot, ts, v),
            crate::Value::String(v) => self.push_string(slot, ts, v),
        }
    }

    #[inline]
    pub fn push_long(&mut self, slot: SeriesSlot, ts: i64, value: i64) {
        match &mut self.batch.series[slot.index()].points {
            Points::Long { ts: t, values } => {
                t.push(ts);
                values.push(value);
            }
            _ => panic!("BUG: push_long on a series that is not long"),
        }
    }

    #[inline]
    pub fn push_double(&mut self, slot: SeriesSlot, ts: i64, value: f64) {
        match &mut self.batch.series[slot.index()].points {
            Points::Double { ts: t, values } => {
                t.push(ts);
                values.push(value);
            }
            _ => panic!("BUG: push_double on a series that is not double"),
        }
    }

    #[inline]
    pub fn push_string(&mut self, slot: SeriesSlot, ts: i64, value: String) {
        match &mut self.batch.series[slot.index()].points {
            Points::String { ts: t, values } => {
                t.push(ts);
                values.push(value);
            }
            _ => panic!("BUG: push_string on a series that is not string"),
        }
    }

    /// Appends whole columns to a long series (`ts.len() == values.len()`).
    pub fn extend_long(&mut self, slot: SeriesSlot, ts: &[i64], values: &[i64]) {
        assert_eq!(ts.len(), values.len(), "BUG: column lengths differ");
        match &mut self.batch.series[slot.index()].points {
            Points::Long { ts: t, values: v } => {
                t.extend_from_slice(ts);
                v.extend_from_slice(values);
            }
            _ => panic!("BUG: extend_long on a series that is not long"),
        }
    }

    /// Appends whole columns to a double series (`ts.len() == values.len()`).
    pub fn extend_double(&mut self, slot: SeriesSlot, ts: &[i64], values: &[f64]) {
        assert_eq!(ts.len(), values.len(), "BUG: column lengths differ");
        match &mut self.batch.series[slot.index()].points {
            Points::Double { ts: t, values: v } => {
                t.extend_from_slice(ts);
                v.extend_from_slice(values);
            }
            _ => panic!("BUG: extend_double on a series that is not double"),
        }
    }

    /// Number of distinct (series, TTL) slots so far.
    pub fn series_count(&self) -> usize {
        self.batch.series.len()
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
    fn points_push_value_and_truncate() {
        let mut p = Points::empty(DataType::String);
        assert!(p.push(5, Value::String("a".into())));
        assert!(!p.push(6, Value::Long(1)), "another type is refused");
        assert!(p.push(7, Value::String("b".into())));
        assert_eq!(p.timestamps(), &[5, 7]);
        assert_eq!(p.value(1), Value::String("b".into()));
        p.truncate(1);
        assert_eq!(
            p,
            Points::String {
                ts: vec![5],
                values: vec!["a".into()]
            }
        );
        let mut d = Points::empty(DataType::Double);
        assert!(d.push(1, Value::Double(-0.0)));
        assert_eq!(d.value(0), Value::Double(-0.0));
        d.truncate(5);
        assert_eq!(d.len(), 1);
    }

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

    #[test]
    fn slots_are_found_again_without_duplicates() {
        let mut b = BatchBuilder::new();
        let tags = [("a", "1"), ("b", "2")];
        let s1 = b.slot_sorted("m", DataType::Double, &tags, 0);
        let s2 = b.slot_sorted("m", DataType::Double, &tags, 0);
        let s3 = b.slot_sorted("m", DataType::Long, &tags, 0);
        let s4 = b.slot_sorted("m", DataType::Double, &[("a", "1")], 0);
        // Length-prefixed encoding: ("ab","") and ("a","b") are different tags.
        let s5 = b.slot_sorted("m", DataType::Double, &[("ab", "")], 0);
        let s6 = b.slot_sorted("m", DataType::Double, &[("a", "b")], 0);
        assert_eq!(s1, s2);
        assert_ne!(s1, s3);
        assert_ne!(s1, s4);
        assert_ne!(s5, s6);
        b.push_double(s1, 1, 1.5);
        b.extend_double(s2, &[2, 3], &[2.5, 3.5]);
        b.push_long(s3, 1, 7);
        assert_eq!(b.series_count(), 5);
        assert_eq!(b.slot_type(s3), DataType::Long);
        let batch = b.finish();
        assert_eq!(
            batch.series[s1.index()].points,
            Points::Double {
                ts: vec![1, 2, 3],
                values: vec![1.5, 2.5, 3.5]
            }
        );
        assert_eq!(
            batch.series[s1.index()].key.tags,
            Tags::from_pairs([("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn push_and_slot_agree() {
        let tags = Tags::from_pairs([("host", "a"), ("dc", "x")]);
        let mut b = BatchBuilder::new();
        b.push("m", &tags, 5, 1, Value::String("s".into()));
        let s = b.slot_sorted("m", DataType::String, &[("dc", "x"), ("host", "a")], 5);
        b.push_string(s, 2, "t".into());
        let batch = b.finish();
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.point_count(), 2);
    }

    #[test]
    fn memo_maps_caller_keys_to_slots() {
        let mut b = BatchBuilder::new();
        let s = b.slot_sorted("m", DataType::Long, &[("a", "1")], 0);
        assert_eq!(b.memo_slot(DataType::Long, &[b"m", b"a=1"]), None);
        b.memo_insert(DataType::Long, &[b"m", b"a=1"], s);
        assert_eq!(b.memo_slot(DataType::Long, &[b"m", b"a=1"]), Some(s));
        assert_eq!(b.memo_slot(DataType::Double, &[b"m", b"a=1"]), None);
        assert_eq!(b.memo_slot(DataType::Long, &[b"ma", b"=1"]), None);
        assert_eq!(b.memo_slot(DataType::Long, &[b"m", b"a=1", b""]), None);
    }

    /// Lookups in the order of the inserts take the guess; any other order, a key of
    /// another type or an unknown key still gets exactly the remembered slot or `None`.
    #[test]
    fn memo_answers_the_same_in_any_lookup_order() {
        let mut b = BatchBuilder::new();
        let keys: Vec<String> = (0..10).map(|i| format!("h=host_{i}")).collect();
        let mut slots = Vec::new();
        for k in &keys {
            let s = b.slot_sorted("m", DataType::Long, &[("h", &k[2..])], 0);
            b.memo_insert(DataType::Long, &[b"m", k.as_bytes()], s);
            slots.push(s);
        }
        let orders: [Vec<usize>; 4] = [
            (0..10).collect(),
            (0..10).rev().collect(),
            vec![3, 3, 4, 7, 4, 3, 0, 9, 1],
            (0..10).collect(),
        ];
        for order in orders {
            for i in order {
                let key: [&[u8]; 2] = [b"m", keys[i].as_bytes()];
                assert_eq!(b.memo_slot(DataType::Long, &key), Some(slots[i]), "{i}");
                assert_eq!(b.memo_slot(DataType::Double, &key), None, "{i}");
                assert_eq!(
                    b.memo_slot(DataType::Long, &[b"n", keys[i].as_bytes()]),
                    None
                );
            }
        }
    }
}

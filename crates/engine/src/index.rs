//! The series registry (canonical [`SeriesKey`] ⇄ dense `u64` id) and the in-memory
//! postings index that answers `metric_names`, `tag_names`, `tag_values` and series
//! selection by tag filter without touching point data.
//!
//! The durable form of the registry is the fjall `series` keyspace (plus WAL series
//! definitions not yet checkpointed); postings are derived from it at open. A series
//! is *live* while it has points (head or blocks); only live series appear in
//! listings and selections, so a series emptied by delete or TTL drops out of them.
//! Its id and definition are kept (hidden) and reused if the same key is written
//! again. Regex tag matchers run once per distinct tag value of the metric, never
//! per point.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kairosdb_model::{SeriesKey, StorageError, TagFilter, TagMatcher};
use parking_lot::{Mutex, RwLock};

use crate::codec::encode_series_key;
use crate::store::{BlockSummary, Store};

/// One known series.
#[derive(Debug)]
pub struct SeriesEntry {
    pub id: u64,
    pub key: Arc<SeriesKey>,
    /// Has points (head or blocks). Flipped only under the postings lock.
    pub live: AtomicBool,
    /// Its definition is durable in fjall or written to the WAL.
    pub logged: AtomicBool,
    /// Sealed-block summary; mutated only under the engine's maintenance lock.
    pub summary: Mutex<BlockSummary>,
}

/// Hasher for keys that already are hashes or dense ids.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing spreads dense ids over hashbrown's top bits.
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct RegInner {
    /// xxh3(canonical key) → first id with that hash; collisions chain in `chain`.
    by_hash: IdMap<u64>,
    /// Indexed by id: next id with the same hash (0 = end).
    chain: Vec<u64>,
    /// Indexed by id (0 unused; gaps possible after crashes).
    entries: Vec<Option<Arc<SeriesEntry>>>,
    next_id: u64,
}

#[derive(Default)]
struct MetricPostings {
    /// Every series of the metric, ascending ids.
    ids: Vec<u64>,
    live: u64,
    /// tag name → tag value → ascending ids.
    tags: HashMap<String, BTreeMap<String, Vec<u64>>>,
}

#[derive(Default)]
struct Postings {
    metrics: BTreeMap<String, MetricPostings>,
    /// Live-series reference counts; a name/value is listed while its count > 0.
    tag_names: BTreeMap<String, u64>,
    tag_values: BTreeMap<String, u64>,
}

pub struct Registry {
    seed: u64,
    inner: RwLock<RegInner>,
    postings: RwLock<Postings>,
    /// Serialises live/dead flips with their reference counts.
    flips: Mutex<()>,
}

fn hash_key(seed: u64, key: &SeriesKey, scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    encode_series_key(scratch, key);
    xxhash_rust::xxh3::xxh3_64_with_seed(scratch, seed)
}

fn insert_sorted(v: &mut Vec<u64>, id: u64) {
    match v.last() {
        Some(&l) if l < id => v.push(id),
        None => v.push(id),
        _ => {
            if let Err(i) = v.binary_search(&id) {
                v.insert(i, id);
            }
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        use std::hash::BuildHasher;
        // A per-process seed keeps crafted keys from flooding one hash chain; the
        // hashes are never persisted.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x005e_71e5_u64);
        Registry {
            seed,
            inner: RwLock::new(RegInner {
                next_id: 1,
                ..RegInner::default()
            }),
            postings: RwLock::new(Postings::default()),
            flips: Mutex::new(()),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.read().by_hash_len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<SeriesEntry>> {
        self.inner
            .read()
            .entries
            .get(id as usize)
            .and_then(Clone::clone)
    }

    pub fn all(&self) -> Vec<Arc<SeriesEntry>> {
        self.inner
            .read()
            .entries
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Finds the entry of `key` (one hash of the canonical key, one comparison).
    #[cfg(test)]
    pub fn lookup(&self, key: &SeriesKey, scratch: &mut Vec<u8>) -> Option<Arc<SeriesEntry>> {
        let h = hash_key(self.seed, key, scratch);
        let inner = self.inner.read();
        inner.find(h, key)
    }

    /// Finds or creates the entry of `key`. A new series is written to fjall
    /// (`series` keyspace) before its id is used anywhere. Returns `(entry, created)`.
    pub fn get_or_create(
        &self,
        key: &SeriesKey,
        store: &Store,
        scratch: &mut Vec<u8>,
    ) -> Result<(Arc<SeriesEntry>, bool), StorageError> {
        let h = hash_key(self.seed, key, scratch);
        if let Some(e) = self.inner.read().find(h, key) {
            return Ok((e, false));
        }
        let mut inner = self.inner.write();
        if let Some(e) = inner.find(h, key) {
            return Ok((e, false));
        }
        let id = inner.next_id;
        store.put_series(id, key)?;
        let entry = Arc::new(SeriesEntry {
            id,
            key: Arc::new(key.clone()),
            live: AtomicBool::new(false),
            logged: AtomicBool::new(false),
            summary: Mutex::new(BlockSummary::default()),
        });
        inner.insert(h, entry.clone());
        drop(inner);
        self.add_postings(&entry);
        Ok((entry, true))
    }

    /// Registers a series read back from fjall or the WAL. Fails if the id is
    /// already used by a different key.
    pub fn restore(
        &self,
        id: u64,
        key: SeriesKey,
        logged: bool,
    ) -> Result<Arc<SeriesEntry>, StorageError> {
        let mut scratch = Vec::new();
        let h = hash_key(self.seed, &key, &mut scratch);
        let mut inner = self.inner.write();
        if let Some(Some(e)) = inner.entries.get(id as usize) {
            if *e.key != key {
                return Err(StorageError::Corruption(format!(
                    "series id {id} is defined twice: {} and {key}",
                    e.key
                )));
            }
            return Ok(e.clone());
        }
        if id == 0 {
            return Err(StorageError::Corruption("series id 0 is reserved".into()));
        }
        if let Some(other) = inner.find(h, &key) {
            return Err(StorageError::Corruption(format!(
                "series {key} has two ids: {} and {id}",
                other.id
            )));
        }
        let entry = Arc::new(SeriesEntry {
            id,
            key: Arc::new(key),
            live: AtomicBool::new(false),
            logged: AtomicBool::new(logged),
            summary: Mutex::new(BlockSummary::default()),
        });
        inner.insert(h, entry.clone());
        drop(inner);
        self.add_postings(&entry);
        Ok(entry)
    }

    fn add_postings(&self, e: &SeriesEntry) {
        let mut p = self.postings.write();
        let m = p.metrics.entry(e.key.metric.clone()).or_default();
        insert_sorted(&mut m.ids, e.id);
        for (k, v) in e.key.tags.iter() {
            let vals = m.tags.entry(k.to_owned()).or_default();
            insert_sorted(vals.entry(v.to_owned()).or_default(), e.id);
        }
    }

    /// Marks a series as having data (listed). Cheap when already live.
    pub fn mark_live(&self, e: &SeriesEntry) {
        if e.live.load(Ordering::Acquire) {
            return;
        }
        let _g = self.flips.lock();
        if e.live.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut p = self.postings.write();
        if let Some(m) = p.metrics.get_mut(&e.key.metric) {
            m.live += 1;
        }
        for (k, v) in e.key.tags.iter() {
            *p.tag_names.entry(k.to_owned()).or_default() += 1;
            *p.tag_values.entry(v.to_owned()).or_default() += 1;
        }
    }

    /// Marks a series as empty (hidden from listings).
    pub fn mark_dead(&self, e: &SeriesEntry) {
        let _g = self.flips.lock();
        if !e.live.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut p = self.postings.write();
        if let Some(m) = p.metrics.get_mut(&e.key.metric) {
            m.live = m.live.saturating_sub(1);
        }
        for (k, v) in e.key.tags.iter() {
            dec(&mut p.tag_names, k);
            dec(&mut p.tag_values, v);
        }
    }

    pub fn metric_names(&self, prefix: Option<&str>) -> Vec<String> {
        let p = self.postings.read();
        let prefix = prefix.unwrap_or("");
        p.metrics
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter(|(_, m)| m.live > 0)
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn tag_names(&self) -> Vec<String> {
        self.postings.read().tag_names.keys().cloned().collect()
    }

    pub fn tag_values(&self) -> Vec<String> {
        self.postings.read().tag_values.keys().cloned().collect()
    }

    /// Ids of the metric's series matching `filter` (live or not; callers check).
    pub fn select(&self, metric: &str, filter: &TagFilter) -> Vec<u64> {
        let p = self.postings.read();
        let Some(m) = p.metrics.get(metric) else {
            return Vec::new();
        };
        let mut result: Option<Vec<u64>> = None;
        for (name, matchers) in &filter.tags {
            let Some(values) = m.tags.get(name) else {
                return Vec::new();
            };
            let mut ids: Vec<u64> = Vec::new();
            let all_exact = matchers.iter().all(|mm| matches!(mm, TagMatcher::Exact(_)));
            if all_exact {
                for mm in matchers {
                    if let TagMatcher::Exact(v) = mm {
                        if let Some(l) = values.get(v) {
                            ids.extend_from_slice(l);
                        }
                    }
                }
            } else {
                // Each distinct value is tested once against the matchers.
                for (v, l) in values {
                    if matchers.iter().any(|mm| mm.matches(v)) {
                        ids.extend_from_slice(l);
                    }
                }
            }
            ids.sort_unstable();
            ids.dedup();
            result = Some(match result {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        result.unwrap_or_else(|| m.ids.clone())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

fn dec(map: &mut BTreeMap<String, u64>, k: &str) {
    if let Some(c) = map.get_mut(k) {
        *c -= 1;
        if *c == 0 {
            map.remove(k);
        }
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

impl RegInner {
    fn find(&self, h: u64, key: &SeriesKey) -> Option<Arc<SeriesEntry>> {
        let mut id = *self.by_hash.get(&h)?;
        while id != 0 {
            if let Some(Some(e)) = self.entries.get(id as usize) {
                if *e.key == *key {
                    return Some(e.clone());
                }
            }
            id = self.chain.get(id as usize).copied().unwrap_or(0);
        }
        None
    }

    fn insert(&mut self, h: u64, e: Arc<SeriesEntry>) {
        let id = e.id as usize;
        if self.entries.len() <= id {
            self.entries.resize(id + 1, None);
            self.chain.resize(id + 1, 0);
        }
        self.chain[id] = self.by_hash.insert(h, e.id).unwrap_or(0);
        self.entries[id] = Some(e);
        self.next_id = self.next_id.max(id as u64 + 1);
    }

    fn by_hash_len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::{DataType, Tags};

    fn key(m: &str, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(m, DataType::Double, Tags::from_pairs(tags.iter().copied()))
    }

    #[test]
    fn select_and_listings_follow_liveness() {
        let r = Registry::new();
        let a = r
            .restore(1, key("cpu", &[("host", "a"), ("dc", "x")]), true)
            .unwrap();
        let b = r
            .restore(2, key("cpu", &[("host", "b"), ("dc", "x")]), true)
            .unwrap();
        let c = r.restore(3, key("mem", &[("host", "a")]), true).unwrap();
        assert!(r.metric_names(None).is_empty());
        for e in [&a, &b, &c] {
            r.mark_live(e);
        }
        assert_eq!(r.metric_names(None), vec!["cpu", "mem"]);
        assert_eq!(r.metric_names(Some("c")), vec!["cpu"]);
        assert_eq!(r.tag_names(), vec!["dc", "host"]);
        assert_eq!(r.tag_values(), vec!["a", "b", "x"]);
        assert_eq!(r.select("cpu", &TagFilter::from_pairs(&[])), vec![1, 2]);
        assert_eq!(
            r.select("cpu", &TagFilter::from_pairs(&[("host", &["b"])])),
            vec![2]
        );
        assert_eq!(
            r.select(
                "cpu",
                &TagFilter::from_pairs(&[("host", &["a", "b"]), ("dc", &["x"])])
            ),
            vec![1, 2]
        );
        assert_eq!(
            r.select("cpu", &TagFilter::from_pairs(&[("host", &["regex:[ab]"])])),
            vec![1, 2]
        );
        assert_eq!(
            r.select(
                "cpu",
                &TagFilter::from_pairs(&[("host", &["regex:a|zz", "b"])])
            ),
            vec![1, 2]
        );
        assert!(r
            .select("cpu", &TagFilter::from_pairs(&[("nope", &["a"])]))
            .is_empty());
        assert!(r
            .select("cpu", &TagFilter::from_pairs(&[("host", &["c"])]))
            .is_empty());
        r.mark_dead(&c);
        r.mark_dead(&c);
        assert_eq!(r.metric_names(None), vec!["cpu"]);
        assert_eq!(r.tag_values(), vec!["a", "b", "x"]);
        r.mark_dead(&a);
        assert_eq!(r.tag_values(), vec!["b", "x"]);
    }

    #[test]
    fn restore_detects_conflicts() {
        let r = Registry::new();
        r.restore(1, key("m", &[]), true).unwrap();
        assert!(r.restore(1, key("m", &[]), true).is_ok());
        assert!(matches!(
            r.restore(1, key("n", &[]), true),
            Err(StorageError::Corruption(_))
        ));
        assert!(matches!(
            r.restore(2, key("m", &[]), true),
            Err(StorageError::Corruption(_))
        ));
        let mut s = Vec::new();
        assert_eq!(r.lookup(&key("m", &[]), &mut s).unwrap().id, 1);
        assert!(r.lookup(&key("m", &[("a", "b")]), &mut s).is_none());
    }
}

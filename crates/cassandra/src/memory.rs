//! An in-memory stand-in for a Cassandra cluster holding KairosDB's tables, for
//! tests (no Cassandra can run where CI runs). It answers the [`Session`] calls
//! with Cassandra's semantics where the store depends on them:
//!
//! * every cell and index row keeps the write timestamp its statement carries
//!   (`Mutation::timestamp_ms`: milliseconds from our store, or whatever a test
//!   sends to stand in for another writer); a delete leaves a tombstone with its
//!   own timestamp that hides what was written with a timestamp at or below it —
//!   also what is written *after* the delete, if stamped lower (a tie goes to the
//!   tombstone, as in Cassandra);
//! * the latest timestamp wins between two writes of one cell; for `data_points`
//!   a tie keeps the larger value, as Cassandra does;
//! * TTLs expire cells and index rows against a clock the test can move;
//! * the cluster can be taken "down" (every call fails as unavailable) and a
//!   number of upcoming `apply` calls can be made to fail.
//!
//! It also records the statements it was sent, so tests can check what the
//! store wrote (e.g. that an index row is not re-sent once cached).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::session::{Cell, CellRange, CqlError, Freshness, Mutation, RowKeysRow, Session};
use crate::store::wall_ms;
use kairosdb_model::Tags;

#[derive(Clone, Debug)]
struct Version {
    value: Vec<u8>,
    timestamp: i64,
    /// ms since the epoch at which the cell disappears.
    expires_ms: Option<i64>,
}

#[derive(Default, Debug)]
struct Partition {
    cells: BTreeMap<u32, Version>,
    /// (first column, last column, timestamp); a row delete is `(0, u32::MAX, ts)`.
    tombstones: Vec<(u32, u32, i64)>,
}

impl Partition {
    fn shadowed(&self, column: u32, timestamp: i64) -> bool {
        self.tombstones
            .iter()
            .any(|&(lo, hi, ts)| lo <= column && column <= hi && timestamp <= ts)
    }
}

/// One index row (a clustering key of `row_keys`, `string_index`, …): its
/// latest write and latest tombstone.
#[derive(Clone, Copy, Debug, Default)]
struct IndexRow {
    /// (write timestamp, expiry in ms since the epoch) of the latest insert.
    written: Option<(i64, Option<i64>)>,
    /// Timestamp of the latest delete.
    deleted: Option<i64>,
}

impl IndexRow {
    fn live(&self, now: i64) -> bool {
        self.written
            .is_some_and(|(ts, e)| self.deleted.is_none_or(|d| ts > d) && live(&e, now))
    }
}

/// Index rows of one partition, by clustering key.
type IndexSet<K> = BTreeMap<K, IndexRow>;

fn index_insert<K: Ord>(set: &mut IndexSet<K>, key: K, timestamp: i64, expires_ms: Option<i64>) {
    let row = set.entry(key).or_default();
    if row.written.is_none_or(|(old, _)| timestamp >= old) {
        row.written = Some((timestamp, expires_ms));
    }
}

fn index_delete<K: Ord>(set: &mut IndexSet<K>, key: K, timestamp: i64) {
    let row = set.entry(key).or_default();
    row.deleted = Some(row.deleted.map_or(timestamp, |d| d.max(timestamp)));
}

/// `row_keys` clustering key: (data_type, tags).
type RowKeyId = (String, Vec<(String, String)>);

/// `tag_indexed_row_keys` clustering key: (data_type, tag_collection_hash, tags).
type TagIndexedId = (String, i32, Vec<(String, String)>);

/// One `service_index` row: its latest value write and latest delete.
#[derive(Clone, Debug, Default)]
struct ServiceRow {
    written: Option<(i64, String)>,
    deleted: Option<i64>,
}

impl ServiceRow {
    fn value(&self) -> Option<&str> {
        match &self.written {
            Some((ts, v)) if self.deleted.is_none_or(|d| *ts > d) => Some(v),
            _ => None,
        }
    }
}

/// One `service_index` partition (service, service_key): the static `mtime`'s write
/// time and the rows by `key`.
#[derive(Debug, Default)]
struct ServicePartition {
    mtime: Option<i64>,
    rows: BTreeMap<String, ServiceRow>,
}

impl ServicePartition {
    /// Writes the static `mtime` at `ts`; the latest write wins.
    fn touch(&mut self, ts: i64) {
        self.mtime = Some(self.mtime.map_or(ts, |m| m.max(ts)));
    }
}

impl Tables {
    /// The `service_index` partition of (`service`, `service_key`), created empty.
    fn service_partition(&mut self, service: &str, service_key: &str) -> &mut ServicePartition {
        self.service_index
            .entry((service.to_owned(), service_key.to_owned()))
            .or_default()
    }
}

#[derive(Default, Debug)]
struct Tables {
    service_index: BTreeMap<(String, String), ServicePartition>,
    data_points: HashMap<Vec<u8>, Partition>,
    /// (metric, row_time) → (data_type, tags) rows.
    row_keys: BTreeMap<(String, i64), IndexSet<RowKeyId>>,
    /// (metric, row_time, single_tag_pair) → (data_type, hash, tags) rows.
    tag_indexed_row_keys: BTreeMap<(String, i64, String), IndexSet<TagIndexedId>>,
    row_key_time_index: BTreeMap<String, IndexSet<i64>>,
    string_index: BTreeMap<Vec<u8>, IndexSet<String>>,
    row_key_index: BTreeMap<String, IndexSet<Vec<u8>>>,
    spec: BTreeMap<String, String>,
    schema: Vec<String>,
}

/// The in-memory cluster. Cheap to clone: clones share the tables, so a test can
/// keep a handle while a store owns another ("reopen" = a new store on the same
/// cluster).
#[derive(Clone, Default)]
pub struct MemorySession {
    tables: Arc<Mutex<Tables>>,
    clock_offset_ms: Arc<AtomicI64>,
    down: Arc<AtomicBool>,
    fail_applies: Arc<AtomicU32>,
    reject_applies: Arc<AtomicU32>,
    log: Arc<Mutex<Vec<Mutation>>>,
}

fn live(expiry: &Option<i64>, now: i64) -> bool {
    expiry.is_none_or(|e| now < e)
}

fn expiry(ttl: u32, now: i64) -> Option<i64> {
    (ttl > 0).then(|| now + ttl as i64 * 1000)
}

fn tag_vec(tags: &Tags) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl MemorySession {
    pub fn new() -> MemorySession {
        MemorySession::default()
    }

    /// The cluster's clock (ms), which [`MemorySession::advance_clock`] moves.
    pub fn now_ms(&self) -> i64 {
        wall_ms() + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the cluster's clock forward (TTLs expire against it).
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    /// While down, every call fails as unavailable.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` calls of `apply` fail (as unavailable) without applying anything.
    pub fn fail_next_applies(&self, n: u32) {
        self.fail_applies.store(n, Ordering::SeqCst);
    }

    /// The next `n` calls of `apply` are refused as invalid (a permanent error, like
    /// Cassandra's `Invalid` answer) without applying anything.
    pub fn reject_next_applies(&self, n: u32) {
        self.reject_applies.store(n, Ordering::SeqCst);
    }

    /// Every mutation applied so far, in order.
    pub fn applied(&self) -> Vec<Mutation> {
        self.log.lock().clone()
    }

    /// The DDL statements received, in order.
    pub fn schema_statements(&self) -> Vec<String> {
        self.tables.lock().schema.clone()
    }

    /// Adds an entry to the legacy `row_key_index` (written only by KairosDB < 1.3),
    /// stamped as written long ago (timestamp 0).
    pub fn insert_legacy_row_key(&self, metric: &str, row_key: Vec<u8>) {
        let mut t = self.tables.lock();
        let keys = t.row_key_index.entry(metric.to_string()).or_default();
        index_insert(keys, row_key, 0, None);
    }

    /// Live `tag_indexed_row_keys` rows of `metric`:
    /// (row_time, single_tag_pair, data_type, tag_collection_hash, tags).
    pub fn tag_indexed_rows(&self, metric: &str) -> Vec<(i64, String, String, i32, Tags)> {
        let now = self.now_ms();
        let t = self.tables.lock();
        t.tag_indexed_row_keys
            .iter()
            .filter(|((m, _, _), _)| m == metric)
            .flat_map(|((_, rt, pair), rows)| {
                rows.iter()
                    .filter(|(_, r)| r.live(now))
                    .map(|((dt, hash, tags), _)| {
                        (
                            *rt,
                            pair.clone(),
                            dt.clone(),
                            *hash,
                            Tags::from_pairs(tags.iter().map(|(k, v)| (k.clone(), v.clone()))),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Number of live cells in all of `data_points`.
    pub fn live_cell_count(&self) -> usize {
        let now = self.now_ms();
        let t = self.tables.lock();
        t.data_points
            .values()
            .map(|p| {
                p.cells
                    .iter()
                    .filter(|(c, v)| live(&v.expires_ms, now) && !p.shadowed(**c, v.timestamp))
                    .count()
            })
            .sum()
    }

    fn check_up(&self) -> Result<(), CqlError> {
        if self.down.load(Ordering::SeqCst) {
            Err(CqlError::unavailable(
                "all hosts tried for query failed (memory cluster is down)",
            ))
        } else {
            Ok(())
        }
    }
}

impl Session for MemorySession {
    fn create_schema(&self, statements: &[String]) -> Result<(), CqlError> {
        self.check_up()?;
        self.tables.lock().schema.extend(statements.iter().cloned());
        Ok(())
    }

    fn spec_value(&self, name: &str) -> Result<Option<String>, CqlError> {
        self.check_up()?;
        Ok(self.tables.lock().spec.get(name).cloned())
    }

    fn put_spec_value(&self, name: &str, value: &str) -> Result<(), CqlError> {
        self.check_up()?;
        self.tables
            .lock()
            .spec
            .insert(name.to_string(), value.to_string());
        Ok(())
    }

    fn apply(&self, mutations: Vec<Mutation>) -> Result<(), CqlError> {
        self.check_up()?;
        if self
            .fail_applies
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CqlError::unavailable("injected write timeout"));
        }
        if self
            .reject_applies
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CqlError::failed("injected: the query is invalid"));
        }
        let now = self.now_ms();
        let mut t = self.tables.lock();
        for m in &mutations {
            match m {
                Mutation::DataPoint {
                    key,
                    column,
                    value,
                    ttl,
                    timestamp_ms,
                } => {
                    let p = t.data_points.entry(key.clone()).or_default();
                    if p.shadowed(*column, *timestamp_ms) {
                        continue;
                    }
                    // Last write wins by timestamp; a tie keeps the larger value,
                    // as Cassandra does.
                    let keep_old = p.cells.get(column).is_some_and(|old| {
                        (old.timestamp, &old.value) > (*timestamp_ms, value)
                            && live(&old.expires_ms, now)
                    });
                    if !keep_old {
                        p.cells.insert(
                            *column,
                            Version {
                                value: value.clone(),
                                timestamp: *timestamp_ms,
                                expires_ms: expiry(*ttl, now),
                            },
                        );
                    }
                }
                Mutation::RowKey {
                    metric,
                    row_time,
                    data_type,
                    tags,
                    ttl,
                    timestamp_ms,
                } => index_insert(
                    t.row_keys.entry((metric.clone(), *row_time)).or_default(),
                    (data_type.clone(), tag_vec(tags)),
                    *timestamp_ms,
                    expiry(*ttl, now),
                ),
                Mutation::TagIndexedRowKey {
                    metric,
                    row_time,
                    data_type,
                    single_tag_pair,
                    tag_collection_hash,
                    tags,
                    ttl,
                    timestamp_ms,
                } => index_insert(
                    t.tag_indexed_row_keys
                        .entry((metric.clone(), *row_time, single_tag_pair.clone()))
                        .or_default(),
                    (data_type.clone(), *tag_collection_hash, tag_vec(tags)),
                    *timestamp_ms,
                    expiry(*ttl, now),
                ),
                Mutation::DeleteTagIndexedRowKey {
                    metric,
                    row_time,
                    data_type,
                    single_tag_pair,
                    tag_collection_hash,
                    tags,
                    timestamp_ms,
                } => index_delete(
                    t.tag_indexed_row_keys
                        .entry((metric.clone(), *row_time, single_tag_pair.clone()))
                        .or_default(),
                    (data_type.clone(), *tag_collection_hash, tag_vec(tags)),
                    *timestamp_ms,
                ),
                Mutation::RowKeyTime {
                    metric,
                    row_time,
                    ttl,
                    timestamp_ms,
                } => index_insert(
                    t.row_key_time_index.entry(metric.clone()).or_default(),
                    *row_time,
                    *timestamp_ms,
                    expiry(*ttl, now),
                ),
                Mutation::StringIndex {
                    key,
                    name,
                    timestamp_ms,
                } => index_insert(
                    t.string_index.entry(key.to_vec()).or_default(),
                    name.clone(),
                    *timestamp_ms,
                    None,
                ),
                Mutation::DeleteRow { key, timestamp_ms } => {
                    let p = t.data_points.entry(key.clone()).or_default();
                    p.tombstones.push((0, u32::MAX, *timestamp_ms));
                    p.cells.retain(|_, v| v.timestamp > *timestamp_ms);
                }
                Mutation::DeleteColumns {
                    key,
                    first,
                    last,
                    timestamp_ms,
                } => {
                    let p = t.data_points.entry(key.clone()).or_default();
                    p.tombstones.push((*first, *last, *timestamp_ms));
                    p.cells.retain(|c, v| {
                        !(*first <= *c && *c <= *last) || v.timestamp > *timestamp_ms
                    });
                }
                Mutation::DeleteRowKey {
                    metric,
                    row_time,
                    data_type,
                    tags,
                    timestamp_ms,
                } => index_delete(
                    t.row_keys.entry((metric.clone(), *row_time)).or_default(),
                    (data_type.clone(), tag_vec(tags)),
                    *timestamp_ms,
                ),
                Mutation::DeleteRowKeyTime {
                    metric,
                    row_time,
                    timestamp_ms,
                } => index_delete(
                    t.row_key_time_index.entry(metric.clone()).or_default(),
                    *row_time,
                    *timestamp_ms,
                ),
                Mutation::DeleteRowKeyIndexEntry {
                    metric,
                    row_key,
                    timestamp_ms,
                } => index_delete(
                    t.row_key_index.entry(metric.clone()).or_default(),
                    row_key.clone(),
                    *timestamp_ms,
                ),
                Mutation::DeleteStringIndex {
                    key,
                    name,
                    timestamp_ms,
                } => index_delete(
                    t.string_index.entry(key.to_vec()).or_default(),
                    name.clone(),
                    *timestamp_ms,
                ),
                Mutation::ServiceValue {
                    service,
                    service_key,
                    key,
                    value,
                    timestamp_ms,
                } => {
                    let p = t.service_partition(service, service_key);
                    p.touch(*timestamp_ms);
                    let row = p.rows.entry(key.clone()).or_default();
                    if row
                        .written
                        .as_ref()
                        .is_none_or(|(old, _)| *timestamp_ms >= *old)
                    {
                        row.written = Some((*timestamp_ms, value.clone()));
                    }
                }
                Mutation::DeleteServiceValue {
                    service,
                    service_key,
                    key,
                    timestamp_ms,
                } => {
                    let p = t.service_partition(service, service_key);
                    let row = p.rows.entry(key.clone()).or_default();
                    row.deleted = Some(row.deleted.map_or(*timestamp_ms, |d| d.max(*timestamp_ms)));
                }
                Mutation::ServiceKeyModified {
                    service,
                    service_key,
                    timestamp_ms,
                } => {
                    t.service_partition(service, service_key)
                        .touch(*timestamp_ms);
                }
            }
        }
        drop(t);
        self.log.lock().extend(mutations);
        Ok(())
    }

    fn service_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, CqlError> {
        self.check_up()?;
        let t = self.tables.lock();
        Ok(t.service_index
            .get(&(service.to_string(), service_key.to_string()))
            .and_then(|p| p.rows.get(key))
            .and_then(|r| r.value().map(str::to_string)))
    }

    fn service_index_keys(
        &self,
        service: &str,
        service_key: &str,
        bounds: Option<(&str, &str)>,
    ) -> Result<Vec<String>, CqlError> {
        self.check_up()?;
        let t = self.tables.lock();
        let Some(p) = t
            .service_index
            .get(&(service.to_string(), service_key.to_string()))
        else {
            return Ok(Vec::new());
        };
        Ok(p.rows
            .iter()
            .filter(|(_, r)| r.value().is_some())
            .map(|(k, _)| k)
            // Cassandra compares text as UTF-8 bytes (so does `str`'s `Ord`).
            .filter(|k| bounds.is_none_or(|(lo, hi)| k.as_str() >= lo && k.as_str() < hi))
            .cloned()
            .collect())
    }

    fn service_key_rows(&self, service: &str) -> Result<Vec<String>, CqlError> {
        self.check_up()?;
        let t = self.tables.lock();
        let mut out = Vec::new();
        for ((s, sk), p) in &t.service_index {
            if s != service {
                continue;
            }
            // One row per live clustering row; a partition with only its static
            // `mtime` still answers one row (with a null key).
            let rows = p.rows.values().filter(|r| r.value().is_some()).count();
            let n = if rows == 0 {
                usize::from(p.mtime.is_some())
            } else {
                rows
            };
            out.extend(std::iter::repeat_n(sk.clone(), n));
        }
        Ok(out)
    }

    fn strings(
        &self,
        key: &[u8],
        bounds: Option<(&str, &str)>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, CqlError> {
        self.check_up()?;
        let now = self.now_ms();
        let t = self.tables.lock();
        let Some(names) = t.string_index.get(key) else {
            return Ok(Vec::new());
        };
        let limit = limit.map_or(usize::MAX, |l| l as usize);
        Ok(names
            .iter()
            .filter(|(_, r)| r.live(now))
            .map(|(n, _)| n)
            // Cassandra compares text as UTF-8 bytes.
            .filter(|n| match bounds {
                Some((lo, hi)) => n.as_bytes() >= lo.as_bytes() && n.as_bytes() < hi.as_bytes(),
                None => true,
            })
            .take(limit)
            .cloned()
            .collect())
    }

    fn row_key_index(
        &self,
        metric: &str,
        lower: &[u8],
        upper: &[u8],
        _fresh: Freshness,
    ) -> Result<Vec<Vec<u8>>, CqlError> {
        self.check_up()?;
        let now = self.now_ms();
        let t = self.tables.lock();
        Ok(t.row_key_index
            .get(metric)
            .map(|keys| {
                keys.iter()
                    .filter(|(k, r)| k.as_slice() >= lower && k.as_slice() < upper && r.live(now))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn row_times(
        &self,
        metric: &str,
        start: i64,
        end: i64,
        _fresh: Freshness,
    ) -> Result<Vec<i64>, CqlError> {
        self.check_up()?;
        let now = self.now_ms();
        let t = self.tables.lock();
        Ok(t.row_key_time_index
            .get(metric)
            .map(|times| {
                times
                    .iter()
                    .filter(|(rt, r)| **rt >= start && **rt <= end && r.live(now))
                    .map(|(rt, _)| *rt)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn row_keys(
        &self,
        metric: &str,
        row_times: &[i64],
        _fresh: Freshness,
    ) -> Result<Vec<RowKeysRow>, CqlError> {
        self.check_up()?;
        let now = self.now_ms();
        let t = self.tables.lock();
        let mut out = Vec::new();
        for rt in row_times {
            if let Some(rows) = t.row_keys.get(&(metric.to_string(), *rt)) {
                for ((data_type, tags), r) in rows {
                    if r.live(now) {
                        out.push(RowKeysRow {
                            row_time: *rt,
                            data_type: data_type.clone(),
                            tags: Tags::from_pairs(
                                tags.iter().map(|(k, v)| (k.clone(), v.clone())),
                            ),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn cells(&self, ranges: &[CellRange], _fresh: Freshness) -> Result<Vec<Vec<Cell>>, CqlError> {
        self.check_up()?;
        let now = self.now_ms();
        let t = self.tables.lock();
        Ok(ranges
            .iter()
            .map(|r| {
                let Some(p) = t.data_points.get(&r.key) else {
                    return Vec::new();
                };
                if r.lower >= r.upper {
                    return Vec::new();
                }
                let visible = p
                    .cells
                    .range(r.lower..r.upper)
                    .filter(|(c, v)| live(&v.expires_ms, now) && !p.shadowed(**c, v.timestamp))
                    .map(|(c, v)| (*c, v.value.clone()));
                let limit = r.limit.map_or(usize::MAX, |l| l as usize);
                if r.descending {
                    let mut all: Vec<Cell> = visible.collect();
                    all.reverse();
                    all.truncate(limit);
                    all
                } else {
                    visible.take(limit).collect()
                }
            })
            .collect())
    }

    fn ping(&self) -> Result<(), CqlError> {
        self.check_up()
    }
}

//! [`CassandraStore`]: the [`Storage`] backend on KairosDB's Cassandra schema.
//! It decides what to read and write (spec §7.3–§7.6); a [`Session`] runs it.
//!
//! Start-up (§7.3): [`CassandraStore::open`] never fails because the cluster is
//! unreachable. It creates the schema (idempotent) and reads the row geometry
//! from `spec` as soon as the cluster answers; until then every call fails with
//! [`StorageError::Internal`] (the delivery queue in front keeps retrying) and
//! [`Storage::health`] says why.
//!
//! Write path (§7.4), per batch: data point inserts plus the index rows of row
//! keys and metric names this process has not written yet, every statement
//! stamped with one write time in **milliseconds**. KairosDB 1.3.0-1 stamps
//! every statement it sends in milliseconds too (its driver's timestamp
//! generator returns `System.currentTimeMillis()`, for data, index rows and
//! deletes alike), so each server's deletes remove the other's rows and each
//! server's later writes survive the other's tombstones. The caches of written
//! index rows are updated only after the cluster acknowledged the whole batch,
//! so a failed write is re-indexed on retry (KairosDB #512).
//!
//! Timestamps are strictly increasing within the process ([`CassandraStore`]'s
//! one clock stamps writes and deletes alike), so a rewrite of a point in the
//! same millisecond still wins (Cassandra breaks timestamp ties by the larger
//! value, not the later write), and so does a write in the millisecond of a
//! delete (on a tie the tombstone wins). KairosDB's stamps are the plain wall
//! clock, so it loses such same-millisecond rewrites. Our clock can run a little
//! ahead of the wall clock, so a delete returns only once the wall clock has
//! passed its stamp ([`wait_past`]): writers stamping the wall clock (KairosDB,
//! another process) are not hidden by it.
//!
//! Read path (§7.5): row keys from both index generations, the legacy
//! `row_key_index` and `row_key_time_index` + `row_keys`, filtered by tags and
//! de-duplicated; then the cells of each row in the query range.
//!
//! Delete path (§7.6), stamped on the same millisecond clock as the writes (spec
//! §14.10 says KairosDB deletes in microseconds; 1.3.0-1 does not, see above).
//! Index rows that kairosdb-rs builds before this one wrote with the server's
//! microsecond stamps outlive these deletes (upgrade note in docs/cassandra.md).
//! One deliberate difference from KairosDB:
//! * §14.21 (KairosDB keeps a metric name until `DELETE /metric`): after a
//!   delete, a row left without cells loses its `row_keys` entry, a row time
//!   left without row keys loses its `row_key_time_index` entry, and a metric
//!   left without row times loses its name. `/metricnames` and
//!   `/datapoints/query/tags` then agree with the data (user-needs §1.4,
//!   KairosDB #111/#122), the same as the embedded engine (storage suite).
//!
//! `/tagnames` and `/tagvalues`: KairosDB 1.3 reads the `string_index` rows
//! `tag_names`/`tag_values`, which only versions before 1.3 wrote, so it answers
//! (nearly) nothing. We answer from the row-key index of every metric, plus any
//! legacy entries: exact, but a scan of the whole index (no client we know
//! calls them; user-needs §1.3).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kairosdb_model::{
    DataType, DeleteRequest, HealthStatus, Order, Points, Read, SeriesData, SeriesKey,
    SeriesPoints, SeriesQuery, ServiceStore, Storage, StorageError, StorageStats, TagFilter,
    TimeRange, Value, WriteBatch,
};
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::index::{
    prefix_upper_bound_text, single_tag_pair, tag_collection_hash, METRIC_NAMES_KEY, TAG_NAMES_KEY,
    TAG_VALUES_KEY,
};
use crate::rowkey::{index_scan_bounds, RowKey, StoreType};
use crate::rowspec::{RowSpec, RowTimeUnit};
use crate::schema::{Cql, Keyspace, TableOptions, DEFAULT_REPLICATION};
use crate::session::{CellRange, CqlError, Freshness, Mutation, Session};
use crate::value::{decode_legacy_cell, decode_value, encode_value};

/// Cassandra's TTL limit (20 years). Aligned TTLs at or above it are dropped, as
/// KairosDB does (§2.5); other points with such a TTL are rejected (Cassandra would
/// refuse their whole batch).
const MAX_TTL_SECS: i64 = 630_720_000;

/// Cassandra's limit on a partition key (and a clustering key) in bytes.
const MAX_KEY_BYTES: usize = 65_535;

/// How often a store that could not reach the cluster tries again, at most.
const INIT_RETRY: Duration = Duration::from_secs(1);

/// Longest a delete waits for the wall clock to pass its stamp (see [`wait_past`]).
const MAX_WAIT_PAST: Duration = Duration::from_millis(100);

/// Rows read per [`Session::cells`] call; the point limit is checked between calls.
const READ_CHUNK: usize = 64;

/// Configuration of a [`CassandraStore`] (KairosDB's `datastore.cassandra.*`).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub keyspace: Keyspace,
    /// `write_cluster.replication`: the CQL map text of `CREATE KEYSPACE`.
    pub replication: String,
    /// `table_create_with.<table>` (see [`TableOptions`] for the §14.24 default).
    pub table_options: TableOptions,
    /// Create the keyspace and tables at start-up (off for a read-only user).
    pub create_schema: bool,
    /// `write_cluster.row_time_unit` for a new cluster (an existing `spec` wins).
    pub row_time_unit: RowTimeUnit,
    /// `write_cluster.row_width` for a new cluster, in the unit's terms; `None` =
    /// the unit's default.
    pub row_width: Option<i64>,
    /// `datapoint_ttl`: TTL (s) of points written without one; 0 = forever.
    pub default_ttl_secs: u32,
    /// `force_default_datapoint_ttl`.
    pub force_default_ttl: bool,
    /// `align_datapoint_ttl_with_timestamp`.
    pub align_ttl_with_timestamp: bool,
    /// `row_key_cache_size`: row keys remembered as indexed.
    pub row_key_cache_size: usize,
    /// `string_cache_size`: (metric, row time) pairs remembered as indexed.
    pub string_cache_size: usize,
    /// `metric_index_filter.prefix`: names starting with one of these are not
    /// added to the metric-name index.
    pub metric_index_filter: Vec<String>,
    /// `tag_indexed_row_key_lookup_metrics`: metrics whose row keys are also
    /// written to `tag_indexed_row_keys`, so KairosDB nodes configured the same
    /// way find our series. We always read `row_keys`, which both write.
    pub tag_indexed: TagIndexed,
}

/// Which metrics and tags go to `tag_indexed_row_keys` (spec §7.4, §8.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagIndexed {
    /// `*`: every metric, every tag.
    pub all_metrics: bool,
    /// Metric → its indexed tag names; `None` = all its tags.
    pub metrics: HashMap<String, Option<Vec<String>>>,
}

impl TagIndexed {
    /// Parses `*`, `metric`, or `metric:tag1|tag2` entries, comma-separated.
    pub fn parse(text: &str) -> Result<TagIndexed, String> {
        let mut t = TagIndexed::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                t.all_metrics = true;
                continue;
            }
            let (metric, tags) = match entry.split_once(':') {
                Some((m, tags)) => {
                    let tags: Vec<String> = tags
                        .split('|')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect();
                    (
                        m.trim(),
                        (!tags.is_empty() && !tags.iter().any(|t| t == "*")).then_some(tags),
                    )
                }
                None => (entry, None),
            };
            if metric.is_empty() {
                return Err(format!(
                    "tag-indexed metric entry {entry:?} has no metric name"
                ));
            }
            t.metrics.insert(metric.to_string(), tags);
        }
        Ok(t)
    }

    /// Is `tag` of `metric` indexed? `None`: the metric is not tag-indexed.
    fn tags_of(&self, metric: &str) -> Option<Option<&[String]>> {
        if self.all_metrics {
            return Some(None);
        }
        self.metrics.get(metric).map(|t| t.as_deref())
    }

    /// The `tag_indexed_row_keys` rows of a row key: (single_tag_pair, hash).
    fn rows(&self, key: &RowKey) -> Vec<(String, i32)> {
        let Some(tags) = self.tags_of(&key.metric) else {
            return Vec::new();
        };
        let indexed = |name: &str| tags.is_none_or(|t| t.iter().any(|x| x == name));
        let hash = tag_collection_hash(&key.tags, indexed);
        key.tags
            .iter()
            .filter(|(k, _)| indexed(k))
            .map(|(k, v)| (single_tag_pair(k, v), hash))
            .collect()
    }
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            keyspace: Keyspace::default(),
            replication: DEFAULT_REPLICATION.to_string(),
            table_options: TableOptions::default(),
            create_schema: true,
            row_time_unit: RowTimeUnit::Milliseconds,
            row_width: None,
            default_ttl_secs: 0,
            force_default_ttl: false,
            align_ttl_with_timestamp: false,
            row_key_cache_size: 50_000,
            string_cache_size: 50_000,
            metric_index_filter: Vec::new(),
            tag_indexed: TagIndexed::default(),
        }
    }
}

/// A bounded "already written" set: two generations, the older dropped when the
/// newer fills up (an LRU approximation with O(1) upkeep). A miss only costs a
/// redundant index insert.
struct SeenSet<K> {
    young: HashSet<K>,
    old: HashSet<K>,
    half: usize,
}

impl<K: std::hash::Hash + Eq + Clone> SeenSet<K> {
    fn new(capacity: usize) -> SeenSet<K> {
        SeenSet {
            young: HashSet::new(),
            old: HashSet::new(),
            half: (capacity / 2).max(1),
        }
    }

    fn contains(&mut self, k: &K) -> bool {
        if self.young.contains(k) {
            return true;
        }
        if self.old.remove(k) {
            self.insert(k.clone());
            return true;
        }
        false
    }

    fn insert(&mut self, k: K) {
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(k);
    }

    fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter batches: "cassandra_write_batches_total",
            "Batches written to Cassandra.";
        counter points: "cassandra_points_written_total",
            "Data points written to Cassandra.";
        counter dropped_points: "cassandra_points_dropped_ttl_total",
            "Points dropped because their aligned TTL was out of range.";
        counter rejected_points: "cassandra_points_rejected_total",
            "Points KairosDB's format cannot hold (NUL in a metric name, string over 65535 bytes).";
        counter write_errors: "cassandra_write_errors_total",
            "Failed Cassandra writes.";
        counter read_errors: "cassandra_read_errors_total",
            "Failed Cassandra reads.";
        counter undecodable: "cassandra_undecodable_total",
            "Row keys or cells skipped because they are not in KairosDB's format.";
    }
}

/// The Cassandra backend. See the module docs.
pub struct CassandraStore<S: Session> {
    session: S,
    cql: Cql,
    opts: StoreOptions,
    /// Row geometry, read from `spec` once the cluster answered.
    spec: RwLock<Option<RowSpec>>,
    /// Last failed start-up attempt and its error.
    init_error: Mutex<Option<(Instant, String)>>,
    row_keys_seen: Mutex<SeenSet<Vec<u8>>>,
    names_seen: Mutex<SeenSet<(String, i64)>>,
    last_timestamp: AtomicI64,
    /// Writes hold it shared, deletes exclusively: a delete's index upkeep never
    /// races a write of this process that believes a row is already indexed.
    index_lock: RwLock<()>,
    counters: Counters,
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Waits (at most [`MAX_WAIT_PAST`]) until the wall clock is past `timestamp_ms`.
///
/// Our clock runs ahead of the wall clock by a millisecond or so whenever several
/// stamps are taken within one. A delete returns only once the wall clock has passed
/// its tombstones' stamp, so a write that follows it and is stamped on the wall clock
/// (by KairosDB, another process, or this one after a restart) is stamped later and
/// not hidden (Cassandra: on equal stamps the tombstone wins).
fn wait_past(timestamp_ms: i64) {
    let ahead = timestamp_ms - wall_ms();
    if ahead >= 0 {
        std::thread::sleep(Duration::from_millis(ahead as u64 + 1).min(MAX_WAIT_PAST));
    }
}

fn cql_error(what: &str, e: CqlError) -> StorageError {
    StorageError::Internal(format!("cassandra {what} failed: {e}"))
}

/// A row key of one stored series, with its decoded identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FoundRow {
    key: RowKey,
    bytes: Vec<u8>,
}

impl<S: Session> CassandraStore<S> {
    /// Opens the store on `session`; see the module docs for what happens when the
    /// cluster is unreachable.
    pub fn open(session: S, opts: StoreOptions) -> Result<CassandraStore<S>, StorageError> {
        if let Some(w) = opts.row_width {
            RowSpec::new(opts.row_time_unit, w)
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
        }
        let store = CassandraStore {
            cql: Cql::new(opts.keyspace.clone()),
            row_keys_seen: Mutex::new(SeenSet::new(opts.row_key_cache_size)),
            names_seen: Mutex::new(SeenSet::new(opts.string_cache_size)),
            session,
            opts,
            spec: RwLock::new(None),
            init_error: Mutex::new(None),
            last_timestamp: AtomicI64::new(0),
            index_lock: RwLock::new(()),
            counters: Counters::default(),
        };
        if let Err(e) = store.ready() {
            tracing::warn!(error = %e, "cassandra is not ready yet; retrying in the background of each request");
        }
        Ok(store)
    }

    /// The session (tests use it to reach the memory cluster).
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The row geometry, once known.
    pub fn row_spec(&self) -> Option<RowSpec> {
        *self.spec.read()
    }

    /// The row geometry, initialising the schema and `spec` first if needed.
    fn ready(&self) -> Result<RowSpec, StorageError> {
        if let Some(spec) = *self.spec.read() {
            return Ok(spec);
        }
        let mut failed = self.init_error.lock();
        if let Some(spec) = *self.spec.read() {
            return Ok(spec);
        }
        if let Some((at, msg)) = &*failed {
            if at.elapsed() < INIT_RETRY {
                return Err(StorageError::Internal(msg.clone()));
            }
        }
        match self.init() {
            Ok(spec) => {
                *self.spec.write() = Some(spec);
                *failed = None;
                tracing::info!(
                    unit = spec.unit().as_spec_str(),
                    width = spec.width(),
                    "cassandra schema ready"
                );
                Ok(spec)
            }
            Err(e) => {
                let msg = format!("cassandra is not ready: {e}");
                *failed = Some((Instant::now(), msg.clone()));
                Err(StorageError::Internal(msg))
            }
        }
    }

    /// Schema creation (§7.2) and the `spec` rows (§7.3).
    fn init(&self) -> Result<RowSpec, String> {
        if self.opts.create_schema {
            let mut ddl = vec![self.cql.create_keyspace(&self.opts.replication)];
            ddl.extend(
                self.cql
                    .create_write_cluster_tables(&self.opts.table_options),
            );
            // KairosDB creates `service_index` on its meta cluster; ours is the same one.
            ddl.extend(
                self.cql
                    .create_meta_cluster_tables(&self.opts.table_options),
            );
            self.session
                .create_schema(&ddl)
                .map_err(|e| format!("creating the schema: {e}"))?;
        }
        let read = |name: &str| {
            self.session
                .spec_value(name)
                .map_err(|e| format!("reading spec {name}: {e}"))
        };
        let unit = match read("row_time_unit")? {
            Some(v) => RowTimeUnit::from_spec_str(&v).map_err(|e| e.to_string())?,
            None => {
                let any_name = self
                    .session
                    .strings(METRIC_NAMES_KEY, None, Some(1))
                    .map_err(|e| format!("reading string_index: {e}"))?;
                let unit = if any_name.is_empty() {
                    self.opts.row_time_unit
                } else {
                    RowTimeUnit::Legacy
                };
                self.session
                    .put_spec_value("row_time_unit", unit.as_spec_str())
                    .map_err(|e| format!("writing spec row_time_unit: {e}"))?;
                unit
            }
        };
        let width = match read("row_width")? {
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("spec row_width {v:?} is not a number"))?,
            None => {
                let w = self.opts.row_width.unwrap_or(unit.default_width());
                self.session
                    .put_spec_value("row_width", &w.to_string())
                    .map_err(|e| format!("writing spec row_width: {e}"))?;
                w
            }
        };
        RowSpec::new(unit, width).map_err(|e| e.to_string())
    }

    /// A write timestamp (ms) larger than every earlier one of this process: the
    /// stamp of every statement sent, data or index, insert or delete.
    fn next_timestamp(&self) -> i64 {
        let now = wall_ms();
        let mut prev = self.last_timestamp.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self.last_timestamp.compare_exchange_weak(
                prev,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    fn effective_ttl(&self, ttl: u32) -> u32 {
        if self.opts.force_default_ttl || ttl == 0 {
            self.opts.default_ttl_secs
        } else {
            ttl
        }
    }

    fn indexes_name(&self, metric: &str) -> bool {
        !self
            .opts
            .metric_index_filter
            .iter()
            .any(|p| metric.starts_with(p.as_str()))
    }

    // ---- write helpers ----

    /// The mutations of one batch (§7.4), holding the caches of written index
    /// rows while it looks them up.
    fn plan_write(&self, spec: RowSpec, batch: &WriteBatch) -> WritePlan {
        let timestamp_ms = self.next_timestamp();
        let now = wall_ms();
        let mut planner = WritePlanner {
            store: self,
            spec,
            now,
            timestamp_ms,
            plan: WritePlan {
                muts: Vec::with_capacity(batch.point_count() + 8),
                ..WritePlan::default()
            },
            keys_seen: self.row_keys_seen.lock(),
            names_seen: self.names_seen.lock(),
            batch_keys: HashSet::new(),
            batch_names: HashSet::new(),
        };
        for s in &batch.series {
            planner.series(s);
        }
        planner.plan
    }

    /// Adds the index rows the cluster acknowledged to the caches of written ones.
    fn remember_indexed(&self, new_keys: Vec<Vec<u8>>, new_names: Vec<(String, i64)>) {
        let mut keys_seen = self.row_keys_seen.lock();
        for k in new_keys {
            keys_seen.insert(k);
        }
        let mut names_seen = self.names_seen.lock();
        for n in new_names {
            names_seen.insert(n);
        }
    }

    // ---- read helpers ----

    /// Every row key of `metric` that may hold points in `range` and matches
    /// `filter`, from both index generations, de-duplicated (§7.5 steps 1–4).
    fn find_rows(
        &self,
        spec: RowSpec,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
        fresh: Freshness,
    ) -> Result<Vec<FoundRow>, StorageError> {
        if range.start > range.end {
            return Ok(Vec::new());
        }
        let w = spec.span_ms();
        // A point's row starts at most one width before it (the row time of a
        // negative timestamp is not a floor, §14.11), so scanning from
        // `start - w + 1` never misses a row KairosDB's `rowTime(start)` would.
        let first_row = range.start.saturating_sub(w - 1);
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut out = Vec::new();
        let mut consider = |key: RowKey, bytes: Vec<u8>, out: &mut Vec<FoundRow>| {
            let overlaps =
                key.row_time <= range.end && key.row_time.saturating_add(w - 1) >= range.start;
            if overlaps && filter.matches(&key.tags) && seen.insert(bytes.clone()) {
                out.push(FoundRow { key, bytes });
            }
        };

        // 1. Legacy index; keys sort by signed row time as bytes, so a range
        //    crossing 0 is two scans.
        let mut spans = Vec::new();
        if first_row < 0 {
            spans.push((first_row, range.end.min(-1)));
        }
        if range.end >= 0 {
            spans.push((first_row.max(0), range.end));
        }
        for (lo, hi) in spans {
            let (lower, upper) = index_scan_bounds(metric, lo, hi)
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
            let cols = self
                .session
                .row_key_index(metric, &lower, &upper, fresh)
                .map_err(|e| self.read_error("row_key_index read", e))?;
            for bytes in cols {
                match RowKey::decode(&bytes) {
                    Ok(key) if key.metric == metric => consider(key, bytes, &mut out),
                    Ok(_) => {}
                    Err(e) => self.undecodable("row_key_index entry", &e),
                }
            }
        }

        // 2.–3. Row times, then the row keys of each.
        let times = self
            .session
            .row_times(metric, first_row, range.end, fresh)
            .map_err(|e| self.read_error("row_key_time_index read", e))?;
        if !times.is_empty() {
            let rows = self
                .session
                .row_keys(metric, &times, fresh)
                .map_err(|e| self.read_error("row_keys read", e))?;
            for r in rows {
                let key = RowKey::new(
                    metric,
                    r.row_time,
                    StoreType::from_name(&r.data_type),
                    r.tags,
                );
                match key.encode() {
                    Ok(bytes) => consider(key, bytes, &mut out),
                    Err(e) => self.undecodable("row_keys entry", &e),
                }
            }
        }
        Ok(out)
    }

    fn read_error(&self, what: &str, e: CqlError) -> StorageError {
        self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
        cql_error(what, e)
    }

    fn undecodable(&self, what: &str, e: &dyn std::fmt::Display) {
        self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "skipping an undecodable {what}");
    }

    /// Series keys a row holds: one for a typed row, long and double for a
    /// legacy row (its cells mix both, §8.3), none for a type we cannot decode.
    fn series_of(key: &RowKey) -> Vec<SeriesKey> {
        let make = |dt| SeriesKey::new(key.metric.clone(), dt, key.tags.clone());
        match &key.data_type {
            StoreType::Known(dt) => vec![make(*dt)],
            StoreType::Legacy => vec![make(DataType::Long), make(DataType::Double)],
            StoreType::Other(_) => Vec::new(),
        }
    }

    /// Does the row still hold any cell?
    fn row_has_cells(&self, bytes: &[u8]) -> Result<bool, StorageError> {
        let r = self
            .session
            .cells(
                &[CellRange {
                    key: bytes.to_vec(),
                    lower: 0,
                    upper: u32::MAX,
                    descending: false,
                    limit: Some(1),
                }],
                Freshness::Strong,
            )
            .map_err(|e| self.read_error("data_points read", e))?;
        Ok(r.first().is_some_and(|c| !c.is_empty()))
    }
}

/// What one batch writes, and what it leaves out.
#[derive(Default)]
struct WritePlan {
    muts: Vec<Mutation>,
    /// Index rows this batch writes, remembered once the cluster acknowledged it.
    new_keys: Vec<Vec<u8>>,
    new_names: Vec<(String, i64)>,
    /// Points whose aligned TTL is out of range, dropped as KairosDB does (§2.5).
    dropped: u64,
    /// Points KairosDB's format or Cassandra cannot hold (a NUL in the metric name, a
    /// string over 65535 bytes, a TTL of 20 years or more): skipped and counted, the
    /// rest of the batch is written.
    rejected: u64,
    first_error: Option<String>,
}

/// Turns the series of one batch into a [`WritePlan`].
struct WritePlanner<'a, S: Session> {
    store: &'a CassandraStore<S>,
    spec: RowSpec,
    now: i64,
    /// The write timestamp (ms) of every statement of the batch: data points and
    /// index rows.
    timestamp_ms: i64,
    plan: WritePlan,
    keys_seen: MutexGuard<'a, SeenSet<Vec<u8>>>,
    names_seen: MutexGuard<'a, SeenSet<(String, i64)>>,
    /// Index rows already planned by this batch.
    batch_keys: HashSet<Vec<u8>>,
    batch_names: HashSet<(String, i64)>,
}

impl<S: Session> WritePlanner<'_, S> {
    /// The data points of one series, and the index rows of each row key it starts.
    fn series(&mut self, s: &SeriesPoints) {
        let ttl = self.store.effective_ttl(s.ttl_secs);
        let row_key_ttl = self.row_key_ttl(s, ttl);
        // Row key bytes per row time, for this series.
        let mut keys: HashMap<i64, Vec<u8>> = HashMap::new();
        for (i, &ts) in s.points.timestamps().iter().enumerate() {
            let Some(point_ttl) = self.point_ttl(s, ttl, ts) else {
                continue;
            };
            let mut value = Vec::new();
            if let Err(e) = encode_value(&s.points.value(i), &mut value) {
                self.reject(|| format!("metric {}: {e}", s.key.metric));
                continue;
            }
            let row_time = self.spec.row_time(ts);
            let key = match keys.get(&row_time) {
                Some(k) => k.clone(),
                None => {
                    let Some(bytes) = self.row_key(s, row_time, row_key_ttl) else {
                        continue;
                    };
                    keys.insert(row_time, bytes.clone());
                    bytes
                }
            };
            self.plan.muts.push(Mutation::DataPoint {
                key,
                column: self.spec.column_name(row_time, ts),
                value,
                ttl: point_ttl,
                timestamp_ms: self.timestamp_ms,
            });
        }
    }

    /// Index rows outlive their points by a row width, within Cassandra's maximum.
    /// With aligned TTLs the latest point lives longest.
    fn row_key_ttl(&self, s: &SeriesPoints, ttl: u32) -> u32 {
        let index_ttl = if self.store.opts.align_ttl_with_timestamp && ttl > 0 {
            let newest = s
                .points
                .timestamps()
                .iter()
                .copied()
                .max()
                .unwrap_or(self.now);
            (ttl as i64 - self.now.saturating_sub(newest) / 1000)
                .clamp(ttl as i64, MAX_TTL_SECS - 1) as u32
        } else {
            ttl
        };
        self.spec
            .row_key_ttl(index_ttl)
            .min(MAX_TTL_SECS as u32 - 1)
    }

    /// The TTL of the point at `ts`, or `None` when it is dropped or rejected.
    fn point_ttl(&mut self, s: &SeriesPoints, ttl: u32, ts: i64) -> Option<u32> {
        let point_ttl = if self.store.opts.align_ttl_with_timestamp && ttl > 0 {
            let aligned = ttl as i64 - self.now.saturating_sub(ts) / 1000;
            if aligned <= 0 || aligned >= MAX_TTL_SECS {
                self.plan.dropped += 1;
                return None;
            }
            aligned as u32
        } else {
            ttl
        };
        if point_ttl as i64 >= MAX_TTL_SECS {
            // Cassandra refuses TTLs of 20 years or more, for the whole batch.
            self.reject(|| {
                format!(
                    "metric {}: TTL {point_ttl} s is not below Cassandra's maximum of {MAX_TTL_SECS} s",
                    s.key.metric
                )
            });
            return None;
        }
        Some(point_ttl)
    }

    /// The row key of `s` at `row_time`, with its index rows when they are not known
    /// to be written; `None` when Cassandra cannot hold the key (rejected).
    fn row_key(&mut self, s: &SeriesPoints, row_time: i64, row_key_ttl: u32) -> Option<Vec<u8>> {
        let dt = s.points.data_type();
        let rk = RowKey::new(s.key.metric.clone(), row_time, dt, s.key.tags.clone());
        let bytes = match rk.encode() {
            // Cassandra refuses partition keys over 64 KiB (the whole batch with them).
            Ok(b) if b.len() > MAX_KEY_BYTES => {
                self.reject(|| {
                    format!(
                        "metric {}: the row key (name and tags) is {} bytes; Cassandra allows {MAX_KEY_BYTES}",
                        s.key.metric,
                        b.len()
                    )
                });
                return None;
            }
            Ok(b) => b,
            Err(e) => {
                self.reject(|| e.to_string());
                return None;
            }
        };
        self.index_row_key(s, &rk, &bytes, row_key_ttl);
        self.index_row_time(s, row_time, row_key_ttl);
        Some(bytes)
    }

    /// `row_keys` (and `tag_indexed_row_keys`) entries of a row key.
    fn index_row_key(&mut self, s: &SeriesPoints, rk: &RowKey, bytes: &Vec<u8>, row_key_ttl: u32) {
        if self.keys_seen.contains(bytes) || !self.batch_keys.insert(bytes.clone()) {
            return;
        }
        let dt = s.points.data_type();
        for (pair, hash) in self.store.opts.tag_indexed.rows(rk) {
            self.plan.muts.push(Mutation::TagIndexedRowKey {
                metric: s.key.metric.clone(),
                row_time: rk.row_time,
                data_type: dt.store_name().to_string(),
                single_tag_pair: pair,
                tag_collection_hash: hash,
                tags: s.key.tags.clone(),
                ttl: row_key_ttl,
                timestamp_ms: self.timestamp_ms,
            });
        }
        self.plan.muts.push(Mutation::RowKey {
            metric: s.key.metric.clone(),
            row_time: rk.row_time,
            data_type: dt.store_name().to_string(),
            tags: s.key.tags.clone(),
            ttl: row_key_ttl,
            timestamp_ms: self.timestamp_ms,
        });
        self.plan.new_keys.push(bytes.clone());
    }

    /// The metric name and `row_key_time_index` entries of a row time.
    fn index_row_time(&mut self, s: &SeriesPoints, row_time: i64, row_key_ttl: u32) {
        let name = (s.key.metric.clone(), row_time);
        if self.names_seen.contains(&name) || !self.batch_names.insert(name.clone()) {
            return;
        }
        if self.store.indexes_name(&s.key.metric) {
            self.plan.muts.push(Mutation::StringIndex {
                key: METRIC_NAMES_KEY,
                name: s.key.metric.clone(),
                timestamp_ms: self.timestamp_ms,
            });
        }
        self.plan.muts.push(Mutation::RowKeyTime {
            metric: s.key.metric.clone(),
            row_time,
            ttl: row_key_ttl,
            timestamp_ms: self.timestamp_ms,
        });
        self.plan.new_names.push(name);
    }

    /// Counts a point that cannot be written; the first error is kept for the log.
    fn reject(&mut self, error: impl FnOnce() -> String) {
        self.plan.rejected += 1;
        self.plan.first_error.get_or_insert_with(error);
    }
}

/// A failed batch write: a permanent rejection must not be retried forever (see
/// CqlError).
fn write_error(e: CqlError) -> StorageError {
    if e.unavailable {
        cql_error("write", e)
    } else {
        StorageError::InvalidInput(format!("cassandra rejected the write: {e}"))
    }
}

fn to_points(dt: DataType, mut pts: Vec<(i64, Value)>, order: Order) -> Points {
    match order {
        Order::Asc => pts.sort_by_key(|p| p.0),
        Order::Desc => pts.sort_by_key(|p| std::cmp::Reverse(p.0)),
    }
    let mut out = Points::empty(dt);
    for (t, v) in pts {
        // Series keys carry the value's type, so every value fits its columns.
        out.push(t, v);
    }
    out
}

/// The metadata store on `service_index` (spec §7.7), KairosDB's statements one for
/// one: a set is one insert (value and the static `mtime`), a delete is the row delete
/// followed by the `mtime` insert. Each is stamped from the same millisecond clock as
/// the data writes, and sent on its own, not through the write path's caches or (in
/// queue mode) the delivery queue. Any cluster failure is a 500, as KairosDB answers.
impl<S: Session> ServiceStore for CassandraStore<S> {
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        self.ready()?;
        let m = Mutation::ServiceValue {
            service: service.to_string(),
            service_key: service_key.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            timestamp_ms: self.next_timestamp(),
        };
        self.session
            .apply(vec![m])
            .map_err(|e| cql_error("metadata write", e))
    }

    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        self.ready()?;
        self.session
            .service_value(service, service_key, key)
            .map_err(|e| cql_error("metadata read", e))
    }

    /// Deliberate deviation (see `kairosdb_model::services`): KairosDB returns the rows
    /// of its `ALLOW FILTERING` query as they come, one per stored key; we answer each
    /// service key once, sorted.
    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError> {
        self.ready()?;
        let rows = self
            .session
            .service_key_rows(service)
            .map_err(|e| cql_error("metadata read", e))?;
        Ok(rows
            .into_iter()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect())
    }

    /// With a prefix, KairosDB's bounds `[prefix, prefix + U+FFFF)` (spec §7.7).
    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        self.ready()?;
        let upper = starts_with.map(|p| format!("{p}\u{FFFF}"));
        let bounds = starts_with.zip(upper.as_deref());
        self.session
            .service_index_keys(service, service_key, bounds)
            .map_err(|e| cql_error("metadata read", e))
    }

    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError> {
        self.ready()?;
        let delete = Mutation::DeleteServiceValue {
            service: service.to_string(),
            service_key: service_key.to_string(),
            key: key.to_string(),
            timestamp_ms: self.next_timestamp(),
        };
        let modified = Mutation::ServiceKeyModified {
            service: service.to_string(),
            service_key: service_key.to_string(),
            timestamp_ms: self.next_timestamp(),
        };
        self.session
            .apply(vec![delete])
            .and_then(|()| self.session.apply(vec![modified]))
            .map_err(|e| cql_error("metadata delete", e))?;
        // As for data deletes: a wall-clock writer (Java KairosDB) setting the key again
        // right after must stamp later than our tombstone.
        wait_past(self.last_timestamp.load(Ordering::Relaxed));
        Ok(())
    }
}

impl<S: Session> Storage for CassandraStore<S> {
    /// Refused: KairosDB's schema has no way to store a cell only when it is absent short
    /// of a lightweight transaction (a Paxos round) per point. Only a cluster's partition
    /// copy backfills, and cluster workers store their partitions in the embedded engine.
    fn backfill(&self, _batch: &WriteBatch) -> Result<(), StorageError> {
        Err(StorageError::Unsupported(
            "the Cassandra datastore cannot backfill (store only the points that are absent):              that would take a lightweight transaction per point; cluster workers use the              embedded engine"
                .into(),
        ))
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let spec = self.ready()?;
        let _writing = self.index_lock.read();
        let WritePlan {
            muts,
            new_keys,
            new_names,
            dropped,
            rejected,
            first_error,
        } = self.plan_write(spec, batch);
        let points = muts.iter().filter(|m| m.is_data_point()).count() as u64;
        if let Err(e) = self.session.apply(muts) {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            return Err(write_error(e));
        }
        // Only now are the index rows known to be written (KairosDB #512).
        self.remember_indexed(new_keys, new_names);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.points.fetch_add(points, Ordering::Relaxed);
        if dropped > 0 {
            self.counters
                .dropped_points
                .fetch_add(dropped, Ordering::Relaxed);
        }
        if let Some(e) = first_error {
            self.counters
                .rejected_points
                .fetch_add(rejected, Ordering::Relaxed);
            tracing::error!(points = rejected, error = %e, "points not representable in KairosDB's Cassandra format were not written");
        }
        Ok(())
    }

    fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
        // Every read waits on the cluster: never on the caller's async worker.
        if q.work_limit.is_some() {
            return Ok(Read::OverWorkLimit);
        }
        let spec = self.ready()?;
        let mut rows = self.find_rows(spec, &q.metric, &q.filter, q.range, Freshness::Normal)?;
        if let Some(shard) = &q.shard {
            rows.retain(|r| shard.holds(&r.key.metric, &r.key.tags));
        }
        // Rows in time order of the query, so a limit can stop early.
        match q.order {
            Order::Asc => rows.sort_by_key(|r| r.key.row_time),
            Order::Desc => rows.sort_by_key(|r| std::cmp::Reverse(r.key.row_time)),
        }
        // Counting every point in range means reading every point: Cassandra has no
        // cheaper count here, so `count_in_range` reads as if there were no limit.
        let limit = q
            .limit
            .filter(|_| !q.count_in_range)
            .map(|l| l.min(u32::MAX as usize) as u32);
        // Rows of one series hold disjoint, ordered time spans only when no row time is
        // negative (§14.11: negative rows overlap). Only then may a series stop taking
        // points at its limit; otherwise every row's first `limit` cells are gathered
        // and the limit is applied after sorting.
        // A legacy row and a typed row of the same row time can feed one series too.
        let stop_at_limit = rows
            .iter()
            .all(|r| r.key.row_time >= 0 && r.key.data_type != StoreType::Legacy);
        // Points of each series gathered across its rows, as (ts, value) pairs.
        let mut series: BTreeMap<SeriesKey, Vec<(i64, Value)>> = BTreeMap::new();
        let mut total = 0u64;
        for chunk in rows.chunks(READ_CHUNK) {
            let ranges: Vec<CellRange> = chunk
                .iter()
                .map(|r| {
                    let (lower, upper) =
                        spec.read_bounds(r.key.row_time, q.range.start, q.range.end);
                    CellRange {
                        key: r.bytes.clone(),
                        lower,
                        upper,
                        descending: q.order == Order::Desc,
                        limit,
                    }
                })
                .collect();
            let cells = self
                .session
                .cells(&ranges, Freshness::Normal)
                .map_err(|e| self.read_error("data_points read", e))?;
            for (row, cells) in chunk.iter().zip(cells) {
                for (column, bytes) in cells {
                    let ts = spec.column_timestamp(row.key.row_time, column);
                    if !q.range.contains(ts) {
                        continue;
                    }
                    let value = match &row.key.data_type {
                        StoreType::Known(dt) => decode_value(*dt, &bytes),
                        StoreType::Legacy => decode_legacy_cell(column, &bytes),
                        StoreType::Other(_) => continue,
                    };
                    let value = match value {
                        Ok(v) => v,
                        Err(e) => {
                            self.undecodable("data point", &e);
                            continue;
                        }
                    };
                    let key =
                        SeriesKey::new(q.metric.clone(), value.data_type(), row.key.tags.clone());
                    let g = series.entry(key).or_default();
                    if stop_at_limit && limit.is_some_and(|l| g.len() >= l as usize) {
                        continue;
                    }
                    g.push((ts, value));
                    total += 1;
                    if q.max_points.is_some_and(|m| total > m) {
                        return Err(StorageError::TooManyPoints {
                            limit: q.max_points.unwrap_or_default(),
                        });
                    }
                }
            }
        }
        let series = series
            .into_iter()
            .filter(|(_, g)| !g.is_empty())
            .map(|(key, g)| {
                let mut points = to_points(key.data_type, g, q.order);
                let counted = points.len() as u64;
                if let Some(l) = q.limit {
                    points.truncate(l);
                }
                let in_range = if q.count_in_range {
                    counted
                } else {
                    points.len() as u64
                };
                SeriesData {
                    key: key.into(),
                    points,
                    in_range,
                    ttl_secs: Vec::new(),
                }
            })
            .collect();
        Ok(Read::Complete(series))
    }

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        let spec = self.ready()?;
        let rows = self.find_rows(spec, metric, filter, range, Freshness::Normal)?;
        let keys: BTreeSet<SeriesKey> = rows.iter().flat_map(|r| Self::series_of(&r.key)).collect();
        Ok(keys.into_iter().collect())
    }

    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.ready()?;
        let prefix = prefix.filter(|p| !p.is_empty());
        let upper = prefix.and_then(prefix_upper_bound_text);
        let bounds = match (prefix, &upper) {
            (Some(p), Some(u)) => Some((p, u.as_str())),
            _ => None,
        };
        let mut names = self
            .session
            .strings(METRIC_NAMES_KEY, bounds, None)
            .map_err(|e| self.read_error("string_index read", e))?;
        if let Some(p) = prefix {
            names.retain(|n| n.starts_with(p));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.tag_listing()?.0.into_iter().collect())
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.tag_listing()?.1.into_iter().collect())
    }

    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        let spec = self.ready()?;
        let _deleting = self.index_lock.write();
        // Forget what is indexed first: a row emptied below must be indexed again
        // by the next write of this process.
        self.row_keys_seen.lock().clear();
        self.names_seen.lock().clear();
        let range = request.range;
        let rows = self.find_rows(
            spec,
            &request.metric,
            &request.filter,
            range,
            Freshness::Normal,
        )?;
        let mut rows = rows;
        if let Some(shard) = &request.shard {
            rows.retain(|r| shard.holds(&r.key.metric, &r.key.tags));
        }
        if request.exact {
            rows.retain(|r| r.key.tags.len() == request.filter.tags.len());
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let timestamp_ms = self.next_timestamp();
        let mut muts = Vec::new();
        let mut partial = Vec::new();
        for r in &rows {
            let rt = r.key.row_time;
            if spec.covers_row(rt, range.start, range.end) {
                muts.push(Mutation::DeleteRow {
                    key: r.bytes.clone(),
                    timestamp_ms,
                });
                muts.extend(self.index_deletes(r, timestamp_ms));
            } else {
                let (first, last) = spec.delete_bounds(rt, range.start, range.end);
                muts.push(Mutation::DeleteColumns {
                    key: r.bytes.clone(),
                    first,
                    last,
                    timestamp_ms,
                });
                partial.push(r);
            }
        }
        self.session
            .apply(muts)
            .map_err(|e| cql_error("delete", e))?;

        // Index upkeep: rows, row times and the name that are now empty (§14.21 choice).
        // Every step carries the delete's one stamp: what another writer (KairosDB,
        // another process) writes meanwhile on the wall clock is stamped later and
        // survives the upkeep, even where the reads below missed it.
        let mut cleanup = Vec::new();
        for r in partial {
            if !self.row_has_cells(&r.bytes)? {
                cleanup.extend(self.index_deletes(r, timestamp_ms));
            }
        }
        self.session
            .apply(cleanup)
            .map_err(|e| cql_error("index cleanup", e))?;
        let times: BTreeSet<i64> = rows.iter().map(|r| r.key.row_time).collect();
        let times: Vec<i64> = times.into_iter().collect();
        let remaining: BTreeSet<i64> = self
            .session
            .row_keys(&request.metric, &times, Freshness::Strong)
            .map_err(|e| self.read_error("row_keys read", e))?
            .into_iter()
            .map(|r| r.row_time)
            .collect();
        let empty_times: Vec<Mutation> = times
            .iter()
            .filter(|t| !remaining.contains(t))
            .map(|t| Mutation::DeleteRowKeyTime {
                metric: request.metric.clone(),
                row_time: *t,
                timestamp_ms,
            })
            .collect();
        self.session
            .apply(empty_times)
            .map_err(|e| cql_error("index cleanup", e))?;
        if self
            .find_rows(
                spec,
                &request.metric,
                &TagFilter::default(),
                TimeRange::ALL,
                Freshness::Strong,
            )?
            .is_empty()
        {
            self.session
                .apply(vec![Mutation::DeleteStringIndex {
                    key: METRIC_NAMES_KEY,
                    name: request.metric.clone(),
                    timestamp_ms,
                }])
                .map_err(|e| cql_error("index cleanup", e))?;
        }
        wait_past(timestamp_ms);
        let touched: BTreeSet<SeriesKey> =
            rows.iter().flat_map(|r| Self::series_of(&r.key)).collect();
        Ok(touched.len() as u64)
    }

    /// KairosDB's `indexMetricTags`: writes the `tag_indexed_row_keys` rows of every row
    /// key of `metric` with data in `range` (for a metric added to
    /// `tag_indexed_row_key_lookup_metrics` after it was written). Row keys in the legacy
    /// `row_key_index` have no such rows. Nothing is written for a metric that is not
    /// tag-indexed.
    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        let spec = self.ready()?;
        let rows = self.find_rows(
            spec,
            metric,
            &TagFilter::default(),
            range,
            Freshness::Normal,
        )?;
        let timestamp_ms = self.next_timestamp();
        let mut muts = Vec::new();
        let mut indexed = 0;
        for r in rows.iter().filter(|r| r.key.data_type != StoreType::Legacy) {
            let entries = self.opts.tag_indexed.rows(&r.key);
            indexed += u64::from(!entries.is_empty());
            for (pair, hash) in entries {
                muts.push(Mutation::TagIndexedRowKey {
                    metric: r.key.metric.clone(),
                    row_time: r.key.row_time,
                    data_type: r.key.data_type.name().to_string(),
                    single_tag_pair: pair,
                    tag_collection_hash: hash,
                    tags: r.key.tags.clone(),
                    ttl: 0,
                    timestamp_ms,
                });
            }
        }
        if !muts.is_empty() {
            self.session
                .apply(muts)
                .map_err(|e| cql_error("tag_indexed_row_keys write", e))?;
        }
        Ok(indexed)
    }

    /// Writes are durable once Cassandra acknowledged them; nothing to flush.
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn health(&self) -> HealthStatus {
        if let Err(e) = self.ready() {
            return HealthStatus {
                ok: false,
                detail: e.to_string(),
            };
        }
        match self.session.ping() {
            Ok(()) => HealthStatus {
                ok: true,
                detail: "cassandra reachable".into(),
            },
            Err(e) => HealthStatus {
                ok: false,
                detail: format!("cassandra unreachable: {e}"),
            },
        }
    }

    fn stats(&self) -> StorageStats {
        let mut stats = self.counters.collect();
        let gauges: &[kairosdb_model::Gauge<Self>] = &[kairosdb_model::Gauge::new(
            "cassandra_ready",
            "1 once the schema and row geometry are known.",
            |s| if s.spec.read().is_some() { 1.0 } else { 0.0 },
        )];
        stats.read_gauges(gauges, self);
        stats
    }
}

impl<S: Session> CassandraStore<S> {
    /// Index entries of one row, to delete with it at `timestamp_ms`.
    fn index_deletes(&self, r: &FoundRow, timestamp_ms: i64) -> Vec<Mutation> {
        let mut m = vec![Mutation::DeleteRowKeyIndexEntry {
            metric: r.key.metric.clone(),
            row_key: r.bytes.clone(),
            timestamp_ms,
        }];
        if r.key.data_type != StoreType::Legacy {
            for (pair, hash) in self.opts.tag_indexed.rows(&r.key) {
                m.push(Mutation::DeleteTagIndexedRowKey {
                    metric: r.key.metric.clone(),
                    row_time: r.key.row_time,
                    data_type: r.key.data_type.name().to_string(),
                    single_tag_pair: pair,
                    tag_collection_hash: hash,
                    tags: r.key.tags.clone(),
                    timestamp_ms,
                });
            }
            m.push(Mutation::DeleteRowKey {
                metric: r.key.metric.clone(),
                row_time: r.key.row_time,
                data_type: r.key.data_type.name().to_string(),
                tags: r.key.tags.clone(),
                timestamp_ms,
            });
        }
        m
    }

    /// Tag names and values of every series (see the module docs).
    fn tag_listing(&self) -> Result<(BTreeSet<String>, BTreeSet<String>), StorageError> {
        let spec = self.ready()?;
        let legacy = |key| {
            self.session
                .strings(key, None, None)
                .map_err(|e| self.read_error("string_index read", e))
        };
        let mut names: BTreeSet<String> = legacy(TAG_NAMES_KEY)?.into_iter().collect();
        let mut values: BTreeSet<String> = legacy(TAG_VALUES_KEY)?.into_iter().collect();
        for metric in self.metric_names(None)? {
            for r in self.find_rows(
                spec,
                &metric,
                &TagFilter::default(),
                TimeRange::ALL,
                Freshness::Normal,
            )? {
                for (k, v) in r.key.tags.iter() {
                    names.insert(k.to_string());
                    values.insert(v.to_string());
                }
            }
        }
        Ok((names, values))
    }
}

//! `cache_time` (spec §4.1, §4.4 step 2): raw storage reads reused for a while, in memory.
//!
//! A query request with `cache_time > 0` reads through [`CachedStorage`], a [`Storage`]
//! wrapper whose `query()` answers an identical read (same metric, tag filter, range,
//! per-series limit and order) from [`QueryCache`] when the cached read is younger than
//! `cache_time` seconds, and otherwise reads storage and keeps the result. Aggregation,
//! grouping and rendering run on every request, as in KairosDB, where aggregators do not
//! influence the cache either.
//!
//! Deviations from KairosDB (spec §13.4), on purpose:
//! * **Memory, not temp files.** KairosDB writes every raw result to
//!   `<cache_dir>/<startup>/<hash>`, files that filled disks and stayed open after deletion
//!   (user-needs §1.2: `kairosdb/kairosdb#277`, `#165`, `#386`, `#549`). Here the cache is
//!   bounded by bytes (`query_cache_mb`) and nothing touches the disk.
//! * **The key is the resolved read**, not the request text: a relative range
//!   (`start_relative`) is resolved against "now" before storage sees it, so two requests
//!   share a read only when they resolve to the same milliseconds (always true for the
//!   metric queries of one request, and for dashboards that send absolute ranges). Keying
//!   on the relative text, as KairosDB does, would need the parsed request to keep it.
//! * **Deletes empty the cache** (KairosDB keeps serving deleted points until the file
//!   ages out). Writes do not: `cache_time` is the staleness the client asked to accept,
//!   and invalidating on every write would make the cache useless for live metrics.
//!
//! Why `moka` (dependencies.md §6) rather than a hand-written map: it bounds by weight
//! (bytes) with a good eviction policy (TinyLFU admission + LRU), is safe under the
//! concurrent blocking threads that run queries, and `try_get_with` coalesces identical
//! reads that run at the same time into one storage read, which is KairosDB's "an
//! identical running query waits for the first" (spec §4.4 step 1) for free.
//!
//! **Shared in Redis** (`query_cache = "redis"`, issue 20): the same reads, under the same
//! key, kept in the Redis of `redis_uri` instead (`redis_cache.rs`), so split query
//! services share them. An entry holds when storage returned it (wall-clock ms, so every
//! process can judge its age against its own request's `cache_time`) and the read in the
//! cluster's wire format (`kairosdb_cluster::wire::encode_series`); it lives for the
//! `cache_time` of the request that stored it. A delete of a metric invalidates that
//! metric's reads in every process (its `gen:d:` generation), nothing else does. With
//! Redis unreachable, reads go to storage.
//!
//! Not here: the HTTP response is never cached, and failed reads (or reads stopped at
//! their work limit) are never cached.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis_cache::{self, Lookup, RedisCache};
use kairosdb_model::{
    DeleteRequest, Gauge, HealthStatus, Order, Points, Read, SeriesData, SeriesKey, SeriesQuery,
    Storage, StorageError, StorageStats, TagFilter, TagMatcher, TimeRange, WriteBatch,
};

/// Where "now" comes from; tests inject a clock they can move.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The server-wide cache of raw reads, bounded by bytes.
pub struct QueryCache {
    entries: moka::sync::Cache<Key, Arc<Entry>>,
    /// `query_cache = "redis"`: the reads are kept there instead of in `entries`.
    shared: Option<Arc<RedisCache>>,
    /// Part of every key; a delete bumps it, so reads loaded before the delete (even ones
    /// still running while it happened) can never be found again.
    generation: AtomicU64,
    clock: Clock,
    counters: Counters,
}

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter hits: "query_cache_hits_total",
            "Raw reads answered from the cache_time cache (or shared with an identical running read).";
        counter misses: "query_cache_misses_total",
            "Raw reads of cache_time queries that went to storage.";
    }
}

/// Gauges read from the cache.
const GAUGES: &[Gauge<QueryCache>] = &[
    Gauge::new(
        "query_cache_bytes",
        "Approximate bytes held by the cache_time cache.",
        |c| c.entries.weighted_size() as f64,
    ),
    Gauge::new(
        "query_cache_entries",
        "Raw reads held by the cache_time cache.",
        |c| c.entries.entry_count() as f64,
    ),
];

/// One cached read and when storage returned it.
struct Entry {
    loaded: Instant,
    series: Vec<SeriesData>,
}

/// Why a storage read left nothing to cache.
enum NotLoaded {
    Failed(StorageError),
    OverWorkLimit,
    /// A cluster's partial answer: passed on, never kept (the next read may be whole).
    Partial(Read),
}

/// Everything that selects the points of a read. The tag filter is sorted (names, then
/// values) because it means the same in any order (AND across names, OR across values).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    generation: u64,
    metric: String,
    start: i64,
    end: i64,
    limit: Option<usize>,
    descending: bool,
    /// An edge read counts every point in range into `in_range`; a plain read with the
    /// same limit does not, so the two never share an entry.
    count_in_range: bool,
    /// (tag name, [(is_regex, exact value or regex source)]).
    filter: Vec<(String, Vec<(bool, String)>)>,
    /// A cluster's fold hint changes which points come back (`SeriesQuery::fold`).
    fold: Option<String>,
}

impl Key {
    fn new(generation: u64, query: &SeriesQuery) -> Key {
        let mut filter: Vec<(String, Vec<(bool, String)>)> = query
            .filter
            .tags
            .iter()
            .map(|(name, matchers)| {
                let mut values: Vec<(bool, String)> = matchers
                    .iter()
                    .map(|m| match m {
                        TagMatcher::Exact(v) => (false, v.clone()),
                        TagMatcher::Regex(r) => (true, r.as_str().to_string()),
                    })
                    .collect();
                values.sort();
                values.dedup();
                (name.clone(), values)
            })
            .collect();
        filter.sort();
        Key {
            generation,
            metric: query.metric.clone(),
            start: query.range.start,
            end: query.range.end,
            limit: query.limit,
            descending: query.order == Order::Desc,
            count_in_range: query.count_in_range,
            filter,
            fold: query.fold.as_ref().map(|f| format!("{f:?}")),
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Key>()
            + self.metric.len()
            + self
                .filter
                .iter()
                .map(|(name, values)| {
                    48 + name.len() + values.iter().map(|(_, v)| 32 + v.len()).sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// Approximate heap bytes of a read: what the eviction bound counts.
fn series_bytes(series: &[SeriesData]) -> usize {
    series
        .iter()
        .map(|s| {
            let tags: usize = s.key.tags.iter().map(|(k, v)| 48 + k.len() + v.len()).sum();
            let points = match &s.points {
                Points::Long { ts, values } => ts.len() * 8 + values.len() * 8,
                Points::Double { ts, values } => ts.len() * 8 + values.len() * 8,
                Points::String { ts, values } => {
                    ts.len() * 8 + values.iter().map(|v| 24 + v.len()).sum::<usize>()
                }
            };
            std::mem::size_of::<SeriesData>() + s.key.metric.len() + tags + points
        })
        .sum()
}

impl QueryCache {
    /// A cache of at most `max_bytes` (approximately: the sizes are estimates of the heap
    /// the reads occupy).
    pub fn new(max_bytes: u64) -> QueryCache {
        QueryCache::with_clock(max_bytes, Arc::new(Instant::now))
    }

    pub fn with_clock(max_bytes: u64, clock: Clock) -> QueryCache {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &Key, entry: &Arc<Entry>| {
                let bytes = key.bytes() + series_bytes(&entry.series);
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        QueryCache {
            entries,
            shared: None,
            generation: AtomicU64::new(0),
            clock,
            counters: Counters::default(),
        }
    }

    /// A cache kept in `redis` (`query_cache = "redis"`).
    pub fn shared(redis: Arc<RedisCache>) -> QueryCache {
        QueryCache {
            shared: Some(redis),
            ..QueryCache::new(0)
        }
    }

    /// Reads `query` from `inner`, or from the cache when an identical read is younger than
    /// `max_age`. Identical reads running at the same time share one storage read.
    pub fn query(
        &self,
        inner: &dyn Storage,
        query: &SeriesQuery,
        max_age: Duration,
    ) -> Result<Read, StorageError> {
        if let Some(redis) = &self.shared {
            return self.query_shared(redis, inner, query, max_age);
        }
        let key = Key::new(self.generation.load(Ordering::Acquire), query);
        if let Some(entry) = self.entries.get(&key) {
            if (self.clock)().saturating_duration_since(entry.loaded) < max_age {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Read::Complete(entry.series.clone()));
            }
            // Too old for this request (another request may accept it, but the fresh read
            // is at least as good for that one too).
            self.entries.invalidate(&key);
        }
        let mut loaded_here = false;
        let loaded = self.entries.try_get_with(key, || {
            loaded_here = true;
            match inner.query(query) {
                Ok(Read::Complete(series)) => Ok(Arc::new(Entry {
                    loaded: (self.clock)(),
                    series,
                })),
                Ok(Read::OverWorkLimit) => Err(NotLoaded::OverWorkLimit),
                Ok(partial @ Read::Partial { .. }) => Err(NotLoaded::Partial(partial)),
                Err(e) => Err(NotLoaded::Failed(e)),
            }
        });
        let entry = match loaded {
            Ok(entry) => entry,
            Err(not_loaded) => {
                return match &*not_loaded {
                    NotLoaded::Failed(e) => Err(e.clone()),
                    NotLoaded::OverWorkLimit => Ok(Read::OverWorkLimit),
                    NotLoaded::Partial(partial) => Ok(partial.clone()),
                }
            }
        };
        let counter = if loaded_here {
            &self.counters.misses
        } else {
            &self.counters.hits
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Read::Complete(entry.series.clone()))
    }

    /// [`QueryCache::query`] through Redis.
    fn query_shared(
        &self,
        redis: &RedisCache,
        inner: &dyn Storage,
        query: &SeriesQuery,
        max_age: Duration,
    ) -> Result<Read, StorageError> {
        let key = shared_key(&Key::new(0, query));
        let deleted = redis_cache::deleted(&query.metric);
        let snapshot = match redis.lookup(&key, &[deleted.as_str()]) {
            Lookup::Hit(body) => match decode_entry(&body, max_age) {
                Some(series) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Read::Complete(series));
                }
                // Older than this request accepts: read again, and replace it.
                None => redis.snapshot(&[deleted.as_str()]),
            },
            Lookup::Miss(snapshot) => snapshot,
        };
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let read = inner.query(query)?;
        if let (Read::Complete(series), Some(snapshot)) = (&read, snapshot) {
            let mut body = now_ms().to_le_bytes().to_vec();
            body.extend(kairosdb_cluster::wire::encode_series(series.clone()));
            redis.store_for(&key, &snapshot, &body, max_age);
        }
        Ok(read)
    }

    /// Forgets every cached read (after a delete).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// Figures for `/metrics`: hits, misses, bytes held, reads held (in this process).
    pub fn stats(&self) -> StorageStats {
        self.entries.run_pending_tasks();
        let mut stats = self.counters.collect();
        stats.read_gauges(GAUGES, self);
        stats
    }
}

/// Wall-clock milliseconds: entries in Redis are judged by processes with other clocks.
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The Redis key of a read: a digest of everything that selects its points.
fn shared_key(key: &Key) -> String {
    redis_cache::answer_key("q", &format!("{key:?}"))
}

/// A shared entry's read, if it is younger than `max_age`; `None` for a foreign or
/// damaged entry too (then it is read again).
fn decode_entry(body: &[u8], max_age: Duration) -> Option<Vec<SeriesData>> {
    let (loaded, encoded) = body.split_first_chunk::<8>()?;
    let age_ms = now_ms().saturating_sub(i64::from_le_bytes(*loaded));
    if age_ms < 0 || age_ms as u128 >= max_age.as_millis() {
        return None;
    }
    kairosdb_cluster::wire::decode_series(encoded).ok()
}

/// The storage one query request with `cache_time > 0` reads through: `query()` goes
/// through the cache with that request's `cache_time`; `delete()` empties the cache;
/// everything else passes straight through.
pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    cache: Arc<QueryCache>,
    max_age: Duration,
}

impl CachedStorage {
    pub fn new(inner: Arc<dyn Storage>, cache: Arc<QueryCache>, max_age: Duration) -> Self {
        CachedStorage {
            inner,
            cache,
            max_age,
        }
    }
}

// Metadata is not cached: it goes straight to the backend.
kairosdb_model::forward_service_store!(CachedStorage, this => this.inner);

impl Storage for CachedStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.inner.write(batch)
    }

    fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.inner.backfill(batch)
    }

    fn query(&self, query: &SeriesQuery) -> Result<Read, StorageError> {
        self.cache.query(&*self.inner, query, self.max_age)
    }

    fn series_keys(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        self.inner.series_keys(metric, filter, range)
    }

    fn series_keys_now(
        &self,
        metric: &str,
        filter: &TagFilter,
        range: TimeRange,
    ) -> Option<Result<Vec<SeriesKey>, StorageError>> {
        self.inner.series_keys_now(metric, filter, range)
    }

    fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.inner.metric_names(prefix)
    }

    fn tag_names(&self) -> Result<Vec<String>, StorageError> {
        self.inner.tag_names()
    }

    fn tag_values(&self) -> Result<Vec<String>, StorageError> {
        self.inner.tag_values()
    }

    fn delete(&self, request: &DeleteRequest) -> Result<u64, StorageError> {
        let result = self.inner.delete(request);
        // Also after a failed delete: some series may have been deleted before the error.
        self.cache.invalidate_all();
        result
    }

    fn index_metric_tags(&self, metric: &str, range: TimeRange) -> Result<u64, StorageError> {
        self.inner.index_metric_tags(metric, range)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }

    fn health(&self) -> HealthStatus {
        self.inner.health()
    }

    fn stats(&self) -> StorageStats {
        self.inner.stats()
    }

    fn folds_counts(&self) -> bool {
        self.inner.folds_counts()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use kairosdb_model::{DataType, Tags};

    use super::*;
    use crate::fake_storage::FakeStorage;

    /// A clock the test moves by hand.
    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    fn storage(points: usize) -> Arc<FakeStorage> {
        Arc::new(FakeStorage::with_points(points))
    }

    fn read(metric: &str) -> SeriesQuery {
        SeriesQuery::new(metric, TagFilter::default(), TimeRange::new(0, 1000))
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn identical_read_within_cache_time_is_a_hit() {
        let inner = storage(3);
        let cache = QueryCache::new(1 << 20);
        let first = cache.query(&*inner, &read("m"), MINUTE).unwrap();
        let second = cache.query(&*inner, &read("m"), MINUTE).unwrap();
        let (first, second) = (first.expect_complete(), second.expect_complete());
        assert_eq!(first, second);
        assert_eq!(first[0].points.len(), 3);
        assert_eq!(inner.queried(), vec!["m"]);
        let counters = cache.stats().counters;
        assert_eq!(counters[0].2, 1, "hits");
        assert_eq!(counters[1].2, 1, "misses");
    }

    #[test]
    fn read_older_than_cache_time_is_read_again() {
        let inner = storage(3);
        let (clock, now) = manual_clock();
        let cache = QueryCache::with_clock(1 << 20, clock);
        cache.query(&*inner, &read("m"), MINUTE).unwrap();
        *now.lock().unwrap() += Duration::from_secs(59);
        cache.query(&*inner, &read("m"), MINUTE).unwrap();
        assert_eq!(inner.queried().len(), 1, "59 s old, cache_time 60: a hit");
        *now.lock().unwrap() += Duration::from_secs(1);
        cache.query(&*inner, &read("m"), MINUTE).unwrap();
        assert_eq!(
            inner.queried().len(),
            2,
            "60 s old is no longer younger than 60"
        );
        // The fresh read replaced the old one.
        cache.query(&*inner, &read("m"), MINUTE).unwrap();
        assert_eq!(inner.queried().len(), 2);
        // A request with a shorter cache_time does not accept what another accepts.
        *now.lock().unwrap() += Duration::from_secs(5);
        cache
            .query(&*inner, &read("m"), Duration::from_secs(5))
            .unwrap();
        assert_eq!(inner.queried().len(), 3);
    }

    #[test]
    fn a_different_filter_range_limit_order_or_count_is_a_miss() {
        let inner = storage(1);
        let cache = QueryCache::new(1 << 20);
        let base = SeriesQuery {
            filter: TagFilter::from_pairs(&[("host", &["a", "b"]), ("dc", &["regex:e.*"])]),
            ..read("m")
        };
        let variants = [
            base.clone(),
            SeriesQuery {
                metric: "other".into(),
                ..base.clone()
            },
            SeriesQuery {
                filter: TagFilter::from_pairs(&[("host", &["a"]), ("dc", &["regex:e.*"])]),
                ..base.clone()
            },
            SeriesQuery {
                // The same text as an exact value is not the same filter as a regex.
                filter: TagFilter::from_pairs(&[("host", &["a", "b"]), ("dc", &["e.*"])]),
                ..base.clone()
            },
            SeriesQuery {
                range: TimeRange::new(0, 1001),
                ..base.clone()
            },
            SeriesQuery {
                limit: Some(1),
                ..base.clone()
            },
            SeriesQuery {
                order: Order::Desc,
                ..base.clone()
            },
            SeriesQuery {
                limit: Some(1),
                count_in_range: true,
                work_limit: None,
                ..base.clone()
            },
            // A cluster's fold hint returns only the points an aggregator picks.
            SeriesQuery {
                fold: Some(kairosdb_model::Fold {
                    keep: kairosdb_model::FoldKeep::Max,
                    unit: kairosdb_model::TimeUnit::Minutes,
                    value: 1,
                    start: 0,
                    align_sampling: true,
                    time_zone: None,
                }),
                ..base.clone()
            },
        ];
        for q in &variants {
            cache.query(&*inner, q, MINUTE).unwrap();
        }
        assert_eq!(inner.queried().len(), variants.len());
        // The same filter written in another order is the same read.
        let reordered = SeriesQuery {
            filter: TagFilter::from_pairs(&[("dc", &["regex:e.*"]), ("host", &["b", "a"])]),
            ..base
        };
        cache.query(&*inner, &reordered, MINUTE).unwrap();
        assert_eq!(inner.queried().len(), variants.len());
    }

    #[test]
    fn the_byte_bound_evicts() {
        let inner = storage(1000); // about 16 KB per read
        let one = series_bytes(&inner.query(&read("x")).unwrap().expect_complete()) as u64;
        assert!(one > 16_000, "{one}");
        let cache = QueryCache::new(one * 5 / 2);
        for i in 0..20 {
            cache
                .query(&*inner, &read(&format!("m{i}")), MINUTE)
                .unwrap();
        }
        cache.entries.run_pending_tasks();
        assert!(
            cache.entries.weighted_size() <= one * 5 / 2,
            "{} bytes held",
            cache.entries.weighted_size()
        );
        assert!(cache.entries.entry_count() <= 2);
        // A read bigger than the whole cache is answered, just not kept.
        let tiny = QueryCache::new(100);
        assert_eq!(
            tiny.query(&*inner, &read("big"), MINUTE)
                .unwrap()
                .expect_complete()[0]
                .points
                .len(),
            1000
        );
        tiny.entries.run_pending_tasks();
        assert_eq!(tiny.entries.entry_count(), 0);
    }

    #[test]
    fn a_delete_through_the_wrapper_empties_the_cache() {
        let inner = storage(1);
        let cache = Arc::new(QueryCache::new(1 << 20));
        let wrapped = CachedStorage::new(inner.clone(), cache.clone(), MINUTE);
        wrapped.query(&read("m")).unwrap();
        wrapped.query(&read("m")).unwrap();
        assert_eq!(inner.queried().len(), 1);
        wrapped
            .delete(&DeleteRequest {
                metric: "m".into(),
                filter: TagFilter::default(),
                range: TimeRange::ALL,
                shard: None,
                exact: false,
            })
            .unwrap();
        wrapped.query(&read("m")).unwrap();
        assert_eq!(inner.queried().len(), 2);
        // Writes pass through and leave the cache alone.
        let mut batch = WriteBatch::new();
        batch.series.push(kairosdb_model::SeriesPoints {
            key: SeriesKey::new("m", DataType::Long, Tags::new()),
            ttl_secs: 0,
            points: Points::Long {
                ts: vec![1],
                values: vec![1],
            },
        });
        wrapped.write(&batch).unwrap();
        assert_eq!(inner.points_written(), 1);
        wrapped.query(&read("m")).unwrap();
        assert_eq!(inner.queried().len(), 2);
    }

    #[test]
    fn failed_reads_are_not_cached_and_keep_their_kind() {
        let inner = Arc::new(FakeStorage {
            fail_metrics: vec!["m"],
            ..FakeStorage::default()
        });
        let cache = QueryCache::new(1 << 20);
        for _ in 0..2 {
            let e = cache.query(&*inner, &read("m"), MINUTE).unwrap_err();
            assert!(
                matches!(e, StorageError::Internal(ref m) if m == "disk on fire reading m"),
                "{e}"
            );
        }
        assert_eq!(inner.queried().len(), 2);
    }

    #[test]
    fn reads_stopped_at_their_work_limit_are_not_cached() {
        // FakeStorage stops every read that has a work limit.
        let inner = storage(3);
        let cache = QueryCache::new(1 << 20);
        let limited = SeriesQuery {
            work_limit: Some(u64::MAX),
            ..read("m")
        };
        for _ in 0..2 {
            let r = cache.query(&*inner, &limited, MINUTE);
            assert!(matches!(r, Ok(Read::OverWorkLimit)), "{r:?}");
        }
        assert_eq!(inner.refused.load(Ordering::SeqCst), 2);
        let r = cache.query(&*inner, &read("m"), MINUTE).unwrap();
        assert_eq!(r.expect_complete()[0].points.len(), 3);
        assert_eq!(inner.queried(), vec!["m"]);
    }
}

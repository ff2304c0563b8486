//! The shared Redis cache (issue 20, docs/telemetry.md "The Redis cache"): answers kept in
//! Redis under a normalized key, each stamped with the generations it depends on; the
//! generations bumped by every write and delete that goes through storage
//! (`watch.rs`, which wraps the one storage every listener writes through).
//!
//! How a cached answer stays right:
//! * **Generations.** A generation is a Redis counter: one per metric (`gen:m:<metric>`),
//!   `gen:all` (any write), `gen:names` (a metric name this process had not seen),
//!   `gen:meta` (the telemetry API's record redirects), and `epoch`. An answer records the
//!   values of the generations it depends on, read *before* storage was read, and is
//!   served only while every one of them is unchanged. So a write invalidates exactly the
//!   answers over its metrics, never the whole cache.
//! * **Bumps after the write, before anyone can miss them.** A write bumps its generations
//!   after storage stored it ([`RedisCache::bump`]): the bump is queued here and one thread
//!   sends the queue as pipelines. Until a bump has reached Redis, this process serves
//!   no cached answer that depends on it ([`RedisCache::pending`]), so a client never reads
//!   a stale answer after its own acknowledged write, and a write never waits for Redis.
//!   Another process sharing the Redis sees the bump when the pipeline lands (the thread
//!   sends at most one every [`COALESCE`], 2 ms).
//! * **Redis down.** Lookups are misses, answers come from storage, nothing waits: after a
//!   failure Redis is not asked again for [`RETRY`] (then one probe). `/health/ready` says
//!   so in its detail ([`RedisCache::health`]). Bumps made meanwhile stay queued. Before
//!   anything is served again, `epoch` is bumped: every answer cached before is dead (Redis
//!   may have restarted from an old snapshot, or bumps may have been lost with it). A
//!   process start bumps `epoch` too (bumps queued by a process that crashed are lost).
//!
//! Why sync connections from an r2d2 pool rather than the async connection manager: every
//! lookup happens where storage is read, on the blocking pool (the query engine and the
//! telemetry handlers' storage work are synchronous), and a sync call from there needs no
//! runtime handle. Each call is bounded by `redis_timeout_ms`.
//!
//! Not here: what is cached and under which key (the telemetry handlers, `query_cache.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use kairosdb_model::{Gauge, StorageStats};

/// How long Redis is left alone after a failure before the next probe.
pub const RETRY: Duration = Duration::from_millis(500);

/// Longest the bump thread waits for work before it looks again.
const FLUSH_IDLE: Duration = Duration::from_millis(200);

/// The bump thread sends at most one pipeline this often: under ingest, the bumps of many
/// writes share one (one a request cost 8.5 % more server CPU, docs/benchmarks.md). This
/// process stays exact meanwhile (a pending bump blocks what depends on it); another
/// process on the same Redis sees a write up to this much later.
const COALESCE: Duration = Duration::from_millis(2);

/// Entry format version (the first byte of every cached answer).
const VERSION: u8 = 1;

/// The cache key of an answer: `kind` and a digest of the text that says what it answers
/// (a normalized query), so keys stay short whatever the query.
pub fn answer_key(kind: &str, normalized: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(normalized.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

/// Generation key of one metric's data (writes and deletes).
pub fn metric(name: &str) -> String {
    format!("gen:m:{name}")
}
/// Generation of one metric's deletes only (`cache_time` reads depend on it: writes do not
/// end them, see `query_cache.rs`).
pub fn deleted(name: &str) -> String {
    format!("gen:d:{name}")
}
/// Generation of every write (answers over every metric depend on it).
pub const ALL: &str = "gen:all";
/// Generation of the metric names (bumped when a write has a name this process had not
/// seen): an answer that matched words against the names depends on it.
pub const NAMES: &str = "gen:names";
/// Generation of the telemetry API's record redirects (metadata service `telemetry`).
pub const META: &str = "gen:meta";
/// Generation of the whole cache; every answer depends on it.
const EPOCH: &str = "epoch";

kairosdb_model::metrics! {
    #[derive(Default)]
    struct Counters {
        counter hits: "redis_cache_hits_total",
            "Answers served from the Redis cache.";
        counter misses: "redis_cache_misses_total",
            "Lookups that found no valid answer in the Redis cache (including while Redis was unreachable).";
        counter errors: "redis_cache_errors_total",
            "Redis calls that failed or timed out (the answer then came from storage).";
        counter stores: "redis_cache_stores_total",
            "Answers stored in the Redis cache.";
        counter bumps: "redis_cache_generation_bumps_total",
            "Generation bumps sent to Redis (one per metric a write or delete touched).";
    }
}

const GAUGES: &[Gauge<RedisCache>] = &[
    Gauge::new(
        "redis_cache_up",
        "1 while the Redis cache answers, 0 while answers come from storage only.",
        |c| {
            f64::from(u8::from(
                c.down.lock().unwrap_or_else(|e| e.into_inner()).is_none(),
            ))
        },
    ),
    Gauge::new(
        "redis_cache_pending_bumps",
        "Generation bumps waiting to reach Redis.",
        |c| c.queue.lock().unwrap_or_else(|e| e.into_inner()).len() as f64,
    ),
];

/// Why Redis was last found unreachable, and when to try again.
struct Down {
    since: Instant,
    retry_at: Instant,
    error: String,
}

/// The generation values an answer was computed under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(Vec<(String, u64)>);

impl Snapshot {
    fn value(&self, key: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

pub struct RedisCache {
    pool: r2d2::Pool<redis::Client>,
    /// Prefixed to every key, so one Redis can serve several stores.
    prefix: String,
    timeout: Duration,
    /// Lifetime of a cached answer.
    ttl: Duration,
    down: Mutex<Option<Down>>,
    /// Bumps not yet in Redis: generation key → how many.
    queue: Mutex<HashMap<String, u64>>,
    wake: Condvar,
    /// Failures so far (the start counts as one), and how many of them an `epoch` bump has
    /// covered: while they differ, `epoch` must be bumped before anything is served. (A
    /// count, not a flag: a failure while a bump is in flight still gets its own.)
    failures: AtomicU64,
    epoch_covers: AtomicU64,
    /// Metric names this process has written (a new one bumps [`NAMES`]).
    seen: Mutex<Seen>,
    counters: Counters,
    calls: AtomicU64,
}

/// The metric and tag names this process has written.
#[derive(Default)]
struct Seen {
    metrics: std::collections::HashSet<String>,
    tags: std::collections::HashSet<String>,
}

/// What a lookup found.
pub enum Lookup {
    /// A valid answer.
    Hit(Vec<u8>),
    /// None: compute it under this snapshot (taken before storage is read) and
    /// [`RedisCache::store`] it; `None` when Redis cannot be used for it now.
    Miss(Option<Snapshot>),
}

impl RedisCache {
    /// A cache on the Redis at `uri` (`redis://host:port/db`); no connection is made yet,
    /// so a server starts while Redis is down. Starts the thread that sends bumps.
    pub fn open(
        uri: &str,
        prefix: &str,
        timeout: Duration,
        ttl: Duration,
    ) -> Result<Arc<RedisCache>, redis::RedisError> {
        let client = redis::Client::open(uri)?;
        let pool = r2d2::Pool::builder()
            .max_size(32)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(client);
        let cache = Arc::new(RedisCache {
            pool,
            prefix: prefix.to_owned(),
            timeout,
            ttl,
            down: Mutex::new(None),
            queue: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            failures: AtomicU64::new(1),
            epoch_covers: AtomicU64::new(0),
            seen: Mutex::new(Default::default()),
            counters: Counters::default(),
            calls: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&cache);
        std::thread::Builder::new()
            .name("redis-bumps".into())
            .spawn(move || send_bumps(weak))
            .map_err(|e| {
                redis::RedisError::from(std::io::Error::other(format!(
                    "cannot start the bump thread: {e}"
                )))
            })?;
        Ok(cache)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A connection, unless Redis failed less than [`RETRY`] ago.
    fn connection(&self) -> Option<r2d2::PooledConnection<redis::Client>> {
        {
            let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
            if down.as_ref().is_some_and(|d| Instant::now() < d.retry_at) {
                return None;
            }
        }
        match self.pool.get() {
            Ok(c) => {
                let _ = c.set_read_timeout(Some(self.timeout));
                let _ = c.set_write_timeout(Some(self.timeout));
                Some(c)
            }
            Err(e) => {
                self.failed(format!("cannot connect: {e}"));
                None
            }
        }
    }

    /// Notes a failed call: Redis is left alone for [`RETRY`], and `epoch` must be bumped
    /// before anything is served again.
    fn failed(&self, error: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::AcqRel);
        let now = Instant::now();
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none() {
            tracing::warn!(%error, "the Redis cache is unreachable; answering from storage");
        }
        let since = down.as_ref().map_or(now, |d| d.since);
        *down = Some(Down {
            since,
            retry_at: now + RETRY,
            error,
        });
    }

    fn recovered(&self) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = down.take() {
            tracing::info!(after = ?d.since.elapsed(), "the Redis cache answers again");
        }
    }

    /// Runs `call` on a connection; `None` (and Redis marked down) when it fails.
    fn call<T>(
        &self,
        call: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let mut conn = self.connection()?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        match call(&mut conn) {
            Ok(v) => {
                self.recovered();
                Some(v)
            }
            Err(e) => {
                self.failed(e.to_string());
                None
            }
        }
    }

    /// Queues the bumps of a write or delete of `metrics` (called after storage stored
    /// it), and of [`NAMES`] when a metric or tag name in `names` is new to this process.
    /// Never waits for Redis.
    pub fn bump<'a>(
        &self,
        metrics: impl IntoIterator<Item = &'a str>,
        names: impl IntoIterator<Item = &'a str>,
    ) {
        // On every write's path: nothing is allocated for a name seen before.
        let metrics: std::collections::HashSet<&str> = metrics.into_iter().collect();
        let mut new_name = false;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for m in &metrics {
                if !seen.metrics.contains(*m) {
                    seen.metrics.insert((*m).to_owned());
                    new_name = true;
                }
            }
            for t in names {
                if !seen.tags.contains(t) {
                    seen.tags.insert(t.to_owned());
                    new_name = true;
                }
            }
        }
        let mut keys = Vec::with_capacity(metrics.len() + 2);
        keys.push(ALL.to_owned());
        if new_name {
            keys.push(NAMES.to_owned());
        }
        keys.extend(metrics.into_iter().map(metric));
        self.bump_keys(keys);
    }

    /// Queues bumps of these generation keys.
    pub fn bump_keys(&self, keys: impl IntoIterator<Item = String>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            *queue.entry(k).or_default() += 1;
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Whether `epoch` must be bumped before anything is served.
    fn stale_epoch(&self) -> bool {
        self.failures.load(Ordering::Acquire) != self.epoch_covers.load(Ordering::Acquire)
    }

    /// Whether a bump of any of `keys` has not reached Redis yet (or `epoch` must move).
    fn pending(&self, keys: &[String]) -> bool {
        if self.stale_epoch() {
            return true;
        }
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        !queue.is_empty() && keys.iter().any(|k| queue.contains_key(k))
    }

    /// Sends the queued bumps (and `epoch`'s, when due) as one pipeline; waits for work up
    /// to [`FLUSH_IDLE`] first. The bump thread's one step.
    fn send_queued(&self) {
        let batch: Vec<(String, u64)> = {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let queue = if queue.is_empty() && !self.stale_epoch() {
                self.wake
                    .wait_timeout(queue, FLUSH_IDLE)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            } else {
                queue
            };
            queue.iter().map(|(k, n)| (k.clone(), *n)).collect()
        };
        let failures = self.failures.load(Ordering::Acquire);
        let epoch = failures != self.epoch_covers.load(Ordering::Acquire);
        if batch.is_empty() && !epoch {
            return;
        }
        let mut pipe = redis::pipe();
        if epoch {
            pipe.cmd("INCR").arg(self.key(EPOCH)).ignore();
        }
        for (k, n) in &batch {
            pipe.cmd("INCRBY").arg(self.key(k)).arg(*n).ignore();
        }
        let sent = self.call(|c| pipe.query::<()>(c));
        if sent.is_none() {
            // Redis is down: try again after RETRY, keeping the queue.
            std::thread::sleep(RETRY);
            return;
        }
        if epoch {
            self.epoch_covers.store(failures, Ordering::Release);
        }
        self.counters
            .bumps
            .fetch_add(batch.iter().map(|(_, n)| n).sum(), Ordering::Relaxed);
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            for (k, n) in batch {
                if let Some(left) = queue.get_mut(&k) {
                    *left -= n.min(*left);
                    if *left == 0 {
                        queue.remove(&k);
                    }
                }
            }
        }
        // Let the next writes' bumps gather.
        std::thread::sleep(COALESCE);
    }

    /// The answer cached under `key` if it is still valid, else a snapshot of `deps` (and
    /// `epoch`) to compute it under: one round trip.
    pub fn lookup(&self, key: &str, deps: &[&str]) -> Lookup {
        let mut deps: Vec<String> = deps.iter().map(|d| (*d).to_owned()).collect();
        deps.push(EPOCH.to_owned());
        // Asked before Redis is read: a bump that is not queued now has reached Redis, so
        // the values read next include it. (Asked after, a bump landing in between would
        // pass unseen: the stale answer the live suite caught.)
        if self.pending(&deps) {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(None);
        }
        let found = self.call(|c| {
            redis::pipe()
                .cmd("GET")
                .arg(self.key(&format!("a:{key}")))
                .cmd("MGET")
                .arg(deps.iter().map(|d| self.key(d)).collect::<Vec<_>>())
                .query::<(Option<Vec<u8>>, Vec<Option<u64>>)>(c)
        });
        let Some((entry, values)) = found else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(None);
        };
        let now = Snapshot(
            deps.into_iter()
                .zip(values.into_iter().map(Option::unwrap_or_default))
                .collect(),
        );
        if let Some(body) = entry.and_then(|e| self.valid(&e, &now)) {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Hit(body);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(Some(now))
    }

    /// `entry`'s body if every generation it was computed under is unchanged (asking
    /// Redis for the ones `now` does not hold, after making sure none of those has a bump
    /// on its way).
    fn valid(&self, entry: &[u8], now: &Snapshot) -> Option<Vec<u8>> {
        let (stamped, body) = decode(entry)?;
        let missing: Vec<String> = (stamped.0.iter())
            .filter(|(k, _)| now.value(k).is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let extra: Vec<Option<u64>> = if missing.is_empty() {
            Vec::new()
        } else if self.pending(&missing) {
            return None;
        } else {
            self.call(|c| {
                redis::cmd("MGET")
                    .arg(missing.iter().map(|k| self.key(k)).collect::<Vec<_>>())
                    .query(c)
            })?
        };
        let current = |k: &str| {
            now.value(k).unwrap_or_else(|| {
                let i = missing.iter().position(|m| *m == k).expect("asked for");
                extra[i].unwrap_or_default()
            })
        };
        stamped
            .0
            .iter()
            .all(|(k, v)| current(k) == *v)
            .then(|| body.to_vec())
    }

    /// The current values of `deps` (and `epoch`) to compute an answer under; `None` when
    /// Redis is unusable or a bump of one is on its way.
    pub fn snapshot(&self, deps: &[&str]) -> Option<Snapshot> {
        let mut keys: Vec<String> = deps.iter().map(|d| (*d).to_owned()).collect();
        keys.push(EPOCH.to_owned());
        self.extend(Snapshot::default(), &keys)
    }

    /// Adds the current values of `deps` to `snapshot` (when an answer turns out to depend
    /// on more than was known at lookup); `None` when Redis is unusable or a bump of one
    /// is on its way (then the answer is not stored).
    pub fn extend(&self, snapshot: Snapshot, deps: &[String]) -> Option<Snapshot> {
        if self.pending(deps) {
            return None;
        }
        let values: Vec<Option<u64>> = self.call(|c| {
            redis::cmd("MGET")
                .arg(deps.iter().map(|k| self.key(k)).collect::<Vec<_>>())
                .query(c)
        })?;
        let mut all = snapshot.0;
        all.extend(
            deps.iter()
                .cloned()
                .zip(values.into_iter().map(Option::unwrap_or_default)),
        );
        Some(Snapshot(all))
    }

    /// Stores `body` under `key`, valid while `snapshot` holds, for the cache's TTL.
    pub fn store(&self, key: &str, snapshot: &Snapshot, body: &[u8]) {
        self.store_for(key, snapshot, body, self.ttl);
    }

    /// [`RedisCache::store`] with its own lifetime (the `cache_time` of a KairosDB query).
    pub fn store_for(&self, key: &str, snapshot: &Snapshot, body: &[u8], ttl: Duration) {
        let entry = encode(snapshot, body);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let stored = self.call(|c| {
            redis::cmd("SET")
                .arg(self.key(&format!("a:{key}")))
                .arg(entry)
                .arg("PX")
                .arg(ms)
                .query::<()>(c)
        });
        if stored.is_some() {
            self.counters.stores.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `None` while Redis answers; else what `/health/ready` says about it.
    pub fn health(&self) -> Option<String> {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.as_ref().map(|d| {
            format!(
                "the Redis cache has been unreachable for {} s ({}): answering from storage",
                d.since.elapsed().as_secs(),
                d.error
            )
        })
    }

    /// Figures for `/metrics`.
    pub fn stats(&self) -> StorageStats {
        let mut stats = self.counters.collect();
        stats.read_gauges(GAUGES, self);
        stats
    }
}

/// The bump thread: runs until the cache is dropped.
fn send_bumps(cache: Weak<RedisCache>) {
    while let Some(cache) = cache.upgrade() {
        cache.send_queued();
    }
}

/// `[VERSION][count u16]([len u16][key][value u64])*[body]`, integers little-endian.
fn encode(snapshot: &Snapshot, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    out.push(VERSION);
    out.extend_from_slice(&(snapshot.0.len() as u16).to_le_bytes());
    for (k, v) in &snapshot.0 {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// An entry's snapshot and body; `None` for anything else (another version, a stranger's
/// key): a miss, never an error.
fn decode(entry: &[u8]) -> Option<(Snapshot, &[u8])> {
    let (&version, mut rest) = entry.split_first()?;
    if version != VERSION {
        return None;
    }
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let count = u16::from_le_bytes(take(2)?.try_into().ok()?);
    let mut deps = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let key = std::str::from_utf8(take(usize::from(len))?)
            .ok()?
            .to_owned();
        let value = u64::from_le_bytes(take(8)?.try_into().ok()?);
        deps.push((key, value));
    }
    Some((Snapshot(deps), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pairs: &[(&str, u64)]) -> Snapshot {
        Snapshot(pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
    }

    #[test]
    fn an_entry_decodes_to_the_generations_and_body_it_was_stored_with() {
        let s = snapshot(&[("gen:m:cpu", 7), (EPOCH, 2), ("gen:all", u64::MAX)]);
        let entry = encode(&s, b"{\"records\":[]}");
        let (back, body) = decode(&entry).unwrap();
        assert_eq!(back, s);
        assert_eq!(body, b"{\"records\":[]}");
    }

    #[test]
    fn a_truncated_or_foreign_entry_is_a_miss_not_a_panic() {
        let entry = encode(&snapshot(&[("gen:m:cpu", 7)]), b"body");
        for n in 0..12 {
            assert!(decode(&entry[..n]).is_none(), "{n} bytes");
        }
        assert!(decode(b"\x02anything").is_none());
        assert!(decode(b"").is_none());
    }

    fn unreachable_cache() -> Arc<RedisCache> {
        // Port 1 on loopback: nothing listens, so every call fails at once.
        RedisCache::open(
            "redis://127.0.0.1:1/",
            "t:",
            Duration::from_millis(50),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    #[test]
    fn with_redis_unreachable_a_lookup_is_a_miss_without_a_snapshot() {
        let cache = unreachable_cache();
        assert!(matches!(cache.lookup("k", &[ALL]), Lookup::Miss(None)));
        // The bump thread's first call (the start's epoch bump) finds Redis gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.health().is_none() {
            assert!(Instant::now() < deadline, "Redis never found unreachable");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(cache.health().unwrap().contains("unreachable"));
        assert!(matches!(cache.lookup("k", &[ALL]), Lookup::Miss(None)));
        let stats = cache.stats();
        let up = stats
            .gauges
            .iter()
            .find(|g| g.0 == "redis_cache_up")
            .unwrap();
        assert_eq!(up.2, 0.0);
        assert!(stats
            .counters
            .iter()
            .any(|c| c.0 == "redis_cache_errors_total" && c.2 > 0));
    }

    #[test]
    fn a_write_of_a_new_metric_bumps_the_metric_every_answer_and_the_names() {
        let cache = unreachable_cache();
        cache.bump(["cpu"], ["host"]);
        cache.bump(["cpu"], ["host"]);
        let queue = cache.queue.lock().unwrap().clone();
        assert_eq!(queue.get("gen:m:cpu"), Some(&2));
        assert_eq!(queue.get(ALL), Some(&2));
        assert_eq!(queue.get(NAMES), Some(&1), "only the first write of a name");
        cache.bump(["cpu"], ["region"]);
        assert_eq!(
            cache.queue.lock().unwrap().get(NAMES),
            Some(&2),
            "a new tag name"
        );
        assert!(cache.pending(&["gen:m:cpu".to_owned()]));
    }
}

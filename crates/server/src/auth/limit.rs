//! The rate limiter: one token bucket per (client, route class), in bounded memory.
//!
//! A bucket holds at most `burst` tokens and refills continuously at `per_minute / 60`
//! tokens a second; a request takes one token or is refused with the time until one is
//! there. A client is a principal (token or user name) or, for anonymous requests, the
//! peer address.
//!
//! **Bounded memory.** Buckets live in [`SHARDS`] mutex-guarded maps holding at most
//! `max_keys / SHARDS` buckets each. A new client in a full shard first drops every bucket
//! that has refilled completely (an idle bucket is indistinguishable from a new one, so
//! forgetting it changes no answer); if none has, it drops the least recently used one
//! (that client merely starts again from a full bucket). However many addresses appear,
//! memory stays at `max_keys` buckets.
//!
//! Why not `governor`: its keyed limiter (a `DashMap` of GCRA cells) has one quota for every
//! key and no bound on the number of keys (only `retain_recent`, to be called by hand), and
//! its headers helper needs `tower_governor`, which cannot tell a token from an address.
//! With per-principal quotas and a key cap the map is ours anyway, and what would remain of
//! the crate is the few lines of bucket arithmetic in [`Bucket::take`].
//!
//! Time is passed in (`now`), so unit tests drive a fake clock instead of sleeping.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Scope;

/// Number of independently locked maps (keeps concurrent requests off one lock).
pub const SHARDS: usize = 16;

/// A rate: `per_minute` requests a minute, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limit {
    fn per_second(self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }
}

/// Whose bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A configured token or user, by name.
    Principal(Arc<str>),
    /// An anonymous client, by peer address.
    Address(IpAddr),
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: Limit,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until the next request would be allowed (zero when `remaining > 0`).
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    limit: Limit,
}

impl Bucket {
    fn new(limit: Limit, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            last: now,
            limit,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let burst = f64::from(self.limit.burst);
        self.tokens = (self.tokens + elapsed * self.limit.per_second()).min(burst);
        self.last = now;
    }

    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.limit.per_second() >= f64::from(self.limit.burst)
    }

    fn take(&mut self, now: Instant) -> Decision {
        self.refill(now);
        let rate = self.limit.per_second();
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        let secs = |tokens: f64| Duration::from_secs_f64((tokens / rate).max(0.0));
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.tokens.floor() as u32,
            reset: secs(f64::from(self.limit.burst) - self.tokens),
            retry_after: if self.tokens >= 1.0 {
                Duration::ZERO
            } else {
                secs(1.0 - self.tokens)
            },
        }
    }
}

type Shard = HashMap<(Client, Scope), Bucket>;

/// Buckets of every client and route class, at most `max_keys` of them.
pub struct Limiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Limiter {
    /// A limiter tracking at most `max_keys` buckets (at least one per shard).
    pub fn new(max_keys: usize) -> Limiter {
        Limiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// Takes a token from `client`'s bucket for `class`, creating it full (with `limit`)
    /// if it is new. A bucket whose configured limit changed starts over with the new one.
    pub fn check(&self, client: &Client, class: Scope, limit: Limit, now: Instant) -> Decision {
        if limit.per_minute == 0 || limit.burst == 0 {
            panic!("BUG: a zero limit means unlimited and never reaches the limiter");
        }
        let key = (client.clone(), class);
        let shard = &self.shards[self.hasher.hash_one(&key) as usize % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = map.get_mut(&key) {
            if bucket.limit != limit {
                *bucket = Bucket::new(limit, now);
            }
            return bucket.take(now);
        }
        if map.len() >= self.per_shard {
            evict(&mut map, now);
        }
        map.entry(key).or_insert(Bucket::new(limit, now)).take(now)
    }

    /// Buckets held now, over all shards.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// Makes room for one bucket: drops every full one, else the least recently used.
fn evict(map: &mut Shard, now: Instant) {
    let before = map.len();
    map.retain(|_, b| !b.is_full(now));
    if map.len() < before {
        return;
    }
    let oldest = map
        .iter()
        .min_by_key(|(_, b)| b.last)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        per_minute: 60,
        burst: 3,
    };

    fn addr(i: u32) -> Client {
        Client::Address(IpAddr::from(i.to_be_bytes()))
    }

    #[test]
    fn burst_then_refused_then_refilled() {
        let l = Limiter::new(100);
        let t0 = Instant::now();
        let c = Client::Principal("a".into());
        let remaining: Vec<u32> = (0..3)
            .map(|_| l.check(&c, Scope::Write, LIMIT, t0))
            .inspect(|d| assert!(d.allowed))
            .map(|d| d.remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = l.check(&c, Scope::Write, LIMIT, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset, Duration::from_secs(3));
        // One token a second.
        let later = t0 + Duration::from_millis(1000);
        assert!(l.check(&c, Scope::Write, LIMIT, later).allowed);
        assert!(!l.check(&c, Scope::Write, LIMIT, later).allowed);
        // Never more than the burst, however long the pause.
        let much_later = t0 + Duration::from_secs(3600);
        let n = (0..10)
            .filter(|_| l.check(&c, Scope::Write, LIMIT, much_later).allowed)
            .count();
        assert_eq!(n, 3);
    }

    #[test]
    fn clients_and_classes_have_their_own_buckets() {
        let l = Limiter::new(100);
        let t0 = Instant::now();
        let a = Client::Principal("a".into());
        for _ in 0..3 {
            assert!(l.check(&a, Scope::Write, LIMIT, t0).allowed);
        }
        assert!(!l.check(&a, Scope::Write, LIMIT, t0).allowed);
        assert!(l.check(&a, Scope::Read, LIMIT, t0).allowed);
        assert!(
            l.check(&Client::Principal("b".into()), Scope::Write, LIMIT, t0)
                .allowed
        );
        assert!(l.check(&addr(1), Scope::Write, LIMIT, t0).allowed);
    }

    #[test]
    fn a_changed_limit_takes_effect() {
        let l = Limiter::new(100);
        let t0 = Instant::now();
        let a = addr(7);
        for _ in 0..3 {
            l.check(&a, Scope::Read, LIMIT, t0);
        }
        let wider = Limit {
            per_minute: 60,
            burst: 10,
        };
        assert_eq!(l.check(&a, Scope::Read, wider, t0).remaining, 9);
    }

    #[test]
    fn memory_stays_bounded_with_many_clients() {
        let max = 1_000;
        let l = Limiter::new(max);
        let t0 = Instant::now();
        // 100,000 distinct addresses, all active at once (none has refilled).
        for i in 0..100_000 {
            let d = l.check(&addr(i), Scope::Write, LIMIT, t0);
            assert!(d.allowed);
            assert!(l.len() <= max.div_ceil(SHARDS) * SHARDS);
        }
        assert!(l.len() >= max / 2, "the shards fill up: {}", l.len());
        // Later, idle buckets are dropped together to make room.
        let later = t0 + Duration::from_secs(10);
        l.check(&addr(u32::MAX), Scope::Write, LIMIT, later);
        assert!(l.len() < max, "{}", l.len());
        // A client that keeps sending keeps its bucket while strangers come and go: the
        // least recently used bucket goes, not the busy one.
        let busy = Client::Principal("busy".into());
        let mut now = later;
        for i in 0..1_500 {
            if i % 500 == 0 {
                assert!(l.check(&busy, Scope::Write, LIMIT, now).allowed);
            }
            l.check(&addr(200_000 + i), Scope::Write, LIMIT, now);
            now += Duration::from_micros(1);
        }
        assert!(!l.check(&busy, Scope::Write, LIMIT, now).allowed);
    }
}

//! The storage suite and a KairosDB-layout check against a **live** Cassandra
//! cluster through the `scylla` driver. Ignored by default (no Cassandra can run
//! where CI runs); to run it:
//!
//! ```text
//! KAIROSDB_TEST_CASSANDRA=127.0.0.1:9042 cargo test -p kairosdb-cassandra --test live -- --ignored
//! ```
//!
//! Each case gets its own keyspace (`kairosdb_test_<pid>_<n>`), dropped afterwards.
//! The TTL case is skipped (no clock control on a real cluster).
#![cfg(feature = "driver")]

use std::sync::atomic::{AtomicU32, Ordering};

use kairosdb_cassandra::driver::{ClusterOptions, ScyllaSession};
use kairosdb_cassandra::{CassandraStore, Cql, Keyspace, StoreOptions};
use kairosdb_model::suite::{self, Fixture};
use kairosdb_model::Storage;

const ENV: &str = "KAIROSDB_TEST_CASSANDRA";

fn contact_points() -> Vec<String> {
    let v = std::env::var(ENV).unwrap_or_else(|_| {
        panic!("{ENV} is not set: name a Cassandra cluster (host:port[,host:port]) to run the live tests")
    });
    v.split(',').map(|s| s.trim().to_string()).collect()
}

struct LiveFixture {
    keyspace: Keyspace,
    store: Option<CassandraStore<ScyllaSession>>,
}

fn store(keyspace: &Keyspace) -> CassandraStore<ScyllaSession> {
    let session = ScyllaSession::new(
        Cql::new(keyspace.clone()),
        ClusterOptions {
            contact_points: contact_points(),
            ..ClusterOptions::default()
        },
    )
    .expect("session");
    let store = CassandraStore::open(
        session,
        StoreOptions {
            keyspace: keyspace.clone(),
            ..StoreOptions::default()
        },
    )
    .expect("open");
    assert!(store.health().ok, "cluster not ready: {:?}", store.health());
    store
}

impl Fixture for LiveFixture {
    fn storage(&self) -> &dyn Storage {
        self.store.as_ref().expect("open")
    }

    fn reopen(&mut self) -> bool {
        self.store = None;
        self.store = Some(store(&self.keyspace));
        true
    }
}

impl Drop for LiveFixture {
    fn drop(&mut self) {
        if let Some(s) = &self.store {
            let _ = s.session().run(&format!(
                "DROP KEYSPACE IF EXISTS {}",
                self.keyspace.as_str()
            ));
        }
    }
}

fn open() -> Box<dyn Fixture> {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "kairosdb_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let keyspace = Keyspace::new(&name).expect("keyspace name");
    let s = store(&keyspace);
    Box::new(LiveFixture {
        keyspace,
        store: Some(s),
    })
}

#[test]
#[ignore = "needs a live Cassandra: set KAIROSDB_TEST_CASSANDRA=host:port and run with --ignored"]
fn live_storage_suite() {
    suite::run_all(&open);
}

/// Runs everywhere: the real driver pointed at a port where nothing listens
/// answers with clear errors, quickly, and without panicking.
#[test]
fn driver_against_nothing_fails_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let session = ScyllaSession::new(
        Cql::new(Keyspace::default()),
        ClusterOptions {
            contact_points: vec![addr.to_string()],
            connect_timeout: std::time::Duration::from_millis(500),
            ..ClusterOptions::default()
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let store = CassandraStore::open(session, StoreOptions::default()).unwrap();
    let h = store.health();
    assert!(!h.ok);
    assert!(h.detail.contains("cannot connect"), "{}", h.detail);
    assert!(store.metric_names(None).is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

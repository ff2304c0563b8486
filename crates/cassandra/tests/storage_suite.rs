//! Runs the backend conformance suite (`kairosdb_model::suite`) against the
//! Cassandra backend on the in-memory cluster (`kairosdb_cassandra::memory`),
//! which keeps Cassandra's cell semantics (timestamps, tombstones, TTL), one
//! `#[test]` per case. `reopen` opens a new store on the same cluster (empty
//! caches, `spec` read back). The same suite against a live cluster is in
//! `live.rs` (needs `KAIROSDB_TEST_CASSANDRA`).

use std::time::Duration;

use kairosdb_cassandra::memory::MemorySession;
use kairosdb_cassandra::{CassandraStore, StoreOptions};
use kairosdb_model::suite::Fixture;
use kairosdb_model::Storage;

struct MemoryFixture {
    cluster: MemorySession,
    store: CassandraStore<MemorySession>,
}

impl Fixture for MemoryFixture {
    fn storage(&self) -> &dyn Storage {
        &self.store
    }

    fn reopen(&mut self) -> bool {
        self.store =
            CassandraStore::open(self.cluster.clone(), StoreOptions::default()).expect("reopen");
        true
    }

    fn advance_clock(&mut self, by: Duration) -> bool {
        self.cluster.advance_clock(by);
        true
    }
}

fn open() -> Box<dyn Fixture> {
    let cluster = MemorySession::new();
    let store = CassandraStore::open(cluster.clone(), StoreOptions::default()).expect("open");
    Box::new(MemoryFixture { cluster, store })
}

kairosdb_model::storage_suite_tests!(open);

//! Runs the backend conformance suite (`kairosdb_model::suite`) against the
//! Cassandra backend on the in-memory cluster (`kairosdb_cassandra::memory`),
//! which keeps Cassandra's cell semantics (timestamps, tombstones, TTL), one
//! `#[test]` per case. `reopen` opens a new store on the same cluster (empty
//! caches, `spec` read back). The same suite against a live cluster is in
//! `live.rs` (needs `KAIROSDB_TEST_CASSANDRA`).

use std::time::Duration;

use kairosdb_cassandra::memory::MemorySession;
use kairosdb_cassandra::{CassandraStore, StoreOptions};
use kairosdb_model::suite::{self, Fixture};
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

/// One `#[test]` per suite case, plus a check that none is missing.
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                suite::$name(&open);
            }
        )*

        #[test]
        fn every_suite_case_runs_here() {
            let here: &[&str] = &[$(stringify!($name)),*];
            let all: Vec<&str> = suite::CASES.iter().map(|(n, _)| *n).collect();
            assert_eq!(here, all.as_slice(), "list every suite case above");
        }
    };
}

cases!(
    round_trip_all_types,
    last_write_wins,
    long_and_double_are_different_series,
    tag_filters,
    range_ends_are_inclusive,
    limit_and_order,
    max_points_exceeded,
    metric_names_sorted,
    tag_names_and_values_sorted_distinct,
    series_keys_filter_and_range,
    delete_removes_only_selected_points,
    delete_last_points_empties_listings,
    reopen_keeps_everything,
    ttl_expires_points,
    sync_and_health,
);

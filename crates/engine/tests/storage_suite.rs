//! Runs the backend conformance suite (`kairosdb_model::suite`) against the
//! embedded engine, one `#[test]` per case so a failing case can be ignored alone.
//!
//! The fixture opens a fresh engine in a temp dir with a manual clock (for the TTL
//! case) and no background threads; `reopen` closes the engine and opens the same
//! directory again. Engine-specific behaviour (WAL replay, blocks, backpressure)
//! is tested in `src/tests.rs`, not here.

use std::time::Duration;

use kairosdb_engine::{Clock, Engine, EngineConfig, WalSync};
use kairosdb_model::suite::{self, Fixture};
use kairosdb_model::Storage;

struct EngineFixture {
    engine: Option<Engine>,
    cfg: EngineConfig,
    _dir: tempfile::TempDir,
}

impl Fixture for EngineFixture {
    fn storage(&self) -> &dyn Storage {
        self.engine.as_ref().expect("engine is open")
    }

    fn reopen(&mut self) -> bool {
        let engine = self.engine.take().expect("engine is open");
        engine.close().expect("close");
        drop(engine);
        self.engine = Some(Engine::open(self.cfg.clone()).expect("reopen"));
        true
    }

    fn advance_clock(&mut self, by: Duration) -> bool {
        self.cfg.clock.advance(by);
        true
    }
}

fn open() -> Box<dyn Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = EngineConfig::new(dir.path());
    cfg.wal_sync = WalSync::None;
    cfg.background = false;
    cfg.clock = Clock::manual(1_700_000_000_000);
    cfg.cache_bytes = 4 << 20;
    // Small heads so the bigger cases also read from sealed blocks after a reopen.
    cfg.seal_points = 1024;
    let engine = Engine::open(cfg.clone()).expect("open engine");
    Box::new(EngineFixture {
        engine: Some(engine),
        cfg,
        _dir: dir,
    })
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

//! Runs the backend conformance suite (`kairosdb_model::suite`) against the
//! embedded engine, one `#[test]` per case so a failing case can be ignored alone.
//!
//! The fixture opens a fresh engine in a temp dir with a manual clock (for the TTL
//! case) and no background threads; `reopen` closes the engine and opens the same
//! directory again. Engine-specific behaviour (WAL replay, blocks, backpressure)
//! is tested in `src/tests.rs`, not here.

use std::time::Duration;

use kairosdb_engine::{Clock, Engine, EngineConfig, WalSync};
use kairosdb_model::suite::Fixture;
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

kairosdb_model::storage_suite_tests!(open);

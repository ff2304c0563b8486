//! The two background threads (WAL group-commit sync and maintenance), how writers
//! wake them, and closing: stop writes, seal every head, leave an empty WAL.
//!
//! Not here: spawning and joining the threads (`lib.rs`, `Engine::open` and
//! `Engine::close`) and what a maintenance pass does (`maintain.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kairosdb_model::StorageError;

use super::Inner;

impl Inner {
    pub(super) fn kick(&self) {
        let mut g = self.bg.lock();
        g.kick = true;
        self.bg_cv.notify_all();
    }

    /// Waits up to `d` or until kicked; returns false when stopping.
    fn wait(&self, d: Duration, consume_kick: bool) -> bool {
        let mut g = self.bg.lock();
        let kicked = consume_kick && g.kick;
        if !g.stop && !kicked {
            self.bg_cv.wait_for(&mut g, d);
        }
        if consume_kick {
            g.kick = false;
        }
        !g.stop
    }

    pub fn maintenance_loop(self: Arc<Self>) {
        while self.wait(self.cfg.maintenance_interval, true) {
            if self.is_poisoned() {
                continue;
            }
            if let Err(e) = self.maintain() {
                self.counters
                    .maintenance_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "engine maintenance failed");
            }
        }
    }

    pub fn sync_loop(self: Arc<Self>, every: Duration) {
        while self.wait(every, false) {
            let target = self.wal.lock().written();
            if *self.synced.lock() < target && self.sync_to(target).is_err() {
                // Poisoned; nothing more to do but keep the thread joinable.
                continue;
            }
        }
    }

    /// Marks the engine closed without sealing or syncing (crash simulation).
    #[cfg(test)]
    pub fn abandon(&self) {
        let _w = self.wal.lock();
        self.closed.store(true, Ordering::Release);
    }

    pub fn stop_background(&self) {
        let mut g = self.bg.lock();
        g.stop = true;
        self.bg_cv.notify_all();
    }

    /// Stops writes, seals every head, makes blocks durable, and leaves only an
    /// empty WAL segment, so the next open replays nothing.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let _w = self.wal.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        if self.is_poisoned() {
            // Keep the WAL as it is: it is the source of truth for the next open.
            return Err(StorageError::Poisoned(self.poison_detail()));
        }
        let _m = self.maint.lock();
        self.seal_all_locked()?;
        self.wal
            .lock()
            .rotate()
            .map_err(|e| self.poison(format!("WAL rotate failed: {e}")))?;
        self.checkpoint_locked()?;
        self.sealed.store.persist()?;
        self.sync_all()
    }
}

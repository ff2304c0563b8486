//! The disk-space guard: writes are refused with [`StorageError::InsufficientStorage`]
//! (HTTP 507) while the data directory's file system has less than `min_free_bytes`
//! available, so the disk never fills under the WAL. Writes are accepted again as soon as
//! space returns; nothing restarts (issue 22: a full disk used to poison the engine until
//! a restart).
//!
//! Not here: what happens when the disk fills anyway (another process ate the space):
//! the WAL write fails and the engine poisons itself (`wal.rs`, nothing acknowledged is
//! lost). Reads and deletes are never refused here; maintenance keeps running, the room
//! left by the guard is its working space.
//!
//! The free space is asked of the file system (`statvfs`) at most every
//! [`RECHECK`] while there is room, and on every write while there is not, so recovery is
//! seen at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kairosdb_model::StorageError;
use parking_lot::Mutex;

/// How long a "there is room" answer is trusted.
pub const RECHECK: Duration = Duration::from_millis(500);

/// Bytes available to an unprivileged writer on the file system holding a path.
pub type Probe = Box<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

pub struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    probe: Probe,
    /// When the last "there is room" answer was taken.
    room_since: Mutex<Option<Instant>>,
}

impl DiskGuard {
    /// A guard of `dir` refusing writes below `min_free` bytes; 0 turns it off.
    pub fn new(dir: impl Into<PathBuf>, min_free: u64) -> DiskGuard {
        DiskGuard::with_probe(dir, min_free, Box::new(available_bytes))
    }

    /// With another way to measure free space (tests).
    pub fn with_probe(dir: impl Into<PathBuf>, min_free: u64, probe: Probe) -> DiskGuard {
        DiskGuard {
            dir: dir.into(),
            min_free,
            probe,
            room_since: Mutex::new(None),
        }
    }

    /// `Ok` when a write may go ahead. A file system that cannot be asked does not block
    /// writes (the WAL write itself then reports any real failure).
    pub fn check(&self) -> Result<(), StorageError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let mut room_since = self.room_since.lock();
        if room_since.is_some_and(|t| t.elapsed() < RECHECK) {
            return Ok(());
        }
        let free = match (self.probe)(&self.dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "cannot read free disk space");
                return Ok(());
            }
        };
        if free >= self.min_free {
            *room_since = Some(Instant::now());
            return Ok(());
        }
        *room_since = None;
        Err(StorageError::InsufficientStorage(format!(
            "writes are refused: {} MiB free on the disk of {}, below the {} MiB kept free \
             (min_free_disk_mb); they are accepted again once space is freed",
            free >> 20,
            self.dir.display(),
            self.min_free >> 20
        )))
    }
}

/// `statvfs`: blocks available to unprivileged users × fragment size.
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    fn guard(free: &Arc<AtomicU64>, min: u64) -> DiskGuard {
        let free = free.clone();
        DiskGuard::with_probe(
            "/data",
            min,
            Box::new(move |_| Ok(free.load(Ordering::Relaxed))),
        )
    }

    #[test]
    fn writes_are_refused_below_the_floor_and_accepted_as_soon_as_space_returns() {
        let free = Arc::new(AtomicU64::new(100 << 20));
        let g = guard(&free, 64 << 20);
        assert!(g.check().is_ok());
        free.store(10 << 20, Ordering::Relaxed);
        // A room answer is trusted for RECHECK; a refusal is not cached.
        *g.room_since.lock() = None;
        let e = g.check().unwrap_err();
        assert!(matches!(e, StorageError::InsufficientStorage(_)), "{e}");
        assert!(e.to_string().contains("10 MiB free"), "{e}");
        free.store(65 << 20, Ordering::Relaxed);
        assert!(g.check().is_ok(), "recovers without a restart");
    }

    #[test]
    fn zero_turns_the_guard_off_and_an_unreadable_disk_does_not_block() {
        let free = Arc::new(AtomicU64::new(0));
        assert!(guard(&free, 0).check().is_ok());
        let broken = DiskGuard::with_probe("/x", 1, Box::new(|_| Err(std::io::Error::other("no"))));
        assert!(broken.check().is_ok());
    }

    #[test]
    fn the_real_probe_reads_this_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_bytes(dir.path()).unwrap() > 0);
    }
}

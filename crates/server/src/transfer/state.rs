//! Checkpoint files that make `import` and `export` resumable.
//!
//! A state file is one small JSON document, replaced atomically (written beside it,
//! fsynced, renamed) after each acknowledged step, so after a crash or a kill it holds
//! either the previous or the next checkpoint, never a torn one. It exists while a run is
//! unfinished and is removed when the run completes, so "a state file is there" means
//! "re-run the same command to continue".
//!
//! * Import: the byte offset (in the decompressed input) just past the last line whose
//!   points the target acknowledged, its line number, and the counts so far. A re-run
//!   skips that many bytes and counts on from there: no line is written twice and the
//!   final counts are those of one uninterrupted run.
//! * Export: the metrics finished, the metric in progress with the first chunk not yet
//!   written, the output file's length at that moment, the resolved time range (so a
//!   relative `--start 1h` means the same instant on resume) and the counts. A re-run
//!   truncates the output to that length (dropping a half-written tail) and appends.
//!
//! Each file names what it belongs to (input or output, and the other side); a state
//! file for another command is refused rather than applied.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Bumped when the layout changes; an unknown version is refused.
const VERSION: u32 = 1;

/// Counts of an import, cumulative over resumed runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Lines with at least one error (their valid points are still written, as
    /// `POST /api/v1/datapoints` does, spec §2.6).
    pub bad_lines: u64,
    /// Error messages reported (a bad line can have several).
    pub errors: u64,
    /// Series entries written: one per metric object and data type of a line.
    pub series: u64,
    /// Points acknowledged by the target.
    pub points_written: u64,
    /// Points of bad lines that were not written (entries of their `datapoints` and
    /// single-point form, minus those accepted). Unknown for lines that are not JSON.
    pub points_rejected: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    pub version: u32,
    /// The input as given (`-` for stdin).
    pub input: String,
    /// `data-dir:<path>` or `url:<base>`.
    pub target: String,
    /// Decompressed bytes of the input consumed and acknowledged.
    pub offset: u64,
    /// Lines consumed and acknowledged (the next line is `line + 1`).
    pub line: u64,
    pub counts: ImportCounts,
}

/// Counts of an export, cumulative over resumed runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCounts {
    pub metrics: u64,
    /// Series written, counted once per metric however many chunks they span.
    pub series: u64,
    pub lines: u64,
    pub points: u64,
    /// Doubles that JSON cannot carry (NaN, ±Infinity), left out and reported.
    pub points_skipped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    pub version: u32,
    pub output: String,
    /// `data-dir:<path>` or `url:<base>`, plus the selection, so another export's state
    /// is refused.
    pub source: String,
    pub start: i64,
    pub end: i64,
    /// Metrics written completely, in export order.
    pub done: Vec<String>,
    /// The metric in progress and the index of its first chunk not yet written.
    pub current: Option<(String, i64)>,
    /// Series of `current` already counted (type and tags, `\0`-separated), so a
    /// resumed metric counts each once.
    pub current_series: Vec<String>,
    /// Length of the output file at this checkpoint.
    pub output_bytes: u64,
    pub counts: ExportCounts,
}

impl ImportState {
    pub fn new(input: String, target: String) -> ImportState {
        ImportState {
            version: VERSION,
            input,
            target,
            offset: 0,
            line: 0,
            counts: ImportCounts::default(),
        }
    }
}

impl ExportState {
    pub fn new(output: String, source: String, start: i64, end: i64) -> ExportState {
        ExportState {
            version: VERSION,
            output,
            source,
            start,
            end,
            done: Vec::new(),
            current: None,
            current_series: Vec::new(),
            output_bytes: 0,
            counts: ExportCounts::default(),
        }
    }
}

/// The state file at `path`, or `None` when there is none.
pub fn load<T: for<'de> Deserialize<'de> + HasVersion>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let state: T = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a state file of this version; delete it to start over",
            path.display()
        )
    })?;
    if state.version() != VERSION {
        bail!(
            "{} has state version {}, expected {VERSION}; delete it to start over",
            path.display(),
            state.version()
        );
    }
    Ok(Some(state))
}

/// Replaces the state file atomically: temporary file, fsync, rename, fsync of the
/// directory.
pub fn save<T: Serialize>(path: &Path, state: &T) -> Result<()> {
    let tmp = temp_path(path);
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut text = serde_json::to_vec_pretty(state).context("BUG: state serializes")?;
    text.push(b'\n');
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename durable; not every file system lets a directory be opened.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Removes the state file of a finished run.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

pub trait HasVersion {
    fn version(&self) -> u32;
}

impl HasVersion for ImportState {
    fn version(&self) -> u32 {
        self.version
    }
}

impl HasVersion for ExportState {
    fn version(&self) -> u32 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_state_saves_loads_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json.import-state");
        assert_eq!(load::<ImportState>(&path).unwrap(), None);
        let mut state = ImportState::new("in.json".into(), "url:http://x".into());
        state.offset = 12345;
        state.line = 17;
        state.counts.points_written = 99;
        state.counts.bad_lines = 1;
        save(&path, &state).unwrap();
        assert_eq!(load::<ImportState>(&path).unwrap(), Some(state.clone()));
        // Saving again replaces it whole; no temporary file is left behind.
        state.offset = 20000;
        save(&path, &state).unwrap();
        assert_eq!(load::<ImportState>(&path).unwrap().unwrap().offset, 20000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(load::<ImportState>(&path).unwrap(), None);
    }

    #[test]
    fn export_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.export-state");
        let mut state = ExportState::new("out".into(), "data-dir:/d".into(), i64::MIN, 5);
        state.done = vec!["a".into(), "b".into()];
        state.current = Some(("c".into(), -3));
        state.output_bytes = 77;
        save(&path, &state).unwrap();
        assert_eq!(load::<ExportState>(&path).unwrap(), Some(state));
    }

    #[test]
    fn refuses_a_foreign_or_future_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "not json").unwrap();
        let e = load::<ImportState>(&path).unwrap_err().to_string();
        assert!(e.contains("delete it to start over"), "{e}");
        let mut state = ImportState::new("-".into(), "t".into());
        state.version = 99;
        save(&path, &state).unwrap();
        let e = load::<ImportState>(&path).unwrap_err().to_string();
        assert!(e.contains("state version 99"), "{e}");
        // An export state is not an import state.
        save(&path, &ExportState::new("o".into(), "s".into(), 0, 1)).unwrap();
        assert!(load::<ImportState>(&path).is_err());
    }
}

//! `kairosdb import`: lines of ingest JSON (KairosDB's export format) from a file or stdin
//! into a data directory (through the engine) or a running server (over HTTP).
//!
//! Each line is parsed on its own by `parse_ingest` (the `POST /api/v1/datapoints`
//! parser) and checked by `writer::validate`, so an import accepts and refuses exactly
//! what the HTTP API does, and every error names its line. A bad line's valid points are
//! still written, as the HTTP API stores the valid metric objects of a body (spec §2.6);
//! KairosDB's own import does the same, printing the errors. Bad lines are counted and
//! printed, never dropped silently; above `--max-errors` of them the import stops before
//! the offending line (everything before it written and checkpointed).
//!
//! Lines are gathered into batches of about `--batch-points` points. Once the target
//! acknowledges a batch (the engine after `sync`, a server with 204), the state file
//! (`state.rs`) records the input offset after its last line, so an interrupted import
//! re-run with the same arguments skips what was written and ends with the counts of one
//! uninterrupted run. Without a state file (stdin without `--state`), nothing is resumable,
//! but writing the same points again is harmless: a series keeps one value per timestamp.
//!
//! To a server the points are sent re-encoded from the parsed batch (`line.rs`, explicit
//! types), not as the input text: only what passed validation is sent, so the server's
//! answer is 204 unless it disagrees, which stops the import with its message.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use kairosdb_engine::{Engine, EngineConfig};
use kairosdb_model::{Storage, StorageError, WriteBatch};
use kairosdb_protocol::ingest::parse_ingest;

use super::progress::Progress;
use super::state::{self, ImportCounts, ImportState};
use super::{AuthArgs, Body, Http};
use crate::metrics::ServerMetrics;
use crate::writer;

/// At most this many messages are printed for one bad line (all are counted).
const MESSAGES_PER_LINE: usize = 10;

/// Import data points written by `kairosdb export` or by KairosDB's `kairosdb.sh export`:
/// one ingest JSON object per line (a JSON array of them on a line works too).
///
/// Into a data directory (the server must be stopped: the engine locks its directory) or
/// into a running server over HTTP. Lines are checked exactly as POST /api/v1/datapoints
/// checks them; errors are printed with their line numbers and counted.
///
/// Resumable: a state file (default INPUT.import-state) records the last acknowledged
/// line; re-running the same command continues after it. The file is removed when the
/// import completes.
///
/// Exit status: 0 done (bad lines, if any, were reported and are at most --max-errors);
/// 1 stopped (more bad lines than --max-errors, or the target failed; re-run to continue);
/// 2 usage error.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Input file, `-` for stdin. Gzip is recognised by its magic bytes.
    #[arg(long, short = 'f', value_name = "FILE", default_value = "-")]
    pub input: String,

    /// Write into this data directory (a stopped server's `data_dir`).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "to_url",
        conflicts_with = "to_url"
    )]
    pub data_dir: Option<PathBuf>,

    /// Write to this running server, e.g. http://localhost:8080 (POST /api/v1/datapoints).
    #[arg(long, value_name = "URL")]
    pub to_url: Option<String>,

    /// State file for resuming [default: INPUT.import-state; none for stdin].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Stop when more than N lines had errors [default: no limit].
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,

    /// Points per write (and per checkpoint).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub batch_points: usize,

    /// Retries of a request answered 429/503 or that could not connect.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub retries: u32,

    /// Per-request timeout.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout_secs: u64,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Runs the subcommand; returns the process exit status.
pub fn run(args: ImportArgs) -> u8 {
    match import(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("kairosdb import: error: {e:#}");
            1
        }
    }
}

/// Where the points go.
enum Target {
    Engine {
        engine: Box<Engine>,
        metrics: Box<ServerMetrics>,
    },
    Http(Http),
}

impl Target {
    fn open(args: &ImportArgs) -> Result<Target> {
        if let Some(url) = &args.to_url {
            let http = Http::new(
                url,
                &args.auth,
                Duration::from_secs(args.timeout_secs),
                args.retries,
            )?;
            return Ok(Target::Http(http));
        }
        let dir = args
            .data_dir
            .as_ref()
            .context("BUG: clap requires a target")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let config = EngineConfig::new(dir);
        let engine = Engine::open(config).with_context(|| {
            format!(
                "cannot open the engine in {} (a server running on it holds its lock: stop it, or import into it with --to-url)",
                dir.display()
            )
        })?;
        Ok(Target::Engine {
            engine: Box::new(engine),
            metrics: Box::default(),
        })
    }

    fn describe(args: &ImportArgs) -> String {
        match (&args.to_url, &args.data_dir) {
            (Some(url), _) => format!("url:{}", url.trim_end_matches('/')),
            (None, Some(dir)) => format!("data-dir:{}", dir.display()),
            (None, None) => String::new(),
        }
    }

    /// Writes the batch; returns once the target acknowledged it durably.
    fn write(&mut self, batch: WriteBatch, retries: u32) -> Result<()> {
        match self {
            Target::Engine { engine, metrics } => {
                let mut chunks: VecDeque<WriteBatch> = writer::split(batch, 50_000);
                let mut attempt = 0;
                loop {
                    match writer::write_chunks(&**engine, metrics, &mut chunks) {
                        Ok(()) => break,
                        Err(StorageError::Backpressure { retry_after_secs })
                            if attempt < retries =>
                        {
                            attempt += 1;
                            std::thread::sleep(Duration::from_secs(u64::from(
                                retry_after_secs.clamp(1, 60),
                            )));
                        }
                        Err(e) => return Err(e).context("the engine refused a write"),
                    }
                }
                engine.sync().context("the engine failed to sync")?;
                Ok(())
            }
            Target::Http(http) => {
                let mut json = Vec::with_capacity(64 + batch.point_count() * 24);
                json.push(b'[');
                for (i, s) in batch.series.iter().enumerate() {
                    if i > 0 {
                        json.push(b',');
                    }
                    super::line::write_line(
                        &mut json,
                        &s.key.metric,
                        s.key.tags.iter(),
                        s.ttl_secs,
                        &s.points,
                        0..s.points.len(),
                    );
                }
                json.push(b']');
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&json).context("BUG: gzip into memory")?;
                let body = Body {
                    bytes: gz.finish().context("BUG: gzip into memory")?.into(),
                    gzip: true,
                };
                let path = "/api/v1/datapoints";
                let (status, answer) = http.send(reqwest::Method::POST, path, Some(&body))?;
                super::check_ok(status, &answer, http.base(), path)
            }
        }
    }

    fn close(self) -> Result<()> {
        match self {
            Target::Engine { engine, .. } => {
                engine.sync().context("final sync failed")?;
                engine.close().context("closing the engine failed")
            }
            Target::Http(_) => Ok(()),
        }
    }
}

/// Counts the raw bytes read from the input (compressed bytes for gzip), for the bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The decompressed input positioned at `offset`, its raw size if known, and the raw
/// bytes read so far.
type Input = (Box<dyn BufRead>, Option<u64>, Arc<AtomicU64>);

fn open_input(input: &str, offset: u64) -> Result<Input> {
    let read = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read>, Option<u64>) = if input == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let mut file = File::open(input).with_context(|| format!("cannot open {input}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        let mut magic = [0u8; 2];
        let n = file
            .read(&mut magic)
            .with_context(|| format!("cannot read {input}"))?;
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        // A plain file is resumed by seeking; gzip and stdin by reading past the offset.
        let start = if gzip { 0 } else { offset };
        file.seek(SeekFrom::Start(start))
            .with_context(|| format!("cannot seek in {input}"))?;
        read.store(start, Ordering::Relaxed);
        if !gzip {
            let counted = Counting {
                inner: file,
                read: read.clone(),
            };
            return Ok((
                Box::new(BufReader::with_capacity(1 << 20, counted)),
                size,
                read,
            ));
        }
        (Box::new(file), size)
    };
    let mut buffered = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: raw,
            read: read.clone(),
        },
    );
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    let is_plain_file = input != "-" && !gzip;
    if offset > 0 && !is_plain_file {
        let skipped = std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
            .context("cannot read the input up to the resume point")?;
        if skipped < offset {
            bail!("the input has {skipped} bytes, less than the {offset} the state file says were imported; is it the same input?");
        }
    }
    Ok((reader, size, read))
}

/// The points a line holds (entries of `datapoints` plus a single point), for counting
/// what a bad line lost; 0 when the line is not JSON.
fn points_in_line(line: &[u8]) -> u64 {
    fn object(v: &serde_json::Value) -> u64 {
        let single =
            (v.get("timestamp").is_some() || v.get("time").is_some()) && v.get("value").is_some();
        let listed = v
            .get("datapoints")
            .and_then(|d| d.as_array())
            .map_or(0, |d| d.len());
        u64::from(single) + listed as u64
    }
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Array(items)) => items.iter().map(object).sum(),
        Ok(v) => object(&v),
        Err(_) => 0,
    }
}

fn import(args: &ImportArgs) -> Result<bool> {
    let target_name = Target::describe(args);
    let state_path = match (&args.state, args.input.as_str()) {
        (Some(p), _) => Some(p.clone()),
        (None, "-") => None,
        (None, input) => Some(PathBuf::from(format!("{input}.import-state"))),
    };
    let mut committed = ImportState::new(args.input.clone(), target_name.clone());
    if let Some(path) = &state_path {
        if let Some(previous) = state::load::<ImportState>(path)? {
            if previous.input != committed.input || previous.target != committed.target {
                bail!(
                    "{} belongs to an import of {} into {}, not of {} into {}; use another --state or delete it",
                    path.display(),
                    previous.input,
                    previous.target,
                    committed.input,
                    committed.target
                );
            }
            eprintln!(
                "resuming after line {} (byte {}) from {}",
                previous.line,
                previous.offset,
                path.display()
            );
            committed = previous;
        }
    }

    let (mut reader, size, raw_read) = open_input(&args.input, committed.offset)?;
    let mut target = Target::open(args)?;
    let mut progress = Progress::new("import", size, "bytes");
    progress.resume_at(
        raw_read.load(Ordering::Relaxed),
        committed.counts.points_written,
    );

    // `current` runs ahead of `committed` by the lines in `pending`.
    let mut current = committed.clone();
    let mut pending = WriteBatch::new();
    let mut pending_points = 0usize;
    let mut line = Vec::with_capacity(1 << 16);
    let mut stopped_at = None;

    let flush = |pending: &mut WriteBatch,
                 pending_points: &mut usize,
                 current: &mut ImportState,
                 committed: &mut ImportState,
                 target: &mut Target|
     -> Result<()> {
        if *pending_points > 0 {
            target.write(std::mem::take(pending), args.retries)?;
        }
        current.counts.points_written += *pending_points as u64;
        *pending_points = 0;
        *committed = current.clone();
        if let Some(path) = &state_path {
            state::save(path, committed)?;
        }
        Ok(())
    };

    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {} after line {}", args.input, current.line))?;
        if n == 0 {
            break;
        }
        let number = current.line + 1;
        let text = line.trim_ascii();
        let mut messages = Vec::new();
        let mut batch = WriteBatch::new();
        if !text.is_empty() {
            let outcome = parse_ingest(text);
            batch = outcome.batch;
            messages = outcome.errors;
            messages.extend(writer::validate(&mut batch));
        }
        if !messages.is_empty() {
            if args
                .max_errors
                .is_some_and(|max| current.counts.bad_lines >= max)
            {
                // Stop before this line: what came before is written and checkpointed,
                // and a re-run (with a fixed line or a higher --max-errors) starts here.
                flush(
                    &mut pending,
                    &mut pending_points,
                    &mut current,
                    &mut committed,
                    &mut target,
                )?;
                for m in messages.iter().take(MESSAGES_PER_LINE) {
                    progress.println(&format!("line {number}: {m}"));
                }
                stopped_at = Some(number);
                break;
            }
            for m in messages.iter().take(MESSAGES_PER_LINE) {
                progress.println(&format!("line {number}: {m}"));
            }
            if messages.len() > MESSAGES_PER_LINE {
                progress.println(&format!(
                    "line {number}: {} more errors",
                    messages.len() - MESSAGES_PER_LINE
                ));
            }
            let written = batch.point_count() as u64;
            current.counts.bad_lines += 1;
            current.counts.errors += messages.len() as u64;
            current.counts.points_rejected += points_in_line(text).saturating_sub(written);
        }
        current.counts.lines += 1;
        current.counts.series += batch.series.len() as u64;
        current.line = number;
        current.offset += n as u64;
        pending_points += batch.point_count();
        pending.series.extend(batch.series);
        if pending_points >= args.batch_points {
            flush(
                &mut pending,
                &mut pending_points,
                &mut current,
                &mut committed,
                &mut target,
            )?;
        }
        progress.update(
            raw_read.load(Ordering::Relaxed),
            current.counts.points_written + pending_points as u64,
            &format!("line {number}"),
        );
    }
    if stopped_at.is_none() {
        flush(
            &mut pending,
            &mut pending_points,
            &mut current,
            &mut committed,
            &mut target,
        )?;
    }
    target.close()?;
    progress.finish();

    let c: &ImportCounts = &committed.counts;
    let summary = format!(
        "lines={} bad_lines={} errors={} series={} points_written={} points_rejected={} seconds={:.1}",
        c.lines,
        c.bad_lines,
        c.errors,
        c.series,
        c.points_written,
        c.points_rejected,
        progress.elapsed().as_secs_f64()
    );
    match stopped_at {
        Some(number) => {
            eprintln!("summary: import stopped at line {number} ({} bad lines before it, --max-errors {}); written so far: {summary}", c.bad_lines, args.max_errors.unwrap_or_default());
            match &state_path {
                Some(p) => eprintln!(
                    "fix line {number} or raise --max-errors, then re-run the same command to continue (state in {})",
                    p.display()
                ),
                None => eprintln!("no state file (stdin without --state): a re-run starts from the beginning"),
            }
            Ok(false)
        }
        None => {
            if let Some(path) = &state_path {
                state::remove(path)?;
            }
            eprintln!("summary: import done into {target_name}: {summary}");
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_points_of_a_line() {
        assert_eq!(
            points_in_line(br#"{"name":"m","tags":{"h":"a"},"datapoints":[[1,2],[3,4]]}"#),
            2
        );
        assert_eq!(
            points_in_line(br#"[{"name":"m","timestamp":1,"value":2,"datapoints":[[1,2]]},{"name":"n","datapoints":[]}]"#),
            2
        );
        assert_eq!(points_in_line(b"{not json"), 0);
    }

    fn write_gz(path: &std::path::Path, text: &str) {
        let mut gz = flate2::write::GzEncoder::new(
            File::create(path).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    }

    #[test]
    fn opens_plain_and_gzip_input_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let text = "line one\nline two\nline three\n";
        let plain = dir.path().join("in.json");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("in.gz.whatever");
        write_gz(&gz, text);
        for path in [&plain, &gz] {
            let (mut r, size, _) = open_input(path.to_str().unwrap(), 9).unwrap();
            assert!(size.is_some());
            let mut rest = String::new();
            r.read_to_string(&mut rest).unwrap();
            assert_eq!(rest, "line two\nline three\n", "{}", path.display());
        }
        // An offset past the end of a gzip input means another input.
        assert!(open_input(gz.to_str().unwrap(), 1000).is_err());
    }
}

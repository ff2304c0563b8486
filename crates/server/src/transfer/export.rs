//! `kairosdb export`: metrics out of a data directory or a running server, as lines of
//! ingest JSON in KairosDB's export format (`line.rs`).
//!
//! Per metric (sorted by name), the first and last timestamps in the selected range are
//! found with two one-point reads, then the range between them is read chunk by chunk
//! (`--chunk`, 3 weeks by default: KairosDB's Cassandra row width, so its export also
//! writes one line per series per 3 weeks), one line per series per chunk, long series
//! cut into lines of at most `--line-points` points. Memory is bounded by one chunk of one
//! metric.
//!
//! Sources:
//! * `--data-dir`: a stopped server's data directory, opened through the engine with no
//!   background maintenance. Exact: each series keeps its stored type.
//! * `--from-url`: a running server (ours or Java KairosDB) over `/api/v1/metricnames`,
//!   `/api/v1/datapoints/query/tags` and `/api/v1/datapoints/query` with a tag group-by on
//!   every tag name, so each result group is one series. KairosDB's query response does
//!   not carry the stored type, and prints a whole double below 10^7 as an integer
//!   (`5.0` → `5`): a group with any number written with `.` or an exponent (or `-0`) is
//!   exported as doubles, other numbers as longs. So a double series whose every value in
//!   a chunk is whole and below 10^7 comes back as longs: the same values and the same
//!   query answers, but not the same stored type. Export from `--data-dir` where that
//!   matters.
//!
//! Resume (`state.rs`): with an output file, a state file records finished metrics and
//! the next chunk of the current one; gzip output is written as one gzip member per
//! checkpoint, so truncating to the recorded length leaves a valid stream to append to
//! (gzip readers, `import` and Java's `GZIPInputStream` included, read concatenated
//! members as one stream).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use kairosdb_engine::{Engine, EngineConfig, WalSync};
use kairosdb_model::{
    DataType, Order, Points, SeriesQuery, Storage, TagFilter, TagMatcher, TimeRange,
};
use serde_json::json;
use serde_json::value::RawValue;

use super::line::write_line;
use super::progress::Progress;
use super::state::{self, ExportState};
use super::{parse_duration_ms, parse_time, AuthArgs, Http};

/// How often the state file is rewritten while a metric is being exported.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Export data points as KairosDB's `kairosdb.sh export` does: one ingest JSON object per
/// line, `{"name":..,"tags":{..},"datapoints":[[ts,value,"type"],..]}`, which
/// `kairosdb import` and Java KairosDB's import read.
///
/// From a stopped server's data directory (--data-dir), or from a running server over HTTP
/// (--from-url; needed while a server holds the data directory's lock).
///
/// Resumable when writing a file: a state file (default OUTPUT.export-state) records the
/// metrics and chunks written; re-running the same command continues. It is removed when
/// the export completes.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Read this data directory (the server must be stopped).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "from_url",
        conflicts_with = "from_url"
    )]
    pub data_dir: Option<PathBuf>,

    /// Read from this running server, e.g. http://localhost:8080.
    #[arg(long, value_name = "URL")]
    pub from_url: Option<String>,

    /// Metric to export (repeatable) [default: every metric].
    #[arg(long = "metric", short = 'n', value_name = "NAME")]
    pub metrics: Vec<String>,

    /// Export the metrics whose names start with PREFIX (with --metric: those too).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// Start of the range, inclusive: milliseconds, RFC 3339, or a duration ago (1h, 7d)
    /// [default: the earliest point].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub start: Option<String>,

    /// End of the range, inclusive, in the same forms [default: the latest point].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub end: Option<String>,

    /// Only series with this tag value (repeatable; values of one name are alternatives,
    /// different names must all match).
    #[arg(long = "tag", value_name = "NAME=VALUE")]
    pub tags: Vec<String>,

    /// Output file, `-` for stdout (`-f` as in KairosDB's `export -f`).
    #[arg(
        long,
        short = 'o',
        visible_short_alias = 'f',
        value_name = "FILE",
        default_value = "-"
    )]
    pub output: String,

    /// Compress with gzip (implied by an output name ending in .gz).
    #[arg(long)]
    pub gzip: bool,

    /// State file for resuming [default: OUTPUT.export-state; none for stdout].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Time span read at once and written as one line per series (ms, s, m, h, d, w).
    #[arg(long, value_name = "DURATION", default_value = "3w")]
    pub chunk: String,

    /// Most points on one line; longer series chunks continue on the next line.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub line_points: usize,

    /// Retries of a request answered 429/503 or that could not connect (--from-url).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub retries: u32,

    /// Per-request timeout (--from-url).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout_secs: u64,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Runs the subcommand; returns the process exit status.
pub fn run(args: ExportArgs) -> u8 {
    match export(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kairosdb export: error: {e:#}");
            1
        }
    }
}

/// The tag selection: name → accepted values.
type Selection = Vec<(String, Vec<String>)>;

fn parse_tags(tags: &[String]) -> Result<Selection> {
    let mut out: Selection = Vec::new();
    for t in tags {
        let Some((name, value)) = t.split_once('=') else {
            bail!("--tag {t:?}: expected NAME=VALUE");
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value.to_string()),
            None => out.push((name.to_string(), vec![value.to_string()])),
        }
    }
    Ok(out)
}

/// One series of one chunk, ready to be written.
#[derive(Debug, PartialEq)]
struct Series {
    /// Sorted by name.
    tags: Vec<(String, String)>,
    points: Points,
}

impl Series {
    /// The identity counted in `ExportCounts::series` (tags and type).
    fn id(&self) -> String {
        let mut id = self.points.data_type().ingest_name().to_string();
        for (k, v) in &self.tags {
            id.push('\u{0}');
            id.push_str(k);
            id.push('\u{0}');
            id.push_str(v);
        }
        id
    }
}

enum Source {
    Engine(Engine),
    Http(Http),
}

impl Source {
    fn open(args: &ExportArgs) -> Result<Source> {
        if let Some(url) = &args.from_url {
            return Ok(Source::Http(Http::new(
                url,
                &args.auth,
                Duration::from_secs(args.timeout_secs),
                args.retries,
            )?));
        }
        let dir = args
            .data_dir
            .as_ref()
            .context("BUG: clap requires a source")?;
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        // Reads only: no maintenance thread (no sealing or retention while exporting),
        // and nothing of ours needs syncing.
        let config = EngineConfig {
            background: false,
            wal_sync: WalSync::None,
            ..EngineConfig::new(dir)
        };
        let engine = Engine::open(config).with_context(|| {
            format!(
                "cannot open the engine in {} (a server running on it holds its lock: export from it with --from-url)",
                dir.display()
            )
        })?;
        Ok(Source::Engine(engine))
    }

    fn describe(args: &ExportArgs) -> String {
        let from = match (&args.from_url, &args.data_dir) {
            (Some(url), _) => format!("url:{}", url.trim_end_matches('/')),
            (None, Some(dir)) => format!("data-dir:{}", dir.display()),
            (None, None) => String::new(),
        };
        format!(
            "{from} metrics={:?} prefix={:?} tags={:?} chunk={}",
            args.metrics, args.prefix, args.tags, args.chunk
        )
    }

    fn metric_names(&self) -> Result<Vec<String>> {
        match self {
            Source::Engine(e) => Ok(e.metric_names(None)?),
            Source::Http(h) => {
                let answer = h.get("/api/v1/metricnames")?;
                let v: serde_json::Value =
                    serde_json::from_slice(&answer).context("/api/v1/metricnames: not JSON")?;
                let names = v["results"]
                    .as_array()
                    .context("/api/v1/metricnames: no results array")?;
                Ok(names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect())
            }
        }
    }

    /// The first (or, with `last`, the last) timestamp of the metric's selected series in
    /// `range`: a one-point read per series.
    fn edge(
        &self,
        metric: &str,
        tags: &Selection,
        range: TimeRange,
        last: bool,
    ) -> Result<Option<i64>> {
        let pick = |found: Option<i64>, t: i64| {
            Some(found.map_or(t, |f| if last { f.max(t) } else { f.min(t) }))
        };
        let mut found = None::<i64>;
        match self {
            Source::Engine(e) => {
                let query = SeriesQuery {
                    limit: Some(1),
                    order: if last { Order::Desc } else { Order::Asc },
                    ..SeriesQuery::new(metric, tag_filter(tags), range)
                };
                for s in e.query(&query)?.expect_complete() {
                    for &t in s.points.timestamps() {
                        found = pick(found, t);
                    }
                }
            }
            Source::Http(h) => {
                let mut m = metric_json(metric, tags);
                m["limit"] = json!(1);
                m["order"] = json!(if last { "desc" } else { "asc" });
                let body = query_json(range, m);
                let answer = h.post_json("/api/v1/datapoints/query", &body)?;
                let response: QueryResponse = serde_json::from_slice(&answer)
                    .context("/api/v1/datapoints/query: unexpected answer")?;
                for q in &response.queries {
                    for r in &q.results {
                        for (t, _) in &r.values {
                            found = pick(found, *t);
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Every selected series of `metric` with points in `range`, sorted by tags and type.
    fn read(&self, metric: &str, tags: &Selection, range: TimeRange) -> Result<Vec<Series>> {
        let mut out = match self {
            Source::Engine(e) => {
                let query = SeriesQuery::new(metric, tag_filter(tags), range);
                e.query(&query)?
                    .expect_complete()
                    .into_iter()
                    .filter(|s| !s.points.is_empty())
                    .map(|s| Series {
                        tags: s
                            .key
                            .tags
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        points: s.points,
                    })
                    .collect::<Vec<_>>()
            }
            Source::Http(h) => read_http(h, metric, tags, range)?,
        };
        out.sort_by(|a, b| {
            (&a.tags, a.points.data_type().code()).cmp(&(&b.tags, b.points.data_type().code()))
        });
        Ok(out)
    }

    fn close(self) -> Result<()> {
        match self {
            Source::Engine(e) => e.close().context("closing the engine failed"),
            Source::Http(_) => Ok(()),
        }
    }
}

fn tag_filter(tags: &Selection) -> TagFilter {
    TagFilter {
        tags: tags
            .iter()
            .map(|(name, values)| {
                let matchers = values
                    .iter()
                    .map(|v| TagMatcher::Exact(v.clone()))
                    .collect();
                (name.clone(), matchers)
            })
            .collect(),
    }
}

fn metric_json(metric: &str, tags: &Selection) -> serde_json::Value {
    let mut m = json!({ "name": metric });
    if !tags.is_empty() {
        let t: serde_json::Map<String, serde_json::Value> =
            tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        m["tags"] = serde_json::Value::Object(t);
    }
    m
}

fn query_json(range: TimeRange, metric: serde_json::Value) -> serde_json::Value {
    json!({
        "start_absolute": range.start,
        "end_absolute": range.end,
        "metrics": [metric],
    })
}

#[derive(serde::Deserialize)]
struct QueryResponse {
    queries: Vec<QueryAnswer>,
}

#[derive(serde::Deserialize)]
struct QueryAnswer {
    results: Vec<ResultGroup>,
}

#[derive(serde::Deserialize)]
struct ResultGroup {
    #[serde(default)]
    tags: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    values: Vec<(i64, Box<RawValue>)>,
}

/// One chunk over HTTP: the metric's tag names, then a query grouped by all of them.
fn read_http(h: &Http, metric: &str, tags: &Selection, range: TimeRange) -> Result<Vec<Series>> {
    let body = query_json(range, metric_json(metric, tags));
    let answer = h.post_json("/api/v1/datapoints/query/tags", &body)?;
    let v: serde_json::Value =
        serde_json::from_slice(&answer).context("/api/v1/datapoints/query/tags: not JSON")?;
    let names: Vec<String> = v["queries"][0]["results"][0]["tags"]
        .as_object()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    let mut m = metric_json(metric, tags);
    if !names.is_empty() {
        m["group_by"] = json!([{ "name": "tag", "tags": names }]);
    }
    let answer = h.post_json("/api/v1/datapoints/query", &query_json(range, m))?;
    let response: QueryResponse =
        serde_json::from_slice(&answer).context("/api/v1/datapoints/query: unexpected answer")?;
    let mut out = Vec::new();
    for q in response.queries {
        for group in q.results {
            if group.values.is_empty() {
                continue;
            }
            let mut series_tags = Vec::new();
            for (name, values) in &group.tags {
                match values.as_slice() {
                    [one] => series_tags.push((name.clone(), one.clone())),
                    _ => bail!(
                        "{metric}: a result group of the tag group-by holds several values of tag {name} ({values:?}); the server grouped several series together"
                    ),
                }
            }
            out.extend(group_series(metric, series_tags, &group.values)?);
        }
    }
    Ok(out)
}

/// Splits one result group into a numeric and a string series. The numbers are doubles
/// if any of them is written as a double (see the module documentation).
fn group_series(
    metric: &str,
    tags: Vec<(String, String)>,
    values: &[(i64, Box<RawValue>)],
) -> Result<Vec<Series>> {
    let looks_double = |text: &str| text.contains(['.', 'e', 'E']) || text == "-0";
    let doubles = values
        .iter()
        .any(|(_, v)| !v.get().starts_with('"') && looks_double(v.get()));
    let mut numbers = Points::empty(if doubles {
        DataType::Double
    } else {
        DataType::Long
    });
    let mut strings = Points::empty(DataType::String);
    for (t, raw) in values {
        let text = raw.get();
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).context("BUG: a JSON string parses")?;
            strings.push(*t, kairosdb_model::Value::String(s));
        } else if text == "null" {
            bail!("{metric}: the server answered null at {t}");
        } else if doubles {
            let v: f64 = text
                .parse()
                .with_context(|| format!("{metric}: value {text} at {t} is not a number"))?;
            numbers.push(*t, kairosdb_model::Value::Double(v));
        } else {
            let v: i64 = text
                .parse()
                .with_context(|| format!("{metric}: value {text} at {t} is not a long"))?;
            numbers.push(*t, kairosdb_model::Value::Long(v));
        }
    }
    let mut out = Vec::new();
    for points in [numbers, strings] {
        if !points.is_empty() {
            out.push(Series {
                tags: tags.clone(),
                points,
            });
        }
    }
    Ok(out)
}

/// The output: a file (plain, or gzip as one member per checkpoint) or stdout.
struct Output {
    file: Option<File>,
    gzip: bool,
    /// Bytes not yet handed to the file (plain) or the encoder's output (gzip).
    encoder: Option<GzEncoder<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl Output {
    /// Opens the output; a resumed export truncates it to `keep` bytes first.
    fn open(path: &str, gzip: bool, keep: Option<u64>) -> Result<Output> {
        let file = if path == "-" {
            None
        } else {
            let file = match keep {
                Some(len) => {
                    let mut f = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .with_context(|| format!("cannot open {path} to resume the export"))?;
                    let actual = f.metadata()?.len();
                    if actual < len {
                        bail!("{path} has {actual} bytes, less than the {len} the state file says were written; is it the same file?");
                    }
                    f.set_len(len)?;
                    f.seek(SeekFrom::End(0))?;
                    f
                }
                None => File::create(path).with_context(|| format!("cannot create {path}"))?,
            };
            Some(file)
        };
        Ok(Output {
            file,
            gzip,
            encoder: None,
            buffer: Vec::with_capacity(1 << 20),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.gzip {
            let enc = self
                .encoder
                .get_or_insert_with(|| GzEncoder::new(Vec::new(), flate2::Compression::default()));
            enc.write_all(bytes)?;
            if enc.get_ref().len() >= 1 << 20 {
                let compressed = std::mem::take(enc.get_mut());
                self.emit(&compressed)?;
            }
        } else {
            self.buffer.extend_from_slice(bytes);
            if self.buffer.len() >= 1 << 20 {
                let data = std::mem::take(&mut self.buffer);
                self.emit(&data)?;
                self.buffer = data;
                self.buffer.clear();
            }
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes).context("cannot write the output file"),
            None => std::io::stdout()
                .lock()
                .write_all(bytes)
                .context("cannot write to stdout"),
        }
    }

    /// Writes everything out (ending the current gzip member) and returns the output
    /// file's length, once it is on disk.
    fn checkpoint(&mut self) -> Result<u64> {
        if let Some(enc) = self.encoder.take() {
            let rest = enc.finish()?;
            self.emit(&rest)?;
        }
        let data = std::mem::take(&mut self.buffer);
        self.emit(&data)?;
        match &mut self.file {
            Some(f) => {
                f.sync_data().context("cannot sync the output file")?;
                Ok(f.stream_position()?)
            }
            None => {
                std::io::stdout().lock().flush()?;
                Ok(0)
            }
        }
    }
}

fn export(args: &ExportArgs) -> Result<()> {
    let tags = parse_tags(&args.tags)?;
    let chunk_ms = parse_duration_ms(&args.chunk)?;
    if chunk_ms <= 0 {
        bail!("--chunk must be longer than 0");
    }
    let line_points = args.line_points.max(1);
    let now = super::now_ms();
    let start = args
        .start
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?
        .unwrap_or(i64::MIN);
    let end = args
        .end
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?
        .unwrap_or(i64::MAX);
    if start > end {
        bail!("--start ({start}) is after --end ({end})");
    }
    let gzip = args.gzip || args.output.ends_with(".gz");
    let source_name = Source::describe(args);
    let state_path = match (&args.state, args.output.as_str()) {
        (Some(p), _) => Some(p.clone()),
        (None, "-") => None,
        (None, output) => Some(PathBuf::from(format!("{output}.export-state"))),
    };
    if args.output == "-" && args.state.is_some() {
        bail!("--state needs an output file: an export to stdout cannot be resumed");
    }

    let mut st = ExportState::new(args.output.clone(), source_name.clone(), start, end);
    let mut resumed = false;
    if let Some(path) = &state_path {
        if let Some(previous) = state::load::<ExportState>(path)? {
            if previous.output != st.output || previous.source != st.source {
                bail!(
                    "{} belongs to an export of {} into {}; use another --state or delete it",
                    path.display(),
                    previous.source,
                    previous.output
                );
            }
            eprintln!(
                "resuming after {} metrics{} from {}",
                previous.done.len(),
                previous
                    .current
                    .as_ref()
                    .map(|(m, _)| format!(" (in {m})"))
                    .unwrap_or_default(),
                path.display()
            );
            st = previous;
            resumed = true;
        }
    }
    // A resumed export keeps the range it started with (a relative --start moves).
    let range = TimeRange::new(st.start, st.end);

    let source = Source::open(args)?;
    let mut names: BTreeSet<String> = args.metrics.iter().cloned().collect();
    if args.metrics.is_empty() || args.prefix.is_some() {
        let prefix = args.prefix.as_deref().unwrap_or("");
        names.extend(
            source
                .metric_names()?
                .into_iter()
                .filter(|n| n.starts_with(prefix)),
        );
    }
    let mut out = Output::open(&args.output, gzip, resumed.then_some(st.output_bytes))?;
    let mut progress = Progress::new("export", Some(names.len() as u64), "metrics");
    let done: BTreeSet<String> = st.done.iter().cloned().collect();
    progress.resume_at(done.len() as u64, st.counts.points);

    let save = |st: &mut ExportState, out: &mut Output| -> Result<()> {
        let len = out.checkpoint()?;
        if let Some(path) = &state_path {
            st.output_bytes = len;
            state::save(path, st)?;
        }
        Ok(())
    };

    let mut text = Vec::with_capacity(1 << 20);
    let mut last_checkpoint = Instant::now();
    for (index, metric) in names.iter().enumerate() {
        if done.contains(metric) {
            continue;
        }
        let (mut first_chunk, mut seen) = match &st.current {
            Some((m, chunk)) if m == metric => (Some(*chunk), st.current_series.clone()),
            _ => (None, Vec::new()),
        };
        let first = source.edge(metric, &tags, range, false)?;
        let last = source.edge(metric, &tags, range, true)?;
        if let Some((lo, hi)) = first.zip(last) {
            let lo_chunk = lo.div_euclid(chunk_ms);
            let hi_chunk = hi.div_euclid(chunk_ms);
            let mut chunk = first_chunk.take().map_or(lo_chunk, |c| c.max(lo_chunk));
            let mut seen_set: BTreeSet<String> = seen.drain(..).collect();
            while chunk <= hi_chunk {
                let from = i128::from(chunk) * i128::from(chunk_ms);
                let to = from + i128::from(chunk_ms) - 1;
                let chunk_range = TimeRange::new(
                    from.max(i128::from(range.start)) as i64,
                    to.min(i128::from(range.end)) as i64,
                );
                let series = source.read(metric, &tags, chunk_range)?;
                if series.is_empty() {
                    // Sparse data: jump to the chunk of the next point instead of
                    // reading every empty chunk in between.
                    let rest = TimeRange::new(chunk_range.end.saturating_add(1), range.end);
                    match source.edge(metric, &tags, rest, false)? {
                        Some(next) if chunk_range.end < range.end => {
                            chunk = next.div_euclid(chunk_ms);
                            continue;
                        }
                        _ => break,
                    }
                }
                for s in series {
                    if seen_set.insert(s.id()) {
                        st.counts.series += 1;
                    }
                    let n = s.points.len();
                    let mut at = 0;
                    while at < n {
                        let until = (at + line_points).min(n);
                        text.clear();
                        let skipped = write_line(
                            &mut text,
                            metric,
                            s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                            0,
                            &s.points,
                            at..until,
                        );
                        if skipped > 0 {
                            progress.println(&format!(
                                "{metric}: {skipped} NaN/Infinity values left out (JSON cannot carry them)"
                            ));
                        }
                        out.write(&text)?;
                        st.counts.lines += 1;
                        st.counts.points += (until - at - skipped) as u64;
                        st.counts.points_skipped += skipped as u64;
                        at = until;
                    }
                }
                chunk += 1;
                progress.update(index as u64, st.counts.points, metric);
                if chunk <= hi_chunk && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                    st.current = Some((metric.clone(), chunk));
                    st.current_series = seen_set.iter().cloned().collect();
                    save(&mut st, &mut out)?;
                    last_checkpoint = Instant::now();
                }
            }
        }
        st.done.push(metric.clone());
        st.current = None;
        st.current_series.clear();
        st.counts.metrics += 1;
        progress.update(index as u64 + 1, st.counts.points, metric);
        if state_path.is_some() {
            save(&mut st, &mut out)?;
            last_checkpoint = Instant::now();
        }
    }
    out.checkpoint()?;
    source.close()?;
    progress.finish();
    if let Some(path) = &state_path {
        state::remove(path)?;
    }
    let c = &st.counts;
    eprintln!(
        "summary: export done from {}: metrics={} series={} lines={} points={} points_skipped={} seconds={:.1}",
        source_name.split(' ').next().unwrap_or_default(),
        c.metrics,
        c.series,
        c.lines,
        c.points,
        c.points_skipped,
        progress.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(values: &[(i64, &str)]) -> Vec<(i64, Box<RawValue>)> {
        values
            .iter()
            .map(|(t, v)| (*t, RawValue::from_string(v.to_string()).unwrap()))
            .collect()
    }

    #[test]
    fn a_group_with_a_double_is_all_doubles_and_strings_split_off() {
        let tags = vec![("h".to_string(), "a".to_string())];
        let series = group_series(
            "m",
            tags.clone(),
            &raw(&[(1, "5"), (2, "0.1"), (3, "\"up\""), (4, "1.0E300")]),
        )
        .unwrap();
        assert_eq!(
            series,
            vec![
                Series {
                    tags: tags.clone(),
                    points: Points::Double {
                        ts: vec![1, 2, 4],
                        values: vec![5.0, 0.1, 1e300]
                    }
                },
                Series {
                    tags: tags.clone(),
                    points: Points::String {
                        ts: vec![3],
                        values: vec!["up".into()]
                    }
                },
            ]
        );
        let longs = group_series(
            "m",
            tags.clone(),
            &raw(&[(1, "5"), (2, "-9223372036854775808")]),
        )
        .unwrap();
        assert_eq!(
            longs[0].points,
            Points::Long {
                ts: vec![1, 2],
                values: vec![5, i64::MIN]
            }
        );
        let negative_zero = group_series("m", tags, &raw(&[(1, "-0")])).unwrap();
        let Points::Double { values, .. } = &negative_zero[0].points else {
            panic!("expected doubles, got {negative_zero:?}");
        };
        assert!(values[0] == 0.0 && values[0].is_sign_negative());
    }

    #[test]
    fn tag_selection_groups_values_by_name() {
        let s = parse_tags(&["host=a".into(), "dc=x".into(), "host=b=c".into()]).unwrap();
        assert_eq!(
            s,
            vec![
                ("host".to_string(), vec!["a".to_string(), "b=c".to_string()]),
                ("dc".to_string(), vec!["x".to_string()]),
            ]
        );
        assert!(parse_tags(&["novalue".into()]).is_err());
    }

    #[test]
    fn gzip_output_resumes_as_concatenated_members() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gz");
        let path = path.to_str().unwrap();
        let mut out = Output::open(path, true, None).unwrap();
        out.write(b"one\n").unwrap();
        let kept = out.checkpoint().unwrap();
        out.write(b"lost\n").unwrap();
        out.checkpoint().unwrap();
        drop(out);
        // Resuming truncates what came after the checkpoint and appends a new member.
        let mut out = Output::open(path, true, Some(kept)).unwrap();
        out.write(b"two\n").unwrap();
        out.checkpoint().unwrap();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
    }
}

//! `kairosdb verify`: replays queries against two KairosDB-compatible HTTP endpoints (the
//! reference, e.g. Java KairosDB, and the candidate, e.g. kairosdb-rs on the same data) and
//! prints what differs. The comparison is pure (`compare.rs`), the generated sample too
//! (`sample.rs`); this file does the HTTP and the report.
//!
//! Not here: writing data, or judging which side is right.

pub mod compare;
pub mod sample;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use self::compare::{Difference, Options, Tolerance};

/// Every compared query matched, and so did the metric names.
pub const EXIT_MATCH: u8 = 0;
/// At least one difference.
pub const EXIT_MISMATCH: u8 = 1;
/// The comparison could not run: an endpoint unreachable or answering the metric-name or
/// tag listing with an error, or an invalid query file (clap's usage errors are 2 too).
pub const EXIT_CANNOT_RUN: u8 = 2;

/// Replay queries against two KairosDB endpoints and report every difference.
///
/// Queries come from --queries FILE, or are generated (--sample N, the default with
/// N = 20) from the reference's /api/v1/metricnames and each chosen metric's tags
/// (/api/v1/datapoints/query/tags): raw reads, a tag filter, a tag group-by, sum/avg/count
/// with sampling and a newest-100 read, over --start..--end. The metric-name lists are
/// compared too. Result groups are matched by (name, tags, group_by) in any order; numbers
/// within --tolerance (relative) or --absolute-tolerance; strings exactly.
///
/// Exit status: 0 everything matched; 1 a difference was found; 2 the comparison could not
/// run (an endpoint unreachable or failing the name/tag listing, an invalid query file, a
/// usage error).
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Base URL of the reference, e.g. http://kairosdb-java:8080 (plain HTTP).
    #[arg(long, value_name = "URL")]
    pub reference: String,

    /// Base URL of the candidate, e.g. http://localhost:8080.
    #[arg(long, value_name = "URL")]
    pub candidate: String,

    /// Query bodies to replay: a JSON array of KairosDB query documents, or one document
    /// per line (JSON lines; blank lines ignored), or a single document.
    #[arg(long, value_name = "FILE", conflicts_with = "sample")]
    pub queries: Option<PathBuf>,

    /// Generate N queries from the reference's metrics [default: 20].
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,

    /// Seed of --sample: the same seed, metrics and window give the same queries.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Start of --sample's window, milliseconds since the epoch [default: 0, 1970-01-01].
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub start: Option<i64>,

    /// End of --sample's window, milliseconds since the epoch [default: now, fixed once
    /// when verify starts so both sides get the same window].
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub end: Option<i64>,

    /// Only metrics whose names start with PREFIX: the metric-name lists compared and the
    /// metrics --sample draws from (e.g. one team's metrics, or data that is not being
    /// written while verify runs).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,

    /// Relative tolerance for numbers.
    #[arg(long, value_name = "REL", default_value_t = 1e-9)]
    pub tolerance: f64,

    /// Absolute tolerance for numbers near zero.
    #[arg(long, value_name = "ABS", default_value_t = 1e-12)]
    pub absolute_tolerance: f64,

    /// Do not compare `sample_size` (raw points read), which may differ between backends
    /// that read the same data differently.
    #[arg(long)]
    pub ignore_sample_size: bool,

    /// Per-request timeout.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout_secs: u64,
}

/// Runs the subcommand; returns the process exit status.
pub fn run(args: VerifyArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kairosdb verify: error: cannot start the tokio runtime: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    match runtime.block_on(verify(&args)) {
        Ok(true) => EXIT_MATCH,
        Ok(false) => EXIT_MISMATCH,
        Err(e) => {
            eprintln!("kairosdb verify: error: {e:#}");
            EXIT_CANNOT_RUN
        }
    }
}

/// One query to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub label: String,
    pub body: Value,
}

/// Reads a query file: a JSON array of query documents, a single document, or one
/// document per line.
pub fn parse_query_file(text: &str) -> Result<Vec<Replay>> {
    let describe = |label: String, body: &Value| -> Result<Replay> {
        let metrics = body
            .get("metrics")
            .and_then(Value::as_array)
            .with_context(|| format!("{label}: not a KairosDB query (no \"metrics\" array)"))?;
        let names: Vec<&str> = metrics
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str))
            .collect();
        Ok(Replay {
            label: format!("{label} ({})", names.join(", ")),
            body: body.clone(),
        })
    };
    if let Ok(whole) = serde_json::from_str::<Value>(text) {
        return match whole {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, body)| describe(format!("query {}", i + 1), body))
                .collect(),
            body @ Value::Object(_) => Ok(vec![describe("query 1".to_string(), &body)?]),
            _ => bail!("expected a JSON array of queries, a query object or JSON lines"),
        };
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let body: Value = serde_json::from_str(line)
            .with_context(|| format!("line {}: not JSON (expected one query per line)", i + 1))?;
        out.push(describe(format!("line {}", i + 1), &body)?);
    }
    if out.is_empty() {
        bail!("no queries in the file");
    }
    Ok(out)
}

/// An endpoint's base URL and the client to reach it.
struct Endpoint<'a> {
    role: &'static str,
    base: String,
    client: &'a reqwest::Client,
}

impl Endpoint<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Status and JSON body (`Null` when the body is not JSON); an error when the endpoint
    /// cannot be reached.
    async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> Result<(u16, Value)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the {} at {}", self.role, self.url(path)))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| {
            format!(
                "reading the {}'s answer to {} failed",
                self.role,
                self.url(path)
            )
        })?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request, path).await
    }

    /// The endpoint's metric names that start with `prefix`.
    async fn metric_names(&self, prefix: &str) -> Result<Vec<String>> {
        let path = "/api/v1/metricnames";
        let (status, body) = self.send(self.client.get(self.url(path)), path).await?;
        if status != 200 {
            bail!(
                "the {} answered {status} to {}: {body}",
                self.role,
                self.url(path)
            );
        }
        let names = body
            .get("results")
            .and_then(Value::as_array)
            .with_context(|| format!("the {}'s {path} has no results array", self.role))?;
        Ok(names
            .iter()
            .filter_map(Value::as_str)
            .filter(|n| n.starts_with(prefix))
            .map(String::from)
            .collect())
    }
}

fn base_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    // The binary carries no TLS stack (the server serves plain HTTP); verify through a
    // local proxy or a plain-HTTP address for an HTTPS-only endpoint.
    if !url.starts_with("http://") {
        bail!("{url:?} is not an http:// URL (https is not supported)");
    }
    Ok(url.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the comparison and prints the report; `Ok(true)` when nothing differs.
async fn verify(args: &VerifyArgs) -> Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .context("cannot build the HTTP client")?;
    let reference = Endpoint {
        role: "reference",
        base: base_url(&args.reference)?,
        client: &client,
    };
    let candidate = Endpoint {
        role: "candidate",
        base: base_url(&args.candidate)?,
        client: &client,
    };
    let options = Options {
        tolerance: Tolerance {
            relative: args.tolerance,
            absolute: args.absolute_tolerance,
        },
        ignore_sample_size: args.ignore_sample_size,
    };

    // Read the query file before touching the network, so a bad file fails fast.
    let from_file = match &args.queries {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the query file {}", path.display()))?;
            Some(
                parse_query_file(&text)
                    .with_context(|| format!("invalid query file {}", path.display()))?,
            )
        }
        None => None,
    };

    let ref_names = reference.metric_names(&args.prefix).await?;
    let cand_names = candidate.metric_names(&args.prefix).await?;
    let name_diffs = compare::compare_metric_names(&ref_names, &cand_names);
    if name_diffs.is_empty() {
        println!("metric names: OK ({} names)", ref_names.len());
    } else {
        println!("metric names: DIFFERENT");
        for d in &name_diffs {
            println!("  {d}");
        }
    }

    let replays = match from_file {
        Some(r) => r,
        None => {
            let window = (args.start.unwrap_or(0), args.end.unwrap_or_else(now_ms));
            if window.0 > window.1 {
                bail!("--start {} is after --end {}", window.0, window.1);
            }
            println!(
                "sample: {} queries, seed {}, window {}..{} ms",
                args.sample.unwrap_or(20),
                args.seed,
                window.0,
                window.1
            );
            sample_queries(&reference, &ref_names, args, window).await?
        }
    };

    let total = replays.len();
    let mut differing = 0;
    for (i, replay) in replays.iter().enumerate() {
        let path = "/api/v1/datapoints/query";
        let r = reference.post(path, &replay.body).await?;
        let c = candidate.post(path, &replay.body).await?;
        let diffs: Vec<Difference> = compare::compare_answers((r.0, &r.1), (c.0, &c.1), &options);
        if diffs.is_empty() {
            let note = if r.0 == 200 {
                String::new()
            } else {
                format!(" (both answered {})", r.0)
            };
            println!("[{}/{total}] OK   {}{note}", i + 1, replay.label);
        } else {
            differing += 1;
            println!("[{}/{total}] DIFF {}", i + 1, replay.label);
            for d in &diffs {
                println!("  {d}");
            }
            println!("  query: {}", replay.body);
        }
    }
    let names = if name_diffs.is_empty() {
        "metric names match".to_string()
    } else {
        format!("{} metric name differences", name_diffs.len())
    };
    let ok = differing == 0 && name_diffs.is_empty();
    println!(
        "summary: {} of {total} queries match, {differing} differ; {names}; {}",
        total - differing,
        if ok { "OK" } else { "MISMATCH" }
    );
    Ok(ok)
}

async fn sample_queries(
    reference: &Endpoint<'_>,
    names: &[String],
    args: &VerifyArgs,
    window: (i64, i64),
) -> Result<Vec<Replay>> {
    let n = args.sample.unwrap_or(20);
    // Tags are fetched before generating (the generator is synchronous and pure).
    let chosen = sample::choose_metrics(names, n, args.seed);
    let mut tags = std::collections::BTreeMap::new();
    for metric in &chosen {
        if tags.contains_key(metric) {
            continue;
        }
        let path = "/api/v1/datapoints/query/tags";
        let (status, body) = reference
            .post(path, &sample::tags_request(metric, window))
            .await?;
        if status != 200 {
            bail!("the reference answered {status} to {path} for {metric:?}: {body}");
        }
        tags.insert(metric.clone(), sample::tags_from_answer(&body));
    }
    let samples = sample::generate(names, n, args.seed, window, |m| {
        tags.get(m)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("BUG: no tags fetched for {m}"))
    })?;
    Ok(samples
        .into_iter()
        .map(|s| Replay {
            label: s.description,
            body: s.body,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files_in_every_shape() {
        let array = r#"[{"start_absolute":1,"metrics":[{"name":"a"}]},{"start_absolute":1,"metrics":[{"name":"b"},{"name":"c"}]}]"#;
        let q = parse_query_file(array).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].label, "query 2 (b, c)");

        let lines = "{\"start_absolute\":1,\"metrics\":[{\"name\":\"a\"}]}\n\n{\"start_absolute\":2,\"metrics\":[{\"name\":\"b\"}]}\n";
        let q = parse_query_file(lines).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].label, "line 3 (b)");
        assert_eq!(q[1].body["start_absolute"], 2);

        let single = "{\n  \"start_absolute\": 1,\n  \"metrics\": [{\"name\": \"a\"}]\n}\n";
        assert_eq!(parse_query_file(single).unwrap().len(), 1);
    }

    #[test]
    fn invalid_query_files_are_refused() {
        assert!(parse_query_file("").is_err());
        assert!(parse_query_file("{\"metrics\":[]}\nnot json\n").is_err());
        assert!(parse_query_file("[{\"start_absolute\": 1}]").is_err());
        assert!(parse_query_file("42").is_err());
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("http://h:8080/").unwrap(), "http://h:8080");
        assert!(base_url("h:8080").is_err());
        assert!(base_url("https://h").is_err());
    }
}

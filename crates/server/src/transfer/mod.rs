//! `kairosdb export` and `kairosdb import`: moving data in and out in KairosDB's export
//! format, one ingest JSON object a line (`line.rs`), so a file written by Java
//! KairosDB's `kairosdb.sh export` imports unchanged and ours imports into Java KairosDB
//! (`kairosdb.sh import`, or its HTTP API).
//!
//! Data path, export (`export.rs`): source (a stopped server's data directory opened
//! through the engine, or a running server over `/api/v1/metricnames`,
//! `/api/v1/datapoints/query/tags` and `/api/v1/datapoints/query`) → per metric, per
//! time chunk (3 weeks by default, KairosDB's Cassandra row width, which is also how
//! KairosDB's own export cuts a series into lines) → one line per series per chunk →
//! file or stdout, gzip optional.
//!
//! Data path, import (`import.rs`): file (gzip recognised by its magic bytes) or stdin →
//! lines → `kairosdb_protocol::ingest::parse_ingest` (the parser of
//! `POST /api/v1/datapoints`, with its validation and messages) → `writer::validate`
//! (the server's extra checks) → batches → the target: a data directory through the
//! engine's `Storage::write` (as the HTTP handler writes), or a server over
//! `POST /api/v1/datapoints` (gzip, retried on 429/503 honouring `Retry-After`, Basic or
//! Bearer authentication).
//!
//! Both are resumable (`state.rs`) and report progress (`progress.rs`): a bar with
//! points/s and an ETA on a terminal, `progress:` lines otherwise, and exact counts at
//! the end (`summary:` on stderr).
//!
//! Not here: parsing ingest JSON (protocol crate), number formatting
//! (`kairosdb_protocol::response`), storage (engine).

pub mod export;
pub mod import;
pub mod line;
pub mod progress;
pub mod state;

use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How a client authenticates to a server with `[auth]` on (`crates/server/src/auth/`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// Bearer token sent as `Authorization: Bearer TOKEN`; `@FILE` reads it from FILE
    /// (keeps it out of the process list).
    #[arg(long, value_name = "TOKEN", conflicts_with = "basic")]
    pub bearer: Option<String>,

    /// HTTP Basic credentials `USER:PASSWORD`; `@FILE` reads them from FILE.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub basic: Option<String>,
}

impl AuthArgs {
    /// The `Authorization` header value, if any.
    fn header(&self) -> Result<Option<String>> {
        use base64::Engine as _;
        let read = |v: &str| -> Result<String> {
            match v.strip_prefix('@') {
                Some(path) => Ok(std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read credentials from {path}"))?
                    .trim()
                    .to_string()),
                None => Ok(v.to_string()),
            }
        };
        if let Some(token) = &self.bearer {
            return Ok(Some(format!("Bearer {}", read(token)?)));
        }
        if let Some(basic) = &self.basic {
            let basic = read(basic)?;
            if !basic.contains(':') {
                bail!("--basic expects USER:PASSWORD");
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(basic);
            return Ok(Some(format!("Basic {encoded}")));
        }
        Ok(None)
    }
}

/// A blocking HTTP client for one server: requests run on a private current-thread
/// runtime; 429 and 503 answers are retried after their `Retry-After` (1 s when absent,
/// at most 60 s), connection failures with a growing pause, up to `retries` times.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    auth: Option<String>,
    retries: u32,
}

/// A request body.
pub struct Body {
    pub bytes: bytes::Bytes,
    pub gzip: bool,
}

impl Http {
    pub fn new(base: &str, auth: &AuthArgs, timeout: Duration, retries: u32) -> Result<Http> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the tokio runtime")?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Http {
            runtime,
            client,
            base: base.trim_end_matches('/').to_string(),
            auth: auth.header()?,
            retries,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the status and body of the last answer; an error only
    /// when the server could not be reached (after the retries).
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Body>,
    ) -> Result<(u16, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.client.request(method.clone(), &url);
            if let Some(auth) = &self.auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.bytes.clone());
                if body.gzip {
                    request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
                }
            }
            let answer = self.runtime.block_on(async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, retry_after, bytes))
            });
            match answer {
                Ok((status @ (429 | 503), retry_after, _)) if attempt <= self.retries => {
                    let wait = retry_after.unwrap_or(1).clamp(1, 60);
                    eprintln!(
                        "retrying: {url} answered {status}; attempt {} of {} in {wait} s",
                        attempt + 1,
                        self.retries + 1
                    );
                    std::thread::sleep(Duration::from_secs(wait));
                }
                Ok((status, _, bytes)) => return Ok((status, bytes.to_vec())),
                Err(e) if attempt <= self.retries => {
                    let wait = Duration::from_millis(500 << attempt.min(5));
                    eprintln!(
                        "retrying: {url}: {e}; attempt {} of {} in {:.1} s",
                        attempt + 1,
                        self.retries + 1,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e).with_context(|| format!("cannot reach {url}")),
            }
        }
    }

    /// POSTs JSON and returns the parsed answer of a 200; any other status is an error
    /// naming the server's message.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>> {
        let body = Body {
            bytes: serde_json::to_vec(body)
                .context("BUG: JSON serializes")?
                .into(),
            gzip: false,
        };
        let (status, answer) = self.send(reqwest::Method::POST, path, Some(&body))?;
        check_ok(status, &answer, &self.base, path)?;
        Ok(answer)
    }

    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        let (status, answer) = self.send(reqwest::Method::GET, path, None)?;
        check_ok(status, &answer, &self.base, path)?;
        Ok(answer)
    }
}

/// An error for any answer but 200/204, with the server's `errors` when it sent some.
pub fn check_ok(status: u16, body: &[u8], base: &str, path: &str) -> Result<()> {
    if status == 200 || status == 204 {
        return Ok(());
    }
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").cloned())
        .map(|e| e.to_string())
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect());
    let hint = match status {
        401 | 403 => " (check --bearer / --basic)",
        _ => "",
    };
    bail!("{base}{path} answered {status}{hint}: {detail}")
}

/// A time given on the command line: milliseconds since the epoch (may be negative), an
/// RFC 3339 instant (`2024-01-01T00:00:00Z`), or a duration before `now_ms` (`90s`,
/// `15m`, `1h`, `7d`, `2w`; also `ms`).
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(ago) = parse_duration_ms(text) {
        return Ok(now_ms.saturating_sub(ago));
    }
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(t.as_millisecond()),
        Err(_) => bail!(
            "{text:?} is not a time: give milliseconds since the epoch, an RFC 3339 time such as 2024-01-01T00:00:00Z, or a duration ago such as 1h or 7d"
        ),
    }
}

/// `<n><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`, in milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration such as 1h or 3w"))?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail!("{text:?}: unknown unit {unit:?}; use ms, s, m, h, d or w"),
    };
    n.checked_mul(unit_ms)
        .with_context(|| format!("{text:?} is too long"))
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("1234", now).unwrap(), 1234);
        assert_eq!(parse_time("-5", now).unwrap(), -5);
        assert_eq!(parse_time("1h", now).unwrap(), now - 3_600_000);
        assert_eq!(parse_time("2w", now).unwrap(), now - 14 * 86_400_000);
        assert_eq!(
            parse_time("2024-01-01T00:00:00Z", now).unwrap(),
            1_704_067_200_000
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(parse_duration_ms("3w").unwrap(), 1_814_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert!(parse_duration_ms("3x").is_err());
        assert!(parse_duration_ms("h").is_err());
    }

    #[test]
    fn authorization_headers() {
        let none = AuthArgs::default();
        assert_eq!(none.header().unwrap(), None);
        let bearer = AuthArgs {
            bearer: Some("abc".into()),
            basic: None,
        };
        assert_eq!(bearer.header().unwrap().unwrap(), "Bearer abc");
        let basic = AuthArgs {
            bearer: None,
            basic: Some("Aladdin:open sesame".into()),
        };
        assert_eq!(
            basic.header().unwrap().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "secret\n").unwrap();
        let from_file = AuthArgs {
            bearer: Some(format!("@{}", file.display())),
            basic: None,
        };
        assert_eq!(from_file.header().unwrap().unwrap(), "Bearer secret");
        let bad = AuthArgs {
            bearer: None,
            basic: Some("nocolon".into()),
        };
        assert!(bad.header().is_err());
    }
}

//! Server configuration: one flat set of keys, four layers.
//!
//! Precedence (later wins): built-in defaults < TOML file (`--config FILE`) < environment
//! (`KAIROSDB_<KEY>`) < command-line flags (`--<key-with-dashes>`). Every key is spelled the
//! same way in all three sources: the TOML key `max_request_bytes` is the variable
//! `KAIROSDB_MAX_REQUEST_BYTES` and the flag `--max-request-bytes`.
//!
//! [`Settings`] is the raw, all-optional form (one struct serves TOML, env and CLI, so a key
//! cannot exist in one source and be missing from another); [`Config`] is the validated,
//! resolved form the server runs with and `--check-config` prints. `config/example.toml`
//! documents every key with its default.
//!
//! Deviation from KairosDB (spec §9): KairosDB reads HOCON `kairosdb.*` keys; we use our own
//! smaller key set. Not here: parsing of request data or anything engine-internal.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::builder::BoolishValueParser;
use serde::{Deserialize, Serialize};

use kairosdb_engine::{EngineConfig, WalSync};

/// Raw settings: every key optional. Filled from the TOML file, and (through clap, which
/// merges its own flag and `env` sources with flag > env) from the environment and flags.
#[derive(clap::Args, Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listen address [default: 0.0.0.0:8080]; port 0 picks a free port.
    #[arg(long, env = "KAIROSDB_BIND_ADDRESS", value_name = "ADDR")]
    pub bind_address: Option<String>,

    /// Telnet listen address [default: 0.0.0.0:4242]; port 0 picks a free port.
    #[arg(long, env = "KAIROSDB_TELNET_BIND_ADDRESS", value_name = "ADDR")]
    pub telnet_bind_address: Option<String>,

    /// Data directory of the embedded engine [default: ./data].
    #[arg(long, env = "KAIROSDB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Storage backend: `embedded` [default]; `cassandra` is not supported yet.
    #[arg(long, env = "KAIROSDB_DATASTORE", value_name = "NAME")]
    pub datastore: Option<String>,

    /// Most points handed to storage in one write; larger ingests are split [default: 50000].
    #[arg(long, env = "KAIROSDB_MAX_BATCH_SIZE", value_name = "POINTS")]
    pub max_batch_size: Option<usize>,

    /// Tokio worker threads [default: number of CPUs].
    #[arg(long, env = "KAIROSDB_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<usize>,

    /// Reject points KairosDB would accept and then lose or fail on later [default: true].
    #[arg(long, env = "KAIROSDB_ENABLE_VALIDATION", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub enable_validation: Option<bool>,

    /// Memory for not-yet-compressed data; above it writes get 503 [default: 1024].
    #[arg(long, env = "KAIROSDB_MAX_MEMORY_MB", value_name = "MB")]
    pub max_memory_mb: Option<u64>,

    /// Serve Prometheus text metrics on /metrics [default: true].
    #[arg(long, env = "KAIROSDB_ENABLE_PROMETHEUS", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub enable_prometheus: Option<bool>,

    /// WAL fsync policy: always | interval | none [default: interval].
    #[arg(long, env = "KAIROSDB_WAL_SYNC", value_name = "POLICY")]
    pub wal_sync: Option<String>,

    /// Group-fsync period for `wal_sync = "interval"` [default: 1000].
    #[arg(long, env = "KAIROSDB_WAL_SYNC_INTERVAL_MS", value_name = "MS")]
    pub wal_sync_interval_ms: Option<u64>,

    /// Largest accepted request body, after decompression [default: 104857600].
    #[arg(long, env = "KAIROSDB_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Longest telnet line; longer lines are dropped and counted [default: 1024].
    #[arg(long, env = "KAIROSDB_TELNET_MAX_LINE_BYTES", value_name = "BYTES")]
    pub telnet_max_line_bytes: Option<usize>,

    /// Close telnet connections silent for this long [default: 600].
    #[arg(long, env = "KAIROSDB_TELNET_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub telnet_idle_timeout_secs: Option<u64>,

    /// Start even if a WAL segment before the last is corrupt, skipping the rest of that
    /// segment (data loss; for recovery only) [default: false].
    #[arg(long, env = "KAIROSDB_WAL_SKIP_CORRUPT", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub wal_skip_corrupt: Option<bool>,

    /// TTL for points written without one; 0 keeps them forever [default: 0].
    #[arg(long, env = "KAIROSDB_DEFAULT_TTL_SECS", value_name = "SECS")]
    pub default_ttl_secs: Option<u32>,

    /// Status of a healthy /api/v1/health/check: 204 or 200 [default: 204].
    #[arg(long, env = "KAIROSDB_HEALTH_CHECK_STATUS", value_name = "CODE")]
    pub health_check_status: Option<u16>,

    /// How long shutdown waits for in-flight requests and connections [default: 30].
    #[arg(long, env = "KAIROSDB_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,

    /// Close an HTTP connection whose next request header is not complete this long after
    /// the connection opened or the previous response was sent [default: 60].
    #[arg(long, env = "KAIROSDB_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub http_idle_timeout_secs: Option<u64>,

    /// Metric queries running at once, server-wide (KairosDB's concurrentQueryThreads)
    /// [default: 5].
    #[arg(long, env = "KAIROSDB_QUERY_CONCURRENCY", value_name = "N")]
    pub query_concurrency: Option<usize>,

    /// Most data points one metric query may read; 0 = unlimited [default: 10000000].
    #[arg(long, env = "KAIROSDB_QUERY_MAX_POINTS", value_name = "POINTS")]
    pub query_max_points: Option<u64>,

    /// Longest a query request may run; 0 = no limit [default: 60].
    #[arg(long, env = "KAIROSDB_QUERY_TIME_LIMIT_SECS", value_name = "SECS")]
    pub query_time_limit_secs: Option<u64>,

    /// Memory for raw reads kept for `cache_time`; 0 disables the cache [default: 64].
    #[arg(long, env = "KAIROSDB_QUERY_CACHE_MB", value_name = "MB")]
    pub query_cache_mb: Option<u64>,
}

/// Copies every key set in `$higher` over `$lower`.
macro_rules! overlay {
    ($lower:expr, $higher:expr, $($field:ident),+ $(,)?) => {
        $( if $higher.$field.is_some() { $lower.$field = $higher.$field; } )+
    };
}

impl Settings {
    /// `self` with every key that `higher` sets replaced by `higher`'s value.
    pub fn overlay(mut self, higher: Settings) -> Settings {
        overlay!(
            self,
            higher,
            bind_address,
            telnet_bind_address,
            data_dir,
            datastore,
            max_batch_size,
            worker_threads,
            enable_validation,
            max_memory_mb,
            enable_prometheus,
            wal_sync,
            wal_sync_interval_ms,
            wal_skip_corrupt,
            max_request_bytes,
            telnet_max_line_bytes,
            telnet_idle_timeout_secs,
            default_ttl_secs,
            health_check_status,
            shutdown_timeout_secs,
            http_idle_timeout_secs,
            query_concurrency,
            query_max_points,
            query_time_limit_secs,
            query_cache_mb,
        );
        self
    }

    /// Reads a TOML file of settings (unknown keys are an error).
    pub fn from_toml_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Settings::from_toml_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> Result<Settings> {
        Ok(toml::from_str(text)?)
    }
}

/// WAL fsync policy as configured (mapped onto [`WalSync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WalSyncPolicy {
    Always,
    Interval,
    None,
}

/// The resolved configuration. Serialises back to a valid TOML settings file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub bind_address: SocketAddr,
    pub telnet_bind_address: SocketAddr,
    pub data_dir: PathBuf,
    pub datastore: String,
    pub max_batch_size: usize,
    pub worker_threads: usize,
    pub enable_validation: bool,
    pub max_memory_mb: u64,
    pub enable_prometheus: bool,
    pub wal_sync: WalSyncPolicy,
    pub wal_sync_interval_ms: u64,
    pub wal_skip_corrupt: bool,
    pub max_request_bytes: usize,
    pub telnet_max_line_bytes: usize,
    pub telnet_idle_timeout_secs: u64,
    pub default_ttl_secs: u32,
    pub health_check_status: u16,
    pub shutdown_timeout_secs: u64,
    pub http_idle_timeout_secs: u64,
    pub query_concurrency: usize,
    /// 0 = unlimited.
    pub query_max_points: u64,
    /// 0 = no limit.
    pub query_time_limit_secs: u64,
    /// 0 = no cache.
    pub query_cache_mb: u64,
}

impl Config {
    /// Applies the defaults to `raw` and validates every value.
    pub fn resolve(raw: Settings) -> Result<Config> {
        let datastore = raw.datastore.unwrap_or_else(|| "embedded".to_string());
        match datastore.as_str() {
            "embedded" => {}
            "cassandra" => bail!(
                "datastore \"cassandra\" is not yet supported by this version; use \"embedded\""
            ),
            other => bail!("unknown datastore {other:?}; expected \"embedded\""),
        }
        let wal_sync = match raw.wal_sync.as_deref().unwrap_or("interval") {
            "always" => WalSyncPolicy::Always,
            "interval" => WalSyncPolicy::Interval,
            "none" => WalSyncPolicy::None,
            other => bail!("invalid wal_sync {other:?}; expected always, interval or none"),
        };
        let health_check_status = raw.health_check_status.unwrap_or(204);
        if health_check_status != 200 && health_check_status != 204 {
            bail!("invalid health_check_status {health_check_status}; expected 200 or 204");
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = Config {
            bind_address: parse_addr(
                "bind_address",
                raw.bind_address.as_deref().unwrap_or("0.0.0.0:8080"),
            )?,
            telnet_bind_address: parse_addr(
                "telnet_bind_address",
                raw.telnet_bind_address.as_deref().unwrap_or("0.0.0.0:4242"),
            )?,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            datastore,
            max_batch_size: positive("max_batch_size", raw.max_batch_size.unwrap_or(50_000))?,
            worker_threads: positive("worker_threads", raw.worker_threads.unwrap_or(cpus))?,
            enable_validation: raw.enable_validation.unwrap_or(true),
            max_memory_mb: positive("max_memory_mb", raw.max_memory_mb.unwrap_or(1024))?,
            enable_prometheus: raw.enable_prometheus.unwrap_or(true),
            wal_sync,
            wal_sync_interval_ms: positive(
                "wal_sync_interval_ms",
                raw.wal_sync_interval_ms.unwrap_or(1000),
            )?,
            wal_skip_corrupt: raw.wal_skip_corrupt.unwrap_or(false),
            max_request_bytes: positive(
                "max_request_bytes",
                raw.max_request_bytes.unwrap_or(100 * 1024 * 1024),
            )?,
            telnet_max_line_bytes: positive(
                "telnet_max_line_bytes",
                raw.telnet_max_line_bytes.unwrap_or(1024),
            )?,
            telnet_idle_timeout_secs: positive(
                "telnet_idle_timeout_secs",
                raw.telnet_idle_timeout_secs.unwrap_or(600),
            )?,
            default_ttl_secs: raw.default_ttl_secs.unwrap_or(0),
            health_check_status,
            shutdown_timeout_secs: raw.shutdown_timeout_secs.unwrap_or(30),
            http_idle_timeout_secs: positive(
                "http_idle_timeout_secs",
                raw.http_idle_timeout_secs.unwrap_or(60),
            )?,
            query_concurrency: positive("query_concurrency", raw.query_concurrency.unwrap_or(5))?,
            query_max_points: raw.query_max_points.unwrap_or(10_000_000),
            query_time_limit_secs: raw.query_time_limit_secs.unwrap_or(60),
            query_cache_mb: raw.query_cache_mb.unwrap_or(64),
        };
        if config.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        Ok(config)
    }

    /// Resolves defaults < `file` < `env_and_cli` (clap has already put flags over env).
    pub fn load(file: Option<&Path>, env_and_cli: Settings) -> Result<Config> {
        let from_file = match file {
            Some(path) => Settings::from_toml_file(path)?,
            None => Settings::default(),
        };
        Config::resolve(from_file.overlay(env_and_cli))
    }

    /// The resolved configuration as TOML (what `--check-config` prints).
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut engine = EngineConfig::new(&self.data_dir);
        engine.wal_sync = match self.wal_sync {
            WalSyncPolicy::Always => WalSync::Always,
            WalSyncPolicy::Interval => {
                WalSync::Interval(Duration::from_millis(self.wal_sync_interval_ms))
            }
            WalSyncPolicy::None => WalSync::None,
        };
        engine.max_head_bytes = self.max_memory_mb.saturating_mul(1024 * 1024);
        engine.default_ttl_secs = self.default_ttl_secs;
        engine.wal_skip_corrupt = self.wal_skip_corrupt;
        engine
    }

    pub fn telnet_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.telnet_idle_timeout_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.http_idle_timeout_secs)
    }

    /// The per-query limits of a request that started at `started` (spec §4.8; KairosDB's
    /// `query_limit` and `query_time_limit_sec`, user-needs §1.2). The point limit applies to
    /// each metric query, the deadline to the whole request.
    pub fn query_budget(
        &self,
        started: std::time::Instant,
        cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> kairosdb_query::Budget {
        let secs = self.query_time_limit_secs;
        kairosdb_query::Budget {
            max_points: (self.query_max_points > 0).then_some(self.query_max_points),
            // An absurdly large limit that overflows `Instant` is no limit.
            deadline: (secs > 0)
                .then(|| started.checked_add(Duration::from_secs(secs)))
                .flatten()
                .map(|deadline| (deadline, secs)),
            cancelled: Some(cancelled),
        }
    }
}

fn parse_addr(key: &str, text: &str) -> Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Host names such as `localhost:8080`: take the first address they resolve to.
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("invalid {key} {text:?}; expected HOST:PORT, e.g. 0.0.0.0:8080"))
}

fn positive<T: PartialEq + Default + std::fmt::Display>(key: &str, value: T) -> Result<T> {
    if value == T::default() {
        bail!("{key} must be greater than 0");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.bind_address, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.telnet_bind_address, "0.0.0.0:4242".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.wal_sync, WalSyncPolicy::Interval);
        assert!(c.enable_prometheus && c.enable_validation);
        assert_eq!(c.health_check_status, 204);
        assert!(c.worker_threads >= 1);
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let file =
            Settings::from_toml_str("bind_address = \"127.0.0.1:1\"\nmax_memory_mb = 7\n").unwrap();
        let env = Settings {
            bind_address: Some("127.0.0.1:2".into()),
            ..Settings::default()
        };
        let c = Config::resolve(file.overlay(env)).unwrap();
        assert_eq!(c.bind_address, "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.max_memory_mb, 7);
    }

    #[test]
    fn invalid_values_are_explained() {
        let bad = |s: Settings| Config::resolve(s).unwrap_err().to_string();
        let e = bad(Settings {
            datastore: Some("cassandra".into()),
            ..Settings::default()
        });
        assert!(e.contains("not yet supported"), "{e}");
        let e = bad(Settings {
            wal_sync: Some("sometimes".into()),
            ..Settings::default()
        });
        assert!(e.contains("wal_sync"), "{e}");
        let e = bad(Settings {
            bind_address: Some("nowhere".into()),
            ..Settings::default()
        });
        assert!(e.contains("bind_address"), "{e}");
        let e = bad(Settings {
            max_batch_size: Some(0),
            ..Settings::default()
        });
        assert!(e.contains("max_batch_size"), "{e}");
        assert!(Settings::from_toml_str("no_such_key = 1").is_err());
    }

    #[test]
    fn example_toml_documents_every_key_and_matches_the_defaults() {
        let text = include_str!("../../../config/example.toml");
        let example = Settings::from_toml_str(text).unwrap();
        let resolved = Config::resolve(example.clone()).unwrap();
        let defaults = Config::resolve(Settings::default()).unwrap();
        // worker_threads defaults to the CPU count, which the example cannot spell out.
        assert_eq!(
            Config {
                worker_threads: defaults.worker_threads,
                ..resolved
            },
            defaults
        );
        // Every key appears (commented or not) in the example.
        let printed = defaults.to_toml().unwrap();
        for line in printed.lines() {
            let key = line.split('=').next().unwrap().trim();
            assert!(
                text.contains(&format!("{key} =")),
                "config/example.toml does not document {key}"
            );
        }
    }

    #[test]
    fn query_limits_fill_the_budget_and_zero_means_none() {
        let started = std::time::Instant::now();
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.query_concurrency, 5);
        let b = c.query_budget(started, flag.clone());
        assert_eq!(b.max_points, Some(10_000_000));
        assert_eq!(b.deadline, Some((started + Duration::from_secs(60), 60)));
        assert!(b.cancelled.is_some());
        let c = Config::resolve(Settings {
            query_max_points: Some(0),
            query_time_limit_secs: Some(0),
            ..Settings::default()
        })
        .unwrap();
        let b = c.query_budget(started, flag.clone());
        assert_eq!((b.max_points, b.deadline), (None, None));
        let c = Config::resolve(Settings {
            query_time_limit_secs: Some(u64::MAX),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(c.query_budget(started, flag).deadline, None);
        for zero in [
            Settings {
                query_concurrency: Some(0),
                ..Settings::default()
            },
            Settings {
                http_idle_timeout_secs: Some(0),
                ..Settings::default()
            },
        ] {
            assert!(Config::resolve(zero).is_err());
        }
    }

    #[test]
    fn printed_config_reads_back() {
        let c = Config::resolve(Settings::default()).unwrap();
        let again = Config::resolve(Settings::from_toml_str(&c.to_toml().unwrap()).unwrap());
        assert_eq!(again.unwrap(), c);
    }
}

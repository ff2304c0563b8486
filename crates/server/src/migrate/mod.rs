//! `kairosdb migrate-config FILE`: turns a KairosDB configuration (`kairosdb.properties`
//! of KairosDB 1.0–1.2, or the HOCON `kairosdb.conf` of 1.3) into this project's TOML.
//!
//! Every KairosDB key is either mapped to one of our keys (`config.rs`), or reported on
//! stderr, one line each, with why it is not: no equivalent here, not needed here, or an
//! invalid value. The result is checked with the same validation the server runs at
//! start-up before it is written. docs/cassandra.md has the table of Cassandra keys.
//!
//! Both generations of Cassandra keys are read: 1.2's flat `datastore.cassandra.KEY` and
//! 1.3's `datastore.cassandra.write_cluster.KEY` (1.0/1.1's Thrift `host_list` and
//! `replication_factor` too). Not here: reading the file formats (`parse.rs`).

pub mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use self::parse::{Entries, Item};
use crate::config::{Config, Roles, Settings};

/// Turn a KairosDB configuration file into kairosdb-rs TOML.
///
/// Reads `kairosdb.properties` (KairosDB 1.0–1.2: `key=value`, `#` comments, `\`
/// continuations) or `kairosdb.conf` (KairosDB 1.3's HOCON: nested blocks, `key: value`,
/// lists, `#`/`//` comments; substitutions and includes are reported, not followed). The
/// TOML goes to stdout (or --output); every KairosDB key that has no counterpart here is
/// listed on stderr with the reason. Exit status: 0 when a valid configuration was written
/// (even if keys were left out), 1 when the input cannot be read or parsed or the result
/// does not validate, 2 for a usage error.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The KairosDB configuration file.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,

    /// Write the TOML here instead of to stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Input format; `auto` goes by the extension (.properties, .conf) and else by whether
    /// the text has `{ }` blocks.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Auto,
    Properties,
    Hocon,
}

/// Runs the subcommand; returns the process exit status.
pub fn run(args: MigrateArgs) -> u8 {
    match run_inner(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kairosdb migrate-config: error: {e:#}");
            1
        }
    }
}

fn run_inner(args: &MigrateArgs) -> Result<()> {
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let text = parse::decode(&bytes);
    let hocon = match args.format {
        Format::Properties => false,
        Format::Hocon => true,
        Format::Auto => match args.input.extension().and_then(|e| e.to_str()) {
            Some("properties") => false,
            Some("conf") | Some("hocon") => true,
            _ => parse::looks_like_hocon(&text),
        },
    };
    let entries = if hocon {
        parse::hocon(&text)
            .with_context(|| format!("{} is not valid HOCON", args.input.display()))?
    } else {
        parse::properties(&text)
    };
    let source = args.input.file_name().map_or_else(
        || args.input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let migration = migrate(&entries, &source);
    for line in &migration.notes {
        eprintln!("note: {line}");
    }
    for u in &migration.unmapped {
        eprintln!("not mapped: {u}");
    }
    // The same validation as `kairosdb --check-config`, so what is written starts.
    let settings = Settings::from_toml_str(&migration.toml)
        .context("BUG: migrate-config wrote TOML it cannot read back")?;
    let validated = Config::resolve(settings);
    match &args.output {
        Some(path) => std::fs::write(path, &migration.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", migration.toml),
    }
    if let Err(e) = validated {
        bail!("the migrated configuration is not valid, edit it before use: {e:#}");
    }
    eprintln!(
        "migrate-config: {} keys mapped, {} not mapped",
        migration.mapped,
        migration.unmapped.len()
    );
    Ok(())
}

/// Why a KairosDB key is not in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// KairosDB can do it and kairosdb-rs cannot (yet).
    NoEquivalent,
    /// kairosdb-rs does it another way or always; nothing to set.
    NotNeeded,
    /// A key we map, with a value we cannot use.
    InvalidValue,
    /// Not a key KairosDB reads, as far as this tool knows.
    Unknown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NoEquivalent => "no equivalent",
            Reason::NotNeeded => "not needed",
            Reason::InvalidValue => "value invalid",
            Reason::Unknown => "unknown key",
        })
    }
}

/// A key left out and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unmapped {
    pub key: String,
    pub reason: Reason,
    pub detail: String,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.key, self.reason, self.detail)
    }
}

/// The result of a migration.
#[derive(Debug)]
pub struct Migration {
    pub toml: String,
    /// How many KairosDB keys went into the TOML.
    pub mapped: usize,
    pub unmapped: Vec<Unmapped>,
    /// Mapped, but with a change worth telling (a dropped Thrift port, H2 data not copied).
    pub notes: Vec<String>,
}

/// Our keys in the order they are written (the order of `config/example.toml`).
const ORDER: &[&str] = &[
    "bind_address",
    "telnet_bind_address",
    "telnet_max_line_bytes",
    "http_idle_timeout_secs",
    "datastore",
    "default_ttl_secs",
    "query_concurrency",
    "query_max_points",
    "query_time_limit_secs",
    "server_type",
    "cassandra_contact_points",
    "cassandra_keyspace",
    "cassandra_replication",
    "cassandra_user",
    "cassandra_password",
    "cassandra_read_consistency",
    "cassandra_write_consistency",
    "cassandra_local_dc",
    "cassandra_row_time_unit",
    "cassandra_row_width",
    "cassandra_data_points_create_with",
    "cassandra_force_default_ttl",
    "cassandra_align_ttl_with_timestamp",
    "cassandra_row_key_cache_size",
    "cassandra_string_cache_size",
    "cassandra_simultaneous_queries",
    "cassandra_metric_index_filter",
    "cassandra_tag_indexed_metrics",
    "health_check_status",
    "self_metrics",
    "self_metrics_ttl_secs",
    "rollups",
];

const CONSISTENCY_LEVELS: &[&str] = &[
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "SERIAL",
    "LOCAL_SERIAL",
    "LOCAL_ONE",
];

/// The output being built.
#[derive(Default)]
struct Out {
    /// Our key → (value, the KairosDB keys it came from).
    values: BTreeMap<&'static str, (toml::Value, Vec<String>)>,
    http_host: Option<(String, String)>,
    http_port: Option<(u16, String)>,
    telnet_host: Option<(String, String)>,
    telnet_port: Option<(u16, String)>,
    /// `tag_indexed_row_key_lookup_metrics` in its object form, one key per metric.
    tag_indexed: Vec<(String, String)>,
    tag_indexed_keys: Vec<String>,
    mapped: usize,
    unmapped: Vec<Unmapped>,
    notes: Vec<String>,
}

impl Out {
    fn set(&mut self, ours: &'static str, value: toml::Value, from: &str) {
        debug_assert!(ORDER.contains(&ours), "BUG: {ours} missing from ORDER");
        self.values.insert(ours, (value, vec![from.to_string()]));
        self.mapped += 1;
    }

    fn skip(&mut self, key: &str, reason: Reason, detail: impl Into<String>) {
        self.unmapped.push(Unmapped {
            key: key.to_string(),
            reason,
            detail: detail.into(),
        });
    }
}

/// Maps parsed entries; `source` names the input file in the header comment.
pub fn migrate(entries: &Entries, source: &str) -> Migration {
    let mut out = Out::default();
    for (key, item) in entries {
        if let Item::Unsupported(what) = item {
            out.skip(
                key,
                Reason::NoEquivalent,
                format!("{what} is not evaluated by migrate-config; set the value by hand"),
            );
            continue;
        }
        match key.strip_prefix("kairosdb.") {
            Some(rest) => map_key(key, rest, item, &mut out),
            None => out.skip(
                key,
                Reason::Unknown,
                "not a KairosDB setting (no kairosdb. prefix)",
            ),
        }
    }
    finish_addresses(&mut out);
    if !out.tag_indexed.is_empty() {
        let list: Vec<String> = out
            .tag_indexed
            .iter()
            .map(|(metric, tags)| {
                if tags.is_empty() {
                    metric.clone()
                } else {
                    format!("{metric}:{tags}")
                }
            })
            .collect();
        let from = std::mem::take(&mut out.tag_indexed_keys);
        out.mapped += from.len();
        out.values.insert(
            "cassandra_tag_indexed_metrics",
            (toml::Value::String(list.join(",")), from),
        );
    }
    Migration {
        toml: render(&out, source),
        mapped: out.mapped,
        unmapped: out.unmapped,
        notes: out.notes,
    }
}

fn render(out: &Out, source: &str) -> String {
    let mut toml = format!(
        "# kairosdb-rs configuration migrated from {source} by `kairosdb migrate-config`.\n\
         # Keys not set here keep their defaults; config/example.toml documents every key.\n"
    );
    for key in ORDER {
        if let Some((value, from)) = out.values.get(key) {
            toml.push_str(&format!("\n# from {}\n{key} = {value}\n", from.join(", ")));
        }
    }
    toml
}

/// `jetty.address` + `jetty.port` → `bind_address`, and the same for telnet.
fn finish_addresses(out: &mut Out) {
    let pairs = [
        (
            "bind_address",
            out.http_host.take(),
            out.http_port.take(),
            8080,
        ),
        (
            "telnet_bind_address",
            out.telnet_host.take(),
            out.telnet_port.take(),
            4242,
        ),
    ];
    for (ours, host, port, default_port) in pairs {
        if host.is_none() && port.is_none() {
            continue;
        }
        let mut from = Vec::new();
        let host = match host {
            Some((h, k)) => {
                from.push(k);
                h
            }
            None => "0.0.0.0".to_string(),
        };
        let port = match port {
            Some((p, k)) => {
                from.push(k);
                p
            }
            None => default_port,
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        out.mapped += from.len();
        out.values
            .insert(ours, (toml::Value::String(format!("{host}:{port}")), from));
    }
}

fn text(item: &Item) -> Option<&str> {
    match item {
        Item::Text(t) => Some(t.trim()),
        _ => None,
    }
}

/// A list given as a HOCON list or as a comma-separated string.
fn list(item: &Item) -> Vec<String> {
    match item {
        Item::List(l) => l.iter().map(|s| s.trim().to_string()).collect(),
        Item::Text(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        Item::Unsupported(_) => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

fn is_empty_value(item: &Item) -> bool {
    match item {
        Item::Text(t) => t.trim().is_empty(),
        Item::List(l) => l.is_empty(),
        Item::Unsupported(_) => false,
    }
}

/// A whole number in `T` (with a minimum), or the reason it is not.
fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
    item: &Item,
    min: T,
) -> Result<T, String> {
    let t = text(item).ok_or("expected a single value")?;
    match t.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        Ok(n) => Err(format!("{n} is below {min}")),
        Err(_) => Err(format!("{t:?} is not a whole number in range")),
    }
}

fn boolean(item: &Item) -> Result<bool, String> {
    match text(item).map(str::to_ascii_lowercase).as_deref() {
        Some("true") | Some("yes") | Some("on") => Ok(true),
        Some("false") | Some("no") | Some("off") => Ok(false),
        _ => Err(format!("{item} is not true or false")),
    }
}

/// Sets `ours` from a number; reports an invalid value.
fn set_number<T>(out: &mut Out, key: &str, ours: &'static str, item: &Item, min: T)
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Into<i64> + Copy,
{
    match number::<T>(item, min) {
        Ok(n) => out.set(ours, toml::Value::Integer(n.into()), key),
        Err(why) => out.skip(key, Reason::InvalidValue, why),
    }
}

/// Like [`set_number`] for `u64`/`usize`-sized values (kept within i64 for TOML).
fn set_count(out: &mut Out, key: &str, ours: &'static str, item: &Item, min: i64) {
    set_number::<i64>(out, key, ours, item, min)
}

fn set_bool(out: &mut Out, key: &str, ours: &'static str, item: &Item) {
    match boolean(item) {
        Ok(b) => out.set(ours, toml::Value::Boolean(b), key),
        Err(why) => out.skip(key, Reason::InvalidValue, why),
    }
}

fn set_text(out: &mut Out, key: &str, ours: &'static str, item: &Item) {
    match text(item) {
        Some(t) => out.set(ours, toml::Value::String(t.to_string()), key),
        None => out.skip(
            key,
            Reason::InvalidValue,
            "expected a single value, not a list",
        ),
    }
}

fn port(item: &Item) -> Result<u16, String> {
    number::<u16>(item, 0)
}

/// Is the value KairosDB's own class for a service that is always on here?
fn default_service(item: &Item, class: &str) -> bool {
    text(item) == Some(class)
}

const NO_METRIC_SERIES: &str = "kairosdb-rs writes a fixed set of kairosdb.* self-metrics (self_metrics, see README) and has no setting for this; scrape /metrics (Prometheus) or GET /api/v1/metrics for the rest";

fn map_key(key: &str, rest: &str, item: &Item, out: &mut Out) {
    // 1.3 nests the cluster keys under write_cluster; 1.2 has them flat.
    if let Some(c) = rest
        .strip_prefix("datastore.cassandra.write_cluster.")
        .or_else(|| rest.strip_prefix("datastore.cassandra."))
    {
        return map_cassandra(key, c, item, out);
    }
    match rest {
        "jetty.port" => match port(item) {
            Ok(0) => out.skip(
                key,
                Reason::NoEquivalent,
                "port 0 turns KairosDB's HTTP off; kairosdb-rs always serves HTTP (port 0 here picks a free port), so the default 8080 is kept",
            ),
            Ok(p) => out.http_port = Some((p, key.to_string())),
            Err(why) => out.skip(key, Reason::InvalidValue, why),
        },
        "jetty.address" => match text(item) {
            Some(h) if !h.is_empty() => out.http_host = Some((h.to_string(), key.to_string())),
            _ => out.skip(key, Reason::InvalidValue, "expected a host address"),
        },
        "telnetserver.port" => match port(item) {
            Ok(0) => out.skip(
                key,
                Reason::NoEquivalent,
                "port 0 does not turn the telnet listener off here; a process without INGEST in server_type has none",
            ),
            Ok(p) => out.telnet_port = Some((p, key.to_string())),
            Err(why) => out.skip(key, Reason::InvalidValue, why),
        },
        "telnetserver.address" => match text(item) {
            Some(h) if !h.is_empty() => out.telnet_host = Some((h.to_string(), key.to_string())),
            _ => out.skip(key, Reason::InvalidValue, "expected a host address"),
        },
        "telnetserver.max_command_size" => set_count(out, key, "telnet_max_line_bytes", item, 1),
        "jetty.socket_idle_timeout" => match number::<u64>(item, 1) {
            // Milliseconds there, whole seconds here (rounded up).
            Ok(ms) => out.set(
                "http_idle_timeout_secs",
                toml::Value::Integer(ms.div_ceil(1000).min(i64::MAX as u64) as i64),
                key,
            ),
            Err(why) => out.skip(key, Reason::InvalidValue, why),
        },
        "jetty.static_web_root" => out.skip(key, Reason::NoEquivalent, "no web UI is served yet"),
        "jetty.show_stacktrace" => out.skip(
            key,
            Reason::NotNeeded,
            "error bodies never carry stack traces",
        ),
        k if k.starts_with("jetty.ssl.") => out.skip(
            key,
            Reason::NoEquivalent,
            "HTTPS is not served; terminate TLS in a proxy in front",
        ),
        k if k.starts_with("jetty.basic_auth.") || k == "jetty.auth_module_name" => out.skip(
            key,
            Reason::NotNeeded,
            "not carried over, a password is never written in clear: hash it with `kairosdb \
             hash-secret`, add an [[auth.users]] entry with scopes [\"read\", \"write\", \
             \"delete\", \"admin\"] and set auth_enabled = true (README, Securing the server)",
        ),
        k if k.starts_with("jetty.threads.") => out.skip(
            key,
            Reason::NotNeeded,
            "connections are served by the tokio runtime (worker_threads)",
        ),
        k if k.starts_with("jetty.request_logging.") => out.skip(
            key,
            Reason::NoEquivalent,
            "no HTTP request log; use a proxy's access log",
        ),
        "service.datastore" => map_datastore(key, item, out),
        "service.http" if default_service(item, "org.kairosdb.core.http.WebServletModule") => {
            out.skip(key, Reason::NotNeeded, "the HTTP API is always on")
        }
        "service.telnet" if default_service(item, "org.kairosdb.core.telnet.TelnetServerModule") => {
            out.skip(key, Reason::NotNeeded, "the telnet listener is always on")
        }
        "service.health" if default_service(item, "org.kairosdb.core.health.HealthCheckModule") => {
            out.skip(key, Reason::NotNeeded, "the health checks are always on")
        }
        "service.telnet" => out.skip(
            key,
            Reason::NoEquivalent,
            "the telnet listener can only be turned off with a server_type without INGEST",
        ),
        "service.reporter" => match text(item) {
            Some("" | "<disabled>") => out.set("self_metrics", toml::Value::Boolean(false), key),
            _ => out.skip(
                key,
                Reason::NotNeeded,
                "the self-metrics reporter is on by default (self_metrics)",
            ),
        },
        "reporter.ttl" => set_number::<u32>(out, key, "self_metrics_ttl_secs", item, 0),
        "reporter.schedule" => out.skip(
            key,
            Reason::NoEquivalent,
            "a cron schedule; self-metrics are written every self_metrics_interval_secs (default 60, KairosDB's every-minute schedule)",
        ),
        k if k.starts_with("reporter.") => out.skip(key, Reason::NoEquivalent, NO_METRIC_SERIES),
        "service.rollups" => match text(item) {
            Some("" | "<disabled>") => out.set("rollups", toml::Value::Boolean(false), key),
            _ => out.set("rollups", toml::Value::Boolean(true), key),
        },
        k if k.starts_with("service.") => out.skip(
            key,
            Reason::NoEquivalent,
            format!("the module {item} is not available in kairosdb-rs"),
        ),
        "server.type" => match text(item).map(Roles::parse) {
            Some(Ok(_)) => set_text(out, key, "server_type", item),
            Some(Err(e)) => out.skip(key, Reason::InvalidValue, format!("{e:#}")),
            None => out.skip(key, Reason::InvalidValue, "expected ALL or a comma list"),
        },
        "datastore.concurrentQueryThreads" => set_count(out, key, "query_concurrency", item, 1),
        "datastore.h2.database_path" => out.skip(
            key,
            Reason::NotNeeded,
            "H2 is replaced by the embedded engine in data_dir (default ./data); H2 files are not read",
        ),
        k if k.starts_with("datastore.hbase.") => out.skip(
            key,
            Reason::NoEquivalent,
            "the HBase datastore is not available; use embedded or cassandra",
        ),
        k if k.starts_with("carbon.") => out.skip(
            key,
            Reason::NoEquivalent,
            "the Carbon (Graphite) listener is not available; telnet and HTTP are",
        ),
        k if k.starts_with("datastore.remote.") => out.skip(
            key,
            Reason::NoEquivalent,
            "the remote datastore is not available; see README.md for moving data",
        ),
        "health.healthyResponseCode" => match number::<u16>(item, 0) {
            Ok(code @ (200 | 204)) => out.set(
                "health_check_status",
                toml::Value::Integer(code.into()),
                key,
            ),
            Ok(code) => out.skip(
                key,
                Reason::InvalidValue,
                format!("{code}: kairosdb-rs answers a healthy check with 200 or 204"),
            ),
            Err(why) => out.skip(key, Reason::InvalidValue, why),
        },
        "metric_index_filter.prefix" => {
            let prefixes = list(item);
            out.set(
                "cassandra_metric_index_filter",
                toml::Value::String(prefixes.join(",")),
                key,
            )
        }
        k if k.starts_with("query_cache.") => out.skip(
            key,
            Reason::NotNeeded,
            "the query cache is in memory (query_cache_mb) and writes no files",
        ),
        "queries.aggregate_stats" => out.skip(key, Reason::NoEquivalent, NO_METRIC_SERIES),
        k if k.starts_with("log.queries.") => out.skip(
            key,
            Reason::NoEquivalent,
            "slow queries are not written as kairosdb.log.query.* series",
        ),
        "queries.regex_prefix" if text(item) == Some("regex:") => {
            out.skip(key, Reason::NotNeeded, "the prefix is always regex:")
        }
        "queries.regex_prefix" => out.skip(
            key,
            Reason::NoEquivalent,
            "the tag-filter regex prefix is always regex:",
        ),
        "queries.return_query_in_response" if boolean(item) == Ok(false) => out.skip(
            key,
            Reason::NotNeeded,
            "the query is not echoed in responses, as with false",
        ),
        "queries.return_query_in_response" => out.skip(
            key,
            Reason::NoEquivalent,
            "the query is never echoed in responses",
        ),
        "queue_processor.class" if text(item).is_some_and(|c| c.ends_with(".FileQueueProcessor")) => {
            out.skip(
                key,
                Reason::NotNeeded,
                "in Cassandra mode ingest is always queued on disk in data_dir/queue (queue_max_mb)",
            )
        }
        "queue_processor.class" => out.skip(
            key,
            Reason::NoEquivalent,
            "in Cassandra mode ingest is always queued on disk in data_dir/queue; there is no memory-only queue",
        ),
        "queue_processor.queue_path" => out.skip(
            key,
            Reason::NotNeeded,
            "the queue lives in data_dir/queue",
        ),
        k if k.starts_with("queue_processor.") => out.skip(
            key,
            Reason::NotNeeded,
            "the delivery queue batches by itself and is bounded by queue_max_mb",
        ),
        "ingest_executor.thread_count" => out.skip(
            key,
            Reason::NotNeeded,
            "writes are delivered by the queue's own task",
        ),
        k if k.starts_with("datapoints.factory.") => {
            if text(item).is_some_and(|c| c.starts_with("org.kairosdb.core.datapoints.")) {
                out.skip(key, Reason::NotNeeded, "long, double and string are built in")
            } else {
                out.skip(
                    key,
                    Reason::NoEquivalent,
                    "custom data point types are not supported",
                )
            }
        }
        k if k.starts_with("filter.") && is_empty_value(item) => {
            out.skip(key, Reason::NotNeeded, "empty")
        }
        k if k.starts_with("filter.") => out.skip(
            key,
            Reason::NoEquivalent,
            "ingest filters that drop metrics are not supported",
        ),
        k if k.starts_with("host_service_manager.") || k.starts_with("eventbus.") => out.skip(
            key,
            Reason::NotNeeded,
            "KairosDB-internal plumbing with no counterpart",
        ),
        "metric-prefix" => out.skip(key, Reason::NoEquivalent, NO_METRIC_SERIES),
        k if k.starts_with("demo.") || k.starts_with("blast.") => out.skip(
            key,
            Reason::NotNeeded,
            "settings of the demo/blast load modules, which are not included",
        ),
        k if k.starts_with("rollups.") => out.skip(
            key,
            Reason::NotNeeded,
            "roll-up tasks are shared between processes by leases in the store, not by assignment",
        ),
        k if k.starts_with("oauth.") => out.skip(
            key,
            Reason::NoEquivalent,
            "OAuth is not implemented; put an authenticating proxy in front",
        ),
        k if k.starts_with("metrics.custom_tags") => {
            out.skip(key, Reason::NoEquivalent, NO_METRIC_SERIES)
        }
        _ => out.skip(key, Reason::Unknown, "not a setting this tool knows"),
    }
}

fn map_datastore(key: &str, item: &Item, out: &mut Out) {
    let class = text(item).unwrap_or("");
    let name = if class.ends_with(".cassandra.CassandraModule") {
        "cassandra"
    } else if class.ends_with(".h2.H2Module") || class.to_ascii_lowercase().contains("memory") {
        out.notes.push(format!(
            "{key} = {class} becomes datastore = \"embedded\" (the built-in engine); existing H2 data is not copied"
        ));
        "embedded"
    } else {
        return out.skip(
            key,
            Reason::NoEquivalent,
            format!("the datastore {class:?} is not available; use embedded or cassandra"),
        );
    };
    out.set("datastore", toml::Value::String(name.to_string()), key);
}

const CASSANDRA_NOT_NEEDED: &str =
    "driver tuning covered by the driver's own pools and retries and by the delivery queue";

fn map_cassandra(key: &str, c: &str, item: &Item, out: &mut Out) {
    match c {
        "cql_host_list" => {
            let hosts = list(item);
            if hosts.is_empty() {
                return out.skip(key, Reason::InvalidValue, "no hosts");
            }
            out.set(
                "cassandra_contact_points",
                toml::Value::String(hosts.join(",")),
                key,
            )
        }
        // KairosDB 1.0/1.1 (Hector, Thrift): `host:9160`. The Thrift port means nothing
        // to CQL, so it is dropped and the CQL default 9042 applies.
        "host_list" => {
            let hosts: Vec<String> = list(item)
                .into_iter()
                .map(|h| match h.strip_suffix(":9160") {
                    Some(host) => {
                        out.notes.push(format!(
                            "{key}: dropped the Thrift port of {h}; CQL connects to {host}:9042"
                        ));
                        host.to_string()
                    }
                    None => h,
                })
                .collect();
            if hosts.is_empty() {
                return out.skip(key, Reason::InvalidValue, "no hosts");
            }
            out.set(
                "cassandra_contact_points",
                toml::Value::String(hosts.join(",")),
                key,
            )
        }
        "keyspace" => set_text(out, key, "cassandra_keyspace", item),
        "replication" => set_text(out, key, "cassandra_replication", item),
        "replication_factor" => match number::<u32>(item, 1) {
            Ok(n) => out.set(
                "cassandra_replication",
                toml::Value::String(format!(
                    "{{'class': 'SimpleStrategy','replication_factor' : {n}}}"
                )),
                key,
            ),
            Err(why) => out.skip(key, Reason::InvalidValue, why),
        },
        "auth.user_name" | "auth.username" => set_text(out, key, "cassandra_user", item),
        "auth.password" => set_text(out, key, "cassandra_password", item),
        k if k.starts_with("auth.") => out.skip(
            key,
            Reason::NoEquivalent,
            "only user name and password authentication is supported",
        ),
        "read_consistency_level" | "write_consistency_level" => {
            let ours = if c.starts_with("read") {
                "cassandra_read_consistency"
            } else {
                "cassandra_write_consistency"
            };
            match text(item).map(str::to_ascii_uppercase) {
                Some(level) if CONSISTENCY_LEVELS.contains(&level.as_str()) => {
                    out.set(ours, toml::Value::String(level), key)
                }
                _ => out.skip(
                    key,
                    Reason::InvalidValue,
                    format!("{item} is not a consistency level ({})", CONSISTENCY_LEVELS.join(", ")),
                ),
            }
        }
        "local_datacenter" | "local_dc_name" => match text(item) {
            Some(dc) if !dc.is_empty() => out.set(
                "cassandra_local_dc",
                toml::Value::String(dc.to_string()),
                key,
            ),
            _ => out.skip(key, Reason::NotNeeded, "empty"),
        },
        "datapoint_ttl" => set_number::<u32>(out, key, "default_ttl_secs", item, 0),
        "force_default_datapoint_ttl" => set_bool(out, key, "cassandra_force_default_ttl", item),
        "align_datapoint_ttl_with_timestamp" => {
            set_bool(out, key, "cassandra_align_ttl_with_timestamp", item)
        }
        "row_key_cache_size" => set_count(out, key, "cassandra_row_key_cache_size", item, 1),
        "string_cache_size" => set_count(out, key, "cassandra_string_cache_size", item, 1),
        "simultaneous_cql_queries" => {
            set_count(out, key, "cassandra_simultaneous_queries", item, 1)
        }
        // 0 is "no limit" in both.
        "query_limit" => set_count(out, key, "query_max_points", item, 0),
        "query_time_limit_sec" => set_count(out, key, "query_time_limit_secs", item, 0),
        "row_time_unit" => match text(item).map(str::to_ascii_uppercase) {
            Some(u) if u == "MILLISECONDS" || u == "SECONDS" => {
                out.set("cassandra_row_time_unit", toml::Value::String(u), key)
            }
            _ => out.skip(key, Reason::InvalidValue, format!("{item}: expected MILLISECONDS or SECONDS")),
        },
        "row_width" => set_count(out, key, "cassandra_row_width", item, 1),
        "table_create_with.data_points" => match text(item) {
            // KairosDB's default, which Cassandra 4+ refuses (docs/cassandra.md).
            Some(t) if t.eq_ignore_ascii_case("WITH COMPACT STORAGE") => out.skip(
                key,
                Reason::NotNeeded,
                "KairosDB's default, refused by Cassandra 4+; data_points is created without it (same columns). Set cassandra_data_points_create_with to copy a Cassandra 3.x cluster exactly",
            ),
            Some("") => out.skip(key, Reason::NotNeeded, "empty"),
            Some(_) => set_text(out, key, "cassandra_data_points_create_with", item),
            None => out.skip(key, Reason::InvalidValue, "expected a single value"),
        },
        k if k.starts_with("table_create_with.") && is_empty_value(item) => {
            out.skip(key, Reason::NotNeeded, "empty")
        }
        k if k.starts_with("table_create_with.") => out.skip(
            key,
            Reason::NoEquivalent,
            "extra CREATE TABLE options are supported for data_points only",
        ),
        "tag_indexed_row_key_lookup_metrics" => {
            let metrics = list(item);
            if metrics.is_empty() {
                return out.skip(key, Reason::NotNeeded, "empty");
            }
            out.set(
                "cassandra_tag_indexed_metrics",
                toml::Value::String(metrics.join(",")),
                key,
            )
        }
        // The object form: `tag_indexed_row_key_lookup_metrics { metric: [tag, ...] }`.
        k if k.starts_with("tag_indexed_row_key_lookup_metrics.") => {
            let metric = &k["tag_indexed_row_key_lookup_metrics.".len()..];
            let tags = list(item);
            let tags = if tags.iter().any(|t| t == "*") {
                String::new()
            } else {
                tags.join("|")
            };
            out.tag_indexed.push((metric.to_string(), tags));
            out.tag_indexed_keys.push(key.to_string());
        }
        "protocol_compression" if text(item).is_some_and(|t| t.eq_ignore_ascii_case("LZ4")) => {
            out.skip(key, Reason::NotNeeded, "the driver always uses LZ4")
        }
        "protocol_compression" => out.skip(
            key,
            Reason::NoEquivalent,
            "the driver always uses LZ4 compression",
        ),
        "use_ssl" if boolean(item) == Ok(false) => {
            out.skip(key, Reason::NotNeeded, "connections are unencrypted, as with false")
        }
        "use_ssl" => out.skip(
            key,
            Reason::NoEquivalent,
            "TLS to Cassandra is not supported yet",
        ),
        "create_schema" if boolean(item) == Ok(true) => {
            out.skip(key, Reason::NotNeeded, "missing tables are always created")
        }
        "create_schema" => out.skip(
            key,
            Reason::NoEquivalent,
            "missing keyspace and tables are always created",
        ),
        "start_async" => out.skip(
            key,
            Reason::NotNeeded,
            "start-up never waits for Cassandra; ingest queues until it is reachable",
        ),
        "name" => out.skip(key, Reason::NotNeeded, "the cluster name is only a label"),
        k if k.starts_with("connections_per_host.")
            || k.starts_with("max_requests_per_connection.")
            || matches!(
                k,
                "max_queue_size"
                    | "request_retry_count"
                    | "retry_count"
                    | "query_reader_threads"
                    | "connection_timeout"
                    | "read_timeout"
            ) =>
        {
            out.skip(key, Reason::NotNeeded, CASSANDRA_NOT_NEEDED)
        }
        // KairosDB 1.0/1.1 talked Thrift through Hector.
        k if k.starts_with("hector.")
            || matches!(
                k,
                "write_delay"
                    | "write_buffer_max_size"
                    | "single_row_read_size"
                    | "multi_row_size"
                    | "multi_row_read_size"
                    | "metric_name_cache_size"
                    | "tag_name_cache_size"
                    | "tag_value_cache_size"
                    | "increase_buffer_size_schedule"
                    | "max_row_keys_for_query"
            ) =>
        {
            out.skip(
                key,
                Reason::NotNeeded,
                "a Thrift-era (KairosDB 1.0/1.1) tuning key with no meaning for CQL",
            )
        }
        k if k.starts_with("read_clusters") || k.starts_with("meta_cluster") => out.skip(
            key,
            Reason::NoEquivalent,
            "read clusters and a meta cluster are not supported yet",
        ),
        _ => out.skip(key, Reason::Unknown, "not a Cassandra setting this tool knows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_props(text: &str) -> Migration {
        migrate(&parse::properties(text), "test.properties")
    }

    fn value<'a>(m: &'a Migration, key: &str) -> Option<&'a str> {
        m.toml
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
    }

    fn settings(m: &Migration) -> Settings {
        Settings::from_toml_str(&m.toml).expect("valid TOML settings")
    }

    #[test]
    fn listeners_combine_address_and_port() {
        let m = run_props(
            "kairosdb.jetty.port=9090\nkairosdb.jetty.address=127.0.0.1\nkairosdb.telnetserver.port=4343\n",
        );
        assert_eq!(value(&m, "bind_address"), Some("\"127.0.0.1:9090\""));
        assert_eq!(value(&m, "telnet_bind_address"), Some("\"0.0.0.0:4343\""));
        assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
        assert_eq!(m.mapped, 3);
        let ipv6 = run_props("kairosdb.jetty.address=::1\n");
        assert_eq!(value(&ipv6, "bind_address"), Some("\"[::1]:8080\""));
    }

    #[test]
    fn datastore_classes() {
        let m = run_props(
            "kairosdb.service.datastore=org.kairosdb.datastore.cassandra.CassandraModule\n",
        );
        assert_eq!(value(&m, "datastore"), Some("\"cassandra\""));
        let m = run_props("kairosdb.service.datastore=org.kairosdb.datastore.h2.H2Module\n");
        assert_eq!(value(&m, "datastore"), Some("\"embedded\""));
        assert_eq!(m.notes.len(), 1);
        let m =
            run_props("kairosdb.service.datastore=org.kairosdb.datastore.remote.RemoteModule\n");
        assert_eq!(value(&m, "datastore"), None);
        assert_eq!(m.unmapped[0].reason, Reason::NoEquivalent);
    }

    #[test]
    fn cassandra_keys_of_both_generations() {
        let flat = run_props(
            "kairosdb.datastore.cassandra.cql_host_list=c1:9042, c2\n\
             kairosdb.datastore.cassandra.keyspace=metrics\n\
             kairosdb.datastore.cassandra.auth.user_name=admin\n\
             kairosdb.datastore.cassandra.auth.password=secret\n\
             kairosdb.datastore.cassandra.read_consistency_level=local_quorum\n\
             kairosdb.datastore.cassandra.local_datacenter=dc1\n\
             kairosdb.datastore.cassandra.datapoint_ttl=31536000\n\
             kairosdb.datastore.cassandra.query_limit=500\n",
        );
        let s = settings(&flat);
        assert_eq!(s.cassandra_contact_points.as_deref(), Some("c1:9042,c2"));
        assert_eq!(s.cassandra_keyspace.as_deref(), Some("metrics"));
        assert_eq!(s.cassandra_user.as_deref(), Some("admin"));
        assert_eq!(s.cassandra_password.as_deref(), Some("secret"));
        assert_eq!(
            s.cassandra_read_consistency.as_deref(),
            Some("LOCAL_QUORUM")
        );
        assert_eq!(s.cassandra_local_dc.as_deref(), Some("dc1"));
        assert_eq!(s.default_ttl_secs, Some(31_536_000));
        assert_eq!(s.query_max_points, Some(500));

        let nested = migrate(
            &parse::hocon(
                "kairosdb.datastore.cassandra { write_cluster { cql_host_list: [\"a\", \"b\"], \
                 auth.user_name: u, auth.password: p, local_dc_name: east, row_time_unit: seconds, \
                 tag_indexed_row_key_lookup_metrics { m1: [t1, t2], m2: [\"*\"], m3: [] } } }",
            )
            .unwrap(),
            "kairosdb.conf",
        );
        let s = settings(&nested);
        assert_eq!(s.cassandra_contact_points.as_deref(), Some("a,b"));
        assert_eq!(s.cassandra_user.as_deref(), Some("u"));
        assert_eq!(s.cassandra_local_dc.as_deref(), Some("east"));
        assert_eq!(s.cassandra_row_time_unit.as_deref(), Some("SECONDS"));
        assert_eq!(
            s.cassandra_tag_indexed_metrics.as_deref(),
            Some("m1:t1|t2,m2,m3")
        );
        assert!(nested.unmapped.is_empty(), "{:?}", nested.unmapped);
    }

    #[test]
    fn thrift_era_keys() {
        let m = run_props(
            "kairosdb.datastore.cassandra.host_list=h1:9160,h2:9161\n\
             kairosdb.datastore.cassandra.replication_factor=3\n",
        );
        let s = settings(&m);
        assert_eq!(s.cassandra_contact_points.as_deref(), Some("h1,h2:9161"));
        assert_eq!(
            s.cassandra_replication.as_deref(),
            Some("{'class': 'SimpleStrategy','replication_factor' : 3}")
        );
        assert_eq!(m.notes.len(), 1);
    }

    #[test]
    fn invalid_values_are_reported_and_left_out() {
        let m = run_props(
            "kairosdb.jetty.port=http\nkairosdb.server.type=INGEST,READ\n\
             kairosdb.datastore.cassandra.write_consistency_level=SOME\n\
             kairosdb.health.healthyResponseCode=201\nkairosdb.datastore.concurrentQueryThreads=0\n",
        );
        assert_eq!(m.unmapped.len(), 5, "{:?}", m.unmapped);
        assert!(m.unmapped.iter().all(|u| u.reason == Reason::InvalidValue));
        assert_eq!(settings(&m), Settings::default());
    }

    #[test]
    fn the_rollup_module_maps_to_rollups() {
        let m = run_props("kairosdb.service.rollups=org.kairosdb.rollup.RollUpModule\n");
        assert_eq!(value(&m, "rollups"), Some("true"), "{}", m.toml);
        let m = run_props("kairosdb.service.rollups=<disabled>\n");
        assert_eq!(value(&m, "rollups"), Some("false"), "{}", m.toml);
    }

    #[test]
    fn reporter_keys_map_to_self_metrics() {
        let m = run_props(
            "kairosdb.service.reporter=<disabled>\nkairosdb.reporter.ttl=3600\n\
             kairosdb.reporter.schedule=0 */1 * * * ?\n",
        );
        let s = settings(&m);
        assert_eq!(s.self_metrics, Some(false));
        assert_eq!(s.self_metrics_ttl_secs, Some(3600));
        assert_eq!(m.unmapped.len(), 1, "{:?}", m.unmapped);
        assert!(m.unmapped[0]
            .to_string()
            .contains("self_metrics_interval_secs"));
    }

    #[test]
    fn every_unmapped_key_has_a_reason_line() {
        let m = run_props(
            "kairosdb.jetty.ssl.port=443\nkairosdb.reporter.schedule=0 */1 * * * ?\nfoo=bar\n\
             kairosdb.queue_processor.batch_size=200\nkairosdb.datastore.cassandra.what=1\n",
        );
        let lines: Vec<String> = m.unmapped.iter().map(|u| u.to_string()).collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("kairosdb.jetty.ssl.port (no equivalent): "));
        assert!(lines[2].starts_with("foo (unknown key): "));
        assert!(lines[3].starts_with("kairosdb.queue_processor.batch_size (not needed): "));
        assert!(lines[4].contains("unknown key"));
    }

    #[test]
    fn queries_and_limits() {
        let m = run_props(
            "kairosdb.datastore.concurrentQueryThreads=8\n\
             kairosdb.datastore.cassandra.query_time_limit_sec=30\n\
             kairosdb.server.type=INGEST,QUERY\nkairosdb.jetty.socket_idle_timeout=120001\n\
             kairosdb.metric_index_filter.prefix=plate_,tmp_\n",
        );
        let s = settings(&m);
        assert_eq!(s.query_concurrency, Some(8));
        assert_eq!(s.query_time_limit_secs, Some(30));
        assert_eq!(s.server_type.as_deref(), Some("INGEST,QUERY"));
        assert_eq!(s.http_idle_timeout_secs, Some(121));
        assert_eq!(
            s.cassandra_metric_index_filter.as_deref(),
            Some("plate_,tmp_")
        );
    }

    #[test]
    fn the_output_names_its_sources_and_resolves() {
        let m = run_props("kairosdb.jetty.port=8081\nkairosdb.datastore.cassandra.keyspace=k\n");
        assert!(m
            .toml
            .contains("# from kairosdb.jetty.port\nbind_address = \"0.0.0.0:8081\""));
        Config::resolve(settings(&m)).expect("a valid configuration");
    }
}

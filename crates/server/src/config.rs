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

    /// The telemetry API's listen address (docs/telemetry.md) [default: empty, off]; port 0
    /// picks a free port.
    #[arg(long, env = "KAIROSDB_TELEMETRY_BIND_ADDRESS", value_name = "ADDR")]
    pub telemetry_bind_address: Option<String>,

    /// Data directory of the embedded engine [default: ./data].
    #[arg(long, env = "KAIROSDB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Storage backend: `embedded` [default] or `cassandra` (KairosDB's schema, through a
    /// durable local queue in `data_dir/queue`).
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

    /// Write the server's own `kairosdb.*` metrics into the store every
    /// `self_metrics_interval_secs`, as KairosDB's reporter does [default: true].
    #[arg(long, env = "KAIROSDB_SELF_METRICS", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub self_metrics: Option<bool>,

    /// Period of the self-metrics report; the first one is written one period after start
    /// [default: 60].
    #[arg(long, env = "KAIROSDB_SELF_METRICS_INTERVAL_SECS", value_name = "SECS")]
    pub self_metrics_interval_secs: Option<u64>,

    /// TTL of self-metrics points; 0 keeps them forever (KairosDB's `reporter.ttl`)
    /// [default: 0].
    #[arg(long, env = "KAIROSDB_SELF_METRICS_TTL_SECS", value_name = "SECS")]
    pub self_metrics_ttl_secs: Option<u32>,

    /// Log filter, e.g. `info` or `warn,kairosdb=debug` (`RUST_LOG` wins when set); read
    /// again on SIGHUP [default: info].
    #[arg(long, env = "KAIROSDB_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// HTTPS: PEM certificate chain; with `tls_key_file`, the HTTP listener speaks TLS
    /// only. Both files are read again on SIGHUP [default: none].
    #[arg(long, env = "KAIROSDB_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// HTTPS: PEM private key of `tls_cert_file` [default: none].
    #[arg(long, env = "KAIROSDB_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Most HTTP connections open at once; past it a new one gets 503 and is closed
    /// [default: 10000].
    #[arg(long, env = "KAIROSDB_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,

    /// Most telnet connections open at once; past it a new one is closed [default: 10000].
    #[arg(long, env = "KAIROSDB_TELNET_MAX_CONNECTIONS", value_name = "N")]
    pub telnet_max_connections: Option<usize>,

    /// Writes are refused with 507 while the data directory's disk has less than this free;
    /// accepted again once space returns; 0 = never [default: 256].
    #[arg(long, env = "KAIROSDB_MIN_FREE_DISK_MB", value_name = "MB")]
    pub min_free_disk_mb: Option<u64>,

    /// Export OpenTelemetry traces of HTTP requests over OTLP/HTTP (`otel.rs`)
    /// [default: false].
    #[arg(long, env = "KAIROSDB_OTEL_ENABLED", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub otel_enabled: Option<bool>,

    /// OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces [default: the
    /// standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else
    /// http://localhost:4318/v1/traces].
    #[arg(long, env = "KAIROSDB_OTEL_ENDPOINT", value_name = "URL")]
    pub otel_endpoint: Option<String>,

    /// Share of new traces recorded, 0 to 1; a request that continues a `traceparent`
    /// follows its caller's sampling decision [default: 1].
    #[arg(long, env = "KAIROSDB_OTEL_SAMPLE_RATIO", value_name = "RATIO")]
    pub otel_sample_ratio: Option<f64>,

    /// `service.name` of the exported spans [default: kairosdb].
    #[arg(long, env = "KAIROSDB_OTEL_SERVICE_NAME", value_name = "NAME")]
    pub otel_service_name: Option<String>,

    /// Run the roll-up tasks of `/api/v1/rollups` (spec §13.1) in this process
    /// [default: true]. The API answers either way.
    #[arg(long, env = "KAIROSDB_ROLLUPS", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub rollups: Option<bool>,

    /// How long after a roll-up period was rolled up late data in it still re-runs it;
    /// 0 = never [default: 3600].
    #[arg(long, env = "KAIROSDB_ROLLUP_LATE_WINDOW_SECS", value_name = "SECS")]
    pub rollup_late_window_secs: Option<u64>,

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

    /// pco compression level of the embedded store's new blocks, 0 to 12: at 1 queries
    /// cost about a fifth fewer instructions than at 3 for 7-19 % more disk; above 3
    /// little is saved; blocks already written keep theirs [default: 3].
    #[arg(long, env = "KAIROSDB_COMPRESSION_LEVEL", value_name = "LEVEL")]
    pub compression_level: Option<usize>,

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
    /// Also spelled `cache_max_size_mb` (`KAIROSDB_CACHE_MAX_SIZE_MB`, see
    /// [`Settings::with_env_aliases`]); the `query_cache_mb` spelling wins when both are set.
    #[arg(
        long,
        env = "KAIROSDB_QUERY_CACHE_MB",
        value_name = "MB",
        alias = "cache-max-size-mb"
    )]
    #[serde(alias = "cache_max_size_mb")]
    pub query_cache_mb: Option<u64>,

    /// Where `cache_time` reads are kept: `memory` (this process, `query_cache_mb`) or
    /// `redis` (shared by every process on `redis_uri`) [default: memory].
    #[arg(long, env = "KAIROSDB_QUERY_CACHE", value_name = "WHERE")]
    pub query_cache: Option<String>,

    /// The Redis of the shared cache (`redis://host:port/db`): the telemetry API's answers
    /// and, with `query_cache = "redis"`, `cache_time` reads; the telemetry plan's
    /// REDIS_URI is the same setting [default: empty, no Redis].
    #[arg(long, env = "KAIROSDB_REDIS_URI", value_name = "URI")]
    pub redis_uri: Option<String>,

    /// Prefixed to every Redis key, so one Redis can serve several stores
    /// [default: kairosdb:].
    #[arg(long, env = "KAIROSDB_REDIS_KEY_PREFIX", value_name = "PREFIX")]
    pub redis_key_prefix: Option<String>,

    /// Longest one Redis call may take before the answer comes from storage [default: 100].
    #[arg(long, env = "KAIROSDB_REDIS_TIMEOUT_MS", value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,

    /// Lifetime of a telemetry answer (listing, prompt) in the Redis cache; a write to what
    /// it covers ends it sooner; 0 = cache no telemetry answers [default: 60].
    #[arg(long, env = "KAIROSDB_TELEMETRY_CACHE_TTL_SECS", value_name = "SECS")]
    pub telemetry_cache_ttl_secs: Option<u64>,

    /// Cluster role (docs/cluster.md): `single` (one server), `control` (routes to the
    /// workers of cluster_workers) or `worker` (stores partitions for control nodes); the
    /// analytics plan's NODE_ROLE is the same setting [default: single].
    #[arg(long, env = "KAIROSDB_ROLE", value_name = "ROLE")]
    pub role: Option<String>,

    /// Control node: the workers' `host:port` HTTP addresses, comma-separated (the plan's
    /// WORKER_HOSTS) [default: none].
    #[arg(long, env = "KAIROSDB_CLUSTER_WORKERS", value_name = "HOSTS")]
    pub cluster_workers: Option<String>,

    /// Cluster node id (the plan's NODE_ID); 0 = a random id made at first start and kept
    /// in data_dir/raft/node_id [default: 0].
    #[arg(long, env = "KAIROSDB_NODE_ID", value_name = "ID")]
    pub node_id: Option<u64>,

    /// `host:port` other cluster nodes reach this node's HTTP listener at [default: the
    /// bind address, or this host's name and the bound port when it binds 0.0.0.0].
    #[arg(long, env = "KAIROSDB_ADVERTISE_ADDRESS", value_name = "ADDR")]
    pub advertise_address: Option<String>,

    /// Cluster members to join through, `host:port` comma-separated (the plan's
    /// CONTROL_HOST); none on the node that starts a new cluster [default: none].
    #[arg(long, env = "KAIROSDB_CLUSTER_SEEDS", value_name = "HOSTS")]
    pub cluster_seeds: Option<String>,

    /// A secret every node of the cluster shares: sent with every node-to-node call
    /// (`/internal/v1/*`, Raft) and required on them when set. Needed with auth_enabled
    /// [default: none].
    #[arg(long, env = "KAIROSDB_CLUSTER_SECRET", value_name = "SECRET")]
    pub cluster_secret: Option<String>,

    /// Control node without cluster_workers: place the partitions once this many workers
    /// have joined the Raft group [default: 0].
    #[arg(long, env = "KAIROSDB_CLUSTER_MIN_WORKERS", value_name = "N")]
    pub cluster_min_workers: Option<usize>,

    /// Partitions of the series space; every node of a cluster must agree [default: 256].
    #[arg(long, env = "KAIROSDB_CLUSTER_PARTITIONS", value_name = "N")]
    pub cluster_partitions: Option<u32>,

    /// Copies of each partition, on different workers [default: 1].
    #[arg(long, env = "KAIROSDB_REPLICATION_FACTOR", value_name = "N")]
    pub replication_factor: Option<usize>,

    /// Replicas that must store a write before it is acknowledged [default: 1].
    #[arg(long, env = "KAIROSDB_WRITE_MIN_REPLICAS", value_name = "N")]
    pub write_min_replicas: Option<usize>,

    /// Longest wait for one call to a worker, in ms [default: 5000].
    #[arg(long, env = "KAIROSDB_CLUSTER_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub cluster_request_timeout_ms: Option<u64>,

    /// Control node: answer a query some workers could not serve with 503 instead of a
    /// partial answer marked `is_partial` [default: false].
    #[arg(long, env = "KAIROSDB_DENY_PARTIAL_RESPONSE", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub deny_partial_response: Option<bool>,

    /// API classes this process serves: `ALL` or a comma list of INGEST, QUERY, DELETE
    /// (KairosDB's kairosdb.server.type) [default: ALL].
    #[arg(long, env = "KAIROSDB_SERVER_TYPE", value_name = "TYPES")]
    pub server_type: Option<String>,

    /// Cassandra: comma-separated `host[:port]` contact points [default: localhost].
    #[arg(long, env = "KAIROSDB_CASSANDRA_CONTACT_POINTS", value_name = "HOSTS")]
    pub cassandra_contact_points: Option<String>,

    /// Cassandra keyspace [default: kairosdb].
    #[arg(long, env = "KAIROSDB_CASSANDRA_KEYSPACE", value_name = "NAME")]
    pub cassandra_keyspace: Option<String>,

    /// Cassandra user name (with cassandra_password) [default: none].
    #[arg(long, env = "KAIROSDB_CASSANDRA_USER", value_name = "USER")]
    pub cassandra_user: Option<String>,

    /// Cassandra password [default: none]. Never printed by --check-config.
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub cassandra_password: Option<String>,

    /// Replication map of a keyspace we create
    /// [default: {'class': 'SimpleStrategy','replication_factor' : 1}].
    #[arg(long, env = "KAIROSDB_CASSANDRA_REPLICATION", value_name = "CQL")]
    pub cassandra_replication: Option<String>,

    /// Consistency level of reads [default: ONE].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_READ_CONSISTENCY",
        value_name = "LEVEL"
    )]
    pub cassandra_read_consistency: Option<String>,

    /// Consistency level of writes [default: QUORUM].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_WRITE_CONSISTENCY",
        value_name = "LEVEL"
    )]
    pub cassandra_write_consistency: Option<String>,

    /// Prefer coordinators in this data centre [default: none].
    #[arg(long, env = "KAIROSDB_CASSANDRA_LOCAL_DC", value_name = "DC")]
    pub cassandra_local_dc: Option<String>,

    /// Row time unit of a new cluster: MILLISECONDS or SECONDS; an existing `spec` table
    /// wins [default: MILLISECONDS].
    #[arg(long, env = "KAIROSDB_CASSANDRA_ROW_TIME_UNIT", value_name = "UNIT")]
    pub cassandra_row_time_unit: Option<String>,

    /// Row width of a new cluster in the unit's terms [default: 3 weeks].
    #[arg(long, env = "KAIROSDB_CASSANDRA_ROW_WIDTH", value_name = "N")]
    pub cassandra_row_width: Option<i64>,

    /// Text after `CREATE TABLE data_points (...)`, e.g. `WITH COMPACT STORAGE` to copy a
    /// Cassandra 3.x KairosDB cluster exactly [default: empty].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_DATA_POINTS_CREATE_WITH",
        value_name = "CQL"
    )]
    pub cassandra_data_points_create_with: Option<String>,

    /// The default TTL (default_ttl_secs) overrides every point's own [default: false].
    #[arg(long, env = "KAIROSDB_CASSANDRA_FORCE_DEFAULT_TTL", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub cassandra_force_default_ttl: Option<bool>,

    /// A TTL counts from the point's timestamp, not the write [default: false].
    #[arg(long, env = "KAIROSDB_CASSANDRA_ALIGN_TTL_WITH_TIMESTAMP", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub cassandra_align_ttl_with_timestamp: Option<bool>,

    /// Row keys remembered as indexed [default: 50000].
    #[arg(long, env = "KAIROSDB_CASSANDRA_ROW_KEY_CACHE_SIZE", value_name = "N")]
    pub cassandra_row_key_cache_size: Option<usize>,

    /// (metric, row time) pairs remembered as indexed [default: 50000].
    #[arg(long, env = "KAIROSDB_CASSANDRA_STRING_CACHE_SIZE", value_name = "N")]
    pub cassandra_string_cache_size: Option<usize>,

    /// Cassandra reads in flight per metric query [default: 20].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_SIMULTANEOUS_QUERIES",
        value_name = "N"
    )]
    pub cassandra_simultaneous_queries: Option<usize>,

    /// Comma list of metric-name prefixes kept out of /metricnames [default: empty].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_METRIC_INDEX_FILTER",
        value_name = "PREFIXES"
    )]
    pub cassandra_metric_index_filter: Option<String>,

    /// Metrics whose row keys also go to tag_indexed_row_keys, for KairosDB nodes with
    /// tag_indexed_row_key_lookup_metrics: `*`, `metric` or `metric:tag1|tag2`, comma
    /// separated [default: empty].
    #[arg(
        long,
        env = "KAIROSDB_CASSANDRA_TAG_INDEXED_METRICS",
        value_name = "LIST"
    )]
    pub cassandra_tag_indexed_metrics: Option<String>,

    /// Cassandra mode: undelivered ingest kept on local disk before writes get 503
    /// [default: 1024].
    #[arg(long, env = "KAIROSDB_QUEUE_MAX_MB", value_name = "MB")]
    pub queue_max_mb: Option<u64>,

    /// Require credentials (HTTP Basic or Bearer token) on the API; users and tokens are
    /// listed in the file's `[auth]` table [default: false].
    #[arg(long, env = "KAIROSDB_AUTH_ENABLED", value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub auth_enabled: Option<bool>,

    /// Requests a minute per client and route class for clients without a rate of their
    /// own; 0 = no limit [default: 0 on a single node, 1000 on a control node, 5000 on a
    /// worker].
    #[arg(long, env = "KAIROSDB_RATE_LIMIT_PER_MINUTE", value_name = "N")]
    pub rate_limit_per_minute: Option<u32>,

    /// Requests a client may send at once under rate_limit_per_minute; 0 = ten seconds'
    /// worth [default: 0].
    #[arg(long, env = "KAIROSDB_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,

    /// Most rate-limit buckets (client × route class) kept in memory [default: 100000].
    #[arg(long, env = "KAIROSDB_RATE_LIMIT_MAX_KEYS", value_name = "N")]
    pub rate_limit_max_keys: Option<usize>,

    /// Telnet clients allowed to connect: comma list of CIDRs; empty = everyone
    /// [default: empty].
    #[arg(long, env = "KAIROSDB_TELNET_ALLOW", value_name = "CIDRS")]
    pub telnet_allow: Option<String>,

    /// Users, tokens, anonymous access and open paths: the `[auth]` table (file only).
    #[arg(skip)]
    pub auth: Option<crate::auth::AuthSettings>,
}

/// Copies every key set in `$higher` over `$lower`.
macro_rules! overlay {
    ($lower:expr, $higher:expr, $($field:ident),+ $(,)?) => {
        $( if $higher.$field.is_some() { $lower.$field = $higher.$field; } )+
    };
}

impl Settings {
    /// `self` with every key that `higher` sets replaced by `higher`'s value.
    /// Other names of a setting in the environment, read through `env`, each only where
    /// the canonical name left the setting unset (clap reads one variable per setting):
    ///
    /// * `KAIROSDB_CACHE_MAX_SIZE_MB` → `query_cache_mb` (issue 18's compatibility matrix).
    /// * The analytics-cluster plan's variables (issue 19): `NODE_ROLE` → `role`,
    ///   `WORKER_HOSTS` → `cluster_workers`, `DB_PATH` → `data_dir`, `PORT` → the port of
    ///   `bind_address` (on 0.0.0.0).
    pub fn with_env_aliases(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        if self.role.is_none() {
            self.role = env("NODE_ROLE");
        }
        if self.cluster_workers.is_none() {
            self.cluster_workers = env("WORKER_HOSTS");
        }
        if self.cluster_seeds.is_none() {
            self.cluster_seeds = env("CONTROL_HOST");
        }
        if self.node_id.is_none() {
            if let Some(id) = env("NODE_ID") {
                let id = id
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid NODE_ID {id:?}: expected a number"))?;
                self.node_id = Some(id);
            }
        }
        if self.data_dir.is_none() {
            self.data_dir = env("DB_PATH").map(PathBuf::from);
        }
        if self.redis_uri.is_none() {
            self.redis_uri = env("REDIS_URI");
        }
        if let Some(port) = env("PORT") {
            let port: u16 = port
                .trim()
                .parse()
                .with_context(|| format!("invalid PORT {port:?}: expected a port number"))?;
            // Two plans name their port PORT: the telemetry plan's process is the one
            // started with APP_ENV and no NODE_ROLE (docs/telemetry.md, "Configuration").
            let telemetry_plan = env("APP_ENV").is_some() && env("NODE_ROLE").is_none();
            let target = match telemetry_plan {
                true => &mut self.telemetry_bind_address,
                false => &mut self.bind_address,
            };
            if target.is_none() {
                *target = Some(format!("0.0.0.0:{port}"));
            }
        }
        const CACHE: &str = "KAIROSDB_CACHE_MAX_SIZE_MB";
        if self.query_cache_mb.is_none() {
            if let Some(v) = env(CACHE) {
                let mb = v
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid {CACHE} {v:?}: expected megabytes"))?;
                self.query_cache_mb = Some(mb);
            }
        }
        Ok(self)
    }

    pub fn overlay(mut self, higher: Settings) -> Settings {
        overlay!(
            self,
            higher,
            bind_address,
            telnet_bind_address,
            telemetry_bind_address,
            data_dir,
            datastore,
            max_batch_size,
            worker_threads,
            enable_validation,
            max_memory_mb,
            enable_prometheus,
            self_metrics,
            self_metrics_interval_secs,
            self_metrics_ttl_secs,
            log_level,
            tls_cert_file,
            tls_key_file,
            http_max_connections,
            telnet_max_connections,
            min_free_disk_mb,
            otel_enabled,
            otel_endpoint,
            otel_sample_ratio,
            otel_service_name,
            rollups,
            rollup_late_window_secs,
            wal_sync,
            wal_sync_interval_ms,
            wal_skip_corrupt,
            compression_level,
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
            query_cache,
            redis_uri,
            redis_key_prefix,
            redis_timeout_ms,
            telemetry_cache_ttl_secs,
            role,
            cluster_workers,
            node_id,
            advertise_address,
            cluster_seeds,
            cluster_secret,
            cluster_min_workers,
            cluster_partitions,
            replication_factor,
            write_min_replicas,
            cluster_request_timeout_ms,
            deny_partial_response,
            server_type,
            cassandra_contact_points,
            cassandra_keyspace,
            cassandra_user,
            cassandra_password,
            cassandra_replication,
            cassandra_read_consistency,
            cassandra_write_consistency,
            cassandra_local_dc,
            cassandra_row_time_unit,
            cassandra_row_width,
            cassandra_data_points_create_with,
            cassandra_force_default_ttl,
            cassandra_align_ttl_with_timestamp,
            cassandra_row_key_cache_size,
            cassandra_string_cache_size,
            cassandra_simultaneous_queries,
            cassandra_metric_index_filter,
            cassandra_tag_indexed_metrics,
            queue_max_mb,
            auth_enabled,
            rate_limit_per_minute,
            rate_limit_burst,
            rate_limit_max_keys,
            telnet_allow,
            auth,
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
    /// Empty: the telemetry API is off.
    pub telemetry_bind_address: String,
    pub data_dir: PathBuf,
    pub datastore: Datastore,
    pub max_batch_size: usize,
    pub worker_threads: usize,
    pub enable_validation: bool,
    pub max_memory_mb: u64,
    pub enable_prometheus: bool,
    pub self_metrics: bool,
    pub self_metrics_interval_secs: u64,
    /// 0 = forever.
    pub self_metrics_ttl_secs: u32,
    pub log_level: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub http_max_connections: usize,
    pub telnet_max_connections: usize,
    pub min_free_disk_mb: u64,
    pub otel_enabled: bool,
    /// Empty: the exporter's standard environment variables, else its default.
    pub otel_endpoint: String,
    pub otel_sample_ratio: f64,
    pub otel_service_name: String,
    pub rollups: bool,
    pub rollup_late_window_secs: u64,
    pub wal_sync: WalSyncPolicy,
    pub wal_sync_interval_ms: u64,
    pub wal_skip_corrupt: bool,
    /// pco level of new blocks (0-12).
    pub compression_level: usize,
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
    pub query_cache: QueryCacheKind,
    /// Empty: no Redis.
    pub redis_uri: String,
    pub redis_key_prefix: String,
    pub redis_timeout_ms: u64,
    /// 0 = telemetry answers are not cached.
    pub telemetry_cache_ttl_secs: u64,
    /// As configured (`ALL` or a list); parsed into [`Config::roles`].
    pub role: NodeRole,
    /// Control node: the workers' addresses (written back as the comma list).
    #[serde(serialize_with = "comma_list")]
    pub cluster_workers: Vec<String>,
    pub node_id: u64,
    /// Empty: derived from the bound address.
    pub advertise_address: String,
    #[serde(serialize_with = "comma_list")]
    pub cluster_seeds: Vec<String>,
    pub cluster_min_workers: usize,
    /// Empty: node-to-node calls are not checked.
    pub cluster_secret: String,
    pub cluster_partitions: u32,
    pub replication_factor: usize,
    pub write_min_replicas: usize,
    pub cluster_request_timeout_ms: u64,
    pub deny_partial_response: bool,
    pub server_type: String,
    pub cassandra_contact_points: String,
    pub cassandra_keyspace: String,
    pub cassandra_user: Option<String>,
    #[serde(skip_serializing)]
    pub cassandra_password: Option<String>,
    pub cassandra_replication: String,
    pub cassandra_read_consistency: String,
    pub cassandra_write_consistency: String,
    pub cassandra_local_dc: Option<String>,
    pub cassandra_row_time_unit: String,
    pub cassandra_row_width: Option<i64>,
    pub cassandra_data_points_create_with: String,
    pub cassandra_force_default_ttl: bool,
    pub cassandra_align_ttl_with_timestamp: bool,
    pub cassandra_row_key_cache_size: usize,
    pub cassandra_string_cache_size: usize,
    pub cassandra_simultaneous_queries: usize,
    pub cassandra_metric_index_filter: String,
    pub cassandra_tag_indexed_metrics: String,
    pub queue_max_mb: u64,
    pub auth_enabled: bool,
    /// 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// 0 = ten seconds' worth of `rate_limit_per_minute`.
    pub rate_limit_burst: u32,
    pub rate_limit_max_keys: usize,
    /// As configured; parsed into [`Config::telnet_networks`].
    pub telnet_allow: String,
    /// The `[auth]` table as written (validated by `auth::Policy::new`). Last: a table.
    #[serde(skip_serializing_if = "crate::auth::AuthSettings::is_empty")]
    pub auth: crate::auth::AuthSettings,
    #[serde(skip)]
    pub roles: Roles,
    #[serde(skip)]
    pub telnet_networks: Vec<ipnet::IpNet>,
}

/// A node's part in a cluster (`role`, docs/cluster.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// One server on its own store (the default).
    Single,
    /// Takes the API and routes to the workers.
    Control,
    /// Stores partitions for control nodes (`/internal/v1/*`).
    Worker,
}

impl NodeRole {
    /// `rate_limit_per_minute` when it is not set: none on a single node; the analytics
    /// plan's per-token limits on cluster nodes, 1,000 requests a minute on a control node
    /// and 5,000 on a worker (whose `/internal/v1/*` calls are never limited).
    pub fn default_rate_limit(self) -> u32 {
        match self {
            NodeRole::Single => 0,
            NodeRole::Control => 1_000,
            NodeRole::Worker => 5_000,
        }
    }

    fn parse(text: &str) -> Result<NodeRole> {
        match text.trim().to_ascii_lowercase().as_str() {
            "single" => Ok(NodeRole::Single),
            "control" => Ok(NodeRole::Control),
            "worker" => Ok(NodeRole::Worker),
            _ => bail!("unknown role {text:?}; expected \"single\", \"control\" or \"worker\""),
        }
    }
}

/// Where the points are stored (`datastore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datastore {
    Embedded,
    Cassandra,
}

impl Datastore {
    const ALL: [Datastore; 2] = [Datastore::Embedded, Datastore::Cassandra];

    /// The name in the configuration (and in `--check-config`).
    pub fn name(self) -> &'static str {
        match self {
            Datastore::Embedded => "embedded",
            Datastore::Cassandra => "cassandra",
        }
    }

    fn parse(text: &str) -> Result<Datastore> {
        match Datastore::ALL.into_iter().find(|d| d.name() == text) {
            Some(d) => Ok(d),
            None => bail!("unknown datastore {text:?}; expected \"embedded\" or \"cassandra\""),
        }
    }
}

impl std::fmt::Display for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Datastore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Where `cache_time` reads are kept (`query_cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryCacheKind {
    /// In this process, bounded by `query_cache_mb` (`query_cache.rs`).
    Memory,
    /// In the Redis of `redis_uri`, shared by every process using it.
    Redis,
}

/// A class of API routes that `server_type` turns on or off (KairosDB's
/// `kairosdb.server.type`, spec §1.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiClass {
    Ingest,
    Query,
    Delete,
}

impl ApiClass {
    const ALL: [ApiClass; 3] = [ApiClass::Ingest, ApiClass::Query, ApiClass::Delete];

    /// KairosDB's name of the class, in `server_type` and in the 403 message.
    pub fn name(self) -> &'static str {
        match self {
            ApiClass::Ingest => "INGEST",
            ApiClass::Query => "QUERY",
            ApiClass::Delete => "DELETE",
        }
    }

    /// The class of an upper-case name.
    fn from_name(name: &str) -> Option<ApiClass> {
        ApiClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The API classes one process serves (KairosDB's `kairosdb.server.type`, spec §1.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub query: bool,
    pub delete: bool,
}

impl Default for Roles {
    fn default() -> Roles {
        Roles {
            ingest: true,
            query: true,
            delete: true,
        }
    }
}

impl Roles {
    /// `ALL` or a comma list of INGEST, QUERY, DELETE (case and whitespace ignored).
    pub fn parse(text: &str) -> Result<Roles> {
        let words: Vec<String> = text
            .split(',')
            .map(|w| w.trim().to_ascii_uppercase())
            .filter(|w| !w.is_empty())
            .collect();
        if words.iter().any(|w| w == "ALL") {
            return Ok(Roles::default());
        }
        let mut classes = Vec::with_capacity(words.len());
        for w in &words {
            match ApiClass::from_name(w) {
                Some(class) => classes.push(class),
                None => bail!(
                    "invalid server_type {w:?}; expected ALL or a comma list of INGEST, QUERY, DELETE"
                ),
            }
        }
        if words.is_empty() {
            bail!("server_type is empty; expected ALL or a comma list of INGEST, QUERY, DELETE");
        }
        Ok(Roles {
            ingest: classes.contains(&ApiClass::Ingest),
            query: classes.contains(&ApiClass::Query),
            delete: classes.contains(&ApiClass::Delete),
        })
    }

    /// Does this process serve `class`?
    pub fn serves(self, class: ApiClass) -> bool {
        match class {
            ApiClass::Ingest => self.ingest,
            ApiClass::Query => self.query,
            ApiClass::Delete => self.delete,
        }
    }
}

impl Config {
    /// Applies the defaults to `raw` and validates every value.
    pub fn resolve(raw: Settings) -> Result<Config> {
        let datastore = Datastore::parse(raw.datastore.as_deref().unwrap_or("embedded"))?;
        let server_type = raw.server_type.unwrap_or_else(|| "ALL".to_string());
        let roles = Roles::parse(&server_type)?;
        let role = NodeRole::parse(raw.role.as_deref().unwrap_or("single"))?;
        let redis_uri = raw.redis_uri.clone().unwrap_or_default().trim().to_string();
        if !redis_uri.is_empty() && !redis_uri.starts_with("redis://") {
            bail!("invalid redis_uri {redis_uri:?}; expected redis://host:port[/db]");
        }
        let query_cache = match raw.query_cache.as_deref().unwrap_or("memory") {
            "memory" => QueryCacheKind::Memory,
            "redis" if redis_uri.is_empty() => {
                bail!("query_cache = \"redis\" needs redis_uri (REDIS_URI) to name the Redis")
            }
            "redis" => QueryCacheKind::Redis,
            other => bail!("invalid query_cache {other:?}; expected memory or redis"),
        };
        let wal_sync = match raw.wal_sync.as_deref().unwrap_or("interval") {
            "always" => WalSyncPolicy::Always,
            "interval" => WalSyncPolicy::Interval,
            "none" => WalSyncPolicy::None,
            other => bail!("invalid wal_sync {other:?}; expected always, interval or none"),
        };
        if raw.tls_cert_file.is_some() != raw.tls_key_file.is_some() {
            bail!("tls_cert_file and tls_key_file go together: set both for HTTPS, or neither");
        }
        if let Some(level) = &raw.log_level {
            tracing_subscriber::EnvFilter::try_new(level)
                .map_err(|e| anyhow::anyhow!("invalid log_level {level:?}: {e}"))?;
        }
        let health_check_status = raw.health_check_status.unwrap_or(204);
        if health_check_status != 200 && health_check_status != 204 {
            bail!("invalid health_check_status {health_check_status}; expected 200 or 204");
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut config = Config {
            bind_address: parse_addr(
                "bind_address",
                raw.bind_address.as_deref().unwrap_or("0.0.0.0:8080"),
            )?,
            telnet_bind_address: parse_addr(
                "telnet_bind_address",
                raw.telnet_bind_address.as_deref().unwrap_or("0.0.0.0:4242"),
            )?,
            telemetry_bind_address: match raw.telemetry_bind_address.as_deref().unwrap_or("") {
                "" => String::new(),
                a => parse_addr("telemetry_bind_address", a)?.to_string(),
            },
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            datastore,
            max_batch_size: positive("max_batch_size", raw.max_batch_size.unwrap_or(50_000))?,
            worker_threads: positive("worker_threads", raw.worker_threads.unwrap_or(cpus))?,
            enable_validation: raw.enable_validation.unwrap_or(true),
            max_memory_mb: positive("max_memory_mb", raw.max_memory_mb.unwrap_or(1024))?,
            enable_prometheus: raw.enable_prometheus.unwrap_or(true),
            self_metrics: raw.self_metrics.unwrap_or(true),
            self_metrics_interval_secs: positive(
                "self_metrics_interval_secs",
                raw.self_metrics_interval_secs.unwrap_or(60),
            )?,
            self_metrics_ttl_secs: raw.self_metrics_ttl_secs.unwrap_or(0),
            log_level: raw.log_level.clone().unwrap_or_else(|| "info".to_string()),
            tls_cert_file: raw.tls_cert_file.clone(),
            tls_key_file: raw.tls_key_file.clone(),
            http_max_connections: positive(
                "http_max_connections",
                raw.http_max_connections.unwrap_or(10_000),
            )?,
            telnet_max_connections: positive(
                "telnet_max_connections",
                raw.telnet_max_connections.unwrap_or(10_000),
            )?,
            min_free_disk_mb: raw.min_free_disk_mb.unwrap_or(256),
            role,
            cluster_workers: comma_split(raw.cluster_workers.as_deref()),
            node_id: raw.node_id.unwrap_or(0),
            advertise_address: raw.advertise_address.clone().unwrap_or_default(),
            cluster_seeds: comma_split(raw.cluster_seeds.as_deref()),
            cluster_min_workers: raw.cluster_min_workers.unwrap_or(0),
            cluster_secret: raw.cluster_secret.clone().unwrap_or_default(),
            cluster_partitions: positive(
                "cluster_partitions",
                raw.cluster_partitions.unwrap_or(256),
            )?,
            replication_factor: positive(
                "replication_factor",
                raw.replication_factor.unwrap_or(1),
            )?,
            write_min_replicas: positive(
                "write_min_replicas",
                raw.write_min_replicas.unwrap_or(1),
            )?,
            cluster_request_timeout_ms: positive(
                "cluster_request_timeout_ms",
                raw.cluster_request_timeout_ms.unwrap_or(5000),
            )?,
            deny_partial_response: raw.deny_partial_response.unwrap_or(false),
            otel_enabled: raw.otel_enabled.unwrap_or(false),
            otel_endpoint: raw.otel_endpoint.clone().unwrap_or_default(),
            otel_sample_ratio: ratio("otel_sample_ratio", raw.otel_sample_ratio.unwrap_or(1.0))?,
            otel_service_name: raw
                .otel_service_name
                .clone()
                .unwrap_or_else(|| "kairosdb".to_string()),
            rollups: raw.rollups.unwrap_or(true),
            rollup_late_window_secs: raw.rollup_late_window_secs.unwrap_or(3600),
            wal_sync,
            wal_sync_interval_ms: positive(
                "wal_sync_interval_ms",
                raw.wal_sync_interval_ms.unwrap_or(1000),
            )?,
            wal_skip_corrupt: raw.wal_skip_corrupt.unwrap_or(false),
            compression_level: match raw.compression_level.unwrap_or(3) {
                l @ 0..=12 => l,
                l => bail!("compression_level must be 0 to 12, got {l}"),
            },
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
            query_cache,
            redis_uri,
            redis_key_prefix: raw
                .redis_key_prefix
                .unwrap_or_else(|| "kairosdb:".to_string()),
            redis_timeout_ms: positive("redis_timeout_ms", raw.redis_timeout_ms.unwrap_or(100))?,
            telemetry_cache_ttl_secs: raw.telemetry_cache_ttl_secs.unwrap_or(60),
            server_type,
            cassandra_contact_points: raw
                .cassandra_contact_points
                .unwrap_or_else(|| "localhost".to_string()),
            cassandra_keyspace: raw
                .cassandra_keyspace
                .unwrap_or_else(|| "kairosdb".to_string()),
            cassandra_user: raw.cassandra_user,
            cassandra_password: raw.cassandra_password,
            cassandra_replication: raw
                .cassandra_replication
                .unwrap_or_else(|| kairosdb_cassandra::schema::DEFAULT_REPLICATION.to_string()),
            cassandra_read_consistency: raw
                .cassandra_read_consistency
                .unwrap_or_else(|| "ONE".to_string()),
            cassandra_write_consistency: raw
                .cassandra_write_consistency
                .unwrap_or_else(|| "QUORUM".to_string()),
            cassandra_local_dc: raw.cassandra_local_dc,
            cassandra_row_time_unit: raw
                .cassandra_row_time_unit
                .unwrap_or_else(|| "MILLISECONDS".to_string()),
            cassandra_row_width: raw.cassandra_row_width,
            cassandra_data_points_create_with: raw
                .cassandra_data_points_create_with
                .unwrap_or_default(),
            cassandra_force_default_ttl: raw.cassandra_force_default_ttl.unwrap_or(false),
            cassandra_align_ttl_with_timestamp: raw
                .cassandra_align_ttl_with_timestamp
                .unwrap_or(false),
            cassandra_row_key_cache_size: positive(
                "cassandra_row_key_cache_size",
                raw.cassandra_row_key_cache_size.unwrap_or(50_000),
            )?,
            cassandra_string_cache_size: positive(
                "cassandra_string_cache_size",
                raw.cassandra_string_cache_size.unwrap_or(50_000),
            )?,
            cassandra_simultaneous_queries: positive(
                "cassandra_simultaneous_queries",
                raw.cassandra_simultaneous_queries.unwrap_or(20),
            )?,
            cassandra_metric_index_filter: raw.cassandra_metric_index_filter.unwrap_or_default(),
            cassandra_tag_indexed_metrics: raw.cassandra_tag_indexed_metrics.unwrap_or_default(),
            queue_max_mb: positive("queue_max_mb", raw.queue_max_mb.unwrap_or(1024))?,
            auth_enabled: raw.auth_enabled.unwrap_or(false),
            rate_limit_per_minute: raw
                .rate_limit_per_minute
                .unwrap_or(role.default_rate_limit()),
            rate_limit_burst: raw.rate_limit_burst.unwrap_or(0),
            rate_limit_max_keys: positive(
                "rate_limit_max_keys",
                raw.rate_limit_max_keys.unwrap_or(100_000),
            )?,
            telnet_networks: crate::auth::parse_networks(raw.telnet_allow.as_deref().unwrap_or(""))
                .map_err(anyhow::Error::msg)?,
            telnet_allow: raw.telnet_allow.unwrap_or_default(),
            auth: raw.auth.unwrap_or_default(),
            roles,
        };
        crate::auth::Policy::new(&config).map_err(anyhow::Error::msg)?;
        // Validate the Cassandra settings even in embedded mode, so a typo is found
        // before the switch.
        config.cassandra_store_options()?;
        config.cassandra_cluster_options()?;
        if config.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        if config.role == NodeRole::Control
            && config.cluster_workers.is_empty()
            && config.cluster_min_workers == 0
        {
            bail!("role = \"control\" needs cluster_workers (WORKER_HOSTS: the workers' host:port list) or cluster_min_workers (place once that many workers joined)");
        }
        if config.role != NodeRole::Single && config.datastore != Datastore::Embedded {
            bail!("a cluster node stores in the embedded engine: datastore must be \"embedded\"");
        }
        if config.role == NodeRole::Worker {
            // A worker holds some partitions only: a roll-up or a self-metrics report
            // there would read or write a fraction of the data. Control nodes run them.
            config.rollups = false;
            config.self_metrics = false;
        }
        if config.role != NodeRole::Single
            && config.auth_enabled
            && config.cluster_secret.is_empty()
        {
            bail!("a cluster node with auth_enabled needs cluster_secret: the nodes' calls to each other carry it instead of a user's credentials");
        }
        if config.cluster_secret.chars().any(|c| !c.is_ascii_graphic()) {
            bail!("cluster_secret must be printable ASCII without spaces");
        }
        if config.write_min_replicas > config.replication_factor {
            bail!(
                "write_min_replicas ({}) cannot exceed replication_factor ({})",
                config.write_min_replicas,
                config.replication_factor
            );
        }
        Ok(config)
    }

    /// Resolves defaults < `file` < `env_and_cli` (clap has already put flags over env).
    pub fn load(file: Option<&Path>, env_and_cli: Settings) -> Result<Config> {
        let env_and_cli = env_and_cli.with_env_aliases(|k| std::env::var(k).ok())?;
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
        engine.compression_level = self.compression_level;
        engine.min_free_disk_bytes = self.min_free_disk_mb.saturating_mul(1024 * 1024);
        engine
    }

    /// The Cassandra store's options (KairosDB's `datastore.cassandra.*`).
    pub fn cassandra_store_options(&self) -> Result<kairosdb_cassandra::StoreOptions> {
        use kairosdb_cassandra::{Keyspace, RowSpec, RowTimeUnit, StoreOptions, TableOptions};
        let keyspace = Keyspace::new(&self.cassandra_keyspace)
            .map_err(|e| anyhow::anyhow!("cassandra_keyspace: {e}"))?;
        let row_time_unit = match self.cassandra_row_time_unit.to_ascii_uppercase().as_str() {
            "MILLISECONDS" => RowTimeUnit::Milliseconds,
            "SECONDS" => RowTimeUnit::Seconds,
            other => {
                bail!("invalid cassandra_row_time_unit {other:?}; expected MILLISECONDS or SECONDS")
            }
        };
        if let Some(w) = self.cassandra_row_width {
            RowSpec::new(row_time_unit, w)
                .map_err(|e| anyhow::anyhow!("cassandra_row_width: {e}"))?;
        }
        let mut table_options = TableOptions::default();
        if !self.cassandra_data_points_create_with.is_empty() {
            table_options.create_with.push((
                "data_points".to_string(),
                self.cassandra_data_points_create_with.clone(),
            ));
        }
        Ok(StoreOptions {
            keyspace,
            replication: self.cassandra_replication.clone(),
            table_options,
            create_schema: true,
            row_time_unit,
            row_width: self.cassandra_row_width,
            default_ttl_secs: self.default_ttl_secs,
            force_default_ttl: self.cassandra_force_default_ttl,
            align_ttl_with_timestamp: self.cassandra_align_ttl_with_timestamp,
            row_key_cache_size: self.cassandra_row_key_cache_size,
            string_cache_size: self.cassandra_string_cache_size,
            metric_index_filter: self
                .cassandra_metric_index_filter
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            tag_indexed: kairosdb_cassandra::TagIndexed::parse(&self.cassandra_tag_indexed_metrics)
                .map_err(|e| anyhow::anyhow!("cassandra_tag_indexed_metrics: {e}"))?,
        })
    }

    /// Connection settings of the Cassandra driver.
    #[cfg(feature = "cassandra")]
    pub fn cassandra_cluster_options(&self) -> Result<kairosdb_cassandra::driver::ClusterOptions> {
        use kairosdb_cassandra::driver::{parse_consistency, ClusterOptions};
        let consistency = |key: &str, v: &str| {
            parse_consistency(v).ok_or_else(|| {
                anyhow::anyhow!("invalid {key} {v:?}; expected ONE, QUORUM, LOCAL_QUORUM, ALL, ...")
            })
        };
        let contact_points: Vec<String> = self
            .cassandra_contact_points
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect();
        if contact_points.is_empty() {
            bail!("cassandra_contact_points is empty");
        }
        if self.cassandra_user.is_some() != self.cassandra_password.is_some() {
            bail!("cassandra_user and cassandra_password must be set together");
        }
        Ok(ClusterOptions {
            contact_points,
            user: self.cassandra_user.clone(),
            password: self.cassandra_password.clone(),
            read_consistency: consistency(
                "cassandra_read_consistency",
                &self.cassandra_read_consistency,
            )?,
            write_consistency: consistency(
                "cassandra_write_consistency",
                &self.cassandra_write_consistency,
            )?,
            local_dc: self.cassandra_local_dc.clone(),
            simultaneous_queries: self.cassandra_simultaneous_queries,
            ..ClusterOptions::default()
        })
    }

    /// Without the driver there is nothing to configure; Cassandra mode is refused at start.
    #[cfg(not(feature = "cassandra"))]
    pub fn cassandra_cluster_options(&self) -> Result<()> {
        Ok(())
    }

    /// The delivery queue in front of Cassandra: `data_dir/queue`, the WAL's fsync policy.
    pub fn queue_options(&self) -> kairosdb_engine::QueueOptions {
        let mut q = kairosdb_engine::QueueOptions::new(self.data_dir.join("queue"));
        q.max_bytes = self.queue_max_mb.saturating_mul(1024 * 1024);
        q.sync = self.engine_config().wal_sync;
        q.min_free_disk_bytes = self.min_free_disk_mb.saturating_mul(1024 * 1024);
        q
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
            work_limit: None,
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

/// The non-empty items of a comma-separated list.
fn comma_split(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Writes a list as the comma-separated string the settings read.
fn comma_list<S: serde::Serializer>(list: &[String], out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(&list.join(","))
}

/// A share: a number from 0 to 1.
fn ratio(key: &str, value: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&value) {
        bail!("{key} must be between 0 and 1, not {value}");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_telemetry_plans_redis_uri_and_port_map_onto_the_redis_cache_and_its_listener() {
        let plan = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = Settings::default()
            .with_env_aliases(plan(&[
                ("APP_ENV", "dev"),
                ("PORT", "9300"),
                ("REDIS_URI", "redis://127.0.0.1:6379/0"),
            ]))
            .unwrap();
        let c = Config::resolve(s).unwrap();
        assert_eq!(c.redis_uri, "redis://127.0.0.1:6379/0");
        assert_eq!(c.telemetry_bind_address, "0.0.0.0:9300");
        assert_eq!(
            c.bind_address.port(),
            8080,
            "the main listener keeps its port"
        );
        // The analytics plan's process (NODE_ROLE) keeps PORT for the main listener.
        let s = Settings::default()
            .with_env_aliases(plan(&[
                ("APP_ENV", "dev"),
                ("NODE_ROLE", "single"),
                ("PORT", "9300"),
            ]))
            .unwrap();
        assert_eq!(s.bind_address.as_deref(), Some("0.0.0.0:9300"));
        assert_eq!(s.telemetry_bind_address, None);
    }

    #[test]
    fn a_redis_query_cache_needs_a_redis_and_a_known_kind() {
        let refused = |toml: &str| {
            format!(
                "{:#}",
                Config::resolve(Settings::from_toml_str(toml).unwrap()).unwrap_err()
            )
        };
        assert!(refused("query_cache = \"redis\"").contains("needs redis_uri"));
        assert!(refused("query_cache = \"disk\"").contains("expected memory or redis"));
        assert!(refused("redis_uri = \"localhost:6379\"").contains("expected redis://"));
        let ok = Settings::from_toml_str("query_cache = \"redis\"\nredis_uri = \"redis://r:1/0\"")
            .unwrap();
        assert_eq!(
            Config::resolve(ok).unwrap().query_cache,
            QueryCacheKind::Redis
        );
    }

    #[test]
    fn kairosdb_cache_max_size_mb_is_an_alias_of_query_cache_mb() {
        let env = |v: &'static str| {
            move |k: &str| (k == "KAIROSDB_CACHE_MAX_SIZE_MB").then(|| v.to_string())
        };
        let s = Settings::default().with_env_aliases(env("12")).unwrap();
        assert_eq!(Config::resolve(s).unwrap().query_cache_mb, 12);
        // The canonical name wins.
        let s = Settings {
            query_cache_mb: Some(3),
            ..Settings::default()
        };
        assert_eq!(
            s.with_env_aliases(env("12")).unwrap().query_cache_mb,
            Some(3)
        );
        let e = Settings::default()
            .with_env_aliases(env("lots"))
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("KAIROSDB_CACHE_MAX_SIZE_MB"),
            "{e:#}"
        );
        // In a TOML file too.
        let s: Settings = toml::from_str("cache_max_size_mb = 7").unwrap();
        assert_eq!(s.query_cache_mb, Some(7));
    }

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
        assert_eq!(c.engine_config().compression_level, 3);
        let c = Config::resolve(Settings {
            compression_level: Some(1),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(c.engine_config().compression_level, 1);
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
            datastore: Some("mysql".into()),
            ..Settings::default()
        });
        assert!(e.contains("unknown datastore"), "{e}");
        for (s, key) in [
            (
                Settings {
                    server_type: Some("INGEST, READ".into()),
                    ..Settings::default()
                },
                "server_type",
            ),
            (
                Settings {
                    cassandra_keyspace: Some("bad-name".into()),
                    ..Settings::default()
                },
                "cassandra_keyspace",
            ),
            (
                Settings {
                    cassandra_write_consistency: Some("MOST".into()),
                    ..Settings::default()
                },
                "cassandra_write_consistency",
            ),
            (
                Settings {
                    cassandra_row_time_unit: Some("LEGACY".into()),
                    ..Settings::default()
                },
                "cassandra_row_time_unit",
            ),
            (
                Settings {
                    cassandra_row_width: Some(0),
                    ..Settings::default()
                },
                "cassandra_row_width",
            ),
            (
                Settings {
                    cassandra_user: Some("u".into()),
                    ..Settings::default()
                },
                "cassandra_password",
            ),
        ] {
            let e = bad(s);
            assert!(e.contains(key), "{key}: {e}");
        }
        let e = bad(Settings {
            compression_level: Some(13),
            ..Settings::default()
        });
        assert!(
            e.contains("compression_level must be 0 to 12, got 13"),
            "{e}"
        );
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
    fn server_type_roles() {
        let roles = |t: &str| Roles::parse(t).unwrap();
        assert_eq!(roles("ALL"), Roles::default());
        assert_eq!(
            roles(" ingest , Query"),
            Roles {
                ingest: true,
                query: true,
                delete: false
            }
        );
        assert_eq!(
            roles("DELETE"),
            Roles {
                ingest: false,
                query: false,
                delete: true
            }
        );
        assert!(Roles::parse(" , ").is_err());
    }

    #[test]
    fn datastore_is_resolved_once_with_its_name() {
        let c = Config::resolve(Settings {
            datastore: Some("cassandra".into()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(c.datastore, Datastore::Cassandra);
        assert!(c
            .to_toml()
            .unwrap()
            .contains("\ndatastore = \"cassandra\"\n"));
        let e = Config::resolve(Settings {
            datastore: Some("Embedded".into()),
            ..Settings::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "unknown datastore \"Embedded\"; expected \"embedded\" or \"cassandra\""
        );
    }

    #[test]
    fn roles_serve_their_api_classes() {
        let roles = Roles::parse("query, Delete").unwrap();
        assert!(!roles.serves(ApiClass::Ingest));
        assert!(roles.serves(ApiClass::Query));
        assert!(roles.serves(ApiClass::Delete));
        assert!(ApiClass::ALL.iter().all(|c| Roles::default().serves(*c)));
        let e = Roles::parse("ingest,read").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid server_type \"READ\"; expected ALL or a comma list of INGEST, QUERY, DELETE"
        );
    }

    #[test]
    fn cassandra_settings_map_onto_the_store() {
        let c = Config::resolve(Settings {
            datastore: Some("cassandra".into()),
            default_ttl_secs: Some(3600),
            cassandra_keyspace: Some("metrics".into()),
            cassandra_data_points_create_with: Some("WITH COMPACT STORAGE".into()),
            cassandra_metric_index_filter: Some("internal., tmp.".into()),
            cassandra_tag_indexed_metrics: Some("cpu:host|dc, mem".into()),
            cassandra_row_time_unit: Some("seconds".into()),
            ..Settings::default()
        })
        .unwrap();
        let o = c.cassandra_store_options().unwrap();
        assert_eq!(o.keyspace.as_str(), "metrics");
        assert_eq!(o.default_ttl_secs, 3600);
        assert_eq!(
            o.table_options.for_table("data_points"),
            "WITH COMPACT STORAGE"
        );
        assert_eq!(o.table_options.for_table("row_keys"), "");
        assert_eq!(o.metric_index_filter, vec!["internal.", "tmp."]);
        assert_eq!(o.row_time_unit, kairosdb_cassandra::RowTimeUnit::Seconds);
        assert!(!o.tag_indexed.all_metrics);
        assert_eq!(
            o.tag_indexed.metrics.get("cpu"),
            Some(&Some(vec!["host".to_string(), "dc".to_string()]))
        );
        assert_eq!(o.tag_indexed.metrics.get("mem"), Some(&None));
        assert_eq!(c.queue_options().dir, c.data_dir.join("queue"));
        assert_eq!(c.queue_options().max_bytes, 1024 << 20);
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
    fn the_rate_limit_defaults_to_the_analytics_plans_per_role_and_an_explicit_one_wins() {
        let resolve = |role: &str, rate: Option<u32>| {
            let settings = Settings {
                role: Some(role.into()),
                cluster_workers: Some("127.0.0.1:1".into()),
                rate_limit_per_minute: rate,
                ..Settings::default()
            };
            Config::resolve(settings).unwrap().rate_limit_per_minute
        };
        assert_eq!(resolve("single", None), 0);
        assert_eq!(resolve("control", None), 1_000);
        assert_eq!(resolve("worker", None), 5_000);
        assert_eq!(resolve("control", Some(0)), 0);
        assert_eq!(resolve("worker", Some(7)), 7);
        // What --check-config prints for a worker reads back as the same limit.
        let worker = Config::resolve(Settings {
            role: Some("worker".into()),
            ..Settings::default()
        })
        .unwrap();
        let again = Settings::from_toml_str(&worker.to_toml().unwrap()).unwrap();
        assert_eq!(Config::resolve(again).unwrap(), worker);
    }

    #[test]
    fn printed_config_reads_back() {
        let c = Config::resolve(Settings::default()).unwrap();
        let again = Config::resolve(Settings::from_toml_str(&c.to_toml().unwrap()).unwrap());
        assert_eq!(again.unwrap(), c);
    }
}

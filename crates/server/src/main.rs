//! The `kairosdb` binary: a KairosDB-compatible server on the embedded engine or on
//! KairosDB's Cassandra schema.
//!
//! Start-up, top to bottom: parse flags and environment → resolve the configuration
//! (`config.rs`) → logging → tokio runtime sized by `worker_threads` → open the backend
//! (the engine, or the Cassandra store behind its delivery queue) →
//! bind HTTP (`http/`) and telnet (`telnet.rs`) → start the self-metrics reporter
//! (`self_metrics.rs`) and the roll-up scheduler (`rollup/`) → print `listening http=ADDR telnet=ADDR`.
//!
//! Shutdown on SIGTERM/SIGINT: stop accepting on both listeners, let in-flight HTTP
//! requests and telnet chunks finish (at most `shutdown_timeout_secs`), stop the reporter
//! (a report being written finishes), then `Storage::sync` and `Engine::close`; exit 0
//! (1 if closing the storage failed).
//!
//! Subcommands run a tool instead of the server: `verify` (`verify/`),
//! `migrate-config` (`migrate/`), `hash-secret` (`auth/hash_secret.rs`), and `export` /
//! `import` (`transfer/`).

mod auth;
mod cluster;
mod config;
mod dotenv;
#[cfg(test)]
mod fake_storage;
mod http;
mod metrics;
mod migrate;
mod otel;
mod plan;
mod query_cache;
mod redis_cache;
mod reload;
mod rollup;
mod self_metrics;
mod telemetry;
mod telnet;
mod transfer;
mod ui;
mod verify;
mod watch;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use kairosdb_engine::{DeliveryQueue, Engine};
use kairosdb_model::Storage;

use crate::config::{Config, Datastore, Settings};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's defaults keep freed pages for 10 s in each of 4 arenas per CPU; under
/// ingest (request bodies, growing head columns, seal buffers) that retained memory
/// was most of the peak RSS: 187–208 MB with the defaults, 119–130 MB with a 1 s purge
/// and 110–112 MB with this 0.3 s purge, at the same CPU per point within the noise
/// (docs/benchmarks.md). One arena per CPU, purged by jemalloc's own background thread.
/// `_RJEM_MALLOC_CONF` in the environment overrides it.
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
pub static JEMALLOC_CONF: &[u8] =
    b"percpu_arena:percpu,background_thread:true,dirty_decay_ms:300,muzzy_decay_ms:0\0";

/// A KairosDB-compatible time-series database (REST API and telnet protocol).
///
/// Without a subcommand, runs the server. Every setting can come from the TOML file, a
/// `KAIROSDB_*` environment variable or a flag; flags win over the environment, which wins
/// over the file.
#[derive(Parser, Debug)]
#[command(name = "kairosdb", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Tool>,

    /// TOML configuration file (see config/example.toml).
    #[arg(long, env = "KAIROSDB_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the resolved configuration and exit (non-zero if it is invalid).
    #[arg(long)]
    check_config: bool,

    #[command(flatten)]
    settings: Settings,
}

/// Tools for moving from Java KairosDB, run instead of the server. Their help text is
/// the doc comment of their argument structs.
#[derive(Subcommand, Debug)]
enum Tool {
    Verify(verify::VerifyArgs),
    MigrateConfig(migrate::MigrateArgs),
    HashSecret(auth::hash_secret::HashSecretArgs),
    Export(transfer::export::ExportArgs),
    Import(transfer::import::ImportArgs),
}

fn main() -> std::process::ExitCode {
    // Before the flags: `.env` values are environment variables for clap (`dotenv.rs`).
    if let Err(e) = dotenv::load(std::path::Path::new(".")) {
        eprintln!("kairosdb: error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Tool::Verify(args)) => return verify::run(args).into(),
        Some(Tool::MigrateConfig(args)) => return migrate::run(args).into(),
        Some(Tool::HashSecret(args)) => return auth::hash_secret::run(args).into(),
        Some(Tool::Export(args)) => return transfer::export::run(args).into(),
        Some(Tool::Import(args)) => return transfer::import::run(args).into(),
        None => {}
    }
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("kairosdb: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref(), cli.settings.clone())?;
    if cli.check_config {
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    // Inside the runtime: the trace exporter sends on it.
    let entered = runtime.enter();
    let traces = otel::Tracing::start(&config)?;
    let node = cluster::log_label(&config)?;
    let log = init_logging(&config, traces.as_ref(), node)?;
    drop(entered);
    let reload_from = (cli.config.clone(), cli.settings, log);
    let result = runtime.block_on(run(config, reload_from));
    // While the runtime still runs: the last spans are sent on it.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    result
}

/// Logging to stderr with a filter SIGHUP can change (`reload.rs`), and the trace
/// exporter's layer when `otel_enabled` (`otel.rs`). The log filter is the log's own, so
/// the trace layer sees its spans whatever `log_level` says. A cluster node starts every
/// line with its node id and role (`node`), so merged logs tell the nodes apart.
fn init_logging(
    config: &Config,
    traces: Option<&otel::Tracing>,
    node: Option<String>,
) -> Result<reload::LogHandle> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(reload::log_filter(config)?);
    // Colours only on a terminal; a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .event_format(cluster::NodeFormat::new(node))
                .with_filter(filter),
        )
        .with(traces.map(|t| t.layer()))
        .init();
    Ok(handle)
}

/// The opened backend: what the server reads and writes through, and what to close.
enum Backend {
    Embedded(Arc<Engine>),
    /// Cassandra behind the durable delivery queue.
    Queued(Arc<DeliveryQueue>),
    /// A control node: the workers, once placed (`cluster.rs`).
    Cluster(Arc<cluster::Forming>),
}

impl Backend {
    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Embedded(e) => e.clone(),
            Backend::Queued(q) => q.clone(),
            Backend::Cluster(c) => c.clone(),
        }
    }

    /// Syncs and closes; the queue keeps whatever is undelivered for the next start.
    fn close(&self) -> Result<()> {
        match self {
            Backend::Embedded(e) => {
                e.sync().context("final sync failed")?;
                e.close().context("closing the engine failed")
            }
            Backend::Queued(q) => q.close().context("closing the delivery queue failed"),
            Backend::Cluster(c) => c.close().context("closing the hint queues failed"),
        }
    }
}

/// Opens the configured backend (blocking: WAL replay, first connection attempt).
fn open_backend(config: &Config) -> Result<Backend> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    if config.role == config::NodeRole::Control {
        tracing::info!(workers = ?config.cluster_workers, replication_factor = config.replication_factor, "control node");
        return Ok(Backend::Cluster(Arc::default()));
    }
    match config.datastore {
        Datastore::Cassandra => open_cassandra(config),
        Datastore::Embedded => {
            tracing::info!(data_dir = %config.data_dir.display(), wal_sync = ?config.wal_sync, "opening the embedded engine");
            let engine = Engine::open(config.engine_config()).with_context(|| {
                format!("cannot open the engine in {}", config.data_dir.display())
            })?;
            Ok(Backend::Embedded(Arc::new(engine)))
        }
    }
}

/// Cassandra mode: the store on the `scylla` driver, behind a delivery queue in
/// `data_dir/queue` so a write is acknowledged once it is on local disk.
#[cfg(feature = "cassandra")]
fn open_cassandra(config: &Config) -> Result<Backend> {
    use kairosdb_cassandra::driver::ScyllaSession;
    use kairosdb_cassandra::{CassandraStore, Cql};
    let opts = config.cassandra_store_options()?;
    let cluster = config.cassandra_cluster_options()?;
    tracing::info!(contact_points = ?cluster.contact_points, keyspace = opts.keyspace.as_str(), "opening the Cassandra datastore");
    let session = ScyllaSession::new(Cql::new(opts.keyspace.clone()), cluster)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = CassandraStore::open(session, opts).context("cannot open the Cassandra store")?;
    let queue_opts = config.queue_options();
    let dir = queue_opts.dir.clone();
    let queue = DeliveryQueue::open(Arc::new(store), queue_opts)
        .with_context(|| format!("cannot open the delivery queue in {}", dir.display()))?;
    Ok(Backend::Queued(Arc::new(queue)))
}

#[cfg(not(feature = "cassandra"))]
fn open_cassandra(_config: &Config) -> Result<Backend> {
    anyhow::bail!("this binary was built without the `cassandra` feature; rebuild with it or use datastore = \"embedded\"")
}

/// The Redis cache of `redis_uri`, if set (no connection yet: the server starts while Redis
/// is down and uses it once it answers).
fn open_redis(config: &Config) -> Result<Option<Arc<redis_cache::RedisCache>>> {
    if config.redis_uri.is_empty() {
        return Ok(None);
    }
    let cache = redis_cache::RedisCache::open(
        &config.redis_uri,
        &config.redis_key_prefix,
        Duration::from_millis(config.redis_timeout_ms),
        Duration::from_secs(config.telemetry_cache_ttl_secs),
    )
    .with_context(|| format!("invalid redis_uri {:?}", config.redis_uri))?;
    tracing::info!(redis_uri = %config.redis_uri, query_cache = ?config.query_cache, "Redis cache");
    Ok(Some(cache))
}

/// `--config` and the environment and flags, to resolve the configuration again on SIGHUP.
type ReloadFrom = (Option<PathBuf>, config::Settings, reload::LogHandle);

async fn run(config: Config, reload_from: ReloadFrom) -> Result<()> {
    let config = Arc::new(config);
    let open_config = config.clone();
    let backend = tokio::task::spawn_blocking(move || open_backend(&open_config)).await??;
    // Every write from here on is seen by the watch: the Redis cache's invalidation and the
    // telemetry API's live tail (`watch.rs`).
    let watch = watch::Watch::new(open_redis(&config)?);
    let storage: Arc<dyn Storage> = watch::Watched::new(backend.storage(), watch.clone());

    let server_metrics = Arc::new(metrics::ServerMetrics::default());
    let prometheus = if config.enable_prometheus {
        let handle = metrics::install_prometheus()?;
        // Drains histogram windows even when nobody scrapes.
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Some(handle)
    } else {
        None
    };

    let http_listener = tokio::net::TcpListener::bind(config.bind_address)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.bind_address))?;
    // Telnet is ingest: a process without the INGEST role does not listen for it.
    let telnet_listener = if config.roles.ingest {
        let l = tokio::net::TcpListener::bind(config.telnet_bind_address)
            .await
            .with_context(|| {
                format!("cannot listen for telnet on {}", config.telnet_bind_address)
            })?;
        Some(l)
    } else {
        None
    };
    let http_addr = http_listener.local_addr()?;
    let telnet_addr = match &telnet_listener {
        Some(l) => l.local_addr()?.to_string(),
        None => "off".to_string(),
    };

    let shutdown = CancellationToken::new();
    let telnet_tasks = TaskTracker::new();

    let mut state = http::AppState::new(
        storage.clone(),
        config.clone(),
        server_metrics.clone(),
        prometheus,
    );
    state = state.with_watch(watch);
    let membership = match config.role {
        config::NodeRole::Single => None,
        _ => Some(cluster::join(&config, http_addr).await?),
    };
    if let Some(m) = &membership {
        state = state.with_membership(m.clone());
        if let Backend::Cluster(forming) = &backend {
            cluster::spawn_placement(config.clone(), m.clone(), forming.clone());
        }
    }
    if let Backend::Cluster(forming) = &backend {
        // The analytics plan's routes ask the cluster itself (`plan/`).
        state.cluster = Some(forming.clone());
    }
    let state = Arc::new(state);
    let rollup_scheduler = config.rollups.then(|| {
        rollup::scheduler::spawn(
            state.rollups.clone(),
            rollup::scheduler::Options {
                host: self_metrics::hostname(),
                owner: format!("{}/{http_addr}", self_metrics::hostname()),
                shared_store: config.datastore == Datastore::Cassandra,
                self_metrics_ttl: config.self_metrics.then_some(config.self_metrics_ttl_secs),
            },
            shutdown.clone(),
        )
    });
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(Arc::new(http::tls::Tls::load(cert, key)?)),
        _ => None,
    };
    let (file, settings, log) = reload_from;
    let reloader = reload::spawn(
        reload::Reloader {
            file,
            settings,
            current: (*config).clone(),
            tls: tls.clone(),
            auth: state.auth.clone(),
            log: Some(log),
        },
        shutdown.clone(),
    )?;
    // Both HTTP listeners serve with the same limits.
    let serve_options = || http::serve::Options {
        idle_timeout: config.http_idle_timeout(),
        tls: tls.clone(),
        max_connections: config.http_max_connections,
        metrics: server_metrics.clone(),
    };
    // The telemetry API's own listener, when configured (docs/telemetry.md).
    let telemetry_server = match config.telemetry_bind_address.as_str() {
        "" => None,
        address => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for the telemetry API on {address}"))?;
            let bound = listener.local_addr()?;
            let served = tokio::spawn(http::serve::serve(
                listener,
                telemetry::router(state.clone(), shutdown.clone()),
                serve_options(),
                shutdown.clone(),
            ));
            Some((bound, served))
        }
    };
    let app = http::router(state);
    let http_server = tokio::spawn(http::serve::serve(
        http_listener,
        app,
        serve_options(),
        shutdown.clone(),
    ));

    let telnet_ctx = Arc::new(telnet::TelnetContext {
        storage: storage.clone(),
        metrics: server_metrics.clone(),
        max_line_bytes: config.telnet_max_line_bytes,
        max_batch_size: config.max_batch_size,
        idle_timeout: config.telnet_idle_timeout(),
        enable_validation: config.enable_validation,
        version_line: format!("{}\n", http::meta::version_string()).into_bytes(),
        bad_line_log: telnet::LogLimiter::new(20, Duration::from_secs(10)),
        allow: config.telnet_networks.clone(),
        max_connections: config.telnet_max_connections,
    });
    let telnet_server = telnet_listener.map(|listener| {
        tokio::spawn(telnet::serve(
            listener,
            telnet_ctx,
            shutdown.clone(),
            telnet_tasks.clone(),
        ))
    });

    let reporter = config.self_metrics.then(|| {
        self_metrics::spawn(
            storage.clone(),
            server_metrics.clone(),
            Duration::from_secs(config.self_metrics_interval_secs),
            config.self_metrics_ttl_secs,
            shutdown.clone(),
        )
    });

    // Installed before announcing the ports, so an early SIGTERM is a clean shutdown too.
    let signal = shutdown_signal()?;
    // Tests and scripts parse this line to find the ports (port 0 = any free port).
    match &telemetry_server {
        None => println!("listening http={http_addr} telnet={telnet_addr}"),
        Some((telemetry, _)) => {
            println!("listening http={http_addr} telnet={telnet_addr} telemetry={telemetry}")
        }
    }
    tracing::info!(%http_addr, telnet_addr = %telnet_addr, roles = %config.server_type, datastore = %config.datastore, version = %http::meta::version_string(), "kairosdb started");

    signal.await;
    tracing::info!("shutting down: no new connections; finishing in-flight work");
    shutdown.cancel();

    let drained = tokio::time::timeout(config.shutdown_timeout(), async {
        let http_result = http_server.await;
        if let Some((_, t)) = telemetry_server {
            let _ = t.await;
        }
        if let Some(t) = telnet_server {
            let _ = t.await;
        }
        telnet_tasks.close();
        telnet_tasks.wait().await;
        http_result
    })
    .await;
    match drained {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!(
            timeout_secs = config.shutdown_timeout_secs,
            "connections still open at the shutdown timeout; closing anyway"
        ),
    }

    if let Some(r) = reporter {
        if let Err(e) = r.await {
            tracing::error!(error = %e, "self-metrics task failed");
        }
    }
    // An execution in progress stops after its current period.
    if let Some(r) = rollup_scheduler {
        if let Err(e) = r.await {
            tracing::error!(error = %e, "roll-up scheduler failed");
        }
    }
    let _ = reloader.await;
    if let Some(m) = membership {
        m.shutdown().await;
    }
    drop(storage);
    tokio::task::spawn_blocking(move || backend.close()).await??;
    tracing::info!("storage closed; bye");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

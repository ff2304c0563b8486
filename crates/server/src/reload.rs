//! SIGHUP (issue 22): read again what can change while the server runs, without dropping a
//! connection or a point: the TLS certificate and key files, the `[auth]` users, tokens,
//! scopes and rate limits, and `log_level`. The configuration is resolved exactly as at
//! start-up (the same `--config` file, `.env`-set and real environment, flags); a file that
//! no longer resolves, or a certificate that no longer loads, is refused with the reason and
//! everything keeps running as it was.
//!
//! Not here: the settings that need a restart (listen addresses, data directory, backend,
//! memory and queue sizes, `rate_limit_max_keys`); a reload that changes one of them logs
//! that it was not applied.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::{Config, Settings};
use crate::http::tls::Tls;

/// The log filter's reload handle.
pub type LogHandle = reload::Handle<EnvFilter, Registry>;

/// What a reload needs.
pub struct Reloader {
    /// `--config`, and the environment and flags, as given at start.
    pub file: Option<PathBuf>,
    pub settings: Settings,
    /// The configuration in force.
    pub current: Config,
    pub tls: Option<Arc<Tls>>,
    pub auth: Arc<crate::auth::Auth>,
    pub log: Option<LogHandle>,
}

impl Reloader {
    /// Resolves the configuration again and applies what may change; `Err` leaves
    /// everything as it was.
    pub fn reload(&mut self) -> Result<Vec<&'static str>> {
        let next = Config::load(self.file.as_deref(), self.settings.clone())?;
        if next.tls_cert_file != self.current.tls_cert_file
            || next.tls_key_file != self.current.tls_key_file
        {
            tracing::warn!("tls_cert_file/tls_key_file changed: restart to switch files; the files in use are read again");
        }
        // Everything is checked before anything is applied.
        let log = log_filter(&next)?;
        if let Some(tls) = &self.tls {
            tls.reload()?;
        }
        self.auth.replace(&next).map_err(|e| anyhow!("auth: {e}"))?;
        let mut applied = vec!["auth"];
        if self.tls.is_some() {
            applied.push("tls");
        }
        if let Some(handle) = &self.log {
            handle.reload(log).map_err(|e| anyhow!("log level: {e}"))?;
            applied.push("log_level");
        }
        self.current = next;
        Ok(applied)
    }
}

/// The log filter: `RUST_LOG` when set (it wins over the file, at start and on reload),
/// else `log_level`, with fjall's per-flush chatter kept to warnings.
pub fn log_filter(config: &Config) -> Result<EnvFilter> {
    if let Ok(env) = std::env::var("RUST_LOG") {
        return EnvFilter::try_new(env).map_err(|e| anyhow!("RUST_LOG: {e}"));
    }
    EnvFilter::try_new(format!("{},fjall=warn,lsm_tree=warn", config.log_level))
        .map_err(|e| anyhow!("log_level {:?}: {e}", config.log_level))
}

/// Reloads on every SIGHUP until `shutdown`.
pub fn spawn(mut reloader: Reloader, shutdown: CancellationToken) -> Result<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hangup.recv() => {}
            }
            // Reading files and hashing are blocking work.
            let (back, result) = tokio::task::spawn_blocking(move || {
                let result = reloader.reload();
                (reloader, result)
            })
            .await
            .expect("BUG: the reload task panicked");
            reloader = back;
            match result {
                Ok(applied) => tracing::info!(?applied, "SIGHUP: configuration reloaded"),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "SIGHUP: reload refused; nothing changed")
                }
            }
        }
    }))
}

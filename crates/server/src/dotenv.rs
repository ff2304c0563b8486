//! `.env` files, for deployments where the environment is the habit (issue 22): before
//! the flags are read, `ENVIRONMENT=local|dev|test|staging|prod` picks `.env.<environment>`
//! in the working directory, falling back to `.env`. Its `KEY=value` lines set variables
//! that are not already set, so real environment variables win over the file, flags win
//! over both, and the TOML file is below all three (`config.rs`). `env.sample` at the
//! repository root lists every variable.
//!
//! Not here: parsing the files (`dotenvy`) or what the variables mean (`config.rs`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The values `ENVIRONMENT` may take.
pub const ENVIRONMENTS: &[&str] = &["local", "dev", "test", "staging", "prod"];

/// Loads the `.env` file for `ENVIRONMENT` (or the telemetry plan's `APP_ENV`, when
/// `ENVIRONMENT` is unset) from `dir`, if there is one; returns its path.
pub fn load(dir: &Path) -> Result<Option<PathBuf>> {
    let var = |name: &str| std::env::var(name).ok().filter(|e| !e.is_empty());
    let environment = var("ENVIRONMENT").or_else(|| var("APP_ENV"));
    let Some(path) = pick(dir, environment.as_deref())? else {
        return Ok(None);
    };
    dotenvy::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(path))
}

/// `.env.<environment>` when it exists, else `.env` when it exists.
fn pick(dir: &Path, environment: Option<&str>) -> Result<Option<PathBuf>> {
    if let Some(e) = environment {
        if !ENVIRONMENTS.contains(&e) {
            bail!(
                "ENVIRONMENT={e:?} is not one of {}",
                ENVIRONMENTS.join(", ")
            );
        }
        let specific = dir.join(format!(".env.{e}"));
        if specific.is_file() {
            return Ok(Some(specific));
        }
    }
    let plain = dir.join(".env");
    Ok(plain.is_file().then_some(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_picks_its_file_and_falls_back_to_dot_env() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(pick(d, Some("prod")).unwrap(), None);
        std::fs::write(d.join(".env"), "A=1\n").unwrap();
        assert_eq!(pick(d, Some("prod")).unwrap(), Some(d.join(".env")));
        assert_eq!(pick(d, None).unwrap(), Some(d.join(".env")));
        std::fs::write(d.join(".env.prod"), "A=2\n").unwrap();
        assert_eq!(pick(d, Some("prod")).unwrap(), Some(d.join(".env.prod")));
        assert_eq!(pick(d, Some("dev")).unwrap(), Some(d.join(".env")));
        let e = pick(d, Some("production")).unwrap_err().to_string();
        assert!(e.contains("local, dev, test, staging, prod"), "{e}");
    }

    /// `env.sample` lists every `KAIROSDB_*` variable the binary reads, and no other.
    #[test]
    fn env_sample_lists_every_variable() {
        use clap::CommandFactory;
        let sample = include_str!("../../../env.sample");
        let listed: std::collections::BTreeSet<&str> = sample
            .lines()
            .map(|l| l.trim_start_matches('#').trim())
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| k.starts_with("KAIROSDB_"))
            .collect();
        let known: std::collections::BTreeSet<String> = crate::Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        let known: std::collections::BTreeSet<&str> = known.iter().map(String::as_str).collect();
        assert_eq!(listed, known, "env.sample and the flags disagree");
    }
}

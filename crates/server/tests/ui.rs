//! Browser tests of the web UI (spec §10, issue 18): every
//! `crates/server/ui-tests/*.test.mjs` is one trial that starts the real `kairosdb` binary
//! on an empty temporary store (`127.0.0.1:0`, self-metrics off), runs
//! `node --test <file>` against it (headless Debian chromium driven by playwright-core,
//! see `ui-tests/lib.mjs` for the variables passed), and fails with node's output and the
//! server log when node fails. The server is killed when the trial ends.
//!
//! `scripts/ui-deps.sh` installs chromium and playwright-core and prints the directory to
//! export as `KAIROSDB_TEST_UI`; `scripts/test.sh` does both. Without it (or without node
//! or chromium) every trial is listed as ignored and the binary says why.
//! `UI_SCREENSHOTS=<dir>` makes the tests save the PNGs of docs/ui.md
//! (`scripts/ui-screenshots.sh`).

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

use harness::Server;

const ENV: &str = "KAIROSDB_TEST_UI";

/// What a trial needs besides the server.
#[derive(Clone)]
struct Tools {
    playwright_core: PathBuf,
    chromium: PathBuf,
}

fn main() {
    let mut args = Arguments::from_args();
    // One browser and one server at a time: the tests time drawing, and parallel
    // chromiums on a small CI machine would time each other instead.
    args.test_threads.get_or_insert(1);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui-tests");
    let files = test_files(&dir);
    let tools = tools();
    if let Err(reason) = &tools {
        println!(
            "ui: {} browser tests skipped: {reason}. Run scripts/test.sh, or \
             `KAIROSDB_TEST_UI=$(scripts/ui-deps.sh) cargo test -p kairosdb-server --test ui`.",
            files.len()
        );
    }
    let trials = files
        .into_iter()
        .map(|file| {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".test.mjs"))
                .unwrap_or("?")
                .to_owned();
            let tools = tools.clone().ok();
            let skip = tools.is_none();
            Trial::test(name, move || match tools {
                Some(tools) => run_file(&file, &tools),
                None => Ok(()),
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The `*.test.mjs` files of `dir`, sorted.
fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".test.mjs")))
        .collect();
    files.sort();
    files
}

/// playwright-core, chromium and node, or why the trials cannot run.
fn tools() -> Result<Tools, String> {
    let root = std::env::var_os(ENV).ok_or_else(|| format!("{ENV} is not set"))?;
    let playwright_core = Path::new(&root).join("node_modules/playwright-core");
    if !playwright_core.join("package.json").is_file() {
        return Err(format!(
            "{ENV}={} has no node_modules/playwright-core",
            Path::new(&root).display()
        ));
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Err(format!("no chromium at {}", chromium.display()));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not on PATH".into());
    }
    Ok(Tools {
        playwright_core,
        chromium,
    })
}

fn run_file(file: &Path, tools: &Tools) -> Result<(), Failed> {
    let server = Server::fresh(&[]);
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(file)
        .env("KAIROSDB_URL", server.url(""))
        .env("CHROMIUM", &tools.chromium)
        .env("PLAYWRIGHT_CORE", &tools.playwright_core)
        .output()
        .map_err(|e| format!("run node: {e}"))?;
    if output.status.success() {
        // The measurements the tests report (`console.log("# ...")`), e.g. drawing times.
        let stdout = String::from_utf8_lossy(&output.stdout);
        for line in stdout.lines().filter(|l| l.starts_with("# ")) {
            println!("{}: {}", file.display(), &line[2..]);
        }
        return Ok(());
    }
    Err(format!(
        "node --test {} failed ({}):\n{}{}\n--- server log ---\n{}",
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    )
    .into())
}

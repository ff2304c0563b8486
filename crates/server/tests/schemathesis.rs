//! schemathesis against the real `kairosdb` binary, from the server's own OpenAPI document
//! (`/api/v1/openapi.json`, issue 22): one trial that runs `scripts/schemathesis.sh run`
//! on the binary cargo built. The script starts the server on a throw-away store
//! (`127.0.0.1`, ephemeral port), seeds a few points, fuzzes every operation (no 5xx; every
//! status, content type and body as documented; 405 for undocumented methods) and stops the
//! server; the trial fails with its report when a check fails or the server dies.
//!
//! `KAIROSDB_TEST_SCHEMATHESIS` names the `st` executable: `scripts/schemathesis.sh
//! install` installs it (a venv in `.cache/`, a pinned version from PyPI) and prints its
//! path; `scripts/test.sh` does both. Without it the trial is listed as ignored and the
//! binary says why, so a skipped run never passes for a run.

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

const ENV: &str = "KAIROSDB_TEST_SCHEMATHESIS";
const BIN: &str = env!("CARGO_BIN_EXE_kairosdb");

fn main() {
    let args = Arguments::from_args();
    let st = std::env::var_os(ENV).filter(|p| Path::new(p).is_file());
    if st.is_none() {
        println!(
            "schemathesis: skipped: {ENV} does not name the st executable. Run scripts/test.sh, \
             or `{ENV}=$(scripts/schemathesis.sh install) cargo test -p kairosdb-server --test schemathesis`."
        );
    }
    let skip = st.is_none();
    let trial = Trial::test(
        "openapi_document_holds_under_schemathesis",
        move || match st {
            Some(st) => run(Path::new(&st)),
            None => Ok(()),
        },
    )
    .with_ignored_flag(skip);
    libtest_mimic::run(&args, vec![trial]).exit();
}

fn run(st: &Path) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg(root.join("scripts/schemathesis.sh"))
        .args(["run", BIN])
        .env("SCHEMATHESIS_ST", st)
        .output()
        .map_err(|e| format!("run scripts/schemathesis.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // The summary: operations, phases, test cases, time.
        let tail: Vec<&str> = stdout.lines().rev().take(16).collect();
        for line in tail.into_iter().rev() {
            println!("schemathesis: {line}");
        }
        return Ok(());
    }
    Err(format!(
        "scripts/schemathesis.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    )
    .into())
}

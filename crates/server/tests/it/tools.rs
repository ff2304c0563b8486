//! The migration tools as a user runs them: `kairosdb verify` against two real servers,
//! and `kairosdb migrate-config` on KairosDB-format default files (fixtures/) whose output
//! passes `--check-config` and starts a server.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

use crate::harness::{command, get, post, Server};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run kairosdb")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// --- verify ---------------------------------------------------------------------------

/// Three metrics with tags, numbers and strings, at fixed 2024 timestamps.
fn dataset() -> String {
    let base = 1_704_067_200_000_i64; // 2024-01-01
    let mut docs = Vec::new();
    for host in ["a", "b"] {
        let cpu: Vec<_> = (0..60)
            .map(|i| {
                json!([
                    base + i * 60_000,
                    (i as f64) * 0.5 + if host == "a" { 0.0 } else { 100.0 }
                ])
            })
            .collect();
        docs.push(
            json!({"name": "verify.cpu", "tags": {"host": host, "dc": "x"}, "datapoints": cpu}),
        );
        let count: Vec<_> = (0..30)
            .map(|i| json!([base + i * 120_000, i * 3]))
            .collect();
        docs.push(json!({"name": "verify.requests", "tags": {"host": host}, "datapoints": count}));
    }
    docs.push(json!({"name": "verify.state", "tags": {"host": "a"},
        "datapoints": [[base, "up"], [base + 60_000, "down"]]}));
    serde_json::to_string(&docs).unwrap()
}

async fn write(server: &Server, body: String) {
    let answer = post(server, "/api/v1/datapoints", body).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
}

fn verify(reference: &Server, candidate: &Server, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "verify".to_string(),
        "--reference".to_string(),
        reference.url(""),
        "--candidate".to_string(),
        candidate.url(""),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    let (stdout, stderr) = text(&out);
    (out.status.code().expect("exit code"), stdout, stderr)
}

#[tokio::test]
async fn verify_passes_on_identical_data_and_names_a_planted_difference() {
    let reference = Server::fresh(&[]);
    let candidate = Server::fresh(&[]);
    write(&reference, dataset()).await;
    write(&candidate, dataset()).await;

    let (code, stdout, stderr) = verify(&reference, &candidate, &["--sample", "20"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("summary: 20 of 20 queries match"),
        "{stdout}"
    );
    assert!(stdout.contains("metric names: OK (3 names)"), "{stdout}");
    // Every kind of generated query ran and matched (3 metrics, 20 queries: 7 rounds).
    for kind in [
        "raw points of",
        " where host=",
        "grouped by tag",
        "sum of",
        "avg of",
        "count of",
        "newest 100",
    ] {
        assert!(stdout.contains(kind), "no {kind:?} query in\n{stdout}");
    }

    // One extra point in the candidate.
    let planted = 1_704_067_200_000_i64 + 30 * 60_000 + 1;
    write(
        &candidate,
        json!([{"name": "verify.cpu", "tags": {"host": "b", "dc": "x"}, "datapoints": [[planted, 42.5]]}])
            .to_string(),
    )
    .await;
    let (code, stdout, stderr) = verify(&reference, &candidate, &["--sample", "20"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("MISMATCH"), "{stdout}");
    let diff_line = stdout
        .lines()
        .find(|l| l.contains(&format!("at {planted}")))
        .unwrap_or_else(|| panic!("no line names timestamp {planted}:\n{stdout}"));
    assert!(diff_line.contains("verify.cpu"), "{diff_line}");
    assert!(diff_line.contains("only in the candidate"), "{diff_line}");

    // The same through a query file, both shapes.
    let dir = tempfile::tempdir().unwrap();
    let raw_cpu =
        json!({"start_absolute": 0, "metrics": [{"name": "verify.cpu", "tags": {"host": ["b"]}}]});
    let requests = json!({"start_absolute": 0, "metrics": [{"name": "verify.requests",
        "aggregators": [{"name": "sum", "sampling": {"value": 10, "unit": "minutes"}}]}]});
    let array = dir.path().join("queries.json");
    std::fs::write(&array, json!([requests, raw_cpu]).to_string()).unwrap();
    let (code, stdout, stderr) = verify(
        &reference,
        &candidate,
        &["--queries", array.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("[1/2] OK   query 1 (verify.requests)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[2/2] DIFF query 2 (verify.cpu)"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("at {planted}")), "{stdout}");

    let lines = dir.path().join("queries.jsonl");
    std::fs::write(&lines, format!("{requests}\n\n{requests}\n")).unwrap();
    let (code, stdout, stderr) = verify(
        &reference,
        &candidate,
        &["--queries", lines.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("[2/2] OK   line 3 (verify.requests)"),
        "{stdout}"
    );

    // A metric only the candidate has makes the name lists differ.
    write(
        &candidate,
        json!([{"name": "verify.extra", "tags": {"host": "a"}, "datapoints": [[1, 1]]}])
            .to_string(),
    )
    .await;
    let (code, stdout, _) = verify(
        &reference,
        &candidate,
        &["--queries", lines.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("metric \"verify.extra\" is only in the candidate's names"),
        "{stdout}"
    );
}

#[tokio::test]
async fn verify_cannot_run_exits_2() {
    let server = Server::fresh(&[]);
    // Nothing listens on port 1.
    let out = run(&[
        "verify",
        "--reference",
        &server.url(""),
        "--candidate",
        "http://127.0.0.1:1",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("cannot reach the candidate"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"metrics\": []}\nnot json\n").unwrap();
    let url = server.url("");
    let out = run(&[
        "verify",
        "--reference",
        &url,
        "--candidate",
        &url,
        "--queries",
        bad.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("invalid query file") && stderr.contains("line 2"),
        "{stderr}"
    );

    // Server flags do not mix with a subcommand.
    let out = run(&[
        "--data-dir",
        "/tmp/x",
        "verify",
        "--reference",
        &url,
        "--candidate",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

// --- migrate-config -------------------------------------------------------------------

/// Migrates `fixture` into a TOML file in `dir`; returns its path and stderr.
fn migrate(fixture_name: &str, dir: &Path) -> (PathBuf, String) {
    let output = dir.join(format!("{fixture_name}.toml"));
    let out = run(&[
        "migrate-config",
        fixture(fixture_name).to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.is_empty(),
        "--output writes nothing to stdout: {stdout}"
    );
    (output, stderr)
}

fn check_config(path: &Path) -> String {
    let out = run(&["--check-config", "--config", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "--check-config failed: {stderr}");
    stdout
}

#[test]
fn migrate_config_of_the_default_properties_file_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, stderr) = migrate("kairosdb-1.2.properties", dir.path());
    let resolved = check_config(&toml);
    assert!(
        resolved.contains("bind_address = \"0.0.0.0:8080\""),
        "{resolved}"
    );
    assert!(resolved.contains("datastore = \"embedded\""), "{resolved}");
    assert!(
        resolved.contains("cassandra_contact_points = \"localhost\""),
        "{resolved}"
    );
    // One line per unmapped key, with its reason; commented-out keys are not keys.
    assert!(
        stderr.contains("not mapped: kairosdb.jetty.static_web_root (no equivalent): "),
        "{stderr}"
    );
    assert!(
        stderr.contains("not mapped: kairosdb.queue_processor.batch_size (not needed): "),
        "{stderr}"
    );
    assert!(!stderr.contains("jetty.ssl"), "{stderr}");
    assert!(!stderr.contains("unknown key"), "{stderr}");
    // The `\` continuation joined the replication map.
    let migrated = std::fs::read_to_string(&toml).unwrap();
    assert!(
        migrated.contains(
            "cassandra_replication = \"{'class': 'SimpleStrategy','replication_factor' : 1}\""
        ),
        "{migrated}"
    );
}

#[test]
fn migrate_config_of_the_default_hocon_file_checks_and_prints_to_stdout() {
    let out = run(&[
        "migrate-config",
        fixture("kairosdb-1.3.conf").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("http_idle_timeout_secs = 120"), "{stdout}");
    assert!(stdout.contains("query_concurrency = 5"), "{stdout}");
    assert!(
        stderr.contains("kairosdb.datastore.cassandra.read_clusters_not (no equivalent)"),
        "{stderr}"
    );
    assert!(!stderr.contains("unknown key"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("out.toml");
    std::fs::write(&toml, &stdout).unwrap();
    check_config(&toml);
}

#[test]
fn migrate_config_refuses_broken_input() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.conf");
    std::fs::write(&broken, "kairosdb {\n jetty.port: 8080\n").unwrap();
    let out = run(&["migrate-config", broken.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not valid HOCON"), "{stderr}");

    let out = run(&["migrate-config", "/nonexistent/kairosdb.properties"]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn a_migrated_default_configuration_starts_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, _) = migrate("kairosdb-1.3.conf", dir.path());
    // The file's listeners (0.0.0.0:8080/4242) are overridden by the harness's port-0
    // addresses through the environment, as an operator would on a busy machine.
    let server = Server::start(
        &dir.path().join("data"),
        &[("KAIROSDB_CONFIG", toml.to_str().unwrap())],
    );
    let answer = get(&server, "/api/v1/version").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("KairosDB"), "{}", answer.text());
}

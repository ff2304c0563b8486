//! `kairosdb --check-config`: precedence TOML < environment < flags, and clear failures.

use std::path::Path;
use std::process::Output;

use crate::harness::command;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command();
    cmd.arg("--check-config").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run kairosdb --check-config")
}

fn value<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} missing from\n{output}"))
}

#[test]
fn toml_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kairosdb.toml");
    std::fs::write(
        &file,
        "bind_address = \"127.0.0.1:1111\"\nmax_memory_mb = 5\nmax_batch_size = 7\nwal_sync = \"none\"\n",
    )
    .unwrap();
    let out = run(
        &["--config", file.to_str().unwrap(), "--max-batch-size", "9"],
        &[
            ("KAIROSDB_MAX_MEMORY_MB", "6"),
            ("KAIROSDB_MAX_BATCH_SIZE", "8"),
            ("KAIROSDB_TELNET_BIND_ADDRESS", "127.0.0.1:2222"),
            ("KAIROSDB_ENABLE_PROMETHEUS", "false"),
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value(&stdout, "bind_address"), "\"127.0.0.1:1111\""); // file
    assert_eq!(value(&stdout, "wal_sync"), "\"none\""); // file
    assert_eq!(value(&stdout, "max_memory_mb"), "6"); // env over file
    assert_eq!(value(&stdout, "telnet_bind_address"), "\"127.0.0.1:2222\""); // env
    assert_eq!(value(&stdout, "enable_prometheus"), "false"); // env
    assert_eq!(value(&stdout, "max_batch_size"), "9"); // flag over env and file
    assert_eq!(value(&stdout, "data_dir"), "\"./data\""); // default
}

#[test]
fn every_documented_environment_variable_is_read() {
    let out = run(
        &[],
        &[
            ("KAIROSDB_BIND_ADDRESS", "127.0.0.1:1"),
            ("KAIROSDB_TELNET_BIND_ADDRESS", "127.0.0.1:2"),
            ("KAIROSDB_DATA_DIR", "/tmp/somewhere"),
            ("KAIROSDB_DATASTORE", "embedded"),
            ("KAIROSDB_MAX_BATCH_SIZE", "3"),
            ("KAIROSDB_WORKER_THREADS", "4"),
            ("KAIROSDB_ENABLE_VALIDATION", "false"),
            ("KAIROSDB_MAX_MEMORY_MB", "5"),
            ("KAIROSDB_ENABLE_PROMETHEUS", "false"),
            ("KAIROSDB_WAL_SYNC", "always"),
            ("KAIROSDB_MAX_REQUEST_BYTES", "6"),
            ("KAIROSDB_HTTP_IDLE_TIMEOUT_SECS", "7"),
            ("KAIROSDB_QUERY_CONCURRENCY", "8"),
            ("KAIROSDB_QUERY_MAX_POINTS", "9"),
            ("KAIROSDB_QUERY_TIME_LIMIT_SECS", "10"),
            ("KAIROSDB_QUERY_CACHE_MB", "11"),
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (key, want) in [
        ("bind_address", "\"127.0.0.1:1\""),
        ("telnet_bind_address", "\"127.0.0.1:2\""),
        ("data_dir", "\"/tmp/somewhere\""),
        ("datastore", "\"embedded\""),
        ("max_batch_size", "3"),
        ("worker_threads", "4"),
        ("enable_validation", "false"),
        ("max_memory_mb", "5"),
        ("enable_prometheus", "false"),
        ("wal_sync", "\"always\""),
        ("max_request_bytes", "6"),
        ("http_idle_timeout_secs", "7"),
        ("query_concurrency", "8"),
        ("query_max_points", "9"),
        ("query_time_limit_secs", "10"),
        ("query_cache_mb", "11"),
    ] {
        assert_eq!(value(&stdout, key), want, "{key}");
    }
}

#[test]
fn invalid_configurations_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "bind_adress = \"127.0.0.1:1\"\n").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![],
            vec![("KAIROSDB_DATASTORE", "mysql")],
            "unknown datastore",
        ),
        (
            vec![],
            vec![("KAIROSDB_SERVER_TYPE", "READ")],
            "server_type",
        ),
        (
            vec![],
            vec![
                ("KAIROSDB_DATASTORE", "cassandra"),
                ("KAIROSDB_CASSANDRA_READ_CONSISTENCY", "SOME"),
            ],
            "cassandra_read_consistency",
        ),
        (vec![], vec![("KAIROSDB_WAL_SYNC", "sometimes")], "wal_sync"),
        (vec![], vec![("KAIROSDB_MAX_BATCH_SIZE", "lots")], "lots"),
        (
            vec![],
            vec![("KAIROSDB_BIND_ADDRESS", "not an address")],
            "bind_address",
        ),
        (
            vec!["--config", unknown.to_str().unwrap()],
            vec![],
            "bind_adress",
        ),
        (
            vec!["--config", "/no/such/file.toml"],
            vec![],
            "/no/such/file.toml",
        ),
    ];
    for (args, env, needle) in cases {
        let out = run(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} should fail");
        assert!(stderr.contains(needle), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("Stack backtrace"), "{stderr}");
    }
}

#[test]
fn example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
    let out = run(&["--config", example.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `.env.<ENVIRONMENT>` (else `.env`) in the working directory sets what the environment
/// does not: TOML < `.env` < environment < flags.
#[test]
fn dot_env_files_sit_between_the_toml_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "KAIROSDB_MAX_MEMORY_MB=11\nKAIROSDB_MAX_BATCH_SIZE=12\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env.staging"),
        "KAIROSDB_MAX_MEMORY_MB=21\nKAIROSDB_MAX_BATCH_SIZE=22\n",
    )
    .unwrap();
    let run_in = |environment: Option<&str>, env: &[(&str, &str)]| {
        let mut cmd = command();
        cmd.current_dir(dir.path()).arg("--check-config");
        cmd.env_remove("ENVIRONMENT");
        if let Some(e) = environment {
            cmd.env("ENVIRONMENT", e);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let plain = String::from_utf8(run_in(None, &[]).stdout).unwrap();
    assert_eq!(value(&plain, "max_memory_mb"), "11");
    let staging = run_in(Some("staging"), &[("KAIROSDB_MAX_BATCH_SIZE", "33")]);
    let staging = String::from_utf8(staging.stdout).unwrap();
    assert_eq!(value(&staging, "max_memory_mb"), "21");
    assert_eq!(
        value(&staging, "max_batch_size"),
        "33",
        "the environment wins"
    );
    let dev = String::from_utf8(run_in(Some("dev"), &[]).stdout).unwrap();
    assert_eq!(value(&dev, "max_memory_mb"), "11", "no .env.dev: .env");
    let bad = run_in(Some("production"), &[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("ENVIRONMENT=\"production\""), "{err}");
    // The telemetry plan's APP_ENV picks the file when ENVIRONMENT is unset.
    let app_env = String::from_utf8(run_in(None, &[("APP_ENV", "staging")]).stdout).unwrap();
    assert_eq!(value(&app_env, "max_memory_mb"), "21");
    let both = run_in(Some("dev"), &[("APP_ENV", "staging")]);
    let both = String::from_utf8(both.stdout).unwrap();
    assert_eq!(
        value(&both, "max_memory_mb"),
        "11",
        "ENVIRONMENT wins over APP_ENV"
    );
}

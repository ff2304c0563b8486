//! `kairosdb export` and `kairosdb import` as a user runs them: data exported from one
//! server (over HTTP or from its stopped data directory) and imported into another (over
//! HTTP or into a data directory) answers every query the same; gzip, stdin and stdout;
//! a stopped or killed import resumed from its state file ends with exact counts; a file
//! in Java KairosDB's own export format imports unchanged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{command, get, post, Server};

/// 2024-01-01T00:00:00Z.
const BASE: i64 = 1_704_067_200_000;
const HOUR: i64 = 3_600_000;

fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run kairosdb")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `key=value` fields of the `summary:` line on stderr.
fn summary(out: &Output) -> BTreeMap<String, String> {
    let text = stderr(out);
    let line = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn count(out: &Output, key: &str) -> u64 {
    summary(out)
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in the summary:\n{}", stderr(out)))
        .parse()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        stderr(out)
    );
}

/// Longs, doubles that do not survive careless formatting, strings, several tags and
/// several metrics, over 60 days (so exports span several 3-week chunks).
fn dataset() -> Vec<Value> {
    let mut docs = Vec::new();
    for host in ["a", "b", "c"] {
        let cpu: Vec<Value> = (0..24 * 60)
            .map(|i| {
                json!([
                    BASE + i * HOUR,
                    (i as f64) * 0.1 + if host == "a" { 0.0 } else { 1e300 }
                ])
            })
            .collect();
        docs.push(json!({"name": "xfer.cpu", "tags": {"host": host, "dc": "x", "rack": "r1"}, "datapoints": cpu}));
        let requests: Vec<Value> = (0..24 * 60)
            .map(|i| json!([BASE + i * HOUR, i * 1_000_003 - 7]))
            .collect();
        docs.push(
            json!({"name": "xfer.cpu.requests", "tags": {"host": host}, "datapoints": requests}),
        );
    }
    // Whole doubles, typed explicitly, and awkward values.
    docs.push(
        json!({"name": "xfer.mem", "type": "double", "tags": {"host": "a"},
        "datapoints": [[BASE, 5.0], [BASE + 1, 1e7], [BASE + 2, -0.5], [BASE + 3, 4.9e-324],
                       [BASE + 4, 1.7976931348623157e308], [BASE + 5, 123456.789]]}),
    );
    docs.push(json!({"name": "xfer.state", "tags": {"host": "a", "note": "quote \" and </tag> ü"},
        "datapoints": [[BASE, "up"], [BASE + HOUR, "down"], [BASE + 2 * HOUR, ""]], "type": "string"}));
    docs.push(json!({"name": "other.metric", "tags": {"host": "b"}, "datapoints": [[-5, 1], [0, 2], [BASE, 3]]}));
    docs
}

async fn load(server: &Server, docs: &[Value]) {
    let answer = post(
        server,
        "/api/v1/datapoints",
        Value::Array(docs.to_vec()).to_string(),
    )
    .await;
    assert_eq!(answer.status, 204, "{}", answer.text());
}

async fn metric_names(server: &Server) -> Vec<String> {
    let v = get(server, "/api/v1/metricnames").await.json();
    let mut names: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The answers compared between servers: raw reads grouped by every tag (values and tag
/// maps exactly, as text), a filtered read, aggregations, a newest-10 read and the tag listings.
async fn answers(server: &Server, metrics: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in metrics {
        let tags = get_tags(server, m).await;
        let names: Vec<&String> = tags.keys().collect();
        let queries = [
            json!({"start_absolute": i64::MIN, "metrics": [{"name": m, "group_by": [{"name": "tag", "tags": names}]}]}),
            json!({"start_absolute": 0, "metrics": [{"name": m, "tags": {"host": ["a"]}}]}),
            json!({"start_absolute": 0, "metrics": [{"name": m, "aggregators": [{"name": "sum", "sampling": {"value": 1, "unit": "days"}}]}]}),
            json!({"start_absolute": 0, "metrics": [{"name": m, "aggregators": [{"name": "count", "sampling": {"value": 1, "unit": "weeks"}}]}]}),
            json!({"start_absolute": 0, "metrics": [{"name": m, "limit": 10, "order": "desc"}]}),
        ];
        for q in queries {
            let answer = post(server, "/api/v1/datapoints/query", q.to_string()).await;
            // The raw text: numbers exactly as printed (result groups come in a
            // deterministic order, by group key).
            out.push(format!("{}: {} {}", q, answer.status, answer.text()));
        }
        out.push(format!("{m} tags: {tags:?}"));
    }
    out
}

async fn get_tags(server: &Server, metric: &str) -> BTreeMap<String, Value> {
    let q = json!({"start_absolute": i64::MIN, "metrics": [{"name": metric}]});
    let v = post(server, "/api/v1/datapoints/query/tags", q.to_string())
        .await
        .json();
    v["queries"][0]["results"][0]["tags"]
        .as_object()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn total_points(docs: &[Value]) -> u64 {
    docs.iter()
        .map(|d| d["datapoints"].as_array().unwrap().len() as u64)
        .sum()
}

#[tokio::test]
async fn export_from_a_server_imports_into_a_fresh_server_with_identical_answers() {
    let source = Server::fresh(&[]);
    let docs = dataset();
    load(&source, &docs).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.json");
    let file = file.to_str().unwrap();

    let out = run(&["export", "--from-url", &source.url(""), "-o", file]);
    ok(&out);
    assert_eq!(count(&out, "metrics"), 5);
    assert_eq!(count(&out, "points"), total_points(&docs));
    assert_eq!(count(&out, "series"), 9);
    assert!(!Path::new(&format!("{file}.export-state")).exists());
    let text = std::fs::read_to_string(file).unwrap();
    // One line per series per 3-week chunk: 60 days of hourly points are 4 chunks
    // (2023-12-21.., 01-11.., 02-01.., 02-22..) for each of the 6 long series.
    assert_eq!(text.lines().count() as u64, count(&out, "lines"));
    assert!(text.lines().all(|l| l.starts_with("{\"name\":\"")));
    assert!(
        text.contains("[1704067200000,5,\"double\"]"),
        "a whole double keeps its type"
    );

    let target = Server::fresh(&[]);
    let out = run(&["import", "-f", file, "--to-url", &target.url("")]);
    ok(&out);
    assert_eq!(count(&out, "points_written"), total_points(&docs));
    assert_eq!(count(&out, "bad_lines"), 0);
    assert!(!Path::new(&format!("{file}.import-state")).exists());

    let names = metric_names(&source).await;
    assert_eq!(metric_names(&target).await, names);
    let want = answers(&source, &names).await;
    assert_eq!(answers(&target, &names).await, want);
    // The awkward doubles really are there, bit for bit.
    assert!(want.iter().any(|a| a.contains("4.9E-324")), "{want:?}");
    assert!(want.iter().any(|a| a.contains("1.7976931348623157E308")));

    // A prefix and a tag filter select a subset.
    let subset = dir.path().join("subset.json.gz");
    let subset = subset.to_str().unwrap();
    let out = run(&[
        "export",
        "--from-url",
        &source.url(""),
        "--prefix",
        "xfer.cpu",
        "--tag",
        "host=a",
        "--tag",
        "host=b",
        "--start",
        "2024-01-15T00:00:00Z",
        "-o",
        subset,
    ]);
    ok(&out);
    assert_eq!(count(&out, "metrics"), 2);
    assert_eq!(count(&out, "series"), 4);
    let bytes = std::fs::read(subset).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a .gz output is gzip");
    let third = Server::fresh(&[]);
    ok(&run(&["import", "-f", subset, "--to-url", &third.url("")]));
    assert_eq!(
        metric_names(&third).await,
        vec!["xfer.cpu".to_string(), "xfer.cpu.requests".to_string()]
    );
    let hosts = get_tags(&third, "xfer.cpu").await;
    assert_eq!(hosts["host"], json!(["a", "b"]));
    let q = json!({"start_absolute": 0, "metrics": [{"name": "xfer.cpu", "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "days"}}]}]});
    let v = post(&third, "/api/v1/datapoints/query", q.to_string())
        .await
        .json();
    // Two hosts, from 2024-01-15 (day 14) to the end of day 59: 46 days × 24 points.
    assert_eq!(
        v["queries"][0]["results"][0]["values"][0][1],
        json!(2 * 46 * 24)
    );
}

#[tokio::test]
async fn gzip_through_stdout_and_stdin() {
    let source = Server::fresh(&[]);
    let docs = dataset();
    load(&source, &docs).await;
    let target = Server::fresh(&[]);

    let mut export = command()
        .args([
            "export",
            "--from-url",
            &source.url(""),
            "--gzip",
            "--chunk",
            "1d",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let import = command()
        .args([
            "import",
            "--to-url",
            &target.url(""),
            "--batch-points",
            "5000",
        ])
        .stdin(Stdio::from(export.stdout.take().unwrap()))
        .output()
        .unwrap();
    ok(&import);
    let exported = export.wait_with_output().unwrap();
    ok(&exported);
    assert_eq!(count(&exported, "points"), total_points(&docs));
    assert_eq!(count(&import, "points_written"), total_points(&docs));
    // One-day chunks: each hourly series is 60 lines.
    assert!(count(&import, "lines") >= 6 * 60, "{}", stderr(&import));

    let names = metric_names(&source).await;
    assert_eq!(
        answers(&target, &names).await,
        answers(&source, &names).await
    );
}

#[tokio::test]
async fn a_stopped_server_exports_from_its_data_dir_and_imports_into_another_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let source_dir = dir.path().join("source");
    let docs = dataset();
    let names;
    let want;
    {
        let source = Server::start(&source_dir, &[]);
        load(&source, &docs).await;
        names = metric_names(&source).await;
        want = answers(&source, &names).await;
        // The engine's directory is locked while the server runs.
        let out = run(&["export", "--data-dir", source_dir.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("--from-url"), "{}", stderr(&out));
        source.terminate(Duration::from_secs(30));
    }
    let file = dir.path().join("dump.json");
    let out = run(&[
        "export",
        "--data-dir",
        source_dir.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    ok(&out);
    assert_eq!(count(&out, "points"), total_points(&docs));

    let target_dir = dir.path().join("target");
    let out = run(&[
        "import",
        "-f",
        file.to_str().unwrap(),
        "--data-dir",
        target_dir.to_str().unwrap(),
    ]);
    ok(&out);
    assert_eq!(count(&out, "points_written"), total_points(&docs));
    let target = Server::start(&target_dir, &[]);
    assert_eq!(metric_names(&target).await, names);
    assert_eq!(answers(&target, &names).await, want);
    target.terminate(Duration::from_secs(30));

    // Exported again from the imported directory: the same file, byte for byte (types
    // included: a data directory export is exact).
    let again = run(&["export", "--data-dir", target_dir.to_str().unwrap()]);
    ok(&again);
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
}

/// Lines 1-5 and 7-10 are good (3 points each), line 6 has no tags, line 8 is not JSON.
fn file_with_bad_lines(path: &Path) -> u64 {
    let mut text = String::new();
    let mut good = 0;
    for i in 1..=10 {
        let line = match i {
            6 => format!("{{\"name\":\"r.m\",\"tags\":{{}},\"datapoints\":[[{BASE},1]]}}"),
            8 => "{\"name\":\"r.m\",\"tags\":{\"h\":\"a\"},\"datapoints\":[[1,".to_string(),
            _ => {
                good += 3;
                let t = BASE + i * 10;
                format!("{{\"name\":\"r.m\",\"tags\":{{\"line\":\"{i}\"}},\"datapoints\":[[{t},{i}],[{},{i}.5,\"double\"],[{},\"s{i}\",\"string\"]]}}", t + 1, t + 2)
            }
        };
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    good
}

#[tokio::test]
async fn a_stopped_import_resumes_from_its_state_file_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let good = file_with_bad_lines(&file);
    let file = file.to_str().unwrap();
    let state = format!("{file}.import-state");
    let target = Server::fresh(&[]);

    // --max-errors 0: stops before line 6, with lines 1-5 written and checkpointed.
    let out = run(&[
        "import",
        "-f",
        file,
        "--to-url",
        &target.url(""),
        "--max-errors",
        "0",
        "--batch-points",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 6: metric[0](name=r.m).tags count must be greater than or equal to 1."),
        "{err}"
    );
    assert!(err.contains("stopped at line 6"), "{err}");
    assert_eq!(count(&out, "points_written"), 15);
    assert!(Path::new(&state).exists());
    assert_eq!(crate::harness::read_back(&target, "r.m").await.len(), 15);

    // Still 0 allowed: stops at the same line, writing nothing twice.
    let out = run(&[
        "import",
        "-f",
        file,
        "--to-url",
        &target.url(""),
        "--max-errors",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(count(&out, "points_written"), 15);

    // Allowing 1 gets past line 6 and stops at line 8.
    let out = run(&[
        "import",
        "-f",
        file,
        "--to-url",
        &target.url(""),
        "--max-errors",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 8: "), "{}", stderr(&out));
    assert_eq!(count(&out, "bad_lines"), 1);
    assert_eq!(count(&out, "points_written"), 18);

    // No limit: done, with the counts of one uninterrupted run, and the state is gone.
    let out = run(&["import", "-f", file, "--to-url", &target.url("")]);
    ok(&out);
    assert!(stderr(&out).contains("line 8: "));
    assert!(
        !stderr(&out).contains("line 6: "),
        "line 6 was counted before"
    );
    assert_eq!(count(&out, "lines"), 10);
    assert_eq!(count(&out, "bad_lines"), 2);
    assert_eq!(count(&out, "points_written"), good);
    assert_eq!(
        count(&out, "points_rejected"),
        1,
        "line 6's point; line 8 is not JSON"
    );
    assert!(!Path::new(&state).exists());
    assert_eq!(
        crate::harness::read_back(&target, "r.m").await.len() as u64,
        good
    );
}

#[tokio::test]
async fn a_killed_import_resumes_without_losing_or_repeating_points() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    let lines = 4000u64;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..lines as i64 {
            let points: Vec<String> = (0..25)
                .map(|j| format!("[{},{}]", BASE + i * 100 + j, i * 25 + j))
                .collect();
            writeln!(
                f,
                "{{\"name\":\"k.m\",\"tags\":{{\"s\":\"{}\"}},\"datapoints\":[{}]}}",
                i % 7,
                points.join(",")
            )
            .unwrap();
        }
    }
    let file = file.to_str().unwrap();
    let state = format!("{file}.import-state");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // Small batches, each synced and checkpointed: slow enough to be killed midway.
    let mut child = command()
        .args([
            "import",
            "-f",
            file,
            "--data-dir",
            data,
            "--batch-points",
            "100",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&state).exists() {
        assert!(Instant::now() < deadline, "no state file appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done_before = saved["line"].as_u64().unwrap();
    assert!(
        done_before > 0 && done_before < lines,
        "killed at line {done_before}"
    );

    let out = run(&[
        "import",
        "-f",
        file,
        "--data-dir",
        data,
        "--batch-points",
        "5000",
    ]);
    ok(&out);
    assert!(
        stderr(&out).contains(&format!("resuming after line {done_before}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&out, "lines"), lines);
    assert_eq!(count(&out, "points_written"), lines * 25);
    assert!(!Path::new(&state).exists());

    let server = Server::start(Path::new(data), &[]);
    let q = json!({"start_absolute": 0, "metrics": [{"name": "k.m", "aggregators": [{"name": "count", "sampling": {"value": 1000, "unit": "days"}}]}]});
    let v = post(&server, "/api/v1/datapoints/query", q.to_string())
        .await
        .json();
    assert_eq!(
        v["queries"][0]["results"][0]["values"][0][1],
        json!(lines * 25)
    );
}

/// What Java KairosDB's `kairosdb.sh export` writes (Main.ExportQueryCallback, org.json):
/// tags in hash order, whole doubles without `.0`, the api type after every value.
const JAVA_EXPORT: &str = r#"{"name":"java.cpu","tags":{"host":"server1","dc":"east"},"datapoints":[[1704067200000,12,"long"],[1704067260000,-3,"long"]]}
{"name":"java.cpu","tags":{"host":"server2","dc":"east"},"datapoints":[[1704067200000,1.5,"double"],[1704067260000,2,"double"],[1704067320000,1.0E-5,"double"]]}
{"name":"java.status","tags":{"host":"server1"},"datapoints":[[1704067200000,"ok","string"],[1704067260000,"12","string"]]}
"#;

#[tokio::test]
async fn a_file_in_java_kairosdbs_export_format_imports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("java-export.txt");
    std::fs::write(&file, JAVA_EXPORT).unwrap();
    let data = dir.path().join("data");
    let out = run(&[
        "import",
        "-f",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    ok(&out);
    assert_eq!(count(&out, "lines"), 3);
    assert_eq!(count(&out, "points_written"), 7);
    assert_eq!(count(&out, "bad_lines"), 0);
    // Exported again: the same points with the same types (the whole double 2 stays a
    // double, the string "12" a string), tags sorted.
    let again = run(&["export", "--data-dir", data.to_str().unwrap()]);
    ok(&again);
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        r#"{"name":"java.cpu","tags":{"dc":"east","host":"server1"},"datapoints":[[1704067200000,12,"long"],[1704067260000,-3,"long"]]}
{"name":"java.cpu","tags":{"dc":"east","host":"server2"},"datapoints":[[1704067200000,1.5,"double"],[1704067260000,2,"double"],[1704067320000,1.0E-5,"double"]]}
{"name":"java.status","tags":{"host":"server1"},"datapoints":[[1704067200000,"ok","string"],[1704067260000,"12","string"]]}
"#
    );
    // And a server on that directory answers as KairosDB would for those points.
    let server = Server::start(&data, &[]);
    let q = json!({"start_absolute": 0, "metrics": [{"name": "java.cpu", "tags": {"host": ["server2"]}}]});
    let v = post(&server, "/api/v1/datapoints/query", q.to_string())
        .await
        .json();
    assert_eq!(
        v["queries"][0]["results"][0]["values"],
        json!([
            [1704067200000i64, 1.5],
            [1704067260000i64, 2],
            [1704067320000i64, 1.0e-5]
        ])
    );
}

#[tokio::test]
async fn import_and_export_authenticate_to_a_server_with_auth_on() {
    let dir = tempfile::tempdir().unwrap();
    let token = "transfer-test-token";
    let mut child = command()
        .args(["hash-secret", "--token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let hash = child.wait_with_output().unwrap();
    ok(&hash);
    let hash = String::from_utf8(hash.stdout).unwrap();
    let config = dir.path().join("auth.toml");
    std::fs::write(
        &config,
        format!(
            "auth_enabled = true\n[[auth.tokens]]\nname = \"t\"\ntoken_hash = \"{}\"\nscopes = [\"read\", \"write\"]\n",
            hash.trim()
        ),
    )
    .unwrap();
    let server = Server::fresh(&[("KAIROSDB_CONFIG", config.to_str().unwrap())]);
    let file = dir.path().join("in.json");
    std::fs::write(&file, JAVA_EXPORT).unwrap();
    let file = file.to_str().unwrap();

    let out = run(&[
        "import",
        "-f",
        file,
        "--to-url",
        &server.url(""),
        "--retries",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("answered 401"), "{}", stderr(&out));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let bearer = format!("@{}", token_file.display());
    ok(&run(&[
        "import",
        "-f",
        file,
        "--to-url",
        &server.url(""),
        "--bearer",
        &bearer,
    ]));
    let out = run(&["export", "--from-url", &server.url(""), "--bearer", token]);
    ok(&out);
    assert_eq!(count(&out, "points"), 7);
}

#[tokio::test]
async fn a_killed_gzip_export_resumes_and_the_file_imports_whole() {
    let source = Server::fresh(&[]);
    let metrics = 300u64;
    let docs: Vec<Value> = (0..metrics as i64)
        .map(|i| {
            json!({"name": format!("e.m{i:03}"), "tags": {"h": "a"},
                "datapoints": [[BASE + i, i], [BASE + i + 30 * 24 * HOUR, i as f64 + 0.25]]})
        })
        .collect();
    load(&source, &docs).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.json.gz");
    let file = file.to_str().unwrap();
    let state = format!("{file}.export-state");

    let mut child = command()
        .args(["export", "--from-url", &source.url(""), "-o", file])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&state).exists() {
        assert!(Instant::now() < deadline, "no state file appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done_before = saved["done"].as_array().unwrap().len();
    assert!(
        done_before > 0 && done_before < metrics as usize,
        "killed after {done_before}"
    );

    let out = run(&["export", "--from-url", &source.url(""), "-o", file]);
    ok(&out);
    assert!(stderr(&out).contains("resuming after"), "{}", stderr(&out));
    assert_eq!(count(&out, "metrics"), metrics);
    // A long and a double series per metric (the type is part of a series, spec §2.4).
    assert_eq!(count(&out, "series"), 2 * metrics);
    assert_eq!(count(&out, "points"), 2 * metrics);
    assert!(!Path::new(&state).exists());

    let target = Server::fresh(&[]);
    let out = run(&["import", "-f", file, "--to-url", &target.url("")]);
    ok(&out);
    // Every line once: a line written after the last checkpoint was cut off on resume.
    assert_eq!(count(&out, "lines"), 2 * metrics);
    assert_eq!(count(&out, "points_written"), 2 * metrics);
    let names = metric_names(&source).await;
    assert_eq!(metric_names(&target).await, names);
    assert_eq!(
        answers(&target, &names[..5]).await,
        answers(&source, &names[..5]).await
    );
}

//! README's "Quick start" stays true: every fenced `sh` block of that section is run, in
//! order, against a fresh server (`localhost:8080` and `localhost/4242` rewritten to its
//! ports). A `# ` line under a command is that command's expected output (compared as
//! JSON). Finally the point written over telnet must come back from the same query.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Server;

const SECTION: &str = "\n## Quick start\n";

/// The fenced `sh` blocks of README's Quick start section.
fn quickstart_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let start = readme
        .find(SECTION)
        .expect("README.md has a Quick start section")
        + SECTION.len();
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b[..b.find("```").expect("closed fence")].to_owned())
        .collect()
}

/// Runs one command line with `sh -c`; its stdout, or a panic naming the command.
fn run(command: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{command}\nfailed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn the_readme_quick_start_writes_over_http_and_telnet_and_reads_back() {
    let server = Server::fresh(&[]);
    let http = server.http.to_string();
    let telnet = format!("127.0.0.1/{}", server.telnet.port());
    let blocks = quickstart_blocks();
    assert_eq!(blocks.len(), 3, "write, query, telnet: {blocks:?}");

    let mut query = None;
    for block in &blocks {
        let mut last_output: Option<String> = None;
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(expected) = line.strip_prefix("# ") {
                let got = last_output
                    .take()
                    .expect("an expected output follows a command");
                let got: serde_json::Value =
                    serde_json::from_str(&got).unwrap_or_else(|e| panic!("not JSON ({e}): {got}"));
                let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
                assert_eq!(got, expected, "README's expected output is stale");
                continue;
            }
            let command = line
                .replace("localhost:8080", &http)
                .replace("localhost/4242", &telnet);
            if command.contains("/api/v1/datapoints/query") {
                query = Some(command.clone());
            }
            last_output = Some(run(&command));
        }
    }

    // The telnet point is readable once the server has read the line.
    let query = query.expect("the quick start has a query");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(&query);
        if out.contains("[1700000000000,21.5],[1700000060000,22]") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the telnet point never came back: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! The packaging and deployment files, checked where no Docker engine or Kubernetes runs:
//! the `Dockerfile` (parsed: stages, non-root `USER`, `VOLUME /data`, `EXPOSE`, and its
//! `HEALTHCHECK` command run against a real server), `deploy/compose/docker-compose.yml`
//! (parsed: the services of each profile, ports, health checks, dependencies, volumes),
//! the Helm chart (`helm lint`, and `helm template` rendered and inspected), the Prometheus
//! rules (`promtool check rules`, `promtool test rules`), the Grafana dashboard, the
//! `Tiltfile` and `deploy/tilt/`, and the Java KairosDB image of the migration setup.
//!
//! "Real" is asked of the server binary itself, never of a list kept here: every
//! `KAIROSDB_*` variable the files set must be one `kairosdb --help` names, and the
//! resulting configuration must pass `kairosdb --check-config` with the values the file
//! means; every metric a rule or panel names must be on `/metrics` of the server started
//! in embedded and in Cassandra mode (Cassandra mode starts without a node: its store
//! reports not ready and still exports its figures).
//!
//! `helm`, `promtool` and `tiltfile-check` (deploy/tilt/check: the Tiltfile run as Starlark
//! with Tilt's functions recorded) come from `scripts/deploy-tools.sh` (`KAIROSDB_TEST_HELM`,
//! `KAIROSDB_TEST_PROMTOOL`, `KAIROSDB_TEST_TILTFILE_CHECK`); without them their trials are
//! listed as ignored and the binary prints how to get them. Not checked here: building the
//! images and running the containers (no Docker engine), installing the chart (no cluster),
//! running Tilt itself.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use yaml_rust2::{Yaml, YamlLoader};

type Check = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let plain: &[(&str, Check)] = &[
        (
            "dockerfile_builds_in_stages_and_runs_as_non_root_with_a_data_volume",
            dockerfile,
        ),
        (
            "dockerfile_healthcheck_command_probes_a_real_server",
            dockerfile_healthcheck,
        ),
        (
            "dockerignore_sends_only_what_the_build_copies",
            dockerignore,
        ),
        (
            "compose_profiles_have_their_services_ports_and_volumes",
            compose_profiles,
        ),
        (
            "compose_kairosdb_services_use_real_settings_and_health_checks",
            compose_kairosdb,
        ),
        (
            "compose_cluster_profile_is_the_plans_layout_with_scalable_workers",
            compose_cluster,
        ),
        ("java_kairosdb_image_matches_the_test_scripts", java_image),
        (
            "alert_rules_name_only_exported_metrics",
            alerts_name_real_metrics,
        ),
        (
            "grafana_dashboard_panels_name_only_exported_metrics",
            grafana_dashboard,
        ),
        (
            "tiltfile_resources_images_and_ports_match_deploy_tilt",
            tiltfile,
        ),
        (
            "promql_name_extraction_finds_every_metric",
            promql_extraction,
        ),
    ];
    let promtool: &[(&str, Check)] = &[
        (
            "promtool_check_rules_accepts_the_alert_rules",
            promtool_check_rules,
        ),
        (
            "promtool_test_rules_passes_the_alert_unit_tests",
            promtool_test_rules,
        ),
        (
            "promtool_parses_every_dashboard_query",
            promtool_dashboard_queries,
        ),
    ];
    let helm: &[(&str, Check)] = &[
        ("helm_lint_strict_passes_for_each_mode", helm_lint),
        (
            "helm_template_embedded_is_one_statefulset_with_a_volume",
            helm_embedded,
        ),
        (
            "helm_template_cassandra_is_ingest_and_query_deployments",
            helm_cassandra,
        ),
        (
            "helm_template_secret_config_is_appended_by_an_init_container",
            helm_secret,
        ),
        ("helm_template_refuses_an_unknown_mode", helm_bad_mode),
    ];
    let starlark: &[(&str, Check)] =
        &[("tiltfile_runs_as_starlark_in_each_setting", tiltfile_runs)];
    let mut trials = Vec::new();
    for (tool, env, cases) in [
        ("", "", plain),
        ("promtool", PROMTOOL, promtool),
        ("helm", HELM, helm),
        ("Tiltfile", TILTFILE_CHECK, starlark),
    ] {
        let skip = !env.is_empty() && std::env::var_os(env).is_none();
        if skip {
            println!(
                "deploy: {} {tool} tests skipped: {env} is not set. Run \
                 `eval \"$(scripts/deploy-tools.sh)\"` first (scripts/test.sh does).",
                cases.len()
            );
        }
        for &(name, case) in cases {
            trials.push(Trial::test(name, case).with_ignored_flag(skip));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

const PROMTOOL: &str = "KAIROSDB_TEST_PROMTOOL";
const HELM: &str = "KAIROSDB_TEST_HELM";
const TILTFILE_CHECK: &str = "KAIROSDB_TEST_TILTFILE_CHECK";
const SERVER: &str = env!("CARGO_BIN_EXE_kairosdb");

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(text: &str, what: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"))
}

fn yaml(rel: &str) -> Yaml {
    yaml_docs(&read(rel), rel).remove(0)
}

/// A YAML scalar as text (`8080` and `"8080"` alike); None for maps, lists and absence.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(y: &Yaml) -> String {
    scalar(y).unwrap_or_default()
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn map_entries(y: &Yaml) -> Vec<(String, &Yaml)> {
    y.as_hash()
        .map(|h| h.iter().map(|(k, v)| (text(k), v)).collect())
        .unwrap_or_default()
}

// --- the server binary: its settings, its configuration check, its metrics -------------

/// Every `KAIROSDB_*` variable the server reads, from its own `--help`.
fn server_env_vars() -> &'static BTreeSet<String> {
    static VARS: OnceLock<BTreeSet<String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let out = Command::new(SERVER).arg("--help").output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        let vars: BTreeSet<String> = help
            .split("[env: ")
            .skip(1)
            .filter_map(|s| s.split(['=', ']']).next())
            .map(str::to_string)
            .collect();
        assert!(
            vars.contains("KAIROSDB_SERVER_TYPE"),
            "--help lists no env: {help}"
        );
        vars
    })
}

fn check_env_names<'a>(what: &str, names: impl IntoIterator<Item = &'a str>) -> Result<(), Failed> {
    for name in names {
        if name.starts_with("KAIROSDB_") {
            ensure!(
                server_env_vars().contains(name),
                "{what}: {name} is not a setting of the server (kairosdb --help)"
            );
        }
    }
    Ok(())
}

/// A `Command` for the server without the caller's `KAIROSDB_*` variables.
fn server_command() -> Command {
    let mut cmd = Command::new(SERVER);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KAIROSDB_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `kairosdb --check-config` with these variables: the resolved `key = value` lines.
fn check_config(what: &str, env: &[(String, String)]) -> Result<BTreeMap<String, String>, Failed> {
    let out = server_command()
        .arg("--check-config")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    ensure!(
        out.status.success(),
        "{what}: kairosdb --check-config refused {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect())
}

/// A server process on 127.0.0.1 with a data directory of its own, killed on drop.
struct Running {
    child: Child,
    http: String,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server_command()
        .env("KAIROSDB_BIND_ADDRESS", "127.0.0.1:0")
        .env("KAIROSDB_TELNET_BIND_ADDRESS", "127.0.0.1:0")
        .env("KAIROSDB_DATA_DIR", dir.path())
        .env("KAIROSDB_SELF_METRICS", "false")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let http = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening http=") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    Running {
        child,
        http,
        _dir: dir,
    }
}

/// One HTTP/1.0 exchange: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// Names of the series on `/metrics` of a server started with `env`, after one write (so
/// the write-latency histogram has its series).
fn scrape(env: &[(&str, &str)]) -> BTreeSet<String> {
    let server = start_server(env);
    let point = r#"[{"name":"deploy.test","timestamp":1700000000000,"value":1,"tags":{"h":"a"}}]"#;
    let (status, body) = http(&server.http, "POST", "/api/v1/datapoints", point);
    assert_eq!(status, 204, "ingest: {body}");
    let (status, text) = http(&server.http, "GET", "/metrics", "");
    assert_eq!(status, 200, "/metrics: {text}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// Every series name the server exports, in embedded or Cassandra mode.
fn exported_metrics() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = scrape(&[("KAIROSDB_DATASTORE", "embedded")]);
        // No node: the store reports not ready, the queue accepts the write.
        names.extend(scrape(&[
            ("KAIROSDB_DATASTORE", "cassandra"),
            ("KAIROSDB_CASSANDRA_CONTACT_POINTS", "127.0.0.1:1"),
        ]));
        for expected in [
            "kairosdb_engine_poisoned",
            "kairosdb_cassandra_ready",
            "kairosdb_batch_duration_seconds_bucket",
        ] {
            assert!(
                names.contains(expected),
                "{expected} missing from {names:?}"
            );
        }
        names
    })
}

// --- PromQL ------------------------------------------------------------------------------

/// Metric names an expression selects (Grafana's `label_values(expr, label)` reads as
/// `expr`). Label matchers, ranges, strings, grouping clauses, functions and keywords are
/// not names; every other identifier is.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut e = expr.to_string();
    if let Some(inner) = e.trim().strip_prefix("label_values(") {
        e = inner
            .rsplit_once(',')
            .map(|(x, _)| x.to_string())
            .unwrap_or_else(|| inner.trim_end_matches(')').to_string());
    }
    // Drop the insides of {...}, [...] and "...".
    let mut flat = String::new();
    let mut close = None;
    for c in e.chars() {
        match (close, c) {
            (None, '{') => close = Some('}'),
            (None, '[') => close = Some(']'),
            (None, '"') => close = Some('"'),
            (Some(end), c) if c == end => {
                close = None;
                flat.push(' ');
            }
            (Some(_), _) => {}
            (None, c) => flat.push(c),
        }
    }
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregation operators may be followed by `by (...)` rather than `(`.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = flat.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_ident = (c.is_ascii_alphabetic() || c == '_' || c == ':')
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.'));
        if !starts_ident {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let call = j < chars.len() && chars[j] == '(';
        if GROUPING.contains(&word.as_str()) && call {
            // Skip the label list.
            while j < chars.len() && chars[j] != ')' {
                j += 1;
            }
            i = j;
        } else if !call
            && !KEYWORDS.contains(&word.as_str())
            && !AGGREGATIONS.contains(&word.as_str())
        {
            names.insert(word);
        }
    }
    names
}

fn promql_extraction() -> Result<(), Failed> {
    let names = promql_metric_names(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{job=~"x|y", le!="1e3"}[5m]))) > 1e3 and on (instance) b or up unless bool c offset 5m"#,
    );
    let want: BTreeSet<String> = ["a_bucket", "b", "up", "c"].map(String::from).into();
    ensure!(names == want, "got {names:?}");
    let names = promql_metric_names(r#"label_values(m{job=~"$job"}, instance)"#);
    ensure!(names == ["m".to_string()].into(), "got {names:?}");
    Ok(())
}

fn check_metric_names(what: &str, expr: &str) -> Result<(), Failed> {
    let names = promql_metric_names(expr);
    ensure!(!names.is_empty(), "{what}: no metric in {expr}");
    for name in names {
        // `up` is Prometheus's own per target.
        ensure!(
            name == "up" || exported_metrics().contains(&name),
            "{what}: {name} is not exported by the server (in {expr})"
        );
    }
    Ok(())
}

// --- Dockerfile --------------------------------------------------------------------------

struct Instr {
    op: String,
    args: String,
}

struct Stage {
    from: String,
    name: Option<String>,
    instrs: Vec<Instr>,
}

/// A Dockerfile as its stages: continuation lines joined, comments and parser directives
/// dropped, instructions upper-cased.
fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(t);
            logical.push(std::mem::take(&mut cur));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let (op, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let op = op.to_ascii_uppercase();
        let args = args.trim().to_string();
        if op == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = (words.len() == 3 && words[1].eq_ignore_ascii_case("as"))
                .then(|| words[2].to_string());
            stages.push(Stage {
                from: words[0].to_string(),
                name,
                instrs: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instrs.push(Instr { op, args });
        }
    }
    stages
}

impl Stage {
    fn all(&self, op: &'static str) -> impl Iterator<Item = &str> {
        self.instrs
            .iter()
            .filter(move |i| i.op == op)
            .map(|i| i.args.as_str())
    }

    fn last(&self, op: &'static str) -> Option<&str> {
        self.all(op).last()
    }
}

/// `ENV a=b c=d` pairs of a stage.
fn dockerfile_env(stage: &Stage) -> BTreeMap<String, String> {
    stage
        .all("ENV")
        .flat_map(|a| a.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The JSON array of an exec-form instruction (after its options).
fn exec_form(args: &str) -> Vec<String> {
    let json = &args[args.find('[').expect("exec form")..];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not a JSON array: {json}: {e}"))
}

fn runtime_uid() -> String {
    let stages = parse_dockerfile(&read("Dockerfile"));
    let user = stages.last().unwrap().last("USER").unwrap_or("root");
    user.split(':').next().unwrap().to_string()
}

fn dockerfile() -> Result<(), Failed> {
    let stages = parse_dockerfile(&read("Dockerfile"));
    ensure!(
        stages.len() >= 2,
        "one stage: the image would carry the toolchain"
    );
    let build = &stages[0];
    ensure!(
        build.from.starts_with("rust:"),
        "build stage from {}",
        build.from
    );
    let build_name = build.name.as_deref().unwrap_or("0");
    ensure!(
        build
            .all("RUN")
            .any(|r| r.contains("cargo build --release --locked -p kairosdb-server")),
        "the build stage does not build the release binary with the lock file"
    );
    let rt = stages.last().unwrap();
    ensure!(
        rt.from.contains("-slim") && !rt.from.starts_with("rust"),
        "runtime image {} is not a slim base",
        rt.from
    );
    ensure!(
        rt.all("COPY")
            .any(|c| c.contains(&format!("--from={build_name}"))
                && c.ends_with("/usr/local/bin/kairosdb")),
        "the runtime stage does not copy the binary from the build stage"
    );
    let uid = runtime_uid();
    ensure!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {uid}: must be a numeric non-root uid (Kubernetes runAsNonRoot checks numbers)"
    );
    ensure!(
        rt.all("RUN").any(|r| r.contains(&format!("--uid {uid}"))
            && r.contains(&format!("-o {uid}"))
            && r.contains("/data")),
        "no user {uid} created, or /data not owned by it"
    );
    let volumes = rt.all("VOLUME").collect::<Vec<_>>().join(" ");
    ensure!(
        volumes.contains("\"/data\"") || volumes.split_whitespace().any(|v| v == "/data"),
        "no VOLUME /data"
    );
    let env = dockerfile_env(rt);
    check_env_names("Dockerfile ENV", env.keys().map(String::as_str))?;
    ensure!(
        env.get("KAIROSDB_DATA_DIR").map(String::as_str) == Some("/data"),
        "KAIROSDB_DATA_DIR is not the volume"
    );
    let exposed: BTreeSet<&str> = rt.all("EXPOSE").flat_map(str::split_whitespace).collect();
    for (var, port) in [
        ("KAIROSDB_BIND_ADDRESS", "8080"),
        ("KAIROSDB_TELNET_BIND_ADDRESS", "4242"),
    ] {
        ensure!(exposed.contains(port), "port {port} not exposed");
        ensure!(
            env.get(var)
                .is_some_and(|a| a.ends_with(&format!(":{port}"))),
            "{var} does not listen on the exposed {port}"
        );
    }
    let hc = rt.last("HEALTHCHECK").ok_or("no HEALTHCHECK")?;
    ensure!(
        hc.contains("CMD") && hc.contains("/health/ready"),
        "HEALTHCHECK does not probe /health/ready: {hc}"
    );
    let entry = exec_form(rt.last("ENTRYPOINT").ok_or("no ENTRYPOINT")?);
    ensure!(entry == ["/usr/local/bin/kairosdb"], "ENTRYPOINT {entry:?}");
    ensure!(
        rt.last("STOPSIGNAL") == Some("SIGTERM"),
        "STOPSIGNAL is not SIGTERM"
    );
    // The server must not be able to refuse this configuration.
    let env: Vec<(String, String)> = env.into_iter().collect();
    check_config("Dockerfile ENV", &env)?;
    Ok(())
}

/// The image's HEALTHCHECK command, aimed at `port` instead of 8080.
fn healthcheck_command(port: u16) -> Vec<String> {
    let stages = parse_dockerfile(&read("Dockerfile"));
    let hc = stages
        .last()
        .unwrap()
        .last("HEALTHCHECK")
        .unwrap()
        .to_string();
    let cmd = hc.split_once("CMD").unwrap().1;
    exec_form(cmd)
        .into_iter()
        .map(|a| a.replace("/127.0.0.1/8080", &format!("/127.0.0.1/{port}")))
        .collect()
}

fn dockerfile_healthcheck() -> Result<(), Failed> {
    let server = start_server(&[]);
    let port: u16 = server.http.rsplit(':').next().unwrap().parse().unwrap();
    let cmd = healthcheck_command(port);
    let ok = Command::new(&cmd[0]).args(&cmd[1..]).status().unwrap();
    ensure!(ok.success(), "{cmd:?} failed against a ready server");
    drop(server);
    let cmd = healthcheck_command(port);
    let down = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    ensure!(!down.success(), "{cmd:?} succeeded with no server");
    Ok(())
}

fn dockerignore() -> Result<(), Failed> {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    ensure!(
        rules.first() == Some(&"*"),
        ".dockerignore must start by excluding everything"
    );
    let stages = parse_dockerfile(&read("Dockerfile"));
    for stage in &stages {
        for copy in stage.all("COPY").filter(|c| !c.starts_with("--from")) {
            let words: Vec<&str> = copy.split_whitespace().collect();
            for src in &words[..words.len() - 1] {
                let src = src.trim_end_matches('/');
                let included = rules.iter().filter_map(|r| r.strip_prefix('!')).any(|r| {
                    let r = r.trim_end_matches('/');
                    src == r || src.starts_with(&format!("{r}/"))
                });
                ensure!(included, "COPY {src}: not re-included by .dockerignore");
                ensure!(root().join(src).exists(), "COPY {src}: no such path");
            }
        }
    }
    ensure!(
        !rules.iter().any(|r| r.starts_with("!target")),
        "target/ must stay out of the context"
    );
    Ok(())
}

// --- docker compose ----------------------------------------------------------------------

const COMPOSE: &str = "deploy/compose/docker-compose.yml";

fn compose_services(doc: &Yaml) -> Vec<(String, &Yaml)> {
    map_entries(&doc["services"])
}

fn profiles(svc: &Yaml) -> BTreeSet<String> {
    list(&svc["profiles"]).iter().map(text).collect()
}

fn compose_env(svc: &Yaml) -> Vec<(String, String)> {
    map_entries(&svc["environment"])
        .into_iter()
        .map(|(k, v)| (k, text(v)))
        .collect()
}

fn compose_profiles() -> Result<(), Failed> {
    let doc = yaml(COMPOSE);
    let services = compose_services(&doc);
    let expected: [(&str, &[&str]); 4] = [
        ("embedded", &["kairosdb"]),
        ("cluster", &["control", "worker"]),
        (
            "cassandra",
            &["cassandra", "kairosdb-ingest", "kairosdb-query"],
        ),
        ("migration", &["cassandra", "kairosdb-java", "kairosdb-rs"]),
    ];
    for (profile, want) in expected {
        let got: BTreeSet<&str> = services
            .iter()
            .filter(|(_, s)| profiles(s).contains(profile))
            .map(|(n, _)| n.as_str())
            .collect();
        ensure!(
            got == want.iter().copied().collect(),
            "profile {profile}: {got:?}, want {want:?}"
        );
        // Host ports of one profile must not collide.
        let mut seen = BTreeSet::new();
        for (name, svc) in services
            .iter()
            .filter(|(_, s)| profiles(s).contains(profile))
        {
            for p in list(&svc["ports"]) {
                let host = text(p).split(':').next().unwrap().to_string();
                ensure!(
                    seen.insert(host.clone()),
                    "profile {profile}: host port {host} twice ({name})"
                );
            }
        }
    }
    for (name, svc) in &services {
        ensure!(
            !profiles(svc).is_empty(),
            "{name} has no profile: it would start with every setup"
        );
        ensure!(
            !svc["healthcheck"]["test"].is_badvalue(),
            "{name} has no health check"
        );
        for (dep, cond) in map_entries(&svc["depends_on"]) {
            ensure!(
                services
                    .iter()
                    .any(|(n, s)| *n == dep && profiles(s).is_superset(&profiles(svc))),
                "{name} depends on {dep}, which is not in all its profiles"
            );
            ensure!(
                text(&cond["condition"]) == "service_healthy",
                "{name} → {dep}: not service_healthy"
            );
        }
        for v in list(&svc["volumes"]) {
            let vol = text(v).split(':').next().unwrap().to_string();
            ensure!(
                !doc["volumes"][vol.as_str()].is_badvalue(),
                "{name}: volume {vol} not declared"
            );
        }
        if let Some(ctx) = scalar(&svc["build"]["context"]) {
            let dir = root().join("deploy/compose").join(&ctx);
            let file = scalar(&svc["build"]["dockerfile"]).unwrap_or("Dockerfile".into());
            ensure!(
                dir.join(&file).is_file(),
                "{name}: no {file} in build context {ctx}"
            );
        }
    }
    let ports = |name: &str| -> Vec<String> {
        let svc = &doc["services"][name];
        list(&svc["ports"]).iter().map(text).collect()
    };
    ensure!(
        ports("kairosdb-rs") == ["8081:8080", "4243:4242"],
        "migration: ours on {:?}",
        ports("kairosdb-rs")
    );
    ensure!(
        ports("kairosdb-java").contains(&"8080:8080".to_string()),
        "Java KairosDB not on 8080"
    );
    ensure!(
        ports("cassandra") == ["9042:9042"],
        "Cassandra on {:?}",
        ports("cassandra")
    );
    let cass = &doc["services"]["cassandra"];
    ensure!(
        text(&cass["image"]).starts_with("cassandra:5.0"),
        "Cassandra image {}",
        text(&cass["image"])
    );
    ensure!(
        list(&cass["volumes"])
            .iter()
            .any(|v| text(v).ends_with(":/var/lib/cassandra")),
        "Cassandra data is not on a volume"
    );
    let java = text(&doc["services"]["kairosdb-java"]["image"]);
    ensure!(
        java.starts_with("${KAIROSDB_JAVA_IMAGE:-"),
        "Java image not configurable: {java}"
    );
    Ok(())
}

fn compose_kairosdb() -> Result<(), Failed> {
    let doc = yaml(COMPOSE);
    let hc = healthcheck_command(8080);
    // (service, datastore, server_type, rollups)
    let ours = [
        ("kairosdb", "embedded", "ALL", "true"),
        ("kairosdb-ingest", "cassandra", "INGEST", "false"),
        ("kairosdb-query", "cassandra", "QUERY,DELETE", "true"),
        ("kairosdb-rs", "cassandra", "ALL", "false"),
    ];
    for (name, datastore, server_type, rollups) in ours {
        let svc = &doc["services"][name];
        ensure!(
            text(&svc["image"]).starts_with("${KAIROSDB_IMAGE:-"),
            "{name}: image is not ${{KAIROSDB_IMAGE:-...}}"
        );
        ensure!(
            text(&svc["build"]["context"]) == "../..",
            "{name}: not built from the repository root"
        );
        let env = compose_env(svc);
        check_env_names(name, env.iter().map(|(k, _)| k.as_str()))?;
        let resolved = check_config(name, &env)?;
        for (key, want) in [
            ("datastore", datastore),
            ("server_type", server_type),
            ("rollups", rollups),
            ("data_dir", "/data"),
        ] {
            ensure!(
                resolved.get(key).map(String::as_str) == Some(want),
                "{name}: {key} = {:?}, want {want}",
                resolved.get(key)
            );
        }
        if datastore == "cassandra" {
            ensure!(
                resolved["cassandra_contact_points"] == "cassandra:9042",
                "{name}: not on the cassandra service"
            );
            ensure!(
                !svc["depends_on"]["cassandra"].is_badvalue(),
                "{name} does not wait for Cassandra"
            );
        }
        // The same probe as the image's (so `docker compose ps` and `docker run` agree).
        let test: Vec<String> = list(&svc["healthcheck"]["test"]).iter().map(text).collect();
        ensure!(
            test.first().map(String::as_str) == Some("CMD") && test[1..] == hc[..],
            "{name}: health check {test:?} is not the image's {hc:?}"
        );
        ensure!(
            list(&svc["volumes"])
                .iter()
                .any(|v| text(v).ends_with(":/data")),
            "{name}: /data (engine or delivery queue) is not a volume"
        );
        let grace = text(&svc["stop_grace_period"]);
        ensure!(
            grace
                .trim_end_matches('s')
                .parse::<u64>()
                .is_ok_and(|s| s > 30),
            "{name}: stop_grace_period {grace} not above shutdown_timeout_secs (30)"
        );
    }
    Ok(())
}

/// The `cluster` profile: a control node on 8080 that places the partitions once the
/// workers joined, and a `worker` service to `--scale` (host ports 8081–8083, a /data
/// volume per replica), both configured with the plan's variables.
fn compose_cluster() -> Result<(), Failed> {
    let doc = yaml(COMPOSE);
    let hc = healthcheck_command(8080);
    // Compose's `${VAR:-default}` as Compose resolves it with VAR unset.
    let resolve = |v: String| match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(r) => r
            .split_once(":-")
            .map_or(String::new(), |(_, d)| d.to_string()),
        None => v,
    };
    let mut resolved = BTreeMap::new();
    for (name, role) in [("control", "control"), ("worker", "worker")] {
        let svc = &doc["services"][name];
        ensure!(
            text(&svc["image"]).starts_with("${KAIROSDB_IMAGE:-"),
            "{name}: image is not ${{KAIROSDB_IMAGE:-...}}"
        );
        let env: Vec<(String, String)> = compose_env(svc)
            .into_iter()
            .map(|(k, v)| (k, resolve(v)))
            .collect();
        check_env_names(name, env.iter().map(|(k, _)| k.as_str()))?;
        let config = check_config(name, &env)?;
        ensure!(config["role"] == role, "{name}: role {}", config["role"]);
        ensure!(
            config["data_dir"] == "/data",
            "{name}: data_dir {}",
            config["data_dir"]
        );
        let test: Vec<String> = list(&svc["healthcheck"]["test"]).iter().map(text).collect();
        ensure!(
            test.first().map(String::as_str) == Some("CMD") && test[1..] == hc[..],
            "{name}: health check {test:?} is not the image's {hc:?}"
        );
        resolved.insert(name, config);
    }
    let (control, worker) = (&resolved["control"], &resolved["worker"]);
    ensure!(
        control["cluster_min_workers"] == "3" && control["replication_factor"] == "2",
        "control: places on {} workers with {} copies",
        control["cluster_min_workers"],
        control["replication_factor"]
    );
    ensure!(
        worker["cluster_seeds"] == control["advertise_address"],
        "workers join through {}, the control node is at {}",
        worker["cluster_seeds"],
        control["advertise_address"]
    );
    let ports = |name: &str| -> Vec<String> {
        list(&doc["services"][name]["ports"])
            .iter()
            .map(text)
            .collect()
    };
    ensure!(
        ports("control")[0] == "8080:8080",
        "control on {:?}",
        ports("control")
    );
    ensure!(
        ports("worker") == ["8081-8083:8080"],
        "workers on {:?}: one host port per replica of --scale worker=3",
        ports("worker")
    );
    ensure!(
        list(&doc["services"]["worker"]["volumes"]).is_empty(),
        "a named volume would be shared by every worker replica"
    );
    ensure!(
        doc["services"]["worker"]["depends_on"].is_badvalue(),
        "workers must not wait for the control node's health: it is ready only once they joined"
    );
    Ok(())
}

// --- Java KairosDB image -----------------------------------------------------------------

/// (groupId, artifactId, version) of the `<dependency>` elements of a pom fragment.
fn pom_deps(text: &str, version_var: &str) -> BTreeSet<(String, String, String)> {
    let tag = |block: &str, t: &str| -> String {
        let open = format!("<{t}>");
        let start = block.find(&open).map(|i| i + open.len()).unwrap_or(0);
        let end = block[start..]
            .find("</")
            .map(|i| start + i)
            .unwrap_or(start);
        block[start..end].trim().to_string()
    };
    text.split("<dependency>")
        .skip(1)
        .map(|b| {
            let b = b.split("</dependency>").next().unwrap();
            let v = tag(b, "version").replace("$VERSION", version_var);
            (tag(b, "groupId"), tag(b, "artifactId"), v)
        })
        .collect()
}

fn java_image() -> Result<(), Failed> {
    let script = read("scripts/kairosdb-java.sh");
    let version = script
        .lines()
        .find_map(|l| l.strip_prefix("VERSION=\"${KAIROSDB_JAVA_VERSION:-"))
        .and_then(|l| l.strip_suffix("}\""))
        .ok_or("no default VERSION in scripts/kairosdb-java.sh")?;
    let pom = read("deploy/kairosdb-java/pom.xml");
    let (from_script, from_pom) = (pom_deps(&script, version), pom_deps(&pom, version));
    ensure!(
        from_pom.len() == 3 && from_pom == from_script,
        "pom {from_pom:?} vs script {from_script:?}"
    );
    let stages = parse_dockerfile(&read("deploy/kairosdb-java/Dockerfile"));
    ensure!(stages.len() == 2, "{} stages", stages.len());
    let rt = stages.last().unwrap();
    let user = rt
        .last("USER")
        .unwrap_or("root")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    ensure!(
        user.parse::<u32>().is_ok_and(|u| u != 0),
        "Java image runs as {user}"
    );
    let exposed: BTreeSet<&str> = rt.all("EXPOSE").flat_map(str::split_whitespace).collect();
    ensure!(
        exposed == ["8080", "4242"].into(),
        "Java image exposes {exposed:?}"
    );
    let entry = rt.last("ENTRYPOINT").ok_or("no ENTRYPOINT")?;
    for flag in [
        "-Duser.timezone=UTC",
        "org.kairosdb.core.Main -c run -p /opt/kairosdb/conf/kairosdb.conf",
    ] {
        ensure!(entry.contains(flag), "Java ENTRYPOINT lacks {flag}");
    }
    let conf = read("deploy/kairosdb-java/kairosdb.conf");
    for needed in [
        "table_create_with.data_points: \"\"",
        "cql_host_list: [\"cassandra:9042\"]",
        "keyspace: \"kairosdb\"",
    ] {
        ensure!(conf.contains(needed), "kairosdb.conf lacks {needed}");
    }
    Ok(())
}

// --- Prometheus and Grafana --------------------------------------------------------------

fn alerts_name_real_metrics() -> Result<(), Failed> {
    let doc = yaml("deploy/prometheus/alerts.yml");
    let mut names = BTreeSet::new();
    for group in list(&doc["groups"]) {
        for rule in list(&group["rules"]) {
            let alert = text(&rule["alert"]);
            ensure!(!alert.is_empty(), "a rule without an alert name");
            ensure!(names.insert(alert.clone()), "{alert} twice");
            let severity = text(&rule["labels"]["severity"]);
            ensure!(
                ["critical", "warning", "info"].contains(&severity.as_str()),
                "{alert}: severity {severity}"
            );
            ensure!(
                !text(&rule["annotations"]["summary"]).is_empty(),
                "{alert}: no summary"
            );
            check_metric_names(&alert, &text(&rule["expr"]))?;
        }
    }
    ensure!(names.len() >= 10, "only {} alerts", names.len());
    Ok(())
}

/// Every (where, PromQL) of the dashboard: panel targets and template-variable queries.
fn dashboard_queries() -> Vec<(String, String)> {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/kairosdb.json")).expect("dashboard is not JSON");
    let mut out = Vec::new();
    let mut panels: Vec<&serde_json::Value> = dash["panels"]
        .as_array()
        .expect("no panels")
        .iter()
        .collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?");
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title}: a target without expr"));
            out.push((format!("panel {title}"), expr.to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            out.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

fn grafana_dashboard() -> Result<(), Failed> {
    let dash: serde_json::Value = serde_json::from_str(&read("deploy/grafana/kairosdb.json"))?;
    ensure!(
        dash["uid"].is_string() && dash["title"].is_string(),
        "no uid/title"
    );
    let vars: BTreeSet<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    ensure!(
        vars.is_superset(&["datasource", "job", "instance"].into()),
        "variables {vars:?}"
    );
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        ensure!(
            ids.insert(p["id"].as_i64().ok_or("panel without id")?),
            "panel id {} twice",
            p["id"]
        );
        ensure!(
            p["gridPos"]["w"].is_i64(),
            "panel {} without gridPos",
            p["title"]
        );
    }
    let queries = dashboard_queries();
    ensure!(queries.len() >= 30, "only {} queries", queries.len());
    let mut used = BTreeSet::new();
    for (what, expr) in &queries {
        check_metric_names(what, expr)?;
        used.extend(promql_metric_names(expr));
    }
    // The figures an operator needs first are on the dashboard.
    for key in [
        "kairosdb_datapoints_ingested_total",
        "kairosdb_engine_poisoned",
        "kairosdb_cassandra_ready",
        "kairosdb_queue_oldest_age_seconds",
        "kairosdb_rollup_lag_seconds",
    ] {
        ensure!(used.contains(key), "{key} is on no panel");
    }
    Ok(())
}

fn tool(env: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(env).unwrap_or_else(|| panic!("{env} is not set")))
}

fn run_tool(env: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool(env))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn promtool_check_rules() -> Result<(), Failed> {
    let (ok, out) = run_tool(
        PROMTOOL,
        &["check", "rules", "alerts.yml"],
        &root().join("deploy/prometheus"),
    );
    ensure!(
        ok && out.contains("SUCCESS"),
        "promtool check rules:\n{out}"
    );
    Ok(())
}

fn promtool_test_rules() -> Result<(), Failed> {
    let (ok, out) = run_tool(
        PROMTOOL,
        &["test", "rules", "alerts.test.yml"],
        &root().join("deploy/prometheus"),
    );
    ensure!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
    Ok(())
}

/// The dashboard's queries, Grafana's variables filled in, as recording rules: promtool
/// parses each expression.
fn promtool_dashboard_queries() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in dashboard_queries().iter().enumerate() {
        if expr.starts_with("label_values(") {
            continue; // Grafana's function, checked by name above
        }
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$job", ".*")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&expr)?
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules)?;
    let (ok, out) = run_tool(PROMTOOL, &["check", "rules", "dashboard.yml"], dir.path());
    ensure!(ok && out.contains("SUCCESS"), "dashboard queries:\n{out}");
    Ok(())
}

// --- Helm --------------------------------------------------------------------------------

const CHART: &str = "deploy/helm/kairosdb";

fn helm(args: &[&str]) -> (bool, String) {
    run_tool(HELM, args, &root())
}

fn helm_lint() -> Result<(), Failed> {
    for set in [
        &[][..],
        &["--set", "mode=cassandra"],
        &[
            "--set",
            "secretConfig.enabled=true",
            "--set",
            "secretConfig.content=x = 1",
        ],
    ] {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(set);
        let (ok, out) = helm(&args);
        ensure!(
            ok && out.contains("0 chart(s) failed"),
            "helm {args:?}:\n{out}"
        );
    }
    Ok(())
}

/// `helm template` documents, by (kind, name).
fn render(set: &[&str]) -> Result<BTreeMap<(String, String), Yaml>, Failed> {
    let mut args = vec!["template", "t", CHART];
    args.extend_from_slice(set);
    let (ok, out) = helm(&args);
    ensure!(ok, "helm {args:?}:\n{out}");
    Ok(yaml_docs(&out, "helm template")
        .into_iter()
        .filter(|d| !d.is_null())
        .map(|d| ((text(&d["kind"]), text(&d["metadata"]["name"])), d))
        .collect())
}

fn kinds(docs: &BTreeMap<(String, String), Yaml>) -> BTreeSet<(String, String)> {
    docs.keys().cloned().collect()
}

fn key(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

/// What every server pod must have; returns the container's plain env.
fn check_pod(what: &str, pod: &Yaml) -> Result<Vec<(String, String)>, Failed> {
    let spec = &pod["spec"];
    ensure!(
        text(&spec["securityContext"]["runAsNonRoot"]) == "true",
        "{what}: runAsNonRoot"
    );
    ensure!(
        text(&spec["securityContext"]["runAsUser"]) == runtime_uid(),
        "{what}: runAsUser is not the image's USER"
    );
    let c = &list(&spec["containers"])[0];
    for (probe, path) in [
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
        ("startupProbe", "/health/live"),
    ] {
        ensure!(
            text(&c[probe]["httpGet"]["path"]) == path,
            "{what}: {probe} is not on {path}"
        );
        ensure!(
            text(&c[probe]["httpGet"]["port"]) == "http",
            "{what}: {probe} port"
        );
    }
    ensure!(
        !c["resources"]["requests"]["memory"].is_badvalue(),
        "{what}: no memory request"
    );
    ensure!(
        !c["resources"]["limits"]["memory"].is_badvalue(),
        "{what}: no memory limit"
    );
    let ports: BTreeMap<String, String> = list(&c["ports"])
        .iter()
        .map(|p| (text(&p["name"]), text(&p["containerPort"])))
        .collect();
    ensure!(
        ports.get("http").map(String::as_str) == Some("8080"),
        "{what}: http port {ports:?}"
    );
    ensure!(
        list(&c["volumeMounts"])
            .iter()
            .any(|m| text(&m["name"]) == "data" && text(&m["mountPath"]) == "/data"),
        "{what}: no data volume on /data"
    );
    let env: Vec<(String, String)> = list(&c["env"])
        .iter()
        .filter(|e| !e["value"].is_badvalue())
        .map(|e| (text(&e["name"]), text(&e["value"])))
        .collect();
    check_env_names(
        what,
        list(&c["env"])
            .iter()
            .map(|e| e["name"].as_str().unwrap_or("")),
    )?;
    Ok(env)
}

/// `kairosdb --check-config` as the pod would run it: its env, with KAIROSDB_CONFIG
/// pointing at `toml` written to a file.
fn check_pod_config(
    what: &str,
    env: &[(String, String)],
    toml: &str,
) -> Result<BTreeMap<String, String>, Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("kairosdb.toml");
    std::fs::write(&file, toml)?;
    let mut env = env.to_vec();
    for (k, v) in env.iter_mut() {
        if k == "KAIROSDB_CONFIG" {
            *v = file.to_string_lossy().into_owned();
        }
    }
    ensure!(
        env.iter().any(|(k, _)| k == "KAIROSDB_CONFIG"),
        "{what}: no KAIROSDB_CONFIG"
    );
    check_config(what, &env)
}

fn config_toml(docs: &BTreeMap<(String, String), Yaml>) -> String {
    text(&docs[&key("ConfigMap", "t-kairosdb")]["data"]["kairosdb.toml"])
}

fn helm_embedded() -> Result<(), Failed> {
    let docs = render(&[])?;
    let want: BTreeSet<_> = [
        key("ConfigMap", "t-kairosdb"),
        key("Service", "t-kairosdb"),
        key("Service", "t-kairosdb-headless"),
        key("StatefulSet", "t-kairosdb"),
    ]
    .into();
    ensure!(kinds(&docs) == want, "rendered {:?}", kinds(&docs));
    let sts = &docs[&key("StatefulSet", "t-kairosdb")];
    ensure!(
        text(&sts["spec"]["replicas"]) == "1",
        "the embedded engine is one process"
    );
    ensure!(
        text(&sts["spec"]["serviceName"]) == "t-kairosdb-headless",
        "serviceName"
    );
    let claim = &list(&sts["spec"]["volumeClaimTemplates"])[0];
    ensure!(text(&claim["metadata"]["name"]) == "data", "claim name");
    ensure!(
        !claim["spec"]["resources"]["requests"]["storage"].is_badvalue(),
        "claim size"
    );
    let env = check_pod("StatefulSet", &sts["spec"]["template"])?;
    let resolved = check_pod_config("StatefulSet", &env, &config_toml(&docs))?;
    for (k, v) in [
        ("datastore", "embedded"),
        ("server_type", "ALL"),
        ("data_dir", "/data"),
        ("wal_sync", "interval"),
    ] {
        ensure!(
            resolved.get(k).map(String::as_str) == Some(v),
            "StatefulSet: {k} = {:?}",
            resolved.get(k)
        );
    }
    let svc = &docs[&key("Service", "t-kairosdb")];
    let ports: BTreeSet<String> = list(&svc["spec"]["ports"])
        .iter()
        .map(|p| text(&p["port"]))
        .collect();
    ensure!(
        ports == ["8080".to_string(), "4242".to_string()].into(),
        "Service ports {ports:?}"
    );
    ensure!(
        text(&svc["spec"]["selector"]["app.kubernetes.io/component"]) == "server",
        "Service selector"
    );
    // Without persistence the data is an emptyDir (no claim template).
    let docs = render(&["--set", "embedded.persistence.enabled=false"])?;
    let sts = &docs[&key("StatefulSet", "t-kairosdb")];
    ensure!(
        sts["spec"]["volumeClaimTemplates"].is_badvalue(),
        "claim without persistence"
    );
    let vols = list(&sts["spec"]["template"]["spec"]["volumes"]);
    ensure!(
        vols.iter()
            .any(|v| text(&v["name"]) == "data" && v["emptyDir"].as_hash().is_some()),
        "no emptyDir data volume"
    );
    Ok(())
}

fn helm_cassandra() -> Result<(), Failed> {
    let docs = render(&[
        "--set",
        "mode=cassandra",
        "--set",
        "cassandra.contactPoints=cass-a:9042\\,cass-b",
        "--set",
        "cassandra.credentialsSecret=cass-creds",
    ])?;
    let want: BTreeSet<_> = [
        key("ConfigMap", "t-kairosdb"),
        key("Deployment", "t-kairosdb-ingest"),
        key("Deployment", "t-kairosdb-query"),
        key("Service", "t-kairosdb-ingest"),
        key("Service", "t-kairosdb-query"),
    ]
    .into();
    ensure!(kinds(&docs) == want, "rendered {:?}", kinds(&docs));
    for (role, server_type, rollups, telnet) in [
        ("ingest", "INGEST", "false", true),
        ("query", "QUERY,DELETE", "true", false),
    ] {
        let what = format!("Deployment {role}");
        let dep = &docs[&key("Deployment", &format!("t-kairosdb-{role}"))];
        ensure!(text(&dep["spec"]["replicas"]) == "2", "{what}: replicas");
        let pod = &dep["spec"]["template"];
        ensure!(
            text(&pod["metadata"]["labels"]["app.kubernetes.io/component"]) == role,
            "{what}: labels"
        );
        let env = check_pod(&what, pod)?;
        let resolved = check_pod_config(&what, &env, &config_toml(&docs))?;
        for (k, v) in [
            ("datastore", "cassandra"),
            ("server_type", server_type),
            ("rollups", rollups),
            ("cassandra_contact_points", "cass-a:9042,cass-b"),
            ("cassandra_keyspace", "kairosdb"),
        ] {
            ensure!(
                resolved.get(k).map(String::as_str) == Some(v),
                "{what}: {k} = {:?}",
                resolved.get(k)
            );
        }
        let c = &list(&pod["spec"]["containers"])[0];
        let secret_env: BTreeSet<String> = list(&c["env"])
            .iter()
            .filter(|e| text(&e["valueFrom"]["secretKeyRef"]["name"]) == "cass-creds")
            .map(|e| text(&e["name"]))
            .collect();
        ensure!(
            secret_env
                == [
                    "KAIROSDB_CASSANDRA_PASSWORD".to_string(),
                    "KAIROSDB_CASSANDRA_USER".to_string()
                ]
                .into(),
            "{what}: credentials {secret_env:?}"
        );
        let svc = &docs[&key("Service", &format!("t-kairosdb-{role}"))];
        let names: Vec<String> = list(&svc["spec"]["ports"])
            .iter()
            .map(|p| text(&p["name"]))
            .collect();
        ensure!(
            names.contains(&"telnet".to_string()) == telnet,
            "{what}: Service ports {names:?}"
        );
        ensure!(
            text(&svc["spec"]["selector"]["app.kubernetes.io/component"]) == role,
            "{what}: Service selector"
        );
    }
    Ok(())
}

fn helm_secret() -> Result<(), Failed> {
    let fragment = "cassandra_user = \"kairosdb\"\ncassandra_password = \"s3cret\"";
    let docs = render(&[
        "--set",
        "secretConfig.enabled=true",
        "--set-string",
        &format!("secretConfig.content={fragment}"),
    ])?;
    let secret = &docs[&key("Secret", "t-kairosdb-secret")];
    let stored = text(&secret["stringData"]["secret.toml"]);
    ensure!(stored.trim() == fragment, "Secret holds {stored:?}");
    let pod = &docs[&key("StatefulSet", "t-kairosdb")]["spec"]["template"];
    let init = &list(&pod["spec"]["initContainers"])[0];
    let cmd: Vec<String> = list(&init["command"]).iter().map(text).collect();
    ensure!(
        cmd.last().is_some_and(|c| c.contains("/etc/kairosdb/config/kairosdb.toml /etc/kairosdb/secret/secret.toml > /etc/kairosdb/run/kairosdb.toml")),
        "init container {cmd:?}"
    );
    let env = check_pod("StatefulSet with secret", pod)?;
    ensure!(
        env.contains(&(
            "KAIROSDB_CONFIG".into(),
            "/etc/kairosdb/run/kairosdb.toml".into()
        )),
        "the server does not read the merged file"
    );
    // What the init container writes is a configuration the server accepts.
    let merged = format!("{}{stored}", config_toml(&docs));
    let resolved = check_pod_config("merged config", &env, &merged)?;
    ensure!(
        resolved.get("cassandra_user").map(String::as_str) == Some("kairosdb"),
        "fragment not read: {resolved:?}"
    );
    // An existing Secret is used as it is: none is created.
    let docs = render(&[
        "--set",
        "secretConfig.enabled=true",
        "--set",
        "secretConfig.existingSecret=mine",
    ])?;
    ensure!(
        !kinds(&docs).iter().any(|(k, _)| k == "Secret"),
        "a Secret was created beside the existing one"
    );
    let vols =
        list(&docs[&key("StatefulSet", "t-kairosdb")]["spec"]["template"]["spec"]["volumes"]);
    ensure!(
        vols.iter()
            .any(|v| text(&v["secret"]["secretName"]) == "mine"),
        "existing Secret not mounted"
    );
    Ok(())
}

fn helm_bad_mode() -> Result<(), Failed> {
    let (ok, out) = helm(&["template", "t", CHART, "--set", "mode=h2"]);
    ensure!(
        !ok && out.contains("mode must be embedded or cassandra"),
        "helm accepted mode=h2:\n{out}"
    );
    Ok(())
}

// --- Tilt --------------------------------------------------------------------------------

/// The single-quoted string literals of a Starlark file (comments dropped).
fn starlark_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split_once('#').map_or(line, |(c, _)| c);
        let mut parts = code.split('\'');
        parts.next();
        while let Some(s) = parts.next() {
            out.push(s.to_string());
            parts.next();
        }
    }
    out
}

fn tiltfile() -> Result<(), Failed> {
    let tilt = read("Tiltfile");
    let strings = starlark_strings(&tilt);
    // Every file or directory it names exists.
    for s in &strings {
        if s.starts_with("deploy/")
            || s == "Dockerfile"
            || s == "Cargo.toml"
            || s == "Cargo.lock"
            || s == "crates"
        {
            ensure!(
                root().join(s).exists(),
                "Tiltfile names {s}, which does not exist"
            );
        }
    }
    // Workloads of the manifests it applies, and the images they run.
    let mut workloads = BTreeMap::new();
    for m in ["cassandra", "kairosdb-java", "kairosdb-rs"] {
        let rel = format!("deploy/tilt/{m}.yaml");
        ensure!(strings.contains(&rel), "Tiltfile does not apply {rel}");
        for d in yaml_docs(&read(&rel), &rel) {
            if text(&d["kind"]) == "Deployment" {
                let c = &list(&d["spec"]["template"]["spec"]["containers"])[0];
                let env: Vec<(String, String)> = list(&c["env"])
                    .iter()
                    .map(|e| (text(&e["name"]), text(&e["value"])))
                    .collect();
                workloads.insert(text(&d["metadata"]["name"]), (text(&c["image"]), env));
            }
        }
    }
    ensure!(workloads.len() == 3, "workloads {:?}", workloads.keys());
    for (name, ports) in [
        ("cassandra", "['9042:9042']"),
        ("kairosdb-java", "['8080:8080', '4242:4242']"),
        ("kairosdb-rs", "['8081:8080', '4243:4242']"),
    ] {
        ensure!(
            tilt.contains(&format!("k8s_resource('{name}', port_forwards={ports}")),
            "no k8s_resource {name} with port_forwards={ports}"
        );
        ensure!(
            workloads.contains_key(name),
            "k8s_resource {name} has no Deployment"
        );
    }
    ensure!(
        workloads["cassandra"].0.starts_with("cassandra:5.0"),
        "Cassandra image {}",
        workloads["cassandra"].0
    );
    // The images Tilt builds are the ones the manifests run.
    ensure!(
        tilt.contains("docker_build('kairosdb-java', 'deploy/kairosdb-java')"),
        "Java image not built from deploy/kairosdb-java"
    );
    ensure!(
        workloads["kairosdb-java"].0 == "kairosdb-java",
        "Java manifest image"
    );
    ensure!(
        workloads["kairosdb-rs"].0 == "kairosdb-rs-dev",
        "our manifest image"
    );
    ensure!(
        tilt.contains("docker_build_with_restart(\n        'kairosdb-rs-dev'"),
        "no live-update build of kairosdb-rs-dev"
    );
    // Live rebuild: cargo on the host, the binary synced to where the image runs it.
    ensure!(
        tilt.contains("cargo build -p kairosdb-server --bin kairosdb"),
        "no cargo build"
    );
    ensure!(
        tilt.contains("sync('.cache/tilt/bin/kairosdb', '/usr/local/bin/kairosdb')"),
        "no sync of the binary"
    );
    let dev = parse_dockerfile(&read("deploy/tilt/Dockerfile.dev"));
    let entry = exec_form(dev.last().unwrap().last("ENTRYPOINT").unwrap_or("[]"));
    ensure!(
        entry == ["/usr/local/bin/kairosdb"],
        "dev image entrypoint {entry:?}"
    );
    // Our server's settings there are real and mean the migration setup.
    let env = &workloads["kairosdb-rs"].1;
    check_env_names(
        "deploy/tilt/kairosdb-rs.yaml",
        env.iter().map(|(k, _)| k.as_str()),
    )?;
    let resolved = check_config("deploy/tilt/kairosdb-rs.yaml", env)?;
    ensure!(
        resolved["datastore"] == "cassandra"
            && resolved["cassandra_contact_points"] == "cassandra:9042",
        "Tilt's server is not on the cassandra Service"
    );
    Ok(())
}

/// The Tiltfile run by `tiltfile-check` with `settings`: Tilt's calls, as (function, call).
fn tilt_calls(settings: &[&str]) -> Result<Vec<(String, serde_json::Value)>, Failed> {
    let (ok, out) = run_tool(TILTFILE_CHECK, &[&["Tiltfile"], settings].concat(), &root());
    ensure!(ok, "Tiltfile with {settings:?} failed:\n{out}");
    Ok(out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|c| (c["fn"].as_str().unwrap().to_string(), c))
        .collect())
}

fn calls_of<'a>(calls: &'a [(String, serde_json::Value)], f: &str) -> Vec<&'a serde_json::Value> {
    calls
        .iter()
        .filter(|(n, _)| n == f)
        .map(|(_, c)| c)
        .collect()
}

fn tiltfile_runs() -> Result<(), Failed> {
    let calls = tilt_calls(&[])?;
    let resources: BTreeMap<String, serde_json::Value> = calls_of(&calls, "k8s_resource")
        .into_iter()
        .map(|c| {
            (
                c["args"][0].as_str().unwrap().to_string(),
                c["kwargs"]["port_forwards"].clone(),
            )
        })
        .collect();
    let want: BTreeMap<String, serde_json::Value> = [
        ("cassandra", serde_json::json!(["9042:9042"])),
        (
            "kairosdb-java",
            serde_json::json!(["8080:8080", "4242:4242"]),
        ),
        ("kairosdb-rs", serde_json::json!(["8081:8080", "4243:4242"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ensure!(
        resources == want,
        "k8s_resource port forwards {resources:?}"
    );
    let applied: Vec<&str> = calls_of(&calls, "k8s_yaml")
        .iter()
        .filter_map(|c| c["args"][0].as_str())
        .collect();
    for m in [
        "deploy/tilt/cassandra.yaml",
        "deploy/tilt/kairosdb-java.yaml",
        "deploy/tilt/kairosdb-rs.yaml",
    ] {
        ensure!(applied.contains(&m), "{m} not applied: {applied:?}");
        ensure!(root().join(m).is_file(), "{m} missing");
    }
    let java = calls_of(&calls, "docker_build");
    ensure!(
        java.len() == 1
            && java[0]["args"] == serde_json::json!(["kairosdb-java", "deploy/kairosdb-java"]),
        "Java image build {java:?}"
    );
    let live = calls_of(&calls, "docker_build_with_restart");
    ensure!(live.len() == 1, "no live-update build");
    let live = live[0];
    let context = root().join(live["args"][1].as_str().unwrap());
    ensure!(
        live["args"][0] == "kairosdb-rs-dev"
            && live["kwargs"]["entrypoint"] == serde_json::json!(["/usr/local/bin/kairosdb"]),
        "live build {live}"
    );
    ensure!(
        root()
            .join(live["kwargs"]["dockerfile"].as_str().unwrap())
            .is_file(),
        "dev Dockerfile missing"
    );
    let compile = calls_of(&calls, "local_resource");
    ensure!(compile.len() == 1, "no compile resource");
    let cmd = compile[0]["args"][1].as_str().unwrap();
    ensure!(
        cmd.contains("cargo build -p kairosdb-server"),
        "compile command {cmd}"
    );
    // The binary the compile step leaves is the one synced into the image's context.
    let synced = calls_of(&calls, "sync");
    ensure!(synced.len() == 1, "sync calls {synced:?}");
    let src = root().join(synced[0]["args"][0].as_str().unwrap());
    ensure!(
        src.parent() == Some(context.as_path()),
        "sync source {src:?} outside the context {context:?}"
    );
    ensure!(
        cmd.ends_with(synced[0]["args"][0].as_str().unwrap()),
        "compile does not write {src:?}"
    );
    ensure!(
        synced[0]["args"][1] == "/usr/local/bin/kairosdb",
        "sync target"
    );
    let deps = &calls
        .iter()
        .find(|(n, c)| n == "k8s_resource" && c["args"][0] == "kairosdb-rs")
        .unwrap()
        .1["kwargs"]["resource_deps"];
    ensure!(
        *deps == serde_json::json!(["cassandra", "kairosdb-rs-compile"]),
        "kairosdb-rs waits for {deps}"
    );

    // A ready-made Java image: nothing built, the manifest's image rewritten.
    let calls = tilt_calls(&["kairosdb_java_image=kairosdb/kairosdb:1.3.0"])?;
    ensure!(
        calls_of(&calls, "docker_build").is_empty(),
        "Java image built although one was given"
    );
    ensure!(
        calls_of(&calls, "k8s_yaml").iter().any(|c| c["args"][0]
            .as_str()
            .unwrap()
            .contains("image: kairosdb/kairosdb:1.3.0\n")),
        "the given Java image is not applied"
    );
    // The in-container build: the root Dockerfile, no host compile step.
    let calls = tilt_calls(&["container_build=true"])?;
    let builds = calls_of(&calls, "docker_build");
    ensure!(
        builds
            .iter()
            .any(|c| c["args"] == serde_json::json!(["kairosdb-rs-dev", "."])
                && c["kwargs"]["dockerfile"] == "Dockerfile"),
        "container build {builds:?}"
    );
    ensure!(
        calls_of(&calls, "local_resource").is_empty(),
        "host compile in container_build mode"
    );
    // A setting the Tiltfile does not define is refused, as Tilt does.
    let (ok, _) = run_tool(TILTFILE_CHECK, &["Tiltfile", "no_such_setting=1"], &root());
    ensure!(!ok, "an undefined setting was accepted");
    Ok(())
}

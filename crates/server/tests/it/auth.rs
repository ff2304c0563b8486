//! Authentication, scopes, rate limits and the telnet allow-list (issue 22) against the
//! real binary, configured through a TOML file with an `[auth]` table.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{command, get, send, Answer, Server};

const WRITER: &str = "writer-token";
const READER: &str = "reader-token";
const DELETER: &str = "deleter-token";
const ADMIN: &str = "admin-token";

/// A server with `config` as its TOML file; the directory holding it lives as long as
/// the returned guard.
fn start(config: &str, env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kairosdb.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("KAIROSDB_CONFIG", &path));
    (Server::fresh(&env), dir)
}

/// `kairosdb hash-secret [args]` with `stdin`; its stdout, checked for success.
pub fn hash_secret(args: &[&str], stdin: &str) -> String {
    let mut child = command()
        .arg("hash-secret")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn token_entry(name: &str, token: &str, scopes: &str, extra: &str) -> String {
    let hash = hash_secret(&["--token"], &format!("{token}\n"));
    format!(
        "[[auth.tokens]]\nname = \"{name}\"\ntoken_hash = \"{}\"\nscopes = {scopes}\n{extra}\n",
        hash.trim()
    )
}

/// One token per scope, and a Basic user `grafana` / `pa55 word` with read.
fn scoped_config() -> String {
    let password_hash = hash_secret(&[], "pa55 word\n");
    format!(
        "auth_enabled = true\n\
         [[auth.users]]\nname = \"grafana\"\npassword_hash = \"{}\"\nscopes = [\"read\"]\n{}{}{}{}",
        password_hash.trim(),
        token_entry("writer", WRITER, "[\"write\"]", ""),
        token_entry("reader", READER, "[\"read\"]", ""),
        token_entry("deleter", DELETER, "[\"delete\"]", ""),
        token_entry("admin", ADMIN, "[\"admin\"]", ""),
    )
}

fn client() -> reqwest::Client {
    crate::harness::client()
}

/// One request of each route class, with the status it succeeds with.
fn requests(server: &Server) -> Vec<(&'static str, reqwest::RequestBuilder, u16)> {
    let c = client();
    let query = json!({ "start_absolute": 0, "metrics": [{ "name": "auth.m" }] }).to_string();
    vec![
        (
            WRITER,
            c.post(server.url("/api/v1/datapoints")).body(
                json!([{ "name": "auth.m", "datapoints": [[1000, 1]], "tags": { "h": "a" } }])
                    .to_string(),
            ),
            204,
        ),
        (
            READER,
            c.post(server.url("/api/v1/datapoints/query"))
                .body(query.clone()),
            200,
        ),
        (READER, c.get(server.url("/api/v1/metricnames")), 200),
        (
            DELETER,
            c.post(server.url("/api/v1/datapoints/delete")).body(query),
            204,
        ),
        (ADMIN, c.get(server.url("/api/v1/rollups")), 200),
        (
            ADMIN,
            c.post(server.url("/api/v1/metadata/svc/key/k")).body("v"),
            204,
        ),
    ]
}

/// The value of an unlabelled Prometheus counter on `/metrics`.
async fn counter(server: &Server, name: &str) -> f64 {
    let text = get(server, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not on /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn assert_challenge(a: &Answer) {
    assert_eq!(a.status, 401, "{}", a.text());
    let challenges: Vec<&str> = a
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic realm=")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer realm=")),
        "{challenges:?}"
    );
    assert!(a.errors()[0].starts_with("Unauthorized"), "{}", a.text());
}

#[tokio::test]
async fn every_route_class_needs_credentials_and_its_scope() {
    let (server, _dir) = start(&scoped_config(), &[]);
    let tokens = [WRITER, READER, DELETER, ADMIN];
    let mut wrong = 0;
    for (owner, request, ok) in requests(&server) {
        let path = format!("{:?}", request.try_clone().unwrap().build().unwrap().url());
        // No credentials.
        assert_challenge(&send(request.try_clone().unwrap()).await);
        // Wrong token, wrong Basic password.
        let a = send(request.try_clone().unwrap().bearer_auth("nope")).await;
        assert_challenge(&a);
        assert!(a
            .headers
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().unwrap().contains("invalid_token")));
        assert_challenge(
            &send(
                request
                    .try_clone()
                    .unwrap()
                    .basic_auth("grafana", Some("wrong")),
            )
            .await,
        );
        wrong += 2;
        // Every other scope: 403 with a KairosDB error body naming the scope.
        for other in tokens.iter().filter(|t| **t != owner) {
            let a = send(request.try_clone().unwrap().bearer_auth(other)).await;
            assert_eq!(a.status, 403, "{path} with {other}: {}", a.text());
            let e = &a.errors()[0];
            assert!(e.starts_with("Forbidden: ") && e.contains(" scope "), "{e}");
        }
        // The right one.
        let a = send(request.bearer_auth(owner)).await;
        assert_eq!(a.status, ok, "{path} with {owner}: {}", a.text());
    }
    assert_eq!(
        counter(&server, "kairosdb_http_auth_failures_total").await,
        f64::from(wrong)
    );
    assert_eq!(
        counter(&server, "kairosdb_http_auth_missing_total").await,
        6.0
    );
    assert_eq!(
        counter(&server, "kairosdb_http_forbidden_total").await,
        18.0
    );
}

#[tokio::test]
async fn basic_auth_users_hashed_by_hash_secret_log_in() {
    let (server, _dir) = start(&scoped_config(), &[]);
    let names = || client().get(server.url("/api/v1/metricnames"));
    let ok = send(names().basic_auth("grafana", Some("pa55 word"))).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Again, from the cache of successful checks.
    let again = send(names().basic_auth("grafana", Some("pa55 word"))).await;
    assert_eq!(again.status, 200);
    // A wrong password and an unknown user get the same answer.
    let wrong = send(names().basic_auth("grafana", Some("pa55 worD"))).await;
    let nobody = send(names().basic_auth("nobody", Some("pa55 word"))).await;
    assert_challenge(&wrong);
    assert_challenge(&nobody);
    assert_eq!(wrong.body, nobody.body);
    // Read only: ingest is forbidden.
    let write = send(
        client()
            .post(server.url("/api/v1/datapoints"))
            .basic_auth("grafana", Some("pa55 word"))
            .body("[]"),
    )
    .await;
    assert_eq!(write.status, 403, "{}", write.text());
    // A header that is neither scheme.
    let odd = send(names().header("authorization", "Digest x")).await;
    assert_challenge(&odd);
}

#[tokio::test]
async fn hash_secret_generates_tokens_that_authenticate() {
    let out = hash_secret(&["--generate-token"], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (token, hash) = (lines[0], lines[1]);
    assert!(hash.starts_with("sha256:"), "{out}");
    assert_eq!(
        hash_secret(&["--token"], &format!("{token}\n")).trim(),
        hash
    );
    let config = format!(
        "auth_enabled = true\n[[auth.tokens]]\nname = \"t\"\ntoken_hash = \"{hash}\"\nscopes = [\"read\"]\n"
    );
    let (server, _dir) = start(&config, &[]);
    let a = send(
        client()
            .get(server.url("/api/v1/version"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // Empty input is an error, not the hash of nothing.
    let status = command()
        .arg("hash-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn probes_metrics_preflight_and_ui_files_stay_open() {
    let (server, _dir) = start(&scoped_config(), &[]);
    for (path, status) in [
        ("/health", 200),
        ("/health/live", 200),
        ("/health/ready", 200),
        ("/metrics", 200),
        ("/api/v1/health/status", 200),
        ("/api/v1/health/check", 204),
        ("/", 200),
        ("/index.html", 200),
        ("/query.js", 200),
        ("/style.css", 200),
    ] {
        let a = get(&server, path).await;
        assert_eq!(a.status, status, "{path}: {}", a.text());
    }
    let preflight = send(
        client()
            .request(
                reqwest::Method::OPTIONS,
                server.url("/api/v1/datapoints/query"),
            )
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(preflight.status, 200);
    // The API the pages call is what is protected.
    assert_challenge(&get(&server, "/api/v1/metricnames").await);
}

#[tokio::test]
async fn open_paths_can_be_narrowed() {
    let config = format!(
        "auth_enabled = true\n[auth]\nopen_paths = [\"/health/live\"]\n{}",
        token_entry("reader", READER, "[\"read\"]", "")
    );
    let (server, _dir) = start(&config, &[]);
    assert_eq!(get(&server, "/health/live").await.status, 200);
    assert_challenge(&get(&server, "/api/v1/health/status").await);
    assert_challenge(&get(&server, "/metrics").await);
    let metrics = send(client().get(server.url("/metrics")).bearer_auth(READER)).await;
    assert_eq!(metrics.status, 200);
    // The UI's files stay open whatever open_paths says.
    assert_eq!(get(&server, "/index.html").await.status, 200);
}

/// GET /api/v1/version with `token` until it is not 429, or panics after `limit`.
async fn until_allowed(server: &Server, token: &str, limit: Duration) -> Answer {
    let deadline = Instant::now() + limit;
    loop {
        let a = send(
            client()
                .get(server.url("/api/v1/version"))
                .bearer_auth(token),
        )
        .await;
        if a.status != 429 || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_gets_its_burst_then_429_then_recovers() {
    // 10 a second, 3 at once; the reader's own rate is independent.
    let config = format!(
        "auth_enabled = true\n{}{}",
        token_entry(
            "fast",
            WRITER,
            "[\"read\"]",
            "rate_per_minute = 600\nburst = 3"
        ),
        token_entry(
            "other",
            READER,
            "[\"read\"]",
            "rate_per_minute = 600\nburst = 3"
        ),
    );
    let (server, _dir) = start(&config, &[]);
    let version = |token: &'static str| {
        send(
            client()
                .get(server.url("/api/v1/version"))
                .bearer_auth(token),
        )
    };
    let mut remaining = Vec::new();
    let mut refused = None;
    // Three pass (a few more if the bucket refilled between requests on a slow machine).
    for _ in 0..10 {
        let a = version(WRITER).await;
        assert_eq!(a.headers["x-ratelimit-limit"], "3");
        if a.status == 429 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 200);
        remaining.push(
            a.headers["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(remaining.len() >= 3, "{remaining:?}");
    assert_eq!(remaining[..3], ["2", "1", "0"]);
    let refused = refused.expect("429 after the burst");
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    let reset: u32 = refused.headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(reset, 1, "3 tokens at 10 a second");
    assert!(
        refused.errors()[0].starts_with("Too Many Requests"),
        "{}",
        refused.text()
    );
    // Another token is not affected.
    assert_eq!(version(READER).await.status, 200);
    // Probes are never limited.
    for _ in 0..10 {
        assert_eq!(get(&server, "/health/ready").await.status, 200);
    }
    // A token comes back within 100 ms; allow a slow machine a second.
    let again = until_allowed(&server, WRITER, Duration::from_secs(2)).await;
    assert_eq!(again.status, 200);
    assert!(counter(&server, "kairosdb_http_rate_limited_total").await >= 1.0);
}

#[tokio::test]
async fn anonymous_clients_are_limited_per_address() {
    // Authentication off; the server-wide default limit applies to every address.
    let (server, _dir) = start("rate_limit_per_minute = 6\nrate_limit_burst = 2\n", &[]);
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let names = |c: &reqwest::Client| c.get(server.url("/api/v1/metricnames"));
    let a = from("127.0.0.1");
    assert_eq!(send(names(&a)).await.status, 200);
    assert_eq!(send(names(&a)).await.status, 200);
    let refused = send(names(&a)).await;
    assert_eq!(refused.status, 429);
    // 6 a minute: the next token in 10 s.
    assert_eq!(refused.headers["retry-after"], "10");
    // Another address (any 127/8 address is this machine) has its own bucket.
    let b = from("127.0.0.2");
    assert_eq!(send(names(&b)).await.status, 200);
    // Another route class has its own bucket too; probes none.
    let ingest = send(a.post(server.url("/api/v1/datapoints")).body("[]")).await;
    assert_eq!(ingest.status, 204, "{}", ingest.text());
    for _ in 0..5 {
        assert_eq!(send(a.get(server.url("/health"))).await.status, 200);
    }
}

#[tokio::test]
async fn anonymous_scopes_let_some_routes_through_without_credentials() {
    let config = format!(
        "auth_enabled = true\n[auth.anonymous]\nscopes = [\"read\"]\n{}",
        token_entry("writer", WRITER, "[\"write\"]", "")
    );
    let (server, _dir) = start(&config, &[]);
    assert_eq!(get(&server, "/api/v1/metricnames").await.status, 200);
    // Ingest still needs the writer, and asks for it with 401, not 403.
    let anonymous = send(client().post(server.url("/api/v1/datapoints")).body("[]")).await;
    assert_challenge(&anonymous);
    // Wrong credentials are refused even where anonymous would pass.
    let wrong = send(
        client()
            .get(server.url("/api/v1/metricnames"))
            .bearer_auth("nope"),
    )
    .await;
    assert_challenge(&wrong);
}

#[tokio::test]
async fn telnet_clients_outside_the_allow_list_are_closed_and_counted() {
    let (server, _dir) = start("telnet_allow = \"10.0.0.0/8, 127.0.0.2\"\n", &[]);
    // 127.0.0.1 is not allowed: closed before anything is read.
    let mut refused = std::net::TcpStream::connect(server.telnet).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = refused.write_all(b"version\n");
    let mut buf = Vec::new();
    let closed = match refused.read_to_end(&mut buf) {
        Ok(_) => buf.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "got {buf:?}");
    // 127.0.0.2 is: its lines are stored.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket.connect(server.telnet).await.unwrap();
    let mut allowed = crate::harness::Telnet {
        stream: stream.into_std().unwrap(),
    };
    allowed.stream.set_nonblocking(false).unwrap();
    allowed
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    allowed.send(b"putm allowed.m 1000 1 h=a\n");
    assert!(allowed.version().starts_with("KairosDB"));
    assert_eq!(
        crate::harness::read_back(&server, "allowed.m").await,
        vec![(1000, json!(1))]
    );
    assert_eq!(
        counter(&server, "kairosdb_telnet_refused_connections_total").await,
        1.0
    );
}

//! Starts the real `kairosdb` binary on `127.0.0.1:0` (HTTP and telnet) with its own data
//! directory, reads the bound ports from its `listening http=... telnet=...` line, and
//! kills it when the [`Server`] guard is dropped, so no test leaks a process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kairosdb");

/// A running server. Dropping it kills the process (SIGKILL) and reaps it.
pub struct Server {
    child: Option<Child>,
    pub http: SocketAddr,
    pub telnet: SocketAddr,
    /// The telemetry API's listener, when `KAIROSDB_TELEMETRY_BIND_ADDRESS` is set.
    pub telemetry: Option<SocketAddr>,
    pub log: PathBuf,
    /// The data directory of a [`Server::fresh`] server, removed once the process is gone.
    temp: Option<tempfile::TempDir>,
}

/// A `Command` for the binary with every `KAIROSDB_*` variable of the caller's environment
/// removed, so a developer's settings cannot change test results.
pub fn command() -> Command {
    command_in(None)
}

/// [`command`], run inside the network namespace `netns` when given (`ip netns exec`).
pub fn command_in(netns: Option<&str>) -> Command {
    let mut cmd = match netns {
        None => Command::new(BIN),
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, BIN]);
            cmd
        }
    };
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAIROSDB_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd.env_remove("ENVIRONMENT");
    cmd.env_remove("APP_ENV");
    cmd.env_remove("REDIS_URI");
    cmd
}

impl Server {
    /// Starts a server on `data_dir` with extra `KAIROSDB_*` settings.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_in(None, data_dir, env)
    }

    /// [`Server::start`] inside the network namespace `netns` when given.
    pub fn start_in(netns: Option<&str>, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let log = data_dir.with_extension(format!("log.{}", unique()));
        let log_file = std::fs::File::create(&log).expect("create server log");
        let mut cmd = command_in(netns);
        cmd.env("KAIROSDB_BIND_ADDRESS", "127.0.0.1:0")
            .env("KAIROSDB_TELNET_BIND_ADDRESS", "127.0.0.1:0")
            .env("KAIROSDB_DATA_DIR", data_dir)
            .env("KAIROSDB_WORKER_THREADS", "2")
            // Tests list metric names exactly; `self_metrics` tests turn the reporter on.
            .env("KAIROSDB_SELF_METRICS", "false")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn kairosdb");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the listening line, then keeps draining stdout so the server never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("listening ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            http: "0.0.0.0:0".parse().unwrap(),
            telnet: "0.0.0.0:0".parse().unwrap(),
            telemetry: None,
            log,
            temp: None,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(_) if Instant::now() > deadline => {
                    panic!("server did not start in time; log:\n{}", server.log_text())
                }
                Err(_) => {
                    if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                        panic!(
                            "server exited at start-up ({status}); log:\n{}",
                            server.log_text()
                        );
                    }
                }
            }
        };
        for word in line.split_whitespace() {
            if let Some(a) = word.strip_prefix("http=") {
                server.http = a.parse().expect("http address");
            } else if let Some(a) = word.strip_prefix("telemetry=") {
                server.telemetry = Some(a.parse().expect("telemetry address"));
            } else if let Some(a) = word.strip_prefix("telnet=") {
                // `off` when the process does not serve INGEST (server_type).
                if a != "off" {
                    server.telnet = a.parse().expect("telnet address");
                }
            }
        }
        assert_ne!(server.http.port(), 0, "bad listening line {line:?}");
        if !line.contains("telnet=off") {
            assert_ne!(server.telnet.port(), 0, "bad listening line {line:?}");
        }
        server
    }

    /// Starts a server on a new, empty temporary data directory that lives as long as
    /// the server.
    pub fn fresh(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut server = Server::start(&dir.path().join("data"), env);
        server.temp = Some(dir);
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit status.
    pub fn terminate(self, timeout: Duration) -> ExitStatus {
        self.send_sigterm();
        self.wait_exit(timeout)
    }

    /// Sends SIGTERM without waiting for the exit.
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits (at most `timeout`) for the process to exit and returns its status.
    pub fn wait_exit(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// A raw telnet connection.
    pub fn telnet(&self) -> Telnet {
        let stream = TcpStream::connect(self.telnet).expect("connect telnet");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Telnet { stream }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking telnet client.
pub struct Telnet {
    pub stream: TcpStream,
}

impl Telnet {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("telnet write");
    }

    /// Sends `version` and returns the answer line. Every line sent before it has then
    /// been written to storage (see the telnet module's acknowledgement rule).
    pub fn version(&mut self) -> String {
        self.send(b"version\n");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let n = self.stream.read(&mut byte).expect("telnet read");
            assert_eq!(n, 1, "telnet connection closed before the version answer");
            if byte[0] == b'\n' {
                return String::from_utf8(line).expect("utf-8 version line");
            }
            line.push(byte[0]);
        }
    }
}

/// A number unique within this test process (for names and files).
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    u64::from(std::process::id()) << 20 | n
}

/// Reads a file of the shared KairosDB conformance data; fails loudly when it is missing.
pub fn conformance_file(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/kairosdb-conformance")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "conformance fixture {} is missing ({e}); these tests need ../shared/kairosdb-conformance",
            path.display()
        )
    })
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A client that neither asks for nor decodes gzip, to see the raw response.
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Status and body of a request.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// The `errors` array of a KairosDB error body.
    pub fn errors(&self) -> Vec<String> {
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array in {}", self.text()));
        errors
            .iter()
            .map(|e| e.as_str().expect("error strings").to_string())
            .collect()
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("HTTP body").to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn post(server: &Server, path: &str, body: impl Into<reqwest::Body>) -> Answer {
    send(client().post(server.url(path)).body(body)).await
}

pub async fn get(server: &Server, path: &str) -> Answer {
    send(client().get(server.url(path))).await
}

/// Queries `metric` from time 0 on and returns `(timestamp, value)` of every result group,
/// sorted by timestamp.
pub async fn read_back(server: &Server, metric: &str) -> Vec<(i64, serde_json::Value)> {
    let query = serde_json::json!({
        "start_absolute": 0,
        "metrics": [{ "name": metric }],
    });
    let answer = post(server, "/api/v1/datapoints/query", query.to_string()).await;
    assert_eq!(answer.status, 200, "query failed: {}", answer.text());
    let v = answer.json();
    let mut points = Vec::new();
    for result in v["queries"][0]["results"].as_array().expect("results") {
        for pair in result["values"].as_array().expect("values") {
            points.push((pair[0].as_i64().expect("timestamp"), pair[1].clone()));
        }
    }
    points.sort_by_key(|p| p.0);
    points
}

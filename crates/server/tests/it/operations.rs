//! Running the server in production (issue 22): HTTPS with a generated certificate and its
//! reload on SIGHUP without dropping connections, `[auth]` reloaded on SIGHUP, and the caps
//! on concurrent HTTP and telnet connections.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{client, get, send, Server};

/// A self-signed certificate for `localhost` written as PEM files; its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().clone()
}

/// A TLS client trusting `roots`.
fn connector(roots: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(server: &Server, roots: &[CertificateDer<'static>]) -> Tls {
    let tcp = TcpStream::connect(server.http).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector(roots).connect(name, tcp).await.unwrap()
}

/// One keep-alive `GET /api/v1/version` on `stream`; the status line.
async fn version(stream: &mut Tls) -> String {
    stream
        .write_all(b"GET /api/v1/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // TLS streams buffer records until flushed.
    stream.flush().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let complete = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        text.contains("\r\n\r\n") && text.trim_end().ends_with('}')
    };
    while !complete(&got) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no full answer: {:?}", String::from_utf8_lossy(&got)))
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn hangup(server: &Server) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn peer_cert(stream: &Tls) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn https_serves_with_its_certificate_and_sighup_swaps_it_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let env = [
        ("KAIROSDB_TLS_CERT_FILE", dir.path().join("tls.crt")),
        ("KAIROSDB_TLS_KEY_FILE", dir.path().join("tls.key")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let server = Server::fresh(&env);
    let mut old = connect(&server, std::slice::from_ref(&first)).await;
    assert_eq!(version(&mut old).await, "HTTP/1.1 200 OK");
    assert_eq!(peer_cert(&old), first);
    // Plain HTTP on the TLS port gets no answer.
    let plain = client().get(server.url("/api/v1/version")).send().await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);

    let second = write_cert(dir.path());
    hangup(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let stream = TcpStream::connect(server.http).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let both = connector(&[first.clone(), second.clone()]);
        let s = both.connect(name, stream).await.unwrap();
        if peer_cert(&s) == second {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut fresh = fresh;
    assert_eq!(version(&mut fresh).await, "HTTP/1.1 200 OK");
    // The connection opened before the reload is still served.
    assert_eq!(version(&mut old).await, "HTTP/1.1 200 OK");
    // A reload whose files no longer load keeps the certificate in force.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    hangup(&server);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = connect(&server, std::slice::from_ref(&second)).await;
    assert_eq!(version(&mut again).await, "HTTP/1.1 200 OK");
    assert!(
        server.log_text().contains("reload refused"),
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn sighup_reloads_tokens_from_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kairosdb.toml");
    let token_table = |hash: &str| {
        format!(
            "auth_enabled = true\n[[auth.tokens]]\nname = \"t\"\ntoken_hash = \"{hash}\"\nscopes = [\"read\"]\n"
        )
    };
    let hash = |token: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(crate::harness::BIN)
            .args(["hash-secret", "--token"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(token.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    std::fs::write(&file, token_table(&hash("first-token-0123456789"))).unwrap();
    let server = Server::fresh(&[("KAIROSDB_CONFIG", file.to_str().unwrap())]);
    let ask = |token: &'static str| {
        send(
            client()
                .get(server.url("/api/v1/metricnames"))
                .bearer_auth(token),
        )
    };
    assert_eq!(ask("first-token-0123456789").await.status, 200);
    std::fs::write(&file, token_table(&hash("second-token-0123456789"))).unwrap();
    hangup(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask("second-token-0123456789").await.status != 200 {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ask("first-token-0123456789").await.status, 401);
}

#[tokio::test]
async fn connections_past_the_caps_are_refused_clearly_and_counted() {
    let server = Server::fresh(&[
        ("KAIROSDB_HTTP_MAX_CONNECTIONS", "3"),
        ("KAIROSDB_TELNET_MAX_CONNECTIONS", "2"),
    ]);
    // The harness's client keeps no connection open between requests here; hold three.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.http).await.unwrap();
        s.write_all(b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        held.push(s);
    }
    let mut fourth = TcpStream::connect(server.http).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), fourth.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("http_max_connections"), "{answer}");
    drop(held);

    let _t1 = TcpStream::connect(server.telnet).await.unwrap();
    let _t2 = TcpStream::connect(server.telnet).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t3 = TcpStream::connect(server.telnet).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), t3.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the third telnet connection is closed: {closed:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = get(&server, "/api/v1/metrics").await.json();
        if m["kairosdb_http_refused_connections_total"] == 1
            && m["kairosdb_telnet_connections_over_limit_total"] == 1
        {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

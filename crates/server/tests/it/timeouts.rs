//! HTTP connection lifetimes of the real binary: `http_idle_timeout_secs` closes a
//! connection that sent half a header or sits idle after a response, and SIGTERM still
//! lets a request in flight finish before the process exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{read_back, Server};

const IDLE: [(&str, &str); 1] = [("KAIROSDB_HTTP_IDLE_TIMEOUT_SECS", "1")];

/// Reads until the server closes the connection (at most 20 s); returns the bytes read.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the server did not close the connection ({e}); read {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
    out
}

#[test]
fn half_a_header_and_an_idle_connection_are_closed_after_the_idle_timeout() {
    let server = Server::fresh(&IDLE);

    let mut half = TcpStream::connect(server.http).unwrap();
    let sent = Instant::now();
    half.write_all(b"POST /api/v1/datapoints HTTP/1.1\r\nHost: x\r\nContent-")
        .unwrap();
    let answer = read_until_closed(&mut half);
    let waited = sent.elapsed();
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );

    let mut idle = TcpStream::connect(server.http).unwrap();
    idle.write_all(b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let sent = Instant::now();
    let answer = String::from_utf8(read_until_closed(&mut idle)).unwrap();
    let waited = sent.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("KairosDB"), "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &IDLE);
    let body =
        json!([{ "name": "drained", "datapoints": [[1000, 7]], "tags": { "h": "a" } }]).to_string();

    // `Expect: 100-continue`: the server answers `100 Continue` when the handler starts
    // reading the body, so the request is provably in flight before SIGTERM.
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/v1/datapoints HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    server.send_sigterm();
    // The idle timeout (1 s) does not apply to a request in flight, nor does shutdown end it.
    std::thread::sleep(Duration::from_millis(1500));
    stream.write_all(body.as_bytes()).unwrap();
    let answer = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    let server = Server::start(&data, &[]);
    assert_eq!(read_back(&server, "drained").await, vec![(1000, json!(7))]);
}

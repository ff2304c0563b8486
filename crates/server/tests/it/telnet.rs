//! The telnet listener over raw sockets: commands, bad input, many connections, idle close.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{get, read_back, Server};

#[tokio::test]
async fn put_putm_puts_and_version() {
    let server = Server::fresh(&[]);
    let mut t = server.telnet();
    t.send(b"put t.sec 1349109376 42 host=a\n");
    // collectd write_tsdb style: \r\n and doubled spaces.
    t.send(b"putm t.ms  1349109376001 1.5  host=a\r\n");
    t.send(b"puts t.str 1349109376002 hello host=a\n");
    // No tags: KairosDB adds add=tag (spec §3.2).
    t.send(b"putm t.notags 1349109376003 7\n");
    t.send(b"\n");
    let version = t.version();
    assert!(version.starts_with("KairosDB "), "{version:?}");

    assert_eq!(
        read_back(&server, "t.sec").await,
        vec![(1349109376000, json!(42))]
    );
    assert_eq!(
        read_back(&server, "t.ms").await,
        vec![(1349109376001, json!(1.5))]
    );
    assert_eq!(
        read_back(&server, "t.str").await,
        vec![(1349109376002, json!("hello"))]
    );
    assert_eq!(
        read_back(&server, "t.notags").await,
        vec![(1349109376003, json!(7))]
    );
    let names = get(&server, "/api/v1/tagnames").await.json();
    assert!(
        names["results"].as_array().unwrap().contains(&json!("add")),
        "{names}"
    );
}

#[tokio::test]
async fn bad_lines_are_counted_and_the_connection_survives() {
    let mut server = Server::fresh(&[]);
    let mut t = server.telnet();
    t.send(b"putm good 1000 1 h=a\n");
    t.send(b"\x00\x01\x02\xff\xfe binary garbage\n");
    t.send(b"frobnicate this\n");
    t.send(b"putm bad.ts notanumber 1 h=a\n");
    // A line over the 1024-byte limit is dropped whole (spec §3.1) ...
    let long = format!("putm too.long 1000 1 h={}\n", "x".repeat(4096));
    t.send(long.as_bytes());
    // ... and binary noise without any newline for a while.
    t.send(&[0xAAu8; 10_000]);
    t.send(b"\n");
    t.send(b"putm good 2000 2 h=a\n");
    assert!(t.version().starts_with("KairosDB "));

    assert_eq!(
        read_back(&server, "good").await,
        vec![(1000, json!(1)), (2000, json!(2))]
    );
    assert!(read_back(&server, "too.long").await.is_empty());
    let figures = get(&server, "/api/v1/metrics").await.json();
    let bad = figures["kairosdb_telnet_bad_lines_total"].as_u64().unwrap();
    assert!(bad >= 5, "bad lines counted: {bad}");
    assert!(server.is_running());
    assert_eq!(get(&server, "/api/v1/version").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let server = Server::fresh(&[]);
    let connections = 64;
    let lines = 50;
    let addr = server.telnet;
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            tokio::task::spawn_blocking(move || {
                let stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut t = crate::harness::Telnet { stream };
                let mut text = String::new();
                for i in 0..lines {
                    text.push_str(&format!("putm many {} {i} conn={c}\n", 1000 + i));
                }
                t.send(text.as_bytes());
                assert!(t.version().starts_with("KairosDB "));
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let points = read_back(&server, "many").await;
    assert_eq!(points.len(), connections * lines);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = Server::fresh(&[("KAIROSDB_TELNET_IDLE_TIMEOUT_SECS", "1")]);
    let mut t = server.telnet();
    t.send(b"putm idle 1000 1 h=a\n");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = t.stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the server to close the idle connection");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Lines sent before the idle close were written, and nothing is left open.
    assert_eq!(read_back(&server, "idle").await, vec![(1000, json!(1))]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open =
            get(&server, "/api/v1/metrics").await.json()["kairosdb_telnet_connections"].clone();
        if open == json!(0) {
            break;
        }
        assert!(Instant::now() < deadline, "connections still open: {open}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn last_line_without_newline_is_processed_at_close() {
    let server = Server::fresh(&[]);
    {
        let mut t = server.telnet();
        t.send(b"putm eof.line 1000 1 h=a");
        t.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        t.stream.read_to_end(&mut rest).unwrap();
    }
    // The server wrote the line before closing its side.
    assert_eq!(read_back(&server, "eof.line").await, vec![(1000, json!(1))]);
}

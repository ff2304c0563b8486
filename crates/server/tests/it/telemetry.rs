//! The telemetry API's own listener in a real process: off unless configured, and ids
//! that survive a restart, moved records included.

use std::time::Duration;

use crate::harness::{client, get, send, Server};

const ON: (&str, &str) = ("KAIROSDB_TELEMETRY_BIND_ADDRESS", "127.0.0.1:0");

fn url(server: &Server, path: &str) -> String {
    format!(
        "http://{}{path}",
        server.telemetry.expect("telemetry listener")
    )
}

#[tokio::test]
async fn record_ids_survive_a_restart_and_the_listener_is_off_unless_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plain = Server::start(&data, &[]);
    assert_eq!(plain.telemetry, None, "off by default");
    plain.terminate(Duration::from_secs(10));

    let server = Server::start(&data, &[ON]);
    let body = r#"{"name":"deploys","tags":["service:api","prod"],"value":1,"timestamp":"2024-05-01T12:00:00Z"}"#;
    let made = send(client().post(url(&server, "/metrics")).body(body)).await;
    assert_eq!(made.status, 201, "{}", made.text());
    let id = made.json()["id"].as_str().unwrap().to_owned();
    let other = r#"{"name":"deploys","tags":["service:web"],"value":2,"timestamp":1714564800000}"#;
    let moved = send(client().post(url(&server, "/metrics")).body(other)).await;
    let moved_id = moved.json()["id"].as_str().unwrap().to_owned();
    let answer = send(
        client()
            .put(url(&server, &format!("/metrics/{moved_id}")))
            .body(r#"{"timestamp":1714568400000}"#),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The main listener's /metrics is still Prometheus.
    assert!(get(&server, "/metrics").await.text().contains("kairosdb_"));
    server.terminate(Duration::from_secs(10));

    let server = Server::start(&data, &[ON]);
    let again = send(client().get(url(&server, &format!("/metrics/{id}")))).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), made.json());
    let again = send(client().get(url(&server, &format!("/metrics/{moved_id}")))).await;
    assert_eq!(
        again.json()["timestamp"],
        1_714_568_400_000i64,
        "{}",
        again.text()
    );
    let listed = send(client().get(url(&server, "/metrics?name=deploys&sort=timestamp"))).await;
    let json = listed.json();
    let firsts: Vec<String> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(firsts, [id, moved_id], "{}", listed.text());
    server.terminate(Duration::from_secs(10));
}

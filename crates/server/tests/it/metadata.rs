//! The metadata API (`/api/v1/metadata`, spec §1.13) on the embedded engine, end to end:
//! every endpoint, the reserved `_` services, `startsWith`, the text/plain variant, the
//! error bodies, no server-type gating, and values surviving a restart and `kill -9`.

use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::harness::{client, send, Answer, Server};

async fn get(server: &Server, path: &str) -> Answer {
    send(client().get(server.url(path))).await
}

async fn get_accept(server: &Server, path: &str, accept: &str) -> Answer {
    send(client().get(server.url(path)).header(ACCEPT, accept)).await
}

async fn set(server: &Server, path: &str, value: &str) -> Answer {
    send(client().post(server.url(path)).body(value.to_string())).await
}

async fn delete(server: &Server, path: &str) -> Answer {
    send(client().delete(server.url(path))).await
}

fn content_type(a: &Answer) -> String {
    a.headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn set_get_list_delete() {
    let server = Server::fresh(&[]);
    let m = "/api/v1/metadata";
    for (k, v) in [
        ("owner", "bob"),
        ("unit", "ms"),
        ("description", "{\"x\": 1}"),
    ] {
        let a = set(&server, &format!("{m}/Metric Service/cpu.load/{k}"), v).await;
        assert_eq!(a.status, 204, "{}", a.text());
        assert!(a.body.is_empty());
    }
    let a = set(
        &server,
        &format!("{m}/Metric Service/mem.used/owner"),
        "eve",
    )
    .await;
    assert_eq!(a.status, 204);

    // The raw value, not JSON-quoted, under the JSON content type.
    let a = get(&server, &format!("{m}/Metric Service/cpu.load/description")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "{\"x\": 1}");
    assert_eq!(content_type(&a), "application/json; charset=UTF-8");
    let a = get(&server, &format!("{m}/Metric%20Service/cpu.load/owner")).await;
    assert_eq!(a.text(), "bob");

    // Overwrite.
    set(
        &server,
        &format!("{m}/Metric Service/cpu.load/owner"),
        "alice",
    )
    .await;
    assert_eq!(
        get(&server, &format!("{m}/Metric Service/cpu.load/owner"))
            .await
            .text(),
        "alice"
    );

    let a = get(&server, &format!("{m}/Metric Service")).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        serde_json::json!({"results": ["cpu.load", "mem.used"]})
    );
    let a = get(&server, &format!("{m}/Metric Service/cpu.load")).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        serde_json::json!({"results": ["description", "owner", "unit"]})
    );
    let a = get(
        &server,
        &format!("{m}/Metric Service/cpu.load?startsWith=u"),
    )
    .await;
    assert_eq!(a.json(), serde_json::json!({"results": ["unit"]}));
    let a = get(&server, &format!("{m}/Metric Service/cpu.load?startsWith=")).await;
    assert_eq!(
        a.json()["results"].as_array().unwrap().len(),
        3,
        "empty = no filter"
    );
    let a = get(
        &server,
        &format!("{m}/Metric Service/cpu.load?startsWith=zz"),
    )
    .await;
    assert_eq!(a.json(), serde_json::json!({"results": []}));
    let a = get(&server, &format!("{m}/Nothing Here")).await;
    assert_eq!(a.json(), serde_json::json!({"results": []}));

    // Delete: 204, also for a key that never existed; the service key stays listed.
    for k in ["owner", "unit", "description", "never"] {
        let a = delete(&server, &format!("{m}/Metric Service/cpu.load/{k}")).await;
        assert_eq!(a.status, 204, "{}", a.text());
    }
    let a = get(&server, &format!("{m}/Metric Service/cpu.load/owner")).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.errors(), ["Key not found"]);
    let a = get(&server, &format!("{m}/Metric Service/cpu.load")).await;
    assert_eq!(a.json(), serde_json::json!({"results": []}));
    let a = get(&server, &format!("{m}/Metric Service")).await;
    assert_eq!(
        a.json(),
        serde_json::json!({"results": ["cpu.load", "mem.used"]})
    );
}

#[tokio::test]
async fn text_plain_variant_and_missing_keys() {
    let server = Server::fresh(&[]);
    let p = "/api/v1/metadata/svc/sk/k";
    set(&server, p, "plain value").await;
    let a = get_accept(&server, p, "text/plain").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "plain value");
    assert_eq!(content_type(&a), "text/plain; charset=UTF-8");
    let a = get_accept(&server, p, "application/json").await;
    assert_eq!(content_type(&a), "application/json; charset=UTF-8");
    assert_eq!(a.text(), "plain value");

    let missing = "/api/v1/metadata/svc/sk/missing";
    let a = get_accept(&server, missing, "text/plain").await;
    assert_eq!(a.status, 404);
    assert!(a.body.is_empty(), "{}", a.text());
    let a = get(&server, missing).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.errors(), ["Key not found"]);

    // An empty body stores an empty value.
    set(&server, "/api/v1/metadata/svc/sk/empty", "").await;
    let a = get(&server, "/api/v1/metadata/svc/sk/empty").await;
    assert_eq!((a.status, a.text().as_str()), (200, ""));
}

#[tokio::test]
async fn reserved_services_are_401_with_an_empty_body() {
    let server = Server::fresh(&[]);
    let answers = [
        get(&server, "/api/v1/metadata/_Rollups").await,
        get(&server, "/api/v1/metadata/_Rollups/sk").await,
        get(&server, "/api/v1/metadata/_Rollups/sk/k").await,
        get_accept(&server, "/api/v1/metadata/_x/sk/k", "text/plain").await,
        set(&server, "/api/v1/metadata/_Rollups/sk/k", "v").await,
        delete(&server, "/api/v1/metadata/_Rollups/sk/k").await,
    ];
    for a in answers {
        assert_eq!(a.status, 401, "{}", a.text());
        assert!(a.body.is_empty(), "{}", a.text());
    }
    // Nothing was stored under the reserved name.
    let a = get(&server, "/api/v1/metadata/Rollups/sk").await;
    assert_eq!(a.json(), serde_json::json!({"results": []}));
}

/// Metadata is not an INGEST, QUERY or DELETE class (spec §1.1.3): never 403.
#[tokio::test]
async fn not_gated_by_server_type() {
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "INGEST")]);
    let a = set(&server, "/api/v1/metadata/svc/sk/k", "v").await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert_eq!(get(&server, "/api/v1/metadata/svc/sk/k").await.text(), "v");
    assert_eq!(
        delete(&server, "/api/v1/metadata/svc/sk/k").await.status,
        204
    );
}

/// Acknowledged metadata survives a graceful restart and `kill -9` (each set and delete
/// is fsynced before its 204).
#[tokio::test]
async fn survives_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    set(&server, "/api/v1/metadata/svc/a/k1", "v1").await;
    set(&server, "/api/v1/metadata/svc/a/k2", "v2").await;
    set(&server, "/api/v1/metadata/svc/b/k", "gone").await;
    delete(&server, "/api/v1/metadata/svc/b/k").await;
    let status = server.terminate(std::time::Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");

    let server = Server::start(&data, &[]);
    assert_eq!(get(&server, "/api/v1/metadata/svc/a/k1").await.text(), "v1");
    assert_eq!(get(&server, "/api/v1/metadata/svc/b/k").await.status, 404);
    assert_eq!(
        get(&server, "/api/v1/metadata/svc").await.json(),
        serde_json::json!({"results": ["a", "b"]})
    );
    set(&server, "/api/v1/metadata/svc/a/k3", "after restart").await;
    delete(&server, "/api/v1/metadata/svc/a/k2").await;
    server.kill9();

    let server = Server::start(&data, &[]);
    assert_eq!(
        get(&server, "/api/v1/metadata/svc/a/k3").await.text(),
        "after restart"
    );
    assert_eq!(
        get(&server, "/api/v1/metadata/svc/a").await.json(),
        serde_json::json!({"results": ["k1", "k3"]})
    );
}

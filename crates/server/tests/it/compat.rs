//! Endpoints and settings from issue 18's compatibility matrix that no other module
//! covers: `GET /api/v1/datapoints/index` (spec §1.5); `PUT /api/v1/datapoints` (+ `/gzip`)
//! behaving as POST and `DELETE /api/v1/datapoints/query` as `POST /datapoints/delete`
//! (both additions: KairosDB 1.3 answers 405); `KAIROSDB_CACHE_MAX_SIZE_MB` as another
//! name of `query_cache_mb`.

use std::io::Write;

use serde_json::json;

use crate::harness::{client, command, get, post, read_back, send, Server};

const INDEX: &str = "/api/v1/datapoints/index?start_absolute=0&end_absolute=1000&metric=m";

#[tokio::test]
async fn datapoints_index_is_a_204_on_the_embedded_engine_and_needs_its_three_parameters() {
    let server = Server::fresh(&[]);
    let answer = get(&server, INDEX).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    // KairosDB: a missing parameter is a NullPointerException (500); here the client's
    // mistake, a 400 ...
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=0&metric=m",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(
        answer.errors(),
        ["query parameter end_absolute is required"]
    );
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=0&end_absolute=1",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    // ... and so is a parameter that is not a long (JAX-RS: 404).
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=x&end_absolute=1&metric=m",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
}

#[tokio::test]
async fn datapoints_index_is_ingest_gated() {
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "QUERY")]);
    let answer = get(&server, INDEX).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
}

#[tokio::test]
async fn datapoints_index_on_an_unreachable_cassandra_is_an_error_not_a_204() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cassandra = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let server = Server::fresh(&[
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", cassandra.as_str()),
    ]);
    let answer = get(&server, INDEX).await;
    assert!(answer.status >= 500, "{} {}", answer.status, answer.text());
    assert!(!answer.errors().is_empty());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn put_datapoints_stores_and_validates_exactly_as_post() {
    let server = Server::fresh(&[]);
    let body =
        json!([{ "name": "put.m", "tags": { "h": "a" }, "datapoints": [[1000, 1], [2000, 2.5]] }]);
    let put = |path: &str, body: Vec<u8>| send(client().put(server.url(path)).body(body));
    let answer = put("/api/v1/datapoints", body.to_string().into_bytes()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let gz = json!([{ "name": "put.m", "tags": { "h": "a" }, "datapoints": [[3000, 3]] }]);
    let answer = put("/api/v1/datapoints/gzip", gzip(gz.to_string().as_bytes())).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert_eq!(
        read_back(&server, "put.m").await,
        [(1000, json!(1)), (2000, json!(2.5)), (3000, json!(3))]
    );

    let invalid = json!([{ "name": "", "datapoints": [[1000, 1]] }]).to_string();
    let by_put = put("/api/v1/datapoints", invalid.clone().into_bytes()).await;
    let by_post = post(&server, "/api/v1/datapoints", invalid).await;
    assert_eq!(by_put.status, 400);
    assert_eq!(
        (by_put.status, by_put.text()),
        (by_post.status, by_post.text())
    );
}

#[tokio::test]
async fn delete_datapoints_query_deletes_what_its_body_selects_as_post_delete_does() {
    let server = Server::fresh(&[]);
    let body = json!([
        { "name": "del.q", "tags": { "h": "a" }, "datapoints": [[1000, 1], [2000, 2], [3000, 3]] },
        { "name": "del.q", "tags": { "h": "b" }, "datapoints": [[1000, 10]] },
    ]);
    let answer = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let query = json!({
        "start_absolute": 1500, "end_absolute": 3000,
        "metrics": [{ "name": "del.q", "tags": { "h": ["a"] } }],
    });
    let url = server.url("/api/v1/datapoints/query");
    let answer = send(client().delete(&url).body(query.to_string())).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert_eq!(
        read_back(&server, "del.q").await,
        [(1000, json!(1)), (1000, json!(10))]
    );

    let bad = json!({ "metrics": [{ "name": "del.q" }] }).to_string();
    let by_delete = send(client().delete(&url).body(bad.clone())).await;
    let by_post = post(&server, "/api/v1/datapoints/delete", bad).await;
    assert_eq!(by_delete.status, 400, "{}", by_delete.text());
    assert_eq!(
        (by_delete.status, by_delete.text()),
        (by_post.status, by_post.text())
    );
}

#[tokio::test]
async fn delete_datapoints_query_is_delete_gated_while_querying_stays_query_gated() {
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "QUERY")]);
    let url = server.url("/api/v1/datapoints/query");
    let query = json!({ "start_absolute": 0, "metrics": [{ "name": "m" }] }).to_string();
    let answer = send(client().delete(&url).body(query.clone())).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert!(
        answer.text().contains("DELETE API methods are disabled"),
        "{}",
        answer.text()
    );
    assert_eq!(
        post(&server, "/api/v1/datapoints/query", query)
            .await
            .status,
        200
    );
}

#[test]
fn kairosdb_cache_max_size_mb_sets_query_cache_mb() {
    let check = |env: &[(&str, &str)]| {
        let mut cmd = command();
        cmd.arg("--check-config");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run kairosdb --check-config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("query_cache_mb = "));
        line.unwrap_or_else(|| panic!("no query_cache_mb in\n{text}"))
            .to_owned()
    };
    assert_eq!(check(&[]), "query_cache_mb = 64");
    assert_eq!(
        check(&[("KAIROSDB_CACHE_MAX_SIZE_MB", "5")]),
        "query_cache_mb = 5"
    );
    assert_eq!(
        check(&[
            ("KAIROSDB_CACHE_MAX_SIZE_MB", "5"),
            ("KAIROSDB_QUERY_CACHE_MB", "6")
        ]),
        "query_cache_mb = 6"
    );
}

//! Endpoints from KairosDB's compatibility matrix that no other module covers:
//! `GET /api/v1/datapoints/index` (spec §1.5).

use crate::harness::{get, Server};

const INDEX: &str = "/api/v1/datapoints/index?start_absolute=0&end_absolute=1000&metric=m";

#[tokio::test]
async fn datapoints_index_is_a_204_on_the_embedded_engine_and_needs_its_three_parameters() {
    let server = Server::fresh(&[]);
    let answer = get(&server, INDEX).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    // KairosDB: a missing parameter is a NullPointerException (500) ...
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=0&metric=m",
    )
    .await;
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert_eq!(
        answer.errors(),
        ["query parameter end_absolute is required"]
    );
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=0&end_absolute=1",
    )
    .await;
    assert_eq!(answer.status, 500, "{}", answer.text());
    // ... and a parameter that is not a long is JAX-RS's 404.
    let answer = get(
        &server,
        "/api/v1/datapoints/index?start_absolute=x&end_absolute=1&metric=m",
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
}

#[tokio::test]
async fn datapoints_index_is_ingest_gated() {
    let server = Server::fresh(&[("KAIROSDB_SERVER_TYPE", "QUERY")]);
    let answer = get(&server, INDEX).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
}

#[tokio::test]
async fn datapoints_index_on_cassandra_is_a_501_until_reindexing_is_implemented() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cassandra = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let server = Server::fresh(&[
        ("KAIROSDB_DATASTORE", "cassandra"),
        ("KAIROSDB_CASSANDRA_CONTACT_POINTS", cassandra.as_str()),
    ]);
    let answer = get(&server, INDEX).await;
    assert_eq!(answer.status, 501, "{}", answer.text());
    assert_eq!(
        answer.errors(),
        ["re-indexing tag_indexed_row_keys is not implemented yet in kairosdb-rs"]
    );
}

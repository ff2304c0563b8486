//! The HTTP surface beyond the fixtures: gzip both ways, body limits and gzip bombs, broken
//! JSON, partial failure, CORS, names and tags, version, health, metrics, 404/405.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

use crate::harness::{client, get, post, raw_client, read_back, send, Answer, Server};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut d = flate2::write::GzDecoder::new(Vec::new());
    d.write_all(data).unwrap();
    d.finish().unwrap()
}

/// Posts `body` to `/api/v1/datapoints` as `Content-Encoding: gzip` (gzipped or not).
async fn post_gzip_encoded(server: &Server, body: impl Into<reqwest::Body>) -> Answer {
    send(
        client()
            .post(server.url("/api/v1/datapoints"))
            .header("Content-Encoding", "gzip")
            .body(body),
    )
    .await
}

fn metric_body(name: &str, ts: i64, value: i64) -> String {
    json!([{ "name": name, "datapoints": [[ts, value]], "tags": { "host": "a" } }]).to_string()
}

#[tokio::test]
async fn gzip_ingest_in_all_three_forms_and_gzip_responses() {
    let server = Server::fresh(&[]);
    let c = client();
    let a = send(
        c.post(server.url("/api/v1/datapoints"))
            .header("Content-Encoding", "gzip")
            .header("Content-Type", "application/json")
            .body(gzip(metric_body("gz.encoding", 1000, 1).as_bytes())),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    let a = send(
        c.post(server.url("/api/v1/datapoints"))
            .header("Content-Type", "application/gzip")
            .body(gzip(metric_body("gz.type", 1000, 2).as_bytes())),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    let a = send(
        c.post(server.url("/api/v1/datapoints/gzip"))
            .body(gzip(metric_body("gz.alias", 1000, 3).as_bytes())),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    for (metric, value) in [("gz.encoding", 1), ("gz.type", 2), ("gz.alias", 3)] {
        assert_eq!(read_back(&server, metric).await, vec![(1000, json!(value))]);
    }
    // Bad gzip: 400 with an errors body.
    let a = post_gzip_encoded(&server, "this is not gzip").await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.errors().len(), 1);

    // Responses are gzipped for clients that ask.
    let query = json!({"start_absolute": 0, "metrics": [{"name": "gz.alias"}]}).to_string();
    let a = send(
        raw_client()
            .post(server.url("/api/v1/datapoints/query"))
            .header("Accept-Encoding", "gzip")
            .body(query.clone()),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-encoding"], "gzip");
    let plain: serde_json::Value = serde_json::from_slice(&gunzip(&a.body)).unwrap();
    assert_eq!(
        plain["queries"][0]["results"][0]["values"],
        json!([[1000, 3]])
    );
    // ...and not for clients that do not.
    let a = send(
        raw_client()
            .post(server.url("/api/v1/datapoints/query"))
            .body(query),
    )
    .await;
    assert!(!a.headers.contains_key("content-encoding"));
    assert_eq!(
        a.json()["queries"][0]["results"][0]["values"],
        json!([[1000, 3]])
    );
}

#[tokio::test]
async fn body_limit_applies_after_decompression() {
    let server = Server::fresh(&[("KAIROSDB_MAX_REQUEST_BYTES", "100000")]);
    // Repetitive, so it compresses far below the limit.
    let points: Vec<_> = (0..20_000).map(|_| json!([1000, 12345])).collect();
    let big = json!([{ "name": "big", "datapoints": points, "tags": { "h": "a" } }]).to_string();
    assert!(big.len() > 100_000);
    let a = post(&server, "/api/v1/datapoints", big.clone()).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.errors()[0].contains("100000"), "{}", a.text());
    let compressed = gzip(big.as_bytes());
    assert!(compressed.len() < 100_000);
    let a = post_gzip_encoded(&server, compressed).await;
    assert_eq!(a.status, 413, "{}", a.text());
    // The connection and server are fine afterwards.
    let a = post(&server, "/api/v1/datapoints", metric_body("small", 1, 1)).await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert!(read_back(&server, "big").await.is_empty());
}

#[tokio::test]
async fn gzip_bomb_is_refused_without_exhausting_memory() {
    let mut server = Server::fresh(&[("KAIROSDB_MAX_REQUEST_BYTES", "1048576")]);
    // 512 MiB of zeros in ~0.5 MiB of gzip.
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let a = post_gzip_encoded(&server, bomb).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(server.is_running());
    let v = get(&server, "/api/v1/version").await;
    assert_eq!(v.status, 200);
    let figures = get(&server, "/api/v1/metrics").await.json();
    let rss = figures["kairosdb_memory_usage_bytes"].as_f64().unwrap();
    assert!(rss < 256.0 * 1024.0 * 1024.0, "RSS {rss} after a gzip bomb");
}

#[tokio::test]
async fn broken_json_is_400_with_errors_and_good_metrics_are_still_stored() {
    let server = Server::fresh(&[]);
    for body in [
        "[{\"name\":\"trunc\",\"datapoints\":[[1,2]".to_string(),
        "[".repeat(100_000),
        "{\"name\":".to_string() + &"{\"a\":".repeat(50_000),
        String::new(),
        "\u{0}\u{1}\u{2}garbage".to_string(),
    ] {
        let a = post(&server, "/api/v1/datapoints", body.clone()).await;
        assert_eq!(a.status, 400, "{:.60}: {}", body, a.text());
        assert!(!a.errors().is_empty());
    }
    // Spec §2.6: the valid metric object is stored although the request answers 400.
    let mixed = json!([
        { "name": "good", "datapoints": [[5, 50]], "tags": { "h": "a" } },
        { "name": "", "datapoints": [[5, 50]], "tags": { "h": "a" } },
    ]);
    let a = post(&server, "/api/v1/datapoints", mixed.to_string()).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.errors(), vec!["metric[1].name may not be empty."]);
    assert_eq!(read_back(&server, "good").await, vec![(5, json!(50))]);
    assert_eq!(get(&server, "/api/v1/version").await.status, 200);
}

/// Issue 17: integers beyond a 64-bit long are stored as the double they denote (never
/// wrapped, as KairosDB does), or refused with a 400 naming metric and entry when that
/// double is not finite; integers that fit stay longs. HTTP (both forms, gzip) and telnet.
#[tokio::test]
async fn integers_beyond_a_long_are_stored_as_doubles_or_refused() {
    let server = Server::fresh(&[]);
    let dp = r#"[{"name":"big.dp","tags":{"h":"a"},"datapoints":[[1,12345678901234567890],[2,1e19],[3,-1e19],[4,9223372036854775807],[5,-9223372036854775808],[6,-0],[7,1e3]]},
        {"name":"big.single","tags":{"h":"a"},"timestamp":1,"value":12345678901234567890}]"#;
    let a = post(&server, "/api/v1/datapoints", dp).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let gz = r#"{"name":"big.gz","tags":{"h":"a"},"datapoints":[[1,1e19]]}"#;
    let a = post_gzip_encoded(&server, gzip(gz.as_bytes())).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let mut telnet = server.telnet();
    telnet.send(b"putm big.telnet 5 12345678901234567890 h=a\n");
    assert!(telnet.version().starts_with("KairosDB"));

    let bad = r#"[{"name":"big.bad","tags":{"h":"a"},"datapoints":[[1,1],[2,1e999999],[3,1e400],[4,-1e400]]},
        {"name":"big.bad.single","tags":{"h":"a"},"timestamp":1,"value":1e400}]"#;
    let a = post(&server, "/api/v1/datapoints", bad).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let why = "is out of range: beyond a 64-bit long and not a finite double.";
    assert_eq!(
        a.errors(),
        [
            format!("metric[0](name=big.bad).datapoints[1].value 1e999999 {why}"),
            format!("metric[0](name=big.bad).datapoints[2].value 1e400 {why}"),
            format!("metric[0](name=big.bad).datapoints[3].value -1e400 {why}"),
            format!("metric[1](name=big.bad.single).value 1e400 {why}"),
        ]
    );
    let a = post(&server, "/api/v1/datapoints/gzip", gzip(bad.as_bytes())).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.errors().len(), 4, "{:?}", a.errors());

    let doubles = |points: Vec<(i64, serde_json::Value)>| -> Vec<(i64, f64)> {
        points
            .into_iter()
            .map(|(t, v)| {
                assert!(v.as_i64().is_none(), "{t}: {v} is not a double");
                (t, v.as_f64().expect("a number"))
            })
            .collect()
    };
    let points = read_back(&server, "big.dp").await;
    assert_eq!(
        doubles(points[..3].to_vec()),
        [(1, 1.2345678901234567e19), (2, 1e19), (3, -1e19)]
    );
    assert_eq!(
        points[3..],
        [
            (4, json!(i64::MAX)),
            (5, json!(i64::MIN)),
            (6, json!(0)),
            (7, json!(1000)),
        ]
    );
    for (metric, ts, v) in [
        ("big.single", 1, 1.2345678901234567e19),
        ("big.gz", 1, 1e19),
        ("big.telnet", 5, 1.2345678901234567e19),
    ] {
        assert_eq!(
            doubles(read_back(&server, metric).await),
            [(ts, v)],
            "{metric}"
        );
    }
    // Only the refused entries are left out (spec §2.6); nothing is stored wrapped.
    assert_eq!(read_back(&server, "big.bad").await, [(1, json!(1))]);
    assert!(read_back(&server, "big.bad.single").await.is_empty());
}

#[tokio::test]
async fn cors_preflight_and_standard_headers() {
    let server = Server::fresh(&[]);
    for path in [
        "/api/v1/version",
        "/api/v1/metricnames",
        "/api/v1/datapoints",
        "/api/v1/datapoints/query",
        "/api/v1/datapoints/query/tags",
        "/api/v1/datapoints/delete",
        "/api/v1/metric/some.name",
        "/api/v1/health/check",
        "/api/v1/health/status",
    ] {
        let a = send(
            client()
                .request(reqwest::Method::OPTIONS, server.url(path))
                .header("Access-Control-Request-Headers", "content-type, x-foo")
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.body.is_empty(), "{path}");
        assert_eq!(a.headers["access-control-allow-origin"], "*", "{path}");
        assert_eq!(
            a.headers["access-control-allow-headers"], "content-type, x-foo",
            "{path}"
        );
        assert_eq!(a.headers["access-control-max-age"], "86400", "{path}");
        assert_eq!(a.headers["access-control-allow_method"], "POST", "{path}");
    }
    // Every answer, success or error, carries the standard headers.
    for a in [
        get(&server, "/api/v1/version").await,
        post(&server, "/api/v1/datapoints", "[").await,
        post(&server, "/api/v1/datapoints", metric_body("m", 1, 1)).await,
    ] {
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(a.headers["pragma"], "no-cache");
        assert_eq!(a.headers["cache-control"], "no-cache");
        assert_eq!(a.headers["expires"], "0");
        assert!(a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }
}

#[tokio::test]
async fn names_tags_version_health_and_metrics() {
    let server = Server::fresh(&[]);
    let body = json!([
        { "name": "sys.cpu", "datapoints": [[1000, 1]], "tags": { "host": "a", "dc": "x" } },
        { "name": "sys.cpu", "datapoints": [[2000, 2]], "tags": { "host": "b", "dc": "x" } },
        { "name": "app.req", "datapoints": [[1000, 3]], "tags": { "host": "a" } },
    ]);
    let a = post(&server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());

    let a = get(&server, "/api/v1/metricnames").await;
    assert_eq!(a.json(), json!({"results": ["app.req", "sys.cpu"]}));
    let a = get(&server, "/api/v1/metricnames?prefix=sys").await;
    assert_eq!(a.json(), json!({"results": ["sys.cpu"]}));
    let a = get(&server, "/api/v1/tagnames").await;
    assert_eq!(a.json(), json!({"results": ["dc", "host"]}));
    let a = get(&server, "/api/v1/tagvalues").await;
    assert_eq!(a.json(), json!({"results": ["a", "b", "x"]}));

    // Grafana's tag lookup: start_absolute 0, answered from the index (spec §1.7).
    let tags_query = json!({"cache_time": 0, "start_absolute": 0,
        "metrics": [{"name": "sys.cpu", "tags": {}}, {"name": "nothing.here"}]});
    let a = post(
        &server,
        "/api/v1/datapoints/query/tags",
        tags_query.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.text(),
        r#"{"queries":[{"results":[{"name":"sys.cpu","tags":{"dc":["x"],"host":["a","b"]},"values":[]}]},{"results":[{"name":"nothing.here","tags":{},"values":[]}]}]}"#
    );
    let filtered =
        json!({"start_absolute": 0, "metrics": [{"name": "sys.cpu", "tags": {"host": "b"}}]});
    let a = post(
        &server,
        "/api/v1/datapoints/query/tags",
        filtered.to_string(),
    )
    .await;
    assert_eq!(
        a.json()["queries"][0]["results"][0]["tags"],
        json!({"dc": ["x"], "host": ["b"]})
    );

    // GET form of the query.
    let q = json!({"start_absolute": 0, "metrics": [{"name": "app.req"}]}).to_string();
    let url = reqwest::Url::parse_with_params(
        &server.url("/api/v1/datapoints/query"),
        &[("query", q.as_str())],
    )
    .unwrap();
    let a = send(client().get(url)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json()["queries"][0]["results"][0]["values"],
        json!([[1000, 3]])
    );

    let a = get(&server, "/api/v1/version").await;
    assert_eq!(a.status, 200);
    assert!(
        a.text().starts_with("{\"version\": \"KairosDB "),
        "{}",
        a.text()
    );
    assert!(a.text().ends_with("\"}\n"));

    let a = get(&server, "/api/v1/health/check").await;
    assert_eq!(a.status, 204);
    let a = get(&server, "/api/v1/health/status").await;
    assert_eq!(
        a.json(),
        json!(["JVM-Thread-Deadlock: OK", "Datastore-Query: OK"])
    );
    for probe in ["/health", "/health/live", "/health/ready"] {
        assert_eq!(get(&server, probe).await.status, 200, "{probe}");
    }

    let a = get(&server, "/metrics").await;
    assert_eq!(a.status, 200);
    let text = a.text();
    for name in [
        "kairosdb_datapoints_ingested_total 3",
        "kairosdb_batches_processed_total",
        "kairosdb_ingestion_errors_total",
        "kairosdb_queue_size",
        "kairosdb_memory_usage_bytes",
        "kairosdb_batch_duration_seconds_bucket",
        "kairosdb_telnet_bad_lines_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    let a = get(&server, "/api/v1/metrics").await;
    assert_eq!(a.json()["kairosdb_datapoints_ingested_total"], json!(3));
    // Embedded mode: acknowledged points are stored, so no backlog once writes returned.
    assert_eq!(a.json()["kairosdb_queue_size"], json!(0));

    // Deleting a metric removes it from the names.
    let a = send(client().delete(server.url("/api/v1/metric/app.req"))).await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert!(read_back(&server, "app.req").await.is_empty());
    let a = get(&server, "/api/v1/metricnames").await;
    assert_eq!(a.json(), json!({"results": ["sys.cpu"]}));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let server = Server::fresh(&[]);
    let a = get(&server, "/api/v1/no/such/thing").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.errors().len(), 1);
    let a = get(&server, "/api/v1/datapoints").await;
    assert_eq!(a.status, 405);
    assert_eq!(a.errors().len(), 1);
    let a = send(client().put(server.url("/api/v1/version"))).await;
    assert_eq!(a.status, 405);
    let a = get(&server, "/api/v1/datapoints/query").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.errors(), vec!["query json must not be null or empty"]);
}

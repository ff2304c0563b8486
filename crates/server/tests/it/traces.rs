//! OpenTelemetry traces (issue 22): the server exports its request and phase spans over
//! OTLP/HTTP to a collector, continuing the caller's `traceparent`. The collector here is
//! an in-test HTTP server that decodes each export with the OpenTelemetry protobuf types.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

use crate::harness::{client, send, Server};

/// One exported span, flattened.
#[derive(Clone, Debug)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    /// `Status.code`: 2 = error.
    status: i32,
    attributes: Vec<KeyValue>,
    service: String,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self.attributes.iter().find(|kv| kv.key == key)?;
        Some(match value.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            Value::BoolValue(b) => b.to_string(),
            Value::DoubleValue(d) => d.to_string(),
            other => format!("{other:?}"),
        })
    }
}

/// An OTLP/HTTP traces receiver on 127.0.0.1; what it received.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                sink.lock().unwrap().extend(flatten(request));
                // An empty ExportTraceServiceResponse.
                Vec::<u8>::new()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Collector { url, spans, task }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans of `trace_id` once `expected` of them have arrived (10 s at most).
    async fn trace(&self, trace_id: &str, expected: usize) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if spans.len() >= expected || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for s in scope.spans {
                out.push(Span {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    status: s.status.map_or(0, |st| st.code),
                    attributes: s.attributes,
                    service: service.clone(),
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random trace id and the caller's span id, and the `traceparent` naming them.
fn caller(sampled: bool) -> (String, String, String) {
    let trace = format!("{:032x}", rand_u128());
    let span = format!("{:016x}", rand_u128() as u64 | 1);
    let flags = if sampled { "01" } else { "00" };
    let header = format!("00-{trace}-{span}-{flags}");
    (trace, span, header)
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    u128::from_le_bytes(bytes) | 1
}

fn traced_server(collector: &Collector, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("KAIROSDB_OTEL_ENABLED", "true"),
        ("KAIROSDB_OTEL_ENDPOINT", collector.url.as_str()),
        ("KAIROSDB_OTEL_SERVICE_NAME", "kairosdb-under-test"),
        // The SDK's batch delay, in ms: export soon.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    Server::fresh(&env)
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {:#?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

async fn post_traced(server: &Server, path: &str, traceparent: &str, body: &str) -> u16 {
    let request = client()
        .post(server.url(path))
        .header("traceparent", traceparent)
        .body(body.to_string());
    send(request).await.status
}

#[tokio::test]
async fn ingest_and_query_continue_the_callers_trace_with_a_span_per_phase() {
    let collector = Collector::start().await;
    let server = traced_server(&collector, &[]);
    let body =
        r#"[{"name":"traced","tags":{"host":"a"},"datapoints":[[1000,1],[2000,2],[3000,3]]}]"#;
    let (ingest_trace, ingest_caller, header) = caller(true);
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints", &header, body).await,
        204
    );
    let (query_trace, query_caller, header) = caller(true);
    let query = r#"{"start_absolute":1,"metrics":[{"name":"traced","aggregators":[{"name":"sum","sampling":{"value":1,"unit":"hours"}}]}]}"#;
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints/query", &header, query).await,
        200
    );

    // The ingest request: a server span under the caller's, its parse and write under it.
    let spans = collector.trace(&ingest_trace, 3).await;
    let request = by_name(&spans, "POST /api/v1/datapoints");
    assert_eq!(request.parent_span_id, ingest_caller);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.service, "kairosdb-under-test");
    assert_eq!(
        request.attribute("http.response.status_code").as_deref(),
        Some("204")
    );
    assert_eq!(
        request.attribute("http.route").as_deref(),
        Some("/api/v1/datapoints")
    );
    let parse = by_name(&spans, "ingest.parse");
    assert_eq!(parse.parent_span_id, request.span_id);
    assert_eq!(parse.attribute("points").as_deref(), Some("3"));
    assert_eq!(parse.attribute("errors").as_deref(), Some("0"));
    let write = by_name(&spans, "storage.write");
    assert_eq!(write.parent_span_id, request.span_id);
    assert_eq!(write.attribute("points").as_deref(), Some("3"));

    // The query: parse, one span per metric query with its read and aggregation, render.
    let spans = collector.trace(&query_trace, 6).await;
    let request = by_name(&spans, "POST /api/v1/datapoints/query");
    assert_eq!(request.parent_span_id, query_caller);
    assert_eq!(
        request.attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    for name in ["query.parse", "query.metric", "query.render"] {
        assert_eq!(
            by_name(&spans, name).parent_span_id,
            request.span_id,
            "{name}"
        );
    }
    let metric = by_name(&spans, "query.metric");
    assert_eq!(metric.attribute("metric").as_deref(), Some("traced"));
    assert_eq!(metric.attribute("sample_size").as_deref(), Some("3"));
    for name in ["storage.read", "query.aggregate"] {
        assert_eq!(
            by_name(&spans, name).parent_span_id,
            metric.span_id,
            "{name}"
        );
    }
    assert_eq!(
        by_name(&spans, "storage.read")
            .attribute("series")
            .as_deref(),
        Some("1")
    );
    // Nothing else in either trace: every span is under its request.
    for span in collector.spans() {
        assert!(
            [&ingest_trace, &query_trace].contains(&&span.trace_id),
            "span outside the callers' traces: {span:?}"
        );
    }
}

#[tokio::test]
async fn a_request_without_traceparent_is_the_root_of_its_own_trace() {
    let collector = Collector::start().await;
    let server = traced_server(&collector, &[]);
    let answer = send(client().post(server.url("/api/v1/datapoints")).body("{")).await;
    assert_eq!(answer.status, 400);
    let deadline = Instant::now() + Duration::from_secs(10);
    let request = loop {
        let spans = collector.spans();
        if let Some(s) = spans.iter().find(|s| s.name == "POST /api/v1/datapoints") {
            break s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no request span: {:#?}",
            names(&spans)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(request.parent_span_id, "", "a root span");
    assert_eq!(
        request.attribute("http.response.status_code").as_deref(),
        Some("400")
    );
    // A client's mistake is not the server's error (5xx is: `otel.rs`'s unit tests).
    assert_ne!(request.status, 2);
}

#[tokio::test]
async fn at_ratio_0_only_callers_that_sampled_are_traced() {
    let collector = Collector::start().await;
    let server = traced_server(&collector, &[("KAIROSDB_OTEL_SAMPLE_RATIO", "0")]);
    let (unsampled, _, header) = caller(false);
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints", &header, "[]").await,
        204
    );
    assert_eq!(
        send(client().get(server.url("/api/v1/version")))
            .await
            .status,
        200
    );
    let (sampled, _, header) = caller(true);
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints", &header, "[]").await,
        204
    );

    let spans = collector.trace(&sampled, 1).await;
    by_name(&spans, "POST /api/v1/datapoints");
    // Exported in order, so by now the earlier requests' spans would be here too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = collector.spans();
    assert!(all.iter().all(|s| s.trace_id == sampled), "{all:#?}");
    assert!(all.iter().all(|s| s.trace_id != unsampled));
}

#[tokio::test]
async fn spans_still_buffered_are_exported_at_shutdown() {
    let collector = Collector::start().await;
    // A batch delay far beyond the test: only the shutdown flush can deliver.
    let server = traced_server(&collector, &[("OTEL_BSP_SCHEDULE_DELAY", "600000")]);
    let (trace, _, header) = caller(true);
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints", &header, "[]").await,
        204
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(collector.spans().is_empty(), "exported before shutdown");
    server.send_sigterm();
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let spans = collector.trace(&trace, 1).await;
    by_name(&spans, "POST /api/v1/datapoints");
}

#[tokio::test]
async fn tracing_is_off_by_default_and_nothing_is_sent() {
    let collector = Collector::start().await;
    // The standard variable alone does not turn tracing on.
    let server = Server::fresh(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let (_, _, header) = caller(true);
    assert_eq!(
        post_traced(&server, "/api/v1/datapoints", &header, "[]").await,
        204
    );
    server.send_sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    assert!(collector.spans().is_empty(), "{:#?}", collector.spans());
}

//! OpenTelemetry traces (issue 22): with `otel_enabled`, every HTTP request is a trace
//! span, and its phases are spans under it, exported over OTLP/HTTP (protobuf) to a
//! collector (`otel_endpoint`, or the standard `OTEL_EXPORTER_OTLP_*` variables).
//!
//! The spans are ordinary `tracing` spans at DEBUG level in the `kairosdb*` targets; the
//! `tracing-opentelemetry` layer built here turns them into OpenTelemetry spans. Where
//! they are opened:
//!
//! | span | where | fields |
//! |---|---|---|
//! | `http.request` (server kind, named `METHOD /route`) | [`trace_request`] | method, route, status; error status on a 5xx |
//! | `ingest.parse` | `http/ingest.rs` | body bytes, points, errors |
//! | `storage.write` | `writer::write_chunks` | points, chunks |
//! | `query.parse` / `query.render` | `http/query.rs` | metric queries |
//! | `query.metric` | `http/query.rs`, one per metric query | metric, sample size |
//! | `storage.read` / `query.aggregate` | `kairosdb_query::execute` | series, points / groups |
//!
//! An incoming W3C `traceparent` (and `tracestate`) is continued: the request span is its
//! child, and the caller's sampling decision is kept (parent-based sampling; new traces are
//! sampled at `otel_sample_ratio`). Spans opened on blocking threads join their request's
//! trace because `http::blocking` carries the current span across.
//!
//! Off (the default), no request span is opened and the phase spans are disabled at their
//! call sites (no subscriber layer wants DEBUG spans), so tracing costs nothing.
//!
//! Export: the SDK's batch processor (its own thread; `OTEL_BSP_*` tune it) hands each
//! batch to [`Client`], which sends it with the server's `reqwest` on the server's tokio
//! runtime. A collector that is down costs dropped spans (counted by the SDK, logged at
//! debug), never a request. [`Tracing::shutdown`] flushes at exit.
//!
//! Not here: telnet (its protocol has no place for trace context), metrics and logs over
//! OTLP (`/metrics` and the self-metrics cover metrics), gRPC export.

use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{
    Bytes, HeaderExtractor, HttpClient, HttpError, Request as HttpRequest, Response as HttpResponse,
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::Config;

/// The tracer provider while `otel_enabled`.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Starts the exporter; `None` when `otel_enabled` is off. Needs a tokio runtime
    /// (the exporter sends on it).
    pub fn start(config: &Config) -> Result<Option<Tracing>> {
        if !config.otel_enabled {
            return Ok(None);
        }
        let client = Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .context("cannot build the OTLP HTTP client")?,
            runtime: tokio::runtime::Handle::try_current()
                .context("BUG: OpenTelemetry started outside the runtime")?,
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary);
        if !config.otel_endpoint.is_empty() {
            exporter = exporter.with_endpoint(config.otel_endpoint.clone());
        }
        let exporter = exporter.build().context("cannot build the OTLP exporter")?;
        let sampler = Sampler::TraceIdRatioBased(config.otel_sample_ratio);
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(sampler)))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.otel_service_name.clone())
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        tracing::info!(endpoint = %config.otel_endpoint, ratio = config.otel_sample_ratio, "exporting OpenTelemetry traces");
        Ok(Some(Tracing { provider }))
    }

    /// The `tracing` layer that turns this server's spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let ours = filter_fn(|meta| {
            meta.is_span()
                && meta.target().starts_with("kairosdb")
                && *meta.level() <= tracing::Level::DEBUG
        });
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("kairosdb"))
            .with_filter(ours)
    }

    /// Exports what is still buffered (at most the SDK's timeout) and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry shutdown");
        }
    }
}

/// The middleware of every route while tracing is on: the `http.request` span, continuing
/// the caller's `traceparent`.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let span = tracing::debug_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    // Fails only when the span is disabled, and then there is nothing to continue.
    let _ = span.set_parent(parent);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The exporter's HTTP client: the server's `reqwest`, run on the server's runtime (the
/// SDK's batch thread has none of its own and waits on the returned future).
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(
        &self,
        request: HttpRequest<Bytes>,
    ) -> Result<HttpResponse<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(reqwest::Request::try_from(request)?).await?;
            let mut answer = HttpResponse::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok::<_, HttpError>(answer.body(response.bytes().await?)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::StatusCode;
    use axum::routing::get;
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SimpleSpanProcessor, SpanData, SpanExporter};
    use tower::ServiceExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps what it is handed.
    #[derive(Clone, Debug, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    /// The spans of one `GET path` through [`trace_request`] answered with `status`.
    async fn spans_of(status: StatusCode, path: &str) -> Vec<SpanData> {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SimpleSpanProcessor::new(kept.clone()))
            .build();
        let tracing = Tracing { provider };
        let subscriber = tracing_subscriber::registry().with(tracing.layer());
        let _default = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route("/things/{id}", get(move || async move { status }))
            .layer(axum::middleware::from_fn(trace_request));
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), status);
        tracing.shutdown();
        let spans = kept.0.lock().unwrap().clone();
        spans
    }

    #[tokio::test]
    async fn a_5xx_answer_marks_the_request_span_as_an_error() {
        let spans = spans_of(StatusCode::SERVICE_UNAVAILABLE, "/things/7").await;
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].name, "GET /things/{id}",
            "named by its route, not its path"
        );
        assert_eq!(spans[0].span_kind, SpanKind::Server);
        assert!(
            matches!(spans[0].status, Status::Error { .. }),
            "{:?}",
            spans[0].status
        );
    }

    #[tokio::test]
    async fn a_4xx_answer_is_not_the_servers_error() {
        let spans = spans_of(StatusCode::BAD_REQUEST, "/things/7").await;
        assert_eq!(spans.len(), 1);
        assert!(
            !matches!(spans[0].status, Status::Error { .. }),
            "{:?}",
            spans[0].status
        );
    }
}

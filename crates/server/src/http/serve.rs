//! The HTTP accept loop: hyper's HTTP/1 connection driven by hand instead of `axum::serve`,
//! which sets no timeout at all, so a half-open or silent client held its socket (and a
//! connection task) forever.
//!
//! * **Idle and slow-header timeout** (`http_idle_timeout_secs`): hyper's
//!   `header_read_timeout`. Its timer starts when the connection begins waiting for a request
//!   head, that is when the connection opens and again after each response has been written
//!   (hyper 1.12, `proto/h1/conn.rs`, `read_head`), and the connection is closed, without an
//!   answer, if the head is not complete by then. One setting therefore bounds an idle
//!   keep-alive connection, a client that sent half a header and a slowloris client.
//! * **Graceful shutdown**: when `shutdown` fires the listener is dropped (no new
//!   connections), idle connections are closed, connections with a request in flight
//!   finish that response and then close (`hyper_util::server::graceful`), and `serve`
//!   returns once every connection is gone. The caller bounds the wait
//!   (`shutdown_timeout_secs`).
//! * **Client disconnect → query cancellation**: hyper's HTTP/1 server reads from the socket
//!   while a handler runs once the request body has been read (`mid_message_detect_eof`,
//!   with the default `half_close(false)`); on EOF or a reset it fails the connection and
//!   drops the handler future. `query.rs` holds a drop guard in that future that sets the
//!   query's `cancelled` flag. (It does not see the disconnect while unread bytes of a
//!   pipelined next request sit in its buffer; pipelining clients are rare.)
//!
//! * **TLS** (`tls.rs`): with a certificate configured, every accepted socket does its TLS
//!   handshake in its own task (bounded by the same idle timeout), then is served as above.
//! * **Connection cap** (`http_max_connections`): past it, a new connection gets a short
//!   `503` with KairosDB's error body and is closed (counted in
//!   `kairosdb_http_refused_connections_total`); the connections already open are served.
//!
//! Only HTTP/1 is served, as before (axum's `http1` feature; KairosDB's Jetty speaks
//! HTTP/1.1 to its clients too).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How connections are served.
#[derive(Clone)]
pub struct Options {
    /// `http_idle_timeout_secs`: idle keep-alive, slow header and TLS handshake bound.
    pub idle_timeout: Duration,
    /// HTTPS when set.
    pub tls: Option<Arc<super::tls::Tls>>,
    /// Most connections open at once (`http_max_connections`).
    pub max_connections: usize,
    /// Open and refused connection counts.
    pub metrics: Arc<crate::metrics::ServerMetrics>,
}

impl Options {
    /// Plain HTTP with `idle_timeout` and the default connection cap (tests).
    #[cfg(test)]
    pub fn plain(idle_timeout: Duration) -> Options {
        Options {
            idle_timeout,
            tls: None,
            max_connections: 10_000,
            metrics: Arc::default(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires and the last connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: Options,
    shutdown: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.idle_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE/ENFILE (out of file descriptors) or a connection reset
                    // before it was accepted. Back off a little instead of spinning, as
                    // axum::serve does, and keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Responses are written whole; don't let Nagle hold back the last segment.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::metrics::ServerMetrics::add(&options.metrics.http_refused_connections, 1);
            tokio::spawn(refuse(stream, options.tls.clone(), options.idle_timeout));
            continue;
        };
        // The peer address, for per-address rate limits (`crate::auth`).
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let service = TowerToHyperService::new(service);
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), options.tls.clone());
        let (idle, metrics) = (options.idle_timeout, options.metrics.clone());
        tokio::spawn(async move {
            let _open = Open::new(metrics, slot);
            let result = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(idle, tls.acceptor().accept(stream)).await
                    else {
                        tracing::debug!("TLS handshake failed or timed out");
                        return;
                    };
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = result {
                // Header timeouts, resets and clients that left mid-request: routine.
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One open connection: counted in `kairosdb_http_connections`, holding its slot.
struct Open {
    metrics: Arc<crate::metrics::ServerMetrics>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Open {
    fn new(
        metrics: Arc<crate::metrics::ServerMetrics>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Open {
        metrics
            .http_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Open {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics
            .http_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The answer past the connection cap: `503` with KairosDB's error body, then close.
async fn refuse(stream: tokio::net::TcpStream, tls: Option<Arc<super::tls::Tls>>, idle: Duration) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = r#"{"errors":["Too many connections: the server's http_max_connections are all open; retry later"]}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=UTF-8\r\n\
         Retry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        match tls {
            None => {
                let mut stream = stream;
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await
            }
            Some(tls) => {
                let mut stream = tls.acceptor().accept(stream).await?;
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await
            }
        }
    };
    let _ = tokio::time::timeout(idle, write).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use kairosdb_model::NullStorage;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::{Config, Settings};
    use crate::http::{router, AppState};
    use crate::metrics::ServerMetrics;

    async fn start(
        idle: Duration,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(Arc::new(AppState::new(
            Arc::new(NullStorage::new()),
            Arc::new(Config::resolve(Settings::default()).unwrap()),
            Arc::new(ServerMetrics::default()),
            None,
        )));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, Options::plain(idle), shutdown.clone()));
        (addr, shutdown, task)
    }

    const VERSION: &[u8] = b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n";

    /// Connects to the server and sends `bytes`.
    async fn send(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        stream
    }

    /// Reads until EOF (or 10 s); returns what was read and when EOF came.
    async fn read_to_close(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Instant) {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out));
        match read.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Ok(Err(e)) => panic!("read failed: {e}"),
            Err(_) => panic!("the server did not close the connection; read {out:?}"),
        }
        (out, Instant::now())
    }

    #[tokio::test]
    async fn half_a_header_is_dropped_after_the_timeout() {
        let (addr, _shutdown, _task) = start(Duration::from_millis(300)).await;
        let sent = Instant::now();
        let mut stream = send(addr, b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n").await;
        let (bytes, closed) = read_to_close(&mut stream).await;
        assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
        assert!(
            closed - sent >= Duration::from_millis(250),
            "{:?}",
            closed - sent
        );
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
        let (addr, _shutdown, _task) = start(Duration::from_millis(300)).await;
        let mut stream = send(addr, VERSION).await;
        let answered = Instant::now();
        let (bytes, closed) = read_to_close(&mut stream).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("KairosDB"), "{text}");
        assert!(
            closed - answered >= Duration::from_millis(250),
            "{:?}",
            closed - answered
        );
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let (addr, shutdown, task) = start(Duration::from_secs(60)).await;
        let mut stream = send(addr, VERSION).await;
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
        read_to_close(&mut stream).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}

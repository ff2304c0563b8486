//! The telnet listener (spec §3, user-needs §1.8): `put`, `putm`, `puts` and `version`.
//!
//! Per connection: read a chunk → split it into lines ([`LineDecoder`], memchr over the
//! read buffer, lines borrowed from it) → `protocol::telnet::parse_line` each line into
//! one `BatchBuilder` → write the builder to storage once per chunk (or every
//! `max_batch_size` points), so a busy connection costs one storage write per network
//! read, not one per line.
//!
//! Acknowledgement: telnet has no per-line answer. A line counts as accepted once the
//! storage write containing it returned `Ok`. Before answering `version` the lines read so
//! far are written, so a client that sends `version` and gets the answer knows every
//! earlier line was accepted (what tcollector and our kill -9 test rely on).
//!
//! Back-pressure: when storage answers `Backpressure` (or `InsufficientStorage`: the disk
//! guard) the connection stops reading and retries the same write after the advised
//! delay; nothing already read is dropped.
//! Bad lines (unparseable, too long) are counted and logged (rate-limited) and never end
//! the connection. Silent connections are closed after `telnet_idle_timeout_secs`.
//!
//! Access: a client whose address is not in `telnet_allow` is closed as soon as it is
//! accepted, before anything is read, and counted (`kairosdb_telnet_refused_connections_total`).
//!
//! Deviation from KairosDB: a last line without `\n` before the client closes is still
//! processed (Netty's line framer would drop it).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use kairosdb_model::{BatchBuilder, Storage, StorageError, WriteBatch};
use kairosdb_protocol::telnet::{parse_line, Line};

use crate::metrics::ServerMetrics;
use crate::writer;

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// Longest back-pressure pause between write attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// What every connection needs.
pub struct TelnetContext {
    pub storage: Arc<dyn Storage>,
    pub metrics: Arc<ServerMetrics>,
    pub max_line_bytes: usize,
    pub max_batch_size: usize,
    pub idle_timeout: Duration,
    pub enable_validation: bool,
    /// `KairosDB <version>\n`, the answer to `version` (spec §3.5).
    pub version_line: Vec<u8>,
    pub bad_line_log: LogLimiter,
    /// `telnet_allow`: the client networks that may connect; empty = everyone. Telnet
    /// carries no credentials, so this is its only access control (issue 22).
    pub allow: Vec<ipnet::IpNet>,
    /// `telnet_max_connections`: past it a new connection is closed at once (telnet has
    /// no way to say why; the refusal is counted and logged).
    pub max_connections: usize,
}

/// Accepts connections until `shutdown` fires; each connection runs on `tracker`.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<TelnetContext>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if !crate::auth::allowed(&ctx.allow, peer.ip()) {
                    ServerMetrics::add(&ctx.metrics.telnet_refused, 1);
                    tracing::debug!(%peer, "telnet client not in telnet_allow; closed");
                    drop(stream);
                    continue;
                }
                let open = ctx.metrics.telnet_connections.load(Ordering::Relaxed);
                if open >= i64::try_from(ctx.max_connections).unwrap_or(i64::MAX) {
                    ServerMetrics::add(&ctx.metrics.telnet_over_limit, 1);
                    tracing::warn!(%peer, open, "telnet_max_connections reached; connection closed");
                    drop(stream);
                    continue;
                }
                // Counted here, in the accept loop, so a burst of accepts sees the count.
                ctx.metrics
                    .telnet_connections
                    .fetch_add(1, Ordering::Relaxed);
                let ctx = ctx.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    if let Err(e) = connection(stream, peer, &ctx, &shutdown).await {
                        tracing::debug!(%peer, error = %e, "telnet connection ended with an error");
                    }
                    ctx.metrics
                        .telnet_connections
                        .fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                // Usually out of file descriptors: wait instead of spinning.
                tracing::warn!(error = %e, "telnet accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracing::info!("telnet listener stopped");
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &TelnetContext,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut decoder = LineDecoder::new(ctx.max_line_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut pending = Pending::default();
    loop {
        buf.reserve(READ_CHUNK);
        let n = if pending.points > 0 {
            // Lines are parsed but not written: read on only while more data is already
            // waiting, so a busy sender gets large writes (one per `max_batch_size` points,
            // not one per 64 KiB read) and an idle one gets its lines written at once.
            match stream.try_read_buf(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    flush(ctx, &mut pending, shutdown).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                read = tokio::time::timeout(ctx.idle_timeout, stream.read_buf(&mut buf)) => read,
            };
            match read {
                Err(_) => {
                    tracing::debug!(%peer, "closing idle telnet connection");
                    break;
                }
                Ok(result) => result?,
            }
        };
        let eof = n == 0;
        // Lines are borrowed from `buf` and dropped from it once per read, not one at a time
        // (a split-off line's reference count cost 7 % of telnet ingest CPU, perf, 2026-12-07).
        let mut pos = 0;
        while let Some(frame) = decoder.next(&buf, &mut pos, eof) {
            match frame {
                Frame::Line(line) => match parse_line(line, &mut pending.builder) {
                    Ok(Line::Points(n)) => {
                        pending.count_put(line);
                        pending.points += n;
                        if pending.points >= ctx.max_batch_size {
                            flush(ctx, &mut pending, shutdown).await?;
                        }
                    }
                    Ok(Line::Version) => {
                        pending.requests[VERSION] += 1;
                        flush(ctx, &mut pending, shutdown).await?;
                        stream.write_all(&ctx.version_line).await?;
                    }
                    Ok(Line::Empty) => {}
                    Err(reason) => bad_line(ctx, peer, line, &reason),
                },
                Frame::TooLong { len } => bad_line(
                    ctx,
                    peer,
                    b"",
                    &format!(
                        "line of {len} bytes is longer than the limit of {} bytes",
                        ctx.max_line_bytes
                    ),
                ),
            }
        }
        buf.advance(pos);
        if eof {
            break;
        }
    }
    // Lines read before a shutdown or idle close are still written.
    flush(ctx, &mut pending, shutdown).await
}

/// Lines parsed but not yet written.
#[derive(Default)]
struct Pending {
    builder: BatchBuilder,
    points: usize,
    /// Commands parsed since the last flush, indexed put, putm, puts, version: counted here and
    /// added to the shared atomics once per flush, not once per line.
    requests: [u64; 4],
}

const VERSION: usize = 3;

impl Pending {
    /// Counts a parsed `put`/`putm`/`puts` line by its first word.
    fn count_put(&mut self, line: &[u8]) {
        let cmd = line
            .split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty());
        let i = match cmd {
            Some(b"putm") => 1,
            Some(b"puts") => 2,
            _ => 0,
        };
        self.requests[i] += 1;
    }

    fn publish_requests(&mut self, metrics: &ServerMetrics) {
        let counters = [
            &metrics.telnet_put_requests,
            &metrics.telnet_putm_requests,
            &metrics.telnet_puts_requests,
            &metrics.telnet_version_requests,
        ];
        for (n, counter) in std::mem::take(&mut self.requests).into_iter().zip(counters) {
            if n > 0 {
                ServerMetrics::add(counter, n);
            }
        }
    }
}

/// Writes the pending lines. Back-pressure: wait and retry (the connection is not read
/// meanwhile). Other storage errors end the connection, so the client notices instead of
/// having its lines dropped silently.
async fn flush(
    ctx: &TelnetContext,
    pending: &mut Pending,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    pending.publish_requests(&ctx.metrics);
    if pending.builder.is_empty() {
        return Ok(());
    }
    let mut batch = std::mem::take(&mut pending.builder).finish();
    pending.points = 0;
    if ctx.enable_validation {
        let rejected = writer::validate(&mut batch);
        if !rejected.is_empty() {
            ServerMetrics::add(&ctx.metrics.ingestion_errors, rejected.len() as u64);
            if ctx.bad_line_log.allow() {
                tracing::warn!(errors = ?rejected, "telnet points rejected");
            }
        }
    }
    let mut chunks = writer::split(batch, ctx.max_batch_size);
    let mut attempt = 0u32;
    while !chunks.is_empty() {
        let (rest, result) = write(ctx, chunks).await;
        chunks = rest;
        let error = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let points: usize = chunks.iter().map(WriteBatch::point_count).sum();
        // A full disk (`InsufficientStorage`) waits like back-pressure: the connection stops
        // reading until space is freed, so nothing is read and then dropped.
        let retry_after = match error {
            StorageError::Backpressure { retry_after_secs } => Some(retry_after_secs),
            StorageError::InsufficientStorage(_) => Some(1),
            _ => None,
        };
        match (retry_after, error) {
            (Some(retry_after_secs), _) => {
                attempt += 1;
                let pause = Duration::from_millis(50 << attempt.min(7))
                    .min(Duration::from_secs(u64::from(retry_after_secs.max(1))))
                    .min(MAX_RETRY_PAUSE);
                tracing::debug!(points, ?pause, "storage back-pressure; telnet paused");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {
                        // Not acknowledged (no `version` answer covers them), so the client
                        // cannot have counted them as stored.
                        ServerMetrics::add(&ctx.metrics.ingestion_errors, 1);
                        tracing::warn!(points, "shutting down under back-pressure: unwritten telnet points dropped");
                        return Err(std::io::Error::other("shutdown under back-pressure"));
                    }
                }
            }
            (None, other) => {
                ServerMetrics::add(&ctx.metrics.ingestion_errors, 1);
                tracing::error!(points, error = %other, "telnet write failed; closing the connection");
                return Err(std::io::Error::other(other.to_string()));
            }
        }
    }
    Ok(())
}

/// One attempt at writing the chunks on a blocking thread; returns what is left.
async fn write(
    ctx: &TelnetContext,
    mut chunks: VecDeque<WriteBatch>,
) -> (VecDeque<WriteBatch>, Result<(), StorageError>) {
    let storage = ctx.storage.clone();
    let metrics = ctx.metrics.clone();
    let task = tokio::task::spawn_blocking(move || {
        let result = writer::write_chunks(&*storage, &metrics, &mut chunks);
        (chunks, result)
    });
    match task.await {
        Ok(done) => done,
        Err(e) => (
            VecDeque::new(),
            Err(StorageError::Internal(format!("write task failed: {e}"))),
        ),
    }
}

fn bad_line(ctx: &TelnetContext, peer: SocketAddr, line: &[u8], reason: &str) {
    ServerMetrics::add(&ctx.metrics.telnet_bad_lines, 1);
    if ctx.bad_line_log.allow() {
        let shown = String::from_utf8_lossy(&line[..line.len().min(200)]);
        tracing::warn!(%peer, line = ?shown, reason, "bad telnet line");
    }
}

/// Logs at most `burst` messages per `window`, then says how many it suppressed, so a
/// client spraying garbage cannot flood the log (KairosDB issue #197).
pub struct LogLimiter {
    started: Instant,
    window_secs: u64,
    burst: u64,
    /// Window number (seconds since `started` / window) and messages allowed in it.
    window: AtomicU64,
    count: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub fn new(burst: u64, window: Duration) -> LogLimiter {
        LogLimiter {
            started: Instant::now(),
            window_secs: window.as_secs().max(1),
            burst,
            window: AtomicU64::new(0),
            count: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether the caller may log now.
    pub fn allow(&self) -> bool {
        let now = self.started.elapsed().as_secs() / self.window_secs;
        let window = self.window.load(Ordering::Relaxed);
        if now != window
            && self
                .window
                .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            if suppressed > 0 {
                tracing::warn!(suppressed, "bad telnet lines not logged (rate limit)");
            }
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < self.burst {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// One frame of the telnet stream, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A line without its `\n` (a trailing `\r` is left for the parser).
    Line(&'a [u8]),
    /// A line longer than the limit, dropped whole (KairosDB discards it, spec §3.1).
    TooLong { len: usize },
}

/// Splits a byte stream on `\n` with a maximum line length, without copying lines.
/// Memory stays bounded: an over-long line is discarded as it arrives.
#[derive(Debug)]
pub struct LineDecoder {
    max_len: usize,
    /// Bytes of the current line already searched for `\n`.
    scanned: usize,
    /// Inside an over-long line: bytes dropped so far.
    discarding: Option<usize>,
}

impl LineDecoder {
    pub fn new(max_len: usize) -> LineDecoder {
        LineDecoder {
            max_len,
            scanned: 0,
            discarding: None,
        }
    }

    /// The next frame of `buf[*pos..]`, moving `pos` past what it consumed. `None` when no
    /// whole line is left: the caller drops `buf[..pos]` and reads more. At `eof` the rest,
    /// if any, is the last line. An over-long line is consumed as it arrives, so `pos` can
    /// reach the end of `buf` without a frame.
    pub fn next<'a>(&mut self, buf: &'a [u8], pos: &mut usize, eof: bool) -> Option<Frame<'a>> {
        let rest = &buf[*pos..];
        if let Some(offset) = memchr::memchr(b'\n', &rest[self.scanned..]) {
            let end = self.scanned + offset;
            self.scanned = 0;
            *pos += end + 1;
            if let Some(dropped) = self.discarding.take() {
                return Some(Frame::TooLong { len: dropped + end });
            }
            let line = &rest[..end];
            let len = line.strip_suffix(b"\r").map_or(line.len(), <[u8]>::len);
            if len > self.max_len {
                return Some(Frame::TooLong { len });
            }
            return Some(Frame::Line(line));
        }
        if self.discarding.is_some() || rest.len() > self.max_len + 1 {
            *self.discarding.get_or_insert(0) += rest.len();
            *pos = buf.len();
            self.scanned = 0;
        } else {
            self.scanned = rest.len();
        }
        if !eof {
            return None;
        }
        self.scanned = 0;
        if let Some(dropped) = self.discarding.take() {
            return Some(Frame::TooLong { len: dropped });
        }
        if rest.is_empty() {
            return None;
        }
        *pos = buf.len();
        Some(Frame::Line(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame `decoder` finds in `buf` (a line as its text, an over-long line as
    /// `too long: N`), dropping what it consumed from `buf` as the connection loop does.
    fn frames(decoder: &mut LineDecoder, buf: &mut BytesMut, eof: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(f) = decoder.next(buf, &mut pos, eof) {
            out.push(match f {
                Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                Frame::TooLong { len } => format!("too long: {len}"),
            });
        }
        buf.advance(pos);
        out
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut d = LineDecoder::new(100);
        let mut buf = BytesMut::from("put a 1 2 x=y\r\nput b");
        assert_eq!(frames(&mut d, &mut buf, false), ["put a 1 2 x=y\r"]);
        buf.extend_from_slice(b" 3 4 z=w\n\nversion");
        assert_eq!(frames(&mut d, &mut buf, false), ["put b 3 4 z=w", ""]);
        assert_eq!(frames(&mut d, &mut buf, true), ["version"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn drops_over_long_lines_whole_and_recovers() {
        let mut d = LineDecoder::new(10);
        let mut buf = BytesMut::from(&b"0123456789abcdef"[..]);
        assert!(frames(&mut d, &mut buf, false).is_empty());
        assert!(buf.is_empty(), "over-long input is not buffered");
        buf.extend_from_slice(b"ghij\nok\n");
        assert_eq!(frames(&mut d, &mut buf, false), ["too long: 20", "ok"]);
        // Exactly at the limit is fine; one more byte is not.
        let mut buf = BytesMut::from("0123456789\n0123456789\r\n0123456789A\n");
        assert_eq!(
            frames(&mut d, &mut buf, false),
            ["0123456789", "0123456789\r", "too long: 11"]
        );
        // An over-long last line without `\n` is reported when the client closes.
        let mut buf = BytesMut::from("ok\n0123456789ABC");
        assert_eq!(frames(&mut d, &mut buf, true), ["ok", "too long: 13"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn binary_garbage_is_just_lines() {
        let mut d = LineDecoder::new(1024);
        let mut buf = BytesMut::from(&b"\x00\xff\xfe\x01\n\x80\x81"[..]);
        let f = frames(&mut d, &mut buf, true);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn log_limiter_allows_a_burst_per_window() {
        let l = LogLimiter::new(3, Duration::from_secs(3600));
        let allowed = (0..10).filter(|_| l.allow()).count();
        assert_eq!(allowed, 3);
    }
}

#[cfg(test)]
mod connection_tests {
    use super::*;
    use crate::fake_storage::FakeStorage;
    use tokio::io::AsyncBufReadExt;

    /// Back-pressure pauses the connection and retries; `version` is answered only after
    /// the earlier lines were written, and nothing is lost.
    #[tokio::test]
    async fn backpressure_is_retried_before_version_is_answered() {
        let storage = Arc::new(FakeStorage::failing([
            StorageError::Backpressure {
                retry_after_secs: 1,
            },
            StorageError::Backpressure {
                retry_after_secs: 1,
            },
        ]));
        let ctx = test_context(storage.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let server = tokio::spawn(serve(
            listener,
            ctx.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));

        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"putm m 1 1 h=a\nputm m 2 2 h=a\nversion\n")
            .await
            .unwrap();
        let mut reader = tokio::io::BufReader::new(&mut stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "KairosDB test\n");
        assert_eq!(storage.points_written(), 2);
        assert_eq!(*storage.attempts.lock().unwrap(), 3);

        drop(stream);
        shutdown.cancel();
        server.await.unwrap();
        tracker.close();
        tracker.wait().await;
        assert_eq!(ctx.metrics.telnet_connections.load(Ordering::Relaxed), 0);
    }

    /// A connection context over the given storage, with small test limits.
    fn test_context(storage: Arc<FakeStorage>) -> Arc<TelnetContext> {
        Arc::new(TelnetContext {
            storage,
            metrics: Arc::new(ServerMetrics::default()),
            max_line_bytes: 1024,
            max_batch_size: 1000,
            idle_timeout: Duration::from_secs(60),
            enable_validation: true,
            version_line: b"KairosDB test\n".to_vec(),
            bad_line_log: LogLimiter::new(10, Duration::from_secs(10)),
            allow: Vec::new(),
            max_connections: 10_000,
        })
    }

    /// A storage failure other than back-pressure closes the connection (no silent loss).
    #[tokio::test]
    async fn storage_failure_closes_the_connection() {
        let storage = Arc::new(FakeStorage::failing([StorageError::Poisoned(
            "disk".into(),
        )]));
        let ctx = test_context(storage.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            ctx.clone(),
            shutdown.clone(),
            TaskTracker::new(),
        ));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"putm m 1 1 h=a\nversion\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "no version answer after a failed write");
        assert_eq!(ctx.metrics.ingestion_errors.load(Ordering::Relaxed), 1);
        shutdown.cancel();
        server.await.unwrap();
    }
}

//! Request bodies, read by hand: one buffer sized from `Content-Length`, a byte limit, and
//! gzip decoding that stops at the same limit (so a gzip bomb costs at most the limit).
//!
//! Hand-written instead of axum's `Bytes`/`Json` extractors because those collect through a
//! growing buffer (measurably slower for big ingest bodies, `dependencies.md` §5) and answer
//! in axum's error format instead of KairosDB's.
//!
//! Reading is async and only buffers bytes; decompression is synchronous and runs inside the
//! caller's `spawn_blocking`, next to the JSON parse, so it never stalls the runtime.

use std::io::Write;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use flate2::write::MultiGzDecoder;
use http_body_util::BodyExt;

/// A body that is too big is still read (and thrown away) up to this many extra bytes, so
/// a client that sends its whole body before reading the answer gets the 413 instead of a
/// reset connection. Beyond that the connection is dropped.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Largest buffer reserved up front from `Content-Length`; bigger bodies grow from there.
const MAX_PRESIZE: usize = 32 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The body (after decompression) is longer than the limit (HTTP 413).
    TooLarge { limit: usize },
    /// The gzip stream is malformed (HTTP 400, like KairosDB's IOException text).
    BadGzip(String),
    /// The connection failed while reading (HTTP 400).
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(
                f,
                "Request body is larger than the limit of {limit} bytes (counted after decompression)."
            ),
            BodyError::BadGzip(e) => write!(f, "Invalid gzip request body: {e}"),
            BodyError::Read(e) => write!(f, "Could not read the request body: {e}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// How the body is encoded. Spec §1.4: gzip when `Content-Encoding` is exactly `gzip`, or
/// (deprecated variant, only where `gzip_content_type` is allowed, i.e. ingest) when
/// `Content-Type` is `application/gzip`.
pub fn encoding(headers: &HeaderMap, gzip_content_type: bool) -> Encoding {
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if content_encoding.is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        return Encoding::Gzip;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    if gzip_content_type && content_type.is_some_and(|v| v.eq_ignore_ascii_case("application/gzip"))
    {
        return Encoding::Gzip;
    }
    Encoding::Identity
}

/// Limit for the raw (possibly compressed) bytes. Compressed data is never meaningfully
/// bigger than what it decompresses to (deflate's worst case adds 5 bytes per 16 KiB block),
/// so allowing a little slack keeps the decompressed limit the one that matters.
pub fn raw_limit(limit: usize, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Identity => limit,
        Encoding::Gzip => limit.saturating_add(limit / 1024 + 4096),
    }
}

/// Reads the whole body into one buffer, at most `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Trust Content-Length for the initial size only up to a point: a client could claim
    // a huge length and send little.
    let mut buf = Vec::with_capacity(content_length.unwrap_or(0).min(limit).min(MAX_PRESIZE));
    let mut body = body;
    let mut discarded = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if discarded == 0 && buf.len() + data.len() <= limit {
            buf.extend_from_slice(&data);
            continue;
        }
        // Over the limit: free the buffer and drain (a bounded amount) for a clean 413.
        discarded += buf.len() + data.len();
        buf = Vec::new();
        if discarded > DRAIN_LIMIT {
            break;
        }
    }
    if discarded > 0 {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(buf)
}

/// Decodes `raw` into at most `limit` bytes (synchronous; call from a blocking thread).
pub fn decode(raw: Vec<u8>, encoding: Encoding, limit: usize) -> Result<Vec<u8>, BodyError> {
    match encoding {
        Encoding::Identity if raw.len() > limit => Err(BodyError::TooLarge { limit }),
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => gunzip(&raw, limit),
    }
}

/// Streams `raw` through a gzip decoder (concatenated members allowed, like Java's
/// `GZIPInputStream`) into a sink that refuses to grow beyond `limit`.
pub fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let sink = CappedSink {
        buf: Vec::with_capacity(raw.len().saturating_mul(4).min(limit)),
        limit,
        exceeded: false,
    };
    let mut decoder = MultiGzDecoder::new(sink);
    let result = decoder.write_all(raw).and_then(|()| decoder.try_finish());
    if decoder.get_ref().exceeded {
        return Err(BodyError::TooLarge { limit });
    }
    match result {
        Ok(()) => match decoder.finish() {
            Ok(sink) => Ok(sink.buf),
            Err(e) => Err(BodyError::BadGzip(e.to_string())),
        },
        Err(e) => Err(BodyError::BadGzip(e.to_string())),
    }
}

/// A `Vec` writer that fails (and remembers why) once more than `limit` bytes arrive.
struct CappedSink {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Write for CappedSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("decompressed body exceeds the limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trips_and_accepts_concatenated_members() {
        let mut raw = gzip(b"hello ");
        raw.extend(gzip(b"world"));
        assert_eq!(gunzip(&raw, 100).unwrap(), b"hello world");
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024);
        assert_eq!(
            gunzip(&bomb, 1024 * 1024),
            Err(BodyError::TooLarge { limit: 1024 * 1024 })
        );
        assert_eq!(gunzip(&gzip(&[1; 100]), 100).unwrap().len(), 100);
    }

    #[test]
    fn gunzip_reports_garbage() {
        assert!(matches!(
            gunzip(b"not gzip at all", 100),
            Err(BodyError::BadGzip(_))
        ));
        let mut truncated = gzip(&[7; 1000]);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            gunzip(&truncated, 10_000),
            Err(BodyError::BadGzip(_))
        ));
    }

    #[test]
    fn encoding_follows_kairosdb_rules() {
        let mut h = HeaderMap::new();
        assert_eq!(encoding(&h, true), Encoding::Identity);
        h.insert(header::CONTENT_TYPE, "application/gzip".parse().unwrap());
        assert_eq!(encoding(&h, true), Encoding::Gzip);
        assert_eq!(encoding(&h, false), Encoding::Identity);
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(encoding(&h, false), Encoding::Gzip);
    }

    #[tokio::test]
    async fn read_enforces_the_limit() {
        let h = HeaderMap::new();
        assert_eq!(
            read(&h, Body::from(vec![1u8; 10]), 10).await.unwrap().len(),
            10
        );
        assert_eq!(
            read(&h, Body::from(vec![1u8; 11]), 10).await,
            Err(BodyError::TooLarge { limit: 10 })
        );
    }
}

//! `GET /metrics/stream?name=&tag=`: Server-Sent Events of the records written from now on
//! that match (docs/telemetry.md, "Live tail"), through any API: the telemetry API's
//! creates and updates, and points written through the KairosDB API, telnet or roll-ups
//! (every numeric point is a record). It listens to the server's [`crate::watch::Watch`]:
//! an `event: record` with the record as JSON for each point that matches, an
//! `event: lagged` with how many writes were missed when the client read too slowly to
//! keep up, a comment every 15 s to keep proxies from closing an idle stream. The stream
//! ends when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use kairosdb_model::{Points, SeriesKey, Storage, Tags, WriteBatch};
use kairosdb_telemetry::{record, Record, RecordId};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::records::SERVICE;
use super::Telemetry;
use crate::plan::PlanError;

/// What a stream wants: a name, tags every record must have.
struct Wanted {
    name: Option<String>,
    tags: Tags,
}

impl Wanted {
    fn parse(uri: &Uri) -> Result<Wanted, PlanError> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| {
                PlanError::invalid(format!("unreadable query string: {}", e.body_text()))
            })?;
        let mut name = None;
        let mut tags = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "name" if name.is_none() => name = Some(value),
                "tag" => tags.push(value),
                other => {
                    return Err(PlanError::invalid(format!(
                        "parameter {other:?}: the stream takes one name and any number of tags"
                    )))
                }
            }
        }
        let tags = record::tags_of(&tags).map_err(|e| PlanError::invalid(e.to_string()))?;
        Ok(Wanted { name, tags })
    }

    fn matches(&self, key: &SeriesKey) -> bool {
        if self.name.as_ref().is_some_and(|n| *n != key.metric) {
            return false;
        }
        self.tags.iter().all(|(k, v)| key.tags.get(k) == Some(v))
    }

    /// The numeric points of `batch` that match, as records named where they are.
    fn records(&self, batch: &WriteBatch) -> Vec<Record> {
        let mut out = Vec::new();
        for s in batch.series.iter().filter(|s| self.matches(&s.key)) {
            let values: Vec<f64> = match &s.points {
                Points::Long { values, .. } => values.iter().map(|&v| v as f64).collect(),
                Points::Double { values, .. } => values.clone(),
                Points::String { .. } => continue,
            };
            let tags = record::list_of(&s.key.tags);
            for (&timestamp, value) in s.points.timestamps().iter().zip(values) {
                out.push(Record {
                    id: RecordId::of(&s.key, timestamp).encode(),
                    name: s.key.metric.clone(),
                    tags: tags.clone(),
                    value,
                    timestamp,
                });
            }
        }
        out
    }
}

pub async fn stream(
    State(t): State<Arc<Telemetry>>,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PlanError> {
    let wanted = Arc::new(Wanted::parse(&uri)?);
    let tail = Tail {
        writes: t.app.watch.subscribe(),
        wanted,
        storage: t.app.storage.clone(),
        shutdown: t.shutdown.clone(),
        ready: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        Some((Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One client's stream: the writes it is told of, and the events made of them not yet
/// sent.
struct Tail {
    writes: broadcast::Receiver<Arc<WriteBatch>>,
    wanted: Arc<Wanted>,
    storage: Arc<dyn Storage>,
    shutdown: CancellationToken,
    ready: VecDeque<Event>,
}

impl Tail {
    /// The next event; `None` when the server shuts down.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                next = self.writes.recv() => next,
            };
            match next {
                Ok(batch) => {
                    let records = self.records(batch).await;
                    self.ready.extend(records.iter().map(|r| {
                        Event::default()
                            .event("record")
                            .json_data(r)
                            .expect("BUG: a record serialises")
                    }));
                }
                Err(RecvError::Lagged(missed)) => {
                    return Some(Event::default().event("lagged").data(missed.to_string()))
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The records of `batch` that match, with the ids `GET /metrics` gives them (a moved
    /// record keeps its first id: one metadata read each, on the blocking pool).
    async fn records(&self, batch: Arc<WriteBatch>) -> Vec<Record> {
        let wanted = self.wanted.clone();
        let storage = self.storage.clone();
        let matched = wanted.records(&batch);
        if matched.is_empty() {
            return matched;
        }
        let named = tokio::task::spawn_blocking(move || {
            matched
                .into_iter()
                .map(|mut r| {
                    if let Ok(Some(first)) = storage.get_value(SERVICE, "origin", &r.id) {
                        r.id = first;
                    }
                    r
                })
                .collect()
        });
        named.await.unwrap_or_default()
    }
}

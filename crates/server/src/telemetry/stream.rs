//! `GET /metrics/stream?name=&tag=`: Server-Sent Events of the records created or changed
//! through this listener that match (docs/telemetry.md, "Live tail"): an `event: record`
//! with the record as JSON for each, an `event: lagged` with how many were missed when
//! the client read too slowly to keep up, a comment every 15 s to keep proxies from
//! closing an idle stream. The stream ends when the server shuts down.
//!
//! Not here: points written through the KairosDB API are not streamed (they are records
//! too, and `GET /metrics` lists them).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use kairosdb_model::Tags;
use kairosdb_telemetry::{record, Record};
use tokio::sync::broadcast::error::RecvError;

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

    fn matches(&self, r: &Record) -> bool {
        if self.name.as_ref().is_some_and(|n| *n != r.name) {
            return false;
        }
        let Ok(tags) = record::tags_of(&r.tags) else {
            return false;
        };
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

pub async fn stream(
    State(t): State<Arc<Telemetry>>,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PlanError> {
    let wanted = Wanted::parse(&uri)?;
    let receiver = t.hub.subscribe();
    let shutdown = t.shutdown.clone();
    let events = futures_util::stream::unfold(
        (receiver, wanted, shutdown),
        |(mut receiver, wanted, shutdown)| async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    next = receiver.recv() => next,
                };
                let event = match next {
                    Ok(r) if wanted.matches(&r) => Event::default()
                        .event("record")
                        .json_data(&*r)
                        .expect("BUG: a record serialises"),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, wanted, shutdown)));
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

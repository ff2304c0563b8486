//! Records by id (docs/telemetry.md): each handler reads its input, then does its storage
//! work on the blocking pool through [`Records`], which knows how a record is a point.
//!
//! * create: 409 when a record exists at that name, tags and time (creates of one series
//!   take a striped lock, so two cannot both succeed);
//! * update: in place when only the value changes; otherwise the point moves (create at the
//!   new place, delete the old one) and the record keeps its first id through a redirect
//!   in the metadata store (service `telemetry`: `moved` first id → place, `origin` place
//!   → first id);
//! * delete: an exact-series delete of the one timestamp (`DeleteRequest::exact`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kairosdb_model::{
    DataType, DeleteRequest, Order, Points, Read, SeriesKey, SeriesPoints, SeriesQuery, Storage,
    TagFilter, TagMatcher, Tags, TimeRange, WriteBatch,
};
use kairosdb_telemetry::record::{self, RecordError};
use kairosdb_telemetry::{Cursor, ListQuery, Record, RecordId, RecordInput, Sort};

use super::Telemetry;
use crate::http::AppState;
use crate::plan::{blocking, Code, PlanError};
use crate::redis_cache;

/// The metadata service holding the redirects of moved records.
pub(super) const SERVICE: &str = "telemetry";

type Answer = Result<Response, PlanError>;

fn validation(e: RecordError) -> PlanError {
    PlanError::validation(e.to_string())
}

async fn input(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<RecordInput, PlanError> {
    let raw = crate::http::body::read(headers, body, state.config.max_request_bytes).await?;
    serde_json::from_slice(&raw).map_err(|e| {
        PlanError::invalid(format!(
            "the body: {e} (a record is {{\"name\", \"tags\": [..], \"value\", \"timestamp\"}})"
        ))
    })
}

/// `POST /metrics`: 201 with the stored record.
pub async fn create(State(t): State<Arc<Telemetry>>, headers: HeaderMap, body: Body) -> Answer {
    let input = input(&t.app, &headers, body).await?;
    let (key, timestamp, value) = record::new_point(&input).map_err(validation)?;
    let storage = t.app.storage.clone();
    let record = blocking(move || Records(&*storage).create(key, timestamp, value)).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

/// `GET /metrics/{id}`.
pub async fn fetch(State(t): State<Arc<Telemetry>>, Path(id): Path<String>) -> Answer {
    let storage = t.app.storage.clone();
    let record = blocking(move || Records(&*storage).fetch(&id)).await?;
    Ok(Json(record).into_response())
}

/// `PUT /metrics/{id}`: any of name, tags, value and timestamp.
pub async fn update(
    State(t): State<Arc<Telemetry>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let input = input(&t.app, &headers, body).await?;
    let storage = t.app.storage.clone();
    let record = blocking(move || Records(&*storage).update(&id, &input)).await?;
    Ok(Json(record).into_response())
}

/// `DELETE /metrics/{id}`: 204.
pub async fn remove(State(t): State<Arc<Telemetry>>, Path(id): Path<String>) -> Answer {
    let storage = t.app.storage.clone();
    blocking(move || Records(&*storage).remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /metrics?...`: `{"records": [...], "next_cursor": "..." | null}`, from the Redis
/// cache while nothing it lists has been written since.
pub async fn list(State(t): State<Arc<Telemetry>>, uri: Uri) -> Answer {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| PlanError::invalid(format!("unreadable query string: {}", e.body_text())))?;
    let query = ListQuery::parse(&pairs).map_err(|e| PlanError::invalid(e.to_string()))?;
    let storage = t.app.storage.clone();
    let cache = t.cache.clone();
    let body = blocking(move || {
        let mut normalized = query.clone();
        normalized.tags.sort();
        normalized.tags.dedup();
        let key = redis_cache::answer_key("l", &format!("{normalized:?}"));
        let metric = query.name.as_deref().map(redis_cache::metric);
        let data = metric.as_deref().unwrap_or(redis_cache::ALL);
        super::cached(
            cache.as_deref(),
            &key,
            &[data, redis_cache::META],
            |snapshot| {
                let (records, next) = Records(&*storage).list(&query)?;
                let body = serde_json::json!({
                    "records": records,
                    "next_cursor": next.map(|c| c.encode()),
                });
                Ok((serde_json::to_vec(&body).expect("BUG: JSON"), snapshot))
            },
        )
    })
    .await?;
    Ok(super::json_bytes(body))
}

/// Creates of one series are serialised through one of these, picked by its hash.
static STRIPES: LazyLock<Vec<Mutex<()>>> =
    LazyLock::new(|| (0..64).map(|_| Mutex::new(())).collect());

fn stripe(id: &RecordId) -> usize {
    let mut text = id.name.clone();
    for (k, v) in id.tags.iter() {
        text.push('\u{0}');
        text.push_str(k);
        text.push('\u{0}');
        text.push_str(v);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&text, &mut h);
    (std::hash::Hasher::finish(&h) % STRIPES.len() as u64) as usize
}

/// The locks of `ids`' stripes, taken in order (no deadlock between two movers).
fn lock(ids: &[&RecordId]) -> Vec<MutexGuard<'static, ()>> {
    let mut stripes: Vec<usize> = ids.iter().map(|id| stripe(id)).collect();
    stripes.sort_unstable();
    stripes.dedup();
    stripes
        .into_iter()
        .map(|s| STRIPES[s].lock().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// A filter matching `tags` exactly (no regex reading of the values).
fn exact_filter(tags: &Tags) -> TagFilter {
    TagFilter {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_owned(), vec![TagMatcher::Exact(v.to_owned())]))
            .collect(),
    }
}

fn not_found(id: &str) -> PlanError {
    PlanError::new(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        format!("no record {id}"),
    )
}

/// The numeric value of one point of `points` at index `i`.
fn number(points: &Points, i: usize) -> Option<f64> {
    match points {
        Points::Long { values, .. } => Some(values[i] as f64),
        Points::Double { values, .. } => Some(values[i]),
        Points::String { .. } => None,
    }
}

/// Records over one storage.
struct Records<'a>(&'a dyn Storage);

impl Records<'_> {
    /// The value of the record at `place`, if there is one.
    fn value_at(&self, place: &RecordId) -> Result<Option<f64>, PlanError> {
        let q = SeriesQuery::new(
            place.name.clone(),
            exact_filter(&place.tags),
            TimeRange::new(place.timestamp, place.timestamp),
        );
        let series = match self.0.query(&q)? {
            Read::Complete(series) | Read::Partial { series, .. } => series,
            Read::OverWorkLimit => unreachable!("BUG: no work limit was set"),
        };
        Ok(series
            .iter()
            .filter(|s| s.key.tags == place.tags)
            .find_map(|s| {
                (!s.points.is_empty())
                    .then(|| number(&s.points, 0))
                    .flatten()
            }))
    }

    /// The record's first id and where its point is now; 400 for what is not an id.
    fn resolve(&self, id: &str) -> Result<(RecordId, RecordId), PlanError> {
        let first = RecordId::decode(id)
            .ok_or_else(|| PlanError::invalid(format!("{id:?} is not a record id")))?;
        let place = match self.0.get_value(SERVICE, "moved", id)? {
            Some(p) => RecordId::decode(&p).ok_or_else(|| {
                PlanError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::InternalError,
                    format!("BUG: a bad redirect for {id}"),
                )
            })?,
            None => first.clone(),
        };
        Ok((first, place))
    }

    fn record(first: &RecordId, place: &RecordId, value: f64) -> Record {
        Record {
            id: first.encode(),
            name: place.name.clone(),
            tags: record::list_of(&place.tags),
            value,
            timestamp: place.timestamp,
        }
    }

    fn write(&self, place: &RecordId, value: f64) -> Result<(), PlanError> {
        let series = SeriesPoints {
            key: SeriesKey::new(place.name.clone(), DataType::Double, place.tags.clone()),
            ttl_secs: 0,
            points: Points::Double {
                ts: vec![place.timestamp],
                values: vec![value],
            },
        };
        Ok(self.0.write(&WriteBatch {
            series: vec![series],
        })?)
    }

    /// Deletes the point at `place`; whether there was one.
    fn delete(&self, place: &RecordId) -> Result<bool, PlanError> {
        let request = DeleteRequest {
            metric: place.name.clone(),
            filter: exact_filter(&place.tags),
            range: TimeRange::new(place.timestamp, place.timestamp),
            shard: None,
            exact: true,
        };
        Ok(self.0.delete(&request)? > 0)
    }

    fn create(&self, key: SeriesKey, timestamp: i64, value: f64) -> Result<Record, PlanError> {
        let place = RecordId::of(&key, timestamp);
        let _locked = lock(&[&place]);
        self.refuse_taken(&place)?;
        self.write(&place, value)?;
        Ok(Self::record(&place, &place, value))
    }

    /// 409 when a record is at `place` already (its own, or one moved there).
    fn refuse_taken(&self, place: &RecordId) -> Result<(), PlanError> {
        if self.value_at(place)?.is_none() {
            return Ok(());
        }
        let here = place.encode();
        let id = self.0.get_value(SERVICE, "origin", &here)?.unwrap_or(here);
        Err(PlanError::new(
            StatusCode::CONFLICT,
            Code::Conflict,
            format!("a record with this name, tags and timestamp exists: {id}"),
        )
        .detail("id", id))
    }

    fn fetch(&self, id: &str) -> Result<Record, PlanError> {
        let (first, place) = self.resolve(id)?;
        let value = self.value_at(&place)?.ok_or_else(|| not_found(id))?;
        Ok(Self::record(&first, &place, value))
    }

    fn update(&self, id: &str, input: &RecordInput) -> Result<Record, PlanError> {
        let (first, place) = self.resolve(id)?;
        let tags = match &input.tags {
            Some(list) => record::tags_of(list).map_err(validation)?,
            None => place.tags.clone(),
        };
        let timestamp = match &input.timestamp {
            Some(t) => record::timestamp_of(t).map_err(validation)?,
            None => place.timestamp,
        };
        let name = input.name.clone().unwrap_or_else(|| place.name.clone());
        let to = RecordId {
            name,
            tags,
            timestamp,
        };
        let _locked = lock(&[&place, &to]);
        let current = self.value_at(&place)?.ok_or_else(|| not_found(id))?;
        let value = input.value.unwrap_or(current);
        record::point(&to.name, to.tags.clone(), to.timestamp, value).map_err(validation)?;
        if to == place {
            self.write(&place, value)?;
            return Ok(Self::record(&first, &place, value));
        }
        self.refuse_taken(&to)?;
        // The new point first: a failure in between leaves two copies, never none.
        self.write(&to, value)?;
        self.delete(&place)?;
        self.redirect(&first, &place, &to)?;
        Ok(Self::record(&first, &to, value))
    }

    /// Notes that the record first at `first` moved from `from` to `to`.
    fn redirect(&self, first: &RecordId, from: &RecordId, to: &RecordId) -> Result<(), PlanError> {
        let (first_id, from_id, to_id) = (first.encode(), from.encode(), to.encode());
        if from != first {
            self.0.delete_key(SERVICE, "origin", &from_id)?;
        }
        if to == first {
            self.0.delete_key(SERVICE, "moved", &first_id)?;
        } else {
            self.0.set_value(SERVICE, "moved", &first_id, &to_id)?;
            self.0.set_value(SERVICE, "origin", &to_id, &first_id)?;
        }
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<(), PlanError> {
        let (first, place) = self.resolve(id)?;
        let _locked = lock(&[&place]);
        if !self.delete(&place)? {
            return Err(not_found(id));
        }
        if place != first {
            self.0.delete_key(SERVICE, "moved", &first.encode())?;
            self.0.delete_key(SERVICE, "origin", &place.encode())?;
        }
        Ok(())
    }

    /// One page: the records after the cursor, in order, and the cursor of the next page
    /// when this one is full.
    fn list(&self, q: &ListQuery) -> Result<(Vec<Record>, Option<Cursor>), PlanError> {
        let names = match &q.name {
            Some(n) => vec![n.clone()],
            None => self.0.metric_names(None)?,
        };
        let tags = record::tags_of(&q.tags).map_err(validation)?;
        let mut range = TimeRange::new(q.from.unwrap_or(0), q.to.unwrap_or(i64::MAX));
        if let Some(c) = &q.cursor {
            match q.sort {
                Sort::NewestFirst => range.end = range.end.min(c.timestamp),
                Sort::OldestFirst => range.start = range.start.max(c.timestamp),
            }
        }
        let origins: HashMap<String, String> = self.origins()?;
        let mut series = Vec::new();
        for name in names {
            let query = SeriesQuery {
                // A series has one point a timestamp: the cursor's own skips at most one.
                limit: Some(q.limit + 1),
                order: match q.sort {
                    Sort::NewestFirst => Order::Desc,
                    Sort::OldestFirst => Order::Asc,
                },
                ..SeriesQuery::new(name, exact_filter(&tags), range)
            };
            match self.0.query(&query)? {
                Read::Complete(s) | Read::Partial { series: s, .. } => series.extend(s),
                Read::OverWorkLimit => unreachable!("BUG: no work limit was set"),
            }
        }
        // Candidates as (time, series, point): ids are made only for the page (and for
        // the points at the cursor's own time, which the cursor may exclude).
        let id_of = |s: usize, t: i64| {
            let here = RecordId::of(&series[s].key, t).encode();
            origins.get(&here).cloned().unwrap_or(here)
        };
        let mut found: Vec<(i64, usize, f64)> = Vec::new();
        for (si, s) in series.iter().enumerate() {
            for (i, &t) in s.points.timestamps().iter().enumerate() {
                let Some(value) = number(&s.points, i) else {
                    continue;
                };
                if let Some(c) = q.cursor.as_ref().filter(|c| c.timestamp == t) {
                    if !c.before(q.sort, t, &id_of(si, t)) {
                        continue;
                    }
                }
                found.push((t, si, value));
            }
        }
        match q.sort {
            Sort::NewestFirst => found.sort_by_key(|f| std::cmp::Reverse(f.0)),
            Sort::OldestFirst => found.sort_by_key(|f| f.0),
        }
        // Keep the page and every point tied with its last time, then order ties by id.
        if found.len() > q.limit {
            let boundary = found[q.limit - 1].0;
            let keep = q.limit
                + found[q.limit..]
                    .iter()
                    .take_while(|f| f.0 == boundary)
                    .count();
            found.truncate(keep);
        }
        let mut page: Vec<(i64, String, usize, f64)> = found
            .into_iter()
            .map(|(t, si, v)| (t, id_of(si, t), si, v))
            .collect();
        match q.sort {
            Sort::NewestFirst => page.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1))),
            Sort::OldestFirst => page.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1))),
        }
        page.truncate(q.limit);
        let next = (page.len() == q.limit).then(|| {
            let (timestamp, id, _, _) = page.last().expect("a full page");
            Cursor {
                timestamp: *timestamp,
                id: id.clone(),
            }
        });
        let records = page
            .into_iter()
            .map(|(t, id, si, value)| {
                let place = RecordId::of(&series[si].key, t);
                Record {
                    id,
                    ..Self::record(&place, &place, value)
                }
            })
            .collect();
        Ok((records, next))
    }

    /// Where moved records are now → their first ids.
    fn origins(&self) -> Result<HashMap<String, String>, PlanError> {
        let mut out = HashMap::new();
        for here in self.0.list_keys(SERVICE, "origin", None)? {
            if let Some(first) = self.0.get_value(SERVICE, "origin", &here)? {
                out.insert(here, first);
            }
        }
        Ok(out)
    }
}

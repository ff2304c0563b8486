//! The plan's reads: `GET /aggregate` and `GET /analytics` on a control node, and a
//! worker's `POST /compute`.
//!
//! All three read the parameters of `kairosdb_cluster::analytics::params` and compute the
//! same mergeable partial aggregates. On a control node they are pushed down
//! (`ClusterStorage::compute`: each partition's partials from one replica's
//! `/internal/v1/compute`, merged exactly); a partition no replica answered for makes the
//! answer partial (`is_partial`, `total_nodes`, `responding_nodes`), or a 503 with
//! `deny_partial_response`. A worker's `/compute` answers the partials of its own series.
//! The points are read through the `Storage` seam in every case (no second storage path);
//! a read is bounded by `query_max_points`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use kairosdb_cluster::analytics::params::{self, format_time, Agg};
use kairosdb_cluster::analytics::{
    partial, report, AggregateQuery, AnalyticsAnswer, ComputeRequest, Endpoint, Partials,
};

use super::{answer, answer_format, blocking, Code, Format, PlanError};
use crate::http::{body, now_ms, AppState};

/// Workers that answered a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Nodes {
    partial: bool,
    total: u32,
    responding: u32,
}

/// `GET /aggregate`: rows of aggregates per bucket and group.
pub async fn aggregate(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, PlanError> {
    let q = params_of(&uri, Endpoint::Aggregate)?;
    let (merged, nodes) = partials(&state, &q).await?;
    let rows = report::rows(&q, &merged)?;
    let body = AggregateBody {
        key: &q.key,
        from: format_time(q.from),
        to: format_time(q.to),
        window: q.window.as_ref().map(|w| w.text.as_str()),
        rolling: q.rolling,
        is_partial: nodes.partial,
        total_nodes: nodes.total,
        responding_nodes: nodes.responding,
        results: Rows { q: &q, rows: &rows },
    };
    Ok(answer(Format::Json, &body))
}

/// `/aggregate`'s answer, serialised straight from the rows (a `Value` per row cost
/// 4 µs a row: 0.6 s for a day of minutes over 100 hosts).
#[derive(Serialize)]
struct AggregateBody<'a> {
    key: &'a str,
    from: String,
    to: String,
    window: Option<&'a str>,
    rolling: u32,
    is_partial: bool,
    total_nodes: u32,
    responding_nodes: u32,
    results: Rows<'a>,
}

struct Rows<'a> {
    q: &'a AggregateQuery,
    rows: &'a [report::Row],
}

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows {
            seq.serialize_element(&RowView { q: self.q, row })?;
        }
        seq.end()
    }
}

/// One row of `/aggregate`: its bucket, its group's tags (when grouped) and each
/// aggregate by name (`count` as an integer).
struct RowView<'a> {
    q: &'a AggregateQuery,
    row: &'a report::Row,
}

impl Serialize for RowView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (q, row) = (self.q, self.row);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("timestamp", &row.timestamp)?;
        map.serialize_entry("time", &format_time(row.timestamp))?;
        if !q.group_by.is_empty() {
            let group: Vec<(&String, &Option<String>)> =
                q.group_by.iter().zip(&row.group).collect();
            map.serialize_entry("group", &GroupView(&group))?;
        }
        for (agg, value) in q.aggs.iter().zip(&row.values) {
            match agg {
                Agg::Count => map.serialize_entry(agg.name(), &(*value as u64))?,
                _ => map.serialize_entry(agg.name(), value)?,
            }
        }
        map.end()
    }
}

struct GroupView<'a>(&'a [(&'a String, &'a Option<String>)]);

impl Serialize for GroupView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `GET /analytics`: `{average, is_partial, total_nodes, responding_nodes}`, in bincode
/// when `Accept` asks for `application/octet-stream`.
pub async fn analytics(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, PlanError> {
    let q = params_of(&uri, Endpoint::Analytics)?;
    let (merged, nodes) = partials(&state, &q).await?;
    // No window and no group: one group with one bucket, or nothing.
    let Some((_, whole)) = merged.groups.first().and_then(|g| g.buckets.first()) else {
        return Err(no_points(&q, nodes));
    };
    let average = AnalyticsAnswer {
        average: whole.value(&Agg::Avg),
        is_partial: nodes.partial,
        total_nodes: nodes.total,
        responding_nodes: nodes.responding,
    };
    Ok(answer(answer_format(&headers), &average))
}

/// `POST /compute` on a worker: the parameters as a JSON object (or in the query string)
/// → this worker's partial aggregates (`Partials`), JSON or bincode by `Accept`.
pub async fn compute(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PlanError> {
    let raw = body::read(&headers, body, state.config.max_request_bytes).await?;
    let mut pairs = query_pairs(&uri)?;
    pairs.extend(object_pairs(&raw)?);
    let q = params::parse(&pairs, Endpoint::Compute, now_ms())?;
    let request = ComputeRequest::new(&q, max_points(&state));
    let storage = state.storage.clone();
    let (partials, _) = blocking(move || Ok(partial::compute(&*storage, &request)?)).await?;
    Ok(answer(answer_format(&headers), &partials))
}

fn params_of(uri: &Uri, endpoint: Endpoint) -> Result<AggregateQuery, PlanError> {
    Ok(params::parse(&query_pairs(uri)?, endpoint, now_ms())?)
}

fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, PlanError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| PlanError::invalid(format!("unreadable query string: {}", e.body_text())))
}

/// A JSON object of parameters as `(name, value)` pairs: a string or number is one
/// value, an array one per item; an empty body is no parameters.
fn object_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, PlanError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let object: Map<String, Value> = serde_json::from_slice(raw).map_err(|e| {
        PlanError::invalid(format!("the body must be a JSON object of parameters: {e}"))
    })?;
    let mut pairs = Vec::new();
    for (name, value) in object {
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            let text = match item {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(PlanError::invalid(format!(
                        "parameter {name:?}: {other} is not a string or a number"
                    ))
                    .detail("parameter", name))
                }
            };
            pairs.push((name.clone(), text));
        }
    }
    Ok(pairs)
}

fn max_points(state: &AppState) -> Option<u64> {
    let max = state.config.query_max_points;
    (max > 0).then_some(max)
}

/// The merged partials of `q` and who answered: pushed down to the workers on a control
/// node, else over this node's storage.
async fn partials(
    state: &Arc<AppState>,
    q: &AggregateQuery,
) -> Result<(Partials, Nodes), PlanError> {
    let request = ComputeRequest::new(q, max_points(state));
    let shared = state.clone();
    let (merged, nodes) = blocking(move || {
        let (merged, coverage, total) = match &shared.cluster {
            Some(forming) => {
                let cluster = forming.cluster()?;
                let (merged, coverage) = cluster.compute(&request)?;
                (merged, coverage, cluster.worker_count() as u32)
            }
            None => {
                let (merged, coverage) = partial::compute(&*shared.storage, &request)?;
                (merged, coverage, 1)
            }
        };
        let nodes = match coverage {
            Some(c) => Nodes {
                partial: true,
                total: c.total_nodes,
                responding: c.responding_nodes,
            },
            None => Nodes {
                partial: false,
                total,
                responding: total,
            },
        };
        Ok((merged, nodes))
    })
    .await?;
    if nodes.partial && state.config.deny_partial_response {
        return Err(PlanError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::StorageError,
            format!(
                "partial response denied: {} of {} workers responded",
                nodes.responding, nodes.total
            ),
        )
        .detail("responding_nodes", nodes.responding)
        .detail("total_nodes", nodes.total));
    }
    Ok((merged, nodes))
}

/// `/analytics` over a range without a point of the metric: 404 `NOT_FOUND` (an average
/// of nothing is not a number; an answer that is always a number is simpler to decode).
fn no_points(q: &AggregateQuery, nodes: Nodes) -> PlanError {
    PlanError::new(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        format!(
            "no points of {:?} match between {} and {}",
            q.key,
            format_time(q.from),
            format_time(q.to)
        ),
    )
    .detail("is_partial", nodes.partial)
    .detail("total_nodes", nodes.total)
    .detail("responding_nodes", nodes.responding)
}

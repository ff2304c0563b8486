//! One worker's `/internal/v1/*` API, called by a control node (the bytes: `wire.rs`).
//!
//! Every call tells apart a worker that did not answer ([`CallError::Unreachable`]:
//! connection refused or reset, timeout, a garbled answer; the router asks another
//! replica or keeps a hint) from one that answered with an error
//! ([`CallError::Refused`]: the storage error it raised, passed on as it is).

use std::time::Duration;

use kairosdb_model::{DataType, HealthStatus, SeriesData, SeriesKey, StorageError, Tags};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::analytics::{codec, ComputeRequest, Partials};
use crate::placement::WorkerId;
use crate::wire::{self, ReadRequest, Selection, WireError};

/// The header that carries `cluster_secret` on every node-to-node call.
pub const SECRET_HEADER: &str = "x-kairosdb-cluster-secret";

/// The header that carries the caller's layout epoch on a data call (write, read,
/// compute, delete); a worker that knows a newer one answers 409 with a `stale_layout`
/// error (`WireError::limit` = its epoch).
pub const EPOCH_HEADER: &str = "x-kairosdb-layout-epoch";

/// The header that makes `POST /internal/v1/write` a backfill (`1`): the worker stores
/// only the points it does not hold yet (`Storage::backfill`), as a partition copy must.
pub const BACKFILL_HEADER: &str = "x-kairosdb-backfill";

/// The `WireError::kind` of a refusal for routing by an older layout.
pub const STALE_LAYOUT: &str = "stale_layout";

/// An HTTP client for `/internal/v1/*` calls: calls time out after `timeout` (connecting
/// included) and carry the cluster secret when there is one.
pub fn internal_client(timeout: Duration, secret: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        let mut value = reqwest::header::HeaderValue::from_str(secret)
            .expect("BUG: the configuration checked cluster_secret is a header value");
        value.set_sensitive(true);
        headers.insert(SECRET_HEADER, value);
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("BUG: a plain HTTP client always builds")
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No usable answer: the worker is down, slow or unreachable.
    Unreachable(String),
    /// The worker answered with this error.
    Refused(StorageError),
    /// The worker knows a newer layout (this epoch) than the call was routed by.
    Stale(u64),
}

impl CallError {
    pub fn into_storage_error(self) -> StorageError {
        match self {
            CallError::Unreachable(message) => StorageError::Unavailable {
                message,
                retry_after_secs: 1,
            },
            CallError::Refused(e) => e,
            CallError::Stale(epoch) => StorageError::Unavailable {
                message: format!("the cluster's layout changed (epoch {epoch}); retry"),
                retry_after_secs: 1,
            },
        }
    }
}

/// A series key as JSON: `[metric, data type, [[name, value], ...]]`.
#[derive(Serialize, Deserialize)]
pub struct KeyJson(pub String, pub String, pub Vec<(String, String)>);

impl KeyJson {
    pub fn new(k: &SeriesKey) -> KeyJson {
        let tags = k
            .tags
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        KeyJson(k.metric.clone(), k.data_type.store_name().to_owned(), tags)
    }

    pub fn into_key(self) -> Result<SeriesKey, String> {
        let data_type = DataType::from_store_name(&self.1)
            .ok_or_else(|| format!("unknown data type {:?}", self.1))?;
        Ok(SeriesKey::new(self.0, data_type, Tags::from_pairs(self.2)))
    }
}

/// A metadata call: the `ServiceStore` methods (the changes are Raft commands,
/// `raft::Command::Meta`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MetaCall {
    Set {
        service: String,
        service_key: String,
        key: String,
        value: String,
    },
    Get {
        service: String,
        service_key: String,
        key: String,
    },
    ServiceKeys {
        service: String,
    },
    Keys {
        service: String,
        service_key: String,
        starts_with: Option<String>,
    },
    Delete {
        service: String,
        service_key: String,
        key: String,
    },
}

/// The answer of `GET /internal/v1/health`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkerHealth {
    pub ok: bool,
    pub detail: String,
}

impl From<HealthStatus> for WorkerHealth {
    fn from(h: HealthStatus) -> WorkerHealth {
        WorkerHealth {
            ok: h.ok,
            detail: h.detail,
        }
    }
}

/// One worker.
#[derive(Debug)]
pub struct WorkerClient {
    pub id: WorkerId,
    /// `host:port` as configured.
    pub address: String,
    base: String,
    http: reqwest::Client,
}

impl WorkerClient {
    /// Calls time out after `timeout` (connecting included).
    pub fn new(
        id: WorkerId,
        address: &str,
        timeout: Duration,
        secret: Option<&str>,
    ) -> WorkerClient {
        let http = internal_client(timeout, secret);
        WorkerClient {
            id,
            address: address.to_owned(),
            base: format!("http://{address}/internal/v1"),
            http,
        }
    }

    /// Stores a batch encoded by [`wire::encode_write`], routed by layout `epoch` (0: a
    /// hint or a tool, never refused as stale).
    pub async fn write(&self, body: bytes::Bytes, epoch: u64) -> Result<(), CallError> {
        let request = self.request("write", body, "application/octet-stream", epoch);
        self.send(request).await.map(drop)
    }

    /// Stores the points of a batch encoded by [`wire::encode_write`] that the worker does
    /// not hold yet, keeping those it does (a backfill: [`BACKFILL_HEADER`]).
    pub async fn backfill(&self, body: bytes::Bytes, epoch: u64) -> Result<(), CallError> {
        let request = self
            .request("write", body, "application/octet-stream", epoch)
            .header(BACKFILL_HEADER, "1");
        self.send(request).await.map(drop)
    }

    /// A partition copy's read ([`ReadRequest::ttls`]): the series with their TTLs, as the
    /// batch to write elsewhere.
    pub async fn read_copy(
        &self,
        request: &ReadRequest,
        epoch: u64,
    ) -> Result<kairosdb_model::WriteBatch, CallError> {
        debug_assert!(request.ttls, "BUG: a copy's read asks for TTLs");
        let body = self
            .call("read", json(request), "application/json", epoch)
            .await?;
        wire::decode_write(&body).map_err(|e| self.garbled(e))
    }

    pub async fn read(
        &self,
        request: &ReadRequest,
        epoch: u64,
    ) -> Result<Vec<SeriesData>, CallError> {
        let body = self
            .call("read", json(request), "application/json", epoch)
            .await?;
        wire::decode_series(&body).map_err(|e| self.garbled(e))
    }

    pub async fn series_keys(&self, selection: &Selection) -> Result<Vec<SeriesKey>, CallError> {
        let keys: Vec<KeyJson> = self.call_json("series_keys", selection).await?;
        keys.into_iter()
            .map(|k| k.into_key().map_err(|e| self.garbled(e)))
            .collect()
    }

    /// `kind`: `metric_names` (with `prefix`), `tag_names` or `tag_values`.
    pub async fn names(&self, kind: &str, prefix: Option<&str>) -> Result<Vec<String>, CallError> {
        self.call_json("names", &(kind, prefix)).await
    }

    /// Partial aggregates of the request's shard (`POST /internal/v1/compute`: JSON in,
    /// bincode out, so every float arrives with its exact bits).
    pub async fn compute(
        &self,
        request: &ComputeRequest,
        epoch: u64,
    ) -> Result<Partials, CallError> {
        let body = self
            .call("compute", json(request), "application/json", epoch)
            .await?;
        codec::decode(&body, body.len() as u64).map_err(|e| self.garbled(e))
    }

    pub async fn delete(&self, selection: &Selection, epoch: u64) -> Result<u64, CallError> {
        let body = self
            .call("delete", json(selection), "application/json", epoch)
            .await?;
        serde_json::from_slice(&body).map_err(|e| self.garbled(e))
    }

    pub async fn index(&self, selection: &Selection) -> Result<u64, CallError> {
        self.call_json("index", selection).await
    }

    pub async fn sync(&self) -> Result<(), CallError> {
        self.call("sync", Vec::new(), "application/json", 0)
            .await
            .map(drop)
    }

    pub async fn health(&self) -> Result<WorkerHealth, CallError> {
        let url = format!("{}/health", self.base);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body).map_err(|e| self.garbled(e))
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Result<T, CallError> {
        let body = self
            .call(path, json(request), "application/json", 0)
            .await?;
        serde_json::from_slice(&body).map_err(|e| self.garbled(e))
    }

    /// `POST /internal/v1/{path}`: the answer's body on 200, else the worker's error.
    async fn call(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: &'static str,
        epoch: u64,
    ) -> Result<bytes::Bytes, CallError> {
        self.send(self.request(path, body, content_type, epoch))
            .await
    }

    /// `POST /internal/v1/{path}` routed by layout `epoch`, not sent yet.
    fn request(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: &'static str,
        epoch: u64,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/{path}", self.base);
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if epoch > 0 {
            request = request.header(EPOCH_HEADER, epoch);
        }
        request
    }

    /// Sends `request`: the answer's body on 200, else the worker's error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes, CallError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return Ok(body);
        }
        match serde_json::from_slice::<WireError>(&body) {
            Ok(e) if e.kind == STALE_LAYOUT => Err(CallError::Stale(e.limit)),
            Ok(e) => Err(CallError::Refused(e.into_storage_error(&self.address))),
            // Not our worker's answer (a proxy, another server on that port).
            Err(_) => Err(CallError::Unreachable(format!(
                "worker {} answered {status} without an error body",
                self.address
            ))),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> CallError {
        let why = if e.is_timeout() {
            "timed out"
        } else {
            "unreachable"
        };
        CallError::Unreachable(format!("worker {} {why}: {e}", self.address))
    }

    fn garbled(&self, e: impl std::fmt::Display) -> CallError {
        CallError::Unreachable(format!("worker {} sent a bad answer: {e}", self.address))
    }
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("BUG: wire types always serialise")
}

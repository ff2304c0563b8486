//! [`ScyllaSession`]: the [`Session`] on a real cluster, through the `scylla`
//! driver (choice and measurements: `shared/dependencies.md` §1).
//!
//! * Connects lazily: [`ScyllaSession::new`] never blocks on the network, and
//!   every call first makes sure a connection exists (at most one attempt per
//!   `connect_timeout`), so the server starts — and queues ingest — while the
//!   cluster is down.
//! * Every statement is prepared once per connection from [`crate::Cql`]'s text;
//!   reads run at `read_consistency`, writes at `write_consistency` (KairosDB's
//!   `read_consistency_level` ONE / `write_consistency_level` QUORUM), through two
//!   execution profiles. LZ4 frame compression, token-aware routing (the
//!   driver's default policy).
//! * Writes (§7.4): `data_points` inserts are grouped by their primary replica
//!   (token → first endpoint, as KairosDB's `CQLBatch` does per host) into
//!   UNLOGGED batches of at most [`BATCH_STATEMENTS`]; index rows and deletes go
//!   in their own UNLOGGED batches. All batches of one call run concurrently.
//! * Reads: the ranges of one call run `simultaneous_queries` at a time, each
//!   paged transparently ([`PAGE_SIZE`] rows per page).
//!
//! The driver runs on its own small tokio runtime, so the synchronous
//! [`Session`] calls can be made from any thread (the server calls storage from
//! `spawn_blocking`, the delivery queue from its own thread).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session as Driver;
use scylla::client::session_builder::SessionBuilder;
use scylla::cluster::ClusterState;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::Compression;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::value::CqlTimestamp;

use crate::index::DATA_POINTS_TABLE;
use crate::rowspec::{column_bytes, parse_column, RowTimeUnit};
use crate::schema::Cql;
use crate::session::{Cell, CellRange, CqlError, Freshness, Mutation, RowKeysRow, Session};
use kairosdb_model::Tags;

/// Most statements in one UNLOGGED batch (KairosDB's default batch is 200
/// events; 100 keeps a batch of long row keys under Cassandra's 50 KiB
/// `batch_size_fail_threshold`).
pub const BATCH_STATEMENTS: usize = 100;

/// Rows per page of a paged read.
pub const PAGE_SIZE: i32 = 5000;

/// Batches of one `apply` in flight at once.
const WRITES_IN_FLIGHT: usize = 16;

/// Connection settings (KairosDB's `write_cluster.*`).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `host[:port]` contact points (port 9042 when omitted).
    pub contact_points: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub read_consistency: Consistency,
    pub write_consistency: Consistency,
    /// Prefer this data centre (`local_dc_name`).
    pub local_dc: Option<String>,
    /// `simultaneous_cql_queries`: data point reads in flight per call.
    pub simultaneous_queries: usize,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    pub compression: bool,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions {
            contact_points: vec!["localhost".into()],
            user: None,
            password: None,
            read_consistency: Consistency::One,
            write_consistency: Consistency::Quorum,
            local_dc: None,
            simultaneous_queries: 20,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(12),
            compression: true,
        }
    }
}

/// Parses a consistency level by its CQL name (`ONE`, `QUORUM`, `LOCAL_QUORUM`, ...).
pub fn parse_consistency(name: &str) -> Option<Consistency> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => return None,
    })
}

/// The `service_index` statements of one connection (spec §7.7).
struct ServicePrepared {
    insert_value: PreparedStatement,
    delete_value: PreparedStatement,
    insert_mtime: PreparedStatement,
    select_value: PreparedStatement,
    select_keys: PreparedStatement,
    select_keys_prefix: PreparedStatement,
    select_service_keys: PreparedStatement,
}

impl Prepared {
    fn services(&self) -> Result<&ServicePrepared, CqlError> {
        self.services.as_ref().ok_or_else(|| {
            CqlError::failed(
                "the service_index table could not be prepared in this keyspace (metadata is unavailable)",
            )
        })
    }
}

/// The prepared statements of one connection.
struct Prepared {
    insert_data_point: PreparedStatement,
    insert_row_key: PreparedStatement,
    insert_tag_indexed_row_key: PreparedStatement,
    delete_tag_indexed_row_key: PreparedStatement,
    insert_row_key_time: PreparedStatement,
    insert_string_index: PreparedStatement,
    delete_row: PreparedStatement,
    delete_columns: PreparedStatement,
    delete_row_key: PreparedStatement,
    delete_row_key_time: PreparedStatement,
    delete_row_key_index_entry: PreparedStatement,
    delete_string_index: PreparedStatement,
    /// `None` when `service_index` could not be prepared (a keyspace we did not create,
    /// whose KairosDB kept it on a separate meta cluster): metadata calls then fail,
    /// points do not, as KairosDB tolerates a failed prepare of its listing statement.
    services: Option<ServicePrepared>,
    select_strings: PreparedStatement,
    select_strings_prefix: PreparedStatement,
    select_any_string: PreparedStatement,
    select_row_key_index: PreparedStatement,
    select_row_times: PreparedStatement,
    select_row_keys: PreparedStatement,
    /// Indexed by `descending as usize * 2 + limit as usize`.
    select_cells: [PreparedStatement; 4],
}

struct Connected {
    driver: Arc<Driver>,
    /// `None` until the schema exists (statements cannot be prepared before).
    prepared: Option<Arc<Prepared>>,
}

/// A [`Session`] on the `scylla` driver. See the module docs.
pub struct ScyllaSession {
    runtime: tokio::runtime::Runtime,
    opts: ClusterOptions,
    cql: Cql,
    state: Mutex<Option<Connected>>,
    /// Batches Cassandra refused as too large and that were split and resent.
    splits: AtomicU64,
    last_attempt: Mutex<Option<(Instant, String)>>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> CqlError {
    CqlError::unavailable(format!("{what}: {e}"))
}

impl ScyllaSession {
    /// Prepares a session; connects on first use.
    pub fn new(cql: Cql, opts: ClusterOptions) -> Result<ScyllaSession, CqlError> {
        if opts.contact_points.is_empty() {
            return Err(CqlError::failed("no Cassandra contact points configured"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cassandra")
            .enable_all()
            .build()
            .map_err(|e| CqlError::failed(format!("cannot start the driver runtime: {e}")))?;
        Ok(ScyllaSession {
            runtime,
            opts,
            cql,
            state: Mutex::new(None),
            splits: AtomicU64::new(0),
            last_attempt: Mutex::new(None),
        })
    }

    /// Runs one CQL text without binds (administration, e.g. dropping a test keyspace).
    pub fn run(&self, cql: &str) -> Result<(), CqlError> {
        let d = self.driver()?;
        self.runtime.block_on(async {
            d.query_unpaged(cql, ())
                .await
                .map_err(|e| failed(&format!("{cql:?}"), e))?;
            Ok(())
        })
    }

    /// Batches Cassandra refused as too large ("Batch too large": over its
    /// `batch_size_fail_threshold`) that were split in halves and resent.
    pub fn batches_split(&self) -> u64 {
        self.splits.load(Ordering::Relaxed)
    }

    /// The driver, connecting first if needed.
    fn driver(&self) -> Result<Arc<Driver>, CqlError> {
        if let Some(c) = &*self.state.lock() {
            return Ok(c.driver.clone());
        }
        let mut last = self.last_attempt.lock();
        if let Some(c) = &*self.state.lock() {
            return Ok(c.driver.clone());
        }
        if let Some((at, msg)) = &*last {
            if at.elapsed() < self.opts.connect_timeout {
                return Err(CqlError::unavailable(msg.clone()));
            }
        }
        match self.runtime.block_on(self.connect()) {
            Ok(driver) => {
                let driver = Arc::new(driver);
                *self.state.lock() = Some(Connected {
                    driver: driver.clone(),
                    prepared: None,
                });
                *last = None;
                Ok(driver)
            }
            Err(e) => {
                *last = Some((Instant::now(), e.message.clone()));
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Driver, CqlError> {
        let profile = ExecutionProfile::builder()
            .consistency(self.opts.read_consistency)
            .request_timeout(Some(self.opts.request_timeout))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.opts.contact_points)
            .connection_timeout(self.opts.connect_timeout)
            .default_execution_profile_handle(profile.into_handle());
        if self.opts.compression {
            builder = builder.compression(Some(Compression::Lz4));
        }
        if let (Some(u), Some(p)) = (&self.opts.user, &self.opts.password) {
            builder = builder.user(u, p);
        }
        if let Some(dc) = &self.opts.local_dc {
            builder = builder.prefer_datacenter(dc.clone());
        }
        let connect = builder.build();
        match tokio::time::timeout(self.opts.connect_timeout * 2, connect).await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(failed("cannot connect to Cassandra", e)),
            Err(_) => Err(CqlError::unavailable(format!(
                "cannot connect to Cassandra at {}: timed out",
                self.opts.contact_points.join(",")
            ))),
        }
    }

    /// The prepared statements, preparing them on first use.
    fn prepared(&self) -> Result<(Arc<Driver>, Arc<Prepared>), CqlError> {
        let driver = self.driver()?;
        if let Some(Connected {
            prepared: Some(p), ..
        }) = &*self.state.lock()
        {
            return Ok((driver, p.clone()));
        }
        let p = Arc::new(self.runtime.block_on(self.prepare_all(&driver))?);
        if let Some(c) = &mut *self.state.lock() {
            c.prepared = Some(p.clone());
        }
        Ok((driver, p))
    }

    async fn prepare_all(&self, d: &Driver) -> Result<Prepared, CqlError> {
        let write = ExecutionProfile::builder()
            .consistency(self.opts.write_consistency)
            .request_timeout(Some(self.opts.request_timeout))
            .build()
            .into_handle();
        let prep = |text: String, writes: bool| {
            let write = write.clone();
            async move {
                let mut p = d
                    .prepare(text.as_str())
                    .await
                    .map_err(|e| failed(&format!("preparing {text:?}"), e))?;
                p.set_page_size(PAGE_SIZE);
                // Every statement is idempotent (inserts and deletes of fixed cells at
                // fixed timestamps), so the driver may retry it after a timeout.
                p.set_is_idempotent(true);
                if writes {
                    p.set_execution_profile_handle(Some(write));
                }
                Ok::<_, CqlError>(p)
            }
        };
        let c = &self.cql;
        Ok(Prepared {
            insert_data_point: prep(c.insert_data_point(), true).await?,
            insert_row_key: prep(c.insert_row_key(), true).await?,
            insert_tag_indexed_row_key: prep(c.insert_tag_indexed_row_key(), true).await?,
            delete_tag_indexed_row_key: prep(c.delete_tag_indexed_row_key(), true).await?,
            insert_row_key_time: prep(c.insert_row_key_time(), true).await?,
            insert_string_index: prep(c.insert_string_index(), true).await?,
            delete_row: prep(c.delete_data_points_row(), true).await?,
            delete_columns: prep(c.delete_data_points_range(), true).await?,
            delete_row_key: prep(c.delete_row_key(), true).await?,
            delete_row_key_time: prep(c.delete_row_key_time(), true).await?,
            delete_row_key_index_entry: prep(c.delete_row_key_index_entry(), true).await?,
            delete_string_index: prep(c.delete_string_index(), true).await?,
            services: async {
                Ok::<_, CqlError>(ServicePrepared {
                    insert_value: prep(c.service_index_insert(), true).await?,
                    delete_value: prep(c.service_index_delete_key(), true).await?,
                    insert_mtime: prep(c.service_index_insert_modified_time(), true).await?,
                    select_value: prep(c.service_index_get(), false).await?,
                    select_keys: prep(c.service_index_list_keys(), false).await?,
                    select_keys_prefix: prep(c.service_index_list_keys_prefix(), false).await?,
                    select_service_keys: prep(c.service_index_list_service_keys(), false)
                        .await?,
                })
            }
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "metadata unavailable: cannot prepare service_index statements");
            })
            .ok(),
            select_strings: prep(c.select_metric_names(), false).await?,
            select_strings_prefix: prep(c.select_metric_names_prefix(), false).await?,
            select_any_string: prep(c.select_any_metric_name(), false).await?,
            select_row_key_index: prep(c.select_row_key_index(), false).await?,
            select_row_times: prep(c.select_row_key_times(), false).await?,
            select_row_keys: prep(c.select_row_keys(), false).await?,
            select_cells: [
                prep(c.select_data_points(false, false), false).await?,
                prep(c.select_data_points(false, true), false).await?,
                prep(c.select_data_points(true, false), false).await?,
                prep(c.select_data_points(true, true), false).await?,
            ],
        })
    }

    /// The statement as it must run for `fresh`: a strong read uses a consistency
    /// that overlaps every write acknowledged at the write consistency.
    fn at(&self, ps: &PreparedStatement, fresh: Freshness) -> PreparedStatement {
        let mut ps = ps.clone();
        if fresh == Freshness::Strong {
            ps.set_consistency(match self.opts.write_consistency {
                c @ (Consistency::Quorum | Consistency::LocalQuorum | Consistency::EachQuorum) => c,
                Consistency::All => Consistency::One,
                _ => Consistency::All,
            });
        }
        ps
    }

    /// Runs a paged read and collects its rows.
    async fn rows<R>(
        d: &Driver,
        ps: &PreparedStatement,
        values: impl SerializeRow,
        limit: Option<usize>,
    ) -> Result<Vec<R>, CqlError>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let pager = d
            .execute_iter(ps.clone(), values)
            .await
            .map_err(|e| failed("read", e))?;
        let stream = pager
            .rows_stream::<R>()
            .map_err(|e| CqlError::failed(format!("unexpected row type: {e}")))?;
        let stream = stream.take(limit.unwrap_or(usize::MAX));
        stream.try_collect().await.map_err(|e| failed("read", e))
    }

    /// The statements of `mutations`, grouped as they are batched: data points by
    /// their primary replica, everything else together (`None`).
    fn group_by_replica<'a>(
        &self,
        d: &Driver,
        p: &'a Prepared,
        mutations: &'a [Mutation],
    ) -> HashMap<Option<HostKey>, Vec<Stmt<'a>>> {
        let owners = Owners {
            keyspace: self.cql.keyspace().as_str().to_string(),
            state: d.get_cluster_state(),
        };
        let mut groups: HashMap<Option<HostKey>, Vec<Stmt<'_>>> = HashMap::new();
        for m in mutations {
            let (ps, values, host) = bind(p, m, &owners);
            groups.entry(host).or_default().push(Stmt {
                ps,
                values,
                bytes: m.approx_bytes(),
            });
        }
        groups
    }

    /// Runs the batches, [`WRITES_IN_FLIGHT`] at a time, until the first error.
    fn run_batches(&self, d: &Driver, batches: Vec<Vec<Stmt<'_>>>) -> Result<(), CqlError> {
        let consistency = self.opts.write_consistency;
        self.runtime.block_on(async {
            stream::iter(batches)
                .map(|batch| run_batch(d, batch, consistency, &self.splits))
                .buffer_unordered(WRITES_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        })
    }
}

/// Estimated bytes of a batch Cassandra accepts: below its default
/// `batch_size_fail_threshold` of 50 KiB, with room for the statements' framing.
pub const BATCH_BYTES: usize = 40 * 1024;

/// One statement of a batch with its values and estimated size.
struct Stmt<'a> {
    ps: &'a PreparedStatement,
    values: Values<'a>,
    bytes: usize,
}

/// Runs one UNLOGGED batch. When Cassandra still finds it too large (the size
/// estimate is only an estimate), it is split in halves and each half retried.
fn run_batch<'a>(
    d: &'a Driver,
    stmts: Vec<Stmt<'a>>,
    consistency: Consistency,
    splits: &'a AtomicU64,
) -> futures_util::future::BoxFuture<'a, Result<(), CqlError>> {
    Box::pin(async move {
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_consistency(consistency);
        batch.set_is_idempotent(true);
        for st in &stmts {
            batch.append_statement(st.ps.clone());
        }
        let values: Vec<&Values<'a>> = stmts.iter().map(|st| &st.values).collect();
        match d.batch(&batch, values).await {
            Ok(_) => Ok(()),
            Err(e) if stmts.len() > 1 && is_batch_too_large(&e) => {
                splits.fetch_add(1, Ordering::Relaxed);
                let mut first = stmts;
                let second = first.split_off(first.len() / 2);
                run_batch(d, first, consistency, splits).await?;
                run_batch(d, second, consistency, splits).await
            }
            Err(e) => Err(classify_write_error(&e)),
        }
    })
}

fn is_batch_too_large(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Invalid, msg))
            if msg.contains("Batch too large")
    )
}

/// A write error Cassandra will give again however often it is retried (the
/// statement or its values are invalid) is permanent (`unavailable = false`), so the
/// delivery queue drops that batch, logs and counts it, instead of blocking every
/// later batch behind it. Everything else (timeouts, unavailable replicas, broken
/// connections, authentication) is retried.
fn classify_write_error(e: &ExecutionError) -> CqlError {
    let permanent = match e {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(a) => matches!(
            a,
            RequestAttemptError::DbError(DbError::Invalid | DbError::SyntaxError, _)
                | RequestAttemptError::SerializationError(_)
                | RequestAttemptError::CqlRequestSerialization(_)
        ),
        _ => false,
    };
    let message = format!("write: {e}");
    if permanent {
        CqlError::failed(message)
    } else {
        CqlError::unavailable(message)
    }
}

/// The token ring of the cluster, to find the node that owns a partition.
struct Owners {
    keyspace: String,
    state: Arc<ClusterState>,
}

impl Owners {
    /// The primary replica (first endpoint of the token) of the `data_points`
    /// partition `values` bind `ps` to.
    fn primary(&self, ps: &PreparedStatement, values: &impl SerializeRow) -> Option<HostKey> {
        ps.calculate_token(values).ok().flatten().and_then(|t| {
            self.state
                .get_token_endpoints(&self.keyspace, "data_points", t)
                .first()
                .map(|(n, _)| HostKey(n.host_id.as_u128()))
        })
    }
}

/// One mutation as its prepared statement and values, and for a data point the
/// node that owns its partition.
fn bind<'a>(
    p: &'a Prepared,
    m: &'a Mutation,
    owners: &Owners,
) -> (&'a PreparedStatement, Values<'a>, Option<HostKey>) {
    let (ps, values): (&PreparedStatement, Values<'_>) = match m {
        Mutation::DataPoint {
            key,
            column,
            value,
            ttl,
            timestamp_ms,
        } => {
            let v = (
                key.as_slice(),
                column_bytes(*column).to_vec(),
                value.as_slice(),
                *ttl as i32,
                *timestamp_ms,
            );
            let host = owners.primary(&p.insert_data_point, &v);
            return (&p.insert_data_point, Box::new(v), host);
        }
        Mutation::RowKey {
            metric,
            row_time,
            data_type,
            tags,
            ttl,
            timestamp_ms,
        } => (
            &p.insert_row_key,
            Box::new(row_key(metric, *row_time, data_type, tags).with_ttl_at(*ttl, *timestamp_ms)),
        ),
        Mutation::DeleteRowKey {
            metric,
            row_time,
            data_type,
            tags,
            timestamp_ms,
        } => (
            &p.delete_row_key,
            Box::new(row_key(metric, *row_time, data_type, tags).deleted_at(*timestamp_ms)),
        ),
        Mutation::TagIndexedRowKey {
            metric,
            row_time,
            data_type,
            single_tag_pair,
            tag_collection_hash,
            tags,
            ttl,
            timestamp_ms,
        } => (
            &p.insert_tag_indexed_row_key,
            Box::new(
                tag_indexed_row_key(
                    metric,
                    *row_time,
                    data_type,
                    single_tag_pair,
                    *tag_collection_hash,
                    tags,
                )
                .with_ttl_at(*ttl, *timestamp_ms),
            ),
        ),
        Mutation::DeleteTagIndexedRowKey {
            metric,
            row_time,
            data_type,
            single_tag_pair,
            tag_collection_hash,
            tags,
            timestamp_ms,
        } => (
            &p.delete_tag_indexed_row_key,
            Box::new(
                tag_indexed_row_key(
                    metric,
                    *row_time,
                    data_type,
                    single_tag_pair,
                    *tag_collection_hash,
                    tags,
                )
                .deleted_at(*timestamp_ms),
            ),
        ),
        Mutation::RowKeyTime {
            metric,
            row_time,
            ttl,
            timestamp_ms,
        } => (
            &p.insert_row_key_time,
            Box::new(row_key_time(metric, *row_time).with_ttl_at(*ttl, *timestamp_ms)),
        ),
        Mutation::DeleteRowKeyTime {
            metric,
            row_time,
            timestamp_ms,
        } => (
            &p.delete_row_key_time,
            Box::new(row_key_time(metric, *row_time).deleted_at(*timestamp_ms)),
        ),
        Mutation::StringIndex {
            key,
            name,
            timestamp_ms,
        } => (
            &p.insert_string_index,
            Box::new((*key, name.as_str(), *timestamp_ms)),
        ),
        Mutation::DeleteStringIndex {
            key,
            name,
            timestamp_ms,
        } => (
            &p.delete_string_index,
            Box::new((*timestamp_ms, *key, name.as_str())),
        ),
        Mutation::DeleteRow { key, timestamp_ms } => {
            (&p.delete_row, Box::new((*timestamp_ms, key.as_slice())))
        }
        Mutation::DeleteColumns {
            key,
            first,
            last,
            timestamp_ms,
        } => (
            &p.delete_columns,
            Box::new((
                *timestamp_ms,
                key.as_slice(),
                column_bytes(*first).to_vec(),
                column_bytes(*last).to_vec(),
            )),
        ),
        Mutation::DeleteRowKeyIndexEntry {
            metric,
            row_key,
            timestamp_ms,
        } => (
            &p.delete_row_key_index_entry,
            Box::new((*timestamp_ms, metric.as_bytes(), row_key.as_slice())),
        ),
        Mutation::ServiceValue {
            service,
            service_key,
            key,
            value,
            timestamp_ms,
        } => (
            &services_of(p).insert_value,
            Box::new((
                service.as_str(),
                service_key.as_str(),
                key.as_str(),
                value.as_str(),
                *timestamp_ms,
            )),
        ),
        Mutation::DeleteServiceValue {
            service,
            service_key,
            key,
            timestamp_ms,
        } => (
            &services_of(p).delete_value,
            Box::new((
                *timestamp_ms,
                service.as_str(),
                service_key.as_str(),
                key.as_str(),
            )),
        ),
        Mutation::ServiceKeyModified {
            service,
            service_key,
            timestamp_ms,
        } => (
            &services_of(p).insert_mtime,
            Box::new((service.as_str(), service_key.as_str(), *timestamp_ms)),
        ),
    };
    (ps, values, None)
}

/// The service statements for a bind; `apply` has checked they exist.
fn services_of(p: &Prepared) -> &ServicePrepared {
    p.services
        .as_ref()
        .unwrap_or_else(|| panic!("BUG: a service_index mutation bound without its statements"))
}

/// Binds of a `row_keys` primary key: metric, table, row time, data type, tags.
type RowKeyBinds<'a> = (
    &'a str,
    &'static str,
    CqlTimestamp,
    &'a str,
    BTreeMap<&'a str, &'a str>,
);

fn row_key<'a>(
    metric: &'a str,
    row_time: i64,
    data_type: &'a str,
    tags: &'a Tags,
) -> RowKeyBinds<'a> {
    (
        metric,
        DATA_POINTS_TABLE,
        CqlTimestamp(row_time),
        data_type,
        tag_map(tags),
    )
}

/// Binds of a `tag_indexed_row_keys` primary key: metric, table, row time, data type,
/// single tag pair, tag collection hash, tags.
type TagIndexedBinds<'a> = (
    &'a str,
    &'static str,
    CqlTimestamp,
    &'a str,
    &'a str,
    i32,
    BTreeMap<&'a str, &'a str>,
);

fn tag_indexed_row_key<'a>(
    metric: &'a str,
    row_time: i64,
    data_type: &'a str,
    single_tag_pair: &'a str,
    tag_collection_hash: i32,
    tags: &'a Tags,
) -> TagIndexedBinds<'a> {
    (
        metric,
        DATA_POINTS_TABLE,
        CqlTimestamp(row_time),
        data_type,
        single_tag_pair,
        tag_collection_hash,
        tag_map(tags),
    )
}

/// Binds of a `row_key_time_index` primary key: metric, table, row time.
fn row_key_time(metric: &str, row_time: i64) -> (&str, &'static str, CqlTimestamp) {
    (metric, DATA_POINTS_TABLE, CqlTimestamp(row_time))
}

/// A primary key's binds with the write time (ms) added where the statement
/// takes it (see [`Cql`]): an index insert ends with `USING TTL ? AND TIMESTAMP ?`
/// after the key's columns; a delete starts with `USING TIMESTAMP ?`.
trait Stamp {
    type Insert;
    type Delete;
    fn with_ttl_at(self, ttl: u32, timestamp_ms: i64) -> Self::Insert;
    fn deleted_at(self, timestamp_ms: i64) -> Self::Delete;
}

macro_rules! impl_stamp {
    ($($col:ident),+) => {
        impl<$($col),+> Stamp for ($($col,)+) {
            type Insert = ($($col,)+ i32, i64);
            type Delete = (i64, $($col,)+);
            #[allow(non_snake_case)]
            fn with_ttl_at(self, ttl: u32, timestamp_ms: i64) -> Self::Insert {
                let ($($col,)+) = self;
                ($($col,)+ ttl as i32, timestamp_ms)
            }
            #[allow(non_snake_case)]
            fn deleted_at(self, timestamp_ms: i64) -> Self::Delete {
                let ($($col,)+) = self;
                (timestamp_ms, $($col,)+)
            }
        }
    };
}

impl_stamp!(A, B, C);
impl_stamp!(A, B, C, D, E);
impl_stamp!(A, B, C, D, E, F, G);

/// Splits each group into batches of at most [`BATCH_STATEMENTS`] statements and
/// [`BATCH_BYTES`] bytes.
fn into_batches(groups: HashMap<Option<HostKey>, Vec<Stmt<'_>>>) -> Vec<Vec<Stmt<'_>>> {
    let mut batches: Vec<Vec<Stmt<'_>>> = Vec::new();
    for (_, stmts) in groups {
        let mut batch: Vec<Stmt<'_>> = Vec::new();
        let mut bytes = 0;
        for st in stmts {
            if !batch.is_empty()
                && (batch.len() == BATCH_STATEMENTS || bytes + st.bytes > BATCH_BYTES)
            {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += st.bytes;
            batch.push(st);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches
}

fn tag_map(tags: &Tags) -> BTreeMap<&str, &str> {
    tags.iter().collect()
}

type Values<'a> = Box<dyn SerializeRow + Send + Sync + 'a>;

impl Session for ScyllaSession {
    fn create_schema(&self, statements: &[String]) -> Result<(), CqlError> {
        let d = self.driver()?;
        self.runtime.block_on(async {
            for s in statements {
                d.query_unpaged(s.as_str(), ())
                    .await
                    .map_err(|e| failed(&format!("schema statement {s:?}"), e))?;
            }
            Ok(())
        })
    }

    fn spec_value(&self, name: &str) -> Result<Option<String>, CqlError> {
        let d = self.driver()?;
        let text = match name {
            "row_time_unit" => self.cql.select_row_time_unit(),
            "row_width" => self.cql.select_row_width(),
            other => return Err(CqlError::failed(format!("unknown spec entry {other}"))),
        };
        self.runtime.block_on(async {
            let r = d
                .query_unpaged(text.as_str(), ())
                .await
                .map_err(|e| failed("reading spec", e))?
                .into_rows_result()
                .map_err(|e| failed("reading spec", e))?;
            let row = r
                .maybe_first_row::<(Option<String>,)>()
                .map_err(|e| failed("reading spec", e))?;
            Ok(row.and_then(|(v,)| v))
        })
    }

    fn put_spec_value(&self, name: &str, value: &str) -> Result<(), CqlError> {
        let d = self.driver()?;
        let text = match name {
            "row_time_unit" => self.cql.insert_row_time_unit(
                RowTimeUnit::from_spec_str(value).map_err(|e| CqlError::failed(e.to_string()))?,
            ),
            "row_width" => self.cql.insert_row_width(
                value
                    .parse()
                    .map_err(|_| CqlError::failed(format!("row_width {value:?}")))?,
            ),
            other => return Err(CqlError::failed(format!("unknown spec entry {other}"))),
        };
        // Stamped in milliseconds like every other statement (see `Cql`).
        let stamp = (crate::store::wall_ms(),);
        self.runtime.block_on(async {
            d.query_unpaged(text.as_str(), stamp)
                .await
                .map_err(|e| failed("writing spec", e))?;
            Ok(())
        })
    }

    fn apply(&self, mutations: Vec<Mutation>) -> Result<(), CqlError> {
        if mutations.is_empty() {
            return Ok(());
        }
        let (d, p) = self.prepared()?;
        if mutations.iter().any(Mutation::is_service_index) {
            p.services()?;
        }
        let groups = self.group_by_replica(&d, &p, &mutations);
        let batches = into_batches(groups);
        self.run_batches(&d, batches)
    }

    fn strings(
        &self,
        key: &[u8],
        bounds: Option<(&str, &str)>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let limit = limit.map(|l| l as usize);
            let rows: Vec<(String,)> = match (bounds, limit) {
                (None, Some(1)) => Self::rows(&d, &p.select_any_string, (key,), Some(1)).await?,
                (None, l) => Self::rows(&d, &p.select_strings, (key,), l).await?,
                (Some((lo, hi)), l) => {
                    Self::rows(&d, &p.select_strings_prefix, (key, lo, hi), l).await?
                }
            };
            Ok(rows.into_iter().map(|(s,)| s).collect())
        })
    }

    fn service_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let rows: Vec<(Option<String>, Option<i64>)> = Self::rows(
                &d,
                &p.services()?.select_value,
                (service, service_key, key),
                Some(1),
            )
            .await?;
            // A row whose value is null has no value (KairosDB would answer 200 with an
            // empty body there; it never writes one).
            Ok(rows.into_iter().next().and_then(|(v, _)| v))
        })
    }

    fn service_index_keys(
        &self,
        service: &str,
        service_key: &str,
        bounds: Option<(&str, &str)>,
    ) -> Result<Vec<String>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let rows: Vec<(Option<String>,)> = match bounds {
                None => {
                    Self::rows(&d, &p.services()?.select_keys, (service, service_key), None).await?
                }
                Some((lo, hi)) => {
                    Self::rows(
                        &d,
                        &p.services()?.select_keys_prefix,
                        (service, service_key, lo, hi),
                        None,
                    )
                    .await?
                }
            };
            Ok(rows.into_iter().filter_map(|(k,)| k).collect())
        })
    }

    fn service_key_rows(&self, service: &str) -> Result<Vec<String>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let rows: Vec<(String,)> =
                Self::rows(&d, &p.services()?.select_service_keys, (service,), None).await?;
            Ok(rows.into_iter().map(|(k,)| k).collect())
        })
    }

    fn row_key_index(
        &self,
        metric: &str,
        lower: &[u8],
        upper: &[u8],
        fresh: Freshness,
    ) -> Result<Vec<Vec<u8>>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let rows: Vec<(Vec<u8>,)> = Self::rows(
                &d,
                &self.at(&p.select_row_key_index, fresh),
                (metric.as_bytes(), lower, upper),
                None,
            )
            .await?;
            Ok(rows.into_iter().map(|(k,)| k).collect())
        })
    }

    fn row_times(
        &self,
        metric: &str,
        start: i64,
        end: i64,
        fresh: Freshness,
    ) -> Result<Vec<i64>, CqlError> {
        let (d, p) = self.prepared()?;
        self.runtime.block_on(async {
            let rows: Vec<(CqlTimestamp,)> = Self::rows(
                &d,
                &self.at(&p.select_row_times, fresh),
                (
                    metric,
                    DATA_POINTS_TABLE,
                    CqlTimestamp(start),
                    CqlTimestamp(end),
                ),
                None,
            )
            .await?;
            Ok(rows.into_iter().map(|(t,)| t.0).collect())
        })
    }

    fn row_keys(
        &self,
        metric: &str,
        row_times: &[i64],
        fresh: Freshness,
    ) -> Result<Vec<RowKeysRow>, CqlError> {
        let (d, p) = self.prepared()?;
        let select = self.at(&p.select_row_keys, fresh);
        type Row = (
            CqlTimestamp,
            Option<String>,
            Option<BTreeMap<String, String>>,
            Option<i32>,
        );
        self.runtime.block_on(async {
            let per_time: Vec<Vec<Row>> = stream::iter(row_times.iter().copied())
                .map(|t| {
                    let (d, select) = (d.clone(), &select);
                    async move {
                        Self::rows::<Row>(
                            &d,
                            select,
                            (metric, DATA_POINTS_TABLE, CqlTimestamp(t)),
                            None,
                        )
                        .await
                    }
                })
                .buffered(self.opts.simultaneous_queries.max(1))
                .try_collect()
                .await?;
            Ok(per_time
                .into_iter()
                .flatten()
                // A static-only partition (just `mtime`) has no data_type.
                .filter_map(|(t, dt, tags, _ttl)| {
                    Some(RowKeysRow {
                        row_time: t.0,
                        data_type: dt?,
                        tags: Tags::from_pairs(tags.unwrap_or_default()),
                    })
                })
                .collect())
        })
    }

    fn cells(&self, ranges: &[CellRange], fresh: Freshness) -> Result<Vec<Vec<Cell>>, CqlError> {
        let (d, p) = self.prepared()?;
        let selects: Vec<PreparedStatement> =
            p.select_cells.iter().map(|ps| self.at(ps, fresh)).collect();
        self.runtime.block_on(async {
            stream::iter(ranges.iter())
                .map(|r| {
                    let (d, selects) = (d.clone(), &selects);
                    async move {
                        if r.lower >= r.upper {
                            return Ok(Vec::new());
                        }
                        let ps = &selects[r.descending as usize * 2 + r.limit.is_some() as usize];
                        let lo = column_bytes(r.lower).to_vec();
                        let hi = column_bytes(r.upper).to_vec();
                        let rows: Vec<(Vec<u8>, Vec<u8>)> = match r.limit {
                            Some(l) => {
                                let l = l.min(i32::MAX as u32) as i32;
                                Self::rows(&d, ps, (r.key.as_slice(), lo, hi, l), None).await?
                            }
                            None => Self::rows(&d, ps, (r.key.as_slice(), lo, hi), None).await?,
                        };
                        rows.into_iter()
                            .map(|(c, v)| {
                                parse_column(&c).map(|c| (c, v)).map_err(|e| {
                                    CqlError::failed(format!("data_points column: {e}"))
                                })
                            })
                            .collect::<Result<Vec<Cell>, CqlError>>()
                    }
                })
                .buffered(self.opts.simultaneous_queries.max(1))
                .try_collect()
                .await
        })
    }

    fn ping(&self) -> Result<(), CqlError> {
        let d = self.driver()?;
        self.runtime.block_on(async {
            d.query_unpaged("SELECT release_version FROM system.local", ())
                .await
                .map_err(|e| failed("ping", e))?;
            Ok(())
        })
    }
}

/// A node's host id, as a hashable key for grouping writes per replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct HostKey(u128);

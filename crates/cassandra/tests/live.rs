//! The Cassandra store against a **live** Cassandra, through the `scylla` driver: the
//! shared storage suite, one trial per case, and what only a real node can show — the
//! schema it creates and the one Java KairosDB created, KairosDB's bytes, TTLs,
//! index upkeep after deletes, paging, "Batch too large" splitting and password auth.
//!
//! `scripts/test.sh` starts a node (`scripts/cassandra.sh`) and runs this with
//! `KAIROSDB_TEST_CASSANDRA=127.0.0.1:19042`. Without that variable every live case is
//! listed as ignored and the binary prints how to run them: a case never passes
//! without having run. By hand:
//!
//! ```text
//! scripts/cassandra.sh start
//! KAIROSDB_TEST_CASSANDRA=127.0.0.1:19042 cargo test -p kairosdb-cassandra --test live
//! scripts/cassandra.sh stop
//! ```
//!
//! Each case gets its own keyspace (`kairosdb_test_<pid>_<n>`), dropped afterwards. The
//! suite's TTL case waits in real time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};

use kairosdb_cassandra::driver::{ClusterOptions, ScyllaSession};
use kairosdb_cassandra::session::{CellRange, Freshness};
use kairosdb_cassandra::test_node::TestNode;
use kairosdb_cassandra::value::{encode_double, encode_long, encode_string};
use kairosdb_cassandra::{
    CassandraStore, Cql, Keyspace, RowKey, RowSpec, RowTimeUnit, Session, StoreOptions,
};
use kairosdb_model::suite::{self, Fixture};
use kairosdb_model::{
    DataType, DeleteRequest, Order, Points, SeriesData, SeriesKey, SeriesPoints, SeriesQuery,
    Storage, TagFilter, Tags, TimeRange, WriteBatch,
};

const ENV: &str = "KAIROSDB_TEST_CASSANDRA";

fn main() {
    let args = Arguments::from_args();
    let mut live: Vec<Trial> = suite::CASES
        .iter()
        .map(|&(name, case)| {
            Trial::test(format!("storage_suite::{name}"), move || {
                case(&open_fixture);
                Ok(())
            })
        })
        .collect();
    live.extend(CASES.iter().map(|&(name, case)| {
        Trial::test(name, move || {
            case();
            Ok(())
        })
    }));
    if std::env::var_os(ENV).is_none() {
        println!(
            "live: {} Cassandra tests skipped: {ENV} is not set. Run scripts/test.sh, or \
             scripts/cassandra.sh start and {ENV}=127.0.0.1:19042.",
            live.len()
        );
        live = live
            .into_iter()
            .map(|t| t.with_ignored_flag(true))
            .collect();
    }
    live.push(Trial::test("driver_against_nothing_fails_clearly", || {
        driver_against_nothing_fails_clearly();
        Ok(())
    }));
    libtest_mimic::run(&args, live).exit();
}

/// The live cases beyond the storage suite.
const CASES: &[(&str, fn())] = &[
    (
        "a_new_keyspace_gets_kairosdb_tables_and_spec_rows",
        a_new_keyspace_gets_kairosdb_tables_and_spec_rows,
    ),
    (
        "a_keyspace_made_by_java_kairosdb_is_read_through_both_index_generations",
        a_keyspace_made_by_java_kairosdb_is_read_through_both_index_generations,
    ),
    (
        "three_value_types_are_stored_as_kairosdb_bytes",
        three_value_types_are_stored_as_kairosdb_bytes,
    ),
    (
        "ttl_is_set_on_each_point_and_expired_points_are_not_read",
        ttl_is_set_on_each_point_and_expired_points_are_not_read,
    ),
    (
        "deletes_remove_index_rows_and_the_last_one_the_name",
        deletes_remove_index_rows_and_the_last_one_the_name,
    ),
    (
        "thousands_of_row_keys_in_one_row_time_are_paged",
        thousands_of_row_keys_in_one_row_time_are_paged,
    ),
    (
        "a_series_spanning_many_rows_and_pages_reads_back_in_order",
        a_series_spanning_many_rows_and_pages_reads_back_in_order,
    ),
    (
        "batches_over_the_fail_threshold_are_split_and_every_point_lands",
        batches_over_the_fail_threshold_are_split_and_every_point_lands,
    ),
    (
        "password_auth_admits_the_right_password_and_names_the_wrong_one",
        password_auth_admits_the_right_password_and_names_the_wrong_one,
    ),
];

// ---- connecting ----

fn contact_points() -> Vec<String> {
    let v = std::env::var(ENV).expect("checked in main");
    v.split(',').map(|s| s.trim().to_string()).collect()
}

fn new_keyspace() -> Keyspace {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "kairosdb_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    Keyspace::new(&name).expect("keyspace name")
}

fn session(keyspace: &Keyspace, opts: ClusterOptions) -> ScyllaSession {
    ScyllaSession::new(Cql::new(keyspace.clone()), opts).expect("session")
}

fn cluster_options() -> ClusterOptions {
    ClusterOptions {
        contact_points: contact_points(),
        ..ClusterOptions::default()
    }
}

fn open_store(keyspace: &Keyspace) -> CassandraStore<ScyllaSession> {
    open_with(keyspace, cluster_options(), StoreOptions::default())
}

fn open_with(
    keyspace: &Keyspace,
    cluster: ClusterOptions,
    opts: StoreOptions,
) -> CassandraStore<ScyllaSession> {
    let store = CassandraStore::open(
        session(keyspace, cluster),
        StoreOptions {
            keyspace: keyspace.clone(),
            ..opts
        },
    )
    .expect("open");
    assert!(store.health().ok, "cluster not ready: {:?}", store.health());
    store
}

/// A keyspace dropped when the case ends, pass or fail.
struct Scratch {
    keyspace: Keyspace,
    admin: ScyllaSession,
}

impl Scratch {
    fn new() -> Scratch {
        let keyspace = new_keyspace();
        let admin = session(&keyspace, cluster_options());
        Scratch { keyspace, admin }
    }

    fn run(&self, cql: &str) {
        self.admin.run(cql).unwrap_or_else(|e| panic!("{cql}: {e}"));
    }

    fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.keyspace.as_str())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin.run(&format!(
            "DROP KEYSPACE IF EXISTS {}",
            self.keyspace.as_str()
        ));
    }
}

/// Plain CQL reads the store has no call for (system tables, `TTL(value)`).
struct Raw {
    runtime: tokio::runtime::Runtime,
    session: scylla::client::session::Session,
}

impl Raw {
    fn connect(node: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let session = runtime
            .block_on(
                scylla::client::session_builder::SessionBuilder::new()
                    .known_node(node)
                    .build(),
            )
            .expect("connect");
        Raw { runtime, session }
    }

    fn rows<R>(&self, cql: &str) -> Vec<R>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        self.runtime.block_on(async {
            let result = self
                .session
                .query_unpaged(cql, ())
                .await
                .unwrap_or_else(|e| panic!("{cql}: {e}"));
            let rows = result.into_rows_result().expect("rows");
            rows.rows::<R>()
                .expect("row type")
                .collect::<Result<Vec<R>, _>>()
                .expect("decode")
        })
    }
}

// ---- data helpers ----

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::from_pairs(pairs.iter().copied())
}

fn series(metric: &str, t: &[(&str, &str)], ttl_secs: u32, points: Points) -> SeriesPoints {
    let data_type = match &points {
        Points::Long { .. } => DataType::Long,
        Points::Double { .. } => DataType::Double,
        Points::String { .. } => DataType::String,
    };
    SeriesPoints {
        key: SeriesKey::new(metric, data_type, tags(t)),
        ttl_secs,
        points,
    }
}

fn longs(ts: &[i64], values: &[i64]) -> Points {
    Points::Long {
        ts: ts.to_vec(),
        values: values.to_vec(),
    }
}

fn write(s: &dyn Storage, series: Vec<SeriesPoints>) {
    s.write(&WriteBatch { series }).expect("write");
}

fn read(s: &dyn Storage, metric: &str, range: TimeRange) -> Vec<SeriesData> {
    let mut r = s
        .query(&SeriesQuery::new(metric, TagFilter::default(), range))
        .expect("query")
        .expect_complete();
    r.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

fn row_key(metric: &str, row_time: i64, data_type: DataType, t: &[(&str, &str)]) -> Vec<u8> {
    RowKey::new(metric, row_time, data_type, tags(t))
        .encode()
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---- the storage suite ----

struct LiveFixture {
    scratch: Scratch,
    store: Option<CassandraStore<ScyllaSession>>,
}

impl Fixture for LiveFixture {
    fn storage(&self) -> &dyn Storage {
        self.store.as_ref().expect("open")
    }

    fn reopen(&mut self) -> bool {
        self.store = None;
        self.store = Some(open_store(&self.scratch.keyspace));
        true
    }

    /// No clock to move on a real node: the time passes.
    fn advance_clock(&mut self, by: Duration) -> bool {
        std::thread::sleep(by);
        true
    }
}

fn open_fixture() -> Box<dyn Fixture> {
    let scratch = Scratch::new();
    let store = Some(open_store(&scratch.keyspace));
    Box::new(LiveFixture { scratch, store })
}

// ---- the live cases ----

/// Spec §7.2, §7.3 and §7.7: the seven write-cluster tables and the meta cluster's
/// `service_index` with KairosDB's columns, and the
/// `spec` rows that fix the row geometry for every later node.
fn a_new_keyspace_gets_kairosdb_tables_and_spec_rows() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let raw = Raw::connect(&contact_points()[0]);
    let ks = scratch.keyspace.as_str();
    let mut columns: Vec<(String, String, String)> = raw.rows(&format!(
        "SELECT table_name, column_name, type FROM system_schema.columns WHERE keyspace_name = '{ks}'"
    ));
    columns.sort();
    let expect = [
        ("data_points", "column1", "blob"),
        ("data_points", "key", "blob"),
        ("data_points", "value", "blob"),
        ("row_key_index", "column1", "blob"),
        ("row_key_index", "key", "blob"),
        ("row_key_index", "value", "blob"),
        ("row_key_time_index", "metric", "text"),
        ("row_key_time_index", "row_time", "timestamp"),
        ("row_key_time_index", "table_name", "text"),
        ("row_key_time_index", "value", "text"),
        ("row_keys", "data_type", "text"),
        ("row_keys", "metric", "text"),
        ("row_keys", "mtime", "timeuuid"),
        ("row_keys", "row_time", "timestamp"),
        ("row_keys", "table_name", "text"),
        ("row_keys", "tags", "frozen<map<text, text>>"),
        ("row_keys", "value", "text"),
        ("service_index", "key", "text"),
        ("service_index", "mtime", "timeuuid"),
        ("service_index", "service", "text"),
        ("service_index", "service_key", "text"),
        ("service_index", "value", "text"),
        ("spec", "name", "text"),
        ("spec", "spec_type", "text"),
        ("spec", "value", "text"),
        ("string_index", "column1", "text"),
        ("string_index", "key", "blob"),
        ("string_index", "value", "blob"),
        ("tag_indexed_row_keys", "data_type", "text"),
        ("tag_indexed_row_keys", "metric", "text"),
        ("tag_indexed_row_keys", "mtime", "timeuuid"),
        ("tag_indexed_row_keys", "row_time", "timestamp"),
        ("tag_indexed_row_keys", "single_tag_pair", "text"),
        ("tag_indexed_row_keys", "table_name", "text"),
        ("tag_indexed_row_keys", "tag_collection_hash", "int"),
        ("tag_indexed_row_keys", "tags", "frozen<map<text, text>>"),
        ("tag_indexed_row_keys", "value", "text"),
    ];
    let expect: Vec<(String, String, String)> = expect
        .iter()
        .map(|(t, c, ty)| (t.to_string(), c.to_string(), ty.to_string()))
        .collect();
    assert_eq!(columns, expect);

    let mut spec: Vec<(String, String)> = raw.rows(&format!(
        "SELECT name, value FROM {ks}.spec WHERE spec_type = 'cluster_config'"
    ));
    spec.sort();
    assert_eq!(
        spec,
        vec![
            ("row_time_unit".to_string(), "MILLISECONDS".to_string()),
            ("row_width".to_string(), "1814400000".to_string()),
        ]
    );
    // Opening again changes nothing and reads the same geometry back.
    drop(store);
    let again = open_store(&scratch.keyspace);
    assert_eq!(again.row_spec().unwrap().width_ms(), 1_814_400_000);
}

/// A keyspace as Java KairosDB 1.3 leaves it: its DDL (spec §7.2, without COMPACT
/// STORAGE, which Cassandra 4+ refuses), its `spec` rows, a series in the current index
/// (`row_keys` + `row_key_time_index`) and one only the older `row_key_index` knows.
/// We read both, keep Java's geometry and write into the rows Java reads.
fn a_keyspace_made_by_java_kairosdb_is_read_through_both_index_generations() {
    let scratch = Scratch::new();
    let ks = scratch.keyspace.as_str();
    scratch.run(&format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks}  WITH REPLICATION = {{'class': 'SimpleStrategy','replication_factor' : 1}}"
    ));
    for ddl in JAVA_DDL {
        scratch.run(&ddl.replace("{ks}", ks));
    }
    let w = 1_814_400_000_i64;
    for (name, value) in [
        ("row_time_unit", "MILLISECONDS"),
        ("row_width", "1814400000"),
    ] {
        scratch.run(&format!(
            "INSERT INTO {} (spec_type, name, value) VALUES ('cluster_config', '{name}', '{value}')",
            scratch.table("spec")
        ));
    }
    let ts = 1_700_000_000_000_i64;
    let rt = ts - ts.rem_euclid(w);
    let spec = RowSpec::new(RowTimeUnit::Milliseconds, w).unwrap();
    let column = |t: i64| hex(&spec.column_name(rt, t).to_be_bytes());
    let mut seven = Vec::new();
    encode_long(7, &mut seven);
    let mut eight = Vec::new();
    encode_long(8, &mut eight);

    // Written by a 1.x node.
    let new_key = row_key("cpu", rt, DataType::Long, &[("host", "new")]);
    scratch.run(&format!(
        "INSERT INTO {} (key, column1, value) VALUES (0x{}, 0x{}, 0x{})",
        scratch.table("data_points"),
        hex(&new_key),
        column(ts),
        hex(&seven)
    ));
    scratch.run(&format!(
        "INSERT INTO {} (metric, table_name, row_time, data_type, tags, mtime, value) \
         VALUES ('cpu', 'data_points', {rt}, 'kairos_long', {{'host': 'new'}}, now(), '')",
        scratch.table("row_keys")
    ));
    scratch.run(&format!(
        "INSERT INTO {} (metric, table_name, row_time, value) VALUES ('cpu', 'data_points', {rt}, '')",
        scratch.table("row_key_time_index")
    ));
    // Known only to the legacy index (a node from before 1.2's row_keys).
    let old_key = row_key("cpu", rt, DataType::Long, &[("host", "old")]);
    scratch.run(&format!(
        "INSERT INTO {} (key, column1, value) VALUES (0x{}, 0x{}, 0x{})",
        scratch.table("data_points"),
        hex(&old_key),
        column(ts + 1),
        hex(&eight)
    ));
    scratch.run(&format!(
        "INSERT INTO {} (key, column1, value) VALUES (textAsBlob('cpu'), 0x{}, 0x00)",
        scratch.table("row_key_index"),
        hex(&old_key)
    ));
    scratch.run(&format!(
        "INSERT INTO {} (key, column1, value) VALUES (textAsBlob('metric_names'), 'cpu', 0x00)",
        scratch.table("string_index")
    ));

    let store = open_store(&scratch.keyspace);
    assert_eq!(store.row_spec().unwrap().width_ms(), w);
    assert_eq!(store.metric_names(None).unwrap(), vec!["cpu".to_string()]);
    let range = TimeRange::new(ts - 10, ts + 10);
    let got: Vec<(String, Vec<(i64, i64)>)> = read(&store, "cpu", range)
        .iter()
        .map(|d| {
            let Points::Long { ts, values } = &d.points else {
                panic!("{d:?}")
            };
            let pairs = ts.iter().copied().zip(values.iter().copied()).collect();
            (d.key.tags.get("host").unwrap().to_string(), pairs)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("new".to_string(), vec![(ts, 7)]),
            ("old".to_string(), vec![(ts + 1, 8)]),
        ]
    );
    // Our write lands in the same row Java's readers look in.
    write(
        &store,
        vec![series("cpu", &[("host", "new")], 0, longs(&[ts + 2], &[9]))],
    );
    let cells = store
        .session()
        .cells(
            &[CellRange {
                key: new_key,
                lower: 0,
                upper: u32::MAX,
                descending: false,
                limit: None,
            }],
            Freshness::Normal,
        )
        .unwrap();
    assert_eq!(cells[0].len(), 2);
}

/// Java KairosDB 1.3's table DDL (spec §7.2) as it sends it, `{ks}` for the keyspace.
const JAVA_DDL: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS {ks}.data_points (\n  key blob,\n  column1 blob,\n  value blob,\n  PRIMARY KEY ((key), column1)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.row_key_index (\n  key blob,\n  column1 blob,\n  value blob,\n  PRIMARY KEY ((key), column1)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.string_index (\n  key blob,\n  column1 text,\n  value blob,\n  PRIMARY KEY ((key), column1)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.row_keys (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time), data_type, tags)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.tag_indexed_row_keys (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  single_tag_pair text,\n  tag_collection_hash int,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time, single_tag_pair), data_type, tag_collection_hash, tags)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.row_key_time_index (\n  metric text,\n  table_name text,\n  row_time timestamp,\n  value text,\n  PRIMARY KEY ((metric), table_name, row_time)\n) ",
    "CREATE TABLE IF NOT EXISTS {ks}.spec ( spec_type text, name text, value text, PRIMARY KEY ((spec_type), name)) ",
];

/// Spec §8: each type's `data_type` in `row_keys` and its value bytes in `data_points`.
fn three_value_types_are_stored_as_kairosdb_bytes() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let ts = 1_700_000_000_123_i64;
    let t = &[("host", "a b:c=d"), ("zone", "zürich")];
    write(
        &store,
        vec![
            series("v", t, 0, longs(&[ts], &[-300])),
            series(
                "v",
                t,
                0,
                Points::Double {
                    ts: vec![ts],
                    values: vec![2.5],
                },
            ),
            series(
                "v",
                t,
                0,
                Points::String {
                    ts: vec![ts],
                    values: vec!["héllo".into()],
                },
            ),
        ],
    );
    let spec = store.row_spec().unwrap();
    let rt = spec.row_time(ts);
    let mut kinds: Vec<String> = store
        .session()
        .row_keys("v", &[rt], Freshness::Strong)
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.tags, tags(t));
            r.data_type
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["kairos_double", "kairos_long", "kairos_string"]);

    let mut long = Vec::new();
    encode_long(-300, &mut long);
    let mut double = Vec::new();
    encode_double(2.5, &mut double);
    let mut text = Vec::new();
    encode_string("héllo", &mut text).unwrap();
    for (data_type, bytes) in [
        (DataType::Long, long),
        (DataType::Double, double),
        (DataType::String, text),
    ] {
        let cells = store
            .session()
            .cells(
                &[CellRange {
                    key: row_key("v", rt, data_type, t),
                    lower: 0,
                    upper: u32::MAX,
                    descending: false,
                    limit: None,
                }],
                Freshness::Strong,
            )
            .unwrap();
        assert_eq!(
            cells[0],
            vec![(spec.column_name(rt, ts), bytes)],
            "{data_type:?}"
        );
    }
    assert_eq!(read(&store, "v", TimeRange::ALL).len(), 3);
}

/// Spec §2.5: a point's TTL goes on its cell; when it runs out the point is gone from
/// reads, and its series with it.
fn ttl_is_set_on_each_point_and_expired_points_are_not_read() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let ts = now_ms();
    write(
        &store,
        vec![
            series("ttl", &[("k", "short")], 3, longs(&[ts], &[1])),
            series("ttl", &[("k", "kept")], 0, longs(&[ts], &[2])),
        ],
    );
    let raw = Raw::connect(&contact_points()[0]);
    let mut ttls: Vec<(Option<i32>,)> = raw.rows(&format!(
        "SELECT TTL(value) FROM {}",
        scratch.table("data_points")
    ));
    ttls.sort();
    assert_eq!(ttls.len(), 2);
    assert_eq!(ttls[0], (None,), "the point without a TTL has none");
    assert!(matches!(ttls[1], (Some(1..=3),)), "{ttls:?}");
    std::thread::sleep(Duration::from_secs(4));
    let left: Vec<String> = read(&store, "ttl", TimeRange::ALL)
        .iter()
        .map(|d| d.key.tags.get("k").unwrap().to_string())
        .collect();
    assert_eq!(left, ["kept"]);
    // Its `row_keys` row stays for the TTL plus the row's span (spec §2.5: later
    // points of the row may still come), and a read finds the row empty.
}

/// Spec §7.6: deleting a whole series removes its `row_keys` row; deleting the metric's
/// last series removes its row times and its name (our §14.21 choice). Every row is
/// stamped in milliseconds, as KairosDB 1.3.0-1 stamps all it writes, so its deletes
/// can remove ours and ours theirs.
fn deletes_remove_index_rows_and_the_last_one_the_name() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let w = 1_814_400_000_i64;
    let ts = [1_700_000_000_000_i64, 1_700_000_000_000 + w];
    write(
        &store,
        vec![
            series("gone", &[("h", "a")], 0, longs(&ts, &[1, 2])),
            series("gone", &[("h", "b")], 0, longs(&ts, &[3, 4])),
            series("stays", &[("h", "a")], 0, longs(&ts, &[5, 6])),
        ],
    );
    let raw = Raw::connect(&contact_points()[0]);
    for (table, column) in [
        ("data_points", "value"),
        ("row_keys", "mtime"),
        ("string_index", "value"),
        ("spec", "value"),
    ] {
        let stamps: Vec<(Option<i64>,)> = raw.rows(&format!(
            "SELECT WRITETIME({column}) FROM {}",
            scratch.table(table)
        ));
        assert!(!stamps.is_empty(), "{table}");
        for (stamp,) in stamps {
            let stamp = stamp.unwrap_or_default();
            assert!(
                (stamp - now_ms()).abs() < 600_000,
                "{table}.{column} written at {stamp}: not milliseconds"
            );
        }
    }
    let session = store.session();
    let row_times = |m: &str| session.row_times(m, i64::MIN, i64::MAX, Freshness::Strong);
    let times = row_times("gone").unwrap();
    assert_eq!(times.len(), 2);
    let delete = |h: &str| DeleteRequest {
        metric: "gone".into(),
        filter: TagFilter::from_pairs(&[("h", &[h])]),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    };

    assert_eq!(store.delete(&delete("a")).unwrap(), 1);
    let rows = session.row_keys("gone", &times, Freshness::Strong).unwrap();
    assert!(
        rows.iter().all(|r| r.tags == tags(&[("h", "b")])),
        "{rows:?}"
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(row_times("gone").unwrap().len(), 2);

    assert_eq!(store.delete(&delete("b")).unwrap(), 1);
    assert!(session
        .row_keys("gone", &times, Freshness::Strong)
        .unwrap()
        .is_empty());
    assert!(row_times("gone").unwrap().is_empty());
    assert_eq!(store.metric_names(None).unwrap(), ["stays"]);
    assert!(read(&store, "gone", TimeRange::ALL).is_empty());
    assert_eq!(read(&store, "stays", TimeRange::ALL).len(), 1);
}

/// More `row_keys` rows in one partition than a page holds (5000).
fn thousands_of_row_keys_in_one_row_time_are_paged() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let n = 6_500;
    let ts = 1_700_000_000_000_i64;
    let names: Vec<String> = (0..n).map(|i| format!("host-{i:05}")).collect();
    for chunk in names.chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|h| series("wide", &[("host", h)], 0, longs(&[ts], &[1])))
            .collect();
        write(&store, batch);
    }
    let keys = store
        .series_keys("wide", &TagFilter::default(), TimeRange::ALL)
        .unwrap();
    assert_eq!(keys.len(), n);
    let data = read(&store, "wide", TimeRange::ALL);
    let mut hosts: Vec<&str> = data
        .iter()
        .map(|d| d.key.tags.get("host").unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(data.iter().all(|d| d.points.len() == 1));
}

/// Forty rows of three weeks each, and one row with more cells than a page.
fn a_series_spanning_many_rows_and_pages_reads_back_in_order() {
    let scratch = Scratch::new();
    let store = open_store(&scratch.keyspace);
    let w = 1_814_400_000_i64;
    let start = 1_600_000_000_000_i64;
    // One point a day for 40 rows, and 12 000 points one second apart in the first row.
    let mut ts: Vec<i64> = (0..(40 * 21)).map(|d| start + d * 86_400_000 + 1).collect();
    ts.extend((0..12_000).map(|s| start + 2 + s * 1_000));
    ts.sort();
    ts.dedup();
    let values: Vec<i64> = ts.iter().map(|t| t % 1_000_003).collect();
    for (t, v) in ts.chunks(2_000).zip(values.chunks(2_000)) {
        write(&store, vec![series("long", &[("h", "x")], 0, longs(t, v))]);
    }
    let session = store.session();
    let rows = session
        .row_times("long", i64::MIN, i64::MAX, Freshness::Strong)
        .unwrap();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    assert!(rows.windows(2).all(|p| p[1] - p[0] >= w));

    let data = read(&store, "long", TimeRange::ALL);
    assert_eq!(data.len(), 1);
    let Points::Long {
        ts: got_ts,
        values: got_values,
    } = &data[0].points
    else {
        panic!()
    };
    assert_eq!(got_ts, &ts);
    assert_eq!(got_values, &values);

    // Newest first, with a limit that stops inside the last row.
    let q = SeriesQuery {
        order: Order::Desc,
        limit: Some(5),
        ..SeriesQuery::new("long", TagFilter::default(), TimeRange::ALL)
    };
    let last = store.query(&q).unwrap().expect_complete();
    let expect: Vec<i64> = ts.iter().rev().take(5).copied().collect();
    assert_eq!(last[0].points.timestamps(), &expect[..]);
}

/// A node of the case's own with `batch_size_fail_threshold` at 16 KiB, under the 40 KiB
/// the driver aims at: Cassandra answers "Batch too large", the driver splits and
/// resends, and every point lands.
fn batches_over_the_fail_threshold_are_split_and_every_point_lands() {
    let node = TestNode::start(&[], &[("CASSANDRA_BATCH_FAIL_THRESHOLD", "16KiB")]);
    let cluster = ClusterOptions {
        contact_points: vec![node.address.clone()],
        ..ClusterOptions::default()
    };
    let raw = Raw::connect(&node.address);
    let threshold: Vec<(Option<String>,)> = raw
        .rows("SELECT value FROM system_views.settings WHERE name = 'batch_size_fail_threshold'");
    assert_eq!(threshold, [(Some("16KiB".to_string()),)]);
    const { assert!(16 * 1024 < kairosdb_cassandra::driver::BATCH_BYTES) };
    let keyspace = new_keyspace();
    let store = open_with(&keyspace, cluster, StoreOptions::default());
    // Cassandra checks the size of batches over several partitions only: 400 series
    // (one partition each) with a 300-byte text point, 100 to a batch, about 35 KiB.
    let n = 400;
    let ts = 1_700_000_000_000_i64;
    let value = |i: usize| format!("{i:0>300}");
    let hosts: Vec<String> = (0..n).map(|i| format!("h{i:03}")).collect();
    let batch = (0..n)
        .map(|i| {
            let points = Points::String {
                ts: vec![ts],
                values: vec![value(i)],
            };
            series("big", &[("h", &hosts[i])], 0, points)
        })
        .collect();
    write(&store, batch);
    assert!(store.session().batches_split() > 0, "no batch was split");
    let data = read(&store, "big", TimeRange::ALL);
    assert_eq!(data.len(), n);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d.key.tags.get("h"), Some(hosts[i].as_str()));
        let Points::String { values, .. } = &d.points else {
            panic!("{d:?}")
        };
        assert_eq!(values, &[value(i)]);
    }
}

/// A second node with `--auth`, on its own ports: the right password works, a wrong one
/// leaves the store unready with a message that says so.
fn password_auth_admits_the_right_password_and_names_the_wrong_one() {
    let node = TestNode::start(&["--auth"], &[]);
    let keyspace = new_keyspace();
    let with_password = |password: &str| ClusterOptions {
        contact_points: vec![node.address.clone()],
        user: Some("cassandra".into()),
        password: Some(password.into()),
        ..ClusterOptions::default()
    };

    let wrong = CassandraStore::open(
        session(&keyspace, with_password("not-the-password")),
        StoreOptions {
            keyspace: keyspace.clone(),
            ..StoreOptions::default()
        },
    )
    .expect("open is lazy");
    let health = wrong.health();
    assert!(!health.ok);
    assert!(
        health.detail.to_lowercase().contains("authenticat")
            || health.detail.to_lowercase().contains("credentials"),
        "{}",
        health.detail
    );

    // The node creates its superuser shortly after CQL answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let store = loop {
        let store = CassandraStore::open(
            session(&keyspace, with_password("cassandra")),
            StoreOptions {
                keyspace: keyspace.clone(),
                ..StoreOptions::default()
            },
        )
        .expect("open");
        if store.health().ok {
            break store;
        }
        assert!(Instant::now() < deadline, "{:?}", store.health());
        std::thread::sleep(Duration::from_secs(1));
    };
    write(
        &store,
        vec![series("auth", &[("h", "x")], 0, longs(&[1, 2], &[3, 4]))],
    );
    assert_eq!(read(&store, "auth", TimeRange::ALL)[0].points.len(), 2);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs everywhere: the real driver pointed at a port where nothing listens
/// answers with clear errors, quickly, and without panicking.
fn driver_against_nothing_fails_clearly() {
    let addr = format!("127.0.0.1:{}", free_port());
    let session = ScyllaSession::new(
        Cql::new(Keyspace::default()),
        ClusterOptions {
            contact_points: vec![addr],
            connect_timeout: Duration::from_millis(500),
            ..ClusterOptions::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let store = CassandraStore::open(session, StoreOptions::default()).unwrap();
    let h = store.health();
    assert!(!h.ok);
    assert!(h.detail.contains("cannot connect"), "{}", h.detail);
    assert!(store.metric_names(None).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

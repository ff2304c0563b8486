//! Behaviour of the Cassandra store beyond the shared storage suite, on the
//! in-memory cluster: the bytes and index rows it writes (spec §7.4, §8), the
//! `spec` table (§7.3), SECONDS and LEGACY clusters and the legacy index (§7.5),
//! negative row times (§14.11), millisecond write times on every statement (as
//! KairosDB 1.3.0-1 sends them) and what they mean for deletes made by either
//! server, KairosDB #512, TTL options (§2.5), an unreachable cluster, and the
//! delivery queue in front; the metadata statements on `service_index` (§7.7).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kairosdb_cassandra::memory::MemorySession;
use kairosdb_cassandra::rowspec::legacy_column_is_long;
use kairosdb_cassandra::value::{encode_legacy_double, encode_legacy_long, encode_long};
use kairosdb_cassandra::{
    CassandraStore, Mutation, RowKey, RowTimeUnit, Session, StoreOptions, StoreType,
};
use kairosdb_engine::{DeliveryQueue, QueueOptions};
use kairosdb_model::{
    DataType, DeleteRequest, Order, Points, Read, SeriesData, SeriesKey, SeriesPoints, SeriesQuery,
    ServiceStore, Storage, StorageError, TagFilter, Tags, TimeRange, WriteBatch,
};

const W: i64 = 1_814_400_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::from_pairs(pairs.iter().copied())
}

fn longs(metric: &str, t: &[(&str, &str)], ts: &[i64], v: &[i64]) -> SeriesPoints {
    SeriesPoints {
        key: SeriesKey::new(metric, DataType::Long, tags(t)),
        ttl_secs: 0,
        points: Points::Long {
            ts: ts.to_vec(),
            values: v.to_vec(),
        },
    }
}

/// Writes one series of longs (no TTL) and expects it to be accepted.
fn write_longs(s: &dyn Storage, metric: &str, t: &[(&str, &str)], ts: &[i64], v: &[i64]) {
    s.write(&batch(vec![longs(metric, t, ts, v)])).unwrap();
}

fn batch(series: Vec<SeriesPoints>) -> WriteBatch {
    WriteBatch { series }
}

fn query(metric: &str, range: TimeRange) -> SeriesQuery {
    SeriesQuery::new(metric, TagFilter::default(), range)
}

fn read(s: &dyn Storage, q: &SeriesQuery) -> Vec<SeriesData> {
    let mut r = s.query(q).expect("query").expect_complete();
    r.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

fn long_pairs(d: &SeriesData) -> Vec<(i64, i64)> {
    match &d.points {
        Points::Long { ts, values } => ts.iter().copied().zip(values.iter().copied()).collect(),
        p => panic!("not longs: {p:?}"),
    }
}

fn open(cluster: &MemorySession, opts: StoreOptions) -> CassandraStore<MemorySession> {
    CassandraStore::open(cluster.clone(), opts).expect("open")
}

fn index_mutations(log: &[Mutation]) -> usize {
    log.iter().filter(|m| !m.is_data_point()).count()
}

#[test]
fn writes_kairosdb_rows_and_indexes_each_row_once() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    let ts = 1_700_000_000_123;
    let rt = ts - ts % W;
    write_longs(&store, "m", &[("host", "a")], &[ts, ts + 1], &[5, -1]);
    let log = cluster.applied();
    let key = RowKey::new("m", rt, DataType::Long, tags(&[("host", "a")]))
        .encode()
        .unwrap();
    let mut five = Vec::new();
    encode_long(5, &mut five);
    assert!(log.iter().any(|m| matches!(m,
        Mutation::DataPoint { key: k, column, value, ttl: 0, .. }
            if *k == key && *column == (ts - rt) as u32 && *value == five)));
    // The index rows carry the batch's write time, like its data points.
    let stamp = log[0].timestamp_ms();
    assert!(log.contains(&Mutation::RowKey {
        metric: "m".into(),
        row_time: rt,
        data_type: "kairos_long".into(),
        tags: tags(&[("host", "a")]),
        ttl: 0,
        timestamp_ms: stamp,
    }));
    assert!(log.contains(&Mutation::RowKeyTime {
        metric: "m".into(),
        row_time: rt,
        ttl: 0,
        timestamp_ms: stamp,
    }));
    assert!(log.contains(&Mutation::StringIndex {
        key: b"metric_names",
        name: "m".into(),
        timestamp_ms: stamp,
    }));
    assert_eq!(
        index_mutations(&log),
        3,
        "one row key, one row time, one name"
    );
    // The same row again: only data points.
    write_longs(&store, "m", &[("host", "a")], &[ts + 2], &[1]);
    assert_eq!(index_mutations(&cluster.applied()), 3);
    // A new row time of the same series: a new row key and row time, not a new name... but
    // the name is re-sent with the row time, as KairosDB keys its name cache by (name, row time).
    write_longs(&store, "m", &[("host", "a")], &[ts + W], &[1]);
    assert_eq!(index_mutations(&cluster.applied()), 6);
    // All statements of a batch, data points and index rows, use one millisecond
    // write timestamp, increasing from batch to batch.
    let log = cluster.applied();
    let stamps: Vec<i64> = log
        .iter()
        .filter_map(|m| match m {
            Mutation::DataPoint { timestamp_ms, .. } => Some(*timestamp_ms),
            _ => None,
        })
        .collect();
    assert_eq!(stamps.len(), 4);
    assert_eq!(stamps[0], stamps[1]);
    assert!(stamps[1] < stamps[2] && stamps[2] < stamps[3], "{stamps:?}");
    assert!(
        (stamps[0] - now_ms()).abs() < 60_000,
        "milliseconds, not micros"
    );
    assert!(log.iter().all(|m| stamps.contains(&m.timestamp_ms())));
}

#[test]
fn index_rows_of_a_failed_write_are_sent_again() {
    // KairosDB #512: a row key must not be cached as written before the write succeeded.
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    cluster.fail_next_applies(1);
    let b = batch(vec![longs("m", &[("h", "a")], &[10], &[1])]);
    assert!(matches!(store.write(&b), Err(StorageError::Internal(_))));
    assert!(cluster.applied().is_empty());
    store.write(&b).unwrap();
    assert_eq!(index_mutations(&cluster.applied()), 3);
    let keys = store
        .series_keys("m", &TagFilter::default(), TimeRange::ALL)
        .unwrap();
    assert_eq!(keys.len(), 1);
}

/// A read with a work limit is one a server wants to run on its async worker; every
/// Cassandra read waits on the cluster, so it is refused before any statement is sent.
#[test]
fn reads_with_a_work_limit_are_refused_before_any_statement() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    write_longs(&store, "m", &[("h", "a")], &[10], &[1]);
    let limited = SeriesQuery {
        work_limit: Some(u64::MAX),
        ..query("m", TimeRange::ALL)
    };
    assert!(matches!(store.query(&limited), Ok(Read::OverWorkLimit)));
    // Not even a down cluster is noticed: nothing was sent.
    cluster.set_down(true);
    assert!(matches!(store.query(&limited), Ok(Read::OverWorkLimit)));
    assert!(store.query(&query("m", TimeRange::ALL)).is_err());
    cluster.set_down(false);
    assert_eq!(read(&store, &query("m", TimeRange::ALL)).len(), 1);
}

fn delete_all(metric: &str) -> DeleteRequest {
    DeleteRequest {
        metric: metric.into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: None,
        exact: false,
    }
}

#[test]
fn points_rewritten_after_a_delete_are_visible() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    let b = batch(vec![longs("m", &[("h", "a")], &[10, 20], &[1, 2])]);
    store.write(&b).unwrap();
    assert_eq!(store.delete(&delete_all("m")).unwrap(), 1);
    assert!(read(&store, &query("m", TimeRange::ALL)).is_empty());
    assert!(store.metric_names(None).unwrap().is_empty());
    // Written again at once, within the delete's millisecond or not: the clock is
    // strictly increasing, so no tombstone ties with the rewrite (a tie would go
    // to the tombstone).
    write_longs(&store, "m", &[("h", "a")], &[10], &[7]);
    let r = read(&store, &query("m", TimeRange::ALL));
    assert_eq!(long_pairs(&r[0]), vec![(10, 7)]);
    assert_eq!(store.metric_names(None).unwrap(), vec!["m".to_string()]);
    // Every statement was stamped in milliseconds, deletes and index rows too,
    // increasing in the order sent.
    let log = cluster.applied();
    let stamps: Vec<i64> = log.iter().map(Mutation::timestamp_ms).collect();
    assert!(
        stamps.iter().all(|t| (t - now_ms()).abs() < 60_000),
        "milliseconds, not micros: {stamps:?}"
    );
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    let deletes = log
        .iter()
        .filter(|m| {
            matches!(
                m,
                Mutation::DeleteRowKey { .. }
                    | Mutation::DeleteRowKeyTime { .. }
                    | Mutation::DeleteStringIndex { .. }
            )
        })
        .count();
    assert_eq!(deletes, 3, "{log:?}");
}

/// Java KairosDB 1.3.0-1 stamps every statement with `System.currentTimeMillis()` (its
/// driver's timestamp generator). Its index deletes therefore remove our index rows, and
/// its index writes after one of our deletes are visible, because both are on the same
/// millisecond clock. The memory cluster stands in for Java with statements stamped like
/// its own.
#[test]
fn index_rows_meet_java_kairosdb_on_the_millisecond_clock() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    write_longs(&store, "m", &[("h", "a")], &[10], &[1]);
    let key = |m: &str| RowKey::new(m, 0, DataType::Long, tags(&[("h", "a")]));
    let row_key = |m: &str, timestamp_ms| Mutation::DeleteRowKey {
        metric: m.into(),
        row_time: 0,
        data_type: "kairos_long".into(),
        tags: tags(&[("h", "a")]),
        timestamp_ms,
    };

    // Java's `DELETE /metric/m`, a moment later on the wall clock: data row, row key,
    // row time and name. Every index row we wrote is gone.
    let java_now = now_ms() + 1;
    cluster
        .apply(vec![
            Mutation::DeleteRow {
                key: key("m").encode().unwrap(),
                timestamp_ms: java_now,
            },
            row_key("m", java_now),
            Mutation::DeleteRowKeyTime {
                metric: "m".into(),
                row_time: 0,
                timestamp_ms: java_now,
            },
            Mutation::DeleteStringIndex {
                key: b"metric_names",
                name: "m".into(),
                timestamp_ms: java_now,
            },
        ])
        .unwrap();
    assert!(store.metric_names(None).unwrap().is_empty());
    assert!(store
        .series_keys("m", &TagFilter::default(), TimeRange::ALL)
        .unwrap()
        .is_empty());
    assert!(read(&store, &query("m", TimeRange::ALL)).is_empty());

    // We delete a metric, then Java writes it again (a moment later): visible to us.
    write_longs(&store, "n", &[("h", "a")], &[10], &[1]);
    assert_eq!(store.delete(&delete_all("n")).unwrap(), 1);
    assert!(store.metric_names(None).unwrap().is_empty());
    let java_now = cluster
        .applied()
        .iter()
        .map(Mutation::timestamp_ms)
        .max()
        .unwrap()
        + 1;
    cluster
        .apply(vec![
            Mutation::DataPoint {
                key: key("n").encode().unwrap(),
                column: 20,
                value: {
                    let mut v = Vec::new();
                    encode_long(5, &mut v);
                    v
                },
                ttl: 0,
                timestamp_ms: java_now,
            },
            Mutation::RowKey {
                metric: "n".into(),
                row_time: 0,
                data_type: "kairos_long".into(),
                tags: tags(&[("h", "a")]),
                ttl: 0,
                timestamp_ms: java_now,
            },
            Mutation::RowKeyTime {
                metric: "n".into(),
                row_time: 0,
                ttl: 0,
                timestamp_ms: java_now,
            },
            Mutation::StringIndex {
                key: b"metric_names",
                name: "n".into(),
                timestamp_ms: java_now,
            },
        ])
        .unwrap();
    assert_eq!(store.metric_names(None).unwrap(), vec!["n".to_string()]);
    let r = read(&store, &query("n", TimeRange::ALL));
    assert_eq!(long_pairs(&r[0]), vec![(20, 5)]);

    // The memory cluster does keep Cassandra's rule: a delete stamped later (here in
    // microseconds, as earlier kairosdb-rs builds stamped their index rows) hides
    // rewrites stamped in milliseconds, and a microsecond row outlives our deletes.
    cluster.apply(vec![row_key("n", now_ms() * 1000)]).unwrap();
    write_longs(&store, "n", &[("h", "a")], &[10], &[8]);
    assert!(store
        .series_keys("n", &TagFilter::default(), TimeRange::ALL)
        .unwrap()
        .is_empty());
    cluster
        .apply(vec![Mutation::StringIndex {
            key: b"metric_names",
            name: "old".into(),
            timestamp_ms: now_ms() * 1000,
        }])
        .unwrap();
    cluster
        .apply(vec![Mutation::DeleteStringIndex {
            key: b"metric_names",
            name: "old".into(),
            timestamp_ms: now_ms() + 1,
        }])
        .unwrap();
    assert!(store.metric_names(None).unwrap().contains(&"old".into()));
}

#[test]
fn partial_delete_keeps_the_row_and_the_name() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    write_longs(&store, "m", &[("h", "a")], &[10, 20, 30], &[1, 2, 3]);
    let del = DeleteRequest {
        metric: "m".into(),
        filter: TagFilter::default(),
        range: TimeRange::new(15, 25),
        shard: None,
        exact: false,
    };
    assert_eq!(store.delete(&del).unwrap(), 1);
    let r = read(&store, &query("m", TimeRange::ALL));
    assert_eq!(long_pairs(&r[0]), vec![(10, 1), (30, 3)]);
    assert_eq!(store.metric_names(None).unwrap(), vec!["m".to_string()]);
    // Only the data point range was deleted: no index row went.
    assert!(!cluster.applied().iter().any(|m| matches!(
        m,
        Mutation::DeleteRowKey { .. }
            | Mutation::DeleteRowKeyTime { .. }
            | Mutation::DeleteStringIndex { .. }
    )));
}

#[test]
fn spec_table_decides_the_row_geometry() {
    // A new cluster stores the configured unit and the default width.
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    let spec = store.row_spec().unwrap();
    assert_eq!((spec.unit(), spec.width()), (RowTimeUnit::Milliseconds, W));
    assert_eq!(
        cluster.spec_value("row_time_unit").unwrap().as_deref(),
        Some("MILLISECONDS")
    );
    assert_eq!(
        cluster.spec_value("row_width").unwrap().as_deref(),
        Some("1814400000")
    );
    let ddl = cluster.schema_statements();
    assert!(ddl[0].starts_with("CREATE KEYSPACE IF NOT EXISTS kairosdb  WITH REPLICATION"));
    assert_eq!(ddl.len(), 9, "keyspace + 7 tables + service_index: {ddl:?}");
    assert!(
        ddl[8].starts_with("CREATE TABLE IF NOT EXISTS kairosdb.service_index ( service text, service_key text, key text, mtime timeuuid static,  value text, PRIMARY KEY ((service, service_key), key))"),
        "{}",
        ddl[8]
    );

    // A cluster with metric names but no spec predates 1.3: LEGACY.
    let old = MemorySession::new();
    old.apply(vec![Mutation::StringIndex {
        key: b"metric_names",
        name: "old".into(),
        timestamp_ms: now_ms(),
    }])
    .unwrap();
    let store = open(&old, StoreOptions::default());
    assert_eq!(store.row_spec().unwrap().unit(), RowTimeUnit::Legacy);
    assert_eq!(
        old.spec_value("row_time_unit").unwrap().as_deref(),
        Some("LEGACY")
    );

    // Stored values win over the configuration.
    let secs = MemorySession::new();
    secs.put_spec_value("row_time_unit", "SECONDS").unwrap();
    secs.put_spec_value("row_width", "3600").unwrap();
    let store = open(
        &secs,
        StoreOptions {
            row_width: Some(99),
            ..StoreOptions::default()
        },
    );
    let spec = store.row_spec().unwrap();
    assert_eq!(
        (spec.unit(), spec.width_ms()),
        (RowTimeUnit::Seconds, 3_600_000)
    );
}

#[test]
fn seconds_cluster_keeps_whole_seconds() {
    let cluster = MemorySession::new();
    let store = open(
        &cluster,
        StoreOptions {
            row_time_unit: RowTimeUnit::Seconds,
            ..StoreOptions::default()
        },
    );
    write_longs(&store, "s", &[("h", "a")], &[5_250, 9_999], &[1, 2]);
    let r = read(&store, &query("s", TimeRange::ALL));
    assert_eq!(long_pairs(&r[0]), vec![(5_000, 1), (9_000, 2)]);
    // KairosDB's SECONDS rows span the stored width taken as ms (1814400 ms).
    assert_eq!(
        store.row_spec().unwrap().row_time(1359788400000),
        1359787564800
    );
    // A start inside a second: the cell of the whole second before it is not in
    // range and must not use up a limit of 1.
    write_longs(&store, "s2", &[("h", "a")], &[4_000, 5_000], &[4, 5]);
    let r = read(
        &store,
        &SeriesQuery {
            limit: Some(1),
            ..query("s2", TimeRange::new(4_001, 10_000))
        },
    );
    assert_eq!(long_pairs(&r[0]), vec![(5_000, 5)]);
}

#[test]
fn legacy_rows_and_the_legacy_index_are_read() {
    let cluster = MemorySession::new();
    cluster.put_spec_value("row_time_unit", "LEGACY").unwrap();
    let store = open(&cluster, StoreOptions::default());
    let spec = store.row_spec().unwrap();
    let t = tags(&[("host", "old")]);
    let rt = spec.row_time(1_000_000);
    // A pre-1.0 row: no type section, the column's low bit is the value kind.
    let legacy = RowKey::new("cpu", rt, StoreType::Legacy, t.clone());
    let key = legacy.encode().unwrap();
    cluster.insert_legacy_row_key("cpu", key.clone());
    let long_col = spec.column_name(rt, 1_000_000);
    let double_col = spec.column_name(rt, 1_000_500) | 1;
    assert!(legacy_column_is_long(long_col) && !legacy_column_is_long(double_col));
    cluster
        .apply(vec![
            Mutation::DataPoint {
                key: key.clone(),
                column: long_col,
                value: encode_legacy_long(42),
                ttl: 0,
                timestamp_ms: 1,
            },
            Mutation::DataPoint {
                key,
                column: double_col,
                value: encode_legacy_double(2.5),
                ttl: 0,
                timestamp_ms: 1,
            },
        ])
        .unwrap();
    // A 1.x row found only through the legacy index.
    let typed = RowKey::new("cpu", rt, DataType::Long, tags(&[("host", "new")]));
    let tkey = typed.encode().unwrap();
    cluster.insert_legacy_row_key("cpu", tkey.clone());
    let mut seven = Vec::new();
    encode_long(7, &mut seven);
    cluster
        .apply(vec![Mutation::DataPoint {
            key: tkey,
            column: spec.column_name(rt, 1_000_100),
            value: seven,
            ttl: 0,
            timestamp_ms: 1,
        }])
        .unwrap();

    let r = read(&store, &query("cpu", TimeRange::new(0, 2_000_000)));
    let got: Vec<(DataType, String, Vec<i64>)> = r
        .iter()
        .map(|d| {
            (
                d.key.data_type,
                d.key.tags.get("host").unwrap().to_string(),
                d.points.timestamps().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (DataType::Long, "new".into(), vec![1_000_100]),
            (DataType::Long, "old".into(), vec![1_000_000]),
            (DataType::Double, "old".into(), vec![1_000_500]),
        ]
    );
    let Points::Double { values, .. } = &r[2].points else {
        panic!()
    };
    assert_eq!(values, &vec![2.5]);
    // A legacy double exactly at the end of the range is included.
    let r = read(&store, &query("cpu", TimeRange::new(1_000_500, 1_000_500)));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].key.data_type, DataType::Double);
    // Also across a range that crosses 0 (two scans of the legacy index).
    assert_eq!(
        read(&store, &query("cpu", TimeRange::new(-5_000_000, 1_000_000))).len(),
        1
    );
}

#[test]
fn negative_timestamps_are_found_in_their_non_floor_rows() {
    // With a 5 ms row width, row times of negative timestamps jump around (§14.11):
    // every range must still return exactly the points inside it.
    let cluster = MemorySession::new();
    let store = open(
        &cluster,
        StoreOptions {
            row_width: Some(5),
            ..StoreOptions::default()
        },
    );
    let ts: Vec<i64> = (-23..=23).collect();
    write_longs(&store, "n", &[("h", "a")], &ts, &ts);
    for start in -25..=25 {
        for end in start..=25 {
            let r = read(&store, &query("n", TimeRange::new(start, end)));
            let got: Vec<i64> = r
                .iter()
                .flat_map(|d| d.points.timestamps().to_vec())
                .collect();
            let want: Vec<i64> = ts
                .iter()
                .copied()
                .filter(|t| (start..=end).contains(t))
                .collect();
            assert_eq!(got, want, "range [{start}, {end}]");
        }
    }
    let r = read(
        &store,
        &SeriesQuery {
            order: Order::Desc,
            limit: Some(3),
            ..query("n", TimeRange::new(-20, 4))
        },
    );
    assert_eq!(long_pairs(&r[0]), vec![(4, 4), (3, 3), (2, 2)]);
    // Negative rows overlap, so a limit must not stop at the first rows in row order.
    for order in [Order::Desc, Order::Asc] {
        let r = read(
            &store,
            &SeriesQuery {
                order,
                limit: Some(3),
                ..query("n", TimeRange::new(-20, -1))
            },
        );
        let want = match order {
            Order::Desc => vec![(-1, -1), (-2, -2), (-3, -3)],
            Order::Asc => vec![(-20, -20), (-19, -19), (-18, -18)],
        };
        assert_eq!(long_pairs(&r[0]), want, "{order:?}");
    }
}

#[test]
fn ttl_options() {
    let cluster = MemorySession::new();
    let ttl_of = |log: &[Mutation]| -> Vec<u32> {
        log.iter()
            .filter_map(|m| match m {
                Mutation::DataPoint { ttl, .. } => Some(*ttl),
                _ => None,
            })
            .collect()
    };
    let store = open(
        &cluster,
        StoreOptions {
            default_ttl_secs: 60,
            ..StoreOptions::default()
        },
    );
    let mut own = longs("t", &[("k", "own")], &[1], &[1]);
    own.ttl_secs = 5;
    store
        .write(&batch(vec![
            own.clone(),
            longs("t", &[("k", "none")], &[1], &[1]),
        ]))
        .unwrap();
    assert_eq!(ttl_of(&cluster.applied()), vec![5, 60]);
    // Row keys live one row width longer than their points.
    assert!(cluster.applied().iter().any(|m| matches!(m,
        Mutation::RowKey { ttl, .. } if *ttl == 5 + (W / 1000) as u32)));

    let forced = MemorySession::new();
    let store = open(
        &forced,
        StoreOptions {
            default_ttl_secs: 60,
            force_default_ttl: true,
            ..StoreOptions::default()
        },
    );
    store.write(&batch(vec![own])).unwrap();
    assert_eq!(ttl_of(&forced.applied()), vec![60]);

    // Aligned: the TTL counts from the point's timestamp; expired ones are dropped.
    let aligned = MemorySession::new();
    let store = open(
        &aligned,
        StoreOptions {
            default_ttl_secs: 100,
            align_ttl_with_timestamp: true,
            ..StoreOptions::default()
        },
    );
    let now = now_ms();
    write_longs(
        &store,
        "t",
        &[("k", "a")],
        &[now - 200_000, now - 30_000],
        &[1, 2],
    );
    let ttls = ttl_of(&aligned.applied());
    assert_eq!(ttls.len(), 1, "the point older than its TTL is dropped");
    assert!((69..=70).contains(&ttls[0]), "{ttls:?}");
    // A point stamped 1000 s ahead lives 1100 s; its index rows outlive it.
    write_longs(&store, "t", &[("k", "b")], &[now + 1_000_000], &[1]);
    let log = aligned.applied();
    let ttls = ttl_of(&log);
    assert!((1099..=1100).contains(&ttls[1]), "{ttls:?}");
    assert!(log.iter().any(|m| matches!(m,
        Mutation::RowKey { tags, ttl, .. }
            if tags.get("k") == Some("b") && *ttl as i64 >= 1099 + W / 1000)));
}

#[test]
fn filtered_names_are_not_indexed_and_bad_points_do_not_sink_the_batch() {
    let cluster = MemorySession::new();
    let store = open(
        &cluster,
        StoreOptions {
            metric_index_filter: vec!["internal.".into()],
            ..StoreOptions::default()
        },
    );
    let huge = "x".repeat(70_000);
    store
        .write(&batch(vec![
            longs("internal.gc", &[("h", "a")], &[1], &[1]),
            longs("ok", &[("h", "a")], &[1], &[1]),
            SeriesPoints {
                key: SeriesKey::new("text", DataType::String, tags(&[("h", "a")])),
                ttl_secs: 0,
                points: Points::String {
                    ts: vec![1, 2],
                    values: vec![huge, "fine".into()],
                },
            },
        ]))
        .unwrap();
    assert_eq!(
        store.metric_names(None).unwrap(),
        vec!["ok".to_string(), "text".to_string()]
    );
    // A row key over Cassandra's 64 KiB key limit is rejected alone, too.
    let long_tag = "t".repeat(70_000);
    store
        .write(&batch(vec![
            longs("big", &[("h", long_tag.as_str())], &[1], &[1]),
            longs("small", &[("h", "a")], &[1], &[1]),
        ]))
        .unwrap();
    assert!(read(&store, &query("big", TimeRange::ALL)).is_empty());
    assert_eq!(read(&store, &query("small", TimeRange::ALL)).len(), 1);
    // Prefixes with non-ASCII last characters select exactly the names they prefix.
    store
        .write(&batch(vec![
            longs("cpuп.x", &[("h", "a")], &[1], &[1]),
            longs("cpuр", &[("h", "a")], &[1], &[1]),
        ]))
        .unwrap();
    assert_eq!(
        store.metric_names(Some("cpuп")).unwrap(),
        vec!["cpuп.x".to_string()]
    );
    assert_eq!(read(&store, &query("internal.gc", TimeRange::ALL)).len(), 1);
    let r = read(&store, &query("text", TimeRange::ALL));
    assert_eq!(
        r[0].points.timestamps(),
        &[2],
        "the 70 kB string is rejected alone"
    );
    let stats = store.stats();
    assert!(stats
        .counters
        .iter()
        .any(|(n, _, v)| *n == "cassandra_points_rejected_total" && *v == 2));
}

#[test]
fn unreachable_cluster_fails_clearly_and_recovers() {
    let cluster = MemorySession::new();
    cluster.set_down(true);
    let store = open(&cluster, StoreOptions::default());
    let h = store.health();
    assert!(!h.ok);
    assert!(h.detail.contains("cassandra is not ready"), "{}", h.detail);
    let b = batch(vec![longs("m", &[("h", "a")], &[1], &[1])]);
    assert!(matches!(store.write(&b), Err(StorageError::Internal(_))));
    assert!(store.metric_names(None).is_err());
    cluster.set_down(false);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(store.health().ok);
    store.write(&b).unwrap();
    assert_eq!(store.metric_names(None).unwrap(), vec!["m".to_string()]);
    // Down after start-up: health says so, reads fail, nothing panics.
    cluster.set_down(true);
    let h = store.health();
    assert!(!h.ok && h.detail.contains("unreachable"), "{}", h.detail);
    assert!(store.query(&query("m", TimeRange::ALL)).is_err());
}

#[test]
fn queue_in_front_delivers_everything_once_the_cluster_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = MemorySession::new();
    cluster.set_down(true);
    let opts = || {
        let mut o = QueueOptions::new(dir.path());
        o.backoff_min = Duration::from_millis(10);
        o.backoff_max = Duration::from_millis(50);
        o
    };
    let store: Arc<dyn Storage> = Arc::new(open(&cluster, StoreOptions::default()));
    let queue = DeliveryQueue::open(store, opts()).unwrap();
    for i in 0..50i64 {
        let ts: Vec<i64> = (0..20).map(|j| 1_000 * i + j).collect();
        queue
            .write(&batch(vec![longs("q", &[("h", "a")], &ts, &ts)]))
            .expect("acknowledged while the cluster is down");
    }
    assert_eq!(cluster.live_cell_count(), 0);
    // A restart while the cluster is still down keeps the queue.
    queue.close().unwrap();
    drop(queue);
    let store: Arc<dyn Storage> = Arc::new(open(&cluster, StoreOptions::default()));
    let queue = DeliveryQueue::open(store, opts()).unwrap();
    cluster.set_down(false);
    queue.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(cluster.live_cell_count(), 1000);
    let r = read(&queue, &query("q", TimeRange::ALL));
    let pairs = long_pairs(&r[0]);
    assert_eq!(pairs.len(), 1000);
    assert!(pairs.iter().all(|(t, v)| t == v));
    queue.close().unwrap();
}

#[test]
fn a_permanently_rejected_batch_is_dropped_not_retried_forever() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    cluster.reject_next_applies(1);
    let b = batch(vec![longs("m", &[("h", "a")], &[1], &[1])]);
    assert!(matches!(
        store.write(&b),
        Err(StorageError::InvalidInput(_))
    ));

    // Behind the queue: the rejected batch is counted and the next one still arrives.
    let store: Arc<dyn Storage> = Arc::new(store);
    let queue = DeliveryQueue::open(store, QueueOptions::new(dir.path())).unwrap();
    cluster.reject_next_applies(1);
    queue.write(&b).unwrap();
    write_longs(&queue, "m", &[("h", "a")], &[2], &[2]);
    queue.flush(Duration::from_secs(10)).unwrap();
    let r = read(&queue, &query("m", TimeRange::ALL));
    assert_eq!(long_pairs(&r[0]), vec![(2, 2)]);
    assert!(queue
        .stats()
        .counters
        .iter()
        .any(|(n, _, v)| *n == "queue_rejected_batches_total" && *v == 1));
    queue.close().unwrap();
}

#[test]
fn ttls_cassandra_refuses_are_rejected_per_point() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    let mut forever = longs("m", &[("h", "a")], &[1], &[1]);
    forever.ttl_secs = 700_000_000;
    let mut long = longs("m", &[("h", "b")], &[1], &[1]);
    long.ttl_secs = 630_000_000;
    store.write(&batch(vec![forever, long])).unwrap();
    let r = read(&store, &query("m", TimeRange::ALL));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].key.tags.get("h"), Some("b"));
    assert!(cluster.applied().iter().all(|m| match m {
        Mutation::RowKey { ttl, .. } | Mutation::RowKeyTime { ttl, .. } => *ttl < 630_720_000,
        _ => true,
    }));
}

#[test]
fn tag_indexed_row_keys_are_written_and_deleted_for_configured_metrics() {
    use kairosdb_cassandra::index::tag_collection_hash;
    use kairosdb_cassandra::TagIndexed;
    let cluster = MemorySession::new();
    let store = open(
        &cluster,
        StoreOptions {
            tag_indexed: TagIndexed::parse("cpu:host|dc, mem").unwrap(),
            ..StoreOptions::default()
        },
    );
    let t = [("host", "server1"), ("dc", "DC1"), ("rack", "r1")];
    store
        .write(&batch(vec![
            longs("cpu", &t, &[1], &[1]),
            longs("mem", &[("host", "server1")], &[1], &[1]),
            longs("disk", &t, &[1], &[1]),
        ]))
        .unwrap();
    // cpu: one row per indexed tag (host, dc), the hash over the indexed tags only:
    // spec §8.5's vector for data_center=DC1,host=server1 uses other names, so
    // compare with the same function the vectors pin.
    let mut cpu = cluster.tag_indexed_rows("cpu");
    cpu.sort();
    let hash = tag_collection_hash(&tags(&t), |n| n == "host" || n == "dc");
    assert_eq!(
        cpu,
        vec![
            (
                0,
                "dc=DC1".to_string(),
                "kairos_long".to_string(),
                hash,
                tags(&t)
            ),
            (
                0,
                "host=server1".to_string(),
                "kairos_long".to_string(),
                hash,
                tags(&t)
            ),
        ]
    );
    // mem: all its tags; host=server1 alone hashes to spec §8.5's -2125777964.
    let mem = cluster.tag_indexed_rows("mem");
    assert_eq!(mem.len(), 1);
    assert_eq!((mem[0].1.as_str(), mem[0].3), ("host=server1", -2125777964));
    // disk is not configured: row_keys only.
    assert!(cluster.tag_indexed_rows("disk").is_empty());
    // Both tables are written: the row is still found through row_keys.
    assert_eq!(read(&store, &query("cpu", TimeRange::ALL)).len(), 1);
    // A whole-row delete removes the tag-indexed rows too.
    store
        .delete(&DeleteRequest {
            metric: "cpu".into(),
            filter: TagFilter::default(),
            range: TimeRange::ALL,
            shard: None,
            exact: false,
        })
        .unwrap();
    assert!(cluster.tag_indexed_rows("cpu").is_empty());
    assert_eq!(cluster.tag_indexed_rows("mem").len(), 1);

    assert!(TagIndexed::parse(":host").is_err());
    assert!(TagIndexed::parse("*").unwrap().all_metrics);
}

#[test]
fn index_metric_tags_writes_the_tag_index_of_rows_written_before_the_metric_was_indexed() {
    let cluster = MemorySession::new();
    let plain = open(&cluster, StoreOptions::default());
    let t = [("host", "server1")];
    plain
        .write(&batch(vec![
            longs("mem", &t, &[1], &[1]),
            longs("disk", &t, &[1], &[1]),
        ]))
        .unwrap();
    assert!(cluster.tag_indexed_rows("mem").is_empty());
    // `mem` is added to tag_indexed_row_key_lookup_metrics; its old row is re-indexed.
    let indexed = open(
        &cluster,
        StoreOptions {
            tag_indexed: kairosdb_cassandra::TagIndexed::parse("mem").unwrap(),
            ..StoreOptions::default()
        },
    );
    assert_eq!(indexed.index_metric_tags("mem", TimeRange::ALL).unwrap(), 1);
    let mem = cluster.tag_indexed_rows("mem");
    assert_eq!(mem.len(), 1);
    assert_eq!((mem[0].1.as_str(), mem[0].3), ("host=server1", -2125777964));
    // A metric that is not tag-indexed, or a range without its rows, writes nothing.
    assert_eq!(
        indexed.index_metric_tags("disk", TimeRange::ALL).unwrap(),
        0
    );
    assert!(cluster.tag_indexed_rows("disk").is_empty());
    assert_eq!(
        indexed
            .index_metric_tags("mem", TimeRange::new(1 << 40, 1 << 41))
            .unwrap(),
        0
    );
}

/// Metadata is KairosDB's statements one for one (spec §7.7), stamped in ms: a set is
/// one insert; a delete is the row delete, then the static `mtime` insert. The
/// service-key listing's one-row-per-key answer is folded to one entry per key.
#[test]
fn metadata_sends_kairosdbs_service_index_statements() {
    let cluster = MemorySession::new();
    let store = open(&cluster, StoreOptions::default());
    let before = now_ms();
    store.set_value("svc", "sk", "k1", "v1").unwrap();
    store.set_value("svc", "sk", "k2", "v2").unwrap();
    store.delete_key("svc", "sk", "k1").unwrap();
    let log: Vec<Mutation> = cluster
        .applied()
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                Mutation::ServiceValue { .. }
                    | Mutation::DeleteServiceValue { .. }
                    | Mutation::ServiceKeyModified { .. }
            )
        })
        .collect();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(
        matches!(&log[0], Mutation::ServiceValue { key, value, .. } if key == "k1" && value == "v1")
    );
    assert!(matches!(&log[2], Mutation::DeleteServiceValue { key, .. } if key == "k1"));
    assert!(
        matches!(&log[3], Mutation::ServiceKeyModified { service_key, .. } if service_key == "sk")
    );
    let stamps: Vec<i64> = log.iter().map(Mutation::timestamp_ms).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert!(
        stamps[0] >= before && stamps[0] < before + 60_000,
        "ms, not us: {stamps:?}"
    );

    // Two keys under one service key: Cassandra answers two rows; we list it once.
    store.set_value("svc", "sk", "k3", "v3").unwrap();
    assert_eq!(cluster.service_key_rows("svc").unwrap(), ["sk", "sk"]);
    assert_eq!(store.list_service_keys("svc").unwrap(), ["sk"]);
}

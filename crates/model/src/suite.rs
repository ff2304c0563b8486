//! The storage conformance suite: the behaviours every [`Storage`] backend must
//! show, written once and run against each backend (embedded engine, Cassandra,
//! later the cluster client). Compiled only with the `test-suite` cargo feature;
//! backends enable it as a dev-dependency.
//!
//! Not a place for backend-specific behaviour (WAL replay, blocks, backpressure,
//! stats): those tests stay beside the backend.
//!
//! # Plugging a backend in
//!
//! Implement [`Fixture`] for a value that owns one fresh, empty store (and whatever
//! it needs: a temp dir, a Cassandra keyspace), then either call [`run_all`] with a
//! factory, or declare one `#[test]` per case with
//! `kairosdb_model::storage_suite_tests!(open)` (see
//! `crates/engine/tests/storage_suite.rs`); to mark one case
//! `#[ignore = "BUG: ..."]`, call the case functions by hand instead. [`CASES`]
//! lists every case by name.
//!
//! The optional hooks of [`Fixture`] widen the suite: [`Fixture::reopen`] (close
//! and open the same data again) re-checks results after a restart, and
//! [`Fixture::advance_clock`] enables the TTL case. Without them those checks are
//! skipped, never failed.
//!
//! Cases panic (with the case's own message) on the first wrong result; every
//! assertion compares exact values.

use std::time::{Duration, Instant};

use crate::batch::{Points, SeriesPoints, WriteBatch};
use crate::partition::{partition_of, Shard};
use crate::read::{DeleteRequest, Order, SeriesData, SeriesQuery, TagFilter, TimeRange};
use crate::series::{DataType, SeriesKey, Tags};
use crate::storage::{Storage, StorageError};

/// One fresh, empty store under test, plus optional control hooks.
pub trait Fixture {
    /// The store. Its identity may change across [`Fixture::reopen`].
    fn storage(&self) -> &dyn Storage;

    /// Closes the store and opens the same data again (a restart). Returns `false`
    /// when the backend cannot, and the restart checks are skipped.
    fn reopen(&mut self) -> bool {
        false
    }

    /// Moves the store's notion of "now" forward by `by` (for TTLs). Returns `false`
    /// when the backend has no time control, and the TTL case is skipped.
    fn advance_clock(&mut self, by: Duration) -> bool {
        let _ = by;
        false
    }
}

/// A fixture without hooks, for backends that only offer a store.
pub struct Plain(pub Box<dyn Storage>);

impl Fixture for Plain {
    fn storage(&self) -> &dyn Storage {
        &*self.0
    }
}

/// Opens a fresh, empty store for one case.
pub type Factory<'a> = &'a dyn Fn() -> Box<dyn Fixture>;

/// One case: opens its own stores from the factory and panics on a wrong result.
pub type Case = fn(Factory<'_>);

/// Every case, by name, in the order [`run_all`] runs them.
pub const CASES: &[(&str, Case)] = &[
    ("round_trip_all_types", round_trip_all_types),
    ("last_write_wins", last_write_wins),
    (
        "a_backfill_write_never_replaces_a_stored_point",
        a_backfill_write_never_replaces_a_stored_point,
    ),
    (
        "long_and_double_are_different_series",
        long_and_double_are_different_series,
    ),
    ("tag_filters", tag_filters),
    (
        "shard_reads_only_its_partitions",
        shard_reads_only_its_partitions,
    ),
    (
        "a_sharded_delete_removes_only_its_partitions",
        a_sharded_delete_removes_only_its_partitions,
    ),
    (
        "an_exact_delete_spares_series_with_more_tags",
        an_exact_delete_spares_series_with_more_tags,
    ),
    ("range_ends_are_inclusive", range_ends_are_inclusive),
    ("limit_and_order", limit_and_order),
    ("max_points_exceeded", max_points_exceeded),
    ("count_in_range", count_in_range),
    ("metric_names_sorted", metric_names_sorted),
    (
        "tag_names_and_values_sorted_distinct",
        tag_names_and_values_sorted_distinct,
    ),
    ("series_keys_filter_and_range", series_keys_filter_and_range),
    (
        "delete_removes_only_selected_points",
        delete_removes_only_selected_points,
    ),
    (
        "delete_last_points_empties_listings",
        delete_last_points_empties_listings,
    ),
    ("reopen_keeps_everything", reopen_keeps_everything),
    ("ttl_expires_points", ttl_expires_points),
    ("sync_and_health", sync_and_health),
    ("metadata_set_get_overwrite", metadata_set_get_overwrite),
    (
        "metadata_listings_sorted_and_prefixed",
        metadata_listings_sorted_and_prefixed,
    ),
    (
        "metadata_delete_keeps_service_key_listed",
        metadata_delete_keeps_service_key_listed,
    ),
    ("metadata_survives_reopen", metadata_survives_reopen),
];

/// Declares one `#[test]` per case of [`CASES`], each calling the case with the
/// given factory function (`fn() -> Box<dyn Fixture>`), plus a test that the list
/// here is [`CASES`]. A backend whose case must be ignored expands the tests by hand.
#[macro_export]
macro_rules! storage_suite_tests {
    ($open:path) => {
        $crate::storage_suite_tests!(@cases $open;
            round_trip_all_types,
            last_write_wins,
            a_backfill_write_never_replaces_a_stored_point,
            long_and_double_are_different_series,
            tag_filters,
            shard_reads_only_its_partitions,
            a_sharded_delete_removes_only_its_partitions,
            an_exact_delete_spares_series_with_more_tags,
            range_ends_are_inclusive,
            limit_and_order,
            max_points_exceeded,
            count_in_range,
            metric_names_sorted,
            tag_names_and_values_sorted_distinct,
            series_keys_filter_and_range,
            delete_removes_only_selected_points,
            delete_last_points_empties_listings,
            reopen_keeps_everything,
            ttl_expires_points,
            sync_and_health,
            metadata_set_get_overwrite,
            metadata_listings_sorted_and_prefixed,
            metadata_delete_keeps_service_key_listed,
            metadata_survives_reopen,
        );
    };
    (@cases $open:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::$name(&$open);
            }
        )*

        #[test]
        fn every_suite_case_runs_here() {
            let here: &[&str] = &[$(stringify!($name)),*];
            let all: Vec<&str> = $crate::suite::CASES.iter().map(|(n, _)| *n).collect();
            assert_eq!(here, all.as_slice(), "list every suite case in storage_suite_tests!");
        }
    };
}

/// Runs every case against fresh stores from `open`, naming each on stderr so a
/// panic is easy to place.
pub fn run_all(open: Factory<'_>) {
    for (name, case) in CASES {
        eprintln!("storage suite: {name}");
        case(open);
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A timestamp far from 0, so "negative" and "0" cases are deliberate.
const T0: i64 = 1_700_000_000_000;

/// KairosDB's Cassandra row width (spec §7.3): three weeks in ms. Cases that check
/// range-selected listings keep their series whole rows apart, so a row-granular
/// backend answers exactly.
const ROW: i64 = 1_814_400_000;

fn key(metric: &str, dt: DataType, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, dt, Tags::from_pairs(tags.iter().copied()))
}

fn longs(metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[i64]) -> SeriesPoints {
    SeriesPoints {
        key: key(metric, DataType::Long, tags),
        ttl_secs: 0,
        points: Points::Long {
            ts: ts.to_vec(),
            values: v.to_vec(),
        },
    }
}

fn doubles(metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[f64]) -> SeriesPoints {
    SeriesPoints {
        key: key(metric, DataType::Double, tags),
        ttl_secs: 0,
        points: Points::Double {
            ts: ts.to_vec(),
            values: v.to_vec(),
        },
    }
}

fn strings(metric: &str, tags: &[(&str, &str)], ts: &[i64], v: &[&str]) -> SeriesPoints {
    SeriesPoints {
        key: key(metric, DataType::String, tags),
        ttl_secs: 0,
        points: Points::String {
            ts: ts.to_vec(),
            values: v.iter().map(|s| (*s).to_string()).collect(),
        },
    }
}

fn write(s: &dyn Storage, series: Vec<SeriesPoints>) {
    s.write(&WriteBatch { series })
        .unwrap_or_else(|e| panic!("write failed: {e}"));
}

fn query(metric: &str) -> SeriesQuery {
    SeriesQuery::new(metric, TagFilter::default(), TimeRange::ALL)
}

/// Reads and sorts the series by key (the trait does not order series). A series
/// without points in the range may be omitted or returned empty; both mean "no
/// data", so empty ones are dropped here.
fn read(s: &dyn Storage, q: &SeriesQuery) -> Vec<SeriesData> {
    let mut r = s
        .query(q)
        .unwrap_or_else(|e| panic!("query {q:?} failed: {e}"))
        .expect_complete();
    r.retain(|d| !d.points.is_empty());
    r.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

/// (ts, value) pairs of the single long series `q` returns.
fn long_pairs(s: &dyn Storage, q: &SeriesQuery) -> Vec<(i64, i64)> {
    let r = read(s, q);
    assert_eq!(r.len(), 1, "expected one series for {q:?}, got {r:?}");
    long_pairs_of(&r[0])
}

fn long_pairs_of(d: &SeriesData) -> Vec<(i64, i64)> {
    match &d.points {
        Points::Long { ts, values } => ts.iter().copied().zip(values.iter().copied()).collect(),
        p => panic!("series {} is not long: {p:?}", d.key),
    }
}

/// Timestamps of each returned series, by key.
fn timestamps(s: &dyn Storage, q: &SeriesQuery) -> Vec<(SeriesKey, Vec<i64>)> {
    read(s, q)
        .into_iter()
        .map(|d| ((*d.key).clone(), d.points.timestamps().to_vec()))
        .collect()
}

fn keys_of(s: &dyn Storage, q: &SeriesQuery) -> Vec<SeriesKey> {
    read(s, q).into_iter().map(|d| (*d.key).clone()).collect()
}

/// `series_keys`, checking on the way that `series_keys_now`, where the backend
/// answers it, answers the same.
fn series_keys(s: &dyn Storage, metric: &str, f: &TagFilter, r: TimeRange) -> Vec<SeriesKey> {
    let mut k = s
        .series_keys(metric, f, r)
        .unwrap_or_else(|e| panic!("series_keys({metric}, {f:?}, {r:?}) failed: {e}"));
    k.sort();
    if let Some(now) = s.series_keys_now(metric, f, r) {
        let mut now = now.unwrap_or_else(|e| panic!("series_keys_now({metric}) failed: {e}"));
        now.sort();
        assert_eq!(now, k, "series_keys_now({metric}, {f:?}, {r:?})");
    }
    k
}

fn metric_names(s: &dyn Storage, prefix: Option<&str>) -> Vec<String> {
    s.metric_names(prefix)
        .unwrap_or_else(|e| panic!("metric_names({prefix:?}) failed: {e}"))
}

fn tag_names(s: &dyn Storage) -> Vec<String> {
    s.tag_names()
        .unwrap_or_else(|e| panic!("tag_names failed: {e}"))
}

fn tag_values(s: &dyn Storage) -> Vec<String> {
    s.tag_values()
        .unwrap_or_else(|e| panic!("tag_values failed: {e}"))
}

fn delete(s: &dyn Storage, metric: &str, f: TagFilter, range: TimeRange) -> u64 {
    let req = DeleteRequest {
        metric: metric.into(),
        filter: f,
        range,
        shard: None,
        exact: false,
    };
    s.delete(&req)
        .unwrap_or_else(|e| panic!("delete {req:?} failed: {e}"))
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Runs `check` now and, when the fixture can restart, again after a reopen.
fn check_and_recheck(fx: &mut dyn Fixture, check: impl Fn(&dyn Storage, &str)) {
    check(fx.storage(), "before reopen");
    if fx.reopen() {
        check(fx.storage(), "after reopen");
    }
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// Long, double and string series come back exactly as written: i64 extremes,
/// `-0.0` and other edge doubles bit for bit, empty and non-ASCII strings, negative
/// timestamps and timestamp 0, ascending however they were written (SeriesData doc).
pub fn round_trip_all_types(open: Factory<'_>) {
    let mut fx = open();
    let tags = [("host", "a:b=c"), ("dc", "ü ✓")];
    let dbl = [-0.0, 0.0, f64::MIN, f64::MAX, 5e-324, 1.25, -2.5];
    write(
        fx.storage(),
        vec![
            longs(
                "rt.long",
                &tags,
                &[T0, -1, 0, -1_000_000, 1],
                &[7, i64::MIN, i64::MAX, -1, 0],
            ),
            doubles("rt.double", &tags, &[3, -3, 0, -2, 2, 1, -1], &dbl),
            strings(
                "rt.string",
                &tags,
                &[2, -5, 0, 9],
                &["two", "", "zero ✓", "a\"b\\c\n"],
            ),
        ],
    );
    check_and_recheck(&mut *fx, |s, when| {
        let r = read(s, &query("rt.long"));
        assert_eq!(r.len(), 1, "{when}: {r:?}");
        assert_eq!(*r[0].key, key("rt.long", DataType::Long, &tags), "{when}");
        assert_eq!(
            long_pairs_of(&r[0]),
            vec![
                (-1_000_000, -1),
                (-1, i64::MIN),
                (0, i64::MAX),
                (1, 0),
                (T0, 7)
            ],
            "{when}"
        );

        let r = read(s, &query("rt.double"));
        assert_eq!(r.len(), 1, "{when}: {r:?}");
        assert_eq!(
            *r[0].key,
            key("rt.double", DataType::Double, &tags),
            "{when}"
        );
        let Points::Double { ts, values } = &r[0].points else {
            panic!("{when}: not doubles: {:?}", r[0].points)
        };
        assert_eq!(ts, &vec![-3, -2, -1, 0, 1, 2, 3], "{when}");
        // Written at [3,-3,0,-2,2,1,-1] -> indices by ascending ts: 1,3,6,2,5,4,0.
        let expect = [dbl[1], dbl[3], dbl[6], dbl[2], dbl[5], dbl[4], dbl[0]];
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(values), bits(&expect), "{when}: doubles bit for bit");

        let r = read(s, &query("rt.string"));
        assert_eq!(r.len(), 1, "{when}: {r:?}");
        assert_eq!(
            *r[0].key,
            key("rt.string", DataType::String, &tags),
            "{when}"
        );
        assert_eq!(
            r[0].points,
            Points::String {
                ts: vec![-5, 0, 2, 9],
                values: strs(&["", "zero ✓", "two", "a\"b\\c\n"]),
            },
            "{when}"
        );
        assert!(read(s, &query("rt.none")).is_empty(), "{when}");
    });
}

/// One value per series and timestamp: the last one written wins, within one batch
/// and across batches (SeriesData doc; Cassandra overwrites the cell).
pub fn last_write_wins(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    write(
        s,
        vec![longs("lww", &[("h", "a")], &[1, 2, 3], &[10, 20, 30])],
    );
    write(s, vec![longs("lww", &[("h", "a")], &[2], &[21])]);
    write(
        s,
        vec![longs("lww", &[("h", "a")], &[3, 3, 4], &[31, 32, 40])],
    );
    write(
        s,
        vec![strings("lww.s", &[("h", "a")], &[5, 5], &["x", "y"])],
    );
    check_and_recheck(&mut *fx, |s, when| {
        assert_eq!(
            long_pairs(s, &query("lww")),
            vec![(1, 10), (2, 21), (3, 32), (4, 40)],
            "{when}"
        );
        assert_eq!(
            read(s, &query("lww.s"))[0].points,
            Points::String {
                ts: vec![5],
                values: strs(&["y"])
            },
            "{when}"
        );
    });
}

/// A backfill ([`Storage::backfill`]) stores only the points whose series and timestamp
/// hold none and never replaces a stored one, so a copy of old data cannot undo a newer
/// write; a write after it replaces a backfilled point as any other. A backend that
/// cannot backfill refuses with [`StorageError::Unsupported`] and stores nothing.
pub fn a_backfill_write_never_replaces_a_stored_point(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    let a = [("h", "a")];
    write(
        s,
        vec![
            longs("bf", &a, &[1, 3], &[10, 30]),
            strings("bf.s", &a, &[1], &["new"]),
        ],
    );
    let backfill = WriteBatch {
        series: vec![
            longs("bf", &a, &[1, 2, 3, 4, 5, 5], &[-1, 20, -3, 40, 50, 51]),
            longs("bf", &[("h", "b")], &[1], &[100]),
            strings("bf.s", &a, &[1, 2], &["old", "two"]),
        ],
    };
    let stored = |s: &dyn Storage, tags: &[(&str, &str)]| {
        let q = SeriesQuery {
            filter: TagFilter::from_pairs(&[("h", &[tags[0].1])]),
            ..query("bf")
        };
        read(s, &q).first().map(long_pairs_of).unwrap_or_default()
    };
    match s.backfill(&backfill) {
        Ok(()) => {}
        Err(StorageError::Unsupported(_)) => {
            assert_eq!(
                stored(s, &a),
                [(1, 10), (3, 30)],
                "a refusal stores nothing"
            );
            assert_eq!(stored(s, &[("h", "b")]), [], "a refusal stores nothing");
            return;
        }
        Err(e) => panic!("backfill failed: {e}"),
    }
    // Twice changes nothing more.
    s.backfill(&backfill)
        .unwrap_or_else(|e| panic!("second backfill failed: {e}"));
    write(s, vec![longs("bf", &a, &[2], &[21])]);
    check_and_recheck(&mut *fx, |s, when| {
        assert_eq!(
            stored(s, &a),
            [(1, 10), (2, 21), (3, 30), (4, 40), (5, 51)],
            "{when}: stored points kept, absent ones added, a later write wins"
        );
        assert_eq!(stored(s, &[("h", "b")]), [(1, 100)], "{when}: a new series");
        assert_eq!(
            read(s, &query("bf.s"))[0].points,
            Points::String {
                ts: vec![1, 2],
                values: strs(&["new", "two"])
            },
            "{when}"
        );
    });
}

/// The data type is part of the series identity (spec §2.4): a long, a double and
/// a string at the same metric, tags and timestamp are three series, none
/// overwriting the others.
pub fn long_and_double_are_different_series(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let tags = [("h", "a")];
    write(
        s,
        vec![
            longs("mix", &tags, &[1], &[1]),
            doubles("mix", &tags, &[1], &[1.5]),
            strings("mix", &tags, &[1], &["one"]),
        ],
    );
    let r = read(s, &query("mix"));
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(*r[0].key, key("mix", DataType::Long, &tags));
    assert_eq!(
        r[0].points,
        Points::Long {
            ts: vec![1],
            values: vec![1]
        }
    );
    assert_eq!(*r[1].key, key("mix", DataType::Double, &tags));
    assert_eq!(
        r[1].points,
        Points::Double {
            ts: vec![1],
            values: vec![1.5]
        }
    );
    assert_eq!(*r[2].key, key("mix", DataType::String, &tags));
    assert_eq!(
        r[2].points,
        Points::String {
            ts: vec![1],
            values: strs(&["one"])
        }
    );
    assert_eq!(
        series_keys(s, "mix", &TagFilter::default(), TimeRange::ALL),
        vec![
            key("mix", DataType::Long, &tags),
            key("mix", DataType::Double, &tags),
            key("mix", DataType::String, &tags),
        ]
    );
    assert_eq!(metric_names(s, None), strs(&["mix"]));
}

/// Tag filters (spec §4.2, TagFilter doc): exact, OR of values, AND across names,
/// whole-value regex, a series missing a filtered tag never matches.
pub fn tag_filters(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    write(
        s,
        vec![
            longs("tf", &[("host", "a"), ("dc", "x")], &[1], &[1]),
            longs("tf", &[("host", "b"), ("dc", "x")], &[1], &[2]),
            longs("tf", &[("host", "c"), ("dc", "y")], &[1], &[3]),
            longs("tf", &[("host", "ab"), ("dc", "y")], &[1], &[4]),
            longs("tf", &[("host", "a")], &[1], &[5]),
            longs("tf", &[("dc", "x")], &[1], &[6]),
            // Another metric with matching tags is never returned.
            longs("tf.other", &[("host", "a"), ("dc", "x")], &[1], &[7]),
        ],
    );
    let k = |tags: &[(&str, &str)]| key("tf", DataType::Long, tags);
    let sel = |pairs: &[(&str, &[&str])]| {
        let q = SeriesQuery {
            filter: TagFilter::from_pairs(pairs),
            ..query("tf")
        };
        keys_of(s, &q)
    };
    let mut all = vec![
        k(&[("host", "a"), ("dc", "x")]),
        k(&[("host", "b"), ("dc", "x")]),
        k(&[("host", "c"), ("dc", "y")]),
        k(&[("host", "ab"), ("dc", "y")]),
        k(&[("host", "a")]),
        k(&[("dc", "x")]),
    ];
    all.sort();
    assert_eq!(sel(&[]), all, "empty filter = every series");
    let sorted = |mut v: Vec<SeriesKey>| {
        v.sort();
        v
    };
    assert_eq!(
        sel(&[("host", &["a"])]),
        sorted(vec![k(&[("host", "a"), ("dc", "x")]), k(&[("host", "a")])]),
        "exact"
    );
    assert_eq!(
        sel(&[("host", &["a", "b"])]),
        sorted(vec![
            k(&[("host", "a"), ("dc", "x")]),
            k(&[("host", "b"), ("dc", "x")]),
            k(&[("host", "a")]),
        ]),
        "OR of values"
    );
    assert_eq!(
        sel(&[("host", &["a", "c"]), ("dc", &["x"])]),
        vec![k(&[("host", "a"), ("dc", "x")])],
        "AND across names"
    );
    assert_eq!(
        sel(&[("dc", &["x"])]),
        sorted(vec![
            k(&[("host", "a"), ("dc", "x")]),
            k(&[("host", "b"), ("dc", "x")]),
            k(&[("dc", "x")]),
        ]),
        "a series missing the filtered tag never matches"
    );
    assert_eq!(
        sel(&[("host", &["regex:a|c"])]),
        sorted(vec![
            k(&[("host", "a"), ("dc", "x")]),
            k(&[("host", "c"), ("dc", "y")]),
            k(&[("host", "a")]),
        ]),
        "regex matches the whole value: `a` does not match `ab`"
    );
    assert_eq!(
        sel(&[("host", &["regex:b"])]),
        vec![k(&[("host", "b"), ("dc", "x")])],
        "regex `b` is anchored"
    );
    assert_eq!(
        sel(&[("host", &["regex:a.*"]), ("dc", &["y"])]),
        vec![k(&[("host", "ab"), ("dc", "y")])],
        "regex AND exact"
    );
    assert_eq!(
        sel(&[("host", &["c", "regex:.b"])]),
        sorted(vec![
            k(&[("host", "c"), ("dc", "y")]),
            k(&[("host", "ab"), ("dc", "y")]),
        ]),
        "exact OR regex"
    );
    assert!(sel(&[("host", &["zz"])]).is_empty(), "no value");
    assert!(sel(&[("nope", &["a"])]).is_empty(), "no tag name");
    assert!(
        sel(&[("host", &["a"]), ("nope", &["regex:.*"])]).is_empty(),
        "missing tag with a match-all regex still never matches"
    );
}

/// Both ends of a range are inclusive (spec §4.1); empty and inverted ranges
/// return nothing.
/// A read with a [`Shard`] returns exactly the matching series whose partition it
/// holds, whatever their data type (cluster workers answer for some partitions only).
pub fn shard_reads_only_its_partitions(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let mut series = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let i = i as i64;
        series.push(longs("sh", &[("host", h.as_str())], &[T0 + i], &[i]));
        series.push(doubles(
            "sh",
            &[("host", h.as_str())],
            &[T0 + 1000 + i],
            &[0.5],
        ));
    }
    write(s, series);
    const PARTITIONS: u32 = 8;
    let wanted = [1, 4, 6];
    let q = SeriesQuery {
        shard: Some(Shard::new(PARTITIONS, wanted)),
        ..query("sh")
    };
    let mut expected = Vec::new();
    for h in &hosts {
        let tags = Tags::from_pairs([("host", h.as_str())]);
        if wanted.contains(&partition_of("sh", &tags, PARTITIONS)) {
            expected.push(key("sh", DataType::Long, &[("host", h.as_str())]));
            expected.push(key("sh", DataType::Double, &[("host", h.as_str())]));
        }
    }
    expected.sort();
    assert!(
        !expected.is_empty() && expected.len() < 80,
        "{} series",
        expected.len()
    );
    assert_eq!(keys_of(s, &q), expected);
    let none = SeriesQuery {
        shard: Some(Shard::new(PARTITIONS, [])),
        ..query("sh")
    };
    assert_eq!(
        keys_of(s, &none),
        Vec::<SeriesKey>::new(),
        "an empty shard reads nothing"
    );
}

pub fn a_sharded_delete_removes_only_its_partitions(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let series = hosts
        .iter()
        .map(|h| longs("sd", &[("host", h.as_str())], &[T0, T0 + 1], &[1, 2]))
        .collect();
    write(s, series);
    const PARTITIONS: u32 = 8;
    let wanted = [0, 3, 5];
    let in_shard = |h: &str| {
        let tags = Tags::from_pairs([("host", h)]);
        wanted.contains(&partition_of("sd", &tags, PARTITIONS))
    };
    let kept: Vec<SeriesKey> = hosts
        .iter()
        .filter(|h| !in_shard(h))
        .map(|h| key("sd", DataType::Long, &[("host", h.as_str())]))
        .collect();
    assert!(!kept.is_empty() && kept.len() < 40, "{} kept", kept.len());
    let request = DeleteRequest {
        metric: "sd".into(),
        filter: TagFilter::default(),
        range: TimeRange::ALL,
        shard: Some(Shard::new(PARTITIONS, wanted)),
        exact: false,
    };
    let touched = s
        .delete(&request)
        .unwrap_or_else(|e| panic!("sharded delete failed: {e}"));
    // A cluster answers the most series one worker touched: at most the shard's.
    let in_it = (40 - kept.len()) as u64;
    assert!(
        touched > 0 && touched <= in_it,
        "{touched} of {in_it} series touched"
    );
    check_and_recheck(&mut *fx, |s, when| {
        let mut left = keys_of(s, &query("sd"));
        left.sort();
        let mut kept = kept.clone();
        kept.sort();
        assert_eq!(left, kept, "{when}: only the shard's series are gone");
    });
}

pub fn an_exact_delete_spares_series_with_more_tags(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    write(
        s,
        vec![
            longs("ex", &[("host", "a")], &[T0, T0 + 1], &[1, 2]),
            longs("ex", &[("host", "a"), ("dc", "eu")], &[T0, T0 + 1], &[3, 4]),
            longs("ex", &[("host", "b")], &[T0], &[5]),
        ],
    );
    let request = DeleteRequest {
        metric: "ex".into(),
        filter: TagFilter::from_pairs(&[("host", &["a"])]),
        range: TimeRange::new(T0, T0),
        shard: None,
        exact: true,
    };
    let touched = s
        .delete(&request)
        .unwrap_or_else(|e| panic!("exact delete failed: {e}"));
    assert_eq!(touched, 1, "only host=a itself");
    check_and_recheck(&mut *fx, |s, when| {
        let by_tags = |tags: &[(&str, &str)]| {
            let q = SeriesQuery::new("ex", TagFilter::default(), TimeRange::ALL);
            read(s, &q)
                .into_iter()
                .find(|d| *d.key == key("ex", DataType::Long, tags))
                .map(|d| long_pairs_of(&d))
                .unwrap_or_default()
        };
        assert_eq!(by_tags(&[("host", "a")]), [(T0 + 1, 2)], "{when}");
        assert_eq!(
            by_tags(&[("host", "a"), ("dc", "eu")]),
            [(T0, 3), (T0 + 1, 4)],
            "{when}: a series with one more tag keeps its point"
        );
        assert_eq!(by_tags(&[("host", "b")]), [(T0, 5)], "{when}");
    });
}

pub fn range_ends_are_inclusive(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    write(
        s,
        vec![longs("rg", &[("h", "a")], &[10, 20, 30, 40], &[1, 2, 3, 4])],
    );
    let at = |start, end| {
        let q = SeriesQuery {
            range: TimeRange::new(start, end),
            ..query("rg")
        };
        read(s, &q).first().map(long_pairs_of).unwrap_or_default()
    };
    assert_eq!(at(20, 30), vec![(20, 2), (30, 3)]);
    assert_eq!(at(10, 40), vec![(10, 1), (20, 2), (30, 3), (40, 4)]);
    assert_eq!(at(20, 20), vec![(20, 2)]);
    assert_eq!(at(i64::MIN, 10), vec![(10, 1)]);
    assert_eq!(at(40, i64::MAX), vec![(40, 4)]);
    assert_eq!(at(11, 19), vec![]);
    assert_eq!(at(41, i64::MAX), vec![]);
    assert_eq!(at(30, 20), vec![], "start > end selects nothing");
}

/// Per-series `limit` honours `order`: ascending keeps the oldest N, descending
/// returns the newest N newest first (spec §4.8).
pub fn limit_and_order(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let ts = [10, 20, 30, 40, 50];
    write(
        s,
        vec![
            longs("lim", &[("h", "a")], &ts, &[1, 2, 3, 4, 5]),
            longs(
                "lim",
                &[("h", "b")],
                &[50, 40, 30, 20, 10],
                &[5, 4, 3, 2, 1],
            ),
        ],
    );
    let run = |limit, order, range| {
        let q = SeriesQuery {
            limit,
            order,
            range,
            ..query("lim")
        };
        let r = read(s, &q);
        assert_eq!(r.len(), 2, "{q:?}: {r:?}");
        let a = long_pairs_of(&r[0]);
        assert_eq!(a, long_pairs_of(&r[1]), "both series alike for {q:?}");
        a
    };
    let all = TimeRange::ALL;
    assert_eq!(run(Some(2), Order::Asc, all), vec![(10, 1), (20, 2)]);
    assert_eq!(run(Some(2), Order::Desc, all), vec![(50, 5), (40, 4)]);
    assert_eq!(
        run(None, Order::Desc, all),
        vec![(50, 5), (40, 4), (30, 3), (20, 2), (10, 1)]
    );
    assert_eq!(run(Some(10), Order::Asc, all).len(), 5, "limit above count");
    let mid = TimeRange::new(20, 40);
    assert_eq!(run(Some(2), Order::Asc, mid), vec![(20, 2), (30, 3)]);
    assert_eq!(run(Some(2), Order::Desc, mid), vec![(40, 4), (30, 3)]);
    assert_eq!(run(Some(1), Order::Desc, mid), vec![(40, 4)]);
}

/// A read matching more than `max_points` fails with `TooManyPoints` carrying the
/// limit; per-series `limit` and the range apply first.
pub fn max_points_exceeded(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    write(
        s,
        vec![
            longs("mp", &[("h", "a")], &[1, 2, 3], &[1, 2, 3]),
            longs("mp", &[("h", "b")], &[1, 2, 3], &[1, 2, 3]),
        ],
    );
    let q = |max| SeriesQuery {
        max_points: Some(max),
        ..query("mp")
    };
    assert_eq!(read(s, &q(6)).len(), 2, "exactly at the limit is allowed");
    match s.query(&q(5)) {
        Err(StorageError::TooManyPoints { limit: 5 }) => {}
        other => panic!("expected TooManyPoints {{ limit: 5 }}, got {other:?}"),
    }
    match s.query(&q(0)) {
        Err(StorageError::TooManyPoints { limit: 0 }) => {}
        other => panic!("expected TooManyPoints {{ limit: 0 }}, got {other:?}"),
    }
    let limited = SeriesQuery {
        limit: Some(2),
        ..q(4)
    };
    assert_eq!(read(s, &limited).len(), 2, "2 series x limit 2 fit in 4");
    let ranged = SeriesQuery {
        range: TimeRange::new(2, 3),
        ..q(4)
    };
    assert_eq!(
        read(s, &ranged).len(),
        2,
        "2 series x 2 points in range fit in 4"
    );
    let none = SeriesQuery {
        range: TimeRange::new(10, 20),
        ..q(0)
    };
    assert!(read(s, &none).is_empty(), "no points, no error");
}

/// With `count_in_range`, `SeriesData::in_range` counts every point of the series in
/// the range (an overwritten timestamp once) while `limit` still cuts what is returned;
/// without it, `in_range` is the number returned. `max_points` applies to the counted
/// points. Checked again after a restart, when the backend can reopen.
pub fn count_in_range(open: Factory<'_>) {
    let mut fx = open();
    write(
        fx.storage(),
        vec![
            longs(
                "cnt",
                &[("h", "a")],
                &[10, 20, 30, 40, 50],
                &[1, 2, 3, 4, 5],
            ),
            longs("cnt", &[("h", "b")], &[20, 40], &[7, 8]),
        ],
    );
    write(
        fx.storage(),
        vec![longs("cnt", &[("h", "a")], &[30], &[33])],
    );
    let check = |s: &dyn Storage, when: &str| {
        let run = |limit, order, range, count_in_range| -> Vec<(Vec<(i64, i64)>, u64)> {
            let q = SeriesQuery {
                limit,
                order,
                range,
                count_in_range,
                ..query("cnt")
            };
            read(s, &q)
                .iter()
                .map(|d| (long_pairs_of(d), d.in_range))
                .collect()
        };
        let all = TimeRange::ALL;
        assert_eq!(
            run(Some(1), Order::Desc, all, true),
            vec![(vec![(50, 5)], 5), (vec![(40, 8)], 2)],
            "{when}: newest point, every point counted"
        );
        assert_eq!(
            run(Some(1), Order::Asc, all, true),
            vec![(vec![(10, 1)], 5), (vec![(20, 7)], 2)],
            "{when}: oldest point, every point counted"
        );
        assert_eq!(
            run(Some(1), Order::Desc, TimeRange::new(15, 35), true),
            vec![(vec![(30, 33)], 2), (vec![(20, 7)], 1)],
            "{when}: counted within the range"
        );
        assert_eq!(
            run(Some(2), Order::Asc, all, false),
            vec![(vec![(10, 1), (20, 2)], 2), (vec![(20, 7), (40, 8)], 2)],
            "{when}: without count_in_range, in_range is what was returned"
        );
        assert_eq!(
            run(None, Order::Asc, TimeRange::new(20, 40), true),
            vec![
                (vec![(20, 2), (30, 33), (40, 4)], 3),
                (vec![(20, 7), (40, 8)], 2)
            ],
            "{when}: no limit"
        );
        let capped = |max| SeriesQuery {
            limit: Some(1),
            count_in_range: true,
            work_limit: None,
            max_points: Some(max),
            ..query("cnt")
        };
        assert_eq!(
            read(s, &capped(7)).len(),
            2,
            "{when}: 5 + 2 counted fit in 7"
        );
        match s.query(&capped(6)) {
            Err(StorageError::TooManyPoints { limit: 6 }) => {}
            other => panic!("{when}: expected TooManyPoints {{ limit: 6 }}, got {other:?}"),
        }
    };
    check(fx.storage(), "before a restart");
    if fx.reopen() {
        check(fx.storage(), "after a restart");
    }
}

/// Metric names are distinct and sorted, with and without a prefix (spec §1.10).
pub fn metric_names_sorted(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    write(
        s,
        vec![
            longs("sys.mem", &[("h", "a")], &[1], &[1]),
            longs("app.req", &[("h", "a")], &[1], &[1]),
            doubles("sys.cpu", &[("h", "a")], &[1], &[1.0]),
            longs("sys.cpu", &[("h", "b")], &[1], &[1]),
            longs("sys", &[("h", "a")], &[1], &[1]),
            strings("Sys.upper", &[("h", "a")], &[1], &["x"]),
            longs("systemd", &[("h", "a")], &[1], &[1]),
        ],
    );
    assert_eq!(
        metric_names(s, None),
        strs(&[
            "Sys.upper",
            "app.req",
            "sys",
            "sys.cpu",
            "sys.mem",
            "systemd"
        ])
    );
    assert_eq!(
        metric_names(s, Some("sys")),
        strs(&["sys", "sys.cpu", "sys.mem", "systemd"])
    );
    assert_eq!(metric_names(s, Some("sys.")), strs(&["sys.cpu", "sys.mem"]));
    assert_eq!(metric_names(s, Some("sys.c")), strs(&["sys.cpu"]));
    assert_eq!(metric_names(s, Some("sys.cpu")), strs(&["sys.cpu"]));
    assert_eq!(metric_names(s, Some("Sys")), strs(&["Sys.upper"]));
    assert!(metric_names(s, Some("zzz")).is_empty());
    assert!(metric_names(s, Some("sys.cpu.x")).is_empty());
}

/// Tag names and tag values over every series are sorted and distinct.
pub fn tag_names_and_values_sorted_distinct(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    assert!(tag_names(s).is_empty(), "a fresh store has no tags");
    assert!(tag_values(s).is_empty(), "a fresh store has no tag values");
    write(
        s,
        vec![
            longs("t1", &[("host", "b"), ("dc", "x")], &[1], &[1]),
            longs("t1", &[("host", "a"), ("dc", "x")], &[1], &[1]),
            doubles("t1", &[("host", "a"), ("dc", "x")], &[1], &[1.0]),
            longs("t2", &[("svc", "api"), ("host", "a")], &[1], &[1]),
            // A value shared between two tag names is listed once.
            strings("t3", &[("zone", "x"), ("Rack", "A")], &[1], &["v"]),
        ],
    );
    assert_eq!(tag_names(s), strs(&["Rack", "dc", "host", "svc", "zone"]));
    assert_eq!(tag_values(s), strs(&["A", "a", "api", "b", "x"]));
}

/// `series_keys` lists the series of one metric that match the filter and have
/// data in the range (spec §1.7). Series are whole Cassandra rows apart, so a
/// row-granular backend gives the same answer.
pub fn series_keys_filter_and_range(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let base = 1000 * ROW; // a row boundary
    let (t_a, t_b, t_c) = (base + 5, base + 2 * ROW + 5, base + 4 * ROW + 5);
    write(
        s,
        vec![
            longs("sk", &[("host", "a"), ("dc", "x")], &[t_a], &[1]),
            longs("sk", &[("host", "b"), ("dc", "y")], &[t_b], &[1]),
            doubles("sk", &[("host", "c"), ("dc", "y")], &[t_c], &[1.0]),
            longs("sk.other", &[("host", "a"), ("dc", "x")], &[t_a], &[1]),
        ],
    );
    let a = key("sk", DataType::Long, &[("host", "a"), ("dc", "x")]);
    let b = key("sk", DataType::Long, &[("host", "b"), ("dc", "y")]);
    let c = key("sk", DataType::Double, &[("host", "c"), ("dc", "y")]);
    let none = TagFilter::default();
    let mut all = vec![a.clone(), b.clone(), c.clone()];
    all.sort();
    assert_eq!(series_keys(s, "sk", &none, TimeRange::ALL), all);
    assert_eq!(
        series_keys(s, "sk", &none, TimeRange::new(base + ROW, base + 3 * ROW)),
        vec![b.clone()]
    );
    assert_eq!(
        series_keys(s, "sk", &none, TimeRange::new(t_b, t_b)),
        vec![b.clone()],
        "inclusive single-instant range"
    );
    assert!(series_keys(s, "sk", &none, TimeRange::new(base + 5 * ROW, i64::MAX)).is_empty());
    assert!(series_keys(s, "sk", &none, TimeRange::new(i64::MIN, base - ROW)).is_empty());
    assert_eq!(
        series_keys(
            s,
            "sk",
            &TagFilter::from_pairs(&[("dc", &["y"])]),
            TimeRange::ALL
        ),
        {
            let mut v = vec![b.clone(), c.clone()];
            v.sort();
            v
        }
    );
    assert_eq!(
        series_keys(
            s,
            "sk",
            &TagFilter::from_pairs(&[("dc", &["regex:x|y"]), ("host", &["a", "b"])]),
            TimeRange::new(base, base + 3 * ROW)
        ),
        {
            let mut v = vec![a.clone(), b.clone()];
            v.sort();
            v
        }
    );
    assert!(series_keys(
        s,
        "sk",
        &TagFilter::from_pairs(&[("nope", &["a"])]),
        TimeRange::ALL
    )
    .is_empty());
    assert!(series_keys(s, "sk.none", &none, TimeRange::ALL).is_empty());
}

/// Delete by filter and range removes exactly the selected points (both ends
/// inclusive) and nothing from other series or metrics (spec §1.8); deleted points
/// stay deleted after a restart.
pub fn delete_removes_only_selected_points(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    let ts = [10, 20, 30, 40];
    write(
        s,
        vec![
            longs("del", &[("h", "a")], &ts, &[1, 2, 3, 4]),
            longs("del", &[("h", "b")], &ts, &[1, 2, 3, 4]),
            doubles("del", &[("h", "a")], &ts, &[1.0, 2.0, 3.0, 4.0]),
            longs("del.other", &[("h", "a")], &ts, &[1, 2, 3, 4]),
        ],
    );
    let touched = delete(
        s,
        "del",
        TagFilter::from_pairs(&[("h", &["a"])]),
        TimeRange::new(20, 30),
    );
    assert_eq!(
        touched, 2,
        "the long and the double series of h=a lost points"
    );
    let touched = delete(
        s,
        "del",
        TagFilter::from_pairs(&[("h", &["regex:b|z"])]),
        TimeRange::new(40, i64::MAX),
    );
    assert_eq!(touched, 1, "h=b lost its point at 40");
    check_and_recheck(&mut *fx, |s, when| {
        let ka = key("del", DataType::Long, &[("h", "a")]);
        let kb = key("del", DataType::Long, &[("h", "b")]);
        let kd = key("del", DataType::Double, &[("h", "a")]);
        let mut expect = vec![
            (ka, vec![10, 40]),
            (kb, vec![10, 20, 30]),
            (kd, vec![10, 40]),
        ];
        expect.sort();
        assert_eq!(timestamps(s, &query("del")), expect, "{when}");
        assert_eq!(
            long_pairs(s, &query("del.other")),
            vec![(10, 1), (20, 2), (30, 3), (40, 4)],
            "{when}: other metric untouched"
        );
        assert_eq!(metric_names(s, None), strs(&["del", "del.other"]), "{when}");
    });
}

/// A series whose last points are deleted leaves `series_keys` and the tag
/// listings; a metric whose last series goes leaves `metric_names` (DeleteRequest
/// doc; KairosDB's H2 behaviour, spec §1.10 — a deliberate deviation from
/// KairosDB's Cassandra backend, which keeps the name until `DELETE /metric`).
pub fn delete_last_points_empties_listings(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    write(
        s,
        vec![
            longs("gone", &[("only", "v1")], &[10, 20], &[1, 2]),
            longs(
                "part",
                &[("host", "a"), ("shared", "s")],
                &[10, 20],
                &[1, 2],
            ),
            longs("part", &[("host", "b"), ("shared", "s")], &[10], &[1]),
            doubles("keep", &[("host", "k")], &[10], &[1.0]),
        ],
    );
    assert_eq!(metric_names(s, None), strs(&["gone", "keep", "part"]));
    assert_eq!(tag_names(s), strs(&["host", "only", "shared"]));
    assert_eq!(tag_values(s), strs(&["a", "b", "k", "s", "v1"]));
    // A range covering exactly the points (not TimeRange::ALL) empties the series.
    assert_eq!(
        delete(s, "gone", TagFilter::default(), TimeRange::new(10, 20)),
        1
    );
    assert_eq!(
        delete(
            s,
            "part",
            TagFilter::from_pairs(&[("host", &["a"])]),
            TimeRange::ALL
        ),
        1
    );
    check_and_recheck(&mut *fx, |s, when| {
        assert_eq!(metric_names(s, None), strs(&["keep", "part"]), "{when}");
        assert!(metric_names(s, Some("go")).is_empty(), "{when}");
        assert!(read(s, &query("gone")).is_empty(), "{when}");
        assert!(
            series_keys(s, "gone", &TagFilter::default(), TimeRange::ALL).is_empty(),
            "{when}"
        );
        assert_eq!(
            series_keys(s, "part", &TagFilter::default(), TimeRange::ALL),
            vec![key(
                "part",
                DataType::Long,
                &[("host", "b"), ("shared", "s")]
            )],
            "{when}"
        );
        assert_eq!(tag_names(s), strs(&["host", "shared"]), "{when}");
        assert_eq!(tag_values(s), strs(&["b", "k", "s"]), "{when}");
    });
    // The emptied series can be written again and reappears.
    let s = fx.storage();
    write(s, vec![longs("gone", &[("only", "v1")], &[30], &[3])]);
    assert_eq!(long_pairs(s, &query("gone")), vec![(30, 3)]);
    assert_eq!(metric_names(s, None), strs(&["gone", "keep", "part"]));
    assert_eq!(tag_values(s), strs(&["b", "k", "s", "v1"]));
}

// ---------------------------------------------------------------------------
// Metadata (ServiceStore, spec §1.13, §7.7)
// ---------------------------------------------------------------------------

fn meta_ok<T>(what: &str, r: Result<T, StorageError>) -> T {
    r.unwrap_or_else(|e| panic!("metadata {what} failed: {e}"))
}

/// Set, get, overwrite; values come back byte for byte; the three levels are
/// independent namespaces; an unknown key is `None`.
pub fn metadata_set_get_overwrite(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let get = |sk: &str, k: &str| meta_ok("get", s.get_value("m.sgo", sk, k));
    assert_eq!(get("a", "k"), None, "unknown key");
    meta_ok("set", s.set_value("m.sgo", "a", "k", "one"));
    assert_eq!(get("a", "k").as_deref(), Some("one"));
    meta_ok("set", s.set_value("m.sgo", "a", "k", "two"));
    assert_eq!(get("a", "k").as_deref(), Some("two"), "overwrite");
    let odd = "{\"json\": [1, 2]}\n\ttabs, ünïcode ✓ and \u{1F600}";
    meta_ok("set", s.set_value("m.sgo", "a", "odd", odd));
    assert_eq!(get("a", "odd").as_deref(), Some(odd), "value round trip");
    meta_ok("set", s.set_value("m.sgo", "a", "empty", ""));
    assert_eq!(get("a", "empty").as_deref(), Some(""), "empty value");
    meta_ok("set", s.set_value("m.sgo", "b", "k", "other key"));
    meta_ok("set", s.set_value("m.sgo2", "a", "k", "other service"));
    assert_eq!(get("a", "k").as_deref(), Some("two"));
    assert_eq!(get("b", "k").as_deref(), Some("other key"));
    assert_eq!(
        meta_ok("get", s.get_value("m.sgo2", "a", "k")).as_deref(),
        Some("other service")
    );
    assert_eq!(get("c", "k"), None, "unknown service key");
}

/// Keys sorted by UTF-8 bytes; `starts_with` is KairosDB's `[p, p + U+FFFF)`;
/// service keys sorted, each once, and only the asked service's.
pub fn metadata_listings_sorted_and_prefixed(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    for k in ["b", "ab", "a", "abc", "B", "é", "ac", "a\u{10000}"] {
        meta_ok("set", s.set_value("m.lst", "sk", k, "v"));
    }
    for sk in ["z", "sk", "a", "m"] {
        meta_ok("set", s.set_value("m.lst", sk, "x", "v"));
    }
    meta_ok("set", s.set_value("m.lst.other", "elsewhere", "x", "v"));
    let keys = |p: Option<&str>| meta_ok("list keys", s.list_keys("m.lst", "sk", p));
    assert_eq!(
        keys(None),
        ["B", "a", "ab", "abc", "ac", "a\u{10000}", "b", "x", "é"]
    );
    assert_eq!(keys(Some("ab")), ["ab", "abc"]);
    // The 4-byte character sorts above U+FFFF, so KairosDB's bound leaves it out.
    assert_eq!(keys(Some("a")), ["a", "ab", "abc", "ac"]);
    assert_eq!(keys(Some("é")), ["é"]);
    assert!(keys(Some("q")).is_empty());
    assert!(meta_ok("list keys", s.list_keys("m.lst", "none", None)).is_empty());
    assert_eq!(
        meta_ok("list service keys", s.list_service_keys("m.lst")),
        ["a", "m", "sk", "z"]
    );
    assert!(meta_ok("list service keys", s.list_service_keys("m.none")).is_empty());
}

/// Delete removes the key from get and listings, succeeds for a missing key, and
/// leaves the service key listed (KairosDB's static `mtime` row), even one that
/// only ever saw a delete.
pub fn metadata_delete_keeps_service_key_listed(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    meta_ok("set", s.set_value("m.del", "a", "k1", "v1"));
    meta_ok("set", s.set_value("m.del", "a", "k2", "v2"));
    meta_ok("delete", s.delete_key("m.del", "a", "k1"));
    assert_eq!(meta_ok("get", s.get_value("m.del", "a", "k1")), None);
    assert_eq!(meta_ok("list", s.list_keys("m.del", "a", None)), ["k2"]);
    meta_ok("delete", s.delete_key("m.del", "a", "k1"));
    meta_ok("delete", s.delete_key("m.del", "a", "k2"));
    assert!(meta_ok("list", s.list_keys("m.del", "a", None)).is_empty());
    assert!(meta_ok("list", s.list_keys("m.del", "a", Some("k"))).is_empty());
    meta_ok("delete", s.delete_key("m.del", "ghost", "never"));
    assert_eq!(
        meta_ok("list service keys", s.list_service_keys("m.del")),
        ["a", "ghost"]
    );
    meta_ok("set", s.set_value("m.del", "a", "k1", "again"));
    assert_eq!(
        meta_ok("get", s.get_value("m.del", "a", "k1")).as_deref(),
        Some("again"),
        "a set after a delete wins"
    );
}

/// Metadata set (and deleted) before a restart reads the same after it.
pub fn metadata_survives_reopen(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    meta_ok("set", s.set_value("m.ro", "a", "k1", "v1"));
    meta_ok("set", s.set_value("m.ro", "a", "k2", "v2"));
    meta_ok("set", s.set_value("m.ro", "b", "k", "v"));
    meta_ok("set", s.set_value("m.ro", "a", "k1", "v1b"));
    meta_ok("delete", s.delete_key("m.ro", "b", "k"));
    if !fx.reopen() {
        return;
    }
    let s = fx.storage();
    assert_eq!(
        meta_ok("get", s.get_value("m.ro", "a", "k1")).as_deref(),
        Some("v1b")
    );
    assert_eq!(
        meta_ok("list", s.list_keys("m.ro", "a", None)),
        ["k1", "k2"]
    );
    assert_eq!(meta_ok("get", s.get_value("m.ro", "b", "k")), None);
    assert_eq!(
        meta_ok("list service keys", s.list_service_keys("m.ro")),
        ["a", "b"]
    );
}

/// After `sync` and a restart every point and listing is as before. Skipped when
/// the fixture cannot reopen.
pub fn reopen_keeps_everything(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    let many: Vec<i64> = (0..5000).map(|i| T0 + i * 1000).collect();
    let vals: Vec<i64> = (0..5000).collect();
    write(
        s,
        vec![
            longs("ro.big", &[("h", "a")], &many, &vals),
            doubles(
                "ro.small",
                &[("h", "b"), ("dc", "x")],
                &[-1, 0],
                &[-0.0, 2.5],
            ),
            strings("ro.text", &[("h", "c")], &[5], &["five"]),
        ],
    );
    s.sync().unwrap_or_else(|e| panic!("sync failed: {e}"));
    let snapshot = |s: &dyn Storage| {
        (
            read(s, &query("ro.big")),
            read(s, &query("ro.text")),
            metric_names(s, None),
            tag_names(s),
            tag_values(s),
            series_keys(s, "ro.small", &TagFilter::default(), TimeRange::ALL),
        )
    };
    let before = snapshot(s);
    assert_eq!(before.0[0].points.len(), 5000);
    if !fx.reopen() {
        return;
    }
    let s = fx.storage();
    assert_eq!(snapshot(s), before);
    let r = read(s, &query("ro.small"));
    let Points::Double { ts, values } = &r[0].points else {
        panic!("not doubles: {r:?}")
    };
    assert_eq!(ts, &vec![-1, 0]);
    assert_eq!(values[0].to_bits(), (-0.0f64).to_bits(), "-0.0 survives");
    assert_eq!(values[1], 2.5);
    // The store accepts writes after the restart and keeps last-write-wins.
    write(s, vec![longs("ro.big", &[("h", "a")], &[T0], &[-7])]);
    assert_eq!(
        long_pairs(
            s,
            &SeriesQuery {
                limit: Some(1),
                ..query("ro.big")
            }
        ),
        vec![(T0, -7)]
    );
}

/// A point written with `ttl_secs` is not returned once that time has passed
/// (spec §2.5; the TTL counts from the write). Points without a TTL stay. Skipped
/// when the fixture has no time control: waiting out a real TTL would make the
/// suite slow and flaky.
pub fn ttl_expires_points(open: Factory<'_>) {
    let mut fx = open();
    let s = fx.storage();
    let mut short = longs("ttl", &[("k", "short")], &[1, 2], &[1, 2]);
    short.ttl_secs = 10;
    let mut long = longs("ttl", &[("k", "long")], &[1], &[1]);
    long.ttl_secs = 1000;
    write(
        s,
        vec![short, long, longs("ttl", &[("k", "none")], &[1], &[1])],
    );
    assert_eq!(read(s, &query("ttl")).len(), 3, "nothing expired yet");
    if !fx.advance_clock(Duration::from_secs(11)) {
        return;
    }
    // "Eventually": a backend may hide expired points lazily; poll with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let expect = vec![
        key("ttl", DataType::Long, &[("k", "long")]),
        key("ttl", DataType::Long, &[("k", "none")]),
    ];
    loop {
        let got = keys_of(fx.storage(), &query("ttl"));
        if got == expect {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired points still returned: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        long_pairs(
            fx.storage(),
            &SeriesQuery {
                filter: TagFilter::from_pairs(&[("k", &["long"])]),
                ..query("ttl")
            }
        ),
        vec![(1, 1)]
    );
}

/// `sync` succeeds on a healthy store, with and without data; `health` is ok.
pub fn sync_and_health(open: Factory<'_>) {
    let fx = open();
    let s = fx.storage();
    let h = s.health();
    assert!(h.ok, "fresh store unhealthy: {h:?}");
    s.sync()
        .unwrap_or_else(|e| panic!("sync on an empty store failed: {e}"));
    write(s, vec![longs("sy", &[("h", "a")], &[1], &[1])]);
    s.sync().unwrap_or_else(|e| panic!("sync failed: {e}"));
    let h = s.health();
    assert!(h.ok, "store unhealthy after a write and sync: {h:?}");
    assert_eq!(long_pairs(s, &query("sy")), vec![(1, 1)]);
}

/// The suite against a tiny in-memory reference store, and against deliberately
/// broken variants of it: every mutant must make its case fail, which shows the
/// cases can fail.
#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
    use std::sync::Mutex;

    use super::*;
    use crate::null_storage::NullStorage;
    use crate::read::Read;
    use crate::read::TagMatcher;
    use crate::series::Value;
    use crate::storage::{HealthStatus, StorageStats};

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mutant {
        None,
        FirstWriteWins,
        UnanchoredRegex,
        DescOldestFirst,
        KeepsEmptiedSeries,
        IgnoresTtl,
        IgnoresMaxPoints,
        UnsortedNames,
        CountsOnlyReturned,
        IgnoresShard,
        IgnoresExact,
        BackfillOverwrites,
    }

    /// Points by series: ts → (value, expiry ms; i64::MAX = never).
    type Data = BTreeMap<SeriesKey, BTreeMap<i64, (Value, i64)>>;

    /// The reference store the cases are checked against; `null` answers what it
    /// has no behaviour for (sync, health, stats).
    struct Mem {
        data: Mutex<Data>,
        now_ms: AtomicI64,
        mutant: Mutant,
        null: NullStorage,
        meta: std::sync::Mutex<crate::services::ServiceMap>,
    }

    crate::forward_service_store!(Mem, this => this.meta);

    impl Mem {
        fn matches(&self, f: &TagFilter, tags: &Tags) -> bool {
            if self.mutant != Mutant::UnanchoredRegex {
                return f.matches(tags);
            }
            f.tags.iter().all(|(name, ms)| {
                tags.get(name).is_some_and(|v| {
                    ms.iter().any(|m| match m {
                        TagMatcher::Regex(r) => {
                            let p = r.as_str();
                            let inner = &p["^(?:".len()..p.len() - ")$".len()];
                            regex::Regex::new(inner).unwrap().is_match(v)
                        }
                        exact => exact.matches(v),
                    })
                })
            })
        }

        fn live(&self, expiry: i64) -> bool {
            self.mutant == Mutant::IgnoresTtl || expiry > self.now_ms.load(AtomicOrdering::Relaxed)
        }

        /// Series that appear in listings.
        fn listed(&self, data: &Data) -> Vec<SeriesKey> {
            data.iter()
                .filter(|(_, p)| self.mutant == Mutant::KeepsEmptiedSeries || !p.is_empty())
                .map(|(k, _)| k.clone())
                .collect()
        }

        fn sorted(&self, set: BTreeSet<String>) -> Vec<String> {
            let mut v: Vec<String> = set.into_iter().collect();
            if self.mutant == Mutant::UnsortedNames {
                v.reverse();
            }
            v
        }
    }

    fn to_points(dt: DataType, pts: Vec<(i64, Value)>) -> Points {
        let mut out = Points::empty(dt);
        for (t, v) in pts {
            assert!(out.push(t, v), "BUG: type mix");
        }
        out
    }

    impl Storage for Mem {
        fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
            let now = self.now_ms.load(AtomicOrdering::Relaxed);
            let mut data = self.data.lock().unwrap();
            for sp in &batch.series {
                let expiry = match sp.ttl_secs {
                    0 => i64::MAX,
                    t => now + i64::from(t) * 1000,
                };
                let series = data.entry(sp.key.clone()).or_default();
                for (i, &t) in sp.points.timestamps().iter().enumerate() {
                    let v = sp.points.value(i);
                    if self.mutant == Mutant::FirstWriteWins {
                        series.entry(t).or_insert((v, expiry));
                    } else {
                        series.insert(t, (v, expiry));
                    }
                }
            }
            Ok(())
        }

        fn backfill(&self, batch: &WriteBatch) -> Result<(), StorageError> {
            if self.mutant == Mutant::BackfillOverwrites {
                return self.write(batch);
            }
            let now = self.now_ms.load(AtomicOrdering::Relaxed);
            let mut data = self.data.lock().unwrap();
            // What was stored (and alive) before the batch, whatever the batch adds.
            let before: BTreeSet<(SeriesKey, i64)> = batch
                .series
                .iter()
                .flat_map(|sp| {
                    let pts = data.get(&sp.key);
                    sp.points
                        .timestamps()
                        .iter()
                        .filter(move |t| {
                            pts.and_then(|p| p.get(t))
                                .is_some_and(|(_, e)| self.live(*e))
                        })
                        .map(|&t| (sp.key.clone(), t))
                })
                .collect();
            for sp in &batch.series {
                let expiry = match sp.ttl_secs {
                    0 => i64::MAX,
                    t => now + i64::from(t) * 1000,
                };
                let series = data.entry(sp.key.clone()).or_default();
                for (i, &t) in sp.points.timestamps().iter().enumerate() {
                    if !before.contains(&(sp.key.clone(), t)) {
                        series.insert(t, (sp.points.value(i), expiry));
                    }
                }
            }
            Ok(())
        }

        fn query(&self, q: &SeriesQuery) -> Result<Read, StorageError> {
            let data = self.data.lock().unwrap();
            let mut out = Vec::new();
            let mut total = 0u64;
            for (k, pts) in data.iter() {
                if k.metric != q.metric || !self.matches(&q.filter, &k.tags) {
                    continue;
                }
                let shard = q
                    .shard
                    .as_ref()
                    .filter(|_| self.mutant != Mutant::IgnoresShard);
                if shard.is_some_and(|s| !s.holds(&k.metric, &k.tags)) {
                    continue;
                }
                let mut sel: Vec<(i64, Value)> = pts
                    .iter()
                    .filter(|(t, (_, e))| q.range.contains(**t) && self.live(*e))
                    .map(|(t, (v, _))| (*t, v.clone()))
                    .collect();
                if sel.is_empty() {
                    continue;
                }
                if q.order == Order::Desc && self.mutant != Mutant::DescOldestFirst {
                    sel.reverse();
                }
                let counted = sel.len() as u64;
                sel.truncate(q.limit.unwrap_or(usize::MAX));
                if self.mutant == Mutant::DescOldestFirst && q.order == Order::Desc {
                    sel.reverse();
                }
                let in_range = if q.count_in_range && self.mutant != Mutant::CountsOnlyReturned {
                    counted
                } else {
                    sel.len() as u64
                };
                total += in_range;
                if let Some(limit) = q.max_points.filter(|&l| total > l) {
                    if self.mutant != Mutant::IgnoresMaxPoints {
                        return Err(StorageError::TooManyPoints { limit });
                    }
                }
                out.push(SeriesData {
                    key: k.clone().into(),
                    points: to_points(k.data_type, sel),
                    in_range,
                    ttl_secs: Vec::new(),
                });
            }
            Ok(Read::Complete(out))
        }

        fn series_keys(
            &self,
            metric: &str,
            filter: &TagFilter,
            range: TimeRange,
        ) -> Result<Vec<SeriesKey>, StorageError> {
            let data = self.data.lock().unwrap();
            Ok(self
                .listed(&data)
                .into_iter()
                .filter(|k| k.metric == metric && self.matches(filter, &k.tags))
                .filter(|k| {
                    data[k].range(range.start..=range.end).next().is_some()
                        || self.mutant == Mutant::KeepsEmptiedSeries
                })
                .collect())
        }

        fn metric_names(&self, prefix: Option<&str>) -> Result<Vec<String>, StorageError> {
            let data = self.data.lock().unwrap();
            let names = self
                .listed(&data)
                .into_iter()
                .map(|k| k.metric)
                .filter(|m| m.starts_with(prefix.unwrap_or("")))
                .collect();
            Ok(self.sorted(names))
        }

        fn tag_names(&self) -> Result<Vec<String>, StorageError> {
            let data = self.data.lock().unwrap();
            let set = self
                .listed(&data)
                .iter()
                .flat_map(|k| k.tags.iter().map(|(n, _)| n.to_string()))
                .collect();
            Ok(self.sorted(set))
        }

        fn tag_values(&self) -> Result<Vec<String>, StorageError> {
            let data = self.data.lock().unwrap();
            let set = self
                .listed(&data)
                .iter()
                .flat_map(|k| k.tags.iter().map(|(_, v)| v.to_string()))
                .collect();
            Ok(self.sorted(set))
        }

        fn delete(&self, req: &DeleteRequest) -> Result<u64, StorageError> {
            let mut data = self.data.lock().unwrap();
            let mut touched = 0;
            for (k, pts) in data.iter_mut() {
                if k.metric != req.metric || !self.matches(&req.filter, &k.tags) {
                    continue;
                }
                if req
                    .shard
                    .as_ref()
                    .filter(|_| self.mutant != Mutant::IgnoresShard)
                    .is_some_and(|s| !s.holds(&k.metric, &k.tags))
                {
                    continue;
                }
                let exact = req.exact && self.mutant != Mutant::IgnoresExact;
                if exact && k.tags.len() != req.filter.tags.len() {
                    continue;
                }
                let before = pts.len();
                pts.retain(|t, _| !req.range.contains(*t));
                touched += u64::from(pts.len() != before);
            }
            Ok(touched)
        }

        /// Its index is complete: nothing to rebuild.
        fn index_metric_tags(&self, _metric: &str, _range: TimeRange) -> Result<u64, StorageError> {
            Ok(0)
        }

        fn sync(&self) -> Result<(), StorageError> {
            self.null.sync()
        }

        fn health(&self) -> HealthStatus {
            self.null.health()
        }

        fn stats(&self) -> StorageStats {
            self.null.stats()
        }
    }

    struct MemFixture(Mem);

    impl Fixture for MemFixture {
        fn storage(&self) -> &dyn Storage {
            &self.0
        }
        /// In memory, a "restart" keeps the same data: the re-checks still run.
        fn reopen(&mut self) -> bool {
            true
        }
        fn advance_clock(&mut self, by: Duration) -> bool {
            self.0
                .now_ms
                .fetch_add(by.as_millis() as i64, AtomicOrdering::Relaxed);
            true
        }
    }

    fn open_with(mutant: Mutant) -> impl Fn() -> Box<dyn Fixture> {
        move || {
            Box::new(MemFixture(Mem {
                data: Mutex::new(BTreeMap::new()),
                now_ms: AtomicI64::new(T0),
                mutant,
                null: NullStorage::new(),
                meta: Default::default(),
            }))
        }
    }

    #[test]
    fn reference_store_passes_every_case() {
        run_all(&open_with(Mutant::None));
    }

    #[test]
    fn plain_fixture_skips_the_hooked_checks() {
        let open = || -> Box<dyn Fixture> {
            Box::new(Plain(Box::new(Mem {
                data: Mutex::new(BTreeMap::new()),
                now_ms: AtomicI64::new(T0),
                mutant: Mutant::IgnoresTtl,
                null: NullStorage::new(),
                meta: Default::default(),
            })))
        };
        // TTL is unobservable without a clock hook, so the TTL mutant passes.
        run_all(&open);
    }

    /// Each mutant against the case that must catch it.
    fn must_fail(mutant: Mutant, case: Case) {
        let open = open_with(mutant);
        let caught = std::panic::catch_unwind(|| case(&open)).is_err();
        assert!(caught, "the case did not notice the broken store");
    }

    #[test]
    fn every_case_can_fail() {
        must_fail(Mutant::FirstWriteWins, last_write_wins);
        must_fail(
            Mutant::BackfillOverwrites,
            a_backfill_write_never_replaces_a_stored_point,
        );
        must_fail(Mutant::UnanchoredRegex, tag_filters);
        must_fail(Mutant::IgnoresShard, shard_reads_only_its_partitions);
        must_fail(
            Mutant::IgnoresShard,
            a_sharded_delete_removes_only_its_partitions,
        );
        must_fail(
            Mutant::IgnoresExact,
            an_exact_delete_spares_series_with_more_tags,
        );
        must_fail(Mutant::DescOldestFirst, limit_and_order);
        must_fail(
            Mutant::KeepsEmptiedSeries,
            delete_last_points_empties_listings,
        );
        must_fail(Mutant::IgnoresTtl, ttl_expires_points);
        must_fail(Mutant::IgnoresMaxPoints, max_points_exceeded);
        must_fail(Mutant::CountsOnlyReturned, count_in_range);
        must_fail(Mutant::UnsortedNames, metric_names_sorted);
        must_fail(Mutant::UnsortedNames, tag_names_and_values_sorted_distinct);
    }
}

use kairosdb_model::TagMatcher;

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn aggregate(query: &str) -> Result<AggregateQuery, ParamError> {
    parse(&pairs(query), Endpoint::Aggregate, NOW)
}

fn invalid(query: &str, parameter: &str) -> String {
    match aggregate(query) {
        Err(ParamError::Invalid {
            parameter: p,
            message,
        }) if p == parameter => message,
        other => panic!("{query}: expected INVALID_REQUEST on {parameter}, got {other:?}"),
    }
}

fn validation(query: &str, parameter: &str) -> String {
    match aggregate(query) {
        Err(ParamError::Validation {
            parameter: p,
            message,
        }) if p == parameter => message,
        other => panic!("{query}: expected VALIDATION_ERROR on {parameter}, got {other:?}"),
    }
}

#[test]
fn every_parameter_of_aggregate_is_read() {
    let q = aggregate(
        "key=cpu&from=2023-11-14T22:00:00Z&to=2023-11-14T23:00:00Z&window=5m&rolling=15m\
         &tags=env:prod,region:eu&hosts=web-*&datacenters=dc1&agg=avg,p95,count\
         &group_by=host&order_by=-avg,time&limit=10",
    )
    .unwrap();
    assert_eq!(q.key, "cpu");
    assert_eq!((q.from, q.to), (1_699_999_200_000, 1_700_002_800_000));
    assert_eq!(q.window.as_ref().map(|w| w.ms), Some(300_000));
    assert_eq!(q.rolling, 3);
    let names: Vec<&str> = q.aggs.iter().map(Agg::name).collect();
    assert_eq!(names, ["avg", "p95", "count"]);
    assert_eq!(q.group_by, ["host"]);
    assert_eq!(
        q.order_by,
        [
            OrderKey {
                field: OrderField::Agg(0),
                descending: true
            },
            OrderKey {
                field: OrderField::Time,
                descending: false
            }
        ]
    );
    assert_eq!(q.limit, Some(10));
    let tags: Vec<&str> = q.filter.tags.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(tags, ["datacenter", "env", "host", "region"]);
    assert!(q.needs_values());
    // Two older buckets are read for the first row's rolling window.
    assert_eq!(q.read_start(), q.from - 600_000);
}

#[test]
fn defaults_are_the_last_hour_one_bucket_and_the_cheap_aggregates() {
    let q = aggregate("key=cpu").unwrap();
    assert_eq!((q.from, q.to), (NOW - 3_600_000, NOW));
    assert_eq!(q.window, None);
    assert_eq!(q.rolling, 1);
    assert_eq!(q.aggs, Agg::CHEAP);
    assert!(!q.needs_values());
    assert!(q.filter.is_empty() && q.group_by.is_empty() && q.order_by.is_empty());
    assert_eq!(q.limit, None);
    assert_eq!(q.first_bucket(), q.from);
}

#[test]
fn times_are_epoch_milliseconds_rfc_3339_with_any_offset_or_a_date() {
    assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
    assert_eq!(parse_time("-5"), Ok(-5));
    assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
    assert_eq!(
        parse_time("2023-11-14T23:13:20.25+01:00"),
        Ok(1_700_000_000_250)
    );
    assert_eq!(parse_time("2023-11-14"), Ok(1_699_920_000_000));
    for bad in [
        "",
        "yesterday",
        "2023-11-14T22:13:20",
        "14/11/2023",
        "1.5e12",
    ] {
        assert!(parse_time(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
}

#[test]
fn unreadable_values_are_invalid_requests() {
    invalid("key=a&from=noon", "from");
    invalid("key=a&to=2024-13-01T00:00:00Z", "to");
    invalid("key=a&window=5x", "window");
    invalid("key=a&window=m", "window");
    invalid("key=a&window=5m&rolling=x", "rolling");
    invalid("key=a&limit=ten", "limit");
    invalid("key=a&tags=env", "tags");
    let m = invalid("key=a&aggs=avg", "aggs");
    assert!(m.contains("unknown parameter") && m.contains("agg,"), "{m}");
    let m = invalid("key=a&window=1m&window=5m", "window");
    assert!(m.contains("more than once"), "{m}");
}

#[test]
fn values_that_make_no_sense_are_validation_errors() {
    validation("", "key");
    validation("key=", "key");
    let m = validation(
        "key=a&from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
        "from",
    );
    assert!(m.contains("2024-01-02T00:00:00Z"), "{m}");
    validation("key=a&from=5&to=5", "from");
    validation("key=a&window=0s", "window");
    validation("key=a&rolling=3", "rolling");
    validation("key=a&window=5m&rolling=0", "rolling");
    validation("key=a&window=5m&rolling=7m", "rolling");
    validation("key=a&window=1s&rolling=5000", "rolling");
    let m = validation("key=a&agg=median", "agg");
    assert!(m.contains("p95"), "{m}");
    validation("key=a&agg=p0", "agg");
    validation("key=a&agg=p101", "agg");
    validation("key=a&order_by=-p99", "order_by");
    validation("key=a&order_by=dc", "order_by");
    validation("key=a&limit=0", "limit");
    validation("key=a&limit=-3", "limit");
    validation("key=a&tags=env:", "tags");
    let m = validation("key=a&from=0&to=86400000&window=1s", "window");
    assert!(m.contains("86400 buckets"), "{m}");
}

#[test]
fn percentiles_are_pnn_with_fractions_and_aggregates_are_case_insensitive() {
    let q = aggregate("key=a&agg=P50,p99.9,p100,mean,avg").unwrap();
    let got: Vec<(String, Option<f64>)> = q
        .aggs
        .iter()
        .map(|a| match a {
            Agg::Percentile { p, name } => (name.clone(), Some(*p)),
            other => (other.name().to_owned(), None),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("p50".to_owned(), Some(0.5)),
            ("p99.9".to_owned(), Some(0.999)),
            ("p100".to_owned(), Some(1.0)),
            ("avg".to_owned(), None),
        ]
    );
}

#[test]
fn lists_take_commas_and_repeats_and_one_tag_name_means_any_of_its_values() {
    let q =
        aggregate("key=a&hosts=a,b&hosts=c&tags=host:d&group_by=host,,dc&group_by=host").unwrap();
    assert_eq!(q.group_by, ["host", "dc"]);
    let (name, matchers) = &q.filter.tags[0];
    assert_eq!(name, "host");
    assert_eq!(matchers.len(), 4);
    for host in ["a", "b", "c", "d"] {
        assert!(matchers.iter().any(|m| m.matches(host)), "{host}");
    }
}

#[test]
fn wildcards_are_anchored_and_everything_else_is_literal() {
    let m = matcher("web-*");
    assert!(m.matches("web-1") && m.matches("web-") && !m.matches("xweb-1"));
    let m = matcher("db-?.eu");
    assert!(m.matches("db-1.eu") && !m.matches("db-12.eu") && !m.matches("db-1xeu"));
    let m = matcher("a+b(c)*");
    assert!(m.matches("a+b(c)") && m.matches("a+b(c)zz") && !m.matches("aab(c)"));
    assert_eq!(
        matcher("plain.host"),
        TagMatcher::Exact("plain.host".into())
    );
    assert!(matcher("*").matches(""));
}

#[test]
fn each_endpoint_takes_its_own_parameters() {
    let analytics = |q: &str| parse(&pairs(q), Endpoint::Analytics, NOW);
    let q = analytics("key=a&hosts=h1&from=0&to=10").unwrap();
    assert_eq!(q.aggs, [Agg::Avg]);
    assert!(matches!(
        analytics("key=a&window=5m"),
        Err(ParamError::Invalid { .. })
    ));
    let compute = |q: &str| parse(&pairs(q), Endpoint::Compute, NOW);
    assert!(compute("key=a&window=1m&agg=p99&group_by=host").is_ok());
    for refused in [
        "key=a&limit=3",
        "key=a&order_by=time",
        "key=a&window=1m&rolling=2",
    ] {
        assert!(
            matches!(compute(refused), Err(ParamError::Invalid { .. })),
            "{refused}"
        );
    }
}

#[test]
fn buckets_are_aligned_on_the_epoch() {
    assert_eq!(bucket_start(0, 300_000), 0);
    assert_eq!(bucket_start(299_999, 300_000), 0);
    assert_eq!(bucket_start(300_000, 300_000), 300_000);
    assert_eq!(bucket_start(-1, 300_000), -300_000);
    let q = aggregate("key=a&from=1000&to=900000&window=5m").unwrap();
    assert_eq!(q.first_bucket(), 0);
}

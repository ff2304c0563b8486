//! Tests of query parsing: every query fixture of KairosDB's unit tests
//! (`shared/kairosdb-conformance/unit-resources`), Appendix A texts, relative times.

use super::*;
use crate::civil::{civil_from_days, days_from_civil};
use crate::fixtures;
use kairosdb_model::catalogue::{DevReturn, FilterOp, RangeKind, RangeSpec};

/// A range aggregator with only its kind and sampling set.
fn range(kind: RangeKind, value: i64, unit: Unit) -> AggregatorSpec {
    AggregatorSpec::Range(RangeSpec {
        kind,
        sampling: Sampling { value, unit },
        align_sampling: true,
        align_start_time: false,
        align_end_time: false,
        start_time: None,
        end_time: None,
        time_zone: None,
        trim: false,
    })
}

const NOW: i64 = 1_358_484_912_022; // 2013-01-18T04:55:12.022Z (RelativeTimeTest's base)

fn ok(body: &str) -> QueryRequest {
    parse_query(body.as_bytes(), NOW).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn err(body: &str) -> String {
    parse_query(body.as_bytes(), NOW).expect_err(body)
}

/// The error texts the conformance README documents, per fixture.
const INVALID: &[(&str, &str)] = &[
    ("invalid-query-metric-absoluteEndTime-less-than-startTime.json", "query.metric[0].end_time must be greater than the start time"),
    ("invalid-query-metric-relativeEndTime-less-than-startTime.json", "query.metric[0].end_time must be greater than the start time"),
    ("invalid-query-metric-aggregators-div-divisor-zero.json", "query.metric[0].aggregators[0].m_divisor may not be zero"),
    ("invalid-query-metric-aggregators-div-no-divisor.json", "query.metric[0].aggregators[0].m_divisor may not be zero"),
    ("invalid-query-metric-aggregators-empty-name.json", "query.metric[0].aggregators[0] must have a name"),
    ("invalid-query-metric-aggregators-no-name.json", "query.metric[0].aggregators[0] must have a name"),
    ("invalid-query-metric-aggregators-percentile-no-percentile.json", "query.metric[0].aggregators[0].percentile may not be zero"),
    ("invalid-query-metric-aggregators-percentile-percentile-zero.json", "query.metric[0].aggregators[0].percentile may not be zero"),
    ("invalid-query-metric-aggregators-percentile-percentile.json", "query.metric[0].aggregators[0].percentile multiple points"),
    ("invalid-query-metric-aggregators-sampling-unit.json", "query.metric[0].aggregators[0].bogus is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"),
    ("invalid-query-metric-aggregators-sampling-value.json", "query.metric[0].aggregators[0].sampling.value must be greater than or equal to 0"),
    ("invalid-query-metric-aggregators.json", "query.metric[0].aggregators[0].bogus invalid aggregators name"),
    ("invalid-query-metric-cache-time.json", "cache_time must be greater than or equal to 0"),
    ("invalid-query-metric-empty-name.json", "query.metric[0].name may not be empty"),
    ("invalid-query-metric-no-name.json", "query.metric[0].name may not be null"),
    ("invalid-query-metric-no-metric.json", "query.metric[] must have a size of at least 1"),
    ("invalid-query-metric-no-start_date.json", "query.metric[0].start_time relative or absolute time must be set"),
    ("invalid-query-metric-relative-startTime-value.json", "start_relative.value must be greater than or equal to 0"),
    ("invalid-query-metric-relative-endTime-value.json", "end_relative.value must be greater than or equal to 0"),
    ("invalid-query-metric-relative-unit.json", "query.bogus is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"),
    ("invalid-query-metric-group_by-empty-name.json", "query.metric[0].group_by[1] must have a name"),
    ("invalid-query-metric-group_by-no-name.json", "query.metric[0].group_by[0] must have a name"),
    ("invalid-query-metric-group_by.json", "query.metric[0].group_by[0].bogus invalid group_by name"),
    ("invalid-query-metric-group_by-tag-missing-tags.json", "query.metric[0].group_by[0].tags may not be null"),
    ("invalid-query-metric-group_by-tag-empty-tags.json", "query.metric[0].group_by[0].tags may not be empty"),
    ("invalid-query-metric-group_by-time-missing-range_size.json", "query.metric[0].group_by[0].rangeSize may not be null"),
    ("invalid-query-metric-group_by-time-missing-group_count.json", "query.metric[0].group_by[0].groupCount must be greater than or equal to 1"),
    ("invalid-query-metric-group_by-time-range_size_unit.json", "query.metric[0].group_by[0].bogus is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"),
    ("invalid-query-metric-group_by-time-range_size_value.json", "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0"),
    ("invalid-query-metric-group_by-value-range_size.json", "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0"),
    ("invalid-query-metric-tag-empty-name.json", "query.metric[0].tags[0] name must not be empty"),
    ("invalid-query-metric-tag-empty-value.json", "query.metric[0].tags[0].host value must not be null or empty"),
    ("invalid-query-metric-tag-empty-value-in-array.json", "query.metric[0].tags[0].host value must not be null or empty"),
    ("query-metric-null-tag-value.json", "query.metric[0].tags[0].host value must not be null or empty"),
    ("query-metric-null-tag-value-in-array.json", "query.metric[0].tags[0].host value must not be null or empty"),
    // `simpleTime` is registered only in KairosDB's unit tests (conformance README).
    ("invalid-query-metric-no-aggregators.json", "query.metric[0].group_by[1].simpleTime invalid group_by name"),
    ("query-metric-absolute-dates-with-groupby.json", "query.metric[0].group_by[1].simpleTime invalid group_by name"),
];

const VALID: &[&str] = &[
    "query-metric-absolute-dates.json",
    "query-metric-negative-absolute-dates.json",
    "query-metric-start_absolute-before-epoch.json",
    "query-metric-relative-startTime-before-epoch.json",
    "query-metric-no-tags.json",
    "query-metric-one-tag.json",
    "query-metric-two-tags.json",
    "query-metric-exclude-tags.json",
    "invalid-query-metric-aggregators-sum-no-sampling.json",
    "invalid-query-metric-aggregators-empty.json",
];

#[test]
fn every_query_fixture_is_covered() {
    let all = fixtures::names(|n| n.contains("query-metric"));
    for name in &all {
        let known = VALID.contains(&name.as_str())
            || INVALID.iter().any(|(n, _)| n == name)
            || name == "invalid-query-metric-json.json"
            || name == "invalid-query-metric-aggregators-sampling-timezone.json";
        assert!(known, "query fixture {name} has no expectation");
    }
    assert!(all.len() >= 45, "only {} query fixtures found", all.len());
}

#[test]
fn valid_fixtures_parse() {
    for name in VALID {
        let body = fixtures::read(name);
        if let Err(e) = parse_query_request(&body, NOW) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn invalid_fixtures_give_kairosdb_texts() {
    for (name, want) in INVALID {
        let body = fixtures::read(name);
        match parse_query_request(&body, NOW) {
            Err(Invalid(m)) => assert_eq!(&m, want, "{name}"),
            other => panic!("{name}: expected 400 {want:?}, got {other:?}"),
        }
    }
}

#[test]
fn syntax_error_fixture_is_a_400() {
    let body = fixtures::read("invalid-query-metric-json.json");
    let e = parse_query_request(&body, NOW).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    assert!(e.message().contains("line 2"), "{e}");
}

#[test]
fn bad_time_zone_fixture_has_the_java_prefix() {
    let body = fixtures::read("invalid-query-metric-aggregators-sampling-timezone.json");
    let e = parse_query(&body, NOW).unwrap_err();
    assert!(
        e.starts_with("query.bogus is not a valid time zone, must be one of [Africa/Abidjan, "),
        "{}",
        &e[..100.min(e.len())]
    );
}

#[test]
fn absolute_dates_fixture_content() {
    let q = parse_query(&fixtures::read("query-metric-absolute-dates.json"), NOW).unwrap();
    assert_eq!(q.range, TimeRange::new(784041330, 788879730));
    assert_eq!(q.cache_time, 0);
    assert_eq!(q.time_zone, None);
    let m = &q.metrics[0];
    assert_eq!(m.name, "abc.123");
    assert_eq!(
        m.filter_text,
        vec![
            ("host".to_string(), vec!["foo".to_string()]),
            ("type".to_string(), vec!["bar".to_string()])
        ]
    );
    assert_eq!(
        m.aggregators,
        vec![range(RangeKind::Sum, 1, Unit::Milliseconds)]
    );
    assert_eq!(m.limit, None);
    assert_eq!(m.order, Order::Asc);
    assert!(!m.exclude_tags);

    let q = parse_query(&fixtures::read("query-metric-two-tags.json"), NOW).unwrap();
    assert_eq!(
        q.metrics[0].filter_text,
        vec![(
            "host".to_string(),
            vec!["bar".to_string(), "foo".to_string()]
        )]
    );
    let q = parse_query(&fixtures::read("query-metric-exclude-tags.json"), NOW).unwrap();
    assert!(q.metrics[0].exclude_tags);
    let q = parse_query(&fixtures::read("query-metric-no-tags.json"), NOW).unwrap();
    assert!(q.metrics[0].filter.is_empty());
}

#[test]
fn relative_times_follow_relative_time_test() {
    // RelativeTimeTest vectors (UTC here): −5 ms, −3 weeks, −2 months, −3 years.
    let rel = |v: i64, u: &str| {
        let q = ok(&format!(
            r#"{{"start_relative":{{"value":"{v}","unit":"{u}"}},"metrics":[{{"name":"m"}}]}}"#
        ));
        q.range.start
    };
    assert_eq!(rel(5, "milliseconds"), NOW - 5);
    assert_eq!(rel(3, "WEEKS"), NOW - 3 * 604_800_000);
    assert_eq!(
        rel(2, "Months"),
        days_from_civil(2012, 11, 18) * 86_400_000 + (NOW % 86_400_000)
    );
    assert_eq!(
        rel(3, "years"),
        days_from_civil(2010, 1, 18) * 86_400_000 + (NOW % 86_400_000)
    );
    assert_eq!(
        rel(1, "hour"),
        NOW - 3_600_000,
        "singular units are accepted"
    );
    // Day-of-month clamping: Mar 31 − 1 month = Feb 29 (2012 is a leap year).
    let mar31 = days_from_civil(2012, 3, 31) * 86_400_000;
    assert_eq!(
        add_months(mar31, -1),
        days_from_civil(2012, 2, 29) * 86_400_000
    );
    assert_eq!(
        civil_from_days(days_from_civil(1969, 12, 31)),
        (1969, 12, 31)
    );
}

#[test]
fn end_time_rules() {
    let q = ok(r#"{"start_absolute":1,"metrics":[{"name":"m"}]}"#);
    assert_eq!(q.range, TimeRange::new(1, i64::MAX));
    let q = ok(r#"{"start_absolute":5,"end_absolute":5,"metrics":[{"name":"m"}]}"#);
    assert_eq!(q.range, TimeRange::new(5, 5));
    let q = ok(r#"{"start_absolute":"5","end_relative":{"value":0,"unit":"days"},"metrics":[]}"#);
    assert_eq!(q.range, TimeRange::new(5, NOW));
    assert!(q.metrics.is_empty());
}

#[test]
fn metric_fields() {
    let q = ok(r#"{
        // Grafana-style body with comments and sloppy types
        start_absolute: 1, time_zone: 'Europe/Paris', cache_time: "30",
        metrics: [{name: "m", limit: "0", order: "DESC", alias: "a", exclude_tags: "true",
          tags: {host: ["a", "regex:b.*"], dc: "x", empty: []},
          group_by: [{"name":"tag","tags":["host"]},{"name":"value","range_size":"100"},
                     {"name":"time","group_count":24,"range_size":{"unit":"HOURS","value":"1"}}],
          aggregators: [{"name":"avg","align_sampling":true,"sampling":{"value":"1","unit":"HOURS"}},
                        {"name":"percentile","percentile":"0.95","sampling":{"value":"5","unit":"MINUTES"}},
                        {"name":"rate","align_start_time":true,"unit":"SECONDS"},
                        {"name":"div","divisor":"2"},{"name":"scale","factor":"10"},
                        {"name":"sma","size":"5"},{"name":"trim","trim":"both"},{"name":"diff"},
                        {"name":"filter","filter_op":"LTE","threshold":5}],
          plugins: [], unknown_field: {"x": 1}}]}"#);
    assert_eq!(q.time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(q.cache_time, 30);
    let m = &q.metrics[0];
    assert_eq!(m.order, Order::Desc);
    assert_eq!(m.alias.as_deref(), Some("a"));
    assert!(m.exclude_tags);
    assert_eq!(m.limit, None);
    assert_eq!(m.group_by_tags, vec!["host"]);
    assert_eq!(
        m.group_bys,
        vec![
            GroupBySpec::Value { range_size: 100 },
            GroupBySpec::Time {
                range_size: Sampling {
                    value: 1,
                    unit: Unit::Hours
                },
                group_count: 24,
                start_date: None
            }
        ]
    );
    assert_eq!(m.aggregators[0], range(RangeKind::Avg, 1, Unit::Hours));
    assert_eq!(
        m.aggregators[1],
        range(RangeKind::Percentile(0.95), 5, Unit::Minutes)
    );
    assert_eq!(
        m.aggregators[2],
        AggregatorSpec::Rate {
            sampling: None,
            unit: Some(Unit::Seconds),
            time_zone: None
        }
    );
    assert_eq!(m.aggregators[3], AggregatorSpec::Div { divisor: 2.0 });
    assert_eq!(m.aggregators[4], AggregatorSpec::Scale { factor: 10.0 });
    assert_eq!(m.aggregators[5], AggregatorSpec::Sma { size: 5 });
    assert_eq!(
        m.aggregators[6],
        AggregatorSpec::Trim {
            first: true,
            last: true
        }
    );
    assert_eq!(m.aggregators[7], AggregatorSpec::Diff);
    assert_eq!(
        m.aggregators[8],
        AggregatorSpec::Filter {
            op: Some(FilterOp::Lte),
            threshold: Threshold::Number(5.0)
        }
    );
    assert_eq!(m.aggregators.len(), 9);
    assert_eq!(m.filter.tags.len(), 2, "a tag with [] adds no condition");
    assert_eq!(m.filter.tags[0].0, "dc");
    let host = &m.filter.tags[1];
    assert_eq!(host.0, "host");
    assert!(matches!(host.1[0], TagMatcher::Exact(ref s) if s == "a"));
    assert!(host.1[1].matches("bcd") && !host.1[1].matches("abc"));
    assert_eq!(
        ok(r#"{"start_absolute":1,"metrics":[{"name":"m","limit":7}]}"#).metrics[0].limit,
        Some(7)
    );
}

#[test]
fn appendix_a_query_texts() {
    let base = |metric: &str| format!(r#"{{"start_absolute":1,"metrics":[{metric}]}}"#);
    let cases: &[(&str, &str)] = &[
        (r#"{"name":"m","order":"up"}"#, "query.metric[0].order must be either 'asc' or 'desc'"),
        (r#"{"name":"m","group_by":[{"name":"value"}]}"#, "query.metric[0].group_by[0].rangeSize must be greater than or equal to 1"),
        (r#"{"name":"m","aggregators":[{"name":"sum","bogus":1}]}"#, "Property 'bogus' was specified for object 'sum' but no matching setter was found on 'class org.kairosdb.core.aggregator.SumAggregator'"),
        (r#"{"name":"m","aggregators":[{"name":"trim","trim":"middle"}]}"#, "query.metric[0].aggregators[0].middle is not a valid trim type, must be 'first', 'last' or 'both'."),
        (r#"{"name":"m","aggregators":[{"name":"filter","filter_op":"x"}]}"#, "query.metric[0].aggregators[0].x is not a valid trim type, must be 'lte', 'lt', 'gte', 'gt', 'equal' or 'ne'."),
        (r#"{"name":"m","aggregators":[{"name":"score"}]}"#, "query.metric[0].aggregators[0].thresholds may not be null"),
        (r#"{"name":"m","aggregators":[{"name":"rate","unit":"fortnights"}]}"#, "query.metric[0].aggregators[0].fortnights is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"),
        (r#"{"name":"m","aggregators":[{"name":"sum","sampling":{"value":1}}]}"#, "query.metric[0].aggregators[0].sampling.unit may not be null"),
        (r#"{"name":"m","plugins":[{}]}"#, "query.metric[0].plugins[0] must have a name"),
        (r#"{"name":"m","plugins":[{"name":"x"}]}"#, "query.metric[0].plugins[0].x invalid query plugin name"),
        (r#"{"name":"m"},{"name":""}"#, "query.metric[1].name may not be empty"),
    ];
    for (metric, want) in cases {
        assert_eq!(&err(&base(metric)), want, "{metric}");
    }
    assert_eq!(
        err(r#"{"start_relative":{"value":1},"metrics":[{"name":"m"}]}"#),
        "start_relative.unit may not be null"
    );
    assert_eq!(
        err(r#"{"start_absolute":1,"plugins":[{"name":"y"}],"metrics":[]}"#),
        ".plugins[0].y invalid query plugin name"
    );
    assert!(
        ok(r#"{"start_absolute":1,"time_zone":"+05:30","metrics":[]}"#)
            .time_zone
            .is_some()
    );
    assert_eq!(
        ok(r#"{"start_absolute":1,"time_zone":"","metrics":[]}"#).time_zone,
        None
    );
}

#[test]
fn statuses_of_non_objects_and_runtime_errors() {
    let e = parse_query_request(b"[1]", NOW).unwrap_err();
    assert_eq!((e.status(), e.message()), (500, "Not a JSON Object: [1]"));
    let e = parse_query_request(b"", NOW).unwrap_err();
    assert_eq!((e.status(), e.message()), (500, "Not a JSON Object: null"));
    let e =
        parse_query_request(br#"{"start_absolute":1,"metrics":[{"name":null}]}"#, NOW).unwrap_err();
    assert_eq!(e.status(), 500);
    let e = parse_query_request(br#"{"start_absolute":"abc","metrics":[]}"#, NOW).unwrap_err();
    assert_eq!(e.status(), 400);
    let e = parse_query_request(br#"{"metrics":[]} {}"#, NOW).unwrap_err();
    assert_eq!(e.status(), 400);
    let deep = format!("{{\"a\":{}}}", "[".repeat(10_000));
    assert_eq!(
        parse_query_request(deep.as_bytes(), NOW)
            .unwrap_err()
            .status(),
        400
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = parse_query_request(&body, NOW);
    }

    #[test]
    fn json_like_bodies_never_panic(body in r#"[{}\[\]",:0-9a-z_ \-.'/*#]{0,150}"#) {
        let _ = parse_query_request(body.as_bytes(), NOW);
    }

    #[test]
    fn mutated_fixtures_never_panic(i in 0usize..10, cut in 0usize..400, byte in proptest::prelude::any::<u8>()) {
        let mut body = fixtures::read(VALID[i % VALID.len()]);
        let cut = cut.min(body.len());
        body.truncate(cut.max(1));
        body.push(byte);
        let _ = parse_query_request(&body, NOW);
    }
}

#[test]
fn score_thresholds_are_objects_and_filter_thresholds_keep_their_json_type() {
    let q = ok(
        r#"{"start_absolute":1,"metrics":[{"name":"m","aggregators":[
        {"name":"score","order":"descending",
         "thresholds":[{"value":"10","boundary":"inferior"},{"value":0}]},
        {"name":"filter","filter_op":"equal","threshold":"alfa"},
        {"name":"filter","filter_op":"gt","threshold":2.5}]}]}"#,
    );
    let a = &q.metrics[0].aggregators;
    assert_eq!(
        a[0],
        AggregatorSpec::Score {
            // Sorted by value.
            thresholds: vec![
                ScoreThreshold {
                    value: 0.0,
                    inferior: false
                },
                ScoreThreshold {
                    value: 10.0,
                    inferior: true
                }
            ],
            descending: true
        }
    );
    assert_eq!(
        a[1],
        AggregatorSpec::Filter {
            op: Some(FilterOp::Equal),
            threshold: Threshold::Text("alfa".into())
        }
    );
    assert_eq!(
        a[2],
        AggregatorSpec::Filter {
            op: Some(FilterOp::Gt),
            threshold: Threshold::Number(2.5)
        }
    );

    let base = |agg: &str| {
        format!(r#"{{"start_absolute":1,"metrics":[{{"name":"m","aggregators":[{agg}]}}]}}"#)
    };
    assert_eq!(
        err(&base(r#"{"name":"score","thresholds":[1]}"#)),
        "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException: Expected BEGIN_OBJECT but was NUMBER at path $.thresholds[0]"
    );
    assert_eq!(
        err(&base(r#"{"name":"score","thresholds":[{"value":"x"}]}"#)),
        "query.metric[0].aggregators[0].thresholds For input string: \"x\""
    );
    assert_eq!(
        err(&base(r#"{"name":"score","thresholds":[{"value":1,"boundary":"middle"}]}"#)),
        "query.metric[0].aggregators[0].thresholds[0].boundary middle is not a valid boundary, must be 'superior' or 'inferior'"
    );
}

/// The Gson paths and contexts in messages are written only when an error is reported;
/// each one still names its field.
#[test]
fn messages_name_the_field_they_are_about() {
    const ISE: &str = "com.google.gson.JsonSyntaxException: java.lang.IllegalStateException";
    let agg = |a: &str| {
        format!(
            r#"{{"start_absolute":1,"metrics":[{{"name":"m"}},{{"name":"m","aggregators":[{{"name":"sum"}},{a}]}}]}}"#
        )
    };
    let cases = [
        (
            r#"{"start_absolute":[1],"metrics":[{"name":"m"}]}"#.to_string(),
            format!("{ISE}: Expected a long but was BEGIN_ARRAY at path $.start_absolute"),
        ),
        (
            r#"{"start_relative":{"value":{},"unit":"days"},"metrics":[{"name":"m"}]}"#.to_string(),
            format!("{ISE}: Expected a long but was BEGIN_OBJECT at path $.start_relative.value"),
        ),
        (
            agg(r#"{"name":"sum","sampling":{"value":[],"unit":"days"}}"#),
            format!("{ISE}: Expected a long but was BEGIN_ARRAY at path $.sampling.value"),
        ),
        (
            agg(r#"{"name":"sum","align_sampling":{}}"#),
            format!("{ISE}: Expected a boolean but was BEGIN_OBJECT at path $.align_sampling"),
        ),
        (
            agg(r#"{"name":"div","divisor":"x"}"#),
            "query.metric[1].aggregators[1].divisor For input string: \"x\"".to_string(),
        ),
        (
            agg(r#"{"name":"sum","sampling":{"value":-1,"unit":"days"}}"#),
            "query.metric[1].aggregators[1].sampling.value must be greater than or equal to 0"
                .to_string(),
        ),
        (
            agg(r#"{"name":"avg","bogus":1}"#),
            "Property 'bogus' was specified for object 'avg' but no matching setter was found on 'class org.kairosdb.core.aggregator.AvgAggregator'".to_string(),
        ),
        (
            r#"{"start_absolute":1,"metrics":[{"name":"m","group_by":[{"name":"tag","tags":["a"],"x":1}]}]}"#.to_string(),
            "Property 'x' was specified for object 'tag' but no matching setter was found on 'class org.kairosdb.core.groupby.TagGroupBy'".to_string(),
        ),
        (
            r#"{"start_absolute":1,"metrics":[{"name":"m"},{"name":"m","tags":{"a":["x"],"b":[""]}}]}"#.to_string(),
            "query.metric[1].tags[1].b value must not be null or empty".to_string(),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(err(&body), want, "{body}");
    }
}

/// A JSON value every setter of `kind` takes.
fn sample(kind: PropKind) -> String {
    match kind {
        PropKind::Bool => "true".into(),
        PropKind::Long | PropKind::Int => "5".into(),
        PropKind::Double => "0.5".into(),
        PropKind::Str => r#""x""#.into(),
        PropKind::Any => "1".into(),
        PropKind::Duration => r#"{"value":1,"unit":"hours"}"#.into(),
        PropKind::Unit => r#""hours""#.into(),
        PropKind::TimeZone => r#""Europe/Paris""#.into(),
        PropKind::Enum(names) | PropKind::LooseEnum(names) => {
            format!(r#""{}""#, names[0].to_ascii_lowercase())
        }
        PropKind::DoubleArray => "[1, 2]".into(),
        PropKind::StringArray => r#"["a"]"#.into(),
        PropKind::Thresholds => r#"[{"value":1,"boundary":"inferior"}]"#.into(),
        PropKind::StringMap => r#"{"k":"v"}"#.into(),
    }
}

/// What a processor needs besides `property` to pass its bean validation.
fn required(name: &str, property: &str) -> &'static str {
    match (name, property) {
        ("div", p) if p != "divisor" => r#","divisor":2"#,
        ("percentile", p) if p != "percentile" => r#","percentile":0.5"#,
        ("score", p) if p != "thresholds" => r#","thresholds":[]"#,
        ("tag", p) if p != "tags" => r#","tags":["a"]"#,
        ("time", "range_size") => r#","group_count":2"#,
        ("time", "group_count") => r#","range_size":{"value":1,"unit":"hours"}"#,
        ("time", _) => r#","group_count":2,"range_size":{"value":1,"unit":"hours"}"#,
        ("value", p) if p != "range_size" => r#","range_size":10"#,
        _ => "",
    }
}

/// The parser reads every property of the catalogue with the kind the catalogue gives
/// it, and refuses an unknown one naming the row's Java class.
#[test]
fn every_catalogue_property_is_read_with_its_kind() {
    check_rows(
        catalogue::AGGREGATORS,
        Family::Aggregators,
        parse_aggregator,
    );
    check_rows(catalogue::GROUP_BYS, Family::GroupBy, parse_group_by);
}

/// Each property of each row, with a value of its kind, parses into what the row's
/// `build` makes of the properties read; an unknown property names the row's class.
fn check_rows<S: PartialEq + fmt::Debug + 'static>(
    rows: &'static [Processor<S>],
    family: Family,
    parse: fn(&str) -> Result<S, QueryError>,
) {
    for row in rows {
        for p in row.all_properties() {
            let (name, kind) = (p.name, p.kind);
            let json = format!(
                r#"{{"name":"{}","{name}":{}{}}}"#,
                row.name,
                sample(kind),
                required(row.name, name)
            );
            let spec = parse(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            let item = lenient::parse(&json, MAX_DEPTH).unwrap();
            let props = properties(&item, row, family, &"ctx").unwrap();
            assert_eq!(Ok(&spec), (row.build)(&props).as_ref(), "{json}");
        }
        let e = parse(&format!(r#"{{"name":"{}","bogus":1}}"#, row.name)).unwrap_err();
        let class = format!("org.kairosdb.core.{}.{}'", family.package(), row.class);
        assert!(e.message().ends_with(&class), "{e}");
    }
}

#[test]
fn an_aggregator_property_takes_its_typed_value() {
    let range_of = |json: &str| match parse_aggregator(json).unwrap() {
        AggregatorSpec::Range(r) => r,
        other => panic!("{other:?}"),
    };
    let r = range_of(
        r#"{"name":"dev","return_type":"POS_SD","dev_count":"3","start_time":"7","end_time":9,
            "time_zone":"","trim":"true","align_sampling":false,"align_end_time":true}"#,
    );
    assert_eq!(
        r.kind,
        RangeKind::Dev {
            return_type: DevReturn::PosSd,
            count: 3
        }
    );
    assert_eq!((r.start_time, r.end_time), (Some(7), Some(9)));
    assert_eq!(
        r.time_zone.as_deref(),
        Some(""),
        "\"\" is UTC, kept as written"
    );
    assert!(r.trim && !r.align_sampling && r.align_end_time && !r.align_start_time);
    // An unknown `return_type` is null for Gson's enum adapter: the plain deviation.
    let r = range_of(r#"{"name":"dev","return_type":"median"}"#);
    assert_eq!(
        r.kind,
        RangeKind::Dev {
            return_type: DevReturn::Value,
            count: 1
        }
    );
    assert_eq!(
        parse_aggregator(
            r#"{"name":"save_as","metric_name":"m2","tags":{"a":"x","n":1.50,"b":true,"o":{}},"ttl":-5}"#
        )
        .unwrap(),
        AggregatorSpec::SaveAs {
            metric_name: "m2".into(),
            tags: vec![
                ("a".into(), "x".into()),
                ("n".into(), "1.50".into()),
                ("b".into(), "true".into())
            ],
            ttl: 0,
            add_saved_from: true
        }
    );
    assert_eq!(
        parse_group_by(r#"{"name":"bin","bins":["1.5", 2, null, "NaN"]}"#).unwrap(),
        GroupBySpec::Bin {
            bins: vec![1.5, 2.0]
        }
    );
}

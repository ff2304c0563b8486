//! KairosDB's own fixtures (`../shared/kairosdb-conformance`), with the outcomes its README
//! documents: every ingest body, every query body (on `/query`, `/query/tags` and
//! `/delete`, which share the parser), and the end-to-end case `test_verifyAddedDataPoints`.

use serde_json::Value;

use crate::harness::{conformance_file, post, read_back, unique, Server};

/// Ingest fixtures: file, status, exact error list.
const INGEST: &[(&str, u16, &[&str])] = &[
    ("single-metric-long.json", 204, &[]),
    ("single-metric-double.json", 204, &[]),
    ("multiple-datapoints-metric.json", 204, &[]),
    ("multi-metric-long.json", 204, &[]),
    ("multi-metric-timestamp-zero.json", 204, &[]),
    (
        "single-metric-missing-name.json",
        400,
        &["metric[0].name may not be empty."],
    ),
    ("json-metric-parser-multiple-metric.json", 204, &[]),
    ("json-metric-parser-metrics-with-type.json", 204, &[]),
];

#[tokio::test]
async fn ingest_fixtures_answer_as_documented_and_read_back() {
    let server = Server::fresh(&[]);
    for (file, status, errors) in INGEST {
        let body = conformance_file(&format!("unit-resources/{file}"));
        let answer = post(&server, "/api/v1/datapoints", body).await;
        assert_eq!(answer.status, *status, "{file}: {}", answer.text());
        if *status == 204 {
            assert!(answer.body.is_empty(), "{file}: {}", answer.text());
        } else {
            assert_eq!(answer.errors(), *errors, "{file}");
        }
    }
    // What the fixtures stored, merged per metric (same series + timestamp: last wins).
    let expected: &[(&str, &[(i64, Value)])] = &[
        (
            "archive.file.tracked",
            &[
                (1349109376, Value::from(123)),
                (1349109377, Value::from(13.2)),
                (1349109378, Value::from(23.1)),
            ],
        ),
        (
            "archive.file.search",
            &[(0, Value::from(321)), (999, Value::from(321))],
        ),
        (
            "governance.file.tracked",
            &[(1349109376, Value::from(123.56))],
        ),
        (
            "archive_file_tracked",
            &[
                (1349109376, Value::from(123)),
                (1349109377, Value::from(13.2)),
                (1349109378, Value::from(23.1)),
                (1349109378, Value::from("string_data")),
            ],
        ),
        ("archive_file_search", &[(1349109378, Value::from(321))]),
        (
            "archive_file_search_text",
            &[(1349109378, Value::from("sweet"))],
        ),
    ];
    for (metric, points) in expected {
        let mut actual = read_back(&server, metric).await;
        let mut expected = points.to_vec();
        // Within one timestamp, order numbers before strings (the number group comes first).
        let key = |p: &(i64, Value)| (p.0, p.1.is_string());
        actual.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(actual.len(), expected.len(), "{metric}: {actual:?}");
        for (a, e) in actual.iter().zip(&expected) {
            assert_eq!(a.0, e.0, "{metric}: {actual:?}");
            assert!(
                same_value(&a.1, &e.1),
                "{metric}: {actual:?} vs {expected:?}"
            );
        }
    }
    let names = crate::harness::get(&server, "/api/v1/metricnames")
        .await
        .json();
    let names: Vec<&str> = names["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&""),
        "the rejected metric was stored: {names:?}"
    );
    assert!(names.contains(&"archive_file_search_text"), "{names:?}");
}

/// Numbers within ±0.01 when either has a fraction (the harness rule), else exact.
fn same_value(a: &Value, e: &Value) -> bool {
    match (a, e) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 0.01
            } else {
                x == y
            }
        }
        _ => a == e,
    }
}

const UNIT: &str =
    "is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS";

/// Invalid query fixtures and their single error (a trailing `*` means "starts with").
fn invalid_queries() -> Vec<(&'static str, String)> {
    let tag_value = "query.metric[0].tags[0].host value must not be null or empty";
    let simple_time = "query.metric[0].group_by[1].simpleTime invalid group_by name";
    [
        (
            "invalid-query-metric-absoluteEndTime-less-than-startTime.json",
            "query.metric[0].end_time must be greater than the start time".to_string(),
        ),
        (
            "invalid-query-metric-relativeEndTime-less-than-startTime.json",
            "query.metric[0].end_time must be greater than the start time".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-div-divisor-zero.json",
            "query.metric[0].aggregators[0].m_divisor may not be zero".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-div-no-divisor.json",
            "query.metric[0].aggregators[0].m_divisor may not be zero".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-empty-name.json",
            "query.metric[0].aggregators[0] must have a name".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-no-name.json",
            "query.metric[0].aggregators[0] must have a name".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-percentile-no-percentile.json",
            "query.metric[0].aggregators[0].percentile may not be zero".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-percentile-percentile-zero.json",
            "query.metric[0].aggregators[0].percentile may not be zero".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-percentile-percentile.json",
            "query.metric[0].aggregators[0].percentile multiple points".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-sampling-timezone.json",
            "query.bogus is not a valid time zone, must be one of *".to_string(),
        ),
        (
            "invalid-query-metric-aggregators-sampling-unit.json",
            format!("query.metric[0].aggregators[0].bogus {UNIT}"),
        ),
        (
            "invalid-query-metric-aggregators-sampling-value.json",
            "query.metric[0].aggregators[0].sampling.value must be greater than or equal to 0"
                .to_string(),
        ),
        (
            "invalid-query-metric-aggregators.json",
            "query.metric[0].aggregators[0].bogus invalid aggregators name".to_string(),
        ),
        (
            "invalid-query-metric-cache-time.json",
            "cache_time must be greater than or equal to 0".to_string(),
        ),
        (
            "invalid-query-metric-empty-name.json",
            "query.metric[0].name may not be empty".to_string(),
        ),
        (
            "invalid-query-metric-no-name.json",
            "query.metric[0].name may not be null".to_string(),
        ),
        (
            "invalid-query-metric-no-metric.json",
            "query.metric[] must have a size of at least 1".to_string(),
        ),
        (
            "invalid-query-metric-no-start_date.json",
            "query.metric[0].start_time relative or absolute time must be set".to_string(),
        ),
        (
            "invalid-query-metric-relative-startTime-value.json",
            "start_relative.value must be greater than or equal to 0".to_string(),
        ),
        (
            "invalid-query-metric-relative-endTime-value.json",
            "end_relative.value must be greater than or equal to 0".to_string(),
        ),
        (
            "invalid-query-metric-relative-unit.json",
            format!("query.bogus {UNIT}"),
        ),
        ("invalid-query-metric-json.json", "*".to_string()),
        (
            "invalid-query-metric-group_by-empty-name.json",
            "query.metric[0].group_by[1] must have a name".to_string(),
        ),
        (
            "invalid-query-metric-group_by-no-name.json",
            "query.metric[0].group_by[0] must have a name".to_string(),
        ),
        (
            "invalid-query-metric-group_by.json",
            "query.metric[0].group_by[0].bogus invalid group_by name".to_string(),
        ),
        (
            "invalid-query-metric-group_by-tag-missing-tags.json",
            "query.metric[0].group_by[0].tags may not be null".to_string(),
        ),
        (
            "invalid-query-metric-group_by-tag-empty-tags.json",
            "query.metric[0].group_by[0].tags may not be empty".to_string(),
        ),
        (
            "invalid-query-metric-group_by-time-missing-range_size.json",
            "query.metric[0].group_by[0].rangeSize may not be null".to_string(),
        ),
        (
            "invalid-query-metric-group_by-time-missing-group_count.json",
            "query.metric[0].group_by[0].groupCount must be greater than or equal to 1".to_string(),
        ),
        (
            "invalid-query-metric-group_by-time-range_size_unit.json",
            format!("query.metric[0].group_by[0].bogus {UNIT}"),
        ),
        (
            "invalid-query-metric-group_by-time-range_size_value.json",
            "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0"
                .to_string(),
        ),
        (
            "invalid-query-metric-group_by-value-range_size.json",
            "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0"
                .to_string(),
        ),
        (
            "invalid-query-metric-tag-empty-name.json",
            "query.metric[0].tags[0] name must not be empty".to_string(),
        ),
        (
            "invalid-query-metric-tag-empty-value.json",
            tag_value.to_string(),
        ),
        (
            "invalid-query-metric-tag-empty-value-in-array.json",
            tag_value.to_string(),
        ),
        ("query-metric-null-tag-value.json", tag_value.to_string()),
        (
            "query-metric-null-tag-value-in-array.json",
            tag_value.to_string(),
        ),
        // `simpleTime` is a group-by registered only by KairosDB's unit tests.
        (
            "invalid-query-metric-no-aggregators.json",
            simple_time.to_string(),
        ),
        (
            "query-metric-absolute-dates-with-groupby.json",
            simple_time.to_string(),
        ),
    ]
    .into_iter()
    .collect()
}

/// Query fixtures that are valid against a real server (despite some names).
const VALID_QUERIES: &[&str] = &[
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

/// Fails listing every collected failure, one a line.
fn assert_none_failed(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn invalid_query_fixtures_give_the_kairosdb_error_on_every_query_endpoint() {
    let server = Server::fresh(&[]);
    let mut failures = Vec::new();
    for (file, expected) in invalid_queries() {
        let body = conformance_file(&format!("unit-resources/{file}"));
        for endpoint in [
            "/api/v1/datapoints/query",
            "/api/v1/datapoints/query/tags",
            "/api/v1/datapoints/delete",
        ] {
            let answer = post(&server, endpoint, body.clone()).await;
            let errors = if answer.status == 400 {
                answer.errors()
            } else {
                Vec::new()
            };
            let ok = answer.status == 400
                && errors.len() == 1
                && match expected.strip_suffix('*') {
                    Some(prefix) => errors[0].starts_with(prefix),
                    None => errors[0] == expected,
                };
            if !ok {
                failures.push(format!(
                    "{file} on {endpoint}: got {} {}, want 400 {expected:?}",
                    answer.status,
                    answer.text()
                ));
            }
        }
    }
    assert_none_failed(&failures);
}

#[tokio::test]
async fn valid_query_fixtures_answer_200() {
    let server = Server::fresh(&[]);
    let mut failures = Vec::new();
    for file in VALID_QUERIES {
        let body = conformance_file(&format!("unit-resources/{file}"));
        for endpoint in ["/api/v1/datapoints/query", "/api/v1/datapoints/query/tags"] {
            let answer = post(&server, endpoint, body.clone()).await;
            if answer.status != 200 || !answer.json()["queries"].is_array() {
                failures.push(format!(
                    "{file} on {endpoint}: got {} {}",
                    answer.status,
                    answer.text()
                ));
            }
        }
    }
    assert_none_failed(&failures);
}

/// How a case's expected response is compared.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    /// Exactly as KairosDB's harness does.
    Harness,
    /// Tag value arrays compared as sets: the fixture holds Java hash-set order, we sort
    /// (conformance README, spec §14.2).
    TagsAsSets,
}

/// One `integration/` case with the original harness procedure (§12.1): ingest → query
/// and compare → delete → query again, every result empty.
async fn integration_case(case: &str, compare: Compare) {
    let server = Server::fresh(&[]);
    let metric = format!("integration_test_{}", unique());
    let read = |name: &str| {
        let text =
            String::from_utf8(conformance_file(&format!("integration/{case}/{name}"))).unwrap();
        text.replace("<metric_name>", &metric)
    };
    let answer = post(&server, "/api/v1/datapoints", read("datapoints.json")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());

    let query = read("query.json");
    // The fixtures contain comments; the comparison needs them gone.
    let expected: Value = serde_json::from_str(&strip_comments(&read("response.json"))).unwrap();
    let answer = post(&server, "/api/v1/datapoints/query", query.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    compare_like_kairosdb_harness(&answer.json(), &expected, compare);

    let answer = post(&server, "/api/v1/datapoints/delete", query.clone()).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let answer = post(&server, "/api/v1/datapoints/query", query).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    for q in answer.json()["queries"].as_array().unwrap() {
        for r in q["results"].as_array().unwrap() {
            assert_eq!(r["values"], serde_json::json!([]), "not deleted: {r}");
        }
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn verify_added_data_points() {
    integration_case("test_verifyAddedDataPoints", Compare::Harness).await;
}

/// sum/max/min/avg/dev/least_squares over 10 years, rate ascending and descending,
/// sum(4 ms) chained into avg(1 year).
#[tokio::test]
async fn aggregators_case() {
    integration_case("test_aggregators", Compare::Harness).await;
}

/// time, value and tag group-bys.
#[tokio::test]
async fn group_by_case() {
    integration_case("test_groupBy", Compare::TagsAsSets).await;
}

/// `test_emptyQuery` expects KairosDB 1.3.0's one empty result; since 2022 KairosDB (and
/// this server, spec §14.1) omit empty groups: the answer is one query with no results.
#[tokio::test]
async fn empty_query_case() {
    let server = Server::fresh(&[]);
    let query = conformance_file("integration/test_emptyQuery/query.json");
    let expected: Value = serde_json::from_str(&strip_comments(
        &String::from_utf8(conformance_file(
            "integration/test_emptyQuery/response.json",
        ))
        .unwrap(),
    ))
    .unwrap();
    // The fixture: one result with no values. The documented deviation: no result.
    assert_eq!(
        expected["queries"][0]["results"][0]["values"],
        serde_json::json!([])
    );
    let answer = post(&server, "/api/v1/datapoints/query", query).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json(),
        serde_json::json!({"queries":[{"sample_size":0,"results":[]}]})
    );
}

/// The comparison of KairosDB's integration harness (conformance README): same number of
/// queries and results; per result equal name, same tag names with equal value arrays,
/// same number of values, equal timestamps, values within ±0.01 when one has a fraction.
fn compare_like_kairosdb_harness(actual: &Value, expected: &Value, compare: Compare) {
    let aq = actual["queries"].as_array().expect("queries");
    let eq = expected["queries"].as_array().expect("queries");
    assert_eq!(aq.len(), eq.len(), "queries: {actual}");
    for (a, e) in aq.iter().zip(eq) {
        let ar = a["results"].as_array().expect("results");
        let er = e["results"].as_array().expect("results");
        assert_eq!(ar.len(), er.len(), "results: {actual}");
        for (a, e) in ar.iter().zip(er) {
            assert_eq!(a["name"], e["name"], "{actual}");
            if compare == Compare::TagsAsSets {
                assert_eq!(tag_sets(&a["tags"]), tag_sets(&e["tags"]), "{actual}");
            } else {
                assert_eq!(a["tags"], e["tags"], "{actual}");
            }
            let av = a["values"].as_array().expect("values");
            let ev = e["values"].as_array().expect("values");
            assert_eq!(av.len(), ev.len(), "values: {actual}");
            for (a, e) in av.iter().zip(ev) {
                assert_eq!(a[0], e[0], "timestamps: {actual}");
                assert!(same_value(&a[1], &e[1]), "values: {actual}");
            }
        }
    }
}

fn tag_sets(
    tags: &Value,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    tags.as_object()
        .expect("tags object")
        .iter()
        .map(|(k, v)| {
            let values = v.as_array().expect("tag values");
            (
                k.clone(),
                values
                    .iter()
                    .map(|x| x.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

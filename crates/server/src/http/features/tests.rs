//! Tests of the feature metadata: the documents against KairosDB's, the derivation rules,
//! Gson's escaping, and the two routes through the real router.
//!
//! `kairosdb-features.json` is KairosDB 1.3.2's `GET /api/v1/features` answer, produced by
//! running KairosDB's own `AnnotationUtils` and `processingstage/metadata/*.java` under Gson
//! 2.10 over its aggregator and group-by classes (reduced to their annotated fields). The
//! inline expectations below are excerpts of it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::config::{Config, Settings};
use crate::fake_storage::FakeStorage;
use crate::http::{router, AppState};
use crate::metrics::ServerMetrics;

const KAIROSDB_FEATURES: &str = include_str!("kairosdb-features.json");

const AGGREGATOR_NAMES: [&str; 21] = [
    "avg",
    "count",
    "dev",
    "diff",
    "div",
    "filter",
    "first",
    "gaps",
    "last",
    "least_squares",
    "max",
    "min",
    "percentile",
    "rate",
    "sampler",
    "save_as",
    "scale",
    "score",
    "sma",
    "sum",
    "trim",
];

const GROUP_BY_NAMES: [&str; 4] = ["bin", "tag", "time", "value"];

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn strings(values: &Value, key: &str) -> Vec<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

/// The exact text of one processor in the `/features/{family}` document, cut out of the
/// served bytes (re-serialising a `Value` would reorder the keys).
fn processor_text(family: usize, name: &str) -> String {
    let document = text(&DOCUMENTS.families[family]);
    let prefix = format!("{{\"name\":\"{name}\",");
    top_level_items(document)
        .into_iter()
        .find(|item| item.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no processor {name} in {document}"))
        .to_owned()
}

/// The elements of a JSON array, as text.
fn top_level_items(array: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in array.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 2 {
                    start = i;
                }
            }
            b']' | b'}' => {
                if depth == 2 {
                    items.push(&array[start..=i]);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    items
}

const GROUP_BY: usize = 0;
const AGGREGATORS_FAMILY: usize = 1;

#[test]
fn features_document_is_kairosdb_byte_for_byte() {
    assert_eq!(text(&DOCUMENTS.features), KAIROSDB_FEATURES);
}

#[test]
fn features_families_are_group_by_then_aggregators() {
    let all = parse(&DOCUMENTS.features);
    assert_eq!(strings(&all, "name"), ["group_by", "aggregators"]);
    assert_eq!(strings(&all, "label"), ["Group By", "Aggregator"]);
    assert!(text(&DOCUMENTS.features)
        .starts_with(r#"[{"name":"group_by","label":"Group By","properties":[{"name":"bin","#));
}

#[test]
fn features_list_every_registered_processor() {
    let all = parse(&DOCUMENTS.features);
    let mut group_bys = strings(&all[0]["properties"], "name");
    group_bys.sort();
    assert_eq!(group_bys, GROUP_BY_NAMES);
    let mut aggregators = strings(&all[1]["properties"], "name");
    aggregators.sort();
    assert_eq!(aggregators, AGGREGATOR_NAMES);
}

#[test]
fn features_sort_by_label_and_families_by_name() {
    let all = parse(&DOCUMENTS.features);
    // Java String order: upper case before lower case, so SCORE < SMA < Sampler.
    assert_eq!(
        strings(&all[1]["properties"], "label"),
        [
            "AVG",
            "Count",
            "Dev",
            "Diff",
            "Div",
            "Filter",
            "First",
            "Gaps",
            "Last",
            "Least Squares",
            "Max",
            "Min",
            "Percentile",
            "Rate",
            "SCORE",
            "SMA",
            "Sampler",
            "Save As",
            "Scale",
            "Sum",
            "Trim",
        ]
    );
    assert_eq!(
        strings(&all[0]["properties"], "label"),
        ["Bin", "Tag", "Time", "Value"]
    );
    // `/features/{family}` sorts by name: sampler < save_as < scale < score < sma.
    let aggregators = parse(&DOCUMENTS.families[AGGREGATORS_FAMILY]);
    assert_eq!(strings(&aggregators, "name"), AGGREGATOR_NAMES);
    let group_bys = parse(&DOCUMENTS.families[GROUP_BY]);
    assert_eq!(strings(&group_bys, "name"), GROUP_BY_NAMES);
}

#[test]
fn features_family_documents_hold_the_same_processors() {
    let all = parse(&DOCUMENTS.features);
    for (i, family) in all.as_array().unwrap().iter().enumerate() {
        let mut expected = family["properties"].as_array().unwrap().clone();
        expected.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        assert_eq!(parse(&DOCUMENTS.families[i]), Value::Array(expected));
    }
}

#[test]
fn features_properties_sort_by_label_and_compounds_by_declared_order() {
    let aggregators = parse(&DOCUMENTS.families[AGGREGATORS_FAMILY]);
    let percentile = aggregators
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "percentile")
        .unwrap();
    assert_eq!(
        strings(&percentile["properties"], "label"),
        [
            "Align end time",
            "Align start time",
            "Percentile",
            "Sampling",
            "Trim"
        ]
    );
    // Value before Unit: `order = {"Value", "Unit"}`, not label order.
    assert_eq!(
        strings(&percentile["properties"][3]["properties"], "label"),
        ["Value", "Unit"]
    );
}

#[test]
fn features_div_is_exact() {
    assert_eq!(
        processor_text(AGGREGATORS_FAMILY, "div"),
        r#"{"name":"div","label":"Div","description":"Divides each data point by a divisor.","properties":[{"name":"divisor","label":"Divisor","description":"The value each data point is divided by.","optional":false,"type":"double","options":[],"defaultValue":"1","autocomplete":"","multiline":false,"validations":[{"expression":"value \u003e 0","type":"js","message":"Divisor must be greater than 0."}]}]}"#
    );
}

#[test]
fn features_trim_is_exact() {
    assert_eq!(
        processor_text(AGGREGATORS_FAMILY, "trim"),
        r#"{"name":"trim","label":"Trim","description":"Trims off the first, last or both (first and last) data points from the results.","properties":[{"name":"trim","label":"Trim","description":"Which data point to trim","optional":false,"type":"enum","options":["FIRST","LAST","BOTH"],"defaultValue":"both","autocomplete":"","multiline":false,"validations":[]}]}"#
    );
}

#[test]
fn features_sampler_is_exact() {
    assert_eq!(
        processor_text(AGGREGATORS_FAMILY, "sampler"),
        r#"{"name":"sampler","label":"Sampler","description":"Computes the sampling rate of change for the data points.","properties":[{"name":"unit","label":"Time Unit","description":"Time unit of sampling","optional":false,"type":"enum","options":["MILLISECONDS","SECONDS","MINUTES","HOURS","DAYS","WEEKS","MONTHS","YEARS"],"defaultValue":"milliseconds","autocomplete":"","multiline":false,"validations":[]}]}"#
    );
}

#[test]
fn features_sum_is_exact() {
    assert_eq!(
        processor_text(AGGREGATORS_FAMILY, "sum"),
        r#"{"name":"sum","label":"Sum","description":"Adds data points together.","properties":[{"name":"align_end_time","label":"Align end time","description":"Setting this to true will cause the aggregation range to be aligned based on the sampling size. For example if your sample size is either milliseconds, seconds, minutes or hours then the start of the range will always be at the top of the hour. The difference between align_start_time and align_end_time is that align_end_time sets the timestamp for the datapoint to the beginning of the following period versus the beginning of the current period. As with align_start_time, setting this to true will cause your data to take the same shape when graphed as you refresh the data. Note that align_sampling, align_start_time, and align_end_time are mutually exclusive. If more than one are set, unexpected results will occur.","optional":false,"type":"boolean","options":[],"defaultValue":"false","autocomplete":"","multiline":false,"validations":[]},{"name":"align_start_time","label":"Align start time","description":"Setting this to true will cause the aggregation range to be aligned based on the sampling size. For example if your sample size is either milliseconds, seconds, minutes or hours then the start of the range will always be at the top of the hour. The effect of setting this to true is that your data will take the same shape when graphed as you refresh the data. Note that align_sampling, align_start_time, and align_end_time are mutually exclusive. If more than one are set, unexpected results will occur.","optional":false,"type":"boolean","options":[],"defaultValue":"false","autocomplete":"","multiline":false,"validations":[]},{"name":"sampling","label":"Sampling","optional":false,"type":"Object","multiline":false,"properties":[{"name":"value","label":"Value","description":"The number of units for the aggregation buckets","optional":false,"type":"long","options":[],"defaultValue":"1","autocomplete":"","multiline":false,"validations":[{"expression":"value \u003e\u003d 0","type":"js","message":"Value must be greater or equal to 0."}]},{"name":"unit","label":"Unit","description":"The time unit for the sampling rate","optional":false,"type":"enum","options":["MILLISECONDS","SECONDS","MINUTES","HOURS","DAYS","WEEKS","MONTHS","YEARS"],"defaultValue":"MILLISECONDS","autocomplete":"","multiline":false,"validations":[]}]},{"name":"trim","label":"Trim","description":" Trim off empty ranges before and after the actual data","optional":false,"type":"boolean","options":[],"defaultValue":"false","autocomplete":"","multiline":false,"validations":[]}]}"#
    );
}

#[test]
fn features_save_as_is_exact() {
    assert_eq!(
        processor_text(AGGREGATORS_FAMILY, "save_as"),
        r#"{"name":"save_as","label":"Save As","description":"Saves the results to a new metric.","properties":[{"name":"metric_name","label":"Save As","description":"The name of the new metric.","optional":false,"type":"String","options":[],"defaultValue":"\u003cnew name\u003e","autocomplete":"","multiline":false,"validations":[{"expression":"!value \u0026\u0026 value.length \u003e 0","type":"js","message":"The name can\u0027t be empty."}]}]}"#
    );
}

#[test]
fn features_tag_is_exact() {
    assert_eq!(
        processor_text(GROUP_BY, "tag"),
        r#"{"name":"tag","label":"Tag","description":"Groups data points by tag names.","properties":[{"name":"tags","label":"Tags","description":"A list of tags to group by.","optional":false,"type":"array","options":[],"defaultValue":"[]","autocomplete":"tags","multiline":false,"validations":[{"expression":"value.length \u003e 0","type":"js","message":"Tags can\u0027t be empty."}]}]}"#
    );
}

#[test]
fn features_time_is_exact() {
    assert_eq!(
        processor_text(GROUP_BY, "time"),
        r#"{"name":"time","label":"Time","description":"Groups data points in time ranges.","properties":[{"name":"group_count","label":"Count","description":"The number of groups. This would typically be 7 to group by day of week.","optional":false,"type":"int","options":[],"defaultValue":"0","autocomplete":"","multiline":false,"validations":[{"expression":"value \u003e 0","type":"js","message":"Count must be greater than 0."}]},{"name":"range_size","label":"Range Size","optional":false,"type":"Object","multiline":false,"properties":[{"name":"value","label":"Value","description":"The number of units for the aggregation buckets","optional":false,"type":"long","options":[],"defaultValue":"1","autocomplete":"","multiline":false,"validations":[{"expression":"value \u003e\u003d 0","type":"js","message":"Value must be greater or equal to 0."}]},{"name":"unit","label":"Unit","description":"The time unit for the sampling rate","optional":false,"type":"enum","options":["MILLISECONDS","SECONDS","MINUTES","HOURS","DAYS","WEEKS","MONTHS","YEARS"],"defaultValue":"MILLISECONDS","autocomplete":"","multiline":false,"validations":[]}]}]}"#
    );
}

#[test]
fn features_validations_are_reversed() {
    // `bin` declares "value.length > 0" first.
    let text = processor_text(GROUP_BY, "bin");
    let every = text.find("value.every").unwrap();
    let length = text.find("value.length").unwrap();
    assert!(every < length, "{text}");
}

#[test]
fn features_escape_like_gson() {
    assert_eq!(
        gson_escape(r#"{"a":"<b> & 'c' = d \u2028","e":"\u2029"}"#),
        r#"{"a":"\u003cb\u003e \u0026 \u0027c\u0027 \u003d d \u2028","e":"\u2029"}"#
    );
    assert_eq!(
        gson_escape("{\"x\":\"\u{2028}\u{2029}é\"}"),
        r#"{"x":"\u2028\u2029é"}"#
    );
    for document in std::iter::once(&DOCUMENTS.features).chain(&DOCUMENTS.families) {
        let document = text(document);
        assert!(!document.contains(['<', '>', '&', '=', '\'']), "{document}");
    }
}

#[test]
fn features_derivation_rules() {
    assert_eq!(labelize("least_squares"), "Least Squares");
    assert_eq!(labelize("save_as"), "Save As");
    assert_eq!(labelize("dev"), "Dev");
    assert_eq!(java_cmp("SMA", "Sampler"), Ordering::Less);
    assert_eq!(java_cmp("Sampler", "Save As"), Ordering::Less);
    assert_eq!(
        java_cmp("Align end time", "Align start time"),
        Ordering::Less
    );
    // An undeclared default is the primitive's (or the collection's).
    let bare = |kind| Property {
        name: "count",
        kind,
        feature: Some(Feature {
            label: "Count",
            description: "d",
            default_value: "",
            autocomplete: "",
            validations: &[],
        }),
    };
    let metadata = |p: Property| property(Box::leak(Box::new(p))).unwrap();
    let int = metadata(bare(PropKind::Int));
    assert_eq!((int.name, int.label), ("count", "Count"));
    assert_eq!((int.kind, int.default_value), ("int", Some("0")));
    let array = metadata(bare(PropKind::StringArray));
    assert_eq!((array.kind, array.default_value), ("array", Some("[]")));
    // A property without an annotation is not listed.
    let unlisted = Property {
        feature: None,
        ..bare(PropKind::Int)
    };
    assert!(property(Box::leak(Box::new(unlisted))).is_none());
}

#[test]
fn features_names_compare_like_java_equals_ignore_case() {
    assert_eq!(family_index("group_by"), Some(0));
    assert_eq!(family_index("GROUP_BY"), Some(0));
    assert_eq!(family_index("Aggregators"), Some(1));
    // Java: 'ſ' upper-cases to 'S'.
    assert_eq!(family_index("aggregatorſ"), Some(1));
    assert_eq!(family_index("groupby"), None);
    assert_eq!(family_index("aggregator"), None);
    assert_eq!(family_index(""), None);
}

// ---------------------------------------------------------------------------------------
// Through the router

async fn get(uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let app = router(Arc::new(AppState::new(
        Arc::new(FakeStorage::default()),
        Arc::new(Config::resolve(Settings::default()).unwrap()),
        Arc::new(ServerMetrics::default()),
        None,
    )));
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn features_route_serves_both_families() {
    let (status, headers, body) = get("/api/v1/features").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(text(&body), KAIROSDB_FEATURES);
    // KairosDB's FeaturesResourceTest calls it with a trailing slash.
    let (status, _, body) = get("/api/v1/features/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(&body), KAIROSDB_FEATURES);
}

#[tokio::test]
async fn features_route_per_family_is_case_insensitive() {
    let (status, _, body) = get("/api/v1/features/AGGREGATORS").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(strings(&parse(&body), "name"), AGGREGATOR_NAMES);
    let (status, _, body) = get("/api/v1/features/group_by").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, DOCUMENTS.families[GROUP_BY]);
}

#[tokio::test]
async fn features_route_unknown_feature_is_404() {
    let (status, headers, body) = get("/api/v1/features/InTel").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
    assert_eq!(text(&body), r#"{"errors":["Unknown feature 'intel'"]}"#);
    // Not valid UTF-8 once decoded: still a 404 naming the segment.
    let (status, _, body) = get("/api/v1/features/%FF").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(text(&body), r#"{"errors":["Unknown feature '%ff'"]}"#);
}

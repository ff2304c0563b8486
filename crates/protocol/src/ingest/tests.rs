//! Tests of ingest parsing: KairosDB's fixtures, every Appendix A ingest message,
//! type inference, partial failure, leniency, and property tests (no panics, round trip).

use super::*;
use crate::fixtures;
use kairosdb_model::{Points, SeriesPoints, Tags};
use proptest::prelude::*;

fn parse(body: &str) -> IngestOutcome {
    parse_ingest(body.as_bytes())
}

fn errors(body: &str) -> Vec<String> {
    parse(body).errors
}

fn series<'a>(o: &'a IngestOutcome, metric: &str, ty: DataType) -> &'a SeriesPoints {
    o.batch
        .series
        .iter()
        .find(|s| s.key.metric == metric && s.key.data_type == ty)
        .unwrap_or_else(|| panic!("no {metric} {ty:?} series in {:?}", o.batch))
}

const TAGS: &str = r#""tags":{"host":"a"}"#;

#[test]
fn valid_fixtures() {
    for (name, points) in [
        ("single-metric-long.json", 1),
        ("single-metric-double.json", 1),
        ("multiple-datapoints-metric.json", 3),
        ("multi-metric-long.json", 2),
        ("multi-metric-timestamp-zero.json", 2),
        ("json-metric-parser-multiple-metric.json", 4),
        ("json-metric-parser-metrics-with-type.json", 6),
    ] {
        let o = parse_ingest(&fixtures::read(name));
        assert!(o.errors.is_empty(), "{name}: {:?}", o.errors);
        assert_eq!(o.status(), 204);
        assert_eq!(o.batch.point_count(), points, "{name}");
    }
}

#[test]
fn fixture_contents() {
    let o = parse_ingest(&fixtures::read("multiple-datapoints-metric.json"));
    let l = series(&o, "archive.file.tracked", DataType::Long);
    assert_eq!(
        l.points,
        Points::Long {
            ts: vec![1349109376],
            values: vec![123]
        }
    );
    assert_eq!(l.key.tags, Tags::from_pairs([("host", "test")]));
    let d = series(&o, "archive.file.tracked", DataType::Double);
    assert_eq!(
        d.points,
        Points::Double {
            ts: vec![1349109377, 1349109378],
            values: vec![13.2, 23.1]
        }
    );

    let o = parse_ingest(&fixtures::read("multi-metric-timestamp-zero.json"));
    assert_eq!(
        series(&o, "archive.file.search", DataType::Long)
            .points
            .timestamps(),
        &[0]
    );

    let o = parse_ingest(&fixtures::read("json-metric-parser-multiple-metric.json"));
    let s = series(&o, "archive_file_search", DataType::Long);
    assert_eq!(
        s.key.tags,
        Tags::from_pairs([("host", "server2"), ("customer", "Acme")])
    );
    assert_eq!(
        s.points,
        Points::Long {
            ts: vec![1349109378],
            values: vec![321]
        }
    );

    let o = parse_ingest(&fixtures::read("json-metric-parser-metrics-with-type.json"));
    assert_eq!(
        series(&o, "archive_file_tracked", DataType::String).points,
        Points::String {
            ts: vec![1349109378],
            values: vec!["string_data".into()]
        }
    );
    assert_eq!(
        series(&o, "archive_file_tracked", DataType::Double).points,
        Points::Double {
            ts: vec![1349109377, 1349109378],
            values: vec![13.2, 23.1]
        }
    );
    assert_eq!(
        series(&o, "archive_file_search", DataType::Long).points,
        Points::Long {
            ts: vec![1349109378],
            values: vec![321]
        }
    );
    assert_eq!(
        series(&o, "archive_file_search_text", DataType::String).points,
        Points::String {
            ts: vec![1349109378],
            values: vec!["sweet".into()]
        }
    );
}

#[test]
fn missing_name_fixture() {
    let o = parse_ingest(&fixtures::read("single-metric-missing-name.json"));
    assert_eq!(o.errors, vec!["metric[0].name may not be empty."]);
    assert_eq!(o.status(), 400);
    assert!(o.batch.is_empty());
}

#[test]
fn appendix_a_ingest_messages() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["Invalid json. No content due to end of input."]),
        ("  \n", &["Invalid json. No content due to end of input."]),
        ("123", &["Invalid start of json."]),
        ("\"x", &["Invalid start of json."]),
        ("null", &["Invalid start of json."]),
        (
            r#"[{"datapoints":[[1,1]],"tags":{"a":"b"}}]"#,
            &["metric[0].name may not be null."],
        ),
        (
            r#"[{"name":"","datapoints":[[1,1]],"tags":{"a":"b"}}]"#,
            &["metric[0].name may not be empty."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).value may not be null."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":null,"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).value may not be empty."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":"","tags":{"a":"b"}}]"#,
            &["metric[0](name=m).value may not be empty."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":[],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).value may not be an empty array."],
        ),
        (
            r#"[{"name":"m","value":1,"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).timestamp may not be null."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1}]"#,
            &["metric[0](name=m).tags count must be greater than or equal to 1."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1,"tags":{}}]"#,
            &["metric[0](name=m).tags count must be greater than or equal to 1."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1,"tags":{"":"x"}}]"#,
            &["metric[0](name=m).tag[0].name may not be empty."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1,"tags":{"a":"b","h":null}}]"#,
            &["metric[0](name=m).tag[h].value may not be null."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1,"tags":{"h":""}}]"#,
            &["metric[0](name=m).tag[h].value may not be empty."],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":1,"tags":{"":""}}]"#,
            &[
                "metric[0](name=m).tag[0].name may not be empty.",
                "metric[0](name=m).tag[0].value may not be empty.",
            ],
        ),
        (
            r#"[{"name":"m","datapoints":[[]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].timestamp cannot be null or empty."],
        ),
        (
            r#"[{"name":"m","datapoints":[[1]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].value cannot be null or empty."],
        ),
        (
            r#"[{"name":"m","datapoints":[[null,1]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].timestamp may not be null."],
        ),
        (
            r#"[{"name":"m","datapoints":[[1,null]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].value may not be empty."],
        ),
        (
            r#"[{"name":"m","datapoints":[[1,""]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].value may not be empty."],
        ),
        (
            r#"[{"name":"m","datapoints":[[1,[]]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m).datapoints[0].value may not be an empty array."],
        ),
        (
            r#"[{"name":"m","datapoints":[[1,{"a":1}]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=m) value is an invalid type"],
        ),
        (
            r#"[{"name":"m","timestamp":1,"value":{"a":1},"tags":{"a":"b"}}]"#,
            &["metric[0](name=m) value is an invalid type"],
        ),
        (
            r#"[{"name":"m","type":"complex-number","timestamp":1,"value":1,"tags":{"a":"b"}}]"#,
            &["Unregistered data point type 'complex-number'"],
        ),
        (
            r#"[{"name":"m","datapoints":[[1,1,"blob"]],"tags":{"a":"b"}}]"#,
            &["Unregistered data point type 'blob'"],
        ),
        // The spec's examples (§2.2).
        (
            r#"[{"name":"metricName","timestamp":456,"value":"","tags":{"name":""}}]"#,
            &[
                "metric[0](name=metricName).value may not be empty.",
                "metric[0](name=metricName).tag[name].value may not be empty.",
            ],
        ),
        (
            r#"[{"name":"metric1","datapoints":[[2,]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=metric1).datapoints[0].value may not be empty."],
        ),
        (
            r#"[{"name":"metric1","datapoints":[[,2]],"tags":{"a":"b"}}]"#,
            &["metric[0](name=metric1).datapoints[0].timestamp may not be null."],
        ),
    ];
    for (body, want) in cases {
        let o = parse(body);
        assert_eq!(o.errors, *want, "{body}");
        assert_eq!(o.status(), 400, "{body}");
    }
}

#[test]
fn datapoint_index_does_not_advance_after_a_bad_entry() {
    // ⚠ spec §2.2 / §14.14: j only advances after a stored point.
    let o = parse(r#"{"name":"m","datapoints":[[1,1],[2,""],[3,""],[4,4]],"tags":{"a":"b"}}"#);
    assert_eq!(
        o.errors,
        vec![
            "metric[0](name=m).datapoints[1].value may not be empty.",
            "metric[0](name=m).datapoints[1].value may not be empty."
        ]
    );
    assert_eq!(
        series(&o, "m", DataType::Long).points,
        Points::Long {
            ts: vec![1, 4],
            values: vec![1, 4]
        }
    );
}

#[test]
fn partial_failure_keeps_valid_objects() {
    let body = format!(
        r#"[{{"name":"good1","datapoints":[[1,1]],{TAGS}}},{{"name":"bad","datapoints":[[1,1]]}},{{"name":"good2","timestamp":5,"value":2.5,{TAGS}}},{{"name":"","value":1}}]"#
    );
    let o = parse(&body);
    assert_eq!(
        o.errors,
        vec![
            "metric[1](name=bad).tags count must be greater than or equal to 1.",
            "metric[3].name may not be empty.",
            "metric[3].timestamp may not be null.",
            "metric[3].tags count must be greater than or equal to 1."
        ]
    );
    assert_eq!(o.batch.point_count(), 2);
    assert_eq!(
        series(&o, "good2", DataType::Double).points,
        Points::Double {
            ts: vec![5],
            values: vec![2.5]
        }
    );
}

#[test]
fn syntax_error_keeps_earlier_objects_and_drops_their_errors() {
    let body = format!(
        r#"[{{"name":"ok","datapoints":[[1,1]],{TAGS}}},{{"name":"x"}},{{"name":"y","datapoints":[[1,1]],{TAGS},"bad":}}]"#
    );
    let o = parse(&body);
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    assert!(
        o.errors[0].contains("MalformedJsonException"),
        "{:?}",
        o.errors
    );
    assert_eq!(o.status(), 400);
    assert_eq!(o.batch.point_count(), 1);
}

#[test]
fn truncated_bodies() {
    // Inside a metric object: one EOF error (Gson JsonSyntaxException).
    let o = parse(&format!(
        r#"[{{"name":"ok","datapoints":[[1,1]],{TAGS}}},{{"name":"x""#
    ));
    assert_eq!(o.errors.len(), 1);
    assert!(
        o.errors[0].starts_with("java.io.EOFException: End of input"),
        "{:?}",
        o.errors
    );
    assert_eq!(o.batch.point_count(), 1);
    // Between objects: KairosDB's message twice, earlier validation errors kept.
    let o = parse(&format!(
        r#"[{{"name":"ok","datapoints":[[1,1]],{TAGS}}},{{"name":"nt","value":1}}"#
    ));
    assert_eq!(
        o.errors,
        vec![
            "metric[1](name=nt).timestamp may not be null.",
            "metric[1](name=nt).tags count must be greater than or equal to 1.",
            EOF_MESSAGE,
            EOF_MESSAGE
        ]
    );
    assert_eq!(o.batch.point_count(), 1);
    assert_eq!(errors("["), vec![EOF_MESSAGE, EOF_MESSAGE]);
    assert_eq!(
        errors(&format!(r#"[{{"name":"ok","datapoints":[[1,1]],{TAGS}}},"#)),
        vec![EOF_MESSAGE, EOF_MESSAGE]
    );
    let o = parse(r#"{"name":"m","#);
    assert_eq!(o.errors.len(), 1);
    assert!(o.errors[0].starts_with("java.io.EOFException"));
}

#[test]
fn type_inference_and_conversion() {
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,"123"],[2,"123.3"],[3,"0.000000"],[4,"+5"],[5,"3."],[6,"1e5"],[7,true],[8,1e5],[9,1.0],[10,12345678901234567890],[11,-0.0],[12,"-.5"]],{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        series(&o, "m", DataType::Long).points,
        Points::Long {
            ts: vec![1, 4, 8],
            values: vec![123, 5, 100000]
        }
    );
    match &series(&o, "m", DataType::Double).points {
        Points::Double { ts, values } => {
            assert_eq!(ts, &[2, 3, 9, 10, 11, 12]);
            // Beyond a long: the double it denotes (deviation, issue 17).
            assert_eq!(values[..4], [123.3, 0.0, 1.0, 1.2345678901234567e19]);
            assert!(values[4] == 0.0 && values[4].is_sign_negative());
            assert_eq!(values[5], -0.5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        series(&o, "m", DataType::String).points,
        Points::String {
            ts: vec![5, 6, 7],
            values: vec!["3.".into(), "1e5".into(), "true".into()]
        }
    );
}

#[test]
fn explicit_types() {
    let o = parse(&format!(
        r#"{{"name":"m","type":"long","datapoints":[[1,1.9],[2,"7"],[3,null],[4,1e400]],{TAGS}}}"#
    ));
    // A null value is "may not be empty" unless the type is `string`; a number beyond
    // a long is refused for type long instead of wrapping to 0 (deviation, issue 17).
    assert_eq!(
        o.errors,
        vec![
            "metric[0](name=m).datapoints[2].value may not be empty.",
            "metric[0](name=m).datapoints[3].value 1e400 is out of range for type long (64-bit)."
        ]
    );
    assert_eq!(
        series(&o, "m", DataType::Long).points,
        Points::Long {
            ts: vec![1, 2],
            values: vec![1, 7]
        }
    );
    let o = parse(&format!(
        r#"{{"name":"m","type":"double","datapoints":[[1,2],[2,"2.5"]],{TAGS}}}"#
    ));
    assert_eq!(
        series(&o, "m", DataType::Double).points,
        Points::Double {
            ts: vec![1, 2],
            values: vec![2.0, 2.5]
        }
    );
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,1.50,"string"],[2,"",  "string"]],"type":"long",{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        series(&o, "m", DataType::String).points,
        Points::String {
            ts: vec![1, 2],
            values: vec!["1.50".into(), "".into()]
        }
    );
    // `{"type":"string","value":""}` is valid; `{"value":""}` is not (spec §2.3).
    let o = parse(&format!(
        r#"{{"name":"m","type":"string","timestamp":1,"value":"",{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.batch.point_count(), 1);
}

// Integers beyond a 64-bit long (issue 17, deliberate deviation): KairosDB wraps them
// silently through `BigDecimal.longValue()`; we store the double they denote or refuse.

/// 2^63, the double nearest to ±9223372036854775808 and ±9223372036854775809.
const TWO_POW_63: f64 = (1u64 << 63) as f64;

/// `(timestamp, value)` pairs of the long series and of the double series.
type LongsAndDoubles = (Vec<(i64, i64)>, Vec<(i64, f64)>);

/// Every point of `o`, as longs and as doubles (no string series expected).
fn long_and_double_points(o: &IngestOutcome) -> LongsAndDoubles {
    let mut longs = Vec::new();
    let mut doubles = Vec::new();
    for s in &o.batch.series {
        match &s.points {
            Points::Long { ts, values } => longs.extend(ts.iter().copied().zip(values.clone())),
            Points::Double { ts, values } => doubles.extend(ts.iter().copied().zip(values.clone())),
            Points::String { .. } => panic!("unexpected string series {s:?}"),
        }
    }
    (longs, doubles)
}

#[test]
fn an_integer_beyond_a_long_is_stored_as_the_double_it_denotes() {
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,12345678901234567890],[2,1e19],[3,-1e19],[4,9223372036854775808],[5,-9223372036854775809],[6,18446744073709551617]],{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let (longs, doubles) = long_and_double_points(&o);
    assert_eq!(longs, []);
    assert_eq!(
        doubles,
        [
            (1, 1.2345678901234567e19),
            (2, 1e19),
            (3, -1e19),
            (4, TWO_POW_63),
            (5, -TWO_POW_63),
            (6, 2.0 * TWO_POW_63),
        ]
    );
}

#[test]
fn an_integer_beyond_a_long_in_the_single_point_form_is_stored_as_a_double() {
    for (value, expected) in [
        ("12345678901234567890", 1.2345678901234567e19),
        ("1e19", 1e19),
        ("-1e19", -1e19),
    ] {
        let o = parse(&format!(
            r#"{{"name":"m","timestamp":5,"value":{value},{TAGS}}}"#
        ));
        assert!(o.errors.is_empty(), "{value}: {:?}", o.errors);
        assert_eq!(
            long_and_double_points(&o),
            (vec![], vec![(5, expected)]),
            "{value}"
        );
    }
}

#[test]
fn a_number_beyond_a_long_and_a_finite_double_is_a_400_naming_metric_and_entry() {
    let o = parse(&format!(
        r#"[{{"name":"ok","datapoints":[[1,1]],{TAGS}}},{{"name":"big","datapoints":[[1,1],[2,1e999999],[3,""],[4,1e400],[5,-1e400],[6,2]],{TAGS}}}]"#
    ));
    assert_eq!(o.status(), 400);
    assert_eq!(
        o.errors,
        [
            "metric[1](name=big).datapoints[1].value 1e999999 is out of range: beyond a 64-bit long and not a finite double.",
            // KairosDB's own message keeps its index quirk (spec §14.14); ours names
            // the entry's position.
            "metric[1](name=big).datapoints[1].value may not be empty.",
            "metric[1](name=big).datapoints[3].value 1e400 is out of range: beyond a 64-bit long and not a finite double.",
            "metric[1](name=big).datapoints[4].value -1e400 is out of range: beyond a 64-bit long and not a finite double.",
        ]
    );
    // Like every other invalid entry (spec §2.6): only the refused entries are left
    // out; the valid points of the same and other objects are kept.
    assert_eq!(
        series(&o, "ok", DataType::Long).points,
        Points::Long {
            ts: vec![1],
            values: vec![1]
        }
    );
    assert_eq!(
        series(&o, "big", DataType::Long).points,
        Points::Long {
            ts: vec![1, 6],
            values: vec![1, 2]
        }
    );
    assert_eq!(o.batch.point_count(), 3);
}

#[test]
fn a_non_finite_single_point_value_is_a_400_and_stores_nothing_of_that_object() {
    let o = parse(&format!(
        r#"{{"name":"m","timestamp":5,"value":-1e400,{TAGS}}}"#
    ));
    assert_eq!(
        o.errors,
        ["metric[0](name=m).value -1e400 is out of range: beyond a 64-bit long and not a finite double."]
    );
    assert!(o.batch.is_empty());
}

#[test]
fn a_long_out_of_range_message_shortens_a_very_long_number() {
    let digits = "9".repeat(500);
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,{digits}]],{TAGS}}}"#
    ));
    assert_eq!(
        o.errors,
        [format!(
            "metric[0](name=m).datapoints[0].value {}... is out of range: beyond a 64-bit long and not a finite double.",
            "9".repeat(40)
        )]
    );
}

#[test]
fn skip_validate_does_not_store_a_wrapped_or_infinite_value() {
    let o = parse(&format!(
        r#"{{"name":"m","skip_validate":true,"datapoints":[[1,1e19],[2,1e400]],{TAGS}}}"#
    ));
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    assert!(
        o.errors[0].ends_with("not a finite double."),
        "{:?}",
        o.errors
    );
    assert_eq!(long_and_double_points(&o), (vec![], vec![(1, 1e19)]));
}

#[test]
fn an_explicit_long_type_refuses_a_number_beyond_a_long() {
    let o = parse(&format!(
        r#"[{{"name":"m","type":"long","datapoints":[[1,12345678901234567890],[2,5],[3,[1e19]]],{TAGS}}},{{"name":"e","datapoints":[[1,1e19,"long"],[2,-1e19,"double"]],{TAGS}}},{{"name":"s","type":"long","timestamp":1,"value":1e19,{TAGS}}}]"#
    ));
    assert_eq!(
        o.errors,
        [
            "metric[0](name=m).datapoints[0].value 12345678901234567890 is out of range for type long (64-bit).",
            "metric[0](name=m).datapoints[2].value 1e19 is out of range for type long (64-bit).",
            "metric[1](name=e).datapoints[0].value 1e19 is out of range for type long (64-bit).",
            "metric[2](name=s).value 1e19 is out of range for type long (64-bit).",
        ]
    );
    assert_eq!(
        series(&o, "m", DataType::Long).points,
        Points::Long {
            ts: vec![2],
            values: vec![5]
        }
    );
    assert_eq!(
        series(&o, "e", DataType::Double).points,
        Points::Double {
            ts: vec![2],
            values: vec![-1e19]
        }
    );
}

#[test]
fn integers_that_fit_a_long_stay_longs() {
    // Exponent text without a `.` is typed long by KairosDB's rule (spec §2.3) and kept
    // so when it denotes a whole number that fits (`1e-5` does not: see below).
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,9223372036854775807],[2,-9223372036854775808],[3,-0],[4,1e3],[5,1E+18],[6,-9.2e18],[8,0]],{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let (longs, doubles) = long_and_double_points(&o);
    assert_eq!(
        longs,
        [
            (1, i64::MAX),
            (2, i64::MIN),
            (3, 0),
            (4, 1000),
            (5, 1_000_000_000_000_000_000),
            (8, 0),
        ]
    );
    // `-9.2e18` has a `.`: a double, as before.
    assert_eq!(doubles, [(6, -9.2e18)]);
    let o = parse(&format!(
        r#"{{"name":"m","timestamp":1,"value":-9223372036854775808,{TAGS}}}"#
    ));
    assert_eq!(long_and_double_points(&o), (vec![(1, i64::MIN)], vec![]));
}

#[test]
fn single_point_forms_and_fields() {
    let o = parse(&format!(
        r#"{{"name":"m","time":"100","timestamp":5,"value":"7","ttl":"60","datapoints":[[1,1]],"x":{{"deep":[1,[2]]}},{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let s = series(&o, "m", DataType::Long);
    assert_eq!(s.ttl_secs, 60);
    assert_eq!(
        s.points,
        Points::Long {
            ts: vec![100, 1],
            values: vec![7, 1]
        },
        "time wins, single point first"
    );
    let o = parse(&format!(
        r#"{{"name":"m","timestamp":1,"value":1,"ttl":-5,{TAGS}}}"#
    ));
    assert_eq!(o.batch.series[0].ttl_secs, 0);
    // Tag values that are numbers/booleans keep their text; tags sorted; any characters.
    let o = parse(
        r#"{"name":"bad:你好name","timestamp":1,"value":1,"tags":{"z":1.50,"a:b":true,"k=v":"x y"}}"#,
    );
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        o.batch.series[0].key.tags,
        Tags::from_pairs([("a:b", "true"), ("k=v", "x y"), ("z", "1.50")])
    );
    assert_eq!(o.batch.series[0].key.metric, "bad:你好name");
    // Escaped strings.
    let o = parse(r#"{"name":"m\u0041\n","timestamp":1,"value":"s\"q","tags":{"h\u00e9":"v\\"}}"#);
    assert_eq!(o.batch.series[0].key.metric, "mA\n");
    assert_eq!(
        o.batch.series[0].key.tags,
        Tags::from_pairs([("hé", "v\\")])
    );
}

#[test]
fn skip_validate() {
    let o = parse(r#"{"name":"m","skip_validate":true,"datapoints":[[1,1]]}"#);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.batch.series[0].key.tags.is_empty());
    // Deliberate deviation (spec §14.13): names are still required.
    assert_eq!(
        errors(r#"{"skip_validate":"TRUE","datapoints":[[1,1]]}"#),
        vec!["metric[0].name may not be null."]
    );
}

#[test]
fn gson_syntax_class_errors() {
    for body in [
        r#"[{"name":"m","timestamp":"abc","value":1,"tags":{"a":"b"}}]"#,
        r#"[{"name":"m","timestamp":1.5,"value":1,"tags":{"a":"b"}}]"#,
        r#"[{"name":"m","ttl":1.5,"tags":{"a":"b"}}]"#,
        r#"[{"name":{},"tags":{"a":"b"}}]"#,
        r#"[{"name":"m","tags":{"a":"b","a":"c"}}]"#,
        r#"[{"name":"m","tags":{"a":{}}}]"#,
        r#"[{"name":"m","tags":"x"}]"#,
        r#"[{"name":"m","datapoints":[1,2],"tags":{"a":"b"}}]"#,
        r#"[{"name":"m","datapoints":{},"tags":{"a":"b"}}]"#,
        r#"[{"name":"m","skip_validate":1}]"#,
        r#"[1]"#,
        r#"[[]]"#,
        r#"abc"#,
        r#"/* comment */ []"#,
    ] {
        let o = parse(body);
        assert_eq!(o.errors.len(), 1, "{body}: {:?}", o.errors);
        assert_eq!(o.status(), 400, "{body}: {:?}", o.errors);
        assert!(o.batch.is_empty(), "{body}");
    }
    assert!(errors(r#"[{"name":"m","tags":{"a":"b","a":"c"}}]"#)[0].contains("duplicate key: a"));
}

#[test]
fn runtime_exceptions_are_500_and_keep_earlier_points() {
    let o = parse(&format!(
        r#"[{{"name":"a","datapoints":[[1,1]],{TAGS}}},{{"name":"m","datapoints":[[1,1],["abc",2],[3,3]],{TAGS}}}]"#
    ));
    assert_eq!(o.status(), 500);
    assert_eq!(
        o.errors,
        vec!["java.lang.NumberFormatException: For input string: \"abc\""]
    );
    assert_eq!(
        o.batch.point_count(),
        2,
        "points before the exception were stored"
    );
    assert_eq!(parse(r#"[null]"#).status(), 500);
    assert_eq!(
        parse(&format!(r#"{{"name":"m","datapoints":[null],{TAGS}}}"#)).status(),
        500
    );
    assert_eq!(
        parse(&format!(
            r#"{{"name":"m","type":"long","datapoints":[[1,"x"]],{TAGS}}}"#
        ))
        .status(),
        500
    );
    assert_eq!(
        parse(&format!(
            r#"{{"name":"m","datapoints":[[1,[1,2]]],{TAGS}}}"#
        ))
        .status(),
        500
    );
}

#[test]
fn lenient_bodies() {
    let o = parse(
        "[{name: 'm', // comment\n tags: {host: a}, datapoints: [[1, 2], [2, NaN], [3, abc]] /* x */ ; type = 'string'}]",
    );
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        series(&o, "m", DataType::String).points,
        Points::String {
            ts: vec![1, 2, 3],
            values: vec!["2".into(), "NaN".into(), "abc".into()]
        }
    );
    // Raw control characters inside strings (Gson accepts them even in strict mode).
    let o = parse("{\"name\":\"a\tb\",\"timestamp\":1,\"value\":1,\"tags\":{\"h\":\"x\"}}");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.batch.series[0].key.metric, "a\tb");
    // Invalid UTF-8 becomes U+FFFD, as Java's decoder does.
    let o =
        parse_ingest(b"{\"name\":\"a\xffb\",\"timestamp\":1,\"value\":1,\"tags\":{\"h\":\"x\"}}");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.batch.series[0].key.metric, "a\u{FFFD}b");
    // Trailing bytes after the top-level value are never read.
    assert!(parse(&format!(
        r#"{{"name":"m","timestamp":1,"value":1,{TAGS}}} garbage"#
    ))
    .errors
    .is_empty());
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = format!(r#"[{{"name":"m","x":{}}}]"#, "[".repeat(200_000));
    assert_eq!(parse(&deep).status(), 400);
    let deep_closed = format!(
        r#"[{{"name":"m","timestamp":1,"value":1,{TAGS},"x":{}{}}}]"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(parse(&deep_closed).errors.is_empty());
    let deep_value = format!(
        r#"[{{"name":"m","timestamp":1,"value":{}1{},{TAGS}}}]"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let _ = parse(&deep_value);
    let _ = parse_ingest(&[0xff, 0xfe, 0x00, b'[', b'{']);
}

/// Writes a batch as KairosDB ingest JSON (one metric object per series).
fn to_json(batch: &WriteBatch) -> String {
    let mut out = String::from("[");
    for (i, s) in batch.series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        lenient::write_json_string(&mut out, &s.key.metric);
        out.push_str(&format!(
            ",\"type\":\"{}\",\"ttl\":{},\"tags\":{{",
            s.key.data_type.ingest_name(),
            s.ttl_secs
        ));
        for (j, (k, v)) in s.key.tags.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            lenient::write_json_string(&mut out, k);
            out.push(':');
            lenient::write_json_string(&mut out, v);
        }
        out.push_str("},\"datapoints\":[");
        let ts = s.points.timestamps();
        for (j, t) in ts.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let v = match &s.points {
                Points::Long { values, .. } => values[j].to_string(),
                Points::Double { values, .. } => format!("{:?}", values[j]),
                Points::String { values, .. } => {
                    let mut q = String::new();
                    lenient::write_json_string(&mut q, &values[j]);
                    q
                }
            };
            out.push_str(&format!("[{t},{v}]"));
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

fn arb_batch() -> impl Strategy<Value = WriteBatch> {
    let name = "[a-z.\u{e9}\u{4f60}:= ]{1,8}";
    let tags = proptest::collection::btree_map("[a-z\u{e9}:=]{1,5}", "[a-z0-9 \"\\\\]{1,5}", 1..4);
    let points = prop_oneof![
        proptest::collection::vec((any::<i64>(), any::<i64>()), 1..20).prop_map(|v| {
            let (ts, values) = v.into_iter().unzip();
            Points::Long { ts, values }
        }),
        proptest::collection::vec(
            (
                any::<i64>(),
                any::<f64>().prop_filter("finite", |f| f.is_finite())
            ),
            1..20
        )
        .prop_map(|v| {
            let (ts, values) = v.into_iter().unzip();
            Points::Double { ts, values }
        }),
        proptest::collection::vec((any::<i64>(), ".{0,6}"), 1..5).prop_map(|v| {
            let (ts, values) = v.into_iter().unzip();
            Points::String { ts, values }
        }),
    ];
    proptest::collection::vec((name, tags, 0u32..100_000, points), 1..5).prop_map(|v| {
        let mut b = BatchBuilder::new();
        for (name, tags, ttl, points) in v {
            let tags: Vec<(String, String)> = tags.into_iter().collect();
            let slot = b.slot_sorted(&name, points.data_type(), &tags, ttl);
            let ts = points.timestamps().to_vec();
            match points {
                Points::Long { values, .. } => b.extend_long(slot, &ts, &values),
                Points::Double { values, .. } => b.extend_double(slot, &ts, &values),
                Points::String { values, .. } => {
                    for (t, v) in ts.into_iter().zip(values) {
                        b.push_string(slot, t, v);
                    }
                }
            }
        }
        b.finish()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_ingest(&body);
    }

    #[test]
    fn json_like_bytes_never_panic(body in r#"[\[\]{}",:0-9a-z \-.'/*#;=nule]{0,120}"#) {
        let _ = parse_ingest(body.as_bytes());
    }

    #[test]
    fn mutated_bodies_never_panic(cut in 0usize..2000, pos in 0usize..2000, byte in any::<u8>()) {
        let mut body = fixtures::read("json-metric-parser-metrics-with-type.json");
        body.extend_from_slice(format!(r#"[{{"name":"m","datapoints":[[1,2.5],[2,-3],[3,"x"]],{TAGS}}}]"#).as_bytes());
        let p = pos % body.len();
        body[p] = byte;
        body.truncate(cut.max(1));
        let _ = parse_ingest(&body);
    }

    /// The fast scanner and Java's slow conversions agree: quoting the timestamps
    /// forces every entry through the slow path.
    #[test]
    fn fast_and_slow_paths_agree(points in proptest::collection::vec((any::<i64>(), "-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,17})?"), 1..30)) {
        let fast: Vec<String> = points.iter().map(|(t, v)| format!("[{t},{v}]")).collect();
        let slow: Vec<String> = points.iter().map(|(t, v)| format!("[\"{t}\",{v}]")).collect();
        let a = parse(&format!(r#"{{"name":"m","datapoints":[{}],{TAGS}}}"#, fast.join(",")));
        let b = parse(&format!(r#"{{"name":"m","datapoints":[{}],{TAGS}}}"#, slow.join(",")));
        prop_assert!(a.errors.is_empty() && b.errors.is_empty(), "{:?} {:?}", a.errors, b.errors);
        let mut sa = a.batch.series.clone();
        let mut sb = b.batch.series.clone();
        sa.sort_by_key(|s| s.key.data_type);
        sb.sort_by_key(|s| s.key.data_type);
        prop_assert_eq!(sa, sb);
    }

    #[test]
    fn round_trip(batch in arb_batch()) {
        let json = to_json(&batch);
        let o = parse_ingest(json.as_bytes());
        prop_assert!(o.errors.is_empty(), "{:?}\n{}", o.errors, json);
        prop_assert_eq!(o.batch, batch);
    }
}

// Numbers written with an exponent and a fraction (issue 17, deliberate deviation):
// KairosDB types them long (no `.`) and cuts the fraction; Python's and JavaScript's JSON
// write small floats so (`1e-05`).

#[test]
fn a_fraction_written_with_an_exponent_is_stored_as_the_double_it_denotes() {
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,1e-05],[2,15e-1],[3,-25E-1],[4,1e3],[5,0e-5],[6,1e-99999999999999999999]],{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let (longs, doubles) = long_and_double_points(&o);
    assert_eq!(longs, [(4, 1000), (5, 0)], "whole numbers stay longs");
    assert_eq!(doubles, [(1, 1e-5), (2, 1.5), (3, -2.5), (6, 0.0)]);
}

#[test]
fn a_fraction_written_with_an_exponent_and_type_long_is_truncated_as_asked() {
    let o = parse(&format!(
        r#"{{"name":"m","type":"long","datapoints":[[1,15e-1]],{TAGS}}}"#
    ));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(long_and_double_points(&o), (vec![(1, 1)], vec![]));
}

#[test]
fn a_timestamp_beyond_a_long_is_a_400_naming_metric_and_entry() {
    let o = parse(&format!(
        r#"{{"name":"m","datapoints":[[1,1],[1e19,5],[-12345678901234567890,6],[9223372036854775807,7]],{TAGS}}}"#
    ));
    assert_eq!(o.status(), 400);
    assert_eq!(
        o.errors,
        [
            "metric[0](name=m).datapoints[1].timestamp 1e19 is out of range: not a 64-bit millisecond timestamp.",
            "metric[0](name=m).datapoints[2].timestamp -12345678901234567890 is out of range: not a 64-bit millisecond timestamp.",
        ]
    );
    let (longs, _) = long_and_double_points(&o);
    assert_eq!(longs, [(1, 1), (i64::MAX, 7)]);
}

// The hand-read common shape (`common.rs`) answers exactly as serde does, or leaves the
// body to serde.

/// Both passes over `body`: the common-shape reader's outcome (`None` if it left the
/// body to serde) and serde's.
fn both_passes(body: &str) -> (Option<IngestOutcome>, IngestOutcome) {
    let fast = common::run(body.as_bytes()).map(Run::finish_with_end);
    (fast, run(body.as_bytes()).finish_with_end())
}

fn assert_same_outcome(a: &IngestOutcome, b: &IngestOutcome, body: &str) {
    assert_eq!(a.errors, b.errors, "{body}");
    assert_eq!(a.internal_error, b.internal_error, "{body}");
    assert_eq!(a.batch, b.batch, "{body}");
}

#[test]
fn the_common_shape_is_read_without_serde_and_answers_as_serde_does() {
    let bodies = [
        r#"[{"name":"m","tags":{"host":"a","dc":"x"},"datapoints":[[1,2],[2,2.5],[3,-0]]}]"#.to_owned(),
        format!(" [ {{ \"datapoints\" : [ [ 1 , 2 ] ] , {TAGS} , \"name\" : \"m\" }} ,\n{{\"name\":\"n\",\"type\":\"double\",\"datapoints\":[[5,1]],{TAGS}}} ] trailing"),
        "[]".to_owned(),
        format!(r#"[{{"name":"m","type":"nope","datapoints":[[1,2]],{TAGS}}}]"#),
        // Validation errors are the shared `commit`'s: they stay on the fast path.
        format!(r#"[{{"name":"","datapoints":[[1,2]],{TAGS}}},{{"name":"m","tags":{{}},"datapoints":[[1,2]]}},{{"name":"m","tags":{{"h":""}},"datapoints":[]}},{{}}]"#),
        "[{\"name\":\"caf\u{e9}\",\"tags\":{\"h\u{4f60}\":\"v\"},\"datapoints\":[[1,2]]}]".to_owned(),
    ];
    for body in &bodies {
        let (fast, slow) = both_passes(body);
        let fast = fast.unwrap_or_else(|| panic!("left to serde: {body}"));
        assert_same_outcome(&fast, &slow, body);
    }
}

#[test]
fn anything_outside_the_common_shape_is_left_to_serde() {
    let bodies = [
        // Not an array, escapes, other members, other numbers, duplicates.
        format!(r#"{{"name":"m","datapoints":[[1,2]],{TAGS}}}"#),
        format!(r#"[{{"name":"m\"","datapoints":[[1,2]],{TAGS}}}]"#),
        r#"[{"name":"m","tags":{"h":"a\\b"},"datapoints":[[1,2]]}]"#.to_owned(),
        format!(r#"[{{"name":"m","ttl":"5","datapoints":[[1,2]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","ttl":5.0,"datapoints":[[1,2]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","ttl":99999999999,"datapoints":[[1,2]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","timestamp":1,"value":2,{TAGS}}}]"#),
        format!(r#"[{{"name":"m","datapoints":[[01,2]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","datapoints":[[1,02]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","datapoints":[[1,2e3]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","datapoints":[[1,"2"]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","datapoints":[[1,2,"long"]],{TAGS}}}]"#),
        format!(r#"[{{"name":"m","name":"n","datapoints":[[1,2]],{TAGS}}}]"#),
        r#"[{"name":"m","tags":{"h":"a","h":"b"},"datapoints":[[1,2]]}]"#.to_owned(),
        format!(r#"[{{"name":null,"datapoints":[[1,2]],{TAGS}}}]"#),
        r#"[{"name":"m","tags":{"h":null},"datapoints":[[1,2]]}]"#.to_owned(),
        format!("[{{\"name\":\"m\ttab\",\"datapoints\":[[1,2]],{TAGS}}}]"),
        // Syntax errors, and Gson's leniency.
        format!(r#"[{{"name":"m","datapoints":[[1,2]],{TAGS}}}"#),
        format!(r#"[{{"name":"m","datapoints":[[1,2]],{TAGS},}}]"#),
        format!(r#"[{{name:"m","datapoints":[[1,2]],{TAGS}}}]"#),
    ];
    for body in &bodies {
        let (fast, _) = both_passes(body);
        assert!(fast.is_none(), "read by hand: {body}");
    }
    let invalid_utf8 = b"[{\"name\":\"m\xff\",\"datapoints\":[[1,2]],\"tags\":{\"h\":\"a\"}}]";
    assert!(common::run(invalid_utf8).is_none());
}

/// Bodies near the common shape: mostly valid objects (so the hand reader has work),
/// each member drawn from what the reader accepts and what it must leave to serde.
fn arb_near_common_body() -> impl Strategy<Value = String> {
    let string = prop_oneof![
        60 => Just("\"m\""),
        1 => Just("\"\""),
        2 => Just("\"a b\""),
        1 => Just("\"\\u00e9\""),
        1 => Just("\"q\\\"\""),
        2 => Just("\"\u{e9}\u{4f60}\""),
        1 => Just("null"),
        1 => Just("5"),
    ];
    let rare_number = prop_oneof![
        Just("007"),
        Just("1."),
        Just("1e3"),
        Just("1234567890123456789"),
        Just("9007199254740993.5"),
        Just("\"4\""),
        Just("-"),
    ];
    let timestamp = prop_oneof![
        40 => prop_oneof![Just("0"), Just("-0"), Just("12"), Just("123456789012345678")],
        1 => rare_number.clone(),
    ];
    let value = prop_oneof![
        40 => prop_oneof![Just("0"), Just("-0"), Just("12"), Just("-3.25"), Just("0.5")],
        1 => rare_number,
    ];
    let entry = (timestamp, value, 0..12usize).prop_map(|(t, v, shape)| match shape {
        0 => format!("[ {t} , {v} ]"),
        1 => format!("[{t},{v},\"long\"]"),
        _ => format!("[{t},{v}]"),
    });
    let datapoints = prop_oneof![
        20 => proptest::collection::vec(entry, 0..4).prop_map(|e| format!("[{}]", e.join(","))),
        1 => Just("null".to_owned()),
        1 => Just("{}".to_owned()),
    ];
    let tag_name = prop_oneof![
        20 => Just("\"a\""),
        20 => Just("\"b\""),
        20 => Just("\"c\""),
        1 => string.clone(),
    ];
    let tags = prop_oneof![
        20 => proptest::collection::vec((tag_name, string.clone()), 0..3).prop_map(|t| {
            let t: Vec<String> = t.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", t.join(","))
        }),
        1 => Just("null".to_owned()),
    ];
    let ty = prop_oneof![
        5 => Just("\"long\""),
        5 => Just("\"double\""),
        1 => Just("\"nope\""),
        1 => Just("null"),
    ];
    let ttl = prop_oneof![
        5 => Just("5"),
        5 => Just("-1"),
        1 => Just("05"),
        1 => Just("1.0"),
        1 => Just("3000000000"),
    ];
    // Each object: its name, tags and datapoints (in a drawn order), sometimes a type, a
    // ttl or a member the reader leaves to serde.
    let object = (
        string,
        tags,
        datapoints,
        proptest::option::weighted(0.2, ty),
        proptest::option::weighted(0.2, ttl),
        proptest::option::weighted(0.05, Just("\"skip_validate\":true")),
        0..6usize,
    )
        .prop_map(|(name, tags, dp, ty, ttl, other, order)| {
            let mut m = vec![
                format!("\"name\":{name}"),
                format!("\"tags\":{tags}"),
                format!("\"datapoints\":{dp}"),
            ];
            m.rotate_left(order % 3);
            if order >= 3 {
                m.swap(0, 1);
            }
            m.extend(ty.map(|t| format!("\"type\":{t}")));
            m.extend(ttl.map(|t| format!("\"ttl\":{t}")));
            m.extend(other.map(str::to_owned));
            format!("{{{}}}", m.join(","))
        });
    (
        proptest::collection::vec(object, 0..3),
        proptest::option::weighted(0.1, any::<prop::sample::Index>()),
    )
        .prop_map(|(o, cut)| {
            let body = format!("[{}]", o.join(","));
            match cut {
                Some(at) => {
                    let at = (0..=at.index(body.len()))
                        .rev()
                        .find(|&i| body.is_char_boundary(i));
                    body[..at.unwrap_or(0)].to_owned()
                }
                None => body,
            }
        })
}

proptest! {
    /// The word-at-a-time scan finds the byte the byte-by-byte scan finds, at every
    /// offset of bytes drawn around the three it looks for.
    #[test]
    fn string_end_finds_the_first_quote_backslash_or_control_byte(
        bytes in proptest::collection::vec(
            prop::sample::select(vec![b'a', b'"', b'\\', 0x1f, 0x20, 0x00, 0x21, 0x5c ^ 0x80, 0x7f, 0x80, 0xff, 0xa2, 0xdc]),
            0..40,
        )
    ) {
        for start in 0..=bytes.len() {
            let b = &bytes[start..];
            let expected = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(common::string_end(b), expected, "{:?}", b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the hand reader accepts, it answers exactly as serde.
    #[test]
    fn the_common_shape_reader_agrees_with_serde(body in arb_near_common_body()) {
        let (fast, slow) = both_passes(&body);
        if let Some(fast) = fast {
            assert_same_outcome(&fast, &slow, &body);
        }
    }
}

#[test]
fn a_tsbs_body_is_read_by_hand() {
    let objects: Vec<String> = (0..50)
        .map(|h| {
            format!(
                r#"{{"name":"cpu.usage_user","tags":{{"hostname":"host_{h}","region":"eu"}},"ttl":{h},"datapoints":[[10,1],[20,-2],[30,3.5]]}}"#
            )
        })
        .collect();
    let body = format!("[{}]", objects.join(","));
    let (fast, slow) = both_passes(&body);
    let fast = fast.expect("the common shape");
    assert_same_outcome(&fast, &slow, &body);
    assert_eq!(fast.batch.point_count(), 150);
}

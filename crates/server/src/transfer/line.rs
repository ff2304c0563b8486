//! The export line: one KairosDB ingest JSON object per line, exactly the shape Java
//! KairosDB's `Main -c export` writes (`Main.ExportQueryCallback`):
//!
//! ```text
//! {"name":"cpu","tags":{"dc":"x","host":"a"},"datapoints":[[1700000000000,5,"long"],[1700000060000,0.1,"double"]]}
//! ```
//!
//! Every point carries its type as the third element (KairosDB writes
//! `DataPoint.getApiDataType()` there), so a whole double such as `5.0`, which org.json
//! prints as `5`, is read back as a double and not inferred to be a long. Numbers are
//! printed as the query response prints them (`kairosdb_protocol::response`, org.json's
//! `Double.toString` with shortest round-trip digits), so a double keeps its bits and a
//! long its value; strings are escaped as org.json does. Tags are sorted by name (KairosDB
//! passes a `SortedMap`). A `ttl` member is added only for points that have one (never
//! by KairosDB, whose export loses TTLs).
//!
//! Reading lines back is not here: import hands each line to
//! `kairosdb_protocol::ingest::parse_ingest`, the parser of `POST /api/v1/datapoints`.

use kairosdb_model::Points;
use kairosdb_protocol::response::{write_i64, write_java_double, write_json_string};

/// Appends one line (with its `\n`) for `points[from..to]` of a series. Returns how many
/// points were left out because they cannot be written as JSON (NaN or ±Infinity, which
/// org.json refuses too; the HTTP API never stores them, see `writer::validate`).
pub fn write_line<'a>(
    out: &mut Vec<u8>,
    metric: &str,
    tags: impl Iterator<Item = (&'a str, &'a str)>,
    ttl_secs: u32,
    points: &Points,
    range: std::ops::Range<usize>,
) -> usize {
    out.extend_from_slice(b"{\"name\":");
    write_json_string(out, metric);
    out.extend_from_slice(b",\"tags\":{");
    for (i, (name, value)) in tags.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(out, name);
        out.push(b':');
        write_json_string(out, value);
    }
    out.push(b'}');
    if ttl_secs > 0 {
        out.extend_from_slice(b",\"ttl\":");
        write_i64(out, i64::from(ttl_secs));
    }
    out.extend_from_slice(b",\"datapoints\":[");
    let mut first = true;
    let mut skipped = 0;
    let mut open = |out: &mut Vec<u8>, t: i64| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'[');
        write_i64(out, t);
        out.push(b',');
    };
    match points {
        Points::Long { ts, values } => {
            for i in range {
                open(out, ts[i]);
                write_i64(out, values[i]);
                out.extend_from_slice(b",\"long\"]");
            }
        }
        Points::Double { ts, values } => {
            for i in range {
                if !values[i].is_finite() {
                    skipped += 1;
                    continue;
                }
                open(out, ts[i]);
                write_java_double(out, values[i]);
                out.extend_from_slice(b",\"double\"]");
            }
        }
        Points::String { ts, values } => {
            for i in range {
                open(out, ts[i]);
                write_json_string(out, &values[i]);
                out.extend_from_slice(b",\"string\"]");
            }
        }
    }
    out.extend_from_slice(b"]}\n");
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairosdb_model::{Tags, WriteBatch};
    use kairosdb_protocol::ingest::parse_ingest;

    fn line(metric: &str, tags: &[(&str, &str)], ttl: u32, points: &Points) -> String {
        let mut out = Vec::new();
        let skipped = write_line(
            &mut out,
            metric,
            tags.iter().copied(),
            ttl,
            points,
            0..points.len(),
        );
        assert_eq!(skipped, 0);
        String::from_utf8(out).unwrap()
    }

    fn parse(line: &str) -> WriteBatch {
        let outcome = parse_ingest(line.as_bytes());
        assert!(outcome.errors.is_empty(), "{line}: {:?}", outcome.errors);
        outcome.batch
    }

    #[test]
    fn writes_kairosdb_export_shape() {
        let points = Points::Long {
            ts: vec![1, 2],
            values: vec![5, -7],
        };
        assert_eq!(
            line("cpu", &[("dc", "x"), ("host", "a")], 0, &points),
            "{\"name\":\"cpu\",\"tags\":{\"dc\":\"x\",\"host\":\"a\"},\"datapoints\":[[1,5,\"long\"],[2,-7,\"long\"]]}\n"
        );
        let points = Points::Double {
            ts: vec![3, 4, 5],
            values: vec![5.0, 0.1, 1e300],
        };
        assert_eq!(
            line("d", &[("h", "a")], 60, &points),
            "{\"name\":\"d\",\"tags\":{\"h\":\"a\"},\"ttl\":60,\"datapoints\":[[3,5,\"double\"],[4,0.1,\"double\"],[5,1.0E300,\"double\"]]}\n"
        );
    }

    /// Every value comes back from the ingest parser with its type and its bits.
    #[test]
    fn round_trips_through_the_ingest_parser() {
        let doubles = vec![
            0.1,
            1e300,
            -0.0,
            5.0,
            1e7,
            f64::MIN_POSITIVE,
            f64::MAX,
            4.9e-324,
            123456.789,
            -2.5e-8,
            1.0 / 3.0,
        ];
        let ts: Vec<i64> = (0..doubles.len() as i64).map(|i| i - 3).collect();
        let cases = [
            Points::Double {
                ts: ts.clone(),
                values: doubles,
            },
            Points::Long {
                ts: vec![i64::MIN, 0, i64::MAX],
                values: vec![i64::MIN, 0, i64::MAX],
            },
            Points::String {
                ts: vec![1, 2, 3, 4],
                values: vec![
                    "".into(),
                    "12".into(),
                    "quote \" slash \\ </tag> \u{1} \u{2028} 你好".into(),
                    "1.5".into(),
                ],
            },
        ];
        for points in cases {
            let text = line("m \"x\"", &[("host", "a=b:c"), ("z", "ü")], 3600, &points);
            let batch = parse(&text);
            assert_eq!(batch.series.len(), 1, "{text}");
            let s = &batch.series[0];
            assert_eq!(s.key.metric, "m \"x\"");
            assert_eq!(
                s.key.tags,
                Tags::from_pairs([("host", "a=b:c"), ("z", "ü")])
            );
            assert_eq!(s.ttl_secs, 3600);
            match (&s.points, &points) {
                (Points::Double { ts: a, values: x }, Points::Double { ts: b, values: y }) => {
                    assert_eq!(a, b);
                    let bits = |v: &Vec<f64>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(x), bits(y), "{text}");
                }
                (got, want) => assert_eq!(got, want, "{text}"),
            }
        }
    }

    #[test]
    fn leaves_out_non_finite_doubles_and_counts_them() {
        let points = Points::Double {
            ts: vec![1, 2, 3],
            values: vec![f64::NAN, 2.5, f64::INFINITY],
        };
        let mut out = Vec::new();
        let skipped = write_line(&mut out, "m", [("h", "a")].into_iter(), 0, &points, 0..3);
        assert_eq!(skipped, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"name\":\"m\",\"tags\":{\"h\":\"a\"},\"datapoints\":[[2,2.5,\"double\"]]}\n"
        );
    }

    #[test]
    fn writes_only_the_requested_range() {
        let points = Points::Long {
            ts: vec![1, 2, 3],
            values: vec![10, 20, 30],
        };
        let mut out = Vec::new();
        write_line(&mut out, "m", [("h", "a")].into_iter(), 0, &points, 1..3);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("[[2,20,\"long\"],[3,30,\"long\"]]}\n"));
    }
}

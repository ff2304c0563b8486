//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every route (issue 22), written
//! by hand in `crates/server/openapi.json` and compiled into the binary.
//!
//! The document is kept true two ways: the test below compares its paths and methods with
//! the route table ([`super::routes`]), both ways, and `scripts/schemathesis.sh` (run by
//! `tests/schemathesis.rs`) fuzzes the running server from it, checking that no request
//! gets a 5xx and that every answer's status, content type and body are the documented
//! ones.
//!
//! Not here: what the routes do. Listed in the document: every path and method of the
//! table, `OPTIONS` (the CORS pre-flight) of each API route included. Not listed: `HEAD`
//! (axum answers it wherever `GET` is), the web UI's files (the router's fallback serves
//! them for paths outside `/api/`; the document says so) and the 405 of a known path.

use axum::http::StatusCode;
use axum::response::Response;

use super::json_response;

/// The document, as written.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Response {
    json_response(StatusCode::OK, DOCUMENT.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// The operations (method keys) a path item can hold.
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document_json() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// `(path, METHOD)` of every operation of the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document_json();
        let paths = doc["paths"].as_object().expect("paths is an object");
        let mut ops = BTreeSet::new();
        for (path, item) in paths {
            let item = item.as_object().expect("a path item is an object");
            for key in item.keys() {
                if METHODS.contains(&key.as_str()) {
                    ops.insert((path.clone(), key.to_uppercase()));
                }
            }
        }
        ops
    }

    /// `(path, METHOD)` of every route the router serves.
    fn routed() -> BTreeSet<(String, String)> {
        super::super::routes()
            .iter()
            .flat_map(|r| r.methods.iter().map(|m| (r.path.to_owned(), m.to_string())))
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let (documented, routed) = (documented(), routed());
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes missing from openapi.json: {undocumented:?}; \
             operations of openapi.json no route serves: {unrouted:?}"
        );
        // Both sides are real lists, not two empty ones.
        assert!(routed.len() > 40, "{routed:?}");
    }

    #[test]
    fn the_route_table_lists_each_path_and_method_once() {
        let routes = super::super::routes();
        let mut seen = BTreeSet::new();
        for r in &routes {
            for m in &r.methods {
                assert!(seen.insert((r.path, m.clone())), "{} {m} twice", r.path);
            }
        }
    }

    /// Every `$ref` names something the document defines, and every operation documents
    /// its path parameters (on the path item or itself) and at least one success.
    #[test]
    fn the_document_is_self_consistent() {
        let doc = document_json();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: only local references"));
            assert!(doc.pointer(pointer).is_some(), "{r} is not defined");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            let names: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let item = item.as_object().unwrap();
            for (method, op) in item.iter().filter(|(k, _)| METHODS.contains(&k.as_str())) {
                // Parameters of the path item apply to each of its operations.
                let in_path: BTreeSet<&str> = [&item.get("parameters"), &op.get("parameters")]
                    .into_iter()
                    .filter_map(|p| p.and_then(Value::as_array))
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(in_path, names, "{method} {path}: path parameters");
                let statuses = op["responses"].as_object().expect("responses");
                assert!(
                    statuses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success documented"
                );
            }
        }
    }

    fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}

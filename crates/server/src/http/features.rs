//! The feature metadata API (spec §1.11, Appendix B): `GET /api/v1/features` and
//! `GET /api/v1/features/{feature}`, which KairosDB's query and roll-up pages read to build
//! their aggregator and group-by editors.
//!
//! KairosDB builds these documents at start-up by reflection over the annotations of its
//! aggregator and group-by classes (`AnnotationUtils.getPropertyMetadata`,
//! `GenericFeatureProcessorFactory`, `processingstage/metadata/*.java`) and writes them with a
//! default `Gson`. Here the annotations are part of the one catalogue of processors
//! ([`kairosdb_model::catalogue`]): each property carries what its annotation declares.
//! [`processor`] and [`property`] apply KairosDB's derivation rules (labels, types,
//! defaults, sort orders); the three documents are serialised once, escaped the way Gson
//! escapes, and served as static bytes.
//!
//! Not here: the aggregators and group-bys themselves (`kairosdb-query`). KairosDB plugins
//! can register more processors; we have none.

use std::cmp::Ordering;
use std::sync::LazyLock;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use kairosdb_model::catalogue::{
    self, Feature, Processor, PropKind, Property, Validation, AGGREGATORS, GROUP_BYS, TIME_UNITS,
};

use super::{ApiError, JSON};

// ---------------------------------------------------------------------------------------
// The handlers

/// `GET /api/v1/features`: both families, group-by first, processors sorted by label.
pub async fn features() -> Response {
    document(&DOCUMENTS.features)
}

/// `GET /api/v1/features/{feature}`: the processors of one family sorted by name; an
/// unknown family is 404 `Unknown feature '<feature lower-cased>'` (`FeaturesResource`).
pub async fn feature(path: Result<Path<String>, PathRejection>, uri: Uri) -> Response {
    // A segment that does not percent-decode to UTF-8 names no family either; Jersey
    // decodes it leniently, we quote it as sent.
    let feature = match path {
        Ok(Path(feature)) => feature,
        Err(_) => uri.path().rsplit('/').next().unwrap_or_default().to_owned(),
    };
    match family_index(&feature) {
        Some(i) => document(&DOCUMENTS.families[i]),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Unknown feature '{}'", feature.to_lowercase()),
        )
        .into_response(),
    }
}

fn document(body: &'static [u8]) -> Response {
    let mut response = (StatusCode::OK, Bytes::from_static(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// The family a path segment names: `GenericFeatureProcessor.getFeatureProcessingFactory`
/// compares with Java's `String.equalsIgnoreCase`.
fn family_index(feature: &str) -> Option<usize> {
    FAMILIES
        .iter()
        .position(|f| java_equals_ignore_case(f.family.name(), feature))
}

// ---------------------------------------------------------------------------------------
// The documents, built once

struct Documents {
    /// `/features`.
    features: Vec<u8>,
    /// `/features/{feature}`, in [`FAMILIES`] order.
    families: Vec<Vec<u8>>,
}

static DOCUMENTS: LazyLock<Documents> = LazyLock::new(Documents::build);

impl Documents {
    fn build() -> Documents {
        let mut features = Vec::new();
        let mut families = Vec::new();
        for family in &FAMILIES {
            let processors = (family.processors)();
            // `GenericFeatureProcessorFactory` sorts by name; `FeatureProcessingMetadata`
            // re-sorts a copy by label.
            let mut by_name = processors.clone();
            by_name.sort_by(|a, b| java_cmp(a.name, b.name));
            let mut by_label = processors;
            by_label.sort_by(|a, b| java_cmp(&a.label, &b.label));
            families.push(gson_json(&by_name));
            features.push(FamilyJson {
                name: family.family.name(),
                label: family.label,
                properties: by_label,
            });
        }
        Documents {
            features: gson_json(&features),
            families,
        }
    }
}

/// Compact JSON as a default `Gson` writes it.
fn gson_json<T: Serialize>(value: &T) -> Vec<u8> {
    let json = serde_json::to_string(value)
        .unwrap_or_else(|e| panic!("BUG: serialising feature metadata failed: {e}"));
    gson_escape(&json).into_bytes()
}

/// Gson's default writer is "HTML safe": it writes `<`, `>`, `&`, `=` and `'` as `\u003c`,
/// `\u003e`, `\u0026`, `\u003d`, `\u0027`, and U+2028/U+2029 as escapes too. (Appendix B
/// lists four of them; Gson's `JsonWriter` also escapes `&`, which the `bin` and `save_as`
/// validations contain.) Quotes, backslashes and control characters serde_json already
/// escapes as Gson does. None of these characters can occur outside a string in JSON, so one
/// pass over the text is enough.
fn gson_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 8);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003d"),
            '\'' => out.push_str("\\u0027"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// What is served: the shapes of KairosDB's metadata classes. Gson writes fields in
// declaration order and leaves out nulls.

/// `FeatureProcessingMetadata`.
#[derive(Serialize)]
struct FamilyJson {
    name: &'static str,
    label: &'static str,
    properties: Vec<ProcessorJson>,
}

/// `FeatureProcessorMetadata`.
#[derive(Serialize, Clone)]
struct ProcessorJson {
    name: &'static str,
    label: String,
    description: &'static str,
    properties: Vec<PropertyJson>,
}

/// `FeaturePropertyMetadata`. A compound property leaves the `None` fields null, so they
/// are not written.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct PropertyJson {
    name: &'static str,
    label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'static str>,
    optional: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<&'static [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_value: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autocomplete: Option<&'static str>,
    multiline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    validations: Option<Vec<ValidationJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Vec<PropertyJson>>,
}

/// `FeatureValidationMetadata`.
#[derive(Serialize, Clone)]
struct ValidationJson {
    expression: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'static str,
}

// ---------------------------------------------------------------------------------------
// What is declared (`kairosdb_model::catalogue`), and the rules that turn it into metadata

/// A family of processors: a `@Feature` factory.
struct Family {
    family: catalogue::Family,
    label: &'static str,
    /// The family's processors, unsorted.
    processors: fn() -> Vec<ProcessorJson>,
}

/// `KairosFeatureProcessor`: group-bys first, then aggregators.
const FAMILIES: [Family; 2] = [
    Family {
        family: catalogue::Family::GroupBy,
        label: "Group By",
        processors: || GROUP_BYS.iter().map(processor).collect(),
    },
    Family {
        family: catalogue::Family::Aggregators,
        label: "Aggregator",
        processors: || AGGREGATORS.iter().map(processor).collect(),
    },
];

/// One processor class and the annotated properties of it and its superclasses
/// (`AnnotationUtils.getPropertyMetadata` walks `getSuperclass()`), sorted by label.
fn processor<S>(p: &'static Processor<S>) -> ProcessorJson {
    ProcessorJson {
        name: p.name,
        label: if p.label.is_empty() {
            labelize(p.name)
        } else {
            p.label.to_owned()
        },
        description: p.description,
        properties: properties_of(p.all_properties()),
    }
}

/// The listed (annotated) properties, sorted by label.
fn properties_of(properties: impl Iterator<Item = &'static Property>) -> Vec<PropertyJson> {
    let mut listed: Vec<PropertyJson> = properties.filter_map(property).collect();
    listed.sort_by(|a, b| java_cmp(a.label, b.label));
    listed
}

/// The two `FeaturePropertyMetadata` constructors: a `@FeatureCompoundProperty` (a
/// duration: its class's properties, in [`VALUE_THEN_UNIT`] order) or a
/// `@FeatureProperty`. `None`: not annotated.
fn property(p: &'static Property) -> Option<PropertyJson> {
    let feature = p.feature.as_ref()?;
    if p.kind == PropKind::Duration {
        let mut children = properties_of(DURATION.iter());
        // `ExplicitComparator`: position in the order, -1 (first) when absent.
        children.sort_by_key(|c| {
            VALUE_THEN_UNIT
                .iter()
                .position(|o| *o == c.label)
                .map_or(-1, |i| i as i64)
        });
        return Some(PropertyJson {
            name: p.name,
            label: feature.label,
            description: None,
            optional: false,
            kind: "Object",
            options: None,
            default_value: None,
            autocomplete: None,
            multiline: false,
            validations: None,
            properties: Some(children),
        });
    }
    Some(PropertyJson {
        name: p.name,
        label: feature.label,
        description: Some(feature.description),
        optional: false,
        kind: java_type(p.kind),
        // An enum's constants replace any declared (lower-case) options.
        options: Some(enum_constants(p.kind)),
        default_value: Some(if feature.default_value.is_empty() {
            java_default(p.kind)
        } else {
            feature.default_value
        }),
        autocomplete: Some(feature.autocomplete),
        multiline: false,
        // `FeaturePropertyMetadata.extractValidators` uses `addFirst`.
        validations: Some(
            feature
                .validations
                .iter()
                .rev()
                .map(|v| ValidationJson {
                    expression: v.expression,
                    kind: "js",
                    message: v.message,
                })
                .collect(),
        ),
        properties: None,
    })
}

/// `AnnotationUtils.getType` of the setter's Java type, enums being `enum`.
fn java_type(kind: PropKind) -> &'static str {
    match kind {
        PropKind::Bool => "boolean",
        PropKind::Int => "int",
        PropKind::Long => "long",
        PropKind::Double => "double",
        PropKind::Str | PropKind::TimeZone => "String",
        PropKind::Any | PropKind::StringMap | PropKind::Duration => "Object",
        PropKind::DoubleArray | PropKind::StringArray | PropKind::Thresholds => "array",
        PropKind::Unit | PropKind::Enum(_) | PropKind::LooseEnum(_) => "enum",
    }
}

fn enum_constants(kind: PropKind) -> &'static [&'static str] {
    match kind {
        PropKind::Unit => TIME_UNITS,
        PropKind::Enum(constants) | PropKind::LooseEnum(constants) => constants,
        _ => &[],
    }
}

/// `AnnotationUtils.getDefaultValue`, used when the annotation declares no default:
/// `""` for anything a `String` is assignable to, `"[]"` for collections and arrays,
/// else the primitive's default printed by `String.valueOf`.
fn java_default(kind: PropKind) -> &'static str {
    match kind {
        PropKind::DoubleArray | PropKind::StringArray | PropKind::Thresholds => "[]",
        PropKind::Bool => "false",
        PropKind::Int | PropKind::Long => "0",
        PropKind::Double => "0.0",
        // `ClassUtils.getClass("TimeUnit")` throws there: KairosDB would not start.
        PropKind::Unit | PropKind::Enum(_) | PropKind::LooseEnum(_) => {
            panic!("BUG: an enum feature property needs a default_value")
        }
        PropKind::Str
        | PropKind::TimeZone
        | PropKind::Any
        | PropKind::StringMap
        | PropKind::Duration => "",
    }
}

/// `labelizeComponent`: `least_squares` → `Least Squares`.
fn labelize(name: &str) -> String {
    name.to_lowercase()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// Java's `String.compareTo`: UTF-16 code unit order (upper case before lower case).
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `String.equalsIgnoreCase`: characters match when equal, equal upper-cased, or
/// equal upper- then lower-cased (so `ſ` matches `s`), with one-to-one case mappings only.
fn java_equals_ignore_case(a: &str, b: &str) -> bool {
    fn one(mut mapped: impl Iterator<Item = char>, c: char) -> char {
        match (mapped.next(), mapped.next()) {
            (Some(m), None) => m,
            _ => c,
        }
    }
    let upper = |c: char| one(c.to_uppercase(), c);
    let lower = |c: char| one(c.to_lowercase(), c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || upper(x) == upper(y) || lower(upper(x)) == lower(upper(y)))
}

const VALUE_THEN_UNIT: &[&str] = &["Value", "Unit"];

/// `Duration`, the class of every compound property (`Sampling` extends it and declares
/// no fields of its own).
const DURATION: &[Property] = &[
    Property {
        name: "value",
        kind: PropKind::Long,
        feature: Some(Feature {
            label: "Value",
            description: "The number of units for the aggregation buckets",
            default_value: "1",
            autocomplete: "",
            validations: &[Validation {
                expression: "value >= 0",
                message: "Value must be greater or equal to 0.",
            }],
        }),
    },
    Property {
        name: "unit",
        kind: PropKind::Unit,
        feature: Some(Feature {
            label: "Unit",
            description: "The time unit for the sampling rate",
            default_value: "MILLISECONDS",
            autocomplete: "",
            validations: &[],
        }),
    },
];

#[cfg(test)]
mod tests;

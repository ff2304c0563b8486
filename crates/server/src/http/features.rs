//! The feature metadata API (spec §1.11, Appendix B): `GET /api/v1/features` and
//! `GET /api/v1/features/{feature}`, which KairosDB's query and roll-up pages read to build
//! their aggregator and group-by editors.
//!
//! KairosDB builds these documents at start-up by reflection over the annotations of its
//! aggregator and group-by classes (`AnnotationUtils.getPropertyMetadata`,
//! `GenericFeatureProcessorFactory`, `processingstage/metadata/*.java`) and writes them with a
//! default `Gson`. Here the annotations are written down as Rust tables ([`AGGREGATORS`],
//! [`GROUP_BYS`]): one entry per annotated Java field, holding what the annotation declares.
//! [`Field::metadata`] and [`Component::metadata`] apply KairosDB's derivation rules (names,
//! labels, types, defaults, sort orders); the three documents are serialised once, escaped
//! the way Gson escapes, and served as static bytes.
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
        .position(|f| java_equals_ignore_case(f.name, feature))
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
            let processors: Vec<ProcessorJson> =
                family.components.iter().map(Component::metadata).collect();
            // `GenericFeatureProcessorFactory` sorts by name; `FeatureProcessingMetadata`
            // re-sorts a copy by label.
            let mut by_name = processors.clone();
            by_name.sort_by(|a, b| java_cmp(a.name, b.name));
            let mut by_label = processors;
            by_label.sort_by(|a, b| java_cmp(&a.label, &b.label));
            families.push(gson_json(&by_name));
            features.push(FamilyJson {
                name: family.name,
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
// What is declared: KairosDB's annotations, and the rules that turn them into metadata

/// A family of processors: a `@Feature` factory.
struct Family {
    name: &'static str,
    label: &'static str,
    components: &'static [Component],
}

/// One processor class: its `@FeatureComponent` and its annotated fields.
struct Component {
    name: &'static str,
    /// Empty: derived from the name (`GenericFeatureProcessorFactory.labelizeComponent`).
    label: &'static str,
    description: &'static str,
    /// The annotated fields of the class, then of each superclass
    /// (`AnnotationUtils.getPropertyMetadata` walks `getSuperclass()`).
    fields: &'static [&'static [Field]],
}

/// One annotated Java field.
enum Field {
    /// A field with `@FeatureProperty`.
    Property {
        /// The Java field name: the name and label when the annotation declares none.
        field: &'static str,
        java: JavaType,
        annotation: Property,
    },
    /// A field with `@FeatureCompoundProperty`: its properties are those of the field's
    /// class (`Sampling` or `Duration`).
    Compound {
        field: &'static str,
        name: &'static str,
        label: &'static str,
        /// Children by label in this order; empty: sorted by label.
        order: &'static [&'static str],
        class: &'static [&'static [Field]],
    },
}

/// The attributes of a `@FeatureProperty`; an empty string is an attribute left at its
/// default. Start from [`PROPERTY`] and set what the Java annotation sets.
struct Property {
    name: &'static str,
    label: &'static str,
    description: &'static str,
    optional: bool,
    kind: &'static str,
    options: &'static [&'static str],
    default_value: &'static str,
    autocomplete: &'static str,
    multiline: bool,
    /// In declaration order; the metadata lists them reversed
    /// (`FeaturePropertyMetadata.extractValidators` uses `addFirst`).
    validations: &'static [Validation],
}

/// `@FeatureProperty`'s defaults.
const PROPERTY: Property = Property {
    name: "",
    label: "",
    description: "",
    optional: false,
    kind: "",
    options: &[],
    default_value: "",
    autocomplete: "",
    multiline: false,
    validations: &[],
};

/// One `@ValidationProperty`; every one in KairosDB keeps the default type `js`.
struct Validation {
    expression: &'static str,
    message: &'static str,
}

/// The Java type of an annotated field, as far as `AnnotationUtils` looks at it.
#[derive(Clone, Copy)]
enum JavaType {
    Boolean,
    Int,
    Long,
    Double,
    /// `String`.
    Str,
    /// `Object` (the filter threshold).
    Object,
    /// A `Collection` or an array.
    Array,
    /// An enum and its constants in declaration order.
    Enum(&'static [&'static str]),
}

impl JavaType {
    /// `AnnotationUtils.getType`, enums being `enum`.
    fn type_name(self) -> &'static str {
        match self {
            JavaType::Boolean => "boolean",
            JavaType::Int => "int",
            JavaType::Long => "long",
            JavaType::Double => "double",
            JavaType::Str => "String",
            JavaType::Object => "Object",
            JavaType::Array => "array",
            JavaType::Enum(_) => "enum",
        }
    }

    /// `AnnotationUtils.getDefaultValue`, used when the annotation declares no default:
    /// `""` for anything a `String` is assignable to, `"[]"` for collections and arrays,
    /// else the primitive's default printed by `String.valueOf`.
    fn default_value(self) -> &'static str {
        match self {
            JavaType::Str | JavaType::Object => "",
            JavaType::Array => "[]",
            JavaType::Boolean => "false",
            JavaType::Int | JavaType::Long => "0",
            JavaType::Double => "0.0",
            // `ClassUtils.getClass("TimeUnit")` throws there: KairosDB would not start.
            JavaType::Enum(_) => panic!("BUG: an enum feature property needs a default_value"),
        }
    }
}

impl Component {
    fn metadata(&self) -> ProcessorJson {
        ProcessorJson {
            name: self.name,
            label: if self.label.is_empty() {
                labelize(self.name)
            } else {
                self.label.to_owned()
            },
            description: self.description,
            properties: properties_of(self.fields),
        }
    }
}

impl Field {
    /// The two `FeaturePropertyMetadata` constructors.
    fn metadata(&self) -> PropertyJson {
        match self {
            Field::Property {
                field,
                java,
                annotation: a,
            } => PropertyJson {
                name: strip_m(or(a.name, field)),
                // The raw field name, `m_` and all, when no label is declared.
                label: or(a.label, field),
                description: Some(a.description),
                optional: a.optional,
                kind: or(a.kind, java.type_name()),
                // An enum's constants replace any declared (lower-case) options.
                options: Some(match java {
                    JavaType::Enum(constants) => constants,
                    _ => a.options,
                }),
                default_value: Some(if a.default_value.is_empty() {
                    java.default_value()
                } else {
                    a.default_value
                }),
                autocomplete: Some(a.autocomplete),
                multiline: a.multiline,
                validations: Some(
                    a.validations
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
            },
            Field::Compound {
                field,
                name,
                label,
                order,
                class,
            } => {
                let mut children = properties_of(class);
                if !order.is_empty() {
                    // `ExplicitComparator`: position in `order`, -1 (first) when absent.
                    children.sort_by_key(|p| {
                        order
                            .iter()
                            .position(|o| *o == p.label)
                            .map_or(-1, |i| i as i64)
                    });
                }
                PropertyJson {
                    name: strip_m(or(name, field)),
                    label,
                    description: None,
                    optional: false,
                    kind: "Object",
                    options: None,
                    default_value: None,
                    autocomplete: None,
                    multiline: false,
                    validations: None,
                    properties: Some(children),
                }
            }
        }
    }
}

/// The properties of a class and its superclasses, sorted by label.
fn properties_of(class: &[&[Field]]) -> Vec<PropertyJson> {
    let mut properties: Vec<PropertyJson> = class
        .iter()
        .flat_map(|fields| fields.iter())
        .map(Field::metadata)
        .collect();
    properties.sort_by(|a, b| java_cmp(a.label, b.label));
    properties
}

fn or(declared: &'static str, otherwise: &'static str) -> &'static str {
    if declared.is_empty() {
        otherwise
    } else {
        declared
    }
}

/// `FeaturePropertyMetadata.fixupName`.
fn strip_m(name: &'static str) -> &'static str {
    name.strip_prefix("m_").unwrap_or(name)
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

// ---------------------------------------------------------------------------------------
// The tables: KairosDB's annotations, class by class (`core/aggregator/*.java`,
// `core/groupby/*.java`, `core/datastore/Duration.java`). Only annotated fields appear.

/// `KairosFeatureProcessor`: group-bys first, then aggregators.
const FAMILIES: [Family; 2] = [
    Family {
        name: "group_by",
        label: "Group By",
        components: GROUP_BYS,
    },
    Family {
        name: "aggregators",
        label: "Aggregator",
        components: AGGREGATORS,
    },
];

/// `org.kairosdb.core.datastore.TimeUnit`.
const TIME_UNIT: &[&str] = &[
    "MILLISECONDS",
    "SECONDS",
    "MINUTES",
    "HOURS",
    "DAYS",
    "WEEKS",
    "MONTHS",
    "YEARS",
];

const VALUE_THEN_UNIT: &[&str] = &["Value", "Unit"];

/// `Duration`, the class of the time group-by's `rangeSize`; `Sampling` extends it and
/// declares no fields of its own.
const DURATION: &[Field] = &[
    Field::Property {
        field: "value",
        java: JavaType::Long,
        annotation: Property {
            name: "value",
            label: "Value",
            description: "The number of units for the aggregation buckets",
            default_value: "1",
            validations: &[Validation {
                expression: "value >= 0",
                message: "Value must be greater or equal to 0.",
            }],
            ..PROPERTY
        },
    },
    Field::Property {
        field: "unit",
        java: JavaType::Enum(TIME_UNIT),
        annotation: Property {
            name: "unit",
            label: "Unit",
            description: "The time unit for the sampling rate",
            default_value: "MILLISECONDS",
            ..PROPERTY
        },
    },
];

/// `RangeAggregator`, the superclass of avg, count, dev, first, gaps, last, least_squares,
/// max, min, percentile and sum. Its other fields (`m_alignSampling`, `m_exhaustive`, ...)
/// have no annotation, so `align_sampling` is not listed although queries accept it.
const RANGE_AGGREGATOR: &[Field] = &[
    Field::Compound {
        field: "m_sampling",
        name: "sampling",
        label: "Sampling",
        order: VALUE_THEN_UNIT,
        class: &[DURATION],
    },
    Field::Property {
        field: "m_alignStartTime",
        java: JavaType::Boolean,
        annotation: Property {
            name: "align_start_time",
            label: "Align start time",
            description: concat!(
                "Setting this to true will cause the aggregation range to be aligned based on the sampling",
                " size. For example if your sample size is either milliseconds, seconds, minutes or hours then the",
                " start of the range will always be at the top of the hour. The effect of setting this to true is",
                " that your data will take the same shape when graphed as you refresh the data. Note that",
                " align_sampling, align_start_time, and align_end_time are mutually exclusive. If more than one",
                " are set, unexpected results will occur.",
            ),
            default_value: "false",
            ..PROPERTY
        },
    },
    Field::Property {
        field: "m_alignEndTime",
        java: JavaType::Boolean,
        annotation: Property {
            name: "align_end_time",
            label: "Align end time",
            description: concat!(
                "Setting this to true will cause the aggregation range to be aligned based on the sampling",
                " size. For example if your sample size is either milliseconds, seconds, minutes or hours then the",
                " start of the range will always be at the top of the hour. The difference between align_start_time",
                " and align_end_time is that align_end_time sets the timestamp for the datapoint to the beginning of",
                " the following period versus the beginning of the current period. As with align_start_time, setting",
                " this to true will cause your data to take the same shape when graphed as you refresh the data. Note",
                " that align_sampling, align_start_time, and align_end_time are mutually exclusive. If more than one",
                " are set, unexpected results will occur.",
            ),
            default_value: "false",
            ..PROPERTY
        },
    },
    Field::Property {
        field: "m_trim",
        java: JavaType::Boolean,
        annotation: Property {
            name: "trim",
            label: "Trim",
            // The leading space is KairosDB's.
            description: " Trim off empty ranges before and after the actual data",
            default_value: "false",
            ..PROPERTY
        },
    },
];

/// A range aggregator that declares no annotated field of its own.
const fn range(name: &'static str, label: &'static str, description: &'static str) -> Component {
    Component {
        name,
        label,
        description,
        fields: &[RANGE_AGGREGATOR],
    }
}

/// The 21 aggregators `CoreModule` binds (`DropAggregator` and `LimitAggregator` exist but
/// are not bound, so they are not listed).
const AGGREGATORS: &[Component] = &[
    range("sum", "", "Adds data points together."),
    range("min", "", "Returns the minimum value data point for the time range."),
    range("max", "", "Returns the maximum value data point for the time range."),
    range("avg", "AVG", "Averages the data points together."),
    // `StdAggregator`: its `m_dev` (return_type) and `m_devCount` (dev_count) have no
    // annotation, so dev lists only the range aggregator's properties.
    range(
        "dev",
        "",
        "Calculates the standard deviation of the time series.",
    ),
    Component {
        name: "rate",
        label: "",
        description: "Computes the rate of change for the data points.",
        fields: &[&[Field::Compound {
            field: "m_sampling",
            name: "",
            label: "Sampling",
            order: VALUE_THEN_UNIT,
            class: &[DURATION],
        }]],
    },
    Component {
        name: "sampler",
        label: "",
        description: "Computes the sampling rate of change for the data points.",
        fields: &[&[Field::Property {
            field: "_ui_unit",
            java: JavaType::Enum(TIME_UNIT),
            annotation: Property {
                name: "unit",
                label: "Time Unit",
                description: "Time unit of sampling",
                default_value: "milliseconds",
                ..PROPERTY
            },
        }]],
    },
    range(
        "least_squares",
        "",
        "Returns a best fit line through the datapoints using the least squares algorithm.",
    ),
    Component {
        name: "percentile",
        label: "",
        description: "Finds the percentile of the data range.",
        fields: &[
            &[Field::Property {
                field: "percentile",
                java: JavaType::Double,
                annotation: Property {
                    label: "Percentile",
                    description: "Data points returned will be in this percentile.",
                    default_value: "0.1",
                    validations: &[
                        Validation {
                            expression: "value > 0",
                            message: "Percentile must be greater than 0.",
                        },
                        Validation {
                            expression: "value < 1",
                            message: "Percentile must be smaller than 1.",
                        },
                    ],
                    ..PROPERTY
                },
            }],
            RANGE_AGGREGATOR,
        ],
    },
    Component {
        name: "div",
        label: "",
        description: "Divides each data point by a divisor.",
        fields: &[&[Field::Property {
            field: "m_divisor",
            java: JavaType::Double,
            annotation: Property {
                label: "Divisor",
                description: "The value each data point is divided by.",
                default_value: "1",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Divisor must be greater than 0.",
                }],
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "scale",
        label: "",
        description: "Scales each data point by a factor.",
        fields: &[&[Field::Property {
            field: "m_factor",
            java: JavaType::Double,
            annotation: Property {
                label: "Factor",
                description: "The value to scale each data point by.",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Factor must be greater than 0.",
                }],
                ..PROPERTY
            },
        }]],
    },
    range("count", "", "Counts the number of data points."),
    Component {
        name: "diff",
        label: "",
        description: "Computes the difference between successive data points.",
        fields: &[],
    },
    range(
        "gaps",
        "",
        "Marks gaps in data according to sampling rate with a null data point.",
    ),
    range(
        "first",
        "",
        "Returns the first value data point for the time range.",
    ),
    range(
        "last",
        "",
        "Returns the last value data point for the time range.",
    ),
    // `SaveAsAggregator`: `m_tags`, `m_ttl` and `m_addSavedFrom` have no annotation.
    Component {
        name: "save_as",
        label: "",
        description: "Saves the results to a new metric.",
        fields: &[&[Field::Property {
            field: "m_metricName",
            java: JavaType::Str,
            annotation: Property {
                name: "metric_name",
                label: "Save As",
                description: "The name of the new metric.",
                default_value: "<new name>",
                validations: &[Validation {
                    expression: "!value && value.length > 0",
                    message: "The name can't be empty.",
                }],
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "trim",
        label: "",
        description: "Trims off the first, last or both (first and last) data points from the results.",
        fields: &[&[Field::Property {
            field: "m_trim",
            java: JavaType::Enum(&["FIRST", "LAST", "BOTH"]),
            annotation: Property {
                name: "trim",
                label: "Trim",
                description: "Which data point to trim",
                kind: "enum",
                default_value: "both",
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "sma",
        label: "SMA",
        description: "Simple moving average.",
        fields: &[&[Field::Property {
            field: "m_size",
            java: JavaType::Int,
            annotation: Property {
                label: "Size",
                description: "The period of the moving average. This is the number of data point to use each time the average is calculated.",
                default_value: "10",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Size must be greater than 0.",
                }],
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "filter",
        label: "",
        description: "Filters datapoints according to filter operation with a null data point.",
        fields: &[&[
            Field::Property {
                field: "m_filterop",
                java: JavaType::Enum(&["LTE", "LT", "GTE", "GT", "EQUAL", "NE"]),
                annotation: Property {
                    name: "filter_op",
                    label: "Filter operation",
                    description: "The operation performed for each data point.",
                    kind: "enum",
                    options: &["lte", "lt", "gte", "gt", "equal", "ne"],
                    default_value: "equal",
                    ..PROPERTY
                },
            },
            Field::Property {
                field: "m_threshold",
                java: JavaType::Object,
                annotation: Property {
                    label: "Threshold",
                    description: "The value the operation is performed on. If the operation is lt, then a null data point is returned if the data point is less than the threshold.",
                    ..PROPERTY
                },
            },
        ]],
    },
    // `thresholds` is a `Threshold[]`: a plain (not compound) property, so `Threshold`'s
    // own annotated fields are not listed.
    Component {
        name: "score",
        label: "SCORE",
        description: "Scores the data based on a set of thresholds. Each data point will be mapped to a value between 0 and n where n is the number of thresholds.",
        fields: &[&[
            Field::Property {
                field: "thresholds",
                java: JavaType::Array,
                annotation: Property {
                    name: "thresholds",
                    label: "Thresholds",
                    description: "A set of thresholds",
                    ..PROPERTY
                },
            },
            Field::Property {
                field: "order",
                java: JavaType::Enum(&["ASCENDING", "DESCENDING"]),
                annotation: Property {
                    name: "order",
                    label: "Order",
                    description: "The order by which scores are assigned",
                    kind: "enum",
                    options: &["ascending", "descending"],
                    default_value: "ascending",
                    ..PROPERTY
                },
            },
        ]],
    },
];

/// The 4 group-bys `CoreModule` binds.
const GROUP_BYS: &[Component] = &[
    Component {
        name: "value",
        label: "",
        description: "Groups data points by value.",
        fields: &[&[Field::Property {
            field: "rangeSize",
            java: JavaType::Int,
            annotation: Property {
                name: "range_size",
                label: "Target Size",
                description: "The range for each value. For example, if the range size is 10, then values between 0-9 are placed in the first group, values between 10-19 into the second group, and so forth.",
                validations: &[Validation {
                    expression: "value >= 0",
                    message: "Target size must be greater or equal than 0.",
                }],
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "time",
        label: "",
        description: "Groups data points in time ranges.",
        fields: &[&[
            Field::Compound {
                field: "rangeSize",
                name: "range_size",
                label: "Range Size",
                order: VALUE_THEN_UNIT,
                class: &[DURATION],
            },
            Field::Property {
                field: "groupCount",
                java: JavaType::Int,
                annotation: Property {
                    name: "group_count",
                    label: "Count",
                    description: "The number of groups. This would typically be 7 to group by day of week.",
                    validations: &[Validation {
                        expression: "value > 0",
                        message: "Count must be greater than 0.",
                    }],
                    ..PROPERTY
                },
            },
        ]],
    },
    Component {
        name: "tag",
        label: "",
        description: "Groups data points by tag names.",
        fields: &[&[Field::Property {
            field: "tags",
            java: JavaType::Array,
            annotation: Property {
                label: "Tags",
                description: "A list of tags to group by.",
                autocomplete: "tags",
                validations: &[Validation {
                    expression: "value.length > 0",
                    message: "Tags can't be empty.",
                }],
                ..PROPERTY
            },
        }]],
    },
    Component {
        name: "bin",
        label: "",
        description: "Groups data points by bins or buckets.",
        fields: &[&[Field::Property {
            field: "bins",
            java: JavaType::Array,
            annotation: Property {
                label: "Bin Values",
                description: "List of bin values. For example, if the list of bins is 10, 20, 30, then values less than 10 are placed in the first group, values between 10-19 into the second group, and so forth.",
                validations: &[
                    Validation {
                        expression: "value.length > 0",
                        message: "The list can't be empty.",
                    },
                    Validation {
                        expression: "value.every((n) => !isNaN(parseFloat(n)) && isFinite(n))",
                        message: "The list must contain only numbers.",
                    },
                ],
                ..PROPERTY
            },
        }]],
    },
];

#[cfg(test)]
mod tests;

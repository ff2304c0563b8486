//! The catalogue of aggregators and group-bys (spec §5, §6, Appendix A and B): one row per
//! processor, holding everything that says what it is — its JSON name, Java class,
//! properties with their kinds, the `@FeatureProperty` annotations `/api/v1/features`
//! lists, and the function that turns validated properties into its typed spec.
//!
//! Every reader derives from these rows: `kairosdb_protocol::query` checks query JSON
//! against a row's properties (KairosDB's texts for unknown properties, bad values and
//! bean validations) and calls its `build`; the server renders the rows as
//! `/api/v1/features`; `kairosdb-query` executes the typed [`AggregatorSpec`] and
//! [`GroupBySpec`] a parsed query carries. Adding an aggregator is one row in
//! [`AGGREGATORS`] with its variant of [`AggregatorSpec`], and its arms in
//! `kairosdb-query`'s `aggregate.rs`.
//!
//! Not here: Gson's coercions and error texts (protocol), execution (query), the metadata
//! documents' derivation rules (server `http/features.rs`).

use crate::request::TimeUnit;

/// A family of processors: where KairosDB declares them, for its error texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Aggregators,
    GroupBy,
}

impl Family {
    /// The query field (`aggregators` / `group_by`), also the feature family's name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Aggregators => "aggregators",
            Family::GroupBy => "group_by",
        }
    }

    /// The Java package of the classes: `org.kairosdb.core.<package>`.
    pub fn package(self) -> &'static str {
        match self {
            Family::Aggregators => "aggregator",
            Family::GroupBy => "groupby",
        }
    }
}

/// One processor class. `S` is the typed spec it builds ([`AggregatorSpec`] or
/// [`GroupBySpec`]).
pub struct Processor<S: 'static> {
    /// The JSON `name`.
    pub name: &'static str,
    /// The Java class (simple name), quoted in "no matching setter" errors.
    pub class: &'static str,
    /// `/features` label; empty: derived from the name (`labelizeComponent`).
    pub label: &'static str,
    /// `/features` description.
    pub description: &'static str,
    /// The class's own properties.
    pub properties: &'static [Property],
    /// A `RangeAggregator` subclass: also takes [`RANGE_PROPERTIES`] (listed after the
    /// own ones, as `AnnotationUtils` walks the superclass).
    pub range: bool,
    /// The typed spec from properties that passed their checks; `Err` is KairosDB's bean
    /// validation text, without the `query.metric[i].<family>[j].` prefix.
    pub build: fn(&Props) -> Result<S, String>,
}

impl<S: 'static> Processor<S> {
    /// Every property the processor takes, own first.
    pub fn all_properties(&self) -> impl Iterator<Item = &'static Property> {
        let range: &'static [Property] = if self.range { RANGE_PROPERTIES } else { &[] };
        self.properties.iter().chain(range)
    }
}

/// One settable property.
pub struct Property {
    pub name: &'static str,
    pub kind: PropKind,
    /// Its `@FeatureProperty` (or `@FeatureCompoundProperty` for a [`PropKind::Duration`]);
    /// `None`: not annotated in KairosDB, so not listed by `/features`.
    pub feature: Option<Feature>,
}

/// What a property's Java setter takes, as far as checking and converting its JSON value
/// goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    Bool,
    Long,
    Int,
    Double,
    Str,
    /// `Object`: kept as a number, a string or neither ([`Threshold`]).
    Any,
    /// `Sampling` / `Duration`: `{"value": long ≥ 0, "unit": TimeUnit}`.
    Duration,
    Unit,
    TimeZone,
    /// A Java enum (constants in declaration order), checked case-insensitively.
    Enum(&'static [&'static str]),
    /// An enum read by Gson's lower-case adapter: an unknown value is null, no error.
    LooseEnum(&'static [&'static str]),
    DoubleArray,
    StringArray,
    /// `score`'s `Threshold[]`: `[{"value": double, "boundary": "superior"|"inferior"}]`.
    Thresholds,
    StringMap,
}

/// The attributes of a `@FeatureProperty` that `/features` shows; an empty string is an
/// attribute left at its default. A compound (duration) property uses only `label`.
pub struct Feature {
    pub label: &'static str,
    pub description: &'static str,
    pub default_value: &'static str,
    pub autocomplete: &'static str,
    /// In declaration order.
    pub validations: &'static [Validation],
}

/// One `@ValidationProperty` (all of KairosDB's are of type `js`).
pub struct Validation {
    pub expression: &'static str,
    pub message: &'static str,
}

const FEATURE: Feature = Feature {
    label: "",
    description: "",
    default_value: "",
    autocomplete: "",
    validations: &[],
};

/// A property's value after its checks, converted as Gson would for the setter. A JSON
/// null is never stored: it leaves the property at its default, like an absent one.
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    Bool(bool),
    Long(i64),
    Int(i32),
    Double(f64),
    Str(String),
    Any(Threshold),
    Duration(Sampling),
    Unit(TimeUnit),
    TimeZone(String),
    /// The index of the constant in the kind's list.
    Enum(usize),
    Doubles(Vec<f64>),
    Strings(Vec<String>),
    Thresholds(Vec<ScoreThreshold>),
    Map(Vec<(String, String)>),
}

/// The properties of one processor object, by name (a repeated name keeps the last value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Props(Vec<(&'static str, PropValue)>);

impl Props {
    pub fn set(&mut self, name: &'static str, value: PropValue) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn value(&self, name: &str) -> Option<&PropValue> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value of `name` as `T`; `None` when absent (or null).
    pub fn get<T: FromProp>(&self, name: &str) -> Option<T> {
        T::from_prop(self.value(name)?)
    }
}

/// A Rust type a [`PropValue`] reads as.
pub trait FromProp: Sized {
    fn from_prop(v: &PropValue) -> Option<Self>;
}

macro_rules! from_prop {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl FromProp for $t {
            fn from_prop(v: &PropValue) -> Option<Self> {
                match v {
                    PropValue::$variant(x) => Some(x.clone()),
                    _ => None,
                }
            }
        }
    )*};
}

from_prop!(
    bool => Bool,
    i64 => Long,
    i32 => Int,
    f64 => Double,
    Threshold => Any,
    Sampling => Duration,
    TimeUnit => Unit,
    usize => Enum,
    Vec<f64> => Doubles,
    Vec<String> => Strings,
    Vec<ScoreThreshold> => Thresholds,
    Vec<(String, String)> => Map,
);

impl FromProp for String {
    fn from_prop(v: &PropValue) -> Option<Self> {
        match v {
            PropValue::Str(s) | PropValue::TimeZone(s) => Some(s.clone()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The typed specs a parsed query carries

/// `{"value": n, "unit": "U"}`: a range aggregator's `sampling`, `rate`'s sampling, the
/// time group-by's `range_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    pub value: i64,
    pub unit: TimeUnit,
}

/// One aggregator of a metric query, in KairosDB's terms, with the defaults that do not
/// depend on the request applied.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregatorSpec {
    Range(RangeSpec),
    Diff,
    Div {
        divisor: f64,
    },
    Filter {
        /// `None`: not set (KairosDB fails with a NullPointerException at run time).
        op: Option<FilterOp>,
        threshold: Threshold,
    },
    Rate {
        sampling: Option<Sampling>,
        unit: Option<TimeUnit>,
        time_zone: Option<String>,
    },
    Sampler {
        unit: Option<TimeUnit>,
        time_zone: Option<String>,
    },
    SaveAs {
        /// Empty: nothing is saved.
        metric_name: String,
        tags: Vec<(String, String)>,
        ttl: u32,
        add_saved_from: bool,
    },
    Scale {
        factor: f64,
    },
    Score {
        thresholds: Vec<ScoreThreshold>,
        descending: bool,
    },
    Sma {
        size: i64,
    },
    Trim {
        first: bool,
        last: bool,
    },
}

/// A range aggregator (spec §5.1): what it folds and how its buckets are laid out.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSpec {
    pub kind: RangeKind,
    pub sampling: Sampling,
    pub align_sampling: bool,
    pub align_start_time: bool,
    pub align_end_time: bool,
    /// Bucket origin; `None`: the query start.
    pub start_time: Option<i64>,
    /// Where `gaps` stops; `None`: the query end.
    pub end_time: Option<i64>,
    /// `None`: the query's time zone; `Some("")`: UTC.
    pub time_zone: Option<String>,
    pub trim: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RangeKind {
    Avg,
    Count,
    Dev { return_type: DevReturn, count: i32 },
    First,
    Gaps,
    Last,
    LeastSquares,
    Max,
    Min,
    Percentile(f64),
    Sum,
}

/// `dev`'s `return_type` (`StdAggregator.Dev`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevReturn {
    /// The standard deviation.
    Value,
    /// Average + deviation × `dev_count`.
    PosSd,
    /// Average − deviation × `dev_count`.
    NegSd,
}

impl DevReturn {
    const NAMES: &'static [&'static str] = &["VALUE", "POS_SD", "NEG_SD"];
    const ALL: [DevReturn; 3] = [DevReturn::Value, DevReturn::PosSd, DevReturn::NegSd];
}

/// `filter`'s operation: which points it removes, compared with the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOp {
    Lte,
    Lt,
    Gte,
    Gt,
    Equal,
    Ne,
}

impl FilterOp {
    const NAMES: &'static [&'static str] = &["LTE", "LT", "GTE", "GT", "EQUAL", "NE"];
    const ALL: [FilterOp; 6] = [
        FilterOp::Lte,
        FilterOp::Lt,
        FilterOp::Gte,
        FilterOp::Gt,
        FilterOp::Equal,
        FilterOp::Ne,
    ];
}

/// `filter`'s threshold, which keeps its JSON type: a number compares with numeric
/// points, a string with string points (spec §5.2).
#[derive(Clone, Debug, PartialEq)]
pub enum Threshold {
    Number(f64),
    Text(String),
    /// A boolean, object or array: removes every point, as in KairosDB.
    Other,
}

/// One of `score`'s thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreThreshold {
    pub value: f64,
    /// `boundary: "inferior"` (a value equal to the threshold scores above it).
    pub inferior: bool,
}

const TRIM_NAMES: &[&str] = &["FIRST", "LAST", "BOTH"];
const SCORE_ORDER_NAMES: &[&str] = &["ASCENDING", "DESCENDING"];

/// A group-by of a metric query (spec §6).
#[derive(Clone, Debug, PartialEq)]
pub enum GroupBySpec {
    Tag {
        tags: Vec<String>,
    },
    Time {
        range_size: Sampling,
        group_count: i64,
        /// `None`: the query start.
        start_date: Option<i64>,
    },
    Value {
        range_size: i64,
    },
    Bin {
        bins: Vec<f64>,
    },
}

// ---------------------------------------------------------------------------------------
// The tables: KairosDB's classes (`core/aggregator/*.java`, `core/groupby/*.java`) and
// their annotations. Properties a class takes without annotating them have no `feature`.

/// `org.kairosdb.core.datastore.TimeUnit`.
pub const TIME_UNITS: &[&str] = &[
    "MILLISECONDS",
    "SECONDS",
    "MINUTES",
    "HOURS",
    "DAYS",
    "WEEKS",
    "MONTHS",
    "YEARS",
];

const fn plain(name: &'static str, kind: PropKind) -> Property {
    Property {
        name,
        kind,
        feature: None,
    }
}

const fn listed(name: &'static str, kind: PropKind, feature: Feature) -> Property {
    Property {
        name,
        kind,
        feature: Some(feature),
    }
}

const SAMPLING: Property = listed(
    "sampling",
    PropKind::Duration,
    Feature {
        label: "Sampling",
        ..FEATURE
    },
);

/// `RangeAggregator`'s properties. `align_sampling`, `start_time`, `end_time` and
/// `time_zone` have no annotation, so `/features` does not list them.
pub const RANGE_PROPERTIES: &[Property] = &[
    SAMPLING,
    plain("align_sampling", PropKind::Bool),
    listed(
        "align_start_time",
        PropKind::Bool,
        Feature {
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
            ..FEATURE
        },
    ),
    listed(
        "align_end_time",
        PropKind::Bool,
        Feature {
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
            ..FEATURE
        },
    ),
    plain("start_time", PropKind::Long),
    plain("end_time", PropKind::Long),
    plain("time_zone", PropKind::TimeZone),
    listed(
        "trim",
        PropKind::Bool,
        Feature {
            label: "Trim",
            // The leading space is KairosDB's.
            description: " Trim off empty ranges before and after the actual data",
            default_value: "false",
            ..FEATURE
        },
    ),
];

/// A range aggregator with no property of its own.
const fn range(
    name: &'static str,
    class: &'static str,
    label: &'static str,
    description: &'static str,
    build: fn(&Props) -> Result<AggregatorSpec, String>,
) -> Processor<AggregatorSpec> {
    Processor {
        name,
        class,
        label,
        description,
        properties: &[],
        range: true,
        build,
    }
}

/// The range aggregator of `kind` with the properties of `p`.
fn range_spec(kind: RangeKind, p: &Props) -> Result<AggregatorSpec, String> {
    Ok(AggregatorSpec::Range(RangeSpec {
        kind,
        sampling: p.get("sampling").unwrap_or(Sampling {
            value: 1,
            unit: TimeUnit::Milliseconds,
        }),
        align_sampling: p.get("align_sampling").unwrap_or(true),
        align_start_time: p.get("align_start_time").unwrap_or(false),
        align_end_time: p.get("align_end_time").unwrap_or(false),
        start_time: p.get("start_time"),
        end_time: p.get("end_time"),
        time_zone: p.get("time_zone"),
        trim: p.get("trim").unwrap_or(false),
    }))
}

/// A bean validation `@NotZero`-like check on a double (absent counts as 0).
fn non_zero(p: &Props, name: &str, field: &str) -> Result<f64, String> {
    match p.get::<f64>(name) {
        Some(x) if x != 0.0 => Ok(x),
        _ => Err(format!("{field} may not be zero")),
    }
}

/// The 21 aggregators `CoreModule` binds (`DropAggregator` and `LimitAggregator` exist
/// but are not bound).
pub const AGGREGATORS: &[Processor<AggregatorSpec>] = &[
    range("avg", "AvgAggregator", "AVG", "Averages the data points together.", |p| {
        range_spec(RangeKind::Avg, p)
    }),
    range("count", "CountAggregator", "", "Counts the number of data points.", |p| {
        range_spec(RangeKind::Count, p)
    }),
    // `m_dev` (return_type) and `m_devCount` (dev_count) have no annotation.
    Processor {
        name: "dev",
        class: "StdAggregator",
        label: "",
        description: "Calculates the standard deviation of the time series.",
        properties: &[
            plain("return_type", PropKind::LooseEnum(DevReturn::NAMES)),
            plain("dev_count", PropKind::Long),
        ],
        range: true,
        build: |p| {
            let return_type = p.get("return_type").map_or(DevReturn::Value, |i: usize| {
                DevReturn::ALL[i]
            });
            // A Java `int` field set from a long.
            let count = p.get::<i64>("dev_count").unwrap_or(1) as i32;
            range_spec(RangeKind::Dev { return_type, count }, p)
        },
    },
    Processor {
        name: "diff",
        class: "DiffAggregator",
        label: "",
        description: "Computes the difference between successive data points.",
        properties: &[],
        range: false,
        build: |_| Ok(AggregatorSpec::Diff),
    },
    Processor {
        name: "div",
        class: "DivideAggregator",
        label: "",
        description: "Divides each data point by a divisor.",
        properties: &[listed(
            "divisor",
            PropKind::Double,
            Feature {
                label: "Divisor",
                description: "The value each data point is divided by.",
                default_value: "1",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Divisor must be greater than 0.",
                }],
                ..FEATURE
            },
        )],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Div {
                divisor: non_zero(p, "divisor", "m_divisor")?,
            })
        },
    },
    Processor {
        name: "filter",
        class: "FilterAggregator",
        label: "",
        description: "Filters datapoints according to filter operation with a null data point.",
        properties: &[
            listed(
                "filter_op",
                PropKind::Enum(FilterOp::NAMES),
                Feature {
                    label: "Filter operation",
                    description: "The operation performed for each data point.",
                    default_value: "equal",
                    ..FEATURE
                },
            ),
            // `Object m_threshold`: a number compares with numbers, a string with strings.
            listed(
                "threshold",
                PropKind::Any,
                Feature {
                    label: "Threshold",
                    description: "The value the operation is performed on. If the operation is lt, then a null data point is returned if the data point is less than the threshold.",
                    ..FEATURE
                },
            ),
            // Deliberate leniency: the Arp Grafana plugin sends it; KairosDB 1.3 answers
            // 400 ("no matching setter"). Accepted and ignored.
            plain("filter_indeterminate_inclusion", PropKind::Any),
        ],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Filter {
                op: p.get("filter_op").map(|i: usize| FilterOp::ALL[i]),
                threshold: p.get("threshold").unwrap_or(Threshold::Number(0.0)),
            })
        },
    },
    range(
        "first",
        "FirstAggregator",
        "",
        "Returns the first value data point for the time range.",
        |p| range_spec(RangeKind::First, p),
    ),
    range(
        "gaps",
        "DataGapsMarkingAggregator",
        "",
        "Marks gaps in data according to sampling rate with a null data point.",
        |p| range_spec(RangeKind::Gaps, p),
    ),
    range(
        "last",
        "LastAggregator",
        "",
        "Returns the last value data point for the time range.",
        |p| range_spec(RangeKind::Last, p),
    ),
    range(
        "least_squares",
        "LeastSquaresAggregator",
        "",
        "Returns a best fit line through the datapoints using the least squares algorithm.",
        |p| range_spec(RangeKind::LeastSquares, p),
    ),
    range(
        "max",
        "MaxAggregator",
        "",
        "Returns the maximum value data point for the time range.",
        |p| range_spec(RangeKind::Max, p),
    ),
    range(
        "min",
        "MinAggregator",
        "",
        "Returns the minimum value data point for the time range.",
        |p| range_spec(RangeKind::Min, p),
    ),
    Processor {
        name: "percentile",
        class: "PercentileAggregator",
        label: "",
        description: "Finds the percentile of the data range.",
        properties: &[listed(
            "percentile",
            PropKind::Double,
            Feature {
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
                ..FEATURE
            },
        )],
        range: true,
        build: |p| {
            let percentile = non_zero(p, "percentile", "percentile")?;
            range_spec(RangeKind::Percentile(percentile), p)
        },
    },
    // `m_unit` and `m_timeZone` have no annotation.
    Processor {
        name: "rate",
        class: "RateAggregator",
        label: "",
        description: "Computes the rate of change for the data points.",
        properties: &[
            SAMPLING,
            plain("unit", PropKind::Unit),
            plain("time_zone", PropKind::TimeZone),
        ],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Rate {
                sampling: p.get("sampling"),
                unit: p.get("unit"),
                time_zone: p.get("time_zone"),
            })
        },
    },
    Processor {
        name: "sampler",
        class: "SamplerAggregator",
        label: "",
        description: "Computes the sampling rate of change for the data points.",
        properties: &[
            // The annotated Java field is `_ui_unit`.
            listed(
                "unit",
                PropKind::Unit,
                Feature {
                    label: "Time Unit",
                    description: "Time unit of sampling",
                    default_value: "milliseconds",
                    ..FEATURE
                },
            ),
            plain("time_zone", PropKind::TimeZone),
        ],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Sampler {
                unit: p.get("unit"),
                time_zone: p.get("time_zone"),
            })
        },
    },
    // `m_tags`, `m_ttl` and `m_addSavedFrom` have no annotation.
    Processor {
        name: "save_as",
        class: "SaveAsAggregator",
        label: "",
        description: "Saves the results to a new metric.",
        properties: &[
            listed(
                "metric_name",
                PropKind::Str,
                Feature {
                    label: "Save As",
                    description: "The name of the new metric.",
                    default_value: "<new name>",
                    validations: &[Validation {
                        expression: "!value && value.length > 0",
                        message: "The name can't be empty.",
                    }],
                    ..FEATURE
                },
            ),
            plain("tags", PropKind::StringMap),
            plain("ttl", PropKind::Int),
            plain("add_saved_from", PropKind::Bool),
        ],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::SaveAs {
                metric_name: p.get("metric_name").unwrap_or_default(),
                tags: p.get("tags").unwrap_or_default(),
                // A negative TTL is no TTL.
                ttl: p
                    .get::<i32>("ttl")
                    .and_then(|t| u32::try_from(t).ok())
                    .unwrap_or(0),
                add_saved_from: p.get("add_saved_from").unwrap_or(true),
            })
        },
    },
    Processor {
        name: "scale",
        class: "ScaleAggregator",
        label: "",
        description: "Scales each data point by a factor.",
        properties: &[listed(
            "factor",
            PropKind::Double,
            Feature {
                label: "Factor",
                description: "The value to scale each data point by.",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Factor must be greater than 0.",
                }],
                ..FEATURE
            },
        )],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Scale {
                factor: p.get("factor").unwrap_or(0.0),
            })
        },
    },
    // `thresholds` is a `Threshold[]`: a plain (not compound) property, so `Threshold`'s
    // own annotated fields are not listed.
    Processor {
        name: "score",
        class: "ScoreAggregator",
        label: "SCORE",
        description: "Scores the data based on a set of thresholds. Each data point will be mapped to a value between 0 and n where n is the number of thresholds.",
        properties: &[
            listed(
                "thresholds",
                PropKind::Thresholds,
                Feature {
                    label: "Thresholds",
                    description: "A set of thresholds",
                    ..FEATURE
                },
            ),
            listed(
                "order",
                PropKind::LooseEnum(SCORE_ORDER_NAMES),
                Feature {
                    label: "Order",
                    description: "The order by which scores are assigned",
                    default_value: "ascending",
                    ..FEATURE
                },
            ),
        ],
        range: false,
        build: |p| {
            let Some(mut thresholds) = p.get::<Vec<ScoreThreshold>>("thresholds") else {
                return Err("thresholds may not be null".into());
            };
            // Ascending by value; at equal values inferior before superior.
            thresholds.sort_by(|a, b| {
                a.value
                    .total_cmp(&b.value)
                    .then(b.inferior.cmp(&a.inferior))
            });
            Ok(AggregatorSpec::Score {
                thresholds,
                descending: p.get("order") == Some(1usize),
            })
        },
    },
    Processor {
        name: "sma",
        class: "SmaAggregator",
        label: "SMA",
        description: "Simple moving average.",
        properties: &[listed(
            "size",
            PropKind::Int,
            Feature {
                label: "Size",
                description: "The period of the moving average. This is the number of data point to use each time the average is calculated.",
                default_value: "10",
                validations: &[Validation {
                    expression: "value > 0",
                    message: "Size must be greater than 0.",
                }],
                ..FEATURE
            },
        )],
        range: false,
        build: |p| {
            Ok(AggregatorSpec::Sma {
                size: p.get::<i32>("size").map_or(0, i64::from),
            })
        },
    },
    range("sum", "SumAggregator", "", "Adds data points together.", |p| {
        range_spec(RangeKind::Sum, p)
    }),
    Processor {
        name: "trim",
        class: "TrimAggregator",
        label: "",
        description: "Trims off the first, last or both (first and last) data points from the results.",
        properties: &[listed(
            "trim",
            PropKind::Enum(TRIM_NAMES),
            Feature {
                label: "Trim",
                description: "Which data point to trim",
                default_value: "both",
                ..FEATURE
            },
        )],
        range: false,
        build: |p| {
            let which: Option<usize> = p.get("trim");
            Ok(AggregatorSpec::Trim {
                first: matches!(which, Some(0 | 2)),
                last: matches!(which, Some(1 | 2)),
            })
        },
    },
];

/// The 4 group-bys `CoreModule` binds. Bean validations name the Java fields
/// (`rangeSize`, `groupCount`).
pub const GROUP_BYS: &[Processor<GroupBySpec>] = &[
    Processor {
        name: "tag",
        class: "TagGroupBy",
        label: "",
        description: "Groups data points by tag names.",
        properties: &[
            listed(
                "tags",
                PropKind::StringArray,
                Feature {
                    label: "Tags",
                    description: "A list of tags to group by.",
                    autocomplete: "tags",
                    validations: &[Validation {
                        expression: "value.length > 0",
                        message: "Tags can't be empty.",
                    }],
                    ..FEATURE
                },
            ),
            plain("start_date", PropKind::Long),
        ],
        range: false,
        build: |p| match p.get::<Vec<String>>("tags") {
            None => Err("tags may not be null".into()),
            Some(tags) if tags.is_empty() => Err("tags may not be empty".into()),
            Some(tags) => Ok(GroupBySpec::Tag { tags }),
        },
    },
    Processor {
        name: "time",
        class: "TimeGroupBy",
        label: "",
        description: "Groups data points in time ranges.",
        properties: &[
            listed(
                "range_size",
                PropKind::Duration,
                Feature {
                    label: "Range Size",
                    ..FEATURE
                },
            ),
            listed(
                "group_count",
                PropKind::Int,
                Feature {
                    label: "Count",
                    description: "The number of groups. This would typically be 7 to group by day of week.",
                    validations: &[Validation {
                        expression: "value > 0",
                        message: "Count must be greater than 0.",
                    }],
                    ..FEATURE
                },
            ),
            plain("start_date", PropKind::Long),
        ],
        range: false,
        build: |p| {
            let Some(range_size) = p.get("range_size") else {
                return Err("rangeSize may not be null".into());
            };
            let group_count = p.get::<i32>("group_count").map_or(0, i64::from);
            if group_count < 1 {
                return Err("groupCount must be greater than or equal to 1".into());
            }
            Ok(GroupBySpec::Time {
                range_size,
                group_count,
                start_date: p.get("start_date"),
            })
        },
    },
    Processor {
        name: "value",
        class: "ValueGroupBy",
        label: "",
        description: "Groups data points by value.",
        properties: &[
            listed(
                "range_size",
                PropKind::Int,
                Feature {
                    label: "Target Size",
                    description: "The range for each value. For example, if the range size is 10, then values between 0-9 are placed in the first group, values between 10-19 into the second group, and so forth.",
                    validations: &[Validation {
                        expression: "value >= 0",
                        message: "Target size must be greater or equal than 0.",
                    }],
                    ..FEATURE
                },
            ),
            plain("start_date", PropKind::Long),
        ],
        range: false,
        build: |p| {
            let range_size = p.get::<i32>("range_size").map_or(0, i64::from);
            if range_size < 1 {
                return Err("rangeSize must be greater than or equal to 1".into());
            }
            Ok(GroupBySpec::Value { range_size })
        },
    },
    Processor {
        name: "bin",
        class: "BinGroupBy",
        label: "",
        description: "Groups data points by bins or buckets.",
        properties: &[
            listed(
                "bins",
                PropKind::DoubleArray,
                Feature {
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
                    ..FEATURE
                },
            ),
            plain("start_date", PropKind::Long),
        ],
        range: false,
        build: |p| {
            Ok(GroupBySpec::Bin {
                bins: p.get("bins").unwrap_or_default(),
            })
        },
    },
];

/// The row of aggregator `name`.
pub fn aggregator(name: &str) -> Option<&'static Processor<AggregatorSpec>> {
    AGGREGATORS.iter().find(|a| a.name == name)
}

/// The row of group-by `name`.
pub fn group_by(name: &str) -> Option<&'static Processor<GroupBySpec>> {
    GROUP_BYS.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_properties_too() {
        let mut names: Vec<&str> = AGGREGATORS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 21);
        for a in AGGREGATORS {
            let mut props: Vec<&str> = a.all_properties().map(|p| p.name).collect();
            let n = props.len();
            props.sort_unstable();
            props.dedup();
            assert_eq!(props.len(), n, "{}", a.name);
        }
    }

    #[test]
    fn defaults_of_a_bare_range_aggregator() {
        let sum = aggregator("sum").unwrap();
        let AggregatorSpec::Range(r) = (sum.build)(&Props::default()).unwrap() else {
            panic!("sum is a range aggregator")
        };
        assert_eq!(r.kind, RangeKind::Sum);
        assert_eq!(
            r.sampling,
            Sampling {
                value: 1,
                unit: TimeUnit::Milliseconds
            }
        );
        assert!(r.align_sampling && !r.align_start_time && !r.trim);
        assert_eq!((r.start_time, r.time_zone), (None, None));
    }

    #[test]
    fn enum_properties_build_from_their_constant_index() {
        let mut p = Props::default();
        p.set("filter_op", PropValue::Enum(4));
        p.set("threshold", PropValue::Any(Threshold::Text("x".into())));
        assert_eq!(
            (aggregator("filter").unwrap().build)(&p),
            Ok(AggregatorSpec::Filter {
                op: Some(FilterOp::Equal),
                threshold: Threshold::Text("x".into())
            })
        );
        let mut p = Props::default();
        p.set("trim", PropValue::Enum(1));
        assert_eq!(
            (aggregator("trim").unwrap().build)(&p),
            Ok(AggregatorSpec::Trim {
                first: false,
                last: true
            })
        );
    }

    #[test]
    fn bean_validations_refuse_with_the_java_field_name() {
        let build = |name: &str| (aggregator(name).unwrap().build)(&Props::default());
        assert_eq!(build("div"), Err("m_divisor may not be zero".into()));
        assert_eq!(
            build("percentile"),
            Err("percentile may not be zero".into())
        );
        assert_eq!(build("score"), Err("thresholds may not be null".into()));
        let group = |name: &str| (group_by(name).unwrap().build)(&Props::default());
        assert_eq!(group("time"), Err("rangeSize may not be null".into()));
        assert_eq!(
            group("value"),
            Err("rangeSize must be greater than or equal to 1".into())
        );
        assert_eq!(group("tag"), Err("tags may not be null".into()));
    }
}

//! The policy document: which groups to scale, on which metrics, how.
//!
//! JSON is canonical (Terraform's `jsonencode` writes it); TOML is accepted for hand-written
//! files and read into the same structure. [`parse_policy`] reports *every* problem with
//! its field path (`groups[0].behavior.scale_down.policies[1].type: ...`); unknown fields
//! are errors, so a typo never silently falls back to a default.
//!
//! Defaults follow Kubernetes' HPA (`behavior`, `tolerance`) and KEDA (`on_missing_data`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// One CloudWatch metric, as a policy names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    pub period_seconds: i32,
}

/// What a target-tracked metric is held at.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The metric is a per-instance average (e.g. CPUUtilization) to hold at this value.
    Average(f64),
    /// The metric is a total (e.g. RequestCount) that each instance should carry this much of.
    PerInstance(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDocument {
    pub groups: Vec<GroupPolicy>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// The exact Auto Scaling group name.
    Name(String),
    /// Every group carrying all of these tags.
    Tags(BTreeMap<String, String>),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupPolicy {
    pub selector: Selector,
    pub min_capacity: Option<i32>,
    pub max_capacity: Option<i32>,
    pub metrics: Vec<MetricPolicy>,
    pub tolerance: Tolerance,
    pub behavior: Behavior,
    /// `None`: derived from what is measured (see `engine::warmup`).
    pub instance_warmup_seconds: Option<i64>,
    pub on_missing_data: OnMissingData,
    pub dry_run: bool,
    pub predictive: Predictive,
}

/// Forecasts of each metric (trend and seasonality). A forecast only ever scales out.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Predictive {
    pub mode: PredictiveMode,
    /// Days of history the seasonal profile is built from (0 turns seasonality off).
    pub history_days: u32,
}

impl Default for Predictive {
    fn default() -> Self {
        Self { mode: PredictiveMode::Off, history_days: 14 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictiveMode {
    Off,
    /// Forecasts are computed and reported (explanation, EMF, plot), never acted on.
    ForecastOnly,
    /// A forecast above the current reading may scale out ahead of it.
    ForecastAndScale,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricPolicy {
    /// GetMetricData query id: `^[a-z][a-zA-Z0-9_]*$`, unique within the group.
    pub id: String,
    pub query: Query,
    pub rule: MetricRule,
    /// The value this metric cannot exceed (100 for a utilization in percent): at it, the
    /// real demand is unknown and only a lower bound.
    pub saturation: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    Metric(MetricQuery),
    /// A CloudWatch metric-math expression.
    Expression {
        expression: String,
        period_seconds: i32,
    },
}

impl Query {
    pub fn period_seconds(&self) -> i32 {
        match self {
            Query::Metric(m) => m.period_seconds,
            Query::Expression { period_seconds, .. } => *period_seconds,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRule {
    Target(Target),
    StepScaling(StepScaling),
}

/// |1 − ratio| at or below the tolerance changes nothing (HPA's default is 0.1 both ways).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    pub up: f64,
    pub down: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self { up: 0.1, down: 0.1 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Behavior {
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    /// HPA's defaults (`pkg/apis/autoscaling/v2/defaults.go`).
    fn default() -> Self {
        Self {
            scale_up: ScalingRules {
                stabilization_seconds: 0,
                policies: vec![
                    RatePolicy { kind: RateKind::Percent, value: 100, period_seconds: 15 },
                    RatePolicy { kind: RateKind::Instances, value: 4, period_seconds: 15 },
                ],
                select: Select::Max,
            },
            scale_down: ScalingRules {
                stabilization_seconds: 300,
                policies: vec![RatePolicy { kind: RateKind::Percent, value: 100, period_seconds: 15 }],
                select: Select::Max,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalingRules {
    pub stabilization_seconds: i64,
    pub policies: Vec<RatePolicy>,
    pub select: Select,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RatePolicy {
    #[serde(rename = "type")]
    pub kind: RateKind,
    pub value: i32,
    pub period_seconds: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    Percent,
    Instances,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OnMissingData {
    /// Consecutive ticks with missing data before the fallback applies.
    pub failure_threshold: u32,
    /// Capacity to move to after that; `None` holds the current capacity.
    pub fallback_capacity: Option<i32>,
}

impl Default for OnMissingData {
    fn default() -> Self {
        Self { failure_threshold: 3, fallback_capacity: None }
    }
}

/// AWS EC2 Auto Scaling step scaling. Step bounds are relative to `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepScaling {
    pub threshold: f64,
    pub adjustment_type: AdjustmentType,
    /// Sorted by lower bound, contiguous, non-overlapping.
    pub steps: Vec<Step>,
    pub min_adjustment_magnitude: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Step {
    /// `None`: negative infinity.
    pub lower: Option<f64>,
    /// `None`: positive infinity.
    pub upper: Option<f64>,
    pub adjustment: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentType {
    ChangeInCapacity,
    ExactCapacity,
    PercentChangeInCapacity,
}

/// One problem in a policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All the problems of a rejected document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyErrors(pub Vec<PolicyError>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFormat {
    Json,
    Toml,
}

/// Parses and validates a policy document's text.
pub fn parse_policy_text(text: &str, format: PolicyFormat) -> Result<PolicyDocument, PolicyErrors> {
    let value: Value = match format {
        PolicyFormat::Json => serde_json::from_str(text).map_err(|e| {
            PolicyErrors(vec![PolicyError { path: "$".into(), message: format!("invalid JSON: {e}") }])
        })?,
        PolicyFormat::Toml => toml::from_str(text).map_err(|e| {
            PolicyErrors(vec![PolicyError { path: "$".into(), message: format!("invalid TOML: {e}") }])
        })?,
    };
    parse_policy(&value)
}

/// Validates a policy document.
pub fn parse_policy(value: &Value) -> Result<PolicyDocument, PolicyErrors> {
    let mut reader = Reader::default();
    let document = reader.document(value);
    match document {
        Some(document) if reader.errors.is_empty() => Ok(document),
        _ => Err(PolicyErrors(reader.errors)),
    }
}

/// Collects errors while reading; every method returns `None` after reporting a problem.
#[derive(Default)]
struct Reader {
    errors: Vec<PolicyError>,
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// CloudWatch periods: 1, 5, 10, 30 (high resolution) or a multiple of 60.
pub fn valid_period(seconds: i64) -> bool {
    [1, 5, 10, 30].contains(&seconds) || (seconds > 0 && seconds % 60 == 0)
}

fn valid_query_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= 255
}

fn valid_stat(stat: &str) -> bool {
    const STATS: &[&str] = &["Average", "Sum", "Minimum", "Maximum", "SampleCount", "IQM"];
    if STATS.contains(&stat) {
        return true;
    }
    // Percentiles and trimmed statistics: p99, p99.9, tm90, wm99, tc90, ts90, PR(...), TM(...).
    let prefixes = ["p", "tm", "wm", "tc", "ts"];
    prefixes.iter().any(|p| {
        stat.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && rest.parse::<f64>().is_ok_and(|v| v > 0.0 && v <= 100.0))
    }) || ["PR(", "TM(", "WM(", "TC(", "TS("].iter().any(|p| stat.starts_with(p) && stat.ends_with(')'))
}

impl Reader {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let path = if path.is_empty() { "(root)" } else { path };
        self.errors.push(PolicyError { path: path.to_owned(), message: message.into() });
    }

    /// An object whose keys must all be in `allowed`.
    fn object<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(path, format!("expected an object, found {}", type_name(value)));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    &join(path, key),
                    format!("unknown field; expected one of {}", allowed.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn number(&mut self, path: &str, value: &Value) -> Option<f64> {
        match value.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.error(path, format!("expected a number, found {}", type_name(value)));
                None
            }
        }
    }

    fn integer(&mut self, path: &str, value: &Value, min: i64, max: i64) -> Option<i64> {
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(path, format!("{n} is out of range {min}..={max}"));
                None
            }
            None => {
                self.error(path, format!("expected an integer, found {}", type_name(value)));
                None
            }
        }
    }

    fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value.as_str() {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                self.error(path, "must not be empty");
                None
            }
            None => {
                self.error(path, format!("expected a string, found {}", type_name(value)));
                None
            }
        }
    }

    fn bool(&mut self, path: &str, value: &Value) -> Option<bool> {
        value.as_bool().or_else(|| {
            self.error(path, format!("expected true or false, found {}", type_name(value)));
            None
        })
    }

    fn choice<T: Copy>(&mut self, path: &str, value: &Value, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        match value.as_str().and_then(|s| options.iter().find(|(n, _)| *n == s)) {
            Some((_, v)) => Some(*v),
            None => {
                self.error(path, format!("expected one of {}, found {value}", names.join(", ")));
                None
            }
        }
    }

    fn string_map(&mut self, path: &str, value: &Value) -> Option<BTreeMap<String, String>> {
        let Value::Object(map) = value else {
            self.error(path, format!("expected an object of strings, found {}", type_name(value)));
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            if let Some(s) = self.string(&join(path, k), v) {
                out.insert(k.clone(), s.to_owned());
            }
        }
        (out.len() == map.len()).then_some(out)
    }

    fn required<'v>(&mut self, path: &str, map: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
        let value = map.get(field);
        if value.is_none() {
            self.error(&join(path, field), "required field is missing");
        }
        value
    }

    fn document(&mut self, value: &Value) -> Option<PolicyDocument> {
        let map = self.object("", value, &["groups"])?;
        let groups = self.required("", map, "groups")?;
        let Value::Array(items) = groups else {
            self.error("groups", format!("expected an array, found {}", type_name(groups)));
            return None;
        };
        if items.is_empty() {
            self.error("groups", "must list at least one group");
        }
        let groups: Vec<_> =
            items.iter().enumerate().map(|(i, g)| self.group(&format!("groups[{i}]"), g)).collect();
        groups.into_iter().collect::<Option<Vec<_>>>().map(|groups| PolicyDocument { groups })
    }

    fn group(&mut self, path: &str, value: &Value) -> Option<GroupPolicy> {
        const FIELDS: &[&str] = &[
            "name",
            "tags",
            "min_capacity",
            "max_capacity",
            "metrics",
            "tolerance",
            "behavior",
            "instance_warmup_seconds",
            "on_missing_data",
            "dry_run",
            "predictive",
        ];
        let map = self.object(path, value, FIELDS)?;
        let selector = match (map.get("name"), map.get("tags")) {
            (Some(name), None) => {
                self.string(&join(path, "name"), name).map(|n| Selector::Name(n.to_owned()))
            }
            (None, Some(tags)) => {
                let tags = self.string_map(&join(path, "tags"), tags);
                if tags.as_ref().is_some_and(BTreeMap::is_empty) {
                    self.error(&join(path, "tags"), "must name at least one tag");
                }
                tags.map(Selector::Tags)
            }
            (None, None) => {
                self.error(path, "set either name or tags");
                None
            }
            (Some(_), Some(_)) => {
                self.error(path, "set either name or tags, not both");
                None
            }
        };
        let capacity = |r: &mut Self, field: &str| match map.get(field) {
            None => Some(None),
            Some(v) => r.integer(&join(path, field), v, 0, 100_000).map(|n| Some(n as i32)),
        };
        let min_capacity = capacity(self, "min_capacity");
        let max_capacity = capacity(self, "max_capacity");
        if let (Some(Some(min)), Some(Some(max))) = (min_capacity, max_capacity)
            && min > max
        {
            self.error(&join(path, "min_capacity"), format!("{min} is above max_capacity {max}"));
        }
        let metrics = self.metrics(&join(path, "metrics"), map.get("metrics"));
        let tolerance = match map.get("tolerance") {
            None => Some(Tolerance::default()),
            Some(v) => self.tolerance(&join(path, "tolerance"), v),
        };
        let behavior = match map.get("behavior") {
            None => Some(Behavior::default()),
            Some(v) => self.behavior(&join(path, "behavior"), v),
        };
        let instance_warmup_seconds = match map.get("instance_warmup_seconds") {
            None => Some(None),
            Some(v) => self.integer(&join(path, "instance_warmup_seconds"), v, 0, 3600).map(Some),
        };
        let on_missing_data = match map.get("on_missing_data") {
            None => Some(OnMissingData::default()),
            Some(v) => self.on_missing_data(&join(path, "on_missing_data"), v),
        };
        let dry_run = match map.get("dry_run") {
            None => Some(false),
            Some(v) => self.bool(&join(path, "dry_run"), v),
        };
        let predictive = match map.get("predictive") {
            None => Some(Predictive::default()),
            Some(v) => self.predictive(&join(path, "predictive"), v),
        };
        Some(GroupPolicy {
            selector: selector?,
            min_capacity: min_capacity?,
            max_capacity: max_capacity?,
            metrics: metrics?,
            tolerance: tolerance?,
            behavior: behavior?,
            instance_warmup_seconds: instance_warmup_seconds?,
            on_missing_data: on_missing_data?,
            dry_run: dry_run?,
            predictive: predictive?,
        })
    }

    fn predictive(&mut self, path: &str, value: &Value) -> Option<Predictive> {
        let map = self.object(path, value, &["mode", "history_days"])?;
        let defaults = Predictive::default();
        let mode = match map.get("mode") {
            None => Some(defaults.mode),
            Some(v) => self.choice(
                &join(path, "mode"),
                v,
                &[
                    ("off", PredictiveMode::Off),
                    ("forecast_only", PredictiveMode::ForecastOnly),
                    ("forecast_and_scale", PredictiveMode::ForecastAndScale),
                ],
            ),
        };
        let history_days = match map.get("history_days") {
            None => Some(defaults.history_days),
            // GetMetricData keeps 5-minute data for 63 days; two weeks show a weekly cycle twice.
            Some(v) => self.integer(&join(path, "history_days"), v, 0, 14).map(|d| d as u32),
        };
        Some(Predictive { mode: mode?, history_days: history_days? })
    }

    fn metrics(&mut self, path: &str, value: Option<&Value>) -> Option<Vec<MetricPolicy>> {
        let Some(value) = value else {
            self.error(path, "required field is missing");
            return None;
        };
        let Value::Array(items) = value else {
            self.error(path, format!("expected an array, found {}", type_name(value)));
            return None;
        };
        if items.is_empty() {
            self.error(path, "must list at least one metric");
        }
        let mut ids = BTreeSet::new();
        let metrics: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let metric = self.metric(&format!("{path}[{i}]"), m)?;
                if !ids.insert(metric.id.clone()) {
                    self.error(&format!("{path}[{i}].id"), format!("duplicate id {:?}", metric.id));
                }
                Some(metric)
            })
            .collect();
        metrics.into_iter().collect()
    }

    fn metric(&mut self, path: &str, value: &Value) -> Option<MetricPolicy> {
        let map = self.object(path, value, &["id", "query", "target", "step_scaling", "saturation"])?;
        let saturation = match map.get("saturation") {
            None => Some(None),
            Some(v) => self.number(&join(path, "saturation"), v).and_then(|n| {
                if n > 0.0 {
                    Some(Some(n))
                } else {
                    self.error(&join(path, "saturation"), "must be greater than 0");
                    None
                }
            }),
        };
        let id =
            self.required(path, map, "id").and_then(|v| self.string(&join(path, "id"), v)).and_then(|id| {
                if valid_query_id(id) {
                    Some(id.to_owned())
                } else {
                    self.error(
                        &join(path, "id"),
                        format!(
                            "{id:?} must start with a lowercase letter and contain only letters, digits and _"
                        ),
                    );
                    None
                }
            });
        let query = self.required(path, map, "query").and_then(|v| self.query(&join(path, "query"), v));
        let rule = match (map.get("target"), map.get("step_scaling")) {
            (Some(t), None) => self.target(&join(path, "target"), t).map(MetricRule::Target),
            (None, Some(s)) => self.step_scaling(&join(path, "step_scaling"), s).map(MetricRule::StepScaling),
            (None, None) => {
                self.error(path, "set either target or step_scaling");
                None
            }
            (Some(_), Some(_)) => {
                self.error(path, "set either target or step_scaling, not both");
                None
            }
        };
        Some(MetricPolicy { id: id?, query: query?, rule: rule?, saturation: saturation? })
    }

    fn query(&mut self, path: &str, value: &Value) -> Option<Query> {
        let map = self.object(
            path,
            value,
            &["namespace", "metric_name", "dimensions", "stat", "period_seconds", "expression"],
        )?;
        let period_seconds = match map.get("period_seconds") {
            None => Some(60),
            Some(v) => {
                let p = join(path, "period_seconds");
                self.integer(&p, v, 1, 86_400).and_then(|n| {
                    if valid_period(n) {
                        Some(n as i32)
                    } else {
                        self.error(&p, format!("{n} is not 1, 5, 10, 30 or a multiple of 60"));
                        None
                    }
                })
            }
        };
        if let Some(expression) = map.get("expression") {
            for field in ["namespace", "metric_name", "dimensions", "stat"] {
                if map.contains_key(field) {
                    self.error(&join(path, field), "not allowed with expression");
                }
            }
            let expression = self.string(&join(path, "expression"), expression)?;
            return Some(Query::Expression {
                expression: expression.to_owned(),
                period_seconds: period_seconds?,
            });
        }
        let namespace =
            self.required(path, map, "namespace").and_then(|v| self.string(&join(path, "namespace"), v));
        let metric_name =
            self.required(path, map, "metric_name").and_then(|v| self.string(&join(path, "metric_name"), v));
        let dimensions = match map.get("dimensions") {
            None => Some(BTreeMap::new()),
            Some(v) => {
                let dims = self.string_map(&join(path, "dimensions"), v);
                if dims.as_ref().is_some_and(|d| d.len() > 30) {
                    self.error(&join(path, "dimensions"), "at most 30 dimensions");
                }
                dims
            }
        };
        let stat = match map.get("stat") {
            None => Some("Average"),
            Some(v) => self.string(&join(path, "stat"), v).and_then(|s| {
                if valid_stat(s) {
                    Some(s)
                } else {
                    self.error(&join(path, "stat"), format!("{s:?} is not a CloudWatch statistic (Average, Sum, Minimum, Maximum, SampleCount, pNN, ...)"));
                    None
                }
            }),
        };
        Some(Query::Metric(MetricQuery {
            namespace: namespace?.to_owned(),
            metric_name: metric_name?.to_owned(),
            dimensions: dimensions?,
            stat: stat?.to_owned(),
            period_seconds: period_seconds?,
        }))
    }

    fn target(&mut self, path: &str, value: &Value) -> Option<Target> {
        let map = self.object(path, value, &["average", "per_instance"])?;
        let positive = |r: &mut Self, field: &str, v: &Value| {
            let p = join(path, field);
            r.number(&p, v).and_then(|n| {
                if n > 0.0 {
                    Some(n)
                } else {
                    r.error(&p, "must be greater than 0");
                    None
                }
            })
        };
        match (map.get("average"), map.get("per_instance")) {
            (Some(v), None) => positive(self, "average", v).map(Target::Average),
            (None, Some(v)) => positive(self, "per_instance", v).map(Target::PerInstance),
            _ => {
                self.error(path, "set exactly one of average or per_instance");
                None
            }
        }
    }

    fn tolerance(&mut self, path: &str, value: &Value) -> Option<Tolerance> {
        let fraction = |r: &mut Self, p: &str, v: &Value| {
            r.number(p, v).and_then(|n| {
                if (0.0..1.0).contains(&n) {
                    Some(n)
                } else {
                    r.error(p, format!("{n} is outside [0, 1)"));
                    None
                }
            })
        };
        if value.is_number() {
            return fraction(self, path, value).map(|t| Tolerance { up: t, down: t });
        }
        let map = self.object(path, value, &["up", "down"])?;
        let default = Tolerance::default();
        let up = map.get("up").map_or(Some(default.up), |v| fraction(self, &join(path, "up"), v));
        let down = map.get("down").map_or(Some(default.down), |v| fraction(self, &join(path, "down"), v));
        Some(Tolerance { up: up?, down: down? })
    }

    fn behavior(&mut self, path: &str, value: &Value) -> Option<Behavior> {
        let map = self.object(path, value, &["scale_up", "scale_down"])?;
        let defaults = Behavior::default();
        let scale_up = match map.get("scale_up") {
            None => Some(defaults.scale_up),
            Some(v) => self.rules(&join(path, "scale_up"), v, defaults.scale_up),
        };
        let scale_down = match map.get("scale_down") {
            None => Some(defaults.scale_down),
            Some(v) => self.rules(&join(path, "scale_down"), v, defaults.scale_down),
        };
        Some(Behavior { scale_up: scale_up?, scale_down: scale_down? })
    }

    /// One direction's rules; omitted fields keep that direction's defaults (as in HPA).
    fn rules(&mut self, path: &str, value: &Value, defaults: ScalingRules) -> Option<ScalingRules> {
        let map = self.object(path, value, &["stabilization_seconds", "policies", "select"])?;
        let stabilization_seconds = match map.get("stabilization_seconds") {
            None => Some(defaults.stabilization_seconds),
            Some(v) => self.integer(&join(path, "stabilization_seconds"), v, 0, 3600),
        };
        let select = match map.get("select") {
            None => Some(defaults.select),
            Some(v) => self.choice(
                &join(path, "select"),
                v,
                &[("max", Select::Max), ("min", Select::Min), ("disabled", Select::Disabled)],
            ),
        };
        let policies = match map.get("policies") {
            None => Some(defaults.policies),
            Some(Value::Array(items)) if !items.is_empty() => {
                let policies: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, p)| self.rate_policy(&format!("{path}.policies[{i}]"), p))
                    .collect();
                policies.into_iter().collect()
            }
            Some(Value::Array(_)) => {
                self.error(&join(path, "policies"), "must list at least one policy");
                None
            }
            Some(v) => {
                self.error(&join(path, "policies"), format!("expected an array, found {}", type_name(v)));
                None
            }
        };
        Some(ScalingRules {
            stabilization_seconds: stabilization_seconds?,
            policies: policies?,
            select: select?,
        })
    }

    fn rate_policy(&mut self, path: &str, value: &Value) -> Option<RatePolicy> {
        let map = self.object(path, value, &["type", "value", "period_seconds"])?;
        let kind = self.required(path, map, "type").and_then(|v| {
            self.choice(
                &join(path, "type"),
                v,
                &[("percent", RateKind::Percent), ("instances", RateKind::Instances)],
            )
        });
        let value =
            self.required(path, map, "value").and_then(|v| self.integer(&join(path, "value"), v, 1, 100_000));
        let period_seconds = self
            .required(path, map, "period_seconds")
            .and_then(|v| self.integer(&join(path, "period_seconds"), v, 1, 1800));
        Some(RatePolicy { kind: kind?, value: value? as i32, period_seconds: period_seconds? })
    }

    fn on_missing_data(&mut self, path: &str, value: &Value) -> Option<OnMissingData> {
        let map = self.object(path, value, &["failure_threshold", "fallback_capacity"])?;
        let failure_threshold = match map.get("failure_threshold") {
            None => Some(OnMissingData::default().failure_threshold),
            Some(v) => self.integer(&join(path, "failure_threshold"), v, 1, 1000).map(|n| n as u32),
        };
        let fallback_capacity = match map.get("fallback_capacity") {
            None => Some(None),
            Some(v) => self.integer(&join(path, "fallback_capacity"), v, 0, 100_000).map(|n| Some(n as i32)),
        };
        Some(OnMissingData { failure_threshold: failure_threshold?, fallback_capacity: fallback_capacity? })
    }

    fn step_scaling(&mut self, path: &str, value: &Value) -> Option<StepScaling> {
        let map =
            self.object(path, value, &["threshold", "adjustment_type", "steps", "min_adjustment_magnitude"])?;
        let threshold =
            self.required(path, map, "threshold").and_then(|v| self.number(&join(path, "threshold"), v));
        let adjustment_type = self.required(path, map, "adjustment_type").and_then(|v| {
            self.choice(
                &join(path, "adjustment_type"),
                v,
                &[
                    ("change_in_capacity", AdjustmentType::ChangeInCapacity),
                    ("exact_capacity", AdjustmentType::ExactCapacity),
                    ("percent_change_in_capacity", AdjustmentType::PercentChangeInCapacity),
                ],
            )
        });
        let min_adjustment_magnitude = match map.get("min_adjustment_magnitude") {
            None => Some(None),
            Some(v) => {
                let p = join(path, "min_adjustment_magnitude");
                if adjustment_type.is_some_and(|t| t != AdjustmentType::PercentChangeInCapacity) {
                    self.error(&p, "only valid with adjustment_type percent_change_in_capacity");
                }
                self.integer(&p, v, 1, 100_000).map(|n| Some(n as i32))
            }
        };
        let steps_path = join(path, "steps");
        let steps = match self.required(path, map, "steps") {
            Some(Value::Array(items)) if !items.is_empty() => {
                let steps: Option<Vec<Step>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.step(&format!("{steps_path}[{i}]"), s))
                    .collect();
                steps.and_then(|steps| self.ordered_steps(&steps_path, steps))
            }
            Some(_) => {
                self.error(&steps_path, "expected a non-empty array of steps");
                None
            }
            None => None,
        };
        if let (Some(AdjustmentType::ExactCapacity), Some(steps)) = (adjustment_type, &steps)
            && steps.iter().any(|s| s.adjustment < 0.0 || s.adjustment.fract() != 0.0)
        {
            self.error(&steps_path, "exact_capacity adjustments must be non-negative integers");
        }
        if let (Some(AdjustmentType::ChangeInCapacity), Some(steps)) = (adjustment_type, &steps)
            && steps.iter().any(|s| s.adjustment.fract() != 0.0)
        {
            self.error(&steps_path, "change_in_capacity adjustments must be integers");
        }
        Some(StepScaling {
            threshold: threshold?,
            adjustment_type: adjustment_type?,
            steps: steps?,
            min_adjustment_magnitude: min_adjustment_magnitude?,
        })
    }

    fn step(&mut self, path: &str, value: &Value) -> Option<Step> {
        let map = self.object(path, value, &["lower", "upper", "adjustment"])?;
        let bound = |r: &mut Self, field: &str| match map.get(field) {
            None | Some(Value::Null) => Some(None),
            Some(v) => r.number(&join(path, field), v).map(Some),
        };
        let lower = bound(self, "lower");
        let upper = bound(self, "upper");
        let adjustment =
            self.required(path, map, "adjustment").and_then(|v| self.number(&join(path, "adjustment"), v));
        let (lower, upper, adjustment) = (lower?, upper?, adjustment?);
        if let (Some(l), Some(u)) = (lower, upper)
            && l >= u
        {
            self.error(path, format!("lower {l} must be below upper {u}"));
            return None;
        }
        if lower.is_none() && upper.is_none() {
            self.error(path, "set lower, upper or both");
            return None;
        }
        Some(Step { lower, upper, adjustment })
    }

    /// AWS: "The ranges of your step adjustments can't overlap or have a gap."
    fn ordered_steps(&mut self, path: &str, mut steps: Vec<Step>) -> Option<Vec<Step>> {
        steps.sort_by(|a, b| {
            a.lower.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY))
        });
        let mut ok = true;
        for pair in steps.windows(2) {
            let (upper, lower) =
                (pair[0].upper.unwrap_or(f64::INFINITY), pair[1].lower.unwrap_or(f64::NEG_INFINITY));
            if upper > lower {
                self.error(path, format!("steps overlap: one ends at {upper}, the next starts at {lower}"));
                ok = false;
            } else if upper < lower {
                self.error(path, format!("steps leave a gap between {upper} and {lower}"));
                ok = false;
            }
        }
        ok.then_some(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../tests/fixtures/policies/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_documented_example_parses_with_its_defaults() {
        let doc = parse_policy_text(&fixture("web.json"), PolicyFormat::Json).unwrap();
        let web = &doc.groups[0];
        assert_eq!(web.selector, Selector::Name("web".into()));
        assert_eq!((web.min_capacity, web.max_capacity), (Some(2), Some(40)));
        assert_eq!(web.behavior, Behavior::default(), "the example spells out the defaults");
        assert_eq!(web.on_missing_data.fallback_capacity, Some(4));
        assert!(matches!(web.metrics[1].query, Query::Expression { period_seconds: 60, .. }));
        let batch = &doc.groups[1];
        assert_eq!(batch.selector, Selector::Tags(BTreeMap::from([("team".into(), "batch".into())])));
        assert_eq!(batch.tolerance, Tolerance { up: 0.05, down: 0.15 });
        assert_eq!(batch.behavior, Behavior::default());
        assert_eq!(batch.on_missing_data, OnMissingData::default());
        let MetricRule::StepScaling(steps) = &batch.metrics[0].rule else { panic!() };
        assert_eq!(steps.steps.len(), 3);
        assert_eq!(steps.steps[0].lower, None);
    }

    #[test]
    fn toml_reads_into_the_same_structure_and_half_a_behavior_keeps_the_other_defaults() {
        let doc = parse_policy_text(&fixture("web.toml"), PolicyFormat::Toml).unwrap();
        let behavior = &doc.groups[0].behavior;
        assert_eq!(behavior.scale_down.stabilization_seconds, 120);
        assert_eq!(behavior.scale_down.policies, Behavior::default().scale_down.policies);
        assert_eq!(behavior.scale_up, Behavior::default().scale_up);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errors = parse_policy_text(&fixture("invalid.json"), PolicyFormat::Json).unwrap_err().0;
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected = [
            "groups[0].tolerence: unknown field; expected one of name, tags, min_capacity, max_capacity, metrics, tolerance, behavior, instance_warmup_seconds, on_missing_data, dry_run, predictive",
            "groups[0].min_capacity: 10 is above max_capacity 4",
            "groups[0].metrics[0].id: \"Cpu\" must start with a lowercase letter and contain only letters, digits and _",
            "groups[0].metrics[0].query.period_seconds: 45 is not 1, 5, 10, 30 or a multiple of 60",
            "groups[0].metrics[0].target: set exactly one of average or per_instance",
            "groups[0].behavior.scale_down.select: expected one of max, min, disabled, found \"fastest\"",
            "groups[0].behavior.scale_down.policies[1].type: expected one of percent, instances, found \"pods\"",
        ];
        for line in expected {
            assert!(lines.contains(&line.to_owned()), "missing {line:?} in {lines:#?}");
        }
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    }

    #[test]
    fn structural_mistakes() {
        let check = |json: &str| -> Vec<String> {
            let value: Value = serde_json::from_str(json).unwrap();
            parse_policy(&value).unwrap_err().0.iter().map(ToString::to_string).collect()
        };
        assert_eq!(check(r#"{"groups": []}"#), ["groups: must list at least one group"]);
        assert_eq!(check(r#"[]"#), ["(root): expected an object, found an array"]);
        assert_eq!(
            check(r#"{"groups": [{"name": "a", "tags": {"x": "y"}, "metrics": []}]}"#),
            [
                "groups[0]: set either name or tags, not both",
                "groups[0].metrics: must list at least one metric"
            ]
        );
        let m = r#"{"id": "m", "query": {"namespace": "N", "metric_name": "M"}, "target": {"average": 1}}"#;
        assert_eq!(
            check(&format!(r#"{{"groups": [{{"name": "a", "metrics": [{m}, {m}]}}]}}"#)),
            ["groups[0].metrics[1].id: duplicate id \"m\""]
        );
        let steps = r#"{"id": "m", "query": {"namespace": "N", "metric_name": "M", "stat": "p99.9"},
            "step_scaling": {"threshold": 1, "adjustment_type": "change_in_capacity",
              "steps": [{"lower": 0, "upper": 10, "adjustment": 1}, {"lower": 5, "adjustment": 2.5}]}}"#;
        // Overlapping steps are rejected before their adjustments are checked.
        assert_eq!(
            check(&format!(r#"{{"groups": [{{"name": "a", "metrics": [{steps}]}}]}}"#)),
            ["groups[0].metrics[0].step_scaling.steps: steps overlap: one ends at 10, the next starts at 5"]
        );
        let fractional = steps.replace(r#""lower": 5"#, r#""lower": 10"#);
        assert_eq!(
            check(&format!(r#"{{"groups": [{{"name": "a", "metrics": [{fractional}]}}]}}"#)),
            ["groups[0].metrics[0].step_scaling.steps: change_in_capacity adjustments must be integers"]
        );
        assert!(check(r#"{"groups": [{"name": "a", "metrics": [{"id": "m", "query": {"expression": "x", "stat": "Sum"}, "target": {"average": 1}}]}]}"#)
            .contains(&"groups[0].metrics[0].query.stat: not allowed with expression".to_owned()));
    }

    #[test]
    fn steps_with_a_gap_are_rejected_with_the_field_path() {
        let steps = |second_lower: &str| {
            format!(
                r#"{{"groups": [{{"name": "a", "metrics": [{{"id": "m", "query": {{"namespace": "N", "metric_name": "M"}},
                "step_scaling": {{"threshold": 1, "adjustment_type": "change_in_capacity",
                  "steps": [{{"upper": 0, "adjustment": -1}}, {{"lower": 0, "upper": 10, "adjustment": 1}},
                            {{"lower": {second_lower}, "adjustment": 2}}]}}}}]}}]}}"#
            )
        };
        assert!(parse_policy_text(&steps("10"), PolicyFormat::Json).is_ok(), "contiguous steps are valid");
        let errors: Vec<String> = parse_policy_text(&steps("20"), PolicyFormat::Json)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors, ["groups[0].metrics[0].step_scaling.steps: steps leave a gap between 10 and 20"]);
    }

    #[test]
    fn the_predictive_section_and_saturation() {
        let doc = parse_policy_text(&fixture("predictive.json"), PolicyFormat::Json).unwrap();
        let web = &doc.groups[0];
        assert_eq!(web.predictive, Predictive { mode: PredictiveMode::ForecastAndScale, history_days: 14 });
        assert_eq!((web.metrics[0].saturation, web.metrics[1].saturation), (Some(100.0), None));
        assert_eq!(web.instance_warmup_seconds, None, "derived when unset");
        let check = |extra: &str| -> Vec<String> {
            let json = format!(
                r#"{{"groups": [{{"name": "a", "metrics": [{{"id": "m", "query": {{"namespace": "N", "metric_name": "M"}},
                "target": {{"average": 1}}, "saturation": 0}}]{extra}}}]}}"#
            );
            parse_policy_text(&json, PolicyFormat::Json)
                .unwrap_err()
                .0
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            check(r#", "predictive": {"mode": "always", "history_days": 30, "horizon": 1}"#),
            [
                "groups[0].metrics[0].saturation: must be greater than 0",
                "groups[0].predictive.horizon: unknown field; expected one of mode, history_days",
                "groups[0].predictive.mode: expected one of off, forecast_only, forecast_and_scale, found \"always\"",
                "groups[0].predictive.history_days: 30 is out of range 0..=14",
            ]
        );
    }

    #[test]
    fn statistics() {
        for ok in ["Average", "Sum", "p99", "p99.9", "tm90", "IQM", "PR(10:)"] {
            assert!(valid_stat(ok), "{ok}");
        }
        for bad in ["average", "p", "p101", "median", ""] {
            assert!(!valid_stat(bad), "{bad}");
        }
    }
}

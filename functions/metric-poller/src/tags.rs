//! The group tags the poller reads: the enable interlock and, until the policy document
//! exists, each group's metric and target.
//!
//! ```text
//! lambda-autoscaler:enabled              = true           (required to be managed)
//! lambda-autoscaler:namespace            = AWS/EC2
//! lambda-autoscaler:metric-name          = CPUUtilization
//! lambda-autoscaler:dimension:<Name>     = <value>        (zero or more)
//! lambda-autoscaler:stat                 = Average        (default Average)
//! lambda-autoscaler:period               = 60             (seconds, default 60)
//! lambda-autoscaler:target-average       = 50             (a per-instance average, e.g. CPU)
//! lambda-autoscaler:target-per-instance  = 1000           (a total divided over instances)
//! ```

use std::collections::BTreeMap;

use crate::MetricQuery;
use crate::engine::Target;
use crate::policy::{
    Behavior, GroupPolicy, MetricPolicy, MetricRule, OnMissingData, Query, Selector, Tolerance,
};

pub const ENABLED_TAG: &str = "lambda-autoscaler:enabled";
const NAMESPACE_TAG: &str = "lambda-autoscaler:namespace";
const METRIC_NAME_TAG: &str = "lambda-autoscaler:metric-name";
const DIMENSION_TAG_PREFIX: &str = "lambda-autoscaler:dimension:";
const STAT_TAG: &str = "lambda-autoscaler:stat";
const PERIOD_TAG: &str = "lambda-autoscaler:period";
const TARGET_AVERAGE_TAG: &str = "lambda-autoscaler:target-average";
const TARGET_PER_INSTANCE_TAG: &str = "lambda-autoscaler:target-per-instance";

/// A group's scaling policy as its tags give it.
#[derive(Clone, Debug, PartialEq)]
pub struct TagPolicy {
    pub query: MetricQuery,
    pub target: Target,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("tag {tag}: {message}")]
pub struct TagError {
    pub tag: String,
    pub message: String,
}

fn error(tag: &str, message: impl Into<String>) -> TagError {
    TagError { tag: tag.to_owned(), message: message.into() }
}

fn required<'a>(tags: &'a BTreeMap<String, String>, tag: &str) -> Result<&'a str, TagError> {
    tags.get(tag).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| error(tag, "missing"))
}

fn positive_number(tag: &str, value: &str) -> Result<f64, TagError> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(error(tag, format!("{value:?} is not a positive number"))),
    }
}

/// The id of the single metric a tag policy has.
pub const TAG_METRIC_ID: &str = "metric";

impl TagPolicy {
    /// The group policy the engine runs: this metric and target, everything else default.
    pub fn to_group_policy(&self, group: &str) -> GroupPolicy {
        GroupPolicy {
            selector: Selector::Name(group.to_owned()),
            min_capacity: None,
            max_capacity: None,
            metrics: vec![MetricPolicy {
                id: TAG_METRIC_ID.to_owned(),
                query: Query::Metric(self.query.clone()),
                rule: MetricRule::Target(self.target),
            }],
            tolerance: Tolerance::default(),
            behavior: Behavior::default(),
            instance_warmup_seconds: 0,
            on_missing_data: OnMissingData::default(),
            dry_run: false,
        }
    }
}

pub fn policy_from_tags(tags: &BTreeMap<String, String>) -> Result<TagPolicy, TagError> {
    let dimensions = tags
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(DIMENSION_TAG_PREFIX)?.to_owned(), v.clone())))
        .collect();
    let period_seconds = match tags.get(PERIOD_TAG) {
        None => 60,
        Some(v) => match v.trim().parse::<i32>() {
            Ok(p) if crate::policy::valid_period(i64::from(p)) => p,
            _ => return Err(error(PERIOD_TAG, format!("{v:?} is not 1, 5, 10, 30 or a multiple of 60"))),
        },
    };
    let target = match (tags.get(TARGET_AVERAGE_TAG), tags.get(TARGET_PER_INSTANCE_TAG)) {
        (Some(v), None) => Target::Average(positive_number(TARGET_AVERAGE_TAG, v)?),
        (None, Some(v)) => Target::PerInstance(positive_number(TARGET_PER_INSTANCE_TAG, v)?),
        (None, None) => {
            return Err(error(TARGET_AVERAGE_TAG, format!("missing (or set {TARGET_PER_INSTANCE_TAG})")));
        }
        (Some(_), Some(_)) => {
            return Err(error(
                TARGET_AVERAGE_TAG,
                format!("set only one of it and {TARGET_PER_INSTANCE_TAG}"),
            ));
        }
    };
    Ok(TagPolicy {
        query: MetricQuery {
            namespace: required(tags, NAMESPACE_TAG)?.to_owned(),
            metric_name: required(tags, METRIC_NAME_TAG)?.to_owned(),
            dimensions,
            stat: tags.get(STAT_TAG).cloned().unwrap_or_else(|| "Average".to_owned()),
            period_seconds,
        },
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_a_complete_policy() {
        let policy = policy_from_tags(&tags(&[
            (ENABLED_TAG, "true"),
            (NAMESPACE_TAG, "LambdaAutoscaler/Logs"),
            (METRIC_NAME_TAG, "RequestCount"),
            ("lambda-autoscaler:dimension:LoadBalancer", "app/demo/1"),
            (STAT_TAG, "Sum"),
            (TARGET_PER_INSTANCE_TAG, "1000"),
        ]))
        .unwrap();
        assert_eq!(policy.target, Target::PerInstance(1000.0));
        assert_eq!(policy.query.stat, "Sum");
        assert_eq!(policy.query.period_seconds, 60);
        assert_eq!(policy.query.dimensions["LoadBalancer"], "app/demo/1");
    }

    #[test]
    fn names_the_tag_that_is_wrong() {
        let base = [(NAMESPACE_TAG, "AWS/EC2"), (METRIC_NAME_TAG, "CPUUtilization")];
        let err = policy_from_tags(&tags(&base)).unwrap_err();
        assert_eq!(err.tag, TARGET_AVERAGE_TAG);
        let mut bad = base.to_vec();
        bad.push((TARGET_AVERAGE_TAG, "-3"));
        assert_eq!(policy_from_tags(&tags(&bad)).unwrap_err().tag, TARGET_AVERAGE_TAG);
        let mut bad = base.to_vec();
        bad.extend([(TARGET_AVERAGE_TAG, "50"), (PERIOD_TAG, "45")]);
        assert_eq!(policy_from_tags(&tags(&bad)).unwrap_err().tag, PERIOD_TAG);
        let err = policy_from_tags(&tags(&[(TARGET_AVERAGE_TAG, "50")])).unwrap_err();
        assert_eq!(err.to_string(), "tag lambda-autoscaler:namespace: missing");
    }
}

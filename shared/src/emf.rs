//! CloudWatch Embedded Metric Format: metrics as structured log lines on stdout, which
//! CloudWatch Logs turns into metrics without any API call.

use serde_json::{Map, Value, json};

use crate::metrics::Unit;

/// EMF allows at most this many values for one metric in one record.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// One EMF record: `metrics` (name, value, unit) under one set of `dimensions`.
pub fn record(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, Unit)],
    timestamp_ms: u64,
) -> String {
    let values: Vec<(&str, Vec<f64>, Unit)> = metrics.iter().map(|(n, v, u)| (*n, vec![*v], *u)).collect();
    record_values(namespace, dimensions, &values, timestamp_ms)
}

/// One EMF record whose metrics may carry several values each (at most
/// [`MAX_VALUES_PER_METRIC`]; CloudWatch computes statistics over all of them).
/// Non-finite values are left out; a metric left without values is left out.
pub fn record_values(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Vec<f64>, Unit)],
    timestamp_ms: u64,
) -> String {
    let metrics: Vec<(&str, Vec<f64>, Unit)> = metrics
        .iter()
        .map(|(name, values, unit)| {
            (*name, values.iter().copied().filter(|v| v.is_finite()).collect(), *unit)
        })
        .filter(|(_, values, _): &(&str, Vec<f64>, Unit)| !values.is_empty())
        .collect();
    debug_assert!(metrics.iter().all(|(_, v, _)| v.len() <= MAX_VALUES_PER_METRIC), "too many values");
    let mut root = Map::new();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> =
        metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": format!("{unit:?}")})).collect();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [dimension_names], "Metrics": definitions}]}),
    );
    for (name, value) in dimensions {
        root.insert((*name).into(), Value::from(*value));
    }
    for (name, values, _) in &metrics {
        let value = if values.len() == 1 { json!(values[0]) } else { json!(values) };
        root.insert((*name).into(), value);
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_embedded_metric_format() {
        let line = record(
            "LambdaAutoscaler/Poller",
            &[("AutoScalingGroupName", "web")],
            &[("DesiredCapacity", 4.0, Unit::Count), ("Bad", f64::NAN, Unit::None)],
            1_700_000_000_000,
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["AutoScalingGroupName"], "web");
        assert_eq!(value["DesiredCapacity"], 4.0);
        assert!(value.get("Bad").is_none(), "non-finite values are left out");
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "LambdaAutoscaler/Poller");
        assert_eq!(directive["Dimensions"], json!([["AutoScalingGroupName"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "DesiredCapacity", "Unit": "Count"}]));
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn metrics_may_carry_several_values() {
        let line = record_values("N", &[], &[("Latency", vec![0.1, 0.2, 0.2], Unit::Seconds)], 0);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["Latency"], json!([0.1, 0.2, 0.2]));
        assert_eq!(value["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }
}

//! CloudWatch Embedded Metric Format: metrics as structured log lines on stdout, which
//! CloudWatch Logs turns into metrics without any API call.

use serde_json::{Map, Value, json};

use crate::metrics::Unit;

/// One EMF record: `metrics` (name, value, unit) under one set of `dimensions`.
pub fn record(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, Unit)],
    timestamp_ms: u64,
) -> String {
    let mut root = Map::new();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .filter(|(_, v, _)| v.is_finite())
        .map(|(name, _, unit)| json!({"Name": name, "Unit": format!("{unit:?}")}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": namespace, "Dimensions": [dimension_names], "Metrics": definitions}]}),
    );
    for (name, value) in dimensions {
        root.insert((*name).into(), Value::from(*value));
    }
    for (name, value, _) in metrics.iter().filter(|(_, v, _)| v.is_finite()) {
        root.insert((*name).into(), json!(value));
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
}

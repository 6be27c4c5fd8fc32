//! The alarms on the functions' own metrics read what the code emits: every alarm of
//! infra/ on a namespace that is not AWS's names a metric, namespace and dimensions that
//! the deployed binary writes in its EMF records (as `least_privilege.rs` does for IAM
//! actions). The poller's binary runs under cargo-lambda's runtime emulator with `EMF=true`
//! and the function name Lambda would give it; its stdout is what CloudWatch Logs would
//! turn into metrics.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use hcl::{Expression, ObjectKey};
use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, fixture, policy_group, put_metric,
    tags, temp_dir, workspace_binary,
};
use serde_json::Value;

/// An alarm on one of the project's own metrics.
#[derive(Debug)]
struct Alarm {
    resource: String,
    namespace: String,
    metric: String,
    dimensions: BTreeSet<String>,
    /// The Terraform expression of its FunctionName dimension.
    function: String,
}

fn literal(expression: Option<&Expression>) -> Option<String> {
    match expression {
        Some(Expression::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn custom_alarms() -> Vec<Alarm> {
    let mut alarms = Vec::new();
    for body in crate::infra::terraform().values() {
        for block in body.blocks() {
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            if block.identifier() != "resource" || labels[0] != "aws_cloudwatch_metric_alarm" {
                continue;
            }
            let attribute = |key: &str| block.body().attributes().find(|a| a.key() == key).map(|a| a.expr());
            let namespace = literal(attribute("namespace")).expect("a literal namespace");
            if namespace.starts_with("AWS/") {
                continue;
            }
            let Some(Expression::Object(dimensions)) = attribute("dimensions") else {
                panic!("{}: dimensions is not an object", labels[1])
            };
            let key_name = |key: &ObjectKey| match key {
                ObjectKey::Identifier(name) => name.to_string(),
                ObjectKey::Expression(e) => e.to_string(),
                _ => panic!("an unexpected dimension key"),
            };
            alarms.push(Alarm {
                resource: labels[1].to_owned(),
                namespace,
                metric: literal(attribute("metric_name")).expect("a literal metric_name"),
                dimensions: dimensions.keys().map(key_name).collect(),
                function: dimensions
                    .iter()
                    .find(|(k, _)| key_name(k) == "FunctionName")
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
            });
        }
    }
    alarms
}

/// (namespace, metric, dimension names, FunctionName) of every metric in EMF records.
fn emitted(stdout: &str) -> BTreeSet<(String, String, BTreeSet<String>, String)> {
    let mut emitted = BTreeSet::new();
    for record in stdout.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let Some(directives) = record["_aws"]["CloudWatchMetrics"].as_array() else { continue };
        for directive in directives {
            let namespace = directive["Namespace"].as_str().unwrap_or_default();
            for dimension_set in directive["Dimensions"].as_array().into_iter().flatten() {
                let names: BTreeSet<String> = dimension_set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_owned())
                    .collect();
                let function = record["FunctionName"].as_str().unwrap_or_default().to_owned();
                for metric in directive["Metrics"].as_array().into_iter().flatten() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    emitted.insert((namespace.to_owned(), name, names.clone(), function.clone()));
                }
            }
        }
    }
    emitted
}

#[tokio::test(flavor = "multi_thread")]
async fn every_alarm_on_a_custom_metric_reads_what_the_poller_emits() {
    let alarms = custom_alarms();
    assert!(alarms.len() >= 2, "{alarms:?}");
    for alarm in &alarms {
        // Extend this test (run that function, collect its EMF) before alarming on another.
        assert!(alarm.function.starts_with("module.poller"), "{}: not the poller's metric", alarm.resource);
    }

    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "web", min: 1, max: 10, desired: 2, tags: enabled }).await;
    put_metric(&config, "Load", "web", 90.0, SystemTime::now() - Duration::from_secs(20)).await;
    let policy = temp_dir("alarms").join("policy.json");
    let group = policy_group("web", "Load", r#"{"average": 50}"#, "");
    std::fs::write(&policy, format!(r#"{{"groups": [{group}]}}"#)).unwrap();

    // The name Lambda gives the function deployed for poller "main".
    let function_name = "lambda-autoscaler-poller-main";
    let mut env = moto.env();
    env.extend([
        ("POLICY_URI", policy.display().to_string()),
        ("EMF", "true".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
    ]);
    let poller = LocalLambda::start(&workspace_binary("metric-poller"), &env, 8);
    poller.invoke(&fixture("events/eventbridge-scheduled.json"));
    let emitted = emitted(&poller.stdout());
    drop(poller);

    for alarm in &alarms {
        let wanted = (
            alarm.namespace.clone(),
            alarm.metric.clone(),
            alarm.dimensions.clone(),
            function_name.to_owned(),
        );
        assert!(
            emitted.contains(&wanted),
            "{} alarms on {wanted:?}, which the poller does not emit; it emits {emitted:#?}",
            alarm.resource
        );
    }
}

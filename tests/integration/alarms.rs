//! The alarms and dashboards on the functions' own metrics read what the code emits: every
//! alarm of infra/ on a namespace that is not AWS's, and every metric of the dashboards
//! (rendered from the templates Terraform renders), names a metric, namespace and
//! dimensions that the deployed binary writes in its EMF records (as `least_privilege.rs`
//! does for IAM actions). The binaries run under cargo-lambda's runtime emulator with the
//! function name Lambda would give them; their stdout is what CloudWatch Logs would turn
//! into metrics.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use hcl::{Expression, ObjectKey};
use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, fixture, gzip, policy_group,
    put_metric, tags, temp_dir, workspace_binary, workspace_root,
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

type Emitted = BTreeSet<(String, String, BTreeSet<String>, String)>;

/// (namespace, metric, dimension names, FunctionName) of every metric in EMF records.
fn emitted(stdout: &str) -> Emitted {
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

/// A metric a dashboard graphs: exactly named, or a SEARCH term matching whole tokens of
/// metric names (`Metric` finds `Metric_cpu`).
#[derive(Debug)]
struct Graphed {
    namespace: String,
    metric: String,
    exact: bool,
    dimensions: BTreeSet<String>,
    function: Option<String>,
}

/// The metrics of a dashboard template, rendered with `vars` as Terraform's templatefile would.
fn graphed(dashboard: &'static str, vars: &[(&str, &str)]) -> Vec<Graphed> {
    let path = workspace_root().join(format!("infra/dashboards/{dashboard}.json.tftpl"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, value) in vars {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    assert!(!text.contains("${"), "{dashboard}: a template variable the test does not set");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{dashboard}: {e}"));
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        let mut previous: Vec<String> = Vec::new();
        for row in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().unwrap();
            if let Some(expression) = row[0]["expression"].as_str() {
                out.push(search(expression));
                continue;
            }
            // The compact form: "." repeats the previous row's field, "..." all of them.
            let mut fields: Vec<String> = row.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect();
            if fields == ["..."] {
                fields.clone_from(&previous);
            }
            for (i, field) in fields.iter_mut().enumerate() {
                if field == "." {
                    field.clone_from(&previous[i]);
                }
            }
            previous.clone_from(&fields);
            let pairs: Vec<(&String, &String)> = fields[2..].chunks(2).map(|p| (&p[0], &p[1])).collect();
            out.push(Graphed {
                namespace: fields[0].clone(),
                metric: fields[1].clone(),
                exact: true,
                dimensions: pairs.iter().map(|(k, _)| (*k).clone()).collect(),
                function: pairs.iter().find(|(k, _)| *k == "FunctionName").map(|(_, v)| (*v).clone()),
            });
        }
    }
    out
}

/// `SEARCH('{namespace,dimension,...} FunctionName="f" MetricName="name"', ...)`.
fn search(expression: &str) -> Graphed {
    let schema = &expression[expression.find('{').unwrap() + 1..expression.find('}').unwrap()];
    let mut names = schema.split(',').map(str::trim);
    let namespace = names.next().unwrap().to_owned();
    let term = |key: &str| {
        let rest = &expression[expression.find(&format!("{key}="))? + key.len() + 1..];
        let exact = rest.starts_with('"');
        let value: String = if exact {
            rest[1..].chars().take_while(|c| *c != '"').collect()
        } else {
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        };
        Some((value, exact))
    };
    let (metric, exact) = term("MetricName").expect("a MetricName term");
    Graphed {
        namespace,
        metric,
        exact,
        dimensions: names.map(str::to_owned).collect(),
        function: term("FunctionName").map(|(f, _)| f),
    }
}

fn emits(emitted: &Emitted, graphed: &Graphed) -> bool {
    emitted.iter().any(|(namespace, metric, dimensions, function)| {
        let named = if graphed.exact {
            *metric == graphed.metric
        } else {
            metric.split(|c: char| !c.is_ascii_alphanumeric()).any(|token| token == graphed.metric)
        };
        *namespace == graphed.namespace
            && named
            && *dimensions == graphed.dimensions
            && graphed.function.as_ref().is_none_or(|f| f == function)
    })
}

/// The poller's EMF over one invocation: one group, a rising metric (so that a trend
/// forecast exists), `EMF=true`, named as Lambda would name it.
async fn poller_emits(moto: &Moto, function_name: &str) -> Emitted {
    let config = moto.sdk_config(metric_poller::RETRY).await;
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "web", min: 1, max: 10, desired: 2, tags: enabled }).await;
    for (minutes_ago, load) in [(5, 30.0), (4, 40.0), (3, 50.0), (2, 60.0), (1, 70.0)] {
        let at = SystemTime::now() - Duration::from_secs(60 * minutes_ago);
        put_metric(&config, "Load", "web", load, at).await;
    }
    let policy = temp_dir("alarms").join("policy.json");
    let predictive = r#", "predictive": {"mode": "forecast_only"}"#;
    // A total (per_instance): its demand is the metric itself, without an in-service history.
    let group = policy_group("web", "Load", r#"{"per_instance": 50}"#, predictive);
    std::fs::write(&policy, format!(r#"{{"groups": [{group}]}}"#)).unwrap();
    let mut env = moto.env();
    env.extend([
        ("POLICY_URI", policy.display().to_string()),
        ("EMF", "true".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
    ]);
    let poller = LocalLambda::start(&workspace_binary("metric-poller"), &env, 8);
    poller.invoke(&fixture("events/eventbridge-scheduled.json"));
    emitted(&poller.stdout())
}

/// The processor's own EMF over two deliveries of one log object, the first losing its
/// PutMetricData reply (so that the second resends that batch and reports it).
async fn processor_emits(moto: &Moto, function_name: &str) -> Emitted {
    let config = moto.sdk_config(log_processor::RETRY).await;
    let s3 = aws_sdk_s3::Client::new(&config);
    s3.create_bucket().bucket("logs").send().await.unwrap();
    let key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/x.log.gz";
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    s3.put_object().bucket("logs").key(key).body(log.into()).send().await.unwrap();
    let lose = Fault { matches: "Action=PutMetricData", kind: FaultKind::DropResponse, times: 1, after: 0 };
    let proxy = FaultProxy::start(&moto.endpoint, vec![lose]).await;
    let mut env = moto.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.extend([
        ("AWS_ENDPOINT_URL", proxy.endpoint.clone()),
        ("STATE_URI", "s3://logs/processor-state".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
    ]);
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/eventbridge-object-created.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["bucket"]["name"] = "logs".into();
    event["detail"]["object"]["key"] = key.into();
    let event_file = temp_dir("alarms-event").join("event.json");
    std::fs::write(&event_file, event.to_string()).unwrap();
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &env, 30);
    // The first fails (the lost reply: a Lambda error), the second resends and succeeds.
    let _ = std::panic::catch_unwind(|| processor.invoke(&event_file));
    processor.invoke(&event_file);
    assert_eq!(proxy.injected().len(), 1, "the reply was lost once");
    emitted(&processor.stdout())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_alarm_and_dashboard_metric_reads_what_the_functions_emit() {
    let alarms = custom_alarms();
    assert!(alarms.len() >= 2, "{alarms:?}");
    for alarm in &alarms {
        // Extend this test (the processor's EMF is collected below) before alarming on another.
        assert!(alarm.function.starts_with("module.poller"), "{}: not the poller's metric", alarm.resource);
    }
    // The names Lambda gives the functions deployed for poller "main" and the processor.
    let (poller_name, processor_name) = ("lambda-autoscaler-poller-main", "lambda-autoscaler-log-processor");
    let moto = Moto::start();
    let poller = poller_emits(&moto, poller_name).await;
    let processor = processor_emits(&moto, processor_name).await;

    for alarm in &alarms {
        let wanted =
            (alarm.namespace.clone(), alarm.metric.clone(), alarm.dimensions.clone(), poller_name.to_owned());
        assert!(
            poller.contains(&wanted),
            "{} alarms on {wanted:?}, which the poller does not emit; it emits {poller:#?}",
            alarm.resource
        );
    }
    let dashboards = [
        (
            "poller",
            vec![
                ("region", "us-east-1"),
                ("namespace", "LambdaAutoscaler/Poller"),
                ("function", poller_name),
            ],
        ),
        (
            "processor",
            vec![
                ("region", "us-east-1"),
                ("namespace", "LambdaAutoscaler/LogProcessor"),
                ("function", processor_name),
                ("failure_queue", "lambda-autoscaler-log-processor-failures"),
            ],
        ),
    ];
    let mut checked = 0;
    for (dashboard, vars) in dashboards {
        let emitted = if dashboard == "poller" { &poller } else { &processor };
        for metric in graphed(dashboard, &vars).iter().filter(|g| !g.namespace.starts_with("AWS/")) {
            assert!(
                emits(emitted, metric),
                "the {dashboard} dashboard graphs {metric:?}, which is not emitted: {emitted:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} dashboard metrics checked");
}

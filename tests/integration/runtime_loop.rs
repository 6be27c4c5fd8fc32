//! The real `bootstrap` binaries, run through `lambda_runtime::run` under cargo-lambda's
//! Runtime API emulator, reaching moto through the standard AWS environment variables.

use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, desired_capacity, fixture, gzip,
    workspace_binary,
};
use shared::aws::Clients;

#[tokio::test(flavor = "multi_thread")]
async fn both_functions_serve_invocations_through_the_lambda_runtime_api() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let clients = Clients::new(&config, false);

    // log-processor: the S3 event fixture names this bucket and (URL-encoded) key.
    clients.s3.create_bucket().bucket("alb-logs").send().await.unwrap();
    let key =
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/shop alb+1_20261130T1205Z.log.gz";
    let log = gzip(&std::fs::read(fixture("alb/sample.log")).unwrap());
    clients.s3.put_object().bucket("alb-logs").key(key).body(log.into()).send().await.unwrap();
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &moto.env());
    let response = processor.invoke(&fixture("s3-object-created.json"));
    assert_eq!(response["records"], 7, "{response}");
    assert_eq!(response["malformed"], 1, "{response}");
    assert_eq!(response["objects"][0]["found"], true, "{response}");

    // metric-poller: one group whose metric says it needs 3 instances.
    create_launch_template(&config, "lt").await;
    let tags = [
        ("lambda-autoscaler:enabled", "true"),
        ("lambda-autoscaler:namespace", "Test/App"),
        ("lambda-autoscaler:metric-name", "Queue"),
        ("lambda-autoscaler:stat", "Maximum"),
        ("lambda-autoscaler:target-per-instance", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    create_group(&config, "lt", GroupSpec { name: "workers", min: 1, max: 5, desired: 1, tags }).await;
    clients
        .cloudwatch
        .put_metric_data()
        .namespace("Test/App")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Queue")
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(
                    std::time::SystemTime::now() - std::time::Duration::from_secs(20),
                ))
                .value(25.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let poller = LocalLambda::start(&workspace_binary("metric-poller"), &moto.env());
    let response = poller.invoke(&fixture("eventbridge-scheduled.json"));
    assert_eq!(response["groups"][0]["group"], "workers", "{response}");
    assert_eq!(response["groups"][0]["action"], "scaled", "{response}");
    assert_eq!(desired_capacity(&config, "workers").await, 3);
}

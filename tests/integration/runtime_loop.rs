//! The real `bootstrap` binaries, run through `lambda_runtime::run` under cargo-lambda's
//! Runtime API emulator, reaching moto through the standard AWS environment variables.

use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, desired_capacity, fixture, gzip,
    policy_group, put_metric, tags, temp_dir, workspace_binary,
};
use shared::aws::Clients;

#[tokio::test(flavor = "multi_thread")]
async fn both_functions_serve_invocations_through_the_lambda_runtime_api() {
    let moto = Moto::start();
    let config = moto.sdk_config(metric_poller::RETRY).await;
    let clients = Clients::new(&config, false);

    // log-processor: the S3 event fixture names this bucket and (URL-encoded) key.
    clients.s3.create_bucket().bucket("alb-logs").send().await.unwrap();
    let key =
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/shop alb+1_20261130T1205Z.log.gz";
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    clients.s3.put_object().bucket("alb-logs").key(key).body(log.into()).send().await.unwrap();
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &moto.env(), 30);
    let response = processor.invoke(&fixture("events/s3-object-created.json"));
    assert_eq!(response["objects"][0]["result"], "processed", "{response}");
    assert_eq!(response["objects"][0]["records"], 7, "{response}");
    assert_eq!(response["objects"][0]["malformed"], 1, "{response}");

    // metric-poller: one group whose metric says it needs 3 instances. cargo-lambda's
    // emulator (in this mode) sends no usable deadline, so the invocation runs one tick;
    // the sub-minute loop against a real deadline is covered by metric_poller::the_handler_*.
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "workers", min: 1, max: 5, desired: 1, tags: enabled })
        .await;
    put_metric(
        &config,
        "Queue",
        "workers",
        25.0,
        std::time::SystemTime::now() - std::time::Duration::from_secs(20),
    )
    .await;
    clients.s3.create_bucket().bucket("poller-state").send().await.unwrap();
    let dir = temp_dir("runtime-loop");
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"groups": [{}]}}"#, policy_group("workers", "Queue", r#"{"per_instance": 10}"#, "")),
    )
    .unwrap();
    let mut env = moto.env();
    env.extend([
        ("POLICY_URI", policy.to_str().unwrap().to_owned()),
        ("STATE_URI", "s3://poller-state/runtime".to_owned()),
        ("TICK_INTERVAL_SECONDS", "1".to_owned()),
        ("DEADLINE_MARGIN_SECONDS", "1".to_owned()),
        ("EMF", "true".to_owned()),
    ]);
    let poller = LocalLambda::start(&workspace_binary("metric-poller"), &env, 5);
    let response = poller.invoke(&fixture("events/eventbridge-scheduled.json"));
    assert_eq!(response["ticks"], 1, "{response}");
    assert_eq!(response["groups"]["workers"], 3, "{response}");
    assert_eq!(response["last_tick"]["groups"][0]["action"], "scaled", "{response}");
    assert!(response["last_tick"]["api_calls"].as_u64().unwrap() > 0, "{response}");
    assert_eq!(desired_capacity(&config, "workers").await, 3);
}

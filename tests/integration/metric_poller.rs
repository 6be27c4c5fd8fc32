use std::time::{Duration, SystemTime};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use integration_tests::{GroupSpec, Moto, create_group, create_launch_template, desired_capacity, fixture};
use lambda_runtime::{Context, LambdaEvent};
use metric_poller::{Action, AutoScalingGroups, CloudWatchMetrics, Poller, PollerConfig};
use shared::aws::Clients;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn put_metric(clients: &Clients, name: &str, group: &str, value: f64) {
    clients
        .cloudwatch
        .put_metric_data()
        .namespace("Test/App")
        .metric_data(
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(Dimension::builder().name("Group").value(group).build())
                .timestamp(DateTime::from(SystemTime::now() - Duration::from_secs(30)))
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

fn scheduled_event() -> LambdaEvent<EventBridgeEvent> {
    let payload =
        serde_json::from_slice(&std::fs::read(fixture("eventbridge-scheduled.json")).unwrap()).unwrap();
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn scales_tagged_groups_from_their_metrics_and_leaves_the_rest() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let clients = Clients::new(&config, false);
    create_launch_template(&config, "lt").await;

    let metric_tags = |name: &str, group: &str| {
        vec![
            ("lambda-autoscaler:namespace".to_owned(), "Test/App".to_owned()),
            ("lambda-autoscaler:metric-name".to_owned(), name.to_owned()),
            ("lambda-autoscaler:dimension:Group".to_owned(), group.to_owned()),
        ]
    };
    // web-a: average target 50, value 90 on 2 instances -> ceil(2 * 90 / 50) = 4.
    let mut web_a =
        tags(&[("lambda-autoscaler:enabled", "true"), ("lambda-autoscaler:target-average", "50")]);
    web_a.extend(metric_tags("Load", "web-a"));
    create_group(&config, "lt", GroupSpec { name: "web-a", min: 1, max: 10, desired: 2, tags: web_a }).await;
    // web-b: 1000 requests at 100 per instance -> 10, clamped to the group's max of 3.
    let mut web_b = tags(&[
        ("lambda-autoscaler:enabled", "true"),
        ("lambda-autoscaler:target-per-instance", "100"),
        ("lambda-autoscaler:stat", "Sum"),
    ]);
    web_b.extend(metric_tags("Requests", "web-b"));
    create_group(&config, "lt", GroupSpec { name: "web-b", min: 1, max: 3, desired: 1, tags: web_b }).await;
    // untagged: the same kind of metric tags but no enable tag -> never touched.
    let mut untagged = tags(&[("lambda-autoscaler:target-average", "50")]);
    untagged.extend(metric_tags("Load", "untagged"));
    create_group(&config, "lt", GroupSpec { name: "untagged", min: 1, max: 10, desired: 2, tags: untagged })
        .await;
    // broken: enabled but without a target -> reported, not touched.
    let broken = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "broken", min: 1, max: 10, desired: 2, tags: broken })
        .await;

    put_metric(&clients, "Load", "web-a", 90.0).await;
    put_metric(&clients, "Requests", "web-b", 1000.0).await;
    put_metric(&clients, "Load", "untagged", 500.0).await;

    let poller = Poller::new(
        AutoScalingGroups::new(clients.autoscaling.clone()),
        CloudWatchMetrics::new(clients.cloudwatch.clone()),
        PollerConfig::default(),
    );
    let summary = poller.handle(scheduled_event()).await.expect("tick");

    let outcomes: Vec<_> =
        summary.groups.iter().map(|g| (g.group.as_str(), g.action, g.current, g.desired)).collect();
    assert_eq!(
        outcomes,
        vec![
            ("broken", Action::InvalidPolicy, 2, 2),
            ("web-a", Action::Scaled, 2, 4),
            ("web-b", Action::Scaled, 1, 3),
        ]
    );
    assert_eq!(summary.groups[1].metric_value, Some(90.0));
    assert!(
        summary.groups[0].reason.contains("lambda-autoscaler:target-average"),
        "{}",
        summary.groups[0].reason
    );
    assert_eq!(desired_capacity(&config, "web-a").await, 4);
    assert_eq!(desired_capacity(&config, "web-b").await, 3);
    assert_eq!(desired_capacity(&config, "untagged").await, 2);
    assert_eq!(desired_capacity(&config, "broken").await, 2);

    // A second tick on the same data: web-a at 4 reading 90 asks for ceil(4 * 90 / 50) = 8,
    // but the +2 of the first tick is still inside the 15 s rate period, so HPA's default
    // rules allow max(2 x 2, 2 + 4) = 6. web-b is already at its maximum and stays.
    let summary = poller.tick(SystemTime::now()).await.expect("tick");
    let web_a = summary.groups.iter().find(|g| g.group == "web-a").unwrap();
    assert_eq!(web_a.desired, 6, "{}", web_a.reason);
    assert!(web_a.reason.contains("-> 8; rate limit 6"), "{}", web_a.reason);
    let web_b = summary.groups.iter().find(|g| g.group == "web-b").unwrap();
    assert_eq!((web_b.action, web_b.desired), (Action::Unchanged, 3));
    assert_eq!(desired_capacity(&config, "web-a").await, 6);
}

#[tokio::test]
async fn dry_run_decides_without_changing_anything() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let clients = Clients::new(&config, false);
    create_launch_template(&config, "lt").await;
    let group_tags = tags(&[
        ("lambda-autoscaler:enabled", "true"),
        ("lambda-autoscaler:target-average", "50"),
        ("lambda-autoscaler:namespace", "Test/App"),
        ("lambda-autoscaler:metric-name", "Load"),
        ("lambda-autoscaler:dimension:Group", "api"),
    ]);
    create_group(&config, "lt", GroupSpec { name: "api", min: 1, max: 10, desired: 2, tags: group_tags })
        .await;
    put_metric(&clients, "Load", "api", 100.0).await;

    let poller = Poller::new(
        AutoScalingGroups::new(clients.autoscaling.clone()),
        CloudWatchMetrics::new(clients.cloudwatch.clone()),
        PollerConfig { dry_run: true, ..PollerConfig::default() },
    );
    let summary = poller.tick(SystemTime::now()).await.expect("tick");
    assert_eq!((summary.groups[0].action, summary.groups[0].desired), (Action::DryRun, 4));
    assert_eq!(desired_capacity(&config, "api").await, 2);
}

//! `make bench`: the poller's API calls per tick and tick latency for 10, 100 and 1,000
//! groups with two metrics each, against a local moto server, and the CloudWatch bill of
//! its reads: GetMetricData metrics requested over an hour of 10-s ticks, per group per
//! month, beside the alarms AWS target tracking would create for the same groups. Calls
//! and metrics are counted at the HTTP layer (every request the SDK sends, retries
//! included).

use std::time::{Duration, Instant, SystemTime};

use integration_tests::{GroupSpec, Moto, create_group, create_launch_template, put_metric, tags, temp_dir};
use metric_poller::PollerConfig;
use metric_poller::policy_source::PolicyLocation;
use shared::aws::Clients;

const POLICY: &str = r#"{"groups": [{"tags": {"team": "bench"}, "metrics": [
    {"id": "load", "query": {"namespace": "Test/App", "metric_name": "Load", "stat": "Average"}, "target": {"average": 50}},
    {"id": "queue", "query": {"namespace": "Test/App", "metric_name": "Queue", "stat": "Maximum"}, "target": {"per_instance": 100}}
]}]}"#;

/// CloudWatch prices (us-east-1): GetMetricData per metric requested; an alarm per metric
/// it evaluates, standard (60 s) or high resolution (10 s).
const PRICE_PER_METRIC_REQUESTED: f64 = 0.01 / 1000.0;
const PRICE_PER_ALARM_MONTH: f64 = 0.10;
const PRICE_PER_HIGH_RESOLUTION_ALARM_MONTH: f64 = 0.30;
/// Target tracking creates a scale-out and a scale-in alarm per policy, one policy per
/// tracked metric.
const ALARMS_PER_TRACKED_METRIC: f64 = 2.0;
const HOURS_PER_MONTH: f64 = 730.0;
/// Each with metrics of its own: a query shared by groups is requested once.
const COST_GROUPS: usize = 3;
const METRICS_PER_GROUP: f64 = 2.0;

#[tokio::main]
async fn main() {
    calls_per_tick().await;
    println!();
    read_cost().await;
}

async fn calls_per_tick() {
    println!(
        "{:>7} {:>18} {:>22} {:>18}",
        "groups", "calls/steady tick", "calls/tick acting all", "steady tick ms"
    );
    for groups in [10usize, 100, 1000] {
        let moto = Moto::start();
        let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
        create_launch_template(&config, "lt").await;
        let group_tags = tags(&[("lambda-autoscaler:enabled", "true"), ("team", "bench")]);
        // Capacity 0: no instances for moto to launch; the decisions stay at 0 (no data -> hold).
        for i in 0..groups {
            let name = format!("bench-{i:04}");
            create_group(
                &config,
                "lt",
                GroupSpec { name: &name, min: 0, max: 10, desired: 0, tags: group_tags.clone() },
            )
            .await;
        }
        put_metric(&config, "Load", "none", 1.0, SystemTime::now() - Duration::from_secs(10)).await;
        let clients = Clients::new(&config, false);
        clients.s3.create_bucket().bucket("bench-state").send().await.unwrap();
        let policy = temp_dir("bench").join("policy.json");
        std::fs::write(&policy, POLICY).unwrap();
        let poller_config = PollerConfig {
            policy: Some(PolicyLocation::Local(policy)),
            state: Some("s3://bench-state/poller".parse().unwrap()),
            ..PollerConfig::default()
        };
        let poller = metric_poller::build(&clients, poller_config).unwrap();
        let mut calls = Vec::new();
        let mut millis = Vec::new();
        let mut breakdown = Vec::new();
        for _ in 0..5 {
            let before = clients.calls.by_operation();
            let started = Instant::now();
            let tick = poller.tick_with_lease("bench", SystemTime::now(), 60).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(tick.groups.len(), groups);
            calls.push(tick.api_calls);
            let after = clients.calls.by_operation();
            breakdown.push(
                after
                    .iter()
                    .map(|(op, n)| (op.clone(), n - before.get(op).unwrap_or(&0)))
                    .filter(|(_, n)| *n > 0)
                    .collect::<Vec<_>>(),
            );
            millis.push(elapsed.as_secs_f64() * 1000.0);
        }
        // The first tick scales every group 0 -> 1 (moto matches the dimensionless queries to
        // a datapoint) and creates the state object; the others change nothing.
        let mut steady = millis[1..].to_vec();
        steady.sort_by(f64::total_cmp);
        println!(
            "{groups:>7} {:>18} {:>22} {:>18.1}",
            calls[1..].iter().max().unwrap(),
            calls[0],
            steady[steady.len() / 2]
        );
        println!("         first tick: {:?}", breakdown[0]);
        println!("         steady:     {:?}", breakdown[2]);
        drop(moto);
    }
}

/// An hour of 10-s ticks over `COST_GROUPS` groups whose two metrics (of their own) have
/// `period` seconds, datapoints published at once all along: GetMetricData metrics
/// requested.
async fn metrics_requested_in_an_hour(period: i32) -> u64 {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    create_launch_template(&config, "lt").await;
    let clients = Clients::new(&config, false);
    let unix_now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_now / 60 * 60 - 3600);
    let mut groups = Vec::new();
    for i in 0..COST_GROUPS {
        let name = format!("cost-{i:02}");
        let group_tags = tags(&[("lambda-autoscaler:enabled", "true")]);
        create_group(&config, "lt", GroupSpec { name: &name, min: 0, max: 10, desired: 0, tags: group_tags })
            .await;
        for metric in ["Load", "Queue"] {
            let data: Vec<MetricDatum> = (0..480)
                .map(|t| {
                    MetricDatum::builder()
                        .metric_name(metric)
                        .dimensions(Dimension::builder().name("Group").value(&name).build())
                        .timestamp(DateTime::from(
                            base - Duration::from_secs(1200) + Duration::from_secs(t * 10),
                        ))
                        .value(1.0)
                        .storage_resolution(if period < 60 { 1 } else { 60 })
                        .build()
                })
                .collect();
            clients
                .cloudwatch
                .put_metric_data()
                .namespace("Test/App")
                .set_metric_data(Some(data))
                .send()
                .await
                .unwrap();
        }
        let query = |metric: &str, stat: &str| {
            format!(
                r#"{{"namespace": "Test/App", "metric_name": "{metric}", "dimensions": {{"Group": "{name}"}}, "stat": "{stat}", "period_seconds": {period}}}"#
            )
        };
        groups.push(format!(
            r#"{{"name": "{name}", "metrics": [
                {{"id": "load", "query": {}, "target": {{"average": 50}}}},
                {{"id": "queue", "query": {}, "target": {{"per_instance": 100}}}}]}}"#,
            query("Load", "Average"),
            query("Queue", "Maximum")
        ));
    }
    clients.s3.create_bucket().bucket("bench-state").send().await.unwrap();
    let policy = temp_dir("bench-cost").join("policy.json");
    std::fs::write(&policy, format!(r#"{{"groups": [{}]}}"#, groups.join(","))).unwrap();
    let poller_config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some("s3://bench-state/poller".parse().unwrap()),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&clients, poller_config).unwrap();
    for tick in 0..360 {
        let summary =
            poller.tick_with_lease("bench", base + Duration::from_secs(tick * 10), 60).await.unwrap();
        assert_eq!(summary.groups.len(), COST_GROUPS);
    }
    clients.calls.metrics_requested()
}

async fn read_cost() {
    println!("GetMetricData per group ({METRICS_PER_GROUP} metrics), ticks every 10 s, prices per month");
    println!(
        "{:>7} {:>22} {:>22} {:>12} {:>12} {:>12} {:>24}",
        "period",
        "metrics requested/hour",
        "reads per datapoint",
        "1 group",
        "100 groups",
        "1,000 groups",
        "AWS alarms, 1,000 groups"
    );
    for (period, alarm_price) in [(60, PRICE_PER_ALARM_MONTH), (10, PRICE_PER_HIGH_RESOLUTION_ALARM_MONTH)] {
        let requested = metrics_requested_in_an_hour(period).await;
        let per_group_hour = requested as f64 / COST_GROUPS as f64;
        let datapoints_per_hour = METRICS_PER_GROUP * 3600.0 / f64::from(period);
        let per_group_month = per_group_hour * HOURS_PER_MONTH * PRICE_PER_METRIC_REQUESTED;
        let alarms = METRICS_PER_GROUP * ALARMS_PER_TRACKED_METRIC * alarm_price;
        println!(
            "{:>5} s {:>22.0} {:>22.2} {:>12} {:>12} {:>12} {:>24}",
            period,
            per_group_hour,
            per_group_hour / datapoints_per_hour,
            format!("${per_group_month:.2}"),
            format!("${:.0}", per_group_month * 100.0),
            format!("${:.0}", per_group_month * 1000.0),
            format!("${:.0}", alarms * 1000.0),
        );
    }
    let every_tick = METRICS_PER_GROUP * 360.0 * HOURS_PER_MONTH * PRICE_PER_METRIC_REQUESTED;
    println!("re-reading every metric at every tick would cost ${every_tick:.2} per group a month");
}

//! `make bench`: the poller's API calls per tick and tick latency for 10, 100 and 1,000
//! groups with two metrics each, against a local moto server. Calls are counted at the
//! HTTP layer (every request the SDK sends, retries included).

use std::time::{Duration, Instant, SystemTime};

use integration_tests::{GroupSpec, Moto, create_group, create_launch_template, put_metric, tags, temp_dir};
use metric_poller::PollerConfig;
use metric_poller::policy_source::PolicyLocation;
use shared::aws::Clients;

const POLICY: &str = r#"{"groups": [{"tags": {"team": "bench"}, "metrics": [
    {"id": "load", "query": {"namespace": "Test/App", "metric_name": "Load", "stat": "Average"}, "target": {"average": 50}},
    {"id": "queue", "query": {"namespace": "Test/App", "metric_name": "Queue", "stat": "Maximum"}, "target": {"per_instance": 100}}
]}]}"#;

#[tokio::main]
async fn main() {
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

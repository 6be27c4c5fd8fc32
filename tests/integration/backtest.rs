//! `autoscaler backtest` against moto: days of a policy metric and of the group's own
//! capacity metrics put with PutMetricData, read back with GetMetricData and replayed.
//!
//! What moto (5.2) does not do: GetMetricData never pages (no `NextToken`, no
//! 100,800-datapoint limit), and it keeps data of any age at any period (no retention).
//! Pagination is unit-tested on the reader (`metric_poller::aws`, pages replayed in the
//! SDK's HTTP layer); the period per age in `cli/src/backtest.rs`.

use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::{DateTime, DateTimeFormat};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use integration_tests::{GroupSpec, Moto, create_group, create_launch_template, temp_dir, workspace_binary};
use serde_json::Value;

const GROUP: &str = "backtest-web";
const DAYS: i64 = 3;
const TARGET: f64 = 50.0;
/// Time above target counts above target × (1 + the default margin of 0.2).
const ABOVE: f64 = TARGET * 1.2;

/// Puts `(unix second, value)` of one metric, a thousand datums a call.
async fn put_series(
    config: &SdkConfig,
    namespace: &str,
    name: &str,
    dimension: (&str, &str),
    points: &[(i64, f64)],
) {
    let client = aws_sdk_cloudwatch::Client::new(config);
    for batch in points.chunks(1000) {
        let data = batch
            .iter()
            .map(|(time, value)| {
                MetricDatum::builder()
                    .metric_name(name)
                    .dimensions(Dimension::builder().name(dimension.0).value(dimension.1).build())
                    .timestamp(DateTime::from_secs(*time))
                    .value(*value)
                    .build()
            })
            .collect();
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("PutMetricData");
    }
}

fn policy_file(dir: &str) -> std::path::PathBuf {
    let path = temp_dir(dir).join("policy.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"groups": [{{"name": "{GROUP}", "min_capacity": 1, "max_capacity": 20, "metrics": [{{"id": "cpu",
            "query": {{"namespace": "Test/App", "metric_name": "Cpu", "dimensions": {{"Group": "{GROUP}"}},
            "stat": "Average", "period_seconds": 60}}, "target": {{"average": {TARGET}}}}}]}}]}}"#
        ),
    )
    .unwrap();
    path
}

fn backtest(moto: &Moto, policy: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(workspace_binary("autoscaler"))
        .args(["backtest", "--group", GROUP, "--since", &format!("{DAYS}d"), "--policy"])
        .arg(policy)
        .args(extra)
        .envs(moto.env())
        .output()
        .unwrap()
}

fn unix(iso: &Value) -> i64 {
    DateTime::from_str(iso.as_str().unwrap(), DateTimeFormat::DateTime).unwrap().secs()
}

/// A diurnal load (in percent of one instance), served by a group that resizes on the
/// hour to the hour's peak over 55 %, always a little late for a rising load.
#[tokio::test]
async fn backtest_replays_days_of_history_with_a_gap_beside_what_the_group_did() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Throughput).await;
    create_launch_template(&config, "lt").await;
    create_group(&config, "lt", GroupSpec { name: GROUP, min: 1, max: 20, desired: 4, tags: Vec::new() })
        .await;

    // Every minute from two hours before the window to ten minutes from now: the window
    // ends at the last whole minute when the command runs, whenever that is.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 60 * 60;
    let first = now - DAYS * 86_400 - 2 * 3600;
    let minutes: Vec<i64> = (first..=now + 600).step_by(60).collect();
    let load = |t: i64| 300.0 + 200.0 * (2.0 * std::f64::consts::PI * (t % 86_400) as f64 / 86_400.0).sin();
    let capacity = |t: i64| {
        let hour = t / 3600 * 3600;
        let peak = (hour..hour + 3600).step_by(60).map(load).fold(0.0, f64::max);
        // The hour before's peak: late by an hour when the load rises.
        let before = (hour - 3600..hour).step_by(60).map(load).fold(0.0, f64::max);
        (peak.min(before) / 55.0).ceil()
    };
    // Four hours without the metric, a day and a half in.
    let gap = (now - DAYS * 86_400 + 36 * 3600) / 60 * 60;
    let in_gap = |t: i64| (gap..gap + 4 * 3600).contains(&t);
    let cpu: Vec<(i64, f64)> =
        minutes.iter().filter(|t| !in_gap(**t)).map(|&t| (t, load(t) / capacity(t))).collect();
    let group_capacity: Vec<(i64, f64)> = minutes.iter().map(|&t| (t, capacity(t))).collect();
    put_series(&config, "Test/App", "Cpu", ("Group", GROUP), &cpu).await;
    for name in ["GroupDesiredCapacity", "GroupInServiceInstances"] {
        put_series(&config, "AWS/AutoScaling", name, ("AutoScalingGroupName", GROUP), &group_capacity).await;
    }

    let policy = policy_file("backtest");
    let output = backtest(&moto, &policy, &["--compare", "aws-target-tracking", "--json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    assert!(stderr.contains(&format!("read day {DAYS}/")), "a progress line per day read: {stderr}");

    // What actually happened, from the data put, over the window the command read.
    let (start, end) = (unix(&report["start"]), unix(&report["end"]));
    assert_eq!(report["period_seconds"], 60, "a 60-s metric 3 days back is kept at 60 s");
    // It ends 5 minutes back, where vended metrics are published.
    assert!(end - start >= DAYS * 86_400 - 60 - 300 && end <= now - 300 + 60, "{start}..{end}");
    let window = (start..end).step_by(60);
    let instance_hours_in =
        |(start, end): (i64, i64)| (start..end).step_by(60).map(capacity).sum::<f64>() / 60.0;
    let instance_hours = instance_hours_in((start, end));
    let minutes_above =
        window.clone().filter(|t| !in_gap(*t) && load(*t) / capacity(*t) > ABOVE).count() as i64;
    let actions =
        window.clone().zip(window.clone().skip(1)).filter(|(a, b)| capacity(*a) != capacity(*b)).count();
    let runs = report["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["actual", "engine", "aws-target-tracking"]);
    let actual = &runs[0];
    assert!(
        (actual["instance_hours"].as_f64().unwrap() - instance_hours).abs() < 1e-6,
        "{actual} vs {instance_hours}"
    );
    assert!(minutes_above > 0, "the late resizes leave minutes above target");
    assert_eq!(actual["seconds_above_target"], minutes_above * 60, "{actual}");
    assert_eq!(actual["scaling_actions"], actions, "{actual}");

    // The gap: reported where it is, and the capacity series complete.
    let gaps = report["gaps"].as_array().unwrap();
    let cpu_gaps = gaps.iter().find(|g| g["series"] == "cpu").unwrap();
    assert_eq!(cpu_gaps["missing_periods"], 240, "{cpu_gaps}");
    assert_eq!((cpu_gaps["gaps"].as_i64(), cpu_gaps["longest_seconds"].as_i64()), (Some(1), Some(4 * 3600)));
    assert_eq!(cpu_gaps["longest_start"], gap);
    for series in ["GroupDesiredCapacity", "GroupInServiceInstances"] {
        let g = gaps.iter().find(|g| g["series"] == series).unwrap();
        assert_eq!(g["missing_periods"], 0, "{g}");
    }
    assert_eq!(report["load"]["model"], "load = metric × instances in service");

    // The replays: over the same days, within the policy's bounds, following the load.
    for run in &runs[1..] {
        let hours = run["instance_hours"].as_f64().unwrap();
        assert!(
            hours > instance_hours * 0.5 && hours < instance_hours * 2.0,
            "{run} vs actual {instance_hours}"
        );
        assert!(run["scaling_actions"].as_u64().unwrap() >= 2 * DAYS as u64, "up and down each day: {run}");
        assert!((1..=20).contains(&run["peak_capacity"].as_i64().unwrap()), "{run}");
        assert!(run["seconds_above_target"].is_i64(), "{run}");
    }

    // The table: the same figures, with the gap said; and the chart.
    let svg = temp_dir("backtest-plot").join("week.svg");
    let output =
        backtest(&moto, &policy, &["--compare", "aws-target-tracking", "--plot", svg.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    println!("{table}");
    // Its own window (a minute later if a minute has turned since).
    let header: Vec<&str> = table.lines().next().unwrap().split([' ', ',']).collect();
    let window = (unix(&Value::from(header[2])), unix(&Value::from(header[4])));
    let hours_row = table.lines().find(|l| l.starts_with("instance-hours")).unwrap();
    let actual_hours = hours_row.split_whitespace().nth(1).unwrap();
    assert_eq!(actual_hours, format!("{:.2}", instance_hours_in(window)), "the actual column: {hours_row}");
    for line in [
        "gaps in cpu: 240 periods of 60 s missing in 1 gap(s), the longest 4.0 h",
        "actual",
        "aws-target-tracking",
        "minutes above target +20 %",
        "scaling actions",
    ] {
        assert!(table.contains(line), "{line:?} missing in\n{table}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    for legend in
        ["desired capacity, actual", "desired capacity, engine", "desired capacity, aws-target-tracking"]
    {
        assert!(chart.contains(legend), "no {legend:?} in the chart");
    }
}

#[tokio::test]
async fn backtest_without_group_metrics_says_how_to_turn_collection_on() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Throughput).await;
    let now = SystemTime::now() - Duration::from_secs(120);
    let now = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 60 * 60;
    let cpu: Vec<(i64, f64)> = (now - 3600..now).step_by(60).map(|t| (t, 40.0)).collect();
    put_series(&config, "Test/App", "Cpu", ("Group", GROUP), &cpu).await;

    let output = backtest(&moto, &policy_file("backtest-no-capacity"), &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no result on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("no GroupDesiredCapacity datapoints for group {GROUP}")), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "aws autoscaling enable-metrics-collection --auto-scaling-group-name {GROUP} --granularity 1Minute"
        )),
        "{stderr}"
    );
}

//! `autoscaler backtest` against moto: days of a policy metric and of the group's own
//! capacity metrics put with PutMetricData, read back with GetMetricData and replayed.
//!
//! What moto (5.2) does not do: GetMetricData never pages (no `NextToken`, no
//! 100,800-datapoint limit), and it keeps data of any age at any period (no retention).
//! Pagination is shown against a stand-in that pages (the last test); the period per age
//! is unit-tested in `cli/src/backtest.rs`.

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
    assert!(end - start >= DAYS * 86_400 - 60 && end <= now + 600, "{start}..{end}");
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

/// Answers GetMetricData as CloudWatch does when a result is longer than a page: the first
/// page with a `NextToken`, the rest when asked with it. Records each request's body.
async fn paging_cloudwatch(bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let result = |id: &str, points: &[(&str, f64)]| {
        let times: String = points.iter().map(|(t, _)| format!("<member>{t}</member>")).collect();
        let values: String = points.iter().map(|(_, v)| format!("<member>{v}</member>")).collect();
        format!(
            "<member><Id>{id}</Id><Label>{id}</Label><Timestamps>{times}</Timestamps><Values>{values}</Values><StatusCode>PartialData</StatusCode></member>"
        )
    };
    let first_page = format!(
        "<MetricDataResults>{}</MetricDataResults><NextToken>page-2</NextToken>",
        result("a", &[("2026-11-30T12:02:00Z", 3.0), ("2026-11-30T12:01:00Z", 2.0)])
    );
    let second_page = format!(
        "<MetricDataResults>{}{}</MetricDataResults>",
        result("a", &[("2026-11-30T12:00:00Z", 1.0)]),
        result("b", &[("2026-11-30T12:00:00Z", 9.0)])
    );
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Headers, then a Content-Length body.
            let body = loop {
                let n = stream.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break text[end + 4..].to_owned();
                    }
                }
            };
            let page = if body.contains("NextToken=page-2") { &second_page } else { &first_page };
            bodies.lock().unwrap().push(body);
            let xml = format!(
                r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult>{page}</GetMetricDataResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetMetricDataResponse>"#
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    endpoint
}

/// moto never pages GetMetricData; CloudWatch does past 100,800 datapoints. The reader
/// `backtest` uses (the poller's adapter) follows `NextToken` and joins each query's pages.
#[tokio::test]
async fn the_history_reader_follows_next_token_and_joins_the_pages() {
    use metric_poller::MetricsSource;
    use metric_poller::policy::{MetricQuery, Query};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let endpoint = paging_cloudwatch(bodies.clone()).await;
    let config = shared::aws::sdk_config_loader(shared::aws::RetryProfile::Throughput)
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new("t", "t", None, None, "test"))
        .load()
        .await;
    let reader = metric_poller::CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&config));
    let query = |name: &str| {
        Query::Metric(MetricQuery {
            namespace: "Test/App".into(),
            metric_name: name.into(),
            dimensions: Default::default(),
            stat: "Average".into(),
            period_seconds: 60,
        })
    };
    let start = UNIX_EPOCH + Duration::from_secs(1_796_040_000);
    let series = reader
        .datapoints(
            &[("a".into(), query("A")), ("b".into(), query("B"))],
            start,
            start + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let values = |id: &str| -> Vec<f64> {
        let mut points = series[id].clone();
        points.sort_by_key(|p| p.time);
        points.iter().map(|p| p.value).collect()
    };
    assert_eq!(values("a"), [1.0, 2.0, 3.0], "both pages of a");
    assert_eq!(values("b"), [9.0]);
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2, "one request per page");
    assert!(!bodies[0].contains("NextToken") && bodies[1].contains("NextToken=page-2"), "{bodies:?}");
}

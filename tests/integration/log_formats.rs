//! Every log fixture through `autoscaler logs summarize --json`, detected and named: each
//! line is a record, skipped for a stated reason, or malformed, and the metrics carry AWS's
//! names and meanings. A new format or metric gets a fixture and a case here (and a row
//! in the README's metrics table).

use std::process::Command;

use integration_tests::{fixture, workspace_binary};
use serde_json::Value;

/// One fixture: its format, totals, reasons and some metric values.
struct Case {
    file: &'static str,
    format: &'static str,
    /// records, malformed, skipped
    totals: (u64, u64, u64),
    skipped: &'static [(&'static str, u64)],
    malformed: &'static [(&'static str, u64)],
    /// `name@minute{dim=value,...}` (minute within the hour; a distribution's sample count).
    metrics: &'static [(&'static str, f64)],
    /// Metric names that must not appear at all.
    absent: &'static [&'static str],
}

const CONN_LOG: &str = "logs/conn_log.123456789012_elasticloadbalancing_us-east-1_app.shop-alb.50dc6c495c0c9188_20261130T1205Z_10.0.0.5_2abc9f.log";
const VPC_NO_COUNTS: &str =
    "logs/123456789012_vpcflowlogs_us-east-1_fl-0a1b2c3d4e5f60718_20261130T1205Z_5f3e2a1b.log";
const VPC_NAT_SHAPE: &str =
    "logs/123456789012_vpcflowlogs_us-east-1_fl-0b2c3d4e5f6071829_20261130T1210Z_7a6b5c4d.log";

const CASES: &[Case] = &[
    Case {
        file: "logs/alb.log",
        format: "alb",
        totals: (7, 1, 0),
        skipped: &[],
        malformed: &[("bad time", 1)],
        metrics: &[
            ("RequestCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 5.0),
            // Entries with all three times; the target's time alone is ALB's TargetResponseTime.
            ("TotalProcessingTime@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 3.0),
            ("TargetResponseTime@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 3.0),
            ("TargetResponseTime@1{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 2.0),
        ],
        absent: &["Latency"],
    },
    Case {
        file: CONN_LOG,
        format: "alb",
        totals: (5, 1, 0),
        skipped: &[],
        malformed: &[("no client_port", 1)],
        metrics: &[
            ("ConnectionCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 4.0),
            ("TLSHandshakeFailureCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 2.0),
            ("TLSHandshakeLatency@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 2.0),
            (
                "TLSHandshakeFailureCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,VerifyStatus=Failed:CertificateExpired}",
                1.0,
            ),
            ("ConnectionCount@1{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 1.0),
        ],
        absent: &["RequestCount"],
    },
    Case {
        file: "logs/elb.log",
        format: "elb",
        totals: (5, 1, 0),
        skipped: &[],
        malformed: &[("bad time", 1)],
        metrics: &[
            // Classic ELB's Latency is the back end's time; the sum has its own name.
            ("Latency@0{LoadBalancerName=shop-classic}", 3.0),
            ("TotalProcessingTime@0{LoadBalancerName=shop-classic}", 3.0),
            ("HTTPCode_5XX_Count@0{LoadBalancerName=shop-classic}", 1.0),
        ],
        absent: &["TargetResponseTime"],
    },
    Case {
        file: "logs/cloudfront.log",
        format: "cloudfront",
        totals: (3, 0, 2),
        skipped: &[("header", 2)],
        malformed: &[],
        metrics: &[("RequestCount@0{}", 2.0), ("Latency@0{}", 2.0)],
        absent: &["TotalProcessingTime"],
    },
    Case {
        file: "logs/cloudfront-cut.log",
        format: "cloudfront",
        totals: (2, 0, 0),
        skipped: &[],
        malformed: &[],
        metrics: &[("RequestCount@0{}", 2.0), ("HTTPCode_3XX_Count@0{}", 1.0)],
        absent: &[],
    },
    Case {
        file: "logs/vpcflow.log",
        format: "vpcflow",
        totals: (3, 0, 2),
        skipped: &[("header", 1), ("NODATA flow record", 1)],
        malformed: &[],
        metrics: &[("FlowCount@0{}", 2.0), ("RejectedFlowCount@0{}", 1.0), ("Bytes@0{}", 8498.0)],
        absent: &[],
    },
    Case {
        file: VPC_NO_COUNTS,
        format: "vpcflow",
        totals: (4, 0, 2),
        skipped: &[("header", 1), ("NODATA flow record", 1)],
        malformed: &[],
        // In the minute of the delivery time in the file name (12:05).
        metrics: &[("FlowCount@5{}", 4.0), ("RejectedFlowCount@5{}", 1.0)],
        absent: &["Packets", "Bytes"],
    },
    Case {
        file: VPC_NAT_SHAPE,
        format: "vpcflow",
        totals: (3, 0, 1),
        skipped: &[("header", 1)],
        malformed: &[],
        // No action: nothing is rejected, and nothing claims so.
        metrics: &[("FlowCount@10{}", 3.0)],
        absent: &["RejectedFlowCount", "Packets", "Bytes"],
    },
    Case {
        file: "logs/cloudtrail-insights.json",
        format: "cloudtrail",
        totals: (2, 0, 2),
        skipped: &[("CloudTrail Insights event", 2)],
        malformed: &[],
        metrics: &[
            ("RequestCount@0{EventSource=sqs.amazonaws.com}", 2.0),
            ("ErrorCount@0{EventSource=sqs.amazonaws.com}", 1.0),
        ],
        absent: &[],
    },
];

fn summarize(file: &str, format: &str) -> Value {
    let output = Command::new(workspace_binary("autoscaler"))
        .args(["logs", "summarize", "--json", "--format", format])
        .arg(fixture(file))
        .output()
        .unwrap();
    assert!(output.status.success(), "{file}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `name@minute{dims}` → value, as in [`Case::metrics`].
fn metrics(summary: &Value) -> Vec<(String, f64)> {
    summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let dims: Vec<String> = m["dimensions"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            // A distribution's values and counts sit beside the name, a single value as `value`.
            let value = match m["value"].as_f64() {
                Some(value) => value,
                None => m["counts"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum(),
            };
            let minute = m["timestamp"].as_i64().unwrap() % 3600 / 60;
            (format!("{}@{minute}{{{}}}", m["name"].as_str().unwrap(), dims.join(",")), value)
        })
        .collect()
}

fn reasons(summary: &Value, field: &str) -> Vec<(String, u64)> {
    summary[field].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}

#[test]
fn every_fixture_line_is_accounted_for_detected_or_named() {
    for case in CASES {
        let detected = summarize(case.file, "auto");
        assert_eq!(detected, summarize(case.file, case.format), "{}: detected vs named", case.file);
        let summary = detected;
        assert_eq!(summary["format"], case.format, "{}", case.file);
        let totals = ["records", "malformed", "skipped"].map(|k| summary[k].as_u64().unwrap());
        assert_eq!(totals, [case.totals.0, case.totals.1, case.totals.2], "{}", case.file);
        let expect = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            let mut pairs: Vec<(String, u64)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            pairs.sort();
            pairs
        };
        assert_eq!(reasons(&summary, "skipped_reasons"), expect(case.skipped), "{}", case.file);
        assert_eq!(reasons(&summary, "malformed_reasons"), expect(case.malformed), "{}", case.file);
        let metrics = metrics(&summary);
        for (metric, value) in case.metrics {
            let found = metrics.iter().find(|(m, _)| m == metric).map(|(_, v)| *v);
            assert_eq!(found, Some(*value), "{}: {metric} in {metrics:#?}", case.file);
        }
        for name in case.absent {
            assert!(
                !metrics.iter().any(|(m, _)| m.starts_with(&format!("{name}@"))),
                "{}: {name}",
                case.file
            );
        }
    }
}

#[test]
fn a_flow_without_any_time_is_skipped_with_its_reason_not_lost() {
    // The same flows in a file whose name carries no delivery time.
    let dir = integration_tests::temp_dir("flows-without-time");
    let file = dir.join("flows.log");
    std::fs::copy(fixture(VPC_NAT_SHAPE), &file).unwrap();
    let output = Command::new(workspace_binary("autoscaler"))
        .args(["logs", "summarize", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["records"].as_u64(), summary["skipped"].as_u64()), (Some(0), Some(4)));
    assert_eq!(summary["skipped_reasons"]["flow without start, end or a delivery time in the key"], 3);
}

/// `ROUTES` applies to `logs summarize` as to the Lambda: each request counted again under
/// its route, unmatched ones under `other`.
#[test]
fn logs_summarize_counts_requests_per_route_from_routes() {
    let output = Command::new(workspace_binary("autoscaler"))
        .args(["logs", "summarize", "--json"])
        .arg(fixture("logs/alb.log"))
        .env("ROUTES", "/api=api,/=home")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut per_route: Vec<(String, f64)> = Vec::new();
    for (key, value) in metrics(&summary) {
        let Some(route) = key.strip_prefix("RequestCount@").and_then(|k| k.split("Route=").nth(1)) else {
            continue;
        };
        let route = route.trim_end_matches('}').to_owned();
        match per_route.iter_mut().find(|(r, _)| *r == route) {
            Some((_, total)) => *total += value,
            None => per_route.push((route, value)),
        }
    }
    per_route.sort_by(|a, b| a.0.cmp(&b.0));
    // The fixture's 7 requests: /api twice, / twice, /cart, /old and /missing.
    let expected = [("api".to_owned(), 2.0), ("home".to_owned(), 2.0), ("other".to_owned(), 3.0)];
    assert_eq!(per_route, expected);
}

/// `logs summarize` with the environment `env`, its JSON summary and its text.
fn summarize_with(file: &std::path::Path, env: &[(&str, &str)]) -> (Value, String) {
    let run = |json: bool| {
        let mut command = Command::new(workspace_binary("autoscaler"));
        command.args(["logs", "summarize"]).args(json.then_some("--json")).arg(file);
        command.envs(env.iter().copied());
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    (serde_json::from_str(&run(true)).unwrap(), run(false))
}

fn gzip_file(dir: &std::path::Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(content).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, encoder.finish().unwrap()).unwrap();
    file
}

/// The cardinality bomb through the CLI, with `MAX_DIMENSION_VALUES` as the Lambda reads
/// it: each line its own load balancer and target group; past the cap they count under
/// `other`, every request still counted, and the summary says how many were capped.
#[test]
fn logs_summarize_caps_distinct_dimension_values_and_reports_it() {
    let line = std::fs::read_to_string(fixture("logs/alb.log")).unwrap().lines().next().unwrap().to_owned();
    let log: String = (0..50)
        .map(|i| {
            line.replace("app/shop-alb/50dc6c495c0c9188", &format!("app/lb-{i}/1"))
                .replace("targetgroup/shop/", &format!("targetgroup/tg-{i}/"))
                + "\n"
        })
        .collect();
    let dir = integration_tests::temp_dir("cardinality");
    let file = gzip_file(&dir, "bomb.log.gz", log.as_bytes());
    let (summary, text) = summarize_with(&file, &[("MAX_DIMENSION_VALUES", "5")]);
    assert_eq!((summary["records"].as_u64(), summary["capped"].as_u64()), (Some(50), Some(45)));
    let reason = "dimension value beyond MAX_DIMENSION_VALUES, counted under other";
    assert_eq!(reasons(&summary, "capped_reasons"), [(reason.to_owned(), 45)]);
    let mut per_balancer: Vec<(String, f64)> = metrics(&summary)
        .into_iter()
        .filter(|(key, _)| key.starts_with("RequestCount@") && !key.contains("TargetGroup"))
        .collect();
    per_balancer.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(per_balancer.len(), 6, "5 load balancers and other: {per_balancer:?}");
    assert_eq!(per_balancer.iter().map(|(_, n)| n).sum::<f64>(), 50.0, "every request counted");
    assert!(
        per_balancer.contains(&("RequestCount@0{LoadBalancer=other}".to_owned(), 45.0)),
        "{per_balancer:?}"
    );
    assert!(text.contains(&format!("capped      45 ({reason}: 45)")), "{text}");
}

/// One CloudTrail event holding a string over `MAX_LINE_BYTES` (100 MB in the security
/// review): malformed with its reason, never kept whole, and the events around it counted.
#[test]
fn logs_summarize_reads_past_a_cloudtrail_event_over_the_line_limit() {
    let event =
        |source: &str| format!(r#"{{"eventTime": "2026-11-30T12:00:05Z", "eventSource": "{source}"}}"#);
    let huge = "x".repeat(3 << 20);
    let doc = format!(
        r#"{{"Records": [{}, {}, {}]}}"#,
        event("s3.amazonaws.com"),
        event(&huge),
        event("sqs.amazonaws.com")
    );
    let dir = integration_tests::temp_dir("cloudtrail-huge");
    let file = gzip_file(&dir, "trail.json.gz", doc.as_bytes());
    let (summary, _) = summarize_with(&file, &[]);
    let totals = ["records", "malformed", "capped"].map(|k| summary[k].as_u64().unwrap());
    assert_eq!(totals, [2, 1, 0]);
    assert_eq!(reasons(&summary, "malformed_reasons"), [("event over MAX_LINE_BYTES".to_owned(), 1)]);
}

/// `MAX_OBJECT_BYTES` stops the read where it is reached: what was read before is counted,
/// and the stop is reported.
#[test]
fn logs_summarize_stops_at_max_object_bytes_and_reports_it() {
    let log = std::fs::read(fixture("logs/alb.log")).unwrap().repeat(100);
    let dir = integration_tests::temp_dir("object-bytes");
    let file = gzip_file(&dir, "big.log.gz", &log);
    let (summary, text) = summarize_with(&file, &[("MAX_OBJECT_BYTES", "20000")]);
    let records = summary["records"].as_u64().unwrap();
    assert!(records > 0 && records < 700, "{records}");
    let reason = "object stopped at MAX_OBJECT_BYTES decompressed";
    assert_eq!(reasons(&summary, "capped_reasons"), [(reason.to_owned(), 1)]);
    assert!(text.contains(&format!("capped      1 ({reason}: 1)")), "{text}");
    // Refused at start, as the Lambda would refuse it.
    let output = Command::new(workspace_binary("autoscaler"))
        .args(["logs", "summarize"])
        .arg(&file)
        .env("MAX_DATUMS_PER_OBJECT", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MAX_DATUMS_PER_OBJECT"));
}

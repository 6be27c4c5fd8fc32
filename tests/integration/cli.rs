//! The `autoscaler` binary, run as a person would.

use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::{
    GroupSpec, Moto, create_group, create_launch_template, desired_capacity, fixture, gzip, workspace_binary,
};

fn autoscaler() -> Command {
    Command::new(workspace_binary("autoscaler"))
}

#[test]
fn help_lists_the_subcommands() {
    let output = autoscaler().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["poll", "logs"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn logs_summarize_prints_the_datums_as_json() {
    let output =
        autoscaler().args(["logs", "summarize", "--json"]).arg(fixture("alb/sample.log")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["records"].as_u64(), summary["malformed"].as_u64()), (Some(7), Some(1)));
    let request_counts: Vec<(i64, f64)> = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "RequestCount")
        .map(|m| (m["timestamp"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(request_counts, vec![(1_796_040_000, 5.0), (1_796_040_060, 2.0)]);
}

#[test]
fn logs_summarize_reads_gzip_from_stdin_as_a_table() {
    let mut child = autoscaler()
        .args(["logs", "summarize", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = gzip(&std::fs::read(fixture("alb/sample.log")).unwrap());
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.starts_with("format alb: 7 records, 1 malformed, 0 skipped"), "{table}");
    assert!(table.contains("HTTPCode_5XX_Count"), "{table}");
}

#[test]
fn logs_summarize_reports_a_missing_file() {
    let output = autoscaler().args(["logs", "summarize", "/nonexistent/access.log"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/access.log"));
}

#[tokio::test]
async fn poll_once_runs_a_tick_against_the_configured_endpoint() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    create_launch_template(&config, "lt").await;
    let tags = [
        ("lambda-autoscaler:enabled", "true"),
        ("lambda-autoscaler:namespace", "Test/App"),
        ("lambda-autoscaler:metric-name", "Load"),
        ("lambda-autoscaler:target-average", "50"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    create_group(&config, "lt", GroupSpec { name: "cli-group", min: 1, max: 10, desired: 3, tags }).await;

    // No metric data: the poller holds; --dry-run and --json must still work end to end.
    let output =
        autoscaler().args(["poll", "--once", "--dry-run", "--json"]).envs(moto.env()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tick: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(tick["groups"][0]["group"], "cli-group");
    assert_eq!(tick["groups"][0]["action"], "unchanged");
    assert_eq!(tick["groups"][0]["metric_value"], serde_json::Value::Null);

    let output = autoscaler().args(["poll", "--once"]).envs(moto.env()).output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("cli-group") && table.contains("no valid metric data: hold"), "{table}");
    assert_eq!(desired_capacity(&config, "cli-group").await, 3);
}

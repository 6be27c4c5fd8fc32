//! The `autoscaler` binary, run as a person would.

use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::{
    GroupSpec, Moto, create_group, create_launch_template, desired_capacity, fixture, gzip, policy_group,
    put_metric, tags, temp_dir, workspace_binary,
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
        autoscaler().args(["logs", "summarize", "--json"]).arg(fixture("logs/alb.log")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["records"].as_u64(), summary["malformed"].as_u64()), (Some(7), Some(1)));
    let request_counts: Vec<(i64, f64)> = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "RequestCount" && m["dimensions"].as_object().unwrap().len() == 1)
        .map(|m| (m["timestamp"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(request_counts, vec![(1_796_040_000, 5.0), (1_796_040_060, 2.0)]);
}

#[test]
fn logs_summarize_reads_gzip_from_stdin() {
    let mut child = autoscaler()
        .args(["logs", "summarize", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("format      alb\n"), "{text}");
    assert!(text.contains("\nrecords     7, malformed 1 (bad time: 1), skipped 0\n"), "{text}");
    assert!(text.contains(", 5XX 28.6 %\n"), "{text}");
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
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "cli-group", min: 1, max: 10, desired: 3, tags: enabled })
        .await;
    let policy = temp_dir("cli-poll").join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"groups": [{}]}}"#, policy_group("cli-group", "Load", r#"{"average": 50}"#, "")),
    )
    .unwrap();

    // No metric data: the poller holds; --dry-run and --json must still work end to end.
    let output = autoscaler()
        .args(["poll", "--once", "--dry-run", "--json", "--policy"])
        .arg(&policy)
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tick: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(tick["groups"][0]["group"], "cli-group");
    assert_eq!(tick["groups"][0]["action"], "unchanged");
    assert_eq!(tick["groups"][0]["metrics"]["m"], serde_json::Value::Null);
    assert!(tick["api_calls"].as_u64().unwrap() >= 2, "{tick}");

    // With data, as a table; POLICY_URI instead of --policy.
    put_metric(
        &config,
        "Load",
        "cli-group",
        100.0,
        std::time::SystemTime::now() - std::time::Duration::from_secs(10),
    )
    .await;
    let output =
        autoscaler().args(["poll", "--once"]).envs(moto.env()).env("POLICY_URI", &policy).output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("cli-group") && table.contains("scaled") && table.contains("m=100"), "{table}");
    assert_eq!(desired_capacity(&config, "cli-group").await, 6);

    // Neither --once nor --watch: a usage error.
    assert_eq!(autoscaler().arg("poll").output().unwrap().status.code(), Some(2));
}

#[test]
fn policy_check_accepts_valid_documents_with_a_line_per_group() {
    for file in ["policies/web.json", "policies/web.toml", "policies/predictive.json"] {
        let output = autoscaler().args(["policy", "check"]).arg(fixture(file)).output().unwrap();
        assert!(output.status.success(), "{file}: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.starts_with("ok: group web: metrics cpu"), "{text}");
    }
}

#[test]
fn policy_check_warns_of_a_warmup_shorter_than_boot_and_the_metrics_delay() {
    let check = |file: &str, extra: &[&str]| {
        let output = autoscaler().args(["policy", "check"]).arg(fixture(file)).args(extra).output().unwrap();
        assert!(output.status.success(), "{file}: a warning is not an error");
        String::from_utf8(output.stderr).unwrap()
    };
    // cpu.json's 60 s against the assumed 180 s boot plus a 10-s period and its 10-s lag.
    let warning = check("policies/cpu.json", &[]);
    assert!(
        warning.contains("groups[0].instance_warmup_seconds: 60 s is shorter than boot (180 s, assumed)"),
        "{warning}"
    );
    let warning = check("policies/cpu.json", &["--boot-seconds", "100"]);
    assert!(warning.contains("boot (100 s) + the metrics' period and lag (20 s) = 120 s"), "{warning}");
    // A measured boot short enough: nothing to warn of.
    assert_eq!(check("policies/cpu.json", &["--boot-seconds", "40"]), "");
    // Left unset, the warmup is derived: nothing to warn of.
    assert_eq!(check("policies/web.json", &[]), "");
    assert_eq!(check("policies/predictive.json", &[]), "");
}

#[test]
fn policy_check_lists_every_problem_by_field_path() {
    let output =
        autoscaler().args(["policy", "check"]).arg(fixture("policies/invalid.json")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let errors = String::from_utf8(output.stderr).unwrap();
    assert!(errors.contains("7 problem(s)"), "{errors}");
    assert!(errors.contains("  groups[0].behavior.scale_down.policies[1].type: expected one of percent, instances, found \"pods\""), "{errors}");
    assert!(errors.contains("  groups[0].tolerence: unknown field"), "{errors}");
}

#[test]
fn policy_check_json_gives_the_same_verdict_warnings_and_field_paths() {
    let check = |file: &str| {
        let output = autoscaler().args(["policy", "check", "--json"]).arg(fixture(file)).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        (output.status.code(), report)
    };
    let (code, report) = check("policies/invalid.json");
    assert_eq!((code, &report["valid"]), (Some(1), &serde_json::json!(false)));
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 7, "{report}");
    let unknown = errors.iter().find(|e| e["path"] == "groups[0].tolerence").expect("the misspelt field");
    assert!(unknown["message"].as_str().unwrap().starts_with("unknown field; expected one of"), "{report}");
    let (code, report) = check("policies/cpu.json");
    assert_eq!((code, &report["valid"]), (Some(0), &serde_json::json!(true)));
    assert_eq!(report["warnings"][0]["path"], "groups[0].instance_warmup_seconds", "{report}");
    assert!(report["groups"][0].as_str().unwrap().starts_with("group "), "{report}");
}

/// `autoscaler simulate --json` on cpu.json with `extra`: the runs.
fn simulate(extra: &[&str]) -> Vec<serde_json::Value> {
    let output = autoscaler()
        .args(["simulate", "--initial-capacity", "4", "--json"])
        .arg("--policy")
        .arg(fixture("policies/cpu.json"))
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    result["runs"].as_array().unwrap().clone()
}

#[test]
fn simulate_replays_a_trace_through_the_pipeline_and_plots_it() {
    let dir = std::env::temp_dir().join(format!("autoscaler-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (svg, png) = (dir.join("run.svg"), dir.join("run.png"));
    let trace = fixture("traces/cpu-spike.csv");
    let runs = simulate(&["--trace", trace.to_str().unwrap(), "--plot", svg.to_str().unwrap()]);
    assert_eq!(runs.len(), 1);
    let ticks = runs[0]["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 91, "a tick every 10 s over 900 s");
    for tick in ticks {
        for field in ["time", "current", "desired", "reason", "explanation"] {
            assert!(!tick[field].is_null(), "{field} missing in {tick}");
        }
        let desired = tick["desired"].as_i64().unwrap();
        assert!((2..=30).contains(&desired), "outside the policy's bounds: {tick}");
        // Without data (the first period is published only after its lag; the trace's
        // gap at 420-440 s) nothing scales in.
        if tick["metrics"]["cpu"].is_null() {
            assert!(desired >= tick["current"].as_i64().unwrap(), "{tick}");
        }
    }
    assert!(ticks[0]["metrics"]["cpu"].is_null(), "the first period is not published at 0 s");
    assert!(runs[0]["score"]["slo_violation_seconds"].is_null(), "open loop: no demand to score");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("desired capacity, engine"), "not a chart");

    simulate(&["--trace", trace.to_str().unwrap(), "--plot", png.to_str().unwrap()]);
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn simulate_compares_the_engine_with_aws_target_tracking_on_the_same_data() {
    let trace = fixture("traces/load-step.csv");
    let closed_loop =
        ["--trace", trace.to_str().unwrap(), "--capacity-per-instance", "100", "--boot-seconds", "90-150"];
    let runs = simulate(&[&closed_loop[..], &["--compare", "aws-target-tracking"]].concat());
    let names: Vec<&str> = runs.iter().map(|r| r["controller"].as_str().unwrap()).collect();
    assert_eq!(names, ["engine", "aws-target-tracking"]);
    let violation = |run: &serde_json::Value| run["score"]["slo_violation_seconds"].as_i64().unwrap();
    assert!(violation(&runs[0]) < violation(&runs[1]), "{} vs {}", runs[0]["score"], runs[1]["score"]);
    for run in &runs {
        assert!(run["score"]["instance_hours"].as_f64().unwrap() > 0.0);
        assert!(
            run["ticks"].as_array().unwrap().iter().all(|t| t["demand"].is_number()),
            "demand scored at every tick"
        );
    }

    // The table, side by side.
    let output = autoscaler()
        .args(["simulate", "--initial-capacity", "4", "--compare", "aws-target-tracking", "--policy"])
        .arg(fixture("policies/cpu.json"))
        .args(closed_loop)
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    for line in
        ["engine", "aws-target-tracking", "SLO-violation seconds", "instance-hours", "direction changes"]
    {
        assert!(table.contains(line), "{line} missing in\n{table}");
    }
}

#[test]
fn simulate_plot_shows_the_target_and_each_capacity_change_with_its_reason() {
    let dir = std::env::temp_dir().join(format!("autoscaler-simulate-marks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("run.svg");
    let trace = fixture("traces/load-step.csv");
    let runs = simulate(&[
        "--trace",
        trace.to_str().unwrap(),
        "--capacity-per-instance",
        "100",
        "--compare",
        "aws-target-tracking",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("target cpu = 50 (average)"), "no target line in the legend");
    assert!(svg_text.contains("demand utilization, engine"), "closed loop draws the demand");
    for run in &runs {
        let name = run["controller"].as_str().unwrap();
        assert!(svg_text.contains(&format!("capacity change, {name}")), "no markers for {name}");
        let changes: Vec<&serde_json::Value> =
            run["ticks"].as_array().unwrap().iter().filter(|t| t["desired"] != t["current"]).collect();
        assert!(!changes.is_empty(), "{name} never scaled on a load step");
        for tick in changes {
            let step = tick["desired"].as_i64().unwrap() - tick["current"].as_i64().unwrap();
            assert!(
                svg_text.contains(&format!("\n{step:+}\n</text>")),
                "no {step:+} label for {name}: {tick}"
            );
            // The reason as hover text, escaped as XML.
            let reason = tick["reason"]
                .as_str()
                .unwrap()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(svg_text.contains(&format!("<title>{reason}</title>")), "no hover reason {reason:?}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn simulate_rejects_bad_input_clearly() {
    let output = autoscaler()
        .args(["simulate", "--initial-capacity", "1", "--policy"])
        .arg(fixture("policies/web.json"))
        .arg("--trace")
        .arg(fixture("traces/cpu-spike.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the policy has 2 groups: choose one with --group")
    );
    let output = autoscaler()
        .args(["simulate", "--initial-capacity", "1", "--boot-seconds", "150-90", "--policy"])
        .arg(fixture("policies/cpu.json"))
        .arg("--trace")
        .arg(fixture("traces/cpu-spike.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("LOW-HIGH"));
}

#[tokio::test]
async fn poll_watch_ticks_until_interrupted_and_releases_its_lease() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name: "watched", min: 1, max: 10, desired: 2, tags: enabled })
        .await;
    aws_sdk_s3::Client::new(&config).create_bucket().bucket("watch-state").send().await.unwrap();
    let policy = temp_dir("cli-watch").join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"groups": [{}]}}"#, policy_group("watched", "Load", r#"{"average": 50}"#, "")),
    )
    .unwrap();

    let mut child = autoscaler()
        .args(["poll", "--watch", "--interval", "1", "--json", "--policy"])
        .arg(&policy)
        .envs(moto.env())
        .env("STATE_URI", "s3://watch-state/cli")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once it has printed two ticks (not after a fixed sleep, which a loaded
    // machine may not give two ticks); a process that ignored Ctrl-C, or never ticked,
    // would hang the test: the reader waits on a thread, with a limit.
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let limit = std::time::Duration::from_secs(60);
    let mut ticks: Vec<serde_json::Value> = Vec::new();
    while ticks.len() < 2 {
        let Ok(line) = lines.recv_timeout(limit) else {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("autoscaler poll --watch printed {} ticks, then nothing", ticks.len());
        };
        ticks.push(serde_json::from_str(&line).unwrap());
    }
    let interrupted = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(interrupted.success());
    while let Ok(line) = lines.recv_timeout(limit) {
        ticks.push(serde_json::from_str(&line).unwrap());
    }
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait()));
    let Ok(status) = waited.recv_timeout(limit) else {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("autoscaler poll --watch ignored Ctrl-C");
    };
    assert!(status.unwrap().success(), "Ctrl-C is a clean exit");
    assert!(ticks.len() >= 2, "{} ticks", ticks.len());
    assert!(ticks.iter().all(|t| t["mode"] == "act" && t["groups"][0]["group"] == "watched"));
    // The lease was given up on exit: expires_at 0.
    let lease = aws_sdk_s3::Client::new(&config)
        .get_object()
        .bucket("watch-state")
        .key("cli/lease.json")
        .send()
        .await
        .unwrap();
    let lease: serde_json::Value =
        serde_json::from_slice(&lease.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(lease["expires_at"], 0, "{lease}");
}

#[test]
fn logs_summarize_adds_up_several_files_of_a_named_format() {
    let dir = temp_dir("summarize");
    let zstd = dir.join("elb.log.zst");
    std::fs::write(
        &zstd,
        ruzstd::encoding::compress_to_vec(
            &std::fs::read(fixture("logs/elb.log")).unwrap()[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ),
    )
    .unwrap();
    let output = autoscaler()
        .args(["logs", "summarize", "--format", "elb", "--json"])
        .arg(fixture("logs/elb.log"))
        .arg(&zstd)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["format"].as_str(), summary["records"].as_u64()), (Some("elb"), Some(10)));
    assert_eq!(summary["malformed"], 2);

    let output = autoscaler().args(["logs", "summarize", "--format", "apache"]).arg(&zstd).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown log format \"apache\""));
}

#[tokio::test]
async fn logs_process_runs_the_lambda_code_path_on_one_object() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Throughput).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).build());
    s3.create_bucket().bucket("logs").send().await.unwrap();
    let log = gzip(&std::fs::read(fixture("logs/cloudfront.log")).unwrap());
    let key = "cdn/E2QWRUHAPOMQZL.2026-11-30-12.a1b2c3d4.gz";
    s3.put_object().bucket("logs").key(key).body(log.into()).send().await.unwrap();
    let run = || {
        autoscaler()
            .args(["logs", "process", "--json", &format!("s3://logs/{key}")])
            .envs(moto.env())
            .env("STATE_URI", "s3://logs/state")
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (outcome["result"].as_str(), outcome["format"].as_str()),
        (Some("processed"), Some("cloudfront"))
    );
    assert_eq!(outcome["records"], 3);
    let again: serde_json::Value = serde_json::from_slice(&run().stdout).unwrap();
    assert_eq!(again["result"], "duplicate");
}

#[test]
fn logs_summarize_prints_the_cause_of_a_truncated_gzip() {
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    let truncated = temp_dir("truncated").join("alb.log.gz");
    std::fs::write(&truncated, &log[..log.len() / 2]).unwrap();
    let output = autoscaler().args(["logs", "summarize"]).arg(&truncated).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Where it stopped, and why: the decompressor's own words, at the end of the chain.
    let line = stderr.lines().find(|l| l.starts_with("error: ")).expect("an error line");
    assert!(line.contains(&truncated.display().to_string()), "{stderr}");
    assert!(line.contains("deflate"), "the cause is missing: {stderr}");
}

/// An enabled group `name` in a fresh moto, a policy for it, and a fault proxy in front
/// of moto with `faults`; returns what the CLI's environment needs.
async fn through_a_fault_proxy(
    name: &'static str,
    faults: Vec<integration_tests::fault_proxy::Fault>,
) -> (Moto, integration_tests::fault_proxy::FaultProxy, std::path::PathBuf) {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    create_launch_template(&config, "lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "lt", GroupSpec { name, min: 1, max: 10, desired: 2, tags: enabled }).await;
    let policy = temp_dir("cli-faults").join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"groups": [{}]}}"#, policy_group(name, "Load", r#"{"average": 50}"#, "")),
    )
    .unwrap();
    let proxy = integration_tests::fault_proxy::FaultProxy::start(&moto.endpoint, faults).await;
    (moto, proxy, policy)
}

fn throttled_listings(times: usize) -> Vec<integration_tests::fault_proxy::Fault> {
    use integration_tests::fault_proxy::{Fault, FaultKind};
    vec![Fault { matches: "Action=DescribeAutoScalingGroups", kind: FaultKind::Throttle, times, after: 0 }]
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_once_prints_the_cause_of_a_throttled_listing() {
    // Every one of the SDK's four attempts throttled.
    let (moto, proxy, policy) = through_a_fault_proxy("throttled", throttled_listings(4)).await;
    let mut command = autoscaler();
    command.args(["poll", "--once", "--policy"]).arg(&policy).envs(moto.env());
    command.env("AWS_ENDPOINT_URL", &proxy.endpoint);
    // Blocking on its own thread: the proxy serves the child from this runtime.
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: listing Auto Scaling groups failed: DescribeAutoScalingGroups: Throttling: Rate exceeded"
        ),
        "{stderr}"
    );
    assert!(proxy.pending().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_watch_goes_on_through_failed_ticks_until_interrupted() {
    use std::io::BufRead;
    // Two ticks' listings throttled on every attempt; the third tick gets through.
    let (moto, proxy, policy) = through_a_fault_proxy("stormy", throttled_listings(8)).await;
    let mut child = autoscaler()
        .args(["poll", "--watch", "--interval", "1", "--json", "--policy"])
        .arg(&policy)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first tick that got through (the proxy needs this runtime meanwhile).
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next();
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        first
    });
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), first).await;
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let first = first.expect("no tick got through within 60 s").unwrap();
    let tick: serde_json::Value = serde_json::from_str(&first.expect("stdout closed").unwrap()).unwrap();
    assert_eq!(tick["groups"][0]["group"], "stormy");
    assert!(proxy.pending().is_empty(), "both failed ticks came first");

    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(output.status.success(), "Ctrl-C is a clean exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failures: Vec<&str> = stderr.lines().filter(|l| l.starts_with("tick failed: ")).collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(failures.iter().all(|l| l.contains("Throttling")), "{stderr}");
}

/// `logs summarize` without `--json`, on a fixture whose latencies are known: 20 requests
/// with a target time of 10, 20, ... 200 ms (and 1 ms more in total), 14 × 200, 2 × 302,
/// 2 × 404, 2 × 503 (target group `api`), in the minutes 12:00 (10), 12:02 (6), 12:03 (4).
#[test]
fn logs_summarize_tells_the_range_totals_status_mix_percentiles_rate_and_top_dimensions() {
    let output = autoscaler()
        .args(["logs", "summarize"])
        .arg(fixture("logs/alb-latency.log"))
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "format      alb",
            "time (UTC)  2026-11-30T12:00:00Z to 2026-11-30T12:04:00Z (4 min)",
            "records     20, malformed 1 (bad time: 1), skipped 1 (blank line: 1)",
            "requests    20",
            "bytes       received 2.00 kB, sent 20.0 kB",
            "status      2XX 70.0 %, 3XX 10.0 %, 4XX 10.0 %, 5XX 10.0 %",
        ],
        "{text}"
    );

    // Nearest rank over the histogram: each within its 1 % of the exact value.
    let percentiles = |metric: &str| -> Vec<f64> {
        let row =
            lines.iter().find(|l| l.starts_with(&format!("{metric} "))).unwrap_or_else(|| panic!("{text}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[1], "20", "samples: {row}");
        fields[2..]
            .chunks(2)
            .map(|pair| match pair[1] {
                "ms" => pair[0].parse::<f64>().unwrap() / 1000.0,
                "s" => pair[0].parse::<f64>().unwrap(),
                unit => panic!("unit {unit} in {row}"),
            })
            .collect()
    };
    for (metric, exact) in [
        ("TargetResponseTime", [0.100, 0.180, 0.200, 0.200]),
        ("TotalProcessingTime", [0.101, 0.181, 0.201, 0.201]),
    ] {
        let got = percentiles(metric);
        assert_eq!(got.len(), 4, "p50 p90 p99 max of {metric}");
        for (got, exact) in got.iter().zip(exact) {
            assert!((got - exact).abs() <= exact * 0.01, "{metric}: {got} vs {exact}\n{text}");
        }
    }

    // One mark a minute; 12:01 had none.
    let rate = lines.iter().position(|l| l.starts_with("requests per minute:")).expect("rate row");
    assert_eq!(lines[rate], "requests per minute: peak 10 at 12:00, mean 5.0; a mark a minute");
    assert_eq!(lines[rate + 1], "  █ ▅▄");

    // The target group with the 503s shows its 5XX rate.
    let group = |name: &str| {
        let row = lines.iter().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{text}"));
        row.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(group("targetgroup/web/"), "13 65.0 % 0 0.0 %");
    assert_eq!(group("targetgroup/api/"), "7 35.0 % 2 28.6 %");
    assert_eq!(group("app/shop-alb/"), "20 100.0 % 2 10.0 %");
}

#[test]
fn logs_summarize_fits_the_rate_row_to_the_width() {
    let output = autoscaler()
        .args(["logs", "summarize"])
        .arg(fixture("logs/alb-latency.log"))
        .env("COLUMNS", "4")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    // Ten columns at least: four minutes still get a mark each.
    assert!(text.contains("a mark a minute\n  █ ▅▄\n"), "{text}");
}

#[test]
fn logs_summarize_plots_requests_by_status_and_latency_percentiles_as_png_or_svg() {
    let dir = temp_dir("summarize-plot");
    let (png, svg) = (dir.join("requests.png"), dir.join("requests.svg"));
    for chart in [&png, &svg] {
        let output = autoscaler()
            .args(["logs", "summarize", "--plot"])
            .arg(chart)
            .arg(fixture("logs/alb-latency.log"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8(output.stdout).unwrap().starts_with("format      alb\n"));
    }
    let png = std::fs::read(&png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: 1200 wide; a requests panel and one per latency metric (two for ALB).
    let (width, height) = (&png[16..20], &png[20..24]);
    assert_eq!(
        (u32::from_be_bytes(width.try_into().unwrap()), u32::from_be_bytes(height.try_into().unwrap())),
        (1200, 1020)
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "not an SVG");
    for text in
        ["requests per minute", "2XX", "5XX", "TargetResponseTime percentiles per minute", "p99", "12:03"]
    {
        assert!(svg.contains(&format!("\n{text}\n</text>")), "no {text:?} in the SVG");
    }

    // A wrong name fails before any log is read.
    let output = autoscaler()
        .args(["logs", "summarize", "--plot"])
        .arg(dir.join("requests.txt"))
        .arg("/nonexistent/access.log")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.ends_with("requests.txt: the plot file must end in .svg or .png\n"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every command's help ends with its examples (the unit test in cli/src/help.rs checks
/// that every command has some, and that each parses), as plain text when not a terminal.
#[test]
fn every_help_ends_with_two_or_three_examples() {
    let commands: &[&[&str]] = &[
        &[],
        &["poll"],
        &["logs"],
        &["logs", "summarize"],
        &["logs", "process"],
        &["policy"],
        &["policy", "check"],
        &["simulate"],
        &["completions"],
    ];
    for command in commands {
        let output = autoscaler().args(*command).arg("--help").env("NO_COLOR", "1").output().unwrap();
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.ends_with('\n') && !help.contains('\x1b'), "{command:?}: {help:?}");
        let examples = help.rsplit_once("\nExamples:\n").map(|(_, e)| e).unwrap_or_else(|| panic!("{help}"));
        let lines: Vec<&str> = examples.lines().collect();
        let runs = lines.iter().filter(|l| !l.starts_with("  # ")).count();
        assert!((2..=3).contains(&runs) && lines.len() == 2 * runs, "{command:?}: {examples}");
        for pair in lines.chunks(2) {
            assert!(pair[0].starts_with("  # ") && pair[1].contains("autoscaler "), "{command:?}: {pair:?}");
            if !command.is_empty() {
                assert!(
                    pair[1].contains(&format!("autoscaler {}", command.join(" "))),
                    "{command:?}: {pair:?}"
                );
            }
        }
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let script = |shell: &str| {
        let output = autoscaler().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let bash = script("bash");
    assert!(
        bash.contains("complete -F _autoscaler") && bash.contains("summarize") && bash.contains("--plot")
    );
    // A script bash can load.
    let mut check = Command::new("bash").arg("-n").stdin(Stdio::piped()).spawn().unwrap();
    check.stdin.take().unwrap().write_all(bash.as_bytes()).unwrap();
    assert!(check.wait().unwrap().success(), "bash -n rejects the script");
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef autoscaler") && zsh.contains("summarize"), "{zsh}");
    let fish = script("fish");
    assert!(fish.contains("complete -c autoscaler") && fish.contains("-l plot"), "{fish}");
    assert_eq!(autoscaler().args(["completions", "tcsh"]).output().unwrap().status.code(), Some(2));
}

//! `autoscaler status` against moto, over a state object written by real poller ticks.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::{
    GroupSpec, Moto, create_group, create_launch_template, desired_capacity, policy_group, put_metric, tags,
    temp_dir, workspace_binary,
};
use metric_poller::policy_source::PolicyLocation;
use metric_poller::{Action, Mode, PollerConfig, TickSummary};
use serde_json::Value;
use shared::aws::Clients;
use shared::s3uri::S3Uri;

const ENABLED: (&str, &str) = ("lambda-autoscaler:enabled", "true");
const PAUSED: (&str, &str) = ("lambda-autoscaler:paused", "true");
const STATE_BUCKET: &str = "status-state";
const LEASE_SECONDS: i64 = 60;

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn status(moto: &Moto, args: &[&str]) -> std::process::Output {
    Command::new(workspace_binary("autoscaler")).arg("status").args(args).envs(moto.env()).output().unwrap()
}

fn outcome<'a>(tick: &'a TickSummary, group: &str) -> &'a metric_poller::GroupOutcome {
    tick.groups.iter().find(|g| g.group == group).unwrap_or_else(|| panic!("{group} not in {tick:?}"))
}

fn group<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

async fn in_service(config: &aws_config::SdkConfig, name: &str) -> i64 {
    let output = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    let instances = output.auto_scaling_groups()[0].instances();
    instances.iter().filter(|i| i.lifecycle_state().is_some_and(|s| s.as_str() == "InService")).count() as i64
}

/// Ticks ten minutes ago with a one-minute lease scale one group, decide a paused one, and
/// find a second group's data then; status now reads the expired lease, the scaling event
/// and the last decisions they wrote, the stale metric, and the groups left alone.
#[tokio::test]
async fn status_reports_what_real_ticks_wrote_stale_data_an_expired_lease_and_groups_left_alone() {
    let moto = Moto::start();
    let config = moto.sdk_config(metric_poller::RETRY).await;
    let clients = Clients::new(&config, false);
    create_launch_template(&config, "lt").await;
    clients.s3.create_bucket().bucket(STATE_BUCKET).send().await.unwrap();
    let spec = |name: &'static str, tag_pairs: &[(&str, &str)]| GroupSpec {
        name,
        min: 1,
        max: 20,
        desired: 2,
        tags: tags(tag_pairs),
    };
    create_group(&config, "lt", spec("status-web", &[ENABLED])).await;
    create_group(&config, "lt", spec("status-paused", &[ENABLED, PAUSED])).await;
    create_group(&config, "lt", spec("status-stale", &[ENABLED])).await;
    create_group(&config, "lt", spec("status-untagged", &[])).await;
    let target = r#"{"average": 50}"#;
    let policy = temp_dir("status").join("policy.json");
    let entries: Vec<String> =
        ["status-web", "status-paused", "status-stale", "status-untagged", "status-gone"]
            .iter()
            .map(|name| policy_group(name, "Load", target, ""))
            .collect();
    std::fs::write(&policy, format!(r#"{{"groups": [{}]}}"#, entries.join(","))).unwrap();

    // The ticks run ten minutes in the past: their lease has expired by now.
    let ticked = SystemTime::now() - Duration::from_secs(600);
    let before_ticks = ticked - Duration::from_secs(20);
    put_metric(&config, "Load", "status-web", 100.0, before_ticks).await;
    put_metric(&config, "Load", "status-paused", 100.0, before_ticks).await;
    // At target on 2: nothing to do then; nothing newer since.
    put_metric(&config, "Load", "status-stale", 50.0, before_ticks).await;
    let poller = metric_poller::build(
        &clients,
        PollerConfig {
            policy: Some(PolicyLocation::Local(policy.clone())),
            state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: "poller".into() }),
            ..PollerConfig::default()
        },
    )
    .unwrap();
    let first = poller.tick_with_lease("status-test", ticked, LEASE_SECONDS).await.unwrap();
    assert_eq!(first.mode, Mode::Act);
    let web_scaled = outcome(&first, "status-web");
    assert_eq!((web_scaled.action, web_scaled.current, web_scaled.desired), (Action::Scaled, 2, 4));
    assert_eq!(outcome(&first, "status-paused").action, Action::Paused);
    let second_at = ticked + Duration::from_secs(60);
    let second = poller.tick_with_lease("status-test", second_at, LEASE_SECONDS).await.unwrap();
    assert_eq!(second.mode, Mode::Act);
    // Fresh data for the scaled group only, after the ticks.
    put_metric(&config, "Load", "status-web", 30.0, SystemTime::now() - Duration::from_secs(20)).await;

    let state_uri = format!("s3://{STATE_BUCKET}/poller");
    let policy_arg = policy.to_str().unwrap();
    let output = status(&moto, &["--policy-uri", policy_arg, "--state-uri", &state_uri, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    let now = read["time"].as_i64().unwrap();

    assert_eq!(read["policy"]["location"], policy_arg);
    assert_eq!(read["policy"]["entries"], 5);
    assert!(read["policy"]["version"].as_str().is_some_and(|v| !v.is_empty()), "{read}");
    assert_eq!(read["state"]["written"], true);
    let lease = &read["state"]["lease"];
    assert_eq!(lease["holder"], "status-test");
    assert_eq!(lease["expires_at"], unix(second_at) + LEASE_SECONDS);
    assert_eq!(lease["expired"], true);
    assert_eq!(lease["expires_in_seconds"], unix(second_at) + LEASE_SECONDS - now);

    let web = group(&read, "status-web");
    assert_eq!(web["paused"], false);
    assert_eq!(web["desired"], desired_capacity(&config, "status-web").await);
    assert_eq!(web["in_service"], in_service(&config, "status-web").await);
    assert_eq!((&web["min"], &web["max"], &web["pending"]), (&1.into(), &20.into(), &0.into()));
    let web_decided = outcome(&second, "status-web");
    assert_eq!(web["last_decision"]["time"], unix(second_at));
    assert_eq!(web["last_decision"]["desired"], web_decided.desired);
    assert_eq!(web["last_decision"]["reason"], web_decided.reason.as_str());
    let event = &web["scaling_events"][0];
    assert_eq!((&event["from"], &event["to"], &event["external"]), (&2.into(), &4.into(), &false.into()));
    assert_eq!(event["time"], unix(ticked));
    assert_eq!(event["reason"], web_scaled.reason.as_str());
    let web_metric = &web["metrics"][0];
    assert_eq!((&web_metric["id"], &web_metric["stale"]), (&"m".into(), &false.into()));
    assert_eq!(web_metric["newest"]["value"], 30.0);

    let paused = group(&read, "status-paused");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["desired"], 2, "decided, never changed");
    assert_eq!(paused["last_decision"]["desired"], outcome(&second, "status-paused").desired);
    assert_eq!(paused["scaling_events"], Value::Array(Vec::new()));

    let stale = group(&read, "status-stale");
    let stale_metric = &stale["metrics"][0];
    assert_eq!(stale_metric["stale"], true);
    assert_eq!(stale_metric["newest"]["value"], 50.0);
    let age = stale_metric["age_seconds"].as_i64().unwrap();
    assert!(age >= now - unix(before_ticks), "the datapoint's period starts at or before it: {age}");
    assert_eq!(stale["last_decision"]["desired"], 2);

    let left_alone: Vec<(&str, &str)> = read["not_managed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["group"].as_str().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(left_alone, [("status-untagged", "not_enabled"), ("status-gone", "no_such_group")]);
    assert!(read["groups"].as_array().unwrap().iter().all(|g| g["name"] != "status-untagged"));

    // The table: its key rows.
    let output = status(&moto, &["--policy-uri", policy_arg, "--state-uri", &state_uri]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    println!("{table}");
    let web_desired = web["desired"].as_i64().unwrap();
    let web_in_service = web["in_service"].as_i64().unwrap();
    assert!(table.contains("lease   held by status-test until ") && table.contains(": expired "), "{table}");
    assert!(
        table.contains(&format!(
            "{:<13}  {web_desired:>7}  {web_in_service:>10}        0     1    20\n",
            "status-web"
        )),
        "{table}"
    );
    assert!(table.contains(&format!("{:<13}  {:>7}", "status-paused", 2)), "{table}");
    assert!(table.contains(&format!(": 2 -> 4: {}\n", web_scaled.reason)), "{table}");
    assert!(
        table.contains(&format!(": desired {}: {}\n", web_decided.desired, web_decided.reason)),
        "{table}"
    );
    assert!(table.contains("): STALE (nothing newer than 3 periods of 60 s)"), "{table}");
    assert!(table.contains("  status-paused    paused: tagged lambda-autoscaler:paused=true"), "{table}");
    assert!(
        table.contains("  status-untagged  not tagged lambda-autoscaler:enabled=true: not managed"),
        "{table}"
    );
    assert!(table.contains("  status-gone      no such Auto Scaling group"), "{table}");
}

#[tokio::test]
async fn status_says_a_poller_never_ran_and_fails_clearly_when_the_state_cannot_be_read() {
    let moto = Moto::start();
    let config = moto.sdk_config(metric_poller::RETRY).await;
    create_launch_template(&config, "lt").await;
    create_group(
        &config,
        "lt",
        GroupSpec { name: "fresh", min: 1, max: 5, desired: 1, tags: tags(&[ENABLED]) },
    )
    .await;
    aws_sdk_s3::Client::new(&config).create_bucket().bucket(STATE_BUCKET).send().await.unwrap();
    let policy = temp_dir("status-never").join("policy.json");
    std::fs::write(
        &policy,
        format!(r#"{{"groups": [{}]}}"#, policy_group("fresh", "Load", r#"{"average": 50}"#, "")),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();

    let never = format!("s3://{STATE_BUCKET}/never");
    let output = status(&moto, &["--policy-uri", policy_arg, "--state-uri", &never, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((&read["state"]["written"], &read["state"]["lease"]), (&false.into(), &Value::Null));
    assert_eq!(group(&read, "fresh")["last_decision"], Value::Null);
    assert_eq!(group(&read, "fresh")["metrics"][0]["stale"], true, "no datapoint at all");
    let table = String::from_utf8(status(&moto, &["--policy-uri", policy_arg, "--state-uri", &never]).stdout)
        .unwrap();
    assert!(table.contains("no state object: the poller has never run there"), "{table}");
    assert!(table.contains("lease   never taken"), "{table}");

    let output = status(&moto, &["--policy-uri", policy_arg, "--state-uri", "s3://no-such-bucket/poller"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reading the poller's state at s3://no-such-bucket/poller failed"), "{stderr}");

    let output = status(&moto, &["--policy-uri", "/nonexistent/policy.json", "--state-uri", &never]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("reading the policy failed") && stderr.contains("/nonexistent/policy.json"),
        "{stderr}"
    );
}

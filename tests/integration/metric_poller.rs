use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use integration_tests::{
    GroupSpec, Moto, create_group, create_launch_template, desired_capacity, fixture, policy_group,
    put_metric, tags, temp_dir,
};
use lambda_runtime::{Context, LambdaEvent};
use metric_poller::policy_source::PolicyLocation;
use metric_poller::{Action, AwsPoller, Mode, PollerConfig};
use shared::aws::Clients;
use shared::s3uri::S3Uri;

const ENABLED: (&str, &str) = ("lambda-autoscaler:enabled", "true");
const STATE_BUCKET: &str = "poller-state";

struct Setup {
    moto: Moto,
    config: aws_config::SdkConfig,
    clients: Clients,
    dir: PathBuf,
}

async fn setup() -> Setup {
    let moto = Moto::start();
    let config = moto.sdk_config(metric_poller::RETRY).await;
    let clients = Clients::new(&config, false);
    create_launch_template(&config, "lt").await;
    clients.s3.create_bucket().bucket(STATE_BUCKET).send().await.unwrap();
    Setup { moto, config, clients, dir: temp_dir("poller") }
}

fn write_policy(dir: &Path, groups: &[String]) -> PathBuf {
    let path = dir.join("policy.json");
    std::fs::write(&path, format!(r#"{{"groups": [{}]}}"#, groups.join(","))).unwrap();
    path
}

/// One enabled group (bounds 1..20) at `desired`, a policy scaling it on `Test/App` `Load`
/// with `target`, and a datapoint of `value` 20 s ago; returns the policy's path.
async fn one_group(s: &Setup, name: &'static str, desired: i32, target: &str, value: f64) -> PathBuf {
    one_group_with(s, name, desired, target, value, "").await
}

/// With `extra` policy fields (`, "field": value`).
async fn one_group_with(
    s: &Setup,
    name: &'static str,
    desired: i32,
    target: &str,
    value: f64,
    extra: &str,
) -> PathBuf {
    create_group(&s.config, "lt", GroupSpec { name, min: 1, max: 20, desired, tags: tags(&[ENABLED]) }).await;
    put_metric(&s.config, "Load", name, value, SystemTime::now() - Duration::from_secs(20)).await;
    write_policy(&s.dir, &[policy_group(name, "Load", target, extra)])
}

/// No warmup: the tests that use it are about windows, restarts and edits, and scale in
/// right after a scale-out, which a warmup (by default boot + the metric's delay) holds.
const NO_WARMUP: &str = r#", "instance_warmup_seconds": 0"#;

fn poller(setup: &Setup, policy: &Path, prefix: &str) -> AwsPoller {
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy.to_path_buf())),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: prefix.into() }),
        ..PollerConfig::default()
    };
    metric_poller::build(&Clients::new(&setup.config, false), config).unwrap()
}

async fn state_object(setup: &Setup, prefix: &str) -> serde_json::Value {
    let object = setup
        .clients
        .s3
        .get_object()
        .bucket(STATE_BUCKET)
        .key(format!("{prefix}/state.json"))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
}

fn at(offset: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(offset)
}

#[tokio::test]
async fn scales_through_ticks_with_stabilization_and_leaves_other_groups_alone() {
    let s = setup().await;
    let spec = |name: &'static str, desired, tag_pairs: &[(&str, &str)]| GroupSpec {
        name,
        min: 1,
        max: 20,
        desired,
        tags: tags(tag_pairs),
    };
    create_group(&s.config, "lt", spec("web", 2, &[ENABLED])).await;
    create_group(&s.config, "lt", spec("paused", 2, &[ENABLED, ("lambda-autoscaler:paused", "true")])).await;
    create_group(&s.config, "lt", spec("dry", 2, &[ENABLED])).await;
    create_group(&s.config, "lt", spec("untagged", 2, &[])).await;
    let policy = write_policy(
        &s.dir,
        &[
            policy_group("web", "Load", r#"{"average": 50}"#, NO_WARMUP),
            policy_group("paused", "Load", r#"{"average": 50}"#, ""),
            policy_group("dry", "Load", r#"{"average": 50}"#, r#", "dry_run": true"#),
            policy_group("untagged", "Load", r#"{"average": 50}"#, ""),
        ],
    );
    for group in ["web", "paused", "dry", "untagged"] {
        put_metric(&s.config, "Load", group, 100.0, SystemTime::now() - Duration::from_secs(20)).await;
    }
    let poller = poller(&s, &policy, "main");

    // 100 % on 2 at target 50: 4.
    let tick = poller.tick_with_lease("p1", at(0), 60).await.unwrap();
    assert_eq!(tick.mode, Mode::Act);
    let outcome = |name: &str| tick.groups.iter().find(|g| g.group == name).unwrap().clone();
    assert_eq!((outcome("web").action, outcome("web").desired), (Action::Scaled, 4));
    assert_eq!((outcome("paused").action, outcome("paused").desired), (Action::Paused, 4));
    assert_eq!((outcome("dry").action, outcome("dry").desired), (Action::DryRun, 4));
    assert!(tick.groups.iter().all(|g| g.group != "untagged"));
    assert!(tick.warnings.iter().any(|w| w.contains("untagged")), "{:?}", tick.warnings);
    for (group, expected) in [("web", 4), ("paused", 2), ("dry", 2), ("untagged", 2)] {
        assert_eq!(desired_capacity(&s.config, group).await, expected, "{group}");
    }

    // Load falls: the 300 s scale-down window holds web at 4 ...
    // (Stamped at the simulated tick's minute: an earlier stamp would share the 100's minute.)
    put_metric(&s.config, "Load", "web", 10.0, at(55)).await;
    put_metric(&s.config, "Load", "web", 10.0, at(295)).await;
    let tick = poller.tick_with_lease("p1", at(60), 60).await.unwrap();
    let web = tick.groups.iter().find(|g| g.group == "web").unwrap();
    assert_eq!((web.action, web.desired), (Action::Unchanged, 4), "{}", web.reason);
    assert!(web.reason.contains("scale-down window holds"), "{}", web.reason);
    // ... until the high recommendation is older than the window.
    let tick = poller.tick_with_lease("p1", at(301), 60).await.unwrap();
    let web = tick.groups.iter().find(|g| g.group == "web").unwrap();
    assert_eq!((web.action, web.desired), (Action::Scaled, 1), "{}", web.reason);
    assert_eq!(desired_capacity(&s.config, "web").await, 1);

    // web leaves the selector (its enable tag removed): no longer changed.
    s.clients
        .autoscaling
        .delete_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .key(ENABLED.0)
                .value(ENABLED.1)
                .resource_id("web")
                .resource_type("auto-scaling-group")
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_metric(&s.config, "Load", "web", 500.0, at(315)).await;
    let tick = poller.tick_with_lease("p1", at(320), 60).await.unwrap();
    assert!(tick.groups.iter().all(|g| g.group != "web"));
    assert_eq!(desired_capacity(&s.config, "web").await, 1);
}

#[tokio::test]
async fn two_pollers_at_the_same_moment_only_one_acts() {
    let s = setup().await;
    let policy = one_group(&s, "api", 2, r#"{"average": 50}"#, 100.0).await;
    let (a, b) = (poller(&s, &policy, "race"), poller(&s, &policy, "race"));
    let now = SystemTime::now();
    let (ta, tb) = tokio::join!(a.tick_with_lease("a", now, 60), b.tick_with_lease("b", now, 60));
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    let modes = [ta.mode, tb.mode];
    assert!(modes.contains(&Mode::Act) && modes.contains(&Mode::ObserveOnly), "{modes:?}");
    let observer = if ta.mode == Mode::ObserveOnly { &ta } else { &tb };
    assert_eq!(observer.groups[0].action, Action::ObservedOnly);
    assert_eq!(observer.groups[0].desired, 4, "the observer still decides");
    assert_eq!(desired_capacity(&s.config, "api").await, 4);
    // Exactly one scale event was recorded.
    let state = state_object(&s, "race").await;
    assert_eq!(state["groups"]["api"]["history"]["scale_events"].as_array().unwrap().len(), 1, "{state}");

    // The winner releases its lease at the end of its invocation; then the other may act.
    let (winner, loser, loser_name) = if ta.mode == Mode::Act { (&a, &b, "b") } else { (&b, &a, "a") };
    winner.release_lease(if ta.mode == Mode::Act { "a" } else { "b" }).await;
    assert_eq!(loser.tick_with_lease(loser_name, SystemTime::now(), 60).await.unwrap().mode, Mode::Act);
}

#[tokio::test]
async fn state_survives_a_restart_and_the_down_window_still_holds() {
    let s = setup().await;
    let policy = one_group_with(&s, "svc", 2, r#"{"average": 50}"#, 150.0, NO_WARMUP).await;
    {
        let first = poller(&s, &policy, "restart");
        let tick = first.tick_with_lease("first", at(0), 60).await.unwrap();
        assert_eq!(tick.groups[0].desired, 6);
        first.release_lease("first").await;
    } // the process is gone
    put_metric(&s.config, "Load", "svc", 5.0, at(110)).await;
    let second = poller(&s, &policy, "restart");
    let tick = second.tick_with_lease("second", at(120), 60).await.unwrap();
    let svc = &tick.groups[0];
    assert_eq!((svc.action, svc.desired), (Action::Unchanged, 6), "cold process, warm state: {}", svc.reason);
    assert!(svc.reason.contains("scale-down window holds 1 -> 6"), "{}", svc.reason);
}

#[tokio::test]
async fn a_corrupt_state_object_means_a_cold_start_not_a_crash() {
    let s = setup().await;
    let policy = one_group(&s, "svc", 4, r#"{"average": 50}"#, 5.0).await;
    s.clients
        .s3
        .put_object()
        .bucket(STATE_BUCKET)
        .key("bad/state.json")
        .body(b"{not json".to_vec().into())
        .send()
        .await
        .unwrap();
    let tick = poller(&s, &policy, "bad").tick_with_lease("p", at(0), 60).await.unwrap();
    // Cold start: seeded with the current capacity, so no scale-in at once.
    assert_eq!((tick.groups[0].action, tick.groups[0].desired), (Action::Unchanged, 4));
    assert_eq!(state_object(&s, "bad").await["schema_version"], 1, "rebuilt");
}

#[tokio::test]
async fn an_interrupted_change_is_reconciled_from_the_groups_actual_capacity() {
    let s = setup().await;
    let policy = one_group(&s, "svc", 5, r#"{"average": 50}"#, 50.0).await;
    // The state a poller left when it died after SetDesiredCapacity(2 -> 5).
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let left = serde_json::json!({"schema_version": 1, "groups": {"svc": {
        "history": {"recommendations": [], "scale_events": [], "consecutive_failures": 0},
        "pending_change": {"time": now - 5, "from": 2, "to": 5}}}});
    s.clients
        .s3
        .put_object()
        .bucket(STATE_BUCKET)
        .key("crash/state.json")
        .body(left.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();

    let poller = poller(&s, &policy, "crash");
    poller.tick_with_lease("p", SystemTime::now(), 60).await.unwrap();
    poller.tick_with_lease("p", SystemTime::now(), 60).await.unwrap();
    let state = state_object(&s, "crash").await;
    let events = state["groups"]["svc"]["history"]["scale_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "recorded once, not per tick: {state}");
    assert_eq!(events[0]["change"], 3);
    assert!(state["groups"]["svc"].get("pending_change").is_none(), "{state}");
}

#[tokio::test]
async fn a_policy_edit_takes_effect_and_a_bad_edit_keeps_the_last_valid_policy() {
    let s = setup().await;
    let policy = one_group_with(&s, "svc", 2, r#"{"average": 50}"#, 100.0, NO_WARMUP).await;
    let poller = poller(&s, &policy, "edit");
    assert_eq!(poller.tick_with_lease("p", at(0), 60).await.unwrap().groups[0].desired, 4);
    // A new target: 100 % at target 25 on 4 asks for 16; the rate limit allows 8 (4 + 4).
    write_policy(&s.dir, &[policy_group("svc", "Load", r#"{"average": 25}"#, NO_WARMUP)]);
    assert_eq!(poller.tick_with_lease("p", at(20), 60).await.unwrap().groups[0].desired, 8);
    // A broken edit: reported, the last valid policy stays in force.
    std::fs::write(&policy, r#"{"groups": [{"name": "svc"}]}"#).unwrap();
    let tick = poller.tick_with_lease("p", at(40), 60).await.unwrap();
    assert_eq!(tick.groups[0].desired, 16);
}

#[tokio::test]
async fn the_handler_ticks_until_the_invocation_deadline() {
    let s = setup().await;
    let policy = one_group(&s, "svc", 1, r#"{"per_instance": 10}"#, 80.0).await;
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: "loop".into() }),
        tick_interval: Duration::from_secs(1),
        deadline_margin: Duration::from_millis(1500),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&Clients::new(&s.config, false), config).unwrap();
    let payload =
        serde_json::from_slice(&std::fs::read(fixture("events/eventbridge-scheduled.json")).unwrap())
            .unwrap();
    let mut context = Context::default();
    context.request_id = "invocation-1".into();
    let deadline = SystemTime::now() + Duration::from_millis(5500);
    context.deadline = deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
    let started = SystemTime::now();
    let summary = poller.handle(LambdaEvent::new(payload, context)).await.unwrap();
    let ended = SystemTime::now();
    assert!(
        ended < deadline,
        "finished {:?} after the deadline; took {:?}: {summary:?}",
        ended.duration_since(deadline).unwrap_or_default(),
        ended.duration_since(started).unwrap()
    );
    assert!((3..=5).contains(&summary.ticks), "{summary:?}");
    assert_eq!(summary.acted_ticks, summary.ticks);
    // 80 at 10 per instance asks for 8; the default rules allow max(1 x 2, 1 + 4) = 5 in the
    // first tick, and the +4 stays inside their 15 s period for the rest of this invocation.
    assert_eq!(summary.groups["svc"], 5);
    assert_eq!(desired_capacity(&s.config, "svc").await, 5);
    let last = summary.last_tick.unwrap();
    assert!(last.groups[0].reason.contains("rate limit 5"), "{}", last.groups[0].reason);
    drop(s.moto);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_nothing_acts_twice() {
    use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
    let s = setup().await;
    create_group(
        &s.config,
        "lt",
        GroupSpec { name: "svc", min: 1, max: 20, desired: 2, tags: tags(&[ENABLED]) },
    )
    .await;
    // A minute before the second tick's datapoint, so that the two never share a period.
    put_metric(&s.config, "Load", "svc", 100.0, at(0) - Duration::from_secs(70)).await;
    let policy = write_policy(&s.dir, &[policy_group("svc", "Load", r#"{"average": 50}"#, "")]);
    let fault = |matches, kind, times| Fault { matches, kind, times, after: 0 };
    let proxy = FaultProxy::start(
        &s.moto.endpoint,
        vec![
            fault("Action=DescribeAutoScalingGroups", FaultKind::Throttle, 2),
            fault("Action=GetMetricData", FaultKind::Unavailable, 1),
            // Applied by moto, but the poller sees a 500 and sends it again.
            fault("Action=SetDesiredCapacity", FaultKind::LoseResponse, 1),
            // The lease, then the state's write-ahead intent.
            fault("PUT /poller-state/", FaultKind::Unavailable, 2),
        ],
    )
    .await;
    let through_proxy = proxy.sdk_config(&s.config);
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: "faults".into() }),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&Clients::new(&through_proxy, false), config).unwrap();

    let start = SystemTime::now();
    let tick = poller.tick_with_lease("p", start, 60).await.unwrap();
    assert!(proxy.pending().is_empty(), "every fault was injected: {:?}", proxy.pending());
    assert_eq!(proxy.injected().len(), 6);
    assert_eq!(tick.mode, Mode::Act);
    let svc = &tick.groups[0];
    assert_eq!((svc.action, svc.desired, &svc.error), (Action::Scaled, 4, &None), "{}", svc.reason);
    assert!(tick.warnings.is_empty(), "{:?}", tick.warnings);
    assert_eq!(desired_capacity(&s.config, "svc").await, 4);
    // The retried SetDesiredCapacity reached moto twice; the change is recorded once.
    let state = state_object(&s, "faults").await;
    assert_eq!(state["groups"]["svc"]["history"]["scale_events"].as_array().unwrap().len(), 1, "{state}");
    assert!(state["groups"]["svc"].get("pending_change").is_none(), "{state}");

    // The next tick, load on target, sees the change made and does nothing more.
    put_metric(&s.config, "Load", "svc", 50.0, start + Duration::from_secs(5)).await;
    let tick = poller.tick_with_lease("p", start + Duration::from_secs(10), 60).await.unwrap();
    assert_eq!((tick.groups[0].action, tick.groups[0].desired), (Action::Unchanged, 4));
    let state = state_object(&s, "faults").await;
    assert_eq!(state["groups"]["svc"]["history"]["scale_events"].as_array().unwrap().len(), 1, "{state}");
}

/// The world of a fault test, driven by the poller's own loop: time is virtual (it passes
/// only when the loop sleeps, so ticks are ten seconds apart however long they take), and
/// between ticks it records the group's capacity and plays the script for the next tick.
struct ScriptedWorld<'a> {
    t0: SystemTime,
    now: std::sync::Mutex<SystemTime>,
    /// Straight to moto, not through the proxy.
    config: &'a aws_config::SdkConfig,
    proxy: &'a integration_tests::fault_proxy::FaultProxy,
    /// (seconds since t0 of the tick just done, the group's desired capacity after it).
    samples: std::sync::Mutex<Vec<(u64, i32)>>,
    /// The state object after the ticks at these offsets.
    states: std::sync::Mutex<Vec<(u64, serde_json::Value)>>,
    clients: &'a Clients,
}

/// Fault-test script: load per instance (target 50) by offset, the storm, the operator.
const STORM_AT: u64 = 130;
const MANUAL_AT: u64 = 520;
const MANUAL_CAPACITY: i32 = 16;

fn scripted_load(offset: u64) -> f64 {
    match offset {
        0..200 => 200.0,
        200..MANUAL_AT => 50.0,
        _ => 20.0,
    }
}

impl ScriptedWorld<'_> {
    fn offset(&self, time: SystemTime) -> u64 {
        time.duration_since(self.t0).unwrap().as_secs()
    }

    /// Sets the scene for the tick at `time`: its datapoint, and any scripted event.
    async fn prepare(&self, time: SystemTime) {
        use integration_tests::fault_proxy::{Fault, FaultKind};
        let offset = self.offset(time);
        // One datapoint per 10 s period, the newest just before the tick.
        put_metric(self.config, "Load", "svc", scripted_load(offset), time - Duration::from_secs(1)).await;
        if offset == STORM_AT {
            // Every attempt throttled: three ticks' listings (4 attempts each), then three
            // ticks' metric reads.
            for matches in ["Action=DescribeAutoScalingGroups", "Action=GetMetricData"] {
                self.proxy.add(Fault { matches, kind: FaultKind::Throttle, times: 12, after: 0 });
            }
        }
        if offset == MANUAL_AT {
            aws_sdk_autoscaling::Client::new(self.config)
                .set_desired_capacity()
                .auto_scaling_group_name("svc")
                .desired_capacity(MANUAL_CAPACITY)
                .send()
                .await
                .unwrap();
        }
    }
}

impl metric_poller::Clock for ScriptedWorld<'_> {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap()
    }

    async fn sleep_until(&self, until: SystemTime) {
        let done = self.offset(self.now());
        let capacity = desired_capacity(self.config, "svc").await;
        self.samples.lock().unwrap().push((done, capacity));
        if [0, 10, MANUAL_AT].contains(&done) {
            let state = state_object_with(self.clients, "storm").await;
            self.states.lock().unwrap().push((done, state));
        }
        self.prepare(until).await;
        *self.now.lock().unwrap() = until;
    }
}

async fn state_object_with(clients: &Clients, prefix: &str) -> serde_json::Value {
    let object = clients
        .s3
        .get_object()
        .bucket(STATE_BUCKET)
        .key(format!("{prefix}/state.json"))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
}

#[tokio::test]
async fn under_lost_replies_a_throttling_storm_and_an_operator_the_rate_limit_and_the_operator_hold() {
    use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
    let s = setup().await;
    create_group(
        &s.config,
        "lt",
        GroupSpec { name: "svc", min: 1, max: 20, desired: 2, tags: tags(&[ENABLED]) },
    )
    .await;
    // At most 2 instances added per 60 s; the default scale-down window (300 s).
    let policy = s.dir.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"groups": [{"name": "svc", "metrics": [{"id": "m", "query": {"namespace": "Test/App",
            "metric_name": "Load", "dimensions": {"Group": "svc"}, "stat": "Maximum", "period_seconds": 10},
            "target": {"average": 50}}], "instance_warmup_seconds": 0,
            "behavior": {"scale_up": {"policies": [{"type": "instances", "value": 2, "period_seconds": 60}]}}}]}"#,
    )
    .unwrap();
    // The first change reaches moto on every attempt, and every reply is lost.
    let proxy = FaultProxy::start(
        &s.moto.endpoint,
        vec![Fault {
            matches: "Action=SetDesiredCapacity",
            kind: FaultKind::LoseResponse,
            times: 4,
            after: 0,
        }],
    )
    .await;
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: "storm".into() }),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&Clients::new(&proxy.sdk_config(&s.config), false), config).unwrap();
    let t0 = SystemTime::now();
    let world = ScriptedWorld {
        t0,
        now: std::sync::Mutex::new(t0),
        config: &s.config,
        proxy: &proxy,
        samples: std::sync::Mutex::new(vec![]),
        states: std::sync::Mutex::new(vec![]),
        clients: &s.clients,
    };
    world.prepare(t0).await;
    // Ticks at 0, 10, ..., 830 s (the deadline less the 3 s margin).
    let deadline = t0 + Duration::from_secs(833);
    let summary = poller.run_until_with(&world, "invocation", deadline).await.unwrap();
    let final_capacity = desired_capacity(&s.config, "svc").await;
    world.samples.lock().unwrap().push((830, final_capacity));
    let samples = world.samples.lock().unwrap().clone();
    eprintln!("capacity after each tick (s, desired): {samples:?}");
    eprintln!(
        "ticks {} (failed {}, acted {}), faults injected {}",
        summary.ticks,
        summary.failed_ticks,
        summary.acted_ticks,
        proxy.injected().len()
    );

    // The loop kept ticking through the storm: three ticks failed at the listing, the
    // three after them had no metrics (and held), and every fault was injected.
    assert_eq!((summary.ticks, summary.failed_ticks), (84, 3), "{summary:?}");
    assert!(summary.last_error.as_deref().unwrap().contains("Throttling"), "{:?}", summary.last_error);
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    assert_eq!(proxy.injected().len(), 4 + 12 + 12);

    let at = |offset: u64| samples.iter().find(|(t, _)| *t == offset).unwrap().1;
    // The change of unknown outcome took effect (moto applied it), was recorded once at its
    // own time, and counted: no second change inside the 60 s period.
    assert_eq!(at(0), 4);
    let states = world.states.lock().unwrap().clone();
    let state_at = |offset: u64| states.iter().find(|(t, _)| *t == offset).unwrap().1.clone();
    assert!(state_at(0)["groups"]["svc"]["pending_change"]["to"] == 4, "{}", state_at(0));
    let after = &state_at(10)["groups"]["svc"];
    assert_eq!(after["history"]["scale_events"].as_array().unwrap().len(), 1, "{after}");
    assert!(after.get("pending_change").is_none(), "{after}");
    // Never faster than 2 instances per 60 s, from the 2 it started at (the operator's
    // change aside).
    let mut series = vec![(0u64, 2)];
    series.extend(samples.iter().map(|(t, c)| (*t + 1, *c)));
    for (i, &(t, capacity)) in series.iter().enumerate() {
        for &(earlier_t, earlier) in &series[..i] {
            if t - earlier_t < 60 && !(earlier_t..=t).contains(&(MANUAL_AT + 1)) {
                assert!(capacity - earlier <= 2, "{earlier} at {earlier_t} s -> {capacity} at {t} s");
            }
        }
    }
    // It went on scaling after the storm: 8 before it, 10 at the first tick with data.
    assert_eq!((at(120), at(180), at(190)), (8, 8, 10));
    // The operator's 16 stands for the 300 s down window though 20 % asks for 7 ...
    let manual = &state_at(MANUAL_AT)["groups"]["svc"]["history"]["external_changes"];
    assert_eq!(manual[0]["to"], MANUAL_CAPACITY, "{manual}");
    for (t, capacity) in samples.iter().filter(|(t, _)| (MANUAL_AT..MANUAL_AT + 300).contains(t)) {
        assert_eq!(*capacity, MANUAL_CAPACITY, "at {t} s");
    }
    // ... and then the group scales in.
    assert_eq!(at(MANUAL_AT + 300), 7);
}

/// One tick's SetDesiredCapacity(2 -> 4) through the proxy with `faults` (applied to
/// that tick only), and a next tick; returns the first tick's outcome and the state after each.
async fn a_change_through(
    faults: Vec<integration_tests::fault_proxy::Fault>,
    prefix: &str,
) -> (metric_poller::GroupOutcome, serde_json::Value, serde_json::Value, Setup) {
    let s = setup().await;
    // 100 at 25 per instance: 4, whatever the capacity, so the second tick only settles.
    let policy = one_group(&s, "svc", 2, r#"{"per_instance": 25}"#, 100.0).await;
    let proxy = integration_tests::fault_proxy::FaultProxy::start(&s.moto.endpoint, faults).await;
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: prefix.into() }),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&Clients::new(&proxy.sdk_config(&s.config), false), config).unwrap();
    let first = poller.tick_with_lease("p", at(0), 60).await.unwrap().groups.remove(0);
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    let after_first = state_object(&s, prefix).await;
    poller.tick_with_lease("p", at(10), 60).await.unwrap();
    let after_second = state_object(&s, prefix).await;
    (first, after_first, after_second, s)
}

#[tokio::test]
async fn a_rejection_after_an_unanswered_attempt_leaves_the_outcome_unknown_until_settled() {
    use integration_tests::fault_proxy::{Fault, FaultKind};
    let set = |kind, times| Fault { matches: "Action=SetDesiredCapacity", kind, times, after: 0 };
    // The first attempt is applied and its reply lost; the SDK's retry is denied. The last
    // answer is a 4xx, but the change was made.
    let faults = vec![set(FaultKind::LoseResponse, 1), set(FaultKind::Deny, 1)];
    let (first, after_first, after_second, s) = a_change_through(faults, "denied").await;
    assert_eq!((first.action, first.desired), (Action::OutcomeUnknown, 4), "{:?}", first.error);
    assert!(first.error.as_deref().unwrap().contains("AccessDenied"), "{:?}", first.error);
    assert_eq!(after_first["groups"]["svc"]["pending_change"]["to"], 4, "{after_first}");
    assert_eq!(desired_capacity(&s.config, "svc").await, 4);
    let svc = &after_second["groups"]["svc"];
    assert_eq!(svc["history"]["scale_events"].as_array().unwrap().len(), 1, "{svc}");
    assert!(svc.get("pending_change").is_none() && svc["history"].get("external_changes").is_none(), "{svc}");
}

#[tokio::test]
async fn a_change_whose_connection_closes_unanswered_on_every_attempt_is_settled_next_tick() {
    use integration_tests::fault_proxy::{Fault, FaultKind};
    let faults = vec![Fault {
        matches: "Action=SetDesiredCapacity",
        kind: FaultKind::DropResponse,
        times: 4,
        after: 0,
    }];
    let (first, after_first, after_second, s) = a_change_through(faults, "dropped").await;
    assert_eq!((first.action, first.desired), (Action::OutcomeUnknown, 4), "{:?}", first.error);
    assert!(after_first["groups"]["svc"].get("pending_change").is_some(), "{after_first}");
    assert_eq!(desired_capacity(&s.config, "svc").await, 4);
    let events = after_second["groups"]["svc"]["history"]["scale_events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{after_second}");
    assert_eq!(events[0]["change"], 2);
}

#[tokio::test]
async fn a_definite_rejection_drops_the_intent() {
    use integration_tests::fault_proxy::{Fault, FaultKind};
    let faults =
        vec![Fault { matches: "Action=SetDesiredCapacity", kind: FaultKind::Deny, times: 1, after: 0 }];
    let (first, after_first, after_second, s) = a_change_through(faults, "rejected").await;
    assert_eq!((first.action, first.desired), (Action::Failed, 2), "{:?}", first.error);
    assert!(after_first["groups"]["svc"].get("pending_change").is_none(), "{after_first}");
    // The next tick decides anew and makes the change.
    assert_eq!(desired_capacity(&s.config, "svc").await, 4);
    assert_eq!(after_second["groups"]["svc"]["history"]["scale_events"].as_array().unwrap().len(), 1);
}

/// A request count (`Sum` per minute) at `per_instance` 100, with no down window and no
/// warmup, so that whatever the engine reads decides at once.
fn requests_group(name: &str) -> String {
    format!(
        r#"{{"name": "{name}", "metrics": [{{"id": "m", "query": {{"namespace": "Test/App", "metric_name": "Requests",
        "dimensions": {{"Group": "{name}"}}, "stat": "Sum", "period_seconds": 60}}, "target": {{"per_instance": 100}}}}],
        "behavior": {{"scale_down": {{"stabilization_seconds": 0}}}}{NO_WARMUP}}}"#
    )
}

#[tokio::test]
async fn the_newest_partial_minute_of_a_sum_never_scales_in_and_settled_minutes_do() {
    let s = setup().await;
    for name in ["steady", "fell"] {
        create_group(
            &s.config,
            "lt",
            GroupSpec { name, min: 1, max: 20, desired: 10, tags: tags(&[ENABLED]) },
        )
        .await;
    }
    let policy = write_policy(&s.dir, &[requests_group("steady"), requests_group("fell")]);
    // The tick runs 40 s into a minute; the five minutes before it are whole.
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let minute = SystemTime::UNIX_EPOCH + Duration::from_secs(now - now % 60);
    for k in 1..=5 {
        let t = minute - Duration::from_secs(60 * k) + Duration::from_secs(30);
        put_metric(&s.config, "Requests", "steady", 1000.0, t).await;
        put_metric(&s.config, "Requests", "fell", 300.0, t).await;
    }
    // 10 s of the current minute: 50 requests, a sixth of a minute's worth so far.
    put_metric(&s.config, "Requests", "steady", 50.0, minute + Duration::from_secs(10)).await;

    let tick = poller(&s, &policy, "partial")
        .tick_with_lease("p", minute + Duration::from_secs(40), 60)
        .await
        .unwrap();
    let outcome = |name: &str| tick.groups.iter().find(|g| g.group == name).unwrap().clone();
    let steady = outcome("steady");
    assert_eq!((steady.action, steady.desired), (Action::Unchanged, 10), "{}", steady.reason);
    assert_eq!(steady.metrics["m"], Some(1000.0), "a settled minute, not the 50 of the current one");
    assert!(
        steady.explanation.metrics[0].reading.contains("(settled)"),
        "{:?}",
        steady.explanation.metrics[0]
    );
    // The same read scales in when the settled minutes say so: 300 a minute needs 3.
    let fell = outcome("fell");
    assert_eq!((fell.action, fell.desired), (Action::Scaled, 3), "{}", fell.reason);
    assert_eq!(desired_capacity(&s.config, "fell").await, 3);
}

/// The bodies of the requests an Auto Scaling client sends, as the SDK serialized them.
#[derive(Clone, Debug, Default)]
struct RequestBodies(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl RequestBodies {
    fn containing(&self, text: &str) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|b| b.contains(text)).cloned().collect()
    }
}

impl aws_sdk_autoscaling::config::Intercept for RequestBodies {
    fn name(&self) -> &'static str {
        "RequestBodies"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_autoscaling::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_autoscaling::config::RuntimeComponents,
        _cfg: &mut aws_sdk_autoscaling::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
        self.0.lock().unwrap().push(body.into_owned());
        Ok(())
    }
}

/// The poller's Auto Scaling calls, recorded.
fn recorded_groups(s: &Setup) -> (metric_poller::AutoScalingGroups, RequestBodies) {
    let bodies = RequestBodies::default();
    let config = aws_sdk_autoscaling::config::Builder::from(&s.config).interceptor(bodies.clone()).build();
    (metric_poller::AutoScalingGroups::new(aws_sdk_autoscaling::Client::from_conf(config)), bodies)
}

#[tokio::test]
async fn enabled_groups_are_listed_100_per_page_and_every_page_is_read() {
    use metric_poller::GroupController;
    let s = setup().await;
    let names: Vec<String> = (0..150).map(|i| format!("g{i:03}")).collect();
    for name in &names {
        let spec = GroupSpec { name, min: 0, max: 2, desired: 0, tags: tags(&[ENABLED]) };
        create_group(&s.config, "lt", spec).await;
    }
    create_group(&s.config, "lt", GroupSpec { name: "untagged", min: 0, max: 2, desired: 0, tags: vec![] })
        .await;
    let (groups, bodies) = recorded_groups(&s);
    let mut listed: Vec<String> =
        groups.list_enabled_groups().await.unwrap().into_iter().map(|g| g.name).collect();
    listed.sort();
    assert_eq!(listed, names, "every page, and only enabled groups");
    // 150 groups: two pages of at most 100 (three at the API's default of 50).
    let pages = bodies.containing("Action=DescribeAutoScalingGroups");
    assert_eq!(pages.len(), 2, "{pages:#?}");
    assert!(pages.iter().all(|b| b.contains("MaxRecords=100")), "{pages:#?}");
}

#[tokio::test]
async fn set_desired_capacity_is_sent_with_honor_cooldown_false() {
    use metric_poller::GroupController;
    let s = setup().await;
    create_group(
        &s.config,
        "lt",
        GroupSpec { name: "svc", min: 1, max: 5, desired: 1, tags: tags(&[ENABLED]) },
    )
    .await;
    let (groups, bodies) = recorded_groups(&s);
    groups.set_desired_capacity("svc", 3).await.unwrap();
    assert_eq!(desired_capacity(&s.config, "svc").await, 3);
    // A group's cooldown would otherwise delay (or refuse) the poller's own decision.
    let calls = bodies.containing("Action=SetDesiredCapacity");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(calls[0].contains("HonorCooldown=false"), "{}", calls[0]);
}

#[tokio::test]
async fn metric_queries_are_sent_at_most_500_per_get_metric_data_call() {
    use metric_poller::MetricsSource;
    use metric_poller::policy::Query;
    let s = setup().await;
    let now = SystemTime::now();
    put_metric(&s.config, "Load", "q500", 42.0, now - Duration::from_secs(120)).await;
    // 501 queries, each for a different group's Load; the last one has data.
    let queries: Vec<(String, Query)> = (0..=500)
        .map(|i| {
            let query = metric_poller::MetricQuery {
                namespace: "Test/App".into(),
                metric_name: "Load".into(),
                dimensions: [("Group".to_owned(), format!("q{i:03}"))].into(),
                stat: "Average".into(),
                period_seconds: 60,
            };
            (format!("q{i:03}"), Query::Metric(query))
        })
        .collect();
    let clients = Clients::new(&s.config, false);
    let series = metric_poller::CloudWatchMetrics::new(clients.cloudwatch.clone())
        .datapoints(&queries, now - Duration::from_secs(600), now)
        .await
        .unwrap();
    assert_eq!(series["q500"].iter().map(|p| p.value).collect::<Vec<_>>(), [42.0]);
    assert_eq!(clients.calls.by_operation().get("GetMetricData"), Some(&2), "500 + 1");
    assert_eq!(clients.calls.metrics_requested(), 501, "each query is a metric requested, once");
}

#[tokio::test]
async fn an_s3_policy_is_parsed_again_only_when_its_etag_changes() {
    use metric_poller::policy_source::PolicyStore;
    let s = setup().await;
    let put = |text: String| {
        let s3 = s.clients.s3.clone();
        async move {
            s3.put_object()
                .bucket(STATE_BUCKET)
                .key("policy.json")
                .body(text.into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    };
    let policy = |target: &str| format!(r#"{{"groups": [{}]}}"#, policy_group("svc", "Load", target, ""));
    put(policy(r#"{"average": 50}"#)).await;
    let location = PolicyLocation::parse(&format!("s3://{STATE_BUCKET}/policy.json")).unwrap();
    let store = PolicyStore::new(location, Some(s.clients.s3.clone()));
    let first = store.document().await.unwrap();
    // Unchanged (304 to If-None-Match): the same parsed document, not a re-parse.
    assert!(
        std::sync::Arc::ptr_eq(&first, &store.document().await.unwrap()),
        "re-parsed an unchanged policy"
    );
    put(policy(r#"{"average": 25}"#)).await;
    let edited = store.document().await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &edited));
    assert!(format!("{:?}", edited.groups[0].metrics[0].rule).contains("25"));
    // An invalid edit: the last valid document stays in force.
    put(r#"{"groups": [{"name": "svc"}]}"#.to_owned()).await;
    assert!(std::sync::Arc::ptr_eq(&edited, &store.document().await.unwrap()));
}

/// Ten minutes of 10-s ticks over one group whose metric has `period` seconds, with a
/// datapoint every 10 s all along (published at once, as custom metrics are): the metrics
/// GetMetricData was asked for, and how many ticks decided on a value.
async fn metrics_requested_in_ten_minutes(period: i32) -> (u64, usize) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let s = setup().await;
    let name = "billed";
    create_group(&s.config, "lt", GroupSpec { name, min: 1, max: 20, desired: 2, tags: tags(&[ENABLED]) })
        .await;
    let unix_now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_now / 60 * 60);
    // From 20 minutes before the first tick to its last one, at the metric's resolution.
    let stamps: Vec<SystemTime> =
        (0..180).map(|i| base - Duration::from_secs(1200) + Duration::from_secs(i * 10)).collect();
    for chunk in stamps.chunks(500) {
        let data = chunk.iter().map(|&at| {
            MetricDatum::builder()
                .metric_name("Load")
                .dimensions(Dimension::builder().name("Group").value(name).build())
                .timestamp(DateTime::from(at))
                .value(40.0)
                .storage_resolution(if period < 60 { 1 } else { 60 })
                .build()
        });
        s.clients
            .cloudwatch
            .put_metric_data()
            .namespace("Test/App")
            .set_metric_data(Some(data.collect()))
            .send()
            .await
            .unwrap();
    }
    let group = policy_group(name, "Load", r#"{"average": 50}"#, r#", "dry_run": true"#)
        .replace(r#""period_seconds": 60"#, &format!(r#""period_seconds": {period}"#));
    let policy = write_policy(&s.dir, &[group]);
    let clients = Clients::new(&s.config, false);
    let config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy)),
        state: Some(S3Uri { bucket: STATE_BUCKET.into(), key: format!("billed-{period}") }),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&clients, config).unwrap();
    let mut decided_on_a_value = 0;
    for tick in 0..60 {
        let summary = poller.tick_with_lease("p", base + Duration::from_secs(tick * 10), 60).await.unwrap();
        if summary.groups[0].metrics["m"].is_some() {
            decided_on_a_value += 1;
        }
    }
    (clients.calls.metrics_requested(), decided_on_a_value)
}

#[tokio::test]
async fn a_60s_metric_is_requested_at_most_twice_per_datapoint_and_a_10s_one_once() {
    // 60 ticks, 10 datapoints of the 60-s metric: twice each, and once to start.
    let (requested, decided) = metrics_requested_in_ten_minutes(60).await;
    assert!(requested <= 2 * 10 + 1, "{requested} metrics requested for 10 datapoints (every tick: 60)");
    assert!(requested >= 10, "{requested}: every new datapoint is read");
    assert_eq!(decided, 60, "every tick decides on a value, read or remembered");
    // 60 datapoints of the 10-s metric, one per tick: each read once.
    let (requested, decided) = metrics_requested_in_ten_minutes(10).await;
    assert_eq!((requested, decided), (60, 60));
}

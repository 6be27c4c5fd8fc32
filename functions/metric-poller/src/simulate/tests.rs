//! The simulator end to end: the poller's tick over a simulated pipeline, against the AWS
//! emulation on the same data.

use super::*;
use crate::policy::{PolicyFormat, parse_policy_text};

fn policy(period: i64, extra: &str) -> GroupPolicy {
    parse_policy_text(
        &format!(
            r#"{{"groups": [{{"name": "web", "metrics": [{{"id": "cpu", "saturation": 100,
            "query": {{"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "period_seconds": {period}}},
            "target": {{"average": 50}}}}]{extra}}}]}}"#
        ),
        PolicyFormat::Json,
    )
    .unwrap()
    .groups
    .remove(0)
}

fn config(initial: i32) -> SimulationConfig {
    SimulationConfig {
        initial_capacity: initial,
        group_min: 1,
        group_max: 1000,
        capacity_per_instance: Some(100.0),
        ..SimulationConfig::default()
    }
}

fn both(policy: &GroupPolicy, trace: &Trace, config: &SimulationConfig) -> (Score, Score) {
    let engine = run(policy, trace, config, Controller::Engine).unwrap();
    let aws = run(policy, trace, config, Controller::AwsTargetTracking).unwrap();
    (engine.score, aws.score)
}

#[test]
fn a_step_is_met_sooner_than_by_aws_target_tracking_without_running_away() {
    let p = policy(60, "");
    let (engine, aws) = both(&p, &traces::step(1), &config(20));
    let (e, a) = (engine.slo_violation_seconds.unwrap(), aws.slo_violation_seconds.unwrap());
    assert!(e * 2 <= a, "engine {e} s vs AWS {a} s");
    // ×3 of 20 at target needs 60: the warmup covers boot and the metric's delay.
    assert!(engine.peak_capacity <= 90, "ran away to {}", engine.peak_capacity);
    assert!(
        engine.instance_hours <= aws.instance_hours * 1.05,
        "{} vs {}",
        engine.instance_hours,
        aws.instance_hours
    );
}

#[test]
fn lagged_data_with_a_fallback_neither_swings_nor_flaps() {
    // Data 120 s late, the README's fallback of 4: the group of 20 must stay put.
    let p = policy(60, r#", "on_missing_data": {"failure_threshold": 3, "fallback_capacity": 4}"#);
    let mut c = config(20);
    c.publication.lag = (120, 120);
    let run = run(&p, &traces::noisy(3), &c, Controller::Engine).unwrap();
    assert_eq!(run.score.direction_changes, 0);
    let lowest = run.ticks.iter().map(|t| t.desired).min().unwrap();
    assert!(lowest >= 15, "fell to {lowest}");
}

#[test]
fn a_flash_crowd_that_leaves_is_scaled_in_after_the_window() {
    // ×8 for 10 minutes, then back: stale ticks must not pin the scale-down window.
    let mut trace = traces::flash_crowd(2);
    for row in trace.rows.iter_mut().filter(|r| r.time >= 1200) {
        row.load = Some(500.0);
    }
    let run = run(&policy(60, ""), &trace, &config(10), Controller::Engine).unwrap();
    let peak = run.ticks.iter().map(|t| t.desired).max().unwrap();
    let at_end = run.ticks.last().unwrap().desired;
    assert!(peak >= 60, "peak {peak}");
    assert!(at_end <= 13, "still {at_end} at the end: {}", run.ticks.last().unwrap().reason);
}

#[test]
fn noise_changes_no_direction_within_the_down_window() {
    for period in [60, 10] {
        let mut c = config(20);
        if period == 10 {
            c.publication.lag = (10, 10);
        }
        let run = run(
            &policy(period, r#", "predictive": {"mode": "forecast_and_scale"}"#),
            &traces::noisy(4),
            &c,
            Controller::Engine,
        )
        .unwrap();
        let changes: Vec<String> = run
            .ticks
            .iter()
            .filter(|t| t.desired != t.current)
            .map(|t| format!("{} {}->{} {}", t.time, t.current, t.desired, t.reason))
            .collect();
        assert_eq!(run.score.direction_changes, 0, "period {period}: {changes:#?}");
    }
}

#[test]
fn a_partial_newest_period_never_causes_a_scale_in() {
    // Requests as a Sum, the newest minute visible while it fills.
    let p = parse_policy_text(
        r#"{"groups": [{"name": "web", "metrics": [{"id": "rps",
        "query": {"namespace": "App", "metric_name": "Requests", "stat": "Sum", "period_seconds": 60},
        "target": {"per_instance": 50}}]}]}"#,
        PolicyFormat::Json,
    )
    .unwrap()
    .groups
    .remove(0);
    let mut c = config(20);
    c.publication = Publication { lag: (5, 15), partial: true, seed: 9 };
    let run = run(&p, &traces::noisy(5), &c, Controller::Engine).unwrap();
    // A scale-in (after noise moved the group up) is the settled minutes' doing: never below
    // what the newest settled minute calls for (50 per instance), whatever the partial one.
    for t in run.ticks.iter().filter(|t| t.desired < t.current) {
        let settled = t.metrics["rps"].expect("a scale-in reads settled data");
        assert!(
            t.desired >= (settled / 50.0).ceil() as i32,
            "{} {}->{} {}",
            t.time,
            t.current,
            t.desired,
            t.reason
        );
    }
}

#[test]
fn seasonality_scales_out_ahead_of_the_daily_rise() {
    let p = policy(60, r#", "predictive": {"mode": "forecast_and_scale"}"#);
    let (engine, aws) = both(&p, &traces::diurnal(6), &config(8));
    let (e, a) = (engine.slo_violation_seconds.unwrap(), aws.slo_violation_seconds.unwrap());
    assert!(e * 10 <= a, "engine {e} s vs AWS {a} s");
    let run = run(&p, &traces::diurnal(6), &config(8), Controller::Engine).unwrap();
    assert!(run.ticks.iter().any(|t| t.reason.contains("seasonal forecast")), "the profile was never used");
}

#[test]
fn a_long_run_completes_inside_an_async_runtime() {
    // The CLI simulates inside `block_on`: hundreds of ticks in one poll of its task.
    let p = policy(60, "");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let run = runtime.block_on(async { run(&p, &traces::noisy(1), &config(4), Controller::Engine) }).unwrap();
    assert!(run.ticks.len() > 200, "{} ticks: too few to spend the budget", run.ticks.len());
}

//! The engine against the references: Kubernetes' HPA replica calculator and behavior
//! (`replica_calculator_test.go`, `horizontal_test.go`) and the AWS EC2 Auto Scaling user
//! guide's step-scaling examples.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::behavior::{Direction, limit_rate, scale_down_limit, scale_up_limit};
use super::proposal::{step_scaling, target_tracking};
use super::*;
use crate::MetricQuery;
use crate::policy::*;

fn query() -> Query {
    Query::Metric(MetricQuery {
        namespace: "AWS/EC2".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: BTreeMap::new(),
        stat: "Average".into(),
        period_seconds: 60,
    })
}

fn policy(targets: &[(&str, Target)]) -> GroupPolicy {
    GroupPolicy {
        selector: Selector::Name("web".into()),
        min_capacity: None,
        max_capacity: None,
        metrics: targets
            .iter()
            .map(|(id, t)| MetricPolicy {
                id: id.to_string(),
                query: query(),
                rule: MetricRule::Target(*t),
                saturation: None,
            })
            .collect(),
        tolerance: Tolerance::default(),
        behavior: Behavior::default(),
        instance_warmup_seconds: None,
        on_missing_data: OnMissingData::default(),
        dry_run: false,
        predictive: Predictive::default(),
    }
}

fn observe(current: i32, metrics: &[(&str, Option<f64>)]) -> Observation {
    Observation {
        current,
        warming: 0,
        group_min: 0,
        group_max: 10_000,
        metrics: metrics.iter().map(|(id, v)| (id.to_string(), *v)).collect(),
        signals: BTreeMap::new(),
    }
}

/// A policy without stabilization or rate limits, to see the raw arithmetic.
fn unrestricted(mut policy: GroupPolicy) -> GroupPolicy {
    for rules in [&mut policy.behavior.scale_up, &mut policy.behavior.scale_down] {
        rules.stabilization_seconds = 0;
        // Percent alone could never leave zero (0 x anything = 0, as in HPA): add instances.
        rules.policies = vec![
            RatePolicy { kind: RateKind::Percent, value: 100_000, period_seconds: 1 },
            RatePolicy { kind: RateKind::Instances, value: 100_000, period_seconds: 1 },
        ];
    }
    policy
}

const TOL: Tolerance = Tolerance { up: 0.1, down: 0.1 };

#[test]
fn hpa_replica_calculator_cases() {
    // (name, current, value, target, expected) from replica_calculator_test.go, in instances.
    let cases = [
        // TestReplicaCalcScaleUp: usage 300/500/700 of 1000 -> 50% average, target 30%.
        ("scale up", 3, 50.0, Target::Average(30.0), 5),
        // TestReplicaCalcScaleDown: 28% average on 5, target 50%.
        ("scale down", 5, 28.0, Target::Average(50.0), 3),
        // TestReplicaCalcTolerance: 102% against 100% is within 0.1.
        ("tolerance", 3, 102.0, Target::Average(100.0), 3),
        // TestReplicaCalcScaleUpCM: per-pod custom metric averaging 20000, target 15000.
        ("custom metric up", 3, 20_000.0, Target::Average(15_000.0), 4),
        // TestReplicaCalcScaleDownCM: averaging 12000, target 20000.
        ("custom metric down", 5, 12_000.0, Target::Average(20_000.0), 3),
        // TestReplicaCalcScaleUpPerPodCMExternal: total 8600, 2150 per pod.
        ("external per pod up", 3, 8_600.0, Target::PerInstance(2_150.0), 4),
        // TestReplicaCalcScaleDownPerPodCMExternal: total 8600, 2867 per pod.
        ("external per pod down", 5, 8_600.0, Target::PerInstance(2_867.0), 3),
        // TestReplicaCalcTolerancePerPodCMExternal: 8600 over 3 x 2900 is within 0.1.
        ("external per pod tolerance", 3, 8_600.0, Target::PerInstance(2_900.0), 3),
        // Exactly on the tolerance edge still holds: ratio 1.1.
        ("tolerance edge", 10, 55.0, Target::Average(50.0), 10),
        ("just over the edge", 10, 55.5, Target::Average(50.0), 12),
        // From zero instances: sized for the value, no tolerance.
        ("from zero", 0, 120.0, Target::Average(50.0), 3),
        ("from zero, nothing to do", 0, 0.0, Target::PerInstance(10.0), 0),
    ];
    for (name, current, value, target, expected) in cases {
        let proposal = target_tracking(current, 0, value, target, TOL);
        assert_eq!(proposal.capacity, expected, "{name}");
        let decision = decide(
            &unrestricted(policy(&[("m", target)])),
            &observe(current, &[("m", Some(value))]),
            &History::default(),
            0,
        );
        // A cold start never scales in at once (its history is seeded with the current
        // capacity), but unrestricted() has no down window, so the arithmetic shows through.
        assert_eq!(decision.desired, expected, "{name} through decide");
    }
}

#[test]
fn asymmetric_tolerance() {
    let tol = Tolerance { up: 0.05, down: 0.2 };
    assert_eq!(target_tracking(10, 0, 53.0, Target::Average(50.0), tol).capacity, 11);
    assert_eq!(target_tracking(10, 0, 42.0, Target::Average(50.0), tol).capacity, 10);
    assert_eq!(target_tracking(10, 0, 39.0, Target::Average(50.0), tol).capacity, 8);
}

#[test]
fn a_ratio_on_the_tolerance_edge_is_within_it_both_ways() {
    // 55 / 50 and 45 / 50 are 1.1 and 0.9 only to within float rounding: both are on the
    // 0.1 edge, so no change.
    for value in [55.0, 45.0] {
        let p = target_tracking(10, 0, value, Target::Average(50.0), TOL);
        assert_eq!((p.capacity, p.within_tolerance), (10, true), "{value}");
    }
}

#[test]
fn the_largest_proposal_wins_and_missing_metrics_block_only_scale_in() {
    let p = unrestricted(policy(&[("cpu", Target::Average(50.0)), ("rps", Target::PerInstance(100.0))]));
    let history = History::default();
    // cpu asks for 8, rps for 6: 8.
    let d = decide(&p, &observe(4, &[("cpu", Some(100.0)), ("rps", Some(600.0))]), &history, 0);
    assert_eq!(d.desired, 8);
    // One metric missing, the other asks for more: scale up (HPA).
    let d = decide(&p, &observe(4, &[("cpu", None), ("rps", Some(600.0))]), &history, 0);
    assert_eq!(d.desired, 6);
    // One metric missing, the other asks for less: hold.
    let d = decide(&p, &observe(4, &[("cpu", Some(10.0)), ("rps", None)]), &history, 0);
    assert_eq!(d.desired, 4);
    assert!(d.explanation.summary.contains("no scale-in"), "{}", d.explanation.summary);
    // Both valid and both lower: scale in.
    let d = decide(&p, &observe(4, &[("cpu", Some(10.0)), ("rps", Some(100.0))]), &history, 0);
    assert_eq!(d.desired, 1);
    // Non-finite counts as missing.
    let d = decide(&p, &observe(4, &[("cpu", Some(f64::NAN)), ("rps", Some(100.0))]), &history, 0);
    assert_eq!(d.desired, 4);
}

#[test]
fn fallback_after_the_failure_threshold_else_hold() {
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    p.on_missing_data = OnMissingData { failure_threshold: 3, fallback_capacity: Some(6) };
    let missing = observe(2, &[("cpu", None)]);
    let mut history = History::default();
    for tick in 1..=2 {
        let d = decide(&p, &missing, &history, tick);
        assert_eq!((d.desired, d.explanation.fallback), (2, false), "tick {tick}");
        history = d.history;
    }
    let d = decide(&p, &missing, &history, 3);
    assert_eq!((d.desired, d.explanation.fallback, d.history.consecutive_failures), (6, true, 3));
    // Data returns: the count resets and target tracking resumes.
    let d = decide(&p, &observe(6, &[("cpu", Some(50.0))]), &d.history, 4);
    assert_eq!((d.desired, d.history.consecutive_failures), (6, 0));
    // Without a fallback, missing data holds forever.
    p.on_missing_data.fallback_capacity = None;
    let mut history = History::default();
    for tick in 1..=10 {
        let d = decide(&p, &missing, &history, tick);
        assert_eq!(d.desired, 2);
        history = d.history;
    }
}

#[test]
fn scale_down_stabilization_uses_the_highest_recent_recommendation() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    let history = History {
        recommendations: vec![
            Recommendation { time: 1000 - 310, capacity: 20 }, // outside the 300 s window
            Recommendation { time: 1000 - 200, capacity: 10 },
            Recommendation { time: 1000 - 100, capacity: 8 },
        ],
        ..History::default()
    };
    // Recommendation 5 (ratio 0.5 on 10); the window's highest is 10: hold at 10.
    let d = decide(&p, &observe(10, &[("cpu", Some(25.0))]), &history, 1000);
    assert_eq!((d.desired, d.explanation.stabilized_by), (10, Some(Direction::ScaleDown)));
    // Later, the 10 has left the window; the 8 is highest: scale in to 8.
    let d = decide(&p, &observe(10, &[("cpu", Some(25.0))]), &d.history, 1000 + 101);
    assert_eq!(d.desired, 8);
}

#[test]
fn a_cold_start_never_scales_in_at_once() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    let d = decide(&p, &observe(10, &[("cpu", Some(5.0))]), &History::default(), 0);
    assert_eq!(d.desired, 10);
    // ... but it may scale out at once (no up window by default).
    let d = decide(&p, &observe(2, &[("cpu", Some(100.0))]), &History::default(), 0);
    assert_eq!(d.desired, 4);
}

#[test]
fn an_external_scale_out_stands_for_the_down_window_and_is_not_rate_counted() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    // The poller's own recommendations were 2; an operator set 6 at 1000.
    let history = History {
        recommendations: vec![Recommendation { time: 990, capacity: 2 }],
        external_changes: vec![ExternalChange { time: 1000, from: 2, to: 6 }],
        ..History::default()
    };
    // 20 % on 6 asks for 3; the operator's 6 holds the 300 s down window.
    let d = decide(&p, &observe(6, &[("cpu", Some(20.0))]), &history, 1010);
    assert_eq!((d.desired, d.explanation.stabilized_by), (6, Some(Direction::ScaleDown)));
    assert_eq!(d.explanation.external_change, Some(ExternalChange { time: 1000, from: 2, to: 6 }));
    assert!(
        d.explanation.summary.starts_with("external change 2 -> 6 at 1000 stands until 1300"),
        "{}",
        d.explanation.summary
    );
    let d = decide(&p, &observe(6, &[("cpu", Some(20.0))]), &d.history, 1299);
    assert_eq!(d.desired, 6, "still inside the window");
    // Once it has left the window (and the 3s the poller recommended meanwhile are highest).
    let d = decide(&p, &observe(6, &[("cpu", Some(20.0))]), &d.history, 1300);
    assert_eq!((d.desired, d.explanation.external_change), (3, None));
    assert!(d.history.external_changes.is_empty(), "pruned with the window");

    // A scale-out beyond it is limited from 6, not charged for the operator's 4 instances:
    // max(100 %, 4) of 6 per 15 s allows 12.
    let d = decide(&p, &observe(6, &[("cpu", Some(200.0))]), &history, 1005);
    assert_eq!(d.desired, 12);
}

#[test]
fn scale_up_stabilization_uses_the_lowest_recent_recommendation() {
    let mut p = policy(&[("cpu", Target::Average(50.0))]);
    p.behavior.scale_up.stabilization_seconds = 60;
    let history =
        History { recommendations: vec![Recommendation { time: 970, capacity: 6 }], ..History::default() };
    let d = decide(&p, &observe(4, &[("cpu", Some(125.0))]), &history, 1000);
    assert_eq!((d.desired, d.explanation.stabilized_by), (6, Some(Direction::ScaleUp)));
}

fn rules(select: Select, policies: &[(RateKind, i32, i64)]) -> ScalingRules {
    ScalingRules {
        stabilization_seconds: 0,
        policies: policies
            .iter()
            .map(|&(kind, value, period_seconds)| RatePolicy { kind, value, period_seconds })
            .collect(),
        select,
    }
}

#[test]
fn hpa_rate_limits() {
    use RateKind::*;
    // calculateScaleUpLimitWithScalingRules: 10 now, no events.
    let both = [(Percent, 100, 60), (Instances, 4, 60)];
    assert_eq!(scale_up_limit(10, &[], &rules(Select::Max, &both), 0), 20);
    assert_eq!(scale_up_limit(10, &[], &rules(Select::Min, &both), 0), 14);
    assert_eq!(scale_up_limit(10, &[], &rules(Select::Disabled, &both), 0), 10);
    // Percent up rounds up: 3 x 1.1 = 3.3 -> 4.
    assert_eq!(scale_up_limit(3, &[], &rules(Select::Max, &[(Percent, 10, 60)]), 0), 4);
    // The period starts from the capacity before this period's changes: +5 within 60 s.
    let events = [ScaleEvent { time: -30, change: 5 }];
    assert_eq!(scale_up_limit(10, &events, &rules(Select::Max, &[(Percent, 100, 60)]), 0), 10);
    // ... and the event ages out of a shorter period.
    assert_eq!(scale_up_limit(10, &events, &rules(Select::Max, &[(Percent, 100, 15)]), 0), 20);
    // Removals within the period count back: -4 then +2 -> started at 12.
    let events = [ScaleEvent { time: -20, change: -4 }, ScaleEvent { time: -10, change: 2 }];
    assert_eq!(scale_up_limit(10, &events, &rules(Select::Max, &[(Instances, 1, 60)]), 0), 13);

    // calculateScaleDownLimitWithBehaviors: 10 now.
    let both = [(Percent, 50, 60), (Instances, 3, 60)];
    assert_eq!(scale_down_limit(10, &[], &rules(Select::Max, &both), 0), 5);
    assert_eq!(scale_down_limit(10, &[], &rules(Select::Min, &both), 0), 7);
    // Percent down truncates: 7 x 0.5 = 3.5 -> 3.
    assert_eq!(scale_down_limit(7, &[], &rules(Select::Max, &[(Percent, 50, 60)]), 0), 3);
    // The period starts before this period's additions too: +4 within 60 s -> started at 6.
    let events = [ScaleEvent { time: -10, change: 4 }];
    assert_eq!(scale_down_limit(10, &events, &rules(Select::Max, &[(Instances, 2, 60)]), 0), 4);

    // convertDesiredReplicasWithBehaviorRate with HPA's default behavior.
    let defaults = Behavior::default();
    assert_eq!(limit_rate(1, 100, &[], &defaults, 0).0, 5); // max(1 x 2, 1 + 4)
    assert_eq!(limit_rate(10, 100, &[], &defaults, 0).0, 20); // max(10 x 2, 10 + 4)
    assert_eq!(limit_rate(10, 0, &[], &defaults, 0).0, 0); // 100 % down
    let mut no_down = defaults.clone();
    no_down.scale_down.select = Select::Disabled;
    assert_eq!(limit_rate(10, 2, &[], &no_down, 0).0, 10);
    // A scale-up limit lagging below current never forces a scale-in.
    let events = [ScaleEvent { time: -5, change: 8 }];
    let (desired, limited) = limit_rate(10, 12, &events, &defaults, 0);
    assert_eq!((desired, limited.map(|l| l.limit)), (10, Some(10)));
    // A move that reaches the limit exactly is not limited (the explanation says no limit).
    assert_eq!(limit_rate(1, 5, &[], &defaults, 0), (5, None));
    let down = Behavior { scale_down: rules(Select::Max, &[(Instances, 3, 60)]), ..Behavior::default() };
    assert_eq!(limit_rate(10, 7, &[], &down, 0), (7, None));
}

#[test]
fn rate_limits_apply_through_decide_and_events_are_recorded() {
    let p = policy(&[("cpu", Target::Average(10.0))]);
    let mut history = History::default();
    // 2 instances at 10x the target ask for 20: default rules allow max(4, 6) = 6.
    let d = decide(&p, &observe(2, &[("cpu", Some(100.0))]), &history, 0);
    assert_eq!(d.desired, 6);
    history = d.history;
    history.record_scaling(0, 2, 6);
    // 5 s later the 15 s period still holds the +4: limit max(2 x 2, 2 + 4) = 6.
    let d = decide(&p, &observe(6, &[("cpu", Some(100.0))]), &history, 5);
    assert_eq!(d.desired, 6);
    assert!(d.explanation.rate_limited.is_some());
    // After the period: max(12, 10) = 12.
    let d = decide(&p, &observe(6, &[("cpu", Some(100.0))]), &d.history, 16);
    assert_eq!(d.desired, 12);
}

#[test]
fn bounds_combine_the_policy_and_the_group() {
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    p.min_capacity = Some(3);
    p.max_capacity = Some(40);
    let mut o = observe(10, &[("cpu", Some(1000.0))]);
    o.group_min = 1;
    o.group_max = 30;
    assert_eq!(bounds(&p, 1, 30), [3, 30]);
    let d = decide(&p, &o, &History::default(), 0);
    assert_eq!(d.desired, 30);
    assert!(d.explanation.summary.contains("clamped to [3, 30]"), "{}", d.explanation.summary);
    o.metrics.insert("cpu".into(), Some(1.0));
    assert_eq!(decide(&p, &o, &History::default(), 0).desired, 3);
    // A policy minimum above the group's maximum: the group's maximum wins.
    p.min_capacity = Some(50);
    assert_eq!(bounds(&p, 1, 30), [30, 30]);
}

#[test]
fn warming_instances_and_average_metrics() {
    // 10 instances, 4 of them warming; the 6 in service average 150 % of target.
    // The 6 need 9 instances' worth: the 10 already on the way cover it.
    assert_eq!(target_tracking(10, 4, 75.0, Target::Average(50.0), TOL).capacity, 10);
    // At 300 % the 6 need 18.
    assert_eq!(target_tracking(10, 4, 150.0, Target::Average(50.0), TOL).capacity, 18);
    // No scale-in while instances warm.
    let p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    let mut o = observe(10, &[("cpu", Some(10.0))]);
    o.warming = 1;
    let d = decide(&p, &o, &History::default(), 0);
    assert_eq!(d.desired, 10);
    assert!(d.explanation.summary.contains("warming"));
}

fn aws_guide_steps(threshold: f64) -> StepScaling {
    // "Step adjustments for step scaling": breach threshold 50, PercentChangeInCapacity.
    let step = |lower: Option<f64>, upper: Option<f64>, adjustment: f64| Step { lower, upper, adjustment };
    StepScaling {
        threshold,
        adjustment_type: AdjustmentType::PercentChangeInCapacity,
        steps: vec![
            step(None, Some(-20.0), -30.0),
            step(Some(-20.0), Some(-10.0), -10.0),
            step(Some(-10.0), Some(0.0), 0.0),
            step(Some(0.0), Some(10.0), 0.0),
            step(Some(10.0), Some(20.0), 10.0),
            step(Some(20.0), None, 30.0),
        ],
        min_adjustment_magnitude: None,
    }
}

#[test]
fn aws_step_scaling_worked_example() {
    let policy = aws_guide_steps(50.0);
    let capacity = |current, value| step_scaling(current, 0, value, &policy).unwrap().capacity;
    // 60: +10 % of 10 = 1 -> 11. 70 after that: +30 % of 11 = 3.3 -> 3 -> 14.
    assert_eq!(capacity(10, 60.0), 11);
    assert_eq!(capacity(11, 70.0), 14);
    // 40: -10 % of 14 = -1.4 -> -1 -> 13. 30 after that: -30 % of 13 = -3.9 -> -3 -> 10.
    assert_eq!(capacity(14, 40.0), 13);
    assert_eq!(capacity(13, 30.0), 10);
    // Boundaries: above the threshold lower is inclusive; below it upper is inclusive.
    assert_eq!(step_scaling(10, 0, 60.0, &policy).unwrap().step, 4);
    assert_eq!(step_scaling(10, 0, 40.0, &policy).unwrap().step, 1);
    assert_eq!(step_scaling(10, 0, 50.0, &policy).unwrap().step, 3);
}

#[test]
fn the_floating_noise_guard_grows_with_the_capacity() {
    // 3119 × (39.99358768836166 / 30) is 4158 exactly, computed as 4158.000000000001: one
    // ulp over, which a fixed slack smaller than the ulp at that size would round up to 4159.
    let p = target_tracking(3119, 0, 39.993_587_688_361_66, Target::Average(30.0), TOL);
    assert_eq!(p.capacity, 4158);
}

#[test]
fn a_zero_percent_step_changes_nothing() {
    // AWS rounds a change strictly between 0 and 1 up to 1; a 0 % step is no change.
    let policy = aws_guide_steps(50.0);
    let p = step_scaling(10, 0, 55.0, &policy).unwrap();
    assert_eq!((p.step, p.capacity, p.change), (3, 10, 0));
    assert_eq!(step_scaling(10, 0, 45.0, &policy).unwrap().capacity, 10);
}

#[test]
fn aws_percent_rounding_and_min_adjustment_magnitude() {
    let single = |adjustment: f64, magnitude: Option<i32>| StepScaling {
        threshold: 0.0,
        adjustment_type: AdjustmentType::PercentChangeInCapacity,
        steps: vec![Step { lower: None, upper: None, adjustment }],
        min_adjustment_magnitude: magnitude,
    };
    let change = |current: i32, adjustment: f64, magnitude| {
        step_scaling(current, 0, 1.0, &single(adjustment, magnitude)).unwrap().change
    };
    assert_eq!(change(100, 12.7, None), 12); // 12.7 -> 12
    assert_eq!(change(3, 22.0, None), 1); // 0.66 -> 1
    assert_eq!(change(3, -22.0, None), -1); // -0.66 -> -1
    assert_eq!(change(100, -6.67, None), -6); // -6.67 -> -6
    // "25 percent with a MinAdjustmentMagnitude of 2 on 4 instances adds 2."
    assert_eq!(change(4, 25.0, Some(2)), 2);
}

#[test]
fn aws_step_scaling_counts_warming_capacity() {
    let policy = StepScaling {
        threshold: 50.0,
        adjustment_type: AdjustmentType::ChangeInCapacity,
        steps: vec![
            Step { lower: Some(0.0), upper: Some(20.0), adjustment: 2.0 },
            Step { lower: Some(20.0), upper: None, adjustment: 3.0 },
        ],
        min_adjustment_magnitude: None,
    };
    // 10 in service, +2 warming from the first step; the alarm reaches the +3 step: add 1.
    let p = step_scaling(12, 2, 75.0, &policy).unwrap();
    assert_eq!((p.capacity, p.change), (13, 1));
    // Still in the first step while its instances warm: add nothing more.
    assert_eq!(step_scaling(12, 2, 60.0, &policy).unwrap().capacity, 12);
    // A percent scale-out is of the instances in service: +50 % of the 6 not warming is 3,
    // which the 4 warming already cover.
    let percent = StepScaling {
        adjustment_type: AdjustmentType::PercentChangeInCapacity,
        steps: vec![Step { lower: Some(0.0), upper: None, adjustment: 50.0 }],
        ..policy.clone()
    };
    assert_eq!(step_scaling(10, 4, 60.0, &percent).unwrap().capacity, 10);
    assert_eq!(step_scaling(10, 0, 60.0, &percent).unwrap().capacity, 15);
    // Below every step: no proposal.
    assert_eq!(step_scaling(12, 0, 10.0, &policy), None);
    // Exact capacity.
    let exact = StepScaling {
        adjustment_type: AdjustmentType::ExactCapacity,
        steps: vec![Step { lower: Some(0.0), upper: None, adjustment: 7.0 }],
        ..policy
    };
    let p = step_scaling(3, 0, 60.0, &exact).unwrap();
    assert_eq!((p.capacity, p.change), (7, 4), "the change the explanation reports is 7 - 3");
}

#[test]
fn step_scaling_through_decide() {
    let mut p = unrestricted(policy(&[]));
    p.metrics = vec![MetricPolicy {
        id: "cpu".into(),
        query: query(),
        rule: MetricRule::StepScaling(aws_guide_steps(50.0)),
        saturation: None,
    }];
    let d = decide(&p, &observe(10, &[("cpu", Some(72.0))]), &History::default(), 0);
    assert_eq!(d.desired, 13);
    assert!(d.explanation.summary.contains("step 5 (+3)"), "{}", d.explanation.summary);
}

#[test]
fn explanations_say_why() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    let d = decide(&p, &observe(2, &[("cpu", Some(200.0))]), &History::default(), 0);
    // cpu asks for 8; the default scale-up rules allow max(4, 6) = 6.
    assert_eq!(d.desired, 6);
    assert_eq!(d.explanation.metrics[0].proposal, Some(8));
    assert_eq!(d.explanation.metrics[0].ratio, Some(4.0));
    assert_eq!(d.explanation.rate_limited.map(|l| l.limit), Some(6));
    assert_eq!(d.explanation.summary, "cpu=200 (ratio 4.00, target tracking) -> 8; rate limit 6; desired 6");
}

#[test]
fn history_is_pruned_to_the_longest_window() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    let mut history = History::default();
    for t in (0..3600).step_by(10) {
        let d = decide(&p, &observe(4, &[("cpu", Some(50.0))]), &history, t);
        history = d.history;
    }
    // 300 s down window at 10 s ticks: 30 recommendations at most.
    assert!(history.recommendations.len() <= 30, "{}", history.recommendations.len());
}

#[test]
fn scale_events_are_kept_for_the_longest_rate_period_or_warmup_only() {
    // Warmup 100 s, longer than the default 15-s rate periods: events older are dropped,
    // so the state object does not grow with every change ever made.
    let mut p = policy(&[("cpu", Target::Average(50.0))]);
    p.instance_warmup_seconds = Some(100);
    let now = 1_000_000;
    let history = History {
        scale_events: vec![
            ScaleEvent { time: 500_000, change: 1 },
            ScaleEvent { time: now - 100, change: 1 },
            ScaleEvent { time: now - 99, change: 1 },
        ],
        ..History::default()
    };
    let d = decide(&p, &observe(4, &[("cpu", Some(50.0))]), &history, now);
    assert_eq!(d.history.scale_events, [ScaleEvent { time: now - 99, change: 1 }]);
}

#[test]
fn a_newer_period_asking_only_the_current_capacity_does_not_hold_a_scale_in() {
    // Settled 25 at target 50 asks 5 of 10; the newer period at 50 asks 10, which is no
    // scale-out: scale-out-only estimates never stand in the way of a scale-in.
    let p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    let mut o = observe(10, &[("cpu", Some(25.0))]);
    o.signals.insert("cpu".into(), Signals { scale_out_estimate: Some(50.0), ..Signals::default() });
    let d = decide(&p, &o, &History::default(), 0);
    assert_eq!(d.desired, 5, "{}", d.explanation.summary);
}

#[test]
fn boot_is_timed_from_a_scale_out_only_within_900_s_of_seeing_instances_pending() {
    // Within 900 s: the poller's scale-out launched them.
    let mut boot = warmup::BootTracker::default();
    boot.observe(2, Some(1000), 1899);
    boot.observe(0, Some(1000), 2000);
    assert_eq!(boot.measured_seconds, Some(1000));
    // 900 s or more: someone else's launch, timed from when it is seen (a lower bound).
    let mut boot = warmup::BootTracker::default();
    boot.observe(2, Some(1000), 1900);
    boot.observe(0, Some(1000), 2000);
    assert_eq!(boot.measured_seconds, Some(100));
}

// Property tests: invariants over arbitrary inputs.

fn arb_behavior() -> impl Strategy<Value = Behavior> {
    let rate = (prop_oneof![Just(RateKind::Percent), Just(RateKind::Instances)], 1..200i32, 1..120i64)
        .prop_map(|(kind, value, period_seconds)| RatePolicy { kind, value, period_seconds });
    let rules =
        (0..600i64, prop::collection::vec(rate, 1..3), prop_oneof![Just(Select::Max), Just(Select::Min)])
            .prop_map(|(stabilization_seconds, policies, select)| ScalingRules {
                stabilization_seconds,
                policies,
                select,
            });
    (rules.clone(), rules).prop_map(|(scale_up, scale_down)| Behavior { scale_up, scale_down })
}

fn arb_history() -> impl Strategy<Value = History> {
    (
        prop::collection::vec((0..600i64, 0..200i32), 0..20),
        prop::collection::vec((0..120i64, -20..20i32), 0..5),
        0..5u32,
        prop::collection::vec((0..600i64, 0..200i32, 0..200i32), 0..3),
    )
        .prop_map(|(recs, events, consecutive_failures, external)| History {
            recommendations: recs
                .into_iter()
                .map(|(ago, capacity)| Recommendation { time: 1000 - ago, capacity })
                .collect(),
            scale_events: events
                .into_iter()
                .map(|(ago, change)| ScaleEvent { time: 1000 - ago, change })
                .collect(),
            consecutive_failures,
            missing_since: None,
            external_changes: external
                .into_iter()
                .map(|(ago, from, to)| ExternalChange { time: 1000 - ago, from, to })
                .collect(),
        })
}

proptest! {
    #[test]
    fn the_result_stays_in_bounds(
        behavior in arb_behavior(), history in arb_history(),
        current in 0..300i32, value in prop::option::of(0.0..1e6f64), target in 0.01..1e4f64,
        per_instance in any::<bool>(), group_min in 0..50i32, span in 0..200i32,
        policy_min in prop::option::of(0..100i32), policy_max in prop::option::of(0..300i32),
    ) {
        let target = if per_instance { Target::PerInstance(target) } else { Target::Average(target) };
        let mut p = policy(&[("m", target)]);
        p.behavior = behavior;
        p.min_capacity = policy_min;
        p.max_capacity = policy_max;
        let mut o = observe(current, &[("m", value)]);
        o.group_min = group_min;
        o.group_max = group_min + span;
        let d = decide(&p, &o, &history, 1000);
        let [lo, hi] = bounds(&p, o.group_min, o.group_max);
        prop_assert!(lo >= o.group_min && hi <= o.group_max);
        prop_assert!(d.desired >= lo && d.desired <= hi, "{} outside [{lo}, {hi}]", d.desired);
    }

    #[test]
    fn a_higher_metric_never_yields_fewer_instances(
        behavior in arb_behavior(), history in arb_history(), current in 0..300i32,
        low in 0.0..1e5f64, extra in 0.0..1e5f64, target in 0.01..1e4f64, per_instance in any::<bool>(),
    ) {
        let target = if per_instance { Target::PerInstance(target) } else { Target::Average(target) };
        let mut p = policy(&[("m", target)]);
        p.behavior = behavior;
        let lower = decide(&p, &observe(current, &[("m", Some(low))]), &history, 1000);
        let higher = decide(&p, &observe(current, &[("m", Some(low + extra))]), &history, 1000);
        prop_assert!(higher.desired >= lower.desired, "{} < {}", higher.desired, lower.desired);
    }

    #[test]
    fn values_within_tolerance_never_change_capacity(
        history in arb_history(), current in 1..300i32, target in 0.01..1e4f64,
        offset in -0.1..=0.1f64, per_instance in any::<bool>(),
    ) {
        let value = if per_instance { target * f64::from(current) * (1.0 + offset) } else { target * (1.0 + offset) };
        let target = if per_instance { Target::PerInstance(target) } else { Target::Average(target) };
        let p = policy(&[("m", target)]);
        let d = decide(&p, &observe(current, &[("m", Some(value))]), &history, 1000);
        prop_assert_eq!(d.explanation.recommendation, current);
    }

    #[test]
    fn no_scale_in_within_the_down_window_after_a_higher_recommendation(
        window in 1..600i64, age in 0..600i64, high in 1..300i32, current in 1..300i32, value in 0.0..1e4f64,
    ) {
        prop_assume!(age < window);
        let mut p = policy(&[("m", Target::Average(50.0))]);
        p.behavior.scale_down.stabilization_seconds = window;
        let history = History {
            recommendations: vec![Recommendation { time: 1000 - age, capacity: high.max(current) }],
            ..History::default()
        };
        let d = decide(&p, &observe(current, &[("m", Some(value))]), &history, 1000);
        prop_assert!(d.desired >= current, "scaled in to {} from {current}", d.desired);
    }
}

// The rules of issue 11: stale ticks, fallbacks, partial periods, forecasts.

#[test]
fn a_tick_without_data_records_no_recommendation() {
    let p = policy(&[("cpu", Target::Average(50.0))]);
    // A flash crowd asked for 159; the load has left (6 %, asking 20), but data went stale.
    let history =
        History { recommendations: vec![Recommendation { time: 0, capacity: 159 }], ..History::default() };
    let mut h = history;
    for t in (10..=200).step_by(10) {
        let d = decide(&p, &observe(159, &[("cpu", None)]), &h, t);
        assert!(!d.explanation.recorded);
        assert_eq!(d.desired, 159, "no scale-in without data");
        h = d.history;
    }
    assert_eq!(h.recommendations, [Recommendation { time: 0, capacity: 159 }], "nothing added");
    // Data returns at 310: the window no longer holds the crowd's 159.
    let d = decide(&p, &observe(159, &[("cpu", Some(6.0))]), &h, 310);
    assert!(d.explanation.recorded);
    assert_eq!(d.desired, 20, "{}", d.explanation.summary);
}

#[test]
fn a_fallback_below_the_current_capacity_waits_for_the_down_window_then_follows_the_rate_limit() {
    let mut p = policy(&[("cpu", Target::Average(50.0))]);
    p.on_missing_data = OnMissingData { failure_threshold: 3, fallback_capacity: Some(4) };
    p.behavior.scale_down.policies =
        vec![RatePolicy { kind: RateKind::Instances, value: 2, period_seconds: 60 }];
    let mut h =
        History { recommendations: vec![Recommendation { time: 0, capacity: 20 }], ..History::default() };
    let mut current = 20;
    let mut desired_at = Vec::new();
    for t in (10..=700).step_by(10) {
        let d = decide(&p, &observe(current, &[("cpu", None)]), &h, t);
        h = d.history;
        if d.desired != current {
            h.record_scaling(t, current, d.desired);
            desired_at.push((t, d.desired));
            current = d.desired;
        }
    }
    // Missing since 10 s: nothing moves before 310 s, then 2 instances a minute.
    assert_eq!(desired_at.first(), Some(&(310, 18)), "{desired_at:?}");
    assert!(desired_at.windows(2).all(|w| w[1].0 - w[0].0 >= 60 && w[0].1 - w[1].1 == 2), "{desired_at:?}");
    assert_eq!(current, 6, "310 s to 670 s: seven moves of 2, on the way to 4");
}

#[test]
fn a_saturated_utilization_scales_out_faster_unless_an_uncapped_metric_knows_better() {
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    p.metrics[0].saturation = Some(100.0);
    let d = decide(&p, &observe(10, &[("cpu", Some(100.0))]), &History::default(), 0);
    assert_eq!(d.desired, 30, "100 % read as 150 %: ratio 3");
    assert!(d.explanation.summary.contains("saturated"), "{}", d.explanation.summary);
    // Requests per instance say the demand is 2.2 instances' worth per instance: 22 wins.
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0)), ("rps", Target::PerInstance(100.0))]));
    p.metrics[0].saturation = Some(100.0);
    let d = decide(&p, &observe(10, &[("cpu", Some(100.0)), ("rps", Some(2200.0))]), &History::default(), 0);
    assert_eq!(d.desired, 22, "{}", d.explanation.summary);
}

#[test]
fn forecasts_act_only_in_forecast_and_scale_mode() {
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    let mut o = observe(10, &[("cpu", Some(50.0))]);
    o.signals.insert(
        "cpu".into(),
        Signals { trend: Some(800.0), seasonal_demand: Some(700.0), ..Signals::default() },
    );
    let d = decide(&p, &o, &History::default(), 0);
    assert_eq!((d.desired, d.explanation.metrics[0].trend_forecast), (10, Some(800.0)), "off: reported only");
    p.predictive.mode = PredictiveMode::ForecastOnly;
    assert_eq!(decide(&p, &o, &History::default(), 0).desired, 10);
    p.predictive.mode = PredictiveMode::ForecastAndScale;
    let d = decide(&p, &o, &History::default(), 0);
    assert_eq!(d.desired, 16, "800 of demand at 50 per instance");
    assert!(d.explanation.summary.contains("trend forecast asks 16"), "{}", d.explanation.summary);
}

#[test]
fn a_non_finite_forecast_is_ignored() {
    // An infinite demand would ask for i32::MAX instances: the group's max at once.
    let mut p = unrestricted(policy(&[("cpu", Target::Average(50.0))]));
    p.predictive.mode = PredictiveMode::ForecastAndScale;
    for signals in [
        Signals { trend: Some(f64::INFINITY), ..Signals::default() },
        Signals { seasonal_demand: Some(f64::INFINITY), ..Signals::default() },
    ] {
        let mut o = observe(10, &[("cpu", Some(50.0))]);
        o.signals.insert("cpu".into(), signals.clone());
        let d = decide(&p, &o, &History::default(), 0);
        assert_eq!(d.desired, 10, "{signals:?}: {}", d.explanation.summary);
    }
}

fn arb_signals() -> impl Strategy<Value = Signals> {
    (prop::option::of(0.0..1e5f64), prop::option::of(0.0..1e6f64), prop::option::of(0.0..1e6f64)).prop_map(
        |(scale_out_estimate, trend, seasonal_demand)| Signals {
            scale_out_estimate,
            trend,
            seasonal_demand,
            reading: String::new(),
        },
    )
}

proptest! {
    /// Partial periods and forecasts only ever add: with them the decision is never lower
    /// than without them, and never a scale-in the settled value alone would not make.
    #[test]
    fn partial_periods_and_forecasts_never_scale_in(
        behavior in arb_behavior(), history in arb_history(), signals in arb_signals(),
        current in 0..300i32, value in prop::option::of(0.0..1e4f64), target in 0.01..1e3f64,
        per_instance in any::<bool>(), saturated in any::<bool>(),
    ) {
        let target = if per_instance { Target::PerInstance(target) } else { Target::Average(target) };
        let mut p = policy(&[("m", target)]);
        p.behavior = behavior;
        p.predictive.mode = PredictiveMode::ForecastAndScale;
        p.metrics[0].saturation = saturated.then_some(100.0);
        let plain = observe(current, &[("m", value)]);
        let mut with = plain.clone();
        with.signals.insert("m".into(), signals);
        let without = decide(&p, &plain, &history, 1000);
        let with = decide(&p, &with, &history, 1000);
        prop_assert!(with.desired >= without.desired, "{} < {}", with.desired, without.desired);
        if with.desired < current {
            prop_assert_eq!(with.desired, without.desired);
        }
    }

    /// Whatever the history, a tick with a metric missing records nothing, and the
    /// fallback respects the scale-down window and the rate limits.
    #[test]
    fn a_fallback_never_breaks_stabilization_or_rate_limits(
        behavior in arb_behavior(), history in arb_history(), current in 0..300i32,
        fallback in 0..300i32, missing_for in 0..900i64,
    ) {
        let mut p = policy(&[("m", Target::Average(50.0))]);
        p.behavior = behavior;
        p.on_missing_data = OnMissingData { failure_threshold: 1, fallback_capacity: Some(fallback) };
        let mut history = history;
        history.missing_since = Some(1000 - missing_for);
        let d = decide(&p, &observe(current, &[("m", None)]), &history, 1000);
        prop_assert!(!d.explanation.recorded);
        let at_now = |h: &History| h.recommendations.iter().filter(|r| r.time == 1000).count();
        prop_assert_eq!(at_now(&d.history), at_now(&history));
        let down = scale_down_limit(current, &history.scale_events, &p.behavior.scale_down, 1000).min(current);
        let up = scale_up_limit(current, &history.scale_events, &p.behavior.scale_up, 1000).max(current);
        let [lo, hi] = bounds(&p, 0, 10_000);
        prop_assert!(d.desired >= down.clamp(lo, hi) || d.desired == lo, "{} below the rate limit {down}", d.desired);
        prop_assert!(d.desired <= up.max(lo), "{} above the rate limit {up}", d.desired);
        if d.desired < current {
            prop_assert!(missing_for >= p.behavior.scale_down.stabilization_seconds, "scaled in after {missing_for} s");
            let window = 1000 - p.behavior.scale_down.stabilization_seconds;
            let held = history.recommendations.iter().filter(|r| r.time > window).map(|r| r.capacity).max();
            prop_assert!(held.is_none_or(|h| d.desired >= h.min(current)), "below the window's {held:?}");
        }
    }
}

//! What one metric asks for: target tracking and step scaling.

use crate::policy::{AdjustmentType, StepScaling, Tolerance};

use super::Target;

/// `ceil` that ignores floating-point noise: 3 × 50 / 30 is 5.000000000000001 in f64 and
/// must give 5, not 6.
/// Relative slack for floating-point noise in ratios.
const EPSILON: f64 = 1e-9;

pub fn ceil_guarded(x: f64) -> f64 {
    if !x.is_finite() {
        return x; // inf - EPSILON * inf would be NaN
    }
    (x - EPSILON * x.abs().max(1.0)).ceil()
}

/// A capacity from a real number: saturating, so an absurd metric value (even an overflow
/// to infinity) asks for the maximum; it never wraps or turns into zero.
pub fn to_capacity(x: f64) -> i32 {
    let x = ceil_guarded(x);
    if x.is_nan() { 0 } else { x.clamp(0.0, i32::MAX as f64) as i32 }
}

/// A target-tracking proposal and the ratio behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetProposal {
    pub capacity: i32,
    /// Above 1 asks for more capacity; `None` from zero instances.
    pub ratio: Option<f64>,
    pub within_tolerance: bool,
}

/// Target tracking, as Kubernetes' HPA replica calculator computes it
/// (`pkg/controller/podautoscaler/replica_calculator.go`, `GetResourceReplicas` and
/// `GetExternalPerPodMetricReplicas`):
/// - `Average` (a per-instance average such as CPU): ratio = value / target,
///   desired = ceil(current × ratio);
/// - `PerInstance` (a total such as requests): ratio = value / (target × current),
///   desired = ceil(value / target);
/// - within tolerance (|1 − ratio| ≤ tolerance in the ratio's direction): current;
/// - from zero instances: ceil(value / target), no tolerance.
///
/// `warming` instances (launched within the warmup) do not count toward the capacity an
/// average covers when scaling out (AWS EC2 Auto Scaling, "instance warmup"): their
/// metrics are not in the average yet, and the capacity they add is already on its way.
pub fn target_tracking(
    current: i32,
    warming: i32,
    value: f64,
    target: Target,
    tolerance: Tolerance,
) -> TargetProposal {
    let (t, per_instance) = match target {
        Target::Average(t) => (t, false),
        Target::PerInstance(t) => (t, true),
    };
    if current <= 0 {
        return TargetProposal { capacity: to_capacity(value / t), ratio: None, within_tolerance: false };
    }
    let ratio = if per_instance { value / (t * f64::from(current)) } else { value / t };
    // With the same slack as the ceiling: 55 / 50 is 1.1000000000000000888 in f64 and must
    // count as on the 0.1 edge, not past it.
    let within_tolerance = if ratio >= 1.0 {
        ratio - 1.0 <= tolerance.up + EPSILON
    } else {
        1.0 - ratio <= tolerance.down + EPSILON
    };
    if within_tolerance {
        return TargetProposal { capacity: current, ratio: Some(ratio), within_tolerance };
    }
    let capacity = if per_instance {
        to_capacity(value / t)
    } else if ratio > 1.0 {
        let counted = (current - warming.clamp(0, current)).max(1);
        to_capacity(f64::from(counted) * ratio).max(current)
    } else {
        to_capacity(f64::from(current) * ratio)
    };
    TargetProposal { capacity, ratio: Some(ratio), within_tolerance }
}

/// A step-scaling proposal: `None` when the value lies in no step (no alarm breached).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepProposal {
    pub capacity: i32,
    /// The index of the step that matched, in the policy's (sorted) order.
    pub step: usize,
    /// The change in instances the step made, after rounding and the minimum magnitude.
    pub change: i32,
}

/// AWS EC2 Auto Scaling step scaling ("Step and simple scaling policies", user guide).
///
/// Bounds are relative to the threshold. Above the threshold a step's lower bound is
/// inclusive and its upper bound exclusive; below it, the lower bound is exclusive and the
/// upper inclusive. Percent changes round as AWS does: above 1 down, between 0 and 1 to 1,
/// between 0 and −1 to −1, below −1 up (toward zero); `min_adjustment_magnitude` then
/// raises a smaller percent change to that many instances. While instances are warming,
/// the capacity they add counts toward a scale-out step: a larger step adds only the
/// difference.
pub fn step_scaling(current: i32, warming: i32, value: f64, policy: &StepScaling) -> Option<StepProposal> {
    let diff = value - policy.threshold;
    let (index, step) = policy.steps.iter().enumerate().find(|(_, s)| {
        let lower = s.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = s.upper.unwrap_or(f64::INFINITY);
        if diff >= 0.0 { lower <= diff && diff < upper } else { lower < diff && diff <= upper }
    })?;
    let warming = warming.clamp(0, current.max(0));
    let change = match policy.adjustment_type {
        AdjustmentType::ExactCapacity => {
            return Some(StepProposal {
                capacity: step.adjustment as i32,
                step: index,
                change: step.adjustment as i32 - current,
            });
        }
        AdjustmentType::ChangeInCapacity => step.adjustment as i32,
        AdjustmentType::PercentChangeInCapacity => {
            let base = if step.adjustment > 0.0 { current - warming } else { current };
            let raw = f64::from(base) * step.adjustment / 100.0;
            let mut change = if raw > 1.0 {
                raw.floor()
            } else if raw > 0.0 {
                1.0
            } else if (-1.0..0.0).contains(&raw) {
                -1.0
            } else {
                raw.ceil()
            } as i32;
            if let Some(magnitude) = policy.min_adjustment_magnitude
                && change != 0
                && change.abs() < magnitude
            {
                change = magnitude * change.signum();
            }
            change
        }
    };
    let capacity = if change > 0 {
        // Capacity still warming from earlier scale-outs counts toward this step.
        (current - warming + change).max(current)
    } else {
        current + change
    };
    Some(StepProposal { capacity: capacity.max(0), step: index, change: capacity.max(0) - current })
}

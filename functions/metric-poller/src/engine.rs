//! The scaling decision: pure arithmetic over plain data.
//!
//! Target tracking as Kubernetes' HPA replica calculator computes it
//! (`pkg/controller/podautoscaler/replica_calculator.go`): for a per-instance average
//! (CPU) `desired = ceil(current × value / target)`; for a total spread over instances
//! (requests, queue depth) `desired = ceil(value / target)`. The result is clamped to the
//! group's bounds.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The metric is a per-instance average (e.g. CPUUtilization) to hold at this value.
    Average(f64),
    /// The metric is a total (e.g. RequestCount) that each instance should carry this much of.
    PerInstance(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bounds {
    pub min: i32,
    pub max: i32,
}

impl Bounds {
    pub fn clamp(self, n: i32) -> i32 {
        n.clamp(self.min, self.max.max(self.min))
    }
}

/// The decision and how it was reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub desired: i32,
    /// value / (target × current): above 1 means more capacity is needed.
    pub ratio: Option<f64>,
    /// The capacity the metric asks for, before clamping.
    pub proposal: Option<i32>,
    pub reason: String,
}

/// `ceil` that ignores floating-point noise: 3 × 50 / 30 is 5.000000000000001 in f64 and
/// must give 5, not 6.
pub fn ceil_guarded(x: f64) -> f64 {
    const EPSILON: f64 = 1e-9;
    if !x.is_finite() {
        return x; // inf - EPSILON * inf would be NaN
    }
    (x - EPSILON * x.abs().max(1.0)).ceil()
}

fn to_capacity(x: f64) -> i32 {
    // Saturating: an absurd metric value (even an overflow to infinity) asks for the
    // maximum; it never wraps or turns into zero.
    let x = ceil_guarded(x);
    if x.is_nan() { 0 } else { x.clamp(0.0, i32::MAX as f64) as i32 }
}

/// Decides the desired capacity of a group now at `current` instances.
/// Missing or non-finite data holds the current capacity (never scales in on no data).
pub fn decide(current: i32, value: Option<f64>, target: Target, bounds: Bounds) -> Decision {
    let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
        let desired = bounds.clamp(current);
        return Decision {
            desired,
            ratio: None,
            proposal: None,
            reason: "no valid metric data: hold".into(),
        };
    };
    let (proposal, ratio) = match target {
        Target::Average(t) if current > 0 => (to_capacity(current as f64 * value / t), Some(value / t)),
        Target::PerInstance(t) if current > 0 => (to_capacity(value / t), Some(value / (t * current as f64))),
        // From zero instances there is no ratio: size for the value directly.
        Target::Average(t) | Target::PerInstance(t) => (to_capacity(value / t), None),
    };
    let desired = bounds.clamp(proposal);
    let reason = if desired == proposal {
        format!("metric {value} asks for {proposal}")
    } else {
        format!("metric {value} asks for {proposal}, clamped to [{}, {}]", bounds.min, bounds.max)
    };
    Decision { desired, ratio, proposal: Some(proposal), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Bounds = Bounds { min: 0, max: 1000 };

    #[test]
    fn average_target_scales_by_the_ratio() {
        assert_eq!(decide(4, Some(75.0), Target::Average(50.0), WIDE).desired, 6);
        assert_eq!(decide(4, Some(25.0), Target::Average(50.0), WIDE).desired, 2);
        assert_eq!(decide(4, Some(50.0), Target::Average(50.0), WIDE).desired, 4);
    }

    #[test]
    fn floating_noise_does_not_add_an_instance() {
        assert_eq!(decide(3, Some(50.0), Target::Average(30.0), WIDE).desired, 5);
        assert_eq!(decide(3, Some(0.3 * 3.0), Target::PerInstance(0.3), WIDE).desired, 3);
    }

    #[test]
    fn per_instance_target_divides_the_total() {
        let decision = decide(2, Some(4500.0), Target::PerInstance(1000.0), WIDE);
        assert_eq!(decision.desired, 5);
        assert_eq!(decision.ratio, Some(2.25));
    }

    #[test]
    fn from_zero_sizes_for_the_value() {
        assert_eq!(decide(0, Some(120.0), Target::Average(50.0), WIDE).desired, 3);
        assert_eq!(decide(0, Some(0.0), Target::PerInstance(10.0), WIDE).desired, 0);
    }

    #[test]
    fn clamps_to_bounds() {
        let bounds = Bounds { min: 2, max: 5 };
        let decision = decide(4, Some(500.0), Target::Average(50.0), bounds);
        assert_eq!((decision.desired, decision.proposal), (5, Some(40)));
        assert!(decision.reason.contains("clamped"));
        assert_eq!(decide(4, Some(1.0), Target::Average(50.0), bounds).desired, 2);
        assert_eq!(decide(4, Some(f64::MAX), Target::Average(1e-300), bounds).desired, 5);
    }

    #[test]
    fn missing_or_invalid_data_holds() {
        for value in [None, Some(f64::NAN), Some(f64::INFINITY), Some(-1.0)] {
            let decision = decide(4, value, Target::Average(50.0), WIDE);
            assert_eq!((decision.desired, decision.proposal), (4, None), "{value:?}");
        }
    }
}

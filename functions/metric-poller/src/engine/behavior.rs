//! Kubernetes HPA's scaling behavior: stabilization windows and rate policies
//! (`pkg/controller/podautoscaler/horizontal.go`: `stabilizeRecommendationWithBehaviors`,
//! `convertDesiredReplicasWithBehaviorRate`, `calculateScaleUpLimitWithScalingRules`,
//! `calculateScaleDownLimitWithBehaviors`).

use serde::Serialize;

use crate::policy::{Behavior, RateKind, ScalingRules, Select};

use super::{ExternalChange, Recommendation, ScaleEvent};

/// What the stabilization windows did to a recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stabilized {
    pub capacity: i32,
    /// Which window held the recommendation back, if any.
    pub held_by: Option<Direction>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ScaleUp,
    ScaleDown,
}

/// A scale-down uses the highest recommendation within the down window, a scale-up the
/// lowest within the up window; the result never crosses the current capacity the wrong
/// way. `history` holds earlier recommendations (the current one is `recommendation`);
/// an external change inside the down window counts there as a recommendation of its new
/// capacity, so a scale-down does not undo it early.
pub fn stabilize(
    current: i32,
    recommendation: i32,
    history: &[Recommendation],
    external: &[ExternalChange],
    behavior: &Behavior,
    now: i64,
) -> Stabilized {
    let up_cutoff = now - behavior.scale_up.stabilization_seconds;
    let down_cutoff = now - behavior.scale_down.stabilization_seconds;
    let mut up = recommendation;
    let mut down = recommendation;
    for r in history {
        if r.time > up_cutoff {
            up = up.min(r.capacity);
        }
        if r.time > down_cutoff {
            down = down.max(r.capacity);
        }
    }
    for e in external.iter().filter(|e| e.time > down_cutoff) {
        down = down.max(e.to);
    }
    let mut capacity = current;
    if capacity < up {
        capacity = up;
    }
    if capacity > down {
        capacity = down;
    }
    let held_by = if capacity == recommendation {
        None
    } else if recommendation > current {
        Some(Direction::ScaleUp)
    } else {
        Some(Direction::ScaleDown)
    };
    Stabilized { capacity, held_by }
}

/// Instances added (positive events) and removed (negative) within the last `period`.
fn changes_within(events: &[ScaleEvent], period: i64, now: i64) -> (i32, i32) {
    let cutoff = now - period;
    events.iter().filter(|e| e.time > cutoff).fold((0, 0), |(added, removed), e| {
        if e.change > 0 { (added + e.change, removed) } else { (added, removed - e.change) }
    })
}

/// The most instances scale-up rules allow now (HPA's `calculateScaleUpLimitWithScalingRules`).
pub fn scale_up_limit(current: i32, events: &[ScaleEvent], rules: &ScalingRules, now: i64) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MAX, i32::min),
        Select::Max => (i32::MIN, i32::max),
    };
    for policy in &rules.policies {
        let (added, removed) = changes_within(events, policy.period_seconds, now);
        let period_start = current - added + removed;
        let proposed = match policy.kind {
            RateKind::Instances => period_start.saturating_add(policy.value),
            // Rounded up so that a small group can always grow.
            RateKind::Percent => (f64::from(period_start) * (1.0 + f64::from(policy.value) / 100.0))
                .ceil()
                .min(i32::MAX as f64) as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// The fewest instances scale-down rules allow now (HPA's `calculateScaleDownLimitWithBehaviors`).
pub fn scale_down_limit(current: i32, events: &[ScaleEvent], rules: &ScalingRules, now: i64) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MIN, i32::max),
        Select::Max => (i32::MAX, i32::min),
    };
    for policy in &rules.policies {
        let (added, removed) = changes_within(events, policy.period_seconds, now);
        let period_start = current - added + removed;
        let proposed = match policy.kind {
            RateKind::Instances => period_start - policy.value,
            // Truncated, as HPA's int32 conversion does: floor for these non-negative values.
            RateKind::Percent => {
                (f64::from(period_start) * (1.0 - f64::from(policy.value) / 100.0)).floor() as i32
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// The rate limit applied to a move from `current` to `desired`, if it bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimited {
    pub direction: Direction,
    pub limit: i32,
}

/// HPA's `convertDesiredReplicasWithBehaviorRate`, without the min/max clamp (applied after).
pub fn limit_rate(
    current: i32,
    desired: i32,
    events: &[ScaleEvent],
    behavior: &Behavior,
    now: i64,
) -> (i32, Option<RateLimited>) {
    if desired > current {
        // Never below current: past events may make the limit lag until they age out.
        let limit = scale_up_limit(current, events, &behavior.scale_up, now).max(current);
        if desired > limit {
            return (limit, Some(RateLimited { direction: Direction::ScaleUp, limit }));
        }
    } else if desired < current {
        let limit = scale_down_limit(current, events, &behavior.scale_down, now).min(current);
        if desired < limit {
            return (limit, Some(RateLimited { direction: Direction::ScaleDown, limit }));
        }
    }
    (desired, None)
}

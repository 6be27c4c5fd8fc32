//! The scaling decision: pure arithmetic over plain data, time passed in.
//!
//! [`decide`] runs, for one group and one tick:
//! 1. each metric's proposal ([`proposal`]: HPA target tracking or AWS step scaling);
//! 2. their combination: the largest proposal wins; a scale-in needs every metric valid
//!    (HPA); a group whose data has been missing `failure_threshold` ticks in a row moves
//!    to its fallback capacity (KEDA) or holds; nothing scales in while instances warm up;
//! 3. HPA's stabilization windows and rate policies ([`behavior`]); a change someone else
//!    made to the group (an [`ExternalChange`] in the history) stands for the down window;
//! 4. the clamp to `[max(policy min, group min), min(policy max, group max)]`.
//!
//! It returns the decision, a structured explanation of every step, and the updated
//! history (recommendations inside the longest window). After acting on a decision, the
//! caller records the change with [`History::record_scaling`].

pub mod behavior;
pub mod proposal;
pub mod warmup;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::policy::Target;
use crate::policy::{GroupPolicy, MetricRule, PredictiveMode};
use behavior::{Direction, RateLimited};

/// What the poller observed of a group at one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The group's desired capacity.
    pub current: i32,
    /// Instances launched within the warmup, or still pending.
    pub warming: i32,
    /// The Auto Scaling group's own bounds.
    pub group_min: i32,
    pub group_max: i32,
    /// Each metric's settled value by id; absent or `None` means no valid data this tick.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// What else is known of each metric: scale-out-only estimates and forecasts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, Signals>,
}

/// A metric's scale-out-only inputs: none of them can ever cause a scale-in.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Signals {
    /// From a newer, possibly incomplete period ([`crate::reading`]).
    pub scale_out_estimate: Option<f64>,
    /// Demand (as `seasonal_demand`) a boot from now, from the recent trend
    /// ([`crate::forecast::demand_trend`]).
    pub trend: Option<f64>,
    /// The seasonal profile's peak demand (metric × instances for an average, the total
    /// otherwise) until now + lag + boot ([`crate::forecast::Profile`]).
    pub seasonal_demand: Option<f64>,
    /// Which period the settled value came from, in words.
    pub reading: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Seconds (any epoch, as long as it is the same as `now`'s).
    pub time: i64,
    pub capacity: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    pub time: i64,
    /// Instances added (positive) or removed (negative).
    pub change: i32,
}

/// A change of desired capacity the poller did not make (an operator's, another tool's),
/// seen as a difference from the capacity it last set or observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalChange {
    /// When the poller first saw it.
    pub time: i64,
    pub from: i32,
    pub to: i32,
}

/// What the engine remembers of a group between ticks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub recommendations: Vec<Recommendation>,
    /// The poller's own changes: what rate limits count.
    pub scale_events: Vec<ScaleEvent>,
    pub consecutive_failures: u32,
    /// When the current run of ticks with missing data began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<i64>,
    /// External changes within the scale-down window. They hold scale-downs like a
    /// recommendation of their new capacity would, so an operator's scale-out is not undone
    /// before the window passes; rate limits do not count them (those limit the poller's
    /// own moves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_changes: Vec<ExternalChange>,
}

impl History {
    /// Records a capacity change the caller made.
    pub fn record_scaling(&mut self, now: i64, from: i32, to: i32) {
        if from != to {
            self.scale_events.push(ScaleEvent { time: now, change: to - from });
        }
    }

    /// Records a capacity change someone else made, seen at `now`.
    pub fn record_external(&mut self, now: i64, from: i32, to: i32) {
        if from != to {
            self.external_changes.push(ExternalChange { time: now, from, to });
        }
    }

    /// Drops what no window or rate period of `policy` can see any more.
    fn prune(&mut self, policy: &GroupPolicy, now: i64) {
        let behavior = &policy.behavior;
        let window = behavior.scale_up.stabilization_seconds.max(behavior.scale_down.stabilization_seconds);
        self.recommendations.retain(|r| r.time > now - window);
        let period = behavior
            .scale_up
            .policies
            .iter()
            .chain(&behavior.scale_down.policies)
            .map(|p| p.period_seconds)
            .chain([warmup::seconds(policy, None)])
            .max()
            .unwrap_or(0);
        self.scale_events.retain(|e| e.time > now - period);
        let down_window = behavior.scale_down.stabilization_seconds;
        self.external_changes.retain(|e| e.time > now - down_window);
    }
}

/// One metric's part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricExplanation {
    pub id: String,
    pub value: Option<f64>,
    pub ratio: Option<f64>,
    /// The capacity this metric asks for; `None` without valid data or outside every step.
    pub proposal: Option<i32>,
    pub note: String,
    /// Which period the value came from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reading: String,
    /// What a newer, possibly incomplete period suggests (scale-out only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_out_estimate: Option<f64>,
    /// Demand a boot from now, from the recent trend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_forecast: Option<f64>,
    /// The seasonal profile's peak demand until a boot from now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seasonal_forecast: Option<f64>,
}

/// Why a decision came out as it did, step by step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub metrics: Vec<MetricExplanation>,
    /// The combined recommendation before stabilization.
    pub recommendation: i32,
    pub stabilized: i32,
    pub stabilized_by: Option<Direction>,
    /// The latest external change inside the scale-down window, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_change: Option<ExternalChange>,
    pub rate_limited: Option<RateLimited>,
    /// The bounds the result was clamped to.
    pub bounds: [i32; 2],
    pub fallback: bool,
    /// Whether this tick's recommendation entered the history (only with every metric's data).
    pub recorded: bool,
    pub desired: i32,
    /// The same, in one line for people.
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub desired: i32,
    pub explanation: Explanation,
    /// The history to keep for the next tick.
    #[serde(skip)]
    pub history: History,
}

/// `[max(policy min, group min), min(policy max, group max)]`. Where the two contradict
/// (a policy range outside the group's), the group's own bounds win: the result is never
/// outside them.
pub fn bounds(policy: &GroupPolicy, group_min: i32, group_max: i32) -> [i32; 2] {
    let group_max = group_max.max(group_min);
    let hi = policy.max_capacity.map_or(group_max, |m| m.min(group_max)).max(group_min);
    let lo = policy.min_capacity.map_or(group_min, |m| m.max(group_min)).min(hi);
    [lo, hi]
}

/// A utilization at or above this fraction of its `saturation` is capped: the demand
/// behind it is unknown, only known to be at least that.
pub const SATURATED_AT: f64 = 0.99;
/// How much more than the capped value a saturated metric is taken to mean. 1.5 covers a
/// demand up to 1.5× the cap in one move (a step ×3 on a group at a 50 % target); more
/// would overshoot every load that merely touches the cap. Rate policies still apply.
pub const SATURATION_FACTOR: f64 = 1.5;

pub fn decide(policy: &GroupPolicy, observation: &Observation, history: &History, now: i64) -> Decision {
    let current = observation.current;
    let [lo, hi] = bounds(policy, observation.group_min, observation.group_max);
    let mut history = history.clone();
    let mut notes: Vec<String> = Vec::new();
    let forecasts_act = policy.predictive.mode == PredictiveMode::ForecastAndScale;
    let value_of = |id: &str| observation.metrics.get(id).copied().flatten().filter(|v| v.is_finite());
    // A metric that is never capped tells the demand itself: saturation is then not guessed.
    let uncapped_signal = policy.metrics.iter().any(|m| m.saturation.is_none() && value_of(&m.id).is_some());

    // 1. Each metric's proposal.
    let mut explanations = Vec::with_capacity(policy.metrics.len());
    let mut proposals = Vec::with_capacity(policy.metrics.len());
    let mut missing = 0;
    for metric in &policy.metrics {
        let value = value_of(&metric.id);
        let signals = observation.signals.get(&metric.id).cloned().unwrap_or_default();
        let mut explanation = MetricExplanation {
            id: metric.id.clone(),
            value,
            ratio: None,
            proposal: None,
            note: String::new(),
            reading: signals.reading.clone(),
            scale_out_estimate: signals.scale_out_estimate,
            trend_forecast: signals.trend,
            seasonal_forecast: signals.seasonal_demand,
        };
        let mut proposal = None;
        match value {
            None => {
                missing += 1;
                explanation.note = "no valid data".into();
            }
            Some(value) => match &metric.rule {
                MetricRule::Target(target) => {
                    let saturated = !uncapped_signal
                        && matches!(target, Target::Average(_))
                        && metric.saturation.is_some_and(|cap| value >= cap * SATURATED_AT);
                    let effective = if saturated { value * SATURATION_FACTOR } else { value };
                    let p = proposal::target_tracking(
                        current,
                        observation.warming,
                        effective,
                        *target,
                        policy.tolerance,
                    );
                    explanation.ratio = p.ratio;
                    explanation.note = match (saturated, p.within_tolerance) {
                        (true, _) => format!("saturated: read as ×{SATURATION_FACTOR}"),
                        (false, true) => "within tolerance".into(),
                        (false, false) => "target tracking".into(),
                    };
                    proposal = Some(p.capacity);
                }
                MetricRule::StepScaling(steps) => {
                    match proposal::step_scaling(current, observation.warming, value, steps) {
                        Some(p) => {
                            explanation.note = format!("step {} ({:+})", p.step, p.change);
                            proposal = Some(p.capacity);
                        }
                        None => {
                            explanation.note = "in no step: no change".into();
                            proposal = Some(current);
                        }
                    }
                }
            },
        }
        // Scale-out only: a newer, possibly incomplete period, and forecasts. Each may raise
        // the proposal above both the settled value's and the current capacity, never lower it.
        if let MetricRule::Target(target) = &metric.rule {
            let mut candidates: Vec<(i32, &str)> = Vec::new();
            let tracked = |v: f64| {
                proposal::target_tracking(current, observation.warming, v, *target, policy.tolerance).capacity
            };
            if let Some(estimate) = signals.scale_out_estimate.filter(|v| v.is_finite()) {
                candidates.push((tracked(estimate), "newer period"));
            }
            if forecasts_act {
                // Forecasts are of demand: the instances they need at the target.
                let t = match target {
                    Target::Average(t) | Target::PerInstance(t) => *t,
                };
                let needed = |demand: f64| proposal::to_capacity(demand / t);
                if let Some(demand) = signals.trend.filter(|v| v.is_finite() && *v >= 0.0) {
                    candidates.push((needed(demand), "trend forecast"));
                }
                if let Some(demand) = signals.seasonal_demand.filter(|v| v.is_finite() && *v >= 0.0) {
                    candidates.push((needed(demand), "seasonal forecast"));
                }
            }
            let floor = proposal.unwrap_or(current).max(current);
            if let Some((capacity, source)) =
                candidates.into_iter().filter(|(c, _)| *c > floor).max_by_key(|(c, _)| *c)
            {
                explanation.note = format!("{} ({source} asks {capacity}, scale-out only)", explanation.note)
                    .trim_start()
                    .to_owned();
                proposal = Some(capacity);
            }
        }
        explanation.proposal = proposal;
        proposals.extend(proposal);
        explanations.push(explanation);
    }

    // 2. Combination and the missing-data and warmup rules.
    history.consecutive_failures = if missing > 0 { history.consecutive_failures + 1 } else { 0 };
    if missing == 0 {
        history.missing_since = None;
    } else if history.missing_since.is_none() {
        history.missing_since = Some(now);
    }
    let down_window = policy.behavior.scale_down.stabilization_seconds;
    let fallback = policy
        .on_missing_data
        .fallback_capacity
        .filter(|_| missing > 0 && history.consecutive_failures >= policy.on_missing_data.failure_threshold)
        .map(|f| f.clamp(lo, hi));
    let proposed = proposals.iter().copied().max();
    let mut recommendation = proposed.unwrap_or(current);
    if let Some(fallback) = fallback {
        let since = history.missing_since.unwrap_or(now);
        // A fallback below the current capacity waits until data has been missing for the
        // whole scale-down window: a gap in the data never swings the group.
        let waiting = fallback < current && now - since < down_window;
        recommendation = match () {
            _ if fallback >= current => recommendation.max(fallback),
            _ if waiting => recommendation.max(current),
            _ => proposed.map_or(fallback, |p| p.max(fallback)),
        };
        let wait =
            if waiting { format!(" once data has been missing {down_window} s") } else { String::new() };
        notes.push(format!(
            "data missing {} ticks in a row: fallback to {fallback}{wait}",
            history.consecutive_failures
        ));
    } else if missing > 0 && recommendation < current {
        recommendation = current;
        notes.push(format!("{missing} metric(s) without data: no scale-in"));
    } else if missing > 0 && proposals.is_empty() {
        notes.push("no metric has data: hold".into());
    }
    // What the load calls for, before the warmup hold: what the history records, so that
    // the scale-down window starts from the load and not from the hold (else warming would
    // add a whole window to every scale-in after a scale-out).
    let load_recommendation = recommendation;
    if observation.warming > 0 && recommendation < current {
        recommendation = current;
        notes.push(format!("{} instance(s) warming: no scale-in", observation.warming));
    }

    // 3. Stabilization and rate limits. A tick records its recommendation only when every
    // metric had settled data: a tick without it says nothing of the load (HPA records
    // nothing when metrics fail), so it must not hold the scale-down window either. A cold
    // start is seeded with the current capacity so that it never scales in at once.
    let recorded = missing == 0;
    if recorded && history.recommendations.is_empty() {
        history.recommendations.push(Recommendation { time: now, capacity: current });
    }
    let stabilized = behavior::stabilize(
        current,
        recommendation,
        &history.recommendations,
        &history.external_changes,
        &policy.behavior,
        now,
    );
    if recorded {
        history.recommendations.push(Recommendation { time: now, capacity: load_recommendation });
    }
    let (limited, rate_limited) =
        behavior::limit_rate(current, stabilized.capacity, &history.scale_events, &policy.behavior, now);

    // 4. Bounds.
    let desired = limited.clamp(lo, hi);
    history.prune(policy, now);
    let external_change = history.external_changes.iter().copied().max_by_key(|e| e.time);
    let mut decision = finish(
        explanations,
        recommendation,
        stabilized.capacity,
        stabilized.held_by,
        rate_limited,
        [lo, hi],
        fallback.is_some(),
        notes,
        history,
    );
    decision.explanation.recorded = recorded;
    decision.with_desired(desired).with_external_change(external_change, down_window)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    metrics: Vec<MetricExplanation>,
    recommendation: i32,
    stabilized: i32,
    stabilized_by: Option<Direction>,
    rate_limited: Option<RateLimited>,
    bounds: [i32; 2],
    fallback: bool,
    notes: Vec<String>,
    history: History,
) -> Decision {
    let explanation = Explanation {
        metrics,
        recommendation,
        stabilized,
        stabilized_by,
        external_change: None,
        rate_limited,
        bounds,
        fallback,
        recorded: false,
        desired: stabilized,
        summary: notes.join("; "),
    };
    Decision { desired: stabilized, explanation, history }
}

impl Decision {
    fn with_desired(mut self, desired: i32) -> Self {
        self.desired = desired;
        self.explanation.desired = desired;
        self.explanation.summary = summarize(&self.explanation);
        self
    }

    /// Names the external change in the explanation, and whether it is what holds the group.
    fn with_external_change(mut self, change: Option<ExternalChange>, down_window: i64) -> Self {
        let Some(change) = change else { return self };
        let e = &mut self.explanation;
        e.external_change = Some(change);
        let holds = e.stabilized_by == Some(Direction::ScaleDown) && e.stabilized == change.to;
        let note = if holds {
            format!(
                "external change {} -> {} at {} stands until {}",
                change.from,
                change.to,
                change.time,
                change.time + down_window
            )
        } else {
            format!("external change {} -> {} at {}", change.from, change.to, change.time)
        };
        e.summary = format!("{note}; {}", e.summary);
        self
    }
}

fn summarize(e: &Explanation) -> String {
    let mut parts: Vec<String> = e
        .metrics
        .iter()
        .map(|m| match (m.value, m.proposal) {
            (Some(v), Some(p)) => match m.ratio {
                Some(r) => format!("{}={v} (ratio {r:.2}, {}) -> {p}", m.id, m.note),
                None => format!("{}={v} ({}) -> {p}", m.id, m.note),
            },
            _ => format!("{}: {}", m.id, m.note),
        })
        .collect();
    if !e.summary.is_empty() {
        parts.push(e.summary.clone());
    }
    if let Some(direction) = e.stabilized_by {
        let window = match direction {
            Direction::ScaleUp => "scale-up",
            Direction::ScaleDown => "scale-down",
        };
        parts.push(format!("{window} window holds {} -> {}", e.recommendation, e.stabilized));
    }
    if let Some(limit) = e.rate_limited {
        parts.push(format!("rate limit {}", limit.limit));
    }
    if e.desired != e.stabilized && e.rate_limited.is_none_or(|l| l.limit != e.desired) {
        parts.push(format!("clamped to [{}, {}]", e.bounds[0], e.bounds[1]));
    }
    parts.push(format!("desired {}", e.desired));
    parts.join("; ")
}

#[cfg(test)]
mod tests;

//! One group at one tick, from the datapoints read to the decision: the single path the
//! poller ([`crate::Poller::tick`]) and the simulator ([`crate::simulate`]) both take.
//!
//! It measures boot time from the group's lifecycle states, derives the warmup and the
//! warming instances, reads each metric's series completeness-aware ([`crate::reading`]),
//! forecasts demand ([`crate::forecast`]) and asks the engine. The only state it changes
//! is the group's, which it owns for the tick: the history is written here alone.

use std::collections::BTreeMap;

use crate::GroupInfo;
use crate::engine::{self, Decision, Observation, Signals, warmup};
use crate::forecast;
use crate::policy::{GroupPolicy, PredictiveMode};
use crate::read_schedule::Series;
use crate::reading::{self, Aggregation, Reading};
use crate::state::GroupState;

/// How long recent in-service counts are kept: as far back as a trend looks (10 periods
/// of at most a few minutes).
const IN_SERVICE_LOG_SECONDS: i64 = 1800;

#[derive(Clone, Debug)]
pub struct Evaluation {
    pub observation: Observation,
    pub decision: Decision,
    pub readings: BTreeMap<String, Reading>,
    /// The warmup in force (configured, or derived).
    pub warmup_seconds: i64,
}

/// Decides `info`'s group at `now` from `series` (by metric id; each as of its read's
/// end), updating `state`'s history.
pub fn evaluate(
    policy: &GroupPolicy,
    info: &GroupInfo,
    series: &BTreeMap<String, Series>,
    state: &mut GroupState,
    now: i64,
) -> Evaluation {
    let last_scale_out = state.history.scale_events.iter().filter(|e| e.change > 0).map(|e| e.time).max();
    state.boot.observe(info.pending_instances, last_scale_out, now);
    let boot = state.boot.measured_seconds.unwrap_or(warmup::ASSUMED_BOOT_SECONDS);
    let warmup_seconds = warmup::seconds(policy, state.boot.measured_seconds);
    let warming = warmup::warming(
        info.pending_instances,
        &state.history.scale_events,
        warmup_seconds,
        now,
        info.desired_capacity,
    );
    if policy.predictive.mode == PredictiveMode::Off {
        state.in_service.clear();
    } else {
        state.record_in_service(
            now,
            (info.desired_capacity - info.pending_instances).max(0),
            IN_SERVICE_LOG_SECONDS,
        );
    }

    let mut readings = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    let mut signals = BTreeMap::new();
    for metric in &policy.metrics {
        let period = i64::from(metric.query.period_seconds().max(1));
        let reading = match series.get(&metric.id) {
            Some(read) => reading::read(&read.points, period, Aggregation::of(&metric.query), read.read_end),
            None => reading::read(&[], period, Aggregation::of(&metric.query), now),
        };
        let mut signal = Signals {
            scale_out_estimate: reading.scale_out_estimate,
            reading: reading.note.clone(),
            ..Signals::default()
        };
        if policy.predictive.mode != PredictiveMode::Off {
            // Capacity asked for now serves after a boot: forecast demand until then.
            let demand = forecast::demand_series(metric, &reading.recent, period, |t| state.in_service_at(t));
            signal.trend = forecast::demand_trend(&demand, period, now + boot);
            signal.seasonal_demand = state.profiles.get(&metric.id).and_then(|p| p.peak(now, now + boot));
        }
        metrics.insert(metric.id.clone(), reading.value);
        signals.insert(metric.id.clone(), signal);
        readings.insert(metric.id.clone(), reading);
    }
    let observation = Observation {
        current: info.desired_capacity,
        warming,
        group_min: info.min_size,
        group_max: info.max_size,
        metrics,
        signals,
    };
    let decision = engine::decide(policy, &observation, &state.history, now);
    state.history = decision.history.clone();
    Evaluation { observation, decision, readings, warmup_seconds }
}

/// The metrics of `policy` whose seasonal profile should be (re)built at `now`.
pub fn profiles_due<'p>(
    policy: &'p GroupPolicy,
    state: &GroupState,
    now: i64,
) -> Vec<&'p crate::policy::MetricPolicy> {
    if policy.predictive.mode == PredictiveMode::Off || policy.predictive.history_days == 0 {
        return Vec::new();
    }
    policy
        .metrics
        .iter()
        .filter(|m| forecast::history_query(m).is_some())
        .filter(|m| state.profiles.get(&m.id).is_none_or(|p| p.stale(now)))
        .collect()
}

//! An emulation of EC2 Auto Scaling target tracking, on the same simulated CloudWatch data
//! the engine reads. Each rule, and where it comes from:
//!
//! - **Alarms.** Target tracking creates two CloudWatch alarms: `AlarmHigh` on the metric
//!   above the target for 3 of 3 datapoints, `AlarmLow` below 90 % of it for 15 of 15
//!   (what the alarms it creates show in the CloudWatch console; "Target tracking scaling
//!   policies for Amazon EC2 Auto Scaling", user guide). An alarm is evaluated once per
//!   period, on the datapoints readable then: a period not yet published is not there, so
//!   publication lag delays the alarm as it does the engine. While an alarm stays in
//!   ALARM, the policy is invoked again at each evaluation. With a high-resolution metric
//!   the same datapoint counts are taken at its period (the emulation's assumption, in
//!   AWS's favour: 3 × 10 s).
//! - **New capacity from the ratio**: `ceil(instances counted × metric / target)` ("adds or
//!   removes capacity as required to keep the metric at, or close to, the target"). AWS
//!   does not publish its formula; the proportional one is what it converges to.
//! - **Instance warmup** ("Set the default instance warmup for an Auto Scaling group"):
//!   during a scale-out, instances still warming count toward the group's capacity, so
//!   repeated breaches asking for similar capacity launch once; the metric aggregates only
//!   instances out of warmup (here: in service for `warmup` seconds — booting instances
//!   serve nothing, so they cannot be in the metric either).
//! - **Conservative scale-in**: no scale-in while any instance is warming (same page); the
//!   low alarm's 15 minutes below 90 % of target. The scale-in itself is proportional, in
//!   AWS's favour (fewer instance-hours than a gradual one).
//! - Capacity is set at once, within the group's bounds; no cooldown (target tracking
//!   uses warmup instead).

use super::cloudwatch::{SimMetric, Statistic};
use super::world::Group;
use crate::engine::proposal::to_capacity;
use crate::policy::{GroupPolicy, MetricRule, Query, Target};

const HIGH_DATAPOINTS: usize = 3;
const LOW_DATAPOINTS: usize = 15;
const LOW_THRESHOLD: f64 = 0.9;

#[derive(Clone, Debug)]
pub struct AwsTargetTracking {
    pub metric_id: String,
    statistic: Statistic,
    period: i64,
    target: Target,
    /// Seconds after InService an instance is warming.
    warmup: i64,
    /// The newest period evaluated.
    evaluated: Option<i64>,
}

impl AwsTargetTracking {
    /// Tracks the policy's first target-tracked metric; `None` if it has none.
    pub fn from_policy(policy: &GroupPolicy, warmup: i64) -> Option<Self> {
        let metric = policy.metrics.iter().find(|m| matches!(m.rule, MetricRule::Target(_)))?;
        let MetricRule::Target(target) = metric.rule else { return None };
        let statistic = match &metric.query {
            Query::Metric(m) => Statistic::of(&m.stat),
            Query::Expression { .. } => Statistic::Average,
        };
        Some(Self {
            metric_id: metric.id.clone(),
            statistic,
            period: i64::from(metric.query.period_seconds().max(1)),
            target,
            warmup,
            evaluated: None,
        })
    }

    /// The capacity to set at `now`, and why; `None` leaves the group as it is.
    pub fn tick(&mut self, now: i64, group: &Group, metric: &SimMetric) -> Option<(i32, String)> {
        let start = now - (LOW_DATAPOINTS as i64 + 10) * self.period;
        let points: Vec<_> = metric
            .datapoints(self.statistic, self.period, start, now, now)
            .into_iter()
            .filter(|p| p.time + self.period <= now)
            .collect();
        let newest = points.last()?;
        if self.evaluated == Some(newest.time) {
            return None;
        }
        self.evaluated = Some(newest.time);
        let in_service = group.in_service(now);
        let per_instance = |v: f64| match self.target {
            Target::Average(_) => v,
            // A per-instance target tracks the metric per instance in service
            // (ALBRequestCountPerTarget).
            Target::PerInstance(_) => v / f64::from(in_service.max(1)),
        };
        let target = match self.target {
            Target::Average(t) | Target::PerInstance(t) => t,
        };
        // The newest `n` datapoints, consecutive (a missing period is not breaching).
        let last = |n: usize| -> Option<Vec<f64>> {
            let tail = &points[points.len().checked_sub(n)?..];
            let consecutive = tail.windows(2).all(|w| w[1].time - w[0].time == self.period);
            consecutive.then(|| tail.iter().map(|p| per_instance(p.value)).collect())
        };
        let value = per_instance(newest.value);
        let current = group.desired;
        let warming = group.warming(now, self.warmup);
        if last(HIGH_DATAPOINTS).is_some_and(|v| v.iter().all(|&x| x > target)) {
            let counted = (current - warming).max(1);
            let wanted = to_capacity(f64::from(counted) * value / target).min(group.max);
            return (wanted > current).then(|| {
                (wanted, format!("AlarmHigh: {HIGH_DATAPOINTS} datapoints > {target}; {counted} counted × {value:.1}/{target} -> {wanted}"))
            });
        }
        if warming == 0 && last(LOW_DATAPOINTS).is_some_and(|v| v.iter().all(|&x| x < target * LOW_THRESHOLD))
        {
            let wanted = to_capacity(f64::from(current) * value / target).max(group.min).max(1);
            return (wanted < current).then(|| {
                (wanted, format!("AlarmLow: {LOW_DATAPOINTS} datapoints < {:.1}; {current} × {value:.1}/{target} -> {wanted}", target * LOW_THRESHOLD))
            });
        }
        None
    }
}

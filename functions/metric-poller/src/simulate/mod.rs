//! Backtests through the metric pipeline as the poller sees it.
//!
//! A trace gives the load (closed loop: the metric follows from the load over the
//! instances in service) or the metric values themselves (open loop). Samples go into a
//! simulated CloudWatch ([`cloudwatch`]) that aggregates them into each query's period and
//! publishes each period after a lag; instances serve a boot time after launch and are
//! reported `Pending` until then ([`world`]). The engine runs as the poller does: its own
//! [`crate::Poller::tick`] over the simulated group and metrics, so datapoint choice,
//! warmup, forecasts and decisions are the code that runs in Lambda. The same data can
//! drive an emulation of AWS target tracking ([`aws_target_tracking`]) for comparison.
//!
//! Scores are computed on demand, not on the (capped) metric: seconds the demand's
//! utilization of the instances in service was above target × (1 + margin).

pub mod aws_target_tracking;
pub mod cloudwatch;
pub mod trace;
pub mod traces;
pub mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use trace::{Trace, TraceError, TraceRow, parse_trace};

use crate::engine::Explanation;
use crate::policy::{GroupPolicy, MetricRule, PolicyDocument, Selector, Target};
use crate::policy_source::StaticPolicy;
use crate::state::MemoryState;
use crate::tick::{Mode, Poller};
use crate::{PollerConfig, engine};
use aws_target_tracking::AwsTargetTracking;
use cloudwatch::{Publication, SimMetric};
use world::{Group, World};

/// The simulated world and pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulationConfig {
    pub initial_capacity: i32,
    /// The Auto Scaling group's own bounds.
    pub group_min: i32,
    pub group_max: i32,
    /// Closed loop: the `load` one instance carries at 100 % utilization.
    pub capacity_per_instance: Option<f64>,
    /// Launch to in service, drawn per instance from this range.
    pub boot_seconds: (i64, i64),
    pub publication: Publication,
    /// `METRICS_END_OFFSET_SECONDS`.
    pub end_offset: i64,
    /// The poller's `TICK_INTERVAL_SECONDS`.
    pub tick_seconds: i64,
    /// Demand utilization above target × (1 + margin) violates the SLO.
    pub slo_margin: f64,
    /// The AWS emulation's instance warmup (after InService).
    pub aws_warmup_seconds: i64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            initial_capacity: 1,
            group_min: 0,
            group_max: 10_000,
            capacity_per_instance: None,
            boot_seconds: (120, 120),
            publication: Publication { lag: (60, 90), partial: false, seed: 1 },
            end_offset: 0,
            tick_seconds: 10,
            slo_margin: 0.2,
            aws_warmup_seconds: 60,
        }
    }
}

/// Samples are taken this often (and a row of the trace holds until the next).
const STEP_SECONDS: i64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Controller {
    /// This project's engine, through the poller's tick.
    Engine,
    /// The emulation of EC2 Auto Scaling target tracking.
    AwsTargetTracking,
}

impl Controller {
    pub fn name(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::AwsTargetTracking => "aws-target-tracking",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimulationError {
    #[error("the trace has no rows at or after time 0")]
    NoRows,
    #[error(
        "metric {0:?} is neither in the trace nor derivable (closed loop needs a `load` column and a capacity per instance)"
    )]
    NoSource(String),
    #[error("AWS target tracking needs a metric with a target (step scaling is not target tracking)")]
    NoTarget,
}

/// One tick of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tick {
    pub time: i64,
    pub current: i32,
    pub desired: i32,
    pub in_service: i32,
    /// What the controller read of each metric (the settled value for the engine).
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The demand's utilization of the instances in service (closed loop), in the target's unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demand: Option<f64>,
    /// The engine's forecast capacity (the highest a trend or the seasonal profile asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<i32>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// How a run did, on demand.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    pub ticks: usize,
    pub scaling_actions: usize,
    /// Consecutive scaling actions in opposite directions less than the scale-down window apart.
    pub direction_changes: usize,
    pub instance_hours: f64,
    /// Seconds the demand's utilization was above target × (1 + margin); `None` without load.
    pub slo_violation_seconds: Option<i64>,
    /// From a violation's start to enough capacity: mean and longest, in seconds.
    pub mean_time_to_capacity: Option<f64>,
    pub max_time_to_capacity: Option<i64>,
    pub peak_capacity: i32,
    /// Metrics the engine asked GetMetricData for (its bill); AWS's emulation reads none.
    pub metrics_requested: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub controller: Controller,
    pub score: Score,
    pub ticks: Vec<Tick>,
}

/// The row in force at `t` (the latest at or before it).
fn row_at(trace: &Trace, t: i64) -> Option<&TraceRow> {
    let i = trace.rows.partition_point(|r| r.time <= t);
    i.checked_sub(1).map(|i| &trace.rows[i])
}

/// What a metric's samples are made of.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The trace's column.
    Column(usize),
    /// Utilization in percent of the instances in service, capped at 100.
    Utilization,
    /// The load itself (a total such as requests).
    Load,
}

fn sources(
    policy: &GroupPolicy,
    trace: &Trace,
    config: &SimulationConfig,
) -> Result<Vec<(String, Source)>, SimulationError> {
    policy
        .metrics
        .iter()
        .map(|m| {
            if let Some(i) = trace.metric_ids.iter().position(|id| *id == m.id) {
                return Ok((m.id.clone(), Source::Column(i)));
            }
            match (&m.rule, trace.has_load && config.capacity_per_instance.is_some()) {
                (MetricRule::Target(Target::PerInstance(_)), true) => Ok((m.id.clone(), Source::Load)),
                (_, true) => Ok((m.id.clone(), Source::Utilization)),
                (_, false) => Err(SimulationError::NoSource(m.id.clone())),
            }
        })
        .collect()
}

/// Records the samples of `[t, t + seconds)` into every metric.
fn sample(
    world: &World,
    sources: &[(String, Source)],
    row: &TraceRow,
    per_instance: Option<f64>,
    in_service: i32,
    t: i64,
    seconds: i64,
) {
    let mut metrics = world.metrics.lock().expect("metrics");
    for (id, source) in sources {
        let n = f64::from(in_service);
        let (level, sum, count) = match (*source, row.load, per_instance) {
            (Source::Column(i), _, _) => match row.values[i] {
                Some(v) => (v, v, n),
                None => continue,
            },
            (Source::Utilization, Some(load), Some(c)) => {
                if in_service <= 0 {
                    continue; // no instance, no datapoint
                }
                let u = (100.0 * load / (n * c)).min(100.0);
                (u, u * n, n)
            }
            (Source::Load, Some(load), _) => (load, load, n),
            _ => continue,
        };
        if let Some(m) = metrics.get_mut(id) {
            m.record(t, seconds, level, sum, count);
        }
    }
}

/// History before the run: the group is assumed to have tracked its target, so each
/// instance ran at the target (an average's `Sum` is then the demand).
fn sample_history(
    world: &World,
    sources: &[(String, Source)],
    policy: &GroupPolicy,
    trace: &Trace,
    per_instance: Option<f64>,
) {
    let rows: Vec<&TraceRow> = trace.rows.iter().filter(|r| r.time < 0).collect();
    let mut metrics = world.metrics.lock().expect("metrics");
    for (i, row) in rows.iter().enumerate() {
        let seconds = rows.get(i + 1).map_or(-row.time, |next| next.time - row.time).max(1);
        for ((id, source), metric) in sources.iter().zip(&policy.metrics) {
            let (level, sum) = match (*source, row.load, per_instance, &metric.rule) {
                (Source::Column(i), _, _, _) => match row.values[i] {
                    Some(v) => (v, v),
                    None => continue,
                },
                (Source::Utilization, Some(load), Some(c), MetricRule::Target(Target::Average(t))) => {
                    (*t, 100.0 * load / c)
                }
                (Source::Load, Some(load), _, _) => (load, load),
                _ => continue,
            };
            if let Some(m) = metrics.get_mut(id) {
                m.record(row.time, seconds, level, sum, 1.0);
            }
        }
    }
}

/// Seconds the demand's utilization is above the SLO line, and the utilization.
fn demand_utilization(
    policy: &GroupPolicy,
    load: Option<f64>,
    per_instance: Option<f64>,
    in_service: i32,
) -> Option<(f64, f64)> {
    let (load, c) = (load?, per_instance?);
    let target = policy.metrics.iter().find_map(|m| match m.rule {
        MetricRule::Target(t) => Some(t),
        MetricRule::StepScaling(_) => None,
    })?;
    let n = f64::from(in_service.max(0));
    Some(match target {
        Target::Average(t) => (if n > 0.0 { 100.0 * load / (n * c) } else { f64::INFINITY }, t),
        Target::PerInstance(t) => (if n > 0.0 { load / n } else { f64::INFINITY }, t),
    })
}

/// Runs `controller` over `trace` (its rows from time 0; earlier rows are history).
pub fn run(
    policy: &GroupPolicy,
    trace: &Trace,
    config: &SimulationConfig,
    controller: Controller,
) -> Result<Run, SimulationError> {
    // The poller's per-tick logs would drown the result; the ticks carry the same.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        run_quietly(policy, trace, config, controller)
    })
}

fn run_quietly(
    policy: &GroupPolicy,
    trace: &Trace,
    config: &SimulationConfig,
    controller: Controller,
) -> Result<Run, SimulationError> {
    let end = trace.rows.last().map(|r| r.time).filter(|t| *t >= 0).ok_or(SimulationError::NoRows)?;
    let sources = sources(policy, trace, config)?;
    let world = World {
        group: Mutex::new(Group::new(
            config.initial_capacity,
            config.group_min,
            config.group_max,
            config.boot_seconds,
            config.publication.seed,
        )),
        metrics: Mutex::new(
            policy
                .metrics
                .iter()
                .map(|m| {
                    (m.id.clone(), SimMetric::new(i64::from(m.query.period_seconds()), config.publication))
                })
                .collect(),
        ),
        now: Mutex::new(0),
        metrics_requested: Mutex::new(0),
    };
    sample_history(&world, &sources, policy, trace, config.capacity_per_instance);

    // The engine: the poller itself, over the simulated world.
    let mut document_policy = policy.clone();
    document_policy.selector = Selector::Name(world::GROUP_NAME.into());
    let poller = Poller::new(
        &world,
        &world,
        MemoryState::default(),
        StaticPolicy(Arc::new(PolicyDocument { groups: vec![document_policy] })),
        PollerConfig {
            tick_interval: Duration::from_secs(config.tick_seconds.max(1) as u64),
            metrics_end_offset: Duration::from_secs(config.end_offset.max(0) as u64),
            dry_run: false,
            emf: false,
            ..PollerConfig::default()
        },
        None,
    );
    let mut aws = match controller {
        Controller::AwsTargetTracking => Some(
            AwsTargetTracking::from_policy(policy, config.aws_warmup_seconds)
                .ok_or(SimulationError::NoTarget)?,
        ),
        Controller::Engine => None,
    };

    let mut ticks = Vec::new();
    let mut score = Score { peak_capacity: config.initial_capacity, ..Score::default() };
    let mut violation = 0i64;
    let mut episodes: Vec<i64> = Vec::new();
    let mut episode_start: Option<i64> = None;
    let mut last_action: Option<(i64, i32)> = None;
    let down_window = policy.behavior.scale_down.stabilization_seconds;
    let scored = trace.has_load && config.capacity_per_instance.is_some();

    let mut t = 0;
    while t <= end {
        *world.now.lock().expect("clock") = t;
        let row = row_at(trace, t).expect("a row at or before t >= 0");
        let in_service = world.group.lock().expect("group").in_service(t);
        sample(&world, &sources, row, config.capacity_per_instance, in_service, t, STEP_SECONDS);

        if t % config.tick_seconds.max(1) == 0 {
            let current = world.group.lock().expect("group").desired;
            let tick = match aws.as_mut() {
                None => {
                    let summary = ready(poller.tick(world::to_system_time(t), Mode::Act))
                        .expect("the simulated world cannot fail");
                    let outcome = summary.groups.into_iter().next().expect("one group");
                    let forecast = forecast_capacity(policy, &outcome.explanation);
                    Tick {
                        time: t,
                        current,
                        desired: outcome.desired,
                        in_service,
                        metrics: outcome.metrics,
                        demand: None,
                        forecast,
                        reason: outcome.reason,
                        explanation: Some(outcome.explanation),
                    }
                }
                Some(aws) => {
                    let metrics = world.metrics.lock().expect("metrics");
                    let metric = &metrics[&aws.metric_id];
                    let decision = aws.tick(t, &world.group.lock().expect("group"), metric);
                    drop(metrics);
                    let (desired, reason) = match decision {
                        Some((desired, reason)) => {
                            world.group.lock().expect("group").set_desired(t, desired);
                            (world.group.lock().expect("group").desired, reason)
                        }
                        None => (current, String::new()),
                    };
                    Tick {
                        time: t,
                        current,
                        desired,
                        in_service,
                        metrics: BTreeMap::new(),
                        demand: None,
                        forecast: None,
                        reason,
                        explanation: None,
                    }
                }
            };
            if tick.desired != current {
                score.scaling_actions += 1;
                let direction = (tick.desired - current).signum();
                if let Some((time, previous)) = last_action
                    && previous != direction
                    && t - time < down_window
                {
                    score.direction_changes += 1;
                }
                last_action = Some((t, direction));
            }
            ticks.push(tick);
        }

        let group = world.group.lock().expect("group");
        let (desired, in_service) = (group.desired, group.in_service(t));
        drop(group);
        score.instance_hours += f64::from(desired) * STEP_SECONDS as f64 / 3600.0;
        score.peak_capacity = score.peak_capacity.max(desired);
        if let Some((utilization, target)) =
            demand_utilization(policy, row.load, config.capacity_per_instance, in_service)
        {
            if let Some(tick) = ticks.last_mut().filter(|k| k.time == t) {
                tick.demand = Some(utilization);
            }
            if utilization > target * (1.0 + config.slo_margin) {
                violation += STEP_SECONDS;
                episode_start.get_or_insert(t);
            } else if let Some(start) = episode_start.take() {
                episodes.push(t - start);
            }
        }
        t += STEP_SECONDS;
    }
    if let Some(start) = episode_start {
        episodes.push(t - start);
    }
    score.ticks = ticks.len();
    score.metrics_requested = *world.metrics_requested.lock().expect("count");
    if scored {
        score.slo_violation_seconds = Some(violation);
        if !episodes.is_empty() {
            score.mean_time_to_capacity = Some(episodes.iter().sum::<i64>() as f64 / episodes.len() as f64);
            score.max_time_to_capacity = episodes.iter().copied().max();
        }
    }
    Ok(Run { controller, score, ticks })
}

/// The output of a future that never waits: the simulated world answers at once, so the
/// poller's tick runs to completion in one poll, inside or outside an async runtime.
/// Unconstrained: inside a runtime (the CLI's), each tick's `tokio::sync::Mutex` lock
/// spends the task's cooperative budget, and after ~128 ticks in one poll the lock would
/// answer `Pending` though it is free.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(tokio::task::coop::unconstrained(future));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the simulated world never waits"),
    }
}

/// The capacity the engine's forecasts asked for, if any asked more than the current.
fn forecast_capacity(policy: &GroupPolicy, explanation: &Explanation) -> Option<i32> {
    policy
        .metrics
        .iter()
        .zip(&explanation.metrics)
        .filter_map(|(m, e)| {
            let MetricRule::Target(Target::Average(t) | Target::PerInstance(t)) = m.rule else { return None };
            let demand = [e.trend_forecast, e.seasonal_forecast].into_iter().flatten().reduce(f64::max)?;
            Some(engine::proposal::to_capacity(demand / t))
        })
        .max()
}

/// The policy's metric periods, for a one-line description of the pipeline.
pub fn periods(policy: &GroupPolicy) -> Vec<i64> {
    let mut periods: Vec<i64> = policy.metrics.iter().map(|m| i64::from(m.query.period_seconds())).collect();
    periods.sort_unstable();
    periods.dedup();
    periods
}

/// The runs' scores side by side, one column per run.
pub fn score_table(runs: &[Run]) -> String {
    let mut out = format!("{:<34}", "");
    for run in runs {
        out.push_str(&format!("{:>22}", run.controller.name()));
    }
    out.push('\n');
    let mut line = |name: &str, cell: &dyn Fn(&Score) -> String| {
        out.push_str(&format!("{name:<34}"));
        for run in runs {
            out.push_str(&format!("{:>22}", cell(&run.score)));
        }
        out.push('\n');
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    line("SLO-violation seconds", &|s| or_dash(s.slo_violation_seconds.map(|v| v.to_string())));
    line("instance-hours", &|s| format!("{:.2}", s.instance_hours));
    line("scaling actions", &|s| s.scaling_actions.to_string());
    line("direction changes in down window", &|s| s.direction_changes.to_string());
    line("time to capacity, mean / max (s)", &|s| {
        or_dash(s.mean_time_to_capacity.zip(s.max_time_to_capacity).map(|(m, x)| format!("{m:.0} / {x}")))
    });
    line("peak capacity", &|s| s.peak_capacity.to_string());
    out
}

#[cfg(test)]
mod tests;

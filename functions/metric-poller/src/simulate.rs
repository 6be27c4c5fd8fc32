//! Backtests: the engine replayed over a metric trace, tick by tick.
//!
//! Open loop replays the observed metric values as they were. Closed loop derives the
//! metrics from a `load` column over the instances in service (each handles
//! `capacity_per_instance` load; new ones serve after `boot_seconds`), so a policy's
//! effect on the metric it scales on can be studied.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{self, Explanation, History, Observation, Target};
use crate::policy::{GroupPolicy, MetricRule};

/// A metric trace: `time,<metric id>,...[,load]`, one row per tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub metric_ids: Vec<String>,
    pub rows: Vec<TraceRow>,
    pub has_load: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// Seconds from the start.
    pub time: i64,
    /// In `metric_ids` order; `None` is an empty cell (missing data).
    pub values: Vec<Option<f64>>,
    pub load: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TraceError {
    #[error("the trace is empty: it needs a header line time,<metric id>,...")]
    Empty,
    #[error("line 1: the first column must be `time`, found {0:?}")]
    NoTimeColumn(String),
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount { line: usize, expected: usize, found: usize },
    #[error("line {line}, column {column}: {value:?} is not a number")]
    NotANumber { line: usize, column: String, value: String },
    #[error("line {line}: time {time} does not increase")]
    TimeNotIncreasing { line: usize, time: i64 },
}

pub fn parse_trace(text: &str) -> Result<Trace, TraceError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(TraceError::Empty)?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
    if columns[0] != "time" {
        return Err(TraceError::NoTimeColumn(columns[0].clone()));
    }
    let load_column = columns.iter().position(|c| c == "load");
    let metric_ids: Vec<String> = columns[1..].iter().filter(|c| *c != "load").cloned().collect();
    let mut rows: Vec<TraceRow> = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(TraceError::FieldCount { line: number, expected: columns.len(), found: cells.len() });
        }
        let parse = |i: usize| -> Result<Option<f64>, TraceError> {
            if cells[i].is_empty() {
                return Ok(None);
            }
            cells[i].parse::<f64>().map(Some).map_err(|_| TraceError::NotANumber {
                line: number,
                column: columns[i].clone(),
                value: cells[i].to_owned(),
            })
        };
        let time = parse(0)?.ok_or_else(|| TraceError::NotANumber {
            line: number,
            column: "time".into(),
            value: String::new(),
        })? as i64;
        if rows.last().is_some_and(|r| r.time >= time) {
            return Err(TraceError::TimeNotIncreasing { line: number, time });
        }
        let mut values = Vec::with_capacity(metric_ids.len());
        for i in 1..columns.len() {
            if Some(i) != load_column {
                values.push(parse(i)?);
            }
        }
        let load = load_column.map(parse).transpose()?.flatten();
        rows.push(TraceRow { time, values, load });
    }
    Ok(Trace { metric_ids, rows, has_load: load_column.is_some() })
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimulationConfig {
    pub initial_capacity: i32,
    /// The Auto Scaling group's own bounds.
    pub group_min: i32,
    pub group_max: i32,
    pub closed_loop: Option<ClosedLoop>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClosedLoop {
    /// The load one instance carries at 100 % utilization.
    pub capacity_per_instance: f64,
    /// Seconds from launch until an instance serves.
    pub boot_seconds: i64,
}

/// One simulated tick, as `autoscaler simulate` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tick {
    pub time: i64,
    pub current: i32,
    pub desired: i32,
    pub in_service: i32,
    pub metrics: BTreeMap<String, Option<f64>>,
    pub reason: String,
    pub explanation: Explanation,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub ticks: usize,
    pub scaling_actions: usize,
    /// Σ capacity × seconds until the next tick (the last tick counts until itself).
    pub instance_seconds: i64,
    /// Seconds during which a target-tracked metric was above its target.
    pub seconds_above_target: i64,
    pub peak_capacity: i32,
}

/// Instances launched at a time, for warmup and boot accounting.
#[derive(Clone, Copy, Debug)]
struct Launch {
    time: i64,
    count: i32,
}

/// The metric a closed loop derives for a rule: a per-instance average is utilization in
/// percent of the in-service instances (capped at 100, as CPU is); a total is the load.
fn derived_metric(rule: &MetricRule, load: f64, in_service: i32, per_instance: f64) -> f64 {
    match rule {
        MetricRule::Target(Target::PerInstance(_)) => load,
        _ if in_service <= 0 => 100.0,
        _ => (100.0 * load / (f64::from(in_service) * per_instance)).min(100.0),
    }
}

fn above_target(rule: &MetricRule, value: f64, in_service: i32) -> bool {
    match rule {
        MetricRule::Target(Target::Average(t)) => value > *t,
        MetricRule::Target(Target::PerInstance(t)) => value > t * f64::from(in_service.max(0)),
        MetricRule::StepScaling(_) => false,
    }
}

pub fn simulate(policy: &GroupPolicy, trace: &Trace, config: &SimulationConfig) -> (Vec<Tick>, Summary) {
    let mut capacity = config.initial_capacity;
    let mut launches: Vec<Launch> = Vec::new();
    let mut history = History::default();
    let mut ticks = Vec::with_capacity(trace.rows.len());
    let mut summary = Summary { peak_capacity: capacity, ..Summary::default() };

    for (index, row) in trace.rows.iter().enumerate() {
        let now = row.time;
        let warming: i32 =
            launches.iter().filter(|l| now - l.time < policy.instance_warmup_seconds).map(|l| l.count).sum();
        let booting: i32 = match config.closed_loop {
            Some(closed) => {
                launches.iter().filter(|l| now - l.time < closed.boot_seconds).map(|l| l.count).sum()
            }
            None => 0,
        };
        let in_service = (capacity - booting).max(0);

        let mut metrics: BTreeMap<String, Option<f64>> =
            trace.metric_ids.iter().cloned().zip(row.values.iter().copied()).collect();
        if let (Some(closed), Some(load)) = (config.closed_loop, row.load) {
            for metric in &policy.metrics {
                if !trace.metric_ids.contains(&metric.id) {
                    let value = derived_metric(&metric.rule, load, in_service, closed.capacity_per_instance);
                    metrics.insert(metric.id.clone(), Some(value));
                }
            }
        }

        let observation = Observation {
            current: capacity,
            warming: warming.min(capacity),
            group_min: config.group_min,
            group_max: config.group_max,
            metrics: metrics.clone(),
        };
        let decision = engine::decide(policy, &observation, &history, now);
        history = decision.history;

        let next_time = trace.rows.get(index + 1).map_or(now, |r| r.time);
        let dt = next_time - now;
        if policy.metrics.iter().any(|m| {
            metrics.get(&m.id).copied().flatten().is_some_and(|v| above_target(&m.rule, v, in_service))
        }) {
            summary.seconds_above_target += dt;
        }

        let current = capacity;
        if decision.desired != capacity {
            summary.scaling_actions += 1;
            history.record_scaling(now, capacity, decision.desired);
            if decision.desired > capacity {
                launches.push(Launch { time: now, count: decision.desired - capacity });
            } else {
                // Scale-in removes the newest instances first in this model.
                let mut remove = capacity - decision.desired;
                while remove > 0 {
                    let Some(last) = launches.last_mut() else { break };
                    let taken = last.count.min(remove);
                    last.count -= taken;
                    remove -= taken;
                    if last.count == 0 {
                        launches.pop();
                    }
                }
            }
            capacity = decision.desired;
        }
        let horizon = policy.instance_warmup_seconds.max(config.closed_loop.map_or(0, |c| c.boot_seconds));
        launches.retain(|l| now - l.time < horizon);

        summary.instance_seconds += i64::from(capacity) * dt;
        summary.peak_capacity = summary.peak_capacity.max(capacity);
        ticks.push(Tick {
            time: now,
            current,
            desired: decision.desired,
            in_service,
            metrics,
            reason: decision.explanation.summary.clone(),
            explanation: decision.explanation,
        });
    }
    summary.ticks = ticks.len();
    (ticks, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyFormat, parse_policy_text};

    fn policy(json: &str) -> GroupPolicy {
        parse_policy_text(json, PolicyFormat::Json).unwrap().groups.remove(0)
    }

    const CPU: &str = r#"{"groups": [{"name": "web", "metrics": [{"id": "cpu",
        "query": {"namespace": "AWS/EC2", "metric_name": "CPUUtilization"}, "target": {"average": 50}}]}]}"#;

    #[test]
    fn traces_parse_with_missing_cells_and_clear_errors() {
        let trace = parse_trace("time,cpu,load\n0,50,\n10,,200\n").unwrap();
        assert_eq!(trace.metric_ids, ["cpu"]);
        assert_eq!(trace.rows[1].values, [None]);
        assert_eq!(trace.rows[1].load, Some(200.0));
        assert_eq!(parse_trace(""), Err(TraceError::Empty));
        assert_eq!(parse_trace("t,cpu\n"), Err(TraceError::NoTimeColumn("t".into())));
        assert_eq!(
            parse_trace("time,cpu\n0,1,2\n"),
            Err(TraceError::FieldCount { line: 2, expected: 2, found: 3 })
        );
        assert_eq!(
            parse_trace("time,cpu\n10,1\n10,2\n"),
            Err(TraceError::TimeNotIncreasing { line: 3, time: 10 })
        );
        assert!(matches!(parse_trace("time,cpu\n0,abc\n"), Err(TraceError::NotANumber { line: 2, .. })));
    }

    #[test]
    fn open_loop_scales_up_fast_and_down_after_the_window() {
        let mut csv = String::from("time,cpu\n");
        for t in (0..=400).step_by(10) {
            let cpu = if t < 60 { 100 } else { 10 };
            csv.push_str(&format!("{t},{cpu}\n"));
        }
        let config =
            SimulationConfig { initial_capacity: 2, group_min: 1, group_max: 100, closed_loop: None };
        let (ticks, summary) = simulate(&policy(CPU), &parse_trace(&csv).unwrap(), &config);
        // 100 % on 2 at target 50: 4 at once (within the default 100 % / 4 instances per 15 s).
        assert_eq!((ticks[0].current, ticks[0].desired), (2, 4));
        // The rate limit then lets it double again once the 15 s period has passed: 8.
        assert_eq!(ticks[2].desired, 8);
        // Load drops at 60 s; the 300 s down window holds while the last high recommendation
        // (at 50 s) is inside it. HPA keeps records strictly after now - window, so it
        // leaves at 350 s: the first scale-in.
        let first_down = ticks.iter().find(|t| t.desired < t.current).unwrap();
        assert_eq!(first_down.time, 350);
        assert!(summary.scaling_actions >= 3);
        assert_eq!(summary.ticks, 41);
    }

    #[test]
    fn closed_loop_derives_utilization_from_load_over_instances_in_service() {
        let mut csv = String::from("time,load\n");
        for t in (0..=900).step_by(10) {
            csv.push_str(&format!("{t},{}\n", if t < 100 { 100 } else { 400 }));
        }
        let trace = parse_trace(&csv).unwrap();
        // Each instance carries 100 at 100 %: target 50 % needs load / 50 instances.
        let config = SimulationConfig {
            initial_capacity: 2,
            group_min: 1,
            group_max: 100,
            closed_loop: Some(ClosedLoop { capacity_per_instance: 100.0, boot_seconds: 30 }),
        };
        let mut with_warmup = policy(CPU);
        with_warmup.instance_warmup_seconds = 30;
        let (ticks, warm) = simulate(&with_warmup, &trace, &config);
        assert_eq!(ticks[0].metrics["cpu"], Some(50.0));
        // New instances serve only after booting: right after the step the utilization is capped.
        let step = ticks.iter().find(|t| t.time == 100).unwrap();
        assert_eq!(step.metrics["cpu"], Some(100.0));
        let last = ticks.last().unwrap();
        assert_eq!((last.desired, last.metrics["cpu"]), (8, Some(50.0)), "400 load at 50 % of 100 each");
        assert!(warm.seconds_above_target > 0);

        // Without warmup the engine cannot see that booting capacity is on its way, keeps
        // doubling on the capped utilization, and overshoots.
        let (_, cold) = simulate(&policy(CPU), &trace, &config);
        assert!(cold.peak_capacity > warm.peak_capacity, "{} vs {}", cold.peak_capacity, warm.peak_capacity);
        assert!(cold.instance_seconds > warm.instance_seconds);
    }
}

//! `autoscaler backtest`: a policy replayed over a group's real CloudWatch history, beside
//! what the group actually did.
//!
//! Three steps: [`fetch`] reads the policy's metrics and the group's `GroupDesiredCapacity`
//! / `GroupInServiceInstances` through the poller's own GetMetricData adapter (paginated),
//! a day at a time; [`replay`] turns that history into the simulator's input (a pure
//! function); the simulator (`metric_poller::simulate`, the same as `autoscaler simulate`)
//! runs the engine, and optionally the AWS target tracking emulation, over it.
//!
//! The load model: the metrics observed were produced by the capacity the group actually
//! had, so the replay derives the load from them the way the simulator turns load back
//! into metrics. For an `average` target (a per-instance average such as CPU), load =
//! metric × instances in service, and the simulator gives each simulated instance its
//! share; for a `per_instance` target (a total such as requests), load = the metric.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use crate::commands::SimulationArgs;
use crate::summary::iso8601;
use aws_smithy_types::DateTime;
use clap::Args;
use metric_poller::forecast::PROFILE_SLOT_SECONDS;
use metric_poller::policy::{GroupPolicy, MetricQuery, MetricRule, PredictiveMode, Query, Selector, Target};
use metric_poller::reading::{Aggregation, Datapoint};
use metric_poller::simulate::cloudwatch::Publication;
use metric_poller::simulate::{self, Run, SimulationConfig, Trace, TraceRow};
use metric_poller::{AutoScalingGroups, CloudWatchMetrics, GroupController, MetricsSource};
use serde::Serialize;
use shared::AwsError;
use shared::aws::{Clients, load_sdk_config};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `backtest --help`'s description: what is replayed, and the load model it rests on.
pub const LONG_ABOUT: &str = "\
Replay a policy over a group's CloudWatch history (--since back from now) through the \
simulator `simulate` uses, beside what the group actually did: instance-hours, minutes above \
target, scaling actions.

The metrics observed were produced by the capacity the group had, so the load is derived \
from them: for an `average` target (a per-instance average such as CPU), load = metric × \
GroupInServiceInstances; for a `per_instance` target (a total such as requests), load = the \
metric. The policy's first target-tracked metric drives the load; its other metrics are \
replayed as recorded. Missing metric datapoints stay missing in the replay (the policy's \
missing-data rules apply); missing capacity datapoints are held at the last value; both are \
reported. A predictive policy starts with its profile's history_days before the window.

Needs the group's metrics collection on (GroupDesiredCapacity, GroupInServiceInstances), and \
cloudwatch:GetMetricData and autoscaling:DescribeAutoScalingGroups.";

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The policy document (JSON, or TOML by extension).
    #[arg(long)]
    policy: PathBuf,
    /// The Auto Scaling group whose history is replayed; the policy's group of that name,
    /// or the policy's only group.
    #[arg(long)]
    group: String,
    /// How far back from now: `7d`, `36h`, `90m`, `600s` (at most 455 days, CloudWatch's
    /// retention).
    #[arg(long, value_parser = parse_age)]
    since: i64,
    /// The group's minimum for the simulated runs (default: the group's own, read with
    /// DescribeAutoScalingGroups).
    #[arg(long)]
    min: Option<i32>,
    /// The group's maximum for the simulated runs (default: the group's own).
    #[arg(long)]
    max: Option<i32>,
    #[command(flatten)]
    simulation: SimulationArgs,
    /// Print one JSON object (the table, the gaps, the periods) instead of the table.
    #[arg(long)]
    json: bool,
    /// Write a chart of the replayed runs and the group's actual capacity (.png or .svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// `7d`, `36h`, `90m`, `600s`, in seconds.
fn parse_age(text: &str) -> Result<i64, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale = match unit {
        "d" => 86_400,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("{text:?}: expected a number and a unit, d, h, m or s (7d, 36h)")),
    };
    match number.parse::<i64>() {
        Ok(n) if n > 0 => n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too long")),
        _ => Err(format!("{text:?}: expected a positive whole number before the unit")),
    }
}

/// CloudWatch's retention: data this old is kept at this period or coarser.
const RETENTION: [(i64, i64); 4] =
    [(3 * 3600, 1), (15 * 86_400, 60), (63 * 86_400, 300), (455 * 86_400, 3600)];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    #[error("CloudWatch keeps nothing older than 455 days: {days} days back is too far")]
    BeyondRetention { days: i64 },
    #[error(
        "no {missing} datapoints for group {group} in the window: its group metrics collection is off (or the group did not exist then). Turn it on with `aws autoscaling enable-metrics-collection --auto-scaling-group-name {group} --granularity 1Minute` (Terraform: `enabled_metrics` on the aws_autoscaling_group); CloudWatch has the history from then on"
    )]
    NoCapacityHistory { group: String, missing: &'static str },
    #[error("no datapoints of any of the policy's metrics ({ids}) in the window: check the policy's queries")]
    NoMetricData { ids: String },
    #[error("the policy has {count} groups and none is named {group:?}")]
    NoPolicyGroup { group: String, count: usize },
    #[error("--since must cover at least one whole period of {period} s")]
    WindowTooShort { period: i64 },
}

/// The period history is read at: the policy's shortest period, coarsened to what
/// CloudWatch still keeps for data `age` seconds old (a multiple of it).
pub fn history_period(policy_period: i64, age: i64) -> Result<i64, BacktestError> {
    let kept = RETENTION
        .iter()
        .find(|(oldest, _)| age <= *oldest)
        .map(|(_, period)| *period)
        .ok_or(BacktestError::BeyondRetention { days: age / 86_400 })?;
    let wanted = policy_period.max(kept);
    Ok((wanted + kept - 1) / kept * kept)
}

/// `GroupDesiredCapacity` and `GroupInServiceInstances` are collected per minute at best.
const GROUP_METRICS_PERIOD: i64 = 60;
const DESIRED: &str = "group_desired";
const IN_SERVICE: &str = "group_in_service";

/// What [`fetch`] reads: the policy's metrics (by `m_<metric id>`) at `period`, the
/// group's capacity at `capacity_period`, over `[start, end)` (Unix seconds, aligned to both).
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub start: i64,
    pub end: i64,
    pub period: i64,
    pub capacity_period: i64,
    pub series: BTreeMap<String, Vec<Datapoint>>,
}

/// How long after its period a metric is taken to be published (AWS's vended metrics take
/// one to a few minutes).
const PUBLICATION_ALLOWANCE_SECONDS: i64 = 300;

/// The window reaching at most `age` back from `now` (older data may be kept coarser),
/// aligned to both periods: `(start, end, capacity period)`.
pub fn window(now: i64, age: i64, period: i64) -> (i64, i64, i64) {
    let capacity_period = period.max(GROUP_METRICS_PERIOD);
    // The period still filling is incomplete, and CloudWatch publishes vended metrics
    // minutes after their period: the window ends at the last whole period before that,
    // or the newest minutes would read as gaps.
    let end = (now - PUBLICATION_ALLOWANCE_SECONDS).div_euclid(capacity_period) * capacity_period;
    let start = (now - age + capacity_period - 1).div_euclid(capacity_period) * capacity_period;
    (start, end, capacity_period)
}

fn metric_query_id(metric_id: &str) -> String {
    format!("m_{metric_id}")
}

/// The GetMetricData queries: each policy metric at `period` (its own query, statistic and
/// dimensions), and the group's two capacity metrics.
pub fn queries(policy: &GroupPolicy, group: &str, period: i64, capacity_period: i64) -> Vec<(String, Query)> {
    let at = |query: &Query, seconds: i64| match query {
        Query::Metric(m) => Query::Metric(MetricQuery { period_seconds: seconds as i32, ..m.clone() }),
        Query::Expression { expression, .. } => {
            Query::Expression { expression: expression.clone(), period_seconds: seconds as i32 }
        }
    };
    let group_metric = |name: &str| {
        Query::Metric(MetricQuery {
            namespace: "AWS/AutoScaling".into(),
            metric_name: name.into(),
            dimensions: BTreeMap::from([("AutoScalingGroupName".to_owned(), group.to_owned())]),
            stat: "Average".into(),
            period_seconds: capacity_period as i32,
        })
    };
    policy
        .metrics
        .iter()
        .map(|m| (metric_query_id(&m.id), at(&m.query, period)))
        .chain([
            (DESIRED.to_owned(), group_metric("GroupDesiredCapacity")),
            (IN_SERVICE.to_owned(), group_metric("GroupInServiceInstances")),
        ])
        .collect()
}

/// Reads the window a day at a time (a GetMetricData call, paginated by the adapter, per
/// day), calling `progress(day, days, datapoints)` after each; each series comes back
/// sorted by time, without duplicates, within `[start, end)`.
pub async fn fetch(
    source: &impl MetricsSource,
    queries: &[(String, Query)],
    (start, end, capacity_period): (i64, i64, i64),
    period: i64,
    mut progress: impl FnMut(i64, i64, usize),
) -> Result<History, AwsError> {
    let chunk = (86_400 / capacity_period).max(1) * capacity_period;
    let days = ((end - start + chunk - 1) / chunk).max(1);
    let mut series: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for day in 0..days {
        let from = start + day * chunk;
        let to = (from + chunk).min(end);
        let page = source.datapoints(queries, at(from), at(to)).await?;
        let count = page.values().map(Vec::len).sum();
        for (id, points) in page {
            let kept = series.entry(id).or_default();
            kept.extend(
                points.into_iter().filter(|p| (from..to).contains(&p.time)).map(|p| (p.time, p.value)),
            );
        }
        progress(day + 1, days, count);
    }
    let series = series
        .into_iter()
        .map(|(id, points)| (id, points.into_iter().map(|(time, value)| Datapoint { time, value }).collect()))
        .collect();
    Ok(History { start, end, period, capacity_period, series })
}

fn at(unix: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64)
}

/// Missing datapoints of one series: how many periods, in how many stretches, the longest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gaps {
    pub series: String,
    pub period_seconds: i64,
    pub missing_periods: usize,
    pub gaps: usize,
    pub longest_seconds: i64,
    /// Unix seconds the longest gap starts at.
    pub longest_start: Option<i64>,
    /// What the replay does over them.
    pub handling: &'static str,
}

fn gaps(
    series: &str,
    points: &BTreeMap<i64, f64>,
    (start, end, period): (i64, i64, i64),
    handling: &'static str,
) -> Gaps {
    let mut report = Gaps {
        series: series.into(),
        period_seconds: period,
        missing_periods: 0,
        gaps: 0,
        longest_seconds: 0,
        longest_start: None,
        handling,
    };
    let mut open: Option<i64> = None;
    let close = |report: &mut Gaps, from: i64, to: i64| {
        report.gaps += 1;
        if to - from > report.longest_seconds {
            report.longest_seconds = to - from;
            report.longest_start = Some(from);
        }
    };
    for t in (start..end).step_by(period as usize) {
        if points.contains_key(&t) {
            if let Some(from) = open.take() {
                close(&mut report, from, t);
            }
        } else {
            report.missing_periods += 1;
            open.get_or_insert(t);
        }
    }
    if let Some(from) = open {
        close(&mut report, from, end);
    }
    report
}

/// How one run did: the table's columns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub instance_hours: f64,
    /// Seconds the utilization was above target × (1 + margin); `None` without a target.
    pub seconds_above_target: Option<i64>,
    pub scaling_actions: usize,
    pub peak_capacity: i32,
}

impl Outcome {
    fn of(run: &Run) -> Self {
        Self {
            name: run.controller.name().into(),
            instance_hours: run.score.instance_hours,
            seconds_above_target: run.score.slo_violation_seconds,
            scaling_actions: run.score.scaling_actions,
            peak_capacity: run.score.peak_capacity,
        }
    }
}

/// The metric the load is derived from, and how.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadModel {
    pub metric: String,
    pub model: &'static str,
}

/// The simulator's input made from history, and what actually happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub trace: Trace,
    /// The simulator's `capacity_per_instance`: `Some` when the load is derived (closed loop).
    pub capacity_per_instance: Option<f64>,
    pub initial_capacity: i32,
    pub load: Option<LoadModel>,
    pub actual: Outcome,
    pub gaps: Vec<Gaps>,
    /// The group's recorded capacity per capacity period: (seconds from the start,
    /// desired, in service), gaps held.
    pub recorded: Vec<(i64, i32, i32)>,
}

/// Capacity gaps are held at the last value (before the first datapoint: the first).
fn held(points: &BTreeMap<i64, f64>, start: i64, end: i64, period: i64) -> Vec<f64> {
    let mut last = points.values().next().copied().unwrap_or(0.0);
    (start..end)
        .step_by(period as usize)
        .map(|t| {
            if let Some(v) = points.get(&t) {
                last = *v;
            }
            last
        })
        .collect()
}

/// One [`History`] as maps by time: each policy metric's (in the policy's order), the group's.
struct Recorded {
    metrics: Vec<BTreeMap<i64, f64>>,
    desired: BTreeMap<i64, f64>,
    in_service: BTreeMap<i64, f64>,
}

impl Recorded {
    fn new(policy: &GroupPolicy, history: &History) -> Self {
        let as_map = |id: &str| -> BTreeMap<i64, f64> {
            history
                .series
                .get(id)
                .map(|ps| ps.iter().map(|p| (p.time, p.value)).collect())
                .unwrap_or_default()
        };
        Self {
            metrics: policy.metrics.iter().map(|m| as_map(&metric_query_id(&m.id))).collect(),
            desired: as_map(DESIRED),
            in_service: as_map(IN_SERVICE),
        }
    }
}

/// The metric the load is derived from: the policy's first target-tracked one.
fn load_metric(policy: &GroupPolicy) -> Option<(usize, Target)> {
    policy.metrics.iter().enumerate().find_map(|(i, m)| match m.rule {
        MetricRule::Target(target) => Some((i, target)),
        MetricRule::StepScaling(_) => None,
    })
}

/// A trace row per period of `history`, timed from `origin`, and the seconds the recorded
/// utilization was above target × (1 + `slo_margin`). `serving(t)` is the instances in
/// service at `t`; where it is unknown, an average's load is too.
fn rows(
    policy: &GroupPolicy,
    history: &History,
    recorded: &Recorded,
    origin: i64,
    serving: impl Fn(i64) -> Option<f64>,
    slo_margin: f64,
) -> (Vec<TraceRow>, i64) {
    let load_metric = load_metric(policy);
    let load_index = load_metric.map(|(i, _)| i);
    // Sums and counts read at a coarser period than the policy's hold more samples: back
    // to the policy's own period, which the simulator's load is per.
    let per_policy_period = |index: usize, value: f64| match Aggregation::of(&policy.metrics[index].query) {
        Aggregation::Cumulative => {
            value * f64::from(policy.metrics[index].query.period_seconds()) / history.period as f64
        }
        Aggregation::Level => value,
    };
    let mut rows = Vec::new();
    let mut seconds_above = 0;
    for t in (history.start..history.end).step_by(history.period as usize) {
        let value = |i: usize| recorded.metrics[i].get(&t).map(|v| per_policy_period(i, *v));
        let values =
            (0..policy.metrics.len()).filter(|i| Some(*i) != load_index).map(value).collect::<Vec<_>>();
        let load = load_metric.and_then(|(i, target)| {
            let (v, serving) = (value(i)?, serving(t));
            let (load, utilization, line) = match target {
                Target::Average(line) => (v * serving?, Some(v), line),
                Target::PerInstance(line) => {
                    (v, serving.map(|n| if n > 0.0 { v / n } else { f64::INFINITY }), line)
                }
            };
            if utilization.is_some_and(|u| u > line * (1.0 + slo_margin)) {
                seconds_above += history.period;
            }
            Some(load)
        });
        rows.push(TraceRow { time: t - origin, values, load });
    }
    (rows, seconds_above)
}

/// History -> simulator input. The policy's first target-tracked metric drives the load
/// (see the module's load model); its other metrics are replayed as recorded (they do not
/// respond to the simulated capacity). A missing metric datapoint is missing data in the
/// replay too (the policy's missing-data rules apply); missing capacity datapoints are held.
/// `before`: history before the window, for a predictive policy's seasonal profile (rows
/// at negative times, where the simulator reads them); its gaps stay gaps.
pub fn replay(
    policy: &GroupPolicy,
    group: &str,
    history: &History,
    before: Option<&History>,
    slo_margin: f64,
) -> Result<Replay, BacktestError> {
    let recorded = Recorded::new(policy, history);
    for (points, missing) in
        [(&recorded.desired, "GroupDesiredCapacity"), (&recorded.in_service, "GroupInServiceInstances")]
    {
        if points.is_empty() {
            return Err(BacktestError::NoCapacityHistory { group: group.into(), missing });
        }
    }
    if recorded.metrics.iter().all(BTreeMap::is_empty) {
        let ids: Vec<&str> = policy.metrics.iter().map(|m| m.id.as_str()).collect();
        return Err(BacktestError::NoMetricData { ids: ids.join(", ") });
    }
    let (start, end, period, capacity_period) =
        (history.start, history.end, history.period, history.capacity_period);
    let desired_held = held(&recorded.desired, start, end, capacity_period);
    let in_service_held = held(&recorded.in_service, start, end, capacity_period);
    let capacity_at = |series: &[f64], t: i64| series[((t - start) / capacity_period) as usize];

    let mut trace_rows = Vec::new();
    let mut gap_reports = Vec::new();
    if let Some(before) = before {
        let earlier = Recorded::new(policy, before);
        let serving = |t: i64| earlier.in_service.get(&(t - t.rem_euclid(before.capacity_period))).copied();
        trace_rows = rows(policy, before, &earlier, start, serving, slo_margin).0;
        let span = (before.start, before.end, before.period);
        for (m, points) in policy.metrics.iter().zip(&earlier.metrics) {
            let series = format!("{} before the window", m.id);
            gap_reports.push(gaps(&series, points, span, "missing in the seasonal profile"));
        }
        let span = (before.start, before.end, before.capacity_period);
        let series = "GroupInServiceInstances before the window";
        gap_reports.push(gaps(series, &earlier.in_service, span, "an average's load missing in the profile"));
    }
    let serving = |t: i64| Some(capacity_at(&in_service_held, t));
    let (window_rows, seconds_above) = rows(policy, history, &recorded, start, serving, slo_margin);
    trace_rows.extend(window_rows);
    // The last period is replayed whole: its row holds until the window's end.
    if let Some(last) = trace_rows.last().cloned() {
        trace_rows.push(TraceRow { time: end - start, ..last });
    }
    let load_metric = load_metric(policy);
    let load = load_metric.map(|(i, target)| LoadModel {
        metric: policy.metrics[i].id.clone(),
        model: match target {
            Target::Average(_) => "load = metric × instances in service",
            Target::PerInstance(_) => "load = metric",
        },
    });
    let trace = Trace {
        metric_ids: policy
            .metrics
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != load_metric.map(|(i, _)| i))
            .map(|(_, m)| m.id.clone())
            .collect(),
        rows: trace_rows,
        has_load: load.is_some(),
    };

    let rounded: Vec<i32> = desired_held.iter().map(|v| v.round() as i32).collect();
    let actual = Outcome {
        name: "actual".into(),
        instance_hours: desired_held.iter().sum::<f64>() * capacity_period as f64 / 3600.0,
        seconds_above_target: load_metric.map(|_| seconds_above),
        scaling_actions: rounded.windows(2).filter(|w| w[0] != w[1]).count(),
        peak_capacity: rounded.iter().copied().max().unwrap_or(0),
    };
    let recorded_capacity = (start..end)
        .step_by(capacity_period as usize)
        .map(|t| {
            (
                t - start,
                capacity_at(&desired_held, t).round() as i32,
                capacity_at(&in_service_held, t).round() as i32,
            )
        })
        .collect();
    for (m, points) in policy.metrics.iter().zip(&recorded.metrics) {
        gap_reports.push(gaps(&m.id, points, (start, end, period), "replayed as missing data"));
    }
    for (series, points) in
        [("GroupDesiredCapacity", &recorded.desired), ("GroupInServiceInstances", &recorded.in_service)]
    {
        gap_reports.push(gaps(series, points, (start, end, capacity_period), "held at the last value"));
    }
    Ok(Replay {
        trace,
        // The simulator's closed loop: 100 makes its utilization (100 × load / (n × 100))
        // the per-instance average itself; a per-instance target reads the load directly.
        capacity_per_instance: load.as_ref().map(|_| 100.0),
        initial_capacity: rounded[0],
        load,
        actual,
        gaps: gap_reports,
        recorded: recorded_capacity,
    })
}

/// The policy's group for `name`: the one selecting it by name, or the only one.
fn policy_group<'a>(groups: &'a [GroupPolicy], name: &str) -> Result<&'a GroupPolicy, BacktestError> {
    groups
        .iter()
        .find(|g| g.selector == Selector::Name(name.into()))
        .or(if groups.len() == 1 { groups.first() } else { None })
        .ok_or(BacktestError::NoPolicyGroup { group: name.into(), count: groups.len() })
}

/// The whole result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report<'a> {
    group: &'a str,
    start: String,
    end: String,
    period_seconds: i64,
    capacity_period_seconds: i64,
    load: &'a Option<LoadModel>,
    slo_margin: f64,
    gaps: &'a [Gaps],
    runs: Vec<Outcome>,
}

pub async fn run(args: BacktestArgs) -> Result<ExitCode, Error> {
    let document = match crate::commands::read_policy(&args.policy)? {
        Ok(document) => document,
        Err(errors) => return Err(format!("{}: invalid policy: {errors}", args.policy.display()).into()),
    };
    let policy = policy_group(&document.groups, &args.group)?;
    let shortest = simulate::periods(policy).into_iter().min().unwrap_or(60);
    let sim = &args.simulation;
    let period = history_period(shortest, args.since)?;
    let now = DateTime::from(std::time::SystemTime::now()).secs();
    let (start, end, capacity_period) = window(now, args.since, period);
    if end - start < capacity_period {
        return Err(BacktestError::WindowTooShort { period: capacity_period }.into());
    }

    let clients = Clients::new(&load_sdk_config(shared::aws::RetryProfile::Throughput).await, false);
    let queries = queries(policy, &args.group, period, capacity_period);
    eprintln!(
        "backtest: reading {} series of {} from {} to {} at {period} s (capacity at {capacity_period} s)",
        queries.len(),
        args.group,
        iso8601(start),
        iso8601(end)
    );
    let source = CloudWatchMetrics::new(clients.cloudwatch.clone());
    let progress = |day, days, count| eprintln!("backtest: read day {day}/{days}: {count} datapoints");
    let failed =
        |e: AwsError| format!("reading the history from CloudWatch: {}", shared::error::error_chain(&e));
    let history =
        fetch(&source, &queries, (start, end, capacity_period), period, progress).await.map_err(failed)?;
    // A predictive policy's seasonal profile is built from days of history: as live, the
    // replay starts with them (at the profile's 5-minute slots, or coarser if that old).
    let profile_days = match policy.predictive.mode {
        PredictiveMode::Off => 0,
        PredictiveMode::ForecastOnly | PredictiveMode::ForecastAndScale => {
            i64::from(policy.predictive.history_days)
        }
    };
    let before = if profile_days > 0 {
        let age = args.since + profile_days * 86_400;
        let period = history_period(PROFILE_SLOT_SECONDS.max(shortest), age)?;
        let from = (start - profile_days * 86_400 + period - 1).div_euclid(period) * period;
        let to = start.div_euclid(period) * period;
        eprintln!(
            "backtest: reading {profile_days} d before the window for the seasonal profile, at {period} s"
        );
        let queries = self::queries(policy, &args.group, period, period);
        Some(fetch(&source, &queries, (from, to, period), period, progress).await.map_err(failed)?)
    } else {
        None
    };
    let replay = replay(policy, &args.group, &history, before.as_ref(), args.simulation.slo_margin)?;

    let (group_min, group_max) = match (args.min, args.max) {
        (Some(min), Some(max)) => (min, max),
        (min, max) => {
            let found = AutoScalingGroups::new(clients.autoscaling.clone())
                .describe_group(&args.group)
                .await
                .map_err(|e| format!("reading the group's bounds: {}", shared::error::error_chain(&e)))?;
            match found {
                Some(g) => (min.unwrap_or(g.min_size), max.unwrap_or(g.max_size)),
                None => {
                    eprintln!(
                        "backtest: group {} not found: its bounds are taken as --min {} --max {}",
                        args.group,
                        min.unwrap_or(0),
                        max.unwrap_or(10_000)
                    );
                    (min.unwrap_or(0), max.unwrap_or(10_000))
                }
            }
        }
    };
    if group_min > group_max {
        return Err(format!("the group's minimum {group_min} is above its maximum {group_max}").into());
    }
    let config = SimulationConfig {
        initial_capacity: replay.initial_capacity,
        group_min,
        group_max,
        capacity_per_instance: replay.capacity_per_instance,
        boot_seconds: sim.boot_seconds,
        publication: Publication { lag: sim.lag_or_usual(shortest), partial: false, seed: sim.seed },
        end_offset: 0,
        tick_seconds: sim.tick_seconds.max(1),
        slo_margin: sim.slo_margin,
        aws_warmup_seconds: sim.aws_warmup,
    };
    let mut runs = Vec::new();
    for controller in sim.controllers() {
        eprintln!(
            "backtest: replaying {:.1} days through {}",
            (end - start) as f64 / 86_400.0,
            controller.name()
        );
        runs.push(simulate::run(policy, &replay.trace, &config, controller)?);
    }
    if let Some(path) = &args.plot {
        crate::plot::plot_with_recorded(
            &runs,
            &replay.recorded,
            policy,
            &format!("{} from {} to {}", args.group, iso8601(start), iso8601(end)),
            path,
        )?;
    }

    let outcomes: Vec<Outcome> =
        std::iter::once(replay.actual.clone()).chain(runs.iter().map(Outcome::of)).collect();
    let mut out = io::stdout().lock();
    if args.json {
        let report = Report {
            group: &args.group,
            start: iso8601(start),
            end: iso8601(end),
            period_seconds: period,
            capacity_period_seconds: capacity_period,
            load: &replay.load,
            slo_margin: args.simulation.slo_margin,
            gaps: &replay.gaps,
            runs: outcomes,
        };
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            render(&args.group, (start, end), period, &replay, &outcomes, args.simulation.slo_margin)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table and what it rests on: the window, the load model, the gaps.
fn render(
    group: &str,
    (start, end): (i64, i64),
    period: i64,
    replay: &Replay,
    outcomes: &[Outcome],
    slo_margin: f64,
) -> String {
    let mut out = format!("{group} from {} to {}, metrics at {period} s\n", iso8601(start), iso8601(end));
    match &replay.load {
        Some(load) => out.push_str(&format!("load from {}: {}\n", load.metric, load.model)),
        None => {
            out.push_str("no target-tracked metric: metrics replayed as recorded, no time above target\n")
        }
    }
    for gap in replay.gaps.iter().filter(|g| g.missing_periods > 0) {
        out.push_str(&format!(
            "gaps in {}: {} periods of {} s missing in {} gap(s), the longest {} from {} ({})\n",
            gap.series,
            gap.missing_periods,
            gap.period_seconds,
            gap.gaps,
            human_duration(gap.longest_seconds),
            gap.longest_start.map(iso8601).unwrap_or_default(),
            gap.handling
        ));
    }
    out.push('\n');
    out.push_str(&format!("{:<34}", ""));
    for outcome in outcomes {
        out.push_str(&format!("{:>22}", outcome.name));
    }
    out.push('\n');
    let mut line = |name: &str, cell: &dyn Fn(&Outcome) -> String| {
        out.push_str(&format!("{name:<34}"));
        for outcome in outcomes {
            out.push_str(&format!("{:>22}", cell(outcome)));
        }
        out.push('\n');
    };
    line("instance-hours", &|o| format!("{:.2}", o.instance_hours));
    line(&format!("minutes above target +{:.0} %", slo_margin * 100.0), &|o| {
        o.seconds_above_target.map_or("-".into(), |s| format!("{:.0}", s as f64 / 60.0))
    });
    line("scaling actions", &|o| o.scaling_actions.to_string());
    line("peak capacity", &|o| o.peak_capacity.to_string());
    out
}

pub(crate) fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use metric_poller::policy::{PolicyFormat, parse_policy_text};
    use metric_poller::simulate::Controller;

    use super::*;

    fn policy(stat: &str, target: &str) -> GroupPolicy {
        policy_with(stat, target, "")
    }

    /// One group scaling on `cpu`, with `extra` fields of the group.
    fn policy_with(stat: &str, target: &str, extra: &str) -> GroupPolicy {
        parse_policy_text(
            &format!(
                r#"{{"groups": [{{"name": "web", "metrics": [{{"id": "cpu", "query": {{"namespace": "App",
                "metric_name": "Cpu", "stat": "{stat}", "period_seconds": 60}}, "target": {target}}}]{extra}}}]}}"#
            ),
            PolicyFormat::Json,
        )
        .unwrap()
        .groups
        .remove(0)
    }

    const START: i64 = 20_000 * 86_400;

    /// A series over `[START, START + values.len() × period)`; `None` is a missing datapoint.
    fn series(period: i64, values: &[Option<f64>]) -> Vec<Datapoint> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some(Datapoint { time: START + i as i64 * period, value: (*v)? }))
            .collect()
    }

    fn history(period: i64, n: usize, series: [(&str, Vec<Datapoint>); 3]) -> History {
        History {
            start: START,
            end: START + n as i64 * period,
            period,
            capacity_period: period,
            series: series.into_iter().map(|(id, points)| (id.to_owned(), points)).collect(),
        }
    }

    #[test]
    fn an_average_becomes_load_over_the_instances_in_service_and_gaps_are_reported_not_filled() {
        let cpu = [Some(40.0), Some(70.0), Some(40.0), None, None, None, Some(40.0), Some(40.0)];
        let in_service = [4.0, 4.0, 4.0, 4.0, 4.0, 6.0, 6.0, 6.0].map(Some);
        let desired = [Some(4.0), Some(4.0), Some(4.0), Some(4.0), Some(6.0), Some(6.0), None, Some(6.0)];
        let history = history(
            60,
            8,
            [
                ("m_cpu", series(60, &cpu)),
                (DESIRED, series(60, &desired)),
                (IN_SERVICE, series(60, &in_service)),
            ],
        );
        let replay = replay(&policy("Average", r#"{"average": 50}"#), "web", &history, None, 0.2).unwrap();

        let loads: Vec<(i64, Option<f64>)> = replay.trace.rows.iter().map(|r| (r.time, r.load)).collect();
        assert_eq!(
            loads,
            [
                (0, Some(160.0)),
                (60, Some(280.0)),
                (120, Some(160.0)),
                (180, None),
                (240, None),
                (300, None),
                (360, Some(240.0)),
                (420, Some(240.0)),
                (480, Some(240.0)),
            ],
            "the load metric derives the load; the gap stays a gap; the last period holds to the end"
        );
        assert!(replay.trace.metric_ids.is_empty() && replay.trace.has_load);
        assert_eq!(replay.capacity_per_instance, Some(100.0));
        assert_eq!(replay.initial_capacity, 4);
        assert_eq!(
            replay.actual,
            Outcome {
                name: "actual".into(),
                // 4 instances for 4 minutes, 6 for 4 (the missing minute held at 6).
                instance_hours: (4.0 * 4.0 + 6.0 * 4.0) / 60.0,
                // 70 is above 50 × 1.2 for one minute.
                seconds_above_target: Some(60),
                scaling_actions: 1,
                peak_capacity: 6,
            }
        );
        let cpu_gaps = &replay.gaps[0];
        assert_eq!(
            (cpu_gaps.missing_periods, cpu_gaps.gaps, cpu_gaps.longest_seconds, cpu_gaps.longest_start),
            (3, 1, 180, Some(START + 180))
        );
        assert_eq!(
            (replay.gaps[1].series.as_str(), replay.gaps[1].missing_periods),
            ("GroupDesiredCapacity", 1)
        );
        assert_eq!(replay.gaps[2].missing_periods, 0);
        assert_eq!(replay.recorded[6], (360, 6, 6));

        let table =
            render("web", (START, history.end), 60, &replay, std::slice::from_ref(&replay.actual), 0.2);
        assert!(
            table.contains("gaps in cpu: 3 periods of 60 s missing in 1 gap(s), the longest 3 min"),
            "{table}"
        );
        assert!(table.contains("load from cpu: load = metric × instances in service"), "{table}");
        assert!(!table.contains("gaps in GroupInServiceInstances"), "{table}");
    }

    #[test]
    fn a_predictive_policy_replays_the_days_before_the_window_as_history() {
        let window = history(
            60,
            2,
            [
                ("m_cpu", series(60, &[Some(40.0), Some(40.0)])),
                (DESIRED, series(60, &[Some(4.0), Some(4.0)])),
                (IN_SERVICE, series(60, &[Some(4.0), Some(4.0)])),
            ],
        );
        // Twenty minutes before the window at 300 s: the metric missing once, the
        // instances in service once (that load is unknown too).
        let shifted = |points: Vec<Datapoint>| -> Vec<Datapoint> {
            points.into_iter().map(|p| Datapoint { time: p.time - 1200, ..p }).collect()
        };
        let before = History {
            start: START - 1200,
            end: START,
            period: 300,
            capacity_period: 300,
            series: [
                ("m_cpu", shifted(series(300, &[Some(30.0), None, Some(30.0), Some(60.0)]))),
                (DESIRED, shifted(series(300, &[Some(2.0), Some(2.0), Some(2.0), Some(2.0)]))),
                (IN_SERVICE, shifted(series(300, &[Some(2.0), Some(2.0), None, Some(2.0)]))),
            ]
            .into_iter()
            .map(|(id, points)| (id.to_owned(), points))
            .collect(),
        };
        let policy = policy_with(
            "Average",
            r#"{"average": 50}"#,
            r#", "predictive": {"mode": "forecast_and_scale", "history_days": 1}"#,
        );
        let replay = replay(&policy, "web", &window, Some(&before), 0.2).unwrap();
        let loads: Vec<(i64, Option<f64>)> = replay.trace.rows.iter().map(|r| (r.time, r.load)).collect();
        assert_eq!(
            loads,
            [
                (-1200, Some(60.0)),
                (-900, None),
                (-600, None),
                (-300, Some(120.0)),
                (0, Some(160.0)),
                (60, Some(160.0)),
                (120, Some(160.0))
            ]
        );
        // Only the window is scored: the 60 before it is not above target in the window.
        assert_eq!(replay.actual.seconds_above_target, Some(0));
        assert_eq!(replay.actual.instance_hours, 8.0 / 60.0);
        let named: Vec<(&str, usize)> =
            replay.gaps.iter().map(|g| (g.series.as_str(), g.missing_periods)).collect();
        assert_eq!(
            named,
            [
                ("cpu before the window", 1),
                ("GroupInServiceInstances before the window", 1),
                ("cpu", 0),
                ("GroupDesiredCapacity", 0),
                ("GroupInServiceInstances", 0)
            ]
        );
        // The simulator takes it: rows before 0 are its history.
        let config = SimulationConfig {
            initial_capacity: replay.initial_capacity,
            capacity_per_instance: replay.capacity_per_instance,
            ..SimulationConfig::default()
        };
        let run = simulate::run(&policy, &replay.trace, &config, Controller::Engine).unwrap();
        assert_eq!(run.ticks.first().map(|t| t.time), Some(0));
    }

    #[test]
    fn a_sum_read_at_a_coarser_period_is_load_per_policy_period() {
        // Five minutes of 600 requests a minute, read at 300 s: 3000 per datapoint.
        let history = history(
            300,
            2,
            [
                ("m_cpu", series(300, &[Some(3000.0), Some(1500.0)])),
                (DESIRED, series(300, &[Some(4.0), Some(4.0)])),
                (IN_SERVICE, series(300, &[Some(4.0), Some(4.0)])),
            ],
        );
        let replay = replay(&policy("Sum", r#"{"per_instance": 100}"#), "web", &history, None, 0.2).unwrap();
        let loads: Vec<Option<f64>> = replay.trace.rows.iter().map(|r| r.load).collect();
        assert_eq!(loads, [Some(600.0), Some(300.0), Some(300.0)]);
        // 600 / 4 = 150 per instance is above 120; 75 is not.
        assert_eq!(replay.actual.seconds_above_target, Some(300));
        assert_eq!(replay.load.unwrap().model, "load = metric");
    }

    #[test]
    fn without_capacity_history_it_says_how_to_turn_group_metrics_on() {
        let history = history(
            60,
            2,
            [
                ("m_cpu", series(60, &[Some(40.0), Some(40.0)])),
                (DESIRED, Vec::new()),
                (IN_SERVICE, Vec::new()),
            ],
        );
        let error = replay(&policy("Average", r#"{"average": 50}"#), "web", &history, None, 0.2).unwrap_err();
        assert_eq!(
            error,
            BacktestError::NoCapacityHistory { group: "web".into(), missing: "GroupDesiredCapacity" }
        );
        assert!(
            error.to_string().contains(
                "aws autoscaling enable-metrics-collection --auto-scaling-group-name web --granularity 1Minute"
            ),
            "{error}"
        );

        let no_metric = history_with_capacity_only();
        assert_eq!(
            replay(&policy("Average", r#"{"average": 50}"#), "web", &no_metric, None, 0.2).unwrap_err(),
            BacktestError::NoMetricData { ids: "cpu".into() }
        );
    }

    fn history_with_capacity_only() -> History {
        history(
            60,
            1,
            [
                ("m_cpu", Vec::new()),
                (DESIRED, series(60, &[Some(2.0)])),
                (IN_SERVICE, series(60, &[Some(2.0)])),
            ],
        )
    }

    #[test]
    fn history_is_read_at_the_finest_period_cloudwatch_keeps_for_its_age() {
        let day = 86_400;
        assert_eq!(history_period(10, 2 * 3600), Ok(10), "high resolution for 3 hours");
        assert_eq!(history_period(10, day), Ok(60));
        assert_eq!(history_period(60, 7 * day), Ok(60));
        assert_eq!(history_period(120, 30 * day), Ok(300), "a multiple of 5 minutes after 15 days");
        assert_eq!(history_period(600, 30 * day), Ok(600));
        assert_eq!(history_period(60, 100 * day), Ok(3600));
        assert_eq!(history_period(60, 500 * day), Err(BacktestError::BeyondRetention { days: 500 }));
    }

    #[test]
    fn the_window_is_whole_periods_no_older_than_asked() {
        // The window ends at the last whole period published by now (A seconds after it).
        const A: i64 = PUBLICATION_ALLOWANCE_SECONDS;
        assert_eq!(window(START + 90 + A, 86_400, 60), (START - 86_400 + 120 + A, START + 60, 60));
        assert_eq!(window(START + A, 86_400, 60), (START - 86_400 + A, START, 60));
        assert_eq!(
            window(START + 10 + A, 3600, 10),
            (START - 3600 + 60 + A, START, 60),
            "capacity is per minute"
        );
        assert_eq!(
            window(START + 400 + A, 30 * 86_400, 300),
            (START - 30 * 86_400 + 600 + A, START + 300, 300)
        );
    }

    #[test]
    fn ages_parse_with_a_unit() {
        assert_eq!(parse_age("7d"), Ok(7 * 86_400));
        assert_eq!(parse_age("36h"), Ok(36 * 3600));
        assert_eq!(parse_age("90m"), Ok(5400));
        assert_eq!(parse_age("600s"), Ok(600));
        for bad in ["7", "d", "0d", "-1d", "7w", "1.5d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    /// Answers every query with a datapoint a minute over the window asked, one minute
    /// before it too (which a reader must drop), and records the windows.
    #[derive(Default)]
    struct Minutely {
        windows: Mutex<Vec<(i64, i64)>>,
    }

    impl MetricsSource for Minutely {
        async fn datapoints(
            &self,
            queries: &[(String, Query)],
            start: std::time::SystemTime,
            end: std::time::SystemTime,
        ) -> Result<BTreeMap<String, Vec<Datapoint>>, AwsError> {
            let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let (start, end) = (secs(start), secs(end));
            self.windows.lock().unwrap().push((start, end));
            let mut points: Vec<Datapoint> =
                (start - 60..end).step_by(60).map(|time| Datapoint { time, value: 1.0 }).collect();
            // Newest first, as the adapter asks CloudWatch for them.
            points.reverse();
            Ok(queries.iter().map(|(id, _)| (id.clone(), points.clone())).collect())
        }
    }

    #[test]
    fn history_is_read_a_day_a_call_with_progress_and_comes_back_sorted_within_the_window() {
        let source = Minutely::default();
        let policy = policy("Average", r#"{"average": 50}"#);
        let queries = queries(&policy, "web", 60, 60);
        assert_eq!(
            queries.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["m_cpu", DESIRED, IN_SERVICE]
        );
        let end = START + 2 * 86_400 + 3600;
        let mut days = Vec::new();
        let history = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(fetch(&source, &queries, (START, end, 60), 60, |day, of, _| days.push((day, of))))
            .unwrap();
        assert_eq!(
            *source.windows.lock().unwrap(),
            [(START, START + 86_400), (START + 86_400, START + 2 * 86_400), (START + 2 * 86_400, end)]
        );
        assert_eq!(days, [(1, 3), (2, 3), (3, 3)]);
        let times: Vec<i64> = history.series[DESIRED].iter().map(|p| p.time).collect();
        assert_eq!(times, (START..end).step_by(60).collect::<Vec<_>>());
    }
}

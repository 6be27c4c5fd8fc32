//! `make bench-control`: the engine against the AWS target-tracking emulation on the
//! project's seeded traces, through both metric pipelines, with slow and fast boots, on
//! the same simulated data. Prints a table and checks the issue's targets (exit 1 if one
//! is missed, with the numbers).

use metric_poller::policy::{GroupPolicy, PolicyFormat, parse_policy_text};
use metric_poller::simulate::cloudwatch::Publication;
use metric_poller::simulate::{Controller, Score, SimulationConfig, run, traces};

const CAPACITY_PER_INSTANCE: f64 = 100.0;
const TARGET: f64 = 50.0;
const SEED: u64 = 11;

/// A metric pipeline: the metric's period and CloudWatch's publication lag after it.
struct Pipeline {
    name: &'static str,
    period: i64,
    lag: (i64, i64),
}

const PIPELINES: [Pipeline; 2] = [
    // Standard (EC2 detailed monitoring, load balancer) metrics: readable 60-90 s after the period.
    Pipeline { name: "60 s, lag 60-90", period: 60, lag: (60, 90) },
    // High-resolution custom metrics: readable about 10 s after the period.
    Pipeline { name: "10 s, lag 8-12", period: 10, lag: (8, 12) },
];
const BOOTS: [i64; 2] = [120, 40];

fn policy(period: i64) -> GroupPolicy {
    let text = format!(
        r#"{{"groups": [{{"name": "bench", "min_capacity": 1, "max_capacity": 1000,
        "metrics": [{{"id": "cpu", "saturation": 100,
          "query": {{"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "period_seconds": {period}}},
          "target": {{"average": {TARGET}}}}}],
        "predictive": {{"mode": "forecast_and_scale"}}}}]}}"#
    );
    parse_policy_text(&text, PolicyFormat::Json).expect("the benchmark's policy").groups.remove(0)
}

struct Cell {
    trace: &'static str,
    pipeline: &'static str,
    boot: i64,
    engine: Score,
    aws: Score,
}

fn violation(score: &Score) -> i64 {
    score.slo_violation_seconds.unwrap_or(0)
}

fn main() {
    let mut cells = Vec::new();
    for (name, trace) in traces::all(SEED) {
        let first_load = trace.rows.iter().find(|r| r.time >= 0).and_then(|r| r.load).unwrap_or(0.0);
        let initial = (first_load * 100.0 / CAPACITY_PER_INSTANCE / TARGET).ceil() as i32;
        for pipeline in &PIPELINES {
            let policy = policy(pipeline.period);
            for boot in BOOTS {
                let config = SimulationConfig {
                    initial_capacity: initial.max(1),
                    group_min: 1,
                    group_max: 1000,
                    capacity_per_instance: Some(CAPACITY_PER_INSTANCE),
                    boot_seconds: (boot, boot),
                    publication: Publication { lag: pipeline.lag, partial: false, seed: SEED },
                    ..SimulationConfig::default()
                };
                let score = |controller| run(&policy, &trace, &config, controller).expect("a run").score;
                cells.push(Cell {
                    trace: name,
                    pipeline: pipeline.name,
                    boot,
                    engine: score(Controller::Engine),
                    aws: score(Controller::AwsTargetTracking),
                });
            }
        }
    }

    println!(
        "| trace | pipeline | boot | SLO-violation s, engine / AWS | instance-hours, engine / AWS | direction changes, engine / AWS | time to capacity (mean s), engine / AWS |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mean = |s: &Score| s.mean_time_to_capacity.map_or("-".to_owned(), |m| format!("{m:.0}"));
    for c in &cells {
        println!(
            "| {} | {} | {} s | {} / {} | {:.1} / {:.1} | {} / {} | {} / {} |",
            c.trace,
            c.pipeline,
            c.boot,
            violation(&c.engine),
            violation(&c.aws),
            c.engine.instance_hours,
            c.aws.instance_hours,
            c.engine.direction_changes,
            c.aws.direction_changes,
            mean(&c.engine),
            mean(&c.aws),
        );
    }

    // The targets. A ratio of violation seconds is taken with one second added to each
    // side, so that a cell where the engine has none counts (as a finite gain).
    let counted: Vec<&Cell> = cells.iter().filter(|c| violation(&c.engine) + violation(&c.aws) > 0).collect();
    let log_sum: f64 = counted
        .iter()
        .map(|c| ((violation(&c.aws) + 1) as f64 / (violation(&c.engine) + 1) as f64).ln())
        .sum();
    let gain = (log_sum / counted.len().max(1) as f64).exp();
    let hours = |f: fn(&Cell) -> &Score| cells.iter().map(|c| f(c).instance_hours).sum::<f64>();
    let hours_ratio = hours(|c| &c.engine) / hours(|c| &c.aws);
    let worst_hours = cells
        .iter()
        .map(|c| (c.engine.instance_hours / c.aws.instance_hours, c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("cells");
    let hours_geomean =
        (cells.iter().map(|c| (c.engine.instance_hours / c.aws.instance_hours).ln()).sum::<f64>()
            / cells.len() as f64)
            .exp();
    let noisy_changes: usize =
        cells.iter().filter(|c| c.trace == "noisy").map(|c| c.engine.direction_changes).sum();
    let diurnal: Vec<f64> = cells
        .iter()
        .filter(|c| c.trace == "diurnal")
        .map(|c| violation(&c.engine) as f64 / violation(&c.aws).max(1) as f64)
        .collect();
    let diurnal_worst = diurnal.iter().copied().fold(0.0, f64::max);

    println!();
    for pipeline in &PIPELINES {
        let (requested, datapoints) = cells
            .iter()
            .filter(|c| c.pipeline == pipeline.name)
            .map(|c| {
                (
                    c.engine.metrics_requested,
                    c.engine.ticks as i64 * SimulationConfig::default().tick_seconds / pipeline.period,
                )
            })
            .fold((0, 0), |(r, d), (cr, cd)| (r + cr, d + cd));
        println!(
            "GetMetricData reads per datapoint, {}: {:.2} ({requested} metrics requested for {datapoints} datapoints)",
            pipeline.name,
            requested as f64 / datapoints.max(1) as f64
        );
    }
    println!();
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let targets = [
        (
            gain >= 2.0,
            format!(
                "SLO-violation seconds: AWS / engine, geometric mean over {} cells = {gain:.2} (target >= 2)",
                counted.len()
            ),
        ),
        (
            hours_ratio <= 1.0,
            format!(
                "instance-hours: engine / AWS over all cells = {hours_ratio:.3} (target <= 1.0); per cell: geometric mean {hours_geomean:.3}, highest {:.3} ({}, {}, {} s)",
                worst_hours.0, worst_hours.1.trace, worst_hours.1.pipeline, worst_hours.1.boot
            ),
        ),
        (
            noisy_changes == 0,
            format!(
                "direction changes within the scale-down window on noisy load: {noisy_changes} (target 0)"
            ),
        ),
        (
            diurnal_worst <= 0.10,
            format!(
                "diurnal with 2 days of history: engine / AWS violation seconds, worst cell = {diurnal_worst:.3} (target <= 0.10)"
            ),
        ),
    ];
    let mut all_met = true;
    for (ok, line) in &targets {
        println!("{}: {line}", verdict(*ok));
        all_met &= ok;
    }
    if !all_met {
        std::process::exit(1);
    }
}

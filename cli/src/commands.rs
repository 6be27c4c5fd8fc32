use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, CommandFactory, Parser, Subcommand};
use log_processor::config::DEFAULT_MAX_LINE_BYTES;
use metric_poller::PollerConfig;
use metric_poller::engine::warmup;
use metric_poller::policy::{PolicyDocument, PolicyErrors, PolicyFormat, Selector, parse_policy_text};
use metric_poller::policy_source::PolicyLocation;
use metric_poller::simulate::cloudwatch::Publication;
use metric_poller::simulate::{self, Controller, SimulationConfig, parse_trace};
use shared::aws::{Clients, load_sdk_config};
use shared::config::Env;

use crate::help::examples;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What was being done when `source` failed; `main` prints both, and the source's causes.
#[derive(Debug)]
struct Context {
    what: String,
    source: Error,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// For `map_err`: the error as the source of `what`.
fn context<E: Into<Error>>(what: impl std::fmt::Display) -> impl FnOnce(E) -> Error {
    move |source| Box::new(Context { what: what.to_string(), source: source.into() })
}

/// Scale EC2 Auto Scaling groups on CloudWatch metrics, and turn access logs into metrics.
///
/// AWS commands use the standard AWS configuration (AWS_REGION, AWS_PROFILE, credentials,
/// AWS_ENDPOINT_URL for a local emulator).
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version, after_help = examples(&[
    ("What a day of load-balancer logs says: totals, status mix, latency percentiles", "autoscaler logs summarize 2026/11/30/*.log.gz"),
    ("Replay a metric trace through a policy and chart it", "autoscaler simulate --policy policy.json --trace cpu.csv --initial-capacity 4 --plot run.svg"),
    ("Tab completion in bash", "source <(autoscaler completions bash)"),
]))]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the metric-poller's tick against the configured AWS endpoint.
    #[command(after_help = examples(&[
        ("One tick that changes nothing, as JSON", "autoscaler poll --once --dry-run --json --policy policy.json"),
        ("Tick every 10 s until Ctrl-C, against a local emulator", "AWS_ENDPOINT_URL=http://localhost:5000 autoscaler poll --watch --interval 10"),
    ]))]
    Poll(PollArgs),
    /// Work with access logs.
    #[command(subcommand, after_help = examples(&[
        ("What local logs say, no AWS needed", "autoscaler logs summarize access.log.gz"),
        ("One S3 object through the Lambda's code path", "autoscaler logs process s3://my-logs/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/app.log.gz"),
    ]))]
    Logs(LogsCommand),
    /// Work with policy documents.
    #[command(subcommand, after_help = examples(&[
        ("Every problem of a policy, by field path", "autoscaler policy check policy.json"),
        ("The same in TOML", "autoscaler policy check policy.toml"),
    ]))]
    Policy(PolicyCommand),
    /// Backtest a policy through a simulated CloudWatch pipeline, optionally against AWS target tracking.
    #[command(after_help = examples(&[
        ("Replay a CPU trace with a chart", "autoscaler simulate --policy policy.json --trace cpu.csv --initial-capacity 4 --plot run.svg"),
        ("Closed loop on the trace's `load`: 100 per instance, 90 to 150 s to boot", "autoscaler simulate --policy policy.json --trace load.csv --initial-capacity 2 --capacity-per-instance 100 --boot-seconds 90-150"),
        ("Against an emulation of AWS target tracking, as JSON", "autoscaler simulate --policy policy.json --trace load.csv --initial-capacity 2 --capacity-per-instance 100 --compare aws-target-tracking --json"),
    ]))]
    Simulate(SimulateArgs),
    /// Replay a policy over a group's CloudWatch history, beside what the group actually did.
    #[command(long_about = crate::backtest::LONG_ABOUT, after_help = examples(&[
        ("The last week of group web, as a table", "autoscaler backtest --policy policy.json --group web --since 7d"),
        ("Against AWS target tracking, with a chart", "autoscaler backtest --policy policy.json --group web --since 7d --compare aws-target-tracking --plot week.png"),
        ("The last day, as JSON", "autoscaler backtest --policy policy.json --group web --since 1d --json"),
    ]))]
    Backtest(crate::backtest::BacktestArgs),
    /// What the poller is doing: the policy's version, the lease, and per group its capacity, last decision, scaling events and metrics' newest datapoints.
    #[command(after_help = examples(&[
        ("The poller configured by POLICY_URI and STATE_URI, as a table", "autoscaler status"),
        ("Another poller's, as JSON", "autoscaler status --policy-uri s3://my-config/policy.json --state-uri s3://my-state/poller --json"),
    ]))]
    Status(crate::status::StatusArgs),
    /// Print a shell completion script.
    #[command(after_help = examples(&[
        ("Bash, for this shell", "source <(autoscaler completions bash)"),
        ("Zsh, in a directory of $fpath", "autoscaler completions zsh > ~/.zfunc/_autoscaler"),
        ("Fish", "autoscaler completions fish > ~/.config/fish/completions/autoscaler.fish"),
    ]))]
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy document (JSON, or TOML by extension); list every problem by field
    /// path, and warn of a warmup shorter than boot plus the metrics' delay.
    #[command(after_help = examples(&[
        ("A JSON policy", "autoscaler policy check policy.json"),
        ("A TOML policy", "autoscaler policy check policy.toml"),
        ("With the group's measured boot time", "autoscaler policy check policy.json --boot-seconds 95"),
    ]))]
    Check {
        file: PathBuf,
        /// Launch to InService of the group's instances, if known (default: the poller's assumption).
        #[arg(long)]
        boot_seconds: Option<i64>,
        /// Print one JSON object (`valid`, `groups`, `warnings` and `errors` by field path).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// The policy document (JSON, or TOML by extension).
    #[arg(long)]
    policy: PathBuf,
    /// CSV with a header `time,<metric id>,...` and/or `load`; a row holds until the next;
    /// rows at negative times are history (for seasonal profiles).
    #[arg(long)]
    trace: PathBuf,
    #[arg(long)]
    initial_capacity: i32,
    /// The policy's group to simulate (by name, or its index); optional with one group.
    #[arg(long)]
    group: Option<String>,
    /// The Auto Scaling group's own minimum.
    #[arg(long, default_value_t = 0)]
    min: i32,
    /// The Auto Scaling group's own maximum.
    #[arg(long, default_value_t = 10_000)]
    max: i32,
    /// Closed loop: the `load` one instance carries at 100 % (metrics not in the trace are
    /// derived from load over the instances in service).
    #[arg(long)]
    capacity_per_instance: Option<f64>,
    /// The period being filled is readable with what has been published of it (custom
    /// metrics), instead of appearing whole after its lag.
    #[arg(long)]
    partial: bool,
    /// METRICS_END_OFFSET_SECONDS: read metrics up to this long ago.
    #[arg(long, default_value_t = 0)]
    end_offset: i64,
    #[command(flatten)]
    simulation: SimulationArgs,
    /// Print one JSON object (each run's score and ticks) instead of the table.
    #[arg(long)]
    json: bool,
    /// Write a chart of the metric, demand and capacity (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// The simulated group, CloudWatch and poller that `simulate` and `backtest` replay
/// through, and what they are compared with.
#[derive(Debug, Args)]
pub(crate) struct SimulationArgs {
    /// Seconds from launch until an instance serves: `120`, or a range `90-150` (drawn per instance).
    #[arg(long, default_value = "120", value_parser = parse_range)]
    pub boot_seconds: (i64, i64),
    /// CloudWatch's publication lag after a period ends: `60-90` (drawn per period).
    /// Default: 60-90 for periods of a minute or more, 10 for high resolution.
    #[arg(long, value_parser = parse_range)]
    pub lag: Option<(i64, i64)>,
    /// TICK_INTERVAL_SECONDS of the simulated poller.
    #[arg(long, default_value_t = 10)]
    pub tick_seconds: i64,
    /// Seed of the lag and boot draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Demand utilization above target × (1 + margin) counts as an SLO violation (time
    /// above target).
    #[arg(long, default_value_t = 0.2)]
    pub slo_margin: f64,
    /// Also run an emulation of AWS target tracking on the same data (see README).
    #[arg(long, value_parser = ["aws-target-tracking"])]
    pub compare: Option<String>,
    /// The AWS emulation's instance warmup after InService, seconds.
    #[arg(long, default_value_t = 60)]
    pub aws_warmup: i64,
}

impl SimulationArgs {
    /// The lag asked for, or CloudWatch's usual one for metrics of `shortest_period`.
    pub fn lag_or_usual(&self, shortest_period: i64) -> (i64, i64) {
        self.lag.unwrap_or(if shortest_period >= 60 { (60, 90) } else { (10, 10) })
    }

    /// The engine, and AWS's emulation when compared with.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut controllers = vec![Controller::Engine];
        if self.compare.is_some() {
            controllers.push(Controller::AwsTargetTracking);
        }
        controllers
    }
}

/// `120` or `90-150`.
pub(crate) fn parse_range(text: &str) -> Result<(i64, i64), String> {
    let parse =
        |s: &str| s.trim().parse::<i64>().map_err(|_| format!("{s:?} is not a whole number of seconds"));
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (parse(lo)?, parse(hi)?),
        None => (parse(text)?, parse(text)?),
    };
    if lo < 0 || hi < lo {
        return Err(format!("{text:?}: expected N or LOW-HIGH with 0 <= LOW <= HIGH"));
    }
    Ok((lo, hi))
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["once", "watch"])))]
struct PollArgs {
    /// Run one tick and exit.
    #[arg(long)]
    once: bool,
    /// Tick every TICK_INTERVAL_SECONDS (or --interval) until interrupted (Ctrl-C); a tick
    /// that fails (a throttled listing) is reported and the next one runs.
    #[arg(long)]
    watch: bool,
    /// Seconds between ticks with --watch.
    #[arg(long)]
    interval: Option<u64>,
    /// The policy document (a path or s3://bucket/key); overrides POLICY_URI.
    #[arg(long)]
    policy: Option<String>,
    /// Decide and print, never change a group (also DRY_RUN=true).
    #[arg(long)]
    dry_run: bool,
    /// Print each tick's summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Parse local log files (plain, gzip or zstd; `-` for stdin) and say what they hold:
    /// time range, totals, status mix, latency percentiles, request rate, top load
    /// balancers, target groups, routes, distributions. No AWS.
    #[command(after_help = examples(&[
        ("A day of ALB logs, gzip or not", "autoscaler logs summarize 2026/11/30/*.log.gz"),
        ("Requests per minute by status class and latency percentiles, as a chart", "autoscaler logs summarize --plot requests.png access.log"),
        ("The datums that would be published, from stdin", "zcat access.log.gz | autoscaler logs summarize --format alb --json -"),
    ]))]
    Summarize {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The format, or `auto` to detect it from the file name and first line.
        #[arg(long, default_value = "auto")]
        format: String,
        /// Print one JSON object instead: the exact datums that would be published.
        #[arg(long)]
        json: bool,
        /// Also chart requests per minute by status class and latency percentiles per minute
        /// (.png or .svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// Process one S3 object as the Lambda function would (idempotency markers with
    /// STATE_URI, metrics to METRICS_NAMESPACE), against the configured endpoint.
    #[command(after_help = examples(&[
        ("An ALB log object", "autoscaler logs process s3://my-logs/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/app.log.gz"),
        ("Against a local emulator, the outcome as JSON", "AWS_ENDPOINT_URL=http://localhost:5000 autoscaler logs process --json s3://my-logs/access.log"),
    ]))]
    Process {
        /// s3://bucket/key
        object: String,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Poll(args) => poll(args).await,
        Command::Logs(LogsCommand::Summarize { files, format, json, plot }) => {
            summarize(&files, &format, json, plot.as_deref())
        }
        Command::Logs(LogsCommand::Process { object, json }) => process(&object, json).await,
        Command::Policy(PolicyCommand::Check { file, boot_seconds, json }) => {
            policy_check(&file, boot_seconds, json)
        }
        Command::Simulate(args) => simulate(args),
        Command::Backtest(args) => crate::backtest::run(args).await,
        Command::Status(args) => crate::status::run(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "autoscaler", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn read_policy(file: &Path) -> Result<Result<PolicyDocument, PolicyErrors>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let is_toml = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    Ok(parse_policy_text(&text, if is_toml { PolicyFormat::Toml } else { PolicyFormat::Json }))
}

fn describe_selector(selector: &Selector) -> String {
    match selector {
        Selector::Name(name) => format!("group {name}"),
        Selector::Tags(tags) => {
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("groups tagged {}", tags.join(","))
        }
    }
}

/// A policy's check: each group's summary line, and the warnings and errors by field path.
#[derive(Debug, Default, serde::Serialize)]
struct PolicyCheck {
    valid: bool,
    groups: Vec<String>,
    warnings: Vec<FieldMessage>,
    errors: Vec<FieldMessage>,
}

#[derive(Debug, serde::Serialize)]
struct FieldMessage {
    path: String,
    message: String,
}

fn check_policy(file: &Path, boot_seconds: Option<i64>) -> Result<PolicyCheck, Error> {
    let document = match read_policy(file)? {
        Ok(document) => document,
        Err(errors) => {
            let errors =
                errors.0.into_iter().map(|e| FieldMessage { path: e.path, message: e.message }).collect();
            return Ok(PolicyCheck { valid: false, errors, ..PolicyCheck::default() });
        }
    };
    let mut check = PolicyCheck { valid: true, ..PolicyCheck::default() };
    for (i, group) in document.groups.iter().enumerate() {
        if let Some(configured) = group.instance_warmup_seconds {
            let boot = boot_seconds.unwrap_or(warmup::ASSUMED_BOOT_SECONDS);
            let delay = warmup::policy_metric_delay(group);
            if configured < boot + delay {
                check.warnings.push(FieldMessage {
                    path: format!("groups[{i}].instance_warmup_seconds"),
                    message: format!(
                        "{configured} s is shorter than boot ({boot} s{}) + the metrics' period and lag ({delay} s) = {} s: new instances would count as serving before their load shows in the metric, and scale-outs can run away; leave it unset to derive it",
                        if boot_seconds.is_some() { "" } else { ", assumed" },
                        boot + delay
                    ),
                });
            }
        }
        let metrics: Vec<&str> = group.metrics.iter().map(|m| m.id.as_str()).collect();
        let bounds = match (group.min_capacity, group.max_capacity) {
            (None, None) => "the group's own bounds".to_owned(),
            (min, max) => format!(
                "[{}, {}]",
                min.map_or("group min".into(), |m| m.to_string()),
                max.map_or("group max".into(), |m| m.to_string())
            ),
        };
        check.groups.push(format!(
            "{}: metrics {}; capacity {bounds}; scale-down window {} s{}",
            describe_selector(&group.selector),
            metrics.join(", "),
            group.behavior.scale_down.stabilization_seconds,
            if group.dry_run { "; dry run" } else { "" }
        ));
    }
    Ok(check)
}

fn policy_check(file: &Path, boot_seconds: Option<i64>, json: bool) -> Result<ExitCode, Error> {
    let check = check_policy(file, boot_seconds)?;
    if json {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, &check)?;
        writeln!(out)?;
    } else if check.valid {
        for warning in &check.warnings {
            eprintln!("warning: {}: {}", warning.path, warning.message);
        }
        for group in &check.groups {
            println!("ok: {group}");
        }
    } else {
        eprintln!("{}: {} problem(s)", file.display(), check.errors.len());
        for error in &check.errors {
            eprintln!("  {}: {}", error.path, error.message);
        }
    }
    Ok(if check.valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn simulate(args: SimulateArgs) -> Result<ExitCode, Error> {
    let document = match read_policy(&args.policy)? {
        Ok(document) => document,
        Err(errors) => return Err(format!("{}: invalid policy: {errors}", args.policy.display()).into()),
    };
    let group = match (&args.group, document.groups.len()) {
        (None, 1) => &document.groups[0],
        (None, n) => return Err(format!("the policy has {n} groups: choose one with --group").into()),
        (Some(wanted), _) => document
            .groups
            .iter()
            .enumerate()
            .find(|(i, g)| i.to_string() == *wanted || g.selector == Selector::Name(wanted.clone()))
            .map(|(_, g)| g)
            .ok_or_else(|| format!("no group {wanted:?} in the policy (give its name or index)"))?,
    };
    let text = std::fs::read_to_string(&args.trace).map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let trace = parse_trace(&text).map_err(|e| format!("{}: {e}", args.trace.display()))?;
    match args.capacity_per_instance {
        Some(_) if !trace.has_load => {
            return Err("--capacity-per-instance needs a `load` column in the trace".into());
        }
        Some(c) if c <= 0.0 => return Err("--capacity-per-instance must be positive".into()),
        _ => {}
    }
    if args.min > args.max {
        return Err(format!("--min {} is above --max {}", args.min, args.max).into());
    }
    let shortest = simulate::periods(group).into_iter().min().unwrap_or(60);
    let sim = &args.simulation;
    let lag = sim.lag_or_usual(shortest);
    let config = SimulationConfig {
        initial_capacity: args.initial_capacity,
        group_min: args.min,
        group_max: args.max,
        capacity_per_instance: args.capacity_per_instance,
        boot_seconds: sim.boot_seconds,
        publication: Publication { lag, partial: args.partial, seed: sim.seed },
        end_offset: args.end_offset,
        tick_seconds: sim.tick_seconds.max(1),
        slo_margin: sim.slo_margin,
        aws_warmup_seconds: sim.aws_warmup,
    };
    let runs = sim
        .controllers()
        .into_iter()
        .map(|c| simulate::run(group, &trace, &config, c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", args.trace.display()))?;
    if let Some(path) = &args.plot {
        crate::plot::plot(
            &runs,
            group,
            &format!("{} on {}", describe_selector(&group.selector), args.trace.display()),
            path,
        )?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &serde_json::json!({ "runs": runs }))?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} ticks of {} s; metric periods {:?} s, published {}-{} s after{}; boot {}-{} s",
            runs[0].score.ticks,
            config.tick_seconds,
            simulate::periods(group),
            lag.0,
            lag.1,
            if args.partial { " (newest period partial)" } else { "" },
            config.boot_seconds.0,
            config.boot_seconds.1
        )?;
        write!(out, "{}", simulate::score_table(&runs))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn poll(args: PollArgs) -> Result<ExitCode, Error> {
    // Registered first: a Ctrl-C during a tick (or while starting) is kept and ends the
    // loop after the tick; a listener created only at the sleep would miss it, and the
    // process would then ignore Ctrl-C for good.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut config = PollerConfig::from_env(&Env::from_process())?;
    config.dry_run |= args.dry_run;
    if let Some(policy) = &args.policy {
        config.policy = Some(PolicyLocation::parse(policy)?);
    }
    if let Some(interval) = args.interval {
        config.tick_interval = Duration::from_secs(interval.max(1));
    }
    let interval = config.tick_interval;
    let clients = Clients::new(&load_sdk_config(metric_poller::RETRY).await, config.s3_force_path_style);
    let poller = metric_poller::build(&clients, config)?;
    let owner = format!("autoscaler-cli-{}", std::process::id());
    loop {
        let tick = poller.tick_with_lease(&owner, SystemTime::now(), 2 * interval.as_secs() as i64).await;
        match tick {
            Ok(tick) if args.json => println!("{}", serde_json::to_string(&tick)?),
            Ok(tick) => print!("{tick}"),
            Err(err) if args.once => {
                poller.release_lease(&owner).await;
                return Err(err.into());
            }
            // As on Lambda, a failed tick (a throttled listing) fails alone: watch goes on.
            Err(err) => eprintln!("tick failed: {}", shared::error::error_chain(&err)),
        }
        if args.once {
            poller.release_lease(&owner).await;
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => {
                poller.release_lease(&owner).await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn summarize(files: &[PathBuf], format: &str, json: bool, plot: Option<&Path>) -> Result<ExitCode, Error> {
    let format = match format {
        "auto" => None,
        name => Some(name.parse::<log_processor::Format>()?),
    };
    let plot =
        plot.map(|path| crate::logs_plot::Output::new(path).map_err(context(path.display()))).transpose()?;
    let mut summarizer = log_processor::Summarizer::default();
    // Per-route metrics as the Lambda would publish them (README, Per-route metrics).
    summarizer.set_routes(log_processor::routes::from_env(&Env::from_process())?);
    // The Lambda's caps on hostile content (README, Hostile input), from the same variables.
    summarizer.set_caps(log_processor::config::Caps::from_env(&Env::from_process())?);
    for file in files {
        let input: Box<dyn Read + Send> = if file.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            let opened = File::open(file).map_err(context(file.display()))?;
            let size = opened.metadata().map_or(0, |m| m.len());
            if size >= PROGRESS_MIN_BYTES && io::stderr().is_terminal() {
                Box::new(Progress::new(opened, size, file.display().to_string()))
            } else {
                Box::new(opened)
            }
        };
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let options = log_processor::ReadOptions {
            key: name,
            format,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            ..Default::default()
        };
        summarizer.read(input, &options).map_err(context(file.display()))?;
    }
    let summary = summarizer.finish();
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        out.write_all(crate::summary::render(&summary, terminal_width(), now).as_bytes())?;
    }
    if let Some(output) = &plot {
        let title = match files {
            [file] => file.file_name().map_or("stdin".into(), |name| name.to_string_lossy()).into_owned(),
            _ => format!("{} files", files.len()),
        };
        let format = summary.format.map_or("mixed", |f| f.name());
        let metrics = crate::summary::Metrics::new(&summary);
        crate::logs_plot::plot(&metrics, &format!("{title} ({format})"), output)
            .map_err(context(output.path().display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `COLUMNS`, else the width of the terminal on stdout, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| usize::from(w.0)))
        .unwrap_or(80)
}

/// Files at least this large get a progress line on stderr (when it is a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// A reader that redraws `name: read / total MB (percent)` on stderr, at most ten times a second.
struct Progress<R> {
    inner: R,
    read: u64,
    total: u64,
    name: String,
    drawn: std::time::Instant,
    /// A progress line is on stderr without its newline yet.
    open_line: bool,
}

impl<R> Progress<R> {
    fn new(inner: R, total: u64, name: String) -> Self {
        Self { inner, read: 0, total, name, drawn: std::time::Instant::now(), open_line: false }
    }

    fn draw(&mut self, done: bool) {
        self.open_line = !done;
        let mb = |b: u64| b as f64 / 1e6;
        let percent = if self.total == 0 { 100.0 } else { 100.0 * self.read as f64 / self.total as f64 };
        eprint!(
            "\r{}: {:.0} / {:.0} MB ({percent:.0} %){}",
            self.name,
            mb(self.read),
            mb(self.total),
            if done { "\n" } else { "" }
        );
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n == 0 {
            self.draw(true);
        } else if self.drawn.elapsed() >= Duration::from_millis(100) {
            self.drawn = std::time::Instant::now();
            self.draw(false);
        }
        Ok(n)
    }
}

/// A read that failed midway leaves the line open: end it, so the error starts a line.
impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        if self.open_line {
            eprintln!();
        }
    }
}

async fn process(object: &str, json: bool) -> Result<ExitCode, Error> {
    let uri: shared::s3uri::S3Uri = object.parse()?;
    let config = log_processor::ProcessorConfig::from_env(&Env::from_process())?;
    let clients = Clients::new(&load_sdk_config(log_processor::RETRY).await, config.s3_force_path_style);
    let processor =
        log_processor::Processor::new(log_processor::S3Objects::new(clients.s3.clone()), &clients, config);
    let owner = format!("autoscaler-cli-{}", std::process::id());
    let outcome =
        processor.process_object(&log_processor::ObjectRef::new(uri.bucket, uri.key), &owner, None).await?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(ExitCode::SUCCESS)
}

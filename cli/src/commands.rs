use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use log_processor::config::DEFAULT_MAX_LINE_BYTES;
use metric_poller::{AutoScalingGroups, CloudWatchMetrics, Poller, PollerConfig};
use shared::aws::{Clients, load_sdk_config};
use shared::config::Env;
use shared::metrics::DatumValue;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Scale EC2 Auto Scaling groups on CloudWatch metrics, and turn access logs into metrics.
///
/// AWS commands use the standard AWS configuration (AWS_REGION, AWS_PROFILE, credentials,
/// AWS_ENDPOINT_URL for a local emulator).
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the metric-poller's tick against the configured AWS endpoint.
    Poll(PollArgs),
    /// Work with access logs.
    #[command(subcommand)]
    Logs(LogsCommand),
}

#[derive(Debug, Args)]
struct PollArgs {
    /// Run one tick and exit (otherwise tick every --interval seconds until interrupted).
    #[arg(long)]
    once: bool,
    /// Seconds between ticks.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Decide and print, never change a group (also DRY_RUN=true).
    #[arg(long)]
    dry_run: bool,
    /// Print each tick's summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Parse a local log file (plain or gzip; `-` for stdin) and print the metrics it yields. No AWS.
    Summarize {
        file: PathBuf,
        /// Print one JSON object: the exact datums that would be published.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Poll(args) => poll(args).await,
        Command::Logs(LogsCommand::Summarize { file, json }) => summarize(&file, json),
    }
}

async fn poll(args: PollArgs) -> Result<ExitCode, Error> {
    let mut config = PollerConfig::from_env(&Env::from_process())?;
    config.dry_run |= args.dry_run;
    let clients = Clients::new(&load_sdk_config().await, config.s3_force_path_style);
    let poller = Poller::new(
        AutoScalingGroups::new(clients.autoscaling),
        CloudWatchMetrics::new(clients.cloudwatch),
        config,
    );
    loop {
        let summary = poller.tick(SystemTime::now()).await?;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            print!("{summary}");
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
    }
}

fn summarize(file: &PathBuf, json: bool) -> Result<ExitCode, Error> {
    let input: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(file).map_err(|e| format!("{}: {e}", file.display()))?)
    };
    let summary = log_processor::summarize(input, DEFAULT_MAX_LINE_BYTES)?;
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "format {}: {} records, {} malformed, {} skipped, {} datums",
        summary.format,
        summary.records,
        summary.malformed,
        summary.skipped,
        summary.metrics.len()
    )?;
    writeln!(out, "{:<20} {:<40} {:<20} {:>12}", "minute (UTC s)", "dimensions", "metric", "value")?;
    for datum in &summary.metrics {
        let dims: Vec<String> = datum.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let value = match &datum.value {
            DatumValue::Single { value } => format!("{value}"),
            DatumValue::Distribution { counts, .. } => format!("{} samples", counts.iter().sum::<f64>()),
        };
        writeln!(out, "{:<20} {:<40} {:<20} {:>12}", datum.timestamp, dims.join(","), datum.name, value)?;
    }
    Ok(ExitCode::SUCCESS)
}

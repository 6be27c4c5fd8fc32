//! `autoscaler`: the lambda-autoscaler functions' library code, at a terminal.

mod backtest;
mod commands;
mod help;
mod logs_plot;
mod plot;
mod status;
mod summary;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    shared::telemetry::init_tracing();
    let cli = commands::Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            // The whole chain: the cause (a throttle, a truncated stream) is in the sources.
            eprintln!("error: {}", shared::error::error_chain(&*err));
            ExitCode::FAILURE
        }
    }
}

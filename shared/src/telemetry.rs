//! Tracing set-up: JSON records on Lambda (one object per line, which CloudWatch Logs
//! indexes), compact human-readable lines on a terminal. Both go to stderr so that stdout
//! stays free for command output and Embedded Metric Format records.

use tracing_subscriber::EnvFilter;

pub fn init_tracing() {
    // RUST_LOG wins; on Lambda the function's log-level setting arrives as AWS_LAMBDA_LOG_LEVEL.
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().filter(|l| !l.is_empty())?;
            EnvFilter::try_new(level.to_lowercase()).ok()
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().flatten_event(true).with_current_span(false).with_ansi(false).init();
    } else {
        builder.compact().init();
    }
}

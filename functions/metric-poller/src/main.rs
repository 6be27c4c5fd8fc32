use lambda_runtime::{Error, run, service_fn};
use metric_poller::PollerConfig;
use shared::aws::{Clients, load_sdk_config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = PollerConfig::from_env(&Env::from_process())?;
    let clients = Clients::new(&load_sdk_config(metric_poller::RETRY).await, config.s3_force_path_style);
    let poller = metric_poller::build(&clients, config)?;
    run(service_fn(|event| poller.handle(event))).await
}

use lambda_runtime::{Error, run, service_fn};
use log_processor::{Processor, ProcessorConfig, S3Objects};
use shared::aws::{Clients, load_sdk_config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = ProcessorConfig::from_env(&Env::from_process())?;
    let clients = Clients::new(&load_sdk_config(log_processor::RETRY).await, config.s3_force_path_style);
    let processor = Processor::new(S3Objects::new(clients.s3.clone()), &clients, config);
    run(service_fn(|event| processor.handle(event))).await
}

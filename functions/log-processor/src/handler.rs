//! The Lambda handler: a delivery (direct S3, SNS, SQS or EventBridge) decoded into
//! objects, each taken through the pipeline (`pipeline.rs`), and the invocation's answer:
//! a per-event summary, a `batchItemFailures` list for SQS, or an error Lambda retries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::store::JsonStore;

use crate::ProcessorConfig;
use crate::aws::CloudWatchMetrics;
use crate::event::{self, Delivery, Item};
use crate::idempotency::{MarkerStore, Markers};
use crate::own_metrics::object_record;
use crate::pipeline::{MetricsSink, ObjectOutcome, ObjectSource};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{failed} of {total} items failed; first: {first}")]
    Partial { failed: usize, total: usize, first: String },
}

impl From<ProcessError> for lambda_runtime::Diagnostic {
    fn from(err: ProcessError) -> Self {
        Self {
            error_type: "ProcessError.Partial".to_owned(),
            error_message: shared::error::error_chain(&err),
        }
    }
}

/// The handler's result for a direct, SNS or EventBridge invocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventSummary {
    pub objects: Vec<ObjectOutcome>,
    pub ignored: Vec<String>,
}

/// The handler, over where objects come from (`S`), where metrics go (`P`) and where
/// the idempotency markers are kept (`M`). Its parts are the pipeline's too
/// (`pipeline.rs`), hence visible to the crate.
pub struct Processor<S, P = CloudWatchMetrics, M = JsonStore> {
    pub(crate) objects: S,
    pub(crate) metrics: P,
    pub(crate) markers: Option<Markers<M>>,
    /// Uploads the normalized output (`OUTPUT_URI`).
    pub(crate) s3: aws_sdk_s3::Client,
    /// Where `METRICS_MODE=emf` writes its records: stdout, which Lambda sends to
    /// CloudWatch Logs.
    pub(crate) emf_out: EmfOut,
    pub(crate) config: ProcessorConfig,
    /// Seconds since the epoch, for CloudWatch's timestamp window.
    pub(crate) clock: fn() -> i64,
}

/// A writer for EMF records, shared by the objects of an invocation.
pub type EmfOut = Arc<std::sync::Mutex<Box<dyn std::io::Write + Send>>>;

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl<S: ObjectSource> Processor<S> {
    /// The processor on AWS: metrics by PutMetricData, markers under `STATE_URI`.
    pub fn new(objects: S, clients: &shared::aws::Clients, config: ProcessorConfig) -> Self {
        let markers = config.state.as_ref().map(|uri| JsonStore::new(clients.s3.clone(), uri));
        let metrics = CloudWatchMetrics::new(clients.cloudwatch.clone());
        Self::with_parts(objects, metrics, markers, clients.s3.clone(), config)
    }
}

impl<S: ObjectSource, P: MetricsSink, M: MarkerStore> Processor<S, P, M> {
    /// `markers`: `None` without `STATE_URI`. `s3` uploads the normalized output.
    pub fn with_parts(
        objects: S,
        metrics: P,
        markers: Option<M>,
        s3: aws_sdk_s3::Client,
        config: ProcessorConfig,
    ) -> Self {
        if markers.is_none() {
            tracing::warn!("STATE_URI is not set: a redelivered event publishes its metrics again");
        }
        let emf_out: EmfOut = Arc::new(std::sync::Mutex::new(Box::new(std::io::stdout())));
        Self { objects, metrics, markers: markers.map(Markers::new), s3, emf_out, config, clock: unix_now }
    }

    /// The time CloudWatch's timestamp window is judged by (tests replaying old logs).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// EMF records go to `out` instead of stdout.
    pub fn with_emf_output(mut self, out: EmfOut) -> Self {
        self.emf_out = out;
        self
    }

    /// The Lambda entry point. Direct, SNS and EventBridge deliveries: every item is
    /// attempted, and the invocation fails if any failed (Lambda retries it; markers keep
    /// the ones that succeeded from publishing twice). SQS batches: answered with
    /// `batchItemFailures`, so that only the failed messages come back.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, ProcessError> {
        let deadline = deadline_of(&event.context);
        let owner = event.context.request_id.clone();
        match event::parse(&event.payload) {
            Delivery::Items(items) => {
                let total = items.len();
                let mut summary = EventSummary::default();
                let mut failures = Vec::new();
                for item in items {
                    match self.process_item(item, &owner, deadline).await {
                        Ok(ItemResult::Object(outcome)) => summary.objects.push(outcome),
                        Ok(ItemResult::Ignored(why)) => summary.ignored.push(why),
                        Err(message) => failures.push(message),
                    }
                }
                if let Some(first) = failures.first() {
                    return Err(ProcessError::Partial {
                        failed: failures.len(),
                        total,
                        first: first.clone(),
                    });
                }
                Ok(serde_json::to_value(summary).expect("summary serializes"))
            }
            Delivery::Sqs(messages) => {
                let mut failed = Vec::new();
                for message in messages {
                    let mut ok = true;
                    for item in message.items {
                        ok &= self.process_item(item, &owner, deadline).await.is_ok();
                    }
                    if !ok {
                        failed.push(serde_json::json!({"itemIdentifier": message.message_id}));
                    }
                }
                Ok(serde_json::json!({"batchItemFailures": failed}))
            }
        }
    }

    async fn process_item(
        &self,
        item: Item,
        owner: &str,
        deadline: Option<SystemTime>,
    ) -> Result<ItemResult, String> {
        match item {
            Item::Ignored(why) => {
                tracing::info!(why, "acknowledged and ignored");
                Ok(ItemResult::Ignored(why))
            }
            Item::Invalid(error) => {
                tracing::error!(%error, "invalid notification record");
                Err(error.to_string())
            }
            Item::Object(object) => match self.process_object(&object, owner, deadline).await {
                Ok(outcome) => {
                    if let Some(function) = &self.config.function_name {
                        println!("{}", object_record(function, Some(&outcome), unix_now() as u64 * 1000));
                    }
                    Ok(ItemResult::Object(outcome))
                }
                Err(error) => {
                    if let Some(function) = &self.config.function_name {
                        println!("{}", object_record(function, None, unix_now() as u64 * 1000));
                    }
                    let message = format!(
                        "s3://{}/{}: {}",
                        object.bucket,
                        object.key,
                        shared::error::error_chain(&error)
                    );
                    tracing::error!(
                        bucket = %object.bucket, key = %object.key, retryable = error.retryable(),
                        error = %message, "object failed"
                    );
                    Err(message)
                }
            },
        }
    }
}

enum ItemResult {
    Object(ObjectOutcome),
    Ignored(String),
}

/// The invocation's deadline; `None` when the context has none usable (local emulators).
fn deadline_of(context: &lambda_runtime::Context) -> Option<SystemTime> {
    let deadline = UNIX_EPOCH + Duration::from_millis(context.deadline);
    (deadline > SystemTime::now()).then_some(deadline)
}

//! The log-processor: reads log objects as they land in S3, aggregates them into
//! per-minute metrics and publishes those to CloudWatch.
//!
//! [`summarize`] is the whole read-decompress-parse-aggregate pipeline over any reader;
//! the Lambda handler feeds it S3 object streams and the CLI feeds it local files.

mod aggregate;
pub mod alb;
pub mod config;
pub mod event;
mod fields;
mod lines;

pub use config::ProcessorConfig;
pub use event::ObjectRef;

use std::future::Future;
use std::io::{self, BufRead, BufReader, Read};

use aws_lambda_events::s3::S3Event;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use shared::AwsError;
use shared::metrics::Datum;
use tokio::io::AsyncRead;

use crate::aggregate::Aggregator;
use crate::alb::AlbParse;
use crate::lines::{Line, Lines};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What one log yields.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub format: &'static str,
    /// Entries parsed and counted.
    pub records: u64,
    /// Lines that could not be parsed (counted, never fatal).
    pub malformed: u64,
    /// Lines that are valid but not requests (other entry types, blank lines).
    pub skipped: u64,
    pub metrics: Vec<Datum>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading failed after line {line} ({records} records read)")]
pub struct ReadError {
    pub line: u64,
    pub records: u64,
    #[source]
    pub source: io::Error,
}

/// Reads a whole log (gzip or plain, detected from its first bytes) and aggregates it.
/// Memory stays bounded by the line limit and the number of distinct minutes.
pub fn summarize(reader: impl Read, max_line_bytes: usize) -> Result<Summary, ReadError> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let is_gzip = buffered
        .fill_buf()
        .map_err(|source| ReadError { line: 0, records: 0, source })?
        .starts_with(&GZIP_MAGIC);
    let text: Box<dyn BufRead> = if is_gzip {
        // Multi-member: concatenated gzip files are one valid stream.
        Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, flate2::bufread::MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };

    let mut lines = Lines::new(text, max_line_bytes);
    let mut aggregator = Aggregator::default();
    let mut summary = Summary { format: "alb", ..Summary::default() };
    let mut line_number = 0;
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(source) => return Err(ReadError { line: line_number, records: summary.records, source }),
        };
        line_number += 1;
        match line {
            Line::TooLong => summary.malformed += 1,
            Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => summary.skipped += 1,
            Line::Text(text) => match alb::parse(text) {
                AlbParse::Entry(entry) => {
                    summary.records += 1;
                    aggregator.add(&entry);
                }
                AlbParse::Skipped => summary.skipped += 1,
                AlbParse::Malformed(why) => {
                    summary.malformed += 1;
                    tracing::debug!(line = line_number, why, "malformed line");
                }
            },
        }
    }
    summary.metrics = aggregator.datums();
    Ok(summary)
}

/// Opens objects for streaming reads.
pub trait ObjectSource {
    /// `Ok(None)` when the object does not exist (deleted since the event was sent).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Box<dyn AsyncRead + Send + Unpin>>, AwsError>> + Send;
}

#[derive(Clone, Debug)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

impl ObjectSource for S3Objects {
    async fn open(&self, object: &ObjectRef) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>, AwsError> {
        let response = self.client.get_object().bucket(&object.bucket).key(&object.key).send().await;
        match response {
            Ok(output) => Ok(Some(Box::new(output.body.into_async_read()))),
            Err(err) => {
                let err = AwsError::from_sdk("GetObject", err);
                if err.is_code("NoSuchKey") { Ok(None) } else { Err(err) }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("invalid S3 event")]
    Event(#[from] event::EventError),
    #[error("s3://{bucket}/{key}: {source}")]
    Object {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{failed} of {total} objects failed; first: {first}")]
    Partial { failed: usize, total: usize, first: String },
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectOutcome {
    pub bucket: String,
    pub key: String,
    /// `false` when the object no longer existed (acknowledged, nothing to do).
    pub found: bool,
    pub records: u64,
    pub malformed: u64,
    pub skipped: u64,
    pub datums_published: usize,
}

/// The handler's result for one event.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventSummary {
    pub objects: Vec<ObjectOutcome>,
    pub records: u64,
    pub malformed: u64,
    pub datums_published: usize,
}

pub struct Processor<S> {
    objects: S,
    cloudwatch: aws_sdk_cloudwatch::Client,
    config: ProcessorConfig,
}

impl<S: ObjectSource> Processor<S> {
    pub fn new(objects: S, cloudwatch: aws_sdk_cloudwatch::Client, config: ProcessorConfig) -> Self {
        Self { objects, cloudwatch, config }
    }

    /// The Lambda entry point. Every object is attempted; if any failed, the invocation
    /// fails (after the others were processed) so that Lambda retries and alarms fire.
    pub async fn handle(&self, event: LambdaEvent<S3Event>) -> Result<EventSummary, ProcessError> {
        let objects = event::created_objects(&event.payload)?;
        let mut summary = EventSummary::default();
        let mut failures = Vec::new();
        for object in &objects {
            match self.process_object(object).await {
                Ok(outcome) => {
                    summary.records += outcome.records;
                    summary.malformed += outcome.malformed;
                    summary.datums_published += outcome.datums_published;
                    summary.objects.push(outcome);
                }
                Err(err) => {
                    tracing::error!(bucket = %object.bucket, key = %object.key, error = %err, "object failed");
                    failures.push(err);
                }
            }
        }
        if let Some(first) = failures.first() {
            return Err(ProcessError::Partial {
                failed: failures.len(),
                total: objects.len(),
                first: first.to_string(),
            });
        }
        Ok(summary)
    }

    pub async fn process_object(&self, object: &ObjectRef) -> Result<ObjectOutcome, ProcessError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| ProcessError::Object {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            source,
        };
        let mut outcome = ObjectOutcome {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            found: false,
            records: 0,
            malformed: 0,
            skipped: 0,
            datums_published: 0,
        };
        let Some(stream) = self.objects.open(object).await.map_err(|e| fail(Box::new(e)))? else {
            tracing::warn!(bucket = %object.bucket, key = %object.key, "object no longer exists; acknowledged");
            return Ok(outcome);
        };
        // Parsing is CPU-bound and synchronous: run it on a blocking thread that pulls the
        // body through a bridge, so the body streams and is never held whole.
        let reader = tokio_util::io::SyncIoBridge::new(stream);
        let max_line_bytes = self.config.max_line_bytes;
        let summary = tokio::task::spawn_blocking(move || summarize(reader, max_line_bytes))
            .await
            .map_err(|e| fail(Box::new(e)))?
            .map_err(|e| fail(Box::new(e)))?;
        shared::metrics::publish(&self.cloudwatch, &self.config.namespace, &summary.metrics)
            .await
            .map_err(|e| fail(Box::new(e)))?;
        outcome.found = true;
        outcome.records = summary.records;
        outcome.malformed = summary.malformed;
        outcome.skipped = summary.skipped;
        outcome.datums_published = summary.metrics.len();
        tracing::info!(
            bucket = %object.bucket, key = %object.key, records = outcome.records,
            malformed = outcome.malformed, datums = outcome.datums_published, "object processed"
        );
        Ok(outcome)
    }
}

impl From<ProcessError> for lambda_runtime::Diagnostic {
    fn from(err: ProcessError) -> Self {
        let error_type = match &err {
            ProcessError::Event(_) => "ProcessError.Event",
            ProcessError::Object { .. } => "ProcessError.Object",
            ProcessError::Partial { .. } => "ProcessError.Partial",
        };
        Self { error_type: error_type.to_owned(), error_message: shared::error::error_chain(&err) }
    }
}

//! The log-processor: reads log objects as they land in S3, aggregates them into
//! per-minute metrics and publishes those to CloudWatch, exactly once per object version
//! but for one batch per ambiguous failure.
//!
//! # Layout
//!
//! Entry point: `main.rs` builds a [`Processor`] over the SDK ([`Processor::new`]) and
//! hands each invocation to [`Processor::handle`] (`handler.rs`), which decodes the
//! delivery (direct S3, SNS, SQS or EventBridge: [`event`]) into objects and answers with
//! a per-event summary or `batchItemFailures`. I/O sits behind three traits:
//! [`ObjectSource`] and [`MetricsSink`] (`pipeline.rs`; their SDK adapters [`S3Objects`]
//! and [`CloudWatchMetrics`] in `aws.rs`) and [`idempotency::MarkerStore`] (markers under
//! `STATE_URI`); `pipeline_tests.rs` drives the whole path over in-memory doubles of the
//! three.
//!
//! One object ([`Processor::process_object`], `pipeline.rs`): recursion guard ([`config`])
//! -> open -> claim its marker ([`idempotency`]) -> on a blocking thread,
//! [`Summarizer::read`] (`read.rs`) decompresses, detects the format, parses ([`formats`]),
//! routes ([`routes`]) and aggregates per minute under the caps (`aggregate.rs`), streaming
//! the normalized output (`output.rs`), into per-minute [`Series`] -> either the series cut
//! into datums, screened for CloudWatch (`shared::metrics::screen`) and for what the key
//! vouches for (`provenance.rs`), in batches each recorded in flight in the marker before
//! it is sent, or the series written whole as one EMF batch (`emf.rs`), judged the same
//! way -> marker done -> the object's outcome, and on Lambda its own metrics
//! (`own_metrics.rs`). [`summarize`] is the same read over any reader: what
//! `autoscaler logs summarize` runs on local files.

mod aggregate;
mod aws;
pub mod config;
mod emf;
pub mod event;
mod fields;
pub mod formats;
mod handler;
pub mod idempotency;
#[cfg(test)]
mod invariant_tests;
mod lines;
mod output;
mod own_metrics;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
mod provenance;
mod read;
pub mod routes;

/// How the processor's AWS calls retry, wherever it runs (its Lambda, `autoscaler logs
/// process`, the tests): adaptive mode, for bursts of reads and PutMetricData (see
/// `shared::aws::RetryProfile`; PutMetricData itself is not retried once it may have been
/// recorded).
pub const RETRY: shared::aws::RetryProfile = shared::aws::RetryProfile::Throughput;

pub use aggregate::{Aggregate, Metric, Series};
pub use aws::{CloudWatchMetrics, S3Objects};
pub use config::{MetricsMode, ProcessorConfig};
pub use event::ObjectRef;
pub use formats::Format;
pub use handler::{EmfOut, EventSummary, ProcessError, Processor};
pub use pipeline::{MetricsSink, ObjectError, ObjectOutcome, ObjectSource, OpenedObject};
pub use read::{ReadError, ReadOptions, Summarizer, Summary, summarize};
pub use shared::metrics::PublishError;

/// The namespace of the processor's own metrics (EMF on stdout, on Lambda).
pub const OWN_METRICS_NAMESPACE: &str = "LambdaAutoscaler/LogProcessor";

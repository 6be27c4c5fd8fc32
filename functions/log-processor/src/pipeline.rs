//! One object, from its notification to its metrics: recursion guard, open, claim its
//! marker, read (decompress, detect, parse, route, aggregate, normalized output) on a
//! blocking thread, screen, publish in batches recorded in the marker (or write one EMF
//! batch), marker done, and the object's outcome.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use shared::AwsError;
use shared::metrics::{Datum, PublishError, Screened};
use shared::store::StoreError;
use tokio::io::AsyncRead;

use crate::handler::{Processor, unix_now};
use crate::idempotency::{self, Claimed, InFlight, MarkerStatus, MarkerStore, Progress};
use crate::own_metrics::ambiguous_publishes_record;
use crate::{
    Format, MetricsMode, ObjectRef, ReadError, ReadOptions, Summarizer, Summary, emf, output, provenance,
};

/// An object opened for a streaming read.
pub struct OpenedObject {
    pub body: Box<dyn AsyncRead + Send + Unpin>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// When S3 stored it (Unix seconds): how far its metrics lag behind the log.
    pub last_modified: Option<i64>,
}

/// Opens objects for streaming reads.
pub trait ObjectSource {
    /// `Ok(None)` when the object does not exist (deleted since the event was sent).
    fn open(&self, object: &ObjectRef)
    -> impl Future<Output = Result<Option<OpenedObject>, AwsError>> + Send;
}
/// Where an object's metrics go, one PutMetricData-sized batch at a time.
pub trait MetricsSink {
    fn put(&self, namespace: &str, batch: &[Datum]) -> impl Future<Output = Result<(), PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("idempotency marker: {0}")]
    Marker(#[from] StoreError),
    #[error("another invocation ({owner}) has been processing it since {since}; retry later")]
    Busy { owner: String, since: i64 },
    #[error("not started: the invocation's deadline is too near")]
    NoTimeLeft,
    #[error(
        "stopped publishing after {published} of {total} batches: the deadline is near (recorded in the marker)"
    )]
    DeadlineWhilePublishing { published: usize, total: usize },
    #[error("the parsing thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("writing the normalized output failed: {0}")]
    Output(AwsError),
    #[error("writing the EMF records failed: {0}")]
    Emf(#[source] std::io::Error),
    /// A batch failed; the marker records whether it may have been recorded.
    #[error("batch #{batch} of {total}: {source}")]
    Publish {
        batch: usize,
        total: usize,
        #[source]
        source: PublishError,
    },
}

impl ObjectError {
    /// Whether a later attempt can succeed (throttling, a busy marker, the deadline), as
    /// opposed to a permanent problem (access denied, an undetectable format).
    pub fn retryable(&self) -> bool {
        match self {
            ObjectError::Aws(e) => e.retryable,
            ObjectError::Read(e) => e.retryable(),
            ObjectError::Marker(StoreError::Aws(e)) => e.retryable,
            ObjectError::Marker(_) => true,
            ObjectError::Busy { .. }
            | ObjectError::NoTimeLeft
            | ObjectError::DeadlineWhilePublishing { .. } => true,
            // Lambda's stdout does not heal within an invocation's retries.
            ObjectError::Join(_) | ObjectError::Emf(_) => false,
            ObjectError::Output(e) => e.retryable,
            ObjectError::Publish { source, .. } => source.retryable(),
        }
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum ObjectOutcome {
    Processed {
        bucket: String,
        key: String,
        format: Option<Format>,
        records: u64,
        malformed: u64,
        skipped: u64,
        datums_published: usize,
        /// Batches sent again that an earlier invocation may have published already
        /// (left in flight): each may be counted twice. The `AmbiguousPublishes` metric.
        ambiguous_publishes: usize,
        /// Records counted under `other` or in fewer series, and a read stopped at a
        /// limit (`Caps`), by reason.
        capped: u64,
        capped_reasons: std::collections::BTreeMap<&'static str, u64>,
        /// Datums left out, each alone, with their reasons: what CloudWatch would refuse
        /// (values, names, timestamps outside its window when sent) and what the key
        /// does not vouch for (`provenance`).
        screened: Screened,
        /// From the object's arrival in S3 to its metrics being out: the `PublishDelay`
        /// metric.
        #[serde(skip_serializing_if = "Option::is_none")]
        publish_delay_seconds: Option<i64>,
    },
    /// The object no longer exists: acknowledged, nothing to do.
    Missing { bucket: String, key: String },
    /// This version was published completely before: nothing published again.
    Duplicate { bucket: String, key: String },
    /// Under the processor's own state prefix: never processed.
    OwnObject { bucket: String, key: String },
}

impl<S: ObjectSource, P: MetricsSink, M: MarkerStore> Processor<S, P, M> {
    /// Reads, aggregates and publishes one object, at most once per version.
    pub async fn process_object(
        &self,
        object: &ObjectRef,
        owner: &str,
        deadline: Option<SystemTime>,
    ) -> Result<ObjectOutcome, ObjectError> {
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        if self.config.is_own_object(&object.bucket, &object.key) {
            tracing::info!(%bucket, %key, "the processor's own object; not processed");
            return Ok(ObjectOutcome::OwnObject { bucket, key });
        }
        let stop_at = deadline.map(|d| d.checked_sub(self.config.deadline_margin).unwrap_or(UNIX_EPOCH));
        if stop_at.is_some_and(|s| SystemTime::now() >= s) {
            return Err(ObjectError::NoTimeLeft);
        }
        let Some(opened) = self.objects.open(object).await? else {
            tracing::warn!(%bucket, %key, "object no longer exists; acknowledged");
            return Ok(ObjectOutcome::Missing { bucket, key });
        };
        let version =
            opened.version_id.clone().or_else(|| opened.etag.clone()).or_else(|| object.etag.clone());
        let mut held = match (&self.markers, &version) {
            (Some(markers), Some(version)) => {
                let takeover = self.config.takeover_after.as_secs() as i64;
                match markers.claim(object, version, owner, unix_now(), takeover).await? {
                    Claimed::Held(held) => Some(held),
                    Claimed::AlreadyDone => {
                        tracing::info!(%bucket, %key, "already published; redelivery acknowledged");
                        return Ok(ObjectOutcome::Duplicate { bucket, key });
                    }
                    Claimed::Busy { owner, since } => return Err(ObjectError::Busy { owner, since }),
                }
            }
            (Some(_), None) => {
                tracing::warn!(%bucket, %key, "no version or ETag: processed without an idempotency marker");
                None
            }
            (None, _) => None,
        };

        let identity = version.clone().unwrap_or_default();
        let mut progress = held.as_ref().map(idempotency::Held::progress).unwrap_or_default();
        let result =
            self.read_and_publish(object, &identity, opened, held.as_mut(), &mut progress, stop_at).await;
        if let (Err(_), Some(held), Some(markers)) = (&result, held.as_mut(), &self.markers) {
            // Let the next delivery take over at once, after the batches confirmed, and
            // with the one that may have gone out.
            if let Err(marker_error) = markers.update(held, MarkerStatus::Failed, progress, unix_now()).await
            {
                tracing::warn!(%bucket, %key, error = %marker_error, "could not record the failure in the marker; it expires");
            }
        }
        result
    }

    async fn read_and_publish(
        &self,
        object: &ObjectRef,
        version: &str,
        opened: OpenedObject,
        mut held: Option<&mut idempotency::Held>,
        progress: &mut Progress,
        stop_at: Option<SystemTime>,
    ) -> Result<ObjectOutcome, ObjectError> {
        let last_modified = opened.last_modified;
        let mut summary = self.read(object, version, opened, stop_at).await?;
        let already = progress.published_batches;
        let published = match self.config.metrics_mode {
            MetricsMode::Emf => {
                self.write_emf(object, version, &summary, held.as_deref_mut(), progress).await?
            }
            MetricsMode::Api => {
                self.publish_batches(object, version, &mut summary, held.as_deref_mut(), progress, stop_at)
                    .await?
            }
        };
        if let (Some(held), Some(markers)) = (held, &self.markers) {
            let done = Progress { published_batches: published.batches, in_flight: None };
            markers.update(held, MarkerStatus::Done, done, unix_now()).await?;
            *progress = done;
        }
        let outcome = ObjectOutcome::Processed {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            format: summary.format,
            records: summary.records,
            malformed: summary.malformed,
            skipped: summary.skipped,
            datums_published: published.datums,
            ambiguous_publishes: published.ambiguous,
            capped: summary.capped,
            capped_reasons: summary.capped_reasons.clone(),
            screened: published.screened.clone(),
            publish_delay_seconds: last_modified.map(|stored| ((self.clock)() - stored).max(0)),
        };
        if summary.capped > 0 {
            tracing::warn!(
                bucket = %object.bucket, key = %object.key, capped = summary.capped,
                reasons = ?summary.capped_reasons, "capped: hostile or unusual content (README, Hostile input)"
            );
        }
        if !published.screened.is_empty() {
            tracing::warn!(
                bucket = %object.bucket, key = %object.key, datums = published.screened.skipped_datums,
                values = published.screened.skipped_values, reasons = ?published.screened.reasons, "datums left out"
            );
        }
        tracing::info!(
            bucket = %object.bucket, key = %object.key, format = summary.format.map_or("none", Format::name), records = summary.records,
            malformed = summary.malformed, skipped = summary.skipped, datums = published.datums,
            batches = published.batches, resumed_after = already, ambiguous_publishes = published.ambiguous, "object processed"
        );
        Ok(outcome)
    }

    /// Reads the object into its summary, streaming the normalized output if configured.
    async fn read(
        &self,
        object: &ObjectRef,
        version: &str,
        opened: OpenedObject,
        stop_at: Option<SystemTime>,
    ) -> Result<Summary, ObjectError> {
        // Parsing is CPU-bound and synchronous: run it on a blocking thread that pulls the
        // body through a bridge, so the body streams and is never held whole. A timer
        // stops it before the deadline.
        let cancel = Arc::new(AtomicBool::new(false));
        let timer = stop_at.map(|at| {
            let cancel = cancel.clone();
            let wait = at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                cancel.store(true, Ordering::Relaxed);
            })
        });
        let reader = tokio_util::io::SyncIoBridge::new(opened.body);
        let (key, format) = (object.key.clone(), self.config.format_for(&object.key));
        let (max_line_bytes, vpc_interface_dimension) =
            (self.config.max_line_bytes, self.config.vpc_interface_dimension);
        let flag = cancel.clone();
        let routes = self.config.routes.clone();
        let caps = self.config.caps;
        // The normalized output, if configured, is uploaded while the object is read.
        let (parts, parts_rx) = tokio::sync::mpsc::channel(2);
        let sink = self
            .config
            .output
            .as_ref()
            .map(|uri| output::NdjsonSink::new(uri, output_name(object, version), parts));
        let parse = tokio::task::spawn_blocking(move || {
            let options = ReadOptions {
                key: &key,
                format,
                max_line_bytes,
                vpc_interface_dimension,
                cancel: Some(&flag),
            };
            let mut summarizer = match sink {
                Some(sink) => Summarizer::with_sink(Box::new(sink)),
                None => Summarizer::default(),
            };
            summarizer.set_routes(routes);
            summarizer.set_caps(caps);
            let read = summarizer.read(reader, &options);
            // Only a whole read completes the output; after a failed one the sink is
            // dropped unfinished, and the uploader, seeing the stream end without its end
            // mark, aborts the upload.
            let sink = summarizer.take_sink();
            read.map(|()| {
                let output_ok = sink.is_none_or(|sink| sink.finish());
                (summarizer.finish(), output_ok)
            })
        });
        let upload = async {
            match &self.config.output {
                Some(uri) => output::upload(&self.s3, &uri.bucket, parts_rx).await,
                None => Ok(None),
            }
        };
        let (summary, uploaded) = tokio::join!(parse, upload);
        if let Some(timer) = timer {
            timer.abort();
        }
        let (summary, output_ok) = summary??;
        let output_key = uploaded.map_err(ObjectError::Output)?;
        if !output_ok {
            let broke = AwsError::other("UploadPart", "the normalized output stream broke off".into());
            return Err(ObjectError::Output(broke));
        }
        if let Some(key) = &output_key {
            tracing::info!(bucket = %object.bucket, key = %object.key, output = %key, "normalized records written");
        }
        Ok(summary)
    }

    /// The object's metrics as one EMF batch on stdout, under the same protocol as a
    /// PutMetricData batch: recorded in flight first, so that a death, a failed write or a
    /// failed final marker write leaves it for the next delivery to write again and
    /// report. Each metric judged as its datums would be (`emf.rs`).
    async fn write_emf(
        &self,
        object: &ObjectRef,
        version: &str,
        summary: &Summary,
        mut held: Option<&mut idempotency::Held>,
        progress: &mut Progress,
    ) -> Result<Published, ObjectError> {
        let mut ambiguous = 0;
        let mut screened = Screened::default();
        let vouched = provenance::Vouched::new(&object.key, summary.format);
        let records = emf::records(
            &self.config.namespace,
            &summary.series,
            vouched.as_ref(),
            (self.clock)(),
            &mut screened,
        );
        if progress.published_batches == 0 {
            let left = progress.in_flight.filter(|f| f.batch == 0);
            let sending =
                Progress { published_batches: 0, in_flight: Some(InFlight { batch: 0, ambiguous: false }) };
            if let (Some(held), Some(markers)) = (held.as_deref_mut(), &self.markers) {
                markers.update(held, MarkerStatus::InProgress, sending, unix_now()).await?;
                *progress = sending;
            }
            let mut text = String::new();
            for line in &records.lines {
                text.push_str(line);
                text.push('\n');
            }
            if let Some(left) = left {
                ambiguous += 1;
                self.report_ambiguous_publish(object, version, left, held.as_deref());
            }
            // Part of it may be out when the write fails: left in flight, ambiguous.
            let mut out = self.emf_out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                progress.in_flight = Some(InFlight { batch: 0, ambiguous: true });
                return Err(ObjectError::Emf(error));
            }
            *progress = Progress { published_batches: 1, in_flight: None };
        }
        Ok(Published { batches: 1, datums: records.datums, ambiguous, screened })
    }

    /// The object's datums in PutMetricData batches, from the first not yet published,
    /// each recorded in flight in the marker before it is sent. The window is judged per
    /// batch as it is sent, so that the batches stay the same on a retry whatever the time
    /// (the marker counts them by index).
    async fn publish_batches(
        &self,
        object: &ObjectRef,
        version: &str,
        summary: &mut Summary,
        mut held: Option<&mut idempotency::Held>,
        progress: &mut Progress,
        stop_at: Option<SystemTime>,
    ) -> Result<Published, ObjectError> {
        let mut ambiguous = 0;
        // Only datums CloudWatch accepts and the key vouches for, each judged alone.
        let (metrics, mut screened) = shared::metrics::screen(std::mem::take(&mut summary.metrics), None);
        let metrics = provenance::check(&object.key, summary.format, metrics, &mut screened);
        let mut datums_published = metrics.len();
        let batches = shared::metrics::request_batches(&metrics);
        let total = batches.len();
        for (index, batch) in batches.iter().enumerate().skip(progress.published_batches) {
            if stop_at.is_some_and(|s| SystemTime::now() >= s) {
                return Err(ObjectError::DeadlineWhilePublishing { published: index, total });
            }
            // Left in flight by an earlier invocation: it may be out already.
            let left = progress.in_flight.filter(|f| f.batch == index);
            // Recorded before it is sent (in the same write that records the
            // previous batch as published): a death from here until the next
            // write leaves it in flight for the next invocation to resend.
            let sending = Progress {
                published_batches: index,
                in_flight: Some(InFlight { batch: index, ambiguous: false }),
            };
            if let (Some(held), Some(markers)) = (held.as_deref_mut(), &self.markers) {
                markers.update(held, MarkerStatus::InProgress, sending, unix_now()).await?;
                *progress = sending;
            }
            let (batch, late) = shared::metrics::screen(batch.to_vec(), Some((self.clock)()));
            datums_published = datums_published.saturating_sub(late.skipped_datums as usize);
            screened.merge(late);
            let sent = match batch.is_empty() {
                true => Ok(()),
                false => self.metrics.put(&self.config.namespace, &batch).await,
            };
            // Counted unless certainly not recorded this time.
            let may_be_out = !matches!(sent, Err(PublishError::Rejected(_)));
            if let Some(left) = left.filter(|_| may_be_out) {
                ambiguous += 1;
                self.report_ambiguous_publish(object, version, left, held.as_deref());
            }
            match sent {
                Ok(()) => *progress = Progress { published_batches: index + 1, in_flight: None },
                Err(source) => {
                    progress.in_flight = match &source {
                        PublishError::Ambiguous(_) => Some(InFlight { batch: index, ambiguous: true }),
                        // Not recorded now; what an earlier attempt did still holds.
                        PublishError::Rejected(_) => left,
                    };
                    return Err(ObjectError::Publish { batch: index, total, source });
                }
            }
        }
        Ok(Published { batches: total, datums: datums_published, ambiguous, screened })
    }

    /// A batch sent again that an earlier invocation may have published already: it may
    /// be counted twice. Logged with the object and batch, and counted in
    /// `AmbiguousPublishes` (EMF, on Lambda).
    fn report_ambiguous_publish(
        &self,
        object: &ObjectRef,
        version: &str,
        left: InFlight,
        held: Option<&idempotency::Held>,
    ) {
        let why = if left.ambiguous { "its reply was lost" } else { "its sender stopped" };
        tracing::warn!(
            bucket = %object.bucket, key = %object.key, version, batch = left.batch,
            previous_owner = held.and_then(|h| h.previous_owner.as_deref()).unwrap_or("unknown"),
            "sent again a batch that may have been published already ({why}): it may be counted twice"
        );
        if let Some(function) = &self.config.function_name {
            println!("{}", ambiguous_publishes_record(function, unix_now() as u64 * 1000));
        }
    }
}

/// What publishing an object's metrics did.
struct Published {
    /// Batches in all (EMF: one).
    batches: usize,
    /// Datums published, counted as PutMetricData takes them in either mode.
    datums: usize,
    /// Batches sent again that may have been published already.
    ambiguous: usize,
    /// What was left out, by reason.
    screened: Screened,
}

/// The output file's name: the source's file name and a hash of its identity, so that a
/// retry of the same object version overwrites its output.
fn output_name(object: &ObjectRef, version: &str) -> String {
    let id = &idempotency::object_id(object, version)[..12];
    let file = object.key.rsplit('/').next().unwrap_or_default();
    let file: String = file
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .take(100)
        .collect();
    format!("{file}-{id}")
}

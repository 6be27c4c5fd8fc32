//! The publishing pipeline under faults, with in-memory doubles of the object source, the
//! metrics sink and the marker store. Each test runs invocations of one two-batch object
//! and compares what "CloudWatch" recorded with the object's batches: every fault point
//! publishes each batch once, except a batch whose fate was unknown, which is sent again
//! at most once more and reported.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::AwsError;
use shared::metrics::{Datum, PublishError, request_batches};
use shared::store::{StoreError, Version};
use tokio::sync::Notify;

use crate::idempotency::{InFlight, Marker, MarkerStatus, MarkerStore};
use crate::{
    EmfOut, MetricsMode, ObjectError, ObjectOutcome, ObjectRef, ObjectSource, OpenedObject, Processor,
    ProcessorConfig, ReadOptions,
};

const BUCKET: &str = "logs";
const KEY: &str = "long.log";

/// 70 minutes of one ALB request each: 70 × 2 dimension sets × 8 metrics = 1,120 datums,
/// two PutMetricData batches.
fn log() -> Vec<u8> {
    let fixture = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/logs/alb.log"));
    let line = fixture.lines().next().unwrap();
    (0..70)
        .map(|m| {
            line.replace("2026-11-30T12:00:01", &format!("2026-11-30T{:02}:{:02}:01", 12 + m / 60, m % 60))
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

/// The object's batches, as the processor splits them.
fn batches() -> Vec<Vec<Datum>> {
    let options = ReadOptions {
        key: KEY,
        format: None,
        max_line_bytes: 1 << 20,
        vpc_interface_dimension: false,
        cancel: None,
    };
    let summary = crate::summarize(&log()[..], &options).unwrap();
    let batches: Vec<Vec<Datum>> =
        request_batches(&summary.metrics).into_iter().map(<[Datum]>::to_vec).collect();
    assert_eq!(batches.len(), 2);
    batches
}

struct OneObject;

impl ObjectSource for OneObject {
    async fn open(&self, _object: &ObjectRef) -> Result<Option<OpenedObject>, AwsError> {
        Ok(Some(OpenedObject {
            body: Box::new(std::io::Cursor::new(log())),
            etag: Some("\"e1\"".into()),
            version_id: Some("v1".into()),
            // Stored at 13:10, a minute after its last line; the clock says 14:00.
            last_modified: Some(1_796_040_000 + 4200),
        }))
    }
}

/// What happens to one PutMetricData request.
#[derive(Clone, Copy, Debug)]
enum Send {
    /// Recorded and answered.
    Reply,
    /// Refused with an answer (a 4xx): not recorded.
    Refuse,
    /// Recorded, but the reply is lost.
    LoseReply,
    /// Lost on the way: not recorded, no reply either.
    LoseRequest,
    /// The invocation dies before sending it.
    DieBefore,
}

/// What happens to one marker write of an invocation (the claim is write 0).
#[derive(Clone, Copy, Debug)]
enum Save {
    /// Fails with an error the invocation sees; nothing written.
    Fail,
    /// The invocation dies before writing.
    DieBefore,
    /// Written, then the invocation dies.
    DieAfter,
}

/// CloudWatch and the state bucket, shared by the invocations of a test.
#[derive(Clone, Default)]
struct World {
    recorded: Arc<Mutex<Vec<Vec<Datum>>>>,
    markers: Arc<Mutex<HashMap<String, (Marker, u64)>>>,
}

struct Sink {
    world: World,
    script: Mutex<VecDeque<Send>>,
    died: Arc<Notify>,
}

impl crate::MetricsSink for Sink {
    async fn put(&self, _namespace: &str, batch: &[Datum]) -> Result<(), PublishError> {
        let send = self.script.lock().unwrap().pop_front().unwrap_or(Send::Reply);
        let error = |what: &str| AwsError::other("PutMetricData", what.into());
        match send {
            Send::DieBefore => die(&self.died).await,
            Send::Refuse => return Err(PublishError::Rejected(error("refused"))),
            Send::LoseRequest => return Err(PublishError::Ambiguous(error("no reply"))),
            Send::Reply | Send::LoseReply => self.world.recorded.lock().unwrap().push(batch.to_vec()),
        }
        match send {
            Send::LoseReply => Err(PublishError::Ambiguous(error("no reply"))),
            _ => Ok(()),
        }
    }
}

struct Store {
    world: World,
    saves: Mutex<usize>,
    faults: HashMap<usize, Save>,
    died: Arc<Notify>,
}

impl MarkerStore for Store {
    async fn load(&self, name: &str) -> Result<(Option<Marker>, Version), StoreError> {
        let markers = self.world.markers.lock().unwrap();
        Ok(match markers.get(name) {
            Some((marker, version)) => (Some(marker.clone()), Version(Some(version.to_string()))),
            None => (None, Version(None)),
        })
    }

    async fn save(&self, name: &str, marker: &Marker, expected: &Version) -> Result<Version, StoreError> {
        let n = {
            let mut saves = self.saves.lock().unwrap();
            *saves += 1;
            *saves - 1
        };
        match self.faults.get(&n) {
            Some(Save::Fail) => {
                return Err(StoreError::Aws(AwsError::other("PutObject", "injected failure".into())));
            }
            Some(Save::DieBefore) => die(&self.died).await,
            _ => {}
        }
        let version = {
            let mut markers = self.world.markers.lock().unwrap();
            let current = markers.get(name).map(|(_, v)| v.to_string());
            if current != expected.0 {
                return Err(StoreError::Conflict { bucket: BUCKET.into(), key: name.into() });
            }
            let version = current.map_or(1, |v| v.parse::<u64>().unwrap() + 1);
            markers.insert(name.to_owned(), (marker.clone(), version));
            version
        };
        if let Some(Save::DieAfter) = self.faults.get(&n) {
            die(&self.died).await;
        }
        Ok(Version(Some(version.to_string())))
    }
}

/// The invocation dies here: it signals, and never goes on.
async fn die(died: &Notify) -> ! {
    died.notify_one();
    std::future::pending().await
}

enum Ended {
    Returned(Result<ObjectOutcome, ObjectError>),
    Died,
}

impl World {
    /// One invocation processing the object, with these faults.
    async fn invoke(&self, sends: &[Send], saves: &[(usize, Save)]) -> Ended {
        self.run(sends, saves, None).await
    }

    /// One invocation in `METRICS_MODE=emf`, writing its records to `out`.
    async fn invoke_emf(&self, out: EmfOut) -> Ended {
        self.run(&[], &[], Some(out)).await
    }

    async fn run(&self, sends: &[Send], saves: &[(usize, Save)], emf: Option<EmfOut>) -> Ended {
        let died = Arc::new(Notify::new());
        let sink = Sink {
            world: self.clone(),
            script: Mutex::new(sends.iter().copied().collect()),
            died: died.clone(),
        };
        let store = Store {
            world: self.clone(),
            saves: Mutex::new(0),
            faults: saves.iter().copied().collect(),
            died: died.clone(),
        };
        let config = ProcessorConfig {
            state: Some("s3://logs/processor-state".parse().unwrap()),
            // A marker left in progress was left by a dead invocation: take it over at once.
            takeover_after: Duration::ZERO,
            metrics_mode: if emf.is_some() { MetricsMode::Emf } else { MetricsMode::Api },
            ..ProcessorConfig::default()
        };
        // Only the normalized output uses S3, and it is off.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .build(),
        );
        // The log's own time (2026-11-30T12:00-13:09Z), not the real one: its datums stay
        // inside CloudWatch's window whenever this runs.
        let mut processor = Processor::with_parts(OneObject, sink, Some(store), s3, config)
            .with_clock(|| 1_796_040_000 + 7200);
        if let Some(out) = emf {
            processor = processor.with_emf_output(out);
        }
        let object = ObjectRef::new(BUCKET, KEY);
        tokio::select! {
            biased;
            () = died.notified() => Ended::Died,
            result = processor.process_object(&object, "invocation", None) => Ended::Returned(result),
        }
    }

    fn recorded(&self) -> Vec<Vec<Datum>> {
        self.recorded.lock().unwrap().clone()
    }

    fn marker(&self) -> Marker {
        let markers = self.markers.lock().unwrap();
        assert_eq!(markers.len(), 1);
        markers.values().next().unwrap().0.clone()
    }
}

fn ambiguous_publishes(ended: Ended) -> usize {
    match ended {
        Ended::Returned(Ok(ObjectOutcome::Processed { ambiguous_publishes, .. })) => ambiguous_publishes,
        Ended::Returned(other) => panic!("not processed: {other:?}"),
        Ended::Died => panic!("died"),
    }
}

fn failed(ended: Ended) -> ObjectError {
    match ended {
        Ended::Returned(Err(error)) => error,
        Ended::Returned(Ok(outcome)) => panic!("did not fail: {outcome:?}"),
        Ended::Died => panic!("died"),
    }
}

#[tokio::test]
async fn without_faults_each_batch_is_published_once() {
    let world = World::default();
    let Ended::Returned(Ok(outcome)) = world.invoke(&[], &[]).await else { panic!("not processed") };
    let ObjectOutcome::Processed { ambiguous_publishes, publish_delay_seconds, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((*ambiguous_publishes, *publish_delay_seconds), (0, Some(3000)));
    // The processor's own EMF record for it: what the dashboard's panels read.
    let record: serde_json::Value =
        serde_json::from_str(&crate::own_metrics::object_record("processor", Some(&outcome), 0)).unwrap();
    assert_eq!(
        (record["ObjectsProcessed"].as_f64(), record["ObjectsFailed"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert_eq!((record["PublishDelay"].as_f64(), record["Records"].as_f64()), (Some(3000.0), Some(70.0)));
    let failed: serde_json::Value =
        serde_json::from_str(&crate::own_metrics::object_record("processor", None, 0)).unwrap();
    assert_eq!((failed["ObjectsFailed"].as_f64(), failed.get("Records")), (Some(1.0), None));
    assert_eq!(world.recorded(), batches());
    let marker = world.marker();
    assert_eq!((marker.status, marker.published_batches, marker.in_flight), (MarkerStatus::Done, 2, None));
    // A redelivery publishes nothing.
    assert!(matches!(world.invoke(&[], &[]).await, Ended::Returned(Ok(ObjectOutcome::Duplicate { .. }))));
    assert_eq!(world.recorded(), batches());
}

/// Fault point 1, before the send: refused with an answer, or the invocation died after
/// recording the batch in flight.
#[tokio::test]
async fn a_batch_refused_before_it_was_recorded_is_resent_once_and_not_reported() {
    let world = World::default();
    let error = failed(world.invoke(&[Send::Reply, Send::Refuse], &[]).await);
    assert!(
        matches!(error, ObjectError::Publish { batch: 1, total: 2, source: PublishError::Rejected(_) }),
        "{error}"
    );
    let marker = world.marker();
    assert_eq!((marker.status, marker.published_batches, marker.in_flight), (MarkerStatus::Failed, 1, None));

    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 0);
    let [first, second] = <[Vec<Datum>; 2]>::try_from(batches()).unwrap();
    assert_eq!(world.recorded(), vec![first, second], "each batch once");
}

#[tokio::test]
async fn a_death_before_the_send_resends_the_batch_once_and_reports_it() {
    let world = World::default();
    assert!(matches!(world.invoke(&[Send::Reply, Send::DieBefore], &[]).await, Ended::Died));
    let marker = world.marker();
    assert_eq!(marker.in_flight, Some(InFlight { batch: 1, ambiguous: false }), "recorded before sending");
    assert_eq!(marker.published_batches, 1);

    // The takeover cannot tell whether it went out: it resends it and reports it, though
    // here it is published once.
    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    assert_eq!(world.recorded(), batches());
}

/// Fault point 2: sent, no reply. Not retried in the invocation; the object fails with
/// the batch recorded as ambiguous, and the redelivery resends that batch only.
#[tokio::test]
async fn a_lost_reply_fails_the_object_and_the_redelivery_resends_only_that_batch() {
    let world = World::default();
    let error = failed(world.invoke(&[Send::LoseReply], &[]).await);
    assert!(
        matches!(error, ObjectError::Publish { batch: 0, source: PublishError::Ambiguous(_), .. }),
        "{error}"
    );
    assert!(error.retryable());
    let marker = world.marker();
    assert_eq!(marker.status, MarkerStatus::Failed);
    assert_eq!(
        (marker.published_batches, marker.in_flight),
        (0, Some(InFlight { batch: 0, ambiguous: true }))
    );

    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    let [first, second] = <[Vec<Datum>; 2]>::try_from(batches()).unwrap();
    assert_eq!(world.recorded(), vec![first.clone(), first, second], "the first batch twice, reported");
    assert_eq!(world.marker().in_flight, None);
}

#[tokio::test]
async fn a_lost_request_is_resent_once_and_reported() {
    let world = World::default();
    let error = failed(world.invoke(&[Send::Reply, Send::LoseRequest], &[]).await);
    assert!(
        matches!(error, ObjectError::Publish { batch: 1, source: PublishError::Ambiguous(_), .. }),
        "{error}"
    );
    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    assert_eq!(world.recorded(), batches(), "reported, yet counted once");
}

#[tokio::test]
async fn a_resend_refused_keeps_the_batch_in_doubt_for_the_next_delivery() {
    let world = World::default();
    failed(world.invoke(&[Send::LoseReply], &[]).await);
    // The resend is refused: nothing recorded by it, and the doubt about the first send stays.
    let error = failed(world.invoke(&[Send::Refuse], &[]).await);
    assert!(
        matches!(error, ObjectError::Publish { batch: 0, source: PublishError::Rejected(_), .. }),
        "{error}"
    );
    assert_eq!(world.marker().in_flight, Some(InFlight { batch: 0, ambiguous: true }));

    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    let [first, second] = <[Vec<Datum>; 2]>::try_from(batches()).unwrap();
    assert_eq!(world.recorded(), vec![first.clone(), first, second]);
}

/// Fault point 3: the reply arrived, the invocation died before the marker recorded it.
/// The irreducible case: the batch is sent twice, and reported.
#[tokio::test]
async fn a_death_after_the_reply_before_the_marker_update_resends_that_batch_and_reports_it() {
    let world = World::default();
    // Writes: 0 the claim, 1 batch 0 in flight, 2 batch 0 published and batch 1 in flight.
    assert!(matches!(world.invoke(&[], &[(2, Save::DieBefore)]).await, Ended::Died));
    assert_eq!(world.marker().in_flight, Some(InFlight { batch: 0, ambiguous: false }));

    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    let [first, second] = <[Vec<Datum>; 2]>::try_from(batches()).unwrap();
    assert_eq!(world.recorded(), vec![first.clone(), first, second]);
}

#[tokio::test]
async fn a_marker_write_failing_after_the_reply_still_records_the_batch_as_published() {
    let world = World::default();
    let error = failed(world.invoke(&[], &[(2, Save::Fail)]).await);
    assert!(matches!(error, ObjectError::Marker(_)), "{error}");
    // The failure write says what the reply said.
    let marker = world.marker();
    assert_eq!((marker.status, marker.published_batches, marker.in_flight), (MarkerStatus::Failed, 1, None));

    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 0);
    assert_eq!(world.recorded(), batches(), "each batch once");
}

/// Fault point 4: after the marker update. The write that records batch 0 also records
/// batch 1 in flight, so a death right after it resends batch 1 (once, as it never went
/// out, though the takeover must report it); after the final write nothing is resent.
#[tokio::test]
async fn a_death_after_the_marker_update_resends_nothing_already_recorded() {
    let world = World::default();
    assert!(matches!(world.invoke(&[], &[(2, Save::DieAfter)]).await, Ended::Died));
    let marker = world.marker();
    assert_eq!(
        (marker.published_batches, marker.in_flight),
        (1, Some(InFlight { batch: 1, ambiguous: false }))
    );
    assert_eq!(ambiguous_publishes(world.invoke(&[], &[]).await), 1);
    assert_eq!(world.recorded(), batches(), "each batch once");

    let world = World::default();
    // Writes: claim, batch 0 in flight, batch 1 in flight, done.
    assert!(matches!(world.invoke(&[], &[(3, Save::DieAfter)]).await, Ended::Died));
    assert_eq!(world.marker().status, MarkerStatus::Done);
    assert!(matches!(world.invoke(&[], &[]).await, Ended::Returned(Ok(ObjectOutcome::Duplicate { .. }))));
    assert_eq!(world.recorded(), batches(), "each batch once");
}

#[test]
fn ambiguous_publishes_are_counted_in_the_processors_own_namespace() {
    let record: serde_json::Value = serde_json::from_str(&crate::own_metrics::ambiguous_publishes_record(
        "log-processor",
        1_700_000_000_000,
    ))
    .unwrap();
    assert_eq!(record["AmbiguousPublishes"], 1.0);
    assert_eq!(record["FunctionName"], "log-processor");
    let directive = &record["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], crate::OWN_METRICS_NAMESPACE);
    assert_eq!(directive["Metrics"], serde_json::json!([{"Name": "AmbiguousPublishes", "Unit": "Count"}]));
}

/// Where EMF records go: kept, or refused as a closed stdout would.
#[derive(Clone, Default)]
struct EmfWriter {
    written: Arc<Mutex<Vec<u8>>>,
    broken: bool,
}

impl std::io::Write for EmfWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.broken {
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout closed"));
        }
        self.written.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn emf_out(writer: &EmfWriter) -> EmfOut {
    Arc::new(Mutex::new(Box::new(writer.clone())))
}

#[tokio::test]
async fn an_emf_write_that_fails_fails_the_object_and_the_redelivery_writes_the_records_again_reported() {
    let world = World::default();
    let broken = EmfWriter { broken: true, ..EmfWriter::default() };
    let error = failed(world.invoke_emf(emf_out(&broken)).await);
    assert!(matches!(error, ObjectError::Emf(_)), "{error}");
    assert!(!error.retryable());
    assert_ne!(world.marker().status, MarkerStatus::Done, "marked done with nothing written");

    // Part of it may have been written before the write failed: written again, reported.
    let working = EmfWriter::default();
    assert_eq!(ambiguous_publishes(world.invoke_emf(emf_out(&working)).await), 1);
    let records = String::from_utf8(working.written.lock().unwrap().clone()).unwrap();
    assert!(records.lines().count() > 0 && records.lines().all(|l| l.contains("\"_aws\"")), "{records}");
    assert_eq!(world.marker().status, MarkerStatus::Done);
    // Done: a further redelivery writes nothing.
    let again = EmfWriter::default();
    assert!(matches!(
        world.invoke_emf(emf_out(&again)).await,
        Ended::Returned(Ok(ObjectOutcome::Duplicate { .. }))
    ));
    assert!(again.written.lock().unwrap().is_empty());
}

/// EMF mode: an invocation that dies after writing its records (before the final marker
/// write) leaves them in flight; the next delivery writes them again and reports it.
#[tokio::test]
async fn emf_records_written_before_a_death_are_written_again_and_reported() {
    let world = World::default();
    let first = EmfWriter::default();
    // Writes: 0 the claim, 1 in flight, 2 done: die just before the last.
    let died = world.run(&[], &[(2, Save::DieBefore)], Some(emf_out(&first))).await;
    assert!(matches!(died, Ended::Died));
    assert!(!first.written.lock().unwrap().is_empty());
    let marker = world.marker();
    assert_eq!(marker.in_flight, Some(InFlight { batch: 0, ambiguous: false }), "{marker:?}");

    let second = EmfWriter::default();
    assert_eq!(ambiguous_publishes(world.invoke_emf(emf_out(&second)).await), 1);
    assert_eq!(*second.written.lock().unwrap(), *first.written.lock().unwrap(), "the same records");
    assert_eq!(world.marker().status, MarkerStatus::Done);
}

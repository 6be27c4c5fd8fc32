use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use integration_tests::{Moto, fixture, gzip};
use lambda_runtime::{Context, LambdaEvent};
use log_processor::{ObjectOutcome, ObjectRef, Processor, ProcessorConfig, S3Objects};
use serde_json::Value;
use shared::aws::Clients;

const BUCKET: &str = "alb-logs";
const KEY: &str =
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/shop alb+1_20261130T1205Z.log.gz";
const LOAD_BALANCER: &str = "app/shop-alb/50dc6c495c0c9188";
/// 2026-11-30T12:00:00Z, the first minute of the fixture.
const MINUTE_0: i64 = 1_796_040_000;

/// The processors' clock: an hour after the fixtures' first minute, so that their datums
/// stay inside CloudWatch's window (two weeks back, two hours ahead) whenever this runs.
fn fixture_now() -> i64 {
    MINUTE_0 + 3600
}

fn event(name: &str, request_id: &str) -> LambdaEvent<Value> {
    let payload =
        serde_json::from_slice(&std::fs::read(fixture(&format!("events/{name}"))).unwrap()).unwrap();
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    LambdaEvent::new(payload, context)
}

/// A statistic of an ALB metric per minute over the fixture's two minutes.
async fn per_minute(clients: &Clients, name: &str, stat: &str) -> Vec<(i64, f64)> {
    per_minute_between(clients, name, stat, MINUTE_0, MINUTE_0 + 120).await
}

/// A statistic of an ALB metric per minute from `start` to `end`, in time order.
async fn per_minute_between(
    clients: &Clients,
    name: &str,
    stat: &str,
    start: i64,
    end: i64,
) -> Vec<(i64, f64)> {
    let metric = Metric::builder()
        .namespace(log_processor::config::DEFAULT_NAMESPACE)
        .metric_name(name)
        .dimensions(Dimension::builder().name("LoadBalancer").value(LOAD_BALANCER).build())
        .build();
    let output = clients
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("m")
                .metric_stat(MetricStat::builder().metric(metric).period(60).stat(stat).build())
                .build(),
        )
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(end))
        .send()
        .await
        .expect("GetMetricData");
    let result = &output.metric_data_results()[0];
    let mut points: Vec<(i64, f64)> =
        result.timestamps().iter().map(|t| t.secs()).zip(result.values().iter().copied()).collect();
    points.sort_by_key(|p| p.0);
    points
}

async fn request_counts(clients: &Clients) -> Vec<(i64, f64)> {
    per_minute(clients, "RequestCount", "Sum").await
}

struct Setup {
    moto: Moto,
    clients: Clients,
}

/// moto with the log bucket holding the gzip ALB fixture under the events' key.
async fn setup() -> Setup {
    let moto = Moto::start();
    let config = moto.sdk_config(log_processor::RETRY).await;
    let clients = Clients::new(&config, false);
    clients.s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    clients.s3.put_object().bucket(BUCKET).key(KEY).body(log.into()).send().await.expect("PutObject");
    Setup { moto, clients }
}

/// Idempotency markers under `s3://alb-logs/processor-state`.
fn processor_config() -> ProcessorConfig {
    ProcessorConfig {
        state: Some("s3://alb-logs/processor-state".parse().unwrap()),
        ..ProcessorConfig::default()
    }
}

fn processor(s: &Setup) -> Processor<S3Objects> {
    Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, processor_config())
        .with_clock(fixture_now)
}

#[tokio::test]
async fn publishes_per_minute_metrics_from_a_gzip_alb_log() {
    let s = setup().await;
    let summary = processor(&s).handle(event("s3-object-created.json", "r1")).await.expect("handler");

    // The event's key is URL-encoded ("shop+alb%2B1"): processed means it was decoded right.
    let object = &summary["objects"][0];
    assert_eq!(object["result"], "processed", "{summary}");
    assert_eq!((object["key"].as_str(), object["format"].as_str()), (Some(KEY), Some("alb")));
    assert_eq!((object["records"].as_u64(), object["malformed"].as_u64()), (Some(7), Some(1)));

    let clients = &s.clients;
    assert_eq!(request_counts(clients).await, vec![(MINUTE_0, 5.0), (MINUTE_0 + 60, 2.0)]);
    let sums = |name| per_minute(clients, name, "Sum");
    assert_eq!(sums("HTTPCode_2XX_Count").await, vec![(MINUTE_0, 2.0), (MINUTE_0 + 60, 1.0)]);
    assert_eq!(sums("HTTPCode_3XX_Count").await, vec![(MINUTE_0, 1.0), (MINUTE_0 + 60, 0.0)]);
    assert_eq!(sums("HTTPCode_4XX_Count").await, vec![(MINUTE_0, 0.0), (MINUTE_0 + 60, 1.0)]);
    assert_eq!(sums("HTTPCode_5XX_Count").await, vec![(MINUTE_0, 2.0), (MINUTE_0 + 60, 0.0)]);
    // TargetResponseTime: the two -1 entries (502, 503) are excluded, leaving 3 + 2 samples.
    let latency_samples = per_minute(clients, "TargetResponseTime", "SampleCount").await;
    assert_eq!(latency_samples, vec![(MINUTE_0, 3.0), (MINUTE_0 + 60, 2.0)]);
}

#[tokio::test]
async fn duplicate_and_concurrent_deliveries_publish_each_datum_once() {
    let s = setup().await;
    let (a, b) = (processor(&s), processor(&s));
    // Two invocations with the same event at the same moment: one publishes; the other
    // finds the marker taken and fails (to be retried), or, if the first finished before
    // it looked, finds it done. Either way it publishes nothing.
    let (ra, rb) = tokio::join!(
        a.handle(event("s3-object-created.json", "a")),
        b.handle(event("s3-object-created.json", "b"))
    );
    let outcome = |r: &Result<Value, log_processor::ProcessError>| match r {
        Ok(summary) => summary["objects"][0]["result"].as_str().unwrap_or_default().to_owned(),
        Err(error) if error.to_string().contains("retry later") => "busy".to_owned(),
        Err(error) => panic!("{error}"),
    };
    let mut outcomes = [outcome(&ra), outcome(&rb)];
    outcomes.sort();
    assert!(outcomes == ["busy", "processed"] || outcomes == ["duplicate", "processed"], "{outcomes:?}");
    // The retry, and a redelivery through SNS, and one through EventBridge: all duplicates.
    for (name, request) in [
        ("s3-object-created.json", "retry"),
        ("sns-s3-object-created.json", "sns"),
        ("eventbridge-object-created.json", "eb"),
    ] {
        let summary = b.handle(event(name, request)).await.expect(name);
        assert_eq!(summary["objects"][0]["result"], "duplicate", "{name}: {summary}");
    }
    assert_eq!(request_counts(&s.clients).await, vec![(MINUTE_0, 5.0), (MINUTE_0 + 60, 2.0)], "counted once");
}

#[tokio::test]
async fn an_sqs_batch_reports_only_the_bad_message() {
    let s = setup().await;
    let response = processor(&s).handle(event("sqs-batch.json", "r1")).await.expect("handler");
    // Both good messages name the same object: the first publishes, the second is a duplicate.
    assert_eq!(response, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "bad-body"}]}));
    assert_eq!(request_counts(&s.clients).await, vec![(MINUTE_0, 5.0), (MINUTE_0 + 60, 2.0)]);
}

#[tokio::test]
async fn test_events_missing_objects_and_own_objects_are_acknowledged() {
    let s = setup().await;
    let processor = processor(&s);
    let summary = processor.handle(event("s3-test-event.json", "r1")).await.expect("test event");
    assert_eq!(summary["ignored"], serde_json::json!(["s3:TestEvent"]));

    let gone = ObjectRef::new(BUCKET, "deleted.log.gz");
    let outcome = tokio::time::timeout(Duration::from_secs(30), processor.process_object(&gone, "r2", None))
        .await
        .unwrap();
    assert!(matches!(outcome, Ok(ObjectOutcome::Missing { .. })), "{outcome:?}");

    // Recursion guard: the processor's own markers live in this bucket too.
    let own = ObjectRef::new(BUCKET, "processor-state/markers/abc.json");
    let outcome = processor.process_object(&own, "r3", None).await;
    assert!(matches!(outcome, Ok(ObjectOutcome::OwnObject { .. })), "{outcome:?}");
    assert!(request_counts(&s.clients).await.is_empty(), "nothing published");
    // A key that merely starts with the state prefix is a log like any other.
    let archive = ObjectRef::new(BUCKET, "processor-state-archive/x.log.gz");
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    s.clients.s3.put_object().bucket(BUCKET).key(&archive.key).body(log.into()).send().await.unwrap();
    let outcome = processor.process_object(&archive, "r4", None).await;
    assert!(matches!(outcome, Ok(ObjectOutcome::Processed { records: 7, .. })), "{outcome:?}");
}

#[tokio::test]
async fn a_permanent_error_fails_the_invocation_with_the_object_named() {
    let s = setup().await;
    let mut missing_bucket = event("s3-object-created.json", "r1");
    missing_bucket.payload["Records"][0]["s3"]["bucket"]["name"] = "no-such-bucket".into();
    let error = processor(&s).handle(missing_bucket).await.unwrap_err().to_string();
    assert!(error.contains("1 of 1 items failed"), "{error}");
    assert!(error.contains("s3://no-such-bucket/") && error.contains("NoSuchBucket"), "{error}");

    // An object whose format cannot be detected: failed with the reason, not retried as if
    // it could get better, and the next delivery may try again (the marker says failed).
    s.clients
        .s3
        .put_object()
        .bucket(BUCKET)
        .key("notes.txt")
        .body(b"hello\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let error =
        processor(&s).process_object(&ObjectRef::new(BUCKET, "notes.txt"), "r2", None).await.unwrap_err();
    assert!(!error.retryable());
    assert!(error.to_string().contains("could not be detected"), "{error}");
}

/// 70 minutes of one request each: 70 × (LoadBalancer + TargetGroup) × 8 = 1,120 datums, two
/// PutMetricData batches.
fn long_log() -> Vec<u8> {
    let template =
        std::fs::read_to_string(fixture("logs/alb.log")).unwrap().lines().next().unwrap().to_owned();
    let log: String = (0..70)
        .map(|m| {
            template
                .replace("2026-11-30T12:00:01", &format!("2026-11-30T{:02}:{:02}:01", 12 + m / 60, m % 60))
                + "\n"
        })
        .collect();
    log.into_bytes()
}

/// Uploads [`long_log`] as `long.log`.
async fn put_long_log(s: &Setup) -> ObjectRef {
    s.clients.s3.put_object().bucket(BUCKET).key("long.log").body(long_log().into()).send().await.unwrap();
    ObjectRef::new(BUCKET, "long.log")
}

#[tokio::test]
async fn a_takeover_publishes_only_the_batches_not_yet_published() {
    use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
    let s = setup().await;
    let object = put_long_log(&s).await;

    // The second batch is refused (a permanent error): the first is out, the marker says so.
    let proxy = FaultProxy::start(
        &s.moto.endpoint,
        vec![Fault { matches: "Action=PutMetricData", kind: FaultKind::Deny, times: 1, after: 1 }],
    )
    .await;
    let config = proxy.sdk_config(&s.moto.sdk_config(log_processor::RETRY).await);
    let failing = Processor::new(
        S3Objects::new(s.clients.s3.clone()),
        &Clients::new(&config, false),
        processor_config(),
    )
    .with_clock(fixture_now);
    let error = failing.process_object(&object, "first", None).await.unwrap_err();
    assert!(error.to_string().contains("AccessDenied") && !error.retryable(), "{error}");
    assert_eq!(proxy.injected().len(), 1);

    // The next delivery takes over from the failed marker and sends the second batch only.
    let clients = Clients::new(&s.moto.sdk_config(log_processor::RETRY).await, false);
    let retry = Processor::new(S3Objects::new(clients.s3.clone()), &clients, processor_config())
        .with_clock(fixture_now);
    let outcome = retry.process_object(&object, "second", None).await.unwrap();
    assert!(matches!(outcome, ObjectOutcome::Processed { records: 70, .. }), "{outcome:?}");
    assert_eq!(
        clients.calls.by_operation().get("PutMetricData"),
        Some(&1),
        "{:?}",
        clients.calls.by_operation()
    );
    // Every minute counted exactly once, in whichever batch it was.
    let counts = request_counts(&s.clients).await;
    assert_eq!(counts.len(), 2, "the query covers two minutes: {counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == 1.0), "{counts:?}");
    let last = MINUTE_0 + 69 * 60;
    let late = per_minute_between(&s.clients, "RequestCount", "Sum", last, last + 60).await;
    assert_eq!(late, vec![(last, 1.0)]);
}

#[tokio::test]
async fn an_object_is_not_started_too_close_to_the_deadline() {
    let s = setup().await;
    let mut late = event("s3-object-created.json", "late");
    // One second left, with the default five-second margin.
    let deadline = std::time::SystemTime::now() + Duration::from_secs(1);
    late.context.deadline = deadline.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let error = processor(&s).handle(late).await.unwrap_err().to_string();
    assert!(error.contains("deadline is too near"), "{error}");
    // Nothing was claimed: the retry processes it at once.
    let summary = processor(&s).handle(event("s3-object-created.json", "retry")).await.unwrap();
    assert_eq!(summary["objects"][0]["result"], "processed", "{summary}");
}

#[tokio::test]
async fn emf_mode_publishes_without_api_calls_and_still_once() {
    let s = setup().await;
    let config = ProcessorConfig { metrics_mode: log_processor::MetricsMode::Emf, ..processor_config() };
    let clients = Clients::new(&s.moto.sdk_config(log_processor::RETRY).await, false);
    let processor =
        Processor::new(S3Objects::new(clients.s3.clone()), &clients, config).with_clock(fixture_now);
    let first = processor.handle(event("s3-object-created.json", "r1")).await.unwrap();
    assert_eq!(first["objects"][0]["result"], "processed", "{first}");
    let again = processor.handle(event("s3-object-created.json", "r2")).await.unwrap();
    assert_eq!(again["objects"][0]["result"], "duplicate", "{again}");
    let calls = clients.calls.by_operation();
    assert_eq!(calls.get("PutMetricData"), None, "{calls:?}");
}

#[tokio::test]
async fn normalized_records_are_written_as_gzip_ndjson_under_the_output_prefix() {
    let s = setup().await;
    let config =
        ProcessorConfig { output: Some("s3://alb-logs/normalized".parse().unwrap()), ..processor_config() };
    let processor =
        Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);
    let summary = processor.handle(event("s3-object-created.json", "r1")).await.unwrap();
    assert_eq!(summary["objects"][0]["result"], "processed", "{summary}");
    let listed = s.clients.s3.list_objects_v2().bucket(BUCKET).prefix("normalized/").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("normalized/alb/dt=2026-11-30/shop_alb_1_20261130T1205Z.log.gz-"),
        "{}",
        keys[0]
    );
    let body = s.clients.s3.get_object().bucket(BUCKET).key(keys[0]).send().await.unwrap();
    let bytes = body.body.collect().await.unwrap().into_bytes();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 7);
    assert_eq!(records[0]["dimensions"]["LoadBalancer"], LOAD_BALANCER);
    assert_eq!(records[0]["format"], "alb");
    // The output's own notification would come back: it is never processed.
    let own = processor.process_object(&ObjectRef::new(BUCKET, keys[0]), "r2", None).await.unwrap();
    assert!(matches!(own, ObjectOutcome::OwnObject { .. }), "{own:?}");
}

/// RequestCount per minute over the long log's 70 minutes.
async fn long_log_counts(s: &Setup) -> Vec<(i64, f64)> {
    per_minute_between(&s.clients, "RequestCount", "Sum", MINUTE_0, MINUTE_0 + 70 * 60).await
}

/// The minutes whose LoadBalancer-only RequestCount datum is in the long log's first batch.
fn minutes_in_the_first_batch() -> Vec<i64> {
    let options = log_processor::ReadOptions {
        key: "long.log",
        format: None,
        max_line_bytes: log_processor::config::DEFAULT_MAX_LINE_BYTES,
        vpc_interface_dimension: false,
        cancel: None,
    };
    let summary = log_processor::summarize(&long_log()[..], &options).unwrap();
    let batches = shared::metrics::request_batches(&summary.metrics);
    assert_eq!(batches.len(), 2);
    batches[0]
        .iter()
        .filter(|d| d.name == "RequestCount" && d.dimensions.len() == 1)
        .map(|d| d.timestamp)
        .collect()
}

/// The object's only idempotency marker.
async fn marker(s: &Setup) -> Value {
    let listed = s
        .clients
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("processor-state/markers/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let object = s.clients.s3.get_object().bucket(BUCKET).key(keys[0]).send().await.unwrap();
    serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
}

#[tokio::test]
async fn a_lost_reply_to_put_metric_data_is_not_retried_and_only_that_batch_is_sent_again() {
    use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
    use log_processor::{ObjectError, PublishError};
    let s = setup().await;
    let object = put_long_log(&s).await;

    // moto records the first batch, and its reply never comes back.
    let proxy = FaultProxy::start(
        &s.moto.endpoint,
        vec![Fault { matches: "Action=PutMetricData", kind: FaultKind::DropResponse, times: 1, after: 0 }],
    )
    .await;
    let clients = Clients::new(&proxy.sdk_config(&s.moto.sdk_config(log_processor::RETRY).await), false);
    let failing = Processor::new(S3Objects::new(clients.s3.clone()), &clients, processor_config())
        .with_clock(fixture_now);
    let error = failing.process_object(&object, "first", None).await.unwrap_err();
    assert!(
        matches!(error, ObjectError::Publish { batch: 0, total: 2, source: PublishError::Ambiguous(_) }),
        "{error:?}"
    );
    assert!(error.retryable(), "the redelivery settles it");
    assert_eq!(proxy.injected(), vec![("Action=PutMetricData", FaultKind::DropResponse)]);
    let calls = clients.calls.by_operation();
    assert_eq!(calls.get("PutMetricData"), Some(&1), "not retried by the SDK: {calls:?}");
    let left = marker(&s).await;
    assert_eq!(
        (left["status"].as_str(), left["published_batches"].as_u64()),
        (Some("failed"), Some(0)),
        "{left}"
    );
    assert_eq!(left["in_flight"], serde_json::json!({"batch": 0, "ambiguous": true}), "{left}");

    // The redelivery sends that batch again, and the other one, and reports the resend.
    let clients = Clients::new(&s.moto.sdk_config(log_processor::RETRY).await, false);
    let retry = Processor::new(S3Objects::new(clients.s3.clone()), &clients, processor_config())
        .with_clock(fixture_now);
    let outcome = retry.process_object(&object, "second", None).await.unwrap();
    assert!(
        matches!(outcome, ObjectOutcome::Processed { records: 70, ambiguous_publishes: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(clients.calls.by_operation().get("PutMetricData"), Some(&2));
    assert_eq!(marker(&s).await["status"], "done");

    // The first batch's minutes are counted twice, the second's once: nothing else doubled.
    let doubled = minutes_in_the_first_batch();
    assert!(!doubled.is_empty() && doubled.len() < 70, "{doubled:?}");
    let expected: Vec<(i64, f64)> = (0..70)
        .map(|m| MINUTE_0 + m * 60)
        .map(|t| (t, if doubled.contains(&t) { 2.0 } else { 1.0 }))
        .collect();
    assert_eq!(long_log_counts(&s).await, expected);
}

#[tokio::test]
async fn a_throttled_publish_is_retried_by_the_sdk_and_counted_once() {
    use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
    let s = setup().await;
    let object = put_long_log(&s).await;
    // Throttling is a refusal: CloudWatch recorded nothing, so the SDK's retry is safe.
    let proxy = FaultProxy::start(
        &s.moto.endpoint,
        vec![Fault { matches: "Action=PutMetricData", kind: FaultKind::Throttle, times: 1, after: 1 }],
    )
    .await;
    let clients = Clients::new(&proxy.sdk_config(&s.moto.sdk_config(log_processor::RETRY).await), false);
    let processor = Processor::new(S3Objects::new(clients.s3.clone()), &clients, processor_config())
        .with_clock(fixture_now);
    let outcome = processor.process_object(&object, "r1", None).await.unwrap();
    assert!(matches!(outcome, ObjectOutcome::Processed { ambiguous_publishes: 0, .. }), "{outcome:?}");
    assert_eq!(proxy.injected().len(), 1);
    assert_eq!(clients.calls.by_operation().get("PutMetricData"), Some(&3), "two batches, one retry");
    let counts = long_log_counts(&s).await;
    assert_eq!(counts.len(), 70);
    assert!(counts.iter().all(|(_, n)| *n == 1.0), "{counts:?}");
}

/// A read that fails half-way leaves no normalized output: the upload is aborted, not
/// completed with the records read so far.
#[tokio::test]
async fn a_failed_read_leaves_no_normalized_output() {
    let s = setup().await;
    let lines = std::fs::read_to_string(fixture("logs/alb.log")).unwrap().repeat(500);
    let log = gzip(lines.as_bytes());
    let key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/cut.log.gz";
    let cut = log[..log.len() / 2].to_vec();
    s.clients.s3.put_object().bucket(BUCKET).key(key).body(cut.into()).send().await.unwrap();
    let config =
        ProcessorConfig { output: Some("s3://alb-logs/normalized".parse().unwrap()), ..processor_config() };
    let processor =
        Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);

    let error = processor.process_object(&ObjectRef::new(BUCKET, key), "r1", None).await.unwrap_err();
    assert!(matches!(error, log_processor::ObjectError::Read(_)), "{error}");
    let listed = s.clients.s3.list_objects_v2().bucket(BUCKET).prefix("normalized/").send().await.unwrap();
    assert!(listed.contents().is_empty(), "partial output written: {:?}", listed.contents());
    let uploads = s.clients.s3.list_multipart_uploads().bucket(BUCKET).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "an upload left open: {:?}", uploads.uploads());
}

/// `ROUTES` through the handler: requests counted again per route, unmatched ones under
/// `other`.
#[tokio::test]
async fn routes_publish_request_counts_per_route() {
    let s = setup().await;
    let routes = log_processor::routes::Routes::parse("/api=api,/=home", 20).unwrap();
    let config = ProcessorConfig { routes, ..processor_config() };
    let processor =
        Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);
    let summary = processor.handle(event("s3-object-created.json", "r1")).await.unwrap();
    assert_eq!(summary["objects"][0]["result"], "processed", "{summary}");
    let mut counted = Vec::new();
    for route in ["api", "home", "other"] {
        let metric = Metric::builder()
            .namespace(log_processor::config::DEFAULT_NAMESPACE)
            .metric_name("RequestCount")
            .dimensions(Dimension::builder().name("LoadBalancer").value(LOAD_BALANCER).build())
            .dimensions(Dimension::builder().name("Route").value(route).build())
            .build();
        let output = s
            .clients
            .cloudwatch
            .get_metric_data()
            .metric_data_queries(
                MetricDataQuery::builder()
                    .id("m")
                    .metric_stat(MetricStat::builder().metric(metric).period(120).stat("Sum").build())
                    .build(),
            )
            .start_time(DateTime::from_secs(MINUTE_0))
            .end_time(DateTime::from_secs(MINUTE_0 + 120))
            .send()
            .await
            .unwrap();
        counted.push((route, output.metric_data_results()[0].values().iter().sum::<f64>()));
    }
    // The fixture's 7 requests: /api twice, / twice, /cart, /old and /missing.
    assert_eq!(counted, [("api", 2.0), ("home", 2.0), ("other", 3.0)]);
}

/// `LOG_FORMATS` through the handler: keys under a named prefix are read in that format,
/// whatever detection would say (here wrongly, to show it is applied).
#[tokio::test]
async fn log_formats_name_the_format_of_keys_under_a_prefix() {
    let s = setup().await;
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    s.clients.s3.put_object().bucket(BUCKET).key("forced/a.log.gz").body(log.into()).send().await.unwrap();
    let config = ProcessorConfig {
        formats: vec![("forced/".into(), log_processor::Format::Elb)],
        ..processor_config()
    };
    let forcing =
        Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);
    let outcome =
        forcing.process_object(&ObjectRef::new(BUCKET, "forced/a.log.gz"), "r1", None).await.unwrap();
    let ObjectOutcome::Processed { format, records, .. } = outcome else { panic!("{outcome:?}") };
    // ALB lines read as Classic ELB lines do not parse as requests.
    assert_eq!((format, records), (Some(log_processor::Format::Elb), 0));
    // Detection, without the prefix: ALB.
    let detected = processor(&s).process_object(&ObjectRef::new(BUCKET, KEY), "r2", None).await.unwrap();
    assert!(matches!(detected, ObjectOutcome::Processed { format: Some(log_processor::Format::Alb), .. }));
}

/// `VPC_INTERFACE_DIMENSION` through the handler: flow metrics per network interface too.
#[tokio::test]
async fn vpc_flow_metrics_per_interface_when_asked() {
    let s = setup().await;
    let key = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/30/flows.log.gz";
    let log = gzip(&std::fs::read(fixture("logs/vpcflow.log")).unwrap());
    s.clients.s3.put_object().bucket(BUCKET).key(key).body(log.into()).send().await.unwrap();
    let s = &s;
    let interface_dimensions = |vpc_interface_dimension| {
        let config = ProcessorConfig { vpc_interface_dimension, state: None, ..processor_config() };
        let processor =
            Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);
        async move {
            processor.process_object(&ObjectRef::new(BUCKET, key), "r", None).await.unwrap();
            let listed = s
                .clients
                .cloudwatch
                .list_metrics()
                .namespace(log_processor::config::DEFAULT_NAMESPACE)
                .dimensions(aws_sdk_cloudwatch::types::DimensionFilter::builder().name("InterfaceId").build())
                .send()
                .await
                .unwrap();
            listed.metrics().len()
        }
    };
    assert_eq!(interface_dimensions(false).await, 0);
    assert!(interface_dimensions(true).await > 0, "no metric per InterfaceId");
}

/// A marker left in progress in S3 by an invocation that died is taken over once it is
/// older than `IDEMPOTENCY_TAKEOVER_SECONDS`, after the batches it records; a fresh one
/// means another invocation is at work.
#[tokio::test]
async fn a_stale_in_progress_marker_is_taken_over_and_a_fresh_one_is_busy() {
    let s = setup().await;
    let object = put_long_log(&s).await;
    processor(&s).process_object(&object, "first", None).await.unwrap();
    // Rewrite its marker as a dead invocation would have left it: one of two batches out.
    let listed =
        s.clients.s3.list_objects_v2().bucket(BUCKET).prefix("processor-state/markers/").send().await;
    let keys: Vec<String> =
        listed.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let marker_key = keys.iter().find(|k| k.ends_with(".json")).expect("a marker");
    let s = &s;
    let leave = |updated_at: i64| async move {
        let body = s.clients.s3.get_object().bucket(BUCKET).key(marker_key).send().await.unwrap();
        let mut marker: Value =
            serde_json::from_slice(&body.body.collect().await.unwrap().into_bytes()).unwrap();
        marker["status"] = "in_progress".into();
        marker["owner"] = "dead".into();
        marker["updated_at"] = updated_at.into();
        marker["published_batches"] = 1.into();
        let text = marker.to_string();
        s.clients
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(marker_key)
            .body(text.into_bytes().into())
            .send()
            .await
            .unwrap();
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    leave(now).await;
    let busy = processor(s).process_object(&object, "second", None).await.unwrap_err();
    assert!(busy.to_string().contains("retry later"), "{busy}");

    leave(now - 1_000).await; // older than the default 900 s
    let clients = Clients::new(&s.moto.sdk_config(log_processor::RETRY).await, false);
    let taking_over = Processor::new(S3Objects::new(clients.s3.clone()), &clients, processor_config())
        .with_clock(fixture_now);
    let outcome = taking_over.process_object(&object, "third", None).await.unwrap();
    assert!(matches!(outcome, ObjectOutcome::Processed { records: 70, .. }), "{outcome:?}");
    assert_eq!(clients.calls.by_operation().get("PutMetricData"), Some(&1), "only the second batch");
}

/// A second processing of the same object version (a retry: no markers here to stop it)
/// writes the same key again, so the output holds the object's records once.
#[tokio::test]
async fn a_retry_of_the_same_object_overwrites_its_normalized_output() {
    let s = setup().await;
    let config = ProcessorConfig {
        output: Some("s3://alb-logs/normalized".parse().unwrap()),
        ..ProcessorConfig::default()
    };
    let processor =
        Processor::new(S3Objects::new(s.clients.s3.clone()), &s.clients, config).with_clock(fixture_now);
    let keys = || async {
        let listed =
            s.clients.s3.list_objects_v2().bucket(BUCKET).prefix("normalized/").send().await.unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect::<Vec<_>>()
    };
    processor.process_object(&ObjectRef::new(BUCKET, KEY), "r1", None).await.unwrap();
    let first = keys().await;
    assert_eq!(first.len(), 1, "{first:?}");
    processor.process_object(&ObjectRef::new(BUCKET, KEY), "r2", None).await.unwrap();
    assert_eq!(keys().await, first, "a second object for the same version");
}

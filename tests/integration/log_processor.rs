use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use integration_tests::{Moto, fixture, gzip};
use lambda_runtime::{Context, LambdaEvent};
use log_processor::{ObjectRef, Processor, ProcessorConfig, S3Objects};
use shared::aws::Clients;

const BUCKET: &str = "alb-logs";
const KEY: &str =
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/shop alb+1_20261130T1205Z.log.gz";
const LOAD_BALANCER: &str = "app/shop-alb/50dc6c495c0c9188";
/// 2026-11-30T12:00:00Z, the first minute of the fixture.
const MINUTE_0: i64 = 1_796_040_000;

fn s3_event() -> LambdaEvent<S3Event> {
    let payload = serde_json::from_slice(&std::fs::read(fixture("s3-object-created.json")).unwrap()).unwrap();
    LambdaEvent::new(payload, Context::default())
}

/// A statistic of a metric per minute over the fixture's two minutes.
async fn per_minute(clients: &Clients, name: &str, stat: &str) -> Vec<(i64, f64)> {
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
        .start_time(DateTime::from_secs(MINUTE_0))
        .end_time(DateTime::from_secs(MINUTE_0 + 120))
        .send()
        .await
        .expect("GetMetricData");
    let result = &output.metric_data_results()[0];
    let mut points: Vec<(i64, f64)> =
        result.timestamps().iter().map(|t| t.secs()).zip(result.values().iter().copied()).collect();
    points.sort_by_key(|p| p.0);
    points
}

async fn sums(clients: &Clients, name: &str) -> Vec<(i64, f64)> {
    per_minute(clients, name, "Sum").await
}

#[tokio::test]
async fn publishes_per_minute_metrics_from_a_gzip_alb_log() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let clients = Clients::new(&config, false);
    clients.s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    let log = std::fs::read(fixture("alb/sample.log")).unwrap();
    clients.s3.put_object().bucket(BUCKET).key(KEY).body(gzip(&log).into()).send().await.expect("PutObject");

    let processor = Processor::new(
        S3Objects::new(clients.s3.clone()),
        clients.cloudwatch.clone(),
        ProcessorConfig::default(),
    );
    let summary = processor.handle(s3_event()).await.expect("handler");

    // The event's key is URL-encoded ("shop+alb%2B1"): found means it was decoded right.
    assert_eq!(summary.objects.len(), 1);
    assert!(summary.objects[0].found);
    assert_eq!(summary.objects[0].key, KEY);
    assert_eq!((summary.records, summary.malformed), (7, 1));
    assert!(summary.datums_published > 0);

    assert_eq!(sums(&clients, "RequestCount").await, vec![(MINUTE_0, 5.0), (MINUTE_0 + 60, 2.0)]);
    assert_eq!(sums(&clients, "HTTPCode_2XX_Count").await, vec![(MINUTE_0, 2.0), (MINUTE_0 + 60, 1.0)]);
    assert_eq!(sums(&clients, "HTTPCode_3XX_Count").await, vec![(MINUTE_0, 1.0), (MINUTE_0 + 60, 0.0)]);
    assert_eq!(sums(&clients, "HTTPCode_4XX_Count").await, vec![(MINUTE_0, 0.0), (MINUTE_0 + 60, 1.0)]);
    assert_eq!(sums(&clients, "HTTPCode_5XX_Count").await, vec![(MINUTE_0, 2.0), (MINUTE_0 + 60, 0.0)]);
    // Latency: the two -1 entries (502, 503) are excluded, leaving 3 + 2 samples.
    let latency_samples = per_minute(&clients, "Latency", "SampleCount").await;
    assert_eq!(latency_samples, vec![(MINUTE_0, 3.0), (MINUTE_0 + 60, 2.0)]);
}

#[tokio::test]
async fn a_deleted_object_is_acknowledged_and_a_missing_bucket_fails() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let clients = Clients::new(&config, false);
    clients.s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    let processor = Processor::new(
        S3Objects::new(clients.s3.clone()),
        clients.cloudwatch.clone(),
        ProcessorConfig::default(),
    );

    let gone = ObjectRef { bucket: BUCKET.to_owned(), key: "deleted.log.gz".to_owned() };
    let outcome = tokio::time::timeout(Duration::from_secs(30), processor.process_object(&gone))
        .await
        .unwrap()
        .unwrap();
    assert!(!outcome.found);
    assert_eq!(outcome.datums_published, 0);

    let err = processor.handle(s3_event_for("no-such-bucket")).await.unwrap_err();
    assert!(err.to_string().contains("1 of 1 objects failed"), "{err}");
}

fn s3_event_for(bucket: &str) -> LambdaEvent<S3Event> {
    let mut event = s3_event();
    event.payload.records[0].s3.bucket.name = Some(bucket.to_owned());
    event
}

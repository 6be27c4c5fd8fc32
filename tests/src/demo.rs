//! `make demo`: the whole product on a local moto server.
//!
//! A demo web group sits behind an ALB whose access logs land in S3. The log processor
//! (the real `bootstrap` binary under cargo-lambda's runtime emulator) turns them into
//! per-minute RequestCount metrics; the poller scales the group on them, tick by tick.
//! [`run`] prints the story and returns the figures it printed, so that a test can hold
//! the demo to what it shows.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{GroupSpec, LocalLambda, Moto, create_group, create_launch_template, gzip, workspace_binary};
use metric_poller::PollerConfig;
use metric_poller::policy_source::PolicyLocation;
use shared::aws::Clients;

const GROUP: &str = "demo-web";
const BUCKET: &str = "demo-alb-logs";
const LOAD_BALANCER: &str = "app/demo-alb/50dc6c495c0c9188";
/// Requests per minute one instance should carry.
const TARGET_PER_INSTANCE: u32 = 500;

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for Unix seconds.
fn iso8601(secs: i64, micros: u32) -> String {
    let (year, month, day) = shared::time::civil_date(secs);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `requests` ALB entries spread over the minute starting at `minute`, a few of them 5xx.
fn alb_minute(minute: i64, requests: u32, out: &mut String) {
    for i in 0..requests {
        let offset_micros = u64::from(i) * 59_000_000 / u64::from(requests.max(1));
        let at = minute + (offset_micros / 1_000_000) as i64;
        let (status, timings) =
            if i % 97 == 0 { ("503", "0.000 -1 -1") } else { ("200", "0.000 0.042 0.000") };
        out.push_str(&format!(
            "https {} {LOAD_BALANCER} 203.0.113.{}:{} 10.0.1.{}:8080 {timings} {status} {status} 310 2048 \
             \"GET https://shop.example.com:443/products/{i} HTTP/2.0\" \"Mozilla/5.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 \
             arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo/73e2d6bc24d8a067 \"Root=1-0-{i}\" \
             \"shop.example.com\" \"-\" 0 {} \"forward\" \"-\" \"-\" \"10.0.1.1:8080\" \"{status}\" \"-\" \"-\" TID_{i}\n",
            iso8601(at, (offset_micros % 1_000_000) as u32),
            i % 250,
            1024 + i % 60000,
            i % 4,
            iso8601(at, 0),
        ));
    }
}

/// What one log-processor invocation reported, summed over the objects of its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorFigures {
    pub records: u64,
    pub malformed: u64,
    pub datums_published: u64,
}

/// The group's capacity as one poller tick saw and set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickFigures {
    pub offset_seconds: u64,
    pub current: i32,
    pub desired: i32,
}

/// Everything the demo printed as figures.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    pub processor: Vec<ProcessorFigures>,
    pub ticks: Vec<TickFigures>,
}

fn heading(out: &mut dyn Write, text: &str) {
    writeln!(out, "\n== {text}").ok();
    out.flush().ok();
}

/// Runs the demo against a moto server of its own, writing the story to `out`.
pub async fn run(out: &mut dyn Write) -> DemoReport {
    let mut report = DemoReport::default();
    heading(out, "starting a local moto server");
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    let clients = Clients::new(&config, false);
    writeln!(out, "moto at {}", moto.endpoint).ok();

    heading(
        out,
        &format!("creating Auto Scaling group {GROUP} (desired 2, min 1, max 20) and bucket {BUCKET}"),
    );
    create_launch_template(&config, "demo-lt").await;
    let tags = vec![("lambda-autoscaler:enabled".to_owned(), "true".to_owned())];
    create_group(&config, "demo-lt", GroupSpec { name: GROUP, min: 1, max: 20, desired: 2, tags }).await;
    let policy = format!(
        r#"{{"groups": [{{"name": "{GROUP}", "metrics": [{{"id": "requests",
            "query": {{"namespace": "{}", "metric_name": "RequestCount",
                      "dimensions": {{"LoadBalancer": "{LOAD_BALANCER}"}}, "stat": "Sum", "period_seconds": 60}},
            "target": {{"per_instance": {TARGET_PER_INSTANCE}}}}}]}}]}}"#,
        log_processor::config::DEFAULT_NAMESPACE
    );
    writeln!(
        out,
        "  policy: scale on RequestCount (Sum per minute), {TARGET_PER_INSTANCE} requests per instance; HPA default behavior"
    )
    .ok();
    clients.s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    clients.s3.create_bucket().bucket("demo-state").send().await.expect("CreateBucket");

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let this_minute = now - now % 60;
    let mut function_env = moto.env();
    function_env.push(("RUST_LOG", "warn".to_owned()));
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &function_env, 60);
    let event_dir = crate::temp_dir("demo");

    let deliver = |name: &str, minutes: &[(i64, u32)]| {
        let mut log = String::new();
        for (minute, requests) in minutes {
            alb_minute(*minute, *requests, &mut log);
        }
        let key = format!("AWSLogs/123456789012/elasticloadbalancing/us-east-1/demo/{name}.log.gz");
        (key, gzip(log.as_bytes()))
    };

    // Five minutes of traffic: a steady 800 requests/minute, then a spike.
    let traffic: Vec<(i64, u32)> = vec![
        (this_minute - 300, 800),
        (this_minute - 240, 800),
        (this_minute - 180, 900),
        (this_minute - 120, 3_600),
        (this_minute - 60, 4_400),
    ];
    heading(
        out,
        "uploading an ALB access log with a traffic spike (requests per minute: 800 800 900 3600 4400)",
    );
    let (key, body) = deliver("spike", &traffic);
    clients.s3.put_object().bucket(BUCKET).key(&key).body(body.into()).send().await.expect("PutObject");
    report.processor.push(run_processor(out, &processor, &event_dir, &key));

    let policy_path = event_dir.join("policy.json");
    std::fs::write(&policy_path, &policy).expect("write policy");
    let poller_config = PollerConfig {
        policy: Some(PolicyLocation::Local(policy_path)),
        state: Some("s3://demo-state/poller".parse().expect("state uri")),
        ..PollerConfig::default()
    };
    let poller = metric_poller::build(&clients, poller_config).expect("poller");
    // The poller takes the time as input; the demo advances a simulated clock so that the
    // five-minute scale-down window passes in seconds.
    let start = SystemTime::now();
    let mut tick = async |out: &mut dyn Write, offset: u64| {
        heading(out, &format!("poller tick at +{offset} s"));
        let tick =
            poller.tick_with_lease("demo", start + Duration::from_secs(offset), 120).await.expect("tick");
        write!(out, "{tick}").ok();
        for group in tick.groups.iter().filter(|g| g.group == GROUP) {
            report.ticks.push(TickFigures {
                offset_seconds: offset,
                current: group.current,
                desired: group.desired,
            });
        }
    };
    for offset in [0, 15, 30] {
        tick(out, offset).await;
    }

    heading(out, "the next log: traffic falls to 300 requests/minute for the following minutes");
    let calm: Vec<(i64, u32)> = (1..=9).map(|k| (this_minute + 60 * k, 300)).collect();
    let (key, body) = deliver("calm", &calm);
    clients.s3.put_object().bucket(BUCKET).key(&key).body(body.into()).send().await.expect("PutObject");
    let calm_figures = run_processor(out, &processor, &event_dir, &key);
    writeln!(out, "\n(scale-in waits until the high recommendations leave the 300 s scale-down window and\n the new instances have warmed up: an assumed 180 s boot plus the metric's period and delay)").ok();
    for offset in [60, 120, 180, 240, 300, 360, 420, 480] {
        tick(out, offset).await;
    }
    report.processor.push(calm_figures);

    heading(out, "done; stopping moto");
    report
}

/// Invokes the log processor with an S3 ObjectCreated event for `key`.
fn run_processor(out: &mut dyn Write, processor: &LocalLambda, dir: &Path, key: &str) -> ProcessorFigures {
    let encoded: String = key.split('/').map(|part| part.replace(' ', "+")).collect::<Vec<_>>().join("/");
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "demo"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "demo",
               "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
               "object": {"key": encoded, "size": 1}}
    }]});
    let path = dir.join("event.json");
    std::fs::write(&path, event.to_string()).expect("write event");
    heading(out, &format!("log-processor (bootstrap binary under cargo lambda) on s3://{BUCKET}/{key}"));
    let response = processor.invoke(&path);
    let figures = processor_figures(&response)
        .unwrap_or_else(|| panic!("the log processor's response has no processed objects: {response}"));
    writeln!(
        out,
        "  records {}, malformed {}, datums published {}",
        figures.records, figures.malformed, figures.datums_published
    )
    .ok();
    figures
}

/// The figures of the handler's response (`{"objects": [{"result": "processed", ...}]}`),
/// added up over its processed objects; `None` when it processed none.
pub fn processor_figures(response: &serde_json::Value) -> Option<ProcessorFigures> {
    let processed: Vec<&serde_json::Value> =
        response["objects"].as_array()?.iter().filter(|o| o["result"] == "processed").collect();
    if processed.is_empty() {
        return None;
    }
    let sum = |field: &str| processed.iter().map(|o| o[field].as_u64()).sum::<Option<u64>>();
    Some(ProcessorFigures {
        records: sum("records")?,
        malformed: sum("malformed")?,
        datums_published: sum("datums_published")?,
    })
}

//! `make demo`: the whole product on a local moto server.
//!
//! A demo web group sits behind an ALB whose access logs land in S3. The log processor
//! (the real `bootstrap` binary under cargo-lambda's runtime emulator) turns them into
//! per-minute RequestCount metrics; the poller scales the group on them, tick by tick.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, gzip, workspace_binary,
};
use metric_poller::PollerConfig;
use metric_poller::policy_source::PolicyLocation;
use shared::aws::Clients;

const GROUP: &str = "demo-web";
const BUCKET: &str = "demo-alb-logs";
const LOAD_BALANCER: &str = "app/demo-alb/50dc6c495c0c9188";
/// Requests per minute one instance should carry.
const TARGET_PER_INSTANCE: u32 = 500;

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for Unix seconds (Howard Hinnant's civil-from-days).
fn iso8601(secs: i64, micros: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
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

fn heading(text: &str) {
    println!("\n== {text}");
    std::io::stdout().flush().ok();
}

#[tokio::main]
async fn main() {
    heading("starting a local moto server");
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    let clients = Clients::new(&config, false);
    println!("moto at {}", moto.endpoint);

    heading(&format!("creating Auto Scaling group {GROUP} (desired 2, min 1, max 20) and bucket {BUCKET}"));
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
    println!(
        "  policy: scale on RequestCount (Sum per minute), {TARGET_PER_INSTANCE} requests per instance; HPA default behavior"
    );
    clients.s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    clients.s3.create_bucket().bucket("demo-state").send().await.expect("CreateBucket");

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let this_minute = now - now % 60;
    let mut function_env = moto.env();
    function_env.push(("RUST_LOG", "warn".to_owned()));
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &function_env, 60);
    let event_dir = tempfile_dir();

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
    heading("uploading an ALB access log with a traffic spike (requests per minute: 800 800 900 3600 4400)");
    let (key, body) = deliver("spike", &traffic);
    clients.s3.put_object().bucket(BUCKET).key(&key).body(body.into()).send().await.expect("PutObject");
    run_processor(&processor, &event_dir, &key);

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
    let tick = |offset: u64| {
        let poller = &poller;
        async move {
            heading(&format!("poller tick at +{offset} s"));
            let tick =
                poller.tick_with_lease("demo", start + Duration::from_secs(offset), 120).await.expect("tick");
            print!("{tick}");
        }
    };
    for offset in [0, 15, 30] {
        tick(offset).await;
    }

    heading("the next log: traffic falls to 300 requests/minute for the following minutes");
    let calm: Vec<(i64, u32)> = (1..=6).map(|k| (this_minute + 60 * k, 300)).collect();
    let (key, body) = deliver("calm", &calm);
    clients.s3.put_object().bucket(BUCKET).key(&key).body(body.into()).send().await.expect("PutObject");
    run_processor(&processor, &event_dir, &key);
    println!("\n(scale-in waits until the high recommendations leave the 300 s scale-down window)");
    for offset in [60, 120, 180, 240, 300, 360] {
        tick(offset).await;
    }

    heading("done; stopping moto");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lambda-autoscaler-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Invokes the log processor with an S3 ObjectCreated event for `key`.
fn run_processor(processor: &LocalLambda, dir: &std::path::Path, key: &str) {
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
    heading(&format!("log-processor (bootstrap binary under cargo lambda) on s3://{BUCKET}/{key}"));
    let response = processor.invoke(&path);
    println!(
        "  records {}, malformed {}, datums published {}",
        response["records"], response["malformed"], response["datums_published"]
    );
}

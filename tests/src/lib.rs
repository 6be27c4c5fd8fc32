//! The test harness: a moto server of our own on a free loopback port, SDK configuration
//! pointing at it, and helpers that create the AWS resources tests and the demo need.

pub mod demo;
pub mod fault_proxy;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};
use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};

pub const REGION: &str = "us-east-1";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A program installed in the project's venv by `make setup`.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(path.exists(), "{} not found: run `make setup` first", path.display());
    path
}

pub fn fixture(path: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A moto server process, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// moto's server as `tests/moto/server.py` starts it: with bucket-policy conditions
    /// evaluated as AWS does (see that file), so that the deployed policies can be applied.
    pub fn start() -> Moto {
        let (python, launcher) = (venv_bin("python"), workspace_root().join("tests/moto/server.py"));
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new(&python)
                .arg(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn moto_server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely the port was taken meanwhile; try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    /// The SDK configuration a function (retrying as `retry`) would load from the
    /// environment, pointed at this server with dummy credentials.
    pub async fn sdk_config(&self, retry: shared::aws::RetryProfile) -> SdkConfig {
        shared::aws::sdk_config_loader(retry)
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// The environment a function process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn create_launch_template(config: &SdkConfig, name: &str) {
    aws_sdk_ec2::Client::new(config)
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
}

pub struct GroupSpec<'a> {
    pub name: &'a str,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub tags: Vec<(String, String)>,
}

pub async fn create_group(config: &SdkConfig, launch_template: &str, spec: GroupSpec<'_>) {
    let tags = spec
        .tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .resource_id(spec.name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build()
        })
        .collect();
    aws_sdk_autoscaling::Client::new(config)
        .create_auto_scaling_group()
        .auto_scaling_group_name(spec.name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(launch_template)
                .version("$Latest")
                .build(),
        )
        .min_size(spec.min)
        .max_size(spec.max)
        .desired_capacity(spec.desired)
        .availability_zones(format!("{REGION}a"))
        .set_tags(Some(tags))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

pub async fn desired_capacity(config: &SdkConfig, group: &str) -> i32 {
    let output = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    output.auto_scaling_groups()[0].desired_capacity().expect("desired capacity")
}

/// Gzip-compresses bytes, as ELB does before delivering a log.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A binary of the workspace, built by `cargo build --workspace --bins` (`make test` does).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let path = target.join("debug").join(name);
    assert!(path.exists(), "{} not found: run `cargo build --workspace --bins` first", path.display());
    path
}

/// cargo-lambda's Lambda Runtime API emulator (`cargo lambda watch --only-lambda-apis`)
/// with one function binary attached to it, both stopped when dropped.
pub struct LocalLambda {
    emulator: Child,
    function: Child,
    port: u16,
    /// The function's stdout (its EMF records), for [`LocalLambda::stdout`].
    stdout: PathBuf,
}

impl LocalLambda {
    /// Starts the emulator and the function `binary` with `env` added to its environment;
    /// invocations get `timeout_seconds` until their deadline.
    pub fn start(binary: &Path, env: &[(&str, String)], timeout_seconds: u32) -> LocalLambda {
        let port = free_port();
        let emulator = Command::new(venv_bin("cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .args(["--timeout", &timeout_seconds.to_string()])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cargo-lambda");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the cargo-lambda runtime emulator did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The variables the emulator says a function started outside it must have (`env`
        // may name the function).
        let stdout = temp_dir("lambda-stdout").join("stdout");
        let function = Command::new(binary)
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn function binary");
        LocalLambda { emulator, function, port, stdout }
    }

    /// Invokes the function with `cargo lambda invoke --data-file` and returns its JSON response.
    pub fn invoke(&self, data_file: &Path) -> serde_json::Value {
        let output = Command::new(venv_bin("cargo-lambda"))
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(data_file)
            .current_dir(workspace_root())
            .output()
            .expect("run cargo lambda invoke");
        assert!(
            output.status.success(),
            "cargo lambda invoke failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("invoke output is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }
}

impl LocalLambda {
    /// What the function has written to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).expect("the function's stdout")
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        for child in [&mut self.function, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh directory under the system temp dir, for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lambda-autoscaler-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `tags` as the owned pairs [`GroupSpec`] takes.
pub fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Puts one datapoint stamped `at` into namespace `Test/App`, dimension `Group=<group>`.
pub async fn put_metric(config: &SdkConfig, name: &str, group: &str, value: f64, at: std::time::SystemTime) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    aws_sdk_cloudwatch::Client::new(config)
        .put_metric_data()
        .namespace("Test/App")
        .metric_data(
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(Dimension::builder().name("Group").value(group).build())
                .timestamp(DateTime::from(at))
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

/// A policy group scaling `name` on `Test/App` metric `metric` (dimension `Group=<name>`).
pub fn policy_group(name: &str, metric: &str, target: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "metrics": [{{"id": "m", "query": {{"namespace": "Test/App", "metric_name": "{metric}",
            "dimensions": {{"Group": "{name}"}}, "stat": "Maximum", "period_seconds": 60}}, "target": {target}}}]{extra}}}"#
    )
}

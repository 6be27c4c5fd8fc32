//! AWS SDK configuration and the clients, built once per process.
//!
//! Everything standard comes from the SDK's own configuration chain (region, credentials,
//! `AWS_ENDPOINT_URL`, profiles), so the same binary talks to AWS or to a local emulator
//! without special cases.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

use crate::calls::CallCounter;

/// Attempts per call, including the first. Adaptive mode adds client-side rate limiting
/// on throttling on top of exponential backoff with jitter.
const MAX_ATTEMPTS: u32 = 5;

/// The loader every process starts from: latest behaviour, adaptive retries.
/// Callers may add overrides (tests point it at the emulator) before `load()`.
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS))
}

/// The SDK configuration from the environment, as the Lambda functions and the CLI use it.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// The service clients. Cheap to clone (they share one connection pool).
#[derive(Clone, Debug)]
pub struct Clients {
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub s3: aws_sdk_s3::Client,
    /// Every HTTP request the three clients send.
    pub calls: CallCounter,
}

impl Clients {
    /// `s3_force_path_style` is for S3-compatible endpoints without virtual-host DNS
    /// (the SDK already uses path style by itself for IP-address endpoints).
    pub fn new(config: &SdkConfig, s3_force_path_style: bool) -> Self {
        let calls = CallCounter::default();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(s3_force_path_style)
            .interceptor(calls.clone())
            .build();
        let autoscaling_config =
            aws_sdk_autoscaling::config::Builder::from(config).interceptor(calls.clone()).build();
        let cloudwatch_config =
            aws_sdk_cloudwatch::config::Builder::from(config).interceptor(calls.clone()).build();
        Self {
            autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling_config),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            calls,
        }
    }
}

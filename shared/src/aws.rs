//! AWS SDK configuration and the clients, built once per process.
//!
//! Everything standard comes from the SDK's own configuration chain (region, credentials,
//! `AWS_ENDPOINT_URL`, profiles), so the same binary talks to AWS or to a local emulator
//! without special cases.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

use crate::calls::CallCounter;

/// How a process retries failed AWS calls. Both retry throttling, 5xx and transport
/// errors with exponential backoff and jitter; they differ in what they trade away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryProfile {
    /// The poller: a tick must end within its interval (10 s), so standard mode with short
    /// backoffs (100 ms doubling, at most 1 s; 4 attempts). Adaptive mode is not used here:
    /// after one throttle its client-side rate limiter held the next request of this
    /// low-traffic client back for 18 s (measured against the fault proxy in tests/).
    Latency,
    /// The log processor: bursts of PutMetricData and GetObject, where adaptive mode's
    /// client-side rate limiting after throttling keeps a batch from failing (5 attempts).
    Throughput,
}

impl RetryProfile {
    pub fn retry_config(self) -> RetryConfig {
        match self {
            RetryProfile::Latency => RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(1)),
            RetryProfile::Throughput => RetryConfig::adaptive().with_max_attempts(5),
        }
    }
}

/// The loader every process starts from: latest behaviour and the profile's retries.
/// Callers may add overrides (tests point it at the emulator) before `load()`.
pub fn sdk_config_loader(retry: RetryProfile) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).retry_config(retry.retry_config())
}

/// The SDK configuration from the environment, as the Lambda functions and the CLI use it.
pub async fn load_sdk_config(retry: RetryProfile) -> SdkConfig {
    sdk_config_loader(retry).load().await
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

//! AWS SDK configuration and the clients, built once per process.
//!
//! Everything standard comes from the SDK's own configuration chain (region, credentials,
//! `AWS_ENDPOINT_URL`, profiles), so the same binary talks to AWS or to a local emulator
//! without special cases.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_runtime_api::client::dns::ResolveDnsError;
use aws_smithy_runtime_api::client::interceptors::context::{Error, InterceptorContext};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

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

    /// The longest one call can wait between its attempts, every backoff at its jittered
    /// maximum (standard mode; adaptive mode's rate limiter may wait longer).
    pub fn worst_case_wait(self) -> Duration {
        let config = self.retry_config();
        (1..config.max_attempts())
            .map(|retry| {
                config.initial_backoff().saturating_mul(1 << (retry - 1).min(16)).min(config.max_backoff())
            })
            .sum()
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

/// Whether a request answered with HTTP `status` may have been applied: a 2xx was (even
/// if its reply could not be read), a 5xx may have been; a 3xx or 4xx answer refused it.
pub fn answer_may_have_taken_effect(status: u16) -> bool {
    !(300..500).contains(&status)
}

/// Whether a failed attempt may have been applied, from what came back of it: an answer
/// (see [`answer_may_have_taken_effect`]), or none: a timeout or a reply lost or unreadable
/// after sending may have been; a connection never made, or a failure before sending, was
/// not. The one rule behind [`crate::AwsError::may_have_taken_effect`] (over the SDK's
/// final error), PutMetricData's retries ([`NoRetryOnceSent`]) and the poller's
/// SetDesiredCapacity bookkeeping (per attempt).
pub fn attempt_may_have_taken_effect(
    response: Option<&HttpResponse>,
    error: &OrchestratorError<Error>,
) -> bool {
    match response {
        Some(response) => answer_may_have_taken_effect(response.status().as_u16()),
        None => match error.as_connector_error() {
            Some(connector) => !never_sent(connector),
            None => error.is_timeout_error() || error.is_response_error(),
        },
    }
}

/// A connection that was never made: the request cannot have been sent.
pub(crate) fn never_sent(error: &ConnectorError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if error.is::<ResolveDnsError>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable
            );
        }
        cause = error.source();
    }
    false
}

/// A retry classifier for operations that must not be applied twice (PutMetricData adds
/// to sums: CloudWatch does not deduplicate): it forbids retrying an attempt whose request
/// may have reached the service (a 5xx, a lost or unreadable reply, a timeout after
/// sending), and leaves the standard classifiers to retry what certainly did not
/// (throttling and other 4xx answers, refused connections).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRetryOnceSent;

impl ClassifyRetry for NoRetryOnceSent {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        if attempt_may_have_taken_effect(ctx.response(), error) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "NoRetryOnceSent"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error as IoError, ErrorKind};

    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
    use aws_smithy_runtime_api::client::interceptors::context::{Error, Input};
    use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use aws_smithy_runtime_api::client::result::SdkError;

    use super::*;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), SdkBody::empty())
    }

    fn io(kind: ErrorKind) -> ConnectorError {
        ConnectorError::io(Box::new(IoError::from(kind)))
    }

    #[test]
    fn only_refusals_and_requests_never_sent_certainly_did_not_take_effect() {
        type E = SdkError<PutMetricDataError, HttpResponse>;
        let service = |status| -> E {
            let error = PutMetricDataError::generic(ErrorMetadata::builder().code("X").build());
            SdkError::service_error(error, response(status))
        };
        let cases: Vec<(&str, E, bool)> = vec![
            ("throttled", service(400), false),
            ("denied", service(403), false),
            ("redirected", service(301), false),
            ("server error", service(500), true),
            ("unavailable", service(503), true),
            ("refused", SdkError::dispatch_failure(io(ErrorKind::ConnectionRefused)), false),
            ("reset", SdkError::dispatch_failure(io(ErrorKind::ConnectionReset)), true),
            ("closed early", SdkError::dispatch_failure(ConnectorError::other("closed".into(), None)), true),
            ("timed out", SdkError::timeout_error("read timed out"), true),
            ("unreadable success", SdkError::response_error("bad xml", response(200)), true),
            ("unreadable refusal", SdkError::response_error("bad xml", response(400)), false),
            ("not built", SdkError::construction_failure("no region"), false),
        ];
        for (case, error, effect) in cases {
            assert_eq!(
                crate::AwsError::from_sdk("PutMetricData", error).may_have_taken_effect(),
                effect,
                "{case}"
            );
        }
    }

    #[test]
    fn attempts_that_may_have_reached_the_service_are_not_retried() {
        let classify = |response: Option<HttpResponse>, error: OrchestratorError<Error>| {
            let mut ctx = InterceptorContext::new(Input::erase(()));
            if let Some(response) = response {
                ctx.set_response(response);
            }
            ctx.set_output_or_error(Err(error));
            NoRetryOnceSent.classify_retry(&ctx)
        };
        let operation = || OrchestratorError::operation(Error::erase(IoError::other("service error")));
        assert_eq!(classify(Some(response(503)), operation()), RetryAction::RetryForbidden);
        assert_eq!(classify(Some(response(500)), operation()), RetryAction::RetryForbidden);
        assert_eq!(
            classify(None, OrchestratorError::connector(io(ErrorKind::UnexpectedEof))),
            RetryAction::RetryForbidden
        );
        assert_eq!(classify(None, OrchestratorError::timeout("read".into())), RetryAction::RetryForbidden);
        // Left to the standard classifiers, which retry throttling and refused connections.
        assert_eq!(classify(Some(response(400)), operation()), RetryAction::NoActionIndicated);
        assert_eq!(
            classify(None, OrchestratorError::connector(io(ErrorKind::ConnectionRefused))),
            RetryAction::NoActionIndicated
        );
    }
}

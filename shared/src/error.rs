//! The error every AWS call is reported through, classified retryable or not.
//!
//! The SDK has already retried retryable failures (adaptive mode, see [`crate::aws`]) by
//! the time one of these exists; `retryable` tells the caller whether trying the whole
//! unit of work again later (the next tick, a Lambda retry) can help.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct AwsError {
    /// The API operation, e.g. `GetMetricData`.
    pub operation: &'static str,
    /// The service's error code (`ThrottlingException`, `NoSuchKey`, ...), when it sent one.
    pub code: Option<String>,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub retryable: bool,
    message: String,
    #[source]
    source: BoxError,
}

/// Codes AWS services use for throttling and transient server-side failure.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

impl AwsError {
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let retryable = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            _ => {
                code.as_deref().is_some_and(|c| RETRYABLE_CODES.contains(&c))
                    || status.is_some_and(|s| s == 429 || s >= 500)
            }
        };
        let message = DisplayErrorContext(&err).to_string();
        Self { operation, code, status, retryable, message, source: Box::new(err) }
    }

    /// A failure outside the SDK's own error types (e.g. a body that broke off mid-stream).
    pub fn other(operation: &'static str, message: String) -> Self {
        Self {
            operation,
            code: None,
            status: None,
            retryable: true,
            message: message.clone(),
            source: message.into(),
        }
    }

    /// True when the service returned this error code.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// An error and its sources, `: `-separated, as one line for logs and Lambda error reports.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

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
    /// Whether the request may have been applied though the call failed (see
    /// [`AwsError::may_have_taken_effect`]).
    outcome_unknown: bool,
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
        // The rule of `crate::aws::attempt_may_have_taken_effect`, over the final error.
        let outcome_unknown = match &err {
            SdkError::ConstructionFailure(_) => false,
            SdkError::DispatchFailure(failure) => {
                !failure.is_user() && failure.as_connector_error().is_none_or(|c| !crate::aws::never_sent(c))
            }
            SdkError::TimeoutError(_) => true,
            _ => status.is_none_or(crate::aws::answer_may_have_taken_effect),
        };
        // The service's own words where it sent them; the SDK's full context (which, for
        // errors it has no type for, is a Debug dump) only for the rest.
        let message = match (err.code(), err.message(), status) {
            (Some(code), Some(text), Some(status)) => format!("{code}: {text} (HTTP {status})"),
            (Some(code), None, Some(status)) => format!("{code} (HTTP {status})"),
            (None, _, Some(status)) if matches!(err, SdkError::ServiceError(_)) => {
                format!("HTTP {status} without an error code")
            }
            _ => DisplayErrorContext(&err).to_string(),
        };
        Self { operation, code, status, retryable, outcome_unknown, message, source: Box::new(err) }
    }

    /// A failure outside the SDK's own error types (e.g. a body that broke off mid-stream).
    pub fn other(operation: &'static str, message: String) -> Self {
        Self {
            operation,
            code: None,
            status: None,
            retryable: true,
            outcome_unknown: true,
            message: message.clone(),
            source: message.into(),
        }
    }

    /// Whether the failed call may nevertheless have taken effect: no answer arrived
    /// (timeout, lost or unreadable reply, connection broken after sending), the answer was
    /// a 5xx, or a 2xx that could not be read. `false` means a definite rejection (a 3xx or
    /// 4xx such as `ValidationError`, `AccessDenied` or `Throttling`), or a request never
    /// sent (refused connection, failed DNS lookup, not built). Decided from the last
    /// attempt; see [`AwsError::with_outcome_unknown`] for earlier ones.
    pub fn may_have_taken_effect(&self) -> bool {
        self.outcome_unknown
    }

    /// Marks the outcome unknown whatever the last attempt said: for a caller that saw an
    /// earlier attempt of the same call go unanswered (the SDK retried it; a final 4xx
    /// does not undo what that attempt may have done).
    pub fn with_outcome_unknown(mut self) -> Self {
        self.outcome_unknown = true;
        self
    }

    /// True when the service returned this error code.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// An error and its sources, `: `-separated, as one line for logs and Lambda error reports.
/// An [`AwsError`] already summarises the SDK error beneath it, so the chain ends there.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = if err.is::<AwsError>() { None } else { err.source() };
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = if cause.is::<AwsError>() { None } else { cause.source() };
    }
    message
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn service_error(code: Option<&str>, status: u16) -> AwsError {
        let mut meta = ErrorMetadata::builder().message("from the service");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let response =
            HttpResponse::new(status.try_into().unwrap(), aws_smithy_types::body::SdkBody::empty());
        AwsError::from_sdk(
            "GetObject",
            SdkError::service_error(GetObjectError::generic(meta.build()), response),
        )
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_and_client_errors_are_not() {
        for (code, status, retryable) in [
            (Some("Throttling"), 400, true),
            (Some("SlowDown"), 503, true),
            (None, 503, true),
            (None, 429, true),
            (Some("InternalError"), 500, true),
            (Some("AccessDenied"), 403, false),
            (Some("NoSuchKey"), 404, false),
            (Some("ValidationError"), 400, false),
        ] {
            let error = service_error(code, status);
            assert_eq!(error.retryable, retryable, "{code:?} {status}");
            // Whatever its retry class, a 4xx is a rejection; a 5xx may follow the work.
            assert_eq!(error.may_have_taken_effect(), status >= 500, "{code:?} {status}");
            assert_eq!((error.code.as_deref(), error.status), (code, Some(status)));
        }
        assert!(service_error(Some("NoSuchKey"), 404).is_code("NoSuchKey"));
    }

    #[test]
    fn transport_failures_are_retryable() {
        let timeout: SdkError<GetObjectError, HttpResponse> = SdkError::timeout_error("read timed out");
        let error = AwsError::from_sdk("GetObject", timeout);
        assert!(error.retryable);
        assert!(error.may_have_taken_effect(), "sent, never answered");
        assert_eq!((error.code, error.status), (None, None));
        let lost: SdkError<GetObjectError, HttpResponse> = SdkError::response_error(
            "unreadable reply",
            HttpResponse::new(200.try_into().unwrap(), aws_smithy_types::body::SdkBody::empty()),
        );
        assert!(AwsError::from_sdk("GetObject", lost).may_have_taken_effect());
        let unsent: SdkError<GetObjectError, HttpResponse> = SdkError::construction_failure("bad input");
        assert!(!AwsError::from_sdk("GetObject", unsent).may_have_taken_effect());
    }

    #[test]
    fn an_earlier_unanswered_attempt_makes_a_rejection_unknown() {
        let rejected = service_error(Some("ValidationError"), 400);
        assert!(!rejected.may_have_taken_effect());
        let rejected = rejected.with_outcome_unknown();
        assert!(rejected.may_have_taken_effect());
        assert!(rejected.is_code("ValidationError"), "the code is kept");
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        let error = service_error(Some("AccessDenied"), 403);
        let chain = error_chain(&error);
        assert_eq!(chain, "GetObject: AccessDenied: from the service (HTTP 403)");
        assert_eq!(service_error(None, 503).to_string(), "GetObject: HTTP 503 without an error code");
    }
}

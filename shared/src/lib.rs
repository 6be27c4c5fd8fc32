//! Common code of the lambda-autoscaler functions and CLI: AWS SDK configuration and
//! clients, configuration from the environment, tracing, CloudWatch metric datums,
//! S3 URIs and the AWS error type every crate reports through.

pub mod aws;
pub mod calls;
pub mod config;
pub mod emf;
pub mod error;
pub mod metrics;
pub mod s3uri;
pub mod store;
pub mod telemetry;
pub mod time;

pub use error::AwsError;

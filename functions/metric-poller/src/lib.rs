//! The metric-poller: finds the Auto Scaling groups it manages, reads their metrics from
//! CloudWatch in batched calls, decides each group's desired capacity and applies it.
//!
//! Decisions are pure ([`engine`]); AWS sits behind the [`GroupController`] and
//! [`MetricsSource`] traits ([`aws`] implements them over the SDK), so the Lambda
//! handler, the CLI and the tests all run [`Poller::tick`].

pub mod aws;
pub mod config;
pub mod engine;
pub mod policy;
pub mod simulate;
pub mod tags;
mod tick;

pub use aws::{AutoScalingGroups, CloudWatchMetrics};
pub use config::PollerConfig;
pub use tick::{Action, GroupOutcome, Poller, PollerError, TickSummary};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use shared::AwsError;

/// What the poller knows of one Auto Scaling group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupInfo {
    pub name: String,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_capacity: i32,
    pub tags: BTreeMap<String, String>,
}

/// One CloudWatch metric, as a policy names it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    pub period_seconds: i32,
}

/// Reads and changes Auto Scaling groups.
pub trait GroupController {
    /// Every group tagged `lambda-autoscaler:enabled=true`.
    fn list_enabled_groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, AwsError>> + Send;

    fn set_desired_capacity(
        &self,
        group: &str,
        desired: i32,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Reads metric values.
pub trait MetricsSource {
    /// The newest value of each query (by the caller's id) at or before `now`; a query
    /// without data in its look-back window is absent from the result.
    fn latest_values(
        &self,
        queries: &[(String, MetricQuery)],
        now: SystemTime,
    ) -> impl Future<Output = Result<BTreeMap<String, f64>, AwsError>> + Send;
}

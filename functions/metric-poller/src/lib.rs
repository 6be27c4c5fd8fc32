//! The metric-poller: finds the Auto Scaling groups it manages, reads their metrics from
//! CloudWatch in batched calls, decides each group's desired capacity and applies it.
//!
//! # Layout
//!
//! Entry point: `main.rs` builds an [`AwsPoller`] ([`build`]) and hands each EventBridge
//! invocation to [`Poller::handle`] (`invocation.rs`), which ticks every
//! `TICK_INTERVAL_SECONDS` until the deadline. I/O sits behind four traits:
//! [`GroupController`] and [`MetricsSource`] (implemented over the SDK in [`aws`], and over
//! a simulated group in [`simulate::world`]), [`state::StateStore`] (S3 or memory) and
//! [`policy_source::PolicySource`] (`POLICY_URI`, or a document in memory).
//!
//! One tick ([`Poller::tick`], `tick.rs`): lease -> policy -> list groups ([`discovery`]) ->
//! one batched read of the metrics that can have a new datapoint ([`read_schedule`]; the
//! others keep their last read) -> per group: settle the state
//! against the group's capacity ([`state::GroupState::settle`]), then [`evaluate::evaluate`]
//! (datapoint choice in [`reading`], warmup in [`engine::warmup`], forecasts in
//! [`forecast`], and the pure decision [`engine::decide`]) -> a plan of changes -> intents
//! written, `SetDesiredCapacity`, outcomes recorded ([`state::GroupState::record_outcome`])
//! -> state saved. Every policy schema type lives in [`policy`]; the engine depends on it,
//! never the reverse. The simulator ([`simulate`]) runs this same tick.

pub mod aws;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod evaluate;
pub mod forecast;
mod invocation;
pub mod policy;
pub mod policy_source;
pub mod read_schedule;
pub mod reading;
pub mod simulate;
pub mod state;
pub mod tags;
mod tick;

/// How the poller's AWS calls retry, wherever it runs (its Lambda, `autoscaler poll`, the
/// tests): standard mode with short backoffs, so that a tick under faults still ends within
/// its interval (see `shared::aws::RetryProfile`).
pub const RETRY: shared::aws::RetryProfile = shared::aws::RetryProfile::Latency;

pub use aws::{AutoScalingGroups, CloudWatchMetrics};
pub use config::PollerConfig;
pub use invocation::{Clock, InvocationSummary, SystemClock};
pub use policy::MetricQuery;
pub use tick::{Action, GroupOutcome, Mode, Poller, PollerError, TickSummary};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use shared::AwsError;
use shared::aws::Clients;
use shared::config::ConfigError;
use shared::store::JsonStore;

use crate::policy_source::PolicyStore;
use crate::state::{MemoryState, S3State, StateBackend};

use crate::policy::Query;
use crate::reading::Datapoint;

/// The poller as deployed: AWS through the SDK, state in S3 (or memory without `STATE_URI`).
pub type AwsPoller = Poller<AutoScalingGroups, CloudWatchMetrics, StateBackend, PolicyStore>;

/// Builds the poller from its configuration; `POLICY_URI` is required.
pub fn build(clients: &Clients, config: PollerConfig) -> Result<AwsPoller, ConfigError> {
    let location = config.policy.clone().ok_or_else(|| ConfigError {
        name: "POLICY_URI".into(),
        value: String::new(),
        message: "required: s3://bucket/key or a local path of the policy document".into(),
    })?;
    let state = match &config.state {
        Some(uri) => StateBackend::S3(S3State::new(JsonStore::new(clients.s3.clone(), uri))),
        None => {
            tracing::warn!("STATE_URI is not set: history lives in this process only, and there is no lease");
            StateBackend::Memory(MemoryState::default())
        }
    };
    Ok(Poller::new(
        AutoScalingGroups::new(clients.autoscaling.clone()),
        CloudWatchMetrics::new(clients.cloudwatch.clone()),
        state,
        PolicyStore::new(location, Some(clients.s3.clone())),
        config,
        Some(clients.calls.clone()),
    ))
}

/// What the poller knows of one Auto Scaling group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupInfo {
    pub name: String,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_capacity: i32,
    /// Instances not yet in service (lifecycle state `Pending*`).
    pub pending_instances: i32,
    /// Instances in lifecycle state `InService` (what `autoscaler status` shows; the
    /// engine counts desired minus pending, which includes instances on their way out).
    pub in_service_instances: i32,
    pub tags: BTreeMap<String, String>,
}

/// Reads and changes Auto Scaling groups.
pub trait GroupController {
    /// Every group tagged `lambda-autoscaler:enabled=true`.
    fn list_enabled_groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, AwsError>> + Send;

    /// One group by name (to re-read its bounds after a rejected change).
    fn describe_group(&self, group: &str)
    -> impl Future<Output = Result<Option<GroupInfo>, AwsError>> + Send;

    /// Whether an instance refresh is replacing the group's instances now.
    fn instance_refresh_running(&self, group: &str) -> impl Future<Output = Result<bool, AwsError>> + Send;

    fn set_desired_capacity(
        &self,
        group: &str,
        desired: i32,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Reads metric datapoints.
pub trait MetricsSource {
    /// Each query's datapoints (by the caller's id) with periods starting in
    /// `[start, end)`; a query answered without data has an empty series, and one absent
    /// from the map failed. Which of them a tick acts on is [`reading::read`]'s choice, not
    /// the source's.
    fn datapoints(
        &self,
        queries: &[(String, Query)],
        start: SystemTime,
        end: SystemTime,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<Datapoint>>, AwsError>> + Send;
}

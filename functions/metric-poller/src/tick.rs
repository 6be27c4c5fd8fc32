//! One evaluation of every managed group: discover, read metrics, decide, act.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use shared::AwsError;

use crate::engine::{self, Explanation, History, Observation};
use crate::policy::GroupPolicy;
use crate::tags::{TAG_METRIC_ID, policy_from_tags};
use crate::{GroupController, MetricsSource, PollerConfig};

#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    #[error("listing Auto Scaling groups failed")]
    ListGroups(#[source] AwsError),
    #[error("reading metrics failed")]
    Metrics(#[source] AwsError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SetDesiredCapacity was called.
    Scaled,
    /// The decision equals the current desired capacity.
    Unchanged,
    /// The decision differs, but dry-run is on.
    DryRun,
    /// The group's tags do not form a valid policy; it was left alone.
    InvalidPolicy,
    /// SetDesiredCapacity failed.
    Failed,
}

/// What happened to one group in one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupOutcome {
    pub group: String,
    pub action: Action,
    /// The group's desired capacity before this tick.
    pub current: i32,
    pub desired: i32,
    pub metric_value: Option<f64>,
    /// One line for people; `explanation` has the structure.
    pub reason: String,
    pub explanation: Option<Explanation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TickSummary {
    pub groups: Vec<GroupOutcome>,
}

pub struct Poller<G, M> {
    groups: G,
    metrics: M,
    config: PollerConfig,
    /// Each group's engine history, kept in memory for the life of the process.
    histories: Mutex<HashMap<String, History>>,
}

impl<G: GroupController, M: MetricsSource> Poller<G, M> {
    pub fn new(groups: G, metrics: M, config: PollerConfig) -> Self {
        Self { groups, metrics, config, histories: Mutex::default() }
    }

    /// The Lambda entry point: one tick per scheduled event.
    pub async fn handle(&self, event: LambdaEvent<EventBridgeEvent>) -> Result<TickSummary, PollerError> {
        tracing::debug!(request_id = %event.context.request_id, detail_type = %event.payload.detail_type, "scheduled event");
        self.tick(SystemTime::now()).await
    }

    pub async fn tick(&self, now: SystemTime) -> Result<TickSummary, PollerError> {
        let groups = self.groups.list_enabled_groups().await.map_err(PollerError::ListGroups)?;

        let mut outcomes = Vec::with_capacity(groups.len());
        let mut policies = Vec::new();
        for group in &groups {
            match policy_from_tags(&group.tags) {
                Ok(policy) => policies.push((group, policy)),
                Err(err) => {
                    tracing::warn!(group = %group.name, error = %err, "invalid policy tags; group left alone");
                    outcomes.push(GroupOutcome {
                        group: group.name.clone(),
                        action: Action::InvalidPolicy,
                        current: group.desired_capacity,
                        desired: group.desired_capacity,
                        metric_value: None,
                        reason: err.to_string(),
                        explanation: None,
                    });
                }
            }
        }

        // GetMetricData ids must start with a lowercase letter: index them.
        let queries: Vec<(String, _)> =
            policies.iter().enumerate().map(|(i, (_, p))| (format!("m{i}"), p.query.clone())).collect();
        let values: BTreeMap<String, f64> = if queries.is_empty() {
            BTreeMap::new()
        } else {
            self.metrics.latest_values(&queries, now).await.map_err(PollerError::Metrics)?
        };

        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        for (i, (group, policy)) in policies.into_iter().enumerate() {
            let value = values.get(&format!("m{i}")).copied();
            outcomes.push(self.apply(group, &policy.to_group_policy(&group.name), value, seconds).await);
        }
        outcomes.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(TickSummary { groups: outcomes })
    }

    async fn apply(
        &self,
        group: &crate::GroupInfo,
        policy: &GroupPolicy,
        value: Option<f64>,
        now: i64,
    ) -> GroupOutcome {
        let observation = Observation {
            current: group.desired_capacity,
            warming: 0,
            group_min: group.min_size,
            group_max: group.max_size,
            metrics: BTreeMap::from([(TAG_METRIC_ID.to_owned(), value)]),
        };
        let history = self.history(&group.name);
        let decision = engine::decide(policy, &observation, &history, now);
        let mut history = decision.history;
        let mut outcome = GroupOutcome {
            group: group.name.clone(),
            action: Action::Unchanged,
            current: group.desired_capacity,
            desired: decision.desired,
            metric_value: value,
            reason: decision.explanation.summary.clone(),
            explanation: Some(decision.explanation),
        };
        if decision.desired != group.desired_capacity {
            if self.config.dry_run {
                outcome.action = Action::DryRun;
            } else {
                match self.groups.set_desired_capacity(&group.name, decision.desired).await {
                    Ok(()) => {
                        outcome.action = Action::Scaled;
                        history.record_scaling(now, group.desired_capacity, decision.desired);
                    }
                    Err(err) => {
                        outcome.action = Action::Failed;
                        outcome.reason = format!("{}; {err}", outcome.reason);
                    }
                }
            }
            tracing::info!(
                group = %outcome.group, action = ?outcome.action, current = outcome.current,
                desired = outcome.desired, metric_value = value, reason = %outcome.reason, "decision"
            );
        }
        self.histories.lock().expect("history lock").insert(group.name.clone(), history);
        outcome
    }

    fn history(&self, group: &str) -> History {
        self.histories.lock().expect("history lock").get(group).cloned().unwrap_or_default()
    }
}

/// The tick as a table, one row per group, for people at a terminal.
impl std::fmt::Display for TickSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<20} {:<14} {:>7} {:>7} {:>10}  reason",
            "group", "action", "current", "desired", "metric"
        )?;
        for g in &self.groups {
            let metric = g.metric_value.map_or("-".to_owned(), |v| format!("{v:.2}"));
            let action = format!("{:?}", g.action).to_lowercase();
            writeln!(
                f,
                "{:<20} {:<14} {:>7} {:>7} {:>10}  {}",
                g.group, action, g.current, g.desired, metric, g.reason
            )?;
        }
        if self.groups.is_empty() {
            writeln!(f, "(no groups tagged lambda-autoscaler:enabled=true)")?;
        }
        Ok(())
    }
}

impl From<PollerError> for lambda_runtime::Diagnostic {
    fn from(err: PollerError) -> Self {
        let error_type = match &err {
            PollerError::ListGroups(_) => "PollerError.ListGroups",
            PollerError::Metrics(_) => "PollerError.Metrics",
        };
        Self { error_type: error_type.to_owned(), error_message: shared::error::error_chain(&err) }
    }
}

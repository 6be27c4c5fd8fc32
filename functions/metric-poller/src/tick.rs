//! One evaluation of every managed group: discover, read metrics, decide, act, remember.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use shared::AwsError;
use shared::calls::CallCounter;
use shared::metrics::Unit;
use shared::store::{StoreError, Version};

use crate::discovery::{ManagedGroup, discover};
use crate::engine::{self, Explanation, Observation};
use crate::policy::{GroupPolicy, Query};
use crate::policy_source::{PolicyLoadError, PolicySource};
use crate::state::{PendingChange, PollerState, StateStore, merge_tick};
use crate::{GroupController, MetricsSource, PollerConfig};

#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    #[error("no valid policy")]
    Policy(#[source] PolicyLoadError),
    #[error("listing Auto Scaling groups failed")]
    ListGroups(#[source] AwsError),
    #[error("the state store failed")]
    State(#[source] StoreError),
    #[error("groups failed in every tick of the invocation: {}", .0.join(", "))]
    GroupsFailed(Vec<String>),
}

impl From<PollerError> for lambda_runtime::Diagnostic {
    fn from(err: PollerError) -> Self {
        let error_type = match &err {
            PollerError::Policy(_) => "PollerError.Policy",
            PollerError::ListGroups(_) => "PollerError.ListGroups",
            PollerError::State(_) => "PollerError.State",
            PollerError::GroupsFailed(_) => "PollerError.GroupsFailed",
        };
        Self { error_type: error_type.to_owned(), error_message: shared::error::error_chain(&err) }
    }
}

/// Whether this tick may change anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Holds the lease: acts and records state.
    Act,
    /// Another poller holds the lease: decides and reports only.
    ObserveOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SetDesiredCapacity was called.
    Scaled,
    /// The decision equals the current desired capacity.
    Unchanged,
    /// The decision differs, but dry-run is on (globally or in the group's policy).
    DryRun,
    /// The decision differs, but the group is tagged `lambda-autoscaler:paused=true`.
    Paused,
    /// The decision differs, but this poller does not hold the lease.
    ObservedOnly,
    /// The decision differs, but an instance refresh is running.
    InstanceRefresh,
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
    pub metrics: BTreeMap<String, Option<f64>>,
    /// One line for people; `explanation` has the structure.
    pub reason: String,
    pub explanation: Explanation,
    /// Set when something failed for this group (its metrics, or the change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TickSummary {
    /// Unix seconds.
    pub time: i64,
    pub mode: Mode,
    pub groups: Vec<GroupOutcome>,
    pub warnings: Vec<String>,
    /// AWS requests this tick made (every HTTP attempt), when counted.
    pub api_calls: u64,
    pub duration_ms: u64,
}

pub struct Poller<G, M, S> {
    groups: G,
    metrics: M,
    state: S,
    policy: PolicySource,
    config: PollerConfig,
    calls: Option<CallCounter>,
    /// The state as last read or written, with its version; `None` forces a reload.
    cached: tokio::sync::Mutex<Option<(PollerState, Version)>>,
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Query ids must match `^[a-z][a-zA-Z0-9_]*$`: the group's index, then the metric's id.
fn query_id(group_index: usize, metric_id: &str) -> String {
    format!("g{group_index}_{metric_id}")
}

impl<G: GroupController, M: MetricsSource, S: StateStore> Poller<G, M, S> {
    pub fn new(
        groups: G,
        metrics: M,
        state: S,
        policy: PolicySource,
        config: PollerConfig,
        calls: Option<CallCounter>,
    ) -> Self {
        Self { groups, metrics, state, policy, config, calls, cached: tokio::sync::Mutex::new(None) }
    }

    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// One tick: takes or renews the lease for `owner` (until `now + lease_seconds`), then
    /// acts if it holds it and only observes otherwise.
    pub async fn tick_with_lease(
        &self,
        owner: &str,
        now: SystemTime,
        lease_seconds: i64,
    ) -> Result<TickSummary, PollerError> {
        let calls_before = self.calls.as_ref().map_or(0, CallCounter::total);
        let held = self
            .state
            .acquire_lease(owner, unix_seconds(now), lease_seconds)
            .await
            .map_err(PollerError::State)?;
        let mut summary = self.tick(now, if held { Mode::Act } else { Mode::ObserveOnly }).await?;
        // Count the lease's requests too.
        summary.api_calls = self.calls.as_ref().map_or(0, |c| c.total() - calls_before);
        Ok(summary)
    }

    pub async fn release_lease(&self, owner: &str) {
        if let Err(error) = self.state.release_lease(owner).await {
            tracing::warn!(%error, "releasing the lease failed; it will expire");
        }
    }

    pub async fn tick(&self, now: SystemTime, mode: Mode) -> Result<TickSummary, PollerError> {
        let started = Instant::now();
        let calls_before = self.calls.as_ref().map_or(0, CallCounter::total);
        let now_s = unix_seconds(now);
        let mut warnings = Vec::new();

        let document = self.policy.document().await.map_err(PollerError::Policy)?;
        let enabled = self.groups.list_enabled_groups().await.map_err(PollerError::ListGroups)?;
        let discovery = discover(&document, enabled);
        for name in &discovery.named_but_not_enabled {
            warnings.push(format!(
                "group {name} is named in the policy but not tagged lambda-autoscaler:enabled=true (or does not exist): not managed"
            ));
        }

        // Every metric of every group, in as few GetMetricData calls as the API allows.
        let queries: Vec<(String, Query)> = discovery
            .managed
            .iter()
            .enumerate()
            .flat_map(|(gi, m)| {
                document.groups[m.policy_index]
                    .metrics
                    .iter()
                    .map(move |metric| (query_id(gi, &metric.id), metric.query.clone()))
            })
            .collect();
        let mut metrics_error = None;
        let values = if queries.is_empty() {
            BTreeMap::new()
        } else {
            match self.metrics.latest_values(&queries, now - self.config.metrics_end_offset).await {
                Ok(values) => values,
                Err(error) => {
                    // Every group then lacks data: the missing-data rules hold them.
                    tracing::error!(%error, "reading metrics failed");
                    metrics_error = Some(error.to_string());
                    BTreeMap::new()
                }
            }
        };

        let mut cached = self.cached.lock().await;
        if cached.is_none() {
            *cached = Some(self.state.load().await.map_err(PollerError::State)?);
        }
        let (stored, version) = cached.clone().expect("loaded");
        let mut state = stored.clone();
        state.groups.retain(|name, _| discovery.managed.iter().any(|m| m.info.name == *name));

        let mut outcomes = Vec::with_capacity(discovery.managed.len());
        for (gi, managed) in discovery.managed.iter().enumerate() {
            let policy = &document.groups[managed.policy_index];
            let group_state = state.groups.entry(managed.info.name.clone()).or_default();
            if let Some(pending) = group_state.reconcile(managed.info.desired_capacity) {
                tracing::info!(group = %managed.info.name, ?pending, actual = managed.info.desired_capacity, "reconciled a change of an interrupted tick");
            }
            let metrics: BTreeMap<String, Option<f64>> = policy
                .metrics
                .iter()
                .map(|m| (m.id.clone(), values.get(&query_id(gi, &m.id)).copied()))
                .collect();
            let observation = Observation {
                current: managed.info.desired_capacity,
                warming: warming(managed, policy, &group_state.history, now_s),
                group_min: managed.info.min_size,
                group_max: managed.info.max_size,
                metrics: metrics.clone(),
            };
            let decision = engine::decide(policy, &observation, &group_state.history, now_s);
            group_state.history = decision.history.clone();
            let changes = decision.desired != managed.info.desired_capacity;
            let action = match () {
                _ if !changes => Action::Unchanged,
                _ if managed.paused => Action::Paused,
                _ if self.config.dry_run || policy.dry_run => Action::DryRun,
                _ if mode == Mode::ObserveOnly => Action::ObservedOnly,
                _ => Action::Scaled, // tentatively: acted on below
            };
            outcomes.push(GroupOutcome {
                group: managed.info.name.clone(),
                action,
                current: managed.info.desired_capacity,
                desired: decision.desired,
                metrics,
                reason: decision.explanation.summary.clone(),
                explanation: decision.explanation,
                error: metrics_error.clone(),
            });
        }

        if mode == Mode::Act {
            let version =
                self.act(&mut outcomes, &discovery.managed, &mut state, version, now_s, &mut warnings).await;
            *cached = version.map(|v| (state, v));
        }
        drop(cached);

        let summary = TickSummary {
            time: now_s,
            mode,
            groups: outcomes,
            warnings,
            api_calls: self.calls.as_ref().map_or(0, |c| c.total() - calls_before),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        self.report(&summary);
        Ok(summary)
    }

    /// Makes the changes the outcomes call for and records the state; returns the state's
    /// new version, or `None` when the cached state must be reloaded.
    async fn act(
        &self,
        outcomes: &mut [GroupOutcome],
        managed: &[ManagedGroup],
        state: &mut PollerState,
        mut version: Version,
        now: i64,
        warnings: &mut Vec<String>,
    ) -> Option<Version> {
        let planned: Vec<usize> =
            (0..outcomes.len()).filter(|&i| outcomes[i].action == Action::Scaled).collect();
        if !planned.is_empty() {
            // Write the intent first: if this process dies after SetDesiredCapacity, the next
            // tick finds it and reconciles against the group's actual capacity.
            for &i in &planned {
                let group = state.groups.get_mut(&outcomes[i].group).expect("state entry");
                group.pending_change =
                    Some(PendingChange { time: now, from: outcomes[i].current, to: outcomes[i].desired });
            }
            match self.state.save(state, &version).await {
                Ok(next) => version = next,
                Err(error) => {
                    let message = format!("state not written ({error}): no group changed this tick");
                    tracing::error!(%error, "state write before acting failed; not acting");
                    warnings.push(message);
                    for &i in &planned {
                        outcomes[i].action = Action::ObservedOnly;
                    }
                    return None;
                }
            }
            for &i in &planned {
                self.change(&mut outcomes[i], &managed[i]).await;
                let group = state.groups.get_mut(&outcomes[i].group).expect("state entry");
                group.pending_change = None;
                if outcomes[i].action == Action::Scaled {
                    group.history.record_scaling(now, outcomes[i].current, outcomes[i].desired);
                }
            }
        }
        match self.state.save(state, &version).await {
            Ok(next) => Some(next),
            Err(StoreError::Conflict { .. }) => {
                // Someone wrote meanwhile: merge this tick into what they wrote, once.
                tracing::warn!("state changed by another writer; merging this tick into it");
                let merged = match self.state.load().await {
                    Ok((theirs, their_version)) => {
                        let merged = merge_tick(theirs, state, now);
                        self.state.save(&merged, &their_version).await.map(|v| (merged, v))
                    }
                    Err(error) => Err(error),
                };
                match merged {
                    Ok((merged, next)) => {
                        *state = merged;
                        Some(next)
                    }
                    Err(error) => {
                        warnings.push(format!("state not written: {error}"));
                        None
                    }
                }
            }
            Err(error) => {
                // Pending changes stay recorded in the object; the next tick reconciles them.
                tracing::error!(%error, "state write failed");
                warnings.push(format!("state not written: {error}"));
                None
            }
        }
    }

    /// SetDesiredCapacity for one planned change, with the checks around it.
    async fn change(&self, outcome: &mut GroupOutcome, managed: &ManagedGroup) {
        match self.groups.instance_refresh_running(&outcome.group).await {
            Ok(true) => {
                outcome.action = Action::InstanceRefresh;
                return;
            }
            Ok(false) => {}
            // Not knowing is no reason to hold back a scale-out: go on and log it.
            Err(error) => {
                tracing::warn!(group = %outcome.group, %error, "could not check for an instance refresh")
            }
        }
        let mut desired = outcome.desired;
        let mut result = self.groups.set_desired_capacity(&outcome.group, desired).await;
        if let Err(error) = &result
            && error.is_code("ValidationError")
        {
            // Typically the group's bounds changed since it was read: re-read, clamp, retry once.
            if let Ok(Some(fresh)) = self.groups.describe_group(&outcome.group).await {
                let clamped = desired.clamp(fresh.min_size, fresh.max_size.max(fresh.min_size));
                tracing::warn!(group = %outcome.group, %error, from = desired, to = clamped, "change rejected; clamped to the group's current bounds");
                if clamped == fresh.desired_capacity {
                    outcome.action = Action::Unchanged;
                    outcome.desired = clamped;
                    return;
                }
                desired = clamped;
                result = self.groups.set_desired_capacity(&outcome.group, desired).await;
            }
        }
        match result {
            Ok(()) => {
                outcome.action = Action::Scaled;
                outcome.desired = desired;
            }
            Err(error) => {
                outcome.action = Action::Failed;
                outcome.error = Some(error.to_string());
                outcome.desired = managed.info.desired_capacity;
            }
        }
    }

    /// Logs (a record per group that changed or failed, a line per tick) and, when
    /// configured, EMF metrics on stdout.
    fn report(&self, summary: &TickSummary) {
        let mut changed = 0;
        let mut failed = 0;
        for g in &summary.groups {
            if g.action != Action::Unchanged || g.error.is_some() {
                changed += usize::from(g.action != Action::Unchanged);
                failed += usize::from(g.error.is_some());
                let explanation = serde_json::to_string(&g.explanation).unwrap_or_default();
                tracing::info!(
                    group = %g.group, action = ?g.action, current = g.current, desired = g.desired,
                    reason = %g.reason, error = g.error.as_deref(), explanation = %explanation, "group decision"
                );
            }
        }
        for warning in &summary.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            mode = ?summary.mode, groups = summary.groups.len(), changed, failed,
            api_calls = summary.api_calls, duration_ms = summary.duration_ms, "tick"
        );
        if self.config.emf {
            let ns = &self.config.emf_namespace;
            let ms = summary.time as u64 * 1000;
            for g in &summary.groups {
                let mut metrics = vec![
                    ("DesiredCapacity", f64::from(g.desired), Unit::Count),
                    ("Recommendation", f64::from(g.explanation.recommendation), Unit::Count),
                ];
                let names: Vec<String> = g.metrics.keys().map(|id| format!("Metric_{id}")).collect();
                for (name, value) in names.iter().zip(g.metrics.values()) {
                    metrics.push((name, value.unwrap_or(f64::NAN), Unit::None));
                }
                println!("{}", shared::emf::record(ns, &[("AutoScalingGroupName", &g.group)], &metrics, ms));
            }
            let tick = [
                ("TickDuration", summary.duration_ms as f64 / 1000.0, Unit::Seconds),
                ("ApiCalls", summary.api_calls as f64, Unit::Count),
                ("GroupsEvaluated", summary.groups.len() as f64, Unit::Count),
                ("Errors", failed as f64, Unit::Count),
            ];
            println!("{}", shared::emf::record(ns, &[], &tick, ms));
        }
    }
}

/// Instances still warming: pending ones, or those the poller added within the warmup.
fn warming(managed: &ManagedGroup, policy: &GroupPolicy, history: &engine::History, now: i64) -> i32 {
    let added: i32 = history
        .scale_events
        .iter()
        .filter(|e| e.change > 0 && now - e.time < policy.instance_warmup_seconds)
        .map(|e| e.change)
        .sum();
    added.max(managed.info.pending_instances).clamp(0, managed.info.desired_capacity.max(0))
}

/// The tick as a table, one row per group, for people at a terminal.
impl std::fmt::Display for TickSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<20} {:<16} {:>7} {:>7}  reason", "group", "action", "current", "desired")?;
        for g in &self.groups {
            let action = serde_json::to_value(g.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writeln!(f, "{:<20} {:<16} {:>7} {:>7}  {}", g.group, action, g.current, g.desired, g.reason)?;
            if let Some(error) = &g.error {
                writeln!(f, "{:<20} error: {error}", "")?;
            }
        }
        if self.groups.is_empty() {
            writeln!(f, "(no enabled group matches the policy)")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        if self.mode == Mode::ObserveOnly {
            writeln!(f, "(observed only: another poller holds the lease)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The acting paths that need a misbehaving Auto Scaling API, over trait doubles.

    use std::collections::VecDeque;
    use std::sync::Mutex;

    use aws_sdk_autoscaling::error::SdkError;
    use aws_sdk_autoscaling::operation::set_desired_capacity::SetDesiredCapacityError;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::GroupInfo;
    use crate::policy_source::PolicyLocation;
    use crate::state::MemoryState;

    /// An error as the SDK reports a service's answer `code` with HTTP `status`.
    fn service_error(operation: &'static str, code: &str, status: u16) -> AwsError {
        let error = SetDesiredCapacityError::generic(ErrorMetadata::builder().code(code).build());
        let response = aws_smithy_runtime_api::http::Response::new(
            status.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        AwsError::from_sdk(operation, SdkError::service_error(error, response))
    }

    fn group(desired: i32, max: i32) -> GroupInfo {
        GroupInfo {
            name: "svc".into(),
            min_size: 1,
            max_size: max,
            desired_capacity: desired,
            pending_instances: 0,
            tags: BTreeMap::new(),
        }
    }

    /// An Auto Scaling API whose answers the test scripts.
    struct ScriptedGroups {
        listed: GroupInfo,
        /// What DescribeAutoScalingGroups for one group returns (after a rejected change).
        reread: GroupInfo,
        refresh: Mutex<Option<Result<bool, AwsError>>>,
        set_results: Mutex<VecDeque<Result<(), AwsError>>>,
        set_calls: Mutex<Vec<i32>>,
    }

    impl ScriptedGroups {
        fn new(listed: GroupInfo) -> Self {
            Self {
                reread: listed.clone(),
                listed,
                refresh: Mutex::new(Some(Ok(false))),
                set_results: Mutex::new(VecDeque::new()),
                set_calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl ScriptedGroups {
        /// The next SetDesiredCapacity fails with the service's `code`.
        fn reject_next_change(&self, code: &str, status: u16) {
            self.set_results.lock().unwrap().push_back(Err(service_error(
                "SetDesiredCapacity",
                code,
                status,
            )));
        }
    }

    impl GroupController for &ScriptedGroups {
        async fn list_enabled_groups(&self) -> Result<Vec<GroupInfo>, AwsError> {
            Ok(vec![self.listed.clone()])
        }
        async fn describe_group(&self, _group: &str) -> Result<Option<GroupInfo>, AwsError> {
            Ok(Some(self.reread.clone()))
        }
        async fn instance_refresh_running(&self, _group: &str) -> Result<bool, AwsError> {
            self.refresh.lock().unwrap().take().unwrap_or(Ok(false))
        }
        async fn set_desired_capacity(&self, _group: &str, desired: i32) -> Result<(), AwsError> {
            self.set_calls.lock().unwrap().push(desired);
            self.set_results.lock().unwrap().pop_front().unwrap_or(Ok(()))
        }
    }

    struct FixedMetric(f64);

    impl MetricsSource for FixedMetric {
        async fn latest_values(
            &self,
            queries: &[(String, Query)],
            _end: SystemTime,
        ) -> Result<BTreeMap<String, f64>, AwsError> {
            Ok(queries.iter().map(|(id, _)| (id.clone(), self.0)).collect())
        }
    }

    /// One tick over group `svc` at a load of `load` with target average 50; returns the
    /// outcome and the state left behind.
    async fn tick(groups: &ScriptedGroups, load: f64) -> (GroupOutcome, PollerState) {
        let path = std::env::temp_dir().join(format!(
            "lambda-autoscaler-tick-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(
            &path,
            r#"{"groups": [{"name": "svc", "metrics": [{"id": "m", "query": {"namespace": "App",
                "metric_name": "Load", "stat": "Average", "period_seconds": 60}, "target": {"average": 50}}]}]}"#,
        )
        .unwrap();
        let poller = Poller::new(
            groups,
            FixedMetric(load),
            MemoryState::default(),
            PolicySource::new(PolicyLocation::Local(path.clone()), None),
            PollerConfig::default(),
            None,
        );
        let summary = poller.tick(UNIX_EPOCH + std::time::Duration::from_secs(1_000_000), Mode::Act).await;
        std::fs::remove_file(path).unwrap();
        let (state, _) = poller.state.load().await.unwrap();
        (summary.unwrap().groups.remove(0), state)
    }

    fn scale_events(state: &PollerState) -> usize {
        state.groups["svc"].history.scale_events.len()
    }

    #[tokio::test]
    async fn a_change_rejected_because_the_max_shrank_is_clamped_to_the_new_max() {
        let mut groups = ScriptedGroups::new(group(2, 20));
        groups.reread = group(2, 5);
        groups.reject_next_change("ValidationError", 400);
        // 200 % on 2 at target 50 asks for 8; the default rate rules allow 6.
        let (outcome, state) = tick(&groups, 200.0).await;
        assert_eq!(*groups.set_calls.lock().unwrap(), [6, 5]);
        assert_eq!((outcome.action, outcome.desired, outcome.error), (Action::Scaled, 5, None));
        assert_eq!(state.groups["svc"].history.scale_events[0].change, 3, "recorded as made: 2 -> 5");
        assert_eq!(state.groups["svc"].pending_change, None);
    }

    #[tokio::test]
    async fn a_rejected_change_that_the_new_bounds_make_moot_is_no_change() {
        let mut groups = ScriptedGroups::new(group(2, 20));
        groups.reread = group(2, 2);
        groups.reject_next_change("ValidationError", 400);
        let (outcome, state) = tick(&groups, 200.0).await;
        assert_eq!(*groups.set_calls.lock().unwrap(), [6]);
        assert_eq!((outcome.action, outcome.desired), (Action::Unchanged, 2));
        assert_eq!(scale_events(&state), 0);
    }

    #[tokio::test]
    async fn a_group_under_instance_refresh_is_not_changed() {
        let groups = ScriptedGroups::new(group(2, 20));
        *groups.refresh.lock().unwrap() = Some(Ok(true));
        let (outcome, state) = tick(&groups, 200.0).await;
        assert!(groups.set_calls.lock().unwrap().is_empty());
        assert_eq!((outcome.action, outcome.desired), (Action::InstanceRefresh, 6));
        assert_eq!(scale_events(&state), 0);
        assert_eq!(state.groups["svc"].pending_change, None);
    }

    #[tokio::test]
    async fn an_unanswered_instance_refresh_check_does_not_hold_back_a_change() {
        let groups = ScriptedGroups::new(group(2, 20));
        *groups.refresh.lock().unwrap() =
            Some(Err(service_error("DescribeInstanceRefreshes", "Throttling", 400)));
        let (outcome, _) = tick(&groups, 200.0).await;
        assert_eq!(*groups.set_calls.lock().unwrap(), [6]);
        assert_eq!(outcome.action, Action::Scaled);
    }

    #[tokio::test]
    async fn a_change_that_keeps_failing_is_reported_and_not_recorded() {
        let groups = ScriptedGroups::new(group(2, 20));
        groups.reject_next_change("ServiceUnavailable", 503);
        let (outcome, state) = tick(&groups, 200.0).await;
        assert_eq!(outcome.action, Action::Failed);
        assert_eq!(outcome.desired, 2, "reported as the capacity the group still has");
        assert!(outcome.error.as_deref().unwrap().contains("ServiceUnavailable"), "{:?}", outcome.error);
        assert_eq!(scale_events(&state), 0);
        assert_eq!(state.groups["svc"].pending_change, None);
    }
}

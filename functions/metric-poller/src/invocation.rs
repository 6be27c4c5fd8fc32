//! One Lambda invocation: ticks every `TICK_INTERVAL_SECONDS` until just before the
//! deadline, so groups are re-evaluated at sub-minute resolution though EventBridge
//! invokes once a minute.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::policy_source::PolicySource;
use crate::state::StateStore;
use crate::tick::{Mode, Poller, PollerError, TickSummary};
use crate::{GroupController, MetricsSource};

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InvocationSummary {
    pub ticks: u32,
    /// Ticks that failed before deciding any group (a failed listing, lease or state read):
    /// the loop went on to the next.
    pub failed_ticks: u32,
    /// The last failed tick's error, with its causes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Ticks whose start time had already passed when the previous one ended.
    pub skipped_ticks: u32,
    pub acted_ticks: u32,
    pub observed_only_ticks: u32,
    /// Each group's capacity after the last tick.
    pub groups: BTreeMap<String, i32>,
    pub last_tick: Option<TickSummary>,
}

/// The time the invocation loop runs on: the system's, or a test's.
pub trait Clock {
    fn now(&self) -> SystemTime;
    fn sleep_until(&self, until: SystemTime) -> impl Future<Output = ()> + Send;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep_until(&self, until: SystemTime) {
        tokio::time::sleep(until.duration_since(SystemTime::now()).unwrap_or_default()).await;
    }
}

impl<G: GroupController, M: MetricsSource, S: StateStore, P: PolicySource> Poller<G, M, S, P> {
    /// The Lambda entry point.
    pub async fn handle(
        &self,
        event: LambdaEvent<EventBridgeEvent>,
    ) -> Result<InvocationSummary, PollerError> {
        // Boxed: the loop's future nests the SDK's deeply, past the compiler's layout
        // recursion limit in the Lambda runtime's future around it.
        Box::pin(self.run_until(&event.context.request_id, event.context.deadline())).await
    }

    /// [`Poller::run_until_with`] on the system clock.
    pub async fn run_until(
        &self,
        owner: &str,
        deadline: SystemTime,
    ) -> Result<InvocationSummary, PollerError> {
        self.run_until_with(&SystemClock, owner, deadline).await
    }

    /// Ticks on schedule until `deadline` minus the margin. A tick that overruns does not
    /// pile up: the starts it missed are skipped and counted. A tick may fail (a throttled
    /// listing, an unreadable state); the loop goes on to the next, and the lease is
    /// released at the end. The invocation fails only if some group failed in every tick,
    /// a tick that failed before deciding any group counting as a failure of every group:
    /// so an invocation whose ticks all failed fails too, and Lambda's Errors alarm fires.
    pub async fn run_until_with(
        &self,
        clock: &impl Clock,
        owner: &str,
        deadline: SystemTime,
    ) -> Result<InvocationSummary, PollerError> {
        let interval = self.config().tick_interval;
        let stop = deadline.checked_sub(self.config().deadline_margin).unwrap_or(deadline);
        let mut summary = InvocationSummary::default();
        let mut failures: BTreeMap<String, u32> = BTreeMap::new();
        let mut last_error = None;
        let mut next = clock.now();
        let remaining = deadline.duration_since(next).unwrap_or_default();
        tracing::info!(
            remaining_ms = remaining.as_millis() as u64,
            interval_s = interval.as_secs(),
            "invocation started"
        );
        // Lambda always sends a deadline; a runtime emulator may not. Without a usable one,
        // tick once rather than not at all.
        let stop = if remaining <= self.config().deadline_margin {
            tracing::warn!("no usable invocation deadline: running a single tick");
            next
        } else {
            stop
        };
        // The longest tick so far estimates the next one: no tick starts that could end past the stop.
        let mut longest = Duration::ZERO;
        loop {
            let started = clock.now();
            // The lease lasts past this invocation's deadline by a tick, so a crashed
            // invocation's lease expires soon after it would have ended.
            let lease_seconds =
                stop.duration_since(started).unwrap_or_default().as_secs() as i64 + interval.as_secs() as i64;
            let tick = self.tick_with_lease(owner, started, lease_seconds.max(1)).await;
            longest = longest.max(clock.now().duration_since(started).unwrap_or_default());
            summary.ticks += 1;
            match tick {
                // Already logged and counted in the tick's EMF record.
                Err(error) => {
                    summary.failed_ticks += 1;
                    summary.last_error = Some(shared::error::error_chain(&error));
                    last_error = Some(error);
                }
                Ok(tick) => {
                    match tick.mode {
                        Mode::Act => summary.acted_ticks += 1,
                        Mode::ObserveOnly => summary.observed_only_ticks += 1,
                    }
                    for g in &tick.groups {
                        summary.groups.insert(g.group.clone(), g.desired);
                        *failures.entry(g.group.clone()).or_default() += u32::from(g.error.is_some());
                    }
                    summary.last_tick = Some(tick);
                }
            }
            if next >= stop {
                break; // the single-tick case
            }

            next += interval;
            let now = clock.now();
            while next < now {
                next += interval;
                summary.skipped_ticks += 1;
            }
            if next + longest > stop {
                break;
            }
            clock.sleep_until(next).await;
        }
        self.release_lease(owner).await;
        tracing::info!(
            ticks = summary.ticks,
            failed = summary.failed_ticks,
            skipped = summary.skipped_ticks,
            acted = summary.acted_ticks,
            observed_only = summary.observed_only_ticks,
            "invocation done"
        );
        if self.config().emf {
            // Per function, so that each poller of a sharded deployment has its own alarm.
            let function = [("FunctionName", self.config().function_name.as_str())];
            let metrics = [
                ("Ticks", f64::from(summary.ticks), shared::metrics::Unit::Count),
                ("FailedTicks", f64::from(summary.failed_ticks), shared::metrics::Unit::Count),
                ("SkippedTicks", f64::from(summary.skipped_ticks), shared::metrics::Unit::Count),
            ];
            let ms = clock.now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
            println!("{}", shared::emf::record(&self.config().emf_namespace, &function, &metrics, ms as u64));
        }
        if let Some(last) = last_error.filter(|_| summary.failed_ticks == summary.ticks) {
            return Err(PollerError::EveryTickFailed { ticks: summary.ticks, last: Box::new(last) });
        }
        let failed_every_tick: Vec<String> = failures
            .into_iter()
            .filter(|(_, n)| *n > 0 && *n + summary.failed_ticks == summary.ticks)
            .map(|(g, _)| g)
            .collect();
        if !failed_every_tick.is_empty() {
            return Err(PollerError::GroupsFailed(failed_every_tick));
        }
        Ok(summary)
    }
}

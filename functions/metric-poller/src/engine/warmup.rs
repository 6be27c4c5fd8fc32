//! How long a new instance is "warming": launched, but not yet in the metric the group is
//! scaled on. It must cover the boot (launch to InService) *and* the metric's delay (its
//! period, and CloudWatch's publication lag): an instance counted as serving before its
//! load shows in the metric makes the still-high metric ask for more again, and the group
//! runs away (a step ×3 with a 60 s warmup and 120 s boots went 20 -> 595 where ~60 were
//! needed).

use serde::{Deserialize, Serialize};

use super::ScaleEvent;
use crate::policy::{GroupPolicy, Query};
use crate::reading::Aggregation;

/// Launch to InService when nothing has been measured yet: a common EC2 boot with a
/// health check. Longer errs toward adding too little per move, never toward running away.
pub const ASSUMED_BOOT_SECONDS: i64 = 180;

/// CloudWatch's publication lag assumed for a period: standard (60-s and longer) metrics
/// become readable 60–90 s after their period ends; high-resolution ones about 10 s after.
pub fn assumed_lag(period: i64) -> i64 {
    if period >= 60 { 90 } else { period.max(10) }
}

/// From a change in load to the metric showing it, at most: the period, its lag, and for a
/// `Sum`/`SampleCount` one more period to settle (see [`crate::reading`]).
pub fn metric_delay(query: &Query) -> i64 {
    let period = i64::from(query.period_seconds().max(1));
    let settle = if Aggregation::of(query) == Aggregation::Cumulative { period } else { 0 };
    period + assumed_lag(period) + settle
}

/// The slowest of the policy's metrics.
pub fn policy_metric_delay(policy: &GroupPolicy) -> i64 {
    policy.metrics.iter().map(|m| metric_delay(&m.query)).max().unwrap_or(0)
}

/// The warmup in force: the policy's, else the measured (or assumed) boot plus the slowest
/// metric's delay.
pub fn seconds(policy: &GroupPolicy, measured_boot: Option<i64>) -> i64 {
    policy
        .instance_warmup_seconds
        .unwrap_or_else(|| measured_boot.unwrap_or(ASSUMED_BOOT_SECONDS) + policy_metric_delay(policy))
}

/// Instances warming at `now`: those the group reports as not yet in service (lifecycle
/// `Pending*`), or those the poller added within the warmup, whichever is more; never more
/// than the group has.
pub fn warming(pending: i32, events: &[ScaleEvent], warmup: i64, now: i64, desired: i32) -> i32 {
    let added: i32 = events.iter().filter(|e| e.change > 0 && now - e.time < warmup).map(|e| e.change).sum();
    added.max(pending).clamp(0, desired.max(0))
}

/// Measures launch -> InService from the group's lifecycle states: from the scale-out that
/// made instances pending until none is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootTracker {
    /// When the instances pending now were launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<i64>,
    /// The last measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_seconds: Option<i64>,
}

impl BootTracker {
    /// `last_scale_out`: the time of the poller's newest scale-out, if any.
    pub fn observe(&mut self, pending: i32, last_scale_out: Option<i64>, now: i64) {
        match (pending > 0, self.launched_at) {
            (true, None) => {
                // Instances pending without a recent scale-out of ours were launched by
                // someone else at an unknown time: measure from now (a lower bound).
                let launched = last_scale_out.filter(|t| *t <= now && now - t < 900).unwrap_or(now);
                self.launched_at = Some(launched);
            }
            (false, Some(launched)) => {
                self.measured_seconds = Some(now - launched);
                self.launched_at = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_is_measured_from_the_scale_out_to_the_last_pending_instance() {
        let mut boot = BootTracker::default();
        boot.observe(0, None, 0);
        assert_eq!(boot, BootTracker::default());
        boot.observe(3, Some(100), 110);
        boot.observe(1, Some(100), 200);
        boot.observe(0, Some(100), 230);
        assert_eq!(boot.measured_seconds, Some(130));
        assert_eq!(boot.launched_at, None);
    }

    #[test]
    fn the_default_warmup_covers_boot_and_the_metrics_delay() {
        use crate::policy::{PolicyFormat, parse_policy_text};
        let policy = |extra: &str| {
            parse_policy_text(
                &format!(
                    r#"{{"groups": [{{"name": "a"{extra}, "metrics": [{{"id": "m",
                    "query": {{"namespace": "N", "metric_name": "M", "stat": "Sum", "period_seconds": 60}},
                    "target": {{"per_instance": 10}}}}]}}]}}"#
                ),
                PolicyFormat::Json,
            )
            .unwrap()
            .groups
            .remove(0)
        };
        // 120 s boot + 60 s period + 90 s lag + 60 s for a Sum to settle.
        assert_eq!(seconds(&policy(""), Some(120)), 330);
        assert_eq!(seconds(&policy(""), None), ASSUMED_BOOT_SECONDS + 210);
        assert_eq!(seconds(&policy(r#", "instance_warmup_seconds": 60"#), Some(120)), 60);
    }

    #[test]
    fn warming_counts_pending_or_recent_scale_outs() {
        let events = [ScaleEvent { time: 0, change: 4 }, ScaleEvent { time: 50, change: -1 }];
        assert_eq!(warming(0, &events, 300, 100, 10), 4);
        assert_eq!(warming(6, &events, 300, 100, 10), 6);
        assert_eq!(warming(0, &events, 300, 300, 10), 0);
        assert_eq!(warming(20, &events, 300, 100, 10), 10, "never more than the group has");
    }
}

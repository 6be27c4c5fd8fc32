//! The simulated Auto Scaling group and its metrics, behind the same traits the poller
//! uses against AWS: the simulator runs the poller's own tick.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use shared::AwsError;

use super::cloudwatch::{SimMetric, Statistic, draw};
use crate::policy::Query;
use crate::reading::Datapoint;
use crate::tags::ENABLED_TAG;
use crate::{GroupController, GroupInfo, MetricsSource};

/// Simulated seconds are offset by this (a whole number of weeks since the Unix epoch), so
/// that history before the run is still after 1970 and profiles align with days and weeks.
pub const EPOCH: i64 = 2800 * 7 * 86_400;
pub const GROUP_NAME: &str = "simulated";

pub fn to_system_time(t: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs((EPOCH + t) as u64)
}

fn from_system_time(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64) - EPOCH
}

#[derive(Clone, Copy, Debug)]
struct Instance {
    in_service_at: i64,
}

/// An Auto Scaling group whose instances serve `boot` seconds (drawn per launch) after
/// they are launched.
#[derive(Clone, Debug)]
pub struct Group {
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    instances: Vec<Instance>,
    boot: (i64, i64),
    seed: u64,
    launches: u64,
}

impl Group {
    pub fn new(desired: i32, min: i32, max: i32, boot: (i64, i64), seed: u64) -> Self {
        let instances = vec![Instance { in_service_at: i64::MIN }; desired.max(0) as usize];
        Self { desired, min, max, instances, boot, seed, launches: 0 }
    }

    pub fn in_service(&self, now: i64) -> i32 {
        self.instances.iter().filter(|i| i.in_service_at <= now).count() as i32
    }

    /// Lifecycle `Pending*`: launched, not yet in service.
    pub fn pending(&self, now: i64) -> i32 {
        self.desired - self.in_service(now)
    }

    /// Pending, or in service for less than `warmup` seconds.
    pub fn warming(&self, now: i64, warmup: i64) -> i32 {
        self.instances.iter().filter(|i| i.in_service_at > now - warmup).count() as i32
    }

    /// Launches (new instances) or terminates (pending ones first, then the newest).
    pub fn set_desired(&mut self, now: i64, desired: i32) {
        let desired = desired.clamp(self.min, self.max.max(self.min));
        while (self.instances.len() as i32) < desired {
            self.launches += 1;
            let boot = draw(self.seed ^ 0xB007, self.launches, self.boot);
            self.instances.push(Instance { in_service_at: now + boot });
        }
        if (self.instances.len() as i32) > desired {
            self.instances.sort_by_key(|i| i.in_service_at);
            self.instances.truncate(desired as usize);
        }
        self.desired = desired;
    }
}

/// The group and its metrics (by the policy's metric id) at the simulator's clock.
pub struct World {
    pub group: Mutex<Group>,
    pub metrics: Mutex<BTreeMap<String, SimMetric>>,
    pub now: Mutex<i64>,
    /// Queries asked for so far: the metrics a GetMetricData bill would count.
    pub metrics_requested: Mutex<u64>,
}

impl World {
    pub fn now(&self) -> i64 {
        *self.now.lock().expect("clock")
    }

    fn info(&self) -> GroupInfo {
        let group = self.group.lock().expect("group");
        GroupInfo {
            name: GROUP_NAME.into(),
            min_size: group.min,
            max_size: group.max,
            desired_capacity: group.desired,
            pending_instances: group.pending(self.now()),
            in_service_instances: group.in_service(self.now()),
            tags: BTreeMap::from([(ENABLED_TAG.to_owned(), "true".to_owned())]),
        }
    }
}

impl GroupController for &World {
    async fn list_enabled_groups(&self) -> Result<Vec<GroupInfo>, AwsError> {
        Ok(vec![self.info()])
    }

    async fn describe_group(&self, _group: &str) -> Result<Option<GroupInfo>, AwsError> {
        Ok(Some(self.info()))
    }

    async fn instance_refresh_running(&self, _group: &str) -> Result<bool, AwsError> {
        Ok(false)
    }

    async fn set_desired_capacity(&self, _group: &str, desired: i32) -> Result<(), AwsError> {
        let now = self.now();
        self.group.lock().expect("group").set_desired(now, desired);
        Ok(())
    }
}

impl MetricsSource for &World {
    async fn datapoints(
        &self,
        queries: &[(String, Query)],
        start: SystemTime,
        end: SystemTime,
    ) -> Result<BTreeMap<String, Vec<Datapoint>>, AwsError> {
        let now = self.now();
        *self.metrics_requested.lock().expect("count") += queries.len() as u64;
        let metrics = self.metrics.lock().expect("metrics");
        let (start, end) = (from_system_time(start), from_system_time(end));
        let mut out = BTreeMap::new();
        for (query_id, query) in queries {
            // The poller names a query `g<group index>_<metric id>`.
            let Some(metric) = query_id.split_once('_').and_then(|(_, id)| metrics.get(id)) else { continue };
            let statistic = match query {
                Query::Metric(m) => Statistic::of(&m.stat),
                Query::Expression { .. } => Statistic::Average,
            };
            let points = metric
                .datapoints(statistic, i64::from(query.period_seconds()), start, end, now)
                .into_iter()
                .map(|p| Datapoint { time: p.time + EPOCH, value: p.value })
                .collect::<Vec<_>>();
            out.insert(query_id.clone(), points);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_serve_after_their_boot_and_scale_in_takes_pending_ones_first() {
        let mut group = Group::new(2, 0, 10, (100, 100), 1);
        group.set_desired(0, 5);
        assert_eq!((group.in_service(99), group.pending(99)), (2, 3));
        assert_eq!(group.in_service(100), 5);
        group.set_desired(50, 3);
        assert_eq!((group.in_service(60), group.pending(60)), (2, 1));
        assert_eq!(group.warming(200, 60), 0);
        assert_eq!(group.warming(150, 60), 1);
    }
}

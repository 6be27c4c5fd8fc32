//! `autoscaler status`: what the poller is doing, read where it works: the policy in force
//! and its version, the lease, and per managed group its capacity, the last decision and
//! its reason, the last scaling events and each metric's newest datapoint; and the groups
//! the policy names that the poller leaves alone.
//!
//! [`gather`] makes the reads (the policy, the state and lease objects,
//! DescribeAutoScalingGroups, one batched GetMetricData) into a [`Status`], which `--json`
//! prints as it is; [`render`] turns it into the table, a pure function of the status and
//! the time. It only reads: the state has one writer, the poller's tick.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use metric_poller::discovery::{discover, query_id};
use metric_poller::policy_source::{PolicyLoadError, PolicyLocation, PolicyStore};
use metric_poller::reading::{self, Aggregation, Datapoint, STALE_PERIODS};
use metric_poller::state::{LastDecision, Lease, RECENT_SCALINGS, S3State};
use metric_poller::tags::{ENABLED_TAG, PAUSED_TAG};
use metric_poller::{AutoScalingGroups, CloudWatchMetrics, GroupController, MetricsSource, PollerConfig};
use serde::Serialize;
use shared::AwsError;
use shared::aws::{Clients, load_sdk_config};
use shared::config::Env;
use shared::s3uri::{S3Uri, S3UriError};
use shared::store::{JsonStore, StoreError};

use crate::backtest::human_duration;
use crate::summary::iso8601;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The policy document (a path or s3://bucket/key); default POLICY_URI.
    #[arg(long)]
    policy_uri: Option<String>,
    /// Where the poller keeps its state and lease (s3://bucket/prefix); default STATE_URI.
    #[arg(long)]
    state_uri: Option<String>,
    /// Print the status as one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no policy location: give --policy-uri or set POLICY_URI")]
    NoPolicyUri,
    #[error(
        "no state location: give --state-uri or set STATE_URI (a poller without one keeps its state in its own memory)"
    )]
    NoStateUri,
    #[error("bad location {uri:?}")]
    BadUri {
        uri: String,
        #[source]
        source: S3UriError,
    },
    #[error("reading the policy failed")]
    Policy(#[source] PolicyLoadError),
    #[error("reading the poller's state at {location} failed")]
    State {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("reading the Auto Scaling groups failed")]
    Groups(#[source] AwsError),
    #[error("reading the metrics' newest datapoints failed")]
    Metrics(#[source] AwsError),
}

/// Everything `status` reports, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Unix seconds: when it was read (ages count from then).
    pub time: i64,
    pub policy: PolicyStatus,
    pub state: StateStatus,
    pub groups: Vec<GroupStatus>,
    /// Groups the policy names that the poller does not manage.
    pub not_managed: Vec<NotManaged>,
}

#[derive(Debug, Serialize)]
pub struct PolicyStatus {
    pub location: String,
    /// The S3 ETag, or a hash of a local file's content (as the poller compares them).
    pub version: Option<String>,
    /// How many group entries (selectors) it has.
    pub entries: usize,
}

#[derive(Debug, Serialize)]
pub struct StateStatus {
    pub location: String,
    /// Whether a state object exists: none means the poller never ran (or never got as far
    /// as writing it).
    pub written: bool,
    /// `None`: never taken.
    pub lease: Option<LeaseStatus>,
}

#[derive(Debug, Serialize)]
pub struct LeaseStatus {
    pub holder: String,
    /// Unix seconds; 0 when the holder gave it up.
    pub expires_at: i64,
    pub released: bool,
    pub expired: bool,
    /// Until the expiry; negative: expired that long ago.
    pub expires_in_seconds: i64,
}

impl LeaseStatus {
    fn of(lease: Lease, now: i64) -> Self {
        let released = lease.expires_at <= 0;
        Self {
            holder: lease.owner,
            expires_at: lease.expires_at,
            released,
            expired: lease.expires_at <= now,
            expires_in_seconds: lease.expires_at - now,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupStatus {
    pub name: String,
    /// Tagged `lambda-autoscaler:paused=true`: decided, never changed.
    pub paused: bool,
    pub desired: i32,
    pub in_service: i32,
    pub pending: i32,
    pub min: i32,
    pub max: i32,
    /// `None`: no tick has decided it yet (or the state predates decisions being kept).
    pub last_decision: Option<LastDecision>,
    /// The last changes of desired capacity, the poller's and others', oldest first.
    pub scaling_events: Vec<ScalingEvent>,
    pub metrics: Vec<MetricStatus>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct ScalingEvent {
    /// Unix seconds.
    pub time: i64,
    pub from: i32,
    pub to: i32,
    pub reason: String,
    /// Someone else's change (an operator's, another tool's), seen by the poller.
    pub external: bool,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct MetricStatus {
    pub id: String,
    pub period_seconds: i64,
    /// The newest datapoint within the window read (`time`: its period's start).
    pub newest: Option<Datapoint>,
    /// Seconds since the newest datapoint's period started.
    pub age_seconds: Option<i64>,
    /// No datapoint, or the newest ended more than `STALE_PERIODS` periods ago: the
    /// poller has no value for it (the same rule as `metric_poller::reading`).
    pub stale: bool,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct NotManaged {
    pub group: String,
    pub reason: NotManagedReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotManagedReason {
    /// The group exists without `lambda-autoscaler:enabled=true`.
    NotEnabled,
    NoSuchGroup,
}

/// The newest of `points`, and whether it is stale at `now`: the poller's own rule
/// ([`reading::read`]), so a metric is stale exactly when a tick now would find no
/// settled value (a `Sum` settles a period after it ends), `METRICS_END_OFFSET_SECONDS`
/// aside.
fn metric_status(
    id: &str,
    period_seconds: i64,
    aggregation: Aggregation,
    points: &[Datapoint],
    now: i64,
) -> MetricStatus {
    let newest = points.iter().copied().max_by_key(|p| p.time);
    MetricStatus {
        id: id.to_owned(),
        period_seconds,
        newest,
        age_seconds: newest.map(|p| now - p.time),
        stale: reading::read(points, period_seconds.max(1), aggregation, now).value.is_none(),
    }
}

/// The poller's recorded changes and the external ones, the last [`RECENT_SCALINGS`].
fn scaling_events(state: &metric_poller::state::GroupState) -> Vec<ScalingEvent> {
    let own = state.recent_scalings.iter().map(|s| ScalingEvent {
        time: s.time,
        from: s.from,
        to: s.to,
        reason: s.reason.clone(),
        external: false,
    });
    let external = state.history.external_changes.iter().map(|e| ScalingEvent {
        time: e.time,
        from: e.from,
        to: e.to,
        reason: "someone else's change, seen by the poller".to_owned(),
        external: true,
    });
    let mut events: Vec<ScalingEvent> = own.chain(external).collect();
    events.sort_by_key(|e| e.time);
    events.split_off(events.len().saturating_sub(RECENT_SCALINGS))
}

/// How far back the newest datapoints are looked for: far enough that a stale metric's
/// last datapoint still shows (with its age), not just "none".
fn newest_window_seconds(longest_period: i64) -> i64 {
    (longest_period * 10 * STALE_PERIODS).max(3 * 3600)
}

/// Reads everything `status` shows, at `now` (unix seconds).
pub async fn gather(
    policy: &PolicyStore,
    state: &S3State,
    state_location: &str,
    groups: &impl GroupController,
    metrics: &impl MetricsSource,
    now: i64,
) -> Result<Status, StatusError> {
    let document = policy.document().await.map_err(StatusError::Policy)?;
    let state_error = |source| StatusError::State { location: state_location.to_owned(), source };
    let stored = state.read_state().await.map_err(state_error)?;
    let lease = state.read_lease().await.map_err(state_error)?;
    let enabled = groups.list_enabled_groups().await.map_err(StatusError::Groups)?;
    // The poller's own rules decide what is managed and what is paused.
    let discovery = discover(&document, enabled);

    let mut not_managed = Vec::new();
    for name in &discovery.named_but_not_enabled {
        let exists = groups.describe_group(name).await.map_err(StatusError::Groups)?.is_some();
        let reason = if exists { NotManagedReason::NotEnabled } else { NotManagedReason::NoSuchGroup };
        not_managed.push(NotManaged { group: name.clone(), reason });
    }

    // Every metric of every managed group in one batched read.
    let queries = discovery.queries(&document);
    let datapoints = if queries.is_empty() {
        BTreeMap::new()
    } else {
        let longest = queries.iter().map(|(_, q)| i64::from(q.period_seconds())).max().unwrap_or(60);
        let end = UNIX_EPOCH + Duration::from_secs(now.max(0) as u64);
        let start = end - Duration::from_secs(newest_window_seconds(longest) as u64);
        metrics.datapoints(&queries, start, end).await.map_err(StatusError::Metrics)?
    };

    let group_statuses = discovery
        .managed
        .iter()
        .enumerate()
        .map(|(gi, managed)| {
            let info = &managed.info;
            let group_state = stored.as_ref().and_then(|s| s.groups.get(&info.name));
            let metrics = document.groups[managed.policy_index]
                .metrics
                .iter()
                .map(|metric| {
                    let points = datapoints.get(&query_id(gi, &metric.id)).map_or(&[][..], Vec::as_slice);
                    let period = i64::from(metric.query.period_seconds());
                    metric_status(&metric.id, period, Aggregation::of(&metric.query), points, now)
                })
                .collect();
            GroupStatus {
                name: info.name.clone(),
                paused: managed.paused,
                desired: info.desired_capacity,
                in_service: info.in_service_instances,
                pending: info.pending_instances,
                min: info.min_size,
                max: info.max_size,
                last_decision: group_state.and_then(|s| s.last_decision.clone()),
                scaling_events: group_state.map(scaling_events).unwrap_or_default(),
                metrics,
            }
        })
        .collect();

    Ok(Status {
        time: now,
        policy: PolicyStatus {
            location: policy.location().to_string(),
            version: policy.version(),
            entries: document.groups.len(),
        },
        state: StateStatus {
            location: state_location.to_owned(),
            written: stored.is_some(),
            lease: lease.map(|l| LeaseStatus::of(l, now)),
        },
        groups: group_statuses,
        not_managed,
    })
}

/// `iso (N ago)`.
fn when(time: i64, now: i64) -> String {
    format!("{} ({} ago)", iso8601(time), human_duration(now - time))
}

fn lease_line(lease: Option<&LeaseStatus>, now: i64) -> String {
    match lease {
        None => "never taken".to_owned(),
        Some(l) if l.released => format!("released by {}", l.holder),
        Some(l) if l.expired => format!(
            "held by {} until {}: expired {} ago",
            l.holder,
            iso8601(l.expires_at),
            human_duration(now - l.expires_at)
        ),
        Some(l) => {
            format!(
                "held by {} until {} ({} left)",
                l.holder,
                iso8601(l.expires_at),
                human_duration(l.expires_at - now)
            )
        }
    }
}

/// The status as a table for people at a terminal, at `now` (unix seconds).
pub fn render(status: &Status, now: i64) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let policy = &status.policy;
    line(format!(
        "policy  {}, version {} ({} group entries)",
        policy.location,
        policy.version.as_deref().unwrap_or("unknown"),
        policy.entries
    ));
    let state = &status.state;
    if state.written {
        line(format!("state   {}", state.location));
    } else {
        line(format!("state   {}: no state object: the poller has never run there", state.location));
    }
    line(format!("lease   {}", lease_line(state.lease.as_ref(), now)));
    line(String::new());

    let width = status.groups.iter().map(|g| g.name.len()).chain([5]).max().unwrap_or(5);
    line(format!(
        "{:<width$}  {:>7}  {:>10}  {:>7}  {:>4}  {:>4}",
        "group", "desired", "in service", "pending", "min", "max"
    ));
    for g in &status.groups {
        line(format!(
            "{:<width$}  {:>7}  {:>10}  {:>7}  {:>4}  {:>4}  {}",
            g.name,
            g.desired,
            g.in_service,
            g.pending,
            g.min,
            g.max,
            if g.paused { "paused" } else { "" }
        ));
    }
    if status.groups.is_empty() {
        line("(no enabled group matches the policy)".to_owned());
    }

    for g in &status.groups {
        line(String::new());
        line(g.name.clone());
        match &g.last_decision {
            Some(d) => line(format!("  decided  {}: desired {}: {}", when(d.time, now), d.desired, d.reason)),
            None => line("  decided  never".to_owned()),
        }
        for e in &g.scaling_events {
            let who = if e.external { "external" } else { "scaled  " };
            line(format!("  {who} {}: {} -> {}: {}", when(e.time, now), e.from, e.to, e.reason));
        }
        for m in &g.metrics {
            let newest = match m.newest {
                Some(p) => format!("{} at {}", p.value, when(p.time, now)),
                None => "no datapoint".to_owned(),
            };
            let stale = if m.stale {
                format!(": STALE (nothing newer than {STALE_PERIODS} periods of {} s)", m.period_seconds)
            } else {
                String::new()
            };
            line(format!("  metric {}  {newest}{stale}", m.id));
        }
    }

    let paused: Vec<&GroupStatus> = status.groups.iter().filter(|g| g.paused).collect();
    if !paused.is_empty() || !status.not_managed.is_empty() {
        line(String::new());
        line("left alone".to_owned());
        let width = paused
            .iter()
            .map(|g| g.name.len())
            .chain(status.not_managed.iter().map(|n| n.group.len()))
            .max()
            .unwrap_or(0);
        for g in paused {
            line(format!(
                "  {:<width$}  paused: tagged {PAUSED_TAG}=true, decided but never changed",
                g.name
            ));
        }
        for n in &status.not_managed {
            let why = match n.reason {
                NotManagedReason::NotEnabled => format!("not tagged {ENABLED_TAG}=true: not managed"),
                NotManagedReason::NoSuchGroup => "no such Auto Scaling group".to_owned(),
            };
            line(format!("  {:<width$}  {why}", n.group));
        }
    }
    out
}

pub async fn run(args: StatusArgs) -> Result<ExitCode, Error> {
    let config = PollerConfig::from_env(&Env::from_process())?;
    let bad_uri = |uri: &str| {
        let uri = uri.to_owned();
        move |source| StatusError::BadUri { uri, source }
    };
    let policy_location = match &args.policy_uri {
        Some(uri) => PolicyLocation::parse(uri).map_err(bad_uri(uri))?,
        None => config.policy.clone().ok_or(StatusError::NoPolicyUri)?,
    };
    let state_uri: S3Uri = match &args.state_uri {
        Some(uri) => uri.parse().map_err(bad_uri(uri))?,
        None => config.state.clone().ok_or(StatusError::NoStateUri)?,
    };
    let clients = Clients::new(&load_sdk_config(metric_poller::RETRY).await, config.s3_force_path_style);
    let policy = PolicyStore::new(policy_location, Some(clients.s3.clone()));
    let state = S3State::new(JsonStore::new(clients.s3.clone(), &state_uri));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let status = gather(
        &policy,
        &state,
        &state_uri.to_string(),
        &AutoScalingGroups::new(clients.autoscaling.clone()),
        &CloudWatchMetrics::new(clients.cloudwatch.clone()),
        now,
    )
    .await?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &status)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&status, now).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use metric_poller::engine::ExternalChange;
    use metric_poller::state::{GroupState, Scaling};

    use super::*;

    const NOW: i64 = 1_764_513_000;

    #[test]
    fn a_metric_is_stale_once_its_newest_period_ended_more_than_three_periods_ago() {
        let point = |age: i64| Datapoint { time: NOW - age, value: 5.0 };
        let fresh = metric_status("cpu", 60, Aggregation::Level, &[point(300), point(240)], NOW);
        assert_eq!((fresh.newest, fresh.age_seconds, fresh.stale), (Some(point(240)), Some(240), false));
        // Ended 3 periods ago: the poller still reads it; a second more, it does not.
        assert!(!metric_status("cpu", 60, Aggregation::Level, &[point(60 + 3 * 60)], NOW).stale);
        assert!(metric_status("cpu", 60, Aggregation::Level, &[point(60 + 3 * 60 + 1)], NOW).stale);
        let none = metric_status("cpu", 60, Aggregation::Level, &[], NOW);
        assert_eq!((none.newest, none.age_seconds, none.stale), (None, None, true));
        // A Sum settles a period after it ends: with only its filling minute and the one
        // that just ended, the poller has no value to act on.
        assert!(metric_status("requests", 60, Aggregation::Cumulative, &[point(90), point(30)], NOW).stale);
        assert!(!metric_status("requests", 60, Aggregation::Cumulative, &[point(150), point(90)], NOW).stale);
    }

    #[test]
    fn scaling_events_mix_the_pollers_and_external_changes_newest_last() {
        let mut state = GroupState::default();
        for i in 0..4 {
            state.recent_scalings.push(Scaling { time: 100 * i, from: 2, to: 3, reason: format!("r{i}") });
        }
        state.history.external_changes.push(ExternalChange { time: 150, from: 3, to: 6 });
        state.history.external_changes.push(ExternalChange { time: 250, from: 3, to: 5 });
        let events = scaling_events(&state);
        let times: Vec<(i64, bool)> = events.iter().map(|e| (e.time, e.external)).collect();
        assert_eq!(times, [(100, false), (150, true), (200, false), (250, true), (300, false)]);
    }

    fn group(name: &str, paused: bool) -> GroupStatus {
        GroupStatus {
            name: name.to_owned(),
            paused,
            desired: 4,
            in_service: 3,
            pending: 1,
            min: 1,
            max: 20,
            last_decision: None,
            scaling_events: Vec::new(),
            metrics: Vec::new(),
        }
    }

    fn status(lease: Option<Lease>, written: bool) -> Status {
        let mut web = group("web", false);
        web.last_decision =
            Some(LastDecision { time: NOW - 600, desired: 4, reason: "cpu 100 over 50".into() });
        web.scaling_events.push(ScalingEvent {
            time: NOW - 660,
            from: 2,
            to: 4,
            reason: "cpu 100 over 50".into(),
            external: false,
        });
        web.metrics.push(metric_status(
            "cpu",
            60,
            Aggregation::Level,
            &[Datapoint { time: NOW - 90, value: 90.0 }, Datapoint { time: NOW - 30, value: 100.0 }],
            NOW,
        ));
        let mut batch = group("batch", false);
        batch.metrics.push(metric_status(
            "jobs",
            60,
            Aggregation::Level,
            &[Datapoint { time: NOW - 900, value: 7.0 }],
            NOW,
        ));
        Status {
            time: NOW,
            policy: PolicyStatus {
                location: "s3://cfg/policy.json".into(),
                version: Some("\"e1\"".into()),
                entries: 4,
            },
            state: StateStatus {
                location: "s3://state/poller".into(),
                written,
                lease: lease.map(|l| LeaseStatus::of(l, NOW)),
            },
            groups: vec![web, batch, group("frozen", true)],
            not_managed: vec![
                NotManaged { group: "untagged".into(), reason: NotManagedReason::NotEnabled },
                NotManaged { group: "gone".into(), reason: NotManagedReason::NoSuchGroup },
            ],
        }
    }

    #[test]
    fn the_table_has_the_policy_lease_groups_decisions_events_metrics_and_the_groups_left_alone() {
        let expired = Lease { owner: "poller-1".into(), expires_at: NOW - 480 };
        let table = render(&status(Some(expired), true), NOW);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "policy  s3://cfg/policy.json, version \"e1\" (4 group entries)");
        assert_eq!(lines[1], "state   s3://state/poller");
        assert_eq!(
            lines[2],
            format!("lease   held by poller-1 until {}: expired 8 min ago", iso8601(NOW - 480))
        );
        assert_eq!(lines[4], "group   desired  in service  pending   min   max");
        assert_eq!(lines[5], "web           4           3        1     1    20");
        assert_eq!(lines[7], "frozen        4           3        1     1    20  paused");
        assert!(table.contains(&format!(
            "  decided  {} (10 min ago): desired 4: cpu 100 over 50",
            iso8601(NOW - 600)
        )));
        assert!(
            table.contains(&format!(
                "  scaled   {} (11 min ago): 2 -> 4: cpu 100 over 50",
                iso8601(NOW - 660)
            ))
        );
        assert!(table.contains(&format!("  metric cpu  100 at {} (30 s ago)\n", iso8601(NOW - 30))));
        assert!(table.contains(&format!(
            "  metric jobs  7 at {} (15 min ago): STALE (nothing newer than 3 periods of 60 s)",
            iso8601(NOW - 900)
        )));
        assert!(table.contains("frozen\n  decided  never\n"), "{table}");
        assert!(table.ends_with(
            "left alone\n  frozen    paused: tagged lambda-autoscaler:paused=true, decided but never changed\n  untagged  not tagged lambda-autoscaler:enabled=true: not managed\n  gone      no such Auto Scaling group\n"
        ), "{table}");
    }

    #[test]
    fn a_live_released_or_absent_lease_and_a_poller_that_never_ran_say_so() {
        let lease_line_of =
            |lease, written| render(&status(lease, written), NOW).lines().nth(2).unwrap().to_owned();
        let live = Lease { owner: "p".into(), expires_at: NOW + 45 };
        assert_eq!(
            lease_line_of(Some(live), true),
            format!("lease   held by p until {} (45 s left)", iso8601(NOW + 45))
        );
        let released = Lease { owner: "p".into(), expires_at: 0 };
        assert_eq!(lease_line_of(Some(released), true), "lease   released by p");
        assert_eq!(lease_line_of(None, false), "lease   never taken");
        let never = render(&status(None, false), NOW);
        assert!(
            never.contains("state   s3://state/poller: no state object: the poller has never run there\n")
        );
    }
}

//! What the poller keeps between ticks and invocations, and the lease that keeps two
//! invocations from acting at once.
//!
//! One state object per poller (per `STATE_URI`) holds every group's history: one S3
//! write per tick, whatever the number of groups. Writes are conditional on the version
//! read, so a second writer is detected, never overwritten. A change of capacity is
//! written down as `pending_change` *before* SetDesiredCapacity is called, and stays there
//! while its outcome is unknown (the poller died, or the call went unanswered): the next
//! tick settles it from the group's actual capacity. `last_desired` is the capacity the
//! poller last set or saw; a different one later is someone else's change.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use shared::store::{JsonStore, StoreError, Version};

use crate::engine::History;
use crate::engine::warmup::BootTracker;
use crate::forecast::Profile;

pub const STATE_SCHEMA_VERSION: u32 = 1;
const STATE_OBJECT: &str = "state.json";
const LEASE_OBJECT: &str = "lease.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PollerState {
    pub schema_version: u32,
    pub groups: BTreeMap<String, GroupState>,
}

impl Default for PollerState {
    fn default() -> Self {
        Self { schema_version: STATE_SCHEMA_VERSION, groups: BTreeMap::new() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub history: History,
    /// A SetDesiredCapacity about to be made, or made with an unknown outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingChange>,
    /// The desired capacity the poller last set or observed (absent in states written
    /// before it existed: then nothing counts as external until the next tick).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_desired: Option<i32>,
    /// Launch -> InService, measured from the group's lifecycle states.
    #[serde(default)]
    pub boot: BootTracker,
    /// (time, instances in service) at recent ticks: what turns an average into demand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_service: Vec<(i64, i32)>,
    /// Each metric's seasonal profile (by metric id), rebuilt at most hourly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
    /// The last tick's decision (absent in states written before it existed), for
    /// `autoscaler status`: the engine itself needs only the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// The poller's last [`RECENT_SCALINGS`] changes with their reasons, oldest first, for
    /// `autoscaler status`: `history.scale_events` keeps only what rate limits count, and
    /// only while they count it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_scalings: Vec<Scaling>,
}

/// How many of the poller's changes a group's state keeps with their reasons.
pub const RECENT_SCALINGS: usize = 5;

/// A tick's decision for one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDecision {
    /// Unix seconds.
    pub time: i64,
    pub desired: i32,
    /// The explanation's one line.
    pub reason: String,
}

/// One of the poller's changes of desired capacity that took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    /// Unix seconds: when SetDesiredCapacity was called.
    pub time: i64,
    pub from: i32,
    pub to: i32,
    /// The reason of the decision that made it.
    pub reason: String,
}

/// What became of a change the poller made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// SetDesiredCapacity succeeded.
    Made,
    /// It may or may not have taken effect: kept pending, for the next tick to settle.
    Unknown,
    /// Rejected, but the group is already at the capacity asked for.
    AlreadyThere,
    /// Not made (rejected, or skipped).
    NotMade,
}

impl GroupState {
    /// Records a change's outcome: with [`GroupState::settle`] and the engine's decision,
    /// the only writers of the group's history.
    pub fn record_outcome(&mut self, outcome: ChangeOutcome, now: i64, from: i32, to: i32) {
        match outcome {
            ChangeOutcome::Made => {
                self.pending_change = None;
                self.record_scaling(now, from, to);
                self.last_desired = Some(to);
            }
            ChangeOutcome::Unknown => self.pending_change = Some(PendingChange { time: now, from, to }),
            ChangeOutcome::AlreadyThere => {
                self.pending_change = None;
                self.last_desired = Some(to);
            }
            ChangeOutcome::NotMade => self.pending_change = None,
        }
    }

    /// Records a change that took effect, in the history and with its reason: that of the
    /// decision made at `time` (the one still on record when an earlier tick's change of
    /// unknown outcome is settled, as no decision is recorded before settling).
    fn record_scaling(&mut self, time: i64, from: i32, to: i32) {
        self.history.record_scaling(time, from, to);
        if from == to {
            return;
        }
        let reason = match &self.last_decision {
            Some(decision) if decision.time == time => decision.reason.clone(),
            _ => "a change of unknown outcome that took effect".to_owned(),
        };
        self.recent_scalings.push(Scaling { time, from, to, reason });
        let excess = self.recent_scalings.len().saturating_sub(RECENT_SCALINGS);
        self.recent_scalings.drain(..excess);
    }

    /// Records the instances in service at `now`, as changes only (the state is written
    /// every tick), forgetting what no lookup within `keep` seconds can reach.
    pub fn record_in_service(&mut self, now: i64, count: i32, keep: i64) {
        if self.in_service.last().is_none_or(|(_, n)| *n != count) {
            self.in_service.push((now, count));
        }
        // The newest entry at or before the cutoff still answers for the time after it.
        let cutoff = now - keep;
        let first_needed = self.in_service.iter().rposition(|(t, _)| *t <= cutoff).unwrap_or(0);
        self.in_service.drain(..first_needed);
    }

    /// The instances in service at `time`, as last recorded at or before it.
    pub fn in_service_at(&self, time: i64) -> Option<i32> {
        self.in_service.iter().rev().find(|(t, _)| *t <= time).map(|(_, n)| *n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub time: i64,
    pub from: i32,
    pub to: i32,
}

/// What the group's actual desired capacity said about the poller's last word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The pending change took effect: recorded once, at the time it was made, so that
    /// rate limits count it.
    Made(PendingChange),
    /// The pending change did not take effect: forgotten.
    NotMade(PendingChange),
    /// The group is not where the poller left it (nor at either end of a pending change):
    /// someone else changed it, recorded as an external change.
    External { from: i32, to: i32 },
}

impl GroupState {
    /// Settles the state against the group's actual desired capacity seen at `now`, before
    /// anything is decided: a pending change is recorded if it took effect and forgotten if
    /// not; a capacity nobody here set is an external change.
    pub fn settle(&mut self, actual: i32, now: i64) -> Option<Settled> {
        let last = self.last_desired.replace(actual);
        let settled = match self.pending_change.take() {
            Some(pending) if actual == pending.to => {
                self.record_scaling(pending.time, pending.from, pending.to);
                Settled::Made(pending)
            }
            Some(pending) if actual == pending.from => Settled::NotMade(pending),
            // Someone else moved the group too. Past `from` in our direction, ours may well
            // have been made first: counted, so that the rate limit holds either way.
            Some(pending) if (actual - pending.from).signum() == (pending.to - pending.from).signum() => {
                self.record_scaling(pending.time, pending.from, pending.to);
                Settled::External { from: pending.to, to: actual }
            }
            Some(pending) => Settled::External { from: pending.from, to: actual },
            None => match last {
                Some(last) if last != actual => Settled::External { from: last, to: actual },
                _ => return None,
            },
        };
        if let Settled::External { from, to } = settled {
            self.history.record_external(now, from, to);
        }
        Some(settled)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Where the state and the lease live.
pub trait StateStore {
    /// The state and its version. A corrupt object or one of another schema is reported
    /// and replaced by an empty state (a cold start), never a crash loop.
    fn load(&self) -> impl Future<Output = Result<(PollerState, Version), StoreError>> + Send;

    fn save(
        &self,
        state: &PollerState,
        version: &Version,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send;

    /// Takes or renews the lease for `owner` until `now + ttl`; `false` if someone else
    /// holds an unexpired lease (or won the race for it).
    fn acquire_lease(
        &self,
        owner: &str,
        now: i64,
        ttl: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease up early so that the next invocation need not wait for it to expire.
    fn release_lease(&self, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store shared by reference: two pollers over one state, as two invocations are.
impl<T: StateStore + Sync> StateStore for &T {
    async fn load(&self) -> Result<(PollerState, Version), StoreError> {
        (**self).load().await
    }

    async fn save(&self, state: &PollerState, version: &Version) -> Result<Version, StoreError> {
        (**self).save(state, version).await
    }

    async fn acquire_lease(&self, owner: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        (**self).acquire_lease(owner, now, ttl).await
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        (**self).release_lease(owner).await
    }
}

/// State in S3 (`STATE_URI`).
#[derive(Clone, Debug)]
pub struct S3State {
    store: JsonStore,
}

impl S3State {
    pub fn new(store: JsonStore) -> Self {
        Self { store }
    }

    /// The state object as stored, `None` if there is none: for readers (`autoscaler
    /// status`), which must tell a poller that never ran, or an unreadable object, from the
    /// cold start [`StateStore::load`] makes of both.
    pub async fn read_state(&self) -> Result<Option<PollerState>, StoreError> {
        Ok(self.store.read(STATE_OBJECT).await?.0)
    }

    /// The lease as stored, `None` if it was never taken.
    pub async fn read_lease(&self) -> Result<Option<Lease>, StoreError> {
        Ok(self.store.read(LEASE_OBJECT).await?.0)
    }
}

impl StateStore for S3State {
    async fn load(&self) -> Result<(PollerState, Version), StoreError> {
        match self.store.read::<serde_json::Value>(STATE_OBJECT).await {
            Ok((None, version)) => Ok((PollerState::default(), version)),
            Ok((Some(value), version)) => {
                let schema = value.get("schema_version").and_then(serde_json::Value::as_u64);
                if schema != Some(u64::from(STATE_SCHEMA_VERSION)) {
                    tracing::warn!(?schema, "state object of another schema; starting cold");
                    return Ok((PollerState::default(), version));
                }
                match serde_json::from_value(value) {
                    Ok(state) => Ok((state, version)),
                    Err(error) => {
                        tracing::error!(%error, "state object does not match its schema; starting cold");
                        Ok((PollerState::default(), version))
                    }
                }
            }
            Err(StoreError::Corrupt { key, source, .. }) => {
                tracing::error!(key, error = %source, "state object is corrupt; starting cold");
                Ok((PollerState::default(), self.store.version_of_corrupt(STATE_OBJECT).await?))
            }
            Err(err) => Err(err),
        }
    }

    async fn save(&self, state: &PollerState, version: &Version) -> Result<Version, StoreError> {
        self.store.write(STATE_OBJECT, state, version).await
    }

    async fn acquire_lease(&self, owner: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        let (current, version) = match self.store.read::<Lease>(LEASE_OBJECT).await {
            Ok(read) => read,
            // An unreadable lease is as good as expired.
            Err(StoreError::Corrupt { .. }) => (None, self.store.version_of_corrupt(LEASE_OBJECT).await?),
            Err(err) => return Err(err),
        };
        if let Some(lease) = &current
            && lease.owner != owner
            && lease.expires_at > now
        {
            return Ok(false);
        }
        let lease = Lease { owner: owner.to_owned(), expires_at: now + ttl };
        match self.store.write(LEASE_OBJECT, &lease, &version).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let (Some(lease), version) = self.store.read::<Lease>(LEASE_OBJECT).await? else { return Ok(()) };
        if lease.owner != owner {
            return Ok(());
        }
        let released = Lease { owner: owner.to_owned(), expires_at: 0 };
        match self.store.write(LEASE_OBJECT, &released, &version).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// State in this process's memory, for a poller run from a terminal without `STATE_URI`.
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<(PollerState, u64, Option<Lease>)>,
}

impl StateStore for MemoryState {
    async fn load(&self) -> Result<(PollerState, Version), StoreError> {
        let inner = self.inner.lock().expect("state lock");
        Ok((inner.0.clone(), Version(Some(inner.1.to_string()))))
    }

    async fn save(&self, state: &PollerState, version: &Version) -> Result<Version, StoreError> {
        let mut inner = self.inner.lock().expect("state lock");
        if version.0.as_deref() != Some(inner.1.to_string().as_str()) {
            return Err(StoreError::Conflict { bucket: "memory".into(), key: STATE_OBJECT.into() });
        }
        inner.0 = state.clone();
        inner.1 += 1;
        Ok(Version(Some(inner.1.to_string())))
    }

    async fn acquire_lease(&self, owner: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().expect("state lock");
        if inner.2.as_ref().is_some_and(|l| l.owner != owner && l.expires_at > now) {
            return Ok(false);
        }
        inner.2 = Some(Lease { owner: owner.to_owned(), expires_at: now + ttl });
        Ok(true)
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("state lock");
        if inner.2.as_ref().is_some_and(|l| l.owner == owner) {
            inner.2 = None;
        }
        Ok(())
    }
}

/// The store a deployed poller uses: S3 when `STATE_URI` is set, else memory.
#[derive(Debug)]
pub enum StateBackend {
    S3(S3State),
    Memory(MemoryState),
}

impl StateStore for StateBackend {
    async fn load(&self) -> Result<(PollerState, Version), StoreError> {
        match self {
            Self::S3(s) => s.load().await,
            Self::Memory(m) => m.load().await,
        }
    }

    async fn save(&self, state: &PollerState, version: &Version) -> Result<Version, StoreError> {
        match self {
            Self::S3(s) => s.save(state, version).await,
            Self::Memory(m) => m.save(state, version).await,
        }
    }

    async fn acquire_lease(&self, owner: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        match self {
            Self::S3(s) => s.acquire_lease(owner, now, ttl).await,
            Self::Memory(m) => m.acquire_lease(owner, now, ttl).await,
        }
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        match self {
            Self::S3(s) => s.release_lease(owner).await,
            Self::Memory(m) => m.release_lease(owner).await,
        }
    }
}

/// This tick's part of `ours` (recommendations, events and pending changes stamped `now`,
/// failure counts) laid over `theirs`, the state another writer saved meanwhile.
pub fn merge_tick(mut theirs: PollerState, ours: &PollerState, now: i64) -> PollerState {
    for (name, group) in &ours.groups {
        let target = theirs.groups.entry(name.clone()).or_default();
        let history = &mut target.history;
        for r in group.history.recommendations.iter().filter(|r| r.time == now) {
            if !history.recommendations.contains(r) {
                history.recommendations.push(*r);
            }
        }
        // Events are never withdrawn, only aged out: the union. (Not just those stamped now:
        // a change settled this tick carries the time of its call, an earlier tick's.)
        for e in &group.history.scale_events {
            if !history.scale_events.contains(e) {
                history.scale_events.push(*e);
            }
        }
        history.scale_events.sort_by_key(|e| e.time);
        for e in &group.history.external_changes {
            if !history.external_changes.contains(e) {
                history.external_changes.push(*e);
            }
        }
        history.external_changes.sort_by_key(|e| e.time);
        history.consecutive_failures = group.history.consecutive_failures;
        // A pending change stamped now is this tick's (theirs may be our own intent, merged
        // forward by the other writer): ours decides, including that it was settled.
        let this_tick = |p: &Option<PendingChange>| p.is_some_and(|p| p.time == now);
        if this_tick(&group.pending_change) || this_tick(&target.pending_change) {
            target.pending_change = group.pending_change;
        }
        target.last_desired = group.last_desired;
        target.boot = group.boot;
        target.in_service.clone_from(&group.in_service);
        for (id, profile) in &group.profiles {
            target.profiles.insert(id.clone(), profile.clone());
        }
        target.last_decision.clone_from(&group.last_decision);
        for scaling in &group.recent_scalings {
            if !target.recent_scalings.contains(scaling) {
                target.recent_scalings.push(scaling.clone());
            }
        }
        target.recent_scalings.sort_by_key(|s| s.time);
        let excess = target.recent_scalings.len().saturating_sub(RECENT_SCALINGS);
        target.recent_scalings.drain(..excess);
    }
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ExternalChange, ScaleEvent};

    fn pending(from: i32, to: i32) -> GroupState {
        GroupState {
            pending_change: Some(PendingChange { time: 100, from, to }),
            last_desired: Some(from),
            ..GroupState::default()
        }
    }

    #[test]
    fn a_pending_change_is_recorded_once_if_it_happened() {
        let mut group = pending(2, 5);
        let made = PendingChange { time: 100, from: 2, to: 5 };
        assert_eq!(group.settle(5, 110), Some(Settled::Made(made)));
        assert_eq!(group.history.scale_events, [ScaleEvent { time: 100, change: 3 }], "at its own time");
        assert_eq!(group.settle(5, 120), None, "settled once");
        assert_eq!(group.history.scale_events.len(), 1);
        assert!(group.history.external_changes.is_empty());

        let mut group = pending(2, 5);
        assert!(matches!(group.settle(2, 110), Some(Settled::NotMade(_))));
        assert!(group.history.scale_events.is_empty(), "the call never took effect");
        assert_eq!(group.pending_change, None);
    }

    #[test]
    fn a_capacity_nobody_here_set_is_an_external_change() {
        let mut group = GroupState { last_desired: Some(2), ..GroupState::default() };
        assert_eq!(group.settle(2, 100), None);
        assert_eq!(group.settle(6, 110), Some(Settled::External { from: 2, to: 6 }));
        assert_eq!(group.history.external_changes, [ExternalChange { time: 110, from: 2, to: 6 }]);
        assert_eq!(group.settle(6, 120), None, "seen once");
        // Neither end of a pending change, past it in its direction: ours counted (it may
        // have been made first), then someone else's.
        let mut group = pending(2, 4);
        assert_eq!(group.settle(9, 110), Some(Settled::External { from: 4, to: 9 }));
        assert_eq!(group.history.scale_events, [ScaleEvent { time: 100, change: 2 }]);
        assert_eq!(group.history.external_changes, [ExternalChange { time: 110, from: 4, to: 9 }]);
        // The other way: ours was not made, or was undone; only theirs.
        let mut group = pending(2, 4);
        assert_eq!(group.settle(1, 110), Some(Settled::External { from: 2, to: 1 }));
        assert!(group.history.scale_events.is_empty());
        // A state written before `last_desired` existed has nothing to compare with.
        let mut group = GroupState::default();
        assert_eq!(group.settle(6, 100), None);
        assert_eq!(group.last_desired, Some(6));
    }

    #[test]
    fn a_merged_tick_keeps_its_external_changes_pending_change_and_last_capacity() {
        let mut ours = GroupState { last_desired: Some(2), ..GroupState::default() };
        ours.history.record_external(90, 1, 2);
        ours.settle(6, 100);
        ours.pending_change = Some(PendingChange { time: 100, from: 6, to: 8 });
        let decision = LastDecision { time: 100, desired: 8, reason: "cpu high".into() };
        ours.last_decision = Some(decision.clone());
        let mine = Scaling { time: 100, from: 6, to: 8, reason: "cpu high".into() };
        ours.recent_scalings.push(mine.clone());
        let ours =
            PollerState { groups: BTreeMap::from([("svc".to_owned(), ours)]), ..PollerState::default() };
        let mut theirs = PollerState::default();
        let their_group = theirs.groups.entry("svc".to_owned()).or_default();
        let earlier: Vec<Scaling> = (0..RECENT_SCALINGS as i64)
            .map(|i| Scaling { time: 40 + i, from: 1, to: 2, reason: format!("earlier {i}") })
            .collect();
        their_group.recent_scalings.clone_from(&earlier);
        their_group.recent_scalings.push(mine.clone());
        let merged = merge_tick(theirs, &ours, 100);
        let svc = &merged.groups["svc"];
        assert_eq!(svc.last_decision, Some(decision), "this tick's decision");
        // Theirs and ours, each once, the newest RECENT_SCALINGS kept.
        let mut expected = earlier[1..].to_vec();
        expected.push(mine);
        assert_eq!(svc.recent_scalings, expected);
        assert_eq!(
            svc.history.external_changes,
            [ExternalChange { time: 90, from: 1, to: 2 }, ExternalChange { time: 100, from: 2, to: 6 }],
        );
        assert_eq!(svc.pending_change, Some(PendingChange { time: 100, from: 6, to: 8 }));
        assert_eq!(svc.last_desired, Some(6));
    }

    /// The final save of a tick that made its change lost a race: the other writer had
    /// merged forward this tick's intent. The merge keeps the settled event (stamped with
    /// the call's earlier time) once, and no intent that the next tick would record again.
    #[test]
    fn a_merge_keeps_a_change_settled_this_tick_and_drops_its_intent() {
        let intent = PendingChange { time: 100, from: 2, to: 4 };
        let mut theirs_group = GroupState { pending_change: Some(intent), ..GroupState::default() };
        theirs_group.history.record_scaling(40, 1, 2);
        let theirs = PollerState {
            groups: BTreeMap::from([("svc".to_owned(), theirs_group)]),
            ..PollerState::default()
        };
        // Ours: an earlier tick's change (at 70) settled now, this tick's made at once.
        let mut ours_group = GroupState { last_desired: Some(2), ..GroupState::default() };
        ours_group.history.record_scaling(40, 1, 2);
        ours_group.history.record_scaling(70, 2, 3);
        ours_group.history.record_scaling(100, 2, 4);
        let ours = PollerState {
            groups: BTreeMap::from([("svc".to_owned(), ours_group)]),
            ..PollerState::default()
        };

        let mut merged = merge_tick(theirs, &ours, 100).groups.remove("svc").unwrap();
        let times: Vec<i64> = merged.history.scale_events.iter().map(|e| e.time).collect();
        assert_eq!(times, [40, 70, 100], "each event once, the settled one included");
        assert_eq!(merged.pending_change, None, "the intent was settled this tick");
        // So the next tick records nothing again.
        assert!(matches!(merged.settle(4, 110), None | Some(Settled::External { .. })));
        assert_eq!(merged.history.scale_events.len(), 3);
    }

    #[test]
    fn changes_made_keep_their_decisions_reason_the_last_few_only() {
        let decided = |group: &mut GroupState, time: i64, desired: i32| {
            group.last_decision = Some(LastDecision { time, desired, reason: format!("reason at {time}") });
        };
        let mut group = GroupState { last_desired: Some(2), ..GroupState::default() };
        decided(&mut group, 100, 4);
        group.record_outcome(ChangeOutcome::Made, 100, 2, 4);
        // A change of unknown outcome, settled by the next tick before it decides.
        decided(&mut group, 110, 6);
        group.record_outcome(ChangeOutcome::Unknown, 110, 4, 6);
        assert!(matches!(group.settle(6, 120), Some(Settled::Made(_))));
        let recorded: Vec<(i64, i32, i32, &str)> =
            group.recent_scalings.iter().map(|s| (s.time, s.from, s.to, s.reason.as_str())).collect();
        assert_eq!(recorded, [(100, 2, 4, "reason at 100"), (110, 4, 6, "reason at 110")]);

        for time in 0..RECENT_SCALINGS as i64 {
            decided(&mut group, 200 + time, 7 + time as i32);
            group.record_outcome(ChangeOutcome::Made, 200 + time, 6 + time as i32, 7 + time as i32);
        }
        assert_eq!(group.recent_scalings.len(), RECENT_SCALINGS);
        assert_eq!(group.recent_scalings[0].time, 200, "the oldest dropped");
        assert_eq!(group.history.scale_events.len(), RECENT_SCALINGS + 2, "rate limits see them all");
    }

    #[test]
    fn a_state_written_before_decisions_were_kept_still_loads() {
        let old = r#"{"history": {"recommendations": [], "scale_events": [], "consecutive_failures": 0}}"#;
        let group: GroupState = serde_json::from_str(old).unwrap();
        assert_eq!((group.last_decision, group.recent_scalings.len()), (None, 0));
    }

    #[test]
    fn in_service_counts_are_kept_as_changes_within_the_lookback() {
        let mut group = GroupState::default();
        for (t, n) in [(0, 4), (10, 4), (20, 6), (30, 6), (40, 6), (50, 8)] {
            group.record_in_service(t, n, 25);
        }
        assert_eq!(group.in_service, [(20, 6), (50, 8)], "the 6 still answers for 25..50");
        assert_eq!(
            (group.in_service_at(30), group.in_service_at(50), group.in_service_at(10)),
            (Some(6), Some(8), None)
        );
    }

    #[tokio::test]
    async fn memory_state_detects_conflicts_and_honours_the_lease() {
        let store = MemoryState::default();
        let (state, version) = store.load().await.unwrap();
        let next = store.save(&state, &version).await.unwrap();
        assert!(matches!(store.save(&state, &version).await, Err(StoreError::Conflict { .. })));
        store.save(&state, &next).await.unwrap();
        assert!(store.acquire_lease("a", 0, 60).await.unwrap());
        assert!(!store.acquire_lease("b", 30, 60).await.unwrap());
        assert!(store.acquire_lease("a", 30, 60).await.unwrap(), "renewal");
        assert!(store.acquire_lease("b", 91, 60).await.unwrap(), "expired lease taken over");
        store.release_lease("b").await.unwrap();
        assert!(store.acquire_lease("a", 92, 60).await.unwrap());
    }
}

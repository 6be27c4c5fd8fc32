//! Exactly-once effect on redelivery: one marker object per object version under
//! `STATE_URI`, claimed with a conditional create before anything is published and
//! completed after. The marker also records how many PutMetricData batches went out, so
//! an invocation that takes over from a failed or dead one publishes only the rest (the
//! batches of an object are deterministic: same object, same datums, same batches).
//!
//! Each batch is recorded as in flight before it is sent. CloudWatch does not deduplicate,
//! so a batch left in flight (its sender died, or lost the reply) cannot be settled: the
//! next invocation sends it again and reports it. That one batch is the only one that
//! can be counted twice.

use std::future::Future;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::store::{JsonStore, StoreError, Version};

use crate::ObjectRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerStatus {
    InProgress,
    Done,
    /// Given up cleanly (an error, or the deadline): the next delivery takes over at once.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub status: MarkerStatus,
    /// `s3://bucket/key` and the version or ETag, for people reading the marker.
    pub object: String,
    /// The invocation (request id) that holds or held it.
    pub owner: String,
    /// Unix seconds of the last claim or progress.
    pub updated_at: i64,
    /// PutMetricData batches already published.
    pub published_batches: usize,
    /// The batch after those, recorded before it is sent and cleared once it is
    /// confirmed or certainly refused: whether CloudWatch recorded it is unknown.
    /// (Absent from markers written before it existed: nothing was in flight.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Its index among the object's batches (always `published_batches`).
    pub batch: usize,
    /// The send failed in a way that may have reached CloudWatch (a lost reply, a 5xx);
    /// false while it is being sent, which a dead invocation leaves behind.
    pub ambiguous: bool,
}

/// What the marker says was published, as this invocation goes on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub published_batches: usize,
    pub in_flight: Option<InFlight>,
}

/// An object version's identity: the hex SHA-256 of its bucket, key and version (or ETag).
pub fn object_id(object: &ObjectRef, version: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{}\n{}", object.bucket, object.key, version));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What to do about an object, given its marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has started it: create the marker.
    Create,
    /// Published completely before: acknowledge, publish nothing.
    AlreadyDone,
    /// Another invocation is working on it now: retry later.
    Busy { owner: String, since: i64 },
    /// Left failed, or by an invocation that must be dead: continue after its batches
    /// (with the one it left in flight, if any).
    TakeOver(Progress),
}

/// Decides from the existing marker (pure; `takeover_after` is the age at which an
/// in-progress marker's owner must have died, i.e. at least the function timeout).
pub fn decide(existing: Option<&Marker>, now: i64, takeover_after: i64) -> Claim {
    match existing {
        None => Claim::Create,
        Some(m) if m.status == MarkerStatus::Done => Claim::AlreadyDone,
        Some(m) if m.status == MarkerStatus::InProgress && now - m.updated_at < takeover_after => {
            Claim::Busy { owner: m.owner.clone(), since: m.updated_at }
        }
        Some(m) => {
            Claim::TakeOver(Progress { published_batches: m.published_batches, in_flight: m.in_flight })
        }
    }
}

/// A claimed marker: this invocation may publish.
#[derive(Debug)]
pub struct Held {
    name: String,
    version: Version,
    pub marker: Marker,
    /// Whose marker this one took over, if any.
    pub previous_owner: Option<String>,
}

impl Held {
    /// How far the marker says publishing got.
    pub fn progress(&self) -> Progress {
        Progress { published_batches: self.marker.published_batches, in_flight: self.marker.in_flight }
    }
}

#[derive(Debug)]
pub enum Claimed {
    Held(Held),
    AlreadyDone,
    Busy { owner: String, since: i64 },
}

/// Where markers are kept: one JSON document per name, read with its version and
/// replaced only at the version read (optimistic concurrency).
pub trait MarkerStore {
    /// The marker and its version; `(None, Version(None))` when there is none. An
    /// unreadable marker comes back as `None` at its version, to be replaced as failed.
    fn load(&self, name: &str) -> impl Future<Output = Result<(Option<Marker>, Version), StoreError>> + Send;

    /// Writes the marker if it is still at `expected` ([`StoreError::Conflict`] if not);
    /// returns the new version.
    fn save(
        &self,
        name: &str,
        marker: &Marker,
        expected: &Version,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send;
}

impl MarkerStore for JsonStore {
    async fn load(&self, name: &str) -> Result<(Option<Marker>, Version), StoreError> {
        match self.read::<Marker>(name).await {
            Err(StoreError::Corrupt { .. }) => Ok((None, self.version_of_corrupt(name).await?)),
            other => other,
        }
    }

    async fn save(&self, name: &str, marker: &Marker, expected: &Version) -> Result<Version, StoreError> {
        self.write(name, marker, expected).await
    }
}

#[derive(Clone, Debug)]
pub struct Markers<M = JsonStore> {
    store: M,
}

impl<M: MarkerStore> Markers<M> {
    pub fn new(store: M) -> Self {
        Self { store }
    }

    /// The marker's name: a hash, since bucket + key + version can exceed S3's key length.
    fn name(object: &ObjectRef, version: &str) -> String {
        format!("markers/{}.json", object_id(object, version))
    }

    /// Claims the object version for `owner` (conditional create or conditional takeover).
    pub async fn claim(
        &self,
        object: &ObjectRef,
        version: &str,
        owner: &str,
        now: i64,
        takeover_after: i64,
    ) -> Result<Claimed, StoreError> {
        let name = Self::name(object, version);
        let (existing, found) = self.store.load(&name).await?;
        let progress = match decide(existing.as_ref(), now, takeover_after) {
            Claim::AlreadyDone => return Ok(Claimed::AlreadyDone),
            Claim::Busy { owner, since } => return Ok(Claimed::Busy { owner, since }),
            Claim::Create => Progress::default(),
            Claim::TakeOver(progress) => progress,
        };
        let marker = Marker {
            status: MarkerStatus::InProgress,
            object: format!("s3://{}/{} {version}", object.bucket, object.key),
            owner: owner.to_owned(),
            updated_at: now,
            published_batches: progress.published_batches,
            in_flight: progress.in_flight,
        };
        match self.store.save(&name, &marker, &found).await {
            Ok(version) => {
                Ok(Claimed::Held(Held { name, version, marker, previous_owner: existing.map(|m| m.owner) }))
            }
            // Someone claimed it between our read and write.
            Err(StoreError::Conflict { .. }) => {
                Ok(Claimed::Busy { owner: "another invocation".into(), since: now })
            }
            Err(error) => Err(error),
        }
    }

    /// Records progress or the end (`Done`, `Failed`) under the claim's version.
    pub async fn update(
        &self,
        held: &mut Held,
        status: MarkerStatus,
        progress: Progress,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut marker = held.marker.clone();
        marker.status = status;
        marker.published_batches = progress.published_batches;
        marker.in_flight = progress.in_flight;
        marker.updated_at = now;
        held.version = self.store.save(&held.name, &marker, &held.version).await?;
        held.marker = marker;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(status: MarkerStatus, updated_at: i64, published_batches: usize) -> Marker {
        Marker {
            status,
            object: "s3://b/k v".into(),
            owner: "r1".into(),
            updated_at,
            published_batches,
            in_flight: None,
        }
    }

    #[test]
    fn claims_follow_the_marker() {
        assert_eq!(decide(None, 1000, 900), Claim::Create);
        assert_eq!(decide(Some(&marker(MarkerStatus::Done, 0, 3)), 1000, 900), Claim::AlreadyDone);
        assert_eq!(
            decide(Some(&marker(MarkerStatus::InProgress, 500, 1)), 1000, 900),
            Claim::Busy { owner: "r1".into(), since: 500 }
        );
        assert_eq!(
            decide(Some(&marker(MarkerStatus::InProgress, 100, 1)), 1000, 900),
            Claim::TakeOver(Progress { published_batches: 1, in_flight: None }),
            "its owner must be dead"
        );
        assert_eq!(
            decide(Some(&marker(MarkerStatus::Failed, 999, 2)), 1000, 900),
            Claim::TakeOver(Progress { published_batches: 2, in_flight: None })
        );
        let in_flight = Some(InFlight { batch: 2, ambiguous: true });
        let left = Marker { in_flight, ..marker(MarkerStatus::Failed, 999, 2) };
        assert_eq!(
            decide(Some(&left), 1000, 900),
            Claim::TakeOver(Progress { published_batches: 2, in_flight }),
            "the batch left in flight is handed on"
        );
    }

    #[test]
    fn markers_without_in_flight_still_read_and_new_ones_round_trip() {
        let old =
            r#"{"status":"failed","object":"s3://b/k v","owner":"r1","updated_at":5,"published_batches":1}"#;
        let read: Marker = serde_json::from_str(old).unwrap();
        assert_eq!(read, marker(MarkerStatus::Failed, 5, 1));
        assert_eq!(serde_json::to_string(&read).unwrap(), old, "nothing in flight, nothing written");
        let new = Marker { in_flight: Some(InFlight { batch: 1, ambiguous: false }), ..read };
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.ends_with(r#""in_flight":{"batch":1,"ambiguous":false}}"#), "{json}");
        assert_eq!(serde_json::from_str::<Marker>(&json).unwrap(), new);
    }

    #[test]
    fn marker_names_fit_any_key() {
        let object = ObjectRef::new("bucket", "k".repeat(1024));
        let name = Markers::<JsonStore>::name(&object, "v1");
        assert_eq!(name.len(), "markers/".len() + 64 + ".json".len());
        assert_ne!(name, Markers::<JsonStore>::name(&object, "v2"));
    }
}

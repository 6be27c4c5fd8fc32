//! Exactly-once effect on redelivery: one marker object per object version under
//! `STATE_URI`, claimed with a conditional create before anything is published and
//! completed after. The marker also records how many PutMetricData batches went out, so
//! an invocation that takes over from a failed or dead one publishes only the rest (the
//! batches of an object are deterministic: same object, same datums, same batches).

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
    /// Left failed, or by an invocation that must be dead: continue after its batches.
    TakeOver { published_batches: usize },
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
        Some(m) => Claim::TakeOver { published_batches: m.published_batches },
    }
}

/// A claimed marker: this invocation may publish.
#[derive(Debug)]
pub struct Held {
    name: String,
    version: Version,
    pub marker: Marker,
}

#[derive(Debug)]
pub enum Claimed {
    Held(Held),
    AlreadyDone,
    Busy { owner: String, since: i64 },
}

#[derive(Clone, Debug)]
pub struct Markers {
    store: JsonStore,
}

impl Markers {
    pub fn new(store: JsonStore) -> Self {
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
        let (existing, found) = match self.store.read::<Marker>(&name).await {
            Ok(read) => read,
            // Unreadable: as good as failed.
            Err(StoreError::Corrupt { .. }) => (None, self.store.version_of_corrupt(&name).await?),
            Err(error) => return Err(error),
        };
        let published_batches = match decide(existing.as_ref(), now, takeover_after) {
            Claim::AlreadyDone => return Ok(Claimed::AlreadyDone),
            Claim::Busy { owner, since } => return Ok(Claimed::Busy { owner, since }),
            Claim::Create => 0,
            Claim::TakeOver { published_batches } => published_batches,
        };
        let marker = Marker {
            status: MarkerStatus::InProgress,
            object: format!("s3://{}/{} {version}", object.bucket, object.key),
            owner: owner.to_owned(),
            updated_at: now,
            published_batches,
        };
        match self.store.write(&name, &marker, &found).await {
            Ok(version) => Ok(Claimed::Held(Held { name, version, marker })),
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
        published_batches: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut marker = held.marker.clone();
        marker.status = status;
        marker.published_batches = published_batches;
        marker.updated_at = now;
        held.version = self.store.write(&held.name, &marker, &held.version).await?;
        held.marker = marker;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(status: MarkerStatus, updated_at: i64, published_batches: usize) -> Marker {
        Marker { status, object: "s3://b/k v".into(), owner: "r1".into(), updated_at, published_batches }
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
            Claim::TakeOver { published_batches: 1 },
            "its owner must be dead"
        );
        assert_eq!(
            decide(Some(&marker(MarkerStatus::Failed, 999, 2)), 1000, 900),
            Claim::TakeOver { published_batches: 2 }
        );
    }

    #[test]
    fn marker_names_fit_any_key() {
        let object = ObjectRef::new("bucket", "k".repeat(1024));
        let name = Markers::name(&object, "v1");
        assert_eq!(name.len(), "markers/".len() + 64 + ".json".len());
        assert_ne!(name, Markers::name(&object, "v2"));
    }
}

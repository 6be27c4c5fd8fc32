//! JSON objects in S3 under optimistic concurrency: read with the ETag, create with
//! `If-None-Match: *`, replace with `If-Match: <etag>`. A lost race comes back as
//! [`StoreError::Conflict`], never as a silent overwrite.

use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AwsError;
use crate::s3uri::S3Uri;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the object since it was read (or created it first).
    #[error("s3://{bucket}/{key} was changed by another writer")]
    Conflict { bucket: String, key: String },
    /// The object exists but is not the JSON expected; the caller decides how to rebuild.
    #[error("s3://{bucket}/{key} is not valid: {source}")]
    Corrupt {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where an object was when it was read: `None` if it did not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub Option<String>);

#[derive(Clone, Debug)]
pub struct JsonStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl JsonStore {
    /// Objects live under `uri`'s key, taken as a prefix.
    pub fn new(client: aws_sdk_s3::Client, uri: &S3Uri) -> Self {
        let prefix = uri.key.trim_end_matches('/').to_owned();
        Self { client, bucket: uri.bucket.clone(), prefix }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_owned() } else { format!("{}/{name}", self.prefix) }
    }

    /// The object and its version; `(None, Version(None))` when it does not exist.
    /// A body that does not parse is [`StoreError::Corrupt`], with the version still known
    /// through [`JsonStore::version_of_corrupt`] for a conditional rebuild.
    pub async fn read<T: DeserializeOwned>(&self, name: &str) -> Result<(Option<T>, Version), StoreError> {
        let key = self.key(name);
        let Some((bytes, version)) = self.read_bytes(&key).await? else { return Ok((None, Version(None))) };
        let value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            bucket: self.bucket.clone(),
            key: key.clone(),
            source,
        })?;
        Ok((Some(value), version))
    }

    async fn read_bytes(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        let output = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => output,
            Err(err) => {
                let err = AwsError::from_sdk("GetObject", err);
                if err.is_code("NoSuchKey") {
                    return Ok(None);
                }
                return Err(err.into());
            }
        };
        let etag = output.e_tag().map(str::to_owned);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| AwsError::other("GetObject", format!("reading s3://{}/{key}: {e}", self.bucket)))?
            .into_bytes();
        Ok(Some((bytes.to_vec(), Version(etag))))
    }

    /// The version of an object, whatever its content (to replace a corrupt one).
    pub async fn version_of_corrupt(&self, name: &str) -> Result<Version, StoreError> {
        let key = self.key(name);
        match self.client.head_object().bucket(&self.bucket).key(&key).send().await {
            Ok(output) => Ok(Version(output.e_tag().map(str::to_owned))),
            Err(err) => {
                let err = AwsError::from_sdk("HeadObject", err);
                if err.status == Some(404) { Ok(Version(None)) } else { Err(err.into()) }
            }
        }
    }

    /// Writes the object if it is still at `expected`; returns the new version.
    pub async fn write<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        let key = self.key(name);
        let body = serde_json::to_vec(value).expect("state serializes");
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body.clone()));
        let request = match &expected.0 {
            None => request.if_none_match("*"),
            Some(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(output) => Ok(Version(output.e_tag().map(str::to_owned))),
            Err(err) => {
                let err = AwsError::from_sdk("PutObject", err);
                // 412 PreconditionFailed; 409 ConditionalRequestConflict when two
                // conditional writes race inside S3.
                if !(err.is_code("PreconditionFailed") || err.status == Some(412) || err.status == Some(409))
                {
                    return Err(err.into());
                }
                // The SDK retries a write whose reply was lost with the same condition,
                // which the first attempt, if S3 applied it, now fails: the object then
                // holds exactly what this write sent, and the write succeeded.
                match self.read_bytes(&key).await? {
                    Some((stored, version)) if stored == body => Ok(version),
                    _ => Err(StoreError::Conflict { bucket: self.bucket.clone(), key }),
                }
            }
        }
    }
}

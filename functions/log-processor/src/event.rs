//! The objects an S3 notification names.

use aws_lambda_events::s3::S3Event;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key, URL-decoded.
    pub key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("record {index}: no bucket name")]
    MissingBucket { index: usize },
    #[error("record {index}: no object key")]
    MissingKey { index: usize },
    #[error("record {index}: key {key:?} is not valid URL-encoded UTF-8")]
    BadKey { index: usize, key: String },
}

/// S3 event keys are URL-encoded as in an HTML form: `+` is a space, `%XX` a byte.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// The created objects in an S3 event; other event kinds (removals, ...) are skipped.
pub fn created_objects(event: &S3Event) -> Result<Vec<ObjectRef>, EventError> {
    let mut objects = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        let name = record.event_name.as_deref().unwrap_or_default();
        if !name.starts_with("ObjectCreated:") {
            tracing::info!(index, event_name = name, "not an ObjectCreated record; skipped");
            continue;
        }
        let bucket = record.s3.bucket.name.clone().ok_or(EventError::MissingBucket { index })?;
        let raw = record.s3.object.key.as_deref().ok_or(EventError::MissingKey { index })?;
        let key = decode_key(raw).ok_or_else(|| EventError::BadKey { index, key: raw.to_owned() })?;
        objects.push(ObjectRef { bucket, key });
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(decode_key("a+b%2Bc%20d").as_deref(), Some("a b+c d"));
        assert_eq!(decode_key("caf%C3%A9/%E6%97%A5.log").as_deref(), Some("café/日.log"));
        assert_eq!(decode_key("plain/key.gz").as_deref(), Some("plain/key.gz"));
        assert_eq!(decode_key("bad%FF"), None);
    }
}

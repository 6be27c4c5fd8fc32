//! Where the policy document comes from (`POLICY_URI`: `s3://bucket/key` or a local
//! path), re-read when it changes so that an edit takes effect within a tick, without a
//! deploy. An invalid edit is reported with its field paths and the last valid document
//! stays in force.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use shared::AwsError;
use shared::s3uri::S3Uri;

use crate::policy::{PolicyDocument, PolicyErrors, PolicyFormat, parse_policy_text};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyLocation {
    S3(S3Uri),
    Local(PathBuf),
}

impl PolicyLocation {
    pub fn parse(uri: &str) -> Result<Self, shared::s3uri::S3UriError> {
        if uri.starts_with("s3://") { uri.parse().map(Self::S3) } else { Ok(Self::Local(PathBuf::from(uri))) }
    }

    fn format(&self) -> PolicyFormat {
        let name = match self {
            Self::S3(uri) => uri.key.as_str(),
            Self::Local(path) => path.to_str().unwrap_or_default(),
        };
        if name.to_ascii_lowercase().ends_with(".toml") { PolicyFormat::Toml } else { PolicyFormat::Json }
    }
}

impl std::fmt::Display for PolicyLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::S3(uri) => write!(f, "{uri}"),
            Self::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("policy {location}: {source}")]
    Read {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("policy {location} is invalid: {errors}")]
    Invalid { location: String, errors: PolicyErrors },
}

/// Where a tick gets the policy document in force.
pub trait PolicySource {
    /// The document in force: an error only when no valid document was ever loaded.
    fn document(
        &self,
    ) -> impl std::future::Future<Output = Result<Arc<PolicyDocument>, PolicyLoadError>> + Send;
}

/// A document held in memory: for tests and embedders that have the document already.
#[derive(Clone, Debug)]
pub struct StaticPolicy(pub Arc<PolicyDocument>);

impl PolicySource for StaticPolicy {
    async fn document(&self) -> Result<Arc<PolicyDocument>, PolicyLoadError> {
        Ok(self.0.clone())
    }
}

struct Loaded {
    document: Arc<PolicyDocument>,
    /// S3 ETag, or a hash of a local file's content.
    tag: String,
}

/// `POLICY_URI`'s document, re-read when its ETag (S3) or content (file) changes.
pub struct PolicyStore {
    location: PolicyLocation,
    s3: Option<aws_sdk_s3::Client>,
    loaded: Mutex<Option<Loaded>>,
}

impl PolicySource for PolicyStore {
    async fn document(&self) -> Result<Arc<PolicyDocument>, PolicyLoadError> {
        PolicyStore::document(self).await
    }
}

impl PolicyStore {
    /// `s3` is needed for an S3 location.
    pub fn new(location: PolicyLocation, s3: Option<aws_sdk_s3::Client>) -> Self {
        Self { location, s3, loaded: Mutex::new(None) }
    }

    /// Where the document comes from.
    pub fn location(&self) -> &PolicyLocation {
        &self.location
    }

    /// The version of the document in force: its S3 ETag, or a hash of a local file's
    /// content; `None` before one was loaded.
    pub fn version(&self) -> Option<String> {
        self.current().map(|(_, tag)| tag)
    }

    fn current(&self) -> Option<(Arc<PolicyDocument>, String)> {
        self.loaded.lock().expect("policy lock").as_ref().map(|l| (l.document.clone(), l.tag.clone()))
    }

    /// The document in force: re-read if it changed; the last valid one if the new one is
    /// invalid or cannot be read; an error only when no valid document was ever loaded.
    pub async fn document(&self) -> Result<Arc<PolicyDocument>, PolicyLoadError> {
        let current = self.current();
        let fetched = self.fetch(current.as_ref().map(|(_, tag)| tag.as_str())).await;
        let location = self.location.to_string();
        let outcome = match fetched {
            Ok(None) => return Ok(current.expect("not modified implies loaded").0),
            Ok(Some((text, tag))) => match parse_policy_text(&text, self.location.format()) {
                Ok(document) => {
                    let document = Arc::new(document);
                    if current.is_some() {
                        tracing::info!(policy = %location, "policy changed; new document in force");
                    }
                    *self.loaded.lock().expect("policy lock") =
                        Some(Loaded { document: document.clone(), tag });
                    return Ok(document);
                }
                Err(errors) => PolicyLoadError::Invalid { location, errors },
            },
            Err(err) => err,
        };
        match current {
            Some((document, _)) => {
                tracing::error!(error = %outcome, "keeping the last valid policy");
                Ok(document)
            }
            None => Err(outcome),
        }
    }

    /// The text and its tag, or `None` when unchanged since `known_tag`.
    async fn fetch(&self, known_tag: Option<&str>) -> Result<Option<(String, String)>, PolicyLoadError> {
        let location = self.location.to_string();
        let read_error = |source: Box<dyn std::error::Error + Send + Sync>| PolicyLoadError::Read {
            location: location.clone(),
            source,
        };
        match &self.location {
            PolicyLocation::Local(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| read_error(Box::new(e)))?;
                let mut hasher = DefaultHasher::new();
                text.hash(&mut hasher);
                let tag = format!("{:016x}", hasher.finish());
                Ok((known_tag != Some(tag.as_str())).then_some((text, tag)))
            }
            PolicyLocation::S3(uri) => {
                let client = self.s3.as_ref().expect("an S3 client for an S3 policy");
                let mut request = client.get_object().bucket(&uri.bucket).key(&uri.key);
                if let Some(tag) = known_tag {
                    request = request.if_none_match(tag);
                }
                let output = match request.send().await {
                    Ok(output) => output,
                    Err(err) => {
                        let err = AwsError::from_sdk("GetObject", err);
                        if err.status == Some(304) {
                            return Ok(None);
                        }
                        return Err(read_error(Box::new(err)));
                    }
                };
                let tag = output.e_tag().unwrap_or_default().to_owned();
                let bytes = output.body.collect().await.map_err(|e| read_error(Box::new(e)))?.into_bytes();
                let text = String::from_utf8(bytes.to_vec()).map_err(|e| read_error(Box::new(e)))?;
                Ok(Some((text, tag)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(target: &str) -> String {
        format!(
            r#"{{"groups": [{{"name": "svc", "metrics": [{{"id": "m", "query": {{"namespace": "N",
            "metric_name": "M"}}, "target": {{"average": {target}}}}}]}}]}}"#
        )
    }

    /// Every event logged while it is the thread's subscriber, as `field=value` text.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Logged {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Text<'a>(&'a mut String);
            impl tracing::field::Visit for Text<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={value:?} ", field.name()));
                }
            }
            let mut text = String::new();
            event.record(&mut Text(&mut text));
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn target(document: &PolicyDocument) -> String {
        format!("{:?}", document.groups[0].metrics[0].rule)
    }

    #[tokio::test]
    async fn a_local_policy_is_parsed_again_only_when_its_content_changes() {
        let dir = std::env::temp_dir().join(format!("policy-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.json");
        std::fs::write(&path, policy("50")).unwrap();
        let store = PolicyStore::new(PolicyLocation::Local(path.clone()), None);
        let first = store.document().await.unwrap();
        // Unchanged: the same parsed document (a re-parse would be a new allocation).
        assert!(Arc::ptr_eq(&first, &store.document().await.unwrap()), "an unchanged policy was re-parsed");
        std::fs::write(&path, policy("25")).unwrap();
        let edited = store.document().await.unwrap();
        assert!(target(&edited).contains("25"), "{}", target(&edited));
        // An invalid edit: reported with its field path, and the last valid document stays
        // in force. (The test runs on one thread: the subscriber sees this task's events.)
        std::fs::write(&path, r#"{"groups": [{"name": "svc"}]}"#).unwrap();
        let logged = Logged::default();
        let guard = tracing::subscriber::set_default(logged.clone());
        assert!(Arc::ptr_eq(&edited, &store.document().await.unwrap()));
        drop(guard);
        let logged = logged.0.lock().unwrap().join("\n");
        assert!(logged.contains("groups[0].metrics: required field is missing"), "{logged}");
        // Without a valid document to fall back on, the error names the field.
        let fresh = PolicyStore::new(PolicyLocation::Local(path.clone()), None);
        let error = fresh.document().await.unwrap_err().to_string();
        assert!(error.contains("groups[0].metrics: required field is missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! `s3://bucket/key` URIs as used in configuration (`POLICY_URI`, `STATE_URI`, ...).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    /// The key or prefix; may be empty (`s3://bucket`).
    pub key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an S3 URI of the form s3://bucket/key")]
pub struct S3UriError(String);

impl FromStr for S3Uri {
    type Err = S3UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| S3UriError(s.to_owned()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3UriError(s.to_owned()));
        }
        Ok(Self { bucket: bucket.to_owned(), key: key.to_owned() })
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_key() {
        let uri: S3Uri = "s3://logs/AWSLogs/1/x.gz".parse().unwrap();
        assert_eq!(uri.bucket, "logs");
        assert_eq!(uri.key, "AWSLogs/1/x.gz");
        assert_eq!("s3://b".parse::<S3Uri>().unwrap().key, "");
        assert!("https://b/k".parse::<S3Uri>().is_err());
        assert!("s3:///k".parse::<S3Uri>().is_err());
    }
}

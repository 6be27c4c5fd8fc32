//! The SDK adapters of the pipeline's I/O traits: [`S3Objects`] (GetObject) and
//! [`CloudWatchMetrics`] (PutMetricData).

use shared::AwsError;
use shared::metrics::{Datum, PublishError};

use crate::ObjectRef;
use crate::pipeline::{MetricsSink, ObjectSource, OpenedObject};

#[derive(Clone, Debug)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

impl ObjectSource for S3Objects {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, AwsError> {
        let request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone());
        match request.send().await {
            Ok(output) => Ok(Some(OpenedObject {
                etag: output.e_tag().map(str::to_owned),
                version_id: output.version_id().map(str::to_owned),
                last_modified: output.last_modified().map(|t| t.secs()),
                body: Box::new(output.body.into_async_read()),
            })),
            Err(err) => {
                let err = AwsError::from_sdk("GetObject", err);
                if err.is_code("NoSuchKey") || err.is_code("NoSuchVersion") { Ok(None) } else { Err(err) }
            }
        }
    }
}
/// PutMetricData, without SDK retries once a request may have reached CloudWatch.
#[derive(Clone, Debug)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchMetrics {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

impl MetricsSink for CloudWatchMetrics {
    async fn put(&self, namespace: &str, batch: &[Datum]) -> Result<(), PublishError> {
        shared::metrics::put_batch(&self.client, namespace, batch).await
    }
}

//! [`GroupController`] and [`MetricsSource`] over the AWS SDK.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use aws_sdk_autoscaling::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_autoscaling::config::{ConfigBag, Intercept, RuntimeComponents};

use aws_sdk_autoscaling::types::Filter;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode};
use shared::AwsError;

use crate::policy::Query;
use crate::reading::Datapoint;
use crate::tags::ENABLED_TAG;
use crate::{GroupController, GroupInfo, MetricQuery, MetricsSource};

fn group_info(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> GroupInfo {
    GroupInfo {
        name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
        min_size: g.min_size().unwrap_or(0),
        max_size: g.max_size().unwrap_or(0),
        desired_capacity: g.desired_capacity().unwrap_or(0),
        pending_instances: g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().is_some_and(|s| s.as_str().starts_with("Pending")))
            .count() as i32,
        in_service_instances: g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().is_some_and(|s| s.as_str() == "InService"))
            .count() as i32,
        tags: g
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
            .collect(),
    }
}

/// GetMetricData takes at most this many queries per request.
const MAX_QUERIES_PER_REQUEST: usize = 500;

#[derive(Clone, Debug)]
pub struct AutoScalingGroups {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScalingGroups {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }
}

impl GroupController for AutoScalingGroups {
    async fn list_enabled_groups(&self) -> Result<Vec<GroupInfo>, AwsError> {
        let groups = self
            .client
            .describe_auto_scaling_groups()
            .filters(Filter::builder().name(format!("tag:{ENABLED_TAG}")).values("true").build())
            // The largest page the API allows (the default is 50): calls grow with groups / 100.
            .max_records(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", e))?;
        Ok(groups.iter().map(group_info).collect())
    }

    async fn describe_group(&self, group: &str) -> Result<Option<GroupInfo>, AwsError> {
        let output = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", e))?;
        Ok(output.auto_scaling_groups().first().map(group_info))
    }

    async fn instance_refresh_running(&self, group: &str) -> Result<bool, AwsError> {
        use aws_sdk_autoscaling::types::InstanceRefreshStatus as Status;
        let output = self
            .client
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .max_records(5)
            // Advisory: one attempt, so that a failing check never delays a scale-out by
            // the seconds a full retry budget takes (the caller logs it and goes on).
            .customize()
            .config_override(aws_sdk_autoscaling::config::Config::builder().retry_config(
                aws_sdk_autoscaling::config::retry::RetryConfig::standard().with_max_attempts(1),
            ))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeInstanceRefreshes", e))?;
        Ok(output.instance_refreshes().iter().any(|r| {
            matches!(
                r.status(),
                Some(
                    Status::Pending
                        | Status::InProgress
                        | Status::Cancelling
                        | Status::RollbackInProgress
                        | Status::Baking
                )
            )
        }))
    }

    async fn set_desired_capacity(&self, group: &str, desired: i32) -> Result<(), AwsError> {
        let attempts = UnansweredAttempts::default();
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(desired)
            // The poller's own logic decides when to act; ASG cooldowns would only delay it.
            .honor_cooldown(false)
            .customize()
            .config_override(aws_sdk_autoscaling::config::Config::builder().interceptor(attempts.clone()))
            .send()
            .await
            .map_err(|e| {
                let error = AwsError::from_sdk("SetDesiredCapacity", e);
                // The SDK retried an attempt that may have been applied: a final rejection
                // (e.g. a throttle) does not say the change was not made.
                if attempts.seen() { error.with_outcome_unknown() } else { error }
            })?;
        Ok(())
    }
}

/// Notes whether any attempt of one call may have been applied though it failed
/// (`shared::aws::attempt_may_have_taken_effect`: no answer after sending, a 5xx, or a
/// success it could not read).
#[derive(Clone, Debug, Default)]
struct UnansweredAttempts {
    sent: Arc<AtomicBool>,
    unanswered: Arc<AtomicBool>,
}

impl UnansweredAttempts {
    fn seen(&self) -> bool {
        self.unanswered.load(Ordering::SeqCst)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Intercept for UnansweredAttempts {
    fn name(&self) -> &'static str {
        "UnansweredAttempts"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.sent.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.sent.swap(false, Ordering::SeqCst)
            && let Some(Err(error)) = context.output_or_error()
            && shared::aws::attempt_may_have_taken_effect(context.response(), error)
        {
            self.unanswered.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchMetrics {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

fn to_sdk_query(id: &str, query: &Query) -> MetricDataQuery {
    match query {
        Query::Metric(metric) => metric_stat_query(id, metric),
        Query::Expression { expression, period_seconds } => MetricDataQuery::builder()
            .id(id)
            .expression(expression)
            .period(*period_seconds)
            .return_data(true)
            .build(),
    }
}

fn metric_stat_query(id: &str, query: &MetricQuery) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(&query.namespace)
        .metric_name(&query.metric_name)
        .set_dimensions(Some(
            query
                .dimensions
                .iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect(),
        ))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder().metric(metric).period(query.period_seconds).stat(&query.stat).build(),
        )
        .return_data(true)
        .build()
}

impl MetricsSource for CloudWatchMetrics {
    async fn datapoints(
        &self,
        queries: &[(String, Query)],
        start: SystemTime,
        end: SystemTime,
    ) -> Result<BTreeMap<String, Vec<Datapoint>>, AwsError> {
        let mut series: BTreeMap<String, Vec<Datapoint>> = BTreeMap::new();
        for chunk in queries.chunks(MAX_QUERIES_PER_REQUEST) {
            let pages = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(chunk.iter().map(|(id, q)| to_sdk_query(id, q)).collect()))
                .start_time(DateTime::from(start))
                .end_time(DateTime::from(end))
                .scan_by(ScanBy::TimestampDescending)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| AwsError::from_sdk("GetMetricData", e))?;
            for result in pages.iter().flat_map(|page| page.metric_data_results()) {
                let Some(id) = result.id() else { continue };
                // Complete and PartialData (the rest on a later page) are usable;
                // InternalError and Forbidden leave this query out of the answer: the tick
                // counts it as failed and reads it again.
                if let Some(status @ (StatusCode::InternalError | StatusCode::Forbidden)) =
                    result.status_code()
                {
                    let messages: Vec<&str> = result.messages().iter().filter_map(|m| m.value()).collect();
                    tracing::warn!(query = id, status = status.as_str(), ?messages, "metric query failed");
                    continue;
                }
                let points = result
                    .timestamps()
                    .iter()
                    .zip(result.values())
                    .map(|(time, value)| Datapoint { time: time.secs(), value: *value });
                series.entry(id.to_owned()).or_default().extend(points);
            }
        }
        Ok(series)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, UNIX_EPOCH};

    use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// GetMetricData answered in two pages, as CloudWatch answers past 100,800 datapoints
    /// (moto never pages): the SDK's HTTP layer replays them in process, as the SDK's
    /// `StaticReplayClient` does, and records each request's body.
    #[derive(Clone, Debug, Default)]
    struct TwoPages {
        bodies: Arc<Mutex<Vec<String>>>,
    }

    fn result(id: &str, points: &[(&str, f64)]) -> String {
        let times: String = points.iter().map(|(t, _)| format!("<member>{t}</member>")).collect();
        let values: String = points.iter().map(|(_, v)| format!("<member>{v}</member>")).collect();
        format!(
            "<member><Id>{id}</Id><Label>{id}</Label><Timestamps>{times}</Timestamps><Values>{values}</Values><StatusCode>PartialData</StatusCode></member>"
        )
    }

    impl HttpConnector for TwoPages {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            let page = if body.contains("NextToken=page-2") {
                format!(
                    "<MetricDataResults>{}{}</MetricDataResults>",
                    result("a", &[("2026-11-30T12:00:00Z", 1.0)]),
                    result("b", &[("2026-11-30T12:00:00Z", 9.0)])
                )
            } else {
                format!(
                    "<MetricDataResults>{}</MetricDataResults><NextToken>page-2</NextToken>",
                    result("a", &[("2026-11-30T12:02:00Z", 3.0), ("2026-11-30T12:01:00Z", 2.0)])
                )
            };
            self.bodies.lock().unwrap().push(body);
            let xml = format!(
                r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult>{page}</GetMetricDataResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetMetricDataResponse>"#
            );
            let mut response = HttpResponse::new(200u16.try_into().unwrap(), SdkBody::from(xml));
            response.headers_mut().insert("Content-Type", "text/xml");
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for TwoPages {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    #[tokio::test]
    async fn get_metric_data_follows_next_token_and_joins_each_querys_pages() {
        let pages = TwoPages::default();
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(pages.clone())
            .build();
        let reader = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::from_conf(config));
        let query = |name: &str| {
            Query::Metric(MetricQuery {
                namespace: "Test/App".into(),
                metric_name: name.into(),
                dimensions: Default::default(),
                stat: "Average".into(),
                period_seconds: 60,
            })
        };
        let start = UNIX_EPOCH + Duration::from_secs(1_796_040_000);
        let series = reader
            .datapoints(
                &[("a".into(), query("A")), ("b".into(), query("B"))],
                start,
                start + Duration::from_secs(3600),
            )
            .await
            .unwrap();
        let values = |id: &str| -> Vec<f64> {
            let mut points = series[id].clone();
            points.sort_by_key(|p| p.time);
            points.iter().map(|p| p.value).collect()
        };
        assert_eq!(values("a"), [1.0, 2.0, 3.0], "both pages of a");
        assert_eq!(values("b"), [9.0]);
        let bodies = pages.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 2, "one request per page");
        assert!(!bodies[0].contains("NextToken") && bodies[1].contains("NextToken=page-2"), "{bodies:?}");
    }
}

//! Counts AWS API requests at the HTTP layer (every attempt, retries included), for the
//! poller's own metrics and the API-call benchmarks, and the metrics GetMetricData
//! requests ask for: what CloudWatch bills ($0.01 per 1,000 metrics requested).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<Counts>>);

#[derive(Debug, Default)]
struct Counts {
    by_operation: BTreeMap<String, u64>,
    metrics_requested: u64,
}

/// The metric queries of the GetMetricData request being sent (each attempt is billed).
#[derive(Clone, Copy, Debug)]
struct MetricsInRequest(u64);

impl Storable for MetricsInRequest {
    type Storer = StoreReplace<Self>;
}

impl CallCounter {
    pub fn total(&self) -> u64 {
        self.0.lock().expect("counter lock").by_operation.values().sum()
    }

    /// Requests so far by operation (`GetMetricData`, ...).
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("counter lock").by_operation.clone()
    }

    /// Metric queries sent in GetMetricData requests so far, each page and attempt
    /// counted. An expression counts once here though CloudWatch bills every metric it
    /// reads.
    pub fn metrics_requested(&self) -> u64 {
        self.0.lock().expect("counter lock").metrics_requested
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<GetMetricDataInput>() {
            let queries = input.metric_data_queries().len() as u64;
            cfg.interceptor_state().store_put(MetricsInRequest(queries));
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name).to_owned();
        let metrics = cfg.load::<MetricsInRequest>().map_or(0, |m| m.0);
        let mut counts = self.0.lock().expect("counter lock");
        *counts.by_operation.entry(operation).or_default() += 1;
        counts.metrics_requested += metrics;
        Ok(())
    }
}

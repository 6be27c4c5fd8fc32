//! CloudWatch metric datums as plain data, a histogram for distributions, and publishing
//! within PutMetricData's limits.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde::Serialize;

use crate::AwsError;
use crate::aws::{NoRetryOnceSent, may_have_reached_service};

/// PutMetricData accepts at most this many datums per request...
pub const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// ...and at most 1 MB of request body; we stay well under it by estimate.
pub const MAX_REQUEST_BYTES: usize = 900_000;
/// A datum carries at most this many distinct values.
pub const MAX_VALUES_PER_DATUM: usize = 150;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
    None,
}

impl From<Unit> for StandardUnit {
    fn from(unit: Unit) -> Self {
        match unit {
            Unit::Count => StandardUnit::Count,
            Unit::Seconds => StandardUnit::Seconds,
            Unit::Bytes => StandardUnit::Bytes,
            Unit::None => StandardUnit::None,
        }
    }
}

/// One datum, as published and as `autoscaler logs summarize --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Datum {
    pub name: String,
    pub unit: Unit,
    pub dimensions: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(flatten)]
    pub value: DatumValue,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DatumValue {
    Single {
        value: f64,
    },
    /// A distribution: CloudWatch computes percentiles from it.
    Distribution {
        values: Vec<f64>,
        counts: Vec<f64>,
    },
}

impl Datum {
    /// A rough upper bound of the datum's size in the query-encoded request body.
    fn encoded_size_estimate(&self) -> usize {
        let dims: usize = self.dimensions.iter().map(|(k, v)| 60 + k.len() + v.len()).sum();
        let values = match &self.value {
            DatumValue::Single { .. } => 40,
            DatumValue::Distribution { values, .. } => values.len() * 80,
        };
        120 + self.name.len() + dims + values
    }

    fn to_sdk(&self) -> MetricDatum {
        let mut builder = MetricDatum::builder()
            .metric_name(&self.name)
            .unit(self.unit.into())
            .timestamp(DateTime::from_secs(self.timestamp));
        for (name, value) in &self.dimensions {
            builder = builder.dimensions(Dimension::builder().name(name).value(value).build());
        }
        match &self.value {
            DatumValue::Single { value } => builder.value(*value).build(),
            DatumValue::Distribution { values, counts } => {
                builder.set_values(Some(values.clone())).set_counts(Some(counts.clone())).build()
            }
        }
    }

    fn is_finite(&self) -> bool {
        match &self.value {
            DatumValue::Single { value } => value.is_finite(),
            DatumValue::Distribution { values, counts } => values.iter().chain(counts).all(|v| v.is_finite()),
        }
    }
}

/// Splits datums into PutMetricData-sized requests (count and body-size limits).
pub fn request_batches(datums: &[Datum]) -> Vec<&[Datum]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, datum) in datums.iter().enumerate() {
        let size = datum.encoded_size_estimate();
        if i > start && (i - start == MAX_DATUMS_PER_REQUEST || bytes + size > MAX_REQUEST_BYTES) {
            batches.push(&datums[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < datums.len() {
        batches.push(&datums[start..]);
    }
    batches
}

/// Why a PutMetricData request failed, as far as what CloudWatch recorded goes.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Certainly not recorded (a 4xx answer, a connection never made): sending the batch
    /// again counts it once.
    #[error(transparent)]
    Rejected(AwsError),
    /// The request may have reached CloudWatch and been recorded (a 5xx, a lost reply, a
    /// timeout after sending): sending it again may count it twice.
    #[error("{0} (the batch may have been recorded)")]
    Ambiguous(#[source] AwsError),
}

impl PublishError {
    /// Whether sending the batch again later can succeed.
    pub fn retryable(&self) -> bool {
        match self {
            PublishError::Rejected(error) => error.retryable,
            PublishError::Ambiguous(_) => true,
        }
    }
}

/// One PutMetricData request (a batch from [`request_batches`]). Non-finite values (which
/// CloudWatch rejects) must not reach here: callers build datums from counters and
/// histograms, so this is checked, not filtered.
///
/// CloudWatch adds up whatever it receives, so the SDK retries only failures that
/// certainly did not reach it ([`crate::aws::NoRetryOnceSent`]); any other failure comes
/// back as [`PublishError::Ambiguous`] for the caller to record.
pub async fn put_batch(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    batch: &[Datum],
) -> Result<(), PublishError> {
    debug_assert!(batch.iter().all(Datum::is_finite), "non-finite datum");
    let no_retry_once_sent = aws_sdk_cloudwatch::config::Builder::default().retry_classifier(NoRetryOnceSent);
    let result = client
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(batch.iter().map(Datum::to_sdk).collect()))
        .customize()
        .config_override(no_retry_once_sent)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if may_have_reached_service(&error) => {
            Err(PublishError::Ambiguous(AwsError::from_sdk("PutMetricData", error)))
        }
        Err(error) => Err(PublishError::Rejected(AwsError::from_sdk("PutMetricData", error))),
    }
}

/// A log-bucketed histogram of non-negative values: each value is kept to within
/// `RELATIVE_ERROR` of itself (the DDSketch mapping), so CloudWatch percentiles over the
/// published Values/Counts are that accurate, whatever the spread of the data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    zeros: u64,
    buckets: BTreeMap<i32, u64>,
}

impl Histogram {
    pub const RELATIVE_ERROR: f64 = 0.01;

    fn gamma() -> f64 {
        (1.0 + Self::RELATIVE_ERROR) / (1.0 - Self::RELATIVE_ERROR)
    }

    /// Records a value; negative and non-finite values are ignored (callers exclude them).
    pub fn record(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        if value == 0.0 {
            self.zeros += 1;
        } else {
            let index = (value.ln() / Self::gamma().ln()).ceil() as i32;
            *self.buckets.entry(index).or_insert(0) += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.zeros + self.buckets.values().sum::<u64>()
    }

    /// (value, count) pairs in ascending value order; each value is its bucket's midpoint.
    pub fn values_and_counts(&self) -> Vec<(f64, f64)> {
        let gamma = Self::gamma();
        let zeros = (self.zeros > 0).then_some((0.0, self.zeros as f64));
        zeros
            .into_iter()
            .chain(
                self.buckets
                    .iter()
                    .map(|(&index, &count)| (2.0 * gamma.powi(index) / (gamma + 1.0), count as f64)),
            )
            .collect()
    }

    /// The histogram as datums of at most [`MAX_VALUES_PER_DATUM`] values each (CloudWatch
    /// merges several datums of one metric and timestamp into one distribution).
    pub fn to_datums(
        &self,
        name: &str,
        unit: Unit,
        dimensions: &BTreeMap<String, String>,
        timestamp: i64,
    ) -> Vec<Datum> {
        self.values_and_counts()
            .chunks(MAX_VALUES_PER_DATUM)
            .map(|chunk| Datum {
                name: name.to_owned(),
                unit,
                dimensions: dimensions.clone(),
                timestamp,
                value: DatumValue::Distribution {
                    values: chunk.iter().map(|(v, _)| *v).collect(),
                    counts: chunk.iter().map(|(_, c)| *c).collect(),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(name: &str, value: f64) -> Datum {
        Datum {
            name: name.to_owned(),
            unit: Unit::Count,
            dimensions: BTreeMap::from([("LoadBalancer".to_owned(), "app/x/1".to_owned())]),
            timestamp: 60,
            value: DatumValue::Single { value },
        }
    }

    #[test]
    fn batches_respect_the_count_limit() {
        let datums: Vec<Datum> = (0..2500).map(|i| single("RequestCount", i as f64)).collect();
        let sizes: Vec<usize> = request_batches(&datums).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        assert!(request_batches(&[]).is_empty());
    }

    #[test]
    fn batches_respect_the_size_limit() {
        let mut histogram = Histogram::default();
        for i in 1..=150 {
            histogram.record(i as f64);
        }
        let one = histogram.to_datums("Latency", Unit::Seconds, &BTreeMap::new(), 0).remove(0);
        let datums = vec![one; 200];
        let batches = request_batches(&datums);
        assert!(batches.len() > 1);
        for batch in batches {
            let bytes: usize = batch.iter().map(Datum::encoded_size_estimate).sum();
            assert!(bytes <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn histogram_values_stay_within_the_relative_error() {
        let mut histogram = Histogram::default();
        let inputs = [0.0, 0.0005, 0.001, 0.0123, 0.5, 1.0, 7.3, 250.0];
        for v in inputs {
            histogram.record(v);
        }
        histogram.record(-1.0);
        histogram.record(f64::NAN);
        assert_eq!(histogram.count(), inputs.len() as u64);
        let values: Vec<f64> = histogram.values_and_counts().iter().map(|(v, _)| *v).collect();
        for (input, output) in inputs.iter().zip(&values) {
            let error = if *input == 0.0 { *output } else { (output - input).abs() / input };
            assert!(error <= Histogram::RELATIVE_ERROR + 1e-12, "{input} -> {output}");
        }
    }

    #[test]
    fn wide_histograms_split_into_datums_of_at_most_150_values() {
        let mut histogram = Histogram::default();
        for i in 0..400 {
            histogram.record(1.05f64.powi(i));
        }
        let datums = histogram.to_datums("Latency", Unit::Seconds, &BTreeMap::new(), 0);
        assert!(datums.len() >= 3);
        let mut total = 0.0;
        for datum in &datums {
            let DatumValue::Distribution { values, counts } = &datum.value else { panic!() };
            assert!(values.len() <= MAX_VALUES_PER_DATUM);
            total += counts.iter().sum::<f64>();
        }
        assert_eq!(total, 400.0);
    }

    #[test]
    fn datums_serialize_as_the_cli_prints_them() {
        let json = serde_json::to_value(single("RequestCount", 3.0)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "RequestCount", "unit": "Count",
                "dimensions": {"LoadBalancer": "app/x/1"}, "timestamp": 60, "value": 3.0})
        );
    }
}

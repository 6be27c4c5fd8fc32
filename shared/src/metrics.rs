//! CloudWatch metric datums as plain data, a histogram for distributions, what CloudWatch
//! accepts ([`screen`]), and publishing within PutMetricData's limits, measured on the
//! request body as the SDK encodes it.
//!
//! The rule for callers: datums go through [`screen`] before [`request_batches`] and
//! [`put_batch`]. CloudWatch answers a request holding one datum it refuses with a 400
//! that is not retryable, which would lose the whole batch; screening skips that datum
//! alone and counts it with its reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::Format as DateFormat;
use aws_smithy_types::primitive::Encoder;
use serde::Serialize;

use crate::AwsError;
use crate::aws::NoRetryOnceSent;

/// PutMetricData accepts at most this many datums per request...
pub const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// ...and at most 1 MB of request body: the form-encoded body as the SDK serializes it
/// (before the SDK's gzip request compression), measured exactly by [`request_body_len`].
pub const MAX_REQUEST_BYTES: usize = 1_000_000;
/// A datum carries at most this many distinct values.
pub const MAX_VALUES_PER_DATUM: usize = 150;
/// CloudWatch refuses values of a smaller magnitude than this (other than 0)...
pub const MIN_VALUE_MAGNITUDE: f64 = 8.515920e-109;
/// ...or of a larger one (the MetricDatum `Value` documentation; 2^-360 to 2^360).
pub const MAX_VALUE_MAGNITUDE: f64 = 1.174271e+108;
/// Datums older than this are refused (CloudWatch keeps two weeks)...
pub const MAX_AGE_SECONDS: i64 = 14 * 24 * 3600;
/// ...and so are datums more than this far in the future.
pub const MAX_AHEAD_SECONDS: i64 = 2 * 3600;
/// [`screen`] narrows the window by this much on both sides, so that a datum it passes is
/// still inside when its batch is sent (a Lambda invocation lasts at most 15 minutes).
pub const WINDOW_MARGIN_SECONDS: i64 = 15 * 60;
/// Dimension names are 1 to 255 characters, values 1 to 1,024, at most 30 per datum.
pub const MAX_DIMENSION_NAME_LEN: usize = 255;
pub const MAX_DIMENSION_VALUE_LEN: usize = 1024;
pub const MAX_DIMENSIONS: usize = 30;
/// Metric names are 1 to 255 characters; namespaces too.
pub const MAX_METRIC_NAME_LEN: usize = 255;
pub const MAX_NAMESPACE_LEN: usize = 255;

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
}

/// Why CloudWatch would refuse a datum, or one value of a distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    NonFinite,
    OutOfRange,
    InvalidCount,
    TooOld,
    TooFarAhead,
    MetricName,
    DimensionName,
    DimensionValue,
    TooManyDimensions,
    EmptyDistribution,
}

impl Rejection {
    /// The reason as counted in [`Screened::reasons`] and the object's outcome.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::NonFinite => "value not finite (NaN or infinite)",
            Rejection::OutOfRange => "value of a magnitude over CloudWatch's 1.174271e108",
            Rejection::InvalidCount => "distribution count not positive or out of range",
            Rejection::TooOld => "timestamp older than CloudWatch's 14 days",
            Rejection::TooFarAhead => "timestamp more than 2 hours ahead",
            Rejection::MetricName => "metric name not 1 to 255 printable ASCII characters",
            Rejection::DimensionName => "dimension name not 1 to 255 printable ASCII characters",
            Rejection::DimensionValue => "dimension value not 1 to 1024 printable ASCII characters",
            Rejection::TooManyDimensions => "more than 30 dimensions",
            Rejection::EmptyDistribution => "distribution without values, or counts not matching them",
        }
    }
}

/// What [`screen`] left out or changed, by reason. The counts saturate: a hostile object
/// cannot wrap them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Screened {
    /// Datums left out whole.
    pub skipped_datums: u64,
    /// Values left out of distributions whose other values were kept (with their counts).
    pub skipped_values: u64,
    /// Values of a magnitude below CloudWatch's smallest (8.515920e-109), published as 0.
    pub rounded_to_zero: u64,
    /// Datums and values left out, by [`Rejection::reason`].
    pub reasons: BTreeMap<&'static str, u64>,
}

impl Screened {
    /// Counts a datum left out whole (`whole_datum`) or one value of a distribution, for
    /// `why`.
    pub fn skip(&mut self, why: Rejection, whole_datum: bool) {
        let counter = if whole_datum { &mut self.skipped_datums } else { &mut self.skipped_values };
        *counter = counter.saturating_add(1);
        let reason = self.reasons.entry(why.reason()).or_default();
        *reason = reason.saturating_add(1);
    }

    /// Counts a datum a caller left out for a reason of its own (e.g. the log processor's
    /// provenance check).
    pub fn skip_datum(&mut self, reason: &'static str) {
        self.skipped_datums = self.skipped_datums.saturating_add(1);
        let count = self.reasons.entry(reason).or_default();
        *count = count.saturating_add(1);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Screened) {
        self.skipped_datums = self.skipped_datums.saturating_add(other.skipped_datums);
        self.skipped_values = self.skipped_values.saturating_add(other.skipped_values);
        self.rounded_to_zero = self.rounded_to_zero.saturating_add(other.rounded_to_zero);
        for (reason, n) in other.reasons {
            let count = self.reasons.entry(reason).or_default();
            *count = count.saturating_add(n);
        }
    }

    /// Whether nothing was left out or changed.
    pub fn is_empty(&self) -> bool {
        self.skipped_datums == 0 && self.skipped_values == 0 && self.rounded_to_zero == 0
    }
}

/// Printable ASCII (0x20 to 0x7e), 1 to `max` bytes, not all blanks: what CloudWatch takes
/// for names and dimension values. Control characters are excluded, and with them the
/// bytes 0x1e/0x1f that joined dimension keys use as separators.
fn printable(s: &[u8], max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.iter().all(|b| (0x20..=0x7e).contains(b))
        && s.iter().any(|b| *b != b' ')
}

/// Whether CloudWatch accepts `value` as a dimension value (bytes, as parsers see them):
/// the check to make before a value is joined into any key.
pub fn is_valid_dimension_value(value: &[u8]) -> bool {
    printable(value, MAX_DIMENSION_VALUE_LEN)
}

/// Whether CloudWatch accepts `name` as a dimension name (it may not start with `:`).
pub fn is_valid_dimension_name(name: &str) -> bool {
    printable(name.as_bytes(), MAX_DIMENSION_NAME_LEN) && !name.starts_with(':')
}

/// A value as CloudWatch takes it: finite and at most [`MAX_VALUE_MAGNITUDE`]; a smaller
/// magnitude than [`MIN_VALUE_MAGNITUDE`] becomes 0 (`true`: it was rounded).
fn sanitize_value(value: f64) -> Result<(f64, bool), Rejection> {
    if !value.is_finite() {
        Err(Rejection::NonFinite)
    } else if value.abs() > MAX_VALUE_MAGNITUDE {
        Err(Rejection::OutOfRange)
    } else if value != 0.0 && value.abs() < MIN_VALUE_MAGNITUDE {
        Ok((0.0, true))
    } else {
        Ok((value, false))
    }
}

/// Whether `timestamp` is inside CloudWatch's window at `now`, narrowed by `margin`.
fn check_time(timestamp: i64, now: i64, margin: i64) -> Result<(), Rejection> {
    if timestamp < now.saturating_sub(MAX_AGE_SECONDS).saturating_add(margin) {
        Err(Rejection::TooOld)
    } else if timestamp > now.saturating_add(MAX_AHEAD_SECONDS).saturating_sub(margin) {
        Err(Rejection::TooFarAhead)
    } else {
        Ok(())
    }
}

/// Whether CloudWatch accepts a metric `name` under `dimensions` (what [`screen`] judges a
/// datum's names by).
pub fn check_names(name: &str, dimensions: &BTreeMap<String, String>) -> Result<(), Rejection> {
    if !printable(name.as_bytes(), MAX_METRIC_NAME_LEN) {
        return Err(Rejection::MetricName);
    }
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(Rejection::TooManyDimensions);
    }
    for (name, value) in dimensions {
        if !is_valid_dimension_name(name) {
            return Err(Rejection::DimensionName);
        }
        if !is_valid_dimension_value(value.as_bytes()) {
            return Err(Rejection::DimensionValue);
        }
    }
    Ok(())
}

/// Only what CloudWatch accepts, each datum judged alone: names and dimensions checked
/// (a datum failing them is skipped), values and counts checked (a bad one is dropped from
/// its distribution, the rest kept; a bad single value skips its datum), values too small
/// for CloudWatch rounded to 0, distributions over [`MAX_VALUES_PER_DATUM`] values split,
/// and, with `now` (seconds since the epoch: when publishing), timestamps outside
/// CloudWatch's window (narrowed by [`WINDOW_MARGIN_SECONDS`]) skipped. Without `now`
/// (an analysis of old logs) timestamps are not judged: see [`outside_window`].
pub fn screen(datums: Vec<Datum>, now: Option<i64>) -> (Vec<Datum>, Screened) {
    let mut screened = Screened::default();
    let mut kept = Vec::with_capacity(datums.len());
    for datum in datums {
        screen_one(datum, now.map(|now| (now, WINDOW_MARGIN_SECONDS)), &mut screened, &mut kept);
    }
    (kept, screened)
}

/// Whether `timestamp` is inside CloudWatch's window at `now`, narrowed by
/// [`WINDOW_MARGIN_SECONDS`] (what [`screen`] judges a datum's timestamp by when publishing).
pub fn check_window(timestamp: i64, now: i64) -> Result<(), Rejection> {
    check_time(timestamp, now, WINDOW_MARGIN_SECONDS)
}

/// A single value as CloudWatch takes it (what [`screen`] does to a datum's value): `None`
/// when it is refused, counted in `screened` as a datum left out.
pub fn screen_value(value: f64, screened: &mut Screened) -> Option<f64> {
    match sanitize_value(value) {
        Ok((sanitized, rounded)) => {
            screened.rounded_to_zero = screened.rounded_to_zero.saturating_add(u64::from(rounded));
            Some(sanitized)
        }
        Err(why) => {
            screened.skip(why, true);
            None
        }
    }
}

/// A distribution's (value, count) pairs as CloudWatch takes them (what [`screen`] does to
/// a datum's values and counts): a refused value or count is left out and counted in
/// `screened`, the rest kept; values rounded to 0 are merged into one. Empty when none is
/// left, which is counted as a datum left out.
pub fn screen_distribution(
    pairs: impl IntoIterator<Item = (f64, f64)>,
    screened: &mut Screened,
) -> Vec<(f64, f64)> {
    let mut kept: Vec<(f64, f64)> = Vec::new();
    for (value, count) in pairs {
        let value = match sanitize_value(value) {
            Ok((value, rounded)) => {
                screened.rounded_to_zero = screened.rounded_to_zero.saturating_add(u64::from(rounded));
                value
            }
            Err(why) => {
                screened.skip(why, false);
                continue;
            }
        };
        if !(count.is_finite() && (MIN_VALUE_MAGNITUDE..=MAX_VALUE_MAGNITUDE).contains(&count)) {
            screened.skip(Rejection::InvalidCount, false);
            continue;
        }
        // Rounding to 0 can make two values equal: CloudWatch lists each once.
        match kept.iter_mut().find(|(v, _)| *v == value) {
            Some(pair) => pair.1 = (pair.1 + count).min(MAX_VALUE_MAGNITUDE),
            None => kept.push((value, count)),
        }
    }
    if kept.is_empty() {
        // Its values were counted above, each with its reason.
        screened.skipped_datums = screened.skipped_datums.saturating_add(1);
    }
    kept
}

/// How many datums fall outside CloudWatch's window at `now`: what publishing them now
/// would skip.
pub fn outside_window(datums: &[Datum], now: i64) -> u64 {
    datums.iter().filter(|d| check_time(d.timestamp, now, WINDOW_MARGIN_SECONDS).is_err()).count() as u64
}

fn screen_one(mut datum: Datum, window: Option<(i64, i64)>, screened: &mut Screened, out: &mut Vec<Datum>) {
    let whole = check_names(&datum.name, &datum.dimensions)
        .and_then(|()| window.map_or(Ok(()), |(now, margin)| check_time(datum.timestamp, now, margin)));
    if let Err(why) = whole {
        screened.skip(why, true);
        return;
    }
    match &mut datum.value {
        DatumValue::Single { value } => {
            if let Some(sanitized) = screen_value(*value, screened) {
                *value = sanitized;
                out.push(datum);
            }
        }
        DatumValue::Distribution { values, counts } => {
            if values.is_empty() || values.len() != counts.len() {
                screened.skip(Rejection::EmptyDistribution, true);
                return;
            }
            let pairs = screen_distribution(values.iter().copied().zip(counts.iter().copied()), screened);
            // CloudWatch merges datums of one metric and timestamp into one distribution.
            for chunk in pairs.chunks(MAX_VALUES_PER_DATUM) {
                out.push(Datum {
                    value: DatumValue::Distribution {
                        values: chunk.iter().map(|(v, _)| *v).collect(),
                        counts: chunk.iter().map(|(_, c)| *c).collect(),
                    },
                    ..datum.clone()
                });
            }
        }
    }
}

/// The length of `s` percent-encoded as the SDK's awsQuery writer encodes it (the
/// `urlencoding` crate: `A-Z a-z 0-9 - . _ ~` kept, every other byte as `%XX`).
fn query_encoded_len(s: &str) -> usize {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { 1 } else { 3 }).sum()
}

fn number_len(value: f64) -> usize {
    query_encoded_len(Encoder::from(value).encode())
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// `Action=PutMetricData&Version=2010-08-01&Namespace=`, and the namespace as long as it
/// may be encoded (every byte as `%XX`), so that batches fit any namespace.
const REQUEST_HEADER_BYTES: usize =
    "Action=PutMetricData&Version=2010-08-01&Namespace=".len() + 3 * MAX_NAMESPACE_LEN;

/// The bytes the SDK's awsQuery serializer (aws-sdk-cloudwatch 1.99,
/// `ser_metric_datum`) writes for a datum that is the `index`th (from 1) of its request:
/// `&MetricData.member.<index>.<field>=<encoded value>` per field, lists as
/// `.member.<n>`. `tests::encoded_sizes_match_the_sdk_body` checks it against the body the
/// SDK builds.
fn datum_body_len(datum: &Datum, index: usize) -> usize {
    let member = "&MetricData.member.".len() + digits(index) + ".".len();
    let field = |name: usize, value: usize| member + name + "=".len() + value;
    let mut len = field("MetricName".len(), query_encoded_len(&datum.name));
    for (j, (name, value)) in datum.dimensions.iter().enumerate() {
        let dimension = "Dimensions.member.".len() + digits(j + 1) + ".".len();
        len += field(dimension + "Name".len(), query_encoded_len(name));
        len += field(dimension + "Value".len(), query_encoded_len(value));
    }
    let timestamp = DateTime::from_secs(datum.timestamp).fmt(DateFormat::DateTime);
    // A timestamp the SDK cannot write fails the request; screening keeps them out.
    len += field("Timestamp".len(), timestamp.map_or(64, |t| query_encoded_len(&t)));
    match &datum.value {
        DatumValue::Single { value } => len += field("Value".len(), number_len(*value)),
        DatumValue::Distribution { values, counts } => {
            for (list, numbers) in [("Values", values), ("Counts", counts)] {
                if numbers.is_empty() {
                    len += field(list.len(), 0); // `&<prefix>.Values=`
                }
                for (k, number) in numbers.iter().enumerate() {
                    len += field(list.len() + ".member.".len() + digits(k + 1), number_len(*number));
                }
            }
        }
    }
    len + field("Unit".len(), query_encoded_len(StandardUnit::from(datum.unit).as_str()))
}

/// The exact length of the PutMetricData request body the SDK builds for `batch` in
/// `namespace` (before its gzip request compression).
pub fn request_body_len(namespace: &str, batch: &[Datum]) -> usize {
    let header = "Action=PutMetricData&Version=2010-08-01&Namespace=".len() + query_encoded_len(namespace);
    header + batch.iter().enumerate().map(|(i, d)| datum_body_len(d, i + 1)).sum::<usize>()
}

/// Splits datums into PutMetricData requests: at most [`MAX_DATUMS_PER_REQUEST`] datums
/// and [`MAX_REQUEST_BYTES`] of body as the SDK encodes it, for any namespace.
pub fn request_batches(datums: &[Datum]) -> Vec<&[Datum]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, REQUEST_HEADER_BYTES);
    for (i, datum) in datums.iter().enumerate() {
        let mut size = datum_body_len(datum, i - start + 1);
        if i > start
            && (i - start == MAX_DATUMS_PER_REQUEST || bytes.saturating_add(size) > MAX_REQUEST_BYTES)
        {
            batches.push(&datums[start..i]);
            start = i;
            bytes = REQUEST_HEADER_BYTES;
            size = datum_body_len(datum, 1);
        }
        bytes = bytes.saturating_add(size);
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

/// Refuses to send a PutMetricData body over [`MAX_REQUEST_BYTES`], measured on the body
/// the SDK serialized (the batching above should make this unreachable).
#[derive(Clone, Debug, Default)]
struct BodyLimit {
    /// The size of a body refused, 0 if none.
    refused: Arc<AtomicUsize>,
}

impl Intercept for BodyLimit {
    fn name(&self) -> &'static str {
        "PutMetricDataBodyLimit"
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let len = context.request().body().bytes().map_or(0, <[u8]>::len);
        if len > MAX_REQUEST_BYTES {
            self.refused.store(len, Ordering::Relaxed);
            return Err(format!("a {len}-byte body is over PutMetricData's {MAX_REQUEST_BYTES}").into());
        }
        Ok(())
    }
}

/// One PutMetricData request (a batch from [`request_batches`] of [`screen`]ed datums).
/// A datum CloudWatch would refuse for its name or values (one that was never screened)
/// is left out here and logged, so that it cannot fail the batch; a body over the size
/// limit is refused unsent. Timestamps are judged by [`screen`] with the caller's clock
/// and a margin that outlasts an invocation.
///
/// CloudWatch adds up whatever it receives, so the SDK retries only failures that
/// certainly did not reach it ([`crate::aws::NoRetryOnceSent`]); any other failure comes
/// back as [`PublishError::Ambiguous`] for the caller to record.
pub async fn put_batch(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    batch: &[Datum],
) -> Result<(), PublishError> {
    let (mut screened, mut data) = (Screened::default(), Vec::with_capacity(batch.len()));
    for datum in batch {
        screen_one(datum.clone(), None, &mut screened, &mut data);
    }
    if !screened.is_empty() {
        tracing::warn!(?screened, "datums CloudWatch would refuse left out of the batch");
    }
    if data.is_empty() {
        return Ok(());
    }
    let limit = BodyLimit::default();
    let no_retry_once_sent = aws_sdk_cloudwatch::config::Builder::default().retry_classifier(NoRetryOnceSent);
    let result = client
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data.iter().map(Datum::to_sdk).collect()))
        .customize()
        .config_override(no_retry_once_sent)
        .interceptor(limit.clone())
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(_) if limit.refused.load(Ordering::Relaxed) > 0 => {
            let size = limit.refused.load(Ordering::Relaxed);
            let mut error = AwsError::other(
                "PutMetricData",
                format!("not sent: a {size}-byte body is over the {MAX_REQUEST_BYTES}-byte limit"),
            );
            error.retryable = false;
            Err(PublishError::Rejected(error))
        }
        Err(error) => {
            let error = AwsError::from_sdk("PutMetricData", error);
            if error.may_have_taken_effect() {
                Err(PublishError::Ambiguous(error))
            } else {
                Err(PublishError::Rejected(error))
            }
        }
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
    /// Values beyond CloudWatch's range are kept here and dropped by [`screen`], counted.
    pub fn record(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let count = if value == 0.0 {
            &mut self.zeros
        } else {
            // `as` saturates: any finite value has a bucket.
            let index = (value.ln() / Self::gamma().ln()).ceil() as i32;
            self.buckets.entry(index).or_insert(0)
        };
        *count = count.saturating_add(1);
    }

    pub fn count(&self) -> u64 {
        self.buckets.values().fold(self.zeros, |sum, n| sum.saturating_add(*n))
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

    /// Captures the request body the SDK serialized and stops the request there: nothing
    /// is sent, so this measures the SDK's own encoding, not ours.
    #[derive(Clone, Debug, Default)]
    struct Capture(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

    impl Intercept for Capture {
        fn name(&self) -> &'static str {
            "Capture"
        }

        fn read_after_serialization(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let body = context.request().body().bytes().expect("an in-memory body").to_vec();
            self.0.lock().unwrap().push(body);
            Err("captured, not sent".into())
        }
    }

    fn offline_client(capture: &Capture) -> aws_sdk_cloudwatch::Client {
        use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://127.0.0.1:9")
            .interceptor(capture.clone())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// The body the SDK builds for `batch`, as it would send it (before compression).
    async fn sdk_body(namespace: &str, batch: &[Datum]) -> Vec<u8> {
        let capture = Capture::default();
        let request = offline_client(&capture)
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(batch.iter().map(Datum::to_sdk).collect()));
        assert!(request.send().await.is_err(), "stopped by the capture");
        capture.0.lock().unwrap().pop().expect("the SDK serialized the request")
    }

    fn now() -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        now.as_secs() as i64 / 60 * 60
    }

    /// A datum of the current minute.
    fn fresh(name: &str, value: f64) -> Datum {
        Datum { timestamp: now(), ..single(name, value) }
    }

    /// A 150-value distribution with `dimensions` long values that each encode to three
    /// bytes a character (`/`): the largest datum the processor could build.
    fn worst_case(index: usize, dimensions: usize) -> Datum {
        let mut histogram = Histogram::default();
        for i in 1..=MAX_VALUES_PER_DATUM {
            histogram.record(0.000_123_456_7 * 1.0203f64.powi(i as i32));
        }
        let dims: BTreeMap<String, String> = (0..dimensions)
            .map(|d| (format!("Dimension{d}"), format!("{index}{}", "/".repeat(MAX_DIMENSION_VALUE_LEN - 4))))
            .collect();
        let mut datums = histogram.to_datums("TargetResponseTime", Unit::Seconds, &dims, now());
        assert_eq!(datums.len(), 1);
        datums.remove(0)
    }

    #[tokio::test]
    async fn encoded_sizes_match_the_sdk_body() {
        let mut odd = single("Bytes Sent/µs", -1.5e-7);
        odd.dimensions.insert("Route".into(), "/api/*?q=1&x=~%".into());
        odd.timestamp = -86_400 * 365 * 30;
        let empty =
            Datum { value: DatumValue::Distribution { values: vec![], counts: vec![] }, ..single("E", 0.0) };
        let mut datums = vec![odd, empty, single("RequestCount", 0.0), single("RequestCount", 1.174271e108)];
        datums.extend((0..12).map(|i| worst_case(i, 1 + i % 3)));
        datums.extend((0..3).map(|i| single("HTTPCode_2XX_Count", i as f64 * 1e15 + 0.1)));
        for namespace in ["LambdaAutoscaler/Logs", "a", "Ünïcode ns"] {
            for batch in [&datums[..], &datums[..1], &datums[3..]] {
                let body = sdk_body(namespace, batch).await;
                assert_eq!(request_body_len(namespace, batch), body.len(), "{namespace}: {batch:?}");
            }
        }
    }

    #[tokio::test]
    async fn worst_case_batches_stay_under_the_limit_on_the_sdk_body() {
        // Long dimension values, 150 values each: ~24 kB to ~62 kB a datum as encoded.
        let datums: Vec<Datum> = (0..200).map(|i| worst_case(i, 1 + i % 3)).collect();
        let namespace = "N".repeat(MAX_NAMESPACE_LEN);
        let batches = request_batches(&datums);
        assert!(batches.len() > 1, "the datums need more than one request");
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), datums.len());
        let mut largest = 0;
        for batch in &batches {
            let body = sdk_body(&namespace, batch).await.len();
            assert!(body <= MAX_REQUEST_BYTES, "{body} bytes in {} datums", batch.len());
            assert!(batch.len() <= MAX_DATUMS_PER_REQUEST);
            largest = largest.max(body);
        }
        // Full requests: the limit is used, not a cautious fraction of it.
        assert!(largest > MAX_REQUEST_BYTES * 9 / 10, "largest body {largest}");
        println!("{} requests, largest body {largest} bytes", batches.len());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_unsent_and_a_refused_datum_never_reaches_the_batch() {
        let capture = Capture::default();
        let client = offline_client(&capture);
        let datums: Vec<Datum> = (0..60).map(|i| worst_case(i, 3)).collect();
        assert!(request_body_len("N", &datums) > MAX_REQUEST_BYTES);
        let Err(PublishError::Rejected(error)) = put_batch(&client, "N", &datums).await else {
            panic!("an oversized body must be refused as not sent")
        };
        assert!(!error.retryable && error.to_string().contains("over the 1000000-byte limit"), "{error}");
        let refused = capture.0.lock().unwrap().pop().expect("the body the SDK built").len();
        assert!(refused > MAX_REQUEST_BYTES, "{refused}");

        // A datum that was never screened cannot fail the batch.
        let batch = [fresh("RequestCount", 2.0), fresh("Latency", f64::NAN)];
        assert!(put_batch(&client, "N", &batch).await.is_err(), "stopped by the capture");
        let body = String::from_utf8(capture.0.lock().unwrap().pop().unwrap()).unwrap();
        assert!(body.contains("MetricData.member.1.Value=2"), "{body}");
        assert!(!body.contains("member.2"), "only the valid datum is sent: {body}");
    }

    /// CloudWatch's rules, restated from its documentation independently of [`screen`].
    fn accepted_by_cloudwatch(datum: &Datum, now: i64) -> bool {
        let text_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes().all(|b| (32..127).contains(&b))
                && !s.trim().is_empty()
        };
        let value_ok =
            |v: f64| v.is_finite() && (v == 0.0 || (8.515920e-109..=1.174271e+108).contains(&v.abs()));
        let values_ok = match &datum.value {
            DatumValue::Single { value } => value_ok(*value),
            DatumValue::Distribution { values, counts } => {
                !values.is_empty()
                    && values.len() <= 150
                    && values.len() == counts.len()
                    && values.iter().all(|v| value_ok(*v))
                    && counts.iter().all(|c| value_ok(*c) && *c > 0.0)
            }
        };
        values_ok
            && text_ok(&datum.name, 255)
            && datum.dimensions.len() <= 30
            && datum
                .dimensions
                .iter()
                .all(|(k, v)| text_ok(k, 255) && !k.starts_with(':') && text_ok(v, 1024))
            && datum.timestamp >= now - 14 * 86_400
            && datum.timestamp <= now + 2 * 3600
    }

    #[test]
    fn hostile_datums_are_skipped_each_alone_and_counted() {
        let now = now();
        let mut datums = vec![fresh("RequestCount", 1.0)];
        let mut with = |f: &dyn Fn(&mut Datum)| {
            let mut datum = fresh("RequestCount", 1.0);
            f(&mut datum);
            datums.push(datum);
        };
        with(&|d| d.value = DatumValue::Single { value: 1e200 });
        with(&|d| d.value = DatumValue::Single { value: f64::NAN });
        with(&|d| d.value = DatumValue::Single { value: f64::NEG_INFINITY });
        with(&|d| d.timestamp = 0); // 1970
        with(&|d| d.timestamp = i64::MIN);
        with(&|d| d.timestamp = i64::MAX);
        with(&|d| d.timestamp = now + 3 * 3600);
        with(&|d| {
            d.dimensions.insert("LoadBalancer".into(), "app/web/1\x1eAutoScalingGroupName\x1fweb".into());
        });
        with(&|d| {
            d.dimensions.insert("LoadBalancer".into(), "x".repeat(MAX_DIMENSION_VALUE_LEN + 1));
        });
        with(&|d| {
            d.dimensions.insert("LoadBalancer".into(), "caf\u{e9}".into());
        });
        with(&|d| {
            d.dimensions.insert("Bad\tName".into(), "v".into());
        });
        with(&|d| {
            d.dimensions.insert(":colon".into(), "v".into());
        });
        with(&|d| {
            d.dimensions.insert("Blank".into(), "   ".into());
        });
        with(&|d| d.name = "\u{7}".into());
        with(&|d| d.dimensions = (0..31).map(|i| (format!("D{i}"), "v".into())).collect());
        // A distribution keeps its good values; a tiny one is published as 0, merged with
        // the zero already there.
        with(&|d| {
            d.value = DatumValue::Distribution {
                values: vec![0.0, 0.25, 1e200, f64::NAN, 1e-200, 2.0],
                counts: vec![1.0, 2.0, 3.0, 4.0, 5.0, -1.0],
            }
        });
        let total = datums.len();
        let (kept, screened) = screen(datums, Some(now));
        assert!(kept.iter().all(|d| accepted_by_cloudwatch(d, now)), "{kept:?}");
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(
            kept[1].value,
            DatumValue::Distribution { values: vec![0.0, 0.25], counts: vec![6.0, 2.0] }
        );
        assert_eq!(screened.skipped_datums, total as u64 - 2);
        assert_eq!((screened.skipped_values, screened.rounded_to_zero), (3, 1));
        let reasons: BTreeMap<&str, u64> = BTreeMap::from([
            (Rejection::NonFinite.reason(), 3),
            (Rejection::OutOfRange.reason(), 2),
            (Rejection::InvalidCount.reason(), 1),
            (Rejection::TooOld.reason(), 2),
            (Rejection::TooFarAhead.reason(), 2),
            (Rejection::DimensionValue.reason(), 4),
            (Rejection::DimensionName.reason(), 2),
            (Rejection::MetricName.reason(), 1),
            (Rejection::TooManyDimensions.reason(), 1),
        ]);
        assert_eq!(screened.reasons, reasons);
    }

    /// Counts saturate instead of wrapping (or panicking: tests run with overflow checks).
    #[test]
    fn counts_saturate() {
        let mut histogram = Histogram { zeros: u64::MAX, buckets: BTreeMap::from([(0, u64::MAX)]) };
        histogram.record(0.0);
        histogram.record(1.0);
        assert_eq!(histogram.count(), u64::MAX);
        let mut screened = Screened { skipped_datums: u64::MAX, ..Screened::default() };
        screened.skip_datum("why");
        screened.merge(Screened {
            skipped_datums: 1,
            reasons: BTreeMap::from([("why", u64::MAX)]),
            ..Screened::default()
        });
        assert_eq!((screened.skipped_datums, screened.reasons["why"]), (u64::MAX, u64::MAX));
        // Timestamps at the ends of i64 are judged without overflowing.
        assert_eq!(check_time(i64::MIN, i64::MAX, WINDOW_MARGIN_SECONDS), Err(Rejection::TooOld));
        assert_eq!(check_time(i64::MAX, i64::MIN, WINDOW_MARGIN_SECONDS), Err(Rejection::TooFarAhead));
    }

    #[test]
    fn an_analysis_keeps_old_datums_and_says_how_many_are_outside_the_window() {
        let now = now();
        let mut old = fresh("RequestCount", 1.0);
        old.timestamp = now - 30 * 86_400;
        let datums = vec![old, fresh("RequestCount", 2.0)];
        assert_eq!(outside_window(&datums, now), 1);
        let (kept, screened) = screen(datums, None);
        assert_eq!((kept.len(), screened.is_empty()), (2, true));
    }

    #[test]
    fn dimension_values_with_separators_or_control_characters_are_invalid() {
        for bad in
            [&b"app/web/1\x1eAutoScalingGroupName\x1fweb"[..], b"a\x00", b"tab\t", b"", b" ", b"\xc3\xa9"]
        {
            assert!(!is_valid_dimension_value(bad), "{bad:?}");
        }
        assert!(is_valid_dimension_value(b"app/shop-alb/50dc6c495c0c9188"));
        assert!(!is_valid_dimension_name(":x") && is_valid_dimension_name("LoadBalancer"));
    }

    #[test]
    fn a_wide_distribution_is_split_not_truncated() {
        let values: Vec<f64> = (1..=400).map(f64::from).collect();
        let datum = Datum {
            value: DatumValue::Distribution { counts: vec![1.0; 400], values },
            ..fresh("Latency", 0.0)
        };
        let (kept, _) = screen(vec![datum], None);
        assert_eq!(kept.len(), 3);
        let counts: f64 = kept
            .iter()
            .map(|d| match &d.value {
                DatumValue::Distribution { counts, .. } => counts.iter().sum::<f64>(),
                DatumValue::Single { .. } => 0.0,
            })
            .sum();
        assert_eq!(counts, 400.0);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[A-Za-z/_.-]{1,40}",
                any::<String>(),
                "[\\x00-\\x7f]{0,20}",
                (1usize..1100).prop_map(|n| "v".repeat(n)),
            ]
        }

        fn number() -> impl Strategy<Value = f64> {
            prop_oneof![0.0..1e6, any::<f64>(), Just(f64::NAN), Just(1e-200), Just(-0.0), Just(1.2e108),]
        }

        fn datum(now: i64) -> impl Strategy<Value = Datum> {
            let value = prop_oneof![
                number().prop_map(|value| DatumValue::Single { value }),
                (proptest::collection::vec(number(), 0..200), proptest::collection::vec(number(), 0..200))
                    .prop_map(|(values, counts)| DatumValue::Distribution { values, counts }),
            ];
            let timestamp = prop_oneof![(now - 20 * 86_400)..(now + 5 * 3600), any::<i64>(),];
            (text(), proptest::collection::btree_map(text(), text(), 0..4), timestamp, value).prop_map(
                |(name, dimensions, timestamp, value)| Datum {
                    name,
                    unit: Unit::Count,
                    dimensions,
                    timestamp,
                    value,
                },
            )
        }

        proptest! {
            /// Whatever goes in, what comes out is accepted by CloudWatch, every datum is
            /// either kept or counted, and the batches fit the request limits exactly.
            #[test]
            fn every_datum_screened_and_batched_is_one_cloudwatch_accepts(
                datums in proptest::collection::vec(datum(1_800_000_000), 0..40)
            ) {
                let now = 1_800_000_000;
                let total = datums.len() as u64;
                let (kept, screened) = screen(datums, Some(now));
                for datum in &kept {
                    prop_assert!(accepted_by_cloudwatch(datum, now), "{:?}", datum);
                }
                prop_assert!(kept.len() as u64 + screened.skipped_datums >= total);
                let batches = request_batches(&kept);
                prop_assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), kept.len());
                for batch in batches {
                    prop_assert!(!batch.is_empty() && batch.len() <= MAX_DATUMS_PER_REQUEST);
                    prop_assert!(request_body_len(&"N".repeat(255), batch) <= MAX_REQUEST_BYTES);
                }
            }
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

//! Per-minute, per-dimension aggregation of records into [`Series`]: the metric set, which
//! the API path cuts into CloudWatch datums and the EMF path writes whole. The metric names
//! and what each means are in the README's metrics table; a metric added here belongs there
//! too, and in a fixture's expected values.
//!
//! Hostile content is bounded per object by [`Caps`] (README, "Hostile input"): distinct
//! values per dimension (the rest counted under [`OTHER`]) and the datums the object may
//! create. Both are judged only when a record needs a series that does not exist yet, so
//! a record of an existing series costs nothing more.

use std::collections::{BTreeMap, HashMap, HashSet};

use shared::metrics::{Datum, DatumValue, Histogram, MAX_DIMENSION_VALUE_LEN, Unit};

use crate::config::Caps;
use crate::formats::{Detail, MAX_DIMENSIONS, Measure, Record};

/// The value records are counted under when theirs is beyond a cap (as `routes` does).
pub const OTHER: &str = "other";

/// Why a record was capped; each counted once per record in the summary's `capped_reasons`.
pub const CAPPED_VALUES: &str = "dimension value beyond MAX_DIMENSION_VALUES, counted under other";
pub const CAPPED_LENGTH: &str = "dimension value over 1024 bytes, counted under other";
pub const CAPPED_NO_SERIES: &str = "new series beyond MAX_DATUMS_PER_OBJECT, in no metric";
pub const CAPPED_FINER: &str = "new series beyond MAX_DATUMS_PER_OBJECT, in its first series only";
pub const CAPPED_SAMPLE: &str = "time beyond MAX_DATUMS_PER_OBJECT, left out of its distribution";
/// A record's reasons, as bits of one byte while it is counted.
const VALUES: u8 = 1;
const LENGTH: u8 = 1 << 1;
const NO_SERIES: u8 = 1 << 2;
const FINER: u8 = 1 << 3;
const SAMPLE: u8 = 1 << 4;
const REASONS: [(u8, &str); 5] = [
    (VALUES, CAPPED_VALUES),
    (LENGTH, CAPPED_LENGTH),
    (NO_SERIES, CAPPED_NO_SERIES),
    (FINER, CAPPED_FINER),
    (SAMPLE, CAPPED_SAMPLE),
];

#[derive(Clone, Debug, Default)]
struct Counters {
    /// What was counted (the first record's kind; one object holds one kind).
    kind: Option<Kind>,
    /// Which metrics the dimension set publishes.
    set: Set,
    requests: u64,
    /// 2xx, 3xx, 4xx, 5xx by the status the client received.
    status_classes: [u64; 4],
    received_bytes: Option<u64>,
    sent_bytes: u64,
    /// `Measure::Request::latency`; an ALB connection's handshake time.
    latency: Histogram,
    /// [`Detail::Target`]'s time.
    target: Histogram,
    /// The ranges of `latency` and `target`, which bound their datums.
    spans: [Span; 2],
    rejected: Option<u64>,
    packets: Option<u64>,
    bytes: Option<u64>,
    errors: u64,
}

/// A distribution's positive values, their range and count: a histogram keeps a bucket per
/// 2 % of the range that holds a value, 150 to a datum, so a hostile spread (1e-300 to
/// 1e300) would cost a datum per 150 samples; the datums a sample may add are charged to
/// the object's first.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    min: f64,
    max: f64,
    samples: u64,
    /// Datums charged so far (0: none beyond the one charged when the series was created).
    charged: usize,
}

/// The most datums a distribution of `samples` positive values over `min..=max` can take
/// (zeros have a bucket of their own).
fn span_datums(min: f64, max: f64, samples: u64) -> usize {
    let gamma = (1.0 + Histogram::RELATIVE_ERROR) / (1.0 - Histogram::RELATIVE_ERROR);
    let range = ((max.ln() - min.ln()) / gamma.ln()).ceil() as usize + 1; // `as` saturates
    let buckets = range.min(usize::try_from(samples).unwrap_or(usize::MAX));
    buckets.saturating_add(1).div_ceil(shared::metrics::MAX_VALUES_PER_DATUM)
}

/// The datums an object may still create.
#[derive(Debug)]
struct Budget {
    used: usize,
    limit: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self { used: 0, limit: Caps::default().datums }
    }
}

impl Budget {
    fn take(&mut self, datums: usize) -> bool {
        let fits = self.used.saturating_add(datums) <= self.limit;
        if fits {
            self.used += datums;
        }
        fits
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `target`: the metric name of [`Detail::Target`]'s time, for ALB and Classic ELB.
    Request {
        http: bool,
        target: Option<&'static str>,
    },
    Flow,
    Event,
    Connection,
}

/// The dimension sets a record is counted under, and what each publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Set {
    /// Each non-empty prefix of the record's dimensions: every metric of its kind.
    #[default]
    Full,
    /// The first dimension and `Route`: request count, status classes and the latency
    /// AWS's metric of that name measures.
    Route,
    /// The first dimension and `VerifyStatus`: ALB connections' verification failures.
    VerifyStatus,
}

/// The datums a new series of `record` under `set` publishes (those `datums` writes,
/// optional ones included, each distribution as one until its range widens).
fn datums_of(record: &Record<'_>, set: Set) -> usize {
    match (record.measure, record.detail, set) {
        (_, _, Set::VerifyStatus) => 1,
        (Measure::Event { .. }, Detail::Connection { .. }, _) => 3,
        (Measure::Event { .. }, _, _) => 2,
        (Measure::Flow { .. }, _, _) => 4,
        (Measure::Request { http, .. }, detail, set) => {
            let statuses = if http { 4 } else { 0 };
            let target = matches!(detail, Detail::Target { .. });
            match set {
                Set::Route => 1 + statuses + 1,
                _ => 1 + statuses + 1 + usize::from(target) + 2,
            }
        }
    }
}

/// A record's dimension values as its series are looked up: as parsed, judged and kept,
/// or judged and counted under [`OTHER`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Judged {
    NotYet,
    Kept,
    Other,
}

/// Aggregates records by minute and dimensions. Keys are encoded into one byte string
/// (minute, then `name\x1fvalue\x1e` per dimension) in a reused buffer, so a record that
/// falls into an existing minute costs a hash lookup and no allocation.
#[derive(Debug, Default)]
pub struct Aggregator {
    /// Dimensions every record of the current object gets from its key
    /// ([`crate::Format::object_dimensions`]: CloudFront's `DistributionId`), encoded as in
    /// keys.
    object_dimensions: Vec<u8>,
    groups: HashMap<Box<[u8]>, Counters>,
    key: Vec<u8>,
    caps: Caps,
    /// The current object's values per dimension name, each at most `caps.dimension_values`.
    values: HashMap<&'static str, HashSet<Box<[u8]>>>,
    budget: Budget,
    /// Records capped, and how many for each reason (a record may have several).
    capped: u64,
    capped_reasons: BTreeMap<&'static str, u64>,
}

impl Aggregator {
    /// Starts an object: its caps, counted afresh.
    pub fn start_object(&mut self, caps: Caps) {
        self.caps = caps;
        self.values.clear();
        self.budget = Budget { used: 0, limit: caps.datums };
    }

    /// Sets the dimensions of the records that follow (one object's).
    pub fn set_object_dimensions(&mut self, dimensions: &[(&str, &str)]) {
        self.object_dimensions.clear();
        for (name, value) in dimensions {
            encode(&mut self.object_dimensions, name, value.as_bytes());
        }
    }

    /// Records capped, and by reason.
    pub fn capped(&self) -> (u64, &BTreeMap<&'static str, u64>) {
        (self.capped, &self.capped_reasons)
    }

    /// Counts the record under each non-empty prefix of its dimensions (or under none),
    /// and, under its first dimension, per `route` (`ROUTES`) and per failed verify status.
    pub fn add(&mut self, record: &Record<'_>, route: Option<&str>) {
        // Slots: the record's dimensions, then `Route`, then `VerifyStatus`.
        let mut dimensions: [(&'static str, &[u8]); MAX_DIMENSIONS + 2] = [("", b""); MAX_DIMENSIONS + 2];
        dimensions[..MAX_DIMENSIONS].copy_from_slice(&record.dimensions);
        let verify = match record.detail {
            Detail::Connection { verify_failure: Some(status), .. } => Some(status),
            _ => None,
        };
        dimensions[MAX_DIMENSIONS] = ("Route", route.map_or(&b""[..], str::as_bytes));
        dimensions[MAX_DIMENSIONS + 1] = ("VerifyStatus", verify.unwrap_or_default());
        let mut judged = [Judged::NotYet; MAX_DIMENSIONS + 2];
        let mut reasons = 0u8;
        let n = record.dimension_count;
        let first = n.min(1);
        for len in first..=n {
            let slots = [0, 1];
            if !self.count(record, &slots[..len], &dimensions, &mut judged, Set::Full, &mut reasons) {
                // Counted in no series when its first one is refused; else in the first only.
                reasons |= if len == first { NO_SERIES } else { FINER };
                if len == first {
                    return self.tally(reasons);
                }
                break;
            }
        }
        let extras = [
            (route.is_some(), MAX_DIMENSIONS, Set::Route),
            (verify.is_some(), MAX_DIMENSIONS + 1, Set::VerifyStatus),
        ];
        for (_, slot, set) in extras.into_iter().filter(|(present, ..)| *present) {
            let slots = [0, slot];
            if !self.count(record, &slots[1 - first..], &dimensions, &mut judged, set, &mut reasons) {
                reasons |= FINER;
            }
        }
        self.tally(reasons);
    }

    fn tally(&mut self, reasons: u8) {
        if reasons == 0 {
            return;
        }
        self.capped = self.capped.saturating_add(1);
        for (bit, reason) in REASONS {
            if reasons & bit != 0 {
                let count = self.capped_reasons.entry(reason).or_default();
                *count = count.saturating_add(1);
            }
        }
    }

    fn encode_key(&mut self, minute: i64, slots: &[usize], dimensions: &[(&str, &[u8])], judged: &[Judged]) {
        self.key.clear();
        self.key.extend_from_slice(&minute.to_be_bytes());
        self.key.extend_from_slice(&self.object_dimensions);
        for &slot in slots {
            let (name, value) = dimensions[slot];
            let value = if judged[slot] == Judged::Other { OTHER.as_bytes() } else { value };
            encode(&mut self.key, name, value);
        }
    }

    /// Counts the record in its series of `slots` (dimension slots), creating it within
    /// the caps; `false` if the object's datums are spent.
    fn count(
        &mut self,
        record: &Record<'_>,
        slots: &[usize],
        dimensions: &[(&'static str, &[u8])],
        judged: &mut [Judged],
        set: Set,
        reasons: &mut u8,
    ) -> bool {
        self.encode_key(record.minute, slots, dimensions, judged);
        if let Some(counters) = self.groups.get_mut(self.key.as_slice()) {
            // An existing series: its values are counted already.
            for &slot in slots {
                if judged[slot] == Judged::NotYet {
                    judged[slot] = Judged::Kept;
                }
            }
            count(counters, record, set, &mut self.budget, reasons);
            return true;
        }
        let mut changed = false;
        for &slot in slots {
            if judged[slot] == Judged::NotYet {
                let (name, value) = dimensions[slot];
                judged[slot] = self.judge(name, value, reasons);
                changed |= judged[slot] == Judged::Other;
            }
        }
        if changed {
            self.encode_key(record.minute, slots, dimensions, judged);
            if let Some(counters) = self.groups.get_mut(self.key.as_slice()) {
                count(counters, record, set, &mut self.budget, reasons);
                return true;
            }
        }
        if !self.budget.take(datums_of(record, set)) {
            return false;
        }
        let counters = self
            .groups
            .entry(self.key.as_slice().into())
            .or_insert_with(|| Counters { set, ..Counters::default() });
        count(counters, record, set, &mut self.budget, reasons);
        true
    }

    /// Whether a value new to a series keeps its name: within CloudWatch's length, and
    /// one of the object's first `MAX_DIMENSION_VALUES` of its dimension.
    fn judge(&mut self, name: &'static str, value: &[u8], reasons: &mut u8) -> Judged {
        if value.len() > MAX_DIMENSION_VALUE_LEN {
            *reasons |= LENGTH;
            return Judged::Other;
        }
        let seen = self.values.entry(name).or_default();
        if seen.contains(value) {
            Judged::Kept
        } else if seen.len() < self.caps.dimension_values {
            seen.insert(value.into());
            Judged::Kept
        } else {
            *reasons |= VALUES;
            Judged::Other
        }
    }

    /// What was counted, one [`Series`] per minute and dimension set, sorted by minute and
    /// dimensions.
    pub fn series(&self) -> Vec<Series> {
        let mut keys: Vec<&Box<[u8]>> = self.groups.keys().collect();
        keys.sort();
        let mut all = Vec::with_capacity(keys.len());
        for key in keys {
            let counters = &self.groups[key];
            let minute = i64::from_be_bytes(key[..8].try_into().expect("8-byte minute"));
            let mut dimensions = BTreeMap::new();
            for pair in key[8..].split(|b| *b == 0x1e).filter(|p| !p.is_empty()) {
                let mut parts = pair.splitn(2, |b| *b == 0x1f);
                let (name, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                dimensions.insert(
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                );
            }
            let mut metrics = Vec::new();
            let mut single = |name: &str, unit: Unit, total: u64| {
                metrics.push(Metric { name: name.to_owned(), unit, value: Aggregate::Total(total) })
            };
            let mut distributions: Vec<(&str, &Histogram)> = Vec::new();
            match (counters.kind, counters.set) {
                (Some(Kind::Request { http, target }), set) => {
                    single("RequestCount", Unit::Count, counters.requests);
                    if http {
                        for (class, n) in counters.status_classes.iter().enumerate() {
                            single(&format!("HTTPCode_{}XX_Count", class + 2), Unit::Count, *n);
                        }
                    }
                    match (target, set) {
                        (Some(target), Set::Route) => distributions.push((target, &counters.target)),
                        (None, Set::Route) => distributions.push(("Latency", &counters.latency)),
                        (Some(target), _) => distributions
                            .extend([("TotalProcessingTime", &counters.latency), (target, &counters.target)]),
                        (None, _) => distributions.push(("Latency", &counters.latency)),
                    }
                    if set == Set::Full {
                        if let Some(received) = counters.received_bytes {
                            single("BytesReceived", Unit::Bytes, received);
                        }
                        single("BytesSent", Unit::Bytes, counters.sent_bytes);
                    }
                }
                (Some(Kind::Flow), _) => {
                    single("FlowCount", Unit::Count, counters.requests);
                    for (name, unit, value) in [
                        ("RejectedFlowCount", Unit::Count, counters.rejected),
                        ("Packets", Unit::Count, counters.packets),
                        ("Bytes", Unit::Bytes, counters.bytes),
                    ] {
                        if let Some(value) = value {
                            single(name, unit, value);
                        }
                    }
                }
                (Some(Kind::Event), _) => {
                    single("RequestCount", Unit::Count, counters.requests);
                    single("ErrorCount", Unit::Count, counters.errors);
                }
                (Some(Kind::Connection), Set::VerifyStatus) => {
                    single("TLSHandshakeFailureCount", Unit::Count, counters.errors);
                }
                (Some(Kind::Connection), _) => {
                    single("ConnectionCount", Unit::Count, counters.requests);
                    single("TLSHandshakeFailureCount", Unit::Count, counters.errors);
                    distributions.push(("TLSHandshakeLatency", &counters.latency));
                }
                (None, _) => {}
            }
            metrics.extend(distributions.into_iter().map(|(name, histogram)| Metric {
                name: name.to_owned(),
                unit: Unit::Seconds,
                value: Aggregate::Distribution(histogram.clone()),
            }));
            all.push(Series { minute, dimensions, metrics });
        }
        all
    }
}

/// One minute of one dimension set as the aggregator counted it: the one source of the
/// metric set, which the CloudWatch API path cuts into datums ([`Series::datums`]) and the
/// EMF path writes as records (`emf.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    pub dimensions: BTreeMap<String, String>,
    /// Totals first, then distributions, each in the order the metrics table lists them.
    pub metrics: Vec<Metric>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    pub value: Aggregate,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// A count or a sum: requests, status classes, bytes, flows.
    Total(u64),
    /// The times of the minute's records, within the histogram's relative error.
    Distribution(Histogram),
}

impl Series {
    /// The series as CloudWatch datums: a total as one, a distribution cut into datums of
    /// at most `MAX_VALUES_PER_DATUM` values.
    pub fn datums(&self) -> Vec<Datum> {
        let mut datums = Vec::with_capacity(self.metrics.len());
        for metric in &self.metrics {
            match &metric.value {
                Aggregate::Total(total) => datums.push(Datum {
                    name: metric.name.clone(),
                    unit: metric.unit,
                    dimensions: self.dimensions.clone(),
                    timestamp: self.minute,
                    value: DatumValue::Single { value: *total as f64 },
                }),
                Aggregate::Distribution(histogram) => datums.extend(histogram.to_datums(
                    &metric.name,
                    metric.unit,
                    &self.dimensions,
                    self.minute,
                )),
            }
        }
        datums
    }
}

fn encode(key: &mut Vec<u8>, name: &str, value: &[u8]) {
    key.extend_from_slice(name.as_bytes());
    key.push(0x1f);
    let start = key.len();
    key.extend_from_slice(value);
    // A separator inside a value would split it into dimensions of its own (a forged
    // `AutoScalingGroupName`): it becomes DEL, which CloudWatch refuses as well, so the
    // datum is screened out and counted instead.
    if memchr::memchr2(0x1e, 0x1f, value).is_some() {
        for byte in &mut key[start..] {
            if *byte == 0x1e || *byte == 0x1f {
                *byte = 0x7f;
            }
        }
    }
    key.push(0x1e);
}

/// Records a time in a distribution, charging the datums a wider range can take.
fn sample(histogram: &mut Histogram, span: &mut Span, value: f64, budget: &mut Budget, reasons: &mut u8) {
    if value > 0.0 && value.is_finite() {
        let samples = span.samples + 1;
        // Only a wider range or every 150th sample can take another datum.
        let (min, max) = match span.samples {
            0 => (value, value),
            _ => (span.min.min(value), span.max.max(value)),
        };
        if min < span.min || max > span.max || samples % 150 == 0 || span.samples == 0 {
            let datums = span_datums(min, max, samples);
            if !budget.take(datums.saturating_sub(span.charged.max(1))) {
                *reasons |= SAMPLE;
                return;
            }
            span.charged = datums.max(span.charged).max(1);
        }
        *span = Span { min, max, samples, ..*span };
    }
    histogram.record(value);
}

fn add(total: &mut u64, amount: u64) {
    *total = total.saturating_add(amount);
}

fn count(counters: &mut Counters, record: &Record<'_>, set: Set, budget: &mut Budget, reasons: &mut u8) {
    add(&mut counters.requests, 1);
    let [latency_span, target_span] = &mut counters.spans;
    match (record.measure, record.detail) {
        (Measure::Event { error }, Detail::Connection { handshake, .. }) => {
            counters.kind.get_or_insert(Kind::Connection);
            add(&mut counters.errors, u64::from(error));
            if let Some(handshake) = handshake {
                sample(&mut counters.latency, latency_span, handshake, budget, reasons);
            }
        }
        (Measure::Request { http, status, latency, received, sent }, detail) => {
            let target = match detail {
                Detail::Target { metric, seconds } => {
                    if let Some(seconds) = seconds {
                        sample(&mut counters.target, target_span, seconds, budget, reasons);
                    }
                    Some(metric)
                }
                _ => None,
            };
            counters.kind.get_or_insert(Kind::Request { http, target });
            if let Some(status) = status
                && (200..600).contains(&status)
            {
                add(&mut counters.status_classes[usize::from(status / 100 - 2)], 1);
            }
            if let Some(received) = received {
                add(counters.received_bytes.get_or_insert(0), received);
            }
            add(&mut counters.sent_bytes, sent);
            // A route publishes one latency: the target's time where there is one.
            if let (Some(latency), false) = (latency, set == Set::Route && target.is_some()) {
                sample(&mut counters.latency, latency_span, latency, budget, reasons);
            }
        }
        (Measure::Flow { packets, bytes, rejected }, _) => {
            counters.kind.get_or_insert(Kind::Flow);
            for (total, value) in [(&mut counters.packets, packets), (&mut counters.bytes, bytes)] {
                if let Some(value) = value {
                    add(total.get_or_insert(0), value);
                }
            }
            if let Some(rejected) = rejected {
                add(counters.rejected.get_or_insert(0), u64::from(rejected));
            }
        }
        (Measure::Event { error }, _) => {
            counters.kind.get_or_insert(Kind::Event);
            add(&mut counters.errors, u64::from(error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The datums the API path publishes.
    fn published(aggregator: &Aggregator) -> Vec<Datum> {
        aggregator.series().iter().flat_map(Series::datums).collect()
    }

    fn value(datums: &[Datum], name: &str, dims: &[(&str, &str)]) -> Option<f64> {
        let dims: BTreeMap<String, String> =
            dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        datums.iter().find(|d| d.name == name && d.dimensions == dims).map(|d| match &d.value {
            DatumValue::Single { value } => *value,
            DatumValue::Distribution { counts, .. } => counts.iter().sum(),
        })
    }

    fn names(datums: &[Datum], dims: &[(&str, &str)]) -> Vec<String> {
        let dims: BTreeMap<String, String> =
            dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        datums.iter().filter(|d| d.dimensions == dims).map(|d| d.name.clone()).collect()
    }

    fn request(status: Option<u16>) -> Measure {
        Measure::Request { http: true, status, latency: Some(0.1), received: Some(5), sent: 7 }
    }

    #[test]
    fn a_separator_in_a_value_forges_no_dimension() {
        let mut aggregator = Aggregator::default();
        let forged = b"app/web/1\x1eAutoScalingGroupName\x1fweb";
        aggregator.add(&Record::new(60, request(Some(200))).with("LoadBalancer", forged), None);
        let datums = published(&aggregator);
        assert!(!datums.is_empty());
        for datum in &datums {
            assert_eq!(datum.dimensions.keys().collect::<Vec<_>>(), ["LoadBalancer"], "{datum:?}");
            assert_eq!(datum.dimensions["LoadBalancer"], "app/web/1\u{7f}AutoScalingGroupName\u{7f}web");
        }
        // CloudWatch would refuse such a value: none of these datums is published.
        assert!(shared::metrics::screen(datums, None).0.is_empty());
    }

    #[test]
    fn records_roll_up_under_each_dimension_prefix() {
        let mut aggregator = Aggregator::default();
        for (tg, status) in
            [(&b"tg/a"[..], Some(200)), (b"tg/a", Some(503)), (b"tg/b", None), (b"-", Some(404))]
        {
            aggregator.add(
                &Record::new(60, request(status)).with("LoadBalancer", b"app/x/1").with("TargetGroup", tg),
                None,
            );
        }
        let datums = published(&aggregator);
        let lb = [("LoadBalancer", "app/x/1")];
        assert_eq!(value(&datums, "RequestCount", &lb), Some(4.0));
        assert_eq!(value(&datums, "HTTPCode_5XX_Count", &lb), Some(1.0));
        assert_eq!(value(&datums, "HTTPCode_4XX_Count", &lb), Some(1.0));
        assert_eq!(value(&datums, "BytesReceived", &lb), Some(20.0));
        assert_eq!(value(&datums, "Latency", &lb), Some(4.0));
        let tg_a = [("LoadBalancer", "app/x/1"), ("TargetGroup", "tg/a")];
        assert_eq!(value(&datums, "RequestCount", &tg_a), Some(2.0));
        assert_eq!(
            value(&datums, "RequestCount", &[("LoadBalancer", "app/x/1"), ("TargetGroup", "-")]),
            None
        );
    }

    #[test]
    fn load_balancer_times_under_aws_names_and_routes_under_the_first_dimension() {
        let mut aggregator = Aggregator::default();
        let detail = |seconds| Detail::Target { metric: "TargetResponseTime", seconds };
        let lb = |r: Record<'static>| r.with("LoadBalancer", b"app/x/1").with("TargetGroup", b"tg/a");
        aggregator.add(&lb(Record::new(0, request(Some(200)))).detail(detail(Some(0.05))), Some("users"));
        aggregator.add(&lb(Record::new(0, request(Some(502)))).detail(detail(None)), Some("other"));
        let datums = published(&aggregator);
        let dims = [("LoadBalancer", "app/x/1")];
        assert_eq!(value(&datums, "TotalProcessingTime", &dims), Some(2.0));
        assert_eq!(value(&datums, "TargetResponseTime", &dims), Some(1.0), "no target time, no sample");
        assert_eq!(value(&datums, "Latency", &dims), None);
        let users = [("LoadBalancer", "app/x/1"), ("Route", "users")];
        assert_eq!(
            names(&datums, &users),
            [
                "RequestCount",
                "HTTPCode_2XX_Count",
                "HTTPCode_3XX_Count",
                "HTTPCode_4XX_Count",
                "HTTPCode_5XX_Count",
                "TargetResponseTime"
            ]
        );
        let other = [("LoadBalancer", "app/x/1"), ("Route", "other")];
        assert_eq!(value(&datums, "HTTPCode_5XX_Count", &other), Some(1.0));
        assert_eq!(value(&datums, "TargetResponseTime", &other), None);
    }

    #[test]
    fn connections_count_failures_per_verify_status() {
        let mut aggregator = Aggregator::default();
        for (handshake, failure) in [(Some(0.004), None), (None, Some(&b"Failed:CertificateExpired"[..]))] {
            let record = Record::new(0, Measure::Event { error: failure.is_some() })
                .with("LoadBalancer", b"app/x/1")
                .detail(Detail::Connection { handshake, verify_failure: failure });
            aggregator.add(&record, None);
        }
        let datums = published(&aggregator);
        let lb = [("LoadBalancer", "app/x/1")];
        assert_eq!(value(&datums, "ConnectionCount", &lb), Some(2.0));
        assert_eq!(value(&datums, "TLSHandshakeFailureCount", &lb), Some(1.0));
        assert_eq!(value(&datums, "TLSHandshakeLatency", &lb), Some(1.0));
        let status = [("LoadBalancer", "app/x/1"), ("VerifyStatus", "Failed:CertificateExpired")];
        assert_eq!(names(&datums, &status), ["TLSHandshakeFailureCount"]);
    }

    /// A value beyond the cap is `other` in every series of its record, so each series'
    /// finer ones add up to it.
    #[test]
    fn a_value_beyond_the_cap_is_other_in_every_series_of_its_record() {
        let mut aggregator = Aggregator::default();
        aggregator.start_object(Caps { dimension_values: 1, ..Caps::default() });
        for (lb, tg, route) in [(&b"app/a/1"[..], &b"tg/a"[..], "users"), (b"app/b/1", b"tg/a", "orders")] {
            let record = Record::new(0, request(Some(200))).with("LoadBalancer", lb).with("TargetGroup", tg);
            aggregator.add(&record, Some(route));
        }
        let datums = published(&aggregator);
        assert_eq!(value(&datums, "RequestCount", &[("LoadBalancer", "other")]), Some(1.0));
        let finer = [("LoadBalancer", "other"), ("TargetGroup", "tg/a")];
        assert_eq!(value(&datums, "RequestCount", &finer), Some(1.0), "tg/a is one of the values kept");
        let route = [("LoadBalancer", "other"), ("Route", "other")];
        assert_eq!(value(&datums, "RequestCount", &route), Some(1.0));
        assert_eq!(value(&datums, "RequestCount", &[("LoadBalancer", "app/b/1")]), None);
        assert_eq!(aggregator.capped(), (1, &BTreeMap::from([(CAPPED_VALUES, 1)])));
    }

    #[test]
    fn flows_events_and_object_dimensions() {
        let mut aggregator = Aggregator::default();
        aggregator.set_object_dimensions(&[("DistributionId", "E1")]);
        let flow = |packets, bytes, rejected| Measure::Flow { packets, bytes, rejected };
        aggregator.add(&Record::new(0, flow(Some(3), Some(100), Some(true))), None);
        aggregator.add(&Record::new(0, flow(Some(1), Some(50), Some(false))), None);
        let datums = published(&aggregator);
        let dims = [("DistributionId", "E1")];
        assert_eq!(value(&datums, "FlowCount", &dims), Some(2.0));
        assert_eq!(value(&datums, "RejectedFlowCount", &dims), Some(1.0));
        assert_eq!(value(&datums, "Packets", &dims), Some(4.0));
        assert_eq!(value(&datums, "Bytes", &dims), Some(150.0));

        // A format without packets, bytes or action: flows only, nothing made up.
        let mut aggregator = Aggregator::default();
        aggregator.add(&Record::new(0, flow(None, None, None)), None);
        assert_eq!(names(&published(&aggregator), &[]), ["FlowCount"]);

        let mut aggregator = Aggregator::default();
        aggregator.add(&Record::new(0, Measure::Event { error: true }).with("EventSource", b"s3"), None);
        let datums = published(&aggregator);
        assert_eq!(value(&datums, "ErrorCount", &[("EventSource", "s3")]), Some(1.0));
        assert_eq!(datums.len(), 2);
    }
}

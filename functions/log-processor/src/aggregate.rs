//! Per-minute, per-dimension aggregation of records into CloudWatch datums. The metric
//! names and what each means are in the README's metrics table; a metric added here
//! belongs there too, and in a fixture's expected values.

use std::collections::{BTreeMap, HashMap};

use shared::metrics::{Datum, DatumValue, Histogram, Unit};

use crate::formats::{Detail, Measure, Record};

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
    rejected: Option<u64>,
    packets: Option<u64>,
    bytes: Option<u64>,
    errors: u64,
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

/// Aggregates records by minute and dimensions. Keys are encoded into one byte string
/// (minute, then `name\x1fvalue\x1e` per dimension) in a reused buffer, so a record that
/// falls into an existing minute costs a hash lookup and no allocation.
#[derive(Debug, Default)]
pub struct Aggregator {
    /// Dimensions every record of the current object gets (CloudFront's `DistributionId`,
    /// from the key), encoded as in keys.
    object_dimensions: Vec<u8>,
    groups: HashMap<Box<[u8]>, Counters>,
    key: Vec<u8>,
}

impl Aggregator {
    /// Sets the dimensions of the records that follow (one object's).
    pub fn set_object_dimensions(&mut self, dimensions: &[(&str, &str)]) {
        self.object_dimensions.clear();
        for (name, value) in dimensions {
            encode(&mut self.object_dimensions, name, value.as_bytes());
        }
    }

    /// Counts the record under each non-empty prefix of its dimensions (or under none),
    /// and, under its first dimension, per `route` (`ROUTES`) and per failed verify status.
    pub fn add(&mut self, record: &Record<'_>, route: Option<&str>) {
        for len in record.dimension_count.min(1)..=record.dimension_count {
            self.count(record, &record.dimensions[..len], None, Set::Full);
        }
        let first = &record.dimensions[..record.dimension_count.min(1)];
        if let Some(route) = route {
            self.count(record, first, Some(("Route", route.as_bytes())), Set::Route);
        }
        if let Detail::Connection { verify_failure: Some(status), .. } = record.detail {
            self.count(record, first, Some(("VerifyStatus", status)), Set::VerifyStatus);
        }
    }

    fn count(
        &mut self,
        record: &Record<'_>,
        dimensions: &[(&'static str, &[u8])],
        extra: Option<(&str, &[u8])>,
        set: Set,
    ) {
        self.key.clear();
        self.key.extend_from_slice(&record.minute.to_be_bytes());
        self.key.extend_from_slice(&self.object_dimensions);
        for (name, value) in dimensions.iter().chain(&extra) {
            encode(&mut self.key, name, value);
        }
        let counters = match self.groups.get_mut(self.key.as_slice()) {
            Some(c) => c,
            None => self
                .groups
                .entry(self.key.as_slice().into())
                .or_insert_with(|| Counters { set, ..Counters::default() }),
        };
        count(counters, record, set);
    }

    /// The datums, sorted by minute, dimensions and metric name.
    pub fn datums(&self) -> Vec<Datum> {
        let mut keys: Vec<&Box<[u8]>> = self.groups.keys().collect();
        keys.sort();
        let mut datums = Vec::new();
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
            let mut single = |name: &str, unit: Unit, value: u64| {
                datums.push(Datum {
                    name: name.to_owned(),
                    unit,
                    dimensions: dimensions.clone(),
                    timestamp: minute,
                    value: DatumValue::Single { value: value as f64 },
                })
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
            for (name, histogram) in distributions {
                datums.extend(histogram.to_datums(name, Unit::Seconds, &dimensions, minute));
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

fn count(counters: &mut Counters, record: &Record<'_>, set: Set) {
    counters.requests += 1;
    match (record.measure, record.detail) {
        (Measure::Event { error }, Detail::Connection { handshake, .. }) => {
            counters.kind.get_or_insert(Kind::Connection);
            counters.errors += u64::from(error);
            if let Some(handshake) = handshake {
                counters.latency.record(handshake);
            }
        }
        (Measure::Request { http, status, latency, received, sent }, detail) => {
            let target = match detail {
                Detail::Target { metric, seconds } => {
                    if let Some(seconds) = seconds {
                        counters.target.record(seconds);
                    }
                    Some(metric)
                }
                _ => None,
            };
            counters.kind.get_or_insert(Kind::Request { http, target });
            if let Some(status) = status
                && (200..600).contains(&status)
            {
                counters.status_classes[usize::from(status / 100 - 2)] += 1;
            }
            if let Some(received) = received {
                *counters.received_bytes.get_or_insert(0) += received;
            }
            counters.sent_bytes += sent;
            // A route publishes one latency: the target's time where there is one.
            if let (Some(latency), false) = (latency, set == Set::Route && target.is_some()) {
                counters.latency.record(latency);
            }
        }
        (Measure::Flow { packets, bytes, rejected }, _) => {
            counters.kind.get_or_insert(Kind::Flow);
            for (total, value) in [(&mut counters.packets, packets), (&mut counters.bytes, bytes)] {
                if let Some(value) = value {
                    *total.get_or_insert(0) += value;
                }
            }
            if let Some(rejected) = rejected {
                *counters.rejected.get_or_insert(0) += u64::from(rejected);
            }
        }
        (Measure::Event { error }, _) => {
            counters.kind.get_or_insert(Kind::Event);
            counters.errors += u64::from(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let datums = aggregator.datums();
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
        let datums = aggregator.datums();
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
        let datums = aggregator.datums();
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
        let datums = aggregator.datums();
        let lb = [("LoadBalancer", "app/x/1")];
        assert_eq!(value(&datums, "ConnectionCount", &lb), Some(2.0));
        assert_eq!(value(&datums, "TLSHandshakeFailureCount", &lb), Some(1.0));
        assert_eq!(value(&datums, "TLSHandshakeLatency", &lb), Some(1.0));
        let status = [("LoadBalancer", "app/x/1"), ("VerifyStatus", "Failed:CertificateExpired")];
        assert_eq!(names(&datums, &status), ["TLSHandshakeFailureCount"]);
    }

    #[test]
    fn flows_events_and_object_dimensions() {
        let mut aggregator = Aggregator::default();
        aggregator.set_object_dimensions(&[("DistributionId", "E1")]);
        let flow = |packets, bytes, rejected| Measure::Flow { packets, bytes, rejected };
        aggregator.add(&Record::new(0, flow(Some(3), Some(100), Some(true))), None);
        aggregator.add(&Record::new(0, flow(Some(1), Some(50), Some(false))), None);
        let datums = aggregator.datums();
        let dims = [("DistributionId", "E1")];
        assert_eq!(value(&datums, "FlowCount", &dims), Some(2.0));
        assert_eq!(value(&datums, "RejectedFlowCount", &dims), Some(1.0));
        assert_eq!(value(&datums, "Packets", &dims), Some(4.0));
        assert_eq!(value(&datums, "Bytes", &dims), Some(150.0));

        // A format without packets, bytes or action: flows only, nothing made up.
        let mut aggregator = Aggregator::default();
        aggregator.add(&Record::new(0, flow(None, None, None)), None);
        assert_eq!(names(&aggregator.datums(), &[]), ["FlowCount"]);

        let mut aggregator = Aggregator::default();
        aggregator.add(&Record::new(0, Measure::Event { error: true }).with("EventSource", b"s3"), None);
        let datums = aggregator.datums();
        assert_eq!(value(&datums, "ErrorCount", &[("EventSource", "s3")]), Some(1.0));
        assert_eq!(datums.len(), 2);
    }
}

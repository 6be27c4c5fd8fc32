//! Per-minute, per-dimension aggregation of records into CloudWatch datums.

use std::collections::{BTreeMap, HashMap};

use shared::metrics::{Datum, DatumValue, Histogram, Unit};

use crate::formats::{Measure, Record};

#[derive(Clone, Debug, Default)]
struct Counters {
    /// What was counted (the first record's kind; one object holds one kind).
    kind: Option<Kind>,
    requests: u64,
    /// 2xx, 3xx, 4xx, 5xx by the status the client received.
    status_classes: [u64; 4],
    received_bytes: Option<u64>,
    sent_bytes: u64,
    latency: Histogram,
    rejected: u64,
    packets: u64,
    errors: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request { http: bool },
    Flow,
    Event,
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

    /// Counts the record under each non-empty prefix of its dimensions (or under none).
    pub fn add(&mut self, record: &Record<'_>) {
        for len in record.dimension_count.min(1)..=record.dimension_count {
            self.key.clear();
            self.key.extend_from_slice(&record.minute.to_be_bytes());
            self.key.extend_from_slice(&self.object_dimensions);
            for (name, value) in &record.dimensions[..len] {
                encode(&mut self.key, name, value);
            }
            let counters = match self.groups.get_mut(self.key.as_slice()) {
                Some(c) => c,
                None => self.groups.entry(self.key.as_slice().into()).or_default(),
            };
            count(counters, &record.measure);
        }
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
            match counters.kind {
                Some(Kind::Request { http }) => {
                    single("RequestCount", Unit::Count, counters.requests);
                    if http {
                        for (class, n) in counters.status_classes.iter().enumerate() {
                            single(&format!("HTTPCode_{}XX_Count", class + 2), Unit::Count, *n);
                        }
                    }
                    if let Some(received) = counters.received_bytes {
                        single("BytesReceived", Unit::Bytes, received);
                    }
                    single("BytesSent", Unit::Bytes, counters.sent_bytes);
                    datums.extend(counters.latency.to_datums("Latency", Unit::Seconds, &dimensions, minute));
                }
                Some(Kind::Flow) => {
                    single("FlowCount", Unit::Count, counters.requests);
                    single("RejectedFlowCount", Unit::Count, counters.rejected);
                    single("Packets", Unit::Count, counters.packets);
                    single("Bytes", Unit::Bytes, counters.sent_bytes);
                }
                Some(Kind::Event) => {
                    single("RequestCount", Unit::Count, counters.requests);
                    single("ErrorCount", Unit::Count, counters.errors);
                }
                None => {}
            }
        }
        datums
    }
}

fn encode(key: &mut Vec<u8>, name: &str, value: &[u8]) {
    key.extend_from_slice(name.as_bytes());
    key.push(0x1f);
    key.extend_from_slice(value);
    key.push(0x1e);
}

fn count(counters: &mut Counters, measure: &Measure) {
    counters.requests += 1;
    match *measure {
        Measure::Request { http, status, latency, received, sent } => {
            counters.kind.get_or_insert(Kind::Request { http });
            if let Some(status) = status
                && (200..600).contains(&status)
            {
                counters.status_classes[usize::from(status / 100 - 2)] += 1;
            }
            if let Some(received) = received {
                *counters.received_bytes.get_or_insert(0) += received;
            }
            counters.sent_bytes += sent;
            if let Some(latency) = latency {
                counters.latency.record(latency);
            }
        }
        Measure::Flow { packets, bytes, rejected } => {
            counters.kind.get_or_insert(Kind::Flow);
            counters.packets += packets;
            counters.sent_bytes += bytes;
            counters.rejected += u64::from(rejected);
        }
        Measure::Event { error } => {
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

    #[test]
    fn records_roll_up_under_each_dimension_prefix() {
        let mut aggregator = Aggregator::default();
        let request =
            |status| Measure::Request { http: true, status, latency: Some(0.1), received: Some(5), sent: 7 };
        for (tg, status) in
            [(&b"tg/a"[..], Some(200)), (b"tg/a", Some(503)), (b"tg/b", None), (b"-", Some(404))]
        {
            aggregator.add(
                &Record::new(60, request(status)).with("LoadBalancer", b"app/x/1").with("TargetGroup", tg),
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
    fn flows_events_and_object_dimensions() {
        let mut aggregator = Aggregator::default();
        aggregator.set_object_dimensions(&[("DistributionId", "E1")]);
        aggregator.add(&Record::new(0, Measure::Flow { packets: 3, bytes: 100, rejected: true }));
        aggregator.add(&Record::new(0, Measure::Flow { packets: 1, bytes: 50, rejected: false }));
        let datums = aggregator.datums();
        let dims = [("DistributionId", "E1")];
        assert_eq!(value(&datums, "FlowCount", &dims), Some(2.0));
        assert_eq!(value(&datums, "RejectedFlowCount", &dims), Some(1.0));
        assert_eq!(value(&datums, "Packets", &dims), Some(4.0));
        assert_eq!(value(&datums, "Bytes", &dims), Some(150.0));

        let mut aggregator = Aggregator::default();
        aggregator.add(&Record::new(0, Measure::Event { error: true }).with("EventSource", b"s3"));
        let datums = aggregator.datums();
        assert_eq!(value(&datums, "ErrorCount", &[("EventSource", "s3")]), Some(1.0));
        assert_eq!(datums.len(), 2);
    }
}

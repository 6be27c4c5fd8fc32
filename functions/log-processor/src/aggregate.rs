//! Per-minute, per-load-balancer aggregation of parsed entries into CloudWatch datums.

use std::collections::{BTreeMap, HashMap};

use shared::metrics::{Datum, DatumValue, Histogram, Unit};

use crate::alb::AlbEntry;

#[derive(Clone, Debug, Default)]
struct Counters {
    requests: u64,
    /// 2xx, 3xx, 4xx, 5xx by the status the client received.
    status_classes: [u64; 4],
    received_bytes: u64,
    sent_bytes: u64,
    latency: Histogram,
}

#[derive(Debug, Default)]
pub struct Aggregator {
    minutes: HashMap<(i64, Box<[u8]>), Counters>,
}

impl Aggregator {
    pub fn add(&mut self, entry: &AlbEntry<'_>) {
        // Entries of one object share a load balancer and arrive in time order, so the
        // lookup almost always hits; allocate the key only for a new minute.
        let key = (entry.minute, entry.load_balancer);
        let counters = match self.minutes.get_mut(&key as &dyn KeyView) {
            Some(c) => c,
            None => self.minutes.entry((key.0, key.1.into())).or_default(),
        };
        counters.requests += 1;
        if let Some(status) = entry.elb_status
            && (200..600).contains(&status)
        {
            counters.status_classes[usize::from(status / 100 - 2)] += 1;
        }
        counters.received_bytes += entry.received_bytes;
        counters.sent_bytes += entry.sent_bytes;
        if let Some(latency) = entry.latency {
            counters.latency.record(latency);
        }
    }

    /// The datums, sorted by time, load balancer and metric name.
    pub fn datums(&self) -> Vec<Datum> {
        let mut keys: Vec<_> = self.minutes.keys().collect();
        keys.sort();
        let mut datums = Vec::new();
        for key in keys {
            let counters = &self.minutes[key];
            let (minute, load_balancer) = (key.0, String::from_utf8_lossy(&key.1).into_owned());
            let dimensions = BTreeMap::from([("LoadBalancer".to_owned(), load_balancer)]);
            let count = |name: &str, unit: Unit, value: u64| Datum {
                name: name.to_owned(),
                unit,
                dimensions: dimensions.clone(),
                timestamp: minute,
                value: DatumValue::Single { value: value as f64 },
            };
            datums.push(count("RequestCount", Unit::Count, counters.requests));
            for (class, n) in counters.status_classes.iter().enumerate() {
                datums.push(count(&format!("HTTPCode_{}XX_Count", class + 2), Unit::Count, *n));
            }
            datums.push(count("BytesReceived", Unit::Bytes, counters.received_bytes));
            datums.push(count("BytesSent", Unit::Bytes, counters.sent_bytes));
            datums.extend(counters.latency.to_datums("Latency", Unit::Seconds, &dimensions, minute));
        }
        datums
    }
}

/// Lets the map be probed with a borrowed `(i64, &[u8])` instead of an owned key.
trait KeyView {
    fn key(&self) -> (i64, &[u8]);
}

impl KeyView for (i64, Box<[u8]>) {
    fn key(&self) -> (i64, &[u8]) {
        (self.0, &self.1)
    }
}

impl KeyView for (i64, &[u8]) {
    fn key(&self) -> (i64, &[u8]) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn KeyView + 'a> for (i64, Box<[u8]>) {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn KeyView + '_ {}

impl std::hash::Hash for dyn KeyView + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

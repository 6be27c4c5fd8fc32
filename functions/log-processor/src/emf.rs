//! `METRICS_MODE=emf`: the datums as CloudWatch Embedded Metric Format records on stdout,
//! which CloudWatch Logs turns into the same metrics without a PutMetricData call.
//!
//! EMF carries values but no counts, so a Latency distribution is written as its values
//! repeated by their counts, 100 to a record. Above [`MAX_SAMPLES`] samples per minute and
//! dimension set, the counts are scaled down in proportion: percentiles keep their
//! accuracy (the histogram's 1 % in value, 1/10,000 in rank) but Latency's SampleCount
//! no longer counts requests (RequestCount does).

use std::collections::BTreeMap;

use shared::emf::{MAX_VALUES_PER_METRIC, record_values};
use shared::metrics::{Datum, DatumValue, Unit};

pub const MAX_SAMPLES: f64 = 10_000.0;

type Key = (i64, Vec<(String, String)>);

#[derive(Default)]
struct Group {
    singles: Vec<(String, Vec<f64>, Unit)>,
    distributions: BTreeMap<String, (Unit, Vec<(f64, f64)>)>,
}

/// The EMF records for `datums`, one or more per minute and dimension set.
pub fn records(namespace: &str, datums: &[Datum]) -> Vec<String> {
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for datum in datums {
        let key = (datum.timestamp, datum.dimensions.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let group = groups.entry(key).or_default();
        match &datum.value {
            DatumValue::Single { value } => {
                group.singles.push((datum.name.clone(), vec![*value], datum.unit))
            }
            DatumValue::Distribution { values, counts } => {
                let entry = group.distributions.entry(datum.name.clone()).or_insert((datum.unit, Vec::new()));
                entry.1.extend(values.iter().copied().zip(counts.iter().copied()));
            }
        }
    }
    let mut out = Vec::new();
    for ((timestamp, dimensions), group) in groups {
        let dimensions: Vec<(&str, &str)> =
            dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let samples: Vec<(String, Unit, Vec<f64>)> = group
            .distributions
            .into_iter()
            .map(|(name, (unit, buckets))| (name, unit, expand(&buckets)))
            .collect();
        let chunks =
            samples.iter().map(|(_, _, s)| s.len().div_ceil(MAX_VALUES_PER_METRIC)).max().unwrap_or(0);
        for i in 0..chunks.max(1) {
            let mut metrics = if i == 0 { group.singles.clone() } else { Vec::new() };
            for (name, unit, values) in &samples {
                let chunk = values.chunks(MAX_VALUES_PER_METRIC).nth(i).unwrap_or_default();
                if !chunk.is_empty() {
                    metrics.push((name.clone(), chunk.to_vec(), *unit));
                }
            }
            let metrics: Vec<(&str, Vec<f64>, Unit)> =
                metrics.iter().map(|(n, v, u)| (n.as_str(), v.clone(), *u)).collect();
            out.push(record_values(namespace, &dimensions, &metrics, timestamp as u64 * 1000));
        }
    }
    out
}

/// Each value repeated by its count, scaled down to about [`MAX_SAMPLES`] in all (a
/// non-empty bucket keeps at least one sample, so the tails stay visible).
fn expand(buckets: &[(f64, f64)]) -> Vec<f64> {
    let total: f64 = buckets.iter().map(|(_, c)| c).sum();
    let scale = if total > MAX_SAMPLES { MAX_SAMPLES / total } else { 1.0 };
    buckets
        .iter()
        .flat_map(|(value, count)| {
            let n = if *count > 0.0 { ((count * scale).round() as usize).max(1) } else { 0 };
            std::iter::repeat_n(*value, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use shared::metrics::Histogram;

    use super::*;

    fn datums(latencies: impl Iterator<Item = f64>) -> Vec<Datum> {
        let dimensions = BTreeMap::from([("LoadBalancer".to_owned(), "app/x/1".to_owned())]);
        let mut histogram = Histogram::default();
        let mut n = 0;
        for latency in latencies {
            histogram.record(latency);
            n += 1;
        }
        let mut datums = vec![Datum {
            name: "RequestCount".into(),
            unit: Unit::Count,
            dimensions: dimensions.clone(),
            timestamp: 60,
            value: DatumValue::Single { value: f64::from(n) },
        }];
        datums.extend(histogram.to_datums("Latency", Unit::Seconds, &dimensions, 60));
        datums
    }

    fn latency_values(records: &[String]) -> Vec<f64> {
        records
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).unwrap())
            .flat_map(|v| match &v["Latency"] {
                Value::Array(values) => values.iter().map(|x| x.as_f64().unwrap()).collect(),
                Value::Number(x) => vec![x.as_f64().unwrap()],
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn small_distributions_are_exact_and_split_100_to_a_record() {
        let records = records("Ns", &datums((0..250).map(|i| 0.001 * f64::from(i % 5 + 1))));
        assert_eq!(records.len(), 3);
        let first: Value = serde_json::from_str(&records[0]).unwrap();
        assert_eq!(first["RequestCount"], 250.0);
        assert_eq!(first["LoadBalancer"], "app/x/1");
        assert_eq!(first["_aws"]["Timestamp"], 60_000);
        let second: Value = serde_json::from_str(&records[1]).unwrap();
        assert!(second.get("RequestCount").is_none(), "counted once");
        assert_eq!(latency_values(&records).len(), 250);
    }

    #[test]
    fn large_distributions_are_scaled_down_keeping_percentiles() {
        // 1,000,000 samples: 99 % at 10 ms, 1 % at 2 s.
        let latencies = (0..1_000_000).map(|i| if i % 100 == 0 { 2.0 } else { 0.01 });
        let values = latency_values(&records("Ns", &datums(latencies)));
        assert!((9_900..=10_100).contains(&values.len()), "{}", values.len());
        let slow = values.iter().filter(|v| **v > 1.0).count() as f64 / values.len() as f64;
        assert!((slow - 0.01).abs() < 0.001, "{slow}");
    }
}

//! `METRICS_MODE=emf`: the aggregator's series as CloudWatch Embedded Metric Format records
//! on stdout, which CloudWatch Logs turns into the same metrics without a PutMetricData
//! call. The records are written from the series themselves (totals and histograms), not
//! from the datums the API path cuts them into, so how PutMetricData is batched never
//! shapes them.
//!
//! EMF carries values but no counts, so a distribution is written as its values repeated by
//! their counts, 100 to a record. Above [`MAX_SAMPLES`] samples per minute and dimension
//! set, the counts are scaled down in proportion: percentiles keep their accuracy (the
//! histogram's 1 % in value, 1/10,000 in rank) but Latency's SampleCount no longer counts
//! requests (RequestCount does).
//!
//! Each metric is judged as the API path judges its datums (`shared::metrics::screen`, then
//! `provenance.rs`, then CloudWatch's window at the time of writing), and what is left out
//! is counted in the same unit, datums as the API path would cut them, so that an object's
//! outcome and `DatumsPublished` mean the same in both modes.

use shared::emf::{MAX_VALUES_PER_METRIC, record_values};
use shared::metrics::{
    MAX_VALUES_PER_DATUM, Screened, Unit, check_names, check_window, screen_distribution, screen_value,
};

use crate::aggregate::{Aggregate, Metric, Series};
use crate::provenance::Vouched;

pub const MAX_SAMPLES: f64 = 10_000.0;

/// What the records of an object carry.
#[derive(Debug, Default)]
pub struct Records {
    /// One EMF record per line.
    pub lines: Vec<String>,
    /// The datums the API path would have published for the metrics written.
    pub datums: usize,
}

/// The EMF records for `series`, one or more per minute and dimension set. Each metric is
/// judged alone: names, values, what `vouched` vouches for (`None`: nothing to compare)
/// and CloudWatch's window at `now`; what is left out is counted in `screened`.
pub fn records(
    namespace: &str,
    series: &[Series],
    vouched: Option<&Vouched>,
    now: i64,
    screened: &mut Screened,
) -> Records {
    let mut out = Records::default();
    for one in series {
        let mut totals: Vec<(&str, Vec<f64>, Unit)> = Vec::new();
        let mut samples: Vec<(&str, Unit, Vec<f64>)> = Vec::new();
        for metric in &one.metrics {
            let Some(value) = judge(metric, one, vouched, now, screened) else { continue };
            match value {
                Judged::Total(value) => {
                    out.datums += 1;
                    totals.push((&metric.name, vec![value], metric.unit));
                }
                Judged::Distribution(pairs) => {
                    out.datums += pairs.len().div_ceil(MAX_VALUES_PER_DATUM);
                    samples.push((&metric.name, metric.unit, expand(&pairs)));
                }
            }
        }
        if totals.is_empty() && samples.is_empty() {
            continue;
        }
        samples.sort_by(|a, b| a.0.cmp(b.0));
        let dimensions: Vec<(&str, &str)> =
            one.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let chunks =
            samples.iter().map(|(_, _, s)| s.len().div_ceil(MAX_VALUES_PER_METRIC)).max().unwrap_or(0);
        for i in 0..chunks.max(1) {
            // The totals once, in the first record: CloudWatch would add them up again.
            let mut metrics = if i == 0 { totals.clone() } else { Vec::new() };
            for (name, unit, values) in &samples {
                let chunk = values.chunks(MAX_VALUES_PER_METRIC).nth(i).unwrap_or_default();
                if !chunk.is_empty() {
                    metrics.push((name, chunk.to_vec(), *unit));
                }
            }
            out.lines.push(record_values(namespace, &dimensions, &metrics, one.minute as u64 * 1000));
        }
    }
    out
}

/// A metric's value as CloudWatch takes it.
enum Judged {
    Total(f64),
    /// (value, count) pairs.
    Distribution(Vec<(f64, f64)>),
}

/// The metric's value, or `None` when it is left out (counted in `screened`, in the datums
/// the API path would cut it into), judged in the API path's order.
fn judge(
    metric: &Metric,
    series: &Series,
    vouched: Option<&Vouched>,
    now: i64,
    screened: &mut Screened,
) -> Option<Judged> {
    // A distribution without a sample (no record had that time) is no datum at all.
    if let Aggregate::Distribution(histogram) = &metric.value
        && histogram.count() == 0
    {
        return None;
    }
    let datums = match &metric.value {
        Aggregate::Total(_) => 1,
        Aggregate::Distribution(histogram) => {
            histogram.values_and_counts().len().div_ceil(MAX_VALUES_PER_DATUM)
        }
    };
    if let Err(why) = check_names(&metric.name, &series.dimensions) {
        (0..datums).for_each(|_| screened.skip(why, true));
        return None;
    }
    let value = match &metric.value {
        Aggregate::Total(total) => Judged::Total(screen_value(*total as f64, screened)?),
        Aggregate::Distribution(histogram) => {
            let pairs = screen_distribution(histogram.values_and_counts(), screened);
            if pairs.is_empty() {
                return None;
            }
            Judged::Distribution(pairs)
        }
    };
    if let Some(Err(reason)) = vouched.map(|v| v.judge(&series.dimensions)) {
        (0..datums).for_each(|_| screened.skip_datum(reason));
        return None;
    }
    if let Err(why) = check_window(series.minute, now) {
        (0..datums).for_each(|_| screened.skip(why, true));
        return None;
    }
    Some(value)
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
    use std::collections::BTreeMap;

    use serde_json::{Value, json};
    use shared::metrics::{Datum, DatumValue, Histogram};

    use super::*;
    use crate::{Format, ReadOptions};

    /// 2026-11-30T12:00Z, and a `now` half an hour later.
    const MINUTE: i64 = 1_796_040_000;
    const NOW: i64 = MINUTE + 1800;

    fn series(dimensions: &[(&str, &str)], latencies: impl Iterator<Item = f64>) -> Series {
        let mut histogram = Histogram::default();
        let mut requests = 0;
        for latency in latencies {
            histogram.record(latency);
            requests += 1;
        }
        let total =
            |name: &str, unit, value| Metric { name: name.into(), unit, value: Aggregate::Total(value) };
        Series {
            minute: MINUTE,
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            metrics: vec![
                total("RequestCount", Unit::Count, requests),
                total("HTTPCode_5XX_Count", Unit::Count, 3),
                total("BytesSent", Unit::Bytes, 1 << 40),
                Metric {
                    name: "Latency".into(),
                    unit: Unit::Seconds,
                    value: Aggregate::Distribution(histogram),
                },
            ],
        }
    }

    const LB: (&str, &str) = ("LoadBalancer", "app/x/1");

    fn parse(lines: &[String]) -> Vec<Value> {
        lines.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
    }

    /// Every value written for `name`, across records.
    fn values(records: &[Value], name: &str) -> Vec<f64> {
        records
            .iter()
            .flat_map(|v| match &v[name] {
                Value::Array(values) => values.iter().map(|x| x.as_f64().unwrap()).collect(),
                Value::Number(x) => vec![x.as_f64().unwrap()],
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn a_series_is_written_with_its_names_dimensions_totals_and_distribution_counts() {
        // 250 requests: 50 each at 1, 2, 3, 4 and 5 ms.
        let one = series(&[LB], (0..250).map(|i| 0.001 * f64::from(i % 5 + 1)));
        let mut screened = Screened::default();
        let written = records("Ns", &[one], None, NOW, &mut screened);
        assert!(screened.is_empty(), "{screened:?}");
        assert_eq!(written.datums, 4, "three totals and a distribution of five values");
        let records = parse(&written.lines);
        assert_eq!(records.len(), 3, "250 samples, 100 to a record");

        let first = &records[0];
        assert_eq!(first["_aws"]["Timestamp"], MINUTE * 1000);
        let directive = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(directive["Dimensions"], json!([["LoadBalancer"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "RequestCount", "Unit": "Count"},
                {"Name": "HTTPCode_5XX_Count", "Unit": "Count"},
                {"Name": "BytesSent", "Unit": "Bytes"},
                {"Name": "Latency", "Unit": "Seconds"},
            ])
        );
        assert_eq!(first["LoadBalancer"], "app/x/1");
        assert_eq!(
            (first["RequestCount"].as_f64(), first["HTTPCode_5XX_Count"].as_f64()),
            (Some(250.0), Some(3.0))
        );
        assert_eq!(first["BytesSent"].as_f64(), Some((1u64 << 40) as f64));
        for later in &records[1..] {
            assert_eq!(later["LoadBalancer"], "app/x/1");
            assert!(later.get("RequestCount").is_none(), "totals once: {later}");
            assert_eq!(
                later["_aws"]["CloudWatchMetrics"][0]["Metrics"],
                json!([{"Name": "Latency", "Unit": "Seconds"}])
            );
        }

        // Each latency as many times as it was counted, within the histogram's 1 %.
        let latencies = values(&records, "Latency");
        assert_eq!(latencies.len(), 250);
        for ms in 1..=5 {
            let near =
                latencies.iter().filter(|v| (*v * 1000.0 - f64::from(ms)).abs() < 0.01 * f64::from(ms));
            assert_eq!(near.count(), 50, "{ms} ms");
        }
    }

    #[test]
    fn large_distributions_are_scaled_down_keeping_percentiles() {
        // 1,000,000 samples: 99 % at 10 ms, 1 % at 2 s.
        let latencies = (0..1_000_000).map(|i| if i % 100 == 0 { 2.0 } else { 0.01 });
        let written = records("Ns", &[series(&[LB], latencies)], None, NOW, &mut Screened::default());
        let records = parse(&written.lines);
        assert_eq!(values(&records, "RequestCount"), [1_000_000.0]);
        let values = values(&records, "Latency");
        assert!((9_900..=10_100).contains(&values.len()), "{}", values.len());
        let slow = values.iter().filter(|v| **v > 1.0).count() as f64 / values.len() as f64;
        assert!((slow - 0.01).abs() < 0.001, "{slow}");
    }

    #[test]
    fn metrics_are_judged_as_their_datums_would_be_and_what_is_left_out_is_counted() {
        let key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/\
            123456789012_elasticloadbalancing_us-east-1_app.x.1_20261130T1205Z_10.0.0.5_2abc9f.log.gz";
        let vouched = Vouched::new(key, Some(Format::Alb)).unwrap();
        let old = Series { minute: MINUTE - 30 * 24 * 3600, ..series(&[LB], [0.1].into_iter()) };
        let other = series(&[("LoadBalancer", "app/other/2")], [0.1].into_iter());
        let unprintable = series(&[("LoadBalancer", "app/x/\u{7f}")], [0.1].into_iter());
        // A time CloudWatch cannot take is left out of its distribution alone.
        let huge = series(&[LB], [0.1, 1e200].into_iter());
        // No record had a time: no Latency at all, and nothing to count.
        let timeless = series(&[LB], std::iter::empty());

        let mut screened = Screened::default();
        let written =
            records("Ns", &[old, other, unprintable, huge, timeless], Some(&vouched), NOW, &mut screened);
        let records = parse(&written.lines);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(values(&records, "RequestCount"), [2.0, 0.0]);
        let latencies = values(&records, "Latency");
        assert_eq!(latencies.len(), 1);
        assert!((latencies[0] - 0.1).abs() < 0.001, "{latencies:?}");
        assert_eq!(written.datums, 4 + 3);
        assert_eq!(screened.skipped_datums, 3 * 4);
        assert_eq!(screened.skipped_values, 1);
        assert_eq!(
            screened.reasons,
            BTreeMap::from([
                ("a load balancer or bucket other than the one the key names", 4),
                ("dimension value not 1 to 1024 printable ASCII characters", 4),
                ("timestamp older than CloudWatch's 14 days", 4),
                ("value of a magnitude over CloudWatch's 1.174271e108", 1),
            ])
        );
    }

    /// What the EMF records carry for a real log is what its datums carry: per minute,
    /// dimension set and metric, the same totals and the same distribution values and
    /// counts.
    #[test]
    fn records_carry_what_the_datums_carry() {
        type Key = (i64, BTreeMap<String, String>, String);
        for file in ["alb.log", "cloudfront.log", "vpcflow.log"] {
            let path = format!("{}/../../tests/fixtures/logs/{file}", env!("CARGO_MANIFEST_DIR"));
            let log = std::fs::read(path).unwrap();
            let options = ReadOptions { key: file, max_line_bytes: 1 << 20, ..Default::default() };
            let summary = crate::summarize(&log[..], &options).unwrap();
            assert!(!summary.series.is_empty(), "{file}");

            let mut from_datums: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
            for Datum { name, dimensions, timestamp, value, .. } in &summary.metrics {
                let values = from_datums.entry((*timestamp, dimensions.clone(), name.clone())).or_default();
                match value {
                    DatumValue::Single { value } => values.push(*value),
                    DatumValue::Distribution { values: v, counts } => {
                        for (value, count) in v.iter().zip(counts) {
                            values.extend(std::iter::repeat_n(*value, *count as usize));
                        }
                    }
                }
            }
            let now = summary.series[0].minute + 60;
            let mut screened = Screened::default();
            let written = records("Ns", &summary.series, None, now, &mut screened);
            assert!(screened.is_empty(), "{file}: {screened:?}");
            assert_eq!(written.datums, summary.metrics.len(), "{file}");
            let mut from_records: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
            for record in parse(&written.lines) {
                let directive = &record["_aws"]["CloudWatchMetrics"][0];
                let dimensions = directive["Dimensions"][0].as_array().unwrap();
                let dimensions: BTreeMap<String, String> = dimensions
                    .iter()
                    .map(|d| d.as_str().unwrap())
                    .map(|d| (d.to_owned(), record[d].as_str().unwrap().to_owned()))
                    .collect();
                let timestamp = record["_aws"]["Timestamp"].as_i64().unwrap() / 1000;
                for definition in directive["Metrics"].as_array().unwrap() {
                    let name = definition["Name"].as_str().unwrap();
                    let key = (timestamp, dimensions.clone(), name.to_owned());
                    from_records.entry(key).or_default().extend(values(std::slice::from_ref(&record), name));
                }
            }
            for values in from_datums.values_mut().chain(from_records.values_mut()) {
                values.sort_by(f64::total_cmp);
            }
            // serde_json reads a float back to within an ulp, not always exactly.
            assert_eq!(
                from_records.keys().collect::<Vec<_>>(),
                from_datums.keys().collect::<Vec<_>>(),
                "{file}"
            );
            for ((key, written), published) in from_records.iter().zip(from_datums.values()) {
                assert_eq!(written.len(), published.len(), "{file}: {key:?}");
                for (w, p) in written.iter().zip(published) {
                    assert!(
                        (w - p).abs() <= p.abs() * 1e-12,
                        "{file}: {key:?}: {written:?} != {published:?}"
                    );
                }
            }
        }
    }
}

//! Properties every format keeps, over logs made of real fixture lines and mutations of
//! them (`make fuzz` runs many more cases than `make test`):
//!
//! - every line is accounted for: records + malformed + skipped = lines read;
//! - an object's totals are the sum of its lines' contributions (each line summarized
//!   alone, after the format's header lines); this holds below the caps on hostile content
//!   (`Caps`), which logs of at most 12 lines never reach;
//! - every datum the processor would publish (after `shared::metrics::screen`) is one
//!   CloudWatch accepts, by an oracle written here from CloudWatch's limits: finite values
//!   within its range, positive counts, at most 30 dimensions, names and values of
//!   printable ASCII within its lengths; and every datum screened out is counted.
//!
//! CloudTrail is read as a document, not by line: its entries are accounted for instead.

use std::collections::BTreeMap;

use proptest::prelude::*;
use shared::metrics::{Datum, DatumValue, screen};

use crate::{Format, ReadOptions, Summary, summarize};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/logs/", $name))
    };
}

/// Each line-based format: its fixture, and how many leading lines are its header (kept
/// as they are, ahead of every log made here).
const LINE_FORMATS: [(Format, &str, usize); 7] = [
    (Format::Alb, fixture!("alb.log"), 0),
    (Format::Elb, fixture!("elb.log"), 0),
    (Format::Nlb, fixture!("nlb.log"), 0),
    (Format::CloudFront, fixture!("cloudfront.log"), 2),
    (Format::S3, fixture!("s3-access.log"), 0),
    (Format::VpcFlow, fixture!("vpcflow.log"), 1),
    (Format::JsonLines, fixture!("app.jsonl"), 0),
];

fn read(format: Format, text: &[u8]) -> Summary {
    let options = ReadOptions {
        key: "invariants.log",
        format: Some(format),
        max_line_bytes: 1 << 16,
        vpc_interface_dimension: true,
        cancel: None,
    };
    summarize(text, &options).expect("an in-memory log reads to its end")
}

/// The lines of `text` (each ends in a line break), without their breaks; blank ones too.
fn lines_of(text: &[u8]) -> Vec<&[u8]> {
    match text.strip_suffix(b"\n") {
        Some(text) => text.split(|&b| b == b'\n').collect(),
        None => Vec::new(),
    }
}

/// Per metric name, dimensions and minute: the sum of single values, or of a
/// distribution's counts.
fn totals(metrics: &[Datum]) -> BTreeMap<(String, String, i64), f64> {
    let mut totals = BTreeMap::new();
    for datum in metrics {
        let key = (datum.name.clone(), format!("{:?}", datum.dimensions), datum.timestamp);
        let amount = match &datum.value {
            DatumValue::Single { value } => *value,
            DatumValue::Distribution { counts, .. } => counts.iter().sum(),
        };
        *totals.entry(key).or_insert(0.0) += amount;
    }
    totals
}

/// CloudWatch's limits on a datum (PutMetricData, MetricDatum and Dimension).
fn acceptable(datum: &Datum) -> Result<(), String> {
    let in_range =
        |v: f64| v == 0.0 || (v.is_finite() && (8.515_920e-109..=1.174_271e108).contains(&v.abs()));
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b));
    match &datum.value {
        DatumValue::Single { value } if !in_range(*value) => return Err(format!("value {value}")),
        DatumValue::Distribution { values, counts } => {
            if values.len() != counts.len() || values.is_empty() || values.len() > 150 {
                return Err(format!("{} values, {} counts", values.len(), counts.len()));
            }
            if let Some(v) = values.iter().find(|v| !in_range(**v)) {
                return Err(format!("value {v}"));
            }
            if let Some(c) = counts.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
                return Err(format!("count {c}"));
            }
        }
        DatumValue::Single { .. } => {}
    }
    if !printable(&datum.name) || datum.name.len() > 255 {
        return Err(format!("metric name {:?}", datum.name));
    }
    if datum.dimensions.len() > 30 {
        return Err(format!("{} dimensions", datum.dimensions.len()));
    }
    for (name, value) in &datum.dimensions {
        if !printable(name) || name.len() > 255 || name.starts_with(':') {
            return Err(format!("dimension name {name:?}"));
        }
        if !printable(value) || value.len() > 1024 {
            return Err(format!("dimension {name} value {value:?}"));
        }
    }
    Ok(())
}

/// A log of the format's header and `picks` of its data lines, each mutated by `edits`
/// (position, byte) where given.
fn make_log(fixture: &str, header: usize, picks: &[(usize, Vec<(usize, u8)>)]) -> (Vec<u8>, Vec<u8>) {
    let lines: Vec<&str> = fixture.lines().collect();
    let mut head = Vec::new();
    for line in &lines[..header] {
        head.extend_from_slice(line.as_bytes());
        head.push(b'\n');
    }
    let data = &lines[header..];
    let mut body = Vec::new();
    for (pick, edits) in picks {
        let mut line = data[pick % data.len()].as_bytes().to_vec();
        let len = line.len();
        for (at, byte) in edits.iter().filter(|_| len > 0) {
            line[at % len] = *byte;
        }
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    (head, body)
}

fn check(format: Format, head: &[u8], body: &[u8]) -> Result<(), TestCaseError> {
    let whole = read(format, &[head, body].concat());
    let header = read(format, head);
    let lines = lines_of(body);
    let counted = whole.records + whole.malformed + whole.skipped;
    let header_counted = header.records + header.malformed + header.skipped;
    prop_assert_eq!(counted, header_counted + lines.len() as u64, "{:?}: every line accounted for", format);

    let mut sum = (0, 0, 0);
    let mut sum_totals: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    for line in &lines {
        let alone = read(format, &[head, line, b"\n"].concat());
        sum.0 += alone.records;
        sum.1 += alone.malformed;
        sum.2 += alone.skipped - header.skipped;
        for (key, amount) in totals(&alone.metrics) {
            *sum_totals.entry(key).or_insert(0.0) += amount;
        }
    }
    prop_assert_eq!((whole.records, whole.malformed, whole.skipped - header.skipped), sum, "{:?}", format);
    let whole_totals = totals(&whole.metrics);
    prop_assert_eq!(whole_totals.keys().collect::<Vec<_>>(), sum_totals.keys().collect::<Vec<_>>());
    for (key, amount) in &whole_totals {
        let expected = sum_totals[key];
        prop_assert!(
            (amount - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{key:?}: {amount} != {expected}"
        );
    }
    published_are_acceptable(&whole.metrics)
}

/// What screening keeps is acceptable, and what it leaves out is counted.
fn published_are_acceptable(metrics: &[Datum]) -> Result<(), TestCaseError> {
    let (kept, screened) = screen(metrics.to_vec(), None);
    prop_assert_eq!(kept.len() as u64 + screened.skipped_datums, metrics.len() as u64);
    for datum in &kept {
        prop_assert!(acceptable(datum).is_ok(), "{:?} in {datum:?}", acceptable(datum));
    }
    Ok(())
}

/// A mutation: a few (position, byte) edits, or none (the real line).
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop_oneof![Just(Vec::new()), proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)]
}

proptest! {
    #[test]
    fn every_line_format_keeps_its_invariants(
        format in 0..LINE_FORMATS.len(),
        picks in proptest::collection::vec((any::<usize>(), edits()), 0..12),
    ) {
        let (format, fixture, header) = LINE_FORMATS[format];
        let (head, body) = make_log(fixture, header, &picks);
        // A log whose first bytes are a compression magic is read as compressed.
        prop_assume!(!body.starts_with(&[0x1f, 0x8b]) && !body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
        check(format, &head, &body)?;
    }

    #[test]
    fn every_cloudtrail_entry_is_accounted_for(
        picks in proptest::collection::vec((any::<usize>(), 0..4usize), 0..12),
    ) {
        let document: serde_json::Value = serde_json::from_str(fixture!("cloudtrail.json")).unwrap();
        let events = document["Records"].as_array().unwrap();
        let entries: Vec<serde_json::Value> = picks
            .iter()
            .map(|(pick, damage)| {
                let mut event = events[pick % events.len()].clone();
                match damage {
                    0 => {}
                    1 => { event.as_object_mut().unwrap().remove("eventSource"); }
                    2 => event["eventTime"] = serde_json::json!(12),
                    _ => event = serde_json::json!(["not", "an", "event"]),
                }
                event
            })
            .collect();
        let text = serde_json::json!({"Records": entries}).to_string();
        let summary = read(Format::CloudTrail, text.as_bytes());
        prop_assert_eq!(summary.records + summary.malformed + summary.skipped, entries.len() as u64);
        published_are_acceptable(&summary.metrics)?;
    }
}

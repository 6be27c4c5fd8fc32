//! CloudTrail log files: one JSON document, `{"Records": [event, ...]}`, read as a stream so
//! a large file never sits in memory whole. Each event counts as a request in the minute of
//! its `eventTime`, an error when it has an `errorCode`. Dimension: `EventSource`.
//! Insights events (`eventType` `AwsCloudTrailInsight`: an unusual rate of some API call,
//! whose source is inside `insightDetails`) describe calls already counted: skipped.

use std::fmt;
use std::io::Read;

use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Measure, Parsed, Record};
use crate::fields::iso8601_minute;

/// Streams the events of a CloudTrail document to `on`, one at a time.
pub fn read(reader: impl Read, on: &mut dyn FnMut(Parsed<'_>)) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    deserializer.deserialize_map(Document { on })?;
    deserializer.end()
}

fn event(value: &Value, on: &mut dyn FnMut(Parsed<'_>)) {
    if value.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight") {
        return on(Parsed::Skipped("CloudTrail Insights event"));
    }
    let time = value.get("eventTime").and_then(Value::as_str);
    let source = value.get("eventSource").and_then(Value::as_str);
    match (time.and_then(|t| iso8601_minute(t.as_bytes())), source) {
        (Some(minute), Some(source)) => {
            let error = value.get("errorCode").is_some_and(|c| !c.is_null());
            on(Parsed::Record(
                Record::new(minute, Measure::Event { error }).with("EventSource", source.as_bytes()),
            ))
        }
        (None, _) => on(Parsed::Malformed("no eventTime")),
        (_, None) => on(Parsed::Malformed("no eventSource")),
    }
}

struct Document<'f> {
    on: &'f mut dyn FnMut(Parsed<'_>),
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail document with Records")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                map.next_value_seed(Events { on: &mut *self.on })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Events<'f> {
    on: &'f mut dyn FnMut(Parsed<'_>),
}

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            event(&value, self.on);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (minute, event source, error) per event, the malformed count, and the result.
    type Collected = (Vec<(i64, String, bool)>, usize, Result<(), serde_json::Error>);

    fn collect(doc: &str) -> Collected {
        collect_skipping(doc, &mut Vec::new())
    }

    fn collect_skipping(doc: &str, skipped: &mut Vec<&'static str>) -> Collected {
        let (mut records, mut malformed) = (Vec::new(), 0);
        let result = read(doc.as_bytes(), &mut |parsed| match parsed {
            Parsed::Record(r) => {
                let Measure::Event { error } = r.measure else { panic!() };
                records.push((r.minute, String::from_utf8_lossy(r.dimensions[0].1).into_owned(), error))
            }
            Parsed::Malformed(_) => malformed += 1,
            Parsed::Skipped(reason) => skipped.push(reason),
        });
        (records, malformed, result)
    }

    #[test]
    fn streams_events() {
        let doc = r#"{"Records": [
            {"eventTime": "2024-05-01T10:00:05Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"},
            {"eventTime": "2024-05-01T10:01:05Z", "eventSource": "ec2.amazonaws.com", "errorCode": "AccessDenied"},
            {"eventSource": "ec2.amazonaws.com"}
        ], "other": {"ignored": [1, 2]}}"#;
        let (records, malformed, result) = collect(doc);
        result.unwrap();
        assert_eq!(
            records,
            [
                (1_714_557_600, "s3.amazonaws.com".into(), false),
                (1_714_557_660, "ec2.amazonaws.com".into(), true)
            ]
        );
        assert_eq!(malformed, 1);
    }

    #[test]
    fn insights_events_are_skipped_with_their_reason() {
        // Shaped as the CloudTrail user guide's Insights event: no top-level eventSource.
        let doc = r#"{"Records": [
            {"eventVersion": "1.08", "eventTime": "2026-11-30T12:00:00Z", "eventType": "AwsCloudTrailInsight",
             "eventCategory": "Insight", "sharedEventID": "4c2a9a7e-0000-4000-8000-000000000001",
             "insightDetails": {"state": "Start", "eventSource": "dynamodb.amazonaws.com",
                                "eventName": "PutItem", "insightType": "ApiCallRateInsight"}},
            {"eventTime": "2026-11-30T12:00:10Z", "eventSource": "dynamodb.amazonaws.com", "eventType": "AwsApiCall"}
        ]}"#;
        let mut skipped = Vec::new();
        let (records, malformed, result) = collect_skipping(doc, &mut skipped);
        result.unwrap();
        assert_eq!((records.len(), malformed), (1, 0));
        assert_eq!(skipped, ["CloudTrail Insights event"]);
    }

    #[test]
    fn a_broken_document_is_an_error_after_the_events_before_it() {
        let (records, _, result) =
            collect(r#"{"Records": [{"eventTime": "2024-05-01T10:00:05Z", "eventSource": "s"}, {"#);
        assert_eq!(records.len(), 1);
        assert!(result.unwrap_err().is_eof());
    }
}

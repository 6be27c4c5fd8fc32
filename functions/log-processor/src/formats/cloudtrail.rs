//! CloudTrail log files: one JSON document, `{"Records": [event, ...]}`, read as a stream so
//! a large file never sits in memory whole. Each event counts as a request in the minute of
//! its `eventTime`, an error when it has an `errorCode`. Dimension: `EventSource`.
//! Insights events (`eventType` `AwsCloudTrailInsight`: an unusual rate of some API call,
//! whose source is inside `insightDetails`) describe calls already counted: skipped.
//!
//! Bounded (hostile input): the document's structure is scanned here, each event's bytes
//! kept up to a limit (`MAX_LINE_BYTES`) and read into a typed [`Event`] of borrowed
//! fields. An event over the limit is skipped unkept, a broken one is malformed, and
//! reading goes on with the next; only a broken document structure ends it.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Measure, Parsed, Record};
use crate::fields::iso8601_minute;

/// Why a document could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{what} at byte {offset}")]
    Syntax { what: &'static str, offset: u64 },
}

impl Error {
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io(_))
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The fields read of an event; the others are skipped unkept.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "eventTime", default, borrow, deserialize_with = "text")]
    time: Option<Cow<'a, str>>,
    #[serde(rename = "eventSource", default, borrow, deserialize_with = "text")]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "eventType", default, borrow, deserialize_with = "text")]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "errorCode", default)]
    error_code: Option<IgnoredAny>,
}

/// A string, or `None` for any other value.
fn text<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    deserializer.deserialize_any(Text)
}

/// Streams the events of a CloudTrail document to `on`, one at a time; an event over
/// `max_event_bytes` is malformed.
pub fn read(
    reader: impl BufRead,
    max_event_bytes: usize,
    on: &mut dyn FnMut(Parsed<'_>),
) -> Result<(), Error> {
    let mut scanner = Scanner { inner: reader, offset: 0 };
    let mut buffer = Vec::new();
    scanner.skip_whitespace()?;
    scanner.expect(b'{', "not a JSON object")?;
    loop {
        scanner.skip_whitespace()?;
        if scanner.peek()? == Some(b'}') {
            scanner.advance(1);
            break;
        }
        if scanner.peek()? != Some(b'"') {
            return Err(scanner.syntax("expected a key"));
        }
        scanner.value(&mut buffer, 64)?;
        let records = buffer == b"\"Records\""
            || (buffer.contains(&b'\\')
                && serde_json::from_slice::<String>(&buffer).is_ok_and(|k| k == "Records"));
        scanner.skip_whitespace()?;
        scanner.expect(b':', "expected a colon")?;
        scanner.skip_whitespace()?;
        if records {
            events(&mut scanner, &mut buffer, max_event_bytes, on)?;
        } else {
            scanner.value(&mut buffer, 0)?;
        }
        scanner.skip_whitespace()?;
        match scanner.peek()? {
            Some(b',') => scanner.advance(1),
            Some(b'}') => {
                scanner.advance(1);
                break;
            }
            _ => return Err(scanner.syntax("expected a comma or the end of the document")),
        }
    }
    scanner.skip_whitespace()?;
    match scanner.peek()? {
        None => Ok(()),
        Some(_) => Err(scanner.syntax("trailing characters")),
    }
}

fn events(
    scanner: &mut Scanner<impl BufRead>,
    buffer: &mut Vec<u8>,
    max_event_bytes: usize,
    on: &mut dyn FnMut(Parsed<'_>),
) -> Result<(), Error> {
    scanner.expect(b'[', "Records is not an array")?;
    scanner.skip_whitespace()?;
    if scanner.peek()? == Some(b']') {
        scanner.advance(1);
        return Ok(());
    }
    loop {
        scanner.skip_whitespace()?;
        match scanner.value(buffer, max_event_bytes)? {
            true => event(buffer, on),
            false => on(Parsed::Malformed("event over MAX_LINE_BYTES")),
        }
        scanner.skip_whitespace()?;
        match scanner.peek()? {
            Some(b',') => scanner.advance(1),
            Some(b']') => {
                scanner.advance(1);
                return Ok(());
            }
            _ => return Err(scanner.syntax("expected a comma or the end of Records")),
        }
    }
}

fn event(bytes: &[u8], on: &mut dyn FnMut(Parsed<'_>)) {
    if bytes.first() != Some(&b'{') {
        return on(Parsed::Malformed("event not a JSON object"));
    }
    let Ok(event) = serde_json::from_slice::<Event>(bytes) else {
        return on(Parsed::Malformed("invalid JSON event"));
    };
    if event.kind.as_deref() == Some("AwsCloudTrailInsight") {
        return on(Parsed::Skipped("CloudTrail Insights event"));
    }
    match (event.time.and_then(|t| iso8601_minute(t.as_bytes())), event.source) {
        (Some(minute), Some(source)) => on(Parsed::Record(
            Record::new(minute, Measure::Event { error: event.error_code.is_some() })
                .with("EventSource", source.as_bytes()),
        )),
        (None, _) => on(Parsed::Malformed("no eventTime")),
        (_, None) => on(Parsed::Malformed("no eventSource")),
    }
}

/// JSON structure over a byte stream: whitespace, single bytes, and whole values (strings
/// with escapes, nested containers, scalars) kept up to a limit.
struct Scanner<R> {
    inner: R,
    offset: u64,
}

impl<R: BufRead> Scanner<R> {
    fn syntax(&self, what: &'static str) -> Error {
        Error::Syntax { what, offset: self.offset }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.inner.fill_buf()?.first().copied())
    }

    fn advance(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Error> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.advance(1);
                Ok(())
            }
            _ => Err(self.syntax(what)),
        }
    }

    fn skip_whitespace(&mut self) -> io::Result<()> {
        loop {
            let buffer = self.inner.fill_buf()?;
            let blanks = buffer.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count();
            let whole = blanks == buffer.len() && blanks > 0;
            self.advance(blanks);
            if !whole {
                return Ok(());
            }
        }
    }

    /// One value into `out` if it is at most `max` bytes (`true`), else skipped, `out`
    /// left empty (`false`). Inside, structure is only counted: the value is checked when
    /// parsed.
    fn value(&mut self, out: &mut Vec<u8>, max: usize) -> Result<bool, Error> {
        out.clear();
        let mut fits = true;
        let (mut depth, mut in_string, mut escaped, mut started) = (0u64, false, false, false);
        let scalar = !matches!(self.peek()?, Some(b'"' | b'{' | b'['));
        loop {
            let buffer = self.inner.fill_buf()?;
            if buffer.is_empty() {
                return match (scalar && started, fits) {
                    (true, fits) => Ok(fits),
                    _ => Err(self.syntax("unexpected end of the document")),
                };
            }
            let mut end = None;
            for (i, &b) in buffer.iter().enumerate() {
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => {
                            in_string = false;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' if scalar => {
                        end = Some(i);
                        break;
                    }
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
                started = true;
            }
            let n = end.unwrap_or(buffer.len());
            if fits && out.len() + n <= max {
                out.extend_from_slice(&buffer[..n]);
            } else if fits {
                fits = false;
                out.clear();
            }
            started |= n > 0;
            self.advance(n);
            if end.is_some() {
                if n == 0 && out.is_empty() && fits && !started {
                    return Err(self.syntax("expected a value"));
                }
                return Ok(fits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (minute, event source, error) per event, the malformed count, and the result.
    type Collected = (Vec<(i64, String, bool)>, usize, Result<(), Error>);

    fn collect(doc: &str) -> Collected {
        collect_skipping(doc, &mut Vec::new())
    }

    fn collect_skipping(doc: &str, skipped: &mut Vec<&'static str>) -> Collected {
        let (mut records, mut malformed) = (Vec::new(), 0);
        let result = read(doc.as_bytes(), 1 << 20, &mut |parsed| match parsed {
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
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Syntax { what: "unexpected end of the document", .. }), "{error}");
        for broken in [r#"["Records"]"#, r#"{"Records": {}}"#, r#"{"Records": [1,]}"#, r#"{"Records": []} x"#]
        {
            assert!(matches!(collect(broken).2, Err(Error::Syntax { .. })), "{broken}");
        }
    }

    /// The hostile case: one huge string. It is never kept: an event over the limit is
    /// malformed, one elsewhere skipped, and the events after it are read.
    #[test]
    fn an_event_over_the_limit_is_malformed_and_the_next_is_read() {
        let huge = "x".repeat(300_000);
        let good = r#"{"eventTime": "2024-05-01T10:00:05Z", "eventSource": "s3.amazonaws.com"}"#;
        let doc = format!(
            r#"{{"Other": "{huge}", "Records": [{{"eventTime": "2024-05-01T10:00:05Z", "eventSource": "{huge}"}}, {good}, {{"eventName": ["{huge}", {{"a": "\"]}}"}}]}}, {good}]}}"#
        );
        let mut reasons = Vec::new();
        let result = read(doc.as_bytes(), 1000, &mut |parsed| {
            reasons.push(match parsed {
                Parsed::Record(r) => String::from_utf8_lossy(r.dimensions[0].1).into_owned(),
                Parsed::Malformed(why) | Parsed::Skipped(why) => why.to_owned(),
            })
        });
        result.unwrap();
        assert_eq!(
            reasons,
            [
                "event over MAX_LINE_BYTES",
                "s3.amazonaws.com",
                "event over MAX_LINE_BYTES",
                "s3.amazonaws.com"
            ]
        );
    }

    #[test]
    fn fields_of_other_types_and_broken_events_are_malformed_alone() {
        let doc = r#"{"Records": [
            {"eventTime": 12, "eventSource": "s"},
            {"eventTime": "2024-05-01T10:00:05Z", "eventSource": {"nested": [1, 2]}},
            ["not", "an", "event"],
            {"eventTime": "2024-05-01T10:00:05Z", "eventSource": "s", "eventSource": "t"},
            {"eventTime": "2024-05-01T10:00:05Z", "eventSource": "s\u0033", "errorCode": null}
        ]}"#;
        let (records, malformed, result) = collect(doc);
        result.unwrap();
        assert_eq!(records, [(1_714_557_600, "s3".into(), false)]);
        assert_eq!(malformed, 4);
    }
}

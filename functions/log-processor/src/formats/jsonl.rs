//! JSON lines: one object per line, from applications that log requests as JSON. Fields read
//! (others ignored): the time (`timestamp`, `time` or `@timestamp`: ISO-8601, or Unix
//! seconds or milliseconds), `status` (or `status_code`, `statusCode`), `latency` in seconds
//! (or `duration`, `request_time`), `bytes_sent` (or `bytes`) and `bytes_received`.

use serde::Deserialize;
use serde_json::Value;

use super::{Measure, Parsed, Record};
use crate::fields::iso8601_minute;

#[derive(Deserialize)]
struct Line {
    #[serde(alias = "time", alias = "@timestamp")]
    timestamp: Option<Value>,
    #[serde(alias = "status_code", alias = "statusCode")]
    status: Option<Value>,
    #[serde(alias = "duration", alias = "request_time")]
    latency: Option<f64>,
    #[serde(alias = "bytes")]
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
}

/// The start of the minute of an ISO-8601 string or a Unix time in seconds or milliseconds.
pub fn minute_of(time: &Value) -> Option<i64> {
    let seconds = match time {
        Value::String(s) => return iso8601_minute(s.as_bytes()),
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    // Anything past the year 5138 in seconds is taken as milliseconds.
    let seconds = if seconds > 1e11 { seconds / 1000.0 } else { seconds };
    seconds.is_finite().then(|| (seconds as i64).div_euclid(60) * 60)
}

pub fn parse(line: &[u8]) -> Parsed<'_> {
    let Ok(line) = serde_json::from_slice::<Line>(line) else {
        return Parsed::Malformed("not a JSON object");
    };
    let Some(minute) = line.timestamp.as_ref().and_then(minute_of) else {
        return Parsed::Malformed("no timestamp");
    };
    let status = match &line.status {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => return Parsed::Malformed("bad status"),
    };
    let Ok(status) =
        status.map(|s| u16::try_from(s).ok().filter(|s| (100..600).contains(s)).ok_or(())).transpose()
    else {
        return Parsed::Malformed("bad status");
    };
    let latency = line.latency.filter(|l| l.is_finite() && *l >= 0.0);
    let measure = Measure::Request {
        http: true,
        status,
        latency,
        received: line.bytes_received,
        sent: line.bytes_sent.unwrap_or(0),
    };
    Parsed::Record(Record::new(minute, measure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_field_names() {
        let Parsed::Record(r) =
            parse(br#"{"time": "2024-05-01T10:00:59Z", "status": 502, "duration": 0.25, "bytes": 10, "path": "/x"}"#)
        else {
            panic!()
        };
        assert_eq!(r.minute, 1_714_557_600);
        assert_eq!(
            r.measure,
            Measure::Request { http: true, status: Some(502), latency: Some(0.25), received: None, sent: 10 }
        );
        let Parsed::Record(r) = parse(br#"{"@timestamp": 1714557659123, "statusCode": "200"}"#) else {
            panic!()
        };
        assert_eq!(r.minute, 1_714_557_600);
    }

    #[test]
    fn bad_lines_are_malformed() {
        assert_eq!(parse(b"{not json"), Parsed::Malformed("not a JSON object"));
        assert_eq!(parse(br#"{"status": 200}"#), Parsed::Malformed("no timestamp"));
        assert_eq!(parse(br#"{"time": 0, "status": 999}"#), Parsed::Malformed("bad status"));
    }
}

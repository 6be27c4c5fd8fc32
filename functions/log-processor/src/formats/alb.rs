//! Application Load Balancer access log entries.
//!
//! Fields (space-separated, some quoted), per the ELB user guide "Access log entries":
//! `type time elb client:port target:port request_processing_time target_processing_time
//! response_processing_time elb_status_code target_status_code received_bytes sent_bytes
//! "request" "user_agent" ...`; AWS appends new fields at the end over time, so only the
//! leading ones are read and anything after them is tolerated.

use super::{Measure, Parsed, Record, finish, seconds_or_none, status};
use crate::fields::{Fields, iso8601_minute, parse_u64};

/// The entry types ALB writes for requests. Other leading words (such as the connection
/// log's) are not requests: skipped, not malformed.
pub const REQUEST_TYPES: &[&[u8]] = &[b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"];

/// Dimensions: `LoadBalancer` (`app/<name>/<id>`), and `TargetGroup`
/// (`targetgroup/<name>/<id>`) when the request reached one.
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut fields = Fields::new(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    finish((|| {
        let kind = next("empty line")?;
        let minute = iso8601_minute(next("no time")?).ok_or("bad time")?;
        if !REQUEST_TYPES.contains(&kind) {
            // Shaped like an entry (type, then time) but of another kind: not a request.
            return Ok(None);
        }
        let load_balancer = next("no elb")?;
        let _client = next("no client")?;
        let _target = next("no target")?;
        let timings = [
            seconds_or_none(next("no timing")?)?,
            seconds_or_none(next("no timing")?)?,
            seconds_or_none(next("no timing")?)?,
        ];
        let status = status(next("no elb_status_code")?)?;
        let _target_status = next("no target_status_code")?;
        let received = parse_u64(next("no received_bytes")?).ok_or("bad received_bytes")?;
        let sent = parse_u64(next("no sent_bytes")?).ok_or("bad sent_bytes")?;
        let _request = next("no request")?;
        let latency = match timings {
            [Some(a), Some(b), Some(c)] => Some(a + b + c),
            _ => None,
        };
        // user_agent, ssl_cipher, ssl_protocol, then the target group's ARN (absent in
        // entries written before the field existed).
        let target_group = (0..4).map(|_| next("")).last().and_then(Result::ok);
        let target_group = target_group.map_or(&b""[..], |arn| match memchr::memrchr(b':', arn) {
            Some(i) => &arn[i + 1..],
            None => arn,
        });
        let measure = Measure::Request { http: true, status, latency, received: Some(received), sent };
        Ok(Some(
            Record::new(minute, measure)
                .with("LoadBalancer", load_balancer)
                .with("TargetGroup", target_group),
        ))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_EXAMPLE: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd"#;

    fn request(line: &str) -> (Record<'_>, Option<u16>, Option<f64>) {
        let Parsed::Record(record) = parse(line.as_bytes()) else { panic!("{line}") };
        let Measure::Request { status, latency, .. } = record.measure else { panic!() };
        (record, status, latency)
    }

    #[test]
    fn parses_the_documented_example() {
        let (record, status, latency) = request(DOC_EXAMPLE);
        assert_eq!(record.dimensions[0], ("LoadBalancer", &b"app/my-loadbalancer/50dc6c495c0c9188"[..]));
        assert_eq!(record.dimensions[1], ("TargetGroup", &b"targetgroup/my-targets/73e2d6bc24d8a067"[..]));
        assert_eq!(record.minute, 1_530_570_180);
        assert_eq!(status, Some(200));
        assert!((latency.unwrap() - 0.001).abs() < 1e-12);
        let Measure::Request { received, sent, .. } = record.measure else { panic!() };
        assert_eq!((received, sent), (Some(34), 366));
    }

    #[test]
    fn no_response_timings_are_excluded_from_latency() {
        let line = DOC_EXAMPLE.replace("0.000 0.001 0.000 200 200", "0.000 -1 -1 504 -");
        let (_, status, latency) = request(&line);
        assert_eq!((status, latency), (Some(504), None));
        let line = DOC_EXAMPLE.replace("0.000 0.001 0.000 200 200", "-1 -1 -1 - -");
        assert_eq!(request(&line).1, None);
    }

    #[test]
    fn new_trailing_fields_are_tolerated_and_other_types_skipped() {
        let line = format!("{DOC_EXAMPLE} \"a-new-field\" 42");
        assert!(matches!(parse(line.as_bytes()), Parsed::Record(_)));
        assert_eq!(parse(b"conn 2018-07-02T22:23:00Z app/x/1 rest"), Parsed::Skipped);
        // An entry from before target groups were logged: no TargetGroup dimension.
        let old = &DOC_EXAMPLE[..DOC_EXAMPLE.find(" - - arn:").unwrap()];
        assert_eq!(request(old).0.dimension_count, 1);
    }

    #[test]
    fn broken_lines_are_malformed() {
        assert!(matches!(parse(b"http garbage"), Parsed::Malformed(_)));
        assert_eq!(parse(b"this line is not a log entry"), Parsed::Malformed("bad time"));
        assert!(matches!(parse(b""), Parsed::Malformed(_)));
        let line = DOC_EXAMPLE.replace(" 200 200 ", " 2x0 200 ");
        assert_eq!(parse(line.as_bytes()), Parsed::Malformed("bad status code"));
        let truncated = &DOC_EXAMPLE[..DOC_EXAMPLE.find(" 34 ").unwrap()];
        assert!(matches!(parse(truncated.as_bytes()), Parsed::Malformed(_)));
    }
}

//! Application Load Balancer access log entries.
//!
//! Fields (space-separated, some quoted), per the ELB user guide "Access log entries":
//! `type time elb client:port target:port request_processing_time target_processing_time
//! response_processing_time elb_status_code target_status_code received_bytes sent_bytes
//! "request" "user_agent" ...`; AWS appends new fields at the end over time, so only the
//! leading ones are read and anything after them is tolerated.

use crate::fields::{Fields, iso8601_minute, parse_f64, parse_u64};

/// The entry types ALB writes for requests. Other leading words (such as the connection
/// log's) are not requests: skipped, not malformed.
const REQUEST_TYPES: &[&[u8]] = &[b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"];

#[derive(Clone, Debug, PartialEq)]
pub struct AlbEntry<'a> {
    /// Start of the minute of the response, Unix seconds.
    pub minute: i64,
    /// The load balancer's resource id, `app/<name>/<id>`: CloudWatch's `LoadBalancer` dimension.
    pub load_balancer: &'a [u8],
    /// The status the client received; `None` when the ELB sent none (`-`).
    pub elb_status: Option<u16>,
    /// Request + target + response processing time in seconds; `None` when any is `-1`
    /// (the connection closed or the target did not answer).
    pub latency: Option<f64>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
}

#[derive(Debug, PartialEq)]
pub enum AlbParse<'a> {
    Entry(AlbEntry<'a>),
    /// Not a request entry (another log type sharing the format).
    Skipped,
    Malformed(&'static str),
}

fn timing(field: &[u8]) -> Result<Option<f64>, &'static str> {
    if field == b"-1" {
        return Ok(None);
    }
    match parse_f64(field) {
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t)),
        _ => Err("bad processing time"),
    }
}

pub fn parse(line: &[u8]) -> AlbParse<'_> {
    let mut fields = Fields::new(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    let result = (|| {
        let kind = next("empty line")?;
        let minute = iso8601_minute(next("no time")?).ok_or("bad time")?;
        if !REQUEST_TYPES.contains(&kind) {
            // Shaped like an entry (type, then time) but of another kind: not a request.
            return Ok(None);
        }
        let load_balancer = next("no elb")?;
        let _client = next("no client")?;
        let _target = next("no target")?;
        let timings = [timing(next("no timing")?)?, timing(next("no timing")?)?, timing(next("no timing")?)?];
        let elb_status = match next("no elb_status_code")? {
            b"-" => None,
            code => {
                Some(parse_u64(code).filter(|c| (100..600).contains(c)).ok_or("bad elb_status_code")? as u16)
            }
        };
        let _target_status = next("no target_status_code")?;
        let received_bytes = parse_u64(next("no received_bytes")?).ok_or("bad received_bytes")?;
        let sent_bytes = parse_u64(next("no sent_bytes")?).ok_or("bad sent_bytes")?;
        let _request = next("no request")?;
        let latency = match timings {
            [Some(a), Some(b), Some(c)] => Some(a + b + c),
            _ => None,
        };
        Ok(Some(AlbEntry { minute, load_balancer, elb_status, latency, received_bytes, sent_bytes }))
    })();
    match result {
        Ok(Some(entry)) => AlbParse::Entry(entry),
        Ok(None) => AlbParse::Skipped,
        Err(why) => AlbParse::Malformed(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_EXAMPLE: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd"#;

    #[test]
    fn parses_the_documented_example() {
        let AlbParse::Entry(entry) = parse(DOC_EXAMPLE.as_bytes()) else { panic!() };
        assert_eq!(entry.load_balancer, b"app/my-loadbalancer/50dc6c495c0c9188");
        assert_eq!(entry.minute, 1_530_570_180);
        assert_eq!(entry.elb_status, Some(200));
        assert!((entry.latency.unwrap() - 0.001).abs() < 1e-12);
        assert_eq!((entry.received_bytes, entry.sent_bytes), (34, 366));
    }

    #[test]
    fn no_response_timings_are_excluded_from_latency() {
        let line = DOC_EXAMPLE.replace("0.000 0.001 0.000 200 200", "0.000 -1 -1 504 -");
        let AlbParse::Entry(entry) = parse(line.as_bytes()) else { panic!() };
        assert_eq!((entry.elb_status, entry.latency), (Some(504), None));
        let line = DOC_EXAMPLE.replace("0.000 0.001 0.000 200 200", "-1 -1 -1 - -");
        let AlbParse::Entry(entry) = parse(line.as_bytes()) else { panic!() };
        assert_eq!(entry.elb_status, None);
    }

    #[test]
    fn new_trailing_fields_are_tolerated_and_other_types_skipped() {
        let line = format!("{DOC_EXAMPLE} \"a-new-field\" 42");
        assert!(matches!(parse(line.as_bytes()), AlbParse::Entry(_)));
        assert_eq!(parse(b"conn 2018-07-02T22:23:00Z app/x/1 rest"), AlbParse::Skipped);
    }

    #[test]
    fn broken_lines_are_malformed() {
        assert!(matches!(parse(b"http garbage"), AlbParse::Malformed(_)));
        assert_eq!(parse(b"this line is not a log entry"), AlbParse::Malformed("bad time"));
        assert!(matches!(parse(b""), AlbParse::Malformed(_)));
        let line = DOC_EXAMPLE.replace(" 200 200 ", " 2x0 200 ");
        assert_eq!(parse(line.as_bytes()), AlbParse::Malformed("bad elb_status_code"));
        let truncated = &DOC_EXAMPLE[..DOC_EXAMPLE.find(" 34 ").unwrap()];
        assert!(matches!(parse(truncated.as_bytes()), AlbParse::Malformed(_)));
    }
}

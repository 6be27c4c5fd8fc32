//! Application Load Balancer logs: access logs, and connection logs (written to the same
//! bucket, under `conn_log.`-prefixed file names), told apart by their first field.
//!
//! Access log fields (space-separated, some quoted), per the ELB user guide "Access log
//! entries": `type time elb client:port target:port request_processing_time
//! target_processing_time response_processing_time elb_status_code target_status_code
//! received_bytes sent_bytes "request" "user_agent" ...`; AWS appends new fields at the end
//! over time, so only the leading ones are read and anything after them is tolerated.
//!
//! Connection log fields ("Connection log entries"): `time client_ip client_port
//! listener_port tls_protocol tls_cipher tls_handshake_latency leaf_client_cert_subject
//! leaf_client_cert_validity leaf_client_cert_serial_number tls_verify_status
//! conn_trace_id`. They do not name the load balancer: that comes from the file name.

use super::{Detail, Measure, Parsed, Record, finish, seconds_or_none, status};
use crate::fields::{Fields, iso8601_minute, parse_u64};

/// The entry types ALB writes for requests. Other leading words before a time are
/// entries of another kind: skipped, not malformed.
pub const REQUEST_TYPES: &[&[u8]] = &[b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"];

/// Whether the fields after a leading time are a connection log's client address and
/// port (Classic ELB's lines have the load balancer's name and `ip:port` there).
pub fn is_connection_entry(second: Option<&[u8]>, third: Option<&[u8]>) -> bool {
    let is_ip = second
        .and_then(|s| std::str::from_utf8(s).ok())
        .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok());
    is_ip && third.is_some_and(|port| parse_u64(port).is_some())
}

/// `app/<name>/<id>` from a connection log's file name
/// (`conn_log.<account>_elasticloadbalancing_<region>_app.<name>.<id>_<end>_<ip>_<random>.log.gz`).
fn load_balancer_from_key(key: &str) -> Option<Box<[u8]>> {
    let file = key.rsplit('/').next()?;
    let start = file.find("_app.")? + 1;
    let id = file[start..].split('_').next()?;
    (id.split('.').count() == 3).then(|| id.replace('.', "/").into_bytes().into_boxed_slice())
}

/// Parses both kinds of entry; keeps the load balancer named by the object's key for
/// connection entries.
#[derive(Debug, Default)]
pub struct Parser {
    load_balancer: Option<Box<[u8]>>,
}

impl Parser {
    pub fn new(key: &str) -> Self {
        Self { load_balancer: load_balancer_from_key(key) }
    }

    pub fn parse<'a>(&'a self, line: &'a [u8]) -> Parsed<'a> {
        match line.first() {
            Some(b'0'..=b'9') => self.connection(line),
            _ => parse(line),
        }
    }

    /// Dimensions: `LoadBalancer` (from the key), then `VerifyStatus` for a failure.
    fn connection<'a>(&'a self, line: &'a [u8]) -> Parsed<'a> {
        let mut fields = Fields::new(line);
        let mut next = |what: &'static str| fields.next().ok_or(what);
        finish((|| {
            let minute = iso8601_minute(next("empty line")?).ok_or("bad time")?;
            for what in
                ["no client_ip", "no client_port", "no listener_port", "no tls_protocol", "no tls_cipher"]
            {
                next(what)?;
            }
            let handshake = match next("no tls_handshake_latency")? {
                b"-" => None,
                t => seconds_or_none(t).map_err(|_| "bad tls_handshake_latency")?,
            };
            for what in [
                "no leaf_client_cert_subject",
                "no leaf_client_cert_validity",
                "no leaf_client_cert_serial_number",
            ] {
                next(what)?;
            }
            let verify_status = next("no tls_verify_status")?;
            let verify_failure = verify_status.starts_with(b"Failed").then_some(verify_status);
            let measure = Measure::Event { error: verify_failure.is_some() };
            Ok(Ok(Record::new(minute, measure)
                .with("LoadBalancer", self.load_balancer.as_deref().unwrap_or_default())
                .detail(Detail::Connection { handshake, verify_failure })))
        })())
    }
}

/// An access log entry. Dimensions: `LoadBalancer` (`app/<name>/<id>`), and `TargetGroup`
/// (`targetgroup/<name>/<id>`) when the request reached one.
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut fields = Fields::new(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    finish((|| {
        let kind = next("empty line")?;
        let minute = iso8601_minute(next("no time")?).ok_or("bad time")?;
        if !REQUEST_TYPES.contains(&kind) {
            // Shaped like an entry (type, then time) but of another kind: not a request.
            return Ok(Err("ALB entry of another type"));
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
        let request = next("no request")?;
        let total = match timings {
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
        let measure = Measure::Request { http: true, status, latency: total, received: Some(received), sent };
        Ok(Ok(Record::new(minute, measure)
            .with("LoadBalancer", load_balancer)
            .with("TargetGroup", target_group)
            .detail(Detail::Target { metric: "TargetResponseTime", seconds: timings[1] })
            .request(request)))
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
        assert_eq!(
            parse(b"conn 2018-07-02T22:23:00Z app/x/1 rest"),
            Parsed::Skipped("ALB entry of another type")
        );
        // An entry from before target groups were logged: no TargetGroup dimension.
        let old = &DOC_EXAMPLE[..DOC_EXAMPLE.find(" - - arn:").unwrap()];
        assert_eq!(request(old).0.dimension_count, 1);
    }

    const CONN_KEY: &str = "logs/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/conn_log.123456789012_elasticloadbalancing_us-east-1_app.shop-alb.50dc6c495c0c9188_20261130T1205Z_10.0.0.5_2abc9f.log.gz";

    #[test]
    fn target_time_and_request_line_are_kept() {
        let (record, _, _) = request(DOC_EXAMPLE);
        assert_eq!(record.detail, Detail::Target { metric: "TargetResponseTime", seconds: Some(0.001) });
        assert_eq!(record.request, Some(&b"GET http://www.example.com:80/ HTTP/1.1"[..]));
    }

    #[test]
    fn connection_entries_name_the_load_balancer_from_the_key() {
        let parser = Parser::new(CONN_KEY);
        let line = br#"2026-11-30T12:00:01.120000Z 192.0.2.10 51234 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 "CN=client-a,O=Shop Inc,C=US" 2026-01-01T00:00:00Z-2027-01-01T00:00:00Z 5A3F0C11 Success TID_1"#;
        let Parsed::Record(r) = parser.parse(line) else { panic!() };
        assert_eq!(r.minute, 1_796_040_000);
        assert_eq!(r.dimensions[0], ("LoadBalancer", &b"app/shop-alb/50dc6c495c0c9188"[..]));
        assert_eq!(r.measure, Measure::Event { error: false });
        assert_eq!(r.detail, Detail::Connection { handshake: Some(0.004), verify_failure: None });
        let failed =
            b"2026-11-30T12:00:30Z 2001:db8::7 60111 443 - - - - - - Failed:CertificateExpired TID_2";
        let Parsed::Record(r) = parser.parse(failed) else { panic!() };
        assert_eq!(
            r.detail,
            Detail::Connection { handshake: None, verify_failure: Some(&b"Failed:CertificateExpired"[..]) }
        );
        // A file not named as AWS names them: no load balancer to count under.
        let unnamed = Parser::new("conn.log");
        let Parsed::Record(r) = unnamed.parse(failed) else { panic!() };
        assert_eq!(r.dimension_count, 0);
        assert_eq!(
            parser.parse(b"2026-11-30T12:00:30Z 192.0.2.1 1 443 - - x"),
            Parsed::Malformed("bad tls_handshake_latency")
        );
        // Access entries go through the same parser.
        assert!(matches!(parser.parse(DOC_EXAMPLE.as_bytes()), Parsed::Record(_)));
    }

    #[test]
    fn connection_entries_are_told_from_classic_elb_lines() {
        let fields = |line: &'static [u8]| {
            let mut f = Fields::new(line);
            (f.next(), f.next(), f.next())
        };
        let (_, second, third) = fields(b"2026-11-30T12:00:01Z 2001:db8::20 40022 443");
        assert!(is_connection_entry(second, third));
        let (_, second, third) = fields(b"2026-11-30T12:00:01Z my-lb 192.0.2.1:2817 10.0.0.1:80");
        assert!(!is_connection_entry(second, third));
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

//! Classic Load Balancer access log entries:
//! `time elb client:port backend:port request_processing_time backend_processing_time
//! response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
//! "request" "user_agent" ssl_cipher ssl_protocol`. TCP listeners log `-` for the HTTP fields.
//! Dimension: `LoadBalancerName`.

use super::{Detail, Measure, Parsed, Record, finish, seconds_or_none, status};
use crate::fields::{Fields, iso8601_minute, parse_u64};

pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut fields = Fields::new(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    finish((|| {
        let minute = iso8601_minute(next("empty line")?).ok_or("bad time")?;
        let name = next("no elb")?;
        let _client = next("no client")?;
        let _backend = next("no backend")?;
        let timings = [
            seconds_or_none(next("no timing")?)?,
            seconds_or_none(next("no timing")?)?,
            seconds_or_none(next("no timing")?)?,
        ];
        let status = status(next("no elb_status_code")?)?;
        let _backend_status = next("no backend_status_code")?;
        let received = parse_u64(next("no received_bytes")?).ok_or("bad received_bytes")?;
        let sent = parse_u64(next("no sent_bytes")?).ok_or("bad sent_bytes")?;
        // Old entries end here; TCP listeners log `"- - - "`.
        let request = next("").unwrap_or_default();
        let total = match timings {
            [Some(a), Some(b), Some(c)] => Some(a + b + c),
            _ => None,
        };
        let measure = Measure::Request { http: true, status, latency: total, received: Some(received), sent };
        Ok(Ok(Record::new(minute, measure)
            .with("LoadBalancerName", name)
            .detail(Detail::Target { metric: "Latency", seconds: timings[1] })
            .request(request)))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the ELB user guide, "Access logs for your Classic Load Balancer".
    const HTTP: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
    const TCP: &str = "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -";

    #[test]
    fn parses_http_and_tcp_entries() {
        let Parsed::Record(r) = parse(HTTP.as_bytes()) else { panic!() };
        assert_eq!(r.dimensions[0], ("LoadBalancerName", &b"my-loadbalancer"[..]));
        // Classic ELB's own `Latency` is the back end's time alone.
        assert_eq!(r.detail, Detail::Target { metric: "Latency", seconds: Some(0.001048) });
        assert_eq!(r.request, Some(&b"GET http://www.example.com:80/ HTTP/1.1"[..]));
        assert_eq!(r.minute, 1_431_560_340);
        let Measure::Request { status, latency, sent, .. } = r.measure else { panic!() };
        assert_eq!((status, sent), (Some(200), 29));
        assert!((latency.unwrap() - 0.001178).abs() < 1e-9);
        let Parsed::Record(r) = parse(TCP.as_bytes()) else { panic!() };
        assert!(matches!(r.measure, Measure::Request { status: None, received: Some(82), .. }));
    }

    #[test]
    fn broken_lines_are_malformed() {
        assert_eq!(parse(b"2015-05-13T23:39:43Z my-lb"), Parsed::Malformed("no client"));
        assert_eq!(parse(b"yesterday my-lb"), Parsed::Malformed("bad time"));
    }
}

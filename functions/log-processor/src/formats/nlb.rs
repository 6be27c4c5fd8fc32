//! Network Load Balancer access logs (written for TLS listeners only):
//! `type version time elb listener client:port destination:port connection_time
//! tls_handshake_time received_bytes sent_bytes ...`, times in milliseconds.
//! One entry is one TLS connection; it counts as a request. Dimension: `LoadBalancer`.

use super::{Measure, Parsed, Record, finish};
use crate::fields::{Fields, iso8601_minute, parse_f64, parse_u64};

pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut fields = Fields::new(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    finish((|| {
        if next("empty line")? != b"tls" {
            return Err("not a tls entry");
        }
        let _version = next("no version")?;
        let minute = iso8601_minute(next("no time")?).ok_or("bad time")?;
        let load_balancer = next("no elb")?;
        let _listener = next("no listener")?;
        let _client = next("no client")?;
        let _destination = next("no destination")?;
        let connection_ms = next("no connection_time")?;
        let latency = match connection_ms {
            b"-" => None,
            ms => Some(
                parse_f64(ms).filter(|t| t.is_finite() && *t >= 0.0).ok_or("bad connection_time")? / 1000.0,
            ),
        };
        let _handshake = next("no tls_handshake_time")?;
        let received = parse_u64(next("no received_bytes")?).ok_or("bad received_bytes")?;
        let sent = parse_u64(next("no sent_bytes")?).ok_or("bad sent_bytes")?;
        let measure = Measure::Request { http: false, status: None, latency, received: Some(received), sent };
        Ok(Ok(Record::new(minute, measure).with("LoadBalancer", load_balancer)))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the ELB user guide, "Access logs for your Network Load Balancer".
    const EXAMPLE: &str = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com h2 h2 \"h2\",\"http/1.1\" 2020-04-01T08:51:42";

    #[test]
    fn parses_the_documented_example() {
        let Parsed::Record(r) = parse(EXAMPLE.as_bytes()) else { panic!() };
        assert_eq!(r.dimensions[0], ("LoadBalancer", &b"net/my-network-loadbalancer/c6e77e28c25b2234"[..]));
        assert_eq!(r.minute, 1_545_274_740);
        let Measure::Request { http, latency, received, sent, .. } = r.measure else { panic!() };
        assert_eq!((http, latency, received, sent), (false, Some(0.005), Some(98), 246));
    }

    #[test]
    fn other_lines_are_malformed() {
        assert_eq!(parse(b"http 2.0"), Parsed::Malformed("not a tls entry"));
        assert_eq!(
            parse(b"tls 2.0 2018-12-20T02:59:40 net/x/1 l c d x"),
            Parsed::Malformed("bad connection_time")
        );
    }
}

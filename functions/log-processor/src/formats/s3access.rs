//! S3 server access logs: `bucket_owner bucket [time] remote_ip requester request_id
//! operation key "request_uri" http_status error_code bytes_sent object_size total_time
//! turn_around_time "referer" "user_agent" ...`; `-` for empty fields, total_time in ms.
//! Dimension: `BucketName`.

use super::{Measure, Parsed, Record, bytes, finish, status};
use crate::fields::{Fields, clf_minute, parse_u64};

/// The bucket a partitioned access log key names:
/// `<prefix><account>/<region>/<bucket>/<YYYY>/<MM>/<DD>/<file>` (`None` for the simple
/// layout, whose keys name no bucket).
pub fn bucket_in_key(key: &str) -> Option<&str> {
    let segments: Vec<&str> = key.split('/').collect();
    let n = segments.len();
    let date = segments.get(n.checked_sub(4)?..n - 1)?;
    let [account, _region, bucket] = segments.get(n.checked_sub(7)?..n - 4)? else { return None };
    let numeric = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(account, 12) && numeric(date[0], 4) && numeric(date[1], 2) && numeric(date[2], 2))
        .then_some(*bucket)
}

pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut fields = Fields::with_brackets(line);
    let mut next = |what: &'static str| fields.next().ok_or(what);
    finish((|| {
        let _owner = next("empty line")?;
        let bucket = next("no bucket")?;
        let minute = clf_minute(next("no time")?).ok_or("bad time")?;
        for what in
            ["no remote_ip", "no requester", "no request_id", "no operation", "no key", "no request_uri"]
        {
            next(what)?;
        }
        let status = status(next("no http_status")?)?;
        let _error_code = next("no error_code")?;
        let sent = bytes(next("no bytes_sent")?)?;
        let _object_size = next("no object_size")?;
        let latency = match next("no total_time")? {
            b"-" => None,
            ms => Some(parse_u64(ms).ok_or("bad total_time")? as f64 / 1000.0),
        };
        let measure = Measure::Request { http: true, status, latency, received: None, sent };
        Ok(Ok(Record::new(minute, measure).with("BucketName", bucket)))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the S3 user guide, "Amazon S3 server access log format".
    const EXAMPLE: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"#;

    #[test]
    fn parses_the_documented_example() {
        let Parsed::Record(r) = parse(EXAMPLE.as_bytes()) else { panic!() };
        assert_eq!(r.dimensions[0], ("BucketName", &b"awsexamplebucket1"[..]));
        assert_eq!(r.minute, 1_549_411_200);
        assert_eq!(
            r.measure,
            Measure::Request {
                http: true,
                status: Some(200),
                latency: Some(0.007),
                received: None,
                sent: 113
            }
        );
    }

    #[test]
    fn dashes_and_spaces_in_quoted_fields() {
        let line = EXAMPLE.replace(" 200 - 113 - 7 ", " 404 NoSuchKey - - - ");
        let Parsed::Record(r) = parse(line.as_bytes()) else { panic!() };
        assert_eq!(
            r.measure,
            Measure::Request { http: true, status: Some(404), latency: None, received: None, sent: 0 }
        );
        assert_eq!(parse(b"owner bucket [yesterday] x"), Parsed::Malformed("bad time"));
    }
}

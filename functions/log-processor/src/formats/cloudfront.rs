//! CloudFront standard logs: tab-separated, with `#Version` and `#Fields` header lines that
//! name the columns (so their positions come from the header, not from us). Status `000`
//! means the viewer went away before a response; trailing fields may be missing. The
//! `DistributionId` dimension comes from the object's key, not the lines.

use super::{Measure, Parsed, Record, bytes, finish, status};
use crate::fields::{civil_minute, parse_f64};

/// Column positions: from `#Fields`, or CloudFront's standard layout until one is seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    date: usize,
    time: usize,
    sc_bytes: usize,
    sc_status: usize,
    cs_bytes: Option<usize>,
    time_taken: Option<usize>,
    uri_stem: Option<usize>,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            date: 0,
            time: 1,
            sc_bytes: 3,
            sc_status: 8,
            cs_bytes: Some(17),
            time_taken: Some(18),
            uri_stem: Some(7),
        }
    }
}

impl Columns {
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        if let Some(names) = line.strip_prefix(b"#Fields:") {
            return match Self::from_header(names) {
                Some(columns) => {
                    *self = columns;
                    Parsed::Skipped("header")
                }
                None => Parsed::Malformed("#Fields lacks date, time, sc-bytes or sc-status"),
            };
        }
        if line.starts_with(b"#") {
            return Parsed::Skipped("header");
        }
        let fields: smallvec_fields::Fields<'a> = smallvec_fields::split(line);
        let get = |i: usize| fields.get(i).copied();
        finish((|| {
            let minute = civil_minute(get(self.date).ok_or("no date")?, get(self.time).ok_or("no time")?)
                .ok_or("bad date or time")?;
            let sent = bytes(get(self.sc_bytes).ok_or("no sc-bytes")?)?;
            let status = status(get(self.sc_status).ok_or("no sc-status")?)?;
            let received = self.cs_bytes.and_then(get).map(bytes).transpose()?;
            let latency = match self.time_taken.and_then(get) {
                None | Some(b"-") => None,
                Some(t) => Some(parse_f64(t).filter(|t| t.is_finite() && *t >= 0.0).ok_or("bad time-taken")?),
            };
            let record =
                Record::new(minute, Measure::Request { http: true, status, latency, received, sent });
            Ok(Ok(match self.uri_stem.and_then(get) {
                Some(path) => record.request(path),
                None => record,
            }))
        })())
    }

    fn from_header(names: &[u8]) -> Option<Self> {
        let names: Vec<&[u8]> = names.split(|b| b.is_ascii_whitespace()).filter(|n| !n.is_empty()).collect();
        let find = |name: &[u8]| names.iter().position(|n| *n == name);
        Some(Self {
            date: find(b"date")?,
            time: find(b"time")?,
            sc_bytes: find(b"sc-bytes")?,
            sc_status: find(b"sc-status")?,
            cs_bytes: find(b"cs-bytes"),
            time_taken: find(b"time-taken"),
            uri_stem: find(b"cs-uri-stem"),
        })
    }
}

/// Tab-split fields without allocating for the usual ~33 columns.
mod smallvec_fields {
    pub struct Fields<'a> {
        items: [&'a [u8]; 40],
        len: usize,
    }

    impl<'a> Fields<'a> {
        pub fn get(&self, i: usize) -> Option<&&'a [u8]> {
            self.items[..self.len].get(i)
        }
    }

    pub fn split(line: &[u8]) -> Fields<'_> {
        let mut fields = Fields { items: [&[]; 40], len: 0 };
        for field in line.split(|b| *b == b'\t').take(40) {
            fields.items[fields.len] = field;
            fields.len += 1;
        }
        fields
    }
}

/// The dimensions every record of an object gets from its key: its `DistributionId`,
/// which the lines do not carry (none when the key is not in CloudFront's layout).
pub fn object_dimensions(key: &str) -> Vec<(&'static str, &str)> {
    distribution_id(key).map(|id| ("DistributionId", id)).into_iter().collect()
}

/// The distribution id in a CloudFront log key: `.../<id>.YYYY-MM-DD-HH.<unique>.gz`.
fn distribution_id(key: &str) -> Option<&str> {
    let file = key.rsplit('/').next()?;
    file.split('.').next().filter(|id| is_distribution_id(id))
}

/// CloudFront distribution ids: 13 or 14 upper-case letters and digits (12 accepted too).
pub(super) fn is_distribution_id(s: &str) -> bool {
    (12..=14).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
    // From the CloudFront developer guide's standard log example.
    const LINE: &str = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-";

    #[test]
    fn the_header_drives_the_columns() {
        let mut columns = Columns::default();
        assert_eq!(columns.parse(b"#Version: 1.0"), Parsed::Skipped("header"));
        assert_eq!(columns.parse(HEADER.as_bytes()), Parsed::Skipped("header"));
        let Parsed::Record(r) = columns.parse(LINE.as_bytes()) else { panic!() };
        assert_eq!(r.minute, 1_575_493_320);
        assert_eq!(r.request, Some(&b"/index.html"[..]));
        assert_eq!(
            r.measure,
            Measure::Request {
                http: true,
                status: Some(200),
                latency: Some(0.001),
                received: Some(23),
                sent: 392
            }
        );
        // A reordered header is followed.
        columns.parse(b"#Fields: time date sc-status sc-bytes");
        let Parsed::Record(r) = columns.parse(b"21:02:31\t2019-12-04\t503\t10") else { panic!() };
        assert_eq!(
            r.measure,
            Measure::Request { http: true, status: Some(503), latency: None, received: None, sent: 10 }
        );
    }

    #[test]
    fn status_000_and_missing_trailing_fields() {
        let mut columns = Columns::default();
        let line = LINE.replace("\t200\t", "\t000\t");
        let truncated: Vec<&str> = line.split('\t').take(12).collect();
        let truncated = truncated.join("\t");
        let Parsed::Record(r) = columns.parse(truncated.as_bytes()) else { panic!() };
        assert_eq!(
            r.measure,
            Measure::Request { http: true, status: None, latency: None, received: None, sent: 392 }
        );
        assert_eq!(columns.parse(b"2019-12-04\t21:02:31\tLAX1"), Parsed::Malformed("no sc-bytes"));
        assert_eq!(
            columns.parse(b"#Fields: time-taken"),
            Parsed::Malformed("#Fields lacks date, time, sc-bytes or sc-status")
        );
    }

    #[test]
    fn distribution_ids_from_keys() {
        assert_eq!(distribution_id("cf/E2QWRUHAPOMQZL.2019-12-04-21.a1b2c3d4.gz"), Some("E2QWRUHAPOMQZL"));
        assert_eq!(distribution_id("cf/lower.2019-12-04-21.gz"), None);
        assert_eq!(distribution_id("cf/ABC.2019-12-04-21.gz"), None, "too short for an id");
        assert_eq!(
            object_dimensions("cf/E2QWRUHAPOMQZL.2019-12-04-21.a1b2c3d4.gz"),
            vec![("DistributionId", "E2QWRUHAPOMQZL")]
        );
        assert!(object_dimensions("cf/access.log").is_empty());
    }
}

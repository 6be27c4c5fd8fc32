//! The log formats: detection from the object's key and first bytes, and one line parser
//! per format, all producing [`Record`]s for the aggregator.
//!
//! Parsers borrow from the line (no allocation per record) and read only the fields they
//! need; fields AWS appends later are ignored.
//!
//! Every line ends as a [`Parsed`]: a record, skipped with a reason, or malformed, never
//! dropped. A new format or metric comes with its rows in the README's metrics tables and a
//! fixture with its case in `tests/integration/log_formats.rs`.

pub mod alb;
pub mod cloudfront;
pub mod cloudtrail;
pub mod elb;
pub mod jsonl;
pub mod nlb;
pub mod s3access;
pub mod vpcflow;

use std::str::FromStr;

/// A supported log format; named by [`Format::name`] wherever it is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Alb,
    Elb,
    Nlb,
    CloudFront,
    S3,
    VpcFlow,
    CloudTrail,
    JsonLines,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Alb,
        Format::Elb,
        Format::Nlb,
        Format::CloudFront,
        Format::S3,
        Format::VpcFlow,
        Format::CloudTrail,
        Format::JsonLines,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Alb => "alb",
            Format::Elb => "elb",
            Format::Nlb => "nlb",
            Format::CloudFront => "cloudfront",
            Format::S3 => "s3",
            Format::VpcFlow => "vpcflow",
            Format::CloudTrail => "cloudtrail",
            Format::JsonLines => "jsonl",
        }
    }
}

impl Format {
    /// The dimension names this format publishes (the README's metrics table): a datum
    /// under any other name was forged (`provenance.rs`).
    pub fn published_dimensions(self) -> &'static [&'static str] {
        match self {
            Format::Alb => &["LoadBalancer", "TargetGroup", "Route", "VerifyStatus"],
            Format::Elb => &["LoadBalancerName", "Route"],
            Format::Nlb => &["LoadBalancer"],
            Format::CloudFront => &["DistributionId", "Route"],
            Format::S3 => &["BucketName"],
            Format::VpcFlow => &["InterfaceId"],
            Format::CloudTrail => &["EventSource"],
            Format::JsonLines => &[],
        }
    }

    /// The dimension (name, value) an object's key names in AWS's layout for this format,
    /// which the object's datums must agree with (`provenance.rs`); `None` for a key in
    /// another layout (nothing to compare with). CloudFront's `DistributionId` is taken
    /// from the key already ([`Format::object_dimensions`]); VPC flow logs and CloudTrail
    /// publish no dimension the key names.
    pub fn dimension_named_by_key(self, key: &str) -> Option<(&'static str, String)> {
        match self {
            Format::Alb | Format::Nlb => {
                let lb = load_balancer_in_key(key)?;
                let mut pieces = lb.splitn(3, '.');
                let (kind, name, id) = (pieces.next()?, pieces.next()?, pieces.next()?);
                Some(("LoadBalancer", format!("{kind}/{name}/{id}")))
            }
            Format::Elb => Some(("LoadBalancerName", load_balancer_in_key(key)?.to_owned())),
            Format::S3 => Some(("BucketName", s3access::bucket_in_key(key)?.to_owned())),
            Format::CloudFront | Format::VpcFlow | Format::CloudTrail | Format::JsonLines => None,
        }
    }

    /// The dimensions every record of an object in this format gets from the object's key,
    /// where the lines do not carry them (CloudFront's `DistributionId`).
    pub fn object_dimensions(self, key: &str) -> Vec<(&'static str, &str)> {
        match self {
            Format::CloudFront => cloudfront::object_dimensions(key),
            Format::Alb
            | Format::Elb
            | Format::Nlb
            | Format::S3
            | Format::VpcFlow
            | Format::CloudTrail
            | Format::JsonLines => Vec::new(),
        }
    }
}

// By name, not by serde's renaming of the variant, which wrote `jsonlines` where
// `LOG_FORMATS` and `--format` take `jsonl`.
impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?}: expected one of {names}", names = Format::ALL.map(Format::name).join(", "))]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The load balancer an Elastic Load Balancing log key names
/// (`AWSLogs/<account>/elasticloadbalancing/...`):
/// `<account>_elasticloadbalancing_<region>_<lb>_<time>_<ip>_<random>.log[.gz]`, `<lb>`
/// being `app.<name>.<id>` (ALB), `net.<name>.<id>` (NLB) or the Classic load balancer's
/// name; connection logs add a `conn_log.` in front.
fn load_balancer_in_key(key: &str) -> Option<&str> {
    if !key.contains("/elasticloadbalancing/") {
        return None;
    }
    let file = key.rsplit('/').next().unwrap_or(key);
    let file = file.strip_prefix("conn_log.").unwrap_or(file);
    let mut parts = file.split('_');
    let (_account, service, _region, lb) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (service == "elasticloadbalancing" && !lb.is_empty()).then_some(lb)
}

/// The format a key's name suggests, from the layouts AWS delivers logs under.
pub fn format_from_key(key: &str) -> Option<Format> {
    let file = key.rsplit('/').next().unwrap_or(key);
    if let Some(i) = key.find("AWSLogs/") {
        let service = key[i..].split('/').nth(2).unwrap_or_default();
        match service {
            "elasticloadbalancing" if file.contains("_app.") => return Some(Format::Alb),
            "elasticloadbalancing" if file.contains("_net.") => return Some(Format::Nlb),
            "elasticloadbalancing" => return Some(Format::Elb),
            "vpcflowlogs" => return Some(Format::VpcFlow),
            "CloudTrail" => return Some(Format::CloudTrail),
            _ => {}
        }
    }
    // CloudFront: `<distribution id>.YYYY-MM-DD-HH.<unique>.gz`.
    let parts: Vec<&str> = file.split('.').collect();
    if parts.len() >= 3
        && cloudfront::is_distribution_id(parts[0])
        && parts[1].len() == 13
        && parts[1].as_bytes()[4] == b'-'
    {
        return Some(Format::CloudFront);
    }
    // S3 server access: `YYYY-MM-DD-HH-MM-SS-<16 hex>`.
    let b = file.as_bytes();
    if b.len() == 36 && b[4] == b'-' && b[7] == b'-' && b[10] == b'-' && b[19] == b'-' {
        return Some(Format::S3);
    }
    if file.ends_with(".jsonl") || file.ends_with(".ndjson") || file.contains(".jsonl.") {
        return Some(Format::JsonLines);
    }
    None
}

/// The format the first bytes of the (decompressed) content show.
pub fn format_from_content(head: &[u8]) -> Option<Format> {
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    // CloudFront: its headers, or (objects cut from one) a line of `date<TAB>time<TAB>...`.
    if head.starts_with(b"#Version:")
        || head.starts_with(b"#Fields:")
        || head.get(..20).is_some_and(|h| {
            h[10] == b'\t' && h[19] == b'\t' && crate::fields::civil_minute(&h[..10], &h[11..19]).is_some()
        })
    {
        return Some(Format::CloudFront);
    }
    if head.starts_with(b"{") {
        let probe = &head[..head.len().min(64)];
        let compact: Vec<u8> = probe.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        return Some(if compact.starts_with(b"{\"Records\":") {
            Format::CloudTrail
        } else {
            Format::JsonLines
        });
    }
    let line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
    if vpcflow::is_header(line) {
        return Some(Format::VpcFlow);
    }
    let mut fields = crate::fields::Fields::new(line);
    let (first, second, third) = (fields.next()?, fields.next(), fields.next());
    let second_is_time = second.is_some_and(|s| crate::fields::iso8601_minute(s).is_some());
    if alb::REQUEST_TYPES.contains(&first) && second_is_time {
        return Some(Format::Alb);
    }
    if first == b"tls" && second.is_some_and(|s| s.contains(&b'.')) {
        return Some(Format::Nlb);
    }
    if crate::fields::iso8601_minute(first).is_some() {
        // Both start with the time; then ALB's connection log has the client's address and
        // port as two fields, Classic ELB its own name and `ip:port`.
        return Some(if alb::is_connection_entry(second, third) { Format::Alb } else { Format::Elb });
    }
    if third.is_some_and(|third| third.starts_with(b"[")) {
        return Some(Format::S3);
    }
    None
}

/// What one record measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// A request (or, for NLB, a TLS connection).
    Request {
        /// The format has HTTP status codes (NLB's does not).
        http: bool,
        /// The status the client received; `None` when there was none.
        status: Option<u16>,
        /// Seconds; `None` when there was no response.
        latency: Option<f64>,
        /// `None` when the format does not log it.
        received: Option<u64>,
        sent: u64,
    },
    /// A VPC flow; each field is `None` when the log's format does not have it.
    Flow {
        packets: Option<u64>,
        bytes: Option<u64>,
        /// From `action`.
        rejected: Option<bool>,
    },
    /// An API call (CloudTrail), or an ALB connection ([`Detail::Connection`]; `error`: the
    /// client certificate's verification failed).
    Event { error: bool },
}

/// What a record has beyond its [`Measure`] (whose fields are the normalized output's):
/// figures with metrics of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Detail<'a> {
    #[default]
    None,
    /// ALB and Classic ELB: `Measure::Request::latency` is then the sum of the three
    /// processing times (`TotalProcessingTime`), and this is the target's share alone, the
    /// time AWS's own metric of that name measures (ALB `TargetResponseTime`, Classic ELB
    /// `Latency`). `None` when the target did not respond.
    Target { metric: &'static str, seconds: Option<f64> },
    /// An ALB connection log entry (a TLS connection, whether or not a request followed).
    Connection {
        /// `tls_handshake_latency`, seconds; `None` when no handshake completed.
        handshake: Option<f64>,
        /// `tls_verify_status` when it is a failure (`Failed:...`).
        verify_failure: Option<&'a [u8]>,
    },
}

/// Up to this many dimensions per record; a record is aggregated under each non-empty
/// prefix of them (ALB: `LoadBalancer`, then `LoadBalancer` + `TargetGroup`).
pub const MAX_DIMENSIONS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record<'a> {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    pub dimensions: [(&'static str, &'a [u8]); MAX_DIMENSIONS],
    pub dimension_count: usize,
    pub measure: Measure,
    pub detail: Detail<'a>,
    /// The request as logged, for `ROUTES` (ALB and Classic ELB: the request line;
    /// CloudFront: `cs-uri-stem`); `None` in formats without per-route metrics.
    pub request: Option<&'a [u8]>,
}

impl<'a> Record<'a> {
    pub fn new(minute: i64, measure: Measure) -> Self {
        Self {
            minute,
            dimensions: [("", b""); MAX_DIMENSIONS],
            dimension_count: 0,
            measure,
            detail: Detail::None,
            request: None,
        }
    }

    pub fn detail(self, detail: Detail<'a>) -> Self {
        Self { detail, ..self }
    }

    pub fn request(self, request: &'a [u8]) -> Self {
        Self { request: Some(request), ..self }
    }

    pub fn with(mut self, name: &'static str, value: &'a [u8]) -> Self {
        if self.dimension_count < MAX_DIMENSIONS && !value.is_empty() && value != b"-" {
            self.dimensions[self.dimension_count] = (name, value);
            self.dimension_count += 1;
        }
        self
    }
}

/// The result of parsing one line.
#[derive(Debug, PartialEq)]
pub enum Parsed<'a> {
    Record(Record<'a>),
    /// Valid, but not something to count (another entry type, a header, a NODATA flow),
    /// with the reason, which the summary counts.
    Skipped(&'static str),
    Malformed(&'static str),
}

/// A line parser; the stateful ones learn their columns from header lines, or take what
/// the lines lack from the object's key.
#[derive(Debug)]
pub enum LineParser {
    Alb(alb::Parser),
    Elb,
    Nlb,
    CloudFront(cloudfront::Columns),
    S3,
    VpcFlow(vpcflow::Columns),
    JsonLines,
}

impl LineParser {
    /// `key`: the object's key (or file name). `None` for CloudTrail, which is one JSON
    /// document rather than lines.
    pub fn new(format: Format, key: &str, vpc_interface_dimension: bool) -> Option<Self> {
        Some(match format {
            Format::Alb => Self::Alb(alb::Parser::new(key)),
            Format::Elb => Self::Elb,
            Format::Nlb => Self::Nlb,
            Format::CloudFront => Self::CloudFront(cloudfront::Columns::default()),
            Format::S3 => Self::S3,
            Format::VpcFlow => Self::VpcFlow(vpcflow::Columns::new(key, vpc_interface_dimension)),
            Format::JsonLines => Self::JsonLines,
            Format::CloudTrail => return None,
        })
    }

    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Parsed<'a> {
        match self {
            Self::Alb(parser) => parser.parse(line),
            Self::Elb => elb::parse(line),
            Self::Nlb => nlb::parse(line),
            Self::CloudFront(columns) => columns.parse(line),
            Self::S3 => s3access::parse(line),
            Self::VpcFlow(columns) => columns.parse(line),
            Self::JsonLines => jsonl::parse(line),
        }
    }
}

/// Turns a field-by-field parse into a [`Parsed`]: `Ok(Err(reason))` means skipped.
pub(crate) fn finish<'a>(result: Result<Result<Record<'a>, &'static str>, &'static str>) -> Parsed<'a> {
    match result {
        Ok(Ok(record)) => Parsed::Record(record),
        Ok(Err(reason)) => Parsed::Skipped(reason),
        Err(why) => Parsed::Malformed(why),
    }
}

/// A processing time field in seconds; `-1` (no response) is `None`.
pub(crate) fn seconds_or_none(field: &[u8]) -> Result<Option<f64>, &'static str> {
    if field == b"-1" {
        return Ok(None);
    }
    match crate::fields::parse_f64(field) {
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t)),
        _ => Err("bad processing time"),
    }
}

/// An HTTP status code, `-` (or CloudFront's `000`) meaning none was sent.
pub(crate) fn status(field: &[u8]) -> Result<Option<u16>, &'static str> {
    match field {
        b"-" | b"000" => Ok(None),
        code => Ok(Some(
            crate::fields::parse_u64(code).filter(|c| (100..600).contains(c)).ok_or("bad status code")?
                as u16,
        )),
    }
}

/// A byte count, `-` meaning zero.
pub(crate) fn bytes(field: &[u8]) -> Result<u64, &'static str> {
    if field == b"-" { Ok(0) } else { crate::fields::parse_u64(field).ok_or("bad byte count") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_aws_key_layouts() {
        let elb = "logs/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/05/01/";
        for (key, format) in [
            (format!("{elb}123456789012_elasticloadbalancing_us-east-2_app.my-lb.1234567890abcdef_20240501T0005Z_10.0.0.1_abc.log.gz"), Format::Alb),
            (format!("{elb}123456789012_elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef_20240501T0005Z_abc.log.gz"), Format::Nlb),
            (format!("{elb}123456789012_elasticloadbalancing_us-east-2_my-classic_20240501T0005Z_10.0.0.1_abc.log"), Format::Elb),
            (format!("{elb}conn_log.123456789012_elasticloadbalancing_us-east-2_app.my-lb.1234567890abcdef_20240501T0005Z_10.0.0.1_abc.log.gz"), Format::Alb),
            ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01/123456789012_vpcflowlogs_us-east-1_fl-1_20240501T0005Z_hash.log.gz".into(), Format::VpcFlow),
            ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/123456789012_CloudTrail_us-east-1_20240501T0005Z_abc.json.gz".into(), Format::CloudTrail),
            ("cf/E2QWRUHAPOMQZL.2024-05-01-13.a1b2c3d4.gz".into(), Format::CloudFront),
            ("s3-access/2024-05-01-13-07-42-1A2B3C4D5E6F7A8B".into(), Format::S3),
            ("app/events.jsonl.gz".into(), Format::JsonLines),
        ] {
            assert_eq!(format_from_key(&key), Some(format), "{key}");
        }
        assert_eq!(format_from_key("some/other/file.log"), None);
    }

    #[test]
    fn formats_from_content() {
        for (head, format) in [
            (&b"#Version: 1.0\n#Fields: date time\n"[..], Format::CloudFront),
            (b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET", Format::CloudFront),
            (b"  {\"Records\": [{\"eventVersion\": \"1.08\"}]}", Format::CloudTrail),
            (b"{\"time\": \"2024-05-01T00:00:00Z\"}\n", Format::JsonLines),
            (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n", Format::VpcFlow),
            (b"h2 2024-05-01T00:00:00.1Z app/x/1 1.2.3.4:5 - -1 -1 -1 - - 0 0 \"- - -\"", Format::Alb),
            (b"tls 2.0 2024-05-01T00:00:00 net/x/1 abc 1.2.3.4:5 6.7.8.9:443 5 3 100 200", Format::Nlb),
            (b"2024-05-01T00:00:00.1Z my-elb 1.2.3.4:5 10.0.0.1:80 0.1 0.2 0.1 200 200 0 10 \"GET / HTTP/1.1\"", Format::Elb),
            // ALB connection logs start with the time too, then the client's address and port.
            (b"2024-05-01T00:00:00.1Z 192.0.2.7 51000 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 - - - - TID_1", Format::Alb),
            (b"2024-05-01T00:00:00.1Z 2001:db8::7 51000 443 - - - - - - Failed:ClientCertNotFound TID_2", Format::Alb),
            (b"owner bucket [06/Feb/2019:00:00:38 +0000] 1.2.3.4 - ID REST.GET.OBJECT key", Format::S3),
        ] {
            assert_eq!(format_from_content(head), Some(format), "{}", String::from_utf8_lossy(head));
        }
        assert_eq!(format_from_content(b"hello world"), None);
        assert_eq!(format_from_content(b""), None);
    }

    const ALB_KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/\
        123456789012_elasticloadbalancing_us-east-1_app.shop-alb.50dc6c495c0c9188_20261130T1205Z_10.0.0.5_2abc9f.log.gz";

    #[test]
    fn keys_name_their_load_balancer_or_bucket() {
        let named = |key, format: Format| format.dimension_named_by_key(key).map(|(n, v)| format!("{n}={v}"));
        assert_eq!(
            named(ALB_KEY, Format::Alb).as_deref(),
            Some("LoadBalancer=app/shop-alb/50dc6c495c0c9188")
        );
        let conn = ALB_KEY
            .replace("/123456789012_elasticloadbalancing", "/conn_log.123456789012_elasticloadbalancing");
        assert_eq!(named(&conn, Format::Alb).as_deref(), Some("LoadBalancer=app/shop-alb/50dc6c495c0c9188"));
        let classic = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/\
            123456789012_elasticloadbalancing_us-east-1_shop-classic_20261130T1205Z_10.0.0.5_2abc9f.log";
        assert_eq!(named(classic, Format::Elb).as_deref(), Some("LoadBalancerName=shop-classic"));
        let s3 = "access/123456789012/us-east-1/shop-assets/2026/11/30/2026-11-30-12-05-00-0123456789ABCDEF";
        assert_eq!(named(s3, Format::S3).as_deref(), Some("BucketName=shop-assets"));
        assert_eq!(named("logs/alb.log", Format::Alb), None);
        assert_eq!(named("2026-11-30-12-05-00-0123456789ABCDEF", Format::S3), None);
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
            assert_eq!(serde_json::to_value(format).unwrap(), format.name(), "one spelling in JSON too");
        }
        assert_eq!(
            "x".parse::<Format>().unwrap_err().to_string(),
            "unknown log format \"x\": expected one of alb, elb, nlb, cloudfront, s3, vpcflow, cloudtrail, jsonl"
        );
        assert!("apache".parse::<Format>().unwrap_err().to_string().contains("alb, elb"));
    }
}

/// Fuzzing on stable Rust (cargo-fuzz needs a nightly toolchain, which this project's
/// machines cannot install): every parser over arbitrary bytes, and over mutations of real
/// lines, returns a result and never panics.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const SAMPLES: [&[u8]; 5] = [
        b"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067",
        b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla\t-\t-\tHit\tSOX4\td1.net\thttps\t23\t0.001",
        b"owner bucket [06/Feb/2019:00:00:38 +0000] 192.0.2.3 req 3E57 REST.GET.VERSIONING - \"GET /b?versioning HTTP/1.1\" 200 - 113 - 7 - \"-\" \"S3Console/0.4\" -",
        b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
        b"2026-11-30T12:00:01.120000Z 192.0.2.10 51234 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.004 \"CN=a,O=Shop Inc\" 2026-01-01T00:00:00Z-2027-01-01T00:00:00Z 5A3F Failed:CertificateExpired TID_1",
    ];

    fn parse_all(line: &[u8]) {
        for format in Format::ALL {
            if let Some(mut parser) = LineParser::new(format, "x_20261130T1205Z_y", true) {
                let _ = parser.parse(line);
            }
        }
        let _ = format_from_content(line);
        let _ = cloudtrail::read(line, 1 << 16, &mut |_| {});
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..600)) {
            parse_all(&line);
        }

        #[test]
        fn mutated_real_lines(sample in 0..SAMPLES.len(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let mut line = SAMPLES[sample].to_vec();
            for (at, byte) in edits {
                let at = at % line.len();
                line[at] = byte;
            }
            line.truncate(cut % (line.len() + 1));
            parse_all(&line);
        }

        #[test]
        fn arbitrary_key_names(key in "\\PC{0,200}") {
            let _ = format_from_key(&key);
            let _ = cloudfront::object_dimensions(&key);
        }
    }
}

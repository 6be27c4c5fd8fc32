//! VPC flow logs (and transit gateway flow logs, which share their layout): space-separated;
//! the first line names the fields, default (version 2) or any custom selection of them, and
//! the header alone decides what is read. A flow counts in the minute its aggregation
//! interval started (`start`), else ended (`end`), else in the minute of the delivery time
//! in the object's key; `Packets`, `Bytes` and rejections only when the format logs
//! `packets`, `bytes` and `action`. NODATA and SKIPDATA records are skipped. Optional
//! dimension: `InterfaceId`.

use super::{Measure, Parsed, Record, finish};
use crate::fields::{key_minute, parse_u64};

const DEFAULT_V2: &[u8] =
    b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

/// The field names AWS documents for VPC and transit gateway flow logs: a header line is
/// made of names, at least two of them these (newer names are tolerated, not required).
const KNOWN_FIELDS: &[&[u8]] = &[
    b"version",
    b"account-id",
    b"interface-id",
    b"srcaddr",
    b"dstaddr",
    b"srcport",
    b"dstport",
    b"protocol",
    b"packets",
    b"bytes",
    b"start",
    b"end",
    b"action",
    b"log-status",
    b"vpc-id",
    b"subnet-id",
    b"instance-id",
    b"tcp-flags",
    b"type",
    b"pkt-srcaddr",
    b"pkt-dstaddr",
    b"region",
    b"az-id",
    b"sublocation-type",
    b"sublocation-id",
    b"pkt-src-aws-service",
    b"pkt-dst-aws-service",
    b"flow-direction",
    b"traffic-path",
    b"resource-type",
    b"tgw-id",
    b"tgw-attachment-id",
    b"reject-reason",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    interface_dimension: bool,
    /// The delivery time in the object's key, for formats without `start` and `end`.
    key_minute: Option<i64>,
    interface_id: Option<usize>,
    packets: Option<usize>,
    bytes: Option<usize>,
    start: Option<usize>,
    end: Option<usize>,
    action: Option<usize>,
    log_status: Option<usize>,
}

/// Whether a line is a header: field names only (lower case, digits and `-`), at least two
/// of them known ones.
pub fn is_header(line: &[u8]) -> bool {
    let mut known = 0;
    for name in line.split(|b| *b == b' ').filter(|n| !n.is_empty()) {
        if !(name[0].is_ascii_lowercase()
            && name.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-'))
        {
            return false;
        }
        known += usize::from(KNOWN_FIELDS.contains(&name));
    }
    known >= 2
}

impl Columns {
    /// `key`: the object's key, whose delivery time dates flows that carry no time.
    pub fn new(key: &str, interface_dimension: bool) -> Self {
        Self::from_header(DEFAULT_V2, key_minute(key), interface_dimension)
    }

    fn from_header(line: &[u8], key_minute: Option<i64>, interface_dimension: bool) -> Self {
        let names: Vec<&[u8]> = line.split(|b| *b == b' ').filter(|n| !n.is_empty()).collect();
        let find = |name: &[u8]| names.iter().position(|n| *n == name);
        Self {
            interface_dimension,
            key_minute,
            interface_id: find(b"interface-id"),
            packets: find(b"packets"),
            bytes: find(b"bytes"),
            start: find(b"start"),
            end: find(b"end"),
            action: find(b"action"),
            log_status: find(b"log-status"),
        }
    }

    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        // Values never start with a lower-case name, except ids (`eni-...`), which are no
        // field names: the full test runs on few lines.
        if line.first().is_some_and(u8::is_ascii_lowercase) && is_header(line) {
            *self = Self::from_header(line, self.key_minute, self.interface_dimension);
            return Parsed::Skipped("header");
        }
        let mut fields = [&b""[..]; 64];
        let mut count = 0;
        for field in line.split(|b| *b == b' ').filter(|f| !f.is_empty()).take(64) {
            fields[count] = field;
            count += 1;
        }
        let get = |column: Option<usize>, what| match column {
            Some(i) if i < count => Ok(Some(fields[i])),
            Some(_) => Err(what),
            None => Ok(None),
        };
        // A number, `None` when the format lacks the field or logs `-` for it.
        let number = |column, missing, bad| match get(column, missing)? {
            None | Some(b"-") => Ok(None),
            Some(value) => parse_u64(value).map(Some).ok_or(bad),
        };
        finish((|| {
            match get(self.log_status, "no log-status")? {
                None | Some(b"OK") => {}
                Some(b"NODATA") => return Ok(Err("NODATA flow record")),
                Some(b"SKIPDATA") => return Ok(Err("SKIPDATA flow record")),
                Some(_) => return Err("bad log-status"),
            }
            let start = number(self.start, "no start", "bad start")?;
            let end = number(self.end, "no end", "bad end")?;
            let minute = match start.or(end) {
                Some(seconds) => (seconds as i64).div_euclid(60) * 60,
                None => match self.key_minute {
                    Some(minute) => minute,
                    None => return Ok(Err("flow without start, end or a delivery time in the key")),
                },
            };
            let packets = number(self.packets, "no packets", "bad packets")?;
            let bytes = number(self.bytes, "no bytes", "bad bytes")?;
            let rejected = match get(self.action, "no action")? {
                None | Some(b"-") => None,
                Some(b"ACCEPT") => Some(false),
                Some(b"REJECT") => Some(true),
                Some(_) => return Err("bad action"),
            };
            let mut record = Record::new(minute, Measure::Flow { packets, bytes, rejected });
            if let (true, Some(id)) = (self.interface_dimension, get(self.interface_id, "no interface-id")?) {
                record = record.with("InterfaceId", id);
            }
            Ok(Ok(record))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2026/11/30/123456789010_vpcflowlogs_us-east-1_fl-0a1b2c3d_20261130T1205Z_1a2b3c4d.log.gz";

    fn flow(columns: &mut Columns, line: &[u8]) -> (i64, Measure) {
        let Parsed::Record(r) = columns.parse(line) else { panic!("{}", String::from_utf8_lossy(line)) };
        (r.minute, r.measure)
    }

    #[test]
    fn default_format_records() {
        let mut columns = Columns::new("x", true);
        assert_eq!(columns.parse(DEFAULT_V2), Parsed::Skipped("header"));
        // From the VPC user guide's flow log record examples.
        let Parsed::Record(r) = columns.parse(
            b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
        ) else {
            panic!()
        };
        assert_eq!(r.minute, 1_418_529_960);
        assert_eq!(r.measure, Measure::Flow { packets: Some(20), bytes: Some(4249), rejected: Some(false) });
        assert_eq!(r.dimensions[0], ("InterfaceId", &b"eni-1235b8ca123456789"[..]));
        let nodata = b"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
        assert_eq!(columns.parse(nodata), Parsed::Skipped("NODATA flow record"));
        assert_eq!(
            columns.parse(b"2 1 eni-1 - - - - - - - 1 2 - MAYBE"),
            Parsed::Malformed("bad log-status")
        );
    }

    #[test]
    fn custom_formats_follow_their_header() {
        let mut columns = Columns::new("x", false);
        assert_eq!(columns.parse(b"start action bytes packets srcaddr"), Parsed::Skipped("header"));
        let (_, measure) = flow(&mut columns, b"1418530010 REJECT 40 1 10.0.0.1");
        assert_eq!(measure, Measure::Flow { packets: Some(1), bytes: Some(40), rejected: Some(true) });
        assert_eq!(columns.parse(b"1418530010 MAYBE 40 1"), Parsed::Malformed("bad action"));
        assert_eq!(columns.parse(b"1418530010 ACCEPT"), Parsed::Malformed("no packets"));
    }

    #[test]
    fn flows_without_counts_action_or_times() {
        // A transit-gateway-style selection: no packets, bytes, start, end or action.
        let mut columns = Columns::new(KEY, false);
        let header = b"version interface-id account-id srcaddr dstaddr srcport dstport protocol tcp-flags type log-status";
        assert!(is_header(header));
        assert_eq!(columns.parse(header), Parsed::Skipped("header"));
        let (minute, measure) = flow(
            &mut columns,
            b"3 eni-0f1e2d3c4b5a69788 123456789010 10.1.0.5 10.2.0.9 40312 443 6 2 IPv4 OK",
        );
        assert_eq!(minute, 1_796_040_300, "the delivery time in the key");
        assert_eq!(measure, Measure::Flow { packets: None, bytes: None, rejected: None });
        // `end` dates a flow when `start` is not logged.
        columns.parse(b"srcaddr dstaddr end action");
        assert_eq!(flow(&mut columns, b"10.1.0.5 10.2.0.9 1796040125 ACCEPT").0, 1_796_040_120);
        // Without any time, in a file named without one: skipped, with its reason.
        let mut columns = Columns::new("flows.log", false);
        columns.parse(b"srcaddr dstaddr action");
        assert_eq!(
            columns.parse(b"10.1.0.5 10.2.0.9 ACCEPT"),
            Parsed::Skipped("flow without start, end or a delivery time in the key")
        );
    }

    #[test]
    fn headers_are_field_names() {
        assert!(!is_header(b"hello world"));
        assert!(!is_header(b"3 eni-1 123 10.0.0.1"));
        assert!(is_header(b"version srcaddr some-future-field"));
    }
}

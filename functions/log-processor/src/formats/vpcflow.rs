//! VPC flow logs: space-separated; the first line names the fields (default version 2 or
//! a custom format). A flow counts in the minute its aggregation interval started. NODATA
//! and SKIPDATA records are skipped. Optional dimension: `InterfaceId`.

use super::{Measure, Parsed, Record, finish};
use crate::fields::parse_u64;

const DEFAULT_V2: &[u8] =
    b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    interface_dimension: bool,
    interface_id: Option<usize>,
    packets: usize,
    bytes: usize,
    start: usize,
    action: usize,
    log_status: Option<usize>,
}

/// Whether a line is a header: field names only (lower case, digits and `-`), among them
/// the ones flows are counted by.
pub fn is_header(line: &[u8]) -> bool {
    let names: Vec<&[u8]> = line.split(|b| *b == b' ').filter(|n| !n.is_empty()).collect();
    names.iter().all(|n| {
        n[0].is_ascii_lowercase()
            && n.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    }) && [&b"packets"[..], b"bytes", b"start", b"action"].iter().all(|f| names.contains(f))
}

impl Columns {
    pub fn new(interface_dimension: bool) -> Self {
        Self::from_header(DEFAULT_V2, interface_dimension).expect("the default header is valid")
    }

    fn from_header(line: &[u8], interface_dimension: bool) -> Option<Self> {
        let names: Vec<&[u8]> = line.split(|b| *b == b' ').filter(|n| !n.is_empty()).collect();
        let find = |name: &[u8]| names.iter().position(|n| *n == name);
        Some(Self {
            interface_dimension,
            interface_id: find(b"interface-id"),
            packets: find(b"packets")?,
            bytes: find(b"bytes")?,
            start: find(b"start")?,
            action: find(b"action")?,
            log_status: find(b"log-status"),
        })
    }

    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        if is_header(line) {
            return match Self::from_header(line, self.interface_dimension) {
                Some(columns) => {
                    *self = columns;
                    Parsed::Skipped
                }
                None => Parsed::Malformed("bad header"),
            };
        }
        let mut fields = [&b""[..]; 64];
        let mut count = 0;
        for field in line.split(|b| *b == b' ').filter(|f| !f.is_empty()).take(64) {
            fields[count] = field;
            count += 1;
        }
        let get = |i: usize, what| if i < count { Ok(fields[i]) } else { Err(what) };
        finish((|| {
            if let Some(i) = self.log_status {
                if get(i, "no log-status")? != b"OK" {
                    return Ok(None);
                }
            }
            let start = parse_u64(get(self.start, "no start")?).ok_or("bad start")? as i64;
            let packets = parse_u64(get(self.packets, "no packets")?).ok_or("bad packets")?;
            let bytes = parse_u64(get(self.bytes, "no bytes")?).ok_or("bad bytes")?;
            let rejected = match get(self.action, "no action")? {
                b"ACCEPT" => false,
                b"REJECT" => true,
                _ => return Err("bad action"),
            };
            let mut record =
                Record::new(start - start.rem_euclid(60), Measure::Flow { packets, bytes, rejected });
            if let (true, Some(i)) = (self.interface_dimension, self.interface_id) {
                record = record.with("InterfaceId", get(i, "no interface-id")?);
            }
            Ok(Some(record))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_records() {
        let mut columns = Columns::new(true);
        assert_eq!(columns.parse(DEFAULT_V2), Parsed::Skipped);
        // From the VPC user guide's flow log record examples.
        let Parsed::Record(r) = columns.parse(
            b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
        ) else {
            panic!()
        };
        assert_eq!(r.minute, 1_418_529_960);
        assert_eq!(r.measure, Measure::Flow { packets: 20, bytes: 4249, rejected: false });
        assert_eq!(r.dimensions[0], ("InterfaceId", &b"eni-1235b8ca123456789"[..]));
        let nodata = b"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
        assert_eq!(columns.parse(nodata), Parsed::Skipped);
    }

    #[test]
    fn custom_formats_follow_their_header() {
        let mut columns = Columns::new(false);
        assert_eq!(columns.parse(b"start action bytes packets srcaddr"), Parsed::Skipped);
        let Parsed::Record(r) = columns.parse(b"1418530010 REJECT 40 1 10.0.0.1") else { panic!() };
        assert_eq!(r.measure, Measure::Flow { packets: 1, bytes: 40, rejected: true });
        assert_eq!(r.dimension_count, 0);
        assert_eq!(columns.parse(b"1418530010 MAYBE 40 1"), Parsed::Malformed("bad action"));
        assert_eq!(columns.parse(b"1418530010 ACCEPT"), Parsed::Malformed("no packets"));
    }
}

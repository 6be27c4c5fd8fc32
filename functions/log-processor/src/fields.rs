//! Tokenizing space-separated log lines whose fields may be double-quoted.

/// Yields the fields of a line: a run of non-space bytes, or a `"..."` string (returned
/// without the quotes; a backslash escapes the next byte inside it).
pub struct Fields<'a> {
    rest: &'a [u8],
    /// `[...]` is one field too (S3 access logs' time).
    brackets: bool,
}

impl<'a> Fields<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Self { rest: line, brackets: false }
    }

    pub fn with_brackets(line: &'a [u8]) -> Self {
        Self { rest: line, brackets: true }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while let [b' ', tail @ ..] = self.rest {
            self.rest = tail;
        }
        if self.rest.is_empty() {
            return None;
        }
        if self.brackets && self.rest[0] == b'[' {
            let end = memchr::memchr(b']', self.rest).unwrap_or(self.rest.len());
            let field = &self.rest[1..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            return Some(field);
        }
        if self.rest[0] == b'"' {
            let body = &self.rest[1..];
            let mut i = 0;
            while i < body.len() {
                match body[i] {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            let end = i.min(body.len());
            let field = &body[..end];
            self.rest = body.get(end + 1..).unwrap_or_default();
            Some(field)
        } else {
            let end = memchr::memchr(b' ', self.rest).unwrap_or(self.rest.len());
            let field = &self.rest[..end];
            self.rest = &self.rest[end..];
            Some(field)
        }
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 18 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    digits(bytes).map(|n| n as u64)
}

pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start of the minute, in Unix seconds, of an ISO-8601 UTC time such as
/// `2018-07-02T22:23:00.186641Z`.
pub fn iso8601_minute(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 16 || bytes[10] != b'T' {
        return None;
    }
    civil_minute(&bytes[..10], &bytes[11..])
}

/// The start of the minute of a date `YYYY-MM-DD` and a time `HH:MM[:SS]` (CloudFront).
pub fn civil_minute(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || time.len() < 5 || date[4] != b'-' || date[7] != b'-' || time[2] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&date[0..4])?, digits(&date[5..7])?, digits(&date[8..10])?);
    let (hour, minute) = (digits(&time[0..2])?, digits(&time[3..5])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60)
}

/// The start of the minute of the delivery time AWS writes into log file names
/// (`..._20240501T0005Z_...`, ELB's and VPC Flow Logs' layouts): the end of the interval the
/// file covers.
pub fn key_minute(key: &str) -> Option<i64> {
    let file = key.rsplit('/').next().unwrap_or(key);
    file.split(['_', '.']).find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        let date = [&b[0..4], b"-", &b[4..6], b"-", &b[6..8]].concat();
        let time = [&b[9..11], b":", &b[11..13]].concat();
        civil_minute(&date, &time)
    })
}

/// The start of the minute of a Common Log Format time, `06/Feb/2019:00:00:38 +0000`.
pub fn clf_minute(time: &[u8]) -> Option<i64> {
    if time.len() != 26 || time[2] != b'/' || time[6] != b'/' || time[11] != b':' || time[20] != b' ' {
        return None;
    }
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let month = MONTHS.iter().position(|m| *m == &time[3..6])? as i64 + 1;
    let (day, year) = (digits(&time[0..2])?, digits(&time[7..11])?);
    let (hour, minute) = (digits(&time[12..14])?, digits(&time[15..17])?);
    let sign = match time[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = sign * (digits(&time[22..24])? * 3600 + digits(&time[24..26])? * 60);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        Fields::new(line.as_bytes()).map(|f| String::from_utf8_lossy(f).into_owned()).collect()
    }

    #[test]
    fn splits_quoted_fields() {
        assert_eq!(fields(r#"a "b c" - "d \"e\"" "" f"#), vec!["a", "b c", "-", r#"d \"e\""#, "", "f"]);
        assert_eq!(fields(r#"x "unterminated"#), vec!["x", "unterminated"]);
        assert!(fields("   ").is_empty());
        let bracketed: Vec<&[u8]> = Fields::with_brackets(b"a [06/Feb/2019:00:00:38 +0000] b").collect();
        assert_eq!(bracketed, [&b"a"[..], b"06/Feb/2019:00:00:38 +0000", b"b"]);
    }

    #[test]
    fn minutes_from_iso_times() {
        assert_eq!(iso8601_minute(b"1970-01-01T00:00:59.9Z"), Some(0));
        assert_eq!(iso8601_minute(b"2018-07-02T22:23:00.186641Z"), Some(1_530_570_180));
        assert_eq!(iso8601_minute(b"2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(iso8601_minute(b"2024-13-01T00:00:00Z"), None);
        assert_eq!(iso8601_minute(b"not a time"), None);
        assert_eq!(civil_minute(b"2019-12-04", b"21:02:31"), Some(1_575_493_320));
        assert_eq!(civil_minute(b"2019-12-04", b"21"), None);
        assert_eq!(clf_minute(b"06/Feb/2019:00:00:38 +0000"), Some(1_549_411_200));
        assert_eq!(clf_minute(b"06/Feb/2019:01:00:38 +0100"), Some(1_549_411_200));
        assert_eq!(clf_minute(b"06/Foo/2019:00:00:38 +0000"), None);
        let key = "AWSLogs/1/vpcflowlogs/us-east-1/2026/11/30/1_vpcflowlogs_us-east-1_fl-1_20261130T1205Z_ab12.log.gz";
        assert_eq!(key_minute(key), Some(1_796_040_300));
        assert_eq!(
            key_minute("conn_log.1_elasticloadbalancing_us-east-1_app.x.1_20261130T1205Z_10.0.0.1_r.log"),
            Some(1_796_040_300)
        );
        assert_eq!(key_minute("flows.log"), None);
        assert_eq!(key_minute("x_20261399T1205Z_y"), None);
    }
}

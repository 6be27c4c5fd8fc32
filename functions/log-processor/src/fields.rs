//! Tokenizing space-separated log lines whose fields may be double-quoted.

/// Yields the fields of a line: a run of non-space bytes, or a `"..."` string (returned
/// without the quotes; a backslash escapes the next byte inside it).
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Self { rest: line }
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
    if bytes.len() < 17 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' || bytes[13] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&bytes[0..4])?, digits(&bytes[5..7])?, digits(&bytes[8..10])?);
    let (hour, minute) = (digits(&bytes[11..13])?, digits(&bytes[14..16])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60)
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
    }

    #[test]
    fn minutes_from_iso_times() {
        assert_eq!(iso8601_minute(b"1970-01-01T00:00:59.9Z"), Some(0));
        assert_eq!(iso8601_minute(b"2018-07-02T22:23:00.186641Z"), Some(1_530_570_180));
        assert_eq!(iso8601_minute(b"2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(iso8601_minute(b"2024-13-01T00:00:00Z"), None);
        assert_eq!(iso8601_minute(b"not a time"), None);
    }
}

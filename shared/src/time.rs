//! Calendar dates of Unix times, without a date library (the functions need only this).

/// The UTC date (year, month 1-12, day 1-31) of Unix seconds (Howard Hinnant's
/// civil_from_days).
pub fn civil_date(unix: i64) -> (i64, i64, i64) {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_unix_times() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(1_796_040_000), (2026, 11, 30));
        assert_eq!(civil_date(1_709_208_000), (2024, 2, 29));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
    }
}

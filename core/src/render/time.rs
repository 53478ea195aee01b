//! Wall-clock times as RFC 3339 text, without a clock and without a date library.

/// Formats unix milliseconds as RFC 3339 UTC with millisecond precision and a `Z`, e.g.
/// `2024-01-01T00:00:00.123Z`.
///
/// The milliseconds are always printed (three digits), so every value has the same width and
/// strings sort like the times they show. Years past 9999 print with more than four digits
/// (RFC 3339 cannot express them); no such time occurs in practice.
///
/// ```
/// use sora2api_core::render::rfc3339_utc;
///
/// assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
/// ```
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let millis = unix_ms % 1000;
    let secs = unix_ms / 1000;
    let (hour, minute, second) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (year, month, day) = civil_from_days(secs / 86_400);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
///
/// Howard Hinnant's `civil_from_days`, restricted to days >= 0 so it runs on unsigned
/// integers: the year is shifted to start in March (so the leap day is the last day of a
/// shifted year), and the days are split into 400-year eras of 146 097 days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719 468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_times() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (999, "1970-01-01T00:00:00.999Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (86_400_000, "1970-01-02T00:00:00.000Z"),
            (68_169_600_000, "1972-02-29T00:00:00.000Z"),
            (951_782_399_999, "2000-02-28T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_704_067_200_123, "2024-01-01T00:00:00.123Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),
            (1_735_689_600_000, "2025-01-01T00:00:00.000Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
            // 2100 is not a leap year: the day after 02-28 is 03-01.
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(rfc3339_utc(ms), want, "{ms}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous() {
        // Walk 1970..2370 day by day: the date always advances by exactly one calendar day.
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..146_097u64 {
            let next = civil_from_days(days);
            let (y, m, d) = prev;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, want, "day {days}");
            prev = next;
        }
    }

    #[test]
    fn the_largest_input_does_not_overflow() {
        let text = rfc3339_utc(u64::MAX);
        assert!(text.ends_with("14:25:51.615Z"), "{text}");
    }
}

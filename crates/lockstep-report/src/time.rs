//! Times (ms since the Unix epoch) and durations as a person reads them, in UTC, without a
//! clock: the report is a pure function of the run. The calendar is jiff's.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `2026-11-21 08:36:48 UTC`.
pub fn utc(ms: u64) -> String {
    match civil(ms) {
        Some(t) => format!(
            "{} {:02}:{:02}:{:02} UTC",
            t.date(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => out_of_range(ms),
    }
}

/// `08:36` or `08:36:48` (with seconds when `seconds`), for axis ticks.
pub fn clock(ms: u64, seconds: bool) -> String {
    match civil(ms) {
        Some(t) if seconds => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        Some(t) => format!("{:02}:{:02}", t.hour(), t.minute()),
        None => out_of_range(ms),
    }
}

/// `2026-11-21`.
pub fn date(ms: u64) -> String {
    civil(ms).map_or_else(|| out_of_range(ms), |t| t.date().to_string())
}

/// The UTC date and time of `ms`, or none past what a calendar date can say (year 9999).
fn civil(ms: u64) -> Option<DateTime> {
    let ms = i64::try_from(ms).ok()?;
    let t = Timestamp::from_millisecond(ms).ok()?;
    Some(TimeZone::UTC.to_datetime(t))
}

/// What a time past year 9999 (a corrupt record) shows: the number as stored.
fn out_of_range(ms: u64) -> String {
    format!("{ms} ms after 1970 (past year 9999)")
}

/// A duration, in the one style of every output ([`lockstep_core::duration_text`]).
pub use lockstep_core::duration_text as duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC, a leap day in a year divisible by 400.
        assert_eq!(utc(951_827_696_000), "2000-02-29 12:34:56 UTC");
        // 2026-11-21 08:36:48 UTC.
        assert_eq!(utc(1_795_250_208_999), "2026-11-21 08:36:48 UTC");
        assert_eq!(date(1_795_250_208_999), "2026-11-21");
        assert_eq!(clock(1_795_250_208_999, false), "08:36");
        assert_eq!(clock(1_795_250_208_999, true), "08:36:48");
    }

    #[test]
    fn leap_days_and_year_ends() {
        // 2028-02-29 23:59:59.999 UTC, then one ms later the first of March.
        assert_eq!(utc(1_835_481_599_999), "2028-02-29 23:59:59 UTC");
        assert_eq!(date(1_835_481_600_000), "2028-03-01");
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(date(4_107_542_399_000), "2100-02-28");
        assert_eq!(date(4_107_542_400_000), "2100-03-01");
        // The last second of 2026 and the first of 2027.
        assert_eq!(utc(1_798_761_599_000), "2026-12-31 23:59:59 UTC");
        assert_eq!(utc(1_798_761_600_000), "2027-01-01 00:00:00 UTC");
        assert_eq!(clock(1_798_761_600_000, true), "00:00:00");
    }

    #[test]
    fn times_past_the_calendar_say_so() {
        assert_eq!(
            utc(u64::MAX),
            format!("{} ms after 1970 (past year 9999)", u64::MAX)
        );
        assert!(date(300_000_000_000_000).contains("past year 9999"));
    }
}

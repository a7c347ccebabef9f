//! Times (ms since the Unix epoch) and durations as a person reads them, in UTC, without a
//! clock: the report is a pure function of the run.

/// `2026-11-21 08:36:48 UTC`.
pub fn utc(ms: u64) -> String {
    let (date, secs_of_day) = civil(ms);
    format!(
        "{date} {:02}:{:02}:{:02} UTC",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// `08:36` or `08:36:48` (with seconds when `seconds`), for axis ticks.
pub fn clock(ms: u64, seconds: bool) -> String {
    let (_, s) = civil(ms);
    if seconds {
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 3600, s / 60 % 60)
    }
}

/// `2026-11-21`.
pub fn date(ms: u64) -> String {
    civil(ms).0
}

/// The date (`YYYY-MM-DD`) and the seconds into that day (the calendar is humantime's RFC 3339
/// form, not arithmetic of our own).
fn civil(ms: u64) -> (String, u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ms / 1000);
    let text = humantime::format_rfc3339_seconds(t).to_string(); // 2026-11-21T08:36:48Z
    (text[..10].to_owned(), ms / 1000 % 86_400)
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
}

//! The one way a duration is written for a person (plan estimates, progress, status, reports,
//! halt texts): `850 ms`, `4.2 s`, `42 s`, `4 min 05 s`, `5 min`, `1 h 02 min`, `2 h`,
//! `2 d 03 h`. The smaller unit is left out when it is zero.

/// `ms` as a person reads it.
pub fn duration_text(ms: u64) -> String {
    let s = ms / 1000;
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small:02} {small_unit}")
        }
    };
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 10_000 {
        format!("{}.{} s", s, ms % 1000 / 100)
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        pair(s / 60, "min", s % 60, "s")
    } else if s < 86_400 {
        pair(s / 3600, "h", s / 60 % 60, "min")
    } else {
        pair(s / 86_400, "d", s / 3600 % 24, "h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_reads_well() {
        assert_eq!(duration_text(0), "0 ms");
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(4_250), "4.2 s");
        assert_eq!(duration_text(42_000), "42 s");
        assert_eq!(duration_text(245_000), "4 min 05 s");
        assert_eq!(duration_text(300_000), "5 min");
        assert_eq!(duration_text(3_720_000), "1 h 02 min");
        assert_eq!(duration_text(7_200_000), "2 h");
        assert_eq!(duration_text(183_600_000), "2 d 03 h");
        assert_eq!(duration_text(u64::MAX), "213503982334 d 14 h");
    }
}

//! Run ids: `r` + UTC `YYYYMMDD-HHMMSS` + `-` + 4 random hex digits, sortable by creation second.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use lockstep_core::RunId;

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The run id for a creation time (ms since the Unix epoch) and a 16-bit suffix.
pub fn run_id_at(created_ms: u64, suffix: u16) -> RunId {
    let secs = (created_ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    RunId(format!(
        "r{y:04}{mo:02}{d:02}-{:02}{:02}{:02}-{suffix:04x}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    ))
}

/// A fresh run id for a creation time, with a random suffix.
pub fn new_run_id(created_ms: u64) -> RunId {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(created_ms);
    h.write_u32(std::process::id());
    run_id_at(created_ms, h.finish() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 is day 11016; 2026-11-21 is day 20778.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
    }

    #[test]
    fn run_id_has_the_documented_shape() {
        // 2026-11-21 08:18:54.123 UTC
        let ms = 20_778 * 86_400_000 + (8 * 3600 + 18 * 60 + 54) * 1000 + 123;
        assert_eq!(run_id_at(ms, 0xbeef).0, "r20261121-081854-beef");
        let fresh = new_run_id(ms).0;
        assert_eq!(fresh.len(), "r20261121-081854-beef".len());
        assert!(fresh.starts_with("r20261121-081854-"));
        assert!(fresh[17..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn run_ids_sort_by_creation_second() {
        let a = run_id_at(1_000_000_000_000, 0xffff);
        let b = run_id_at(1_000_000_001_000, 0x0000);
        let c = run_id_at(1_700_000_000_000, 0x1234);
        assert!(a < b && b < c);
    }
}

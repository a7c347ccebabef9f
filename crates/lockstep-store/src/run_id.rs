//! Run ids: `r` + UTC `YYYYMMDD-HHMMSS` + `-` + 4 random hex digits, sortable by creation second.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use lockstep_core::RunId;

/// The run id for a creation time (ms since the Unix epoch) and a 16-bit suffix (the calendar
/// is jiff's, not arithmetic of our own; a time past year 9999 reads as its last second).
pub fn run_id_at(created_ms: u64, suffix: u16) -> RunId {
    let at = i64::try_from(created_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    RunId(format!("r{}-{suffix:04x}", at.strftime("%Y%m%d-%H%M%S")))
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

    #[test]
    fn calendar_edges() {
        // 2000-02-29 and 2000-03-01 (day 11016 and 11017), and the epoch.
        assert_eq!(run_id_at(11_016 * 86_400_000, 1).0, "r20000229-000000-0001");
        assert_eq!(
            run_id_at(11_017 * 86_400_000 - 1, 1).0,
            "r20000229-235959-0001"
        );
        assert_eq!(run_id_at(0, 0).0, "r19700101-000000-0000");
    }
}

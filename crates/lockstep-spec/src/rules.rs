//! The rule ids of `kb328839.md`: what a step's `rule:` may cite in the KB's namespace.
//!
//! The ids are not written here: they are the keys of `docs/kb328839-rules.yml` (compiled in),
//! the one list of the KB's rules that `tests/it/kb_rules.rs` checks against the procedure file
//! and the shipped playbooks. A numbered procedure is an id with steps `ID.1`, `ID.2`...

use std::sync::OnceLock;

/// Every id of the KB, in the file's order (`G1`, then each procedure's and its steps').
fn ids() -> &'static [&'static str] {
    static IDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    IDS.get_or_init(|| {
        include_str!("../../../docs/kb328839-rules.yml")
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
            .filter_map(|l| l.split_once(':').map(|(id, _)| id.trim()))
            .collect()
    })
}

/// The steps of numbered procedure `base` (0 when it is not one).
fn steps_of(base: &str) -> usize {
    ids()
        .iter()
        .filter(|id| {
            id.strip_prefix(base)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count()
}

/// Every id a step may cite without its step number, for suggestions.
pub(crate) fn known_ids() -> Vec<&'static str> {
    ids()
        .iter()
        .copied()
        .filter(|id| !id.contains('.'))
        .collect()
}

/// Why `id` is not a rule id, or `None` when it is one.
pub(crate) fn check_rule(id: &str) -> Option<String> {
    if id.trim().is_empty() {
        return Some("a rule id is needed (free text such as `PATCH-1`, or a KB 328839 id)".into());
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Some(format!("contains {c:?}"));
    }
    if !kb_namespace(id) {
        // Free text: the administrator's own change or rule id (`PATCH-1`, `CHG0031337`).
        return None;
    }
    if ids().contains(&id) {
        return None;
    }
    if let Some((base, _)) = id.rsplit_once('.') {
        let n = steps_of(base);
        if n > 0 {
            return Some(format!("procedure `{base}` has steps 1 to {n}"));
        }
        if ids().contains(&base) {
            return Some(format!("`{base}` is a rule, not a numbered procedure"));
        }
    }
    Some("not a rule id of KB 328839 (G1-G7, E3-*, E2-*, E5-*, T1, T2)".into())
}

/// Whether `id` is written in KB 328839's namespace (`G5`, `T2`, `E3-...`, `E2-...`, `E5-...`):
/// those are checked against the KB so that a typo is caught; anything else is free text.
fn kb_namespace(id: &str) -> bool {
    let b = id.as_bytes();
    let numbered = |p: u8| b.len() >= 2 && b[0] == p && b[1].is_ascii_digit();
    numbered(b'G') || numbered(b'T') || ["E2-", "E3-", "E5-"].iter().any(|p| id.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert_eq!(check_rule("G5"), None);
        assert_eq!(check_rule("E3-CLUSTER.18"), None);
        assert_eq!(check_rule("E2-ACTIVE-ACTIVE.5"), None);
        assert!(check_rule("E3-CLUSTER.19").is_some());
        assert!(check_rule("E2-ACTIVE-PASSIVE.0").is_some());
        assert!(check_rule("G8").is_some());
        assert!(check_rule("G5.1").is_some());
        assert!(check_rule("").is_some());
        // Free text outside the KB's namespace: an administrator's own ids.
        assert_eq!(check_rule("PATCH-1"), None);
        assert_eq!(check_rule("CHG0031337"), None);
        assert!(
            check_rule("E3-CLUSTR.4").is_some(),
            "a KB-looking typo is still caught"
        );
        assert!(check_rule("PATCH\u{7}").is_some());
    }
}

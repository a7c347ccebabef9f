//! The rule ids of `kb328839.md`: what a step's `rule:` may cite.

/// Rules without steps.
const RULES: &[&str] = &[
    "G1", "G2", "G3", "G4", "G5", "G6", "G7", "E3-NC", "E3-FB", "E3-LB", "E3-C", "E3-C1", "E3-C2",
    "E3-SBS", "T1", "T2", "E2-NC", "E2-FB", "E2-ED", "E2-ADC", "E2-SBS", "E5-G", "E5-NC", "E5-SBS",
];

/// Numbered procedures and how many steps each has.
const PROCEDURES: &[(&str, u32)] = &[
    ("E3-CLUSTER", 18),
    ("E2-ACTIVE-PASSIVE", 3),
    ("E2-ACTIVE-ACTIVE", 5),
    ("E5-CLUSTER", 2),
];

/// Every id a step may cite, for suggestions.
pub(crate) fn known_ids() -> Vec<&'static str> {
    RULES
        .iter()
        .copied()
        .chain(PROCEDURES.iter().map(|(p, _)| *p))
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
    if RULES.contains(&id) || PROCEDURES.iter().any(|(p, _)| *p == id) {
        return None;
    }
    if let Some((base, step)) = id.rsplit_once('.') {
        if let Some((_, n)) = PROCEDURES.iter().find(|(p, _)| *p == base) {
            return match step.parse::<u32>() {
                Ok(s) if (1..=*n).contains(&s) => None,
                _ => Some(format!("procedure `{base}` has steps 1 to {n}")),
            };
        }
        if RULES.contains(&base) {
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

//! Host selection: Ansible-style patterns over host, group, site, cluster and pool names.
//!
//! A pattern list is a union of terms; a term is a name or a glob (`*`, `?`), matched
//! case-insensitively against host names, inventory groups, sites, clusters and pools (`all` and
//! `*` match every host). A list element may hold several terms separated by `:` or `,`; a term
//! written `!x` removes what `x` matches and `&x` keeps only what `x` also matches; `~REGEX`
//! matches every name the regular expression is found in (case-sensitive, as in Ansible).

use std::collections::HashMap;

use lockstep_core::Fleet;

use crate::error::PlanError;

/// The hosts of a fleet a pattern list selects, by index in [`Fleet::hosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection(pub Vec<bool>);

impl Selection {
    pub(crate) fn contains(&self, host: usize) -> bool {
        self.0[host]
    }
}

/// Whether a host-pattern glob (`*` any run, `?` one character; every other character literal,
/// `[` and `{` included) matches `name`, case-insensitively, as Ansible's host patterns do.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    glob_matcher(pattern).is_some_and(|m| m.is_match(name))
}

fn glob_matcher(pattern: &str) -> Option<globset::GlobMatcher> {
    let mut escaped = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '*' | '?' => escaped.push(c),
            _ => escaped.push_str(&globset::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    globset::GlobBuilder::new(&escaped)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// Resolves patterns against one fleet; keeps a name index so 10,000 hosts stay cheap.
pub(crate) struct Selector<'f> {
    fleet: &'f Fleet,
    by_name: HashMap<String, usize>,
}

impl<'f> Selector<'f> {
    pub(crate) fn new(fleet: &'f Fleet) -> Self {
        let by_name = fleet
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str().to_ascii_lowercase(), i))
            .collect();
        Selector { fleet, by_name }
    }

    /// The host index of `name` (case-insensitive).
    pub(crate) fn host_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// Marks in `out` every host one term matches; false when it matches nothing at all.
    fn term(&self, term: &str, out: &mut [bool]) -> bool {
        let fleet = self.fleet;
        if term.eq_ignore_ascii_case("all") || term == "*" {
            // Always a known pattern: on a fleet with nothing to take, the playbook selects
            // nothing (reported as such), not an unknown name.
            out.iter_mut().for_each(|b| *b = true);
            return true;
        }
        // `~REGEX`: a regular expression searched in each name, as Ansible's `~` patterns.
        let re = term
            .strip_prefix('~')
            .and_then(|r| regex::Regex::new(r).ok());
        let is_glob = re.is_some() || term.contains(['*', '?']);
        let glob = if re.is_none() && is_glob {
            glob_matcher(term)
        } else {
            None
        };
        let m = |name: &str| {
            if let Some(re) = &re {
                re.is_match(name)
            } else if let Some(g) = &glob {
                g.is_match(name)
            } else if is_glob {
                false
            } else {
                name.eq_ignore_ascii_case(term)
            }
        };
        let mut any = false;
        let mark = |name: &str, out: &mut [bool]| {
            if let Some(i) = self.host_index(name) {
                out[i] = true;
            }
        };
        if is_glob {
            for (i, h) in fleet.hosts.iter().enumerate() {
                if m(h.name.as_str()) {
                    out[i] = true;
                    any = true;
                }
            }
        } else if let Some(i) = self.host_index(term) {
            out[i] = true;
            any = true;
        }
        for (g, members) in &fleet.groups {
            if m(g.as_str()) {
                any = true;
                for h in members {
                    mark(h.as_str(), out);
                }
            }
        }
        for c in &fleet.clusters {
            if m(c.name.as_str()) {
                any = true;
                for h in &c.nodes {
                    mark(h.as_str(), out);
                }
            }
        }
        for p in &fleet.pools {
            if m(p.name.as_str()) {
                any = true;
                for h in &p.members {
                    mark(h.as_str(), out);
                }
            }
        }
        let sites: Vec<&str> = fleet
            .sites
            .iter()
            .map(|s| s.name.as_str())
            .filter(|s| m(s))
            .collect();
        if !sites.is_empty() {
            any = true;
            for (i, h) in fleet.hosts.iter().enumerate() {
                if sites.iter().any(|s| h.site.eq_ignore_case(s)) {
                    out[i] = true;
                }
            }
        }
        any
    }

    /// Resolves a pattern list; an empty list selects every host when `empty_is_all`.
    pub(crate) fn select(
        &self,
        patterns: &[String],
        empty_is_all: bool,
        errors: &mut Vec<PlanError>,
    ) -> Selection {
        self.select_with(patterns, empty_is_all, false, errors)
    }

    /// [`Selector::select`]; with `lenient_exclusions`, a `!x` matching nothing is no error
    /// (a playbook's `hosts:` may leave out a group some fleets lack, as Ansible allows).
    pub(crate) fn select_with(
        &self,
        patterns: &[String],
        empty_is_all: bool,
        lenient_exclusions: bool,
        errors: &mut Vec<PlanError>,
    ) -> Selection {
        let n = self.fleet.hosts.len();
        let terms: Vec<&str> = patterns
            .iter()
            .flat_map(|p| p.split([':', ',']))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if terms.is_empty() {
            return Selection(vec![empty_is_all; n]);
        }
        let mut union = vec![false; n];
        let mut has_positive = false;
        let mut intersections: Vec<Vec<bool>> = Vec::new();
        let mut exclusions = vec![false; n];
        for t in terms {
            let (target, body) = if let Some(b) = t.strip_prefix('!') {
                (2, b)
            } else if let Some(b) = t.strip_prefix('&') {
                (1, b)
            } else {
                (0, t)
            };
            let mut hit = vec![false; n];
            let matched = self.term(body, &mut hit);
            let excused = lenient_exclusions && target == 2;
            if !matched && !excused {
                errors.push(PlanError::UnknownPattern {
                    pattern: t.to_owned(),
                });
            }
            match target {
                0 => {
                    has_positive = true;
                    union.iter_mut().zip(&hit).for_each(|(u, h)| *u |= *h);
                }
                1 => intersections.push(hit),
                _ => exclusions.iter_mut().zip(&hit).for_each(|(e, h)| *e |= *h),
            }
        }
        if !has_positive {
            union = vec![true; n];
        }
        for (i, u) in union.iter_mut().enumerate() {
            *u = *u && !exclusions[i] && intersections.iter().all(|x| x[i]);
        }
        Selection(union)
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches as glob;

    #[test]
    fn globs() {
        assert!(glob("PRG-*", "prg-n1"));
        assert!(glob("*n?", "PRG-N1"));
        assert!(!glob("PRG-*", "MIL-N1"));
        assert!(glob("*", ""));
        assert!(!glob("a", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        // Only `*` and `?` are special, as in Ansible's host patterns.
        assert!(glob("web[1]*", "WEB[1]-A"));
        assert!(!glob("web[1]*", "web1-a"));
        assert!(glob("{a,b}", "{A,B}"));
    }
}

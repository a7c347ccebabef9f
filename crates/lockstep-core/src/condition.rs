//! Conditions over facts, as playbooks write them: `os_build >= 17763.5696 and kb5034441`,
//! `State == 'Up'`, `not reboot_pending`.
//!
//! A [`Condition`] is parsed once (the spec loader reports a bad one with its position) and
//! stored in plans as its canonical text, so the plan hash sees exactly what will be evaluated.
//! Evaluation is pure: the caller supplies each fact's [`FactValue`]. Comparison is typed by
//! value: two dotted numbers (`17763.5696`, `6.5.7638.2`, `3010`) compare part by part as
//! numbers; `true`/`false` compare as booleans; anything else compares as text, case-insensitively,
//! for `==`/`!=` only (an ordering between texts is false). A missing fact makes every
//! comparison false (and `!=` true), so `not` of a missing fact holds.
//!
//! Grammar: `expr := and ('or' and)*`, `and := unary ('and' unary)*`,
//! `unary := 'not' unary | '(' expr ')' | fact [op literal]`, `op := == != >= > <= <`,
//! `literal := 'text' | "text" | bare-word`; a fact name is `[A-Za-z_][A-Za-z0-9_.]*` (a dot
//! reaches into a JSON object). A bare fact is true when it is `true`, a non-zero number or a
//! non-empty text other than `false`/`0`.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
}

impl Cmp {
    fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
            Cmp::Le => "<=",
            Cmp::Lt => "<",
        }
    }

    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Ge => o != Ordering::Less,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Lt => o == Ordering::Less,
        }
    }
}

/// A boolean condition over named facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// A fact, alone (truthy) or compared with a literal.
    Fact {
        /// Fact name (`os_build`, `State`, `node.State`).
        name: String,
        /// The comparison, if any.
        cmp: Option<(Cmp, String)>,
    },
    /// Negation.
    Not(Box<Condition>),
    /// Every one holds.
    And(Vec<Condition>),
    /// At least one holds.
    Or(Vec<Condition>),
}

/// A fact's value as read from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactValue {
    /// The probe found nothing (no such registry value, JSON `null`, no WQL row).
    Missing,
    /// A boolean.
    Bool(bool),
    /// Anything else, as text (numbers and versions included).
    Text(String),
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactValue::Missing => f.write_str("(missing)"),
            FactValue::Bool(b) => write!(f, "{b}"),
            FactValue::Text(t) => f.write_str(t),
        }
    }
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition `{text}` does not parse: {why}")]
pub struct ConditionError {
    /// The text as written.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

/// `a.b.c` numeric parts, when every part is a number (1 to 8 parts).
fn dotted(s: &str) -> Option<Vec<u64>> {
    let parts: Vec<&str> = s.trim().split('.').collect();
    if parts.is_empty() || parts.len() > 8 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
        })
        .collect()
}

fn cmp_dotted(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

impl FactValue {
    /// Whether the value counts as true on its own.
    pub fn truthy(&self) -> bool {
        match self {
            FactValue::Missing => false,
            FactValue::Bool(b) => *b,
            FactValue::Text(t) => {
                let t = t.trim();
                !(t.is_empty()
                    || t.eq_ignore_ascii_case("false")
                    || dotted(t).is_some_and(|d| d.iter().all(|x| *x == 0)))
            }
        }
    }

    /// Whether `self OP literal` holds (typed as the module header says).
    pub fn compare(&self, cmp: Cmp, literal: &str) -> bool {
        let text = match self {
            FactValue::Missing => return cmp == Cmp::Ne,
            FactValue::Bool(b) => {
                let want = match literal.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return cmp == Cmp::Ne,
                };
                return match cmp {
                    Cmp::Eq => *b == want,
                    Cmp::Ne => *b != want,
                    _ => false,
                };
            }
            FactValue::Text(t) => t.trim(),
        };
        if let (Some(a), Some(b)) = (dotted(text), dotted(literal)) {
            return cmp.holds(cmp_dotted(&a, &b));
        }
        match cmp {
            Cmp::Eq => text.eq_ignore_ascii_case(literal),
            Cmp::Ne => !text.eq_ignore_ascii_case(literal),
            _ => false,
        }
    }
}

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let err = |why: String| ConditionError {
            text: text.to_owned(),
            why,
        };
        let tokens = lex(text).map_err(err)?;
        if tokens.is_empty() {
            return Err(err("it is empty".into()));
        }
        let mut p = Parser { t: &tokens, i: 0 };
        let c = p.or().map_err(err)?;
        if let Some(t) = tokens.get(p.i) {
            return Err(err(format!("unexpected {t}")));
        }
        Ok(c)
    }

    /// The fact names it reads, sorted.
    pub fn facts(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Condition::Fact { name, .. } => {
                out.insert(name.as_str());
            }
            Condition::Not(c) => c.collect(out),
            Condition::And(cs) | Condition::Or(cs) => cs.iter().for_each(|c| c.collect(out)),
        }
    }

    /// Evaluates it with `fact` giving each fact's value.
    pub fn eval(&self, fact: &mut dyn FnMut(&str) -> FactValue) -> bool {
        match self {
            Condition::Fact { name, cmp: None } => fact(name).truthy(),
            Condition::Fact {
                name,
                cmp: Some((op, lit)),
            } => fact(name).compare(*op, lit),
            Condition::Not(c) => !c.eval(fact),
            Condition::And(cs) => cs.iter().all(|c| c.eval(fact)),
            Condition::Or(cs) => cs.iter().any(|c| c.eval(fact)),
        }
    }

    /// Replaces every bare fact `name` by `with` (how `target` inside `that:` is expanded).
    pub fn substitute(self, name: &str, with: &Condition) -> Condition {
        match self {
            Condition::Fact { name: n, cmp: None } if n == name => with.clone(),
            Condition::Not(c) => Condition::Not(Box::new(c.substitute(name, with))),
            Condition::And(cs) => {
                Condition::And(cs.into_iter().map(|c| c.substitute(name, with)).collect())
            }
            Condition::Or(cs) => {
                Condition::Or(cs.into_iter().map(|c| c.substitute(name, with)).collect())
            }
            other => other,
        }
    }
}

fn needs_quotes(lit: &str) -> bool {
    lit.is_empty() || !lit.chars().all(is_bare)
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn inner(c: &Condition, f: &mut fmt::Formatter<'_>, nested: bool) -> fmt::Result {
            match c {
                Condition::Fact { name, cmp: None } => f.write_str(name),
                Condition::Fact {
                    name,
                    cmp: Some((op, lit)),
                } => {
                    if needs_quotes(lit) {
                        let q = if lit.contains('\'') { '"' } else { '\'' };
                        write!(f, "{name} {} {q}{lit}{q}", op.as_str())
                    } else {
                        write!(f, "{name} {} {lit}", op.as_str())
                    }
                }
                Condition::Not(c) => {
                    f.write_str("not ")?;
                    inner(c, f, true)
                }
                Condition::And(cs) | Condition::Or(cs) => {
                    let sep = if matches!(c, Condition::And(_)) {
                        " and "
                    } else {
                        " or "
                    };
                    if nested {
                        f.write_str("(")?;
                    }
                    for (i, x) in cs.iter().enumerate() {
                        if i > 0 {
                            f.write_str(sep)?;
                        }
                        inner(x, f, true)?;
                    }
                    if nested {
                        f.write_str(")")?;
                    }
                    Ok(())
                }
            }
        }
        inner(self, f, false)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Condition::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Lit(String),
    Op(Cmp),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Lit(s) => write!(f, "`'{s}'`"),
            Tok::Op(c) => write!(f, "`{}`", c.as_str()),
            Tok::And => f.write_str("`and`"),
            Tok::Or => f.write_str("`or`"),
            Tok::Not => f.write_str("`not`"),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
        }
    }
}

fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '+')
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == c)
                .ok_or_else(|| format!("the quote {c} at character {} is not closed", i + 1))?;
            out.push(Tok::Lit(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two = chars.get(i + 1) == Some(&'=');
            let op = match (c, two) {
                ('=', true) => Cmp::Eq,
                ('!', true) => Cmp::Ne,
                ('>', true) => Cmp::Ge,
                ('<', true) => Cmp::Le,
                ('>', false) => Cmp::Gt,
                ('<', false) => Cmp::Lt,
                _ => {
                    return Err(format!(
                        "`{c}` at character {} is not an operator (use `==` or `!=`)",
                        i + 1
                    ))
                }
            };
            out.push(Tok::Op(op));
            i += if two { 2 } else { 1 };
        } else if is_bare(c) {
            let start = i;
            while i < chars.len() && is_bare(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // After an operator a bare word is a literal (`6.5.7638.2`, `Up`).
            if matches!(out.last(), Some(Tok::Op(_))) {
                out.push(Tok::Lit(word));
                continue;
            }
            out.push(match word.to_ascii_lowercase().as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                _ => Tok::Ident(word),
            });
        } else {
            return Err(format!("unexpected character {c:?} at character {}", i + 1));
        }
    }
    Ok(out)
}

struct Parser<'t> {
    t: &'t [Tok],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.i += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Condition::Or(v)
        })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut v = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.i += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Condition::And(v)
        })
    }

    fn unary(&mut self) -> Result<Condition, String> {
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.i += 1;
                Ok(Condition::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.i += 1;
                let c = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("a `(` is not closed".into());
                }
                self.i += 1;
                Ok(c)
            }
            Some(Tok::Ident(name)) => {
                self.i += 1;
                let first = name.chars().next().unwrap_or('0');
                if !(first.is_ascii_alphabetic() || first == '_')
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    return Err(format!("`{name}` is not a fact name"));
                }
                let cmp = match self.peek().cloned() {
                    Some(Tok::Op(op)) => {
                        self.i += 1;
                        match self.peek().cloned() {
                            Some(Tok::Lit(l)) => {
                                self.i += 1;
                                Some((op, l))
                            }
                            _ => {
                                return Err(format!(
                                    "`{name} {}` needs a value after it",
                                    op.as_str()
                                ))
                            }
                        }
                    }
                    _ => None,
                };
                Ok(Condition::Fact { name, cmp })
            }
            Some(t) => Err(format!("expected a fact name, found {t}")),
            None => Err("it ends where a fact name was expected".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(c: &str, facts: &[(&str, FactValue)]) -> bool {
        Condition::parse(c).unwrap().eval(&mut |n| {
            facts
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or(FactValue::Missing)
        })
    }

    fn t(s: &str) -> FactValue {
        FactValue::Text(s.into())
    }

    #[test]
    fn versions_compare_part_by_part_not_as_text() {
        assert!(eval("b >= 6.5.7638.2", &[("b", t("6.5.7638.2"))]));
        assert!(!eval("b >= 6.5.7638.2", &[("b", t("6.5.7226.6"))]));
        // As text "17763.10000" < "17763.5696"; as numbers it is greater.
        assert!(eval(
            "os_build >= 17763.5696",
            &[("os_build", t("17763.10000"))]
        ));
        assert!(eval(
            "os_build == 17763.5696.0",
            &[("os_build", t("17763.5696"))]
        ));
        assert!(!eval("os_build < 17763", &[("os_build", t("17763"))]));
    }

    #[test]
    fn text_bool_missing_and_logic() {
        let facts = [("State", t("Paused")), ("kb", FactValue::Bool(true))];
        assert!(eval("State == 'paused' and kb", &facts));
        assert!(eval("State != Up", &facts));
        assert!(!eval("State > Up", &facts), "texts have no order");
        assert!(eval("not missing", &facts));
        assert!(!eval("missing == 1", &facts));
        assert!(eval("missing != 1", &facts));
        assert!(eval("kb == true and (missing or State == Paused)", &facts));
        assert!(!eval("not (kb or missing)", &facts));
        assert!(!eval("zero", &[("zero", t("0"))]));
    }

    #[test]
    fn canonical_text_round_trips() {
        for s in [
            "a >= 1.2 and (b or not c == 'x y')",
            "not (a or b) and c != d",
            "exchange_build >= 6.5.7638.2",
        ] {
            let c = Condition::parse(s).unwrap();
            let again = Condition::parse(&c.to_string()).unwrap();
            assert_eq!(c, again, "{s} -> {c}");
        }
        assert_eq!(
            Condition::parse("a>=1 AND b").unwrap().to_string(),
            "a >= 1 and b"
        );
    }

    #[test]
    fn bad_conditions_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("a >=", "needs a value"),
            ("a = 1", "not an operator"),
            ("(a", "not closed"),
            ("a b", "unexpected"),
            ("a == 'x", "not closed"),
            ("1abc", "not a fact name"),
        ] {
            let e = Condition::parse(s).unwrap_err();
            assert!(e.to_string().contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn substitute_expands_target() {
        let target = Condition::parse("os_build >= 17763.5696").unwrap();
        let c = Condition::parse("target and not pending")
            .unwrap()
            .substitute("target", &target);
        assert_eq!(c.to_string(), "os_build >= 17763.5696 and not pending");
        assert_eq!(
            c.facts().into_iter().collect::<Vec<_>>(),
            ["os_build", "pending"]
        );
    }
}

//! Ansible's INI inventory format, read into the same positioned tree a YAML inventory gives,
//! so both go through one loader.
//!
//! The rules are those of ansible-core's `ini` inventory plugin: `#` and `;` start comment lines;
//! `[group]`, `[group:children]` and `[group:vars]` sections; lines before any section are
//! ungrouped hosts; a host line is split like a shell line (`shlex`, `#` starts a comment) into
//! the host pattern and `key=value` pairs; a `[group:vars]` line is `key = value` (no comment
//! stripping). Every value is read like Python's `ast.literal_eval`: numbers, `True`, `False`,
//! `None` and quoted strings are typed, anything else is a string. Lists and dictionaries written
//! as Python literals stay strings here (Ansible would type them). A `:children` or `:vars`
//! section naming a group no section defines is an error, as in Ansible.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::diag::{q, Diagnostic, Diagnostics, Pos, SourceFile};
use crate::tree::{Kind, Node};

/// One section's entries while reading.
struct Section {
    name: String,
    pos: Pos,
    hosts: Vec<(Node, Node)>,
    vars: Vec<(Node, Node)>,
    children: Vec<(Node, Node)>,
}

/// Reads an INI inventory into the tree of the equivalent YAML inventory (one top-level entry
/// per section, as a YAML file may mention a group several times).
pub(crate) fn parse(file: &SourceFile) -> Result<Node, Diagnostics> {
    let name: Rc<str> = Rc::from(file.path.as_str());
    let pos = |line: usize, col: usize| Pos {
        file: name.clone(),
        line,
        col,
    };
    let mut errors = Vec::new();
    let mut err = |p: &Pos, m: String| {
        errors.push(Diagnostic {
            file: p.file.to_string(),
            line: p.line,
            col: p.col,
            message: m,
        })
    };
    let mut sections: Vec<Section> = vec![Section {
        name: "ungrouped".into(),
        pos: pos(1, 1),
        hosts: Vec::new(),
        vars: Vec::new(),
        children: Vec::new(),
    }];
    let mut state = "hosts";
    // Groups a hosts or children section defines; `:children`/`:vars` references to check.
    let mut defined: BTreeSet<String> =
        ["all", "ungrouped"].iter().map(|s| s.to_string()).collect();
    let mut references: Vec<(String, Pos, &'static str, String)> = Vec::new();
    for (i, raw_line) in file.text.lines().enumerate() {
        let lineno = i + 1;
        let indent = raw_line.len() - raw_line.trim_start().len();
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = pos(lineno, indent + 1);
        if line.starts_with('[') {
            match section_header(line) {
                Some((group, kind)) => {
                    if !matches!(kind, "hosts" | "children" | "vars") {
                        err(
                            &at,
                            format!("section [{group}:{kind}] has unknown type {}", q(kind)),
                        );
                        state = "skip";
                        continue;
                    }
                    state = kind;
                    if kind == "vars" {
                        references.push((group.clone(), at.clone(), "vars", group.clone()));
                    } else {
                        defined.insert(group.clone());
                    }
                    sections.push(Section {
                        name: group,
                        pos: at,
                        hosts: Vec::new(),
                        vars: Vec::new(),
                        children: Vec::new(),
                    });
                }
                None => err(
                    &at,
                    format!(
                        "invalid section header {}: write `[group]`, `[group:children]` or \
                         `[group:vars]` with no spaces",
                        q(line)
                    ),
                ),
            }
            continue;
        }
        let section = sections.last_mut().expect("the ungrouped section is first");
        match state {
            "hosts" => {
                if let Some(entry) = host_entry(line, &at, indent, &mut err) {
                    section.hosts.push(entry);
                }
            }
            "vars" => match line.split_once('=') {
                Some((k, v)) => {
                    let vpos = pos(lineno, indent + k.len() + 2);
                    section
                        .vars
                        .push((string_node(k.trim(), at.clone()), value(v.trim(), vpos)));
                }
                None => err(&at, format!("expected `key = value`, found {}", q(line))),
            },
            "children" => {
                let child = line.split('#').next().unwrap_or("").trim();
                if child.is_empty() || child.contains([':', ']', ' ', '\t']) {
                    err(&at, format!("expected a group name, found {}", q(line)));
                    continue;
                }
                references.push((
                    child.to_owned(),
                    at.clone(),
                    "children",
                    section.name.clone(),
                ));
                section
                    .children
                    .push((string_node(child, at.clone()), null(at.clone())));
            }
            _ => {}
        }
    }
    check_references(references, &defined, &mut err);
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    Ok(yaml_tree(sections, pos(1, 1)))
}

/// A hosts line: the host pattern and its `key=value` variables; `None` (reported) when refused.
fn host_entry(
    line: &str,
    at: &Pos,
    indent: usize,
    err: &mut impl FnMut(&Pos, String),
) -> Option<(Node, Node)> {
    match shlex_split(line) {
        Ok(tokens) if tokens.is_empty() => None,
        Ok(tokens) => {
            let (pattern, pattern_col) = &tokens[0];
            if pattern.ends_with(':') {
                err(
                    at,
                    format!(
                        "host pattern {} ends in `:` (reserved for a port)",
                        q(pattern)
                    ),
                );
                return None;
            }
            if pattern == "---" {
                err(
                    at,
                    "host pattern `---` (is this a YAML file with an .ini name?)".into(),
                );
                return None;
            }
            let mut vars = Vec::new();
            for (t, col) in &tokens[1..] {
                let p = at_col(at, indent + col + 1);
                match t.split_once('=') {
                    Some((k, v)) => vars.push((string_node(k, p.clone()), value(v, p))),
                    None => err(
                        &p,
                        format!("expected `key=value` after the host name, found {}", q(t)),
                    ),
                }
            }
            let key = string_node(pattern, at_col(at, indent + pattern_col + 1));
            let val = if vars.is_empty() {
                null(at.clone())
            } else {
                map(vars, at.clone())
            };
            Some((key, val))
        }
        Err(m) => {
            err(at, format!("cannot split host line {}: {m}", q(line)));
            None
        }
    }
}

/// `at`'s line at another column.
fn at_col(at: &Pos, col: usize) -> Pos {
    Pos { col, ..at.clone() }
}

/// Every `[group:vars]` and `:children` entry must name a group some section defines.
fn check_references(
    references: Vec<(String, Pos, &'static str, String)>,
    defined: &BTreeSet<String>,
    err: &mut impl FnMut(&Pos, String),
) {
    for (group, at, kind, parent) in references {
        if !defined.contains(&group) {
            let m = if kind == "vars" {
                format!(
                    "section [{group}:vars] is for group {} that no section defines",
                    q(&group)
                )
            } else {
                format!(
                    "section [{parent}:children] includes group {} that no section defines",
                    q(&group)
                )
            };
            err(&at, m);
        }
    }
}

/// The sections as the tree of the equivalent YAML inventory (the empty `ungrouped` dropped).
fn yaml_tree(sections: Vec<Section>, at: Pos) -> Node {
    let mut top = Vec::new();
    for s in sections {
        if s.name == "ungrouped" && s.hosts.is_empty() && s.vars.is_empty() && s.children.is_empty()
        {
            continue;
        }
        let mut entries = Vec::new();
        for (word, items) in [
            ("hosts", s.hosts),
            ("vars", s.vars),
            ("children", s.children),
        ] {
            if !items.is_empty() {
                entries.push((string_node(word, s.pos.clone()), map(items, s.pos.clone())));
            }
        }
        top.push((
            string_node(&s.name, s.pos.clone()),
            map(entries, s.pos.clone()),
        ));
    }
    map(top, at)
}

/// `[name]` or `[name:kind]` (trailing `# comment` allowed).
fn section_header(line: &str) -> Option<(String, &str)> {
    let inner_end = line.find(']')?;
    let rest = line[inner_end + 1..].trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let inner = &line[1..inner_end];
    let (group, kind) = match inner.split_once(':') {
        Some((g, k)) => (g, k),
        None => (inner, "hosts"),
    };
    if group.is_empty() || group.contains(char::is_whitespace) || kind.contains(':') {
        return None;
    }
    if !kind.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some((group.to_owned(), kind))
}

/// Splits a line like Python's `shlex.split(line, comments=True)` (POSIX mode): each token with
/// the byte offset where it starts.
fn shlex_split(line: &str) -> Result<Vec<(String, usize)>, String> {
    let mut out = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(t) = cur.take() {
                    out.push(t);
                }
            }
            '#' => break,
            '\'' => {
                let t = cur.get_or_insert_with(|| (String::new(), i));
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => t.0.push(ch),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                let t = cur.get_or_insert_with(|| (String::new(), i));
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, ch @ ('"' | '\\' | '$' | '`'))) => t.0.push(ch),
                            Some((_, '\n')) => {}
                            Some((_, ch)) => {
                                t.0.push('\\');
                                t.0.push(ch);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some((_, ch)) => t.0.push(ch),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                let t = cur.get_or_insert_with(|| (String::new(), i));
                match chars.next() {
                    Some((_, ch)) => t.0.push(ch),
                    None => return Err("no escaped character".into()),
                }
            }
            c => cur.get_or_insert_with(|| (String::new(), i)).0.push(c),
        }
    }
    if let Some(t) = cur.take() {
        out.push(t);
    }
    Ok(out)
}

/// A value as `ast.literal_eval` types it (see the module documentation).
fn value(v: &str, pos: Pos) -> Node {
    let typed = |text: String| Node {
        pos: pos.clone(),
        tag: None,
        kind: Kind::Scalar {
            value: text,
            plain: true,
        },
    };
    match v {
        "True" => return typed("true".into()),
        "False" => return typed("false".into()),
        "None" => return typed("null".into()),
        _ => {}
    }
    if let Some(i) = python_int(v) {
        return typed(i);
    }
    if let Some(f) = python_float(v) {
        return typed(f);
    }
    if let Some(s) = python_string(v) {
        return string_node(&s, pos);
    }
    string_node(v, pos)
}

/// A Python integer literal (`42`, `-7`, `1_000`, `0x1F`), as decimal text.
fn python_int(v: &str) -> Option<String> {
    let (neg, body) = match v.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let digits = |s: &str, radix: u32| -> Option<i128> {
        if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
            return None;
        }
        i128::from_str_radix(&s.replace('_', ""), radix).ok()
    };
    let lower = body.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        digits(h, 16)?
    } else if let Some(o) = lower.strip_prefix("0o") {
        digits(o, 8)?
    } else if let Some(b) = lower.strip_prefix("0b") {
        digits(b, 2)?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit() || b == b'_')
            || (body.len() > 1
                && body.starts_with('0')
                && body.bytes().any(|b| b != b'0' && b != b'_'))
        {
            return None;
        }
        digits(body, 10)?
    };
    Some(if neg { -n } else { n }.to_string())
}

/// A Python float literal (`1.5`, `2e3`, `.5`), as text that reads back as the same float.
fn python_float(v: &str) -> Option<String> {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && (body.contains('.') || body.contains(['e', 'E']));
    if !ok {
        return None;
    }
    let f: f64 = v.parse().ok()?;
    let text = format!("{f:?}");
    Some(if text.contains(['.', 'e', 'E']) || !f.is_finite() {
        text
    } else {
        format!("{text}.0")
    })
}

/// A Python string literal in single or double quotes (simple escapes).
fn python_string(v: &str) -> Option<String> {
    let quote = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = v.strip_prefix(quote)?.strip_suffix(quote)?;
    if v.len() < 2 {
        return None;
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                c @ ('\\' | '\'' | '"') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            c if c == quote => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn string_node(s: &str, pos: Pos) -> Node {
    Node {
        pos,
        tag: None,
        kind: Kind::Scalar {
            value: s.to_owned(),
            plain: false,
        },
    }
}

fn null(pos: Pos) -> Node {
    Node {
        pos,
        tag: None,
        kind: Kind::Scalar {
            value: String::new(),
            plain: true,
        },
    }
}

fn map(entries: Vec<(Node, Node)>, pos: Pos) -> Node {
    Node {
        pos,
        tag: None,
        kind: Kind::Map(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each top-level entry (one per section) as YAML text, concatenated.
    fn yaml(text: &str) -> String {
        let n = parse(&SourceFile::new("h.ini", text)).unwrap();
        n.as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let mut m = serde_yaml::Mapping::new();
                m.insert(k.to_value(), v.to_value());
                serde_yaml::to_string(&m).unwrap()
            })
            .collect()
    }

    #[test]
    fn sections_hosts_and_values() {
        let v = yaml(
            "top1 a=1\n# c\n[web]\nweb[01:02].contoso.com ansible_port=5986 x='quoted' y=\"a b\" # c\n\
             [web:vars]\nansible_user = CONTOSO\\svc # not a comment\nflag = True\n\
             [site:children]\nweb\n",
        );
        let s = v;
        assert!(
            s.contains("ungrouped:\n  hosts:\n    top1:\n      a: 1"),
            "{s}"
        );
        assert!(s.contains("web[01:02].contoso.com:"), "{s}");
        assert!(s.contains("ansible_port: 5986"), "{s}");
        assert!(s.contains("x: quoted"), "{s}");
        assert!(s.contains("y: a b"), "{s}");
        assert!(
            s.contains("ansible_user: 'CONTOSO\\svc # not a comment'"),
            "{s}"
        );
        assert!(s.contains("flag: true"), "{s}");
        assert!(s.contains("site:\n  children:\n    web: null"), "{s}");
    }

    #[test]
    fn undefined_groups_and_bad_lines_are_errors_with_lines() {
        let e = parse(&SourceFile::new(
            "h.ini",
            "[a:children]\nmissing\n[b:vars]\nk=v\n[c]\nh1 novalue\n[bad header]\n",
        ))
        .unwrap_err();
        let lines: Vec<usize> = e.0.iter().map(|d| d.line).collect();
        assert!(lines.contains(&2) && lines.contains(&3), "{e}");
        assert!(lines.contains(&6) && lines.contains(&7), "{e}");
    }

    #[test]
    fn literal_eval_types() {
        assert_eq!(python_int("1_000").as_deref(), Some("1000"));
        assert_eq!(python_int("0x1F").as_deref(), Some("31"));
        assert_eq!(python_int("05"), None);
        assert_eq!(python_float("1e3").as_deref(), Some("1000.0"));
        assert_eq!(python_float("1.5").as_deref(), Some("1.5"));
        assert_eq!(python_float("1.2.3"), None);
        assert_eq!(python_string("'a\\'b'").as_deref(), Some("a'b"));
        assert_eq!(python_string("'a"), None);
    }
}

//! What Lockstep understood of an inventory, in the forms `ansible-inventory --list` and
//! `--graph` print, so the two can be compared line for line.
//!
//! Plain YAML scalars are typed as Ansible's YAML 1.1 loader types them (`yes` is `true`, `010`
//! is 8, `1e3` stays a string, `1.0e+3` is a float). Vaulted values are shown as Ansible shows
//! them (`{"__ansible_vault": "$ANSIBLE_VAULT;..."}`: the ciphertext, never the plaintext). A
//! password variable is shown only when it is such a vault value or a template; other password
//! values (refused by the loader anyway) are never printed.

use serde_json::{Map, Value};

use crate::ansible::{read_raw, Raw, PASSWORD_VARS};
use crate::diag::{Diagnostics, Sink, SourceFile};
use crate::tree::{Kind, Node};

/// `ansible-inventory --list` of the inventory `files` (merged as several `-i`).
pub fn inventory_list(files: &[SourceFile]) -> Result<Value, Diagnostics> {
    let mut sink = Sink::default();
    let raw = read_raw(files, &mut sink);
    let list = list_of(&raw);
    sink.finish(list)
}

/// `ansible-inventory --graph` of the inventory `files`, one line per group or host.
pub fn inventory_graph(files: &[SourceFile]) -> Result<String, Diagnostics> {
    let mut sink = Sink::default();
    let raw = read_raw(files, &mut sink);
    let mut out = String::new();
    graph_group(&raw, "all", 0, &mut out);
    sink.finish(out)
}

/// The children of group `g` in the order Ansible lists them (`ungrouped` first under `all`).
fn children<'a>(raw: &'a Raw, g: &str) -> Vec<&'a str> {
    let mut c: Vec<&str> = raw
        .groups
        .get(g)
        .map(|g| g.children.iter().map(|(c, _)| c.as_str()).collect())
        .unwrap_or_default();
    if g == "all" {
        c.sort_by_key(|c| *c != "ungrouped");
    }
    c
}

fn graph_group(raw: &Raw, g: &str, depth: usize, out: &mut String) {
    line(&format!("@{g}:"), depth, out);
    for c in children(raw, g) {
        graph_group(raw, c, depth + 1, out);
    }
    if g != "all" {
        if let Some(group) = raw.groups.get(g) {
            for h in raw.direct_hosts(group) {
                line(h, depth + 1, out);
            }
        }
    }
}

fn line(name: &str, depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  |");
    }
    if depth > 0 {
        out.push_str("--");
    }
    out.push_str(name);
    out.push('\n');
}

fn list_of(raw: &Raw) -> Value {
    let mut top = Map::new();
    let mut stack = vec!["all".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(g) = stack.pop() {
        if !seen.insert(g.clone()) {
            continue;
        }
        let mut entry = Map::new();
        if g != "all" {
            if let Some(group) = raw.groups.get(&g) {
                if !group.direct_hosts.is_empty() {
                    entry.insert(
                        "hosts".into(),
                        raw.direct_hosts(group).map(Value::from).collect(),
                    );
                }
            }
        }
        let kids = children(raw, &g);
        if !kids.is_empty() {
            entry.insert(
                "children".into(),
                kids.iter().map(|c| Value::from(*c)).collect(),
            );
        }
        for k in kids.into_iter().rev() {
            stack.push(k.to_owned());
        }
        if !entry.is_empty() {
            top.insert(g, Value::Object(entry));
        }
    }
    let mut hostvars = Map::new();
    for h in &raw.host_order {
        let mut vars = Map::new();
        for (k, v) in raw.merged_vars_with(h, true) {
            let node = &v.var.value;
            if PASSWORD_VARS.contains(&k) && !is_vault(node) && !is_template(node) {
                continue;
            }
            vars.insert(k.to_owned(), to_json(node));
        }
        hostvars.insert(h.clone(), Value::Object(vars));
    }
    let mut meta = Map::new();
    meta.insert("hostvars".into(), Value::Object(hostvars));
    top.insert("_meta".into(), Value::Object(meta));
    Value::Object(top)
}

fn is_vault(n: &Node) -> bool {
    n.tag.as_deref().is_some_and(|t| t == "!vault")
}

fn is_template(n: &Node) -> bool {
    n.as_str().is_some_and(|s| s.contains("{{"))
}

/// A node as JSON, typed as Ansible's YAML 1.1 loader types it.
pub(crate) fn to_json(n: &Node) -> Value {
    match &n.kind {
        Kind::Scalar { value, plain } => {
            if is_vault(n) {
                let mut m = Map::new();
                m.insert("__ansible_vault".into(), Value::from(value.as_str()));
                return Value::Object(m);
            }
            if !plain || n.tag.is_some() {
                return Value::from(value.as_str());
            }
            resolve_plain(value)
        }
        Kind::Seq(items) => items.iter().map(to_json).collect(),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_text(), to_json(v)))
                .collect(),
        ),
    }
}

/// YAML 1.1 resolution of a plain scalar (PyYAML's resolvers, without timestamps and base 60).
pub(crate) fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if let Some(i) = yaml11_int(s) {
        return Value::from(i);
    }
    if let Some(f) = yaml11_float(s) {
        if let Some(n) = serde_json::Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    Value::from(s)
}

fn yaml11_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = |d: &str, ok: fn(u8) -> bool| -> Option<String> {
        (!d.is_empty() && d.bytes().all(|b| ok(b) || b == b'_') && d.bytes().any(ok))
            .then(|| d.replace('_', ""))
    };
    let n = if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(&clean(b, |c| c == b'0' || c == b'1')?, 2).ok()?
    } else if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(&clean(h, |c| c.is_ascii_hexdigit())?, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&clean(&body[1..], |c| (b'0'..=b'7').contains(&c))?, 8).ok()?
    } else if body == "0" {
        0
    } else {
        if !body.as_bytes().first()?.is_ascii_digit() {
            return None;
        }
        clean(body, |c| c.is_ascii_digit())?.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

fn yaml11_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    match body {
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" => return None,
        _ => {}
    }
    // [0-9][0-9_]*.[0-9_]*([eE][-+][0-9]+)?  or  .[0-9_]+([eE][-+][0-9]+)?
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.')?;
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    if int.is_empty() && !frac.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    if !int.is_empty() && !int.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if let Some(e) = exp {
        let rest = e.strip_prefix(['-', '+'])?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    s.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_typing() {
        assert_eq!(resolve_plain("yes"), Value::Bool(true));
        assert_eq!(resolve_plain("Off"), Value::Bool(false));
        assert_eq!(resolve_plain("010"), Value::from(8));
        assert_eq!(resolve_plain("0x1f"), Value::from(31));
        assert_eq!(resolve_plain("5986"), Value::from(5986));
        assert_eq!(resolve_plain("1e3"), Value::from("1e3"));
        assert_eq!(resolve_plain("1.0e+3"), Value::from(1000.0));
        assert_eq!(resolve_plain("2.5"), Value::from(2.5));
        assert_eq!(resolve_plain("6.5.7638"), Value::from("6.5.7638"));
        assert_eq!(resolve_plain("-"), Value::from("-"));
        assert_eq!(resolve_plain("~"), Value::Null);
    }

    #[test]
    fn list_and_graph_have_ansibles_shape() {
        let f = SourceFile::new(
            "i.yml",
            "all:\n  vars: {a: yes}\n  children:\n    web:\n      hosts:\n        w2: {p: 010}\n        w1:\n    empty:\n  hosts:\n    lone:\n",
        );
        let l = inventory_list(std::slice::from_ref(&f)).unwrap();
        assert_eq!(l["web"]["hosts"], serde_json::json!(["w2", "w1"]));
        assert_eq!(l["ungrouped"]["hosts"], serde_json::json!(["lone"]));
        assert_eq!(l["all"]["children"][0], "ungrouped");
        assert!(l.get("empty").is_none());
        assert_eq!(
            l["_meta"]["hostvars"]["w2"],
            serde_json::json!({"a": true, "p": 8})
        );
        let g = inventory_graph(&[f]).unwrap();
        assert!(
            g.starts_with("@all:\n  |--@ungrouped:\n  |  |--lone\n"),
            "{g}"
        );
        assert!(g.contains("  |--@web:\n  |  |--w2\n  |  |--w1\n"), "{g}");
    }
}

//! Templated inventory values rendered per host, after merging, as Ansible renders them when a
//! host is used: `ansible_user: "{{ domain_netbios }}\\svc"`, `ansible_host: "{{
//! inventory_hostname }}.contoso.com"`, `ansible_port: "{{ winrm_port | default(5986) }}"`.
//!
//! Only the variables Lockstep itself reads are rendered (`ansible_*`, `exchange_*`,
//! `windows_*`, `lockstep_*`); other templates stay as written (Lockstep never uses them, and
//! Ansible renders only what a task uses). Password variables are never rendered: their
//! `lookup('env', ...)` form is read as a password source instead. A template sees the host's
//! merged variables (templates among them rendered first, to a depth of 8), `inventory_hostname`,
//! `inventory_hostname_short` and `group_names`, with minijinja's built-in filters (`default`,
//! `lower`, `upper`, `replace`, `trim`, `int`...). An undefined variable or other failure is an
//! error at the value's position.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::ansible::{MergedVars, Raw, PASSWORD_VARS};
use crate::diag::{q, Sink};
use crate::tree::{Kind, Node};

/// Whether Lockstep reads variable `k` (so its template must be rendered).
fn rendered(k: &str) -> bool {
    !PASSWORD_VARS.contains(&k)
        && ["ansible_", "exchange_", "windows_", "lockstep_"]
            .iter()
            .any(|p| k.starts_with(p))
}

/// The template environment, built once per load and shared by every host, with every templated
/// value of the inventory compiled once (named by its own text): a group's template is rendered
/// for each of its hosts without being parsed again for each.
pub(crate) fn environment(raw: &Raw) -> Environment<'_> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_recursion_limit(16);
    let maps = raw
        .groups
        .values()
        .flat_map(|g| [&g.vars, &g.file_vars, &g.play_vars])
        .chain(
            raw.hosts
                .iter()
                .flat_map(|h| [&h.vars, &h.file_vars, &h.play_vars]),
        );
    for (k, v) in maps.flat_map(|m| m.iter()) {
        if let Some(s) = v.value.as_str().filter(|s| is_template(s)) {
            if !PASSWORD_VARS.contains(&k.as_str()) {
                // One that does not compile fails again, with its error, when rendered.
                let _ = env.add_template(s, s);
            }
        }
    }
    env
}

/// A variable as a template sees it: scalars typed as [`Node::to_value`] types them, without
/// going through `serde_yaml` for each (lists and mappings still do).
fn jinja_value(n: &Node) -> Value {
    match &n.kind {
        Kind::Scalar { value, plain } => {
            if !plain {
                return Value::from(value.as_str());
            }
            if n.is_null() {
                return Value::from(());
            }
            match value.as_str() {
                "true" | "True" | "TRUE" => return Value::from(true),
                "false" | "False" | "FALSE" => return Value::from(false),
                _ => {}
            }
            if let Ok(i) = value.parse::<i64>() {
                return Value::from(i);
            }
            if let Ok(u) = value.parse::<u64>() {
                return Value::from(u);
            }
            Value::from(value.as_str())
        }
        _ => Value::from_serialize(n.to_value()),
    }
}

/// Renders `src`: compiled once if it is a value of the inventory, else now.
fn render(env: &Environment<'_>, src: &str, ctx: &Value) -> Result<String, minijinja::Error> {
    match env.get_template(src) {
        Ok(t) => t.render(ctx),
        Err(_) => env.render_str(src, ctx),
    }
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Renders in place the templated values of `vars` that Lockstep reads, for host `host` in
/// `groups` (every group but `all`, sorted). Errors go to `sink`; a failed value is left as is.
pub(crate) fn render_host_vars(
    env: &Environment<'_>,
    host: &str,
    groups: &[&str],
    vars: &mut MergedVars<'_>,
    sink: &mut Sink,
) {
    let wanted: Vec<&str> = vars
        .iter()
        .filter(|(k, v)| rendered(k) && v.var.value.as_str().is_some_and(is_template))
        .map(|(k, _)| *k)
        .collect();
    if wanted.is_empty() {
        return;
    }
    // The context: every merged variable as text, templates rendered to a fixed depth so that
    // one template may use another.
    let mut ctx: BTreeMap<String, Value> = vars
        .iter()
        .filter(|(k, _)| !PASSWORD_VARS.contains(k))
        .map(|(k, v)| ((*k).to_owned(), jinja_value(&v.var.value)))
        .collect();
    ctx.insert("inventory_hostname".into(), Value::from(host));
    ctx.insert(
        "inventory_hostname_short".into(),
        Value::from(host.split('.').next().unwrap_or(host)),
    );
    ctx.insert(
        "group_names".into(),
        Value::from_serialize(groups.iter().filter(|g| **g != "all").collect::<Vec<_>>()),
    );
    for _ in 0..8 {
        let mut changed = false;
        let snapshot = Value::from(ctx.clone());
        for (k, v) in ctx.iter_mut() {
            let Some(s) = v.as_str().filter(|s| is_template(s)) else {
                continue;
            };
            if let Ok(out) = render(env, s, &snapshot) {
                if out != s {
                    *v = Value::from(out);
                    changed = true;
                }
            }
            let _ = k;
        }
        if !changed {
            break;
        }
    }
    let snapshot = Value::from(ctx);
    for k in wanted {
        let Some(mv) = vars.get_mut(k) else { continue };
        let src = mv.var.value.as_str().unwrap_or_default().to_owned();
        match render(env, &src, &snapshot) {
            Ok(out) if !is_template(&out) => {
                // The rendered value is this host's own: the shared node stays as written.
                let value = &mut mv.var.to_mut().value;
                value.kind = Kind::Scalar {
                    value: out,
                    plain: false,
                };
                value.tag = None;
            }
            Ok(out) => sink.error(
                &mv.var.value.pos,
                format!(
                    "{} of host {} still holds a template after rendering: {}",
                    q(k),
                    q(host),
                    q(&out)
                ),
            ),
            Err(e) => sink.error(
                &mv.var.value.pos,
                format!(
                    "template in {} of host {} does not render: {}",
                    q(k),
                    q(host),
                    e.detail()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.kind().to_string())
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::SourceFile;
    use crate::load_inventory;

    const INV: &str = "all:\n  vars:\n    domain_netbios: CONTOSO\n    lockstep_password_env: PW\n    ansible_user: \"{{ domain_netbios }}\\\\svc-ansible\"\n    exchange_version: \"2003\"\n  children:\n    web:\n      vars:\n        lockstep_site: {locale: en-US}\n        ansible_host: \"{{ inventory_hostname | lower }}.contoso.com\"\n        ansible_port: \"{{ winrm_port | default(5986) }}\"\n      hosts:\n        WEB01:\n        WEB02:\n          winrm_port: 5985\n";

    #[test]
    fn connection_templates_render_per_host() {
        let fleet =
            load_inventory(&[SourceFile::new("t.yml", INV)]).unwrap_or_else(|d| panic!("{d}"));
        let h1 = fleet.host("WEB01").unwrap();
        assert_eq!(h1.connection.user, "CONTOSO\\svc-ansible");
        assert_eq!(h1.connection.address, "web01.contoso.com");
        assert_eq!(h1.connection.port, 5986);
        let h2 = fleet.host("WEB02").unwrap();
        assert_eq!(h2.connection.port, 5985);
    }

    #[test]
    fn an_undefined_variable_is_an_error_at_the_value() {
        let bad = INV.replace("{{ domain_netbios }}", "{{ domain_netbio }}");
        let e = load_inventory(&[SourceFile::new("t.yml", bad)]).unwrap_err();
        let d = e
            .iter()
            .find(|d| d.message.contains("does not render"))
            .expect("an error");
        assert_eq!(d.line, 5, "{e}");
        assert_eq!(d.col, 19, "{e}");
        assert!(d.message.contains("`ansible_user`"), "{e}");
    }
}

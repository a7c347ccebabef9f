//! Template rendering for playbook strings: minijinja with strict undefined, compiled once per
//! distinct source, with a lazily-looked-up context (no map is built per step).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use lockstep_core::{Name, NameKind};
use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// A variable the step has no value for.
    Undefined(String),
    /// Syntax or evaluation error.
    Other(String),
}

/// Built-in template values shared by many steps (a host's, a cluster's, the plan's).
pub(crate) type Layer = Arc<[(&'static str, Value)]>;

/// The variables one step sees. Built-in names (`node`, `peer`, `group`...) win over variables,
/// so a playbook or inventory variable can never redirect a step to another node. Playbook
/// variables win over host (inventory) variables: an inventory can only supply a name the
/// playbook leaves undefined, never change what the playbook says (only `-e` can).
pub(crate) struct Ctx {
    /// Built-in values in layers (EVS, node, cluster, host, plan), shared between steps.
    pub builtins: Vec<Layer>,
    pub host_vars: Arc<BTreeMap<String, String>>,
    pub playbook_vars: Arc<BTreeMap<String, String>>,
    /// The operator's `-e` variables: above playbook and host variables.
    pub extra_vars: Arc<BTreeMap<String, String>>,
}

impl fmt::Debug for Ctx {
    /// Names only: variables may hold anything and are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field(
                "builtins",
                &self
                    .builtins
                    .iter()
                    .flat_map(|l| l.iter().map(|(k, _)| *k))
                    .collect::<Vec<_>>(),
            )
            .field("host_vars", &self.host_vars.keys().collect::<Vec<_>>())
            .field(
                "playbook_vars",
                &self.playbook_vars.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Ctx {
    pub(crate) fn lookup(&self, key: &str) -> Option<Value> {
        for layer in &self.builtins {
            if let Some((_, v)) = layer.iter().find(|(k, _)| *k == key) {
                return Some(v.clone());
            }
        }
        self.extra_vars
            .get(key)
            .or_else(|| self.playbook_vars.get(key))
            .or_else(|| self.host_vars.get(key))
            .map(|s| Value::from(s.as_str()))
    }

    /// The same step's context without inventory variables: what a site-supplied command line
    /// may see (an inventory must never be able to put a command on a node).
    pub(crate) fn without_inventory(&self) -> Arc<Ctx> {
        Arc::new(Ctx {
            builtins: self.builtins.clone(),
            host_vars: Arc::new(BTreeMap::new()),
            playbook_vars: self.playbook_vars.clone(),
            extra_vars: self.extra_vars.clone(),
        })
    }
}

/// Whether a value may be interpolated into a command line: it must be a valid name, path or
/// switch list, so it holds no quote, `%`, `^`, `&`, `|`, `<`, `>`, `!` or control character.
fn safe_on_command_line(s: &str) -> bool {
    s.is_empty()
        || [NameKind::Object, NameKind::Path, NameKind::Args]
            .into_iter()
            .any(|k| Name::is_valid(k, s))
}

impl Object for Ctx {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// Renders the compiled template `name` of `env`, naming the first undefined variable.
fn run_in(env: &Environment<'static>, name: &str, ctx: &Arc<Ctx>) -> Result<String, RenderError> {
    let t = env
        .get_template(name)
        .map_err(|e| RenderError::Other(e.to_string()))?;
    t.render(Value::from_dyn_object(ctx.clone()))
        .map_err(|e| match e.kind() {
            ErrorKind::UndefinedError => {
                let mut vars: Vec<String> = t.undeclared_variables(false).into_iter().collect();
                vars.sort();
                match vars.into_iter().find(|v| ctx.lookup(v).is_none()) {
                    Some(v) => RenderError::Undefined(v),
                    None => RenderError::Other(e.to_string()),
                }
            }
            _ => RenderError::Other(e.to_string()),
        })
}

/// Compiled templates, keyed by their source.
///
/// Sources are borrowed from the playbook for the whole planning, so the cache is keyed by
/// their address and length: no hashing of long messages per step.
pub(crate) struct Templates {
    env: Environment<'static>,
    /// For site-supplied command lines: every interpolated value is checked.
    cmd_env: Environment<'static>,
    cmd_names: HashMap<(usize, usize), Result<String, String>>,
    names: HashMap<(usize, usize, bool), Result<String, String>>,
    /// Templates that are only text and `{{ name }}` substitutions, rendered without the
    /// template engine (same output, strict undefined too); `None`: needs minijinja.
    simple: HashMap<(usize, usize), Option<Arc<[Seg]>>>,
}

/// A piece of a simple template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Text(String),
    Var(String),
}

/// Splits `src` into text and `{{ identifier }}` pieces; `None` when it uses anything else
/// (statements, comments, filters, attributes, whitespace control, literals).
fn simple_segments(src: &str) -> Option<Vec<Seg>> {
    if src.contains("{%") || src.contains("{#") {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Seg::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let inner = after[..close].trim();
        let mut chars = inner.chars();
        let ident = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        let keyword = matches!(
            inner,
            "true" | "false" | "none" | "True" | "False" | "None" | "loop"
        );
        if !ident || keyword {
            return None;
        }
        out.push(Seg::Var(inner.to_owned()));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        out.push(Seg::Text(rest.to_owned()));
    }
    Some(out)
}

impl Templates {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut cmd_env = Environment::new();
        cmd_env.set_undefined_behavior(UndefinedBehavior::Strict);
        cmd_env.set_formatter(|out, _state, value| {
            let text = value.to_string();
            if !safe_on_command_line(&text) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "value `{}` cannot be placed safely on a command line",
                        text.escape_debug()
                    ),
                ));
            }
            out.write_str(&text).map_err(Error::from)
        });
        Templates {
            env,
            cmd_env,
            cmd_names: HashMap::new(),
            names: HashMap::new(),
            simple: HashMap::new(),
        }
    }

    fn is_literal(src: &str) -> bool {
        !(src.contains("{{") || src.contains("{%") || src.contains("{#"))
    }

    fn compiled(
        &mut self,
        src: &str,
        is_when: bool,
        source: impl FnOnce() -> String,
    ) -> Result<String, String> {
        let key = (src.as_ptr() as usize, src.len(), is_when);
        if let Some(r) = self.names.get(&key) {
            return r.clone();
        }
        let name = format!("t{}", self.names.len());
        let r = self
            .env
            .add_template_owned(name.clone(), source())
            .map(|()| name)
            .map_err(|e| e.to_string());
        self.names.insert(key, r.clone());
        r
    }

    fn run(&self, name: &str, ctx: &Arc<Ctx>) -> Result<String, RenderError> {
        run_in(&self.env, name, ctx)
    }

    /// Renders `src` for one step. `src` must stay alive and unchanged for the life of this
    /// cache (the planner passes strings borrowed from the playbook).
    pub(crate) fn render(&mut self, src: &str, ctx: &Arc<Ctx>) -> Result<String, RenderError> {
        if Self::is_literal(src) {
            return Ok(src.to_owned());
        }
        let segs = self
            .simple
            .entry((src.as_ptr() as usize, src.len()))
            .or_insert_with(|| simple_segments(src).map(Arc::from))
            .clone();
        if let Some(segs) = segs {
            let mut out = String::with_capacity(src.len() + 16);
            for seg in segs.iter() {
                match seg {
                    Seg::Text(t) => out.push_str(t),
                    Seg::Var(v) => {
                        let value = ctx
                            .lookup(v)
                            .ok_or_else(|| RenderError::Undefined(v.clone()))?;
                        match value.as_str() {
                            Some(s) => out.push_str(s),
                            None => out.push_str(&value.to_string()),
                        }
                    }
                }
            }
            return Ok(out);
        }
        let name = self
            .compiled(src, false, || src.to_owned())
            .map_err(RenderError::Other)?;
        self.run(&name, ctx)
    }

    /// Renders a site-supplied command line for one step: only built-ins, playbook and `-e`
    /// variables are visible, and every interpolated value must be safe on a command line.
    pub(crate) fn render_command(
        &mut self,
        src: &str,
        ctx: &Arc<Ctx>,
    ) -> Result<String, RenderError> {
        if Self::is_literal(src) {
            return Ok(src.to_owned());
        }
        let key = (src.as_ptr() as usize, src.len());
        let name = match self.cmd_names.get(&key) {
            Some(r) => r.clone(),
            None => {
                let name = format!("c{}", self.cmd_names.len());
                let r = self
                    .cmd_env
                    .add_template_owned(name.clone(), src.to_owned())
                    .map(|()| name)
                    .map_err(|e| e.to_string());
                self.cmd_names.insert(key, r.clone());
                r
            }
        }
        .map_err(RenderError::Other)?;
        run_in(&self.cmd_env, &name, &ctx.without_inventory())
    }

    /// Evaluates a `when` expression for one step.
    pub(crate) fn truthy(&mut self, expr: &str, ctx: &Arc<Ctx>) -> Result<bool, RenderError> {
        let name = self
            .compiled(expr, true, || {
                format!("{{% if {expr} %}}1{{% else %}}0{{% endif %}}")
            })
            .map_err(RenderError::Other)?;
        Ok(self.run(&name, ctx)? == "1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Arc<Ctx> {
        let mut pv = BTreeMap::new();
        pv.insert("pkg".to_owned(), "C:\\sp\\update.exe".to_owned());
        pv.insert("node".to_owned(), "EVIL".to_owned());
        let mut hv = BTreeMap::new();
        hv.insert("pkg".to_owned(), "D:\\sp\\update.exe".to_owned());
        Arc::new(Ctx {
            builtins: vec![Arc::from(vec![
                ("node", Value::from("N1")),
                ("windows", Value::from("2003")),
            ])],
            host_vars: Arc::new(hv),
            playbook_vars: Arc::new(pv),
            extra_vars: Arc::new(BTreeMap::new()),
        })
    }

    fn with(ctx: &Ctx, host: &[(&str, &str)], extra: &[(&str, &str)]) -> Arc<Ctx> {
        let mut hv = (*ctx.host_vars).clone();
        hv.extend(host.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let ev = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(Ctx {
            builtins: ctx.builtins.clone(),
            host_vars: Arc::new(hv),
            playbook_vars: ctx.playbook_vars.clone(),
            extra_vars: Arc::new(ev),
        })
    }

    #[test]
    fn command_lines_never_see_inventory_variables() {
        let mut t = Templates::new();
        let c = with(&ctx(), &[("tool", "format c: /y")], &[]);
        // A host (inventory) variable is invisible to a command template...
        let src = String::from("{{ tool }} \"{{ node }}\"");
        assert_eq!(
            t.render_command(&src, &c),
            Err(RenderError::Undefined("tool".into()))
        );
        // ...while the operator's `-e` variable and the built-ins are.
        let c = with(&ctx(), &[], &[("tool", "labctl evs upgrade")]);
        assert_eq!(
            t.render_command(&src, &c).unwrap(),
            "labctl evs upgrade \"N1\""
        );
        // The playbook's own variable (here: the inventory's override of it is ignored).
        let pkg = String::from("run {{ pkg }}");
        assert_eq!(
            t.render_command(&pkg, &ctx()).unwrap(),
            "run C:\\sp\\update.exe"
        );
    }

    #[test]
    fn command_lines_refuse_values_that_cannot_be_quoted() {
        let mut t = Templates::new();
        let src = String::from("{% if tool %}{{ tool }} x{% endif %}");
        for bad in ["a & del c:\\*", "x|y", "50%", "say \"hi\"", "a\nb"] {
            let c = with(&ctx(), &[], &[("tool", bad)]);
            let err = t.render_command(&src, &c).unwrap_err();
            assert!(
                matches!(&err, RenderError::Other(m) if m.contains("cannot be placed safely")),
                "{bad:?}: {err:?}"
            );
        }
        // Blank: the planner reads it as "no command".
        let c = with(&ctx(), &[], &[("tool", "")]);
        assert_eq!(t.render_command(&src, &c).unwrap(), "");
    }

    #[test]
    fn renders_with_precedence() {
        let mut t = Templates::new();
        let c = ctx();
        // The host's `pkg` cannot replace the playbook's (issue 10: an inventory must not
        // change the install command)...
        assert_eq!(
            t.render("{{ node }}:{{ pkg }}", &c).unwrap(),
            "N1:C:\\sp\\update.exe"
        );
        // ...it only fills in what the playbook leaves undefined; `-e` overrides both.
        let c2 = with(&c, &[("site_share", "D:\\x")], &[]);
        assert_eq!(t.render("{{ site_share }}", &c2).unwrap(), "D:\\x");
        let c3 = with(&c, &[], &[("pkg", "E:\\y.exe")]);
        assert_eq!(t.render("{{ pkg }}", &c3).unwrap(), "E:\\y.exe");
        assert_eq!(t.render("plain", &c).unwrap(), "plain");
        assert!(t.truthy("windows == '2003'", &c).unwrap());
        assert!(!t.truthy("windows == '2000'", &c).unwrap());
    }

    #[test]
    fn simple_templates_render_like_minijinja() {
        let c = ctx();
        let mut fast = Templates::new();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for src in [
            "{{ node }}",
            "a {{node}} b {{ pkg }}{{ windows }} c",
            "{{ node }} at Version 6.5 (Build 7638.2: Service Pack 2)",
            "{{ node | lower }}",
            "{{ 'x' }}{{ node }}",
            "{%- if true %}{{ node }}{% endif %}",
        ] {
            let want = env
                .render_str(src, Value::from_dyn_object(c.clone()))
                .unwrap();
            assert_eq!(fast.render(src, &c).unwrap(), want, "{src}");
        }
        assert_eq!(simple_segments("{{ node | lower }}"), None);
        assert_eq!(simple_segments("{{ true }}"), None);
        assert_eq!(
            simple_segments("x{{ a_1 }}"),
            Some(vec![Seg::Text("x".into()), Seg::Var("a_1".into())])
        );
        assert_eq!(
            fast.render("{{ nope }} {{ node }}", &c),
            Err(RenderError::Undefined("nope".into()))
        );
    }

    #[test]
    fn names_the_undefined_variable() {
        let mut t = Templates::new();
        let c = ctx();
        assert_eq!(
            t.render("{{ node }} {{ nope }}", &c),
            Err(RenderError::Undefined("nope".to_owned()))
        );
        assert_eq!(
            t.truthy("kind == 'hotfix'", &c),
            Err(RenderError::Undefined("kind".to_owned()))
        );
        assert!(matches!(
            t.render("{{ node", &c),
            Err(RenderError::Other(_))
        ));
    }
}

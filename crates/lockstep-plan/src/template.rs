//! Template rendering for playbook strings: minijinja with strict undefined, compiled once per
//! distinct source, with a lazily-looked-up context (no map is built per step).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

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
/// so a playbook or inventory variable can never redirect a step to another node; host
/// variables override playbook variables.
pub(crate) struct Ctx {
    /// Built-in values in layers (EVS, node, cluster, host, plan), shared between steps.
    pub builtins: Vec<Layer>,
    pub host_vars: Arc<BTreeMap<String, String>>,
    pub playbook_vars: Arc<BTreeMap<String, String>>,
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
        self.host_vars
            .get(key)
            .or_else(|| self.playbook_vars.get(key))
            .map(|s| Value::from(s.as_str()))
    }
}

impl Object for Ctx {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// Compiled templates, keyed by their source.
///
/// Sources are borrowed from the playbook for the whole planning, so the cache is keyed by
/// their address and length: no hashing of long messages per step.
pub(crate) struct Templates {
    env: Environment<'static>,
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
        Templates {
            env,
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
        let t = self
            .env
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
        })
    }

    #[test]
    fn renders_with_precedence() {
        let mut t = Templates::new();
        let c = ctx();
        assert_eq!(
            t.render("{{ node }}:{{ pkg }}", &c).unwrap(),
            "N1:D:\\sp\\update.exe"
        );
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

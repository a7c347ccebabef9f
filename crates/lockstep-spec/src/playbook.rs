//! Playbooks: `playbooks/*.yml` into [`Playbook`], checked against the fleet they will run on.
//!
//! Checked, all at once and each at its position: unknown keys (top level, target, rollout,
//! stages, phases, steps, action and preflight-check fields), missing fields, the shape (`units`,
//! `cluster_mode`, `roles`, `tiers`, `failover`, `node_order`) and declared invariants, unknown
//! scope, action, role, edition; a scope the shape does not use; duplicate step ids within
//! one scope; `hosts` patterns matching nothing in the fleet; stages naming unknown sites or a
//! site twice (`*` is expanded to every site no other stage names); gates and durations;
//! template and `when` syntax (minijinja) and the variables they use; rule ids against
//! kb328839.md; literal paths, switches, service, group and node names as [`Name`]s, including
//! playbook variables used whole (`{{ sp_package }}`) as such values. The action body is read by
//! `serde_yaml` into [`ActionSpec`].

use std::collections::{BTreeMap, BTreeSet};

use lockstep_core::probe::EXCHANGE_BUILD;
use lockstep_core::{
    ActionSpec, Batch, ClusterMode, Condition, FactDef, FactProbe, FailureBudget, Fleet, Gate,
    Invariant, Invariants, Name, NameKind, NodeOrderKind, PackageKind, Phase, Playbook,
    PreflightCheck, Rollout, Scope, Shape, Stage, StepSpec, Target, Units,
};

use crate::diag::{hint, q, Diagnostics, Pos, Sink, SourceFile};
use crate::inventory::{
    check_keys, enum_value, name_at, scalar, version_at, EDITIONS, PRODUCTS, ROLES,
};
use crate::rules;
use crate::tree::{self, Kind, Node};

const TOP_KEYS: &[&str] = &[
    "name",
    "title",
    "procedure",
    "hosts",
    "exchange",
    "target",
    "shape",
    "invariants",
    "vars",
    "facts",
    "rollout",
    "phases",
];
const STEP_KEYS: &[&str] = &["id", "name", "rule", "when", "timeout_secs", "action"];

const NODE_ORDERS: &[(&str, NodeOrderKind)] = &[
    ("passive-first", NodeOrderKind::PassiveFirst),
    ("active-first", NodeOrderKind::ActiveFirst),
    ("by-name", NodeOrderKind::ByName),
    ("fewest-groups-first", NodeOrderKind::FewestGroupsFirst),
    ("active-last", NodeOrderKind::ActiveLast),
    ("owners-first", NodeOrderKind::OwnersFirst),
];

const UNITS: &[(&str, Units)] = &[("clusters", Units::Clusters), ("hosts", Units::Hosts)];

const CLUSTER_MODES: &[(&str, ClusterMode)] = &[
    ("active-passive", ClusterMode::ActivePassive),
    ("active-active", ClusterMode::ActiveActive),
];

const SHAPE_KEYS: &[&str] = &[
    "units",
    "cluster_mode",
    "roles",
    "tiers",
    "failover",
    "node_order",
];

const SCOPES: &[(&str, Scope)] = &[
    ("cluster", Scope::Cluster),
    ("all-nodes", Scope::AllNodes),
    ("first-node", Scope::FirstNode),
    ("other-nodes", Scope::OtherNodes),
    ("each-node", Scope::EachNode),
    ("each-virtual-server", Scope::EachVirtualServer),
    ("each-host", Scope::EachHost),
    ("pool", Scope::Pool),
];

/// Every action kind (from the descriptors in `lockstep_core::descriptor`).
fn action_kinds() -> Vec<&'static str> {
    lockstep_core::descriptor::kinds()
}

/// The fields each action takes besides the common step keys (serde ignores unknown ones, so
/// the loader checks them itself): the descriptor's.
fn action_fields(action: &str) -> Vec<&'static str> {
    lockstep_core::descriptor::fields(action)
}

/// Probe kinds a declared fact may use (`facts:`), with the extra keys each takes.
const PROBES: &[(&str, &[&str])] = &[
    ("registry", &["value"]),
    ("file-version", &[]),
    ("wql", &["property", "namespace"]),
    ("powershell", &[]),
    ("hotfix", &[]),
    ("exchange-build", &[]),
];

/// The fields of each preflight check besides `check`.
fn check_fields(check: &str) -> Option<&'static [&'static str]> {
    match check {
        "services-stopped" => Some(&["services"]),
        "no-processes" => Some(&["images"]),
        "edition-matches" | "product-matches" | "no-pending-reboot" | "cluster-service-running" => {
            Some(&[])
        }
        _ => None,
    }
}

/// The names the planner defines for a step of `scope` (see the header of e3-cluster.yml).
fn builtins(scope: Scope) -> &'static [&'static str] {
    const HOST: &[&str] = &[
        "node",
        "host",
        "site",
        "locale",
        "windows",
        "role",
        "product",
        "kind",
        "target_build",
    ];
    const CLUSTER: &[&str] = &[
        "node",
        "host",
        "site",
        "locale",
        "windows",
        "role",
        "product",
        "kind",
        "target_build",
        "peer",
        "first_node",
        "cluster",
        "cluster_group",
    ];
    const EVS: &[&str] = &[
        "node",
        "host",
        "site",
        "locale",
        "windows",
        "role",
        "product",
        "kind",
        "target_build",
        "peer",
        "first_node",
        "cluster",
        "cluster_group",
        "evs",
        "group",
    ];
    match scope {
        Scope::EachHost | Scope::Pool => HOST,
        Scope::EachVirtualServer => EVS,
        _ => CLUSTER,
    }
}

/// Which [`NameKind`] a literal in an action field must satisfy (by field name).
fn field_kind(field: &str) -> Option<NameKind> {
    match field {
        "group" => Some(NameKind::Object),
        "to" => Some(NameKind::Host),
        "package" => Some(NameKind::Path),
        "args" => Some(NameKind::Args),
        "prerequisite" => Some(NameKind::Ident),
        "services" | "images" => Some(NameKind::Object),
        _ => None,
    }
}

/// Loads one playbook and checks it against `fleet`, collecting every error.
pub fn load_playbook(file: &SourceFile, fleet: &Fleet) -> Result<Playbook, Diagnostics> {
    let root = tree::parse(file)?;
    let mut sink = Sink::default();
    let pb = PlaybookLoader {
        fleet,
        sink: &mut sink,
        file,
        vars: BTreeMap::new(),
        scope: None,
        fact_names: BTreeSet::new(),
        has_target: true,
    }
    .playbook(&root);
    match pb {
        Some(p) => sink.finish(p),
        None => {
            // Something required was missing or wrong; it has normally been reported already.
            if !sink.has_errors() {
                sink.error(&root.pos, "playbook could not be read");
            }
            Err(sink.into_diagnostics())
        }
    }
}

/// Reads one playbook; one instance per load.
struct PlaybookLoader<'a> {
    fleet: &'a Fleet,
    sink: &'a mut Sink,
    file: &'a SourceFile,
    /// Playbook vars as written (for checking what `{{ var }}` expands to).
    vars: BTreeMap<String, Node>,
    /// Scope of the phase being read (decides which built-in names templates may use).
    scope: Option<Scope>,
    /// Names of the facts the playbook declares (conditions may read them).
    fact_names: BTreeSet<String>,
    /// Whether the playbook has a `target` (conditions may read `target`; the Exchange
    /// installer and version checks compare with it).
    has_target: bool,
}

/// Whether a step of this action compares with the playbook's target: the Exchange installer
/// (its package or a prerequisite of it), the version check, the edition and product
/// preflight checks and an `assert` without `that`.
fn needs_target(a: &ActionSpec) -> bool {
    match a {
        ActionSpec::Install { .. } | ActionSpec::AssertVersion => true,
        ActionSpec::Assert { that } => that.is_none(),
        ActionSpec::Preflight { checks } => checks.iter().any(PreflightCheck::compares_with_target),
        _ => false,
    }
}

/// `{{ name }}` → `name` (a whole-value reference to one variable).
fn whole_var(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    inner
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(inner)
}

fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The longest step timeout and soak a playbook may give: 7 days (a longer one is a typo, and
/// every duration the engine adds to stays far from overflow).
pub const MAX_DURATION_SECS: u64 = 7 * 86_400;

use lockstep_core::playbook::parse_duration;

/// Glob match with `*` and `?`, case-insensitive: the planner's host patterns.
fn glob(pattern: &str, s: &str) -> bool {
    lockstep_plan::pattern_matches(pattern, s)
}

/// The keys a stage may have.
const STAGE_KEYS: &[&str] = &[
    "name",
    "sites",
    "groups",
    "hosts",
    "gate",
    "max_parallel_sites",
    "failure_budget",
];

/// What the stages read so far took: their names, each named site's stage, and `rest`.
#[derive(Default)]
struct StagesSeen {
    names: BTreeSet<String>,
    sites: BTreeMap<String, String>,
    rest: bool,
}

impl PlaybookLoader<'_> {
    fn playbook(&mut self, root: &Node) -> Option<Playbook> {
        if !check_keys(root, "a playbook", TOP_KEYS, self.sink) {
            return None;
        }
        let stem = std::path::Path::new(&self.file.path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("playbook")
            .to_owned();
        let name = match root.get("name") {
            Some(n) => name_at(NameKind::Ident, n, "playbook name", self.sink),
            None => match Name::ident(&stem) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.sink
                        .error(&root.pos, format!("playbook name from the file name: {e}"));
                    None
                }
            },
        };
        let title = match self.required(root, "title") {
            Some(t) => scalar(t, "title", self.sink).map(str::to_owned),
            None => None,
        };
        // Free text (`CAU`): what the playbook calls its procedure.
        let procedure = match root.get("procedure") {
            None => Some(stem.clone()),
            Some(p) => scalar(p, "procedure", self.sink).and_then(|t| {
                if t.trim().is_empty() || t.chars().any(char::is_control) {
                    self.sink.error(
                        &p.pos,
                        format!(
                            "`procedure` must be a non-empty line of text, found {}",
                            q(t)
                        ),
                    );
                    None
                } else {
                    Some(t.to_owned())
                }
            }),
        };
        let shape = match root.get("shape") {
            None => Some(Shape::default()),
            Some(n) => self.shape(n),
        };
        let invariants = match root.get("invariants") {
            None => Some(Invariants::new()),
            Some(n) => self.invariants(n),
        };
        let hosts = self.required(root, "hosts").and_then(|h| self.hosts(h));
        let target = match root.get("target") {
            Some(t) => self.target(t).map(Some),
            None => Some(None),
        };
        self.has_target = !matches!(target, Some(None));
        let exchange = match root.get("exchange") {
            // A playbook with an Exchange target changes Exchange servers unless it says not.
            None => Some(self.has_target),
            Some(n) => match n.as_bool() {
                Some(b) => Some(b),
                None => {
                    self.sink.error(
                        &n.pos,
                        format!("`exchange` must be true or false, found {}", n.describe()),
                    );
                    None
                }
            },
        };
        if exchange == Some(true) && !self.has_target {
            let at = root
                .get("exchange")
                .map_or(root.pos.clone(), |n| n.pos.clone());
            self.sink.error(
                &at,
                "`exchange: true` needs a `target` (the Exchange product and build the playbook \
                 brings the servers to)"
                    .to_owned(),
            );
        }
        let vars = match root.get("vars") {
            Some(v) => self.vars(v),
            None => Some(BTreeMap::new()),
        };
        let facts = match root.get("facts") {
            Some(f) => self.facts(f),
            None => Some(Vec::new()),
        };
        let rollout = match root.get("rollout") {
            Some(r) => self.rollout(r),
            None => Some(Rollout::default()),
        };
        let phases = self
            .required(root, "phases")
            .and_then(|p| self.phases(p, shape.as_ref()));
        Some(Playbook {
            name: name?,
            title: title?,
            procedure: procedure?,
            shape: shape?,
            invariants: invariants?,
            hosts: hosts?,
            exchange: exchange?,
            target: target?,
            vars: vars?,
            facts: facts?,
            phases: phases?,
            rollout: rollout?,
        })
    }

    /// `shape:` what the playbook works on (`units`), which clusters and hosts it takes
    /// (`cluster_mode`, `roles`, `tiers`), whether groups may move (`failover`) and the node
    /// order.
    fn shape(&mut self, node: &Node) -> Option<Shape> {
        if !check_keys(node, "`shape`", SHAPE_KEYS, self.sink) {
            return None;
        }
        let mut ok = true;
        let mut shape = Shape::default();
        match node.get("units") {
            Some(u) => match enum_value(u, "units", UNITS, self.sink) {
                Some(x) => shape.units = x,
                None => ok = false,
            },
            None => {
                self.sink.error(
                    &node.pos,
                    "`shape` needs `units` (`clusters` or `hosts`)".to_owned(),
                );
                ok = false;
            }
        }
        if let Some(m) = node.get("cluster_mode") {
            match enum_value(m, "cluster_mode", CLUSTER_MODES, self.sink) {
                Some(x) => shape.cluster_mode = Some(x),
                None => ok = false,
            }
        }
        for (key, out) in [("roles", &mut shape.roles), ("tiers", &mut shape.tiers)] {
            let Some(list) = node.get(key) else { continue };
            let what = format!("`shape.{key}`");
            for item in self.strings(list, &what).unwrap_or_default() {
                match enum_value(item, "role", ROLES, self.sink) {
                    Some(r) if out.contains(&r) => {
                        self.sink.error(
                            &item.pos,
                            format!("role {} is listed twice", q(item.to_text().as_str())),
                        );
                        ok = false;
                    }
                    Some(r) => out.push(r),
                    None => ok = false,
                }
            }
        }
        if let Some(f) = node.get("failover") {
            match f.as_bool() {
                Some(b) => shape.failover = b,
                None => {
                    self.sink.error(
                        &f.pos,
                        format!("`failover` must be true or false, found {}", f.describe()),
                    );
                    ok = false;
                }
            }
        }
        if let Some(o) = node.get("node_order") {
            match enum_value(o, "node_order", NODE_ORDERS, self.sink) {
                Some(x) => shape.node_order = Some(x),
                None => ok = false,
            }
        }
        let at = |k: &str| {
            node.get(k)
                .map(|n| n.pos.clone())
                .unwrap_or(node.pos.clone())
        };
        if shape.is_cluster() && !shape.tiers.is_empty() {
            self.sink.error(
                &at("tiers"),
                "`tiers` order hosts, not clusters (`units: clusters`)".to_owned(),
            );
            ok = false;
        }
        if !shape.is_cluster() {
            for key in ["cluster_mode", "node_order", "failover"] {
                if node.get(key).is_some() {
                    self.sink.error(
                        &at(key),
                        format!("`{key}` is for clusters, but the shape has `units: hosts`"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(shape)
    }

    /// `invariants:` a list of invariant names, or a mapping from each name to the rule id its
    /// violations cite.
    fn invariants(&mut self, node: &Node) -> Option<Invariants> {
        let mut out = Invariants::new();
        let mut ok = true;
        let choices: Vec<(&str, Invariant)> =
            Invariant::ALL.iter().map(|i| (i.name(), *i)).collect();
        let mut add = |key: &Node, rule: String, sink: &mut Sink| match enum_value(
            key,
            "invariant",
            &choices,
            sink,
        ) {
            Some(i) => {
                out.insert(i, rule);
                true
            }
            None => false,
        };
        if let Some(items) = node.as_seq() {
            for item in items {
                ok &= add(item, String::new(), self.sink);
            }
        } else if let Some(entries) = node.as_map() {
            for (k, v) in entries {
                let Some(rule) = scalar(v, "rule id", self.sink) else {
                    ok = false;
                    continue;
                };
                if let Some(why) = rules::check_rule(rule) {
                    self.sink.error(&v.pos, format!("rule {}: {why}", q(rule)));
                    ok = false;
                    continue;
                }
                ok &= add(k, rule.to_owned(), self.sink);
            }
        } else {
            self.sink.error(
                &node.pos,
                format!(
                    "`invariants` must be a list of names or a mapping from name to rule id, found {}",
                    node.describe()
                ),
            );
            return None;
        }
        ok.then_some(out)
    }

    fn required<'n>(&mut self, map: &'n Node, key: &str) -> Option<&'n Node> {
        let v = map.get(key);
        if v.is_none() {
            self.sink.error(&map.pos, format!("missing field `{key}`"));
        }
        v
    }

    fn strings<'n>(&mut self, node: &'n Node, what: &str) -> Option<Vec<&'n Node>> {
        match &node.kind {
            Kind::Seq(items) => {
                let mut ok = true;
                for i in items {
                    if i.as_str().is_none() || i.is_null() {
                        self.sink.error(
                            &i.pos,
                            format!("{what} must hold strings, found {}", i.describe()),
                        );
                        ok = false;
                    }
                }
                ok.then(|| items.iter().collect())
            }
            Kind::Scalar { .. } if !node.is_null() => Some(vec![node]),
            _ => {
                self.sink.error(
                    &node.pos,
                    format!(
                        "{what} must be a list of strings, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    fn hosts(&mut self, node: &Node) -> Option<Vec<String>> {
        let items = self.strings(node, "`hosts`")?;
        let fleet = self.fleet;
        let mut ok = true;
        for item in &items {
            let pattern = item.as_str().unwrap_or_default();
            for term in pattern.split([':', ',']) {
                // `!x` of a name the inventory lacks leaves nothing out, as in Ansible: a
                // playbook may leave out a group (`!own_service_pack`) some fleets do not have.
                if term.trim().starts_with('!') {
                    continue;
                }
                let term = term.trim().trim_start_matches('&');
                if term.is_empty() {
                    continue;
                }
                let names = fleet
                    .groups
                    .keys()
                    .map(Name::as_str)
                    .chain(fleet.hosts.iter().map(|h| h.name.as_str()))
                    .chain(fleet.sites.iter().map(|s| s.name.as_str()))
                    .chain(fleet.clusters.iter().map(|c| c.name.as_str()))
                    .chain(fleet.pools.iter().map(|p| p.name.as_str()));
                let names: Vec<&str> = names.collect();
                let matched = term == "all" || names.iter().any(|n| glob(term, n));
                if !matched {
                    ok = false;
                    self.sink.error(
                        &item.pos,
                        format!(
                            "host pattern {} matches nothing in the inventory{}",
                            q(term),
                            hint(term, &names)
                        ),
                    );
                }
            }
        }
        ok.then(|| {
            items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_owned())
                .collect()
        })
    }

    fn target(&mut self, node: &Node) -> Option<Target> {
        if !check_keys(
            node,
            "`target`",
            &["product", "build", "kind", "editions"],
            self.sink,
        ) {
            return None;
        }
        let product = self
            .required(node, "product")
            .and_then(|p| enum_value(p, "product", PRODUCTS, self.sink));
        let build = self
            .required(node, "build")
            .and_then(|b| version_at(b, "target build", product, self.sink));
        let kind = self.required(node, "kind").and_then(|k| {
            enum_value(
                k,
                "kind",
                &[
                    ("service-pack", PackageKind::ServicePack),
                    ("hotfix", PackageKind::Hotfix),
                ],
                self.sink,
            )
        });
        let mut editions = Vec::new();
        let mut ok = true;
        if let Some(e) = node.get("editions") {
            for item in self.strings(e, "`editions`").unwrap_or_default() {
                match enum_value(item, "edition", EDITIONS, self.sink) {
                    Some(ed) => editions.push(ed),
                    None => ok = false,
                }
            }
            // E2-ED: the Conferencing Server service pack is a different package.
            let conf = editions.contains(&lockstep_core::Edition::Conferencing);
            if conf && editions.len() > 1 {
                self.sink.error(
                    &e.pos,
                    "one package cannot target `conferencing` and another edition: the Conferencing Server service pack is not the Standard/Enterprise one (E2-ED)",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(Target {
            product: product?,
            build: build?,
            kind: kind?,
            editions,
        })
    }

    fn template(&mut self, node: &Node, text: &str) -> bool {
        if !has_template(text) {
            return true;
        }
        let env = minijinja::Environment::new();
        match env.template_from_str(text) {
            Ok(t) => self.names_known(node, text, t.undeclared_variables(false), &env),
            Err(e) => {
                self.sink.error(
                    &node.pos,
                    format!(
                        "template {} does not parse: {}",
                        q(text),
                        e.detail().unwrap_or(&e.to_string())
                    ),
                );
                false
            }
        }
    }

    /// Inside a phase, every variable a template or `when` uses must be a built-in of the phase's
    /// scope, a playbook variable or a variable some inventory host has (the planner renders
    /// strictly; this finds the typo with its position).
    fn names_known(
        &mut self,
        node: &Node,
        text: &str,
        used: std::collections::HashSet<String>,
        env: &minijinja::Environment<'_>,
    ) -> bool {
        let Some(scope) = self.scope else {
            return true;
        };
        // A fleet with no host gives no inventory variable to judge by: planning reports that
        // the playbook selects nothing, which is the error that helps.
        if self.fleet.hosts.is_empty() {
            return true;
        }
        let mut known: BTreeSet<&str> = builtins(scope).iter().copied().collect();
        known.extend(self.vars.keys().map(String::as_str));
        known.extend(
            self.fleet
                .hosts
                .iter()
                .flat_map(|h| h.vars.keys().map(String::as_str)),
        );
        let globals: BTreeSet<String> = env.globals().map(|(n, _)| n.to_owned()).collect();
        // `NAME | default(...)`: the template says what holds without the variable (an optional
        // inventory flag such as `exchange_adc`), so its absence is no typo.
        let defaulted = |u: &str| {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            compact.contains(&format!("{u}|default("))
        };
        let mut unknown: Vec<String> = used
            .into_iter()
            .filter(|u| !known.contains(u.as_str()) && !globals.contains(u) && !defaulted(u))
            .collect();
        unknown.sort();
        let Some(first) = unknown.first() else {
            return true;
        };
        let candidates: Vec<&str> = known.iter().copied().collect();
        let scope_name = SCOPES
            .iter()
            .find(|(_, s)| *s == scope)
            .map(|(n, _)| *n)
            .unwrap_or_default();
        self.sink.error(
            &node.pos,
            format!(
                "{} uses {}, which is not a built-in of scope `{scope_name}`, a playbook variable \
                 or an inventory variable{}",
                q(text),
                q(first),
                hint(first, &candidates)
            ),
        );
        false
    }

    fn vars(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        if node.is_null() {
            return Some(BTreeMap::new());
        }
        let Some(entries) = node.as_map() else {
            self.sink.error(
                &node.pos,
                format!("`vars` must be a mapping, found {}", node.describe()),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.sink.error(&k.pos, "a variable name must be a string");
                ok = false;
                continue;
            };
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.sink.error(
                    &k.pos,
                    format!("variable name {} is not an identifier", q(key)),
                );
                ok = false;
            }
            let Some(value) = v.as_str().filter(|_| !v.is_null()) else {
                self.sink.error(
                    &v.pos,
                    format!(
                        "variable {} must be a single value, found {}",
                        q(key),
                        v.describe()
                    ),
                );
                ok = false;
                continue;
            };
            ok &= self.template(v, value);
            self.vars.insert(key.to_owned(), v.clone());
            out.insert(key.to_owned(), value.to_owned());
        }
        ok.then_some(out)
    }

    /// `facts:`: name -> one probe: `registry: KEY` with `value:`, `file-version: PATH`,
    /// `wql: QUERY` with `property:` (and `namespace:`), `powershell: EXPRESSION`,
    /// `hotfix: KB...`, `exchange-build: true`.
    fn facts(&mut self, node: &Node) -> Option<Vec<FactDef>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let Some(entries) = node.as_map() else {
            self.sink.error(
                &node.pos,
                format!(
                    "`facts` must be a mapping of fact names to probes, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default().to_owned();
            let ident = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident || ["target", "and", "or", "not", "true", "false"].contains(&name.as_str()) {
                self.sink.error(
                    &k.pos,
                    format!("fact name {} must be an identifier other than `target`, `and`, `or`, `not`, `true`, `false`", q(&name)),
                );
                ok = false;
                continue;
            }
            let kinds: Vec<&str> = PROBES.iter().map(|(p, _)| *p).collect();
            let Some(map) = v.as_map() else {
                self.sink.error(
                    &v.pos,
                    format!(
                        "fact {}: a probe is a mapping with one of {}, found {}",
                        q(&name),
                        kinds.join(", "),
                        v.describe()
                    ),
                );
                ok = false;
                continue;
            };
            let found: Vec<&(Node, Node)> = map
                .iter()
                .filter(|(pk, _)| kinds.contains(&pk.as_str().unwrap_or_default()))
                .collect();
            let [(pk, pv)] = found.as_slice() else {
                self.sink.error(
                    &v.pos,
                    format!(
                        "fact {}: give exactly one probe kind ({})",
                        q(&name),
                        kinds.join(", ")
                    ),
                );
                ok = false;
                continue;
            };
            let kind = pk.as_str().unwrap_or_default();
            let extra = PROBES
                .iter()
                .find(|(p, _)| *p == kind)
                .map(|(_, e)| *e)
                .unwrap_or(&[]);
            let mut allowed = vec![kind];
            allowed.extend_from_slice(extra);
            if !check_keys(v, &format!("fact `{name}`"), &allowed, self.sink) {
                ok = false;
                continue;
            }
            let text = |n: Option<&Node>| n.and_then(Node::as_str).unwrap_or_default().to_owned();
            let probe = match kind {
                "registry" => FactProbe::Registry {
                    key: text(Some(pv)),
                    value: text(v.get("value")),
                },
                "file-version" => FactProbe::FileVersion {
                    path: text(Some(pv)),
                },
                "wql" => FactProbe::Wql {
                    query: text(Some(pv)),
                    property: text(v.get("property")),
                    namespace: v
                        .get("namespace")
                        .and_then(Node::as_str)
                        .unwrap_or("root/cimv2")
                        .to_owned(),
                },
                "powershell" => FactProbe::Powershell {
                    expression: text(Some(pv)),
                },
                "hotfix" => FactProbe::Hotfix { id: text(Some(pv)) },
                _ => FactProbe::ExchangeBuild,
            };
            if let Err(why) = probe.validate() {
                self.sink
                    .error(&pv.pos, format!("fact {}: {why}", q(&name)));
                ok = false;
                continue;
            }
            self.fact_names.insert(name.clone());
            out.push(FactDef { name, probe });
        }
        ok.then_some(out)
    }

    /// A condition of a step (`that`, `unless`, `expect`): it parses and, unless it reads the
    /// step's own JSON (`expect`), every fact it reads is declared (or `exchange_build`,
    /// `target`).
    fn step_condition(&mut self, step: &str, key: &str, node: &Node) -> bool {
        self.condition_at(&format!("step {}", q(step)), key, node)
    }

    /// A condition at `node`; `step` names its place in messages (``step `x` ``, `` `rollout` ``).
    fn condition_at(&mut self, step: &str, key: &str, node: &Node) -> bool {
        let Some(text) = node.as_str().filter(|_| !node.is_null()) else {
            self.sink.error(
                &node.pos,
                format!(
                    "{step}: `{key}` must be a condition, found {}",
                    node.describe()
                ),
            );
            return false;
        };
        let c = match Condition::parse(text) {
            Ok(c) => c,
            Err(e) => {
                self.sink.error(&node.pos, format!("{step}, `{key}`: {e}"));
                return false;
            }
        };
        if key == "expect" {
            return true;
        }
        let mut known: Vec<&str> = self.fact_names.iter().map(String::as_str).collect();
        known.push(EXCHANGE_BUILD);
        if self.has_target {
            known.push("target");
        }
        let mut ok = true;
        for f in c.facts() {
            if !known.contains(&f) {
                self.sink.error(
                    &node.pos,
                    format!(
                        "{step}, `{key}`: fact {} is not declared under `facts:`{}",
                        q(f),
                        hint(f, &known)
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    fn count(&mut self, node: &Node, what: &str) -> Option<u32> {
        match node
            .as_str()
            .filter(|_| !node.is_null())
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(n) => Some(n),
            None => {
                self.sink.error(
                    &node.pos,
                    format!(
                        "{what} must be a whole number, found {}",
                        q(&node.to_text())
                    ),
                );
                None
            }
        }
    }

    fn rollout(&mut self, node: &Node) -> Option<Rollout> {
        if !check_keys(
            node,
            "`rollout`",
            &[
                "max_parallel_sites",
                "max_parallel_per_site",
                "failure_budget",
                "stages",
                "serial",
                "wave_gate",
                "wave_health",
            ],
            self.sink,
        ) {
            return None;
        }
        let mut r = Rollout::default();
        let mut ok = true;
        if let Some(n) = node.get("max_parallel_sites") {
            match self.count(n, "`max_parallel_sites`") {
                Some(0) => {
                    self.sink
                        .error(&n.pos, "`max_parallel_sites` must be at least 1");
                    ok = false;
                }
                Some(v) => r.max_parallel_sites = v,
                None => ok = false,
            }
        }
        if let Some(n) = node.get("max_parallel_per_site") {
            match self.count(n, "`max_parallel_per_site`") {
                Some(v) => r.max_parallel_per_site = v,
                None => ok = false,
            }
        }
        if let Some(fb) = node.get("failure_budget") {
            match self.failure_budget(fb) {
                Some(b) => r.failure_budget = b,
                None => ok = false,
            }
        }
        if let Some(stages) = node.get("stages") {
            match self.stages(stages) {
                Some(s) => r.stages = s,
                None => ok = false,
            }
        }
        if let Some(serial) = node.get("serial") {
            match self.serial(serial) {
                Some(b) => r.serial = b,
                None => ok = false,
            }
            if node.get("stages").is_some() {
                self.sink.error(
                    &serial.pos,
                    "`serial` (waves of hosts) and `stages` (sets of sites) cannot be combined: use one",
                );
                ok = false;
            }
        }
        for key in ["wave_gate", "wave_health"] {
            if let (Some(n), None) = (node.get(key), node.get("serial")) {
                self.sink.error(
                    &n.pos,
                    format!("`{key}` needs `serial` (it applies between waves)"),
                );
                ok = false;
            }
        }
        if let Some(g) = node.get("wave_gate") {
            match self.gate(g) {
                Some(g) => r.wave_gate = g,
                None => ok = false,
            }
        }
        if let Some(h) = node.get("wave_health") {
            if self.condition_at("`rollout`", "wave_health", h) {
                r.wave_health = h.as_str().map(str::to_owned);
            } else {
                ok = false;
            }
        }
        ok.then_some(r)
    }

    /// `serial: [1, 10%, 50%]` (or one value): counts of at least 1, percentages 1-100.
    fn serial(&mut self, node: &Node) -> Option<Vec<Batch>> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) if !items.is_empty() => items.iter().collect(),
            Kind::Scalar { .. } if !node.is_null() => vec![node],
            _ => {
                self.sink.error(
                    &node.pos,
                    format!("`serial` must be a count, a percentage or a list of them (`[1, 10%, 50%]`), found {}", node.describe()),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for i in items {
            let text = i.as_str().unwrap_or_default().trim();
            let b = match text.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .map(Batch::Percent),
                None => text
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(Batch::Count),
            };
            match b {
                Some(b) => out.push(b),
                None => {
                    self.sink.error(
                        &i.pos,
                        format!("`serial` entry {} is not a count of at least 1 or a percentage from 1% to 100%", q(&i.to_text())),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn failure_budget(&mut self, fb: &Node) -> Option<FailureBudget> {
        if !check_keys(fb, "`failure_budget`", &["max_failed_hosts"], self.sink) {
            return None;
        }
        // Typed part: serde_yaml reads it once the keys are known to be right.
        match serde_yaml::from_value::<FailureBudget>(fb.to_value()) {
            Ok(b) => Some(b),
            Err(e) => {
                self.sink.error(&fb.pos, format!("`failure_budget`: {e}"));
                None
            }
        }
    }

    /// A stage's `groups:` or `hosts:`: names the inventory must know.
    fn stage_members(&mut self, node: &Node, key: &str) -> Option<Vec<Name>> {
        let fleet = self.fleet;
        let items = self.strings(node, &format!("`{key}`"))?;
        let known: Vec<&str> = if key == "groups" {
            fleet.groups.keys().map(|g| g.as_str()).collect()
        } else {
            fleet.hosts.iter().map(|h| h.name.as_str()).collect()
        };
        let mut out = Vec::new();
        let mut ok = true;
        for i in items {
            let v = i.as_str().unwrap_or_default();
            let found = if key == "groups" {
                fleet.groups.keys().find(|g| g.eq_ignore_case(v)).cloned()
            } else {
                fleet.host(v).map(|h| h.name.clone())
            };
            match found {
                Some(n) => out.push(n),
                None => {
                    let what = if key == "groups" { "group" } else { "host" };
                    self.sink.error(
                        &i.pos,
                        format!(
                            "stage names {what} {}, which is not in the inventory{}",
                            q(v),
                            hint(v, &known)
                        ),
                    );
                    ok = false;
                }
            }
        }
        if out.is_empty() && ok {
            self.sink.error(
                &node.pos,
                format!("`{key}` of a stage must name at least one"),
            );
            ok = false;
        }
        ok.then_some(out)
    }

    /// `stages:`: each stage takes units by site names, a count of sites, what is left
    /// (`rest`/`"*"`), inventory groups or hosts: exactly one of `sites`, `groups`, `hosts`.
    fn stages(&mut self, node: &Node) -> Option<Vec<Stage>> {
        let Some(items) = node.as_seq() else {
            self.sink.error(
                &node.pos,
                format!("`stages` must be a list, found {}", node.describe()),
            );
            return None;
        };
        let mut seen = StagesSeen::default();
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match self.stage(item, &mut seen) {
                Some(stage) => out.push(stage),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// One stage of `stages:` (every problem reported; `None` if there was one).
    fn stage(&mut self, item: &Node, seen: &mut StagesSeen) -> Option<Stage> {
        if !check_keys(item, "a stage", STAGE_KEYS, self.sink) {
            return None;
        }
        let mut ok = true;
        let name = self
            .required(item, "name")
            .and_then(|n| name_at(NameKind::Ident, n, "stage name", self.sink));
        if let Some(n) = &name {
            if !seen.names.insert(n.as_str().to_ascii_lowercase()) {
                self.sink.error(
                    &item
                        .get("name")
                        .map(|n| n.pos.clone())
                        .unwrap_or(item.pos.clone()),
                    format!("two stages are called {}", q(n.as_str())),
                );
                ok = false;
            }
        }
        let stage_label = name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let selectors: Vec<&str> = ["sites", "groups", "hosts"]
            .into_iter()
            .filter(|k| item.get(k).is_some())
            .collect();
        if selectors.len() != 1 {
            self.sink.error(
                &item.pos,
                format!(
                    "stage {} must take its hosts with exactly one of `sites` (names, a count such as `1`, or `rest`), `groups` or `hosts`{}",
                    q(&stage_label),
                    if selectors.is_empty() {
                        String::new()
                    } else {
                        format!(", found {}", selectors.join(" and "))
                    }
                ),
            );
            ok = false;
        }
        let mut stage = Stage::of_sites(
            name.clone()
                .unwrap_or_else(|| Name::ident("stage").expect("a valid id")),
            Vec::new(),
            Gate::None,
        );
        if let Some(s) = item.get("sites") {
            ok &= self.stage_sites(s, &mut stage, &stage_label, seen);
        }
        for key in ["groups", "hosts"] {
            if let Some(g) = item.get(key) {
                match self.stage_members(g, key) {
                    Some(v) if key == "groups" => stage.groups = v,
                    Some(v) => stage.hosts = v,
                    None => ok = false,
                }
            }
        }
        if let Some(g) = item.get("gate") {
            match self.gate(g) {
                Some(g) => stage.gate = g,
                None => ok = false,
            }
        }
        if let Some(n) = item.get("max_parallel_sites") {
            match self.count(n, "`max_parallel_sites`") {
                Some(v) => stage.max_parallel_sites = Some(v),
                None => ok = false,
            }
        }
        if let Some(fb) = item.get("failure_budget") {
            match self.failure_budget(fb) {
                Some(b) => stage.failure_budget = Some(b),
                None => ok = false,
            }
        }
        (ok && name.is_some()).then_some(stage)
    }

    /// A stage's `sites:`: site names (each in one stage only), a count of sites, or `rest`
    /// (`*`, in one stage only). False if anything was reported.
    fn stage_sites(
        &mut self,
        s: &Node,
        stage: &mut Stage,
        stage_label: &str,
        seen: &mut StagesSeen,
    ) -> bool {
        let mut ok = true;
        let scalar_text = match &s.kind {
            Kind::Scalar { .. } if !s.is_null() => s.as_str().map(str::trim),
            _ => None,
        };
        let is_rest = |t: &str| t == "*" || t.eq_ignore_ascii_case("rest");
        let count = scalar_text.and_then(|t| t.parse::<u32>().ok());
        let rest = scalar_text.is_some_and(is_rest)
            || matches!(&s.kind, Kind::Seq(v) if v.len() == 1 && v[0].as_str().is_some_and(|t| is_rest(t.trim())));
        if rest || count.is_some() {
            if rest && seen.rest {
                self.sink
                    .error(&s.pos, "`rest` (or `*`) may appear in one stage only");
                ok = false;
            }
            seen.rest |= rest;
            stage.rest = rest;
            if let Some(n) = count {
                if n == 0 {
                    self.sink
                        .error(&s.pos, "a count of sites must be at least 1");
                    ok = false;
                }
                stage.site_count = Some(n);
            }
            return ok;
        }
        let fleet = self.fleet;
        let site_names: Vec<&str> = fleet.sites.iter().map(|s| s.name.as_str()).collect();
        for site in self.strings(s, "`sites`").unwrap_or_default() {
            let sname = site.as_str().unwrap_or_default();
            if is_rest(sname) {
                if seen.rest {
                    self.sink
                        .error(&site.pos, "`rest` (or `*`) may appear in one stage only");
                    ok = false;
                }
                seen.rest = true;
                stage.rest = true;
                continue;
            }
            let Some(found) = fleet.site(sname) else {
                self.sink.error(
                    &site.pos,
                    format!(
                        "stage names site {}, which is not in the inventory{}",
                        q(sname),
                        hint(sname, &site_names)
                    ),
                );
                ok = false;
                continue;
            };
            let key = found.name.as_str().to_owned();
            if let Some(prev) = seen.sites.get(&key) {
                self.sink.error(
                    &site.pos,
                    format!(
                        "site {} is in two stages, {} and {}",
                        q(sname),
                        q(prev),
                        q(stage_label)
                    ),
                );
                ok = false;
            } else {
                seen.sites.insert(key, stage_label.to_owned());
                stage.sites.push(found.name.clone());
            }
        }
        ok
    }

    fn gate(&mut self, node: &Node) -> Option<Gate> {
        match &node.kind {
            Kind::Scalar { value, .. } => match value.as_str() {
                "none" => Some(Gate::None),
                "approval" => Some(Gate::Approval),
                other => {
                    self.sink.error(
                        &node.pos,
                        format!(
                            "gate {} is not `none`, `approval` or `{{ soak: 30m }}`{}",
                            q(other),
                            hint(other, &["none", "approval"])
                        ),
                    );
                    None
                }
            },
            Kind::Map(_) => {
                if !check_keys(node, "a gate", &["soak"], self.sink) {
                    return None;
                }
                let s = node.get("soak")?;
                let text = s.as_str().unwrap_or_default();
                match parse_duration(text) {
                    Some(secs) if secs <= MAX_DURATION_SECS => Some(Gate::Soak { secs }),
                    Some(_) => {
                        self.sink.error(
                            &s.pos,
                            format!(
                                "soak time {} is longer than the limit of 7d",
                                q(&s.to_text())
                            ),
                        );
                        None
                    }
                    None => {
                        self.sink.error(
                            &s.pos,
                            format!(
                                "soak time {} is not a duration like `30m`, `90s` or `2h`",
                                q(&s.to_text())
                            ),
                        );
                        None
                    }
                }
            }
            Kind::Seq(_) => {
                self.sink.error(
                    &node.pos,
                    "a gate is `none`, `approval` or `{ soak: 30m }`, not a list",
                );
                None
            }
        }
    }

    fn phases(&mut self, node: &Node, shape: Option<&Shape>) -> Option<Vec<Phase>> {
        let Some(items) = node.as_seq().filter(|i| !i.is_empty()) else {
            self.sink.error(
                &node.pos,
                format!(
                    "`phases` must be a non-empty list, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut ids: BTreeMap<(String, String), Pos> = BTreeMap::new();
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            if !check_keys(
                item,
                "a phase",
                &["name", "scope", "roles", "steps"],
                self.sink,
            ) {
                ok = false;
                continue;
            }
            let name = self
                .required(item, "name")
                .and_then(|n| scalar(n, "name", self.sink).map(str::to_owned));
            let scope_node = self.required(item, "scope");
            let scope = scope_node.and_then(|s| enum_value(s, "scope", SCOPES, self.sink));
            self.scope = scope;
            if let (Some(sc), Some(sh), Some(sn)) = (scope, shape, scope_node) {
                let cluster_scope = !matches!(sc, Scope::EachHost | Scope::Pool);
                if sh.is_cluster() != cluster_scope {
                    self.sink.error(
                        &sn.pos,
                        format!(
                            "scope {} does not fit the playbook's `shape.units: {}`",
                            q(sn.as_str().unwrap_or_default()),
                            if sh.is_cluster() { "clusters" } else { "hosts" }
                        ),
                    );
                    ok = false;
                }
                if sc == Scope::Pool && !sh.is_tiered() {
                    self.sink.error(
                        &sn.pos,
                        "scope `pool` is for load-balanced hosts of a tier: the playbook's `shape` \
                         declares no `tiers`"
                            .to_owned(),
                    );
                    ok = false;
                }
            }
            let mut roles = Vec::new();
            if let Some(r) = item.get("roles") {
                for role in self.strings(r, "`roles`").unwrap_or_default() {
                    match enum_value(role, "role", ROLES, self.sink) {
                        Some(x) => roles.push(x),
                        None => ok = false,
                    }
                }
            }
            let steps = self.required(item, "steps").and_then(|s| {
                let Some(list) = s.as_seq().filter(|l| !l.is_empty()) else {
                    self.sink.error(
                        &s.pos,
                        format!("`steps` must be a non-empty list, found {}", s.describe()),
                    );
                    return None;
                };
                let mut steps = Vec::new();
                let mut all_ok = true;
                for st in list {
                    // Duplicate ids are found even when the step has other errors.
                    if let (Some(sn), Some(idn)) = (scope_node, st.get("id")) {
                        let id_text = idn.as_str().unwrap_or_default().to_owned();
                        let key = (sn.as_str().unwrap_or_default().to_owned(), id_text.clone());
                        if let Some(prev) = ids.get(&key) {
                            self.sink.error(
                                &idn.pos,
                                format!(
                                    "step id {} is used twice in scope {} (first at line {})",
                                    q(&id_text),
                                    q(&key.0),
                                    prev.line
                                ),
                            );
                            all_ok = false;
                        } else {
                            ids.insert(key, idn.pos.clone());
                        }
                    }
                    match self.step(st) {
                        Some(step) => steps.push(step),
                        None => all_ok = false,
                    }
                }
                all_ok.then_some(steps)
            });
            match (name, scope, steps) {
                (Some(name), Some(scope), Some(steps)) => out.push(Phase {
                    name,
                    scope,
                    roles,
                    steps,
                }),
                _ => ok = false,
            }
        }
        self.scope = None;
        ok.then_some(out)
    }

    /// A step's `rule:` free text, or a KB 328839 id that must exist.
    fn step_rule(&mut self, shown: &str, r: &Node) -> Option<String> {
        let s = scalar(r, "rule", self.sink)?;
        match rules::check_rule(s) {
            None => Some(s.to_owned()),
            Some(why) => {
                self.sink.error(
                    &r.pos,
                    format!(
                        "step {}: rule {} is unknown: {why}{}",
                        q(shown),
                        q(s),
                        hint(s, &rules::known_ids())
                    ),
                );
                None
            }
        }
    }

    /// A step's `when:` expression: it parses and names only known variables.
    fn step_when(&mut self, shown: &str, w: &Node) -> Option<Option<String>> {
        match scalar(w, "when", self.sink) {
            Some(s) => {
                let env = minijinja::Environment::new();
                match env.compile_expression(s) {
                    Ok(expr) => {
                        let used = expr.undeclared_variables(false);
                        self.names_known(w, s, used, &env)
                            .then(|| Some(s.to_owned()))
                    }
                    Err(e) => {
                        self.sink.error(
                            &w.pos,
                            format!(
                                "step {}: `when` expression {} does not parse: {}",
                                q(shown),
                                q(s),
                                e.detail().unwrap_or(&e.to_string())
                            ),
                        );
                        None
                    }
                }
            }
            None => None,
        }
    }

    /// A step's `timeout_secs:` a positive number of seconds up to 7 days.
    fn step_timeout(&mut self, t: &Node) -> Option<Option<u64>> {
        match t
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0 && *n <= MAX_DURATION_SECS)
        {
            Some(n) => Some(Some(n)),
            None => {
                self.sink.error(
                &t.pos,
                format!(
                    "`timeout_secs` must be a positive number of seconds up to 604800 (7 days), found {}",
                    q(&t.to_text())
                ),
            );
                None
            }
        }
    }

    fn step(&mut self, node: &Node) -> Option<StepSpec> {
        let Some(entries) = node.as_map() else {
            self.sink.error(
                &node.pos,
                format!("a step must be a mapping, found {}", node.describe()),
            );
            return None;
        };
        let mut ok = true;
        let id = self
            .required(node, "id")
            .and_then(|n| name_at(NameKind::Ident, n, "step id", self.sink));
        let shown = id
            .as_ref()
            .map(|i| i.as_str().to_owned())
            .unwrap_or_else(|| "?".into());
        let name = self.required(node, "name").and_then(|n| {
            let s = scalar(n, "name", self.sink)?;
            self.template(n, s).then(|| s.to_owned())
        });
        let rule = self
            .required(node, "rule")
            .and_then(|r| self.step_rule(&shown, r));
        let when = match node.get("when") {
            Some(w) => self.step_when(&shown, w),
            None => Some(None),
        };
        let timeout_secs = match node.get("timeout_secs") {
            Some(t) => self.step_timeout(t),
            None => Some(None),
        };
        // The action: `action:` plus the variant's fields, read by serde_yaml into the core type.
        let action = match node.get("action") {
            None => {
                self.sink
                    .error(&node.pos, format!("step {} has no `action`", q(&shown)));
                None
            }
            Some(a) => {
                let aname = a.as_str().unwrap_or_default();
                let kinds = action_kinds();
                if !kinds.contains(&aname) {
                    self.sink.error(
                        &a.pos,
                        format!(
                            "step {}: unknown action {}{}",
                            q(&shown),
                            q(aname),
                            hint(aname, &kinds)
                        ),
                    );
                    None
                } else {
                    self.unknown_fields(&shown, aname, entries, node);
                    let mut map = serde_yaml::Mapping::new();
                    for (k, v) in entries {
                        let key = k.as_str().unwrap_or_default();
                        if key == "action" || !STEP_KEYS.contains(&key) {
                            map.insert(k.to_value(), v.to_value());
                        }
                    }
                    match serde_yaml::from_value::<ActionSpec>(serde_yaml::Value::Mapping(map)) {
                        Ok(spec) if !self.has_target && needs_target(&spec) => {
                            self.sink.error(
                                &a.pos,
                                format!(
                                    "step {}: action {} compares with the playbook's `target`, \
                                     which this playbook does not have (judge the change with \
                                     `assert`/`unless` over declared facts instead)",
                                    q(&shown),
                                    q(aname)
                                ),
                            );
                            None
                        }
                        Ok(spec) => Some(spec),
                        Err(e) => {
                            let msg = e.to_string();
                            let at = serde_position(&msg, entries).unwrap_or(node.pos.clone());
                            self.sink.error(
                                &at,
                                format!("step {} (action {}): {msg}", q(&shown), q(aname)),
                            );
                            None
                        }
                    }
                }
            }
        };
        // Templates and literal names in the action's fields; conditions and durations.
        for (k, v) in entries {
            let key = k.as_str().unwrap_or_default();
            if STEP_KEYS.contains(&key) {
                continue;
            }
            match key {
                "that" | "unless" | "expect" => ok &= self.step_condition(&shown, key, v),
                "every" => {
                    if v.as_str()
                        .and_then(parse_duration)
                        .is_none_or(|n| n == 0 || n > MAX_DURATION_SECS)
                    {
                        self.sink.error(
                            &v.pos,
                            format!(
                                "step {}: `every` must be a duration (`30s`, `2m`), found {}",
                                q(&shown),
                                q(&v.to_text())
                            ),
                        );
                        ok = false;
                    }
                }
                _ => ok &= self.field(&shown, key, v),
            }
        }
        if !ok {
            return None;
        }
        Some(StepSpec {
            id: id?,
            name: name?,
            rule: rule?,
            action: action?,
            when: when?,
            timeout_secs: timeout_secs?,
        })
    }

    /// Reports fields the action (or a preflight check) does not take.
    fn unknown_fields(&mut self, step: &str, action: &str, entries: &[(Node, Node)], node: &Node) {
        let allowed = action_fields(action);
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if STEP_KEYS.contains(&key) || allowed.contains(&key) {
                continue;
            }
            let known: Vec<&str> = STEP_KEYS.iter().chain(&allowed).copied().collect();
            self.sink.error(
                &k.pos,
                format!(
                    "step {}: unknown field {} for action `{action}` (it takes {}){}",
                    q(step),
                    q(key),
                    known
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    hint(key, &known)
                ),
            );
        }
        if action != "preflight" {
            return;
        }
        let Some(checks) = node.get("checks").and_then(Node::as_seq) else {
            return;
        };
        for c in checks {
            let Some(name) = c.get("check").and_then(Node::as_str) else {
                continue;
            };
            let Some(fields) = check_fields(name) else {
                continue; // serde names the unknown variant
            };
            for (k, _) in c.as_map().unwrap_or_default() {
                let key = k.as_str().unwrap_or_default();
                if key != "check" && !fields.contains(&key) {
                    self.sink.error(
                        &k.pos,
                        format!(
                            "step {}: unknown field {} for check `{name}`",
                            q(step),
                            q(key)
                        ),
                    );
                }
            }
        }
    }

    /// Checks one action field (recursing into `checks`): templates parse, literals are names.
    fn field(&mut self, step: &str, key: &str, v: &Node) -> bool {
        match &v.kind {
            Kind::Scalar { value, .. } => {
                if !self.template(v, value) {
                    return false;
                }
                // A site-supplied command is one cmd.exe line: free text, but no line breaks.
                if key == "command" {
                    if let Some(bad) = value.chars().find(|c| c.is_control()) {
                        self.sink.error(
                            &v.pos,
                            format!(
                                "step {}, `command` {}: contains {bad:?}; a command is one line",
                                q(step),
                                q(value)
                            ),
                        );
                        return false;
                    }
                    return true;
                }
                let Some(kind) = field_kind(key) else {
                    return true;
                };
                if key == "args" && value.is_empty() {
                    return true;
                }
                if let Some(var) = whole_var(value) {
                    // `{{ sp_package }}`: check the playbook's default value as that kind.
                    if let Some(vn) = self.vars.get(var).cloned() {
                        let text = vn.as_str().unwrap_or_default().to_owned();
                        let literal = !has_template(&text);
                        let empty_args = key == "args" && text.is_empty();
                        if literal && !empty_args {
                            if let Err(e) = Name::new(kind, &text) {
                                self.sink.error(
                                    &vn.pos,
                                    format!(
                                        "variable {} (used as `{key}` of step {}): {e}",
                                        q(var),
                                        q(step)
                                    ),
                                );
                                return false;
                            }
                        }
                    }
                    return true;
                }
                if has_template(value) {
                    return true;
                }
                match Name::new(kind, value) {
                    Ok(_) => true,
                    Err(e) => {
                        self.sink
                            .error(&v.pos, format!("step {}, `{key}`: {e}", q(step)));
                        false
                    }
                }
            }
            Kind::Seq(items) => {
                let mut ok = true;
                for i in items {
                    ok &= self.field(step, key, i);
                }
                ok
            }
            Kind::Map(entries) => {
                let mut ok = true;
                for (k, i) in entries {
                    ok &= self.field(step, k.as_str().unwrap_or_default(), i);
                }
                ok
            }
        }
    }
}

/// Where a serde error points: the key it names (`unknown field `x``) or the value it quotes
/// (`unknown variant `x``).
fn serde_position(msg: &str, entries: &[(Node, Node)]) -> Option<Pos> {
    let quoted = |prefix: &str| -> Option<String> {
        let start = msg.find(prefix)? + prefix.len();
        let rest = &msg[start..];
        Some(rest[..rest.find('`')?].to_owned())
    };
    if let Some(f) = quoted("unknown field `") {
        if let Some((k, _)) = entries.iter().find(|(k, _)| k.as_str() == Some(f.as_str())) {
            return Some(k.pos.clone());
        }
    }
    let v = quoted("unknown variant `")?;
    fn find(node: &Node, v: &str) -> Option<Pos> {
        match &node.kind {
            Kind::Scalar { value, .. } => (value == v).then(|| node.pos.clone()),
            Kind::Seq(items) => items.iter().find_map(|i| find(i, v)),
            Kind::Map(m) => m.iter().find_map(|(_, i)| find(i, v)),
        }
    }
    entries.iter().find_map(|(_, n)| find(n, &v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive on purpose: a new core action fails to compile here until the loader's
    /// `ACTIONS` and `action_fields` tables learn it.
    fn action_name(a: &ActionSpec) -> &'static str {
        match a {
            ActionSpec::MoveGroup { .. } => "move-group",
            ActionSpec::EvacuateNode { .. } => "evacuate-node",
            ActionSpec::StopClusterService => "stop-cluster-service",
            ActionSpec::StartClusterService => "start-cluster-service",
            ActionSpec::EvsResourcesOffline { .. } => "evs-resources-offline",
            ActionSpec::EvsResourcesOnline { .. } => "evs-resources-online",
            ActionSpec::UpgradeVirtualServer { .. } => "upgrade-virtual-server",
            ActionSpec::Stage { .. } => "stage",
            ActionSpec::Install { .. } => "install",
            ActionSpec::Reboot => "reboot",
            ActionSpec::StopServices { .. } => "stop-services",
            ActionSpec::StartServices { .. } => "start-services",
            ActionSpec::AssertVersion => "assert-version",
            ActionSpec::Preflight { .. } => "preflight",
            ActionSpec::FailoverTest { .. } => "failover-test",
            ActionSpec::Confirm { .. } => "confirm",
            ActionSpec::NlbDrain => "nlb-drain",
            ActionSpec::NlbStart => "nlb-start",
            ActionSpec::Command { .. } => "command",
            ActionSpec::Powershell { .. } => "powershell",
            ActionSpec::WaitUntil { .. } => "wait-until",
            ActionSpec::Assert { .. } => "assert",
        }
    }

    #[test]
    fn action_tables_match_the_core_type() {
        let s = String::new;
        let all = [
            ActionSpec::MoveGroup {
                group: s(),
                to: s(),
            },
            ActionSpec::EvacuateNode { to: s() },
            ActionSpec::StopClusterService,
            ActionSpec::StartClusterService,
            ActionSpec::EvsResourcesOffline { group: s() },
            ActionSpec::EvsResourcesOnline { group: s() },
            ActionSpec::UpgradeVirtualServer {
                group: s(),
                command: Some(s()),
            },
            ActionSpec::Stage {
                source: s(),
                sha256: s(),
                dest: s(),
            },
            ActionSpec::Install {
                package: s(),
                args: s(),
                prerequisite: Some(s()),
                reboot: lockstep_core::RebootPolicy::Never,
            },
            ActionSpec::Reboot,
            ActionSpec::StopServices { services: vec![] },
            ActionSpec::StartServices { services: vec![] },
            ActionSpec::AssertVersion,
            ActionSpec::Preflight { checks: vec![] },
            ActionSpec::FailoverTest { group: s() },
            ActionSpec::Confirm {
                message: s(),
                command: Some(s()),
            },
            ActionSpec::NlbDrain,
            ActionSpec::NlbStart,
            ActionSpec::Command {
                command: s(),
                judge: lockstep_core::JudgeSpec {
                    unless: Some(s()),
                    expect: Some(s()),
                    ..Default::default()
                },
            },
            ActionSpec::Powershell {
                script: s(),
                judge: lockstep_core::JudgeSpec::default(),
            },
            ActionSpec::WaitUntil {
                that: s(),
                every: Some(s()),
            },
            ActionSpec::Assert { that: Some(s()) },
        ];
        let kinds = action_kinds();
        assert_eq!(all.len(), kinds.len());
        for a in &all {
            let name = action_name(a);
            assert!(kinds.contains(&name), "{name}");
            assert_eq!(a.kind(), name);
            // The serde form: its tag is the name, its other keys are the fields we allow.
            let v = serde_yaml::to_value(a).unwrap();
            let map = v.as_mapping().unwrap();
            assert_eq!(map.get("action").and_then(|x| x.as_str()), Some(name));
            for k in map.keys() {
                let k = k.as_str().unwrap();
                assert!(
                    k == "action" || action_fields(name).contains(&k),
                    "{name}.{k}"
                );
            }
        }
    }

    #[test]
    fn globs() {
        assert!(glob("exchange*", "exchange2003"));
        assert!(glob("PRG-*", "prg-n1"));
        assert!(!glob("prg-?", "prg-n1"));
    }
}
